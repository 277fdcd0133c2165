//! The overage automation: which tenants the daemon moved into the overage
//! plan, why, and how they come back.
//!
//! # Why the move edits the policy file
//!
//! A move goes through the same edit as `tollgate tenant move` (the
//! tenant's `plan`, and its `parent` for a shared plan, rewritten in place
//! with comments kept), and the daemon then reconciles as after a reload,
//! so only that tenant's objects change. The alternative, an override kept
//! in the daemon's memory, would be undone by the next `tollgate apply` or
//! `tenant move` run by hand, and `plan`, `explain` and `status` would
//! disagree with the kernel. With the file edited, every command sees the
//! same truth. What the file cannot say (the plan and parent to return to,
//! the reason, the period) is kept in `overage.json` under the state
//! directory, written atomically.
//!
//! A tenant returns to its plan when its period ends, or by hand with
//! `tollgate overage release TENANT`, which leaves a request in
//! `overage-release/` for the daemon to carry out at its next round (the
//! daemon is the one writer of `overage.json`). A tenant released by hand
//! is not moved again in the same period.

use crate::ledger::StateArgs;
use billing::Decision;
use clap::Subcommand;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// The records' file name in the state directory.
pub const RECORDS_FILE: &str = "overage.json";

/// The folder of release requests in the state directory.
pub const REQUESTS_DIR: &str = "overage-release";

/// One tenant the daemon moved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Move {
    /// The tenant's id.
    pub tenant: u32,
    /// Its name.
    pub name: String,
    /// The plan it returns to.
    pub from_plan: String,
    /// The parent it returns under.
    pub from_parent: Option<String>,
    /// The overage plan.
    pub to_plan: String,
    /// The billing period of the move; the tenant returns when it ends.
    pub period: String,
    /// When.
    pub moved_at: Timestamp,
    /// Why, as billing decided it.
    pub decision: Decision,
}

/// A tenant released by hand, not to be moved again in that period.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Released {
    /// The tenant's id.
    pub tenant: u32,
    /// The period it was released in.
    pub period: String,
}

/// Everything in `overage.json`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Records {
    /// Tenants in the overage plan now.
    pub moves: Vec<Move>,
    /// Tenants released by hand, per period.
    pub released: Vec<Released>,
}

impl Records {
    /// Reads the records; none yet is an empty set.
    pub fn load(dir: &Path) -> Result<Records, String> {
        let path = dir.join(RECORDS_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| format!("{}: cannot be read: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Records::default()),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    }

    /// Writes the records atomically (temporary file, then rename).
    pub fn save(&self, dir: &Path) -> Result<(), String> {
        let path = dir.join(RECORDS_FILE);
        let tmp = dir.join(format!("{RECORDS_FILE}.new"));
        let text = serde_json::to_string_pretty(self).map_err(|e| e.to_string())?;
        std::fs::write(&tmp, text)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|e| format!("cannot write {}: {e}", path.display()))
    }
}

/// The release requests waiting in `dir`, as tenant ids.
pub fn pending_releases(dir: &Path) -> Vec<(u32, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir.join(REQUESTS_DIR)) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let id = e.file_name().to_str()?.parse().ok()?;
            Some((id, e.path()))
        })
        .collect()
}

/// `tollgate overage …`.
#[derive(Subcommand, Debug)]
pub enum OverageCommand {
    /// List the tenants the daemon moved into the overage plan, and why.
    #[command(after_help = "Examples:
  tollgate overage list
  tollgate overage list --json | jq '.moves[].name'")]
    List {
        #[command(flatten)]
        state: StateArgs,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Return a tenant to its plan now, instead of at the end of the period.
    #[command(
        after_help = "The running daemon carries the release out at its next round (within one \
--interval), moving the tenant back with the same make-before-break edit as `tenant move`, and \
does not move it again in this period. If no daemon runs, the release happens when it starts.

Examples:
  tollgate overage release alice
  tollgate overage release 7 --state-dir /srv/tollgate"
    )]
    Release {
        /// The tenant's id or name.
        tenant: String,
        #[command(flatten)]
        state: StateArgs,
    },
}

