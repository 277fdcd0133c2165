//! `tollgate apply`: one reconcile round, or a loop with `--every`.

use super::Context;
use crate::error::{Error, Result};
use crate::reconciler::Reconciler;
use linux_dataplane::ApplyOptions;
use std::process::ExitCode;
use std::time::{Duration, Instant};

pub fn run(cx: &Context, every: Option<Duration>, json: bool) -> Result<ExitCode> {
    let mut r = Reconciler::open(&cx.state)?;
    // A testing aid, documented in docs/dataplane.md: make the kernel
    // "refuse" the Nth change of the next round, to prove that the round
    // after it converges.
    let mut inject: Option<usize> = std::env::var("TOLLGATE_FAIL_CHANGE")
        .ok()
        .and_then(|v| v.parse().ok());
    loop {
        let started = Instant::now();
        let (loaded, policy) = crate::policy_file::valid(&cx.config)?;
        let round = r.round(&loaded, &policy)?;
        let opts = ApplyOptions {
            inject_failure_at: inject.take(),
            ..ApplyOptions::default()
        };
        let report = r.dp.apply(&round.changes, &opts)?;
        // The XDP drop list beside the plan (eBPF classifier, `drop`
        // rungs or unused addresses).
        crate::xdp_list::converge(&policy);
        let elapsed = started.elapsed();
        if json {
            sayln!(
                "{}",
                crate::output::kernel::apply_json(round.changes.len(), &report, elapsed)?
            );
        } else if !round.changes.is_empty() || every.is_none() {
            sayln!(
                "{} (round {:.1} ms)",
                crate::output::kernel::apply_summary(&report),
                elapsed.as_secs_f64() * 1e3
            );
        }
        match every {
            None if report.failed.is_empty() => return Ok(ExitCode::SUCCESS),
            None => {
                return Err(Error::partial(format!(
                    "{} of {} changes failed",
                    report.failed.len(),
                    round.changes.len()
                ))
                .hint("run `tollgate apply` again: the next round retries what failed"))
            }
            Some(d) => std::thread::sleep(d),
        }
    }
}
