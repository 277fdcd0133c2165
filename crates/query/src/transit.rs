//! The site's own bill against each upstream of the policy's `[transit]`:
//! `tollgate transit` and `GET /api/v1/transit` (docs/transit.md).
//!
//! The site's series is every stored key added up (each tenant's and the
//! uplink's traffic of no tenant, `billing::UNCLASSIFIED`), read an hour
//! at a time so that memory stays one hour of samples plus the period's
//! two columns, and assessed by `billing::assess` with the upstream's own
//! rule and billing cycle. The slots still open count as far as the
//! daemon has read them (its last committed state), as in bills: the
//! figure so far includes the traffic of the last minutes.

use crate::QueryError;
use accounting::{OpenSample, Sample, Slot};
use billing::{
    BillingCycle, Coverage, MissingSamples, Percentile, Period, RankRule, RealmSelection, Series,
    TransitStatus, UpstreamMethod, UpstreamRule,
};
use history::{SampleQuery, Store, Tenants};
use jiff::Timestamp;
use policy::{Policy, Upstream};
use serde::Serialize;

/// Slots per read of every key's samples.
const CHUNK_SLOTS: i64 = 12;

/// One upstream's figures.
#[derive(Clone, Debug, Serialize)]
pub struct UpstreamReport {
    /// Its name in the policy.
    pub name: String,
    /// The uplink it bills.
    pub uplink: String,
    /// The realms it carries; empty is every realm (and traffic of no
    /// tenant).
    pub realms: Vec<String>,
    /// The upstream's rule.
    pub rule: UpstreamRule,
    /// The safety margin, in percent under the commit.
    pub margin_percent: u32,
    /// The upstream's billing cycle, in words.
    pub cycle: String,
    /// The period assessed.
    pub period: Period,
    /// Whether the period is still running at `now`.
    pub running: bool,
    /// The site's samples behind the figures: the closed slots and the
    /// open one as far as the daemon read it.
    pub coverage: Coverage,
    /// The commit, the budget, the 95th so far and the projection.
    pub status: TransitStatus,
}

/// Every upstream's figures at `now`.
#[derive(Clone, Debug, Serialize)]
pub struct TransitReport {
    /// When the figures were computed.
    pub now: Timestamp,
    /// One per `[[transit.upstreams]]`, in the policy's order.
    pub upstreams: Vec<UpstreamReport>,
}

/// The upstream's rule in the billing crate's terms.
pub fn rule_of(u: &Upstream) -> Result<UpstreamRule, QueryError> {
    Ok(UpstreamRule {
        percentile: Percentile::new(u.percentile.value)
            .map_err(|e| QueryError::invalid("percentile", e.to_string()))?,
        method: match u.method.value {
            policy::UpstreamMethod::MaxOfDirections => {
                UpstreamMethod::Both(billing::Method::MaxOfDirections)
            }
            policy::UpstreamMethod::SumOfDirections => {
                UpstreamMethod::Both(billing::Method::SumOfDirections)
            }
            policy::UpstreamMethod::PerSampleMax => {
                UpstreamMethod::Both(billing::Method::PerSampleMax)
            }
            policy::UpstreamMethod::In => UpstreamMethod::In,
            policy::UpstreamMethod::Out => UpstreamMethod::Out,
        },
        rank: match u.rank.value {
            policy::RankRule::NearestRank => RankRule::NearestRank,
            policy::RankRule::VnStat => RankRule::VnStat,
            policy::RankRule::LibreNms => RankRule::LibreNms,
        },
        missing: match u.missing.value {
            policy::MissingSamples::ZeroAgainstExpected => MissingSamples::ZeroAgainstExpected,
            policy::MissingSamples::Skip => MissingSamples::Skip,
        },
    })
}

fn realms_of(policy: &Policy, u: &Upstream) -> RealmSelection {
    if u.realms.is_empty() {
        return RealmSelection::All;
    }
    RealmSelection::Only(
        u.realms
            .iter()
            .filter_map(|r| policy.realms.by_name(&r.value).map(|r| r.id))
            .collect(),
    )
}

