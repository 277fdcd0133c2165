//! Graphs drawn on the server, for customer portals and e-mails:
//! `GET /api/v1/tenants/{id}/graph.png|svg` (the tenant's traffic per
//! realm, its 95th so far and its commit) and `GET
//! /api/v1/site/graph.png|svg` (the site's), drawn by
//! [`dashboard::graph`] from the same query-layer figures as the JSON
//! answers. A tenant token draws its own tenant only.

use crate::auth::Caller;
use crate::decode::Query;
use crate::problem::Problem;
use crate::read::{snapshot, tenant, RangeParams};
use crate::AppState;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use dashboard::graph::{render, Area, Chart, Format, Level};
use history::Tenants;
use query::range::RangeSpec;
use query::series::{Column, Resolution};
use serde::Deserialize;
use utoipa::IntoParams;

/// A graph's parameters.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct GraphParams {
    /// A billing period, `YYYY-MM` (default: the current one).
    pub period: Option<String>,
    /// From this local date, `YYYY-MM-DD`, until now.
    pub since: Option<String>,
    /// Only this realm (by name).
    pub realm: Option<String>,
    /// `5m`, `1h` or `1d` (default: chosen by the range).
    pub resolution: Option<String>,
    /// Pixels, 200–4000 (default 800).
    pub width: Option<u32>,
    /// Pixels, 120–2000 (default 300).
    pub height: Option<u32>,
}

/// The graph's format, from the path's extension.
fn format(file: &str) -> Result<Format, Problem> {
    match file {
        "graph.png" => Ok(Format::Png),
        "graph.svg" => Ok(Format::Svg),
        other => Err(Problem::not_found(format!(
            "no `{other}`; graphs are graph.png and graph.svg"
        ))),
    }
}

/// Areas from columns of bytes per bucket: bit/s, realms in the
/// dashboard's colours, up below zero.
fn areas(t_seconds: &[u32], columns: &[Column], realm: Option<&str>) -> Vec<Area> {
    let mut realms: Vec<u16> = columns.iter().map(|c| c.realm).collect();
    realms.dedup();
    columns
        .iter()
        .filter(|c| realm.is_none_or(|r| r == c.realm_name))
        .map(|c| Area {
            label: format!("{} {}", c.realm_name, c.direction),
            bps: c
                .bytes
                .iter()
                .zip(t_seconds)
                .map(|(b, s)| *b as f64 * 8.0 / f64::from((*s).max(1)))
                .collect(),
            below: c.direction == "up",
            colour: realms.iter().position(|r| *r == c.realm).unwrap_or(0),
        })
        .collect()
}

fn draw(chart: &Chart, format: Format, p: &GraphParams) -> Result<Response, Problem> {
    let bytes = render(
        chart,
        format,
        p.width.unwrap_or(800),
        p.height.unwrap_or(300),
    )
    .map_err(|e| match e {
        dashboard::graph::GraphError::Size { field, .. } => {
            Problem::invalid(Some(field), e.to_string())
        }
        other => Problem::unavailable(other.to_string()),
    })?;
    Ok((
        [
            (header::CONTENT_TYPE, format.mime()),
            (header::CACHE_CONTROL, "private, max-age=60"),
        ],
        bytes,
    )
        .into_response())
}

fn spec_and_resolution(p: &GraphParams) -> Result<(RangeSpec, Option<Resolution>), Problem> {
    let spec = RangeParams {
        period: p.period.clone(),
        since: p.since.clone(),
    }
    .spec()?;
    let resolution = p
        .resolution
        .as_deref()
        .map(str::parse::<Resolution>)
        .transpose()?;
    Ok((spec, resolution))
}

fn zone_of(name: &str) -> jiff::tz::TimeZone {
    jiff::tz::TimeZone::get(name).unwrap_or(jiff::tz::TimeZone::UTC)
}

/// A tenant's traffic as a picture: per realm, down above zero and up
/// below, its 95th so far and its commit across.
#[utoipa::path(get, path = "/api/v1/tenants/{id}/{file}", tag = "tenants",
    params(("id" = String, Path, description = "The tenant's id or name"),
           ("file" = String, Path, description = "`graph.png` or `graph.svg`"), GraphParams),
    responses((status = 200, content_type = "image/png"), (status = 404, body = Problem), (status = 422, body = Problem)))]
