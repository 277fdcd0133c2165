//! What tollgate asks of the kernel, and how each request is written.

use crate::attr::{
    begin_msg, begin_nest, end_msg, end_nest, put, put_str, put_u16, put_u32, put_u64,
};
use crate::bpf::SockFilter;
use crate::consts::*;
use crate::handle::Handle;
use crate::htb::{default_burst, htb_buffer_ticks};
use std::fmt;

/// One rtnetlink request.
///
/// Every change (everything except the `Dump*` variants) is sent with
/// `NLM_F_REQUEST | NLM_F_ACK`, so the kernel answers each one with exactly
/// one [`crate::Ack`] carrying the request's sequence number, success or
/// not. Dumps are answered by a multipart reply ending in
/// [`crate::Message::Done`] (or an error ack) and carry no `NLM_F_ACK`.
///
/// Interface indexes are `u32` here although the kernel's are `int`: they
/// are always positive, and `tc_mirred.ifindex` is a `u32`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Request {
    /// Create an IFB device (`ip link add NAME type ifb`): `RTM_NEWLINK`
    /// with `NLM_F_CREATE | NLM_F_EXCL`, `IFLA_IFNAME` and
    /// `IFLA_LINKINFO { IFLA_INFO_KIND "ifb" }`. It is created down.
    LinkAddIfb {
        /// The device name (at most 15 bytes; the kernel checks).
        name: String,
    },
    /// Bring a device up (`ip link set … up`): `RTM_NEWLINK` with
    /// `ifi_flags = ifi_change = IFF_UP`.
    LinkSetUp {
        /// The device.
        ifindex: u32,
    },
    /// Attach or detach a device's XDP program (`ip link set … xdp`):
    /// `RTM_NEWLINK` with `IFLA_XDP { IFLA_XDP_FD, IFLA_XDP_FLAGS,
    /// IFLA_XDP_EXPECTED_FD }`. tollgate attaches with
    /// [`XDP_FLAGS_UPDATE_IF_NOEXIST`] (never over another program) and
    /// detaches with [`XDP_FLAGS_REPLACE`] and its own program expected
    /// (never someone else's).
    LinkSetXdp {
        /// The device.
        ifindex: u32,
        /// The program's file descriptor, -1 to detach.
        fd: i32,
        /// `XDP_FLAGS_*`.
        flags: u32,
        /// With [`XDP_FLAGS_REPLACE`]: the program that must be attached.
        expected_fd: Option<i32>,
    },
    /// Delete a device (`RTM_DELLINK`).
    LinkDel {
        /// The device.
        ifindex: u32,
    },
    /// Add an HTB qdisc (`tc qdisc add … handle MAJOR: htb default MINOR`,
    /// r2q 10): `RTM_NEWQDISC` with `NLM_F_CREATE | NLM_F_EXCL` and
    /// `TCA_OPTIONS { TCA_HTB_INIT tc_htb_glob }`.
    QdiscAddHtb {
        /// The device.
        ifindex: u32,
        /// [`TC_H_ROOT`] for the device's root qdisc, or a class handle to
        /// become that HTB class's leaf qdisc.
        parent: u32,
        /// The qdisc's handle major (its classes are `major:minor`).
        major: u16,
        /// The minor of the class unclassified packets go to (0: sent
        /// unshaped through HTB's direct queue).
        default_minor: u16,
    },
    /// Add the clsact qdisc (`tc qdisc add … clsact`): parent
    /// [`TC_H_CLSACT`], handle [`CLSACT_HANDLE`], `NLM_F_CREATE | NLM_F_EXCL`.
    QdiscAddClsact {
        /// The device.
        ifindex: u32,
    },
    /// Delete a qdisc (`RTM_DELQDISC`), with everything under it.
    QdiscDel {
        /// The device.
        ifindex: u32,
        /// Where it is attached: [`TC_H_ROOT`], [`TC_H_CLSACT`] or a class.
        parent: u32,
        /// Its handle (0 lets the kernel go by `parent` alone).
        handle: u32,
    },
    /// Add (`create`) or change an HTB class: `RTM_NEWTCLASS` with
    /// `TCA_OPTIONS { TCA_HTB_PARMS tc_htb_opt [, TCA_HTB_RATE64]
    /// [, TCA_HTB_CEIL64] }`.
    ///
    /// - Rates are bits/s and are sent as bytes/s (`bps / 8`, rounded
    ///   down). `tc_ratespec.rate` is a u32 of bytes/s: from 2^32 bytes/s
    ///   (~34.4 Gbit/s) on it is sent saturated (`u32::MAX`) and the real
    ///   value goes in `TCA_HTB_RATE64` / `TCA_HTB_CEIL64`, as tc does.
    /// - `linklayer` is [`TC_LINKLAYER_ETHERNET`], so no rate tables are sent.
    /// - `burst`/`cburst` become `buffer`/`cbuffer` through
    ///   [`htb_buffer_ticks`] at `rate`/`ceil`; `None` uses
    ///   [`default_burst`] of that rate.
    /// - `quantum` 0 lets the kernel derive it from the rate (rate / r2q,
    ///   clamped to 1000..=200000 bytes).
    ///
    /// `create` sends `NLM_F_CREATE | NLM_F_EXCL` (`tc class add`);
    /// otherwise neither (`tc class change`: the class must exist, and HTB
    /// ignores a different `parent`).
    HtbClass {
        /// The device.
        ifindex: u32,
        /// The class handle, `major:minor` with the major of its qdisc.
        classid: u32,
        /// The parent class, or the qdisc (`major:0`) for a top-level class.
        parent: u32,
        /// Guaranteed rate, bits/s.
        rate_bps: u64,
        /// Ceiling rate, bits/s.
        ceil_bps: u64,
        /// Burst at `rate`, bytes.
        burst: Option<u32>,
        /// Burst at `ceil`, bytes.
        cburst: Option<u32>,
        /// HTB priority (0 is served first; the kernel caps it at 7).
        prio: u32,
        /// Bytes per DRR round; 0 for the kernel's default.
        quantum: u32,
        /// Add (true) or change (false).
        create: bool,
    },
    /// Delete a class (`RTM_DELTCLASS`). It must have no children and no
    /// filters pointing at it.
    ClassDel {
        /// The device.
        ifindex: u32,
        /// The class.
        classid: u32,
    },
    /// Add or replace a `cls_bpf` filter running classic BPF:
    /// `RTM_NEWTFILTER` with `tcm_info = prio << 16 | htons(protocol)` and
    /// `TCA_OPTIONS { TCA_BPF_OPS_LEN, TCA_BPF_OPS [, TCA_BPF_CLASSID]
    /// [, TCA_BPF_ACT { 1: { "mirred", { tc_mirred } } }] }`.
    ///
    /// The program returns 0 for "no match", -1 for "match, use
    /// `classid`", or a class handle to use. On a match the action (a
    /// redirect to the egress of device `redirect_egress_to`, verdict
    /// `TC_ACT_STOLEN`) runs.
    ///
    /// `replace` sends `NLM_F_CREATE | NLM_F_REPLACE`, else
    /// `NLM_F_CREATE | NLM_F_EXCL`. Replacing needs a non-zero `handle`:
    /// with 0 the kernel picks a fresh handle and adds a second filter.
    BpfFilter {
        /// The device.
        ifindex: u32,
        /// [`CLSACT_EGRESS`], [`CLSACT_INGRESS`], or a qdisc handle such as
        /// `1:` (`0x0001_0000`) to classify for that qdisc.
        parent: u32,
        /// Filter priority ("pref").
        prio: u16,
        /// Ethernet protocol, host order ([`ETH_P_ALL`] for every packet).
        protocol: u16,
        /// The filter's handle within its priority.
        handle: u32,
        /// The classic BPF program.
        ops: Vec<SockFilter>,
        /// The class a `-1` verdict selects.
        classid: Option<u32>,
        /// Redirect matching packets to this device's egress (an IFB).
        redirect_egress_to: Option<u32>,
        /// Replace an existing filter with the same prio and handle.
        replace: bool,
    },
    /// Add or replace a `cls_bpf` filter running an eBPF program already
    /// loaded (`TCA_BPF_FD`, `TCA_BPF_NAME`), in classic (not
    /// direct-action) mode so that the filter's mirred action runs when
    /// the program returns -1. Otherwise as [`Request::BpfFilter`].
    EbpfFilter {
        /// The device.
        ifindex: u32,
        /// The hook, as in [`Request::BpfFilter`].
        parent: u32,
        /// Filter priority ("pref").
        prio: u16,
        /// Ethernet protocol, host order.
        protocol: u16,
        /// The filter's handle within its priority.
        handle: u32,
        /// A file descriptor of the loaded program, valid while sending.
        fd: u32,
        /// The name the filter shows (the program's).
        name: String,
        /// Redirect matching packets to this device's egress (an IFB).
        redirect_egress_to: Option<u32>,
        /// Replace an existing filter with the same prio and handle.
        replace: bool,
    },
    /// Delete every filter at one priority of one hook (`RTM_DELTFILTER`
    /// with handle 0).
    FilterDel {
        /// The device.
        ifindex: u32,
        /// The hook or qdisc, as in [`Request::BpfFilter`].
        parent: u32,
        /// Filter priority.
        prio: u16,
        /// Ethernet protocol, host order.
        protocol: u16,
    },
    /// Create an empty filter chain on one hook (`tc chain add dev …
    /// ingress chain N`): `RTM_NEWCHAIN` with `NLM_F_CREATE | NLM_F_EXCL`
    /// and `TCA_CHAIN`. Nothing jumps to a chain nobody names, so an empty
    /// one never touches a packet: tollgate uses one as the mark of a
    /// clsact qdisc it created (see `linux-dataplane`'s observation).
    ChainAdd {
        /// The device.
        ifindex: u32,
        /// The hook, as in [`Request::BpfFilter`].
        parent: u32,
        /// The chain index (at most [`TC_CHAIN_MAX`]).
        chain: u32,
    },
    /// Delete a filter chain and every filter in it (`RTM_DELCHAIN`).
    ChainDel {
        /// The device.
        ifindex: u32,
        /// The hook.
        parent: u32,
        /// The chain index.
        chain: u32,
    },
    /// Dump every link in the namespace (`RTM_GETLINK`, `NLM_F_DUMP`).
    DumpLinks,
    /// Dump the qdiscs of every device (`RTM_GETQDISC`, ifindex 0). Leaf
    /// qdiscs HTB creates on its own (pfifo) are not included.
    DumpQdiscs,
    /// Dump the classes of one device's qdiscs (`RTM_GETTCLASS`).
    DumpClasses {
        /// The device.
        ifindex: u32,
    },
    /// Read one class (`RTM_GETTCLASS` without a dump): its counters and
    /// queue length, at the cost of one message however many classes the
    /// device has. Answered by the class and then an ack.
    GetClass {
        /// The device.
        ifindex: u32,
        /// The class's handle, `major:minor`.
        handle: u32,
    },
    /// Dump the filters on one hook or qdisc of one device (`RTM_GETTFILTER`),
    /// in every chain.
    DumpFilters {
        /// The device.
        ifindex: u32,
        /// The hook or qdisc, as in [`Request::BpfFilter`].
        parent: u32,
    },
    /// Dump the chains of one hook of one device (`RTM_GETCHAIN`): those
    /// created explicitly and those that hold filters. A device without a
    /// qdisc there has none.
    DumpChains {
        /// The device.
        ifindex: u32,
        /// The hook.
        parent: u32,
    },
}

