//! The MRT reader: hand-built TABLE_DUMP_V2 records, and dumps written by
//! BIRD 2 (`tests/data/bird-addpath/`, made by its `make.sh`).

use super::*;
use bgp::mrt::{MrtErrorKind, MrtReader};

/// One MRT record.
fn mrt_record(kind: u16, subtype: u16, body: &[u8]) -> Vec<u8> {
    let mut r = vec![0x5f, 0x5e, 0x10, 0];
    r.extend_from_slice(&kind.to_be_bytes());
    r.extend_from_slice(&subtype.to_be_bytes());
    r.extend_from_slice(&(body.len() as u32).to_be_bytes());
    r.extend_from_slice(body);
    r
}

/// A TABLE_DUMP_V2 dump: a peer index table with an IPv4 peer (2-byte AS
/// 65000) and an IPv6 peer (4-byte AS 200000), one IPv4 RIB record, one
/// BGP4MP record to skip, one IPv6 RIB record with an abbreviated
/// MP_REACH_NLRI, and finally a truncated record.
pub fn mrt_dump() -> Vec<u8> {
    let mut peers = vec![192, 0, 2, 100, 0, 4, b't', b'e', b's', b't', 0, 2];
    peers.extend_from_slice(&[0, 10, 0, 0, 1, 10, 0, 0, 1, 0xfd, 0xe8]);
    peers.extend_from_slice(&[3, 10, 0, 0, 2]);
    peers.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets());
    peers.extend_from_slice(&[0, 3, 0x0d, 0x40]);
    let mut out = mrt_record(13, 1, &peers);

    let mut attrs = ORIGIN_IGP.to_vec();
    attrs.extend_from_slice(&AS_PATH_4);
    attrs.extend_from_slice(&[0x40, 3, 4, 10, 0, 0, 1]);
    attrs.extend_from_slice(&[0xc0, 8, 4, 0xfd, 0xe8, 0, 100]);
    let mut rib4 = vec![0, 0, 0, 0, 24, 198, 51, 100, 0, 1, 0, 0, 0x5f, 0, 0, 0];
    rib4.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    rib4.extend_from_slice(&attrs);
    out.extend(mrt_record(13, 2, &rib4));

    out.extend(mrt_record(16, 4, &[1, 2, 3]));

    let mut attrs = ORIGIN_IGP.to_vec();
    attrs.extend_from_slice(&[0x40, 2, 6, 2, 1, 0, 3, 0x0d, 0x40]);
    attrs.extend_from_slice(&[0x80, 14, 17, 16]);
    attrs.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets());
    let mut rib6 = vec![
        0, 0, 0, 1, 32, 0x20, 1, 0x0d, 0xb8, 0, 1, 0, 1, 0x5f, 0, 0, 0,
    ];
    rib6.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    rib6.extend_from_slice(&attrs);
    out.extend(mrt_record(13, 4, &rib6));

    out.extend_from_slice(&mrt_record(13, 2, &[0; 40])[..20]);
    out
}

#[test]
fn mrt_table_dump_v2() {
    let dump = mrt_dump();
    let mut reader = MrtReader::new(&dump);
    let items: Vec<_> = reader.by_ref().collect();
    assert_eq!(items.len(), 3, "{items:?}");
    let v4 = items[0].as_ref().unwrap();
    assert_eq!(v4.peer_index, 0);
    assert_eq!(v4.peer.asn, 65000);
    assert_eq!(v4.route.prefix, p("198.51.100.0/24"));
    assert_eq!(v4.route.attrs.origin_as(), Some(200_000));
    assert_eq!(v4.route.attrs.communities, vec![65000 << 16 | 100]);
    assert_eq!(v4.route.attrs.next_hop, Some("10.0.0.1".parse().unwrap()));
    let v6 = items[1].as_ref().unwrap();
    assert_eq!(v6.peer.asn, 200_000);
    assert_eq!(v6.peer.ip, "2001:db8::2".parse::<IpAddr>().unwrap());
    assert_eq!(v6.route.prefix, p("2001:db8::/32"));
    assert_eq!(
        v6.route.attrs.next_hop,
        Some("2001:db8::2".parse().unwrap())
    );
    assert_eq!(v6.route.attrs.as_path_flat(), vec![200_000]);
    let err = items[2].as_ref().unwrap_err();
    assert_eq!(err.kind, MrtErrorKind::Truncated);
    assert_eq!(err.offset, dump.len() - 20);
    assert_eq!(reader.skipped(), 1);
    assert_eq!(reader.peers().len(), 2);
}

