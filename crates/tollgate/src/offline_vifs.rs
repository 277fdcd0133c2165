//! Interfaces taken offline with `tollgate hook vif offline`.
//!
//! What offline means: the VM behind the interface is going away (a Xen
//! `vif` script's `offline`, libvirt's `release`). Its shaping is removed
//! and the interface is treated as absent, by `apply`, `status` and the
//! daemon alike, until one of:
//! - `tollgate hook vif online IFNAME` (the VM is back);
//! - the interface disappears, or reappears with another index (a new VM
//!   instance got the name): the record is stale and dropped, and the new
//!   interface is shaped as any other.
//!
//! Kept in `vifs-offline.json` in the state directory, as name → ifindex.

use crate::error::{Context as _, Error, Result};
use crate::state_dir::{replace_atomically, StateDir};
use net_types::IfName;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// The interfaces offline now, with the index each had when taken
/// offline.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfflineVifs {
    vifs: BTreeMap<String, u32>,
}

impl OfflineVifs {
    /// Reads the record; none is an empty set.
    pub fn load(state: &StateDir) -> Result<OfflineVifs> {
        let path = state.offline_vifs();
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(OfflineVifs {
                vifs: serde_json::from_str(&text).map_err(|e| {
                    Error::runtime(format!("{} cannot be read: {e}", path.display()))
                        .hint("remove it to bring every interface back online")
                })?,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(OfflineVifs::default()),
            Err(e) => Err(Error::runtime(format!(
                "cannot read {}: {e}",
                path.display()
            ))),
        }
    }

    /// Writes the record.
    pub fn save(&self, state: &StateDir) -> Result<()> {
        let text = serde_json::to_string_pretty(&self.vifs)
            .runtime("cannot encode the offline interfaces")?;
        replace_atomically(&state.offline_vifs(), text.as_bytes())
    }

    /// Marks `name` (index `ifindex`) offline.
    pub fn take_offline(&mut self, name: &str, ifindex: u32) {
        self.vifs.insert(name.to_string(), ifindex);
    }

    /// Brings `name` back; returns whether it was offline.
    pub fn bring_online(&mut self, name: &str) -> bool {
        self.vifs.remove(name).is_some()
    }

    /// Drops the records of interfaces that are gone or were recreated
    /// (another index now); returns whether any was dropped.
    pub fn prune(&mut self, present: &HashMap<IfName, u32>) -> bool {
        let before = self.vifs.len();
        self.vifs.retain(|name, index| {
            IfName::new(name)
                .ok()
                .and_then(|n| present.get(&n))
                .is_some_and(|now| now == index)
        });
        self.vifs.len() != before
    }

    /// The names, for the compiler's facts.
    pub fn names(&self) -> BTreeSet<IfName> {
        self.vifs
            .keys()
            .filter_map(|n| IfName::new(n).ok())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recreated_or_vanished_interface_is_online_again() {
        let mut o = OfflineVifs::default();
        o.take_offline("vif3.0", 7);
        o.take_offline("vif4.0", 8);
        let mut present = HashMap::new();
        present.insert(IfName::new("vif3.0").unwrap(), 7);
        present.insert(IfName::new("vif4.0").unwrap(), 8);
        assert!(!o.prune(&present));
        // vif3.0 recreated by a new VM: another index.
        present.insert(IfName::new("vif3.0").unwrap(), 9);
        assert!(o.prune(&present));
        let names: Vec<String> = o.names().iter().map(|n| n.as_str().to_string()).collect();
        assert_eq!(names, vec!["vif4.0".to_string()]);
    }
}
