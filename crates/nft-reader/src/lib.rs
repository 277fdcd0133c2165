//! Reads tollgate's nftables table back from `nft -j list table netdev tollgate`.
//!
//! The dataplane must compare what the kernel holds with the plan it wants.
//! For the nftables side it asks `nft` for the table and hands the output to
//! [`read_table`], which returns the chains (with each rule's handle and
//! comment) and the maps (with their elements decoded back into the plan's own
//! [`MapKey`] and [`MapValue`]), so that observed and desired state can be
//! compared value for value.
//!
//! # Why JSON and not the text listing
//!
//! `nft list` prints text meant for people: its layout (line wrapping of
//! elements, `priority filter` for 0, marks as `0x00000002`, `typeof` lines,
//! quoting) changes between nftables releases and depends on flags such as
//! `-n` and `-y`. `nft -j` prints the same objects as a documented JSON schema
//! (`libnftables-json(5)`) in which every element is a structured value: a
//! prefix is `{"prefix": {"addr", "len"}}`, a concatenation is
//! `{"concat": [...]}`, a mark is a JSON integer. Decoding that needs no
//! tokenizer and fails loudly (a wrong shape is an error or an
//! [`ObservedMap::unreadable`] element) instead of quietly misreading a line.
//!
//! # What nft's JSON looks like (nftables 1.0.6, measured)
//!
//! | plan value | JSON printed by nft |
//! |---|---|
//! | IPv4/IPv6 prefix | `{"prefix": {"addr": "100.64.1.0", "len": 24}}` |
//! | a `/32` or `/128` | the bare address: `"192.0.2.7"`, `"2001:db8::1"` |
//! | `0.0.0.0/0`, `::/0` | `{"prefix": {"addr": "0.0.0.0", "len": 0}}` |
//! | prefix `.` realm | `{"concat": [<prefix or address>, "0:1"]}` |
//! | interface `.` realm | `{"concat": ["vif1.0", "0:1"]}` |
//! | class range `1:4-1:7` | `{"range": ["1:4", "1:7"]}` |
//! | class range `1:8-1:8` | the bare class `"1:8"` |
//! | class (`meta priority`) | `"1:1c"` (hex); `0:0` is `"none"`, `ffff:ffff` is `"root"` |
//! | mark, number | JSON integers: `2`, `4294967295` |
//! | an element with a comment | `{"elem": {"val": <key>, "comment": "…"}}` in the key's place |
//!
//! Elements are not merged or split in maps: two adjacent prefixes with the
//! same value (`198.51.100.0/25` and `198.51.100.128/25`) are printed as two
//! elements, exactly as added. nft merges adjacent intervals only in *sets*
//! declared `auto-merge`, which tollgate does not use. An interval that is not
//! one prefix is printed as `{"range": [first, last]}`; tollgate never writes
//! one, so such an element is reported as unreadable rather than guessed at.
//!
//! Two things the JSON of nftables 1.0.6 does not carry at all:
//!
//! - **The device of a netdev base chain.** Before nftables 1.0.10 (commit
//!   "json: deal appropriately with multidevice in chain", Nov 2023) the JSON
//!   listing omits `dev`, although `nft list` prints `device "wan0"`. Newer
//!   nft prints `"dev": "wan0"` (or an array). [`ObservedHook::devices`] is
//!   therefore empty on older nft; [`chain_devices_from_listing`] recovers the
//!   devices from the text listing for that case.
//! - **The `typeof` expressions of a map.** nftables before 1.1.1 prints only
//!   the data types (`["ipv4_addr", "classid"]`), so `typeof ip saddr . meta
//!   priority` and `typeof ip daddr . meta priority` look the same; the kernel
//!   stores them identically too. Newer nft prints `{"typeof": <expr>}` and the
//!   kind is exact. [`KindMatch`] says which of the two happened.
//!
//! # Why unreadable elements matter: nft 1.0.6 corrupts big maps
//!
//! nft 1.0.6 sends one command's elements in netlink messages of at most
//! 64 KiB. When an element does not fit, nft builds it again for the next
//! message, and for a concatenation with a host-order field (`meta
//! priority`, the realm) the second build swaps that field's bytes again.
//! The kernel then really holds realm `0:2` as `0x02000000` (printed
//! `"200:0"`, and `nft --debug=netlink` shows the raw `00000002`), so the
//! element no longer matches. That is one element per 64 KiB of elements
//! (every 1,365th of an `ip daddr . meta priority` map) loaded in one
//! `elements = { … }` block, as `plan::render::plan_nft` writes them.
//! The reader reports such an element as unreadable (a realm with a nonzero
//! major) instead of guessing the intended value. Adding elements in
//! commands of a few hundred avoids the corruption.
//!
//! This crate is pure: it reads a string and returns values. Running `nft` is
//! the caller's business.

