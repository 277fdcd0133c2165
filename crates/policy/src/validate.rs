//! Checks that relate items to each other: references, uniqueness,
//! overlaps, and the hierarchy's rates.

use crate::diagnostic::Diagnostic;
use crate::model::*;
use crate::reader::closest;
use crate::source::Span;
use std::collections::{BTreeMap, HashMap};

fn err(diags: &mut Vec<Diagnostic>, span: Span, message: String, hint: String) {
    diags.push(Diagnostic::error(Some(span), message).with_hint(hint));
}

pub(crate) fn unknown(what: &str, name: &str, known: &[&str]) -> (String, String) {
    let hint = match closest(name, known) {
        Some(s) => format!("did you mean `{s}`?"),
        None if known.is_empty() => format!("no {what}s are declared yet"),
        None => format!("declared {what}s: {}", known.join(", ")),
    };
    (format!("unknown {what} `{name}`"), hint)
}

/// Runs every cross-item check on a fully parsed policy.
pub(crate) fn policy(
    p: &Policy,
    site_ok: bool,
    plan_names: &[String],
    parent_names: &[String],
    realm_names: &[String],
    diags: &mut Vec<Diagnostic>,
) {
    if site_ok {
        site(p, diags);
    }
    ids(p, diags);
    references(p, site_ok, plan_names, parent_names, diags);
    tenant_addresses(p, diags);
    realm_prefixes(p, diags);
    hierarchy(p, diags);
    crate::flows::check(p, diags);
    crate::guard::check(p, diags);
    crate::latency::check(p, diags);
    crate::bgp::check(p, diags);
    crate::billing::check(p, plan_names, realm_names, diags);
    crate::transit::check(p, site_ok, realm_names, diags);
}

fn site(p: &Policy, diags: &mut Vec<Diagnostic>) {
    let s = &p.site;
    match (s.mode, &s.lan) {
        (Mode::Router, None) => err(
            diags,
            s.span,
            "router mode needs `lan`, the interface toward the tenants".into(),
            "add lan = \"eth1\" to [site]".into(),
        ),
        (Mode::Hypervisor, Some(_)) => err(
            diags,
            s.span,
            "`lan` is only used in router mode".into(),
            "remove `lan`: in hypervisor mode each tenant names its own interface".into(),
        ),
        _ => {}
    }
    // In hypervisor mode download is shaped per VM interface and the VMs'
    // upload (with the eBPF classifier) where it enters, on each vif's
    // ingress: both reach one tree per direction only through the IFB.
    // The tree on a vif's root qdisc would be one tree per VM, which HTB
    // cannot lend across, so the option is for router mode.
    if s.mode == Mode::Hypervisor && s.shape_on == crate::model::ShapeOn::Interface {
        err(
            diags,
            s.shape_on_span.unwrap_or(s.span),
            "shape_on = \"interface\" is for router mode: in hypervisor mode download leaves through every VM's own interface, and one HTB tree per direction can only be reached through an IFB".into(),
            "remove shape_on (the default \"ifb\" shapes hypervisors)".into(),
        );
    }
    for (what, name) in
        std::iter::once(("uplink", &s.uplink)).chain(s.lan.as_ref().map(|l| ("lan", l)))
    {
        if name.as_str().starts_with(RESERVED_PREFIX) {
            let span = if what == "uplink" {
                s.uplink_span
            } else {
                s.span
            };
            err(
                diags,
                span,
                format!("{what} `{name}` is in tollgate's reserved `{RESERVED_PREFIX}` namespace"),
                format!("tollgate owns every `{RESERVED_PREFIX}…` IFB device (its shaping devices tg-down and tg-up) and deletes them on `tollgate down`; name the physical interface"),
            );
        }
    }
    if s.lan.as_ref() == Some(&s.uplink) {
        err(
            diags,
            s.span,
            format!("uplink and lan are the same interface `{}`", s.uplink),
            "shaping both directions needs two interfaces".into(),
        );
    }
    for dir in Direction::BOTH {
        let (d, c) = (*s.default_rate.get(dir), *s.capacity.get(dir));
        if d > c {
            err(
                diags,
                s.span,
                format!("default_rate.{} ({d}) exceeds capacity ({c})", dir.as_str()),
                "lower default_rate".into(),
            );
        }
    }
}

