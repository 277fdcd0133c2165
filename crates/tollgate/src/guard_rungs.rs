//! The guard's rungs carried out, shared by `tollgate guard watch` and
//! the daemon (`tollgate run`): the detector (pure) decides, this does.
//!
//! - `notify`: the script is spawned with FastNetMon's arguments
//!   (`IP incoming|outgoing PPS ban|unban`) and the JSON report on stdin,
//!   and the same report is POSTed to the webhook (HTTP or HTTPS);
//!   through [`crate::notify`], so a slow script or receiver never holds
//!   up the caller's loop;
//! - `blackhole`: a kernel blackhole route per prefix, through
//!   `linux_dataplane::blackhole` (marked with its own routing protocol,
//!   so only tollgate's routes are ever removed);
//! - `rtbh`: the prefixes announced with the rung's communities to the
//!   policy's `[bgp]` peers with `announce = true` (`crate::bgp_rungs`),
//!   withdrawn when the rung ends;
//! - `flowspec`: the step's rules announced the same way to peers that
//!   also have `flowspec = true`;
//! - `throttle` and `drop`: the victim's prefixes (or, for a signature
//!   drop, prefix . protocol . source port) added to the sets the compiler
//!   prepared in tollgate's nftables table (`plan::guard`), through
//!   `linux_dataplane::guard_sets`, and removed when the rung ends: the
//!   elements each rung holds are remembered, and every change refills
//!   the sets it touches with all of them (one transaction), also after
//!   a restart and after the daemon applies a plan that (re)created a set
//!   ([`Rungs::reassert`]). With the eBPF classifier (no nftables table)
//!   a `drop` rung's elements are the XDP drop list's entries instead
//!   (`linux_dataplane::xdp`, put in place after every apply by `xdp_list.rs`),
//!   written the same way: every change makes the list's rung entries
//!   exactly those the rungs in place hold.
//!
//! Also here: a capture tick as the detector's observation, the
//! ladder's state file (`guard-state.json`) read and written, and each
//! ended attack's report appended to `guard-history.jsonl`.

use crate::bgp_rungs::BgpRungs;
use crate::error::{Error, Result};
use crate::notify::Notifier;
use api::guard::AttackRecord;
use guard::{
    Action, Decision, Direction, HostCounters, HostSample, Monotonic, Observation, Rung,
    SavedState, Step, Target,
};
use linux_dataplane::blackhole::{Added, Blackholes};
use linux_dataplane::guard_sets::GuardSets;
use packet_capture::TickReport;
use plan::guard::{GuardElement, Way};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// One tick's report as the detector's observation, field by field.
pub fn observation(t: &TickReport, origin: Instant) -> Observation {
    Observation {
        at: Monotonic(t.ended.saturating_duration_since(origin)),
        hosts: t
            .hosts
            .iter()
            .map(|h| {
                let c = &h.counters;
                HostSample {
                    addr: h.addr,
                    direction: match h.direction {
                        packet_capture::Direction::In => Direction::In,
                        packet_capture::Direction::Out => Direction::Out,
                    },
                    counters: HostCounters {
                        packets: c.packets,
                        bytes: c.bytes,
                        tcp_packets: c.tcp_packets,
                        tcp_bytes: c.tcp_bytes,
                        udp_packets: c.udp_packets,
                        udp_bytes: c.udp_bytes,
                        icmp_packets: c.icmp_packets,
                        icmp_bytes: c.icmp_bytes,
                        tcp_syn: c.tcp_syn,
                        fragments: c.fragments,
                        fragment_bytes: c.fragment_bytes,
                        flows: h.flows,
                        top_udp_src_ports: h.top_udp_src_ports.as_slice().to_vec().into(),
                        top_dst_ports: h.top_dst_ports.as_slice().to_vec().into(),
                        top_sources: sources(&h.top_sources),
                        min_packet_len: h.min_packet_len,
                        max_packet_len: h.max_packet_len,
                    },
                }
            })
            .collect(),
    }
}

