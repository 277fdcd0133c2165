//! The flow collector's side effects: UDP sockets and the worker threads
//! that drain them.
//!
//! Each listen address gets one socket per worker, all bound with
//! `SO_REUSEPORT`, so the kernel spreads exporters over the workers by
//! their address and port; one exporter's datagrams always reach the same
//! worker, which is what keeps its templates and sequence numbers in one
//! place. A worker receives up to 64 datagrams per system call
//! (`recvmmsg`), drops those from addresses the policy does not list,
//! decodes the rest with its own [`flow_wire::Decoder`] (within the
//! configured template [`flow_wire::Limits`]) and attributes every record
//! into its own [`flows::Tally`]: nothing is shared on the per-record
//! path. Four times a second a worker publishes what it tallied to its
//! outbox, from which [`Collector::harvest`] collects everything for the
//! history store. A [`Tap`] set with [`Collector::set_tap`] gets a copy of
//! the decoded records it wants (the guard's), before they are
//! attributed, through a bounded queue that drops and counts when full.
//!
//! # A worker that dies
//!
//! Everything a worker holds (decoder, tally, counters, the datagrams of
//! its last `recvmmsg`) lives in a state the collector keeps, not on the
//! thread's stack. If the thread panics, the next [`Collector::harvest`]
//! notices, logs it, counts it (per socket and in the totals) and starts
//! a new thread on the same socket with that state: the datagram it died
//! on is counted as malformed, the rest of its batch is decoded, and what
//! it had tallied is published as usual. Poisoned locks are recovered,
//! never skipped.
//!
//! The decoding and attribution rules are pure and live in `flow-wire` and
//! `flows`; this crate only moves bytes and counts what it saw.

pub mod saved;
mod socket;
mod stats;
pub mod tap;
mod worker;

pub use flow_wire::Limits;
pub use stats::{ExporterStats, SocketStats, Totals};
pub use tap::{Tap, TapFilter, TapRecord};

use flows::{Attribution, Quarantined};
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::thread::JoinHandle;

/// What the collector is asked to do.
#[derive(Clone, Debug)]
pub struct Config {
    /// UDP addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// Sockets and threads per address.
    pub workers: usize,
    /// Kernel receive buffer per socket, in bytes.
    pub receive_buffer: usize,
    /// Exporters whose datagrams are accepted.
    pub exporters: Vec<IpAddr>,
    /// Each worker's template limits (its share of the collector's).
    pub limits: flow_wire::Limits,
}

/// What the workers tallied since the last harvest, and counters since
/// the collector started.
#[derive(Clone, Debug, Default)]
pub struct Harvest {
    /// Attributed usage, summed over workers, ordered by slot then key.
    pub samples: Vec<accounting::Sample>,
    /// Records quarantined since the last harvest, as far as kept (the
    /// rest are counted in `totals.quarantine_dropped`).
    pub quarantine: Vec<Quarantined>,
    /// Counters since start.
    pub totals: Totals,
    /// Per socket, since start.
    pub sockets: Vec<SocketStats>,
    /// Per exporter (and per refused source), since start.
    pub exporters: Vec<ExporterStats>,
}

/// Quarantined records an outbox keeps between harvests; beyond them they
/// are counted only.
const OUTBOX_QUARANTINE: usize = 4_096;

/// One worker's published state.
#[derive(Default)]
struct Outbox {
    samples: Vec<accounting::Sample>,
    quarantine: Vec<Quarantined>,
    /// Quarantined records the outbox had no room for.
    quarantine_dropped: u64,
    socket: SocketStats,
    tally: flows::TallyStats,
    exporters: HashMap<IpAddr, ExporterStats>,
    templates: usize,
    template_bytes: usize,
    /// The decoder's saved state, when it changed since the last
    /// [`Collector::take_decoder_states`].
    decoder_state: Option<Vec<u8>>,
}

struct Shared {
    stop: AtomicBool,
    tables: RwLock<Arc<Attribution>>,
    allowed: RwLock<Arc<Vec<IpAddr>>>,
    limits: RwLock<flow_wire::Limits>,
    /// The guard's tap on the decoded records, if one is set.
    tap: RwLock<Option<Arc<Tap>>>,
    /// The history's tap (`[history.flows]`), if one is set.
    history_tap: RwLock<Option<Arc<Tap>>>,
    outboxes: Vec<Mutex<Outbox>>,
}

/// Locks `m`, taking over the data of a thread that panicked holding it:
/// what it guards is counters and tallies, every one of them still
/// meaningful, so a poisoned lock is recovered rather than skipped.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| {
        m.clear_poison();
        e.into_inner()
    })
}

fn read<T: Clone>(l: &RwLock<T>) -> T {
    l.read()
        .map_or_else(|e| e.into_inner().clone(), |g| g.clone())
}

fn write<T>(l: &RwLock<T>, v: T) {
    match l.write() {
        Ok(mut g) => *g = v,
        Err(e) => {
            *e.into_inner() = v;
            l.clear_poison();
        }
    }
}