/// Runs `tollgate overage …`.
pub fn run(cmd: &OverageCommand) -> Result<String, String> {
    match cmd {
        OverageCommand::List { state, json } => {
            let r = Records::load(&state.state_dir)?;
            if *json {
                return Ok(serde_json::to_string_pretty(&r).map_err(|e| e.to_string())? + "\n");
            }
            if r.moves.is_empty() {
                return Ok("no tenant is in the overage plan\n".into());
            }
            Ok(r.moves.iter().map(describe).collect())
        }
        OverageCommand::Release { tenant, state } => {
            let r = Records::load(&state.state_dir)?;
            let m = r
                .moves
                .iter()
                .find(|m| m.name == *tenant || tenant.parse() == Ok(m.tenant))
                .ok_or_else(|| {
                    format!("tenant `{tenant}` was not moved into the overage plan by the daemon\n  hint: `tollgate overage list` shows who was; `tollgate tenant move` moves anyone by hand")
                })?;
            let dir = state.state_dir.join(REQUESTS_DIR);
            std::fs::create_dir_all(&dir)
                .and_then(|()| std::fs::write(dir.join(m.tenant.to_string()), b""))
                .map_err(|e| {
                    format!("cannot write the release request in {}: {e}", dir.display())
                })?;
            Ok(format!(
                "release of `{}` (tenant {}) requested: the daemon moves it back to plan `{}` at its next round, and not again in period {}\n",
                m.name, m.tenant, m.from_plan, m.period
            ))
        }
    }
}

/// One line about a move.
pub fn describe(m: &Move) -> String {
    let why = match &m.decision {
        Decision::MoveCertain { floor, commit } => {
            format!("its 95th cannot end below {floor}, over its commit {commit}")
        }
        Decision::MoveProjectedRate {
            projected,
            threshold,
        } => format!("projected percentile {projected} above {threshold} (commit + margin)"),
        Decision::MoveProjectedVolume {
            projected,
            threshold,
        } => format!(
            "projected volume {} above {} (quota + margin)",
            crate::ledger::human_bytes(projected.bytes()),
            crate::ledger::human_bytes(threshold.bytes())
        ),
        other => format!("{other:?}"),
    };
    format!(
        "{} (tenant {}): plan `{}` → `{}` since {} for period {}: {why}\n",
        m.name, m.tenant, m.from_plan, m.to_plan, m.moved_at, m.period
    )
}

/// Adds the overage moves to `tollgate status` output (a JSON field, or
/// lines after the table). The state directory is `TOLLGATE_STATE_DIR` or
/// the default; a missing or unreadable record adds nothing.
pub fn annotate_status(out: String, json: bool) -> String {
    let dir = crate::ledger::state_dir_from_env();
    let Ok(r) = Records::load(&dir) else {
        return out;
    };
    if json {
        let Ok(mut v) = serde_json::from_str::<serde_json::Value>(&out) else {
            return out;
        };
        v["overage"] = serde_json::to_value(&r.moves).unwrap_or_default();
        return serde_json::to_string_pretty(&v).map_or(out, |s| s + "\n");
    }
    if r.moves.is_empty() {
        return out;
    }
    let mut out = out;
    let _ = writeln!(out, "in the overage plan (moved by the daemon):");
    for m in &r.moves {
        out.push_str("  ");
        out.push_str(&describe(m));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_file() {
        let dir = std::env::temp_dir().join(format!("tga-overage-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert_eq!(Records::load(&dir).unwrap(), Records::default());
        let r = Records {
            moves: vec![Move {
                tenant: 1,
                name: "alice".into(),
                from_plan: "home".into(),
                from_parent: None,
                to_plan: "overage".into(),
                period: "2026-11".into(),
                moved_at: Timestamp::UNIX_EPOCH,
                decision: Decision::Stay,
            }],
            released: vec![],
        };
        r.save(&dir).unwrap();
        assert_eq!(Records::load(&dir).unwrap(), r);
        std::fs::create_dir_all(dir.join(REQUESTS_DIR)).unwrap();
        std::fs::write(dir.join(REQUESTS_DIR).join("1"), b"").unwrap();
        assert_eq!(pending_releases(&dir)[0].0, 1);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
