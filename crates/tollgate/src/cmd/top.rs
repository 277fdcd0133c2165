//! `tollgate top`: live per-tenant rates, down and up per realm, from two
//! readings of the same class counters the daemon accounts (like `status`,
//! but summed per tenant × realm and refreshed, like lqtop or iftop), plus
//! the rates the flow collector last reported for tenants measured by
//! flows. With `--addresses`: per address, from the eBPF classifier's
//! per-address counters (`linux_dataplane::addr_counters`), read at each
//! frame like the guard reads them.

use super::Context;
use crate::cli::history::TopArgs;
use crate::error::Result;
use crate::reconciler::Reconciler;
use query::rates::Reading;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Instant;

pub fn run(cx: &Context, a: &TopArgs) -> Result<ExitCode> {
    if a.addresses {
        return addresses(a);
    }
    let (loaded, policy) = crate::policy_file::valid(&cx.config)?;
    let mut r = Reconciler::open(&cx.state)?;
    // A box that only collects flows may not have the site's interfaces:
    // it has no kernel classes to show, but its flows still have rates.
    let feeds = match r.round(&loaded, &policy) {
        Ok(round) => engine::feeds::feeds(&round.compiled),
        Err(_) if policy.flows.is_some() => engine::feeds::Feeds::new(),
        Err(e) => return Err(e),
    };
    let bytes = |r: &mut Reconciler| -> Result<Reading> {
        Ok(crate::class_counters::read(&mut r.dp)?
            .into_iter()
            .map(|(k, c)| (k, c.bytes))
            .collect())
    };
    let mut prev = bytes(&mut r)?;
    let mut at = Instant::now();
    let clear = !a.once && !a.json && std::io::stdout().is_terminal();
    let frames = if a.once {
        1
    } else {
        a.count.unwrap_or(u64::MAX)
    };
    for _ in 0..frames {
        std::thread::sleep(a.interval);
        let cur = bytes(&mut r)?;
        let secs = at.elapsed().as_secs_f64().max(1e-3);
        at = Instant::now();
        // Tenants measured by flows: the rates the collector last reported.
        let flows: Vec<(u32, u16, f64, f64)> = crate::collector::live_rates(&cx.state)
            .unwrap_or_default()
            .iter()
            .map(|f| (f.tenant, f.realm, f.down_bps, f.up_bps))
            .collect();
        let rows = query::rates::top(Some(&policy), &feeds, &prev, &cur, secs, &flows, a.limit);
        prev = cur;
        if a.json {
            sayln!(
                "{}",
                crate::output::json_line(&serde_json::json!({ "seconds": secs, "rows": rows }))?
            );
        } else {
            say!(
                "{}",
                crate::output::history::top(&rows, policy.tenants.len(), secs, a.once, clear)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `top --addresses`: the kernel's per-address counters, as rates.
fn addresses(a: &TopArgs) -> Result<ExitCode> {
    use linux_dataplane::addr_counters::{AddrCounterMap, AddrCounterReader};
    let open = || -> std::result::Result<AddrCounterReader, String> {
        AddrCounterReader::new(AddrCounterMap::find()?)
    };
    let mut reader = open().map_err(|e| {
        crate::error::Error::runtime(format!(
            "no per-address counters: {e} (they need [site] classifier = \"ebpf\" and [guard.capture] source = \"ebpf\", applied)"
        ))
    })?;
    let clear = !a.once && !a.json && std::io::stdout().is_terminal();
    let frames = if a.once {
        1
    } else {
        a.count.unwrap_or(u64::MAX)
    };
    for _ in 0..frames {
        std::thread::sleep(a.interval);
        let t = reader.tick().map_err(crate::error::Error::runtime)?;
        let secs = t.ended.duration_since(t.started).as_secs_f64().max(1e-3);
        let rows = crate::output::kernel::address_rates(&t.hosts, secs, a.limit);
        if a.json {
            sayln!(
                "{}",
                crate::output::json_line(&serde_json::json!({ "seconds": secs, "rows": rows }))?
            );
        } else {
            say!(
                "{}",
                crate::output::kernel::top_addresses(&rows, t.entries, secs, a.once, clear)
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
