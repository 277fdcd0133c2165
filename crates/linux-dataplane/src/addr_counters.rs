//! The guard's per-address counters in the kernel (`tg_addrs`, see
//! `bpf_classify::counters`): found beside the eBPF classifier, read
//! (never written) every tick, the CPUs' copies summed and the previous
//! read taken away.
//!
//! **Finding the map.** Like the classifier: its pin
//! (`/sys/fs/bpf/tollgate/<netns>/tg_addrs`), else through tollgate's own
//! tc filters in this network namespace (the programs they run, and the
//! map of that name those programs use). Other namespaces' classifiers
//! are never taken: only this namespace's filters lead to a map.
//!
//! **Reading.** One `BPF_MAP_LOOKUP_BATCH` call per 4,096 entries (the
//! kernel copies keys and every CPU's values at once); a kernel without
//! batch lookups for this map type gets aya's key-by-key iteration (two
//! calls per entry). An entry the LRU evicted and the program made again
//! counts from zero: its delta is its whole count (`AddrCounts::since`).

use crate::rtnl::Rtnl;
use aya::maps::{Map, MapData, PerCpuHashMap};
use bpf_classify::counters::{self, AddrCounts, Way, KEY_LEN, VALUE_WORDS};
use std::collections::HashMap;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd};
use std::time::{Duration, Instant};
use tc_netlink::consts::{CLSACT_EGRESS, CLSACT_INGRESS};

/// Entries asked for per batch call.
const BATCH: usize = 4096;

/// The counters map of this namespace's classifier.
pub struct AddrCounterMap {
    data: MapData,
    /// Possible CPUs: the per-CPU values the kernel returns per entry.
    cpus: usize,
    /// Whether batch lookups work here (cleared at the first refusal).
    batch: bool,
    /// The map's id, to tell a fresh object's map from this one.
    id: u32,
}

/// Per (address, direction): the counts, summed over CPUs.
pub type Totals = HashMap<(IpAddr, Way), AddrCounts>;

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

/// The ids of the programs tollgate's own tc filters run in this
/// namespace.
pub(crate) fn own_program_ids(rtnl: &mut Rtnl) -> Result<Vec<u32>, String> {
    let mut ids = Vec::new();
    for link in rtnl.links().map_err(err)? {
        for parent in [CLSACT_EGRESS, CLSACT_INGRESS] {
            // A device without clsact has no filters to list.
            let Ok(filters) = rtnl.filters(link.ifindex, parent) else {
                continue;
            };
            for f in filters {
                if !crate::clsact::is_own_entry(&f) {
                    continue;
                }
                let Some(b) = &f.bpf else { continue };
                let named = b
                    .name
                    .as_deref()
                    .and_then(plan::Program::from_name)
                    .is_some();
                if let (true, Some(id)) = (named, b.id) {
                    if !ids.contains(&id) {
                        ids.push(id);
                    }
                }
            }
        }
    }
    Ok(ids)
}