/// The site's series over `period` for `realms`, from every key's
/// samples, read an hour at a time, and the open slots' traffic so far.
pub fn site_series(
    store: &dyn Store,
    period: &Period,
    realms: &RealmSelection,
    open: &[OpenSample],
) -> Result<Series, QueryError> {
    let (first, end) = (period.first_slot().0, period.end_slot().0);
    let coverage = store
        .coverage(Slot(first), Slot(end))
        .map_err(QueryError::store("the slots' coverage"))?;
    let open: Vec<Sample> = open
        .iter()
        .filter(|o| period.contains(o.slot))
        .map(|o| Sample {
            slot: o.slot,
            key: o.key,
            bytes: o.usage.bytes,
            packets: o.usage.packets,
        })
        .collect();
    let mut whole = billing::site_series(period, realms, &open, &coverage)
        .map_err(|e| QueryError::Damaged(e.to_string()))?;
    let mut from = first;
    while from < end {
        let to = (from + CHUNK_SLOTS).min(end);
        let samples = store
            .samples(&SampleQuery {
                tenants: Tenants::All,
                from: Slot(from),
                to: Slot(to),
            })
            .map_err(QueryError::store("the site's samples"))?;
        let part = billing::site_series(period, realms, &samples, &[])
            .map_err(|e| QueryError::Damaged(e.to_string()))?;
        whole = add(&whole, &part, from - first, to - first)?;
        from = to;
    }
    Ok(whole)
}

/// `a` with `b`'s slots `[lo, hi)` added (b holds nothing elsewhere).
fn add(a: &Series, b: &Series, lo: i64, hi: i64) -> Result<Series, QueryError> {
    let (mut down, mut up, mut status) = (a.down().to_vec(), a.up().to_vec(), a.status().to_vec());
    for i in lo as usize..hi as usize {
        down[i] += b.down()[i];
        up[i] += b.up()[i];
        if status[i].is_none() {
            status[i] = b.status()[i];
        }
    }
    Series::new(a.first_slot(), down, up, status).map_err(|e| QueryError::Damaged(e.to_string()))
}

/// Every upstream of `policy`'s `[transit]` at `now`: the period that
/// contains `now` in each upstream's own cycle, or the one labelled
/// `period` (`YYYY-MM`). Empty when the policy has no `[transit]`.
pub fn report(
    policy: &Policy,
    store: &dyn Store,
    now: Timestamp,
    period: Option<&str>,
) -> Result<TransitReport, QueryError> {
    let mut upstreams = Vec::new();
    let open = match &policy.transit {
        Some(_) => crate::open::open_samples(store)?,
        None => Vec::new(),
    };
    for u in policy.transit.iter().flat_map(|t| &t.upstreams) {
        upstreams.push(upstream(policy, u, store, &open, now, period)?.0);
    }
    Ok(TransitReport { now, upstreams })
}

/// One upstream's figures and the site's series behind them (for
/// figures of its own, such as each direction's percentile), with `open`
/// the daemon's open slots ([`crate::open::open_samples`]).
pub fn upstream(
    policy: &Policy,
    u: &Upstream,
    store: &dyn Store,
    open: &[OpenSample],
    now: Timestamp,
    period: Option<&str>,
) -> Result<(UpstreamReport, Series), QueryError> {
    let cycle = BillingCycle::new(u.day.value, &u.timezone.value)
        .map_err(|e| QueryError::invalid("timezone", e.to_string()))?;
    let p = match period {
        Some(label) => cycle.period_labelled(label),
        None => cycle.period_containing(now),
    }
    .map_err(|e| QueryError::invalid("period", e.to_string()))?;
    let rule = rule_of(u)?;
    let realms = realms_of(policy, u);
    let series = site_series(store, &p, &realms, open)?;
    // The slots before the one that contains `now` are closed; an open
    // slot the daemon has read counts as far as it was read.
    let first = p.first_slot().0;
    let read = open
        .iter()
        .filter(|o| p.contains(o.slot))
        .map(|o| o.slot.0 - first + 1)
        .max()
        .unwrap_or(0);
    let elapsed = (Slot::containing(now).0 - first)
        .max(read)
        .clamp(0, series.len() as i64) as usize;
    let report = UpstreamReport {
        name: u.name.value.clone(),
        uplink: u.uplink.value.to_string(),
        realms: u.realms.iter().map(|r| r.value.clone()).collect(),
        rule,
        margin_percent: u.margin_percent.value,
        cycle: cycle.to_string(),
        running: p.start <= now && now < p.end,
        coverage: Coverage::of(&series.truncated(elapsed)),
        status: billing::assess(
            &series,
            elapsed,
            &rule,
            u.commit.value,
            u.margin_percent.value,
        ),
        period: p,
    };
    Ok((report, series))
}

