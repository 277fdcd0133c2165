//! Passive TCP RTT from the kernel: the eBPF classifier's ring buffer
//! `tg_rtt_events` (`bpf_classify::rtt`), found beside the classifier and
//! drained; the events it could not take are read from `tg_rtt_stats`.
//!
//! Found like the per-address counters: by its pin
//! (`/sys/fs/bpf/tollgate/<netns>/tg_rtt_events`), else through tollgate's
//! own tc filters in this network namespace (the programs they run, and
//! the map of that name those programs use). Only one reader should
//! drain a ring buffer: what one takes, the other does not see.

use aya::maps::{Map, MapData, PerCpuArray, RingBuf};
use bpf_classify::rtt::{self, Event};

/// The ring buffer of this namespace's classifier.
pub struct RttEvents {
    ring: RingBuf<MapData>,
    stats: Option<PerCpuArray<MapData, u64>>,
    id: u32,
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl RttEvents {
    /// Finds the ring buffer of this namespace's classifier; the error
    /// says why not (no classifier yet, or an object without it).
    pub fn find() -> Result<RttEvents, String> {
        if let Some(dir) = crate::bpf::pin_dir() {
            if let Ok(data) = MapData::from_pin(dir.join(rtt::EVENTS)) {
                let stats = MapData::from_pin(dir.join(rtt::STATS)).ok();
                return Self::new(data, stats);
            }
        }
        let mut rtnl = crate::rtnl::Rtnl::open().map_err(err)?;
        let ids = crate::addr_counters::own_program_ids(&mut rtnl)?;
        if ids.is_empty() {
            return Err(
                "no eBPF classifier in this network namespace (no tollgate filter runs one)".into(),
            );
        }
        let (mut ring, mut stats) = (None, None);
        for info in aya::programs::loaded_programs().flatten() {
            if !ids.contains(&info.id()) {
                continue;
            }
            for id in info.map_ids().ok().flatten().unwrap_or_default() {
                let Ok(m) = aya::maps::MapInfo::from_id(id) else {
                    continue;
                };
                match m.name_as_str() {
                    Some(rtt::EVENTS) if ring.is_none() => ring = Some(id),
                    Some(rtt::STATS) if stats.is_none() => stats = Some(id),
                    _ => {}
                }
            }
        }
        match ring {
            Some(id) => Self::new(
                MapData::from_id(id).map_err(err)?,
                stats.and_then(|s| MapData::from_id(s).ok()),
            ),
            None => Err(format!(
                "the eBPF classifier in this namespace has no `{}` map (loaded by an older tollgate?)",
                rtt::EVENTS
            )),
        }
    }

    fn new(data: MapData, stats: Option<MapData>) -> Result<RttEvents, String> {
        let id = data.info().map_err(err)?.id();
        let ring = RingBuf::try_from(Map::RingBuf(data)).map_err(err)?;
        let stats = stats.and_then(|s| PerCpuArray::try_from(Map::PerCpuArray(s)).ok());
        Ok(RttEvents { ring, stats, id })
    }

    /// The ring buffer's id in the kernel (a fresh classifier object has
    /// a new one).
    pub fn id(&self) -> u32 {
        self.id
    }

    /// Takes up to `max` events into `out`; returns how many were taken
    /// that the program never writes (none, unless the object is not
    /// tollgate's).
    pub fn drain(&mut self, out: &mut Vec<Event>, max: usize) -> usize {
        let mut bad = 0;
        for _ in 0..max {
            let Some(item) = self.ring.next() else {
                break;
            };
            match rtt::read_event(&item) {
                Some(e) => out.push(e),
                None => bad += 1,
            }
        }
        bad
    }

    /// Events the ring buffer could not take since the object was loaded
    /// (summed over CPUs), if the counters were found.
    pub fn dropped(&self) -> Option<u64> {
        let s = self.stats.as_ref()?;
        let v = s.get(&rtt::STAT_DROPPED, 0).ok()?;
        Some(v.iter().sum())
    }
}
