//! Decoders for flow export datagrams: NetFlow v5, NetFlow v9 (RFC 3954),
//! IPFIX (RFC 7011/7012) and sFlow v5, as pure code.
//!
//! tollgate attributes traffic to tenants from the flows routers export.
//! This crate turns one UDP payload into flow records and interface
//! counters; the socket, the clock and what to do with the flows belong
//! to the caller. It never touches a socket, a file or a clock: the
//! exporter's address and the receive time are arguments.
//!
//! # Use
//!
//! ```
//! use flow_wire::{Decoder, Item};
//! # let datagram: &[u8] = &[];
//! # let exporter = "192.0.2.1:2055".parse().unwrap();
//! let mut decoder = Decoder::new();
//! let mut bytes = 0u64;
//! let result = decoder.decode(exporter, 1_700_000_000_000, datagram, &mut |item| {
//!     if let Item::Flow(f) = item {
//!         bytes += f.sampling.scale(f.bytes).unwrap_or(u64::MAX);
//!     }
//! });
//! # assert!(result.is_err());
//! ```
//!
//! # State
//!
//! NetFlow v9 and IPFIX data records can only be read with the template
//! the exporter sent earlier, so the [`Decoder`] keeps templates per
//! exporter address, observation domain (v9 source id) and template id,
//! and the sampling announced by options records.
//! [`Decoder::save_state`] and [`Decoder::load_state`] carry both across a
//! restart; [`Decoder::revision`] says when there is something new to
//! save.
//!
//! Templates are kept within [`Limits`] (per exporter, per domain, fields
//! per template, bytes in all): the least recently used is evicted to
//! make room, and a template that could never fit is refused and counted,
//! so no datagram stream grows a decoder beyond its byte budget.
//!
//! # Speed
//!
//! Each template is compiled once, when learned, into the offsets of the
//! fields this crate reads ([`layout`](crate) module), so decoding a
//! fixed-length record is a handful of big-endian reads at fixed offsets.
//! Records are built on the stack and lent to the caller's sink; nothing is
//! allocated per record, only when a template is learned.
//!
//! # Robustness
//!
//! No input makes a decoder panic or read out of bounds: every read goes
//! through a bounds-checked cursor or `get`, and arithmetic on wire values
//! is checked or saturating. A malformed datagram yields a [`DecodeError`]
//! naming the byte offset and the set, record or field. The [`fuzzing`]
//! module holds the entry points cargo-fuzz drives.
//!
//! # Modules
//!
//! - `v5`: NetFlow v5.
//! - `sets`: the v9 and IPFIX message walk: template, options template
//!   and data sets, withdrawals, padding.
//! - `template`, `layout`: compiling templates and reading records.
//! - `exporter`: per exporter and domain state; `cache`: all of it within
//!   the [`Limits`], least recently used first out.
//! - `role`: what each information element means here; `selection`:
//!   PSAMP and NetFlow packet selection as a scale.
//! - `sflow`, `packet`: sFlow v5 and the sampled packet headers in it (and
//!   in IPFIX frame sections).
//! - `state`: the saved state format.
//! - `record`, `error`: the public types.

use std::net::SocketAddr;

mod cache;
mod error;
mod exporter;
pub mod fuzzing;
mod layout;
mod packet;
mod reader;
mod record;
mod role;
mod selection;
mod sets;
mod sflow;
mod state;
mod template;
mod time;
mod v5;

pub use cache::Limits;
pub use error::DecodeError;
pub use record::{
    DatagramSummary, FlowRecord, InterfaceCounters, Item, Protocol, RefusedBy, Sampling,
    SamplingOrigin, TemplateRefusal,
};

use cache::TemplateCache;
use reader::{be16, be32};

/// Per-collector decoder state: templates (keyed by exporter IP address,
/// observation domain / source id, template id) and sampling options
/// learned from options templates, within its [`Limits`].
///
/// One `Decoder` serves any number of exporters. It is not shared between
/// threads by design: a collector that spreads datagrams over threads
/// should keep all datagrams of one exporter on one thread (templates and
/// data must be seen in order), or give each thread its own decoder.
#[derive(Clone, Debug, Default)]
pub struct Decoder {
    cache: TemplateCache,
}

