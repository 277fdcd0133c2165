//! Entry points for cargo-fuzz: the decoders of the packed rows (see the
//! `codec` module of the SQLite store). Each panics only if an invariant
//! breaks:
//!
//! ```ignore
//! fuzz_target!(|data: &[u8]| history::fuzzing::rows(data));
//! ```

use crate::sqlite::codec::{self, Span};
use crate::store::TenantTotal;
use accounting::{Sample, Slot};
use net_types::TenantId;

/// The first byte picks a decoder (samples of an hour row, of a day row,
/// in either format: the blob's first byte, 1 or 2,
/// realm totals, tenant totals, a day of hourly totals), the next four the
/// row's hour or day; the rest is the blob. Whatever decodes must encode
/// to bytes that decode to the same values.
pub fn rows(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    let Some((time, blob)) = rest.split_first_chunk::<4>() else {
        return;
    };
    let time = i64::from(i32::from_le_bytes(*time));
    match which % 5 {
        0 | 1 => {
            let span = if which % 5 == 0 {
                Span::Hour
            } else {
                Span::Day
            };
            samples(span, time, blob);
        }
        2 => realm_totals(blob),
        3 => tenant_totals(blob),
        _ => day_hours(blob),
    }
}

fn samples(span: Span, time: i64, blob: &[u8]) {
    let all = (Slot(i64::MIN), Slot(i64::MAX));
    let mut out: Vec<Sample> = Vec::new();
    if codec::decode_samples((span, time), TenantId(7), blob, all, &mut out).is_err() {
        return;
    }
    let first = time * span.slots();
    assert!(
        out.iter()
            .all(|s| (first..first + span.slots()).contains(&s.slot.0)),
        "a decoded sample lies outside its row"
    );
    assert!(
        out.is_sorted_by_key(|s| s.slot),
        "a decoded row is in slot order"
    );
    // Format 1, what older builds wrote, reads back the same.
    let mut v1 = Vec::new();
    codec::encode_samples_v1(span, time, &out, &mut v1);
    let mut back = Vec::new();
    codec::decode_samples((span, time), TenantId(7), &v1, all, &mut back)
        .expect("samples in format 1 decode");
    assert_eq!(back, out, "samples changed in a format 1 round trip");
    let mut again = Vec::new();
    codec::encode_samples(span, time, &out, &mut again);
    let mut back = Vec::new();
    codec::decode_samples((span, time), TenantId(7), &again, all, &mut back)
        .expect("re-encoded samples decode");
    assert_eq!(back, out, "samples changed in a round trip");
    // A slot filter keeps exactly the samples inside it.
    let (from, to) = (Slot(first + 3), Slot(first + 7));
    let mut some = Vec::new();
    codec::decode_samples((span, time), TenantId(7), &again, (from, to), &mut some)
        .expect("re-encoded samples decode");
    let inside: Vec<Sample> = out
        .iter()
        .filter(|s| s.slot >= from && s.slot < to)
        .copied()
        .collect();
    assert_eq!(some, inside, "the slot filter");
}

fn realm_totals(blob: &[u8]) {
    let mut out = Vec::new();
    if codec::decode_realm_totals(blob, "fuzz", &mut out).is_err() {
        return;
    }
    let mut again = Vec::new();
    codec::encode_realm_totals(&out, &mut again);
    let mut back = Vec::new();
    codec::decode_realm_totals(&again, "fuzz", &mut back).expect("re-encoded totals decode");
    assert_eq!(back, out, "realm totals changed in a round trip");
    // Adding them up never panics: it sums or refuses.
    let mut sum = Vec::new();
    let _ = codec::add_realm_totals(&mut sum, &out);
}

fn day_hours(blob: &[u8]) {
    let mut out = Vec::new();
    if codec::decode_day_hours(blob, "fuzz", 0..24, &mut out).is_err() {
        return;
    }
    assert!(
        out.iter().all(|t| t.hour < 24) && out.is_sorted_by_key(|t| t.hour),
        "decoded hours lie in the day, in order"
    );
    let mut again = Vec::new();
    codec::encode_day_hours(&out, &mut again);
    let mut back = Vec::new();
    codec::decode_day_hours(&again, "fuzz", 0..24, &mut back).expect("re-encoded hours decode");
    assert_eq!(back, out, "a day of hourly totals changed in a round trip");
    // An hour filter keeps exactly the entries inside it.
    let mut some = Vec::new();
    codec::decode_day_hours(&again, "fuzz", 3..7, &mut some).expect("re-encoded hours decode");
    let inside: Vec<_> = out
        .iter()
        .filter(|t| (3..7).contains(&t.hour))
        .copied()
        .collect();
    assert_eq!(some, inside, "the hour filter");
    // Adding them up never panics: it sums or refuses.
    let mut sum = Vec::new();
    for hour in out.chunk_by(|a, b| a.hour == b.hour) {
        let totals: Vec<_> = hour.iter().map(|t| t.total).collect();
        if codec::add_day_hours(&mut sum, hour[0].hour, &totals).is_err() {
            break;
        }
    }
}

