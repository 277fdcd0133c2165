//! The saved form of a [`Decoder`]: templates and sampling options, so a
//! restarted collector decodes data that arrives before the exporters
//! re-send their templates (which may take minutes).
//!
//! Format, version 1, all integers big-endian:
//!
//! ```text
//! "FLWS" u16 version=1 u32 exporter_count
//! per exporter (sorted by address, version, domain):
//!   u8 family (4|6) + 4|16 address bytes, u8 netflow version (9|10), u32 domain
//!   u8 flags (1: default interval, 2: system init time)
//!   [u32 default interval] [i64 system init ms]
//!   u32 sampler_count, per sampler (sorted): u64 id, u32 interval
//!   u32 template_count, per template (sorted): u16 id, u8 kind (0 data,
//!     1 options), u16 scope field count, u32 length, field specifiers as
//!     on the wire
//! ```
//!
//! Templates are saved as their wire bytes and compiled again on load, so
//! the layout code is the only interpretation and a saved state can never
//! hold a template the decoder would have refused.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::error::DecodeError;
use crate::exporter::{ExporterKey, ExporterState, MAX_EXPORTERS, MAX_SAMPLERS, MAX_TEMPLATES};
use crate::reader::Reader;
use crate::template::{Kind, Template};
use crate::Decoder;

const MAGIC: &[u8; 4] = b"FLWS";
const VERSION: u16 = 1;

pub(crate) fn save(dec: &Decoder) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    let mut keys: Vec<&ExporterKey> = dec.exporters.keys().collect();
    keys.sort();
    put_len(&mut out, keys.len());
    for key in keys {
        let Some(state) = dec.exporters.get(key) else {
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
        let flags =
            u8::from(s.default_interval.is_some()) | (u8::from(s.system_init_ms.is_some()) << 1);
        out.push(flags);
        if let Some(n) = s.default_interval {
            out.extend_from_slice(&n.to_be_bytes());
        }
        if let Some(t) = s.system_init_ms {
            out.extend_from_slice(&t.to_be_bytes());
        }
        let mut samplers: Vec<(&u64, &u32)> = s.samplers.iter().collect();
        samplers.sort();
        put_len(&mut out, samplers.len());
        for (id, n) in samplers {
            out.extend_from_slice(&id.to_be_bytes());
            out.extend_from_slice(&n.to_be_bytes());
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
            put_len(&mut out, t.raw.len());
            out.extend_from_slice(&t.raw);
        }
    }
    out
}

/// Lengths are bounded by the caps (and a template by a set's 64 KiB), so
/// they always fit in 32 bits.
fn put_len(out: &mut Vec<u8>, n: usize) {
    out.extend_from_slice(&u32::try_from(n).unwrap_or(u32::MAX).to_be_bytes());
}

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
    if version != VERSION {
        return Err(DecodeError::new(
            4,
            format!("saved state format version {version} is not supported (only {VERSION})"),
        ));
    }
    let mut dec = Decoder::new();
    let exporters = r.u32("exporter count")?;
    for i in 0..exporters {
        let at = r.pos();
        let (key, state) = exporter(&mut r).map_err(|e| e.within(format_args!("exporter {i}")))?;
        if dec.exporters.len() >= MAX_EXPORTERS {
            return Err(DecodeError::new(
                at,
                format!("more than {MAX_EXPORTERS} exporters"),
            ));
        }
        dec.templates += state.templates.len();
        if dec.templates > MAX_TEMPLATES {
            return Err(DecodeError::new(
                at,
                format!("more than {MAX_TEMPLATES} templates"),
            ));
        }
        if dec.exporters.insert(key, state).is_some() {
            return Err(DecodeError::new(
                at,
                format!("exporter {i} is listed twice"),
            ));
        }
    }
    if r.remaining() != 0 {
        return Err(DecodeError::new(
            r.pos(),
            format!("{} bytes after the last exporter", r.remaining()),
        ));
    }
    Ok(dec)
}

fn exporter(r: &mut Reader<'_>) -> Result<(ExporterKey, ExporterState), DecodeError> {
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
    let version = r.u8("NetFlow version")?;
    if version != 9 && version != 10 {
        return Err(DecodeError::new(
            at,
            format!("NetFlow version {version} is neither 9 nor 10"),
        ));
    }
    let domain = r.u32("domain")?;
    let key = ExporterKey {
        addr,
        version,
        domain,
    };
    let mut state = ExporterState::default();
    let at = r.pos();
    let flags = r.u8("flags")?;
    if flags & !3 != 0 {
        return Err(DecodeError::new(at, format!("unknown flags {flags:#04x}")));
    }
    if flags & 1 != 0 {
        let at = r.pos();
        let n = r.u32("default interval")?;
        if n == 0 {
            return Err(DecodeError::new(at, "default interval 0"));
        }
        state.sampling.default_interval = Some(n);
    }
    if flags & 2 != 0 {
        state.sampling.system_init_ms = Some(r.u64("system init time")? as i64);
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
        let n = r.u32("sampler interval")?;
        if n == 0 {
            return Err(DecodeError::new(at, format!("sampler {id} has interval 0")));
        }
        if state.sampling.samplers.insert(id, n).is_some() {
            return Err(DecodeError::new(
                at,
                format!("sampler {id} is listed twice"),
            ));
        }
    }
    let templates = r.u32("template count")?;
    for _ in 0..templates {
        let at = r.pos();
        let id = r.u16("template id")?;
        let t = template(r, version == 10).map_err(|e| e.within(format_args!("template {id}")))?;
        if id < 256 {
            return Err(DecodeError::new(
                at,
                format!("template id {id} is reserved"),
            ));
        }
        if state.templates.len() >= MAX_TEMPLATES {
            return Err(DecodeError::new(
                at,
                format!("more than {MAX_TEMPLATES} templates"),
            ));
        }
        if state.templates.insert(id, t).is_some() {
            return Err(DecodeError::new(
                at,
                format!("template {id} is listed twice"),
            ));
        }
    }
    Ok((key, state))
}

fn template(r: &mut Reader<'_>, ipfix: bool) -> Result<Template, DecodeError> {
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
    let len = r.u32("field specifier length")? as usize;
    let raw_at = r.pos();
    let raw = r.bytes(len, "field specifiers")?;
    let t = Template::compile(ipfix, kind, scope_count, raw)
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
    Ok(t)
}
