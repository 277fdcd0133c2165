//! Format 2 of the packed sample rows (`samples`, `samples_days`): one
//! series per key, its values as differences, bit-packed.
//!
//! Format 1 ([`super::codec`]) spent 9 to 11 bytes on a sample: its slot,
//! realm and key byte, then bytes and packets as varints. A row holds a
//! few keys' series over 12 or 288 slots, so most of that repeats, and
//! traffic counts of one key move together: bytes change by a fraction
//! from one slot to the next, and packets follow bytes at the key's
//! packet size. Format 2 writes each key once, which slots it has as runs,
//! and each value as what a prediction missed.
//!
//! # Layout
//!
//! ```text
//! 0x02                      the format
//! varint K                  keys, 1 ..
//! K × key header:           sorted by key (realm, direction, band, source)
//!   varint realm, byte code   as in format 1: source << 3 | direction << 2 | band
//!   varint R, R × varint      runs of the row's slots, absent then present
//!                             alternately, from slot 0; the first may be 0
//!   varint, varint            the first sample's bytes and packets
//! bit stream, to the end:   per key, in the same order, its other n - 1
//!                           samples' bytes residuals, then their packets
//!                           residuals, each in blocks of 16 values: a 7-bit
//!                           width w, then each value in w bits (LSB first);
//!                           the last byte padded with zero bits
//! ```
//!
//! A bytes residual is the zig-zag of `bytes - previous bytes` (so a
//! steady series costs a few bits, a zero residual none); a packets
//! residual is the zig-zag of `packets - bytes × P / B`, where `P` and `B`
//! are the key's packets and bytes so far in the row (its mean packet
//! size). A block's width is that of its largest residual, so a burst
//! widens 16 values, not the row. Every value decoded is checked: slots
//! within the row, runs adding up, keys in order, values within 64 bits,
//! widths of at most 66 bits, no bytes after the stream.

use crate::error::StoreError;
use accounting::{Band, Direction, Sample, Slot, Source, UsageKey};
use net_types::{RealmId, TenantId};

/// The format byte.
pub(super) const FORMAT: u8 = 2;

/// Values per bit-packed block: each block states its width in 7 bits.
const BLOCK: usize = 16;

/// The widest residual: a difference of two u64 values, zig-zagged.
const MAX_WIDTH: u32 = 66;

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i128) -> u128 {
    ((v << 1) ^ (v >> 127)) as u128
}

fn unzigzag(v: u128) -> i128 {
    (v >> 1) as i128 ^ -((v & 1) as i128)
}

/// The packets expected of `bytes` at the mean packet size so far
/// (`packets_so_far / bytes_so_far`); saturating, so that writer and
/// reader compute the same for any values.
fn predicted_packets(bytes: u64, (packets_so_far, bytes_so_far): (u128, u128)) -> u64 {
    let p = u128::from(bytes).saturating_mul(packets_so_far) / bytes_so_far.max(1);
    u64::try_from(p).unwrap_or(u64::MAX)
}

struct BitWriter<'a> {
    out: &'a mut Vec<u8>,
    acc: u64,
    bits: u32,
}

impl BitWriter<'_> {
    fn put(&mut self, mut v: u128, mut width: u32) {
        while width > 0 {
            let take = width.min(32);
            let chunk = (v & ((1u128 << take) - 1)) as u64;
            self.acc |= chunk << self.bits;
            self.bits += take;
            while self.bits >= 8 {
                self.out.push(self.acc as u8);
                self.acc >>= 8;
                self.bits -= 8;
            }
            v >>= take;
            width -= take;
        }
    }

    fn finish(self) {
        if self.bits > 0 {
            self.out.push(self.acc as u8);
        }
    }
}

/// Writes `values` in blocks of [`BLOCK`].
fn put_blocks(w: &mut BitWriter<'_>, values: &[u128]) {
    for block in values.chunks(BLOCK) {
        let width = block
            .iter()
            .map(|v| 128 - v.leading_zeros())
            .max()
            .unwrap_or(0);
        w.put(u128::from(width), 7);
        for &v in block {
            w.put(v, width);
        }
    }
}

