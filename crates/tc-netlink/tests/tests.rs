//! tc-netlink's boundary: requests encode to the kernel's layout, what they
//! encode decodes back (an `RTM_NEW*` request has the same shape as the
//! kernel's dump of that object), acks decode, and no input makes the
//! decoder panic.

use proptest::prelude::*;
use tc_netlink::consts::*;
use tc_netlink::*;

fn encode(reqs: &[Request]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, r) in reqs.iter().enumerate() {
        r.encode(i as u32 + 1, &mut out);
    }
    out
}

fn one(req: Request) -> (Header, Message) {
    let buf = encode(&[req]);
    let mut it = parse_messages_with_headers(&buf);
    let m = it.next().expect("one message").expect("decodes");
    assert!(it.next().is_none());
    m
}

#[test]
fn link_set_up_bytes() {
    let buf = encode(&[Request::LinkSetUp { ifindex: 7 }]);
    let mut want = Vec::new();
    want.extend_from_slice(&32u32.to_ne_bytes()); // nlmsg_len
    want.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    want.extend_from_slice(&(NLM_F_REQUEST | NLM_F_ACK).to_ne_bytes());
    want.extend_from_slice(&1u32.to_ne_bytes()); // seq
    want.extend_from_slice(&0u32.to_ne_bytes()); // pid
    want.extend_from_slice(&[0, 0, 0, 0]); // family, pad, type
    want.extend_from_slice(&7i32.to_ne_bytes());
    want.extend_from_slice(&IFF_UP.to_ne_bytes()); // flags
    want.extend_from_slice(&IFF_UP.to_ne_bytes()); // change
    assert_eq!(buf, want);
}

#[test]
fn ifb_round_trip() {
    let (h, m) = one(Request::LinkAddIfb {
        name: "tg-up0".into(),
    });
    assert_eq!(
        h.flags,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    );
    assert_eq!(h.len as usize % 4, 0);
    let Message::Link(l) = m else { panic!("{m:?}") };
    assert_eq!(l.name, "tg-up0");
    assert_eq!(l.kind.as_deref(), Some("ifb"));
    assert!(!l.up);
}

/// The chain that marks tollgate's clsact: `RTM_NEWCHAIN` has the shape
/// of the kernel's dump of a chain, so it decodes back as one.
#[test]
fn chain_round_trip() {
    let (h, m) = one(Request::ChainAdd {
        ifindex: 4,
        parent: CLSACT_INGRESS,
        chain: 0x0746_7467,
    });
    assert_eq!(h.ty, RTM_NEWCHAIN);
    assert_eq!(
        h.flags,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
    );
    assert_eq!(
        m,
        Message::Chain(Chain {
            ifindex: 4,
            parent: CLSACT_INGRESS,
            index: 0x0746_7467,
            template: None,
        })
    );
    let del = encode(&[Request::ChainDel {
        ifindex: 4,
        parent: CLSACT_INGRESS,
        chain: 9,
    }]);
    assert_eq!(u16::from_ne_bytes([del[4], del[5]]), RTM_DELCHAIN);
    let dump = encode(&[Request::DumpChains {
        ifindex: 4,
        parent: CLSACT_INGRESS,
    }]);
    assert_eq!(u16::from_ne_bytes([dump[4], dump[5]]), RTM_GETCHAIN);
    assert!(Request::DumpChains {
        ifindex: 4,
        parent: CLSACT_INGRESS
    }
    .is_dump());
}

/// A chain without its index is an error naming the attribute.
#[test]
fn a_chain_without_an_index_names_the_attribute() {
    let mut buf = encode(&[Request::ChainAdd {
        ifindex: 4,
        parent: CLSACT_INGRESS,
        chain: 1,
    }]);
    // Drop the TCA_CHAIN attribute (the last 8 bytes) and fix the length.
    buf.truncate(buf.len() - 8);
    let len = buf.len() as u32;
    buf[..4].copy_from_slice(&len.to_ne_bytes());
    let m: Vec<_> = parse_messages(&buf).collect();
    assert_eq!(m, vec![Err(DecodeError::Missing { field: "TCA_CHAIN" })]);
}

