//! A compact, versioned image of the best route per prefix, for the state
//! directory: `tollgate routes import` (or a running speaker) writes one,
//! and `tollgate routes lookup` and `stats` read it back.
//!
//! # Format (version 1)
//!
//! All integers are big-endian. Strings are a length then UTF-8 bytes; an
//! address is a tag (4 or 6) then 4 or 16 bytes, or the tag 0 for none.
//!
//! ```text
//! "TGROUTES" u16 version  u64 created (Unix seconds)  str32 source
//! u16 default realm  u32 n  n × (u16 id, str16 name)                realms
//! u32 n  n × (addr, u32 asn, 4 bytes BGP id)                        peers
//! u32 n  n × (addr next hop, u32 len, UPDATE attribute block)       attribute sets
//! u32 n  n × (u8 tag, u8 len, ⌈len/8⌉ address bytes,                routes
//!             u32 peer, u32 attribute set, u16 realm, rule)
//! ```
//!
//! A rule is a kind byte (0 default, 1 community, 2 large community, 3
//! origin AS, 4 AS on path, 5 peer, 6 next hop) and its value. Attribute
//! sets use the BGP wire encoding with four-octet AS numbers, so a full
//! table's few hundred thousand distinct sets are stored once each and
//! decoded by the same fuzzed code as UPDATEs.
//!
//! [`Snapshot::decode`] treats the bytes as untrusted: every count, index
//! and length is checked, and an error names the byte offset and field.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use bgp::wire::{decode_path_attributes, encode_path_attributes};
use bgp::PathAttributes;
use net_types::{Prefix, RealmId};

use crate::realms::{Classification, MatchedRule};
use crate::table::{FamilyCounts, RouteTable};

const MAGIC: &[u8; 8] = b"TGROUTES";
const VERSION: u16 = 1;

/// A peer routes were learned from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SnapshotPeer {
    /// Its address.
    pub addr: IpAddr,
    /// Its AS (0 if unknown).
    pub asn: u32,
    /// Its BGP identifier (0.0.0.0 if unknown).
    pub bgp_id: Ipv4Addr,
}

/// One prefix's best route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SnapshotRoute {
    /// The prefix.
    pub prefix: Prefix,
    /// Index into [`Snapshot::peers`].
    pub peer: u32,
    /// Index into [`Snapshot::attrs`].
    pub attrs: u32,
    /// Its realm and why.
    pub class: Classification,
}

/// The best route per prefix, with everything needed to explain it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Snapshot {
    /// Where the routes came from (a file name, or "bgp").
    pub source: String,
    /// When the snapshot was made, in seconds since the Unix epoch.
    pub created_unix: u64,
    /// The default realm of the rules used.
    pub default_realm: RealmId,
    /// Every realm's id and name, as the rules named them.
    pub realms: Vec<(RealmId, String)>,
    /// The peers, referred to by index.
    pub peers: Vec<SnapshotPeer>,
    /// The distinct attribute sets, referred to by index.
    pub attrs: Vec<Arc<PathAttributes>>,
    /// The routes, sorted by prefix.
    pub routes: Vec<SnapshotRoute>,
}

impl Default for Snapshot {
    fn default() -> Self {
        Snapshot {
            source: String::new(),
            created_unix: 0,
            default_realm: RealmId(0),
            realms: Vec::new(),
            peers: Vec::new(),
            attrs: Vec::new(),
            routes: Vec::new(),
        }
    }
}

/// Why a snapshot could not be read: where, and what was wrong.
///
/// Every error means the bytes are not a usable snapshot, so a reader that
/// already has a table keeps it. (A missing file is not an error of this
/// crate: the caller knows the difference between "no table was saved"
/// and "the saved table is damaged", and must not treat the second as the
/// first.)
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotError {
    /// The byte offset where reading failed.
    pub offset: usize,
    /// What is wrong there.
    pub kind: SnapshotErrorKind,
}