/// Appends a `struct tcmsg` (20 bytes).
fn tcmsg(out: &mut Vec<u8>, ifindex: u32, handle: u32, parent: u32, info: u32) {
    out.extend_from_slice(&[0, 0, 0, 0]); // family AF_UNSPEC, padding
    out.extend_from_slice(&ifindex.to_ne_bytes());
    out.extend_from_slice(&handle.to_ne_bytes());
    out.extend_from_slice(&parent.to_ne_bytes());
    out.extend_from_slice(&info.to_ne_bytes());
}

/// Appends a `struct ifinfomsg` (16 bytes).
fn ifinfomsg(out: &mut Vec<u8>, ifindex: u32, flags: u32, change: u32) {
    out.extend_from_slice(&[0, 0, 0, 0]); // family AF_UNSPEC, padding, type
    out.extend_from_slice(&ifindex.to_ne_bytes());
    out.extend_from_slice(&flags.to_ne_bytes());
    out.extend_from_slice(&change.to_ne_bytes());
}

/// `tcm_info` of a filter: priority in the upper half, the protocol in
/// network byte order in the lower.
fn filter_info(prio: u16, protocol: u16) -> u32 {
    ((prio as u32) << 16) | protocol.to_be() as u32
}

/// Appends a `struct tc_ratespec` for `bytes_per_s`.
fn ratespec(out: &mut Vec<u8>, bytes_per_s: u64) {
    out.push(0); // cell_log: only for rate tables
    out.push(TC_LINKLAYER_ETHERNET);
    out.extend_from_slice(&0u16.to_ne_bytes()); // overhead
    out.extend_from_slice(&0i16.to_ne_bytes()); // cell_align
    out.extend_from_slice(&0u16.to_ne_bytes()); // mpu
    out.extend_from_slice(&(bytes_per_s.min(u32::MAX as u64) as u32).to_ne_bytes());
}

