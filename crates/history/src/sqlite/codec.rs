//! The packed rows' keys and blobs.
//!
//! A row holds one tenant's hour (or day) of data instead of one sample, so
//! the database has a few rows per tenant per hour instead of one per
//! sample, and one tenant's month is 744 short reads.
//!
//! # Row keys
//!
//! Packed tables use SQLite's integer row id as their key:
//! `time << 32 | tenant`, where `time` is the hour (or day) since the epoch.
//! Ordering by it is ordering by time, then tenant, so an ingest appends at
//! the end of the tree and one hour of every tenant is one contiguous
//! range. A rowid table rather than a `WITHOUT ROWID` one, because its
//! leaves keep payloads of up to 4 kB in the page, while a `WITHOUT ROWID`
//! tree sends anything above about 1 kB (an hour of eight keys) to
//! overflow pages.
//!
//! # Blobs
//!
//! Every blob starts with a format byte. Sample rows (and `hours_by_day`
//! rows whose sums fit in 64 bits) are written in format 2 since schema 9:
//! a series per key with bit-packed differences, described in
//! [`super::series`]; what follows is format 1 ([`FORMAT`]), which the
//! other blobs use and which older sample rows were written in (they still
//! read): sorted entries of LEB128 varints, so a byte count of 5 GB is 5
//! bytes, not 8.
//! - samples of one tenant's hour: slot within the hour (a varint, so one
//!   byte for an hour's 0..12; a day row's 0..288 takes two above 127), realm,
//!   `source << 3 | direction << 2 | band` (1 byte: bits 0–1 the band, bit
//!   2 the direction, bit 3 the source, bits 4–7 zero), bytes, packets;
//!   sorted by slot then key, which is the order [`crate::Store::samples`]
//!   returns. The source bit came later without a new format number: rows
//!   written before it have bit 3 clear, which reads as
//!   [`Source::Kernel`], what they all were. A set bit above bit 3 is
//!   refused as corrupt. A day row (`samples_days`, see
//!   [`crate::Store::compact`]) has the same form, with the slot counting
//!   from the start of the UTC day instead of the hour.
//! - [`RealmTotal`]s of one tenant's hour or day: realm, direction (1 byte),
//!   bytes, packets; sorted by realm then direction.
//! - [`DayHourTotal`]s of one tenant's UTC day (`hours_by_day`), the
//!   day's hourly rollup rows in one: per hour with traffic, the hour of
//!   the day (1 byte, `0..24`), its number of entries, then its
//!   [`RealmTotal`]s as above; sorted by hour, then realm and direction.
//! - [`TenantTotal`]s of every tenant in one hour or day: the tenant as the
//!   difference to the previous entry's, then bytes and packets down and
//!   up; sorted by tenant.
//!
//! Totals are sums, so their varints may run to 128 bits (19 bytes); a
//! sample's values are at most 64 bits. A varint is the same bytes at any
//! width, so rows written when totals were 64-bit read unchanged.

use crate::error::StoreError;
use crate::store::{checked_sum, TenantTotal};
use accounting::{Band, Direction, Sample, Slot, Source, UsageKey};
use net_types::{RealmId, TenantId};

/// The format of every blob but the samples' (format 2 since schema 9,
/// [`super::series`]; format 1 rows read too). A later one gets a new
/// number, so a build that does not know it says so instead of misreading
/// it.
const FORMAT: u8 = 1;

/// Slots in an hour and hours in a UTC day.
pub(crate) const SLOTS_PER_HOUR: i64 = 12;
pub(crate) const HOURS_PER_DAY: i64 = 24;

/// The row id of `tenant`'s row for hour (or day) `time`. `None` beyond
/// ±2³¹ hours (about 245,000 years), where the shift would overflow.
pub(crate) fn row_id(time: i64, tenant: u32) -> Option<i64> {
    let time = i32::try_from(time).ok()?;
    Some(i64::from(time) << 32 | i64::from(tenant))
}

/// [`row_id`] for data being written: out of range is the input's fault.
pub(crate) fn new_row_id(time: i64, tenant: u32) -> Result<i64, StoreError> {
    row_id(time, tenant).ok_or_else(|| {
        StoreError::invalid(
            "slot",
            format!("hour {time} since the epoch is beyond what the store keeps (±2³¹ hours)"),
        )
    })
}

/// The hour (or day) and tenant of a row id; the inverse of [`row_id`].
pub(crate) fn split_row_id(id: i64) -> (i64, u32) {
    (id >> 32, id as u32)
}

/// The first row id of hour (or day) `time`, clamped to the representable
/// range, for range scans.
pub(crate) fn first_row_id(time: i64) -> i64 {
    time.clamp(i64::from(i32::MIN), i64::from(i32::MAX) + 1)
        .saturating_mul(1 << 32)
}

