//! The `[billing]` and `[overage]` sections: how tenants are billed and
//! when the daemon moves one into the overage plan.
//!
//! The vocabulary is the billing crate's (same spellings), read here
//! without depending on it. Each value is checked on its own while it is
//! read; [`check`] relates the sections to the plans and realms.

use crate::diagnostic::Diagnostic;
use crate::model::*;
use crate::reader::{closest, Cx, Fields, Node};
use crate::source::Span;
use std::time::Duration;

const METHODS: &[(&str, BillingMethod)] = &[
    ("max_of_directions", BillingMethod::MaxOfDirections),
    ("sum_of_directions", BillingMethod::SumOfDirections),
    ("per_sample_max", BillingMethod::PerSampleMax),
];

const RANKS: &[(&str, RankRule)] = &[
    ("nearest_rank", RankRule::NearestRank),
    ("vnstat", RankRule::VnStat),
    ("librenms", RankRule::LibreNms),
];

const MISSING: &[(&str, MissingSamples)] = &[
    ("zero_against_expected", MissingSamples::ZeroAgainstExpected),
    ("skip", MissingSamples::Skip),
];

const VOLUMES: &[(&str, VolumeCounts)] = &[
    ("both", VolumeCounts::Both),
    ("down", VolumeCounts::Down),
    ("up", VolumeCounts::Up),
];

/// The name every bill's first line has.
const TOTAL: &str = "total";

/// Reads the `[billing]` table.
///
/// A key left out has its default, at the section's span. So does a value
/// that could not be read: it was reported, so this policy will not be
/// returned, and the checks that relate the charges to the realms still run.
pub(crate) fn billing(cx: &mut Cx, node: Node<'_>) -> Option<Billing> {
    let mut f = cx.table(node, "billing")?;
    let at = f.span;
    let or = |v: Option<Spanned<_>>, default| v.unwrap_or(Spanned::new(default, at));
    let day = f.get(cx, "day").and_then(|n| billing_day(cx, n));
    let timezone = f.get(cx, "timezone").and_then(|n| timezone(cx, n));
    let percentile = f.get(cx, "percentile").and_then(|n| percentile(cx, n));
    let method = word(cx, f.get(cx, "method"), "billing method", METHODS);
    let rank = word(cx, f.get(cx, "rank"), "rank rule", RANKS);
    let missing = word(cx, f.get(cx, "missing"), "missing-sample rule", MISSING);
    let volume = word(cx, f.get(cx, "volume"), "volume rule", VOLUMES);
    let quota = optional(f.get(cx, "quota"), |n| cx.size(n));
    let mut charges = Vec::new();
    if let Some(n) = f.get(cx, "charges") {
        crate::parse::each_table(cx, n, "billing.charges", |cx, cf| {
            if let Some(c) = charge(cx, cf) {
                charges.push(c);
            }
        });
    }
    f.finish(cx);
    duplicate_charges(cx, &charges);
    Some(Billing {
        day: or(day, 1),
        timezone: timezone.unwrap_or(Spanned::new("UTC".to_owned(), at)),
        percentile: or(percentile, 95),
        method: method.unwrap_or(Spanned::new(BillingMethod::MaxOfDirections, at)),
        rank: rank.unwrap_or(Spanned::new(RankRule::NearestRank, at)),
        missing: missing.unwrap_or(Spanned::new(MissingSamples::ZeroAgainstExpected, at)),
        volume: volume.unwrap_or(Spanned::new(VolumeCounts::Both, at)),
        quota: quota.flatten(),
        charges,
        span: at,
    })
}

/// Reads the `[overage]` table. Defaults stand in as in [`billing`], so
/// that the plan is still checked when another value was wrong.
pub(crate) fn overage(cx: &mut Cx, node: Node<'_>) -> Option<Overage> {
    let mut f = cx.table(node, "overage")?;
    let at = f.span;
    let enabled = f
        .get(cx, "enabled")
        .and_then(|n| Some(Spanned::new(cx.boolean(n)?, n.span)));
    let plan = f
        .get(cx, "plan")
        .and_then(|n| Some(Spanned::new(cx.string(n)?, n.span)));
    let margin_percent = f
        .get(cx, "margin_percent")
        .and_then(|n| Some(Spanned::new(cx.integer(n, 0, 1000)? as u32, n.span)));
    let min_elapsed = f
        .get(cx, "min_elapsed")
        .and_then(|n| duration(cx, n, Duration::ZERO));
    let check_every = f
        .get(cx, "check_every")
        .and_then(|n| duration(cx, n, Duration::from_secs(1)));
    f.finish(cx);
    let minutes = |m: u64| Spanned::new(Duration::from_secs(60 * m), at);
    Some(Overage {
        enabled: enabled.unwrap_or(Spanned::new(false, at)),
        plan: plan.unwrap_or(Spanned::new("overage".to_owned(), at)),
        margin_percent: margin_percent.unwrap_or(Spanned::new(10, at)),
        min_elapsed: min_elapsed.unwrap_or(minutes(24 * 60)),
        check_every: check_every.unwrap_or(minutes(5)),
        span: at,
    })
}

