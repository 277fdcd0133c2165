//! Every tenant's traffic together, per realm × direction, as columns:
//! the site's graph (the dashboard's overview and realms pages, and the
//! site's exported graph).
//!
//! Days are read from the history's daily totals (a few rows per tenant
//! for a month, however many samples); hours and 5-minute buckets need
//! every tenant's samples, read an hour at a time so that memory stays
//! one hour of samples whatever the range.

use crate::names::realm_name;
use crate::range::Range;
use crate::series::{buckets, Column, Resolution};
use crate::QueryError;
use accounting::{Direction, Slot};
use history::{Bucket, SampleQuery, Store, Tenants, UsageQuery};
use jiff::tz::TimeZone;
use policy::Policy;
use serde::Serialize;
use std::collections::BTreeMap;

/// The site's traffic over a range.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SiteSeries {
    /// The range.
    pub range: Range,
    /// The bucket width.
    pub resolution: Resolution,
    /// Each bucket's start, in seconds since the Unix epoch.
    pub t: Vec<i64>,
    /// Each bucket's length in seconds.
    pub seconds: Vec<u32>,
    /// One column per realm × direction with traffic in the range, every
    /// tenant added up.
    pub columns: Vec<Column>,
}

/// The resolution a site graph of `range` wants: 5 minutes up to two
/// days, days beyond (hours would read every tenant's samples of the
/// whole range).
pub fn resolution_for(range: &Range) -> Resolution {
    match Resolution::for_range(range) {
        Resolution::FiveMinutes => Resolution::FiveMinutes,
        _ => Resolution::Day,
    }
}

/// Slots per read of every tenant's samples.
const CHUNK_SLOTS: i64 = 12;

/// One local day's traffic, every tenant together: (realm, direction:
/// 0 down, 1 up) → bytes.
pub type DayTotals = BTreeMap<(u16, u8), u128>;

/// Closed local days' totals, kept between calls by the caller (the API
/// keeps one for its readers): a day that ended long enough ago never
/// changes, so reading every tenant's daily rows again for it is waste.
#[derive(Debug, Default)]
pub struct DayCache {
    days: BTreeMap<(String, jiff::civil::Date), DayTotals>,
}

/// Days kept at most (ten years of one zone).
const CACHED_DAYS: usize = 3660;

impl DayCache {
    /// Days cached.
    pub fn len(&self) -> usize {
        self.days.len()
    }

    /// Whether none is.
    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }
}

/// How long after a day's end its totals may still change: flow records
/// land up to an hour late ([`flows`'s clock skew]), and the accountant
/// closes its last slots a read interval after.
pub const SETTLED_AFTER: jiff::SignedDuration = jiff::SignedDuration::from_hours(2);

/// The site's traffic over `range` at `resolution`.
pub fn series(
    store: &dyn Store,
    policy: Option<&Policy>,
    range: &Range,
    resolution: Resolution,
) -> Result<SiteSeries, QueryError> {
    series_cached(store, policy, range, resolution, None)
}