mod element;
mod kind;
mod listing;

pub use listing::chain_devices_from_listing;

use plan::{MapKey, MapKind, MapValue, NFT_TABLE};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;

/// The family of tollgate's table.
const FAMILY: &str = "netdev";

/// Tollgate's nftables table as the kernel holds it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Table {
    /// The nftables version that printed the JSON (`metainfo.version`), if
    /// it said. What the JSON carries depends on it (see the crate docs).
    pub nft_version: Option<String>,
    /// Chains, by name.
    pub chains: BTreeMap<String, ObservedChain>,
    /// Maps, by name.
    pub maps: BTreeMap<String, ObservedMap>,
    /// Objects in the table that are neither chains nor maps (sets,
    /// counters, flowtables…). Tollgate creates none, so each one is
    /// something to remove.
    pub others: Vec<OtherObject>,
}

/// A chain as observed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObservedChain {
    /// For a base chain, where it is hooked; `None` for a regular chain.
    pub hook: Option<ObservedHook>,
    /// Its rules, in order.
    pub rules: Vec<ObservedRule>,
}

/// Where a base chain is hooked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedHook {
    /// The chain type (`filter`).
    pub chain_type: String,
    /// The hook (`egress`, `ingress`).
    pub hook: String,
    /// The priority, as a number (nft's JSON prints `0`, not `filter`).
    pub priority: i64,
    /// The policy (`accept`, `drop`), if printed.
    pub policy: Option<String>,
    /// The devices the hook is attached to. **Empty when nft printed none**,
    /// which nftables before 1.0.10 always does for netdev chains; on such
    /// versions fill it from [`chain_devices_from_listing`].
    pub devices: Vec<String>,
}

impl ObservedHook {
    /// The device, when the hook is attached to exactly one.
    pub fn device(&self) -> Option<&str> {
        match self.devices.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

/// A rule as observed: enough to find and replace it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedRule {
    /// The kernel's handle, for `delete rule … handle N` and `replace rule`.
    pub handle: u64,
    /// The rule's comment (tollgate writes `tg:<hash>` there), if any.
    pub comment: Option<String>,
}

/// What a map's declaration says about its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KindMatch {
    /// Exactly this kind: nft printed the `typeof` expressions, or the data
    /// types fit only one kind. (Every kind tollgate declares today differs
    /// from the others in its data types, so older nft, which prints only
    /// those, is as exact as newer nft.)
    Exact(MapKind),
    /// None of tollgate's kinds: the map must be recreated.
    Unrecognised,
}

impl KindMatch {
    /// Whether a map declared as `kind` would look like this.
    pub fn fits(self, kind: MapKind) -> bool {
        match self {
            KindMatch::Exact(k) => k == kind,
            KindMatch::Unrecognised => false,
        }
    }

    /// The kind, if it is known exactly.
    pub fn exact(self) -> Option<MapKind> {
        match self {
            KindMatch::Exact(k) => Some(k),
            _ => None,
        }
    }
}

