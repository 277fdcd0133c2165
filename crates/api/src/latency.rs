//! Latency's endpoints and series: `GET /api/v1/latency` (queueing delay
//! per class, probes, watched interfaces and the alarms raised now, from
//! the engine's snapshot), `GET /api/v1/latency/history` (the minutes
//! stored in the history, through `query::latency`) and the
//! `tollgate_latency_*` Prometheus series.
//!
//! [`LatencyStatus`] is also what the daemon writes to
//! `latency-status.json` for `tollgate latency`, so the command line and
//! the API show the same thing in the same shape.

use crate::auth::Caller;
use crate::decode::Query;
use crate::problem::Problem;
use crate::AppState;
use axum::extract::State;
use engine::snapshot::Snapshot;
use jiff::Timestamp;
use latency::View;
use prometheus_client::encoding::DescriptorEncoder;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// Latency as of one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LatencyStatus {
    /// When.
    #[schema(value_type = String)]
    pub as_of: Timestamp,
    /// The figures: `sampled_ms` (the last queue reading, on the daemon's
    /// uptime clock), `classes` (each leaf: `delay_ms` = backlog ÷ ceil,
    /// `delay_at_rate_ms`, backlog, drops, overlimits, `sent_bps`,
    /// `at_ceil`, `time_at_ceil_ms`), `probes` (RTT `min`/`p50`/`mean`/
    /// `max`/`jitter`/`baseline` in ms, `loss_percent`, over the last
    /// minute), `links`, `alarms` (raised now), `raised_total`,
    /// `readings`, and with `tcp_rtt = true` the passive TCP RTT per
    /// tenant × realm, `tcp_rtt` (each: `current` minute and `last`
    /// closed one, with `up` (the far side) and `down` (the tenant's
    /// side) `samples`, `min_ms`, `p50_ms`, `p95_ms`, `p99_ms`, `max_ms`,
    /// `rtt_p50_ms` (their medians' sum) and retransmissions), and
    /// `rtt_events`.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub view: View,
    /// Classes in the last reading (`classes` may hold fewer: see
    /// [`LatencyStatus::busy_only`]).
    #[serde(default)]
    pub classes_read: usize,
    /// Tenant × realm pairs with TCP round trips (`tcp_rtt` may hold
    /// fewer: see [`LatencyStatus::busy_only`]).
    #[serde(default)]
    pub rtt_entries: usize,
}

/// The most tenant × realm pairs of TCP RTT in the status file.
pub const BUSY_RTT: usize = 200;

impl LatencyStatus {
    /// The status of `view` at `now`, for one tenant (its classes and
    /// alarms only; no probes or interfaces, which are the site's) or for
    /// the site.
    pub fn from_view(view: &View, now: Timestamp, tenant: Option<u32>) -> LatencyStatus {
        let mut view = view.clone();
        if let Some(t) = tenant {
            view.classes = std::sync::Arc::new(
                view.classes
                    .iter()
                    .filter(|c| c.tenant == Some(t))
                    .cloned()
                    .collect(),
            );
            view.alarms.retain(|a| a.tenant == Some(t));
            view.tcp_rtt.retain(|r| r.tenant == t);
            view.probes.clear();
            view.links.clear();
        }
        LatencyStatus {
            as_of: now,
            classes_read: view.classes.len(),
            rtt_entries: view.tcp_rtt.len(),
            view,
        }
    }

    /// Only the classes worth a look: a queue, drops or held at the ceil
    /// at the last reading. What the daemon writes to
    /// `latency-status.json` once a second: at 10,000 classes the whole
    /// list is megabytes, and the API has it.
    #[must_use]
    pub fn busy_only(mut self) -> LatencyStatus {
        let busy = |f: &latency::Figures| f.backlog_packets > 0 || f.drops > 0 || f.at_ceil;
        self.view.classes = std::sync::Arc::new(
            self.view
                .classes
                .iter()
                .filter(|c| busy(&c.figures))
                .cloned()
                .collect(),
        );
        // The slowest pairs first (the larger half's p95 this minute,
        // else last minute's), at most BUSY_RTT of them.
        let worst = |r: &latency::RttView| {
            let f = |m: &latency::rtt::MinuteFigures| m.up.p95.max(m.down.p95);
            f(&r.current).or_else(|| r.last.as_ref().and_then(f))
        };
        self.view.tcp_rtt.sort_by(|a, b| {
            worst(b)
                .cmp(&worst(a))
                .then((a.tenant, a.realm).cmp(&(b.tenant, b.realm)))
        });
        self.view.tcp_rtt.truncate(BUSY_RTT);
        self
    }
}

