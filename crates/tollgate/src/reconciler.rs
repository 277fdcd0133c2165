//! Observe → facts → compile → diff, written once for every command that
//! works on the live kernel (`apply`, `plan`, `status`, `down`, `tenant
//! move`, `hook vif`, `top`) and for the daemon's shell.
//!
//! The facts the compiler needs come from what was observed: the
//! interfaces that exist (minus those taken offline by `hook vif
//! offline`), the classes tollgate already owns (so every owner keeps its
//! handles), and the realms of the saved routes table.

use crate::error::{Error, Result};
use crate::offline_vifs::OfflineVifs;
use crate::saved_routes::SavedRoutes;
use crate::state_dir::StateDir;
use compiler::{Compiled, HostFacts, Live};
use linux_dataplane::{Dataplane, Observed};
use net_types::IfName;
use plan::{diff, ChangeSet, Plan};
use policy::{Loaded, Policy};
use std::collections::BTreeSet;

/// One round's view: what should exist, what does, and the difference.
pub struct Round {
    /// What the policy compiles to on this host.
    pub compiled: Compiled,
    /// What was observed, with counters.
    pub observed: Observed,
    /// The observation read with the compiled plan as a hint.
    pub observed_plan: Plan,
    /// What to do.
    pub changes: ChangeSet,
}

/// The kernel, the routes table the compiler's realms come from, and the
/// interfaces taken offline.
pub struct Reconciler {
    /// The kernel.
    pub dp: Dataplane,
    /// The saved routes table, read again only when it changes.
    pub routes: SavedRoutes,
    /// Interfaces taken offline; stale records are dropped (and the file
    /// saved) by each round's observation.
    pub offline: OfflineVifs,
    state: StateDir,
}

impl Reconciler {
    /// Opens the kernel's sockets; the routes table is read from `state`.
    pub fn open(state: &StateDir) -> Result<Reconciler> {
        Ok(Reconciler {
            dp: Dataplane::open()?,
            routes: SavedRoutes::new(state.routes_table()),
            offline: OfflineVifs::load(state)?,
            state: state.clone(),
        })
    }

    /// Observes, compiles `policy` against what was observed (leaving out
    /// the interfaces taken offline), and diffs.
    pub fn round(&mut self, loaded: &Loaded, policy: &Policy) -> Result<Round> {
        let observed = self.dp.observe(&Plan::default())?;
        if self.offline.prune(&observed.ifindex) {
            self.offline.save(&self.state)?;
        }
        let realms = self.routes.realms(policy)?;
        let facts = facts(&observed, &self.offline.names(), realms.to_vec());
        // The transit guard's steps in force are the daemon's policy too.
        let guarded = engine::transit_run::with_steps(
            policy,
            &crate::transit_files::load(&self.state).unwrap_or_default(),
        );
        let compiled = compile(loaded, guarded.as_ref().unwrap_or(policy), &facts)?;
        let observed_plan = observed.plan_for(&compiled.plan);
        let changes = diff(&compiled.plan, &observed_plan);
        Ok(Round {
            compiled,
            observed,
            observed_plan,
            changes,
        })
    }
}

/// The compiler's facts from an observation.
pub fn facts(
    observed: &Observed,
    absent: &BTreeSet<IfName>,
    route_realms: Vec<(net_types::Prefix, net_types::RealmId)>,
) -> HostFacts {
    let interfaces = observed
        .ifindex
        .keys()
        .filter(|i| !absent.contains(i))
        .copied()
        .collect();
    HostFacts {
        interfaces: Some(interfaces),
        live: Live::from_plan(&observed.plan),
        route_realms,
        bridges: Some(bridges(observed)),
        offline: absent.clone(),
        foreign_roots: foreign_roots(observed),
    }
}

/// The interfaces whose root qdisc someone else configured, with what it
/// is, as the compiler takes them.
pub fn foreign_roots(observed: &Observed) -> std::collections::BTreeMap<IfName, String> {
    observed
        .roots
        .iter()
        .filter_map(|(dev, owner)| match owner {
            linux_dataplane::root_qdisc::RootOwner::Operator(what) => Some((*dev, what.clone())),
            _ => None,
        })
        .collect()
}

/// The host's bridges and their ports, as the compiler takes them.
pub fn bridges(observed: &Observed) -> std::collections::BTreeMap<IfName, Vec<IfName>> {
    observed
        .bridges
        .iter()
        .map(|(b, ports)| (*b, ports.iter().copied().collect()))
        .collect()
}

/// Compiles, printing the compiler's notes, or refuses with its
/// diagnostics.
pub fn compile(loaded: &Loaded, policy: &Policy, facts: &HostFacts) -> Result<Compiled> {
    match compiler::compile(policy, facts) {
        Ok(c) => {
            for n in &c.notes {
                eprint!("{}", n.render(&loaded.sources));
            }
            Ok(c)
        }
        Err(diags) => Err(Error::invalid(format!(
            "the policy cannot be compiled for this host; nothing was changed\n{}",
            diags
                .iter()
                .map(|d| d.render(&loaded.sources))
                .collect::<String>()
        ))),
    }
}
