//! The collector's saved decoder states: one per worker, as
//! [`flow_wire::Decoder::save_state`] gives them, concatenated: a `u32`
//! count, then each state as a `u32` length and its bytes (big-endian).
//! [`decode_states`] reads what it can and stops at the first state cut
//! short; each state is then checked by `Decoder::load_state`.

/// Concatenates worker states.
pub fn encode_states(states: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + states.iter().map(|s| s.len() + 4).sum::<usize>());
    out.extend_from_slice(
        &u32::try_from(states.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    for s in states {
        out.extend_from_slice(&u32::try_from(s.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(s);
    }
    out
}

/// Splits what [`encode_states`] wrote.
pub fn decode_states(blob: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = blob.get(4..).unwrap_or(&[]);
    while let Some((len, tail)) = rest.split_first_chunk::<4>() {
        let len = u32::from_be_bytes(*len) as usize;
        let Some(state) = tail.get(..len) else { break };
        out.push(state.to_vec());
        rest = tail.get(len..).unwrap_or(&[]);
    }
    out
}

/// Fuzzing entry: any bytes as the collector's saved states, loaded into a
/// worker's decoder under small limits as a starting collector does. The
/// decoder must stay within its limits, save, and load again to the same
/// bytes.
pub fn fuzz_saved_states(data: &[u8]) {
    let limits = flow_wire::Limits {
        templates_per_exporter: 8,
        templates_per_domain: 4,
        fields_per_template: 64,
        template_bytes: 16 << 10,
    };
    let states = decode_states(data);
    assert_eq!(decode_states(&encode_states(&states)), states, "round trip");
    let decoder = crate::worker::decoder_from(&states, limits);
    assert!(decoder.template_bytes() <= limits.template_bytes);
    let saved = decoder.save_state();
    let again = flow_wire::Decoder::load_state(&saved).expect("a saved state loads");
    assert_eq!(again.save_state(), saved, "state does not round-trip");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decoder_states_round_trip() {
        let states = vec![vec![1, 2, 3], vec![], vec![9; 300]];
        assert_eq!(decode_states(&encode_states(&states)), states);
        assert!(decode_states(&[]).is_empty());
        assert_eq!(
            decode_states(&[0, 0, 0, 1, 0, 0, 0, 9, 1]),
            Vec::<Vec<u8>>::new()
        );
    }

    #[test]
    fn arbitrary_saved_states_never_panic() {
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..400usize {
            let data: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    x as u8
                })
                .collect();
            fuzz_saved_states(&data);
        }
    }
}
