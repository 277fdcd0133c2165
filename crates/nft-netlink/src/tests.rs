use super::*;
use net_types::{ClassId, IfName, Prefix};

fn ne(v: u32) -> [u8; 4] {
    v.to_ne_bytes()
}

#[test]
fn a_tenant_prefix_is_an_interval_of_address_and_realm() {
    let key = MapKey::PrefixRealm(Prefix::parse("100.64.1.0/24").unwrap(), 2);
    let e = element_bytes(&key, Some(MapValue::Class(ClassId::new(0x32, 0x94)))).unwrap();
    let mut start = vec![100, 64, 1, 0];
    start.extend_from_slice(&ne(2));
    let mut end = vec![100, 64, 1, 255];
    end.extend_from_slice(&ne(2));
    assert_eq!(e.key, start);
    assert_eq!(e.key_end, Some(end));
    assert_eq!(e.data, ne(0x0032_0094).to_vec());
}

#[test]
fn ipv6_keys_are_sixteen_bytes_then_the_realm() {
    let key = MapKey::PrefixRealm(Prefix::parse("2001:db8:1::/48").unwrap(), 0);
    let e = element_bytes(&key, None).unwrap();
    assert_eq!(e.key.len(), 20);
    assert_eq!(&e.key[..6], &[0x20, 0x01, 0x0d, 0xb8, 0, 1]);
    assert!(e.key[6..16].iter().all(|b| *b == 0));
    let end = e.key_end.unwrap();
    assert!(end[6..16].iter().all(|b| *b == 0xff));
    assert!(e.data.is_empty());
}

#[test]
fn interface_names_are_padded_to_ifnamsiz() {
    let key = MapKey::IfRealm(IfName::new("vif3.0").unwrap(), 1);
    let e = element_bytes(&key, Some(MapValue::Mark(7))).unwrap();
    assert_eq!(&e.key[..7], b"vif3.0\0");
    assert_eq!(e.key.len(), 20);
    assert_eq!(e.key_end, None);
}

#[test]
fn single_field_intervals_are_left_to_nft() {
    assert_eq!(
        element_bytes(&MapKey::Prefix(Prefix::parse("10.0.0.0/8").unwrap()), None),
        None
    );
}

#[test]
fn a_batch_is_framed_and_numbered() {
    let e = element_bytes(
        &MapKey::PrefixRealm(Prefix::parse("100.64.1.0/24").unwrap(), 0),
        Some(MapValue::Class(ClassId::new(2, 8))),
    )
    .unwrap();
    let changes = [
        ElementChange {
            map: "down4",
            op: ElementOp::Delete,
            element: e.clone(),
        },
        ElementChange {
            map: "down4",
            op: ElementOp::Add,
            element: e,
        },
    ];
    let mut out = Vec::new();
    assert_eq!(encode_batch("tollgate", &changes, 100, &mut out), 4);
    // Walk the messages: lengths add up, types and sequence numbers are in order.
    let mut at = 0;
    let mut seen = Vec::new();
    while at < out.len() {
        let len = u32::from_ne_bytes(out[at..at + 4].try_into().unwrap()) as usize;
        let ty = u16::from_ne_bytes(out[at + 4..at + 6].try_into().unwrap());
        let seq = u32::from_ne_bytes(out[at + 8..at + 12].try_into().unwrap());
        assert_eq!(len % 4, 0);
        seen.push((ty, seq));
        at += len;
    }
    assert_eq!(at, out.len());
    assert_eq!(
        seen,
        vec![(16, 100), (0x0a0e, 101), (0x0a0c, 102), (17, 103)]
    );
    // The table and map names are there, NUL-terminated.
    let text = String::from_utf8_lossy(&out);
    assert!(text.contains("tollgate\0") && text.contains("down4\0"));
}
