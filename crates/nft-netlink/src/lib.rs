//! nf_tables netlink messages for map element changes, as pure code.
//!
//! Moving a tenant changes one element of a classification map (its
//! prefix now points at a new class). Through `nft -f` that costs a
//! process, and worse, `nft` first reads every element of an interval map
//! to check for overlaps: 30–40 ms at 10,000 tenants for a two-element
//! change. Sent as netlink messages, the same change is one system call.
//!
//! [`encode_batch`] turns element changes into one nfnetlink batch
//! (`NFNL_MSG_BATCH_BEGIN`, one message per element, `NFNL_MSG_BATCH_END`),
//! which the kernel applies as one transaction: all of it or none, exactly
//! like one `nft -f` script. The kernel reports every refused message, with
//! its sequence number, so a refusal names its change; only the last
//! message asks for an ack on success, so that a batch of a hundred
//! thousand elements does not fill the socket with acks.
//!
//! Through `nft -f`, a change to a big interval map is slow in user space
//! as well: nft reads the whole map and checks each change against it;
//! 30,000 changes to a 139,000-element realm map took 534 s.
//!
//! # Which maps
//!
//! - Hash maps (tenant id . realm → class, interface → tenant, the
//!   registry): one element, one key.
//! - Single-field interval maps keyed by prefix (realms, tenants'
//!   addresses): the kernel's rbtree sets, where an interval is two
//!   elements, its first address with the value, and the address after its
//!   last flagged `NFT_SET_ELEM_INTERVAL_END` (none when the interval runs
//!   to the top of the address space). [`element_bytes`] returns both. The
//!   compiler hands over disjoint prefixes, so nothing needs merging.
//!
//! The shard map's class ranges stay with `nft -f` ([`element_bytes`]
//! returns `None`): they change only when shards are added. Concatenated
//! interval maps (the kernel's pipapo sets) are not used by tollgate: a
//! removal there costs time in proportion to the map's size.
//!
//! # Byte order
//!
//! Each field of a key is padded to 4 bytes. Addresses are in network
//! order, `meta priority` and `meta mark` in host order (they are register
//! values), and an interface name is 16 bytes, zero padded (`IFNAMSIZ`).

use plan::{MapKey, MapValue};

const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWSETELEM: u16 = 12;
const NFT_MSG_DELSETELEM: u16 = 14;
const NFNL_MSG_BATCH_BEGIN: u16 = 16;
const NFNL_MSG_BATCH_END: u16 = 17;
const NFPROTO_NETDEV: u8 = 5;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_CREATE: u16 = 0x400;
const NLA_F_NESTED: u16 = 0x8000;
const NFTA_SET_ELEM_LIST_TABLE: u16 = 1;
const NFTA_SET_ELEM_LIST_SET: u16 = 2;
const NFTA_SET_ELEM_LIST_ELEMENTS: u16 = 3;
const NFTA_LIST_ELEM: u16 = 1;
const NFTA_SET_ELEM_KEY: u16 = 1;
const NFTA_SET_ELEM_DATA: u16 = 2;
const NFTA_SET_ELEM_FLAGS: u16 = 3;
const NFT_SET_ELEM_INTERVAL_END: u32 = 1;
const NFTA_DATA_VALUE: u16 = 1;
const IFNAMSIZ: usize = 16;

/// The netlink protocol number of nfnetlink (`NETLINK_NETFILTER`).
pub const NETLINK_NETFILTER: i32 = 12;

/// One element change.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElementChange<'a> {
    /// The map's name.
    pub map: &'a str,
    /// Add (with a value) or delete.
    pub op: ElementOp,
    /// The element, as the kernel stores it.
    pub element: ElementBytes,
}

/// What to do with an element.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ElementOp {
    /// Add it; fails if it exists with another value.
    Add,
    /// Delete it; fails if it does not exist.
    Delete,
}

/// One kernel element: its key and value in kernel byte layout, or the
/// end marker of an interval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ElementBytes {
    /// The key.
    pub key: Vec<u8>,
    /// The value (empty for an interval's end).
    pub data: Vec<u8>,
    /// Whether this is the end of an interval (`NFT_SET_ELEM_INTERVAL_END`):
    /// the first key past it.
    pub interval_end: bool,
}

/// The kernel elements of one map element, or `None` for the map kinds
/// this crate leaves to `nft` (see the crate docs).
pub fn element_bytes(key: &MapKey, value: Option<MapValue>) -> Option<Vec<ElementBytes>> {
    let data = match value {
        Some(MapValue::Class(c)) => ((u32::from(c.major) << 16) | u32::from(c.minor))
            .to_ne_bytes()
            .to_vec(),
        Some(MapValue::Mark(m)) => m.to_ne_bytes().to_vec(),
        None => Vec::new(),
    };
    let key = match key {
        MapKey::TenantRealm(tenant, realm) => {
            let mut k = tenant.to_ne_bytes().to_vec();
            k.extend_from_slice(&u32::from(*realm).to_ne_bytes());
            k
        }
        MapKey::Interface(name) => {
            let mut k = vec![0u8; IFNAMSIZ];
            let n = name.as_str().as_bytes();
            let len = n.len().min(IFNAMSIZ - 1);
            k[..len].copy_from_slice(&n[..len]);
            k
        }
        MapKey::Number(n) => n.to_ne_bytes().to_vec(),
        MapKey::Prefix(p) => return Some(interval(*p, data)),
        MapKey::ClassRange(..) => return None,
    };
    Some(vec![ElementBytes {
        key,
        data,
        interval_end: false,
    }])
}

