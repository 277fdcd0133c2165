//! The daemon killed at every point where it writes, and started again:
//! nothing committed is lost, nothing is counted twice, the policy file
//! and the overage records agree, and the kernel converges.
//!
//! `TOLLGATE_CRASH_AT=POINT[:N]` makes the process abort (no destructors,
//! nothing flushed, as `kill -9` or a power cut) the Nth time it reaches
//! POINT (`crash_point.rs` lists them). Each case runs the real daemon in
//! `daemon_site`'s router with real traffic, crashes it there, restarts
//! it without the variable and checks the outcome:
//!
//! - `store-commit` and `store-committed` (before and after a batch's
//!   transaction): the bytes recorded equal the datagrams sent × 1042
//!   (Ethernet + IPv4 + UDP + 1000), exactly;
//! - `overage-records`, `policy-edit`, `policy-edited` (the overage move's
//!   three writes): the tenant ends up moved once, in the file, the
//!   records and the kernel;
//! - `release-request-removed`: a release by hand is carried out once and
//!   its request is gone;
//! - `before-rename`: an import that dies with the new table written but
//!   not yet renamed over the old leaves the old table whole;
//! - `routes-snapshot` and `before-rename` in the BGP speaker (`routes
//!   listen`, fed by BIRD) as it saves a table with a new route: the old
//!   table stays whole and in force, the restarted speaker saves the new
//!   one, and `apply` then `plan` find the kernel converged each time.
//!
//! Needs root, iproute2, nftables, python3 and BIRD 2.

use accounting::{Accountant, Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, UsageKey};
use history::{Batch, SqliteOptions, SqliteStore, Store};
use net_types::{RealmId, TenantId};
use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

mod daemon_site;

#[path = "bgp/peers.rs"]
#[allow(dead_code)]
mod peers;

use daemon_site::{wait_for, Daemon, Site, FRAME, NATIONAL, SENDER};

static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "200mbit", up = "200mbit" }

[realms]
default = "international"

[realms.national]
id = 1
prefixes = ["198.51.100.0/24"]

[realms.international]
id = 2

[plans.home]
down = { rate = "20mbit", ceil = "50mbit" }
up = { rate = "20mbit", ceil = "50mbit" }

[plans.overage]
shared = true
id = 100
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }

[[tenants]]
id = 1
name = "t1"
plan = "home"
prefixes = ["100.64.1.0/24"]
"#;

const OVERAGE: &str = r#"
[billing]
day = DAY
quota = "1mb"

[overage]
enabled = true
min_elapsed = "0s"
check_every = "1s"
"#;

struct Crash {
    site: Site,
}

