//! The guard's endpoints and series: `GET /api/v1/guard` (the open
//! incidents and the detector's counts, from the engine's snapshot),
//! `POST /api/v1/guard/ban` and `/unban` (engine commands, like the other
//! writes), and the `tollgate_guard_*` Prometheus series.
//!
//! [`GuardStatus`] is also what the daemon writes to `guard-status.json`
//! for `tollgate guard status`, so the command line and the API show the
//! same thing in the same shape.

use crate::auth::Caller;
use crate::decode::Json;
use crate::problem::Problem;
use crate::write::Done;
use crate::AppState;
use axum::extract::State;
use axum::http::HeaderMap;
use engine::guard::{GuardCommand, GuardView};
use engine::io::Command;
use engine::snapshot::Snapshot;
use guard::{Direction, Hold, Rung, Target};
use jiff::{SignedDuration, Timestamp};
use prometheus_client::encoding::DescriptorEncoder;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use utoipa::ToSchema;

/// The guard as of one instant.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GuardStatus {
    /// When.
    #[schema(value_type = String)]
    pub as_of: Timestamp,
    /// Whether the capture runs (false: it failed, or the policy's
    /// `[guard]` names no interfaces).
    pub capturing: bool,
    /// Why the capture stopped, if it did.
    pub capture_error: Option<String>,
    /// The interfaces captured on.
    pub interfaces: Vec<String>,
    /// Where the detector's input comes from: `af_packet`, `ebpf` or
    /// `flows` (the flow collector's records), or `af_packet+flows` and
    /// `ebpf+flows` for a capture with flow records as well; empty
    /// without one.
    #[serde(default)]
    pub source: String,
    /// The protected networks.
    pub networks: Vec<String>,
    /// The open incidents.
    pub incidents: Vec<Incident>,
    /// Counts since the daemon started.
    pub stats: GuardStats,
    /// Remote sources that reached at least `scan_targets` of our
    /// addresses in one 10 s window (the most recent 100, the most
    /// recently seen first); from the packet capture only.
    #[serde(default)]
    pub scans: Vec<ScanSource>,
    /// What makes a scan (0: scan reports are off).
    #[serde(default)]
    pub scan_targets: u64,
}

/// A source that scanned our addresses.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ScanSource {
    /// The remote address.
    #[schema(value_type = String)]
    pub source: IpAddr,
    /// When it was first seen scanning (the end of that window).
    #[schema(value_type = String)]
    pub first_seen: Timestamp,
    /// When it was last seen scanning.
    #[schema(value_type = String)]
    pub last_seen: Timestamp,
    /// The 10 s windows in which it scanned.
    pub windows: u32,
    /// The most of our addresses it reached in one window (an estimate,
    /// about 8% standard error).
    pub max_targets: u64,
    /// Its packets to us in those windows.
    pub packets: u64,
}

/// One open incident: an address (or a group's total) attacked in one
/// direction.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Incident {
    /// The address, or the group's name.
    pub target: String,
    /// `address` or `group`.
    pub target_kind: String,
    /// The group whose thresholds apply (`global` for none).
    pub group: String,
    /// `in` (towards the target) or `out`.
    pub direction: String,
    /// The attack, for people: `SYN flood`, `DNS amplification (UDP
    /// source port 53)`…
    pub attack_type: String,
    /// The attack, for programs: `syn_flood`, `udp_flood`, `icmp_flood`,
    /// `fragment_flood`, `amplification`, `generic`.
    pub attack: String,
    /// The metric that fired (`pps`, `syn`…), its rate and threshold per
    /// second, and the check (`smoothed`, `instant`, `manual`).
    pub trigger: Trigger,
    /// The highest one-tick rate, packets per second.
    pub peak_pps: u64,
    /// The highest one-tick rate, bits per second.
    pub peak_bps: u64,
    /// Packets seen since detection.
    pub packets: u64,
    /// The highest rung in place (`notify`, `blackhole`…).
    pub rung: Option<String>,
    /// Every rung in place, bottom first.
    pub rungs: Vec<RungState>,
    /// When it started.
    #[schema(value_type = String)]
    pub since: Timestamp,
    /// `auto` (the ladder decides), `manual` (banned by hand for a
    /// time) or `permanent`.
    pub hold: String,
    /// Seconds before anything may come down: the manual ban's time left,
    /// or the longest hold left of the rungs; `null` when permanent.
    pub hold_left_s: Option<f64>,
    /// How long the traffic has been calm, in seconds, if it is.
    pub calm_for_s: Option<f64>,
}

