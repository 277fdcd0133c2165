//! Writes: a batch (the accountant's or another writer's) as one row of
//! `batches`, each sample accepted or refused on its own first; freezing.

use crate::client::{truncated, Client, Inserted};
use crate::lean::encode_lean_row;
use crate::rowbinary::{Reader, Writer};
use accounting::{Sample, SlotCoverage, UsageKey};
use history::{
    FrozenPeriod, Refusal, RefusalReason, StoreError, WriteReport, ACCOUNTANT_WRITER,
    MAX_SAMPLE_BYTES, MAX_SAMPLE_PACKETS, QUARANTINE_CAP,
};
use std::collections::HashMap;

/// The last slot the store keeps: its partitions are months of
/// `DateTime`, which ends in 2106 (2^32 seconds).
pub const LAST_SLOT: i64 = (1 << 32) / 300 - 1;

/// Which write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// The accountant's [`history::Store::append`]: a slot and key stored
    /// already is refused.
    Append = 0,
    /// Another writer's [`history::Store::add`]: summed with what is stored.
    Add = 1,
    /// [`history::Store::quarantine`]: refusals only, no sequence recorded.
    Quarantine = 2,
}

/// A string as a SQL expression that needs no escaping.
pub fn literal(s: &str) -> String {
    let mut hex = String::with_capacity(s.len() * 2 + 8);
    hex.push_str("unhex('");
    for b in s.bytes() {
        hex.push_str(&format!("{b:02X}"));
    }
    hex.push_str("')");
    hex
}

/// The writer's name in the `writers` table: the accountant's is empty
/// (another writer's never is), so an add writer may be called anything.
fn writer_key(kind: Kind, writer: &str) -> &str {
    match kind {
        Kind::Append => "",
        _ => writer,
    }
}

/// The insert's id: stable for a writer's sequence, so that the server
/// itself refuses a second insert of a batch while the first still runs.
pub fn query_id(db: &str, kind: Kind, writer: &str, sequence: u64) -> String {
    // FNV-1a keeps the id short and free of characters to escape.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in writer.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
    }
    format!("tollgate-{db}-{}-{h:016x}-{sequence}", kind as u8)
}

/// The writer's last committed sequence, if any.
pub fn last_sequence(client: &Client, writer: &str) -> Result<Option<u64>, StoreError> {
    let sql = format!(
        "SELECT max(sequence), count() FROM {}.writers WHERE writer = {} FORMAT RowBinary",
        client.db,
        literal(writer)
    );
    let out = client.query(&sql, "read the writer's last sequence")?;
    let mut r = Reader::new(&out);
    let place = "writers.sequence";
    let (max, n) = (
        r.u64().map_err(truncated(place))?,
        r.u64().map_err(truncated(place))?,
    );
    Ok((n > 0).then_some(max))
}

/// Bytes and packets stored per slot and key.
type Stored = HashMap<(i64, UsageKey), (u64, u64)>;

/// What is stored for the batch's slots and keys: bytes and packets summed
/// over writers.
fn stored(client: &Client, candidates: &[(usize, Sample)]) -> Result<Stored, StoreError> {
    let mut out = HashMap::new();
    let Some(lo) = candidates.iter().map(|(_, s)| s.slot.0).min() else {
        return Ok(out);
    };
    let hi = candidates.iter().map(|(_, s)| s.slot.0).max().unwrap_or(lo);
    let mut tenants: Vec<u32> = candidates.iter().map(|(_, s)| s.key.tenant.0).collect();
    tenants.sort_unstable();
    tenants.dedup();
    // A long list costs the server more (70 ms for 10,000 tenants on
    // 18.16) than reading every tenant's rows of the slots (2 ms) and
    // keeping those asked for.
    let only = if tenants.len() <= 100 {
        let list: Vec<String> = tenants.iter().map(u32::to_string).collect();
        format!(" AND tenant IN ({})", list.join(","))
    } else {
        String::new()
    };
    let sql = format!(
        "SELECT slot, tenant, realm, direction, band, source, sum(bytes), sum(packets)
         FROM {}.samples WHERE slot >= {lo} AND slot <= {hi}{only}
         GROUP BY slot, tenant, realm, direction, band, source FORMAT RowBinary",
        client.db
    );
    let body = client.query(&sql, "read the stored samples a batch meets")?;
    let mut r = Reader::new(&body);
    while !r.done() {
        let s = crate::read::sample(&mut r, "samples")?;
        if tenants.binary_search(&s.key.tenant.0).is_ok() {
            out.insert((s.slot.0, s.key), (s.bytes, s.packets));
        }
    }
    Ok(out)
}

