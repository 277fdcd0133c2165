//! A worker thread: receive, refuse or decode, attribute, publish.
//!
//! The thread keeps nothing of its own: everything lives in a [`State`]
//! behind a mutex the collector holds too, locked by the thread for its
//! whole life. If the thread panics, the state survives it (poisoned, and
//! recovered) and a new thread goes on where this one stopped.

use crate::socket::{self, Batch, Listener};
use crate::stats::{ExporterStats, SocketStats};
use crate::{lock, read, Outbox, Shared, OUTBOX_QUARANTINE};
use flow_wire::{Decoder, Item, Protocol};
use flows::{Outcome, Tally};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How often a worker hands its tally to the harvester.
const PUBLISH_EVERY: Duration = Duration::from_millis(250);

/// How often, at most, a worker saves its decoder's state (only when it
/// changed): a template flood changes it all the time, and each save
/// copies every template.
const SAVE_STATE_EVERY: Duration = Duration::from_secs(5);

/// How many refused source addresses are counted one by one; beyond this
/// (a scan, spoofed sources) they are only counted per socket, so refused
/// traffic cannot grow the collector's memory.
const REFUSED_SOURCES: usize = 256;

/// How many exporter × domain × protocol sequence numbers are followed;
/// an exporter inventing domains cannot grow the table beyond this.
const SEQUENCES: usize = 4_096;

/// How long a stopping worker keeps draining its socket.
const STOP_DRAIN: Duration = Duration::from_secs(1);

