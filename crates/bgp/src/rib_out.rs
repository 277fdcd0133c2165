//! What tollgate announces, and what one session has been sent of it
//! (the Adj-RIB-Out of RFC 4271 §3.2).
//!
//! The embedder keeps one [`Announcements`] table: the routes it wants
//! every announcing peer to have (the guard's RTBH routes). Each session
//! keeps an [`AdjRibOut`]: what that peer was actually sent. Whenever the
//! table changes, or the session (re)establishes, [`AdjRibOut::sync`]
//! compares the two and returns the UPDATEs that make the peer's view the
//! table: announcements for what is new or changed, withdrawals for what
//! is gone. Because a new session starts with an empty Adj-RIB-Out, a peer
//! that restarts gets every route again without anyone remembering to
//! re-send, and because the comparison is against the latest table, a
//! change made while a session was coming up is never lost.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use net_types::Prefix;

use crate::route::Family;
use crate::wire::{
    AsPathSegment, EncodeError, Message, MpReach, MpUnreach, Origin, PathAttributes, SegmentKind,
    Update, WireOptions,
};

/// RFC 7999 BLACKHOLE, 65535:666.
pub const BLACKHOLE: u32 = 0xFFFF_029A;

/// One route tollgate wants to announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Announcement {
    /// The destination (the victim's /32 or /128 for RTBH).
    pub prefix: Prefix,
    /// The next hop; `None` uses the session's own (its local address, or
    /// the peer's configured next hop for that family).
    pub next_hop: Option<IpAddr>,
    /// Standard communities, `high << 16 | low` ([`BLACKHOLE`] for RTBH).
    pub communities: Vec<u32>,
    /// Large communities (RFC 8092).
    pub large_communities: Vec<[u32; 3]>,
    /// LOCAL_PREF, sent to internal peers only (RFC 4271 §5.1.5 forbids it
    /// towards external ones).
    pub local_pref: Option<u32>,
}

impl Announcement {
    /// A route with no attributes beyond the mandatory ones.
    pub fn new(prefix: Prefix) -> Announcement {
        Announcement {
            prefix: prefix.network(),
            next_hop: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
            local_pref: None,
        }
    }
}

/// The routes to announce, by prefix.
pub type Announcements = BTreeMap<Prefix, Announcement>;

/// One FlowSpec rule tollgate wants to announce, with its action.
#[derive(Clone, Debug, PartialEq)]
pub struct FlowRoute {
    /// The rule.
    pub rule: crate::flowspec::Rule,
    /// The traffic-rate action in bytes per second; 0 discards.
    pub rate: f32,
}

impl FlowRoute {
    /// The rule's identity: its NLRI bytes (two spellings of one rule are
    /// one rule). `None` for a rule that cannot be encoded.
    pub fn key(&self) -> Option<Vec<u8>> {
        self.rule.encode_nlri().ok()
    }
}

/// The FlowSpec rules to announce, by [`FlowRoute::key`].
pub type FlowRoutes = BTreeMap<Vec<u8>, FlowRoute>;

/// What a session knows of itself that decides how routes are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExportContext {
    /// Our AS.
    pub local_as: u32,
    /// The peer's AS: the same as ours makes the session internal (empty
    /// AS_PATH, LOCAL_PREF sent).
    pub peer_as: u32,
    /// The negotiated message layout.
    pub opts: WireOptions,
    /// Whether IPv4 unicast was negotiated.
    pub ipv4: bool,
    /// Whether IPv6 unicast was negotiated.
    pub ipv6: bool,
    /// The IPv4 next hop for routes that name none (next hop self).
    pub next_hop_v4: Option<Ipv4Addr>,
    /// The IPv6 next hop for routes that name none.
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Whether FlowSpec was negotiated for IPv4 and for IPv6.
    pub flowspec: (bool, bool),
}

/// Why a route was not sent to a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Skip {
    /// The peer did not negotiate the route's family.
    FamilyNotNegotiated,
    /// No next hop of the route's family: none given and the session has
    /// none of its own (an IPv6 route over an IPv4 session without a
    /// configured IPv6 next hop).
    NoNextHop,
    /// The next hop is of the other family (RFC 8950 is not spoken).
    NextHopFamily,
    /// The UPDATE would exceed 4096 bytes (thousands of communities).
    TooLong,
}

/// What one [`AdjRibOut::sync`] produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncOutput {
    /// Encoded UPDATE messages, to be written in order.
    pub messages: Vec<Vec<u8>>,
    /// How many prefixes were announced (new or changed).
    pub announced: usize,
    /// How many prefixes were withdrawn.
    pub withdrawn: usize,
    /// Routes that could not be sent, and why. They are tried again at
    /// the next sync.
    pub skipped: Vec<(Prefix, Skip)>,
}

