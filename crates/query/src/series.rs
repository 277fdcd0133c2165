//! One tenant's traffic over a range as columns: a `t` array of bucket
//! starts and one array per realm × direction, as Akvorado's console
//! receives its graphs, so a month of 5-minute points stays small
//! (8,928 numbers a column instead of 8,928 objects).
//!
//! Buckets are 5-minute slots, local hours or local days of the billing
//! zone; every bucket of the range is present, with zeros where nothing
//! was recorded, so the arrays line up with `t`. Built from the 5-minute
//! samples and the open slots, so every resolution sums to the same
//! totals as [`crate::usage`].

use crate::names::realm_name;
use crate::range::Range;
use crate::QueryError;
use accounting::{Direction, OpenSample, Slot};
use history::{SampleQuery, Store, Tenants};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan as _};
use net_types::TenantId;
use policy::Policy;
use serde::{Deserialize, Serialize};

/// How wide a bucket is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    /// A 5-minute slot.
    #[serde(rename = "5m")]
    FiveMinutes,
    /// A local hour.
    #[serde(rename = "1h")]
    Hour,
    /// A local day.
    #[serde(rename = "1d")]
    Day,
}

impl Resolution {
    /// The resolution a graph of `range` wants: 5 minutes up to two days,
    /// hours up to two months, days beyond.
    pub fn for_range(range: &Range) -> Resolution {
        let secs = range.to.as_second() - range.from.as_second();
        if secs <= 2 * 86_400 {
            Resolution::FiveMinutes
        } else if secs <= 62 * 86_400 {
            Resolution::Hour
        } else {
            Resolution::Day
        }
    }

    /// `5m`, `1h` or `1d`.
    pub fn as_str(self) -> &'static str {
        match self {
            Resolution::FiveMinutes => "5m",
            Resolution::Hour => "1h",
            Resolution::Day => "1d",
        }
    }
}

impl std::str::FromStr for Resolution {
    type Err = QueryError;
    fn from_str(s: &str) -> Result<Resolution, QueryError> {
        match s {
            "5m" => Ok(Resolution::FiveMinutes),
            "1h" => Ok(Resolution::Hour),
            "1d" => Ok(Resolution::Day),
            _ => Err(QueryError::invalid(
                "resolution",
                format!("`{s}` is not a resolution; use 5m, 1h or 1d"),
            )),
        }
    }
}

/// One realm × direction's bytes per bucket.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Column {
    /// The realm's id.
    pub realm: u16,
    /// Its name.
    pub realm_name: String,
    /// `down` (toward the tenant) or `up`.
    pub direction: &'static str,
    /// Bytes per bucket, aligned with [`Series::t`].
    pub bytes: Vec<u128>,
    /// The column's sum.
    pub total_bytes: u128,
}

/// A tenant's series.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Series {
    /// Whose.
    pub tenant: u32,
    /// The range.
    pub range: Range,
    /// The bucket width.
    pub resolution: Resolution,
    /// Each bucket's start, in seconds since the Unix epoch.
    pub t: Vec<i64>,
    /// Each bucket's length in seconds (days and hours vary with DST).
    pub seconds: Vec<u32>,
    /// One column per realm × direction with traffic in the range.
    pub columns: Vec<Column>,
}

/// The bucket starts of `range` at `resolution`, and the range's end.
pub(crate) fn buckets(range: &Range, resolution: Resolution) -> Result<Vec<Timestamp>, QueryError> {
    let first = Slot::starting_at_or_after(range.from).start();
    let end = Slot::starting_at_or_after(range.to).start();
    let mut out = Vec::new();
    match resolution {
        Resolution::FiveMinutes => {
            let mut s = Slot::containing(first);
            while s.start() < end {
                out.push(s.start());
                s = s.next();
            }
        }
        Resolution::Hour | Resolution::Day => {
            let zone = TimeZone::get(&range.zone)
                .map_err(|e| QueryError::invalid("zone", e.to_string()))?;
            let z = first.to_zoned(zone);
            let mut at = z
                .start_of_day()
                .map_err(|e| QueryError::invalid("zone", e.to_string()))?;
            let step = match resolution {
                Resolution::Hour => 1.hour(),
                _ => 1.day(),
            };
            while at.timestamp() < end {
                let next = at
                    .checked_add(step)
                    .map_err(|e| QueryError::invalid("range", e.to_string()))?;
                if next.timestamp() > first {
                    out.push(at.timestamp().max(first));
                }
                at = next;
            }
        }
    }
    out.push(end);
    Ok(out)
}