/// A tick's busiest sources in the detector's form.
fn sources(t: &packet_capture::TopSources) -> guard::TopSources {
    let mut out = guard::TopSources::new();
    for s in t.as_slice() {
        out.add(s.addr, u64::from(s.packets), u64::from(s.bytes));
    }
    out
}

/// The saved ladder, if there is one. An unreadable file is logged and
/// taken as none: the guard must start (a damaged file must not leave the
/// network undefended); the routes it named stay until `tollgate down`.
pub fn read_state(path: &Path) -> Result<Option<SavedState>> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::runtime(format!(
                "cannot read the guard state {}: {e}",
                path.display()
            )))
        }
    };
    match serde_json::from_slice(&text) {
        Ok(s) => Ok(Some(s)),
        Err(e) => {
            tracing::error!(
                "the guard state {} is unreadable ({e}); starting without it",
                path.display()
            );
            Ok(None)
        }
    }
}

/// Saves the ladder's state; a failure is logged (the guard goes on: a
/// full disk must not stop the defence).
pub fn save(saved: &SavedState, path: &Path) {
    let bytes = match serde_json::to_vec_pretty(saved) {
        Ok(b) => b,
        Err(e) => {
            tracing::error!("cannot encode the guard state: {e}");
            return;
        }
    };
    if let Err(e) = crate::state_dir::replace_atomically(path, &bytes) {
        tracing::error!("cannot save the guard state: {e}");
    }
}

/// `guard-history.jsonl` is moved to `.1` beyond this size, so the
/// history stays bounded (two files).
const HISTORY_LIMIT: u64 = 16 << 20;

/// Appends one record; a failure is logged (the defence goes on).
fn append_history(path: &Path, record: &AttackRecord) {
    let mut line = match serde_json::to_vec(record) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!("cannot encode the attack record: {e}");
            return;
        }
    };
    line.push(b'\n');
    if std::fs::metadata(path).is_ok_and(|m| m.len() > HISTORY_LIMIT) {
        let mut old = path.as_os_str().to_owned();
        old.push(".1");
        if let Err(e) = crate::state_dir::move_durably(path, Path::new(&old)) {
            tracing::warn!("cannot move the guard history aside: {e}");
        }
    }
    let written = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| f.write_all(&line));
    if let Err(e) = written {
        tracing::error!("cannot append to the guard history {}: {e}", path.display());
    }
}

/// One element of one of the guard's nftables sets: (set, element).
type SetElement = (String, GuardElement);

/// What carries the decisions out.
pub struct Rungs {
    blackholes: Blackholes,
    notifier: Notifier,
    sets: GuardSets,
    /// The set elements each throttle or drop rung in place has added,
    /// so that the same ones are removed when it ends (the attack's report
    /// may have changed meanwhile) and put back after a plan recreated
    /// the sets.
    held: BTreeMap<(Target, Direction, Rung), Vec<SetElement>>,
    /// The speaker for the rtbh and flowspec rungs, when `[bgp]` has a
    /// peer to announce to.
    bgp: Option<BgpRungs>,
    /// Where ended attacks are recorded.
    history: Option<PathBuf>,
    /// The rungs each open incident has used, for its record.
    used: BTreeMap<(Target, Direction), Vec<Rung>>,
    /// Attacks ended since the last [`Rungs::take_ended`], for the
    /// daemon to keep in the history store.
    ended: Vec<AttackRecord>,
}

impl Rungs {
    /// Opens a route netlink socket (in the caller's network namespace),
    /// and starts a BGP speaker when `bgp` has a peer with `announce =
    /// true`.
    pub fn open(bgp: Option<&policy::Bgp>, history: Option<PathBuf>) -> Result<Rungs> {
        Ok(Rungs {
            blackholes: Blackholes::open()
                .map_err(|e| Error::runtime(format!("cannot open a route netlink socket: {e}")))?,
            notifier: Notifier::default(),
            sets: GuardSets::new(),
            held: BTreeMap::new(),
            bgp: match bgp.filter(|b| b.peers.iter().any(|p| p.announce)) {
                Some(b) => Some(BgpRungs::start(crate::bgp_rungs::speaker_config(b))?),
                None => None,
            },
            history,
            used: BTreeMap::new(),
            ended: Vec::new(),
        })
    }

