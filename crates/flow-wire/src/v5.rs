//! NetFlow v5: a 24-byte header and fixed 48-byte IPv4 records.

use std::net::{IpAddr, Ipv4Addr};

use crate::error::DecodeError;
use crate::reader::{be16, be32};
use crate::record::{DatagramSummary, FlowRecord, Item, Protocol, Sampling, SamplingOrigin};
use crate::time::uptime_to_unix_ms;

const HEADER_LEN: usize = 24;
const RECORD_LEN: usize = 48;

/// Decodes a NetFlow v5 datagram. The header's count must be covered by
/// the datagram; bytes after the last counted record are ignored, since
/// some exporters pad datagrams.
pub(crate) fn decode(
    d: &[u8],
    sink: &mut impl FnMut(Item<'_>),
) -> Result<DatagramSummary, DecodeError> {
    if d.len() < HEADER_LEN {
        return Err(DecodeError::new(
            0,
            format!(
                "NetFlow v5 header needs {HEADER_LEN} bytes but the datagram has {}",
                d.len()
            ),
        ));
    }
    let count = usize::from(be16(d, 2));
    let sys_uptime = be32(d, 4);
    let unix_secs = be32(d, 8);
    let unix_nsecs = be32(d, 12);
    let sequence = be32(d, 16);
    let domain = u32::from(be16(d, 20));
    // The top two bits are the sampling mode; the low 14 the interval.
    let interval = u32::from(be16(d, 22) & 0x3fff);
    let sampling = Sampling::one_in(u64::from(interval), SamplingOrigin::Header);
    let export_ms = i64::from(unix_secs) * 1000 + i64::from(unix_nsecs / 1_000_000);

    let records = d.get(HEADER_LEN..).unwrap_or_default();
    let whole = records.len() / RECORD_LEN;
    if whole < count {
        return Err(DecodeError::new(
            HEADER_LEN + whole * RECORD_LEN,
            format!(
                "header count says {count} records ({} bytes) but the datagram has {} bytes",
                HEADER_LEN + count * RECORD_LEN,
                d.len()
            ),
        ));
    }
    let mut summary = DatagramSummary::new(Protocol::NetflowV5, sequence, domain);
    for r in records.chunks_exact(RECORD_LEN).take(count) {
        // 0.0.0.0 is no host's address: an exporter's placeholder.
        let ip = |off| {
            let a = Ipv4Addr::from(be32(r, off));
            (!a.is_unspecified()).then_some(IpAddr::V4(a))
        };
        let first = be32(r, 24);
        let last = be32(r, 28);
        let flow = FlowRecord {
            src: ip(0),
            dst: ip(4),
            protocol: r.get(38).copied().unwrap_or(0),
            src_port: be16(r, 32),
            dst_port: be16(r, 34),
            tcp_flags: r.get(37).copied().unwrap_or(0),
            bytes: u64::from(be32(r, 20)),
            packets: u64::from(be32(r, 16)),
            start_ms: uptime_to_unix_ms(export_ms, sys_uptime, first),
            end_ms: uptime_to_unix_ms(export_ms, sys_uptime, last),
            sampling,
        };
        sink(Item::Flow(&flow));
        summary.flows = summary.flows.saturating_add(1);
        summary.records = summary.records.saturating_add(1);
    }
    Ok(summary)
}
