//! Converting a version 1 database (one row per sample and per rollup key)
//! to the packed version 2, inside the migration's transaction.
//!
//! The rollups are converted from the version 1 rollups, not recomputed
//! from the raw samples: retention may already have removed raw samples
//! whose rollups are still kept.

use super::codec::Span;
use super::codec::{self, RealmTotal, SLOTS_PER_HOUR};
use super::write::move_row;
use crate::error::StoreError;
use crate::store::TenantTotal;
use accounting::{Band, Direction, Sample, Slot, Source, UsageKey};
use net_types::{RealmId, TenantId};
use rusqlite::{params, Transaction};

const CONTEXT: &str = "migrate the history database to version 2";

fn corrupt(place: &'static str, v: i64) -> StoreError {
    StoreError::corrupt(place, format!("{v} is out of range"))
}

pub(super) fn from_v1(tx: &Transaction<'_>) -> Result<(), StoreError> {
    samples(tx)?;
    rollup(tx, "hourly")?;
    rollup(tx, "daily")
}

/// Streams the samples one day and tenant at a time (at most 288 slots of
/// one tenant's keys in memory) into packed hours.
fn samples(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let mut st = tx
        .prepare(
            "SELECT day, tenant, realm, dir, band, slot, bytes, packets FROM samples_v1
             ORDER BY day, tenant",
        )
        .map_err(StoreError::db(CONTEXT))?;
    let mut rows = st.query([]).map_err(StoreError::db(CONTEXT))?;
    let mut pending: Vec<Sample> = Vec::new();
    let mut current = None;
    let mut blob = Vec::new();
    let mut flush = |pending: &mut Vec<Sample>| -> Result<(), StoreError> {
        pending.sort_by_key(|s| (s.slot, s.key));
        let hour = |s: &Sample| s.slot.0.div_euclid(SLOTS_PER_HOUR);
        for chunk in pending.chunk_by(|a, b| hour(a) == hour(b)) {
            let key = (hour(&chunk[0]), chunk[0].key.tenant.0);
            move_row(tx, (Span::Hour, key.0, key.1), chunk, &mut blob)?;
        }
        pending.clear();
        Ok(())
    };
    while let Some(r) = rows.next().map_err(StoreError::db(CONTEXT))? {
        let v = |i| r.get::<_, i64>(i).map_err(StoreError::db(CONTEXT));
        // A negative count is corrupt, not a huge one.
        let count = |i, place| {
            let x = v(i)?;
            u64::try_from(x).map_err(|_| corrupt(place, x))
        };
        let (day, tenant) = (v(0)?, v(1)?);
        if current != Some((day, tenant)) {
            flush(&mut pending)?;
            current = Some((day, tenant));
        }
        let (realm, dir, band) = (v(2)?, v(3)?, v(4)?);
        pending.push(Sample {
            slot: Slot(v(5)?),
            key: UsageKey {
                tenant: TenantId(
                    u32::try_from(tenant).map_err(|_| corrupt("samples_v1.tenant", tenant))?,
                ),
                realm: RealmId(
                    u16::try_from(realm).map_err(|_| corrupt("samples_v1.realm", realm))?,
                ),
                direction: u8::try_from(dir)
                    .ok()
                    .and_then(Direction::from_code)
                    .ok_or_else(|| corrupt("samples_v1.dir", dir))?,
                band: u8::try_from(band)
                    .ok()
                    .and_then(Band::from_code)
                    .ok_or_else(|| corrupt("samples_v1.band", band))?,
                source: Source::Kernel,
            },
            bytes: count(6, "samples_v1.bytes")?,
            packets: count(7, "samples_v1.packets")?,
        });
    }
    flush(&mut pending)
}

