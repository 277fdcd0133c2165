//! A small router in network namespaces for the traffic tests, with
//! tollgate applied by its own binary, and iperf3 and ping as the
//! measuring tools.

// Shared by several test binaries, each using a part of it.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The upstream's address that every flow goes to.
pub const SERVER: &str = "198.51.100.1";

/// The namespaces of one test, removed (with every iperf3 they ran) on drop.
pub struct Router {
    pub host: String,
    pub upstream: String,
    pub tenants: Vec<String>,
    tag: String,
    policy: PathBuf,
    /// tollgate's state directory for this router, never the host's.
    state: PathBuf,
}

impl Router {
    /// Builds the upstream, the router and `n` tenant namespaces.
    pub fn new(tag: &str, n: u32) -> Router {
        let id = std::process::id();
        let tag = format!("tgt-{tag}{id}");
        let r = Router {
            host: format!("{tag}-h"),
            upstream: format!("{tag}-u"),
            tenants: (1..=n).map(|k| format!("{tag}-t{k}")).collect(),
            policy: std::env::temp_dir().join(format!("{tag}.toml")),
            state: std::env::temp_dir().join(format!("{tag}-state")),
            tag,
        };
        let (h, u) = (&r.host, &r.upstream);
        let mut script = format!(
            "set -e
            for n in {h} {u}; do ip netns add $n; ip -n $n link set lo up; done
            ip link add wan0 netns {h} type veth peer name up0 netns {u}
            ip -n {h} addr add 192.0.2.1/30 dev wan0; ip -n {u} addr add 192.0.2.2/30 dev up0
            ip -n {h} link set wan0 up; ip -n {u} link set up0 up
            ip -n {u} addr add {SERVER}/24 dev lo
            ip -n {u} route add 100.64.0.0/16 via 192.0.2.1
            ip -n {h} route add 198.51.100.0/24 via 192.0.2.2
            ip -n {h} link add lan0 type bridge; ip -n {h} link set lan0 up
            ip netns exec {h} sysctl -qw net.ipv4.ip_forward=1
            "
        );
        for (k, t) in r.tenants.iter().enumerate() {
            let k = k + 1;
            script.push_str(&format!(
                "ip netns add {t}; ip -n {t} link set lo up
                ip link add lp{k} netns {h} type veth peer name eth0 netns {t}
                ip -n {h} link set lp{k} master lan0 up
                ip -n {h} addr add 100.64.{k}.1/24 dev lan0
                ip -n {t} addr add 100.64.{k}.2/24 dev eth0; ip -n {t} link set eth0 up
                ip -n {t} route add default via 100.64.{k}.1
                "
            ));
        }
        // Built before the script runs, so a failing script still cleans up.
        sh(&script);
        for k in 1..=n {
            sh(&format!(
                "ip netns exec {u} bash -c 'exec -a {} iperf3 -s -D -B {SERVER} -p {}'",
                r.process_tag(),
                5200 + k
            ));
        }
        std::thread::sleep(Duration::from_millis(300));
        r
    }

    /// Every iperf3 the test starts carries this in its command line.
    fn process_tag(&self) -> String {
        format!("{}-iperf", self.tag)
    }

    /// Runs `tollgate` inside the router, and returns its output.
    pub fn tollgate(&self, args: &[&str]) -> String {
        let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .env("TOLLGATE_STATE_DIR", &self.state)
            .arg("--netns")
            .arg(&self.host)
            .args(args)
            .output()
            .expect("run tollgate");
        assert!(
            o.status.success(),
            "tollgate {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// Writes the policy to this test's file and applies it; returns the
    /// file's path for later commands.
    pub fn apply(&self, policy: &str) -> String {
        std::fs::write(&self.policy, policy).expect("write the policy");
        let path = self.policy.display().to_string();
        self.tollgate(&["apply", "-c", &path]);
        path
    }

    fn tenant(&self, k: u32) -> &str {
        &self.tenants[k as usize - 1]
    }

    /// Starts one iperf3 client per tenant at once and returns each one's
    /// received Mbit/s, the first second (TCP's ramp) left out.
    fn tcp(&self, ks: &[u32], secs: u32, reverse: bool) -> Vec<f64> {
        let children: Vec<Child> = ks
            .iter()
            .map(|&k| {
                let mut args = vec![
                    "netns".to_string(),
                    "exec".into(),
                    self.tenant(k).into(),
                    "iperf3".into(),
                    "-c".into(),
                    SERVER.into(),
                    "-p".into(),
                    (5200 + k).to_string(),
                    "-t".into(),
                    (secs + 1).to_string(),
                    "-O".into(),
                    "1".into(),
                    "-J".into(),
                ];
                if reverse {
                    args.push("-R".into());
                }
                Command::new("ip")
                    .args(&args)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .expect("start iperf3")
            })
            .collect();
        children
            .into_iter()
            .map(|c| {
                let o = c.wait_with_output().expect("iperf3 ends");
                let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
                    panic!(
                        "iperf3 printed no JSON ({e}):\n{}{}",
                        String::from_utf8_lossy(&o.stdout),
                        String::from_utf8_lossy(&o.stderr)
                    )
                });
                v["end"]["sum_received"]["bits_per_second"]
                    .as_f64()
                    .expect("a received rate")
                    / 1e6
            })
            .collect()
    }