/// What fired.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Trigger {
    /// Which check.
    pub check: String,
    /// The metric.
    pub metric: String,
    /// The rate seen, per second.
    pub rate: u64,
    /// The threshold.
    pub threshold: u64,
}

/// A rung in place.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RungState {
    /// The rung.
    pub rung: String,
    /// Seconds it has been in place.
    pub for_s: f64,
    /// Seconds of its hold left.
    pub hold_left_s: f64,
}

/// The detector's and the capture's counts since the daemon started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct GuardStats {
    /// Ticks fed to the detector.
    pub ticks: u64,
    /// Addresses tracked now.
    pub hosts: u64,
    /// Open incidents.
    pub incidents: u64,
    /// Samples of new addresses not tracked because the table was full.
    pub overflow: u64,
    /// Quiet addresses forgotten to make room for one over a threshold.
    pub evicted: u64,
    /// Samples for addresses outside the networks.
    pub outside: u64,
    /// Frames the capture read.
    pub frames: u64,
    /// Packets the kernel dropped because a capture ring was full.
    pub capture_drops: u64,
    /// Malformed frames, counted and skipped.
    pub malformed: u64,
    /// Flow records about the protected networks taken from the flow
    /// collector (`[guard] flows = true`).
    #[serde(default)]
    pub flow_records: u64,
    /// Flow records dropped because the guard's tap queue was full.
    #[serde(default)]
    pub flow_dropped: u64,
    /// Flow records not spread: the spreader already followed the most
    /// addresses it follows at once.
    #[serde(default)]
    pub flow_overflow: u64,
}

