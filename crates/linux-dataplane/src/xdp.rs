//! The XDP drop list in the kernel (`bpf_classify::xdp`): its programs
//! attached to the interfaces traffic enters by, and its tries' entries.
//!
//! **Whose program.** An interface holds one XDP program per mode. tollgate
//! attaches its own with `XDP_FLAGS_UPDATE_IF_NOEXIST`, so the kernel
//! itself refuses to put it over anyone else's, and checks first: an
//! interface with another program (an operator's) is refused by name and
//! program id and left as it is. It detaches only its own, with
//! `XDP_FLAGS_REPLACE` and its program as the expected one, so a program
//! put there meanwhile is never taken away.
//!
//! **Finding it again.** The programs are attached by netlink, which holds
//! them without a file or a pin; tollgate knows its own by their names
//! (`tg_xdp_in`, `tg_xdp_out`) on the interfaces of the calling process's
//! network namespace, and their maps by the ids the programs use. Nothing
//! is pinned: the programs live exactly as long as they are attached, and
//! `tollgate down` ([`detach_all`]) removes them, the maps with them.
//!
//! **Two writers, one trie.** The unused addresses (the policy's, written
//! by each apply) and the guard's rungs (written by the guard) share the
//! tries; each entry's value says whose it is ([`Why`]), and each writer
//! [`DropList::sync`]s only its own.

use crate::rtnl::{KernelError, Rtnl};
use aya::maps::lpm_trie::Key;
use aya::maps::{LpmTrie, Map, MapData, PerCpuArray};
use aya::programs::{ProgramFd, Xdp};
use bpf_classify::xdp::{Entry, Hook, Why};
use net_types::IfName;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::os::fd::{AsFd, AsRawFd};
use tc_netlink::consts::{
    XDP_FLAGS_DRV_MODE, XDP_FLAGS_HW_MODE, XDP_FLAGS_REPLACE, XDP_FLAGS_SKB_MODE,
    XDP_FLAGS_UPDATE_IF_NOEXIST,
};
use tc_netlink::{Request, XdpMode};

/// Why the drop list could not be put in place or written.
#[derive(Debug)]
pub enum XdpError {
    /// An interface of the policy has an XDP program that is not
    /// tollgate's: it is left alone.
    Occupied {
        /// The interface.
        device: String,
        /// The program's id (`bpftool prog show id …`).
        id: u32,
        /// The program's name, as the kernel keeps it.
        name: String,
    },
    /// The interface does not exist.
    NoDevice(String),
    /// The object was refused (verifier) or a map is missing.
    Load(String),
    /// The kernel refused an attach, a detach or a map write.
    Kernel(String),
}

impl fmt::Display for XdpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            XdpError::Occupied { device, id, name } => write!(
                f,
                "{device} already has an XDP program that is not tollgate's (id {id}, `{name}`): left alone, so the XDP drop list does not run there (hint: `ip link set dev {device} xdp off` if it is stale, or remove the drop rungs and `unused` from the policy)"
            ),
            XdpError::NoDevice(d) => write!(f, "no interface {d} for the XDP drop list"),
            XdpError::Load(e) => write!(f, "could not load tollgate's XDP drop list: {e}"),
            XdpError::Kernel(e) => write!(f, "XDP drop list: {e}"),
        }
    }
}

impl std::error::Error for XdpError {}

/// One of tollgate's programs attached to an interface.
#[derive(Debug)]
struct Ours {
    ifindex: u32,
    device: String,
    hook: Hook,
    mode: XdpMode,
    fd: ProgramFd,
    maps: Vec<u32>,
}

/// Someone else's XDP program: (device, id, name).
type Theirs = (String, u32, String);

/// Every XDP program on the interfaces: tollgate's, and the others'.
fn survey(rtnl: &mut Rtnl) -> Result<(Vec<Ours>, Vec<Theirs>), XdpError> {
    let links = rtnl
        .links()
        .map_err(|e| XdpError::Kernel(format!("cannot list interfaces: {e}")))?;
    let ids: BTreeSet<u32> = links
        .iter()
        .flat_map(|l| l.xdp_programs.iter().map(|(_, id)| *id))
        .collect();
    let mut infos = BTreeMap::new();
    if !ids.is_empty() {
        for info in aya::programs::loaded_programs().flatten() {
            if ids.contains(&info.id()) {
                infos.insert(info.id(), info);
            }
        }
    }
    let (mut ours, mut others) = (Vec::new(), Vec::new());
    for l in &links {
        for (mode, id) in &l.xdp_programs {
            let info = infos.get(id);
            let name = info.and_then(|i| i.name_as_str()).unwrap_or("?").to_owned();
            match (Hook::of_program(&name), info.map(|i| i.fd())) {
                (Some(hook), Some(Ok(fd))) => ours.push(Ours {
                    ifindex: l.ifindex,
                    device: l.name.clone(),
                    hook,
                    mode: *mode,
                    fd,
                    maps: info
                        .and_then(|i| i.map_ids().ok().flatten())
                        .unwrap_or_default(),
                }),
                _ => others.push((l.name.clone(), *id, name)),
            }
        }
    }
    Ok((ours, others))
}

