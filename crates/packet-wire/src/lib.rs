//! Captured frames → the DDoS detector's per-tick figures, pure (no I/O,
//! no clock).
//!
//! Two steps, both bounded in time and memory whatever the bytes:
//!
//! 1. [`parse`]: one frame (Ethernet II with up to [`MAX_VLAN_TAGS`]
//!    802.1Q/802.1ad tags, or raw IP) → a [`PacketSummary`]: addresses,
//!    protocol, lengths, TCP flags, fragment bit, ports. IPv4 options are
//!    skipped by IHL; IPv6 extension headers (hop-by-hop, routing,
//!    fragment, destination options, AH) are walked up to
//!    [`MAX_EXTENSION_HEADERS`]. Each malformation is a typed
//!    [`ParseError`] with a counter [`Reason`]; nothing panics and nothing
//!    is read past the frame (fuzzed: `fuzz/fuzz_targets/packet_wire.rs`).
//! 2. [`Aggregator`]: summaries → per (address, [`Direction`]) [`Counters`]
//!    for a tick, direction decided by the local prefixes (longest match,
//!    `prefix-map`); internal and foreign traffic counted apart; a bounded
//!    host table with an overflow counter; distinct 5-tuples by a 128-byte
//!    HyperLogLog ([`FlowSketch`]), the busiest UDP source ports, TCP/UDP
//!    destination ports and remote sources by Space-Saving ([`TopPorts`],
//!    [`TopSources`]); remote sources that reach many local
//!    addresses over a window, for scan reports ([`ScanSketch`]).
//!
//! The capture crate (`packet-capture`) feeds frames from AF_PACKET rings
//! and calls [`Aggregator::take`] every tick.

mod aggregate;
pub mod fuzzing;
mod parse;
mod scan;
mod sketch;

pub use aggregate::{
    Aggregator, AggregatorConfig, Counters, Direction, HostDelta, LocalNets, MalformedCounts,
    TickCounts,
};
pub use parse::{
    parse, IpProtocol, Layer, LinkType, PacketSummary, ParseError, Reason, TcpFlags,
    MAX_EXTENSION_HEADERS, MAX_VLAN_TAGS,
};
pub use scan::{ScanConfig, ScanSketch};
pub use sketch::{FlowSketch, SourceCount, TopPorts, TopSources, TOP_PORTS, TOP_SOURCES};
