//! The quarantine table: refused samples kept aside, and its counts.
//!
//! Counts that may exceed 2^63 (bytes, packets, the sums a refusal would
//! have made) are kept as decimal text, so that a refused value is kept
//! exactly whatever its size and reads plainly in `sqlite3`.

use crate::error::StoreError;
use crate::refusal::{Quarantine, QuarantinedSample, Refusal, RefusalReason, QUARANTINE_CAP};
use accounting::{Band, Direction, Sample, Slot, Source, UsageKey};
use net_types::{RealmId, TenantId};
use rusqlite::{params, Connection, Row, Transaction, TransactionBehavior};

const CONTEXT: &str = "quarantine refused samples";

fn to_i64(v: u64, field: &str) -> Result<i64, StoreError> {
    i64::try_from(v).map_err(|_| StoreError::invalid(field, format!("{v} is above 2^63 − 1")))
}

/// Keeps `refused` in the quarantine inside `tx`, up to the cap; counts
/// them all. Returns (kept, dropped).
pub(super) fn keep(
    tx: &Transaction<'_>,
    writer: &str,
    sequence: u64,
    refused: &[Refusal],
) -> Result<(usize, usize), StoreError> {
    let db = || StoreError::db(CONTEXT);
    let sequence = to_i64(sequence, "sequence")?;
    let held: i64 = tx
        .query_row("SELECT COUNT(*) FROM quarantine", [], |r| r.get(0))
        .map_err(db())?;
    let room = QUARANTINE_CAP.saturating_sub(held.max(0) as u64);
    let kept = refused
        .len()
        .min(usize::try_from(room).unwrap_or(usize::MAX));
    let mut insert = tx
        .prepare_cached(
            "INSERT INTO quarantine (writer, sequence, batch_index, slot, tenant, realm,
                 direction, band, source, bytes, packets, reason, sum_bytes, sum_packets)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
        )
        .map_err(db())?;
    for r in &refused[..kept] {
        let s = &r.sample;
        let (sum_bytes, sum_packets) = match r.reason {
            RefusalReason::SumTooLarge { bytes, packets } => {
                (Some(bytes.to_string()), Some(packets.to_string()))
            }
            _ => (None, None),
        };
        insert
            .execute(params![
                writer,
                sequence,
                r.index as i64,
                s.slot.0,
                s.key.tenant.0,
                s.key.realm.0,
                s.key.direction.code(),
                s.key.band.code(),
                s.key.source.code(),
                s.bytes.to_string(),
                s.packets.to_string(),
                r.reason.name(),
                sum_bytes,
                sum_packets,
            ])
            .map_err(db())?;
    }
    let dropped = refused.len() - kept;
    tx.execute(
        "UPDATE quarantine_counts SET refused = refused + ?1, dropped = dropped + ?2 WHERE id = 1",
        params![refused.len() as i64, dropped as i64],
    )
    .map_err(db())?;
    Ok((kept, dropped))
}

/// [`crate::Store::quarantine`]: [`keep`] in a transaction of its own.
pub(super) fn quarantine(
    conn: &mut Connection,
    writer: &str,
    sequence: u64,
    refused: &[Refusal],
) -> Result<(usize, usize), StoreError> {
    if writer.is_empty() {
        return Err(StoreError::invalid("writer", "is empty"));
    }
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(StoreError::db(CONTEXT))?;
    let kept = keep(&tx, writer, sequence, refused)?;
    tx.commit().map_err(StoreError::db(CONTEXT))?;
    Ok(kept)
}

fn number<T: std::str::FromStr>(text: &str, column: &str) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError::corrupt(format!("quarantine.{column}"), format!("`{text}`")))
}

fn code<T>(v: i64, column: &str, from: impl Fn(u8) -> Option<T>) -> Result<T, StoreError> {
    u8::try_from(v)
        .ok()
        .and_then(from)
        .ok_or_else(|| StoreError::corrupt(format!("quarantine.{column}"), format!("code {v}")))
}

