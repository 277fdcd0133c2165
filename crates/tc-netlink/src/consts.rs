//! The kernel's numbers, from the uapi headers (`linux/netlink.h`,
//! `linux/rtnetlink.h`, `linux/if_link.h`, `linux/pkt_sched.h`,
//! `linux/pkt_cls.h`, `linux/gen_stats.h`, `linux/tc_act/tc_mirred.h`).
//!
//! Only the values tollgate uses are here. They are part of the kernel ABI
//! and never change.

// --- netlink (linux/netlink.h) ---

/// Size of `struct nlmsghdr`.
pub const NLMSG_HDRLEN: usize = 16;
/// Size of `struct nlattr`.
pub const NLA_HDRLEN: usize = 4;
/// Attribute type flag: the payload is a list of attributes.
pub const NLA_F_NESTED: u16 = 0x8000;
/// Attribute type flag: the payload is in network byte order.
pub const NLA_F_NET_BYTEORDER: u16 = 0x4000;
/// Mask that removes the two flags above from an attribute type.
pub const NLA_TYPE_MASK: u16 = !(NLA_F_NESTED | NLA_F_NET_BYTEORDER);

/// Message type: nothing, ignore.
pub const NLMSG_NOOP: u16 = 1;
/// Message type: an error or, with errno 0, an acknowledgement.
pub const NLMSG_ERROR: u16 = 2;
/// Message type: end of a multipart (dump) reply.
pub const NLMSG_DONE: u16 = 3;
/// Message type: data lost.
pub const NLMSG_OVERRUN: u16 = 4;

/// Flag: this is a request.
pub const NLM_F_REQUEST: u16 = 0x1;
/// Flag: part of a multipart reply.
pub const NLM_F_MULTI: u16 = 0x2;
/// Flag: reply with an acknowledgement, success or not.
pub const NLM_F_ACK: u16 = 0x4;
/// Flag: send the answer to a non-dump GET back to the requester (without
/// it, `RTM_GETTCLASS` only notifies the `RTNLGRP_TC` group and acks).
pub const NLM_F_ECHO: u16 = 0x8;
/// Flag: the dump was interrupted by a change and may be inconsistent.
pub const NLM_F_DUMP_INTR: u16 = 0x10;
/// GET flag: return the complete table (`NLM_F_ROOT | NLM_F_MATCH`).
pub const NLM_F_DUMP: u16 = 0x300;
/// NEW flag: replace an existing object.
pub const NLM_F_REPLACE: u16 = 0x100;
/// NEW flag: fail if the object exists.
pub const NLM_F_EXCL: u16 = 0x200;
/// NEW flag: create the object if it does not exist.
pub const NLM_F_CREATE: u16 = 0x400;
/// Ack flag: the echoed request was cut to its header (`NETLINK_CAP_ACK`).
pub const NLM_F_CAPPED: u16 = 0x100;
/// Ack flag: extended-ack attributes follow (`NETLINK_EXT_ACK`).
pub const NLM_F_ACK_TLVS: u16 = 0x200;

/// Extended ack attribute: a human-readable message.
pub const NLMSGERR_ATTR_MSG: u16 = 1;
/// Extended ack attribute: offset of the offending attribute in the request.
pub const NLMSGERR_ATTR_OFFS: u16 = 2;

/// `SOL_NETLINK` socket option level.
pub const SOL_NETLINK: i32 = 270;
/// Socket option: do not echo the request in error acks.
pub const NETLINK_CAP_ACK: i32 = 10;
/// Socket option: attach extended-ack attributes (messages) to acks.
pub const NETLINK_EXT_ACK: i32 = 11;

// --- rtnetlink (linux/rtnetlink.h) ---

/// Create or change a link.
pub const RTM_NEWLINK: u16 = 16;
/// Delete a link.
pub const RTM_DELLINK: u16 = 17;
/// Get (dump) links.
pub const RTM_GETLINK: u16 = 18;
/// Create a qdisc.
pub const RTM_NEWQDISC: u16 = 36;
/// Delete a qdisc.
pub const RTM_DELQDISC: u16 = 37;
/// Get (dump) qdiscs.
pub const RTM_GETQDISC: u16 = 38;
/// Create or change a class.
pub const RTM_NEWTCLASS: u16 = 40;
/// Delete a class.
pub const RTM_DELTCLASS: u16 = 41;
/// Get (dump) classes.
pub const RTM_GETTCLASS: u16 = 42;
/// Create or replace a filter.
pub const RTM_NEWTFILTER: u16 = 44;
/// Delete a filter.
pub const RTM_DELTFILTER: u16 = 45;
/// Get (dump) filters.
pub const RTM_GETTFILTER: u16 = 46;
/// Create a filter chain (Linux 4.19+).
pub const RTM_NEWCHAIN: u16 = 100;
/// Delete a filter chain (and every filter in it).
pub const RTM_DELCHAIN: u16 = 101;
/// Get (dump) the filter chains of one block.
pub const RTM_GETCHAIN: u16 = 102;
/// The highest chain index the kernel accepts (`TC_ACT_EXT_VAL_MASK`).
pub const TC_CHAIN_MAX: u32 = 0x0fff_ffff;

