//! The guard's prepared rungs (issue 15, docs/guard.md): when a `[guard]`
//! ladder has a `throttle` or a `drop` rung, the compiler prepares what
//! the rung will need, so that the rung itself is one set element added
//! (and removed when it ends):
//!
//! - `throttle`: per distinct rate, an HTB class in each IFB's root tree
//!   (`1:fffe` for the lowest rate, `1:fffd` for the next…), with rate
//!   and ceil the rung's rate, and empty address sets
//!   (`plan::guard::throttle_set`) looked up on every hook after the
//!   tenant's own classification: a listed address's packets get the
//!   throttle class in `skb->priority`, which the root HTB takes before
//!   any filter;
//! - `drop`: empty sets of addresses (`match = "victim"`) or of address .
//!   protocol . source port (`match = "signature"`, behind a set of their
//!   addresses), looked up first on every hook, whose packets are
//!   dropped.
//!
//! - `[guard] unused = "drop"`: on the download hooks, after the
//!   tenant's classification, a rule drops packets towards the guard's
//!   networks that no tenant's prefix matched (the classification left
//!   the tenant mark at 0). The networks are written in the rule; which
//!   addresses are unused follows the tenants map, so adding or removing
//!   a tenant changes that map's elements and not the rule.
//!
//! The sets are the guard's: the plan declares them, diff never touches
//! their elements. Download hooks look the destination up (`in`), upload
//! hooks the source (`out`). The eBPF classifier has no nftables table:
//! it gets the throttle classes, and their rates and classes in
//! `tg_config`'s throttle words (`bpf_classify::throttle`); its victims
//! are a BPF map of the guard's, and `drop` and unused addresses are the
//! XDP drop list (`bpf_classify::xdp`), none of them the plan's.

use super::{class, Builder};
use crate::provenance::{Role, Serves};
use crate::OUTER_MAJOR;
use net_types::{ClassId, Rate};
use plan::guard::{drop_set, signature_addr_set, signature_set, throttle_set, Way};
use plan::MapKind;
use policy::{Direction, Policy};

/// The root-tree minor of the lowest throttle rate; higher rates count
/// down from it (the root's default class is `1:ffff`).
pub const THROTTLE_TOP_MINOR: u16 = 0xfffe;

/// At most this many distinct throttle rates (classes per IFB); the
/// policy check refuses more.
pub const MAX_THROTTLE_RATES: usize = policy::MAX_THROTTLE_RATES;

/// What the policy's ladders need prepared.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Prepared {
    /// The throttle rungs' rates, lowest first, without repeats: the
    /// class of `throttle[i]` is `1:(THROTTLE_TOP_MINOR - i)`.
    pub throttle: Vec<Rate>,
    /// A `drop` rung with `match = "victim"`.
    pub drop_victim: bool,
    /// A `drop` rung with `match = "signature"`.
    pub drop_signature: bool,
    /// `unused = "drop"`: the networks whose untenanted addresses are
    /// dropped.
    pub unused: Vec<net_types::Prefix>,
    /// For the eBPF classifier: the throttle classes, and no nftables set.
    pub ebpf: bool,
}

impl Prepared {
    /// What every ladder of the policy's `[guard]` (global and groups')
    /// needs; nothing without `[guard]`.
    pub fn of(policy: &Policy) -> Prepared {
        let mut p = Prepared::default();
        let Some(g) = &policy.guard else {
            return p;
        };
        if g.unused.value == policy::Unused::Drop {
            p.unused = g
                .networks
                .iter()
                .flatten()
                .map(|(prefix, _)| *prefix)
                .collect();
        }
        let ladders =
            std::iter::once(&g.ladder).chain(g.groups.iter().filter_map(|gr| gr.ladder.as_ref()));
        for rung in ladders.flatten() {
            match rung.rung.action {
                guard::Action::Throttle { rate } => p.throttle.push(rate),
                guard::Action::Drop { signature: false } => p.drop_victim = true,
                guard::Action::Drop { signature: true } => p.drop_signature = true,
                _ => {}
            }
        }
        p.throttle.sort_unstable();
        p.throttle.dedup();
        p.throttle.truncate(MAX_THROTTLE_RATES);
        p
    }

    /// Whether anything is prepared.
    pub fn is_empty(&self) -> bool {
        self.throttle.is_empty()
            && !self.drop_victim
            && !self.drop_signature
            && self.unused.is_empty()
    }

