//! Applying a [`ChangeSet`] to the kernel.
//!
//! The change set is already ordered make-before-break. It is cut into
//! runs of consecutive changes that go to the same place (rtnetlink or
//! nftables), and each run is sent at once: all tc objects of a run in as
//! few `sendmsg` calls as fit, all nftables changes of a run as one `nft -f`
//! transaction. A run that fails does not stop the ones after it when they
//! do not depend on it; the next reconcile round sees what is missing and
//! sends it again, which is how a partial failure converges.
//!
//! clsact qdiscs are the one place where the change set is not the last
//! word: a clsact tollgate creates gets its mark (see [`crate::clsact`]),
//! and a clsact removal is checked against the kernel as it is at that
//! moment. One that tollgate did not create, or that holds someone else's
//! filters, is left where it is and reported in [`ApplyReport::kept`],
//! whatever plan asked for its removal.

use crate::bpf::Classifier;
use crate::clsact::{ClsactOwner, Hooks, MARK_CHAIN};
use crate::nft::Nft;
use crate::rtnl::{KernelError, Rtnl};
use crate::{DataplaneError, Failure};
use net_types::{ClassId, IfName};
use plan::*;
use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};
use tc_netlink::consts::{
    CLSACT_EGRESS, CLSACT_HANDLE, CLSACT_INGRESS, ETH_P_ALL, TC_H_CLSACT, TC_H_ROOT,
};
use tc_netlink::{Request, SockFilter};

/// How an apply behaves.
#[derive(Clone, Debug)]
pub struct ApplyOptions {
    /// How long to wait for a class being removed to send what it has
    /// queued, before it is deleted anyway.
    pub drain_timeout: Duration,
    /// For tests: fail the change at this index, as if the kernel refused it.
    pub inject_failure_at: Option<usize>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            drain_timeout: Duration::from_millis(500),
            inject_failure_at: None,
        }
    }
}

/// What an apply did.
#[derive(Debug, Default)]
pub struct ApplyReport {
    /// Changes the kernel accepted.
    pub applied: usize,
    /// Changes it refused, each with the reason.
    pub failed: Vec<Failure>,
    /// Wall time.
    pub elapsed: Duration,
    /// Time spent waiting for removed classes to drain.
    pub drained: Duration,
    /// clsact qdiscs the change set removed that were left in place,
    /// because they are not tollgate's alone (counted as applied: they are
    /// no longer tollgate's business).
    pub kept: Vec<KeptClsact>,
}

/// A clsact qdisc a change set removed that tollgate left in place.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptClsact {
    /// The device.
    pub dev: IfName,
    /// Whose it is: [`ClsactOwner::Shared`] or [`ClsactOwner::Operator`].
    pub owner: ClsactOwner,
}