const NEW: u16 = NLM_F_REQUEST | NLM_F_ACK;
const CREATE: u16 = NEW | NLM_F_CREATE | NLM_F_EXCL;

impl Request {
    /// Appends this request as one complete netlink message with sequence
    /// number `seq` to `out`. If `out` does not end on a 4-byte boundary it
    /// is padded first, so any number of requests can be packed into one
    /// buffer for a single `sendmsg`.
    pub fn encode(&self, seq: u32, out: &mut Vec<u8>) {
        match self {
            Request::LinkAddIfb { name } => {
                let m = begin_msg(out, RTM_NEWLINK, CREATE, seq);
                ifinfomsg(out, 0, 0, 0);
                put_str(out, IFLA_IFNAME, name);
                let info = begin_nest(out, IFLA_LINKINFO);
                put_str(out, IFLA_INFO_KIND, "ifb");
                end_nest(out, info);
                end_msg(out, m);
            }
            Request::LinkSetUp { ifindex } => {
                let m = begin_msg(out, RTM_NEWLINK, NEW, seq);
                ifinfomsg(out, *ifindex, IFF_UP, IFF_UP);
                end_msg(out, m);
            }
            Request::LinkSetXdp {
                ifindex,
                fd,
                flags,
                expected_fd,
            } => {
                let m = begin_msg(out, RTM_NEWLINK, NEW, seq);
                ifinfomsg(out, *ifindex, 0, 0);
                let xdp = begin_nest(out, IFLA_XDP);
                put_u32(out, IFLA_XDP_FD, *fd as u32);
                put_u32(out, IFLA_XDP_FLAGS, *flags);
                if let Some(e) = expected_fd {
                    put_u32(out, IFLA_XDP_EXPECTED_FD, *e as u32);
                }
                end_nest(out, xdp);
                end_msg(out, m);
            }
            Request::LinkDel { ifindex } => {
                let m = begin_msg(out, RTM_DELLINK, NEW, seq);
                ifinfomsg(out, *ifindex, 0, 0);
                end_msg(out, m);
            }
            Request::QdiscAddHtb {
                ifindex,
                parent,
                major,
                default_minor,
            } => {
                let m = begin_msg(out, RTM_NEWQDISC, CREATE, seq);
                tcmsg(out, *ifindex, (*major as u32) << 16, *parent, 0);
                put_str(out, TCA_KIND, "htb");
                let opts = begin_nest(out, TCA_OPTIONS);
                // struct tc_htb_glob: version, rate2quantum, defcls, debug, direct_pkts.
                let mut glob = [0u8; TC_HTB_GLOB_LEN];
                glob[0..4].copy_from_slice(&TC_HTB_PROTOVER.to_ne_bytes());
                glob[4..8].copy_from_slice(&10u32.to_ne_bytes());
                glob[8..12].copy_from_slice(&(*default_minor as u32).to_ne_bytes());
                put(out, TCA_HTB_INIT, &glob);
                end_nest(out, opts);
                end_msg(out, m);
            }
            Request::QdiscAddClsact { ifindex } => {
                let m = begin_msg(out, RTM_NEWQDISC, CREATE, seq);
                tcmsg(out, *ifindex, CLSACT_HANDLE, TC_H_CLSACT, 0);
                put_str(out, TCA_KIND, "clsact");
                end_msg(out, m);
            }
            Request::QdiscDel {
                ifindex,
                parent,
                handle,
            } => {
                let m = begin_msg(out, RTM_DELQDISC, NEW, seq);
                tcmsg(out, *ifindex, *handle, *parent, 0);
                end_msg(out, m);
            }
            Request::HtbClass {
                ifindex,
                classid,
                parent,
                rate_bps,
                ceil_bps,
                burst,
                cburst,
                prio,
                quantum,
                create,
            } => {
                let flags = if *create { CREATE } else { NEW };
                let m = begin_msg(out, RTM_NEWTCLASS, flags, seq);
                tcmsg(out, *ifindex, *classid, *parent, 0);
                put_str(out, TCA_KIND, "htb");
                let opts = begin_nest(out, TCA_OPTIONS);
                let (rate, ceil) = (rate_bps / 8, ceil_bps / 8);
                let burst = burst.unwrap_or_else(|| default_burst(*rate_bps));
                let cburst = cburst.unwrap_or_else(|| default_burst(*ceil_bps));
                // TCA_HTB_PARMS, struct tc_htb_opt, written in place.
                out.extend_from_slice(&((NLA_HDRLEN + TC_HTB_OPT_LEN) as u16).to_ne_bytes());
                out.extend_from_slice(&TCA_HTB_PARMS.to_ne_bytes());
                ratespec(out, rate);
                ratespec(out, ceil);
                out.extend_from_slice(&htb_buffer_ticks(*rate_bps, burst).to_ne_bytes());
                out.extend_from_slice(&htb_buffer_ticks(*ceil_bps, cburst).to_ne_bytes());
                out.extend_from_slice(&quantum.to_ne_bytes());
                out.extend_from_slice(&0u32.to_ne_bytes()); // level: output only
                out.extend_from_slice(&prio.to_ne_bytes());
                if rate > u32::MAX as u64 {
                    put_u64(out, TCA_HTB_RATE64, rate);
                }
                if ceil > u32::MAX as u64 {
                    put_u64(out, TCA_HTB_CEIL64, ceil);
                }
                end_nest(out, opts);
                end_msg(out, m);
            }
            Request::ClassDel { ifindex, classid } => {
                let m = begin_msg(out, RTM_DELTCLASS, NEW, seq);
                tcmsg(out, *ifindex, *classid, 0, 0);
                end_msg(out, m);
            }
            Request::BpfFilter {
                ifindex,
                parent,
                prio,
                protocol,
                handle,
                ops,
                classid,
                redirect_egress_to,
                replace,
            } => {
                let flags = if *replace {
                    NEW | NLM_F_CREATE | NLM_F_REPLACE
                } else {
                    CREATE
                };
                let m = begin_msg(out, RTM_NEWTFILTER, flags, seq);
                tcmsg(
                    out,
                    *ifindex,
                    *handle,
                    *parent,
                    filter_info(*prio, *protocol),
                );
                put_str(out, TCA_KIND, "bpf");
                let opts = begin_nest(out, TCA_OPTIONS);
                // The attribute length is 16 bits: at most 8191 instructions
                // fit. Longer programs (the kernel takes at most 4096 anyway)
                // are cut, and the kernel refuses the mismatch with OPS_LEN.
                let n = ops
                    .len()
                    .min((u16::MAX as usize - NLA_HDRLEN) / SOCK_FILTER_LEN);
                put_u16(
                    out,
                    TCA_BPF_OPS_LEN,
                    ops.len().min(u16::MAX as usize) as u16,
                );
                out.extend_from_slice(&((NLA_HDRLEN + n * SOCK_FILTER_LEN) as u16).to_ne_bytes());
                out.extend_from_slice(&TCA_BPF_OPS.to_ne_bytes());
                for op in &ops[..n] {
                    op.write(out);
                }
                if let Some(c) = classid {
                    put_u32(out, TCA_BPF_CLASSID, *c);
                }
                if let Some(dev) = redirect_egress_to {
                    mirred_redirect(out, *dev);
                }
                end_nest(out, opts);
                end_msg(out, m);
            }
            Request::EbpfFilter {
                ifindex,
                parent,
                prio,
                protocol,
                handle,
                fd,
                name,
                redirect_egress_to,
                replace,
            } => {
                let flags = if *replace {
                    NEW | NLM_F_CREATE | NLM_F_REPLACE
                } else {
                    CREATE
                };
                let m = begin_msg(out, RTM_NEWTFILTER, flags, seq);
                tcmsg(
                    out,
                    *ifindex,
                    *handle,
                    *parent,
                    filter_info(*prio, *protocol),
                );
                put_str(out, TCA_KIND, "bpf");
                let opts = begin_nest(out, TCA_OPTIONS);
                put_u32(out, TCA_BPF_FD, *fd);
                put_str(out, TCA_BPF_NAME, name);
                if let Some(dev) = redirect_egress_to {
                    mirred_redirect(out, *dev);
                }
                end_nest(out, opts);
                end_msg(out, m);
            }
            Request::FilterDel {
                ifindex,
                parent,
                prio,
                protocol,
            } => {
                let m = begin_msg(out, RTM_DELTFILTER, NEW, seq);
                tcmsg(out, *ifindex, 0, *parent, filter_info(*prio, *protocol));
                end_msg(out, m);
            }
            Request::ChainAdd {
                ifindex,
                parent,
                chain,
            } => {
                let m = begin_msg(out, RTM_NEWCHAIN, CREATE, seq);
                tcmsg(out, *ifindex, 0, *parent, 0);
                put_u32(out, TCA_CHAIN, *chain);
                end_msg(out, m);
            }
            Request::ChainDel {
                ifindex,
                parent,
                chain,
            } => {
                let m = begin_msg(out, RTM_DELCHAIN, NEW, seq);
                tcmsg(out, *ifindex, 0, *parent, 0);
                put_u32(out, TCA_CHAIN, *chain);
                end_msg(out, m);
            }
            Request::DumpLinks => {
                let m = begin_msg(out, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq);
                ifinfomsg(out, 0, 0, 0);
                end_msg(out, m);
            }
            Request::DumpQdiscs => {
                let m = begin_msg(out, RTM_GETQDISC, NLM_F_REQUEST | NLM_F_DUMP, seq);
                tcmsg(out, 0, 0, 0, 0);
                end_msg(out, m);
            }
            Request::DumpClasses { ifindex } => {
                let m = begin_msg(out, RTM_GETTCLASS, NLM_F_REQUEST | NLM_F_DUMP, seq);
                tcmsg(out, *ifindex, 0, 0, 0);
                end_msg(out, m);
            }
            Request::GetClass { ifindex, handle } => {
                // Without NLM_F_ECHO the kernel sends the class only to the
                // RTNLGRP_TC group, and the requester gets a bare ack.
                let m = begin_msg(
                    out,
                    RTM_GETTCLASS,
                    NLM_F_REQUEST | NLM_F_ACK | NLM_F_ECHO,
                    seq,
                );
                tcmsg(out, *ifindex, *handle, 0, 0);
                end_msg(out, m);
            }
            Request::DumpFilters { ifindex, parent } => {
                let m = begin_msg(out, RTM_GETTFILTER, NLM_F_REQUEST | NLM_F_DUMP, seq);
                tcmsg(out, *ifindex, 0, *parent, 0);
                end_msg(out, m);
            }
            Request::DumpChains { ifindex, parent } => {
                let m = begin_msg(out, RTM_GETCHAIN, NLM_F_REQUEST | NLM_F_DUMP, seq);
                tcmsg(out, *ifindex, 0, *parent, 0);
                end_msg(out, m);
            }
        }
    }

