//! `tollgate tenant move`: edits the policy file and applies just that
//! tenant's change, make-before-break.

use super::Context;
use crate::cli::live::TenantCommand;
use crate::error::{Error, Result};
use crate::reconciler::Reconciler;
use linux_dataplane::ApplyOptions;
use std::process::ExitCode;

pub fn run(cx: &Context, cmd: &TenantCommand) -> Result<ExitCode> {
    let TenantCommand::Move {
        tenant,
        plan,
        parent,
    } = cmd;
    let path = &cx.config;
    let text = crate::policy_file::read_text(path)?;
    let current = crate::policy_file::load_text(path, &text);
    let edit = engine::edit::Edit::Move {
        tenant: tenant.clone(),
        plan: plan.clone(),
        parent: parent.clone(),
    };
    let edited = engine::edit::apply(&text, current.policy.as_ref(), &edit)
        .map_err(|e| Error::invalid(e.to_string()))?;
    let loaded = crate::policy_file::load_text(path, &edited);
    let Some(policy) = loaded.policy.clone() else {
        return Err(Error::invalid(format!(
            "the move would make the policy invalid; the file was not changed\n{}",
            loaded.render()
        )));
    };
    crate::crash_point::reached("policy-edit");
    crate::state_dir::replace_atomically(path, edited.as_bytes())?;
    let mut r = Reconciler::open(&cx.state)?;
    let round = r.round(&loaded, &policy)?;
    let report = r.dp.apply(&round.changes, &ApplyOptions::default())?;
    sayln!(
        "moved `{tenant}` to plan `{plan}` in {}; {}",
        path.display(),
        crate::output::kernel::apply_summary(&report)
    );
    if report.failed.is_empty() {
        Ok(ExitCode::SUCCESS)
    } else {
        Err(
            Error::partial("the policy was edited, but some kernel changes failed")
                .hint("run `tollgate apply` to retry them"),
        )
    }
}