/// One socket, its worker's state and thread.
struct WorkerSlot {
    listener: Arc<socket::Listener>,
    state: Arc<Mutex<worker::State>>,
    thread: Option<JoinHandle<()>>,
    restarts: u64,
    last_panic: Option<String>,
}

/// A running collector.
pub struct Collector {
    shared: Arc<Shared>,
    workers: Vec<WorkerSlot>,
    /// The addresses actually bound (with the kernel's port for port 0).
    local: Vec<SocketAddr>,
}

impl Collector {
    /// Opens every socket, then starts the workers. Fails without starting
    /// anything if any socket cannot be opened (a port in use, an address
    /// not on this host), naming the address.
    ///
    /// `decoder_states` are decoder states a previous run saved (see
    /// [`Collector::take_decoder_states`]), so that data arriving before
    /// the exporters re-send their templates can still be decoded. Every
    /// worker gets all of them, within its limits.
    pub fn start(
        config: &Config,
        tables: Arc<Attribution>,
        decoder_states: &[Vec<u8>],
    ) -> io::Result<Collector> {
        Collector::start_with_history_tap(config, tables, decoder_states, None)
    }

    /// [`Collector::start`] with the history's tap set before the workers
    /// start, so that it has the first datagram's records too (a tap set
    /// later is taken at a worker's next refresh).
    pub fn start_with_history_tap(
        config: &Config,
        tables: Arc<Attribution>,
        decoder_states: &[Vec<u8>],
        history_tap: Option<Arc<Tap>>,
    ) -> io::Result<Collector> {
        let workers = config.workers.max(1);
        let mut sockets = Vec::new();
        for addr in &config.listen {
            for _ in 0..workers {
                let s = socket::Listener::open(*addr, config.receive_buffer).map_err(|e| {
                    io::Error::new(e.kind(), format!("cannot listen on {addr}: {e}"))
                })?;
                sockets.push(s);
            }
        }
        let local = sockets.iter().map(|s| s.local).collect();
        let shared = Arc::new(Shared {
            stop: AtomicBool::new(false),
            tables: RwLock::new(tables),
            allowed: RwLock::new(Arc::new(config.exporters.clone())),
            limits: RwLock::new(config.limits),
            tap: RwLock::new(None),
            history_tap: RwLock::new(history_tap),
            outboxes: sockets
                .iter()
                .map(|_| Mutex::new(Outbox::default()))
                .collect(),
        });
        let mut c = Collector {
            shared,
            workers: Vec::new(),
            local,
        };
        for s in sockets {
            let decoder = worker::decoder_from(decoder_states, config.limits);
            let state = worker::State::new(decoder, &s);
            c.workers.push(WorkerSlot {
                listener: Arc::new(s),
                state: Arc::new(Mutex::new(state)),
                thread: None,
                restarts: 0,
                last_panic: None,
            });
        }
        for index in 0..c.workers.len() {
            c.spawn(index)?;
        }
        Ok(c)
    }

    fn spawn(&mut self, index: usize) -> io::Result<()> {
        let Some(w) = self.workers.get_mut(index) else {
            return Ok(());
        };
        let (listener, state, shared) = (
            Arc::clone(&w.listener),
            Arc::clone(&w.state),
            Arc::clone(&self.shared),
        );
        let t = std::thread::Builder::new()
            .name(format!("flows-{}", listener.local))
            .spawn(move || worker::run(&listener, &state, &shared, index))?;
        w.thread = Some(t);
        Ok(())
    }

    /// The bound addresses, one per socket.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }

    /// Swaps in new attribution tables (a reloaded policy or routes
    /// table). Workers pick them up within a quarter of a second.
    pub fn set_tables(&self, tables: Arc<Attribution>) {
        write(&self.shared.tables, tables);
    }

    /// Sets (or removes) the tap that copies decoded records for the
    /// guard, before attribution. Workers pick it up within a quarter of
    /// a second.
    pub fn set_tap(&self, tap: Option<Arc<Tap>>) {
        write(&self.shared.tap, tap);
    }

    /// Sets (or removes) a second tap, beside the guard's: the one that
    /// keeps the records in the history (`[history.flows]`). Each tap has
    /// its own bounded queue and drop count, so a slow history never
    /// takes records from the guard, nor the guard from the history.
    pub fn set_history_tap(&self, tap: Option<Arc<Tap>>) {
        write(&self.shared.history_tap, tap);
    }

    /// Replaces the exporter allowlist.
    pub fn set_exporters(&self, exporters: Vec<IpAddr>) {
        write(&self.shared.allowed, Arc::new(exporters));
    }

    /// Replaces each worker's template limits; workers apply them (and
    /// evict what they no longer allow) within a quarter of a second.
    pub fn set_limits(&self, limits: flow_wire::Limits) {
        write(&self.shared.limits, limits);
    }

