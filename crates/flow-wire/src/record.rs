//! What the decoders hand to the caller: flows, interface counters and a
//! summary of each datagram.

use std::net::IpAddr;

/// One decoded flow (or one sampled packet scaled to a flow).
///
/// It lives on the decoder's stack and is lent to the sink, so decoding
/// allocates nothing per record; copy it (it is `Copy`) to keep it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct FlowRecord {
    /// Source address, `None` when the record carries none this crate can
    /// read (a template without address fields, a sampled frame that is
    /// not IP). Never a stand-in such as `0.0.0.0`: an unknown address
    /// must not be mistaken for somebody's.
    pub src: Option<IpAddr>,
    /// Destination address, `None` when absent as for `src`.
    pub dst: Option<IpAddr>,
    /// IP protocol number (6 TCP, 17 UDP, ...), 0 when absent.
    pub protocol: u8,
    /// Transport source port, 0 when absent.
    pub src_port: u16,
    /// Transport destination port, 0 when absent. For ICMP samples it
    /// carries type × 256 + code, as NetFlow exporters do.
    pub dst_port: u16,
    /// TCP flags seen in the flow (the OR of its segments' flags, NetFlow
    /// v5's `tcp_flags`, IPFIX/v9 tcpControlBits (6), a sampled header's
    /// TCP flags); 0 when absent or not TCP.
    pub tcp_flags: u8,
    /// Bytes as exported (NOT yet scaled by sampling). For sFlow: the
    /// sampled frame's length less the bytes the agent says it stripped.
    pub bytes: u64,
    /// Packets as exported (NOT yet scaled). For sFlow: 1.
    pub packets: u64,
    /// Flow start, Unix milliseconds. When the record carries no times,
    /// the export time (sFlow: the receive time passed in).
    pub start_ms: i64,
    /// Flow end, Unix milliseconds, defaulting like `start_ms`.
    pub end_ms: i64,
    /// The sampling the exporter reports for this record.
    pub sampling: Sampling,
}

impl FlowRecord {
    /// A record with no addresses, no counters and both times at `at_ms`;
    /// the decoders fill in what the wire carries.
    pub(crate) fn empty(at_ms: i64, sampling: Sampling) -> Self {
        FlowRecord {
            src: None,
            dst: None,
            protocol: 0,
            src_port: 0,
            dst_port: 0,
            tcp_flags: 0,
            bytes: 0,
            packets: 0,
            start_ms: at_ms,
            end_ms: at_ms,
            sampling,
        }
    }

    /// The same traffic seen from the other end: addresses and ports
    /// swapped (an RFC 5103 biflow's reverse direction, an NSEL
    /// responder's bytes).
    pub(crate) fn reversed(&self) -> FlowRecord {
        FlowRecord {
            src: self.dst,
            dst: self.src,
            src_port: self.dst_port,
            dst_port: self.src_port,
            ..*self
        }
    }
}

/// How many packets on the wire each packet the exporter looked at
/// stands for: `population / selected` (RFC 5477's n-out-of-N is
/// `selected = n`, `population = N`; 1-in-N sampling is N / 1).
///
/// A ratio rather than an integer interval, because n-out-of-N,
/// time-based and probabilistic sampling give fractional scales (3 out of
/// 10 is 10/3, a probability of 0.3 is 1/0.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Sampling {
    /// N: packets the selection was made from. Never 0.
    pub population: u64,
    /// n: packets selected out of `population`. Never 0.
    pub selected: u64,
    /// Where the decoder learned it.
    pub origin: SamplingOrigin,
}

impl Sampling {
    /// Unsampled, or sampled at a rate the exporter did not report.
    pub const UNKNOWN: Sampling = Sampling {
        population: 1,
        selected: 1,
        origin: SamplingOrigin::None,
    };

    /// 1 in `n` from `origin`, or [`Sampling::UNKNOWN`] when `n` is 0
    /// (which no exporter means literally).
    pub fn one_in(n: u64, origin: SamplingOrigin) -> Sampling {
        Sampling::ratio(n, 1, origin)
    }

    /// `selected` out of `population`; [`Sampling::UNKNOWN`] when either
    /// is 0.
    pub(crate) fn ratio(population: u64, selected: u64, origin: SamplingOrigin) -> Sampling {
        if population == 0 || selected == 0 {
            Sampling::UNKNOWN
        } else {
            Sampling {
                population,
                selected,
                origin,
            }
        }
    }

    /// `v` sampled units as units on the wire: `v × population /
    /// selected`, rounded to the nearest unit; `None` if that does not fit
    /// in 64 bits.
    pub fn scale(&self, v: u64) -> Option<u64> {
        let selected = u128::from(self.selected.max(1));
        let n = u128::from(v) * u128::from(self.population.max(1));
        u64::try_from((n + selected / 2) / selected).ok()
    }

