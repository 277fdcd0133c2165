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

/// The site's traffic over `range` at `resolution`.
pub fn series(
    store: &dyn Store,
    policy: Option<&Policy>,
    range: &Range,
    resolution: Resolution,
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
    match resolution {
        Resolution::Day => {
            let zone = TimeZone::get(&range.zone)
                .map_err(|e| QueryError::invalid("zone", e.to_string()))?;
            let rows = store
                .usage(&UsageQuery {
                    tenants: Tenants::All,
                    from: range.from,
                    to: range.to,
                    bucket: Bucket::Day,
                    zone: zone.clone(),
                })
                .map_err(QueryError::store("usage totals"))?;
            for r in rows {
                let day = r
                    .bucket
                    .to_zoned(zone.clone())
                    .map_err(|e| QueryError::invalid("zone", e.to_string()))?
                    .timestamp()
                    .max(range.from);
                add(day, r.realm.0, r.direction, r.bytes);
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
        if o.slot >= from && o.slot < to {
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
    fn a_long_site_range_is_drawn_in_days() {
        let settings = settings::Settings::defaults();
        let now: jiff::Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
        let month = resolve(&settings, &RangeSpec::Current, now).unwrap();
        assert_eq!(resolution_for(&month), Resolution::Day);
        let today = resolve(&settings, &RangeSpec::Since("2026-11-19".into()), now).unwrap();
        assert_eq!(resolution_for(&today), Resolution::FiveMinutes);
    }
}
