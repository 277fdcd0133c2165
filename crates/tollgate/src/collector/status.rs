//! The collector's status file, and `tollgate flows status`.
//!
//! The collector rewrites `DIR/flows-status.json` at every commit (by
//! writing a new file and renaming it over the old, so a reader never sees
//! half of one). Other commands read it instead of asking the daemon.

use crate::ledger::{human_bytes, human_count};
use flow_collector::{Collector, ExporterStats, SocketStats, Totals};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt::Write;
use std::net::SocketAddr;
use std::path::Path;

/// The file's name inside the state directory.
pub const STATUS_FILE: &str = "flows-status.json";

/// What the collector last reported about itself.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Status {
    /// Whether it was running when it wrote this (false after a clean stop).
    pub running: bool,
    /// When it started listening.
    pub started: Option<Timestamp>,
    /// When it wrote this.
    pub updated: Option<Timestamp>,
    /// Where it listens.
    pub listen: Vec<SocketAddr>,
    /// Counters since start.
    pub totals: Totals,
    /// Per socket.
    pub sockets: Vec<SocketStats>,
    /// Per exporter, and per refused source.
    pub exporters: Vec<ExporterStats>,
}

impl Status {
    pub(super) fn new(
        started: Timestamp,
        now: Timestamp,
        c: &Collector,
        totals: Totals,
        sockets: Vec<SocketStats>,
        exporters: Vec<ExporterStats>,
    ) -> Status {
        Status {
            running: true,
            started: Some(started),
            updated: Some(now),
            listen: c.local_addrs().to_vec(),
            totals,
            sockets,
            exporters,
        }
    }

    pub(super) fn stopped(
        started: Timestamp,
        now: Timestamp,
        totals: Totals,
        sockets: Vec<SocketStats>,
        exporters: Vec<ExporterStats>,
    ) -> Status {
        Status {
            running: false,
            started: Some(started),
            updated: Some(now),
            listen: sockets.iter().map(|s| s.local).collect(),
            totals,
            sockets,
            exporters,
        }
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, text + "\n")?;
        std::fs::rename(&tmp, path)
    }

    /// Reads the file from a state directory.
    pub fn load(dir: &Path) -> Result<Status, String> {
        let path = dir.join(STATUS_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            format!(
                "cannot read {}: {e}\n  hint: the flow collector (`tollgate run` with [flows] in the policy, or `tollgate flows collect`) writes it; pass --state-dir if it keeps its state elsewhere",
                path.display()
            )
        })?;
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The status for people.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let t = &self.totals;
        let state = if self.running { "running" } else { "stopped" };
        let _ = writeln!(
            s,
            "flow collector: {state}, since {}, as of {}",
            self.started.map_or("?".into(), |t| t.to_string()),
            self.updated.map_or("?".into(), |t| t.to_string())
        );
        let _ = writeln!(
            s,
            "  records {} (attributed {}, kernel-measured {}, no tenant {}, clock skew {})",
            human_count(t.flows),
            human_count(t.attributed),
            human_count(t.kernel_measured),
            human_count(t.unattributed),
            human_count(t.clock_skew)
        );
        let _ = writeln!(
            s,
            "  attributed {} in {} packets; templates known {}",
            human_bytes(t.bytes),
            human_count(t.packets),
            t.templates
        );
        let _ = writeln!(
            s,
            "\n{:<24} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8}",
            "socket", "buffer", "datagrams", "dropped", "refused", "truncated", "errors"
        );
        for k in &self.sockets {
            let _ = writeln!(
                s,
                "{:<24} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8}",
                k.local.to_string(),
                human_bytes(k.receive_buffer as u64),
                human_count(k.datagrams),
                human_count(k.kernel_drops),
                human_count(k.refused),
                human_count(k.truncated),
                human_count(k.receive_errors)
            );
        }
        let _ = writeln!(
            s,
            "\n{:<40} {:>7} {:>10} {:>10} {:>9} {:>9} {:>6}",
            "exporter", "allowed", "datagrams", "records", "malformed", "no tmpl", "gaps"
        );
        for e in &self.exporters {
            let _ = writeln!(
                s,
                "{:<40} {:>7} {:>10} {:>10} {:>9} {:>9} {:>6}",
                e.address.to_string(),
                if e.allowed { "yes" } else { "NO" },
                human_count(e.datagrams),
                human_count(e.flows),
                human_count(e.malformed),
                human_count(e.unknown_template_records),
                human_count(e.sequence_gaps)
            );
            if let Some(err) = &e.last_error {
                let _ = writeln!(s, "    last error: {err}");
            }
        }
        if self.exporters.iter().any(|e| !e.allowed) {
            let _ = writeln!(s, "\nhint: datagrams from sources marked NO were dropped; list them under [[flows.exporters]] if they are yours");
        }
        s
    }
}

/// Adds the flow collector's status to `tollgate status` when the state
/// directory (`TOLLGATE_STATE_DIR`, else the default) has one: the same
/// text as `flows status`, or a `flows` member in JSON.
pub fn annotate_status(out: String, json: bool) -> String {
    let dir = std::env::var_os("TOLLGATE_STATE_DIR").map_or_else(
        || std::path::PathBuf::from(crate::ledger::DEFAULT_STATE_DIR),
        std::path::PathBuf::from,
    );
    if !dir.join(STATUS_FILE).exists() {
        return out;
    }
    let Ok(s) = Status::load(&dir) else {
        return out;
    };
    if json {
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&out) else {
            return out;
        };
        v["flows"] = serde_json::to_value(&s).unwrap_or_default();
        return serde_json::to_string_pretty(&v).map_or(out, |t| t + "\n");
    }
    out + "\n" + &s.render()
}