impl AddrCounterMap {
    /// Finds the map of this namespace's classifier; the error says why
    /// not (no classifier yet, or an object without counters).
    pub fn find() -> Result<AddrCounterMap, String> {
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| format!("{what}: {e}"))?;
        if let Some(dir) = crate::bpf::pin_dir() {
            if let Ok(data) = MapData::from_pin(dir.join(counters::MAP)) {
                return Self::new(data, cpus);
            }
        }
        let mut rtnl = Rtnl::open().map_err(err)?;
        let ids = own_program_ids(&mut rtnl)?;
        if ids.is_empty() {
            return Err(
                "no eBPF classifier in this network namespace (no tollgate filter runs one)".into(),
            );
        }
        for info in aya::programs::loaded_programs().flatten() {
            if !ids.contains(&info.id()) {
                continue;
            }
            for id in info.map_ids().ok().flatten().unwrap_or_default() {
                let Ok(m) = aya::maps::MapInfo::from_id(id) else {
                    continue;
                };
                if m.name_as_str() == Some(counters::MAP) {
                    return Self::new(MapData::from_id(id).map_err(err)?, cpus);
                }
            }
        }
        Err(format!(
            "the eBPF classifier in this namespace has no `{}` map (loaded by an older tollgate?)",
            counters::MAP
        ))
    }

    /// The map with this id (a benchmark's own, or one found by hand).
    pub fn from_id(id: u32) -> Result<AddrCounterMap, String> {
        let cpus = aya::util::nr_cpus().map_err(|(what, e)| format!("{what}: {e}"))?;
        Self::new(MapData::from_id(id).map_err(err)?, cpus)
    }

    /// Reads key by key from now on (aya's iteration), as on a kernel
    /// without batch lookups: for measuring the difference.
    pub fn without_batches(&mut self) {
        self.batch = false;
    }

    fn new(data: MapData, cpus: usize) -> Result<AddrCounterMap, String> {
        let id = data.info().map_err(err)?.id();
        Ok(AddrCounterMap {
            data,
            cpus,
            batch: true,
            id,
        })
    }

    /// The map's id in the kernel.
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Every entry, summed over CPUs, into `out` (cleared first).
    pub fn read(&mut self, out: &mut Totals) -> Result<(), String> {
        out.clear();
        if self.batch {
            match self.read_batch(out) {
                Ok(()) => return Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) && out.is_empty() => {
                    tracing::info!(
                        "batch lookups refused on {}; reading key by key",
                        counters::MAP
                    );
                    self.batch = false;
                }
                Err(e) => return Err(format!("reading {}: {e}", counters::MAP)),
            }
        }
        self.read_iter(out)
    }

    fn read_iter(&mut self, out: &mut Totals) -> Result<(), String> {
        // A second descriptor of the same map, typed for aya.
        let data = MapData::from_id(self.id).map_err(err)?;
        let map: PerCpuHashMap<MapData, [u8; KEY_LEN], [u64; VALUE_WORDS]> =
            PerCpuHashMap::try_from(Map::PerCpuLruHashMap(data)).map_err(err)?;
        for e in map.iter() {
            // An entry evicted between the key and its value is skipped.
            let Ok((k, per_cpu)) = e else { continue };
            let Some(key) = counters::read_key(&k) else {
                continue;
            };
            let slot = out.entry(key).or_default();
            for w in per_cpu.iter() {
                slot.add(&AddrCounts::from_words(*w));
            }
        }
        Ok(())
    }

    /// `BPF_MAP_LOOKUP_BATCH` until the kernel says there is no more
    /// (aya has no batch calls: the one `unsafe` is the syscall).
    #[allow(unsafe_code)]
    fn read_batch(&mut self, out: &mut Totals) -> std::io::Result<()> {
        let stride = VALUE_WORDS * self.cpus;
        let mut keys = vec![0u8; KEY_LEN * BATCH];
        let mut values = vec![0u64; stride * BATCH];
        let mut token = [0u64; 1];
        let mut first = true;
        let fd = self.data.fd().as_fd().as_raw_fd() as u32;
        loop {
            let mut attr = BatchAttr {
                in_batch: if first { 0 } else { token.as_ptr() as u64 },
                out_batch: token.as_mut_ptr() as u64,
                keys: keys.as_mut_ptr() as u64,
                values: values.as_mut_ptr() as u64,
                count: BATCH as u32,
                map_fd: fd,
                elem_flags: 0,
                flags: 0,
            };
            // SAFETY: `attr` is the kernel's `bpf_attr.batch` layout; the
            // buffers it points to hold `count` keys and `count` values
            // of every possible CPU, and outlive the call.
            let r = unsafe {
                libc::syscall(
                    libc::SYS_bpf,
                    BPF_MAP_LOOKUP_BATCH,
                    &mut attr as *mut BatchAttr,
                    std::mem::size_of::<BatchAttr>(),
                )
            };
            let done = if r < 0 {
                let e = std::io::Error::last_os_error();
                if e.raw_os_error() != Some(libc::ENOENT) {
                    return Err(e);
                }
                true
            } else {
                false
            };
            for i in 0..attr.count as usize {
                let Some(key) = counters::read_key(&keys[i * KEY_LEN..(i + 1) * KEY_LEN]) else {
                    continue;
                };
                let mut sum = AddrCounts::default();
                for cpu in 0..self.cpus {
                    let at = i * stride + cpu * VALUE_WORDS;
                    let w: [u64; VALUE_WORDS] = std::array::from_fn(|j| values[at + j]);
                    sum.add(&AddrCounts::from_words(w));
                }
                out.entry(key).or_default().add(&sum);
            }
            if done {
                return Ok(());
            }
            first = false;
        }
    }
}

const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;