fn ids(p: &Policy, diags: &mut Vec<Diagnostic>) {
    let mut tenants: HashMap<u32, Span> = HashMap::new();
    let mut names: HashMap<&str, Span> = HashMap::new();
    let mut ifaces: HashMap<&str, Span> = HashMap::new();
    for t in &p.tenants {
        tenant_name(t, diags);
        let dup_id = tenants.insert(t.id.0, t.span).is_some();
        if dup_id {
            err(
                diags,
                t.id_span,
                format!("duplicate tenant id {}", t.id),
                "tenant ids must be unique: they name the tenant in bills and in the kernel's registry".into(),
            );
        }
        // A duplicate id already makes the default names clash; say it once.
        if names.insert(&t.name, t.span).is_some() && !dup_id {
            err(
                diags,
                t.span,
                format!("duplicate tenant name `{}`", t.name),
                "give each tenant its own name".into(),
            );
        }
        if let Some(i) = &t.interface {
            if ifaces.insert(i.as_str(), t.span).is_some() {
                err(
                    diags,
                    t.span,
                    format!("interface `{i}` is given to two tenants"),
                    "each tenant needs its own interface in hypervisor mode".into(),
                );
            }
            if *i == p.site.uplink || Some(i) == p.site.lan.as_ref() {
                err(
                    diags,
                    t.span,
                    format!("tenant {} uses the site's own interface `{i}`", t.id),
                    "name the tenant's vif or tap, not the uplink".into(),
                );
            }
            if i.as_str().starts_with(RESERVED_PREFIX) {
                err(
                    diags,
                    t.span,
                    format!("interface `{i}` is in tollgate's reserved `{RESERVED_PREFIX}` namespace"),
                    format!("tollgate names its own IFB devices {RESERVED_PREFIX}…; rename the interface"),
                );
            }
        }
    }
    let mut nodes: HashMap<u16, &str> = HashMap::new();
    let mut parent_names: HashMap<&str, Span> = HashMap::new();
    for par in &p.parents {
        if let Some(other) = nodes.insert(par.id, &par.name) {
            err(
                diags,
                par.span,
                format!(
                    "duplicate id {} (parent `{}` and `{other}`)",
                    par.id, par.name
                ),
                "parents and shared plans share one id space; pick an unused id".into(),
            );
        }
        if parent_names.insert(&par.name, par.span).is_some() {
            err(
                diags,
                par.span,
                format!("duplicate parent name `{}`", par.name),
                "give each parent its own name".into(),
            );
        }
    }
    for plan in &p.plans {
        if let Some(id) = plan.pool_id {
            if let Some(other) = nodes.insert(id, &plan.name) {
                err(
                    diags,
                    plan.span,
                    format!(
                        "duplicate id {id} (shared plan `{}` and `{other}`)",
                        plan.name
                    ),
                    "parents and shared plans share one id space; pick an unused id".into(),
                );
            }
        }
    }
}

