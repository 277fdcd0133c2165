//! The rtnetlink socket against the real kernel.
//!
//! Each test builds a private network namespace with a veth pair, opens an
//! [`Rtnl`] inside it, and checks what it did both with the socket's own
//! dumps and with `tc`/`ip` output. Needs root and iproute2. Namespaces are
//! removed even when a test fails, and tests run one at a time (they share
//! the kernel, and the timing test should not compete).

use linux_dataplane::rtnl::Rtnl;
use std::collections::BTreeMap;
use std::process::Command;
use tc_netlink::consts::{
    CLSACT_EGRESS, CLSACT_HANDLE, ETH_P_ALL, TCA_EGRESS_REDIR, TC_ACT_STOLEN, TC_H_CLSACT,
    TC_H_ROOT,
};
use tc_netlink::{default_burst, handle, htb_buffer_ticks, Class, HtbParams, Request, SockFilter};

mod common;

use common::htb::{all_ok, class, htb_root, ifindex, time_nested_classes};
use common::{one_at_a_time, Netns};

impl Netns {
    /// Gives `v0` an address and a static neighbour so that a ping from the
    /// namespace leaves through `v0` (and its qdiscs) at once, with no ARP.
    fn route_out_of_v0(&self) {
        self.ip(&["addr", "add", "192.0.2.1/24", "dev", "v0"]);
        self.ip(&[
            "neigh",
            "add",
            "192.0.2.2",
            "lladdr",
            "02:00:00:00:00:02",
            "dev",
            "v0",
        ]);
    }

    /// Sends pings out of `v0` (nobody answers), with `mark` as SO_MARK.
    fn ping(&self, mark: Option<u32>) {
        let mut a = vec![
            "ip", "netns", "exec", &self.0, "ping", "-c", "3", "-i", "0.01", "-W", "1",
        ];
        let m = mark.map(|m| m.to_string());
        if let Some(m) = &m {
            a.extend_from_slice(&["-m", m]);
        }
        a.push("192.0.2.2");
        let _ = Command::new(a[0]).args(&a[1..]).output().expect("run ping");
    }
}

fn classes_by_handle(rtnl: &mut Rtnl, ifindex: u32) -> BTreeMap<u32, Class> {
    rtnl.classes(ifindex)
        .unwrap()
        .into_iter()
        .map(|c| (c.handle, c))
        .collect()
}

/// The `tc -d class show` line of one class.
fn tc_class_line(ns: &Netns, dev: &str, classid: &str) -> String {
    let text = ns.tc(&["-s", "-d", "class", "show", "dev", dev]);
    let prefix = format!("class htb {classid} ");
    text.lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("tc does not show {classid}:\n{text}"))
        .to_string()
}

#[test]
fn ifb_create_up_delete() {
    let _k = one_at_a_time();
    let Some(ns) = Netns::new("ifb") else {
        return;
    };
    let mut rtnl = Rtnl::open_in_netns(&ns.0).unwrap();

    all_ok(rtnl.execute(&[Request::LinkAddIfb {
        name: "tg-test0".into(),
    }]));
    let link = rtnl
        .links()
        .unwrap()
        .into_iter()
        .find(|l| l.name == "tg-test0")
        .expect("the IFB exists");
    assert_eq!(link.kind.as_deref(), Some("ifb"));
    assert!(!link.up);
    assert!(ns.ip(&["-d", "link", "show", "tg-test0"]).contains("ifb"));
    // The socket works in its namespace, not the caller's.
    let host = Command::new("ip")
        .args(["link", "show", "tg-test0"])
        .output()
        .unwrap();
    assert!(!host.status.success());

    // A second create fails with EEXIST; bringing it up succeeds.
    let r = rtnl.execute(&[
        Request::LinkAddIfb {
            name: "tg-test0".into(),
        },
        Request::LinkSetUp {
            ifindex: link.ifindex,
        },
    ]);
    assert_eq!(r[0].as_ref().unwrap_err().errno, libc::EEXIST);
    assert!(r[1].is_ok());
    assert!(rtnl
        .links()
        .unwrap()
        .iter()
        .any(|l| l.name == "tg-test0" && l.up));
    assert!(ns.ip(&["link", "show", "tg-test0"]).contains(",UP"));

    all_ok(rtnl.execute(&[Request::LinkDel {
        ifindex: link.ifindex,
    }]));
    assert!(!rtnl.links().unwrap().iter().any(|l| l.name == "tg-test0"));
}