impl Decoder {
    /// A decoder that knows no templates yet, with the default [`Limits`].
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// A decoder that knows no templates yet, within `limits`.
    pub fn with_limits(limits: Limits) -> Decoder {
        Decoder {
            cache: TemplateCache::new(limits),
        }
    }

    /// The limits it keeps to.
    pub fn limits(&self) -> Limits {
        self.cache.limits()
    }

    /// Applies new limits (a reloaded policy), evicting the least recently
    /// used templates they no longer allow; returns how many went.
    pub fn set_limits(&mut self, limits: Limits) -> u32 {
        self.cache.set_limits(limits)
    }

    /// Decodes one UDP payload from `exporter` received at `received_ms`
    /// (Unix ms), calling `sink` for each item.
    ///
    /// The protocol is detected from the first bytes: a 16-bit version 5,
    /// 9 or 10 is NetFlow v5, v9 or IPFIX; a 32-bit 5 (whose first 16 bits
    /// are 0) is sFlow v5. Only the exporter's IP address is used (an
    /// IPv4-mapped IPv6 address counts as the IPv4 one, so dual-stack
    /// sockets key exporters the same way); the port is not, since
    /// exporters may send from changing ports.
    ///
    /// A datagram that fails part-way may already have delivered the
    /// records before the failure to `sink`, and templates and options
    /// before it are learned: they were well-formed, and flows delivered
    /// are flows counted. The caller counts the error and carries on.
    pub fn decode(
        &mut self,
        exporter: SocketAddr,
        received_ms: i64,
        datagram: &[u8],
        sink: &mut impl FnMut(Item<'_>),
    ) -> Result<DatagramSummary, DecodeError> {
        let addr = exporter.ip().to_canonical();
        if datagram.len() < 2 {
            return Err(DecodeError::new(
                0,
                format!(
                    "datagram of {} bytes is too short to carry a version",
                    datagram.len()
                ),
            ));
        }
        match be16(datagram, 0) {
            5 => v5::decode(datagram, sink),
            9 => sets::decode(self, addr, false, datagram, sink),
            10 => sets::decode(self, addr, true, datagram, sink),
            0 if datagram.len() >= 4 => match be32(datagram, 0) {
                5 => sflow::decode(datagram, received_ms, sink),
                v => Err(DecodeError::new(
                    0,
                    format!("sFlow version {v} is not supported (only 5)"),
                )),
            },
            v => Err(DecodeError::new(
                0,
                format!("unknown version {v} (expected NetFlow 5 or 9, IPFIX 10, or sFlow 5)"),
            )),
        }
    }

    /// Encodes templates and sampling state so a restarted collector can
    /// decode data that arrives before the exporter re-sends templates.
    /// The format is versioned (see the `state` module); the output is
    /// deterministic for a given state.
    pub fn save_state(&self) -> Vec<u8> {
        state::save(self)
    }

    /// The inverse of [`Decoder::save_state`], within the default
    /// [`Limits`] (merge the result into a decoder with other limits);
    /// rejects unknown versions and malformed bytes with an error naming
    /// the offset. Formats 1 and 2 are read.
    pub fn load_state(bytes: &[u8]) -> Result<Decoder, DecodeError> {
        state::load(bytes)
    }

    /// How many templates are known (for status).
    pub fn template_count(&self) -> usize {
        self.cache.template_count()
    }

    /// What the templates and per-domain state take, in bytes, as the
    /// [`Limits::template_bytes`] budget counts them.
    pub fn template_bytes(&self) -> usize {
        self.cache.bytes()
    }

    /// A number that changes whenever [`Decoder::save_state`] would give
    /// something new (templates learned, replaced, withdrawn or evicted,
    /// sampling learned), so a caller saves only then.
    pub fn revision(&self) -> u64 {
        self.cache.revision()
    }

    /// Adds what another decoder knows about exporters this one has not
    /// heard from, within this decoder's limits. A collector with several
    /// workers saves one state per worker; after a restart the kernel may
    /// hand an exporter to a different worker, so each worker starts from
    /// all of them. Where both know an exporter and domain, this
    /// decoder's knowledge is kept.
    pub fn merge(&mut self, other: Decoder) {
        self.cache.merge(other.cache);
    }
}
