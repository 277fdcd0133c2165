//! Packet capture for the DDoS detector: the only crate that opens packet
//! sockets.
//!
//! For each interface the caller names, [`Capture::start`] opens
//! `threads_per_interface` AF_PACKET sockets, each with a TPACKET_V3
//! receive ring (`mmap`, blocks retired after a few milliseconds), joined
//! in one `PACKET_FANOUT` group so the kernel spreads the interface's
//! packets over them (FastNetMon's AF_PACKET method). One reader thread
//! per socket parses frames with `packet-wire` into its own
//! [`Aggregator`]; a tick thread, every `tick` (100 ms) on the monotonic
//! clock, takes every aggregator's counts, merges them, reads the
//! sockets' kernel statistics (drops, queue freezes) and sends one
//! [`TickReport`] on a channel. Stopping ends the readers (each reads the
//! blocks already handed over first), then the tick thread, which sends a
//! last, shorter report.
//!
//! Sockets are opened on the calling thread, so they capture in the
//! network namespace the caller is in (having entered one with `setns`,
//! or run by `ip netns exec`); the threads keep them there.
//!
//! A packet lands in the tick during which its block was read: at most
//! the block retire timeout (4 ms) plus the reading time after it
//! arrived. Sampling (`sample_one_in = N`) parses every Nth frame of each
//! socket and counts it N times; malformed frames are then counted only
//! among the sampled ones.
//!
//! `unsafe` lives in one module, `ring`: the socket options, the `mmap`
//! of the ring and the hand-over of its blocks.

mod ring;

use std::fmt;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use net_types::Prefix;
use packet_wire::{Aggregator, AggregatorConfig, LinkType, LocalNets, TickCounts};
pub use packet_wire::{
    Counters, Direction, HostDelta, MalformedCounts, Reason, SourceCount, TopPorts, TopSources,
    TOP_PORTS, TOP_SOURCES,
};
pub use ring::{Fanout, RingConfig, SocketStats};

/// How often a waiting reader checks whether it should stop.
const READER_WAKE: Duration = Duration::from_millis(50);

/// Reports the channel holds before the tick thread waits for the
/// consumer (it keeps counting meanwhile: the next report is longer).
const CHANNEL_DEPTH: usize = 64;

/// What to capture and how.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureConfig {
    /// The interfaces, by name, in the caller's network namespace.
    pub interfaces: Vec<String>,
    /// The protected prefixes: traffic to them is `In`, from them `Out`.
    pub local_prefixes: Vec<Prefix>,
    /// Sockets (and reader threads) per interface, in one fanout group.
    pub threads_per_interface: usize,
    /// How the kernel spreads packets over them.
    pub fanout: Fanout,
    /// Parse one frame in N and count it N times (1: every frame).
    pub sample_one_in: u32,
    /// The tick (100 ms).
    pub tick: Duration,
    /// Whether to count the packets this host sends on the interfaces too
    /// (`PACKET_OUTGOING`). On a router capturing one side, both
    /// directions pass the interface, so this is on by default.
    pub outgoing: bool,
    /// Ring geometry per socket.
    pub ring: RingConfig,
    /// The most (address, direction) entries each reader keeps per flow
    /// window; beyond, traffic is counted as `overflow`.
    pub max_hosts: usize,
    /// Ticks per flow window (10: distinct 5-tuples per second).
    pub flow_window_ticks: u32,
}

impl CaptureConfig {
    /// Defaults for `interfaces` protecting `local_prefixes`: one thread
    /// per interface, hash fanout, no sampling, 100 ms ticks, 16 MiB rings.
    pub fn new(interfaces: Vec<String>, local_prefixes: Vec<Prefix>) -> CaptureConfig {
        let agg = AggregatorConfig::default();
        CaptureConfig {
            interfaces,
            local_prefixes,
            threads_per_interface: 1,
            fanout: Fanout::Hash,
            sample_one_in: 1,
            tick: Duration::from_millis(100),
            outgoing: true,
            ring: RingConfig::default(),
            max_hosts: agg.max_hosts,
            flow_window_ticks: agg.flow_window_ticks,
        }
    }
}