/// Decides each sample: refused alone (bounds, range, already stored or
/// twice for an append, a sum past the bound for an add) or accepted.
fn decide(
    client: &Client,
    kind: Kind,
    samples: &[Sample],
) -> Result<(Vec<Sample>, Vec<Refusal>), StoreError> {
    let mut refused = Vec::new();
    let mut candidates = Vec::with_capacity(samples.len());
    for (index, s) in samples.iter().enumerate() {
        let reason = if s.bytes > MAX_SAMPLE_BYTES {
            Some(RefusalReason::TooManyBytes)
        } else if s.packets > MAX_SAMPLE_PACKETS {
            Some(RefusalReason::TooManyPackets)
        } else if !(0..=LAST_SLOT).contains(&s.slot.0) {
            Some(RefusalReason::SlotOutOfRange)
        } else {
            None
        };
        match reason {
            Some(reason) => refused.push(Refusal {
                index,
                sample: *s,
                reason,
            }),
            None => candidates.push((index, *s)),
        }
    }
    let stored = stored(client, &candidates)?;
    candidates.sort_by_key(|(i, s)| (s.slot, s.key, *i));
    let mut accepted = Vec::with_capacity(candidates.len());
    for group in candidates.chunk_by(|a, b| (a.1.slot, a.1.key) == (b.1.slot, b.1.key)) {
        let at = (group[0].1.slot.0, group[0].1.key);
        let base = if stored.is_empty() {
            None
        } else {
            stored.get(&at).copied()
        };
        let refuse = |refused: &mut Vec<Refusal>, (index, sample): (usize, Sample), reason| {
            refused.push(Refusal {
                index,
                sample,
                reason,
            })
        };
        match kind {
            Kind::Append | Kind::Quarantine => {
                let rest = if base.is_some() {
                    for g in group {
                        refuse(&mut refused, *g, RefusalReason::AlreadyStored);
                    }
                    &[][..]
                } else {
                    accepted.push(group[0].1);
                    &group[1..]
                };
                for g in rest {
                    refuse(&mut refused, *g, RefusalReason::TwiceInBatch);
                }
            }
            Kind::Add => {
                let (mut bytes, mut packets) = base.unwrap_or((0, 0));
                for g in group {
                    let b = u128::from(bytes) + u128::from(g.1.bytes);
                    let p = u128::from(packets) + u128::from(g.1.packets);
                    if b <= u128::from(MAX_SAMPLE_BYTES) && p <= u128::from(MAX_SAMPLE_PACKETS) {
                        (bytes, packets) = (b as u64, p as u64);
                        accepted.push(g.1);
                    } else {
                        let reason = RefusalReason::SumTooLarge {
                            bytes: b,
                            packets: p,
                        };
                        refuse(&mut refused, *g, reason);
                    }
                }
            }
        }
    }
    refused.sort_by_key(|r| r.index);
    Ok((accepted, refused))
}

/// How many refusals the quarantine has room for, and the first id.
fn room(client: &Client) -> Result<(u64, u64), StoreError> {
    let db = &client.db;
    let cleared = crate::read::cleared(client)?;
    let sql = format!(
        "SELECT (SELECT max(id) FROM {db}.quarantine),
                (SELECT count() FROM {db}.quarantine WHERE id > {cleared})
         FORMAT RowBinary"
    );
    let out = client.query(&sql, "read the quarantine's size")?;
    let mut r = Reader::new(&out);
    let place = "quarantine";
    let top = r.u64().map_err(truncated(place))?;
    let held = r.u64().map_err(truncated(place))?;
    Ok((QUARANTINE_CAP.saturating_sub(held), cleared.max(top) + 1))
}