fn reason(name: &str, sums: (Option<String>, Option<String>)) -> Result<RefusalReason, StoreError> {
    Ok(match name {
        "too_many_bytes" => RefusalReason::TooManyBytes,
        "too_many_packets" => RefusalReason::TooManyPackets,
        "already_stored" => RefusalReason::AlreadyStored,
        "twice_in_batch" => RefusalReason::TwiceInBatch,
        "slot_out_of_range" => RefusalReason::SlotOutOfRange,
        "sum_too_large" => match sums {
            (Some(b), Some(p)) => RefusalReason::SumTooLarge {
                bytes: number(&b, "sum_bytes")?,
                packets: number(&p, "sum_packets")?,
            },
            _ => return Err(StoreError::corrupt("quarantine.sum_bytes", "missing")),
        },
        other => {
            return Err(StoreError::corrupt(
                "quarantine.reason",
                format!("`{other}` is not a reason this build knows"),
            ))
        }
    })
}

/// The columns [`entry`] reads, in its order.
const COLUMNS: &str = "id, writer, sequence, batch_index, slot, tenant, realm, direction, band,
    source, bytes, packets, reason, sum_bytes, sum_packets";

fn entry(r: &Row<'_>) -> Result<QuarantinedSample, StoreError> {
    let db = || StoreError::db("read the quarantine");
    let int = |i| r.get::<_, i64>(i).map_err(db());
    let text = |i| r.get::<_, String>(i).map_err(db());
    let bad =
        |column: &str, v: i64| StoreError::corrupt(format!("quarantine.{column}"), v.to_string());
    let (id, sequence, index) = (int(0)?, int(2)?, int(3)?);
    let (tenant, realm) = (int(5)?, int(6)?);
    let key = UsageKey {
        tenant: TenantId(u32::try_from(tenant).map_err(|_| bad("tenant", tenant))?),
        realm: RealmId(u16::try_from(realm).map_err(|_| bad("realm", realm))?),
        direction: code(int(7)?, "direction", Direction::from_code)?,
        band: code(int(8)?, "band", Band::from_code)?,
        source: code(int(9)?, "source", Source::from_code)?,
    };
    let sums = (
        r.get::<_, Option<String>>(13).map_err(db())?,
        r.get::<_, Option<String>>(14).map_err(db())?,
    );
    Ok(QuarantinedSample {
        id: u64::try_from(id).map_err(|_| bad("id", id))?,
        writer: text(1)?,
        sequence: u64::try_from(sequence).map_err(|_| bad("sequence", sequence))?,
        refusal: Refusal {
            index: usize::try_from(index).map_err(|_| bad("batch_index", index))?,
            sample: Sample {
                slot: Slot(int(4)?),
                key,
                bytes: number(&text(10)?, "bytes")?,
                packets: number(&text(11)?, "packets")?,
            },
            reason: reason(&text(12)?, sums)?,
        },
    })
}

/// [`crate::Store::quarantined`].
pub(super) fn list(conn: &Connection, limit: usize) -> Result<Quarantine, StoreError> {
    let db = || StoreError::db("read the quarantine");
    let (refused, dropped): (i64, i64) = conn
        .query_row(
            "SELECT refused, dropped FROM quarantine_counts WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .map_err(db())?;
    let held: i64 = conn
        .query_row("SELECT COUNT(*) FROM quarantine", [], |r| r.get(0))
        .map_err(db())?;
    let count = |v: i64, place: &str| {
        u64::try_from(v).map_err(|_| StoreError::corrupt(place, format!("{v} is negative")))
    };
    let mut st = conn
        .prepare(&format!(
            "SELECT {COLUMNS} FROM quarantine ORDER BY id LIMIT ?1"
        ))
        .map_err(db())?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut rows = st.query([limit]).map_err(db())?;
    let mut samples = Vec::new();
    while let Some(r) = rows.next().map_err(db())? {
        samples.push(entry(r)?);
    }
    Ok(Quarantine {
        refused: count(refused, "quarantine_counts.refused")?,
        dropped: count(dropped, "quarantine_counts.dropped")?,
        held: count(held, "quarantine")?,
        samples,
    })
}

/// [`crate::Store::clear_quarantine`].
pub(super) fn clear(conn: &mut Connection, through: u64) -> Result<u64, StoreError> {
    let ctx = "clear the quarantine";
    let through = i64::try_from(through).unwrap_or(i64::MAX);
    let n = conn
        .execute("DELETE FROM quarantine WHERE id <= ?1", [through])
        .map_err(StoreError::db(ctx))?;
    Ok(n as u64)
}