fn mode_flag(mode: XdpMode) -> u32 {
    match mode {
        XdpMode::Driver => XDP_FLAGS_DRV_MODE,
        XdpMode::Generic => XDP_FLAGS_SKB_MODE,
        XdpMode::Hardware => XDP_FLAGS_HW_MODE,
    }
}

fn set_xdp(
    rtnl: &mut Rtnl,
    ifindex: u32,
    fd: i32,
    flags: u32,
    expected: Option<i32>,
) -> Result<(), KernelError> {
    let r = rtnl.execute(&[Request::LinkSetXdp {
        ifindex,
        fd,
        flags,
        expected_fd: expected,
    }]);
    r.into_iter().next().unwrap_or(Ok(()))
}

/// Detaches one of tollgate's programs, only if it is still the one there.
fn detach(rtnl: &mut Rtnl, o: &Ours) -> Result<(), XdpError> {
    let flags = XDP_FLAGS_REPLACE | mode_flag(o.mode);
    set_xdp(rtnl, o.ifindex, -1, flags, Some(o.fd.as_fd().as_raw_fd()))
        .map_err(|e| XdpError::Kernel(format!("detach from {}: {e}", o.device)))
}

/// Removes every XDP program of tollgate's in this namespace (`tollgate
/// down`); how many. Others' programs stay.
pub fn detach_all(rtnl: &mut Rtnl) -> Result<usize, XdpError> {
    let (ours, _) = survey(rtnl)?;
    for o in &ours {
        detach(rtnl, o)?;
    }
    Ok(ours.len())
}

/// The tries and counters of the drop list in use.
pub struct DropList {
    v4: LpmTrie<MapData, [u8; 8], u32>,
    v6: LpmTrie<MapData, [u8; 20], u32>,
    stats: PerCpuArray<MapData, [u64; 2]>,
}

impl fmt::Debug for DropList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DropList")
    }
}

/// Drops counted by the program, summed over CPUs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Dropped {
    /// Packets.
    pub packets: u64,
    /// Bytes (the whole frame).
    pub bytes: u64,
}

/// What [`ensure`] did.
#[derive(Debug)]
pub struct Ensured {
    /// The drop list, when a program runs on at least one interface.
    pub list: Option<DropList>,
    /// Interfaces a program was attached to this time.
    pub attached: Vec<String>,
    /// Interfaces refused (another program is there), with why.
    pub refused: Vec<XdpError>,
}

fn lpm_err(e: impl fmt::Display) -> String {
    e.to_string()
}

impl DropList {
    fn from_map_ids(ids: &[u32]) -> Option<DropList> {
        let (mut v4, mut v6, mut stats) = (None, None, None);
        for id in ids {
            let Ok(info) = aya::maps::MapInfo::from_id(*id) else {
                continue;
            };
            let name = info.name_as_str().unwrap_or("").to_owned();
            let Ok(data) = MapData::from_id(*id) else {
                continue;
            };
            match name.as_str() {
                bpf_classify::xdp::MAP4 => v4 = LpmTrie::try_from(Map::LpmTrie(data)).ok(),
                bpf_classify::xdp::MAP6 => v6 = LpmTrie::try_from(Map::LpmTrie(data)).ok(),
                bpf_classify::xdp::STATS => {
                    stats = PerCpuArray::try_from(Map::PerCpuArray(data)).ok()
                }
                _ => {}
            }
        }
        Some(DropList {
            v4: v4?,
            v6: v6?,
            stats: stats?,
        })
    }

