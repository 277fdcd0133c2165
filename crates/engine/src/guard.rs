//! The guard inside the daemon: the detector (`crates/guard`) owned by the
//! engine, fed the capture's ticks as inputs, its ladder's decisions
//! handed to the shell as effects.
//!
//! Time: the guard runs on the shell's **monotonic** clock (time since the
//! daemon started), carried by every [`GuardInput`], not on the wall
//! clock the rest of the engine uses: a tick's rate must not jump when
//! NTP steps the wall clock. An operator's ban or unban (a [`Command`])
//! carries no time of its own; it is carried out at the time of the last
//! tick (at most one tick, 100 ms, old), which keeps the engine
//! deterministic and replayable.
//!
//! - At start, and when a reload changes `[guard]`, the engine asks the
//!   shell to (re)start the capture ([`GuardEffect::Capture`]); without
//!   `[guard]` it asks for none.
//! - The shell reads the saved ladder (`guard-state.json`) and hands it in
//!   ([`GuardInput::Restore`]) before the first tick; the detector puts
//!   its rungs back ([`guard::Decision::Restore`]).
//! - Every tick ([`GuardInput::Tick`]) goes through
//!   [`guard::Detector::tick`]; each decision becomes a
//!   [`GuardEffect::Apply`], followed by a [`GuardEffect::Save`] of the
//!   ladder's state whenever there was one.
//! - A reload that keeps `[guard]` reconfigures the detector
//!   ([`guard::Detector::reconfigure`]): incidents carry over, rungs the
//!   new policy forbids are stopped.
//!
//! [`Command`]: crate::io::Command

use crate::io::{Answer, Effect, Level};
use crate::Engine;
use guard::{Decision, Detector, Direction, IncidentView, Monotonic, Rung, SavedState, Stats};
use jiff::Timestamp;
use net_types::Prefix;
use policy::Policy;
use serde::{Deserialize, Serialize};
use std::net::IpAddr;
use std::time::Duration;

/// Where the shell counts packets for the detector.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureSource {
    /// AF_PACKET sockets on `interfaces`.
    #[default]
    AfPacket,
    /// The eBPF classifier's per-address counters (`tg_addrs`).
    Ebpf,
    /// The flow collector's decoded records (`[guard] flows = true`),
    /// spread over their duration (`guard::spread`).
    Flows,
}

/// What the shell captures on, and how.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureSpec {
    /// Where the packets are counted (recordings made before the eBPF
    /// source read as AF_PACKET).
    #[serde(default)]
    pub source: CaptureSource,
    /// The interfaces (AF_PACKET, TPACKET_V3, fanout); empty for eBPF.
    pub interfaces: Vec<String>,
    /// The protected networks: traffic to them is `in`, from them `out`.
    pub networks: Vec<Prefix>,
    /// Reader threads per interface.
    pub threads: u16,
    /// Parse one frame in N, count it N times.
    pub sample_one_in: u32,
    /// The tick, in milliseconds.
    pub tick_ms: u64,
    /// The flow collector's records as well (`[guard] flows = true`
    /// beside `[guard.capture]`): a second input, merged with the
    /// capture's per address (`guard::larger_per_address`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub with_flows: bool,
}

/// What the capture counted in one tick besides the per-address samples
/// (deltas).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaptureCounts {
    /// Frames read from the rings.
    pub frames: u64,
    /// Packets the kernel dropped because a ring was full.
    pub kernel_drops: u64,
    /// Malformed frames (counted and skipped).
    pub malformed: u64,
    /// Packets of addresses beyond the capture's host table.
    pub overflow_packets: u64,
    /// Flow records about the protected networks taken from the
    /// collector (`source = flows`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flow_records: u64,
    /// Flow records dropped because the tap's queue was full.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flow_dropped: u64,
    /// Flow records not spread because the most addresses the spreader
    /// follows at once were followed already.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub flow_overflow: u64,
}

fn is_zero(v: &u64) -> bool {
    *v == 0
}

impl CaptureCounts {
    fn add(&mut self, o: &CaptureCounts) {
        self.frames += o.frames;
        self.kernel_drops += o.kernel_drops;
        self.malformed += o.malformed;
        self.overflow_packets += o.overflow_packets;
        self.flow_records += o.flow_records;
        self.flow_dropped += o.flow_dropped;
        self.flow_overflow += o.flow_overflow;
    }
}

/// One capture tick.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GuardTick {
    /// The per-address deltas, `at` on the shell's monotonic clock.
    pub observation: guard::Observation,
    /// The capture's own counts for the tick.
    pub capture: CaptureCounts,
    /// At the end of a scan window (every 10 s): remote sources and the
    /// distinct local addresses each reached; empty in the other ticks.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scans: Vec<guard::ScanSample>,
}

/// The guard's inputs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "guard")]
pub enum GuardInput {
    /// The ladder saved by an earlier run (`guard-state.json`), handed in
    /// once, before the first tick.
    Restore {
        /// Now, on the monotonic clock.
        at: Monotonic,
        /// What was saved.
        saved: SavedState,
    },
    /// A capture tick.
    Tick(GuardTick),
    /// The capture stopped by itself (or could not start).
    CaptureFailed {
        /// Why.
        error: String,
    },
}