/// A prefix as an rbtree interval: its first address, with the value, and
/// the address after its last, flagged as the end, unless it runs to the
/// top of the address space.
fn interval(p: net_types::Prefix, data: Vec<u8>) -> Vec<ElementBytes> {
    let p = p.network();
    let (start, next) = match p {
        net_types::Prefix::V4(..) => (
            (p.start_bits() as u32).to_be_bytes().to_vec(),
            (p.end_bits() as u32)
                .checked_add(1)
                .map(|n| n.to_be_bytes().to_vec()),
        ),
        net_types::Prefix::V6(..) => (
            p.start_bits().to_be_bytes().to_vec(),
            p.end_bits()
                .checked_add(1)
                .map(|n| n.to_be_bytes().to_vec()),
        ),
    };
    let mut out = vec![ElementBytes {
        key: start,
        data,
        interval_end: false,
    }];
    if let Some(key) = next {
        out.push(ElementBytes {
            key,
            data: Vec::new(),
            interval_end: true,
        });
    }
    out
}

/// Appends one batch holding `changes` to `out`, for the table `netdev
/// <table>`. Messages are numbered from `first_seq`: the begin marker takes
/// it, change `i` takes `first_seq + 1 + i`, and the end marker the next.
/// Returns the number of sequence numbers used.
pub fn encode_batch(
    table: &str,
    changes: &[ElementChange<'_>],
    first_seq: u32,
    out: &mut Vec<u8>,
) -> u32 {
    marker(out, NFNL_MSG_BATCH_BEGIN, first_seq);
    for (i, c) in changes.iter().enumerate() {
        let seq = first_seq.wrapping_add(1 + i as u32);
        let (ty, mut flags) = match c.op {
            ElementOp::Add => (NFT_MSG_NEWSETELEM, NLM_F_REQUEST | NLM_F_CREATE),
            ElementOp::Delete => (NFT_MSG_DELSETELEM, NLM_F_REQUEST),
        };
        if i + 1 == changes.len() {
            flags |= NLM_F_ACK;
        }
        let m = begin(
            out,
            (NFNL_SUBSYS_NFTABLES << 8) | ty,
            flags,
            seq,
            NFPROTO_NETDEV,
            0,
        );
        string_attr(out, NFTA_SET_ELEM_LIST_TABLE, table);
        string_attr(out, NFTA_SET_ELEM_LIST_SET, c.map);
        let elements = nest(out, NFTA_SET_ELEM_LIST_ELEMENTS);
        let element = nest(out, NFTA_LIST_ELEM);
        data_attr(out, NFTA_SET_ELEM_KEY, &c.element.key);
        if c.element.interval_end {
            attr(
                out,
                NFTA_SET_ELEM_FLAGS,
                &NFT_SET_ELEM_INTERVAL_END.to_be_bytes(),
            );
        }
        if c.op == ElementOp::Add && !c.element.data.is_empty() {
            data_attr(out, NFTA_SET_ELEM_DATA, &c.element.data);
        }
        end_nest(out, element);
        end_nest(out, elements);
        end(out, m);
    }
    marker(
        out,
        NFNL_MSG_BATCH_END,
        first_seq.wrapping_add(1 + changes.len() as u32),
    );
    2 + changes.len() as u32
}

/// A batch marker: its `res_id` names the subsystem the batch is for.
fn marker(out: &mut Vec<u8>, ty: u16, seq: u32) {
    let m = begin(out, ty, NLM_F_REQUEST, seq, 0, NFNL_SUBSYS_NFTABLES);
    end(out, m);
}

/// Starts a message: the netlink header (length patched by [`end`]) and
/// the nfnetlink header (family, version 0, resource id in network order).
fn begin(out: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
    let start = out.len();
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&seq.to_ne_bytes());
    out.extend_from_slice(&0u32.to_ne_bytes());
    out.extend_from_slice(&[family, 0]);
    out.extend_from_slice(&res_id.to_be_bytes());
    start
}

fn end(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u32;
    out[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

fn attr(out: &mut Vec<u8>, ty: u16, payload: &[u8]) {
    out.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
    out.extend_from_slice(&ty.to_ne_bytes());
    out.extend_from_slice(payload);
    pad(out);
}

fn pad(out: &mut Vec<u8>) {
    while !out.len().is_multiple_of(4) {
        out.push(0);
    }
}

fn string_attr(out: &mut Vec<u8>, ty: u16, s: &str) {
    let mut bytes = s.as_bytes().to_vec();
    bytes.push(0);
    attr(out, ty, &bytes);
}

fn nest(out: &mut Vec<u8>, ty: u16) -> usize {
    let start = out.len();
    out.extend_from_slice(&0u16.to_ne_bytes());
    out.extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    start
}

fn end_nest(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u16;
    out[start..start + 2].copy_from_slice(&len.to_ne_bytes());
}

/// `NFTA_SET_ELEM_KEY` and friends hold an `nft_data` nest with the bytes.
fn data_attr(out: &mut Vec<u8>, ty: u16, bytes: &[u8]) {
    let n = nest(out, ty);
    attr(out, NFTA_DATA_VALUE, bytes);
    end_nest(out, n);
}

#[cfg(test)]
mod tests;
