//! What the detector decides, and what an operator may command.

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use net_types::Prefix;
use serde::{Deserialize, Serialize};

use crate::config::{Action, Rung};
use crate::report::{AttackReport, FlowSpecRule};
use crate::sample::Direction;

/// What is attacked: one address, or a group whose total went over.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// One address.
    Host(IpAddr),
    /// A group, by name (its total was over a total threshold).
    Group(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Host(a) => write!(f, "{a}"),
            Target::Group(g) => write!(f, "group {g}"),
        }
    }
}

/// One rung applied to (or removed from) one target: everything the shell
/// needs to carry it out without looking anything up.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// What is attacked.
    pub target: Target,
    /// Which way.
    pub direction: Direction,
    /// The rung.
    pub rung: Rung,
    /// The rung's settings (script, rate, communities…).
    pub action: Action,
    /// The prefixes the rung acts on: the host's /32 or /128, or the
    /// group's prefixes. For blackhole, RTBH and FlowSpec every one is
    /// inside the networks and no shorter than the limits.
    pub prefixes: Vec<Prefix>,
    /// For the FlowSpec rung: the rules to announce (or withdraw).
    pub flowspec: Vec<FlowSpecRule>,
    /// The attack, as known now.
    pub attack: AttackReport,
}

impl Step {
    /// The arguments of a notify script, in FastNetMon's order so that
    /// existing scripts keep working: `ip incoming|outgoing pps ban|unban`
    /// (a group's name stands for the address of a group total). `pps` is
    /// the attack's peak so far.
    pub fn script_args(&self, ban: bool) -> [String; 4] {
        let who = match &self.target {
            Target::Host(a) => a.to_string(),
            Target::Group(g) => g.clone(),
        };
        [
            who,
            self.direction.as_script_word().to_owned(),
            self.attack.peak_pps.to_string(),
            if ban { "ban" } else { "unban" }.to_owned(),
        ]
    }
}

/// A decision for the shell to carry out, in order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// An attack was detected (or banned by hand): apply its first rung.
    Start(Step),
    /// The attack persisted: add the next rung (the earlier stay).
    Escalate {
        /// The rung below, still in place.
        from: Rung,
        /// The rung to add.
        step: Step,
    },
    /// Remove a rung (hold time passed and the traffic stayed calm, a
    /// manual ban ran out, or an operator unbanned). Rungs are removed
    /// top down.
    Stop {
        /// The rung to remove, with the prefixes and rules it was applied
        /// with.
        step: Step,
        /// Whether this was the last rung: the attack is over and
        /// `step.attack` is the final report.
        ended: bool,
    },
    /// The attack goes on: the report again, for a notify rung with
    /// `every` (the rung stays in place).
    Update(Step),
    /// After a restart: a rung that was in place before; apply it again
    /// (announce again, re-add the route) if it is not there.
    Restore(Step),
    /// A rung could not be applied and the ladder stops below it.
    Refused {
        /// What is attacked.
        target: Target,
        /// Which way.
        direction: Direction,
        /// The rung refused.
        rung: Rung,
        /// Why.
        reason: Refusal,
    },
}

impl Decision {
    /// The step, for every decision that has one.
    pub fn step(&self) -> Option<&Step> {
        match self {
            Decision::Start(s) | Decision::Restore(s) | Decision::Update(s) => Some(s),
            Decision::Escalate { step, .. } | Decision::Stop { step, .. } => Some(step),
            Decision::Refused { .. } => None,
        }
    }

    /// The step, mutably.
    pub fn step_mut(&mut self) -> Option<&mut Step> {
        match self {
            Decision::Start(s) | Decision::Restore(s) | Decision::Update(s) => Some(s),
            Decision::Escalate { step, .. } | Decision::Stop { step, .. } => Some(step),
            Decision::Refused { .. } => None,
        }
    }
}

/// Why a rung was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// None of the target's prefixes is inside the networks and at least
    /// as long as the shortest-prefix limit, so nothing may be announced.
    NoAnnounceablePrefix,
}

/// How an attack is held: automatically, or by an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Hold {
    /// The ladder decides (hold times, calm).
    Auto,
    /// Banned by hand until then (whatever the traffic).
    Until(crate::sample::Monotonic),
    /// Banned by hand until unbanned.
    Permanent,
}

/// An operator's command.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// Apply the ladder up to `rung` to `addr` now, for `duration` (the
    /// rung's hold time if `None`), whatever the traffic.
    Ban {
        /// The address.
        addr: IpAddr,
        /// Which way.
        direction: Direction,
        /// The highest rung to apply.
        rung: Rung,
        /// How long.
        duration: Option<Duration>,
    },
    /// Like `Ban`, until `Unban`.
    Permanent {
        /// The address.
        addr: IpAddr,
        /// Which way.
        direction: Direction,
        /// The highest rung to apply.
        rung: Rung,
    },
    /// Remove every rung from `addr` now (one direction, or both). If the
    /// attack goes on, it is detected again.
    Unban {
        /// The address.
        addr: IpAddr,
        /// Which way; `None` is both.
        direction: Option<Direction>,
    },
    /// Remove every rung from a group's total incident now.
    UnbanGroup {
        /// The group's name.
        group: String,
        /// Which way; `None` is both.
        direction: Option<Direction>,
    },
}

/// Why a command was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommandError {
    /// The address is not inside the protected networks.
    OutsideNetworks(IpAddr),
    /// The address's ladder has no such rung.
    NotInLadder(Rung),
    /// A rung up to the one asked for may not be applied to the address.
    Refused(Rung, Refusal),
    /// Nothing is banned for the address.
    NotBanned(IpAddr),
    /// No incident is open for the group.
    GroupNotBanned(String),
    /// As many incidents as `max_hosts` are open.
    TooMany,
}

impl fmt::Display for CommandError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandError::OutsideNetworks(a) => {
                write!(f, "{a} is not inside the guard's networks")
            }
            CommandError::NotInLadder(r) => write!(f, "the address's ladder has no `{r}` rung"),
            CommandError::Refused(r, _) => write!(
                f,
                "rung `{r}` may not be applied: the prefix is outside the networks or shorter than the limit"
            ),
            CommandError::NotBanned(a) => write!(f, "{a} is not banned"),
            CommandError::GroupNotBanned(g) => write!(f, "group {g} has no open incident"),
            CommandError::TooMany => write!(f, "too many open incidents (max_hosts)"),
        }
    }
}

impl std::error::Error for CommandError {}
