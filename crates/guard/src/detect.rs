//! The detector: per-address smoothed and instantaneous rates, checked
//! against the resolved thresholds every tick, feeding the ladder.
//!
//! The host table is sparse: an address gets an entry when its first
//! sample arrives and loses it after `idle` without traffic, so a /8 costs
//! nothing until it has traffic. The table never holds more than
//! `max_hosts` entries; samples for further addresses are counted as
//! overflow (they still count in their group's totals).
//!
//! Each address keeps, per direction, one EWMA per metric. A tick of
//! length Δt with rate r updates it as `e ← e·k + r·(1−k)` with
//! `k = exp(−Δt/τ)`. An address absent from some ticks had rate 0 in them,
//! so its next update first decays by `exp(−gap/τ)` over the whole gap:
//! absent addresses cost nothing per tick.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::time::Duration;

use foldhash::fast::FixedState;

use crate::config::{Config, InvalidConfig, Metric, METRICS};
use crate::decision::{Command, CommandError, Decision, Hold, Target};
use crate::ladder::Incident;
use crate::report::{classify, AttackKind, AttackReport, Trigger, TriggerKind};
use crate::resolve::Resolved;
use crate::sample::{Direction, HostCounters, Monotonic, Observation};

/// One address's state in one direction.
#[derive(Clone, Copy, Debug)]
struct HostDir {
    /// Smoothed rates, by [`Metric::index`].
    ewma: [f64; METRICS],
    /// The rates over the last tick with traffic.
    inst: [f32; METRICS],
    /// That tick's time (`Monotonic::ZERO`: never).
    updated: Monotonic,
    /// Since when every tick was over a threshold (the start of the first
    /// such tick).
    over_since: Option<Monotonic>,
}

const EMPTY_DIR: HostDir = HostDir {
    ewma: [0.0; METRICS],
    inst: [0.0; METRICS],
    updated: Monotonic::ZERO,
    over_since: None,
};

/// One tracked address.
#[derive(Clone, Copy, Debug)]
struct Host {
    /// Its table entry (group and totals).
    entry: u32,
    dirs: [HostDir; 2],
}

/// A group's totals in one direction.
#[derive(Clone, Debug)]
struct GroupDir {
    ewma: [f64; METRICS],
    inst: [f64; METRICS],
    over_since: Option<Monotonic>,
    counters: HostCounters,
}

impl Default for GroupDir {
    fn default() -> GroupDir {
        GroupDir {
            ewma: [0.0; METRICS],
            inst: [0.0; METRICS],
            over_since: None,
            counters: HostCounters::default(),
        }
    }
}

/// Counts of what the detector saw and skipped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Stats {
    /// Addresses tracked now.
    pub hosts: usize,
    /// Open incidents (attacked addresses and groups, per direction).
    pub incidents: usize,
    /// Samples for addresses outside the networks, ignored.
    pub outside: u64,
    /// Samples for new addresses while the table was full, not tracked.
    pub overflow: u64,
    /// Observations not later than the previous one, ignored.
    pub stale: u64,
    /// Addresses forgotten after `idle` without traffic.
    pub expired: u64,
}

/// The detector and its ladder. Feed it [`Observation`]s with
/// [`Detector::tick`] and operators' [`Command`]s with
/// [`Detector::command`]; carry out the [`Decision`]s it returns, in order.
pub struct Detector {
    pub(crate) r: Resolved,
    hosts: HashMap<IpAddr, Host, FixedState>,
    /// Per profile with totals (others stay empty), per direction.
    groups: Vec<[GroupDir; 2]>,
    pub(crate) incidents: BTreeMap<(Target, Direction), Incident>,
    prev: Option<Monotonic>,
    last_sweep: Monotonic,
    stats: Stats,
    /// Reused per tick: the (address, direction) pairs updated.
    touched: Vec<(IpAddr, Direction)>,
}

/// What pass 2 found about one updated address.
enum Event {
    /// No incident yet, and a check fired.
    Fire(Trigger, [f64; METRICS]),
    /// An incident is open: add the tick to its report.
    Seen,
}

