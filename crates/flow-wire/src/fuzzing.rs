//! Entry points that run the decoders over arbitrary bytes, for cargo-fuzz
//! and for the tests. Each panics only if an invariant breaks:
//!
//! ```ignore
//! fuzz_target!(|data: &[u8]| flow_wire::fuzzing::decode(data));
//! ```

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use crate::{Decoder, Item};

/// Splits `data` into datagrams and feeds them all to one [`Decoder`], so
/// that templates and options learned from one datagram are used by the
/// next. Each datagram is framed as one byte choosing among four exporters
/// and a big-endian `u16` length; a short last frame takes what is left.
///
/// Checks that the sink sees exactly the items the summary counts, that
/// errors point inside the datagram, that the template store's counts,
/// byte total, indexes and limits stay consistent (with limits small
/// enough that eviction and refusal happen), that no record carries an
/// unspecified address, and that the state saved at the end loads and
/// saves again to the same bytes.
pub fn decode(data: &[u8]) {
    // Small limits, so that fuzzing reaches eviction and refusal.
    let mut decoder = Decoder::with_limits(crate::Limits {
        templates_per_exporter: 12,
        templates_per_domain: 6,
        fields_per_template: 200,
        template_bytes: 48 << 10,
    });
    let mut rest = data;
    let mut received_ms = 1_700_000_000_000i64;
    while let Some((&who, after)) = rest.split_first() {
        let (len, after) = match after {
            [hi, lo, tail @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), tail),
            _ => (after.len(), &[][..]),
        };
        let (datagram, tail) = after.split_at(len.min(after.len()));
        rest = tail;
        let exporter = SocketAddr::new(IpAddr::V4(Ipv4Addr::new(192, 0, 2, who & 3)), 2055);
        let (mut flows, mut counters) = (0u32, 0u32);
        let result = decoder.decode(exporter, received_ms, datagram, &mut |item| match item {
            Item::Flow(f) => {
                assert!(
                    f.sampling.population >= 1 && f.sampling.selected >= 1,
                    "a sampling ratio with a 0: {f:?}"
                );
                assert!(
                    f.src.is_none_or(|a| !a.is_unspecified())
                        && f.dst.is_none_or(|a| !a.is_unspecified()),
                    "an unspecified address stands in for a missing one: {f:?}"
                );
                flows += 1;
            }
            Item::Counters(_) => counters += 1,
        });
        match result {
            Ok(summary) => {
                assert_eq!(summary.flows, flows, "summary flows vs sink");
                assert_eq!(summary.counters, counters, "summary counters vs sink");
            }
            Err(e) => {
                assert!(
                    e.offset() <= datagram.len(),
                    "error offset {} past the datagram's {} bytes: {e}",
                    e.offset(),
                    datagram.len()
                );
                assert!(!e.message().is_empty());
            }
        }
        decoder.cache.check();
        received_ms += 1000;
    }
    let saved = decoder.save_state();
    let loaded = match Decoder::load_state(&saved) {
        Ok(d) => d,
        Err(e) => panic!("saved state does not load: {e}"),
    };
    assert_eq!(loaded.template_count(), decoder.template_count());
    assert_eq!(loaded.save_state(), saved, "state does not round-trip");
}

/// Loads `data` as a saved state. What loads must save and load again to
/// the same bytes, and must decode a few data sets without panicking.
pub fn state(data: &[u8]) {
    let Ok(mut decoder) = Decoder::load_state(data) else {
        return;
    };
    let saved = decoder.save_state();
    match Decoder::load_state(&saved) {
        Ok(again) => assert_eq!(again.save_state(), saved, "state does not round-trip"),
        Err(e) => panic!("re-saved state does not load: {e}"),
    }
    // Data sets for template 256 from the exporters a saved state is most
    // likely to name, so that loaded templates get used.
    let mut v9 = vec![
        0, 9, 0, 1, 0, 0, 0, 1, 0x65, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0,
    ];
    let mut ipfix = vec![0, 10, 0, 0, 0x65, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0];
    let body: Vec<u8> = (0u8..96).collect();
    for msg in [&mut v9, &mut ipfix] {
        msg.extend_from_slice(&[1, 0, 0, 100]);
        msg.extend_from_slice(&body);
    }
    let len = u16::try_from(ipfix.len()).unwrap_or(u16::MAX).to_be_bytes();
    if let Some(field) = ipfix.get_mut(2..4) {
        field.copy_from_slice(&len);
    }
    for addr in decoder
        .cache
        .exporters
        .keys()
        .map(|k| k.addr)
        .collect::<Vec<_>>()
    {
        for msg in [&v9, &ipfix] {
            let _ = decoder.decode(SocketAddr::new(addr, 2055), 0, msg, &mut |_| {});
        }
    }
}
