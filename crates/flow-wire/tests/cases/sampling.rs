//! Sampling learned from options records and carried in records.

use std::net::Ipv4Addr;

use flow_wire::{Decoder, Sampling, SamplingOrigin};

use super::{decode, exporter};
use crate::builder::*;

const EXPORT: u32 = 1_767_225_600;

fn flow_rec(sampler: u8) -> Bytes {
    Bytes::new()
        .ip4(Ipv4Addr::new(10, 0, 0, 1))
        .ip4(Ipv4Addr::new(10, 0, 0, 2))
        .u32(1500)
        .u8(sampler)
}

#[test]
fn v9_sampler_id_links_data_to_options_interval() {
    let mut dec = Decoder::new();
    // Options template 257: scope System (type 1, 4 bytes), options
    // FLOW_SAMPLER_ID (48, 1), FLOW_SAMPLER_MODE (49, 1),
    // FLOW_SAMPLER_RANDOM_INTERVAL (50, 4).
    let opts_tpl = set(
        1,
        &v9_options_record(257, &[(1, 4)], &[(48, 1), (49, 1), (50, 4)]),
    );
    let data_tpl = set(
        0,
        &template_record(256, &[(8, 4), (12, 4), (1, 4), (48, 1)]),
    );
    let opts = set(
        257,
        &Bytes::new()
            .u32(0)
            .u8(3)
            .u8(2)
            .u32(512)
            .u32(0)
            .u8(4)
            .u8(2)
            .u32(64)
            .pad4()
            .build(),
    );
    let out = decode(
        &mut dec,
        exporter(1),
        &v9(0, EXPORT, 0, 0, 4, &[opts_tpl, data_tpl, opts]),
    );
    assert_eq!(out.summary.templates_learned, 2);
    assert_eq!(out.summary.options_records, 2);
    let data = set(
        256,
        &flow_rec(3)
            .raw(&flow_rec(4).0)
            .raw(&flow_rec(9).0)
            .pad4()
            .build(),
    );
    let flows = decode(&mut dec, exporter(1), &v9(0, EXPORT, 1, 0, 3, &[data])).flows;
    assert_eq!(
        flows[0].sampling,
        Sampling::one_in(512, SamplingOrigin::OptionsTemplate)
    );
    assert_eq!(
        flows[1].sampling,
        Sampling::one_in(64, SamplingOrigin::OptionsTemplate)
    );
    // An unannounced sampler: unknown.
    assert_eq!(flows[2].sampling, Sampling::UNKNOWN);
}

#[test]
fn ipfix_selector_with_packet_interval_and_space() {
    let mut dec = Decoder::new();
    // Scope selectorId (302, 8 bytes); options samplingPacketInterval
    // (305) and samplingPacketSpace (306): 1 selected, 999 skipped.
    let opts_tpl = set(
        3,
        &ipfix_options_record(600, &[(302, 8)], &[(305, 4), (306, 4)]),
    );
    let data_tpl = set(
        2,
        &template_record(256, &[(8, 4), (12, 4), (1, 4), (302, 1)]),
    );
    let opts = set(600, &Bytes::new().u64(7).u32(1).u32(999).build());
    decode(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 0, 0, &[opts_tpl, data_tpl, opts]),
    );
    let data = set(256, &flow_rec(7).pad4().build());
    let f = decode(&mut dec, exporter(1), &ipfix(EXPORT, 1, 0, &[data])).flows[0];
    assert_eq!(
        f.sampling,
        Sampling::one_in(1000, SamplingOrigin::OptionsTemplate)
    );
}

#[test]
fn exporter_wide_option_applies_to_every_record_of_that_domain() {
    let mut dec = Decoder::new();
    // v9 options with scope System and SAMPLING_INTERVAL (34), no sampler id.
    let opts_tpl = set(1, &v9_options_record(257, &[(1, 4)], &[(34, 4), (35, 1)]));
    let data_tpl = set(0, &template_record(256, &[(8, 4), (12, 4), (1, 4)]));
    let opts = set(257, &Bytes::new().u32(0).u32(2000).u8(2).pad4().build());
    decode(
        &mut dec,
        exporter(1),
        &v9(0, EXPORT, 0, 7, 3, &[opts_tpl, data_tpl.clone(), opts]),
    );
    let rec = Bytes::new()
        .ip4(Ipv4Addr::new(10, 0, 0, 1))
        .ip4(Ipv4Addr::new(10, 0, 0, 2))
        .u32(100)
        .build();
    let f = decode(
        &mut dec,
        exporter(1),
        &v9(0, EXPORT, 1, 7, 1, &[set(256, &rec)]),
    )
    .flows[0];
    assert_eq!(
        f.sampling,
        Sampling::one_in(2000, SamplingOrigin::OptionsTemplate)
    );
    // Another domain of the same exporter is not affected.
    decode(&mut dec, exporter(1), &v9(0, EXPORT, 0, 8, 1, &[data_tpl]));
    let g = decode(
        &mut dec,
        exporter(1),
        &v9(0, EXPORT, 1, 8, 1, &[set(256, &rec)]),
    )
    .flows[0];
    assert_eq!(g.sampling, Sampling::UNKNOWN);
}

#[test]
fn interval_in_the_record_itself() {
    let mut dec = Decoder::new();
    let tpl = set(
        2,
        &template_record(256, &[(8, 4), (12, 4), (1, 4), (34, 2)]),
    );
    decode(&mut dec, exporter(1), &ipfix(EXPORT, 0, 0, &[tpl]));
    let rec = Bytes::new()
        .ip4(Ipv4Addr::new(10, 0, 0, 1))
        .ip4(Ipv4Addr::new(10, 0, 0, 2))
        .u32(100)
        .u16(128)
        .pad4();
    let f = decode(
        &mut dec,
        exporter(1),
        &ipfix(EXPORT, 1, 0, &[set(256, &rec.build())]),
    )
    .flows[0];
    assert_eq!(f.sampling, Sampling::one_in(128, SamplingOrigin::Record));
}