/// Everything captured in one tick.
#[derive(Clone, Debug, PartialEq)]
pub struct TickReport {
    /// When the tick began (the previous report's `ended`).
    pub started: Instant,
    /// When its counts were taken.
    pub ended: Instant,
    /// Per (address, direction) deltas, one entry each, sorted.
    pub hosts: Vec<HostDelta>,
    /// Traffic with both ends local.
    pub internal: Counters,
    /// Traffic with neither end local (not counted per host).
    pub foreign: Counters,
    /// Traffic of hosts beyond `max_hosts`.
    pub overflow: Counters,
    /// Frames that were not IP.
    pub non_ip: u64,
    /// Malformed frames (the sum of `malformed_by_reason`).
    pub malformed: u64,
    /// Malformed frames by reason.
    pub malformed_by_reason: MalformedCounts,
    /// Frames read from the rings (before sampling and the outgoing
    /// filter).
    pub frames: u64,
    /// Packets the sockets received, drops included (`tp_packets`).
    pub kernel_packets: u64,
    /// Packets the kernel dropped because a ring was full (`tp_drops`).
    pub kernel_drops: u64,
    /// Times a ring's queue froze, every block waiting for a reader
    /// (`tp_freeze_q_cnt`).
    pub ring_full_events: u64,
    /// The sampling rate the counts were scaled by.
    pub sample_one_in: u32,
    /// Every 10 s (the scan window): remote sources that sent to several
    /// local addresses, each thread's sketches merged; empty in the other
    /// ticks.
    pub scans: Vec<packet_wire::ScanSketch>,
    /// With `scans`: packets of sources the scan tables had no room for.
    pub scan_untracked: u64,
}

/// Why the capture could not start, or a reader stopped.
#[derive(Debug)]
pub enum CaptureError {
    /// No interface was named.
    NoInterfaces,
    /// A setting is out of range.
    BadConfig {
        /// Which setting and why.
        what: &'static str,
    },
    /// No interface of that name in the caller's network namespace.
    NoSuchInterface {
        /// The name.
        name: String,
    },
    /// The interface's link layer is neither Ethernet nor raw IP.
    UnsupportedLinkType {
        /// The interface.
        interface: String,
        /// Its `ARPHRD_*` type.
        hardware_type: u16,
    },
    /// A socket, ring or fanout call failed (`EPERM` without
    /// `CAP_NET_RAW`).
    Socket {
        /// The interface.
        interface: String,
        /// The system's error, naming the call.
        source: io::Error,
    },
    /// A thread could not be started.
    Spawn(io::Error),
    /// A reader failed while capturing.
    Reader {
        /// The interface.
        interface: String,
        /// The system's error.
        source: io::Error,
    },
    /// A capture thread panicked.
    Panicked,
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaptureError::NoInterfaces => write!(f, "no interface to capture on"),
            CaptureError::BadConfig { what } => write!(f, "bad capture setting: {what}"),
            CaptureError::NoSuchInterface { name } => {
                write!(f, "no interface {name:?} in this network namespace")
            }
            CaptureError::UnsupportedLinkType {
                interface,
                hardware_type,
            } => write!(
                f,
                "{interface}: link type {hardware_type} is neither Ethernet nor raw IP"
            ),
            CaptureError::Socket { interface, source } => write!(f, "{interface}: {source}"),
            CaptureError::Spawn(e) => write!(f, "cannot start a capture thread: {e}"),
            CaptureError::Reader { interface, source } => {
                write!(f, "{interface}: reading the ring: {source}")
            }
            CaptureError::Panicked => write!(f, "a capture thread panicked"),
        }
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            CaptureError::Socket { source, .. } | CaptureError::Reader { source, .. } => {
                Some(source)
            }
            CaptureError::Spawn(e) => Some(e),
            _ => None,
        }
    }
}

