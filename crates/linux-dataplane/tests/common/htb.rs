//! HTB requests and the nested-classes timing that the rtnetlink tests
//! (`tests/rtnl.rs`) and the class-creation bench
//! (`benches/nested_classes.rs`) share.

use super::{one_at_a_time, Netns};
use linux_dataplane::rtnl::{KernelError, Rtnl};
use std::time::Instant;
use tc_netlink::consts::TC_H_ROOT;
use tc_netlink::{handle, Request};

pub fn ifindex(rtnl: &mut Rtnl, name: &str) -> u32 {
    rtnl.links()
        .unwrap()
        .into_iter()
        .find(|l| l.name == name)
        .unwrap_or_else(|| panic!("no link {name}"))
        .ifindex
}

/// Asserts every request succeeded, showing the kernel's errors if not.
pub fn all_ok(results: Vec<Result<(), KernelError>>) {
    let errors: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err())
        .map(|e| e.to_string())
        .collect();
    assert!(errors.is_empty(), "kernel refused:\n{}", errors.join("\n"));
}

#[allow(clippy::too_many_arguments)]
pub fn class(
    ifindex: u32,
    classid: u32,
    parent: u32,
    rate_bps: u64,
    ceil_bps: u64,
    burst: Option<u32>,
    cburst: Option<u32>,
    prio: u32,
    quantum: u32,
) -> Request {
    Request::HtbClass {
        ifindex,
        classid,
        parent,
        rate_bps,
        ceil_bps,
        burst,
        cburst,
        prio,
        quantum,
        create: true,
    }
}

pub fn htb_root(ifindex: u32, default_minor: u16) -> Request {
    Request::QdiscAddHtb {
        ifindex,
        parent: TC_H_ROOT,
        major: 1,
        default_minor,
    }
}

/// CPU time of the calling thread: (user, system) in seconds.
#[allow(unsafe_code)]
pub fn thread_cpu() -> (f64, f64) {
    // SAFETY: rusage is plain data, and getrusage writes only into it.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: as above; RUSAGE_THREAD is valid on Linux.
    let ret = unsafe { libc::getrusage(libc::RUSAGE_THREAD, &mut ru) };
    assert_eq!(ret, 0);
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

/// Creates `qdiscs` nested HTB qdiscs of `per_qdisc` classes each, in one
/// [`Rtnl::execute`], and prints the time it took.
pub fn time_nested_classes(tag: &str, qdiscs: u16, per_qdisc: u16) {
    let _k = one_at_a_time();
    let Some(ns) = Netns::new(tag) else {
        return;
    };
    let mut rtnl = Rtnl::open_in_netns(&ns.0).unwrap();
    let v0 = ifindex(&mut rtnl, "v0");
    // 1: → 1:1 → 1:2…, each holding HTB qdisc (0x100+i): with a top class
    // and per_qdisc - 1 children.
    let mut reqs = vec![
        htb_root(v0, 0),
        class(
            v0,
            handle(1, 1),
            handle(1, 0),
            10_000_000_000,
            10_000_000_000,
            None,
            None,
            0,
            0,
        ),
    ];
    for i in 0..qdiscs {
        let (minor, major) = (i + 2, 0x100 + i);
        reqs.push(class(
            v0,
            handle(1, minor),
            handle(1, 1),
            100_000_000,
            1_000_000_000,
            None,
            None,
            0,
            0,
        ));
        reqs.push(Request::QdiscAddHtb {
            ifindex: v0,
            parent: handle(1, minor),
            major,
            default_minor: 0,
        });
        reqs.push(class(
            v0,
            handle(major, 1),
            handle(major, 0),
            100_000_000,
            1_000_000_000,
            None,
            None,
            0,
            0,
        ));
        for m in 2..=per_qdisc {
            reqs.push(class(
                v0,
                handle(major, m),
                handle(major, 1),
                1_000_000,
                100_000_000,
                None,
                None,
                1,
                0,
            ));
        }
    }
    let n = qdiscs as usize * per_qdisc as usize;
    let (u0, s0) = thread_cpu();
    let t0 = Instant::now();
    let results = rtnl.execute(&reqs);
    let wall = t0.elapsed();
    let (u1, s1) = thread_cpu();
    all_ok(results);
    println!(
        "execute: {} requests ({n} classes in {qdiscs} nested HTB qdiscs) in {:.3} s wall, {:.3} s user, {:.3} s system",
        reqs.len(),
        wall.as_secs_f64(),
        u1 - u0,
        s1 - s0
    );

    let t0 = Instant::now();
    let (u0, s0) = thread_cpu();
    let classes = rtnl.classes(v0).unwrap();
    let (u1, s1) = thread_cpu();
    println!(
        "dump: {} classes in {:.3} s wall, {:.3} s user, {:.3} s system",
        classes.len(),
        t0.elapsed().as_secs_f64(),
        u1 - u0,
        s1 - s0
    );
    assert_eq!(classes.len(), 1 + qdiscs as usize + n);
    assert_eq!(
        rtnl.qdiscs()
            .unwrap()
            .iter()
            .filter(|q| q.ifindex == v0 && q.kind == "htb")
            .count(),
        1 + qdiscs as usize
    );
}
