//! The guard's `throttle` and `drop` rungs in the kernel: elements added
//! to and removed from the sets the compiler prepared in tollgate's
//! nftables table (`plan::guard`: `guard_drop_*`, `guard_sig_*`,
//! `guard_thr_*`).
//!
//! The sets, the rules that read them and the throttle classes are part
//! of the plan, made by `tollgate apply` (or the daemon's rounds) like
//! everything else; their *elements* are the guard's alone (diff leaves
//! them), and change only here, one `nft -f` transaction per change, in
//! the calling process's network namespace. A rung is rare and one
//! element is one `nft` start (a few milliseconds), so the nfnetlink path
//! of the tenant maps is not needed here. `tollgate down` removes the
//! table, and the elements with it.

use crate::nft::Nft;
use crate::DataplaneError;
use plan::guard::GuardElement;

/// What [`GuardSets::remove`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removed {
    /// The element was there and is gone.
    Gone,
    /// It was not there (removed meanwhile, or the set is gone).
    Absent,
}

/// Adds and removes the guard's set elements.
#[derive(Debug, Default)]
pub struct GuardSets {
    nft: Nft,
}

impl GuardSets {
    /// Through the `nft` program on the `PATH`.
    pub fn new() -> GuardSets {
        GuardSets::default()
    }

    /// Adds `element` to `set` (already there: nothing changes). A set
    /// that is not in the table is an error that says so: the policy in
    /// the kernel has no such rung yet (`tollgate apply`, or the daemon's
    /// next round, makes it).
    pub fn add(&self, set: &str, element: &GuardElement) -> Result<(), DataplaneError> {
        let t = plan::NFT_TABLE;
        let script = format!("add element netdev {t} {set} {{ {element} }}\n");
        self.nft.run_script(&script).map_err(|e| match e {
            DataplaneError::Nft { message, .. } if message.contains("No such file or directory") => {
                DataplaneError::Nft {
                    what: format!("add {element} to the guard's set {set}"),
                    message: format!(
                        "tollgate's table has no set {set}: the policy applied in the kernel has no such rung yet (run `tollgate apply`, or wait for the daemon's next round)"
                    ),
                }
            }
            other => other,
        })
    }

    /// Makes the guard's sets in the kernel hold exactly `held` (set,
    /// element), in one transaction: every guard set in tollgate's table
    /// is flushed and refilled with its elements, so no packet sees a set
    /// emptied in between. An element no rung holds (a rung that ended
    /// while tollgate was not running, a state file lost) goes; an
    /// element of a set the table lacks is left out. Returns how many
    /// sets there were.
    pub fn sync<'a>(
        &self,
        held: impl IntoIterator<Item = (&'a str, &'a GuardElement)> + Clone,
    ) -> Result<usize, DataplaneError> {
        let Some(json) = self.nft.list_table()? else {
            return Ok(0);
        };
        let table = nft_reader::read_table(&json).map_err(|e| DataplaneError::Nft {
            what: "read tollgate's table".into(),
            message: e.to_string(),
        })?;
        let t = plan::NFT_TABLE;
        let mut script = String::new();
        let mut sets = 0;
        for (name, m) in &table.maps {
            if !m.kind.exact().is_some_and(plan::MapKind::is_guard_set) {
                continue;
            }
            sets += 1;
            script.push_str(&format!("flush set netdev {t} {name}\n"));
            for (_, e) in held.clone().into_iter().filter(|(s, _)| *s == name) {
                script.push_str(&format!("add element netdev {t} {name} {{ {e} }}\n"));
            }
        }
        self.nft.run_script(&script)?;
        Ok(sets)
    }

    /// Removes `element` from `set`.
    pub fn remove(&self, set: &str, element: &GuardElement) -> Result<Removed, DataplaneError> {
        let t = plan::NFT_TABLE;
        let script = format!("delete element netdev {t} {set} {{ {element} }}\n");
        match self.nft.run_script(&script) {
            Ok(()) => Ok(Removed::Gone),
            Err(DataplaneError::Nft { message, .. })
                if message.contains("No such file or directory") =>
            {
                Ok(Removed::Absent)
            }
            Err(e) => Err(e),
        }
    }
}
