//! Which tenants the lab has, their addresses, and the policy text for them.
//!
//! Up to the example's own tenant count, the lab uses the example's tenants
//! and copies their entries verbatim. Beyond it, it generates tenants that
//! cycle through the example's plans. The rest of the example (`[site]`,
//! `[realms]`, `[bands]`, `[plans]`, parents) is kept as written.

use super::realms::{self, nth_host};
use super::{Lab, LabError, LabMode, LabSpec, LabTenant, MAX_TENANTS, NETNS_PREFIX, STATE_DIR};
use net_types::Prefix;
use policy::Policy;
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;

/// The example split around its tenant entries.
struct Sections {
    /// Everything before the first `[[tenants]]`.
    head: String,
    /// Each tenant entry's text (with its subtables), in file order.
    blocks: Vec<String>,
    /// Tables that follow the tenants but are not theirs.
    tail: String,
}

fn split(text: &str) -> Sections {
    let mut s = Sections {
        head: String::new(),
        blocks: Vec::new(),
        tail: String::new(),
    };
    // Whether the current line belongs to a tenant entry; other lines go to
    // the head before the first entry and to the tail after it.
    let mut in_tenant = false;
    for line in text.lines() {
        let t = line.trim_start();
        if t.starts_with("[[tenants]]") {
            s.blocks.push(String::new());
            in_tenant = true;
        } else if t.starts_with('[') && !t.starts_with("[tenants.") && !t.starts_with("[[tenants.")
        {
            in_tenant = false;
        }
        let out = match (in_tenant, s.blocks.last_mut()) {
            (true, Some(b)) => b,
            (_, None) => &mut s.head,
            (false, Some(_)) => &mut s.tail,
        };
        out.push_str(line);
        out.push('\n');
    }
    s
}

/// The `id = N` of a tenant entry.
fn block_id(block: &str) -> Option<u32> {
    block.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once('=')?;
        let v = v.split('#').next()?.trim();
        (k.trim() == "id").then(|| v.parse().ok()).flatten()
    })
}

/// Address ranges for tenant `k` that has none of its own in a family.
fn fallback(mode: LabMode, k: u16) -> (Prefix, Prefix) {
    let k32 = u32::from(k);
    match mode {
        LabMode::Router => (
            Prefix::V4(Ipv4Addr::from(0x6440_0000 + (k32 << 8)), 24),
            Prefix::V6(Ipv6Addr::new(0x2001, 0xdb8, k, 0, 0, 0, 0, 0), 48),
        ),
        LabMode::Hypervisor => (
            Prefix::V4(Ipv4Addr::new(192, 0, 2, 9 + k as u8), 32),
            Prefix::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x10, k, 0, 0, 0, 0), 64),
        ),
    }
}

/// Where a tenant sits: its addresses, prefix lengths and gateways, from the
/// prefixes it uses in the lab.
fn place(mode: LabMode, name: &str, p4: Prefix, p6: Prefix) -> Result<Addresses, LabError> {
    let v4 = |ip| match ip {
        IpAddr::V4(a) => a,
        IpAddr::V6(_) => Ipv4Addr::UNSPECIFIED,
    };
    let v6 = |ip| match ip {
        IpAddr::V6(a) => a,
        IpAddr::V4(_) => Ipv6Addr::UNSPECIFIED,
    };
    match mode {
        // A router's customer needs a gateway inside its own block.
        LabMode::Router if p4.len() > 30 || p6.len() > 126 => Err(LabError::Spec(format!(
            "tenant `{name}`'s prefixes {p4} and {p6} leave no room for a gateway and a host; the router lab needs /30 (IPv4) and /126 (IPv6) or shorter"
        ))),
        LabMode::Router => Ok(Addresses {
            v4: v4(nth_host(p4, 2)),
            v4_len: p4.len(),
            gateway4: v4(nth_host(p4, 1)),
            v6: v6(nth_host(p6, 2)),
            v6_len: p6.len().max(64),
            gateway6: v6(nth_host(p6, 1)),
        }),
        // A VM is routed: its gateways are link-local-style addresses of the
        // host, reached on-link, as Xen's vif-route and routed libvirt do.
        LabMode::Hypervisor => Ok(Addresses {
            v4: v4(nth_host(p4, 1)),
            v4_len: 32,
            gateway4: Ipv4Addr::new(169, 254, 0, 1),
            v6: v6(nth_host(p6, 1)),
            v6_len: p6.len(),
            gateway6: Ipv6Addr::new(0xfe80, 0, 0, 0, 0, 0, 0, 1),
        }),
    }
}

