//! The accountant: readings of every counter at one instant in, closed
//! 5-minute samples out.

use crate::counter::{
    delta, CounterEvent, CounterWidth, FirstSight, ObjectIdentity, Reading, Usage,
};
use crate::key::UsageKey;
use crate::slot::{Slot, SAMPLE_MILLIS};
use crate::spread::spread;
use crate::state::{AccountantState, CounterState, OpenCoverage, OpenSample};
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

/// How the accountant reads counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Config {
    /// How wide the kernel's packet counters are.
    pub packet_width: CounterWidth,
    /// What to do with a counter seen for the first time.
    pub first_sight: FirstSight,
    /// A read interval longer than this is a gap (the daemon was stopped):
    /// its traffic is still counted, spread evenly over the gap, and the
    /// slots it touches are marked [`SlotStatus::Estimated`].
    pub max_interval: SignedDuration,
    /// A counter not read for this long is forgotten (the object is gone);
    /// if it comes back it is a first sight again.
    pub forget_after: SignedDuration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            packet_width: CounterWidth::Bits32,
            first_sight: FirstSight::Baseline,
            max_interval: SignedDuration::from_secs(60),
            forget_after: SignedDuration::from_hours(24 * 7),
        }
    }
}

/// One 5-minute sample: the traffic of one key in one slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sample {
    /// Which five minutes.
    pub slot: Slot,
    /// Whose traffic.
    pub key: UsageKey,
    /// Bytes in the slot.
    pub bytes: u64,
    /// Packets in the slot.
    pub packets: u64,
}

/// How well a closed slot was observed. A slot the accountant never
/// observed has no record at all (it is *missing*).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotStatus {
    /// Every instant of the slot lay in a read interval no longer than
    /// [`Config::max_interval`]: the samples are measured.
    Measured,
    /// Covered, but partly by a longer interval (a gap), whose traffic was
    /// spread evenly: totals are exact, the split between slots is not.
    Estimated,
    /// Part of the slot was never observed (the accountant started inside
    /// it): its samples may be short of the truth.
    Partial,
}

impl fmt::Display for SlotStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SlotStatus::Measured => "measured",
            SlotStatus::Estimated => "estimated",
            SlotStatus::Partial => "partial",
        })
    }
}

impl SlotStatus {
    /// The number the store keeps.
    pub fn code(self) -> u8 {
        match self {
            SlotStatus::Measured => 0,
            SlotStatus::Estimated => 1,
            SlotStatus::Partial => 2,
        }
    }

    /// The inverse of [`SlotStatus::code`].
    pub fn from_code(code: u8) -> Option<SlotStatus> {
        match code {
            0 => Some(SlotStatus::Measured),
            1 => Some(SlotStatus::Estimated),
            2 => Some(SlotStatus::Partial),
            _ => None,
        }
    }
}

/// A closed slot and how well it was observed. A key with no [`Sample`] in
/// a slot that has a coverage record carried no traffic in it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotCoverage {
    /// Which five minutes.
    pub slot: Slot,
    /// How well.
    pub status: SlotStatus,
}

/// What one [`Accountant::observe`] closed.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Closed {
    /// Samples of slots that ended at or before the read, ordered by slot
    /// then key. Keys without traffic in a slot have no sample.
    pub samples: Vec<Sample>,
    /// Every slot that closed, in order.
    pub slots: Vec<SlotCoverage>,
    /// Counters that wrapped, reset or appeared, for the log.
    pub events: Vec<(UsageKey, CounterEvent)>,
}

/// Why a batch of readings was refused. The accountant is unchanged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccountingError {
    /// The read is older than the previous one (the clock went back).
    TimeWentBackwards {
        /// The time of this read.
        now: Timestamp,
        /// The time of the previous read.
        previous: Timestamp,
    },
    /// The same key appeared twice in one batch.
    DuplicateKey(UsageKey),
}

impl fmt::Display for AccountingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AccountingError::TimeWentBackwards { now, previous } => write!(
                f,
                "readings at {now} are older than the previous readings at {previous}; \
                 the clock went backwards and the batch was ignored"
            ),
            AccountingError::DuplicateKey(k) => {
                write!(f, "{k} appears twice in one batch of readings")
            }
        }
    }
}

impl std::error::Error for AccountingError {}

#[derive(Clone, Copy, Debug)]
struct Last {
    reading: Reading,
    at_ms: i64,
}

#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    measured_ms: i64,
    estimated_ms: i64,
}

