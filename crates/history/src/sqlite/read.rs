//! Queries: samples, coverage, usage totals, frozen bills, the state.

use super::write::SLOTS_PER_DAY;
use crate::error::StoreError;
use crate::store::*;
use accounting::{Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, UsageKey};
use jiff::civil::Date;
use jiff::Timestamp;
use net_types::{RealmId, TenantId};
use rusqlite::{params, Connection, OptionalExtension, Row};
use std::collections::{BTreeMap, HashMap};

fn u64_of(v: i64, place: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::corrupt(place, format!("{v} is negative")))
}

fn tenant_of(v: i64, place: &str) -> Result<TenantId, StoreError> {
    u32::try_from(v)
        .map(TenantId)
        .map_err(|_| StoreError::corrupt(place, format!("tenant {v} is not a u32")))
}

fn realm_of(v: i64, place: &str) -> Result<RealmId, StoreError> {
    u16::try_from(v)
        .map(RealmId)
        .map_err(|_| StoreError::corrupt(place, format!("realm {v} is not a u16")))
}

fn direction_of(v: i64, place: &str) -> Result<Direction, StoreError> {
    u8::try_from(v)
        .ok()
        .and_then(Direction::from_code)
        .ok_or_else(|| StoreError::corrupt(place, format!("direction {v} is not 0 or 1")))
}

/// The raw columns of a sample row: tenant, realm, dir, band, slot, bytes, packets.
type SampleRow = (i64, i64, i64, i64, i64, i64, i64);

fn sample_row(r: &Row<'_>) -> rusqlite::Result<SampleRow> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn sample_of(row: SampleRow) -> Result<Sample, StoreError> {
    let (tenant, realm, dir, band, slot, bytes, packets) = row;
    let band = u8::try_from(band)
        .ok()
        .and_then(Band::from_code)
        .ok_or_else(|| StoreError::corrupt("samples.band", format!("band {band} is not 0..=3")))?;
    Ok(Sample {
        slot: Slot(slot),
        key: UsageKey {
            tenant: tenant_of(tenant, "samples.tenant")?,
            realm: realm_of(realm, "samples.realm")?,
            direction: direction_of(dir, "samples.dir")?,
            band,
        },
        bytes: u64_of(bytes, "samples.bytes")?,
        packets: u64_of(packets, "samples.packets")?,
    })
}

pub(super) fn samples(conn: &Connection, q: &SampleQuery) -> Result<Vec<Sample>, StoreError> {
    let ctx = "read samples";
    let mut out = Vec::new();
    if q.from >= q.to {
        return Ok(out);
    }
    let (d0, d1) = (
        q.from.0.div_euclid(SLOTS_PER_DAY),
        (q.to.0 - 1).div_euclid(SLOTS_PER_DAY),
    );
    match &q.tenants {
        Tenants::All => {
            let mut st = conn
                .prepare_cached(
                    "SELECT tenant, realm, dir, band, slot, bytes, packets FROM samples
                     WHERE day >= ?1 AND day <= ?2 AND slot >= ?3 AND slot < ?4",
                )
                .map_err(StoreError::db(ctx))?;
            let rows = st
                .query_map(params![d0, d1, q.from.0, q.to.0], sample_row)
                .map_err(StoreError::db(ctx))?;
            for r in rows {
                out.push(sample_of(r.map_err(StoreError::db(ctx))?)?);
            }
        }
        Tenants::Only(tenants) => {
            // One short range read per day and tenant: the primary key
            // starts with (day, tenant).
            let mut st = conn
                .prepare_cached(
                    "SELECT tenant, realm, dir, band, slot, bytes, packets FROM samples
                     WHERE day = ?1 AND tenant = ?2 AND slot >= ?3 AND slot < ?4",
                )
                .map_err(StoreError::db(ctx))?;
            for t in tenants {
                for day in d0..=d1 {
                    let rows = st
                        .query_map(params![day, t.0, q.from.0, q.to.0], sample_row)
                        .map_err(StoreError::db(ctx))?;
                    for r in rows {
                        out.push(sample_of(r.map_err(StoreError::db(ctx))?)?);
                    }
                }
            }
        }
    }
    out.sort_unstable_by_key(|s| (s.slot, s.key));
    Ok(out)
}

