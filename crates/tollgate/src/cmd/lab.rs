//! `tollgate lab`: namespaces to try tollgate in, with real traffic.

use super::Context;
use crate::cli::lab::{LabCommand, LabModeArg};
use crate::error::{Context as _, Error, Result};
use lab::{LabMode, LabSpec, TrafficOpts};
use std::process::ExitCode;

pub fn run(cx: &Context, cmd: &LabCommand) -> Result<ExitCode> {
    match cmd {
        LabCommand::Up {
            tenants,
            mode,
            examples,
        } => {
            let spec = LabSpec {
                mode: match mode {
                    LabModeArg::Router => LabMode::Router,
                    LabModeArg::Hypervisor => LabMode::Hypervisor,
                },
                tenants: *tenants,
            };
            let l = lab::up(&spec, examples).runtime("cannot build the lab")?;
            sayln!(
                "lab up: {} mode, {} tenants, host namespace {}, policy {}",
                l.mode.as_str(),
                l.tenants.len(),
                l.host_netns,
                l.policy_path.display()
            );
            // Everything from here on happens inside the lab's host.
            linux_dataplane::netns::enter(&l.host_netns)
                .runtime(format!("cannot enter {}", l.host_netns))?;
            let mut r = crate::reconciler::Reconciler::open(&cx.state)?;
            let (loaded, policy) = crate::policy_file::valid(&l.policy_path)?;
            let round = r.round(&loaded, &policy)?;
            let report =
                r.dp.apply(&round.changes, &linux_dataplane::ApplyOptions::default())?;
            sayln!("{}", crate::output::kernel::apply_summary(&report));
            if !report.failed.is_empty() {
                return Err(Error::partial("some changes failed")
                    .hint("run `tollgate lab down` and try again"));
            }
            sayln!(
                "next: `tollgate lab traffic` measures shaping; `tollgate --netns {} status -c {}` shows the classes",
                l.host_netns,
                l.policy_path.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Traffic {
            seconds,
            ipv6,
            json,
        } => {
            let l = lab::status().ok_or_else(|| {
                Error::invalid("no lab is up").hint("run `tollgate lab up` first")
            })?;
            let opts = TrafficOpts {
                seconds: *seconds,
                ipv6: *ipv6,
                ..TrafficOpts::default()
            };
            let mut progress = |m: &str| eprintln!("{m}");
            let ms = lab::traffic(&l, &opts, &mut progress).runtime("the lab's traffic")?;
            if *json {
                say!("{}", crate::output::lab::traffic_json(&ms)?);
            } else {
                say!("{}", crate::output::lab::traffic_text(&ms));
            }
            Ok(ExitCode::SUCCESS)
        }
        LabCommand::Down => {
            lab::down().runtime("cannot take the lab down")?;
            sayln!("lab down: every tg-lab-* namespace removed");
            Ok(ExitCode::SUCCESS)
        }
    }
}
