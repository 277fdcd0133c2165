use super::*;
use accounting::{Band, Direction, SlotStatus, Source};
use net_types::{RealmId, TenantId};

fn key(tenant: u32) -> UsageKey {
    UsageKey {
        tenant: TenantId(tenant),
        realm: RealmId(1),
        direction: Direction::Down,
        band: Band::Whole,
        source: Source::default(),
    }
}

fn sample(slot: i64, tenant: u32, bytes: u64) -> Sample {
    Sample {
        slot: Slot(slot),
        key: key(tenant),
        bytes,
        packets: bytes / 100,
    }
}

fn cov(slot: i64) -> SlotCoverage {
    SlotCoverage {
        slot: Slot(slot),
        status: SlotStatus::Measured,
    }
}

const S: i64 = 6_000_000;
const K: u64 = SEQUENCES_PER_SLOT;

fn t() -> Timestamp {
    Timestamp::from_second(1_800_000_000).unwrap()
}

#[test]
fn samples_added_after_a_slot_shipped_go_as_their_difference_once() {
    let mut l = Ledger::new();
    let b = l
        .first("hv1", Slot(S), &[sample(S, 1, 1000)], &[cov(S)])
        .unwrap();
    assert_eq!(b.sequence, S as u64 * K);
    assert_eq!(b.samples, vec![sample(S, 1, 1000)]);
    assert!(l.acknowledged(S as u64 * K));
    // Nothing added: nothing to ship.
    assert!(l
        .difference("hv1", &[sample(S, 1, 1000)], &[cov(S)])
        .is_none());
    // A flow record adds 500 bytes to the shipped slot, and a new key.
    let now = [sample(S, 1, 1500), sample(S, 2, 300)];
    let b = l.difference("hv1", &now, &[cov(S)]).unwrap().clone();
    assert_eq!(b.sequence, S as u64 * K + 1);
    assert_eq!(b.samples, vec![sample(S, 1, 500), sample(S, 2, 300)]);
    // Read again before the answer: the pending batch goes first, nothing new.
    assert!(l.difference("hv1", &now, &[cov(S)]).is_none());
    assert!(l.acknowledged(b.sequence));
    assert!(l.difference("hv1", &now, &[cov(S)]).is_none());
    // The next slot's first batch keeps its own number.
    let b = l.first("hv1", Slot(S + 1), &[], &[cov(S + 1)]).unwrap();
    assert_eq!(b.sequence, (S as u64 + 1) * K);
}

#[test]
fn the_pending_batch_survives_a_restart_and_a_landed_one_is_not_sent_again() {
    let mut l = Ledger::new();
    let seq = l
        .first("hv1", Slot(S), &[sample(S, 1, 1000)], &[cov(S)])
        .unwrap()
        .sequence;
    // Saved before it was sent; the agent dies before the answer.
    let saved = serde_json::to_string(&l).unwrap();
    let mut back: Ledger = serde_json::from_str(&saved).unwrap();
    assert_eq!(back, l);
    // The central did not get it: it is sent again as it was.
    assert_eq!(back.resume(None), Resume::Agreed);
    assert_eq!(back.pending().unwrap().sequence, seq);
    // The central got it: done, and later samples still diff against it.
    let mut back: Ledger = serde_json::from_str(&saved).unwrap();
    assert_eq!(back.resume(Some(seq)), Resume::Agreed);
    assert!(back.pending().is_none());
    let b = back
        .difference("hv1", &[sample(S, 1, 1200)], &[cov(S)])
        .unwrap();
    assert_eq!(b.samples, vec![sample(S, 1, 200)]);
}

#[test]
fn a_lost_ledger_takes_over_the_central_standing_and_ships_after_it() {
    // Agents before the ledger used the slot's index.
    let mut l = Ledger::new();
    assert_eq!(
        l.resume(Some(S as u64)),
        Resume::TookOver { through: Slot(S) }
    );
    assert_eq!(l.through(), Some(Slot(S)));
    // Its late samples cannot be told apart from what was shipped.
    assert_eq!(l.late_window(), None);
    assert!(l.first("hv1", Slot(S), &[], &[]).is_none());
    let b = l.first("hv1", Slot(S + 1), &[], &[cov(S + 1)]).unwrap();
    assert_eq!(b.sequence, (S as u64 + 1) * K);
    assert_eq!(l.late_window(), Some((Slot(S + 1), Slot(S + 2))));
    // With the ledger's numbering.
    let mut l = Ledger::new();
    assert_eq!(
        l.resume(Some(S as u64 * K + 3)),
        Resume::TookOver { through: Slot(S) }
    );
    assert_eq!(l.last_sequence(), Some(S as u64 * K + 3));
}