/// The ways a snapshot can be unreadable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SnapshotErrorKind {
    /// No bytes at all: a write that never finished, or a file emptied.
    Empty,
    /// The magic bytes are not `TGROUTES`: some other file.
    NotASnapshot,
    /// A format version this tollgate does not read (written by another
    /// version of tollgate): not damaged, but unusable until re-imported.
    Version {
        /// The version in the file.
        found: u16,
        /// The version this reader reads.
        supported: u16,
    },
    /// The file ends inside a field: a truncated file.
    Truncated {
        /// The field.
        field: &'static str,
    },
    /// A count larger than the rest of the file could hold.
    Count {
        /// The field.
        field: &'static str,
        /// The count found.
        count: usize,
    },
    /// A string that is not UTF-8.
    NotUtf8 {
        /// The field.
        field: &'static str,
    },
    /// An address or prefix tag other than 4 or 6 (or 0 where none is
    /// allowed).
    Tag {
        /// The field.
        field: &'static str,
        /// The tag found.
        tag: u8,
    },
    /// A prefix longer than its family allows.
    PrefixLength {
        /// The length found.
        len: u8,
        /// The family's longest.
        max: u8,
    },
    /// A prefix with host bits set.
    HostBits {
        /// The prefix.
        prefix: Prefix,
    },
    /// An attribute set that does not decode.
    Attributes {
        /// Its index.
        set: usize,
        /// Why.
        error: bgp::wire::DecodeError,
    },
    /// A route that refers to a peer or attribute set that does not exist.
    Dangling {
        /// The route's prefix.
        prefix: Prefix,
    },
    /// A realm rule of an unknown kind.
    RuleKind {
        /// The kind byte.
        kind: u8,
    },
    /// Bytes after the last route.
    Trailing,
}

impl fmt::Display for SnapshotErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SnapshotErrorKind::Empty => f.write_str("the file is empty"),
            SnapshotErrorKind::NotASnapshot => {
                f.write_str("this is not a tollgate routes snapshot (wrong magic bytes)")
            }
            SnapshotErrorKind::Version { found, supported } => write!(
                f,
                "format version {found} is not {supported}; re-run `tollgate routes import`"
            ),
            SnapshotErrorKind::Truncated { field } => write!(f, "the file ends inside {field}"),
            SnapshotErrorKind::Count { field, count } => {
                write!(f, "{field} ({count}) is more than the file can hold")
            }
            SnapshotErrorKind::NotUtf8 { field } => write!(f, "{field} is not UTF-8"),
            SnapshotErrorKind::Tag { field, tag } => {
                write!(f, "{field} has the unknown address tag {tag}")
            }
            SnapshotErrorKind::PrefixLength { len, max } => {
                write!(f, "a prefix length of {len} is longer than {max}")
            }
            SnapshotErrorKind::HostBits { prefix } => {
                write!(f, "prefix {prefix} has host bits set")
            }
            SnapshotErrorKind::Attributes { set, error } => {
                write!(f, "attribute set {set} does not decode: {error}")
            }
            SnapshotErrorKind::Dangling { prefix } => write!(
                f,
                "route {prefix} refers to a peer or attribute set that does not exist"
            ),
            SnapshotErrorKind::RuleKind { kind } => write!(f, "unknown realm rule kind {kind}"),
            SnapshotErrorKind::Trailing => f.write_str("unexpected bytes after the last route"),
        }
    }
}

impl fmt::Display for SnapshotError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "at byte {}: {}", self.offset, self.kind)
    }
}

impl std::error::Error for SnapshotError {}

/// Collects routes into a [`Snapshot`], storing each peer and each
/// distinct attribute set once.
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    snapshot: Snapshot,
    peers: HashMap<IpAddr, u32>,
    attrs: HashMap<Arc<PathAttributes>, u32>,
}

impl SnapshotBuilder {
    /// Starts a snapshot for routes classified with these realm names.
    pub fn new(source: &str, created_unix: u64, realms: &crate::RealmRules) -> Self {
        SnapshotBuilder {
            snapshot: Snapshot {
                source: source.to_owned(),
                created_unix,
                default_realm: realms.default_realm(),
                realms: realms.names().to_vec(),
                ..Snapshot::default()
            },
            ..SnapshotBuilder::default()
        }
    }

    /// Adds one prefix's route. A peer already added keeps its first
    /// description.
    pub fn add(
        &mut self,
        prefix: Prefix,
        peer: SnapshotPeer,
        attrs: &Arc<PathAttributes>,
        class: Classification,
    ) {
        let s = &mut self.snapshot;
        let peer = *self.peers.entry(peer.addr).or_insert_with(|| {
            s.peers.push(peer);
            (s.peers.len() - 1) as u32
        });
        let attrs = *self.attrs.entry(Arc::clone(attrs)).or_insert_with(|| {
            s.attrs.push(Arc::clone(attrs));
            (s.attrs.len() - 1) as u32
        });
        s.routes.push(SnapshotRoute {
            prefix,
            peer,
            attrs,
            class,
        });
    }

