//! The overage automation's decisions, when `[overage] enabled = true`.
//!
//! One check:
//! 1. carries out the releases requested by hand;
//! 2. returns every tenant moved in an earlier period to its plan;
//! 3. moves each remaining tenant with a commit (or under a quota) whose
//!    projection to the end of the period exceeds it by the margin.
//!
//! The projection needs the period's samples, which the shell reads
//! ([`crate::io::Effect::AssessOverage`]); everything else is decided
//! here. All edits of one check are made to the policy text together; the
//! result is loaded and validated, and only then written, with the
//! records saved around the write so that a crash at any point is settled
//! at the next start ([`crate::records`]).

use crate::core::{Engine, Running};
use crate::edit::Edit;
use crate::io::{Answer, Assess, Assessment, Effect, Level};
use crate::records::{Move, Pending, Records, Released};
use accounting::Slot;
use jiff::Timestamp;
use std::collections::BTreeMap;

/// A policy write the engine waits on.
pub(crate) struct Write {
    /// The policy once written.
    pub next: Running,
    /// Whose write.
    pub kind: WriteKind,
    /// The command to answer once it is applied.
    pub reply: Option<u64>,
    /// What it does, for people.
    pub summary: String,
}

/// Whose write, and what to do when it lands.
pub(crate) enum WriteKind {
    /// A command's.
    Api,
    /// The automation's.
    Overage(Box<OverageWrite>),
}

/// The automation's write.
pub(crate) struct OverageWrite {
    /// The records before, to restore if the write fails.
    pub before: Records,
    /// The records saved before the write (with the change pending).
    pub intent: Records,
    /// The records once the write is done.
    pub after: Records,
    /// What the write carries out.
    pub done: Done,
}