impl std::fmt::Display for KeptClsact {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.owner {
            ClsactOwner::Operator => write!(
                f,
                "left the clsact qdisc on {}: tollgate did not create it",
                self.dev
            ),
            _ => write!(
                f,
                "left the clsact qdisc on {}: someone else's filters or chains are on it",
                self.dev
            ),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Backend {
    Links,
    Tc,
    Nft,
    Bpf,
}

fn backend(c: &Change) -> Backend {
    match c {
        Change::AddLink { .. } | Change::DelLink { .. } => Backend::Links,
        Change::AddQdisc { .. }
        | Change::DelQdisc { .. }
        | Change::AddClass { .. }
        | Change::ChangeClass { .. }
        | Change::DelClass { .. }
        | Change::SetFilter { .. }
        | Change::DelFilter { .. } => Backend::Tc,
        Change::AddMap { name, .. }
        | Change::DelMap { name }
        | Change::SetElement { map: name, .. }
        | Change::DelElement { map: name, .. }
            if is_bpf_map(name) =>
        {
            Backend::Bpf
        }
        _ => Backend::Nft,
    }
}

fn handle(id: ClassId) -> u32 {
    (id.major as u32) << 16 | id.minor as u32
}

/// The request that creates (or changes) a class.
/// The bursts sent for a class, in bytes: the policy's, or the default for
/// the rate. A burst is always sent, so the kernel's value is one tollgate
/// can compare against when it reads the class back.
pub(crate) fn sent_bursts(c: &Class) -> (u32, u32) {
    let pick = |b: Option<net_types::Size>, rate: net_types::Rate| {
        b.map_or_else(
            || tc_netlink::default_burst(rate.bps()),
            |b| b.bytes() as u32,
        )
    };
    (pick(c.burst, c.rate), pick(c.cburst, c.ceil))
}

fn htb_request(ifindex: u32, key: ClassKey, c: &Class, create: bool) -> Request {
    let rate_bps = c.rate.bps();
    let ceil_bps = c.ceil.bps();
    let (burst, cburst) = sent_bursts(c);
    Request::HtbClass {
        ifindex,
        classid: handle(key.id),
        parent: handle(c.parent),
        rate_bps,
        ceil_bps,
        burst: Some(burst),
        cburst: Some(cburst),
        prio: c.prio as u32,
        quantum: c.quantum,
        create,
    }
}

/// The tc parent a filter on this hook attaches to; tollgate's root HTB
/// qdiscs are always `1:`.
pub(crate) fn hook_parent(h: Hook) -> u32 {
    match h {
        Hook::Egress => CLSACT_EGRESS,
        Hook::Ingress => CLSACT_INGRESS,
        Hook::Root => 0x0001_0000,
    }
}

/// The rtnetlink request for one tc change, or why there is none.
fn tc_request(
    c: &Change,
    ifindex: &HashMap<IfName, u32>,
    bpf: Option<&Classifier>,
) -> Result<Request, String> {
    let idx = |dev: &IfName| {
        ifindex
            .get(dev)
            .copied()
            .ok_or_else(|| format!("interface `{dev}` does not exist"))
    };
    Ok(match c {
        Change::AddQdisc { key, qdisc } => match (key.attach, qdisc) {
            (Attach::Clsact, _) => Request::QdiscAddClsact {
                ifindex: idx(&key.dev)?,
            },
            (
                attach,
                Qdisc::Htb {
                    major,
                    default_minor,
                },
            ) => Request::QdiscAddHtb {
                ifindex: idx(&key.dev)?,
                parent: match attach {
                    Attach::Class(c) => handle(c),
                    _ => TC_H_ROOT,
                },
                major: *major,
                default_minor: *default_minor,
            },
            (_, Qdisc::Clsact) => return Err("clsact can only be a device's clsact qdisc".into()),
        },
        Change::DelQdisc { key } => {
            let (parent, h) = match key.attach {
                Attach::Root => (TC_H_ROOT, 0),
                Attach::Clsact => (TC_H_CLSACT, CLSACT_HANDLE),
                Attach::Class(c) => (handle(c), 0),
            };
            Request::QdiscDel {
                ifindex: idx(&key.dev)?,
                parent,
                handle: h,
            }
        }
        Change::AddClass { key, class } => htb_request(idx(&key.dev)?, *key, class, true),
        Change::ChangeClass { key, class } => htb_request(idx(&key.dev)?, *key, class, false),
        Change::DelClass { key } => Request::ClassDel {
            ifindex: idx(&key.dev)?,
            classid: handle(key.id),
        },
        Change::SetFilter {
            key,
            filter:
                Filter {
                    select: Select::Ebpf(p),
                    redirect_to,
                },
        } => Request::EbpfFilter {
            ifindex: idx(&key.dev)?,
            parent: hook_parent(key.hook),
            prio: key.prio,
            protocol: ETH_P_ALL,
            handle: 1,
            fd: bpf
                .and_then(|c| c.program_fd(*p))
                .ok_or_else(|| format!("the eBPF classifier's {} is not loaded", p.name()))?,
            name: p.name().to_string(),
            redirect_egress_to: match redirect_to {
                Some(d) => Some(idx(d)?),
                None => None,
            },
            replace: true,
        },
        Change::SetFilter { key, filter } => Request::BpfFilter {
            ifindex: idx(&key.dev)?,
            parent: hook_parent(key.hook),
            prio: key.prio,
            protocol: ETH_P_ALL,
            handle: 1,
            ops: filter
                .select
                .instructions()
                .into_iter()
                .map(|(code, jt, jf, k)| SockFilter { code, jt, jf, k })
                .collect(),
            classid: None,
            redirect_egress_to: match filter.redirect_to {
                Some(d) => Some(idx(&d)?),
                None => None,
            },
            replace: true,
        },
        Change::DelFilter { key } => Request::FilterDel {
            ifindex: idx(&key.dev)?,
            parent: hook_parent(key.hook),
            prio: key.prio,
            protocol: ETH_P_ALL,
        },
        _ => return Err("not a tc change".into()),
    })
}

/// The run as nfnetlink element changes, when it is nothing else and is
/// small enough (see [`crate::nfnl`]); `None` sends it to `nft -f`.
fn netlink_elements(run: &[Change]) -> Option<Vec<nft_netlink::ElementChange<'_>>> {
    use nft_netlink::{element_bytes, ElementOp};
    // Deletions first, as in `plan::render::changes_nft`: the batch is one
    // transaction, so the order is invisible to packets, and an interval
    // replaced by a nested or neighbouring one must be gone before its
    // replacement is checked for overlaps.
    let mut deletes = Vec::new();
    let mut adds = Vec::new();
    for c in run {
        match c {
            Change::SetElement {
                map,
                key,
                value,
                previous,
            } => {
                // Changing a value is a delete and an add, as in nft.
                if previous.is_some() {
                    push(
                        &mut deletes,
                        map.as_str(),
                        ElementOp::Delete,
                        element_bytes(key, None)?,
                    );
                }
                push(
                    &mut adds,
                    map.as_str(),
                    ElementOp::Add,
                    element_bytes(key, Some(*value))?,
                );
            }
            Change::DelElement { map, key } => {
                push(
                    &mut deletes,
                    map.as_str(),
                    ElementOp::Delete,
                    element_bytes(key, None)?,
                );
            }
            _ => return None,
        }
        if deletes.len() + adds.len() > crate::nfnl::MAX_ELEMENTS {
            return None;
        }
    }
    deletes.extend(adds);
    Some(deletes)
}

fn push<'a>(
    to: &mut Vec<nft_netlink::ElementChange<'a>>,
    map: &'a str,
    op: nft_netlink::ElementOp,
    elements: Vec<nft_netlink::ElementBytes>,
) {
    to.extend(
        elements
            .into_iter()
            .map(|element| nft_netlink::ElementChange { map, op, element }),
    );
}