impl Crash {
    fn new(tag: &str, overage: bool) -> Crash {
        let site = Site::build("tgc", tag, 1);
        let mut policy = POLICY.to_string();
        if overage {
            let today = jiff::Timestamp::now()
                .to_zoned(jiff::tz::TimeZone::UTC)
                .day();
            policy.push_str(&OVERAGE.replace("DAY", if today == 1 { "2" } else { "1" }));
        }
        std::fs::write(site.policy_path(), policy).unwrap();
        std::fs::write(site.dir.join("accounting.toml"), "").unwrap();
        Crash { site }
    }

    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(args)
            .env("TOLLGATE_CONFIG", self.site.policy_path())
            .env("TOLLGATE_STATE_DIR", self.site.state_dir())
            .env("TOLLGATE_ACCOUNTING", self.site.dir.join("accounting.toml"))
            .output()
            .expect("run tollgate")
    }

    fn json(&self, args: &[&str]) -> serde_json::Value {
        let o = self.run(args);
        assert!(
            o.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn daemon(&self, crash: Option<&str>) -> Daemon {
        let env: Vec<(&str, &str)> = crash
            .map(|c| ("TOLLGATE_CRASH_AT", c))
            .into_iter()
            .collect();
        self.site
            .start_daemon_env(&self.site.dir.join("accounting.toml"), &["--no-api"], &env)
    }

    /// Waits (at most 60 s) for a daemon started to crash to abort there.
    fn crashed(&self, mut d: Daemon, point: &str) {
        let mut st = None;
        wait_for(
            &format!("the crash at {point}"),
            Duration::from_secs(60),
            || {
                st = d.child.try_wait().unwrap();
                st.is_some()
            },
        );
        let st = st.unwrap();
        assert_eq!(
            st.signal(),
            Some(6),
            "the daemon did not abort at {point}: {st}\n{}",
            d.log()
        );
        assert!(
            d.log().contains(&format!("TOLLGATE_CRASH_AT={point}")),
            "{}",
            d.log()
        );
    }

    /// Sends `n` datagrams to the tenant from the national server.
    fn send(&self, n: u64) {
        let o = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.site.upstream,
                "python3",
                "-c",
                SENDER,
                NATIONAL,
                "100.64.1.2",
            ])
            .arg(n.to_string())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(o.success());
    }

    /// Bytes recorded for the tenant's national download.
    fn recorded(&self) -> u64 {
        let v = self.json(&["usage", "--json"]);
        v["tenants"][0]["totals"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| r["realm"] == 1)
            .map(|r| r["down_bytes"].as_u64().unwrap())
            .sum()
    }

    fn policy_plan(&self) -> String {
        let text = std::fs::read_to_string(self.site.policy_path()).unwrap();
        let t = text.split("[[tenants]]").nth(1).unwrap();
        t.lines()
            .find_map(|l| l.strip_prefix("plan = \""))
            .unwrap()
            .trim_end_matches('"')
            .to_string()
    }

    fn moves(&self) -> Vec<serde_json::Value> {
        self.json(&["overage", "list", "--json"])["moves"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    fn kernel_ceil(&self) -> String {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.site.host,
                "tc",
                "class",
                "show",
                "dev",
                "tg-down",
            ])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// One closed sample of `bytes` for the tenant in the slot before now, so
/// that the first overage check already sees it over its 1 MB quota.
fn seed(site: &Site, bytes: u64) {
    std::fs::create_dir_all(site.state_dir()).unwrap();
    let mut store = SqliteStore::open(
        &site.state_dir().join("history.sqlite"),
        &SqliteOptions::default(),
    )
    .unwrap();
    let slot = Slot(Slot::containing(jiff::Timestamp::now()).0 - 1);
    let samples = [Sample {
        slot,
        key: UsageKey {
            tenant: TenantId(1),
            realm: RealmId(2),
            direction: Direction::Up,
            band: Band::Normal,
            source: accounting::Source::Kernel,
        },
        bytes,
        packets: bytes / 1000,
    }];
    let coverage = [SlotCoverage {
        slot,
        status: SlotStatus::Measured,
    }];
    let state = Accountant::new(accounting::Config::default())
        .state()
        .encode();
    store
        .append(&Batch {
            sequence: 1,
            samples: &samples,
            coverage: &coverage,
            state: &state,
        })
        .unwrap();
}

fn store_crash(point: &str) {
    let c = Crash::new(&point[..7], false);
    let d = c.daemon(Some(&format!("{point}:4")));
    c.send(1500);
    c.crashed(d, point);
    let d = c.daemon(None);
    c.send(700);
    std::thread::sleep(Duration::from_millis(2500));
    let log = d.log();
    assert!(d.stop().success(), "{log}");
    assert_eq!(
        c.recorded(),
        2200 * FRAME,
        "bytes lost or counted twice across a crash at {point}"
    );
}

#[test]
fn a_crash_around_a_store_commit_loses_and_doubles_nothing() {
    if !testkit::root("a_crash_around_a_store_commit_loses_and_doubles_nothing") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    store_crash("store-commit");
    store_crash("store-committed");
}

fn move_crash(point: &str) {
    let c = Crash::new(&point[..7], true);
    seed(&c.site, 2_000_000);
    let d = c.daemon(Some(point));
    c.crashed(d, point);
    let d = c.daemon(None);
    wait_for(
        "the move after the restart",
        Duration::from_secs(30),
        || c.policy_plan() == "overage" && c.moves().len() == 1,
    );
    wait_for("the kernel to follow", Duration::from_secs(15), || {
        c.kernel_ceil().contains("ceil 20Mbit")
    });
    std::thread::sleep(Duration::from_millis(1500));
    let moves = c.moves();
    assert_eq!(moves.len(), 1, "moved once: {moves:?}");
    assert_eq!(moves[0]["from_plan"], "home");
    let records = std::fs::read_to_string(c.site.state_dir().join("overage.json")).unwrap();
    assert!(!records.contains("pending"), "{records}");
    assert!(d.stop().success());
}

#[test]
fn a_crash_at_any_write_of_an_overage_move_ends_with_one_move_everywhere() {
    if !testkit::root("a_crash_at_any_write_of_an_overage_move_ends_with_one_move_everywhere") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for point in ["overage-records", "policy-edit", "policy-edited"] {
        move_crash(point);
    }
}

#[test]
fn a_crash_while_a_release_request_is_removed_carries_it_out_once() {
    if !testkit::root("a_crash_while_a_release_request_is_removed_carries_it_out_once") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Crash::new("release", true);
    seed(&c.site, 2_000_000);
    let d = c.daemon(None);
    wait_for("the move", Duration::from_secs(30), || c.moves().len() == 1);
    assert!(d.stop().success());
    let o = c.run(&["overage", "release", "t1"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let d = c.daemon(Some("release-request-removed"));
    c.crashed(d, "release-request-removed");
    assert_eq!(
        c.policy_plan(),
        "home",
        "the release reached the policy before the crash"
    );
    let d = c.daemon(None);
    wait_for("the request's removal", Duration::from_secs(15), || {
        !c.site.state_dir().join("overage-release/1").exists()
    });
    std::thread::sleep(Duration::from_millis(2500));
    // Released once, and not moved again this period.
    assert_eq!(c.policy_plan(), "home");
    assert!(c.moves().is_empty());
    let records: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(c.site.state_dir().join("overage.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(records["released"][0]["tenant"], 1, "{records}");
    assert!(
        c.kernel_ceil().contains("ceil 50Mbit"),
        "{}",
        c.kernel_ceil()
    );
    assert!(d.stop().success());
}

#[test]
fn a_crash_while_saving_the_routes_table_leaves_the_old_one_whole() {
    if !testkit::root("a_crash_while_saving_the_routes_table_leaves_the_old_one_whole") {
        return;
    }
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Crash::new("routes", false);
    let dump = testkit::repo().join("crates/bgp/tests/data/bird-addpath/master4.mrt");
    let dump = dump.to_str().unwrap();
    let o = c.run(&["routes", "import", dump]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let table = c.site.state_dir().join("routes/table.tgr");
    let before = std::fs::read(&table).unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["routes", "import", dump])
        .env("TOLLGATE_CONFIG", c.site.policy_path())
        .env("TOLLGATE_STATE_DIR", c.site.state_dir())
        .env("TOLLGATE_CRASH_AT", "before-rename")
        .output()
        .unwrap();
    assert_eq!(
        o.status.signal(),
        Some(6),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert_eq!(std::fs::read(&table).unwrap(), before);
    let stats = c.json(&["routes", "stats", "--json"]);
    assert!(stats["prefixes"].as_u64().unwrap() > 0, "{stats}");
}

/// `tollgate routes listen` with the test's policy and state, printing
/// JSON events, saving only when it stops (so that the save that crashes
/// is the one after the routes the test waits for); killed on drop.
struct Listener {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    log: std::path::PathBuf,
}

impl Listener {
    fn start(c: &Crash, bgp: &std::path::Path, crash: Option<&str>) -> Listener {
        let log = c.site.dir.join("listen.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tollgate"));
        cmd.args([
            "routes",
            "listen",
            "--json",
            "--save-every",
            "600s",
            "--bgp",
        ])
        .arg(bgp)
        .env("TOLLGATE_CONFIG", c.site.policy_path())
        .env("TOLLGATE_STATE_DIR", c.site.state_dir())
        .env_remove("TOLLGATE_CRASH_AT")
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap());
        if let Some(point) = crash {
            cmd.env("TOLLGATE_CRASH_AT", point);
        }
        let mut child = cmd.spawn().expect("start routes listen");
        let out = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead as _;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Listener { child, lines, log }
    }

    /// Waits (at most 30 s) for the speaker to report `prefix` in `realm`.
    fn wait_for_route(&self, prefix: &str, realm: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            let line = self.lines.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "routes listen did not report {prefix} in 30 s\n{}",
                    std::fs::read_to_string(&self.log).unwrap_or_default()
                )
            });
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                continue;
            };
            if v["event"] == "realms"
                && v["sample"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["prefix"] == prefix && c["new"] == realm)
            {
                return;
            }
        }
    }

    /// SIGTERM (the speaker saves its table and exits); its exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let ok = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -TERM failed");
        let mut st = None;
        wait_for("routes listen to exit", Duration::from_secs(15), || {
            st = self.child.try_wait().unwrap();
            st.is_some()
        });
        st.unwrap()
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Crash {
    /// The kernel's realm map in the router, as nft prints it.
    fn realm_map(&self) -> String {
        let o = Command::new("ip")
            .args(["netns", "exec", &self.site.host, "nft", "list", "map"])
            .args(["netdev", "tollgate", "realm4"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// `apply`, then `plan`: the kernel follows the saved table and
    /// nothing is left to do.
    fn converge(&self) {
        let o = self.run(&["--netns", &self.site.host, "apply"]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let o = self.run(&["--netns", &self.site.host, "plan"]);
        let plan = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success() && plan.contains("nothing to do"),
            "not converged:\n{plan}{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }

    /// The saved table's prefixes, from `routes stats` (which fails on a
    /// damaged table).
    fn saved_prefixes(&self) -> u64 {
        self.json(&["routes", "stats", "--json"])["prefixes"]
            .as_u64()
            .unwrap()
    }
}

#[test]
fn a_crash_while_the_speaker_saves_its_table_leaves_a_whole_table_and_the_kernel_converges() {
    let Some(lab) = peers::lab("crash-speaker") else {
        return;
    };
    let _g = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let c = Crash::new("speaker", false);
    // National by BGP community: the realm map comes from the table alone.
    std::fs::write(
        c.site.policy_path(),
        POLICY.replace(
            "prefixes = [\"198.51.100.0/24\"]",
            "communities = [\"65001:100\"]",
        ),
    )
    .unwrap();
    let local = peers::loopback(47);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bgp = c.site.dir.join("bgp.toml");
    std::fs::write(
        &bgp,
        format!("local_as = 65000\nrouter_id = \"192.0.2.1\"\nlisten = [\"127.0.0.1:{port}\"]\n[[peers]]\naddress = \"{local}\"\nremote_as = 65001\n"),
    )
    .unwrap();
    let mut conf = peers::BirdPeer {
        local,
        local_as: 65001,
        tollgate_port: port,
        hold_time: 9,
        routes4: "route 198.51.100.0/24 blackhole;",
        routes6: "",
        filter: "bgp_community.add((65001,100));",
    };
    let bird = peers::Bird::start(&lab, "bird", &conf.config());
    let table = c.site.state_dir().join("routes/table.tgr");

    // The old table: 198.51.100.0/24, national, saved and in the kernel.
    let l = Listener::start(&c, &bgp, None);
    l.wait_for_route("198.51.100.0/24", 1);
    let log = l.log();
    assert!(l.stop().success(), "{log}");
    let old = std::fs::read(&table).unwrap();
    assert_eq!(c.saved_prefixes(), 1);
    c.converge();
    assert!(
        c.realm_map().contains("198.51.100.0/24 : 0:1"),
        "{}",
        c.realm_map()
    );

    // BIRD announces 203.0.113.0/24 too; the speaker receives it and is
    // stopped, and dies as it saves: before writing, and with the new
    // table written but not renamed over the old one.
    conf.routes4 = "route 198.51.100.0/24 blackhole; route 203.0.113.0/24 blackhole;";
    bird.reconfigure(&conf.config());
    for point in ["routes-snapshot", "before-rename"] {
        let l = Listener::start(&c, &bgp, Some(point));
        l.wait_for_route("203.0.113.0/24", 1);
        let st = l.stop();
        let log = std::fs::read_to_string(c.site.dir.join("listen.log")).unwrap();
        assert_eq!(
            st.signal(),
            Some(6),
            "did not abort at {point}: {st}\n{log}"
        );
        assert!(log.contains(&format!("TOLLGATE_CRASH_AT={point}")), "{log}");
        let now = std::fs::read(&table).unwrap();
        assert!(
            now == old,
            "a crash at {point} changed the saved table ({} bytes, were {})",
            now.len(),
            old.len()
        );
        assert_eq!(
            c.saved_prefixes(),
            1,
            "the old table is whole after {point}"
        );
        c.converge();
        let map = c.realm_map();
        assert!(
            map.contains("198.51.100.0/24 : 0:1") && !map.contains("203.0.113.0/24"),
            "after a crash at {point}: {map}"
        );
    }

    // Restarted without a crash: the new table, whole, and the kernel
    // follows it.
    let l = Listener::start(&c, &bgp, None);
    l.wait_for_route("203.0.113.0/24", 1);
    let log = l.log();
    assert!(l.stop().success(), "{log}");
    assert_ne!(std::fs::read(&table).unwrap(), old);
    assert_eq!(c.saved_prefixes(), 2);
    let v = c.json(&["routes", "lookup", "203.0.113.9", "--json"]);
    assert_eq!(v["realm"]["id"], 1, "{v}");
    c.converge();
    let map = c.realm_map();
    assert!(
        map.contains("198.51.100.0/24 : 0:1") && map.contains("203.0.113.0/24 : 0:1"),
        "{map}"
    );
    let leftovers: Vec<String> = std::fs::read_dir(table.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    eprintln!("routes folder after the crashes and a good save: {leftovers:?}");
}
