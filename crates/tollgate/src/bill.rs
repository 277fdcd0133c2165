//! `tollgate bill`: every tenant's bill for one period, from the history's
//! 5-minute samples, with the percentile's method and rank rule and the
//! coverage behind every figure.
//!
//! A frozen period is shown exactly as it was frozen; `--freeze` stores a
//! closed period's bill in the history, where it never changes again. An
//! open period's bill is provisional: it includes the traffic of slots that
//! have not closed yet.

use crate::ledger::{self, human_bytes, StateArgs};
use crate::settings::Settings;
use crate::usage::tenant_id;
use accounting::{Sample, Slot};
use billing::{Period, TenantBill};
use clap::Args;
use history::{FrozenPeriod, SampleQuery, Store, Tenants};
use jiff::Timestamp;
use policy::Policy;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

/// `tollgate bill`'s options.
#[derive(Args, Debug)]
pub struct BillArgs {
    /// Only this tenant (id or name).
    pub tenant: Option<String>,
    /// The billing period, `YYYY-MM` [default: the current one].
    #[arg(long, value_name = "YYYY-MM")]
    pub period: Option<String>,
    /// One CSV row per tenant and charge line.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Store this closed period's bill for good (refused while the period
    /// is open, or if it is already frozen).
    #[arg(long, conflicts_with = "tenant")]
    pub freeze: bool,
    #[command(flatten)]
    pub state: StateArgs,
}

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

