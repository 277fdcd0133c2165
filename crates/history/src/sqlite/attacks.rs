//! The `attacks` table: the guard's ended attacks ([`crate::attacks`]).

use crate::attacks::{join, split, AttackRow, MAX_ATTACKS};
use crate::error::StoreError;
use jiff::Timestamp;
use rusqlite::{Connection, TransactionBehavior};

/// `INSERT OR IGNORE` on the key: a second record of the same attack
/// changes nothing. One transaction, fsynced like every commit.
pub(super) fn record(conn: &mut Connection, a: &AttackRow) -> Result<bool, StoreError> {
    a.check()?;
    let ctx = format!("record the attack on {}", a.target);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::db(ctx.clone()))?;
    let n = tx
        .execute(
            "INSERT OR IGNORE INTO attacks (started_ms, target, direction, ended_ms, kind,
                 peak_pps, peak_bps, rungs, sources, record)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            rusqlite::params![
                a.started.as_millisecond(),
                a.target,
                a.direction,
                a.ended.as_millisecond(),
                a.kind,
                i64::try_from(a.peak_pps).unwrap_or(i64::MAX),
                i64::try_from(a.peak_bps).unwrap_or(i64::MAX),
                join(&a.rungs),
                join(&a.sources),
                a.record,
            ],
        )
        .map_err(StoreError::db(ctx.clone()))?;
    tx.commit().map_err(StoreError::db(ctx))?;
    Ok(n == 1)
}

pub(super) fn read(
    conn: &Connection,
    since: Timestamp,
    limit: usize,
) -> Result<Vec<AttackRow>, StoreError> {
    let limit = limit.min(MAX_ATTACKS);
    let ctx = "read the attacks";
    let mut st = conn
        .prepare(
            "SELECT started_ms, ended_ms, target, direction, kind, peak_pps, peak_bps,
                    rungs, sources, record
             FROM attacks WHERE ended_ms >= ?1
             ORDER BY ended_ms DESC, started_ms DESC, target DESC, direction DESC LIMIT ?2",
        )
        .map_err(StoreError::db(ctx))?;
    let rows = st
        .query_map(
            rusqlite::params![since.as_millisecond(), limit as i64],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, i64>(5)?,
                    r.get::<_, i64>(6)?,
                    r.get::<_, String>(7)?,
                    r.get::<_, String>(8)?,
                    r.get::<_, String>(9)?,
                ))
            },
        )
        .map_err(StoreError::db(ctx))?;
    let mut out = Vec::new();
    for row in rows {
        let (started, ended, target, direction, kind, pps, bps, rungs, sources, record) =
            row.map_err(StoreError::db(ctx))?;
        let ts = |ms: i64, col: &str| {
            Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt {
                place: format!("attacks.{col}"),
                problem: e.to_string(),
            })
        };
        out.push(AttackRow {
            started: ts(started, "started_ms")?,
            ended: ts(ended, "ended_ms")?,
            target,
            direction,
            kind,
            peak_pps: pps.max(0) as u64,
            peak_bps: bps.max(0) as u64,
            rungs: split(&rungs),
            sources: split(&sources),
            record,
        });
    }
    out.reverse();
    Ok(out)
}
