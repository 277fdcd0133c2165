//! Splitting one read interval's traffic over the 5-minute slots it spans.
//!
//! A read at 12:04:55 followed by one at 12:05:05 carries traffic of two
//! slots. Without per-packet timestamps the only fair split is in proportion
//! to time: half to each. The split is done on cumulative amounts
//! (`⌊total × elapsed / length⌋` at each boundary) so that the parts always
//! add up to the whole, to the byte: rounding never creates or loses traffic.

use crate::counter::Usage;
use crate::slot::Slot;

/// Calls `part(slot, usage)` for every slot that `[from_ms, to_ms)` overlaps,
/// with that slot's share of `usage`. An empty interval (`from_ms >= to_ms`)
/// gives everything to the slot that contains `to_ms`. Slots whose share is
/// zero are still reported, so the caller can see which slots were covered.
pub fn spread(from_ms: i64, to_ms: i64, usage: Usage, mut part: impl FnMut(Slot, Usage)) {
    if from_ms >= to_ms {
        part(Slot::containing_millis(to_ms), usage);
        return;
    }
    let length = (to_ms - from_ms) as u128;
    let share = |total: u64, at: i64| -> u64 {
        // total × elapsed / length ≤ total, so the result fits in u64.
        (total as u128 * (at - from_ms) as u128 / length) as u64
    };
    let mut slot = Slot::containing_millis(from_ms);
    let mut given = Usage::default();
    loop {
        let end = slot.end_millis().min(to_ms);
        let upto = Usage {
            bytes: share(usage.bytes, end),
            packets: share(usage.packets, end),
        };
        part(
            slot,
            Usage {
                bytes: upto.bytes - given.bytes,
                packets: upto.packets - given.packets,
            },
        );
        given = upto;
        if end >= to_ms {
            break;
        }
        slot = slot.next();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::slot::SAMPLE_MILLIS;

    fn collect(from: i64, to: i64, bytes: u64, packets: u64) -> Vec<(i64, u64, u64)> {
        let mut out = Vec::new();
        spread(from, to, Usage { bytes, packets }, |s, u| {
            out.push((s.0, u.bytes, u.packets))
        });
        out
    }

    #[test]
    fn inside_one_slot_all_goes_there() {
        assert_eq!(collect(1_000, 11_000, 500, 5), vec![(0, 500, 5)]);
    }

    #[test]
    fn across_a_boundary_in_proportion_to_time() {
        // 12:04:55 → 12:05:05 style: 5 s before the boundary, 5 s after.
        let b = SAMPLE_MILLIS;
        assert_eq!(
            collect(b - 5_000, b + 5_000, 1000, 10),
            vec![(0, 500, 5), (1, 500, 5)]
        );
        // 2 s before, 8 s after.
        assert_eq!(
            collect(b - 2_000, b + 8_000, 1000, 10),
            vec![(0, 200, 2), (1, 800, 8)]
        );
    }

    #[test]
    fn rounding_never_loses_a_byte() {
        let b = SAMPLE_MILLIS;
        let parts = collect(b - 1_000, b + 2_000, 1001, 7);
        assert_eq!(parts.iter().map(|p| p.1).sum::<u64>(), 1001);
        assert_eq!(parts.iter().map(|p| p.2).sum::<u64>(), 7);
        // 1001 × 1/3 = 333.67 → 333 before the boundary.
        assert_eq!(parts[0].1, 333);
    }

    #[test]
    fn a_long_gap_spreads_evenly() {
        let parts = collect(0, 3 * SAMPLE_MILLIS, 900, 0);
        assert_eq!(parts, vec![(0, 300, 0), (1, 300, 0), (2, 300, 0)]);
    }

    #[test]
    fn ending_on_a_boundary_does_not_touch_the_next_slot() {
        let parts = collect(SAMPLE_MILLIS - 10_000, SAMPLE_MILLIS, 70, 1);
        assert_eq!(parts, vec![(0, 70, 1)]);
    }

    proptest::proptest! {
        #[test]
        fn parts_add_up(from in -1_000_000_000i64..1_000_000_000, len in 0i64..5_000_000,
                        bytes in 0u64..u64::MAX, packets in 0u64..u64::MAX) {
            let mut b = 0u128;
            let mut p = 0u128;
            spread(from, from + len, Usage { bytes, packets }, |_, u| {
                b += u.bytes as u128;
                p += u.packets as u128;
            });
            proptest::prop_assert_eq!(b, bytes as u128);
            proptest::prop_assert_eq!(p, packets as u128);
        }
    }
}
