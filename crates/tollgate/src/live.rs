//! The subcommands that read or change the live kernel: `apply`, `plan`,
//! `status`, `down`, `tenant move` and `hook vif`.
//!
//! Each one follows the same loop: observe what tollgate owns, compile the
//! policy against what was observed (so that every owner keeps its
//! classes), diff, and apply the difference.

use crate::commands::{compile, valid};
use crate::files;
use compiler::{Compiled, HostFacts, Live};
use linux_dataplane::{ApplyOptions, ApplyReport, Dataplane, Observed};
use plan::{diff, ChangeSet, ObjectId, Plan};
use policy::Policy;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::path::Path;
use std::time::{Duration, Instant};

fn dp_err(e: linux_dataplane::DataplaneError) -> String {
    e.to_string()
}

/// The state of one reconcile round.
pub struct Round {
    pub policy: Policy,
    pub compiled: Compiled,
    pub observed: Observed,
    pub observed_plan: Plan,
    pub changes: ChangeSet,
}

/// Observes, compiles against what was observed, and diffs.
pub fn prepare(dp: &mut Dataplane, path: &Path, exclude: Option<&str>) -> Result<Round, String> {
    let (loaded, policy) = valid(path)?;
    let observed = dp.observe(&Plan::default()).map_err(dp_err)?;
    let mut interfaces: BTreeSet<net_types::IfName> = observed.ifindex.keys().copied().collect();
    if let Some(gone) = exclude {
        interfaces.retain(|i| i.as_str() != gone);
    }
    let facts = HostFacts {
        interfaces: Some(interfaces),
        live: Live::from_plan(&observed.plan),
        route_realms: route_realms(&policy),
    };
    let compiled = compile(&loaded, &policy, &facts)?;
    let observed_plan = observed.plan_for(&compiled.plan);
    let changes = diff(&compiled.plan, &observed_plan);
    Ok(Round {
        policy,
        compiled,
        observed,
        observed_plan,
        changes,
    })
}

/// The routes' realms for a process that compiles again and again (the
/// daemon), read again only when the saved table changes: a full table
/// takes a second or more to decode and classify, too much for every
/// reconcile round. Realms depend on the policy's rules too, so the owner
/// starts a new cache when it loads another policy.
#[derive(Default)]
pub struct RouteRealms {
    /// The saved table's modification time and length when last read.
    seen: Option<(std::time::SystemTime, u64)>,
    realms: Vec<(net_types::Prefix, net_types::RealmId)>,
    /// How many times the table was read, so that users of the realms can
    /// tell whether they changed.
    reads: u64,
}

impl RouteRealms {
    /// The realms, reading the table only if it changed since last time.
    pub fn current(&mut self, policy: &Policy) -> &[(net_types::Prefix, net_types::RealmId)] {
        let now = std::fs::metadata(crate::routes::saved_table_path())
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if now.is_none() || now != self.seen {
            self.realms = route_realms(policy);
            self.seen = now;
            self.reads += 1;
        }
        &self.realms
    }

    /// How many times [`RouteRealms::current`] read the table.
    pub fn reads(&self) -> u64 {
        self.reads
    }

    /// The realms if the table was read again since `*seen` reads (which
    /// is brought up to date), for users that rebuild something from them.
    pub fn changed_since(
        &mut self,
        policy: &Policy,
        seen: &mut u64,
    ) -> Option<&[(net_types::Prefix, net_types::RealmId)]> {
        self.current(policy);
        if self.reads == *seen {
            return None;
        }
        *seen = self.reads;
        Some(&self.realms)
    }
}

/// The routes' realms for the compiler (see `routes::saved_realms`). A
/// table that cannot be read is logged and treated as absent.
pub fn route_realms(policy: &Policy) -> Vec<(net_types::Prefix, net_types::RealmId)> {
    match crate::routes::saved_realms(policy) {
        Ok(realms) => realms,
        Err(e) => {
            tracing::error!("{e}");
            Vec::new()
        }
    }
}

fn summary(r: &ApplyReport) -> String {
    let mut s = format!(
        "applied {} changes in {:.1} ms",
        r.applied,
        r.elapsed.as_secs_f64() * 1e3
    );
    if !r.drained.is_zero() {
        let _ = write!(
            s,
            " ({:.1} ms waiting for queues to drain)",
            r.drained.as_secs_f64() * 1e3
        );
    }
    for f in &r.failed {
        let _ = write!(s, "\n  failed: {}: {}", f.object, f.message);
    }
    if !r.failed.is_empty() {
        s.push_str("\n  hint: the next `tollgate apply` (or reconcile round) retries what failed");
    }
    s
}