fn tenant_totals(blob: &[u8]) {
    let mut out: Vec<TenantTotal> = Vec::new();
    if codec::decode_tenant_totals(blob, "fuzz", |t| out.push(t)).is_err() {
        return;
    }
    assert!(
        out.windows(2).all(|w| w[0].tenant <= w[1].tenant),
        "decoded tenants are in order"
    );
    let mut again = Vec::new();
    codec::encode_tenant_totals(&out, &mut again);
    let mut back = Vec::new();
    codec::decode_tenant_totals(&again, "fuzz", |t| back.push(t))
        .expect("re-encoded totals decode");
    assert_eq!(back, out, "tenant totals changed in a round trip");
    let mut sum = Vec::new();
    let _ = codec::add_tenant_totals(&mut sum, &out);
}

#[cfg(test)]
mod tests {
    #[test]
    fn any_bytes_are_safe_to_decode() {
        // A few hand-made inputs; the fuzz target explores the rest.
        let cases: [&[u8]; 11] = [
            &[4, 0, 0, 0, 0, 1, 5, 1, 1, 0, 9, 1],
            &[
                4, 0, 0, 0, 0, 1, 5, 2, 1, 0, 9, 1, 1, 1, 2, 2, 4, 1, 1, 0, 1, 1,
            ],
            &[4, 0, 0, 0, 0, 1, 30, 1, 1, 0, 9, 1],
            &[],
            &[0, 0, 0, 0, 0],
            &[0, 1, 0, 0, 0, 1, 2, 1, 0, 100, 1],
            &[1, 1, 0, 0, 0, 1, 0x90, 0x02, 1, 0, 5, 1],
            &[
                2, 0, 0, 0, 0, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
                1,
            ],
            &[
                3, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 1, 1, 1, 0x01, 1, 1, 1, 1,
            ],
            &[3, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0x0f, 1, 1, 1, 1],
            &[
                2, 0, 0, 0, 0, 1, 1, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x03, 1,
            ],
        ];
        for c in cases {
            super::rows(c);
        }
    }
}

#[cfg(test)]
mod mutations {
    use super::*;
    use accounting::{Band, Direction, Source, UsageKey};
    use net_types::RealmId;

    /// The fuzz target's checks over mutations of real rows in both forms
    /// (what `cargo fuzz run history_rows` does at length, here a few
    /// thousand cases in every test run): bits flipped, bytes cut, added
    /// and removed.
    #[test]
    fn mutated_rows_in_both_forms_never_panic() {
        let day = 20_000i64;
        let mut samples = Vec::new();
        for slot in 0..288 {
            for (realm, direction) in [(1, Direction::Down), (1, Direction::Up), (2, Direction::Up)]
            {
                if realm == 2 && slot % 3 != 0 {
                    continue;
                }
                let bytes = 5_000_000 + (slot as u64 * 7919 % 1_000_000);
                samples.push(Sample {
                    slot: Slot(day * 288 + slot),
                    key: UsageKey {
                        tenant: TenantId(7),
                        realm: RealmId(realm),
                        direction,
                        band: Band::Whole,
                        source: Source::Kernel,
                    },
                    bytes,
                    packets: bytes / 1_000 + slot as u64 % 7,
                });
            }
        }
        let mut rows = Vec::new();
        for v1 in [false, true] {
            let mut blob = Vec::new();
            if v1 {
                codec::encode_samples_v1(Span::Day, day, &samples, &mut blob);
            } else {
                codec::encode_samples(Span::Day, day, &samples, &mut blob);
            }
            let mut input = vec![1u8];
            input.extend((day as i32).to_le_bytes());
            input.extend(blob);
            rows.push(input);
        }
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        for round in 0..3_000 {
            let mut data = rows[round % 2].clone();
            for _ in 0..1 + next(4) {
                let at = 5 + next(data.len() - 5);
                match next(4) {
                    0 => data[at] ^= 1 << next(8),
                    1 => data.truncate(at),
                    2 => data.insert(at, next(256) as u8),
                    _ => {
                        data.remove(at);
                    }
                }
                if data.len() <= 6 {
                    break;
                }
            }
            rows_as_target(&data);
        }
    }

    fn rows_as_target(data: &[u8]) {
        rows(data);
        // The same blob as a day of hourly totals.
        let mut as_hours = data.to_vec();
        as_hours[0] = 4;
        rows(&as_hours);
    }
}
