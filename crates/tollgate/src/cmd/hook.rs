//! `tollgate hook vif online|offline IFNAME`: shapes or unhooks the tenant
//! on one interface, and nothing else. What offline means is in
//! [`crate::offline_vifs`].

use super::Context;
use crate::cli::live::{HookCommand, VifState};
use crate::error::{Error, Result};
use crate::reconciler::Reconciler;
use linux_dataplane::ApplyOptions;
use plan::{ChangeSet, ObjectId};
use std::collections::BTreeSet;
use std::process::ExitCode;

pub fn run(cx: &Context, cmd: &HookCommand) -> Result<ExitCode> {
    let HookCommand::Vif { state, ifname } = cmd;
    let online = *state == VifState::Online;
    let (loaded, policy) = crate::policy_file::valid(&cx.config)?;
    let tenant = policy
        .tenants
        .iter()
        .find(|t| t.interface.is_some_and(|i| i.as_str() == ifname))
        .ok_or_else(|| {
            Error::invalid(format!(
                "no tenant has `interface = \"{ifname}\"` in the policy"
            ))
            .hint("add it to the tenant, or check the name with `ip link`")
        })?;
    let mut r = Reconciler::open(&cx.state)?;
    let offline = &mut r.offline;
    if online {
        offline.bring_online(ifname);
    } else {
        // Recorded with the interface's index, so that a new VM that gets
        // the same name later is shaped again.
        let observed = r.dp.observe(&plan::Plan::default())?;
        let offline = &mut r.offline;
        match observed.ifindex.iter().find(|(n, _)| n.as_str() == ifname) {
            Some((_, index)) => offline.take_offline(ifname, *index),
            // Already gone: nothing to remember, its shaping goes anyway.
            None => {
                offline.bring_online(ifname);
            }
        }
    }
    r.offline.save(&cx.state)?;
    let round = r.round(&loaded, &policy)?;
    let mine: BTreeSet<ObjectId> = round
        .compiled
        .provenance
        .of_tenant(tenant.id)
        .map(|(id, _)| id.clone())
        .collect();
    let touches_vif = |id: &ObjectId| match id {
        ObjectId::Qdisc(k) => k.dev.as_str() == ifname,
        ObjectId::Filter(k) => k.dev.as_str() == ifname,
        ObjectId::Chain(c) => c.ends_with(&format!("_{ifname}")),
        _ => false,
    };
    let changes = ChangeSet {
        changes: round
            .changes
            .changes
            .iter()
            .filter(|c| {
                let id = c.object();
                mine.contains(&id) || touches_vif(&id)
            })
            .cloned()
            .collect(),
    };
    let report = r.dp.apply(&changes, &ApplyOptions::default())?;
    sayln!(
        "tenant {} `{}` {} on {ifname}: {}",
        tenant.id,
        tenant.name,
        if online {
            "shaped"
        } else {
            "unhooked (offline until `hook vif online` or until the interface is recreated)"
        },
        crate::output::kernel::apply_summary(&report)
    );
    if report.failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Error::partial("some kernel changes failed")
            .hint("run the hook again, or `tollgate apply`"))
    }
}