/// Size of `struct ifinfomsg`.
pub const IFINFOMSG_LEN: usize = 16;
/// Size of `struct tcmsg`.
pub const TCMSG_LEN: usize = 20;

/// Link flag: administratively up.
pub const IFF_UP: u32 = 0x1;
/// Link attribute: interface name (string).
pub const IFLA_IFNAME: u16 = 3;
/// Link attribute: the index of the device this one is enslaved to (a
/// bridge port's bridge, a bond member's bond).
pub const IFLA_MASTER: u16 = 10;
/// Link attribute: `struct rtnl_link_stats64` (packets and bytes, 64-bit).
pub const IFLA_STATS64: u16 = 23;
/// Link attribute: nested link-type information.
pub const IFLA_LINKINFO: u16 = 18;
/// Inside `IFLA_LINKINFO`: the link type ("ifb", "veth", ...).
pub const IFLA_INFO_KIND: u16 = 1;
/// Link attribute: the device's XDP program (nested `IFLA_XDP_*`).
pub const IFLA_XDP: u16 = 43;
/// Inside `IFLA_XDP`: the program to attach (a file descriptor, -1 to detach).
pub const IFLA_XDP_FD: u16 = 1;
/// Inside `IFLA_XDP`: how a program is attached (`XDP_ATTACHED_*`).
pub const IFLA_XDP_ATTACHED: u16 = 2;
/// Inside `IFLA_XDP`: `XDP_FLAGS_*` for the attach.
pub const IFLA_XDP_FLAGS: u16 = 3;
/// Inside `IFLA_XDP`: the attached program's id (when one mode has one).
pub const IFLA_XDP_PROG_ID: u16 = 4;
/// Inside `IFLA_XDP`: the program in driver mode.
pub const IFLA_XDP_DRV_PROG_ID: u16 = 5;
/// Inside `IFLA_XDP`: the program in generic (skb) mode.
pub const IFLA_XDP_SKB_PROG_ID: u16 = 6;
/// Inside `IFLA_XDP`: the program in hardware mode.
pub const IFLA_XDP_HW_PROG_ID: u16 = 7;
/// Inside `IFLA_XDP`: with [`XDP_FLAGS_REPLACE`], the program that must be
/// attached for the change to happen (a file descriptor).
pub const IFLA_XDP_EXPECTED_FD: u16 = 8;
/// XDP flag: refuse (`EBUSY`) if the device has a program already.
pub const XDP_FLAGS_UPDATE_IF_NOEXIST: u32 = 1;
/// XDP flag: the generic (skb) path.
pub const XDP_FLAGS_SKB_MODE: u32 = 2;
/// XDP flag: the driver's (native) path.
pub const XDP_FLAGS_DRV_MODE: u32 = 4;
/// XDP flag: offloaded to the NIC.
pub const XDP_FLAGS_HW_MODE: u32 = 8;
/// XDP flag: only if the program named by `IFLA_XDP_EXPECTED_FD` is attached.
pub const XDP_FLAGS_REPLACE: u32 = 16;

/// tc attribute: the qdisc, class or filter kind (string).
pub const TCA_KIND: u16 = 1;
/// tc attribute: kind-specific options (nested).
pub const TCA_OPTIONS: u16 = 2;
/// tc attribute: legacy `struct tc_stats`.
pub const TCA_STATS: u16 = 3;
/// tc attribute: kind-specific statistics (`tc_htb_xstats` for HTB classes).
pub const TCA_XSTATS: u16 = 4;
/// tc attribute: nested `gnet_stats` (64-bit counters).
pub const TCA_STATS2: u16 = 7;
/// tc attribute: filter chain index.
pub const TCA_CHAIN: u16 = 11;

/// Inside `TCA_STATS2`: `struct gnet_stats_basic` (bytes u64, packets u32).
pub const TCA_STATS_BASIC: u16 = 1;
/// Inside `TCA_STATS2`: `struct gnet_stats_queue`.
pub const TCA_STATS_QUEUE: u16 = 3;
/// Inside `TCA_STATS2`: kind-specific statistics (like `TCA_XSTATS`).
pub const TCA_STATS_APP: u16 = 4;
/// Inside `TCA_STATS2`: the packet count as u64, sent when it exceeds u32.
pub const TCA_STATS_PKT64: u16 = 8;

// --- handles (linux/pkt_sched.h) ---

/// The parent of a device's root qdisc.
pub const TC_H_ROOT: u32 = 0xFFFF_FFFF;
/// The parent of the ingress/clsact qdisc.
pub const TC_H_CLSACT: u32 = 0xFFFF_FFF1;
/// Filter parent: clsact's ingress hook (`TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS)`).
pub const CLSACT_INGRESS: u32 = 0xFFFF_FFF2;
/// Filter parent: clsact's egress hook (`TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_EGRESS)`).
pub const CLSACT_EGRESS: u32 = 0xFFFF_FFF3;
/// The handle the kernel gives the clsact qdisc (`ffff:`).
pub const CLSACT_HANDLE: u32 = 0xFFFF_0000;