    /// Download rates (upstream → tenant) of the given tenants, at once.
    pub fn download(&self, ks: &[u32], secs: u32) -> Vec<f64> {
        self.tcp(ks, secs, true)
    }

    /// Upload rates (tenant → upstream) of the given tenants, at once.
    pub fn upload(&self, ks: &[u32], secs: u32) -> Vec<f64> {
        self.tcp(ks, secs, false)
    }

    /// Runs a TCP download of `secs` seconds (after one left out) to tenant
    /// `k` and returns iperf3's payload rate and, in Mbit/s, what the
    /// tenant's download classes sent over 3 s near its start, from their
    /// counters (`tollgate status`).
    pub fn download_and_count(&self, k: u32, policy: &str, secs: u32) -> (f64, f64) {
        let bulk = Command::new("ip")
            .args(["netns", "exec", self.tenant(k), "iperf3", "-c", SERVER])
            .args(["-p", &(5200 + k).to_string(), "-R", "-O", "1", "-J"])
            .args(["-t", &(secs + 1).to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start iperf3");
        std::thread::sleep(Duration::from_secs(2));
        let status: serde_json::Value = serde_json::from_str(&self.tollgate(&[
            "status",
            "--json",
            "--interval",
            "3s",
            "-c",
            policy,
        ]))
        .expect("status --json");
        let counted: f64 = status["classes"]
            .as_array()
            .expect("classes")
            .iter()
            .filter(|c| c["tenant"] == k && c["direction"] == "down")
            .filter_map(|c| c["bits_per_second"].as_f64())
            .sum::<f64>()
            / 1e6;
        let out = bulk.wait_with_output().expect("iperf3 ends");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("iperf3 JSON");
        let payload = v["end"]["sum_received"]["bits_per_second"]
            .as_f64()
            .expect("a received rate")
            / 1e6;
        (payload, counted)
    }

    /// Pings the upstream from tenant `k` while a TCP download saturates it.
    pub fn ping_under_download(&self, k: u32) -> Ping {
        let bulk = Command::new("ip")
            .args(["netns", "exec", self.tenant(k), "iperf3", "-c", SERVER])
            .args(["-p", &(5200 + k).to_string(), "-R", "-t", "8"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start iperf3");
        // Let the download fill its queue before measuring.
        std::thread::sleep(Duration::from_secs(2));
        let out = Command::new("ip")
            .args(["netns", "exec", self.tenant(k), "ping", "-n", "-c", "20"])
            .args(["-i", "0.2", "-W", "2", SERVER])
            .output()
            .expect("run ping");
        let _ = bulk.wait_with_output();
        let text = String::from_utf8_lossy(&out.stdout);
        let mut rtts: Vec<f64> = text
            .lines()
            .filter_map(|l| l.split("time=").nth(1))
            .filter_map(|t| t.split_whitespace().next()?.parse().ok())
            .collect();
        rtts.sort_by(f64::total_cmp);
        Ping {
            sent: 20,
            received: rtts.len(),
            median_ms: rtts.get(rtts.len() / 2).copied().unwrap_or(f64::INFINITY),
        }
    }

    /// Where packets could have been lost: the shaper's drop counters and
    /// each tenant's UDP receive-buffer overflows.
    pub fn drops(&self) -> String {
        let mut out = String::new();
        for dev in ["tg-down", "tg-up"] {
            let o = Command::new("ip")
                .args([
                    "netns", "exec", &self.host, "tc", "-s", "qdisc", "show", "dev", dev,
                ])
                .output()
                .expect("run tc");
            let dropped: u64 = String::from_utf8_lossy(&o.stdout)
                .split("dropped ")
                .skip(1)
                .filter_map(|t| t.split(',').next()?.trim().parse::<u64>().ok())
                .sum();
            out.push_str(&format!("{dev}: {dropped} dropped by qdiscs; "));
        }
        for t in &self.tenants {
            let o = Command::new("ip")
                .args(["netns", "exec", t, "nstat", "-az", "UdpRcvbufErrors"])
                .output()
                .expect("run nstat");
            let n = String::from_utf8_lossy(&o.stdout)
                .lines()
                .find(|l| l.starts_with("UdpRcvbufErrors"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .unwrap_or(0);
            out.push_str(&format!("{t}: {n} UDP receive-buffer overflows; "));
        }
        out
    }

    /// Starts steady UDP downloads, one per `(tenant, rate)`, that run until
    /// [`Streams::finish`] (or at most ten minutes).
    pub fn udp_streams(&self, flows: &[(u32, &str)]) -> Streams {
        let children = flows
            .iter()
            .map(|&(k, rate)| {
                let log = std::env::temp_dir().join(format!("{}-udp{k}.log", self.tag));
                let file = std::fs::File::create(&log).expect("create the stream's log");
                let child = Command::new("ip")
                    .args(["netns", "exec", self.tenant(k), "iperf3", "-c", SERVER])
                    .args(["-p", &(5200 + k).to_string(), "-u", "-b", rate, "-R"])
                    .args(["-t", "600", "-i", "1", "--forceflush"])
                    .stdout(file)
                    .stderr(Stdio::null())
                    .spawn()
                    .expect("start iperf3");
                (
                    child,
                    log,
                    rate.trim_end_matches('M').parse().unwrap_or(0.0),
                )
            })
            .collect();
        std::thread::sleep(Duration::from_secs(2));
        Streams { children }
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        let _ = Command::new("pkill")
            .args(["-f", &self.process_tag()])
            .status();
        for ns in self.tenants.iter().chain([&self.host, &self.upstream]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
        let _ = std::fs::remove_file(&self.policy);
        let _ = std::fs::remove_dir_all(&self.state);
    }
}

/// What ping saw.
pub struct Ping {
    pub sent: usize,
    pub received: usize,
    pub median_ms: f64,
}

/// Running UDP streams.
pub struct Streams {
    children: Vec<(Child, PathBuf, f64)>,
}

/// What one UDP stream's receiver counted, per whole second.
pub struct StreamResult {
    pub offered_mbit: f64,
    pub intervals: usize,
    pub lost: u64,
    pub total: u64,
    pub min_interval_mbit: f64,
    pub median_interval_mbit: f64,
}

pub struct StreamsResult {
    pub streams: Vec<StreamResult>,
}

impl StreamsResult {
    pub fn describe(&self) -> String {
        self.streams
            .iter()
            .enumerate()
            .map(|(i, s)| {
                format!(
                    "stream {}: {} Mbit/s offered, {} one-second intervals, lost {}/{}, per second min {:.2} median {:.2} Mbit/s\n",
                    i + 1,
                    s.offered_mbit,
                    s.intervals,
                    s.lost,
                    s.total,
                    s.min_interval_mbit,
                    s.median_interval_mbit
                )
            })
            .collect()
    }
}

impl Streams {
    /// Stops the streams and reads what their receivers reported each
    /// second. The first second is left out of the minimum, because the
    /// stream starts partway into it.
    pub fn finish(self) -> StreamsResult {
        let mut streams = Vec::new();
        for (mut child, log, offered) in self.children {
            let _ = child.kill();
            let _ = child.wait();
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            let _ = std::fs::remove_file(&log);
            let rows: Vec<(f64, u64, u64)> = text.lines().filter_map(interval).collect();
            let mut rates: Vec<f64> = rows.iter().skip(1).map(|r| r.0).collect();
            rates.sort_by(f64::total_cmp);
            streams.push(StreamResult {
                offered_mbit: offered,
                intervals: rows.len(),
                lost: rows.iter().map(|r| r.1).sum(),
                total: rows.iter().map(|r| r.2).sum(),
                min_interval_mbit: rates.first().copied().unwrap_or(0.0),
                median_interval_mbit: rates.get(rates.len() / 2).copied().unwrap_or(0.0),
            });
        }
        StreamsResult { streams }
    }
}

/// One per-second line of iperf3's UDP receiver, such as
/// `[  5]   1.00-2.00   sec   488 KBytes  4.00 Mbits/sec  0.012 ms  0/345 (0%)`:
/// the rate in Mbit/s, and lost and total datagrams.
fn interval(line: &str) -> Option<(f64, u64, u64)> {
    // iperf3 pads the line with spaces after the percentage.
    let line = line.trim_end();
    if !line.contains(" sec ") || !line.ends_with("%)") {
        return None;
    }
    let words: Vec<&str> = line.split_whitespace().collect();
    let unit = words.iter().position(|w| w.ends_with("bits/sec"))?;
    let value: f64 = words.get(unit.checked_sub(1)?)?.parse().ok()?;
    let scale = match words[unit] {
        "Gbits/sec" => 1e3,
        "Mbits/sec" => 1.0,
        "Kbits/sec" => 1e-3,
        _ => 1e-6,
    };
    let (lost, total) = words.iter().rev().nth(1)?.split_once('/')?;
    Some((value * scale, lost.parse().ok()?, total.parse().ok()?))
}

/// Jain's fairness index: 1 when all are equal, 1/n when one takes all.
pub fn jain(xs: &[f64]) -> f64 {
    let sum: f64 = xs.iter().sum();
    let squares: f64 = xs.iter().map(|x| x * x).sum();
    sum * sum / (xs.len() as f64 * squares)
}

fn sh(script: &str) {
    let out = Command::new("bash")
        .args(["-c", script])
        .output()
        .expect("run bash");
    assert!(
        out.status.success(),
        "failed: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn iperf3_interval_lines_are_read() {
    let l = "[  5]   1.00-2.00   sec   488 KBytes  4.00 Mbits/sec  0.012 ms  2/345 (0.58%)  ";
    assert_eq!(interval(l), Some((4.0, 2, 345)));
    assert_eq!(interval("[ ID] Interval  Transfer  Bitrate"), None);
    assert!((jain(&[1.0, 1.0, 1.0, 1.0]) - 1.0).abs() < 1e-12);
    assert!((jain(&[4.0, 0.0, 0.0, 0.0]) - 0.25).abs() < 1e-12);
}
