//! Flow records kept (`[history.flows]`, `sql/v4.sql`): a batch of
//! records as one row of `flow_batches`, with its per-minute, per-5-minute
//! and per-hour sums made here; top talkers read from the coarsest tables
//! that tile the range; retention by whole partitions.
//!
//! Exactly once per batch, as the samples' batches are (see the crate's
//! overview): the row carries the writer's sequence, which `flow_writers`
//! takes in the same insert; a sequence at or below the writer's last is
//! refused before inserting, and a retry first waits for an insert with
//! the same `query_id` still running on the server.

use crate::client::{truncated, Client};
use crate::rowbinary::{Reader, Writer};
use crate::write::literal;
use history::flows::{address_bytes, address_from_bytes, rank, FlowRetention};
use history::{FlowBy, FlowKey, FlowRow, FlowTopQuery, StoreError, Talker};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// The consolidated tables, coarsest first: (table, seconds per row,
/// seconds per partition).
const LEVELS: [(&str, i64, i64); 3] = [
    ("flows_1h", 3600, 86400 * 30),
    ("flows_5m", 300, 86400 * 7),
    ("flows_1m", 60, 86400),
];

/// Seconds per partition of the raw table.
const RAW_PARTITION: i64 = 86400;

/// The last second a `DateTime` holds.
const LAST_SECOND: i64 = u32::MAX as i64;

/// A consolidated row's key: the bucket's start, the dimension, and its
/// value (an address, or a number).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    time: u32,
    dim: u8,
    key: [u8; 16],
    number: u32,
}

/// The dimension numbers of `dim` in the consolidated tables.
fn dim(by: FlowBy) -> u8 {
    match by {
        FlowBy::Src => 0,
        FlowBy::Dst => 1,
        FlowBy::SrcPort => 2,
        FlowBy::DstPort => 3,
        FlowBy::Proto => 4,
        FlowBy::As => 5,
    }
}

/// FxHash (rustc's): the keys are ours, not an attacker's choice of
/// collisions worth defending with SipHash's cost per record.
#[derive(Default)]
struct Fx(u64);

impl Hasher for Fx {
    /// A multiply leaves each output bit depending only on the input's
    /// bits below it, and hashbrown picks the bucket with the low bits: an
    /// IPv4-mapped address's last word is `00 00 ff ff a.b.c.d`, whose low
    /// half is the same for every address, so with the raw state every
    /// address fell in one probe chain (measured: 74% of the bench's time,
    /// quadratic in a batch's distinct addresses). MurmurHash3's finaliser
    /// folds the high bits down.
    fn finish(&self) -> u64 {
        let mut x = self.0;
        x ^= x >> 33;
        x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
        x ^ (x >> 33)
    }
    fn write(&mut self, bytes: &[u8]) {
        for chunk in bytes.chunks(8) {
            let mut b = [0u8; 8];
            b[..chunk.len()].copy_from_slice(chunk);
            self.add(u64::from_le_bytes(b));
        }
    }
    fn write_u8(&mut self, i: u8) {
        self.add(u64::from(i));
    }
    fn write_u16(&mut self, i: u16) {
        self.add(u64::from(i));
    }
    fn write_u32(&mut self, i: u32) {
        self.add(u64::from(i));
    }
    fn write_u64(&mut self, i: u64) {
        self.add(i);
    }
    fn write_usize(&mut self, i: usize) {
        self.add(i as u64);
    }
}