/// Applies a change set. Never stops at the first failure: every change
/// that can be made is made, and every failure is reported.
pub fn apply(
    rtnl: &mut Rtnl,
    nft: &mut Nft,
    ifindex: &mut HashMap<IfName, u32>,
    bpf: &mut Option<Classifier>,
    ebpf_filters: &[(FilterKey, Filter)],
    cs: &ChangeSet,
    opts: &ApplyOptions,
) -> Result<ApplyReport, DataplaneError> {
    let start = Instant::now();
    let mut report = ApplyReport::default();
    let changes = &cs.changes;
    // Creating a classifier map means the observation found no usable
    // classifier (see `Observed::plan_for`): the change set fills a new
    // one from nothing and points every eBPF filter at it, so a fresh
    // object is loaded even if an incomplete one was found.
    if changes
        .iter()
        .any(|c| matches!(c, Change::AddMap { name, .. } if is_bpf_map(name)))
    {
        *bpf = None;
    }
    // A change set that only touches part of the plan (`hook vif online`)
    // can need a program or map the classifier in the kernel lacks (the
    // first VM on a host where none was hooked). A fresh object takes
    // over: the old maps' elements are copied into it, and the filters
    // that ran the old programs are pointed at the new ones, before the
    // change set runs against it.
    let lacking = bpf.as_ref().is_some_and(|b| {
        changes.iter().any(|c| match c {
            Change::SetFilter { filter, .. } => {
                matches!(filter.select, Select::Ebpf(p) if b.program_id(p).is_none())
            }
            Change::SetElement { map, .. } | Change::DelElement { map, .. } => {
                is_bpf_map(map) && !b.has_map(map)
            }
            _ => false,
        })
    });
    if lacking {
        take_over(rtnl, ifindex, bpf, ebpf_filters, &mut report)?;
    }
    let mut i = 0;
    while i < changes.len() {
        let b = backend(&changes[i]);
        let mut j = i + 1;
        while j < changes.len() && backend(&changes[j]) == b {
            j += 1;
        }
        let run = &changes[i..j];
        let run_start = Instant::now();
        let injected = opts
            .inject_failure_at
            .filter(|k| (i..j).contains(k))
            .map(|k| k - i);
        let wants_bpf = run.iter().any(|c| match c {
            Change::SetFilter { filter, .. } => matches!(filter.select, Select::Ebpf(_)),
            Change::AddMap { .. } | Change::SetElement { .. } | Change::DelElement { .. } => {
                b == Backend::Bpf
            }
            _ => false,
        });
        if wants_bpf && bpf.is_none() {
            *bpf = Some(Classifier::load().map_err(|e| DataplaneError::Missing {
                feature: "a kernel that loads tollgate's eBPF classifier".into(),
                hint: format!(
                    "{e}; use `[site] classifier = \"nftables\"` in the policy on this host"
                ),
            })?);
        }
        match b {
            Backend::Links => links(rtnl, ifindex, run, &mut report)?,
            Backend::Bpf => bpf_run(bpf, ifindex, run, injected, &mut report),
            Backend::Tc => {
                let deletes: Vec<ClassKey> = run
                    .iter()
                    .filter_map(|c| match c {
                        Change::DelClass { key } => Some(*key),
                        _ => None,
                    })
                    .collect();
                if !deletes.is_empty() {
                    let t = Instant::now();
                    drain(rtnl, ifindex, &deletes, opts.drain_timeout);
                    report.drained += t.elapsed();
                }
                tc(rtnl, ifindex, bpf.as_ref(), run, injected, &mut report)
            }
            Backend::Nft => {
                let result = match (injected, netlink_elements(run)) {
                    (Some(_), _) => Err("injected failure".to_string()),
                    (None, Some(elements)) => nft.apply_elements(&elements),
                    (None, None) => {
                        let script = plan::render::changes_nft(&ChangeSet {
                            changes: run.to_vec(),
                        });
                        nft.run_script(&script).map_err(|e| e.to_string())
                    }
                };
                match result {
                    Ok(()) => report.applied += run.len(),
                    Err(message) => report.failed.push(Failure {
                        object: format!(
                            "{} nftables change(s), from {}",
                            run.len(),
                            run[0].object()
                        ),
                        message,
                    }),
                }
            }
        }
        tracing::debug!(
            backend = match b {
                Backend::Links => "links",
                Backend::Tc => "tc",
                Backend::Nft => "nft",
                Backend::Bpf => "bpf",
            },
            changes = j - i,
            ms = run_start.elapsed().as_secs_f64() * 1e3,
            "applied a run"
        );
        i = j;
    }
    report.elapsed = start.elapsed();
    Ok(report)
}

