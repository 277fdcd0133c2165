//! tollgate's BGP speaker and `routes` commands against real speakers:
//! BIRD 2 and ExaBGP from Debian's packages, on loopback addresses.
//!
//! The tests that start speakers need root and BIRD 2 and ExaBGP
//! (`cargo xtask ci` installs them); without root they fail unless
//! TOLLGATE_SKIP_ROOT_TESTS=1 (see `testkit::root`). Each test uses its
//! own 127.0.0.x addresses, so they run side by side.

#[path = "bgp/peers.rs"]
mod peers;

use std::io::{BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use bgp::wire::{self, Message, WireOptions};
use bgp_speaker::{
    PeerConfig, PeerState, PeerStatus, RealmChanges, Speaker, SpeakerConfig, SpeakerHandle,
};
use net_types::{Prefix, RealmId};
use peers::{ip, lab, loopback, wait_until, Bird, BirdPeer, ExaBgp};
use policy::RouteRules;
use routes::{MatchedRule, RealmRules, RouteTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NATIONAL: u16 = 1;
const INTERNATIONAL: u16 = 2;
const NATIONAL_COMMUNITY: u32 = 65001 << 16 | 100;

/// National: community 65001:100 or large community 65001:1:100;
/// everything else is international.
fn rules() -> RealmRules {
    RealmRules::new(
        vec![(
            RealmId(NATIONAL),
            "national".into(),
            RouteRules {
                communities: vec![NATIONAL_COMMUNITY],
                large_communities: vec![[65001, 1, 100]],
                ..RouteRules::default()
            },
        )],
        (RealmId(INTERNATIONAL), "international".into()),
    )
}

/// The speaker, running on its own runtime while the test thread polls.
struct Running {
    runtime: tokio::runtime::Runtime,
    handle: Option<SpeakerHandle>,
    port: u16,
    changes: tokio::sync::mpsc::UnboundedReceiver<RealmChanges>,
}

fn peer(addr: Ipv4Addr, remote_as: u32, hold_time: Option<u16>) -> PeerConfig {
    PeerConfig {
        hold_time,
        ..PeerConfig::new(ip(addr), remote_as)
    }
}

fn start_speaker(peers: Vec<PeerConfig>) -> Running {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let config = SpeakerConfig {
        local_as: 65000,
        router_id: Ipv4Addr::new(192, 0, 2, 1),
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
        hold_time: 90,
        peers,
    };
    let (tx, changes) = tokio::sync::mpsc::unbounded_channel();
    let (handle, port) = runtime.block_on(async {
        let speaker = Speaker::bind(config).await.unwrap();
        let port = speaker.local_addrs()[0].port();
        (speaker.start(RouteTable::new(rules()), tx), port)
    });
    Running {
        runtime,
        handle: Some(handle),
        port,
        changes,
    }
}

impl Running {
    fn handle(&self) -> &SpeakerHandle {
        self.handle.as_ref().unwrap()
    }

    fn status(&self, addr: Ipv4Addr) -> PeerStatus {
        self.handle()
            .peers()
            .into_iter()
            .find(|p| p.address == ip(addr))
            .unwrap()
    }

    fn realm(&self, addr: &str) -> Option<u16> {
        let a: IpAddr = addr.parse().unwrap();
        self.handle().with_table(|t| t.realm_of(a)).map(|r| r.0)
    }

    fn prefixes(&self) -> usize {
        self.handle().with_table(|t| t.len())
    }

    fn wait_established(&self, addr: Ipv4Addr, count: u32, limit: Duration) -> Duration {
        wait_until(&format!("session {count} with {addr}"), limit, || {
            let s = self.status(addr);
            s.state == PeerState::Established && s.established_count >= count
        })
    }

    /// Every realm change received so far.
    fn drain_changes(&mut self) -> Vec<routes::RealmChange> {
        let mut out = Vec::new();
        while let Ok(b) = self.changes.try_recv() {
            out.extend(b.changes);
        }
        out
    }

    /// The realm changes received until there are at least `count`, and
    /// any already queued behind them. Changes come on a channel of their
    /// own, a moment after the table shows them (CI once read one of two).
    fn changes_at_least(&mut self, count: usize, what: &str) -> Vec<routes::RealmChange> {
        let mut out = Vec::new();
        wait_until(what, Duration::from_secs(10), || {
            out.extend(self.drain_changes());
            out.len() >= count
        });
        out.extend(self.drain_changes());
        out
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

#[test]
fn bird_feeds_ipv4_and_ipv6_with_communities_then_changes_and_withdraws() {
    let Some(lab) = lab("updates") else { return };
    let local = loopback(11);
    let mut sp = start_speaker(vec![peer(local, 65001, None)]);
    let mut conf = BirdPeer {
        local,
        local_as: 65001,
        tollgate_port: sp.port,
        hold_time: 9,
        routes4: "route 203.0.113.0/24 blackhole; route 198.51.100.0/25 blackhole;",
        routes6: "route 2001:db8:1::/48 blackhole; route 2001:db8:2::/48 blackhole;",
        filter: "if net = 203.0.113.0/24 then bgp_community.add((65001,100)); \
                 if net = 2001:db8:1::/48 then bgp_large_community.add((65001,1,100));",
    };
    let bird = Bird::start(&lab, "bird", &conf.config());
    sp.wait_established(local, 1, Duration::from_secs(15));
    wait_until("four prefixes", Duration::from_secs(10), || {
        sp.prefixes() == 4
    });
    assert_eq!(sp.realm("203.0.113.7"), Some(NATIONAL));
    assert_eq!(sp.realm("198.51.100.1"), Some(INTERNATIONAL));
    assert_eq!(sp.realm("198.51.100.200"), None, "outside every route");
    assert_eq!(sp.realm("2001:db8:1::1"), Some(NATIONAL));
    assert_eq!(sp.realm("2001:db8:2::1"), Some(INTERNATIONAL));
    sp.handle().with_table(|t| {
        let (_, r) = t.route_for("203.0.113.7".parse().unwrap()).unwrap();
        assert_eq!(r.class.rule, MatchedRule::Community(NATIONAL_COMMUNITY));
        assert_eq!(r.attrs.as_path_flat(), vec![65001]);
        assert_eq!(r.attrs.next_hop, Some(ip(local)));
        let (_, r) = t.route_for("2001:db8:1::1".parse().unwrap()).unwrap();
        assert_eq!(r.class.rule, MatchedRule::LargeCommunity([65001, 1, 100]));
        assert_eq!(r.attrs.next_hop, Some("2001:db8::11".parse().unwrap()));
    });
    let first = sp.changes_at_least(4, "the first realm changes");
    assert_eq!(first.len(), 4);
    assert!(first.iter().all(|c| c.old.is_none()));

    // Route refresh: BIRD resends everything, which changes no realm.
    assert!(sp.runtime.block_on(sp.handle().refresh(ip(local))));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(sp.prefixes(), 4);
    assert!(sp.drain_changes().is_empty());

    // The community moves from one prefix to the other in BIRD: both
    // prefixes change realm, and only they are reported.
    conf.filter = "if net = 198.51.100.0/25 then bgp_community.add((65001,100)); \
                   if net = 2001:db8:1::/48 then bgp_large_community.add((65001,1,100));";
    bird.reconfigure(&conf.config());
    wait_until("the community to move", Duration::from_secs(10), || {
        sp.realm("198.51.100.1") == Some(NATIONAL) && sp.realm("203.0.113.7") == Some(INTERNATIONAL)
    });
    let mut moved = sp.changes_at_least(2, "the moved community's realm changes");
    moved.sort_by_key(|c| c.prefix);
    let expect = |prefix: &str, old, new| routes::RealmChange {
        prefix: p(prefix),
        old: Some(RealmId(old)),
        new: Some(RealmId(new)),
    };
    assert_eq!(
        moved,
        vec![
            expect("198.51.100.0/25", INTERNATIONAL, NATIONAL),
            expect("203.0.113.0/24", NATIONAL, INTERNATIONAL),
        ]
    );

    // Withdrawals: disabling the IPv6 static protocol withdraws its routes.
    bird.cli("disable s6");
    wait_until("IPv6 withdrawals", Duration::from_secs(10), || {
        sp.prefixes() == 2
    });
    assert_eq!(sp.realm("2001:db8:1::1"), None);
    let gone = sp.changes_at_least(2, "the withdrawals' realm changes");
    assert_eq!(gone.len(), 2);
    assert!(gone
        .iter()
        .all(|c| c.new.is_none() && c.prefix.to_string().starts_with("2001:db8:")));
    assert_eq!(
        sp.status(local).established_count,
        1,
        "the session stayed up"
    );
}

#[test]
fn hold_timer_expiry_and_peer_restarts_withdraw_and_restore_routes() {
    let Some(lab) = lab("hold") else { return };
    let local = loopback(12);
    let sp = start_speaker(vec![peer(local, 65001, Some(3))]);
    let conf = BirdPeer {
        local,
        local_as: 65001,
        tollgate_port: sp.port,
        hold_time: 3,
        routes4: "route 203.0.113.0/24 blackhole;",
        routes6: "route 2001:db8:3::/48 blackhole;",
        filter: "bgp_community.add((65001,100));",
    };
    let bird = Bird::start(&lab, "bird", &conf.config());
    sp.wait_established(local, 1, Duration::from_secs(15));
    wait_until("routes", Duration::from_secs(10), || sp.prefixes() == 2);

    // A frozen peer sends no keepalives: after the 3 s hold time its
    // routes are withdrawn.
    bird.signal("STOP");
    let frozen = Instant::now();
    wait_until("hold timer expiry", Duration::from_secs(8), || {
        sp.prefixes() == 0
    });
    let took = frozen.elapsed();
    assert!(
        took >= Duration::from_secs(2),
        "withdrawn after {took:?}, before the hold time"
    );
    let status = sp.status(local);
    assert_eq!(status.last_down.as_deref(), Some("hold timer expired"));
    eprintln!("hold timer: routes withdrawn {took:?} after the peer froze (hold time 3 s)");

    // Thawed, BIRD finds its session gone and reconnects.
    bird.signal("CONT");
    sp.wait_established(local, 2, Duration::from_secs(15));
    wait_until("routes again", Duration::from_secs(10), || {
        sp.prefixes() == 2
    });

    // A crash closes the connection: routes go at once, and come back with
    // a new BIRD.
    bird.kill();
    wait_until("withdrawal on close", Duration::from_secs(5), || {
        sp.prefixes() == 0
    });
    assert_eq!(
        sp.status(local).last_down.as_deref(),
        Some("connection closed")
    );
    let _bird = Bird::start(&lab, "bird-again", &conf.config());
    sp.wait_established(local, 3, Duration::from_secs(15));
    wait_until("routes after restart", Duration::from_secs(10), || {
        sp.prefixes() == 2
    });
    assert_eq!(sp.realm("203.0.113.1"), Some(NATIONAL));
}

/// Connects from `from` to the speaker and returns the stream.
async fn connect_from(from: Ipv4Addr, port: u16) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::from((from, 0))).unwrap();
    socket
        .connect(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .unwrap()
}

/// Reads messages until a NOTIFICATION arrives (at most 5 s) and returns
/// its code and subcode.
async fn read_notification(s: &mut tokio::net::TcpStream) -> (u8, u8) {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        while let Ok(Some(len)) = wire::frame_len(&buf) {
            if buf.len() < len {
                break;
            }
            let msg = wire::decode(&buf[..len], WireOptions { four_byte_as: true });
            buf.drain(..len);
            if let Ok(Message::Notification(n)) = msg {
                return (n.code, n.subcode);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout_at(deadline, s.read(&mut chunk))
            .await
            .expect("no NOTIFICATION within 5 s")
            .expect("read");
        assert!(n > 0, "connection closed without a NOTIFICATION");
        buf.extend_from_slice(&chunk[..n]);
    }
}

fn encode(m: Message) -> Vec<u8> {
    m.encode(WireOptions::default()).unwrap()
}

#[test]
fn malformed_input_gets_a_notification_and_other_sessions_carry_on() {
    let Some(lab) = lab("malformed") else { return };
    let (raw, bird_addr) = (loopback(13), loopback(14));
    let sp = start_speaker(vec![peer(raw, 65003, None), peer(bird_addr, 65001, None)]);
    let conf = BirdPeer {
        local: bird_addr,
        local_as: 65001,
        tollgate_port: sp.port,
        hold_time: 9,
        routes4: "route 203.0.113.0/24 blackhole;",
        routes6: "",
        filter: "",
    };
    let _bird = Bird::start(&lab, "bird", &conf.config());
    sp.wait_established(bird_addr, 1, Duration::from_secs(15));
    wait_until("BIRD's route", Duration::from_secs(10), || {
        sp.prefixes() == 1
    });

    let open = encode(Message::Open(wire::Open {
        my_as: 65003,
        hold_time: 90,
        bgp_id: Ipv4Addr::new(192, 0, 2, 13),
        capabilities: vec![wire::Capability::FourOctetAs(65003)],
    }));
    let port = sp.port;
    sp.runtime.block_on(async {
        // An UPDATE whose ORIGIN is 7: UPDATE Message Error, Invalid ORIGIN.
        let mut s = connect_from(raw, port).await;
        s.write_all(&open).await.unwrap();
        s.write_all(&encode(Message::Keepalive)).await.unwrap();
        let mut update = vec![0xff; 16];
        let body = [0, 0, 0, 4, 0x40, 1, 1, 7];
        update.extend_from_slice(&((19 + body.len()) as u16).to_be_bytes());
        update.push(2);
        update.extend_from_slice(&body);
        s.write_all(&update).await.unwrap();
        assert_eq!(read_notification(&mut s).await, (3, 6));

        // A broken marker: Message Header Error, Connection Not Synchronized.
        let mut s = connect_from(raw, port).await;
        s.write_all(&[0u8; 40]).await.unwrap();
        assert_eq!(read_notification(&mut s).await, (1, 1));

        // The wrong AS in the OPEN: OPEN Message Error, Bad Peer AS.
        let mut s = connect_from(raw, port).await;
        let wrong_as = encode(Message::Open(wire::Open {
            my_as: 65099,
            hold_time: 90,
            bgp_id: Ipv4Addr::new(192, 0, 2, 13),
            capabilities: vec![],
        }));
        s.write_all(&wrong_as).await.unwrap();
        assert_eq!(read_notification(&mut s).await, (2, 2));

        // A stranger: Cease, Connection Rejected.
        let mut s = connect_from(loopback(99), port).await;
        assert_eq!(read_notification(&mut s).await, (6, 5));
    });
    let raw_status = sp.status(raw);
    assert!(raw_status
        .last_down
        .unwrap()
        .contains("sent NOTIFICATION code 2 subcode 2"));
    let bird = sp.status(bird_addr);
    assert_eq!(
        (bird.state, bird.established_count),
        (PeerState::Established, 1)
    );
    assert_eq!(sp.realm("203.0.113.9"), Some(INTERNATIONAL));
}

#[test]
fn exabgp_and_bird_at_once_choose_the_best_path() {
    let Some(lab) = lab("two-peers") else { return };
    let (exa_addr, bird_addr) = (loopback(15), loopback(16));
    let mut sp = start_speaker(vec![
        peer(exa_addr, 65002, None),
        peer(bird_addr, 65001, None),
    ]);
    let exa = format!(
        r#"neighbor 127.0.0.1 {{
  router-id 192.0.2.15;
  local-address {exa_addr};
  local-as 65002;
  peer-as 65000;
  connect {port};
  hold-time 9;
  family {{ ipv4 unicast; ipv6 unicast; }}
  static {{
    route 192.0.2.128/25 next-hop {exa_addr} community [65001:100] as-path [65002 64500];
    route 203.0.113.0/24 next-hop {exa_addr} as-path [65002 64500 64501];
    route 2001:db8:5::/48 next-hop 2001:db8::15 large-community [65001:1:100];
  }}
}}
"#,
        port = sp.port
    );
    let _exa = ExaBgp::start(&lab, "exabgp", &exa);
    let conf = BirdPeer {
        local: bird_addr,
        local_as: 65001,
        tollgate_port: sp.port,
        hold_time: 9,
        routes4: "route 203.0.113.0/24 blackhole;",
        routes6: "",
        filter: "bgp_community.add((65001,100));",
    };
    let bird = Bird::start(&lab, "bird", &conf.config());
    sp.wait_established(exa_addr, 1, Duration::from_secs(20));
    sp.wait_established(bird_addr, 1, Duration::from_secs(20));
    wait_until("both feeds", Duration::from_secs(10), || {
        sp.prefixes() == 3 && sp.handle().with_table(|t| t.peer_prefixes(&ip(bird_addr))) == 1
    });
    assert_eq!(sp.realm("192.0.2.200"), Some(NATIONAL));
    assert_eq!(sp.realm("2001:db8:5::1"), Some(NATIONAL));
    // BIRD's path is shorter, so its route (with the national community)
    // is the one that counts.
    wait_until("BIRD's route to win", Duration::from_secs(5), || {
        sp.realm("203.0.113.1") == Some(NATIONAL)
    });
    sp.handle().with_table(|t| {
        let (_, r) = t.route_for("192.0.2.200".parse().unwrap()).unwrap();
        assert_eq!(r.attrs.as_path_flat(), vec![65002, 64500]);
        assert_eq!(r.peer, ip(exa_addr));
        let (_, r) = t.route_for("203.0.113.1".parse().unwrap()).unwrap();
        assert_eq!(r.peer, ip(bird_addr));
    });
    // Let the change that made it national arrive before counting anew.
    let mut before = Vec::new();
    wait_until("BIRD's realm change", Duration::from_secs(10), || {
        before.extend(sp.drain_changes());
        before
            .iter()
            .any(|c| c.prefix == p("203.0.113.0/24") && c.new == Some(RealmId(NATIONAL)))
    });
    // Without BIRD, ExaBGP's longer path is all there is: the prefix moves
    // to the international realm.
    bird.kill();
    wait_until("the fallback route", Duration::from_secs(5), || {
        sp.realm("203.0.113.1") == Some(INTERNATIONAL)
    });
    let changes = sp.changes_at_least(1, "the fallback's realm change");
    assert_eq!(
        changes,
        vec![routes::RealmChange {
            prefix: p("203.0.113.0/24"),
            old: Some(RealmId(NATIONAL)),
            new: Some(RealmId(INTERNATIONAL)),
        }]
    );
    assert_eq!(sp.status(exa_addr).established_count, 1);
}

#[test]
fn bird_pushes_110000_prefixes_and_every_realm_is_right() {
    let Some(lab) = lab("full") else { return };
    let local = loopback(17);
    let sp = start_speaker(vec![peer(local, 65001, None)]);
    // 100,000 IPv4 /28s in 100.64.0.0/10, those in 100.64.0.0/11 national
    // by community; 10,000 IPv6 /48s in 2001:db8::/32, those in
    // 2001:db8::/36 national by large community.
    let v4 = |i: u32| Ipv4Addr::from(u32::from(Ipv4Addr::new(100, 64, 0, 0)) + i * 32);
    let v6 = |i: u32| format!("2001:db8:{i:x}::");
    let mut routes4 = String::new();
    for i in 0..100_000 {
        routes4 += &format!("route {}/28 blackhole;\n", v4(i));
    }
    let mut routes6 = String::new();
    for i in 0..10_000 {
        routes6 += &format!("route {}/48 blackhole;\n", v6(i));
    }
    let conf = BirdPeer {
        local,
        local_as: 65001,
        tollgate_port: sp.port,
        hold_time: 90,
        routes4: &routes4,
        routes6: &routes6,
        filter: "if net ~ [100.64.0.0/11{28,28}] then bgp_community.add((65001,100)); \
                 if net ~ [2001:db8::/36{48,48}] then bgp_large_community.add((65001,1,100));",
    };
    let national4 = |i: u32| v4(i) < Ipv4Addr::new(100, 96, 0, 0);
    let national6 = |i: u32| i < 0x1000;
    let want_national = (0..100_000).filter(|&i| national4(i)).count()
        + (0..10_000).filter(|&i| national6(i)).count();
    let started = Instant::now();
    let _bird = Bird::start(&lab, "bird", &conf.config());
    let up = sp.wait_established(local, 1, Duration::from_secs(30));
    let up_at = started.elapsed();
    wait_until(
        "110,000 prefixes in the right realms",
        Duration::from_secs(40),
        || {
            sp.handle().with_table(|t| {
                let c = t.counts();
                let n = |r: u16| c.get(&RealmId(r)).map_or(0, |c| c.ipv4 + c.ipv6);
                t.len() == 110_000 && n(NATIONAL) == want_national
            })
        },
    );
    let done = started.elapsed();
    // Every address's realm through the longest-prefix-match tables.
    sp.handle().with_table(|t| {
        for i in 0..100_000 {
            let want = if national4(i) {
                NATIONAL
            } else {
                INTERNATIONAL
            };
            let a = IpAddr::V4(Ipv4Addr::from(u32::from(v4(i)) + 5));
            assert_eq!(t.realm_of(a), Some(RealmId(want)), "{a}");
        }
        for i in 0..10_000 {
            let want = if national6(i) {
                NATIONAL
            } else {
                INTERNATIONAL
            };
            let a: IpAddr = format!("{}1", v6(i)).parse().unwrap();
            assert_eq!(t.realm_of(a), Some(RealmId(want)), "{a}");
        }
    });
    eprintln!(
        "110,000 prefixes from BIRD: session up {:.2} s after BIRD started (waited {:.2} s), every realm right {:.2} s after start, {:.2} s after the session came up",
        up_at.as_secs_f64(),
        up.as_secs_f64(),
        done.as_secs_f64(),
        (done - up_at).as_secs_f64()
    );
}

// ---- the command line ----

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn tollgate(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .current_dir(root())
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_STATE_DIR")
        .args(args)
        .output()
        .expect("run tollgate")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The router example with route rules for the national realm.
fn write_policy(dir: &std::path::Path) -> String {
    let example = std::fs::read_to_string(root().join("examples/router.toml")).unwrap();
    let policy = example.replace(
        "prefix_files = [\"national.txt\"]",
        "communities = [\"65001:100\"]\nlarge_communities = [\"65001:1:100\"]",
    );
    assert_ne!(policy, example, "the example changed; update this test");
    let path = dir.join("policy.toml");
    std::fs::write(&path, policy).unwrap();
    path.display().to_string()
}

#[test]
fn import_reads_a_bird_mrt_dump_plain_gzip_and_bzip2() {
    let Some(lab) = lab("import") else { return };
    let (a, b) = (loopback(21), loopback(22));
    // BIRD A originates routes; BIRD B learns them over BGP and dumps its
    // tables as MRT, so the dump carries real BGP attributes.
    let bird_a = format!(
        r#"router id {a};
protocol device {{ }}
protocol static s4 {{ ipv4; route 203.0.113.0/24 blackhole; route 198.51.100.0/25 blackhole; }}
protocol static s6 {{ ipv6; route 2001:db8:7::/48 blackhole; }}
filter mark_b {{ if net = 203.0.113.0/24 then bgp_community.add((65001,100)); if net = 2001:db8:7::/48 then bgp_large_community.add((65001,1,100)); accept; }}
protocol bgp to_b {{
  local {a} as 65001; neighbor {b} as 65010; multihop; strict bind yes;
  connect delay time 1; connect retry time 1;
  ipv4 {{ import none; export filter mark_b; next hop self; }};
  ipv6 {{ import none; export filter mark_b; next hop address 2001:db8::21; }};
}}
"#
    );
    let bird_b = format!(
        r#"router id {b};
protocol device {{ }}
protocol bgp from_a {{
  local {b} as 65010; neighbor {a} as 65001; multihop; strict bind yes;
  connect delay time 1; connect retry time 1;
  ipv4 {{ import all; export none; }};
  ipv6 {{ import all; export none; }};
}}
"#
    );
    let _a = Bird::start(&lab, "bird-a", &bird_a);
    let b_proc = Bird::start(&lab, "bird-b", &bird_b);
    wait_until(
        "BIRD B to learn three routes",
        Duration::from_secs(20),
        || b_proc.cli("show route count").contains("3 of 3 routes"),
    );
    let mut dump = Vec::new();
    for table in ["master4", "master6"] {
        let file = lab.dir.join(format!("{table}.mrt"));
        let out = b_proc.cli(&format!(
            "mrt dump table \"{table}\" to \"{}\"",
            file.display()
        ));
        wait_until("BIRD's MRT dump", Duration::from_secs(5), || {
            std::fs::metadata(&file).is_ok_and(|m| m.len() > 0)
        });
        std::thread::sleep(Duration::from_millis(200));
        dump.extend(std::fs::read(&file).unwrap_or_else(|e| panic!("{out}: {e}")));
    }
    let plain = lab.dir.join("rib.mrt");
    std::fs::write(&plain, &dump).unwrap();
    let gz = lab.dir.join("rib.mrt.gz");
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(&dump).unwrap();
    std::fs::write(&gz, enc.finish().unwrap()).unwrap();
    let bz = lab.dir.join("rib.mrt.bz2");
    let mut enc = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::fast());
    enc.write_all(&dump).unwrap();
    std::fs::write(&bz, enc.finish().unwrap()).unwrap();

    let policy = write_policy(&lab.dir);
    let state = lab.dir.join("state").display().to_string();
    for file in [&plain, &gz, &bz] {
        let o = tollgate(&[
            "routes",
            "import",
            &file.display().to_string(),
            "-c",
            &policy,
            "--state-dir",
            &state,
            "--json",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(
            (
                v["prefixes"].as_u64(),
                v["ipv4"].as_u64(),
                v["ipv6"].as_u64()
            ),
            (Some(3), Some(2), Some(1)),
            "{v}"
        );
        assert_eq!(v["errors"], 0);
    }
    let o = tollgate(&[
        "routes",
        "lookup",
        "203.0.113.7",
        "--state-dir",
        &state,
        "--json",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["prefix"], "203.0.113.0/24");
    assert_eq!(v["realm"]["name"], "national");
    assert_eq!(v["realm"]["rule"], "communities = [\"65001:100\"]");
    assert_eq!(v["as_path"], serde_json::json!([65001]));
    assert_eq!(v["communities"], serde_json::json!(["65001:100"]));
    assert_eq!(v["peer"]["address"], a.to_string());
    assert_eq!(v["peer"]["asn"], 65001);
    let o = tollgate(&["routes", "lookup", "2001:db8:7::1", "--state-dir", &state]);
    let out = text(&o.stdout);
    assert!(
        out.contains("national (1)") && out.contains("65001:1:100"),
        "{out}"
    );
    let o = tollgate(&["routes", "lookup", "192.0.2.1", "--state-dir", &state]);
    assert_eq!(o.status.code(), Some(1), "no route covers it");
    let o = tollgate(&["routes", "stats", "--state-dir", &state, "--json"]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        v["realms"][0],
        serde_json::json!({"id": 1, "name": "national", "ipv4": 1, "ipv6": 1, "default": false})
    );
    assert_eq!(v["realms"][1]["ipv4"], 1);
}

#[test]
fn listen_prints_sessions_and_realm_changes_and_saves_the_table() {
    let Some(lab) = lab("listen") else { return };
    let local = loopback(23);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let bgp = lab.dir.join("bgp.toml");
    std::fs::write(
        &bgp,
        format!("local_as = 65000\nrouter_id = \"192.0.2.1\"\nlisten = [\"127.0.0.1:{port}\"]\n[[peers]]\naddress = \"{local}\"\nremote_as = 65001\nname = \"bird\"\n"),
    )
    .unwrap();
    let policy = write_policy(&lab.dir);
    let state = lab.dir.join("state").display().to_string();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args([
            "routes",
            "listen",
            "--json",
            "--bgp",
            &bgp.display().to_string(),
            "-c",
            &policy,
            "--state-dir",
            &state,
        ])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let stdout = child.stdout.take().unwrap();
    let child = Kill(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let conf = BirdPeer {
        local,
        local_as: 65001,
        tollgate_port: port,
        hold_time: 9,
        routes4: "route 203.0.113.0/24 blackhole;",
        routes6: "",
        filter: "bgp_community.add((65001,100));",
    };
    let _bird = Bird::start(&lab, "bird", &conf.config());
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(l) = rx.recv_timeout(Duration::from_millis(200)) {
            lines.push(serde_json::from_str::<serde_json::Value>(&l).unwrap());
        }
        let peer_up = lines
            .iter()
            .any(|v| v["event"] == "peer" && v["state"] == "established");
        let realms = lines
            .iter()
            .any(|v| v["event"] == "realms" && v["sample"][0]["new"] == NATIONAL);
        if peer_up && realms {
            break;
        }
    }
    assert_eq!(lines[0]["event"], "listening", "{lines:?}");
    assert!(
        lines
            .iter()
            .any(|v| v["event"] == "peer" && v["name"] == "bird" && v["state"] == "established"),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|v| v["event"] == "realms" && v["sample"][0]["prefix"] == "203.0.113.0/24"),
        "{lines:?}"
    );
    // SIGTERM: the table is saved on the way out.
    let _ = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status();
    let mut child = child;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(10) && child.0.try_wait().unwrap().is_none() {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        child.0.try_wait().unwrap().is_some_and(|s| s.success()),
        "listen did not exit cleanly on SIGTERM"
    );
    let o = tollgate(&[
        "routes",
        "lookup",
        "203.0.113.7",
        "--state-dir",
        &state,
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["realm"]["name"], "national", "{v}");
    assert_eq!(v["peer"]["asn"], 65001);
}

#[test]
fn bad_dumps_and_missing_tables_say_where_and_what_next() {
    let dir = std::env::temp_dir().join(format!("tgb-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let state = dir.join("state").display().to_string();
    let policy = write_policy(&dir);
    // A RIB record before any peer index table, then a truncated record.
    let mut bad = vec![0, 0, 0, 0, 0, 13, 0, 2, 0, 0, 0, 0];
    bad.extend_from_slice(&[0, 0, 0, 0, 0, 13, 0, 2, 0, 0, 0, 50, 1, 2]);
    let file = dir.join("bad.mrt");
    std::fs::write(&file, &bad).unwrap();
    let o = tollgate(&[
        "routes",
        "import",
        &file.display().to_string(),
        "-c",
        &policy,
        "--state-dir",
        &state,
    ]);
    let err = text(&o.stderr);
    // A bad input file: exit 1 (invalid input), as documented.
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(
        err.contains("MRT record at byte 0: RIB record before the peer index table"),
        "{err}"
    );
    assert!(
        err.contains("MRT record at byte 12: input ends inside the record"),
        "{err}"
    );
    assert!(err.contains("hint: tollgate reads TABLE_DUMP_V2"), "{err}");
    let o = tollgate(&[
        "routes",
        "import",
        "/nonexistent.mrt",
        "-c",
        &policy,
        "--state-dir",
        &state,
    ]);
    assert!(
        text(&o.stderr).contains("cannot open /nonexistent.mrt"),
        "{}",
        text(&o.stderr)
    );
    let o = tollgate(&["routes", "lookup", "192.0.2.1", "--state-dir", &state]);
    assert!(
        text(&o.stderr).contains("run `tollgate routes import FILE`"),
        "{}",
        text(&o.stderr)
    );
    let snapshot = dir.join("state/routes/table.tgr");
    std::fs::create_dir_all(snapshot.parent().unwrap()).unwrap();
    std::fs::write(&snapshot, b"TGROUTES\0\x01garbage").unwrap();
    let o = tollgate(&["routes", "stats", "--state-dir", &state]);
    assert!(
        text(&o.stderr).contains("is damaged at byte"),
        "{}",
        text(&o.stderr)
    );
    let _ = std::fs::remove_dir_all(&dir);
}
