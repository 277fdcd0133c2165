//! `tollgate overage`: the tenants the daemon moved into the overage
//! plan, and releasing one by hand.

use super::Context;
use crate::cli::history::OverageCommand;
use crate::error::{Error, Result};
use std::process::ExitCode;

pub fn run(cx: &Context, cmd: &OverageCommand) -> Result<ExitCode> {
    match cmd {
        OverageCommand::List { json } => {
            let policy = crate::policy_file::load(&cx.config)
                .ok()
                .and_then(|l| l.policy);
            let r = crate::overage_files::load_settled(&cx.state, policy.as_ref())?;
            if *json {
                say!("{}", crate::output::json_pretty(&r)?);
            } else if r.moves.is_empty() {
                sayln!("no tenant is in the overage plan");
            } else {
                for m in &r.moves {
                    say!("{}", crate::output::history::overage_move(m));
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        OverageCommand::Release { tenant } => {
            let policy = crate::policy_file::load(&cx.config)
                .ok()
                .and_then(|l| l.policy);
            let r = crate::overage_files::load_settled(&cx.state, policy.as_ref())?;
            let m = r
                .moves
                .iter()
                .find(|m| m.name == *tenant || tenant.parse() == Ok(m.tenant))
                .ok_or_else(|| {
                    Error::invalid(format!(
                        "tenant `{tenant}` was not moved into the overage plan by the daemon"
                    ))
                    .hint("`tollgate overage list` shows who was; `tollgate tenant move` moves anyone by hand")
                })?;
            crate::overage_files::request_release(&cx.state, m.tenant)?;
            sayln!(
                "release of `{}` (tenant {}) requested: the daemon moves it back to plan `{}` at its next round, and not again in period {}",
                m.name, m.tenant, m.from_plan, m.period
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}
