//! AS_PATH segments in their 2-byte and 4-byte encodings, and the RFC 6793
//! merge of AS_PATH with AS4_PATH for sessions without four-octet AS.

use super::error::{subcode, DecodeError};
use super::open::AS_TRANS;
use crate::bytes::{put_u16, put_u32, Reader};

/// The kind of an AS_PATH segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SegmentKind {
    /// AS_SET: an unordered set, left by aggregation.
    Set,
    /// AS_SEQUENCE: the ASes the route traversed, nearest first.
    Sequence,
    /// AS_CONFED_SEQUENCE (RFC 5065).
    ConfedSequence,
    /// AS_CONFED_SET (RFC 5065).
    ConfedSet,
}

impl SegmentKind {
    fn code(self) -> u8 {
        match self {
            SegmentKind::Set => 1,
            SegmentKind::Sequence => 2,
            SegmentKind::ConfedSequence => 3,
            SegmentKind::ConfedSet => 4,
        }
    }

    fn from_code(code: u8) -> Option<SegmentKind> {
        Some(match code {
            1 => SegmentKind::Set,
            2 => SegmentKind::Sequence,
            3 => SegmentKind::ConfedSequence,
            4 => SegmentKind::ConfedSet,
            _ => return None,
        })
    }

    /// Whether the segment describes a confederation's inside.
    pub fn is_confed(self) -> bool {
        matches!(self, SegmentKind::ConfedSequence | SegmentKind::ConfedSet)
    }
}

/// One AS_PATH segment.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AsPathSegment {
    /// Sequence, set, or their confederation variants.
    pub kind: SegmentKind,
    /// The AS numbers, in wire order.
    pub asns: Vec<u32>,
}

impl AsPathSegment {
    /// How much the segment adds to the path length used in route selection
    /// and in the RFC 6793 merge: a set counts once, confederation
    /// segments not at all.
    pub fn path_len(&self) -> usize {
        match self.kind {
            SegmentKind::Sequence => self.asns.len(),
            SegmentKind::Set => 1,
            _ => 0,
        }
    }
}

fn malformed() -> DecodeError {
    DecodeError::update(
        subcode::update::MALFORMED_AS_PATH,
        &[],
        "AS_PATH is malformed",
    )
}

/// Parses an AS_PATH (or AS4_PATH) value with `four`-byte AS numbers.
///
/// Empty segments and unknown segment types are malformed (RFC 7606 §7.2),
/// and so are confederation segments after an ordinary one: RFC 5065 only
/// ever prepends them, and refusing the other order keeps the AS4_PATH
/// merge below unambiguous.
pub(crate) fn decode(value: &[u8], four: bool) -> Result<Vec<AsPathSegment>, DecodeError> {
    let mut r = Reader::new(value);
    let mut out: Vec<AsPathSegment> = Vec::new();
    while !r.is_empty() {
        let (Some(code), Some(count)) = (r.u8(), r.u8()) else {
            return Err(malformed());
        };
        let kind = SegmentKind::from_code(code).ok_or_else(malformed)?;
        if count == 0 || (kind.is_confed() && out.iter().any(|s| !s.kind.is_confed())) {
            return Err(malformed());
        }
        let mut asns = Vec::with_capacity(count as usize);
        for _ in 0..count {
            let asn = if four {
                r.u32()
            } else {
                r.u16().map(u32::from)
            };
            asns.push(asn.ok_or_else(malformed)?);
        }
        out.push(AsPathSegment { kind, asns });
    }
    Ok(out)
}

/// Encodes segments with `four`-byte AS numbers, mapping numbers that do
/// not fit two bytes to AS_TRANS. Segments longer than 255 ASes are split,
/// because the count field is one byte.
pub(crate) fn encode(segments: &[AsPathSegment], four: bool, out: &mut Vec<u8>) {
    for seg in segments {
        for chunk in seg.asns.chunks(255) {
            out.push(seg.kind.code());
            out.push(chunk.len() as u8);
            for &asn in chunk {
                if four {
                    put_u32(out, asn);
                } else {
                    put_u16(out, u16::try_from(asn).unwrap_or(AS_TRANS));
                }
            }
        }
    }
}

