//! sFlow version 5 (sflow.org, "sFlow Version 5", 2004): XDR, big-endian,
//! every item 32-bit aligned.
//!
//! Flow samples (formats 1 and 3) become one [`FlowRecord`] each; counter
//! samples (formats 2 and 4) yield their generic interface counters
//! (record format 1). Every other sample and record type, and every
//! enterprise's own, is skipped by its length.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::DecodeError;
use crate::packet::{self, Layer3};
use crate::reader::Reader;
use crate::record::{
    DatagramSummary, FlowRecord, InterfaceCounters, Item, Protocol, Sampling, SamplingOrigin,
};

/// A generic interface counters record is this long (sFlow v5 §5, struct
/// if_counters).
const IF_COUNTERS_LEN: usize = 88;

/// Decodes an sFlow v5 datagram received at `received_ms`.
pub(crate) fn decode(
    d: &[u8],
    received_ms: i64,
    sink: &mut impl FnMut(Item<'_>),
) -> Result<DatagramSummary, DecodeError> {
    let mut r = Reader::new(d);
    r.skip(4, "sFlow version")?;
    let at = r.pos();
    match r.u32("agent address type")? {
        1 => r.skip(4, "IPv4 agent address")?,
        2 => r.skip(16, "IPv6 agent address")?,
        other => {
            return Err(DecodeError::new(
                at,
                format!("agent address type {other} is neither 1 (IPv4) nor 2 (IPv6)"),
            ))
        }
    }
    let sub_agent = r.u32("sub-agent id")?;
    let sequence = r.u32("sequence number")?;
    r.skip(4, "uptime")?;
    let samples = r.u32("sample count")?;
    let mut summary = DatagramSummary::new(Protocol::SflowV5, sequence, sub_agent);
    // Each sample takes at least 8 bytes, so a lying count ends in an
    // error on the first missing sample rather than a long loop.
    for i in 0..samples {
        let sample_off = r.pos();
        let format = r.u32("sample type")?;
        let len = r.u32("sample length")? as usize;
        let name = sample_name(format);
        if len > r.remaining() {
            return Err(DecodeError::new(
                sample_off,
                format!(
                    "sample {i} ({name}) claims length {len} but only {} bytes remain",
                    r.remaining()
                ),
            ));
        }
        let body = r.window(len, "sample body")?;
        let done = match format {
            1 => flow_sample(body, false, received_ms, sink, &mut summary),
            3 => flow_sample(body, true, received_ms, sink, &mut summary),
            2 => counter_sample(body, false, sink, &mut summary),
            4 => counter_sample(body, true, sink, &mut summary),
            _ => Ok(()),
        };
        done.map_err(|e| e.within(format_args!("sample {i} ({name}) at offset {sample_off}")))?;
    }
    Ok(summary)
}

fn sample_name(format: u32) -> &'static str {
    match format {
        1 => "flow sample",
        2 => "counter sample",
        3 => "expanded flow sample",
        4 => "expanded counter sample",
        _ => "other sample",
    }
}

/// What the records of one flow sample said.
#[derive(Default)]
struct Seen {
    /// From a raw packet header: frame length less stripped bytes.
    frame_bytes: Option<u64>,
    /// The IP packet length of a sampled IPv4/IPv6 record.
    ip_bytes: Option<u64>,
    /// Addresses and ports: the first source that had them wins.
    l3: Option<Layer3>,
}

