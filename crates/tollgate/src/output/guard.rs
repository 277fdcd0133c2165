//! `tollgate guard watch`'s texts: the JSON report a notify script reads
//! on stdin, and the numbers its arguments carry.

use guard::{Step, Target};
use serde::Serialize;

/// What a notify script gets on stdin: the FastNetMon-style arguments
/// again, the rung's prefixes and the attack report as the detector keeps
/// it (`attack.kind.kind` is `syn_flood`, `udp_flood`, `amplification`…).
#[derive(Serialize)]
struct NotifyReport<'a> {
    ip: String,
    direction: &'static str,
    action: &'a str,
    pps: u64,
    attack_type: String,
    prefixes: Vec<String>,
    attack: &'a guard::AttackReport,
}

/// The address (or `group NAME`) a script's first argument names.
pub fn target_arg(target: &Target) -> String {
    match target {
        Target::Host(a) => a.to_string(),
        Target::Group(g) => g.clone(),
    }
}

/// The packets per second a script's third argument gives: the highest
/// one-tick rate seen, or the rate that fired before one was measured.
pub fn attack_pps(step: &Step) -> u64 {
    if step.attack.peak_pps > 0 {
        step.attack.peak_pps
    } else {
        step.attack.trigger.rate
    }
}

/// The JSON a notify script reads on stdin, one line.
pub fn notify_json(step: &Step, action: &str) -> Vec<u8> {
    let r = NotifyReport {
        ip: target_arg(&step.target),
        direction: step.direction.as_script_word(),
        action,
        pps: attack_pps(step),
        attack_type: step.attack.kind.to_string(),
        prefixes: step.prefixes.iter().map(|p| p.to_string()).collect(),
        attack: &step.attack,
    };
    let mut v = serde_json::to_vec(&r).unwrap_or_default();
    v.push(b'\n');
    v
}
