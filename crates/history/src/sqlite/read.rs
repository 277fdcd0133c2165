//! Queries: samples, coverage, usage totals, a tenant's hourly totals,
//! top tenants, frozen bills, the state.

use super::codec::{self, DayHourTotal, RealmTotal, Span, HOURS_PER_DAY, SLOTS_PER_HOUR};
use super::marks;
use super::plan::{plan, Piece, Planned};
use crate::error::StoreError;
use crate::store::*;
use accounting::{Direction, Sample, Slot, SlotCoverage, SlotStatus};
use jiff::civil::Date;
use jiff::Timestamp;
use net_types::{RealmId, TenantId};
use rusqlite::{params, Connection, OptionalExtension};
use std::collections::BTreeMap;

fn u64_of(v: i64, place: &str) -> Result<u64, StoreError> {
    u64::try_from(v).map_err(|_| StoreError::corrupt(place, format!("{v} is negative")))
}

/// The first and last hour (or day) a table has rows for. `key` is its
/// integer primary key: a packed row id, or the hour (day) itself.
fn stored_range(conn: &Connection, table: &str) -> Result<Option<(i64, i64)>, StoreError> {
    let ctx = format!("read the time range of {table}");
    let (key, packed) = match table {
        "tenants_hourly" => ("hour", false),
        "tenants_daily" => ("day", false),
        _ => ("id", true),
    };
    // Two subqueries: SQLite reads a MIN or MAX off the end of the tree
    // only when it is the query's single aggregate; both in one SELECT
    // scan the whole table.
    let (lo, hi): (Option<i64>, Option<i64>) = conn
        .prepare_cached(&format!(
            "SELECT (SELECT MIN({key}) FROM {table}), (SELECT MAX({key}) FROM {table})"
        ))
        .and_then(|mut st| st.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(StoreError::db(ctx))?;
    let time = |v: i64| if packed { codec::split_row_id(v).0 } else { v };
    Ok(lo.zip(hi).map(|(lo, hi)| (time(lo), time(hi))))
}

/// Calls `each` with the tenant and blob of every row of `table` (a packed
/// per-tenant table) at hour (or day) `time`, for every tenant or only
/// those listed.
fn each_row(
    conn: &Connection,
    table: &str,
    column: &str,
    time: i64,
    tenants: &Tenants,
    mut each: impl FnMut(u32, &[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let ctx = || format!("read {table}");
    match tenants {
        Tenants::All => {
            let mut st = conn
                .prepare_cached(&format!(
                    "SELECT id, {column} FROM {table} WHERE id >= ?1 AND id < ?2"
                ))
                .map_err(StoreError::db(ctx()))?;
            let range = params![codec::first_row_id(time), codec::first_row_id(time + 1)];
            let mut rows = st.query(range).map_err(StoreError::db(ctx()))?;
            while let Some(r) = rows.next().map_err(StoreError::db(ctx()))? {
                let id: i64 = r.get(0).map_err(StoreError::db(ctx()))?;
                let blob = r.get_ref(1).and_then(|v| Ok(v.as_blob()?));
                each(
                    codec::split_row_id(id).1,
                    blob.map_err(StoreError::db(ctx()))?,
                )?;
            }
        }
        Tenants::Only(list) => {
            let mut st = conn
                .prepare_cached(&format!("SELECT {column} FROM {table} WHERE id = ?1"))
                .map_err(StoreError::db(ctx()))?;
            for t in list {
                let Some(id) = codec::row_id(time, t.0) else {
                    continue;
                };
                let mut rows = st.query([id]).map_err(StoreError::db(ctx()))?;
                if let Some(r) = rows.next().map_err(StoreError::db(ctx()))? {
                    let blob = r.get_ref(0).and_then(|v| Ok(v.as_blob()?));
                    each(t.0, blob.map_err(StoreError::db(ctx()))?)?;
                }
            }
        }
    }
    Ok(())
}

/// Calls `each` with the blob of `tenant`'s row of `table` at hour (or
/// day) `time`, if there is one, and says whether there was.
fn one_row(
    conn: &Connection,
    table: &str,
    time: i64,
    tenant: u32,
    each: impl FnOnce(&[u8]) -> Result<(), StoreError>,
) -> Result<bool, StoreError> {
    let ctx = || format!("read {table}");
    let Some(id) = codec::row_id(time, tenant) else {
        return Ok(false);
    };
    let mut st = conn
        .prepare_cached(&format!("SELECT samples FROM {table} WHERE id = ?1"))
        .map_err(StoreError::db(ctx()))?;
    let mut rows = st.query([id]).map_err(StoreError::db(ctx()))?;
    match rows.next().map_err(StoreError::db(ctx()))? {
        Some(r) => {
            let blob = r.get_ref(0).and_then(|v| Ok(v.as_blob()?));
            each(blob.map_err(StoreError::db(ctx()))?)?;
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Reads raw samples from hour rows and compacted day rows, knowing once
/// which hours and days the tables hold.
struct RawReader<'c> {
    conn: &'c Connection,
    /// First and last hour, over both tables (day rows as their hours).
    stored: Option<(i64, i64)>,
    /// First and last compacted day.
    days: Option<(i64, i64)>,
}

impl<'c> RawReader<'c> {
    fn new(conn: &'c Connection) -> Result<RawReader<'c>, StoreError> {
        let hours = stored_range(conn, "samples")?;
        let days = stored_range(conn, "samples_days")?;
        let stored = [
            hours,
            days.map(|(a, b)| (a * HOURS_PER_DAY, b * HOURS_PER_DAY + HOURS_PER_DAY - 1)),
        ]
        .into_iter()
        .flatten()
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)));
        Ok(RawReader { conn, stored, days })
    }

    /// Appends the samples of slots `[from, to)` of every tenant (`None`)
    /// or of those listed (sorted, each once), ordered by slot then key,
    /// a UTC day at a time. A tenant's day is in one table or the other
    /// (compaction moves it in one transaction, and writes into a compacted
    /// day go to its day row), so a tenant whose day row is found is not
    /// looked for in the hour rows.
    fn read(
        &self,
        tenants: Option<&[TenantId]>,
        (from, to): (Slot, Slot),
        out: &mut Vec<Sample>,
    ) -> Result<(), StoreError> {
        let conn = self.conn;
        let Some((first, last)) = self.stored.filter(|_| from < to) else {
            return Ok(());
        };
        let h0 = from.0.div_euclid(SLOTS_PER_HOUR).max(first);
        let h1 = (to.0 - 1).div_euclid(SLOTS_PER_HOUR).min(last);
        let range = (from, to);
        let mut day = h0.div_euclid(HOURS_PER_DAY);
        while day * HOURS_PER_DAY <= h1 {
            let start = out.len();
            let hours =
                (day * HOURS_PER_DAY).max(h0)..=(day * HOURS_PER_DAY + HOURS_PER_DAY - 1).min(h1);
            let compacted = self.days.is_some_and(|(a, b)| (a..=b).contains(&day));
            let day_rows = |tenant: u32, blob: &[u8], out: &mut Vec<Sample>| {
                codec::decode_samples((Span::Day, day), TenantId(tenant), blob, range, out)
            };
            let hour_rows = |hour: i64, tenant: u32, blob: &[u8], out: &mut Vec<Sample>| {
                codec::decode_samples((Span::Hour, hour), TenantId(tenant), blob, range, out)
            };
            match tenants {
                None => {
                    if compacted {
                        each_row(
                            conn,
                            "samples_days",
                            "samples",
                            day,
                            &Tenants::All,
                            |t, b| day_rows(t, b, out),
                        )?;
                    }
                    for hour in hours {
                        each_row(conn, "samples", "samples", hour, &Tenants::All, |t, b| {
                            hour_rows(hour, t, b, out)
                        })?;
                    }
                }
                Some(list) => {
                    for t in list {
                        let found = compacted
                            && one_row(conn, "samples_days", day, t.0, |b| day_rows(t.0, b, out))?;
                        if !found {
                            for hour in hours.clone() {
                                one_row(conn, "samples", hour, t.0, |b| {
                                    hour_rows(hour, t.0, b, out)
                                })?;
                            }
                        }
                    }
                }
            }
            // Each row is sorted by slot then key; a day of several tenants
            // is sorted by tenant first and needs reordering by slot.
            let day_samples = &mut out[start..];
            if !day_samples.is_sorted_by_key(|s| (s.slot, s.key)) {
                day_samples.sort_unstable_by_key(|s| (s.slot, s.key));
            }
            day += 1;
        }
        Ok(())
    }
}

/// The tenants of a query, sorted and each once; `None` for everybody.
fn tenant_list(tenants: &Tenants) -> Option<Vec<TenantId>> {
    match tenants {
        Tenants::All => None,
        Tenants::Only(list) => {
            let mut list = list.clone();
            list.sort_unstable();
            list.dedup();
            Some(list)
        }
    }
}

pub(super) fn samples(conn: &Connection, q: &SampleQuery) -> Result<Vec<Sample>, StoreError> {
    let mut out = Vec::new();
    let tenants = tenant_list(&q.tenants);
    RawReader::new(conn)?.read(tenants.as_deref(), (q.from, q.to), &mut out)?;
    Ok(out)
}

pub(super) fn coverage(
    conn: &Connection,
    from: Slot,
    to: Slot,
) -> Result<Vec<SlotCoverage>, StoreError> {
    let ctx = "read slot coverage";
    let mut st = conn
        .prepare_cached(
            "SELECT slot, status FROM slots WHERE slot >= ?1 AND slot < ?2 ORDER BY slot",
        )
        .map_err(StoreError::db(ctx))?;
    let rows = st
        .query_map(params![from.0, to.0], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
        })
        .map_err(StoreError::db(ctx))?;
    let mut out = Vec::new();
    for r in rows {
        let (slot, status) = r.map_err(StoreError::db(ctx))?;
        let status = u8::try_from(status)
            .ok()
            .and_then(SlotStatus::from_code)
            .ok_or_else(|| StoreError::corrupt("slots.status", format!("status {status}")))?;
        out.push(SlotCoverage {
            slot: Slot(slot),
            status,
        });
    }
    Ok(out)
}

/// The slots `[first, end)` whose start lies in `[from, to)`, clamped to
/// the time the store holds anything (samples or rollups), so that an
/// open-ended query does not walk through centuries of empty days.
fn slot_range(
    conn: &Connection,
    tables: &[(&str, i64)],
    from: Timestamp,
    to: Timestamp,
) -> Result<Option<(i64, i64)>, StoreError> {
    let first = Slot::starting_at_or_after(from).0;
    let end = Slot::starting_at_or_after(to).0;
    let mut stored: Option<(i64, i64)> = None;
    let raw = [
        ("samples", SLOTS_PER_HOUR),
        ("samples_days", SLOTS_PER_HOUR * HOURS_PER_DAY),
    ];
    for &(table, slots) in tables.iter().chain(&raw) {
        if let Some((lo, hi)) = stored_range(conn, table)? {
            let (lo, hi) = (lo * slots, (hi + 1) * slots);
            stored = Some(stored.map_or((lo, hi), |(a, b)| (a.min(lo), b.max(hi))));
        }
    }
    Ok(stored
        .map(|(lo, hi)| (first.max(lo), end.min(hi)))
        .filter(|(a, b)| a < b))
}

/// The local date (or first of the month) a slot's start falls on.
fn local_bucket(zone: &jiff::tz::TimeZone, bucket: Bucket, slot: i64) -> Result<Date, StoreError> {
    let t = Timestamp::from_second(slot * accounting::SAMPLE_SECONDS)
        .map_err(|e| StoreError::invalid("usage range", e.to_string()))?;
    let date = t.to_zoned(zone.clone()).date();
    Ok(match bucket {
        Bucket::Day => date,
        Bucket::Month => date.first_of_month(),
    })
}

/// The leading pieces of `pieces` (which starts with slots) that are runs
/// of slots each beginning where the previous ends.
fn slot_run(pieces: &[Planned]) -> &[Planned] {
    let mut end = 1;
    while let (Piece::Slots(_, to), Some(Piece::Slots(from, _))) =
        (pieces[end - 1].piece, pieces.get(end).map(|p| p.piece))
    {
        if from != to {
            break;
        }
        end += 1;
    }
    &pieces[..end]
}

/// Usage totals of one tenant, realm, direction and bucket: what pieces
/// added, and what pieces took away (hours counted in another bucket, out
/// of a daily row counted whole in this one).
struct Sum {
    bytes: u128,
    packets: u128,
    less_bytes: u128,
    less_packets: u128,
    exact: bool,
}

impl Sum {
    fn new() -> Sum {
        Sum {
            bytes: 0,
            packets: 0,
            less_bytes: 0,
            less_packets: 0,
            exact: true,
        }
    }

    fn add(&mut self, (bytes, packets): (u128, u128), p: &Planned) -> Result<(), StoreError> {
        let (b, k) = if p.minus {
            (&mut self.less_bytes, &mut self.less_packets)
        } else {
            (&mut self.bytes, &mut self.packets)
        };
        *b = checked_sum(*b, bytes, "bytes")?;
        *k = checked_sum(*k, packets, "packets")?;
        self.exact &= p.exact;
        Ok(())
    }

    /// Bytes and packets: what was added less what was taken away, which
    /// only a daily row that is not the sum of its hours would make
    /// negative.
    fn total(&self) -> Result<(u128, u128), StoreError> {
        let less = |a: u128, b: u128| {
            a.checked_sub(b).ok_or_else(|| {
                StoreError::corrupt(
                    "daily.totals",
                    "a daily rollup holds less than its hourly rollups",
                )
            })
        };
        Ok((
            less(self.bytes, self.less_bytes)?,
            less(self.packets, self.less_packets)?,
        ))
    }
}

/// One tenant's hourly rollup rows over `hours`, a UTC day at a time: a
/// built day (see [`super::hours`]) is one read of its `hours_by_day`
/// row, any other day a point read of `hourly` per hour. Hours before
/// the hourly retention mark are removed (or about to be: retention
/// writes the mark first) and not read from either.
pub(super) fn hourly_totals(
    conn: &Connection,
    tenant: TenantId,
    hours: std::ops::Range<i64>,
) -> Result<HourTotals, StoreError> {
    // A span longer than the store could hold is someone's mistake, not a
    // reason to loop for ever: ten years of hours at most.
    const MOST_HOURS: i64 = 10 * 366 * HOURS_PER_DAY;
    if hours.end.saturating_sub(hours.start) > MOST_HOURS {
        return Err(StoreError::invalid(
            "hours",
            format!(
                "{} hours is more than the {MOST_HOURS} a read may span",
                hours.end.saturating_sub(hours.start)
            ),
        ));
    }
    let marks = marks::read(conn)?;
    let mut out = HourTotals {
        totals: Vec::new(),
        kept_from: marks.hourly.filter(|m| *m > hours.start),
    };
    // Only where `hourly` or `hours_by_day` has rows (a graph's month
    // may reach past now).
    let days = stored_range(conn, "hours_by_day")?
        .map(|(a, b)| (a * HOURS_PER_DAY, b * HOURS_PER_DAY + HOURS_PER_DAY - 1));
    let Some((first, last)) = [stored_range(conn, "hourly")?, days]
        .into_iter()
        .flatten()
        .reduce(|(a, b), (c, d)| (a.min(c), b.max(d)))
    else {
        return Ok(out);
    };
    let from = hours.start.max(first).max(marks.hourly.unwrap_or(i64::MIN));
    let to = hours.end.min(last.saturating_add(1));
    let built = super::hours::mark(conn)?;
    let ctx = || "read hourly".to_string();
    let mut st = conn
        .prepare_cached("SELECT totals FROM hourly WHERE id = ?1")
        .map_err(StoreError::db(ctx()))?;
    let mut realms = Vec::new();
    let mut day = from.div_euclid(HOURS_PER_DAY);
    while day * HOURS_PER_DAY < to {
        let day_start = day * HOURS_PER_DAY;
        let span = from.max(day_start)..to.min(day_start + HOURS_PER_DAY);
        if super::hours::built(built, day, tenant.0) {
            let in_day = (span.start - day_start) as u8..(span.end - day_start) as u8;
            super::hours::read(conn, (day, tenant.0), in_day, |t: DayHourTotal| {
                out.totals.push(HourTotal {
                    hour: day_start + i64::from(t.hour),
                    realm: t.total.realm,
                    direction: t.total.direction,
                    bytes: t.total.bytes,
                    packets: t.total.packets,
                })
            })?;
            day += 1;
            continue;
        }
        for hour in span {
            let Some(id) = codec::row_id(hour, tenant.0) else {
                continue;
            };
            realms.clear();
            let mut rows = st.query([id]).map_err(StoreError::db(ctx()))?;
            if let Some(r) = rows.next().map_err(StoreError::db(ctx()))? {
                let blob = r.get_ref(0).and_then(|v| Ok(v.as_blob()?));
                codec::decode_realm_totals(
                    blob.map_err(StoreError::db(ctx()))?,
                    "hourly.totals",
                    &mut realms,
                )?;
            }
            out.totals
                .extend(realms.iter().map(|r: &RealmTotal| HourTotal {
                    hour,
                    realm: r.realm,
                    direction: r.direction,
                    bytes: r.bytes,
                    packets: r.packets,
                }));
        }
        day += 1;
    }
    Ok(out)
}

pub(super) fn usage(conn: &Connection, q: &UsageQuery) -> Result<Vec<UsageTotal>, StoreError> {
    let tables = [
        ("hourly", SLOTS_PER_HOUR),
        ("hours_by_day", SLOTS_PER_HOUR * HOURS_PER_DAY),
        ("daily", SLOTS_PER_HOUR * HOURS_PER_DAY),
    ];
    let Some((first, end)) = slot_range(conn, &tables, q.from, q.to)? else {
        return Ok(Vec::new());
    };
    let marks = marks::read(conn)?;
    let bucket_of = |s| local_bucket(&q.zone, q.bucket, s);
    let pieces = plan(first, end, bucket_of, &marks, true)?;
    let tenants = tenant_list(&q.tenants);
    let raw = RawReader::new(conn)?;
    let mut totals: BTreeMap<(u32, u16, u8, Date), Sum> = BTreeMap::new();
    let mut realms: Vec<RealmTotal> = Vec::new();
    let mut samples: Vec<Sample> = Vec::new();
    // Keys and buckets short of what an inexact piece counted elsewhere.
    let mut lent: Vec<((u32, u16, u8), Date, Date)> = Vec::new();
    let mut add = |p: &Planned, (tenant, realm, direction): (u32, RealmId, Direction), figures| {
        let key = (tenant, realm.0, direction.code());
        if p.last != p.bucket {
            lent.push((key, p.bucket, p.last));
        }
        totals
            .entry((key.0, key.1, key.2, p.bucket))
            .or_insert_with(Sum::new)
            .add(figures, p)
    };
    let mut i = 0;
    while i < pieces.len() {
        let p = pieces[i];
        let (table, time, place) = match p.piece {
            Piece::Day(d) => ("daily", d, "daily.totals"),
            Piece::Hour(h) => ("hourly", h, "hourly.totals"),
            Piece::Slots(from, _) => {
                // Adjacent runs of slots (an hour a bucket boundary cuts)
                // are read at once, each sample counted in its run's bucket.
                let run = slot_run(&pieces[i..]);
                let to = run.iter().fold(from, |end, r| match r.piece {
                    Piece::Slots(_, to) => to,
                    _ => end,
                });
                samples.clear();
                raw.read(tenants.as_deref(), (from, to), &mut samples)?;
                for s in &samples {
                    let k = &s.key;
                    let at = run.partition_point(
                        |r| matches!(r.piece, Piece::Slots(_, to) if to <= s.slot),
                    );
                    let figures = (u128::from(s.bytes), u128::from(s.packets));
                    add(&run[at], (k.tenant.0, k.realm, k.direction), figures)?;
                }
                i += run.len();
                continue;
            }
        };
        // The same row may count in two buckets (added to one, taken from
        // another): it is read once.
        let same = pieces[i..]
            .iter()
            .take_while(|u| u.piece == p.piece)
            .count();
        let uses = &pieces[i..i + same];
        each_row(conn, table, "totals", time, &q.tenants, |tenant, blob| {
            realms.clear();
            codec::decode_realm_totals(blob, place, &mut realms)?;
            for r in &realms {
                for u in uses {
                    add(u, (tenant, r.realm, r.direction), (r.bytes, r.packets))?;
                }
            }
            Ok(())
        })?;
        if !matches!(p.piece, Piece::Hour(_)) {
            i += same;
            continue;
        }
        // The hours of built tenant-days are in `hours_by_day` instead
        // (see [`super::hours`]): the following hour pieces of the same
        // UTC day are read from `hourly` too, then every built tenant's
        // row of the day once for all of them.
        let day = time.div_euclid(HOURS_PER_DAY);
        let in_day =
            |u: &Planned| matches!(u.piece, Piece::Hour(h) if h.div_euclid(HOURS_PER_DAY) == day);
        let run = i + pieces[i..].iter().take_while(|u| in_day(u)).count();
        let mut j = i + same;
        while j < run {
            let Piece::Hour(hour) = pieces[j].piece else {
                break;
            };
            let more = pieces[j..run]
                .iter()
                .take_while(|u| u.piece == pieces[j].piece)
                .count();
            let uses = &pieces[j..j + more];
            each_row(
                conn,
                "hourly",
                "totals",
                hour,
                &q.tenants,
                |tenant, blob| {
                    realms.clear();
                    codec::decode_realm_totals(blob, "hourly.totals", &mut realms)?;
                    for r in &realms {
                        for u in uses {
                            add(u, (tenant, r.realm, r.direction), (r.bytes, r.packets))?;
                        }
                    }
                    Ok(())
                },
            )?;
            j += more;
        }
        let uses = &pieces[i..run];
        let of_day = |u: &Planned| match u.piece {
            Piece::Hour(h) => (h - day * HOURS_PER_DAY) as u8,
            _ => 0,
        };
        let lo = uses.iter().map(of_day).min().unwrap_or(0);
        let hi = uses.iter().map(of_day).max().unwrap_or(0) + 1;
        let mut entries: Vec<DayHourTotal> = Vec::new();
        each_row(
            conn,
            "hours_by_day",
            "totals",
            day,
            &q.tenants,
            |tenant, blob| {
                entries.clear();
                codec::decode_day_hours(blob, "hours_by_day.totals", lo..hi, &mut entries)?;
                for t in &entries {
                    let r = t.total;
                    for u in uses.iter().filter(|u| of_day(u) == t.hour) {
                        add(u, (tenant, r.realm, r.direction), (r.bytes, r.packets))?;
                    }
                }
                Ok(())
            },
        )?;
        i = run;
    }
    for ((tenant, realm, dir), from, to) in lent {
        for (_, sum) in totals.range_mut((tenant, realm, dir, from)..=(tenant, realm, dir, to)) {
            sum.exact = false;
        }
    }
    let mut out = Vec::with_capacity(totals.len());
    for ((tenant, realm, dir, bucket), sum) in totals {
        let (bytes, packets) = sum.total()?;
        // A key whose hours of a day all went to other buckets leaves
        // nothing here: no line, as for a key without traffic.
        if (bytes, packets) == (0, 0) && (sum.less_bytes, sum.less_packets) != (0, 0) {
            continue;
        }
        let Some(direction) = Direction::from_code(dir) else {
            continue;
        };
        out.push(UsageTotal {
            tenant: TenantId(tenant),
            realm: RealmId(realm),
            direction,
            bucket,
            bytes,
            packets,
            exact: sum.exact,
        });
    }
    Ok(out)
}

/// Reads the all-tenant row of `tenants_daily` (a day) or
/// `tenants_hourly` (an hour) into `out`, sorted by tenant.
fn tenant_row(
    conn: &Connection,
    daily: bool,
    time: i64,
    exact: bool,
    out: &mut Vec<TenantTotal>,
) -> Result<(), StoreError> {
    let ctx = "rank tenants";
    let (sql, place) = if daily {
        (
            "SELECT totals FROM tenants_daily WHERE day = ?1",
            "tenants_daily.totals",
        )
    } else {
        (
            "SELECT totals FROM tenants_hourly WHERE hour = ?1",
            "tenants_hourly.totals",
        )
    };
    out.clear();
    let mut st = conn.prepare_cached(sql).map_err(StoreError::db(ctx))?;
    let mut rows = st.query([time]).map_err(StoreError::db(ctx))?;
    if let Some(r) = rows.next().map_err(StoreError::db(ctx))? {
        let blob = r.get_ref(0).and_then(|v| Ok(v.as_blob()?));
        codec::decode_tenant_totals(blob.map_err(StoreError::db(ctx))?, place, |t| {
            out.push(TenantTotal { exact, ..t })
        })?;
    }
    Ok(())
}

/// Every tenant's totals over the range, ranked. Whole UTC days come from
/// `tenants_daily` and whole hours from `tenants_hourly` (about 31 rows for
/// a month, whatever the number of tenants). A ragged hour at either end
/// needs 5-minute samples, but only of the tenants that can still make the
/// list: with the whole hour's totals as an upper bound for the ragged
/// part, a tenant whose upper bound is below the `limit`-th largest lower
/// bound cannot, and is not read.
pub(super) fn top_tenants(conn: &Connection, q: &TopQuery) -> Result<Vec<TenantTotal>, StoreError> {
    let tables = [
        ("tenants_hourly", SLOTS_PER_HOUR),
        ("hours_by_day", SLOTS_PER_HOUR * HOURS_PER_DAY),
        ("tenants_daily", SLOTS_PER_HOUR * HOURS_PER_DAY),
    ];
    let Some((first, end)) = slot_range(conn, &tables, q.from, q.to)? else {
        return Ok(Vec::new());
    };
    let marks = marks::read(conn)?;
    // One bucket: the whole range.
    let whole = Date::default();
    let pieces = plan(first, end, |_| Ok(whole), &marks, false)?;
    let mut lower: Vec<TenantTotal> = Vec::new();
    let mut extra: Vec<TenantTotal> = Vec::new();
    let mut ragged: Vec<(Slot, Slot)> = Vec::new();
    let mut bounded = true;
    let mut one: Vec<TenantTotal> = Vec::new();
    // The hours read per UTC day: (hour of the day, whether it bounds a
    // ragged piece, exact), for the built tenant-days' rows below.
    let mut built_hours: BTreeMap<i64, Vec<(u8, bool, bool)>> = BTreeMap::new();
    let mut read_hour = |hour: i64, bound: bool, exact: bool| {
        built_hours
            .entry(hour.div_euclid(HOURS_PER_DAY))
            .or_default()
            .push((hour.rem_euclid(HOURS_PER_DAY) as u8, bound, exact));
    };
    for p in &pieces {
        match p.piece {
            Piece::Day(d) => tenant_row(conn, true, d, p.exact, &mut one)?,
            Piece::Hour(h) => {
                read_hour(h, false, p.exact);
                tenant_row(conn, false, h, p.exact, &mut one)?
            }
            Piece::Slots(from, to) => {
                ragged.push((from, to));
                let hour = from.0.div_euclid(SLOTS_PER_HOUR);
                bounded &= marks.hourly_kept(hour);
                read_hour(hour, true, true);
                tenant_row(conn, false, hour, true, &mut one)?;
                codec::add_tenant_totals(&mut extra, &one)?;
                continue;
            }
        }
        codec::add_tenant_totals(&mut lower, &one)?;
    }
    // `tenants_hourly` has no entry of a built tenant-day (see
    // [`super::hours`]): its hours come from its `hours_by_day` row, every
    // tenant's row of a day read once for all the day's hours.
    for (day, hours) in &built_hours {
        let lo = hours.iter().map(|h| h.0).min().unwrap_or(0);
        let hi = hours.iter().map(|h| h.0).max().unwrap_or(0) + 1;
        let (mut day_lower, mut day_extra) = (Vec::new(), Vec::new());
        let mut entries: Vec<DayHourTotal> = Vec::new();
        each_row(
            conn,
            "hours_by_day",
            "totals",
            *day,
            &Tenants::All,
            |tenant, blob| {
                entries.clear();
                codec::decode_day_hours(blob, "hours_by_day.totals", lo..hi, &mut entries)?;
                let mut low: Option<TenantTotal> = None;
                let mut high: Option<TenantTotal> = None;
                for e in &entries {
                    let Some(&(_, bound, exact)) = hours.iter().find(|h| h.0 == e.hour) else {
                        continue;
                    };
                    let t = if bound { &mut high } else { &mut low };
                    let t = t.get_or_insert(TenantTotal::new(TenantId(tenant)));
                    t.exact &= exact;
                    t.add(e.total.direction, e.total.bytes, e.total.packets)?;
                }
                day_lower.extend(low);
                day_extra.extend(high);
                Ok(())
            },
        )?;
        codec::add_tenant_totals(&mut lower, &day_lower)?;
        codec::add_tenant_totals(&mut extra, &day_extra)?;
    }
    if ragged.is_empty() {
        return Ok(rank(lower, q.by, q.limit));
    }
    // The tenants that can make the list, or everybody if an hour's
    // totals are gone and bound nothing.
    let wanted: Option<Vec<TenantId>> = if bounded {
        let mut lows: Vec<u128> = lower.iter().map(|t| t.bytes(q.by)).collect();
        let threshold = match q.limit {
            0 => u128::MAX,
            n if n > lows.len() => 0,
            n => *lows.select_nth_unstable_by(n - 1, |a, b| b.cmp(a)).1,
        };
        let mut upper = lower.clone();
        codec::add_tenant_totals(&mut upper, &extra)?;
        Some(
            upper
                .iter()
                .filter(|t| t.bytes(q.by) >= threshold && t.bytes(q.by) > 0)
                .map(|t| t.tenant)
                .collect(),
        )
    } else {
        None
    };
    let mut sum: Vec<TenantTotal> = match &wanted {
        Some(list) => lower
            .iter()
            .filter(|t| list.binary_search(&t.tenant).is_ok())
            .copied()
            .collect(),
        None => lower,
    };
    let raw = RawReader::new(conn)?;
    let mut samples: Vec<Sample> = Vec::new();
    for (from, to) in ragged {
        samples.clear();
        raw.read(wanted.as_deref(), (from, to), &mut samples)?;
        samples.sort_by_key(|s| s.key.tenant);
        one.clear();
        for s in &samples {
            if one.last().is_none_or(|t| t.tenant != s.key.tenant) {
                one.push(TenantTotal::new(s.key.tenant));
            }
            if let Some(t) = one.last_mut() {
                t.add(s.key.direction, u128::from(s.bytes), u128::from(s.packets))?;
            }
        }
        codec::add_tenant_totals(&mut sum, &one)?;
    }
    Ok(rank(sum, q.by, q.limit))
}

/// Bytes summed over every row of each rollup table, for consistency
/// checks: each must equal the raw samples' sum. `hourly` and
/// `tenants_hourly` include the built tenant-days' hours, which are in
/// `hours_by_day` instead.
pub(super) fn rollup_bytes(conn: &Connection) -> Result<Vec<(&'static str, u128)>, StoreError> {
    let built = built_hour_bytes(conn)?;
    let mut out = Vec::new();
    for (table, place) in [("hourly", "hourly.totals"), ("daily", "daily.totals")] {
        let mut bytes = 0u128;
        let mut realms = Vec::new();
        for_each_blob(conn, table, |blob| {
            realms.clear();
            codec::decode_realm_totals(blob, place, &mut realms)?;
            for r in &realms {
                bytes = checked_sum(bytes, r.bytes, "bytes")?;
            }
            Ok(())
        })?;
        if table == "hourly" {
            bytes = checked_sum(bytes, built, "bytes")?;
        }
        out.push((table, bytes));
    }
    for (table, place) in [
        ("tenants_hourly", "tenants_hourly.totals"),
        ("tenants_daily", "tenants_daily.totals"),
    ] {
        let mut all = TenantTotal::new(TenantId(0));
        let mut result = Ok(());
        for_each_blob(conn, table, |blob| {
            codec::decode_tenant_totals(blob, place, |t| {
                if result.is_ok() {
                    result = codec::add_tenant_total(&mut all, &t);
                }
            })
        })?;
        result?;
        let mut bytes = all.bytes(RankBy::Total);
        if table == "tenants_hourly" {
            bytes = checked_sum(bytes, built, "bytes")?;
        }
        out.push((table, bytes));
    }
    Ok(out)
}

/// Bytes summed over the `hours_by_day` rows (the hours of built
/// tenant-days, see [`super::hours`]), from the first hour retention
/// keeps.
fn built_hour_bytes(conn: &Connection) -> Result<u128, StoreError> {
    let kept = marks::read(conn)?.hourly.unwrap_or(i64::MIN);
    let ctx = || "read every row of hours_by_day".to_string();
    let mut st = conn
        .prepare("SELECT id, totals FROM hours_by_day")
        .map_err(StoreError::db(ctx()))?;
    let mut rows = st.query([]).map_err(StoreError::db(ctx()))?;
    let mut entries = Vec::new();
    let mut bytes = 0u128;
    while let Some(r) = rows.next().map_err(StoreError::db(ctx()))? {
        let id: i64 = r.get(0).map_err(StoreError::db(ctx()))?;
        let first = codec::split_row_id(id).0 * HOURS_PER_DAY;
        let blob = r.get_ref(1).and_then(|v| Ok(v.as_blob()?));
        let blob = blob.map_err(StoreError::db(ctx()))?;
        entries.clear();
        codec::decode_day_hours(blob, "hours_by_day.totals", 0..24, &mut entries)?;
        for t in entries.iter().filter(|t| first + i64::from(t.hour) >= kept) {
            bytes = checked_sum(bytes, t.total.bytes, "bytes")?;
        }
    }
    Ok(bytes)
}

fn for_each_blob(
    conn: &Connection,
    table: &str,
    mut each: impl FnMut(&[u8]) -> Result<(), StoreError>,
) -> Result<(), StoreError> {
    let ctx = || format!("read every row of {table}");
    let mut st = conn
        .prepare(&format!("SELECT totals FROM {table}"))
        .map_err(StoreError::db(ctx()))?;
    let mut rows = st.query([]).map_err(StoreError::db(ctx()))?;
    while let Some(r) = rows.next().map_err(StoreError::db(ctx()))? {
        let blob = r.get_ref(0).and_then(|v| Ok(v.as_blob()?));
        each(blob.map_err(StoreError::db(ctx()))?)?;
    }
    Ok(())
}

pub(super) fn last_state(conn: &Connection) -> Result<Option<StoredState>, StoreError> {
    conn.query_row(
        "SELECT sequence, blob FROM accounting_state WHERE id = 1",
        [],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
    )
    .optional()
    .map_err(StoreError::db("read the accounting state"))?
    .map(|(seq, blob)| {
        Ok(StoredState {
            sequence: u64_of(seq, "accounting_state.sequence")?,
            blob,
        })
    })
    .transpose()
}

pub(super) fn writer_state(
    conn: &Connection,
    writer: &str,
) -> Result<Option<StoredState>, StoreError> {
    conn.query_row(
        "SELECT sequence, blob FROM writers WHERE writer = ?1",
        [writer],
        |r| Ok((r.get::<_, i64>(0)?, r.get::<_, Vec<u8>>(1)?)),
    )
    .optional()
    .map_err(StoreError::db(format!("read the state of writer {writer}")))?
    .map(|(seq, blob)| {
        Ok(StoredState {
            sequence: u64_of(seq, "writers.sequence")?,
            blob,
        })
    })
    .transpose()
}

pub(super) fn writers(conn: &Connection) -> Result<Vec<crate::WriterSequence>, StoreError> {
    let ctx = "read the writers";
    let mut st = conn
        .prepare("SELECT writer, sequence FROM writers ORDER BY writer")
        .map_err(StoreError::db(ctx))?;
    let rows = st
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .map_err(StoreError::db(ctx))?;
    let mut out = Vec::new();
    for row in rows {
        let (writer, sequence) = row.map_err(StoreError::db(ctx))?;
        out.push(crate::WriterSequence {
            writer,
            sequence: u64_of(sequence, "writers.sequence")?,
        });
    }
    Ok(out)
}

pub(super) fn batch_sequences(conn: &Connection) -> Result<Vec<u64>, StoreError> {
    let ctx = "read batch sequences";
    let mut st = conn
        .prepare("SELECT sequence FROM batches ORDER BY sequence")
        .map_err(StoreError::db(ctx))?;
    let rows = st
        .query_map([], |r| r.get::<_, i64>(0))
        .map_err(StoreError::db(ctx))?;
    rows.map(|r| u64_of(r.map_err(StoreError::db(ctx))?, "batches.sequence"))
        .collect()
}

pub(super) fn frozen(conn: &Connection, label: &str) -> Result<Option<FrozenPeriod>, StoreError> {
    let ctx = format!("read frozen period {label}");
    let row = conn
        .query_row(
            "SELECT start_ms, end_ms, frozen_at_ms, bill FROM frozen_periods WHERE label = ?1",
            [label],
            |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, String>(3)?,
                ))
            },
        )
        .optional()
        .map_err(StoreError::db(ctx))?;
    let Some((s, e, f, bill)) = row else {
        return Ok(None);
    };
    let ts = |ms: i64, col: &str| {
        Timestamp::from_millisecond(ms)
            .map_err(|err| StoreError::corrupt(format!("frozen_periods.{col}"), err.to_string()))
    };
    Ok(Some(FrozenPeriod {
        label: label.to_string(),
        start: ts(s, "start_ms")?,
        end: ts(e, "end_ms")?,
        frozen_at: ts(f, "frozen_at_ms")?,
        bill,
    }))
}