/// A tenant's name is how people and commands find it (`tollgate tenant
/// move NAME`, `usage NAME`, logs): it must not be mistaken for an id or
/// one of tollgate's own names, and must print as one line.
fn tenant_name(t: &Tenant, diags: &mut Vec<Diagnostic>) {
    let name = t.name.as_str();
    let problem = if name.trim().is_empty() {
        Some((
            "is empty".to_string(),
            "give the tenant a name, or leave `name` out for tenant-ID".to_string(),
        ))
    } else if let Some(c) = name.chars().find(|c| c.is_control()) {
        Some((
            format!("has the control character {c:?}"),
            "names are printed in status, logs and bills; use printable characters".to_string(),
        ))
    } else if name.bytes().all(|b| b.is_ascii_digit()) && name.parse::<u32>().ok() != Some(t.id.0) {
        Some(("is a number, which commands read as a tenant id".to_string(), format!("`tollgate tenant move {name}` would find tenant {name}, not this one; put a letter in the name, e.g. \"c{name}\"")))
    } else if name.starts_with(RESERVED_PREFIX) {
        Some((format!("is in tollgate's reserved `{RESERVED_PREFIX}` namespace"), format!("names starting with {RESERVED_PREFIX} are tollgate's own (its devices tg-down and tg-up); pick another name")))
    } else {
        None
    };
    if let Some((what, hint)) = problem {
        err(
            diags,
            t.span,
            format!("tenant {}'s name `{}` {what}", t.id, name.escape_debug()),
            hint,
        );
    }
}

fn references(
    p: &Policy,
    site_ok: bool,
    plan_names: &[String],
    parent_names: &[String],
    diags: &mut Vec<Diagnostic>,
) {
    let plans: Vec<&str> = plan_names.iter().map(String::as_str).collect();
    let parents: Vec<&str> = parent_names.iter().map(String::as_str).collect();
    for t in &p.tenants {
        match p.plan(&t.plan) {
            None if !plans.contains(&t.plan.as_str()) => {
                let (m, h) = unknown("plan", &t.plan, &plans);
                err(diags, t.plan_span, m, h);
            }
            Some(plan) if plan.is_shared() && t.parent.is_some() => {
                err(diags, t.span, format!("tenant {} is on shared plan `{}` and also names a parent", t.id, plan.name), "a tenant on a shared plan sits in its pool; remove `parent` (set the pool's parent on the plan)".into());
            }
            _ => {}
        }
        if let Some(par) = &t.parent {
            if !parents.contains(&par.as_str()) {
                let (m, h) = unknown("parent", par, &parents);
                err(diags, t.span, m, h);
            }
        }
        let by_flows = t.measured_by == Measure::Flows;
        match p.site.mode {
            _ if !site_ok => {}
            _ if by_flows && t.prefixes.is_empty() => err(diags, t.span, format!("tenant {} is measured by flows but has no prefixes", t.id), "flows are attributed to tenants by address: add prefixes = [\"…\"]".into()),
            _ if by_flows && t.interface.is_some() => err(diags, t.span, format!("tenant {} is measured by flows but names an interface", t.id), "this box does not shape a tenant measured by flows; remove `interface` (or set measured_by = \"kernel\")".into()),
            _ if by_flows => {}
            Mode::Hypervisor if t.prefixes.is_empty() => err(diags, t.span, format!("tenant {} has no prefixes", t.id), "upload is classified by source address where it leaves the host: add prefixes = [\"…\"]".into()),
            Mode::Hypervisor if t.interface.is_none() => err(
                diags,
                t.span,
                format!("tenant {} has no interface", t.id),
                "in hypervisor mode each tenant needs interface = \"vif…\"".into(),
            ),
            Mode::Router if t.prefixes.is_empty() => err(
                diags,
                t.span,
                format!("tenant {} has no prefixes", t.id),
                "in router mode tenants are address blocks: add prefixes = [\"…\"]".into(),
            ),
            Mode::Router if t.interface.is_some() => err(
                diags,
                t.span,
                format!("tenant {} names an interface in router mode", t.id),
                "remove `interface`; in router mode tenants are matched by address".into(),
            ),
            _ => {}
        }
    }
    for par in &p.parents {
        if let Some(up) = &par.parent {
            if !parents.contains(&up.as_str()) {
                let (m, h) = unknown("parent", up, &parents);
                err(diags, par.span, m, h);
            }
        }
    }
    for plan in &p.plans {
        if let Some(up) = &plan.parent {
            if !parents.contains(&up.as_str()) {
                let (m, h) = unknown("parent", up, &parents);
                err(diags, plan.span, m, h);
            }
        }
    }
    // Cycles: follow each parent chain; a chain longer than the number of parents loops.
    for par in &p.parents {
        let mut cur = par.parent.as_deref();
        let mut steps = 0;
        while let Some(name) = cur {
            if name == par.name || steps > p.parents.len() {
                err(
                    diags,
                    par.span,
                    format!("parent `{}` is its own ancestor", par.name),
                    "break the loop: some parent must sit under the site's root".into(),
                );
                break;
            }
            cur = p.parent(name).and_then(|x| x.parent.as_deref());
            steps += 1;
        }
    }
}