/// Loads a fresh classifier in place of `bpf`, copies the old maps'
/// elements into it and points `filters` (running the old programs) at it.
fn take_over(
    rtnl: &mut Rtnl,
    ifindex: &HashMap<IfName, u32>,
    bpf: &mut Option<Classifier>,
    filters: &[(FilterKey, Filter)],
    report: &mut ApplyReport,
) -> Result<(), DataplaneError> {
    let missing = |e: String| DataplaneError::Missing {
        feature: "a kernel that loads tollgate's eBPF classifier".into(),
        hint: format!("{e}; use `[site] classifier = \"nftables\"` in the policy on this host"),
    };
    let mut fresh = Classifier::load().map_err(|e| missing(e.to_string()))?;
    if let Some(old) = bpf.as_ref() {
        if let Err(e) = fresh.copy_from(old) {
            report.failed.push(Failure {
                object: "the eBPF classifier's maps".into(),
                message: format!("copying into a fresh classifier: {e}"),
            });
        }
    }
    *bpf = Some(fresh);
    let changes: Vec<Change> = filters
        .iter()
        .map(|(key, filter)| Change::SetFilter {
            key: *key,
            filter: *filter,
        })
        .collect();
    tc(rtnl, ifindex, bpf.as_ref(), &changes, None, report);
    // These are not the change set's changes; only failures are reported.
    report.applied -= changes.len().min(report.applied);
    Ok(())
}

