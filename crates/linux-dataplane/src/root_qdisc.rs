//! Whose a device's root qdisc is (`[site] shape_on = "interface"`).
//!
//! With the trees on the LAN's and the uplink's own root qdiscs, tollgate
//! takes a root qdisc that nobody configured and gives it back when it is
//! done. "Nobody configured it" is the kernel's own rule: the qdiscs the
//! kernel attaches by itself (noqueue, pfifo_fast, mq and its per-queue
//! children) have handle `0:`, and `tc_modify_qdisc` ignores such a root
//! ("it may be default qdisc"); anything an operator adds gets a handle
//! (their own, or `8001:` and up). tollgate's root HTB is recognised by
//! the same kind of mark as its clsact qdiscs: an empty filter chain
//! [`MARK_CHAIN`] on the HTB's own filter block, which lives exactly as
//! long as the qdisc and never sees a packet (nothing jumps to it).
//!
//! Deleting tollgate's root qdisc (`tc qdisc del dev X root`) makes the
//! kernel attach its default again, which is how `down` restores it.

use crate::clsact::MARK_CHAIN;
use crate::rtnl::Rtnl;
use net_types::IfName;
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::io;
use tc_netlink::consts::{TC_H_CLSACT, TC_H_ROOT};

/// Who a device's root qdisc belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootOwner {
    /// The kernel's default (handle `0:`, children too): tollgate may take it.
    Default,
    /// tollgate's HTB tree, marked.
    Tollgate,
    /// Someone configured it: what it is, as `tc qdisc show` names it
    /// (`tbf 8001:`, or `mq 0: with pfifo 10: under it`).
    Operator(String),
}

impl fmt::Display for RootOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RootOwner::Default => f.write_str("the kernel's default"),
            RootOwner::Tollgate => f.write_str("tollgate's"),
            RootOwner::Operator(what) => f.write_str(what),
        }
    }
}

fn handle_text(h: u32) -> String {
    format!("{:x}:", h >> 16)
}

/// Whose the root qdisc is, from one device's qdiscs (as dumped) and
/// whether its root carries tollgate's mark chain (asked only for an HTB
/// root, the one tollgate creates).
pub fn classify(
    qdiscs: &[&tc_netlink::Qdisc],
    marked: impl FnOnce(u32) -> io::Result<bool>,
) -> io::Result<RootOwner> {
    let Some(root) = qdiscs.iter().find(|q| q.parent == TC_H_ROOT) else {
        return Ok(RootOwner::Default);
    };
    if root.kind == "htb" && marked(root.handle)? {
        return Ok(RootOwner::Tollgate);
    }
    if root.handle >> 16 != 0 {
        return Ok(RootOwner::Operator(format!(
            "{} {}",
            root.kind,
            handle_text(root.handle)
        )));
    }
    // A default root (mq) whose per-queue children someone replaced.
    if let Some(child) = qdiscs
        .iter()
        .find(|q| q.parent != TC_H_ROOT && q.parent != TC_H_CLSACT && q.handle >> 16 != 0)
    {
        return Ok(RootOwner::Operator(format!(
            "{} 0: with {} {} under it",
            root.kind,
            child.kind,
            handle_text(child.handle)
        )));
    }
    Ok(RootOwner::Default)
}

/// Whether the HTB qdisc `handle` on `ifindex` carries tollgate's mark.
pub fn is_marked(rtnl: &mut Rtnl, ifindex: u32, handle: u32) -> io::Result<bool> {
    Ok(rtnl
        .chains(ifindex, handle)?
        .iter()
        .any(|c| c.index == MARK_CHAIN))
}

/// The owner of every device's root qdisc, from one qdisc dump, except
/// the devices `skip` names (tollgate's IFBs, which are its own anyway).
pub fn owners(
    rtnl: &mut Rtnl,
    qdiscs: &[tc_netlink::Qdisc],
    names: &HashMap<u32, IfName>,
    skip: impl Fn(u32) -> bool,
) -> io::Result<BTreeMap<IfName, RootOwner>> {
    let mut by_dev: BTreeMap<u32, Vec<&tc_netlink::Qdisc>> = BTreeMap::new();
    for q in qdiscs {
        by_dev.entry(q.ifindex).or_default().push(q);
    }
    let mut out = BTreeMap::new();
    for (ifindex, qs) in by_dev {
        let Some(&dev) = names.get(&ifindex) else {
            continue;
        };
        if skip(ifindex) {
            continue;
        }
        // A root whose chains cannot be read is not known to be
        // tollgate's: read as someone else's (never taken, never
        // removed), rather than failing the whole observation.
        let owner = classify(&qs, |h| {
            Ok(is_marked(rtnl, ifindex, h).unwrap_or_else(|e| {
                tracing::warn!(%dev, error = %e, "cannot read the filter chains of a root HTB; taking it for someone else's");
                false
            }))
        })?;
        out.insert(dev, owner);
    }
    Ok(out)
}

