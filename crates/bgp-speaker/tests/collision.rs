//! Connection collisions (RFC 4271 §6.8) against a scripted peer on
//! loopback: the speaker connects to the peer (it is active), the peer
//! connects to the speaker at the same time, and both connections send
//! their OPENs. The speaker must close exactly the connection that the
//! side with the lower BGP identifier opened, with Cease / Connection
//! Collision Resolution (subcode 7), and establish the other one.
//!
//! The peer is a script rather than BIRD because a collision with a real
//! daemon depends on both connecting within the same few milliseconds;
//! the script makes it happen every time, with real TCP and real BGP
//! messages (the `bgp` crate's codec). No root needed: 127.0.0.2 is on
//! loopback.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use bgp::wire::{self, code, Message, Open, WireOptions};
use bgp_speaker::{PeerState, Speaker, SpeakerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

const PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OUR_ID: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

/// Reads one whole BGP message, or `None` when the connection closed.
async fn read_message(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Message> {
    loop {
        if let Ok(Some(len)) = wire::frame_len(buf) {
            if len <= buf.len() {
                let msg = wire::decode(&buf[..len], WireOptions::default()).expect("decodes");
                buf.drain(..len);
                return Some(msg);
            }
        }
        let mut chunk = [0u8; 4096];
        let n = tokio::time::timeout(Duration::from_secs(10), s.read(&mut chunk))
            .await
            .expect("the speaker answers within 10 s")
            .ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

async fn send(s: &mut TcpStream, m: &Message) {
    let bytes = m.encode(WireOptions::default()).expect("encodes");
    s.write_all(&bytes).await.expect("write to the speaker");
}

/// What one connection got from the speaker after our OPEN: its
/// messages until it closed or we stopped reading.
#[derive(Debug, Default)]
struct Seen {
    keepalive: bool,
    notification: Option<(u8, u8)>,
    closed: bool,
}

/// Reads until the speaker sends a NOTIFICATION and closes, or (for the
/// survivor) a KEEPALIVE and then nothing for 500 ms.
async fn watch(s: &mut TcpStream, buf: &mut Vec<u8>) -> Seen {
    let mut seen = Seen::default();
    loop {
        let next = tokio::time::timeout(Duration::from_millis(500), read_message(s, buf)).await;
        match next {
            Err(_) if seen.keepalive => return seen,
            Err(_) => continue,
            Ok(None) => {
                seen.closed = true;
                return seen;
            }
            Ok(Some(Message::Keepalive)) => seen.keepalive = true,
            Ok(Some(Message::Notification(n))) => seen.notification = Some((n.code, n.subcode)),
            Ok(Some(other)) => panic!("unexpected {other:?}"),
        }
    }
}

/// Runs one collision with a peer whose BGP identifier is `peer_id`;
/// returns what the speaker did on the connection it opened and on the
/// one the peer opened, and the peer's state afterwards.
async fn collide(peer_id: Ipv4Addr) -> (Seen, Seen, PeerState) {
    let peer_listener = TcpListener::bind((PEER, 0)).await.expect("bind 127.0.0.2");
    let peer_port = peer_listener.local_addr().unwrap().port();
    let config = SpeakerConfig::from_toml(
        "collision.toml",
        &format!(
            r#"
local_as = 65000
router_id = "{OUR_ID}"
listen = ["127.0.0.1:0"]
[[peers]]
address = "{PEER}"
remote_as = 65001
port = {peer_port}
passive = false
hold_time = 90
"#
        ),
    )
    .expect("config");
    let speaker = Speaker::bind(config).await.expect("bind the speaker");
    let speaker_addr: SocketAddr = speaker.local_addrs()[0];
    let rules = routes::RealmRules::new(vec![], (routes::RealmId(2), "international".into()));
    let (tx, _changes) = tokio::sync::mpsc::unbounded_channel();
    let handle = speaker.start(routes::RouteTable::new(rules), tx);

    // The speaker's connection to us, and its OPEN.
    let (mut ours, _) = tokio::time::timeout(Duration::from_secs(10), peer_listener.accept())
        .await
        .expect("the active speaker connects within 10 s")
        .expect("accept");
    let mut ours_buf = Vec::new();
    assert!(matches!(
        read_message(&mut ours, &mut ours_buf).await,
        Some(Message::Open(_))
    ));
    // Ours to it, from the peer's address, while the first is opening.
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(SocketAddr::new(IpAddr::V4(PEER), 0)).unwrap();
    let mut theirs = socket.connect(speaker_addr).await.expect("connect");
    let mut theirs_buf = Vec::new();
    assert!(matches!(
        read_message(&mut theirs, &mut theirs_buf).await,
        Some(Message::Open(_))
    ));
    let open = Message::Open(Open {
        my_as: 65001,
        hold_time: 90,
        bgp_id: peer_id,
        capabilities: vec![],
    });
    send(&mut ours, &open).await;
    send(&mut theirs, &open).await;
    let (a, b) = tokio::join!(
        watch(&mut ours, &mut ours_buf),
        watch(&mut theirs, &mut theirs_buf)
    );
    // The survivor gets our KEEPALIVE and comes up.
    let survivor = if a.notification.is_none() {
        &mut ours
    } else {
        &mut theirs
    };
    send(survivor, &Message::Keepalive).await;
    let mut state = PeerState::Idle;
    for _ in 0..100 {
        state = handle.peers()[0].state;
        if state == PeerState::Established {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    handle.shutdown().await;
    (a, b, state)
}

fn cease_7(s: &Seen) -> bool {
    s.notification == Some((code::CEASE, 7)) && s.closed
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_a_higher_identifier_keeps_the_connection_it_opened() {
    let (ours, theirs, state) = collide(Ipv4Addr::new(203, 0, 113, 9)).await;
    assert!(cease_7(&ours), "the speaker's own connection: {ours:?}");
    assert!(
        theirs.keepalive && theirs.notification.is_none() && !theirs.closed,
        "the peer's connection: {theirs:?}"
    );
    assert_eq!(state, PeerState::Established);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_with_a_lower_identifier_loses_the_connection_it_opened() {
    let (ours, theirs, state) = collide(Ipv4Addr::new(100, 64, 0, 1)).await;
    assert!(cease_7(&theirs), "the peer's connection: {theirs:?}");
    assert!(
        ours.keepalive && ours.notification.is_none() && !ours.closed,
        "the speaker's own connection: {ours:?}"
    );
    assert_eq!(state, PeerState::Established);
}
