//! Reads: samples, coverage, usage, hourly totals, ranking, states,
//! the quarantine, frozen bills and the retention marks.

use crate::client::{truncated, Client};
use crate::rowbinary::Reader;
use crate::write::literal;
use accounting::{Band, Direction, Sample, Slot, SlotCoverage, SlotStatus, Source, UsageKey};
use history::planning::{plan, Marks, Piece, Planned};
use history::{
    Bucket, FrozenPeriod, HourTotal, HourTotals, Quarantine, QuarantinedSample, RankBy, Refusal,
    RefusalReason, SampleQuery, StoreError, StoredState, TenantTotal, Tenants, TopQuery,
    UsageQuery, UsageTotal,
};
use jiff::civil::Date;
use jiff::Timestamp;
use net_types::{RealmId, TenantId};
use std::collections::{BTreeMap, HashMap};

fn corrupt(place: &str, problem: impl Into<String>) -> StoreError {
    StoreError::Corrupt {
        place: place.to_string(),
        problem: problem.into(),
    }
}

fn code<T>(v: u8, place: &str, from: impl Fn(u8) -> Option<T>) -> Result<T, StoreError> {
    from(v).ok_or_else(|| corrupt(place, format!("code {v}")))
}

/// A u128 from a `Decimal128` sum, which is never negative.
fn wide(v: i128, place: &str) -> Result<u128, StoreError> {
    u128::try_from(v).map_err(|_| corrupt(place, format!("{v} is negative")))
}

/// One row of `slot, tenant, realm, direction, band, source, bytes,
/// packets` (UInt64 sums).
pub fn sample(r: &mut Reader<'_>, place: &str) -> Result<Sample, StoreError> {
    let t = truncated(place);
    let slot = r.i64().map_err(t)?;
    let tenant = r.u32().map_err(truncated(place))?;
    let realm = r.u16().map_err(truncated(place))?;
    let direction = code(
        r.u8().map_err(truncated(place))?,
        place,
        Direction::from_code,
    )?;
    let band = code(r.u8().map_err(truncated(place))?, place, Band::from_code)?;
    let source = code(r.u8().map_err(truncated(place))?, place, Source::from_code)?;
    Ok(Sample {
        slot: Slot(slot),
        key: UsageKey {
            tenant: TenantId(tenant),
            realm: RealmId(realm),
            direction,
            band,
            source,
        },
        bytes: r.u64().map_err(truncated(place))?,
        packets: r.u64().map_err(truncated(place))?,
    })
}

/// ` AND tenant IN (…)` for a list, nothing for everybody.
fn tenant_filter(tenants: &Tenants) -> String {
    match tenants {
        Tenants::All => String::new(),
        Tenants::Only(list) => {
            let list: Vec<String> = list.iter().map(|t| t.0.to_string()).collect();
            format!(" AND tenant IN ({})", list.join(","))
        }
    }
}

fn nobody(tenants: &Tenants) -> bool {
    matches!(tenants, Tenants::Only(l) if l.is_empty())
}

/// The retention marks.
pub fn marks(client: &Client) -> Result<Marks, StoreError> {
    let sql = format!(
        "SELECT name, max(before) FROM {}.marks GROUP BY name FORMAT RowBinary",
        client.db
    );
    let out = client.query(&sql, "read the retention marks")?;
    decode_marks(&out)
}

/// The answer of the marks' query.
pub fn decode_marks(out: &[u8]) -> Result<Marks, StoreError> {
    let mut r = Reader::new(out);
    let mut marks = Marks::default();
    while !r.done() {
        let name = r.bytes().map_err(truncated("marks.name"))?.to_vec();
        let before = r.i64().map_err(truncated("marks.before"))?;
        match &name[..] {
            b"raw" => marks.raw = Some(Slot(before)),
            b"hourly" => marks.hourly = Some(before),
            b"daily" => marks.daily = Some(before),
            _ => {}
        }
    }
    Ok(marks)
}

