//! Which 5-minute slots the collector was listening through.
//!
//! A bill counts a slot as *missing* when nothing observed it. For a tenant
//! measured by flows, "observed" means the collector was running: a slot in
//! which no record arrived, while the collector listened, is a slot of zero
//! traffic, not a gap.

use accounting::{Slot, SlotCoverage, SlotStatus};

/// Reports each slot once, as it closes.
#[derive(Clone, Debug)]
pub struct SlotClock {
    started_ms: i64,
    next: Slot,
}

impl SlotClock {
    /// A collector that started listening at `started_ms`.
    pub fn new(started_ms: i64) -> SlotClock {
        SlotClock {
            started_ms,
            next: Slot::containing_millis(started_ms),
        }
    }

    /// The slots that closed by `now_ms` and were not reported yet: the
    /// first one `Partial` unless listening began at its very start, the
    /// rest `Measured`.
    pub fn closed(&mut self, now_ms: i64) -> Vec<SlotCoverage> {
        let mut out = Vec::new();
        while self.next.end_millis() <= now_ms {
            let status = if self.next.start_millis() < self.started_ms {
                SlotStatus::Partial
            } else {
                SlotStatus::Measured
            };
            out.push(SlotCoverage {
                slot: self.next,
                status,
            });
            self.next = self.next.next();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::SAMPLE_MILLIS;

    #[test]
    fn the_first_slot_is_partial_and_each_slot_is_reported_once() {
        let t0 = 1000 * SAMPLE_MILLIS + 7;
        let mut c = SlotClock::new(t0);
        assert!(c.closed(t0 + 10).is_empty());
        let first = c.closed(1001 * SAMPLE_MILLIS);
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].status, SlotStatus::Partial);
        let more = c.closed(1004 * SAMPLE_MILLIS + 5);
        assert_eq!(
            more.iter().map(|s| s.slot.0).collect::<Vec<_>>(),
            vec![1001, 1002, 1003]
        );
        assert!(more.iter().all(|s| s.status == SlotStatus::Measured));
        assert!(c.closed(1004 * SAMPLE_MILLIS + 6).is_empty());
    }

    #[test]
    fn starting_on_a_boundary_measures_the_first_slot() {
        let mut c = SlotClock::new(50 * SAMPLE_MILLIS);
        assert_eq!(c.closed(51 * SAMPLE_MILLIS)[0].status, SlotStatus::Measured);
    }
}