pub async fn tenant_graph(
    State(st): State<AppState>,
    caller: Caller,
    Path((id, file)): Path<(String, String)>,
    Query(p): Query<GraphParams>,
) -> Result<Response, Problem> {
    let s = snapshot(&st);
    let t = tenant(&s.policy, &caller, &id)?;
    let (tid, name, commit) = (t.id, t.name.clone(), t.commit);
    let format = format(&file)?;
    let (spec, resolution) = spec_and_resolution(&p)?;
    let settings = s.settings.clone();
    let policy = s.policy.clone();
    let now = jiff::Timestamp::now();
    let (cache, committed) = (st.open.clone(), s.committed_sequence);
    let (series, bill) = st
        .stores
        .with(move |store| {
            let open = crate::read::open_samples(&cache, committed, store)?;
            let range = query::range::resolve(&settings, &spec, now)?;
            let resolution = resolution.unwrap_or_else(|| Resolution::for_range(&range));
            let series =
                query::series::series(store, &open, Some(&policy), tid, &range, resolution)?;
            // The 95th is a period's: drawn for a period, not for "since".
            let bill = match spec {
                RangeSpec::Since(_) => None,
                _ => {
                    let period = query::range::period(&settings, &spec, now)?;
                    query::bills::bills_of(
                        Some(&policy),
                        &settings,
                        store,
                        &open,
                        &period,
                        now,
                        &Tenants::Only(vec![tid]),
                    )?
                    .bills
                    .bills
                    .pop()
                }
            };
            Ok((series, bill))
        })
        .await?;
    let mut levels = Vec::new();
    if let Some(f) = bill
        .as_ref()
        .and_then(|b| b.bill.lines.iter().find_map(|l| l.percentile.as_ref()))
    {
        let below = f.billed_direction == Some(accounting::Direction::Up);
        let v = f.rate().0 as f64;
        levels.push(Level {
            label: format!("{}th", f.rule.percentile.get()),
            bps: if below { -v } else { v },
            colour: (0xD5, 0x5E, 0x00),
        });
    }
    if let Some(c) = commit {
        levels.push(Level {
            label: "commit".into(),
            bps: c.bps() as f64,
            colour: (0x60, 0x60, 0x60),
        });
    }
    let chart = Chart {
        title: format!("{name} · {}", series.range.label),
        end: series.range.to.as_second().min(
            series.t.last().map_or(series.range.to.as_second(), |l| {
                l + i64::from(*series.seconds.last().unwrap_or(&300))
            }),
        ),
        zone: zone_of(&series.range.zone),
        zone_name: series.range.zone.clone(),
        areas: areas(&series.seconds, &series.columns, p.realm.as_deref()),
        levels,
        t: series.t,
    };
    draw(&chart, format, &p)
}

/// The site's traffic as a picture.
#[utoipa::path(get, path = "/api/v1/site/{file}", tag = "site",
    params(("file" = String, Path, description = "`graph.png` or `graph.svg`"), GraphParams),
    responses((status = 200, content_type = "image/png"), (status = 403, body = Problem), (status = 422, body = Problem)))]
pub async fn site_graph(
    State(st): State<AppState>,
    caller: Caller,
    Path(file): Path<String>,
    Query(p): Query<GraphParams>,
) -> Result<Response, Problem> {
    caller.must_see_site()?;
    let format = format(&file)?;
    let (spec, resolution) = spec_and_resolution(&p)?;
    let usage = crate::site::site_series(&st, spec, resolution).await?;
    let s = usage.series;
    let chart = Chart {
        title: format!("the site · {}", s.range.label),
        end: s.t.last().map_or(s.range.to.as_second(), |l| {
            l + i64::from(*s.seconds.last().unwrap_or(&300))
        }),
        zone: zone_of(&s.range.zone),
        zone_name: s.range.zone.clone(),
        areas: areas(&s.seconds, &s.columns, p.realm.as_deref()),
        levels: Vec::new(),
        t: s.t,
    };
    draw(&chart, format, &p)
}