pub fn samples(client: &Client, q: &SampleQuery) -> Result<Vec<Sample>, StoreError> {
    let from = marks(client)?.raw.map_or(q.from, |m| m.max(q.from));
    if from >= q.to || nobody(&q.tenants) {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT slot, tenant, realm, direction, band, source, sum(bytes), sum(packets)
         FROM {}.samples WHERE slot >= {} AND slot < {}{}
         GROUP BY slot, tenant, realm, direction, band, source
         ORDER BY slot, tenant, realm, direction, band, source FORMAT RowBinary",
        client.db,
        from.0,
        q.to.0,
        tenant_filter(&q.tenants)
    );
    let out = client.query(&sql, "read samples")?;
    decode_samples(&out)
}

/// Rows of [`sample`].
pub fn decode_samples(out: &[u8]) -> Result<Vec<Sample>, StoreError> {
    let mut r = Reader::new(out);
    let mut samples = Vec::new();
    while !r.done() {
        samples.push(sample(&mut r, "samples")?);
    }
    Ok(samples)
}

pub fn coverage(client: &Client, from: Slot, to: Slot) -> Result<Vec<SlotCoverage>, StoreError> {
    let from = marks(client)?.raw.map_or(from, |m| m.max(from));
    if from >= to {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT slot, min(status) FROM {}.slots WHERE slot >= {} AND slot < {}
         GROUP BY slot ORDER BY slot FORMAT RowBinary",
        client.db, from.0, to.0
    );
    let out = client.query(&sql, "read slot coverage")?;
    decode_coverage(&out)
}

/// Rows of slot and status.
pub fn decode_coverage(out: &[u8]) -> Result<Vec<SlotCoverage>, StoreError> {
    let mut r = Reader::new(out);
    let mut cov = Vec::new();
    while !r.done() {
        let slot = r.i64().map_err(truncated("slots.slot"))?;
        let status = r.u8().map_err(truncated("slots.status"))?;
        cov.push(SlotCoverage {
            slot: Slot(slot),
            status: code(status, "slots.status", SlotStatus::from_code)?,
        });
    }
    Ok(cov)
}

/// The first slot of the month (or year) a partition id names, and the
/// first slot after it.
fn partition_slots(id: &str) -> Option<(i64, i64)> {
    let year: i16 = id.get(..4)?.parse().ok()?;
    let (start, end) = match id.len() {
        4 => (Date::new(year, 1, 1).ok()?, Date::new(year + 1, 1, 1).ok()?),
        6 => {
            let month: i8 = id.get(4..)?.parse().ok()?;
            let start = Date::new(year, month, 1).ok()?;
            (start, start.checked_add(jiff::Span::new().months(1)).ok()?)
        }
        _ => return None,
    };
    let slot = |d: Date| {
        d.to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_second().div_euclid(300))
    };
    Some((slot(start)?, slot(end)?))
}

/// The first slot after the month (or year) a partition id names.
pub fn partition_end(id: &str) -> Option<i64> {
    partition_slots(id).map(|(_, end)| end)
}

