//! `tollgate check`: every problem of the policy at once.

use super::Context;
use crate::error::Result;
use crate::output;
use compiler::HostFacts;
use std::process::ExitCode;

pub fn run(cx: &Context, json: bool) -> Result<ExitCode> {
    let path = &cx.config;
    let loaded = crate::policy_file::load(path)?;
    // A policy is only valid if it also compiles: the kernel's limits (such
    // as the number of classes an HTB tree can address) are checked too.
    let mut diags = loaded.diagnostics.clone();
    if let Some(p) = &loaded.policy {
        match compiler::compile(p, &HostFacts::default()) {
            Ok(c) => diags.extend(c.notes),
            Err(e) => diags.extend(e),
        }
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    if json {
        let records: Vec<_> = diags.iter().map(|d| d.to_record(&loaded.sources)).collect();
        let out = serde_json::json!({ "valid": errors == 0, "errors": errors, "warnings": warnings, "diagnostics": records });
        say!("{}", output::json_pretty(&out)?);
    } else {
        for d in &diags {
            eprint!("{}", d.render(&loaded.sources));
        }
        if errors == 0 {
            let p = loaded.policy.as_ref();
            sayln!(
                "{}: valid ({} tenants, {} plans, {} realms{})",
                path.display(),
                p.map_or(0, |p| p.tenants.len()),
                p.map_or(0, |p| p.plans.len()),
                p.map_or(0, |p| p.realms.list.len()),
                if warnings > 0 {
                    format!(", {warnings} warnings")
                } else {
                    String::new()
                }
            );
        } else {
            eprintln!(
                "{}: {errors} errors, {warnings} warnings; nothing was changed",
                path.display()
            );
        }
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(crate::error::Kind::Invalid.code())
    })
}
