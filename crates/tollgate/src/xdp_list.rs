//! What the policy asks beside the plan, after every apply (`tollgate
//! apply`, the daemon's rounds): the XDP drop list (eBPF classifier
//! only), its programs on the interfaces traffic enters by and the unused
//! addresses' entries, and the unused addresses' blackhole routes
//! (`unused = "blackhole"`, either classifier). The guard's rungs write
//! their own entries (`crate::guard_rungs`).
//!
//! The list runs when `[site] classifier = "ebpf"` and `[guard]` has a
//! `drop` rung or `unused = "drop"`; otherwise tollgate's programs are
//! taken off (an operator's are never touched).

use linux_dataplane::rtnl::Rtnl;
use linux_dataplane::xdp::{self, DropList};
use policy::Policy;

/// The refusals last logged (an interface with someone else's program).
static LAST_REFUSED: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());

/// Whether the policy needs the XDP drop list.
pub fn needed(policy: &Policy) -> bool {
    let Some(g) = &policy.guard else {
        return false;
    };
    if policy.site.classifier != Some(policy::ClassifierKind::Ebpf) {
        return false;
    }
    let ladders =
        std::iter::once(&g.ladder).chain(g.groups.iter().filter_map(|gr| gr.ladder.as_ref()));
    let drop_rung = ladders
        .flatten()
        .any(|r| matches!(r.rung.action, guard::Action::Drop { .. }));
    drop_rung || g.unused.value == policy::Unused::Drop
}

/// What one [`converge`] did.
#[derive(Debug, Default)]
pub struct Converged {
    /// Interfaces a program was attached to (a fresh object: the guard's
    /// rungs put their entries back).
    pub attached: Vec<String>,
    /// Whether the list runs.
    pub running: bool,
}

/// Puts the drop list in place for `policy` (or takes tollgate's
/// programs away when it needs none). Failures and refused interfaces
/// are logged: the rest of the round goes on.
pub fn converge(policy: &Policy) -> Converged {
    unused_routes(policy);
    let mut out = Converged::default();
    let mut rtnl = match Rtnl::open() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("XDP drop list: cannot open an rtnetlink socket: {e}");
            return out;
        }
    };
    if !needed(policy) {
        match xdp::detach_all(&mut rtnl) {
            Ok(0) => {}
            Ok(n) => tracing::info!(programs = n, "XDP drop list taken off"),
            Err(e) => tracing::error!("{e}"),
        }
        return out;
    }
    let places = bpf_classify::xdp::places(policy);
    let ensured = match xdp::ensure(&mut rtnl, &places) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!("{e}");
            return out;
        }
    };
    // Said once while it lasts: the daemon converges every round.
    let refused: String = ensured.refused.iter().map(|r| format!("{r}\n")).collect();
    let mut last = LAST_REFUSED.lock().unwrap_or_else(|e| e.into_inner());
    if *last != refused {
        for r in &ensured.refused {
            tracing::error!("{r}");
        }
        *last = refused;
    }
    drop(last);
    for dev in &ensured.attached {
        tracing::info!(interface = %dev, "XDP drop list attached");
    }
    out.attached = ensured.attached;
    let Some(mut list) = ensured.list else {
        return out;
    };
    out.running = true;
    unused(policy, &mut list);
    out
}

/// Makes the list's unused-address entries the policy's.
fn unused(policy: &Policy, list: &mut DropList) {
    // The policy check bounds the prefixes; a policy that passed it
    // never fails here.
    let prefixes = match policy::unused_prefixes(policy) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("XDP drop list: the unused addresses take {e}; none are dropped");
            Vec::new()
        }
    };
    let wanted: Vec<bpf_classify::xdp::Entry> = prefixes
        .iter()
        .map(|p| bpf_classify::xdp::Entry::all(plan::guard::Way::In, *p))
        .collect();
    match list.sync(bpf_classify::xdp::Why::Unused, &wanted) {
        Ok((0, 0)) => {}
        Ok((added, removed)) => {
            tracing::info!(added, removed, "XDP drop list: unused addresses")
        }
        Err(e) => tracing::error!("{e}"),
    }
}

/// Makes the unused addresses' blackhole routes (their own routing
/// protocol, `linux_dataplane::blackhole::RTPROT_TOLLGATE_UNUSED`) the
/// policy's: none unless `unused = "blackhole"`.
fn unused_routes(policy: &Policy) {
    let blackhole = policy
        .guard
        .as_ref()
        .is_some_and(|g| g.unused.value == policy::Unused::Blackhole);
    let wanted = if blackhole {
        match policy::unused_prefixes(policy) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!("the unused addresses take {e}; none are null-routed");
                Vec::new()
            }
        }
    } else {
        Vec::new()
    };
    let synced =
        linux_dataplane::blackhole::Blackholes::open_unused().and_then(|mut b| b.sync(&wanted));
    match synced {
        Ok((0, 0)) => {}
        Ok((added, removed)) => {
            tracing::info!(added, removed, "blackhole routes of the unused addresses")
        }
        Err(e) => tracing::error!("cannot bring the unused addresses' routes in line: {e}"),
    }
}