struct Addresses {
    v4: Ipv4Addr,
    v4_len: u8,
    gateway4: Ipv4Addr,
    v6: Ipv6Addr,
    v6_len: u8,
    gateway6: Ipv6Addr,
}

/// Plans in the order the example's tenants first use them, then the rest.
fn plan_cycle(p: &Policy, order: &[&policy::Tenant]) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for t in order {
        if !out.iter().any(|(n, _)| *n == t.plan) {
            out.push((t.plan.clone(), t.parent.clone()));
        }
    }
    for plan in &p.plans {
        if !out.iter().any(|(n, _)| *n == plan.name) {
            out.push((plan.name.clone(), None));
        }
    }
    out
}

/// Reads the example for `spec.mode` and decides the lab's tenants and policy.
pub(super) fn plan_lab(spec: &LabSpec, examples_dir: &Path) -> Result<Lab, LabError> {
    if spec.tenants == 0 || spec.tenants > MAX_TENANTS {
        return Err(LabError::Spec(format!(
            "{} tenants asked for; the lab holds 1 to {MAX_TENANTS}",
            spec.tenants
        )));
    }
    let path = examples_dir.join(spec.mode.example_file());
    let text = std::fs::read_to_string(&path).map_err(|e| LabError::Io {
        path: path.clone(),
        error: format!("{e} (pass the repository's examples/ folder)"),
    })?;
    let example = realms::load(&path, &text, examples_dir)?;
    let want = match spec.mode {
        LabMode::Router => policy::Mode::Router,
        LabMode::Hypervisor => policy::Mode::Hypervisor,
    };
    if example.site.mode != want {
        return Err(LabError::Spec(format!(
            "{} is not a {} policy",
            path.display(),
            spec.mode.as_str()
        )));
    }
    let sections = split(&text);
    // The example's tenants in file order, each with its entry's text.
    let mut ordered = Vec::new();
    for block in &sections.blocks {
        let t = block_id(block)
            .and_then(|id| example.tenant(net_types::TenantId(id)))
            .ok_or_else(|| {
                LabError::Spec(format!(
                    "cannot tell which tenant this entry of {} is:\n{block}",
                    path.display()
                ))
            })?;
        ordered.push((t, block.as_str()));
    }
    let emitted = emit(spec, &path, &example, &sections, &ordered)?;
    let policy_path = Path::new(STATE_DIR).join("policy.toml");
    // The emitted policy is checked before anything is built, with prefix
    // lists still read from the examples folder (up() copies them later).
    let lab_policy = realms::load(&policy_path, &emitted.text, examples_dir)?;
    Ok(Lab {
        mode: spec.mode,
        host_netns: format!("{NETNS_PREFIX}host"),
        upstream_netns: format!("{NETNS_PREFIX}up"),
        uplink: example.site.uplink.to_string(),
        lan: example.site.lan.map(|l| l.to_string()),
        tenants: emitted.tenants,
        endpoints: realms::endpoints(&lab_policy),
        policy_toml: emitted.text,
        policy_path,
    })
}

struct Emitted {
    text: String,
    tenants: Vec<LabTenant>,
}

/// A tenant of the lab before it is placed: from the example or generated.
struct Member {
    id: u32,
    name: String,
    plan: String,
    parent: Option<String>,
    vif: Option<String>,
    /// The IPv4 and IPv6 ranges it uses in the lab.
    p4: Prefix,
    p6: Prefix,
}

