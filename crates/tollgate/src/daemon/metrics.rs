//! The daemon's metrics, served in Prometheus' text format on
//! `--metrics ADDR` by one plain thread: the scrape rate is a few requests
//! a minute, so a blocking `TcpListener` is all it needs.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Counters and gauges, updated by the daemon's loop.
#[derive(Default)]
pub struct Metrics {
    /// Accounting reads.
    pub reads: AtomicU64,
    /// Reconcile rounds.
    pub reconciles: AtomicU64,
    /// Changes the kernel accepted.
    pub changes_applied: AtomicU64,
    /// Changes the kernel refused.
    pub changes_failed: AtomicU64,
    /// Closed samples committed.
    pub samples_written: AtomicU64,
    /// Batches committed.
    pub batches_written: AtomicU64,
    /// Batches the store refused.
    pub batch_failures: AtomicU64,
    /// When the last batch was committed, in ms since the epoch.
    pub last_read_ms: AtomicU64,
    /// The last reconcile round's duration, in µs.
    pub round_us: AtomicU64,
    /// Counters the accountant tracks.
    pub counters_tracked: AtomicU64,
    /// Policy reloads that took effect.
    pub reloads_ok: AtomicU64,
    /// Policy reloads refused (the running policy was kept).
    pub reloads_refused: AtomicU64,
    /// Tenants moved into or out of the overage plan.
    pub overage_moves: AtomicU64,
    /// Flow samples committed.
    pub flow_samples: AtomicU64,
    /// The flow collector's counters, already in the exposition format.
    flows: std::sync::Mutex<String>,
}

impl Metrics {
    /// Adds to a counter.
    pub fn add(&self, c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Sets a gauge.
    pub fn set(&self, g: &AtomicU64, v: u64) {
        g.store(v, Ordering::Relaxed);
    }

    /// Takes the flow collector's counters from its latest status.
    pub fn flows(&self, s: &crate::collector::Status) {
        let mut out = String::new();
        let mut family = |name: &str, help: &str, rows: Vec<(String, u64)>| {
            out.push_str(&format!("# HELP {name} {help}\n# TYPE {name} counter\n"));
            for (labels, v) in rows {
                out.push_str(&format!("{name}{labels} {v}\n"));
            }
        };
        let t = &s.totals;
        family(
            "tollgate_flow_records_total",
            "Flow records decoded, by what attribution made of them.",
            vec![
                ("{outcome=\"attributed\"}".into(), t.attributed),
                ("{outcome=\"kernel_measured\"}".into(), t.kernel_measured),
                ("{outcome=\"no_tenant\"}".into(), t.unattributed),
            ],
        );
        // Every worker has its own socket on the same address; one series
        // per address, summed over them (a label set may appear only once).
        let sock = |f: fn(&flow_collector::SocketStats) -> u64| {
            let mut per: std::collections::BTreeMap<String, u64> = Default::default();
            for k in &s.sockets {
                *per.entry(format!("{{socket=\"{}\"}}", k.local))
                    .or_default() += f(k);
            }
            per.into_iter().collect::<Vec<_>>()
        };
        family(
            "tollgate_flow_datagrams_total",
            "Datagrams received per socket.",
            sock(|k| k.datagrams),
        );
        family(
            "tollgate_flow_kernel_drops_total",
            "Datagrams the kernel dropped per socket (full receive buffer).",
            sock(|k| k.kernel_drops),
        );
        family(
            "tollgate_flow_refused_total",
            "Datagrams from sources not on the exporter allowlist, per socket.",
            sock(|k| k.refused),
        );
        let exp = |f: fn(&flow_collector::ExporterStats) -> u64| {
            s.exporters
                .iter()
                .filter(|e| e.allowed)
                .map(|e| (format!("{{exporter=\"{}\"}}", e.address), f(e)))
                .collect::<Vec<_>>()
        };
        family(
            "tollgate_flow_exporter_records_total",
            "Flow records decoded per exporter.",
            exp(|e| e.flows),
        );
        family(
            "tollgate_flow_exporter_malformed_total",
            "Malformed datagrams per exporter (dropped).",
            exp(|e| e.malformed),
        );
        family(
            "tollgate_flow_exporter_unknown_template_total",
            "Data records skipped for want of their template, per exporter.",
            exp(|e| e.unknown_template_records),
        );
        family(
            "tollgate_flow_exporter_sequence_gaps_total",
            "Jumps in the export sequence number per exporter (loss upstream, or restarts).",
            exp(|e| e.sequence_gaps),
        );
        if let Ok(mut f) = self.flows.lock() {
            *f = out;
        }
    }

    /// The text exposition, with the accounting lag computed at `now_ms`.
    pub fn render(&self, now_ms: u64) -> String {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let last = get(&self.last_read_ms);
        let lag = if last == 0 {
            f64::NAN
        } else {
            now_ms.saturating_sub(last) as f64 / 1e3
        };
        let mut out = String::new();
        let mut put = |name: &str, kind: &str, help: &str, value: String| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
            ));
        };
        for (name, help, v) in [
            (
                "tollgate_reads_total",
                "Counter reads accounted.",
                &self.reads,
            ),
            (
                "tollgate_reconcile_rounds_total",
                "Reconcile rounds (observe, compile, diff, apply).",
                &self.reconciles,
            ),
            (
                "tollgate_changes_applied_total",
                "Kernel changes applied.",
                &self.changes_applied,
            ),
            (
                "tollgate_changes_failed_total",
                "Kernel changes refused; retried next round.",
                &self.changes_failed,
            ),
            (
                "tollgate_samples_written_total",
                "Closed 5-minute samples committed to the history.",
                &self.samples_written,
            ),
            (
                "tollgate_batches_written_total",
                "Accounting batches committed (samples and state in one transaction).",
                &self.batches_written,
            ),
            (
                "tollgate_batch_failures_total",
                "Accounting batches the store refused; their samples are retried.",
                &self.batch_failures,
            ),
            (
                "tollgate_overage_moves_total",
                "Tenants moved into or out of the overage plan.",
                &self.overage_moves,
            ),
            (
                "tollgate_flow_samples_written_total",
                "Flow-measured samples added to the history.",
                &self.flow_samples,
            ),
        ] {
            put(name, "counter", help, get(v).to_string());
        }
        out.push_str(&format!(
            "# HELP tollgate_policy_reloads_total Policy reloads (SIGHUP) by result.\n\
             # TYPE tollgate_policy_reloads_total counter\n\
             tollgate_policy_reloads_total{{result=\"ok\"}} {}\n\
             tollgate_policy_reloads_total{{result=\"refused\"}} {}\n",
            get(&self.reloads_ok),
            get(&self.reloads_refused)
        ));
        let mut put = |name: &str, help: &str, value: String| {
            out.push_str(&format!(
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}\n"
            ));
        };
        put(
            "tollgate_accounting_lag_seconds",
            "Seconds since the last committed counter read.",
            format!("{lag}"),
        );
        put(
            "tollgate_round_duration_seconds",
            "Duration of the last reconcile round.",
            format!("{}", get(&self.round_us) as f64 / 1e6),
        );
        put(
            "tollgate_counters_tracked",
            "Tenant × realm × direction × band counters the accountant tracks.",
            get(&self.counters_tracked).to_string(),
        );
        if let Ok(f) = self.flows.lock() {
            out.push_str(&f);
        }
        out
    }
}

