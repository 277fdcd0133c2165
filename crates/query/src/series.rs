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
use accounting::{Direction, Slot};
use history::{SampleQuery, Store, Tenants};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan as _};
use net_types::TenantId;
use policy::Policy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

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

/// `tenant`'s traffic over `range` at `resolution`.
pub fn series(
    store: &dyn Store,
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
    let samples = store
        .samples(&SampleQuery {
            tenants: Tenants::Only(vec![tenant]),
            from,
            to,
        })
        .map_err(QueryError::store("the tenant's samples"))?;
    let open = crate::open::open_samples(store)?;
    let open = open
        .iter()
        .filter(|o| o.key.tenant == tenant && o.slot >= from && o.slot < to)
        .map(|o| (o.slot, o.key, o.usage.bytes));
    let mut columns: BTreeMap<(u16, u8), Vec<u128>> = BTreeMap::new();
    for (slot, key, bytes) in samples.iter().map(|s| (s.slot, s.key, s.bytes)).chain(open) {
        let at = slot.start();
        // The bucket whose start is the last one at or before `at`.
        let i = edges[..n].partition_point(|e| *e <= at).saturating_sub(1);
        let dir = match key.direction {
            Direction::Down => 0,
            Direction::Up => 1,
        };
        columns
            .entry((key.realm.0, dir))
            .or_insert_with(|| vec![0; n])[i] += u128::from(bytes);
    }
    Ok(Series {
        tenant: tenant.0,
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
