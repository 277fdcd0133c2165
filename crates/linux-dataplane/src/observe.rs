//! Reading what tollgate owns back from the kernel, as a [`Plan`].
//!
//! What tollgate owns is recognisable by name and number alone, so that a
//! restart needs no state file:
//! - IFB devices named `tg-…`, and every qdisc and class on them;
//! - with `shape_on = "interface"`, an interface's root HTB tree that
//!   carries tollgate's mark (see [`crate::root_qdisc`]), and every qdisc
//!   and class under it;
//! - tc filters at priorities `FILTER_PRIO_BASE..FILTER_PRIO_BASE + 256`
//!   in chain 0;
//! - the clsact qdiscs it created, marked by an empty chain (see
//!   [`crate::clsact`]); others' clsact qdiscs are used, never owned.
//! - the nftables table `netdev tollgate`.
//!
//! The kernel keeps some values in its own units (rates in bytes/s, bursts
//! in 64 ns ticks) and nftables prints rules in its own normal form. So
//! the reader takes the desired plan as a hint: wherever the kernel holds
//! exactly what the desired object would have been sent as, the observed
//! object is the desired one, and anything else is read as it is, which
//! makes the diff repair it.

use crate::apply::hook_parent;
use crate::clsact::{ClsactOwner, Hooks};
use crate::nft::Nft;
use crate::root_qdisc::RootOwner;
use crate::rtnl::Rtnl;
use crate::DataplaneError;
use net_types::{ClassId, IfName, Rate, Size};
use plan::render::rule_tag;
use plan::*;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use tc_netlink::consts::TC_H_ROOT;

/// What tollgate found in the kernel.
#[derive(Debug, Default)]
pub struct Observed {
    /// Tollgate's objects, as a plan, read without a hint (see
    /// [`Observed::plan_for`]).
    pub plan: Plan,
    /// Every class as the kernel holds it, for reading again with a hint.
    raw_classes: Vec<(ClassKey, ClassId, tc_netlink::HtbParams)>,
    /// The nftables table as read, for reading again with a hint.
    table: Option<nft_reader::Table>,
    /// Every device with a clsact qdisc, and whose it is. Only
    /// [`ClsactOwner::Tollgate`]'s are in [`Observed::plan`]; the others
    /// are used where the desired plan wants one (see
    /// [`Observed::plan_for`]) and never removed.
    pub clsacts: BTreeMap<IfName, ClsactOwner>,
    /// Every device's index, by name. An index is never reused while the
    /// system runs, so a name whose index changed was deleted and created
    /// again (a VM restarted) in between.
    pub ifindex: HashMap<IfName, u32>,
    /// Every bridge, with the devices enslaved to it (its ports).
    pub bridges: BTreeMap<IfName, BTreeSet<IfName>>,
    /// Whose each interface's root qdisc is (tollgate's IFBs left out).
    /// Only tollgate's marked trees are in [`Observed::plan`]; an
    /// operator's is never replaced (the compiler refuses it).
    pub roots: BTreeMap<IfName, RootOwner>,
    /// The counters of every class on tollgate's IFBs and trees.
    pub stats: BTreeMap<ClassKey, tc_netlink::Stats>,
    /// tollgate's filters that run an eBPF classifier program, with the
    /// program's id in the kernel.
    pub ebpf_filters: Vec<(FilterKey, Program, u32)>,
    /// The eBPF classifier's maps as read (also in [`Observed::plan`]).
    pub bpf_maps: BTreeMap<String, NftMap>,
    /// The programs of the eBPF classifier found in the kernel.
    pub bpf_programs: BTreeSet<Program>,
}

/// Whether a device is one of tollgate's IFBs, by its name.
pub fn is_own_link(name: &str, kind: Option<&str>) -> bool {
    name.starts_with("tg-") && kind == Some("ifb")
}

pub use crate::clsact::is_own_prio;

fn class_id(handle: u32) -> ClassId {
    ClassId::new((handle >> 16) as u16, handle as u16)
}

