//! The site as a whole, for the dashboard's overview and realms pages:
//! what flows now per realm against the uplink's capacity, the busiest
//! tenants, the overage plan, the flow collector's health and recent
//! events ([`summary`]), the site's traffic over a range as columns
//! ([`usage`], from `query::site`), and the plans an admin may move a
//! tenant to ([`plans`]). Site-wide: a tenant token gets 403.

use crate::auth::Caller;
use crate::decode::Query;
use crate::problem::Problem;
use crate::read::{class_rates, snapshot, RangeParams};
use crate::AppState;
use axum::extract::State;
use axum::Json;
use query::range::RangeSpec;
use query::series::Resolution;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::{IntoParams, ToSchema};

/// Both directions, bit/s.
#[derive(Clone, Copy, Debug, Default, Serialize, ToSchema)]
pub struct Rates {
    /// Toward the tenants.
    pub down_bps: f64,
    /// From the tenants.
    pub up_bps: f64,
}

/// One realm now.
#[derive(Debug, Serialize, ToSchema)]
pub struct RealmNow {
    /// The realm's id.
    pub realm: u16,
    /// Its name.
    pub realm_name: String,
    /// Toward the tenants, bit/s.
    pub down_bps: f64,
    /// From the tenants, bit/s.
    pub up_bps: f64,
}

/// The site now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Now {
    /// Every tenant together, toward them, bit/s.
    pub down_bps: f64,
    /// From them, bit/s.
    pub up_bps: f64,
    /// Seconds between the two readings the rates come from.
    pub seconds: f64,
    /// Per realm.
    pub realms: Vec<RealmNow>,
}

/// A busy tenant now.
#[derive(Debug, Serialize, ToSchema)]
pub struct Busy {
    /// Its id.
    pub tenant: u32,
    /// Its name.
    pub name: String,
    /// Toward it, bit/s, every realm.
    pub down_bps: f64,
    /// From it, bit/s.
    pub up_bps: f64,
}

/// A tenant in the overage plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct InOverage {
    /// Its id.
    pub tenant: u32,
    /// Its name.
    pub name: String,
    /// The plan it returns to.
    pub from_plan: String,
    /// The overage plan.
    pub to_plan: String,
    /// When it moved.
    #[schema(value_type = String)]
    pub moved_at: jiff::Timestamp,
    /// Why, as billing decided it.
    pub why: String,
}

/// The flow collector, in brief.
#[derive(Debug, Serialize, ToSchema)]
pub struct FlowHealth {
    /// Whether it runs.
    pub running: bool,
    /// Running, and its status file is fresh.
    pub healthy: bool,
    /// Exporters seen.
    pub exporters: usize,
    /// Records decoded since it started.
    pub records: u64,
    /// Malformed datagrams.
    pub malformed: u64,
    /// Datagrams the kernel dropped.
    pub drops: u64,
    /// Jumps of the exporters' sequence numbers.
    pub sequence_gaps: u64,
}

/// `GET /api/v1/site`.
#[derive(Debug, Serialize, ToSchema)]
pub struct SiteAnswer {
    /// Now.
    #[schema(value_type = String)]
    pub at: jiff::Timestamp,
    /// The billing zone.
    pub zone: String,
    /// The current billing period.
    pub period: String,
    /// Tenants in the policy.
    pub tenants: usize,
    /// What the uplink carries, bit/s.
    pub capacity: Rates,
    /// Rates now.
    pub now: Now,
    /// The ten busiest tenants now.
    pub top: Vec<Busy>,
    /// Tenants in the overage plan.
    pub overage: Vec<InOverage>,
    /// The flow collector, if one runs here.
    pub flows: Option<FlowHealth>,
    /// Recent events (overage moves, repaired drift, reloads…), oldest
    /// first.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<engine::io::Event>,
    /// The site's percentile so far this period against the first
    /// upstream's commit, when the policy has `[transit]`.
    pub percentile: Option<crate::transit::SitePercentile>,
}