/// Slots in an hour.
const SLOTS_PER_HOUR: i64 = 3600 / accounting::SAMPLE_SECONDS;

/// What a series reads: the hourly rollup for the whole UTC hours that lie
/// in one bucket (an hour's row instead of its twelve samples, and kept
/// longer than the samples), the 5-minute samples for the rest: the
/// range's ragged ends, and every hour a bucket boundary cuts (in a zone
/// whose offset is not whole hours, such as Asia/Kathmandu, that is every
/// hour, and the series reads samples throughout).
#[derive(Debug, PartialEq, Eq)]
struct Reads {
    /// The span of hours read from the rollup, if any.
    hours: Option<std::ops::Range<i64>>,
    /// For each hour of `hours`: whether its row counts (else its slots
    /// are among `slots`).
    whole: Vec<bool>,
    /// Runs of slots `[from, to)` read from the samples.
    slots: Vec<(Slot, Slot)>,
}

fn plan_reads(
    from: Slot,
    to: Slot,
    resolution: Resolution,
    bucket_of: &dyn Fn(Slot) -> usize,
) -> Reads {
    let mut reads = Reads {
        hours: None,
        whole: Vec::new(),
        slots: Vec::new(),
    };
    let mut sample = |a: Slot, b: Slot| {
        if a >= b {
            return;
        }
        match reads.slots.last_mut() {
            Some(last) if last.1 == a => last.1 = b,
            _ => reads.slots.push((a, b)),
        }
    };
    let first_hour =
        from.0.div_euclid(SLOTS_PER_HOUR) + i64::from(from.0.rem_euclid(SLOTS_PER_HOUR) != 0);
    let end_hour = to.0.div_euclid(SLOTS_PER_HOUR);
    if resolution == Resolution::FiveMinutes || first_hour >= end_hour {
        sample(from, to);
        return reads;
    }
    sample(from, Slot(first_hour * SLOTS_PER_HOUR));
    let whole: Vec<bool> = (first_hour..end_hour)
        .map(|h| {
            bucket_of(Slot(h * SLOTS_PER_HOUR)) == bucket_of(Slot((h + 1) * SLOTS_PER_HOUR - 1))
        })
        .collect();
    for (h, w) in (first_hour..end_hour).zip(&whole) {
        if !w {
            sample(Slot(h * SLOTS_PER_HOUR), Slot((h + 1) * SLOTS_PER_HOUR));
        }
    }
    sample(Slot(end_hour * SLOTS_PER_HOUR), to);
    if whole.iter().any(|w| *w) {
        reads.hours = Some(first_hour..end_hour);
        reads.whole = whole;
    }
    reads
}

