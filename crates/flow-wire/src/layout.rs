//! A compiled template: where in a record each field this crate needs
//! sits, and the extraction of [`FlowRecord`]s or of sampling options
//! from a record with those positions.
//!
//! For a template without variable-length fields the layout is computed
//! once, when the template is learned, so decoding a record is a handful of
//! big-endian reads at fixed offsets. Variable-length records get a layout
//! built on the stack per record (see `Template::record_layout`).
//!
//! Most records carry addresses, counters and times in the usual
//! elements. What vendors put elsewhere (post-NAT and wireless station
//! addresses, NSEL's initiator and responder octets, RFC 5103 reverse
//! counters, sampled frame sections) takes a second, slower step that
//! only templates with such fields pay for.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::exporter::Scale;
use crate::packet;
use crate::reader::be_uint;
use crate::record::{FlowRecord, Sampling, SamplingOrigin};
use crate::role::{Role, TimeKind};
use crate::selection::Selector;
use crate::time::{ntp_to_unix_ms, uptime_to_unix_ms};

/// Where a field sits in a record; `len == 0` means the template has no
/// such field.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Slot {
    off: u16,
    len: u16,
}

impl Slot {
    #[inline(always)]
    fn present(self) -> bool {
        self.len != 0
    }

    fn bytes(self, rec: &[u8]) -> &[u8] {
        let off = usize::from(self.off);
        rec.get(off..off + usize::from(self.len))
            .unwrap_or_default()
    }

    /// The field as an unsigned integer (0 when absent).
    ///
    /// The hot path of the crate: one unaligned 8-byte big-endian load and
    /// a shift that keeps the field's `len` leading bytes, with no branch
    /// on the length. It needs 8 readable bytes from the field's start,
    /// which is why records are passed with the rest of their set behind
    /// them (see `each_record` in `sets`); the last fields of a set's last
    /// record take the exact, slower path.
    #[inline(always)]
    fn uint(self, rec: &[u8]) -> u64 {
        let off = usize::from(self.off);
        match rec
            .get(off..off + 8)
            .and_then(|w| <[u8; 8]>::try_from(w).ok())
        {
            Some(w) => {
                // 64 for an absent field (len 0): `checked_shr` makes it 0.
                let shift = 64u32.wrapping_sub(8 * u32::from(self.len));
                u64::from_be_bytes(w).checked_shr(shift).unwrap_or(0)
            }
            None => be_uint(self.bytes(rec)),
        }
    }

    #[inline(always)]
    fn get(self, rec: &[u8]) -> Option<u64> {
        self.present().then(|| self.uint(rec))
    }

    fn array<const N: usize>(self, rec: &[u8]) -> Option<[u8; N]> {
        self.bytes(rec).try_into().ok()
    }

    /// An IPv4 address field, `None` when absent or 0.0.0.0 (which
    /// exporters put in the fields of the family a record is not).
    fn ipv4(self, rec: &[u8]) -> Option<IpAddr> {
        let a = Ipv4Addr::from(self.get(rec)? as u32);
        (!a.is_unspecified()).then_some(IpAddr::V4(a))
    }

    /// An IPv6 address field, `None` when absent or `::`.
    fn ipv6(self, rec: &[u8]) -> Option<IpAddr> {
        let a = Ipv6Addr::from(self.array::<16>(rec)?);
        (!a.is_unspecified()).then_some(IpAddr::V6(a))
    }

    /// A float field (samplingProbability: float64, or float32 in
    /// reduced-size encoding).
    fn float(self, rec: &[u8]) -> Option<f64> {
        let v = self.get(rec)?;
        match self.len {
            8 => Some(f64::from_bits(v)),
            4 => Some(f64::from(f32::from_bits(v as u32))),
            _ => None,
        }
    }
}

