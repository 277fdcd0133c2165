//! The daemon's reads of the kernel, and applying a change set without
//! losing a counted byte.
//!
//! # Reading before deleting
//!
//! A class's counter dies with it. So a change set is applied in segments:
//! runs of changes that delete nothing, and runs that delete classes,
//! qdiscs or devices. Before a deleting run, the accounted classes it will
//! remove are drained (a moved tenant's classification has already
//! switched to its new classes, so the old ones only empty their queues,
//! up to 500 ms, as the dataplane's own drain does) and read one last time;
//! those readings are accounted. After the run, a zero reading is
//! accounted for each of them, which tells the accountant that their
//! counters restart: a class recreated later with the same handle counts
//! from zero.
//!
//! What can still be lost: when the diff must rebuild a class in place (a
//! qdisc whose parameters changed, or a class that must change parent, the
//! only break-before-make cases), classification still points at the class
//! while it is read and deleted, so the packets dequeued in the
//! microseconds between the last read and the deletion are not counted.
//! Deletions by someone else (`tc qdisc del` by hand) lose what the class
//! carried since the daemon's previous read: at most one interval.

use crate::class_counters::Counter;
use accounting::{ObjectIdentity, Reading, UsageKey};
use engine::feeds::identity;
use engine::io::TimedReadings;
use linux_dataplane::{ApplyOptions, ApplyReport, Dataplane};
use net_types::ClassId;
use plan::{Attach, Change, ChangeSet, ClassKey, Plan, Qdisc};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn destructive(c: &Change) -> bool {
    matches!(
        c,
        Change::DelClass { .. } | Change::DelQdisc { .. } | Change::DelLink { .. }
    )
}

/// The classes of `observed` that a deleting run removes, with whether
/// each is removed on its own (and so can be drained first).
fn removed_by(run: &[Change], observed: &Plan) -> Vec<(ClassKey, bool)> {
    let mut out = Vec::new();
    for c in run {
        match c {
            Change::DelClass { key } => out.push((*key, true)),
            Change::DelQdisc { key } => {
                let major = match observed.qdiscs.get(key) {
                    Some(Qdisc::Htb { major, .. }) => Some(*major),
                    _ => None,
                };
                out.extend(
                    observed
                        .classes
                        .keys()
                        .filter(|k| {
                            k.dev == key.dev
                                && (key.attach == Attach::Root || Some(k.id.major) == major)
                        })
                        .map(|k| (*k, false)),
                );
            }
            Change::DelLink { name } => out.extend(
                observed
                    .classes
                    .keys()
                    .filter(|k| k.dev == *name)
                    .map(|k| (*k, false)),
            ),
            _ => {}
        }
    }
    out
}

fn handle(id: ClassId) -> u32 {
    (u32::from(id.major) << 16) | u32::from(id.minor)
}

