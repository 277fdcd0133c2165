//! The flow collector on loopback, without root: `tollgate flows collect`
//! as a process, fed datagrams built field by field (flow-wire's test
//! builder), checked through `flows status`, `usage` and /proc.
//!
//! The sender paces itself by the collector's socket queue
//! (`/proc/net/udp`), so that no valid datagram is dropped by the kernel
//! however small the receive buffer an unprivileged process gets, and
//! valid traffic can be checked to the byte.

#[path = "../../../flow-wire/tests/builder/mod.rs"]
#[allow(dead_code, clippy::all)]
mod builder;

use crate::daemon_site::{wait_for, Daemon};
use builder::*;
pub use builder::{set, template_record, Rng};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// (tenant, realm, direction) → (bytes, packets).
pub type Totals = BTreeMap<(u64, u64, String), (u64, u64)>;

pub const TENANT1: Ipv4Addr = Ipv4Addr::new(100, 64, 1, 2);
pub const TENANT2: Ipv4Addr = Ipv4Addr::new(100, 64, 2, 2);
pub const NATIONAL: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 1);
pub const ABROAD: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 1);

fn policy(port: u16, extra: &str) -> String {
    format!(
        r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "1gbit", up = "1gbit" }}

[realms]
default = "international"

[realms.national]
id = 1
prefixes = ["198.51.100.0/24"]

[realms.international]
id = 2

[plans.basic]
down = {{ rate = "10mbit", ceil = "100mbit" }}
up = {{ rate = "10mbit", ceil = "100mbit" }}

[flows]
listen = ["127.0.0.1:{port}"]
workers = 2
{extra}
[[flows.exporters]]
address = "127.0.0.1"
name = "lo"

[[tenants]]
id = 1
plan = "basic"
prefixes = ["100.64.1.0/24"]
measured_by = "flows"

[[tenants]]
id = 2
plan = "basic"
prefixes = ["100.64.2.0/24"]
measured_by = "flows"
"#
    )
}

/// A state directory, a policy and a collector listening on loopback.
pub struct Loop {
    pub dir: PathBuf,
    pub port: u16,
    pub to: SocketAddr,
    /// Every datagram goes from this one socket: one exporter address and
    /// port, so one worker, as the worst case for its templates.
    pub socket: UdpSocket,
    pub sent: u64,
}

impl Loop {
    pub fn new(tag: &str, extra_flows: &str) -> Loop {
        let dir = std::env::temp_dir().join(format!("tgfl-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("state")).unwrap();
        // A free port: bind, note it, let go.
        let port = UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        std::fs::write(dir.join("policy.toml"), policy(port, extra_flows)).unwrap();
        std::fs::write(dir.join("accounting.toml"), "").unwrap();
        Loop {
            to: SocketAddr::from(([127, 0, 0, 1], port)),
            socket: UdpSocket::bind("127.0.0.1:0").unwrap(),
            dir,
            port,
            sent: 0,
        }
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.join("state")
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        c.args(args)
            .env("TOLLGATE_CONFIG", self.dir.join("policy.toml"))
            .env("TOLLGATE_STATE_DIR", self.state_dir())
            .env("TOLLGATE_ACCOUNTING", self.dir.join("accounting.toml"));
        c
    }

    /// Starts `flows collect`, committing every 200 ms, and waits for its
    /// first status file.
    pub fn collector(&self) -> Daemon {
        let log = self.dir.join("collector.log");
        let child = self
            .command(&["flows", "collect", "--interval", "200ms"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start the collector");
        let d = Daemon { child, log };
        let status = self.state_dir().join("flows-status.json");
        wait_for(
            "the collector's status file",
            Duration::from_secs(15),
            || status.exists(),
        );
        d
    }

    pub fn tollgate(&self, args: &[&str]) -> String {
        let o = self.command(args).output().expect("run tollgate");
        assert!(
            o.status.success(),
            "tollgate {args:?} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    pub fn status(&self) -> serde_json::Value {
        serde_json::from_str(&self.tollgate(&["flows", "status", "--json"])).unwrap()
    }

    /// What the history holds, per tenant × realm × direction.
    pub fn recorded(&self) -> Totals {
        let v: serde_json::Value =
            serde_json::from_str(&self.tollgate(&["usage", "--json", "--since", "2000-01-01"]))
                .unwrap();
        let mut out = Totals::new();
        for t in v["tenants"].as_array().unwrap() {
            for r in t["totals"].as_array().unwrap() {
                let (tenant, realm) = (t["tenant"].as_u64().unwrap(), r["realm"].as_u64().unwrap());
                for dir in ["down", "up"] {
                    let b = r[format!("{dir}_bytes")].as_u64().unwrap();
                    let p = r[format!("{dir}_packets")].as_u64().unwrap();
                    if p > 0 || b > 0 {
                        out.insert((tenant, realm, dir.into()), (b, p));
                    }
                }
            }
        }
        out
    }

    /// Bytes waiting in the collector's sockets, from /proc/net/udp.
    fn queued(&self) -> u64 {
        let text = std::fs::read_to_string("/proc/net/udp").unwrap_or_default();
        let port = format!("0100007F:{:04X}", self.port);
        text.lines()
            .skip(1)
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.get(1) == Some(&port.as_str())).then(|| {
                    let rx = f.get(4)?.split(':').nth(1)?;
                    u64::from_str_radix(rx, 16).ok()
                })?
            })
            .sum()
    }

    /// Sends one datagram once the collector's queue has room for it (an
    /// unprivileged socket may get only ~200 kB of buffer).
    pub fn send(&mut self, d: &[u8]) {
        let start = Instant::now();
        while self.queued() > 64 << 10 {
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "the collector stopped reading its socket"
            );
            std::thread::sleep(Duration::from_micros(200));
        }
        self.socket.send_to(d, self.to).unwrap();
        self.sent += 1;
    }

    /// Waits until the collector's sockets hold nothing.
    pub fn drained(&self) {
        wait_for(
            "the collector to read its sockets",
            Duration::from_secs(10),
            || self.queued() == 0,
        );
    }

    /// Waits until the collector has counted every datagram sent.
    pub fn settle(&self) {
        wait_for(
            "the collector to count every datagram",
            Duration::from_secs(20),
            || {
                let st = self.status();
                st["totals"]["datagrams"].as_u64() == Some(self.sent)
            },
        );
    }

    /// The collector's peak resident memory, in bytes.
    pub fn peak_rss(d: &Daemon) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", d.child.id())).unwrap();
        let kb: u64 = text
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .expect("VmHWM in /proc/PID/status");
        kb * 1024
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.state_dir().join(name)
    }
}

