//! A tap on the decoded flow records, for the guard: every record whose
//! addresses the tap wants is copied into a bounded queue *before* it is
//! attributed and folded into tenant totals.
//!
//! The queue is bounded so that a flood of flow records (an attack seen
//! by the exporter is exactly that) cannot grow the collector's memory:
//! when it is full the record is dropped and counted, never waited for
//! (a worker that blocked would lose datagrams in the kernel instead, for
//! the history as well as for the guard).

use flow_wire::{FlowRecord, Sampling};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, SyncSender, TrySendError};
use std::sync::Arc;

/// One tapped record: as decoded, with the sampling the collector
/// honours for it (the exporter's, or the policy's override).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TapRecord {
    /// The exporter that sent it.
    pub exporter: IpAddr,
    /// The record as decoded (counts not yet scaled).
    pub record: FlowRecord,
    /// The sampling to undo.
    pub sampling: Sampling,
}

/// Which records a tap takes: `true` if either address matters.
pub type TapFilter = Box<dyn Fn(&FlowRecord) -> bool + Send + Sync>;

/// The tap: the sending end of a bounded queue and its counts.
pub struct Tap {
    tx: SyncSender<TapRecord>,
    wants: TapFilter,
    taken: AtomicU64,
    dropped: AtomicU64,
}

impl Tap {
    /// A tap holding at most `capacity` records not yet read, taking the
    /// records `wants` accepts; the receiving end is the reader's.
    pub fn new(capacity: usize, wants: TapFilter) -> (Arc<Tap>, Receiver<TapRecord>) {
        let (tx, rx) = sync_channel(capacity.max(1));
        let tap = Tap {
            tx,
            wants,
            taken: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        };
        (Arc::new(tap), rx)
    }

    /// Records queued since the tap was made.
    pub fn taken(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }

    /// Records dropped because the queue was full (or its reader gone).
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Offers one record: queued if wanted and there is room, else
    /// dropped and counted. Never blocks.
    pub(crate) fn offer(&self, exporter: IpAddr, record: &FlowRecord, sampling: Sampling) {
        if !(self.wants)(record) {
            return;
        }
        let r = TapRecord {
            exporter,
            record: *record,
            sampling,
        };
        match self.tx.try_send(r) {
            Ok(()) => self.taken.fetch_add(1, Ordering::Relaxed),
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.dropped.fetch_add(1, Ordering::Relaxed)
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(dst: &str) -> FlowRecord {
        FlowRecord {
            src: Some("198.51.100.2".parse().unwrap()),
            dst: Some(dst.parse().unwrap()),
            protocol: 17,
            src_port: 53,
            dst_port: 9,
            tcp_flags: 0,
            bytes: 100,
            packets: 1,
            start_ms: 0,
            end_ms: 0,
            sampling: Sampling::UNKNOWN,
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_unwanted_records_pass_by() {
        let victim: IpAddr = "203.0.113.10".parse().unwrap();
        let (tap, rx) = Tap::new(2, Box::new(move |r| r.dst == Some(victim)));
        let exporter: IpAddr = "127.0.0.1".parse().unwrap();
        for _ in 0..5 {
            tap.offer(exporter, &rec("203.0.113.10"), Sampling::UNKNOWN);
        }
        tap.offer(exporter, &rec("192.0.2.1"), Sampling::UNKNOWN);
        assert_eq!((tap.taken(), tap.dropped()), (2, 3));
        assert_eq!(rx.try_iter().count(), 2);
        drop(rx);
        tap.offer(exporter, &rec("203.0.113.10"), Sampling::UNKNOWN);
        assert_eq!(tap.dropped(), 4);
    }
}