fn tenant_addresses(p: &Policy, diags: &mut Vec<Diagnostic>) {
    // Sort every tenant prefix by its first address; a prefix overlaps an
    // earlier one exactly when it starts before the furthest end seen so far.
    let mut all: Vec<(u8, u128, u128, &Tenant, Span, net_types::Prefix)> = Vec::new();
    for t in &p.tenants {
        for (pfx, span) in &t.prefixes {
            all.push((
                u8::from(!pfx.is_ipv4()),
                pfx.start_bits(),
                pfx.end_bits(),
                t,
                *span,
                *pfx,
            ));
        }
    }
    all.sort_by_key(|e| (e.0, e.1, std::cmp::Reverse(e.2)));
    let mut reach: Option<(u8, u128, &Tenant, net_types::Prefix)> = None;
    for (fam, start, end, t, span, pfx) in all {
        if let Some((rf, rend, rt, rp)) = reach {
            if rf == fam && start <= rend {
                let whose = if std::ptr::eq(rt, t) {
                    "its own".to_string()
                } else {
                    format!("tenant {}'s", rt.id)
                };
                err(diags, span, format!("tenant {}'s prefix {pfx} overlaps {whose} prefix {rp}", t.id), "every address must belong to exactly one tenant; split or remove one of the prefixes".into());
            }
        }
        if reach.is_none_or(|(rf, rend, _, _)| rf != fam || end > rend) {
            reach = Some((fam, end, t, pfx));
        }
    }
}

fn realm_prefixes(p: &Policy, diags: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<net_types::Prefix, &str> = BTreeMap::new();
    for r in &p.realms.list {
        for (pfx, span) in &r.prefixes {
            if let Some(other) = seen.insert(*pfx, &r.name) {
                if other != r.name {
                    err(
                        diags,
                        *span,
                        format!("prefix {pfx} is in realm `{}` and realm `{other}`", r.name),
                        "a prefix can belong to one realm only; remove one of them".into(),
                    );
                }
            }
        }
    }
}