    /// The attacks that ended since the last call.
    pub fn take_ended(&mut self) -> Vec<AttackRecord> {
        std::mem::take(&mut self.ended)
    }

    /// Ends the BGP sessions, if any (the peers drop the announced
    /// routes, as BGP does; a restart's `Restore` announces them again).
    pub fn shutdown(mut self) {
        if let Some(b) = self.bgp.take() {
            b.shutdown();
        }
    }

    /// Takes a reloaded policy's `[bgp]`: the speaker starts, starts
    /// again with the new peers (announcing again what the rungs hold),
    /// or stops when no peer is left to announce to. Settings equal to the
    /// running ones change nothing.
    pub fn set_bgp(&mut self, bgp: Option<&policy::Bgp>) {
        let wanted = bgp
            .filter(|b| b.peers.iter().any(|p| p.announce))
            .map(crate::bgp_rungs::speaker_config);
        match (&mut self.bgp, wanted) {
            (Some(running), Some(c)) if running.config() == &c => {}
            (Some(running), Some(c)) => {
                if let Err(e) = running.restart(c) {
                    tracing::error!("guard: the BGP speaker cannot start with the new [bgp]: {e}; the rtbh and flowspec rungs announce nothing until a reload fixes it");
                }
            }
            (Some(_), None) => {
                if let Some(b) = self.bgp.take() {
                    b.shutdown();
                }
                tracing::info!(
                    "guard: [bgp] has no peer to announce to any more; the BGP speaker stopped"
                );
            }
            (None, Some(c)) => match BgpRungs::start(c) {
                Ok(b) => self.bgp = Some(b),
                Err(e) => {
                    tracing::error!("guard: the BGP speaker cannot start with the new [bgp]: {e}")
                }
            },
            (None, None) => {}
        }
    }

    /// Carries out `decisions`, in order.
    ///
    /// `origin` is the monotonic clock's origin the decisions' times are
    /// on: each incident's first rung is logged with how long after the
    /// detecting tick it was in place (`after_detection_ms`: the route
    /// added, the set filled, the BGP update handed to the sessions, the
    /// script spawned), the figure issue 15 asks to stay under 100 ms.
    pub fn carry_out(&mut self, decisions: &[Decision], origin: Instant) {
        for d in decisions {
            self.remember(d);
            match d {
                Decision::Start(step) => {
                    tracing::info!(
                        address = %step.target,
                        direction = step.direction.as_script_word(),
                        kind = %step.attack.kind,
                        pps = crate::output::guard::attack_pps(step),
                        trigger = %step.attack.trigger.by,
                        "ban started"
                    );
                    self.apply(step, false);
                    let now = Monotonic(origin.elapsed());
                    let after = now.since(step.attack.started);
                    tracing::info!(
                        address = %step.target,
                        rung = %step.rung,
                        after_detection_ms = (after.as_secs_f64() * 1e5).round() / 100.0,
                        "first rung in place"
                    );
                }
                Decision::Escalate { from, step } => {
                    tracing::info!(address = %step.target, direction = step.direction.as_script_word(), %from, to = %step.rung, "escalating");
                    self.apply(step, false);
                }
                Decision::Restore(step) => {
                    tracing::info!(address = %step.target, direction = step.direction.as_script_word(), rung = %step.rung, "restoring");
                    self.apply(step, true);
                }
                Decision::Update(step) => {
                    if let Action::Notify {
                        script, webhook, ..
                    } = &step.action
                    {
                        if let Some(s) = script {
                            self.notify(s, step, "attack_details");
                        }
                        if let Some(url) = webhook {
                            self.post(url, step, "attack_details");
                        }
                    }
                }
                Decision::Stop { step, ended } => {
                    self.remove(step);
                    if *ended {
                        tracing::info!(
                            address = %step.target,
                            direction = step.direction.as_script_word(),
                            kind = %step.attack.kind,
                            pps = step.attack.peak_pps,
                            packets = step.attack.packets,
                            "ban ended"
                        );
                    }
                }
                Decision::Refused {
                    target,
                    direction,
                    rung,
                    reason,
                } => tracing::warn!(
                    address = %target,
                    direction = direction.as_script_word(),
                    %rung,
                    ?reason,
                    "rung refused; the ladder stops below it"
                ),
            }
        }
    }