/// `Some(None)` when the key is absent, `None` when it is present but bad.
fn optional<'a, T>(
    node: Option<Node<'a>>,
    read: impl FnOnce(Node<'a>) -> Option<T>,
) -> Option<Option<Spanned<T>>> {
    match node {
        Some(n) => read(n).map(|v| Some(Spanned::new(v, n.span))),
        None => Some(None),
    }
}

pub(crate) fn billing_day(cx: &mut Cx, n: Node<'_>) -> Option<Spanned<u8>> {
    match n.item.as_integer() {
        Some(d) if (1..=28).contains(&d) => Some(Spanned::new(d as u8, n.span)),
        Some(d) => {
            cx.error(
                n.span,
                format!("billing day {d} is not a day every month has"),
                "use 1 to 28: periods start on that day at local midnight, and February has 28 days",
            );
            None
        }
        None => cx.integer(n, 1, 28).map(|d| Spanned::new(d as u8, n.span)),
    }
}

pub(crate) fn percentile(cx: &mut Cx, n: Node<'_>) -> Option<Spanned<u8>> {
    match n.item.as_integer() {
        Some(p) if (1..=99).contains(&p) => Some(Spanned::new(p as u8, n.span)),
        Some(p) => {
            cx.error(
                n.span,
                format!("percentile {p} is not between 1 and 99"),
                "write the percentile as a whole number, e.g. 95 for the 95th",
            );
            None
        }
        None => cx.integer(n, 1, 99).map(|p| Spanned::new(p as u8, n.span)),
    }
}

/// Checks that `timezone` looks like an IANA name (`UTC`, `Europe/Berlin`,
/// `America/Argentina/Buenos_Aires`, `Etc/GMT+5`). Whether the zone exists
/// is for the binary to say: it has the time-zone database.
pub(crate) fn timezone(cx: &mut Cx, n: Node<'_>) -> Option<Spanned<String>> {
    let s = cx.string(n)?;
    let part_ok = |p: &str| {
        p.starts_with(|c: char| c.is_ascii_alphabetic())
            && p.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '+'))
    };
    if !s.is_empty() && s.split('/').all(part_ok) {
        return Some(Spanned::new(s, n.span));
    }
    let hint = if s.contains(' ') {
        "IANA names have no spaces; write e.g. \"America/New_York\""
    } else if s.starts_with(['+', '-']) || s.contains(':') {
        "an offset is not a zone (it has no daylight saving time); write the IANA zone name, e.g. \"Europe/Berlin\", or \"UTC\""
    } else {
        "write an IANA zone name such as \"UTC\", \"Europe/Berlin\" or \"America/Sao_Paulo\""
    };
    cx.error(n.span, format!("`{s}` is not an IANA time zone name"), hint);
    None
}

/// Reads one word of a fixed vocabulary.
pub(crate) fn word<T: Copy>(
    cx: &mut Cx,
    node: Option<Node<'_>>,
    what: &str,
    words: &[(&str, T)],
) -> Option<Spanned<T>> {
    let n = node?;
    let s = cx.string(n)?;
    if let Some((_, v)) = words.iter().find(|(w, _)| *w == s) {
        return Some(Spanned::new(*v, n.span));
    }
    let names: Vec<&str> = words.iter().map(|(w, _)| *w).collect();
    let hint = match closest(&s, &names).or_else(|| reordered(&s, &names)) {
        Some(c) => format!("did you mean `{c}`?"),
        None => format!("use one of: {}", names.join(", ")),
    };
    cx.error(n.span, format!("unknown {what} `{s}`"), hint);
    None
}

/// The known word made of the same `_`-separated parts in another order
/// (`max_per_sample` for `per_sample_max`).
fn reordered<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    let parts = |w: &str| {
        let mut v: Vec<String> = w.split(['_', '-']).map(str::to_ascii_lowercase).collect();
        v.sort();
        v
    };
    let mine = parts(word);
    known.iter().find(|k| parts(k) == mine).copied()
}

/// Reads a duration (`net_types::parse_duration`: `500ms`, `30s`, `5m`,
/// `1.5h`, `70d`), at least `min`.
pub(crate) fn duration(cx: &mut Cx, n: Node<'_>, min: Duration) -> Option<Spanned<Duration>> {
    let text = cx.string(n)?;
    match net_types::parse_duration(&text) {
        Ok(d) if d >= min => Some(Spanned::new(d, n.span)),
        Ok(_) => {
            cx.error(
                n.span,
                format!("`{}` = \"{text}\" is too short", n.key),
                format!("use at least {}s", min.as_secs()),
            );
            None
        }
        Err(e @ net_types::DurationError::TooLong) => {
            cx.error(n.span, format!("`{}` = \"{text}\": {e}", n.key), e.hint());
            None
        }
        Err(e) => {
            cx.error(n.span, format!("`{text}` is not a duration"), e.hint());
            None
        }
    }
}