/// Writes a run of the eBPF classifier's map changes, one element at a
/// time (each is one `bpf()` call, atomic for the packets that read it).
/// Removing the maps (`down`) unpins them; they go with the last filter.
fn bpf_run(
    bpf: &mut Option<Classifier>,
    ifindex: &HashMap<IfName, u32>,
    run: &[Change],
    injected: Option<usize>,
    report: &mut ApplyReport,
) {
    for (k, c) in run.iter().enumerate() {
        let result = if injected == Some(k) {
            Err("injected failure".to_string())
        } else {
            match (c, bpf.as_mut()) {
                // `tg_config` exists whenever the eBPF classifier is in
                // use, so its removal is the classifier's: unpin it. Any
                // other map lives as long as the object (a BPF map cannot
                // leave its programs); no program left reads it.
                (Change::DelMap { name }, _) if name == "tg_config" => {
                    *bpf = None;
                    crate::bpf::unpin().map(|_| ()).map_err(|e| e.to_string())
                }
                (Change::DelMap { .. }, _) => Ok(()),
                (Change::AddMap { .. }, Some(_)) => Ok(()),
                (
                    Change::SetElement {
                        map, key, value, ..
                    },
                    Some(cl),
                ) => cl.write(map, key, Some(*value), ifindex),
                (Change::DelElement { map, key }, Some(cl)) => cl.write(map, key, None, ifindex),
                _ => Err("the eBPF classifier is not loaded".to_string()),
            }
        };
        match result {
            Ok(()) => report.applied += 1,
            Err(message) => report.failed.push(Failure {
                object: c.object().to_string(),
                message,
            }),
        }
    }
}

fn links(
    rtnl: &mut Rtnl,
    ifindex: &mut HashMap<IfName, u32>,
    run: &[Change],
    report: &mut ApplyReport,
) -> Result<(), DataplaneError> {
    let mut reqs = Vec::new();
    let mut added = Vec::new();
    for c in run {
        match c {
            Change::AddLink { name, .. } => {
                reqs.push((
                    c,
                    Request::LinkAddIfb {
                        name: name.to_string(),
                    },
                ));
                added.push(*name);
            }
            Change::DelLink { name } => match ifindex.get(name) {
                Some(&i) => reqs.push((c, Request::LinkDel { ifindex: i })),
                None => report.applied += 1,
            },
            _ => {}
        }
    }
    execute(rtnl, reqs, report);
    // New devices get their index now, and are brought up.
    for l in rtnl
        .links()
        .map_err(|e| DataplaneError::io("list network devices", e))?
    {
        if let Ok(n) = IfName::new(&l.name) {
            ifindex.insert(n, l.ifindex);
        }
    }
    ifindex.retain(|n, _| {
        !run.iter()
            .any(|c| matches!(c, Change::DelLink { name } if name == n))
    });
    let ups: Vec<Request> = added
        .iter()
        .filter_map(|n| ifindex.get(n))
        .map(|&i| Request::LinkSetUp { ifindex: i })
        .collect();
    for (r, req) in rtnl.execute(&ups).into_iter().zip(&ups) {
        if let Err(e) = r {
            report.failed.push(Failure {
                object: format!("{req:?}"),
                message: e.to_string(),
            });
        }
    }
    Ok(())
}

fn tc(
    rtnl: &mut Rtnl,
    ifindex: &HashMap<IfName, u32>,
    bpf: Option<&Classifier>,
    run: &[Change],
    injected: Option<usize>,
    report: &mut ApplyReport,
) {
    let mut reqs = Vec::with_capacity(run.len());
    // The devices with a clsact qdisc, read once for the run's removals.
    let mut with_clsact: Option<Result<HashSet<u32>, String>> = None;
    for (k, c) in run.iter().enumerate() {
        if injected == Some(k) {
            report.failed.push(Failure {
                object: c.object().to_string(),
                message: "injected failure".into(),
            });
            continue;
        }
        if let Some(refusal) = root_check(rtnl, ifindex, c) {
            match refusal {
                RootCheck::Done => report.applied += 1,
                RootCheck::Refused(message) => report.failed.push(Failure {
                    object: c.object().to_string(),
                    message,
                }),
            }
            continue;
        }
        if let Change::DelQdisc { key } = c {
            if key.attach == Attach::Clsact {
                let devs = with_clsact.get_or_insert_with(|| clsact_devices(rtnl));
                match clsact_owner(rtnl, ifindex, devs, key.dev) {
                    Ok(Some(ClsactOwner::Tollgate)) | Ok(None) => {}
                    Ok(Some(owner)) => {
                        tracing::info!(dev = %key.dev, ?owner, "leaving a clsact qdisc that is not tollgate's alone");
                        report.kept.push(KeptClsact {
                            dev: key.dev,
                            owner,
                        });
                        report.applied += 1;
                        continue;
                    }
                    Err(message) => {
                        report.failed.push(Failure {
                            object: c.object().to_string(),
                            message,
                        });
                        continue;
                    }
                }
            }
        }
        match tc_request(c, ifindex, bpf) {
            Ok(r) => reqs.push((c, r)),
            Err(message) => report.failed.push(Failure {
                object: c.object().to_string(),
                message,
            }),
        }
    }
    let created = execute(rtnl, reqs, report);
    mark_clsacts(rtnl, ifindex, &created.clsacts, report);
    mark_roots(rtnl, ifindex, &created.roots, report);
}