fn flow_health(v: &serde_json::Value) -> FlowHealth {
    let sum = |list: &str, key: &str| -> u64 {
        v[list]
            .as_array()
            .map_or(0, |a| a.iter().filter_map(|e| e[key].as_u64()).sum())
    };
    let running = v["running"].as_bool() == Some(true);
    let fresh = v["updated"]
        .as_str()
        .and_then(|u| u.parse::<jiff::Timestamp>().ok())
        .is_some_and(|u| jiff::Timestamp::now().duration_since(u).as_secs_f64() < 120.0);
    FlowHealth {
        running,
        healthy: running && fresh,
        exporters: v["exporters"].as_array().map_or(0, Vec::len),
        records: sum("exporters", "flows"),
        malformed: sum("exporters", "malformed"),
        drops: sum("sockets", "kernel_drops"),
        sequence_gaps: sum("exporters", "sequence_gaps"),
    }
}

/// The site now: rates per realm against the capacity, the busiest
/// tenants, the overage plan, the flow collector, recent events.
#[utoipa::path(get, path = "/api/v1/site", tag = "site",
    responses((status = 200, body = SiteAnswer), (status = 403, body = Problem)))]
pub async fn summary(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<SiteAnswer>, Problem> {
    caller.must_see_site()?;
    let s = snapshot(&st);
    let p = &s.policy;
    let (prev, cur, secs) = class_rates(&s);
    let flows = crate::files::flow_rates(&st.files);
    let rows = query::rates::top(Some(p), &s.feeds, &prev, &cur, secs, &flows, usize::MAX);
    let mut realms: BTreeMap<u16, RealmNow> = BTreeMap::new();
    let mut tenants: BTreeMap<u32, Busy> = BTreeMap::new();
    for r in &rows {
        let e = realms.entry(r.realm).or_insert_with(|| RealmNow {
            realm: r.realm,
            realm_name: r.realm_name.clone(),
            down_bps: 0.0,
            up_bps: 0.0,
        });
        e.down_bps += r.down_bps;
        e.up_bps += r.up_bps;
        let t = tenants.entry(r.tenant).or_insert_with(|| Busy {
            tenant: r.tenant,
            name: r.name.clone(),
            down_bps: 0.0,
            up_bps: 0.0,
        });
        t.down_bps += r.down_bps;
        t.up_bps += r.up_bps;
    }
    let mut top: Vec<Busy> = tenants
        .into_values()
        .filter(|b| b.down_bps + b.up_bps > 0.0)
        .collect();
    top.sort_by(|a, b| {
        (b.down_bps + b.up_bps)
            .total_cmp(&(a.down_bps + a.up_bps))
            .then(a.tenant.cmp(&b.tenant))
    });
    top.truncate(10);
    let period = s
        .settings
        .cycle
        .period_containing(s.now)
        .map(|p| p.label)
        .unwrap_or_default();
    Ok(Json(SiteAnswer {
        at: s.now,
        zone: s.settings.cycle.zone_name().to_string(),
        period,
        tenants: p.tenants.len(),
        capacity: Rates {
            down_bps: p.site.capacity.down.bps() as f64,
            up_bps: p.site.capacity.up.bps() as f64,
        },
        now: Now {
            down_bps: realms.values().map(|r| r.down_bps).sum(),
            up_bps: realms.values().map(|r| r.up_bps).sum(),
            seconds: secs,
            realms: realms.into_values().collect(),
        },
        top,
        overage: s
            .records
            .moves
            .iter()
            .map(|m| InOverage {
                tenant: m.tenant,
                name: m.name.clone(),
                from_plan: m.from_plan.clone(),
                to_plan: m.to_plan.clone(),
                moved_at: m.moved_at,
                why: m.decision.to_string(),
            })
            .collect(),
        flows: crate::files::flows_status(&st.files)
            .ok()
            .map(|v| flow_health(&v)),
        events: s.events.iter().rev().take(50).rev().cloned().collect(),
        percentile: crate::transit::site_percentile(&st).await,
    }))
}

/// `/site/usage`'s parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct SiteUsageParams {
    /// A billing period, `YYYY-MM` (default: the current one).
    pub period: Option<String>,
    /// From this local date, `YYYY-MM-DD`, until now.
    pub since: Option<String>,
    /// `5m`, `1h` or `1d` (default: 5 minutes up to two days, days beyond).
    pub resolution: Option<String>,
}

/// The site's traffic.
#[derive(Serialize, ToSchema)]
pub struct SiteUsage {
    /// The current billing period.
    pub period: String,
    /// The series: per realm × direction, every tenant added up.
    #[serde(flatten)]
    #[schema(value_type = Object)]
    pub series: query::site::SiteSeries,
}

