//! What the kernel sends back: acks, dump ends, and dumped objects.
//!
//! Parsing is strict about the lengths of everything it reads (a struct or
//! attribute shorter than its kernel definition is an error naming the
//! field) and lenient about what it does not know (unknown attributes and
//! message types, and longer-than-known structs, are skipped), because the
//! kernel adds attributes and struct members over time.

use crate::attr::{align4, attrs, get_str, get_u16, get_u32, get_u64, split_msg, Fields, RawMsg};
use crate::bpf::SockFilter;
use crate::consts::*;
use std::fmt;

/// A reply could not be decoded. Names the field that was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// A fixed-size struct was shorter than its definition.
    Truncated {
        /// The struct (or member) being read.
        field: &'static str,
        /// Bytes needed.
        need: usize,
        /// Bytes present.
        have: usize,
    },
    /// A field had a length its type does not allow.
    Length {
        /// The field.
        field: &'static str,
        /// The length found.
        len: usize,
    },
    /// An attribute header's length was below 4 or ran past its container.
    Attribute {
        /// The container being walked.
        field: &'static str,
        /// The attribute's type.
        ty: u16,
        /// Its claimed length.
        len: usize,
        /// Bytes left in the container.
        have: usize,
    },
    /// A field the kernel always sends was missing.
    Missing {
        /// The field.
        field: &'static str,
    },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Truncated { field, need, have } => {
                write!(
                    f,
                    "netlink reply: {field} truncated: {have} bytes, need {need}"
                )
            }
            DecodeError::Length { field, len } => {
                write!(f, "netlink reply: {field} has a bad length {len}")
            }
            DecodeError::Attribute {
                field,
                ty,
                len,
                have,
            } => write!(
                f,
                "netlink reply: attribute {ty} in {field} claims {len} bytes, {have} left"
            ),
            DecodeError::Missing { field } => write!(f, "netlink reply: {field} missing"),
        }
    }
}

impl std::error::Error for DecodeError {}

/// A netlink message header (`struct nlmsghdr`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// Length of the whole message, header included.
    pub len: u32,
    /// Message type (`NLMSG_*` or `RTM_*`).
    pub ty: u16,
    /// `NLM_F_*` flags.
    pub flags: u16,
    /// Sequence number: the request's, for acks and dump replies.
    pub seq: u32,
    /// Port id of the sender (0 for the kernel) or, in replies, the receiver.
    pub pid: u32,
}

/// An acknowledgement: the kernel's answer to one request sent with
/// `NLM_F_ACK` (`NLMSG_ERROR`), successful when `errno` is 0.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ack {
    /// The request's sequence number.
    pub seq: u32,
    /// 0 on success, else a positive errno (`EEXIST`, `ENOENT`, `EINVAL`…).
    pub errno: i32,
    /// The extended-ack message (`NLMSGERR_ATTR_MSG`). Errors usually have
    /// one; successes can too, as a warning (HTB warns about quanta).
    pub message: Option<String>,
    /// Offset in the request of the attribute the kernel objected to
    /// (`NLMSGERR_ATTR_OFFS`).
    pub offset: Option<u32>,
}

impl Ack {
    /// Whether the request succeeded.
    pub fn is_ok(&self) -> bool {
        self.errno == 0
    }
}

/// The end of a dump (`NLMSG_DONE`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Done {
    /// The dump request's sequence number.
    pub seq: u32,
    /// `NLM_F_DUMP_INTR`: the table changed during the dump, whose contents
    /// may be inconsistent; dump again.
    pub interrupted: bool,
    /// 0, or a positive errno if the dump failed part way.
    pub errno: i32,
    /// The extended-ack message, if any.
    pub message: Option<String>,
}