impl Drop for Loop {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A second into the current 5-minute slot (or the next one, if this one
/// ends within 10 s), Unix ms: records timed there land in one known slot.
pub fn in_slot_ms() -> u64 {
    let now = u64::from(now_secs()) * 1000;
    let slot = 300_000;
    let start = now - now % slot;
    if now - start > slot - 10_000 {
        start + slot + 1000
    } else {
        start + 1000
    }
}

pub fn now_secs() -> u32 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32
}

/// IPFIX template 256 of `domain`: addresses, 8-byte counters, times in
/// Unix ms.
pub fn ipfix_template(domain: u32) -> Vec<u8> {
    let t = template_record(256, &[(8, 4), (12, 4), (1, 8), (2, 8), (152, 8), (153, 8)]);
    ipfix(now_secs(), 0, domain, &[set(2, &t)])
}

/// IPFIX data for template 256: records (src, dst, bytes, packets), all
/// at `at_ms`.
pub fn ipfix_data(
    domain: u32,
    seq: u32,
    at_ms: u64,
    records: &[(Ipv4Addr, Ipv4Addr, u64, u64)],
) -> Vec<u8> {
    let at = at_ms;
    let mut b = Bytes::new();
    for &(s, d, bytes, packets) in records {
        b = b.ip4(s).ip4(d).u64(bytes).u64(packets).u64(at).u64(at);
    }
    ipfix(now_secs(), seq, domain, &[set(256, &b.build())])
}

/// Adds what `records` bill to `t`.
pub fn expect(t: &mut Totals, records: &[(Ipv4Addr, Ipv4Addr, u64, u64)]) {
    let tenant = |a: Ipv4Addr| match a.octets() {
        [100, 64, k, _] => Some(u64::from(k)),
        _ => None,
    };
    let realm = |a: Ipv4Addr| {
        if a.octets()[..3] == [198, 51, 100] {
            1
        } else {
            2
        }
    };
    for &(s, d, bytes, packets) in records {
        if let Some(k) = tenant(s) {
            let e = t.entry((k, realm(d), "up".into())).or_default();
            e.0 += bytes;
            e.1 += packets;
        }
        if let Some(k) = tenant(d) {
            let e = t.entry((k, realm(s), "down".into())).or_default();
            e.0 += bytes;
            e.1 += packets;
        }
    }
}

/// A NetFlow v9 packet of `domain` with `sets`, exported now.
pub fn v9_with(domain: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    v9(1_000_000, now_secs(), 0, domain, sets.len() as u16, sets)
}

/// A NetFlow v5 header claiming `count` records, followed by one.
pub fn v5_claiming(count: u16) -> Vec<u8> {
    let mut d = v5(
        1_000_000,
        now_secs(),
        0,
        0,
        0,
        &[V5Record {
            src: TENANT1,
            dst: NATIONAL,
            packets: 1,
            bytes: 100,
            first: 999_000,
            last: 999_500,
            src_port: 1,
            dst_port: 2,
            protocol: 17,
        }],
    );
    d[2..4].copy_from_slice(&count.to_be_bytes());
    d
}

/// An sFlow v5 datagram claiming `count` samples and carrying none.
pub fn sflow_claiming(count: u32) -> Vec<u8> {
    let mut d = sflow(1, 0, &[]);
    let n = d.len();
    d[n - 4..].copy_from_slice(&count.to_be_bytes());
    d
}
