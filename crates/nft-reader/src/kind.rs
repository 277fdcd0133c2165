//! Which of tollgate's map kinds a map's declaration fits.
//!
//! nft prints a map's key as `"type"` and its data as `"map"`, in one of two
//! spellings depending on its version:
//!
//! - data type names (nftables before 1.1.1, and newer ones for maps
//!   declared with `type`): `"ipv4_addr"`, `["ipv4_addr", "classid"]`,
//!   `"mark"`. `meta priority` is the `classid` type, `meta oifname` is
//!   `ifname`, `meta mark` is `mark`.
//! - `{"typeof": <expression>}` (nftables 1.1.1 and newer, for maps declared
//!   with `typeof`, which tollgate always uses): the very expressions of the
//!   declaration, so `ip saddr` and `ip daddr` can be told apart.

use crate::{one_key, KindMatch};
use plan::MapKind;
use serde_json::Value;

/// The key and data of each kind as data type names, and whether it is an
/// interval map. Derived from [`MapKind::declaration`].
fn type_names(kind: MapKind) -> (&'static [&'static str], &'static str, bool) {
    match kind {
        MapKind::Realm4 => (&["ipv4_addr"], "classid", true),
        MapKind::Realm6 => (&["ipv6_addr"], "classid", true),
        MapKind::Tenants4 => (&["ipv4_addr"], "mark", true),
        MapKind::Tenants6 => (&["ipv6_addr"], "mark", true),
        MapKind::VifTenants => (&["ifname"], "mark", false),
        MapKind::TenantClasses => (&["mark", "classid"], "classid", false),
        MapKind::Shard => (&["classid"], "mark", true),
        MapKind::Registry => (&["mark"], "classid", false),
        // The eBPF classifier's maps are BPF maps: no nftables map is one.
        _ => (&["(bpf)"], "(bpf)", false),
    }
}

/// One `typeof` expression, as nft's JSON spells it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Expr {
    Payload(&'static str, &'static str),
    Meta(&'static str),
}

/// The declaration of each kind as `typeof` expressions (key parts, data).
fn typeof_exprs(kind: MapKind) -> (&'static [Expr], Expr) {
    use Expr::*;
    const PRIO: Expr = Meta("priority");
    match kind {
        MapKind::Realm4 => (&[Payload("ip", "daddr")], PRIO),
        MapKind::Realm6 => (&[Payload("ip6", "daddr")], PRIO),
        MapKind::Tenants4 => (&[Payload("ip", "daddr")], Meta("mark")),
        MapKind::Tenants6 => (&[Payload("ip6", "daddr")], Meta("mark")),
        MapKind::VifTenants => (&[Meta("oifname")], Meta("mark")),
        MapKind::TenantClasses => (&[Meta("mark"), PRIO], PRIO),
        MapKind::Shard => (&[PRIO], Meta("mark")),
        MapKind::Registry => (&[Meta("mark")], PRIO),
        _ => (&[], Meta("(bpf)")),
    }
}

/// Every kind, in declaration order. (The matches above stop compiling
/// when a kind is added; add it here too.)
const ALL: [MapKind; 8] = [
    MapKind::Realm4,
    MapKind::Realm6,
    MapKind::Tenants4,
    MapKind::Tenants6,
    MapKind::VifTenants,
    MapKind::TenantClasses,
    MapKind::Shard,
    MapKind::Registry,
];

/// A type as printed: either data type names or `typeof` expressions.
enum Printed<'a> {
    Names(Vec<&'a str>),
    Typeof(Vec<&'a Value>),
}

fn printed(v: &Value) -> Option<Printed<'_>> {
    match v {
        Value::String(s) => Some(Printed::Names(vec![s])),
        Value::Array(a) => a
            .iter()
            .map(Value::as_str)
            .collect::<Option<_>>()
            .map(Printed::Names),
        _ => match one_key(v)? {
            ("typeof", e) => Some(Printed::Typeof(match one_key(e)? {
                ("concat", Value::Array(parts)) => parts.iter().collect(),
                _ => vec![e],
            })),
            _ => None,
        },
    }
}

fn expr_is(v: &Value, e: Expr) -> bool {
    match (one_key(v), e) {
        (Some(("payload", p)), Expr::Payload(proto, field)) => {
            p.get("protocol").and_then(Value::as_str) == Some(proto)
                && p.get("field").and_then(Value::as_str) == Some(field)
        }
        (Some(("meta", m)), Expr::Meta(key)) => m.get("key").and_then(Value::as_str) == Some(key),
        _ => false,
    }
}

/// Whether a printed type matches one kind's key (or data) declaration.
fn matches(p: &Printed<'_>, names: &[&str], exprs: &[Expr]) -> bool {
    match p {
        Printed::Names(n) => n.as_slice() == names,
        Printed::Typeof(parts) => {
            parts.len() == exprs.len() && parts.iter().zip(exprs).all(|(v, e)| expr_is(v, *e))
        }
    }
}