/// A network device (`RTM_NEWLINK`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Link {
    /// Interface index.
    pub ifindex: u32,
    /// Name (`IFLA_IFNAME`).
    pub name: String,
    /// Link type (`IFLA_LINKINFO/IFLA_INFO_KIND`: "ifb", "veth"…), absent
    /// for devices without one (loopback, most physical NICs).
    pub kind: Option<String>,
    /// Administratively up (`IFF_UP`).
    pub up: bool,
    /// All `IFF_*` flags.
    pub flags: u32,
    /// The device it is enslaved to (`IFLA_MASTER`): a bridge port's
    /// bridge, a bond member's bond.
    pub master: Option<u32>,
    /// Packets received and sent (`IFLA_STATS64`), if the kernel said.
    pub packets: Option<LinkPackets>,
    /// The XDP programs attached (`IFLA_XDP`): one per mode that has
    /// one, none when none has.
    pub xdp_programs: Vec<(XdpMode, u32)>,
}

/// Where an XDP program runs on a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XdpMode {
    /// In the driver (native).
    Driver,
    /// In the kernel's generic path (after the skb is built).
    Generic,
    /// Offloaded to the NIC.
    Hardware,
}

/// A device's packet counters (the first two fields of `struct
/// rtnl_link_stats64`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkPackets {
    /// Received.
    pub rx: u64,
    /// Sent.
    pub tx: u64,
}

/// Counters of a qdisc or class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Bytes sent.
    pub bytes: u64,
    /// Packets sent.
    pub packets: u64,
    /// Packets dropped.
    pub drops: u32,
    /// Times the object was over its limit (for HTB: delayed packets).
    pub overlimits: u32,
    /// Packets requeued.
    pub requeues: u32,
    /// Bytes queued now.
    pub backlog_bytes: u32,
    /// Packets queued now.
    pub qlen: u32,
}

/// An HTB qdisc's options (`struct tc_htb_glob`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HtbQdisc {
    /// HTB's version as `major << 16 | minor`: requests send 3, the
    /// kernel reports its own (3.17 is `0x30011`).
    pub version: u32,
    /// Rate-to-quantum divisor ("r2q").
    pub rate2quantum: u32,
    /// The minor of the default class (`defcls`).
    pub default_minor: u32,
    /// Packets sent unshaped because no class matched (`direct_pkts`).
    pub direct_packets: u32,
    /// Length of the direct queue (`TCA_HTB_DIRECT_QLEN`).
    pub direct_qlen: Option<u32>,
}

/// A qdisc (`RTM_NEWQDISC`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Qdisc {
    /// The device.
    pub ifindex: u32,
    /// Its handle (`major:0`).
    pub handle: u32,
    /// Where it hangs: `TC_H_ROOT`, `TC_H_CLSACT` (`ffff:fff1`) or a class.
    pub parent: u32,
    /// "htb", "clsact", "noqueue", "pfifo_fast"…
    pub kind: String,
    /// HTB's options, for kind "htb".
    pub htb: Option<HtbQdisc>,
    /// Counters.
    pub stats: Option<Stats>,
}

/// An HTB class's parameters as the kernel holds them (`tc_htb_opt` plus
/// the 64-bit rates).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HtbParams {
    /// Rate, bits/s (the kernel holds bytes/s: always a multiple of 8).
    pub rate_bps: u64,
    /// Ceil, bits/s.
    pub ceil_bps: u64,
    /// Burst at `rate` as time, in 64 ns ticks (see [`crate::htb_burst_bytes`]).
    pub buffer_ticks: u32,
    /// Burst at `ceil` as time, in 64 ns ticks.
    pub cbuffer_ticks: u32,
    /// Bytes per round.
    pub quantum: u32,
    /// Priority.
    pub prio: u32,
    /// Level in the tree: 0 for leaves. Inner classes report the maximum
    /// depth (7) minus their distance from the root, not their height.
    pub level: u32,
}

/// HTB's per-class statistics (`struct tc_htb_xstats`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HtbXstats {
    /// Packets sent at the class's own rate.
    pub lends: u32,
    /// Packets sent with borrowed tokens.
    pub borrows: u32,
    /// Oversized packets (unused by modern kernels).
    pub giants: u32,
    /// Tokens at `rate` left, in ticks (negative: in debt).
    pub tokens: i32,
    /// Tokens at `ceil` left, in ticks.
    pub ctokens: i32,
}

