//! Realm prefixes as nftables can hold them: disjoint, and only where the
//! realm differs from the default.
//!
//! Realms come from two places, the policy's prefix lists and the best
//! routes of a BGP table, and both may nest: a /16 can be national with an
//! international /24 inside it. A lookup must give the realm of the longest
//! matching prefix, but an nftables interval map refuses overlapping
//! elements and has no notion of "longest". So the prefixes are flattened:
//! every address gets the realm of its longest match, runs of addresses
//! with the same realm are merged, runs in the default realm are dropped
//! (a miss in the map leaves the default in place), and what remains is cut
//! back into as few prefixes as cover it exactly.
//!
//! A full table flattens to far fewer elements than it has routes, because
//! neighbouring routes usually share a realm; that is what lets realms from
//! a million routes fit in the kernel.

use net_types::{Prefix, RealmId};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Where a realm prefix came from. When the policy and a route name the
/// same prefix, the policy wins: it is the operator's explicit word.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Source {
    /// A best route from BGP or an MRT dump.
    Route,
    /// A prefix list in the policy.
    Policy,
}

/// Flattens `(prefix, realm)` pairs of one or both families into disjoint
/// prefixes whose realm is not `default`, each family in address order.
pub fn flatten(
    entries: impl IntoIterator<Item = (Prefix, RealmId, Source)>,
    default: RealmId,
) -> Vec<(Prefix, RealmId)> {
    // One entry per prefix, the policy's when both name it.
    let mut unique: BTreeMap<(bool, u128, u8), (Source, RealmId)> = BTreeMap::new();
    for (p, realm, source) in entries {
        let p = p.network();
        let key = (!p.is_ipv4(), p.start_bits(), p.len());
        match unique.get(&key) {
            Some((s, _)) if *s > source => {}
            _ => {
                unique.insert(key, (source, realm));
            }
        }
    }
    let mut out = Vec::new();
    for v6 in [false, true] {
        // Sorted by start, then shorter first: a covering prefix comes
        // before the prefixes inside it.
        let family = unique.range((v6, 0, 0)..=(v6, u128::MAX, u8::MAX)).map(
            |(&(_, start, len), &(_, realm))| {
                let bits = if v6 { 128 } else { 32 };
                (start, end_of(start, len, bits), realm)
            },
        );
        let runs = merge(segments(family), default);
        for (start, end, realm) in runs {
            for p in cidrs(start, end, v6) {
                out.push((p, realm));
            }
        }
    }
    out
}

fn end_of(start: u128, len: u8, bits: u8) -> u128 {
    let host = u32::from(bits - len);
    if host == 0 {
        start
    } else {
        start | (u128::MAX >> (128 - host))
    }
}

/// Splits nested ranges into disjoint segments, each with the realm of the
/// innermost range covering it.
fn segments(sorted: impl Iterator<Item = (u128, u128, RealmId)>) -> Vec<(u128, u128, RealmId)> {
    let mut out = Vec::new();
    // The ranges covering the cursor, innermost last, and the first address
    // not yet emitted.
    let mut open: Vec<(u128, RealmId)> = Vec::new();
    let mut cursor: u128 = 0;
    let mut started = false;
    // Emits the rest of every open range that ends before `until`.
    let close = |open: &mut Vec<(u128, RealmId)>,
                 cursor: &mut u128,
                 started: &mut bool,
                 out: &mut Vec<(u128, u128, RealmId)>,
                 until: Option<u128>| {
        while let Some(&(end, realm)) = open.last() {
            if until.is_some_and(|u| end >= u) {
                break;
            }
            if *started && *cursor <= end {
                out.push((*cursor, end, realm));
            }
            open.pop();
            match end.checked_add(1) {
                Some(next) => *cursor = next,
                None => *started = false,
            }
        }
    };
    for (start, end, realm) in sorted {
        close(&mut open, &mut cursor, &mut started, &mut out, Some(start));
        if let Some(&(_, outer)) = open.last() {
            if started && cursor < start {
                out.push((cursor, start - 1, outer));
            }
        }
        cursor = start;
        started = true;
        open.push((end, realm));
    }
    close(&mut open, &mut cursor, &mut started, &mut out, None);
    out
}

/// Drops default-realm segments and joins touching segments of one realm.
fn merge(segments: Vec<(u128, u128, RealmId)>, default: RealmId) -> Vec<(u128, u128, RealmId)> {
    let mut out: Vec<(u128, u128, RealmId)> = Vec::new();
    for (start, end, realm) in segments {
        if realm == default {
            continue;
        }
        match out.last_mut() {
            Some(last) if last.2 == realm && last.1.checked_add(1) == Some(start) => last.1 = end,
            _ => out.push((start, end, realm)),
        }
    }
    out
}

/// The fewest prefixes that cover `start..=end` exactly.
fn cidrs(mut start: u128, end: u128, v6: bool) -> Vec<Prefix> {
    let bits: u32 = if v6 { 128 } else { 32 };
    let mut out = Vec::new();
    loop {
        // The largest block aligned at `start` that does not pass `end`.
        let mut host = if start == 0 {
            bits
        } else {
            start.trailing_zeros().min(bits)
        };
        while host > 0
            && start
                .checked_add(span(host))
                .is_none_or(|next| next - 1 > end)
        {
            host -= 1;
        }
        let len = (bits - host) as u8;
        if host >= 128 {
            // All of IPv6: the one block whose size does not fit in u128.
            out.push(Prefix::V6(Ipv6Addr::UNSPECIFIED, 0));
            return out;
        }
        out.push(if v6 {
            Prefix::V6(Ipv6Addr::from(start), len)
        } else {
            Prefix::V4(Ipv4Addr::from(start as u32), len)
        });
        match start.checked_add(span(host)) {
            Some(next) if next <= end => start = next,
            _ => return out,
        }
    }
}