/// What the shell must do for the guard.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "guard")]
pub enum GuardEffect {
    /// Capture with this (stopping any running capture first), or stop
    /// capturing (`None`).
    Capture {
        /// What to capture.
        spec: Option<CaptureSpec>,
        /// Whether the guard runs: without a capture (none configured, or
        /// one that failed) the shell then sends empty ticks once a
        /// second, so that holds and manual bans still run out.
        clock: bool,
    },
    /// Carry out one of the ladder's decisions (notify, add or remove a
    /// route…).
    Apply {
        /// The decision.
        decision: Box<Decision>,
    },
    /// Save the ladder's state (`guard-state.json`, atomically).
    Save {
        /// The state.
        state: SavedState,
    },
    /// A reload changed `[bgp]`: the speaker for the rtbh and flowspec
    /// rungs starts again with these peers (or stops), and announces again
    /// what the rungs hold. Not sent at start: the shell reads `[bgp]`
    /// from the first policy itself, to open the sessions before anything
    /// else.
    Bgp {
        /// The policy's `[bgp]` now.
        bgp: Option<Box<policy::Bgp>>,
    },
}

/// An operator's guard command (API `POST /api/v1/guard/ban|unban`, CLI
/// `tollgate guard ban|unban`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "guard")]
pub enum GuardCommand {
    /// Apply the ladder up to `rung` to `address`.
    Ban {
        /// The address.
        address: IpAddr,
        /// Which way (`in` unless given).
        direction: Option<Direction>,
        /// The highest rung; the global ladder's top rung if `None`.
        rung: Option<Rung>,
        /// How long; the rung's hold if `None` (and not permanent).
        duration: Option<Duration>,
        /// Until unbanned.
        permanent: bool,
    },
    /// Remove every rung from an address, or from a group's total
    /// incident (by the group's name).
    Unban {
        /// An address, or a group's name.
        target: String,
        /// Which way; both if `None`.
        direction: Option<Direction>,
    },
}

/// What the API and the CLI show about the guard.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GuardView {
    /// The time the view is as of, on the monotonic clock.
    pub at: Monotonic,
    /// The open incidents.
    pub incidents: Vec<IncidentView>,
    /// The detector's counts.
    pub stats: Stats,
    /// Ticks fed to the detector.
    pub ticks: u64,
    /// The capture's counts since the daemon started.
    pub capture: CaptureCounts,
    /// What is captured, if anything.
    pub spec: Option<CaptureSpec>,
    /// Why the capture is not running, if it stopped.
    pub capture_error: Option<String>,
    /// The protected networks.
    pub networks: Vec<Prefix>,
    /// Sources that scanned our addresses, the most recently seen first.
    pub scans: Vec<guard::Scan>,
    /// What makes a scan: distinct addresses in one 10 s window.
    pub scan_targets: u64,
}

/// The guard's part of the engine.
#[derive(Default)]
pub(crate) struct Guard {
    detector: Option<Detector>,
    spec: Option<CaptureSpec>,
    /// The last time seen (tick or restore), for commands.
    now: Monotonic,
    ticks: u64,
    totals: CaptureCounts,
    capture_error: Option<String>,
    /// Whether the saved state was handed in already (it is taken once).
    restored: bool,
    /// Whether the shell was told what to capture for the detector in
    /// place (at start, or since `[guard]` came back).
    told: bool,
    /// The running policy's `[bgp]` without its places in the file
    /// (moving the section is no change); `None` before the first policy.
    bgp: Option<serde_json::Value>,
    /// Scanning sources on record.
    scans: guard::ScanBook,
}

/// `[bgp]`'s settings as a value that compares equal when only the
/// places in the file differ.
fn bgp_settings(bgp: Option<&policy::Bgp>) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(m) => {
                m.remove("span");
                m.values_mut().for_each(strip);
            }
            serde_json::Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let mut v = serde_json::to_value(bgp).unwrap_or(serde_json::Value::Null);
    strip(&mut v);
    v
}

/// The detector's configuration and the capture for `policy`; `None`
/// without `[guard]`.
fn configure(policy: &Policy) -> Result<Option<(guard::Config, Option<CaptureSpec>)>, String> {
    let Some(g) = policy.guard.as_ref() else {
        return Ok(None);
    };
    let config = g.config(policy);
    let errors = config.check();
    if !errors.is_empty() {
        let list: Vec<String> = errors.iter().map(ToString::to_string).collect();
        return Err(format!(
            "the guard's configuration is not usable: {}",
            list.join("; ")
        ));
    }
    if g.flows.value && g.capture.is_none() {
        return Ok(Some((
            config.clone(),
            Some(CaptureSpec {
                source: CaptureSource::Flows,
                interfaces: Vec::new(),
                networks: config.networks,
                threads: 1,
                sample_one_in: 1,
                tick_ms: 100,
                with_flows: false,
            }),
        )));
    }
    let spec = g.capture.as_ref().map(|c| CaptureSpec {
        source: match c.source.value {
            policy::CaptureSource::AfPacket => CaptureSource::AfPacket,
            policy::CaptureSource::Ebpf => CaptureSource::Ebpf,
        },
        interfaces: c.interfaces.iter().map(ToString::to_string).collect(),
        networks: config.networks.clone(),
        threads: c.threads.max(1),
        sample_one_in: c.sample_one_in.max(1),
        tick_ms: u64::try_from(c.tick.as_millis()).unwrap_or(u64::MAX).max(1),
        with_flows: g.flows.value,
    });
    Ok(Some((config, spec)))
}