/// A class (`RTM_NEWTCLASS`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Class {
    /// The device.
    pub ifindex: u32,
    /// The class handle.
    pub handle: u32,
    /// Its parent class. HTB reports `TC_H_ROOT` for a class at the top of
    /// its qdisc, not the qdisc's handle that was given when creating it.
    pub parent: u32,
    /// `tcm_info`: for an HTB leaf class, the handle of its leaf qdisc
    /// (`major:0` for a nested qdisc); 0 for HTB's default pfifo leaves
    /// (they have handle 0) and for inner classes.
    pub leaf_qdisc: u32,
    /// "htb", …
    pub kind: String,
    /// HTB's parameters, for kind "htb".
    pub htb: Option<HtbParams>,
    /// Counters.
    pub stats: Option<Stats>,
    /// HTB's own statistics, for kind "htb".
    pub htb_xstats: Option<HtbXstats>,
}

/// A mirred action's parameters (`struct tc_mirred`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Mirred {
    /// The action's index in the kernel's action table.
    pub index: u32,
    /// The verdict (`TC_ACT_STOLEN` for a redirect).
    pub action: i32,
    /// `TCA_EGRESS_REDIR`, `TCA_EGRESS_MIRROR`, `TCA_INGRESS_REDIR`…
    pub eaction: i32,
    /// The target device.
    pub ifindex: u32,
}

/// One action attached to a filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Action {
    /// Its position (1 = first).
    pub order: u16,
    /// "mirred", …
    pub kind: String,
    /// The parameters, for kind "mirred".
    pub mirred: Option<Mirred>,
}

/// A `cls_bpf` filter's options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BpfOptions {
    /// The classic BPF program (empty for an eBPF program).
    pub ops: Vec<SockFilter>,
    /// `TCA_BPF_CLASSID`.
    pub classid: Option<u32>,
    /// The program name (eBPF).
    pub name: Option<String>,
    /// The eBPF program's id (`TCA_BPF_ID`).
    pub id: Option<u32>,
    /// Direct-action mode (`TCA_BPF_FLAG_ACT_DIRECT`).
    pub direct_action: bool,
    /// Its actions, in order.
    pub actions: Vec<Action>,
}

impl BpfOptions {
    /// The device of the first mirred egress redirect, if any.
    pub fn redirect_ifindex(&self) -> Option<u32> {
        self.actions
            .iter()
            .filter_map(|a| a.mirred)
            .find(|m| m.eaction == TCA_EGRESS_REDIR)
            .map(|m| m.ifindex)
    }
}

/// A filter (`RTM_NEWTFILTER`).
///
/// A dump lists, for each priority, first the classifier instance itself
/// (`handle` 0, no options: `bpf` is `None`), then each of its filters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Filter {
    /// The device.
    pub ifindex: u32,
    /// The hook or qdisc (`CLSACT_EGRESS`, …).
    pub parent: u32,
    /// Priority ("pref").
    pub prio: u16,
    /// Ethernet protocol, host order.
    pub protocol: u16,
    /// "bpf", …
    pub kind: String,
    /// The filter's handle (0 for the classifier-instance entry).
    pub handle: u32,
    /// The chain (`TCA_CHAIN`).
    pub chain: Option<u32>,
    /// The options, for kind "bpf" entries that have them.
    pub bpf: Option<BpfOptions>,
}

/// A filter chain of one hook (`RTM_NEWCHAIN`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Chain {
    /// The device.
    pub ifindex: u32,
    /// The hook (`CLSACT_INGRESS`, …).
    pub parent: u32,
    /// The chain index (`TCA_CHAIN`).
    pub index: u32,
    /// The classifier kind of the chain's template, if it has one.
    pub template: Option<String>,
}

