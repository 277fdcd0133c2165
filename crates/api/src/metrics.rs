//! `GET /metrics`: Prometheus' text format, from the `prometheus-client`
//! crate, drawn from the engine's snapshot and the flow collector's
//! status at each scrape. The series keep the names they had before the
//! API: `tollgate_reads_total`, `tollgate_policy_reloads_total{result}`,
//! `tollgate_flow_*`, …
//!
//! `prometheus-client` writes label values as they are; the values read
//! from the collector's status file (socket and exporter addresses, as
//! the file spells them) are escaped here ([`Escaped`]), so no text in
//! that file can break a line of the exposition or forge a series.

use crate::auth::{client, Caller};
use crate::files::Files;
use crate::problem::Problem;
use crate::AppState;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use engine::snapshot::Snapshot;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeLabelValue, EncodeMetric, LabelValueEncoder,
};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::Arc;
use tokio::sync::watch;

struct Scrape {
    snapshot: watch::Receiver<Arc<Snapshot>>,
    files: Arc<Files>,
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Scrape")
    }
}

pub(crate) fn counter(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    v: u64,
) -> std::fmt::Result {
    let c = ConstCounter::new(v);
    c.encode(e.encode_descriptor(name, help, None, c.metric_type())?)
}

pub(crate) fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, v: f64) -> std::fmt::Result {
    let g = ConstGauge::new(v);
    g.encode(e.encode_descriptor(name, help, None, g.metric_type())?)
}

/// A label value escaped as the text format says: a backslash, a double
/// quote and a line feed become `\\`, `\"` and `\n`.
struct Escaped<'a>(&'a str);

impl EncodeLabelValue for Escaped<'_> {
    fn encode(&self, e: &mut LabelValueEncoder) -> std::fmt::Result {
        use std::fmt::Write as _;
        for c in self.0.chars() {
            match c {
                '\\' => e.write_str("\\\\")?,
                '"' => e.write_str("\\\"")?,
                '\n' => e.write_str("\\n")?,
                c => e.write_char(c)?,
            }
        }
        Ok(())
    }
}