/// Reads the given classes, waiting up to `drain` for those that may drain
/// to empty their queues first.
fn final_read(
    dp: &mut Dataplane,
    classes: &[(ClassKey, bool)],
    drain: Duration,
) -> Vec<(ClassKey, Counter)> {
    let deadline = Instant::now() + drain;
    loop {
        let mut queued = 0u64;
        let mut out = Vec::with_capacity(classes.len());
        for (key, drains) in classes {
            let Some(&ifindex) = dp.ifindex.get(&key.dev) else {
                continue;
            };
            match dp.rtnl.class(ifindex, handle(key.id)) {
                Ok(Some(c)) => {
                    let s = c.stats.unwrap_or_default();
                    if *drains {
                        queued += u64::from(s.qlen);
                    }
                    out.push((
                        *key,
                        Counter {
                            bytes: s.bytes,
                            packets: s.packets,
                        },
                    ));
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(class = %key.id, dev = %key.dev, error = %e, "cannot read a class before removing it; its last interval may be lost");
                }
            }
        }
        if queued == 0 || Instant::now() >= deadline {
            return out;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Applies `changes` in segments so that every accounted class is read
/// right before it is deleted (see the module docs). `watched` maps the
/// identity of every class the accountant reads to its key; the final
/// readings before a deleting run and the zero readings after it are
/// returned with the times they were taken, for the engine to account.
pub fn apply_keeping_counts(
    dp: &mut Dataplane,
    changes: &ChangeSet,
    observed: &Plan,
    watched: &HashMap<ObjectIdentity, UsageKey>,
    now: &dyn Fn() -> jiff::Timestamp,
) -> Result<(ApplyReport, Vec<TimedReadings>), linux_dataplane::DataplaneError> {
    let mut taken = Vec::new();
    let mut account = |readings: Vec<(UsageKey, Reading)>| {
        if !readings.is_empty() {
            taken.push(TimedReadings {
                at: now(),
                readings,
            });
        }
    };
    let opts = ApplyOptions::default();
    let mut total = ApplyReport::default();
    let all = &changes.changes;
    let mut i = 0;
    while i < all.len() {
        let kind = destructive(&all[i]);
        let mut j = i + 1;
        while j < all.len() && destructive(&all[j]) == kind {
            j += 1;
        }
        let run = &all[i..j];
        let doomed: Vec<(ClassKey, bool)> = if kind {
            removed_by(run, observed)
                .into_iter()
                .filter(|(k, _)| watched.contains_key(&identity(k)))
                .collect()
        } else {
            Vec::new()
        };
        if !doomed.is_empty() {
            let last = final_read(dp, &doomed, opts.drain_timeout);
            account(
                last.iter()
                    .map(|(k, c)| {
                        let object = identity(k);
                        let reading = Reading {
                            object,
                            bytes: c.bytes,
                            packets: c.packets,
                        };
                        (watched[&object], reading)
                    })
                    .collect(),
            );
        }
        let report = dp.apply(
            &ChangeSet {
                changes: run.to_vec(),
            },
            &opts,
        )?;
        if !doomed.is_empty() {
            // Only classes that are really gone restart from zero: one the
            // kernel refused to delete keeps its counter, and is read again
            // next round.
            let still = final_read(dp, &doomed, Duration::ZERO);
            let gone: Vec<_> = doomed
                .iter()
                .filter(|(k, _)| !still.iter().any(|(s, _)| s == k))
                .map(|(k, _)| {
                    let object = identity(k);
                    let zero = Reading {
                        object,
                        bytes: 0,
                        packets: 0,
                    };
                    (watched[&object], zero)
                })
                .collect();
            account(gone);
        }
        total.applied += report.applied;
        total.failed.extend(report.failed);
        total.elapsed += report.elapsed;
        total.drained += report.drained;
        i = j;
    }
    Ok((total, taken))
}

#[cfg(test)]
mod tests {
    use super::*;
    use net_types::IfName;

    fn ck(dev: &str, major: u16, minor: u16) -> ClassKey {
        ClassKey {
            dev: IfName::new(dev).unwrap(),
            id: ClassId::new(major, minor),
        }
    }

    #[test]
    fn a_removed_shard_qdisc_takes_only_its_own_classes() {
        let mut observed = Plan::default();
        let dev = IfName::new("tg-down").unwrap();
        let shard = plan::QdiscKey {
            dev,
            attach: Attach::Class(ClassId::new(1, 2)),
        };
        observed.qdiscs.insert(
            shard,
            Qdisc::Htb {
                major: 4,
                default_minor: 0xffff,
            },
        );
        for k in [ck("tg-down", 4, 5), ck("tg-down", 3, 5), ck("tg-up", 4, 5)] {
            observed.classes.insert(
                k,
                plan::Class {
                    parent: ClassId::new(k.id.major, 1),
                    rate: net_types::Rate::from_bps(1000).unwrap(),
                    ceil: net_types::Rate::from_bps(1000).unwrap(),
                    burst: None,
                    cburst: None,
                    prio: 0,
                    quantum: 1500,
                },
            );
        }
        let gone = removed_by(&[Change::DelQdisc { key: shard }], &observed);
        assert_eq!(gone, vec![(ck("tg-down", 4, 5), false)]);
        let gone = removed_by(&[Change::DelLink { name: dev }], &observed);
        assert_eq!(gone.len(), 2);
        let gone = removed_by(
            &[Change::DelClass {
                key: ck("tg-up", 4, 5),
            }],
            &observed,
        );
        assert_eq!(gone, vec![(ck("tg-up", 4, 5), true)]);
    }
}
