//! tollgate's eBPF classifier: the program and its maps' contents.
//!
//! `bpf/classify.c` is compiled by `build.rs` (clang, `-target bpf`) and
//! embedded as [`OBJECT`]; `linux-dataplane` loads it. This crate is pure:
//! it holds what the maps must contain, as plan elements (the compiler
//! writes them into the `Plan`, the diff compares them with what was read
//! back), and how each element is laid out in the kernel's bytes, both
//! ways, so that observation and apply agree with the C program.
//!
//! The maps, keyed as in `classify.c`:
//!
//! | map | kind | key | value |
//! |---|---|---|---|
//! | `tg_tenants4`/`6` | LPM trie | local prefix | tenant id |
//! | `tg_realms4`/`6` | LPM trie | remote prefix | realm id |
//! | `tg_vifs` | hash | ifindex of a VM's interface | tenant id |
//! | `tg_classes` | hash | tenant id, realm id | the realm's class |
//! | `tg_config` | array | word index | flags, default realm, band rules |
//!
//! and maps that are not the plan's: the guard's `throttle` victims
//! ([`throttle`]: `tg_victims4`/`6`, written by the guard's rungs), and
//! `tg_addrs`, the guard's
//! per-address counters ([`counters`]), written by the programs when
//! `[guard.capture] source = "ebpf"` sets [`config::F_COUNT`]; and the
//! passive TCP RTT's maps and ring buffer ([`rtt`]), written when
//! `[latency] tcp_rtt = true` sets [`config::F_RTT`].

pub mod counters;
pub mod rtt;
pub mod throttle;
pub mod xdp;

use net_types::{ClassId, IfName, Prefix};
use plan::{MapKey, MapKind, MapValue};
use policy::{BandMatch, Policy, Transport};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

#[repr(C, align(8))]
struct Aligned<B: ?Sized> {
    bytes: B,
}

static ALIGNED: &Aligned<[u8]> = &Aligned {
    bytes: *include_bytes!(concat!(env!("OUT_DIR"), "/classify.o")),
};

/// The compiled BPF object (ELF), 8-byte aligned as ELF readers expect.
pub static OBJECT: &[u8] = &ALIGNED.bytes;

/// The maps, by name, with their plan kinds. The names are the C
/// program's and begin with [`plan::BPF_MAP_PREFIX`].
pub const MAPS: [(&str, MapKind); 7] = [
    ("tg_tenants4", MapKind::BpfTenants4),
    ("tg_tenants6", MapKind::BpfTenants6),
    ("tg_realms4", MapKind::BpfRealms4),
    ("tg_realms6", MapKind::BpfRealms6),
    ("tg_vifs", MapKind::BpfVifs),
    ("tg_classes", MapKind::BpfClasses),
    ("tg_config", MapKind::BpfConfig),
];

/// The kind of the map named `name`.
pub fn kind_of(name: &str) -> Option<MapKind> {
    MAPS.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
}

/// Words of `tg_config` (keep in step with `classify.c`).
pub mod config {
    /// Flags: [`F_BANDS`], [`F_SKIP_BROADCAST`], [`F_SKIP_MULTICAST`],
    /// [`F_COUNT`], [`F_RTT`].
    pub const FLAGS: u32 = 0;
    /// The realm of an address no realm prefix covers.
    pub const DEFAULT_REALM: u32 = 1;
    /// DSCP bitmaps: two words per band (interactive, then bulk).
    pub const DSCP: u32 = 2;
    /// Protocol-number bitmaps: eight words per band.
    pub const PROTO: u32 = 6;
    /// Small-ACK limits per band: the length + 1, 0 when off.
    pub const SMALL_ACK: u32 = 22;
    /// Port ranges: [`MAX_RANGES`] × (protocol, from << 16 | to) per band.
    pub const PORTS: u32 = 32;
    /// Port ranges per band the program reads.
    pub const MAX_RANGES: usize = 16;
    /// The throttle rung's classes: [`MAX_THROTTLE`] × (rate in kbit/s,
    /// class) ([`crate::throttle`]); a rate of 0 ends them.
    pub const THROTTLE: u32 = 96;
    /// Throttle rates the program reads (the policy's
    /// `MAX_THROTTLE_RATES`).
    pub const MAX_THROTTLE: usize = 16;
    /// The words in the array.
    pub const WORDS: u32 = 128;
    /// Bands are configured: the band's number is OR-ed into the class.
    pub const F_BANDS: u32 = 1;
    /// Broadcast is not billed.
    pub const F_SKIP_BROADCAST: u32 = 2;
    /// Multicast is not billed.
    pub const F_SKIP_MULTICAST: u32 = 4;
    /// Count per local address into `tg_addrs` (the guard's eBPF source).
    pub const F_COUNT: u32 = 8;
    /// Match TCP timestamps and send RTT samples (`bpf/rtt.h`).
    pub const F_RTT: u32 = 16;
}

