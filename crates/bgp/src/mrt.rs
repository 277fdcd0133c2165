//! A reader for MRT TABLE_DUMP_V2 RIB dumps (RFC 6396 §4.3, with the
//! ADD-PATH subtypes of RFC 8050).
//!
//! [`MrtReader`] walks a whole dump held in memory and yields one
//! [`MrtEntry`] per (peer, path, prefix). The PEER_INDEX_TABLE record that
//! starts a dump is consumed internally to resolve peer indexes. Unicast
//! RIBs are read with and without path identifiers
//! (RIB_IPV4_UNICAST and RIB_IPV6_UNICAST, and their `_ADDPATH` forms,
//! which BIRD writes for routes learned with ADD-PATH). Other records
//! (multicast RIBs, RIB_GENERIC, BGP4MP update streams…) are skipped and
//! counted per [`Skipped`] reason, so that a dump with extras still yields
//! its unicast routes and the caller can say what it left out.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use crate::bytes::Reader;
use crate::route::Route;
use crate::wire::{decode_attributes, read_prefix, AttrMode, DecodeError};

const TABLE_DUMP: u16 = 12;
const TABLE_DUMP_V2: u16 = 13;
const BGP4MP: u16 = 16;
const BGP4MP_ET: u16 = 17;
const PEER_INDEX_TABLE: u16 = 1;
const RIB_IPV4_UNICAST: u16 = 2;
const RIB_IPV4_MULTICAST: u16 = 3;
const RIB_IPV6_UNICAST: u16 = 4;
const RIB_IPV6_MULTICAST: u16 = 5;
const RIB_GENERIC: u16 = 6;
const GEO_PEER_TABLE: u16 = 7;
const RIB_IPV4_UNICAST_ADDPATH: u16 = 8;
const RIB_IPV4_MULTICAST_ADDPATH: u16 = 9;
const RIB_IPV6_UNICAST_ADDPATH: u16 = 10;
const RIB_IPV6_MULTICAST_ADDPATH: u16 = 11;
const RIB_GENERIC_ADDPATH: u16 = 12;
const HEADER_LEN: usize = 12;

/// Why a record was skipped rather than read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Skipped {
    /// A multicast RIB (TABLE_DUMP_V2 subtypes 3, 5, 9, 11): multicast
    /// routes do not say where unicast traffic goes.
    Multicast,
    /// RIB_GENERIC or RIB_GENERIC_ADDPATH (subtypes 6, 12): address
    /// families other than IPv4 and IPv6 unicast.
    Generic,
    /// GEO_PEER_TABLE (subtype 7, RFC 6397): peer locations, no routes.
    GeoPeerTable,
    /// A TABLE_DUMP_V2 subtype no RFC defined when this was written.
    UnknownSubtype(u16),
    /// TABLE_DUMP (type 12), the format before TABLE_DUMP_V2.
    TableDumpV1,
    /// BGP4MP or BGP4MP_ET (types 16, 17): a stream of updates, not a
    /// table.
    Updates,
    /// Any other record type.
    OtherType(u16),
}

impl Skipped {
    fn of(kind: u16, subtype: u16) -> Skipped {
        match (kind, subtype) {
            (
                TABLE_DUMP_V2,
                RIB_IPV4_MULTICAST
                | RIB_IPV6_MULTICAST
                | RIB_IPV4_MULTICAST_ADDPATH
                | RIB_IPV6_MULTICAST_ADDPATH,
            ) => Skipped::Multicast,
            (TABLE_DUMP_V2, RIB_GENERIC | RIB_GENERIC_ADDPATH) => Skipped::Generic,
            (TABLE_DUMP_V2, GEO_PEER_TABLE) => Skipped::GeoPeerTable,
            (TABLE_DUMP_V2, s) => Skipped::UnknownSubtype(s),
            (TABLE_DUMP, _) => Skipped::TableDumpV1,
            (BGP4MP | BGP4MP_ET, _) => Skipped::Updates,
            (k, _) => Skipped::OtherType(k),
        }
    }
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Skipped::Multicast => f.write_str("multicast RIB records (not used for realms)"),
            Skipped::Generic => {
                f.write_str("RIB_GENERIC records (address families other than IPv4/IPv6 unicast)")
            }
            Skipped::GeoPeerTable => f.write_str("GEO_PEER_TABLE records"),
            Skipped::UnknownSubtype(s) => write!(f, "TABLE_DUMP_V2 records of unknown subtype {s}"),
            Skipped::TableDumpV1 => {
                f.write_str("TABLE_DUMP (version 1) records (only TABLE_DUMP_V2 is read)")
            }
            Skipped::Updates => f.write_str("BGP4MP update records (a RIB dump is needed)"),
            Skipped::OtherType(t) => write!(f, "records of MRT type {t}"),
        }
    }
}

