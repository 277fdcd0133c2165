//! The counters of every class on tollgate's IFB devices (or trees on
//! interfaces), read in one
//! pass over rtnetlink (cheaper than a full observation): what the
//! daemon accounts between reconcile rounds, and what `top` shows.

use crate::error::{Error, Result};
use linux_dataplane::Dataplane;
use net_types::{ClassId, IfName};
use plan::ClassKey;
use std::collections::HashMap;

/// The devices holding tollgate's trees: its IFBs, and with `shape_on =
/// "interface"` the interfaces whose root qdisc is its marked tree.
fn tree_devices(dp: &mut Dataplane) -> Result<Vec<(u32, IfName)>> {
    linux_dataplane::root_qdisc::tree_devices(&mut dp.rtnl)
        .map_err(|e| Error::runtime(format!("cannot find tollgate's shaping devices: {e}")))
}

/// One class's counters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counter {
    /// Bytes sent.
    pub bytes: u64,
    /// Packets sent.
    pub packets: u64,
}

/// Reads every class of tollgate's IFBs.
pub fn read(dp: &mut Dataplane) -> Result<HashMap<ClassKey, Counter>> {
    let mut out = HashMap::new();
    for (ifindex, dev) in tree_devices(dp)? {
        let classes = dp
            .rtnl
            .classes(ifindex)
            .map_err(|e| Error::runtime(format!("cannot list the classes of {dev}: {e}")))?;
        for c in classes {
            let Some(s) = c.stats else { continue };
            let key = ClassKey {
                dev,
                id: ClassId::new((c.handle >> 16) as u16, c.handle as u16),
            };
            out.insert(
                key,
                Counter {
                    bytes: s.bytes,
                    packets: s.packets,
                },
            );
        }
    }
    Ok(out)
}

/// Every class of tollgate's IFBs with its queue (backlog, drops,
/// overlimits) and its rate and ceil, for latency: the same one pass
/// over rtnetlink as [`read`], read-only.
pub fn queues(dp: &mut Dataplane) -> Result<Vec<(ClassKey, latency::ClassSample)>> {
    let mut out = Vec::new();
    for (ifindex, dev) in tree_devices(dp)? {
        let classes = dp
            .rtnl
            .classes(ifindex)
            .map_err(|e| Error::runtime(format!("cannot list the classes of {dev}: {e}")))?;
        for c in classes {
            let (Some(s), Some(h)) = (c.stats, c.htb) else {
                continue;
            };
            let key = ClassKey {
                dev,
                id: ClassId::new((c.handle >> 16) as u16, c.handle as u16),
            };
            out.push((
                key,
                latency::ClassSample {
                    bytes: s.bytes,
                    packets: s.packets,
                    drops: u64::from(s.drops),
                    overlimits: u64::from(s.overlimits),
                    backlog_bytes: u64::from(s.backlog_bytes),
                    backlog_packets: u64::from(s.qlen),
                    rate: net_types::Rate::from_bps(h.rate_bps),
                    ceil: net_types::Rate::from_bps(h.ceil_bps),
                },
            ));
        }
    }
    Ok(out)
}

/// The watched interfaces as latency samples: up (administratively and
/// with carrier) and their packets received and sent. An interface that
/// does not exist is left out (its alarm, if any, clears: it is not "up
/// and silent").
pub fn links(dp: &mut Dataplane, names: &[String]) -> Result<Vec<latency::LinkSample>> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    const IFF_RUNNING: u32 = 0x40;
    let links = dp
        .rtnl
        .links()
        .map_err(|e| Error::runtime(format!("cannot list network devices: {e}")))?;
    Ok(links
        .into_iter()
        .filter(|l| names.contains(&l.name))
        .map(|l| latency::LinkSample {
            up: l.up && l.flags & IFF_RUNNING != 0,
            packets: l.packets.map_or(0, |p| p.rx.wrapping_add(p.tx)),
            name: l.name,
        })
        .collect())
}
