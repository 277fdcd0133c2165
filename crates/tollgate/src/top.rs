//! `tollgate top`: live per-tenant rates, down and up per realm, from two
//! readings of the same class counters the daemon accounts (like `status`,
//! but summed per tenant × realm and refreshed, like lqtop or iftop), plus
//! the rates the flow collector last reported for tenants measured by
//! flows.

use crate::cli::parse_duration;
use crate::daemon::{accounted_classes, identity, read_counters, Counter};
use crate::live::human_rate;
use accounting::Direction;
use clap::Args;
use compiler::{HostFacts, Live};
use linux_dataplane::Dataplane;
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::path::Path;
use std::time::{Duration, Instant};

/// `tollgate top`'s options.
#[derive(Args, Debug)]
pub struct TopArgs {
    /// Print one frame (measured over one --interval) and exit.
    #[arg(long)]
    pub once: bool,
    /// Print each frame as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// Time between frames.
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    pub interval: Duration,
    /// Stop after this many frames.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Show at most this many tenant × realm rows, busiest first.
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub limit: usize,
}

#[derive(Default, Clone, Copy)]
struct Rates {
    down: f64,
    up: f64,
}

/// `tollgate top`.
pub fn run(path: &Path, args: &TopArgs) -> Result<(), String> {
    let (loaded, policy) = crate::commands::valid(path)?;
    let mut dp = Dataplane::open().map_err(|e| e.to_string())?;
    let observed = dp
        .observe(&plan::Plan::default())
        .map_err(|e| e.to_string())?;
    let facts = HostFacts {
        interfaces: Some(observed.ifindex.keys().copied().collect()),
        live: Live::from_plan(&observed.plan),
        route_realms: crate::live::route_realms(&policy),
    };
    // A box that only collects flows may not have the site's interfaces:
    // it has no kernel classes to show, but its flows still have rates.
    let feeds = match crate::commands::compile(&loaded, &policy, &facts) {
        Ok(compiled) => accounted_classes(&compiled),
        Err(_) if policy.flows.is_some() => crate::daemon::Feeds::new(),
        Err(e) => return Err(e),
    };
    let mut prev = read_counters(&mut dp)?;
    let mut at = Instant::now();
    let clear = !args.once && !args.json && std::io::stdout().is_terminal();
    let frames = if args.once {
        1
    } else {
        args.count.unwrap_or(u64::MAX)
    };
    for _ in 0..frames {
        std::thread::sleep(args.interval);
        let cur = read_counters(&mut dp)?;
        let secs = at.elapsed().as_secs_f64().max(1e-3);
        at = Instant::now();
        let mut rates = rates(&feeds, &prev, &cur, secs);
        prev = cur;
        // Tenants measured by flows: the rates the collector last reported.
        for f in crate::collector::live_rates().unwrap_or_default() {
            let e = rates.entry((f.tenant, f.realm)).or_default();
            e.down += f.down_bps;
            e.up += f.up_bps;
        }
        let mut rows: Vec<_> = rates.into_iter().collect();
        rows.sort_by(|a, b| (b.1.down + b.1.up).total_cmp(&(a.1.down + a.1.up)));
        rows.truncate(args.limit);
        let name = |t: u32| crate::usage::tenant_name(Some(&policy), t);
        let realm = |r: u16| crate::usage::realm_name(Some(&policy), r);
        if args.json {
            let list: Vec<_> = rows
                .iter()
                .map(|((t, r), v)| {
                    serde_json::json!({
                        "tenant": t, "name": name(*t), "realm": r, "realm_name": realm(*r),
                        "down_bps": v.down.round(), "up_bps": v.up.round(),
                    })
                })
                .collect();
            sayln!("{}", serde_json::json!({ "seconds": secs, "rows": list }));
            continue;
        }
        let mut out = String::new();
        if clear {
            out.push_str("\x1b[H\x1b[2J");
        }
        let _ = writeln!(
            out,
            "tollgate top: {} tenants, rates over {secs:.1} s{}\n{:<7} {:<16} {:<16} {:>12} {:>12}",
            policy.tenants.len(),
            if args.once { "" } else { " (Ctrl-C quits)" },
            "id",
            "tenant",
            "realm",
            "down",
            "up"
        );
        for ((t, r), v) in &rows {
            let _ = writeln!(
                out,
                "{t:<7} {:<16} {:<16} {:>12} {:>12}",
                name(*t),
                realm(*r),
                human_rate(v.down),
                human_rate(v.up)
            );
        }
        say!("{out}");
    }
    Ok(())
}

/// Bits per second per tenant × realm between two readings. A class
/// missing from either reading (created or deleted in between) is left
/// out of this frame rather than shown as a spike.
fn rates(
    feeds: &crate::daemon::Feeds,
    prev: &HashMap<accounting::ObjectIdentity, Counter>,
    cur: &HashMap<accounting::ObjectIdentity, Counter>,
    secs: f64,
) -> BTreeMap<(u32, u16), Rates> {
    let mut out: BTreeMap<(u32, u16), Rates> = BTreeMap::new();
    for (class, key) in feeds {
        let e = out.entry((key.tenant.0, key.realm.0)).or_default();
        let id = identity(class);
        let (Some(a), Some(b)) = (prev.get(&id), cur.get(&id)) else {
            continue;
        };
        let bps = b.bytes.saturating_sub(a.bytes) as f64 * 8.0 / secs;
        match key.direction {
            Direction::Down => e.down += bps,
            Direction::Up => e.up += bps,
        }
    }
    out
}