/// Whether a 2-byte session must carry an AS4_PATH for these segments.
pub(crate) fn needs_as4(segments: &[AsPathSegment]) -> bool {
    segments
        .iter()
        .filter(|s| !s.kind.is_confed())
        .any(|s| s.asns.iter().any(|&a| a > u32::from(u16::MAX)))
}

/// The AS4_PATH to send beside a 2-byte AS_PATH: the whole path without
/// confederation segments, which RFC 6793 forbids in AS4_PATH.
pub(crate) fn as4_segments(segments: &[AsPathSegment]) -> Vec<AsPathSegment> {
    segments
        .iter()
        .filter(|s| !s.kind.is_confed())
        .cloned()
        .collect()
}

/// Rebuilds the real path from a 2-byte AS_PATH and an AS4_PATH (RFC 6793
/// §4.2.3): if the AS4_PATH is longer it is ignored; otherwise the leading
/// ASes the AS4_PATH does not cover come from AS_PATH and the rest from
/// AS4_PATH. Leading confederation segments always come from AS_PATH.
pub(crate) fn merge(path: Vec<AsPathSegment>, as4: Vec<AsPathSegment>) -> Vec<AsPathSegment> {
    let n: usize = path.iter().map(AsPathSegment::path_len).sum();
    let m: usize = as4.iter().map(AsPathSegment::path_len).sum();
    if as4.iter().any(|s| s.kind.is_confed()) || n < m {
        return path;
    }
    let mut budget = n - m;
    let mut out = Vec::new();
    for seg in path {
        if seg.kind.is_confed() {
            out.push(seg);
            continue;
        }
        let take = seg.path_len().min(budget);
        if take == 0 {
            break;
        }
        budget -= take;
        if seg.kind == SegmentKind::Sequence && take < seg.asns.len() {
            out.push(AsPathSegment {
                kind: seg.kind,
                asns: seg.asns[..take].to_vec(),
            });
            break;
        }
        out.push(seg);
    }
    out.extend(as4);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(asns: &[u32]) -> AsPathSegment {
        AsPathSegment {
            kind: SegmentKind::Sequence,
            asns: asns.to_vec(),
        }
    }

    #[test]
    fn two_and_four_byte_encodings() {
        let path = vec![
            seq(&[64512, 4_200_000_000]),
            AsPathSegment {
                kind: SegmentKind::Set,
                asns: vec![1, 2],
            },
        ];
        let mut four = Vec::new();
        encode(&path, true, &mut four);
        assert_eq!(decode(&four, true), Ok(path.clone()));
        let mut two = Vec::new();
        encode(&path, false, &mut two);
        assert_eq!(two, [2, 2, 0xfc, 0, 0x5b, 0xa0, 1, 2, 0, 1, 0, 2]);
        assert!(needs_as4(&path));
        let merged = merge(decode(&two, false).unwrap(), as4_segments(&path));
        assert_eq!(merged, path);
    }

    #[test]
    fn merge_keeps_leading_ases_and_ignores_a_longer_as4_path() {
        let merged = merge(vec![seq(&[1, 2, AS_TRANS as u32])], vec![seq(&[70000])]);
        assert_eq!(merged, vec![seq(&[1, 2]), seq(&[70000])]);
        let ignored = merge(vec![seq(&[1])], vec![seq(&[70000, 70001])]);
        assert_eq!(ignored, vec![seq(&[1])]);
    }

    #[test]
    fn malformed_paths_are_refused() {
        for bad in [&[2u8, 0][..], &[9, 1, 0, 1], &[2, 2, 0, 1], &[2]] {
            assert_eq!(decode(bad, false).unwrap_err().subcode, 11, "{bad:?}");
        }
        assert!(decode(&[2, 1, 0, 1, 3, 1, 0, 2], false).is_err());
        assert!(decode(&[3, 1, 0, 1, 2, 1, 0, 2], false).is_ok());
    }
}
