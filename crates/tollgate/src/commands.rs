//! One function per subcommand.

use crate::cli::{Args, Command, Format, HookCommand, TenantCommand, VifState, DEFAULT_CONFIG};
use crate::files;
use crate::live;
use compiler::{Compiled, HostFacts};
use policy::{Loaded, Policy};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(args: &Args) -> Result<ExitCode, String> {
    let path = args
        .config
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    match &args.command {
        Command::Check { json } => check(&path, *json),
        Command::Plan {
            offline,
            host,
            format,
        } => {
            if !offline {
                if host.is_some() {
                    return Err("--host only applies to --offline plans\n  hint: without --offline, the facts come from the live kernel".into());
                }
                say!("{}", live::plan(&path, *format)?);
                return Ok(ExitCode::SUCCESS);
            }
            let facts = match host {
                Some(h) => files::load_facts(h)?,
                None => HostFacts::default(),
            };
            let (loaded, policy) = valid(&path)?;
            let compiled = compile(&loaded, &policy, &facts)?;
            say!("{}", show_plan(&policy, &compiled, *format)?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Apply { every, json } => Ok(if live::apply(&path, *every, *json)? {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }),
        Command::Status { json, interval } => {
            let status = live::status(&path, *interval, *json)?;
            let status = crate::overage::annotate_status(status, *json);
            say!("{}", crate::collector::annotate_status(status, *json));
            Ok(ExitCode::SUCCESS)
        }
        Command::Down => {
            sayln!("{}", live::down()?);
            Ok(ExitCode::SUCCESS)
        }
        Command::Tenant(TenantCommand::Move {
            tenant,
            plan,
            parent,
        }) => {
            sayln!(
                "{}",
                live::tenant_move(&path, tenant, plan, parent.as_deref())?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Hook(HookCommand::Vif { state, ifname }) => {
            sayln!(
                "{}",
                live::hook_vif(&path, *state == VifState::Online, ifname)?
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Lab(cmd) => {
            crate::lab::run(cmd)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Routes(cmd) => crate::routes::run(&path, cmd),
        Command::Run(a) => crate::daemon::run(&path, a),
        Command::Usage(a) => out(crate::usage::usage(&path, a)?),
        Command::Realms(a) => out(crate::usage::realms(&path, a)?),
        Command::Top(a) => crate::top::run(&path, a).map(|()| ExitCode::SUCCESS),
        Command::Bill(a) => out(crate::bill::run(&path, a)?),
        Command::Overage(c) => out(crate::overage::run(c)?),
        Command::Flows(c) => crate::collector::run(&path, c),
        Command::Explain { tenant, json } => {
            let (loaded, policy) = valid(&path)?;
            let compiled = compile(&loaded, &policy, &HostFacts::default())?;
            say!("{}", explain(&policy, &compiled, tenant, *json)?);
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Prints a command's output.
fn out(text: String) -> Result<ExitCode, String> {
    say!("{text}");
    Ok(ExitCode::SUCCESS)
}

fn check(path: &std::path::Path, json: bool) -> Result<ExitCode, String> {
    let loaded = files::load_policy(path)?;
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
        sayln!(
            "{}",
            serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
        );
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
        ExitCode::from(1)
    })
}

/// Loads a policy and refuses to go on if it has errors.
pub(crate) fn valid(path: &std::path::Path) -> Result<(Loaded, Policy), String> {
    let loaded = files::load_policy(path)?;
    match loaded.policy.clone() {
        Some(p) => {
            for d in &loaded.diagnostics {
                eprint!("{}", d.render(&loaded.sources));
            }
            Ok((loaded, p))
        }
        None => Err(format!(
            "the policy is invalid; nothing was changed\n{}  hint: `tollgate check` lists the same problems",
            loaded.render()
        )),
    }
}

pub(crate) fn compile(
    loaded: &Loaded,
    policy: &Policy,
    facts: &HostFacts,
) -> Result<Compiled, String> {
    match compiler::compile(policy, facts) {
        Ok(c) => {
            for n in &c.notes {
                eprint!("{}", n.render(&loaded.sources));
            }
            Ok(c)
        }
        Err(diags) => Err(format!(
            "the policy cannot be compiled for this host; nothing was changed\n{}",
            diags
                .iter()
                .map(|d| d.render(&loaded.sources))
                .collect::<String>()
        )),
    }
}

fn show_plan(policy: &Policy, c: &Compiled, format: Format) -> Result<String, String> {
    Ok(match format {
        Format::Tc => plan::render::plan_tc(&c.plan),
        Format::Nft => plan::render::plan_nft(&c.plan),
        Format::Json => {
            let provenance: Vec<_> = c
                .provenance
                .objects
                .iter()
                .map(|(id, s)| serde_json::json!({ "object": id.to_string(), "serves": s, "why": s.describe(policy) }))
                .collect();
            let out = serde_json::json!({ "plan": c.plan, "provenance": provenance });
            serde_json::to_string_pretty(&out).map_err(|e| e.to_string())? + "\n"
        }
        Format::Text => {
            let p = &c.plan;
            let mut out = String::new();
            let _ = writeln!(
                out,
                "{} mode, {} tenants, {} shard(s) per direction",
                match policy.site.mode {
                    policy::Mode::Router => "router",
                    policy::Mode::Hypervisor => "hypervisor",
                },
                policy.tenants.len(),
                policy.site.shards
            );
            let _ = writeln!(
                out,
                "{} devices, {} qdiscs, {} classes, {} filters, {} chains, {} map elements\n",
                p.links.len(),
                p.qdiscs.len(),
                p.classes.len(),
                p.filters.len(),
                p.chains.len(),
                p.maps.values().map(|m| m.elements.len()).sum::<usize>()
            );
            let _ = writeln!(out, "From an empty kernel, applying this plan would:");
            out + &plan::render::changes_text(&plan::diff(p, &plan::Plan::default()))
        }
    })
}

fn explain(policy: &Policy, c: &Compiled, who: &str, json: bool) -> Result<String, String> {
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
            format!(
                "no tenant has the id or name `{who}`\n  hint: tenants include {}",
                names.join(", ")
            )
        })?;
    let objects: Vec<_> = c.provenance.of_tenant(tenant.id).collect();
    if json {
        let list: Vec<_> = objects
            .iter()
            .map(|(id, s)| serde_json::json!({ "object": id.to_string(), "serves": s, "why": s.describe(policy) }))
            .collect();
        let out = serde_json::json!({ "tenant": tenant.id, "name": tenant.name, "plan": tenant.plan, "objects": list });
        return Ok(serde_json::to_string_pretty(&out).map_err(|e| e.to_string())? + "\n");
    }
    let mut out = format!(
        "tenant {} `{}` on plan `{}`: {} kernel objects\n",
        tenant.id,
        tenant.name,
        tenant.plan,
        objects.len()
    );
    for (id, s) in objects {
        let mut tags = Vec::new();
        if let Some(d) = s.direction {
            tags.push(d.as_str().to_string());
        }
        if let Some(r) = s.realm_name(policy) {
            tags.push(format!("realm {r}"));
        }
        if let Some(b) = s.band {
            tags.push(format!("band {}", b.as_str()));
        }
        let _ = writeln!(
            out,
            "  {id}  [{}]\n      {}",
            tags.join(", "),
            s.describe(policy)
        );
    }
    Ok(out)
}