/// The positions of every field this crate reads, for one template.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    src4: Slot,
    dst4: Slot,
    src6: Slot,
    dst6: Slot,
    protocol: Slot,
    src_port: Slot,
    dst_port: Slot,
    tcp_flags: Slot,
    bytes: Slot,
    bytes_rank: u8,
    packets: Slot,
    packets_rank: u8,
    start: Slot,
    start_kind: TimeKind,
    end: Slot,
    end_kind: TimeKind,
    sampling: SamplingSlots,
    sampler_id: Slot,
    system_init: Slot,
    extra: Extra,
    /// Whether any sampling field can change a record's sampling, so
    /// records of the common template without one skip that work.
    per_record_sampling: bool,
    /// Whether any field of [`Extra`] is present.
    has_extra: bool,
}

/// The fields of packet selection (see `selection`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SamplingSlots {
    interval: Slot,
    interval_rank: u8,
    algorithm: Slot,
    packet_interval: Slot,
    packet_space: Slot,
    time_interval: Slot,
    time_space: Slot,
    size: Slot,
    population: Slot,
    probability: Slot,
    hash_out_min: Slot,
    hash_out_max: Slot,
    hash_sel_min: Slot,
    hash_sel_max: Slot,
}

/// Vendors' other places for addresses and counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Extra {
    alt_src4: Slot,
    alt_dst4: Slot,
    alt_src6: Slot,
    alt_dst6: Slot,
    station4: Slot,
    direction: Slot,
    rev_bytes: Slot,
    rev_bytes_rank: u8,
    rev_packets: Slot,
    rev_packets_rank: u8,
    initiator: Slot,
    responder: Slot,
    initiator_packets: Slot,
    responder_packets: Slot,
    frame_size: Slot,
    frame_section: Slot,
    ip_section: Slot,
}

/// Per-set inputs to [`Layout::flows`]: what the header and the
/// exporter's learned options say.
pub(crate) struct RecordContext<'a> {
    /// The export time from the header, Unix ms.
    pub export_ms: i64,
    /// NetFlow v9's header sysUpTime; `None` for IPFIX.
    pub sys_uptime: Option<u32>,
    /// The exporter's systemInitTimeMilliseconds, from an options record.
    pub system_init_ms: Option<i64>,
    /// The sampling of records that carry none of their own.
    pub default_sampling: Sampling,
    /// Sampler/selector id → scale, from options records.
    pub samplers: &'a HashMap<u64, Scale>,
}

/// Sampling facts carried by one options data record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OptionValues {
    pub sampler_id: Option<u64>,
    pub scale: Option<Scale>,
    pub system_init_ms: Option<i64>,
}

/// Replaces `slot` when the new field ranks higher than what it holds.
fn ranked(slot: &mut Slot, rank: &mut u8, new: Slot, new_rank: u8) {
    if new_rank > *rank {
        *slot = new;
        *rank = new_rank;
    }
}

/// Sets `slot` unless an earlier field already did: the first occurrence
/// of a repeated element wins, as in the RFC 7011 §8 reading of
/// multiple occurrences for the fields this crate uses.
fn first(slot: &mut Slot, new: Slot) {
    if !slot.present() {
        *slot = new;
    }
}

