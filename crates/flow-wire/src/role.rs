//! What each information element means to this crate: the roles a
//! template's fields are compiled into.

/// The private enterprise number of RFC 5103's reverse elements: a
/// biflow's counters of the other direction carry the forward element's
/// number under this enterprise.
pub(crate) const REVERSE_PEN: u32 = 29_305;

/// What a template field means to this crate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Role {
    /// A field the decoders skip by its length.
    Ignored,
    /// sourceIPv4Address (8).
    Src4,
    /// destinationIPv4Address (12).
    Dst4,
    /// sourceIPv6Address (27).
    Src6,
    /// destinationIPv6Address (28).
    Dst6,
    /// A source address that stands in when the usual ones are absent:
    /// postNATSourceIPv4Address (225), NSEL's v9 translated source
    /// (40001).
    AltSrc4,
    /// postNATDestinationIPv4Address (226), NSEL's 40002.
    AltDst4,
    /// postNATSourceIPv6Address (281).
    AltSrc6,
    /// postNATDestinationIPv6Address (282).
    AltDst6,
    /// staIPv4Address (366): a wireless station, source or destination
    /// by the flowDirection.
    Station4,
    /// flowDirection (61): 0 ingress, 1 egress.
    Direction,
    /// protocolIdentifier (4).
    Protocol,
    /// sourceTransportPort (7).
    SrcPort,
    /// tcpControlBits (6): one byte in NetFlow v9, two in IPFIX (the
    /// flags this crate reports are the low eight).
    TcpFlags,
    /// destinationTransportPort (11).
    DstPort,
    /// A byte counter; the higher rank wins when a template has several.
    Bytes(u8),
    /// A packet counter, ranked like `Bytes`.
    Packets(u8),
    /// An RFC 5103 reverse byte counter (29305/1, 29305/85), ranked.
    ReverseBytes(u8),
    /// An RFC 5103 reverse packet counter (29305/2, 29305/86), ranked.
    ReversePackets(u8),
    /// initiatorOctets (231; NSEL's forward delta bytes).
    Initiator,
    /// responderOctets (232; NSEL's reverse delta bytes).
    Responder,
    /// initiatorPackets (298).
    InitiatorPackets,
    /// responderPackets (299).
    ResponderPackets,
    /// A flow start time.
    Start(TimeKind),
    /// A flow end time.
    End(TimeKind),
    /// samplingInterval (34) or FLOW_SAMPLER_RANDOM_INTERVAL (50), ranked.
    Interval(u8),
    /// selectorAlgorithm (304).
    SelectorAlgorithm,
    /// samplingPacketInterval (305).
    PacketInterval,
    /// samplingPacketSpace (306).
    PacketSpace,
    /// samplingTimeInterval (307), microseconds.
    TimeInterval,
    /// samplingTimeSpace (308), microseconds.
    TimeSpace,
    /// samplingSize (309).
    SamplingSize,
    /// samplingPopulation (310).
    SamplingPopulation,
    /// samplingProbability (311), a float.
    Probability,
    /// hashOutputRangeMin (329).
    HashOutMin,
    /// hashOutputRangeMax (330).
    HashOutMax,
    /// hashSelectedRangeMin (331).
    HashSelMin,
    /// hashSelectedRangeMax (332).
    HashSelMax,
    /// FLOW_SAMPLER_ID / samplerId (48) or selectorId (302).
    SamplerId,
    /// systemInitTimeMilliseconds (160).
    SystemInit,
    /// dataLinkFrameSize (312).
    FrameSize,
    /// dataLinkFrameSection (315): the first bytes of a sampled frame.
    FrameSection,
    /// ipHeaderPacketSection (313): the first bytes of a sampled packet.
    IpSection,
}

