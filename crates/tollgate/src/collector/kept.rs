//! Flow records kept (`[history.flows]`): the collector's second tap,
//! read by two threads that write the records to ClickHouse in batches.
//!
//! Two threads: one takes records from the tap into a batch (at most
//! [`BATCH`] records or [`LINGER`] old: a batch is a second of records, so
//! batches grow with the rate, and a larger batch is cheaper per record on
//! the server, BENCHMARKS.md "Flow records kept"); the other writes the
//! batches, so that the queue is drained while a batch is being inserted.
//!
//! Bounded: the tap's queue holds [`QUEUE`] records, the taker one batch
//! and the writer one more (handed over without a queue between them).
//! When ClickHouse is slow (or away) the writer keeps its batch and
//! retries, the taker waits with the next one, the queue fills, and the
//! workers drop the records that do not fit and count them (`dropped`,
//! `tollgate_flow_kept_dropped`); they never wait. A batch that still
//! cannot be written after [`GIVE_UP`] is let go and counted (`lost`).
//!
//! Each batch is written once: it carries this writer's next sequence,
//! and the store refuses a sequence it has (a retry after a timeout whose
//! insert landed is then counted as kept, not written twice).

use flow_collector::{Tap, TapRecord};
use history::{FlowRetention, FlowRow, StoreError};
use history_clickhouse::{ClickHouseOptions, ClickHouseStore};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Records the tap holds before the writer takes them (about 100 bytes
/// each: some 25 MB).
pub const QUEUE: usize = 262_144;

/// The most records in one batch (one `INSERT`): a second of records up
/// to a million a second (about 80 MB as rows, 100 MB encoded, only
/// when the rate is that high).
pub const BATCH: usize = 1_000_000;

/// The longest a record waits in a batch that is not full.
const LINGER: Duration = Duration::from_secs(1);

/// How long a batch is retried before it is let go.
const GIVE_UP: Duration = Duration::from_secs(60);

/// How often old partitions are dropped.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// What the writer has done since start, for the status file and the
/// metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeptStatus {
    /// Records the tap queued for the writer.
    pub taken: u64,
    /// Records dropped because the queue was full (ClickHouse slower
    /// than the exporters).
    pub dropped: u64,
    /// Records written to ClickHouse.
    pub kept: u64,
    /// Batches written.
    pub batches: u64,
    /// Records of batches let go after retrying for a minute.
    pub lost: u64,
    /// The last write's error, if the last write failed.
    pub last_error: Option<String>,
}

#[derive(Default)]
struct Counts {
    kept: AtomicU64,
    batches: AtomicU64,
    lost: AtomicU64,
    last_error: Mutex<Option<String>>,
}

/// The running writer.
pub struct Keeper {
    tap: Arc<Tap>,
    counts: Arc<Counts>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// A tapped record as a kept row: its counts scaled by its sampling (a
/// record whose sampling cannot be scaled is kept as exported, as the
/// tenants' totals count it), its time the flow's end.
pub fn row(r: &TapRecord) -> FlowRow {
    let f = &r.record;
    let scale = |v: u64| r.sampling.scale(v).unwrap_or(v);
    FlowRow {
        time: f.end_ms.div_euclid(1000),
        exporter: r.exporter,
        src: f.src,
        dst: f.dst,
        src_port: f.src_port,
        dst_port: f.dst_port,
        protocol: f.protocol,
        tcp_flags: f.tcp_flags,
        src_as: 0,
        dst_as: 0,
        bytes: scale(f.bytes),
        packets: scale(f.packets),
    }
}

impl Keeper {
    /// Starts the writer thread; the caller hands [`Keeper::tap`] to the
    /// collector. The store is opened (and migrated) by the thread, and
    /// opened again after a failure, so a ClickHouse that is down at the
    /// start costs records, not the daemon.
    pub fn start(
        options: ClickHouseOptions,
        writer: String,
        retention: FlowRetention,
    ) -> Result<Keeper, String> {
        let (tap, rx) = Tap::new(QUEUE, Box::new(|_| true));
        let counts = Arc::new(Counts::default());
        let stop = Arc::new(AtomicBool::new(false));
        let (c, s) = (Arc::clone(&counts), Arc::clone(&stop));
        let thread = std::thread::Builder::new()
            .name("flows-kept".into())
            .spawn(move || run(&rx, &options, &writer, &retention, &c, &s))
            .map_err(|e| format!("cannot start the flow records' writer: {e}"))?;
        Ok(Keeper {
            tap,
            counts,
            stop,
            thread: Some(thread),
        })
    }