/// A bridge port names its bridge in `IFLA_MASTER`.
#[test]
fn link_master_decodes() {
    let mut buf = encode(&[Request::LinkAddIfb {
        name: "eth0".into(),
    }]);
    attr(&mut buf, IFLA_MASTER, &7u32.to_ne_bytes());
    let len = buf.len() as u32;
    buf[..4].copy_from_slice(&len.to_ne_bytes());
    let Some(Ok(Message::Link(l))) = parse_messages(&buf).next() else {
        panic!("no link")
    };
    assert_eq!(l.master, Some(7));
    let plain = encode(&[Request::LinkAddIfb {
        name: "eth1".into(),
    }]);
    let Some(Ok(Message::Link(l))) = parse_messages(&plain).next() else {
        panic!("no link")
    };
    assert_eq!(l.master, None);
}

#[test]
fn htb_qdisc_round_trip() {
    let (h, m) = one(Request::QdiscAddHtb {
        ifindex: 3,
        parent: handle(1, 0x10),
        major: 0x20,
        default_minor: 2,
    });
    assert_eq!(h.ty, RTM_NEWQDISC);
    let Message::Qdisc(q) = m else {
        panic!("{m:?}")
    };
    assert_eq!(
        (q.ifindex, q.handle, q.parent),
        (3, handle(0x20, 0), handle(1, 0x10))
    );
    assert_eq!(q.kind, "htb");
    let htb = q.htb.unwrap();
    assert_eq!(
        (htb.version, htb.rate2quantum, htb.default_minor),
        (3, 10, 2)
    );
}

fn class(rate_bps: u64, ceil_bps: u64, burst: Option<u32>, create: bool) -> Request {
    Request::HtbClass {
        ifindex: 4,
        classid: handle(1, 0xa),
        parent: handle(1, 1),
        rate_bps,
        ceil_bps,
        burst,
        cburst: Some(3000),
        prio: 3,
        quantum: 5000,
        create,
    }
}

#[test]
fn htb_class_round_trip() {
    let (h, m) = one(class(10_000_000, 20_000_000, Some(2000), true));
    assert_eq!(
        h.flags & (NLM_F_CREATE | NLM_F_EXCL),
        NLM_F_CREATE | NLM_F_EXCL
    );
    let Message::Class(c) = m else {
        panic!("{m:?}")
    };
    assert_eq!(
        (c.ifindex, c.handle, c.parent, c.kind.as_str()),
        (4, 0x1000a, 0x10001, "htb")
    );
    let p = c.htb.unwrap();
    assert_eq!((p.rate_bps, p.ceil_bps), (10_000_000, 20_000_000));
    assert_eq!(p.buffer_ticks, htb_buffer_ticks(10_000_000, 2000));
    assert_eq!(p.buffer_ticks, 25_000);
    assert_eq!(p.cbuffer_ticks, htb_buffer_ticks(20_000_000, 3000));
    assert_eq!((p.quantum, p.prio, p.level), (5000, 3, 0));

    // change: no CREATE/EXCL; default burst.
    let (h, m) = one(class(8_000_000, 8_000_000, None, false));
    assert_eq!(h.flags, NLM_F_REQUEST | NLM_F_ACK);
    let Message::Class(c) = m else {
        panic!("{m:?}")
    };
    assert_eq!(
        c.htb.unwrap().buffer_ticks,
        htb_buffer_ticks(8_000_000, 2600)
    );
}

#[test]
fn htb_class_64_bit_rates() {
    // 2^32 bytes/s is the first rate that needs TCA_HTB_RATE64.
    let edge = (u32::MAX as u64) * 8;
    let big = (1u64 << 32) * 8;
    let small = encode(&[class(edge, edge, None, true)]);
    let large = encode(&[class(edge, big, None, true)]);
    let huge = encode(&[class(big, 100_000_000_000, None, true)]);
    assert_eq!(large.len(), small.len() + 12);
    assert_eq!(huge.len(), small.len() + 24);
    for (buf, rate, ceil) in [
        (small, edge, edge),
        (large, edge, big),
        (huge, big, 100_000_000_000),
    ] {
        let Some(Ok(Message::Class(c))) = parse_messages(&buf).next() else {
            panic!()
        };
        let p = c.htb.unwrap();
        assert_eq!((p.rate_bps, p.ceil_bps), (rate, ceil));
    }
}

