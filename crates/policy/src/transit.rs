//! The `[transit]` section: what the site itself commits to pay its
//! upstreams for, and how each upstream bills it (docs/transit.md).
//!
//! An upstream bills the site's uplink at a percentile just as tollgate
//! bills tenants, but by its own rules: its billing day and zone, its rank
//! rule, and which directions count (`in`, `out`, the larger of the two
//! percentiles, or their sum). The vocabulary is `[billing]`'s where it
//! overlaps (same spellings, same readers), plus `in` and `out`, which
//! only an upstream uses. Each value is checked on its own while it is
//! read; [`check`] relates the upstreams to the site and the realms.

use net_types::{IfName, Rate};
use serde::Serialize;

use crate::billing::{billing_day, duration, percentile, timezone, word};
use crate::diagnostic::Diagnostic;
use crate::model::{MissingSamples, Policy, RankRule, Spanned};
use crate::reader::{Cx, Fields, Node};
use crate::source::Span;

/// The `[transit]` section.
#[derive(Clone, Debug, Serialize)]
pub struct Transit {
    /// The upstreams, in file order.
    pub upstreams: Vec<Upstream>,
    /// What the transit guard does (`off` unless set).
    pub guard: Spanned<GuardMode>,
    /// The overage pool's ceil in the guard's first step (required unless
    /// the guard is off).
    pub pool_ceil: Option<Spanned<Rate>>,
    /// How many of the heaviest tenants the second step moves (3 unless
    /// set).
    pub heaviest: Spanned<u32>,
    /// A step stands at least this long before it is relaxed, and a
    /// relax by hand holds off tightening this long (6 hours unless set).
    pub hold: Spanned<std::time::Duration>,
    /// Where `[transit]` was declared.
    pub span: Span,
}

/// One `[[transit.upstreams]]`: a commit on the uplink, for all its
/// traffic or for some realms (a national and an international transit
/// with their own commits).
#[derive(Clone, Debug, Serialize)]
pub struct Upstream {
    /// Its name, in `tollgate transit` and the API.
    pub name: Spanned<String>,
    /// The uplink it bills: the site's (`[site] uplink`, which is also the
    /// default).
    pub uplink: Spanned<IfName>,
    /// The realms it carries; empty is every realm, and then traffic of
    /// no tenant counts too.
    pub realms: Vec<Spanned<String>>,
    /// The committed rate.
    pub commit: Spanned<Rate>,
    /// Keep the projected percentile this many percent under the commit
    /// (10 unless set): the guard acts on commit × (100 − margin) / 100.
    pub margin_percent: Spanned<u32>,
    /// The percentile billed (95 unless set).
    pub percentile: Spanned<u8>,
    /// How the upstream combines the directions.
    pub method: Spanned<UpstreamMethod>,
    /// Which sorted sample is the percentile.
    pub rank: Spanned<RankRule>,
    /// What a sample nobody observed counts as.
    pub missing: Spanned<MissingSamples>,
    /// The upstream's billing day (1–28; 1 unless set).
    pub day: Spanned<u8>,
    /// The upstream's billing zone (`UTC` unless set), which need not be
    /// the tenants'.
    pub timezone: Spanned<String>,
    /// Where it was declared.
    pub span: Span,
}

/// How an upstream combines the uplink's two directions. "In" is traffic
/// from the upstream into the site (toward the tenants, their `down`);
/// "out" is the site's traffic to the upstream.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UpstreamMethod {
    /// `max_of_directions`: the percentile of each direction, the larger
    /// billed (most transit contracts).
    MaxOfDirections,
    /// `sum_of_directions`: the percentile of in + out per sample.
    SumOfDirections,
    /// `per_sample_max`: the percentile of max(in, out) per sample.
    PerSampleMax,
    /// `in`: the percentile of in only.
    In,
    /// `out`: the percentile of out only.
    Out,
}

/// `[transit] guard`: whether the transit guard acts on the kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GuardMode {
    /// `off`: no guard (the figures are still kept).
    Off,
    /// `dry-run`: the guard decides and logs what it would do; nothing
    /// changes.
    DryRun,
    /// `on`: its steps are applied to the kernel.
    On,
}

const GUARD_MODES: &[(&str, GuardMode)] = &[
    ("off", GuardMode::Off),
    ("dry-run", GuardMode::DryRun),
    ("on", GuardMode::On),
];

