//! One worker's running totals: per slot × tenant × realm × direction.

use crate::attribution::{Attribution, Owner};
use crate::cache::AddressCache;
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
    /// Records whose addresses belong to no tenant.
    pub unattributed: u64,
    /// Attributed records whose times were implausible and were put at
    /// their receive time.
    pub clock_skew: u64,
    /// Bytes of attributed records, after sampling, counted once per
    /// record even when both ends are tenants.
    pub bytes: u64,
    /// Packets likewise.
    pub packets: u64,
}

/// Running totals of one worker, drained into the store from time to time.
pub struct Tally {
    cells: HashMap<(Slot, UsageKey), Usage, foldhash::fast::FixedState>,
    cache: AddressCache,
    stats: TallyStats,
}

impl Default for Tally {
    fn default() -> Self {
        Tally::new()
    }
}

impl Tally {
    /// An empty tally.
    pub fn new() -> Tally {
        Tally {
            cells: HashMap::with_hasher(foldhash::fast::FixedState::with_seed(0x746f_6c6c)),
            cache: AddressCache::new(),
            stats: TallyStats::default(),
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
    ) {
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
            } else {
                self.stats.unattributed += 1;
            }
            return;
        }
        let sampling = u64::from(tables.sampling(exporter, flow.sampling.interval));
        let usage = Usage {
            bytes: flow.bytes.saturating_mul(sampling),
            packets: flow.packets.saturating_mul(sampling),
        };
        let (from, to) = self.span(flow, received_ms);
        self.stats.attributed += 1;
        self.stats.bytes = self.stats.bytes.saturating_add(usage.bytes);
        self.stats.packets = self.stats.packets.saturating_add(usage.packets);
        if let Some(t) = up {
            self.add(t, dst_realm, Direction::Up, from, to, usage);
        }
        if let Some(t) = down {
            self.add(t, src_realm, Direction::Down, from, to, usage);
        }
    }

    /// Everything attributed since the last drain, as samples ordered by
    /// slot then key (the order the store ingests fastest).
    pub fn drain(&mut self) -> Vec<Sample> {
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

    #[inline]
    fn resolve(&mut self, tables: &Attribution, addr: IpAddr) -> (Option<Owner>, RealmId) {
        match addr {
            IpAddr::V4(a) => self.cache.resolve(tables, u32::from(a)),
            IpAddr::V6(_) => tables.resolve(addr),
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

    fn add(
        &mut self,
        tenant: TenantId,
        realm: RealmId,
        direction: Direction,
        from: i64,
        to: i64,
        usage: Usage,
    ) {
        let key = UsageKey {
            tenant,
            realm,
            direction,
            band: Band::Whole,
            source: Source::Flow,
        };
        let first = Slot::containing_millis(from);
        // Most flows fit in one slot; only longer ones pay for the split.
        if from >= to || first == Slot::containing_millis(to.saturating_sub(1)) {
            let slot = if from >= to {
                Slot::containing_millis(to)
            } else {
                first
            };
            bump(&mut self.cells, slot, key, usage);
            return;
        }
        let cells = &mut self.cells;
        accounting::spread::spread(from, to, usage, |slot, part| {
            if part.bytes > 0 || part.packets > 0 {
                bump(cells, slot, key, part);
            }
        });
    }
}

fn bump(
    cells: &mut HashMap<(Slot, UsageKey), Usage, foldhash::fast::FixedState>,
    slot: Slot,
    key: UsageKey,
    usage: Usage,
) {
    let cell = cells.entry((slot, key)).or_default();
    cell.bytes = cell.bytes.saturating_add(usage.bytes);
    cell.packets = cell.packets.saturating_add(usage.packets);
}
