//! The collector's status file, and `tollgate flows status`.
//!
//! The collector rewrites `DIR/flows-status.json` at every commit with
//! [`crate::state_dir::replace_atomically`], so a reader never sees half
//! of one and a crash leaves the old or the new. Other commands read it
//! from the state directory they are given instead of asking the daemon.

use crate::ledger::{human_bytes, human_count};
use crate::state_dir::StateDir;
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
    /// Rates of what arrived during the last commit interval, per tenant ×
    /// realm, for `tollgate top`. Flow records arrive when the exporter
    /// sends them (a long flow at its active timeout), so these are rates
    /// of reported traffic, not of the wire at this instant.
    #[serde(default)]
    pub rates: Vec<FlowRate>,
    /// The interval the rates were measured over, in seconds.
    #[serde(default)]
    pub rate_seconds: f64,
    /// What was set aside as implausible, and where.
    #[serde(default)]
    pub quarantine: QuarantineStatus,
    /// The flow records kept in ClickHouse (`[history.flows]`), if kept.
    #[serde(default)]
    pub kept: Option<super::kept::KeptStatus>,
}

/// The quarantine: records and samples set aside as implausible.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct QuarantineStatus {
    /// Samples (tenant × realm × direction × slot sums) the history
    /// refused since start.
    pub samples_refused: u64,
    /// Entries written to the quarantine file since start.
    pub written: u64,
    /// Entries dropped from it since start (its size is bounded).
    pub dropped: u64,
    /// The file.
    pub file: String,
}

/// Bits per second reported for one tenant × realm.
#[derive(Clone, Copy, Debug, Default, Serialize, Deserialize)]
pub struct FlowRate {
    /// Whose.
    pub tenant: u32,
    /// Which realm.
    pub realm: u16,
    /// Toward the tenant.
    pub down_bps: f64,
    /// From the tenant.
    pub up_bps: f64,
}

/// The rates in `samples` (what one harvest brought) over `seconds`.
pub(super) fn rates(samples: &[accounting::Sample], seconds: f64) -> Vec<FlowRate> {
    let mut per: std::collections::BTreeMap<(u32, u16), FlowRate> = Default::default();
    let secs = seconds.max(1e-3);
    for s in samples {
        let r = per
            .entry((s.key.tenant.0, s.key.realm.0))
            .or_insert(FlowRate {
                tenant: s.key.tenant.0,
                realm: s.key.realm.0,
                ..FlowRate::default()
            });
        let bps = s.bytes as f64 * 8.0 / secs;
        match s.key.direction {
            accounting::Direction::Down => r.down_bps += bps,
            accounting::Direction::Up => r.up_bps += bps,
        }
    }
    per.into_values().collect()
}

