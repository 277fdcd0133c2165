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
//! varint K                  keys (0 for an empty row)
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
//! residual is the zig-zag of `packets - ⌊bytes × (P / B)⌋` (in `f64`,
//! saturating), where `P` and `B` are the key's packets and bytes so far in
//! the row (its mean packet size), each summed saturating at 2^64 - 1. A
//! block's width is that of its largest residual, so a burst widens 16
//! values, not the row. Every value decoded is checked: slots within the
//! row, runs adding up, keys in order, values within 64 bits, widths of at
//! most 66 bits, no bytes after the stream. A read of part of a row
//! decodes the keys' values up to its last wanted slot and skips the blocks
//! past it by their widths (their values unchecked: they are not read).
//!
//! Why these choices, measured on the bench's traffic: runs rather than a
//! slot per sample because most keys have every slot or a few; differences
//! rather than values because a 5-minute count moves by a fraction of
//! itself; blocks of 16 because a daily curve spans several widths over a
//! day and a width per block costs under half a bit per value.

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

/// The packets expected of `bytes` at the key's mean packet size so far
/// in the row (`packets_so_far / bytes_so_far`). In `f64`: IEEE 754
/// multiplication, division and the saturating conversions are exact
/// functions of their inputs on every platform, so writer and reader
/// predict the same; a 128-bit division per sample cost four times as
/// much.
fn predicted_packets(bytes: u64, (packets_so_far, bytes_so_far): (u64, u64)) -> u64 {
    (bytes as f64 * (packets_so_far as f64 / bytes_so_far.max(1) as f64)) as u64
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
    // The row's keys, sorted: few (a tenant's realms × directions ×
    // bands × sources), so each key's series is a pass over the row.
    let mut keys: Vec<UsageKey> = Vec::with_capacity(8);
    for s in samples {
        if let Err(i) = keys.binary_search(&s.key) {
            keys.insert(i, s.key);
        }
    }
    out.push(FORMAT);
    put_varint(out, keys.len() as u64);
    let mut one: Vec<&Sample> = Vec::with_capacity(samples.len());
    let mut runs = Vec::new();
    for &key in &keys {
        one.clear();
        one.extend(samples.iter().filter(|s| s.key == key));
        put_varint(out, u64::from(key.realm.0));
        out.push(key.source.code() << 3 | key.direction.code() << 2 | key.band.code());
        // Runs: absent, present, absent, ... from the row's first slot.
        runs.clear();
        let mut at = 0i64;
        for present in one.chunk_by(|a, b| b.slot.0 == a.slot.0 + 1) {
            let offset = present[0].slot.0 - first;
            debug_assert!((0..slots).contains(&offset));
            runs.push((offset - at) as u64);
            runs.push(present.len() as u64);
            at = offset + present.len() as i64;
        }
        put_varint(out, runs.len() as u64);
        for &r in &runs {
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
    let mut residuals = Vec::with_capacity(samples.len());
    for &key in &keys {
        one.clear();
        one.extend(samples.iter().filter(|s| s.key == key));
        residuals.clear();
        residuals.extend(
            one.windows(2)
                .map(|p| zigzag(i128::from(p[1].bytes) - i128::from(p[0].bytes))),
        );
        put_blocks(&mut w, &residuals);
        residuals.clear();
        let mut so_far = (one[0].packets, one[0].bytes);
        for s in &one[1..] {
            let expected = predicted_packets(s.bytes, so_far);
            residuals.push(zigzag(i128::from(s.packets) - i128::from(expected)));
            so_far = (
                so_far.0.saturating_add(s.packets),
                so_far.1.saturating_add(s.bytes),
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
        // The usual case: one unaligned load.
        if width <= 56 {
            if let Some(window) = self.blob.get(self.at..self.at + 8) {
                let mut w = [0u8; 8];
                w.copy_from_slice(window);
                let v = (u64::from_le_bytes(w) >> self.bit) & ((1u64 << width) - 1);
                let consumed = self.bit + width;
                self.at += (consumed / 8) as usize;
                self.bit = consumed % 8;
                return Ok(u128::from(v));
            }
        }
        let mut v = 0u128;
        let mut got = 0;
        while got < width {
            // Up to 56 bits at a time from a little-endian window.
            let take = (width - got).min(56);
            let end = self.at + ((self.bit + take) as usize).div_ceil(8);
            if end > self.blob.len() {
                return Err(self.short());
            }
            let mut window = [0u8; 8];
            let avail = (self.blob.len() - self.at).min(8);
            window[..avail].copy_from_slice(&self.blob[self.at..self.at + avail]);
            let chunk = (u64::from_le_bytes(window) >> self.bit) & ((1u64 << take) - 1);
            v |= u128::from(chunk) << got;
            got += take;
            let consumed = self.bit + take;
            self.at += (consumed / 8) as usize;
            self.bit = consumed % 8;
        }
        Ok(v)
    }

    /// `n` values written by [`put_blocks`], of which only the first
    /// `keep` are wanted: blocks wholly past them are skipped by their
    /// width, not read (so `out` may hold fewer than `n`).
    fn blocks(&mut self, n: usize, keep: usize, out: &mut Vec<u128>) -> Result<(), StoreError> {
        out.clear();
        let mut start = 0;
        while start < n {
            let width = self.bits(7)? as u32;
            if width > MAX_WIDTH {
                return Err(corrupt(format!(
                    "a block of width {width} (at most {MAX_WIDTH})"
                )));
            }
            let len = BLOCK.min(n - start);
            if start < keep {
                for _ in 0..len {
                    out.push(self.bits(width)?);
                }
            } else {
                let skip = u64::from(width) * len as u64;
                let to = (self.at as u64 * 8 + u64::from(self.bit)).saturating_add(skip);
                if to > self.blob.len() as u64 * 8 {
                    return Err(self.short());
                }
                self.at = (to / 8) as usize;
                self.bit = (to % 8) as u32;
            }
            start += len;
        }
        Ok(())
    }
}

/// One key's series: its samples are `start..end` of the decoder's flat
/// offsets, bytes and packets.
struct Series {
    key: UsageKey,
    start: usize,
    end: usize,
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
        return Err(corrupt(format!(
            "{count} keys in a blob of {} bytes",
            blob.len()
        )));
    }
    let mut all: Vec<Series> = Vec::with_capacity(count as usize);
    // The row's slot offsets per key, ascending; values in the same places.
    let mut offsets: Vec<u16> = Vec::new();
    let mut bytes: Vec<u64> = Vec::new();
    let mut packets: Vec<u64> = Vec::new();
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
        let start = offsets.len();
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
        bytes.resize(start, 0);
        bytes.push(r.varint()?);
        packets.resize(start, 0);
        packets.push(r.varint()?);
        all.push(Series {
            key,
            start,
            end: offsets.len(),
        });
    }
    bytes.resize(offsets.len(), 0);
    packets.resize(offsets.len(), 0);
    let hi = (to.0.saturating_sub(first)).clamp(0, slots);
    let mut residuals = Vec::new();
    for s in &all {
        let n = s.end - s.start - 1;
        // Values of slots at or past `to` are not wanted (the first is
        // value 0, in the header).
        let wanted = offsets[s.start..s.end].partition_point(|&o| i64::from(o) < hi);
        let keep = wanted.saturating_sub(1);
        r.blocks(n, keep, &mut residuals)?;
        for (i, &z) in (s.start + 1..).zip(&residuals) {
            let v = i128::from(bytes[i - 1]) + unzigzag(z);
            bytes[i] = u64::try_from(v)
                .map_err(|_| corrupt(format!("{}: bytes {v} out of 0..2^64", s.key)))?;
        }
        r.blocks(n, keep, &mut residuals)?;
        let mut so_far = (packets[s.start], bytes[s.start]);
        for (i, &z) in (s.start + 1..).zip(&residuals) {
            let v = i128::from(predicted_packets(bytes[i], so_far)) + unzigzag(z);
            packets[i] = u64::try_from(v)
                .map_err(|_| corrupt(format!("{}: packets {v} out of 0..2^64", s.key)))?;
            so_far = (
                so_far.0.saturating_add(packets[i]),
                so_far.1.saturating_add(bytes[i]),
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
    let lo = (from.0.saturating_sub(first)).clamp(0, slots);
    let mut cursor: Vec<usize> = all
        .iter()
        .map(|s| s.start + offsets[s.start..s.end].partition_point(|&o| i64::from(o) < lo))
        .collect();
    for offset in lo..hi {
        for (s, c) in all.iter().zip(&mut cursor) {
            if *c < s.end && i64::from(offsets[*c]) == offset {
                out.push(Sample {
                    slot: Slot(first + offset),
                    key: s.key,
                    bytes: bytes[*c],
                    packets: packets[*c],
                });
                *c += 1;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(realm: u16, direction: Direction, band: Band, source: Source) -> UsageKey {
        UsageKey {
            tenant: TenantId(7),
            realm: RealmId(realm),
            direction,
            band,
            source,
        }
    }

    /// Sorted by slot then key, as writers keep them.
    fn sorted(mut samples: Vec<Sample>) -> Vec<Sample> {
        samples.sort_by_key(|s| (s.slot, s.key));
        samples
    }

    fn round_trip(first: i64, slots: i64, samples: &[Sample]) -> Vec<u8> {
        let refs: Vec<&Sample> = samples.iter().collect();
        let mut blob = Vec::new();
        encode(first, slots, &refs, &mut blob);
        let mut back = Vec::new();
        let all = (Slot(i64::MIN), Slot(i64::MAX));
        decode((first, slots), TenantId(7), &blob, all, &mut back).unwrap();
        assert_eq!(back, samples);
        // Every slot filter keeps exactly the samples inside it.
        for (from, to) in [
            (first + 3, first + 7),
            (first - 5, first + 1),
            (first + 11, i64::MAX),
        ] {
            back.clear();
            decode(
                (first, slots),
                TenantId(7),
                &blob,
                (Slot(from), Slot(to)),
                &mut back,
            )
            .unwrap();
            let inside: Vec<Sample> = samples
                .iter()
                .filter(|s| (from..to).contains(&s.slot.0))
                .copied()
                .collect();
            assert_eq!(back, inside, "[{from}, {to})");
        }
        blob
    }

    #[test]
    fn a_day_of_steady_traffic_takes_a_few_bytes_a_sample() {
        let first = 20_000 * 288;
        let keys = [
            key(1, Direction::Down, Band::Whole, Source::Kernel),
            key(1, Direction::Up, Band::Whole, Source::Kernel),
            key(2, Direction::Down, Band::Whole, Source::Kernel),
            key(2, Direction::Up, Band::Whole, Source::Flow),
        ];
        let mut samples = Vec::new();
        for slot in 0..288i64 {
            for (i, &k) in keys.iter().enumerate() {
                // About 30 MB per 5 minutes with ±10% wobble, packets at
                // about 1,000 bytes.
                let wobble = (slot * 7919 + i as i64 * 104_729) % 6_000_000;
                let bytes = (27_000_000 + wobble) as u64;
                samples.push(Sample {
                    slot: Slot(first + slot),
                    key: k,
                    bytes,
                    packets: bytes / 1_000 + (slot % 37) as u64,
                });
            }
        }
        let samples = sorted(samples);
        let blob = round_trip(first, 288, &samples);
        let per_sample = blob.len() as f64 / samples.len() as f64;
        // Format 1 takes about 10 bytes for these.
        assert!(per_sample < 5.0, "{per_sample:.2} bytes a sample");
    }

    #[test]
    fn gaps_extremes_and_every_key_field_round_trip() {
        let first = -3 * 12;
        let keys = [
            key(0, Direction::Down, Band::Whole, Source::Kernel),
            key(0, Direction::Down, Band::Bulk, Source::Flow),
            key(300, Direction::Up, Band::Interactive, Source::Kernel),
            key(u16::MAX, Direction::Up, Band::Normal, Source::Flow),
        ];
        let values = [
            (0, 0),
            (u64::MAX, u64::MAX),
            (1, u64::MAX),
            (u64::MAX, 0),
            (5, 3),
            (0, 1),
        ];
        let mut samples = Vec::new();
        for (i, &k) in keys.iter().enumerate() {
            // Each key a different pattern of slots: all, every other,
            // only the last, the first and last.
            let slots: Vec<i64> = match i {
                0 => (0..12).collect(),
                1 => (0..12).step_by(2).collect(),
                2 => vec![11],
                _ => vec![0, 11],
            };
            for (j, s) in slots.into_iter().enumerate() {
                let (bytes, packets) = values[(i + j) % values.len()];
                samples.push(Sample {
                    slot: Slot(first + s),
                    key: k,
                    bytes,
                    packets,
                });
            }
        }
        round_trip(first, 12, &sorted(samples));
        // No samples at all: a row of no keys.
        assert_eq!(round_trip(first, 12, &[]), [FORMAT, 0]);
    }

    #[test]
    fn corrupt_blobs_are_errors_never_panics() {
        let first = 0;
        let k = key(1, Direction::Up, Band::Whole, Source::Kernel);
        let samples: Vec<Sample> = (0..40)
            .map(|s| Sample {
                slot: Slot(s * 7),
                key: k,
                bytes: 1_000_000 + s as u64 * 99_991,
                packets: 700 + s as u64,
            })
            .collect();
        let refs: Vec<&Sample> = samples.iter().collect();
        let mut blob = Vec::new();
        encode(first, 288, &refs, &mut blob);
        let all = (Slot(i64::MIN), Slot(i64::MAX));
        let decode = |b: &[u8]| decode((first, 288), TenantId(7), b, all, &mut Vec::new());
        decode(&blob).unwrap();
        // Every truncation and every single-bit flip: an error or other
        // samples, never a panic.
        for cut in 0..blob.len() {
            assert!(decode(&blob[..cut]).is_err(), "cut at {cut}");
        }
        for i in 1..blob.len() {
            for bit in 0..8 {
                let mut b = blob.clone();
                b[i] ^= 1 << bit;
                let _ = decode(&b);
            }
        }
        // Named problems.
        let expect = |b: &[u8], what: &str| {
            let e = decode(b).unwrap_err().to_string();
            assert!(e.contains(what), "{what}: {e}");
        };
        let mut extra = blob.clone();
        extra.push(0);
        expect(&extra, "after the last value");
        // Two keys out of order: realm 2 before realm 1.
        expect(
            &[FORMAT, 2, 2, 0, 2, 0, 1, 5, 1, 1, 0, 0, 2, 0, 1, 5, 1, 0],
            "sorted, each once",
        );
        // A run past the row's end; an empty present run; odd run counts.
        expect(&[FORMAT, 1, 1, 0, 2, 0x98, 0x02, 20, 5, 1, 0], "a run of");
        expect(&[FORMAT, 1, 1, 0, 2, 0, 0, 5, 1], "a run of");
        expect(&[FORMAT, 1, 1, 0, 1, 0, 5, 1], "runs of slots");
        // One key with two samples of 5 bytes and 1 packet first, then
        // the bit stream `bits` (value, width).
        let two = |bits: &[(u128, u32)]| {
            let mut b = vec![FORMAT, 1, 1, 0, 2, 0, 2, 5, 1];
            let mut w = BitWriter {
                out: &mut b,
                acc: 0,
                bits: 0,
            };
            for &(v, width) in bits {
                w.put(v, width);
            }
            w.finish();
            b
        };
        let fine = two(&[(4, 7), (zigzag(-5), 4), (0, 7), (0, 0)]);
        let mut back = Vec::new();
        super::decode((first, 288), TenantId(7), &fine, all, &mut back).unwrap();
        assert_eq!((back[1].bytes, back[1].packets), (0, 0));
        // A block wider than 66 bits.
        expect(&two(&[(127, 7), (0, 64)]), "width 127");
        // A residual below zero bytes: 5 bytes then -6.
        expect(&two(&[(4, 7), (zigzag(-6), 4), (0, 7)]), "out of 0..2^64");
        expect(
            &[FORMAT, 1, 1, 0x10, 2, 0, 1, 5, 1],
            "bits above the source",
        );
        expect(&[FORMAT, 200, 1], "keys in a blob");
    }
}
