//! Captures on interfaces and prints one JSON line a second: frames and
//! packets captured, the kernel's counts and drops, malformed frames, the
//! busiest host, and the process's CPU time. Used by
//! `bench/capture_rate.sh`.
//!
//! ```sh
//! cargo run --release -p packet-capture --example capture_stats -- \
//!     --iface eth0 --local 203.0.113.0/24 [--threads 2] [--fanout hash|cpu|lb] \
//!     [--sample 1] [--seconds 10]
//! ```

use std::process::ExitCode;
use std::time::{Duration, Instant};

use net_types::Prefix;
use packet_capture::{Capture, CaptureConfig, Fanout};

/// utime + stime of this process, in seconds (all threads).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the command's closing parenthesis: state is field 3,
    // utime 14 and stime 15 (so indexes 11 and 12 here).
    let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 = f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // USER_HZ is 100 on every Linux this runs on.
    ticks / 100.0
}

fn main() -> ExitCode {
    let mut ifaces = Vec::new();
    let mut locals = Vec::new();
    let mut threads = 1;
    let mut fanout = Fanout::Hash;
    let mut sample = 1;
    let mut seconds = 10u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let v = args.next().unwrap_or_default();
        match a.as_str() {
            "--iface" => ifaces.push(v),
            "--local" => match Prefix::parse(&v) {
                Ok(p) => locals.push(p),
                Err(e) => {
                    eprintln!("--local {v}: {e}");
                    return ExitCode::from(1);
                }
            },
            "--threads" => threads = v.parse().unwrap_or(1),
            "--fanout" => {
                fanout = match v.as_str() {
                    "cpu" => Fanout::Cpu,
                    "lb" => Fanout::LoadBalance,
                    _ => Fanout::Hash,
                }
            }
            "--sample" => sample = v.parse().unwrap_or(1),
            "--seconds" => seconds = v.parse().unwrap_or(10),
            _ => {
                eprintln!("unknown argument {a}");
                return ExitCode::from(1);
            }
        }
    }
    let mut config = CaptureConfig::new(ifaces, locals);
    config.threads_per_interface = threads;
    config.fanout = fanout;
    config.sample_one_in = sample;
    let (capture, ticks) = match Capture::start(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("capture: {e}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();
    let mut second = Sum::default();
    let mut total = Sum::default();
    let cpu0 = cpu_seconds();
    let mut cpu_prev = cpu0;
    let mut last = Instant::now();
    while start.elapsed() < Duration::from_secs(seconds) {
        let Ok(t) = ticks.recv_timeout(Duration::from_secs(1)) else {
            continue;
        };
        second.add(&t);
        total.add(&t);
        if last.elapsed() >= Duration::from_secs(1) {
            let secs = last.elapsed().as_secs_f64();
            let cpu = cpu_seconds();
            println!(
                "{}",
                serde_json::json!({
                    "t": start.elapsed().as_secs_f64(),
                    "frames_per_s": second.frames as f64 / secs,
                    "packets_per_s": second.packets as f64 / secs,
                    "kernel_packets_per_s": second.kernel_packets as f64 / secs,
                    "kernel_drops": second.drops,
                    "ring_full_events": second.freezes,
                    "malformed": second.malformed,
                    "hosts": second.hosts,
                    "busiest_host_in_a_tick": second.top.map(|(a, d, p)| format!("{a} {d:?} {p} packets")),
                    "cpu_s": cpu - cpu_prev,
                    "tick_ms_min": second.tick_ms.map(|t| t.0),
                    "tick_ms_max": second.tick_ms.map(|t| t.1),
                })
            );
            cpu_prev = cpu;
            second = Sum::default();
            last = Instant::now();
        }
    }
    let cpu = cpu_seconds() - cpu0;
    let result = capture.stop();
    println!(
        "{}",
        serde_json::json!({
            "total": true,
            "seconds": start.elapsed().as_secs_f64(),
            "frames": total.frames,
            "packets": total.packets,
            "kernel_packets": total.kernel_packets,
            "kernel_drops": total.drops,
            "ring_full_events": total.freezes,
            "malformed": total.malformed,
            "tick_ms_min": total.tick_ms.map(|t| t.0),
            "tick_ms_max": total.tick_ms.map(|t| t.1),
            "cpu_s": cpu,
            "cpu_s_per_million_frames": if total.frames > 0 { cpu / (total.frames as f64 / 1e6) } else { 0.0 },
        })
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("capture: {e}");
            ExitCode::from(2)
        }
    }
}

#[derive(Default)]
struct Sum {
    frames: u64,
    packets: u64,
    kernel_packets: u64,
    drops: u64,
    freezes: u64,
    malformed: u64,
    hosts: usize,
    /// The shortest and longest tick, in milliseconds.
    tick_ms: Option<(f64, f64)>,
    top: Option<(std::net::IpAddr, packet_capture::Direction, u64)>,
}

impl Sum {
    fn add(&mut self, t: &packet_capture::TickReport) {
        self.frames += t.frames;
        self.packets += t.hosts.iter().map(|h| h.counters.packets).sum::<u64>()
            + t.internal.packets
            + t.foreign.packets
            + t.overflow.packets;
        self.kernel_packets += t.kernel_packets;
        self.drops += t.kernel_drops;
        self.freezes += t.ring_full_events;
        self.malformed += t.malformed;
        self.hosts = self.hosts.max(t.hosts.len());
        let ms = (t.ended - t.started).as_secs_f64() * 1e3;
        self.tick_ms = Some(match self.tick_ms {
            None => (ms, ms),
            Some((lo, hi)) => (lo.min(ms), hi.max(ms)),
        });
        for h in &t.hosts {
            if self.top.is_none_or(|(_, _, p)| h.counters.packets > p) {
                self.top = Some((h.addr, h.direction, h.counters.packets));
            }
        }
    }
}