/// Turns batches of counter readings into closed 5-minute samples.
///
/// Everything it needs to continue exactly after a restart is in
/// [`Accountant::state`]: persist it in the same transaction as the samples
/// that the same `observe` produced.
#[derive(Clone, Debug)]
pub struct Accountant {
    config: Config,
    last_observe_ms: Option<i64>,
    counters: HashMap<UsageKey, Last>,
    open: BTreeMap<(Slot, UsageKey), Usage>,
    coverage: BTreeMap<Slot, Tally>,
    /// Overflows met while resuming, reported by the next observe.
    pending_events: Vec<(UsageKey, CounterEvent)>,
    /// Objects the caller created, with when it said so: at their first
    /// sight their whole value is counted ([`Accountant::created`]). Not
    /// persisted: after a restart they are a baseline again, which loses
    /// that traffic rather than inventing any.
    created: HashMap<ObjectIdentity, i64>,
}

/// Adds `part` to the open sample of `slot` and `key`, or, if that would
/// pass 2⁶⁴ − 1, leaves it out and reports it.
fn add_open(
    open: &mut BTreeMap<(Slot, UsageKey), Usage>,
    (slot, key): (Slot, UsageKey),
    part: Usage,
    events: &mut Vec<(UsageKey, CounterEvent)>,
) {
    let sum = open.entry((slot, key)).or_default();
    match sum.checked_add(part) {
        Some(s) => *sum = s,
        None => events.push((
            key,
            CounterEvent::Overflow {
                slot,
                dropped: part,
            },
        )),
    }
}

impl Accountant {
    /// An accountant with no history: every counter is a first sight.
    pub fn new(config: Config) -> Accountant {
        Accountant {
            config,
            last_observe_ms: None,
            counters: HashMap::new(),
            open: BTreeMap::new(),
            coverage: BTreeMap::new(),
            pending_events: Vec::new(),
            created: HashMap::new(),
        }
    }

    /// The caller has just created these objects (a daemon's new classes):
    /// whatever their counters hold at their first sight passed through
    /// them since, so it is counted from zero instead of taken as a
    /// baseline. Without this, the traffic between a class's creation and
    /// the first read of it was lost: a second of a new tenant's traffic,
    /// or of every tenant's on a daemon's first start. Forgotten after
    /// [`Config::forget_after`] if never seen.
    pub fn created(&mut self, objects: impl IntoIterator<Item = ObjectIdentity>, now: Timestamp) {
        let at = now.as_millisecond();
        self.created.extend(objects.into_iter().map(|o| (o, at)));
    }

    /// An accountant that continues from a persisted state. Open samples
    /// listed twice (which [`Accountant::state`] never writes) are added
    /// up; a sum past 2⁶⁴ − 1 is reported by the next
    /// [`Accountant::observe`] as [`CounterEvent::Overflow`].
    pub fn resume(config: Config, state: &AccountantState) -> Accountant {
        let mut a = Accountant::new(config);
        a.last_observe_ms = state.last_observe_ms;
        for c in &state.counters {
            a.counters.insert(
                c.key,
                Last {
                    reading: c.reading,
                    at_ms: c.at_ms,
                },
            );
        }
        for o in &state.open_samples {
            add_open(&mut a.open, (o.slot, o.key), o.usage, &mut a.pending_events);
        }
        for c in &state.open_coverage {
            a.coverage.insert(
                c.slot,
                Tally {
                    measured_ms: c.measured_ms,
                    estimated_ms: c.estimated_ms,
                },
            );
        }
        a
    }

    /// Everything needed to continue exactly after a restart.
    pub fn state(&self) -> AccountantState {
        let mut counters: Vec<CounterState> = self
            .counters
            .iter()
            .map(|(k, l)| CounterState {
                key: *k,
                reading: l.reading,
                at_ms: l.at_ms,
            })
            .collect();
        counters.sort_by_key(|c| c.key);
        AccountantState {
            last_observe_ms: self.last_observe_ms,
            counters,
            open_samples: self
                .open
                .iter()
                .map(|(&(slot, key), &usage)| OpenSample { slot, key, usage })
                .collect(),
            open_coverage: self
                .coverage
                .iter()
                .map(|(&slot, t)| OpenCoverage {
                    slot,
                    measured_ms: t.measured_ms,
                    estimated_ms: t.estimated_ms,
                })
                .collect(),
        }
    }

    /// How many counters are tracked.
    pub fn counters(&self) -> usize {
        self.counters.len()
    }