/// One decoded message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// An ack or error (`NLMSG_ERROR`).
    Ack(Ack),
    /// The end of a dump (`NLMSG_DONE`).
    Done(Done),
    /// A link.
    Link(Link),
    /// A qdisc.
    Qdisc(Qdisc),
    /// A class.
    Class(Class),
    /// A filter.
    Filter(Filter),
    /// A filter chain.
    Chain(Chain),
    /// Any other type (`NLMSG_NOOP`, `NLMSG_OVERRUN`, deletions, other
    /// families…), not decoded.
    Other {
        /// The message type.
        ty: u16,
        /// Its sequence number.
        seq: u32,
    },
}

/// Decodes every message in `buf` (what one `recv` returned).
///
/// Yields one item per message. A message whose contents are malformed
/// yields an error and parsing goes on with the next one; a header whose
/// length is impossible yields an error and ends the iteration. Never
/// panics.
pub fn parse_messages(buf: &[u8]) -> impl Iterator<Item = Result<Message, DecodeError>> + '_ {
    parse_messages_with_headers(buf).map(|r| r.map(|(_, m)| m))
}

/// Like [`parse_messages`], with each message's header (for its flags and
/// sequence number).
pub fn parse_messages_with_headers(
    buf: &[u8],
) -> impl Iterator<Item = Result<(Header, Message), DecodeError>> + '_ {
    Messages { buf }
}

struct Messages<'a> {
    buf: &'a [u8],
}

impl Iterator for Messages<'_> {
    type Item = Result<(Header, Message), DecodeError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.buf.is_empty() {
            return None;
        }
        match split_msg(self.buf) {
            Err(e) => {
                self.buf = &[];
                Some(Err(e))
            }
            Ok((raw, rest)) => {
                self.buf = rest;
                let header = Header {
                    len: raw.len,
                    ty: raw.ty,
                    flags: raw.flags,
                    seq: raw.seq,
                    pid: raw.pid,
                };
                Some(decode(&raw).map(|m| (header, m)))
            }
        }
    }
}

fn decode(raw: &RawMsg<'_>) -> Result<Message, DecodeError> {
    Ok(match raw.ty {
        NLMSG_ERROR => Message::Ack(decode_ack(raw)?),
        NLMSG_DONE => Message::Done(decode_done(raw)?),
        RTM_NEWLINK => Message::Link(decode_link(raw.payload)?),
        RTM_NEWQDISC => Message::Qdisc(decode_qdisc(raw.payload)?),
        RTM_NEWTCLASS => Message::Class(decode_class(raw.payload)?),
        RTM_NEWTFILTER => Message::Filter(decode_filter(raw.payload)?),
        RTM_NEWCHAIN => Message::Chain(decode_chain(raw.payload)?),
        ty => Message::Other { ty, seq: raw.seq },
    })
}

/// Extended-ack attributes: (message, offset).
fn ack_tlvs(buf: &[u8]) -> Result<(Option<String>, Option<u32>), DecodeError> {
    let (mut msg, mut offs) = (None, None);
    for a in attrs(buf, "extended ack") {
        let (ty, p) = a?;
        match ty {
            NLMSGERR_ATTR_MSG => msg = Some(get_str(p)),
            NLMSGERR_ATTR_OFFS => offs = Some(get_u32(p, "NLMSGERR_ATTR_OFFS")?),
            _ => {}
        }
    }
    Ok((msg, offs))
}

fn negate(error: i32) -> i32 {
    // The kernel sends -errno; a positive value would be a kernel bug, but
    // it must not look like success.
    error.checked_neg().unwrap_or(i32::MAX)
}

