//! The capture against the kernel, in network namespaces (root):
//! hping3, ping and crafted frames sent over a veth pair, counted by a
//! capture inside the receiving namespace, compared to the packet.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use net_types::Prefix;
use packet_capture::{Capture, CaptureConfig, Counters, Direction, Fanout, Reason, TickReport};
use testkit::{need, sh, Netns};

const SENDER: &str = "198.51.100.2";
const VICTIM: &str = "198.51.100.10";
const SENDER6: &str = "2001:db8:1::2";
const VICTIM6: &str = "2001:db8:1::10";
const MAC_A: &str = "02:00:00:00:00:02";
const MAC_V: &str = "02:00:00:00:00:0a";

/// Two namespaces joined by a veth pair, with static neighbours (no ARP
/// or neighbour discovery traffic to the victim's addresses).
struct Pair {
    a: Netns,
    v: Netns,
}

/// `tag` keeps the namespaces of tests running at once apart.
fn pair(tag: &str) -> Pair {
    let pid = std::process::id();
    let a = Netns(format!("tgcap-{tag}a-{pid}"));
    let v = Netns(format!("tgcap-{tag}v-{pid}"));
    for ns in [&a, &v] {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &ns.0])
            .output();
        sh(&format!(
            "ip netns add {0} && ip -n {0} link set lo up",
            ns.0
        ));
    }
    let (a_name, v_name) = (&a.0, &v.0);
    sh(&format!(
        "set -e
         ip link add tgca netns {a_name} address {MAC_A} type veth peer name tgcv netns {v_name} address {MAC_V}
         ip -n {a_name} addr add {SENDER}/24 dev tgca
         ip -n {v_name} addr add {VICTIM}/24 dev tgcv
         ip -n {a_name} addr add {SENDER6}/64 dev tgca nodad
         ip -n {v_name} addr add {VICTIM6}/64 dev tgcv nodad
         ip -n {a_name} link set tgca up
         ip -n {v_name} link set tgcv up
         ip -n {a_name} neigh replace {VICTIM} lladdr {MAC_V} dev tgca nud permanent
         ip -n {v_name} neigh replace {SENDER} lladdr {MAC_A} dev tgcv nud permanent
         ip -n {a_name} -6 neigh replace {VICTIM6} lladdr {MAC_V} dev tgca nud permanent
         ip -n {v_name} -6 neigh replace {SENDER6} lladdr {MAC_A} dev tgcv nud permanent"
    ));
    Pair { a, v }
}

/// Starts a capture on the victim's veth from inside its namespace (a
/// thread enters it, opens the sockets, and leaves them there).
fn capture_in(
    ns: &str,
    adjust: impl FnOnce(&mut CaptureConfig) + Send + 'static,
) -> (Capture, Receiver<TickReport>) {
    let ns = ns.to_string();
    std::thread::spawn(move || {
        linux_dataplane::netns::enter(&ns).expect("enter the namespace");
        let mut config = CaptureConfig::new(
            vec!["tgcv".into()],
            vec![
                Prefix::parse(&format!("{VICTIM}/32")).unwrap(),
                Prefix::parse(&format!("{VICTIM6}/128")).unwrap(),
            ],
        );
        adjust(&mut config);
        Capture::start(config).expect("start the capture")
    })
    .join()
    .expect("capture thread")
}

/// Runs hping3 in `ns` and checks it sent `count` packets.
fn hping3(ns: &Netns, args: &str, count: u64) {
    let out = ns.sh(&format!("hping3 {args} -c {count} 2>&1 || true"));
    assert!(
        out.contains(&format!("{count} packets transmitted")),
        "hping3 {args}: {out}"
    );
}

/// Every tick's counts, summed.
#[derive(Default, Debug)]
struct Totals {
    hosts: HashMap<(IpAddr, Direction), Counters>,
    udp_ports: HashMap<(IpAddr, u16), u64>,
    /// (victim, source) → (packets, bytes), from the ticks' top sources.
    sources: HashMap<(IpAddr, IpAddr), (u64, u64)>,
    /// (address, destination port) → packets, from the ticks' lists.
    dst_ports: HashMap<(IpAddr, u16), u64>,
    malformed: HashMap<Reason, u64>,
    kernel_drops: u64,
    ticks: usize,
}