impl Detector {
    /// A detector with no history.
    pub fn new(config: Config) -> Result<Detector, InvalidConfig> {
        let r = Resolved::new(config)?;
        let groups = vec![Default::default(); r.profiles.len()];
        Ok(Detector {
            r,
            hosts: HashMap::with_hasher(FixedState::with_seed(0x6775_6172_64)),
            groups,
            incidents: BTreeMap::new(),
            prev: None,
            last_sweep: Monotonic::ZERO,
            stats: Stats::default(),
            touched: Vec::new(),
        })
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.r.cfg
    }

    /// What was seen and skipped so far.
    pub fn stats(&self) -> Stats {
        Stats {
            hosts: self.hosts.len(),
            incidents: self.incidents.len(),
            ..self.stats
        }
    }

    /// Whether `addr` is inside the protected networks.
    pub fn protects(&self, addr: IpAddr) -> bool {
        self.r.lookup(addr).is_some()
    }

    /// The name of the group whose thresholds apply to `addr` (`global`
    /// for none), `None` outside the networks.
    pub fn group_of(&self, addr: IpAddr) -> Option<&str> {
        let e = self.r.lookup(addr)?;
        let p = self.r.entries[e as usize].profile;
        Some(&self.r.profiles[p as usize].name)
    }

    /// The smoothed rate of one metric of one address now (0 if not
    /// tracked): for status pages and tests.
    pub fn smoothed(
        &self,
        addr: IpAddr,
        direction: Direction,
        metric: Metric,
        now: Monotonic,
    ) -> f64 {
        let Some(h) = self.hosts.get(&addr) else {
            return 0.0;
        };
        let d = &h.dirs[direction.index()];
        d.ewma[metric.index()] * self.decay(now.since(d.updated))
    }

    fn decay(&self, gap: Duration) -> f64 {
        (-gap.as_secs_f64() / self.r.cfg.ewma.as_secs_f64()).exp()
    }