/// Recognises a map from its printed key type, data type and flags.
pub(crate) fn recognise(key: &Value, data: &Value, flags: &[&str]) -> KindMatch {
    let (Some(key), Some(data)) = (printed(key), printed(data)) else {
        return KindMatch::Unrecognised;
    };
    // Only `interval` may be set: `constant`, `timeout` or `dynamic` would
    // change how the kernel treats the map, and tollgate declares none.
    let interval = match flags {
        [] => false,
        ["interval"] => true,
        _ => return KindMatch::Unrecognised,
    };
    let mut fits = ALL.into_iter().filter(|&k| {
        let (key_names, data_name, k_interval) = type_names(k);
        let (key_exprs, data_expr) = typeof_exprs(k);
        k_interval == interval
            && matches(&key, key_names, key_exprs)
            && matches(&data, &[data_name], &[data_expr])
    });
    match (fits.next(), fits.next()) {
        (Some(a), None) => KindMatch::Exact(a),
        _ => KindMatch::Unrecognised,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn data_type_names_tell_every_kind_apart() {
        for (key, data, flags, kind) in [
            (
                json!("ipv4_addr"),
                json!("classid"),
                &["interval"][..],
                MapKind::Realm4,
            ),
            (
                json!("ipv6_addr"),
                json!("classid"),
                &["interval"],
                MapKind::Realm6,
            ),
            (
                json!("ipv4_addr"),
                json!("mark"),
                &["interval"],
                MapKind::Tenants4,
            ),
            (
                json!("ipv6_addr"),
                json!("mark"),
                &["interval"],
                MapKind::Tenants6,
            ),
            (json!("ifname"), json!("mark"), &[], MapKind::VifTenants),
            (
                json!(["mark", "classid"]),
                json!("classid"),
                &[],
                MapKind::TenantClasses,
            ),
            (
                json!("classid"),
                json!("mark"),
                &["interval"],
                MapKind::Shard,
            ),
            (json!("mark"), json!("classid"), &[], MapKind::Registry),
        ] {
            let r = recognise(&key, &data, flags);
            assert_eq!(r, KindMatch::Exact(kind), "{key} : {data}");
            assert_eq!(r.exact(), Some(kind));
        }
    }

    #[test]
    fn flags_must_match() {
        assert_eq!(
            recognise(&json!("mark"), &json!("classid"), &["interval"]),
            KindMatch::Unrecognised
        );
        assert_eq!(
            recognise(&json!("ipv4_addr"), &json!("classid"), &[]),
            KindMatch::Unrecognised
        );
        assert_eq!(
            recognise(
                &json!("ipv4_addr"),
                &json!("classid"),
                &["constant", "interval"]
            ),
            KindMatch::Unrecognised
        );
        assert_eq!(
            recognise(&json!("ipv4_addr"), &json!("verdict"), &["interval"]),
            KindMatch::Unrecognised
        );
    }

    #[test]
    fn typeof_is_exact() {
        let key = json!({"typeof": {"concat": [{"meta": {"key": "mark"}}, {"meta": {"key": "priority"}}]}});
        assert_eq!(
            recognise(&key, &json!("classid"), &[]),
            KindMatch::Exact(MapKind::TenantClasses)
        );
        let data = json!({"typeof": {"meta": {"key": "priority"}}});
        assert_eq!(
            recognise(&key, &data, &[]),
            KindMatch::Exact(MapKind::TenantClasses)
        );
        let mark = json!({"typeof": {"meta": {"key": "mark"}}});
        let tenants = json!({"typeof": {"payload": {"protocol": "ip6", "field": "daddr"}}});
        assert_eq!(
            recognise(&tenants, &mark, &["interval"]),
            KindMatch::Exact(MapKind::Tenants6)
        );
        let realm = json!({"typeof": {"payload": {"protocol": "ip", "field": "daddr"}}});
        assert_eq!(
            recognise(&realm, &data, &["interval"]),
            KindMatch::Exact(MapKind::Realm4)
        );
        // Declared on the source address: the same kernel map, but not what
        // tollgate declares.
        let saddr = json!({"typeof": {"payload": {"protocol": "ip", "field": "saddr"}}});
        assert_eq!(
            recognise(&saddr, &data, &["interval"]),
            KindMatch::Unrecognised
        );
        let oif = json!({"typeof": {"meta": {"key": "oifname"}}});
        assert_eq!(
            recognise(&oif, &mark, &[]),
            KindMatch::Exact(MapKind::VifTenants)
        );
        assert_eq!(
            recognise(&json!({"typeof": 3}), &data, &[]),
            KindMatch::Unrecognised
        );
    }
}
