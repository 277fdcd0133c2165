//! The reads: every answer comes from the query layer (the same functions
//! the command line calls) over the history, or from the engine's
//! snapshot; no read asks the engine anything.

use crate::auth::Caller;
use crate::decode::Query;
use crate::problem::Problem;
use crate::AppState;
use axum::extract::{Path, State};
use axum::Json;
use engine::snapshot::Snapshot;
use history::Tenants;
use net_types::TenantId;
use policy::{Policy, Tenant};
use query::range::RangeSpec;
use query::series::Resolution;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

/// The tenant a path names (by id or name), if the caller may see it;
/// otherwise 404, the same answer as for a tenant that does not exist.
pub(crate) fn tenant<'a>(
    policy: &'a Policy,
    caller: &Caller,
    who: &str,
) -> Result<&'a Tenant, Problem> {
    // A number is an id (a numeric name is refused unless it is the
    // tenant's own id), found by binary search; anything else a name.
    match who.parse::<u32>() {
        Ok(id) => policy.tenant(net_types::TenantId(id)),
        Err(_) => policy.tenants.iter().find(|t| t.name == who),
    }
    .filter(|t| caller.scope.may_see(t.id.0))
    .ok_or_else(|| Problem::not_found(format!("no tenant `{who}`")).field("id"))
}

pub(crate) fn snapshot(s: &AppState) -> Arc<Snapshot> {
    s.snapshot.borrow().clone()
}

/// The open slots as of the snapshot's committed batch: decoded from the
/// history once per batch (the accounting state holds a sample per key,
/// megabytes at 10,000 tenants), then shared by every request.
pub(crate) fn open_samples(
    cache: &crate::OpenCache,
    committed: u64,
    store: &dyn history::Store,
) -> Result<Arc<Vec<accounting::OpenSample>>, Problem> {
    if let Some((seq, open)) = cache.lock().unwrap_or_else(|e| e.into_inner()).as_ref() {
        if *seq == committed {
            return Ok(open.clone());
        }
    }
    let open = Arc::new(query::open::open_samples(store)?);
    *cache.lock().unwrap_or_else(|e| e.into_inner()) = Some((committed, open.clone()));
    Ok(open)
}

/// A stretch of time: a billing period, or a local date until now.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct RangeParams {
    /// A billing period, `YYYY-MM` (default: the current one).
    pub period: Option<String>,
    /// From this local date, `YYYY-MM-DD`, until now.
    pub since: Option<String>,
}

impl RangeParams {
    pub(crate) fn spec(&self) -> Result<RangeSpec, Problem> {
        if self.period.is_some() && self.since.is_some() {
            return Err(Problem::invalid(
                Some("since"),
                "give `period` or `since`, not both",
            ));
        }
        Ok(RangeSpec::new(
            self.period.as_deref(),
            self.since.as_deref(),
        ))
    }
}

/// Live rates per class, per tenant × realm × direction, from the
/// snapshot's last two readings.
pub(crate) fn class_rates(
    s: &Snapshot,
) -> (
    HashMap<plan::ClassKey, u64>,
    HashMap<plan::ClassKey, u64>,
    f64,
) {
    match &s.rates {
        Some(((t0, a), (t1, b))) => {
            let secs = t1.duration_since(*t0).as_secs_f64();
            let m =
                |r: &Vec<(plan::ClassKey, u64, u64)>| r.iter().map(|(k, b, _)| (*k, *b)).collect();
            (m(a), m(b), secs)
        }
        None => (HashMap::new(), HashMap::new(), 1.0),
    }
}