/// The latest rates of the flow collector keeping its state in `state`,
/// if it is running and wrote them recently (within three of its
/// intervals, or ten seconds).
pub fn live_rates(state: &StateDir) -> Option<Vec<FlowRate>> {
    let s = Status::load(state.root()).ok()?;
    let fresh = s.updated.is_some_and(|u| {
        let age = Timestamp::now().duration_since(u).as_secs_f64();
        age <= (3.0 * s.rate_seconds).max(10.0)
    });
    (s.running && fresh).then_some(s.rates)
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
            rates: Vec::new(),
            rate_seconds: 0.0,
            quarantine: QuarantineStatus::default(),
            kept: None,
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
            rates: Vec::new(),
            rate_seconds: 0.0,
            quarantine: QuarantineStatus::default(),
            kept: None,
        }
    }

    /// Writes the file atomically.
    pub fn save(&self, path: &Path) -> crate::error::Result<()> {
        let text = serde_json::to_string_pretty(self).map_err(|e| {
            crate::error::Error::runtime(format!("cannot encode the flow status: {e}"))
        })?;
        crate::state_dir::replace_atomically(path, (text + "\n").as_bytes())
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
            "  attributed {} in {} packets; templates known {} ({}, {} refused, {} evicted)",
            human_bytes(t.bytes),
            human_count(t.packets),
            t.templates,
            human_bytes(t.template_bytes),
            human_count(t.templates_refused),
            human_count(t.templates_evicted)
        );
        if let Some(k) = &self.kept {
            let _ = writeln!(
                s,
                "  kept in ClickHouse: {} records in {} batches; {} dropped (queue full), {} lost{}",
                human_count(k.kept),
                human_count(k.batches),
                human_count(k.dropped),
                human_count(k.lost),
                k.last_error
                    .as_ref()
                    .map_or(String::new(), |e| format!("; FAILING: {e}"))
            );
        }
        let q = &self.quarantine;
        if t.quarantined > 0 || q.samples_refused > 0 {
            let _ = writeln!(
                s,
                "  QUARANTINED {} records beyond any link's capacity and {} samples the history refused ({} not kept); see {}",
                human_count(t.quarantined),
                human_count(q.samples_refused),
                human_count(t.quarantine_dropped + q.dropped),
                q.file
            );
        }
        if t.unscaled > 0 {
            let _ = writeln!(
                s,
                "  UNSCALED {} records whose sampling tollgate cannot scale were counted at 1 (see the exporters below)",
                human_count(t.unscaled)
            );
        }
        if t.worker_restarts > 0 {
            let _ = writeln!(
                s,
                "  WORKERS RESTARTED {} times after dying (see the sockets below)",
                t.worker_restarts
            );
        }
        let _ = writeln!(
            s,
            "\n{:<24} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8}",
            "socket",
            "buffer",
            "datagrams",
            "dropped",
            "refused",
            "truncated",
            "errors",
            "restarts"
        );
        for k in &self.sockets {
            let _ = writeln!(
                s,
                "{:<24} {:>10} {:>10} {:>9} {:>9} {:>9} {:>8} {:>8}",
                k.local.to_string(),
                human_bytes(k.receive_buffer as u64),
                human_count(k.datagrams),
                human_count(k.kernel_drops),
                human_count(k.refused),
                human_count(k.truncated),
                human_count(k.receive_errors),
                k.restarts
            );
            if let Some(p) = &k.last_panic {
                let _ = writeln!(s, "    last worker death: {p}");
            }
        }
        let _ = writeln!(
            s,
            "\n{:<40} {:>7} {:>10} {:>10} {:>9} {:>9} {:>6} {:>6}",
            "exporter", "allowed", "datagrams", "records", "malformed", "no tmpl", "gaps", "quar."
        );
        for e in &self.exporters {
            let _ = writeln!(
                s,
                "{:<40} {:>7} {:>10} {:>10} {:>9} {:>9} {:>6} {:>6}",
                e.address.to_string(),
                if e.allowed { "yes" } else { "NO" },
                human_count(e.datagrams),
                human_count(e.flows),
                human_count(e.malformed),
                human_count(e.unknown_template_sets),
                human_count(e.sequence_gaps),
                human_count(e.quarantined)
            );
            if let Some(err) = &e.last_error {
                let _ = writeln!(s, "    last error: {err}");
            }
            if e.templates_refused > 0 || e.templates_evicted > 0 {
                let _ = writeln!(
                    s,
                    "    templates refused {}, evicted for it {}{}",
                    human_count(e.templates_refused),
                    human_count(e.templates_evicted),
                    e.last_refusal
                        .as_deref()
                        .map_or_else(String::new, |r| format!("; last: {r}"))
                );
            }
            if e.unscaled > 0 {
                let _ = writeln!(
                    s,
                    "    cannot count: {} records sampled by selector algorithm {} have no scale tollgate knows; set `sampling` for this exporter in [[flows.exporters]]",
                    human_count(e.unscaled),
                    e.unsupported_algorithm
                        .map_or_else(|| "?".to_string(), |a| a.to_string())
                );
            }
        }
        let unknown: u64 = self
            .exporters
            .iter()
            .map(|e| e.unknown_template_records)
            .sum();
        if unknown > 0 {
            let _ = writeln!(
                s,
                "\n\"no tmpl\" counts data sets that arrived before their template ({} NetFlow v9 records among them; IPFIX does not say how many)",
                human_count(unknown)
            );
        }
        if self.exporters.iter().any(|e| !e.allowed) {
            let _ = writeln!(s, "\nhint: datagrams from sources marked NO were dropped; list them under [[flows.exporters]] if they are yours");
        }
        s
    }
}