fn put_varint(out: &mut Vec<u8>, v: u64) {
    put_varint128(out, u128::from(v));
}

fn put_varint128(out: &mut Vec<u8>, mut v: u128) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a blob entry by entry; every method fails with the place named.
struct Reader<'a> {
    blob: &'a [u8],
    at: usize,
    place: &'static str,
}

impl<'a> Reader<'a> {
    fn new(blob: &'a [u8], place: &'static str) -> Result<Reader<'a>, StoreError> {
        match blob.first() {
            Some(&FORMAT) => Ok(Reader { blob, at: 1, place }),
            Some(f) => Err(StoreError::corrupt(
                place,
                format!("unknown blob format {f}"),
            )),
            None => Err(StoreError::corrupt(place, "empty blob")),
        }
    }

    fn more(&self) -> bool {
        self.at < self.blob.len()
    }

    fn short(&self) -> StoreError {
        StoreError::corrupt(
            self.place,
            format!("blob ends inside an entry at byte {}", self.at),
        )
    }

    fn byte(&mut self) -> Result<u8, StoreError> {
        let b = *self.blob.get(self.at).ok_or_else(|| self.short())?;
        self.at += 1;
        Ok(b)
    }

    fn varint(&mut self) -> Result<u64, StoreError> {
        let v = self.varint128()?;
        u64::try_from(v)
            .map_err(|_| StoreError::corrupt(self.place, format!("{v} is wider than 64 bits")))
    }

    /// A varint of up to 128 bits; bits beyond are refused, not dropped.
    /// Inlined: returned through memory, a u128 is written as two halves
    /// and read back whole, which stalls the load (a third of the time of
    /// reading a month of hourly totals).
    #[inline(always)]
    fn varint128(&mut self) -> Result<u128, StoreError> {
        // Nearly every value fits in 63 bits (9 bytes): those are read in
        // a u64, which costs half as much as a u128 (reading a month of
        // hourly totals is mostly this).
        let mut short = 0u64;
        for shift in (0..63).step_by(7) {
            let b = self.byte()?;
            short |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(u128::from(short));
            }
        }
        let mut v = u128::from(short);
        for shift in (63..128).step_by(7) {
            let b = self.byte()?;
            let bits = u128::from(b & 0x7f);
            if bits >> (128 - shift) != 0 {
                break;
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(StoreError::corrupt(
            self.place,
            "varint longer than 128 bits",
        ))
    }

    fn realm(&mut self) -> Result<RealmId, StoreError> {
        let v = self.varint()?;
        u16::try_from(v)
            .map(RealmId)
            .map_err(|_| StoreError::corrupt(self.place, format!("realm {v} is not a u16")))
    }

    fn direction(&mut self, code: u8) -> Result<Direction, StoreError> {
        Direction::from_code(code)
            .ok_or_else(|| StoreError::corrupt(self.place, format!("direction {code}")))
    }

    fn realm_total(&mut self) -> Result<RealmTotal, StoreError> {
        let realm = self.realm()?;
        let code = self.byte()?;
        Ok(RealmTotal {
            realm,
            direction: self.direction(code)?,
            bytes: self.varint128()?,
            packets: self.varint128()?,
        })
    }
}

/// What a packed sample row covers: one hour or one UTC day.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Span {
    /// `samples`: keyed by the hour since the epoch.
    Hour,
    /// `samples_days`: keyed by the day since the epoch.
    Day,
}

impl Span {
    /// How many slots a row holds.
    pub(crate) fn slots(self) -> i64 {
        match self {
            Span::Hour => SLOTS_PER_HOUR,
            Span::Day => SLOTS_PER_HOUR * HOURS_PER_DAY,
        }
    }

    /// The table.
    pub(crate) fn table(self) -> &'static str {
        match self {
            Span::Hour => "samples",
            Span::Day => "samples_days",
        }
    }

    /// For error messages.
    pub(crate) fn place(self) -> &'static str {
        match self {
            Span::Hour => "samples.samples",
            Span::Day => "samples_days.samples",
        }
    }

    /// The hour (day) holding `slot`.
    pub(crate) fn of(self, slot: Slot) -> i64 {
        slot.0.div_euclid(self.slots())
    }
}

/// Appends one tenant's samples of hour (or day, as `span` says) `time`,
/// sorted by slot then key, to `out` as a blob of format 2
/// ([`super::series`]).
pub(crate) fn encode_samples<'s>(
    span: Span,
    time: i64,
    samples: impl IntoIterator<Item = &'s Sample>,
    out: &mut Vec<u8>,
) {
    let samples: Vec<&Sample> = samples.into_iter().collect();
    super::series::encode(time * span.slots(), span.slots(), &samples, out);
}