/// `GET /api/v1/status`'s answer.
#[derive(Serialize, ToSchema)]
pub struct StatusAnswer {
    /// When the daemon started.
    #[schema(value_type = String)]
    pub started: jiff::Timestamp,
    /// Now.
    #[schema(value_type = String)]
    pub now: jiff::Timestamp,
    /// Tenants, plans and realms in the running policy.
    pub tenants: usize,
    /// Plans.
    pub plans: usize,
    /// Realms.
    pub realms: usize,
    /// Counters since start (reads, reconcile rounds, changes, samples…).
    #[schema(value_type = Object)]
    pub counts: engine::snapshot::Counts,
    /// Seconds since the last committed read.
    pub accounting_lag_seconds: Option<f64>,
    /// Counters the accountant tracks.
    pub counters_tracked: usize,
    /// Samples closed and not committed yet.
    pub pending_samples: usize,
    /// The last reconcile round.
    #[schema(value_type = Object)]
    pub last_round: Option<engine::io::Applied>,
    /// The tenants' classes with their current rates, as `tollgate
    /// status` shows them.
    #[schema(value_type = Vec<Object>)]
    pub classes: Vec<query::rates::ClassRow>,
    /// Tenants in the overage plan.
    pub overage: usize,
    /// Why the routes table cannot be read, while it cannot.
    pub routes_error: Option<String>,
    /// Recent events, newest last.
    #[schema(value_type = Vec<Object>)]
    pub events: Vec<engine::io::Event>,
}

/// The daemon: counters, the last round, the tenants' classes and rates,
/// recent events.
#[utoipa::path(get, path = "/api/v1/status", tag = "site",
    responses((status = 200, body = StatusAnswer), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn status(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<StatusAnswer>, Problem> {
    caller.must_see_site()?;
    let s = snapshot(&st);
    let (prev, cur, secs) = class_rates(&s);
    let classes = match &s.compiled {
        Some(c) => {
            let present = cur.keys().copied().collect();
            query::rates::classes(&s.policy, c, &present, &prev, &cur, secs)
        }
        None => Vec::new(),
    };
    Ok(Json(StatusAnswer {
        started: s.started,
        now: s.now,
        tenants: s.policy.tenants.len(),
        plans: s.policy.plans.len(),
        realms: s.policy.realms.list.len(),
        accounting_lag_seconds: s
            .counts
            .last_commit
            .map(|t| jiff::Timestamp::now().duration_since(t).as_secs_f64()),
        counts: s.counts.clone(),
        counters_tracked: s.counters_tracked,
        pending_samples: s.pending_samples,
        last_round: s.last_apply.clone(),
        classes,
        overage: s.records.moves.len(),
        routes_error: s.routes_error.clone(),
        events: s.events.iter().rev().take(50).rev().cloned().collect(),
    }))
}

/// One tenant in a list.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct TenantSummary {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its plan.
    pub plan: String,
    /// Its parent.
    pub parent: Option<String>,
    /// Toward the tenant now, bit/s.
    pub down_bps: f64,
    /// From the tenant now, bit/s.
    pub up_bps: f64,
    /// Bytes in the range (`period` or `since`, default this period),
    /// for the rows of the page.
    #[schema(value_type = Option<String>)]
    pub period_bytes: Option<u128>,
    /// The committed rate, bit/s.
    pub commit_bps: Option<u64>,
}

/// A page of tenants.
#[derive(Serialize, ToSchema)]
pub struct TenantPage {
    /// Tenants matching the filter.
    pub total: usize,
    /// Where this page starts.
    pub offset: usize,
    /// This page.
    pub tenants: Vec<TenantSummary>,
}

/// `GET /api/v1/tenants`' parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only tenants whose name or id contains this.
    pub q: Option<String>,
    /// Only tenants on this plan.
    pub plan: Option<String>,
    /// Only tenants under this parent.
    pub parent: Option<String>,
    /// `id` (default), `name`, `rate` (current, both directions) or
    /// `volume` (this period's bytes).
    pub sort: Option<String>,
    /// `asc` (default for id and name) or `desc` (default for rate and
    /// volume).
    pub order: Option<String>,
    /// The first row (default 0).
    pub offset: Option<usize>,
    /// At most this many rows (default 100, at most 1000).
    pub limit: Option<usize>,
    /// The billing period whose volume is shown and sorted by, `YYYY-MM`
    /// (default: the current one).
    pub period: Option<String>,
    /// Or the volume since this local date, `YYYY-MM-DD`.
    pub since: Option<String>,
}