/// How a time field is encoded. The order is the preference when a
/// template carries several encodings of the same time: the most direct
/// and precise absolute encoding first.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum TimeKind {
    /// No time field.
    #[default]
    None,
    /// Milliseconds of sysUpTime (21/22): v9 relative to the header,
    /// IPFIX relative to systemInitTimeMilliseconds.
    Uptime,
    /// Microseconds before the export time (158/159).
    DeltaMicros,
    /// NTP-format nanoseconds (156/157).
    NtpNanos,
    /// NTP-format microseconds (154/155).
    NtpMicros,
    /// Unix seconds (150/151).
    Seconds,
    /// Unix milliseconds (152/153).
    Millis,
}

impl Role {
    /// The role of information element `id` of enterprise `pen` (`None`
    /// for IANA's). NetFlow v9 scope fields (whose type numbers are a
    /// different registry: 1 system, 2 interface, ...) and enterprise
    /// elements other than RFC 5103's reverse counters never map to a role.
    pub(crate) fn of(ipfix: bool, id: u16, pen: Option<u32>, v9_scope: bool) -> Role {
        if v9_scope {
            return Role::Ignored;
        }
        match pen {
            None => {}
            Some(REVERSE_PEN) => {
                return match id {
                    1 => Role::ReverseBytes(3),
                    85 => Role::ReverseBytes(2),
                    2 => Role::ReversePackets(3),
                    86 => Role::ReversePackets(2),
                    _ => Role::Ignored,
                }
            }
            Some(_) => return Role::Ignored,
        }
        match id {
            8 => Role::Src4,
            12 => Role::Dst4,
            27 => Role::Src6,
            28 => Role::Dst6,
            225 => Role::AltSrc4,
            226 => Role::AltDst4,
            281 => Role::AltSrc6,
            282 => Role::AltDst6,
            // NSEL's translated addresses in v9's vendor range (an IPFIX
            // id this high would carry the enterprise bit).
            40001 if !ipfix => Role::AltSrc4,
            40002 if !ipfix => Role::AltDst4,
            366 => Role::Station4,
            61 => Role::Direction,
            4 => Role::Protocol,
            6 => Role::TcpFlags,
            7 => Role::SrcPort,
            11 => Role::DstPort,
            1 => Role::Bytes(3),
            85 => Role::Bytes(2),
            // IPFIX 23 is postOctetDeltaCount, not a fallback for bytes.
            23 if !ipfix => Role::Bytes(1),
            2 => Role::Packets(3),
            86 => Role::Packets(2),
            24 if !ipfix => Role::Packets(1),
            231 => Role::Initiator,
            232 => Role::Responder,
            298 => Role::InitiatorPackets,
            299 => Role::ResponderPackets,
            22 => Role::Start(TimeKind::Uptime),
            21 => Role::End(TimeKind::Uptime),
            150 => Role::Start(TimeKind::Seconds),
            151 => Role::End(TimeKind::Seconds),
            152 => Role::Start(TimeKind::Millis),
            153 => Role::End(TimeKind::Millis),
            154 => Role::Start(TimeKind::NtpMicros),
            155 => Role::End(TimeKind::NtpMicros),
            156 => Role::Start(TimeKind::NtpNanos),
            157 => Role::End(TimeKind::NtpNanos),
            158 => Role::Start(TimeKind::DeltaMicros),
            159 => Role::End(TimeKind::DeltaMicros),
            34 => Role::Interval(2),
            50 => Role::Interval(1),
            304 => Role::SelectorAlgorithm,
            305 => Role::PacketInterval,
            306 => Role::PacketSpace,
            307 => Role::TimeInterval,
            308 => Role::TimeSpace,
            309 => Role::SamplingSize,
            310 => Role::SamplingPopulation,
            311 => Role::Probability,
            329 => Role::HashOutMin,
            330 => Role::HashOutMax,
            331 => Role::HashSelMin,
            332 => Role::HashSelMax,
            48 | 302 => Role::SamplerId,
            160 => Role::SystemInit,
            312 => Role::FrameSize,
            313 => Role::IpSection,
            315 => Role::FrameSection,
            _ => Role::Ignored,
        }
    }
}
