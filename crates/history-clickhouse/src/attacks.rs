//! The `attacks` table: the guard's ended attacks ([`history::attacks`]).

use crate::client::{truncated, Client};
use crate::rowbinary::{Reader, Writer};
use crate::write::literal;
use history::attacks::{join, split};
use history::{AttackRow, StoreError, MAX_ATTACKS};
use jiff::Timestamp;

/// Inserts the row unless its key is there. The insert's `query_id` is
/// derived from the key, so a retry after a timeout first waits for the
/// earlier insert and then finds its row.
pub fn record(client: &Client, a: &AttackRow) -> Result<bool, StoreError> {
    a.check()?;
    let key = format!(
        "{}-{}-{}",
        a.started.as_millisecond(),
        a.target,
        a.direction
    );
    let id = format!(
        "tollgate-{}-attack-{}",
        client.db,
        key.bytes()
            .take(96)
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );
    client.wait_for(&id)?;
    let sql = format!(
        "SELECT count() FROM {}.attacks WHERE started_ms = {} AND target = {} AND direction = {}
         FORMAT RowBinary",
        client.db,
        a.started.as_millisecond(),
        literal(&a.target),
        literal(&a.direction)
    );
    let out = client.query(&sql, "look for the attack")?;
    let n = Reader::new(&out).u64().map_err(truncated("attacks"))?;
    if n > 0 {
        return Ok(false);
    }
    let mut w = Writer::default();
    w.i64(a.started.as_millisecond());
    w.bytes(a.target.as_bytes());
    w.bytes(a.direction.as_bytes());
    w.i64(a.ended.as_millisecond());
    w.bytes(a.kind.as_bytes());
    w.u64(a.peak_pps);
    w.u64(a.peak_bps);
    w.bytes(join(&a.rungs).as_bytes());
    w.bytes(join(&a.sources).as_bytes());
    w.bytes(a.record.as_bytes());
    client.insert(
        "attacks",
        &w.buf,
        &id,
        &format!("record the attack on {}", a.target),
    )?;
    Ok(true)
}

/// [`history::Store::attacks`].
pub fn read(client: &Client, since: Timestamp, limit: usize) -> Result<Vec<AttackRow>, StoreError> {
    let limit = limit.min(MAX_ATTACKS);
    let sql = format!(
        "SELECT started_ms, ended_ms, target, direction, kind, peak_pps, peak_bps, rungs,
                sources, record
         FROM {}.attacks WHERE ended_ms >= {}
         ORDER BY ended_ms DESC, started_ms DESC, target DESC, direction DESC
         LIMIT 1 BY started_ms, target, direction
         LIMIT {limit} FORMAT RowBinary",
        client.db,
        since.as_millisecond()
    );
    let out = client.query(&sql, "read the attacks")?;
    decode(&out)
}

/// The rows of [`read`]'s answer, oldest first.
pub fn decode(out: &[u8]) -> Result<Vec<AttackRow>, StoreError> {
    let place = "attacks";
    let mut r = Reader::new(out);
    let mut rows = Vec::new();
    let text = |r: &mut Reader<'_>, col: &str| -> Result<String, StoreError> {
        let b = r.bytes().map_err(truncated(place))?;
        String::from_utf8(b.to_vec()).map_err(|e| StoreError::Corrupt {
            place: format!("attacks.{col}"),
            problem: e.to_string(),
        })
    };
    let ts = |ms: i64, col: &str| {
        Timestamp::from_millisecond(ms).map_err(|e| StoreError::Corrupt {
            place: format!("attacks.{col}"),
            problem: e.to_string(),
        })
    };
    while !r.done() {
        let started = ts(r.i64().map_err(truncated(place))?, "started_ms")?;
        let ended = ts(r.i64().map_err(truncated(place))?, "ended_ms")?;
        let target = text(&mut r, "target")?;
        let direction = text(&mut r, "direction")?;
        let kind = text(&mut r, "kind")?;
        let peak_pps = r.u64().map_err(truncated(place))?;
        let peak_bps = r.u64().map_err(truncated(place))?;
        let rungs = split(&text(&mut r, "rungs")?);
        let sources = split(&text(&mut r, "sources")?);
        let record = text(&mut r, "record")?;
        rows.push(AttackRow {
            started,
            ended,
            target,
            direction,
            kind,
            peak_pps,
            peak_bps,
            rungs,
            sources,
            record,
        });
    }
    rows.reverse();
    Ok(rows)
}