/// The last sequence this store itself committed per writer (the
/// accountant's under the empty name), known without asking the server.
///
/// The store is the only writer of its history (one daemon; a central
/// adds its agents' batches through its own engine), so once it saw its
/// own insert of sequence N for a writer succeed, the writer's last
/// sequence *is* N: the next batch of that writer needs neither the
/// running-insert check nor the read of `writers`, two round trips of the
/// four a batch cost. An entry is dropped whenever anything about that
/// writer's insert is unsure (an error, a timeout, another insert with the
/// same id still running), and the next batch asks the server again.
#[derive(Debug, Default)]
pub struct Sequences(HashMap<String, u64>);

impl Sequences {
    /// At most this many writers are remembered (a central with more
    /// agents asks the server for the rest).
    const MAX: usize = 100_000;

    fn get(&self, writer: &str) -> Option<u64> {
        self.0.get(writer).copied()
    }

    fn forget(&mut self, writer: &str) {
        self.0.remove(writer);
    }

    fn committed(&mut self, writer: &str, sequence: u64) {
        if self.0.len() >= Self::MAX && !self.0.contains_key(writer) {
            self.0.clear();
        }
        self.0.insert(writer.to_string(), sequence);
    }
}

/// Writes one batch as one row: samples, coverage, refusals, the writer's
/// sequence and state. See the crate's overview for why one row.
///
/// Round trips: when `known` holds the writer's last sequence (this store
/// committed it), the stored samples the batch meets (skipped when no
/// sample passed the bounds), the quarantine's room (only when something
/// was refused) and the insert; otherwise first the running-insert check
/// and the read of `writers`.
pub fn write(
    client: &Client,
    known: &mut Sequences,
    kind: Kind,
    (writer, sequence): (&str, u64),
    samples: &[Sample],
    coverage: &[SlotCoverage],
    state: &[u8],
) -> Result<WriteReport, StoreError> {
    if kind != Kind::Append && writer.is_empty() {
        let field = if kind == Kind::Add {
            "batch.writer"
        } else {
            "writer"
        };
        return Err(StoreError::Invalid {
            field: field.into(),
            problem: "is empty".into(),
        });
    }
    if i64::try_from(sequence).is_err() {
        return Err(StoreError::Invalid {
            field: "batch.sequence".into(),
            problem: format!("{sequence} is above 2^63 − 1"),
        });
    }
    let key = writer_key(kind, writer);
    loop {
        let cached = known.get(key);
        let result = attempt(
            client,
            cached,
            kind,
            (writer, sequence),
            samples,
            coverage,
            state,
        );
        match result {
            Ok(Some(report)) => {
                known.committed(key, sequence);
                return Ok(report);
            }
            // Another insert of this very batch runs on the server (a
            // client that gave up on it, or another process): what this
            // store knew is out of date. Ask the server, which waits for it.
            Ok(None) => known.forget(key),
            Err(e) => {
                if !matches!(e, StoreError::AlreadyAppended { .. }) {
                    known.forget(key);
                }
                return Err(e);
            }
        }
    }
}