#[test]
fn htb_tree_matches_tc_and_dump() {
    let _k = one_at_a_time();
    let Some(ns) = Netns::new("htb") else {
        return;
    };
    let mut rtnl = Rtnl::open_in_netns(&ns.0).unwrap();
    let v0 = ifindex(&mut rtnl, "v0");
    let big = 50_000_000_000; // 50 Gbit/s = 6.25e9 bytes/s: needs TCA_HTB_RATE64
    all_ok(rtnl.execute(&[
        htb_root(v0, 2),
        class(
            v0,
            handle(1, 1),
            handle(1, 0),
            10_000_000,
            20_000_000,
            Some(2000),
            Some(3000),
            3,
            5000,
        ),
        class(
            v0,
            handle(1, 2),
            handle(1, 1),
            1_000_000,
            2_000_000,
            None,
            None,
            0,
            0,
        ),
        class(
            v0,
            handle(1, 3),
            handle(1, 1),
            1_000_000,
            2_000_000,
            Some(4000),
            Some(5000),
            5,
            3000,
        ),
        class(
            v0,
            handle(1, 4),
            handle(1, 1),
            big,
            2 * big,
            None,
            None,
            7,
            0,
        ),
        // A nested HTB qdisc as the leaf qdisc of class 1:3, with a class.
        Request::QdiscAddHtb {
            ifindex: v0,
            parent: handle(1, 3),
            major: 0x10,
            default_minor: 0,
        },
        class(
            v0,
            handle(0x10, 1),
            handle(0x10, 0),
            1_000_000,
            1_000_000,
            None,
            None,
            1,
            0,
        ),
    ]));

    // Our own dump.
    let c = classes_by_handle(&mut rtnl, v0);
    assert_eq!(c.len(), 5, "{c:#?}");
    let p = |h: u32| c[&h].htb.expect("htb parameters");
    let want = |rate: u64, ceil: u64, burst: u32, cburst: u32, prio, quantum, level| HtbParams {
        rate_bps: rate,
        ceil_bps: ceil,
        buffer_ticks: htb_buffer_ticks(rate, burst),
        cbuffer_ticks: htb_buffer_ticks(ceil, cburst),
        quantum,
        prio,
        level,
    };
    assert_eq!(
        p(0x10001),
        want(10_000_000, 20_000_000, 2000, 3000, 3, 5000, 7)
    );
    assert_eq!(
        p(0x10002),
        want(1_000_000, 2_000_000, 1725, 1850, 0, 12_500, 0)
    );
    assert_eq!(
        p(0x10003),
        want(1_000_000, 2_000_000, 4000, 5000, 5, 3000, 0)
    );
    // The kernel caps a derived quantum at 200,000 (and warns).
    assert_eq!(
        p(0x10004),
        want(
            big,
            2 * big,
            default_burst(big),
            default_burst(2 * big),
            7,
            200_000,
            0
        )
    );
    assert_eq!(
        p(0x100001),
        want(1_000_000, 1_000_000, 1725, 1725, 1, 12_500, 0)
    );
    assert_eq!(c[&0x10001].parent, TC_H_ROOT);
    assert_eq!(c[&0x10002].parent, handle(1, 1));
    // A top class of the nested qdisc reports parent root, not 10:.
    assert_eq!(c[&0x100001].parent, TC_H_ROOT);
    assert_eq!(c[&0x10003].leaf_qdisc, handle(0x10, 0));
    // HTB's own pfifo leaves have handle 0.
    assert_eq!(c[&0x10002].leaf_qdisc, 0);
    assert_eq!(c[&0x10001].leaf_qdisc, 0);
    assert!(c
        .values()
        .all(|c| c.kind == "htb" && c.stats.is_some() && c.htb_xstats.is_some()));
    // A fresh class holds a full bucket: its tokens are its buffer.
    assert_eq!(
        c[&0x10003].htb_xstats.unwrap().tokens as u32,
        p(0x10003).buffer_ticks
    );

    // tc's view. Bursts print back exactly because the ticks are exact.
    let line = tc_class_line(&ns, "v0", "1:1");
    assert!(line.contains("root rate 10Mbit ceil 20Mbit linklayer ethernet burst 2000b/1 mpu 0b cburst 3000b/1 mpu 0b level 7"), "{line}");
    let line = tc_class_line(&ns, "v0", "1:2");
    assert!(line.contains("parent 1:1 prio 0 quantum 12500 rate 1Mbit ceil 2Mbit linklayer ethernet burst 1725b/1 mpu 0b cburst 1850b/1 mpu 0b level 0"), "{line}");
    let line = tc_class_line(&ns, "v0", "1:3");
    assert!(line.contains("parent 1:1 leaf 10: prio 5 quantum 3000 rate 1Mbit ceil 2Mbit linklayer ethernet burst 4000b/1 mpu 0b cburst 5000b/1 mpu 0b level 0"), "{line}");
    let line = tc_class_line(&ns, "v0", "1:4");
    assert!(
        line.contains("prio 7 quantum 200000 rate 50Gbit ceil 100Gbit linklayer ethernet"),
        "{line}"
    );
    let line = tc_class_line(&ns, "v0", "10:1");
    assert!(
        line.contains("root prio 1 quantum 12500 rate 1Mbit ceil 1Mbit"),
        "{line}"
    );

    // Qdiscs: ours and tc's.
    let q: Vec<_> = rtnl
        .qdiscs()
        .unwrap()
        .into_iter()
        .filter(|q| q.ifindex == v0)
        .collect();
    let root = q
        .iter()
        .find(|q| q.handle == handle(1, 0))
        .expect("root htb");
    assert_eq!((root.parent, root.kind.as_str()), (TC_H_ROOT, "htb"));
    let htb = root.htb.unwrap();
    // The kernel reports its own version, 3.17, as 0x30011.
    assert_eq!(
        (htb.version >> 16, htb.rate2quantum, htb.default_minor),
        (3, 10, 2)
    );
    let nested = q
        .iter()
        .find(|q| q.handle == handle(0x10, 0))
        .expect("nested htb");
    assert_eq!(
        (nested.parent, nested.htb.unwrap().default_minor),
        (handle(1, 3), 0)
    );
    let text = ns.tc(&["qdisc", "show", "dev", "v0"]);
    assert!(
        text.contains("qdisc htb 1: root") && text.contains("default 0x2"),
        "{text}"
    );
    assert!(text.contains("qdisc htb 10: parent 1:3"), "{text}");

    // Class change: new rates, bursts, prio, quantum; the dump follows.
    all_ok(rtnl.execute(&[Request::HtbClass {
        ifindex: v0,
        classid: handle(1, 2),
        parent: handle(1, 1),
        rate_bps: 3_000_000,
        ceil_bps: 4_000_000,
        burst: Some(6000),
        cburst: None,
        prio: 2,
        quantum: 1514,
        create: false,
    }]));
    assert_eq!(
        classes_by_handle(&mut rtnl, v0)[&0x10002].htb.unwrap(),
        want(
            3_000_000,
            4_000_000,
            6000,
            default_burst(4_000_000),
            2,
            1514,
            0
        )
    );
    let line = tc_class_line(&ns, "v0", "1:2");
    assert!(
        line.contains("prio 2 quantum 1514 rate 3Mbit ceil 4Mbit linklayer ethernet burst 6000b/1"),
        "{line}"
    );

    // Changing a class that does not exist fails; so does adding one twice.
    let r = rtnl.execute(&[
        Request::HtbClass {
            ifindex: v0,
            classid: handle(1, 0x99),
            parent: handle(1, 1),
            rate_bps: 1_000_000,
            ceil_bps: 1_000_000,
            burst: None,
            cburst: None,
            prio: 0,
            quantum: 0,
            create: false,
        },
        class(
            v0,
            handle(1, 2),
            handle(1, 1),
            1_000_000,
            1_000_000,
            None,
            None,
            0,
            0,
        ),
    ]);
    let e0 = r[0].as_ref().unwrap_err();
    let e1 = r[1].as_ref().unwrap_err();
    println!("change of a missing class: {e0}\nadd of an existing class: {e1}");
    assert_eq!(e0.errno, libc::ENOENT);
    assert_eq!(e1.errno, libc::EEXIST);
    assert_eq!((e0.index, e1.index), (0, 1));

    // Deleting: a class with children is refused; a leaf goes; then its parent.
    let r = rtnl.execute(&[
        Request::ClassDel {
            ifindex: v0,
            classid: handle(1, 1),
        },
        Request::ClassDel {
            ifindex: v0,
            classid: handle(0x10, 1),
        },
        Request::ClassDel {
            ifindex: v0,
            classid: handle(1, 2),
        },
    ]);
    let busy = r[0].as_ref().unwrap_err();
    println!("delete of a class with children: {busy}");
    assert_eq!(busy.errno, libc::EBUSY);
    assert!(r[1].is_ok() && r[2].is_ok(), "{r:?}");
    let c = classes_by_handle(&mut rtnl, v0);
    assert!(!c.contains_key(&0x10002) && !c.contains_key(&0x100001));
    assert!(!ns
        .tc(&["class", "show", "dev", "v0"])
        .contains("class htb 1:2 "));

    // Deleting the nested qdisc takes its classes with it.
    all_ok(rtnl.execute(&[Request::QdiscDel {
        ifindex: v0,
        parent: handle(1, 3),
        handle: handle(0x10, 0),
    }]));
    assert!(!rtnl
        .qdiscs()
        .unwrap()
        .iter()
        .any(|q| q.handle == handle(0x10, 0)));
}