fn secs(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

impl GuardStatus {
    /// The view the engine published, at the wall time `now`.
    pub fn from_view(v: &GuardView, now: Timestamp) -> GuardStatus {
        let incidents = v
            .incidents
            .iter()
            .map(|i| {
                let age = v.at.since(i.attack.started);
                let (hold, hold_left) = match i.hold {
                    Hold::Auto => (
                        "auto",
                        Some(i.rungs.iter().map(|r| r.2).max().unwrap_or_default()),
                    ),
                    Hold::Until(t) => ("manual", Some(t.since(v.at))),
                    Hold::Permanent => ("permanent", None),
                };
                let kind = attack_name(i.attack.kind);
                Incident {
                    target: match &i.target {
                        Target::Host(a) => a.to_string(),
                        Target::Group(g) => g.clone(),
                    },
                    target_kind: match i.target {
                        Target::Host(_) => "address",
                        Target::Group(_) => "group",
                    }
                    .into(),
                    group: i.attack.group.clone(),
                    direction: direction_word(i.direction).into(),
                    attack_type: i.attack.kind.to_string(),
                    attack: kind,
                    trigger: Trigger {
                        check: word(&i.attack.trigger.by),
                        metric: word(&i.attack.trigger.metric),
                        rate: i.attack.trigger.rate,
                        threshold: i.attack.trigger.threshold,
                    },
                    peak_pps: i.attack.peak_pps,
                    peak_bps: i.attack.peak_bps,
                    packets: i.attack.packets,
                    rung: i.rungs.last().map(|r| r.0.to_string()),
                    rungs: i
                        .rungs
                        .iter()
                        .map(|(r, since, left)| RungState {
                            rung: r.to_string(),
                            for_s: secs(*since),
                            hold_left_s: secs(*left),
                        })
                        .collect(),
                    since: now
                        .checked_sub(SignedDuration::try_from(age).unwrap_or(SignedDuration::ZERO))
                        .unwrap_or(now),
                    hold: hold.into(),
                    hold_left_s: hold_left.map(secs),
                    calm_for_s: i.calm_for.map(secs),
                }
            })
            .collect();
        let s = &v.stats;
        GuardStatus {
            as_of: now,
            capturing: v.spec.is_some() && v.capture_error.is_none(),
            capture_error: v.capture_error.clone(),
            interfaces: v
                .spec
                .as_ref()
                .map(|c| c.interfaces.clone())
                .unwrap_or_default(),
            source: v
                .spec
                .as_ref()
                .map(|c| {
                    let source = match c.source {
                        engine::guard::CaptureSource::AfPacket => "af_packet",
                        engine::guard::CaptureSource::Ebpf => "ebpf",
                        engine::guard::CaptureSource::Flows => "flows",
                    };
                    match c.with_flows {
                        true => format!("{source}+flows"),
                        false => source.to_string(),
                    }
                })
                .unwrap_or_default(),
            networks: v.networks.iter().map(ToString::to_string).collect(),
            incidents,
            stats: GuardStats {
                ticks: v.ticks,
                hosts: s.hosts as u64,
                incidents: s.incidents as u64,
                overflow: s.overflow,
                evicted: s.evicted,
                outside: s.outside,
                frames: v.capture.frames,
                capture_drops: v.capture.kernel_drops,
                malformed: v.capture.malformed,
                flow_records: v.capture.flow_records,
                flow_dropped: v.capture.flow_dropped,
                flow_overflow: v.capture.flow_overflow,
            },
            scans: v
                .scans
                .iter()
                .map(|x| ScanSource {
                    source: x.source,
                    first_seen: wall(now, v.at, x.first_seen),
                    last_seen: wall(now, v.at, x.last_seen),
                    windows: x.windows,
                    max_targets: x.max_targets,
                    packets: x.packets,
                })
                .collect(),
            scan_targets: v.scan_targets,
        }
    }
}

/// The wall-clock time of `then`, given that `at` on the monotonic clock
/// is `now`.
fn wall(now: Timestamp, at: guard::Monotonic, then: guard::Monotonic) -> Timestamp {
    now.checked_sub(SignedDuration::try_from(at.since(then)).unwrap_or(SignedDuration::ZERO))
        .unwrap_or(now)
}

/// Serde's name of a unit variant (`smoothed`, `pps`…): the word the
/// policy and the reports use, which `Display` does not always give.
fn word<T: Serialize>(x: &T) -> String {
    match serde_json::to_value(x) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(v) => v.to_string(),
        Err(_) => String::new(),
    }
}

/// An attack kind's snake-case name (`syn_flood`, `amplification`…), as
/// its JSON tag spells it.
pub fn attack_name(kind: guard::AttackKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|k| k.get("kind").and_then(|k| k.as_str().map(String::from)))
        .unwrap_or_else(|| kind.to_string())
}

/// `in` or `out`, as the API and the policy spell a direction.
pub fn direction_word(d: Direction) -> &'static str {
    match d {
        Direction::In => "in",
        Direction::Out => "out",
    }
}

fn parse_direction(field: &str, v: Option<&str>) -> Result<Option<Direction>, Problem> {
    match v {
        None | Some("both") => Ok(None),
        Some("in") => Ok(Some(Direction::In)),
        Some("out") => Ok(Some(Direction::Out)),
        Some(other) => Err(Problem::invalid(
            Some(field),
            format!("`{other}` is not a direction: write `in` or `out`"),
        )),
    }
}

/// The guard's incidents and counts.
#[utoipa::path(get, path = "/api/v1/guard", tag = "guard",
    responses((status = 200, body = GuardStatus), (status = 403, body = Problem), (status = 404, body = Problem)))]
pub async fn status(
    State(st): State<AppState>,
    caller: Caller,
) -> Result<axum::Json<GuardStatus>, Problem> {
    caller.must_see_site()?;
    let s = st.snapshot.borrow().clone();
    let Some(v) = &s.guard else {
        return Err(Problem::not_found(
            "the policy has no [guard] section; the guard is not running",
        ));
    };
    Ok(axum::Json(GuardStatus::from_view(v, s.now)))
}