fn charge(cx: &mut Cx, mut f: Fields<'_>) -> Option<Charge> {
    let name = f.require(cx, "name", "\"international\"").and_then(|n| {
        let s = cx.string(n)?;
        if s.trim().is_empty() {
            cx.error(
                n.span,
                "a charge's name is empty",
                "name the bill line, e.g. name = \"international\"",
            );
            return None;
        }
        if s == TOTAL {
            cx.error(
                n.span,
                "`total` is the name of every bill's first line",
                "name this line after what it bills, e.g. \"international\"",
            );
            return None;
        }
        Some(Spanned::new(s, n.span))
    });
    let realms = realm_list(cx, &mut f, "realms");
    let except = realm_list(cx, &mut f, "except");
    if let (Some(_), Some((span, _))) = (&realms, &except) {
        cx.error(
            *span,
            "a charge has both `realms` and `except`",
            "use `realms` to bill only some realms, or `except` to bill all but some, not both",
        );
    }
    let percentile = match f.get(cx, "percentile") {
        Some(n) => cx.boolean(n).map(|b| Spanned::new(b, n.span)),
        None => Some(Spanned::new(true, f.span)),
    };
    let commit = optional(f.get(cx, "commit"), |n| cx.rate(n));
    let quota = optional(f.get(cx, "quota"), |n| cx.size(n));
    if let (Some(p), Some(Some(c))) = (&percentile, &commit) {
        if !p.value {
            cx.error(
                c.span,
                "a charge with `percentile = false` has a `commit`",
                "a commit is compared with the percentile: remove `commit`, or set percentile = true",
            );
        }
    }
    let span = f.span;
    f.finish(cx);
    let to_spanned = |list: Option<(Span, Vec<(String, Span)>)>| -> Vec<Spanned<String>> {
        list.map(|(_, l)| l.into_iter().map(|(s, sp)| Spanned::new(s, sp)).collect())
            .unwrap_or_default()
    };
    // As in [billing]: what could not be read was reported, and the rest
    // of the charge is kept so that its realms are still checked.
    Some(Charge {
        name: name?,
        realms: to_spanned(realms),
        except: to_spanned(except),
        percentile: percentile.unwrap_or(Spanned::new(true, span)),
        commit: commit.flatten(),
        quota: quota.flatten(),
        span,
    })
}

/// Reads `realms` or `except` of a charge: where it was written and the names.
fn realm_list(
    cx: &mut Cx,
    f: &mut Fields<'_>,
    key: &'static str,
) -> Option<(Span, Vec<(String, Span)>)> {
    let node = f.get(cx, key)?;
    let list = cx.strings(node);
    if node.item.as_array().is_some_and(|a| a.is_empty()) {
        cx.error(
            node.span,
            format!("`{key}` is empty"),
            "name at least one realm, or leave the key out (a charge without `realms` or `except` covers every realm)",
        );
    }
    Some((node.span, list))
}

fn duplicate_charges(cx: &mut Cx, charges: &[Charge]) {
    for (i, c) in charges.iter().enumerate() {
        if charges[..i].iter().any(|o| o.name.value == c.name.value) {
            cx.error(
                c.name.span,
                format!("charge `{}` is declared twice", c.name.value),
                "give each bill line its own name",
            );
        }
    }
}

/// Checks that relate `[billing]` and `[overage]` to the plans and realms.
/// `plan_names` and `realm_names` include items that failed to parse, so
/// that one bad plan or realm is not also reported as unknown here.
pub(crate) fn check(
    p: &Policy,
    plan_names: &[String],
    realm_names: &[String],
    diags: &mut Vec<Diagnostic>,
) {
    let realms: Vec<&str> = realm_names.iter().map(String::as_str).collect();
    if let Some(b) = &p.billing {
        for c in &b.charges {
            for r in c.realms.iter().chain(&c.except) {
                if !realms.contains(&r.value.as_str()) {
                    let (m, h) = crate::validate::unknown("realm", &r.value, &realms);
                    diags.push(
                        Diagnostic::error(
                            Some(r.span),
                            format!("{m} in charge `{}`", c.name.value),
                        )
                        .with_hint(h),
                    );
                }
            }
        }
    }
    if let Some(o) = &p.overage {
        // A plan left at its default matters only when the automation runs.
        let written = o.plan.span != o.span;
        let plans: Vec<&str> = plan_names.iter().map(String::as_str).collect();
        if (written || o.enabled.value) && !plans.contains(&o.plan.value.as_str()) {
            let (m, h) = crate::validate::unknown("plan", &o.plan.value, &plans);
            let h = if written {
                h
            } else {
                format!(
                    "{h}; [overage] moves tenants into plan `overage` unless `plan` names another"
                )
            };
            diags.push(
                Diagnostic::error(Some(o.plan.span), format!("{m} as the overage plan"))
                    .with_hint(h),
            );
        }
    }
}