    /// Whether this is a dump (answered by a multipart reply, not an ack).
    pub fn is_dump(&self) -> bool {
        matches!(
            self,
            Request::DumpLinks
                | Request::DumpQdiscs
                | Request::DumpClasses { .. }
                | Request::DumpFilters { .. }
                | Request::DumpChains { .. }
        )
    }
}

/// A short description in `tc`'s vocabulary, for error messages.
impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Request::LinkAddIfb { name } => write!(f, "add ifb link {name}"),
            Request::LinkSetUp { ifindex } => write!(f, "set link #{ifindex} up"),
            Request::LinkSetXdp { ifindex, fd, .. } if *fd < 0 => {
                write!(f, "detach the XDP program of link #{ifindex}")
            }
            Request::LinkSetXdp { ifindex, .. } => {
                write!(f, "attach an XDP program to link #{ifindex}")
            }
            Request::LinkDel { ifindex } => write!(f, "delete link #{ifindex}"),
            Request::QdiscAddHtb {
                ifindex,
                parent,
                major,
                default_minor,
            } => write!(
                f,
                "add htb qdisc {major:x}: parent {} default {default_minor:x} on link #{ifindex}",
                Handle(*parent)
            ),
            Request::QdiscAddClsact { ifindex } => write!(f, "add clsact qdisc on link #{ifindex}"),
            Request::QdiscDel {
                ifindex,
                parent,
                handle,
            } => write!(
                f,
                "delete qdisc {} parent {} on link #{ifindex}",
                Handle(*handle),
                Handle(*parent)
            ),
            Request::HtbClass {
                ifindex,
                classid,
                parent,
                rate_bps,
                ceil_bps,
                create,
                ..
            } => write!(
                f,
                "{} htb class {} parent {} rate {rate_bps}bit ceil {ceil_bps}bit on link #{ifindex}",
                if *create { "add" } else { "change" },
                Handle(*classid),
                Handle(*parent)
            ),
            Request::ClassDel { ifindex, classid } => {
                write!(f, "delete class {} on link #{ifindex}", Handle(*classid))
            }
            Request::BpfFilter {
                ifindex,
                parent,
                prio,
                handle,
                replace,
                ..
            } => write!(
                f,
                "{} bpf filter parent {} prio {prio} handle {handle:#x} on link #{ifindex}",
                if *replace { "replace" } else { "add" },
                Handle(*parent)
            ),
            Request::EbpfFilter {
                ifindex,
                parent,
                prio,
                handle,
                replace,
                name,
                ..
            } => write!(
                f,
                "{} bpf filter {name} parent {} prio {prio} handle {handle:#x} on link #{ifindex}",
                if *replace { "replace" } else { "add" },
                Handle(*parent)
            ),
            Request::FilterDel {
                ifindex,
                parent,
                prio,
                ..
            } => write!(
                f,
                "delete filters parent {} prio {prio} on link #{ifindex}",
                Handle(*parent)
            ),
            Request::ChainAdd {
                ifindex,
                parent,
                chain,
            } => write!(
                f,
                "add chain {chain} parent {} on link #{ifindex}",
                Handle(*parent)
            ),
            Request::ChainDel {
                ifindex,
                parent,
                chain,
            } => write!(
                f,
                "delete chain {chain} parent {} on link #{ifindex}",
                Handle(*parent)
            ),
            Request::DumpLinks => f.write_str("dump links"),
            Request::DumpQdiscs => f.write_str("dump qdiscs"),
            Request::DumpClasses { ifindex } => write!(f, "dump classes of link #{ifindex}"),
            Request::GetClass { ifindex, handle } => {
                write!(f, "get class {} of link #{ifindex}", Handle(*handle))
            }
            Request::DumpFilters { ifindex, parent } => {
                write!(f, "dump filters parent {} of link #{ifindex}", Handle(*parent))
            }
            Request::DumpChains { ifindex, parent } => {
                write!(f, "dump chains parent {} of link #{ifindex}", Handle(*parent))
            }
        }
    }
}

/// `TCA_BPF_ACT { 1: { "mirred", { tc_mirred } } }`: redirect to the
/// egress of device `dev`, verdict `TC_ACT_STOLEN`.
fn mirred_redirect(out: &mut Vec<u8>, dev: u32) {
    let acts = begin_nest(out, TCA_BPF_ACT);
    let first = begin_nest(out, 1); // actions are numbered from 1
    put_str(out, TCA_ACT_KIND, "mirred");
    let aopts = begin_nest(out, TCA_ACT_OPTIONS);
    // struct tc_mirred: tc_gen { index, capab, action, refcnt, bindcnt },
    // eaction, ifindex. Index 0: the kernel allocates a fresh action.
    let mut p = [0u8; TC_MIRRED_LEN];
    p[8..12].copy_from_slice(&TC_ACT_STOLEN.to_ne_bytes());
    p[20..24].copy_from_slice(&TCA_EGRESS_REDIR.to_ne_bytes());
    p[24..28].copy_from_slice(&dev.to_ne_bytes());
    put(out, TCA_MIRRED_PARMS, &p);
    end_nest(out, aopts);
    end_nest(out, first);
    end_nest(out, acts);
}
