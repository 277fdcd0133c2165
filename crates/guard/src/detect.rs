//! The detector: per-address smoothed and instantaneous rates, checked
//! against the resolved thresholds every tick, feeding the ladder.
//!
//! The host table is sparse: an address gets an entry when its first
//! sample arrives and loses it after `idle` without traffic, so a /8 costs
//! nothing until it has traffic. The table never holds more than
//! `max_hosts` entries; samples for further addresses are counted as
//! overflow (they still count in their group's totals), unless they are
//! over a threshold: then a quiet address makes room.
//!
//! Each address keeps, per direction, one EWMA per metric. A tick of
//! length Δt with rate r updates it as `e ← e·k + r·(1−k)` with
//! `k = exp(−Δt/τ)`. An address absent from some ticks had rate 0 in them,
//! so its next update first decays by `exp(−gap/τ)` over the whole gap:
//! absent addresses cost nothing per tick.

// The rates are parallel arrays indexed by metric; index loops read best.
#![allow(clippy::needless_range_loop)]

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

/// One address's state in one direction: 112 bytes, so that a table of
/// 100k active addresses stays near 25 MB and a tick touches two cache
/// lines per sample.
#[derive(Clone, Copy, Debug)]
pub(crate) struct HostDir {
    /// Smoothed rates, by [`Metric::index`] (computed in `f64`, stored in
    /// `f32`: rates need 7 digits, not 16).
    ewma: [f32; METRICS],
    /// The rates over the last tick with traffic.
    inst: [f32; METRICS],
    /// That tick's time in nanoseconds (0: never).
    updated: u64,
    /// The start of the run of ticks over a threshold ([`NEVER`]: none).
    over_since: u64,
    /// [`ATTACKED`], [`FIRED`].
    pub(crate) flags: u8,
}

/// No run of ticks over a threshold.
const NEVER: u64 = u64::MAX;
/// An incident is open for the address in this direction.
pub(crate) const ATTACKED: u8 = 1;
/// A check fired in the current tick (so a second sample does not fire again).
const FIRED: u8 = 2;

const EMPTY_DIR: HostDir = HostDir {
    ewma: [0.0; METRICS],
    inst: [0.0; METRICS],
    updated: 0,
    over_since: NEVER,
    flags: 0,
};

fn nanos(t: Monotonic) -> u64 {
    u64::try_from(t.0.as_nanos()).unwrap_or(u64::MAX)
}

/// One tracked address.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Host {
    /// Its table entry (group and totals).
    entry: u32,
    pub(crate) dirs: [HostDir; 2],
}

/// The tracked addresses: a hash index from address to slot, and the
/// slots in one dense vector. The index's entries are 24 bytes, so for
/// 100k addresses it stays in the L2 cache and a lookup does not miss;
/// only the slot itself does (once). Freed slots are reused.
#[derive(Clone, Debug)]
pub(crate) struct HostTable {
    index: HashMap<IpAddr, u32, FixedState>,
    slots: Vec<Host>,
    free: Vec<u32>,
}

impl HostTable {
    fn new() -> HostTable {
        HostTable {
            index: HashMap::with_hasher(FixedState::with_seed(0x67_7561_7264)),
            slots: Vec::new(),
            free: Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.index.len()
    }

    fn slot(&self, addr: &IpAddr) -> Option<u32> {
        self.index.get(addr).copied()
    }

    fn contains_key(&self, addr: &IpAddr) -> bool {
        self.index.contains_key(addr)
    }

    pub(crate) fn get(&self, addr: &IpAddr) -> Option<&Host> {
        self.index.get(addr).map(|&i| &self.slots[i as usize])
    }

    pub(crate) fn get_mut(&mut self, addr: &IpAddr) -> Option<&mut Host> {
        self.index.get(addr).map(|&i| &mut self.slots[i as usize])
    }

    fn insert(&mut self, addr: IpAddr, host: Host) -> u32 {
        let i = match self.free.pop() {
            Some(i) => {
                self.slots[i as usize] = host;
                i
            }
            None => {
                self.slots.push(host);
                (self.slots.len() - 1) as u32
            }
        };
        self.index.insert(addr, i);
        i
    }

    fn remove(&mut self, addr: &IpAddr) {
        if let Some(i) = self.index.remove(addr) {
            self.free.push(i);
        }
    }

    fn retain(&mut self, mut keep: impl FnMut(&Host) -> bool) {
        let slots = &self.slots;
        let free = &mut self.free;
        self.index.retain(|_, i| {
            let k = keep(&slots[*i as usize]);
            if !k {
                free.push(*i);
            }
            k
        });
    }

    fn iter(&self) -> impl Iterator<Item = (&IpAddr, &Host)> {
        self.index
            .iter()
            .map(|(a, &i)| (a, &self.slots[i as usize]))
    }
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
    /// Quiet addresses forgotten to make room for one over a threshold
    /// while the table was full.
    pub evicted: u64,
    /// Observations not later than the previous one, ignored.
    pub stale: u64,
    /// Addresses forgotten after `idle` without traffic.
    pub expired: u64,
}

/// The detector and its ladder. Feed it [`Observation`]s with
/// [`Detector::tick`] and operators' [`Command`]s with
/// [`Detector::command`]; carry out the [`Decision`]s it returns, in order.
#[derive(Clone)]
pub struct Detector {
    pub(crate) r: Resolved,
    pub(crate) hosts: HostTable,
    /// Per total slot (a profile with totals), per direction.
    groups: Vec<[GroupDir; 2]>,
    pub(crate) incidents: BTreeMap<(Target, Direction), Incident>,
    prev: Option<Monotonic>,
    last_sweep: Monotonic,
    stats: Stats,
}

impl std::fmt::Debug for Detector {
    /// A summary: the tables can hold a million addresses.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detector")
            .field("stats", &self.stats())
            .field("groups", &self.r.profiles.len())
            .field("prev", &self.prev)
            .finish_non_exhaustive()
    }
}

