//! Flow records kept (`[history.flows]`): the rows a store keeps of the
//! collector's decoded records, and the top-talkers question asked of
//! them. Only the ClickHouse store keeps them; the others answer
//! [`crate::Store::flow_top`] with an error naming `history.flows`.

use crate::error::StoreError;
use jiff::Timestamp;
use serde::Serialize;
use std::net::IpAddr;

/// One kept flow record, its counts already scaled by its sampling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRow {
    /// When the flow ended (the record's end), Unix seconds.
    pub time: i64,
    /// The exporter that sent the record.
    pub exporter: IpAddr,
    /// Source address, `None` when the record had none.
    pub src: Option<IpAddr>,
    /// Destination address, `None` when the record had none.
    pub dst: Option<IpAddr>,
    /// Transport source port (0 when absent).
    pub src_port: u16,
    /// Transport destination port (0 when absent).
    pub dst_port: u16,
    /// IP protocol number.
    pub protocol: u8,
    /// The OR of the flow's TCP flags.
    pub tcp_flags: u8,
    /// Source AS, 0 when unknown.
    pub src_as: u32,
    /// Destination AS, 0 when unknown.
    pub dst_as: u32,
    /// Bytes, sampling undone.
    pub bytes: u64,
    /// Packets, sampling undone.
    pub packets: u64,
}

/// What top talkers are ranked by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FlowBy {
    /// Source address.
    Src,
    /// Destination address.
    Dst,
    /// Transport source port.
    SrcPort,
    /// Transport destination port.
    DstPort,
    /// IP protocol.
    Proto,
    /// Source AS (0 when the records carry none).
    As,
}

impl FlowBy {
    /// Every value, in the order help texts list them.
    pub const ALL: [FlowBy; 6] = [
        FlowBy::Src,
        FlowBy::Dst,
        FlowBy::SrcPort,
        FlowBy::DstPort,
        FlowBy::Proto,
        FlowBy::As,
    ];

    /// The spelling in `--by` and `?by=`.
    pub fn name(self) -> &'static str {
        match self {
            FlowBy::Src => "src",
            FlowBy::Dst => "dst",
            FlowBy::SrcPort => "src-port",
            FlowBy::DstPort => "dst-port",
            FlowBy::Proto => "proto",
            FlowBy::As => "as",
        }
    }

    /// Parses a spelling; the error lists the valid ones.
    pub fn parse(text: &str) -> Result<FlowBy, String> {
        FlowBy::ALL
            .into_iter()
            .find(|b| b.name() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = FlowBy::ALL.iter().map(|b| b.name()).collect();
                format!("`{text}` is not one of {}", names.join(", "))
            })
    }

    /// The key of a row this ranks by.
    pub fn key(self, r: &FlowRow) -> FlowKey {
        match self {
            FlowBy::Src => FlowKey::Address(r.src),
            FlowBy::Dst => FlowKey::Address(r.dst),
            FlowBy::SrcPort => FlowKey::Number(u32::from(r.src_port)),
            FlowBy::DstPort => FlowKey::Number(u32::from(r.dst_port)),
            FlowBy::Proto => FlowKey::Number(u32::from(r.protocol)),
            FlowBy::As => FlowKey::Number(r.src_as),
        }
    }
}

/// The value a talker is: an address (or none) or a number (port,
/// protocol, AS).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(untagged)]
pub enum FlowKey {
    /// An address; `None` for records without one.
    Address(Option<IpAddr>),
    /// A port, protocol number or AS number.
    Number(u32),
}

/// An address as 16 bytes: IPv6 as is, IPv4 mapped (`::ffff:a.b.c.d`),
/// none as zeros. Stores keep addresses so, and talkers tie-break in
/// this bytes' order (what a store's `ORDER BY` on them gives).
pub fn address_bytes(a: Option<IpAddr>) -> [u8; 16] {
    match a {
        None => [0; 16],
        Some(IpAddr::V4(v4)) => v4.to_ipv6_mapped().octets(),
        Some(IpAddr::V6(v6)) => v6.octets(),
    }
}

/// The address of [`address_bytes`]' form.
pub fn address_from_bytes(b: [u8; 16]) -> Option<IpAddr> {
    if b == [0; 16] {
        return None;
    }
    let v6 = std::net::Ipv6Addr::from(b);
    Some(match v6.to_ipv4_mapped() {
        Some(v4) => IpAddr::V4(v4),
        None => IpAddr::V6(v6),
    })
}

impl Ord for FlowKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        match (self, other) {
            (FlowKey::Address(a), FlowKey::Address(b)) => address_bytes(*a).cmp(&address_bytes(*b)),
            (FlowKey::Number(a), FlowKey::Number(b)) => a.cmp(b),
            (FlowKey::Address(_), FlowKey::Number(_)) => std::cmp::Ordering::Less,
            (FlowKey::Number(_), FlowKey::Address(_)) => std::cmp::Ordering::Greater,
        }
    }
}