/// Appends one tenant's samples of a row of `slots` slots starting at
/// `first`, sorted by slot then key without a slot and key twice (as every
/// writer keeps them), to `out` in format 2.
pub(super) fn encode(first: i64, slots: i64, samples: &[&Sample], out: &mut Vec<u8>) {
    debug_assert!(
        samples
            .windows(2)
            .all(|w| (w[0].slot, w[0].key) < (w[1].slot, w[1].key)),
        "a row's samples are sorted by slot then key, each once"
    );
    // By key, then slot: each key's series.
    let mut by_key: Vec<&Sample> = samples.to_vec();
    by_key.sort_by_key(|s| (s.key, s.slot));
    out.push(FORMAT);
    let series: Vec<&[&Sample]> = by_key.chunk_by(|a, b| a.key == b.key).collect();
    put_varint(out, series.len() as u64);
    for one in &series {
        let key = one[0].key;
        put_varint(out, u64::from(key.realm.0));
        out.push(key.source.code() << 3 | key.direction.code() << 2 | key.band.code());
        // Runs: absent, present, absent, ... from the row's first slot.
        let mut runs = Vec::new();
        let mut at = 0i64;
        for present in one.chunk_by(|a, b| b.slot.0 == a.slot.0 + 1) {
            let offset = present[0].slot.0 - first;
            debug_assert!((0..slots).contains(&offset));
            runs.push((offset - at) as u64);
            runs.push(present.len() as u64);
            at = offset + present.len() as i64;
        }
        put_varint(out, runs.len() as u64);
        for r in runs {
            put_varint(out, r);
        }
        put_varint(out, one[0].bytes);
        put_varint(out, one[0].packets);
    }
    let mut w = BitWriter {
        out,
        acc: 0,
        bits: 0,
    };
    let mut residuals = Vec::new();
    for one in &series {
        residuals.clear();
        residuals.extend(
            one.windows(2)
                .map(|p| zigzag(i128::from(p[1].bytes) - i128::from(p[0].bytes))),
        );
        put_blocks(&mut w, &residuals);
        residuals.clear();
        let mut so_far = (u128::from(one[0].packets), u128::from(one[0].bytes));
        for s in &one[1..] {
            let expected = predicted_packets(s.bytes, so_far);
            residuals.push(zigzag(i128::from(s.packets) - i128::from(expected)));
            so_far = (
                so_far.0.saturating_add(u128::from(s.packets)),
                so_far.1.saturating_add(u128::from(s.bytes)),
            );
        }
        put_blocks(&mut w, &residuals);
    }
    w.finish();
}

/// Reads a format 2 blob; every failure names the problem (the caller
/// adds the table and row).
struct Reader<'a> {
    blob: &'a [u8],
    at: usize,
    /// Bits of `blob[at]` already read by the bit reader.
    bit: u32,
}

fn corrupt(problem: impl Into<String>) -> StoreError {
    StoreError::corrupt("", problem)
}

impl Reader<'_> {
    fn short(&self) -> StoreError {
        corrupt(format!("blob ends inside an entry at byte {}", self.at))
    }

    fn byte(&mut self) -> Result<u8, StoreError> {
        let b = *self.blob.get(self.at).ok_or_else(|| self.short())?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                break;
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(corrupt("varint wider than 64 bits"))
    }

    /// `width` bits (at most 128), least significant first.
    fn bits(&mut self, width: u32) -> Result<u128, StoreError> {
        let mut v = 0u128;
        let mut got = 0;
        while got < width {
            let b = *self.blob.get(self.at).ok_or_else(|| self.short())?;
            let take = (8 - self.bit).min(width - got);
            let chunk = (b >> self.bit) & ((1u16 << take) - 1) as u8;
            v |= u128::from(chunk) << got;
            got += take;
            self.bit += take;
            if self.bit == 8 {
                self.bit = 0;
                self.at += 1;
            }
        }
        Ok(v)
    }

    /// `n` values written by [`put_blocks`].
    fn blocks(&mut self, n: usize, out: &mut Vec<u128>) -> Result<(), StoreError> {
        out.clear();
        while out.len() < n {
            let width = self.bits(7)? as u32;
            if width > MAX_WIDTH {
                return Err(corrupt(format!(
                    "a block of width {width} (at most {MAX_WIDTH})"
                )));
            }
            for _ in 0..BLOCK.min(n - out.len()) {
                out.push(self.bits(width)?);
            }
        }
        Ok(())
    }
}

/// One key's header.
struct Series {
    key: UsageKey,
    /// The row's slot offsets the key has, ascending.
    offsets: Vec<u16>,
    bytes: Vec<u64>,
    packets: Vec<u64>,
}

fn key_of(tenant: TenantId, realm: u64, code: u8) -> Result<UsageKey, StoreError> {
    let realm = u16::try_from(realm)
        .map(RealmId)
        .map_err(|_| corrupt(format!("realm {realm} is not a u16")))?;
    if code >> 4 != 0 {
        return Err(corrupt(format!(
            "key byte {code:#04x} has bits above the source set"
        )));
    }
    let bad = || corrupt(format!("key byte {code:#04x}"));
    Ok(UsageKey {
        tenant,
        realm,
        direction: Direction::from_code(code >> 2 & 1).ok_or_else(bad)?,
        band: Band::from_code(code & 3).ok_or_else(bad)?,
        source: Source::from_code(code >> 3).ok_or_else(bad)?,
    })
}