/// [`encode_samples`] in format 1, what schema 8 and older wrote: for
/// tests and fuzzing, which build old rows.
pub(crate) fn encode_samples_v1<'s>(
    span: Span,
    time: i64,
    samples: impl IntoIterator<Item = &'s Sample>,
    out: &mut Vec<u8>,
) {
    out.push(FORMAT);
    let first = time * span.slots();
    for s in samples {
        put_varint(out, (s.slot.0 - first) as u64);
        put_varint(out, u64::from(s.key.realm.0));
        out.push(s.key.source.code() << 3 | s.key.direction.code() << 2 | s.key.band.code());
        put_varint(out, s.bytes);
        put_varint(out, s.packets);
    }
}

/// The blob's format (its first byte), if it is one of a sample row's.
pub(crate) fn samples_format(blob: &[u8]) -> Option<u8> {
    blob.first()
        .copied()
        .filter(|&f| f == FORMAT || f == super::series::FORMAT)
}

/// Decodes a blob of `encode_samples` (format 2) or of a build before it
/// (format 1), keeping the samples of slots in `[from, to)`, sorted by
/// slot then key. A corrupt blob is an error naming its table and row
/// (the row id, the hour or day and the tenant), never a panic.
pub(crate) fn decode_samples(
    (span, time): (Span, i64),
    tenant: TenantId,
    blob: &[u8],
    range: (Slot, Slot),
    out: &mut Vec<Sample>,
) -> Result<(), StoreError> {
    let kept = out.len();
    let decoded = match blob.first() {
        Some(&super::series::FORMAT) => super::series::decode(
            (time * span.slots(), span.slots()),
            tenant,
            blob,
            range,
            out,
        ),
        _ => decode_samples_v1((span, time), tenant, blob, range, out),
    };
    decoded.map_err(|e| {
        out.truncate(kept);
        match e {
            StoreError::Corrupt { problem, .. } => StoreError::Corrupt {
                place: format!(
                    "{} of row {} ({} {time}, tenant {})",
                    span.place(),
                    row_id(time, tenant.0).map_or("beyond ±2³¹".into(), |id| id.to_string()),
                    match span {
                        Span::Hour => "hour",
                        Span::Day => "day",
                    },
                    tenant.0
                ),
                problem,
            },
            other => other,
        }
    })
}

/// Format 1: entry by entry. A row out of slot and key order (or with a
/// slot and key twice) is refused as corrupt: every writer sorts it.
fn decode_samples_v1(
    (span, time): (Span, i64),
    tenant: TenantId,
    blob: &[u8],
    (from, to): (Slot, Slot),
    out: &mut Vec<Sample>,
) -> Result<(), StoreError> {
    let mut r = Reader::new(blob, span.place())?;
    let first = time * span.slots();
    let mut previous: Option<(u64, UsageKey)> = None;
    while r.more() {
        let offset = r.varint()?;
        if offset >= span.slots() as u64 {
            return Err(StoreError::corrupt(
                r.place,
                format!("slot {offset} of a row of {} slots", span.slots()),
            ));
        }
        if let Some((p, _)) = previous {
            if offset < p {
                return Err(StoreError::corrupt(
                    r.place,
                    format!("slot {offset} after slot {p}: a row is sorted by slot"),
                ));
            }
        }
        let slot = Slot(first + offset as i64);
        let realm = r.realm()?;
        let code = r.byte()?;
        if code >> 4 != 0 {
            return Err(StoreError::corrupt(
                r.place,
                format!("key byte {code:#04x} has bits above the source set"),
            ));
        }
        let direction = r.direction(code >> 2 & 1)?;
        let band = Band::from_code(code & 3).ok_or_else(|| r.short())?;
        let source = Source::from_code(code >> 3).ok_or_else(|| r.short())?;
        let key = UsageKey {
            tenant,
            realm,
            direction,
            band,
            source,
        };
        if let Some(p) = previous {
            if (offset, key) <= p {
                return Err(StoreError::corrupt(
                    r.place,
                    format!(
                        "{key} after {} in slot {offset}: a slot's keys are sorted, each once",
                        p.1
                    ),
                ));
            }
        }
        previous = Some((offset, key));
        let (bytes, packets) = (r.varint()?, r.varint()?);
        if slot >= to {
            // Sorted by slot: nothing later is wanted.
            break;
        }
        if slot >= from {
            out.push(Sample {
                slot,
                key,
                bytes,
                packets,
            });
        }
    }
    Ok(())
}

/// One tenant's bytes and packets to one realm in one direction, over an
/// hour or a day, summed over bands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RealmTotal {
    pub realm: RealmId,
    pub direction: Direction,
    pub bytes: u128,
    pub packets: u128,
}

