//! The storage port: what the daemon and the CLI need from a history store.

use crate::attacks::AttackRow;
use crate::error::StoreError;
use crate::latency::{LatencyQuery, LatencyReport};
use crate::refusal::{Quarantine, Refusal, WriteReport};
use accounting::{Direction, Sample, Slot, SlotCoverage};
use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use net_types::{RealmId, TenantId};
use serde::{Deserialize, Serialize};

/// What one accounting step produced, written in one transaction.
#[derive(Clone, Copy, Debug)]
pub struct Batch<'a> {
    /// Strictly increasing: the store refuses a sequence it has seen, so a
    /// batch can never be applied twice.
    pub sequence: u64,
    /// The closed samples.
    pub samples: &'a [Sample],
    /// The closed slots.
    pub coverage: &'a [SlotCoverage],
    /// The accountant's state after producing them
    /// ([`accounting::AccountantState::encode`]).
    pub state: &'a [u8],
}

/// Samples that add to what is stored (same slot and key: bytes and
/// packets are summed), from a writer other than the accountant: a flow
/// collector, whose records arrive after the accountant closed their
/// slots. Written in one transaction, like a [`Batch`].
#[derive(Clone, Copy, Debug)]
pub struct AddBatch<'a> {
    /// Who writes: each writer has its own sequence and state. Not empty.
    pub writer: &'a str,
    /// Strictly increasing per writer: the store refuses a sequence at or
    /// below the writer's last, so a retried batch never counts twice.
    pub sequence: u64,
    /// The samples to add, in any order; a slot and key given twice is
    /// added twice.
    pub samples: &'a [Sample],
    /// Slots the writer observed. A slot already recorded keeps the
    /// better status of the two.
    pub coverage: &'a [SlotCoverage],
    /// The writer's state after producing the samples, returned by
    /// [`Store::writer_state`].
    pub state: &'a [u8],
}

/// One tenant's bytes and packets to one realm in one direction over one
/// UTC hour, from the hourly rollup.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HourTotal {
    /// The hour, counted from the Unix epoch (its start is `hour × 3600`).
    pub hour: i64,
    /// Which realm.
    pub realm: RealmId,
    /// Which way.
    pub direction: Direction,
    /// Bytes, summed over bands.
    pub bytes: u128,
    /// Packets, summed over bands.
    pub packets: u128,
}

/// One tenant's hourly totals over a span of hours.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HourTotals {
    /// The totals, ordered by hour, realm, direction; hours without
    /// traffic have none.
    pub totals: Vec<HourTotal>,
    /// The first hour whose rollup retention kept, when it removed some
    /// of the span's: before it, absent means removed, not idle.
    pub kept_from: Option<i64>,
}

/// The accounting state of the last committed batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredState {
    /// The batch it was committed with.
    pub sequence: u64,
    /// The encoded state.
    pub blob: Vec<u8>,
}

/// A writer that added batches ([`Store::add`]) and the last sequence it
/// committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriterSequence {
    /// The writer's name (an agent's host, `flows`).
    pub writer: String,
    /// Its last committed batch.
    pub sequence: u64,
}

/// Which tenants a query is about.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tenants {
    /// Everybody.
    All,
    /// These.
    Only(Vec<TenantId>),
}

/// Samples of some tenants in `[from, to)`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleQuery {
    /// Whose.
    pub tenants: Tenants,
    /// The first slot.
    pub from: Slot,
    /// The first slot after the range.
    pub to: Slot,
}

/// How usage totals are grouped in time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Bucket {
    /// Local calendar days.
    Day,
    /// Local calendar months.
    Month,
}

/// Usage totals per tenant × realm × direction per day or month.
///
/// Exact to the 5-minute slot: a sample counts when its slot starts in
/// `[from, to)`, in the local day (or month) in which its slot starts, the
/// way billing's periods count slots (`billing::Period::first_slot`). So `from` and
/// `to` may be any instants (a billing period's start and end in any zone,
/// `:15` and `:30` offsets included), and the totals of a period equal the
/// sum of its samples, to the byte.
#[derive(Clone, Debug)]
pub struct UsageQuery {
    /// Whose.
    pub tenants: Tenants,
    /// From this instant: the first slot counted is the first that starts
    /// at or after it.
    pub from: Timestamp,
    /// To this instant (exclusive): the last slot counted is the last that
    /// starts before it.
    pub to: Timestamp,
    /// Days or months.
    pub bucket: Bucket,
    /// The zone whose calendar defines days and months.
    pub zone: TimeZone,
}

