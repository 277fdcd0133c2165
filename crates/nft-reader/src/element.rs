//! Decoding one map element back into the plan's key and value.
//!
//! Every function here is strict about values and liberal only about
//! spellings nft is known to use for the same value (a bare address for a
//! full-length prefix, a bare class for a one-class range). A value that
//! cannot be what tollgate rendered is an error, never a best guess: a guess
//! would make observed state equal desired state when it is not.

use crate::one_key;
use net_types::{ClassId, IfName, Prefix};
use plan::{MapKey, MapKind, MapValue};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

#[derive(Clone, Copy)]
enum Family {
    V4,
    V6,
}

/// Decodes `[key, value]` for a map of `kind`.
pub(crate) fn decode(elem: &Value, kind: MapKind) -> Result<(MapKey, MapValue), String> {
    let [key, value] = elem
        .as_array()
        .map(Vec::as_slice)
        .and_then(|a| <&[Value; 2]>::try_from(a).ok())
        .ok_or("expected [key, value]")?;
    // An element with a comment, timeout or counter wraps its key as
    // {"elem": {"val": key, ...}}; the extras are not part of the key.
    let key = match one_key(key) {
        Some(("elem", inner)) => inner.get("val").ok_or("`elem` without `val`")?,
        _ => key,
    };
    use MapKind::*;
    let k = match kind {
        Realm4 => MapKey::Prefix(prefix(key, Family::V4)?),
        Realm6 => MapKey::Prefix(prefix(key, Family::V6)?),
        Tenants4 => MapKey::Prefix(prefix(key, Family::V4)?),
        Tenants6 => MapKey::Prefix(prefix(key, Family::V6)?),
        VifTenants => MapKey::Interface(ifname(key)?),
        TenantClasses => {
            let [t, r] = concat(key)?;
            MapKey::TenantRealm(number(t)?, realm(r)?)
        }
        Shard => {
            let (a, b) = class_range(key)?;
            MapKey::ClassRange(a, b)
        }
        Registry => MapKey::Number(number(key)?),
        _ => return Err("a BPF map's kind, never an nftables map's".into()),
    };
    let v = match kind {
        Shard | Tenants4 | Tenants6 | VifTenants => MapValue::Mark(number(value)?),
        Realm4 | Realm6 | TenantClasses | Registry => MapValue::Class(classid(value)?),
        _ => return Err("a BPF map's kind, never an nftables map's".into()),
    };
    Ok((k, v))
}

fn concat(v: &Value) -> Result<[&Value; 2], String> {
    match one_key(v) {
        Some(("concat", Value::Array(parts))) => match parts.as_slice() {
            [a, b] => Ok([a, b]),
            _ => Err(format!(
                "expected 2 concatenated parts, found {}",
                parts.len()
            )),
        },
        _ => Err("expected a concatenation".into()),
    }
}

fn address(v: &Value, family: Family) -> Result<IpAddr, String> {
    let s = v.as_str().ok_or("expected an address")?;
    match family {
        Family::V4 => s.parse::<Ipv4Addr>().map(IpAddr::V4),
        Family::V6 => s.parse::<Ipv6Addr>().map(IpAddr::V6),
    }
    .map_err(|_| format!("`{s}` is not an {} address", family_name(family)))
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

fn make_prefix(addr: IpAddr, len: u64) -> Result<Prefix, String> {
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let len = u8::try_from(len)
        .ok()
        .filter(|l| *l <= max)
        .ok_or_else(|| format!("/{len} is not a prefix length for {addr}"))?;
    let p = match addr {
        IpAddr::V4(a) => Prefix::V4(a, len),
        IpAddr::V6(a) => Prefix::V6(a, len),
    };
    // nft prints the network address; host bits would mean a value the
    // plan cannot hold.
    if p.network() != p {
        return Err(format!("{addr}/{len} has host bits set"));
    }
    Ok(p)
}

/// A prefix as nft prints one in an interval map: a bare address for a
/// host prefix, `{"prefix": …}` otherwise, and `{"range": …}` for an
/// interval that nft did not recognise as a prefix (accepted only if it is
/// one after all).
fn prefix(v: &Value, family: Family) -> Result<Prefix, String> {
    if v.is_string() {
        let a = address(v, family)?;
        return make_prefix(a, if a.is_ipv4() { 32 } else { 128 });
    }
    match one_key(v) {
        Some(("prefix", p)) => {
            let addr = address(p.get("addr").ok_or("prefix without `addr`")?, family)?;
            let len = p
                .get("len")
                .and_then(Value::as_u64)
                .ok_or("prefix without a numeric `len`")?;
            make_prefix(addr, len)
        }
        Some(("range", Value::Array(ends))) => {
            let [first, last] = ends.as_slice() else {
                return Err("expected a range of 2 ends".into());
            };
            let (first, last) = (address(first, family)?, address(last, family)?);
            range_prefix(first, last)
                .ok_or_else(|| format!("the interval {first}-{last} is not one prefix"))
        }
        _ => Err(format!("expected an {} prefix", family_name(family))),
    }
}

/// The prefix that covers exactly `first..=last`, if there is one.
fn range_prefix(first: IpAddr, last: IpAddr) -> Option<Prefix> {
    let (a, b, bits) = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a) as u128, u32::from(b) as u128, 32u32),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128u32),
        _ => return None,
    };
    let span = b.checked_sub(a)?;
    // The host part is all ones in `span`, and `first` has none of it.
    if span.checked_add(1).is_some_and(|n| !n.is_power_of_two()) || a & span != 0 {
        return None;
    }
    let host_bits = 128 - span.leading_zeros();
    make_prefix(first, u64::from(bits.checked_sub(host_bits)?)).ok()
}