pub(super) fn coverage(
    conn: &Connection,
    from: Slot,
    to: Slot,
) -> Result<Vec<SlotCoverage>, StoreError> {
    let ctx = "read slot coverage";
    let mut st = conn
        .prepare_cached(
            "SELECT slot, status FROM slots WHERE slot >= ?1 AND slot < ?2 ORDER BY slot",
        )
        .map_err(StoreError::db(ctx))?;
    let rows = st
        .query_map(params![from.0, to.0], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(StoreError::db(ctx))?;
    let mut out = Vec::new();
    for r in rows {
        let (slot, status) = r.map_err(StoreError::db(ctx))?;
        let status = u8::try_from(status)
            .ok()
            .and_then(SlotStatus::from_code)
            .ok_or_else(|| StoreError::corrupt("slots.status", format!("status {status}")))?;
        out.push(SlotCoverage {
            slot: Slot(slot),
            status,
        });
    }
    Ok(out)
}

pub(super) fn usage(conn: &Connection, q: &UsageQuery) -> Result<Vec<UsageTotal>, StoreError> {
    let ctx = "read usage totals";
    let h0 = q.from.as_second().div_euclid(3600);
    let h1 = q.to.as_second().div_euclid(3600);
    // Hour → local bucket, computed once per hour.
    let mut buckets: HashMap<i64, Date> = HashMap::new();
    let mut totals: BTreeMap<(u32, u16, u8, Date), (u64, u64)> = BTreeMap::new();
    let mut add = |hour: i64, tenant: i64, realm: i64, dir: i64, bytes: i64, packets: i64| {
        let bucket = match buckets.get(&hour) {
            Some(d) => *d,
            None => {
                let t = Timestamp::from_second(hour * 3600)
                    .map_err(|e| StoreError::corrupt("hourly.hour", e.to_string()))?;
                let date = t.to_zoned(q.zone.clone()).date();
                let d = match q.bucket {
                    Bucket::Day => date,
                    Bucket::Month => date.first_of_month(),
                };
                buckets.insert(hour, d);
                d
            }
        };
        let key = (
            tenant_of(tenant, "hourly.tenant")?.0,
            realm_of(realm, "hourly.realm")?.0,
            direction_of(dir, "hourly.dir")?.code(),
            bucket,
        );
        let e = totals.entry(key).or_default();
        e.0 = e.0.saturating_add(u64_of(bytes, "hourly.bytes")?);
        e.1 = e.1.saturating_add(u64_of(packets, "hourly.packets")?);
        Ok::<(), StoreError>(())
    };
    type HourRow = (i64, i64, i64, i64, i64, i64);
    let row = |r: &Row<'_>| -> rusqlite::Result<HourRow> {
        Ok((
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
        ))
    };
    match &q.tenants {
        Tenants::All => {
            let mut st = conn
                .prepare_cached(
                    "SELECT hour, tenant, realm, dir, bytes, packets FROM hourly
                     WHERE hour >= ?1 AND hour < ?2",
                )
                .map_err(StoreError::db(ctx))?;
            for r in st
                .query_map(params![h0, h1], row)
                .map_err(StoreError::db(ctx))?
            {
                let (h, t, re, d, b, p) = r.map_err(StoreError::db(ctx))?;
                add(h, t, re, d, b, p)?;
            }
        }
        Tenants::Only(tenants) => {
            let mut st = conn
                .prepare_cached(
                    "SELECT hour, tenant, realm, dir, bytes, packets FROM hourly
                     WHERE hour = ?1 AND tenant = ?2",
                )
                .map_err(StoreError::db(ctx))?;
            for t in tenants {
                for h in h0..h1 {
                    for r in st
                        .query_map(params![h, t.0], row)
                        .map_err(StoreError::db(ctx))?
                    {
                        let (h, t, re, d, b, p) = r.map_err(StoreError::db(ctx))?;
                        add(h, t, re, d, b, p)?;
                    }
                }
            }
        }
    }
    Ok(totals
        .into_iter()
        .filter_map(|((tenant, realm, dir, bucket), (bytes, packets))| {
            Some(UsageTotal {
                tenant: TenantId(tenant),
                realm: RealmId(realm),
                direction: Direction::from_code(dir)?,
                bucket,
                bytes,
                packets,
            })
        })
        .collect())
}

pub(super) fn last_state(conn: &Connection) -> Result<Option<StoredState>, StoreError> {
    conn.query_row(
        "SELECT sequence, blob FROM accounting_state WHERE id = 1",
        [],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
    )
    .optional()
    .map_err(StoreError::db("read the accounting state"))?
    .map(|(seq, blob)| {
        Ok(StoredState {
            sequence: u64_of(seq, "accounting_state.sequence")?,
            blob,
        })
    })
    .transpose()
}

pub(super) fn batch_sequences(conn: &Connection) -> Result<Vec<u64>, StoreError> {
    let ctx = "read batch sequences";
    let mut st = conn
        .prepare("SELECT sequence FROM batches ORDER BY sequence")
        .map_err(StoreError::db(ctx))?;
    let rows = st
        .query_map([], |r| r.get::<_, i64>(0))
        .map_err(StoreError::db(ctx))?;
    rows.map(|r| u64_of(r.map_err(StoreError::db(ctx))?, "batches.sequence"))
        .collect()
}

pub(super) fn frozen(conn: &Connection, label: &str) -> Result<Option<FrozenPeriod>, StoreError> {
    let ctx = format!("read frozen period {label}");
    let row = conn
        .query_row(
            "SELECT start_ms, end_ms, frozen_at_ms, bill FROM frozen_periods WHERE label = ?1",
            [label],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .optional()
        .map_err(StoreError::db(ctx))?;
    let Some((s, e, f, bill)) = row else {
        return Ok(None);
    };
    let ts = |ms: i64, col: &str| {
        Timestamp::from_millisecond(ms)
            .map_err(|err| StoreError::corrupt(format!("frozen_periods.{col}"), err.to_string()))
    };
    Ok(Some(FrozenPeriod {
        label: label.to_string(),
        start: ts(s, "start_ms")?,
        end: ts(e, "end_ms")?,
        frozen_at: ts(f, "frozen_at_ms")?,
        bill,
    }))
}