    /// Takes the readings of every counter at `now` and returns the slots
    /// that closed (those that ended at or before `now`).
    ///
    /// A key missing from a batch keeps its last reading; when it returns,
    /// its traffic is spread from its last reading (but never into a slot
    /// that already closed: that part goes to the oldest open slot).
    pub fn observe(
        &mut self,
        now: Timestamp,
        readings: &[(UsageKey, Reading)],
    ) -> Result<Closed, AccountingError> {
        let now_ms = now.as_millisecond();
        if let Some(prev) = self.last_observe_ms {
            if now_ms < prev {
                return Err(AccountingError::TimeWentBackwards {
                    now,
                    previous: Timestamp::from_millisecond(prev).unwrap_or(Timestamp::MAX),
                });
            }
        }
        let mut seen = HashSet::with_capacity(readings.len());
        for (k, _) in readings {
            if !seen.insert(*k) {
                return Err(AccountingError::DuplicateKey(*k));
            }
        }
        let mut closed = Closed {
            events: std::mem::take(&mut self.pending_events),
            ..Closed::default()
        };
        if let Some(prev) = self.last_observe_ms.filter(|&p| p < now_ms) {
            let gap = now_ms - prev > self.config.max_interval.as_millis() as i64;
            let mut slot = Slot::containing_millis(prev);
            while slot.start_millis() < now_ms {
                let overlap = slot.end_millis().min(now_ms) - slot.start_millis().max(prev);
                let t = self.coverage.entry(slot).or_default();
                if gap {
                    t.estimated_ms += overlap;
                } else {
                    t.measured_ms += overlap;
                }
                slot = slot.next();
            }
        }
        // Traffic may not land in a slot that has already closed.
        let open_from = self
            .last_observe_ms
            .map(|p| Slot::containing_millis(p).start_millis());
        for (key, reading) in readings {
            let last = self.counters.get(key);
            let first_sight = match last {
                None if self.created.remove(&reading.object).is_some() => FirstSight::CountFromZero,
                _ => self.config.first_sight,
            };
            let (usage, event) = delta(
                last.map(|l| &l.reading),
                reading,
                self.config.packet_width,
                first_sight,
            );
            if let Some(e) = event {
                closed.events.push((*key, e));
            }
            if !usage.is_zero() {
                let from = match (last, self.last_observe_ms) {
                    (Some(l), _) => l.at_ms.max(open_from.unwrap_or(l.at_ms)),
                    // A counted first sight happened some time since the
                    // previous batch: the object was made in between.
                    (None, Some(p)) => p,
                    (None, None) => now_ms,
                };
                let open = &mut self.open;
                let events = &mut closed.events;
                spread(from, now_ms, usage, |slot, part| {
                    if !part.is_zero() {
                        add_open(open, (slot, *key), part, events);
                    }
                });
            }
            self.counters.insert(
                *key,
                Last {
                    reading: *reading,
                    at_ms: now_ms,
                },
            );
        }
        self.close_before(Slot::containing_millis(now_ms), &mut closed);
        self.last_observe_ms = Some(now_ms);
        let horizon = now_ms.saturating_sub(self.config.forget_after.as_millis() as i64);
        self.counters.retain(|_, l| l.at_ms >= horizon);
        self.created.retain(|_, &mut at| at >= horizon);
        Ok(closed)
    }

    fn close_before(&mut self, first_open: Slot, closed: &mut Closed) {
        let min_key = UsageKey {
            tenant: net_types::TenantId(0),
            realm: net_types::RealmId(0),
            direction: crate::Direction::Down,
            band: crate::Band::Whole,
            source: crate::Source::Kernel,
        };
        let still_open = self.open.split_off(&(first_open, min_key));
        let done = std::mem::replace(&mut self.open, still_open);
        closed
            .samples
            .extend(done.into_iter().map(|((slot, key), u)| Sample {
                slot,
                key,
                bytes: u.bytes,
                packets: u.packets,
            }));
        let still_open = self.coverage.split_off(&first_open);
        let done = std::mem::replace(&mut self.coverage, still_open);
        closed
            .slots
            .extend(done.into_iter().map(|(slot, t)| SlotCoverage {
                slot,
                status: if t.measured_ms + t.estimated_ms < SAMPLE_MILLIS {
                    SlotStatus::Partial
                } else if t.estimated_ms > 0 {
                    SlotStatus::Estimated
                } else {
                    SlotStatus::Measured
                },
            }));
    }
}