impl Guard {
    /// The view, if the policy has a guard.
    pub(crate) fn view(&self) -> Option<GuardView> {
        let d = self.detector.as_ref()?;
        Some(GuardView {
            at: self.now,
            incidents: d.incidents(self.now),
            stats: d.stats(),
            ticks: self.ticks,
            capture: self.totals,
            spec: self.spec.clone(),
            capture_error: self.capture_error.clone(),
            networks: d.config().networks.clone(),
            scans: self.scans.recent(),
            scan_targets: self.scans.config().targets,
        })
    }
}

fn apply_all(decisions: Vec<Decision>, out: &mut Vec<Effect>) {
    for decision in decisions {
        out.push(Effect::Guard(GuardEffect::Apply {
            decision: Box::new(decision),
        }));
    }
}

impl Engine {
    /// Sets the guard up for the running policy: at start, and after a
    /// reload or an API write (a tenant's prefixes are a group). The
    /// detector is rebuilt only if its configuration changed, and the
    /// capture restarted only if its own settings did.
    pub(crate) fn guard_policy(&mut self, now: Timestamp, out: &mut Vec<Effect>) {
        let policy = self.running.policy.clone();
        let bgp = bgp_settings(policy.bgp.as_ref());
        match &self.guard.bgp {
            Some(was) if *was != bgp => {
                self.event(
                    out,
                    now,
                    Level::Info,
                    "bgp_reconfigured",
                    "[bgp] changed: the speaker for the rtbh and flowspec rungs starts again with the new peers".into(),
                    None,
                );
                out.push(Effect::Guard(GuardEffect::Bgp {
                    bgp: policy.bgp.clone().map(Box::new),
                }));
            }
            _ => {}
        }
        self.guard.bgp = Some(bgp);
        let next = match configure(&policy) {
            Ok(n) => n,
            Err(e) => {
                // The policy validated, so this is a bug or a limit the
                // validation does not know: keep what runs and say so.
                self.event(out, now, Level::Error, "guard_failed", e, None);
                return;
            }
        };
        let Some((config, spec)) = next else {
            if self.guard.detector.take().is_some() {
                // Rungs in place stay in place (the routes outlive the
                // daemon too): only the detection stops. The saved state
                // is kept for a policy that brings `[guard]` back.
                self.event(
                    out,
                    now,
                    Level::Warn,
                    "guard_stopped",
                    "[guard] was removed from the policy: the capture stops; rungs in place stay until `tollgate guard unban` in a policy with [guard], or `tollgate down`".into(),
                    None,
                );
            }
            self.guard.spec = None;
            if std::mem::take(&mut self.guard.told) {
                out.push(Effect::Guard(GuardEffect::Capture {
                    spec: None,
                    clock: false,
                }));
            }
            return;
        };
        if let Some(g) = &policy.guard {
            self.guard.scans.reconfigure(guard::ScanConfig {
                targets: g.scan_targets,
                ..guard::ScanConfig::default()
            });
        }
        let built = match &self.guard.detector {
            Some(d) if d.config() == &config => None,
            Some(d) => Some(
                d.reconfigure(config, self.guard.now)
                    .map_err(|e| e.to_string()),
            ),
            None => Some(
                Detector::new(config)
                    .map(|d| (d, Vec::new()))
                    .map_err(|e| e.to_string()),
            ),
        };
        match built {
            None => {}
            Some(Ok((d, decisions))) => {
                let changed = !decisions.is_empty();
                self.guard.detector = Some(d);
                apply_all(decisions, out);
                if changed {
                    self.guard_save(out);
                }
            }
            Some(Err(e)) => {
                self.event(
                    out,
                    now,
                    Level::Error,
                    "guard_failed",
                    format!("the guard's configuration: {e}"),
                    None,
                );
                return;
            }
        }
        // A capture that failed is started again by any reload (the
        // interface may exist now).
        if self.guard.spec != spec || !self.guard.told || self.guard.capture_error.is_some() {
            if spec.is_none() {
                self.event(
                    out,
                    now,
                    Level::Warn,
                    "guard_no_capture",
                    "[guard] has no [guard.capture] interfaces: nothing is captured, so nothing is detected (bans by hand still work)".into(),
                    None,
                );
            }
            self.guard.spec = spec.clone();
            self.guard.capture_error = None;
            self.guard.told = true;
            out.push(Effect::Guard(GuardEffect::Capture { spec, clock: true }));
        }
    }

    fn guard_save(&self, out: &mut Vec<Effect>) {
        if let Some(d) = &self.guard.detector {
            out.push(Effect::Guard(GuardEffect::Save {
                state: d.save(self.guard.now),
            }));
        }
    }