/// An example tenant; a family it has no prefix in gets the fallback range.
fn from_example(t: &policy::Tenant, fallback: (Prefix, Prefix)) -> Member {
    let first = |v4: bool| {
        t.prefixes
            .iter()
            .map(|(p, _)| *p)
            .find(|p| p.is_ipv4() == v4)
    };
    Member {
        id: t.id.0,
        name: t.name.clone(),
        plan: t.plan.clone(),
        parent: t.parent.clone(),
        vif: t.interface.map(|i| i.to_string()),
        p4: first(true).unwrap_or(fallback.0),
        p6: first(false).unwrap_or(fallback.1),
    }
}

/// The lab's tenants and the policy text that describes them.
fn emit(
    spec: &LabSpec,
    path: &Path,
    example: &Policy,
    sections: &Sections,
    ordered: &[(&policy::Tenant, &str)],
) -> Result<Emitted, LabError> {
    let mode = spec.mode;
    let mut text = format!(
        "# Written by `tollgate lab up --mode {} --tenants {}` from {}.\n",
        mode.as_str(),
        spec.tenants,
        path.display()
    );
    text.push_str(&sections.head);
    let tenants_only: Vec<&policy::Tenant> = ordered.iter().map(|(t, _)| *t).collect();
    let cycle = plan_cycle(example, &tenants_only);
    let max_id = example.tenants.iter().map(|t| t.id.0).max().unwrap_or(0);
    let mut tenants = Vec::new();
    let mut used: Vec<(Prefix, String)> = Vec::new();
    for k in 1..=spec.tenants {
        let i = usize::from(k) - 1;
        let m = match ordered.get(i) {
            Some((t, block)) => {
                text.push_str(block);
                from_example(t, fallback(mode, k))
            }
            None => {
                let nth = i - ordered.len();
                let Some((plan, parent)) = cycle.get(nth % cycle.len().max(1)).cloned() else {
                    return Err(LabError::Spec(format!(
                        "{} has no plans to give further tenants",
                        path.display()
                    )));
                };
                let (p4, p6) = fallback(mode, k);
                let m = Member {
                    id: max_id + 1 + nth as u32,
                    name: format!("lab-{k}"),
                    plan,
                    parent,
                    vif: (mode == LabMode::Hypervisor).then(|| format!("vif{k}.0")),
                    p4,
                    p6,
                };
                text.push_str(&generated_block(&m));
                m
            }
        };
        if mode == LabMode::Hypervisor && m.vif.is_none() {
            return Err(LabError::Spec(format!(
                "tenant `{}` has no `interface`; a hypervisor lab needs one per tenant",
                m.name
            )));
        }
        for p in [m.p4, m.p6] {
            if let Some((_, other)) = used.iter().find(|(q, _)| q.overlaps(p)) {
                return Err(LabError::Spec(format!(
                    "tenant `{}`'s lab range {p} overlaps tenant `{other}`'s; give the example's tenants distinct prefixes",
                    m.name
                )));
            }
            used.push((p, m.name.clone()));
        }
        let a = place(mode, &m.name, m.p4, m.p6)?;
        tenants.push(LabTenant {
            id: m.id,
            name: m.name,
            netns: format!("{NETNS_PREFIX}t{k}"),
            v4: a.v4,
            v4_len: a.v4_len,
            gateway4: a.gateway4,
            v6: a.v6,
            v6_len: a.v6_len,
            gateway6: a.gateway6,
            plan: m.plan,
            vif: m.vif,
        });
    }
    text.push_str(&sections.tail);
    Ok(Emitted { text, tenants })
}

/// A generated tenant's entry.
fn generated_block(m: &Member) -> String {
    let mut b = format!(
        "\n[[tenants]]\nid = {}\nname = \"{}\"\nplan = \"{}\"\n",
        m.id, m.name, m.plan
    );
    if let Some(p) = &m.parent {
        let _ = writeln!(b, "parent = \"{p}\"");
    }
    if let Some(v) = &m.vif {
        let _ = writeln!(b, "interface = \"{v}\"");
    }
    let _ = writeln!(b, "prefixes = [\"{}\", \"{}\"]", m.p4, m.p6);
    b
}
