//! Two real daemons in namespaces, an agent and the central it ships to
//! (issue 16, item 3; docs/agents.md), for the agents' tests:
//!
//! - the agent is `daemon_site`'s router with one tenant and real
//!   traffic; the central is a second router (its tenant silent), its API
//!   on 192.0.2.10, reached from the agent's namespace over a veth pair
//!   (`ctl0` on both sides);
//! - tokens: the agent's in its folder as `central.token`, a read token
//!   in the central's as `read.token`.
//!
//! Needs root, iproute2, nftables, python3 and curl.

#![allow(dead_code)] // each test file uses a part

use crate::daemon_site::{send_to_tenant, sh, wait_for, Daemon, Site, ONE_TENANT_POLICY as POLICY};
use accounting::{Sample, Slot};
use history::{AddBatch, SampleQuery, SqliteOptions, SqliteStore, Store, Tenants};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

pub const CENTRAL_API: &str = "192.0.2.10:9188";

pub fn tollgate(site: &Site, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env("TOLLGATE_CONFIG", site.policy_path())
        .env("TOLLGATE_STATE_DIR", site.state_dir())
        .env("TOLLGATE_ACCOUNTING", site.dir.join("accounting.toml"))
        .output()
        .expect("run tollgate")
}

/// `tollgate --netns HOST ARGS` for a site, its clock shifted by `skew`.
pub fn tollgate_in(site: &Site, args: &[&str], skew: i64) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["--netns", &site.host])
        .args(args)
        .env("TOLLGATE_CONFIG", site.policy_path())
        .env("TOLLGATE_STATE_DIR", site.state_dir())
        .env("TOLLGATE_ACCOUNTING", site.dir.join("accounting.toml"))
        .env("TOLLGATE_CLOCK_SKEW", skew.to_string())
        .output()
        .expect("run tollgate")
}

/// The commands the pair needs (root is checked by each test).
pub fn needs() {
    for (cmd, package) in [
        ("nft", "nftables"),
        ("python3", "python3"),
        ("curl", "curl"),
    ] {
        testkit::need(cmd, package);
    }
}

pub struct Pair {
    pub agent: Site,
    pub central: Site,
    /// How the test reaches the central: `http` or `https`.
    pub scheme: &'static str,
}

impl Pair {
    /// Namespaces named `<prefix>-…` (one prefix per test: they run at
    /// once).
    pub fn new(prefix: &str) -> Pair {
        Pair::with_url(prefix, &format!("http://{CENTRAL_API}"))
    }

    /// A pair whose agent reaches the central at `url`.
    pub fn with_url(prefix: &str, url: &str) -> Pair {
        let agent = Site::build(prefix, "a", 1);
        let central = Site::build(prefix, "c", 1);
        control_link(&agent.host, &central.host);
        for s in [&agent, &central] {
            std::fs::write(s.dir.join("accounting.toml"), "").unwrap();
        }
        std::fs::write(
            central.policy_path(),
            format!("{POLICY}\n[api]\ntokens = \"tokens.json\"\n"),
        )
        .unwrap();
        let token = |scope: &str| {
            let name = format!("test-{}", scope.replace(':', "-"));
            let o = tollgate(
                &central,
                &["token", "add", &name, "--scope", scope, "--json"],
            );
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            v["token"].as_str().unwrap().to_string()
        };
        std::fs::write(agent.dir.join("central.token"), token("agent") + "\n").unwrap();
        std::fs::write(central.dir.join("read.token"), token("read")).unwrap();
        std::fs::write(
            agent.policy_path(),
            format!(
                "{POLICY}\n[central]\nurl = \"{url}\"\ntoken_file = \"central.token\"\nwriter = \"hv1\"\n"
            ),
        )
        .unwrap();
        let scheme = if url.starts_with("https://") {
            "https"
        } else {
            "http"
        };
        Pair {
            agent,
            central,
            scheme,
        }
    }

    pub fn start_central(&self, skew: i64) -> Daemon {
        let d = self.central.start_daemon_env(
            &self.central.dir.join("accounting.toml"),
            &["--listen", CENTRAL_API],
            &[("TOLLGATE_CLOCK_SKEW", &skew.to_string())],
        );
        wait_for("the central's API", Duration::from_secs(15), || {
            self.call("GET", "/api/v1/agents", "central.token", None).0 == 200
        });
        d
    }

    pub fn start_agent(&self, skew: i64) -> Daemon {
        self.start_agent_env(skew, &[])
    }