#[test]
fn bpf_filter_round_trip() {
    let ops =
        SockFilter::parse_tc_bytecode("4,32 0 0 4294963220,21 0 1 7,6 0 0 4294967295,6 0 0 0")
            .unwrap();
    let (h, m) = one(Request::BpfFilter {
        ifindex: 5,
        parent: CLSACT_EGRESS,
        prio: 0xc001,
        protocol: ETH_P_ALL,
        handle: 1,
        ops: ops.clone(),
        classid: Some(handle(1, 2)),
        redirect_egress_to: Some(9),
        replace: true,
    });
    assert_eq!(
        h.flags,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    );
    let Message::Filter(f) = m else {
        panic!("{m:?}")
    };
    assert_eq!(
        (f.ifindex, f.parent, f.prio, f.protocol, f.handle),
        (5, CLSACT_EGRESS, 0xc001, ETH_P_ALL, 1)
    );
    assert_eq!(f.kind, "bpf");
    let b = f.bpf.unwrap();
    assert_eq!(b.ops, ops);
    assert_eq!(b.classid, Some(0x10002));
    assert_eq!(b.redirect_ifindex(), Some(9));
    let mirred = b.actions[0].mirred.unwrap();
    assert_eq!(
        (b.actions[0].order, b.actions[0].kind.as_str()),
        (1, "mirred")
    );
    assert_eq!(
        (mirred.action, mirred.eaction),
        (TC_ACT_STOLEN, TCA_EGRESS_REDIR)
    );
}

#[test]
fn filter_protocol_is_big_endian_in_info() {
    let buf = encode(&[Request::FilterDel {
        ifindex: 1,
        parent: CLSACT_INGRESS,
        prio: 0xc000,
        protocol: 0x0800,
    }]);
    // nlmsghdr (16) + tcmsg: info is the last 4 bytes.
    let info = u32::from_ne_bytes(buf[32..36].try_into().unwrap());
    assert_eq!(info >> 16, 0xc000);
    assert_eq!((info as u16).to_ne_bytes(), [0x08, 0x00]);
}

#[test]
fn many_requests_pack_aligned() {
    let mut out = vec![0xAA]; // a caller's odd-length buffer gets padded
    Request::LinkAddIfb {
        name: "abcde".into(),
    }
    .encode(1, &mut out);
    Request::DumpLinks.encode(2, &mut out);
    Request::ClassDel {
        ifindex: 1,
        classid: 0x10001,
    }
    .encode(3, &mut out);
    let seqs: Vec<u32> = parse_messages_with_headers(&out[4..])
        .map(|m| m.unwrap().0.seq)
        .collect();
    assert_eq!(seqs, [1, 2, 3]);
    assert!(Request::DumpLinks.is_dump());
}

