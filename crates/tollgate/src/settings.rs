//! The accounting and billing settings file (`/etc/tollgate/accounting.toml`,
//! `--accounting FILE`), read by `run`, `usage`, `realms`, `bill` and
//! `overage`.
//!
//! These settings belong in the policy's `[accounting]` and `[billing]`
//! sections eventually; until the policy grows them they live in this small
//! file of their own, documented in docs/accounting.md. Every key is
//! optional: an absent file means the defaults below, which is what a new
//! install wants (UTC months from the 1st, the 95th of the larger
//! direction, nearest rank, missing samples as zero, no automation).
//!
//! Parsing is pure ([`Settings::parse`]); the file is read in
//! [`Settings::load`].

use accounting::{CounterWidth, FirstSight};
use billing::{
    BillingCycle, ChargeRule, Method, MissingSamples, OveragePolicy, Percentile, PercentileRule,
    RankRule, RealmSelection, VolumeCounts, VolumeRule,
};
use jiff::SignedDuration;
use net_types::{Rate, Size};
use serde::Deserialize;
use std::path::Path;

/// Where the settings are read from unless `--accounting` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/tollgate/accounting.toml";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    accounting: AccountingFile,
    #[serde(default)]
    retention: RetentionFile,
    #[serde(default)]
    billing: BillingFile,
    #[serde(default)]
    overage: OverageFile,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct AccountingFile {
    packet_counter_bits: Option<u8>,
    max_gap: Option<String>,
    forget_after: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RetentionFile {
    raw: Option<String>,
    hourly: Option<String>,
    daily: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct BillingFile {
    day: Option<u8>,
    timezone: Option<String>,
    percentile: Option<u8>,
    method: Option<Method>,
    rank: Option<String>,
    missing: Option<MissingSamples>,
    volume: Option<VolumeCounts>,
    quota: Option<String>,
    #[serde(default)]
    charges: Vec<ChargeFile>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChargeFile {
    name: String,
    #[serde(default)]
    realms: Vec<String>,
    #[serde(default)]
    except: Vec<String>,
    percentile: Option<bool>,
    commit: Option<String>,
    quota: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct OverageFile {
    enabled: Option<bool>,
    plan: Option<String>,
    margin_percent: Option<u32>,
    min_elapsed: Option<String>,
    check_every: Option<String>,
}

/// An extra charge line, with realms still by name (resolved against the
/// policy in [`Settings::charge_rules`]).
#[derive(Clone, Debug)]
pub struct ExtraCharge {
    /// The line's name.
    pub name: String,
    /// Only these realms (empty: all).
    pub realms: Vec<String>,
    /// All but these realms.
    pub except: Vec<String>,
    /// Whether the line has a percentile figure.
    pub percentile: bool,
    /// Committed rate, for every tenant.
    pub commit: Option<Rate>,
    /// Volume quota, for every tenant.
    pub quota: Option<Size>,
}

/// The overage automation.
#[derive(Clone, Debug)]
pub struct OverageSettings {
    /// Whether the daemon moves tenants at all.
    pub enabled: bool,
    /// The plan tenants are moved into.
    pub plan: String,
    /// Margin and minimum observation.
    pub policy: OveragePolicy,
    /// How often the daemon checks.
    pub check_every: std::time::Duration,
}

/// Every setting, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where they came from, for messages.
    pub source: String,
    /// How counters are read.
    pub accountant: accounting::Config,
    /// How long history is kept.
    pub retention: history::Retention,
    /// When periods start.
    pub cycle: BillingCycle,
    /// The percentile rule of every figure.
    pub rule: PercentileRule,
    /// The volume rule of the total line.
    pub volume: VolumeRule,
    /// Lines billed besides the total.
    pub charges: Vec<ExtraCharge>,
    /// The overage automation.
    pub overage: OverageSettings,
}

/// Parses `30s`, `5m`, `12h`, `70d`.
pub fn parse_span(text: &str) -> Result<SignedDuration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("`{text}` is not a duration; write e.g. `30s`, `5m`, `70d`"))?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("`{text}` needs a unit: s, m, h or d")),
    };
    Ok(SignedDuration::from_secs(secs))
}

