//! How a policy's plan and a tenant's objects are shown (`plan
//! --offline`, `explain`).

use super::Format;
use crate::error::Result;
use compiler::Compiled;
use policy::{Policy, Tenant};
use std::fmt::Write as _;

/// The whole plan in `format`, as the change set from an empty kernel.
pub fn plan(policy: &Policy, c: &Compiled, format: Format) -> Result<String> {
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
            super::json_pretty(&serde_json::json!({ "plan": c.plan, "provenance": provenance }))?
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

/// Every kernel object serving `tenant`, and why.
pub fn explain(policy: &Policy, c: &Compiled, tenant: &Tenant, json: bool) -> Result<String> {
    let objects: Vec<_> = c.provenance.of_tenant(tenant.id).collect();
    if json {
        let list: Vec<_> = objects
            .iter()
            .map(|(id, s)| serde_json::json!({ "object": id.to_string(), "serves": s, "why": s.describe(policy) }))
            .collect();
        return super::json_pretty(
            &serde_json::json!({ "tenant": tenant.id, "name": tenant.name, "plan": tenant.plan, "objects": list }),
        );
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
