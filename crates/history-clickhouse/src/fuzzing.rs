//! Entry points for `fuzz/` (target `clickhouse_answer`): what the store
//! reads from a server, which it does not control.

use crate::{attacks, http, read};

/// The first byte picks a reader: an HTTP answer (0), or a RowBinary
/// answer of one of the store's queries (1 samples, 2 sums, 3 hours,
/// 4 a state, 5 a frozen bill, 6 the quarantine, 7 marks, 8 coverage, 9 the guard's attacks);
/// the rest is the answer. Returns whether it was read: any bytes give an
/// answer or an error, never a panic.
pub fn answer(data: &[u8]) -> bool {
    let Some((&which, rest)) = data.split_first() else {
        return false;
    };
    match which % 10 {
        0 => http::read_response(rest).is_ok(),
        1 => read::decode_samples(rest).is_ok(),
        2 => read::decode_sums(rest, "fuzz").is_ok(),
        3 => read::decode_hours(rest).is_ok(),
        4 => read::decode_state(rest).is_ok(),
        5 => read::decode_frozen(rest, "fuzz").is_ok(),
        6 => read::decode_quarantine(rest).is_ok(),
        7 => read::decode_marks(rest).is_ok(),
        8 => read::decode_coverage(rest).is_ok(),
        _ => attacks::decode(rest).is_ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_of_every_kind_read_or_fail_without_panicking() {
        let chunked =
            b"\0HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        assert!(answer(chunked));
        let error = b"\0HTTP/1.1 500 Oops\r\nContent-Length: 9\r\n\r\nCode: 47,";
        assert!(!answer(error));
        let huge = b"\0HTTP/1.1 200 OK\r\nContent-Length: 99999999999\r\n\r\nabc";
        assert!(!answer(huge));
        assert!(!answer(
            b"\0HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffffff\r\n"
        ));
        // A sample row: slot, tenant, realm, direction, band, source, bytes, packets.
        let mut row = Vec::new();
        row.extend_from_slice(&7i64.to_le_bytes());
        row.extend_from_slice(&1u32.to_le_bytes());
        row.extend_from_slice(&2u16.to_le_bytes());
        row.extend_from_slice(&[1, 0, 0]);
        row.extend_from_slice(&10u64.to_le_bytes());
        row.extend_from_slice(&1u64.to_le_bytes());
        let mut one = vec![1];
        one.extend_from_slice(&row);
        assert!(answer(&one));
        one[1 + 8 + 4 + 2] = 9; // no such direction
        assert!(!answer(&one));
        // An attack row whose strings are cut short: an error.
        let mut attack = vec![9];
        attack.extend_from_slice(&1i64.to_le_bytes());
        attack.extend_from_slice(&2i64.to_le_bytes());
        attack.extend_from_slice(&[200, b'x']);
        assert!(!answer(&attack));
        for which in 0..10u8 {
            for len in 0..40 {
                let mut data = vec![which];
                data.extend((0..len).map(|i| (i * 37 + 11) as u8));
                let _ = answer(&data);
            }
        }
    }
}