/// A peer from the PEER_INDEX_TABLE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MrtPeer {
    /// The peer's BGP identifier.
    pub bgp_id: Ipv4Addr,
    /// The peer's address.
    pub ip: IpAddr,
    /// The peer's AS.
    pub asn: u32,
}

/// One route of one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MrtEntry {
    /// The peer's index in the PEER_INDEX_TABLE.
    pub peer_index: u16,
    /// The peer itself.
    pub peer: MrtPeer,
    /// The path identifier (RFC 7911) of an ADD-PATH RIB entry: one peer
    /// may have sent several paths for the prefix. `None` in the plain
    /// RIB subtypes.
    pub path_id: Option<u32>,
    /// When the route was received, in seconds since the Unix epoch.
    pub originated: u32,
    /// The route.
    pub route: Route,
}

/// A record the reader could not use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MrtError {
    /// The byte offset of the start of the bad record in the input.
    pub offset: usize,
    /// What is wrong with it.
    pub kind: MrtErrorKind,
}

/// The ways a record can be bad.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MrtErrorKind {
    /// The input ends inside a record; reading stops here.
    Truncated,
    /// The record's fields do not add up.
    Malformed(&'static str),
    /// A RIB record came before any PEER_INDEX_TABLE.
    NoPeerIndexTable,
    /// A RIB entry names a peer index the table does not have.
    UnknownPeer(u16),
    /// A RIB entry's path attributes are malformed.
    Attributes(DecodeError),
}

impl fmt::Display for MrtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MRT record at byte {}: ", self.offset)?;
        match &self.kind {
            MrtErrorKind::Truncated => write!(f, "input ends inside the record"),
            MrtErrorKind::Malformed(why) => write!(f, "{why}"),
            MrtErrorKind::NoPeerIndexTable => write!(f, "RIB record before the peer index table"),
            MrtErrorKind::UnknownPeer(i) => write!(f, "unknown peer index {i}"),
            MrtErrorKind::Attributes(e) => write!(f, "bad path attributes: {e}"),
        }
    }
}

impl std::error::Error for MrtError {}

/// An iterator over the routes of a TABLE_DUMP_V2 dump.
#[derive(Clone, Debug)]
pub struct MrtReader<'a> {
    data: &'a [u8],
    pos: usize,
    peers: Option<Vec<MrtPeer>>,
    pending: VecDeque<Result<MrtEntry, MrtError>>,
    skipped: BTreeMap<Skipped, usize>,
    records: usize,
}

impl<'a> MrtReader<'a> {
    /// Starts reading a dump.
    pub fn new(data: &'a [u8]) -> Self {
        MrtReader {
            data,
            pos: 0,
            peers: None,
            pending: VecDeque::new(),
            skipped: BTreeMap::new(),
            records: 0,
        }
    }

    /// How many records were skipped because their type or subtype is not
    /// one this reader decodes.
    pub fn skipped(&self) -> usize {
        self.skipped.values().sum()
    }

    /// The skipped records, counted per reason.
    pub fn skipped_records(&self) -> &BTreeMap<Skipped, usize> {
        &self.skipped
    }

    /// How many records were read so far, skipped ones included.
    pub fn records(&self) -> usize {
        self.records
    }