/// `tenant`'s traffic over `range` at `resolution`.
pub fn series(
    store: &dyn Store,
    open: &[OpenSample],
    policy: Option<&Policy>,
    tenant: TenantId,
    range: &Range,
    resolution: Resolution,
) -> Result<Series, QueryError> {
    let edges = buckets(range, resolution)?;
    let n = edges.len() - 1;
    // Points are capped so that a careless request (5 minutes over ten
    // years) cannot build gigabytes.
    if n > 200_000 {
        return Err(QueryError::invalid(
            "resolution",
            format!("{n} buckets is too many; choose a coarser resolution or a shorter range"),
        ));
    }
    let from = Slot::starting_at_or_after(range.from);
    let to = Slot::starting_at_or_after(range.to);
    // The bucket of a slot: the last one whose start is at or before it.
    let starts: Vec<i64> = edges[..n].iter().map(|e| e.as_second()).collect();
    let bucket_of = |slot: Slot| {
        let at = slot.0.saturating_mul(accounting::SAMPLE_SECONDS);
        starts.partition_point(|e| *e <= at).saturating_sub(1)
    };
    // A handful of realm × direction columns: a list is quicker than a map.
    let mut columns: Vec<((u16, u8), Vec<u128>)> = Vec::new();
    let mut add = |bucket: usize, realm: u16, direction: Direction, bytes: u128| {
        let key = (
            realm,
            match direction {
                Direction::Down => 0,
                Direction::Up => 1,
            },
        );
        let i = match columns.iter().position(|(k, _)| *k == key) {
            Some(i) => i,
            None => {
                columns.push((key, vec![0; n]));
                columns.len() - 1
            }
        };
        columns[i].1[bucket] += bytes;
    };
    let reads = plan_reads(from, to, resolution, &bucket_of);
    if let Some(hours) = reads.hours.clone() {
        let rows = store
            .hourly_totals(tenant, hours.clone())
            .map_err(QueryError::store("the tenant's hourly totals"))?;
        // Each hour's bucket once, not once per realm and direction.
        let buckets: Vec<usize> = hours
            .clone()
            .map(|h| bucket_of(Slot(h * SLOTS_PER_HOUR)))
            .collect();
        for r in &rows.totals {
            let i = (r.hour - hours.start) as usize;
            if reads.whole[i] {
                add(buckets[i], r.realm.0, r.direction, r.bytes);
            }
        }
    }
    for (a, b) in reads.slots {
        let samples = store
            .samples(&SampleQuery {
                tenants: Tenants::Only(vec![tenant]),
                from: a,
                to: b,
            })
            .map_err(QueryError::store("the tenant's samples"))?;
        for s in &samples {
            add(
                bucket_of(s.slot),
                s.key.realm.0,
                s.key.direction,
                u128::from(s.bytes),
            );
        }
    }
    // The open slots are not in the store yet, whichever way it is read.
    for o in open
        .iter()
        .filter(|o| o.key.tenant == tenant && o.slot >= from && o.slot < to)
    {
        add(
            bucket_of(o.slot),
            o.key.realm.0,
            o.key.direction,
            u128::from(o.usage.bytes),
        );
    }
    Ok(Series {
        tenant: tenant.0,
        range: range.clone(),
        resolution,
        t: starts.clone(),
        seconds: edges
            .windows(2)
            .map(|w| (w[1].as_second() - w[0].as_second()).max(0) as u32)
            .collect(),
        columns: {
            columns.sort_by_key(|(k, _)| *k);
            columns
        }
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
mod tests {
    use super::*;
    use accounting::{Band, Sample, Source, UsageKey};
    use history::{Batch, SqliteOptions, SqliteStore};
    use net_types::RealmId;
    use std::collections::BTreeMap;

    fn key(tenant: u32, realm: u16, direction: Direction) -> UsageKey {
        UsageKey {
            tenant: TenantId(tenant),
            realm: RealmId(realm),
            direction,
            band: Band::Whole,
            source: Source::Kernel,
        }
    }

    #[test]
    fn reads_take_whole_hours_from_the_rollup_and_the_rest_from_samples() {
        // UTC days, from 00:10 to 03:25: the ragged ends are samples.
        let day = |s: Slot| (s.0 / (24 * SLOTS_PER_HOUR)) as usize;
        let r = plan_reads(Slot(2), Slot(3 * 12 + 5), Resolution::Day, &day);
        assert_eq!(r.hours, Some(1..3));
        assert_eq!(r.whole, vec![true, true]);
        assert_eq!(r.slots, vec![(Slot(2), Slot(12)), (Slot(36), Slot(41))]);
        // Buckets that change at :15 cut every hour: samples throughout.
        let quarter = |s: Slot| ((s.0 + 9) / 12) as usize;
        let r = plan_reads(Slot(0), Slot(48), Resolution::Hour, &quarter);
        assert_eq!(r.hours, None);
        assert_eq!(r.slots, vec![(Slot(0), Slot(48))]);
        // Five minutes never reads the rollup.
        let r = plan_reads(Slot(0), Slot(48), Resolution::FiveMinutes, &day);
        assert_eq!((r.hours, r.slots), (None, vec![(Slot(0), Slot(48))]));
    }

    /// The series of every resolution and zone equals the samples summed
    /// into its buckets, whether read from the rollup or the samples, and
    /// whether the rollup's days are built into one row per tenant-day
    /// (none, the first two, all four) or not.
    #[test]
    fn every_resolution_in_every_zone_is_its_samples_summed() {
        let dir = std::env::temp_dir().join(format!("tg-query-series-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut store =
            SqliteStore::open(&dir.join("h.sqlite"), &SqliteOptions::default()).unwrap();
        // Three days of October 2026 (Berlin's DST change on the 25th),
        // traffic in a pattern that differs per slot, realm and direction.
        let first = Slot::containing("2026-10-24T00:00Z".parse().unwrap());
        let mut all = Vec::new();
        for day in 0..4 {
            let mut samples = Vec::new();
            for i in 0..288 {
                let slot = Slot(first.0 + day * 288 + i);
                for (realm, direction) in [(1, Direction::Down), (2, Direction::Up)] {
                    let bytes = 1_000 + (slot.0 % 97) as u64 * u64::from(realm) + day as u64;
                    if slot.0 % 7 == 3 && realm == 2 {
                        continue;
                    }
                    samples.push(Sample {
                        slot,
                        key: key(5, realm, direction),
                        bytes,
                        packets: 1,
                    });
                }
            }
            store
                .append(&Batch {
                    sequence: day as u64 + 1,
                    samples: &samples,
                    coverage: &[],
                    state: &[],
                })
                .unwrap();
            all.extend(samples);
        }
        let day = |n: i64| jiff::Timestamp::from_second((first.0 + n * 288) * 300).unwrap();
        for built in [None, Some(day(3)), Some(day(6))] {
            if let Some(now) = built {
                let r = store.compact(now, 1_000).unwrap();
                assert!(r.done && r.hour_days > 0, "{r:?}");
            }
            for zone in [
                "UTC",
                "Europe/Berlin",
                "Asia/Kathmandu",
                "Australia/Lord_Howe",
            ] {
                for resolution in [Resolution::FiveMinutes, Resolution::Hour, Resolution::Day] {
                    let range = Range {
                        label: "test".into(),
                        from: "2026-10-24T07:40Z".parse().unwrap(),
                        to: "2026-10-27T05:20Z".parse().unwrap(),
                        zone: zone.into(),
                    };
                    let s = series(&store, &[], None, TenantId(5), &range, resolution).unwrap();
                    let (from, to) = (
                        Slot::starting_at_or_after(range.from),
                        Slot::starting_at_or_after(range.to),
                    );
                    let mut expected: BTreeMap<(u16, &str), Vec<u128>> = BTreeMap::new();
                    for x in all.iter().filter(|x| x.slot >= from && x.slot < to) {
                        let at = x.slot.start().as_second();
                        let i = s.t.partition_point(|t| *t <= at) - 1;
                        let dir = match x.key.direction {
                            Direction::Down => "down",
                            Direction::Up => "up",
                        };
                        expected
                            .entry((x.key.realm.0, dir))
                            .or_insert_with(|| vec![0; s.t.len()])[i] += u128::from(x.bytes);
                    }
                    let got: BTreeMap<(u16, &str), Vec<u128>> = s
                        .columns
                        .iter()
                        .map(|c| ((c.realm, c.direction), c.bytes.clone()))
                        .collect();
                    assert_eq!(
                        got, expected,
                        "{zone} {resolution:?}, built as of {built:?}"
                    );
                }
            }
        }
        drop(store);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
