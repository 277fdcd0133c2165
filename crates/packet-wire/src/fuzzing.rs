//! The entry point cargo-fuzz drives (`fuzz/fuzz_targets/packet_wire.rs`)
//! and the tests replay. It panics only if an invariant breaks:
//!
//! ```ignore
//! fuzz_target!(|data: &[u8]| packet_wire::fuzzing::frames(data));
//! ```

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, OnceLock};

use net_types::Prefix;

use crate::{parse, Aggregator, AggregatorConfig, IpProtocol, LinkType, LocalNets, TickCounts};

fn locals() -> Arc<LocalNets> {
    static LOCALS: OnceLock<Arc<LocalNets>> = OnceLock::new();
    LOCALS
        .get_or_init(|| {
            // Half of each address space is local, so every direction
            // (in, out, internal, foreign) is reached.
            Arc::new(LocalNets::new(&[
                Prefix::V4(Ipv4Addr::UNSPECIFIED, 1),
                Prefix::V6(Ipv6Addr::UNSPECIFIED, 1),
            ]))
        })
        .clone()
}

/// Splits `data` into frames and runs each through [`parse`] and one
/// [`Aggregator`] (a host table of 4, so overflow happens; a tick every
/// three frames). The first byte picks the link type (low bit) and the
/// sampling weight (next bits, 1–4); each frame is then a big-endian `u16`
/// length, a byte added to it as the length on the wire, and the bytes (a
/// short last frame takes what is left).
///
/// Checks: a summary's lengths fit (`ip_len ≤ wire_len`, `wire_len ≥`
/// captured); ports and flags only where the protocol has them; parsing is
/// deterministic and any cut of a frame parses without panic; the ticks
/// count every parsed packet exactly once (hosts + internal + foreign +
/// overflow), every malformed frame under its reason and every non-IP
/// frame; coalescing leaves one entry per (address, direction) and the
/// same totals.
pub fn frames(data: &[u8]) {
    let Some((&mode, mut rest)) = data.split_first() else {
        return;
    };
    let link = if mode & 1 == 0 {
        LinkType::Ethernet
    } else {
        LinkType::RawIp
    };
    let weight = u64::from((mode >> 1) & 3) + 1;
    let mut agg = Aggregator::new(
        locals(),
        AggregatorConfig {
            max_hosts: 4,
            flow_window_ticks: 2,
            hash_seed: 1,
            scan: crate::ScanConfig {
                max_sources: 4,
                window_ticks: 2,
                report_min: 1,
            },
        },
    );
    let (mut parsed, mut malformed, mut non_ip) = (0u64, 0u64, 0u64);
    let mut total = TickCounts::default();
    let mut n = 0;
    while rest.len() >= 3 {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        let extra = u32::from(rest[2]);
        rest = &rest[3..];
        let frame = &rest[..len.min(rest.len())];
        rest = &rest[frame.len()..];
        let wire_len = frame.len() as u32 + extra;
        let result = parse(link, frame, wire_len);
        assert_eq!(result, parse(link, frame, wire_len), "deterministic");
        match &result {
            Ok(p) => {
                parsed += 1;
                assert!(p.wire_len as usize >= frame.len());
                assert!(p.ip_len <= p.wire_len, "{p:?}");
                if p.protocol != IpProtocol::TCP {
                    assert_eq!(p.tcp_flags.0, 0, "{p:?}");
                }
                if p.protocol != IpProtocol::TCP && p.protocol != IpProtocol::UDP {
                    assert_eq!((p.src_port, p.dst_port), (0, 0), "{p:?}");
                }
                assert_eq!(
                    matches!(p.src, IpAddr::V4(_)),
                    matches!(p.dst, IpAddr::V4(_))
                );
            }
            Err(e) => {
                let _ = e.to_string();
                match e.reason() {
                    Some(_) => malformed += 1,
                    None => non_ip += 1,
                }
            }
        }
        for cut in [frame.len() / 2, frame.len().saturating_sub(1)] {
            let _ = parse(link, &frame[..cut], wire_len);
        }
        let _ = agg.add_frame(link, frame, wire_len, weight);
        n += 1;
        if n % 3 == 0 {
            total.merge(agg.take());
        }
    }
    total.merge(agg.take());
    assert_eq!(total.packets(), parsed * weight);
    assert_eq!(total.malformed.total(), malformed);
    assert_eq!(total.non_ip, non_ip);
    let before = total.packets();
    total.coalesce();
    assert_eq!(total.packets(), before);
    for pair in total.hosts.windows(2) {
        assert!((pair[0].addr, pair[0].direction) < (pair[1].addr, pair[1].direction));
    }
}