impl Layout {
    /// Records that a field of `role` sits at `off` with `len` bytes.
    /// Fields whose length cannot hold their type (an IPv4 address that is
    /// not 4 bytes, a counter longer than 8) are ignored rather than
    /// misread.
    pub(crate) fn assign(&mut self, role: Role, off: usize, len: usize) {
        let (Ok(off), Ok(len16)) = (u16::try_from(off), u16::try_from(len)) else {
            return;
        };
        let s = Slot { off, len: len16 };
        let int_ok = (1..=8).contains(&len);
        let (x, p) = (&mut self.extra, &mut self.sampling);
        match role {
            Role::Ignored => {}
            Role::Src4 if len == 4 => first(&mut self.src4, s),
            Role::Dst4 if len == 4 => first(&mut self.dst4, s),
            Role::Src6 if len == 16 => first(&mut self.src6, s),
            Role::Dst6 if len == 16 => first(&mut self.dst6, s),
            Role::AltSrc4 if len == 4 => first(&mut x.alt_src4, s),
            Role::AltDst4 if len == 4 => first(&mut x.alt_dst4, s),
            Role::AltSrc6 if len == 16 => first(&mut x.alt_src6, s),
            Role::AltDst6 if len == 16 => first(&mut x.alt_dst6, s),
            Role::Station4 if len == 4 => first(&mut x.station4, s),
            Role::FrameSection if len > 0 => first(&mut x.frame_section, s),
            Role::IpSection if len > 0 => first(&mut x.ip_section, s),
            Role::Probability if len == 4 || len == 8 => first(&mut p.probability, s),
            _ if !int_ok => {}
            Role::Protocol => first(&mut self.protocol, s),
            Role::SrcPort => first(&mut self.src_port, s),
            Role::TcpFlags => first(&mut self.tcp_flags, s),
            Role::DstPort => first(&mut self.dst_port, s),
            Role::Bytes(r) => ranked(&mut self.bytes, &mut self.bytes_rank, s, r),
            Role::Packets(r) => ranked(&mut self.packets, &mut self.packets_rank, s, r),
            Role::ReverseBytes(r) => ranked(&mut x.rev_bytes, &mut x.rev_bytes_rank, s, r),
            Role::ReversePackets(r) => ranked(&mut x.rev_packets, &mut x.rev_packets_rank, s, r),
            Role::Initiator => first(&mut x.initiator, s),
            Role::Responder => first(&mut x.responder, s),
            Role::InitiatorPackets => first(&mut x.initiator_packets, s),
            Role::ResponderPackets => first(&mut x.responder_packets, s),
            Role::Direction => first(&mut x.direction, s),
            Role::FrameSize => first(&mut x.frame_size, s),
            Role::Start(k) if k > self.start_kind => {
                self.start = s;
                self.start_kind = k;
            }
            Role::End(k) if k > self.end_kind => {
                self.end = s;
                self.end_kind = k;
            }
            Role::Interval(r) => ranked(&mut p.interval, &mut p.interval_rank, s, r),
            Role::SelectorAlgorithm => first(&mut p.algorithm, s),
            Role::PacketInterval => first(&mut p.packet_interval, s),
            Role::PacketSpace => first(&mut p.packet_space, s),
            Role::TimeInterval => first(&mut p.time_interval, s),
            Role::TimeSpace => first(&mut p.time_space, s),
            Role::SamplingSize => first(&mut p.size, s),
            Role::SamplingPopulation => first(&mut p.population, s),
            Role::HashOutMin => first(&mut p.hash_out_min, s),
            Role::HashOutMax => first(&mut p.hash_out_max, s),
            Role::HashSelMin => first(&mut p.hash_sel_min, s),
            Role::HashSelMax => first(&mut p.hash_sel_max, s),
            Role::SamplerId => first(&mut self.sampler_id, s),
            Role::SystemInit => first(&mut self.system_init, s),
            Role::Src4
            | Role::Dst4
            | Role::Src6
            | Role::Dst6
            | Role::AltSrc4
            | Role::AltDst4
            | Role::AltSrc6
            | Role::AltDst6
            | Role::Station4
            | Role::FrameSection
            | Role::IpSection
            | Role::Probability
            | Role::Start(_)
            | Role::End(_) => {}
        }
    }

    /// Called once all fields are assigned.
    pub(crate) fn finish(&mut self) {
        let p = &self.sampling;
        self.per_record_sampling = [
            p.interval,
            p.algorithm,
            p.packet_interval,
            p.time_interval,
            p.population,
            p.probability,
            self.sampler_id,
        ]
        .iter()
        .any(|s| s.present());
        let x = &mut self.extra;
        // NSEL: initiator octets are the flow's bytes source → destination
        // and responder octets the bytes back, unless the template has the
        // plain delta counter (1). Its octetTotalCount (85) is the whole
        // connection's so far, which would count again.
        let nsel = x.initiator.present() || x.responder.present();
        if nsel && self.bytes_rank < 3 {
            self.bytes = x.initiator;
            self.bytes_rank = 3;
            if !x.rev_bytes.present() {
                x.rev_bytes = x.responder;
            }
        }
        let nsel_packets = x.initiator_packets.present() || x.responder_packets.present();
        if nsel_packets && self.packets_rank < 3 {
            self.packets = x.initiator_packets;
            self.packets_rank = 3;
            if !x.rev_packets.present() {
                x.rev_packets = x.responder_packets;
            }
        }
        self.has_extra = [
            x.alt_src4,
            x.alt_dst4,
            x.alt_src6,
            x.alt_dst6,
            x.station4,
            x.rev_bytes,
            x.rev_packets,
            x.frame_size,
            x.frame_section,
            x.ip_section,
        ]
        .iter()
        .any(|s| s.present());
    }

