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
        }
    }
}

/// One exporter's counters since start (or a refused source's).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExporterStats {
    /// Where its datagrams come from.
    pub address: IpAddr,
    /// Whether it is on the allowlist.
    pub allowed: bool,
    /// Datagrams received from it.
    pub datagrams: u64,
    /// Flow records decoded.
    pub flows: u64,
    /// Interface counter records decoded (sFlow).
    pub counters: u64,
    /// Datagrams that failed to decode (dropped, in part or whole).
    pub malformed: u64,
    /// Data records skipped because their template was not (yet) known.
    pub unknown_template_records: u64,
    /// Templates learned (including re-sent ones).
    pub templates: u64,
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
            unknown_template_records: 0,
            templates: 0,
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
        self.unknown_template_records += o.unknown_template_records;
        self.templates += o.templates;
        self.sequence_gaps += o.sequence_gaps;
        if o.last_error.is_some() {
            self.last_error.clone_from(&o.last_error);
        }
    }
}

/// Counters of the whole collector since start.
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
}

impl Totals {
    pub(crate) fn add_tally(&mut self, t: &flows::TallyStats) {
        self.flows += t.flows;
        self.attributed += t.attributed;
        self.kernel_measured += t.kernel_measured;
        self.unattributed += t.unattributed;
        self.clock_skew += t.clock_skew;
        self.bytes = self.bytes.saturating_add(t.bytes);
        self.packets = self.packets.saturating_add(t.packets);
    }

    pub(crate) fn add_socket(&mut self, s: &SocketStats) {
        self.datagrams += s.datagrams;
        self.kernel_drops += s.kernel_drops;
        self.refused += s.refused;
    }
}
