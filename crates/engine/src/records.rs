//! The overage automation's records: which tenants the daemon moved into
//! the overage plan, why, and where they return.
//!
//! # Why a move edits the policy file
//!
//! A move goes through the same edit as `tollgate tenant move` (the
//! tenant's `plan`, and its `parent` for a shared plan, rewritten in place
//! with comments kept), and the daemon then reconciles as after a reload,
//! so only that tenant's objects change. The alternative, an override kept
//! in the daemon's memory, would be undone by the next `tollgate apply` or
//! `tenant move` run by hand, and `plan`, `explain` and `status` would
//! disagree with the kernel. With the file edited, every command sees the
//! same truth. What the file cannot say (the plan and parent to return to,
//! the reason, the period) is kept in these records.
//!
//! # Crash safety
//!
//! A move or a return changes two files: the policy and the records. The
//! records are written first with the change marked `pending`, then the
//! policy, then the records again without the mark. After a crash,
//! [`Records::settle`] finishes or forgets each pending change by looking
//! at what the policy says now, so a tenant is never left in the overage
//! plan with no record of where it returns.

use billing::Decision;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

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

/// A change of the policy file that was begun but may not have reached
/// the file (see the module's notes on crash safety).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Pending {
    /// `Move` is being made: the tenant goes to its `to_plan`.
    Move(Move),
    /// The tenant goes back to `from_plan`; `Move` is what it returns from.
    Return(Move),
}

/// Everything the overage automation keeps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Records {
    /// Tenants in the overage plan now.
    pub moves: Vec<Move>,
    /// Tenants released by hand, per period.
    pub released: Vec<Released>,
    /// Changes begun and not yet known to be in the policy file.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<Pending>,
}

impl Records {
    /// Finishes or forgets the pending changes, given each tenant's plan in
    /// the policy now: a move whose tenant is on the overage plan took
    /// effect and is recorded; one whose tenant is still on its own plan
    /// did not and is forgotten; likewise for returns. Returns whether
    /// anything changed.
    pub fn settle(&mut self, plan_of: impl Fn(u32) -> Option<String>) -> bool {
        let pending = std::mem::take(&mut self.pending);
        let changed = !pending.is_empty();
        for p in pending {
            match p {
                Pending::Move(m) => {
                    if plan_of(m.tenant).as_deref() == Some(m.to_plan.as_str())
                        && !self.moves.iter().any(|x| x.tenant == m.tenant)
                    {
                        self.moves.push(m);
                    }
                }
                Pending::Return(m) => {
                    if plan_of(m.tenant).as_deref() != Some(m.to_plan.as_str()) {
                        self.moves.retain(|x| x.tenant != m.tenant);
                    } else if !self.moves.iter().any(|x| x.tenant == m.tenant) {
                        self.moves.push(m);
                    }
                }
            }
        }
        changed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moved(tenant: u32) -> Move {
        Move {
            tenant,
            name: format!("t{tenant}"),
            from_plan: "home".into(),
            from_parent: None,
            to_plan: "overage".into(),
            period: "2026-11".into(),
            moved_at: Timestamp::UNIX_EPOCH,
            decision: Decision::Stay,
        }
    }

    #[test]
    fn a_move_that_reached_the_policy_is_recorded_after_a_crash() {
        let mut r = Records {
            pending: vec![Pending::Move(moved(1))],
            ..Records::default()
        };
        assert!(r.settle(|_| Some("overage".into())));
        assert_eq!(r.moves, vec![moved(1)]);
        assert!(r.pending.is_empty());
    }

    #[test]
    fn a_move_that_did_not_reach_the_policy_is_forgotten() {
        let mut r = Records {
            pending: vec![Pending::Move(moved(1))],
            ..Records::default()
        };
        r.settle(|_| Some("home".into()));
        assert!(r.moves.is_empty());
    }

    #[test]
    fn a_return_is_finished_or_undone_by_what_the_policy_says() {
        let mut done = Records {
            moves: vec![moved(1)],
            pending: vec![Pending::Return(moved(1))],
            ..Records::default()
        };
        done.settle(|_| Some("home".into()));
        assert!(done.moves.is_empty());
        let mut undone = Records {
            moves: vec![moved(1)],
            pending: vec![Pending::Return(moved(1))],
            ..Records::default()
        };
        undone.settle(|_| Some("overage".into()));
        assert_eq!(undone.moves, vec![moved(1)]);
    }
}