/// A ban.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanBody {
    /// The address (inside the guard's networks).
    pub address: String,
    /// `in` (towards the address, the default) or `out`.
    pub direction: Option<String>,
    /// The highest rung to apply (`notify`, `blackhole`…); the ladder's
    /// top rung if left out.
    pub rung: Option<String>,
    /// How long (`10m`, `2h`); the rung's hold if left out.
    #[serde(rename = "for")]
    pub duration: Option<String>,
    /// Until unbanned (not with `for`).
    #[serde(default)]
    pub permanent: bool,
}

/// An unban.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnbanBody {
    /// The address, or a group's name (for a group total's incident).
    pub target: String,
    /// `in` or `out`; both if left out.
    pub direction: Option<String>,
}

/// The engine command a ban body asks for, or a problem naming the field.
pub fn ban_command(b: &BanBody) -> Result<GuardCommand, Problem> {
    let address: IpAddr = b.address.trim().parse().map_err(|_| {
        Problem::invalid(
            Some("address"),
            format!("`{}` is not an IPv4 or IPv6 address", b.address),
        )
    })?;
    let rung = match &b.rung {
        None => None,
        Some(r) => Some(Rung::from_name(r).ok_or_else(|| {
            Problem::invalid(
                Some("rung"),
                format!(
                    "`{r}` is not a rung: one of {}",
                    Rung::ALL.map(Rung::name).join(", ")
                ),
            )
        })?),
    };
    let duration = match &b.duration {
        None => None,
        Some(d) => {
            let d = net_types::parse_duration(d)
                .map_err(|e| Problem::invalid(Some("for"), format!("`{d}`: {e} ({})", e.hint())))?;
            if d.is_zero() {
                return Err(Problem::invalid(
                    Some("for"),
                    "a ban of no time bans nothing; leave `for` out for the rung's hold",
                ));
            }
            Some(d)
        }
    };
    if b.permanent && duration.is_some() {
        return Err(Problem::invalid(
            Some("for"),
            "a permanent ban has no duration: give `for` or `permanent`, not both",
        ));
    }
    let direction = match b.direction.as_deref() {
        Some("both") => {
            return Err(Problem::invalid(
                Some("direction"),
                "a ban is for one direction: `in` or `out`",
            ))
        }
        d => parse_direction("direction", d)?,
    };
    Ok(GuardCommand::Ban {
        address,
        direction,
        rung,
        duration,
        permanent: b.permanent,
    })
}

/// The engine command an unban body asks for, or a problem naming the
/// field.
pub fn unban_command(b: &UnbanBody) -> Result<GuardCommand, Problem> {
    let target = b.target.trim();
    if target.is_empty() {
        return Err(Problem::invalid(
            Some("target"),
            "name an address or a group",
        ));
    }
    Ok(GuardCommand::Unban {
        target: target.to_string(),
        direction: parse_direction("direction", b.direction.as_deref())?,
    })
}

