//! What the decoders hand to the caller: flows, interface counters and a
//! summary of each datagram.

use std::net::{IpAddr, Ipv4Addr};

/// One decoded flow (or one sFlow packet sample scaled to a flow).
///
/// It lives on the decoder's stack and is lent to the sink, so decoding
/// allocates nothing per record; copy it (it is `Copy`) to keep it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowRecord {
    /// Source address. `0.0.0.0` when the record carries no address (a
    /// template without address fields, or a sampled frame that is not IP).
    pub src: IpAddr,
    /// Destination address, `0.0.0.0` when absent as for `src`.
    pub dst: IpAddr,
    /// IP protocol number (6 TCP, 17 UDP, ...), 0 when absent.
    pub protocol: u8,
    /// Transport source port, 0 when absent.
    pub src_port: u16,
    /// Transport destination port, 0 when absent. For ICMP sFlow samples it
    /// carries type × 256 + code, as NetFlow exporters do.
    pub dst_port: u16,
    /// Bytes as exported (NOT yet multiplied by sampling). For sFlow: the
    /// sampled frame's length less the bytes the agent says it stripped.
    pub bytes: u64,
    /// Packets as exported (NOT yet multiplied). For sFlow: 1.
    pub packets: u64,
    /// Flow start, Unix milliseconds. When the record carries no times,
    /// the export time (sFlow: the receive time passed in).
    pub start_ms: i64,
    /// Flow end, Unix milliseconds, defaulting like `start_ms`.
    pub end_ms: i64,
    /// The sampling the exporter reports for this record: 1 when unsampled
    /// or unknown.
    pub sampling: Sampling,
}

impl FlowRecord {
    /// A record with no addresses, no counters and both times at `at_ms`;
    /// the decoders fill in what the wire carries.
    pub(crate) fn empty(at_ms: i64, sampling: Sampling) -> Self {
        FlowRecord {
            src: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            dst: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            protocol: 0,
            src_port: 0,
            dst_port: 0,
            bytes: 0,
            packets: 0,
            start_ms: at_ms,
            end_ms: at_ms,
            sampling,
        }
    }
}

/// A sampling rate: one packet in `interval` was looked at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sampling {
    /// 1-in-N; never 0 (1 when unsampled or unknown).
    pub interval: u32,
    /// Where the decoder learned the interval.
    pub origin: SamplingOrigin,
}

impl Sampling {
    /// Unsampled, or sampled at a rate the exporter did not report.
    pub const UNKNOWN: Sampling = Sampling {
        interval: 1,
        origin: SamplingOrigin::None,
    };

    /// `interval` from `origin`, or [`Sampling::UNKNOWN`] when the
    /// interval is 0 (which no exporter means literally).
    pub(crate) fn from(interval: u32, origin: SamplingOrigin) -> Sampling {
        if interval == 0 {
            Sampling::UNKNOWN
        } else {
            Sampling { interval, origin }
        }
    }
}

/// Where a [`Sampling`] interval came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SamplingOrigin {
    /// Nothing reported one; the interval is 1.
    None,
    /// The NetFlow v5 header's sampling_interval.
    Header,
    /// A field in the flow record itself (samplingInterval and friends).
    Record,
    /// Learned from an options data record, by sampler/selector id or for
    /// the whole exporter and observation domain.
    OptionsTemplate,
    /// The sFlow flow sample's sampling_rate.
    SflowSample,
}

/// One sFlow generic interface counters record (counters_sample format 1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct InterfaceCounters {
    /// The agent's ifIndex.
    pub if_index: u32,
    /// ifInOctets.
    pub in_octets: u64,
    /// ifOutOctets.
    pub out_octets: u64,
    /// Unicast + multicast + broadcast packets received.
    pub in_packets: u64,
    /// Unicast + multicast + broadcast packets sent.
    pub out_packets: u64,
    /// ifInDiscards.
    pub in_discards: u32,
    /// ifOutDiscards.
    pub out_discards: u32,
    /// ifInErrors.
    pub in_errors: u32,
    /// ifOutErrors.
    pub out_errors: u32,
}

/// What a datagram yielded, one at a time, to the caller's sink.
#[derive(Clone, Copy, Debug)]
pub enum Item<'a> {
    /// A flow record.
    Flow(&'a FlowRecord),
    /// An interface's counters (sFlow counter samples).
    Counters(&'a InterfaceCounters),
}

/// The export protocol of a datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Protocol {
    /// Cisco NetFlow version 5.
    NetflowV5,
    /// NetFlow version 9 (RFC 3954).
    NetflowV9,
    /// IPFIX, version 10 (RFC 7011).
    Ipfix,
    /// sFlow version 5.
    SflowV5,
}

/// What a datagram yielded besides flows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DatagramSummary {
    /// The datagram's protocol.
    pub protocol: Protocol,
    /// Flow records handed to the sink.
    pub flows: u32,
    /// Interface counter records handed to the sink.
    pub counters: u32,
    /// Template records read (a re-sent identical template counts too).
    pub templates_learned: u32,
    /// Templates removed by IPFIX withdrawals.
    pub templates_withdrawn: u32,
    /// Options data records read (sampling announcements and others).
    pub options_records: u32,
    /// Data records skipped because their template is unknown (yet).
    /// Without the template a set's record length is unknown, so this
    /// counts one per data set that was skipped, not per record.
    pub unknown_template_records: u32,
    /// The header's sequence number (v5: flow sequence; v9: package
    /// sequence; IPFIX: sequence; sFlow: datagram sequence).
    pub sequence: Option<u32>,
    /// v9 source id, IPFIX observation domain, v5 engine type × 256 +
    /// engine id, sFlow sub-agent id.
    pub domain: u32,
}

impl DatagramSummary {
    pub(crate) fn new(protocol: Protocol, sequence: u32, domain: u32) -> Self {
        DatagramSummary {
            protocol,
            flows: 0,
            counters: 0,
            templates_learned: 0,
            templates_withdrawn: 0,
            options_records: 0,
            unknown_template_records: 0,
            sequence: Some(sequence),
            domain,
        }
    }
}