    fn from_object(obj: &mut aya::Ebpf) -> Result<DropList, XdpError> {
        let mut take = |name: &'static str| {
            obj.take_map(name)
                .ok_or_else(|| XdpError::Load(format!("no map {name}")))
        };
        let (m4, m6, ms) = (
            take(bpf_classify::xdp::MAP4)?,
            take(bpf_classify::xdp::MAP6)?,
            take(bpf_classify::xdp::STATS)?,
        );
        Ok(DropList {
            v4: LpmTrie::try_from(m4).map_err(|e| XdpError::Load(lpm_err(e)))?,
            v6: LpmTrie::try_from(m6).map_err(|e| XdpError::Load(lpm_err(e)))?,
            stats: PerCpuArray::try_from(ms).map_err(|e| XdpError::Load(lpm_err(e)))?,
        })
    }

    /// The drop list whose programs run on this namespace's interfaces,
    /// if any do.
    pub fn find(rtnl: &mut Rtnl) -> Result<Option<DropList>, XdpError> {
        let (ours, _) = survey(rtnl)?;
        Ok(ours.iter().find_map(|o| DropList::from_map_ids(&o.maps)))
    }

    /// Every entry, with why it is there; entries tollgate would never
    /// write are left out.
    pub fn entries(&self) -> Result<Vec<(Entry, Why)>, XdpError> {
        let mut out = Vec::new();
        for e in self.v4.iter() {
            let (k, v) = e.map_err(|e| XdpError::Kernel(e.to_string()))?;
            if let (Some(entry), Some(why)) = (
                bpf_classify::xdp::read4(k.prefix_len(), k.data()),
                Why::of_value(v),
            ) {
                out.push((entry, why));
            }
        }
        for e in self.v6.iter() {
            let (k, v) = e.map_err(|e| XdpError::Kernel(e.to_string()))?;
            if let (Some(entry), Some(why)) = (
                bpf_classify::xdp::read6(k.prefix_len(), k.data()),
                Why::of_value(v),
            ) {
                out.push((entry, why));
            }
        }
        Ok(out)
    }

    fn write(&mut self, e: &Entry, value: Option<u32>) -> Result<(), String> {
        let r = if let Some((len, d)) = bpf_classify::xdp::key4(e) {
            let k = Key::new(len, d);
            match value {
                Some(v) => self.v4.insert(&k, v, 0),
                None => self.v4.remove(&k),
            }
        } else if let Some((len, d)) = bpf_classify::xdp::key6(e) {
            let k = Key::new(len, d);
            match value {
                Some(v) => self.v6.insert(&k, v, 0),
                None => self.v6.remove(&k),
            }
        } else {
            return Ok(());
        };
        r.map_err(|err| format!("{}: {err}", e.prefix))
    }

    /// Makes the entries marked `why` exactly `wanted` (the other
    /// writer's stay): adds first, then removes, so that an address that
    /// stays dropped is never let through between the two. Returns
    /// (added, removed).
    pub fn sync(&mut self, why: Why, wanted: &[Entry]) -> Result<(usize, usize), XdpError> {
        let present = self.entries()?;
        let mine: BTreeSet<Entry> = present
            .iter()
            .filter(|(_, w)| *w == why)
            .map(|(e, _)| *e)
            .collect();
        let others: BTreeSet<Entry> = present
            .iter()
            .filter(|(_, w)| *w != why)
            .map(|(e, _)| *e)
            .collect();
        let wanted: BTreeSet<Entry> = wanted.iter().copied().collect();
        let (mut added, mut removed) = (0, 0);
        let mut failed = Vec::new();
        for e in wanted.difference(&mine) {
            // The same key held by the other writer: it drops already,
            // and stays that writer's.
            if others.contains(e) {
                continue;
            }
            match self.write(e, Some(why as u32)) {
                Ok(()) => added += 1,
                Err(m) => failed.push(m),
            }
        }
        for e in mine.difference(&wanted) {
            match self.write(e, None) {
                Ok(()) => removed += 1,
                Err(m) => failed.push(m),
            }
        }
        if failed.is_empty() {
            Ok((added, removed))
        } else {
            Err(XdpError::Kernel(format!(
                "could not write the drop list: {}",
                failed.join("; ")
            )))
        }
    }

    /// The drops counted for `why`.
    pub fn dropped(&self, why: Why) -> Result<Dropped, XdpError> {
        let per_cpu = self
            .stats
            .get(&(why as u32), 0)
            .map_err(|e| XdpError::Kernel(e.to_string()))?;
        let mut d = Dropped::default();
        for v in per_cpu.iter() {
            d.packets += v[0];
            d.bytes += v[1];
        }
        Ok(d)
    }
}