/// One line of usage.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UsageTotal {
    /// Whose.
    pub tenant: TenantId,
    /// Which realm.
    pub realm: RealmId,
    /// Which direction.
    pub direction: Direction,
    /// The local day, or the first day of the local month.
    pub bucket: Date,
    /// Bytes: a sum of many samples, so wider than a sample.
    pub bytes: u128,
    /// Packets.
    pub packets: u128,
    /// `false` when part of it comes from a rollup coarser than the
    /// bucket's (or the range's) edge needs, because retention removed the
    /// finer data: such an hour (or UTC day) is counted whole, in the bucket
    /// its first slot in the range falls in. Always `true` while the
    /// 5-minute samples are kept (and for zones whose offset is whole hours,
    /// while the hourly rollups are).
    #[serde(default = "exact")]
    pub exact: bool,
}

fn exact() -> bool {
    true
}

/// One tenant's traffic over a time range, all realms and bands added up.
/// Sums of many samples, so wider than a sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantTotal {
    /// Whose.
    pub tenant: TenantId,
    /// Bytes toward the tenant.
    pub down_bytes: u128,
    /// Bytes from the tenant.
    pub up_bytes: u128,
    /// Packets toward the tenant.
    pub down_packets: u128,
    /// Packets from the tenant.
    pub up_packets: u128,
    /// `false` when an hour (or day) at the range's edge was counted whole
    /// because retention removed the finer data (see [`UsageTotal::exact`]).
    #[serde(default = "exact")]
    pub exact: bool,
}

impl TenantTotal {
    /// A tenant without traffic.
    pub fn new(tenant: TenantId) -> TenantTotal {
        TenantTotal {
            tenant,
            down_bytes: 0,
            up_bytes: 0,
            down_packets: 0,
            up_packets: 0,
            exact: true,
        }
    }

    /// The figure a [`RankBy`] ranks by.
    pub fn bytes(&self, by: RankBy) -> u128 {
        match by {
            // Each is a sum of fewer than 2^64 samples of at most 2^64
            // bytes, far below 2^127.
            RankBy::Total => self.down_bytes + self.up_bytes,
            RankBy::Down => self.down_bytes,
            RankBy::Up => self.up_bytes,
        }
    }

    /// Adds traffic of one direction. Sums of stored samples stay far below
    /// `u128::MAX`; a sum that would not is refused (only a corrupt stored
    /// total can make one).
    pub fn add(
        &mut self,
        direction: Direction,
        bytes: u128,
        packets: u128,
    ) -> Result<(), StoreError> {
        let (b, p) = match direction {
            Direction::Down => (&mut self.down_bytes, &mut self.down_packets),
            Direction::Up => (&mut self.up_bytes, &mut self.up_packets),
        };
        *b = checked_sum(*b, bytes, "bytes")?;
        *p = checked_sum(*p, packets, "packets")?;
        Ok(())
    }
}

/// `a + b`, or an error for the impossible sum past `u128::MAX`.
pub(crate) fn checked_sum(a: u128, b: u128, what: &str) -> Result<u128, StoreError> {
    a.checked_add(b).ok_or_else(|| {
        StoreError::corrupt(
            "a stored total",
            format!("{what} add up past 2^128 − 1; a stored total is not a real one"),
        )
    })
}

/// Which bytes [`Store::top_tenants`] ranks by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RankBy {
    /// Down and up added.
    #[default]
    Total,
    /// Toward the tenant.
    Down,
    /// From the tenant.
    Up,
}

/// The tenants with the most traffic in `[from, to)`, exact to the slot
/// like [`UsageQuery`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TopQuery {
    /// From this instant (the first slot that starts at or after it).
    pub from: Timestamp,
    /// To this instant (exclusive).
    pub to: Timestamp,
    /// Which bytes.
    pub by: RankBy,
    /// At most this many tenants.
    pub limit: usize,
}

/// How long each kind of data is kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Raw 5-minute samples (and slot coverage). Never deleted inside a
    /// period that is not frozen, whatever this says.
    pub raw: SignedDuration,
    /// Hourly rollups.
    pub hourly: SignedDuration,
    /// Daily rollups.
    pub daily: SignedDuration,
}

impl Default for Retention {
    /// Raw for 70 days (a 31-day period plus a month's grace to freeze
    /// it), hourly for 3 years, daily for 10.
    fn default() -> Self {
        Retention {
            raw: SignedDuration::from_hours(24 * 70),
            hourly: SignedDuration::from_hours(24 * 1096),
            daily: SignedDuration::from_hours(24 * 3653),
        }
    }
}