    /// Whether the exporter announced a selection this crate cannot turn
    /// into a scale (the scale is then 1): the selector algorithm, if so.
    pub fn unsupported(&self) -> Option<u16> {
        match self.origin {
            SamplingOrigin::Unsupported(a) => Some(a),
            _ => None,
        }
    }
}

/// Where a [`Sampling`] came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SamplingOrigin {
    /// Nothing reported one; the scale is 1.
    None,
    /// The NetFlow v5 header's sampling_interval.
    Header,
    /// Fields in the flow record itself (samplingInterval and friends).
    Record,
    /// Learned from an options data record, by sampler/selector id or for
    /// the whole exporter and observation domain.
    OptionsTemplate,
    /// The sFlow flow sample's sampling_rate.
    SflowSample,
    /// Not the exporter: the collector's configuration overrides what it
    /// reports (never produced by the decoders).
    Configured,
    /// The exporter announced PSAMP selector algorithm (IE 304) with this
    /// number, or its parameters, in a form this crate cannot scale (RFC
    /// 7014's flow-state dependent selection, an unassigned number, a
    /// hash filter without its ranges). The scale is 1; callers count such
    /// records and report them rather than bill them as unsampled.
    Unsupported(u16),
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
    /// Flow records handed to the sink. A data record can give two (a
    /// biflow's reverse direction, an NSEL responder's bytes).
    pub flows: u32,
    /// Data records read (v9, IPFIX: records of known data templates;
    /// v5: records; sFlow: flow samples).
    pub records: u32,
    /// Interface counter records handed to the sink.
    pub counters: u32,
    /// Template records read (a re-sent identical template counts too).
    pub templates_learned: u32,
    /// Template records refused by the decoder's [`crate::Limits`]
    /// (too many fields, or larger than the whole template budget).
    pub templates_refused: u32,
    /// Templates forgotten to make room for this datagram's (the least
    /// recently used ones, of any exporter).
    pub templates_evicted: u32,
    /// Why the last refused template was refused.
    pub refusal: Option<TemplateRefusal>,
    /// Templates removed by IPFIX withdrawals.
    pub templates_withdrawn: u32,
    /// Options data records read (sampling announcements and others).
    pub options_records: u32,
    /// Data sets skipped because their template is unknown (yet).
    pub unknown_template_sets: u32,
    /// Data records in those sets, where the datagram says how many: a
    /// NetFlow v9 header counts every record of the packet, so the
    /// records of unknown sets are that count less the records read. An
    /// IPFIX message does not count its records (and without the template
    /// their length is unknown), so for IPFIX this stays 0 and
    /// `unknown_template_sets` is the measure.
    pub unknown_template_records: u32,
    /// The header's sequence number (v5: flow sequence; v9: package
    /// sequence; IPFIX: sequence; sFlow: datagram sequence).
    pub sequence: Option<u32>,
    /// v9 source id, IPFIX observation domain, v5 engine type × 256 +
    /// engine id, sFlow sub-agent id.
    pub domain: u32,
}

/// Why a template was not learned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TemplateRefusal {
    /// The template id.
    pub template: u16,
    /// Its field count.
    pub fields: usize,
    /// What it would cost to keep, in bytes.
    pub bytes: usize,
    /// Which limit it broke.
    pub limit: RefusedBy,
}

/// The [`crate::Limits`] member a refused template broke.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefusedBy {
    /// More fields than `fields_per_template`.
    Fields(usize),
    /// Larger on its own than `template_bytes`.
    Bytes(usize),
}

impl std::fmt::Display for TemplateRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.limit {
            RefusedBy::Fields(max) => write!(
                f,
                "template {} refused: {} fields, more than the {max} a template may have",
                self.template, self.fields
            ),
            RefusedBy::Bytes(max) => write!(
                f,
                "template {} refused: it would take {} bytes, more than the whole template budget of {max}",
                self.template, self.bytes
            ),
        }
    }
}

impl DatagramSummary {
    pub(crate) fn new(protocol: Protocol, sequence: u32, domain: u32) -> Self {
        DatagramSummary {
            protocol,
            flows: 0,
            records: 0,
            counters: 0,
            templates_learned: 0,
            templates_refused: 0,
            templates_evicted: 0,
            refusal: None,
            templates_withdrawn: 0,
            options_records: 0,
            unknown_template_sets: 0,
            unknown_template_records: 0,
            sequence: Some(sequence),
            domain,
        }
    }
}
