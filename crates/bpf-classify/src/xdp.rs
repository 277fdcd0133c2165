//! The XDP drop list (`bpf/xdp_drop.c`): what its tries hold, in the
//! kernel's bytes both ways, and where its programs go.
//!
//! One LPM trie per family, `tg_xdrop4`/`tg_xdrop6`, keyed by way,
//! protocol, source port and address (the prefix length covers the first
//! 32 bits and the address's prefix), so that one trie holds a victim's
//! whole-traffic drop (protocol and port 0: any), an attack's signature
//! (protocol, source port) on a victim's prefix, and the unused
//! addresses. The value says why ([`Why`]), and is the index of the
//! per-CPU counter (`tg_xstats`) the drop is counted in.

use net_types::{IfName, Prefix};
use plan::guard::{GuardElement, Way};
use std::net::{Ipv4Addr, Ipv6Addr};

#[repr(C, align(8))]
struct Aligned<B: ?Sized> {
    bytes: B,
}

static ALIGNED: &Aligned<[u8]> = &Aligned {
    bytes: *include_bytes!(concat!(env!("OUT_DIR"), "/xdp_drop.o")),
};

/// The compiled XDP object (ELF), 8-byte aligned.
pub static OBJECT: &[u8] = &ALIGNED.bytes;

/// The IPv4 trie.
pub const MAP4: &str = "tg_xdrop4";
/// The IPv6 trie.
pub const MAP6: &str = "tg_xdrop6";
/// The per-CPU drop counters, by [`Why`].
pub const STATS: &str = "tg_xstats";
/// Entries per trie (`max_entries` in the C program).
pub const MAX_ENTRIES: usize = 65_536;

/// Which program: the way of the traffic it looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Hook {
    /// Traffic towards tollgate's addresses, looked up by destination:
    /// on the uplink.
    In,
    /// Traffic from them, looked up by source: on the LAN (router mode).
    Out,
}

impl Hook {
    /// Both programs.
    pub const ALL: [Hook; 2] = [Hook::In, Hook::Out];

    /// The program's name in the object and in the kernel (under the
    /// kernel's 15 characters, so it reads back whole).
    pub fn program(self) -> &'static str {
        match self {
            Hook::In => "tg_xdp_in",
            Hook::Out => "tg_xdp_out",
        }
    }

    /// The hook of a program the kernel names `name`, if it is one of
    /// tollgate's.
    pub fn of_program(name: &str) -> Option<Hook> {
        Hook::ALL.into_iter().find(|h| h.program() == name)
    }

    /// The guard's way this hook serves.
    pub fn way(self) -> Way {
        match self {
            Hook::In => Way::In,
            Hook::Out => Way::Out,
        }
    }
}

/// Where the programs go for `policy`: the uplink's traffic comes in
/// towards the tenants (`In`); traffic from them comes in by the LAN in
/// router mode, and by each VM's own interface in hypervisor mode (`Out`:
/// a VM's interface that does not exist yet is skipped until it does).
pub fn places(policy: &policy::Policy) -> Vec<(IfName, Hook)> {
    let site = &policy.site;
    let mut out = vec![(site.uplink, Hook::In)];
    if let Some(lan) = site.lan {
        out.push((lan, Hook::Out));
    }
    if site.mode == policy::Mode::Hypervisor {
        for t in &policy.tenants {
            if let Some(vif) = t.interface {
                if !out.contains(&(vif, Hook::Out)) {
                    out.push((vif, Hook::Out));
                }
            }
        }
    }
    out
}

/// Why an entry drops, and the counter it counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Why {
    /// A guard rung (`drop`, by victim or by signature).
    Rung = 1,
    /// An address of the policy's networks no tenant holds.
    Unused = 2,
}

impl Why {
    /// The value's meaning, `None` for a value tollgate never writes.
    pub fn of_value(v: u32) -> Option<Why> {
        match v {
            1 => Some(Why::Rung),
            2 => Some(Why::Unused),
            _ => None,
        }
    }
}

/// One entry of the drop list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Entry {
    /// Towards (`In`) or from (`Out`) the prefix.
    pub way: Way,
    /// The IP protocol, 0 for any.
    pub protocol: u8,
    /// The source port, 0 for any.
    pub source_port: u16,
    /// The addresses.
    pub prefix: Prefix,
}

impl Entry {
    /// Every packet towards or from `prefix`.
    pub fn all(way: Way, prefix: Prefix) -> Entry {
        Entry {
            way,
            protocol: 0,
            source_port: 0,
            prefix: prefix.network(),
        }
    }