/// Resolves a range and computes the site's series (shared with the
/// site's graph).
pub(crate) async fn site_series(
    st: &AppState,
    spec: RangeSpec,
    resolution: Option<Resolution>,
) -> Result<SiteUsage, Problem> {
    let s = snapshot(st);
    let settings = s.settings.clone();
    let policy = s.policy.clone();
    let now = jiff::Timestamp::now();
    let stores = st.stores.clone();
    st.stores
        .with(move |store| {
            let range = query::range::resolve(&settings, &spec, now)?;
            let resolution = resolution.unwrap_or_else(|| query::site::resolution_for(&range));
            let mut days = stores.site_days.lock().unwrap_or_else(|e| e.into_inner());
            let settled = now - query::site::SETTLED_AFTER;
            let series = query::site::series_cached(
                store,
                Some(&policy),
                &range,
                resolution,
                Some((&mut days, settled)),
            )?;
            let period = settings
                .cycle
                .period_containing(now)
                .map(|p| p.label)
                .unwrap_or_default();
            Ok(SiteUsage { period, series })
        })
        .await
}

/// Reads the current period's settled days into the readers' day cache,
/// so that the first overview after a start is as quick as the next ones
/// (at 10,000 tenants a month of daily rows takes about 1.5 s to read;
/// the daemon does it once, in the background, while nobody waits).
pub async fn warm(st: AppState) {
    let started = std::time::Instant::now();
    match site_series(&st, RangeSpec::Current, None).await {
        Ok(_) => {
            let days = st
                .stores
                .site_days
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .len();
            tracing::info!(
                days,
                ms = started.elapsed().as_millis() as u64,
                "read the site's settled days for the dashboard"
            );
        }
        Err(e) => tracing::warn!("could not read the site's days ahead: {}", e.detail),
    }
}

/// Every tenant's traffic together, per realm and direction, as columns.
#[utoipa::path(get, path = "/api/v1/site/usage", tag = "site", params(SiteUsageParams),
    responses((status = 200, body = SiteUsage), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn usage(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<SiteUsageParams>,
) -> Result<Json<SiteUsage>, Problem> {
    caller.must_see_site()?;
    let spec = RangeParams {
        period: p.period,
        since: p.since,
    }
    .spec()?;
    let resolution = p
        .resolution
        .as_deref()
        .map(str::parse::<Resolution>)
        .transpose()?;
    site_series(&st, spec, resolution).await.map(Json)
}

/// A plan.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlanAnswer {
    /// Its name.
    pub name: String,
    /// Toward the tenant: rate and ceil.
    pub down: [String; 2],
    /// From the tenant: rate and ceil.
    pub up: [String; 2],
}

/// The plans.
#[derive(Debug, Serialize, ToSchema)]
pub struct PlansAnswer {
    /// Every plan, by name.
    pub plans: Vec<PlanAnswer>,
}

/// The plans a tenant can be moved to.
#[utoipa::path(get, path = "/api/v1/plans", tag = "site",
    responses((status = 200, body = PlansAnswer), (status = 403, body = Problem)))]
pub async fn plans(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<PlansAnswer>, Problem> {
    caller.must_see_site()?;
    let s = snapshot(&st);
    Ok(Json(PlansAnswer {
        plans: s
            .policy
            .plans
            .iter()
            .map(|p| PlanAnswer {
                name: p.name.clone(),
                down: [p.shape.down.rate.to_string(), p.shape.down.ceil.to_string()],
                up: [p.shape.up.rate.to_string(), p.shape.up.ceil.to_string()],
            })
            .collect(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flow_health_adds_up_exporters_and_sockets() {
        let v = serde_json::json!({
            "running": true,
            "updated": jiff::Timestamp::now().to_string(),
            "sockets": [{"kernel_drops": 3}, {"kernel_drops": 4}],
            "exporters": [
                {"flows": 10, "malformed": 1, "sequence_gaps": 2},
                {"flows": 5, "malformed": 0, "sequence_gaps": 1}
            ]
        });
        let h = flow_health(&v);
        assert_eq!(
            (
                h.exporters,
                h.records,
                h.malformed,
                h.drops,
                h.sequence_gaps
            ),
            (2, 15, 1, 7, 3)
        );
        assert!(h.healthy);
        let stale = serde_json::json!({"running": true, "updated": "2020-01-01T00:00:00Z"});
        assert!(!flow_health(&stale).healthy);
    }
}