/// Adds `add` into `into`, keeping it sorted by realm then direction.
/// Sums of stored samples cannot reach 2^128; one that would comes from a
/// corrupt stored total and is refused.
pub(crate) fn add_realm_totals(
    into: &mut Vec<RealmTotal>,
    add: &[RealmTotal],
) -> Result<(), StoreError> {
    for a in add {
        match into.binary_search_by_key(&(a.realm, a.direction), |t| (t.realm, t.direction)) {
            Ok(i) => {
                into[i].bytes = checked_sum(into[i].bytes, a.bytes, "bytes")?;
                into[i].packets = checked_sum(into[i].packets, a.packets, "packets")?;
            }
            Err(i) => into.insert(i, *a),
        }
    }
    Ok(())
}

fn put_realm_total(out: &mut Vec<u8>, t: &RealmTotal) {
    put_varint(out, u64::from(t.realm.0));
    out.push(t.direction.code());
    put_varint128(out, t.bytes);
    put_varint128(out, t.packets);
}

pub(crate) fn encode_realm_totals(totals: &[RealmTotal], out: &mut Vec<u8>) {
    out.push(FORMAT);
    for t in totals {
        put_realm_total(out, t);
    }
}

pub(crate) fn decode_realm_totals(
    blob: &[u8],
    place: &'static str,
    out: &mut Vec<RealmTotal>,
) -> Result<(), StoreError> {
    let mut r = Reader::new(blob, place)?;
    while r.more() {
        out.push(r.realm_total()?);
    }
    Ok(())
}

/// One entry of a tenant's day of hourly totals (`hours_by_day`): the
/// hour's [`RealmTotal`] of one realm and direction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DayHourTotal {
    /// The hour within its UTC day, `0..24`.
    pub hour: u8,
    /// What the hourly rollup holds for that hour, realm and direction.
    pub total: RealmTotal,
}

/// Adds one hour's `add` into `into` (a day's entries, sorted by hour,
/// realm and direction), keeping the order; sums are checked as in
/// [`add_realm_totals`].
pub(crate) fn add_day_hours(
    into: &mut Vec<DayHourTotal>,
    hour: u8,
    add: &[RealmTotal],
) -> Result<(), StoreError> {
    debug_assert!(i64::from(hour) < HOURS_PER_DAY);
    for a in add {
        let key = (hour, a.realm, a.direction);
        match into.binary_search_by_key(&key, |t| (t.hour, t.total.realm, t.total.direction)) {
            Ok(i) => {
                let t = &mut into[i].total;
                t.bytes = checked_sum(t.bytes, a.bytes, "bytes")?;
                t.packets = checked_sum(t.packets, a.packets, "packets")?;
            }
            Err(i) => into.insert(i, DayHourTotal { hour, total: *a }),
        }
    }
    Ok(())
}

/// Encodes a day's entries, sorted by hour, realm and direction. In the
/// series form of the samples ([`super::series`], format 2: each realm and
/// direction once, its 24 hours as bit-packed differences) when every sum
/// fits in 64 bits, as it does for any real traffic (an hour's 2^64 bytes
/// would be 41 Pbit/s); otherwise in format 1: per hour with any, the
/// hour (one byte), how many entries it has (a varint), then each as in
/// [`encode_realm_totals`].
pub(crate) fn encode_day_hours(totals: &[DayHourTotal], out: &mut Vec<u8>) {
    let as_samples: Option<Vec<Sample>> = totals
        .iter()
        .map(|t| {
            Some(Sample {
                slot: Slot(i64::from(t.hour)),
                key: day_hour_key(t.total.realm, t.total.direction),
                bytes: u64::try_from(t.total.bytes).ok()?,
                packets: u64::try_from(t.total.packets).ok()?,
            })
        })
        .collect();
    if let Some(samples) = as_samples {
        let refs: Vec<&Sample> = samples.iter().collect();
        super::series::encode(0, HOURS_PER_DAY, &refs, out);
    } else {
        encode_day_hours_v1(totals, out);
    }
}

/// [`encode_day_hours`] in format 1 (what schema 8 and older wrote).
pub(crate) fn encode_day_hours_v1(totals: &[DayHourTotal], out: &mut Vec<u8>) {
    out.push(FORMAT);
    for hour in totals.chunk_by(|a, b| a.hour == b.hour) {
        out.push(hour[0].hour);
        put_varint(out, hour.len() as u64);
        for t in hour {
            put_realm_total(out, &t.total);
        }
    }
}

/// The key a day's hourly total is stored under in the series form: the
/// realm and direction, summed over bands and sources (whole, kernel).
fn day_hour_key(realm: RealmId, direction: Direction) -> UsageKey {
    UsageKey {
        tenant: TenantId(0),
        realm,
        direction,
        band: Band::Whole,
        source: Source::Kernel,
    }
}