fn flow_sample(
    mut r: Reader<'_>,
    expanded: bool,
    received_ms: i64,
    sink: &mut impl FnMut(Item<'_>),
    summary: &mut DatagramSummary,
) -> Result<(), DecodeError> {
    r.skip(4, "sequence number")?;
    r.skip(if expanded { 8 } else { 4 }, "source id")?;
    let rate = r.u32("sampling rate")?;
    r.skip(8, "sample pool and drops")?;
    r.skip(if expanded { 16 } else { 8 }, "input and output interfaces")?;
    let n = r.u32("flow record count")?;
    let mut seen = Seen::default();
    for j in 0..n {
        let rec_off = r.pos();
        let format = r.u32("flow record type")?;
        let len = r.u32("flow record length")? as usize;
        let body = r.window(len, "flow record body")?;
        let done = match format {
            1 => raw_header(body, &mut seen),
            3 => sampled_ipv4(body, &mut seen),
            4 => sampled_ipv6(body, &mut seen),
            _ => Ok(()),
        };
        done.map_err(|e| {
            e.within(format_args!(
                "flow record {j} (type {format}) at offset {rec_off}"
            ))
        })?;
    }
    let mut flow = FlowRecord::empty(
        received_ms,
        Sampling::one_in(u64::from(rate), SamplingOrigin::SflowSample),
    );
    if let Some(l3) = seen.l3 {
        flow.src = Some(l3.src).filter(|a| !a.is_unspecified());
        flow.dst = Some(l3.dst).filter(|a| !a.is_unspecified());
        flow.protocol = l3.protocol;
        flow.src_port = l3.src_port;
        flow.dst_port = l3.dst_port;
        flow.tcp_flags = l3.tcp_flags;
    }
    flow.bytes = seen.frame_bytes.or(seen.ip_bytes).unwrap_or(0);
    flow.packets = 1;
    sink(Item::Flow(&flow));
    summary.flows = summary.flows.saturating_add(1);
    summary.records = summary.records.saturating_add(1);
    Ok(())
}

/// Raw packet header (flow record format 1).
///
/// The frame length counts what was on the wire, including the FCS and
/// any encapsulation the hardware removed before sampling; `stripped`
/// counts exactly those bytes. The difference is the frame as the host's
/// own counters (and tc) see it, which is what tollgate shapes, so bytes =
/// frame_length − stripped.
fn raw_header(mut r: Reader<'_>, seen: &mut Seen) -> Result<(), DecodeError> {
    let header_protocol = r.u32("header protocol")?;
    let frame_length = r.u32("frame length")?;
    let stripped = r.u32("stripped")?;
    let header_len = r.u32("header length")? as usize;
    let header = r.bytes(header_len, "sampled header")?;
    seen.frame_bytes = Some(u64::from(frame_length.saturating_sub(stripped)));
    if seen.l3.is_none() {
        seen.l3 = match header_protocol {
            1 => packet::ethernet(header),
            11 => packet::ipv4(header),
            12 => packet::ipv6(header),
            _ => None,
        };
    }
    Ok(())
}

/// Sampled IPv4 data (flow record format 3).
fn sampled_ipv4(mut r: Reader<'_>, seen: &mut Seen) -> Result<(), DecodeError> {
    let length = r.u32("IP length")?;
    let protocol = r.u32("protocol")?;
    let src = r.array::<4>("source address")?;
    let dst = r.array::<4>("destination address")?;
    let src_port = r.u32("source port")?;
    let dst_port = r.u32("destination port")?;
    // The structure goes on with tcp_flags and tos; a record cut short
    // of them still counts, without flags.
    let tcp_flags = r.u32("TCP flags").unwrap_or(0);
    seen.ip_bytes = Some(u64::from(length));
    seen.l3.get_or_insert(Layer3 {
        src: IpAddr::V4(Ipv4Addr::from(src)),
        dst: IpAddr::V4(Ipv4Addr::from(dst)),
        protocol: protocol as u8,
        src_port: src_port as u16,
        dst_port: dst_port as u16,
        tcp_flags: tcp_flags as u8,
        ip_len: u64::from(length),
    });
    Ok(())
}

/// Sampled IPv6 data (flow record format 4).
fn sampled_ipv6(mut r: Reader<'_>, seen: &mut Seen) -> Result<(), DecodeError> {
    let length = r.u32("IP length")?;
    let protocol = r.u32("protocol")?;
    let src = r.array::<16>("source address")?;
    let dst = r.array::<16>("destination address")?;
    let src_port = r.u32("source port")?;
    let dst_port = r.u32("destination port")?;
    // The structure goes on with tcp_flags and tos; a record cut short
    // of them still counts, without flags.
    let tcp_flags = r.u32("TCP flags").unwrap_or(0);
    seen.ip_bytes = Some(u64::from(length));
    seen.l3.get_or_insert(Layer3 {
        src: IpAddr::V6(Ipv6Addr::from(src)),
        dst: IpAddr::V6(Ipv6Addr::from(dst)),
        protocol: protocol as u8,
        src_port: src_port as u16,
        dst_port: dst_port as u16,
        tcp_flags: tcp_flags as u8,
        ip_len: u64::from(length),
    });
    Ok(())
}

fn counter_sample(
    mut r: Reader<'_>,
    expanded: bool,
    sink: &mut impl FnMut(Item<'_>),
    summary: &mut DatagramSummary,
) -> Result<(), DecodeError> {
    r.skip(4, "sequence number")?;
    r.skip(if expanded { 8 } else { 4 }, "source id")?;
    let n = r.u32("counter record count")?;
    for j in 0..n {
        let rec_off = r.pos();
        let format = r.u32("counter record type")?;
        let len = r.u32("counter record length")? as usize;
        let body = r.window(len, "counter record body")?;
        if format == 1 {
            let c = if_counters(body).map_err(|e| {
                e.within(format_args!(
                    "counter record {j} (generic interface) at offset {rec_off}"
                ))
            })?;
            sink(Item::Counters(&c));
            summary.counters = summary.counters.saturating_add(1);
        }
    }
    Ok(())
}

/// Generic interface counters (counter record format 1).
fn if_counters(mut r: Reader<'_>) -> Result<InterfaceCounters, DecodeError> {
    if r.remaining() < IF_COUNTERS_LEN {
        return Err(DecodeError::new(
            r.pos(),
            format!("record is {} bytes, needs {IF_COUNTERS_LEN}", r.remaining()),
        ));
    }
    let if_index = r.u32("ifIndex")?;
    r.skip(4 + 8 + 4 + 4, "ifType, ifSpeed, ifDirection and ifStatus")?;
    let in_octets = r.u64("ifInOctets")?;
    let in_packets = u64::from(r.u32("ifInUcastPkts")?)
        + u64::from(r.u32("ifInMulticastPkts")?)
        + u64::from(r.u32("ifInBroadcastPkts")?);
    let in_discards = r.u32("ifInDiscards")?;
    let in_errors = r.u32("ifInErrors")?;
    r.skip(4, "ifInUnknownProtos")?;
    let out_octets = r.u64("ifOutOctets")?;
    let out_packets = u64::from(r.u32("ifOutUcastPkts")?)
        + u64::from(r.u32("ifOutMulticastPkts")?)
        + u64::from(r.u32("ifOutBroadcastPkts")?);
    let out_discards = r.u32("ifOutDiscards")?;
    let out_errors = r.u32("ifOutErrors")?;
    Ok(InterfaceCounters {
        if_index,
        in_octets,
        out_octets,
        in_packets,
        out_packets,
        in_discards,
        out_discards,
        in_errors,
        out_errors,
    })
}
