//! Retention marks: up to where retention removed each kind of data.
//!
//! [`Store::usage`](crate::Store::usage) reads whole UTC days from the daily
//! rollup, whole hours from the hourly one and the slots at the edges of
//! its buckets from the 5-minute samples. Once retention has removed the
//! samples (or the hourly rollup) of a time, an edge there can only be read
//! from a coarser rollup, and the answer says so (`exact: false`). The marks
//! tell a removed time from a time without traffic; retention writes them
//! before it deletes, so a crash in between errs on the side of "removed".

use super::codec::{self, Span, HOURS_PER_DAY, SLOTS_PER_HOUR};
use crate::error::StoreError;
use accounting::{Sample, Slot};
use net_types::TenantId;
use rusqlite::{params, Connection, OptionalExtension, Transaction};

/// Before these, the data of each kind is gone (`None`: nothing removed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Marks {
    /// The first slot whose raw samples are kept.
    pub raw: Option<Slot>,
    /// The first hour whose hourly rollups are kept.
    pub hourly: Option<i64>,
    /// The first UTC day whose daily rollups are kept.
    pub daily: Option<i64>,
}

impl Marks {
    /// Whether the raw samples of `slot` are kept.
    pub fn raw_kept(&self, slot: i64) -> bool {
        self.raw.is_none_or(|m| slot >= m.0)
    }

    /// Whether the hourly rollups of `hour` are kept.
    pub fn hourly_kept(&self, hour: i64) -> bool {
        self.hourly.is_none_or(|m| hour >= m)
    }

    /// Whether the daily rollups of `day` are kept.
    pub fn daily_kept(&self, day: i64) -> bool {
        self.daily.is_none_or(|m| day >= m)
    }
}

const RAW: &str = "raw";
const HOURLY: &str = "hourly";
const DAILY: &str = "daily";

pub(super) fn read(conn: &Connection) -> Result<Marks, StoreError> {
    let mut st = conn
        .prepare_cached("SELECT before FROM retention_marks WHERE name = ?1")
        .map_err(StoreError::db("read the retention marks"))?;
    let mut get = |name: &str| -> Result<Option<i64>, StoreError> {
        st.query_row([name], |r| r.get(0))
            .optional()
            .map_err(StoreError::db("read the retention marks"))
    };
    Ok(Marks {
        raw: get(RAW)?.map(Slot),
        hourly: get(HOURLY)?,
        daily: get(DAILY)?,
    })
}

/// Moves the marks forward (never back) to `marks`' values.
pub(super) fn advance(tx: &Transaction<'_>, marks: &Marks) -> Result<(), StoreError> {
    let values = [
        (RAW, marks.raw.map(|s| s.0)),
        (HOURLY, marks.hourly),
        (DAILY, marks.daily),
    ];
    for (name, value) in values {
        let Some(value) = value else { continue };
        tx.execute(
            "INSERT INTO retention_marks (name, before) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET before = max(before, excluded.before)",
            params![name, value],
        )
        .map_err(StoreError::db("write the retention marks"))?;
    }
    Ok(())
}

/// The first and last time (hour or day) of a packed table, by its ids.
fn span_of(tx: &Transaction<'_>, table: &str) -> Result<Option<(i64, i64)>, StoreError> {
    let ctx = format!("read the time range of {table}");
    let (lo, hi): (Option<i64>, Option<i64>) = tx
        .query_row(
            &format!("SELECT (SELECT MIN(id) FROM {table}), (SELECT MAX(id) FROM {table})"),
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(StoreError::db(ctx))?;
    Ok(lo
        .zip(hi)
        .map(|(lo, hi)| (codec::split_row_id(lo).0, codec::split_row_id(hi).0)))
}

/// The first slot stored in any row of `span`'s table at its first time.
fn first_slot(tx: &Transaction<'_>, span: Span, time: i64) -> Result<Option<i64>, StoreError> {
    let ctx = "read the first stored samples";
    let mut st = tx
        .prepare(&format!(
            "SELECT id, samples FROM {} WHERE id >= ?1 AND id < ?2",
            span.table()
        ))
        .map_err(StoreError::db(ctx))?;
    let range = params![codec::first_row_id(time), codec::first_row_id(time + 1)];
    let mut rows = st.query(range).map_err(StoreError::db(ctx))?;
    let mut first: Option<i64> = None;
    let mut samples: Vec<Sample> = Vec::new();
    let everything = (Slot(i64::MIN), Slot(i64::MAX));
    while let Some(r) = rows.next().map_err(StoreError::db(ctx))? {
        let id: i64 = r.get(0).map_err(StoreError::db(ctx))?;
        let blob = r.get_ref(1).and_then(|v| Ok(v.as_blob()?));
        samples.clear();
        let tenant = TenantId(codec::split_row_id(id).1);
        let blob = blob.map_err(StoreError::db(ctx))?;
        codec::decode_samples((span, time), tenant, blob, everything, &mut samples)?;
        if let Some(s) = samples.first() {
            first = Some(first.map_or(s.slot.0, |f| f.min(s.slot.0)));
        }
    }
    Ok(first)
}

/// The marks of a database written before they existed, in which
/// retention may already have removed data: everything before the first
/// data still stored of each kind counts as removed (if a finer kind holds
/// nothing at all, everything up to the end of the coarser one does). Only
/// what retention could have left behind is affected: an edge before the
/// first stored sample is read from a rollup and marked inexact.
pub(super) fn initial(tx: &Transaction<'_>) -> Result<(), StoreError> {
    let hourly = span_of(tx, "hourly")?;
    let daily = span_of(tx, "daily")?;
    let hours = span_of(tx, "samples")?;
    let days = span_of(tx, "samples_days")?;
    let mut raw: Option<i64> = None;
    if let Some((h, _)) = hours {
        raw = first_slot(tx, Span::Hour, h)?;
    }
    if let Some((d, _)) = days {
        if let Some(s) = first_slot(tx, Span::Day, d)? {
            raw = Some(raw.map_or(s, |r| r.min(s)));
        }
    }
    let after_hourly = hourly.map(|(_, hi)| (hi + 1) * SLOTS_PER_HOUR);
    let after_daily = daily.map(|(_, hi)| (hi + 1) * HOURS_PER_DAY);
    let marks = Marks {
        raw: raw
            .or_else(|| after_hourly.max(after_daily.map(|h| h * SLOTS_PER_HOUR)))
            .map(Slot),
        hourly: hourly.map(|(lo, _)| lo).or(after_daily),
        daily: daily.map(|(lo, _)| lo),
    };
    advance(tx, &marks)
}
