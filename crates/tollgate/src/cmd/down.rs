//! `tollgate down`: removes everything tollgate created, and nothing else.

use super::Context;
use crate::error::{Error, Result};
use linux_dataplane::{ApplyOptions, Dataplane};
use plan::{diff, Plan};
use std::process::ExitCode;

pub fn run(_cx: &Context) -> Result<ExitCode> {
    let mut dp = Dataplane::open()?;
    let observed = dp.observe(&Plan::default())?;
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
    let report = dp.apply(&changes, &ApplyOptions::default())?;
    let had_table = !observed.plan.chains.is_empty() || !observed.plan.maps.is_empty();
    if had_table {
        dp.nft
            .run_script(&format!("delete table netdev {}\n", plan::NFT_TABLE))?;
    }
    sayln!(
        "removed {} tc objects{}; {}",
        changes.len(),
        if had_table {
            " and the nftables table netdev tollgate"
        } else {
            ""
        },
        crate::output::kernel::apply_summary(&report)
    );
    // The guard's blackhole routes: only those marked with tollgate's
    // routing protocol, never an operator's.
    let routes = linux_dataplane::blackhole::Blackholes::open()
        .and_then(|mut b| b.flush())
        .map_err(|e| Error::runtime(format!("cannot remove the guard's blackhole routes: {e}")))?;
    if routes > 0 {
        sayln!(
            "removed {routes} blackhole routes of the guard (proto {})",
            linux_dataplane::blackhole::RTPROT_TOLLGATE
        );
    }
    let unused = linux_dataplane::blackhole::Blackholes::open_unused()
        .and_then(|mut b| b.flush())
        .map_err(|e| Error::runtime(format!("cannot remove the unused addresses' routes: {e}")))?;
    if unused > 0 {
        sayln!(
            "removed {unused} blackhole routes of the unused addresses (proto {})",
            linux_dataplane::blackhole::RTPROT_TOLLGATE_UNUSED
        );
    }
    // The XDP drop list: only tollgate's programs, never an operator's.
    let xdp = linux_dataplane::rtnl::Rtnl::open()
        .map_err(|e| Error::runtime(format!("cannot open an rtnetlink socket: {e}")))
        .and_then(|mut r| {
            linux_dataplane::xdp::detach_all(&mut r)
                .map_err(|e| Error::runtime(format!("cannot remove the XDP drop list: {e}")))
        })?;
    if xdp > 0 {
        sayln!("removed {xdp} XDP programs of the drop list");
    }
    Ok(ExitCode::SUCCESS)
}