/// Converts `hourly_v1` or `daily_v1` into the packed per-tenant rows and
/// the all-tenant rows.
fn rollup(tx: &Transaction<'_>, table: &str) -> Result<(), StoreError> {
    let (time, all) = match table {
        "hourly" => ("hour", "tenants_hourly"),
        _ => ("day", "tenants_daily"),
    };
    let mut st = tx
        .prepare(&format!(
            "SELECT {time}, tenant, realm, dir, bytes, packets FROM {table}_v1
             ORDER BY {time}, tenant, realm, dir"
        ))
        .map_err(StoreError::db(CONTEXT))?;
    let mut insert = tx
        .prepare(&format!("INSERT INTO {table} (id, totals) VALUES (?1, ?2)"))
        .map_err(StoreError::db(CONTEXT))?;
    let mut insert_all = tx
        .prepare(&format!(
            "INSERT INTO {all} ({time}, totals) VALUES (?1, ?2)"
        ))
        .map_err(StoreError::db(CONTEXT))?;
    let mut rows = st.query([]).map_err(StoreError::db(CONTEXT))?;
    // One tenant's realms, and every tenant of the current hour or day.
    let mut realms: Vec<RealmTotal> = Vec::new();
    let mut tenants: Vec<TenantTotal> = Vec::new();
    let mut current: Option<(i64, u32)> = None;
    let mut blob = Vec::new();
    let mut flush_tenant = |key: (i64, u32), realms: &mut Vec<RealmTotal>| {
        blob.clear();
        codec::encode_realm_totals(realms, &mut blob);
        let id = codec::new_row_id(key.0, key.1)?;
        realms.clear();
        insert
            .execute(params![id, blob])
            .map_err(StoreError::db(CONTEXT))
    };
    let mut flush_time = |t: i64, tenants: &mut Vec<TenantTotal>| {
        let mut blob = Vec::new();
        codec::encode_tenant_totals(tenants, &mut blob);
        tenants.clear();
        insert_all
            .execute(params![t, blob])
            .map_err(StoreError::db(CONTEXT))
    };
    while let Some(r) = rows.next().map_err(StoreError::db(CONTEXT))? {
        let v = |i| r.get::<_, i64>(i).map_err(StoreError::db(CONTEXT));
        let (t, tenant, realm, dir) = (v(0)?, v(1)?, v(2)?, v(3)?);
        let tenant = u32::try_from(tenant).map_err(|_| corrupt("rollup tenant", tenant))?;
        if let Some(key) = current.filter(|&k| k != (t, tenant)) {
            flush_tenant(key, &mut realms)?;
            if key.0 != t {
                flush_time(key.0, &mut tenants)?;
            }
        }
        current = Some((t, tenant));
        let direction = u8::try_from(dir)
            .ok()
            .and_then(Direction::from_code)
            .ok_or_else(|| corrupt("rollup dir", dir))?;
        let count = |i, place| {
            let x = v(i)?;
            u128::try_from(x).map_err(|_| corrupt(place, x))
        };
        let (bytes, packets) = (count(4, "rollup bytes")?, count(5, "rollup packets")?);
        realms.push(RealmTotal {
            realm: RealmId(u16::try_from(realm).map_err(|_| corrupt("rollup realm", realm))?),
            direction,
            bytes,
            packets,
        });
        if tenants.last().is_none_or(|x| x.tenant.0 != tenant) {
            tenants.push(TenantTotal::new(TenantId(tenant)));
        }
        if let Some(x) = tenants.last_mut() {
            x.add(direction, bytes, packets)?;
        }
    }
    if let Some(key) = current {
        flush_tenant(key, &mut realms)?;
        flush_time(key.0, &mut tenants)?;
    }
    Ok(())
}

/// Version 9: every sample row still in format 1 rewritten in format 2
/// ([`super::series`]), the same samples in fewer bytes. Rows are read and
/// rewritten in id order, a page of ids at a time, so memory stays at one
/// page of rows whatever the file's size.
pub(super) fn to_series(tx: &Transaction<'_>) -> Result<(), StoreError> {
    const CONTEXT: &str = "migrate the history database to version 9";
    const PAGE: i64 = 4_096;
    let db = || StoreError::db(CONTEXT);
    for span in [Span::Hour, Span::Day] {
        let table = span.table();
        let mut select = tx
            .prepare(&format!(
                "SELECT id, samples FROM {table} WHERE id > ?1 ORDER BY id LIMIT {PAGE}"
            ))
            .map_err(db())?;
        let mut update = tx
            .prepare(&format!("UPDATE {table} SET samples = ?2 WHERE id = ?1"))
            .map_err(db())?;
        let mut after = i64::MIN;
        let mut samples = Vec::new();
        let mut blob = Vec::new();
        loop {
            let rows: Vec<(i64, Vec<u8>)> = select
                .query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))
                .and_then(|rows| rows.collect())
                .map_err(db())?;
            let Some(&(last, _)) = rows.last() else {
                break;
            };
            for (id, old) in rows {
                if codec::samples_format(&old) == Some(2) {
                    continue;
                }
                let (time, tenant) = codec::split_row_id(id);
                samples.clear();
                let all = (Slot(i64::MIN), Slot(i64::MAX));
                codec::decode_samples((span, time), TenantId(tenant), &old, all, &mut samples)?;
                blob.clear();
                codec::encode_samples(span, time, &samples, &mut blob);
                update.execute(params![id, blob]).map_err(db())?;
            }
            after = last;
        }
    }
    day_hours_to_series(tx)
}