/// What [`root_check`] decided instead of sending a change.
enum RootCheck {
    /// Nothing to send: what was wanted is already so.
    Done,
    /// Not sent: the root qdisc is not the kernel's default or tollgate's.
    Refused(String),
}

/// The check before tollgate creates or removes the root qdisc of an
/// interface that is not one of its IFBs (`shape_on = "interface"`),
/// against the kernel as it is now, whatever the change set says: the
/// kernel itself would replace an operator's root qdisc with a new
/// handle, so only the kernel's default is taken, and only tollgate's
/// marked tree is removed. `None`: send the change.
fn root_check(rtnl: &mut Rtnl, ifindex: &HashMap<IfName, u32>, c: &Change) -> Option<RootCheck> {
    use crate::root_qdisc::{owner_of, RootOwner};
    let (key, adding) = match c {
        Change::AddQdisc { key, .. } => (key, true),
        Change::DelQdisc { key } => (key, false),
        _ => return None,
    };
    if key.attach != Attach::Root || key.dev.as_str().starts_with("tg-") {
        return None;
    }
    let Some(&i) = ifindex.get(&key.dev) else {
        return (!adding).then_some(RootCheck::Done);
    };
    let owner = match owner_of(rtnl, i) {
        Ok(o) => o,
        Err(e) => {
            return Some(RootCheck::Refused(format!(
                "cannot read whose the root qdisc of {} is: {e}",
                key.dev
            )))
        }
    };
    match (adding, owner) {
        (true, RootOwner::Default) | (false, RootOwner::Tollgate) => None,
        (true, RootOwner::Tollgate) | (false, RootOwner::Default) => Some(RootCheck::Done),
        (_, RootOwner::Operator(what)) => Some(RootCheck::Refused(format!(
            "interface {} has a root qdisc tollgate did not create ({what}); left as it is (remove it with `tc qdisc del dev {} root` to let tollgate shape there, or use shape_on = \"ifb\")",
            key.dev, key.dev
        ))),
    }
}

/// Marks the root HTB qdiscs tollgate just created on interfaces as its
/// own (see [`crate::root_qdisc`]).
fn mark_roots(
    rtnl: &mut Rtnl,
    ifindex: &HashMap<IfName, u32>,
    created: &[(IfName, u16)],
    report: &mut ApplyReport,
) {
    let reqs: Vec<Request> = created
        .iter()
        .filter_map(|(d, major)| {
            ifindex.get(d).map(|&i| Request::ChainAdd {
                ifindex: i,
                parent: u32::from(*major) << 16,
                chain: MARK_CHAIN,
            })
        })
        .collect();
    for (r, (dev, _)) in rtnl.execute(&reqs).into_iter().zip(created) {
        if let Err(e) = r {
            // Unmarked, the tree reads as someone else's: the next round
            // refuses to touch it, and `down` leaves it.
            report.failed.push(Failure {
                object: format!("the mark chain of the root qdisc on {dev}"),
                message: format!("{e}; tollgate will not recognise this root qdisc as its own: remove it with `tc qdisc del dev {dev} root`"),
            });
        }
    }
}

/// The indexes of the devices that have a clsact qdisc.
fn clsact_devices(rtnl: &mut Rtnl) -> Result<HashSet<u32>, String> {
    Ok(rtnl
        .qdiscs()
        .map_err(|e| format!("cannot list qdiscs: {e}"))?
        .iter()
        .filter(|q| q.kind == "clsact")
        .map(|q| q.ifindex)
        .collect())
}

/// Whose the clsact on `dev` is now, read from the kernel; `None` if the
/// device has none (then its removal is already done).
fn clsact_owner(
    rtnl: &mut Rtnl,
    ifindex: &HashMap<IfName, u32>,
    with_clsact: &Result<HashSet<u32>, String>,
    dev: IfName,
) -> Result<Option<ClsactOwner>, String> {
    let Some(&i) = ifindex.get(&dev) else {
        return Ok(None);
    };
    if !with_clsact.as_ref().map_err(Clone::clone)?.contains(&i) {
        return Ok(None);
    }
    let hooks = Hooks::read(rtnl, i).map_err(|e| format!("cannot read its hooks: {e}"))?;
    Ok(Some(hooks.owner()))
}