/// A family of counters with one label.
fn labelled(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    rows: &[(String, u64)],
) -> std::fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (value, v) in rows {
        let labels = [(label, Escaped(value))];
        ConstCounter::new(*v).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// A family of gauges with one label.
pub(crate) fn labelled_gauge(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    label: &str,
    rows: &[(String, u64)],
) -> std::fmt::Result {
    let mut family = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (value, v) in rows {
        let labels = [(label, Escaped(value))];
        ConstGauge::new(*v as i64).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

impl Collector for Scrape {
    fn encode(&self, mut e: DescriptorEncoder) -> std::fmt::Result {
        let s = self.snapshot.borrow().clone();
        let c = &s.counts;
        counter(
            &mut e,
            "tollgate_reads",
            "Counter reads accounted.",
            c.reads,
        )?;
        counter(
            &mut e,
            "tollgate_reconcile_rounds",
            "Reconcile rounds (observe, compile, diff, apply).",
            c.reconciles,
        )?;
        counter(
            &mut e,
            "tollgate_changes_applied",
            "Kernel changes applied.",
            c.changes_applied,
        )?;
        counter(
            &mut e,
            "tollgate_changes_failed",
            "Kernel changes refused; retried next round.",
            c.changes_failed,
        )?;
        counter(
            &mut e,
            "tollgate_samples_written",
            "Closed 5-minute samples committed to the history.",
            c.samples_written,
        )?;
        counter(
            &mut e,
            "tollgate_batches_written",
            "Accounting batches committed (samples and state in one transaction).",
            c.batches_written,
        )?;
        counter(
            &mut e,
            "tollgate_batch_failures",
            "Accounting batches the store refused; their samples are retried.",
            c.batch_failures,
        )?;
        counter(
            &mut e,
            "tollgate_overage_moves",
            "Tenants moved into or out of the overage plan.",
            c.overage_moves,
        )?;
        counter(
            &mut e,
            "tollgate_flow_samples_written",
            "Flow-measured samples added to the history.",
            c.flow_samples,
        )?;

        labelled(
            &mut e,
            "tollgate_policy_reloads",
            "Policy reloads (SIGHUP or the API) by result.",
            "result",
            &[
                ("ok".into(), c.reloads_ok),
                ("refused".into(), c.reloads_refused),
            ],
        )?;
        let lag = c.last_commit.map_or(f64::NAN, |t| {
            jiff::Timestamp::now().duration_since(t).as_secs_f64()
        });
        gauge(
            &mut e,
            "tollgate_accounting_lag_seconds",
            "Seconds since the last committed counter read.",
            lag,
        )?;
        gauge(
            &mut e,
            "tollgate_round_duration_seconds",
            "Duration of the last reconcile round.",
            c.round_ms / 1e3,
        )?;
        gauge(
            &mut e,
            "tollgate_counters_tracked",
            "Tenant × realm × direction × band counters the accountant tracks.",
            s.counters_tracked as f64,
        )?;
        gauge(
            &mut e,
            "tollgate_overage_tenants",
            "Tenants in the overage plan now.",
            s.records.moves.len() as f64,
        )?;
        gauge(
            &mut e,
            "tollgate_routes_table_unreadable",
            "1 while the saved routes table cannot be read (the last good one is in use).",
            f64::from(u8::from(s.routes_error.is_some())),
        )?;
        gauge(
            &mut e,
            "tollgate_transit_guard_steps",
            "The transit guard's steps the kernel has now (0 to 3 per upstream).",
            s.transit.applied() as f64,
        )?;
        gauge(
            &mut e,
            "tollgate_transit_guard_dry_run_steps",
            "Steps the transit guard would have in force, in dry-run mode.",
            s.transit
                .steps_in_force
                .iter()
                .filter(|x| !x.applied)
                .count() as f64,
        )?;
        counter(
            &mut e,
            "tollgate_transit_guard_tightened",
            "Steps the transit guard has taken (or reported, in dry-run mode).",
            s.transit.state.tightened,
        )?;
        counter(
            &mut e,
            "tollgate_transit_guard_relaxed",
            "Steps the transit guard has relaxed, by itself or by hand.",
            s.transit.state.relaxed,
        )?;
        crate::guard::metrics(&mut e, &s)?;
        crate::latency::metrics(&mut e, &s)?;
        flows(&mut e, &self.files)
    }
}

/// The collector's counters since start, from its status's `totals`.
const FLOW_TOTALS: &[(&str, &str, &str)] = &[
    (
        "tollgate_flow_quarantined",
        "Flow records beyond any link's capacity, set aside (flows-quarantine.jsonl).",
        "quarantined",
    ),
    (
        "tollgate_flow_quarantine_dropped",
        "Flow records set aside but not kept (beyond what a worker keeps between commits).",
        "quarantine_dropped",
    ),
    (
        "tollgate_flow_unscaled",
        "Flow records counted at a scale of 1 because their sampling cannot be scaled.",
        "unscaled",
    ),
    (
        "tollgate_flow_worker_restarts",
        "Flow worker threads that died and were started again.",
        "worker_restarts",
    ),
    (
        "tollgate_flow_templates_refused",
        "Templates refused (too many fields, or over the memory limit).",
        "templates_refused",
    ),
    (
        "tollgate_flow_templates_evicted",
        "Templates evicted, least recently used first, to stay within the limits.",
        "templates_evicted",
    ),
];

/// The flow records kept in ClickHouse (`[history.flows]`), from the
/// status's `kept`.
const FLOW_KEPT: &[(&str, &str, &str)] = &[
    (
        "tollgate_flow_kept_records",
        "Flow records written to ClickHouse ([history.flows]).",
        "kept",
    ),
    (
        "tollgate_flow_kept_batches",
        "Batches of flow records written to ClickHouse.",
        "batches",
    ),
    (
        "tollgate_flow_kept_dropped",
        "Flow records not kept because the writer's queue was full (ClickHouse slower than the exporters).",
        "dropped",
    ),
    (
        "tollgate_flow_kept_lost",
        "Flow records of batches let go after ClickHouse failed for a minute.",
        "lost",
    ),
];

/// Per socket address (the workers' sockets summed).
const FLOW_SOCKETS: &[(&str, &str, &str)] = &[
    (
        "tollgate_flow_datagrams",
        "Datagrams received per socket.",
        "datagrams",
    ),
    (
        "tollgate_flow_kernel_drops",
        "Datagrams the kernel dropped per socket (full receive buffer).",
        "kernel_drops",
    ),
    (
        "tollgate_flow_refused",
        "Datagrams from sources not on the exporter allowlist, per socket.",
        "refused",
    ),
    (
        "tollgate_flow_socket_worker_restarts",
        "Restarts of the workers of each socket address.",
        "restarts",
    ),
];

/// Per allowed exporter.
const FLOW_EXPORTERS: &[(&str, &str, &str)] = &[
    ("tollgate_flow_exporter_records", "Flow records decoded per exporter.", "flows"),
    ("tollgate_flow_exporter_malformed", "Malformed datagrams per exporter (dropped).", "malformed"),
    ("tollgate_flow_exporter_unknown_template", "NetFlow v9 data records skipped for want of their template, per exporter (IPFIX does not say how many records a set holds: see the sets).", "unknown_template_records"),
    ("tollgate_flow_exporter_unknown_template_sets", "Data sets skipped for want of their template, per exporter.", "unknown_template_sets"),
    ("tollgate_flow_exporter_sequence_gaps", "Jumps in the export sequence number per exporter (loss upstream, or restarts).", "sequence_gaps"),
    ("tollgate_flow_exporter_quarantined", "Records set aside as beyond any link's capacity, per exporter.", "quarantined"),
    ("tollgate_flow_exporter_unscaled", "Records counted at a scale of 1 (unsupported sampling), per exporter.", "unscaled"),
    ("tollgate_flow_exporter_templates_refused", "Templates refused, per exporter.", "templates_refused"),
    ("tollgate_flow_exporter_templates_evicted", "Templates evicted, per exporter.", "templates_evicted"),
];

/// The flow collector's series, from its status file.
fn flows(e: &mut DescriptorEncoder, files: &Files) -> std::fmt::Result {
    let Ok(v) = crate::files::flows_status(files) else {
        return Ok(());
    };
    let n = |x: &serde_json::Value| x.as_u64().unwrap_or(0);
    let t = &v["totals"];
    labelled(
        e,
        "tollgate_flow_records",
        "Flow records decoded, by what attribution made of them.",
        "outcome",
        &[
            ("attributed".into(), n(&t["attributed"])),
            ("kernel_measured".into(), n(&t["kernel_measured"])),
            ("no_tenant".into(), n(&t["unattributed"])),
        ],
    )?;
    for (name, help, field) in FLOW_TOTALS {
        counter(e, name, help, n(&t[*field]))?;
    }
    counter(
        e,
        "tollgate_flow_samples_refused",
        "Flow samples the history refused, quarantined.",
        n(&v["quarantine"]["samples_refused"]),
    )?;
    // The records kept in ClickHouse ([history.flows]), when kept.
    let k = &v["kept"];
    if k.is_object() {
        for (name, help, field) in FLOW_KEPT {
            counter(e, name, help, n(&k[*field]))?;
        }
    }
    gauge(
        e,
        "tollgate_flow_template_bytes",
        "Memory the decoders' templates take.",
        n(&t["template_bytes"]) as f64,
    )?;
    // Every worker has its own socket on the same address; one series per
    // address, summed over them.
    for (name, help, field) in FLOW_SOCKETS {
        let mut per: std::collections::BTreeMap<String, u64> = Default::default();
        for s in v["sockets"].as_array().into_iter().flatten() {
            *per.entry(s["local"].as_str().unwrap_or("").to_string())
                .or_default() += n(&s[*field]);
        }
        labelled(
            e,
            name,
            help,
            "socket",
            &per.into_iter().collect::<Vec<_>>(),
        )?;
    }
    for (name, help, field) in FLOW_EXPORTERS {
        let rows: Vec<(String, u64)> = v["exporters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|x| x["allowed"].as_bool() == Some(true))
            .map(|x| {
                (
                    x["address"].as_str().unwrap_or("").to_string(),
                    n(&x[*field]),
                )
            })
            .collect();
        labelled(e, name, help, "exporter", &rows)?;
    }
    Ok(())
}

/// The registry the scrapes encode.
pub fn registry(snapshot: watch::Receiver<Arc<Snapshot>>, files: Arc<Files>) -> Arc<Registry> {
    let mut r = Registry::default();
    r.register_collector(Box::new(Scrape { snapshot, files }));
    Arc::new(r)
}

/// The text exposition of `r`.
pub fn render(r: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, r)?;
    Ok(out)
}

/// `GET /metrics`: without a token from localhost (or anywhere when the
/// policy's `[api] metrics_public` says so); else with any token.
pub async fn scrape(State(st): State<AppState>, req: Request) -> Result<Response, Problem> {
    let (mut parts, _) = req.into_parts();
    let ip = client(&parts);
    if !(st.metrics_public || ip.is_loopback()) {
        Caller::from_request_parts(&mut parts, &st).await?;
    }
    let body =
        render(&st.metrics).map_err(|_| Problem::unavailable("cannot encode the metrics"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
        .into_response())
}
