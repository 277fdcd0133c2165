//! Templates as learned from template and options template sets: the
//! field list as it came on the wire, compiled once into a [`Layout`].

use crate::layout::Layout;
use crate::reader::{be16, be32, be_uint};
use crate::role::Role;

/// The field length that announces a variable-length field (RFC 7011 §7).
/// RFC 3954 has no such thing, but NetFlow v9 exporters use it the same
/// way (H3C NetStream among them), and a v9 field of 65,535 fixed bytes
/// could never fit in a set, so v9 reads it as IPFIX does.
pub(crate) const VARIABLE: u16 = 65535;

/// Whether a template describes flow records or options records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A (data) template: its records are flows.
    Data,
    /// An options template: its records describe the exporter, e.g. a
    /// sampler's interval.
    Options,
}

/// One field of a template, as much of it as decoding needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Field {
    /// The information element id, without the enterprise bit.
    pub id: u16,
    /// The length on the wire, or [`VARIABLE`].
    pub len: u16,
    pub role: Role,
}

/// A learned template.
#[derive(Clone, Debug)]
pub(crate) struct Template {
    pub kind: Kind,
    /// How many of the fields are scope fields (options templates only).
    pub scope_count: u16,
    /// The field specifiers exactly as on the wire (IPFIX: with enterprise
    /// numbers), kept to recognise a re-sent identical template without
    /// recompiling it and to save the decoder's state.
    pub raw: Box<[u8]>,
    pub fields: Box<[Field]>,
    /// Field positions, valid for every record when `fixed_len` is set.
    pub layout: Layout,
    /// The record length when no field has a variable length.
    pub fixed_len: Option<usize>,
    /// The shortest possible record: fixed fields plus one length byte per
    /// variable-length field. Never 0.
    pub min_len: usize,
    /// The decoder's logical time of its last use (see `cache`).
    pub last_used: u64,
    /// The time it is filed under in the cache's ordered indexes.
    pub indexed: u64,
}

impl Template {
    /// Compiles field specifiers `raw` (as on the wire; the caller has
    /// already checked they are whole) into a template.
    pub(crate) fn compile(
        ipfix: bool,
        kind: Kind,
        scope_count: u16,
        raw: &[u8],
    ) -> Result<Template, String> {
        let mut fields = Vec::new();
        let mut layout = Layout::default();
        let mut off = 0usize;
        let mut fixed = 0usize;
        let mut variable = false;
        let mut min_len = 0usize;
        while off < raw.len() {
            if raw.len() - off < 4 {
                return Err(format!(
                    "field specifier {} is cut short after {} bytes",
                    fields.len(),
                    raw.len() - off
                ));
            }
            let wire_id = be16(raw, off);
            let len = be16(raw, off + 2);
            off += 4;
            // The enterprise bit only exists in IPFIX; v9 uses the whole
            // 16 bits for (vendor) field types.
            let enterprise = ipfix && wire_id & 0x8000 != 0;
            let pen = if enterprise {
                if raw.len() - off < 4 {
                    return Err(format!(
                        "field specifier {} lacks its enterprise number",
                        fields.len()
                    ));
                }
                let pen = be32(raw, off);
                off += 4;
                Some(pen)
            } else {
                None
            };
            let id = if enterprise {
                wire_id & 0x7fff
            } else {
                wire_id
            };
            let v9_scope = !ipfix && fields.len() < usize::from(scope_count);
            let role = Role::of(ipfix, id, pen, v9_scope);
            if len == VARIABLE {
                variable = true;
                min_len += 1;
            } else {
                layout.assign(role, fixed, usize::from(len));
                fixed += usize::from(len);
                min_len += usize::from(len);
            }
            fields.push(Field { id, len, role });
        }
        if fields.is_empty() {
            return Err("has no fields".to_string());
        }
        if min_len == 0 {
            return Err(format!(
                "describes empty records ({} fields, all of length 0)",
                fields.len()
            ));
        }
        if min_len > usize::from(u16::MAX) {
            return Err(format!(
                "describes records of at least {min_len} bytes, more than a set can carry"
            ));
        }
        layout.finish();
        Ok(Template {
            kind,
            scope_count,
            raw: raw.into(),
            fields: fields.into(),
            layout,
            fixed_len: (!variable).then_some(fixed),
            min_len,
            last_used: 0,
            indexed: 0,
        })
    }

