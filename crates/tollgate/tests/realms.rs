//! Realms from BGP, end to end: a community changed in BIRD moves a
//! tenant's traffic from the national to the international cap.
//!
//! BIRD and `tollgate routes listen` talk on loopback (127.0.0.x) in the
//! test's own namespace; the listener saves its table to a state folder,
//! and `tollgate apply`, run inside a router built in network namespaces
//! (see `lab_router`), reads it from there (`TOLLGATE_STATE_DIR`). iperf3
//! measures the tenant's download from 198.51.100.1, which BIRD announces
//! as 198.51.100.0/24: with community 65001:100 it is national (ceil
//! 10 Mbit), without it international (ceil 3 Mbit).
//!
//! Needs root and BIRD 2 (`cargo xtask ci` installs it); without root it
//! fails unless TOLLGATE_SKIP_ROOT_TESTS=1 (see `testkit::root`).

#[path = "bgp/peers.rs"]
#[allow(dead_code)]
mod peers;

mod lab_router;

use lab_router::Router;
use peers::{lab, loopback, wait_until, Bird, BirdPeer};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }

[realms]
default = "international"

[realms.national]
id = 1
communities = ["65001:100"]

[realms.international]
id = 2

[plans.home]
down = { rate = "3mbit", ceil = "10mbit" }
up = { rate = "3mbit", ceil = "10mbit" }

[plans.home.realms.international]
down = { ceil = "3mbit" }
up = { ceil = "3mbit" }

[[tenants]]
id = 1
name = "t1"
plan = "home"
prefixes = ["100.64.1.0/24"]
"#;

/// `tollgate routes listen` with the test's policy, waiting for one BIRD
/// peer at `local`, saving its table under the lab's `state` folder every
/// `save_every`. Stopped on drop.
struct Listener {
    child: Child,
    policy: String,
    state: std::path::PathBuf,
    port: u16,
}