    /// Every throttle rate with its class, lowest rate first.
    pub fn throttle_classes(&self) -> Vec<(Rate, ClassId)> {
        self.throttle
            .iter()
            .filter_map(|r| Some((*r, self.throttle_class(*r)?)))
            .collect()
    }

    /// The root-tree class a throttle rung of `rate` sends packets to.
    pub fn throttle_class(&self, rate: Rate) -> Option<ClassId> {
        let i = self.throttle.iter().position(|r| *r == rate)?;
        Some(ClassId::new(OUTER_MAJOR, THROTTLE_TOP_MINOR - i as u16))
    }
}

/// The way a hook of this direction sees the guard's traffic.
fn way(dir: Direction) -> Way {
    match dir {
        Direction::Down => Way::In,
        Direction::Up => Way::Out,
    }
}

impl Builder<'_> {
    /// The throttle classes and the guard's (empty) sets.
    pub(super) fn guard_prepared(&mut self) {
        let prepared = self.guard.clone();
        for dir in Direction::BOTH {
            let cap = *self.policy.site.capacity.get(dir);
            for rate in &prepared.throttle {
                let Some(id) = prepared.throttle_class(*rate) else {
                    continue;
                };
                let parent = ClassId::new(OUTER_MAJOR, crate::ROOT_MINOR);
                let rate = (*rate).min(cap);
                self.add_outer_class(
                    dir,
                    id.minor,
                    class(parent, rate, rate, 7),
                    Serves::new(Role::GuardThrottleClass),
                );
            }
            if prepared.ebpf {
                continue;
            }
            let w = way(dir);
            for v6 in [false, true] {
                let (addr, sig) = if v6 {
                    (MapKind::GuardAddr6, MapKind::GuardSig6)
                } else {
                    (MapKind::GuardAddr4, MapKind::GuardSig4)
                };
                if prepared.drop_victim {
                    self.map(&drop_set(w, v6), addr);
                }
                if prepared.drop_signature {
                    self.map(&signature_set(w, v6), sig);
                    self.map(&signature_addr_set(w, v6), addr);
                }
                for rate in &prepared.throttle {
                    self.map(&throttle_set(*rate, w, v6), addr);
                }
            }
        }
    }

    /// The rules a hook of `dir` runs before its classification (drops).
    pub(super) fn guard_drop_rules(&self, dir: Direction) -> Vec<String> {
        let w = way(dir);
        let f = w.field();
        let mut rules = Vec::new();
        for (v6, ip) in [(false, "ip"), (true, "ip6")] {
            if self.guard.drop_victim {
                rules.push(format!("{ip} {f} @{} drop", drop_set(w, v6)));
            }
            if self.guard.drop_signature {
                // The address first: an empty (or missed) interval set is
                // cheap; the concatenated lookup is paid by victims only.
                rules.push(format!(
                    "{ip} {f} @{} {ip} {f} . meta l4proto . th sport @{} drop",
                    signature_addr_set(w, v6),
                    signature_set(w, v6)
                ));
            }
        }
        rules
    }

    /// The rules a download hook runs right after its classification:
    /// packets towards the networks that matched no tenant (mark 0) are
    /// dropped (`unused = "drop"`).
    pub(super) fn guard_unused_rules(&self, dir: Direction) -> Vec<String> {
        if dir != Direction::Down {
            return Vec::new();
        }
        let mut rules = Vec::new();
        for (v6, ip) in [(false, "ip"), (true, "ip6")] {
            let nets: Vec<String> = self
                .guard
                .unused
                .iter()
                .filter(|p| p.is_ipv4() != v6)
                .map(|p| p.to_string())
                .collect();
            if !nets.is_empty() {
                rules.push(format!(
                    "meta mark 0 {ip} daddr {{ {} }} drop",
                    nets.join(", ")
                ));
            }
        }
        rules
    }

    /// The rules a hook of `dir` runs after its classification (throttle
    /// classes, which win over the tenant's).
    pub(super) fn guard_throttle_rules(&self, dir: Direction) -> Vec<String> {
        let w = way(dir);
        let f = w.field();
        let mut rules = Vec::new();
        for rate in &self.guard.throttle {
            let Some(id) = self.guard.throttle_class(*rate) else {
                continue;
            };
            for (v6, ip) in [(false, "ip"), (true, "ip6")] {
                rules.push(format!(
                    "{ip} {f} @{} meta priority set {id}",
                    throttle_set(*rate, w, v6)
                ));
            }
        }
        rules
    }
}