/// ret #-1: every packet matches.
fn match_all() -> Vec<SockFilter> {
    vec![SockFilter::new(0x06, 0, 0, u32::MAX)]
}

/// ld #mark; jeq #0 → ret #0; and #0xffff; or #0x10000; ret a: the class
/// is 1:(mark & 0xffff), unmarked packets are not classified.
fn class_from_mark() -> Vec<SockFilter> {
    vec![
        SockFilter::new(0x20, 0, 0, 0xffff_f014), // ld #mark (SKF_AD_OFF + SKF_AD_MARK)
        SockFilter::new(0x15, 0, 1, 0),           // jeq #0, next, skip 1
        SockFilter::new(0x06, 0, 0, 0),           // ret #0
        SockFilter::new(0x54, 0, 0, 0xffff),      // and #0xffff
        SockFilter::new(0x44, 0, 0, 0x10000),     // or #0x10000
        SockFilter::new(0x16, 0, 0, 0),           // ret a
    ]
}

#[test]
fn clsact_bpf_mirred_to_ifb() {
    let _k = one_at_a_time();
    let Some(ns) = Netns::new("mirred") else {
        return;
    };
    ns.route_out_of_v0();
    let mut rtnl = Rtnl::open_in_netns(&ns.0).unwrap();
    let v0 = ifindex(&mut rtnl, "v0");
    all_ok(rtnl.execute(&[Request::LinkAddIfb {
        name: "tg-ifb1".into(),
    }]));
    let ifb = ifindex(&mut rtnl, "tg-ifb1");
    all_ok(rtnl.execute(&[
        Request::LinkSetUp { ifindex: ifb },
        // HTB on the IFB with a default class, to count redirected packets.
        htb_root(ifb, 1),
        class(
            ifb,
            handle(1, 1),
            handle(1, 0),
            10_000_000,
            10_000_000,
            None,
            None,
            0,
            0,
        ),
        Request::QdiscAddClsact { ifindex: v0 },
        Request::BpfFilter {
            ifindex: v0,
            parent: CLSACT_EGRESS,
            prio: 0xc000,
            protocol: ETH_P_ALL,
            handle: 1,
            ops: match_all(),
            classid: None,
            redirect_egress_to: Some(ifb),
            replace: false,
        },
    ]));

    let clsact = rtnl
        .qdiscs()
        .unwrap()
        .into_iter()
        .find(|q| q.ifindex == v0 && q.kind == "clsact")
        .expect("clsact");
    assert_eq!((clsact.handle, clsact.parent), (CLSACT_HANDLE, TC_H_CLSACT));

    let filters = rtnl.filters(v0, CLSACT_EGRESS).unwrap();
    // The classifier instance (handle 0), then the filter.
    assert_eq!(filters.len(), 2);
    assert!(filters
        .iter()
        .all(|f| f.prio == 0xc000 && f.protocol == ETH_P_ALL && f.kind == "bpf"));
    assert_eq!((filters[0].handle, filters[0].bpf.is_none()), (0, true));
    let f = &filters[1];
    assert_eq!((f.handle, f.parent), (1, CLSACT_EGRESS));
    let bpf = f.bpf.as_ref().unwrap();
    assert_eq!(bpf.ops, match_all());
    assert_eq!(bpf.redirect_ifindex(), Some(ifb));
    let m = bpf.actions[0].mirred.unwrap();
    assert_eq!((m.action, m.eaction), (TC_ACT_STOLEN, TCA_EGRESS_REDIR));
    let text = ns.tc(&["filter", "show", "dev", "v0", "egress"]);
    assert!(text.contains("pref 49152 bpf chain 0 handle 0x1"), "{text}");
    assert!(text.contains("bytecode '1,6 0 0 4294967295'"), "{text}");
    assert!(
        text.contains("mirred (Egress Redirect to device tg-ifb1) stolen"),
        "{text}"
    );

    // Packets leaving v0 go through the IFB's HTB.
    ns.ping(None);
    let st = classes_by_handle(&mut rtnl, ifb)[&0x10001].stats.unwrap();
    assert!(st.packets >= 3, "redirected packets reach the IFB: {st:?}");
    let q = rtnl
        .qdiscs()
        .unwrap()
        .into_iter()
        .find(|q| q.ifindex == ifb && q.kind == "htb")
        .unwrap();
    assert!(q.stats.unwrap().packets >= 3);

    // Replace in place with a mark selector: still one filter.
    let mark_is_7 =
        SockFilter::parse_tc_bytecode("4,32 0 0 4294963220,21 0 1 7,6 0 0 4294967295,6 0 0 0")
            .unwrap();
    all_ok(rtnl.execute(&[Request::BpfFilter {
        ifindex: v0,
        parent: CLSACT_EGRESS,
        prio: 0xc000,
        protocol: ETH_P_ALL,
        handle: 1,
        ops: mark_is_7.clone(),
        classid: None,
        redirect_egress_to: Some(ifb),
        replace: true,
    }]));
    let filters = rtnl.filters(v0, CLSACT_EGRESS).unwrap();
    assert_eq!(filters.len(), 2);
    assert_eq!(filters[1].bpf.as_ref().unwrap().ops, mark_is_7);
    // Adding it again without replace is refused.
    let r = rtnl.execute(&[Request::BpfFilter {
        ifindex: v0,
        parent: CLSACT_EGRESS,
        prio: 0xc000,
        protocol: ETH_P_ALL,
        handle: 1,
        ops: match_all(),
        classid: None,
        redirect_egress_to: Some(ifb),
        replace: false,
    }]);
    println!("add of an existing filter: {}", r[0].as_ref().unwrap_err());
    assert_eq!(r[0].as_ref().unwrap_err().errno, libc::EEXIST);

    all_ok(rtnl.execute(&[Request::FilterDel {
        ifindex: v0,
        parent: CLSACT_EGRESS,
        prio: 0xc000,
        protocol: ETH_P_ALL,
    }]));
    assert!(rtnl.filters(v0, CLSACT_EGRESS).unwrap().is_empty());
    all_ok(rtnl.execute(&[Request::QdiscDel {
        ifindex: v0,
        parent: TC_H_CLSACT,
        handle: CLSACT_HANDLE,
    }]));
    assert!(!ns.tc(&["qdisc", "show", "dev", "v0"]).contains("clsact"));
}