/// Current rates per tenant, both directions.
fn tenant_rates(s: &Snapshot) -> HashMap<u32, (f64, f64)> {
    let (prev, cur, secs) = class_rates(s);
    let mut out: HashMap<u32, (f64, f64)> = HashMap::new();
    for (class, key) in s.feeds.iter() {
        let (Some(a), Some(b)) = (prev.get(class), cur.get(class)) else {
            continue;
        };
        let bps = b.saturating_sub(*a) as f64 * 8.0 / secs.max(1e-3);
        let e = out.entry(key.tenant.0).or_default();
        match key.direction {
            accounting::Direction::Down => e.0 += bps,
            accounting::Direction::Up => e.1 += bps,
        }
    }
    out
}

/// Tenants: filter, sort and paginate.
#[utoipa::path(get, path = "/api/v1/tenants", tag = "tenants", params(ListParams),
    responses((status = 200, body = TenantPage), (status = 422, body = Problem)))]
pub async fn tenants(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<ListParams>,
) -> Result<Json<TenantPage>, Problem> {
    let s = snapshot(&st);
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(Problem::invalid(Some("limit"), "from 1 to 1000"));
    }
    let sort = p.sort.as_deref().unwrap_or("id");
    let desc = match p.order.as_deref() {
        None => matches!(sort, "rate" | "volume"),
        Some("asc") => false,
        Some("desc") => true,
        Some(o) => {
            return Err(Problem::invalid(
                Some("order"),
                format!("`{o}`: use asc or desc"),
            ))
        }
    };
    let spec = RangeParams {
        period: p.period.clone(),
        since: p.since.clone(),
    }
    .spec()?;
    let rates = tenant_rates(&s);
    let mut rows: Vec<TenantSummary> = s
        .policy
        .tenants
        .iter()
        .filter(|t| caller.scope.may_see(t.id.0))
        .filter(|t| {
            p.q.as_deref()
                .is_none_or(|q| t.name.contains(q) || t.id.0.to_string().contains(q))
        })
        .filter(|t| p.plan.as_deref().is_none_or(|pl| t.plan == pl))
        .filter(|t| {
            p.parent
                .as_deref()
                .is_none_or(|pa| t.parent.as_deref() == Some(pa))
        })
        .map(|t| {
            let (down, up) = rates.get(&t.id.0).copied().unwrap_or_default();
            TenantSummary {
                id: t.id.0,
                name: t.name.clone(),
                plan: t.plan.clone(),
                parent: t.parent.clone(),
                down_bps: down.round(),
                up_bps: up.round(),
                period_bytes: None,
                commit_bps: t.commit.map(net_types::Rate::bps),
            }
        })
        .collect();
    match sort {
        "id" => rows.sort_by_key(|r| r.id),
        "name" => rows.sort_by(|a, b| a.name.cmp(&b.name)),
        "rate" => rows.sort_by(|a, b| {
            (a.down_bps + a.up_bps)
                .total_cmp(&(b.down_bps + b.up_bps))
                .then(a.id.cmp(&b.id))
        }),
        "volume" => {
            let settings = s.settings.clone();
            let now = s.now;
            let (cache, committed) = (st.open.clone(), s.committed_sequence);
            let spec = spec.clone();
            let volumes = st
                .stores
                .with(move |store| {
                    let open = open_samples(&cache, committed, store)?;
                    let range = query::range::resolve(&settings, &spec, now)?;
                    Ok(query::usage::volumes(store, &open, &range, &Tenants::All)?)
                })
                .await?;
            for r in &mut rows {
                r.period_bytes = Some(volumes.get(&r.id).map_or(0, query::usage::Traffic::bytes));
            }
            rows.sort_by_key(|r| (r.period_bytes, r.id));
        }
        other => {
            return Err(Problem::invalid(
                Some("sort"),
                format!("`{other}`: sort by id, name, rate or volume"),
            ))
        }
    }
    if desc {
        rows.reverse();
    }
    let total = rows.len();
    let offset = p.offset.unwrap_or(0);
    let mut tenants: Vec<TenantSummary> = rows.into_iter().skip(offset).take(limit).collect();
    // The page's own volumes, when the sort did not need everyone's.
    if sort != "volume" && !tenants.is_empty() {
        let settings = s.settings.clone();
        let now = s.now;
        let ids = Tenants::Only(tenants.iter().map(|t| TenantId(t.id)).collect());
        let (cache, committed) = (st.open.clone(), s.committed_sequence);
        let volumes = st
            .stores
            .with(move |store| {
                let open = open_samples(&cache, committed, store)?;
                let range = query::range::resolve(&settings, &spec, now)?;
                Ok(query::usage::volumes(store, &open, &range, &ids)?)
            })
            .await?;
        for r in &mut tenants {
            r.period_bytes = Some(volumes.get(&r.id).map_or(0, query::usage::Traffic::bytes));
        }
    }
    Ok(Json(TenantPage {
        total,
        offset,
        tenants,
    }))
}