/// `bpf_attr`'s `batch` member.
#[repr(C)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// One tick's deltas.
#[derive(Clone, Debug)]
pub struct AddrTick {
    /// When the previous read was taken.
    pub started: Instant,
    /// When this one was.
    pub ended: Instant,
    /// Per (address, direction), the entries that counted something,
    /// sorted.
    pub hosts: Vec<(IpAddr, Way, AddrCounts)>,
    /// Entries in the map now.
    pub entries: usize,
}

/// Reads the map and hands out deltas.
pub struct AddrCounterReader {
    map: AddrCounterMap,
    last: Totals,
    now: Totals,
    last_at: Instant,
}

impl AddrCounterReader {
    /// Starts from what the map holds now (the first tick counts only what
    /// comes after).
    pub fn new(mut map: AddrCounterMap) -> Result<AddrCounterReader, String> {
        let mut last = Totals::new();
        map.read(&mut last)?;
        Ok(AddrCounterReader {
            map,
            last,
            now: Totals::new(),
            last_at: Instant::now(),
        })
    }

    /// The map read.
    pub fn map(&self) -> &AddrCounterMap {
        &self.map
    }

    /// Reads the map and returns what was counted since the last read,
    /// sorted by address then direction.
    pub fn tick(&mut self) -> Result<AddrTick, String> {
        self.map.read(&mut self.now)?;
        let ended = Instant::now();
        let mut hosts: Vec<(IpAddr, Way, AddrCounts)> = self
            .now
            .iter()
            .filter_map(|(k, c)| {
                let d = match self.last.get(k) {
                    Some(b) => c.since(b),
                    None => *c,
                };
                (d.packets > 0).then_some((k.0, k.1, d))
            })
            .collect();
        hosts.sort_unstable_by_key(|(a, w, _)| (*a, *w));
        std::mem::swap(&mut self.last, &mut self.now);
        let started = std::mem::replace(&mut self.last_at, ended);
        Ok(AddrTick {
            started,
            ended,
            hosts,
            entries: self.last.len(),
        })
    }
}

/// Ticks between looks for a newer classifier (an apply that had to load
/// a fresh object leaves the old map to nobody).
const REFIND_EVERY: u32 = 50;

/// Finds the map and calls `each` with a tick every `every` on the
/// monotonic clock (deadlines are kept: a slow read shortens the next
/// sleep, it does not shift every later tick) until `each` returns false
/// or `stop` is set. While there is no map (the classifier not loaded
/// yet), `each` gets the reason once per `every × 10` and the map is
/// looked for again; every [`REFIND_EVERY`] ticks it is looked for anew
/// and a different one (a fresh object) is taken over.
pub fn run(
    every: Duration,
    stop: &std::sync::atomic::AtomicBool,
    mut each: impl FnMut(Result<AddrTick, String>) -> bool,
) {
    let stopped = || stop.load(std::sync::atomic::Ordering::SeqCst);
    let mut reader: Option<AddrCounterReader> = None;
    let mut ticks = 0u32;
    let mut next = Instant::now();
    while !stopped() {
        if reader.is_none() || ticks.is_multiple_of(REFIND_EVERY) {
            let found = AddrCounterMap::find().and_then(|m| {
                if reader.as_ref().is_some_and(|r| r.map().id() == m.id()) {
                    return Ok(None);
                }
                AddrCounterReader::new(m).map(Some)
            });
            match found {
                Ok(Some(r)) => {
                    tracing::info!(map = r.map().id(), "reading the per-address counters");
                    reader = Some(r);
                }
                // The one being read is still the one in use.
                Ok(None) => {}
                Err(e) if reader.is_none() => {
                    if !each(Err(e)) {
                        return;
                    }
                    // Not there yet: wait longer before the next look.
                    for _ in 0..10 {
                        if stopped() {
                            return;
                        }
                        std::thread::sleep(every);
                    }
                    next = Instant::now();
                    continue;
                }
                // The one being read is still good to read.
                Err(_) => {}
            }
        }
        ticks = ticks.wrapping_add(1);
        next += every;
        let now = Instant::now();
        if next > now {
            std::thread::sleep(next - now);
        } else if now - next > every {
            // Behind by more than a tick (a stopped process): start again.
            next = now;
        }
        let Some(r) = reader.as_mut() else { continue };
        let t = r.tick();
        if t.is_err() {
            reader = None;
        }
        if !each(t) {
            return;
        }
    }
}