/// Adds the flow collector's status to `tollgate status` when the state
/// directory the command was given has one: the same text as `flows
/// status`, or a `flows` member in JSON.
pub fn annotate_status(state: &StateDir, out: String, json: bool) -> String {
    let dir = state.root();
    if !dir.join(STATUS_FILE).exists() {
        return out;
    }
    let Ok(s) = Status::load(dir) else {
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

#[cfg(test)]
mod tests {
    use super::*;
    use accounting::{Band, Direction, Sample, Slot, Source, UsageKey};
    use net_types::{RealmId, TenantId};

    fn sample(slot: i64, tenant: u32, realm: u16, direction: Direction, bytes: u64) -> Sample {
        Sample {
            slot: Slot(slot),
            key: UsageKey {
                tenant: TenantId(tenant),
                realm: RealmId(realm),
                direction,
                band: Band::Whole,
                source: Source::Flow,
            },
            bytes,
            packets: 1,
        }
    }

    #[test]
    fn rates_sum_slots_per_tenant_and_realm() {
        let got = rates(
            &[
                sample(1, 7, 1, Direction::Up, 1000),
                sample(2, 7, 1, Direction::Up, 500),
                sample(2, 7, 1, Direction::Down, 250),
                sample(2, 8, 2, Direction::Down, 125),
            ],
            2.0,
        );
        let v: Vec<_> = got
            .iter()
            .map(|r| (r.tenant, r.realm, r.down_bps, r.up_bps))
            .collect();
        assert_eq!(v, vec![(7, 1, 1000.0, 6000.0), (8, 2, 500.0, 0.0)]);
    }

    #[test]
    fn an_old_status_file_without_rates_still_reads() {
        let s: Status = serde_json::from_str(
            r#"{"running":true,"started":null,"updated":null,"listen":[],"totals":{"datagrams":0,"kernel_drops":0,"refused":0,"flows":0,"attributed":0,"kernel_measured":0,"unattributed":0,"clock_skew":0,"bytes":0,"packets":0,"templates":0},"sockets":[],"exporters":[]}"#,
        )
        .unwrap();
        assert!(s.rates.is_empty());
    }

    #[test]
    fn the_text_names_the_quarantine_unscaled_exporters_refusals_and_dead_workers() {
        let mut e = flow_collector::ExporterStats::new("192.0.2.1".parse().unwrap());
        e.quarantined = 3;
        e.unscaled = 7;
        e.unsupported_algorithm = Some(9);
        e.templates_refused = 2;
        e.templates_evicted = 5;
        e.last_refusal = Some(
            "template 300 refused: 16369 fields, more than the 1024 a template may have".into(),
        );
        e.unknown_template_sets = 4;
        e.unknown_template_records = 11;
        let socket = flow_collector::SocketStats {
            local: "127.0.0.1:2055".parse().unwrap(),
            restarts: 1,
            last_panic: Some("index out of bounds".into()),
            ..flow_collector::SocketStats::default()
        };
        let mut s = Status {
            running: true,
            exporters: vec![e],
            sockets: vec![socket],
            ..Status::default()
        };
        s.totals.quarantined = 3;
        s.totals.unscaled = 7;
        s.totals.worker_restarts = 1;
        s.quarantine = QuarantineStatus {
            samples_refused: 1,
            written: 4,
            dropped: 0,
            file: "/var/lib/tollgate/flows-quarantine.jsonl".into(),
        };
        let text = s.render();
        for want in [
            "QUARANTINED 3 records beyond any link's capacity and 1 samples the history refused (0 not kept); see /var/lib/tollgate/flows-quarantine.jsonl",
            "UNSCALED 7 records",
            "WORKERS RESTARTED 1 times",
            "last worker death: index out of bounds",
            "cannot count: 7 records sampled by selector algorithm 9",
            "templates refused 2, evicted for it 5; last: template 300 refused",
            "11 NetFlow v9 records among them",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }
}