/// Reads tollgate's tc objects and nftables table.
pub fn observe(rtnl: &mut Rtnl, nft: &Nft, hint: &Plan) -> Result<Observed, DataplaneError> {
    let mut out = Observed::default();
    let links = rtnl
        .links()
        .map_err(|e| DataplaneError::io("list network devices", e))?;
    let mut names: HashMap<u32, IfName> = HashMap::new();
    let mut own: Vec<(u32, IfName)> = Vec::new();
    for l in &links {
        let Ok(name) = IfName::new(&l.name) else {
            continue;
        };
        names.insert(l.ifindex, name);
        out.ifindex.insert(name, l.ifindex);
        if is_own_link(&l.name, l.kind.as_deref()) {
            out.plan.links.insert(name, Link::Ifb);
            own.push((l.ifindex, name));
        }
        if l.kind.as_deref() == Some("bridge") {
            out.bridges.entry(name).or_default();
        }
    }
    for l in &links {
        let (Ok(port), Some(master)) = (IfName::new(&l.name), l.master) else {
            continue;
        };
        let Some(&bridge) = names.get(&master) else {
            continue;
        };
        // A bond or team member names its master too; only bridges count.
        if let Some(ports) = out.bridges.get_mut(&bridge) {
            ports.insert(port);
        }
    }
    let qdiscs = rtnl
        .qdiscs()
        .map_err(|e| DataplaneError::io("list qdiscs", e))?;
    let own_ifbs: std::collections::HashSet<u32> = own.iter().map(|(i, _)| *i).collect();
    out.roots = crate::root_qdisc::owners(rtnl, &qdiscs, &names, |i| own_ifbs.contains(&i))
        .map_err(|e| DataplaneError::io("read whose the root qdiscs are", e))?;
    for (dev, owner) in &out.roots {
        if *owner == RootOwner::Tollgate {
            if let Some(&i) = out.ifindex.get(dev) {
                own.push((i, *dev));
            }
        }
    }
    let mut clsact_devs = Vec::new();
    for q in &qdiscs {
        let Some(&dev) = names.get(&q.ifindex) else {
            continue;
        };
        let ours = own.iter().any(|(i, _)| *i == q.ifindex);
        if q.kind == "clsact" {
            clsact_devs.push((q.ifindex, dev));
            continue;
        }
        if !ours || q.kind != "htb" {
            continue;
        }
        let Some(htb) = q.htb else { continue };
        let attach = if q.parent == TC_H_ROOT {
            Attach::Root
        } else {
            Attach::Class(class_id(q.parent))
        };
        out.plan.qdiscs.insert(
            QdiscKey { dev, attach },
            Qdisc::Htb {
                major: (q.handle >> 16) as u16,
                default_minor: htb.default_minor as u16,
            },
        );
    }
    for &(ifindex, dev) in &own {
        for c in rtnl
            .classes(ifindex)
            .map_err(|e| DataplaneError::io(format!("list classes of {dev}"), e))?
        {
            let Some(p) = c.htb else { continue };
            let key = ClassKey {
                dev,
                id: class_id(c.handle),
            };
            let parent = if c.parent == TC_H_ROOT {
                ClassId::new(key.id.major, 0)
            } else {
                class_id(c.parent)
            };
            let class = read_class(parent, &p, hint.classes.get(&key));
            out.plan.classes.insert(key, class);
            out.raw_classes.push((key, parent, p));
            if let Some(s) = c.stats {
                out.stats.insert(key, s);
            }
        }
        let filters = rtnl
            .filters(ifindex, hook_parent(Hook::Root))
            .map_err(|e| DataplaneError::io(format!("list filters of {dev}"), e))?;
        read_filters(&mut out, &names, &filters, dev, Hook::Root);
    }
    for &(ifindex, dev) in &clsact_devs {
        let hooks = Hooks::read(rtnl, ifindex)
            .map_err(|e| DataplaneError::io(format!("list filters and chains of {dev}"), e))?;
        for hook in [Hook::Egress, Hook::Ingress] {
            read_filters(&mut out, &names, hooks.of(hook), dev, hook);
        }
        let owner = hooks.owner();
        out.clsacts.insert(dev, owner);
        // Only a clsact tollgate created and nobody else uses is
        // tollgate's to remove: holding tollgate's filters proves nothing,
        // since tollgate puts them on the operator's clsact too.
        if owner == ClsactOwner::Tollgate {
            let key = QdiscKey {
                dev,
                attach: Attach::Clsact,
            };
            out.plan.qdiscs.insert(key, Qdisc::Clsact);
        }
    }
    if let Some(json) = nft.list_table()? {
        let table = nft_reader::read_table(&json).map_err(|e| DataplaneError::Nft {
            what: "read tollgate's nftables table".into(),
            message: e.to_string(),
        })?;
        read_nft(&mut out.plan, &table, hint);
        out.table = Some(table);
    }
    Ok(out)
}

