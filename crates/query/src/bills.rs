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
    compute_for(policy, settings, store, open, period, &Tenants::All)
}

/// Bills the `tenants` of `policy` for `period`, reading only their
/// samples (a page of the dashboard's tenant list: 50 of 10,000).
pub fn compute_for(
    policy: &Policy,
    settings: &Settings,
    store: &dyn Store,
    open: &[OpenSample],
    period: &Period,
    tenants: &Tenants,
) -> Result<PeriodBills, QueryError> {
    let (first, end) = (period.first_slot(), period.end_slot());
    let samples = store
        .samples(&SampleQuery {
            tenants: tenants.clone(),
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
    let wanted_key = |t: net_types::TenantId| match tenants {
        Tenants::All => true,
        Tenants::Only(list) => list.contains(&t),
    };
    for o in open {
        if period.contains(o.slot) && wanted_key(o.key.tenant) {
            by_tenant.entry(o.key.tenant.0).or_default().push(Sample {
                slot: o.slot,
                key: o.key,
                bytes: o.usage.bytes,
                packets: o.usage.packets,
            });
        }
    }
    let mut bills = Vec::with_capacity(policy.tenants.len());
    let wanted = |t: &policy::Tenant| match tenants {
        Tenants::All => true,
        Tenants::Only(list) => list.contains(&t.id),
    };
    for t in policy.tenants.iter().filter(|t| wanted(t)) {
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
    bills_of(policy, settings, store, open, period, now, &Tenants::All)
}

/// [`bills`] of some tenants only: a frozen period's bills filtered, or
/// only theirs computed.
pub fn bills_of(
    policy: Option<&Policy>,
    settings: &Settings,
    store: &dyn Store,
    open: &[OpenSample],
    period: &Period,
    now: Timestamp,
    tenants: &Tenants,
) -> Result<BillsAnswer, QueryError> {
    if let Some(f) = store
        .frozen(&period.label)
        .map_err(QueryError::store("frozen periods"))?
    {
        let mut bills: PeriodBills = serde_json::from_str(&f.bill).map_err(|e| {
            QueryError::Damaged(format!(
                "the frozen bill of {} cannot be read: {e}",
                f.label
            ))
        })?;
        if let Tenants::Only(list) = tenants {
            bills.bills.retain(|b| list.contains(&b.bill.tenant));
        }
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
        bills: compute_for(policy, settings, store, open, period, tenants)?,
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

#[cfg(test)]
mod tests {
    use super::*;
    use net_types::TenantId;

    #[test]
    fn some_tenants_bills_are_those_of_the_whole_site() {
        let dir = tempfile::tempdir().unwrap();
        let (store, _) = crate::site::tests::store(dir.path());
        let mut text = String::from(
            "[site]\nmode = \"router\"\nuplink = \"wan0\"\nlan = \"lan0\"\ncapacity = { down = \"1gbit\", up = \"1gbit\" }\n\
             [realms]\ndefault = \"r1\"\n[realms.r1]\nid = 1\n[realms.r2]\nid = 2\n\
             [plans.p]\ndown = { rate = \"10mbit\", ceil = \"100mbit\" }\nup = { rate = \"10mbit\", ceil = \"100mbit\" }\n",
        );
        for t in 1..=3 {
            text.push_str(&format!(
                "[[tenants]]\nid = {t}\nname = \"t{t}\"\nplan = \"p\"\ncommit = \"1mbit\"\nprefixes = [\"100.64.0.{t}/32\"]\n"
            ));
        }
        let policy = policy::load_str("p.toml", &text).policy.unwrap();
        let settings = settings::Settings::defaults();
        let now: Timestamp = "2026-11-20T00:00:00Z".parse().unwrap();
        let period = settings.cycle.period_labelled("2026-11").unwrap();
        let all = bills(Some(&policy), &settings, &store, &[], &period, now).unwrap();
        let some = bills_of(
            Some(&policy),
            &settings,
            &store,
            &[],
            &period,
            now,
            &Tenants::Only(vec![TenantId(2)]),
        )
        .unwrap();
        assert_eq!(some.bills.bills.len(), 1);
        assert_eq!(
            serde_json::to_value(&some.bills.bills[0]).unwrap(),
            serde_json::to_value(&all.bills.bills[1]).unwrap()
        );
        assert!(some.bills.bills[0].bill.lines[0].percentile.is_some());
    }
}
