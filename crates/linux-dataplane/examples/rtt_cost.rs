//! What passive TCP RTT (`[latency] tcp_rtt = true`, `bpf/rtt.h`) adds
//! to the eBPF classifier, per packet, measured in the kernel with
//! `BPF_PROG_TEST_RUN`: `tg_down` run on three frames to a tenant among N
//! (as `classify_cost`), alternately with `F_RTT` off and on, in rounds:
//! a 64-byte UDP frame (RTT tracking only tests the protocol), a TCP ACK
//! with a timestamp option whose TSval stays the same (the common case:
//! the flow's state and the echo's lookup, nothing remembered), and one
//! whose TSval grows every run (at most one remembered per 100 ms, the
//! rest as above). The kernel times only the program's runs.
//!
//! Usage (root): cargo run --release -p linux-dataplane --example rtt_cost -- [N] [RUNS] [ROUNDS]

use aya::maps::Array;
use aya::programs::SchedClassifier;
use bpf_classify::config::{FLAGS, F_RTT};
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
    let udp = udp_frame(tenant(n - 1));
    // 66 bytes: the same addresses, TCP 5201 -> 40000, ACK, NOP NOP TS.
    let mut tcp = vec![0u8; 66];
    tcp[..34].copy_from_slice(&udp[..34]);
    tcp[16..18].copy_from_slice(&52u16.to_be_bytes());
    tcp[23] = 6;
    tcp[34..54].copy_from_slice(&[
        0x14, 0x51, 0x9c, 0x40, 0, 0, 0, 1, 0, 0, 0, 1, 0x80, 0x10, 0xff, 0xff, 0, 0, 0, 0,
    ]);
    tcp[54..58].copy_from_slice(&[1, 1, 8, 10]);
    tcp[58..62].copy_from_slice(&1000u32.to_be_bytes());
    tcp[62..66].copy_from_slice(&77u32.to_be_bytes());
    let prog: &mut SchedClassifier = obj.program_mut("tg_down").unwrap().try_into().unwrap();
    prog.load().expect("load tg_down");
    let fd = prog.fd().unwrap().as_fd().as_raw_fd() as u32;
    let mut out = vec![0u8; 256];
    let mut ratios: [Vec<f64>; 3] = Default::default();
    let mut tsval = 2000u32;
    for round in 1..=rounds {
        let mut line = format!("round {round}:");
        for (k, name) in ["udp", "tcp", "tcp-new-tsval"].into_iter().enumerate() {
            let mut ns = [0f64; 2];
            for (i, on) in [false, true].into_iter().enumerate() {
                let mut cfg: Array<_, u32> =
                    Array::try_from(obj.map_mut("tg_config").unwrap()).unwrap();
                cfg.set(FLAGS, if on { F_RTT } else { 0 }, 0).unwrap();
                cfg.set(1, 2, 0).unwrap();
                let mut total = 0u64;
                for _ in 0..runs {
                    let frame = match k {
                        0 => &udp,
                        1 => &tcp,
                        _ => {
                            tsval = tsval.wrapping_add(1);
                            tcp[58..62].copy_from_slice(&tsval.to_be_bytes());
                            &tcp
                        }
                    };
                    total += u64::from(run_once(fd, frame, &mut out));
                }
                ns[i] = total as f64 / f64::from(runs);
            }
            ratios[k].push(ns[1] / ns[0]);
            line += &format!(
                " {name} off {:.1} on {:.1} ns ({:.3});",
                ns[0],
                ns[1],
                ns[1] / ns[0]
            );
        }
        println!("{line}");
    }
    for (k, name) in ["udp", "tcp", "tcp-new-tsval"].into_iter().enumerate() {
        let r = &mut ratios[k];
        r.sort_by(f64::total_cmp);
        println!(
            "RESULT rtt_cost N={n} {name}: tg_down with tcp_rtt on/off {:.3} (median of {rounds} same-round ratios, {runs} runs each)",
            r[r.len() / 2]
        );
    }
}