/// The same for `hours_by_day`: rows in format 1 rewritten by
/// [`codec::encode_day_hours`] (the series form when every sum fits in 64
/// bits).
fn day_hours_to_series(tx: &Transaction<'_>) -> Result<(), StoreError> {
    const CONTEXT: &str = "migrate the history database to version 9 (hours_by_day)";
    let db = || StoreError::db(CONTEXT);
    let mut select = tx
        .prepare("SELECT id, totals FROM hours_by_day WHERE id > ?1 ORDER BY id LIMIT 4096")
        .map_err(db())?;
    let mut update = tx
        .prepare("UPDATE hours_by_day SET totals = ?2 WHERE id = ?1")
        .map_err(db())?;
    let mut after = i64::MIN;
    let mut totals = Vec::new();
    let mut blob = Vec::new();
    loop {
        let rows: Vec<(i64, Vec<u8>)> = select
            .query_map([after], |r| Ok((r.get(0)?, r.get(1)?)))
            .and_then(|rows| rows.collect())
            .map_err(db())?;
        let Some(&(last, _)) = rows.last() else {
            return Ok(());
        };
        for (id, old) in rows {
            if old.first() != Some(&1) {
                continue;
            }
            totals.clear();
            codec::decode_day_hours(&old, "hours_by_day.totals", 0..24, &mut totals)?;
            blob.clear();
            codec::encode_day_hours(&totals, &mut blob);
            update.execute(params![id, blob]).map_err(db())?;
        }
        after = last;
    }
}

#[cfg(test)]
mod tests {
    use super::super::{schema, SqliteOptions, SqliteStore};
    use crate::store::*;
    use accounting::Slot;
    use jiff::tz::TimeZone;
    use net_types::TenantId;
    use rusqlite::Connection;

    #[test]
    fn a_version_1_database_is_converted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v1.sqlite");
        {
            let mut conn = Connection::open(&path).unwrap();
            schema::migrate_to(&mut conn, 1).unwrap();
            // Two tenants' samples in two hours (slot 300 is hour 25, day
            // 1), and a rollup hour whose raw samples retention removed.
            conn.execute_batch(
                "INSERT INTO samples VALUES
                    (1, 7, 1, 0, 0, 300, 1000, 10), (1, 7, 1, 1, 2, 300, 50, 1),
                    (1, 7, 1, 0, 0, 311, 2000, 20), (1, 9, 4, 1, 3, 312, 7, 1);
                 INSERT INTO hourly VALUES
                    (3, 7, 1, 0, 99, 9), (25, 7, 1, 0, 3000, 30), (25, 7, 1, 1, 50, 1),
                    (26, 9, 4, 1, 7, 1);
                 INSERT INTO daily VALUES
                    (0, 7, 1, 0, 99, 9), (1, 7, 1, 0, 3000, 30), (1, 7, 1, 1, 50, 1),
                    (1, 9, 4, 1, 7, 1);",
            )
            .unwrap();
        }
        let store = SqliteStore::open(&path, &SqliteOptions { cache_mib: 4 }).unwrap();
        assert_eq!(
            store.schema_version().unwrap(),
            super::super::SCHEMA_VERSION
        );
        let all = store
            .samples(&SampleQuery {
                tenants: Tenants::All,
                from: Slot(0),
                to: Slot(1000),
            })
            .unwrap();
        let got: Vec<_> = all
            .iter()
            .map(|s| (s.slot.0, s.key.tenant.0, s.bytes))
            .collect();
        assert_eq!(
            got,
            vec![(300, 7, 1000), (300, 7, 50), (311, 7, 2000), (312, 9, 7)]
        );
        let rollups = store.rollup_bytes().unwrap();
        let sums: Vec<u128> = rollups.iter().map(|r| r.1).collect();
        assert_eq!(sums, vec![3156, 3156, 3156, 3156]);
        let usage = store
            .usage(&UsageQuery {
                tenants: Tenants::Only(vec![TenantId(7)]),
                from: "1970-01-01T00:00Z".parse().unwrap(),
                to: "1970-01-03T00:00Z".parse().unwrap(),
                bucket: Bucket::Day,
                zone: TimeZone::UTC,
            })
            .unwrap();
        let got: Vec<_> = usage.iter().map(|u| (u.bucket.day(), u.bytes)).collect();
        assert_eq!(got, vec![(1, 99), (2, 3000), (2, 50)]);
        let v1_tables: i64 = store
            .connection()
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE name LIKE '%_v1'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(v1_tables, 0);
    }
}