    /// Keeps the rungs an incident uses, and records it when it ends.
    fn remember(&mut self, d: &Decision) {
        match d {
            Decision::Start(step) | Decision::Restore(step) | Decision::Escalate { step, .. } => {
                let used = self
                    .used
                    .entry((step.target.clone(), step.direction))
                    .or_default();
                if !used.contains(&step.rung) {
                    used.push(step.rung);
                }
            }
            Decision::Stop { step, ended: true } => {
                let used = self
                    .used
                    .remove(&(step.target.clone(), step.direction))
                    .unwrap_or_else(|| vec![step.rung]);
                let record = record(step, &used);
                if let Some(path) = &self.history {
                    append_history(path, &record);
                }
                // Bounded: the daemon takes them every round; `guard
                // watch` has no store and keeps only the file.
                if self.ended.len() < 1024 {
                    self.ended.push(record);
                }
            }
            _ => {}
        }
    }

    /// Puts a rung in place (`restoring`: it was before a restart, so a
    /// notify script is not called again).
    fn apply(&mut self, step: &Step, restoring: bool) {
        match &step.action {
            Action::Notify {
                script, webhook, ..
            } => {
                if restoring {
                    return;
                }
                if let Some(s) = script {
                    self.notify(s, step, "ban");
                }
                if let Some(url) = webhook {
                    self.post(url, step, "ban");
                }
            }
            Action::Blackhole => {
                for p in &step.prefixes {
                    match self.blackholes.add(*p) {
                        Ok(Added::New) => tracing::info!(prefix = %p, "blackhole route added"),
                        Ok(Added::AlreadyThere) => {
                            tracing::info!(prefix = %p, "a route for the prefix is already there; left as it is")
                        }
                        Err(e) => tracing::error!("{e}"),
                    }
                }
            }
            Action::Rtbh { .. } | Action::Flowspec { .. } => match &mut self.bgp {
                Some(b) => {
                    b.apply(step);
                }
                None => no_bgp_peer(),
            },
            Action::Throttle { .. } | Action::Drop { .. } => {
                let elements = set_elements(step);
                let mut touched: Vec<String> = elements.iter().map(|(s, _)| s.clone()).collect();
                let key = (step.target.clone(), step.direction, step.rung);
                if let Some(before) = self.held.insert(key, elements.clone()) {
                    touched.extend(before.into_iter().map(|(s, _)| s));
                }
                if self.refill(touched) {
                    for (set, e) in &elements {
                        tracing::info!(set = %set, element = %e, rung = %step.rung, "in the guard's set");
                    }
                }
            }
        }
    }

    /// Makes the guard's sets in the kernel hold exactly what the rungs
    /// in place hold, in one transaction. The daemon calls this once its
    /// saved ladder is restored (an element of a rung that ended while it
    /// was stopped, or whose state was lost, goes), and after an apply
    /// that created one of the guard's sets (a set made after the rung
    /// started, as in the first round on a fresh kernel, is empty).
    pub fn reassert(&self) {
        self.sync_xdp();
        self.sync_victims();
        match self.sets.in_kernel() {
            Ok(sets) => {
                self.refill(sets);
            }
            Err(e) => tracing::error!("cannot read the guard's sets: {e}"),
        }
    }