const METHODS: &[(&str, UpstreamMethod)] = &[
    ("max_of_directions", UpstreamMethod::MaxOfDirections),
    ("sum_of_directions", UpstreamMethod::SumOfDirections),
    ("per_sample_max", UpstreamMethod::PerSampleMax),
    ("in", UpstreamMethod::In),
    ("out", UpstreamMethod::Out),
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

/// Reads the `[transit]` table.
pub(crate) fn section(cx: &mut Cx, node: Node<'_>) -> Option<Transit> {
    let mut f = cx.table(node, "transit")?;
    let span = f.span;
    let mut upstreams = Vec::new();
    match f.get(cx, "upstreams") {
        Some(n) => crate::parse::each_table(cx, n, "transit.upstreams", |cx, uf| {
            if let Some(u) = upstream(cx, uf) {
                upstreams.push(u);
            }
        }),
        None => cx.error(
            span,
            "[transit] has no upstream",
            "add [[transit.upstreams]] with a name and a commit, e.g. name = \"carrier\", commit = \"10mbit\"",
        ),
    }
    let guard = word(cx, f.get(cx, "guard"), "transit guard mode", GUARD_MODES)
        .unwrap_or(Spanned::new(GuardMode::Off, span));
    let pool_ceil = f
        .get(cx, "pool_ceil")
        .and_then(|n| Some(Spanned::new(cx.rate(n)?, n.span)));
    let heaviest = f
        .get(cx, "heaviest")
        .and_then(|n| Some(Spanned::new(cx.integer(n, 1, 1000)? as u32, n.span)))
        .unwrap_or(Spanned::new(3, span));
    let hold = f
        .get(cx, "hold")
        .and_then(|n| duration(cx, n, std::time::Duration::from_secs(1)))
        .unwrap_or(Spanned::new(std::time::Duration::from_secs(6 * 3600), span));
    f.finish(cx);
    if guard.value != GuardMode::Off && pool_ceil.is_none() {
        cx.error(
            guard.span,
            "the transit guard needs `pool_ceil`",
            "add pool_ceil = \"10mbit\" to [transit]: what the overage pool is lowered to in the guard's first step",
        );
    }
    for (i, u) in upstreams.iter().enumerate() {
        if upstreams[..i].iter().any(|o| o.name.value == u.name.value) {
            cx.error(
                u.name.span,
                format!("upstream `{}` is declared twice", u.name.value),
                "give each upstream its own name",
            );
        }
    }
    Some(Transit {
        upstreams,
        guard,
        pool_ceil,
        heaviest,
        hold,
        span,
    })
}

fn upstream(cx: &mut Cx, mut f: Fields<'_>) -> Option<Upstream> {
    let at = f.span;
    let name = f.require(cx, "name", "\"carrier\"").and_then(|n| {
        let s = cx.string(n)?;
        if s.trim().is_empty() {
            cx.error(
                n.span,
                "an upstream's name is empty",
                "name it after the carrier, e.g. name = \"carrier\"",
            );
            return None;
        }
        Some(Spanned::new(s, n.span))
    });
    let commit = f
        .require(cx, "commit", "\"10mbit\"")
        .and_then(|n| Some(Spanned::new(cx.rate(n)?, n.span)));
    let uplink = f
        .get(cx, "uplink")
        .and_then(|n| Some(Spanned::new(cx.ifname(n)?, n.span)));
    let realms = match f.get(cx, "realms") {
        Some(n) => {
            let list = cx.strings(n);
            if n.item.as_array().is_some_and(|a| a.is_empty()) {
                cx.error(
                    n.span,
                    "`realms` is empty",
                    "name at least one realm, or leave the key out (an upstream without `realms` carries every realm)",
                );
            }
            list.into_iter()
                .map(|(s, sp)| Spanned::new(s, sp))
                .collect()
        }
        None => Vec::new(),
    };
    let margin = f.get(cx, "margin_percent").and_then(|n| {
        let m = cx.integer(n, 0, 99)?;
        Some(Spanned::new(m as u32, n.span))
    });
    let pct = f.get(cx, "percentile").and_then(|n| percentile(cx, n));
    let method = word(cx, f.get(cx, "method"), "upstream billing method", METHODS);
    let rank = word(cx, f.get(cx, "rank"), "rank rule", RANKS);
    let missing = word(cx, f.get(cx, "missing"), "missing-sample rule", MISSING);
    let day = f.get(cx, "day").and_then(|n| billing_day(cx, n));
    let zone = f.get(cx, "timezone").and_then(|n| timezone(cx, n));
    f.finish(cx);
    fn or<T>(v: Option<Spanned<T>>, default: T, at: Span) -> Spanned<T> {
        v.unwrap_or(Spanned::new(default, at))
    }
    Some(Upstream {
        name: name?,
        // The site's uplink stands in until `check` compares; a missing
        // key is the site's by definition.
        uplink: uplink.unwrap_or(Spanned::new(
            IfName::new("uplink").expect("a valid name"),
            at,
        )),
        realms,
        commit: commit?,
        margin_percent: or(margin, 10, at),
        percentile: or(pct, 95, at),
        method: or(method, UpstreamMethod::MaxOfDirections, at),
        rank: or(rank, RankRule::NearestRank, at),
        missing: or(missing, MissingSamples::ZeroAgainstExpected, at),
        day: or(day, 1, at),
        timezone: zone.unwrap_or(Spanned::new("UTC".to_owned(), at)),
        span: at,
    })
}

/// Fills each upstream's default uplink with the site's. Runs once the
/// site is known.
pub(crate) fn resolve(t: &mut Transit, site_uplink: IfName) {
    for u in &mut t.upstreams {
        if u.uplink.span == u.span {
            u.uplink.value = site_uplink;
        }
    }
}

/// Checks that relate `[transit]` to the site and the realms. `realm_names`
/// includes realms that failed to parse, so that one bad realm is not also
/// reported as unknown here.
pub(crate) fn check(
    p: &Policy,
    site_ok: bool,
    realm_names: &[String],
    diags: &mut Vec<Diagnostic>,
) {
    let Some(t) = &p.transit else { return };
    if t.guard.value != GuardMode::Off {
        // The guard's first two steps act on the overage plan.
        let plan = p
            .overage
            .as_ref()
            .map_or("overage", |o| o.plan.value.as_str());
        if p.plan(plan).is_none() {
            diags.push(
                Diagnostic::error(
                    Some(t.guard.span),
                    format!("the transit guard acts on the overage plan `{plan}`, which is not in the policy"),
                )
                .with_hint(format!(
                    "add [plans.{plan}] (shared = true, so that the tenants moved share one pool), or set [overage] plan"
                )),
            );
        }
    }
    let realms: Vec<&str> = realm_names.iter().map(String::as_str).collect();
    for u in &t.upstreams {
        if site_ok && u.uplink.value != p.site.uplink {
            diags.push(
                Diagnostic::error(
                    Some(u.uplink.span),
                    format!(
                        "upstream `{}` is on `{}`, which is not the site's uplink `{}`",
                        u.name.value, u.uplink.value, p.site.uplink
                    ),
                )
                .with_hint(
                    "tollgate counts the traffic of [site] uplink only; remove `uplink` or write the site's",
                ),
            );
        }
        for r in &u.realms {
            if !realms.contains(&r.value.as_str()) {
                let (m, h) = crate::validate::unknown("realm", &r.value, &realms);
                diags.push(
                    Diagnostic::error(Some(r.span), format!("{m} in upstream `{}`", u.name.value))
                        .with_hint(h),
                );
            }
        }
        for (i, r) in u.realms.iter().enumerate() {
            if u.realms[..i].iter().any(|o| o.value == r.value) {
                diags.push(
                    Diagnostic::error(
                        Some(r.span),
                        format!(
                            "realm `{}` is listed twice in upstream `{}`",
                            r.value, u.name.value
                        ),
                    )
                    .with_hint("list each realm once"),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
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

[[tenants]]
id = 1
plan = "basic"
prefixes = ["100.64.0.0/24"]
"#;

    fn load(extra: &str) -> crate::Loaded {
        crate::load("p.toml", &format!("{BASE}{extra}"), &mut |_| {
            Err("no files".into())
        })
    }

    #[test]
    fn an_upstream_has_its_own_rules_and_defaults() {
        let l = load(
            r#"
[[transit.upstreams]]
name = "national"
realms = ["national"]
commit = "3mbit"
method = "in"
rank = "librenms"
day = 15
timezone = "America/Sao_Paulo"
margin_percent = 5

[[transit.upstreams]]
name = "carrier"
commit = "10mbit"
"#,
        );
        assert!(!l.has_errors(), "{}", l.render());
        let t = l.policy.unwrap().transit.unwrap();
        let [n, c] = &t.upstreams[..] else {
            panic!("two upstreams")
        };
        assert_eq!(n.name.value, "national");
        assert_eq!(n.uplink.value.as_str(), "wan0");
        assert_eq!(n.realms[0].value, "national");
        assert_eq!(n.commit.value.bps(), 3_000_000);
        assert_eq!(n.method.value, UpstreamMethod::In);
        assert_eq!(n.rank.value, RankRule::LibreNms);
        assert_eq!(
            (n.day.value, n.timezone.value.as_str()),
            (15, "America/Sao_Paulo")
        );
        assert_eq!(n.margin_percent.value, 5);
        // Left out: the usual transit contract, on the site's uplink.
        assert_eq!(c.uplink.value.as_str(), "wan0");
        assert!(c.realms.is_empty());
        assert_eq!(c.method.value, UpstreamMethod::MaxOfDirections);
        assert_eq!(c.rank.value, RankRule::NearestRank);
        assert_eq!(c.missing.value, MissingSamples::ZeroAgainstExpected);
        assert_eq!(
            (c.percentile.value, c.day.value, c.margin_percent.value),
            (95, 1, 10)
        );
        assert_eq!(c.timezone.value, "UTC");
    }

    #[test]
    fn an_upstream_needs_a_commit_and_a_name() {
        let l = load("\n[[transit.upstreams]]\nmethod = \"out\"\n");
        let text = l.render();
        assert!(
            text.contains("missing key `name`") || text.contains("`name`"),
            "{text}"
        );
        assert!(text.contains("commit"), "{text}");
        assert!(l.policy.is_none());
    }

    #[test]
    fn the_guard_is_off_unless_set_and_needs_a_pool_ceil_and_the_overage_plan() {
        let l = load("\n[transit]\n[[transit.upstreams]]\nname = \"c\"\ncommit = \"10mbit\"\n");
        assert!(!l.has_errors(), "{}", l.render());
        let t = l.policy.unwrap().transit.unwrap();
        assert_eq!(t.guard.value, GuardMode::Off);
        assert_eq!((t.heaviest.value, t.hold.value.as_secs()), (3, 6 * 3600));
        let l = load(
            "\n[transit]\nguard = \"on\"\n[[transit.upstreams]]\nname = \"c\"\ncommit = \"10mbit\"\n",
        );
        let text = l.render();
        assert!(
            text.contains("the transit guard needs `pool_ceil`"),
            "{text}"
        );
        assert!(text.contains("p.toml:"), "{text}");
        let l = load(
            "\n[transit]\nguard = \"dry-run\"\npool_ceil = \"2mbit\"\n[[transit.upstreams]]\nname = \"c\"\ncommit = \"10mbit\"\n",
        );
        let text = l.render();
        assert!(
            text.contains("overage plan `overage`, which is not in the policy"),
            "{text}"
        );
        let l = load(
            "\n[plans.overage]\nshared = true\nid = 100\ndown = { rate = \"2mbit\", ceil = \"8mbit\" }\nup = { rate = \"2mbit\", ceil = \"8mbit\" }\n\n[transit]\nguard = \"dry-run\"\npool_ceil = \"2mbit\"\nheaviest = 2\nhold = \"1h\"\n[[transit.upstreams]]\nname = \"c\"\ncommit = \"10mbit\"\n",
        );
        assert!(!l.has_errors(), "{}", l.render());
        let t = l.policy.unwrap().transit.unwrap();
        assert_eq!(t.guard.value, GuardMode::DryRun);
        assert_eq!(t.pool_ceil.unwrap().value.bps(), 2_000_000);
        assert_eq!((t.heaviest.value, t.hold.value.as_secs()), (2, 3600));
        let l = load("\n[transit]\nguard = \"dryrun\"\n[[transit.upstreams]]\nname = \"c\"\ncommit = \"10mbit\"\n");
        let text = l.render();
        assert!(
            text.contains("unknown transit guard mode `dryrun`"),
            "{text}"
        );
    }
}
