//! Retention: the marks first, then whole partitions dropped.
//!
//! Every read filters by the retention marks (as the SQLite store's marks
//! tell removed time from idle time), so data before a mark is gone for
//! readers the moment the mark is written. The space comes back by
//! `ALTER TABLE … DROP PARTITION` for every month (year, for the daily
//! rollup) that ends at or before the cut, which works on every ClickHouse
//! version and costs nothing; the rows of the month the cut falls in stay
//! on disk, invisible, until their month is dropped in turn. A server with
//! `TTL` (19.6+) could drop them too; the marks make that unnecessary for
//! correctness, so this store does not depend on it.

use crate::client::{truncated, Client};
use crate::read::{marks, partition_end};
use crate::rowbinary::{Reader, Writer};
use accounting::Slot;
use history::planning::Marks;
use history::{Retention, RetentionReport, StoreError};
use jiff::{SignedDuration, Timestamp};

fn cutoff(now: Timestamp, keep: SignedDuration, field: &str) -> Result<Timestamp, StoreError> {
    if keep <= SignedDuration::ZERO {
        return Err(StoreError::Invalid {
            field: format!("retention.{field}"),
            problem: format!("{keep:#} is not a positive duration"),
        });
    }
    Ok(now.checked_sub(keep).unwrap_or(Timestamp::MIN))
}

fn count(client: &Client, sql: &str) -> Result<u64, StoreError> {
    let out = client.query(&format!("{sql} FORMAT RowBinary"), "retention: count")?;
    Reader::new(&out).u64().map_err(truncated("retention"))
}

/// Drops the partitions of `table` that end at or before `cut` (in the
/// table's time unit: `per` slots each).
fn drop_before(client: &Client, table: &str, cut_slot: i64) -> Result<(), StoreError> {
    let sql = format!(
        "SELECT DISTINCT partition_id FROM system.parts
         WHERE database = '{}' AND table = '{table}' AND active FORMAT TSV",
        client.db
    );
    let out = client.query(&sql, "retention: list partitions")?;
    for id in String::from_utf8_lossy(&out).lines() {
        let id = id.trim();
        if partition_end(id).is_some_and(|end| end <= cut_slot) {
            client.query(
                &format!("ALTER TABLE {}.{table} DROP PARTITION {id}", client.db),
                &format!("retention: drop partition {id} of {table}"),
            )?;
        }
    }
    Ok(())
}

pub fn apply(
    client: &Client,
    now: Timestamp,
    r: &Retention,
) -> Result<RetentionReport, StoreError> {
    let raw = Slot::containing(cutoff(now, r.raw, "raw")?);
    let hourly = cutoff(now, r.hourly, "hourly")?
        .as_second()
        .div_euclid(3600);
    let day = cutoff(now, r.daily, "daily")?
        .as_second()
        .div_euclid(3600)
        .div_euclid(24);
    let db = &client.db;
    let mut report = RetentionReport::default();
    let sql = format!("SELECT max(end_ms), count() FROM {db}.frozen FORMAT RowBinary");
    let out = client.query(&sql, "retention: read frozen periods")?;
    let mut rd = Reader::new(&out);
    let end = rd.i64().map_err(truncated("frozen"))?;
    let frozen = rd.u64().map_err(truncated("frozen"))?;
    // Raw samples go only up to the end of the last frozen period.
    let raw = if frozen == 0 {
        report.raw_held_back = Some("no period is frozen yet; raw samples are kept".into());
        None
    } else {
        let frozen = Slot(end.div_euclid(accounting::SAMPLE_MILLIS));
        if frozen < raw {
            report.raw_held_back = Some(format!(
                "raw samples after {frozen} belong to a period that is not frozen"
            ));
        }
        Some(raw.min(frozen))
    };
    let old = marks(client)?;
    // What readers stop seeing: counted as the SQLite store counts its
    // deletes (samples by slot and key, rollups by tenant and hour or day).
    if let Some(cut) = raw {
        let from = old.raw.map_or(i64::MIN, |m| m.0);
        report.samples_deleted = count(
            client,
            &format!(
                "SELECT count() FROM (SELECT 1 FROM {db}.samples WHERE slot >= {from} AND slot < {}
                 GROUP BY slot, tenant, realm, direction, band, source)",
                cut.0
            ),
        )?;
        report.raw_cutoff = Some(cut);
    }
    let from = old.hourly.unwrap_or(i64::MIN);
    report.hourly_deleted = count(
        client,
        &format!(
            "SELECT count() FROM (SELECT 1 FROM {db}.hourly WHERE hour >= {from} AND hour < {hourly}
             GROUP BY tenant, hour)"
        ),
    )?;
    let from = old.daily.unwrap_or(i64::MIN);
    report.daily_deleted = count(
        client,
        &format!(
            "SELECT count() FROM (SELECT 1 FROM {db}.daily WHERE day >= {from} AND day < {day}
             GROUP BY tenant, day)"
        ),
    )?;
    // The marks: from now on readers do not see what lies before them.
    let to = Marks {
        raw,
        hourly: Some(hourly),
        daily: Some(day),
    };
    let mut w = Writer::default();
    let values = [
        ("raw", to.raw.map(|s| s.0)),
        ("hourly", to.hourly),
        ("daily", to.daily),
    ];
    for (name, value) in values {
        if let Some(v) = value {
            w.bytes(name.as_bytes());
            w.i64(v);
        }
    }
    let id = format!("tollgate-{db}-marks-{}", now.as_millisecond());
    client.insert("marks", &w.buf, &id, "retention: write the marks")?;
    // Then the space: whole partitions before each cut.
    if let Some(cut) = raw {
        drop_before(client, "samples", cut.0)?;
        drop_before(client, "slots", cut.0)?;
    }
    drop_before(client, "hourly", hourly * 12)?;
    drop_before(client, "daily", day * 288)?;
    Ok(report)
}