fn decode_ack(raw: &RawMsg<'_>) -> Result<Ack, DecodeError> {
    // struct nlmsgerr { int error; struct nlmsghdr msg; }, then the echoed
    // request's payload unless NLM_F_CAPPED, then TLVs if NLM_F_ACK_TLVS.
    let f = Fields::new(raw.payload, 4 + NLMSG_HDRLEN, "nlmsgerr")?;
    let errno = negate(f.i32(0));
    let (mut message, mut offset) = (None, None);
    if raw.flags & NLM_F_ACK_TLVS != 0 {
        let tlv_at = if raw.flags & NLM_F_CAPPED != 0 {
            4 + NLMSG_HDRLEN
        } else {
            let echoed = (f.u32(4) as usize).max(NLMSG_HDRLEN);
            4 + align4(echoed)
        };
        let tlvs = raw.payload.get(tlv_at..).ok_or(DecodeError::Truncated {
            field: "nlmsgerr echoed request",
            need: tlv_at,
            have: raw.payload.len(),
        })?;
        (message, offset) = ack_tlvs(tlvs)?;
    }
    Ok(Ack {
        seq: raw.seq,
        errno,
        message,
        offset,
    })
}

fn decode_done(raw: &RawMsg<'_>) -> Result<Done, DecodeError> {
    // Payload: int error, then TLVs if NLM_F_ACK_TLVS. Very old kernels
    // sent no payload at all.
    let errno = match raw.payload.get(..4) {
        Some(_) => negate(Fields::new(raw.payload, 4, "NLMSG_DONE error")?.i32(0)),
        None => 0,
    };
    let mut message = None;
    if raw.flags & NLM_F_ACK_TLVS != 0 {
        if let Some(tlvs) = raw.payload.get(4..) {
            message = ack_tlvs(tlvs)?.0;
        }
    }
    Ok(Done {
        seq: raw.seq,
        interrupted: raw.flags & NLM_F_DUMP_INTR != 0,
        errno,
        message,
    })
}

fn decode_link(p: &[u8]) -> Result<Link, DecodeError> {
    // struct ifinfomsg { u8 family, pad; u16 type; int index; u32 flags, change; }
    let f = Fields::new(p, IFINFOMSG_LEN, "ifinfomsg")?;
    let (mut name, mut kind, mut master, mut packets) = (None, None, None, None);
    let mut xdp_programs = Vec::new();
    for a in attrs(&p[IFINFOMSG_LEN..], "link attributes") {
        let (ty, v) = a?;
        match ty {
            IFLA_IFNAME => name = Some(get_str(v)),
            IFLA_MASTER => master = Some(get_u32(v, "IFLA_MASTER")?),
            IFLA_STATS64 => {
                // struct rtnl_link_stats64 { u64 rx_packets, tx_packets, … }
                let s = Fields::new(v, 16, "IFLA_STATS64")?;
                packets = Some(LinkPackets {
                    rx: s.u64(0),
                    tx: s.u64(8),
                });
            }
            IFLA_XDP => {
                for a in attrs(v, "IFLA_XDP") {
                    let (ty, v) = a?;
                    // The kernel names each mode's program; IFLA_XDP_PROG_ID
                    // repeats the one of a single mode.
                    let mode = match ty {
                        IFLA_XDP_DRV_PROG_ID => XdpMode::Driver,
                        IFLA_XDP_SKB_PROG_ID => XdpMode::Generic,
                        IFLA_XDP_HW_PROG_ID => XdpMode::Hardware,
                        _ => continue,
                    };
                    let id = get_u32(v, "IFLA_XDP_PROG_ID")?;
                    if id != 0 {
                        xdp_programs.push((mode, id));
                    }
                }
            }
            IFLA_LINKINFO => {
                for a in attrs(v, "IFLA_LINKINFO") {
                    let (ty, v) = a?;
                    if ty == IFLA_INFO_KIND {
                        kind = Some(get_str(v));
                    }
                }
            }
            _ => {}
        }
    }
    let flags = f.u32(8);
    Ok(Link {
        ifindex: f.u32(4),
        name: name.ok_or(DecodeError::Missing {
            field: "IFLA_IFNAME",
        })?,
        kind,
        up: flags & IFF_UP != 0,
        flags,
        master,
        packets,
        xdp_programs,
    })
}