/// Builds an ack as the kernel does with NETLINK_CAP_ACK and NETLINK_EXT_ACK.
fn ack(seq: u32, error: i32, msg: Option<&str>, capped: bool) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend_from_slice(&error.to_ne_bytes());
    // echoed header of a 24-byte request
    body.extend_from_slice(&24u32.to_ne_bytes());
    body.extend_from_slice(&RTM_NEWTCLASS.to_ne_bytes());
    body.extend_from_slice(&0u16.to_ne_bytes());
    body.extend_from_slice(&seq.to_ne_bytes());
    body.extend_from_slice(&0u32.to_ne_bytes());
    if !capped {
        body.extend_from_slice(&[0xEE; 8]);
    }
    let mut flags = if capped { NLM_F_CAPPED } else { 0 };
    if let Some(m) = msg {
        flags |= NLM_F_ACK_TLVS;
        let len = 4 + m.len() + 1;
        body.extend_from_slice(&(len as u16).to_ne_bytes());
        body.extend_from_slice(&NLMSGERR_ATTR_MSG.to_ne_bytes());
        body.extend_from_slice(m.as_bytes());
        body.push(0);
        while body.len() % 4 != 0 {
            body.push(0);
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    out.extend_from_slice(&NLMSG_ERROR.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&body);
    out
}

#[test]
fn acks() {
    let mut buf = ack(1, 0, None, true);
    buf.extend(ack(2, -2, Some("Failed to find class"), true));
    buf.extend(ack(3, -22, Some("uncapped"), false));
    let msgs: Vec<Message> = parse_messages(&buf).map(Result::unwrap).collect();
    assert_eq!(
        msgs,
        [
            Message::Ack(Ack {
                seq: 1,
                errno: 0,
                message: None,
                offset: None
            }),
            Message::Ack(Ack {
                seq: 2,
                errno: 2,
                message: Some("Failed to find class".into()),
                offset: None
            }),
            Message::Ack(Ack {
                seq: 3,
                errno: 22,
                message: Some("uncapped".into()),
                offset: None
            }),
        ]
    );
}

#[test]
fn malformed_messages_name_the_field() {
    // A class message whose TCA_HTB_PARMS is 4 bytes short.
    let mut buf = encode(&[class(8_000, 8_000, None, true)]);
    let at = buf.len() - 48; // the PARMS attribute: 4 header + 44
    buf[at..at + 2].copy_from_slice(&44u16.to_ne_bytes());
    // Its nest and message lengths are unchanged, so the following 4 bytes
    // now read as a zero-length attribute: either error names a field.
    let err = parse_messages(&buf).next().unwrap().unwrap_err();
    assert!(
        err.to_string().contains("TCA_HTB_PARMS") || err.to_string().contains("htb class options"),
        "{err}"
    );
    // A broken header ends parsing.
    let mut it = parse_messages(&[8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    assert!(matches!(it.next(), Some(Err(DecodeError::Length { .. }))));
    assert!(it.next().is_none());
}

/// Appends an attribute (test-side writer, independent of the crate's).
fn attr(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    out.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(payload);
    out.resize(out.len().next_multiple_of(4), 0);
}

#[test]
fn class_stats_prefer_64_bit_counters() {
    // A class dump as the kernel writes it: tcmsg, kind, legacy stats,
    // STATS2 { BASIC, QUEUE, PKT64 }, XSTATS.
    let mut body = vec![0u8; 4];
    for v in [7u32, 0x10005, 0x10001, 0] {
        body.extend_from_slice(&v.to_ne_bytes());
    }
    attr(&mut body, TCA_KIND, b"htb\0");
    attr(&mut body, TCA_STATS, &[0xAB; 36]);
    let mut s2 = Vec::new();
    let mut basic = (5_000_000_000u64).to_ne_bytes().to_vec();
    basic.extend_from_slice(&u32::MAX.to_ne_bytes());
    basic.extend_from_slice(&[0; 4]);
    attr(&mut s2, TCA_STATS_BASIC, &basic);
    let queue: Vec<u8> = [1u32, 1500, 3, 4, 5]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    attr(&mut s2, TCA_STATS_QUEUE, &queue);
    attr(&mut s2, TCA_STATS_PKT64, &(6_000_000_000u64).to_ne_bytes());
    attr(&mut body, TCA_STATS2 | NLA_F_NESTED, &s2);
    let x: Vec<u8> = [10u32, 20, 0, (-5i32) as u32, 99]
        .iter()
        .flat_map(|v| v.to_ne_bytes())
        .collect();
    attr(&mut body, TCA_XSTATS, &x);
    let mut buf = Vec::new();
    buf.extend_from_slice(&((16 + body.len()) as u32).to_ne_bytes());
    buf.extend_from_slice(&RTM_NEWTCLASS.to_ne_bytes());
    buf.extend_from_slice(&NLM_F_MULTI.to_ne_bytes());
    buf.extend_from_slice(&[0; 8]);
    buf.extend_from_slice(&body);
    let Some(Ok(Message::Class(c))) = parse_messages(&buf).next() else {
        panic!()
    };
    assert_eq!(
        (c.ifindex, c.handle, c.parent, c.htb),
        (7, 0x10005, 0x10001, None)
    );
    assert_eq!(
        c.stats,
        Some(Stats {
            bytes: 5_000_000_000,
            packets: 6_000_000_000,
            qlen: 1,
            backlog_bytes: 1500,
            drops: 3,
            requeues: 4,
            overlimits: 5,
        })
    );
    let x = c.htb_xstats.unwrap();
    assert_eq!((x.lends, x.borrows, x.tokens, x.ctokens), (10, 20, -5, 99));
}

fn sample() -> Vec<u8> {
    let mut buf = encode(&[
        Request::LinkAddIfb {
            name: "tg-down0".into(),
        },
        Request::QdiscAddHtb {
            ifindex: 2,
            parent: TC_H_ROOT,
            major: 1,
            default_minor: 2,
        },
        class(1_000_000_000, 400_000_000_000, Some(10_000), true),
        Request::BpfFilter {
            ifindex: 2,
            parent: handle(1, 0),
            prio: 1,
            protocol: ETH_P_ALL,
            handle: 1,
            ops: vec![SockFilter::new(6, 0, 0, u32::MAX); 3],
            classid: Some(5),
            redirect_egress_to: Some(3),
            replace: false,
        },
        Request::ChainAdd {
            ifindex: 2,
            parent: CLSACT_INGRESS,
            chain: 7,
        },
    ]);
    buf.extend(ack(
        9,
        -17,
        Some("Exclusivity flag on, cannot modify."),
        true,
    ));
    buf
}

#[test]
fn every_truncation_and_byte_flip_is_safe() {
    let buf = sample();
    for n in 0..=buf.len() {
        for m in parse_messages(&buf[..n]) {
            let _ = m;
        }
    }
    for i in 0..buf.len() {
        for v in [0x00, 0x01, 0x03, 0x04, 0x7f, 0x80, 0xff] {
            let mut b = buf.clone();
            b[i] = v;
            let _ = parse_messages(&b).count();
        }
    }
}

proptest! {
    #[test]
    fn random_bytes_never_panic(buf in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_messages(&buf).count();
    }

    #[test]
    fn random_edits_of_real_messages_never_panic(
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut buf = sample();
        for (i, v) in edits {
            let i = i.index(buf.len());
            buf[i] = v;
        }
        let n = cut.index(buf.len() + 1);
        let _ = parse_messages(&buf[..n]).count();
    }
}

#[test]
fn ebpf_filter_names_its_program_and_redirects() {
    let (h, m) = one(Request::EbpfFilter {
        ifindex: 5,
        parent: CLSACT_INGRESS,
        prio: 0xc000,
        protocol: ETH_P_ALL,
        handle: 1,
        fd: 42,
        name: "tg_up_vm".into(),
        redirect_egress_to: Some(9),
        replace: true,
    });
    assert_eq!(
        h.flags,
        NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE
    );
    let Message::Filter(f) = m else {
        panic!("{m:?}")
    };
    assert_eq!((f.ifindex, f.parent, f.prio), (5, CLSACT_INGRESS, 0xc000));
    let b = f.bpf.unwrap();
    // No classic program, not direct-action (the mirred action must run).
    assert!(b.ops.is_empty());
    assert!(!b.direct_action);
    assert_eq!(b.name.as_deref(), Some("tg_up_vm"));
    assert_eq!(b.redirect_ifindex(), Some(9));
}

/// `ip link set … xdp`: the program's fd and flags nested in `IFLA_XDP`,
/// and the expected program for a detach; a dump's `IFLA_XDP` names each
/// mode's program.
#[test]
fn link_xdp_encodes_and_its_programs_decode() {
    let buf = encode(&[Request::LinkSetXdp {
        ifindex: 3,
        fd: -1,
        flags: XDP_FLAGS_REPLACE | XDP_FLAGS_SKB_MODE,
        expected_fd: Some(9),
    }]);
    // Header, ifinfomsg, then IFLA_XDP { FD, FLAGS, EXPECTED_FD }.
    let a = &buf[16 + 16..];
    assert_eq!(u16::from_ne_bytes([a[0], a[1]]), 4 + 3 * 8);
    assert_eq!(u16::from_ne_bytes([a[2], a[3]]) & 0x7fff, IFLA_XDP);
    let word = |i: usize| i32::from_ne_bytes(a[i..i + 4].try_into().unwrap());
    assert_eq!(u16::from_ne_bytes([a[6], a[7]]), IFLA_XDP_FD);
    assert_eq!(word(8), -1);
    assert_eq!(u16::from_ne_bytes([a[14], a[15]]), IFLA_XDP_FLAGS);
    assert_eq!(word(16) as u32, XDP_FLAGS_REPLACE | XDP_FLAGS_SKB_MODE);
    assert_eq!(u16::from_ne_bytes([a[22], a[23]]), IFLA_XDP_EXPECTED_FD);
    assert_eq!(word(24), 9);
    assert_eq!(
        Request::LinkSetXdp {
            ifindex: 3,
            fd: 5,
            flags: XDP_FLAGS_UPDATE_IF_NOEXIST,
            expected_fd: None
        }
        .to_string(),
        "attach an XDP program to link #3"
    );

    // A dumped link with a driver-mode program (and the repeated
    // IFLA_XDP_PROG_ID, which is not a second program).
    let mut buf = encode(&[Request::LinkAddIfb {
        name: "wan0".into(),
    }]);
    let mut nest = Vec::new();
    for (ty, v) in [(IFLA_XDP_DRV_PROG_ID, 42u32), (IFLA_XDP_PROG_ID, 42)] {
        nest.extend_from_slice(&8u16.to_ne_bytes());
        nest.extend_from_slice(&ty.to_ne_bytes());
        nest.extend_from_slice(&v.to_ne_bytes());
    }
    attr(&mut buf, IFLA_XDP, &nest);
    let len = buf.len() as u32;
    buf[..4].copy_from_slice(&len.to_ne_bytes());
    let Some(Ok(Message::Link(l))) = parse_messages(&buf).next() else {
        panic!("no link")
    };
    assert_eq!(l.xdp_programs, [(XdpMode::Driver, 42)]);
}
