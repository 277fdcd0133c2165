//! The `[bgp]` section: tollgate's BGP speaker, its AS, its identifier and
//! its peers, for announcing the guard's RTBH routes (docs/routes.md,
//! docs/guard.md).
//!
//! Every value is checked where it is read, so each mistake points at the
//! line and column it was written at; [`check`] relates the section to the
//! guard's ladder.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Serialize;

use crate::diagnostic::Diagnostic;
use crate::model::Policy;
use crate::parse::each_table;
use crate::reader::{Cx, Fields, Node};
use crate::source::Span;

/// The `[bgp]` section.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Bgp {
    /// Our AS number (four octets are fine).
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// Where to accept connections (`["0.0.0.0:179"]` unless set; may be
    /// empty when every peer is active).
    pub listen: Vec<SocketAddr>,
    /// The hold time proposed to peers without their own, in seconds (90
    /// unless set; 0 turns keepalives off).
    pub hold_time: u16,
    /// The peers, in file order.
    pub peers: Vec<BgpPeer>,
    /// Where `[bgp]` was declared.
    pub span: Span,
}

/// One `[[bgp.peers]]` entry.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BgpPeer {
    /// The peer's address.
    pub address: IpAddr,
    /// The AS the peer must have.
    pub remote_as: u32,
    /// The peer's port, for connecting to it (179 unless set).
    pub port: u16,
    /// Whether tollgate only waits for the peer (true unless set).
    pub passive: bool,
    /// The families offered; empty means both.
    pub families: Vec<BgpFamily>,
    /// Whether the peer gets tollgate's announcements (false unless set).
    pub announce: bool,
    /// Whether FlowSpec is offered to it, for the flowspec rung (false
    /// unless set; needs `announce`).
    pub flowspec: bool,
    /// The hold time proposed to this peer.
    pub hold_time: Option<u16>,
    /// A name for logs.
    pub name: Option<String>,
    /// The next hop of IPv4 routes that name none (our session address
    /// unless set).
    pub next_hop_v4: Option<Ipv4Addr>,
    /// The next hop of IPv6 routes that name none (our session address,
    /// if IPv6, unless set).
    pub next_hop_v6: Option<Ipv6Addr>,
    /// Where the entry was declared.
    pub span: Span,
}

/// An address family a peer is offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BgpFamily {
    /// IPv4 unicast.
    Ipv4,
    /// IPv6 unicast.
    Ipv6,
}

const HOLD_HINT: &str = "use 0 (no keepalives) or 3 to 65535 seconds; 90 is usual";

/// Reads the `[bgp]` table.
pub(crate) fn section(cx: &mut Cx, node: Node<'_>) -> Option<Bgp> {
    let mut f = cx.table(node, "bgp")?;
    let span = f.span;
    let local_as = f.require(cx, "local_as", "65000").and_then(|n| asn(cx, n));
    let router_id = f
        .require(cx, "router_id", "\"192.0.2.1\"")
        .and_then(|n| router_id(cx, n));
    let listen = match f.get(cx, "listen") {
        None => Some(vec![SocketAddr::from(([0, 0, 0, 0], 179))]),
        Some(n) => {
            let mut ok = true;
            let mut v = Vec::new();
            for (s, at) in cx.strings(n) {
                match s.parse::<SocketAddr>() {
                    Ok(a) => v.push(a),
                    Err(_) => {
                        ok = false;
                        cx.error(
                            at,
                            format!("`{s}` is not an address and port"),
                            "write \"0.0.0.0:179\", or \"[::]:179\" for IPv6",
                        );
                    }
                }
            }
            ok.then_some(v)
        }
    };
    let listen_span = f.peek(cx, "listen").map(|n| n.span);
    let hold_time = match f.get(cx, "hold_time") {
        None => Some(bgp_speaker_default_hold()),
        Some(n) => hold(cx, n),
    };
    let mut peers = Vec::new();
    let mut peers_ok = true;
    if let Some(n) = f.get(cx, "peers") {
        let mut seen: BTreeSet<IpAddr> = BTreeSet::new();
        each_table(cx, n, "bgp.peers", |cx, pf| match peer(cx, pf) {
            Some(p) => {
                if seen.contains(&p.address) {
                    cx.error(
                        p.span,
                        format!("peer {} is listed twice", p.address),
                        "keep one [[bgp.peers]] entry per address",
                    );
                    peers_ok = false;
                } else {
                    seen.insert(p.address);
                    peers.push(p);
                }
            }
            None => peers_ok = false,
        });
    }
    f.finish(cx);
    let listen = listen?;
    if listen.is_empty() && peers_ok && peers.iter().all(|p| p.passive) {
        cx.error(
            listen_span.unwrap_or(span),
            "`listen` is empty and every peer is passive: no session can ever start",
            "listen on an address such as \"0.0.0.0:179\", or set `passive = false` on a peer so that tollgate connects to it",
        );
        return None;
    }
    if !peers_ok {
        return None;
    }
    Some(Bgp {
        local_as: local_as?,
        router_id: router_id?,
        listen,
        hold_time: hold_time?,
        peers,
        span,
    })
}