/// A map as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedMap {
    /// The kind recognised from the map's type, data type and flags.
    pub kind: KindMatch,
    /// The elements that decoded to plan keys and values of that kind.
    pub elements: BTreeMap<MapKey, MapValue>,
    /// Elements that did not decode, as compact JSON followed by the reason.
    /// Non-empty means the map holds something tollgate did not write
    /// (or this reader does not understand it): the safe repair is to
    /// recreate the map.
    pub unreadable: Vec<String>,
}

/// An object in the table that is neither a chain nor a map.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtherObject {
    /// Its JSON object kind (`set`, `counter`, `flowtable`, …).
    pub kind: String,
    /// Its name, if it has one.
    pub name: Option<String>,
}

/// Why the JSON could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The text is not JSON.
    Json {
        /// 1-based line of the error.
        line: usize,
        /// 1-based column of the error.
        column: usize,
        /// What serde_json said.
        message: String,
    },
    /// The JSON is not shaped like nft's output.
    Shape {
        /// Where, as a JSON path (`$.nftables[4].rule.handle`), with the
        /// object's name when known.
        path: String,
        /// What is wrong there.
        message: String,
    },
    /// The output holds no `table netdev tollgate`.
    NoTable,
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Json {
                line,
                column,
                message,
            } => write!(
                f,
                "nft output is not JSON (line {line}, column {column}): {message}"
            ),
            ReadError::Shape { path, message } => {
                write!(f, "nft JSON at {path}: {message}")
            }
            ReadError::NoTable => {
                write!(f, "nft JSON holds no table {FAMILY} {NFT_TABLE}")
            }
        }
    }
}

impl std::error::Error for ReadError {}

fn shape(path: &str, message: impl Into<String>) -> ReadError {
    ReadError::Shape {
        path: path.to_owned(),
        message: message.into(),
    }
}

/// Reads the output of `nft -j list table netdev tollgate`.
///
/// Objects of other tables (as in `nft -j list ruleset`) are skipped.
/// Anything that is not shaped like nft's JSON is an error naming where;
/// an element that does not decode is not an error but is listed in its
/// map's [`ObservedMap::unreadable`], so that one odd element does not hide
/// the rest of the table.
pub fn read_table(json: &str) -> Result<Table, ReadError> {
    let root: Value = serde_json::from_str(json).map_err(|e| ReadError::Json {
        line: e.line(),
        column: e.column(),
        message: e.to_string(),
    })?;
    let items = root
        .get("nftables")
        .and_then(Value::as_array)
        .ok_or_else(|| shape("$", "expected an object with an `nftables` array"))?;

    let mut table = Table::default();
    let mut found = false;
    // Rules name their chain; they are attached after every chain is known
    // so that the order of objects in the output does not matter.
    let mut rules: Vec<(String, String, ObservedRule)> = Vec::new();

    for (i, item) in items.iter().enumerate() {
        let path = format!("$.nftables[{i}]");
        let (kind, body) =
            one_key(item).ok_or_else(|| shape(&path, "expected an object with exactly one key"))?;
        let path = format!("{path}.{kind}");
        let body = body
            .as_object()
            .ok_or_else(|| shape(&path, "expected an object"))?;
        match kind {
            "metainfo" => {
                table.nft_version = body
                    .get("version")
                    .and_then(Value::as_str)
                    .map(str::to_owned);
            }
            "table" => {
                let family = string(body, "family", &path)?;
                let name = string(body, "name", &path)?;
                found |= family == FAMILY && name == NFT_TABLE;
            }
            "chain" => {
                if !ours(body, &path)? {
                    continue;
                }
                let name = string(body, "name", &path)?;
                let path = format!("{path}(name {name:?})");
                let chain = ObservedChain {
                    hook: hook(body, &path)?,
                    rules: Vec::new(),
                };
                if table.chains.insert(name.to_owned(), chain).is_some() {
                    return Err(shape(&path, "a second chain with this name"));
                }
            }
            "rule" => {
                if !ours(body, &path)? {
                    continue;
                }
                let chain = string(body, "chain", &path)?.to_owned();
                let handle = body
                    .get("handle")
                    .and_then(Value::as_u64)
                    .ok_or_else(|| shape(&format!("{path}.handle"), "expected a handle number"))?;
                let comment = match body.get("comment") {
                    None => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => return Err(shape(&format!("{path}.comment"), "expected a string")),
                };
                rules.push((chain, path, ObservedRule { handle, comment }));
            }
            "map" => {
                if !ours(body, &path)? {
                    continue;
                }
                let name = string(body, "name", &path)?;
                let path = format!("{path}(name {name:?})");
                let map = read_map(body, &path)?;
                if table.maps.insert(name.to_owned(), map).is_some() {
                    return Err(shape(&path, "a second map with this name"));
                }
            }
            // The guard's sets (plan::guard): known by their names. Their
            // elements are the guard's, not the plan's, so they are not read.
            "set"
                if ours(body, &path)?
                    && plan::guard::set_kind(string(body, "name", &path)?).is_some() =>
            {
                let name = string(body, "name", &path)?;
                let kind =
                    plan::guard::set_kind(name).map_or(KindMatch::Unrecognised, KindMatch::Exact);
                let set = ObservedMap {
                    kind,
                    elements: BTreeMap::new(),
                    unreadable: Vec::new(),
                };
                if table.maps.insert(name.to_owned(), set).is_some() {
                    return Err(shape(&path, "a second map or set with this name"));
                }
            }
            other => {
                // Objects this reader does not model still belong to the
                // table if they say so; they are listed so that the caller
                // can remove them. Anything without family and table (a
                // future top-level kind) is not tied to a table and skipped.
                let family = body.get("family").and_then(Value::as_str);
                let tbl = body.get("table").and_then(Value::as_str);
                if family == Some(FAMILY) && tbl == Some(NFT_TABLE) {
                    table.others.push(OtherObject {
                        kind: other.to_owned(),
                        name: body.get("name").and_then(Value::as_str).map(str::to_owned),
                    });
                }
            }
        }
    }
    if !found {
        return Err(ReadError::NoTable);
    }
    for (chain, path, rule) in rules {
        match table.chains.get_mut(&chain) {
            Some(c) => c.rules.push(rule),
            None => {
                return Err(shape(
                    &path,
                    format!("rule of chain {chain:?}, which is not in the output"),
                ))
            }
        }
    }
    Ok(table)
}

