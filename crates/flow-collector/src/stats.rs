//! Counters the collector keeps per socket and per exporter.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// One socket's counters since start.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SocketStats {
    /// The bound address.
    pub local: SocketAddr,
    /// The receive buffer the kernel granted, in bytes.
    pub receive_buffer: usize,
    /// Datagrams received.
    pub datagrams: u64,
    /// Bytes of datagrams received.
    pub bytes: u64,
    /// Datagrams the kernel dropped because this socket's buffer was full
    /// (the `drops` column of `/proc/net/udp`).
    pub kernel_drops: u64,
    /// Datagrams longer than the receive slot, dropped as truncated.
    pub truncated: u64,
    /// Datagrams from addresses not in the exporter allowlist.
    pub refused: u64,
    /// Receive calls that failed (other than timeouts).
    pub receive_errors: u64,
    /// Times this socket's worker thread died (a panic) and was started
    /// again on the socket, with what it held.
    #[serde(default)]
    pub restarts: u64,
    /// What the last dead worker panicked with.
    #[serde(default)]
    pub last_panic: Option<String>,
}

impl Default for SocketStats {
    fn default() -> Self {
        SocketStats {
            local: SocketAddr::from(([0, 0, 0, 0], 0)),
            receive_buffer: 0,
            datagrams: 0,
            bytes: 0,
            kernel_drops: 0,
            truncated: 0,
            refused: 0,
            receive_errors: 0,
            restarts: 0,
            last_panic: None,
        }
    }
}

/// One exporter's counters since start (or a refused source's). Fields
/// added after the first release default to 0 when an older status file
/// is read.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExporterStats {
    /// Where its datagrams come from.
    pub address: IpAddr,
    /// Whether it is on the allowlist.
    pub allowed: bool,
    /// Datagrams received from it.
    pub datagrams: u64,
    /// Flow records decoded (a record of both directions counts two).
    pub flows: u64,
    /// Interface counter records decoded (sFlow).
    pub counters: u64,
    /// Datagrams that failed to decode (dropped, in part or whole), and
    /// datagrams a worker died on.
    pub malformed: u64,
    /// Data sets skipped because their template was not (yet) known.
    #[serde(default)]
    pub unknown_template_sets: u64,
    /// Data records in those sets, where the datagram says how many
    /// (NetFlow v9's header count); IPFIX messages do not, so for IPFIX
    /// exporters only the sets are counted.
    pub unknown_template_records: u64,
    /// Templates learned (including re-sent ones).
    pub templates: u64,
    /// Templates refused by the template limits (too many fields, or
    /// larger than the whole budget).
    #[serde(default)]
    pub templates_refused: u64,
    /// Templates (of any exporter) evicted to make room for this
    /// exporter's.
    #[serde(default)]
    pub templates_evicted: u64,
    /// Why the last refused template was refused.
    #[serde(default)]
    pub last_refusal: Option<String>,
    /// Records refused as beyond any link's capacity (quarantined).
    #[serde(default)]
    pub quarantined: u64,
    /// Attributed records whose packet selection tollgate cannot scale
    /// (counted at a scale of 1).
    #[serde(default)]
    pub unscaled: u64,
    /// The PSAMP selector algorithm of the last of those.
    #[serde(default)]
    pub unsupported_algorithm: Option<u16>,
    /// Times the export sequence number jumped: datagrams lost between the
    /// exporter and us, or the exporter restarted.
    pub sequence_gaps: u64,
    /// The last decode error, with where in the datagram it was.
    pub last_error: Option<String>,
}

impl ExporterStats {
    /// Zero counters for an address.
    pub fn new(address: IpAddr) -> ExporterStats {
        ExporterStats {
            address,
            allowed: true,
            datagrams: 0,
            flows: 0,
            counters: 0,
            malformed: 0,
            unknown_template_sets: 0,
            unknown_template_records: 0,
            templates: 0,
            templates_refused: 0,
            templates_evicted: 0,
            last_refusal: None,
            quarantined: 0,
            unscaled: 0,
            unsupported_algorithm: None,
            sequence_gaps: 0,
            last_error: None,
        }
    }