    /// The finished snapshot, routes sorted by prefix.
    pub fn finish(mut self) -> Snapshot {
        self.snapshot.routes.sort_by_key(|r| r.prefix);
        self.snapshot
    }
}

impl Snapshot {
    /// The live table's current routes.
    pub fn from_table(table: &RouteTable, source: &str, created_unix: u64) -> Snapshot {
        let mut b = SnapshotBuilder::new(source, created_unix, table.rules());
        for (prefix, best) in table.routes() {
            let info = table.peers().get(&best.peer);
            let peer = SnapshotPeer {
                addr: best.peer,
                asn: info.map_or(0, |i| i.asn),
                bgp_id: info.map_or(Ipv4Addr::UNSPECIFIED, |i| i.bgp_id),
            };
            b.add(*prefix, peer, &best.attrs, best.class);
        }
        b.finish()
    }

    /// The name of a realm, if the rules named it.
    pub fn realm_name(&self, id: RealmId) -> Option<&str> {
        self.realms
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.as_str())
    }

    /// The route of the longest prefix containing `addr`.
    ///
    /// A linear scan: a command that looks up one address after loading a
    /// snapshot is done in milliseconds this way, far sooner than building
    /// a longest-prefix-match table would take.
    pub fn lookup(&self, addr: IpAddr) -> Option<&SnapshotRoute> {
        self.routes
            .iter()
            .filter(|r| r.prefix.contains(addr))
            .max_by_key(|r| r.prefix.len())
    }

    /// Prefixes per realm and family; every realm the rules named appears,
    /// with zero counts if it has no prefix.
    pub fn counts(&self) -> BTreeMap<RealmId, FamilyCounts> {
        let mut out: BTreeMap<RealmId, FamilyCounts> = self
            .realms
            .iter()
            .map(|(id, _)| (*id, FamilyCounts::default()))
            .collect();
        for r in &self.routes {
            let c = out.entry(r.class.realm).or_default();
            if r.prefix.is_ipv4() {
                c.ipv4 += 1;
            } else {
                c.ipv6 += 1;
            }
        }
        out
    }

    /// The snapshot in the format described in the [module docs](self).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.routes.len() * 20 + self.attrs.len() * 48);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_be_bytes());
        out.extend_from_slice(&self.created_unix.to_be_bytes());
        put_str32(&mut out, &self.source);
        out.extend_from_slice(&self.default_realm.0.to_be_bytes());
        put_len(&mut out, self.realms.len());
        for (id, name) in &self.realms {
            out.extend_from_slice(&id.0.to_be_bytes());
            let name = &name.as_bytes()[..name.len().min(u16::MAX as usize)];
            out.extend_from_slice(&(name.len() as u16).to_be_bytes());
            out.extend_from_slice(name);
        }
        put_len(&mut out, self.peers.len());
        for p in &self.peers {
            put_addr(&mut out, Some(p.addr));
            out.extend_from_slice(&p.asn.to_be_bytes());
            out.extend_from_slice(&p.bgp_id.octets());
        }
        put_len(&mut out, self.attrs.len());
        for a in &self.attrs {
            put_addr(&mut out, a.next_hop);
            let without_next_hop = PathAttributes {
                next_hop: None,
                ..(**a).clone()
            };
            // Attributes that came off the wire always fit the wire again;
            // a set that does not is stored empty rather than lost silently
            // in a panic.
            let block = encode_path_attributes(&without_next_hop).unwrap_or_default();
            put_len(&mut out, block.len());
            out.extend_from_slice(&block);
        }
        put_len(&mut out, self.routes.len());
        for r in &self.routes {
            let (tag, len, bytes): (u8, u8, Vec<u8>) = match r.prefix {
                Prefix::V4(a, l) => (4, l, a.octets().to_vec()),
                Prefix::V6(a, l) => (6, l, a.octets().to_vec()),
            };
            out.extend_from_slice(&[tag, len]);
            out.extend_from_slice(&bytes[..usize::from(len).div_ceil(8)]);
            out.extend_from_slice(&r.peer.to_be_bytes());
            out.extend_from_slice(&r.attrs.to_be_bytes());
            out.extend_from_slice(&r.class.realm.0.to_be_bytes());
            put_rule(&mut out, r.class.rule);
        }
        out
    }

    /// Reads a snapshot written by [`Snapshot::encode`].
    pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
        let mut r = Cursor { bytes, pos: 0 };
        if bytes.is_empty() {
            return Err(r.error(0, SnapshotErrorKind::Empty));
        }
        if r.take(8, "the file header")? != MAGIC {
            return Err(r.error(0, SnapshotErrorKind::NotASnapshot));
        }
        let version = r.u16("the format version")?;
        if version != VERSION {
            return Err(r.error(
                8,
                SnapshotErrorKind::Version {
                    found: version,
                    supported: VERSION,
                },
            ));
        }
        let created_unix = u64::from_be_bytes(r.array("the creation time")?);
        let len = r.u32("the source name length")? as usize;
        let source = r.string(len, "the source name")?;
        let default_realm = RealmId(r.u16("the default realm")?);
        let n = r.count(4, "the realm count")?;
        let mut realms = Vec::with_capacity(n);
        for _ in 0..n {
            let id = RealmId(r.u16("a realm id")?);
            let len = r.u16("a realm name length")? as usize;
            realms.push((id, r.string(len, "a realm name")?));
        }
        let n = r.count(9, "the peer count")?;
        let mut peers = Vec::with_capacity(n);
        for _ in 0..n {
            let at = r.pos;
            let addr = r.addr("a peer address")?.ok_or_else(|| {
                r.error(
                    at,
                    SnapshotErrorKind::Tag {
                        field: "a peer address",
                        tag: 0,
                    },
                )
            })?;
            let asn = r.u32("a peer AS")?;
            let bgp_id = Ipv4Addr::from(r.array::<4>("a peer BGP identifier")?);
            peers.push(SnapshotPeer { addr, asn, bgp_id });
        }
        let n = r.count(5, "the attribute set count")?;
        let mut attrs = Vec::with_capacity(n);
        for i in 0..n {
            let next_hop = r.addr("an attribute set's next hop")?;
            let len = r.u32("an attribute set's length")? as usize;
            let at = r.pos;
            let block = r.take(len, "an attribute set")?;
            let mut a = decode_path_attributes(block)
                .map_err(|error| r.error(at, SnapshotErrorKind::Attributes { set: i, error }))?;
            a.next_hop = next_hop;
            attrs.push(Arc::new(a));
        }
        let n = r.count(13, "the route count")?;
        let mut routes = Vec::with_capacity(n);
        for _ in 0..n {
            let at = r.pos;
            let prefix = r.prefix()?;
            let peer = r.u32("a route's peer")?;
            let set = r.u32("a route's attribute set")?;
            if peer as usize >= peers.len() || set as usize >= attrs.len() {
                return Err(r.error(at, SnapshotErrorKind::Dangling { prefix }));
            }
            let realm = RealmId(r.u16("a route's realm")?);
            let rule = r.rule()?;
            routes.push(SnapshotRoute {
                prefix,
                peer,
                attrs: set,
                class: Classification { realm, rule },
            });
        }
        if r.pos != bytes.len() {
            return Err(r.error(r.pos, SnapshotErrorKind::Trailing));
        }
        Ok(Snapshot {
            source,
            created_unix,
            default_realm,
            realms,
            peers,
            attrs,
            routes,
        })
    }
}

fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&(n.min(u32::MAX as usize) as u32).to_be_bytes());
}

fn put_str32(out: &mut Vec<u8>, s: &str) {
    put_len(out, s.len());
    out.extend_from_slice(s.as_bytes());
}

fn put_addr(out: &mut Vec<u8>, a: Option<IpAddr>) {
    match a {
        None => out.push(0),
        Some(IpAddr::V4(a)) => {
            out.push(4);
            out.extend_from_slice(&a.octets());
        }
        Some(IpAddr::V6(a)) => {
            out.push(6);
            out.extend_from_slice(&a.octets());
        }
    }
}

fn put_rule(out: &mut Vec<u8>, rule: MatchedRule) {
    match rule {
        MatchedRule::Default => out.push(0),
        MatchedRule::Community(c) => {
            out.push(1);
            out.extend_from_slice(&c.to_be_bytes());
        }
        MatchedRule::LargeCommunity(c) => {
            out.push(2);
            for x in c {
                out.extend_from_slice(&x.to_be_bytes());
            }
        }
        MatchedRule::OriginAs(a) => {
            out.push(3);
            out.extend_from_slice(&a.to_be_bytes());
        }
        MatchedRule::AsPathContains(a) => {
            out.push(4);
            out.extend_from_slice(&a.to_be_bytes());
        }
        MatchedRule::Peer(p) => {
            out.push(5);
            put_addr(out, Some(p));
        }
        MatchedRule::NextHop(n) => {
            out.push(6);
            put_addr(out, Some(n));
        }
    }
}