fn hierarchy(p: &Policy, diags: &mut Vec<Diagnostic>) {
    let cap = p.site.capacity;
    let parent_shape = |name: Option<&str>, dir: Direction| -> (String, Shape) {
        match name.and_then(|n| p.parent(n)) {
            Some(par) => (format!("parent `{}`", par.name), *par.shape.get(dir)),
            None => {
                let c = *cap.get(dir);
                (
                    "the site's capacity".into(),
                    Shape {
                        rate: c,
                        ceil: c,
                        burst: None,
                        cburst: None,
                    },
                )
            }
        }
    };
    let check = |child: &str,
                 span: Span,
                 shape: Shape,
                 parent: Option<&str>,
                 dir: Direction,
                 diags: &mut Vec<Diagnostic>| {
        let (pname, pshape) = parent_shape(parent, dir);
        if shape.rate > pshape.rate {
            err(
                diags,
                span,
                format!(
                    "{child} {} rate {} exceeds {pname}'s rate {}",
                    dir.as_str(),
                    shape.rate,
                    pshape.rate
                ),
                format!(
                    "lower the rate to at most {}, or raise {pname}'s",
                    pshape.rate
                ),
            );
        } else if shape.ceil > pshape.ceil {
            err(
                diags,
                span,
                format!(
                    "{child} {} ceil {} exceeds {pname}'s ceil {}",
                    dir.as_str(),
                    shape.ceil,
                    pshape.ceil
                ),
                format!(
                    "lower the ceil to at most {}; it could never be reached",
                    pshape.ceil
                ),
            );
        }
    };
    for dir in Direction::BOTH {
        let mut children: BTreeMap<Option<&str>, u128> = BTreeMap::new();
        for par in &p.parents {
            let s = *par.shape.get(dir);
            check(
                &format!("parent `{}`", par.name),
                par.span,
                s,
                par.parent.as_deref(),
                dir,
                diags,
            );
            *children.entry(par.parent.as_deref()).or_default() += s.rate.bps() as u128;
        }
        for plan in p.plans.iter().filter(|pl| pl.is_shared()) {
            let s = *plan.shape.get(dir);
            check(
                &format!("shared plan `{}`", plan.name),
                plan.span,
                s,
                plan.parent.as_deref(),
                dir,
                diags,
            );
            *children.entry(plan.parent.as_deref()).or_default() += s.rate.bps() as u128;
        }
        for t in &p.tenants {
            let Some(plan) = p.plan(&t.plan) else {
                continue;
            };
            let Some(s) = p.tenant_shape(t, dir) else {
                continue;
            };
            if s.ceil < s.rate {
                err(
                    diags,
                    t.span,
                    format!(
                        "tenant {}'s {} ceil {} is below its rate {}",
                        t.id,
                        dir.as_str(),
                        s.ceil,
                        s.rate
                    ),
                    "an override changed one of them: raise ceil or lower rate".into(),
                );
                continue;
            }
            if plan.is_shared() {
                let pool = *plan.shape.get(dir);
                if s.ceil > pool.ceil {
                    err(
                        diags,
                        t.span,
                        format!(
                            "tenant {}'s {} ceil {} exceeds its pool `{}`'s ceil {}",
                            t.id,
                            dir.as_str(),
                            s.ceil,
                            plan.name,
                            pool.ceil
                        ),
                        "lower the override".into(),
                    );
                }
                continue;
            }
            check(
                &format!("tenant {}", t.id),
                t.span,
                s,
                t.parent.as_deref(),
                dir,
                diags,
            );
            *children.entry(t.parent.as_deref()).or_default() += s.rate.bps() as u128;
            for (realm, rdir, rc, span) in &plan.realm_caps {
                if *rdir == dir && rc.ceil > s.ceil {
                    let name = p.realms.by_id(*realm).map_or("?", |r| r.name.as_str());
                    err(
                        diags,
                        *span,
                        format!(
                            "plan `{}` caps realm `{name}` {} at {}, above tenant {}'s ceil {}",
                            plan.name,
                            dir.as_str(),
                            rc.ceil,
                            t.id,
                            s.ceil
                        ),
                        "a realm cap can only be lower than the tenant's own ceil".into(),
                    );
                }
            }
        }
        // Oversubscription is normal for an ISP, so it is a warning: it says
        // which guarantees cannot all hold at once.
        for (parent, sum) in children {
            let (pname, pshape) = parent_shape(parent, dir);
            if sum > pshape.rate.bps() as u128 {
                let span = parent
                    .and_then(|n| p.parent(n))
                    .map_or(p.site.span, |x| x.span);
                let whose = match parent {
                    Some(_) => format!("{pname}'s children"),
                    None => "the top-level parents and tenants".to_string(),
                };
                diags.push(
                    Diagnostic::warning(Some(span), format!("the {} rates of {whose} add up to {:.2}× {} rate {}", dir.as_str(), sum as f64 / pshape.rate.bps() as f64, if parent.is_some() { "its" } else { "the site's" }, pshape.rate))
                        .with_hint("children can still borrow up to their ceil, but their guaranteed rates cannot all hold at once"),
                );
            }
        }
    }
}