/// Bills every tenant of `policy` for `period`.
pub fn compute(
    policy: &Policy,
    settings: &Settings,
    store: &dyn Store,
    period: &Period,
) -> Result<PeriodBills, String> {
    let (first, end) = (period.first_slot(), period.end_slot());
    let samples = store
        .samples(&SampleQuery {
            tenants: Tenants::All,
            from: first,
            to: end,
        })
        .map_err(|e| format!("cannot read the period's samples: {e}"))?;
    let coverage = store
        .coverage(first, end)
        .map_err(|e| format!("cannot read the period's coverage: {e}"))?;
    // Group once, so each tenant's series is built from its own samples.
    let mut by_tenant: BTreeMap<u32, Vec<Sample>> = BTreeMap::new();
    for s in samples {
        by_tenant.entry(s.key.tenant.0).or_default().push(s);
    }
    for o in ledger::open_samples(store)? {
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
        let rules = settings.charge_rules(policy, t.commit)?;
        let own = by_tenant.get(&t.id.0).map_or(&[][..], Vec::as_slice);
        let bill = billing::bill_tenant(period, t.id, &rules, own, &coverage)
            .map_err(|e| format!("{}: {e}", settings.source))?;
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

/// `tollgate bill`.
pub fn run(path: &Path, args: &BillArgs) -> Result<String, String> {
    let loaded = crate::usage::policy_for_names(path);
    let settings = args.state.settings(loaded.as_ref())?;
    let policy = loaded.and_then(|l| l.policy);
    let now = Timestamp::now();
    let period = match &args.period {
        Some(p) => settings.cycle.period_labelled(p),
        None => settings.cycle.period_containing(now),
    }
    .map_err(|e| e.to_string())?;
    let mut store = ledger::open_for_reading(&args.state.state_dir)?;
    let frozen = store
        .frozen(&period.label)
        .map_err(|e| format!("cannot read frozen periods: {e}"))?;
    let (bills, status) = match frozen {
        Some(f) if args.freeze => {
            return Err(format!(
                "period {} was already frozen at {}; frozen bills never change\n  hint: `tollgate bill --period {}` shows it",
                f.label, f.frozen_at, f.label
            ))
        }
        Some(f) => {
            let b: PeriodBills = serde_json::from_str(&f.bill)
                .map_err(|e| format!("the frozen bill of {} cannot be read: {e}", f.label))?;
            (b, format!("frozen at {}", f.frozen_at))
        }
        None => {
            let policy = policy.as_ref().ok_or_else(|| {
                format!("billing needs the policy (for tenants and commits), and {} cannot be read\n  hint: pass -c FILE", path.display())
            })?;
            let b = compute(policy, &settings, &store, &period)?;
            let status = if now < period.end {
                "provisional: the period is still open".to_string()
            } else {
                "not frozen: `--freeze` stores it for good".to_string()
            };
            (b, status)
        }
    };
    if args.freeze {
        freeze(&mut store, &bills, now)?;
        return Ok(format!(
            "period {} frozen with {} tenants' bills\n",
            period.label,
            bills.bills.len()
        ));
    }
    let only = match &args.tenant {
        Some(who) => Some(tenant_id(policy.as_ref(), who)?),
        None => None,
    };
    let shown: Vec<&Billed> = bills
        .bills
        .iter()
        .filter(|b| only.is_none_or(|id| b.bill.tenant.0 == id))
        .collect();
    if args.json {
        let out = serde_json::json!({ "period": bills.period, "status": status, "bills": shown });
        return Ok(serde_json::to_string_pretty(&out).map_err(|e| e.to_string())? + "\n");
    }
    if args.csv {
        return Ok(csv(&shown));
    }
    let mut out = format!(
        "bills for period {} [{} .. {}), {} ({} expected 5-minute samples; {})\n",
        period.label,
        period.start,
        period.end,
        settings.cycle,
        period.expected_samples(),
        status
    );
    for b in shown {
        let _ = write!(out, "\n{} ", b.name);
        out.push_str(&b.bill.to_text());
        for l in &b.bill.lines {
            let v = &l.volume;
            let _ = writeln!(
                out,
                "    ({}: {} down, {} up)",
                l.name,
                human_bytes(v.down.bytes()),
                human_bytes(v.up.bytes())
            );
        }
    }
    Ok(out)
}

/// Stores the bills of a closed period; refused while it is open or while
/// the daemon has not yet read past its end (its last slot is not closed).
fn freeze(store: &mut dyn Store, bills: &PeriodBills, now: Timestamp) -> Result<(), String> {
    let p = &bills.period;
    if now < p.end {
        return Err(format!(
            "period {} is still open (it ends at {}); only a closed period can be frozen",
            p.label, p.end
        ));
    }
    let last = ledger::last_state(store)?.and_then(|(_, s)| s.last_observe_ms);
    if last.is_none_or(|ms| Slot::containing_millis(ms) < p.end_slot()) {
        return Err(format!(
            "the daemon has not read the counters since period {} ended, so its last samples are not closed yet\n  hint: wait for `tollgate run` to do its next read (one --interval), then freeze",
            p.label
        ));
    }
    let text = serde_json::to_string(bills).map_err(|e| e.to_string())?;
    store
        .freeze(&FrozenPeriod {
            label: p.label.clone(),
            start: p.start,
            end: p.end,
            frozen_at: now,
            bill: text,
        })
        .map_err(|e| e.to_string())
}

fn csv(bills: &[&Billed]) -> String {
    let mut out = String::from(
        "period,tenant,name,charge,percentile,method,rank_rule,billed_bps,billed_rank,ranked_samples,expected,seen,missing,estimated,partial,commit_bps,over_bps,over_percent,volume_bytes,down_bytes,up_bytes,quota_bytes,over_quota_bytes\n",
    );
    let name = |s: &str| {
        if s.contains([',', '"', '\n']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    let opt = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
    for b in bills {
        for l in &b.bill.lines {
            let f = l.percentile.as_ref();
            let c = f.map_or(l.volume.coverage, |f| f.coverage);
            let v = &l.volume;
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}",
                b.bill.period.label,
                b.bill.tenant,
                name(&b.name),
                name(&l.name),
                opt(f.map(|f| u64::from(f.rule.percentile.get()))),
                f.map_or(String::new(), |f| format!("{:?}", f.rule.method)),
                f.map_or(String::new(), |f| format!("{:?}", f.rule.rank)),
                opt(f.map(|f| f.rate().bps())),
                opt(f.and_then(|f| f.value).map(|v| v.rank as u64)),
                opt(f.and_then(|f| f.value).map(|v| v.of as u64)),
                c.expected,
                c.seen,
                c.missing,
                c.estimated,
                c.partial,
                opt(l.overage.map(|o| o.commit.bps())),
                opt(l.overage.map(|o| o.over.bps())),
                l.overage
                    .map_or(String::new(), |o| format!("{:.2}", o.over_percent)),
                v.used.bytes(),
                v.down.bytes(),
                v.up.bytes(),
                opt(v.quota.map(|q| q.bytes())),
                opt(v.over.map(|o| o.bytes())),
            );
        }
    }
    out
}