/// What one peer has been sent; see the [module docs](self).
#[derive(Clone, Debug)]
pub struct AdjRibOut {
    cx: ExportContext,
    /// The attributes each prefix was sent with (the effective next hop in
    /// `next_hop`).
    sent: BTreeMap<Prefix, PathAttributes>,
    /// The FlowSpec rules sent, by key, with their rate's bits.
    sent_flows: BTreeMap<Vec<u8>, (crate::flowspec::Rule, u32)>,
}

/// Withdrawn prefixes per UPDATE: 500 IPv4 /32s take 2.5 kB and 200
/// IPv6 /128s 3.4 kB, both within the 4096-byte limit.
const WITHDRAW_CHUNK_V4: usize = 500;
const WITHDRAW_CHUNK_V6: usize = 200;

impl AdjRibOut {
    /// An empty Adj-RIB-Out for a session that just reached Established.
    pub fn new(cx: ExportContext) -> AdjRibOut {
        AdjRibOut {
            cx,
            sent: BTreeMap::new(),
            sent_flows: BTreeMap::new(),
        }
    }

    /// How many prefixes the peer currently has from us.
    pub fn len(&self) -> usize {
        self.sent.len()
    }

    /// Whether the peer has nothing from us.
    pub fn is_empty(&self) -> bool {
        self.sent.is_empty()
    }

    /// Forgets what one family was sent, so that the next sync sends it
    /// all again (the peer asked with ROUTE-REFRESH).
    pub fn forget(&mut self, family: Family) {
        self.sent
            .retain(|p, _| p.is_ipv4() != (family == Family::Ipv4Unicast));
    }

    /// The UPDATEs that turn what the peer has into `want`, and records
    /// them as sent.
    pub fn sync(&mut self, want: &Announcements) -> SyncOutput {
        let mut out = SyncOutput::default();
        let mut gone: Vec<Prefix> = Vec::new();
        for prefix in self.sent.keys() {
            if !want.contains_key(prefix) {
                gone.push(*prefix);
            }
        }
        for a in want.values() {
            let attrs = match self.attributes(a) {
                Ok(attrs) => attrs,
                Err(skip) => {
                    out.skipped.push((a.prefix, skip));
                    // What the peer had under the old attributes must not
                    // outlive a route we can no longer write.
                    if self.sent.contains_key(&a.prefix) {
                        gone.push(a.prefix);
                    }
                    continue;
                }
            };
            if self.sent.get(&a.prefix) == Some(&attrs) {
                continue;
            }
            match self.announce_message(a.prefix, &attrs) {
                Ok(bytes) => {
                    out.messages.push(bytes);
                    out.announced += 1;
                    self.sent.insert(a.prefix, attrs);
                }
                Err(_) => out.skipped.push((a.prefix, Skip::TooLong)),
            }
        }
        gone.sort();
        gone.dedup();
        let (v4, v6): (Vec<Prefix>, Vec<Prefix>) = gone.iter().partition(|p| p.is_ipv4());
        for chunk in v4.chunks(WITHDRAW_CHUNK_V4) {
            let update = Update {
                withdrawn: chunk.to_vec(),
                ..Update::default()
            };
            out.messages.extend(self.encode(update));
        }
        for chunk in v6.chunks(WITHDRAW_CHUNK_V6) {
            let update = Update {
                mp_unreach: Some(MpUnreach {
                    family: Family::Ipv6Unicast,
                    withdrawn: chunk.to_vec(),
                }),
                ..Update::default()
            };
            out.messages.extend(self.encode(update));
        }
        for p in &gone {
            self.sent.remove(p);
        }
        out.withdrawn = gone.len();
        out
    }

    /// How many FlowSpec rules the peer has from us.
    pub fn flow_len(&self) -> usize {
        self.sent_flows.len()
    }