/// The common part of qdisc, class and filter messages: `struct tcmsg
/// { u8 family, pad1; u16 pad2; int ifindex; u32 handle, parent, info; }`
/// and the top-level attributes tollgate reads.
struct Tc<'a> {
    ifindex: u32,
    handle: u32,
    parent: u32,
    info: u32,
    kind: Option<&'a [u8]>,
    options: Option<&'a [u8]>,
    stats2: Option<&'a [u8]>,
    stats: Option<&'a [u8]>,
    xstats: Option<&'a [u8]>,
    chain: Option<u32>,
}

fn split_tc(p: &[u8]) -> Result<Tc<'_>, DecodeError> {
    let f = Fields::new(p, TCMSG_LEN, "tcmsg")?;
    let mut tc = Tc {
        ifindex: f.u32(4),
        handle: f.u32(8),
        parent: f.u32(12),
        info: f.u32(16),
        kind: None,
        options: None,
        stats2: None,
        stats: None,
        xstats: None,
        chain: None,
    };
    for a in attrs(&p[TCMSG_LEN..], "tc attributes") {
        let (ty, v) = a?;
        match ty {
            TCA_KIND => tc.kind = Some(v),
            TCA_OPTIONS => tc.options = Some(v),
            TCA_STATS2 => tc.stats2 = Some(v),
            TCA_STATS => tc.stats = Some(v),
            TCA_XSTATS => tc.xstats = Some(v),
            TCA_CHAIN => tc.chain = Some(get_u32(v, "TCA_CHAIN")?),
            _ => {}
        }
    }
    Ok(tc)
}

impl Tc<'_> {
    fn kind(&self) -> Result<String, DecodeError> {
        self.kind
            .map(get_str)
            .ok_or(DecodeError::Missing { field: "TCA_KIND" })
    }

    /// Counters: from `TCA_STATS2` (64-bit) when present, else from the
    /// legacy `struct tc_stats`. Also returns `TCA_STATS_APP` if present.
    fn stats(&self) -> Result<(Option<Stats>, Option<&[u8]>), DecodeError> {
        if let Some(s2) = self.stats2 {
            let mut st = Stats::default();
            let mut app = None;
            let mut pkt64 = None;
            for a in attrs(s2, "TCA_STATS2") {
                let (ty, v) = a?;
                match ty {
                    TCA_STATS_BASIC => {
                        // struct gnet_stats_basic { u64 bytes; u32 packets; } (16 with padding)
                        let f = Fields::new(v, 12, "TCA_STATS_BASIC")?;
                        st.bytes = f.u64(0);
                        st.packets = f.u32(8) as u64;
                    }
                    TCA_STATS_PKT64 => pkt64 = Some(get_u64(v, "TCA_STATS_PKT64")?),
                    TCA_STATS_QUEUE => {
                        // struct gnet_stats_queue { qlen, backlog, drops, requeues, overlimits }
                        let f = Fields::new(v, 20, "TCA_STATS_QUEUE")?;
                        st.qlen = f.u32(0);
                        st.backlog_bytes = f.u32(4);
                        st.drops = f.u32(8);
                        st.requeues = f.u32(12);
                        st.overlimits = f.u32(16);
                    }
                    TCA_STATS_APP => app = Some(v),
                    _ => {}
                }
            }
            if let Some(p) = pkt64 {
                st.packets = p;
            }
            return Ok((Some(st), app));
        }
        if let Some(s) = self.stats {
            // struct tc_stats { u64 bytes; u32 packets, drops, overlimits, bps, pps, qlen, backlog; }
            let f = Fields::new(s, 36, "TCA_STATS")?;
            return Ok((
                Some(Stats {
                    bytes: f.u64(0),
                    packets: f.u32(8) as u64,
                    drops: f.u32(12),
                    overlimits: f.u32(16),
                    requeues: 0,
                    qlen: f.u32(28),
                    backlog_bytes: f.u32(32),
                }),
                None,
            ));
        }
        Ok((None, None))
    }
}