/// Whether the policy asks the programs for passive TCP RTT.
pub fn rtt(policy: &Policy) -> bool {
    policy.latency.as_ref().is_some_and(|l| l.tcp_rtt)
}

/// Whether the policy asks the programs to count per address.
pub fn counting(policy: &Policy) -> bool {
    policy
        .guard
        .as_ref()
        .and_then(|g| g.capture.as_ref())
        .is_some_and(|c| c.source.value == policy::CaptureSource::Ebpf)
}

/// The policy's protocol names as IP protocol numbers.
fn protocol_number(name: &str) -> Option<u8> {
    Some(match name {
        "icmp" => 1,
        "tcp" => 6,
        "udp" => 17,
        "gre" => 47,
        "esp" => 50,
        "ipv6-icmp" => 58,
        _ => return None,
    })
}

/// The nonzero words of `tg_config` for this policy. `realms` says whether
/// realms are in use (without them every class key has realm 0);
/// `throttle` is the guard's prepared throttle classes by rate.
///
/// The program reads [`config::MAX_RANGES`] port ranges per band; a band
/// with more is cut there (docs/dataplane.md lists this limit, which the
/// nftables classifier does not have).
pub fn config_words(
    policy: &Policy,
    realms: bool,
    throttle: &[(net_types::Rate, ClassId)],
) -> BTreeMap<u32, u32> {
    use config::*;
    let mut w: BTreeMap<u32, u32> = BTreeMap::new();
    let mut set = |w: &mut BTreeMap<u32, u32>, i: u32, bits: u32| {
        *w.entry(i).or_default() |= bits;
    };
    let mut flags = 0;
    if !policy.site.bill_broadcast {
        flags |= F_SKIP_BROADCAST;
    }
    if !policy.site.bill_multicast {
        flags |= F_SKIP_MULTICAST;
    }
    if counting(policy) {
        flags |= F_COUNT;
    }
    if rtt(policy) {
        flags |= F_RTT;
    }
    if let Some(bands) = &policy.bands {
        flags |= F_BANDS;
        for (b, m) in [&bands.interactive, &bands.bulk].into_iter().enumerate() {
            band_words(&mut w, &mut set, b as u32, m);
        }
    }
    set(&mut w, FLAGS, flags);
    if realms {
        set(&mut w, DEFAULT_REALM, policy.realms.default.0 as u32);
    }
    for (i, v) in throttle::config_words(throttle) {
        set(&mut w, i, v);
    }
    w.retain(|_, v| *v != 0);
    w
}

fn band_words(
    w: &mut BTreeMap<u32, u32>,
    set: &mut impl FnMut(&mut BTreeMap<u32, u32>, u32, u32),
    b: u32,
    m: &BandMatch,
) {
    use config::*;
    for d in &m.dscp {
        let d = *d as u32 & 63;
        set(w, DSCP + 2 * b + d / 32, 1 << (d % 32));
    }
    for p in m.protocols.iter().filter_map(|p| protocol_number(p)) {
        let p = p as u32;
        set(w, PROTO + 8 * b + p / 32, 1 << (p % 32));
    }
    if let Some(len) = m.small_tcp_acks {
        set(w, SMALL_ACK + b, len as u32 + 1);
    }
    for (i, r) in m.ports.iter().take(MAX_RANGES).enumerate() {
        let proto = match r.protocol {
            Transport::Tcp => 6,
            Transport::Udp => 17,
        };
        let at = PORTS + 32 * b + 2 * i as u32;
        set(w, at, proto);
        set(w, at + 1, (r.from as u32) << 16 | r.to as u32);
    }
}

/// A key as the map of `kind` holds it. `ifindex` names a device's index
/// (for `tg_vifs`); `None` when the key does not belong in such a map or
/// the device does not exist.
pub fn key_bytes(
    kind: MapKind,
    key: &MapKey,
    ifindex: impl Fn(IfName) -> Option<u32>,
) -> Option<Vec<u8>> {
    let lpm = |len: u8, addr: &[u8]| {
        let mut v = (len as u32).to_ne_bytes().to_vec();
        v.extend_from_slice(addr);
        v
    };
    Some(match (kind, key) {
        (MapKind::BpfTenants4 | MapKind::BpfRealms4, MapKey::Prefix(Prefix::V4(a, len))) => {
            lpm(*len, &a.octets())
        }
        (MapKind::BpfTenants6 | MapKind::BpfRealms6, MapKey::Prefix(Prefix::V6(a, len))) => {
            lpm(*len, &a.octets())
        }
        (MapKind::BpfVifs, MapKey::Interface(dev)) => ifindex(*dev)?.to_ne_bytes().to_vec(),
        (MapKind::BpfClasses, MapKey::TenantRealm(t, r)) => {
            let mut v = t.to_ne_bytes().to_vec();
            v.extend_from_slice(&(*r as u32).to_ne_bytes());
            v
        }
        (MapKind::BpfConfig, MapKey::Number(i)) if *i < config::WORDS => i.to_ne_bytes().to_vec(),
        _ => return None,
    })
}