/// A tenant's shape in one direction: what its plan gives, with its own
/// overrides applied.
#[derive(Serialize, ToSchema)]
pub struct ShapeAnswer {
    /// Guaranteed rate.
    pub rate: String,
    /// Ceiling.
    pub ceil: String,
    /// Per-realm caps: realm name and ceiling.
    pub realms: Vec<RealmCapAnswer>,
}

/// A realm's cap.
#[derive(Serialize, ToSchema)]
pub struct RealmCapAnswer {
    /// The realm.
    pub realm: String,
    /// Its ceiling for this tenant.
    pub ceil: String,
}

/// One realm × direction's current rate.
#[derive(Serialize, ToSchema)]
pub struct RateAnswer {
    /// The realm.
    pub realm: String,
    /// `down` or `up`.
    pub direction: String,
    /// Bit/s now.
    pub bits_per_second: f64,
}

/// A priority band's share.
#[derive(Serialize, ToSchema)]
pub struct BandAnswer {
    /// `interactive`, `normal` or `bulk`.
    pub band: String,
    /// Its share of each tenant × realm rate, in percent.
    pub share_percent: u8,
}

/// A tenant.
#[derive(Serialize, ToSchema)]
pub struct TenantAnswer {
    /// Its id.
    pub id: u32,
    /// Its name.
    pub name: String,
    /// Its plan.
    pub plan: String,
    /// Its parent.
    pub parent: Option<String>,
    /// Its addresses.
    pub prefixes: Vec<String>,
    /// Its interface (hypervisor mode).
    pub interface: Option<String>,
    /// Its committed rate.
    pub commit: Option<String>,
    /// The same, bit/s.
    pub commit_bps: Option<u64>,
    /// The priority bands and their shares of each realm's rate, if the
    /// policy has bands.
    pub bands: Option<Vec<BandAnswer>>,
    /// `kernel` or `flows`.
    pub measured_by: String,
    /// Toward the tenant.
    pub down: ShapeAnswer,
    /// From the tenant.
    pub up: ShapeAnswer,
    /// Current rates per realm and direction.
    pub rates: Vec<RateAnswer>,
    /// Whether the overage automation moved it, and from which plan.
    pub overage_from: Option<String>,
}

/// One tenant: plan, parent, realms, ceilings, current rates.
#[utoipa::path(get, path = "/api/v1/tenants/{id}", tag = "tenants",
    params(("id" = String, Path, description = "The tenant's id or name")),
    responses((status = 200, body = TenantAnswer), (status = 404, body = Problem)))]
