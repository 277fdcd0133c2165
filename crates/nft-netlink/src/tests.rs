use super::*;
use net_types::{ClassId, IfName, Prefix};

fn ne(v: u32) -> [u8; 4] {
    v.to_ne_bytes()
}

#[test]
fn a_tenant_and_realm_key_is_two_host_order_words() {
    let key = MapKey::TenantRealm(0x0102_0304, 2);
    let e = element_bytes(&key, Some(MapValue::Class(ClassId::new(0x32, 0x94)))).unwrap();
    let [e] = e.as_slice() else { panic!("{e:?}") };
    let mut want = ne(0x0102_0304).to_vec();
    want.extend_from_slice(&ne(2));
    assert_eq!(e.key, want);
    assert_eq!(e.data, ne(0x0032_0094).to_vec());
    let bare = element_bytes(&key, None).unwrap();
    assert!(bare[0].data.is_empty() && !bare[0].interval_end);
}

#[test]
fn interface_names_are_padded_to_ifnamsiz() {
    let key = MapKey::Interface(IfName::new("vif3.0").unwrap());
    let e = element_bytes(&key, Some(MapValue::Mark(7))).unwrap();
    let [e] = e.as_slice() else { panic!("{e:?}") };
    assert_eq!(&e.key[..7], b"vif3.0\0");
    assert_eq!(e.key.len(), 16);
    assert_eq!(e.data, ne(7).to_vec());
}

#[test]
fn a_prefix_is_a_start_and_the_address_after_it_flagged_as_the_end() {
    let e = element_bytes(
        &MapKey::Prefix(Prefix::parse("198.51.100.0/24").unwrap()),
        Some(MapValue::Class(ClassId::new(0, 1))),
    )
    .unwrap();
    assert_eq!(e.len(), 2);
    assert_eq!(e[0].key, vec![198, 51, 100, 0]);
    assert_eq!(e[0].data, ne(1).to_vec());
    assert!(!e[0].interval_end);
    assert_eq!(e[1].key, vec![198, 51, 101, 0]);
    assert!(e[1].data.is_empty() && e[1].interval_end);
    // At the top of the space there is no end element.
    let top = element_bytes(
        &MapKey::Prefix(Prefix::parse("255.255.255.0/24").unwrap()),
        None,
    )
    .unwrap();
    assert_eq!(top.len(), 1);
    let v6 = element_bytes(
        &MapKey::Prefix(Prefix::parse("2001:db8::/32").unwrap()),
        None,
    )
    .unwrap();
    assert_eq!(v6[1].key[..4], [0x20, 0x01, 0x0d, 0xb9]);
    assert_eq!(
        element_bytes(
            &MapKey::ClassRange(ClassId::new(2, 0), ClassId::new(2, 0xffff)),
            None
        ),
        None
    );
}

#[test]
fn a_batch_is_framed_and_numbered() {
    let e = element_bytes(
        &MapKey::TenantRealm(7, 0),
        Some(MapValue::Class(ClassId::new(2, 8))),
    )
    .unwrap()
    .remove(0);
    let changes = [
        ElementChange {
            map: "tenant_classes",
            op: ElementOp::Delete,
            element: e.clone(),
        },
        ElementChange {
            map: "tenant_classes",
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
    assert!(text.contains("tollgate\0") && text.contains("tenant_classes\0"));
}
