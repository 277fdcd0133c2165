//! What the kernel needs to create HTB classes in nested qdiscs, at the
//! target scale: by default 100,000 classes in 1,000 nested HTB qdiscs of
//! 100 (the same tree as `tests/rtnl.rs`'s 10,000-class test), in one
//! `Rtnl::execute` inside a fresh network namespace, then dumped back.
//! Prints the wall, user and system time of each.
//!
//! ```sh
//! cargo build --release -p linux-dataplane --bench nested_classes
//! flock -o /work/locks/bench cargo bench -p linux-dataplane --bench nested_classes -- [QDISCS] [PER_QDISC]
//! ```
//!
//! User space stays in milliseconds, but the kernel needs minutes (106 s
//! of system time at 100,000 classes measured on 6.18: see the cost note
//! in `src/rtnl.rs`). The namespace's teardown afterwards holds the RTNL
//! lock for about as long. Needs root (testkit's rule: it fails without
//! root unless `TOLLGATE_SKIP_ROOT_TESTS=1`).

#[path = "../tests/common/mod.rs"]
mod common;

fn main() {
    // `cargo bench` passes `--bench`; the numbers are ours.
    let mut args = std::env::args().skip(1).filter(|a| !a.starts_with("--"));
    let qdiscs: u16 = args.next().map_or(1000, |a| a.parse().expect("QDISCS"));
    let per_qdisc: u16 = args.next().map_or(100, |a| a.parse().expect("PER_QDISC"));
    common::htb::time_nested_classes("bench", qdiscs, per_qdisc);
}