/// Decodes a blob of [`encode_day_hours`], keeping the entries of the
/// hours of the day in `hours`; the blob after them is not read. Hours out
/// of `0..24`, out of order or without entries, and an hour's entries out
/// of realm and direction order, are refused as corrupt.
pub(crate) fn decode_day_hours(
    blob: &[u8],
    place: &'static str,
    hours: std::ops::Range<u8>,
    out: &mut Vec<DayHourTotal>,
) -> Result<(), StoreError> {
    each_day_hour(blob, place, hours, |t| out.push(t))
}

/// [`decode_day_hours`], handing each entry to `each` in order.
pub(crate) fn each_day_hour(
    blob: &[u8],
    place: &'static str,
    hours: std::ops::Range<u8>,
    mut each: impl FnMut(DayHourTotal),
) -> Result<(), StoreError> {
    if blob.first() == Some(&super::series::FORMAT) {
        let mut samples = Vec::new();
        let range = (Slot(i64::from(hours.start)), Slot(i64::from(hours.end)));
        let day = (0, HOURS_PER_DAY);
        super::series::decode(day, TenantId(0), blob, range, &mut samples).map_err(
            |e| match e {
                StoreError::Corrupt { problem, .. } => StoreError::corrupt(place, problem),
                other => other,
            },
        )?;
        for s in samples {
            if s.key != day_hour_key(s.key.realm, s.key.direction) {
                return Err(StoreError::corrupt(
                    place,
                    format!("{}: an hourly total is of every band and source", s.key),
                ));
            }
            each(DayHourTotal {
                hour: s.slot.0 as u8,
                total: RealmTotal {
                    realm: s.key.realm,
                    direction: s.key.direction,
                    bytes: u128::from(s.bytes),
                    packets: u128::from(s.packets),
                },
            });
        }
        return Ok(());
    }
    let mut r = Reader::new(blob, place)?;
    let mut next = 0u8;
    while r.more() {
        let hour = r.byte()?;
        if i64::from(hour) >= HOURS_PER_DAY {
            return Err(StoreError::corrupt(place, format!("hour {hour} of a day")));
        }
        if hour < next {
            return Err(StoreError::corrupt(
                place,
                format!(
                    "hour {hour} after hour {}: a day is sorted by hour",
                    next - 1
                ),
            ));
        }
        next = hour + 1;
        if hour >= hours.end {
            // Sorted by hour: nothing later is wanted.
            break;
        }
        let count = r.varint()?;
        if count == 0 {
            return Err(StoreError::corrupt(
                place,
                format!("hour {hour} has no entries"),
            ));
        }
        let mut previous = None;
        for _ in 0..count {
            let total = r.realm_total()?;
            // Every writer keeps an hour's entries sorted, each once
            // (`add_day_hours`); the series form needs them so.
            let key = (total.realm, total.direction);
            if previous.is_some_and(|p| p >= key) {
                return Err(StoreError::corrupt(
                    place,
                    format!(
                        "hour {hour}: realm {} {:?} out of order or twice",
                        key.0 .0, key.1
                    ),
                ));
            }
            previous = Some(key);
            if hour >= hours.start {
                each(DayHourTotal { hour, total });
            }
        }
    }
    Ok(())
}

/// Adds one tenant's figures into another's (the same tenant's).
pub(crate) fn add_tenant_total(
    into: &mut TenantTotal,
    add: &TenantTotal,
) -> Result<(), StoreError> {
    into.add(Direction::Down, add.down_bytes, add.down_packets)?;
    into.add(Direction::Up, add.up_bytes, add.up_packets)?;
    into.exact &= add.exact;
    Ok(())
}

/// Adds `add` into `into`, both sorted by tenant, keeping the order.
pub(crate) fn add_tenant_totals(
    into: &mut Vec<TenantTotal>,
    add: &[TenantTotal],
) -> Result<(), StoreError> {
    let mut merged = Vec::with_capacity(into.len().max(add.len()));
    let (mut i, mut j) = (0, 0);
    loop {
        match (into.get(i), add.get(j)) {
            (Some(x), Some(y)) if x.tenant == y.tenant => {
                let mut sum = *x;
                add_tenant_total(&mut sum, y)?;
                merged.push(sum);
                (i, j) = (i + 1, j + 1);
            }
            (Some(x), Some(y)) if x.tenant < y.tenant => {
                merged.push(*x);
                i += 1;
            }
            (Some(x), None) => {
                merged.push(*x);
                i += 1;
            }
            (_, Some(y)) => {
                merged.push(*y);
                j += 1;
            }
            (None, None) => break,
        }
    }
    *into = merged;
    Ok(())
}

/// Encodes totals sorted by tenant (each tenant once).
pub(crate) fn encode_tenant_totals(totals: &[TenantTotal], out: &mut Vec<u8>) {
    out.push(FORMAT);
    let mut previous = 0u32;
    for t in totals {
        debug_assert!(t.tenant.0 >= previous, "tenant totals must be sorted");
        put_varint(out, u64::from(t.tenant.0.wrapping_sub(previous)));
        previous = t.tenant.0;
        for v in [t.down_bytes, t.up_bytes, t.down_packets, t.up_packets] {
            put_varint128(out, v);
        }
    }
}