impl Settings {
    /// Reads the settings. A missing file at the default place means the
    /// defaults; a missing file that was asked for by name is an error.
    pub fn load(path: Option<&Path>) -> Result<Settings, String> {
        let (path, asked) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (Path::new(DEFAULT_PATH).to_path_buf(), false),
        };
        match std::fs::read_to_string(&path) {
            Ok(text) => Settings::parse(&path.display().to_string(), &text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !asked => {
                Settings::parse("(defaults)", "")
            }
            Err(e) => Err(format!(
                "cannot read the accounting settings {}: {e}\n  hint: docs/accounting.md describes the file; without --accounting the defaults apply",
                path.display()
            )),
        }
    }

    /// Parses the settings text; `source` names it in messages.
    pub fn parse(source: &str, text: &str) -> Result<Settings, String> {
        let f: File = toml::from_str(text).map_err(|e| format!("{source}: {e}"))?;
        let at = |key: &str, e: String| format!("{source}: `{key}`: {e}");
        let span = |key: &str, v: &Option<String>, default: SignedDuration| {
            v.as_deref()
                .map_or(Ok(default), parse_span)
                .map_err(|e| at(key, e))
        };
        let size = |key: &str, v: &Option<String>| {
            v.as_deref()
                .map(Size::parse)
                .transpose()
                .map_err(|e| at(key, format!("{} ({})", e.message, e.hint)))
        };
        let defaults = accounting::Config::default();
        let accountant = accounting::Config {
            packet_width: match f.accounting.packet_counter_bits {
                None | Some(32) => CounterWidth::Bits32,
                Some(64) => CounterWidth::Bits64,
                Some(n) => {
                    return Err(at(
                        "accounting.packet_counter_bits",
                        format!("{n} is neither 32 nor 64"),
                    ))
                }
            },
            first_sight: FirstSight::Baseline,
            max_interval: span(
                "accounting.max_gap",
                &f.accounting.max_gap,
                defaults.max_interval,
            )?,
            forget_after: span(
                "accounting.forget_after",
                &f.accounting.forget_after,
                defaults.forget_after,
            )?,
        };
        let r = history::Retention::default();
        let retention = history::Retention {
            raw: span("retention.raw", &f.retention.raw, r.raw)?,
            hourly: span("retention.hourly", &f.retention.hourly, r.hourly)?,
            daily: span("retention.daily", &f.retention.daily, r.daily)?,
        };
        let b = &f.billing;
        let cycle = BillingCycle::new(b.day.unwrap_or(1), b.timezone.as_deref().unwrap_or("UTC"))
            .map_err(|e| at(&format!("billing.{}", e.field), e.problem))?;
        let rule = PercentileRule {
            percentile: Percentile::new(b.percentile.unwrap_or(95))
                .map_err(|e| at("billing.percentile", e.problem))?,
            method: b.method.unwrap_or(Method::MaxOfDirections),
            rank: match b.rank.as_deref() {
                None | Some("nearest_rank") => RankRule::NearestRank,
                Some("vnstat" | "vn_stat") => RankRule::VnStat,
                Some("librenms" | "libre_nms") => RankRule::LibreNms,
                Some(other) => {
                    return Err(at(
                        "billing.rank",
                        format!(
                            "`{other}` is not a rank rule; use nearest_rank, vnstat or librenms"
                        ),
                    ))
                }
            },
            missing: b.missing.unwrap_or(MissingSamples::ZeroAgainstExpected),
        };
        let volume = VolumeRule {
            counts: b.volume.unwrap_or(VolumeCounts::Both),
            quota: size("billing.quota", &b.quota)?,
        };
        let mut charges = Vec::new();
        for (i, c) in b.charges.iter().enumerate() {
            let key = |k: &str| format!("billing.charges[{i}].{k}");
            if !c.realms.is_empty() && !c.except.is_empty() {
                return Err(at(
                    &key("except"),
                    "use either `realms` or `except`, not both".into(),
                ));
            }
            charges.push(ExtraCharge {
                name: c.name.clone(),
                realms: c.realms.clone(),
                except: c.except.clone(),
                percentile: c.percentile.unwrap_or(true),
                commit: c
                    .commit
                    .as_deref()
                    .map(Rate::parse)
                    .transpose()
                    .map_err(|e| at(&key("commit"), format!("{} ({})", e.message, e.hint)))?,
                quota: size(&key("quota"), &c.quota)?,
            });
        }
        let o = &f.overage;
        let min_elapsed = span(
            "overage.min_elapsed",
            &o.min_elapsed,
            SignedDuration::from_hours(24),
        )?;
        let check_every = span(
            "overage.check_every",
            &o.check_every,
            SignedDuration::from_mins(5),
        )?;
        let overage = OverageSettings {
            enabled: o.enabled.unwrap_or(false),
            plan: o.plan.clone().unwrap_or_else(|| "overage".into()),
            policy: OveragePolicy {
                margin_percent: o.margin_percent.unwrap_or(10),
                min_elapsed: (min_elapsed.as_secs() / accounting::SAMPLE_SECONDS).max(0) as usize,
            },
            check_every: std::time::Duration::from_secs(check_every.as_secs().max(1) as u64),
        };
        Ok(Settings {
            source: source.to_string(),
            accountant,
            retention,
            cycle,
            rule,
            volume,
            charges,
            overage,
        })
    }