fn collect(rx: Receiver<TickReport>) -> std::thread::JoinHandle<Totals> {
    std::thread::spawn(move || {
        let mut t = Totals::default();
        let mut last_end = None;
        for r in rx {
            assert!(r.ended > r.started);
            if let Some(prev) = last_end {
                assert_eq!(r.started, prev, "ticks follow each other");
            }
            last_end = Some(r.ended);
            t.ticks += 1;
            t.kernel_drops += r.kernel_drops;
            for h in &r.hosts {
                t.hosts
                    .entry((h.addr, h.direction))
                    .or_default()
                    .merge(&h.counters);
                for &(port, n) in h.top_udp_src_ports.as_slice() {
                    *t.udp_ports.entry((h.addr, port)).or_default() += n;
                }
                for s in h.top_sources.as_slice() {
                    let e = t.sources.entry((h.addr, s.addr)).or_default();
                    e.0 += u64::from(s.packets);
                    e.1 += u64::from(s.bytes);
                }
                for &(port, n) in h.top_dst_ports.as_slice() {
                    *t.dst_ports.entry((h.addr, port)).or_default() += n;
                }
            }
            for (reason, n) in r.malformed_by_reason.iter() {
                *t.malformed.entry(reason).or_default() += n;
            }
            assert_eq!(r.malformed, r.malformed_by_reason.total());
        }
        t
    })
}

/// Crafted frames, sent from the sender's veth with a packet socket:
/// each kind `n` times.
fn inject_malformed(ns: &Netns, n: u32) {
    let script = format!(
        r#"
import socket, struct
dst = bytes.fromhex("{mac_v}".replace(":", ""))
src = bytes.fromhex("{mac_a}".replace(":", ""))
a = socket.inet_aton("{sender}")
v = socket.inet_aton("{victim}")
a6 = socket.inet_pton(socket.AF_INET6, "{sender6}")
v6 = socket.inet_pton(socket.AF_INET6, "{victim6}")
def eth(t, p): return dst + src + struct.pack(">H", t) + p
def ip4(first, total, proto, l4): return struct.pack(">BBHHHBBH", first, 0, total, 1, 0, 64, proto, 0) + a + v + l4
tcp_bad_offset = struct.pack(">HHIIBBHHH", 1, 80, 0, 0, 0x30, 2, 0, 0, 0)
frames = [
    eth(0x0800, ip4(0x43, 40, 6, b"\0" * 20)),            # bad IHL
    eth(0x0800, ip4(0x45, 40, 6, b"")[:12]),              # truncated IPv4
    eth(0x0800, ip4(0x65, 40, 6, b"\0" * 20)),            # version 6 in IPv4
    eth(0x0800, ip4(0x45, 2000, 6, b"\0" * 20)),          # total length past the frame
    eth(0x0800, ip4(0x45, 40, 6, tcp_bad_offset)),         # TCP data offset 3
    # 6 VLAN tags: the kernel moves the outer one to the packet's
    # metadata (skb_vlan_untag), the capture sees 5.
    dst + src + b"\x81\x00\x00\x01" * 6 + b"\x08\x00" + ip4(0x45, 40, 6, b"\0" * 20),
    eth(0x86dd, struct.pack(">IHBB", 0x60000000, 9 * 8, 60, 64) + a6 + v6 + (b"\x3c\x00" + b"\0" * 6) * 9),  # 9 ext headers
]
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind(("tgca", 0))
for _ in range({n}):
    for f in frames:
        s.send(f)
"#,
        mac_v = MAC_V,
        mac_a = MAC_A,
        sender = SENDER,
        victim = VICTIM,
        sender6 = SENDER6,
        victim6 = VICTIM6,
    );
    ns.sh(&format!("python3 -c {}", testkit::quote(&script)));
}

