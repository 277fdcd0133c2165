//! Template limits: per domain, per exporter, fields, bytes; least
//! recently used out first; refusals counted (issue 12, item 10).

use std::net::Ipv4Addr;

use flow_wire::{Decoder, Limits, RefusedBy};

use super::{decode, exporter};
use crate::builder::*;

const EXPORT: u32 = 1_767_225_600;

fn limits(per_domain: usize, per_exporter: usize, bytes: usize) -> Limits {
    Limits {
        templates_per_exporter: per_exporter,
        templates_per_domain: per_domain,
        fields_per_template: 64,
        template_bytes: bytes,
    }
}

/// A v9 template datagram for `id` in `domain`: three fields.
fn template(id: u16, domain: u32) -> Vec<u8> {
    let t = set(0, &template_record(id, &[(8, 4), (12, 4), (1, 4)]));
    v9(0, EXPORT, 0, domain, 1, &[t])
}

/// One record for template `id` in `domain`.
fn data(id: u16, domain: u32) -> Vec<u8> {
    let rec = Bytes::new()
        .ip4(Ipv4Addr::new(10, 0, 0, 1))
        .ip4(Ipv4Addr::new(10, 0, 0, 2))
        .u32(77)
        .build();
    v9(0, EXPORT, 1, domain, 1, &[set(id, &rec)])
}

fn flows(dec: &mut Decoder, id: u16, domain: u32) -> usize {
    decode(dec, exporter(1), &data(id, domain)).flows.len()
}

#[test]
fn a_full_domain_evicts_its_least_recently_used_template() {
    let mut dec = Decoder::with_limits(limits(3, 100, 1 << 20));
    for id in [256, 257, 258] {
        decode(&mut dec, exporter(1), &template(id, 0));
    }
    // 256 is used, so 257 is now the least recently used.
    assert_eq!(flows(&mut dec, 256, 0), 1);
    let out = decode(&mut dec, exporter(1), &template(259, 0));
    assert_eq!(out.summary.templates_evicted, 1);
    assert_eq!(dec.template_count(), 3);
    assert_eq!(flows(&mut dec, 257, 0), 0, "257 was evicted");
    for id in [256, 258, 259] {
        assert_eq!(flows(&mut dec, id, 0), 1, "{id} is kept");
    }
    // Another domain of the same exporter has room of its own.
    decode(&mut dec, exporter(1), &template(256, 9));
    assert_eq!(dec.template_count(), 4);
}

#[test]
fn an_exporter_over_its_cap_evicts_its_own_templates_not_others() {
    let mut dec = Decoder::with_limits(limits(100, 4, 1 << 20));
    decode(&mut dec, exporter(2), &template(256, 0));
    for domain in 0..10u32 {
        decode(&mut dec, exporter(1), &template(256, domain));
    }
    assert_eq!(dec.template_count(), 5, "4 of exporter 1, 1 of exporter 2");
    let other = decode(&mut dec, exporter(2), &data(256, 0));
    assert_eq!(other.flows.len(), 1);
    // Exporter 1 kept its four most recent domains.
    for domain in 6..10 {
        assert_eq!(flows(&mut dec, 256, domain), 1, "domain {domain}");
    }
    assert_eq!(flows(&mut dec, 256, 5), 0);
}

#[test]
fn the_byte_budget_evicts_the_least_recently_used_of_any_exporter() {
    let one = {
        let mut d = Decoder::new();
        decode(&mut d, exporter(1), &template(256, 0));
        d.template_bytes()
    };
    // Room for about ten domains' single template.
    let mut dec = Decoder::with_limits(limits(100, 100, one * 10 + one / 2));
    decode(&mut dec, exporter(2), &template(256, 0));
    for domain in 0..50u32 {
        decode(&mut dec, exporter(1), &template(256, domain));
        // Exporter 2 keeps sending data: it stays recently used.
        assert_eq!(
            decode(&mut dec, exporter(2), &data(256, 0)).flows.len(),
            1,
            "after domain {domain}"
        );
        assert!(dec.template_bytes() <= dec.limits().template_bytes);
    }
    assert!(dec.template_count() <= 10);
}

