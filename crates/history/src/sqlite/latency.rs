//! Latency minutes in SQLite: three plain tables (schema 7), written in one
//! transaction per close, read by minute range (and tenant), removed with
//! the raw samples' retention.

use crate::error::StoreError;
use crate::latency::{self as lat, LatencyQuery, LatencyReport, RTT_FIGURES};
use latency::Minutes;
use rusqlite::{params, Connection};

/// Stores the rows of `m` that pass [`lat::check`]; refuses the rest.
pub(super) fn append(conn: &mut Connection, m: &Minutes) -> Result<LatencyReport, StoreError> {
    let (ok, refused) = lat::check(m);
    let ctx = "store latency minutes";
    let tx = conn.transaction().map_err(StoreError::db(ctx))?;
    {
        let mut rtt = tx
            .prepare_cached(
                "INSERT INTO latency_rtt VALUES
                 (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )
            .map_err(StoreError::db(ctx))?;
        for r in &ok.rtt {
            let c = lat::rtt_columns(r);
            let mut args: Vec<i64> = vec![r.minute, r.tenant.into(), r.realm.into()];
            args.extend_from_slice(&c);
            rtt.execute(rusqlite::params_from_iter(args))
                .map_err(StoreError::db(ctx))?;
        }
        let mut probe = tx
            .prepare_cached("INSERT INTO latency_probes VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .map_err(StoreError::db(ctx))?;
        for p in &ok.probes {
            let c = lat::probe_columns(p);
            probe
                .execute(params![p.minute, p.probe, p.sent, p.lost, c[0], c[1], c[2]])
                .map_err(StoreError::db(ctx))?;
        }
        let mut queue = tx
            .prepare_cached("INSERT INTO latency_queues VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)")
            .map_err(StoreError::db(ctx))?;
        for q in &ok.queues {
            let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            queue
                .execute(params![
                    q.minute,
                    q.class,
                    q.tenant.map_or(-1, i64::from),
                    q.label,
                    lat::micros(q.max_delay),
                    count(q.drops),
                    count(q.overlimits),
                    lat::micros(q.at_ceil),
                ])
                .map_err(StoreError::db(ctx))?;
        }
    }
    tx.commit().map_err(StoreError::db(ctx))?;
    Ok(LatencyReport {
        stored: ok.len() as u64,
        refused,
    })
}

/// The rows in the query's range, earliest first.
pub(super) fn read(conn: &Connection, q: &LatencyQuery) -> Result<Minutes, StoreError> {
    let ctx = "read latency minutes";
    let limit = i64::try_from(q.limit).unwrap_or(i64::MAX);
    let tenant = q.tenant.map_or(-1, i64::from);
    let mut out = Minutes::default();
    let mut st = conn
        .prepare_cached(
            "SELECT * FROM latency_rtt WHERE minute >= ?1 AND minute < ?2
             AND (?3 < 0 OR tenant = ?3) ORDER BY minute, tenant, realm LIMIT ?4",
        )
        .map_err(StoreError::db(ctx))?;
    let rows = st
        .query_map(params![q.from, q.to, tenant, limit], |row| {
            let mut c = [0i64; RTT_FIGURES];
            for (i, v) in c.iter_mut().enumerate() {
                *v = row.get(3 + i)?;
            }
            Ok((row.get::<_, i64>(0)?, row.get(1)?, row.get(2)?, c))
        })
        .map_err(StoreError::db(ctx))?;
    for r in rows {
        let (minute, tenant, realm, c) = r.map_err(StoreError::db(ctx))?;
        out.rtt.push(lat::rtt_row(minute, tenant, realm, &c)?);
    }
    if q.tenant.is_none() {
        let mut st = conn
            .prepare_cached(
                "SELECT * FROM latency_probes WHERE minute >= ?1 AND minute < ?2
                 ORDER BY minute, probe LIMIT ?3",
            )
            .map_err(StoreError::db(ctx))?;
        let rows = st
            .query_map(params![q.from, q.to, limit], |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, u32>(2)?,
                    row.get::<_, u32>(3)?,
                    [row.get(4)?, row.get(5)?, row.get(6)?],
                ))
            })
            .map_err(StoreError::db(ctx))?;
        for r in rows {
            let (minute, probe, sent, lost, c) = r.map_err(StoreError::db(ctx))?;
            out.probes
                .push(lat::probe_row(minute, probe, sent, lost, c)?);
        }
    }
    let mut st = conn
        .prepare_cached(
            "SELECT * FROM latency_queues WHERE minute >= ?1 AND minute < ?2
             AND (?3 < 0 OR tenant = ?3) ORDER BY minute, class LIMIT ?4",
        )
        .map_err(StoreError::db(ctx))?;
    let rows = st
        .query_map(params![q.from, q.to, tenant, limit], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                [row.get(4)?, row.get(5)?, row.get(6)?, row.get(7)?],
            ))
        })
        .map_err(StoreError::db(ctx))?;
    for r in rows {
        let (minute, class, tenant, label, c) = r.map_err(StoreError::db(ctx))?;
        out.queues.push(lat::queue_row(
            minute, class, tenant, label, c[0], c[1], c[2], c[3],
        )?);
    }
    lat::order(&mut out);
    Ok(out)
}

/// Removes the rows of minutes before `minute`; returns how many.
pub(super) fn forget_before(conn: &mut Connection, minute: i64) -> Result<u64, StoreError> {
    let ctx = "retention: delete latency minutes";
    let tx = conn.transaction().map_err(StoreError::db(ctx))?;
    let mut n = 0;
    for table in ["latency_rtt", "latency_probes", "latency_queues"] {
        n += tx
            .execute(&format!("DELETE FROM {table} WHERE minute < ?1"), [minute])
            .map_err(StoreError::db(ctx))? as u64;
    }
    tx.commit().map_err(StoreError::db(ctx))?;
    Ok(n)
}
