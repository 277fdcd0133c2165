//! A compiled template: where in a record each field this crate needs
//! sits, and the extraction of a [`FlowRecord`] or of sampling options
//! from a record with those positions.
//!
//! For a template without variable-length fields the layout is computed
//! once, when the template is learned, so decoding a record is a handful of
//! big-endian reads at fixed offsets. Variable-length records get a layout
//! built on the stack per record (see `Template::record_layout`).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::reader::be_uint;
use crate::record::{FlowRecord, Sampling, SamplingOrigin};
use crate::time::{ntp_to_unix_ms, uptime_to_unix_ms};

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
    /// protocolIdentifier (4).
    Protocol,
    /// sourceTransportPort (7).
    SrcPort,
    /// destinationTransportPort (11).
    DstPort,
    /// A byte counter; the higher rank wins when a template has several.
    Bytes(u8),
    /// A packet counter, ranked like `Bytes`.
    Packets(u8),
    /// A flow start time.
    Start(TimeKind),
    /// A flow end time.
    End(TimeKind),
    /// samplingInterval (34) or FLOW_SAMPLER_RANDOM_INTERVAL (50), ranked.
    Interval(u8),
    /// samplingPacketInterval (305).
    PacketInterval,
    /// samplingPacketSpace (306).
    PacketSpace,
    /// samplingSize (309).
    SamplingSize,
    /// samplingPopulation (310).
    SamplingPopulation,
    /// FLOW_SAMPLER_ID / samplerId (48) or selectorId (302).
    SamplerId,
    /// systemInitTimeMilliseconds (160).
    SystemInit,
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
    /// The role of information element `id`. Enterprise-specific elements
    /// and NetFlow v9 scope fields (whose type numbers are a different
    /// registry: 1 system, 2 interface, ...) never map to a role.
    pub(crate) fn of(ipfix: bool, id: u16, enterprise: bool, v9_scope: bool) -> Role {
        if enterprise || v9_scope {
            return Role::Ignored;
        }
        match id {
            8 => Role::Src4,
            12 => Role::Dst4,
            27 => Role::Src6,
            28 => Role::Dst6,
            4 => Role::Protocol,
            7 => Role::SrcPort,
            11 => Role::DstPort,
            1 => Role::Bytes(3),
            85 => Role::Bytes(2),
            // IPFIX 23 is postOctetDeltaCount, not a fallback for bytes.
            23 if !ipfix => Role::Bytes(1),
            2 => Role::Packets(3),
            86 => Role::Packets(2),
            24 if !ipfix => Role::Packets(1),
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
            305 => Role::PacketInterval,
            306 => Role::PacketSpace,
            309 => Role::SamplingSize,
            310 => Role::SamplingPopulation,
            48 | 302 => Role::SamplerId,
            160 => Role::SystemInit,
            _ => Role::Ignored,
        }
    }
}

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
    bytes: Slot,
    bytes_rank: u8,
    packets: Slot,
    packets_rank: u8,
    start: Slot,
    start_kind: TimeKind,
    end: Slot,
    end_kind: TimeKind,
    interval: Slot,
    interval_rank: u8,
    packet_interval: Slot,
    packet_space: Slot,
    sampling_size: Slot,
    sampling_population: Slot,
    sampler_id: Slot,
    system_init: Slot,
    /// Whether any field above can change a record's sampling, so records
    /// of the common template without one skip that work.
    per_record_sampling: bool,
}

/// Per-set inputs to [`Layout::flow`]: what the header and the exporter's
/// learned options say.
pub(crate) struct RecordContext<'a> {
    /// The export time from the header, Unix ms.
    pub export_ms: i64,
    /// NetFlow v9's header sysUpTime; `None` for IPFIX.
    pub sys_uptime: Option<u32>,
    /// The exporter's systemInitTimeMilliseconds, from an options record.
    pub system_init_ms: Option<i64>,
    /// The sampling of records that carry none of their own.
    pub default_sampling: Sampling,
    /// Sampler/selector id → interval, from options records.
    pub samplers: &'a HashMap<u64, u32>,
}