#[test]
fn a_template_with_too_many_fields_is_refused_and_counted_not_an_error() {
    let mut dec = Decoder::with_limits(limits(10, 10, 1 << 20));
    let wide: Vec<(u16, u16)> = (0..65).map(|i| (100 + i, 1)).collect();
    let sets = [
        set(0, &template_record(300, &wide)),
        set(0, &template_record(301, &[(8, 4), (12, 4), (1, 4)])),
    ];
    let out = decode(&mut dec, exporter(1), &v9(0, EXPORT, 0, 0, 2, &sets));
    assert_eq!(out.summary.templates_refused, 1);
    assert_eq!(out.summary.templates_learned, 1);
    let r = out.summary.refusal.expect("a refusal");
    assert_eq!(
        (r.template, r.fields, r.limit),
        (300, 65, RefusedBy::Fields(64))
    );
    assert_eq!(
        r.to_string(),
        "template 300 refused: 65 fields, more than the 64 a template may have"
    );
    assert_eq!(dec.template_count(), 1);
}

#[test]
fn new_limits_evict_what_they_no_longer_allow() {
    let mut dec = Decoder::new();
    for id in 256..266 {
        decode(&mut dec, exporter(1), &template(id, 0));
    }
    assert_eq!(flows(&mut dec, 256, 0), 1);
    let evicted = dec.set_limits(limits(2, 100, 1 << 20));
    assert_eq!(evicted, 8);
    assert_eq!(dec.template_count(), 2);
    // The most recently used two stay: 256 (used) and 265 (learned last).
    assert_eq!(flows(&mut dec, 256, 0), 1);
    assert_eq!(flows(&mut dec, 265, 0), 1);
}

#[test]
fn the_revision_moves_when_there_is_something_new_to_save_and_only_then() {
    let mut dec = Decoder::new();
    let r0 = dec.revision();
    decode(&mut dec, exporter(1), &template(256, 0));
    let r1 = dec.revision();
    assert_ne!(r0, r1);
    // Data, and the same template again: nothing to save.
    flows(&mut dec, 256, 0);
    decode(&mut dec, exporter(1), &template(256, 0));
    assert_eq!(dec.revision(), r1);
    // A changed template is.
    let t = set(0, &template_record(256, &[(8, 4), (12, 4), (2, 4)]));
    decode(&mut dec, exporter(1), &v9(0, EXPORT, 0, 0, 1, &[t]));
    assert_ne!(dec.revision(), r1);
}

#[test]
fn merging_saved_states_keeps_to_the_limits_and_the_most_recent() {
    let mut wide = Decoder::new();
    for id in 256..276 {
        decode(&mut wide, exporter(1), &template(id, 0));
    }
    flows(&mut wide, 256, 0);
    let saved = wide.save_state();
    let mut narrow = Decoder::with_limits(limits(5, 100, 1 << 20));
    narrow.merge(Decoder::load_state(&saved).unwrap());
    assert_eq!(narrow.template_count(), 5);
    assert_eq!(flows(&mut narrow, 256, 0), 1, "the most recently used");
    assert_eq!(flows(&mut narrow, 275, 0), 1);
    assert_eq!(flows(&mut narrow, 257, 0), 0);
}

#[test]
fn a_version_1_state_still_loads() {
    // Version 1: u32 intervals, no recency. One v9 exporter 192.0.2.1,
    // domain 0, default interval 10, sampler 3 → 100, template 256.
    let raw = Bytes::new()
        .u16(8)
        .u16(4)
        .u16(12)
        .u16(4)
        .u16(1)
        .u16(4)
        .build();
    let v1 = Bytes::new()
        .raw(b"FLWS")
        .u16(1)
        .u32(1)
        .u8(4)
        .ip4(Ipv4Addr::new(192, 0, 2, 1))
        .u8(9)
        .u32(0)
        .u8(1)
        .u32(10)
        .u32(1)
        .u64(3)
        .u32(100)
        .u32(1)
        .u16(256)
        .u8(0)
        .u16(0)
        .u32(raw.len() as u32)
        .raw(&raw)
        .build();
    let mut dec = Decoder::load_state(&v1).unwrap();
    assert_eq!(dec.template_count(), 1);
    let f = decode(&mut dec, exporter(1), &data(256, 0)).flows[0];
    assert_eq!((f.sampling.population, f.sampling.selected), (10, 1));
}
