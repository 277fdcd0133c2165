//! Totals per tenant × realm × direction × local day (`usage`, like
//! vnStat) and per realm (`realms`, like rtacct, IPv6 included and with no
//! limit on the number of realms).
//!
//! Both read the history's totals and add the traffic recorded in slots
//! that have not closed yet (`open`, from [`crate::open::open_samples`],
//! read once by the caller), so they show everything up to the daemon's
//! last read. Days are local days in the billing zone.

use crate::names::{realm_name, tenant_name};
use crate::range::Range;
use crate::QueryError;
use accounting::{Direction, OpenSample};
use history::{Bucket, Store, Tenants, UsageQuery};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use policy::Policy;
use serde::Serialize;
use std::collections::BTreeMap;

/// Bytes and packets in both directions. `u128`, so that no sum is ever
/// clamped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Traffic {
    /// Toward the tenant.
    pub down_bytes: u128,
    /// Toward the tenant.
    pub down_packets: u128,
    /// From the tenant.
    pub up_bytes: u128,
    /// From the tenant.
    pub up_packets: u128,
}

impl Traffic {
    /// Adds one direction's bytes and packets.
    pub fn add(&mut self, dir: Direction, bytes: u128, packets: u128) {
        let (b, p) = match dir {
            Direction::Down => (&mut self.down_bytes, &mut self.down_packets),
            Direction::Up => (&mut self.up_bytes, &mut self.up_packets),
        };
        *b += bytes;
        *p += packets;
    }

    /// The sum of two.
    #[must_use]
    pub fn plus(self, o: &Traffic) -> Traffic {
        Traffic {
            down_bytes: self.down_bytes + o.down_bytes,
            down_packets: self.down_packets + o.down_packets,
            up_bytes: self.up_bytes + o.up_bytes,
            up_packets: self.up_packets + o.up_packets,
        }
    }

    /// Both directions' bytes.
    pub fn bytes(&self) -> u128 {
        self.down_bytes + self.up_bytes
    }
}

/// A day's traffic, and whether it is exact (retention may have removed
/// the 5-minute samples that split a UTC hour between two local days;
/// then the hour is counted whole in one of them).
pub type Totals = BTreeMap<(u32, u16, Date), (Traffic, bool)>;

/// Totals per tenant × realm × local day over a range, closed samples and
/// open ones together.
pub fn totals(
    store: &dyn Store,
    open: &[OpenSample],
    range: &Range,
    tenants: &Tenants,
) -> Result<Totals, QueryError> {
    let zone =
        TimeZone::get(&range.zone).map_err(|e| QueryError::invalid("zone", e.to_string()))?;
    let rows = store
        .usage(&UsageQuery {
            tenants: tenants.clone(),
            from: range.from,
            to: range.to,
            bucket: Bucket::Day,
            zone: zone.clone(),
        })
        .map_err(QueryError::store("usage totals"))?;
    let mut out: Totals = BTreeMap::new();
    for r in rows {
        let e = out
            .entry((r.tenant.0, r.realm.0, r.bucket))
            .or_insert((Traffic::default(), true));
        e.0.add(r.direction, r.bytes, r.packets);
        e.1 &= r.exact;
    }
    for o in open {
        let start = o.slot.start();
        let wanted = match tenants {
            Tenants::All => true,
            Tenants::Only(list) => list.contains(&o.key.tenant),
        };
        if !wanted || start < range.from || start >= range.to {
            continue;
        }
        let day = start.to_zoned(zone.clone()).date();
        out.entry((o.key.tenant.0, o.key.realm.0, day))
            .or_insert((Traffic::default(), true))
            .0
            .add(
                o.key.direction,
                o.usage.bytes.into(),
                o.usage.packets.into(),
            );
    }
    Ok(out)
}

/// One realm's traffic on one day.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DayRow {
    /// The local day.
    pub day: String,
    /// The realm's id.
    pub realm: u16,
    /// Its name.
    pub realm_name: String,
    /// The traffic.
    #[serde(flatten)]
    pub traffic: Traffic,
    /// False when retention removed the samples that would split an hour
    /// cut by this local day: the hour is counted whole in one day.
    pub exact: bool,
}

/// One realm's traffic over the range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RealmTotal {
    /// The realm's id.
    pub realm: u16,
    /// Its name.
    pub realm_name: String,
    /// The traffic.
    #[serde(flatten)]
    pub traffic: Traffic,
}

/// One tenant's usage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TenantUsage {
    /// The tenant's id.
    pub tenant: u32,
    /// Its name.
    pub name: String,
    /// Per day and realm.
    pub days: Vec<DayRow>,
    /// Per realm over the range.
    pub totals: Vec<RealmTotal>,
}