/// RFC 4271 suggests 90 s, as the speaker does.
fn bgp_speaker_default_hold() -> u16 {
    90
}

fn asn(cx: &mut Cx, n: Node<'_>) -> Option<u32> {
    let v = cx.integer(n, 0, i64::from(u32::MAX))?;
    if v == 0 {
        cx.error(
            n.span,
            format!("`{}` = 0 is reserved (RFC 7607)", n.key),
            "use a real AS number, e.g. a private one from 64512–65534 or 4200000000–4294967294",
        );
        return None;
    }
    u32::try_from(v).ok()
}

fn router_id(cx: &mut Cx, n: Node<'_>) -> Option<Ipv4Addr> {
    let s = cx.string(n)?;
    match s.parse::<Ipv4Addr>() {
        Ok(a) if !a.is_unspecified() => Some(a),
        Ok(_) => {
            cx.error(
                n.span,
                "router_id 0.0.0.0 is not allowed",
                "use one of this box's IPv4 addresses",
            );
            None
        }
        Err(_) => {
            cx.error(
                n.span,
                format!("`{s}` is not an IPv4 address"),
                "the BGP identifier is written as an IPv4 address, e.g. \"192.0.2.1\", even on an IPv6-only box",
            );
            None
        }
    }
}

fn hold(cx: &mut Cx, n: Node<'_>) -> Option<u16> {
    let v = cx.integer(n, 0, i64::from(u16::MAX))?;
    if matches!(v, 1 | 2) {
        cx.error(
            n.span,
            format!("hold_time = {v} is not allowed by RFC 4271"),
            HOLD_HINT,
        );
        return None;
    }
    u16::try_from(v).ok()
}

