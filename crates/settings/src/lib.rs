//! The accounting and billing settings: the policy's `[billing]` and
//! `[overage]` sections, and the daemon's own settings file
//! (`/etc/tollgate/accounting.toml`, `--accounting FILE`) with
//! `[accounting]` and `[retention]`. Read by `run`, `usage`, `realms` and
//! `bill`; documented in docs/accounting.md and docs/policy.md.
//!
//! `[billing]` and `[overage]` belong in the policy, where they are checked
//! with the policy's diagnostics (the overage plan exists, charges name
//! declared realms). The file still accepts them, for installs made before
//! the policy had them: a section the policy has comes from the policy, a
//! section only the file has comes from the file, and a section both have
//! is an error naming both places ([`Settings::resolve`]). Every key is
//! optional: no sections anywhere means the defaults below, which is what a
//! new install wants (UTC months from the 1st, the 95th of the larger
//! direction, nearest rank, missing samples as zero, no automation).
//!
//! Everything here is pure: the binary reads the file and hands its text to
//! [`Settings::parse`] (or [`Settings::defaults`] when there is none), then
//! resolves it against a loaded policy with [`Settings::resolve`].

use accounting::{CounterWidth, FirstSight};
use billing::{
    BillingCycle, ChargeRule, Method, MissingSamples, OveragePolicy, Percentile, PercentileRule,
    RankRule, RealmSelection, VolumeCounts, VolumeRule,
};
use jiff::SignedDuration;
use net_types::{Rate, Size};
use policy::{Loaded, Spanned};
use serde::Deserialize;

/// A setting that cannot be used; the message names the file and key, or
/// the policy's file:line:col.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SettingsError {
    message: String,
}

impl From<String> for SettingsError {
    fn from(message: String) -> SettingsError {
        SettingsError { message }
    }
}

impl std::fmt::Display for SettingsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for SettingsError {}

/// How long the history keeps each resolution (the store's retention).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Raw 5-minute samples (and slot coverage). Never deleted inside a
    /// period that is not frozen, whatever this says.
    pub raw: SignedDuration,
    /// Hourly rollups.
    pub hourly: SignedDuration,
    /// Daily rollups.
    pub daily: SignedDuration,
}

impl Default for Retention {
    /// Raw for 70 days (a 31-day period plus a month's grace to freeze
    /// it), hourly for 3 years, daily for 10.
    fn default() -> Retention {
        Retention {
            raw: SignedDuration::from_hours(24 * 70),
            hourly: SignedDuration::from_hours(24 * 1096),
            daily: SignedDuration::from_hours(24 * 3653),
        }
    }
}

/// Where the settings are read from unless `--accounting` says otherwise.
pub const DEFAULT_PATH: &str = "/etc/tollgate/accounting.toml";

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    accounting: AccountingFile,
    #[serde(default)]
    retention: RetentionFile,
    billing: Option<BillingFile>,
    overage: Option<OverageFile>,
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

/// Which of `[billing]` and `[overage]` the settings file has.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileSections {
    /// The file has `[billing]`.
    pub billing: bool,
    /// The file has `[overage]`.
    pub overage: bool,
}

/// Every setting, validated.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Where they came from, for messages.
    pub source: String,
    /// Where the billing settings (`cycle`, `rule`, `volume`, `charges`)
    /// came from: the policy, the settings file, or `(defaults)`.
    pub billing_source: String,
    /// The sections the settings file itself has, for [`Settings::resolve`].
    pub file_sections: FileSections,
    /// How counters are read.
    pub accountant: accounting::Config,
    /// How long history is kept.
    pub retention: Retention,
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

/// Parses `30s`, `5m`, `12h`, `70d` (the one duration syntax of
/// `net_types::parse_duration`; up to 100 years, never overflowing).
pub fn parse_span(text: &str) -> Result<SignedDuration, SettingsError> {
    let d = net_types::parse_duration(text)
        .map_err(|e| SettingsError::from(format!("{e} ({})", e.hint())))?;
    SignedDuration::try_from(d)
        .map_err(|_| SettingsError::from(format!("`{text}` is too long a span")))
}

impl Settings {
    /// The built-in defaults, for an install without a settings file.
    pub fn defaults() -> Settings {
        Settings::parse("(defaults)", "").expect("the empty file is valid")
    }

