//! Entry points for cargo-fuzz. Each panics only if an invariant breaks:
//!
//! ```ignore
//! fuzz_target!(|data: &[u8]| accounting::fuzzing::state(data));
//! ```

use crate::accountant::{Accountant, Config};
use crate::counter::Reading;
use crate::state::AccountantState;
use jiff::Timestamp;

/// Decodes `data` as a saved accountant state. Whatever decodes must
/// encode to bytes that decode to the same state; an accountant resumed
/// from it must take one more read ten seconds later (the same counters a
/// little higher) without panicking, and save a state that decodes.
pub fn state(data: &[u8]) {
    let Ok(state) = AccountantState::decode(data) else {
        return;
    };
    let again = AccountantState::decode(&state.encode()).expect("an encoded state decodes");
    assert_eq!(again, state, "the state changed in a round trip");
    let mut a = Accountant::resume(Config::default(), &state);
    let now = state
        .last_observe_ms
        .and_then(|ms| ms.checked_add(10_000))
        .and_then(|ms| Timestamp::from_millisecond(ms).ok());
    if let Some(now) = now {
        let readings: Vec<(_, Reading)> = state
            .counters
            .iter()
            .map(|c| {
                let r = Reading {
                    bytes: c.reading.bytes.wrapping_add(1_000),
                    packets: c.reading.packets.wrapping_add(1),
                    ..c.reading
                };
                (c.key, r)
            })
            .collect();
        // A key listed twice is refused, which is fine; a panic is not.
        let _ = a.observe(now, &readings);
    }
    let saved = a.state().encode();
    AccountantState::decode(&saved).expect("a saved state decodes");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::key::{Band, Direction, Source, UsageKey};
    use net_types::{RealmId, TenantId};

    #[test]
    fn a_real_state_and_damaged_copies_are_safe() {
        let k = UsageKey {
            tenant: TenantId(1),
            realm: RealmId(2),
            direction: Direction::Up,
            band: Band::Bulk,
            source: Source::Flow,
        };
        let mut a = Accountant::new(Config::default());
        let t = |s: i64| Timestamp::from_second(1_793_491_200 + s).unwrap();
        let r = |bytes| Reading {
            object: crate::ObjectIdentity(4),
            bytes,
            packets: bytes / 100,
        };
        a.observe(t(0), &[(k, r(0))]).unwrap();
        a.observe(t(10), &[(k, r(50_000))]).unwrap();
        let blob = a.state().encode();
        state(&blob);
        for i in 0..blob.len() {
            for bit in [1u8, 0x80] {
                let mut b = blob.clone();
                b[i] ^= bit;
                state(&b);
            }
            state(&blob[..i]);
        }
    }
}
