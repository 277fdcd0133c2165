//! One kernel counter pair (bytes, packets) → the traffic since the last read.
//!
//! # What is exact and what is a heuristic
//!
//! Exact:
//! - **Normal growth.** Both counters went up: the delta is the difference.
//! - **A 32-bit packet counter wrapped** (the kernel's `gnet_stats_basic`
//!   carries 32-bit packets when `TCA_STATS_PKT64` is absent): the byte
//!   counter, which is 64 bits wide, went up while packets went down. The
//!   delta is `new + 2³² − old`. This assumes at most one wrap per read
//!   interval: 2³² packets in 10 s is 429 million packets per second, far
//!   beyond one class.
//! - **A new object** (the caller's [`ObjectIdentity`] changed: a class
//!   recreated with a fresh handle by a move, an IFB recreated with a new
//!   ifindex): everything on the new object arrived after the last read, so
//!   its whole counter is the delta.
//! - **A daemon restart**, as long as the state that produced the last
//!   persisted samples is persisted in the same transaction as them (see
//!   the crate overview): the next read continues from that state.
//!
//! Heuristics:
//! - **A reset in place** (qdisc deleted and re-added with the same handle,
//!   so the identity did not change). It is detected when the byte counter
//!   went down, or when packets went down by more than the bytes went up
//!   (a wrap would need at least one byte per packet). The new value is
//!   taken as the delta; traffic the old object carried between the last
//!   read and its removal is lost (at most one read interval's worth).
//!   A reset after which the new object already carried more bytes *and*
//!   packets than the old one had at the last read cannot be told apart from
//!   growth; it undercounts by the old object's value. Pass an identity that
//!   changes when objects are recreated to make these cases exact.
//! - **First sight** of a counter with no state: by default its value is a
//!   baseline only, because nobody knows when that traffic happened. The
//!   caller can ask to count it from zero ([`FirstSight::CountFromZero`])
//!   for objects it has just created itself.

use crate::slot::Slot;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which object a counter belongs to, as the caller tells them apart: for a
/// tc class, for example, the IFB's ifindex and the class handle. Any change
/// means "a different object": its counter started from zero.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ObjectIdentity(pub u64);

/// How wide the kernel's packet counter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CounterWidth {
    /// `gnet_stats_basic.packets`: wraps at 2³².
    Bits32,
    /// `TCA_STATS_PKT64`: does not wrap in practice.
    Bits64,
}

/// What to do with a counter seen for the first time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FirstSight {
    /// Take its value as a baseline and count nothing (the safe default).
    Baseline,
    /// Count its whole value: the caller knows the object is new.
    CountFromZero,
}

/// One read of one object's counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    /// Which object was read.
    pub object: ObjectIdentity,
    /// The byte counter (64 bits in every kernel).
    pub bytes: u64,
    /// The packet counter.
    pub packets: u64,
}

/// Traffic between two reads.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Bytes.
    pub bytes: u64,
    /// Packets.
    pub packets: u64,
}

impl Usage {
    /// Whether nothing was counted.
    pub fn is_zero(self) -> bool {
        self.bytes == 0 && self.packets == 0
    }

    /// The sum with another usage, or `None` if bytes or packets would
    /// pass 2⁶⁴ − 1 (18 EB): never a clamped sum.
    pub fn checked_add(self, other: Usage) -> Option<Usage> {
        Some(Usage {
            bytes: self.bytes.checked_add(other.bytes)?,
            packets: self.packets.checked_add(other.packets)?,
        })
    }
}

/// What happened to a counter, beyond plain growth. The daemon logs these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CounterEvent {
    /// The counter was seen for the first time.
    FirstSight,
    /// The object's identity changed; its whole value was counted.
    NewObject,
    /// The counter went down on the same object; the new value was counted.
    Reset,
    /// The 32-bit packet counter wrapped.
    PacketWrap,
    /// Traffic that would have taken a slot's bytes or packets past 2⁶⁴ − 1
    /// (18 EB in five minutes: a counter glitch, not traffic) was left out
    /// of that slot's sample rather than clamped. Log it and count it.
    Overflow {
        /// The slot.
        slot: Slot,
        /// What was left out.
        dropped: Usage,
    },
}

impl fmt::Display for CounterEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CounterEvent::FirstSight => f.write_str("first sight"),
            CounterEvent::NewObject => f.write_str("new object: its whole counter was counted"),
            CounterEvent::Reset => f.write_str("reset in place: the new value was counted"),
            CounterEvent::PacketWrap => f.write_str("32-bit packet counter wrapped"),
            CounterEvent::Overflow { slot, dropped } => write!(
                f,
                "{} bytes and {} packets left out of slot {slot}: the slot would pass 2^64 − 1",
                dropped.bytes, dropped.packets
            ),
        }
    }
}

