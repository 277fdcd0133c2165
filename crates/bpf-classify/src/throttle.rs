//! The guard's `throttle` rung in the eBPF classifier: `tg_victims4`/`6`
//! (LPM tries, way . local address → the rung's rate in kbit/s), looked
//! up before the tenant, and the rates' classes in `tg_config`'s
//! throttle words ([`crate::config::THROTTLE`]). The tries are the
//! guard's alone (never the plan's); the words are the compiler's.

use net_types::{ClassId, Prefix, Rate};
use plan::guard::Way;
use std::net::{Ipv4Addr, Ipv6Addr};

/// The IPv4 trie.
pub const VICTIMS4: &str = "tg_victims4";
/// The IPv6 trie.
pub const VICTIMS6: &str = "tg_victims6";

/// A rate as the trie's value and the config words hold it: kbit/s
/// (rounded down; 0 is the end of the words, so at least 1).
pub fn rate_word(rate: Rate) -> u32 {
    u32::try_from(rate.bps() / 1000).unwrap_or(u32::MAX).max(1)
}

/// The throttle words of `tg_config` for the prepared rates' classes:
/// (index, value) pairs, rate then class, at most
/// [`crate::config::MAX_THROTTLE`] rates.
pub fn config_words(classes: &[(Rate, ClassId)]) -> Vec<(u32, u32)> {
    use crate::config::{MAX_THROTTLE, THROTTLE};
    classes
        .iter()
        .take(MAX_THROTTLE)
        .enumerate()
        .flat_map(|(i, (rate, class))| {
            let at = THROTTLE + 2 * i as u32;
            [
                (at, rate_word(*rate)),
                (at + 1, (class.major as u32) << 16 | class.minor as u32),
            ]
        })
        .collect()
}

fn head(way: Way) -> [u8; 4] {
    match way {
        Way::In => [0, 0, 0, 0],
        Way::Out => [1, 0, 0, 0],
    }
}

/// An IPv4 victim's key: (prefix length, data).
pub fn key4(way: Way, p: Prefix) -> Option<(u32, [u8; 8])> {
    let Prefix::V4(a, len) = p.network() else {
        return None;
    };
    let mut d = [0u8; 8];
    d[..4].copy_from_slice(&head(way));
    d[4..].copy_from_slice(&a.octets());
    Some((32 + len as u32, d))
}

/// An IPv6 victim's key.
pub fn key6(way: Way, p: Prefix) -> Option<(u32, [u8; 20])> {
    let Prefix::V6(a, len) = p.network() else {
        return None;
    };
    let mut d = [0u8; 20];
    d[..4].copy_from_slice(&head(way));
    d[4..].copy_from_slice(&a.octets());
    Some((32 + len as u32, d))
}

fn read_head(len: u32, max: u32, d: &[u8]) -> Option<(Way, u8)> {
    let plen = len.checked_sub(32).filter(|l| *l <= max)? as u8;
    let way = match d[..4] {
        [0, 0, 0, 0] => Way::In,
        [1, 0, 0, 0] => Way::Out,
        _ => return None,
    };
    Some((way, plen))
}

/// An IPv4 key read back.
pub fn read4(len: u32, d: [u8; 8]) -> Option<(Way, Prefix)> {
    let (way, plen) = read_head(len, 32, &d)?;
    let a: [u8; 4] = d[4..].try_into().ok()?;
    Some((way, Prefix::V4(Ipv4Addr::from(a), plen).network()))
}

/// An IPv6 key read back.
pub fn read6(len: u32, d: [u8; 20]) -> Option<(Way, Prefix)> {
    let (way, plen) = read_head(len, 128, &d)?;
    let a: [u8; 16] = d[4..].try_into().ok()?;
    Some((way, Prefix::V6(Ipv6Addr::from(a), plen).network()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_words_pair_rates_with_classes() {
        let p = Prefix::parse("203.0.113.7/32").unwrap();
        let (len, d) = key4(Way::Out, p).unwrap();
        assert_eq!((len, d), (64, [1, 0, 0, 0, 203, 0, 113, 7]));
        assert_eq!(read4(len, d), Some((Way::Out, p)));
        let p6 = Prefix::parse("2001:db8::/48").unwrap();
        let (len, d) = key6(Way::In, p6).unwrap();
        assert_eq!(read6(len, d), Some((Way::In, p6)));
        assert_eq!(key4(Way::In, p6), None);
        let r = Rate::from_bps(2_000_000).unwrap();
        assert_eq!(
            config_words(&[(r, ClassId::new(1, 0xfffe))]),
            [(96, 2000), (97, 0x1fffe)]
        );
        assert_eq!(rate_word(Rate::from_bps(999).unwrap()), 1);
    }
}