fn decode_qdisc(p: &[u8]) -> Result<Qdisc, DecodeError> {
    let tc = split_tc(p)?;
    let kind = tc.kind()?;
    let mut htb = None;
    if kind == "htb" {
        if let Some(opts) = tc.options {
            let mut q = None;
            let mut direct_qlen = None;
            for a in attrs(opts, "htb qdisc options") {
                let (ty, v) = a?;
                match ty {
                    TCA_HTB_INIT => {
                        let f = Fields::new(v, TC_HTB_GLOB_LEN, "TCA_HTB_INIT")?;
                        q = Some((f.u32(0), f.u32(4), f.u32(8), f.u32(16)));
                    }
                    TCA_HTB_DIRECT_QLEN => direct_qlen = Some(get_u32(v, "TCA_HTB_DIRECT_QLEN")?),
                    _ => {}
                }
            }
            htb = q.map(
                |(version, rate2quantum, default_minor, direct_packets)| HtbQdisc {
                    version,
                    rate2quantum,
                    default_minor,
                    direct_packets,
                    direct_qlen,
                },
            );
        }
    }
    Ok(Qdisc {
        ifindex: tc.ifindex,
        handle: tc.handle,
        parent: tc.parent,
        stats: tc.stats()?.0,
        kind,
        htb,
    })
}

/// Reads a `struct tc_ratespec`'s rate (bytes/s, the last member).
fn ratespec_rate(f: &Fields<'_>, at: usize) -> u64 {
    f.u32(at + 8) as u64
}

fn decode_class(p: &[u8]) -> Result<Class, DecodeError> {
    let tc = split_tc(p)?;
    let kind = tc.kind()?;
    let (stats, app) = tc.stats()?;
    let (mut htb, mut htb_xstats) = (None, None);
    if kind == "htb" {
        if let Some(opts) = tc.options {
            let (mut parms, mut rate64, mut ceil64) = (None, None, None);
            for a in attrs(opts, "htb class options") {
                let (ty, v) = a?;
                match ty {
                    TCA_HTB_PARMS => parms = Some(Fields::new(v, TC_HTB_OPT_LEN, "TCA_HTB_PARMS")?),
                    TCA_HTB_RATE64 => rate64 = Some(get_u64(v, "TCA_HTB_RATE64")?),
                    TCA_HTB_CEIL64 => ceil64 = Some(get_u64(v, "TCA_HTB_CEIL64")?),
                    _ => {}
                }
            }
            if let Some(f) = parms {
                // struct tc_htb_opt { tc_ratespec rate, ceil; u32 buffer,
                // cbuffer, quantum, level, prio; }
                let rate = rate64.unwrap_or(ratespec_rate(&f, 0));
                let ceil = ceil64.unwrap_or(ratespec_rate(&f, TC_RATESPEC_LEN));
                htb = Some(HtbParams {
                    rate_bps: rate.saturating_mul(8),
                    ceil_bps: ceil.saturating_mul(8),
                    buffer_ticks: f.u32(24),
                    cbuffer_ticks: f.u32(28),
                    quantum: f.u32(32),
                    level: f.u32(36),
                    prio: f.u32(40),
                });
            }
        }
        if let Some(x) = tc.xstats.or(app) {
            let f = Fields::new(x, TC_HTB_XSTATS_LEN, "htb xstats")?;
            htb_xstats = Some(HtbXstats {
                lends: f.u32(0),
                borrows: f.u32(4),
                giants: f.u32(8),
                tokens: f.i32(12),
                ctokens: f.i32(16),
            });
        }
    }
    Ok(Class {
        ifindex: tc.ifindex,
        handle: tc.handle,
        parent: tc.parent,
        leaf_qdisc: tc.info,
        kind,
        htb,
        stats,
        htb_xstats,
    })
}