    /// One of the guard's inputs.
    pub(crate) fn guard_input(&mut self, now: Timestamp, input: GuardInput, out: &mut Vec<Effect>) {
        match input {
            GuardInput::Restore { at, saved } => {
                self.guard.now = self.guard.now.max(at);
                if self.guard.restored {
                    return;
                }
                self.guard.restored = true;
                let Some(d) = &self.guard.detector else {
                    if !saved.incidents.is_empty() {
                        self.event(out, now, Level::Warn, "guard_state_ignored", format!("the saved guard state has {} incidents, but the policy has no [guard]: they are not restored (their routes stay until `tollgate down`)", saved.incidents.len()), None);
                    }
                    return;
                };
                match Detector::restore(d.config().clone(), &saved, at) {
                    Ok((mut d, mut decisions)) => {
                        d.stamp(now.as_millisecond(), &mut decisions);
                        if !saved.incidents.is_empty() {
                            self.event(
                                out,
                                now,
                                Level::Info,
                                "guard_restored",
                                format!(
                                    "guard: {} incidents restored from the saved state",
                                    d.incidents(at).len()
                                ),
                                None,
                            );
                        }
                        self.guard.detector = Some(d);
                        let changed = !decisions.is_empty();
                        apply_all(decisions, out);
                        if changed {
                            self.guard_save(out);
                        }
                    }
                    Err(e) => self.event(
                        out,
                        now,
                        Level::Error,
                        "guard_state_ignored",
                        format!(
                            "the saved guard state cannot be restored ({e}); starting without it"
                        ),
                        None,
                    ),
                }
            }
            GuardInput::Tick(t) => {
                self.guard.now = self.guard.now.max(t.observation.at);
                self.guard.ticks += 1;
                self.guard.totals.add(&t.capture);
                if self.guard.detector.is_none() {
                    return;
                }
                if !t.scans.is_empty() {
                    let window = std::time::Duration::from_secs(10);
                    for x in self.guard.scans.observe(t.observation.at, &t.scans) {
                        let msg = format!(
                            "guard: {} is scanning: {} of our addresses in {} s ({} packets)",
                            x.source,
                            x.max_targets,
                            window.as_secs(),
                            x.packets
                        );
                        self.event(out, now, Level::Warn, "guard_scan", msg, None);
                    }
                }
                let Some(d) = &mut self.guard.detector else {
                    return;
                };
                let mut decisions = d.tick(&t.observation);
                if decisions.is_empty() {
                    return;
                }
                d.stamp(now.as_millisecond(), &mut decisions);
                for dec in &decisions {
                    match dec {
                        Decision::Start(s) => {
                            let msg = format!(
                                "guard: {} {} attacked ({}, {} pps): {} rung applied",
                                s.target,
                                s.direction.as_script_word(),
                                s.attack.kind,
                                s.attack.peak_pps.max(s.attack.trigger.rate),
                                s.rung
                            );
                            self.event(out, now, Level::Warn, "guard_ban", msg, None);
                        }
                        Decision::Stop { step, ended: true } => {
                            let msg = format!(
                                "guard: the attack on {} {} is over ({}, peak {} pps)",
                                step.target,
                                step.direction.as_script_word(),
                                step.attack.kind,
                                step.attack.peak_pps
                            );
                            self.event(out, now, Level::Info, "guard_unban", msg, None);
                        }
                        _ => {}
                    }
                }
                apply_all(decisions, out);
                self.guard_save(out);
            }
            GuardInput::CaptureFailed { error } => {
                self.event(
                    out,
                    now,
                    Level::Error,
                    "guard_capture_failed",
                    format!("guard: the capture stopped: {error}; nothing is detected until a reload restarts it"),
                    None,
                );
                self.guard.capture_error = Some(error);
            }
        }
    }

    /// An operator's ban or unban.
    pub(crate) fn guard_command(
        &mut self,
        now: Timestamp,
        id: u64,
        command: GuardCommand,
        out: &mut Vec<Effect>,
    ) {
        let answer = self.guard_answer(now, command, out);
        out.push(Effect::Reply { id, answer });
    }

    fn guard_answer(
        &mut self,
        now: Timestamp,
        command: GuardCommand,
        out: &mut Vec<Effect>,
    ) -> Answer {
        let at = self.guard.now;
        let Some(d) = &mut self.guard.detector else {
            return Answer::Failed {
                message: "the policy has no [guard] section; the guard is not running".into(),
            };
        };
        let (cmd, summary) = match command {
            GuardCommand::Ban {
                address,
                direction,
                rung,
                duration,
                permanent,
            } => {
                let direction = direction.unwrap_or(Direction::In);
                let Some(rung) = rung.or_else(|| d.config().ladder.last().map(|r| r.rung())) else {
                    return Answer::Invalid {
                        message: "the guard's ladder has no rung".into(),
                        diagnostics: Vec::new(),
                    };
                };
                let how = match (permanent, duration) {
                    (true, _) => "permanently".to_string(),
                    (false, Some(d)) => format!("for {}s", d.as_secs()),
                    (false, None) => "for the rung's hold".to_string(),
                };
                let summary = format!(
                    "banned {address} {} up to rung `{rung}` {how}",
                    direction.as_script_word()
                );
                let cmd = if permanent {
                    guard::Command::Permanent {
                        addr: address,
                        direction,
                        rung,
                    }
                } else {
                    guard::Command::Ban {
                        addr: address,
                        direction,
                        rung,
                        duration,
                    }
                };
                (cmd, summary)
            }
            GuardCommand::Unban { target, direction } => {
                let cmd = match target.parse::<IpAddr>() {
                    Ok(addr) => guard::Command::Unban { addr, direction },
                    Err(_) => guard::Command::UnbanGroup {
                        group: target.clone(),
                        direction,
                    },
                };
                (cmd, format!("unbanned {target}"))
            }
        };
        match d.command(at, &cmd) {
            Ok(mut decisions) => {
                d.stamp(now.as_millisecond(), &mut decisions);
                let applied = decisions.len();
                apply_all(decisions, out);
                self.guard_save(out);
                self.event(
                    out,
                    now,
                    Level::Info,
                    "guard_command",
                    format!("guard: {summary}"),
                    None,
                );
                Answer::Done {
                    message: summary,
                    applied,
                    failed: 0,
                }
            }
            Err(e) => {
                let message = e.to_string();
                match e {
                    guard::CommandError::NotBanned(_) | guard::CommandError::GroupNotBanned(_) => {
                        Answer::NotFound { message }
                    }
                    guard::CommandError::OutsideNetworks(_)
                    | guard::CommandError::NotInLadder(_)
                    | guard::CommandError::Refused(..)
                    | guard::CommandError::TooMany => Answer::Invalid {
                        message,
                        diagnostics: Vec::new(),
                    },
                }
            }
        }
    }

