//! rtnetlink messages for exactly what tollgate puts in the kernel: IFB
//! links, HTB and clsact qdiscs, HTB classes, `cls_bpf` filters running
//! classic BPF with an optional `mirred` redirect, and the empty filter
//! chain that marks a clsact qdisc as tollgate's.
//!
//! This crate is pure: it turns [`Request`]s into bytes and bytes into
//! [`Message`]s, and never touches a socket, a file or a clock. The socket
//! lives in `linux-dataplane` (`rtnl.rs`), which is the only place that
//! knows there is a kernel at the other end.
//!
//! # Why hand-written
//!
//! tollgate uses about fifteen message shapes. Writing them out keeps the
//! dependency tree empty, lets [`Request::encode`] append straight into one
//! reusable send buffer (no allocation per message, which matters when a
//! change set holds 100,000 classes), and keeps every kernel struct layout
//! visible in one place ([`consts`] and the `wire` helpers).
//!
//! # Wire format in one paragraph
//!
//! A netlink buffer is a sequence of messages, each starting at a 4-byte
//! aligned offset with a 16-byte `nlmsghdr` (length, type, flags, sequence,
//! port id), followed by a fixed family header (`ifinfomsg` for links,
//! `tcmsg` for qdiscs, classes and filters) and then attributes: 4-byte
//! `nlattr` headers (length, type) with their payload padded to 4 bytes.
//! Nested attributes carry `NLA_F_NESTED` in their type. Everything is in
//! host byte order except the filter protocol, which is big-endian inside
//! `tcm_info`.
//!
//! # Decoding
//!
//! [`parse_messages`] reads what the kernel sends back: acknowledgements
//! (with the extended-ack message the kernel attaches to errors and
//! warnings), dump end markers, and the link, qdisc, class, filter and
//! chain dumps.
//! It never panics on any input; a malformed message gives a
//! [`DecodeError`] naming the field, and parsing continues with the next
//! message whenever the message boundaries themselves are intact.

mod attr;
mod bpf;
pub mod consts;
mod decode;
mod handle;
mod htb;
mod request;

pub use bpf::{BytecodeError, SockFilter};
pub use decode::{
    parse_messages, parse_messages_with_headers, Ack, Action, BpfOptions, Chain, Class,
    DecodeError, Done, Filter, Header, HtbParams, HtbQdisc, HtbXstats, Link, LinkPackets, Message,
    Mirred, Qdisc, Stats, XdpMode,
};
pub use handle::{handle, Handle};
pub use htb::{
    default_burst, htb_buffer_ticks, htb_burst_bytes, DEFAULT_MTU, HTB_HZ, PSCHED_TICK_NS,
};
pub use request::Request;
