//! Longest-prefix match from an address to a table entry, sized to the
//! configuration.
//!
//! A `prefix-map` table starts with a 16 MiB direct level for IPv4, right
//! for thousands of tenant prefixes but not for a site that protects two
//! networks: building and dropping one costs about 1.5 ms (glibc hands the
//! second allocation back from the heap, so `calloc` must clear all 16 MiB),
//! which a detector rebuilt on every policy reload, restore or fuzzing run
//! pays each time. Up to [`FEW`] prefixes of a family are kept in a list
//! instead, longest first, and scanned.

use std::net::{Ipv4Addr, Ipv6Addr};

use prefix_map::{PrefixError, PrefixMap4, PrefixMap6};

/// Up to this many prefixes of one family live in a list.
///
/// A scan of 32 masked compares costs about what one trie walk does, and no
/// real configuration with fewer tenants notices either.
pub(crate) const FEW: usize = 32;

/// A few prefixes, longest first, with addresses left-aligned in 128 bits
/// so that one scan serves both families.
#[derive(Clone, Debug)]
pub(crate) struct FewPrefixes(Vec<(u128, u8, u32)>);

impl FewPrefixes {
    /// `items` as `(left-aligned address, length, value)`; when a prefix
    /// appears twice the later value wins, as with `PrefixMap::build`.
    fn new(items: Vec<(u128, u8, u32)>) -> FewPrefixes {
        let mut v: Vec<(u128, u8, u32)> = Vec::with_capacity(items.len());
        for (a, l, e) in items {
            let a = a & mask(l);
            match v.iter_mut().find(|(b, m, _)| *b == a && *m == l) {
                Some(slot) => slot.2 = e,
                None => v.push((a, l, e)),
            }
        }
        // Longest first: the first match is the longest one.
        v.sort_by_key(|x| std::cmp::Reverse(x.1));
        FewPrefixes(v)
    }

    #[inline]
    fn lookup(&self, addr: u128) -> Option<u32> {
        self.0
            .iter()
            .find(|(a, l, _)| addr & mask(*l) == *a)
            .map(|&(_, _, e)| e)
    }
}

#[inline]
fn mask(len: u8) -> u128 {
    match len {
        0 => 0,
        l if l >= 128 => u128::MAX,
        l => u128::MAX << (128 - u32::from(l)),
    }
}

/// The IPv4 table.
#[derive(Clone)]
pub(crate) enum Table4 {
    Few(FewPrefixes),
    Map(Box<PrefixMap4<u32>>),
}

/// The IPv6 table.
#[derive(Clone)]
pub(crate) enum Table6 {
    Few(FewPrefixes),
    Map(Box<PrefixMap6<u32>>),
}

impl Table4 {
    pub(crate) fn build(items: Vec<(Ipv4Addr, u8, u32)>) -> Result<Table4, PrefixError> {
        if items.len() > FEW {
            return PrefixMap4::build(items).map(|m| Table4::Map(Box::new(m)));
        }
        if items.iter().any(|&(_, l, _)| l > 32) {
            // Let the map name the error, as for a large table.
            return PrefixMap4::build(items).map(|m| Table4::Map(Box::new(m)));
        }
        Ok(Table4::Few(FewPrefixes::new(
            items
                .into_iter()
                .map(|(a, l, e)| (u128::from(u32::from(a)) << 96, l, e))
                .collect(),
        )))
    }

    #[inline]
    pub(crate) fn lookup(&self, a: Ipv4Addr) -> Option<u32> {
        match self {
            Table4::Few(f) => f.lookup(u128::from(u32::from(a)) << 96),
            Table4::Map(m) => m.lookup(a),
        }
    }
}

impl Table6 {
    pub(crate) fn build(items: Vec<(Ipv6Addr, u8, u32)>) -> Result<Table6, PrefixError> {
        if items.len() > FEW || items.iter().any(|&(_, l, _)| l > 128) {
            return PrefixMap6::build(items).map(|m| Table6::Map(Box::new(m)));
        }
        Ok(Table6::Few(FewPrefixes::new(
            items
                .into_iter()
                .map(|(a, l, e)| (u128::from(a), l, e))
                .collect(),
        )))
    }

    #[inline]
    pub(crate) fn lookup(&self, a: Ipv6Addr) -> Option<u32> {
        match self {
            Table6::Few(f) => f.lookup(u128::from(a)),
            Table6::Map(m) => m.lookup(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list and the map answer alike for every address of a small,
    /// nested configuration (equal prefixes: the later value wins).
    #[test]
    fn the_list_answers_as_the_map_does() {
        let v4 = vec![
            (Ipv4Addr::new(198, 51, 100, 0), 24, 0),
            (Ipv4Addr::new(198, 51, 100, 0), 25, 1),
            (Ipv4Addr::new(198, 51, 100, 64), 26, 2),
            (Ipv4Addr::new(198, 51, 100, 77), 32, 3),
            (Ipv4Addr::new(198, 51, 100, 0), 25, 4),
            (Ipv4Addr::new(0, 0, 0, 0), 0, 5),
        ];
        let few = Table4::build(v4.clone()).unwrap();
        assert!(matches!(few, Table4::Few(_)));
        let map = PrefixMap4::build(v4).unwrap();
        for last in 0..=255u8 {
            for third in [99u8, 100, 101] {
                let a = Ipv4Addr::new(198, 51, third, last);
                assert_eq!(few.lookup(a), map.lookup(a), "{a}");
            }
        }
        assert_eq!(few.lookup(Ipv4Addr::new(198, 51, 100, 1)), Some(4));

        let v6 = vec![
            ("2001:db8::".parse().unwrap(), 32, 0),
            ("2001:db8:1::".parse().unwrap(), 48, 1),
            ("2001:db8:1::1".parse().unwrap(), 128, 2),
        ];
        let few = Table6::build(v6.clone()).unwrap();
        let map = PrefixMap6::build(v6).unwrap();
        for a in [
            "2001:db8::5",
            "2001:db8:1::1",
            "2001:db8:1::2",
            "2001:db9::",
            "::",
        ] {
            let a: Ipv6Addr = a.parse().unwrap();
            assert_eq!(few.lookup(a), map.lookup(a), "{a}");
        }
    }

    #[test]
    fn many_prefixes_use_the_map_and_bad_lengths_are_refused() {
        let many: Vec<_> = (0..=FEW as u8)
            .map(|i| (Ipv4Addr::new(10, i, 0, 0), 16, u32::from(i)))
            .collect();
        assert!(matches!(Table4::build(many).unwrap(), Table4::Map(_)));
        assert!(Table4::build(vec![(Ipv4Addr::UNSPECIFIED, 33, 0)]).is_err());
        assert!(Table6::build(vec![(Ipv6Addr::UNSPECIFIED, 129, 0)]).is_err());
    }
}
