//! Entry points that run the decoders and the state machine over arbitrary
//! bytes, for cargo-fuzz and for the tests. Each panics only if an
//! invariant breaks:
//!
//! ```ignore
//! fuzz_target!(|data: &[u8]| {
//!     bgp::fuzzing::decode_message(data);
//! });
//! ```
//!
//! Each also returns what it decoded, so that a test feeding it a valid
//! input can check that the input really decoded: a fuzz entry that quietly
//! ignores a decode error proves nothing about a valid message.

use std::time::Duration;

use crate::mrt::MrtReader;
use crate::session::{Event, Output, Session, SessionConfig, State};
use crate::wire::{self, Message, WireOptions};

/// Frames `body` as a message of type `kind`, so that fuzzers reach the
/// message parsers without first having to discover the 16-byte marker.
fn framed(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    let len = (body.len() + wire::HEADER_LEN).min(u16::MAX as usize) as u16;
    m.extend_from_slice(&len.to_be_bytes());
    m.push(kind);
    m.extend_from_slice(body);
    m
}

/// Decodes `data` as a message, both as given and framed behind a valid
/// header (first byte: type), in both AS-number modes. Whatever decodes
/// must re-encode and decode to an equal message. Returns every message
/// that decoded (as given with two-byte, then four-byte AS numbers; then
/// framed, likewise).
pub fn decode_message(data: &[u8]) -> Vec<Message> {
    let framed = match data.split_first() {
        Some((&kind, body)) => framed(kind % 6, body),
        None => Vec::new(),
    };
    let mut decoded = Vec::new();
    for input in [data, &framed[..]] {
        let _ = wire::frame_len(input);
        for four_byte_as in [false, true] {
            let opts = WireOptions { four_byte_as };
            if let Ok(msg) = wire::decode(input, opts) {
                round_trip(&msg, opts);
                decoded.push(msg);
            }
        }
    }
    decoded
}

fn round_trip(msg: &Message, opts: WireOptions) {
    // Re-encoding may legitimately grow past 4096 bytes (a short AS4_PATH
    // becomes a full one), and such a message cannot be sent at all.
    if let Ok(bytes) = msg.encode(opts) {
        match wire::decode(&bytes, opts) {
            Ok(again) => assert_eq!(&again, msg, "re-encoded message differs"),
            Err(e) => panic!("re-encoded message does not decode: {e}\n{msg:?}"),
        }
    }
}

/// Reads `data` as an MRT dump to the end, both as given and behind a
/// small valid PEER_INDEX_TABLE so that RIB records can resolve peers.
/// Returns how many route entries were read from `data` as given.
pub fn mrt(data: &[u8]) -> usize {
    let mut with_peers = peer_table();
    with_peers.extend_from_slice(data);
    let mut entries = [0; 2];
    for (n, input) in entries.iter_mut().zip([data, &with_peers[..]]) {
        let mut reader = MrtReader::new(input);
        for item in reader.by_ref() {
            match item {
                Ok(_) => *n += 1,
                Err(e) => assert!(e.offset < input.len(), "error offset past the input"),
            }
        }
        assert!(reader.records() <= input.len() / 12);
        assert_eq!(
            reader.skipped(),
            reader.skipped_records().values().sum::<usize>()
        );
    }
    entries[0]
}

/// A PEER_INDEX_TABLE with one IPv4 and one IPv6 peer.
fn peer_table() -> Vec<u8> {
    let mut body = vec![192, 0, 2, 1, 0, 0, 0, 2];
    body.extend_from_slice(&[2, 10, 0, 0, 1, 192, 0, 2, 10, 0, 0, 0xfd, 0xe8]);
    body.extend_from_slice(&[3, 10, 0, 0, 2]);
    body.extend_from_slice(&[0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
    body.extend_from_slice(&[0, 0, 0xfd, 0xe9]);
    let mut rec = vec![0, 0, 0, 0, 0, 13, 0, 1];
    rec.extend_from_slice(&(body.len() as u32).to_be_bytes());
    rec.extend_from_slice(&body);
    rec
}

/// Drives a session with operations decoded from `data`: raw byte chunks,
/// framed messages, a valid OPEN and KEEPALIVE, time steps, refresh
/// requests and reconnects. Everything the session sends must decode, and
/// routes may only be reported while established.
pub fn session(data: &[u8]) {
    let config = SessionConfig {
        local_as: 65000,
        router_id: std::net::Ipv4Addr::new(192, 0, 2, 1),
        peer_as: None,
        hold_time: 9,
    };
    let mut s = Session::new(config);
    let mut now = Duration::ZERO;
    let mut out = s.connected(now);
    let mut established = false;
    let mut i = 0;
    while let Some(&op) = data.get(i) {
        let arg = data.get(i + 1).copied().unwrap_or(0) as usize;
        let chunk = data
            .get(i + 2..(i + 2 + arg).min(data.len()))
            .unwrap_or_default();
        i += 2;
        out.extend(match op % 8 {
            0 => {
                i += chunk.len();
                s.handle_bytes(now, chunk)
            }
            1 => {
                i += chunk.len();
                s.handle_bytes(
                    now,
                    &framed(
                        chunk.first().map_or(2, |k| k % 6),
                        chunk.get(1..).unwrap_or_default(),
                    ),
                )
            }
            2 => s.handle_bytes(now, &peer_open(arg)),
            3 => s.handle_bytes(now, &framed(4, &[])),
            4 => {
                now += Duration::from_millis(arg as u64 * 50);
                s.poll(now)
            }
            5 => s.request_refresh(),
            6 => s.connected(now),
            _ => s.closed(now),
        });
        // Events come in order, so replaying them tells whether each one
        // happened while the session was established.
        for o in out.drain(..) {
            match o {
                Output::Send(bytes) => {
                    let decoded = wire::decode(&bytes, WireOptions::default());
                    assert!(decoded.is_ok(), "session sent an undecodable message");
                }
                Output::Event(Event::Update { .. } | Event::RefreshRequested { .. }) => {
                    assert!(established, "routes reported outside Established");
                }
                Output::Event(Event::Down { .. }) => established = false,
                Output::Event(Event::Established { .. }) => established = true,
            }
        }
        assert_eq!(established, s.state() == State::Established);
    }
}

/// A valid OPEN from the peer whose hold time and capabilities vary.
fn peer_open(variant: usize) -> Vec<u8> {
    let open = wire::Open {
        my_as: 65001,
        hold_time: [0, 3, 9, 90][variant % 4],
        bgp_id: std::net::Ipv4Addr::new(192, 0, 2, 2),
        capabilities: match variant / 4 % 3 {
            0 => vec![],
            1 => vec![wire::Capability::FourOctetAs(65001)],
            _ => vec![
                wire::Capability::Multiprotocol { afi: 2, safi: 1 },
                wire::Capability::RouteRefresh,
                wire::Capability::FourOctetAs(65001),
            ],
        },
    };
    Message::Open(open)
        .encode(WireOptions::default())
        .unwrap_or_default()
}

/// A deterministic xorshift64 generator, shared by the benchmark and the
/// tests so that both draw the same reproducible inputs.
#[derive(Clone, Debug)]
pub struct Xorshift64(pub u64);

impl Xorshift64 {
    /// The next 64 bits. The seed must not be zero.
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A number in `0..n`; `n` must not be zero.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
}