/// Applies the ladder to an address by hand, up to a rung, for a time or
/// until unbanned.
#[utoipa::path(post, path = "/api/v1/guard/ban", tag = "guard", request_body = BanBody,
    responses((status = 200, body = Done), (status = 403, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn ban(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(b): Json<BanBody>,
) -> Result<axum::Json<Done>, Problem> {
    caller.must_write(headers.contains_key(crate::write::CSRF_HEADER))?;
    let guard = ban_command(&b)?;
    crate::write::send(&st, Command::Guard { guard }).await
}

/// Removes every rung from an address (or a group's total incident) now.
#[utoipa::path(post, path = "/api/v1/guard/unban", tag = "guard", request_body = UnbanBody,
    responses((status = 200, body = Done), (status = 403, body = Problem), (status = 404, body = Problem), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn unban(
    State(st): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    Json(b): Json<UnbanBody>,
) -> Result<axum::Json<Done>, Problem> {
    caller.must_write(headers.contains_key(crate::write::CSRF_HEADER))?;
    let guard = unban_command(&b)?;
    crate::write::send(&st, Command::Guard { guard }).await
}

/// The `tollgate_guard_*` series (none without `[guard]`).
pub(crate) fn metrics(e: &mut DescriptorEncoder, s: &Snapshot) -> std::fmt::Result {
    let Some(v) = &s.guard else {
        return Ok(());
    };
    let mut by_rung: Vec<(String, u64)> = Rung::ALL
        .iter()
        .map(|r| (r.name().to_string(), 0))
        .collect();
    for i in &v.incidents {
        if let Some((r, _, _)) = i.rungs.last() {
            if let Some(row) = by_rung.iter_mut().find(|(n, _)| n == r.name()) {
                row.1 += 1;
            }
        }
    }
    crate::metrics::labelled_gauge(
        e,
        "tollgate_guard_incidents",
        "Open guard incidents, by the highest rung in place.",
        "rung",
        &by_rung,
    )?;
    let c = |e: &mut DescriptorEncoder, name: &str, help: &str, v: u64| {
        crate::metrics::counter(e, name, help, v)
    };
    c(
        e,
        "tollgate_guard_ticks",
        "Capture ticks fed to the detector.",
        v.ticks,
    )?;
    c(
        e,
        "tollgate_guard_overflow",
        "Samples of new addresses not tracked: the detector's table was full.",
        v.stats.overflow,
    )?;
    c(
        e,
        "tollgate_guard_evicted",
        "Quiet addresses forgotten to make room for one over a threshold.",
        v.stats.evicted,
    )?;
    c(
        e,
        "tollgate_guard_capture_frames",
        "Frames the guard's capture read.",
        v.capture.frames,
    )?;
    c(
        e,
        "tollgate_guard_capture_drops",
        "Packets the kernel dropped because a capture ring was full.",
        v.capture.kernel_drops,
    )?;
    c(
        e,
        "tollgate_guard_capture_malformed",
        "Malformed frames the capture counted and skipped.",
        v.capture.malformed,
    )?;
    c(
        e,
        "tollgate_guard_flow_records",
        "Flow records about the protected networks the guard took from the collector.",
        v.capture.flow_records,
    )?;
    c(
        e,
        "tollgate_guard_flow_dropped",
        "Flow records dropped because the guard's tap queue was full.",
        v.capture.flow_dropped,
    )?;
    c(
        e,
        "tollgate_guard_flow_overflow",
        "Flow records not spread: the spreader followed the most addresses it follows at once.",
        v.capture.flow_overflow,
    )?;
    crate::metrics::gauge(
        e,
        "tollgate_guard_hosts",
        "Addresses the detector tracks now.",
        v.stats.hosts as f64,
    )
}

/// One ended attack, as `guard-history.jsonl` keeps it (a line each).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct AttackRecord {
    /// When the last rung came down (the attack itself ended earlier:
    /// the hold and the calm time passed since).
    pub recorded_at: jiff::Timestamp,
    /// When the attack was detected (wall clock); absent in records
    /// written before the guard stamped it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// The address, or a group's name.
    pub target: String,
    /// `in` (towards the target) or `out`.
    pub direction: String,
    /// The attack type (`syn_flood`, `udp_flood`, …).
    pub attack: String,
    /// From the first packet over the threshold to the end, in seconds.
    pub duration_s: f64,
    /// Every rung used, in the order they were first applied.
    pub rungs: Vec<String>,
    /// The prefixes the rungs were applied to.
    pub prefixes: Vec<String>,
    /// The final report (peaks, packets, bytes, protocols, top source
    /// ports, packet lengths, trigger), as the notify script gets it.
    pub report: serde_json::Value,
}

impl AttackRecord {
    /// When the attack started: as stamped, else its end less its
    /// duration.
    pub fn started(&self) -> Timestamp {
        self.started_at.unwrap_or_else(|| {
            let lasted = SignedDuration::try_from_secs_f64(self.duration_s.max(0.0))
                .unwrap_or(SignedDuration::ZERO);
            self.recorded_at
                .checked_sub(lasted)
                .unwrap_or(self.recorded_at)
        })
    }

    /// The history store's row for this record: the columns a query
    /// shows, and the whole record as JSON.
    pub fn to_row(&self) -> Result<history::AttackRow, serde_json::Error> {
        let u = |k: &str| self.report.get(k).and_then(|v| v.as_u64()).unwrap_or(0);
        let sources = self
            .report
            .get("top_sources")
            .and_then(|v| v.as_array())
            .map(|l| {
                l.iter()
                    .filter_map(|s| s.get("addr").and_then(|a| a.as_str()))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        // Millisecond precision, as the stores keep it, so the record
        // read back equals the one stored.
        let started = Timestamp::from_millisecond(self.started().as_millisecond())
            .unwrap_or(self.recorded_at);
        let mut record = self.clone();
        record.started_at = Some(started);
        Ok(history::AttackRow {
            started,
            ended: self.recorded_at.max(started),
            target: self.target.clone(),
            direction: self.direction.clone(),
            kind: self.attack.clone(),
            peak_pps: u("peak_pps"),
            peak_bps: u("peak_bps"),
            rungs: self.rungs.clone(),
            sources,
            record: serde_json::to_string(&record)?,
        })
    }

    /// The record a stored row holds.
    pub fn from_row(row: &history::AttackRow) -> Result<AttackRecord, serde_json::Error> {
        serde_json::from_str(&row.record)
    }
}

/// `since` for the guard's history: an RFC 3339 instant
/// (`2026-12-07T04:00:00Z`), a UTC date (`2026-12-07`), or a time back
/// from `now` (`90s`, `30m`, `24h`, `7d`).
pub fn parse_since(text: &str, now: Timestamp) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Ok(t) = text.parse::<Timestamp>() {
        return Ok(t);
    }
    if let Ok(d) = text.parse::<jiff::civil::Date>() {
        return d
            .to_zoned(jiff::tz::TimeZone::UTC)
            .map(|z| z.timestamp())
            .map_err(|e| e.to_string());
    }
    let unit = text.chars().last().unwrap_or(' ');
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => 0,
    };
    let n: Option<i64> = text[..text.len() - unit.len_utf8().min(text.len())]
        .parse()
        .ok()
        .filter(|n| *n >= 0 && secs > 0);
    match n.and_then(|n| n.checked_mul(secs)) {
        Some(back) => now
            .checked_sub(SignedDuration::from_secs(back))
            .map_err(|e| e.to_string()),
        None => Err(format!(
            "`{text}` is not an instant (2026-12-07T04:00:00Z), a date (2026-12-07) or a time back (90s, 30m, 24h, 7d)"
        )),
    }
}

/// The ended attacks, oldest first: `guard-history.jsonl.1`, then
/// `guard-history.jsonl`; with the number of lines that did not read
/// (skipped). No file is no attack.
pub fn read_history(path: &std::path::Path) -> std::io::Result<(Vec<AttackRecord>, usize)> {
    let mut out = Vec::new();
    let mut bad = 0;
    let mut old = path.as_os_str().to_owned();
    old.push(".1");
    for p in [std::path::Path::new(&old), path] {
        let text = match std::fs::read_to_string(p) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str(line) {
                Ok(r) => out.push(r),
                Err(_) => bad += 1,
            }
        }
    }
    Ok((out, bad))
}

/// `GET /api/v1/guard/history`'s query.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistoryQuery {
    /// How many of the latest attacks (default 100, at most 10,000).
    pub last: Option<usize>,
    /// Only attacks that ended since then, read from the history store
    /// (an instant, a UTC date, or a time back: `24h`, `7d`).
    pub since: Option<String>,
}

