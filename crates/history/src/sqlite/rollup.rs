//! The rollups an append keeps up to date: per tenant per hour and day
//! (`hourly`, `daily`), every tenant per hour and day (`tenants_hourly`,
//! `tenants_daily`); a tenant-day already built into its `hours_by_day`
//! row (see [`super::hours`]) has its hours added there instead of to
//! `hourly` and `tenants_hourly`.
//!
//! Each row is inserted if new, else read, added to and rewritten; the
//! blobs are small (a tenant's realms, or one entry per tenant), so the
//! read-modify-write costs about what an SQL upsert would.

use super::codec::{self, DayHourTotal, RealmTotal, HOURS_PER_DAY};
use super::hours;
use crate::error::StoreError;
use crate::store::TenantTotal;
use accounting::Sample;
use net_types::TenantId;
use rusqlite::{params, OptionalExtension, Transaction};
use std::collections::BTreeMap;

/// The statements of one blob table, keyed by its integer primary key.
struct BlobTable {
    insert: &'static str,
    select: &'static str,
    update: &'static str,
    place: &'static str,
}

macro_rules! blob_table {
    ($table:literal, $key:literal) => {
        BlobTable {
            insert: concat!(
                "INSERT INTO ",
                $table,
                " (",
                $key,
                ", totals) VALUES (?1, ?2) ON CONFLICT (",
                $key,
                ") DO NOTHING"
            ),
            select: concat!("SELECT totals FROM ", $table, " WHERE ", $key, " = ?1"),
            update: concat!("UPDATE ", $table, " SET totals = ?2 WHERE ", $key, " = ?1"),
            place: concat!($table, ".totals"),
        }
    };
}

const HOURLY: BlobTable = blob_table!("hourly", "id");
const DAILY: BlobTable = blob_table!("daily", "id");
const TENANTS_HOURLY: BlobTable = blob_table!("tenants_hourly", "hour");
const TENANTS_DAILY: BlobTable = blob_table!("tenants_daily", "day");

/// Inserts `blob` under `key`, or, if the row exists, hands its blob to
/// `merge` and stores what `merge` writes into the buffer instead.
fn upsert(
    tx: &Transaction<'_>,
    table: &BlobTable,
    key: i64,
    blob: &[u8],
    merge: impl FnOnce(&[u8], &mut Vec<u8>) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let ctx = || format!("update {}", table.place);
    let inserted = tx
        .prepare_cached(table.insert)
        .and_then(|mut st| st.execute(params![key, blob]))
        .map_err(StoreError::db(ctx()))?;
    if inserted == 1 {
        return Ok(());
    }
    let old: Option<Vec<u8>> = tx
        .prepare_cached(table.select)
        .and_then(|mut st| st.query_row([key], |r| r.get(0)).optional())
        .map_err(StoreError::db(ctx()))?;
    let mut merged = Vec::new();
    merge(old.as_deref().unwrap_or_default(), &mut merged)?;
    tx.prepare_cached(table.update)
        .and_then(|mut st| st.execute(params![key, merged]))
        .map_err(StoreError::db(ctx()))?;
    Ok(())
}

fn upsert_realm_totals(
    tx: &Transaction<'_>,
    table: &BlobTable,
    id: i64,
    totals: &[RealmTotal],
    buf: &mut Vec<u8>,
) -> Result<(), StoreError> {
    buf.clear();
    codec::encode_realm_totals(totals, buf);
    upsert(tx, table, id, buf, |old, out| {
        let mut sum = Vec::new();
        codec::decode_realm_totals(old, table.place, &mut sum)?;
        codec::add_realm_totals(&mut sum, totals)?;
        codec::encode_realm_totals(&sum, out);
        Ok(())
    })
}

fn upsert_tenant_totals(
    tx: &Transaction<'_>,
    table: &BlobTable,
    time: i64,
    totals: &[TenantTotal],
    buf: &mut Vec<u8>,
) -> Result<(), StoreError> {
    buf.clear();
    codec::encode_tenant_totals(totals, buf);
    upsert(tx, table, time, buf, |old, out| {
        let mut sum = Vec::new();
        codec::decode_tenant_totals(old, table.place, |t| sum.push(t))?;
        codec::add_tenant_totals(&mut sum, totals)?;
        codec::encode_tenant_totals(&sum, out);
        Ok(())
    })
}