/// A decoder within `limits`, primed with a previous run's states. Every
/// worker gets all of them, so whichever worker the kernel now sends an
/// exporter to knows its templates.
pub(crate) fn decoder_from(states: &[Vec<u8>], limits: flow_wire::Limits) -> Decoder {
    let mut decoder = Decoder::with_limits(limits);
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

/// Everything a worker holds, kept outside its thread.
pub(crate) struct State {
    decoder: Decoder,
    tally: Tally,
    tables: Option<Arc<flows::Attribution>>,
    /// The guard's tap, if set.
    tap: Option<Arc<crate::Tap>>,
    /// The history's tap, if set.
    history_tap: Option<Arc<crate::Tap>>,
    allowed: Arc<Vec<IpAddr>>,
    socket: SocketStats,
    exporters: HashMap<IpAddr, ExporterStats>,
    /// Per exporter, observation domain and protocol: the sequence number
    /// the next datagram should carry.
    expected: HashMap<(IpAddr, u32, u8), u32>,
    batch: Batch,
    /// Datagrams in `batch` from the last receive.
    received: usize,
    /// The next of them to decode.
    next: usize,
    /// The one being decoded: still set after a panic, so the next thread
    /// knows which datagram killed the last one.
    current: Option<usize>,
    /// The decoder revision last published, and when.
    saved: Option<(u64, Instant)>,
}

impl State {
    pub(crate) fn new(decoder: Decoder, l: &Listener) -> State {
        State {
            decoder,
            tally: Tally::new(),
            tables: None,
            tap: None,
            history_tap: None,
            allowed: Arc::new(Vec::new()),
            socket: SocketStats {
                local: l.local,
                receive_buffer: l.receive_buffer,
                ..SocketStats::default()
            },
            exporters: HashMap::new(),
            expected: HashMap::new(),
            batch: Batch::new(),
            received: 0,
            next: 0,
            current: None,
            saved: None,
        }
    }
}

pub(crate) fn run(l: &Listener, state: &Mutex<State>, shared: &Shared, index: usize) {
    let mut guard = lock(state);
    let w = &mut *guard;
    w.refresh(shared);
    w.after_panic();
    // What a thread that died left of its batch.
    w.decode_pending(now_millis());
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
        match socket::receive(l, &mut w.batch) {
            Ok(n) => {
                w.received = n;
                w.next = 0;
                w.decode_pending(now_millis());
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
            w.publish(l, shared, index, done);
            published = Instant::now();
        }
        if done {
            break;
        }
    }
}

/// Publishes what a worker that kept dying holds, from the collector's
/// thread, so that it is not lost.
pub(crate) fn publish_remains(state: &Mutex<State>, l: &Listener, shared: &Shared, index: usize) {
    let mut w = lock(state);
    w.after_panic();
    w.publish(l, shared, index, true);
}

impl State {
    /// Counts the datagram a dead thread was decoding as malformed (it is
    /// not tried again: it would kill the next thread too).
    fn after_panic(&mut self) {
        let Some(i) = self.current.take() else {
            return;
        };
        if let Some(from) = self.batch.from.get(i).copied().flatten() {
            let e = self
                .exporters
                .entry(from.ip())
                .or_insert_with(|| ExporterStats::new(from.ip()));
            e.malformed += 1;
            e.last_error = Some(
                "a flow worker died decoding a datagram from this exporter; it was skipped".into(),
            );
        }
    }

    fn decode_pending(&mut self, now: i64) {
        while self.next < self.received {
            let i = self.next;
            self.next += 1;
            self.current = Some(i);
            self.datagram(i, now);
            self.current = None;
        }
    }

    /// Takes the current attribution tables and allowlist.
    fn refresh(&mut self, shared: &Shared) {
        let tables = read(&shared.tables);
        if self
            .tables
            .as_ref()
            .is_none_or(|t| t.generation() != tables.generation())
        {
            self.tables = Some(tables);
        }
        self.tap = read(&shared.tap);
        self.history_tap = read(&shared.history_tap);
        let limits = read(&shared.limits);
        if limits != self.decoder.limits() {
            let evicted = self.decoder.set_limits(limits);
            if evicted > 0 {
                tracing::info!(socket = %self.socket.local, evicted, "new template limits applied");
            }
        }
        let allowed = read(&shared.allowed);
        if !Arc::ptr_eq(&allowed, &self.allowed) {
            self.allowed = allowed;
            // Sources listed or unlisted since: start their counts afresh
            // under their new standing.
            let allowed = Arc::clone(&self.allowed);
            self.exporters
                .retain(|ip, e| e.allowed == allowed.contains(ip));
        }
    }

    fn datagram(&mut self, i: usize, now: i64) {
        let Some(from) = self.batch.from.get(i).copied().flatten() else {
            return;
        };
        let len = self.batch.lens.get(i).copied().unwrap_or(0);
        self.socket.datagrams += 1;
        self.socket.bytes += len as u64;
        if len > socket::SLOT {
            self.socket.truncated += 1;
            return;
        }
        #[cfg(test)]
        if self.batch.datagram(i).starts_with(crate::tests::PANIC) {
            panic!("injected by a test");
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
        let Some(tables) = self.tables.as_deref() else {
            return;
        };
        let tally = &mut self.tally;
        let tap = self.tap.as_deref();
        let history_tap = self.history_tap.as_deref();
        let (mut counters, mut quarantined, mut unscaled) = (0u64, 0u64, 0u64);
        let mut algorithm = None;
        let result =
            self.decoder
                .decode(from, now, self.batch.datagram(i), &mut |item| match item {
                    Item::Flow(f) => {
                        // The guard's copy, before the tenants' totals.
                        if let Some(tap) = tap {
                            tap.offer(ip, f, tables.sampling(ip, f.sampling));
                        }
                        if let Some(tap) = history_tap {
                            tap.offer(ip, f, tables.sampling(ip, f.sampling));
                        }
                        match tally.record(tables, ip, now, f) {
                            Outcome::Quarantined => quarantined += 1,
                            Outcome::Attributed if f.sampling.unsupported().is_some() => {
                                // Unless the policy overrides this exporter's sampling.
                                if let Some(a) = tables.sampling(ip, f.sampling).unsupported() {
                                    unscaled += 1;
                                    algorithm = Some(a);
                                }
                            }
                            Outcome::Attributed => {}
                            Outcome::KernelMeasured | Outcome::Unattributed => {}
                        }
                    }
                    Item::Counters(_) => counters += 1,
                });
        let e = self
            .exporters
            .entry(ip)
            .or_insert_with(|| ExporterStats::new(ip));
        e.datagrams += 1;
        e.counters += counters;
        e.quarantined += quarantined;
        e.unscaled += unscaled;
        if algorithm.is_some() {
            e.unsupported_algorithm = algorithm;
        }
        match result {
            Ok(s) => {
                e.flows += u64::from(s.flows);
                e.unknown_template_sets += u64::from(s.unknown_template_sets);
                e.unknown_template_records += u64::from(s.unknown_template_records);
                e.templates += u64::from(s.templates_learned);
                e.templates_refused += u64::from(s.templates_refused);
                e.templates_evicted += u64::from(s.templates_evicted);
                if let Some(r) = s.refusal {
                    e.last_refusal = Some(r.to_string());
                }
                if let Some(seq) = s.sequence {
                    let key = (ip, s.domain, s.protocol as u8);
                    if s.protocol == Protocol::Ipfix && s.unknown_template_sets > 0 {
                        // IPFIX sequence numbers count data records, and
                        // an unknown set's records cannot be counted: the
                        // next message is not checked.
                        self.expected.remove(&key);
                    } else if self.expected.len() < SEQUENCES || self.expected.contains_key(&key) {
                        let next = seq.wrapping_add(advance(&s));
                        if let Some(want) = self.expected.insert(key, next) {
                            if want != seq {
                                e.sequence_gaps += 1;
                            }
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

    fn publish(&mut self, l: &Listener, shared: &Shared, index: usize, stopping: bool) {
        if let Some(d) = l.kernel_drops() {
            self.socket.kernel_drops = d;
        }
        self.refresh(shared);
        let samples = self.tally.drain();
        let quarantine = self.tally.take_quarantine();
        let revision = self.decoder.revision();
        let due = match self.saved {
            None => true,
            Some((r, at)) => r != revision && (stopping || at.elapsed() >= SAVE_STATE_EVERY),
        };
        let state = due.then(|| self.decoder.save_state());
        if due {
            self.saved = Some((revision, Instant::now()));
        }
        let Some(slot) = shared.outboxes.get(index) else {
            return;
        };
        let mut o = lock(slot);
        let o: &mut Outbox = &mut o;
        o.samples.extend(samples);
        let room = OUTBOX_QUARANTINE.saturating_sub(o.quarantine.len());
        let dropped = quarantine.len().saturating_sub(room);
        o.quarantine.extend(quarantine.into_iter().take(room));
        o.quarantine_dropped += dropped as u64;
        o.socket = self.socket.clone();
        o.tally = self.tally.stats();
        o.exporters.clone_from(&self.exporters);
        o.templates = self.decoder.template_count();
        o.template_bytes = self.decoder.template_bytes();
        if let Some(s) = state {
            o.decoder_state = Some(s);
        }
    }
}

/// How far the sequence number moves per datagram: NetFlow v9 and sFlow
/// count datagrams, IPFIX counts data records, NetFlow v5 counts flows.
fn advance(s: &flow_wire::DatagramSummary) -> u32 {
    match s.protocol {
        Protocol::NetflowV9 | Protocol::SflowV5 => 1,
        Protocol::Ipfix => s.records.wrapping_add(s.options_records),
        Protocol::NetflowV5 => s.records,
    }
}