    /// A tenant's charge rules: the `total` line over every realm, with the
    /// tenant's commit from the policy, then the extra lines.
    pub fn charge_rules(
        &self,
        policy: &policy::Policy,
        commit: Option<Rate>,
    ) -> Result<Vec<ChargeRule>, String> {
        let mut rules = vec![ChargeRule {
            name: "total".into(),
            realms: RealmSelection::All,
            percentile: Some(self.rule),
            commit,
            volume: self.volume,
        }];
        for c in &self.charges {
            let ids = |names: &[String]| -> Result<Vec<net_types::RealmId>, String> {
                names
                    .iter()
                    .map(|n| {
                        policy.realms.by_name(n).map(|r| r.id).ok_or_else(|| {
                            format!(
                                "{}: charge `{}` names realm `{n}`, which the policy does not have",
                                self.source, c.name
                            )
                        })
                    })
                    .collect()
            };
            let realms = if !c.realms.is_empty() {
                RealmSelection::Only(ids(&c.realms)?)
            } else if !c.except.is_empty() {
                RealmSelection::AllExcept(ids(&c.except)?)
            } else {
                RealmSelection::All
            };
            rules.push(ChargeRule {
                name: c.name.clone(),
                realms,
                percentile: c.percentile.then_some(self.rule),
                commit: c.commit,
                volume: VolumeRule {
                    counts: self.volume.counts,
                    quota: c.quota,
                },
            });
        }
        billing::check_rules(&rules).map_err(|e| format!("{}: {e}", self.source))?;
        Ok(rules)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let s = Settings::parse("t", "").unwrap();
        assert_eq!(s.cycle.day(), 1);
        assert_eq!(s.cycle.zone_name(), "UTC");
        assert_eq!(s.rule, PercentileRule::default());
        assert!(!s.overage.enabled);
        assert_eq!(s.overage.policy.min_elapsed, 288);
    }

    #[test]
    fn every_section_is_read() {
        let s = Settings::parse(
            "t",
            r#"
[accounting]
packet_counter_bits = 64
max_gap = "2m"
[retention]
raw = "62d"
[billing]
day = 15
timezone = "Europe/Berlin"
method = "sum_of_directions"
rank = "vnstat"
quota = "1000gb"
[[billing.charges]]
name = "international"
realms = ["international"]
commit = "1mbit"
[overage]
enabled = true
plan = "overage"
margin_percent = 20
min_elapsed = "12h"
"#,
        )
        .unwrap();
        assert_eq!(s.accountant.packet_width, CounterWidth::Bits64);
        assert_eq!(s.accountant.max_interval, SignedDuration::from_mins(2));
        assert_eq!(s.retention.raw, SignedDuration::from_hours(62 * 24));
        assert_eq!(s.cycle.day(), 15);
        assert_eq!(s.rule.method, Method::SumOfDirections);
        assert_eq!(s.rule.rank, RankRule::VnStat);
        assert_eq!(s.volume.quota, Some(Size::from_bytes(1000 << 30)));
        assert_eq!(s.charges[0].commit, Rate::from_bps(1_000_000));
        assert!(s.overage.enabled);
        assert_eq!(s.overage.policy.min_elapsed, 144);
    }

    #[test]
    fn mistakes_name_the_key() {
        let e = Settings::parse("acct.toml", "[billing]\nday = 31\n").unwrap_err();
        assert!(e.contains("acct.toml") && e.contains("billing_day"), "{e}");
        let e = Settings::parse("acct.toml", "[billing]\nquota = \"10\"\n").unwrap_err();
        assert!(e.contains("billing.quota"), "{e}");
        let e = Settings::parse("acct.toml", "[overage]\nmargin = 3\n").unwrap_err();
        assert!(e.contains("margin"), "{e}");
        let e = Settings::parse("acct.toml", "[retention]\nraw = \"10y\"\n").unwrap_err();
        assert!(e.contains("retention.raw"), "{e}");
    }
}