/// One attempt at [`write`]: `Ok(None)` when `last` came from the cache and
/// the server refused the insert because one with the same id still runs.
fn attempt(
    client: &Client,
    last: Option<u64>,
    kind: Kind,
    (writer, sequence): (&str, u64),
    samples: &[Sample],
    coverage: &[SlotCoverage],
    state: &[u8],
) -> Result<Option<WriteReport>, StoreError> {
    let id = query_id(&client.db, kind, writer, sequence);
    if kind != Kind::Quarantine {
        let last = match last {
            Some(last) => Some(last),
            None => {
                // An insert of this batch the client stopped waiting for may
                // still run: once it is done, its sequence is visible below.
                client.wait_for(&id)?;
                last_sequence(client, writer_key(kind, writer))?
            }
        };
        if let Some(last) = last.filter(|&l| l >= sequence) {
            return Err(StoreError::AlreadyAppended { sequence, last });
        }
    }
    let mut report = WriteReport::default();
    let accepted = if kind == Kind::Quarantine {
        Vec::new()
    } else {
        let (accepted, refused) = decide(client, kind, samples)?;
        report.refused = refused;
        accepted
    };
    report.stored = accepted.len();
    let quarantine_refused = &report.refused;
    let (room, first_id) = if quarantine_refused.is_empty() {
        (0, 0)
    } else {
        room(client)?
    };
    let kept = quarantine_refused
        .len()
        .min(usize::try_from(room).unwrap_or(usize::MAX));
    report.quarantined = kept;
    report.dropped = quarantine_refused.len() - kept;
    let q_writer = match kind {
        Kind::Append => ACCOUNTANT_WRITER,
        _ => writer,
    };
    let row = || {
        encode_row(
            kind,
            (writer_key(kind, writer), q_writer, sequence, state),
            &accepted,
            coverage,
            (
                &quarantine_refused[..kept],
                first_id,
                quarantine_refused.len(),
            ),
        )
    };
    let what = match kind {
        Kind::Append => format!("append batch {sequence}"),
        Kind::Add => format!("add batch {sequence} of {writer}"),
        Kind::Quarantine => format!(
            "quarantine {} samples of {writer}",
            quarantine_refused.len()
        ),
    };
    // A batch with nothing refused (nearly every one) takes the lean row
    // of schema 5; the others carry the quarantine's columns.
    let lean = kind != Kind::Quarantine
        && quarantine_refused.is_empty()
        && coverage.iter().all(|c| (0..=LAST_SLOT).contains(&c.slot.0))
        && u32::try_from(state.len()).is_ok();
    let (table, row) = if lean {
        let row = encode_lean_row(
            (writer_key(kind, writer), sequence, state),
            &accepted,
            coverage,
        );
        ("sample_batches", row)
    } else {
        ("batches", row())
    };
    if last.is_some() {
        return match client.try_insert(table, &row, &id, &what)? {
            Inserted::Yes => Ok(Some(report)),
            Inserted::AnotherRuns => Ok(None),
        };
    }
    client.insert(table, &row, &id, &what)?;
    Ok(Some(report))
}

/// The `sample_batches` row of an append whose samples are all accepted,
/// as [`write`] sends it (for tests that cut it short).
#[cfg(feature = "testing")]
pub fn append_row(
    sequence: u64,
    samples: &[Sample],
    coverage: &[SlotCoverage],
    state: &[u8],
) -> Vec<u8> {
    encode_lean_row(("", sequence, state), samples, coverage)
}

/// The schema-1 `batches` row of an append whose samples are all
/// accepted (what builds before schema 5 sent; for the migration's test).
#[cfg(feature = "testing")]
pub fn batches_row(
    sequence: u64,
    samples: &[Sample],
    coverage: &[SlotCoverage],
    state: &[u8],
) -> Vec<u8> {
    encode_row(
        Kind::Append,
        ("", ACCOUNTANT_WRITER, sequence, state),
        samples,
        coverage,
        (&[], 0, 0),
    )
}

/// Samples in the order of `samples`' key (tenant, slot, key): the server
/// then finds a block already sorted and skips sorting it before writing
/// the part (batches of several slots arrive slot by slot).
pub(crate) fn in_key_order(samples: &[Sample]) -> std::borrow::Cow<'_, [Sample]> {
    let in_order =
        |a: &Sample, b: &Sample| (a.key.tenant, a.slot, a.key) <= (b.key.tenant, b.slot, b.key);
    if samples.is_sorted_by(in_order) {
        std::borrow::Cow::Borrowed(samples)
    } else {
        let mut v = samples.to_vec();
        // Stable: a batch of several slots arrives as one sorted run per
        // slot, which the stable sort merges (measured: with the unstable
        // sort, encoding an hour of 10,000 tenants took as long as its
        // insert).
        v.sort_by_key(|s| (s.key.tenant, s.slot, s.key));
        std::borrow::Cow::Owned(v)
    }
}