/// A class handle as nft prints `meta priority`: `"1:1c"` in hex, with
/// `none` for 0 and `root` for ffff:ffff (tc's names).
fn classid(v: &Value) -> Result<ClassId, String> {
    let s = v.as_str().ok_or("expected a class handle")?;
    let bad = || format!("`{s}` is not a class handle");
    match s {
        "none" => return Ok(ClassId::new(0, 0)),
        "root" => return Ok(ClassId::new(0xffff, 0xffff)),
        _ => {}
    }
    let (maj, min) = s.split_once(':').ok_or_else(bad)?;
    // Only plain hex digits: `u16::from_str_radix` would also take a sign.
    let half = |h: &str| {
        if (1..=4).contains(&h.len()) && h.bytes().all(|c| c.is_ascii_hexdigit()) {
            u16::from_str_radix(h, 16).ok()
        } else {
            None
        }
    };
    Ok(ClassId::new(
        half(maj).ok_or_else(bad)?,
        half(min).ok_or_else(bad)?,
    ))
}

/// The realm half of a concatenation: `meta priority` holding `0:realm`.
fn realm(v: &Value) -> Result<u16, String> {
    let c = classid(v)?;
    if c.major != 0 {
        return Err(format!("realm `{c}` has a nonzero major"));
    }
    Ok(c.minor)
}

/// A class range: `{"range": [a, b]}`, or a bare class when both ends are
/// the same (nft prints `1:8-1:8` as `1:8`).
fn class_range(v: &Value) -> Result<(ClassId, ClassId), String> {
    if v.is_string() {
        let c = classid(v)?;
        return Ok((c, c));
    }
    match one_key(v) {
        Some(("range", Value::Array(ends))) => {
            let [a, b] = ends.as_slice() else {
                return Err("expected a range of 2 ends".into());
            };
            let (a, b) = (classid(a)?, classid(b)?);
            if a > b {
                return Err(format!("the range {a}-{b} is empty"));
            }
            Ok((a, b))
        }
        // nft 1.0.6 does not print class ranges as prefixes, but the
        // interval code would for types that allow it: accept the value.
        Some(("prefix", p)) => {
            let start = classid(p.get("addr").ok_or("prefix without `addr`")?)?.as_u32();
            let len = p
                .get("len")
                .and_then(Value::as_u64)
                .filter(|l| *l <= 32)
                .ok_or("prefix without a `len` from 0 to 32")?;
            let host = u32::MAX.checked_shr(len as u32).unwrap_or(0);
            if start & host != 0 {
                return Err("class prefix has host bits set".into());
            }
            Ok((ClassId::from_u32(start), ClassId::from_u32(start | host)))
        }
        _ => Err("expected a class range".into()),
    }
}

/// A mark or plain number: a JSON integer (nft 1.0.6), or a decimal or
/// `0x` hex string, in 32 bits.
fn number(v: &Value) -> Result<u32, String> {
    let n = match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(h) if !h.is_empty() && h.bytes().all(|c| c.is_ascii_hexdigit()) => {
                u64::from_str_radix(h, 16).ok()
            }
            Some(_) => None,
            None if !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) => s.parse().ok(),
            None => None,
        },
        _ => None,
    };
    n.and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("`{v}` is not a 32-bit number"))
}