impl Observed {
    /// The map elements nft listed that tollgate could not read back, per
    /// map, with nft's text of each (see `nft_reader::ObservedMap`).
    pub fn unreadable_elements(&self) -> Vec<(String, String)> {
        self.table
            .iter()
            .flat_map(|t| &t.maps)
            .flat_map(|(name, m)| m.unreadable.iter().map(move |u| (name.clone(), u.clone())))
            .collect()
    }

    /// The observed plan, read with `hint` as the desired plan: every
    /// object the kernel holds exactly as `hint` would have sent it is
    /// `hint`'s object. Reading is done once; this only re-interprets it.
    pub fn plan_for(&self, hint: &Plan) -> Plan {
        let mut plan = self.plan.clone();
        // Someone else's clsact (or one tollgate shares) is used where
        // tollgate wants one, not created again; where tollgate does not
        // want one it is not in the plan, so nothing removes it.
        for dev in self.clsacts.keys() {
            let key = QdiscKey {
                dev: *dev,
                attach: Attach::Clsact,
            };
            if hint.qdiscs.contains_key(&key) {
                plan.qdiscs.insert(key, Qdisc::Clsact);
            }
        }
        for (key, parent, p) in &self.raw_classes {
            plan.classes
                .insert(*key, read_class(*parent, p, hint.classes.get(key)));
        }
        if let Some(t) = &self.table {
            plan.chains.clear();
            plan.maps.clear();
            read_nft(&mut plan, t, hint);
            plan.maps.extend(self.bpf_maps.clone());
        }
        // A classifier that lacks a program or map `hint` needs cannot be
        // extended (a program is loaded together with its maps), so it is
        // read as absent: the diff then fills a fresh one from scratch and
        // points every filter at it (see `apply`).
        let usable = hint.filters.values().all(|f| match f.select {
            Select::Ebpf(p) => self.bpf_programs.contains(&p),
            _ => true,
        }) && hint
            .maps
            .keys()
            .filter(|m| is_bpf_map(m))
            .all(|m| self.bpf_maps.contains_key(m));
        if !usable {
            plan.maps.retain(|name, _| !is_bpf_map(name));
            for f in plan.filters.values_mut() {
                if matches!(f.select, Select::Ebpf(_)) {
                    f.select = Select::Mark(u32::MAX);
                }
            }
        }
        plan
    }
}

/// An HTB class as the kernel holds it; the desired class if they agree.
fn read_class(parent: ClassId, p: &tc_netlink::HtbParams, want: Option<&Class>) -> Class {
    if let Some(w) = want {
        let (burst, cburst) = crate::apply::sent_bursts(w);
        // The kernel keeps bytes/s, so a rate reads back rounded down to a
        // multiple of 8 bit/s.
        let same = w.parent == parent
            && w.rate.bps() / 8 * 8 == p.rate_bps
            && w.ceil.bps() / 8 * 8 == p.ceil_bps
            && tc_netlink::htb_buffer_ticks(w.rate.bps(), burst) == p.buffer_ticks
            && tc_netlink::htb_buffer_ticks(w.ceil.bps(), cburst) == p.cbuffer_ticks
            && w.prio as u32 == p.prio
            // HTB only sets the quantum of a leaf on `class change`, and
            // only leaves use it, so an inner class's is ignored.
            && (w.quantum == p.quantum || p.level > 0);
        if same {
            return *w;
        }
    }
    let rate = Rate::from_bps(p.rate_bps.max(8)).unwrap_or(Rate::from_bps(8).expect("8 > 0"));
    let ceil = Rate::from_bps(p.ceil_bps.max(8)).unwrap_or(rate);
    let burst = tc_netlink::htb_burst_bytes(p.rate_bps, p.buffer_ticks);
    let cburst = tc_netlink::htb_burst_bytes(p.ceil_bps, p.cbuffer_ticks);
    Class {
        parent,
        rate,
        ceil,
        burst: Some(Size::from_bytes(burst)),
        cburst: Some(Size::from_bytes(cburst)),
        prio: p.prio as u8,
        quantum: p.quantum,
    }
}