#[test]
fn bpf_classid_filter_on_htb() {
    let _k = one_at_a_time();
    let Some(ns) = Netns::new("classid") else {
        return;
    };
    ns.route_out_of_v0();
    let mut rtnl = Rtnl::open_in_netns(&ns.0).unwrap();
    let v0 = ifindex(&mut rtnl, "v0");
    all_ok(rtnl.execute(&[
        htb_root(v0, 1),
        class(
            v0,
            handle(1, 1),
            handle(1, 0),
            10_000_000,
            10_000_000,
            None,
            None,
            0,
            0,
        ),
        class(
            v0,
            handle(1, 5),
            handle(1, 0),
            10_000_000,
            10_000_000,
            None,
            None,
            0,
            0,
        ),
        Request::BpfFilter {
            ifindex: v0,
            parent: handle(1, 0),
            prio: 1,
            protocol: ETH_P_ALL,
            handle: 1,
            ops: class_from_mark(),
            classid: None,
            redirect_egress_to: None,
            replace: false,
        },
    ]));
    let filters = rtnl.filters(v0, handle(1, 0)).unwrap();
    let f = filters.iter().find(|f| f.handle == 1).expect("the filter");
    let bpf = f.bpf.as_ref().unwrap();
    assert_eq!(bpf.ops, class_from_mark());
    assert!(bpf.actions.is_empty() && bpf.classid.is_none());
    assert_eq!((f.parent, f.prio), (handle(1, 0), 1));
    let text = ns.tc(&["filter", "show", "dev", "v0"]);
    assert!(
        text.contains(
            "bytecode '6,32 0 0 4294963220,21 0 1 0,6 0 0 0,84 0 0 65535,68 0 0 65536,22 0 0 0'"
        ),
        "{text}"
    );

    // Marked pings land in 1:5, unmarked ones in the default 1:1 (which
    // also sees the namespace's own IPv6 neighbour discovery).
    ns.ping(Some(5));
    let c = classes_by_handle(&mut rtnl, v0);
    let (five, one) = (c[&0x10005].stats.unwrap(), c[&0x10001].stats.unwrap());
    assert_eq!(five.packets, 3, "marked packets in 1:5: {five:?}");
    assert_eq!(five.bytes, 3 * 98, "{five:?}");
    ns.ping(None);
    let c = classes_by_handle(&mut rtnl, v0);
    assert!(c[&0x10001].stats.unwrap().packets >= one.packets + 3);
    assert_eq!(c[&0x10005].stats.unwrap(), five);

    // With a classid and no program verdict of its own (ret #-1).
    all_ok(rtnl.execute(&[Request::BpfFilter {
        ifindex: v0,
        parent: handle(1, 0),
        prio: 1,
        protocol: ETH_P_ALL,
        handle: 1,
        ops: match_all(),
        classid: Some(handle(1, 5)),
        redirect_egress_to: None,
        replace: true,
    }]));
    let filters = rtnl.filters(v0, handle(1, 0)).unwrap();
    let f = filters.iter().find(|f| f.handle == 1).expect("the filter");
    assert_eq!(f.bpf.as_ref().unwrap().classid, Some(handle(1, 5)));
    assert!(ns
        .tc(&["filter", "show", "dev", "v0"])
        .contains("flowid 1:5"));
}

