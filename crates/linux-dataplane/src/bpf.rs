//! The eBPF classifier in the kernel: its programs and maps.
//!
//! The object is `bpf_classify::OBJECT` (C, compiled by that crate's
//! build script), loaded with aya. Its programs run in tollgate's tc
//! filters (`plan::Select::Ebpf`, attached by [`crate::apply`] with
//! `TCA_BPF_FD` like any other filter, so ownership by priority is
//! unchanged), and its maps hold what the plan's `tg_*` maps say.
//!
//! **Finding it again.** A restarted tollgate finds its classifier from
//! the kernel alone, like everything else it owns: first from its pins
//! (`/sys/fs/bpf/tollgate/<netns inode>/`, when bpffs is mounted there),
//! else from its own tc filters (the program id each one runs, and the
//! maps that program uses). When neither gives every program the plan
//! needs (the first VM on a host where no vif filter exists yet, and no
//! bpffs), the maps are read as absent: the apply loads a fresh object,
//! fills its maps from the plan and points every filter at it.

use aya::maps::{Array, HashMap as BpfHash, LpmTrie, Map, MapData};
use aya::programs::{ProgramFd, SchedClassifier};
use net_types::IfName;
use plan::{MapKey, MapKind, MapValue, NftMap, Program, BPF_PIN_DIR};
use std::collections::{BTreeMap, HashMap};
use std::os::fd::{AsFd, AsRawFd};
use std::path::PathBuf;

/// Why the classifier could not be loaded or found.
#[derive(Debug)]
pub enum BpfError {
    /// The object or a program was refused (verifier, missing feature).
    Load(String),
    /// A map the object should have is not there.
    MissingMap(&'static str),
}

impl std::fmt::Display for BpfError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BpfError::Load(e) => write!(f, "could not load tollgate's eBPF classifier: {e}"),
            BpfError::MissingMap(m) => write!(f, "tollgate's eBPF object has no map `{m}`"),
        }
    }
}

impl std::error::Error for BpfError {}

/// One of the maps, typed as the C program declares it.
enum Handle {
    Lpm4(LpmTrie<MapData, [u8; 4], u32>),
    Lpm6(LpmTrie<MapData, [u8; 16], u32>),
    Hash(BpfHash<MapData, u32, u32>),
    Pair(BpfHash<MapData, [u32; 2], u32>),
    Words(Array<MapData, u32>),
}

