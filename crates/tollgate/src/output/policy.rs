//! How a policy's plan and a tenant's objects are shown (`plan
//! --offline`, `explain`).

use super::Format;
use crate::error::Result;
use compiler::Compiled;
use policy::{Policy, Tenant};
use std::fmt::Write as _;

/// The whole plan in `format`, as the change set from an empty kernel,
/// printed as it is formatted (the JSON is never held whole).
pub fn print_plan(policy: &Policy, c: &Compiled, format: Format) -> Result<()> {
    match format {
        Format::Json => super::stream_stdout(|out| {
            super::stream_json(
                out,
                &PlanJson {
                    plan: &c.plan,
                    provenance: ProvenanceJson { policy, c },
                },
            )
        }),
        Format::Tc => super::write_stdout(&plan::render::plan_tc(&c.plan)),
        Format::Nft => super::write_stdout(&plan::render::plan_nft(&c.plan)),
        Format::Text => super::write_stdout(&plan_text(policy, c)),
    }
    Ok(())
}

/// `plan --offline --format json`: the plan and what each object serves.
#[derive(serde::Serialize)]
struct PlanJson<'a> {
    plan: &'a plan::Plan,
    provenance: ProvenanceJson<'a>,
}

/// Each object, whom it serves and why, serialised one at a time.
struct ProvenanceJson<'a> {
    policy: &'a Policy,
    c: &'a Compiled,
}

impl serde::Serialize for ProvenanceJson<'_> {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(serde::Serialize)]
        struct Entry<'a, T: serde::Serialize> {
            object: String,
            serves: &'a T,
            why: String,
        }
        ser.collect_seq(self.c.provenance.objects.iter().map(|(id, s)| Entry {
            object: id.to_string(),
            serves: s,
            why: s.describe(self.policy),
        }))
    }
}

/// The plan as text: its size, and the change set from an empty kernel.
fn plan_text(policy: &Policy, c: &Compiled) -> String {
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