    /// Makes the XDP drop list's rung entries those of every `drop` rung
    /// in place. `None` when no drop list runs in this namespace (the
    /// nftables classifier), else whether it worked (an error is logged).
    fn sync_xdp(&self) -> Option<bool> {
        // A socket per change: rungs are rare, and `reassert` is `&self`.
        let mut rtnl = match linux_dataplane::rtnl::Rtnl::open() {
            Ok(r) => r,
            Err(e) => {
                tracing::error!("cannot open an rtnetlink socket: {e}");
                return None;
            }
        };
        let mut list = match linux_dataplane::xdp::DropList::find(&mut rtnl) {
            Ok(Some(l)) => l,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!("{e}");
                return Some(false);
            }
        };
        let wanted = xdp_entries(self.held.values().flatten());
        match list.sync(bpf_classify::xdp::Why::Rung, &wanted) {
            Ok((added, removed)) => {
                if added + removed > 0 {
                    tracing::info!(added, removed, "XDP drop list: the guard's entries");
                }
                Some(true)
            }
            Err(e) => {
                tracing::error!("{e}");
                Some(false)
            }
        }
    }

    /// Makes the eBPF classifier's throttle victims those of every
    /// `throttle` rung in place. `None` when that classifier does not run
    /// here, else whether it worked (an error is logged).
    fn sync_victims(&self) -> Option<bool> {
        let victims = linux_dataplane::Dataplane::open().and_then(|mut d| d.victims());
        let mut victims = match victims {
            Ok(Some(v)) => v,
            Ok(None) => return None,
            Err(e) => {
                tracing::error!("cannot find the eBPF classifier's throttle victims: {e}");
                return None;
            }
        };
        let wanted: Vec<_> = self
            .held
            .values()
            .flatten()
            .filter_map(|(set, e)| {
                let (rate, way) = throttle_of(set)?;
                Some((way, e.prefix(), bpf_classify::throttle::rate_word(rate)))
            })
            .collect();
        match victims.sync(&wanted) {
            Ok((written, removed)) => {
                if written + removed > 0 {
                    tracing::info!(written, removed, "the eBPF classifier's throttle victims");
                }
                Some(true)
            }
            Err(e) => {
                tracing::error!("cannot write the throttle victims: {e}");
                Some(false)
            }
        }
    }

    /// Makes `sets` hold what the rungs in place hold (one transaction);
    /// whether it worked (an error is logged). With the XDP drop list in
    /// this namespace, the `drop` rungs' sets are its entries.
    fn refill(&self, mut sets: Vec<String>) -> bool {
        if sets.iter().any(|s| is_drop_set(s)) {
            if let Some(done) = self.sync_xdp() {
                sets.retain(|s| !is_drop_set(s));
                if !done {
                    return false;
                }
            }
        }
        if sets.iter().any(|s| throttle_of(s).is_some()) {
            if let Some(done) = self.sync_victims() {
                sets.retain(|s| throttle_of(s).is_none());
                if !done {
                    return false;
                }
            }
        }
        sets.sort_unstable();
        sets.dedup();
        if sets.is_empty() {
            return true;
        }
        let held: Vec<(&str, &GuardElement)> = self
            .held
            .values()
            .flatten()
            .map(|(set, e)| (set.as_str(), e))
            .collect();
        let names: Vec<&str> = sets.iter().map(String::as_str).collect();
        match self.sets.refill(&names, &held) {
            Ok(()) => true,
            Err(e) => {
                tracing::error!("{e}");
                false
            }
        }
    }

    /// Takes a throttle or drop rung's elements away (an element another
    /// rung in place holds too stays, and one the removed element covered
    /// comes back on its own).
    fn release(&mut self, step: &Step) {
        let key = (step.target.clone(), step.direction, step.rung);
        let elements = self.held.remove(&key).unwrap_or_else(|| set_elements(step));
        let touched = elements.iter().map(|(s, _)| s.clone()).collect();
        if self.refill(touched) {
            for (set, e) in &elements {
                tracing::info!(set = %set, element = %e, "removed from the guard's set");
            }
        }
    }

    /// Takes a rung away.
    fn remove(&mut self, step: &Step) {
        match &step.action {
            Action::Notify {
                script, webhook, ..
            } => {
                if let Some(s) = script {
                    self.notify(s, step, "unban");
                }
                if let Some(url) = webhook {
                    self.post(url, step, "unban");
                }
            }
            Action::Blackhole => {
                for p in &step.prefixes {
                    match self.blackholes.remove(*p) {
                        Ok(true) => tracing::info!(prefix = %p, "blackhole route removed"),
                        Ok(false) => {
                            tracing::info!(prefix = %p, "no blackhole route of ours to remove")
                        }
                        Err(e) => tracing::error!("{e}"),
                    }
                }
            }
            Action::Rtbh { .. } | Action::Flowspec { .. } => {
                if let Some(b) = &mut self.bgp {
                    b.remove(step);
                }
            }
            Action::Throttle { .. } | Action::Drop { .. } => self.release(step),
        }
    }

    /// POSTs the report (the notify script's stdin) to `url` as JSON,
    /// without waiting.
    fn post(&self, url: &str, step: &Step, action: &str) {
        let report = crate::output::guard::notify_json(step, action);
        self.notifier.webhook(url, action, report);
    }

    /// Runs `script IP DIRECTION PPS ACTION` with the report on stdin,
    /// without waiting for it.
    fn notify(&self, script: &str, step: &Step, action: &str) {
        // FastNetMon's order: IP DIRECTION PPS ACTION.
        let mut args = step.script_args(action == "ban");
        args[3] = action.to_owned();
        let report = crate::output::guard::notify_json(step, action);
        self.notifier.script(script, &args, report);
    }
}