/// What a retention pass removed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RetentionReport {
    /// Raw samples before this slot were removed.
    pub raw_cutoff: Option<Slot>,
    /// Why the raw cut-off is earlier than the retention asks, if it is.
    pub raw_held_back: Option<String>,
    /// Raw samples removed.
    pub samples_deleted: u64,
    /// Hourly rollup rows removed (one per tenant and hour in the SQLite
    /// store).
    pub hourly_deleted: u64,
    /// Daily rollup rows removed (one per tenant and day in the SQLite
    /// store).
    pub daily_deleted: u64,
    /// Latency minutes removed (kept as long as the raw samples' retention
    /// says, whether or not a period is frozen: no bill reads them).
    #[serde(default)]
    pub latency_deleted: u64,
}

/// The first Unix minute the raw retention keeps as of `now`.
pub fn latency_cutoff(now: Timestamp, retention: &Retention) -> Result<i64, StoreError> {
    if retention.raw <= SignedDuration::ZERO {
        return Err(StoreError::Invalid {
            field: "retention.raw".into(),
            problem: format!("{:#} is not a positive duration", retention.raw),
        });
    }
    let cut = now.checked_sub(retention.raw).unwrap_or(Timestamp::MIN);
    Ok(cut.as_second().div_euclid(60))
}

/// What a [`Store::compact`] call did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompactReport {
    /// Tenant-days folded into day rows.
    pub tenant_days: u64,
    /// Hour rows they replaced.
    pub hour_rows: u64,
    /// Samples moved.
    pub samples: u64,
    /// Tenant-days whose hourly rollup was gathered into one row (which
    /// [`Store::hourly_totals`] reads instead of the day's 24 hours);
    /// they count toward the call's limit too.
    pub hour_days: u64,
    /// Nothing is left to compact as of the call's `now`.
    pub done: bool,
}

/// A closed billing period's bill, immutable once stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FrozenPeriod {
    /// `YYYY-MM`.
    pub label: String,
    /// The period's first instant.
    pub start: Timestamp,
    /// The period's end (exclusive).
    pub end: Timestamp,
    /// When it was frozen.
    pub frozen_at: Timestamp,
    /// The bill as the daemon rendered it (JSON of every tenant's bill).
    pub bill: String,
}

