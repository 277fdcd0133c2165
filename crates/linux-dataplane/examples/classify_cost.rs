//! What counting per address adds to the eBPF classifier, per packet,
//! measured in the kernel with `BPF_PROG_TEST_RUN`: `tg_down` run on a
//! 64-byte UDP frame to a tenant among N (LPM trie of N /32s, two realm
//! prefixes, N × 2 classes), alternately with `F_COUNT` off and on, in
//! rounds; each round gives both figures and their ratio. The kernel
//! times only the program's runs (`duration`, ns per run, with its timer
//! around each run since `repeat` is 1: a fresh skb each time, so every
//! run counts; with `repeat` > 1 the same skb would carry the "counted"
//! mark bit after the first run).
//!
//! Usage (root): cargo run --release -p linux-dataplane --example classify_cost -- [N] [RUNS] [ROUNDS]

use aya::maps::Array;
use aya::programs::SchedClassifier;
use bpf_classify::config::{FLAGS, F_COUNT};
use std::os::fd::{AsFd, AsRawFd};

#[path = "common/test_run.rs"]
mod test_run;

use test_run::{classifier_with_tenants, run_once, tenant, udp_frame};

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map_or(10_000, |a| a.parse().expect("N"));
    let runs: u32 = args.next().map_or(200_000, |a| a.parse().expect("RUNS"));
    let rounds: u32 = args.next().map_or(5, |a| a.parse().expect("ROUNDS"));
    let mut obj = classifier_with_tenants(n);
    let f = udp_frame(tenant(n - 1));
    let prog: &mut SchedClassifier = obj.program_mut("tg_down").unwrap().try_into().unwrap();
    prog.load().expect("load tg_down");
    let fd = prog.fd().unwrap().as_fd().as_raw_fd() as u32;
    let mut out = vec![0u8; 256];
    let mut ratios = Vec::new();
    for round in 1..=rounds {
        let mut ns = [0f64; 2];
        for (i, count) in [false, true].into_iter().enumerate() {
            let mut cfg: Array<_, u32> =
                Array::try_from(obj.map_mut("tg_config").unwrap()).unwrap();
            cfg.set(FLAGS, if count { F_COUNT } else { 0 }, 0).unwrap();
            cfg.set(1, 2, 0).unwrap();
            let total: u64 = (0..runs)
                .map(|_| u64::from(run_once(fd, &f, &mut out)))
                .sum();
            ns[i] = total as f64 / f64::from(runs);
        }
        ratios.push(ns[1] / ns[0]);
        println!(
            "round {round}: counters off {:.1} ns/packet, on {:.1} ns/packet, on/off {:.3}",
            ns[0],
            ns[1],
            ns[1] / ns[0]
        );
    }
    ratios.sort_by(f64::total_cmp);
    println!(
        "RESULT classify_cost N={n}: tg_down with counters on/off {:.3} (median of {rounds} same-round ratios, {runs} runs each)",
        ratios[ratios.len() / 2]
    );
}