/// A value as the kernel holds it (a host-order u32 in every map).
pub fn value_bytes(value: MapValue) -> [u8; 4] {
    match value {
        MapValue::Mark(m) => m.to_ne_bytes(),
        MapValue::Class(c) => ((c.major as u32) << 16 | c.minor as u32).to_ne_bytes(),
    }
}

/// Reads a key of the map of `kind` back; `name_of` names an ifindex.
/// `None` for bytes no element of tollgate's would have.
pub fn read_key(
    kind: MapKind,
    bytes: &[u8],
    name_of: impl Fn(u32) -> Option<IfName>,
) -> Option<MapKey> {
    let u32_at = |i: usize| -> Option<u32> {
        Some(u32::from_ne_bytes(bytes.get(i..i + 4)?.try_into().ok()?))
    };
    Some(match kind {
        MapKind::BpfTenants4 | MapKind::BpfRealms4 => {
            let len = u32_at(0).filter(|l| *l <= 32)? as u8;
            let a: [u8; 4] = bytes.get(4..8)?.try_into().ok()?;
            (bytes.len() == 8).then_some(())?;
            MapKey::Prefix(Prefix::V4(Ipv4Addr::from(a), len).network())
        }
        MapKind::BpfTenants6 | MapKind::BpfRealms6 => {
            let len = u32_at(0).filter(|l| *l <= 128)? as u8;
            let a: [u8; 16] = bytes.get(4..20)?.try_into().ok()?;
            (bytes.len() == 20).then_some(())?;
            MapKey::Prefix(Prefix::V6(Ipv6Addr::from(a), len).network())
        }
        MapKind::BpfVifs => MapKey::Interface(name_of(u32_at(0)?)?),
        MapKind::BpfClasses => {
            let realm = u16::try_from(u32_at(4)?).ok()?;
            MapKey::TenantRealm(u32_at(0)?, realm)
        }
        MapKind::BpfConfig => MapKey::Number(u32_at(0)?),
        _ => return None,
    })
}

/// Reads a value of the map of `kind` back.
pub fn read_value(kind: MapKind, bytes: [u8; 4]) -> MapValue {
    let v = u32::from_ne_bytes(bytes);
    match kind {
        MapKind::BpfRealms4 | MapKind::BpfRealms6 | MapKind::BpfClasses => {
            MapValue::Class(ClassId::new((v >> 16) as u16, v as u16))
        }
        _ => MapValue::Mark(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_is_an_elf_for_bpf() {
        assert_eq!(&OBJECT[..4], b"\x7fELF");
        // e_machine 247 = EM_BPF
        assert_eq!(u16::from_le_bytes([OBJECT[18], OBJECT[19]]), 247);
        assert_eq!(OBJECT.as_ptr() as usize % 8, 0);
    }

    #[test]
    fn keys_round_trip() {
        let dev = IfName::new("vm-a").unwrap();
        let idx = |d: IfName| (d == dev).then_some(7);
        let name = |i: u32| (i == 7).then_some(dev);
        for (kind, key) in [
            (
                MapKind::BpfTenants4,
                MapKey::Prefix(Prefix::parse("192.0.2.0/24").unwrap()),
            ),
            (
                MapKind::BpfRealms6,
                MapKey::Prefix(Prefix::parse("2001:db8::/32").unwrap()),
            ),
            (MapKind::BpfVifs, MapKey::Interface(dev)),
            (MapKind::BpfClasses, MapKey::TenantRealm(42, 3)),
            (MapKind::BpfConfig, MapKey::Number(5)),
        ] {
            let b = key_bytes(kind, &key, idx).unwrap();
            assert_eq!(read_key(kind, &b, name), Some(key));
        }
        // an IPv6 prefix never goes into the IPv4 trie
        let k6 = MapKey::Prefix(Prefix::parse("2001:db8::/32").unwrap());
        assert_eq!(key_bytes(MapKind::BpfTenants4, &k6, idx), None);
        assert_eq!(
            read_key(MapKind::BpfTenants4, &[33, 0, 0, 0, 1, 2, 3, 4], name),
            None
        );
    }

    #[test]
    fn values_round_trip() {
        let c = MapValue::Class(ClassId::new(5, 0x24));
        assert_eq!(read_value(MapKind::BpfClasses, value_bytes(c)), c);
        assert_eq!(
            read_value(MapKind::BpfTenants4, value_bytes(MapValue::Mark(9))),
            MapValue::Mark(9)
        );
    }
}