/// One item of a `batches` row (see `sql/v1.sql`): a batch with refusals,
/// or the quarantine.
#[derive(Clone, Copy, Default)]
struct Item<'a> {
    what: u8,
    time: i64,
    key: (u32, u16, u8, u8, u8),
    figures: (u64, u64),
    status: u8,
    id: u64,
    idx: u64,
    text: &'a [u8],
    sums: (&'a str, &'a str),
}

/// The `batches` row, in its columns' order.
fn encode_row(
    kind: Kind,
    (writer, q_writer, sequence, state): (&str, &str, u64, &[u8]),
    samples: &[Sample],
    coverage: &[SlotCoverage],
    (kept, first_id, refused): (&[Refusal], u64, usize),
) -> Vec<u8> {
    let key = |k: &UsageKey| {
        (
            k.tenant.0,
            k.realm.0,
            k.direction.code(),
            k.band.code(),
            k.source.code(),
        )
    };
    // Each table's rows in its own key's order (see `in_key_order`).
    let samples = in_key_order(samples);
    let samples = &samples[..];
    let mut hourly = rollup(samples, 12);
    hourly.sort_unstable_by_key(|&((hour, tenant, realm, dir), _)| (tenant, hour, realm, dir));
    let daily = rollup(samples, 288);
    let sums: Vec<(String, String)> = kept
        .iter()
        .map(|r| match r.reason {
            RefusalReason::SumTooLarge { bytes, packets } => {
                (bytes.to_string(), packets.to_string())
            }
            _ => (String::new(), String::new()),
        })
        .collect();
    let mut items: Vec<Item<'_>> = Vec::with_capacity(
        samples.len() + hourly.len() + daily.len() + coverage.len() + kept.len() + 2,
    );
    items.extend(samples.iter().map(|s| Item {
        what: 0,
        time: s.slot.0,
        key: key(&s.key),
        figures: (s.bytes, s.packets),
        ..Item::default()
    }));
    items.extend(coverage.iter().map(|c| Item {
        what: 1,
        time: c.slot.0,
        status: c.status.code(),
        ..Item::default()
    }));
    for (what, rows) in [(2, &hourly), (3, &daily)] {
        items.extend(
            rows.iter()
                .map(|&((time, tenant, realm, dir), figures)| Item {
                    what,
                    time,
                    key: (tenant, realm, dir, 0, 0),
                    figures,
                    ..Item::default()
                }),
        );
    }
    items.extend(kept.iter().zip(&sums).enumerate().map(|(i, (r, s))| Item {
        what: 4,
        time: r.sample.slot.0,
        key: key(&r.sample.key),
        figures: (r.sample.bytes, r.sample.packets),
        id: first_id + i as u64,
        idx: r.index as u64,
        text: r.reason.name().as_bytes(),
        sums: (&s.0, &s.1),
        ..Item::default()
    }));
    if kind != Kind::Quarantine {
        items.push(Item {
            what: 5,
            text: state,
            ..Item::default()
        });
    }
    if refused > 0 {
        items.push(Item {
            what: 6,
            id: refused as u64,
            idx: (refused - kept.len()) as u64,
            ..Item::default()
        });
    }
    let mut w = Writer::default();
    w.buf.reserve(items.len() * 50 + state.len() + 256);
    w.u8(kind as u8);
    w.bytes(writer.as_bytes());
    w.u64(sequence);
    w.bytes(q_writer.as_bytes());
    w.array(&items, |w, i| w.u8(i.what));
    w.array(&items, |w, i| w.i64(i.time));
    w.array(&items, |w, i| w.u32(i.key.0));
    w.array(&items, |w, i| w.u16(i.key.1));
    w.array(&items, |w, i| w.u8(i.key.2));
    w.array(&items, |w, i| w.u8(i.key.3));
    w.array(&items, |w, i| w.u8(i.key.4));
    w.array(&items, |w, i| w.u64(i.figures.0));
    w.array(&items, |w, i| w.u64(i.figures.1));
    w.array(&items, |w, i| w.u8(i.status));
    w.array(&items, |w, i| w.u64(i.id));
    w.array(&items, |w, i| w.u64(i.idx));
    w.array(&items, |w, i| w.bytes(i.text));
    w.array(&items, |w, i| w.bytes(i.sums.0.as_bytes()));
    w.array(&items, |w, i| w.bytes(i.sums.1.as_bytes()));
    w.buf
}

