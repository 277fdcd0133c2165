//! Malformed input of every kind: errors with offsets, never a panic.

use flow_wire::{fuzzing, Decoder};

use super::{decode, decode_err, exporter, try_decode};
use crate::builder::*;

/// Valid datagrams of every protocol, each after the ones it depends on.
fn corpus() -> Vec<Vec<u8>> {
    let v9g = Flowgen::new(false, 1, 30, 1);
    let ipg = Flowgen::new(true, 1, 30, 1);
    let mut out = vec![
        v9g.template.clone(),
        v9g.datagrams[0].clone(),
        ipg.template.clone(),
        ipg.datagrams[0].clone(),
    ];
    let rec = Bytes::new()
        .u16(400)
        .u16(4)
        .u16(8)
        .u16(4)
        .u16(96)
        .u16(65535)
        .u16(0x8001)
        .u16(4)
        .u32(9)
        .u16(1)
        .u16(8)
        .build();
    out.push(ipfix(1, 0, 0, &[set(2, &rec)]));
    let data = Bytes::new()
        .u32(1)
        .var(b"abc", false)
        .u32(5)
        .u64(7)
        .u32(2)
        .var(&[1; 300], false)
        .u32(5)
        .u64(7)
        .pad4()
        .build();
    out.push(ipfix(1, 1, 0, &[set(400, &data)]));
    let opts = set(
        3,
        &ipfix_options_record(600, &[(302, 8)], &[(305, 4), (306, 4)]),
    );
    out.push(ipfix(
        1,
        2,
        0,
        &[opts, set(600, &Bytes::new().u64(7).u32(1).u32(9).build())],
    ));
    out.push(v5(1000, 1, 0, 0, 0x4010, &[]));
    let hdr = [
        ethernet(&[(0x8100, 1)], 0x0800),
        ipv4_header(
            "10.0.0.1".parse().unwrap(),
            "10.0.0.2".parse().unwrap(),
            6,
            40,
            0,
        ),
        l4_ports(1, 2),
    ]
    .concat();
    out.push(sflow(
        1,
        0,
        &[
            flow_sample(10, &[raw_header(1, 64, 4, &hdr)]),
            counter_sample(1, [1; 12]),
        ],
    ));
    out
}

#[test]
fn corpus_decodes() {
    let mut dec = Decoder::new();
    for d in corpus() {
        decode(&mut dec, exporter(1), &d);
    }
}

#[test]
fn every_truncation_fails_cleanly_or_decodes_less() {
    for d in corpus() {
        for n in 0..d.len() {
            // A fresh decoder primed with the corpus, so data sets meet
            // their templates.
            let mut dec = Decoder::new();
            for c in corpus() {
                let _ = try_decode(&mut dec, exporter(1), &c);
            }
            match try_decode(&mut dec, exporter(1), &d[..n]) {
                Ok(_) => {}
                Err(e) => assert!(e.offset() <= n, "cut at {n}: {e}"),
            }
        }
    }
}

#[test]
fn bit_flips_never_panic() {
    let mut rng = Rng::new(99);
    for d in corpus() {
        for _ in 0..300 {
            let mut c = d.clone();
            for _ in 0..1 + rng.below(4) {
                let i = rng.below(c.len() as u64) as usize;
                c[i] ^= 1 << rng.below(8);
            }
            let mut dec = Decoder::new();
            for p in corpus() {
                let _ = try_decode(&mut dec, exporter(1), &p);
            }
            if let Err(e) = try_decode(&mut dec, exporter(1), &c) {
                assert!(e.offset() <= c.len(), "{e}");
            }
        }
    }
}

#[test]
fn garbage_never_panics() {
    let mut rng = Rng::new(5);
    for len in 0..300usize {
        for version in [[0u8, 5], [0, 9], [0, 10], [0, 0], [1, 2]] {
            let mut g: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if len >= 2 {
                g[..2].copy_from_slice(&version);
            }
            if version == [0, 0] && len >= 4 {
                g[2..4].copy_from_slice(&[0, 5]);
            }
            let _ = try_decode(&mut Decoder::new(), exporter(1), &g);
        }
        fuzzing::decode(&(0..len).map(|_| rng.next() as u8).collect::<Vec<_>>());
        fuzzing::state(&(0..len).map(|_| rng.next() as u8).collect::<Vec<_>>());
    }
}

#[test]
fn fuzzing_entry_runs_the_corpus_as_one_session() {
    let mut framed = Vec::new();
    for d in corpus() {
        framed.push(1);
        framed.extend((d.len() as u16).to_be_bytes());
        framed.extend(d);
    }
    fuzzing::decode(&framed);
}

#[test]
fn unknown_versions_and_short_datagrams_are_named() {
    let mut dec = Decoder::new();
    let e = decode_err(&mut dec, exporter(1), &[0, 7, 0, 0]);
    assert_eq!(
        e.to_string(),
        "offset 0: unknown version 7 (expected NetFlow 5 or 9, IPFIX 10, or sFlow 5)"
    );
    assert!(decode_err(&mut dec, exporter(1), &[])
        .message()
        .contains("0 bytes"));
    assert!(decode_err(&mut dec, exporter(1), &[0, 9, 0])
        .message()
        .contains("NetFlow v9 header needs 20 bytes"));
    // A set shorter than its own header.
    let d = v9(0, 0, 0, 0, 0, &[vec![1, 0, 0, 2]]);
    let e = decode_err(&mut dec, exporter(1), &d);
    assert_eq!(
        e.to_string(),
        "offset 20: set 256 (data) has length 2, less than its own 4-byte header"
    );
}

#[test]
fn failure_part_way_keeps_what_came_before() {
    let gen = Flowgen::new(false, 1, 30, 1);
    let mut dec = Decoder::new();
    decode(&mut dec, exporter(1), &gen.template);
    // The data set, then a set that claims too much.
    let mut d = gen.datagrams[0].clone();
    d.extend([1, 0, 0x10, 0]);
    let mut flows = 0;
    let r = dec.decode(exporter(1), 0, &d, &mut |_| flows += 1);
    assert!(r.is_err());
    assert_eq!(flows, 30);
}

/// The largest NetFlow v9 template one datagram can carry: 16,369 field
/// specifiers of 4 bytes (65,535 bytes less the headers).
fn maximal_v9_template(id: u16) -> Vec<u8> {
    let fields: Vec<(u16, u16)> = (0..16_369u16).map(|i| (1000 + i % 500, 1)).collect();
    v9(
        0,
        1_767_225_600,
        u32::from(id),
        0,
        1,
        &[set(0, &template_record(id, &fields))],
    )
}

#[test]
fn a_flood_of_maximal_templates_cannot_grow_the_decoder_without_bound() {
    // Issue 12, item 10: 12,000 templates of 16,369 fields took a collector
    // to 5.2 GB. One allowlisted exporter floods; another keeps sending
    // valid data, which must keep decoding.
    let mut dec = Decoder::new();
    let honest = exporter(2);
    let gen = Flowgen::new(false, 1, 30, 3);
    decode(&mut dec, honest, &gen.template);
    for i in 0..1_000u16 {
        let _ = try_decode(&mut dec, exporter(1), &maximal_v9_template(256 + i));
        if i % 100 == 0 {
            assert_eq!(decode(&mut dec, honest, &gen.datagrams[0]).flows.len(), 30);
        }
    }
    assert_eq!(decode(&mut dec, honest, &gen.datagrams[0]).flows.len(), 30);
    let saved = dec.save_state().len();
    assert!(
        saved <= 16 << 20,
        "the decoder holds {saved} bytes of templates after the flood"
    );
}