/// `GET /api/v1/latency`'s parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LatencyParams {
    /// Only this tenant's classes and alarms (a tenant token always
    /// gets only its own).
    pub tenant: Option<u32>,
}

/// Queueing delay, probes and latency alarms.
#[utoipa::path(get, path = "/api/v1/latency", tag = "latency", params(LatencyParams),
    responses((status = 200, body = LatencyStatus), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn status(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<LatencyParams>,
) -> Result<axum::Json<LatencyStatus>, Problem> {
    let tenant = scoped_tenant(&caller, p.tenant)?;
    let s = st.snapshot.borrow().clone();
    let Some(v) = &s.latency else {
        return Err(Problem::not_found(
            "the policy has no [latency] section; latency is not measured",
        ));
    };
    Ok(axum::Json(LatencyStatus::from_view(v, s.now, tenant)))
}

/// The tenant a caller asks about: any (or none: the site) for a
/// site-wide token, its own for a tenant token.
fn scoped_tenant(caller: &Caller, asked: Option<u32>) -> Result<Option<u32>, Problem> {
    Ok(match (caller.scope.site_wide(), asked) {
        (true, t) => t,
        (false, Some(t)) if caller.scope.may_see(t) => Some(t),
        (false, None) => match caller.scope {
            crate::tokens::Scope::Tenant(t) => Some(t),
            _ => {
                return Err(caller
                    .must_see_site()
                    .err()
                    .unwrap_or_else(|| Problem::forbidden("not allowed")))
            }
        },
        (false, Some(t)) => {
            return Err(Problem::forbidden(format!(
                "token `{}` may not see tenant {t}",
                caller.name
            )))
        }
    })
}

/// `GET /api/v1/latency/history`'s parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct HistoryParams {
    /// Only this tenant's TCP RTT and queue minutes (a tenant token always
    /// gets only its own); without it, every tenant's and the probes.
    pub tenant: Option<u32>,
    /// From: a duration back from now (`2h`, `30m`) or an RFC 3339 time
    /// (default `1h`).
    pub since: Option<String>,
}