fn map_err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl Handle {
    fn new(kind: MapKind, data: MapData) -> Result<Handle, String> {
        Ok(match kind {
            MapKind::BpfTenants4 | MapKind::BpfRealms4 => {
                Handle::Lpm4(LpmTrie::try_from(Map::LpmTrie(data)).map_err(map_err)?)
            }
            MapKind::BpfTenants6 | MapKind::BpfRealms6 => {
                Handle::Lpm6(LpmTrie::try_from(Map::LpmTrie(data)).map_err(map_err)?)
            }
            MapKind::BpfVifs => {
                Handle::Hash(BpfHash::try_from(Map::HashMap(data)).map_err(map_err)?)
            }
            MapKind::BpfClasses => {
                Handle::Pair(BpfHash::try_from(Map::HashMap(data)).map_err(map_err)?)
            }
            _ => Handle::Words(Array::try_from(Map::Array(data)).map_err(map_err)?),
        })
    }

    /// Every entry as (key bytes, value); zero words of the array are
    /// absent.
    fn entries(&self) -> Result<Vec<(Vec<u8>, u32)>, String> {
        let mut out = Vec::new();
        match self {
            Handle::Lpm4(m) => {
                for e in m.iter() {
                    let (k, v) = e.map_err(map_err)?;
                    let mut b = k.prefix_len().to_ne_bytes().to_vec();
                    b.extend_from_slice(&k.data());
                    out.push((b, v));
                }
            }
            Handle::Lpm6(m) => {
                for e in m.iter() {
                    let (k, v) = e.map_err(map_err)?;
                    let mut b = k.prefix_len().to_ne_bytes().to_vec();
                    b.extend_from_slice(&k.data());
                    out.push((b, v));
                }
            }
            Handle::Hash(m) => {
                for e in m.iter() {
                    let (k, v) = e.map_err(map_err)?;
                    out.push((k.to_ne_bytes().to_vec(), v));
                }
            }
            Handle::Pair(m) => {
                for e in m.iter() {
                    let (k, v) = e.map_err(map_err)?;
                    let mut b = k[0].to_ne_bytes().to_vec();
                    b.extend_from_slice(&k[1].to_ne_bytes());
                    out.push((b, v));
                }
            }
            Handle::Words(m) => {
                for (i, v) in m.iter().enumerate() {
                    let v = v.map_err(map_err)?;
                    if v != 0 {
                        out.push(((i as u32).to_ne_bytes().to_vec(), v));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Writes one entry (`value` None: removes it; an array word is zeroed).
    fn write(&mut self, key: &[u8], value: Option<u32>) -> Result<(), String> {
        let bad = || format!("bad key of {} bytes", key.len());
        let u32_at = |i: usize| -> Option<u32> {
            Some(u32::from_ne_bytes(key.get(i..i + 4)?.try_into().ok()?))
        };
        let r = match self {
            Handle::Lpm4(m) => {
                let len = u32_at(0).ok_or_else(bad)?;
                let a: [u8; 4] = key
                    .get(4..8)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(bad)?;
                let k = aya::maps::lpm_trie::Key::new(len, a);
                match value {
                    Some(v) => m.insert(&k, v, 0),
                    None => m.remove(&k),
                }
            }
            Handle::Lpm6(m) => {
                let len = u32_at(0).ok_or_else(bad)?;
                let a: [u8; 16] = key
                    .get(4..20)
                    .and_then(|s| s.try_into().ok())
                    .ok_or_else(bad)?;
                let k = aya::maps::lpm_trie::Key::new(len, a);
                match value {
                    Some(v) => m.insert(&k, v, 0),
                    None => m.remove(&k),
                }
            }
            Handle::Hash(m) => {
                let k = u32_at(0).ok_or_else(bad)?;
                match value {
                    Some(v) => m.insert(k, v, 0),
                    None => m.remove(&k),
                }
            }
            Handle::Pair(m) => {
                let k = [u32_at(0).ok_or_else(bad)?, u32_at(4).ok_or_else(bad)?];
                match value {
                    Some(v) => m.insert(k, v, 0),
                    None => m.remove(&k),
                }
            }
            Handle::Words(m) => {
                let i = u32_at(0).ok_or_else(bad)?;
                m.set(i, value.unwrap_or(0), 0)
            }
        };
        match r {
            // Removing what is already gone is done.
            Err(aya::maps::MapError::KeyNotFound | aya::maps::MapError::ElementNotFound)
                if value.is_none() =>
            {
                Ok(())
            }
            Err(aya::maps::MapError::SyscallError(e))
                if value.is_none() && e.io_error.raw_os_error() == Some(libc::ENOENT) =>
            {
                Ok(())
            }
            r => r.map_err(map_err),
        }
    }
}

/// tollgate's classifier as found in, or loaded into, the kernel.
pub struct Classifier {
    programs: BTreeMap<Program, (ProgramFd, u32)>,
    maps: BTreeMap<&'static str, (MapKind, Handle)>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field(
                "programs",
                &self
                    .programs
                    .iter()
                    .map(|(p, (_, id))| (*p, *id))
                    .collect::<Vec<_>>(),
            )
            .field("maps", &self.maps.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// The folder this network namespace's pins live in, if bpffs is mounted
/// at `/sys/fs/bpf` (it is not inside `ip netns exec`, which remounts /sys).
pub fn pin_dir() -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    if !mounts.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.get(1) == Some(&"/sys/fs/bpf") && f.get(2) == Some(&"bpf")
    }) {
        return None;
    }
    let netns = std::fs::metadata("/proc/thread-self/ns/net").ok()?.ino();
    Some(PathBuf::from(BPF_PIN_DIR).join(netns.to_string()))
}

/// The most memory the per-address counters take: an LRU map is
/// preallocated, every entry once per possible CPU, even while the policy
/// does not count.
const COUNTER_MEMORY: usize = 64 << 20;

/// Entries of `tg_addrs`: [`bpf_classify::counters::MAX_ENTRIES`], fewer
/// on a host with so many CPUs that they would take more than
/// [`COUNTER_MEMORY`] (65,536 up to 11 CPUs; 11,915 at 64), never under
/// 4,096.
fn counter_entries() -> u32 {
    let cpus = aya::util::nr_cpus().unwrap_or(1).max(1);
    let per_entry = 8 * bpf_classify::counters::VALUE_WORDS * cpus;
    let fit = u32::try_from(COUNTER_MEMORY / per_entry).unwrap_or(u32::MAX);
    fit.clamp(4096, bpf_classify::counters::MAX_ENTRIES)
}

/// Pins the maps of passive TCP RTT (`bpf/rtt.h`) beside the others.
fn pin_rtt_maps(obj: &aya::Ebpf, dir: Option<&std::path::Path>) {
    let Some(dir) = dir else { return };
    let names = [bpf_classify::rtt::EVENTS, bpf_classify::rtt::STATS];
    for name in names.into_iter().chain(bpf_classify::rtt::STATE_MAPS) {
        if let Some(map) = obj.map(name) {
            if let Err(e) = map.pin(dir.join(name)) {
                tracing::warn!("could not pin {name}: {e}");
            }
        }
    }
}

/// Removes this namespace's pins (`tollgate down`). The programs and maps
/// go away when nothing else holds them (tollgate's filters are removed
/// by the same `down`).
pub fn unpin() -> std::io::Result<bool> {
    match pin_dir() {
        Some(dir) if dir.exists() => std::fs::remove_dir_all(&dir).map(|_| true),
        _ => Ok(false),
    }
}

impl Classifier {
    /// Loads a fresh object: new, empty maps and every program.
    pub fn load() -> Result<Classifier, BpfError> {
        let mut obj = aya::EbpfLoader::new()
            .set_max_entries(bpf_classify::counters::MAP, counter_entries())
            .load(bpf_classify::OBJECT)
            .map_err(|e| BpfError::Load(e.to_string()))?;
        // Pins are best effort: without bpffs there is nothing to pin into,
        // and the filters alone keep the programs and maps. A previous
        // classifier's pins are replaced: no filter will use them any more.
        let pins = pin_dir().filter(|dir| {
            let _ = std::fs::remove_dir_all(dir);
            std::fs::create_dir_all(dir)
                .map_err(|e| tracing::warn!("could not create {}: {e}", dir.display()))
                .is_ok()
        });
        let mut programs = BTreeMap::new();
        for p in Program::ALL {
            let prog: &mut SchedClassifier = obj
                .program_mut(p.name())
                .ok_or_else(|| BpfError::Load(format!("no program {}", p.name())))?
                .try_into()
                .map_err(|e: aya::programs::ProgramError| BpfError::Load(e.to_string()))?;
            prog.load()
                .map_err(|e| BpfError::Load(format!("{}: {e}", p.name())))?;
            let id = prog.info().map_err(|e| BpfError::Load(e.to_string()))?.id();
            let fd = prog
                .fd()
                .and_then(|f| f.try_clone().map_err(Into::into))
                .map_err(|e| BpfError::Load(e.to_string()))?;
            if let Some(dir) = &pins {
                if let Err(e) = prog.pin(dir.join(p.name())) {
                    tracing::warn!("could not pin {}: {e}", p.name());
                }
            }
            programs.insert(p, (fd, id));
        }
        let mut maps = BTreeMap::new();
        for (name, kind) in bpf_classify::MAPS {
            let Some(map) = obj.take_map(name) else {
                return Err(BpfError::MissingMap(name));
            };
            let data = match map {
                Map::LpmTrie(d) | Map::HashMap(d) | Map::Array(d) => d,
                _ => return Err(BpfError::MissingMap(name)),
            };
            if let Some(dir) = &pins {
                if let Err(e) = data.pin(dir.join(name)) {
                    tracing::warn!("could not pin {name}: {e}");
                }
            }
            maps.insert(
                name,
                (kind, Handle::new(kind, data).map_err(BpfError::Load)?),
            );
        }
        // The guard's counters are no plan map: pinned only, so that
        // `addr_counters` finds them the same way (the programs hold them).
        if let (Some(dir), Some(map)) = (&pins, obj.map(bpf_classify::counters::MAP)) {
            if let Err(e) = map.pin(dir.join(bpf_classify::counters::MAP)) {
                tracing::warn!("could not pin {}: {e}", bpf_classify::counters::MAP);
            }
        }
        // So are passive TCP RTT's maps: `rtt_events` drains the ring
        // buffer, the rest is the programs' own state.
        pin_rtt_maps(&obj, pins.as_deref());
        // And the throttle rung's victims, which the guard writes.
        for name in [
            bpf_classify::throttle::VICTIMS4,
            bpf_classify::throttle::VICTIMS6,
        ] {
            if let (Some(dir), Some(map)) = (&pins, obj.map(name)) {
                if let Err(e) = map.pin(dir.join(name)) {
                    tracing::warn!("could not pin {name}: {e}");
                }
            }
        }
        Ok(Classifier { programs, maps })
    }

    /// Finds the classifier from its pins, else from tollgate's filters'
    /// program ids. `None` when nothing of it is in the kernel.
    pub fn find(filter_programs: &[(Program, u32)]) -> Option<Classifier> {
        Self::from_pins().or_else(|| Self::from_ids(filter_programs))
    }

    fn from_pins() -> Option<Classifier> {
        let dir = pin_dir()?;
        let mut programs = BTreeMap::new();
        for p in Program::ALL {
            let Ok(info) = aya::programs::ProgramInfo::from_pin(dir.join(p.name())) else {
                continue;
            };
            if let Ok(fd) = info.fd() {
                programs.insert(p, (fd, info.id()));
            }
        }
        let mut maps = BTreeMap::new();
        for (name, kind) in bpf_classify::MAPS {
            let data = MapData::from_pin(dir.join(name)).ok()?;
            maps.insert(name, (kind, Handle::new(kind, data).ok()?));
        }
        Some(Classifier { programs, maps })
    }

    fn from_ids(filter_programs: &[(Program, u32)]) -> Option<Classifier> {
        let mut programs = BTreeMap::new();
        let mut map_ids = Vec::new();
        for info in aya::programs::loaded_programs().flatten() {
            let Some(&(p, _)) = filter_programs.iter().find(|(_, id)| *id == info.id()) else {
                continue;
            };
            // The kernel keeps 15 characters of a program's name.
            if !p.name().starts_with(info.name_as_str().unwrap_or("-")) {
                continue;
            }
            let Ok(fd) = info.fd() else { continue };
            // Each program holds only the maps it uses (tg_down has no use
            // for tg_vifs), so the classifier's maps are the union.
            for id in info.map_ids().ok().flatten().unwrap_or_default() {
                if !map_ids.contains(&id) {
                    map_ids.push(id);
                }
            }
            programs.insert(p, (fd, info.id()));
        }
        let mut maps = BTreeMap::new();
        for id in map_ids {
            let Ok(info) = aya::maps::MapInfo::from_id(id) else {
                continue;
            };
            let Some(name) = info.name_as_str() else {
                continue;
            };
            let Some(&(name, kind)) = bpf_classify::MAPS.iter().find(|(n, _)| *n == name) else {
                continue;
            };
            let data = MapData::from_id(id).ok()?;
            maps.insert(name, (kind, Handle::new(kind, data).ok()?));
        }
        // A map no attached program uses is not found; only a program that
        // is not attached either would need it, and then `has` fails and a
        // fresh object is loaded.
        (!programs.is_empty()).then_some(Classifier { programs, maps })
    }

    /// Whether it has every program in `needed`.
    pub fn has(&self, needed: impl IntoIterator<Item = Program>) -> bool {
        needed.into_iter().all(|p| self.programs.contains_key(&p))
    }

    /// Copies every element of `old`'s maps into this one's, so that a
    /// fresh object can take over from one that lacked a program (its
    /// maps are what the last observation read, and what the change set
    /// was computed against).
    pub fn copy_from(&mut self, old: &Classifier) -> Result<(), String> {
        for (name, (_, h)) in &old.maps {
            let Some((_, to)) = self.maps.get_mut(name) else {
                continue;
            };
            for (k, v) in h.entries()? {
                to.write(&k, Some(v))?;
            }
        }
        Ok(())
    }

    /// Whether it has the map named `name`.
    pub fn has_map(&self, name: &str) -> bool {
        self.maps.contains_key(name)
    }

    /// A program's id in the kernel.
    pub fn program_id(&self, p: Program) -> Option<u32> {
        self.programs.get(&p).map(|(_, id)| *id)
    }

    /// A file descriptor of a program, for `TCA_BPF_FD`.
    pub fn program_fd(&self, p: Program) -> Option<u32> {
        self.programs
            .get(&p)
            .map(|(fd, _)| fd.as_fd().as_raw_fd() as u32)
    }

    /// Every map's contents as plan maps.
    pub fn read(&self, names: &HashMap<u32, IfName>) -> Result<BTreeMap<String, NftMap>, String> {
        let mut out = BTreeMap::new();
        for (name, (kind, h)) in &self.maps {
            let mut elements = BTreeMap::new();
            for (k, v) in h.entries()? {
                // An entry tollgate would never write is left out, and so is
                // not compared: the program can only have it from someone
                // else, and a key tollgate wants is written over it.
                let Some(key) = bpf_classify::read_key(*kind, &k, |i| names.get(&i).copied())
                else {
                    continue;
                };
                elements.insert(key, bpf_classify::read_value(*kind, v.to_ne_bytes()));
            }
            out.insert(
                name.to_string(),
                NftMap {
                    kind: *kind,
                    elements,
                },
            );
        }
        Ok(out)
    }

    /// Writes one element (`value` None: removes it).
    pub fn write(
        &mut self,
        map: &str,
        key: &MapKey,
        value: Option<MapValue>,
        ifindex: &HashMap<IfName, u32>,
    ) -> Result<(), String> {
        let (kind, h) = self
            .maps
            .get_mut(map)
            .ok_or_else(|| format!("no BPF map {map}"))?;
        let k = bpf_classify::key_bytes(*kind, key, |d| ifindex.get(&d).copied())
            .ok_or_else(|| format!("{key} does not fit map {map}"))?;
        h.write(
            &k,
            value.map(|v| u32::from_ne_bytes(bpf_classify::value_bytes(v))),
        )
    }
}

/// The throttle rung's victims in the classifier in use
/// (`bpf_classify::throttle`): the guard's alone, never the plan's.
pub struct Victims {
    v4: LpmTrie<MapData, [u8; 8], u32>,
    v6: LpmTrie<MapData, [u8; 20], u32>,
}

impl std::fmt::Debug for Victims {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Victims")
    }
}

impl Victims {
    /// From the pins, else from the maps the filters' programs use.
    pub fn find(filter_programs: &[(Program, u32)]) -> Option<Victims> {
        use bpf_classify::throttle::{VICTIMS4, VICTIMS6};
        let open = |d4: MapData, d6: MapData| -> Option<Victims> {
            Some(Victims {
                v4: LpmTrie::try_from(Map::LpmTrie(d4)).ok()?,
                v6: LpmTrie::try_from(Map::LpmTrie(d6)).ok()?,
            })
        };
        if let Some(dir) = pin_dir() {
            if let (Ok(a), Ok(b)) = (
                MapData::from_pin(dir.join(VICTIMS4)),
                MapData::from_pin(dir.join(VICTIMS6)),
            ) {
                return open(a, b);
            }
        }
        let (mut d4, mut d6) = (None, None);
        for info in aya::programs::loaded_programs().flatten() {
            if !filter_programs.iter().any(|(_, id)| *id == info.id()) {
                continue;
            }
            for id in info.map_ids().ok().flatten().unwrap_or_default() {
                let Ok(m) = aya::maps::MapInfo::from_id(id) else {
                    continue;
                };
                match m.name_as_str() {
                    Some(VICTIMS4) if d4.is_none() => d4 = MapData::from_id(id).ok(),
                    Some(VICTIMS6) if d6.is_none() => d6 = MapData::from_id(id).ok(),
                    _ => {}
                }
            }
        }
        open(d4?, d6?)
    }

    /// Every victim: (way, prefix, rate in kbit/s).
    pub fn entries(&self) -> Result<Vec<(plan::guard::Way, net_types::Prefix, u32)>, String> {
        use bpf_classify::throttle::{read4, read6};
        let mut out = Vec::new();
        for e in self.v4.iter() {
            let (k, v) = e.map_err(map_err)?;
            if let Some((w, p)) = read4(k.prefix_len(), k.data()) {
                out.push((w, p, v));
            }
        }
        for e in self.v6.iter() {
            let (k, v) = e.map_err(map_err)?;
            if let Some((w, p)) = read6(k.prefix_len(), k.data()) {
                out.push((w, p, v));
            }
        }
        Ok(out)
    }

    /// Makes the victims exactly `wanted` (way, prefix, rate in kbit/s):
    /// adds and changes first, then removes. Returns (written, removed).
    pub fn sync(
        &mut self,
        wanted: &[(plan::guard::Way, net_types::Prefix, u32)],
    ) -> Result<(usize, usize), String> {
        use bpf_classify::throttle::{key4, key6};
        let present = self.entries()?;
        let (mut written, mut removed) = (0, 0);
        for (w, p, rate) in wanted {
            if present.contains(&(*w, *p, *rate)) {
                continue;
            }
            if let Some((len, d)) = key4(*w, *p) {
                self.v4
                    .insert(&aya::maps::lpm_trie::Key::new(len, d), rate, 0)
                    .map_err(map_err)?;
            } else if let Some((len, d)) = key6(*w, *p) {
                self.v6
                    .insert(&aya::maps::lpm_trie::Key::new(len, d), rate, 0)
                    .map_err(map_err)?;
            }
            written += 1;
        }
        for (w, p, _) in &present {
            if wanted.iter().any(|(ww, pp, _)| ww == w && pp == p) {
                continue;
            }
            if let Some((len, d)) = key4(*w, *p) {
                self.v4
                    .remove(&aya::maps::lpm_trie::Key::new(len, d))
                    .map_err(map_err)?;
            } else if let Some((len, d)) = key6(*w, *p) {
                self.v6
                    .remove(&aya::maps::lpm_trie::Key::new(len, d))
                    .map_err(map_err)?;
            }
            removed += 1;
        }
        Ok((written, removed))
    }
}