impl Listener {
    fn start(lab: &peers::Lab, local: std::net::Ipv4Addr, save_every: &str) -> Listener {
        let policy_path = lab.dir.join("policy.toml");
        std::fs::write(&policy_path, POLICY).unwrap();
        let policy = policy_path.display().to_string();
        let state = lab.dir.join("state");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let bgp = lab.dir.join("bgp.toml");
        std::fs::write(
            &bgp,
            format!("local_as = 65000\nrouter_id = \"192.0.2.1\"\nlisten = [\"127.0.0.1:{port}\"]\n[[peers]]\naddress = \"{local}\"\nremote_as = 65001\n"),
        )
        .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["routes", "listen", "--bgp", &bgp.display().to_string()])
            .args(["-c", &policy, "--state-dir", &state.display().to_string()])
            .args(["--save-every", save_every])
            .stdout(Stdio::null())
            .spawn()
            .expect("start routes listen");
        Listener {
            child,
            policy,
            state,
            port,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The realm map's elements in the router, as nft prints them.
fn realm_map(r: &Router) -> String {
    let o = Command::new("ip")
        .args(["netns", "exec", &r.host, "nft", "list", "map", "netdev"])
        .args(["tollgate", "realm4"])
        .output()
        .expect("run nft");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn a_community_changed_in_bird_moves_traffic_between_realm_caps() {
    if !testkit::root("a_community_changed_in_bird_moves_traffic_between_realm_caps") {
        return;
    }
    let Some(lab) = lab("realm-e2e") else { return };
    let r = Router::new("e", 1);
    let local = loopback(31);
    let listener = Listener::start(&lab, local, "200ms");
    let (policy, state, port) = (
        listener.policy.clone(),
        listener.state.clone(),
        listener.port,
    );
    let mut conf = BirdPeer {
        local,
        local_as: 65001,
        tollgate_port: port,
        hold_time: 9,
        routes4: "route 198.51.100.0/24 blackhole;",
        routes6: "",
        filter: "bgp_community.add((65001,100));",
    };
    let bird = Bird::start(&lab, "bird", &conf.config());
    let lookup = || {
        let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["routes", "lookup", "198.51.100.1", "--json", "-c", &policy])
            .args(["--state-dir", &state.display().to_string()])
            .output()
            .expect("run routes lookup");
        serde_json::from_slice::<serde_json::Value>(&o.stdout)
            .ok()
            .and_then(|v| v["realm"]["id"].as_u64())
    };
    wait_until("the national route saved", Duration::from_secs(20), || {
        lookup() == Some(1)
    });
    let apply = || {
        let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["--netns", &r.host, "apply", "-c", &policy])
            .env("TOLLGATE_STATE_DIR", &state)
            .output()
            .expect("run tollgate apply");
        assert!(
            o.status.success(),
            "apply failed: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    };
    apply();
    assert!(
        realm_map(&r).contains("198.51.100.0/24 : 0:1"),
        "{}",
        realm_map(&r)
    );
    let national = r.download(&[1], 4)[0];

    // The community goes away in BIRD: the route becomes international.
    conf.filter = "";
    let changed = Instant::now();
    bird.reconfigure(&conf.config());
    wait_until(
        "the route to turn international",
        Duration::from_secs(20),
        || lookup() == Some(2),
    );
    apply();
    let in_kernel = changed.elapsed();
    assert!(
        !realm_map(&r).contains("198.51.100.0/24"),
        "an international route needs no element (it is the default): {}",
        realm_map(&r)
    );
    let international = r.download(&[1], 4)[0];
    eprintln!(
        "198.51.100.1 national: {national:.2} Mbit/s (ceil 10); after the community was removed in BIRD: \
         {international:.2} Mbit/s (ceil 3); BIRD reconfigured → kernel realm map updated in {:.2} s \
         (listener saves every 200 ms; apply run once the saved table showed the change)",
        in_kernel.as_secs_f64()
    );
    assert!((8.5..=10.3).contains(&national), "national: {national}");
    assert!(
        (2.5..=3.1).contains(&international),
        "international: {international}"
    );
}

/// 100,000 prefixes from BIRD, one in seven national by a community set on
/// the route itself (scattered, so no two national prefixes merge), all the
/// way into the router's realm map. Reports how long each stage took; the
/// test requires the kernel's map to hold exactly the flattened national
/// prefixes.
#[test]
fn bird_pushes_100000_prefixes_into_the_kernel() {
    if !testkit::root("bird_pushes_100000_prefixes_into_the_kernel") {
        return;
    }
    let Some(lab) = lab("realm-full") else { return };
    let r = Router::new("k", 1);
    let local = loopback(32);
    let listener = Listener::start(&lab, local, "500ms");
    let (policy, state, port) = (
        listener.policy.clone(),
        listener.state.clone(),
        listener.port,
    );
    // /28s in 100.64.0.0/10; BIRD 2 lets a static route carry its own
    // attributes.
    let n = 100_000u32;
    let prefix = |i: u32| {
        let a =
            std::net::Ipv4Addr::from(u32::from(std::net::Ipv4Addr::new(100, 64, 0, 0)) + i * 32);
        net_types::Prefix::V4(a, 28)
    };
    let national = |i: u32| i.is_multiple_of(7);
    let mut routes4 = String::new();
    for i in 0..n {
        if national(i) {
            routes4 += &format!(
                "route {} blackhole {{ bgp_community.add((65001,100)); }};\n",
                prefix(i)
            );
        } else {
            routes4 += &format!("route {} blackhole;\n", prefix(i));
        }
    }
    let conf = BirdPeer {
        local,
        local_as: 65001,
        tollgate_port: port,
        hold_time: 90,
        routes4: &routes4,
        routes6: "",
        filter: "",
    };
    let want: Vec<(net_types::Prefix, net_types::RealmId)> = compiler::realm_ranges::flatten(
        (0..n).map(|i| {
            let realm = net_types::RealmId(if national(i) { 1 } else { 2 });
            (prefix(i), realm, compiler::realm_ranges::Source::Route)
        }),
        net_types::RealmId(2),
    );
    let started = Instant::now();
    let _bird = Bird::start(&lab, "bird", &conf.config());
    let stats = || {
        let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["routes", "stats", "--json", "--state-dir"])
            .arg(&state)
            .output()
            .expect("run routes stats");
        serde_json::from_slice::<serde_json::Value>(&o.stdout).ok()
    };
    wait_until("100,000 prefixes saved", Duration::from_secs(60), || {
        stats().is_some_and(|v| v["prefixes"] == n)
    });
    let saved = started.elapsed();
    let o = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["--netns", &r.host, "apply", "-c", &policy])
        .env("TOLLGATE_STATE_DIR", &state)
        .output()
        .expect("run tollgate apply");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let in_kernel = started.elapsed();
    let map = realm_map(&r);
    let elements = map.matches(" : 0:1").count();
    eprintln!(
        "{n} prefixes from BIRD ({} national, scattered): saved by tollgate with every realm \
         {:.1} s after BIRD started; in the kernel's realm map ({elements} elements) {:.1} s after",
        (0..n).filter(|&i| national(i)).count(),
        saved.as_secs_f64(),
        in_kernel.as_secs_f64()
    );
    assert_eq!(elements, want.len(), "the kernel's realm map");
    for (p, _) in want.iter().step_by(997) {
        assert!(map.contains(&format!("{p} : 0:1")), "{p} missing");
    }
}