/// [`series`], taking days that ended before `cache.1` from the cache
/// `cache.0` and keeping the ones it reads (only for days: finer buckets
/// are read as they are).
pub fn series_cached(
    store: &dyn Store,
    policy: Option<&Policy>,
    range: &Range,
    resolution: Resolution,
    cache: Option<(&mut DayCache, jiff::Timestamp)>,
) -> Result<SiteSeries, QueryError> {
    let edges = buckets(range, resolution)?;
    let n = edges.len() - 1;
    if n > 200_000 {
        return Err(QueryError::invalid(
            "resolution",
            format!("{n} buckets is too many; choose a coarser resolution or a shorter range"),
        ));
    }
    let mut columns: BTreeMap<(u16, u8), Vec<u128>> = BTreeMap::new();
    let mut add = |at: jiff::Timestamp, realm: u16, dir: Direction, bytes: u128| {
        if n == 0 {
            return;
        }
        let i = edges[..n].partition_point(|e| *e <= at).saturating_sub(1);
        let d = match dir {
            Direction::Down => 0,
            Direction::Up => 1,
        };
        columns.entry((realm, d)).or_insert_with(|| vec![0; n])[i] += bytes;
    };
    let from = Slot::starting_at_or_after(range.from);
    let to = Slot::starting_at_or_after(range.to);
    // Buckets taken whole from the cache: no open sample goes there.
    let mut cached = vec![false; n];
    match resolution {
        Resolution::Day => {
            let zone = TimeZone::get(&range.zone)
                .map_err(|e| QueryError::invalid("zone", e.to_string()))?;
            let date = |t: jiff::Timestamp| t.to_zoned(zone.clone()).date();
            // A bucket is a whole local day when it starts at the day's
            // start and ends at the next one's.
            let whole = |i: usize| {
                let (a, b) = (edges[i], edges[i + 1]);
                let start = a.to_zoned(zone.clone()).start_of_day().ok();
                start.is_some_and(|s| s.timestamp() == a)
                    && date(a)
                        .tomorrow()
                        .ok()
                        .and_then(|d| d.to_zoned(zone.clone()).ok())
                        .is_some_and(|z| z.timestamp() == b)
            };
            let mut cache = cache;
            let mut fresh = Vec::new();
            for i in 0..n {
                let settled = cache
                    .as_ref()
                    .is_some_and(|(_, before)| edges[i + 1] <= *before)
                    && whole(i);
                let hit = settled
                    .then(|| {
                        cache
                            .as_ref()
                            .and_then(|(c, _)| c.days.get(&(range.zone.clone(), date(edges[i]))))
                    })
                    .flatten();
                match hit {
                    Some(totals) => {
                        cached[i] = true;
                        for (&(realm, d), &bytes) in totals {
                            let dir = if d == 0 {
                                Direction::Down
                            } else {
                                Direction::Up
                            };
                            add(edges[i], realm, dir, bytes);
                        }
                    }
                    None => fresh.push((i, settled)),
                }
            }
            if let (Some(&(first, _)), Some(&(last, _))) = (fresh.first(), fresh.last()) {
                let rows = store
                    .usage(&UsageQuery {
                        tenants: Tenants::All,
                        from: edges[first],
                        to: edges[last + 1],
                        bucket: Bucket::Day,
                        zone: zone.clone(),
                    })
                    .map_err(QueryError::store("usage totals"))?;
                let mut read: BTreeMap<jiff::civil::Date, DayTotals> = BTreeMap::new();
                for r in rows {
                    let d = match r.direction {
                        Direction::Down => 0,
                        Direction::Up => 1,
                    };
                    *read
                        .entry(r.bucket)
                        .or_default()
                        .entry((r.realm.0, d))
                        .or_default() += r.bytes;
                }
                for &(i, settled) in &fresh {
                    let day = date(edges[i]);
                    let totals = read.remove(&day).unwrap_or_default();
                    for (&(realm, d), &bytes) in &totals {
                        let dir = if d == 0 {
                            Direction::Down
                        } else {
                            Direction::Up
                        };
                        add(edges[i], realm, dir, bytes);
                    }
                    if settled {
                        if let Some((c, _)) = cache.as_mut() {
                            if c.days.len() >= CACHED_DAYS {
                                c.days.clear();
                            }
                            c.days.insert((range.zone.clone(), day), totals);
                        }
                    }
                }
            }
        }
        Resolution::Hour | Resolution::FiveMinutes => {
            let mut at = from;
            while at < to {
                let next = Slot(at.0.saturating_add(CHUNK_SLOTS).min(to.0));
                let samples = store
                    .samples(&SampleQuery {
                        tenants: Tenants::All,
                        from: at,
                        to: next,
                    })
                    .map_err(QueryError::store("the site's samples"))?;
                for s in samples {
                    add(
                        s.slot.start(),
                        s.key.realm.0,
                        s.key.direction,
                        u128::from(s.bytes),
                    );
                }
                at = next;
            }
        }
    }
    for o in crate::open::open_samples(store)? {
        let at = o.slot.start();
        let i = edges[..n].partition_point(|e| *e <= at).saturating_sub(1);
        if o.slot >= from && o.slot < to && !cached.get(i).copied().unwrap_or(false) {
            add(
                o.slot.start(),
                o.key.realm.0,
                o.key.direction,
                o.usage.bytes.into(),
            );
        }
    }
    Ok(SiteSeries {
        range: range.clone(),
        resolution,
        t: edges[..n].iter().map(|e| e.as_second()).collect(),
        seconds: edges
            .windows(2)
            .map(|w| (w[1].as_second() - w[0].as_second()).max(0) as u32)
            .collect(),
        columns: columns
            .into_iter()
            .map(|((realm, dir), v)| Column {
                realm,
                realm_name: realm_name(policy, realm),
                direction: if dir == 0 { "down" } else { "up" },
                total_bytes: v.iter().sum(),
                bytes: v,
            })
            .collect(),
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::range::{resolve, RangeSpec};
    use accounting::{AccountantState, Band, Sample, SlotCoverage, SlotStatus, Source, UsageKey};
    use history::{Batch, SqliteOptions, SqliteStore};
    use net_types::{RealmId, TenantId};

    fn key(tenant: u32, realm: u16, direction: Direction) -> UsageKey {
        UsageKey {
            tenant: TenantId(tenant),
            realm: RealmId(realm),
            direction,
            band: Band::Whole,
            source: Source::Kernel,
        }
    }

    /// Two days of three tenants × two realms × both directions, in UTC.
    pub(crate) fn store(dir: &std::path::Path) -> (SqliteStore, Vec<Sample>) {
        let mut store =
            SqliteStore::open(&dir.join("h.sqlite"), &SqliteOptions { cache_mib: 8 }).unwrap();
        let first = Slot::starting_at_or_after("2026-11-03T00:00:00Z".parse().unwrap());
        let mut samples = Vec::new();
        for s in 0..576 {
            for t in 1..=3u32 {
                for realm in 1..=2u16 {
                    for (d, dir) in [Direction::Down, Direction::Up].into_iter().enumerate() {
                        let bytes = u64::from(t) * 1000
                            + u64::from(realm) * 100
                            + d as u64 * 10
                            + (s as u64 % 7);
                        samples.push(Sample {
                            slot: Slot(first.0 + s),
                            key: key(t, realm, dir),
                            bytes,
                            packets: 1,
                        });
                    }
                }
            }
        }
        let coverage: Vec<SlotCoverage> = (0..576)
            .map(|s| SlotCoverage {
                slot: Slot(first.0 + s),
                status: SlotStatus::Measured,
            })
            .collect();
        history::Store::append(
            &mut store,
            &Batch {
                sequence: 1,
                samples: &samples,
                coverage: &coverage,
                state: &AccountantState::default().encode(),
            },
        )
        .unwrap();
        (store, samples)
    }

    #[test]
    fn the_site_is_every_tenants_traffic_added_up_at_every_resolution() {
        let dir = tempfile::tempdir().unwrap();
        let (store, samples) = store(dir.path());
        let settings = settings::Settings::defaults();
        let now: jiff::Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
        let range = resolve(&settings, &RangeSpec::Since("2026-11-03".into()), now).unwrap();
        let truth = |realm: u16, dir: Direction| -> u128 {
            samples
                .iter()
                .filter(|s| s.key.realm.0 == realm && s.key.direction == dir)
                .map(|s| u128::from(s.bytes))
                .sum()
        };
        for resolution in [Resolution::FiveMinutes, Resolution::Hour, Resolution::Day] {
            let s = series(&store, None, &range, resolution).unwrap();
            assert_eq!(s.columns.len(), 4, "{resolution:?}");
            assert_eq!(s.t.len(), s.seconds.len());
            for c in &s.columns {
                let dir = if c.direction == "down" {
                    Direction::Down
                } else {
                    Direction::Up
                };
                assert_eq!(c.total_bytes, truth(c.realm, dir), "{resolution:?} {c:?}");
                assert_eq!(c.bytes.iter().sum::<u128>(), c.total_bytes);
                assert_eq!(c.bytes.len(), s.t.len());
            }
        }
        // The first 5-minute bucket of realm 1 down: 1 + 2 + 3 thousand,
        // plus 100 per tenant for the realm, plus slot 0's 0.
        let five = series(&store, None, &range, Resolution::FiveMinutes).unwrap();
        assert_eq!(five.columns[0].bytes[0], 6000 + 300);
        // A day's bucket holds 288 slots.
        let days = series(&store, None, &range, Resolution::Day).unwrap();
        assert_eq!(days.seconds[0], 86_400);
        assert!(days.columns[0].bytes[0] > 288 * 6300);
    }

    #[test]
    fn settled_days_come_from_the_cache_and_the_rest_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = store(dir.path());
        let settings = settings::Settings::defaults();
        let now: jiff::Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
        let range = resolve(&settings, &RangeSpec::Since("2026-11-03".into()), now).unwrap();
        let plain = series(&store, None, &range, Resolution::Day).unwrap();
        let mut cache = DayCache::default();
        // Only the first day has settled.
        let settled: jiff::Timestamp = "2026-11-04T01:00:00Z".parse().unwrap();
        let first = series_cached(
            &store,
            None,
            &range,
            Resolution::Day,
            Some((&mut cache, settled)),
        )
        .unwrap();
        assert_eq!(first, plain);
        assert_eq!(cache.len(), 1);
        // A cached day is taken from the cache: change it there, and the
        // answer shows the change; the other days are read again.
        let day: jiff::civil::Date = "2026-11-03".parse().unwrap();
        *cache
            .days
            .get_mut(&("UTC".to_string(), day))
            .unwrap()
            .get_mut(&(1, 0))
            .unwrap() += 1;
        let again = series_cached(
            &store,
            None,
            &range,
            Resolution::Day,
            Some((&mut cache, settled)),
        )
        .unwrap();
        assert_eq!(again.columns[0].bytes[0], plain.columns[0].bytes[0] + 1);
        assert_eq!(again.columns[0].bytes[1..], plain.columns[0].bytes[1..]);
    }

    #[test]
    fn a_long_site_range_is_drawn_in_days() {
        let settings = settings::Settings::defaults();
        let now: jiff::Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
        let month = resolve(&settings, &RangeSpec::Current, now).unwrap();
        assert_eq!(resolution_for(&month), Resolution::Day);
        let today = resolve(&settings, &RangeSpec::Since("2026-11-19".into()), now).unwrap();
        assert_eq!(resolution_for(&today), Resolution::FiveMinutes);
    }
}