#[test]
fn counts_what_was_sent_to_the_packet_and_survives_malformed_frames() {
    if !testkit::root("packet-capture: counts in namespaces") {
        return;
    }
    need("hping3", "hping3");
    need("ping", "iputils-ping");
    need("python3", "python3");
    let p = pair("c");
    // Two sockets in a hash fanout group: the counts must still add up.
    let (capture, rx) = capture_in(&p.v.0, |c| {
        c.threads_per_interface = 2;
        c.fanout = Fanout::Hash;
    });
    let totals = collect(rx);

    // TCP SYN, UDP from one source port, ICMP echo requests.
    hping3(&p.a, &format!("-q -S -p 80 -i u100 {VICTIM}"), 5000);
    hping3(
        &p.a,
        &format!("-q -2 -s 5353 -k -p 9999 -i u200 {VICTIM}"),
        1000,
    );
    hping3(&p.a, &format!("-q -1 -i u500 {VICTIM}"), 500);
    // Fragmented ICMP: 3,008 bytes of ICMP in 3 fragments at MTU 1500.
    p.a.sh(&format!(
        "ping -q -c 200 -i 0.005 -s 3000 {VICTIM} >/dev/null"
    ));
    // IPv6 echo requests, then fragmented ones (1,448-byte fragments).
    p.a.sh(&format!("ping -6 -q -c 300 -i 0.005 {VICTIM6} >/dev/null"));
    p.a.sh(&format!(
        "ping -6 -q -c 100 -i 0.005 -s 3000 {VICTIM6} >/dev/null"
    ));
    // Malformed frames, then more SYNs: the capture keeps counting.
    inject_malformed(&p.a, 20);
    hping3(&p.a, &format!("-q -S -p 80 -i u100 {VICTIM}"), 100);

    // Let the last block retire (4 ms); what the last tick did not take,
    // the report sent on stop carries.
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        capture.is_running(),
        "the capture survived the malformed frames"
    );
    capture.stop().expect("clean stop");
    let t = totals.join().expect("collector");
    eprintln!("{t:#?}");

    let victim: IpAddr = VICTIM.parse().unwrap();
    let victim6: IpAddr = VICTIM6.parse().unwrap();
    let v4 = t.hosts[&(victim, Direction::In)];
    assert_eq!(v4.tcp_packets, 5100);
    assert_eq!(v4.tcp_syn, 5100);
    assert_eq!(v4.tcp_bytes, 5100 * 40);
    assert_eq!(v4.udp_packets, 1000);
    assert_eq!(v4.udp_bytes, 1000 * 28);
    assert_eq!(v4.icmp_packets, 500 + 3 * 200);
    assert_eq!(v4.fragments, 3 * 200);
    // 1500 + 1500 + (20 + 48) bytes per echo request.
    assert_eq!(v4.fragment_bytes, 200 * 3068);
    assert_eq!(v4.packets, 5100 + 1000 + 500 + 600);
    assert_eq!(t.udp_ports[&(victim, 5353)], 1000);
    // One sender: every packet and byte towards the victim is its own,
    // to the packet; the destination ports too.
    let sender: IpAddr = SENDER.parse().unwrap();
    let from: Vec<_> = t.sources.keys().filter(|k| k.0 == victim).collect();
    assert_eq!(from, vec![&(victim, sender)], "{:?}", t.sources);
    assert_eq!(t.sources[&(victim, sender)], (v4.packets, v4.bytes));
    assert_eq!(t.dst_ports[&(victim, 80)], 5100);
    assert_eq!(t.dst_ports[&(victim, 9999)], 1000);
    // The victim answers (RST, port unreachable, echo replies): outgoing,
    // with no SYN among them.
    let out = t.hosts[&(victim, Direction::Out)];
    assert_eq!(out.tcp_packets, 5100, "one RST per SYN");
    assert_eq!(out.tcp_syn, 0);
    assert!(out.icmp_packets >= 500 + 600, "echo replies: {out:?}");

    let v6 = t.hosts[&(victim6, Direction::In)];
    assert_eq!(v6.icmp_packets, 300 + 3 * 100);
    assert_eq!(v6.fragments, 3 * 100);
    assert_eq!(v6.packets, 600);
    let sender6: IpAddr = SENDER6.parse().unwrap();
    assert_eq!(t.sources[&(victim6, sender6)], (600, v6.bytes));
    // Outgoing traffic names no sources (the source is ours).
    assert!(!t.sources.keys().any(|k| k.1 == victim || k.1 == victim6));

    for (reason, n) in [
        (Reason::BadIhl, 20),
        (Reason::TruncatedIpv4, 20),
        (Reason::BadIpVersion, 20),
        (Reason::BadIpLength, 20),
        (Reason::BadTcpDataOffset, 20),
        (Reason::TooManyVlanTags, 20),
        (Reason::TooManyExtensionHeaders, 20),
    ] {
        assert_eq!(
            t.malformed.get(&reason),
            Some(&n),
            "{reason:?}: {:?}",
            t.malformed
        );
    }
    assert_eq!(t.malformed.values().sum::<u64>(), 140);
    assert_eq!(t.kernel_drops, 0);
    assert!(t.ticks >= 10, "100 ms ticks over the run: {}", t.ticks);
}

#[test]
fn sampling_scales_and_outgoing_packets_can_be_left_out() {
    if !testkit::root("packet-capture: sampling in namespaces") {
        return;
    }
    need("hping3", "hping3");
    let p = pair("s");
    let (capture, rx) = capture_in(&p.v.0, |c| {
        c.sample_one_in = 10;
        c.outgoing = false;
    });
    let totals = collect(rx);
    hping3(&p.a, &format!("-q -S -p 80 -i u100 {VICTIM}"), 1000);
    std::thread::sleep(Duration::from_millis(50));
    capture.stop().expect("clean stop");
    let t = totals.join().expect("collector");
    let victim: IpAddr = VICTIM.parse().unwrap();
    // One frame in ten is counted ten times. The countdown also runs over
    // other incoming frames (IPv6 link-local chatter), so a SYN or so may
    // be skipped for one of those.
    let syn = t.hosts[&(victim, Direction::In)].tcp_syn;
    assert!(
        syn.is_multiple_of(10) && (980..=1000).contains(&syn),
        "{syn}"
    );
    // The victim's RSTs were sent, not received: left out.
    assert!(!t.hosts.contains_key(&(victim, Direction::Out)), "{t:?}");
}

#[test]
fn a_missing_interface_is_refused() {
    // No socket is opened: the name is looked up first, root or not.
    let err = Capture::start(CaptureConfig::new(vec!["tgcap-none0".into()], vec![]))
        .map(drop)
        .unwrap_err();
    assert!(err.to_string().contains("tgcap-none0"), "{err}");
}