#[test]
fn mrt_rib_before_peer_table_names_the_record() {
    let dump = mrt_dump();
    let first_len = 12 + u32::from_be_bytes([dump[8], dump[9], dump[10], dump[11]]) as usize;
    let items: Vec<_> = MrtReader::new(&dump[first_len..]).collect();
    let err = items[0].as_ref().unwrap_err();
    assert_eq!(
        (err.offset, &err.kind),
        (0, &MrtErrorKind::NoPeerIndexTable)
    );
}

/// A dump written by BIRD 2.0.12's `mrt dump table` (its first two
/// records): BIRD writes NEXT_HOP and LOCAL_PREF with all flags clear,
/// which a BGP session would refuse, but an MRT reader must accept.
#[test]
fn bird_mrt_dump_with_well_known_attributes_without_flags() {
    let dump = [
        0x6b, 0x03, 0x89, 0xc9, 0x00, 0x0d, 0x00, 0x01, 0x00, 0x00, 0x00, 0x35, 0x7f, 0x00, 0x00,
        0x16, 0x00, 0x07, 0x6d, 0x61, 0x73, 0x74, 0x65, 0x72, 0x34, 0x00, 0x02, 0x03, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x7f, 0x00, 0x00, 0x15, 0x7f, 0x00, 0x00,
        0x15, 0x00, 0x00, 0xfd, 0xe9, 0x6b, 0x03, 0x89, 0xc9, 0x00, 0x0d, 0x00, 0x02, 0x00, 0x00,
        0x00, 0x2e, 0x00, 0x00, 0x00, 0x00, 0x19, 0xc6, 0x33, 0x64, 0x00, 0x00, 0x01, 0x00, 0x01,
        0x6b, 0x03, 0x89, 0xc9, 0x00, 0x1b, 0x40, 0x01, 0x01, 0x00, 0x40, 0x02, 0x06, 0x02, 0x01,
        0x00, 0x00, 0xfd, 0xe9, 0x00, 0x03, 0x04, 0x7f, 0x00, 0x00, 0x15, 0x00, 0x05, 0x04, 0x00,
        0x00, 0x00, 0x64,
    ];
    let entries: Vec<_> = MrtReader::new(&dump).collect();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let e = entries[0].as_ref().unwrap();
    assert_eq!(e.route.prefix, p("198.51.100.0/25"));
    assert_eq!(e.peer.ip, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 21)));
    assert_eq!(e.peer.asn, 65001);
    assert_eq!(e.route.attrs.local_pref, Some(100));
    assert_eq!(
        e.route.attrs.next_hop,
        Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 21)))
    );
    assert_eq!(e.route.attrs.as_path_flat(), vec![65001]);
}

pub const BIRD_ADDPATH_4: &[u8] = include_bytes!("../data/bird-addpath/master4.mrt");
pub const BIRD_ADDPATH_6: &[u8] = include_bytes!("../data/bird-addpath/master6.mrt");

/// Issue 12, item 29: BIRD with `add paths` writes every BGP-learned
/// prefix as RIB_IPV4_UNICAST_ADDPATH (RFC 8050), and the reader skipped
/// them all, keeping only BIRD's own static route. Every path is read now,
/// with its path identifier and its communities.
#[test]
fn bird_add_path_dump_keeps_every_path() {
    let mut reader = MrtReader::new(BIRD_ADDPATH_4);
    let entries: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(reader.skipped(), 0, "{:?}", reader.skipped_records());
    let got: Vec<_> = entries
        .iter()
        .map(|e| {
            (
                e.route.prefix.to_string(),
                e.path_id,
                e.peer.asn,
                e.route.attrs.communities.clone(),
                e.route.attrs.as_path_flat(),
            )
        })
        .collect();
    let c = |x: u32| vec![65000 << 16 | x];
    assert_eq!(
        got,
        vec![
            (
                "198.51.100.0/25".into(),
                Some(2),
                65001,
                c(100),
                vec![65001, 64512]
            ),
            (
                "198.51.100.0/25".into(),
                Some(3),
                65001,
                c(200),
                vec![65001, 64513, 64513]
            ),
            // BIRD's own static route: a plain RIB_IPV4_UNICAST record,
            // from the peer table's null peer.
            ("192.0.2.128/25".into(), None, 0, vec![], vec![]),
            ("203.0.113.0/24".into(), Some(2), 65001, vec![], vec![65001]),
        ]
    );
    assert!(entries
        .iter()
        .filter(|e| e.peer.asn == 65001)
        .all(|e| e.route.attrs.next_hop == Some("192.0.2.1".parse().unwrap())));
}