/// One reader's aggregator and frame count, shared with the tick thread.
struct Slot {
    agg: Aggregator,
    frames: u64,
}

/// A running capture. Dropping it stops it too; [`Capture::stop`] also
/// says whether a thread failed.
///
/// Stopping ends the readers first, then the tick thread, which sends one
/// last (shorter) report with what the readers counted since the last
/// tick, so that nothing captured is left out.
pub struct Capture {
    stop_readers: Arc<AtomicBool>,
    stop_ticker: Arc<AtomicBool>,
    readers: Vec<JoinHandle<Result<(), CaptureError>>>,
    ticker: Option<JoinHandle<Result<(), CaptureError>>>,
}

impl fmt::Debug for Capture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Capture")
            .field("readers", &self.readers.len())
            .finish_non_exhaustive()
    }
}

impl Capture {
    /// Opens the sockets (in the calling thread's network namespace),
    /// starts the readers and the tick thread, and returns the capture
    /// and the channel of its tick reports. The channel ends when the
    /// capture stops.
    pub fn start(config: CaptureConfig) -> Result<(Capture, Receiver<TickReport>), CaptureError> {
        if config.interfaces.is_empty() {
            return Err(CaptureError::NoInterfaces);
        }
        check_config(&config)?;
        let locals = Arc::new(LocalNets::new(&config.local_prefixes));
        // A random seed: no one outside can pick addresses that collide in
        // the host table.
        let hash_seed = getrandom::u64().unwrap_or(0x7467_6361_7074_7572);
        let agg_config = AggregatorConfig {
            max_hosts: config.max_hosts,
            flow_window_ticks: config.flow_window_ticks,
            hash_seed,
            scan: packet_wire::ScanConfig::default(),
        };
        // Open everything first: a failure leaves no thread behind.
        let mut rings = Vec::new();
        for name in &config.interfaces {
            let ifindex = ring::interface_index(name)
                .ok_or_else(|| CaptureError::NoSuchInterface { name: name.clone() })?;
            let socket_err = |source| CaptureError::Socket {
                interface: name.clone(),
                source,
            };
            let threads = config.threads_per_interface;
            let mut group = None;
            for _ in 0..threads {
                let fanout = (threads > 1).then_some((group, config.fanout));
                let r =
                    ring::PacketRing::open(ifindex, &config.ring, fanout).map_err(socket_err)?;
                if threads > 1 && group.is_none() {
                    group = Some(r.fanout_id().map_err(socket_err)?);
                }
                let link = match r.hardware_type().map_err(socket_err)? {
                    libc::ARPHRD_ETHER | libc::ARPHRD_LOOPBACK => LinkType::Ethernet,
                    libc::ARPHRD_NONE => LinkType::RawIp,
                    other => {
                        return Err(CaptureError::UnsupportedLinkType {
                            interface: name.clone(),
                            hardware_type: other,
                        })
                    }
                };
                let stats = r.stats_handle().map_err(socket_err)?;
                rings.push((name.clone(), link, r, stats));
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let stop_ticker = Arc::new(AtomicBool::new(false));
        let mut capture = Capture {
            stop_readers: stop.clone(),
            stop_ticker: stop_ticker.clone(),
            readers: Vec::new(),
            ticker: None,
        };
        let mut slots = Vec::new();
        let mut stats = Vec::new();
        for (i, (name, link, ring, stat)) in rings.into_iter().enumerate() {
            let slot = Arc::new(Mutex::new(Slot {
                agg: Aggregator::new(locals.clone(), agg_config),
                frames: 0,
            }));
            slots.push(slot.clone());
            stats.push(stat);
            let reader = Reader {
                interface: name,
                link,
                ring,
                slot,
                stop: stop.clone(),
                sample_one_in: config.sample_one_in,
                outgoing: config.outgoing,
            };
            let handle = std::thread::Builder::new()
                .name(format!("capture-{i}"))
                .spawn(move || reader.run())
                .map_err(CaptureError::Spawn)?;
            capture.readers.push(handle);
        }
        let (tx, rx) = std::sync::mpsc::sync_channel(CHANNEL_DEPTH);
        let ticker = Ticker {
            slots,
            stats,
            tx,
            stop: stop_ticker,
            stop_readers: stop,
            tick: config.tick,
            sample_one_in: config.sample_one_in,
        };
        let handle = std::thread::Builder::new()
            .name("capture-tick".into())
            .spawn(move || ticker.run())
            .map_err(CaptureError::Spawn)?;
        capture.ticker = Some(handle);
        Ok((capture, rx))
    }

    /// Whether every thread still runs.
    pub fn is_running(&self) -> bool {
        self.readers.iter().all(|t| !t.is_finished())
            && self.ticker.as_ref().is_some_and(|t| !t.is_finished())
    }

    /// Stops the threads, waits for them, and returns the first failure.
    pub fn stop(mut self) -> Result<(), CaptureError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), CaptureError> {
        // Readers first, so that the tick thread's last report holds
        // everything they counted.
        self.stop_readers.store(true, Ordering::Relaxed);
        let mut results = Vec::new();
        for t in self.readers.drain(..) {
            results.push(t.join().unwrap_or(Err(CaptureError::Panicked)));
        }
        self.stop_ticker.store(true, Ordering::Relaxed);
        if let Some(t) = self.ticker.take() {
            results.push(t.join().unwrap_or(Err(CaptureError::Panicked)));
        }
        results.into_iter().collect()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

fn check_config(c: &CaptureConfig) -> Result<(), CaptureError> {
    let bad = |what| Err(CaptureError::BadConfig { what });
    if c.threads_per_interface == 0 || c.threads_per_interface > 64 {
        return bad("threads_per_interface must be 1 to 64");
    }
    if c.sample_one_in == 0 {
        return bad("sample_one_in must be at least 1");
    }
    if c.tick < Duration::from_millis(10) {
        return bad("tick must be at least 10 ms");
    }
    if c.ring.block_size < 4096 || !c.ring.block_size.is_multiple_of(4096) {
        return bad("ring block_size must be a multiple of 4096");
    }
    if c.ring.block_count == 0 {
        return bad("ring block_count must be at least 1");
    }
    if c.ring.frame_size < 128
        || !c.ring.frame_size.is_multiple_of(16)
        || c.ring.frame_size > c.ring.block_size
    {
        return bad("ring frame_size must be a multiple of 16 from 128 to block_size");
    }
    if c.max_hosts == 0 {
        return bad("max_hosts must be at least 1");
    }
    Ok(())
}

struct Reader {
    interface: String,
    link: LinkType,
    ring: ring::PacketRing,
    slot: Arc<Mutex<Slot>>,
    stop: Arc<AtomicBool>,
    sample_one_in: u32,
    outgoing: bool,
}

impl Reader {
    fn run(mut self) -> Result<(), CaptureError> {
        let mut countdown = self.sample_one_in;
        while !self.stop.load(Ordering::Relaxed) {
            let ready = self
                .ring
                .wait(READER_WAKE)
                .map_err(|source| CaptureError::Reader {
                    interface: self.interface.clone(),
                    source,
                })?;
            if ready {
                self.read_block(&mut countdown);
            }
        }
        // Blocks already handed over are read before leaving, so the last
        // report has them.
        while self.read_block(&mut countdown) > 0 {}
        Ok(())
    }

    /// Reads the next block if it is ours; the frames it held.
    fn read_block(&mut self, countdown: &mut u32) -> usize {
        let n = self.sample_one_in;
        let weight = u64::from(n);
        // The lock is held for one block: the tick thread waits at most
        // that long, and the reader takes it once per block, not per
        // packet.
        let mut slot = self.slot.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = &mut *slot;
        let link = self.link;
        let outgoing = self.outgoing;
        let frames = self.ring.take_block(|f| {
            if !outgoing && f.pkttype == libc::PACKET_OUTGOING {
                return;
            }
            *countdown -= 1;
            if *countdown > 0 {
                return;
            }
            *countdown = n;
            let _ = slot.agg.add_frame(link, f.data, f.wire_len, weight);
        });
        slot.frames += frames as u64;
        frames
    }
}

struct Ticker {
    slots: Vec<Arc<Mutex<Slot>>>,
    stats: Vec<ring::StatsHandle>,
    tx: SyncSender<TickReport>,
    /// Set once the readers have ended: send the last report and end.
    stop: Arc<AtomicBool>,
    /// The readers' flag, set here when the consumer is gone.
    stop_readers: Arc<AtomicBool>,
    tick: Duration,
    sample_one_in: u32,
}

impl Ticker {
    fn run(self) -> Result<(), CaptureError> {
        // The counters the sockets gathered before the first tick belong
        // to no tick: read them away.
        for s in &self.stats {
            let _ = s.read();
        }
        let mut started = Instant::now();
        let mut next = started + self.tick;
        loop {
            // Sleep to the deadline in slices, to notice a stop.
            let last = loop {
                if self.stop.load(Ordering::Relaxed) {
                    break true;
                }
                let now = Instant::now();
                if now >= next {
                    break false;
                }
                std::thread::sleep((next - now).min(READER_WAKE));
            };
            let ended = Instant::now();
            let mut counts = TickCounts::default();
            let mut frames = 0;
            for s in &self.slots {
                let mut slot = s.lock().unwrap_or_else(PoisonError::into_inner);
                counts.merge(slot.agg.take());
                frames += std::mem::take(&mut slot.frames);
            }
            counts.coalesce();
            let mut kernel = SocketStats::default();
            for s in &self.stats {
                if let Ok(st) = s.read() {
                    kernel.packets += st.packets;
                    kernel.drops += st.drops;
                    kernel.freezes += st.freezes;
                }
            }
            let mut report = TickReport {
                started,
                ended,
                hosts: counts.hosts,
                internal: counts.internal,
                foreign: counts.foreign,
                overflow: counts.overflow,
                non_ip: counts.non_ip,
                malformed: counts.malformed.total(),
                malformed_by_reason: counts.malformed,
                frames,
                kernel_packets: kernel.packets,
                kernel_drops: kernel.drops,
                ring_full_events: kernel.freezes,
                sample_one_in: self.sample_one_in,
                scans: counts.scans,
                scan_untracked: counts.scan_untracked,
            };
            // A slow consumer delays the next tick (which then covers
            // more time); nothing is lost. A consumer gone stops us. The
            // last report waits at most a second for room.
            let mut waited = Duration::ZERO;
            loop {
                match self.tx.try_send(report) {
                    Ok(()) => break,
                    Err(TrySendError::Disconnected(_)) => {
                        self.stop_readers.store(true, Ordering::Relaxed);
                        return Ok(());
                    }
                    Err(TrySendError::Full(r)) => {
                        let stopping = last || self.stop.load(Ordering::Relaxed);
                        if stopping && waited >= Duration::from_secs(1) {
                            return Ok(());
                        }
                        report = r;
                        std::thread::sleep(Duration::from_millis(5));
                        waited += Duration::from_millis(5);
                    }
                }
            }
            if last {
                return Ok(());
            }
            started = ended;
            next += self.tick;
            let now = Instant::now();
            if next <= now {
                // Late by more than a tick: start afresh rather than send
                // a burst of empty ticks.
                next = now + self.tick;
            }
        }
    }
}
