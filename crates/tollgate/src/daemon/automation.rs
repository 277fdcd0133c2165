//! The overage automation, run by the daemon every `overage.check_every`
//! when `[overage] enabled = true` (see [`crate::overage`] for why a move
//! edits the policy file).
//!
//! One check:
//! 1. carries out the releases requested by hand;
//! 2. returns every tenant moved in an earlier period to its plan;
//! 3. projects each remaining tenant with a commit (or under a quota) to the
//!    end of the period from its closed samples, and moves those whose
//!    projection exceeds the commit by the margin ([`billing::decide`]).
//!    The projection is kept as a few counts per tenant
//!    ([`billing::Tally`]), updated from the slots closed since the last
//!    check ([`super::overage_watch`]), so a check reads the new samples
//!    only, whatever the number of tenants.
//!
//! All edits of one check are made to the policy text together, the result
//! is loaded and validated, and only then written (atomically) and
//! recorded; a policy the edit would break is left alone and the check is
//! reported as failed.

use super::overage_watch::OverageWatch;
use super::{Daemon, Running};
use accounting::Slot;
use billing::{RealmSelection, Series};
use engine::records::{Move, Released};
use history::{SampleQuery, Store, Tenants};
use jiff::Timestamp;
use policy::edit::ParentChange;

/// Runs one check; returns whether the running policy changed (the caller
/// then reconciles).
pub(super) fn check(d: &mut Daemon) -> Result<bool, String> {
    let now = Timestamp::now();
    let s = &d.settings;
    let period = s.cycle.period_containing(now).map_err(|e| e.to_string())?;
    let before = crate::overage_files::load(&d.state).map_err(|e| e.to_string())?;
    let mut before = before;
    // Finish or forget what a crash interrupted, by what the policy says.
    let policy = &d.running.policy;
    if before.settle(|id| {
        policy
            .tenant(net_types::TenantId(id))
            .map(|t| t.plan.clone())
    }) {
        crate::overage_files::save(&d.state, &before).map_err(|e| e.to_string())?;
    }
    let mut records = before.clone();
    let mut returns: Vec<(Move, &'static str)> = Vec::new();
    let requests = crate::overage_files::pending_releases(&d.state);
    for (id, _) in &requests {
        let id = *id;
        if let Some(i) = records.moves.iter().position(|m| m.tenant == id) {
            returns.push((records.moves.remove(i), "released by hand"));
            records.released.push(Released {
                tenant: id,
                period: period.label.clone(),
            });
        }
    }
    let (ended, kept): (Vec<Move>, Vec<Move>) = records
        .moves
        .into_iter()
        .partition(|m| m.period != period.label);
    records.moves = kept;
    returns.extend(ended.into_iter().map(|m| (m, "its period ended")));
    records.released.retain(|r| r.period == period.label);

    let first = period.first_slot();
    let now_slot = Slot::containing(now);
    let elapsed = (now_slot.0 - first.0).max(0) as usize;
    let store = d.books.store();
    let coverage = store
        .coverage(first, now_slot)
        .map_err(|e| format!("cannot read the slot coverage: {e}"))?;
    // Counts per tenant, brought up to date from the slots closed since the
    // last check (see `overage_watch`).
    let watch = billing::Watch {
        expected: period.expected_samples(),
        rule: s.rule,
        counts: s.volume.counts,
        policy: s.overage.policy,
    };
    let wanted: Vec<_> = d
        .running
        .policy
        .tenants
        .iter()
        .filter(|t| t.commit.is_some() || s.volume.quota.is_some())
        .map(|t| (t.id, t.commit))
        .collect();
    let started = std::time::Instant::now();
    let current = OverageWatch::update(
        &mut d.overage_watch,
        store,
        watch,
        first,
        now_slot,
        &coverage,
        &wanted,
    )?;
    let mut moves = Vec::new();
    for t in &d.running.policy.tenants {
        let id = t.id.0;
        let skip = t.plan == s.overage.plan
            || records.moves.iter().any(|m| m.tenant == id)
            || records.released.iter().any(|r| r.tenant == id)
            || (t.commit.is_none() && s.volume.quota.is_none());
        if skip {
            continue;
        }
        // Every tenant decided here has a tally; the long way otherwise.
        let verdict = current
            .tallies
            .get(&id)
            .map_or(billing::Verdict::Recompute, |tally| {
                current.watch.decide(tally, t.commit, s.volume.quota)
            });
        let decision = match verdict {
            billing::Verdict::Exact(decision) => decision,
            // It moves on its percentile: the decision carries the figure,
            // computed from its series as before (once per moved tenant).
            billing::Verdict::Recompute => {
                let samples = store
                    .samples(&SampleQuery {
                        tenants: Tenants::Only(vec![t.id]),
                        from: first,
                        to: now_slot,
                    })
                    .map_err(|e| format!("cannot read tenant {id}'s samples: {e}"))?;
                let series =
                    Series::build(&period, t.id, &RealmSelection::All, &samples, &coverage);
                let projection = billing::project(&series, elapsed, &s.rule, s.volume.counts);
                billing::decide(&projection, t.commit, s.volume.quota, &s.overage.policy)
            }
        };
        tracing::debug!(tenant = id, ?decision, "overage check");
        if decision.moves() {
            moves.push(Move {
                tenant: id,
                name: t.name.clone(),
                from_plan: t.plan.clone(),
                from_parent: t.parent.clone(),
                to_plan: s.overage.plan.clone(),
                period: period.label.clone(),
                moved_at: now,
                decision,
            });
        }
    }
    tracing::debug!(
        tenants = wanted.len(),
        samples = current.samples_read,
        moves = moves.len(),
        ms = started.elapsed().as_millis() as u64,
        "overage check done"
    );
    if returns.is_empty() && moves.is_empty() {
        if records != before {
            crate::overage_files::save(&d.state, &records).map_err(|e| e.to_string())?;
        }
        for (_, file) in &requests {
            crate::overage_files::remove_request(file);
        }
        return Ok(false);
    }

    let shared = d
        .running
        .policy
        .plan(&s.overage.plan)
        .ok_or_else(|| {
            format!(
                "the overage plan `{}` is not in the policy\n  hint: add [plans.{}] or set [overage] plan in {}",
                s.overage.plan, s.overage.plan, s.source
            )
        })?
        .is_shared();
    let mut text = crate::policy_file::read_text(&d.path).map_err(|e| e.to_string())?;
    let edit = |text: &str, who: u32, plan: &str, parent: ParentChange<'_>| {
        policy::edit::set_tenant_plan(text, &who.to_string(), plan, parent)
            .map_err(|e| format!("cannot edit tenant {who} in {}: {e}", d.path.display()))
    };
    for (m, _) in &returns {
        let parent = m
            .from_parent
            .as_deref()
            .map_or(ParentChange::Keep, ParentChange::Set);
        text = edit(&text, m.tenant, &m.from_plan, parent)?;
    }
    for m in &moves {
        let parent = if shared {
            ParentChange::Remove
        } else {
            ParentChange::Keep
        };
        text = edit(&text, m.tenant, &m.to_plan, parent)?;
    }
    let loaded = crate::policy_file::load_text(&d.path, &text);
    let Some(policy) = loaded.policy.clone() else {
        return Err(format!(
            "the moves would make the policy invalid; nothing was changed\n{}",
            loaded.render()
        ));
    };
    // Crash safety: the intent goes to the records first, then the policy,
    // then the records without it (see `engine::records`).
    let mut intent = records.clone();
    intent.pending.extend(
        returns
            .iter()
            .map(|(m, _)| engine::records::Pending::Return(m.clone())),
    );
    intent.pending.extend(
        moves
            .iter()
            .map(|m| engine::records::Pending::Move(m.clone())),
    );
    for (m, _) in &returns {
        intent.moves.push(m.clone());
    }
    crate::overage_files::save(&d.state, &intent).map_err(|e| e.to_string())?;
    crate::crash_point::reached("policy-edit");
    crate::state_dir::replace_atomically(&d.path, text.as_bytes()).map_err(|e| e.to_string())?;
    crate::crash_point::reached("policy-edited");
    for (m, why) in &returns {
        tracing::info!(tenant = m.tenant, name = %m.name, plan = %m.from_plan, "overage: back to its plan ({why})");
    }
    for m in &moves {
        tracing::info!(tenant = m.tenant, name = %m.name, from = %m.from_plan, to = %m.to_plan, decision = ?m.decision, "overage: moved into the overage plan");
    }
    d.metrics.add(
        &d.metrics.overage_moves,
        (returns.len() + moves.len()) as u64,
    );
    records.moves.extend(moves);
    crate::overage_files::save(&d.state, &records).map_err(|e| e.to_string())?;
    for (_, file) in &requests {
        crate::overage_files::remove_request(file);
    }
    d.running = Running { loaded, policy };
    Ok(true)
}