    /// How many bytes of the input were consumed, for progress reports.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// The peers of the most recent PEER_INDEX_TABLE.
    pub fn peers(&self) -> &[MrtPeer] {
        self.peers.as_deref().unwrap_or_default()
    }

    /// Reads the next record, queueing its entries (or its error).
    fn read_record(&mut self) {
        let offset = self.pos;
        let mut r = Reader::new(&self.data[offset..]);
        let header = (r.u32(), r.u16(), r.u16(), r.u32());
        let (Some(_time), Some(kind), Some(subtype), Some(len)) = header else {
            self.stop(offset);
            return;
        };
        let Some(body) = r.take(len as usize) else {
            self.stop(offset);
            return;
        };
        self.pos = offset + HEADER_LEN + body.len();
        self.records += 1;
        let err = |kind| Err(MrtError { offset, kind });
        match (kind, subtype) {
            (TABLE_DUMP_V2, PEER_INDEX_TABLE) => match parse_peer_table(body) {
                Some(peers) => self.peers = Some(peers),
                None => self
                    .pending
                    .push_back(err(MrtErrorKind::Malformed("bad peer index table"))),
            },
            (
                TABLE_DUMP_V2,
                RIB_IPV4_UNICAST
                | RIB_IPV6_UNICAST
                | RIB_IPV4_UNICAST_ADDPATH
                | RIB_IPV6_UNICAST_ADDPATH,
            ) => {
                let Some(peers) = &self.peers else {
                    self.pending.push_back(err(MrtErrorKind::NoPeerIndexTable));
                    return;
                };
                let rib = Rib {
                    v6: matches!(subtype, RIB_IPV6_UNICAST | RIB_IPV6_UNICAST_ADDPATH),
                    add_path: matches!(
                        subtype,
                        RIB_IPV4_UNICAST_ADDPATH | RIB_IPV6_UNICAST_ADDPATH
                    ),
                };
                if let Err(kind) = parse_rib(body, rib, peers, offset, &mut self.pending) {
                    self.pending.push_back(err(kind));
                }
            }
            _ => *self.skipped.entry(Skipped::of(kind, subtype)).or_default() += 1,
        }
    }

    /// Reports a truncated record and ends the iteration, since without a
    /// trustworthy length there is no next record to find.
    fn stop(&mut self, offset: usize) {
        self.pos = self.data.len();
        self.pending.push_back(Err(MrtError {
            offset,
            kind: MrtErrorKind::Truncated,
        }));
    }
}

impl Iterator for MrtReader<'_> {
    type Item = Result<MrtEntry, MrtError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(item) = self.pending.pop_front() {
                return Some(item);
            }
            if self.pos >= self.data.len() {
                return None;
            }
            self.read_record();
        }
    }
}

fn parse_peer_table(body: &[u8]) -> Option<Vec<MrtPeer>> {
    let mut r = Reader::new(body);
    let _collector = r.array::<4>()?;
    let name_len = r.u16()?;
    r.take(name_len as usize)?;
    let count = r.u16()?;
    let mut peers = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let peer_type = r.u8()?;
        let bgp_id = Ipv4Addr::from(r.array::<4>()?);
        let ip = if peer_type & 1 != 0 {
            IpAddr::V6(Ipv6Addr::from(r.array::<16>()?))
        } else {
            IpAddr::V4(Ipv4Addr::from(r.array::<4>()?))
        };
        let asn = if peer_type & 2 != 0 {
            r.u32()?
        } else {
            u32::from(r.u16()?)
        };
        peers.push(MrtPeer { bgp_id, ip, asn });
    }
    Some(peers)
}

/// Which unicast RIB subtype a record is.
#[derive(Clone, Copy)]
struct Rib {
    /// IPv6 (else IPv4).
    v6: bool,
    /// RFC 8050: each entry has a 4-byte path identifier after its
    /// originated time.
    add_path: bool,
}

