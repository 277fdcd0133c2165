//! The guard's input from flow records (`[guard] flows = true`): a tap on
//! the flow collector's decoded records, read by one thread that spreads
//! each record over its duration (`guard::spread::Spreader`) and sends
//! the detector a tick every 100 ms on the daemon's monotonic clock, as
//! the packet capture does.
//!
//! Bounded everywhere: the tap's queue holds [`TAP_QUEUE`] records (more
//! are dropped and counted by the collector's workers, never waited for),
//! a record is spread over at most [`SPREAD_TICKS`] ticks, and at most
//! [`HOSTS`] addresses are followed at once (records for more counted).

use super::Message;
use engine::guard::{CaptureCounts, GuardInput, GuardTick};
use flow_collector::{Tap, TapRecord};
use guard::spread::{FlowRecord, Spreader};
use guard::{Direction, Monotonic};
use net_types::Prefix;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The detector's tick.
const TICK: Duration = Duration::from_millis(100);

/// Records the tap holds before the reader takes them (about 100 bytes
/// each): a burst of a few hundred datagrams' worth.
pub const TAP_QUEUE: usize = 65_536;

/// The longest a record is spread over, in ticks (30 s: a router's
/// active timeout is often 60 s, softflowd's can be set lower): a longer
/// flow is seen at its real rate over its last 30 s.
const SPREAD_TICKS: u32 = 300;

/// Addresses with spread records followed at once. With the span, this
/// bounds the spreader's memory (at most one change per address and
/// tick, about 150 bytes: some 180 MB in the worst case, a few kB per
/// address in practice).
const HOSTS: usize = 4_096;

/// A tap taking the records with an address in `networks`.
pub fn tap(networks: &[Prefix]) -> (Arc<Tap>, Receiver<TapRecord>) {
    let nets = networks.to_vec();
    let ours = move |a: Option<IpAddr>| a.is_some_and(|a| nets.iter().any(|n| n.contains(a)));
    Tap::new(TAP_QUEUE, Box::new(move |r| ours(r.dst) || ours(r.src)))
}

/// A tapped record as the detector's flow records: towards an address of
/// `networks` (`In`), from one (`Out`), or both for traffic between two
/// of them. Counts are scaled by the record's sampling here (a ratio, so
/// n-out-of-N is honoured too), so the spreader's own factor is 1.
pub fn flow_records(r: &TapRecord, networks: &[Prefix]) -> [Option<FlowRecord>; 2] {
    let f = &r.record;
    let ours = |a: Option<IpAddr>| a.filter(|a| networks.iter().any(|n| n.contains(*a)));
    let scale = |v: u64| r.sampling.scale(v).unwrap_or(u64::MAX);
    let duration = Duration::from_millis(u64::try_from(f.end_ms - f.start_ms).unwrap_or(0));
    let make = |addr, direction| FlowRecord {
        addr,
        direction,
        dst_port: f.dst_port,
        remote: match direction {
            Direction::In => f.src,
            Direction::Out => f.dst,
        },
        duration,
        packets: scale(f.packets),
        bytes: scale(f.bytes),
        protocol: f.protocol,
        src_port: f.src_port,
        tcp_flags: f.tcp_flags,
        // Exporters rarely say (IPFIX fragmentFlags is seldom sent).
        fragment: false,
        sampling: 1,
    };
    [
        ours(f.dst).map(|a| make(a, Direction::In)),
        ours(f.src).map(|a| make(a, Direction::Out)),
    ]
}

/// Reads the tap until `stop` is set or the loop is gone: every record
/// into the spreader as it comes, a tick to the engine every [`TICK`].
/// With the collector gone (the tap's sender dropped) the ticks go on,
/// empty, so holds still run out.
pub fn run(
    rx: &Receiver<TapRecord>,
    tap: &Tap,
    networks: &[Prefix],
    origin: Instant,
    stop: &AtomicBool,
    tx: &mpsc::Sender<Message>,
) {
    let mut spreader = Spreader::new(TICK, SPREAD_TICKS, HOSTS);
    let mut next = Instant::now() + TICK;
    let (mut records, mut dropped, mut overflow) = (0u64, tap.dropped(), 0u64);
    let now = || Monotonic(origin.elapsed());
    while !stop.load(Ordering::SeqCst) {
        let wait = next.saturating_duration_since(Instant::now());
        if !wait.is_zero() {
            match rx.recv_timeout(wait) {
                Ok(r) => {
                    records += 1;
                    let at = now();
                    for f in flow_records(&r, networks).iter().flatten() {
                        spreader.add(at, f);
                    }
                    continue;
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => std::thread::sleep(wait),
            }
        }
        // A late tick is not caught up in a burst of short ones.
        next = (next + TICK).max(Instant::now() + TICK / 2);
        let observation = spreader.take(now());
        let d = tap.dropped();
        let o = spreader.overflow();
        let capture = CaptureCounts {
            flow_records: std::mem::take(&mut records),
            flow_dropped: d - dropped,
            flow_overflow: o - overflow,
            ..CaptureCounts::default()
        };
        (dropped, overflow) = (d, o);
        let tick = GuardTick {
            observation,
            capture,
            scans: Vec::new(),
        };
        if tx
            .send(Message::Guard(Box::new(GuardInput::Tick(tick))))
            .is_err()
        {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_becomes_in_out_or_both_scaled_by_its_sampling() {
        let nets = [Prefix::parse("203.0.113.0/24").unwrap()];
        let (tap, rx) = tap(&nets);
        drop(tap);
        drop(rx);
        let rec = |src: &str, dst: &str| flow_collector::TapRecord {
            exporter: "127.0.0.1".parse().unwrap(),
            record: flow_wire::FlowRecord {
                src: Some(src.parse().unwrap()),
                dst: Some(dst.parse().unwrap()),
                protocol: 6,
                src_port: 40_000,
                dst_port: 80,
                tcp_flags: 0x02,
                bytes: 400,
                packets: 10,
                start_ms: 1_000,
                end_ms: 2_500,
                sampling: flow_wire::Sampling::UNKNOWN,
            },
            sampling: flow_wire::Sampling::one_in(100, flow_wire::SamplingOrigin::Configured),
        };
        let [i, o] = flow_records(&rec("198.51.100.2", "203.0.113.10"), &nets);
        let i = i.unwrap();
        assert!(o.is_none());
        assert_eq!(i.direction, Direction::In);
        assert_eq!((i.packets, i.bytes, i.sampling), (1_000, 40_000, 1));
        assert_eq!(i.duration, Duration::from_millis(1_500));
        assert_eq!(i.tcp_flags, 0x02);
        assert_eq!(
            (i.remote, i.dst_port),
            (Some("198.51.100.2".parse().unwrap()), 80)
        );
        let [i, o] = flow_records(&rec("203.0.113.10", "192.0.2.1"), &nets);
        assert!(i.is_none());
        let o = o.unwrap();
        assert_eq!(o.addr, "203.0.113.10".parse::<IpAddr>().unwrap());
        assert_eq!(o.remote, Some("192.0.2.1".parse().unwrap()));
        let both = flow_records(&rec("203.0.113.10", "203.0.113.11"), &nets);
        assert!(both.iter().all(Option::is_some));
        assert!(flow_records(&rec("192.0.2.1", "192.0.2.2"), &nets)
            .iter()
            .all(Option::is_none));
    }
}