/// The slots `[first, end)` whose start lies in `[from, to)`, clamped to
/// the months (years for the daily rollup) the tables have parts in, so
/// that an open-ended query does not plan centuries of empty days.
fn slot_range(
    client: &Client,
    from: Timestamp,
    to: Timestamp,
) -> Result<Option<(i64, i64)>, StoreError> {
    let first = Slot::starting_at_or_after(from).0;
    let end = Slot::starting_at_or_after(to).0;
    let sql = format!(
        "SELECT DISTINCT partition_id FROM system.parts
         WHERE database = '{}' AND active AND table IN ('samples', 'hourly', 'daily') FORMAT TSV",
        client.db
    );
    let out = client.query(&sql, "read the stored time range")?;
    let mut stored: Option<(i64, i64)> = None;
    for id in String::from_utf8_lossy(&out).lines() {
        let (lo, hi) = partition_slots(id.trim())
            .ok_or_else(|| corrupt("system.parts", format!("partition `{id}`")))?;
        stored = Some(stored.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
    }
    Ok(stored
        .map(|(lo, hi)| (first.max(lo), end.min(hi)))
        .filter(|(a, b)| a < b))
}

/// Bytes and packets per (time, tenant, realm, direction) of one table,
/// for the given times, summed exactly (`Decimal128`).
pub type Row = (i64, u32, u16, Direction, u128, u128);

fn sums(
    client: &Client,
    table: &str,
    time: &str,
    times: &[i64],
    tenants: &Tenants,
) -> Result<Vec<Row>, StoreError> {
    if times.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = times.iter().map(i64::to_string).collect();
    let sql = format!(
        "SELECT {time}, tenant, realm, direction, sum(toDecimal128(bytes, 0)), sum(toDecimal128(packets, 0))
         FROM {}.{table} WHERE {time} IN ({}){}
         GROUP BY {time}, tenant, realm, direction FORMAT RowBinary",
        client.db,
        list.join(","),
        tenant_filter(tenants)
    );
    let out = client.query(&sql, &format!("read {table}"))?;
    decode_sums(&out, table)
}

/// Rows of time, tenant, realm, direction and two `Decimal128` sums.
pub fn decode_sums(out: &[u8], place: &str) -> Result<Vec<Row>, StoreError> {
    let mut r = Reader::new(out);
    let mut rows = Vec::new();
    while !r.done() {
        let t = r.i64().map_err(truncated(place))?;
        let tenant = r.u32().map_err(truncated(place))?;
        let realm = r.u16().map_err(truncated(place))?;
        let dir = code(
            r.u8().map_err(truncated(place))?,
            place,
            Direction::from_code,
        )?;
        let bytes = wide(r.i128().map_err(truncated(place))?, place)?;
        let packets = wide(r.i128().map_err(truncated(place))?, place)?;
        rows.push((t, tenant, realm, dir, bytes, packets));
    }
    Ok(rows)
}

/// One tenant × realm × direction × bucket: what pieces added and took away.
#[derive(Default)]
struct Sum {
    plus: (u128, u128),
    minus: (u128, u128),
    inexact: bool,
}

fn add2(a: (u128, u128), b: (u128, u128)) -> Result<(u128, u128), StoreError> {
    let f = |x: u128, y: u128| {
        x.checked_add(y)
            .ok_or_else(|| corrupt("a stored total", "adds up past 2^128 − 1"))
    };
    Ok((f(a.0, b.0)?, f(a.1, b.1)?))
}

/// What every piece of a plan reads, as rows by piece.
struct Read {
    days: Vec<Row>,
    hours: Vec<Row>,
    slots: Vec<Row>,
}

fn read_pieces(
    client: &Client,
    pieces: &[&Planned],
    tenants: &Tenants,
) -> Result<Read, StoreError> {
    let (mut days, mut hours, mut slots) = (Vec::new(), Vec::new(), Vec::new());
    for p in pieces {
        match p.piece {
            Piece::Day(d) => days.push(d),
            Piece::Hour(h) => hours.push(h),
            Piece::Slots(a, b) => slots.extend(a.0..b.0),
        }
    }
    for v in [&mut days, &mut hours, &mut slots] {
        v.sort_unstable();
        v.dedup();
    }
    Ok(Read {
        days: sums(client, "daily", "day", &days, tenants)?,
        hours: sums(client, "hourly", "hour", &hours, tenants)?,
        slots: sums(client, "samples", "slot", &slots, tenants)?,
    })
}

pub fn usage(client: &Client, q: &UsageQuery) -> Result<Vec<UsageTotal>, StoreError> {
    if nobody(&q.tenants) {
        return Ok(Vec::new());
    }
    let Some((first, end)) = slot_range(client, q.from, q.to)? else {
        return Ok(Vec::new());
    };
    let marks = marks(client)?;
    let zone = q.zone.clone();
    let bucket_of = |slot: i64| -> Result<Date, StoreError> {
        let t = Timestamp::from_second(slot * accounting::SAMPLE_SECONDS).map_err(|e| {
            StoreError::Invalid {
                field: "usage range".into(),
                problem: e.to_string(),
            }
        })?;
        let date = t.to_zoned(zone.clone()).date();
        Ok(match q.bucket {
            Bucket::Day => date,
            Bucket::Month => date.first_of_month(),
        })
    };
    let pieces = plan(first, end, bucket_of, &marks, true)?;
    let all: Vec<&Planned> = pieces.iter().collect();
    let read = read_pieces(client, &all, &q.tenants)?;
    // Which planned pieces each row counts in.
    let mut by_piece: HashMap<Piece, Vec<&Planned>> = HashMap::new();
    let mut runs: Vec<(i64, i64, &Planned)> = Vec::new();
    for p in &pieces {
        match p.piece {
            Piece::Slots(a, b) => runs.push((a.0, b.0, p)),
            piece => by_piece.entry(piece).or_default().push(p),
        }
    }
    runs.sort_by_key(|r| r.0);
    let mut totals: BTreeMap<(u32, u16, u8, Date), Sum> = BTreeMap::new();
    // Keys and the later buckets an inexact piece counted in an earlier one.
    let mut lent: Vec<((u32, u16, u8), Date, Date)> = Vec::new();
    let mut add = |p: &Planned, row: &Row| -> Result<(), StoreError> {
        let key = (row.1, row.2, row.3.code());
        if p.last != p.bucket {
            lent.push((key, p.bucket, p.last));
        }
        let sum = totals.entry((key.0, key.1, key.2, p.bucket)).or_default();
        if p.minus {
            sum.minus = add2(sum.minus, (row.4, row.5))?;
        } else {
            sum.plus = add2(sum.plus, (row.4, row.5))?;
        }
        sum.inexact |= !p.exact;
        Ok(())
    };
    for row in &read.days {
        for p in by_piece.get(&Piece::Day(row.0)).into_iter().flatten() {
            add(p, row)?;
        }
    }
    for row in &read.hours {
        for p in by_piece.get(&Piece::Hour(row.0)).into_iter().flatten() {
            add(p, row)?;
        }
    }
    for row in &read.slots {
        let at = runs.partition_point(|r| r.1 <= row.0);
        if let Some(&(a, b, p)) = runs.get(at) {
            if (a..b).contains(&row.0) {
                add(p, row)?;
            }
        }
    }
    for ((t, r, d), from, to) in lent {
        for (_, sum) in totals.range_mut((t, r, d, from)..=(t, r, d, to)) {
            sum.inexact = true;
        }
    }
    let mut out = Vec::with_capacity(totals.len());
    for ((tenant, realm, dir, bucket), sum) in totals {
        let less = |a: u128, b: u128| {
            a.checked_sub(b).ok_or_else(|| {
                corrupt("daily", "a daily rollup holds less than its hourly rollups")
            })
        };
        let (bytes, packets) = (
            less(sum.plus.0, sum.minus.0)?,
            less(sum.plus.1, sum.minus.1)?,
        );
        if (bytes, packets) == (0, 0) && sum.minus != (0, 0) {
            continue;
        }
        out.push(UsageTotal {
            tenant: TenantId(tenant),
            realm: RealmId(realm),
            direction: code(dir, "direction", Direction::from_code)?,
            bucket,
            bytes,
            packets,
            exact: !sum.inexact,
        });
    }
    Ok(out)
}

pub fn top_tenants(client: &Client, q: &TopQuery) -> Result<Vec<TenantTotal>, StoreError> {
    let Some((first, end)) = slot_range(client, q.from, q.to)? else {
        return Ok(Vec::new());
    };
    let marks = marks(client)?;
    let whole = Date::default();
    let pieces = plan(first, end, |_| Ok(whole), &marks, false)?;
    let mut totals: BTreeMap<u32, TenantTotal> = BTreeMap::new();
    for exact in [true, false] {
        let (mut days, mut hours, mut slots) = (Vec::new(), Vec::new(), Vec::new());
        for p in pieces.iter().filter(|p| p.exact == exact) {
            match p.piece {
                Piece::Day(d) => days.push(d),
                Piece::Hour(h) => hours.push(h),
                Piece::Slots(a, b) => slots.extend(a.0..b.0),
            }
        }
        // Summed per tenant and direction by the server: a month of
        // 10,000 tenants is 20,000 rows, not 620,000 days.
        for (table, time, times) in [
            ("daily", "day", days),
            ("hourly", "hour", hours),
            ("samples", "slot", slots),
        ] {
            for row in tenant_sums(client, table, time, &times)? {
                let t = totals
                    .entry(row.1)
                    .or_insert_with(|| TenantTotal::new(TenantId(row.1)));
                t.add(row.3, row.4, row.5)?;
                t.exact &= exact;
            }
        }
    }
    Ok(rank(totals.into_values().collect(), q.by, q.limit))
}

/// Bytes and packets per tenant and direction of one table over the
/// given times (as [`Row`]s with time and realm 0).
fn tenant_sums(
    client: &Client,
    table: &str,
    time: &str,
    times: &[i64],
) -> Result<Vec<Row>, StoreError> {
    if times.is_empty() {
        return Ok(Vec::new());
    }
    let list: Vec<String> = times.iter().map(i64::to_string).collect();
    let sql = format!(
        "SELECT toInt64(0), tenant, toUInt16(0), direction, sum(toDecimal128(bytes, 0)), sum(toDecimal128(packets, 0))
         FROM {}.{table} WHERE {time} IN ({})
         GROUP BY tenant, direction FORMAT RowBinary",
        client.db,
        list.join(",")
    );
    let out = client.query(&sql, &format!("rank tenants from {table}"))?;
    decode_sums(&out, table)
}

/// The `limit` largest by `by`, largest first, ties by tenant; tenants
/// without bytes by `by` left out (as the SQLite store ranks).
fn rank(mut totals: Vec<TenantTotal>, by: RankBy, limit: usize) -> Vec<TenantTotal> {
    totals.retain(|t| t.bytes(by) > 0);
    totals.sort_unstable_by(|a, b| b.bytes(by).cmp(&a.bytes(by)).then(a.tenant.cmp(&b.tenant)));
    totals.truncate(limit);
    totals
}

pub fn hourly_totals(
    client: &Client,
    tenant: TenantId,
    hours: std::ops::Range<i64>,
) -> Result<HourTotals, StoreError> {
    const MOST_HOURS: i64 = 10 * 366 * 24;
    let span = hours.end.saturating_sub(hours.start);
    if span > MOST_HOURS {
        return Err(StoreError::Invalid {
            field: "hours".into(),
            problem: format!("{span} hours is more than the {MOST_HOURS} a read may span"),
        });
    }
    let marks = marks(client)?;
    let mut out = HourTotals {
        totals: Vec::new(),
        kept_from: marks.hourly.filter(|m| *m > hours.start),
    };
    let from = marks.hourly.map_or(hours.start, |m| m.max(hours.start));
    if from >= hours.end {
        return Ok(out);
    }
    let sql = format!(
        "SELECT hour, realm, direction, sum(toDecimal128(bytes, 0)), sum(toDecimal128(packets, 0))
         FROM {}.hourly WHERE tenant = {} AND hour >= {from} AND hour < {}
         GROUP BY hour, realm, direction ORDER BY hour, realm, direction FORMAT RowBinary",
        client.db, tenant.0, hours.end
    );
    let body = client.query(&sql, "read a tenant's hourly totals")?;
    out.totals = decode_hours(&body)?;
    Ok(out)
}

/// Rows of hour, realm, direction and two `Decimal128` sums.
pub fn decode_hours(body: &[u8]) -> Result<Vec<HourTotal>, StoreError> {
    let mut r = Reader::new(body);
    let place = "hourly";
    let mut totals = Vec::new();
    while !r.done() {
        let hour = r.i64().map_err(truncated(place))?;
        let realm = r.u16().map_err(truncated(place))?;
        let direction = code(
            r.u8().map_err(truncated(place))?,
            place,
            Direction::from_code,
        )?;
        totals.push(HourTotal {
            hour,
            realm: RealmId(realm),
            direction,
            bytes: wide(r.i128().map_err(truncated(place))?, place)?,
            packets: wide(r.i128().map_err(truncated(place))?, place)?,
        });
    }
    Ok(totals)
}

/// A writer's state: the accountant's under the empty name.
pub fn state(client: &Client, writer: &str) -> Result<Option<StoredState>, StoreError> {
    let sql = format!(
        "SELECT argMax(state, sequence), max(sequence), count() FROM {}.writers
         WHERE writer = {} FORMAT RowBinary",
        client.db,
        literal(writer)
    );
    let out = client.query(&sql, "read a writer's state")?;
    decode_state(&out)
}

/// Every named writer and its last sequence (the accountant's own rows
/// carry no name).
pub fn writers(client: &Client) -> Result<Vec<history::WriterSequence>, StoreError> {
    let sql = format!(
        "SELECT writer, max(sequence) FROM {}.writers WHERE writer != ''
         GROUP BY writer ORDER BY writer FORMAT RowBinary",
        client.db
    );
    let out = client.query(&sql, "read the writers")?;
    let mut r = Reader::new(&out);
    let place = "writers";
    let mut found = Vec::new();
    while !r.done() {
        let name = r.bytes().map_err(truncated(place))?;
        let sequence = r.u64().map_err(truncated(place))?;
        found.push(history::WriterSequence {
            writer: String::from_utf8_lossy(name).into_owned(),
            sequence,
        });
    }
    Ok(found)
}

/// The state's row: blob, sequence, how many rows there were.
pub fn decode_state(out: &[u8]) -> Result<Option<StoredState>, StoreError> {
    let mut r = Reader::new(out);
    let place = "writers";
    let blob = r.bytes().map_err(truncated(place))?.to_vec();
    let sequence = r.u64().map_err(truncated(place))?;
    let n = r.u64().map_err(truncated(place))?;
    Ok((n > 0).then_some(StoredState { sequence, blob }))
}

pub fn frozen(client: &Client, label: &str) -> Result<Option<FrozenPeriod>, StoreError> {
    let sql = format!(
        "SELECT start_ms, end_ms, frozen_at_ms, bill FROM {}.frozen WHERE label = {}
         ORDER BY frozen_at_ms LIMIT 1 FORMAT RowBinary",
        client.db,
        literal(label)
    );
    let out = client.query(&sql, &format!("read frozen period {label}"))?;
    decode_frozen(&out, label)
}

/// A frozen period's row, if any.
pub fn decode_frozen(out: &[u8], label: &str) -> Result<Option<FrozenPeriod>, StoreError> {
    if out.is_empty() {
        return Ok(None);
    }
    let mut r = Reader::new(out);
    let place = "frozen";
    let mut ts = |col: &str| -> Result<Timestamp, StoreError> {
        let ms = r.i64().map_err(truncated(place))?;
        Timestamp::from_millisecond(ms)
            .map_err(|e| corrupt(&format!("frozen.{col}"), e.to_string()))
    };
    let (start, end, frozen_at) = (ts("start_ms")?, ts("end_ms")?, ts("frozen_at_ms")?);
    let bill = String::from_utf8(r.bytes().map_err(truncated(place))?.to_vec())
        .map_err(|e| corrupt("frozen.bill", e.to_string()))?;
    Ok(Some(FrozenPeriod {
        label: label.to_string(),
        start,
        end,
        frozen_at,
        bill,
    }))
}

/// The quarantine's `cleared` mark: ids up to it were cleared.
pub fn cleared(client: &Client) -> Result<u64, StoreError> {
    let sql = format!(
        "SELECT max(through) FROM {}.quarantine_cleared FORMAT RowBinary",
        client.db
    );
    let out = client.query(&sql, "read the quarantine")?;
    Reader::new(&out)
        .u64()
        .map_err(truncated("quarantine_cleared"))
}

fn reason(name: &[u8], sums: (&[u8], &[u8])) -> Result<RefusalReason, StoreError> {
    let number = |b: &[u8]| -> Result<u128, StoreError> {
        std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| corrupt("quarantine.sum_bytes", String::from_utf8_lossy(b)))
    };
    Ok(match name {
        b"too_many_bytes" => RefusalReason::TooManyBytes,
        b"too_many_packets" => RefusalReason::TooManyPackets,
        b"already_stored" => RefusalReason::AlreadyStored,
        b"twice_in_batch" => RefusalReason::TwiceInBatch,
        b"slot_out_of_range" => RefusalReason::SlotOutOfRange,
        b"sum_too_large" => RefusalReason::SumTooLarge {
            bytes: number(sums.0)?,
            packets: number(sums.1)?,
        },
        other => return Err(corrupt("quarantine.reason", String::from_utf8_lossy(other))),
    })
}