pub(crate) fn decode_tenant_totals(
    blob: &[u8],
    place: &'static str,
    mut each: impl FnMut(TenantTotal),
) -> Result<(), StoreError> {
    let mut r = Reader::new(blob, place)?;
    let mut tenant = 0u32;
    while r.more() {
        let step = r.varint()?;
        tenant = u32::try_from(step)
            .ok()
            .and_then(|step| tenant.checked_add(step))
            .ok_or_else(|| {
                StoreError::corrupt(place, format!("tenant {tenant} + {step} is not a u32"))
            })?;
        each(TenantTotal {
            down_bytes: r.varint128()?,
            up_bytes: r.varint128()?,
            down_packets: r.varint128()?,
            up_packets: r.varint128()?,
            ..TenantTotal::new(TenantId(tenant))
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(slot: i64, realm: u16, direction: Direction, band: Band, bytes: u64) -> Sample {
        Sample {
            slot: Slot(slot),
            key: UsageKey {
                tenant: TenantId(7),
                realm: RealmId(realm),
                direction,
                band,
                source: Source::Kernel,
            },
            bytes,
            packets: bytes / 3,
        }
    }

    #[test]
    fn the_source_is_bit_3_and_old_rows_read_as_kernel() {
        let hour = 500_000;
        let s0 = hour * SLOTS_PER_HOUR;
        // A row as written before sources: format 1, slot 2, realm 1,
        // `direction << 2 | band` = up, normal, 100 bytes, 1 packet.
        let old = [FORMAT, 2, 1, 1 << 2 | 2, 100, 1];
        let mut back = Vec::new();
        let all = (Slot(i64::MIN), Slot(i64::MAX));
        decode_samples((Span::Hour, hour), TenantId(7), &old, all, &mut back).unwrap();
        assert_eq!(
            back,
            [Sample {
                packets: 1,
                ..sample(s0 + 2, 1, Direction::Up, Band::Normal, 100)
            }]
        );
        assert_eq!(back[0].key.source, Source::Kernel);
        // Kernel and flow keys of the same tenant, realm, direction and
        // band: kernel first, the flow one with bit 3 set.
        let kernel = sample(s0, 1, Direction::Down, Band::Bulk, 5);
        let flow = Sample {
            key: UsageKey {
                source: Source::Flow,
                ..kernel.key
            },
            ..kernel
        };
        let mut blob = Vec::new();
        encode_samples_v1(Span::Hour, hour, &[kernel, flow], &mut blob);
        assert_eq!(blob[3], 3, "down bulk kernel");
        assert_eq!(blob[3 + 5], 1 << 3 | 3, "down bulk flow");
        back.clear();
        decode_samples((Span::Hour, hour), TenantId(7), &blob, all, &mut back).unwrap();
        assert_eq!(back, [kernel, flow]);
        // Bits above the source are not a key this build knows.
        for bad in [1u8 << 4, 1 << 7] {
            let mut b = blob.clone();
            b[3] |= bad;
            let e =
                decode_samples((Span::Hour, hour), TenantId(7), &b, all, &mut back).unwrap_err();
            assert!(e.to_string().contains("bits above the source"), "{e}");
        }
    }

    #[test]
    fn row_ids_order_by_time_then_tenant_and_round_trip() {
        let ids = [
            row_id(-2, u32::MAX).unwrap(),
            row_id(-1, 0).unwrap(),
            row_id(0, 5).unwrap(),
            row_id(0, u32::MAX).unwrap(),
            row_id(1, 0).unwrap(),
        ];
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(split_row_id(ids[0]), (-2, u32::MAX));
        assert_eq!(split_row_id(ids[2]), (0, 5));
        assert_eq!(first_row_id(1), ids[4]);
        assert_eq!(row_id(1 << 31, 0), None);
    }

    #[test]
    fn samples_round_trip_and_filter_by_slot() {
        let hour = 500_000;
        let s0 = hour * SLOTS_PER_HOUR;
        let samples = [
            sample(s0, 1, Direction::Down, Band::Whole, 0),
            sample(s0, 300, Direction::Up, Band::Bulk, u64::MAX),
            sample(s0 + 11, 2, Direction::Up, Band::Interactive, 123_456_789),
        ];
        let mut blob = Vec::new();
        encode_samples(Span::Hour, hour, &samples, &mut blob);
        let mut back = Vec::new();
        let all = (Slot(0), Slot(i64::MAX));
        decode_samples((Span::Hour, hour), TenantId(7), &blob, all, &mut back).unwrap();
        assert_eq!(back, samples);
        back.clear();
        decode_samples(
            (Span::Hour, hour),
            TenantId(7),
            &blob,
            (Slot(s0 + 1), Slot(s0 + 12)),
            &mut back,
        )
        .unwrap();
        assert_eq!(back, samples[2..]);
        // A truncated blob, or one of an unknown format, is refused.
        let e = decode_samples(
            (Span::Hour, hour),
            TenantId(7),
            &blob[..blob.len() - 1],
            all,
            &mut back,
        );
        assert!(e.unwrap_err().to_string().contains("ends inside an entry"));
        // A format 1 row out of slot order, or with a key twice, is
        // corrupt, not silently cut short.
        let mut unsorted = Vec::new();
        encode_samples_v1(Span::Hour, hour, [&samples[2], &samples[0]], &mut unsorted);
        let e = decode_samples((Span::Hour, hour), TenantId(7), &unsorted, all, &mut back);
        assert!(e.unwrap_err().to_string().contains("sorted by slot"));
        let mut twice = Vec::new();
        encode_samples_v1(Span::Hour, hour, [&samples[0], &samples[0]], &mut twice);
        let e = decode_samples((Span::Hour, hour), TenantId(7), &twice, all, &mut back);
        let e = e.unwrap_err().to_string();
        assert!(e.contains("sorted, each once"), "{e}");
        // Errors name the table and the row.
        let id = row_id(hour, 7).unwrap();
        assert!(
            e.contains(&format!(
                "samples.samples of row {id} (hour {hour}, tenant 7)"
            )),
            "{e}"
        );
        blob[0] = 9;
        let e = decode_samples((Span::Hour, hour), TenantId(7), &blob, all, &mut back);
        assert!(e.unwrap_err().to_string().contains("unknown blob format 9"));
    }

    #[test]
    fn tenant_totals_merge_and_round_trip() {
        let t = |tenant, down_bytes| TenantTotal {
            down_bytes,
            up_bytes: 1,
            down_packets: 2,
            up_packets: 3,
            ..TenantTotal::new(TenantId(tenant))
        };
        let mut a = vec![t(1, 10), t(4, 40)];
        add_tenant_totals(&mut a, &[t(0, 1), t(4, 2), t(9, 9)]).unwrap();
        assert_eq!(
            a,
            vec![
                t(0, 1),
                t(1, 10),
                TenantTotal {
                    up_bytes: 2,
                    down_packets: 4,
                    up_packets: 6,
                    ..t(4, 42)
                },
                t(9, 9)
            ]
        );
        let mut blob = Vec::new();
        encode_tenant_totals(&a, &mut blob);
        let mut back = Vec::new();
        decode_tenant_totals(&blob, "t", |x| back.push(x)).unwrap();
        assert_eq!(back, a);
    }

    #[test]
    fn varints_round_trip_at_every_width_and_refuse_bits_past_128() {
        let values = [
            0,
            127,
            128,
            (1 << 63) - 1,
            1 << 63,
            u128::from(u64::MAX),
            1 << 64,
            u128::MAX - 1,
            u128::MAX,
        ];
        for v in values {
            let mut blob = vec![FORMAT];
            put_varint128(&mut blob, v);
            let mut r = Reader::new(&blob, "v").unwrap();
            assert_eq!(r.varint128().unwrap(), v);
            assert!(!r.more(), "{v} read to its end");
        }
        // u128::MAX is 19 bytes ending in 0x03; 0x04 there is bit 128.
        let mut blob = vec![FORMAT];
        put_varint128(&mut blob, u128::MAX);
        *blob.last_mut().unwrap() = 0x04;
        let e = Reader::new(&blob, "v").unwrap().varint128().unwrap_err();
        assert!(e.to_string().contains("longer than 128 bits"), "{e}");
        let e = Reader::new(&[FORMAT, 0x80], "v")
            .unwrap()
            .varint128()
            .unwrap_err();
        assert!(e.to_string().contains("ends inside"), "{e}");
    }

    #[test]
    fn day_hours_merge_round_trip_and_refuse_what_no_writer_writes() {
        let r = |realm, direction, bytes| RealmTotal {
            realm: RealmId(realm),
            direction,
            bytes,
            packets: 1,
        };
        let mut day = Vec::new();
        add_day_hours(&mut day, 23, &[r(1, Direction::Up, u128::MAX - 1)]).unwrap();
        add_day_hours(
            &mut day,
            0,
            &[r(2, Direction::Down, 5), r(1, Direction::Up, 1)],
        )
        .unwrap();
        add_day_hours(&mut day, 0, &[r(2, Direction::Down, 5)]).unwrap();
        let at = |hour, total| DayHourTotal { hour, total };
        let expected = vec![
            at(0, r(1, Direction::Up, 1)),
            at(
                0,
                RealmTotal {
                    packets: 2,
                    ..r(2, Direction::Down, 10)
                },
            ),
            at(23, r(1, Direction::Up, u128::MAX - 1)),
        ];
        assert_eq!(day, expected);
        // A sum past 2^128 is refused, not wrapped.
        let e = add_day_hours(&mut day.clone(), 23, &[r(1, Direction::Up, 2)]).unwrap_err();
        assert!(e.to_string().contains("bytes"), "{e}");
        let mut blob = Vec::new();
        encode_day_hours(&day, &mut blob);
        // Format, hour 0 with two entries.
        assert_eq!(blob[..3], [FORMAT, 0, 2]);
        let mut back = Vec::new();
        decode_day_hours(&blob, "d", 0..24, &mut back).unwrap();
        assert_eq!(back, expected);
        back.clear();
        decode_day_hours(&blob, "d", 1..24, &mut back).unwrap();
        assert_eq!(back, expected[2..]);
        back.clear();
        decode_day_hours(&blob, "d", 0..23, &mut back).unwrap();
        assert_eq!(back, expected[..2]);
        // Hours out of the day or out of order, an empty hour, a cut blob.
        let hour23 = blob.iter().rposition(|&b| b == 23).unwrap();
        for (bad, what) in [(24, "hour 24 of a day"), (0, "after hour 0")] {
            let mut b = blob.clone();
            b[hour23] = bad;
            let e = decode_day_hours(&b, "d", 0..24, &mut back).unwrap_err();
            assert!(e.to_string().contains(what), "{e}");
        }
        let e = decode_day_hours(&[FORMAT, 3, 0], "d", 0..24, &mut back).unwrap_err();
        assert!(e.to_string().contains("no entries"), "{e}");
        let e = decode_day_hours(&blob[..blob.len() - 1], "d", 0..24, &mut back).unwrap_err();
        assert!(e.to_string().contains("ends inside an entry"), "{e}");
    }

    #[test]
    fn day_hours_of_real_sizes_take_the_series_form() {
        let mut day = Vec::new();
        for hour in 0..24u8 {
            for (realm, direction) in [(1, Direction::Down), (1, Direction::Up), (3, Direction::Up)]
            {
                if realm == 3 && hour % 5 == 0 {
                    continue;
                }
                let bytes = 9_000_000_000 + u128::from(hour) * 77_777_777 + u128::from(realm);
                let total = RealmTotal {
                    realm: RealmId(realm),
                    direction,
                    bytes,
                    packets: bytes / 1_100,
                };
                day.push(DayHourTotal { hour, total });
            }
        }
        let mut blob = Vec::new();
        encode_day_hours(&day, &mut blob);
        assert_eq!(blob[0], super::super::series::FORMAT);
        let mut v1 = vec![FORMAT];
        for t in &day {
            put_realm_total(&mut v1, &t.total);
        }
        assert!(
            blob.len() * 2 < v1.len(),
            "{} bytes, format 1 {}",
            blob.len(),
            v1.len()
        );
        let mut back = Vec::new();
        decode_day_hours(&blob, "d", 0..24, &mut back).unwrap();
        assert_eq!(back, day);
        back.clear();
        decode_day_hours(&blob, "d", 4..6, &mut back).unwrap();
        let inside: Vec<_> = day
            .iter()
            .filter(|t| (4..6).contains(&t.hour))
            .copied()
            .collect();
        assert_eq!(back, inside);
        // A band or source in a day's hours is not what any writer wrote.
        let mut flow = Sample {
            slot: Slot(0),
            key: day_hour_key(RealmId(1), Direction::Up),
            bytes: 1,
            packets: 1,
        };
        flow.key.source = Source::Flow;
        let mut bad = Vec::new();
        super::super::series::encode(0, 24, &[&flow], &mut bad);
        let e = decode_day_hours(&bad, "d", 0..24, &mut back).unwrap_err();
        assert!(e.to_string().contains("every band and source"), "{e}");
    }

    #[test]
    fn realm_totals_merge_sorted() {
        let r = |realm, direction, bytes| RealmTotal {
            realm: RealmId(realm),
            direction,
            bytes,
            packets: 1,
        };
        let mut a = vec![r(2, Direction::Up, 5)];
        add_realm_totals(&mut a, &[r(1, Direction::Down, 1), r(2, Direction::Up, 5)]).unwrap();
        assert_eq!(
            a,
            vec![
                r(1, Direction::Down, 1),
                RealmTotal {
                    packets: 2,
                    ..r(2, Direction::Up, 10)
                }
            ]
        );
        let mut blob = Vec::new();
        encode_realm_totals(&a, &mut blob);
        let mut back = Vec::new();
        decode_realm_totals(&blob, "r", &mut back).unwrap();
        assert_eq!(back, a);
    }
}