/// Decodes a format 2 blob of a row of `slots` slots starting at `first`,
/// keeping the samples of slots in `[from, to)`, sorted by slot then key.
/// Errors carry an empty place: the caller names the table and row.
pub(super) fn decode(
    (first, slots): (i64, i64),
    tenant: TenantId,
    blob: &[u8],
    (from, to): (Slot, Slot),
    out: &mut Vec<Sample>,
) -> Result<(), StoreError> {
    let mut r = Reader {
        blob,
        at: 1,
        bit: 0,
    };
    let count = r.varint()?;
    // Every key takes at least 5 bytes: a bound before allocating.
    if count > blob.len() as u64 / 5 {
        return Err(corrupt(format!("{count} keys in a blob of {} bytes", blob.len())));
    }
    let mut all: Vec<Series> = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let realm = r.varint()?;
        let code = r.byte()?;
        let key = key_of(tenant, realm, code)?;
        if let Some(previous) = all.last() {
            if previous.key >= key {
                return Err(corrupt(format!(
                    "key {key} after {}: a row's keys are sorted, each once",
                    previous.key
                )));
            }
        }
        let runs = r.varint()?;
        if runs == 0 || runs % 2 != 0 || runs > 2 * slots as u64 {
            return Err(corrupt(format!("{runs} runs of slots")));
        }
        let mut offsets = Vec::new();
        let mut at = 0u64;
        for i in 0..runs {
            let run = r.varint()?;
            let end = at.saturating_add(run);
            if end > slots as u64 || (i % 2 == 1 && run == 0) {
                return Err(corrupt(format!(
                    "a run of {run} slots from slot {at} in a row of {slots}"
                )));
            }
            if i % 2 == 1 {
                offsets.extend((at..end).map(|o| o as u16));
            }
            at = end;
        }
        let (bytes, packets) = (r.varint()?, r.varint()?);
        all.push(Series {
            key,
            offsets,
            bytes: vec![bytes],
            packets: vec![packets],
        });
    }
    let mut residuals = Vec::new();
    for s in &mut all {
        let n = s.offsets.len() - 1;
        r.blocks(n, &mut residuals)?;
        for &z in &residuals {
            let previous = *s.bytes.last().expect("the first value");
            let v = i128::from(previous) + unzigzag(z);
            let v = u64::try_from(v)
                .map_err(|_| corrupt(format!("{}: bytes {v} out of 0..2^64", s.key)))?;
            s.bytes.push(v);
        }
        r.blocks(n, &mut residuals)?;
        let mut so_far = (u128::from(s.packets[0]), u128::from(s.bytes[0]));
        for (i, &z) in residuals.iter().enumerate() {
            let bytes = s.bytes[i + 1];
            let v = i128::from(predicted_packets(bytes, so_far)) + unzigzag(z);
            let v = u64::try_from(v)
                .map_err(|_| corrupt(format!("{}: packets {v} out of 0..2^64", s.key)))?;
            s.packets.push(v);
            so_far = (
                so_far.0.saturating_add(u128::from(v)),
                so_far.1.saturating_add(u128::from(bytes)),
            );
        }
    }
    // What is left is the last byte's padding: zero bits, nothing after.
    let rest = &blob[r.at.min(blob.len())..];
    let padded = match rest {
        [] => true,
        [last] => r.bit > 0 && last >> r.bit == 0,
        _ => false,
    };
    if !padded {
        return Err(corrupt(format!(
            "{} bytes after the last value",
            rest.len()
        )));
    }
    // Slot by slot, each key's sample of it, in key order.
    let mut cursor = vec![0usize; all.len()];
    let lo = (from.0.saturating_sub(first)).clamp(0, slots);
    let hi = (to.0.saturating_sub(first)).clamp(0, slots);
    for (s, c) in all.iter().zip(&mut cursor) {
        *c = s.offsets.partition_point(|&o| i64::from(o) < lo);
    }
    for offset in lo..hi {
        for (s, c) in all.iter().zip(&mut cursor) {
            if s.offsets.get(*c).is_some_and(|&o| i64::from(o) == offset) {
                out.push(Sample {
                    slot: Slot(first + offset),
                    key: s.key,
                    bytes: s.bytes[*c],
                    packets: s.packets[*c],
                });
                *c += 1;
            }
        }
    }
    Ok(())
}