impl PartialOrd for FlowKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl std::fmt::Display for FlowKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FlowKey::Address(Some(a)) => write!(f, "{a}"),
            FlowKey::Address(None) => write!(f, "(none)"),
            FlowKey::Number(n) => write!(f, "{n}"),
        }
    }
}

/// The most records a top-talkers answer lists.
pub const MAX_TALKERS: usize = 10_000;

/// Top talkers over `[from, to)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowTopQuery {
    /// Ranked by what.
    pub by: FlowBy,
    /// From (inclusive), to the second.
    pub from: Timestamp,
    /// To (exclusive).
    pub to: Timestamp,
    /// How many (1 ..= [`MAX_TALKERS`]).
    pub limit: usize,
}

impl FlowTopQuery {
    /// Checks the range and the limit, naming the field.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.to <= self.from {
            return Err(StoreError::Invalid {
                field: "since".into(),
                problem: format!("the range {} .. {} is empty", self.from, self.to),
            });
        }
        if self.limit == 0 || self.limit > MAX_TALKERS {
            return Err(StoreError::Invalid {
                field: "limit".into(),
                problem: format!("{} is not in 1 ..= {MAX_TALKERS}", self.limit),
            });
        }
        Ok(())
    }
}

/// One top talker: its bytes and packets over the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct Talker {
    /// The source, destination, port, protocol or AS.
    pub key: FlowKey,
    /// Bytes (sampling undone).
    pub bytes: u128,
    /// Packets (sampling undone).
    pub packets: u128,
}

/// Ranks talkers: bytes descending, then the key ascending (a stable
/// order for ties).
pub fn rank(talkers: &mut Vec<Talker>, limit: usize) {
    talkers.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.key.cmp(&b.key)));
    talkers.truncate(limit);
}

/// Top talkers computed directly from rows (the reference the stores are
/// tested against, and small enough to be obviously right).
pub fn top_of(rows: &[FlowRow], q: &FlowTopQuery) -> Vec<Talker> {
    let (from, to) = (q.from.as_second(), q.to.as_second());
    let mut sums: std::collections::HashMap<FlowKey, (u128, u128)> = Default::default();
    for r in rows.iter().filter(|r| r.time >= from && r.time < to) {
        let s = sums.entry(q.by.key(r)).or_default();
        s.0 += u128::from(r.bytes);
        s.1 += u128::from(r.packets);
    }
    let mut out: Vec<Talker> = sums
        .into_iter()
        .map(|(key, (bytes, packets))| Talker {
            key,
            bytes,
            packets,
        })
        .collect();
    rank(&mut out, q.limit);
    out
}

/// How long kept flow records stay, in days per table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FlowRetention {
    /// The records themselves.
    pub raw_days: u32,
    /// Per minute.
    pub minute_days: u32,
    /// Per 5 minutes.
    pub five_minute_days: u32,
    /// Per hour.
    pub hour_days: u32,
}

impl Default for FlowRetention {
    fn default() -> Self {
        FlowRetention {
            raw_days: 15,
            minute_days: 30,
            five_minute_days: 90,
            hour_days: 730,
        }
    }
}

/// The error of a store that keeps no flow records.
pub fn not_kept() -> StoreError {
    StoreError::Invalid {
        field: "history.flows".into(),
        problem: "flow records are kept only in a ClickHouse history ([history] store = \"clickhouse\" with [history.flows] keep = true)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_a_bad_one_lists_the_good_ones() {
        for b in FlowBy::ALL {
            assert_eq!(FlowBy::parse(b.name()), Ok(b));
        }
        let e = FlowBy::parse("port").unwrap_err();
        assert!(e.contains("`port`") && e.contains("dst-port"), "{e}");
    }

    #[test]
    fn the_reference_sums_in_range_and_ranks_ties_by_key() {
        let row = |time, port, bytes| FlowRow {
            time,
            exporter: "192.0.2.1".parse().unwrap(),
            src: None,
            dst: None,
            src_port: 1,
            dst_port: port,
            protocol: 6,
            tcp_flags: 0,
            src_as: 0,
            dst_as: 0,
            bytes,
            packets: 1,
        };
        let rows = [
            row(10, 80, 5),
            row(11, 443, 5),
            row(12, 80, 1),
            row(20, 22, 99),
        ];
        let q = FlowTopQuery {
            by: FlowBy::DstPort,
            from: Timestamp::from_second(10).unwrap(),
            to: Timestamp::from_second(20).unwrap(),
            limit: 5,
        };
        let top = top_of(&rows, &q);
        let keys: Vec<_> = top.iter().map(|t| (t.key, t.bytes)).collect();
        assert_eq!(
            keys,
            vec![(FlowKey::Number(80), 6), (FlowKey::Number(443), 5)]
        );
        assert!(q.check().is_ok());
        assert!(FlowTopQuery { limit: 0, ..q }.check().is_err());
    }
}