pub async fn tenant_one(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<TenantAnswer>, Problem> {
    let s = snapshot(&st);
    let t = tenant(&s.policy, &caller, &id)?;
    let p = &s.policy;
    let plan = p.plan(&t.plan);
    let shape = |dir: policy::Direction| -> ShapeAnswer {
        let (base, over) = match dir {
            policy::Direction::Down => (plan.map(|pl| pl.shape.down), t.overrides.down),
            policy::Direction::Up => (plan.map(|pl| pl.shape.up), t.overrides.up),
        };
        let shape = base.map(|b| over.apply(b));
        ShapeAnswer {
            rate: shape.map_or_else(String::new, |s| s.rate.to_string()),
            ceil: shape.map_or_else(String::new, |s| s.ceil.to_string()),
            realms: plan
                .map(|pl| {
                    pl.realm_caps
                        .iter()
                        .filter(|(_, d, _, _)| *d == dir)
                        .map(|(r, _, cap, _)| RealmCapAnswer {
                            realm: query::names::realm_name(Some(p), r.0),
                            ceil: cap.ceil.to_string(),
                        })
                        .collect()
                })
                .unwrap_or_default(),
        }
    };
    let (prev, cur, secs) = class_rates(&s);
    let mut rates: std::collections::BTreeMap<(u16, &'static str), f64> = Default::default();
    for (class, key) in s.feeds.iter().filter(|(_, k)| k.tenant == t.id) {
        let (Some(a), Some(b)) = (prev.get(class), cur.get(class)) else {
            continue;
        };
        let dir = match key.direction {
            accounting::Direction::Down => "down",
            accounting::Direction::Up => "up",
        };
        *rates.entry((key.realm.0, dir)).or_default() +=
            b.saturating_sub(*a) as f64 * 8.0 / secs.max(1e-3);
    }
    Ok(Json(TenantAnswer {
        id: t.id.0,
        name: t.name.clone(),
        plan: t.plan.clone(),
        parent: t.parent.clone(),
        prefixes: t.prefixes.iter().map(|(p, _)| p.to_string()).collect(),
        interface: t.interface.map(|i| i.as_str().to_string()),
        commit: t.commit.map(|c| c.to_string()),
        commit_bps: t.commit.map(net_types::Rate::bps),
        bands: p.bands.as_ref().map(|b| {
            policy::Band::ALL
                .iter()
                .map(|band| BandAnswer {
                    band: band.as_str().to_string(),
                    share_percent: b.shares[band.index()],
                })
                .collect()
        }),
        measured_by: match t.measured_by {
            policy::Measure::Kernel => "kernel".into(),
            policy::Measure::Flows => "flows".into(),
        },
        down: shape(policy::Direction::Down),
        up: shape(policy::Direction::Up),
        rates: rates
            .into_iter()
            .map(|((r, d), bps)| RateAnswer {
                realm: query::names::realm_name(Some(p), r),
                direction: d.into(),
                bits_per_second: bps.round(),
            })
            .collect(),
        overage_from: s
            .records
            .moves
            .iter()
            .find(|m| m.tenant == t.id.0)
            .map(|m| m.from_plan.clone()),
    }))
}

/// `…/usage`'s parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct UsageParams {
    /// A billing period, `YYYY-MM` (default: the current one).
    pub period: Option<String>,
    /// From this local date, `YYYY-MM-DD`, until now.
    pub since: Option<String>,
    /// `5m`, `1h` or `1d` (default: chosen by the range's length).
    pub resolution: Option<String>,
}

/// A tenant's usage: per realm × direction series (as columns) and totals.
#[derive(Serialize, ToSchema)]
pub struct UsageAnswer {
    /// The series, bytes per bucket.
    #[schema(value_type = Object)]
    pub series: query::series::Series,
    /// Totals per day and realm, as `tollgate usage` shows them.
    #[schema(value_type = Object)]
    pub totals: Option<query::usage::TenantUsage>,
}

/// One tenant's traffic over a period or since a date.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/usage", tag = "tenants",
    params(("id" = String, Path, description = "The tenant's id or name"), UsageParams),
    responses((status = 200, body = UsageAnswer), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn usage(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(p): Query<UsageParams>,
) -> Result<Json<UsageAnswer>, Problem> {
    let s = snapshot(&st);
    let t = tenant(&s.policy, &caller, &id)?.id;
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
    let settings = s.settings.clone();
    let policy = s.policy.clone();
    let (cache, committed) = (st.open.clone(), s.committed_sequence);
    let now = jiff::Timestamp::now();
    st.stores
        .with(move |store| {
            let range = query::range::resolve(&settings, &spec, now)?;
            let resolution = resolution.unwrap_or_else(|| Resolution::for_range(&range));
            let open = open_samples(&cache, committed, store)?;
            let series = query::series::series(store, &open, Some(&policy), t, &range, resolution)?;
            let totals =
                query::usage::usage(store, &open, Some(&policy), &range, &Tenants::Only(vec![t]))?
                    .tenants
                    .pop();
            Ok(Json(UsageAnswer { series, totals }))
        })
        .await
}

/// The bills of a period.
#[derive(Serialize, ToSchema)]
pub struct BillsAnswer {
    /// The period.
    #[schema(value_type = Object)]
    pub period: billing::Period,
    /// Frozen, provisional or closed.
    #[schema(value_type = Object)]
    pub standing: query::bills::Standing,
    /// The bills.
    #[schema(value_type = Vec<Object>)]
    pub bills: Vec<query::bills::Billed>,
}

async fn bills_for(
    st: &AppState,
    period: Option<String>,
    only: Tenants,
) -> Result<BillsAnswer, Problem> {
    let s = snapshot(st);
    let settings = s.settings.clone();
    let policy = s.policy.clone();
    let now = jiff::Timestamp::now();
    let (cache, committed) = (st.open.clone(), s.committed_sequence);
    st.stores
        .with(move |store| {
            let open = open_samples(&cache, committed, store)?;
            let spec = period.map_or(RangeSpec::Current, RangeSpec::Period);
            let p = query::range::period(&settings, &spec, now)?;
            let a = query::bills::bills_of(Some(&policy), &settings, store, &open, &p, now, &only)?;
            Ok(BillsAnswer {
                period: a.bills.period,
                standing: a.standing,
                bills: a.bills.bills,
            })
        })
        .await
}

/// `…/bill`'s and `/bills`' parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct PeriodParams {
    /// A billing period, `YYYY-MM` (default: the current one).
    pub period: Option<String>,
}

/// One tenant's bill for a period.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/bill", tag = "tenants",
    params(("id" = String, Path, description = "The tenant's id or name"), PeriodParams),
    responses((status = 200, body = BillsAnswer), (status = 404, body = Problem)))]
