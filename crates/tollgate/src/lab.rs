//! `tollgate lab`: namespaces to try tollgate in, with real traffic.

use crate::cli::{LabCommand, LabModeArg};
use linux_dataplane::lab::{self, LabMode, LabSpec, TrafficOpts};
use std::fmt::Write as _;

pub fn run(cmd: &LabCommand) -> Result<(), String> {
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
            let l = lab::up(&spec, examples).map_err(|e| e.to_string())?;
            sayln!(
                "lab up: {} mode, {} tenants, host namespace {}, policy {}",
                l.mode.as_str(),
                l.tenants.len(),
                l.host_netns,
                l.policy_path.display()
            );
            // Everything from here on happens inside the lab's host.
            linux_dataplane::netns::enter(&l.host_netns)
                .map_err(|e| format!("cannot enter {}: {e}", l.host_netns))?;
            if !crate::live::apply(&l.policy_path, None, false)? {
                return Err("some changes failed; run `tollgate lab down` and try again".into());
            }
            sayln!(
                "next: `tollgate lab traffic` measures shaping; `tollgate --netns {} status -c {}` shows the classes",
                l.host_netns,
                l.policy_path.display()
            );
            Ok(())
        }
        LabCommand::Traffic {
            seconds,
            ipv6,
            json,
        } => {
            let l = lab::status().ok_or("no lab is up\n  hint: run `tollgate lab up` first")?;
            let opts = TrafficOpts {
                seconds: *seconds,
                ipv6: *ipv6,
                ..TrafficOpts::default()
            };
            let mut progress = |m: &str| eprintln!("{m}");
            let ms = lab::traffic(&l, &opts, &mut progress).map_err(|e| e.to_string())?;
            if *json {
                let rows: Vec<_> = ms
                    .iter()
                    .map(|m| {
                        serde_json::json!({
                            "tenant": m.tenant, "name": m.tenant_name, "realm": m.realm,
                            "direction": m.direction.as_str(), "server": m.server.to_string(),
                            "mbit": m.mbit, "ceil_mbit": m.expected_ceil_mbit,
                        })
                    })
                    .collect();
                sayln!(
                    "{}",
                    serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?
                );
                return Ok(());
            }
            let mut out = format!(
                "{:<10} {:<14} {:<5} {:<18} {:>10} {:>10} {:>8}\n",
                "tenant", "realm", "dir", "server", "measured", "ceil", "of ceil"
            );
            for m in &ms {
                let ceil = m.expected_ceil_mbit;
                let _ = writeln!(
                    out,
                    "{:<10} {:<14} {:<5} {:<18} {:>10} {:>10} {:>8}",
                    m.tenant_name,
                    m.realm,
                    m.direction.as_str(),
                    m.server.to_string(),
                    format!("{:.2}Mbit", m.mbit),
                    ceil.map_or("-".into(), |c| format!("{c:.2}Mbit")),
                    ceil.map_or("-".into(), |c| format!("{:.0}%", 100.0 * m.mbit / c)),
                );
            }
            out.push_str("iperf3 counts TCP payload; HTB counts whole frames, so about 95% of a ceil is the most a TCP flow can show.\n");
            say!("{out}");
            Ok(())
        }
        LabCommand::Down => {
            lab::down().map_err(|e| e.to_string())?;
            sayln!("lab down: every tg-lab-* namespace removed");
            Ok(())
        }
    }
}