#[test]
fn a_central_behind_the_ledger_is_reported_and_nothing_is_guessed() {
    let mut l = Ledger::new();
    let seq = l.first("hv1", Slot(S), &[], &[cov(S)]).unwrap().sequence;
    l.acknowledged(seq);
    assert_eq!(
        l.resume(None),
        Resume::CentralBehind {
            central: None,
            ledger: seq
        }
    );
    assert_eq!(l.through(), Some(Slot(S)));
}

#[test]
fn a_refused_batch_is_parked_and_the_next_slots_go_on() {
    let mut l = Ledger::new();
    l.first("hv1", Slot(S), &[sample(S, 1, 1000)], &[cov(S)]);
    let p = l.park("tenant 1: bytes overflow", t()).unwrap().clone();
    assert_eq!(p.sequence, S as u64 * K);
    assert_eq!(p.slots, vec![Slot(S)]);
    assert_eq!((p.samples, p.bytes), (1, 1000));
    assert!(l.pending().is_none());
    assert_eq!(l.parked_total(), 1);
    // Parked samples are not shipped again by the difference.
    assert!(l
        .difference("hv1", &[sample(S, 1, 1000)], &[cov(S)])
        .is_none());
    assert!(l.first("hv1", Slot(S + 1), &[], &[cov(S + 1)]).is_some());
    for _ in 0..PARKED_KEPT + 5 {
        l.park("again", t());
        let s = l.through().unwrap().0 + 1;
        l.first("hv1", Slot(s), &[], &[cov(s)]);
    }
    assert_eq!(l.parked().len(), PARKED_KEPT);
    assert_eq!(l.parked_total(), PARKED_KEPT as u64 + 6);
}

#[test]
fn late_samples_older_than_the_window_and_shrinking_ones_are_left() {
    let mut l = Ledger::new();
    for s in S..S + LATE_SLOTS + 2 {
        let seq = l
            .first("hv1", Slot(s), &[sample(s, 1, 100)], &[cov(s)])
            .unwrap()
            .sequence;
        l.acknowledged(seq);
    }
    let (from, to) = l.late_window().unwrap();
    assert_eq!(to.0 - from.0, LATE_SLOTS);
    // Added to a slot before the window: not read, not shipped; a sample
    // that shrank (retention) is not taken back.
    let current = [
        sample(S, 1, 900),
        sample(from.0, 1, 50),
        sample(from.0 + 1, 1, 160),
    ];
    let b = l.difference("hv1", &current, &[]).unwrap();
    assert_eq!(b.samples, vec![sample(from.0 + 1, 1, 60)]);
    // The ledger keeps only the window.
    let json = serde_json::to_value(&l).unwrap();
    assert_eq!(
        json["shipped"].as_array().unwrap().len(),
        LATE_SLOTS as usize
    );
}

#[test]
fn a_gap_covered_after_the_fact_ships_and_sequences_never_pass_the_next_slot() {
    let mut l = Ledger::new();
    let seq = l.first("hv1", Slot(S), &[], &[cov(S)]).unwrap().sequence;
    l.acknowledged(seq);
    let seq = l
        .first("hv1", Slot(S + 2), &[], &[cov(S + 2)])
        .unwrap()
        .sequence;
    l.acknowledged(seq);
    // S + 1 was a gap; the accountant estimates it later.
    let b = l
        .difference(
            "hv1",
            &[sample(S + 1, 1, 70)],
            &[cov(S), cov(S + 1), cov(S + 2)],
        )
        .unwrap();
    assert_eq!(b.coverage, vec![cov(S + 1)]);
    assert_eq!(b.samples, vec![sample(S + 1, 1, 70)]);
    let mut seq = b.sequence;
    l.acknowledged(seq);
    // Differences use up the slot's numbers, then wait for the next slot.
    let mut bytes = 70;
    while let Some(b) = l.difference("hv1", &[sample(S + 1, 1, bytes + 1)], &[]) {
        seq = b.sequence;
        l.acknowledged(seq);
        bytes += 1;
    }
    assert_eq!(seq, (S as u64 + 3) * K - 1);
    let b = l.first("hv1", Slot(S + 3), &[], &[cov(S + 3)]).unwrap();
    assert_eq!(b.sequence, (S as u64 + 3) * K);
}

