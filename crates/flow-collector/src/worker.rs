//! A worker thread: receive, refuse or decode, attribute, publish.

use crate::socket::{self, Batch, Listener};
use crate::stats::{ExporterStats, SocketStats};
use crate::{Outbox, Shared};
use flow_wire::{Decoder, Item, Protocol};
use flows::Tally;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a worker hands its tally to the harvester.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// How many refused source addresses are counted one by one; beyond this
/// (a scan, spoofed sources) they are only counted per socket, so refused
/// traffic cannot grow the collector's memory.
const REFUSED_SOURCES: usize = 256;

/// How long a stopping worker keeps draining its socket.
const STOP_DRAIN: Duration = Duration::from_secs(1);

/// A decoder primed with a previous run's state: the first state that
/// loads. Every worker gets the same one, so whichever worker the kernel
/// now sends an exporter to knows its templates.
pub(crate) fn decoder_from(states: &[Vec<u8>]) -> Decoder {
    let mut decoder = Decoder::new();
    for s in states {
        match Decoder::load_state(s) {
            Ok(d) => decoder.merge(d),
            Err(e) => tracing::warn!("saved flow templates not used: {e}"),
        }
    }
    decoder
}

fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

struct Worker {
    decoder: Decoder,
    tally: Tally,
    tables: Arc<flows::Attribution>,
    allowed: Arc<Vec<IpAddr>>,
    socket: SocketStats,
    exporters: HashMap<IpAddr, ExporterStats>,
    /// Per exporter, observation domain and protocol: the sequence number
    /// the next datagram should carry.
    expected: HashMap<(IpAddr, u32, u8), u32>,
}

pub(crate) fn run(l: Listener, decoder: Decoder, shared: &Shared, index: usize) {
    let mut w = Worker {
        decoder,
        tally: Tally::new(),
        tables: shared
            .tables
            .read()
            .map(|t| Arc::clone(&t))
            .unwrap_or_else(|e| Arc::clone(&e.into_inner())),
        allowed: shared
            .allowed
            .read()
            .map(|a| Arc::clone(&a))
            .unwrap_or_default(),
        socket: SocketStats {
            local: l.local,
            receive_buffer: l.receive_buffer,
            ..SocketStats::default()
        },
        exporters: HashMap::new(),
        expected: HashMap::new(),
    };
    let mut batch = Batch::new();
    let mut published = Instant::now();
    let mut stop_seen: Option<Instant> = None;
    loop {
        if stop_seen.is_none() && shared.stop.load(Ordering::SeqCst) {
            stop_seen = Some(Instant::now());
        }
        // When stopping, keep draining what the socket already holds (for
        // at most a second, in case exporters keep sending), so that a
        // clean stop loses nothing that reached us.
        let drain_over = stop_seen.is_some_and(|t| t.elapsed() >= STOP_DRAIN);
        let mut idle = true;
        match socket::receive(&l, &mut batch) {
            Ok(n) => {
                let now = now_millis();
                for i in 0..n {
                    w.datagram(&batch, i, now);
                }
                idle = n == 0;
            }
            Err(e) => {
                w.socket.receive_errors += 1;
                tracing::warn!(socket = %l.local, "receive failed: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        let done = drain_over || (stop_seen.is_some() && idle);
        if published.elapsed() >= PUBLISH_EVERY || done {
            w.publish(&l, shared, index);
            published = Instant::now();
        }
        if done {
            break;
        }
    }
}

impl Worker {
    fn datagram(&mut self, batch: &Batch, i: usize, now: i64) {
        let Some(from) = batch.from.get(i).copied().flatten() else {
            return;
        };
        let len = batch.lens.get(i).copied().unwrap_or(0);
        self.socket.datagrams += 1;
        self.socket.bytes += len as u64;
        if len > socket::SLOT {
            self.socket.truncated += 1;
            return;
        }
        let ip = from.ip();
        if !self.allowed.contains(&ip) {
            self.socket.refused += 1;
            if self.exporters.len() < REFUSED_SOURCES || self.exporters.contains_key(&ip) {
                let e = self
                    .exporters
                    .entry(ip)
                    .or_insert_with(|| ExporterStats::new(ip));
                e.allowed = false;
                e.datagrams += 1;
            }
            return;
        }
        let tables = &self.tables;
        let tally = &mut self.tally;
        let mut counters = 0u64;
        let result = self
            .decoder
            .decode(from, now, batch.datagram(i), &mut |item| match item {
                Item::Flow(f) => {
                    tally.record(tables, ip, now, f);
                }
                Item::Counters(_) => counters += 1,
            });
        let e = self
            .exporters
            .entry(ip)
            .or_insert_with(|| ExporterStats::new(ip));
        e.datagrams += 1;
        e.counters += counters;
        match result {
            Ok(s) => {
                e.flows += u64::from(s.flows);
                e.unknown_template_records += u64::from(s.unknown_template_records);
                e.templates += u64::from(s.templates_learned);
                if let Some(seq) = s.sequence {
                    let key = (ip, s.domain, s.protocol as u8);
                    let next = seq.wrapping_add(advance(&s));
                    if let Some(want) = self.expected.insert(key, next) {
                        if want != seq {
                            e.sequence_gaps += 1;
                        }
                    }
                }
            }
            Err(err) => {
                e.malformed += 1;
                e.last_error = Some(err.to_string());
                tracing::debug!(exporter = %from, "malformed datagram: {err}");
            }
        }
    }

    fn publish(&mut self, l: &Listener, shared: &Shared, index: usize) {
        if let Some(d) = l.kernel_drops() {
            self.socket.kernel_drops = d;
        }
        if let Ok(t) = shared.tables.read() {
            if t.generation() != self.tables.generation() {
                self.tables = Arc::clone(&t);
            }
        }
        if let Ok(a) = shared.allowed.read() {
            if !Arc::ptr_eq(&a, &self.allowed) {
                self.allowed = Arc::clone(&a);
                // Sources listed or unlisted since: start their counts afresh
                // under their new standing.
                let allowed = Arc::clone(&self.allowed);
                self.exporters
                    .retain(|ip, e| e.allowed == allowed.contains(ip));
            }
        }
        let samples = self.tally.drain();
        let state = self.decoder.save_state();
        let Some(slot) = shared.outboxes.get(index) else {
            return;
        };
        let Ok(mut o) = slot.lock() else { return };
        let o: &mut Outbox = &mut o;
        o.samples.extend(samples);
        o.socket = self.socket.clone();
        o.tally = self.tally.stats();
        o.exporters.clone_from(&self.exporters);
        o.templates = self.decoder.template_count();
        o.decoder_state = state;
    }
}

/// How far the sequence number moves per datagram: NetFlow v9 and sFlow
/// count datagrams, IPFIX counts data records, NetFlow v5 counts flows.
fn advance(s: &flow_wire::DatagramSummary) -> u32 {
    match s.protocol {
        Protocol::NetflowV9 | Protocol::SflowV5 => 1,
        Protocol::Ipfix => s.records.wrapping_add(s.options_records),
        Protocol::NetflowV5 => s.flows,
    }
}