    /// What keeping this template costs, in bytes: the structure, its
    /// field specifiers and fields, and its entries in the decoder's map
    /// and three ordered indexes.
    pub(crate) fn memory(&self) -> usize {
        const INDEX_ENTRIES: usize = 256;
        std::mem::size_of::<Template>()
            + self.raw.len()
            + self.fields.len() * std::mem::size_of::<Field>()
            + INDEX_ENTRIES
    }

    /// Whether a template record just received is this one again.
    pub(crate) fn same_as(&self, kind: Kind, scope_count: u16, raw: &[u8]) -> bool {
        self.kind == kind && self.scope_count == scope_count && *self.raw == *raw
    }

    /// The layout of the variable-length record at the start of `rest`,
    /// and that record's length. On failure: the offset within `rest` and
    /// what is wrong there.
    pub(crate) fn record_layout(&self, rest: &[u8]) -> Result<(Layout, usize), (usize, String)> {
        let mut layout = Layout::default();
        let mut off = 0usize;
        for (i, f) in self.fields.iter().enumerate() {
            let len = if f.len == VARIABLE {
                // RFC 7011 §7: one length byte, or 255 and two more.
                match rest.get(off) {
                    None => {
                        return Err((
                            off,
                            format!("field {i} (element {}) lacks its length byte", f.id),
                        ))
                    }
                    Some(&255) => {
                        let long = rest.get(off + 1..off + 3).ok_or_else(|| {
                            (
                                off,
                                format!("field {i} (element {}) lacks its 2-byte length", f.id),
                            )
                        })?;
                        off += 3;
                        be_uint(long) as usize
                    }
                    Some(&short) => {
                        off += 1;
                        usize::from(short)
                    }
                }
            } else {
                usize::from(f.len)
            };
            if rest.len() - off < len {
                return Err((
                    off,
                    format!(
                        "field {i} (element {}) needs {len} bytes but only {} remain",
                        f.id,
                        rest.len() - off
                    ),
                ));
            }
            layout.assign(f.role, off, len);
            off += len;
        }
        layout.finish();
        Ok((layout, off))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(fields: &[(u16, u16)]) -> Vec<u8> {
        fields
            .iter()
            .flat_map(|&(id, len)| [id.to_be_bytes(), len.to_be_bytes()].concat())
            .collect()
    }

    #[test]
    fn fixed_template_compiles_to_offsets() {
        let raw = spec(&[(8, 4), (12, 4), (1, 8), (2, 4)]);
        let t = Template::compile(true, Kind::Data, 0, &raw).unwrap();
        assert_eq!(t.fixed_len, Some(20));
        assert_eq!(t.fields.len(), 4);
    }

    #[test]
    fn zero_length_records_are_refused() {
        let raw = spec(&[(8, 0), (12, 0)]);
        let e = Template::compile(true, Kind::Data, 0, &raw).unwrap_err();
        assert!(e.contains("empty records"), "{e}");
    }

    #[test]
    fn variable_fields_read_both_length_forms() {
        let raw = spec(&[(8, 4), (82, VARIABLE), (12, 4)]);
        let t = Template::compile(true, Kind::Data, 0, &raw).unwrap();
        assert_eq!(t.fixed_len, None);
        assert_eq!(t.min_len, 9);
        let mut rec = vec![1, 2, 3, 4, 2, b'h', b'i', 5, 6, 7, 8];
        assert_eq!(t.record_layout(&rec).unwrap().1, 11);
        rec = vec![1, 2, 3, 4, 255, 0, 1, b'x', 5, 6, 7, 8];
        assert_eq!(t.record_layout(&rec).unwrap().1, 12);
        let e = t.record_layout(&[1, 2, 3, 4, 255, 0]).unwrap_err();
        assert_eq!(e.0, 4);
    }
}