pub async fn bill(
    State(st): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    Query(p): Query<PeriodParams>,
) -> Result<Json<BillsAnswer>, Problem> {
    let t = tenant(&snapshot(&st).policy, &caller, &id)?.id;
    bills_for(&st, p.period, Tenants::Only(vec![t]))
        .await
        .map(Json)
}

/// `/bills`' parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct BillsParams {
    /// A billing period, `YYYY-MM` (default: the current one).
    pub period: Option<String>,
    /// Only these tenants: ids separated by commas (at most 1000), e.g.
    /// the rows of a page. Only their samples are read.
    pub tenants: Option<String>,
}

/// Every tenant's bill for a period (a tenant token sees its own), or
/// those of the tenants listed.
#[utoipa::path(get, path = "/api/v1/bills", tag = "billing", params(BillsParams),
    responses((status = 200, body = BillsAnswer), (status = 422, body = Problem)))]
pub async fn bills(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<BillsParams>,
) -> Result<Json<BillsAnswer>, Problem> {
    let listed = match p.tenants.as_deref() {
        None => None,
        Some(list) => {
            let ids = list
                .split(',')
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.trim().parse::<u32>().map(TenantId).map_err(|_| {
                        Problem::invalid(Some("tenants"), format!("`{s}` is not a tenant id"))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            if ids.len() > 1000 {
                return Err(Problem::invalid(Some("tenants"), "at most 1000 tenants"));
            }
            Some(ids)
        }
    };
    let only = match (caller.scope, listed) {
        (crate::tokens::Scope::Tenant(t), None) => Tenants::Only(vec![TenantId(t)]),
        (crate::tokens::Scope::Tenant(t), Some(ids)) => {
            Tenants::Only(ids.into_iter().filter(|i| i.0 == t).collect())
        }
        (_, None) => Tenants::All,
        (_, Some(ids)) => Tenants::Only(ids),
    };
    bills_for(&st, p.period, only).await.map(Json)
}

/// Traffic per realm, to and from, like rtacct.
#[utoipa::path(get, path = "/api/v1/realms", tag = "site", params(RangeParams),
    responses((status = 200, body = Object), (status = 403, body = Problem)))]
