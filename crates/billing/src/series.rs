//! One tenant's samples over one period, as two arrays indexed by slot.

use crate::error::BillingError;
use crate::period::Period;
use accounting::{Direction, Sample, Slot, SlotCoverage, SlotStatus};
use net_types::{RealmId, TenantId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Which realms a charge covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RealmSelection {
    /// Every realm: the tenant's whole traffic.
    All,
    /// Only these (e.g. international, billed on its own).
    Only(Vec<RealmId>),
    /// Every realm but these (e.g. all but the free national peering).
    AllExcept(Vec<RealmId>),
}

impl RealmSelection {
    /// Whether a realm is selected.
    pub fn contains(&self, realm: RealmId) -> bool {
        match self {
            RealmSelection::All => true,
            RealmSelection::Only(r) => r.contains(&realm),
            RealmSelection::AllExcept(r) => !r.contains(&realm),
        }
    }

    /// The selection in words, each realm named by `name`: `all realms`,
    /// `international`, `realms 2, 3`, `all realms but national`.
    pub fn describe(&self, name: &dyn Fn(RealmId) -> Option<String>) -> String {
        let list = |realms: &[RealmId]| -> String {
            if realms.is_empty() {
                return "no realm".into();
            }
            let named: Vec<Option<String>> = realms.iter().map(|&r| name(r)).collect();
            if named.iter().all(Option::is_some) {
                return named.into_iter().flatten().collect::<Vec<_>>().join(", ");
            }
            let each: Vec<String> = realms
                .iter()
                .zip(named)
                .map(|(r, n)| n.unwrap_or_else(|| r.to_string()))
                .collect();
            match realms.len() {
                1 => format!("realm {}", each[0]),
                _ => format!("realms {}", each.join(", ")),
            }
        };
        match self {
            RealmSelection::All => "all realms".into(),
            RealmSelection::Only(r) => list(r),
            RealmSelection::AllExcept(r) => format!("all realms but {}", list(r)),
        }
    }
}

impl fmt::Display for RealmSelection {
    /// Realms by number (`realms 2, 3`); [`RealmSelection::describe`]
    /// names them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe(&|_| None))
    }
}

/// Per-slot bytes of one tenant in one period, bands and selected realms
/// added up, with how well each slot was observed.
///
/// In every slot, bytes down plus bytes up fit in 64 bits (18 EB in five
/// minutes; anything more is refused where the series is made), so every
/// per-slot figure derived from them (down + up, the larger of the two) is
/// exact in a `u64`. Sums over slots are `u128`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    first_slot: Slot,
    down: Vec<u64>,
    up: Vec<u64>,
    status: Vec<Option<SlotStatus>>,
}

impl Series {
    /// An empty series: every expected slot missing, no traffic.
    pub fn empty(period: &Period) -> Series {
        let n = period.expected_samples();
        Series {
            first_slot: period.first_slot(),
            down: vec![0; n],
            up: vec![0; n],
            status: vec![None; n],
        }
    }

    /// A series from its parts: bytes toward (`down`) and from (`up`) the
    /// tenant and the observation of each slot from `first_slot` on.
    /// Refused if the lengths differ or a slot's down + up does not fit in
    /// 64 bits.
    pub fn new(
        first_slot: Slot,
        down: Vec<u64>,
        up: Vec<u64>,
        status: Vec<Option<SlotStatus>>,
    ) -> Result<Series, BillingError> {
        if down.len() != up.len() || down.len() != status.len() {
            return Err(BillingError::invalid(
                "series",
                format!(
                    "{} down, {} up and {} status values; each slot needs one of each",
                    down.len(),
                    up.len(),
                    status.len()
                ),
            ));
        }
        let s = Series {
            first_slot,
            down,
            up,
            status,
        };
        for i in 0..s.len() {
            if s.down[i].checked_add(s.up[i]).is_none() {
                let slot = Slot(first_slot.0 + i as i64);
                return Err(too_many(None, slot, "down and up"));
            }
        }
        Ok(s)
    }

    /// Builds the series of `tenant` over `period` from samples and slot
    /// coverage. Samples of other tenants, unselected realms or slots
    /// outside the period are skipped, so a caller may pass a whole batch.
    /// A slot that has a sample but no coverage record counts as seen
    /// (traffic was recorded, so it was observed), as [`SlotStatus::Partial`].
    /// Refused, naming the tenant and slot, if a slot's bytes (down and up
    /// together) do not fit in 64 bits: they are never clamped.
    pub fn build(
        period: &Period,
        tenant: TenantId,
        realms: &RealmSelection,
        samples: &[Sample],
        coverage: &[SlotCoverage],
    ) -> Result<Series, BillingError> {
        let mut s = Series::empty(period);
        for c in coverage {
            if let Some(i) = s.index(c.slot) {
                s.status[i] = Some(c.status);
            }
        }
        for x in samples {
            if x.key.tenant != tenant || !realms.contains(x.key.realm) {
                continue;
            }
            let Some(i) = s.index(x.slot) else { continue };
            let (v, other) = match x.key.direction {
                Direction::Down => (&mut s.down[i], s.up[i]),
                Direction::Up => (&mut s.up[i], s.down[i]),
            };
            *v = v
                .checked_add(x.bytes)
                .filter(|v| v.checked_add(other).is_some())
                .ok_or_else(|| too_many(Some(tenant), x.slot, x.key.direction.as_str()))?;
            s.status[i].get_or_insert(SlotStatus::Partial);
        }
        Ok(s)
    }

    /// The index of a slot, if it lies in the series.
    pub fn index(&self, slot: Slot) -> Option<usize> {
        let i = slot.0.checked_sub(self.first_slot.0)?;
        (0..self.down.len() as i64)
            .contains(&i)
            .then_some(i as usize)
    }

    /// How many slots the series has.
    pub fn len(&self) -> usize {
        self.down.len()
    }

    /// Whether it has no slot.
    pub fn is_empty(&self) -> bool {
        self.down.is_empty()
    }

    /// The first slot: index 0.
    pub fn first_slot(&self) -> Slot {
        self.first_slot
    }

    /// Bytes toward the tenant ("in") per slot.
    pub fn down(&self) -> &[u64] {
        &self.down
    }

    /// Bytes from the tenant ("out") per slot.
    pub fn up(&self) -> &[u64] {
        &self.up
    }

    /// How each slot was observed; `None` is a missing sample.
    pub fn status(&self) -> &[Option<SlotStatus>] {
        &self.status
    }

    /// Down + up of slot `i`: exact, since the series keeps it within 64
    /// bits.
    pub(crate) fn sum_at(&self, i: usize) -> u64 {
        self.down[i] + self.up[i]
    }

    /// Only the first `slots` slots (those already closed when projecting).
    pub fn truncated(&self, slots: usize) -> Series {
        let n = slots.min(self.len());
        Series {
            first_slot: self.first_slot,
            down: self.down[..n].to_vec(),
            up: self.up[..n].to_vec(),
            status: self.status[..n].to_vec(),
        }
    }
}

fn too_many(tenant: Option<TenantId>, slot: Slot, what: &str) -> BillingError {
    let whose = tenant.map_or_else(String::new, |t| format!("tenant {t}'s "));
    BillingError::invalid(
        format!("samples at {slot}"),
        format!(
            "{whose}bytes {what} add up past 2^64 − 1 (18 EB in five minutes); such samples are not real traffic"
        ),
    )
}
