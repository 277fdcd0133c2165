//! The guard's `throttle` and `drop` rungs in the kernel: the elements of
//! the sets the compiler prepared in tollgate's nftables table
//! (`plan::guard`: `guard_drop_*`, `guard_sig_*`, `guard_thr_*`).
//!
//! The sets, the rules that read them and the throttle classes are part
//! of the plan, made by `tollgate apply` (or the daemon's rounds) like
//! everything else; their *elements* are the guard's alone (diff leaves
//! them), and change only here, in the calling process's network
//! namespace. A change **refills** the sets it touches: each is flushed
//! and filled with every element the rungs in place hold for it, in one
//! `nft -f` transaction, so no packet sees a set emptied, nothing the
//! guard does not hold stays, and elements that would overlap (an
//! interval set refuses that: a host inside a group's prefix held by two
//! rungs) are reduced to the widest ([`plan::guard::minimal`]). A rung is
//! rare and the guard holds few elements, so one `nft` start (a few
//! milliseconds) per change is cheap; the nfnetlink path of the tenant
//! maps is not needed. `tollgate down` removes the table, and the
//! elements with it.

use crate::nft::Nft;
use crate::DataplaneError;
use plan::guard::GuardElement;
use std::fmt::Write as _;

/// Fills the guard's sets.
#[derive(Debug, Default)]
pub struct GuardSets {
    nft: Nft,
}

impl GuardSets {
    /// Through the `nft` program on the `PATH`.
    pub fn new() -> GuardSets {
        GuardSets::default()
    }

    /// The guard's sets in tollgate's table now (none without the table).
    pub fn in_kernel(&self) -> Result<Vec<String>, DataplaneError> {
        let Some(json) = self.nft.list_table()? else {
            return Ok(Vec::new());
        };
        let table = nft_reader::read_table(&json).map_err(|e| DataplaneError::Nft {
            what: "read tollgate's table".into(),
            message: e.to_string(),
        })?;
        Ok(table
            .maps
            .iter()
            .filter(|(_, m)| m.kind.exact().is_some_and(plan::MapKind::is_guard_set))
            .map(|(name, _)| name.clone())
            .collect())
    }

    /// Makes each of `sets` hold exactly the elements of `held` (set,
    /// element) that name it, less those another covers: one transaction
    /// for all of them. A signature set and its address set are always
    /// filled together (naming either is naming both). If it fails (a set
    /// the table lacks: the policy in the kernel has no such rung yet),
    /// each set is tried alone, so the others are still filled, and the
    /// error names the set.
    pub fn refill<'a>(
        &self,
        sets: &[&str],
        held: &[(&'a str, &'a GuardElement)],
    ) -> Result<(), DataplaneError> {
        let t = plan::NFT_TABLE;
        let fill = |s: &mut String, set: &str, elements: &[&GuardElement]| {
            let _ = writeln!(s, "flush set netdev {t} {set}");
            for e in plan::guard::minimal(elements) {
                let _ = writeln!(s, "add element netdev {t} {set} {{ {e} }}");
            }
        };
        let script = |set: &str| {
            let mut s = String::new();
            let (set, addresses) = match plan::guard::signature_pair(set) {
                Some((sig, addr)) => (sig, Some(addr)),
                None => (set.to_owned(), None),
            };
            let mine: Vec<&GuardElement> = held
                .iter()
                .filter(|(name, _)| *name == set)
                .map(|(_, e)| *e)
                .collect();
            fill(&mut s, &set, &mine);
            if let Some(addr) = addresses {
                let prefixes: Vec<GuardElement> = mine
                    .iter()
                    .map(|e| GuardElement::Prefix(e.prefix()))
                    .collect();
                let prefixes: Vec<&GuardElement> = prefixes.iter().collect();
                fill(&mut s, &addr, &prefixes);
            }
            s
        };
        let mut names: Vec<String> = sets
            .iter()
            .map(|s| plan::guard::signature_pair(s).map_or_else(|| s.to_string(), |p| p.0))
            .collect();
        names.sort_unstable();
        names.dedup();
        let sets: Vec<&str> = names.iter().map(String::as_str).collect();
        let all: String = sets.iter().map(|s| script(s)).collect();
        if self.nft.run_script(&all).is_ok() {
            return Ok(());
        }
        let mut failed = Vec::new();
        for set in sets {
            if let Err(e) = self.nft.run_script(&script(set)) {
                let message = match e {
                    DataplaneError::Nft { message, .. }
                        if message.contains("No such file or directory") =>
                    {
                        format!("tollgate's table has no set {set}: the policy applied in the kernel has no such rung yet (run `tollgate apply`, or wait for the daemon's next round)")
                    }
                    other => format!("{set}: {other}"),
                };
                failed.push(message);
            }
        }
        if failed.is_empty() {
            return Ok(());
        }
        Err(DataplaneError::Nft {
            what: "fill the guard's sets".into(),
            message: failed.join("; "),
        })
    }
}