/// Ethernet protocol "every packet" (host order; sent big-endian).
pub const ETH_P_ALL: u16 = 0x0003;

// --- HTB (linux/pkt_sched.h) ---

/// Inside HTB `TCA_OPTIONS`: `struct tc_htb_opt` (a class).
pub const TCA_HTB_PARMS: u16 = 1;
/// Inside HTB `TCA_OPTIONS`: `struct tc_htb_glob` (the qdisc).
pub const TCA_HTB_INIT: u16 = 2;
/// Inside HTB `TCA_OPTIONS`: the ceil rate table (not sent: see [`TC_LINKLAYER_ETHERNET`]).
pub const TCA_HTB_CTAB: u16 = 3;
/// Inside HTB `TCA_OPTIONS`: the rate table (not sent: see [`TC_LINKLAYER_ETHERNET`]).
pub const TCA_HTB_RTAB: u16 = 4;
/// Inside HTB `TCA_OPTIONS`: the qdisc's direct queue length (u32).
pub const TCA_HTB_DIRECT_QLEN: u16 = 5;
/// Inside HTB `TCA_OPTIONS`: the rate in bytes/s as u64 when it does not fit u32.
pub const TCA_HTB_RATE64: u16 = 6;
/// Inside HTB `TCA_OPTIONS`: the ceil in bytes/s as u64 when it does not fit u32.
pub const TCA_HTB_CEIL64: u16 = 7;
/// HTB protocol version (`TC_HTB_PROTOVER`).
pub const TC_HTB_PROTOVER: u32 = 3;
/// `tc_ratespec.linklayer`: Ethernet. Any value other than
/// `TC_LINKLAYER_UNAWARE` (0) tells the kernel to compute transmission times
/// itself, so no 1 KiB rate table has to be sent per class.
pub const TC_LINKLAYER_ETHERNET: u8 = 1;
/// Size of `struct tc_ratespec`.
pub const TC_RATESPEC_LEN: usize = 12;
/// Size of `struct tc_htb_opt`.
pub const TC_HTB_OPT_LEN: usize = 44;
/// Size of `struct tc_htb_glob`.
pub const TC_HTB_GLOB_LEN: usize = 20;
/// Size of `struct tc_htb_xstats`.
pub const TC_HTB_XSTATS_LEN: usize = 20;

// --- cls_bpf and actions (linux/pkt_cls.h, linux/tc_act/tc_mirred.h) ---

/// Inside bpf `TCA_OPTIONS`: the actions (nested, one nest per action, numbered from 1).
pub const TCA_BPF_ACT: u16 = 1;
/// Inside bpf `TCA_OPTIONS`: the class a match selects when the program returns -1 (u32).
pub const TCA_BPF_CLASSID: u16 = 3;
/// Inside bpf `TCA_OPTIONS`: number of classic BPF instructions (u16).
pub const TCA_BPF_OPS_LEN: u16 = 4;
/// Inside bpf `TCA_OPTIONS`: the classic BPF instructions (`struct sock_filter[]`).
pub const TCA_BPF_OPS: u16 = 5;
/// Inside bpf `TCA_OPTIONS`: a file descriptor of a loaded eBPF program (u32).
pub const TCA_BPF_FD: u16 = 6;
/// Inside bpf `TCA_OPTIONS` (read back): the eBPF program's id (u32).
pub const TCA_BPF_ID: u16 = 11;
/// Inside bpf `TCA_OPTIONS`: the program's name (eBPF).
pub const TCA_BPF_NAME: u16 = 7;
/// Inside bpf `TCA_OPTIONS`: flags (`TCA_BPF_FLAG_ACT_DIRECT`).
pub const TCA_BPF_FLAGS: u16 = 8;
/// `TCA_BPF_FLAGS` bit: direct action mode.
pub const TCA_BPF_FLAG_ACT_DIRECT: u32 = 1;

/// Inside an action: its kind (string, "mirred").
pub const TCA_ACT_KIND: u16 = 1;
/// Inside an action: its options (nested).
pub const TCA_ACT_OPTIONS: u16 = 2;
/// Inside mirred's options: `struct tc_mirred`.
pub const TCA_MIRRED_PARMS: u16 = 2;
/// Size of `struct tc_mirred` (`tc_gen` + eaction + ifindex).
pub const TC_MIRRED_LEN: usize = 28;
/// Action verdict: the packet is consumed (a redirect).
pub const TC_ACT_STOLEN: i32 = 4;
/// Mirred: redirect to the device's egress.
pub const TCA_EGRESS_REDIR: i32 = 1;
/// Mirred: copy to the device's egress.
pub const TCA_EGRESS_MIRROR: i32 = 2;
/// Mirred: redirect to the device's ingress.
pub const TCA_INGRESS_REDIR: i32 = 3;
/// Size of `struct sock_filter`.
pub const SOCK_FILTER_LEN: usize = 8;
/// Largest classic BPF program the kernel accepts (`BPF_MAXINSNS`).
pub const BPF_MAXINSNS: usize = 4096;