    /// The flows in the record at the start of `rec`, to `sink`: one, and
    /// a second for the traffic back when the record counts both
    /// directions (RFC 5103 reverse counters, NSEL responder octets) and
    /// that direction carried any. `rec` may run on past the record (to
    /// the end of its set): every slot lies within the record, and bytes
    /// after it are only ever shifted away.
    #[inline]
    pub(crate) fn flows(
        &self,
        rec: &[u8],
        ctx: &RecordContext<'_>,
        sink: &mut impl FnMut(&FlowRecord),
    ) {
        let (start_ms, end_ms) = self.times(rec, ctx);
        let mut flow = FlowRecord {
            src: self.src4.ipv4(rec).or_else(|| self.src6.ipv6(rec)),
            dst: self.dst4.ipv4(rec).or_else(|| self.dst6.ipv6(rec)),
            protocol: self.protocol.uint(rec) as u8,
            src_port: self.src_port.uint(rec) as u16,
            dst_port: self.dst_port.uint(rec) as u16,
            tcp_flags: self.tcp_flags.uint(rec) as u8,
            bytes: self.bytes.uint(rec),
            packets: self.packets.uint(rec),
            start_ms,
            end_ms,
            sampling: if self.per_record_sampling {
                self.record_sampling(rec, ctx)
            } else {
                ctx.default_sampling
            },
        };
        if !self.has_extra {
            sink(&flow);
            return;
        }
        self.vendor_fields(rec, &mut flow);
        sink(&flow);
        let x = &self.extra;
        if x.rev_bytes.present() || x.rev_packets.present() {
            let back = FlowRecord {
                bytes: x.rev_bytes.uint(rec),
                packets: x.rev_packets.uint(rec),
                ..flow.reversed()
            };
            if back.bytes > 0 || back.packets > 0 {
                sink(&back);
            }
        }
    }

    /// Fills in what the usual elements left empty from where vendors put
    /// it.
    fn vendor_fields(&self, rec: &[u8], flow: &mut FlowRecord) {
        let x = &self.extra;
        flow.src = flow
            .src
            .or_else(|| x.alt_src4.ipv4(rec))
            .or_else(|| x.alt_src6.ipv6(rec));
        flow.dst = flow
            .dst
            .or_else(|| x.alt_dst4.ipv4(rec))
            .or_else(|| x.alt_dst6.ipv6(rec));
        if flow.src.is_none() && flow.dst.is_none() {
            // A wireless station's own traffic: ingress (0, and the
            // default) it sent, egress (1) it received. The other end is
            // not in the record.
            if let Some(station) = x.station4.ipv4(rec) {
                if x.direction.get(rec) == Some(1) {
                    flow.dst = Some(station);
                } else {
                    flow.src = Some(station);
                }
            }
        }
        let section = if x.frame_section.present() {
            packet::frame(x.frame_section.bytes(rec))
        } else if x.ip_section.present() {
            packet::ip(x.ip_section.bytes(rec))
        } else {
            None
        };
        let sampled_frame = x.frame_section.present() || x.ip_section.present();
        if let Some(l3) = section {
            let known = |a: IpAddr| (!a.is_unspecified()).then_some(a);
            if flow.src.is_none() && flow.dst.is_none() {
                flow.src = known(l3.src);
                flow.dst = known(l3.dst);
            }
            if !self.protocol.present() {
                flow.protocol = l3.protocol;
            }
            if !self.src_port.present() && !self.dst_port.present() {
                flow.src_port = l3.src_port;
                flow.dst_port = l3.dst_port;
            }
            if !self.tcp_flags.present() {
                flow.tcp_flags = l3.tcp_flags;
            }
        }
        if sampled_frame {
            // One record per sampled frame, like an sFlow sample: its
            // length is the frame size when given, else the IP length.
            if !self.bytes.present() {
                flow.bytes = x
                    .frame_size
                    .get(rec)
                    .or(section.map(|l| l.ip_len))
                    .unwrap_or(0);
            }
            if !self.packets.present() {
                flow.packets = 1;
            }
        } else if !self.bytes.present() {
            if let Some(size) = x.frame_size.get(rec) {
                flow.bytes = size;
            }
        }
    }

