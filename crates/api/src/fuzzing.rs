//! The fuzz target's entry point (`fuzz/fuzz_targets/api_decode.rs`):
//! any bytes as every query string and body the API decodes.

use crate::decode::{json, query};
use crate::read::{ListParams, LookupParams, PeriodParams, RangeParams, TopParams, UsageParams};
use crate::write::{MoveBody, PatchBody};

/// The first byte chooses where the split between query string and body
/// falls; each part is decoded as every type that takes one. Nothing may
/// panic, and every refusal must be a 400, 413 or 422.
pub fn decode(data: &[u8]) {
    let Some((&cut, rest)) = data.split_first() else {
        return;
    };
    let at = (cut as usize * rest.len()) / 255;
    let (q, body) = rest.split_at(at.min(rest.len()));
    let q = String::from_utf8_lossy(q);
    let refused = |status: u16| assert!(matches!(status, 400 | 413 | 422), "refused with {status}");
    macro_rules! each_query {
        ($($t:ty),*) => {$(
            if let Err(p) = query::<$t>(&q) {
                refused(p.status);
            }
        )*};
    }
    each_query!(
        ListParams,
        LookupParams,
        PeriodParams,
        RangeParams,
        TopParams,
        UsageParams
    );
    for b in [body, rest] {
        if let Err(p) = json::<MoveBody>(b) {
            refused(p.status);
        }
        if let Err(p) = json::<PatchBody>(b) {
            refused(p.status);
        }
        // An agent's batch (issue 16): decoded, then checked as the
        // handler checks it.
        match json::<crate::agents::BatchBody>(b) {
            Ok(batch) => {
                if let Err(p) = crate::agents::valid(&batch) {
                    refused(p.status);
                }
            }
            Err(p) => refused(p.status),
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_entry_takes_anything() {
        for input in [
            &b""[..],
            b"\x00",
            b"\x80limit=5&sort=name{\"plan\": \"x\"}",
            b"\xffq=%ZZ&limit=-1",
            b"\x40{\"down\": {\"rate\": \"1mbit\"}, \"commit\": null}",
            b"\x10ip=::1&ip=2",
        ] {
            super::decode(input);
        }
    }
}