/// The rollups of one append, gathered hour by hour and written at the
/// end, so that each day's row and each all-tenant row is rewritten once
/// per append rather than once per tenant and hour.
pub(super) struct Rollups {
    daily: BTreeMap<(i64, u32), Vec<RealmTotal>>,
    tenants_hourly: BTreeMap<i64, Vec<TenantTotal>>,
    tenants_daily: BTreeMap<i64, Vec<TenantTotal>>,
    /// What the append adds to the `hours_by_day` rows of built
    /// tenant-days (see [`super::hours`]): late data only.
    hours_by_day: BTreeMap<(i64, u32), Vec<DayHourTotal>>,
    /// Up to where `hours_by_day` is built, read once per append.
    hours_mark: Option<i64>,
    buf: Vec<u8>,
}

impl Rollups {
    /// The rollups of an append in `tx`.
    pub(super) fn new(tx: &Transaction<'_>) -> Result<Rollups, StoreError> {
        Ok(Rollups {
            daily: BTreeMap::new(),
            tenants_hourly: BTreeMap::new(),
            tenants_daily: BTreeMap::new(),
            hours_by_day: BTreeMap::new(),
            hours_mark: hours::mark(tx)?,
            buf: Vec::new(),
        })
    }

    /// Rolls up one tenant's samples of one hour: writes the hourly row
    /// now, and keeps the rest for [`Rollups::store`].
    pub(super) fn add_hour(
        &mut self,
        tx: &Transaction<'_>,
        (hour, tenant): (i64, u32),
        samples: &[Sample],
    ) -> Result<(), StoreError> {
        let mut realms: Vec<RealmTotal> = Vec::new();
        let mut total = TenantTotal::new(TenantId(tenant));
        for s in samples {
            let (bytes, packets) = (u128::from(s.bytes), u128::from(s.packets));
            codec::add_realm_totals(
                &mut realms,
                &[RealmTotal {
                    realm: s.key.realm,
                    direction: s.key.direction,
                    bytes,
                    packets,
                }],
            )?;
            total.add(s.key.direction, bytes, packets)?;
        }
        let day = hour.div_euclid(HOURS_PER_DAY);
        codec::add_realm_totals(self.daily.entry((day, tenant)).or_default(), &realms)?;
        // A built tenant-day's hours live in its `hours_by_day` row only
        // (see [`super::hours`]); any other hour in `hourly`.
        if hours::built(self.hours_mark, day, tenant) {
            let of_day = hour.rem_euclid(HOURS_PER_DAY) as u8;
            let entry = self.hours_by_day.entry((day, tenant)).or_default();
            codec::add_day_hours(entry, of_day, &realms)?;
        } else {
            let id = codec::new_row_id(hour, tenant)?;
            upsert_realm_totals(tx, &HOURLY, id, &realms, &mut self.buf)?;
            // An append visits hours in order and a tenant once per hour,
            // in tenant order, so each hour's list comes out sorted by
            // tenant.
            self.tenants_hourly.entry(hour).or_default().push(total);
        }
        self.tenants_daily.entry(day).or_default().push(total);
        Ok(())
    }

    /// Writes the daily, `hours_by_day` and all-tenant rows.
    pub(super) fn store(mut self, tx: &Transaction<'_>) -> Result<(), StoreError> {
        for ((day, tenant), realms) in &self.daily {
            let id = codec::new_row_id(*day, *tenant)?;
            upsert_realm_totals(tx, &DAILY, id, realms, &mut self.buf)?;
        }
        for (&at, totals) in &self.hours_by_day {
            hours::add(tx, at, totals, &mut self.buf)?;
        }
        for (hour, totals) in &self.tenants_hourly {
            upsert_tenant_totals(tx, &TENANTS_HOURLY, *hour, totals, &mut self.buf)?;
        }
        for (day, totals) in &mut self.tenants_daily {
            // A day's list holds each tenant once per hour: sort and add up.
            totals.sort_by_key(|t| t.tenant);
            let mut summed: Vec<TenantTotal> = Vec::with_capacity(totals.len());
            for chunk in totals.chunk_by(|a, b| a.tenant == b.tenant) {
                let mut sum = chunk[0];
                for t in &chunk[1..] {
                    codec::add_tenant_total(&mut sum, t)?;
                }
                summed.push(sum);
            }
            upsert_tenant_totals(tx, &TENANTS_DAILY, *day, &summed, &mut self.buf)?;
        }
        Ok(())
    }
}