    #[inline]
    fn times(&self, rec: &[u8], ctx: &RecordContext<'_>) -> (i64, i64) {
        if self.start_kind == TimeKind::None && self.end_kind == TimeKind::None {
            return (ctx.export_ms, ctx.export_ms);
        }
        let start = self.time(self.start, self.start_kind, rec, ctx);
        let end = self.time(self.end, self.end_kind, rec, ctx);
        match (start, end) {
            (Some(s), Some(e)) => (s, e),
            (Some(t), None) | (None, Some(t)) => (t, t),
            (None, None) => (ctx.export_ms, ctx.export_ms),
        }
    }

    #[inline]
    fn time(&self, slot: Slot, kind: TimeKind, rec: &[u8], ctx: &RecordContext<'_>) -> Option<i64> {
        let v = slot.get(rec)?;
        match kind {
            TimeKind::None => None,
            TimeKind::Millis => i64::try_from(v).ok(),
            TimeKind::Seconds => i64::try_from(v).ok()?.checked_mul(1000),
            // NTP timestamps are only meaningful in their full 8 bytes.
            TimeKind::NtpMicros | TimeKind::NtpNanos if slot.len == 8 => Some(ntp_to_unix_ms(v)),
            TimeKind::NtpMicros | TimeKind::NtpNanos => None,
            TimeKind::DeltaMicros => {
                Some(ctx.export_ms.saturating_sub(i64::try_from(v / 1000).ok()?))
            }
            TimeKind::Uptime => match ctx.sys_uptime {
                Some(up) => Some(uptime_to_unix_ms(ctx.export_ms, up, v as u32)),
                None => {
                    // IPFIX: relative to systemInitTimeMilliseconds, from
                    // the record itself or from an options record. Without
                    // it the time cannot be placed.
                    let init = self
                        .system_init
                        .get(rec)
                        .and_then(|i| i64::try_from(i).ok())
                        .or(ctx.system_init_ms)?;
                    Some(init.saturating_add(i64::try_from(v).ok()?))
                }
            },
        }
    }

    /// The packet selection the record's own fields announce.
    fn scale(&self, rec: &[u8]) -> Option<Scale> {
        let p = &self.sampling;
        let pair = |a: Slot, b: Slot| Some((a.get(rec)?, b.get(rec)?));
        Selector {
            algorithm: p.algorithm.get(rec),
            interval: p.interval.get(rec),
            packet_interval: p.packet_interval.get(rec),
            packet_space: p.packet_space.get(rec),
            time_interval: p.time_interval.get(rec),
            time_space: p.time_space.get(rec),
            size: p.size.get(rec),
            population: p.population.get(rec),
            probability: p.probability.float(rec),
            hash_output: pair(p.hash_out_min, p.hash_out_max),
            hash_selected: pair(p.hash_sel_min, p.hash_sel_max),
        }
        .scale()
    }

    fn record_sampling(&self, rec: &[u8], ctx: &RecordContext<'_>) -> Sampling {
        if let Some(s) = self.scale(rec) {
            return s.sampling(SamplingOrigin::Record);
        }
        if let Some(id) = self.sampler_id.get(rec) {
            if let Some(s) = ctx.samplers.get(&id) {
                return s.sampling(SamplingOrigin::OptionsTemplate);
            }
        }
        ctx.default_sampling
    }

    /// What an options data record of this layout announces.
    pub(crate) fn options(&self, rec: &[u8]) -> OptionValues {
        OptionValues {
            sampler_id: self.sampler_id.get(rec),
            scale: self.scale(rec),
            system_init_ms: self
                .system_init
                .get(rec)
                .and_then(|v| i64::try_from(v).ok()),
        }
    }
}