/// Binds `addr` now (so a taken port stops the daemon at start) and serves
/// the metrics from a thread.
pub fn serve(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<(), String> {
    let listener = TcpListener::bind(addr).map_err(|e| {
        format!("cannot listen for metrics on {addr}: {e}\n  hint: pick another --metrics address, or leave it out")
    })?;
    tracing::info!(%addr, "serving metrics");
    std::thread::Builder::new()
        .name("metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                // A slow or silent client must not hold the thread.
                let _ = conn.set_read_timeout(Some(Duration::from_secs(2)));
                let _ = conn.set_write_timeout(Some(Duration::from_secs(2)));
                let mut buf = [0u8; 1024];
                let _ = conn.read(&mut buf);
                let now = jiff::Timestamp::now().as_millisecond().max(0) as u64;
                let body = metrics.render(now);
                let _ = write!(
                    conn,
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        })
        .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text() {
        let m = Metrics::default();
        m.add(&m.samples_written, 12);
        m.set(&m.last_read_ms, 10_000);
        m.add(&m.reloads_refused, 1);
        let t = m.render(12_500);
        assert!(t.contains("\ntollgate_samples_written_total 12\n"), "{t}");
        assert!(t.contains("tollgate_accounting_lag_seconds 2.5\n"), "{t}");
        assert!(
            t.contains("tollgate_policy_reloads_total{result=\"refused\"} 1\n"),
            "{t}"
        );
        assert!(
            t.contains("# TYPE tollgate_policy_reloads_total counter\n"),
            "{t}"
        );
    }

    #[test]
    fn flow_sockets_of_one_address_are_one_series() {
        let m = Metrics::default();
        let socket = |datagrams| flow_collector::SocketStats {
            local: "127.0.0.1:2055".parse().unwrap(),
            datagrams,
            ..flow_collector::SocketStats::default()
        };
        let status = crate::collector::Status {
            sockets: vec![socket(3), socket(4)],
            ..crate::collector::Status::default()
        };
        m.flows(&status);
        let t = m.render(0);
        let series = "tollgate_flow_datagrams_total{socket=\"127.0.0.1:2055\"}";
        assert_eq!(t.matches(series).count(), 1, "{t}");
        assert!(t.contains(&format!("{series} 7\n")), "{t}");
    }
}