/// The only key of a one-key object, as nft wraps every object and
/// expression (`{"chain": {...}}`, `{"prefix": {...}}`).
pub(crate) fn one_key(v: &Value) -> Option<(&str, &Value)> {
    let obj = v.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    obj.iter().next().map(|(k, v)| (k.as_str(), v))
}

fn string<'a>(body: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, ReadError> {
    body.get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| shape(&format!("{path}.{key}"), "expected a string"))
}

/// Whether an object belongs to `table netdev tollgate`.
fn ours(body: &Map<String, Value>, path: &str) -> Result<bool, ReadError> {
    Ok(string(body, "family", path)? == FAMILY && string(body, "table", path)? == NFT_TABLE)
}

fn hook(body: &Map<String, Value>, path: &str) -> Result<Option<ObservedHook>, ReadError> {
    // A regular chain has none of the base chain keys.
    let Some(hook) = body.get("hook") else {
        return Ok(None);
    };
    let hook = hook
        .as_str()
        .ok_or_else(|| shape(&format!("{path}.hook"), "expected a string"))?;
    let priority = body
        .get("prio")
        .and_then(Value::as_i64)
        .ok_or_else(|| shape(&format!("{path}.prio"), "expected a number"))?;
    let policy = match body.get("policy") {
        None => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(_) => return Err(shape(&format!("{path}.policy"), "expected a string")),
    };
    // One device is a string, several are an array of strings.
    let devices = match body.get("dev") {
        None => Vec::new(),
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|d| d.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| shape(&format!("{path}.dev"), "expected device names"))?,
        Some(_) => {
            return Err(shape(
                &format!("{path}.dev"),
                "expected a device name or a list",
            ))
        }
    };
    Ok(Some(ObservedHook {
        chain_type: string(body, "type", path)?.to_owned(),
        hook: hook.to_owned(),
        priority,
        policy,
        devices,
    }))
}