/// What an automation write carries out.
pub(crate) struct Done {
    returns: Vec<(Move, &'static str)>,
    moves: Vec<Move>,
    requests: Vec<u32>,
}

/// The question for the shell: every tenant with a commit or under a
/// quota, to decide on its period so far.
pub(crate) fn question(e: &Engine, now: Timestamp) -> Result<Assess, String> {
    let s = &e.settings;
    let period = s.cycle.period_containing(now).map_err(|e| e.to_string())?;
    Ok(Assess {
        period,
        now_slot: Slot::containing(now).0,
        rule: s.rule,
        counts: s.volume.counts,
        policy: s.overage.policy,
        quota: s.volume.quota,
        tenants: e
            .running
            .policy
            .tenants
            .iter()
            .filter(|t| t.commit.is_some() || s.volume.quota.is_some())
            .map(|t| (t.id, t.commit))
            .collect(),
    })
}

/// Carries out a release asked for by a command at once, without waiting
/// for the next check.
pub(crate) fn release_now(e: &mut Engine, now: Timestamp, id: u64, out: &mut Vec<Effect>) {
    let label = match e.settings.cycle.period_containing(now) {
        Ok(p) => p.label,
        Err(err) => {
            out.push(Effect::Reply {
                id,
                answer: Answer::Failed {
                    message: err.to_string(),
                },
            });
            return;
        }
    };
    let nothing = Assessment {
        period: label,
        decisions: Vec::new(),
        error: None,
    };
    decide(e, now, nothing, Some(id), out);
}

/// Decides the check from the shell's assessment and begins the write.
pub(crate) fn decide(
    e: &mut Engine,
    now: Timestamp,
    a: Assessment,
    reply: Option<u64>,
    out: &mut Vec<Effect>,
) {
    let s = e.settings.clone();
    let label = match s.cycle.period_containing(now) {
        Ok(p) => p.label,
        Err(err) => {
            e.event(
                out,
                now,
                Level::Error,
                "overage_failed",
                err.to_string(),
                None,
            );
            return;
        }
    };
    let before = e.records.clone();
    let mut records = before.clone();
    let mut returns: Vec<(Move, &'static str)> = Vec::new();
    let requests: Vec<u32> = std::mem::take(&mut e.releases).into_iter().collect();
    for &id in &requests {
        if let Some(i) = records.moves.iter().position(|m| m.tenant == id) {
            returns.push((records.moves.remove(i), "released by hand"));
            records.released.push(Released {
                tenant: id,
                period: label.clone(),
            });
        }
    }
    let (ended, kept): (Vec<Move>, Vec<Move>) =
        records.moves.into_iter().partition(|m| m.period != label);
    records.moves = kept;
    returns.extend(ended.into_iter().map(|m| (m, "its period ended")));
    records.released.retain(|r| r.period == label);

    let decisions: BTreeMap<u32, billing::Decision> = if a.period == label {
        a.decisions.into_iter().collect()
    } else {
        // The period turned between the question and the answer: move
        // no one on stale figures; the next check asks again.
        BTreeMap::new()
    };
    let mut moves = Vec::new();
    for t in &e.running.policy.tenants {
        let id = t.id.0;
        let skip = t.plan == s.overage.plan
            || records.moves.iter().any(|m| m.tenant == id)
            || records.released.iter().any(|r| r.tenant == id)
            || returns.iter().any(|(m, _)| m.tenant == id)
            || (t.commit.is_none() && s.volume.quota.is_none());
        if skip {
            continue;
        }
        let Some(decision) = decisions.get(&id) else {
            continue;
        };
        if decision.moves() {
            moves.push(Move {
                tenant: id,
                name: t.name.clone(),
                from_plan: t.plan.clone(),
                from_parent: t.parent.clone(),
                to_plan: s.overage.plan.clone(),
                period: label.clone(),
                moved_at: now,
                decision: decision.clone(),
            });
        }
    }
    if returns.is_empty() && moves.is_empty() {
        if records != before {
            out.push(Effect::SaveRecords(records.clone()));
            e.records = records;
        }
        for tenant in requests {
            out.push(Effect::RemoveReleaseRequest { tenant });
        }
        if let Some(id) = reply {
            out.push(Effect::Reply {
                id,
                answer: Answer::Done {
                    message: "nothing to release".into(),
                    applied: 0,
                    failed: 0,
                },
            });
        }
        return;
    }
    if e.running.policy.plan(&s.overage.plan).is_none() && !moves.is_empty() {
        e.event(
            out,
            now,
            Level::Error,
            "overage_failed",
            format!(
                "the overage plan `{}` is not in the policy; add [plans.{}] or set [overage] plan in {}",
                s.overage.plan, s.overage.plan, s.source
            ),
            None,
        );
        return;
    }
    let mut text = e.running.text.text.clone();
    let edits = returns
        .iter()
        .map(|(m, _)| Edit::Move {
            tenant: m.tenant.to_string(),
            plan: m.from_plan.clone(),
            parent: m.from_parent.clone(),
        })
        .chain(moves.iter().map(|m| Edit::Move {
            tenant: m.tenant.to_string(),
            plan: m.to_plan.clone(),
            parent: None,
        }));
    for edit in edits {
        // Each edit sees the plans of the running policy: whether a plan
        // is shared does not change between them.
        match crate::edit::apply(&text, Some(&e.running.policy), &edit) {
            Ok(t) => text = t,
            Err(err) => {
                e.event(
                    out,
                    now,
                    Level::Error,
                    "overage_failed",
                    format!("cannot edit the policy: {err}"),
                    None,
                );
                return;
            }
        }
    }
    let next = match Running::load(e.running.text.with_text(text)) {
        Ok(n) => n,
        Err(loaded) => {
            let rendered = loaded.render();
            e.event(
                out,
                now,
                Level::Error,
                "overage_failed",
                format!("the moves would make the policy invalid; nothing was changed\n{rendered}"),
                None,
            );
            return;
        }
    };
    let mut intent = records.clone();
    intent.moves.extend(returns.iter().map(|(m, _)| m.clone()));
    intent
        .pending
        .extend(returns.iter().map(|(m, _)| Pending::Return(m.clone())));
    intent
        .pending
        .extend(moves.iter().map(|m| Pending::Move(m.clone())));
    let mut after = records;
    after.moves.extend(moves.iter().cloned());
    let summary = format!(
        "overage: {} back to their plans, {} moved into `{}`",
        returns.len(),
        moves.len(),
        s.overage.plan
    );
    e.begin_write(
        Write {
            next,
            kind: WriteKind::Overage(Box::new(OverageWrite {
                before,
                intent,
                after,
                done: Done {
                    returns,
                    moves,
                    requests,
                },
            })),
            reply,
            summary,
        },
        out,
    );
}

/// The automation's write is in the policy file: record it.
pub(crate) fn finished(
    e: &mut Engine,
    now: Timestamp,
    after: Records,
    done: Done,
    out: &mut Vec<Effect>,
) {
    out.push(Effect::SaveRecords(after.clone()));
    e.records = after;
    for tenant in done.requests {
        out.push(Effect::RemoveReleaseRequest { tenant });
    }
    for (m, why) in &done.returns {
        e.event(
            out,
            now,
            Level::Info,
            "overage_return",
            format!(
                "overage: {} (tenant {}) back to plan `{}` ({why})",
                m.name, m.tenant, m.from_plan
            ),
            Some(m.tenant),
        );
    }
    for m in &done.moves {
        e.event(
            out,
            now,
            Level::Info,
            "overage_move",
            format!(
                "overage: {} (tenant {}) moved from plan `{}` into `{}`",
                m.name, m.tenant, m.from_plan, m.to_plan
            ),
            Some(m.tenant),
        );
    }
    e.counts.overage_moves += (done.returns.len() + done.moves.len()) as u64;
}
