//! tollgate's speaker announcing routes (the guard's RTBH routes) to real
//! speakers: BIRD 2 and ExaBGP from Debian, on loopback addresses.
//!
//! Each test checks the route the peer received, its communities, its
//! withdrawal, and that a peer that restarts gets the routes again. Like
//! `bgp.rs`, they need root, BIRD 2 and ExaBGP (`cargo xtask ci` installs
//! them); each uses its own 127.0.0.x addresses.

// Some of the helpers serve only `bgp.rs`.
#[allow(dead_code)]
#[path = "bgp/peers.rs"]
mod peers;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp_speaker::{
    AddressFamily, Announcement, PeerConfig, PeerState, Speaker, SpeakerConfig, SpeakerHandle,
    BLACKHOLE,
};
use net_types::{Prefix, RealmId};
use peers::{ip, lab, loopback, wait_until, Bird, ExaBgp, Lab};
use routes::{RealmRules, RouteTable};

/// The speaker on its own runtime.
struct Running {
    runtime: tokio::runtime::Runtime,
    handle: Option<SpeakerHandle>,
    port: u16,
}

impl Running {
    fn start(peers: Vec<PeerConfig>) -> Running {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let config = SpeakerConfig {
            local_as: 65000,
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            hold_time: 9,
            peers,
        };
        let rules = RealmRules::new(vec![], (RealmId(2), "international".into()));
        let (tx, _) = tokio::sync::mpsc::unbounded_channel();
        let (handle, port) = runtime.block_on(async {
            let speaker = Speaker::bind(config).await.unwrap();
            let port = speaker.local_addrs()[0].port();
            (speaker.start(RouteTable::new(rules), tx), port)
        });
        Running {
            runtime,
            handle: Some(handle),
            port,
        }
    }

    fn handle(&self) -> &SpeakerHandle {
        self.handle.as_ref().unwrap()
    }

    fn wait_established(&self, addr: Ipv4Addr, count: u32) {
        wait_until(
            &format!("session {count} with {addr}"),
            Duration::from_secs(20),
            || {
                self.handle().peers().iter().any(|s| {
                    s.address == ip(addr)
                        && s.state == PeerState::Established
                        && s.established_count >= count
                })
            },
        );
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            self.runtime.block_on(h.shutdown());
        }
    }
}

fn p(s: &str) -> Prefix {
    Prefix::parse(s).unwrap()
}

/// The RTBH route for a victim: BLACKHOLE, a large community, and a
/// LOCAL_PREF that must not reach an external peer.
fn rtbh(prefix: &str) -> Announcement {
    Announcement {
        communities: vec![BLACKHOLE, 65000 << 16 | 9],
        large_communities: vec![[65000, 666, 1]],
        local_pref: Some(300),
        ..Announcement::new(p(prefix))
    }
}