/// Marks the clsact qdiscs tollgate just created as its own.
fn mark_clsacts(
    rtnl: &mut Rtnl,
    ifindex: &HashMap<IfName, u32>,
    created: &[IfName],
    report: &mut ApplyReport,
) {
    let reqs: Vec<Request> = created
        .iter()
        .filter_map(|d| ifindex.get(d))
        .map(|&i| Request::ChainAdd {
            ifindex: i,
            parent: CLSACT_INGRESS,
            chain: MARK_CHAIN,
        })
        .collect();
    for (r, dev) in rtnl.execute(&reqs).into_iter().zip(created) {
        if let Err(e) = r {
            // The qdisc works; unmarked, it is read back as someone
            // else's, so `down` leaves it behind rather than risk removing
            // another's. Say so now, once.
            report.failed.push(Failure {
                object: format!("the mark chain of the clsact qdisc on {dev}"),
                message: format!("{e}; `tollgate down` will leave this clsact qdisc in place"),
            });
        }
    }
}

/// The qdiscs a run created that get tollgate's mark.
#[derive(Default)]
struct Created {
    /// Devices whose clsact qdisc was created.
    clsacts: Vec<IfName>,
    /// Interfaces (not tollgate's IFBs) whose root HTB was created, with
    /// its major.
    roots: Vec<(IfName, u16)>,
}

/// Sends the requests and books each result. Returns the qdiscs created
/// by these requests that must be marked.
fn execute(rtnl: &mut Rtnl, reqs: Vec<(&Change, Request)>, report: &mut ApplyReport) -> Created {
    let (changes, reqs): (Vec<&Change>, Vec<Request>) = reqs.into_iter().unzip();
    let mut created = Created::default();
    for (r, c) in rtnl.execute(&reqs).into_iter().zip(changes) {
        let clsact = match c {
            Change::AddQdisc { key, .. } if key.attach == Attach::Clsact => Some(key.dev),
            _ => None,
        };
        let root = match c {
            Change::AddQdisc {
                key,
                qdisc: Qdisc::Htb { major, .. },
            } if key.attach == Attach::Root && !key.dev.as_str().starts_with("tg-") => {
                Some((key.dev, *major))
            }
            _ => None,
        };
        match r {
            Ok(()) => {
                report.applied += 1;
                created.clsacts.extend(clsact);
                created.roots.extend(root);
            }
            // Removing what is already gone is what was wanted.
            Err(e) if e.errno == libc::ENOENT && c.step() == Step::Remove => report.applied += 1,
            // A clsact appeared since observation: someone else's, which
            // tollgate uses as it is (unmarked).
            Err(KernelError { errno, .. }) if errno == libc::EEXIST && clsact.is_some() => {
                report.applied += 1
            }
            Err(e) => report.failed.push(Failure {
                object: c.object().to_string(),
                message: e.to_string(),
            }),
        }
    }
    created
}

/// Waits until the classes about to be removed have nothing queued, so
/// that a tenant moved to new classes loses no packet that was already
/// waiting in the old ones.
fn drain(rtnl: &mut Rtnl, ifindex: &HashMap<IfName, u32>, keys: &[ClassKey], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    loop {
        // One class at a time: a dump would read every class of the device,
        // thousands of them, to learn about the one or two being removed.
        let mut queued = 0u64;
        for key in keys {
            let Some(&i) = ifindex.get(&key.dev) else {
                continue;
            };
            let handle = (u32::from(key.id.major) << 16) | u32::from(key.id.minor);
            match rtnl.class(i, handle) {
                Ok(Some(c)) => queued += c.stats.map_or(0, |s| u64::from(s.qlen)),
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(class = %key.id, dev = %key.dev, error = %e, "cannot read a class's queue; removing it without waiting");
                    return;
                }
            }
        }
        tracing::debug!(queued, "draining classes before removing them");
        if queued == 0 || Instant::now() >= deadline {
            if queued > 0 {
                tracing::warn!(
                    queued,
                    "classes still held packets when the drain time ran out"
                );
            }
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}