/// The central's side of the model: the store's `add`, which refuses a
/// sequence at or below the writer's last.
#[derive(Default)]
struct Central {
    last: Option<u64>,
    bytes: BTreeMap<Slot, u64>,
}

impl Central {
    fn add(&mut self, b: &ShippedBatch) -> u64 {
        if self.last.is_none_or(|l| b.sequence > l) {
            self.last = Some(b.sequence);
            for s in &b.samples {
                *self.bytes.entry(s.slot).or_default() += s.bytes;
            }
        }
        self.last.unwrap()
    }
}

#[test]
fn crashes_and_lost_answers_anywhere_leave_the_central_equal_to_the_agent() {
    // A small deterministic generator: no dependency for one test.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move |n: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % n
    };
    for round in 0..200 {
        let mut local: BTreeMap<Slot, u64> = BTreeMap::new();
        let mut closed: Vec<Slot> = Vec::new();
        let mut central = Central::default();
        let mut ledger = Ledger::new();
        let mut disk = serde_json::to_string(&ledger).unwrap();
        let mut slot = S;
        for _ in 0..60 {
            match next(6) {
                // The accountant closes a slot.
                0 => {
                    slot += 1;
                    local.insert(Slot(slot), 1000 + next(1000));
                    closed.push(Slot(slot));
                }
                // The flow collector adds to a recent slot.
                1 | 2 => {
                    if let Some(s) = closed.last() {
                        let late = Slot(s.0 - next(3) as i64);
                        if local.contains_key(&late) {
                            *local.get_mut(&late).unwrap() += 1 + next(500);
                        }
                    }
                }
                // The agent is killed: what is on disk is all it has.
                3 => {
                    ledger = serde_json::from_str(&disk).unwrap();
                    ledger.resume(central.last);
                    disk = serde_json::to_string(&ledger).unwrap();
                }
                // A step of the shipper.
                _ => {
                    let samples: Vec<Sample> =
                        local.iter().map(|(s, b)| sample(s.0, 1, *b)).collect();
                    let coverage: Vec<SlotCoverage> = closed.iter().map(|s| cov(s.0)).collect();
                    if ledger.pending().is_none() {
                        let through = ledger.through();
                        let first = closed.iter().find(|s| through.is_none_or(|t| **s > t));
                        // The late window before a first batch moves it.
                        let made = ledger.difference("hv1", &samples, &coverage).is_some()
                            || first.is_some_and(|s| {
                                ledger.first("hv1", *s, &samples, &coverage).is_some()
                            });
                        if !made {
                            continue;
                        }
                        disk = serde_json::to_string(&ledger).unwrap();
                    }
                    let batch = ledger.pending().unwrap().clone();
                    // Lost on the way, lost on the way back, or answered.
                    match next(3) {
                        0 => {}
                        1 => {
                            central.add(&batch);
                        }
                        _ => {
                            let last = central.add(&batch);
                            assert!(ledger.acknowledged(last));
                            disk = serde_json::to_string(&ledger).unwrap();
                        }
                    }
                }
            }
        }
        // Drain: no more crashes or losses.
        ledger.resume(central.last);
        let samples: Vec<Sample> = local.iter().map(|(s, b)| sample(s.0, 1, *b)).collect();
        let coverage: Vec<SlotCoverage> = closed.iter().map(|s| cov(s.0)).collect();
        loop {
            if let Some(b) = ledger.pending().cloned() {
                let last = central.add(&b);
                ledger.acknowledged(last);
                continue;
            }
            let through = ledger.through();
            let first = closed.iter().find(|s| through.is_none_or(|t| **s > t));
            let made = ledger.difference("hv1", &samples, &coverage).is_some()
                || first.is_some_and(|s| ledger.first("hv1", *s, &samples, &coverage).is_some());
            if !made {
                break;
            }
        }
        assert_eq!(central.bytes, local, "round {round}");
    }
}