/// The known classic BPF programs, recognised by their instructions.
fn read_select(ops: &[tc_netlink::SockFilter]) -> Option<Select> {
    let ins: Vec<(u16, u8, u8, u32)> = ops.iter().map(|o| (o.code, o.jt, o.jf, o.k)).collect();
    if ins == Select::All.instructions() {
        return Some(Select::All);
    }
    if ins.len() == 4 && ins == Select::Mark(ins[1].3).instructions() {
        return Some(Select::Mark(ins[1].3));
    }
    if ins.len() == 6 {
        let major = (ins[3].3 >> 16) as u16;
        if ins == Select::MarkToClass(major).instructions() {
            return Some(Select::MarkToClass(major));
        }
    }
    None
}

fn read_filters(
    out: &mut Observed,
    names: &HashMap<u32, IfName>,
    filters: &[tc_netlink::Filter],
    dev: IfName,
    hook: Hook,
) {
    for f in filters {
        if !crate::clsact::is_own_entry(f) || f.handle == 0 {
            continue;
        }
        let key = FilterKey {
            dev,
            hook,
            prio: f.prio,
        };
        let (select, redirect_to) = match &f.bpf {
            Some(b) => {
                // An eBPF program of tollgate's: which one, by the name
                // tollgate gave the filter; whether it is the classifier
                // in use is checked against its id afterwards.
                let ebpf = match (b.ops.is_empty(), b.name.as_deref(), b.id) {
                    (true, Some(n), Some(id)) => Program::from_name(n).map(|p| (p, id)),
                    _ => None,
                };
                if let Some((p, id)) = ebpf {
                    out.ebpf_filters.push((key, p, id));
                }
                (
                    ebpf.map(|(p, _)| Select::Ebpf(p))
                        .or_else(|| read_select(&b.ops)),
                    b.redirect_ifindex().and_then(|i| names.get(&i).copied()),
                )
            }
            None => (None, None),
        };
        // A program tollgate does not recognise is read as one that
        // matches nothing tollgate wants, so that it gets replaced.
        let filter = match select {
            Some(select) => Filter {
                select,
                redirect_to,
            },
            None => Filter {
                select: Select::Mark(u32::MAX),
                redirect_to: None,
            },
        };
        out.plan.filters.insert(key, filter);
    }
}

fn read_nft(plan: &mut Plan, table: &nft_reader::Table, hint: &Plan) {
    for (name, c) in &table.chains {
        let name = name.clone();
        // Older nft prints no device for a netdev chain; the chain's name
        // (`{direction}_{device}`) was chosen by tollgate, so a hooked chain
        // tollgate still wants is taken to hook what the plan says.
        let want_hook = hint.chains.get(&name).and_then(|w| w.hook);
        let hook = c.hook.as_ref().map(|h| match h.device() {
            Some(d) => IfName::new(d).ok().map(|dev| ChainHook { dev }),
            None => want_hook,
        });
        let hook = hook.flatten();
        let comments: Vec<Option<String>> = c.rules.iter().map(|r| r.comment.clone()).collect();
        let rules = match hint.chains.get(&name) {
            Some(want)
                if want.rules.len() == comments.len()
                    && want
                        .rules
                        .iter()
                        .zip(&comments)
                        .all(|(r, c)| c.as_deref() == Some(rule_tag(r).as_str())) =>
            {
                want.rules.clone()
            }
            // Rules tollgate did not write (or no longer wants) are kept as
            // their tags; they never equal a desired rule, so the chain is
            // rewritten.
            _ => comments
                .iter()
                .map(|c| format!("# {}", c.as_deref().unwrap_or("foreign rule")))
                .collect(),
        };
        plan.chains.insert(name, Chain { hook, rules });
    }
    for (name, m) in &table.maps {
        let name = name.clone();
        let kind = match m.kind {
            nft_reader::KindMatch::Exact(k) => k,
            nft_reader::KindMatch::Unrecognised => {
                tracing::warn!(map = %name, "tollgate's nftables map has a type tollgate does not know; leaving it");
                continue;
            }
        };
        if !m.unreadable.is_empty() {
            tracing::warn!(map = %name, count = m.unreadable.len(), "map elements tollgate cannot read");
        }
        plan.maps.insert(
            name,
            NftMap {
                kind,
                elements: m.elements.clone(),
            },
        );
    }
}