    /// Feeds one tick. Returns the decisions to carry out, in order.
    pub fn tick(&mut self, obs: &Observation) -> Vec<Decision> {
        let now = obs.at;
        let mut out = Vec::new();
        let Some(prev) = self.prev else {
            // No rate without an earlier time; the next tick has one.
            self.prev = Some(now);
            self.last_sweep = now;
            return out;
        };
        if now <= prev {
            self.stats.stale += 1;
            return out;
        }
        let dt = now.since(prev).as_secs_f64();
        let keep_tick = self.decay(now.since(prev));
        let gain = 1.0 - keep_tick;
        let per_sec = 1.0 / dt;
        for g in &mut self.groups {
            for d in g.iter_mut() {
                d.inst = [0.0; METRICS];
                d.counters = HostCounters::default();
            }
        }
        if now.since(self.last_sweep) >= self.r.cfg.idle {
            self.sweep(now);
        }
        let mut swept = false;
        self.touched.clear();

        // Pass 1: update the rates of every address in the tick.
        for s in &obs.hosts {
            let dir = s.direction.index();
            let counts = Metric::counts(&s.counters);
            let entry = match self.hosts.get(&s.addr) {
                Some(h) => h.entry,
                None => {
                    let Some(entry) = self.r.lookup(s.addr) else {
                        self.stats.outside += 1;
                        continue;
                    };
                    if self.hosts.len() >= self.r.cfg.max_hosts && !swept {
                        self.sweep(now);
                        swept = true;
                    }
                    if self.hosts.len() >= self.r.cfg.max_hosts {
                        self.stats.overflow += 1;
                        self.add_totals(entry, dir, &counts, per_sec, &s.counters);
                        continue;
                    }
                    self.hosts.insert(
                        s.addr,
                        Host {
                            entry,
                            dirs: [EMPTY_DIR; 2],
                        },
                    );
                    entry
                }
            };
            let tau = self.r.cfg.ewma.as_secs_f64();
            let Some(h) = self.hosts.get_mut(&s.addr) else {
                continue;
            };
            let d = &mut h.dirs[dir];
            if d.updated == now {
                // A second sample for the same tick: the update is linear.
                for m in 0..METRICS {
                    let r = counts[m] * per_sec;
                    d.ewma[m] += r * gain;
                    d.inst[m] += r as f32;
                }
            } else {
                let keep = if d.updated == prev {
                    keep_tick
                } else {
                    // Absent since `updated`: zero traffic in between.
                    d.over_since = None;
                    (-now.since(d.updated).as_secs_f64() / tau).exp()
                };
                for m in 0..METRICS {
                    let r = counts[m] * per_sec;
                    d.ewma[m] = d.ewma[m] * keep + r * gain;
                    d.inst[m] = r as f32;
                }
                d.updated = now;
                self.touched.push((s.addr, s.direction));
            }
            self.add_totals(entry, dir, &counts, per_sec, &s.counters);
        }

        // Pass 2: which updated addresses fired, or have an incident.
        let instant = self.r.cfg.instant;
        let mut events: Vec<(IpAddr, Direction, Event)> = Vec::new();
        for &(addr, direction) in &self.touched {
            let Some(h) = self.hosts.get_mut(&addr) else {
                continue;
            };
            let profile = self.r.entries[h.entry as usize].profile as usize;
            let lim = &self.r.profiles[profile].limits[direction.index()];
            let d = &mut h.dirs[direction.index()];
            let inst_over = (0..METRICS).find(|&m| f64::from(d.inst[m]) > lim[m]);
            match inst_over {
                Some(_) => {
                    d.over_since.get_or_insert(prev);
                }
                None => d.over_since = None,
            }
            let key = (Target::Host(addr), direction);
            if self.incidents.contains_key(&key) {
                events.push((addr, direction, Event::Seen));
                continue;
            }
            let smoothed = (0..METRICS).find(|&m| d.ewma[m] > lim[m]);
            let instant_fired = match (instant, d.over_since) {
                (Some(w), Some(since)) => now.since(since) >= w,
                _ => false,
            };
            let trigger = match (smoothed, instant_fired, inst_over) {
                (Some(m), _, _) => Some((TriggerKind::Smoothed, m, d.ewma[m], lim[m], d.ewma)),
                (None, true, Some(m)) => {
                    let inst = d.inst.map(f64::from);
                    Some((TriggerKind::Instant, m, inst[m], lim[m], inst))
                }
                _ => None,
            };
            if let Some((by, m, rate, threshold, rates)) = trigger {
                let trigger = Trigger {
                    by,
                    metric: Metric::ALL[m],
                    rate: rate.round() as u64,
                    threshold: threshold as u64,
                };
                events.push((addr, direction, Event::Fire(trigger, rates)));
            }
        }

        // The tick's counters of the addresses that matter (one pass, only
        // when some address fired or is attacked).
        if !events.is_empty() {
            let mut wanted: HashMap<(IpAddr, Direction), HostCounters, FixedState> =
                HashMap::with_capacity_and_hasher(events.len(), FixedState::with_seed(1));
            for (a, d, _) in &events {
                wanted.insert((*a, *d), HostCounters::default());
            }
            for s in &obs.hosts {
                if let Some(c) = wanted.get_mut(&(s.addr, s.direction)) {
                    c.add(&s.counters);
                }
            }
            for (addr, direction, ev) in events {
                let c = wanted.get(&(addr, direction)).copied().unwrap_or_default();
                let (pps, bps) = (c.packets as f64 * per_sec, c.bytes as f64 * 8.0 * per_sec);
                let key = (Target::Host(addr), direction);
                match ev {
                    Event::Seen => {
                        if let Some(inc) = self.incidents.get_mut(&key) {
                            inc.report.add(&c, pps, bps);
                        }
                    }
                    Event::Fire(trigger, rates) => {
                        if self.incidents.len() >= self.r.cfg.max_hosts {
                            continue;
                        }
                        let Some(h) = self.hosts.get(&addr) else {
                            continue;
                        };
                        let profile = self.r.entries[h.entry as usize].profile;
                        let kind = classify(&rates, trigger.metric, &c.top_udp_src_ports);
                        let name = &self.r.profiles[profile as usize].name;
                        let mut report = AttackReport::new(kind, direction, name, trigger, now);
                        report.add(&c, pps, bps);
                        let inc = Incident::new(profile, report, Hold::Auto, now);
                        self.incidents.insert(key.clone(), inc);
                        self.start(&key, now, &mut out);
                    }
                }
            }
        }

        // Group totals.
        for p in 0..self.groups.len() {
            if !self.r.profiles[p].has_totals {
                continue;
            }
            for direction in Direction::ALL {
                self.group_tick(p, direction, prev, now, keep_tick, gain, per_sec, &mut out);
            }
        }

        // Every incident: calm or not, escalate, stop.
        let keys: Vec<(Target, Direction)> = self.incidents.keys().cloned().collect();
        for key in keys {
            let calm = self.is_calm(&key, now);
            self.advance(&key, calm, now, &mut out);
        }
        self.prev = Some(now);
        out
    }