/// Each tenant's bytes in the upstream's samples above the commit so far
/// (the directions that put each sample there, the realms the upstream
/// carries), heaviest first: what the transit guard moves tenants by.
/// Reads only the slots above the commit (at most the budget and a
/// little more while the guard works), in runs of adjacent slots; the
/// open slot's traffic comes from `open`. Traffic of no tenant is no
/// one's to move and is left out.
pub fn shares(
    policy: &Policy,
    u: &Upstream,
    store: &dyn Store,
    open: &[OpenSample],
    report: &UpstreamReport,
    series: &Series,
) -> Result<Vec<(net_types::TenantId, u64)>, QueryError> {
    let realms = realms_of(policy, u);
    let above = billing::above_commit(series, report.status.elapsed, &report.rule, u.commit.value);
    let first = series.first_slot().0;
    let mut by: std::collections::BTreeMap<net_types::TenantId, u64> = Default::default();
    let mut add = |x: &Sample, down: bool, up: bool| {
        let counts = match x.key.direction {
            accounting::Direction::Down => down,
            accounting::Direction::Up => up,
        };
        if counts && x.key.tenant != billing::UNCLASSIFIED && realms.contains(x.key.realm) {
            let v = by.entry(x.key.tenant).or_default();
            *v = v.saturating_add(x.bytes);
        }
    };
    let mut i = 0;
    while i < above.len() {
        // A run of adjacent slots, read at once.
        let mut j = i;
        while j + 1 < above.len() && above[j + 1].0 == above[j].0 + 1 && j + 1 - i < 288 {
            j += 1;
        }
        let (from, to) = (first + above[i].0 as i64, first + above[j].0 as i64 + 1);
        let samples = store
            .samples(&SampleQuery {
                tenants: Tenants::All,
                from: Slot(from),
                to: Slot(to),
            })
            .map_err(QueryError::store("the samples above the commit"))?;
        let stored: Vec<Slot> = samples.iter().map(|x| x.slot).collect();
        for x in &samples {
            let (_, d, u) = above[i + (x.slot.0 - from) as usize];
            add(x, d, u);
        }
        // The open slot, as far as the daemon has read it.
        for o in open.iter().filter(|o| from <= o.slot.0 && o.slot.0 < to) {
            if stored.contains(&o.slot) {
                continue;
            }
            let (_, d, u) = above[i + (o.slot.0 - from) as usize];
            let x = Sample {
                slot: o.slot,
                key: o.key,
                bytes: o.usage.bytes,
                packets: o.usage.packets,
            };
            add(&x, d, u);
        }
        i = j + 1;
    }
    let mut out: Vec<(net_types::TenantId, u64)> = by.into_iter().collect();
    out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::{Band, Direction, Sample, SlotCoverage, SlotStatus, Source, UsageKey};
    use history::{Batch, SqliteOptions, SqliteStore};
    use net_types::{RealmId, TenantId};

    const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }

[realms]
default = "international"

[realms.national]
id = 1

[realms.international]
id = 2

[plans.basic]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "5mbit", ceil = "10mbit" }

[[tenants]]
id = 1
plan = "basic"
prefixes = ["100.64.0.0/24"]

[[transit.upstreams]]
name = "carrier"
commit = "10mbit"