#[test]
fn an_error_does_not_stop_the_batch() {
    let _k = one_at_a_time();
    let Some(ns) = Netns::new("error") else {
        return;
    };
    let mut rtnl = Rtnl::open_in_netns(&ns.0).unwrap();
    let v0 = ifindex(&mut rtnl, "v0");
    let r = rtnl.execute(&[
        htb_root(v0, 0),
        class(
            v0,
            handle(1, 0x21),
            handle(1, 0),
            1_000_000,
            1_000_000,
            None,
            None,
            0,
            0,
        ),
        class(
            v0,
            handle(1, 0x22),
            handle(1, 0x21),
            1_000_000,
            1_000_000,
            None,
            None,
            0,
            0,
        ),
        // 1:21 has a child: refused, with an extended-ack message.
        Request::ClassDel {
            ifindex: v0,
            classid: handle(1, 0x21),
        },
        // A class in a qdisc that does not exist.
        class(
            v0,
            handle(2, 0x20),
            handle(2, 0x99),
            1_000_000,
            1_000_000,
            None,
            None,
            0,
            0,
        ),
        Request::DumpLinks,
        class(
            v0,
            handle(1, 0x23),
            handle(1, 0x22),
            1_000_000,
            1_000_000,
            None,
            None,
            0,
            0,
        ),
        Request::ClassDel {
            ifindex: 9999,
            classid: handle(1, 1),
        },
        // Kernel surprise: a parent *class* that does not exist is no
        // error. HTB puts the class at the top of its qdisc instead.
        class(
            v0,
            handle(1, 0x24),
            handle(1, 0x99),
            1_000_000,
            1_000_000,
            None,
            None,
            0,
            0,
        ),
    ]);
    assert_eq!(r.len(), 9);
    let busy = r[3].as_ref().unwrap_err();
    println!("delete of a class with a child: {busy}");
    assert_eq!((busy.index, busy.errno), (3, libc::EBUSY));
    assert_eq!(busy.message.as_deref(), Some("HTB class in use"));
    assert_eq!(busy.request, format!("delete class 1:21 on link #{v0}"));
    let e = r[4].as_ref().unwrap_err();
    println!("class in a missing qdisc: {e}");
    assert_eq!((e.index, e.errno), (4, libc::ENOENT));
    assert!(
        e.request.contains("2:20") && e.request.contains("parent 2:99"),
        "{}",
        e.request
    );
    assert_eq!(r[5].as_ref().unwrap_err().errno, libc::EINVAL);
    let bad_dev = r[7].as_ref().unwrap_err();
    println!("class delete on a missing device: {bad_dev}");
    assert_eq!(bad_dev.errno, libc::ENODEV);
    for i in [0, 1, 2, 6, 8] {
        assert!(r[i].is_ok(), "request {i}: {r:?}");
    }
    let c = classes_by_handle(&mut rtnl, v0);
    assert_eq!(
        c.keys().copied().collect::<Vec<_>>(),
        [0x10021, 0x10022, 0x10023, 0x10024]
    );
    assert_eq!(c[&0x10023].parent, handle(1, 0x22));
    assert_eq!(c[&0x10024].parent, TC_H_ROOT);

    // Dumping the classes of a device that does not exist is no error.
    assert!(rtnl.classes(9999).unwrap().is_empty());
}