    pub fn start_agent_env(&self, skew: i64, env: &[(&str, &str)]) -> Daemon {
        let skew = skew.to_string();
        let mut all = vec![("TOLLGATE_CLOCK_SKEW", skew.as_str()), ("RUST_LOG", "info")];
        all.extend_from_slice(env);
        self.agent
            .start_daemon_env(&self.agent.dir.join("accounting.toml"), &["--no-api"], &all)
    }

    /// Adds samples to the agent's local history as its flow collector
    /// does (writer `flows`, its own sequence), while the daemon runs:
    /// `tollgate flows collect` is such a second process.
    pub fn add_flows(&self, sequence: u64, samples: &[Sample]) {
        let mut store = SqliteStore::open(
            &self.agent.state_dir().join("history.sqlite"),
            &SqliteOptions::default(),
        )
        .unwrap();
        store
            .add(&AddBatch {
                writer: "flows",
                sequence,
                samples,
                coverage: &[],
                state: &[],
            })
            .unwrap();
    }

    /// Waits until the central's tenants' samples equal the agent's.
    pub fn wait_equal(&self, what: &str) {
        let mut last = (vec![], vec![]);
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(30) {
            last = (
                tenants(&samples(&self.agent)),
                tenants(&samples(&self.central)),
            );
            if last.0 == last.1 {
                return;
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!(
            "{what}: the central's samples\n{:?}\ndiffer from the agent's\n{:?}",
            last.1, last.0
        );
    }

    /// `METHOD path` on the central's API from the agent's namespace, with
    /// the token in the agent's folder named `token`; the status and body.
    pub fn call(&self, method: &str, path: &str, token: &str, body: Option<&str>) -> (u16, String) {
        let token = std::fs::read_to_string(self.agent.dir.join(token))
            .or_else(|_| std::fs::read_to_string(self.central.dir.join(token)))
            .unwrap();
        let mut cmd = Command::new("ip");
        // The test's curl trusts any certificate: the agent is what is
        // tested for checking the central's.
        cmd.args([
            "netns",
            "exec",
            &self.agent.host,
            "curl",
            "-k",
            "-sS",
            "-m",
            "10",
        ])
        .args(["-X", method, "-w", "\n%{http_code}"])
        .args(["-H", &format!("Authorization: Bearer {}", token.trim())]);
        if let Some(b) = body {
            cmd.args(["-H", "Content-Type: application/json", "--data-binary", b]);
        }
        let o = cmd
            .arg(format!("{}://{CENTRAL_API}{path}", self.scheme))
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    }

    /// The central's committed sequence for `hv1`.
    pub fn standing(&self) -> Option<u64> {
        let (status, body) = self.call("GET", "/api/v1/agents/hv1", "central.token", None);
        if status != 200 {
            return None;
        }
        serde_json::from_str::<serde_json::Value>(&body).unwrap()["sequence"].as_u64()
    }

    /// Sends `n` datagrams to the agent's tenant from the national server.
    pub fn send(&self, n: u64) {
        send_to_tenant(&self.agent, n);
    }
}

/// Every closed sample a history holds.
pub fn samples(site: &Site) -> Vec<Sample> {
    let store = SqliteStore::open(
        &site.state_dir().join("history.sqlite"),
        &SqliteOptions::default(),
    )
    .unwrap();
    all_samples(&store)
}

/// Every closed sample a store holds.
pub fn all_samples(store: &dyn Store) -> Vec<Sample> {
    store
        .samples(&SampleQuery {
            tenants: Tenants::All,
            from: Slot(1),
            to: Slot(100_000_000),
        })
        .unwrap()
}

/// The tenants' samples (tenant 0, each site's own traffic of no tenant,
/// differs between the two daemons).
pub fn tenants(v: &[Sample]) -> Vec<Sample> {
    v.iter().filter(|s| s.key.tenant.0 != 0).copied().collect()
}

pub fn national_down(samples: &[Sample]) -> u64 {
    samples
        .iter()
        .filter(|s| s.key.realm.0 == 1 && s.key.direction == accounting::Direction::Down)
        .map(|s| s.bytes)
        .sum()
}

/// The control link `ctl0` between an agent's namespace (192.0.2.9/30)
/// and its central's (192.0.2.10/30), up; cut it with `ip link set ctl0
/// down` in either.
pub fn control_link(agent: &str, central: &str) {
    sh(&format!(
        "set -e
        ip link add ctl0 netns {agent} type veth peer name ctl0 netns {central}
        ip -n {agent} addr add 192.0.2.9/30 dev ctl0; ip -n {central} addr add 192.0.2.10/30 dev ctl0
        ip -n {agent} link set ctl0 up; ip -n {central} link set ctl0 up"
    ));
}
