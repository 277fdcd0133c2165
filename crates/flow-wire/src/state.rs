//! The saved form of a [`Decoder`]: templates and sampling options, so a
//! restarted collector decodes data that arrives before the exporters
//! re-send their templates (which may take minutes).
//!
//! Format, version 2, all integers big-endian:
//!
//! ```text
//! "FLWS" u16 version=2 u32 exporter_count
//! per exporter (sorted by address, version, domain):
//!   u8 family (4|6) + 4|16 address bytes, u8 netflow version (9|10), u32 domain
//!   u8 flags (1: default scale, 2: system init time)
//!   [scale] [i64 system init ms]
//!   u32 sampler_count, per sampler (sorted): u64 id, scale
//!   u32 template_count, per template (sorted): u16 id, u8 kind (0 data,
//!     1 options), u16 scope field count, u64 recency (0 for the least
//!     recently used template of the whole state, 1 for the next, ...),
//!     u32 length, field specifiers as on the wire
//! scale: u8 0, u64 population, u64 selected (both at least 1)
//!      | u8 1, u16 unsupported selector algorithm
//! ```
//!
//! Version 1 (still read) had a u32 1-in-N interval where version 2 has a
//! scale, and no recency.
//!
//! Templates are saved as their wire bytes and compiled again on load, so
//! the layout code is the only interpretation and a saved state can never
//! hold a template the decoder would have refused. Loading keeps to the
//! decoder's [`crate::Limits`] like learning does: a state saved under
//! wider limits loads its most recently used templates.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::cache::TemplateCache;
use crate::error::DecodeError;
use crate::exporter::{ExporterKey, SamplingState, Scale, MAX_SAMPLERS};
use crate::reader::Reader;
use crate::template::{Kind, Template};
use crate::Decoder;

const MAGIC: &[u8; 4] = b"FLWS";
const VERSION: u16 = 2;

pub(crate) fn save(dec: &Decoder) -> Vec<u8> {
    let exporters = &dec.cache.exporters;
    // Recency as a rank rather than the clock, so that a loaded state
    // (whose clock starts again) saves to the same bytes.
    let mut by_use: Vec<(u64, &ExporterKey, u16)> = exporters
        .iter()
        .flat_map(|(k, s)| s.templates.iter().map(move |(id, t)| (t.last_used, k, *id)))
        .collect();
    by_use.sort();
    let rank: std::collections::HashMap<(&ExporterKey, u16), u64> = by_use
        .iter()
        .enumerate()
        .map(|(i, (_, k, id))| ((*k, *id), i as u64))
        .collect();
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    let mut keys: Vec<&ExporterKey> = exporters.keys().collect();
    keys.sort();
    put_len(&mut out, keys.len());
    for key in keys {
        let Some(state) = exporters.get(key) else {
            continue;
        };
        match key.addr {
            IpAddr::V4(a) => {
                out.push(4);
                out.extend_from_slice(&a.octets());
            }
            IpAddr::V6(a) => {
                out.push(6);
                out.extend_from_slice(&a.octets());
            }
        }
        out.push(key.version);
        out.extend_from_slice(&key.domain.to_be_bytes());
        let s = &state.sampling;
        let flags = u8::from(s.default.is_some()) | (u8::from(s.system_init_ms.is_some()) << 1);
        out.push(flags);
        if let Some(scale) = s.default {
            put_scale(&mut out, scale);
        }
        if let Some(t) = s.system_init_ms {
            out.extend_from_slice(&t.to_be_bytes());
        }
        let mut samplers: Vec<(&u64, &Scale)> = s.samplers.iter().collect();
        samplers.sort_by_key(|(id, _)| **id);
        put_len(&mut out, samplers.len());
        for (id, scale) in samplers {
            out.extend_from_slice(&id.to_be_bytes());
            put_scale(&mut out, *scale);
        }
        let mut templates: Vec<(&u16, &Template)> = state.templates.iter().collect();
        templates.sort_by_key(|(id, _)| **id);
        put_len(&mut out, templates.len());
        for (id, t) in templates {
            out.extend_from_slice(&id.to_be_bytes());
            out.push(match t.kind {
                Kind::Data => 0,
                Kind::Options => 1,
            });
            out.extend_from_slice(&t.scope_count.to_be_bytes());
            let recency = rank.get(&(key, *id)).copied().unwrap_or(0);
            out.extend_from_slice(&recency.to_be_bytes());
            put_len(&mut out, t.raw.len());
            out.extend_from_slice(&t.raw);
        }
    }
    out
}

fn put_scale(out: &mut Vec<u8>, scale: Scale) {
    match scale {
        Scale::Ratio {
            population,
            selected,
        } => {
            out.push(0);
            out.extend_from_slice(&population.to_be_bytes());
            out.extend_from_slice(&selected.to_be_bytes());
        }
        Scale::Unsupported(a) => {
            out.push(1);
            out.extend_from_slice(&a.to_be_bytes());
        }
    }
}

/// Lengths are bounded by the caps (and a template by a set's 64 KiB), so
/// they always fit in 32 bits.
fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

use crate::cache::DomainPart as Part;