    #[inline]
    fn add_totals(
        &mut self,
        entry: u32,
        dir: usize,
        counts: &[f64; METRICS],
        per_sec: f64,
        c: &HostCounters,
    ) {
        for &t in &self.r.entries[entry as usize].totals {
            let g = &mut self.groups[t as usize][dir];
            for m in 0..METRICS {
                g.inst[m] += counts[m] * per_sec;
            }
            g.counters.add(c);
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn group_tick(
        &mut self,
        p: usize,
        direction: Direction,
        prev: Monotonic,
        now: Monotonic,
        keep: f64,
        gain: f64,
        per_sec: f64,
        out: &mut Vec<Decision>,
    ) {
        let lim = self.r.profiles[p].totals[direction.index()];
        let g = &mut self.groups[p][direction.index()];
        for m in 0..METRICS {
            g.ewma[m] = g.ewma[m] * keep + g.inst[m] * gain;
        }
        let inst_over = (0..METRICS).find(|&m| g.inst[m] > lim[m]);
        match inst_over {
            Some(_) => {
                g.over_since.get_or_insert(prev);
            }
            None => g.over_since = None,
        }
        let c = g.counters;
        let (pps, bps) = (c.packets as f64 * per_sec, c.bytes as f64 * 8.0 * per_sec);
        let key = (Target::Group(self.r.profiles[p].name.clone()), direction);
        if let Some(inc) = self.incidents.get_mut(&key) {
            inc.report.add(&c, pps, bps);
            return;
        }
        let smoothed = (0..METRICS).find(|&m| g.ewma[m] > lim[m]);
        let instant_fired = match (self.r.cfg.instant, g.over_since) {
            (Some(w), Some(since)) => now.since(since) >= w,
            _ => false,
        };
        let (m, rate, rates) = match (smoothed, instant_fired, inst_over) {
            (Some(m), _, _) => (m, g.ewma[m], g.ewma),
            (None, true, Some(m)) => (m, g.inst[m], g.inst),
            _ => return,
        };
        if self.incidents.len() >= self.r.cfg.max_hosts {
            return;
        }
        let trigger = Trigger {
            by: TriggerKind::GroupTotal,
            metric: Metric::ALL[m],
            rate: rate.round() as u64,
            threshold: lim[m] as u64,
        };
        let kind = classify(&rates, trigger.metric, &c.top_udp_src_ports);
        let name = self.r.profiles[p].name.clone();
        let mut report = AttackReport::new(kind, direction, &name, trigger, now);
        report.add(&c, pps, bps);
        self.incidents.insert(
            key.clone(),
            Incident::new(p as u32, report, Hold::Auto, now),
        );
        self.start(&key, now, out);
    }

    /// Whether every rate of the incident's target is at or under its
    /// threshold times the hysteresis.
    fn is_calm(&self, key: &(Target, Direction), now: Monotonic) -> bool {
        let h = self.r.cfg.hysteresis;
        let dir = key.1.index();
        match &key.0 {
            Target::Host(addr) => {
                let Some(host) = self.hosts.get(addr) else {
                    return true;
                };
                let profile = self.r.entries[host.entry as usize].profile as usize;
                let lim = &self.r.profiles[profile].limits[dir];
                let d = &host.dirs[dir];
                let fresh = d.updated == now;
                let k = if fresh {
                    1.0
                } else {
                    self.decay(now.since(d.updated))
                };
                (0..METRICS).all(|m| {
                    let inst = if fresh { f64::from(d.inst[m]) } else { 0.0 };
                    d.ewma[m] * k <= h * lim[m] && inst <= h * lim[m]
                })
            }
            Target::Group(name) => {
                let Some(p) = self.r.profiles.iter().position(|p| &p.name == name) else {
                    return true;
                };
                let lim = &self.r.profiles[p].totals[dir];
                let g = &self.groups[p][dir];
                (0..METRICS).all(|m| g.ewma[m] <= h * lim[m] && g.inst[m] <= h * lim[m])
            }
        }
    }

    /// Forgets addresses idle for `idle` that no incident holds.
    fn sweep(&mut self, now: Monotonic) {
        self.last_sweep = now;
        let idle = self.r.cfg.idle;
        let incidents = &self.incidents;
        let before = self.hosts.len();
        self.hosts.retain(|addr, h| {
            let last = h.dirs[0].updated.max(h.dirs[1].updated);
            now.since(last) < idle
                || Direction::ALL
                    .iter()
                    .any(|d| incidents.contains_key(&(Target::Host(*addr), *d)))
        });
        self.stats.expired += (before - self.hosts.len()) as u64;
    }

    /// Carries out an operator's command at `now`.
    pub fn command(
        &mut self,
        now: Monotonic,
        cmd: &Command,
    ) -> Result<Vec<Decision>, CommandError> {
        let mut out = Vec::new();
        match *cmd {
            Command::Ban {
                addr,
                direction,
                rung,
                duration,
            } => self.ban(now, addr, direction, rung, Some(duration), &mut out)?,
            Command::Permanent {
                addr,
                direction,
                rung,
            } => self.ban(now, addr, direction, rung, None, &mut out)?,
            Command::Unban { addr, direction } => {
                let dirs: Vec<Direction> = match direction {
                    Some(d) => vec![d],
                    None => Direction::ALL.to_vec(),
                };
                let mut any = false;
                for d in dirs {
                    let key = (Target::Host(addr), d);
                    if self.incidents.contains_key(&key) {
                        any = true;
                        self.stop_all(&key, now, &mut out);
                    }
                }
                if !any {
                    return Err(CommandError::NotBanned(addr));
                }
                // Start the address's rates afresh, so that an unbanned
                // false positive is not banned again by its old average.
                if let Some(h) = self.hosts.get_mut(&addr) {
                    for d in direction.map_or(vec![0, 1], |d| vec![d.index()]) {
                        h.dirs[d] = EMPTY_DIR;
                    }
                }
            }
        }
        Ok(out)
    }

    /// `until`: `Some(None)` for the rung's hold, `Some(Some(d))` for `d`,
    /// `None` for permanent.
    fn ban(
        &mut self,
        now: Monotonic,
        addr: IpAddr,
        direction: Direction,
        rung: crate::config::Rung,
        until: Option<Option<Duration>>,
        out: &mut Vec<Decision>,
    ) -> Result<(), CommandError> {
        let entry = self
            .r
            .lookup(addr)
            .ok_or(CommandError::OutsideNetworks(addr))?;
        let profile = self.r.entries[entry as usize].profile;
        let ladder = self.r.ladder(profile);
        let top = ladder
            .iter()
            .position(|r| r.rung() == rung)
            .ok_or(CommandError::NotInLadder(rung))?;
        if rung.announces() && !self.r.may_announce(crate::report::host_prefix(addr)) {
            return Err(CommandError::Refused(
                rung,
                crate::decision::Refusal::NoAnnounceablePrefix,
            ));
        }
        let hold = match until {
            None => Hold::Permanent,
            Some(d) => Hold::Until(now.plus(d.unwrap_or(ladder[top].hold))),
        };
        let key = (Target::Host(addr), direction);
        if !self.incidents.contains_key(&key) {
            if self.incidents.len() >= self.r.cfg.max_hosts {
                return Err(CommandError::TooMany);
            }
            let trigger = Trigger {
                by: TriggerKind::Manual,
                metric: Metric::Pps,
                rate: self.smoothed(addr, direction, Metric::Pps, now) as u64,
                threshold: 0,
            };
            let name = self.r.profiles[profile as usize].name.clone();
            let kind = AttackKind::Generic {
                metric: Metric::Pps,
            };
            let report = AttackReport::new(kind, direction, &name, trigger, now);
            self.incidents
                .insert(key.clone(), Incident::new(profile, report, hold, now));
            self.start(&key, now, out);
        }
        if let Some(inc) = self.incidents.get_mut(&key) {
            inc.hold = hold;
        }
        while self.incidents.get(&key).is_some_and(|i| i.next <= top) {
            if !self.escalate(&key, now, out) {
                break;
            }
        }
        Ok(())
    }
}