/// The stored latency minutes: TCP RTT per tenant × realm, probes, busy
/// queues (the shape of `tollgate latency --since … --json`).
#[utoipa::path(get, path = "/api/v1/latency/history", tag = "latency", params(HistoryParams),
    responses((status = 200, description = "`{from, to, tenant, tcp_rtt: [...], probes: [...], queues: [...], truncated}`; each row has `start` and `minute`, durations in ms"),
        (status = 400, body = Problem), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn history(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<HistoryParams>,
) -> Result<axum::Json<query::latency::LatencyHistory>, Problem> {
    let tenant = scoped_tenant(&caller, p.tenant)?;
    let now = Timestamp::now();
    let from = query::latency::since(p.since.as_deref().unwrap_or("1h"), now)?;
    let policy = st.snapshot.borrow().policy.clone();
    st.stores
        .with(move |store| {
            Ok(axum::Json(query::latency::history(
                store,
                Some(&policy),
                tenant,
                from,
                now,
            )?))
        })
        .await
}

/// The `tollgate_latency_*` series.
pub(crate) fn metrics(e: &mut DescriptorEncoder, s: &Snapshot) -> std::fmt::Result {
    let Some(v) = &s.latency else {
        return Ok(());
    };
    let mut by_kind: Vec<(String, u64)> = [
        "queue_delay",
        "probe_rtt",
        "probe_loss",
        "idle",
        "tenant_rtt",
    ]
    .iter()
    .map(|k| (k.to_string(), 0))
    .collect();
    for a in &v.alarms {
        if let Some(row) = by_kind.iter_mut().find(|(k, _)| k == a.kind.as_str()) {
            row.1 += 1;
        }
    }
    crate::metrics::labelled_gauge(
        e,
        "tollgate_latency_alarms",
        "Latency alarms raised now, by kind.",
        "kind",
        &by_kind,
    )?;
    crate::metrics::counter(
        e,
        "tollgate_latency_alarms_raised",
        "Latency alarms raised since the daemon started.",
        v.raised_total,
    )?;
    crate::metrics::counter(
        e,
        "tollgate_latency_rows_written",
        "Latency minutes' rows (TCP RTT, probes, busy queues) stored in the history.",
        s.counts.latency_rows_written,
    )?;
    crate::metrics::counter(
        e,
        "tollgate_latency_rows_refused",
        "Latency minutes' rows the history refused as absurd (each logged as latency_refused).",
        s.counts.latency_rows_refused,
    )?;
    crate::metrics::counter(
        e,
        "tollgate_latency_readings",
        "Readings of every class's queue since the daemon started.",
        v.readings,
    )?;
    crate::metrics::counter(
        e,
        "tollgate_latency_tcp_rtt_events",
        "Passive TCP RTT samples and retransmissions received from the eBPF classifier since the daemon started.",
        v.rtt_events,
    )?;
    // The worst tenant × realm of the last closed minute: one series,
    // whatever the number of tenants (per tenant, see the API).
    let worst = v
        .tcp_rtt
        .iter()
        .filter_map(|r| r.last.as_ref())
        .filter_map(|m| m.up.p95.max(m.down.p95))
        .max();
    crate::metrics::gauge(
        e,
        "tollgate_latency_tcp_rtt_p95_max_seconds",
        "The largest TCP RTT p95 (of either half) of any tenant and realm over the last closed minute.",
        worst.map_or(f64::NAN, |d| d.as_secs_f64()),
    )?;
    let max = v
        .classes
        .iter()
        .map(|c| c.figures.delay)
        .max()
        .unwrap_or_default();
    crate::metrics::gauge(
        e,
        "tollgate_latency_queue_delay_max_seconds",
        "The longest queueing delay of any class (backlog over ceil) at the last reading.",
        max.as_secs_f64(),
    )?;
    let count = |f: &dyn Fn(&latency::Figures) -> bool| {
        v.classes.iter().filter(|c| f(&c.figures)).count() as f64
    };
    crate::metrics::gauge(
        e,
        "tollgate_latency_classes_backlogged",
        "Classes with packets queued at the last reading.",
        count(&|f| f.backlog_packets > 0),
    )?;
    crate::metrics::gauge(
        e,
        "tollgate_latency_classes_at_ceil",
        "Classes held at their ceil over the last interval.",
        count(&|f| f.at_ceil),
    )?;
    let ms = |d: Option<std::time::Duration>| d.map_or(f64::NAN, |d| d.as_secs_f64());
    for (name, help, get) in [
        (
            "tollgate_latency_probe_rtt_seconds",
            "A probe's median RTT over the last minute.",
            &(|f: &latency::ProbeFigures| ms(f.p50)) as &dyn Fn(&latency::ProbeFigures) -> f64,
        ),
        (
            "tollgate_latency_probe_jitter_seconds",
            "A probe's jitter over the last minute (mean difference of consecutive RTTs).",
            &|f: &latency::ProbeFigures| ms(f.jitter),
        ),
        (
            "tollgate_latency_probe_loss_ratio",
            "A probe's unanswered share over the last minute.",
            &|f: &latency::ProbeFigures| f.loss_percent / 100.0,
        ),
    ] {
        let mut family = e.encode_descriptor(
            name,
            help,
            None,
            prometheus_client::metrics::MetricType::Gauge,
        )?;
        for p in &v.probes {
            let labels = [("probe", p.name.as_str())];
            let g = prometheus_client::metrics::gauge::ConstGauge::new(get(&p.figures));
            prometheus_client::encoding::EncodeMetric::encode(&g, family.encode_family(&labels)?)?;
        }
    }
    Ok(())
}