/// A bounds-checked reader whose errors say where and what.
struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn error(&self, offset: usize, kind: SnapshotErrorKind) -> SnapshotError {
        SnapshotError { offset, kind }
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], SnapshotError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.error(self.pos, SnapshotErrorKind::Truncated { field: what }));
        };
        let s = &self.bytes[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, what: &'static str) -> Result<[u8; N], SnapshotError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N, what)?);
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, SnapshotError> {
        Ok(self.array::<1>(what)?[0])
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, SnapshotError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    fn u32(&mut self, what: &'static str) -> Result<u32, SnapshotError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    /// A count of items at least `min_size` bytes each, refused if the
    /// rest of the file cannot hold that many, so that a corrupt count
    /// cannot ask for a huge allocation.
    fn count(&mut self, min_size: usize, what: &'static str) -> Result<usize, SnapshotError> {
        let at = self.pos;
        let n = self.u32(what)? as usize;
        if n.saturating_mul(min_size) > self.bytes.len() - self.pos {
            return Err(self.error(
                at,
                SnapshotErrorKind::Count {
                    field: what,
                    count: n,
                },
            ));
        }
        Ok(n)
    }

    fn string(&mut self, len: usize, what: &'static str) -> Result<String, SnapshotError> {
        let at = self.pos;
        let b = self.take(len, what)?;
        String::from_utf8(b.to_vec())
            .map_err(|_| self.error(at, SnapshotErrorKind::NotUtf8 { field: what }))
    }

    fn addr(&mut self, what: &'static str) -> Result<Option<IpAddr>, SnapshotError> {
        let at = self.pos;
        Ok(match self.u8(what)? {
            0 => None,
            4 => Some(IpAddr::V4(Ipv4Addr::from(self.array::<4>(what)?))),
            6 => Some(IpAddr::V6(Ipv6Addr::from(self.array::<16>(what)?))),
            tag => return Err(self.error(at, SnapshotErrorKind::Tag { field: what, tag })),
        })
    }

    fn prefix(&mut self) -> Result<Prefix, SnapshotError> {
        let at = self.pos;
        let tag = self.u8("a route's prefix")?;
        let len = self.u8("a route's prefix length")?;
        let max = match tag {
            4 => 32,
            6 => 128,
            tag => {
                return Err(self.error(
                    at,
                    SnapshotErrorKind::Tag {
                        field: "a route's prefix",
                        tag,
                    },
                ))
            }
        };
        if len > max {
            return Err(self.error(at, SnapshotErrorKind::PrefixLength { len, max }));
        }
        let mut full = [0u8; 16];
        let part = self.take(usize::from(len).div_ceil(8), "a route's prefix")?;
        full[..part.len()].copy_from_slice(part);
        let prefix = if tag == 4 {
            Prefix::V4(Ipv4Addr::new(full[0], full[1], full[2], full[3]), len)
        } else {
            Prefix::V6(Ipv6Addr::from(full), len)
        };
        if prefix.network() != prefix {
            return Err(self.error(at, SnapshotErrorKind::HostBits { prefix }));
        }
        Ok(prefix)
    }

    fn rule(&mut self) -> Result<MatchedRule, SnapshotError> {
        let at = self.pos;
        let what = "a route's realm rule";
        Ok(match self.u8(what)? {
            0 => MatchedRule::Default,
            1 => MatchedRule::Community(self.u32(what)?),
            2 => MatchedRule::LargeCommunity([self.u32(what)?, self.u32(what)?, self.u32(what)?]),
            3 => MatchedRule::OriginAs(self.u32(what)?),
            4 => MatchedRule::AsPathContains(self.u32(what)?),
            k @ (5 | 6) => {
                let a = self.addr(what)?.ok_or_else(|| {
                    self.error(
                        at,
                        SnapshotErrorKind::Tag {
                            field: "a peer or next-hop rule's address",
                            tag: 0,
                        },
                    )
                })?;
                if k == 5 {
                    MatchedRule::Peer(a)
                } else {
                    MatchedRule::NextHop(a)
                }
            }
            kind => return Err(self.error(at, SnapshotErrorKind::RuleKind { kind })),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::RealmRules;
    use bgp::wire::{AsPathSegment, Origin, SegmentKind};

    pub(crate) fn sample() -> Snapshot {
        let rules = RealmRules::new(vec![], (RealmId(2), "international".into()));
        let mut b = SnapshotBuilder::new("rib.mrt", 1_700_000_000, &rules);
        let peer = SnapshotPeer {
            addr: "192.0.2.1".parse().unwrap(),
            asn: 65001,
            bgp_id: Ipv4Addr::new(192, 0, 2, 1),
        };
        let attrs = Arc::new(PathAttributes {
            origin: Some(Origin::Igp),
            as_path: vec![AsPathSegment {
                kind: SegmentKind::Sequence,
                asns: vec![65001, 64500],
            }],
            next_hop: Some("2001:db8::1".parse().unwrap()),
            communities: vec![65001 << 16 | 100],
            large_communities: vec![[65001, 1, 2]],
            ..PathAttributes::default()
        });
        let rules = [
            MatchedRule::Default,
            MatchedRule::Community(7),
            MatchedRule::LargeCommunity([1, 2, 3]),
            MatchedRule::OriginAs(64500),
            MatchedRule::AsPathContains(65001),
            MatchedRule::Peer(peer.addr),
            MatchedRule::NextHop("2001:db8::1".parse().unwrap()),
        ];
        for (i, rule) in rules.into_iter().enumerate() {
            let prefix = Prefix::parse(&format!("2001:db8:{i}::/48")).unwrap();
            b.add(
                prefix,
                peer,
                &attrs,
                Classification {
                    realm: RealmId(2),
                    rule,
                },
            );
        }
        b.add(
            Prefix::parse("198.51.100.0/24").unwrap(),
            peer,
            &attrs,
            Classification {
                realm: RealmId(2),
                rule: MatchedRule::Default,
            },
        );
        b.finish()
    }

    #[test]
    fn snapshots_round_trip_and_share_attributes() {
        let s = sample();
        assert_eq!((s.peers.len(), s.attrs.len(), s.routes.len()), (1, 1, 8));
        let bytes = s.encode();
        assert_eq!(Snapshot::decode(&bytes), Ok(s.clone()));
        let r = s.lookup("2001:db8:3::9".parse().unwrap()).unwrap();
        assert_eq!(r.class.rule, MatchedRule::OriginAs(64500));
        assert_eq!(s.counts()[&RealmId(2)], FamilyCounts { ipv4: 1, ipv6: 7 });
    }

    #[test]
    fn every_truncation_is_an_error_with_an_offset() {
        let bytes = sample().encode();
        for n in 0..bytes.len() {
            let e = Snapshot::decode(&bytes[..n]).unwrap_err();
            assert!(e.offset <= n, "{e} at cut {n}");
        }
        let mut bad = bytes.clone();
        bad[0] = b'X';
        assert_eq!(
            Snapshot::decode(&bad).unwrap_err().kind,
            SnapshotErrorKind::NotASnapshot
        );
    }

    /// Issue 12, items 7 and 8: what the daemon needs to keep its last
    /// good table. An empty file (an interrupted write) is damage, not
    /// "no routes"; every cut names the field it ends in; another format
    /// version is told apart from damage.
    #[test]
    fn unreadable_snapshots_say_why_in_types() {
        let bytes = sample().encode();
        assert_eq!(
            Snapshot::decode(&[]),
            Err(SnapshotError {
                offset: 0,
                kind: SnapshotErrorKind::Empty
            })
        );
        let cut = Snapshot::decode(&bytes[..bytes.len() - 1]).unwrap_err();
        assert!(
            matches!(cut.kind, SnapshotErrorKind::Truncated { field } if field.starts_with("a route")),
            "{cut}"
        );
        let mut other = bytes.clone();
        other[9] = 9;
        assert_eq!(
            Snapshot::decode(&other).unwrap_err(),
            SnapshotError {
                offset: 8,
                kind: SnapshotErrorKind::Version {
                    found: 9,
                    supported: 1
                }
            }
        );
        let mut longer = bytes.clone();
        longer.push(0);
        assert_eq!(
            Snapshot::decode(&longer).unwrap_err(),
            SnapshotError {
                offset: bytes.len(),
                kind: SnapshotErrorKind::Trailing
            }
        );
    }
}
