//! One tenant's samples over one period, as two arrays indexed by slot.

use crate::period::Period;
use accounting::{Direction, Sample, Slot, SlotCoverage, SlotStatus};
use net_types::{RealmId, TenantId};
use serde::{Deserialize, Serialize};

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
}

/// Per-slot bytes of one tenant in one period, bands and selected realms
/// added up, with how well each slot was observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Series {
    /// The period's first slot: index 0.
    pub first_slot: Slot,
    /// Bytes toward the tenant ("in") per slot.
    pub down: Vec<u64>,
    /// Bytes from the tenant ("out") per slot.
    pub up: Vec<u64>,
    /// How each slot was observed; `None` is a missing sample.
    pub status: Vec<Option<SlotStatus>>,
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

    /// Builds the series of `tenant` over `period` from samples and slot
    /// coverage. Samples of other tenants, unselected realms or slots
    /// outside the period are skipped, so a caller may pass a whole batch.
    /// A slot that has a sample but no coverage record counts as seen
    /// (traffic was recorded, so it was observed), as [`SlotStatus::Partial`].
    pub fn build(
        period: &Period,
        tenant: TenantId,
        realms: &RealmSelection,
        samples: &[Sample],
        coverage: &[SlotCoverage],
    ) -> Series {
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
            let v = match x.key.direction {
                Direction::Down => &mut s.down[i],
                Direction::Up => &mut s.up[i],
            };
            *v = v.saturating_add(x.bytes);
            s.status[i].get_or_insert(SlotStatus::Partial);
        }
        s
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