impl TenantUsage {
    /// Every realm together.
    pub fn all(&self) -> Traffic {
        self.totals
            .iter()
            .fold(Traffic::default(), |a, t| a.plus(&t.traffic))
    }
}

/// `tollgate usage` and `GET …/usage`'s totals.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct UsageReport {
    /// The range.
    pub range: Range,
    /// Every tenant with traffic in it.
    pub tenants: Vec<TenantUsage>,
}

/// Usage per tenant over `range`.
pub fn usage(
    store: &dyn Store,
    open: &[OpenSample],
    policy: Option<&Policy>,
    range: &Range,
    tenants: &Tenants,
) -> Result<UsageReport, QueryError> {
    let mut per: BTreeMap<u32, Vec<(Date, u16, Traffic, bool)>> = BTreeMap::new();
    for (&(tenant, realm, day), (v, exact)) in &totals(store, open, range, tenants)? {
        // Everybody's usage is the tenants': the uplink's traffic of no
        // tenant (docs/transit.md) is in `realms`, not a tenant's row.
        if tenant == billing::UNCLASSIFIED.0 && *tenants == Tenants::All {
            continue;
        }
        per.entry(tenant)
            .or_default()
            .push((day, realm, *v, *exact));
    }
    let tenants = per
        .into_iter()
        .map(|(tenant, rows)| {
            let mut sums: BTreeMap<u16, Traffic> = BTreeMap::new();
            for (_, realm, v, _) in &rows {
                let s = sums.entry(*realm).or_default();
                *s = s.plus(v);
            }
            TenantUsage {
                tenant,
                name: tenant_name(policy, tenant),
                days: rows
                    .into_iter()
                    .map(|(day, realm, traffic, exact)| DayRow {
                        day: day.to_string(),
                        realm,
                        realm_name: realm_name(policy, realm),
                        traffic,
                        exact,
                    })
                    .collect(),
                totals: sums
                    .into_iter()
                    .map(|(realm, traffic)| RealmTotal {
                        realm,
                        realm_name: realm_name(policy, realm),
                        traffic,
                    })
                    .collect(),
            }
        })
        .collect();
    Ok(UsageReport {
        range: range.clone(),
        tenants,
    })
}

/// One realm's traffic, as rtacct shows it: "to" is the tenants' traffic
/// toward the realm (up), "from" toward the tenants (down).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RealmRow {
    /// The realm's id.
    pub realm: u16,
    /// Its name.
    pub name: String,
    /// Bytes toward the realm.
    pub bytes_to: u128,
    /// Packets toward the realm.
    pub packets_to: u128,
    /// Bytes from the realm.
    pub bytes_from: u128,
    /// Packets from the realm.
    pub packets_from: u128,
}

/// `tollgate realms` and `GET /api/v1/realms`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct RealmsReport {
    /// The range.
    pub range: Range,
    /// Every realm with traffic.
    pub realms: Vec<RealmRow>,
}

/// Traffic per realm over `range`, every tenant together.
pub fn realms(
    store: &dyn Store,
    open: &[OpenSample],
    policy: Option<&Policy>,
    range: &Range,
) -> Result<RealmsReport, QueryError> {
    let mut per: BTreeMap<u16, Traffic> = BTreeMap::new();
    for (&(_, realm, _), (v, _)) in &totals(store, open, range, &Tenants::All)? {
        let s = per.entry(realm).or_default();
        *s = s.plus(v);
    }
    Ok(RealmsReport {
        range: range.clone(),
        realms: per
            .into_iter()
            .map(|(realm, v)| RealmRow {
                realm,
                name: realm_name(policy, realm),
                bytes_to: v.up_bytes,
                packets_to: v.up_packets,
                bytes_from: v.down_bytes,
                packets_from: v.down_packets,
            })
            .collect(),
    })
}