pub fn quarantined(client: &Client, limit: usize) -> Result<Quarantine, StoreError> {
    let db = &client.db;
    let cleared = cleared(client)?;
    let sql = format!(
        "SELECT (SELECT sum(refused) FROM {db}.quarantine_counts),
                (SELECT sum(dropped) FROM {db}.quarantine_counts),
                (SELECT count() FROM {db}.quarantine WHERE id > {cleared}) FORMAT RowBinary"
    );
    let out = client.query(&sql, "read the quarantine's counts")?;
    let mut r = Reader::new(&out);
    let place = "quarantine_counts";
    let mut q = Quarantine {
        refused: r.u64().map_err(truncated(place))?,
        dropped: r.u64().map_err(truncated(place))?,
        held: r.u64().map_err(truncated(place))?,
        samples: Vec::new(),
    };
    let sql = format!(
        "SELECT id, writer, sequence, batch_index, slot, tenant, realm, direction, band, source,
                bytes, packets, reason, sum_bytes, sum_packets
         FROM {db}.quarantine WHERE id > {cleared} ORDER BY id LIMIT {limit} FORMAT RowBinary"
    );
    let out = client.query(&sql, "read the quarantine")?;
    q.samples = decode_quarantine(&out)?;
    Ok(q)
}

/// Rows of the quarantine.
pub fn decode_quarantine(out: &[u8]) -> Result<Vec<QuarantinedSample>, StoreError> {
    let mut r = Reader::new(out);
    let place = "quarantine";
    let mut samples = Vec::new();
    while !r.done() {
        let id = r.u64().map_err(truncated(place))?;
        let writer = String::from_utf8_lossy(r.bytes().map_err(truncated(place))?).into_owned();
        let sequence = r.u64().map_err(truncated(place))?;
        let index = r.u64().map_err(truncated(place))?;
        // slot … packets: the same columns as a sample.
        let s = sample(&mut r, place)?;
        let name = r.bytes().map_err(truncated(place))?;
        let sb = r.bytes().map_err(truncated(place))?;
        let sp = r.bytes().map_err(truncated(place))?;
        samples.push(QuarantinedSample {
            id,
            writer,
            sequence,
            refusal: Refusal {
                index: usize::try_from(index).map_err(|_| corrupt(place, "batch_index"))?,
                sample: s,
                reason: reason(name, (sb, sp))?,
            },
        });
    }
    Ok(samples)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_ids_become_slot_ranges() {
        // 2026-01-01T00:00Z is slot 5_890_752 (1_767_225_600 s / 300).
        assert_eq!(
            partition_slots("202601"),
            Some((5_890_752, 5_890_752 + 31 * 288))
        );
        assert_eq!(
            partition_slots("2026"),
            Some((5_890_752, 5_890_752 + 365 * 288))
        );
        assert_eq!(partition_slots("20261"), None);
        assert_eq!(partition_slots("all"), None);
    }
}
