//! The per-address counter reader's cost: loads the classifier's object
//! (its maps only, no program is attached), fills `tg_addrs` with N
//! addresses × both directions, then reads it every 100 ms as the daemon
//! does, changing every entry between reads, and prints the reader's CPU
//! time per tick (its thread's clock) with batch lookups and key by key.
//!
//! Usage (root): cargo run --release -p linux-dataplane --example addr_counters_cpu -- [N] [TICKS]

use aya::maps::{Map, PerCpuHashMap, PerCpuValues};
use bpf_classify::counters::{key_bytes, Way, KEY_LEN, VALUE_WORDS};
use linux_dataplane::addr_counters::{AddrCounterMap, AddrCounterReader};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

#[allow(unsafe_code)]
fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes one timespec, which `ts` is.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let n: u32 = args.next().map_or(10_000, |a| a.parse().expect("N"));
    let ticks: u32 = args.next().map_or(50, |a| a.parse().expect("TICKS"));
    let mut obj = aya::Ebpf::load(bpf_classify::OBJECT).expect("load the object (root?)");
    let Some(Map::PerCpuLruHashMap(data)) = obj.take_map(bpf_classify::counters::MAP) else {
        panic!("no tg_addrs in the object");
    };
    let id = data.info().expect("map info").id();
    let mut map: PerCpuHashMap<_, [u8; KEY_LEN], [u64; VALUE_WORDS]> =
        PerCpuHashMap::try_from(Map::PerCpuLruHashMap(data)).expect("a per-CPU hash");
    let cpus = aya::util::nr_cpus().expect("cpus");
    let addr = |i: u32| IpAddr::V4(Ipv4Addr::from(0x6440_0000 + i));
    let mut fill = |round: u64| {
        for i in 0..n {
            for way in [Way::In, Way::Out] {
                let v = PerCpuValues::try_from(vec![
                    [round * 10 + u64::from(i % 7); VALUE_WORDS];
                    cpus
                ])
                .expect("values");
                map.insert(key_bytes(addr(i), way), v, 0).expect("insert");
            }
        }
    };
    fill(1);
    for batch in [true, false] {
        let mut m = AddrCounterMap::from_id(id).expect("the map");
        if !batch {
            m.without_batches();
        }
        // The map read alone (the syscalls, the sums and the table).
        let (mut read_cpu, mut totals) = (
            Duration::ZERO,
            linux_dataplane::addr_counters::Totals::new(),
        );
        for _ in 0..10 {
            let c0 = thread_cpu();
            m.read(&mut totals).expect("read");
            read_cpu += thread_cpu() - c0;
        }
        let mut reader = AddrCounterReader::new(m).expect("first read");
        let (mut cpu, mut wall, mut worst) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
        let mut hosts = 0;
        for t in 0..ticks {
            // Every entry moves between reads (the most work for deltas).
            fill(u64::from(t) + 2);
            std::thread::sleep(Duration::from_millis(100));
            let (c0, w0) = (thread_cpu(), Instant::now());
            let tick = reader.tick().expect("tick");
            let (c, w) = (thread_cpu() - c0, w0.elapsed());
            hosts = tick.hosts.len();
            cpu += c;
            wall += w;
            worst = worst.max(w);
        }
        let per = |d: Duration| d.as_secs_f64() * 1e3 / f64::from(ticks);
        println!(
            "RESULT addr_counters N={n} ({hosts} entries, {cpus} CPUs) {}: {:.2} ms CPU per tick ({:.1}% of one core at 100 ms ticks; the map read alone {:.2} ms), {:.2} ms wall, worst {:.2} ms",
            if batch { "batch" } else { "key by key" },
            per(cpu),
            per(cpu) / 100.0 * 100.0,
            read_cpu.as_secs_f64() * 1e3 / 10.0,
            per(wall),
            worst.as_secs_f64() * 1e3
        );
    }
}