/// The IPv6 table: RIB_IPV6_UNICAST_ADDPATH, next hops from MP_REACH_NLRI.
#[test]
fn bird_add_path_dump_of_ipv6_keeps_every_path() {
    let mut reader = MrtReader::new(BIRD_ADDPATH_6);
    let entries: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(reader.skipped(), 0);
    assert_eq!(entries.len(), 2, "{entries:?}");
    for e in &entries {
        assert_eq!(e.route.prefix, p("2001:db8:100::/48"));
        assert_eq!(e.peer.ip, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(e.route.attrs.next_hop, Some("2001:db8::1".parse().unwrap()));
    }
    assert_eq!(entries[0].path_id, Some(4));
    assert_eq!(entries[0].route.attrs.communities, vec![65000 << 16 | 100]);
    assert_eq!(entries[1].path_id, Some(5));
    assert_eq!(
        entries[1].route.attrs.large_communities,
        vec![[65000, 1, 2]]
    );
}

/// The peer table of `mrt_dump` alone.
fn peer_table_record() -> Vec<u8> {
    let dump = mrt_dump();
    let len = 12 + u32::from_be_bytes([dump[8], dump[9], dump[10], dump[11]]) as usize;
    dump[..len].to_vec()
}

/// One RIB entry of an ADD-PATH record: peer index, time, path id, attributes.
fn add_path_entry(peer: u16, path_id: u32, attrs: &[u8]) -> Vec<u8> {
    let mut e = peer.to_be_bytes().to_vec();
    e.extend_from_slice(&0x5f00_0000u32.to_be_bytes());
    e.extend_from_slice(&path_id.to_be_bytes());
    e.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    e.extend_from_slice(attrs);
    e
}

/// RFC 8050 §4.1 by hand: RIB_IPV6_UNICAST_ADDPATH with two paths of one
/// peer, path identifiers 7 and 0xffff_ffff; and the multicast and generic
/// ADD-PATH subtypes, skipped and counted by reason.
#[test]
fn add_path_records_by_hand() {
    let mut dump = peer_table_record();
    let mut attrs = ORIGIN_IGP.to_vec();
    attrs.extend_from_slice(&[0x80, 14, 17, 16]);
    attrs.extend_from_slice(&Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2).octets());
    let mut rib = vec![0, 0, 0, 9, 32, 0x20, 1, 0x0d, 0xb8, 0, 2];
    rib.extend(add_path_entry(1, 7, &attrs));
    rib.extend(add_path_entry(1, u32::MAX, &ORIGIN_IGP));
    dump.extend(mrt_record(13, 10, &rib));
    dump.extend(mrt_record(13, 9, &rib));
    dump.extend(mrt_record(13, 11, &rib));
    dump.extend(mrt_record(13, 12, &[0; 8]));
    let mut reader = MrtReader::new(&dump);
    let entries: Vec<_> = reader.by_ref().map(Result::unwrap).collect();
    assert_eq!(entries.len(), 2);
    assert_eq!(
        entries.iter().map(|e| e.path_id).collect::<Vec<_>>(),
        vec![Some(7), Some(u32::MAX)]
    );
    assert!(entries.iter().all(|e| e.route.prefix == p("2001:db8::/32")));
    assert_eq!(
        entries[0].route.attrs.next_hop,
        Some("2001:db8::2".parse().unwrap())
    );
    use bgp::mrt::Skipped;
    assert_eq!(
        reader.skipped_records().iter().collect::<Vec<_>>(),
        vec![(&Skipped::Multicast, &2), (&Skipped::Generic, &1)]
    );
    assert_eq!(reader.skipped(), 3);
}

/// An ADD-PATH entry cut inside its path identifier rejects the rest of
/// its record, naming the field, and the next record is still read.
#[test]
fn a_truncated_path_identifier_names_the_field() {
    let mut dump = peer_table_record();
    let mut rib = vec![0, 0, 0, 9, 24, 198, 51, 100, 0, 2];
    rib.extend(add_path_entry(0, 1, &ORIGIN_IGP));
    rib.extend_from_slice(&[0, 0, 0x5f, 0, 0, 0, 0, 0]);
    let at = dump.len();
    dump.extend(mrt_record(13, 8, &rib));
    let mut plain = vec![0, 0, 0, 10, 24, 203, 0, 113, 0, 1, 0, 0, 0x5f, 0, 0, 0];
    plain.extend_from_slice(&(ORIGIN_IGP.len() as u16).to_be_bytes());
    plain.extend_from_slice(&ORIGIN_IGP);
    dump.extend(mrt_record(13, 2, &plain));
    let items: Vec<_> = MrtReader::new(&dump).collect();
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0].as_ref().unwrap().path_id, Some(1));
    let err = items[1].as_ref().unwrap_err();
    assert_eq!(
        (err.offset, &err.kind),
        (
            at,
            &MrtErrorKind::Malformed("truncated RIB entry path identifier")
        )
    );
    let last = items[2].as_ref().unwrap();
    assert_eq!(
        (last.route.prefix, last.path_id),
        (p("203.0.113.0/24"), None)
    );
}