    /// Restarts every worker whose thread ended while the collector runs
    /// (it panicked): logged, counted on its socket, and started again on
    /// the same socket with everything it held.
    fn revive(&mut self) {
        if self.shared.stop.load(Ordering::SeqCst) {
            return;
        }
        for index in 0..self.workers.len() {
            let Some(w) = self.workers.get_mut(index) else {
                continue;
            };
            if !w.thread.as_ref().is_some_and(JoinHandle::is_finished) {
                continue;
            }
            let why = match w.thread.take().map(JoinHandle::join) {
                Some(Err(payload)) => panic_message(payload.as_ref()),
                _ => "the thread ended without being asked to".to_string(),
            };
            w.restarts += 1;
            tracing::error!(
                socket = %w.listener.local,
                restarts = w.restarts,
                "a flow worker died ({why}); restarting it on its socket with what it held"
            );
            w.last_panic = Some(why);
            if let Err(e) = self.spawn(index) {
                tracing::error!(
                    "cannot restart the flow worker: {e}; retrying at the next harvest"
                );
            }
        }
    }

    /// Takes everything the workers have published since the last harvest,
    /// first restarting any worker that died. Workers publish four times a
    /// second, so up to that much traffic is still in their hands and comes
    /// with the next harvest.
    pub fn harvest(&mut self) -> Harvest {
        self.revive();
        self.collect()
    }

    fn collect(&self) -> Harvest {
        let mut h = Harvest::default();
        let mut exporters: HashMap<IpAddr, ExporterStats> = HashMap::new();
        let mut cells: HashMap<(accounting::Slot, accounting::UsageKey), accounting::Usage> =
            HashMap::new();
        for (o, w) in self.shared.outboxes.iter().zip(&self.workers) {
            let mut o = lock(o);
            for s in o.samples.drain(..) {
                let c = cells.entry((s.slot, s.key)).or_default();
                c.bytes = c.bytes.saturating_add(s.bytes);
                c.packets = c.packets.saturating_add(s.packets);
            }
            h.quarantine.append(&mut o.quarantine);
            h.totals.add_tally(&o.tally);
            h.totals.quarantine_dropped += o.quarantine_dropped;
            h.totals.templates += o.templates as u64;
            h.totals.template_bytes += o.template_bytes as u64;
            let mut socket = o.socket.clone();
            socket.restarts = w.restarts;
            socket.last_panic.clone_from(&w.last_panic);
            h.totals.add_socket(&socket);
            h.sockets.push(socket);
            for (addr, e) in &o.exporters {
                exporters
                    .entry(*addr)
                    .or_insert_with(|| ExporterStats::new(*addr))
                    .add(e);
            }
        }
        h.samples = cells
            .into_iter()
            .map(|((slot, key), u)| accounting::Sample {
                slot,
                key,
                bytes: u.bytes,
                packets: u.packets,
            })
            .collect();
        h.samples.sort_unstable_by_key(|s| (s.slot, s.key));
        h.exporters = exporters.into_values().collect();
        h.exporters.sort_by_key(|e| e.address);
        for e in &h.exporters {
            h.totals.add_exporter(e);
        }
        h
    }

    /// The decoder states workers published since the last call, by
    /// worker index: a worker publishes its state only when its templates
    /// or sampling changed (at most every few seconds), so a caller saves
    /// only what is new.
    pub fn take_decoder_states(&self) -> Vec<(usize, Vec<u8>)> {
        self.shared
            .outboxes
            .iter()
            .enumerate()
            .filter_map(|(i, o)| lock(o).decoder_state.take().map(|s| (i, s)))
            .collect()
    }

    /// How many workers (sockets) there are.
    pub fn worker_count(&self) -> usize {
        self.workers.len()
    }

    /// Stops the workers after they drain their sockets and publish what
    /// they hold, and returns the last harvest. Workers notice within
    /// their receive timeout. A worker that dies while stopping is started
    /// again to finish (up to three times); if it keeps dying, what it
    /// held is published from here.
    pub fn stop(&mut self) -> Harvest {
        self.shared.stop.store(true, Ordering::SeqCst);
        for index in 0..self.workers.len() {
            for attempt in 0..4 {
                let Some(w) = self.workers.get_mut(index) else {
                    break;
                };
                let Some(t) = w.thread.take() else { break };
                let Err(payload) = t.join() else { break };
                let why = panic_message(payload.as_ref());
                w.restarts += 1;
                tracing::error!(socket = %w.listener.local, "a flow worker died while stopping ({why})");
                w.last_panic = Some(why);
                if attempt < 3 && self.spawn(index).is_ok() {
                    continue;
                }
                if let Some(w) = self.workers.get(index) {
                    worker::publish_remains(&w.state, &w.listener, &self.shared, index);
                }
                break;
            }
        }
        self.collect()
    }
}

/// The text a panic carried, if it was a string.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_string())
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for w in &mut self.workers {
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

#[cfg(test)]
mod tests;
