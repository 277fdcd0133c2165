//! Saving and loading the decoder's state.

use std::net::Ipv4Addr;

use flow_wire::{Decoder, Sampling, SamplingOrigin};

use super::{decode, exporter};
use crate::builder::*;

const EXPORT: u32 = 1_767_225_600;

fn learned() -> Decoder {
    let mut dec = Decoder::new();
    let gen = Flowgen::new(false, 1, 30, 1);
    decode(&mut dec, exporter(1), &gen.template);
    let gen6 = Flowgen::new(true, 1, 30, 1);
    decode(
        &mut dec,
        "[2001:db8::5]:4739".parse().unwrap(),
        &gen6.template,
    );
    let opts_tpl = set(1, &v9_options_record(257, &[(1, 4)], &[(48, 1), (50, 4)]));
    let data_tpl = set(
        0,
        &template_record(300, &[(8, 4), (12, 4), (1, 4), (48, 1)]),
    );
    let sys = set(1, &v9_options_record(258, &[(1, 4)], &[(34, 4)]));
    let opts = set(257, &Bytes::new().u32(0).u8(3).u32(100).pad4().build());
    let wide = set(258, &Bytes::new().u32(0).u32(10).build());
    decode(
        &mut dec,
        exporter(2),
        &v9(0, EXPORT, 0, 4, 5, &[opts_tpl, data_tpl, sys, opts, wide]),
    );
    dec
}

#[test]
fn save_load_then_data_decodes() {
    let dec = learned();
    let saved = dec.save_state();
    assert_eq!(saved, learned().save_state(), "saving is deterministic");
    let mut back = Decoder::load_state(&saved).unwrap();
    assert_eq!(back.save_state(), saved, "a loaded state saves the same");
    assert_eq!(back.template_count(), dec.template_count());
    assert_eq!(back.template_count(), 5);
    let gen = Flowgen::new(false, 2, 30, 1);
    let out = decode(&mut back, exporter(1), &gen.datagrams[1]);
    assert_eq!(out.summary.flows, 30);
    assert_eq!(
        out.flows.iter().map(|f| f.bytes).sum::<u64>(),
        gen.truth[1].iter().map(|t| t.bytes).sum::<u64>()
    );
    let gen6 = Flowgen::new(true, 1, 30, 1);
    assert_eq!(
        decode(
            &mut back,
            "[2001:db8::5]:1".parse().unwrap(),
            &gen6.datagrams[0]
        )
        .summary
        .flows,
        30
    );
    // Sampling options came back too: sampler 3 → 100, exporter-wide 10.
    let rec = |s: u8| {
        Bytes::new()
            .ip4(Ipv4Addr::new(10, 0, 0, 1))
            .ip4(Ipv4Addr::new(10, 0, 0, 2))
            .u32(1)
            .u8(s)
    };
    let data = set(300, &rec(3).raw(&rec(5).0).pad4().build());
    let flows = decode(&mut back, exporter(2), &v9(0, EXPORT, 1, 4, 2, &[data])).flows;
    assert_eq!(
        flows[0].sampling,
        Sampling::one_in(100, SamplingOrigin::OptionsTemplate)
    );
    assert_eq!(
        flows[1].sampling,
        Sampling::one_in(10, SamplingOrigin::OptionsTemplate)
    );
}

#[test]
fn empty_state_round_trips() {
    let saved = Decoder::new().save_state();
    assert_eq!(Decoder::load_state(&saved).unwrap().template_count(), 0);
}

#[test]
fn load_rejects_bad_input_with_offsets() {
    let saved = learned().save_state();
    let e = Decoder::load_state(b"NOPE\0\x01").unwrap_err();
    assert_eq!(e.offset(), 0);
    let mut v3 = saved.clone();
    v3[5] = 3;
    let e = Decoder::load_state(&v3).unwrap_err();
    assert_eq!(e.offset(), 4);
    assert!(e.message().contains("version 3"), "{e}");
    let mut trailing = saved.clone();
    trailing.push(0);
    assert_eq!(
        Decoder::load_state(&trailing).unwrap_err().offset(),
        saved.len()
    );
    // Every truncation fails, at an offset inside the input.
    for n in 0..saved.len() {
        let e = Decoder::load_state(&saved[..n]).unwrap_err();
        assert!(e.offset() <= n, "cut at {n}: {e}");
    }
    // Every single-byte corruption either loads or fails cleanly.
    for i in 0..saved.len() {
        for x in [0x01u8, 0x80, 0xff] {
            let mut c = saved.clone();
            c[i] ^= x;
            if let Err(e) = Decoder::load_state(&c) {
                assert!(e.offset() <= c.len());
            }
        }
    }
}
