//! One worker's running totals: per slot × tenant × realm × direction.

use crate::attribution::{Attribution, Owner};
use crate::cache::AddressCache;
use crate::quarantine::{
    Counter, QuarantineReason, Quarantined, SLOT_BYTES_LIMIT, SLOT_PACKETS_LIMIT,
};
use accounting::{Band, Direction, Sample, Slot, Source, Usage, UsageKey};
use flow_wire::FlowRecord;
use net_types::{RealmId, TenantId};
use std::collections::HashMap;
use std::net::IpAddr;

/// How far a flow's end may lie from the time its record was received
/// before the exporter's clock is distrusted: an hour, longer than any
/// sane active timeout. Beyond it the record is put at its receive time
/// (counted as `clock_skew`), so its bytes are kept, only their time moved.
pub const CLOCK_SKEW_MILLIS: i64 = 3_600_000;

/// Quarantined records kept between two [`Tally::take_quarantine`] calls;
/// beyond them they are only counted (`quarantine_dropped`).
pub const QUARANTINE_KEEP: usize = 1_024;

/// What a tally has seen since it was created (never reset by draining).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TallyStats {
    /// Records offered.
    pub flows: u64,
    /// Records attributed to at least one tenant measured by flows.
    pub attributed: u64,
    /// Records whose addresses belong only to tenants counted in the
    /// kernel (not attributed, to avoid billing them twice).
    pub kernel_measured: u64,
    /// Records whose addresses belong to no tenant, or that carry no
    /// address this collector can read.
    pub unattributed: u64,
    /// Attributed records whose times were implausible and were put at
    /// their receive time.
    pub clock_skew: u64,
    /// Records about a tenant refused as beyond any link's capacity (see
    /// [`crate::SLOT_BYTES_LIMIT`]).
    pub quarantined: u64,
    /// Of those, the ones not kept for inspection (more than
    /// [`QUARANTINE_KEEP`] between two takes).
    pub quarantine_dropped: u64,
    /// Attributed records whose exporter announced a packet selection
    /// this collector cannot scale (and no policy override): counted at a
    /// scale of 1, so their usage is too low by an unknown factor.
    pub unscaled: u64,
    /// Bytes of attributed records, after sampling, counted once per
    /// record even when both ends are tenants.
    pub bytes: u64,
    /// Packets likewise.
    pub packets: u64,
}

/// What [`Tally::record`] made of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Counted for at least one tenant measured by flows.
    Attributed,
    /// About tenants counted in the kernel only: not counted.
    KernelMeasured,
    /// About no tenant, or without an address: not counted.
    Unattributed,
    /// Beyond any link's capacity: not counted, kept aside.
    Quarantined,
}

