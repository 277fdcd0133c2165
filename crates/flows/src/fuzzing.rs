//! An entry point that runs decoding and attribution over arbitrary bytes,
//! for cargo-fuzz (`fuzz/fuzz_targets/flow_attribute.rs`) and the tests.

use crate::{Attribution, Outcome, Owner, Tally, SLOT_BYTES_LIMIT, SLOT_PACKETS_LIMIT};
use flow_wire::{Decoder, Item};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::OnceLock;

/// Tenant 1 (flows) holds 0.0.0.0/1, where a missing address used to
/// land; tenant 2 (flows) 192.0.2.0/24 and 2001:db8:2::/48; tenant 3 is
/// counted in the kernel; exporter 192.0.2.2 has a sampling override.
const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }
[realms]
default = "international"
[realms.national]
id = 1
prefixes = ["198.51.100.0/24"]
[realms.international]
id = 2
[plans.basic]
down = { rate = "10mbit", ceil = "100mbit" }
up = { rate = "10mbit", ceil = "100mbit" }
[flows]
listen = ["127.0.0.1:2055"]
[[flows.exporters]]
address = "192.0.2.1"
[[flows.exporters]]
address = "192.0.2.2"
sampling = 1000
[[tenants]]
id = 1
plan = "basic"
prefixes = ["0.0.0.0/1"]
measured_by = "flows"
[[tenants]]
id = 2
plan = "basic"
prefixes = ["192.0.2.0/24", "2001:db8:2::/48"]
measured_by = "flows"
[[tenants]]
id = 3
plan = "basic"
prefixes = ["203.0.113.0/24"]
"#;

fn tables() -> Option<&'static Attribution> {
    static TABLES: OnceLock<Option<Attribution>> = OnceLock::new();
    TABLES
        .get_or_init(|| {
            let p = policy::load_str("fuzz.toml", POLICY).policy?;
            Attribution::new(&p, &[], 1).ok()
        })
        .as_ref()
}

/// Splits `data` into datagrams (one byte choosing one of four exporters,
/// a big-endian `u16` length, the datagram), decodes them in order with
/// one decoder and attributes every flow with one tally. Checks that every
/// record has exactly one outcome, that a record without addresses is
/// never billed, that no drained slot and key exceeds the link limits, and
/// that what is drained is, to the byte, each attributed record's scaled
/// counters once per tenant end.
pub fn attribute(data: &[u8]) {
    let Some(tables) = tables() else {
        panic!("the fuzzing policy does not load");
    };
    let mut decoder = Decoder::new();
    // 16 cache entries: a full-size cache (320 KiB) made and filled per
    // input was most of an execution's time, and a small one keeps
    // evictions and refills on every input.
    let mut tally = Tally::with_cache_bits(4);
    let (mut want_bytes, mut want_packets) = (0u128, 0u128);
    let mut rest = data;
    let mut received = 1_767_225_600_000i64;
    while let Some((&who, after)) = rest.split_first() {
        let (len, after) = match after {
            [hi, lo, tail @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), tail),
            _ => (after.len(), &[][..]),
        };
        let (datagram, tail) = after.split_at(len.min(after.len()));
        rest = tail;
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1 + (who & 3)));
        let _ = decoder.decode(SocketAddr::new(ip, 2055), received, datagram, &mut |item| {
            let Item::Flow(f) = item else { return };
            let outcome = tally.record(tables, ip, received, f);
            if f.src.is_none() && f.dst.is_none() {
                assert_eq!(outcome, Outcome::Unattributed, "{f:?}");
            }
            if outcome == Outcome::Attributed {
                let ends = [f.src, f.dst]
                    .iter()
                    .filter(|a| {
                        a.is_some_and(|a| matches!(tables.resolve(a).0, Some(Owner::Flows(_))))
                    })
                    .count() as u128;
                let s = tables.sampling(ip, f.sampling);
                let (Some(b), Some(p)) = (s.scale(f.bytes), s.scale(f.packets)) else {
                    panic!("an attributed record whose scaling overflows: {f:?}");
                };
                want_bytes += u128::from(b) * ends;
                want_packets += u128::from(p) * ends;
            }
        });
        received += 1000;
    }
    let st = tally.stats();
    assert_eq!(
        st.flows,
        st.attributed + st.kernel_measured + st.unattributed + st.quarantined,
        "{st:?}"
    );
    let drained = tally.drain();
    for s in &drained {
        assert!(
            s.bytes <= SLOT_BYTES_LIMIT && s.packets <= SLOT_PACKETS_LIMIT,
            "{s:?}"
        );
    }
    let bytes: u128 = drained.iter().map(|s| u128::from(s.bytes)).sum();
    let packets: u128 = drained.iter().map(|s| u128::from(s.packets)).sum();
    assert_eq!((bytes, packets), (want_bytes, want_packets), "{st:?}");
}
