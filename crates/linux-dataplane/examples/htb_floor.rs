//! The kernel's floor for a full apply (issue 17): the HTB qdiscs and
//! classes tollgate made on its IFBs, created again on fresh IFBs through
//! raw rtnetlink and nothing else (no observation, no compilation, no
//! filters, no nftables), in the fewest batches `Rtnl::execute` sends.
//! `bench/apply_compare.sh` runs it after `tollgate apply`, so the floor
//! builds exactly the trees the product built, in the same run.
//!
//! For each source device (default `tg-down` and `tg-up`) it reads the
//! HTB qdiscs and classes, deletes the source's root qdisc (the kernel
//! keeps every HTB class in one kernel-wide list that each creation
//! searches, so the floor must not build beside tollgate's own trees:
//! at 50,000 tenants that made it three times slower), creates an IFB
//! `flr-N`, and times the creation of the same qdiscs and classes (same
//! handles, rates, ceils, bursts, priorities and quanta), parents before
//! children; then deletes the IFBs. Run `tollgate down` after it. One
//! JSON line on stdout: `{"classes":…,"qdiscs":…,"seconds":…}`.
//!
//! Usage (root, in the namespace where tollgate applied):
//! cargo run --release -p linux-dataplane --example htb_floor -- [DEV…]

use linux_dataplane::rtnl::Rtnl;
use std::collections::BTreeMap;
use std::time::Instant;
use tc_netlink::consts::TC_H_ROOT;
use tc_netlink::{htb_burst_bytes, Class, Qdisc, Request};

/// One device's trees, in creation order.
fn requests(ifindex: u32, qdiscs: &[Qdisc], classes: &[Class]) -> (Vec<Request>, usize, usize) {
    let htb_qdiscs: Vec<&Qdisc> = qdiscs.iter().filter(|q| q.kind == "htb").collect();
    // A qdisc hangs under the device's root or a class; a class under its
    // qdisc (reported as TC_H_ROOT) or another class. Walk from the root.
    let mut by_parent: BTreeMap<u32, Vec<&Class>> = BTreeMap::new();
    for c in classes.iter().filter(|c| c.htb.is_some()) {
        let parent = if c.parent == TC_H_ROOT {
            c.handle & 0xffff_0000
        } else {
            c.parent
        };
        by_parent.entry(parent).or_default().push(c);
    }
    let mut qdisc_under: BTreeMap<u32, Vec<&Qdisc>> = BTreeMap::new();
    for q in &htb_qdiscs {
        qdisc_under.entry(q.parent).or_default().push(q);
    }
    let mut out = Vec::new();
    let mut stack: Vec<u32> = vec![TC_H_ROOT];
    let (mut nq, mut nc) = (0, 0);
    while let Some(parent) = stack.pop() {
        for q in qdisc_under.get(&parent).into_iter().flatten() {
            let default_minor = q.htb.map_or(0, |h| h.default_minor as u16);
            out.push(Request::QdiscAddHtb {
                ifindex,
                parent,
                major: (q.handle >> 16) as u16,
                default_minor,
            });
            nq += 1;
            stack.push(q.handle);
        }
        for c in by_parent.get(&parent).into_iter().flatten() {
            let h = c.htb.expect("filtered on htb");
            out.push(Request::HtbClass {
                ifindex,
                classid: c.handle,
                parent,
                rate_bps: h.rate_bps,
                ceil_bps: h.ceil_bps,
                burst: Some(
                    htb_burst_bytes(h.rate_bps, h.buffer_ticks).min(u64::from(u32::MAX)) as u32,
                ),
                cburst: Some(
                    htb_burst_bytes(h.ceil_bps, h.cbuffer_ticks).min(u64::from(u32::MAX)) as u32,
                ),
                prio: h.prio,
                quantum: h.quantum,
                create: true,
            });
            nc += 1;
            stack.push(c.handle);
        }
    }
    (out, nq, nc)
}

fn main() {
    let mut devs: Vec<String> = std::env::args().skip(1).collect();
    if devs.is_empty() {
        devs = vec!["tg-down".into(), "tg-up".into()];
    }
    let mut nl = Rtnl::open().expect("rtnetlink socket");
    let links = nl.links().expect("links");
    let qdiscs = nl.qdiscs().expect("qdiscs");
    let mut plan = Vec::new();
    let (mut nq, mut nc) = (0, 0);
    for (i, dev) in devs.iter().enumerate() {
        let Some(src) = links.iter().find(|l| &l.name == dev) else {
            eprintln!("htb_floor: no device {dev}: run tollgate apply first");
            std::process::exit(1);
        };
        let classes = nl.classes(src.ifindex).expect("classes");
        let own: Vec<Qdisc> = qdiscs
            .iter()
            .filter(|q| q.ifindex == src.ifindex)
            .cloned()
            .collect();
        plan.push((format!("flr-{i}"), own, classes));
    }
    // tollgate's trees go first (not timed), so that the kernel-wide
    // list holds only what the floor builds.
    for dev in &devs {
        let ifindex = links.iter().find(|l| &l.name == dev).map(|l| l.ifindex);
        if let Some(ifindex) = ifindex {
            let r = nl.execute(&[Request::QdiscDel {
                ifindex,
                parent: TC_H_ROOT,
                handle: 0,
            }]);
            if let Some(Err(e)) = r.into_iter().next() {
                eprintln!("htb_floor: cannot delete {dev}'s root qdisc: {e}");
                std::process::exit(1);
            }
        }
    }
    // The IFBs are made (and brought up) before the clock starts: the
    // product's own IFBs exist before its timed trees too, in a re-apply.
    let mut made = Vec::new();
    for (name, _, _) in &plan {
        let r = nl.execute(&[Request::LinkAddIfb { name: name.clone() }]);
        if let Some(Err(e)) = r.into_iter().next() {
            eprintln!("htb_floor: cannot create {name}: {e}");
            std::process::exit(1);
        }
        let links = nl.links().expect("links");
        let l = links
            .iter()
            .find(|l| &l.name == name)
            .expect("just created");
        let _ = nl.execute(&[Request::LinkSetUp { ifindex: l.ifindex }]);
        made.push(l.ifindex);
    }
    let mut reqs = Vec::new();
    for ((_, q, c), &ifindex) in plan.iter().zip(&made) {
        let (r, a, b) = requests(ifindex, q, c);
        reqs.extend(r);
        nq += a;
        nc += b;
    }
    let start = Instant::now();
    let results = nl.execute(&reqs);
    let seconds = start.elapsed().as_secs_f64();
    let failed = results.iter().filter(|r| r.is_err()).count();
    if let Some(Err(e)) = results.iter().find(|r| r.is_err()) {
        eprintln!("htb_floor: {failed} requests failed, the first: {e}");
    }
    for ifindex in made {
        let _ = nl.execute(&[Request::LinkDel { ifindex }]);
    }
    println!("{{\"qdiscs\":{nq},\"classes\":{nc},\"failed\":{failed},\"seconds\":{seconds:.3}}}");
    if failed > 0 {
        std::process::exit(1);
    }
}