/// Puts tollgate's programs on `places` (and on no other interface),
/// loading the object when none of its programs runs yet, or when one
/// more program is needed (the running one's entries are copied into the
/// fresh object, and the old programs replaced, atomically per
/// interface). An interface with someone else's program is refused and
/// left alone; the others are still done.
pub fn ensure(rtnl: &mut Rtnl, places: &[(IfName, Hook)]) -> Result<Ensured, XdpError> {
    let (ours, others) = survey(rtnl)?;
    let links = rtnl
        .links()
        .map_err(|e| XdpError::Kernel(format!("cannot list interfaces: {e}")))?;
    let mut refused = Vec::new();
    let mut wanted: Vec<(u32, String, Hook)> = Vec::new();
    for (dev, hook) in places {
        let Some(l) = links.iter().find(|l| l.name == dev.as_str()) else {
            // A VM's interface comes and goes with the VM: it gets its
            // program at the first apply that finds it.
            if *hook == Hook::In {
                refused.push(XdpError::NoDevice(dev.to_string()));
            }
            continue;
        };
        if let Some((device, id, name)) = others.iter().find(|(d, _, _)| d == dev.as_str()) {
            refused.push(XdpError::Occupied {
                device: device.clone(),
                id: *id,
                name: name.clone(),
            });
            continue;
        }
        wanted.push((l.ifindex, l.name.clone(), *hook));
    }
    let in_place = |w: &(u32, String, Hook)| ours.iter().any(|o| o.ifindex == w.0 && o.hook == w.2);
    let extra: Vec<&Ours> = ours
        .iter()
        .filter(|o| !wanted.iter().any(|w| w.0 == o.ifindex && w.2 == o.hook))
        .collect();
    let old = ours.iter().find_map(|o| DropList::from_map_ids(&o.maps));
    // One object for all: its programs' ids must agree, or two objects'
    // tries would be written apart.
    let one_object = ours.windows(2).all(|w| {
        let mut a = w[0].maps.clone();
        let mut b = w[1].maps.clone();
        a.sort_unstable();
        b.sort_unstable();
        a == b
    });
    if wanted.iter().all(in_place) && one_object && old.is_some() {
        for o in extra {
            detach(rtnl, o)?;
        }
        return Ok(Ensured {
            list: old,
            attached: Vec::new(),
            refused,
        });
    }
    if wanted.is_empty() {
        for o in extra {
            detach(rtnl, o)?;
        }
        return Ok(Ensured {
            list: None,
            attached: Vec::new(),
            refused,
        });
    }
    let mut obj = aya::EbpfLoader::new()
        .load(bpf_classify::xdp::OBJECT)
        .map_err(|e| XdpError::Load(e.to_string()))?;
    let mut fds = BTreeMap::new();
    for hook in Hook::ALL {
        let prog: &mut Xdp = obj
            .program_mut(hook.program())
            .ok_or_else(|| XdpError::Load(format!("no program {}", hook.program())))?
            .try_into()
            .map_err(|e: aya::programs::ProgramError| XdpError::Load(e.to_string()))?;
        prog.load()
            .map_err(|e| XdpError::Load(format!("{}: {e}", hook.program())))?;
        let fd = prog
            .fd()
            .and_then(|f| f.try_clone().map_err(Into::into))
            .map_err(|e| XdpError::Load(e.to_string()))?;
        fds.insert(hook, fd);
    }
    let mut list = DropList::from_object(&mut obj)?;
    if let Some(old) = &old {
        for (e, why) in old.entries()? {
            list.write(&e, Some(why as u32)).map_err(XdpError::Kernel)?;
        }
    }
    let mut attached = Vec::new();
    for (ifindex, device, hook) in &wanted {
        let fd = fds[hook].as_fd().as_raw_fd();
        // Over one of ours (same mode), atomically; else only if nothing
        // is there. Driver mode where the device has it, else generic.
        let mine = ours.iter().find(|o| o.ifindex == *ifindex);
        let r = match mine {
            Some(o) => set_xdp(
                rtnl,
                *ifindex,
                fd,
                XDP_FLAGS_REPLACE | mode_flag(o.mode),
                Some(o.fd.as_fd().as_raw_fd()),
            ),
            None => {
                set_xdp(rtnl, *ifindex, fd, XDP_FLAGS_UPDATE_IF_NOEXIST, None).or_else(|e| match e
                    .errno
                {
                    libc::EOPNOTSUPP | libc::EINVAL => set_xdp(
                        rtnl,
                        *ifindex,
                        fd,
                        XDP_FLAGS_UPDATE_IF_NOEXIST | XDP_FLAGS_SKB_MODE,
                        None,
                    ),
                    _ => Err(e),
                })
            }
        };
        match r {
            Ok(()) => attached.push(device.clone()),
            // Someone attached meanwhile: theirs stays.
            Err(e) if e.errno == libc::EBUSY || e.errno == libc::EEXIST => {
                refused.push(XdpError::Occupied {
                    device: device.clone(),
                    id: 0,
                    name: format!("attached meanwhile: {e}"),
                })
            }
            Err(e) => return Err(XdpError::Kernel(format!("attach to {device}: {e}"))),
        }
    }
    for o in extra {
        detach(rtnl, o)?;
    }
    Ok(Ensured {
        list: (!attached.is_empty()).then_some(list),
        attached,
        refused,
    })
}