/// The batch's samples summed per hour (`per` = 12 slots) or UTC day
/// (288) × tenant × realm × direction. A sum stays below 2^62: at most
/// 288 slots × 8 keys × 2^50 bytes.
type RollupRow = ((i64, u32, u16, u8), (u64, u64));

fn rollup(samples: &[Sample], per: i64) -> Vec<RollupRow> {
    let mut rows: Vec<RollupRow> = samples
        .iter()
        .map(|s| {
            let k = &s.key;
            let at = (
                s.slot.0.div_euclid(per),
                k.tenant.0,
                k.realm.0,
                k.direction.code(),
            );
            (at, (s.bytes, s.packets))
        })
        .collect();
    rows.sort_unstable_by_key(|r| r.0);
    sum_runs(&mut rows);
    rows
}

/// Adds up the bytes and packets of neighbouring rows with the same key
/// (rows sorted by key), leaving one row per key.
pub(crate) fn sum_runs<K: PartialEq>(rows: &mut Vec<(K, (u64, u64))>) {
    rows.dedup_by(|next, kept| {
        if next.0 == kept.0 {
            kept.1 .0 += next.1 .0;
            kept.1 .1 += next.1 .1;
            true
        } else {
            false
        }
    });
}

/// [`history::Store::quarantine`].
pub fn quarantine(
    client: &Client,
    writer: &str,
    sequence: u64,
    refused: &[Refusal],
) -> Result<(usize, usize), StoreError> {
    if writer.is_empty() {
        return Err(StoreError::Invalid {
            field: "writer".into(),
            problem: "is empty".into(),
        });
    }
    let (room, first_id) = room(client)?;
    let kept = refused
        .len()
        .min(usize::try_from(room).unwrap_or(usize::MAX));
    let row = encode_row(
        Kind::Quarantine,
        (writer, writer, sequence, &[]),
        &[],
        &[],
        (&refused[..kept], first_id, refused.len()),
    );
    let id = format!(
        "{}-{first_id}",
        query_id(&client.db, Kind::Quarantine, writer, sequence)
    );
    client.insert("batches", &row, &id, "quarantine refused samples")?;
    Ok((kept, refused.len() - kept))
}

/// [`history::Store::freeze`].
pub fn freeze(client: &Client, p: &FrozenPeriod) -> Result<(), StoreError> {
    if p.start >= p.end {
        return Err(StoreError::Invalid {
            field: format!("period {}", p.label),
            problem: format!(
                "starts at {} which is not before its end {}",
                p.start, p.end
            ),
        });
    }
    if p.frozen_at < p.end {
        return Err(StoreError::PeriodNotClosed {
            label: p.label.clone(),
        });
    }
    let id = format!("tollgate-{}-freeze-{}", client.db, hex(&p.label));
    client.wait_for(&id)?;
    if crate::read::frozen(client, &p.label)?.is_some() {
        return Err(StoreError::AlreadyFrozen(p.label.clone()));
    }
    let mut w = Writer::default();
    w.bytes(p.label.as_bytes());
    w.i64(p.start.as_millisecond());
    w.i64(p.end.as_millisecond());
    w.i64(p.frozen_at.as_millisecond());
    w.bytes(p.bill.as_bytes());
    client.insert("frozen", &w.buf, &id, &format!("freeze period {}", p.label))
}

fn hex(s: &str) -> String {
    s.bytes().take(48).map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_need_no_escaping_and_ids_are_plain() {
        assert_eq!(literal("a'\\"), "unhex('61275C')");
        let id = query_id("db_1", Kind::Add, "flows'; DROP", 7);
        assert!(
            id.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{id}"
        );
        assert_ne!(id, query_id("db_1", Kind::Add, "flows", 7));
        assert_ne!(id, query_id("db_1", Kind::Add, "flows'; DROP", 8));
    }
}
