//! A period's bills: frozen ones exactly as frozen, others computed from
//! the 5-minute samples (and the open slots, for a period still running).

use crate::QueryError;
use accounting::{OpenSample, Sample, Slot};
use billing::{Period, TenantBill};
use history::{FrozenPeriod, SampleQuery, Store, Tenants};
use jiff::Timestamp;
use policy::Policy;
use serde::{Deserialize, Serialize};
use settings::Settings;
use std::collections::BTreeMap;

/// One tenant's bill with its name, as printed and frozen.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Billed {
    /// The tenant's name.
    pub name: String,
    /// Its bill.
    pub bill: TenantBill,
}

/// A whole period's bills, as frozen.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PeriodBills {
    /// The period.
    pub period: Period,
    /// Every tenant's bill.
    pub bills: Vec<Billed>,
}

/// Where a period's bills stand.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum Standing {
    /// Frozen for good.
    Frozen {
        /// When.
        at: Timestamp,
    },
    /// The period is still open: figures change.
    Provisional,
    /// Closed, not frozen yet.
    Closed,
}

impl std::fmt::Display for Standing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Standing::Frozen { at } => write!(f, "frozen at {at}"),
            Standing::Provisional => f.write_str("provisional: the period is still open"),
            Standing::Closed => f.write_str("not frozen: `--freeze` stores it for good"),
        }
    }
}

/// The bills of a period and where they stand.
#[derive(Clone, Debug, Serialize)]
pub struct BillsAnswer {
    /// The period's bills.
    #[serde(flatten)]
    pub bills: PeriodBills,
    /// Frozen, provisional or closed.
    pub standing: Standing,
}

/// Bills every tenant of `policy` for `period`.
pub fn compute(
    policy: &Policy,
    settings: &Settings,
    store: &dyn Store,
    open: &[OpenSample],
    period: &Period,
) -> Result<PeriodBills, QueryError> {
    let (first, end) = (period.first_slot(), period.end_slot());
    let samples = store
        .samples(&SampleQuery {
            tenants: Tenants::All,
            from: first,
            to: end,
        })
        .map_err(QueryError::store("the period's samples"))?;
    let coverage = store
        .coverage(first, end)
        .map_err(QueryError::store("the period's coverage"))?;
    // Group once, so each tenant's series is built from its own samples.
    let mut by_tenant: BTreeMap<u32, Vec<Sample>> = BTreeMap::new();
    for s in samples {
        by_tenant.entry(s.key.tenant.0).or_default().push(s);
    }
    for o in open {
        if period.contains(o.slot) {
            by_tenant.entry(o.key.tenant.0).or_default().push(Sample {
                slot: o.slot,
                key: o.key,
                bytes: o.usage.bytes,
                packets: o.usage.packets,
            });
        }
    }
    let mut bills = Vec::with_capacity(policy.tenants.len());
    for t in &policy.tenants {
        let rules = settings
            .charge_rules(policy, t.commit)
            .map_err(|e| QueryError::invalid("billing", e.to_string()))?;
        let own = by_tenant.get(&t.id.0).map_or(&[][..], Vec::as_slice);
        let bill = billing::bill_tenant(period, t.id, &rules, own, &coverage)
            .map_err(|e| QueryError::invalid("billing", format!("{}: {e}", settings.source)))?;
        bills.push(Billed {
            name: t.name.clone(),
            bill,
        });
    }
    Ok(PeriodBills {
        period: period.clone(),
        bills,
    })
}

/// The period's bills: frozen ones as frozen, otherwise computed (which
/// needs the policy).
pub fn bills(
    policy: Option<&Policy>,
    settings: &Settings,
    store: &dyn Store,
    open: &[OpenSample],
    period: &Period,
    now: Timestamp,
) -> Result<BillsAnswer, QueryError> {
    if let Some(f) = store
        .frozen(&period.label)
        .map_err(QueryError::store("frozen periods"))?
    {
        let bills: PeriodBills = serde_json::from_str(&f.bill).map_err(|e| {
            QueryError::Damaged(format!(
                "the frozen bill of {} cannot be read: {e}",
                f.label
            ))
        })?;
        return Ok(BillsAnswer {
            bills,
            standing: Standing::Frozen { at: f.frozen_at },
        });
    }
    let policy = policy.ok_or_else(|| {
        QueryError::invalid(
            "policy",
            "billing needs the policy (for tenants and commits), and it cannot be read; pass -c FILE",
        )
    })?;
    Ok(BillsAnswer {
        bills: compute(policy, settings, store, open, period)?,
        standing: if now < period.end {
            Standing::Provisional
        } else {
            Standing::Closed
        },
    })
}

/// Stores the bills of a closed period for good; refused while it is
/// open, while the daemon has not yet read past its end (its last samples
/// are not closed), or if it is already frozen.
pub fn freeze(
    store: &mut dyn Store,
    answer: &BillsAnswer,
    now: Timestamp,
) -> Result<(), QueryError> {
    let p = &answer.bills.period;
    if let Standing::Frozen { at } = answer.standing {
        return Err(QueryError::invalid(
            "freeze",
            format!(
                "period {} was already frozen at {at}; frozen bills never change (`tollgate bill --period {}` shows it)",
                p.label, p.label
            ),
        ));
    }
    if now < p.end {
        return Err(QueryError::invalid(
            "freeze",
            format!(
                "period {} is still open (it ends at {}); only a closed period can be frozen",
                p.label, p.end
            ),
        ));
    }
    let last = crate::open::last_state(store)?.and_then(|(_, s)| s.last_observe_ms);
    if last.is_none_or(|ms| Slot::containing_millis(ms) < p.end_slot()) {
        return Err(QueryError::invalid(
            "freeze",
            format!(
                "the daemon has not read the counters since period {} ended, so its last samples are not closed yet; wait for `tollgate run`'s next read (one --interval), then freeze",
                p.label
            ),
        ));
    }
    let text = serde_json::to_string(&answer.bills)
        .map_err(|e| QueryError::Damaged(format!("cannot encode the bills: {e}")))?;
    store
        .freeze(&FrozenPeriod {
            label: p.label.clone(),
            start: p.start,
            end: p.end,
            frozen_at: now,
            bill: text,
        })
        .map_err(QueryError::store("the frozen period"))
}