/// Running totals of one worker, drained into the store from time to time.
pub struct Tally {
    cells: HashMap<(Slot, UsageKey), Usage, foldhash::fast::FixedState>,
    cache: AddressCache,
    stats: TallyStats,
    quarantine: Vec<Quarantined>,
    /// One record's parts per slot, reused.
    parts: Vec<(Slot, Usage)>,
    /// Everything added since the last drain (saturating): while it stays
    /// below the limits no cell can reach them, and the per-cell check is
    /// skipped (the common case by many orders of magnitude).
    added: Usage,
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        Tally::with_cache(AddressCache::new())
    }

    /// A tally whose address cache has only 2^`bits` entries (see
    /// `fuzzing::attribute`).
    pub(crate) fn with_cache_bits(bits: u32) -> Tally {
        Tally::with_cache(AddressCache::with_bits(bits))
    }

    fn with_cache(cache: AddressCache) -> Tally {
        Tally {
            cells: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x746f_6c6c)),
            cache,
            stats: TallyStats::default(),
            quarantine: Vec::new(),
            parts: Vec::new(),
            added: Usage::default(),
        }
    }

    /// Counters since creation.
    pub fn stats(&self) -> TallyStats {
        self.stats
    }

    /// How many slot × key cells hold traffic not yet drained.
    pub fn pending(&self) -> usize {
        self.cells.len()
    }

    /// Attributes one record from `exporter`, received at `received_ms`.
    #[inline]
    pub fn record(
        &mut self,
        tables: &Attribution,
        exporter: IpAddr,
        received_ms: i64,
        flow: &FlowRecord,
    ) -> Outcome {
        self.stats.flows += 1;
        let (src, src_realm) = self.resolve(tables, flow.src);
        let (dst, dst_realm) = self.resolve(tables, flow.dst);
        let up = match src {
            Some(Owner::Flows(t)) => Some(t),
            _ => None,
        };
        let down = match dst {
            Some(Owner::Flows(t)) => Some(t),
            _ => None,
        };
        if up.is_none() && down.is_none() {
            if src.is_some() || dst.is_some() {
                self.stats.kernel_measured += 1;
                return Outcome::KernelMeasured;
            }
            self.stats.unattributed += 1;
            return Outcome::Unattributed;
        }
        let sampling = tables.sampling(exporter, flow.sampling);
        let quarantine = |counter, value, reason| Quarantined {
            exporter,
            received_ms,
            record: *flow,
            counter,
            value,
            reason,
        };
        let (bytes, packets) = match (sampling.scale(flow.bytes), sampling.scale(flow.packets)) {
            (Some(b), Some(p)) => (b, p),
            (None, _) => {
                return self.refuse(quarantine(Counter::Bytes, None, QuarantineReason::Overflow))
            }
            (_, None) => {
                return self.refuse(quarantine(
                    Counter::Packets,
                    None,
                    QuarantineReason::Overflow,
                ))
            }
        };
        let usage = Usage { bytes, packets };
        let (from, to) = self.span(flow, received_ms);
        self.split(from, to, usage);
        let keys = [
            up.map(|t| key(t, dst_realm, Direction::Up)),
            down.map(|t| key(t, src_realm, Direction::Down)),
        ];
        // Both keys can receive the whole record.
        let after = Usage {
            bytes: self
                .added
                .bytes
                .saturating_add(usage.bytes.saturating_mul(2)),
            packets: self
                .added
                .packets
                .saturating_add(usage.packets.saturating_mul(2)),
        };
        if after.bytes > SLOT_BYTES_LIMIT || after.packets > SLOT_PACKETS_LIMIT {
            if let Some((counter, value, reason)) = self.implausible(&keys) {
                return self.refuse(quarantine(counter, Some(value), reason));
            }
        }
        self.added = after;
        if sampling.unsupported().is_some() {
            self.stats.unscaled += 1;
        }
        self.stats.attributed += 1;
        self.stats.bytes = self.stats.bytes.saturating_add(usage.bytes);
        self.stats.packets = self.stats.packets.saturating_add(usage.packets);
        for k in keys.into_iter().flatten() {
            for &(slot, part) in &self.parts {
                if part.bytes > 0 || part.packets > 0 {
                    let cell = self.cells.entry((slot, k)).or_default();
                    cell.bytes += part.bytes;
                    cell.packets += part.packets;
                }
            }
        }
        Outcome::Attributed
    }

    /// Everything attributed since the last drain, as samples ordered by
    /// slot then key (the order the store ingests fastest).
    pub fn drain(&mut self) -> Vec<Sample> {
        self.added = Usage::default();
        let mut out: Vec<Sample> = self
            .cells
            .drain()
            .map(|((slot, key), u)| Sample {
                slot,
                key,
                bytes: u.bytes,
                packets: u.packets,
            })
            .collect();
        out.sort_unstable_by_key(|s| (s.slot, s.key));
        out
    }

    /// The records quarantined since the last call (at most
    /// [`QUARANTINE_KEEP`]; the rest are counted in
    /// [`TallyStats::quarantine_dropped`]).
    pub fn take_quarantine(&mut self) -> Vec<Quarantined> {
        std::mem::take(&mut self.quarantine)
    }

    fn refuse(&mut self, q: Quarantined) -> Outcome {
        self.stats.quarantined += 1;
        if self.quarantine.len() < QUARANTINE_KEEP {
            self.quarantine.push(q);
        } else {
            self.stats.quarantine_dropped += 1;
        }
        Outcome::Quarantined
    }

    /// The first counter of this record's parts that would break a
    /// slot's limit for one of `keys`, alone or with what the slot holds.
    /// Cells hold at most the limit, so sums cannot overflow.
    fn implausible(
        &self,
        keys: &[Option<UsageKey>; 2],
    ) -> Option<(Counter, u64, QuarantineReason)> {
        let limits = [
            (Counter::Bytes, SLOT_BYTES_LIMIT),
            (Counter::Packets, SLOT_PACKETS_LIMIT),
        ];
        for &(slot, part) in &self.parts {
            for (counter, limit) in limits {
                let v = match counter {
                    Counter::Bytes => part.bytes,
                    Counter::Packets => part.packets,
                };
                if v > limit {
                    return Some((counter, v, QuarantineReason::AboveSlotLimit { limit }));
                }
                for k in keys.iter().flatten() {
                    let held = self.cells.get(&(slot, *k)).map_or(0, |c| match counter {
                        Counter::Bytes => c.bytes,
                        Counter::Packets => c.packets,
                    });
                    if held + v > limit {
                        return Some((
                            counter,
                            v,
                            QuarantineReason::SlotTotalAboveLimit { limit, held },
                        ));
                    }
                }
            }
        }
        None
    }

    #[inline]
    fn resolve(&mut self, tables: &Attribution, addr: Option<IpAddr>) -> (Option<Owner>, RealmId) {
        match addr {
            Some(IpAddr::V4(a)) => self.cache.resolve(tables, u32::from(a)),
            Some(a @ IpAddr::V6(_)) => tables.resolve(a),
            // No address: no owner, and for the other end's realm the
            // default one, as for an address no realm prefix covers.
            None => (None, tables.default_realm()),
        }
    }

    /// The flow's time span, or its receive instant if the exporter's
    /// clock cannot be believed.
    fn span(&mut self, flow: &FlowRecord, received_ms: i64) -> (i64, i64) {
        let plausible = flow.start_ms <= flow.end_ms
            && (flow.end_ms - received_ms).abs() <= CLOCK_SKEW_MILLIS
            && flow.end_ms - flow.start_ms <= CLOCK_SKEW_MILLIS;
        if plausible {
            (flow.start_ms, flow.end_ms)
        } else {
            self.stats.clock_skew += 1;
            (received_ms, received_ms)
        }
    }

    /// Cuts `usage` over `[from, to)` into its slots, in `self.parts`.
    fn split(&mut self, from: i64, to: i64, usage: Usage) {
        self.parts.clear();
        let first = Slot::containing_millis(from);
        // Most flows fit in one slot; only longer ones pay for the split.
        if from >= to || first == Slot::containing_millis(to.saturating_sub(1)) {
            let slot = if from >= to {
                Slot::containing_millis(to)
            } else {
                first
            };
            self.parts.push((slot, usage));
            return;
        }
        let parts = &mut self.parts;
        accounting::spread::spread(from, to, usage, |slot, part| parts.push((slot, part)));
    }
}

fn key(tenant: TenantId, realm: RealmId, direction: Direction) -> UsageKey {
    UsageKey {
        tenant,
        realm,
        direction,
        band: Band::Whole,
        source: Source::Flow,
    }
}
