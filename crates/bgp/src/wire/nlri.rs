//! The prefix encoding shared by NLRI, withdrawn routes, MP_REACH_NLRI,
//! MP_UNREACH_NLRI and MRT RIB records: a length in bits followed by just
//! enough bytes to hold that many bits (RFC 4271 §4.3).

use std::net::{Ipv4Addr, Ipv6Addr};

use net_types::Prefix;

use crate::bytes::Reader;

/// Reads one prefix of the given family (`v6` selects IPv6). Trailing bits
/// past the length are cleared, since RFC 4271 says they are irrelevant.
/// Returns `None` for a length beyond the family's width or a truncated
/// address.
pub(crate) fn read_prefix(r: &mut Reader<'_>, v6: bool) -> Option<Prefix> {
    let len = r.u8()?;
    let width = if v6 { 128 } else { 32 };
    if len > width {
        return None;
    }
    let bytes = r.take((len as usize).div_ceil(8))?;
    let prefix = if v6 {
        let mut octets = [0u8; 16];
        octets[..bytes.len()].copy_from_slice(bytes);
        Prefix::V6(Ipv6Addr::from(octets), len)
    } else {
        let mut octets = [0u8; 4];
        octets[..bytes.len()].copy_from_slice(bytes);
        Prefix::V4(Ipv4Addr::from(octets), len)
    };
    Some(prefix.network())
}

/// Reads prefixes until `bytes` is used up; `None` if any is malformed.
pub(crate) fn read_prefixes(bytes: &[u8], v6: bool) -> Option<Vec<Prefix>> {
    let mut r = Reader::new(bytes);
    let mut out = Vec::new();
    while !r.is_empty() {
        out.push(read_prefix(&mut r, v6)?);
    }
    Some(out)
}

/// Appends one prefix in wire form.
pub(crate) fn write_prefix(out: &mut Vec<u8>, prefix: Prefix) {
    let prefix = prefix.network();
    let len = prefix.len();
    let n = (len as usize).div_ceil(8);
    out.push(len);
    match prefix {
        Prefix::V4(a, _) => out.extend_from_slice(&a.octets()[..n.min(4)]),
        Prefix::V6(a, _) => out.extend_from_slice(&a.octets()[..n.min(16)]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes_use_the_minimum_number_of_bytes() {
        let mut out = Vec::new();
        write_prefix(&mut out, Prefix::parse("10.1.0.0/17").unwrap());
        write_prefix(&mut out, Prefix::parse("0.0.0.0/0").unwrap());
        assert_eq!(out, [17, 10, 1, 0, 0]);
        let back = read_prefixes(&out, false).unwrap();
        assert_eq!(back[0].to_string(), "10.1.0.0/17");
        assert_eq!(back[1].to_string(), "0.0.0.0/0");
    }

    #[test]
    fn host_bits_are_cleared_and_bad_lengths_refused() {
        let p = read_prefixes(&[24, 192, 0, 2], false).unwrap();
        assert_eq!(p[0].to_string(), "192.0.2.0/24");
        let p = read_prefixes(&[7, 0xff], false).unwrap();
        assert_eq!(p[0].to_string(), "254.0.0.0/7");
        assert!(read_prefixes(&[33, 1, 2, 3, 4, 5], false).is_none());
        assert!(read_prefixes(&[24, 1, 2], false).is_none());
        assert!(read_prefixes(&[129], true).is_none());
        let p = read_prefixes(&[32, 0x20, 0x01, 0x0d, 0xb8], true).unwrap();
        assert_eq!(p[0].to_string(), "2001:db8::/32");
    }
}
