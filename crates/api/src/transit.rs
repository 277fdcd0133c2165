//! The site's own bill against its upstreams' commits (docs/transit.md):
//! `GET /api/v1/transit` (the same figures as `tollgate transit`, from
//! `query::transit`) and the overview's "site's 95th so far" figure
//! ([`site_percentile`], in `GET /api/v1/site`'s `percentile`).
//! Site-wide: a tenant token gets 403.
//!
//! The overview is polled; the figure reads every key's samples of the
//! period, so it is computed once per 5-minute slot and kept until the
//! next (the open slot's traffic in it is as of the first request).

use crate::auth::Caller;
use crate::decode::Query;
use crate::problem::Problem;
use crate::read::snapshot;
use crate::AppState;
use accounting::Slot;
use axum::extract::State;
use axum::Json;
use billing::{assess, UpstreamMethod, UpstreamRule};
use engine::transit_run::TransitView;
use query::transit::{TransitReport, UpstreamReport};
use serde::{Deserialize, Serialize};
use std::sync::{Arc, Mutex};
use utoipa::{IntoParams, ToSchema};

/// `/transit`'s parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TransitParams {
    /// The period, `YYYY-MM`, in each upstream's own cycle (default: the
    /// one running now).
    pub period: Option<String>,
}

/// `GET /api/v1/transit`: every upstream of the policy's `[transit]`.
#[derive(Debug, Serialize, ToSchema)]
pub struct TransitAnswer {
    /// When the figures were computed.
    #[schema(value_type = String)]
    pub now: jiff::Timestamp,
    /// One per upstream, in the policy's order: `name`, `uplink`,
    /// `realms`, `rule`, `margin_percent`, `cycle`, `period`, `running`,
    /// `coverage` and `status` (`commit`, `target`, `elapsed`,
    /// `expected`, `rank`, `budget`, `spent`, `left`, `projected_spent`,
    /// `so_far`, `projected`, `floor`, `runs_out_at`, `exact_budget`).
    #[schema(value_type = Vec<Object>)]
    pub upstreams: Vec<UpstreamReport>,
    /// The transit guard (absent when it is off and has no step): `mode`
    /// (`off`, `dry-run`, `on`), `steps_in_force` (each with `upstream`,
    /// `applied`, `since`, `step` and its fields), `guards`,
    /// `relaxed_until`, `actions` (the last 50: `at`, `tighten`, `step`,
    /// `dry_run`, `reason`), `tightened`, `relaxed`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub guard: Option<TransitView>,
}

impl TransitAnswer {
    /// The report with the guard's view (left out when the guard is off
    /// and holds nothing).
    pub fn new(r: TransitReport, guard: Option<TransitView>) -> Self {
        TransitAnswer {
            now: r.now,
            upstreams: r.upstreams,
            guard: guard
                .filter(|g| g.mode != policy::TransitGuardMode::Off || !g.state.guards.is_empty()),
        }
    }
}

/// The site's own percentile against each upstream's commit: the burst
/// budget spent and left, the 95th so far and the projection.
#[utoipa::path(get, path = "/api/v1/transit", tag = "site", params(TransitParams),
    responses((status = 200, body = TransitAnswer), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn report(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<TransitParams>,
) -> Result<Json<TransitAnswer>, Problem> {
    caller.must_see_site()?;
    let snap = snapshot(&st);
    let policy = snap.policy.clone();
    let guard = (*snap.transit).clone();
    let now = jiff::Timestamp::now();
    st.stores
        .with(move |store| {
            let r = query::transit::report(&policy, store, now, p.period.as_deref())?;
            Ok(TransitAnswer::new(r, Some(guard)))
        })
        .await
        .map(Json)
}

/// The overview's figure: the site's percentile so far this period, per
/// direction, against the first upstream's commit.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SitePercentile {
    /// `95th` (the upstream's percentile).
    pub label: String,
    /// The upstream whose commit and rule these are.
    pub upstream: String,
    /// The upstream's period, `YYYY-MM`.
    pub period: String,
    /// The percentile of the site's down ("in") so far, bit/s.
    pub down_bps: u64,
    /// The percentile of the site's up ("out") so far, bit/s.
    pub up_bps: u64,
    /// The figure the upstream bills so far (its method), bit/s.
    pub billed_bps: u64,
    /// The commit, bit/s.
    pub commit_bps: u64,
    /// The projected figure at the period's end at the pace so far, bit/s.
    pub projected_bps: u64,
    /// Samples the period allows above the commit.
    pub budget: usize,
    /// Of them, spent.
    pub spent: usize,
    /// Left.
    pub left: usize,
    /// Whether the budget runs out before the period ends at this pace.
    pub at_risk: bool,
    /// Whether the bill is already above the commit.
    pub over: bool,
}

/// Key of the cached figure: the policy it was computed for, and the slot
/// in which it was.
type Cached = (usize, Slot, Option<SitePercentile>);

static CACHE: Mutex<Option<Cached>> = Mutex::new(None);

/// The site's percentile so far against the first upstream of the
/// policy's `[transit]`; `None` when it has none (or the history cannot
/// be read: the overview then shows no figure rather than failing).
pub async fn site_percentile(st: &AppState) -> Option<SitePercentile> {
    let policy = snapshot(st).policy.clone();
    policy.transit.as_ref()?.upstreams.first()?;
    let now = jiff::Timestamp::now();
    let key = (Arc::as_ptr(&policy) as usize, Slot::containing(now));
    {
        let c = CACHE.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, s, v)) = c.as_ref() {
            if (*p, *s) == key {
                return v.clone();
            }
        }
    }
    let figure = st
        .stores
        .with(move |store| Ok(figure(&policy, store, now)))
        .await
        .ok()
        .flatten();
    *CACHE.lock().unwrap_or_else(|e| e.into_inner()) = Some((key.0, key.1, figure.clone()));
    figure
}

fn figure(
    policy: &policy::Policy,
    store: &dyn history::Store,
    now: jiff::Timestamp,
) -> Option<SitePercentile> {
    let u = policy.transit.as_ref()?.upstreams.first()?;
    // One read of the site's series for the billed figure and each
    // direction's.
    let read = query::open::open_samples(store)
        .and_then(|open| query::transit::upstream(policy, u, store, &open, now, None));
    let (r, series) = match read {
        Ok(x) => x,
        Err(e) => {
            tracing::warn!("the site's transit figure for the overview: {e}");
            return None;
        }
    };
    let one = |method| {
        let rule = UpstreamRule { method, ..r.rule };
        assess(&series, r.status.elapsed, &rule, u.commit.value, 0)
            .so_far
            .map_or(0, |v| v.rate.bps())
    };
    let s = &r.status;
    Some(SitePercentile {
        label: format!("{}th", r.rule.percentile.get()),
        upstream: r.name.clone(),
        period: r.period.label.clone(),
        down_bps: one(UpstreamMethod::In),
        up_bps: one(UpstreamMethod::Out),
        billed_bps: s.so_far.map_or(0, |v| v.rate.bps()),
        commit_bps: s.commit.bps(),
        projected_bps: s.projected.map_or(0, |v| v.rate.bps()),
        budget: s.budget,
        spent: s.spent,
        left: s.left,
        at_risk: s.at_risk(),
        over: s.lost(),
    })
}