    /// A guard set's element as the list's entry.
    pub fn of_element(way: Way, e: &GuardElement) -> Entry {
        match e {
            GuardElement::Prefix(p) => Entry::all(way, *p),
            GuardElement::Signature {
                prefix,
                protocol,
                source_port,
            } => Entry {
                way,
                protocol: protocol.unwrap_or(0),
                source_port: source_port.unwrap_or(0),
                prefix: prefix.network(),
            },
        }
    }

    fn head(&self) -> [u8; 4] {
        let port = self.source_port.to_be_bytes();
        let way = match self.way {
            Way::In => 0,
            Way::Out => 1,
        };
        [way, self.protocol, port[0], port[1]]
    }
}

/// An IPv4 entry's key: (prefix length, data) as `struct xkey4` holds it.
pub fn key4(e: &Entry) -> Option<(u32, [u8; 8])> {
    let Prefix::V4(a, len) = e.prefix else {
        return None;
    };
    let mut d = [0u8; 8];
    d[..4].copy_from_slice(&e.head());
    d[4..].copy_from_slice(&a.octets());
    Some((32 + len as u32, d))
}

/// An IPv6 entry's key.
pub fn key6(e: &Entry) -> Option<(u32, [u8; 20])> {
    let Prefix::V6(a, len) = e.prefix else {
        return None;
    };
    let mut d = [0u8; 20];
    d[..4].copy_from_slice(&e.head());
    d[4..].copy_from_slice(&a.octets());
    Some((32 + len as u32, d))
}

fn read_head(len: u32, max: u32, d: &[u8]) -> Option<(Way, u8, u16, u8)> {
    let plen = len.checked_sub(32).filter(|l| *l <= max)? as u8;
    let way = match d[0] {
        0 => Way::In,
        1 => Way::Out,
        _ => return None,
    };
    Some((way, d[1], u16::from_be_bytes([d[2], d[3]]), plen))
}

/// An IPv4 key read back; `None` for one tollgate never writes (a
/// prefix length inside the way, protocol and port).
pub fn read4(len: u32, d: [u8; 8]) -> Option<Entry> {
    let (way, protocol, source_port, plen) = read_head(len, 32, &d)?;
    let a: [u8; 4] = d[4..].try_into().ok()?;
    Some(Entry {
        way,
        protocol,
        source_port,
        prefix: Prefix::V4(Ipv4Addr::from(a), plen).network(),
    })
}

/// An IPv6 key read back.
pub fn read6(len: u32, d: [u8; 20]) -> Option<Entry> {
    let (way, protocol, source_port, plen) = read_head(len, 128, &d)?;
    let a: [u8; 16] = d[4..].try_into().ok()?;
    Some(Entry {
        way,
        protocol,
        source_port,
        prefix: Prefix::V6(Ipv6Addr::from(a), plen).network(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn object_has_both_programs() {
        assert_eq!(&OBJECT[..4], b"\x7fELF");
        for h in Hook::ALL {
            let name = h.program().as_bytes();
            assert!(name.len() <= 15);
            assert!(OBJECT.windows(name.len()).any(|w| w == name));
            assert_eq!(Hook::of_program(h.program()), Some(h));
        }
        assert_eq!(Hook::of_program("xdp_dummy"), None);
    }

    #[test]
    fn keys_round_trip() {
        let p4 = Prefix::parse("203.0.113.7/32").unwrap();
        let p6 = Prefix::parse("2001:db8::/48").unwrap();
        let sig = GuardElement::Signature {
            prefix: p4,
            protocol: Some(17),
            source_port: Some(53),
        };
        let e = Entry::of_element(Way::In, &sig);
        let (len, d) = key4(&e).unwrap();
        assert_eq!(len, 64);
        assert_eq!(d, [0, 17, 0, 53, 203, 0, 113, 7]);
        assert_eq!(read4(len, d), Some(e));
        let e6 = Entry::of_element(Way::Out, &GuardElement::Prefix(p6));
        let (len, d) = key6(&e6).unwrap();
        assert_eq!((len, d[0], d[1]), (80, 1, 0));
        assert_eq!(read6(len, d), Some(e6));
        assert_eq!(key6(&e), None);
        // A prefix length inside the head is none of tollgate's.
        assert_eq!(read4(16, d4()), None);
        assert_eq!(read4(65, d4()), None);
    }

    fn d4() -> [u8; 8] {
        [0, 0, 0, 0, 1, 2, 3, 4]
    }
}
