//! The counters of every class on tollgate's IFB devices, read in one
//! pass over rtnetlink (cheaper than a full observation): what the
//! daemon accounts between reconcile rounds, and what `top` shows.

use crate::error::{Error, Result};
use linux_dataplane::Dataplane;
use net_types::{ClassId, IfName};
use plan::ClassKey;
use std::collections::HashMap;

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
    let links = dp
        .rtnl
        .links()
        .map_err(|e| Error::runtime(format!("cannot list network devices: {e}")))?;
    let mut out = HashMap::new();
    for l in links {
        if !linux_dataplane::observe::is_own_link(&l.name, l.kind.as_deref()) {
            continue;
        }
        let Ok(dev) = IfName::new(&l.name) else {
            continue;
        };
        let classes = dp
            .rtnl
            .classes(l.ifindex)
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