/// The guard's ended attacks, oldest first (the latest `last`).
#[utoipa::path(get, path = "/api/v1/guard/history", tag = "guard",
    params(("last" = Option<usize>, Query, description = "how many of the latest attacks (default 100, at most 10000)"),
           ("since" = Option<String>, Query, description = "only attacks that ended since then, read from the history store: an RFC 3339 instant, a UTC date, or a time back (24h, 7d)")),
    responses((status = 200, description = "the ended attacks, oldest first: `{attacks: [...], total, unreadable}`; with `since`, `source` is `history` and `total` counts those returned"), (status = 403, body = Problem)))]
pub async fn history(
    State(st): State<AppState>,
    caller: Caller,
    query: crate::decode::Query<HistoryQuery>,
) -> Result<axum::Json<serde_json::Value>, Problem> {
    caller.must_see_site()?;
    let last = query.0.last.unwrap_or(100);
    if last > 10_000 {
        return Err(Problem::invalid(Some("last"), "at most 10000"));
    }
    if let Some(since) = &query.0.since {
        let since =
            parse_since(since, Timestamp::now()).map_err(|e| Problem::invalid(Some("since"), e))?;
        let rows = st
            .stores
            .with(move |s| {
                s.attacks(since, last)
                    .map_err(|e| Problem::unavailable(format!("the history's attacks: {e}")))
            })
            .await?;
        let mut bad = 0;
        let records: Vec<AttackRecord> = rows
            .iter()
            .filter_map(|r| AttackRecord::from_row(r).map_err(|_| bad += 1).ok())
            .collect();
        return Ok(axum::Json(serde_json::json!({
            "attacks": records,
            "total": records.len(),
            "unreadable": bad,
            "source": "history",
        })));
    }
    let path = st.files.guard_history.clone();
    let (records, bad) = tokio::task::spawn_blocking(move || read_history(&path))
        .await
        .map_err(|e| Problem::unavailable(format!("the guard history: {e}")))?
        .map_err(|e| Problem::unavailable(format!("the guard history: {e}")))?;
    let total = records.len();
    let shown = &records[total.saturating_sub(last)..];
    Ok(axum::Json(serde_json::json!({
        "attacks": shown,
        "total": total,
        "unreadable": bad,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_reads_instants_dates_and_times_back() {
        let now: Timestamp = "2026-12-07T04:00:00Z".parse().unwrap();
        let p = |s: &str| parse_since(s, now).map(|t| t.to_string());
        assert_eq!(p("2026-12-01T00:00:00Z").unwrap(), "2026-12-01T00:00:00Z");
        assert_eq!(p("2026-12-06").unwrap(), "2026-12-06T00:00:00Z");
        assert_eq!(p("90s").unwrap(), "2026-12-07T03:58:30Z");
        assert_eq!(p("24h").unwrap(), "2026-12-06T04:00:00Z");
        assert_eq!(p("7d").unwrap(), "2026-11-30T04:00:00Z");
        for bad in ["", "yesterday", "-1h", "7w", "h", "99999999999999999d"] {
            assert!(p(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_record_goes_to_a_row_and_back_whole() {
        let r = AttackRecord {
            recorded_at: "2026-12-07T04:00:10.5Z".parse().unwrap(),
            started_at: Some("2026-12-07T03:59:00.1234Z".parse().unwrap()),
            target: "203.0.113.10".into(),
            direction: "in".into(),
            attack: "syn_flood".into(),
            duration_s: 70.0,
            rungs: vec!["notify".into(), "blackhole".into()],
            prefixes: vec!["203.0.113.10/32".into()],
            report: serde_json::json!({"peak_pps": 12000, "peak_bps": 3840000,
                "top_sources": [{"addr": "198.51.100.2", "packets": 5, "bytes": 200},
                                {"addr": "2001:db8::3", "packets": 1, "bytes": 60}]}),
        };
        let row = r.to_row().unwrap();
        assert_eq!(row.started.to_string(), "2026-12-07T03:59:00.123Z");
        assert_eq!((row.peak_pps, row.peak_bps), (12_000, 3_840_000));
        assert_eq!(row.sources, vec!["198.51.100.2", "2001:db8::3"]);
        row.check().unwrap();
        let back = AttackRecord::from_row(&row).unwrap();
        assert_eq!(back.started_at, Some(row.started));
        assert_eq!(back.report, r.report);
        // A record without a stamped start: its end less its duration.
        let old = AttackRecord {
            started_at: None,
            ..r
        };
        assert_eq!(
            old.to_row().unwrap().started.to_string(),
            "2026-12-07T03:59:00.5Z"
        );
    }
}
