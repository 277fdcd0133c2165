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

use aya::maps::lpm_trie::Key;
use aya::maps::{Array, HashMap as BpfHash, LpmTrie};
use aya::programs::SchedClassifier;
use bpf_classify::config::{FLAGS, F_COUNT};
use std::os::fd::{AsFd, AsRawFd};

const BPF_PROG_TEST_RUN: libc::c_long = 10;

#[repr(C)]
#[derive(Default)]
struct TestRun {
    prog_fd: u32,
    retval: u32,
    data_size_in: u32,
    data_size_out: u32,
    data_in: u64,
    data_out: u64,
    repeat: u32,
    duration: u32,
    ctx_size_in: u32,
    ctx_size_out: u32,
    ctx_in: u64,
    ctx_out: u64,
    flags: u32,
    cpu: u32,
    batch_size: u32,
    _pad: u32,
}

/// One run of the program on `frame`: the kernel's ns.
#[allow(unsafe_code)]
fn run_once(fd: u32, frame: &[u8], out: &mut [u8]) -> u32 {
    let mut a = TestRun {
        prog_fd: fd,
        data_size_in: frame.len() as u32,
        data_size_out: out.len() as u32,
        data_in: frame.as_ptr() as u64,
        data_out: out.as_mut_ptr() as u64,
        repeat: 1,
        ..Default::default()
    };
    // SAFETY: `a` is `bpf_attr.test`; the buffers outlive the call and
    // their sizes are the ones given.
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            BPF_PROG_TEST_RUN,
            &mut a as *mut TestRun,
            std::mem::size_of::<TestRun>(),
        )
    };
    assert!(r == 0, "test run: {}", std::io::Error::last_os_error());
    a.duration
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map_or(10_000, |a| a.parse().expect("N"));
    let runs: u32 = args.next().map_or(200_000, |a| a.parse().expect("RUNS"));
    let rounds: u32 = args.next().map_or(5, |a| a.parse().expect("ROUNDS"));
    let mut obj = aya::Ebpf::load(bpf_classify::OBJECT).expect("load the object (root?)");
    let tenant = |i: u32| (0x6440_0000u32 + i + 1).to_be_bytes();
    {
        let mut t: LpmTrie<_, [u8; 4], u32> =
            LpmTrie::try_from(obj.map_mut("tg_tenants4").unwrap()).unwrap();
        for i in 0..n {
            t.insert(&Key::new(32, tenant(i)), i + 1, 0).unwrap();
        }
        let mut r: LpmTrie<_, [u8; 4], u32> =
            LpmTrie::try_from(obj.map_mut("tg_realms4").unwrap()).unwrap();
        r.insert(&Key::new(24, [192, 0, 2, 0]), 1, 0).unwrap();
        r.insert(&Key::new(24, [198, 51, 100, 0]), 1, 0).unwrap();
        let mut c: BpfHash<_, [u32; 2], u32> =
            BpfHash::try_from(obj.map_mut("tg_classes").unwrap()).unwrap();
        for i in 0..n {
            for realm in [1u32, 2] {
                let class = (2 + i / 1000) << 16 | (4 * (i % 1000) + 4);
                c.insert([i + 1, realm], class, 0).unwrap();
            }
        }
    }
    // 64 bytes: Ethernet, IPv4 (46 bytes), UDP 9 -> 5201, to the last tenant.
    let mut f = vec![0u8; 64];
    f[..6].copy_from_slice(&[2, 0, 0, 0, 0, 1]);
    f[6..12].copy_from_slice(&[2, 0, 0, 0, 0, 2]);
    f[12..14].copy_from_slice(&[0x08, 0x00]);
    f[14..34].copy_from_slice(&[
        0x45, 0, 0, 50, 0, 1, 0, 0, 64, 17, 0, 0, 198, 51, 100, 7, 0, 0, 0, 0,
    ]);
    f[30..34].copy_from_slice(&tenant(n - 1));
    f[34..42].copy_from_slice(&[0, 9, 0x14, 0x51, 0, 30, 0, 0]);
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