[[transit.upstreams]]
name = "national"
realms = ["national"]
commit = "3mbit"
method = "in"
day = 15
timezone = "America/Sao_Paulo"
"#;

    const MBIT: u64 = 37_500_000;

    fn sample(slot: i64, tenant: u32, realm: u16, direction: Direction, mbit: u64) -> Sample {
        Sample {
            slot: Slot(slot),
            key: UsageKey {
                tenant: TenantId(tenant),
                realm: RealmId(realm),
                direction,
                band: Band::Whole,
                source: Source::Kernel,
            },
            bytes: mbit * MBIT,
            packets: 1,
        }
    }

    #[test]
    fn each_upstream_is_assessed_on_its_own_cycle_and_realms() {
        let p = policy::load("p.toml", POLICY, &mut |_| Err("none".into()))
            .policy
            .expect("valid");
        let dir = tempfile::tempdir().unwrap();
        let mut store = SqliteStore::open(
            &dir.path().join("h.sqlite"),
            &SqliteOptions { cache_mib: 8 },
        )
        .unwrap();
        // 2026-11-02 00:00 UTC, 24 slots: tenant 1 at 2 Mbit/s national
        // and 6 international down, and 5 Mbit/s of nobody's traffic.
        let s0 = Slot::containing("2026-11-02T00:00:00Z".parse().unwrap()).0;
        let mut samples = Vec::new();
        for s in s0..s0 + 24 {
            samples.push(sample(s, 0, 0, Direction::Down, 5));
            samples.push(sample(s, 1, 1, Direction::Down, 2));
            samples.push(sample(s, 1, 2, Direction::Down, 6));
        }
        samples.sort_by_key(|x| (x.slot, x.key));
        // The daemon's last state: the open slot 02:00–02:05 read so far,
        // 30 Mbit/s of nobody's down.
        let open = sample(s0 + 24, 0, 0, Direction::Down, 30);
        let state = accounting::AccountantState {
            // The last read, a minute into the open slot.
            last_observe_ms: Some(Slot(s0 + 24).start().as_millisecond() + 60_000),
            open_samples: vec![accounting::OpenSample {
                slot: open.slot,
                key: open.key,
                usage: accounting::Usage {
                    bytes: open.bytes,
                    packets: 1,
                },
            }],
            ..Default::default()
        }
        .encode();
        let coverage: Vec<SlotCoverage> = (s0..s0 + 24)
            .map(|s| SlotCoverage {
                slot: Slot(s),
                status: SlotStatus::Measured,
            })
            .collect();
        store
            .append(&Batch {
                sequence: 1,
                samples: &samples,
                coverage: &coverage,
                state: &state,
            })
            .unwrap();
        let now: Timestamp = "2026-11-02T02:00:00Z".parse().unwrap();
        let r = report(&p, &store, now, None).unwrap();
        let [carrier, national] = &r.upstreams[..] else {
            panic!("two upstreams")
        };
        // The carrier: every realm and nobody's: 5 + 2 + 6 = 13 Mbit/s in
        // each closed slot, November from the 1st (1 day = 288 slots gone),
        // and the open slot as read so far (30).
        assert_eq!(carrier.period.label, "2026-11");
        assert_eq!(carrier.status.elapsed, 288 + 24 + 1);
        // 313 slots: 288 empty, 24 at 13, 1 at 30: rank ⌈0.95 × 313⌉ =
        // ⌈297.35⌉ = 298 is a 13.
        assert_eq!(carrier.status.so_far.unwrap().bytes, 13 * MBIT);
        assert!(carrier.running);
        assert_eq!(carrier.status.spent, 25);
        assert_eq!(carrier.status.budget, 432);
        // 24 measured, and the open slot seen in part.
        assert_eq!((carrier.coverage.seen, carrier.coverage.partial), (25, 1));
        // The national: realm 1 only (2 Mbit/s), from 15 October 00:00 in
        // São Paulo (03:00 UTC): 18 days less an hour, 5172 slots closed,
        // and the open one; rank ⌈0.95 × 5173⌉ = 4915 is among the 5149
        // empty ones (the open slot has none of realm 1).
        assert_eq!(national.period.label, "2026-10");
        assert_eq!(national.status.elapsed, 18 * 288 - 12 + 1);
        assert_eq!(national.status.spent, 0);
        assert_eq!(national.status.so_far.unwrap().bytes, 0);
        // The guard's weights: tenant 1's 2 + 6 Mbit/s down in each of
        // the 24 closed slots above the commit; the open slot above it is
        // nobody's traffic, which no step can move.
        let open_samples = crate::open::open_samples(&store).unwrap();
        let u = &p.transit.as_ref().unwrap().upstreams[0];
        let (rep, series) = upstream(&p, u, &store, &open_samples, now, None).unwrap();
        assert_eq!(
            shares(&p, u, &store, &open_samples, &rep, &series).unwrap(),
            vec![(TenantId(1), 24 * 8 * MBIT)]
        );
        // A period labelled later than any sample: nothing spent.
        let dec = report(&p, &store, now, Some("2026-12")).unwrap();
        assert_eq!(dec.upstreams[0].status.spent, 0);
    }
}
