//! The flow collector's side effects: UDP sockets and the worker threads
//! that drain them.
//!
//! Each listen address gets one socket per worker, all bound with
//! `SO_REUSEPORT`, so the kernel spreads exporters over the workers by
//! their address and port; one exporter's datagrams always reach the same
//! worker, which is what keeps its templates and sequence numbers in one
//! place. A worker receives up to 64 datagrams per system call
//! (`recvmmsg`), drops those from addresses the policy does not list,
//! decodes the rest with its own [`flow_wire::Decoder`] and attributes
//! every record into its own [`flows::Tally`]: nothing is shared on the
//! per-record path. Four times a second a worker publishes what it tallied
//! to its outbox, from which [`Collector::harvest`] collects everything for
//! the history store.
//!
//! The decoding and attribution rules are pure and live in `flow-wire` and
//! `flows`; this crate only moves bytes and counts what it saw.

mod socket;
mod stats;
mod worker;

pub use stats::{ExporterStats, SocketStats, Totals};

use flows::Attribution;
use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
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
}

/// What the workers tallied since the last harvest, and counters since
/// the collector started.
#[derive(Clone, Debug, Default)]
pub struct Harvest {
    /// Attributed usage, summed over workers, ordered by slot then key.
    pub samples: Vec<accounting::Sample>,
    /// Counters since start.
    pub totals: Totals,
    /// Per socket, since start.
    pub sockets: Vec<SocketStats>,
    /// Per exporter (and per refused source), since start.
    pub exporters: Vec<ExporterStats>,
}

/// One worker's published state.
#[derive(Default)]
struct Outbox {
    samples: Vec<accounting::Sample>,
    socket: SocketStats,
    tally: flows::TallyStats,
    exporters: HashMap<IpAddr, ExporterStats>,
    templates: usize,
    decoder_state: Vec<u8>,
}

struct Shared {
    stop: AtomicBool,
    tables: RwLock<Arc<Attribution>>,
    allowed: RwLock<Arc<Vec<IpAddr>>>,
    outboxes: Vec<Mutex<Outbox>>,
}

/// A running collector.
pub struct Collector {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
    /// The addresses actually bound (with the kernel's port for port 0).
    local: Vec<SocketAddr>,
}

impl Collector {
    /// Opens every socket, then starts the workers. Fails without starting
    /// anything if any socket cannot be opened (a port in use, an address
    /// not on this host), naming the address.
    ///
    /// `decoder_states` are the [`Collector::decoder_states`] of a previous
    /// run, so that data arriving before the exporters re-send their
    /// templates can still be decoded. Every worker gets all of them.
    pub fn start(
        config: &Config,
        tables: Arc<Attribution>,
        decoder_states: &[Vec<u8>],
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
            outboxes: sockets
                .iter()
                .map(|_| Mutex::new(Outbox::default()))
                .collect(),
        });
        let mut threads = Vec::new();
        for (index, s) in sockets.into_iter().enumerate() {
            let decoder = worker::decoder_from(decoder_states);
            let shared = Arc::clone(&shared);
            let name = format!("flows-{}", s.local);
            let t = std::thread::Builder::new()
                .name(name)
                .spawn(move || worker::run(s, decoder, &shared, index))?;
            threads.push(t);
        }
        Ok(Collector {
            shared,
            threads,
            local,
        })
    }

    /// The bound addresses, one per socket.
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.local
    }

    /// Swaps in new attribution tables (a reloaded policy or routes
    /// table). Workers pick them up within a quarter of a second.
    pub fn set_tables(&self, tables: Arc<Attribution>) {
        if let Ok(mut t) = self.shared.tables.write() {
            *t = tables;
        }
    }

    /// Replaces the exporter allowlist.
    pub fn set_exporters(&self, exporters: Vec<IpAddr>) {
        if let Ok(mut a) = self.shared.allowed.write() {
            *a = Arc::new(exporters);
        }
    }

    /// Takes everything the workers have published since the last harvest.
    /// Workers publish four times a second, so up to that much traffic is
    /// still in their hands and comes with the next harvest.
    pub fn harvest(&self) -> Harvest {
        let mut h = Harvest::default();
        let mut exporters: HashMap<IpAddr, ExporterStats> = HashMap::new();
        let mut cells: HashMap<(accounting::Slot, accounting::UsageKey), accounting::Usage> =
            HashMap::new();
        for o in &self.shared.outboxes {
            let Ok(mut o) = o.lock() else { continue };
            for s in o.samples.drain(..) {
                let c = cells.entry((s.slot, s.key)).or_default();
                c.bytes = c.bytes.saturating_add(s.bytes);
                c.packets = c.packets.saturating_add(s.packets);
            }
            h.totals.add_tally(&o.tally);
            h.totals.templates += o.templates as u64;
            h.totals.add_socket(&o.socket);
            h.sockets.push(o.socket.clone());
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
        h
    }

    /// Every worker's decoder state (templates, sampling options) as last
    /// published, to be saved with the samples.
    pub fn decoder_states(&self) -> Vec<Vec<u8>> {
        self.shared
            .outboxes
            .iter()
            .filter_map(|o| o.lock().ok().map(|o| o.decoder_state.clone()))
            .filter(|s| !s.is_empty())
            .collect()
    }

    /// Stops the workers after they publish what they hold, and returns
    /// the last harvest. Workers notice within their receive timeout.
    pub fn stop(&mut self) -> Harvest {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            if t.join().is_err() {
                tracing::error!("a flow worker panicked; its last quarter second is lost");
            }
        }
        self.harvest()
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}