impl Fx {
    fn add(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// The insert's id for a writer's batch.
fn query_id(db: &str, writer: &str, sequence: u64) -> String {
    let hex: String = writer
        .bytes()
        .take(48)
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("tollgate-{db}-flows-{hex}-{sequence}")
}

/// The writer's last stored batch, if any.
pub fn last_sequence(client: &Client, writer: &str) -> Result<Option<u64>, StoreError> {
    let sql = format!(
        "SELECT max(sequence), count() FROM {}.flow_writers WHERE writer = {} FORMAT RowBinary",
        client.db,
        literal(writer)
    );
    let out = client.query(&sql, "read the flow writer's last sequence")?;
    let mut r = Reader::new(&out);
    let place = "flow_writers.sequence";
    let max = r.u64().map_err(truncated(place))?;
    let n = r.u64().map_err(truncated(place))?;
    Ok((n > 0).then_some(max))
}

/// Checks a row's time: a `DateTime` holds 1970 ..= 2106.
fn time_of(r: &FlowRow) -> Result<u32, StoreError> {
    if (0..=LAST_SECOND).contains(&r.time) {
        Ok(r.time as u32)
    } else {
        Err(StoreError::Invalid {
            field: "flow.time".into(),
            problem: format!("{} s is outside 1970 ..= 2106", r.time),
        })
    }
}

/// Sums per value of a small dimension (ports, protocol): indexed by the
/// value, no hashing, for the dimensions most records differ in; or, for
/// a batch's minutes past the first few (records from long ago), a map,
/// so that a batch spread over many minutes costs no 2 MB per minute.
enum Dense {
    Indexed {
        sums: Vec<(u64, u64)>,
        /// The values seen, in the order first seen.
        seen: Vec<u32>,
        marked: Vec<bool>,
    },
    Mapped(HashMap<u32, (u64, u64), BuildHasherDefault<Fx>>),
}

/// A batch's minutes that get indexed sums.
const INDEXED_MINUTES: usize = 4;

impl Dense {
    fn new(size: usize, indexed: bool) -> Dense {
        if indexed {
            Dense::Indexed {
                sums: vec![(0, 0); size],
                seen: Vec::new(),
                marked: vec![false; size],
            }
        } else {
            Dense::Mapped(HashMap::default())
        }
    }

    fn add(&mut self, v: u32, bytes: u64, packets: u64) {
        let s = match self {
            Dense::Indexed { sums, seen, marked } => {
                let i = v as usize;
                if !marked[i] {
                    marked[i] = true;
                    seen.push(v);
                }
                &mut sums[i]
            }
            Dense::Mapped(m) => m.entry(v).or_default(),
        };
        s.0 = s.0.saturating_add(bytes);
        s.1 = s.1.saturating_add(packets);
    }

    fn into_rows(self) -> Vec<(u32, (u64, u64))> {
        match self {
            Dense::Indexed { sums, seen, .. } => {
                seen.into_iter().map(|v| (v, sums[v as usize])).collect()
            }
            Dense::Mapped(m) => m.into_iter().collect(),
        }
    }
}

type Addresses = HashMap<[u8; 16], (u64, u64), BuildHasherDefault<Fx>>;

/// One minute's sums, per dimension.
struct Minute {
    time: u32,
    src: Addresses,
    dst: Addresses,
    src_port: Dense,
    dst_port: Dense,
    protocol: Dense,
    src_as: HashMap<u32, (u64, u64), BuildHasherDefault<Fx>>,
}

impl Minute {
    fn new(time: u32, indexed: bool) -> Minute {
        Minute {
            time,
            src: Addresses::default(),
            dst: Addresses::default(),
            src_port: Dense::new(1 << 16, indexed),
            dst_port: Dense::new(1 << 16, indexed),
            protocol: Dense::new(1 << 8, indexed),
            src_as: HashMap::default(),
        }
    }

    fn add(&mut self, r: &FlowRow) {
        let (b, p) = (r.bytes, r.packets);
        let add = |s: &mut (u64, u64)| {
            s.0 = s.0.saturating_add(b);
            s.1 = s.1.saturating_add(p);
        };
        add(self.src.entry(address_bytes(r.src)).or_default());
        add(self.dst.entry(address_bytes(r.dst)).or_default());
        self.src_port.add(u32::from(r.src_port), b, p);
        self.dst_port.add(u32::from(r.dst_port), b, p);
        self.protocol.add(u32::from(r.protocol), b, p);
        add(self.src_as.entry(r.src_as).or_default());
    }

    /// The minute's rows.
    fn rows(self, out: &mut Vec<(Key, (u64, u64))>) {
        let time = self.time;
        let key = |dim, key, number| Key {
            time,
            dim,
            key,
            number,
        };
        for (dim, map) in [(0, self.src), (1, self.dst)] {
            out.extend(map.into_iter().map(|(a, s)| (key(dim, a, 0), s)));
        }
        for (dim, d) in [(2, self.src_port), (3, self.dst_port), (4, self.protocol)] {
            out.extend(
                d.into_rows()
                    .into_iter()
                    .map(|(v, s)| (key(dim, [0; 16], v), s)),
            );
        }
        out.extend(
            self.src_as
                .into_iter()
                .map(|(v, s)| (key(5, [0; 16], v), s)),
        );
    }
}

/// The `flow_batches` row of a batch: its records and their sums per
/// minute and dimension (the views derive the 5-minute and hour rows).
pub fn batch_row(writer: &str, sequence: u64, rows: &[FlowRow]) -> Result<Vec<u8>, StoreError> {
    let mut times = Vec::with_capacity(rows.len());
    // A batch is seconds of records: a minute or two, found by a short
    // scan from the last one used.
    let mut minutes: Vec<Minute> = Vec::new();
    let mut last = 0;
    for r in rows {
        let time = time_of(r)?;
        times.push(time);
        let m = time - time % 60;
        if minutes.get(last).is_none_or(|x| x.time != m) {
            last = match minutes.iter().position(|x| x.time == m) {
                Some(i) => i,
                None => {
                    minutes.push(Minute::new(m, minutes.len() < INDEXED_MINUTES));
                    minutes.len() - 1
                }
            };
        }
        minutes[last].add(r);
    }
    let mut sums = Vec::new();
    for m in minutes {
        m.rows(&mut sums);
    }
    // In each table's order, so that the server finds every block already
    // sorted and skips its own sort when it writes the parts (18.16's
    // `isAlreadySorted`; its sort was 65% of an insert, `perf record`):
    // the sums by (dim, time, key, number), a FixedString comparing as
    // bytes; the records by time, stably. The 5-minute and hour rows are
    // in order too when the batch's minutes share their bucket, which a
    // batch of a second of records does.
    sums.sort_unstable_by(|(a, _), (b, _)| {
        (a.dim, a.time, a.key, a.number).cmp(&(b.dim, b.time, b.key, b.number))
    });
    let mut order: Vec<u32> = (0..rows.len() as u32).collect();
    if times.windows(2).any(|w| w[0] > w[1]) {
        order.sort_by_key(|i| times[*i as usize]);
    }
    Ok(encode(writer, sequence, rows, &order, &times, &sums))
}

/// `order`: the records' indices in the order they are written.
fn encode(
    writer: &str,
    sequence: u64,
    all: &[FlowRow],
    order: &[u32],
    times: &[u32],
    sums: &[(Key, (u64, u64))],
) -> Vec<u8> {
    let rows = || order.iter().map(|i| &all[*i as usize]);
    let mut w = Writer {
        buf: Vec::with_capacity(order.len() * 90 + sums.len() * 90 + 64),
    };
    w.bytes(writer.as_bytes());
    w.u64(sequence);
    let n = order.len() + sums.len();
    // Each array holds the records' values, then the sums' (zeros where a
    // sum has no such column).
    let b = &mut w.buf;
    let len = |b: &mut Vec<u8>| {
        let mut w = Writer {
            buf: std::mem::take(b),
        };
        w.len(n);
        *b = w.buf;
    };
    let zeros = [0u8; 16];
    len(b);
    b.resize(b.len() + order.len(), 0);
    b.resize(b.len() + sums.len(), 1);
    len(b);
    b.resize(b.len() + order.len(), 0);
    b.extend(sums.iter().map(|(k, _)| k.dim));
    len(b);
    order
        .iter()
        .for_each(|i| b.extend_from_slice(&times[*i as usize].to_le_bytes()));
    sums.iter()
        .for_each(|(k, _)| b.extend_from_slice(&k.time.to_le_bytes()));
    len(b);
    rows().for_each(|r| b.extend_from_slice(&address_bytes(Some(r.exporter))));
    sums.iter().for_each(|_| b.extend_from_slice(&zeros));
    len(b);
    rows().for_each(|r| b.extend_from_slice(&address_bytes(r.src)));
    sums.iter().for_each(|(k, _)| b.extend_from_slice(&k.key));
    len(b);
    rows().for_each(|r| b.extend_from_slice(&address_bytes(r.dst)));
    sums.iter().for_each(|_| b.extend_from_slice(&zeros));
    len(b);
    rows().for_each(|r| b.extend_from_slice(&r.src_port.to_le_bytes()));
    b.resize(b.len() + 2 * sums.len(), 0);
    len(b);
    rows().for_each(|r| b.extend_from_slice(&r.dst_port.to_le_bytes()));
    b.resize(b.len() + 2 * sums.len(), 0);
    len(b);
    b.extend(rows().map(|r| r.protocol));
    b.resize(b.len() + sums.len(), 0);
    len(b);
    b.extend(rows().map(|r| r.tcp_flags));
    b.resize(b.len() + sums.len(), 0);
    len(b);
    rows().for_each(|r| b.extend_from_slice(&r.src_as.to_le_bytes()));
    sums.iter()
        .for_each(|(k, _)| b.extend_from_slice(&k.number.to_le_bytes()));
    len(b);
    rows().for_each(|r| b.extend_from_slice(&r.dst_as.to_le_bytes()));
    b.resize(b.len() + 4 * sums.len(), 0);
    len(b);
    rows().for_each(|r| b.extend_from_slice(&r.bytes.to_le_bytes()));
    sums.iter()
        .for_each(|(_, s)| b.extend_from_slice(&s.0.to_le_bytes()));
    len(b);
    rows().for_each(|r| b.extend_from_slice(&r.packets.to_le_bytes()));
    sums.iter()
        .for_each(|(_, s)| b.extend_from_slice(&s.1.to_le_bytes()));
    w.buf
}

/// Writes a batch once: refused as [`StoreError::AlreadyAppended`] when
/// the writer's last stored sequence is at or past it.
pub fn write(
    client: &Client,
    writer: &str,
    sequence: u64,
    rows: &[FlowRow],
) -> Result<(), StoreError> {
    if writer.is_empty() {
        return Err(StoreError::Invalid {
            field: "writer".into(),
            problem: "a flow writer needs a name".into(),
        });
    }
    let body = batch_row(writer, sequence, rows)?;
    let id = query_id(&client.db, writer, sequence);
    client.wait_for(&id)?;
    if let Some(last) = last_sequence(client, writer)? {
        if sequence <= last {
            return Err(StoreError::AlreadyAppended { sequence, last });
        }
    }
    client.insert(
        "flow_batches",
        &body,
        &id,
        &format!("keep {} flow records", rows.len()),
    )
}

/// The pieces of `[from, to)` (seconds) each table answers: whole hours
/// from `flows_1h`, the whole 5 minutes at their edges from `flows_5m`,
/// then minutes, then seconds from `flows`.
pub fn plan(from: i64, to: i64) -> Vec<(&'static str, i64, i64)> {
    fn go(from: i64, to: i64, level: usize, out: &mut Vec<(&'static str, i64, i64)>) {
        if from >= to {
            return;
        }
        let Some((table, seconds, _)) = LEVELS.get(level) else {
            out.push(("flows", from, to));
            return;
        };
        let a =
            from.div_euclid(*seconds) * seconds + if from % seconds == 0 { 0 } else { *seconds };
        let b = to.div_euclid(*seconds) * seconds;
        if a < b {
            go(from, a, level + 1, out);
            out.push((table, a, b));
            go(b, to, level + 1, out);
        } else {
            go(from, to, level + 1, out);
        }
    }
    let mut out = Vec::new();
    go(from.max(0), to.min(LAST_SECOND + 1), 0, &mut out);
    out
}

/// [`history::Store::flow_top`].
pub fn top(client: &Client, q: &FlowTopQuery) -> Result<Vec<Talker>, StoreError> {
    q.check()?;
    // The records' column, and the sums' (dimension, column): both give
    // a FixedString(16) for addresses and a UInt32 for numbers.
    let raw = match q.by {
        FlowBy::Src => "src",
        FlowBy::Dst => "dst",
        FlowBy::SrcPort => "toUInt32(src_port)",
        FlowBy::DstPort => "toUInt32(dst_port)",
        FlowBy::Proto => "toUInt32(protocol)",
        FlowBy::As => "src_as",
    };
    let summed = match q.by {
        FlowBy::Src | FlowBy::Dst => "key",
        _ => "number",
    };
    let d = dim(q.by);
    let pieces = plan(q.from.as_second(), q.to.as_second());
    if pieces.is_empty() {
        return Ok(Vec::new());
    }
    let db = &client.db;
    let union: Vec<String> = pieces
        .iter()
        .map(|(table, a, b)| {
            let (column, only) = if *table == "flows" {
                (raw, String::new())
            } else {
                (summed, format!("dim = {d} AND "))
            };
            format!(
                "SELECT {column} AS k, sum(toDecimal128(bytes, 0)) AS b, \
                 sum(toDecimal128(packets, 0)) AS p FROM {db}.{table} \
                 WHERE {only}time >= toDateTime({a}) AND time < toDateTime({b}) GROUP BY k"
            )
        })
        .collect();
    let sql = format!(
        "SELECT k, sum(b) AS tb, sum(p) AS tp FROM ({}) GROUP BY k ORDER BY tb DESC, k ASC \
         LIMIT {} FORMAT RowBinary",
        union.join(" UNION ALL "),
        q.limit
    );
    let out = client.query(&sql, "read the top talkers")?;
    let place = "flows";
    let mut r = Reader::new(&out);
    let mut talkers = Vec::new();
    while !r.done() {
        let key = match q.by {
            FlowBy::Src | FlowBy::Dst => {
                let mut b = [0u8; 16];
                for x in &mut b {
                    *x = r.u8().map_err(truncated(place))?;
                }
                FlowKey::Address(address_from_bytes(b))
            }
            _ => FlowKey::Number(r.u32().map_err(truncated(place))?),
        };
        let bytes = r.i128().map_err(truncated(place))?;
        let packets = r.i128().map_err(truncated(place))?;
        talkers.push(Talker {
            key,
            bytes: u128::try_from(bytes).unwrap_or(0),
            packets: u128::try_from(packets).unwrap_or(0),
        });
    }
    let limit = q.limit;
    rank(&mut talkers, limit);
    Ok(talkers)
}

/// What [`forget`] dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowRetentionReport {
    /// Whole partitions dropped, over the four tables.
    pub partitions_dropped: u64,
}

/// Drops every partition of the flow tables that ends at or before its
/// table's cut (`now` less its days).
pub fn forget(
    client: &Client,
    now: jiff::Timestamp,
    r: &FlowRetention,
) -> Result<FlowRetentionReport, StoreError> {
    let now = now.as_second();
    let tables = [
        ("flows", RAW_PARTITION, r.raw_days),
        ("flows_1m", LEVELS[2].2, r.minute_days),
        ("flows_5m", LEVELS[1].2, r.five_minute_days),
        ("flows_1h", LEVELS[0].2, r.hour_days),
    ];
    let mut report = FlowRetentionReport::default();
    for (table, per, days) in tables {
        let cut = now - i64::from(days) * 86400;
        let sql = format!(
            "SELECT DISTINCT partition_id FROM system.parts
             WHERE database = '{}' AND table = '{table}' AND active FORMAT TSV",
            client.db
        );
        let out = client.query(&sql, "flow retention: list partitions")?;
        for id in String::from_utf8_lossy(&out).lines() {
            let Ok(n) = id.trim().parse::<i64>() else {
                continue;
            };
            if (n + 1) * per <= cut {
                client.query(
                    &format!("ALTER TABLE {}.{table} DROP PARTITION {n}", client.db),
                    &format!("flow retention: drop partition {n} of {table}"),
                )?;
                report.partitions_dropped += 1;
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_is_tiled_by_the_coarsest_buckets_that_fit() {
        // 00:59:30 .. 03:07:10 (seconds from the epoch).
        let from = 3600 - 30;
        let to = 3 * 3600 + 7 * 60 + 10;
        let p = plan(from, to);
        assert_eq!(
            p,
            vec![
                ("flows", 3570, 3600),
                ("flows_1h", 3600, 3 * 3600),
                ("flows_5m", 3 * 3600, 3 * 3600 + 300),
                ("flows_1m", 3 * 3600 + 300, 3 * 3600 + 420),
                ("flows", 3 * 3600 + 420, to),
            ]
        );
        // The pieces tile the range exactly.
        let mut at = from;
        for (_, a, b) in &p {
            assert_eq!(*a, at);
            at = *b;
        }
        assert_eq!(at, to);
        assert_eq!(plan(120, 180), vec![("flows_1m", 120, 180)]);
        assert_eq!(plan(5, 7), vec![("flows", 5, 7)]);
        assert!(plan(7, 7).is_empty());
    }

    #[test]
    fn ipv4_mapped_addresses_spread_over_the_hash_tables_buckets() {
        use std::hash::BuildHasher;
        // hashbrown takes a bucket from the hash's low bits: 4,096
        // addresses must not share a few of them.
        let buckets: std::collections::HashSet<u64> = (0..4096u32)
            .map(|i| {
                let a = address_bytes(Some(std::net::IpAddr::V4((0xc633_0000 | i).into())));
                BuildHasherDefault::<Fx>::default().hash_one(a) & 0xfff
            })
            .collect();
        assert!(buckets.len() > 2000, "{} buckets of 4096", buckets.len());
    }

    #[test]
    fn a_batch_is_written_in_its_tables_order() {
        let row = |time, src: &str, dst_port| FlowRow {
            time,
            exporter: "192.0.2.1".parse().unwrap(),
            src: Some(src.parse().unwrap()),
            dst: Some("203.0.113.1".parse().unwrap()),
            src_port: 1,
            dst_port,
            protocol: 6,
            tcp_flags: 0,
            src_as: 0,
            dst_as: 0,
            bytes: 1,
            packets: 1,
        };
        let rows = [
            row(9, "198.51.100.9", 443),
            row(3, "198.51.100.1", 80),
            row(7, "198.51.100.5", 53),
            row(3, "198.51.100.2", 22),
        ];
        let body = batch_row("w", 1, &rows).unwrap();
        let mut r = Reader::new(&body);
        r.bytes().unwrap();
        r.u64().unwrap();
        let n = r.len().unwrap();
        let whats: Vec<u8> = (0..n).map(|_| r.u8().unwrap()).collect();
        let dims: Vec<u8> = (0..r.len().unwrap()).map(|_| r.u8().unwrap()).collect();
        let times: Vec<u32> = (0..r.len().unwrap()).map(|_| r.u32().unwrap()).collect();
        for _ in 0..r.len().unwrap() * 16 {
            r.u8().unwrap(); // the exporters
        }
        let srcs: Vec<[u8; 16]> = (0..r.len().unwrap())
            .map(|_| std::array::from_fn(|_| r.u8().unwrap()))
            .collect();
        // The records by time, stably (the two at second 3 as given).
        assert_eq!(&times[..4], &[3, 3, 7, 9]);
        assert_eq!(srcs[0][15], 1);
        assert_eq!(srcs[1][15], 2);
        // The sums by (dim, time, key): sources ascending first.
        assert!(whats[4..].iter().all(|w| *w == 1));
        let sums: Vec<(u8, u32, [u8; 16])> = (4..n).map(|i| (dims[i], times[i], srcs[i])).collect();
        let mut sorted = sums.clone();
        sorted.sort();
        assert_eq!(sums, sorted);
        assert_eq!(sums[0].2[15], 1);
    }

    #[test]
    fn a_batch_sums_its_records_per_dimension_and_level() {
        let row = |time, src_port, bytes| FlowRow {
            time,
            exporter: "192.0.2.1".parse().unwrap(),
            src: Some("198.51.100.1".parse().unwrap()),
            dst: Some("203.0.113.1".parse().unwrap()),
            src_port,
            dst_port: 80,
            protocol: 6,
            tcp_flags: 2,
            src_as: 0,
            dst_as: 0,
            bytes,
            packets: 1,
        };
        // Minutes 0, 1 and 5 (5 with two source ports).
        let rows = [
            row(0, 1, 10),
            row(30, 1, 20),
            row(61, 1, 5),
            row(301, 1, 7),
            row(302, 2, 1),
        ];
        let body = batch_row("w", 9, &rows).unwrap();
        let mut r = Reader::new(&body);
        assert_eq!(r.bytes().unwrap(), b"w");
        assert_eq!(r.u64().unwrap(), 9);
        let n = r.len().unwrap();
        let whats: Vec<u8> = (0..n).map(|_| r.u8().unwrap()).collect();
        let count = |w| whats.iter().filter(|x| **x == w).count();
        // 5 records; per minute: 3 minutes × 6 dimensions, and a second
        // source port in minute 5 (the views derive the coarser rows).
        assert_eq!((count(0), count(1)), (5, 19));
        // The sums: 10 + 20 bytes in minute 0 for every dimension.
        let dims: Vec<u8> = (0..r.len().unwrap()).map(|_| r.u8().unwrap()).collect();
        assert_eq!(dims.len(), 24);
        assert!(batch_row("w", 1, &[row(-1, 1, 1)]).is_err());
        // Records over 100 minutes: the same sums, mapped past the first
        // few minutes.
        let spread: Vec<FlowRow> = (0..200).map(|i| row(i * 30, 1, 1)).collect();
        let body = batch_row("w", 1, &spread).unwrap();
        let mut r = Reader::new(&body);
        r.bytes().unwrap();
        r.u64().unwrap();
        let n = r.len().unwrap();
        let sums = (0..n).filter(|_| r.u8().unwrap() == 1).count();
        assert_eq!(sums, 100 * 6);
    }
}
