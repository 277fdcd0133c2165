//! `tollgate explain`: every kernel object serving one tenant, and why.

use super::Context;
use crate::error::{Error, Result};
use compiler::HostFacts;
use std::process::ExitCode;

pub fn run(cx: &Context, who: &str, json: bool) -> Result<ExitCode> {
    let (loaded, policy) = crate::policy_file::valid(&cx.config)?;
    let compiled = crate::reconciler::compile(&loaded, &policy, &HostFacts::default())?;
    let tenant = policy
        .tenants
        .iter()
        .find(|t| t.name == who || who.parse::<u32>().is_ok_and(|id| t.id.0 == id))
        .ok_or_else(|| {
            let names: Vec<&str> = policy
                .tenants
                .iter()
                .take(8)
                .map(|t| t.name.as_str())
                .collect();
            Error::invalid(format!("no tenant has the id or name `{who}`"))
                .hint(format!("tenants include {}", names.join(", ")))
        })?;
    say!(
        "{}",
        crate::output::policy::explain(&policy, &compiled, tenant, json)?
    );
    Ok(ExitCode::SUCCESS)
}