/// 10,000 classes in 100 nested HTB qdiscs are created and read back (the
/// time is printed; 100,000 is a bench: `benches/nested_classes.rs`).
#[test]
fn timing_10k_classes_in_100_nested_qdiscs() {
    time_nested_classes("timing", 100, 100);
}

/// Reading one class (what the drain before a deletion and the daemon's
/// last read rely on) returns that class, and `None` for one that is not
/// there. Without `NLM_F_ECHO` the kernel answered with a bare ack, so the
/// read always came back empty and nothing drained.
#[test]
fn one_class_reads_back_alone() {
    let _k = one_at_a_time();
    let Some(ns) = Netns::new("get") else {
        return;
    };
    let mut rtnl = Rtnl::open_in_netns(&ns.0).unwrap();
    let v0 = ifindex(&mut rtnl, "v0");
    all_ok(rtnl.execute(&[
        htb_root(v0, 2),
        class(
            v0,
            handle(1, 1),
            handle(1, 0),
            10_000_000,
            20_000_000,
            None,
            None,
            0,
            0,
        ),
        class(
            v0,
            handle(1, 2),
            handle(1, 1),
            1_000_000,
            2_000_000,
            None,
            None,
            0,
            0,
        ),
    ]));
    let got = rtnl
        .class(v0, handle(1, 2))
        .unwrap()
        .expect("class 1:2 is there");
    assert_eq!(got.handle, handle(1, 2));
    assert_eq!(got.parent, handle(1, 1));
    assert!(
        got.stats.is_some(),
        "a class read alone carries its counters"
    );
    assert!(rtnl.class(v0, handle(1, 9)).unwrap().is_none());
}