pub async fn realms(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<RangeParams>,
) -> Result<Json<query::usage::RealmsReport>, Problem> {
    caller.must_see_site()?;
    let spec = p.spec()?;
    let s = snapshot(&st);
    let settings = s.settings.clone();
    let policy = s.policy.clone();
    let now = jiff::Timestamp::now();
    let (cache, committed) = (st.open.clone(), s.committed_sequence);
    st.stores
        .with(move |store| {
            let open = open_samples(&cache, committed, store)?;
            let range = query::range::resolve(&settings, &spec, now)?;
            Ok(Json(query::usage::realms(
                store,
                &open,
                Some(&policy),
                &range,
            )?))
        })
        .await
}

/// `/top`'s parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TopParams {
    /// At most this many rows (default 40, at most 10000).
    pub limit: Option<usize>,
}

/// Live rates per tenant × realm, busiest first.
#[derive(Serialize, ToSchema)]
pub struct TopAnswer {
    /// Seconds between the two readings.
    pub seconds: f64,
    /// The rows.
    #[schema(value_type = Vec<Object>)]
    pub rows: Vec<query::rates::TenantRate>,
}

/// The busiest tenants now.
#[utoipa::path(get, path = "/api/v1/top", tag = "site", params(TopParams),
    responses((status = 200, body = TopAnswer)))]
pub async fn top(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<TopParams>,
) -> Result<Json<TopAnswer>, Problem> {
    let limit = p.limit.unwrap_or(40);
    if limit == 0 || limit > 10_000 {
        return Err(Problem::invalid(Some("limit"), "from 1 to 10000"));
    }
    let s = snapshot(&st);
    let (prev, cur, secs) = class_rates(&s);
    let flows = crate::files::flow_rates(&st.files);
    let mut rows = query::rates::top(
        Some(&s.policy),
        &s.feeds,
        &prev,
        &cur,
        secs,
        &flows,
        usize::MAX,
    );
    rows.retain(|r| caller.scope.may_see(r.tenant));
    rows.truncate(limit);
    Ok(Json(TopAnswer {
        seconds: secs,
        rows,
    }))
}

/// Tenants the overage automation moved.
#[utoipa::path(get, path = "/api/v1/overage", tag = "billing",
    responses((status = 200, body = Object)))]
pub async fn overage(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<engine::records::Records>, Problem> {
    caller.must_see_site()?;
    Ok(Json(snapshot(&st).records.clone()))
}

/// `/routes/lookup`'s parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LookupParams {
    /// The address.
    #[param(value_type = String)]
    pub ip: std::net::IpAddr,
}

/// The route and realm of an address.
#[utoipa::path(get, path = "/api/v1/routes/lookup", tag = "site", params(LookupParams),
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn lookup(
    State(st): State<AppState>,
    caller: Caller,
    Query(p): Query<LookupParams>,
) -> Result<Json<serde_json::Value>, Problem> {
    caller.must_see_site()?;
    let files = st.files.clone();
    tokio::task::spawn_blocking(move || crate::files::lookup(&files, p.ip))
        .await
        .map_err(|e| Problem::unavailable(e.to_string()))?
        .map(Json)
}

/// The flow collector's counters.
#[utoipa::path(get, path = "/api/v1/flows/status", tag = "site",
    responses((status = 200, body = Object), (status = 404, body = Problem)))]
pub async fn flows(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<Json<serde_json::Value>, Problem> {
    caller.must_see_site()?;
    crate::files::flows_status(&st.files).map(Json)
}
