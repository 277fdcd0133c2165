//! Datagrams captured from real exporters (Debian's softflowd 1.1.0 and
//! pmacctd 1.7.7's sfprobe, on a namespace's loopback while 3,000 UDP
//! datagrams of 1,400 bytes went from 127.0.0.1 to 127.0.0.5 or .7 port 9,
//! each answered by an ICMP port unreachable), decoded as a collector would
//! receive them.

use flow_wire::{Decoder, FlowRecord, Item, Protocol, SamplingOrigin};
use std::net::SocketAddr;

fn decode(name: &str) -> (flow_wire::DatagramSummary, Vec<FlowRecord>) {
    let path = format!("{}/tests/captures/{name}", env!("CARGO_MANIFEST_DIR"));
    let bytes = std::fs::read(&path).unwrap();
    let from: SocketAddr = "127.0.0.1:40000".parse().unwrap();
    let mut flows = Vec::new();
    let summary = Decoder::new()
        .decode(from, 1_795_000_000_000, &bytes, &mut |item| {
            if let Item::Flow(f) = item {
                flows.push(*f);
            }
        })
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    (summary, flows)
}

#[test]
fn pmacctd_sflow_samples_carry_the_sampled_packets() {
    let (s, flows) = decode("pmacctd-sfprobe.bin");
    assert_eq!(s.protocol, Protocol::SflowV5);
    let (udp, icmp): (Vec<&FlowRecord>, Vec<&FlowRecord>) =
        flows.iter().partition(|f| f.protocol == 17);
    assert!(!udp.is_empty() && !icmp.is_empty(), "{flows:?}");
    for f in &icmp {
        // Port unreachable (type 3, code 3, as NetFlow puts it in the
        // destination port) back to the sender, 576 bytes at most.
        assert_eq!(
            (f.src.unwrap().to_string(), f.dst_port),
            ("127.0.0.5".to_string(), 0x0303),
            "{f:?}"
        );
        assert_eq!((f.bytes, f.packets), (576, 1), "{f:?}");
    }
    for f in &udp {
        assert_eq!(f.src.unwrap().to_string(), "127.0.0.1", "{f:?}");
        assert_eq!(f.dst.unwrap().to_string(), "127.0.0.5", "{f:?}");
        assert_eq!((f.protocol, f.dst_port), (17, 9), "{f:?}");
        // On loopback pmacctd samples the IPv4 packet itself (header
        // protocol 11, no Ethernet header) and reports a frame length of
        // 1,432 with 4 bytes stripped (a notional FCS): 1,400 bytes of
        // payload + 8 UDP + 20 IPv4.
        assert_eq!((f.bytes, f.packets), (1428, 1), "{f:?}");
        assert_eq!((f.sampling.population, f.sampling.selected), (1, 1));
        assert_eq!(f.sampling.origin, SamplingOrigin::SflowSample);
    }
}

#[test]
fn softflowd_v5_and_ipfix_report_the_flow() {
    for name in ["softflowd-v5.bin", "softflowd-ipfix.bin"] {
        let (s, flows) = decode(name);
        let want = if name.contains("v5") {
            Protocol::NetflowV5
        } else {
            Protocol::Ipfix
        };
        assert_eq!(s.protocol, want, "{name}");
        let f = flows
            .iter()
            .find(|f| f.dst.unwrap().to_string() == "127.0.0.7" && f.dst_port == 9)
            .unwrap_or_else(|| panic!("{name}: no flow to 127.0.0.7:9 in {flows:?}"));
        assert_eq!(f.protocol, 17, "{name}");
        // IP lengths: 1,400 + 8 + 20 per datagram.
        assert_eq!(f.bytes, f.packets * 1428, "{name}: {f:?}");
        assert!(f.packets > 0 && f.start_ms <= f.end_ms, "{name}: {f:?}");
    }
}