    /// Adds another worker's counters for the same address.
    pub fn add(&mut self, o: &ExporterStats) {
        self.allowed = o.allowed;
        self.datagrams += o.datagrams;
        self.flows += o.flows;
        self.counters += o.counters;
        self.malformed += o.malformed;
        self.unknown_template_sets += o.unknown_template_sets;
        self.unknown_template_records += o.unknown_template_records;
        self.templates += o.templates;
        self.templates_refused += o.templates_refused;
        self.templates_evicted += o.templates_evicted;
        self.quarantined += o.quarantined;
        self.unscaled += o.unscaled;
        self.sequence_gaps += o.sequence_gaps;
        if o.last_error.is_some() {
            self.last_error.clone_from(&o.last_error);
        }
        if o.last_refusal.is_some() {
            self.last_refusal.clone_from(&o.last_refusal);
        }
        if o.unsupported_algorithm.is_some() {
            self.unsupported_algorithm = o.unsupported_algorithm;
        }
    }
}

/// Counters of the whole collector since start (fields added after the
/// first release default to 0 when an older status file is read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    /// Datagrams received on every socket.
    pub datagrams: u64,
    /// Datagrams the kernel dropped (full buffers).
    pub kernel_drops: u64,
    /// Datagrams from sources not on the allowlist.
    pub refused: u64,
    /// Flow records decoded.
    pub flows: u64,
    /// Records attributed to a tenant measured by flows.
    pub attributed: u64,
    /// Records about tenants counted in the kernel instead.
    pub kernel_measured: u64,
    /// Records about no tenant.
    pub unattributed: u64,
    /// Records whose times were implausible.
    pub clock_skew: u64,
    /// Bytes of attributed records, after sampling.
    pub bytes: u64,
    /// Packets of attributed records, after sampling.
    pub packets: u64,
    /// Templates known, summed over workers.
    pub templates: u64,
    /// What the workers' templates take, in bytes (as their budget
    /// counts them).
    #[serde(default)]
    pub template_bytes: u64,
    /// Templates refused by the limits.
    #[serde(default)]
    pub templates_refused: u64,
    /// Templates evicted to make room.
    #[serde(default)]
    pub templates_evicted: u64,
    /// Records refused as beyond any link's capacity (kept aside).
    #[serde(default)]
    pub quarantined: u64,
    /// Of those, the ones not kept (beyond what a worker keeps between
    /// harvests): counted only.
    #[serde(default)]
    pub quarantine_dropped: u64,
    /// Records counted at a scale of 1 because their packet selection
    /// cannot be scaled.
    #[serde(default)]
    pub unscaled: u64,
    /// Worker threads that died and were started again.
    #[serde(default)]
    pub worker_restarts: u64,
}

impl Totals {
    pub(crate) fn add_tally(&mut self, t: &flows::TallyStats) {
        self.flows += t.flows;
        self.attributed += t.attributed;
        self.kernel_measured += t.kernel_measured;
        self.unattributed += t.unattributed;
        self.clock_skew += t.clock_skew;
        self.quarantined += t.quarantined;
        self.quarantine_dropped += t.quarantine_dropped;
        self.unscaled += t.unscaled;
        self.bytes = self.bytes.saturating_add(t.bytes);
        self.packets = self.packets.saturating_add(t.packets);
    }

    pub(crate) fn add_socket(&mut self, s: &SocketStats) {
        self.datagrams += s.datagrams;
        self.kernel_drops += s.kernel_drops;
        self.refused += s.refused;
        self.worker_restarts += s.restarts;
    }

    pub(crate) fn add_exporter(&mut self, e: &ExporterStats) {
        self.templates_refused += e.templates_refused;
        self.templates_evicted += e.templates_evicted;
    }
}