    /// The tap for the collector.
    pub fn tap(&self) -> Arc<Tap> {
        Arc::clone(&self.tap)
    }

    /// The counts so far.
    pub fn status(&self) -> KeptStatus {
        KeptStatus {
            taken: self.tap.taken(),
            dropped: self.tap.dropped(),
            kept: self.counts.kept.load(Ordering::Relaxed),
            batches: self.counts.batches.load(Ordering::Relaxed),
            lost: self.counts.lost.load(Ordering::Relaxed),
            last_error: self
                .counts
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        }
    }

    /// Writes what is queued (once, without waiting for a ClickHouse that
    /// is away) and stops the thread. The collector has stopped (or the
    /// tap is unset) before this, so nothing more arrives.
    pub fn stop(mut self) -> KeptStatus {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.status()
    }
}

/// The writer `[history.flows]` asks for: `None` without it (or with
/// `keep = false`). The writer's name in `flow_writers` is this host's,
/// so that several collectors can keep records in one database.
pub fn start(policy: &policy::Policy) -> Result<Option<Keeper>, String> {
    let Some(h) = &policy.history else {
        return Ok(None);
    };
    let (Some(f), policy::HistoryStore::ClickHouse { url, database }) = (&h.flows, &h.store) else {
        return Ok(None);
    };
    if !f.keep {
        return Ok(None);
    }
    let options = ClickHouseOptions {
        url: url.clone(),
        database: database.clone(),
        ..ClickHouseOptions::default()
    };
    let retention = FlowRetention {
        raw_days: f.raw_days,
        minute_days: f.minute_days,
        five_minute_days: f.five_minute_days,
        hour_days: f.hour_days,
    };
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
    let writer = match host.trim() {
        "" => "flows".to_string(),
        h => h.to_string(),
    };
    Keeper::start(options, writer, retention).map(Some)
}

/// The taker: batches from the queue, handed to the writer in order.
fn run(
    rx: &Receiver<TapRecord>,
    options: &ClickHouseOptions,
    writer: &str,
    retention: &FlowRetention,
    counts: &Arc<Counts>,
    stop: &Arc<AtomicBool>,
) {
    // A rendezvous: the taker keeps its full batch until the writer is
    // free, so at most two batches are held.
    let (to_writer, batches) = sync_channel::<Vec<FlowRow>>(0);
    let (o, w, r, c, st) = (
        options.clone(),
        writer.to_string(),
        *retention,
        Arc::clone(counts),
        Arc::clone(stop),
    );
    let thread = std::thread::Builder::new()
        .name("flows-kept-write".into())
        .spawn(move || write_batches(&batches, &o, &w, &r, &c, &st));
    let thread = match thread {
        Ok(t) => t,
        Err(e) => {
            tracing::error!("cannot start the flow records' writer: {e}");
            return;
        }
    };
    let mut batch: Vec<FlowRow> = Vec::new();
    let mut first = Instant::now();
    loop {
        let stopping = stop.load(Ordering::Relaxed);
        // Fill the batch until it is full, a second old, or stopping.
        while batch.len() < BATCH {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => {
                    if batch.is_empty() {
                        first = Instant::now();
                    }
                    batch.push(row(&r));
                }
                Err(RecvTimeoutError::Timeout) => {
                    if stopping || stop.load(Ordering::Relaxed) || first.elapsed() >= LINGER {
                        break;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if !batch.is_empty() && first.elapsed() >= LINGER {
                break;
            }
        }
        if batch.is_empty() {
            // Stopping and nothing more queued: done once the writer is.
            if stopping {
                drop(to_writer);
                let _ = thread.join();
                return;
            }
        } else if to_writer.send(std::mem::take(&mut batch)).is_err() {
            return;
        }
    }
}

/// The writer: each batch written in turn, and retention once an hour.
fn write_batches(
    batches: &Receiver<Vec<FlowRow>>,
    options: &ClickHouseOptions,
    writer: &str,
    retention: &FlowRetention,
    counts: &Counts,
    stop: &AtomicBool,
) {
    let mut store: Option<(ClickHouseStore, u64)> = None;
    let mut last_retention: Option<Instant> = None;
    let mut gave_up = false;
    while let Ok(batch) = batches.recv() {
        let stopping = stop.load(Ordering::Relaxed);
        if stopping && gave_up {
            // ClickHouse already failed during this stop: what is left is
            // counted, not tried again (a stop waits for one try at most).
            counts.lost.fetch_add(batch.len() as u64, Ordering::Relaxed);
            continue;
        }
        gave_up = !write(&mut store, options, writer, &batch, counts, stopping);
        drop(batch);
        if let Some((s, _)) = &store {
            if last_retention.is_none_or(|t| t.elapsed() >= RETENTION_EVERY) {
                last_retention = Some(Instant::now());
                match s.forget_flows(jiff::Timestamp::now(), retention) {
                    Ok(r) if r.partitions_dropped > 0 => tracing::info!(
                        partitions = r.partitions_dropped,
                        "flow records past their retention dropped"
                    ),
                    Ok(_) => {}
                    Err(e) => tracing::warn!("flow records' retention: {e}"),
                }
            }
        }
    }
}

/// Writes one batch, retrying (reopening the store) until [`GIVE_UP`];
/// when stopping, tries once. Whether it was written.
fn write(
    store: &mut Option<(ClickHouseStore, u64)>,
    options: &ClickHouseOptions,
    writer: &str,
    batch: &[FlowRow],
    counts: &Counts,
    stopping: bool,
) -> bool {
    let start = Instant::now();
    let mut pause = Duration::from_millis(100);
    loop {
        let result = (|| -> Result<(), StoreError> {
            if store.is_none() {
                let s = ClickHouseStore::open(options)?;
                let next = s.flows_last_sequence(writer)?.unwrap_or(0) + 1;
                *store = Some((s, next));
            }
            let (s, next) = store.as_mut().expect("opened above");
            match s.keep_flows(writer, *next, batch) {
                Ok(()) => {
                    *next += 1;
                    Ok(())
                }
                // An earlier try of this batch landed (its answer was
                // lost): kept once.
                Err(StoreError::AlreadyAppended { last, .. }) if last == *next => {
                    *next += 1;
                    Ok(())
                }
                Err(e) => Err(e),
            }
        })();
        let mut last_error = counts.last_error.lock().unwrap_or_else(|e| e.into_inner());
        match result {
            Ok(()) => {
                counts.kept.fetch_add(batch.len() as u64, Ordering::Relaxed);
                counts.batches.fetch_add(1, Ordering::Relaxed);
                *last_error = None;
                return true;
            }
            Err(e) => {
                if last_error.is_none() {
                    tracing::warn!("cannot keep {} flow records: {e}", batch.len());
                }
                *last_error = Some(e.to_string());
                // Reopen: the sequence is read again from the store.
                *store = None;
                if stopping || start.elapsed() >= GIVE_UP {
                    counts.lost.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    tracing::error!(
                        "{} flow records not kept (ClickHouse failed for {:.0} s): {e}",
                        batch.len(),
                        start.elapsed().as_secs_f64()
                    );
                    return false;
                }
            }
        }
        drop(last_error);
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flow_wire::{FlowRecord, Sampling, SamplingOrigin};

    #[test]
    fn a_row_is_the_record_scaled_at_its_end() {
        let r = TapRecord {
            exporter: "192.0.2.1".parse().unwrap(),
            record: FlowRecord {
                src: Some("198.51.100.2".parse().unwrap()),
                dst: None,
                protocol: 17,
                src_port: 53,
                dst_port: 9,
                tcp_flags: 0,
                bytes: 100,
                packets: 2,
                start_ms: 1_000,
                end_ms: 61_999,
                sampling: Sampling::UNKNOWN,
            },
            sampling: Sampling::one_in(10, SamplingOrigin::Header),
        };
        let row = row(&r);
        assert_eq!((row.time, row.bytes, row.packets), (61, 1000, 20));
        assert_eq!((row.src_port, row.dst, row.protocol), (53, None, 17));
    }
}