/// `tollgate apply`: one round, or a reconcile loop with `every`.
pub fn apply(path: &Path, every: Option<Duration>, json: bool) -> Result<bool, String> {
    let mut dp = Dataplane::open().map_err(dp_err)?;
    // A testing aid, documented in docs/dataplane.md: make the kernel
    // "refuse" the Nth change of the next round, to prove that the round
    // after it converges.
    let mut inject: Option<usize> = std::env::var("TOLLGATE_FAIL_CHANGE")
        .ok()
        .and_then(|v| v.parse().ok());
    loop {
        let started = Instant::now();
        let round = prepare(&mut dp, path, None)?;
        let opts = ApplyOptions {
            inject_failure_at: inject.take(),
            ..ApplyOptions::default()
        };
        let report = dp.apply(&round.changes, &opts).map_err(dp_err)?;
        if json {
            let failed: Vec<_> = report
                .failed
                .iter()
                .map(|f| serde_json::json!({"object": f.object, "error": f.message}))
                .collect();
            sayln!(
                "{}",
                serde_json::json!({
                    "changes": round.changes.len(),
                    "applied": report.applied,
                    "failed": failed,
                    "apply_ms": report.elapsed.as_secs_f64() * 1e3,
                    "round_ms": started.elapsed().as_secs_f64() * 1e3,
                })
            );
        } else if !round.changes.is_empty() || every.is_none() {
            sayln!(
                "{} (round {:.1} ms)",
                summary(&report),
                started.elapsed().as_secs_f64() * 1e3
            );
        }
        match every {
            None => return Ok(report.failed.is_empty()),
            Some(d) => std::thread::sleep(d),
        }
    }
}

/// `tollgate plan` against the live kernel.
pub fn plan(path: &Path, format: crate::cli::Format) -> Result<String, String> {
    let mut dp = Dataplane::open().map_err(dp_err)?;
    let round = prepare(&mut dp, path, None)?;
    Ok(match format {
        crate::cli::Format::Tc => plan::render::changes_tc(&round.changes),
        crate::cli::Format::Nft => plan::render::changes_nft(&round.changes),
        crate::cli::Format::Json => {
            serde_json::to_string_pretty(&round.changes).map_err(|e| e.to_string())? + "\n"
        }
        crate::cli::Format::Text => plan::render::changes_text(&round.changes),
    })
}

/// `tollgate down`: removes everything tollgate created, and nothing else.
pub fn down() -> Result<String, String> {
    let mut dp = Dataplane::open().map_err(dp_err)?;
    let observed = dp.observe(&Plan::default()).map_err(dp_err)?;
    let mut changes = diff(&Plan::default(), &observed.plan);
    // The nftables table goes in one transaction below.
    changes.changes.retain(|c| {
        !matches!(
            c,
            plan::Change::DelChain { .. }
                | plan::Change::DelMap { .. }
                | plan::Change::DelElement { .. }
        )
    });
    let report = dp
        .apply(&changes, &ApplyOptions::default())
        .map_err(dp_err)?;
    let had_table = !observed.plan.chains.is_empty() || !observed.plan.maps.is_empty();
    if had_table {
        dp.nft
            .run_script(&format!("delete table netdev {}\n", plan::NFT_TABLE))
            .map_err(dp_err)?;
    }
    Ok(format!(
        "removed {} tc objects{}; {}",
        changes.len(),
        if had_table {
            " and the nftables table netdev tollgate"
        } else {
            ""
        },
        summary(&report)
    ))
}

