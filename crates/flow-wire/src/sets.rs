//! NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): the message header and the
//! walk over template, options template and data sets.

use std::net::IpAddr;

use crate::error::DecodeError;
use crate::exporter::ExporterKey;
use crate::layout::RecordContext;
use crate::reader::{be16, be32, is_padding, Reader};
use crate::record::{DatagramSummary, Item, Protocol};
use crate::template::{Kind, Template};
use crate::Decoder;

/// The fixed facts of one message, from its header.
struct Message {
    ipfix: bool,
    key: ExporterKey,
    export_ms: i64,
    sys_uptime: Option<u32>,
}

/// What kind of set a set id announces.
#[derive(Clone, Copy, PartialEq, Eq)]
enum SetKind {
    Template,
    Options,
    Data,
    Reserved,
}

impl SetKind {
    fn of(ipfix: bool, id: u16) -> SetKind {
        match (ipfix, id) {
            (false, 0) | (true, 2) => SetKind::Template,
            (false, 1) | (true, 3) => SetKind::Options,
            (_, 256..) => SetKind::Data,
            _ => SetKind::Reserved,
        }
    }

    fn name(self) -> &'static str {
        match self {
            SetKind::Template => "template",
            SetKind::Options => "options template",
            SetKind::Data => "data",
            SetKind::Reserved => "reserved",
        }
    }
}

