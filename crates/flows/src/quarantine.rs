//! Records too large to be true: the bound on what one tenant × realm ×
//! direction can carry in a slot, and what is kept of a record refused
//! for breaking it.
//!
//! A record's bytes × sampling (or packets × sampling) lands in one 5-minute
//! slot per key, summed with every other record of that slot and key, and
//! the history stores sums as signed 64-bit integers. A broken or hostile
//! exporter can claim anything (two records of 2^62 bytes summed past
//! 2^63 blocked every later commit, issue 12). So a record whose share of a
//! slot, alone or with what the slot already holds, exceeds what any link
//! carries is not added: it is quarantined, with enough of it kept to find
//! the exporter and the field.

use flow_wire::FlowRecord;
use std::fmt;
use std::net::IpAddr;

/// The most bytes one tenant × realm × direction is believed to carry in
/// one 5-minute slot: 2^50 B (1.13 PB). A 1.6 Tbit/s link (the fastest
/// Ethernet port, 1.6 TbE) carries 6 × 10^13 B in 5 minutes; the limit is
/// 18 times that. Sums stay far from 2^63: 8,192 slot-fulls of one key
/// (one per worker and commit) would be needed to reach it.
pub const SLOT_BYTES_LIMIT: u64 = 1 << 50;

/// The most packets one tenant × realm × direction is believed to send
/// or receive in one slot: 2^44 (1.76 × 10^13). A 1.6 Tbit/s link carries
/// at most 2.4 × 10^9 minimum-size frames a second, 7.1 × 10^11 in a
/// slot; the limit is about 25 times that.
pub const SLOT_PACKETS_LIMIT: u64 = 1 << 44;

/// Which counter of a record was implausible.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Counter {
    /// Bytes × sampling.
    Bytes,
    /// Packets × sampling.
    Packets,
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Counter::Bytes => "bytes",
            Counter::Packets => "packets",
        })
    }
}

/// Why a record was quarantined.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QuarantineReason {
    /// The counter times the sampling does not fit in 64 bits.
    Overflow,
    /// The record alone would put more than `limit` into one slot.
    AboveSlotLimit {
        /// [`SLOT_BYTES_LIMIT`] or [`SLOT_PACKETS_LIMIT`].
        limit: u64,
    },
    /// With the `held` already counted in that slot and key since the
    /// last drain, the slot would exceed `limit`.
    SlotTotalAboveLimit {
        /// [`SLOT_BYTES_LIMIT`] or [`SLOT_PACKETS_LIMIT`].
        limit: u64,
        /// What the slot and key held.
        held: u64,
    },
}

impl fmt::Display for QuarantineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuarantineReason::Overflow => f.write_str("scaled by its sampling it exceeds 2^64"),
            QuarantineReason::AboveSlotLimit { limit } => write!(
                f,
                "more than {limit} in one 5-minute slot, beyond any link's capacity"
            ),
            QuarantineReason::SlotTotalAboveLimit { limit, held } => write!(
                f,
                "with the {held} already counted in its slot, more than {limit}, beyond any link's capacity"
            ),
        }
    }
}

/// A record refused as implausible, as much as is needed to find it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quarantined {
    /// Who sent it.
    pub exporter: IpAddr,
    /// When it arrived, Unix ms.
    pub received_ms: i64,
    /// The record as decoded (counters before sampling).
    pub record: FlowRecord,
    /// The implausible counter.
    pub counter: Counter,
    /// Its value after sampling (for one slot's share when the flow spans
    /// several); `None` when that does not fit in 64 bits.
    pub value: Option<u64>,
    /// Why.
    pub reason: QuarantineReason,
}

impl fmt::Display for Quarantined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let addr = |a: Option<IpAddr>| a.map_or_else(|| "?".to_string(), |a| a.to_string());
        let value = self
            .value
            .map_or_else(|| "more than 2^64".to_string(), |v| v.to_string());
        write!(
            f,
            "record from exporter {} ({} → {}): {} = {value} ({} reported, sampling {}/{}): {}",
            self.exporter,
            addr(self.record.src),
            addr(self.record.dst),
            self.counter,
            match self.counter {
                Counter::Bytes => self.record.bytes,
                Counter::Packets => self.record.packets,
            },
            self.record.sampling.population,
            self.record.sampling.selected,
            self.reason
        )
    }
}