/// A history store. The SQLite one is [`crate::SqliteStore`]; a ClickHouse
/// one can follow behind the same trait.
pub trait Store {
    /// Stores a batch of samples, coverage and the accounting state in one
    /// transaction: all of it, or none of it. A sample that cannot be
    /// stored (see [`crate::refusal`]) is refused on its own and kept in the
    /// quarantine in the same transaction; the report lists it.
    fn append(&mut self, batch: &Batch<'_>) -> Result<WriteReport, StoreError>;

    /// The accounting state committed with the last batch.
    fn last_state(&self) -> Result<Option<StoredState>, StoreError>;

    /// Adds samples to what is stored (summing bytes and packets of a slot
    /// and key already there), with the rollups, the coverage and the
    /// writer's state, in one transaction: all of it, or none of it.
    /// Samples inside a frozen period are stored too, so that no data is
    /// lost, but the frozen bill does not change. Refused with
    /// [`StoreError::AlreadyAppended`] if the writer already committed
    /// this sequence or a later one. A sample that cannot be stored (see
    /// [`crate::refusal`]) is refused on its own and kept in the quarantine
    /// in the same transaction; the report lists it.
    fn add(&mut self, batch: &AddBatch<'_>) -> Result<WriteReport, StoreError>;

    /// Keeps samples a writer refused itself in the quarantine, under its
    /// name and batch sequence, up to [`crate::QUARANTINE_CAP`]; the rest
    /// are counted as dropped. Returns (kept, dropped).
    fn quarantine(
        &mut self,
        writer: &str,
        sequence: u64,
        refused: &[Refusal],
    ) -> Result<(usize, usize), StoreError>;

    /// The quarantine's counts and its first `limit` samples, oldest first.
    fn quarantined(&self, limit: usize) -> Result<Quarantine, StoreError>;

    /// Removes the quarantined samples numbered up to `through` (after
    /// someone has looked at them); the counts stay. Returns how many.
    fn clear_quarantine(&mut self, through: u64) -> Result<u64, StoreError>;

    /// The state the writer committed with its last batch.
    fn writer_state(&self, writer: &str) -> Result<Option<StoredState>, StoreError>;

    /// Every writer that added batches, by name, with its last committed
    /// sequence: where agents that write straight into a shared store
    /// stand, though no central daemon saw their batches.
    fn writers(&self) -> Result<Vec<WriterSequence>, StoreError>;

    /// Raw samples, ordered by slot then key.
    fn samples(&self, query: &SampleQuery) -> Result<Vec<Sample>, StoreError>;

    /// Coverage of the slots in `[from, to)` that were observed.
    fn coverage(&self, from: Slot, to: Slot) -> Result<Vec<SlotCoverage>, StoreError>;

    /// Usage totals, ordered by tenant, realm, direction, bucket.
    fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageTotal>, StoreError>;

    /// One tenant's hourly rollup over the UTC hours `[from, to)` (hours
    /// since the epoch): what a graph at an hour or coarser reads, an
    /// hour's row instead of its twelve 5-minute samples (in the SQLite
    /// store, a compacted UTC day's 24 hours are one row). Hours before
    /// the hourly retention mark are never returned.
    fn hourly_totals(
        &self,
        tenant: TenantId,
        hours: std::ops::Range<i64>,
    ) -> Result<HourTotals, StoreError>;

    /// Compacts stored samples (and, in the SQLite store, the hourly
    /// rollup) for faster reads, as of `now`: at most `limit` units of
    /// work (tenant-days in the SQLite store, of either kind), each step
    /// its own transaction. Reads give the same answers before and after.
    /// The default does nothing and reports that nothing is left; the
    /// daemon calls it periodically (after retention) until `done`.
    fn compact(&mut self, now: Timestamp, limit: usize) -> Result<CompactReport, StoreError> {
        let _ = (now, limit);
        Ok(CompactReport {
            done: true,
            ..CompactReport::default()
        })
    }

    /// Stores closed latency minutes ([`crate::latency`]): each row
    /// checked alone, an absurd one refused and listed in the report, the
    /// rest committed together.
    fn append_latency(&mut self, minutes: &latency::Minutes) -> Result<LatencyReport, StoreError>;

    /// Latency minutes in `[from, to)`, earliest first (at most `limit`
    /// rows of each kind).
    fn latency(&self, query: &LatencyQuery) -> Result<latency::Minutes, StoreError>;

    /// Removes what the retention allows, as of `now`.
    fn apply_retention(
        &mut self,
        now: Timestamp,
        retention: &Retention,
    ) -> Result<RetentionReport, StoreError>;

    /// Stores a closed period's bill. Refused if the period is already
    /// frozen or has not ended at `period.frozen_at`.
    fn freeze(&mut self, period: &FrozenPeriod) -> Result<(), StoreError>;

    /// A frozen period's bill.
    fn frozen(&self, label: &str) -> Result<Option<FrozenPeriod>, StoreError>;

    /// Keeps one of the guard's ended attacks. Returns `false` if an
    /// attack with the same start, target and direction is already kept
    /// (which is left as it is): recording twice keeps one row.
    fn record_attack(&mut self, attack: &AttackRow) -> Result<bool, StoreError>;

    /// The latest `limit` (at most [`crate::MAX_ATTACKS`]) attacks that
    /// ended at or after `since`, oldest first (by end, then start and
    /// target).
    fn attacks(&self, since: Timestamp, limit: usize) -> Result<Vec<AttackRow>, StoreError>;

    /// The top talkers of the kept flow records over the query's range
    /// (`[history.flows]`), the largest first. Only the ClickHouse store
    /// keeps flow records; the default says so, naming `history.flows`.
    fn flow_top(
        &self,
        query: &crate::flows::FlowTopQuery,
    ) -> Result<Vec<crate::flows::Talker>, StoreError> {
        query.check()?;
        Err(crate::flows::not_kept())
    }

    /// The `limit` tenants with the most bytes in the range, the largest
    /// first (ties by tenant number). Tenants without traffic are not
    /// listed. Exact to the slot, like [`Store::usage`].
    ///
    /// The default adds up [`Store::usage`] by UTC day, which is correct
    /// but reads every tenant's rollups; a store should answer it from
    /// running totals instead, as [`crate::SqliteStore`] does.
    fn top_tenants(&self, query: &TopQuery) -> Result<Vec<TenantTotal>, StoreError> {
        let usage = self.usage(&UsageQuery {
            tenants: Tenants::All,
            from: query.from,
            to: query.to,
            bucket: Bucket::Day,
            zone: TimeZone::UTC,
        })?;
        let mut totals: Vec<TenantTotal> = Vec::new();
        for u in usage {
            if totals.last().is_none_or(|t| t.tenant != u.tenant) {
                totals.push(TenantTotal::new(u.tenant));
            }
            if let Some(t) = totals.last_mut() {
                t.add(u.direction, u.bytes, u.packets)?;
                t.exact &= u.exact;
            }
        }
        Ok(rank(totals, query.by, query.limit))
    }
}

/// The `limit` largest of `totals` by `by`, largest first, ties by tenant;
/// tenants without any bytes by `by` are left out.
pub(crate) fn rank(mut totals: Vec<TenantTotal>, by: RankBy, limit: usize) -> Vec<TenantTotal> {
    totals.retain(|t| t.bytes(by) > 0);
    let order = |a: &TenantTotal, b: &TenantTotal| {
        b.bytes(by).cmp(&a.bytes(by)).then(a.tenant.cmp(&b.tenant))
    };
    // Selecting first keeps a top-100 of 10,000 tenants from sorting them all.
    if limit < totals.len() {
        totals.select_nth_unstable_by(limit, order);
        totals.truncate(limit);
    }
    totals.sort_unstable_by(order);
    totals
}

/// A boxed store is a store: the binary picks SQLite or ClickHouse at run
/// time and hands the box to code written for `impl Store`. Every method
/// forwards, the provided ones too, so a store's own `compact` and
/// `top_tenants` are kept.
impl<S: Store + ?Sized> Store for Box<S> {
    fn append(&mut self, batch: &Batch<'_>) -> Result<WriteReport, StoreError> {
        (**self).append(batch)
    }

    fn last_state(&self) -> Result<Option<StoredState>, StoreError> {
        (**self).last_state()
    }

    fn add(&mut self, batch: &AddBatch<'_>) -> Result<WriteReport, StoreError> {
        (**self).add(batch)
    }

    fn quarantine(
        &mut self,
        writer: &str,
        sequence: u64,
        refused: &[Refusal],
    ) -> Result<(usize, usize), StoreError> {
        (**self).quarantine(writer, sequence, refused)
    }

    fn quarantined(&self, limit: usize) -> Result<Quarantine, StoreError> {
        (**self).quarantined(limit)
    }

    fn clear_quarantine(&mut self, through: u64) -> Result<u64, StoreError> {
        (**self).clear_quarantine(through)
    }

    fn writer_state(&self, writer: &str) -> Result<Option<StoredState>, StoreError> {
        (**self).writer_state(writer)
    }

    fn writers(&self) -> Result<Vec<WriterSequence>, StoreError> {
        (**self).writers()
    }

    fn samples(&self, query: &SampleQuery) -> Result<Vec<Sample>, StoreError> {
        (**self).samples(query)
    }

    fn coverage(&self, from: Slot, to: Slot) -> Result<Vec<SlotCoverage>, StoreError> {
        (**self).coverage(from, to)
    }

    fn usage(&self, query: &UsageQuery) -> Result<Vec<UsageTotal>, StoreError> {
        (**self).usage(query)
    }

    fn hourly_totals(
        &self,
        tenant: TenantId,
        hours: std::ops::Range<i64>,
    ) -> Result<HourTotals, StoreError> {
        (**self).hourly_totals(tenant, hours)
    }

    fn compact(&mut self, now: Timestamp, limit: usize) -> Result<CompactReport, StoreError> {
        (**self).compact(now, limit)
    }

    fn append_latency(&mut self, minutes: &latency::Minutes) -> Result<LatencyReport, StoreError> {
        (**self).append_latency(minutes)
    }

    fn latency(&self, query: &LatencyQuery) -> Result<latency::Minutes, StoreError> {
        (**self).latency(query)
    }

    fn apply_retention(
        &mut self,
        now: Timestamp,
        retention: &Retention,
    ) -> Result<RetentionReport, StoreError> {
        (**self).apply_retention(now, retention)
    }

    fn freeze(&mut self, period: &FrozenPeriod) -> Result<(), StoreError> {
        (**self).freeze(period)
    }

    fn frozen(&self, label: &str) -> Result<Option<FrozenPeriod>, StoreError> {
        (**self).frozen(label)
    }

    fn top_tenants(&self, query: &TopQuery) -> Result<Vec<TenantTotal>, StoreError> {
        (**self).top_tenants(query)
    }

    fn record_attack(&mut self, attack: &AttackRow) -> Result<bool, StoreError> {
        (**self).record_attack(attack)
    }

    fn attacks(&self, since: Timestamp, limit: usize) -> Result<Vec<AttackRow>, StoreError> {
        (**self).attacks(since, limit)
    }

    fn flow_top(
        &self,
        query: &crate::flows::FlowTopQuery,
    ) -> Result<Vec<crate::flows::Talker>, StoreError> {
        (**self).flow_top(query)
    }
}