/// The record of an attack whose last rung is `step`.
fn record(step: &Step, used: &[Rung]) -> AttackRecord {
    let a = &step.attack;
    let duration_s = a
        .ended
        .map(|e| e.0.saturating_sub(a.started.0).as_secs_f64())
        .unwrap_or(0.0);
    AttackRecord {
        recorded_at: jiff::Timestamp::now(),
        started_at: a
            .started_at_ms
            .and_then(|ms| jiff::Timestamp::from_millisecond(ms).ok()),
        target: crate::output::guard::target_arg(&step.target),
        direction: api::guard::direction_word(step.direction).into(),
        attack: api::guard::attack_name(a.kind),
        duration_s,
        rungs: used.iter().map(|r| r.to_string()).collect(),
        prefixes: step.prefixes.iter().map(|p| p.to_string()).collect(),
        report: serde_json::to_value(a).unwrap_or(serde_json::Value::Null),
    }
}

fn no_bgp_peer() {
    tracing::warn!("rtbh/flowspec: the policy's [bgp] has no peer with `announce = true`; nothing is announced, and the ladder goes on");
}

/// The rate and way of a `throttle` rung's set, from its name
/// (`plan::guard::throttle_set`).
fn throttle_of(set: &str) -> Option<(net_types::Rate, Way)> {
    let (bits, tail) = set.strip_prefix("guard_thr_")?.split_once('_')?;
    let rate = net_types::Rate::from_bps(bits.parse().ok()?)?;
    let way = match tail {
        "in4" | "in6" => Way::In,
        "out4" | "out6" => Way::Out,
        _ => return None,
    };
    Some((rate, way))
}

/// Whether `set` is one of the `drop` rung's (addresses or signatures).
fn is_drop_set(set: &str) -> bool {
    set.starts_with("guard_drop_") || plan::guard::signature_pair(set).is_some()
}