/// 2^host, saturating at the top of u128 (the one /0 of IPv6).
fn span(host: u32) -> u128 {
    if host >= 128 {
        u128::MAX
    } else {
        1u128 << host
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Prefix {
        Prefix::parse(s).unwrap()
    }

    fn flat(entries: &[(&str, u16)], default: u16) -> Vec<(String, u16)> {
        flatten(
            entries
                .iter()
                .map(|(s, r)| (p(s), RealmId(*r), Source::Route)),
            RealmId(default),
        )
        .into_iter()
        .map(|(p, r)| (p.to_string(), r.0))
        .collect()
    }

    #[test]
    fn a_hole_of_the_default_realm_is_cut_out() {
        assert_eq!(
            flat(&[("10.0.0.0/8", 1), ("10.1.0.0/16", 2)], 2),
            [
                ("10.0.0.0/16".into(), 1),
                ("10.2.0.0/15".into(), 1),
                ("10.4.0.0/14".into(), 1),
                ("10.8.0.0/13".into(), 1),
                ("10.16.0.0/12".into(), 1),
                ("10.32.0.0/11".into(), 1),
                ("10.64.0.0/10".into(), 1),
                ("10.128.0.0/9".into(), 1),
            ]
        );
    }

    #[test]
    fn neighbours_in_one_realm_merge_and_default_routes_vanish() {
        assert_eq!(
            flat(
                &[
                    ("192.0.2.0/25", 1),
                    ("192.0.2.128/25", 1),
                    ("198.51.100.0/24", 2),
                    ("203.0.113.0/24", 3),
                ],
                2
            ),
            [("192.0.2.0/24".into(), 1), ("203.0.113.0/24".into(), 3)]
        );
    }

    #[test]
    fn nesting_three_deep_keeps_the_longest_match() {
        let got = flat(
            &[("0.0.0.0/0", 1), ("100.64.0.0/10", 2), ("100.64.1.0/24", 1)],
            2,
        );
        // Everything but 100.64.0.0/10 is realm 1, and so is 100.64.1.0/24.
        assert!(got.contains(&("100.64.1.0/24".into(), 1)));
        assert!(got.contains(&("0.0.0.0/2".into(), 1)));
        assert!(got.contains(&("128.0.0.0/1".into(), 1)));
        assert!(!got.iter().any(|(s, _)| s.starts_with("100.64.0.0")));
    }

    #[test]
    fn the_policy_wins_over_a_route_for_the_same_prefix() {
        let got = flatten(
            [
                (p("192.0.2.0/24"), RealmId(1), Source::Policy),
                (p("192.0.2.0/24"), RealmId(3), Source::Route),
            ],
            RealmId(2),
        );
        assert_eq!(got, [(p("192.0.2.0/24"), RealmId(1))]);
    }

    #[test]
    fn ipv6_to_the_top_of_the_space() {
        assert_eq!(
            flat(&[("::/0", 1), ("2001:db8::/32", 2)], 2).len(),
            flat(&[("::/0", 1), ("2001:db8::/32", 2)], 2)
                .iter()
                .filter(|(_, r)| *r == 1)
                .count()
        );
        assert_eq!(flat(&[("::/0", 1)], 2), [("::/0".into(), 1)]);
        assert_eq!(flat(&[("0.0.0.0/0", 1)], 2), [("0.0.0.0/0".into(), 1)]);
        assert_eq!(
            flat(&[("255.255.255.255/32", 1)], 2),
            [("255.255.255.255/32".into(), 1)]
        );
    }

    /// Against a brute force over a small address space: every address of
    /// 10.0.0.0/24 gets the realm of its longest match.
    #[test]
    fn every_address_gets_its_longest_match() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..200 {
            let mut entries = Vec::new();
            for _ in 0..(next() % 12) {
                let len = 24 + (next() % 9) as u8;
                let host = (next() % 256) as u32;
                let addr = u32::from(Ipv4Addr::new(10, 0, 0, 0)) | host;
                let pfx = Prefix::V4(Ipv4Addr::from(addr), len).network();
                entries.push((pfx, RealmId((next() % 3) as u16)));
            }
            let out = flatten(
                entries.iter().map(|(p, r)| (*p, *r, Source::Route)),
                RealmId(0),
            );
            for host in 0..256u32 {
                let a = std::net::IpAddr::V4(Ipv4Addr::from(
                    u32::from(Ipv4Addr::new(10, 0, 0, 0)) | host,
                ));
                let want = entries
                    .iter()
                    .filter(|(p, _)| p.contains(a))
                    .max_by_key(|(p, _)| p.len())
                    .map_or(RealmId(0), |(_, r)| *r);
                let got = out
                    .iter()
                    .filter(|(p, _)| p.contains(a))
                    .map(|(_, r)| *r)
                    .collect::<Vec<_>>();
                assert!(got.len() <= 1, "overlap at {a}: {out:?}");
                assert_eq!(
                    got.first().copied().unwrap_or(RealmId(0)),
                    want,
                    "{a} in {entries:?} -> {out:?}"
                );
            }
        }
    }
}