pub(crate) fn load(bytes: &[u8]) -> Result<Decoder, DecodeError> {
    let mut r = Reader::new(bytes);
    let magic = r.bytes(4, "magic")?;
    if magic != MAGIC {
        return Err(DecodeError::new(
            0,
            "not a saved flow decoder state (bad magic)",
        ));
    }
    let version = r.u16("format version")?;
    if version != 1 && version != VERSION {
        return Err(DecodeError::new(
            4,
            format!("saved state format version {version} is not supported (1 or {VERSION})"),
        ));
    }
    let exporters = r.u32("exporter count")?;
    let mut parts: Vec<Part> = Vec::new();
    let mut keys = std::collections::HashSet::new();
    for i in 0..exporters {
        let at = r.pos();
        let part = exporter(&mut r, version).map_err(|e| e.within(format_args!("exporter {i}")))?;
        if !keys.insert(part.0) {
            return Err(DecodeError::new(
                at,
                format!("exporter {i} is listed twice"),
            ));
        }
        parts.push(part);
    }
    if r.remaining() != 0 {
        return Err(DecodeError::new(
            r.pos(),
            format!("{} bytes after the last exporter", r.remaining()),
        ));
    }
    let mut cache = TemplateCache::default();
    cache.absorb(parts);
    Ok(Decoder { cache })
}

fn scale(r: &mut Reader<'_>, version: u16, what: &str) -> Result<Scale, DecodeError> {
    let at = r.pos();
    if version == 1 {
        let n = r.u32(what)?;
        return Scale::ratio(u64::from(n), 1)
            .ok_or_else(|| DecodeError::new(at, format!("{what} is 0")));
    }
    match r.u8(what)? {
        0 => {
            let population = r.u64("population")?;
            let selected = r.u64("selected")?;
            Scale::ratio(population, selected).ok_or_else(|| {
                DecodeError::new(at, format!("{what} {selected} of {population} has a 0"))
            })
        }
        1 => Ok(Scale::Unsupported(r.u16("selector algorithm")?)),
        other => Err(DecodeError::new(
            at,
            format!("{what} kind {other} is neither 0 nor 1"),
        )),
    }
}

fn exporter(r: &mut Reader<'_>, version: u16) -> Result<Part, DecodeError> {
    let at = r.pos();
    let addr = match r.u8("address family")? {
        4 => IpAddr::V4(Ipv4Addr::from(r.array::<4>("IPv4 address")?)),
        6 => IpAddr::V6(Ipv6Addr::from(r.array::<16>("IPv6 address")?)),
        other => {
            return Err(DecodeError::new(
                at,
                format!("address family {other} is neither 4 nor 6"),
            ))
        }
    };
    let at = r.pos();
    let netflow = r.u8("NetFlow version")?;
    if netflow != 9 && netflow != 10 {
        return Err(DecodeError::new(
            at,
            format!("NetFlow version {netflow} is neither 9 nor 10"),
        ));
    }
    let domain = r.u32("domain")?;
    let key = ExporterKey {
        addr,
        version: netflow,
        domain,
    };
    let mut sampling = SamplingState::default();
    let at = r.pos();
    let flags = r.u8("flags")?;
    if flags & !3 != 0 {
        return Err(DecodeError::new(at, format!("unknown flags {flags:#04x}")));
    }
    if flags & 1 != 0 {
        sampling.default = Some(scale(r, version, "default scale")?);
    }
    if flags & 2 != 0 {
        sampling.system_init_ms = Some(r.u64("system init time")? as i64);
    }
    let samplers = r.u32("sampler count")?;
    if samplers as usize > MAX_SAMPLERS {
        return Err(DecodeError::new(
            r.pos() - 4,
            format!("{samplers} samplers, more than {MAX_SAMPLERS}"),
        ));
    }
    for _ in 0..samplers {
        let at = r.pos();
        let id = r.u64("sampler id")?;
        let s = scale(r, version, "sampler scale")?;
        if sampling.samplers.insert(id, s).is_some() {
            return Err(DecodeError::new(
                at,
                format!("sampler {id} is listed twice"),
            ));
        }
    }
    let count = r.u32("template count")?;
    let mut templates: Vec<(u16, Template)> = Vec::new();
    let mut ids = std::collections::HashSet::new();
    for _ in 0..count {
        let at = r.pos();
        let id = r.u16("template id")?;
        let t = template(r, netflow == 10, version)
            .map_err(|e| e.within(format_args!("template {id}")))?;
        if id < 256 {
            return Err(DecodeError::new(
                at,
                format!("template id {id} is reserved"),
            ));
        }
        if !ids.insert(id) {
            return Err(DecodeError::new(
                at,
                format!("template {id} is listed twice"),
            ));
        }
        templates.push((id, t));
    }
    Ok((key, sampling, templates))
}

fn template(r: &mut Reader<'_>, ipfix: bool, version: u16) -> Result<Template, DecodeError> {
    let at = r.pos();
    let kind = match r.u8("kind")? {
        0 => Kind::Data,
        1 => Kind::Options,
        other => {
            return Err(DecodeError::new(
                at,
                format!("template kind {other} is neither 0 nor 1"),
            ))
        }
    };
    let scope_at = r.pos();
    let scope_count = r.u16("scope field count")?;
    if kind == Kind::Data && scope_count != 0 {
        return Err(DecodeError::new(
            scope_at,
            "a data template has no scope fields",
        ));
    }
    let last_used = if version >= 2 { r.u64("last used")? } else { 0 };
    let len = r.u32("field specifier length")? as usize;
    let raw_at = r.pos();
    let raw = r.bytes(len, "field specifiers")?;
    let mut t = Template::compile(ipfix, kind, scope_count, raw)
        .map_err(|m| DecodeError::new(raw_at, m))?;
    if usize::from(scope_count) > t.fields.len()
        || (ipfix && kind == Kind::Options && scope_count == 0)
    {
        return Err(DecodeError::new(
            scope_at,
            format!(
                "scope field count {scope_count} does not fit {} fields",
                t.fields.len()
            ),
        ));
    }
    t.last_used = last_used;
    Ok(t)
}