/// The owner of one device's root qdisc, read now (the apply's check
/// before it creates or removes one).
pub fn owner_of(rtnl: &mut Rtnl, ifindex: u32) -> io::Result<RootOwner> {
    let qdiscs = rtnl.qdiscs()?;
    owner_of_among(rtnl, &qdiscs, ifindex)
}

/// The devices that hold tollgate's HTB trees: its IFBs and the
/// interfaces whose root qdisc is its marked tree.
pub fn tree_devices(rtnl: &mut Rtnl) -> io::Result<Vec<(u32, IfName)>> {
    let links = rtnl.links()?;
    let mut names = HashMap::new();
    let mut out = Vec::new();
    for l in &links {
        let Ok(name) = IfName::new(&l.name) else {
            continue;
        };
        if crate::observe::is_own_link(&l.name, l.kind.as_deref()) {
            out.push((l.ifindex, name));
        } else {
            names.insert(l.ifindex, name);
        }
    }
    let qdiscs = rtnl.qdiscs()?;
    let htb_roots: Vec<u32> = qdiscs
        .iter()
        .filter(|q| q.parent == TC_H_ROOT && q.kind == "htb" && names.contains_key(&q.ifindex))
        .map(|q| q.ifindex)
        .collect();
    for ifindex in htb_roots {
        let owner = owner_of_among(rtnl, &qdiscs, ifindex)?;
        if owner == RootOwner::Tollgate {
            out.push((ifindex, names[&ifindex]));
        }
    }
    Ok(out)
}

fn owner_of_among(
    rtnl: &mut Rtnl,
    qdiscs: &[tc_netlink::Qdisc],
    ifindex: u32,
) -> io::Result<RootOwner> {
    let mine: Vec<&tc_netlink::Qdisc> = qdiscs.iter().filter(|q| q.ifindex == ifindex).collect();
    classify(&mine, |h| is_marked(rtnl, ifindex, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(handle: u32, parent: u32, kind: &str) -> tc_netlink::Qdisc {
        tc_netlink::Qdisc {
            ifindex: 2,
            handle,
            parent,
            kind: kind.into(),
            htb: None,
            stats: None,
        }
    }

    fn owner(qs: &[tc_netlink::Qdisc], marked: bool) -> RootOwner {
        let refs: Vec<&tc_netlink::Qdisc> = qs.iter().collect();
        classify(&refs, |_| Ok(marked)).unwrap()
    }

    #[test]
    fn the_kernels_defaults_are_default() {
        assert_eq!(owner(&[], false), RootOwner::Default);
        assert_eq!(
            owner(&[q(0, TC_H_ROOT, "noqueue")], false),
            RootOwner::Default
        );
        assert_eq!(
            owner(&[q(0, TC_H_ROOT, "pfifo_fast")], false),
            RootOwner::Default
        );
        let mq = [
            q(0, TC_H_ROOT, "mq"),
            q(0, 1, "pfifo_fast"),
            q(0, 2, "pfifo_fast"),
            q(0xffff_0000, TC_H_CLSACT, "clsact"),
        ];
        assert_eq!(owner(&mq, false), RootOwner::Default);
    }

    #[test]
    fn a_marked_htb_is_tollgates_and_an_unmarked_one_is_not() {
        let htb = [q(0x0001_0000, TC_H_ROOT, "htb")];
        assert_eq!(owner(&htb, true), RootOwner::Tollgate);
        assert_eq!(owner(&htb, false), RootOwner::Operator("htb 1:".into()));
        // The mark only counts on an HTB, the one kind tollgate creates.
        let tbf = [q(0x8001_0000, TC_H_ROOT, "tbf")];
        assert_eq!(owner(&tbf, true), RootOwner::Operator("tbf 8001:".into()));
    }

    #[test]
    fn an_mq_with_a_replaced_child_is_the_operators() {
        let mq = [
            q(0, TC_H_ROOT, "mq"),
            q(0, 1, "pfifo_fast"),
            q(0x0010_0000, 2, "pfifo"),
        ];
        assert_eq!(
            owner(&mq, false),
            RootOwner::Operator("mq 0: with pfifo 10: under it".into())
        );
    }
}