/// Sampling facts carried by one options data record.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct OptionValues {
    pub sampler_id: Option<u64>,
    pub interval: Option<u32>,
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
        match role {
            Role::Ignored => {}
            Role::Src4 if len == 4 => first(&mut self.src4, s),
            Role::Dst4 if len == 4 => first(&mut self.dst4, s),
            Role::Src6 if len == 16 => first(&mut self.src6, s),
            Role::Dst6 if len == 16 => first(&mut self.dst6, s),
            _ if !int_ok => {}
            Role::Protocol => first(&mut self.protocol, s),
            Role::SrcPort => first(&mut self.src_port, s),
            Role::DstPort => first(&mut self.dst_port, s),
            Role::Bytes(r) => ranked(&mut self.bytes, &mut self.bytes_rank, s, r),
            Role::Packets(r) => ranked(&mut self.packets, &mut self.packets_rank, s, r),
            Role::Start(k) if k > self.start_kind => {
                self.start = s;
                self.start_kind = k;
            }
            Role::End(k) if k > self.end_kind => {
                self.end = s;
                self.end_kind = k;
            }
            Role::Interval(r) => ranked(&mut self.interval, &mut self.interval_rank, s, r),
            Role::PacketInterval => first(&mut self.packet_interval, s),
            Role::PacketSpace => first(&mut self.packet_space, s),
            Role::SamplingSize => first(&mut self.sampling_size, s),
            Role::SamplingPopulation => first(&mut self.sampling_population, s),
            Role::SamplerId => first(&mut self.sampler_id, s),
            Role::SystemInit => first(&mut self.system_init, s),
            Role::Src4 | Role::Dst4 | Role::Src6 | Role::Dst6 | Role::Start(_) | Role::End(_) => {}
        }
    }

    /// Called once all fields are assigned.
    pub(crate) fn finish(&mut self) {
        self.per_record_sampling = self.interval.present()
            || self.packet_interval.present()
            || self.sampling_population.present()
            || self.sampler_id.present();
    }

    /// The flow in the record at the start of `rec`. `rec` may run on past
    /// the record (to the end of its set): every slot lies within the
    /// record, and bytes after it are only ever shifted away.
    #[inline]
    pub(crate) fn flow(&self, rec: &[u8], ctx: &RecordContext<'_>) -> FlowRecord {
        let (src, dst) = self.addresses(rec);
        let (start_ms, end_ms) = self.times(rec, ctx);
        FlowRecord {
            src,
            dst,
            protocol: self.protocol.uint(rec) as u8,
            src_port: self.src_port.uint(rec) as u16,
            dst_port: self.dst_port.uint(rec) as u16,
            bytes: self.bytes.uint(rec),
            packets: self.packets.uint(rec),
            start_ms,
            end_ms,
            sampling: if self.per_record_sampling {
                self.sampling(rec, ctx)
            } else {
                ctx.default_sampling
            },
        }
    }

    /// IPv4 unless the record has IPv6 addresses and its IPv4 ones are
    /// absent or zero: some exporters use one template for both families
    /// and zero the unused pair.
    #[inline]
    fn addresses(&self, rec: &[u8]) -> (IpAddr, IpAddr) {
        let v4 = |s: Slot| s.present().then(|| Ipv4Addr::from(s.uint(rec) as u32));
        let (s4, d4) = (v4(self.src4), v4(self.dst4));
        if self.src6.present() || self.dst6.present() {
            let v4_unused =
                s4.is_none_or(|a| a.is_unspecified()) && d4.is_none_or(|a| a.is_unspecified());
            if v4_unused {
                let v6 = |s: Slot| s.array::<16>(rec).map(Ipv6Addr::from);
                let (s6, d6) = (v6(self.src6), v6(self.dst6));
                return (
                    IpAddr::V6(s6.unwrap_or(Ipv6Addr::UNSPECIFIED)),
                    IpAddr::V6(d6.unwrap_or(Ipv6Addr::UNSPECIFIED)),
                );
            }
        }
        (
            IpAddr::V4(s4.unwrap_or(Ipv4Addr::UNSPECIFIED)),
            IpAddr::V4(d4.unwrap_or(Ipv4Addr::UNSPECIFIED)),
        )
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

    /// 1-in-N from whichever sampling fields the record has, preferring
    /// the direct samplingInterval.
    fn interval(&self, rec: &[u8]) -> Option<u32> {
        let sat = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        if let Some(i) = self.interval.get(rec).filter(|&i| i > 0) {
            return Some(sat(i));
        }
        if let Some(pi) = self.packet_interval.get(rec).filter(|&i| i > 0) {
            // RFC 5477: select `pi` packets, then skip `space`.
            let space = self.packet_space.get(rec).unwrap_or(0);
            return Some(sat(pi.saturating_add(space) / pi));
        }
        let size = self.sampling_size.get(rec).filter(|&s| s > 0)?;
        let population = self.sampling_population.get(rec)?;
        Some(sat(population / size)).filter(|&n| n > 0)
    }

    fn sampling(&self, rec: &[u8], ctx: &RecordContext<'_>) -> Sampling {
        if let Some(n) = self.interval(rec) {
            return Sampling::from(n, SamplingOrigin::Record);
        }
        if let Some(id) = self.sampler_id.get(rec) {
            if let Some(&n) = ctx.samplers.get(&id) {
                return Sampling::from(n, SamplingOrigin::OptionsTemplate);
            }
        }
        ctx.default_sampling
    }

    /// What an options data record of this layout announces.
    pub(crate) fn options(&self, rec: &[u8]) -> OptionValues {
        OptionValues {
            sampler_id: self.sampler_id.get(rec),
            interval: self.interval(rec),
            system_init_ms: self
                .system_init
                .get(rec)
                .and_then(|v| i64::try_from(v).ok()),
        }
    }
}