fn peer(cx: &mut Cx, mut f: Fields<'_>) -> Option<BgpPeer> {
    let span = f.span;
    let address = f.require(cx, "address", "\"192.0.2.2\"").and_then(|n| {
        let s = cx.string(n)?;
        match s.parse::<IpAddr>() {
            Ok(a) if !a.is_unspecified() => Some(a),
            _ => {
                cx.error(
                    n.span,
                    format!("`{s}` is not a peer's address"),
                    "give the peer's IPv4 or IPv6 address, e.g. \"192.0.2.2\"",
                );
                None
            }
        }
    });
    let remote_as = f.require(cx, "remote_as", "65001").and_then(|n| asn(cx, n));
    let port = match f.get(cx, "port") {
        None => Some(179),
        Some(n) => cx.integer(n, 1, 65535).and_then(|v| u16::try_from(v).ok()),
    };
    let passive = match f.get(cx, "passive") {
        None => Some(true),
        Some(n) => cx.boolean(n),
    };
    let announce = match f.get(cx, "announce") {
        None => Some(false),
        Some(n) => cx.boolean(n),
    };
    let flowspec = match f.get(cx, "flowspec") {
        None => Some(false),
        Some(n) => cx.boolean(n),
    };
    let hold_time = match f.get(cx, "hold_time") {
        None => Some(None),
        Some(n) => hold(cx, n).map(Some),
    };
    let name = match f.get(cx, "name") {
        None => Some(None),
        Some(n) => cx.string(n).map(Some),
    };
    let families = match f.get(cx, "families") {
        None => Some(Vec::new()),
        Some(n) => {
            let mut ok = true;
            let mut v = Vec::new();
            for (s, at) in cx.strings(n) {
                match s.as_str() {
                    "ipv4" => v.push(BgpFamily::Ipv4),
                    "ipv6" => v.push(BgpFamily::Ipv6),
                    _ => {
                        ok = false;
                        cx.error(
                            at,
                            format!("unknown address family `{s}`"),
                            "use \"ipv4\" and/or \"ipv6\" (unicast)",
                        );
                    }
                }
            }
            if ok && v.is_empty() {
                cx.error(
                    n.span,
                    "`families` is empty: the session would carry nothing",
                    "leave it out for both, or list \"ipv4\" and/or \"ipv6\"",
                );
                ok = false;
            }
            v.sort();
            v.dedup();
            ok.then_some(v)
        }
    };
    let next_hop_v4 = f.get(cx, "next_hop_v4").map(|n| {
        address_of::<Ipv4Addr>(cx, n, "IPv4", "the next hop of IPv4 routes, e.g. \"192.0.2.1\"; leave it out to use tollgate's address on the session")
    });
    let next_hop_v6 = f.get(cx, "next_hop_v6").map(|n| {
        address_of::<Ipv6Addr>(cx, n, "IPv6", "the next hop of IPv6 routes, e.g. \"2001:db8::1\"; an IPv4 session needs one to carry IPv6 routes")
    });
    f.finish(cx);
    Some(BgpPeer {
        address: address?,
        remote_as: remote_as?,
        port: port?,
        passive: passive?,
        families: families?,
        announce: announce?,
        flowspec: flowspec?,
        hold_time: hold_time?,
        name: name?,
        next_hop_v4: next_hop_v4.map_or(Some(None), |v| v.map(Some))?,
        next_hop_v6: next_hop_v6.map_or(Some(None), |v| v.map(Some))?,
        span,
    })
}

/// An address of one family, or an error at its place.
fn address_of<A: std::str::FromStr>(
    cx: &mut Cx,
    n: Node<'_>,
    family: &str,
    hint: &str,
) -> Option<A> {
    let s = cx.string(n)?;
    match s.parse::<A>() {
        Ok(a) => Some(a),
        Err(_) => {
            cx.error(n.span, format!("`{s}` is not an {family} address"), hint);
            None
        }
    }
}

/// Relates `[bgp]` to the guard: an `rtbh` rung with nobody to announce to
/// would be logged and do nothing, which the operator should know before
/// an attack.
pub(crate) fn check(p: &Policy, diags: &mut Vec<Diagnostic>) {
    let Some(g) = &p.guard else {
        return;
    };
    let rtbh_rungs = g
        .ladder
        .iter()
        .chain(g.groups.iter().flat_map(|gr| gr.ladder.iter().flatten()))
        .filter(|r| r.rung.rung() == ::guard::Rung::Rtbh);
    let announcing = |flowspec: bool| {
        p.bgp.as_ref().is_some_and(|b| {
            b.peers
                .iter()
                .any(|peer| peer.announce && (peer.flowspec || !flowspec))
        })
    };
    let flowspec_rungs = g
        .ladder
        .iter()
        .chain(g.groups.iter().flat_map(|gr| gr.ladder.iter().flatten()))
        .filter(|r| r.rung.rung() == ::guard::Rung::Flowspec);
    if !announcing(true) {
        for r in flowspec_rungs {
            diags.push(
                Diagnostic::warning(
                    Some(r.span),
                    "a `flowspec` rung but no BGP peer with `announce = true` and `flowspec = true`: the rung will only be logged",
                )
                .with_hint("set `flowspec = true` on a [[bgp.peers]] entry that announces (docs/routes.md)"),
            );
        }
    }
    if announcing(false) {
        return;
    }
    for r in rtbh_rungs {
        diags.push(
            Diagnostic::warning(
                Some(r.span),
                "an `rtbh` rung but no BGP peer to announce to: the rung will only be logged",
            )
            .with_hint(
                "add [bgp] with a [[bgp.peers]] entry that has `announce = true` (docs/routes.md)",
            ),
        );
    }
}