/// The traffic between `previous` and `now`, and what happened to the counter.
pub fn delta(
    previous: Option<&Reading>,
    now: &Reading,
    width: CounterWidth,
    first_sight: FirstSight,
) -> (Usage, Option<CounterEvent>) {
    let whole = Usage {
        bytes: now.bytes,
        packets: now.packets,
    };
    let Some(prev) = previous else {
        let counted = match first_sight {
            FirstSight::Baseline => Usage::default(),
            FirstSight::CountFromZero => whole,
        };
        return (counted, Some(CounterEvent::FirstSight));
    };
    if prev.object != now.object {
        return (whole, Some(CounterEvent::NewObject));
    }
    if now.bytes < prev.bytes {
        return (whole, Some(CounterEvent::Reset));
    }
    let bytes = now.bytes - prev.bytes;
    if now.packets >= prev.packets {
        let usage = Usage {
            bytes,
            packets: now.packets - prev.packets,
        };
        return (usage, None);
    }
    // Packets went down while bytes did not: a 32-bit wrap if the numbers
    // allow one, otherwise the object was reset.
    let fits = prev.packets <= u64::from(u32::MAX) && now.packets <= u64::from(u32::MAX);
    if width == CounterWidth::Bits32 && fits {
        let packets = now.packets + (1u64 << 32) - prev.packets;
        // Every packet carries at least one byte; a "wrap" that needs more
        // packets than bytes is a reset that happened to leave bytes higher.
        if packets <= bytes {
            return (Usage { bytes, packets }, Some(CounterEvent::PacketWrap));
        }
    }
    (whole, Some(CounterEvent::Reset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(object: u64, bytes: u64, packets: u64) -> Reading {
        Reading {
            object: ObjectIdentity(object),
            bytes,
            packets,
        }
    }

    const W32: CounterWidth = CounterWidth::Bits32;
    const BASE: FirstSight = FirstSight::Baseline;

    #[test]
    fn growth_is_the_difference() {
        let (u, e) = delta(Some(&r(1, 1000, 10)), &r(1, 2500, 13), W32, BASE);
        assert_eq!((u.bytes, u.packets, e), (1500, 3, None));
    }

    #[test]
    fn packet_wrap_at_2_pow_32() {
        let prev = r(1, 10_000_000_000, u64::from(u32::MAX) - 4);
        let now = r(1, 10_000_009_000, 5);
        let (u, e) = delta(Some(&prev), &now, W32, BASE);
        // 4 packets up to u32::MAX, one to wrap to 0, five more: 10.
        assert_eq!((u.bytes, u.packets), (9_000, 10));
        assert_eq!(e, Some(CounterEvent::PacketWrap));
    }

    #[test]
    fn packets_down_with_64_bit_counters_is_a_reset() {
        let (u, e) = delta(
            Some(&r(1, 1000, 500)),
            &r(1, 5000, 3),
            CounterWidth::Bits64,
            BASE,
        );
        assert_eq!((u.bytes, u.packets), (5000, 3));
        assert_eq!(e, Some(CounterEvent::Reset));
    }

    #[test]
    fn implausible_wrap_is_a_reset() {
        // Bytes rose by 4000 but a wrap would mean 4.29e9 packets.
        let (u, e) = delta(Some(&r(1, 1000, 10)), &r(1, 5000, 3), W32, BASE);
        assert_eq!((u.bytes, u.packets), (5000, 3));
        assert_eq!(e, Some(CounterEvent::Reset));
    }

    #[test]
    fn bytes_down_is_a_reset() {
        let (u, e) = delta(Some(&r(1, 9000, 90)), &r(1, 300, 2), W32, BASE);
        assert_eq!((u.bytes, u.packets), (300, 2));
        assert_eq!(e, Some(CounterEvent::Reset));
    }

    #[test]
    fn new_identity_counts_everything() {
        let (u, e) = delta(Some(&r(1, 9000, 90)), &r(2, 12000, 100), W32, BASE);
        assert_eq!((u.bytes, u.packets), (12000, 100));
        assert_eq!(e, Some(CounterEvent::NewObject));
    }

    #[test]
    fn first_sight_is_a_baseline_unless_asked() {
        let (u, e) = delta(None, &r(1, 9000, 90), W32, BASE);
        assert!(u.is_zero());
        assert_eq!(e, Some(CounterEvent::FirstSight));
        let (u, _) = delta(None, &r(1, 9000, 90), W32, FirstSight::CountFromZero);
        assert_eq!((u.bytes, u.packets), (9000, 90));
    }
}