    /// Saves the ladder once more before the daemon exits, so the holds
    /// left are as of the stop, not of the last change.
    pub(crate) fn guard_stop(&self, out: &mut Vec<Effect>) {
        if self
            .guard
            .detector
            .as_ref()
            .is_some_and(|d| d.stats().incidents > 0)
        {
            self.guard_save(out);
        }
    }

    /// The guard's view, for the snapshot.
    pub fn guard_view(&self) -> Option<GuardView> {
        self.guard.view()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::{Command, Input, Intervals, PolicyText, Start};
    use guard::{HostCounters, HostSample, Observation};

    const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }

[plans.home]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }

[[tenants]]
id = 1
name = "victim"
plan = "home"
prefixes = ["203.0.113.0/24"]

[guard]
networks = ["203.0.113.0/24"]
instant = "0s"
calm = "2s"

[guard.capture]
interfaces = ["wan0"]

[guard.thresholds]
pps_in = 1000

[[guard.ladder]]
rung = "notify"
hold = "10s"
script = "/usr/local/bin/notify"

[[guard.ladder]]
rung = "blackhole"
after = "1s"
hold = "30s"
"#;

    const VICTIM: &str = "203.0.113.7";

    fn text(policy: &str) -> PolicyText {
        PolicyText {
            name: "guard.toml".into(),
            text: policy.into(),
            files: Default::default(),
        }
    }

    fn start(policy: &str) -> (Engine, Vec<Effect>) {
        let s = Start {
            policy: text(policy),
            settings: None,
            resume: None,
            records: Default::default(),
            intervals: Intervals {
                read_ms: 10_000,
                reconcile_ms: 60_000,
            },
            flows: false,
            transit: Default::default(),
        };
        Engine::start(t0(), s).unwrap()
    }

    fn t0() -> Timestamp {
        "2026-12-06T12:00:00Z".parse().unwrap()
    }

    /// A tick at `ms` on the monotonic clock, with `pps` SYN towards the
    /// victim over the 100 ms before it.
    fn tick(ms: u64, pps: u64) -> Input {
        let packets = pps / 10;
        let hosts = if packets == 0 {
            Vec::new()
        } else {
            vec![HostSample {
                addr: VICTIM.parse().unwrap(),
                direction: Direction::In,
                counters: HostCounters {
                    packets,
                    bytes: packets * 60,
                    tcp_packets: packets,
                    tcp_bytes: packets * 60,
                    tcp_syn: packets,
                    ..HostCounters::default()
                },
            }]
        };
        Input::Guard(GuardInput::Tick(GuardTick {
            observation: Observation {
                at: Monotonic::from_millis(ms),
                hosts,
            },
            capture: CaptureCounts {
                frames: packets,
                ..CaptureCounts::default()
            },
            scans: Vec::new(),
        }))
    }

    /// The guard's effects only, and the replies.
    fn guard_effects(effects: Vec<Effect>) -> Vec<Effect> {
        effects
            .into_iter()
            .filter(|e| matches!(e, Effect::Guard(_) | Effect::Reply { .. }))
            .collect()
    }

    fn decisions(effects: &[Effect]) -> Vec<(String, Rung)> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Guard(GuardEffect::Apply { decision }) => {
                    let kind = match decision.as_ref() {
                        Decision::Start(_) => "start",
                        Decision::Escalate { .. } => "escalate",
                        Decision::Stop { .. } => "stop",
                        Decision::Restore(_) => "restore",
                        Decision::Update(_) => "update",
                        Decision::Refused { .. } => "refused",
                    };
                    decision.step().map(|s| (kind.to_string(), s.rung))
                }
                _ => None,
            })
            .collect()
    }

    fn saved(effects: &[Effect]) -> Option<SavedState> {
        effects.iter().rev().find_map(|e| match e {
            Effect::Guard(GuardEffect::Save { state }) => Some(state.clone()),
            _ => None,
        })
    }

    fn reply(effects: &[Effect]) -> &Answer {
        effects
            .iter()
            .find_map(|e| match e {
                Effect::Reply { answer, .. } => Some(answer),
                _ => None,
            })
            .expect("a reply")
    }

    fn command(e: &mut Engine, id: u64, guard: GuardCommand) -> Vec<Effect> {
        guard_effects(e.handle(
            t0(),
            Input::Command {
                id,
                command: Command::Guard { guard },
            },
        ))
    }

    /// Runs a flood from 100 ms to `until` ms: the effects of every tick.
    fn flood(e: &mut Engine, until: u64) -> Vec<Effect> {
        let mut out = guard_effects(e.handle(t0(), tick(0, 0)));
        for ms in (100..=until).step_by(100) {
            out.extend(guard_effects(e.handle(t0(), tick(ms, 20_000))));
        }
        out
    }

    #[test]
    fn a_guard_section_starts_the_capture_and_none_stops_it() {
        let (mut e, first) = start(POLICY);
        let spec = first.iter().find_map(|e| match e {
            Effect::Guard(GuardEffect::Capture { spec, clock: true }) => Some(spec.clone()),
            _ => None,
        });
        let spec = spec.expect("a capture").expect("interfaces");
        assert_eq!(spec.interfaces, ["wan0"]);
        assert_eq!(spec.networks, [Prefix::parse("203.0.113.0/24").unwrap()]);
        assert_eq!(spec.tick_ms, 100);
        assert!(e.snapshot(t0()).guard.is_some());

        let without = POLICY.split("[guard]").next().unwrap();
        let out = e.handle(t0(), Input::PolicyRead(Box::new(text(without))));
        assert!(
            out.contains(&Effect::Guard(GuardEffect::Capture {
                spec: None,
                clock: false
            })),
            "{out:?}"
        );
        assert!(e.snapshot(t0()).guard.is_none());
        // A ban without a guard is refused, and says why.
        let out = command(
            &mut e,
            1,
            GuardCommand::Ban {
                address: VICTIM.parse().unwrap(),
                direction: None,
                rung: None,
                duration: None,
                permanent: false,
            },
        );
        assert!(matches!(reply(&out), Answer::Failed { message } if message.contains("[guard]")));
    }

    #[test]
    fn a_flood_climbs_the_ladder_and_each_change_is_saved() {
        let (mut e, _) = start(POLICY);
        let out = flood(&mut e, 1_500);
        let d = decisions(&out);
        assert_eq!(d[0], ("start".to_string(), Rung::Notify), "{d:?}");
        assert!(
            d.contains(&("escalate".to_string(), Rung::Blackhole)),
            "{d:?}"
        );
        // The blackhole came at least `after` (1 s) after the start.
        let saved = saved(&out).expect("saved");
        assert_eq!(saved.incidents.len(), 1);
        assert_eq!(saved.incidents[0].rungs.len(), 2);
        let view = e.snapshot(t0()).guard.unwrap();
        assert_eq!(view.incidents.len(), 1);
        assert_eq!(view.ticks, 16);
        assert_eq!(view.capture.frames, 15 * 2_000);
        assert_eq!(view.at, Monotonic::from_millis(1_500));
        // The blackhole's hold is left nearly whole.
        let (rung, _, left) = *view.incidents[0].rungs.last().unwrap();
        assert_eq!(rung, Rung::Blackhole);
        assert!(left > Duration::from_secs(29), "{left:?}");
    }

    #[test]
    fn a_restarted_engine_restores_the_saved_bans() {
        let (mut e, _) = start(POLICY);
        let out = flood(&mut e, 1_500);
        let state = saved(&out).unwrap();
        // A new process: its monotonic clock starts again.
        let (mut e2, _) = start(POLICY);
        let out = guard_effects(e2.handle(
            t0(),
            Input::Guard(GuardInput::Restore {
                at: Monotonic::from_millis(50),
                saved: state.clone(),
            }),
        ));
        assert_eq!(
            decisions(&out),
            [
                ("restore".to_string(), Rung::Notify),
                ("restore".to_string(), Rung::Blackhole)
            ]
        );
        let view = e2.snapshot(t0()).guard.unwrap();
        assert_eq!(view.incidents.len(), 1);
        // Taken once: a second hand-in changes nothing.
        let again = e2.handle(
            t0(),
            Input::Guard(GuardInput::Restore {
                at: Monotonic::from_millis(60),
                saved: state,
            }),
        );
        assert!(decisions(&again).is_empty());
    }

    #[test]
    fn bans_and_unbans_by_hand_answer_and_refuse_what_they_must() {
        let (mut e, _) = start(POLICY);
        guard_effects(e.handle(t0(), tick(0, 0)));
        let ban = |addr: &str, rung: Option<Rung>, permanent: bool| GuardCommand::Ban {
            address: addr.parse().unwrap(),
            direction: None,
            rung,
            duration: Some(Duration::from_secs(60)).filter(|_| !permanent),
            permanent,
        };
        // Outside the networks: refused, nothing decided.
        let out = command(&mut e, 1, ban("192.0.2.1", None, false));
        assert!(matches!(reply(&out), Answer::Invalid { .. }), "{out:?}");
        assert!(decisions(&out).is_empty());
        // Inside: every rung up to the top one (blackhole), and saved.
        let out = command(&mut e, 2, ban(VICTIM, None, true));
        assert!(
            matches!(reply(&out), Answer::Done { message, .. } if message.contains("permanently"))
        );
        assert_eq!(
            decisions(&out),
            [
                ("start".to_string(), Rung::Notify),
                ("escalate".to_string(), Rung::Blackhole)
            ]
        );
        assert!(saved(&out).is_some());
        let view = e.snapshot(t0()).guard.unwrap();
        assert_eq!(view.incidents[0].hold, guard::Hold::Permanent);
        // Unban: every rung comes down, top first.
        let unban = |target: &str| GuardCommand::Unban {
            target: target.into(),
            direction: None,
        };
        let out = command(&mut e, 3, unban(VICTIM));
        assert!(matches!(reply(&out), Answer::Done { .. }));
        assert_eq!(
            decisions(&out),
            [
                ("stop".to_string(), Rung::Blackhole),
                ("stop".to_string(), Rung::Notify)
            ]
        );
        assert!(e.snapshot(t0()).guard.unwrap().incidents.is_empty());
        // Nothing left to unban: not found, for an address or a group.
        let out = command(&mut e, 4, unban(VICTIM));
        assert!(matches!(reply(&out), Answer::NotFound { .. }));
        let out = command(&mut e, 5, unban("tenant-1"));
        assert!(matches!(reply(&out), Answer::NotFound { .. }));
    }

    #[test]
    fn a_reload_keeps_the_incidents_and_restarts_the_capture_only_if_it_changed() {
        let (mut e, _) = start(POLICY);
        flood(&mut e, 1_500);
        // A higher threshold: the incident carries over (reconfigured);
        // the capture is the same, so it is not restarted.
        let out = e.handle(
            t0(),
            Input::PolicyRead(Box::new(text(
                &POLICY.replace("pps_in = 1000", "pps_in = 5000"),
            ))),
        );
        assert!(
            !out.iter()
                .any(|e| matches!(e, Effect::Guard(GuardEffect::Capture { .. }))),
            "{out:?}"
        );
        assert_eq!(e.snapshot(t0()).guard.unwrap().incidents.len(), 1);
        // Another interface: the capture restarts with it.
        let out = e.handle(
            t0(),
            Input::PolicyRead(Box::new(text(&POLICY.replace(
                "interfaces = [\"wan0\"]",
                "interfaces = [\"wan0\", \"lan0\"]",
            )))),
        );
        let spec = out.iter().find_map(|e| match e {
            Effect::Guard(GuardEffect::Capture { spec, .. }) => spec.clone(),
            _ => None,
        });
        assert_eq!(spec.unwrap().interfaces, ["wan0", "lan0"]);
        // Networks that no longer hold the victim: its blackhole is
        // stopped (never a route outside the networks).
        let out = e.handle(
            t0(),
            Input::PolicyRead(Box::new(text(&POLICY.replace(
                "networks = [\"203.0.113.0/24\"]",
                "networks = [\"198.51.100.0/24\"]",
            )))),
        );
        let d = decisions(&out);
        assert!(d.contains(&("stop".to_string(), Rung::Blackhole)), "{d:?}");
    }

    #[test]
    fn without_a_capture_the_clock_runs_out_a_ban() {
        let policy = POLICY.replace("[guard.capture]\ninterfaces = [\"wan0\"]\n", "");
        let (mut e, first) = start(&policy);
        assert!(
            first.contains(&Effect::Guard(GuardEffect::Capture {
                spec: None,
                clock: true
            })),
            "{first:?}"
        );
        let out = command(
            &mut e,
            1,
            GuardCommand::Ban {
                address: VICTIM.parse().unwrap(),
                direction: None,
                rung: Some(Rung::Notify),
                duration: Some(Duration::from_secs(2)),
                permanent: false,
            },
        );
        assert_eq!(decisions(&out), [("start".to_string(), Rung::Notify)]);
        // The shell's clock: an empty tick a second.
        let mut stopped = None;
        for s in 1..=4 {
            let out = guard_effects(e.handle(t0(), tick(s * 1_000, 0)));
            if decisions(&out).contains(&("stop".to_string(), Rung::Notify)) {
                stopped.get_or_insert(s);
            }
        }
        assert_eq!(stopped, Some(2));
        // A failed capture shows until the capture is started again.
        e.handle(
            t0(),
            Input::Guard(GuardInput::CaptureFailed {
                error: "no such device".into(),
            }),
        );
        e.handle(t0(), tick(5_000, 0));
        let v = e.snapshot(t0()).guard.unwrap();
        assert_eq!(v.capture_error.as_deref(), Some("no such device"));
        // A reload, even of the same policy, starts it again.
        let out = e.handle(t0(), Input::PolicyRead(Box::new(text(&policy))));
        assert!(
            out.iter()
                .any(|e| matches!(e, Effect::Guard(GuardEffect::Capture { clock: true, .. }))),
            "{out:?}"
        );
        assert_eq!(e.snapshot(t0()).guard.unwrap().capture_error, None);
    }

    #[test]
    fn guard_inputs_record_and_replay_to_the_same_effects() {
        let inputs: Vec<Input> = (0..=15).map(|i| tick(i * 100, 20_000)).collect();
        let (mut a, _) = start(POLICY);
        let (mut b, _) = start(POLICY);
        for input in inputs {
            let line = serde_json::to_string(&input).unwrap();
            let back: Input = serde_json::from_str(&line).unwrap();
            assert_eq!(back, input);
            let ea = serde_json::to_string(&a.handle(t0(), input)).unwrap();
            let eb = serde_json::to_string(&b.handle(t0(), back)).unwrap();
            assert_eq!(ea, eb);
        }
        let restore = Input::Guard(GuardInput::Restore {
            at: Monotonic::from_millis(5),
            saved: a
                .guard
                .detector
                .as_ref()
                .unwrap()
                .save(Monotonic::from_secs(2)),
        });
        let line = serde_json::to_string(&restore).unwrap();
        assert_eq!(serde_json::from_str::<Input>(&line).unwrap(), restore);
        let cmd = Input::Command {
            id: 9,
            command: Command::Guard {
                guard: GuardCommand::Unban {
                    target: VICTIM.into(),
                    direction: Some(Direction::In),
                },
            },
        };
        let line = serde_json::to_string(&cmd).unwrap();
        assert_eq!(serde_json::from_str::<Input>(&line).unwrap(), cmd);
    }

    #[test]
    fn a_reload_that_changes_bgp_restarts_the_speaker_and_one_that_moves_it_does_not() {
        const BGP: &str = "\n[bgp]\nlocal_as = 65000\nrouter_id = \"198.51.100.1\"\n\n[[bgp.peers]]\naddress = \"198.51.100.2\"\nremote_as = 65001\nannounce = true\n";
        let (mut e, first) = start(&format!("{POLICY}{BGP}"));
        let told = |out: &[Effect]| {
            out.iter()
                .filter_map(|o| match o {
                    Effect::Guard(GuardEffect::Bgp { bgp }) => Some(bgp.clone()),
                    _ => None,
                })
                .collect::<Vec<_>>()
        };
        // At start the shell reads [bgp] itself.
        assert!(told(&first).is_empty(), "{first:?}");
        // The same section elsewhere in the file: nothing to do.
        let moved = format!("{BGP}{POLICY}");
        let out = e.handle(t0(), Input::PolicyRead(Box::new(text(&moved))));
        assert!(told(&out).is_empty(), "{out:?}");
        // Another peer: the speaker starts again with both.
        let more = format!(
            "{moved}\n[[bgp.peers]]\naddress = \"198.51.100.3\"\nremote_as = 65002\nannounce = true\n"
        );
        let out = e.handle(t0(), Input::PolicyRead(Box::new(text(&more))));
        let t = told(&out);
        assert_eq!(t.len(), 1, "{out:?}");
        assert_eq!(t[0].as_ref().unwrap().peers.len(), 2);
        assert!(out
            .iter()
            .any(|o| matches!(o, Effect::Event(ev) if ev.kind == "bgp_reconfigured")));
        // [bgp] gone: the speaker stops.
        let out = e.handle(t0(), Input::PolicyRead(Box::new(text(POLICY))));
        assert_eq!(told(&out), vec![None]);
    }

    #[test]
    fn a_source_reaching_many_addresses_is_a_scan_event_and_in_the_view() {
        let (mut e, _) = start(&POLICY.replace("pps_in = 1000", "pps_in = 1000\n"));
        let scan = |ms: u64, targets: u64| {
            Input::Guard(GuardInput::Tick(GuardTick {
                observation: Observation {
                    at: Monotonic::from_millis(ms),
                    hosts: Vec::new(),
                },
                capture: CaptureCounts::default(),
                scans: vec![guard::ScanSample {
                    source: "198.51.100.66".parse().unwrap(),
                    targets,
                    packets: targets,
                }],
            }))
        };
        // Under the default 64: nothing.
        let out = e.handle(t0(), scan(10_000, 40));
        assert!(!out
            .iter()
            .any(|o| matches!(o, Effect::Event(ev) if ev.kind == "guard_scan")));
        let out = e.handle(t0(), scan(20_000, 200));
        let events: Vec<&str> = out
            .iter()
            .filter_map(|o| match o {
                Effect::Event(ev) if ev.kind == "guard_scan" => Some(ev.message.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(
            events,
            vec!["guard: 198.51.100.66 is scanning: 200 of our addresses in 10 s (200 packets)"]
        );
        // The next window of the same scan is no new event.
        let out = e.handle(t0(), scan(30_000, 180));
        assert!(!out
            .iter()
            .any(|o| matches!(o, Effect::Event(ev) if ev.kind == "guard_scan")));
        let v = e.guard_view().unwrap();
        assert_eq!(v.scans.len(), 1);
        assert_eq!((v.scans[0].windows, v.scans[0].max_targets), (2, 200));
        assert_eq!(v.scan_targets, 64);
        // The policy may raise the bar, or turn it off.
        e.handle(
            t0(),
            Input::PolicyRead(Box::new(text(
                &POLICY.replace("calm = \"2s\"", "calm = \"2s\"\nscan_targets = 0"),
            ))),
        );
        assert_eq!(e.guard_view().unwrap().scan_targets, 0);
        let out = e.handle(t0(), scan(90_000, 5_000));
        assert!(!out
            .iter()
            .any(|o| matches!(o, Effect::Event(ev) if ev.kind == "guard_scan")));
    }
}
