//! Whose a clsact qdisc is.
//!
//! tollgate hooks interfaces it shares with the operator: a VM's vif may
//! already carry the operator's clsact qdisc and filters (anti-spoofing, an
//! XDP-less firewall, monitoring). tollgate's filters are recognisable by
//! their priorities (`FILTER_PRIO_BASE..+256`, chain 0), but a qdisc carries
//! no cookie, and "holds tollgate's filters" is no proof that tollgate
//! created it. So when tollgate creates a clsact qdisc it also creates an
//! empty filter chain with index [`MARK_CHAIN`] on its ingress hook
//! (`tc chain add dev X ingress chain 122057831`). Nothing jumps to that
//! chain, so it never sees a packet; it lives exactly as long as the qdisc,
//! so it survives a restart of tollgate and dies with the qdisc.
//!
//! From the mark and what else is on the hooks, [`ClsactOwner`] says what
//! tollgate may do: remove the qdisc ([`ClsactOwner::Tollgate`]), or only
//! take its own filters off ([`ClsactOwner::Shared`],
//! [`ClsactOwner::Operator`]).

use crate::rtnl::Rtnl;
use plan::{Hook, FILTER_PRIO_BASE};
use std::io;
use tc_netlink::consts::{CLSACT_EGRESS, CLSACT_INGRESS};

/// The index of the empty chain on a clsact's ingress hook that marks it
/// as created by tollgate: 0x0746_7467 (122057831), "tgtg" below the
/// kernel's chain limit of 0x0fff_ffff.
pub const MARK_CHAIN: u32 = 0x0746_7467;

/// Who a device's clsact qdisc belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClsactOwner {
    /// tollgate created it (it carries the mark) and nobody else's filters
    /// or chains are on it: tollgate removes it once it no longer needs it.
    Tollgate,
    /// tollgate created it, but someone else's filters or chains are on it
    /// now: tollgate takes only its own filters off and leaves the qdisc
    /// (with the mark, so that it is removed once it is tollgate's alone).
    Shared,
    /// Someone else created it: tollgate puts its filters on it and takes
    /// them off again, and never removes the qdisc.
    Operator,
}

/// What is on a clsact qdisc's two hooks.
#[derive(Clone, Debug, Default)]
pub struct Hooks {
    /// The filter entries of the egress hook, in every chain.
    pub egress: Vec<tc_netlink::Filter>,
    /// The filter entries of the ingress hook, in every chain.
    pub ingress: Vec<tc_netlink::Filter>,
    /// Whether tollgate's mark chain is on the ingress hook.
    pub marked: bool,
    /// Filter entries that are not tollgate's.
    pub foreign_filters: usize,
    /// Chains other than chain 0 and the mark (someone's `tc chain add`,
    /// or filters in chains of their own).
    pub foreign_chains: usize,
}

impl Hooks {
    /// Reads both hooks of a device with a clsact qdisc.
    pub fn read(rtnl: &mut Rtnl, ifindex: u32) -> io::Result<Hooks> {
        let mut h = Hooks {
            egress: rtnl.filters(ifindex, CLSACT_EGRESS)?,
            ingress: rtnl.filters(ifindex, CLSACT_INGRESS)?,
            ..Hooks::default()
        };
        h.foreign_filters = h
            .egress
            .iter()
            .chain(&h.ingress)
            .filter(|f| !is_own_entry(f))
            .count();
        for parent in [CLSACT_EGRESS, CLSACT_INGRESS] {
            for c in rtnl.chains(ifindex, parent)? {
                if parent == CLSACT_INGRESS && c.index == MARK_CHAIN {
                    h.marked = true;
                } else if c.index != 0 {
                    h.foreign_chains += 1;
                }
            }
        }
        Ok(h)
    }

    /// The filters of one hook.
    pub fn of(&self, hook: Hook) -> &[tc_netlink::Filter] {
        match hook {
            Hook::Egress => &self.egress,
            Hook::Ingress => &self.ingress,
            Hook::Root => &[],
        }
    }

    /// Whose the qdisc is.
    pub fn owner(&self) -> ClsactOwner {
        match (self.marked, self.foreign_filters + self.foreign_chains) {
            (true, 0) => ClsactOwner::Tollgate,
            (true, _) => ClsactOwner::Shared,
            (false, _) => ClsactOwner::Operator,
        }
    }
}

/// Whether a filter priority is in tollgate's range.
pub fn is_own_prio(prio: u16) -> bool {
    (FILTER_PRIO_BASE..FILTER_PRIO_BASE.saturating_add(256)).contains(&prio)
}

/// Whether a filter dump entry (a filter, or a priority's classifier entry
/// with handle 0) is tollgate's: its priority is in tollgate's range and it
/// sits in chain 0, where tollgate puts every filter.
pub fn is_own_entry(f: &tc_netlink::Filter) -> bool {
    is_own_prio(f.prio) && f.chain.unwrap_or(0) == 0
}