/// The XDP drop list's entries for the `drop` rungs' set elements.
fn xdp_entries<'a>(held: impl Iterator<Item = &'a SetElement>) -> Vec<bpf_classify::xdp::Entry> {
    held.filter(|(set, _)| is_drop_set(set))
        .map(|(set, e)| {
            let way = if set.ends_with("in4") || set.ends_with("in6") {
                Way::In
            } else {
                Way::Out
            };
            bpf_classify::xdp::Entry::of_element(way, e)
        })
        .collect()
}

/// The set elements a throttle or drop step puts in place: one per
/// prefix, in the set of its family and direction. A signature drop
/// names the attack's protocol and, for an amplification, its source
/// port; what the report does not know (a fragment or generic flood) is
/// a range that matches anything, so such a signature drops all of the
/// victim's traffic.
pub fn set_elements(step: &Step) -> Vec<SetElement> {
    let way = match step.direction {
        Direction::In => Way::In,
        Direction::Out => Way::Out,
    };
    step.prefixes
        .iter()
        .filter_map(|p| {
            let v6 = !p.is_ipv4();
            Some(match &step.action {
                Action::Throttle { rate } => (
                    plan::guard::throttle_set(*rate, way, v6),
                    GuardElement::Prefix(*p),
                ),
                Action::Drop { signature: false } => {
                    (plan::guard::drop_set(way, v6), GuardElement::Prefix(*p))
                }
                Action::Drop { signature: true } => {
                    let kind = step.attack.kind;
                    (
                        plan::guard::signature_set(way, v6),
                        GuardElement::Signature {
                            prefix: *p,
                            protocol: kind.protocol(v6),
                            source_port: match kind {
                                guard::AttackKind::Amplification { port } => Some(port),
                                _ => None,
                            },
                        },
                    )
                }
                _ => return None,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first step of a detector whose only rung is `action`, fed a
    /// flood of `udp` (from source port 53) or SYN packets towards `addr`.
    fn first_step(action: Action, addr: &str, udp: bool) -> Step {
        use guard::{Config, Limit, Metric, RungConfig, Thresholds};
        use std::time::Duration;
        let mut c = Config::new(vec![
            net_types::Prefix::parse("203.0.113.0/24").unwrap(),
            net_types::Prefix::parse("2001:db8::/32").unwrap(),
        ]);
        c.instant = Some(Duration::ZERO);
        c.global = Thresholds::new().with(Direction::In, Metric::Pps, Limit::At(100));
        c.ladder = vec![RungConfig::new(
            action,
            Duration::ZERO,
            Duration::from_secs(60),
        )];
        let mut d = guard::Detector::new(c).unwrap();
        let sample = |packets: u64| HostSample {
            addr: addr.parse().unwrap(),
            direction: Direction::In,
            counters: HostCounters {
                packets,
                bytes: packets * 100,
                udp_packets: if udp { packets } else { 0 },
                udp_bytes: if udp { packets * 100 } else { 0 },
                tcp_packets: if udp { 0 } else { packets },
                tcp_bytes: if udp { 0 } else { packets * 100 },
                tcp_syn: if udp { 0 } else { packets },
                top_udp_src_ports: if udp { vec![(53, packets)] } else { vec![] }.into(),
                ..HostCounters::default()
            },
        };
        let mut out = Vec::new();
        for ms in (0..=500).step_by(100) {
            out.extend(d.tick(&Observation {
                at: Monotonic::from_millis(ms),
                hosts: vec![sample(1_000)],
            }));
        }
        out.into_iter()
            .find_map(|x| match x {
                Decision::Start(s) => Some(s),
                _ => None,
            })
            .expect("a start")
    }

    #[test]
    fn each_rung_names_its_set_and_element() {
        let rate = net_types::Rate::from_bps(2_000_000).unwrap();
        let step = first_step(Action::Throttle { rate }, "203.0.113.7", false);
        let p = net_types::Prefix::parse("203.0.113.7/32").unwrap();
        assert_eq!(
            set_elements(&step),
            [("guard_thr_2000000_in4".to_string(), GuardElement::Prefix(p))]
        );
        let step = first_step(Action::Drop { signature: false }, "2001:db8::7", false);
        let p6 = net_types::Prefix::parse("2001:db8::7/128").unwrap();
        assert_eq!(
            set_elements(&step),
            [("guard_drop_in6".to_string(), GuardElement::Prefix(p6))]
        );
        // An amplification: UDP from its port.
        let step = first_step(Action::Drop { signature: true }, "203.0.113.7", true);
        let (set, e) = &set_elements(&step)[0];
        assert_eq!(set, "guard_sig_in4");
        assert_eq!(e.to_string(), "203.0.113.7/32 . 17 . 53");
        // A SYN flood: TCP from any port.
        let step = first_step(Action::Drop { signature: true }, "203.0.113.7", false);
        assert_eq!(
            set_elements(&step)[0].1.to_string(),
            "203.0.113.7/32 . 6 . 0-65535"
        );
        // The other rungs have no set.
        let step = first_step(Action::Blackhole, "203.0.113.7", false);
        assert!(set_elements(&step).is_empty());
    }

    #[test]
    fn drop_and_throttle_elements_become_xdp_entries_and_victims() {
        let p = net_types::Prefix::parse("203.0.113.7/32").unwrap();
        let held: Vec<SetElement> = vec![
            ("guard_drop_in4".into(), GuardElement::Prefix(p)),
            (
                "guard_sig_out4".into(),
                GuardElement::Signature {
                    prefix: p,
                    protocol: Some(17),
                    source_port: Some(53),
                },
            ),
            ("guard_thr_2000000_in4".into(), GuardElement::Prefix(p)),
        ];
        let e = xdp_entries(held.iter());
        assert_eq!(e.len(), 2, "the throttle element is no drop");
        assert_eq!(e[0], bpf_classify::xdp::Entry::all(Way::In, p));
        assert_eq!(
            (e[1].way, e[1].protocol, e[1].source_port),
            (Way::Out, 17, 53)
        );
        let rate = net_types::Rate::from_bps(2_000_000).unwrap();
        assert_eq!(throttle_of("guard_thr_2000000_in4"), Some((rate, Way::In)));
        assert_eq!(
            throttle_of("guard_thr_2000000_out6"),
            Some((rate, Way::Out))
        );
        assert_eq!(throttle_of("guard_drop_in4"), None);
        assert!(is_drop_set("guard_sigaddr_in6") && !is_drop_set("guard_thr_1_in4"));
    }

    fn rec(target: &str) -> AttackRecord {
        AttackRecord {
            recorded_at: jiff::Timestamp::UNIX_EPOCH,
            started_at: None,
            target: target.into(),
            direction: "in".into(),
            attack: "udp_flood".into(),
            duration_s: 12.5,
            rungs: vec!["notify".into()],
            prefixes: vec![format!("{target}/32")],
            report: serde_json::json!({"peak_pps": 1}),
        }
    }

    #[test]
    fn the_history_reads_back_oldest_first_and_skips_what_does_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("guard-history.jsonl");
        append_history(&path, &rec("192.0.2.1"));
        std::fs::write(
            dir.path().join("guard-history.jsonl.1"),
            serde_json::to_string(&rec("192.0.2.9")).unwrap() + "\n",
        )
        .unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"{not json\n").unwrap();
        append_history(&path, &rec("192.0.2.2"));
        let (records, bad) = api::guard::read_history(&path).unwrap();
        let targets: Vec<&str> = records.iter().map(|r| r.target.as_str()).collect();
        assert_eq!(targets, ["192.0.2.9", "192.0.2.1", "192.0.2.2"]);
        assert_eq!(bad, 1);
        assert!(api::guard::read_history(&dir.path().join("none"))
            .unwrap()
            .0
            .is_empty());
    }
}