/// Decodes a v9 or IPFIX message from `exporter`.
pub(crate) fn decode(
    dec: &mut Decoder,
    exporter: IpAddr,
    ipfix: bool,
    d: &[u8],
    sink: &mut impl FnMut(Item<'_>),
) -> Result<DatagramSummary, DecodeError> {
    let (header_len, name) = if ipfix {
        (16, "IPFIX")
    } else {
        (20, "NetFlow v9")
    };
    if d.len() < header_len {
        return Err(DecodeError::new(
            0,
            format!(
                "{name} header needs {header_len} bytes but the datagram has {}",
                d.len()
            ),
        ));
    }
    let (msg, summary_seq, end) = if ipfix {
        // The IPFIX header carries the message length; bytes after it are
        // not part of the message.
        let length = usize::from(be16(d, 2));
        if length < header_len || length > d.len() {
            return Err(DecodeError::new(
                2,
                format!(
                    "IPFIX message length {length} does not fit the datagram's {} bytes (minimum {header_len})",
                    d.len()
                ),
            ));
        }
        let domain = be32(d, 12);
        let msg = Message {
            ipfix,
            key: ExporterKey {
                addr: exporter,
                version: 10,
                domain,
            },
            export_ms: i64::from(be32(d, 4)) * 1000,
            sys_uptime: None,
        };
        (msg, be32(d, 8), length)
    } else {
        let domain = be32(d, 16);
        let msg = Message {
            ipfix,
            key: ExporterKey {
                addr: exporter,
                version: 9,
                domain,
            },
            export_ms: i64::from(be32(d, 8)) * 1000,
            sys_uptime: Some(be32(d, 4)),
        };
        (msg, be32(d, 12), d.len())
    };
    let protocol = if ipfix {
        Protocol::Ipfix
    } else {
        Protocol::NetflowV9
    };
    let mut summary = DatagramSummary::new(protocol, summary_seq, msg.key.domain);
    dec.cache.tick();

    let mut r = Reader::new(d.get(..end).unwrap_or_default());
    r.skip(header_len, "header")?;
    while r.remaining() >= 4 {
        let set_off = r.pos();
        let id = r.u16("set id")?;
        let len = usize::from(r.u16("set length")?);
        let kind = SetKind::of(ipfix, id);
        if len < 4 {
            if id == 0 && len == 0 && is_padding(r.rest()) {
                // Zeros after the last set: padding some v9 exporters add.
                break;
            }
            return Err(DecodeError::new(
                set_off,
                format!(
                    "set {id} ({}) has length {len}, less than its own 4-byte header",
                    kind.name()
                ),
            ));
        }
        if len - 4 > r.remaining() {
            return Err(DecodeError::new(
                set_off,
                format!(
                    "set {id} ({}) claims length {len} but only {} bytes remain",
                    kind.name(),
                    r.remaining() + 4
                ),
            ));
        }
        let body = r.window(len - 4, "set body")?;
        let done = match kind {
            SetKind::Template | SetKind::Options => {
                dec.template_set(&msg, id, kind == SetKind::Options, body, &mut summary)
            }
            SetKind::Data => dec.data_set(&msg, id, body, sink, &mut summary),
            SetKind::Reserved => Ok(()),
        };
        done.map_err(|e| {
            e.within(format_args!(
                "set {id} ({}) at offset {set_off}",
                kind.name()
            ))
        })?;
    }
    if !is_padding(r.rest()) {
        return Err(DecodeError::new(
            r.pos(),
            format!("{} bytes after the last set are not a set", r.remaining()),
        ));
    }
    if !ipfix && summary.unknown_template_sets > 0 {
        // RFC 3954 §5.1: the header counts every record of the packet
        // (template, options template, data and options data records).
        let count = u32::from(be16(d, 2));
        let read = summary
            .templates_learned
            .saturating_add(summary.templates_refused)
            .saturating_add(summary.records)
            .saturating_add(summary.options_records);
        summary.unknown_template_records = count.saturating_sub(read);
    }
    summary.templates_evicted = dec.cache.take_evicted();
    Ok(summary)
}

impl Decoder {
    /// Reads a template or options template set.
    fn template_set(
        &mut self,
        msg: &Message,
        set_id: u16,
        options: bool,
        mut body: Reader<'_>,
        summary: &mut DatagramSummary,
    ) -> Result<(), DecodeError> {
        let kind = if options { Kind::Options } else { Kind::Data };
        let mut index = 0u32;
        // Fewer than 4 bytes cannot start a template record: padding.
        while body.remaining() >= 4 {
            let rec_off = body.pos();
            if is_padding(body.rest()) {
                break;
            }
            let tid = body.u16("template id")?;
            let parsed = if msg.ipfix {
                ipfix_template(&mut body, options, set_id, tid)
            } else {
                v9_template(&mut body, options)
            };
            let this = index;
            let ctx = |e: DecodeError| e.within(format_args!("template record {this} (id {tid})"));
            let (scope_count, raw, fields) = match parsed.map_err(ctx)? {
                Parsed::Withdraw => {
                    summary.templates_withdrawn = summary
                        .templates_withdrawn
                        .saturating_add(self.cache.withdraw(&msg.key, tid, set_id, kind));
                    index += 1;
                    continue;
                }
                Parsed::Template {
                    scope_count,
                    raw,
                    fields,
                } => (scope_count, raw, fields),
            };
            if tid < 256 {
                return Err(ctx(DecodeError::new(
                    rec_off,
                    "template ids below 256 are reserved for sets".to_string(),
                )));
            }
            index += 1;
            // Refused before compiling: a template of 16,000 fields costs
            // nothing but this check.
            if let Some(r) = self.cache.refuses_fields(tid, fields) {
                summary.templates_refused = summary.templates_refused.saturating_add(1);
                summary.refusal = Some(r);
                continue;
            }
            if self
                .cache
                .known(&msg.key, tid)
                .is_some_and(|t| t.same_as(kind, scope_count, raw))
            {
                self.cache.touch(&msg.key, tid);
                summary.templates_learned = summary.templates_learned.saturating_add(1);
                continue;
            }
            let t = Template::compile(msg.ipfix, kind, scope_count, raw)
                .map_err(|m| ctx(DecodeError::new(rec_off, m)))?;
            match self.cache.insert(msg.key, tid, t) {
                Ok(()) => {
                    summary.templates_learned = summary.templates_learned.saturating_add(1);
                }
                Err(r) => {
                    summary.templates_refused = summary.templates_refused.saturating_add(1);
                    summary.refusal = Some(r);
                }
            }
        }
        Ok(())
    }

    /// Reads a data set: flows, or options records for an options template.
    fn data_set(
        &mut self,
        msg: &Message,
        set_id: u16,
        body: Reader<'_>,
        sink: &mut impl FnMut(Item<'_>),
        summary: &mut DatagramSummary,
    ) -> Result<(), DecodeError> {
        let clock = self.cache.clock();
        let known = self
            .cache
            .exporters
            .get_mut(&msg.key)
            .and_then(|s| s.templates.get_mut(&set_id))
            .map(|t| t.last_used = clock)
            .is_some();
        let state = match self.cache.exporters.get_mut(&msg.key) {
            Some(state) if known => state,
            _ => {
                summary.unknown_template_sets = summary.unknown_template_sets.saturating_add(1);
                return Ok(());
            }
        };
        let before = state.own_memory();
        let Some(t) = state.templates.get(&set_id) else {
            return Ok(());
        };
        if t.kind == Kind::Options {
            let sampling = &mut state.sampling;
            let mut changed = false;
            let done = each_record(t, body, |layout, rec| {
                let v = layout.options(rec);
                if let Some(s) = v.scale {
                    changed |= sampling.learn(v.sampler_id, s);
                }
                if let Some(init) = v.system_init_ms {
                    changed |= sampling.system_init_ms.replace(init) != Some(init);
                }
                summary.options_records = summary.options_records.saturating_add(1);
            });
            if changed {
                self.cache.changed();
                self.cache.resized(&msg.key, before);
            }
            return done;
        }
        let ctx = RecordContext {
            export_ms: msg.export_ms,
            sys_uptime: msg.sys_uptime,
            system_init_ms: state.sampling.system_init_ms,
            default_sampling: state.sampling.default_sampling(),
            samplers: &state.sampling.samplers,
        };
        let (mut flows, mut records) = (0u32, 0u32);
        let done = each_record(t, body, |layout, rec| {
            layout.flows(rec, &ctx, &mut |f| {
                sink(Item::Flow(f));
                flows = flows.saturating_add(1);
            });
            records = records.saturating_add(1);
        });
        summary.flows = summary.flows.saturating_add(flows);
        summary.records = summary.records.saturating_add(records);
        done
    }
}

/// Calls `f` with the layout of each record of a data set and the set's
/// bytes from that record's start to the set's end (so that field reads
/// can load 8 bytes at a time; the layout never reaches past the record).
/// Whatever is left after the last whole record is padding (RFC 7011
/// §3.3.1: padding is shorter than any record of the set).
#[inline]
fn each_record(
    t: &Template,
    mut body: Reader<'_>,
    mut f: impl FnMut(&crate::layout::Layout, &[u8]),
) -> Result<(), DecodeError> {
    if let Some(len) = t.fixed_len {
        let mut rest = body.rest();
        while rest.len() >= len {
            f(&t.layout, rest);
            rest = rest.get(len..).unwrap_or_default();
        }
        return Ok(());
    }
    let mut index = 0u32;
    while body.remaining() >= t.min_len {
        let rec_off = body.pos();
        let rest = body.rest();
        let (layout, len) = t
            .record_layout(rest)
            .map_err(|(at, m)| DecodeError::new(rec_off + at, format!("record {index}: {m}")))?;
        body.skip(len, "record")?;
        f(&layout, rest);
        index += 1;
    }
    Ok(())
}

/// A template record's body, once read.
enum Parsed<'a> {
    Withdraw,
    Template {
        scope_count: u16,
        raw: &'a [u8],
        /// How many field specifiers `raw` holds.
        fields: usize,
    },
}

/// Reads the rest of an IPFIX (options) template record after its id.
fn ipfix_template<'a>(
    body: &mut Reader<'a>,
    options: bool,
    set_id: u16,
    tid: u16,
) -> Result<Parsed<'a>, DecodeError> {
    let count_at = body.pos();
    let count = body.u16("field count")?;
    if count == 0 {
        if tid < 256 && tid != set_id {
            return Err(DecodeError::new(
                count_at,
                format!("withdrawal of reserved template id {tid}"),
            ));
        }
        return Ok(Parsed::Withdraw);
    }
    let scope_count = if options {
        let at = body.pos();
        let s = body.u16("scope field count")?;
        if s == 0 || s > count {
            return Err(DecodeError::new(
                at,
                format!("scope field count {s} must be between 1 and the field count {count}"),
            ));
        }
        s
    } else {
        0
    };
    let start = *body;
    let mut len = 0usize;
    for i in 0..count {
        let what = |w: &str| format!("field specifier {i} of {count}: {w}");
        let id = body.u16(&what("element id"))?;
        body.skip(2, &what("field length"))?;
        len += 4;
        if id & 0x8000 != 0 {
            body.skip(4, &what("enterprise number"))?;
            len += 4;
        }
    }
    let raw = start.rest().get(..len).unwrap_or_default();
    Ok(Parsed::Template {
        scope_count,
        raw,
        fields: usize::from(count),
    })
}

/// Reads the rest of a v9 (options) template record after its id.
fn v9_template<'a>(body: &mut Reader<'a>, options: bool) -> Result<Parsed<'a>, DecodeError> {
    if options {
        // RFC 3954 §6.1: scope and option lengths are in bytes, 4 per field.
        let at = body.pos();
        let scope_len = body.u16("option scope length")?;
        let option_len = body.u16("option length")?;
        if scope_len % 4 != 0 || option_len % 4 != 0 {
            return Err(DecodeError::new(
                at,
                format!(
                    "option scope length {scope_len} and option length {option_len} must be multiples of 4"
                ),
            ));
        }
        let total = usize::from(scope_len) + usize::from(option_len);
        let raw = body.bytes(total, "option field specifiers")?;
        Ok(Parsed::Template {
            scope_count: scope_len / 4,
            raw,
            fields: total / 4,
        })
    } else {
        let at = body.pos();
        let count = body.u16("field count")?;
        if count == 0 {
            return Err(DecodeError::new(at, "NetFlow v9 template has no fields"));
        }
        let raw = body.bytes(usize::from(count) * 4, "field specifiers")?;
        Ok(Parsed::Template {
            scope_count: 0,
            raw,
            fields: usize::from(count),
        })
    }
}