fn decode_action(order: u16, p: &[u8]) -> Result<Action, DecodeError> {
    let (mut kind, mut options) = (None, None);
    for a in attrs(p, "action") {
        let (ty, v) = a?;
        match ty {
            TCA_ACT_KIND => kind = Some(get_str(v)),
            TCA_ACT_OPTIONS => options = Some(v),
            _ => {}
        }
    }
    let kind = kind.ok_or(DecodeError::Missing {
        field: "TCA_ACT_KIND",
    })?;
    let mut mirred = None;
    if kind == "mirred" {
        for a in attrs(options.unwrap_or(&[]), "mirred options") {
            let (ty, v) = a?;
            if ty == TCA_MIRRED_PARMS {
                // struct tc_mirred { tc_gen { index, capab, action, refcnt, bindcnt }; eaction; ifindex; }
                let f = Fields::new(v, TC_MIRRED_LEN, "TCA_MIRRED_PARMS")?;
                mirred = Some(Mirred {
                    index: f.u32(0),
                    action: f.i32(8),
                    eaction: f.i32(20),
                    ifindex: f.u32(24),
                });
            }
        }
    }
    Ok(Action {
        order,
        kind,
        mirred,
    })
}

fn decode_bpf(opts: &[u8]) -> Result<BpfOptions, DecodeError> {
    let mut b = BpfOptions {
        ops: Vec::new(),
        classid: None,
        name: None,
        id: None,
        direct_action: false,
        actions: Vec::new(),
    };
    let mut ops_len = None;
    for a in attrs(opts, "bpf options") {
        let (ty, v) = a?;
        match ty {
            TCA_BPF_OPS_LEN => ops_len = Some(get_u16(v, "TCA_BPF_OPS_LEN")?),
            TCA_BPF_OPS => {
                if v.len() % SOCK_FILTER_LEN != 0 {
                    return Err(DecodeError::Length {
                        field: "TCA_BPF_OPS",
                        len: v.len(),
                    });
                }
                b.ops = v
                    .chunks_exact(SOCK_FILTER_LEN)
                    .filter_map(SockFilter::read)
                    .collect();
            }
            TCA_BPF_CLASSID => b.classid = Some(get_u32(v, "TCA_BPF_CLASSID")?),
            TCA_BPF_NAME => b.name = Some(get_str(v)),
            TCA_BPF_ID => b.id = Some(get_u32(v, "TCA_BPF_ID")?),
            TCA_BPF_FLAGS => {
                b.direct_action = get_u32(v, "TCA_BPF_FLAGS")? & TCA_BPF_FLAG_ACT_DIRECT != 0
            }
            TCA_BPF_ACT => {
                for a in attrs(v, "TCA_BPF_ACT") {
                    let (order, v) = a?;
                    b.actions.push(decode_action(order, v)?);
                }
            }
            _ => {}
        }
    }
    if let Some(n) = ops_len {
        if n as usize != b.ops.len() {
            return Err(DecodeError::Length {
                field: "TCA_BPF_OPS_LEN",
                len: n as usize,
            });
        }
    }
    Ok(b)
}

fn decode_filter(p: &[u8]) -> Result<Filter, DecodeError> {
    let tc = split_tc(p)?;
    let kind = tc.kind()?;
    let bpf = match (kind.as_str(), tc.options) {
        ("bpf", Some(opts)) => Some(decode_bpf(opts)?),
        _ => None,
    };
    Ok(Filter {
        ifindex: tc.ifindex,
        parent: tc.parent,
        prio: (tc.info >> 16) as u16,
        protocol: u16::from_be(tc.info as u16),
        kind,
        handle: tc.handle,
        chain: tc.chain,
        bpf,
    })
}

fn decode_chain(p: &[u8]) -> Result<Chain, DecodeError> {
    let tc = split_tc(p)?;
    Ok(Chain {
        ifindex: tc.ifindex,
        parent: tc.parent,
        index: tc
            .chain
            .ok_or(DecodeError::Missing { field: "TCA_CHAIN" })?,
        template: tc.kind.map(get_str),
    })
}