/// A BIRD that receives from tollgate (imports everything, exports
/// nothing). `active_tollgate`: BIRD waits (`passive on`) on its own
/// address at port 179 for tollgate to connect; otherwise BIRD connects
/// to tollgate's port.
fn bird_config(local: Ipv4Addr, tollgate_port: u16, active_tollgate: bool) -> String {
    let neighbor = if active_tollgate {
        "neighbor 127.0.0.1 as 65000; passive on;".to_owned()
    } else {
        format!("neighbor 127.0.0.1 port {tollgate_port} as 65000;")
    };
    format!(
        r#"router id {local};
protocol device {{ }}
protocol bgp tollgate {{
  local {local} as 65001;
  {neighbor}
  multihop;
  strict bind yes;
  hold time 9;
  keepalive time 3;
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
"#
    )
}

/// BIRD's `show route all` for one prefix, or `None` when BIRD does not
/// have it.
fn bird_route(bird: &Bird, prefix: &str) -> Option<String> {
    let out = bird.cli(&format!("show route {prefix} all"));
    out.contains(prefix).then_some(out)
}

fn announcing_peer(addr: Ipv4Addr) -> PeerConfig {
    PeerConfig {
        announce: true,
        hold_time: Some(9),
        next_hop_v6: Some("2001:db8::1".parse().unwrap()),
        ..PeerConfig::new(ip(addr), 65001)
    }
}

/// The route as BIRD shows it: BLACKHOLE, our AS in the path, the next
/// hop, the large community, and no LOCAL_PREF from us (eBGP).
fn assert_rtbh(route: &str, next_hop: &str) {
    assert!(
        route.contains("(65535,666)"),
        "no BLACKHOLE community: {route}"
    );
    assert!(route.contains("(65000,9)"), "{route}");
    assert!(
        route.contains("(65000, 666, 1)"),
        "no large community: {route}"
    );
    assert!(route.contains("BGP.as_path: 65000"), "{route}");
    assert!(
        route.contains(&format!("BGP.next_hop: {next_hop}")),
        "next hop {next_hop}: {route}"
    );
    assert!(
        !route.contains("BGP.local_pref: 300"),
        "LOCAL_PREF leaked to eBGP: {route}"
    );
}

fn run_bird_case(lab: &Lab, local: Ipv4Addr, active: bool) {
    let peer = PeerConfig {
        passive: !active,
        port: 179,
        ..announcing_peer(local)
    };
    let sp = Running::start(vec![peer]);
    let conf = bird_config(local, sp.port, active);
    let bird = Bird::start(lab, "bird", &conf);
    sp.wait_established(local, 1);
    // Announced after the session is up: sent at once.
    assert!(sp.handle().announce(rtbh("203.0.113.7/32")));
    assert!(
        !sp.handle().announce(rtbh("203.0.113.7/32")),
        "same route twice"
    );
    assert!(sp.handle().announce(rtbh("2001:db8:7::7/128")));
    let took = wait_until("BIRD to have both routes", Duration::from_secs(5), || {
        bird_route(&bird, "203.0.113.7/32").is_some()
            && bird_route(&bird, "2001:db8:7::7/128").is_some()
    });
    eprintln!("announce → BIRD has the routes: {took:?} (20 ms polling)");
    assert_rtbh(&bird_route(&bird, "203.0.113.7/32").unwrap(), "127.0.0.1");
    assert_rtbh(
        &bird_route(&bird, "2001:db8:7::7/128").unwrap(),
        "2001:db8::1",
    );

    // Withdrawn on request.
    assert!(sp.handle().withdraw(p("203.0.113.7/32")));
    assert!(!sp.handle().withdraw(p("203.0.113.7/32")));
    wait_until(
        "BIRD to lose the IPv4 route",
        Duration::from_secs(5),
        || bird_route(&bird, "203.0.113.7/32").is_none(),
    );
    assert!(bird_route(&bird, "2001:db8:7::7/128").is_some());

    // A change while BIRD is down reaches it when it is back: BIRD
    // crashes, a route is added meanwhile, and the new BIRD gets both.
    bird.kill();
    wait_until("the session to go down", Duration::from_secs(15), || {
        sp.handle()
            .peers()
            .iter()
            .all(|s| s.state != PeerState::Established)
    });
    assert!(sp.handle().announce(rtbh("198.51.100.9/32")));
    let bird = Bird::start(lab, "bird", &conf);
    sp.wait_established(local, 2);
    wait_until(
        "the restarted BIRD to have the routes",
        Duration::from_secs(10),
        || {
            bird_route(&bird, "198.51.100.9/32").is_some()
                && bird_route(&bird, "2001:db8:7::7/128").is_some()
        },
    );
    assert!(
        bird_route(&bird, "203.0.113.7/32").is_none(),
        "withdrawn stays withdrawn"
    );
    assert_rtbh(&bird_route(&bird, "198.51.100.9/32").unwrap(), "127.0.0.1");
    let status = sp.handle().peers();
    assert_eq!(status[0].announced, 2, "{status:?}");
    assert_eq!(sp.handle().announcements().len(), 2);
}

#[test]
fn bird_receives_rtbh_routes_from_a_passive_tollgate_and_again_after_a_restart() {
    let Some(lab) = lab("announce-passive") else {
        return;
    };
    run_bird_case(&lab, loopback(41), false);
}

#[test]
fn tollgate_connects_to_a_passive_bird_announces_and_reconnects_after_a_restart() {
    let Some(lab) = lab("announce-active") else {
        return;
    };
    run_bird_case(&lab, loopback(42), true);
}

#[test]
fn a_peer_without_announce_or_a_family_gets_nothing_of_it() {
    let Some(lab) = lab("announce-families") else {
        return;
    };
    let (only_v4, silent) = (loopback(43), loopback(44));
    let sp = Running::start(vec![
        PeerConfig {
            families: vec![AddressFamily::Ipv4],
            ..announcing_peer(only_v4)
        },
        PeerConfig::new(ip(silent), 65001),
    ]);
    let a = Bird::start(&lab, "a", &bird_config(only_v4, sp.port, false));
    let b = Bird::start(&lab, "b", &bird_config(silent, sp.port, false));
    sp.wait_established(only_v4, 1);
    sp.wait_established(silent, 1);
    sp.handle().announce(rtbh("203.0.113.8/32"));
    sp.handle().announce(rtbh("2001:db8:7::8/128"));
    wait_until(
        "the IPv4 route at the IPv4-only peer",
        Duration::from_secs(5),
        || bird_route(&a, "203.0.113.8/32").is_some(),
    );
    // Give the other routes the time the first one took, many times over.
    std::thread::sleep(Duration::from_millis(500));
    assert!(
        bird_route(&a, "2001:db8:7::8/128").is_none(),
        "IPv6 not negotiated"
    );
    assert!(
        bird_route(&b, "203.0.113.8/32").is_none(),
        "peer without announce"
    );
    // BIRD's IPv6 channel stays down: the family was not negotiated.
    let proto = a.cli("show protocols all tollgate");
    let v6 = proto.split("Channel ipv6").nth(1).expect("an ipv6 channel");
    let state = v6.lines().find(|l| l.contains("State:")).unwrap();
    assert!(state.contains("DOWN"), "BIRD negotiated IPv6: {proto}");
    let v4 = proto.split("Channel ipv4").nth(1).expect("an ipv4 channel");
    let state = v4.lines().find(|l| l.contains("State:")).unwrap();
    assert!(state.contains("UP"), "{proto}");
}

/// ExaBGP receives the route and logs it (`exabgp.log.routes`): the log
/// shows the BLACKHOLE community, then the withdrawal. (Its API process
/// was the first way tried: ExaBGP 4.2.21 declared the helper dead under
/// load, "Too many death for receive", and stopped.)
#[test]
fn exabgp_receives_and_loses_the_rtbh_route() {
    let Some(lab) = lab("announce-exabgp") else {
        return;
    };
    let local = loopback(45);
    let sp = Running::start(vec![announcing_peer(local)]);
    let conf = format!(
        r#"neighbor 127.0.0.1 {{
  router-id {local};
  local-address {local};
  local-as 65001;
  peer-as 65000;
  hold-time 9;
  connect {port};
  family {{ ipv4 unicast; ipv6 unicast; }}
}}
"#,
        port = sp.port,
    );
    let _exa = ExaBgp::start_with(
        &lab,
        "exa",
        &conf,
        &[
            ("exabgp.log.routes", "true"),
            ("exabgp.log.packets", "true"),
            ("exabgp.log.level", "DEBUG"),
        ],
    );
    let log = || std::fs::read_to_string(lab.dir.join("exa.log")).unwrap_or_default();
    let wait = |what: &str, ok: &dyn Fn(&str) -> bool| {
        let start = std::time::Instant::now();
        while !ok(&log()) {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "{what}: not in ExaBGP's log:\n{}\nsession: {:?}",
                log(),
                sp.handle().peers()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    wait("the session", &|_| {
        sp.handle()
            .peers()
            .iter()
            .any(|s| s.state == PeerState::Established)
    });
    sp.handle().announce(rtbh("203.0.113.9/32"));
    let announced = |l: &str| l.contains("203.0.113.9/32") && l.contains("announced");
    wait("the route", &|text| text.lines().any(announced));
    // The route line names no communities; the UPDATE's bytes, logged
    // in hex, carry 65535:666 (ffff029a) and 65000:9 (fde80009).
    let text = log();
    let hex: String = text
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_hexdigit())
        .collect();
    assert!(hex.contains("ffff029afde80009"), "{text}");
    sp.handle().withdraw(p("203.0.113.9/32"));
    wait("the withdrawal", &|text| {
        text.lines()
            .any(|l| l.contains("203.0.113.9/32") && l.contains("withdrawn"))
    });
}

/// GoBGP (Debian's `gobgpd`) connects to tollgate and shows the route in
/// its RIB through its own CLI, then its withdrawal; killed and started
/// again, it gets the route back.
#[test]
fn gobgp_receives_the_rtbh_route_loses_it_and_gets_it_again_after_a_restart() {
    let Some(lab) = lab("announce-gobgp") else {
        return;
    };
    testkit::need("gobgpd", "gobgpd");
    testkit::need("gobgp", "gobgpd");
    let local = loopback(46);
    // GoBGP ignores a loopback next hop (127.0.0.1, our session address):
    // the peer's configured one is used instead.
    let sp = Running::start(vec![PeerConfig {
        next_hop_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
        ..announcing_peer(local)
    }]);
    let api = "127.0.0.1:50146";
    let conf = lab.dir.join("gobgpd.toml");
    std::fs::write(
        &conf,
        format!(
            r#"[global.config]
  as = 65001
  router-id = "{local}"
  port = -1

[[neighbors]]
  [neighbors.config]
    neighbor-address = "127.0.0.1"
    peer-as = 65000
  [neighbors.transport.config]
    local-address = "{local}"
    remote-port = {port}
  [neighbors.timers.config]
    connect-retry = 1
    hold-time = 9
    keepalive-interval = 3
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv4-unicast"
  [[neighbors.afi-safis]]
    [neighbors.afi-safis.config]
      afi-safi-name = "ipv6-unicast"
"#,
            port = sp.port
        ),
    )
    .unwrap();
    let start = || {
        testkit::Process::spawn(
            std::process::Command::new("gobgpd")
                .arg("-f")
                .arg(&conf)
                .arg("--api-hosts")
                .arg(api)
                .arg("--log-level")
                .arg("warn")
                .stdout(std::process::Stdio::null())
                .stderr(std::fs::File::create(lab.dir.join("gobgpd.log")).unwrap()),
        )
    };
    let rib = |family: &str| {
        let out = std::process::Command::new("gobgp")
            .args([
                "-u",
                "127.0.0.1",
                "-p",
                "50146",
                "global",
                "rib",
                "-a",
                family,
            ])
            .output()
            .expect("run gobgp");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let gobgpd = start();
    sp.wait_established(local, 1);
    sp.handle().announce(rtbh("203.0.113.11/32"));
    sp.handle().announce(rtbh("2001:db8:7::11/128"));
    let t = std::time::Instant::now();
    while !(rib("ipv4").contains("203.0.113.11/32") && rib("ipv6").contains("2001:db8:7::11/128")) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "GoBGP's RIB:\n{}\n{}\nneighbor: {}\nits log:\n{}",
            rib("ipv4"),
            rib("ipv6"),
            String::from_utf8_lossy(
                &std::process::Command::new("gobgp")
                    .args([
                        "-u",
                        "127.0.0.1",
                        "-p",
                        "50146",
                        "neighbor",
                        "127.0.0.1",
                        "adj-in"
                    ])
                    .output()
                    .unwrap()
                    .stdout
            ),
            std::fs::read_to_string(lab.dir.join("gobgpd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let v4 = rib("ipv4");
    let line = v4.lines().find(|l| l.contains("203.0.113.11/32")).unwrap();
    // GoBGP names RFC 7999's community.
    assert!(line.contains("blackhole"), "{line}");
    assert!(line.contains("65000:9"), "{line}");
    assert!(line.contains("65000:666:1"), "{line}");
    assert!(line.contains("192.0.2.1"), "next hop: {line}");
    let v6 = rib("ipv6");
    let line = v6
        .lines()
        .find(|l| l.contains("2001:db8:7::11/128"))
        .unwrap();
    assert!(line.contains("2001:db8::1"), "next hop: {line}");

    sp.handle().withdraw(p("203.0.113.11/32"));
    wait_until(
        "GoBGP to lose the IPv4 route",
        Duration::from_secs(10),
        || !rib("ipv4").contains("203.0.113.11/32"),
    );
    drop(gobgpd);
    wait_until("the session to go down", Duration::from_secs(15), || {
        sp.handle()
            .peers()
            .iter()
            .all(|s| s.state != PeerState::Established)
    });
    sp.handle().announce(rtbh("198.51.100.11/32"));
    let _gobgpd = start();
    sp.wait_established(local, 2);
    wait_until(
        "the restarted GoBGP to have the routes",
        Duration::from_secs(10),
        || rib("ipv4").contains("198.51.100.11/32") && rib("ipv6").contains("2001:db8:7::11/128"),
    );
    assert!(!rib("ipv4").contains("203.0.113.11/32"));
}

/// BIRD's flow4 and flow6 channels receive FlowSpec rules (UDP from port
/// 123 to the victim, discard; IPv6 UDP of 500–1500 bytes, rate-limited)
/// and lose them when they are withdrawn.
#[test]
fn bird_receives_and_loses_a_flowspec_rule() {
    use bgp_speaker::flowspec::{Component, Numeric, Rule};
    use bgp_speaker::FlowRoute;
    let Some(lab) = lab("announce-flowspec") else {
        return;
    };
    let local = loopback(47);
    let sp = Running::start(vec![PeerConfig {
        flowspec: true,
        ..announcing_peer(local)
    }]);
    let conf = bird_config(local, sp.port, false)
        .replace(
            "protocol device { }",
            "protocol device { }\nflow4 table flowtab4;\nflow6 table flowtab6;",
        )
        .replace(
            "  ipv6 { import all; export none; };",
            "  ipv6 { import all; export none; };\n  flow4 { table flowtab4; import all; export none; };\n  flow6 { table flowtab6; import all; export none; };",
        );
    let bird = Bird::start(&lab, "bird", &conf);
    sp.wait_established(local, 1);
    let rule = Rule {
        components: vec![
            Component::Destination(p("203.0.113.12/32")),
            Component::Protocol(vec![Numeric::eq(17)]),
            Component::SourcePort(vec![Numeric::eq(123)]),
        ],
    };
    assert!(sp.handle().announce_flow(FlowRoute {
        rule: rule.clone(),
        rate: 0.0,
    }));
    let flows = || bird.cli("show route table flowtab4 all");
    let start = std::time::Instant::now();
    while !flows().contains("dst 203.0.113.12/32") {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "BIRD has no rule:\n{}\n{}",
            flows(),
            bird.cli("show protocols all tollgate")
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let shown = flows();
    assert!(shown.contains("proto 17"), "{shown}");
    assert!(shown.contains("sport 123"), "{shown}");
    assert!(shown.contains("BGP.as_path: 65000"), "{shown}");
    // traffic-rate 0: type 0x80, subtype 0x06, AS 65000 (0xfde8), rate 0.
    assert!(shown.to_lowercase().contains("0x8006fde8"), "{shown}");
    // An IPv6 rule (RFC 8956) rate-limited to 125,000 bytes/s.
    let rule6 = Rule {
        components: vec![
            Component::Destination(p("2001:db8:7::12/128")),
            Component::Protocol(vec![Numeric::eq(17)]),
            Component::PacketLength(vec![Numeric::ge(500), Numeric::and_le(1500)]),
        ],
    };
    assert!(sp.handle().announce_flow(FlowRoute {
        rule: rule6.clone(),
        rate: 125_000.0,
    }));
    let flows6 = || bird.cli("show route table flowtab6 all");
    wait_until("BIRD to have the IPv6 rule", Duration::from_secs(5), || {
        flows6().contains("dst 2001:db8:7::12/128")
    });
    let shown = flows6();
    assert!(shown.contains("length 500..1500"), "{shown}");
    assert!(
        shown.to_lowercase().contains("0x47f42400"),
        "the rate: {shown}"
    );
    assert!(sp.handle().withdraw_flow(&rule));
    assert!(sp.handle().withdraw_flow(&rule6));
    wait_until("BIRD to lose the rules", Duration::from_secs(5), || {
        !flows().contains("dst 203.0.113.12/32") && !flows6().contains("dst 2001:db8:7::12/128")
    });
}

/// Both sides active (BIRD's default): tollgate connects to BIRD and BIRD
/// connects to tollgate. One session must come up and stay up, and the
/// route must arrive.
#[test]
fn both_sides_active_settle_on_one_session() {
    let Some(lab) = lab("announce-both-active") else {
        return;
    };
    let local = loopback(48);
    let sp = Running::start(vec![PeerConfig {
        passive: false,
        port: 179,
        ..announcing_peer(local)
    }]);
    // BIRD connects to tollgate's port and listens on its own 179.
    let conf = bird_config(local, sp.port, false);
    let bird = Bird::start(&lab, "bird", &conf);
    sp.wait_established(local, 1);
    sp.handle().announce(rtbh("203.0.113.13/32"));
    wait_until("BIRD to have the route", Duration::from_secs(10), || {
        bird_route(&bird, "203.0.113.13/32").is_some()
    });
    // Stable: no new session over the next three seconds.
    let count = |sp: &Running| sp.handle().peers()[0].established_count;
    let before = count(&sp);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        count(&sp),
        before,
        "sessions flapped: {:?}",
        sp.handle().peers()
    );
    assert!(bird_route(&bird, "203.0.113.13/32").is_some());
    assert!(bird.cli("show protocols tollgate").contains("Established"));
}