/// The `tenants`' traffic over `range`, every realm and day together (for
/// sorting tenants by volume, and a page of them).
pub fn volumes(
    store: &dyn Store,
    open: &[OpenSample],
    range: &Range,
    tenants: &Tenants,
) -> Result<BTreeMap<u32, Traffic>, QueryError> {
    let zone =
        TimeZone::get(&range.zone).map_err(|e| QueryError::invalid("zone", e.to_string()))?;
    // Month buckets: a handful of rows per tenant, however long the range.
    let rows = store
        .usage(&UsageQuery {
            tenants: tenants.clone(),
            from: range.from,
            to: range.to,
            bucket: Bucket::Month,
            zone,
        })
        .map_err(QueryError::store("usage totals"))?;
    let mut out: BTreeMap<u32, Traffic> = BTreeMap::new();
    for r in rows {
        out.entry(r.tenant.0)
            .or_default()
            .add(r.direction, r.bytes, r.packets);
    }
    for o in open {
        let start = o.slot.start();
        let wanted = match tenants {
            Tenants::All => true,
            Tenants::Only(list) => list.contains(&o.key.tenant),
        };
        if wanted && start >= range.from && start < range.to {
            out.entry(o.key.tenant.0).or_default().add(
                o.key.direction,
                o.usage.bytes.into(),
                o.usage.packets.into(),
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    //! Issue 12, item 1, where the fault lived: the totals once asked the
    //! store for an hour past the range's end ("so that the current hour
    //! is in"), so a closed month counted the first hour of the next.

    use super::*;
    use crate::range::{resolve, RangeSpec};
    use accounting::{Band, Sample, Slot, SlotCoverage, SlotStatus, Source, UsageKey};
    use history::{Batch, SqliteOptions, SqliteStore};
    use jiff::Timestamp;
    use net_types::{RealmId, TenantId};

    const PER_SLOT: u64 = 37_500_000;

    /// One tenant sending exactly 37.5 MB per 5-minute slot (down, in
    /// realm 2) from 30 September to 2 November 2026 UTC, so every zone's
    /// October has traffic before and after it.
    fn store(dir: &std::path::Path) -> SqliteStore {
        let mut store =
            SqliteStore::open(&dir.join("h.sqlite"), &SqliteOptions::default()).unwrap();
        let first = Slot::containing("2026-09-29T00:00:00Z".parse().unwrap()).0;
        let end = Slot::containing("2026-11-03T00:00:00Z".parse().unwrap()).0;
        let key = UsageKey {
            tenant: TenantId(7),
            realm: RealmId(2),
            direction: Direction::Down,
            band: Band::Whole,
            source: Source::Kernel,
        };
        let slots: Vec<i64> = (first..end).collect();
        for (sequence, day) in (1..).zip(slots.chunks(288)) {
            let samples: Vec<Sample> = day
                .iter()
                .map(|&s| Sample {
                    slot: Slot(s),
                    key,
                    bytes: PER_SLOT,
                    packets: 25_000,
                })
                .collect();
            let coverage: Vec<SlotCoverage> = day
                .iter()
                .map(|&s| SlotCoverage {
                    slot: Slot(s),
                    status: SlotStatus::Measured,
                })
                .collect();
            store
                .append(&Batch {
                    sequence,
                    samples: &samples,
                    coverage: &coverage,
                    state: b"",
                })
                .unwrap();
        }
        store
    }

    #[test]
    fn a_closed_period_counts_no_slot_past_its_end_in_any_zone() {
        struct Dir(std::path::PathBuf);
        impl Drop for Dir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let dir = Dir(std::env::temp_dir().join(format!("tg-query-usage-{}", std::process::id())));
        let _ = std::fs::remove_dir_all(&dir.0);
        std::fs::create_dir_all(&dir.0).unwrap();
        let s = store(&dir.0);
        let now: Timestamp = "2026-12-10T00:00:00Z".parse().unwrap();
        for zone in [
            "UTC",
            "Europe/Berlin",
            "Asia/Kathmandu",
            "Australia/Lord_Howe",
        ] {
            let settings =
                settings::Settings::parse("t", &format!("[billing]\ntimezone = \"{zone}\"\n"))
                    .unwrap();
            let range = resolve(&settings, &RangeSpec::Period("2026-10".into()), now).unwrap();
            let slots = (range.to.as_second() - range.from.as_second()) / 300;
            let report = usage(&s, &[], None, &range, &Tenants::All).unwrap();
            assert_eq!(report.tenants.len(), 1, "{zone}");
            let t = &report.tenants[0];
            assert_eq!(
                t.all().down_bytes,
                u128::from(PER_SLOT) * slots as u128,
                "{zone}: October has {slots} slots"
            );
            // Every local day of October, and none of November's.
            let days: Vec<&str> = t.days.iter().map(|d| d.day.as_str()).collect();
            assert_eq!(days.len(), 31, "{zone}: {days:?}");
            assert_eq!(days[0], "2026-10-01", "{zone}");
            assert_eq!(days[30], "2026-10-31", "{zone}");
            // Each local day is its own length: 23, 24, 25 hours (or 23.5
            // and 24.5 at Lord Howe's changes) of 37.5 MB slots.
            let tz = TimeZone::get(zone).unwrap();
            for d in &t.days {
                let day: Date = d.day.parse().unwrap();
                let start = day.to_zoned(tz.clone()).unwrap().timestamp();
                let next = day.tomorrow().unwrap().to_zoned(tz.clone()).unwrap();
                let slots = (next.timestamp().as_second() - start.as_second()) / 300;
                assert_eq!(
                    d.traffic.down_bytes,
                    u128::from(PER_SLOT) * slots as u128,
                    "{zone} {}",
                    d.day
                );
                assert!(d.exact, "{zone} {}", d.day);
            }
        }
    }
}