    /// The UPDATEs that turn the FlowSpec rules the peer has into `want`
    /// (one rule per UPDATE: rules are few, and each carries its own
    /// action), and records them as sent. A rule of a family the peer did
    /// not negotiate is skipped.
    pub fn sync_flows(&mut self, want: &FlowRoutes) -> SyncOutput {
        let mut out = SyncOutput::default();
        let (v4, v6) = self.cx.flowspec;
        let internal = self.cx.local_as == self.cx.peer_as;
        let attrs = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: if internal {
                Vec::new()
            } else {
                vec![AsPathSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![self.cx.local_as],
                }]
            },
            ..PathAttributes::default()
        };
        let gone: Vec<Vec<u8>> = self
            .sent_flows
            .keys()
            .filter(|k| !want.contains_key(*k))
            .cloned()
            .collect();
        for k in gone {
            if let Some((rule, _)) = self.sent_flows.remove(&k) {
                if let Ok(bytes) =
                    crate::flowspec::withdraw_update(std::slice::from_ref(&rule), self.cx.opts)
                {
                    out.messages.push(bytes);
                    out.withdrawn += 1;
                }
            }
        }
        for (k, f) in want {
            let ok = if f.rule.is_ipv6() { v6 } else { v4 };
            if !ok {
                continue;
            }
            let bits = f.rate.to_bits();
            if self.sent_flows.get(k).is_some_and(|(_, b)| *b == bits) {
                continue;
            }
            // The traffic-rate's AS field is informative (RFC 8955 §7.3);
            // a four-octet AS does not fit and is written as 0.
            let asn = u16::try_from(self.cx.local_as).unwrap_or(0);
            let ext = [crate::flowspec::traffic_rate(asn, f.rate)];
            // A rule that cannot be encoded has no key, so it never gets
            // here; an UPDATE that does not fit is left out.
            if let Ok(bytes) = crate::flowspec::announce_update(
                std::slice::from_ref(&f.rule),
                &attrs,
                &ext,
                self.cx.opts,
            ) {
                out.messages.push(bytes);
                out.announced += 1;
                self.sent_flows.insert(k.clone(), (f.rule.clone(), bits));
            }
        }
        out
    }

    /// The attributes `a` is sent with on this session, its effective next
    /// hop included.
    fn attributes(&self, a: &Announcement) -> Result<PathAttributes, Skip> {
        let cx = &self.cx;
        let v4 = a.prefix.is_ipv4();
        if (v4 && !cx.ipv4) || (!v4 && !cx.ipv6) {
            return Err(Skip::FamilyNotNegotiated);
        }
        let next_hop = match a.next_hop {
            Some(nh) => nh,
            None if v4 => IpAddr::V4(cx.next_hop_v4.ok_or(Skip::NoNextHop)?),
            None => IpAddr::V6(cx.next_hop_v6.ok_or(Skip::NoNextHop)?),
        };
        if next_hop.is_ipv4() != v4 {
            return Err(Skip::NextHopFamily);
        }
        let internal = cx.local_as == cx.peer_as;
        Ok(PathAttributes {
            origin: Some(Origin::Igp),
            // RFC 4271 §5.1.2: towards an external peer we prepend our AS;
            // towards an internal one the path of a route we originate is
            // empty.
            as_path: if internal {
                Vec::new()
            } else {
                vec![AsPathSegment {
                    kind: SegmentKind::Sequence,
                    asns: vec![cx.local_as],
                }]
            },
            next_hop: Some(next_hop),
            local_pref: if internal { a.local_pref } else { None },
            communities: a.communities.clone(),
            large_communities: a.large_communities.clone(),
            ..PathAttributes::default()
        })
    }

    fn announce_message(
        &self,
        prefix: Prefix,
        attrs: &PathAttributes,
    ) -> Result<Vec<u8>, EncodeError> {
        let update = match (prefix.is_ipv4(), attrs.next_hop) {
            (true, _) => Update {
                attrs: attrs.clone(),
                nlri: vec![prefix],
                ..Update::default()
            },
            (false, Some(next_hop)) => Update {
                // IPv6 goes in MP_REACH_NLRI (RFC 4760), whose next hop
                // replaces the classic NEXT_HOP attribute.
                attrs: PathAttributes {
                    next_hop: None,
                    ..attrs.clone()
                },
                mp_reach: Some(MpReach {
                    family: Family::Ipv6Unicast,
                    next_hop,
                    link_local: None,
                    nlri: vec![prefix],
                }),
                ..Update::default()
            },
            (false, None) => return Err(EncodeError::TooLong { len: 0 }),
        };
        Message::Update(update).encode(self.cx.opts)
    }

    fn encode(&self, update: Update) -> Option<Vec<u8>> {
        Message::Update(update).encode(self.cx.opts).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire;

    fn p(s: &str) -> Prefix {
        Prefix::parse(s).unwrap()
    }

    fn cx(peer_as: u32) -> ExportContext {
        ExportContext {
            local_as: 65000,
            peer_as,
            opts: WireOptions { four_byte_as: true },
            ipv4: true,
            ipv6: true,
            next_hop_v4: Some(Ipv4Addr::new(192, 0, 2, 1)),
            next_hop_v6: None,
            flowspec: (true, false),
        }
    }

    #[test]
    fn flowspec_rules_are_sent_changed_and_withdrawn_in_their_family() {
        use crate::flowspec::{Component, Numeric, Rule};
        let mut rib = AdjRibOut::new(cx(65001));
        let rule = |dst: &str| Rule {
            components: vec![
                Component::Destination(p(dst)),
                Component::Protocol(vec![Numeric::eq(17)]),
            ],
        };
        let route = |dst: &str, rate: f32| FlowRoute {
            rule: rule(dst),
            rate,
        };
        let mut want = FlowRoutes::new();
        for r in [route("203.0.113.7/32", 0.0), route("2001:db8::7/128", 0.0)] {
            want.insert(r.key().unwrap(), r);
        }
        let out = rib.sync_flows(&want);
        assert_eq!(out.announced, 1, "IPv6 FlowSpec not negotiated");
        let Message::Update(u) =
            wire::decode(&out.messages[0], WireOptions { four_byte_as: true }).unwrap()
        else {
            panic!("not an UPDATE");
        };
        let reach = u.attrs.other.iter().find(|a| a.type_code == 14).unwrap();
        assert_eq!(&reach.value[..3], &[0, 1, 133]);
        assert_eq!(u.attrs.as_path_flat(), vec![65000]);
        assert!(rib.sync_flows(&want).messages.is_empty());
        // A new rate is sent again; a rule gone is withdrawn.
        let r = route("203.0.113.7/32", 125_000.0);
        want.insert(r.key().unwrap(), r);
        assert_eq!(rib.sync_flows(&want).announced, 1);
        let out = rib.sync_flows(&FlowRoutes::new());
        assert_eq!((out.announced, out.withdrawn), (0, 1));
        assert_eq!(rib.flow_len(), 0);
    }

    fn rtbh(prefix: &str) -> Announcement {
        Announcement {
            communities: vec![BLACKHOLE],
            large_communities: vec![[65000, 666, 1]],
            local_pref: Some(200),
            ..Announcement::new(p(prefix))
        }
    }

    fn decode(bytes: &[u8]) -> Update {
        match wire::decode(bytes, WireOptions { four_byte_as: true }).unwrap() {
            Message::Update(u) => u,
            other => panic!("not an UPDATE: {other:?}"),
        }
    }

    #[test]
    fn blackhole_is_65535_666() {
        assert_eq!(BLACKHOLE >> 16, 65535);
        assert_eq!(BLACKHOLE & 0xFFFF, 666);
    }

    #[test]
    fn an_ipv4_route_to_an_external_peer_has_our_as_and_no_local_pref() {
        let mut rib = AdjRibOut::new(cx(65001));
        let want = Announcements::from([(p("203.0.113.7/32"), rtbh("203.0.113.7/32"))]);
        let out = rib.sync(&want);
        assert_eq!((out.announced, out.withdrawn), (1, 0));
        let u = decode(&out.messages[0]);
        assert_eq!(u.nlri, vec![p("203.0.113.7/32")]);
        assert_eq!(u.attrs.as_path_flat(), vec![65000]);
        assert_eq!(u.attrs.next_hop, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(u.attrs.communities, vec![BLACKHOLE]);
        assert_eq!(u.attrs.large_communities, vec![[65000, 666, 1]]);
        assert_eq!(u.attrs.local_pref, None);
        assert_eq!(u.attrs.origin, Some(Origin::Igp));
        // Nothing changed: nothing to send.
        assert_eq!(rib.sync(&want), SyncOutput::default());
        assert_eq!(rib.len(), 1);
    }

    #[test]
    fn an_internal_peer_gets_local_pref_and_an_empty_path() {
        let mut rib = AdjRibOut::new(cx(65000));
        let want = Announcements::from([(p("203.0.113.7/32"), rtbh("203.0.113.7/32"))]);
        let u = decode(&rib.sync(&want).messages[0]);
        assert!(u.attrs.as_path.is_empty());
        assert_eq!(u.attrs.local_pref, Some(200));
    }

    #[test]
    fn ipv6_goes_in_mp_reach_and_needs_an_ipv6_next_hop() {
        let mut rib = AdjRibOut::new(cx(65001));
        let want = Announcements::from([(p("2001:db8::7/128"), rtbh("2001:db8::7/128"))]);
        let out = rib.sync(&want);
        assert_eq!(out.skipped, vec![(p("2001:db8::7/128"), Skip::NoNextHop)]);
        assert!(out.messages.is_empty());
        let mut with_nh = rtbh("2001:db8::7/128");
        with_nh.next_hop = Some("2001:db8::1".parse().unwrap());
        let want = Announcements::from([(with_nh.prefix, with_nh)]);
        let out = rib.sync(&want);
        let u = decode(&out.messages[0]);
        assert!(u.nlri.is_empty());
        assert_eq!(u.attrs.next_hop, None, "no classic NEXT_HOP for IPv6");
        let mp = u.mp_reach.unwrap();
        assert_eq!(mp.family, Family::Ipv6Unicast);
        assert_eq!(mp.next_hop, "2001:db8::1".parse::<IpAddr>().unwrap());
        assert_eq!(mp.nlri, vec![p("2001:db8::7/128")]);
        assert_eq!(u.attrs.communities, vec![BLACKHOLE]);
    }

    #[test]
    fn withdrawals_go_in_their_family_field() {
        let mut rib = AdjRibOut::new(ExportContext {
            next_hop_v6: Some("2001:db8::1".parse().unwrap()),
            ..cx(65001)
        });
        let mut want = Announcements::new();
        for s in ["203.0.113.7/32", "2001:db8::7/128", "198.51.100.0/24"] {
            want.insert(p(s), rtbh(s));
        }
        assert_eq!(rib.sync(&want).announced, 3);
        want.remove(&p("203.0.113.7/32"));
        want.remove(&p("2001:db8::7/128"));
        let out = rib.sync(&want);
        assert_eq!((out.announced, out.withdrawn), (0, 2));
        let v4 = decode(&out.messages[0]);
        assert_eq!(v4.withdrawn, vec![p("203.0.113.7/32")]);
        let v6 = decode(&out.messages[1]);
        assert_eq!(v6.mp_unreach.unwrap().withdrawn, vec![p("2001:db8::7/128")]);
        assert_eq!(rib.len(), 1);
    }

    #[test]
    fn changed_attributes_are_sent_again_and_a_new_session_gets_everything() {
        let mut rib = AdjRibOut::new(cx(65001));
        let mut want = Announcements::from([(p("203.0.113.7/32"), rtbh("203.0.113.7/32"))]);
        rib.sync(&want);
        want.get_mut(&p("203.0.113.7/32"))
            .unwrap()
            .communities
            .push(65000 << 16 | 1);
        let out = rib.sync(&want);
        assert_eq!(out.announced, 1);
        assert_eq!(
            decode(&out.messages[0]).attrs.communities,
            vec![BLACKHOLE, 65000 << 16 | 1]
        );
        // A restarted peer: a new Adj-RIB-Out sends the whole table.
        let mut fresh = AdjRibOut::new(cx(65001));
        assert_eq!(fresh.sync(&want).announced, 1);
        // ROUTE-REFRESH for IPv4 forgets and resends.
        fresh.forget(Family::Ipv4Unicast);
        assert_eq!(fresh.sync(&want).announced, 1);
        fresh.forget(Family::Ipv6Unicast);
        assert!(fresh.sync(&want).messages.is_empty());
    }

    #[test]
    fn families_not_negotiated_and_wrong_next_hops_are_skipped() {
        let mut rib = AdjRibOut::new(ExportContext {
            ipv6: false,
            ..cx(65001)
        });
        let mut bad = rtbh("203.0.113.8/32");
        bad.next_hop = Some("2001:db8::1".parse().unwrap());
        let want = Announcements::from([
            (p("2001:db8::7/128"), rtbh("2001:db8::7/128")),
            (bad.prefix, bad),
        ]);
        let out = rib.sync(&want);
        assert!(out.messages.is_empty());
        assert_eq!(
            out.skipped,
            vec![
                (p("203.0.113.8/32"), Skip::NextHopFamily),
                (p("2001:db8::7/128"), Skip::FamilyNotNegotiated),
            ]
        );
    }

    #[test]
    fn many_withdrawals_fit_in_several_messages() {
        let mut rib = AdjRibOut::new(cx(65001));
        let mut want = Announcements::new();
        for i in 0..1200u32 {
            let prefix = Prefix::V4(Ipv4Addr::from(0x6440_0000 + i), 32);
            want.insert(prefix, Announcement::new(prefix));
        }
        assert_eq!(rib.sync(&want).announced, 1200);
        let out = rib.sync(&Announcements::new());
        assert_eq!(out.withdrawn, 1200);
        assert_eq!(out.messages.len(), 3);
        assert!(out
            .messages
            .iter()
            .all(|m| m.len() <= wire::MAX_MESSAGE_LEN));
        let total: usize = out.messages.iter().map(|m| decode(m).withdrawn.len()).sum();
        assert_eq!(total, 1200);
    }
}