/// Parses a unicast RIB record (RIB_IPV4_UNICAST, RIB_IPV6_UNICAST or
/// their ADD-PATH forms) into `out`.
///
/// An entry with bad attributes or an unknown peer becomes an error of its
/// own and the other entries are kept, because the entry lengths still
/// frame the record; only a framing error rejects the rest of the record.
fn parse_rib(
    body: &[u8],
    rib: Rib,
    peers: &[MrtPeer],
    offset: usize,
    out: &mut VecDeque<Result<MrtEntry, MrtError>>,
) -> Result<(), MrtErrorKind> {
    let malformed = MrtErrorKind::Malformed;
    let mut r = Reader::new(body);
    let _sequence = r.u32().ok_or(malformed("truncated RIB header"))?;
    let prefix = read_prefix(&mut r, rib.v6).ok_or(malformed("bad RIB prefix"))?;
    let count = r.u16().ok_or(malformed("truncated entry count"))?;
    let mode = AttrMode {
        four_byte_as: true,
        mrt: true,
    };
    for _ in 0..count {
        let (Some(peer_index), Some(originated)) = (r.u16(), r.u32()) else {
            return Err(malformed("truncated RIB entry"));
        };
        let path_id = match rib.add_path {
            true => Some(
                r.u32()
                    .ok_or(malformed("truncated RIB entry path identifier"))?,
            ),
            false => None,
        };
        let Some(attr_len) = r.u16() else {
            return Err(malformed("truncated RIB entry"));
        };
        let attrs = r
            .take(attr_len as usize)
            .ok_or(malformed("RIB entry overruns the record"))?;
        let entry = match (
            peers.get(peer_index as usize),
            decode_attributes(attrs, mode),
        ) {
            (None, _) => Err(MrtErrorKind::UnknownPeer(peer_index)),
            (_, Err(e)) => Err(MrtErrorKind::Attributes(e)),
            (Some(&peer), Ok(decoded)) => {
                let mut attrs = decoded.attrs;
                let mp_next_hop = decoded.mp_reach.map(|mp| mp.next_hop);
                // RFC 6396 §4.3.4: IPv6 next hops live in MP_REACH_NLRI,
                // IPv4 ones in NEXT_HOP unless MP_REACH_NLRI supplies one.
                if let Some(nh) = decoded.mrt_next_hop.or(mp_next_hop) {
                    attrs.next_hop = Some(nh);
                }
                Ok(MrtEntry {
                    peer_index,
                    peer,
                    path_id,
                    originated,
                    route: Route {
                        prefix,
                        attrs: Arc::new(attrs),
                    },
                })
            }
        };
        out.push_back(entry.map_err(|kind| MrtError { offset, kind }));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_table_handles_both_address_and_as_sizes() {
        let mut body = vec![1, 2, 3, 4, 0, 1, b'v', 0, 2];
        body.extend_from_slice(&[0, 9, 9, 9, 9, 10, 0, 0, 1, 0, 7]);
        body.extend_from_slice(&[3, 8, 8, 8, 8]);
        body.extend_from_slice(&[0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        body.extend_from_slice(&[0, 1, 0, 0]);
        let peers = parse_peer_table(&body).unwrap();
        assert_eq!(peers[0].asn, 7);
        assert_eq!(peers[0].ip, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(peers[1].asn, 65536);
        assert_eq!(peers[1].ip, "fe80::1".parse::<IpAddr>().unwrap());
        assert!(parse_peer_table(&body[..body.len() - 1]).is_none());
    }

    #[test]
    fn unknown_records_are_skipped_and_counted() {
        let mut data = vec![0, 0, 0, 0, 0, 13, 0, 6, 0, 0, 0, 1, 0];
        data.extend_from_slice(&[0, 0, 0, 0, 0, 16, 0, 4, 0, 0, 0, 0]);
        let mut reader = MrtReader::new(&data);
        assert!(reader.next().is_none());
        assert_eq!((reader.skipped(), reader.records()), (2, 2));
        assert_eq!(
            reader.skipped_records(),
            &BTreeMap::from([(Skipped::Generic, 1), (Skipped::Updates, 1)])
        );
    }
}