fn read_map(body: &Map<String, Value>, path: &str) -> Result<ObservedMap, ReadError> {
    let key_type = body
        .get("type")
        .ok_or_else(|| shape(&format!("{path}.type"), "missing"))?;
    let data_type = body
        .get("map")
        .ok_or_else(|| shape(&format!("{path}.map"), "missing"))?;
    let flags: Vec<&str> = match body.get("flags") {
        None => Vec::new(),
        // One flag may be printed as a plain string.
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a
            .iter()
            .map(Value::as_str)
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| shape(&format!("{path}.flags"), "expected flag names"))?,
        Some(_) => return Err(shape(&format!("{path}.flags"), "expected a list of flags")),
    };
    let kind = kind::recognise(key_type, data_type, &flags);
    let elems: &[Value] = match body.get("elem") {
        None => &[],
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(shape(
                &format!("{path}.elem"),
                "expected a list of elements",
            ))
        }
    };
    let mut map = ObservedMap {
        kind,
        elements: BTreeMap::new(),
        unreadable: Vec::new(),
    };
    let guide = kind.exact();
    for e in elems {
        let decoded = match guide {
            Some(k) => element::decode(e, k),
            None => Err("the map's declaration is not one of tollgate's".to_owned()),
        };
        match decoded {
            Ok((k, v)) => {
                use std::collections::btree_map::Entry;
                match map.elements.entry(k) {
                    Entry::Vacant(slot) => {
                        slot.insert(v);
                    }
                    Entry::Occupied(slot) => map
                        .unreadable
                        .push(format!("{e}: a second element with key {}", slot.key())),
                }
            }
            Err(why) => map.unreadable.push(format!("{e}: {why}")),
        }
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wrap(objects: &str) -> String {
        format!(
            r#"{{"nftables": [{{"metainfo": {{"version": "1.0.6", "json_schema_version": 1}}}}, {{"table": {{"family": "netdev", "name": "tollgate", "handle": 1}}}}{objects}]}}"#
        )
    }

    #[test]
    fn errors_name_the_place() {
        let e = read_table(&wrap(
            r#", {"chain": {"family": "netdev", "table": "tollgate", "name": "c", "handle": 1}}, {"rule": {"family": "netdev", "table": "tollgate", "chain": "c", "handle": "x"}}"#,
        ))
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "nft JSON at $.nftables[3].rule.handle: expected a handle number"
        );
        let e = read_table(&wrap(
            r#", {"map": {"family": "netdev", "table": "tollgate", "name": "m", "type": "mark", "map": "classid", "elem": 3}}"#,
        ))
        .unwrap_err();
        assert!(
            e.to_string()
                .contains(r#"$.nftables[2].map(name "m").elem"#),
            "{e}"
        );
        assert!(matches!(
            read_table("{\"nftables\": [}"),
            Err(ReadError::Json { line: 1, .. })
        ));
        assert_eq!(read_table(r#"{"nftables": []}"#), Err(ReadError::NoTable));
    }

    #[test]
    fn other_tables_are_skipped_and_foreign_objects_listed() {
        let t = read_table(&wrap(
            r#", {"table": {"family": "ip", "name": "tollgate", "handle": 2}}, {"chain": {"family": "ip", "table": "tollgate", "name": "c", "handle": 1}}, {"set": {"family": "netdev", "table": "tollgate", "name": "s", "type": "mark", "handle": 3}}"#,
        ))
        .unwrap();
        assert!(t.chains.is_empty());
        assert_eq!(
            t.others,
            [OtherObject {
                kind: "set".into(),
                name: Some("s".into())
            }]
        );
        assert_eq!(t.nft_version.as_deref(), Some("1.0.6"));
    }

    #[test]
    fn the_guards_sets_are_known_by_name_and_their_elements_left_unread() {
        // As nft 1.0.6 prints them, with elements the guard added.
        let t = read_table(&wrap(
            r#", {"set": {"family": "netdev", "name": "guard_drop_in4", "table": "tollgate", "type": "ipv4_addr", "handle": 2, "flags": ["interval"], "elem": ["203.0.113.10"]}}, {"set": {"family": "netdev", "name": "guard_sig_out6", "table": "tollgate", "type": ["ipv6_addr", "inet_proto", "inet_service"], "handle": 3, "flags": ["interval"], "elem": [{"concat": ["2001:db8::1", "ipv6-icmp", {"range": [0, 65535]}]}]}}, {"set": {"family": "netdev", "name": "guard_other", "table": "tollgate", "type": "mark", "handle": 4}}"#,
        ))
        .unwrap();
        let drop = &t.maps["guard_drop_in4"];
        assert_eq!(drop.kind, KindMatch::Exact(MapKind::GuardAddr4));
        assert!(drop.elements.is_empty() && drop.unreadable.is_empty());
        assert_eq!(
            t.maps["guard_sig_out6"].kind,
            KindMatch::Exact(MapKind::GuardSig6)
        );
        // A set of another name is not tollgate's to model.
        assert_eq!(t.others.len(), 1);
        assert_eq!(t.others[0].name.as_deref(), Some("guard_other"));
    }

    #[test]
    fn a_key_spelled_twice_is_reported_once() {
        let t = read_table(&wrap(
            r#", {"map": {"family": "netdev", "table": "tollgate", "name": "m", "type": "ipv4_addr", "map": "classid", "flags": ["interval"], "elem": [["192.0.2.7", "0:1"], [{"prefix": {"addr": "192.0.2.7", "len": 32}}, "0:2"], [{"range": ["192.0.2.8", "192.0.2.11"]}, "0:3"]]}}"#,
        ))
        .unwrap();
        let m = &t.maps["m"];
        assert_eq!(m.kind, KindMatch::Exact(MapKind::Realm4));
        assert_eq!(m.elements.len(), 2);
        assert_eq!(m.unreadable.len(), 1);
        assert!(
            m.unreadable[0].contains("a second element with key 192.0.2.7/32"),
            "{:?}",
            m.unreadable
        );
    }

    #[test]
    fn rules_may_come_before_their_chain_but_not_without_it() {
        let rule = r#"{"rule": {"family": "netdev", "table": "tollgate", "chain": "c", "handle": 7, "comment": "tg:1", "expr": []}}"#;
        let chain =
            r#"{"chain": {"family": "netdev", "table": "tollgate", "name": "c", "handle": 1}}"#;
        let t = read_table(&wrap(&format!(", {rule}, {chain}"))).unwrap();
        assert_eq!(
            t.chains["c"].rules,
            [ObservedRule {
                handle: 7,
                comment: Some("tg:1".into())
            }]
        );
        let e = read_table(&wrap(&format!(", {rule}"))).unwrap_err();
        assert!(e.to_string().contains("not in the output"), "{e}");
    }

    #[test]
    fn base_chain_devices_in_every_spelling() {
        let base = |dev: &str| {
            wrap(&format!(
                r#", {{"chain": {{"family": "netdev", "table": "tollgate", "name": "c", "handle": 1, "type": "filter", "hook": "egress", "prio": 0, "policy": "accept"{dev}}}}}"#
            ))
        };
        let h = |json: String| read_table(&json).unwrap().chains["c"].hook.clone().unwrap();
        assert_eq!(h(base("")).devices, Vec::<String>::new());
        assert_eq!(h(base("")).device(), None);
        assert_eq!(h(base(r#", "dev": "wan0""#)).device(), Some("wan0"));
        assert_eq!(h(base(r#", "dev": ["a", "b"]"#)).devices, ["a", "b"]);
        assert!(read_table(&base(r#", "dev": [1]"#)).is_err());
        let hook = h(base(""));
        assert_eq!(
            (hook.chain_type.as_str(), hook.hook.as_str(), hook.priority),
            ("filter", "egress", 0)
        );
    }
}