/// What the pass over the samples found about one address.
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
        let groups = vec![Default::default(); r.total_slots.len()];
        Ok(Detector {
            r,
            hosts: HostTable::new(),
            groups,
            incidents: BTreeMap::new(),
            prev: None,
            last_sweep: Monotonic::ZERO,
            stats: Stats::default(),
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
        let gap = Duration::from_nanos(nanos(now).saturating_sub(d.updated));
        f64::from(d.ewma[metric.index()]) * self.decay(gap)
    }

    fn decay(&self, gap: Duration) -> f64 {
        (-gap.as_secs_f64() / self.r.cfg.ewma.as_secs_f64()).exp()
    }

    /// Stamps the wall-clock start (`unix_ms`, the caller's clock now) on
    /// every open incident that has none yet, and on `decisions`' reports
    /// that have none: call it with each round's decisions, so that the
    /// reports they carry and the saved state agree.
    pub fn stamp(&mut self, unix_ms: i64, decisions: &mut [Decision]) {
        for inc in self.incidents.values_mut() {
            inc.report.started_at_ms.get_or_insert(unix_ms);
        }
        for d in decisions.iter_mut() {
            if let Some(step) = d.step_mut() {
                let known = self
                    .incidents
                    .get(&(step.target.clone(), step.direction))
                    .and_then(|i| i.report.started_at_ms);
                step.attack.started_at_ms = step.attack.started_at_ms.or(known).or(Some(unix_ms));
            }
        }
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
        let full = self.hosts.len() >= self.r.cfg.max_hosts;
        if now.since(self.last_sweep) >= self.r.cfg.idle
            || (full && now.since(self.last_sweep) >= Duration::from_secs(1))
        {
            // Idle addresses go every `idle`; with a full table, at most
            // once a second (a sweep visits every address).
            self.sweep(now);
        }
        let now_ns = nanos(now);
        let prev_ns = nanos(prev);
        let instant = self.r.cfg.instant.map(|d| d.as_nanos() as u64);
        let tau = self.r.cfg.ewma.as_secs_f64();
        let max_hosts = self.r.cfg.max_hosts;
        let mut events: Vec<(IpAddr, Direction, Event)> = Vec::new();

        // One pass: update each address's rates and check them; the table
        // is looked up once per sample.
        for s in &obs.hosts {
            let dir = s.direction.index();
            let counts = Metric::counts(&s.counters);
            if self.hosts.len() >= max_hosts && !self.hosts.contains_key(&s.addr) {
                // Full, and a new address. If its traffic is over a
                // threshold, a quiet address makes room: otherwise anyone
                // could blind the detector by touching `max_hosts`
                // addresses before flooding one more.
                if let Some(entry) = self.r.lookup(s.addr) {
                    let profile = self.r.entries[entry as usize].profile as usize;
                    let lim = &self.r.profiles[profile].limits[dir];
                    if (0..METRICS).any(|m| counts[m] * per_sec > lim[m]) {
                        self.evict_one();
                    }
                }
            }
            let len = self.hosts.len();
            let slot = match self.hosts.slot(&s.addr) {
                Some(i) => i,
                None => {
                    let Some(entry) = self.r.lookup(s.addr) else {
                        self.stats.outside += 1;
                        continue;
                    };
                    if len >= max_hosts {
                        self.stats.overflow += 1;
                        add_totals(
                            &self.r,
                            &mut self.groups,
                            entry,
                            dir,
                            &counts,
                            per_sec,
                            &s.counters,
                        );
                        continue;
                    }
                    let mut host = Host {
                        entry,
                        dirs: [EMPTY_DIR; 2],
                    };
                    if !self.incidents.is_empty() {
                        // A manual or restored ban made before the address
                        // had traffic.
                        for d in Direction::ALL {
                            if self.incidents.contains_key(&(Target::Host(s.addr), d)) {
                                host.dirs[d.index()].flags |= ATTACKED;
                            }
                        }
                    }
                    self.hosts.insert(s.addr, host)
                }
            };
            let h = &mut self.hosts.slots[slot as usize];
            let entry = h.entry;
            let d = &mut h.dirs[dir];
            let first = d.updated != now_ns;
            if first {
                let keep = if d.updated == prev_ns {
                    keep_tick
                } else {
                    // Absent since `updated`: zero traffic in between.
                    d.over_since = NEVER;
                    (-(now_ns.saturating_sub(d.updated) as f64) / 1e9 / tau).exp()
                };
                for m in 0..METRICS {
                    let r = counts[m] * per_sec;
                    d.ewma[m] = (f64::from(d.ewma[m]) * keep + r * gain) as f32;
                    d.inst[m] = r as f32;
                }
                d.updated = now_ns;
                d.flags &= !FIRED;
            } else {
                // A second sample for the same tick: the update is linear.
                for m in 0..METRICS {
                    let r = counts[m] * per_sec;
                    d.ewma[m] += (r * gain) as f32;
                    d.inst[m] += r as f32;
                }
            }
            let profile = self.r.entries[entry as usize].profile as usize;
            let lim = &self.r.profiles[profile].limits[dir];
            let inst_over = (0..METRICS).find(|&m| f64::from(d.inst[m]) > lim[m]);
            match inst_over {
                Some(_) if d.over_since == NEVER => d.over_since = prev_ns,
                Some(_) => {}
                None => d.over_since = NEVER,
            }
            if d.flags & ATTACKED != 0 {
                if first {
                    events.push((s.addr, s.direction, Event::Seen));
                }
            } else if d.flags & FIRED == 0 {
                let smoothed = (0..METRICS).find(|&m| f64::from(d.ewma[m]) > lim[m]);
                let instant_fired = match instant {
                    Some(w) if d.over_since != NEVER => now_ns - d.over_since >= w,
                    _ => false,
                };
                let trigger = match (smoothed, instant_fired, inst_over) {
                    (Some(m), _, _) => Some((TriggerKind::Smoothed, m, d.ewma)),
                    (None, true, Some(m)) => Some((TriggerKind::Instant, m, d.inst)),
                    _ => None,
                };
                if let Some((by, m, rates)) = trigger {
                    let rates = rates.map(f64::from);
                    let trigger = Trigger {
                        by,
                        metric: Metric::ALL[m],
                        rate: rates[m].round() as u64,
                        threshold: lim[m] as u64,
                    };
                    d.flags |= FIRED;
                    events.push((s.addr, s.direction, Event::Fire(trigger, rates)));
                }
            }
            if !self.r.entries[entry as usize].totals.is_empty() {
                add_totals(
                    &self.r,
                    &mut self.groups,
                    entry,
                    dir,
                    &counts,
                    per_sec,
                    &s.counters,
                );
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
                        self.mark(&key, true);
                        self.start(&key, now, &mut out);
                    }
                }
            }
        }

        // Group totals.
        for slot in 0..self.groups.len() {
            for direction in Direction::ALL {
                self.group_tick(
                    slot, direction, prev, now, keep_tick, gain, per_sec, &mut out,
                );
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

    #[allow(clippy::too_many_arguments)]
    fn group_tick(
        &mut self,
        slot: usize,
        direction: Direction,
        prev: Monotonic,
        now: Monotonic,
        keep: f64,
        gain: f64,
        per_sec: f64,
        out: &mut Vec<Decision>,
    ) {
        let p = self.r.total_slots[slot];
        let lim = self.r.profiles[p].totals[direction.index()];
        let g = &mut self.groups[slot][direction.index()];
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
                let fresh = d.updated == nanos(now);
                let k = if fresh {
                    1.0
                } else {
                    self.decay(Duration::from_nanos(nanos(now).saturating_sub(d.updated)))
                };
                (0..METRICS).all(|m| {
                    let inst = if fresh { f64::from(d.inst[m]) } else { 0.0 };
                    f64::from(d.ewma[m]) * k <= h * lim[m] && inst <= h * lim[m]
                })
            }
            Target::Group(_) => {
                // The incident knows its group's profile: no search by name.
                let Some(p) = self.incidents.get(key).map(|i| i.profile as usize) else {
                    return true;
                };
                let Some(slot) = self.r.slot_of[p] else {
                    return true;
                };
                let lim = &self.r.profiles[p].totals[dir];
                let g = &self.groups[slot as usize][dir];
                (0..METRICS).all(|m| g.ewma[m] <= h * lim[m] && g.inst[m] <= h * lim[m])
            }
        }
    }

    /// Sets or clears the address's "incident open" flag.
    pub(crate) fn mark(&mut self, key: &(Target, Direction), attacked: bool) {
        if let Target::Host(addr) = &key.0 {
            if let Some(h) = self.hosts.get_mut(addr) {
                let f = &mut h.dirs[key.1.index()].flags;
                if attacked {
                    *f |= ATTACKED;
                } else {
                    *f &= !ATTACKED;
                }
            }
        }
    }

    /// Forgets one quiet address (not attacked, every smoothed rate under
    /// its threshold × hysteresis) among the first few in the table, if
    /// there is one.
    fn evict_one(&mut self) {
        const SCAN: usize = 64;
        let h = self.r.cfg.hysteresis;
        let r = &self.r;
        let victim = self.hosts.iter().take(SCAN).find_map(|(addr, host)| {
            let profile = r.entries[host.entry as usize].profile as usize;
            let quiet = Direction::ALL.iter().all(|d| {
                let hd = &host.dirs[d.index()];
                let lim = &r.profiles[profile].limits[d.index()];
                hd.flags & ATTACKED == 0
                    && (0..METRICS).all(|m| f64::from(hd.ewma[m]) <= h * lim[m])
            });
            quiet.then_some(*addr)
        });
        if let Some(addr) = victim {
            self.hosts.remove(&addr);
            self.stats.evicted += 1;
        }
    }

    /// Forgets addresses idle for `idle` that no incident holds.
    fn sweep(&mut self, now: Monotonic) {
        self.last_sweep = now;
        let idle = self.r.cfg.idle;
        let idle = nanos(Monotonic(idle));
        let now_ns = nanos(now);
        let before = self.hosts.len();
        self.hosts.retain(|h| {
            let last = h.dirs[0].updated.max(h.dirs[1].updated);
            now_ns.saturating_sub(last) < idle
                || (h.dirs[0].flags | h.dirs[1].flags) & ATTACKED != 0
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
                        h.dirs[d] = HostDir {
                            updated: h.dirs[d].updated,
                            ..EMPTY_DIR
                        };
                    }
                }
            }
            Command::UnbanGroup {
                ref group,
                direction,
            } => {
                let dirs: Vec<Direction> = match direction {
                    Some(d) => vec![d],
                    None => Direction::ALL.to_vec(),
                };
                let mut any = false;
                for d in dirs {
                    let key = (Target::Group(group.clone()), d);
                    if self.incidents.contains_key(&key) {
                        any = true;
                        self.stop_all(&key, now, &mut out);
                        let slot = self
                            .r
                            .profiles
                            .iter()
                            .position(|p| &p.name == group)
                            .and_then(|p| self.r.slot_of[p]);
                        if let Some(slot) = slot {
                            // Afresh, as for an address.
                            self.groups[slot as usize][d.index()] = GroupDir::default();
                        }
                    }
                }
                if !any {
                    return Err(CommandError::GroupNotBanned(group.clone()));
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
        self.mark(&key, true);
        while self.incidents.get(&key).is_some_and(|i| i.next <= top) {
            if !self.escalate(&key, now, out) {
                break;
            }
        }
        Ok(())
    }
}

/// Adds one sample to the totals of the groups its address counts in.
#[inline]
fn add_totals(
    r: &Resolved,
    groups: &mut [[GroupDir; 2]],
    entry: u32,
    dir: usize,
    counts: &[f64; METRICS],
    per_sec: f64,
    c: &HostCounters,
) {
    for &t in &r.entries[entry as usize].totals {
        let g = &mut groups[t as usize][dir];
        for m in 0..METRICS {
            g.inst[m] += counts[m] * per_sec;
        }
        g.counters.add(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/guard.md states the memory per address; keep it true.
    #[test]
    fn an_address_costs_232_bytes() {
        assert_eq!(std::mem::size_of::<HostDir>(), 112);
        assert_eq!(std::mem::size_of::<Host>(), 232);
    }
}