fn ifname(v: &Value) -> Result<IfName, String> {
    let s = v.as_str().ok_or("expected an interface name")?;
    IfName::new(s).map_err(|e| format!("`{s}`: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn p(s: &str) -> Prefix {
        Prefix::parse(s).unwrap()
    }

    #[test]
    fn prefixes_in_every_spelling() {
        assert_eq!(
            prefix(&json!("192.0.2.7"), Family::V4),
            Ok(p("192.0.2.7/32"))
        );
        assert_eq!(
            prefix(&json!("2001:db8::1"), Family::V6),
            Ok(p("2001:db8::1/128"))
        );
        assert_eq!(
            prefix(
                &json!({"prefix": {"addr": "0.0.0.0", "len": 0}}),
                Family::V4
            ),
            Ok(p("0.0.0.0/0"))
        );
        assert_eq!(
            prefix(
                &json!({"range": ["198.51.100.0", "198.51.100.255"]}),
                Family::V4
            ),
            Ok(p("198.51.100.0/24"))
        );
        assert_eq!(
            prefix(
                &json!({"range": ["::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]}),
                Family::V6
            ),
            Ok(p("::/0"))
        );
        assert_eq!(
            prefix(
                &json!({"range": ["0.0.0.0", "255.255.255.255"]}),
                Family::V4
            ),
            Ok(p("0.0.0.0/0"))
        );
        for bad in [
            json!({"range": ["100.64.0.1", "100.64.0.6"]}),
            json!({"range": ["100.64.0.4", "100.64.0.11"]}),
            json!({"range": ["100.64.0.9", "100.64.0.8"]}),
            json!({"prefix": {"addr": "100.64.0.1", "len": 24}}),
            json!({"prefix": {"addr": "100.64.0.0", "len": 33}}),
            json!({"prefix": {"addr": "100.64.0.0", "len": -1}}),
            json!("2001:db8::1"),
            json!(7),
        ] {
            assert!(prefix(&bad, Family::V4).is_err(), "{bad}");
        }
    }

    #[test]
    fn classes_and_numbers() {
        assert_eq!(classid(&json!("1:1c")), Ok(ClassId::new(1, 0x1c)));
        assert_eq!(classid(&json!("none")), Ok(ClassId::new(0, 0)));
        assert_eq!(classid(&json!("root")), Ok(ClassId::new(0xffff, 0xffff)));
        for bad in ["+1:2", "1:10000", ":1", "1", "x:1", ""] {
            assert!(classid(&json!(bad)).is_err(), "{bad}");
        }
        assert_eq!(realm(&json!("0:1")), Ok(1));
        assert_eq!(realm(&json!("none")), Ok(0));
        assert!(realm(&json!("1:1")).is_err());
        assert_eq!(number(&json!(4294967295u64)), Ok(u32::MAX));
        assert_eq!(number(&json!("0x00000002")), Ok(2));
        assert_eq!(number(&json!("17")), Ok(17));
        for bad in [
            json!(4294967296u64),
            json!(-1),
            json!(1.5),
            json!("0x"),
            json!("-3"),
            json!(null),
        ] {
            assert!(number(&bad).is_err(), "{bad}");
        }
        assert_eq!(
            class_range(&json!({"prefix": {"addr": "2:0", "len": 16}})),
            Ok((ClassId::new(2, 0), ClassId::new(2, 0xffff)))
        );
        assert_eq!(
            class_range(&json!({"prefix": {"addr": "none", "len": 0}})),
            Ok((ClassId::new(0, 0), ClassId::new(0xffff, 0xffff)))
        );
        assert!(class_range(&json!({"range": ["1:7", "1:4"]})).is_err());
    }

    #[test]
    fn elements_must_have_the_map_kinds_shape() {
        let e = json!([{"concat": [7, "0:1"]}, "1:10"]);
        assert_eq!(
            decode(&e, MapKind::TenantClasses),
            Ok((
                MapKey::TenantRealm(7, 1),
                MapValue::Class(ClassId::new(1, 0x10))
            ))
        );
        assert!(decode(&e, MapKind::Realm4).is_err());
        assert!(decode(
            &json!([{"concat": [7, "1:1"]}, "1:10"]),
            MapKind::TenantClasses
        )
        .is_err());
        assert_eq!(
            decode(&json!(["192.0.2.10", "0x00000007"]), MapKind::Tenants4),
            Ok((MapKey::Prefix(p("192.0.2.10/32")), MapValue::Mark(7)))
        );
        assert!(decode(&json!(["192.0.2.10", "1:1"]), MapKind::Tenants4).is_err());
        assert!(decode(&json!(["192.0.2.10", 7]), MapKind::Tenants6).is_err());
        // A bare address is also a valid interface name; a prefix is not.
        let prefixed = json!([{"prefix": {"addr": "100.64.0.0", "len": 30}}, 1]);
        assert!(decode(&prefixed, MapKind::VifTenants).is_err());
        assert_eq!(
            decode(&json!(["192.0.2.1", 1]), MapKind::VifTenants),
            Ok((
                MapKey::Interface(IfName::new("192.0.2.1").unwrap()),
                MapValue::Mark(1)
            ))
        );
        assert!(decode(&json!(["a/b", 1]), MapKind::VifTenants).is_err());
        assert!(decode(&json!([1, "1:1", 3]), MapKind::Registry).is_err());
        assert!(decode(&json!([1, 2]), MapKind::Registry).is_err());
        assert_eq!(
            decode(
                &json!([{"elem": {"val": 7, "comment": "x"}}, "1:1"]),
                MapKind::Registry
            ),
            Ok((MapKey::Number(7), MapValue::Class(ClassId::new(1, 1))))
        );
        assert_eq!(
            decode(&json!(["1:8", 3]), MapKind::Shard),
            Ok((
                MapKey::ClassRange(ClassId::new(1, 8), ClassId::new(1, 8)),
                MapValue::Mark(3)
            ))
        );
    }
}