    /// Parses the settings text; `source` names it in messages.
    pub fn parse(source: &str, text: &str) -> Result<Settings, SettingsError> {
        let f: File =
            toml::from_str(text).map_err(|e| SettingsError::from(format!("{source}: {e}")))?;
        let at = |key: &str, e: String| SettingsError::from(format!("{source}: `{key}`: {e}"));
        let span = |key: &str, v: &Option<String>, default: SignedDuration| {
            v.as_deref()
                .map_or(Ok(default), parse_span)
                .map_err(|e| at(key, e.to_string()))
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
        let r = Retention::default();
        let retention = Retention {
            raw: span("retention.raw", &f.retention.raw, r.raw)?,
            hourly: span("retention.hourly", &f.retention.hourly, r.hourly)?,
            daily: span("retention.daily", &f.retention.daily, r.daily)?,
        };
        let file_sections = FileSections {
            billing: f.billing.is_some(),
            overage: f.overage.is_some(),
        };
        let b = &f.billing.unwrap_or_default();
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
        let o = &f.overage.unwrap_or_default();
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
        let from = |defined: bool| {
            if defined {
                source.to_string()
            } else {
                "(defaults)".to_string()
            }
        };
        Ok(Settings {
            source: source.to_string(),
            billing_source: from(file_sections.billing),
            file_sections,
            accountant,
            retention,
            cycle,
            rule,
            volume,
            charges,
            overage,
        })
    }

    /// The settings in force: `file` (from [`Settings::load`]) with the
    /// policy's `[billing]` and `[overage]` in place of the file's. A
    /// section both define is an error naming both places; so is a time
    /// zone the policy names that does not exist (the policy crate checks
    /// only the name's shape). Without a policy, or with one that did not
    /// load, the file's settings apply.
    pub fn resolve(file: Settings, loaded: Option<&Loaded>) -> Result<Settings, SettingsError> {
        let Some((policy, sources)) = loaded.and_then(|l| Some((l.policy.as_ref()?, &l.sources)))
        else {
            return Ok(file);
        };
        let name = sources
            .get(policy::FileId(0))
            .map_or("the policy", |f| f.name.as_str());
        let at = |span| sources.location(span);
        let mut problems = Vec::new();
        let mut both = |section: &str, in_file: bool, span| {
            if in_file {
                problems.push(format!(
                    "[{section}] is in both the policy ({}) and {}\n  hint: move it into the policy and delete it from {}",
                    at(span),
                    file.source,
                    file.source
                ));
            }
        };
        if let Some(b) = &policy.billing {
            both("billing", file.file_sections.billing, b.span);
        }
        if let Some(o) = &policy.overage {
            both("overage", file.file_sections.overage, o.span);
        }
        let mut s = file.clone();
        let mut taken = Vec::new();
        if let Some(b) = &policy.billing {
            match billing_of(b, &at) {
                Ok((cycle, rule, volume, charges)) => {
                    s.cycle = cycle;
                    s.rule = rule;
                    s.volume = volume;
                    s.charges = charges;
                    s.billing_source = name.to_string();
                    taken.push("[billing]");
                }
                Err(e) => problems.push(e.to_string()),
            }
        }
        if let Some(o) = &policy.overage {
            s.overage = overage_of(o);
            taken.push("[overage]");
        }
        if !problems.is_empty() {
            return Err(problems.join("\n").into());
        }
        if !taken.is_empty() {
            s.source = format!(
                "{} with {} from the policy {name}",
                file.source,
                taken.join(" and ")
            );
        }
        Ok(s)
    }

    /// A tenant's charge rules: the `total` line over every realm, with the
    /// tenant's commit from the policy, then the extra lines.
    pub fn charge_rules(
        &self,
        policy: &policy::Policy,
        commit: Option<Rate>,
    ) -> Result<Vec<ChargeRule>, SettingsError> {
        let mut rules = vec![ChargeRule {
            name: "total".into(),
            realms: RealmSelection::All,
            percentile: Some(self.rule),
            commit,
            volume: self.volume,
        }];
        for c in &self.charges {
            let ids = |names: &[String]| -> Result<Vec<net_types::RealmId>, SettingsError> {
                names
                    .iter()
                    .map(|n| {
                        policy.realms.by_name(n).map(|r| r.id).ok_or_else(|| {
                            SettingsError::from(format!(
                                "{}: charge `{}` names realm `{n}`, which the policy does not have",
                                self.billing_source, c.name
                            ))
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
        billing::check_rules(&rules)
            .map_err(|e| SettingsError::from(format!("{}: {e}", self.billing_source)))?;
        Ok(rules)
    }
}

/// The billing settings of the policy's `[billing]`; `at` places a span.
fn billing_of(
    b: &policy::Billing,
    at: &dyn Fn(policy::Span) -> String,
) -> Result<(BillingCycle, PercentileRule, VolumeRule, Vec<ExtraCharge>), SettingsError> {
    let cycle = BillingCycle::new(b.day.value, &b.timezone.value).map_err(|e| {
        let span = if e.field == "timezone" {
            b.timezone.span
        } else {
            b.day.span
        };
        SettingsError::from(format!(
            "{}: billing.{}: {}\n  hint: zone names are case-sensitive IANA names such as \"Europe/Berlin\" or \"America/Sao_Paulo\"; `timedatectl list-timezones` lists them",
            at(span),
            e.field,
            e.problem
        ))
    })?;
    let percentile = Percentile::new(b.percentile.value).map_err(|e| {
        SettingsError::from(format!(
            "{}: billing.percentile: {}",
            at(b.percentile.span),
            e.problem
        ))
    })?;
    let rule = PercentileRule {
        percentile,
        method: match b.method.value {
            policy::BillingMethod::MaxOfDirections => Method::MaxOfDirections,
            policy::BillingMethod::SumOfDirections => Method::SumOfDirections,
            policy::BillingMethod::PerSampleMax => Method::PerSampleMax,
        },
        rank: match b.rank.value {
            policy::RankRule::NearestRank => RankRule::NearestRank,
            policy::RankRule::VnStat => RankRule::VnStat,
            policy::RankRule::LibreNms => RankRule::LibreNms,
        },
        missing: match b.missing.value {
            policy::MissingSamples::ZeroAgainstExpected => MissingSamples::ZeroAgainstExpected,
            policy::MissingSamples::Skip => MissingSamples::Skip,
        },
    };
    let volume = VolumeRule {
        counts: match b.volume.value {
            policy::VolumeCounts::Both => VolumeCounts::Both,
            policy::VolumeCounts::Down => VolumeCounts::Down,
            policy::VolumeCounts::Up => VolumeCounts::Up,
        },
        quota: b.quota.map(|q| q.value),
    };
    let names = |list: &[Spanned<String>]| list.iter().map(|r| r.value.clone()).collect();
    let charges = b
        .charges
        .iter()
        .map(|c| ExtraCharge {
            name: c.name.value.clone(),
            realms: names(&c.realms),
            except: names(&c.except),
            percentile: c.percentile.value,
            commit: c.commit.map(|v| v.value),
            quota: c.quota.map(|v| v.value),
        })
        .collect();
    Ok((cycle, rule, volume, charges))
}

/// The overage settings of the policy's `[overage]`.
fn overage_of(o: &policy::Overage) -> OverageSettings {
    OverageSettings {
        enabled: o.enabled.value,
        plan: o.plan.value.clone(),
        policy: OveragePolicy {
            margin_percent: o.margin_percent.value,
            min_elapsed: (o.min_elapsed.value.as_secs() / accounting::SAMPLE_SECONDS as u64)
                as usize,
        },
        check_every: o.check_every.value.max(std::time::Duration::from_secs(1)),
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

    const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }

[realms]
default = "international"
[realms.national]
id = 1
[realms.international]
id = 2

[plans.basic]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "5mbit", ceil = "10mbit" }
[plans.slow]
shared = true
id = 100
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }

[[tenants]]
id = 1
plan = "basic"
prefixes = ["100.64.0.0/24"]
"#;

    const POLICY_BILLING: &str = r#"
[billing]
day = 15
timezone = "Europe/Berlin"
percentile = 90
method = "per_sample_max"
rank = "librenms"
missing = "skip"
volume = "down"
quota = "500gb"

[[billing.charges]]
name = "international"
except = ["national"]
commit = "2mbit"
"#;

    const POLICY_OVERAGE: &str = r#"
[overage]
enabled = true
plan = "slow"
margin_percent = 25
min_elapsed = "2h"
check_every = "30s"
"#;

    fn policy(extra: &str) -> Loaded {
        let loaded = policy::load_str("policy.toml", &format!("{POLICY}{extra}"));
        assert!(!loaded.has_errors(), "{}", loaded.render());
        loaded
    }

    #[test]
    fn without_a_policy_the_file_applies() {
        let file = Settings::parse("acct.toml", "[billing]\nday = 5\n").unwrap();
        let s = Settings::resolve(file.clone(), None).unwrap();
        assert_eq!(s.cycle.day(), 5);
        assert_eq!(s.billing_source, "acct.toml");
        // A policy that did not load is no policy: the file applies.
        let broken = policy::load_str("policy.toml", "[billing]\nday = 99\n");
        assert!(broken.policy.is_none());
        let s = Settings::resolve(file, Some(&broken)).unwrap();
        assert_eq!(s.cycle.day(), 5);
        assert_eq!(s.source, "acct.toml");
    }

    #[test]
    fn the_policy_sections_replace_the_defaults() {
        let file = Settings::parse("acct.toml", "[retention]\nraw = \"62d\"\n").unwrap();
        let loaded = policy(&format!("{POLICY_BILLING}{POLICY_OVERAGE}"));
        let s = Settings::resolve(file, Some(&loaded)).unwrap();
        assert_eq!(s.cycle.day(), 15);
        assert_eq!(s.cycle.zone_name(), "Europe/Berlin");
        assert_eq!(s.rule.percentile.get(), 90);
        assert_eq!(s.rule.method, Method::PerSampleMax);
        assert_eq!(s.rule.rank, RankRule::LibreNms);
        assert_eq!(s.rule.missing, MissingSamples::Skip);
        assert_eq!(s.volume.counts, VolumeCounts::Down);
        assert_eq!(s.volume.quota, Some(Size::from_bytes(500 << 30)));
        assert_eq!(s.charges[0].except, ["national"]);
        assert_eq!(s.charges[0].commit, Rate::from_bps(2_000_000));
        assert!(s.overage.enabled);
        assert_eq!(s.overage.plan, "slow");
        assert_eq!(s.overage.policy.margin_percent, 25);
        assert_eq!(s.overage.policy.min_elapsed, 24);
        assert_eq!(s.overage.check_every, std::time::Duration::from_secs(30));
        // The file keeps the daemon's own settings.
        assert_eq!(s.retention.raw, SignedDuration::from_hours(62 * 24));
        assert_eq!(s.billing_source, "policy.toml");
        assert!(s.source.contains("[billing] and [overage]"), "{}", s.source);
        // The charge's realms resolve against the same policy.
        let rules = s
            .charge_rules(loaded.policy.as_ref().unwrap(), None)
            .unwrap();
        assert_eq!(
            rules[1].realms,
            RealmSelection::AllExcept(vec![net_types::RealmId(1)])
        );
    }

    #[test]
    fn each_section_comes_from_where_it_is() {
        let file = Settings::parse(
            "acct.toml",
            "[billing]\nday = 3\n[overage]\nenabled = true\nplan = \"slow\"\n",
        )
        .unwrap();
        // [overage] in the policy, [billing] in the file: both apply.
        let with_overage = policy(POLICY_OVERAGE);
        let file_billing_only = Settings::parse("acct.toml", "[billing]\nday = 3\n").unwrap();
        let s = Settings::resolve(file_billing_only, Some(&with_overage)).unwrap();
        assert_eq!(s.cycle.day(), 3);
        assert_eq!(s.billing_source, "acct.toml");
        assert_eq!(s.overage.policy.margin_percent, 25);
        // A policy without either section leaves the file's.
        let s = Settings::resolve(file, Some(&policy(""))).unwrap();
        assert_eq!(s.cycle.day(), 3);
        assert!(s.overage.enabled);
        assert_eq!(s.source, "acct.toml");
    }

    #[test]
    fn a_section_in_both_places_is_an_error_naming_both() {
        let file = Settings::parse(
            "/etc/tollgate/accounting.toml",
            "[billing]\nday = 3\n[overage]\nenabled = false\n",
        )
        .unwrap();
        let e = Settings::resolve(file.clone(), Some(&policy(POLICY_BILLING)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("[billing] is in both"), "{e}");
        assert!(e.contains("policy.toml:29:1"), "{e}");
        assert!(
            e.contains("move it into the policy and delete it from /etc/tollgate/accounting.toml"),
            "{e}"
        );
        assert!(!e.contains("[overage]"), "{e}");
        // Both sections in both places: both are reported at once.
        let both = policy(&format!("{POLICY_BILLING}{POLICY_OVERAGE}"));
        let e = Settings::resolve(file, Some(&both))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("[billing] is in both") && e.contains("[overage] is in both"),
            "{e}"
        );
        // Even an empty [billing] in the file counts as defining it.
        let empty = Settings::parse("acct.toml", "[billing]\n").unwrap();
        assert!(Settings::resolve(empty, Some(&policy(POLICY_BILLING))).is_err());
    }

    #[test]
    fn an_unknown_zone_in_the_policy_names_the_policy() {
        let loaded = policy("[billing]\ntimezone = \"Europe/Berln\"\n");
        let e = Settings::resolve(Settings::parse("t", "").unwrap(), Some(&loaded))
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("policy.toml:29:12: billing.timezone:"), "{e}");
        assert!(e.contains("Europe/Berln"), "{e}");
    }

    #[test]
    fn mistakes_name_the_key() {
        let e = Settings::parse("acct.toml", "[billing]\nday = 31\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("acct.toml") && e.contains("billing_day"), "{e}");
        let e = Settings::parse("acct.toml", "[billing]\nquota = \"10\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("billing.quota"), "{e}");
        let e = Settings::parse("acct.toml", "[overage]\nmargin = 3\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("margin"), "{e}");
        let e = Settings::parse("acct.toml", "[retention]\nraw = \"10y\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("retention.raw"), "{e}");
    }

    #[test]
    fn huge_spans_are_refused_not_overflowed() {
        // 10^17 days overflow i64 seconds: refused with the key named.
        let e = Settings::parse("acct.toml", "[retention]\nraw = \"100000000000000000d\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("retention.raw") && e.contains("longer than 100 years"),
            "{e}"
        );
        assert!(parse_span("9223372036854775807s").is_err());
        assert!(parse_span("1000d").is_ok());
    }
}