/// Rates per class from two counter samples `gap` apart.
pub fn status(path: &Path, gap: Duration, json: bool) -> Result<String, String> {
    let mut dp = Dataplane::open().map_err(dp_err)?;
    let round = prepare(&mut dp, path, None)?;
    std::thread::sleep(gap);
    let later = dp.observe(&round.compiled.plan).map_err(dp_err)?;
    let secs = gap.as_secs_f64().max(1e-3);
    let rate = |key: &plan::ClassKey| -> f64 {
        let a = round.observed.stats.get(key).map_or(0, |s| s.bytes);
        let b = later.stats.get(key).map_or(0, |s| s.bytes);
        b.saturating_sub(a) as f64 * 8.0 / secs
    };
    let mut rows = Vec::new();
    for t in &round.policy.tenants {
        for (id, s) in round.compiled.provenance.of_tenant(t.id) {
            let ObjectId::Class(key) = id else { continue };
            if !matches!(
                s.role,
                compiler::Role::TenantClass
                    | compiler::Role::RealmClass
                    | compiler::Role::CappedRealmClass
            ) {
                continue;
            }
            let Some(class) = round.compiled.plan.classes.get(key) else {
                continue;
            };
            rows.push(serde_json::json!({
                "tenant": t.id.0,
                "name": t.name,
                "plan": t.plan,
                "direction": s.direction.map(|d| d.as_str()),
                "realm": s.realm_name(&round.policy),
                "class": key.id.to_string(),
                "device": key.dev.as_str(),
                "rate": class.rate.to_string(),
                "ceil": class.ceil.to_string(),
                "present": round.observed_plan.classes.contains_key(key),
                "bits_per_second": rate(key),
                "bytes": later.stats.get(key).map_or(0, |s| s.bytes),
            }));
        }
    }
    if json {
        let out = serde_json::json!({
            "pending_changes": round.changes.len(),
            "classes": rows,
        });
        return Ok(serde_json::to_string_pretty(&out).map_err(|e| e.to_string())? + "\n");
    }
    let mut out = format!(
        "{} tenants; the kernel {}\n{:<6} {:<12} {:<5} {:<14} {:>10} {:>10} {:>12}\n",
        round.policy.tenants.len(),
        if round.changes.is_empty() {
            "matches the policy".to_string()
        } else {
            format!(
                "differs from the policy by {} changes (run `tollgate apply`)",
                round.changes.len()
            )
        },
        "id",
        "name",
        "dir",
        "realm",
        "rate",
        "ceil",
        "now"
    );
    for r in &rows {
        let _ = writeln!(
            out,
            "{:<6} {:<12} {:<5} {:<14} {:>10} {:>10} {:>12}{}",
            // A JSON value's Display ignores width, so pad a plain number.
            r["tenant"].as_u64().unwrap_or(0),
            r["name"].as_str().unwrap_or(""),
            r["direction"].as_str().unwrap_or(""),
            r["realm"].as_str().unwrap_or("(all)"),
            r["rate"].as_str().unwrap_or(""),
            r["ceil"].as_str().unwrap_or(""),
            human_rate(r["bits_per_second"].as_f64().unwrap_or(0.0)),
            if r["present"].as_bool() == Some(true) {
                ""
            } else {
                "  (missing)"
            }
        );
    }
    Ok(out)
}

/// A rate in tc-style units, rounded for reading.
pub fn human_rate(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2}Gbit", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.2}Mbit", bps / 1e6)
    } else if bps >= 1e3 {
        format!("{:.1}kbit", bps / 1e3)
    } else {
        format!("{bps:.0}bit")
    }
}

/// `tollgate tenant move`: edits the policy file and applies the change.
pub fn tenant_move(
    path: &Path,
    who: &str,
    plan_name: &str,
    parent: Option<&str>,
) -> Result<String, String> {
    use policy::edit::ParentChange;
    let text = files::read_text(path)?;
    // A shared plan's pool has its own place in the tree, so a tenant
    // moving into one leaves its parent; asking for both is a mistake.
    let current = files::load_policy_text(path, &text);
    let shared = current
        .policy
        .as_ref()
        .and_then(|p| p.plans.iter().find(|pl| pl.name == plan_name))
        .is_some_and(|pl| pl.is_shared());
    let change = match (parent, shared) {
        (Some(p), true) => {
            return Err(format!("plan `{plan_name}` is shared: its members sit in its pool, not under `{p}`\n  hint: drop --parent, or give the pool a parent in [plans.{plan_name}]"))
        }
        (Some(p), false) => ParentChange::Set(p),
        (None, true) => ParentChange::Remove,
        (None, false) => ParentChange::Keep,
    };
    let edited =
        policy::edit::set_tenant_plan(&text, who, plan_name, change).map_err(|e| e.to_string())?;
    let loaded = files::load_policy_text(path, &edited);
    if loaded.has_errors() {
        return Err(format!(
            "the move would make the policy invalid; the file was not changed\n{}",
            loaded.render()
        ));
    }
    files::write_atomically(path, &edited)?;
    let mut dp = Dataplane::open().map_err(dp_err)?;
    let round = prepare(&mut dp, path, None)?;
    let report = dp
        .apply(&round.changes, &ApplyOptions::default())
        .map_err(dp_err)?;
    Ok(format!(
        "moved `{who}` to plan `{plan_name}` in {}; {}",
        path.display(),
        summary(&report)
    ))
}

/// `tollgate hook vif online|offline IFNAME`: applies or removes the
/// shaping of the tenant on one interface, and nothing else.
pub fn hook_vif(path: &Path, online: bool, ifname: &str) -> Result<String, String> {
    let mut dp = Dataplane::open().map_err(dp_err)?;
    let round = prepare(&mut dp, path, (!online).then_some(ifname))?;
    let tenant = round
        .policy
        .tenants
        .iter()
        .find(|t| t.interface.is_some_and(|i| i.as_str() == ifname))
        .ok_or_else(|| {
            format!("no tenant has `interface = \"{ifname}\"` in the policy\n  hint: add it to the tenant, or check the name with `ip link`")
        })?;
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
    let report = dp
        .apply(&changes, &ApplyOptions::default())
        .map_err(dp_err)?;
    Ok(format!(
        "tenant {} `{}` {} on {ifname}: {}",
        tenant.id,
        tenant.name,
        if online { "shaped" } else { "unhooked" },
        summary(&report)
    ))
}
