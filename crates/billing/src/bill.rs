//! A tenant's bill for one period: one line per charge rule.

use crate::commit::Overage;
use crate::error::BillingError;
use crate::figure::{percentile, PercentileFigure, PercentileRule};
use crate::period::Period;
use crate::series::{RealmSelection, Series};
use crate::volume::{VolumeFigure, VolumeRule};
use accounting::{Sample, SlotCoverage};
use net_types::{Rate, RealmId, TenantId};
use serde::{Deserialize, Serialize};
use std::fmt::Write;

/// One thing a tenant is billed for: a percentile and/or a volume over a
/// selection of realms. A tenant billed on its whole traffic has one rule
/// over [`RealmSelection::All`]; one whose international traffic is billed
/// on its own has a second rule over that realm.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeRule {
    /// The line's name on the bill (`total`, `international`).
    pub name: String,
    /// Which realms count.
    pub realms: RealmSelection,
    /// The percentile to bill, if any.
    pub percentile: Option<PercentileRule>,
    /// The committed rate (needs a percentile).
    pub commit: Option<Rate>,
    /// The volume rule; volume is always reported.
    pub volume: VolumeRule,
}

/// One line of a bill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChargeLine {
    /// The rule's name.
    pub name: String,
    /// Which realms counted.
    pub realms: RealmSelection,
    /// The percentile figure.
    pub percentile: Option<PercentileFigure>,
    /// How far over the commit it went.
    pub overage: Option<Overage>,
    /// Volume and quota.
    pub volume: VolumeFigure,
}

/// A tenant's bill for a period.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TenantBill {
    /// Whose bill.
    pub tenant: TenantId,
    /// Which period.
    pub period: Period,
    /// One line per charge rule, in the rules' order.
    pub lines: Vec<ChargeLine>,
}

/// Checks a tenant's charge rules; every problem names the rule.
pub fn check_rules(rules: &[ChargeRule]) -> Result<(), BillingError> {
    for (i, r) in rules.iter().enumerate() {
        let at = |f: &str| format!("charges[{i}] ({}).{f}", r.name);
        if r.name.trim().is_empty() {
            return Err(BillingError::invalid(
                format!("charges[{i}].name"),
                "is empty",
            ));
        }
        if rules[..i].iter().any(|o| o.name == r.name) {
            return Err(BillingError::invalid(
                at("name"),
                "is used by an earlier charge",
            ));
        }
        if matches!(&r.realms, RealmSelection::Only(v) if v.is_empty()) {
            return Err(BillingError::invalid(
                at("realms"),
                "selects no realm; name at least one",
            ));
        }
        if r.commit.is_some() && r.percentile.is_none() {
            return Err(BillingError::invalid(
                at("commit"),
                "a commit needs a percentile rule to compare with",
            ));
        }
    }
    Ok(())
}

/// Bills one tenant for one period from its samples and the slot coverage.
/// `samples` may hold other tenants' samples too; they are skipped.
/// Refused if a rule is wrong, or if a slot's bytes do not fit in 64 bits
/// (see [`Series::build`]); volumes are exact however large.
pub fn bill_tenant(
    period: &Period,
    tenant: TenantId,
    rules: &[ChargeRule],
    samples: &[Sample],
    coverage: &[SlotCoverage],
) -> Result<TenantBill, BillingError> {
    check_rules(rules)?;
    let lines = rules
        .iter()
        .map(|r| {
            let series = Series::build(period, tenant, &r.realms, samples, coverage)?;
            let figure = r.percentile.as_ref().map(|p| percentile(&series, p));
            let overage = figure
                .as_ref()
                .zip(r.commit)
                .and_then(|(f, c)| f.value.map(|v| Overage::of(&v, c)));
            Ok(ChargeLine {
                name: r.name.clone(),
                realms: r.realms.clone(),
                percentile: figure,
                overage,
                volume: VolumeFigure::of(&series, &r.volume),
            })
        })
        .collect::<Result<_, BillingError>>()?;
    Ok(TenantBill {
        tenant,
        period: period.clone(),
        lines,
    })
}

impl TenantBill {
    /// The bill as text for people: every figure with its rule and
    /// coverage; realms by number (`realms 2, 3`).
    pub fn to_text(&self) -> String {
        self.to_text_named(&|_| None)
    }

    /// [`TenantBill::to_text`] with realms named by `realm_name` (the
    /// policy's names); a realm it does not name is shown by number.
    pub fn to_text_named(&self, realm_name: &dyn Fn(RealmId) -> Option<String>) -> String {
        let mut s = String::new();
        let _ = writeln!(
            s,
            "tenant {} — period {} [{} .. {})",
            self.tenant, self.period.label, self.period.start, self.period.end
        );
        for l in &self.lines {
            let _ = writeln!(s, "  {} ({}):", l.name, l.realms.describe(realm_name));
            if let Some(f) = &l.percentile {
                let _ = writeln!(
                    s,
                    "    {}th percentile: {} ({} bit/s)",
                    f.rule.percentile.get(),
                    f.rate(),
                    f.rate().bps()
                );
                let _ = writeln!(s, "      rule: {}", f.explanation);
            }
            if let Some(o) = &l.overage {
                let _ = writeln!(
                    s,
                    "    commit {}: over by {} ({:.2}%)",
                    o.commit, o.over, o.over_percent
                );
            }
            let v = &l.volume;
            let _ = write!(
                s,
                "    volume: {} bytes (down {}, up {})",
                v.used.bytes(),
                v.down.bytes(),
                v.up.bytes()
            );
            if let (Some(q), Some(o)) = (v.quota, v.over) {
                let _ = write!(s, ", quota {} bytes, over {} bytes", q.bytes(), o.bytes());
            }
            let c = v.coverage;
            let _ = writeln!(
                s,
                "; coverage {} expected, {} seen, {} missing",
                c.expected, c.seen, c.missing
            );
        }
        s
    }
}
