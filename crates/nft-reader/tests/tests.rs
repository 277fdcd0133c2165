//! The reader against JSON captured from the real nft (nftables 1.0.6, see
//! `tests/kernel.rs`, which made the fixtures), and against broken JSON.
//!
//! Each fixture comes with what was loaded (`.nft`) and nft's text listing
//! (`.txt`), so these tests need neither root nor nft.

mod common;

use common::{assert_matches_plan, edge_plan, fixture, overflow_plan};
use net_types::{ClassId, Prefix};
use nft_reader::{chain_devices_from_listing, read_table, KindMatch, OtherObject, Table};
use plan::{MapKey, MapKind, MapValue};
use std::collections::{BTreeMap, BTreeSet};

fn read(name: &str) -> Table {
    read_table(&fixture(&format!("{name}.json"))).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn every_element_form_decodes_to_what_was_rendered() {
    let table = read("edge");
    let devices = chain_devices_from_listing(&fixture("edge.txt"));
    assert_matches_plan(&table, &edge_plan(), &devices, "edge");
    assert_eq!(table.nft_version.as_deref(), Some("1.0.6"));
    // nft 1.0.6 leaves the base chain's device out of its JSON; the text
    // listing has it.
    let hook = table.chains["up_wan0"].hook.as_ref().unwrap();
    assert!(hook.devices.is_empty());
    assert_eq!(devices["up_wan0"], ["wan0"]);
    // nft 1.0.6 prints data type names, which tell every kind apart.
    assert_eq!(
        table.maps["tenant_classes"].kind,
        KindMatch::Exact(MapKind::TenantClasses)
    );
    assert_eq!(table.maps["realm4"].kind, KindMatch::Exact(MapKind::Realm4));
    assert_eq!(
        table.maps["owners_empty"].kind,
        KindMatch::Exact(MapKind::Registry)
    );
}

/// The elements of each map in a script rendered by `plan_nft`, as text.
fn script_elements(script: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut map = None;
    let mut body: Option<String> = None;
    for line in script.lines() {
        if let Some(name) = line
            .strip_prefix("\tmap ")
            .and_then(|l| l.strip_suffix(" {"))
        {
            map = Some(name.to_owned());
            out.entry(name.to_owned()).or_default();
            continue;
        }
        let line = line.trim();
        if let Some(rest) = line.strip_prefix("elements = { ") {
            body = Some(String::new());
            body.as_mut().unwrap().push_str(rest);
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        } else {
            continue;
        }
        if let Some(done) = body.as_ref().and_then(|b| b.strip_suffix(" }")) {
            let set = out.get_mut(map.as_ref().unwrap()).unwrap();
            set.extend(done.split(',').map(|e| e.trim().to_owned()));
            body = None;
        }
    }
    out
}

/// The comment of every rule of each chain in a rendered script.
fn script_comments(script: &str) -> BTreeMap<String, Vec<String>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut chain = None;
    for line in script.lines() {
        if let Some(name) = line
            .strip_prefix("\tchain ")
            .and_then(|l| l.strip_suffix(" {"))
        {
            chain = Some(name.to_owned());
            out.entry(name.to_owned()).or_default();
        } else if line == "\t}" {
            chain = None;
        } else if let (Some(c), Some(rule)) = (&chain, line.strip_prefix("\t\t")) {
            if !rule.starts_with("type ") {
                let (_, tag) = rule
                    .rsplit_once(" comment \"")
                    .expect("every rule is tagged");
                out.get_mut(c)
                    .unwrap()
                    .push(tag.trim_end_matches('"').to_owned());
            }
        }
    }
    out
}

/// A captured example reads back to the very script that was loaded.
fn example_matches_its_script(name: &str) {
    let table = read(name);
    let script = fixture(&format!("{name}.nft"));
    let want = script_elements(&script);
    assert!(!want.is_empty());
    for (map, elements) in &want {
        let got = &table.maps[map];
        assert!(
            got.unreadable.is_empty(),
            "{name}: {map}: {:?}",
            got.unreadable
        );
        assert!(
            !matches!(got.kind, KindMatch::Unrecognised),
            "{name}: {map}"
        );
        let text: BTreeSet<String> = got
            .elements
            .iter()
            .map(|(k, v)| format!("{k} : {v}"))
            .collect();
        assert_eq!(&text, elements, "{name}: map {map}");
    }
    assert_eq!(table.maps.len(), want.len());
    let comments = script_comments(&script);
    assert_eq!(
        table.chains.keys().collect::<Vec<_>>(),
        comments.keys().collect::<Vec<_>>()
    );
    for (chain, tags) in &comments {
        let got: Vec<String> = table.chains[chain]
            .rules
            .iter()
            .map(|r| r.comment.clone().expect("tagged"))
            .collect();
        assert_eq!(&got, tags, "{name}: chain {chain}");
    }
    // Base chains: the devices in the listing are those in the script.
    let listed = chain_devices_from_listing(&fixture(&format!("{name}.txt")));
    assert_eq!(listed, chain_devices_from_listing(&script));
    for (chain, c) in &table.chains {
        assert_eq!(
            c.hook.is_some(),
            listed.contains_key(chain),
            "{name}: {chain}"
        );
    }
}

#[test]
fn router_example_matches_its_script() {
    example_matches_its_script("router");
}

#[test]
fn hypervisor_example_matches_its_script() {
    example_matches_its_script("hypervisor");
    let table = read("hypervisor");
    assert_eq!(
        table.maps["vif_tenants"].kind,
        KindMatch::Exact(MapKind::VifTenants)
    );
}

/// nft 1.0.6 corrupted the element that straddled a 64 KiB netlink
/// message when it loaded a large concatenated *interval* map (the kind
/// tollgate used before tenant maps became hash maps): its realm came back
/// as `200:0`. This capture of today's map loaded intact, so the test
/// corrupts one element the same way and requires the reader to report it
/// instead of reading a wrong key.
#[test]
fn an_element_corrupted_by_nft_is_reported_not_misread() {
    let intact = fixture("overflow.json");
    assert!(read_table(&intact).unwrap().maps["tenant_classes"]
        .unreadable
        .is_empty());
    let element = r#"{"concat": [500, "0:2"]}"#;
    assert_eq!(intact.matches(element).count(), 1);
    let corrupted = intact.replace(element, r#"{"concat": [500, "200:0"]}"#);
    let table = read_table(&corrupted).unwrap();
    let got = &table.maps["tenant_classes"];
    let want = &overflow_plan().maps["tenant_classes"];
    assert_eq!(got.unreadable.len(), 1, "{:?}", got.unreadable);
    assert!(
        got.unreadable[0].contains("\"200:0\"") && got.unreadable[0].contains("nonzero major"),
        "{}",
        got.unreadable[0]
    );
    let missing: Vec<&MapKey> = want
        .elements
        .keys()
        .filter(|k| !got.elements.contains_key(k))
        .collect();
    assert_eq!(missing, [&MapKey::TenantRealm(500, 2)]);
    for (k, v) in &got.elements {
        assert_eq!(want.elements.get(k), Some(v));
    }
}

#[test]
fn foreign_forms_are_unreadable_or_unrecognised() {
    let table = read("foreign");
    let mut others = table.others.clone();
    others.sort_by(|a, b| a.kind.cmp(&b.kind));
    assert_eq!(
        others,
        [
            OtherObject {
                kind: "counter".into(),
                name: Some("hits".into())
            },
            OtherObject {
                kind: "set".into(),
                name: Some("blocked".into())
            },
        ]
    );
    let m = |n: &str| &table.maps[n];
    let c = |s: &str| MapValue::Class(ClassId::parse(s).unwrap());
    let p = |s: &str| Prefix::parse(s).unwrap();

    // An interval that is not a prefix is reported; an element with a
    // comment still reads; a class value is a class whatever its major.
    let realm4 = m("realm4");
    assert_eq!(realm4.kind, KindMatch::Exact(MapKind::Realm4));
    assert_eq!(realm4.unreadable.len(), 1);
    assert!(
        realm4.unreadable[0].contains("not one prefix"),
        "{:?}",
        realm4.unreadable
    );
    assert_eq!(
        realm4.elements,
        BTreeMap::from([
            (MapKey::Prefix(p("100.64.1.0/24")), c("0:2")),
            (MapKey::Prefix(p("100.64.2.0/24")), c("1:0")),
        ])
    );

    // An address range is reported; an element with a comment reads.
    let tenants4 = m("tenants4");
    assert_eq!(tenants4.unreadable.len(), 1, "{:?}", tenants4.unreadable);
    assert_eq!(
        tenants4.elements,
        BTreeMap::from([(MapKey::Prefix(p("100.64.3.0/24")), MapValue::Mark(3))])
    );
    // A realm with a major is reported.
    let classes = m("tenant_classes");
    assert_eq!(classes.unreadable.len(), 1, "{:?}", classes.unreadable);
    assert!(
        classes.unreadable[0].contains("nonzero major"),
        "{:?}",
        classes.unreadable
    );
    assert_eq!(
        classes.elements,
        BTreeMap::from([(MapKey::TenantRealm(3, 2), c("1:3"))])
    );

    // Declared with `type` instead of `typeof`: the kernel map is the same.
    assert_eq!(m("typed").kind, KindMatch::Exact(MapKind::Realm4));
    assert_eq!(m("typed").elements.len(), 1);

    for name in ["verdicts", "timeouts", "shard_flat"] {
        assert_eq!(m(name).kind, KindMatch::Unrecognised, "{name}");
        assert!(m(name).elements.is_empty(), "{name}");
        assert_eq!(m(name).unreadable.len(), 1, "{name}");
    }

    let rules = &table.chains["c"].rules;
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].comment.as_deref(), Some("not tollgate's"));
    assert_eq!(rules[1].comment, None);
    assert!(rules[0].handle < rules[1].handle);
}

/// A small deterministic generator, so that a failure can be replayed.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Reads `input`, turning a panic into a test failure that shows the input.
fn must_not_panic(input: &str, what: &str) {
    let result = std::panic::catch_unwind(|| {
        let _ = read_table(input);
    });
    assert!(result.is_ok(), "{what}: read_table panicked on:\n{input}");
}

#[test]
fn truncated_input_never_panics() {
    for name in ["edge", "foreign"] {
        let json = fixture(&format!("{name}.json"));
        for (cut, _) in json.char_indices() {
            must_not_panic(&json[..cut], &format!("{name} cut at {cut}"));
        }
        // Every cut but the whole text is an error.
        assert!(read_table(&json[..json.len() / 2]).is_err());
    }
}

#[test]
fn mutated_bytes_never_panic() {
    let json = fixture("edge.json").into_bytes();
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let alphabet = b"{}[]\":,0123456789-.abcdefx /\\ \n";
    for round in 0..8_000 {
        let mut bytes = json.clone();
        for _ in 0..1 + rng.below(4) {
            let at = rng.below(bytes.len());
            match rng.below(3) {
                0 => bytes[at] = alphabet[rng.below(alphabet.len())],
                1 => {
                    bytes.remove(at);
                }
                _ => bytes.insert(at, alphabet[rng.below(alphabet.len())]),
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        must_not_panic(&text, &format!("byte round {round}"));
    }
}

/// Every place in a JSON tree, as a JSON pointer.
fn pointers(v: &serde_json::Value, at: String, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                pointers(x, format!("{at}/{i}"), out);
            }
        }
        serde_json::Value::Object(o) => {
            for (k, x) in o {
                pointers(
                    x,
                    format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")),
                    out,
                );
            }
        }
        _ => {}
    }
    out.push(at);
}

/// Valid JSON of the wrong shape: each value replaced by one of another
/// type or an extreme of its own, where a decoder is most likely to index,
/// unwrap or overflow.
#[test]
fn mutated_values_never_panic() {
    use serde_json::json;
    let replacements = [
        json!(null),
        json!(true),
        json!(0),
        json!(-1),
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1.5e300),
        json!(""),
        json!("none"),
        json!("ffff:ffff"),
        json!("::"),
        json!("255.255.255.255"),
        json!([]),
        json!([1]),
        json!([1, 2, 3]),
        json!({}),
        json!({"prefix": {"addr": "0.0.0.0", "len": 99}}),
        json!({"prefix": {"addr": "::", "len": -5}}),
        json!({"range": ["1:2"]}),
        json!({"range": ["ffff:ffff", "0:0"]}),
        json!({"range": ["::", "0.0.0.0"]}),
        json!({"concat": []}),
        json!({"concat": "x"}),
        json!({"elem": {}}),
        json!({"elem": {"val": {"elem": {"val": 1}}}}),
        json!({"typeof": {"concat": [{"meta": {}}]}}),
    ];
    for name in ["edge", "foreign", "router"] {
        let tree: serde_json::Value =
            serde_json::from_str(&fixture(&format!("{name}.json"))).unwrap();
        let mut places = Vec::new();
        pointers(&tree, String::new(), &mut places);
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for round in 0..500 {
            let mut t = tree.clone();
            for _ in 0..1 + rng.below(3) {
                let at = &places[rng.below(places.len())];
                if let Some(slot) = t.pointer_mut(at) {
                    *slot = replacements[rng.below(replacements.len())].clone();
                }
            }
            must_not_panic(&t.to_string(), &format!("{name} value round {round}"));
        }
        // And every place replaced by every replacement, one object at a
        // time (the table plus that object) to keep each input small. The
        // router's objects are of the same forms as the edge plan's.
        if name == "router" {
            continue;
        }
        let items = tree["nftables"].as_array().unwrap();
        for item in &items[2..] {
            let small = serde_json::json!({"nftables": [items[0], items[1], item]});
            let mut places = Vec::new();
            pointers(&small, String::new(), &mut places);
            for at in &places {
                for r in &replacements {
                    let mut t = small.clone();
                    if let Some(slot) = t.pointer_mut(at) {
                        *slot = r.clone();
                    }
                    must_not_panic(&t.to_string(), &format!("{name} {at} = {r}"));
                }
            }
        }
    }
}

#[test]
fn deeply_nested_input_is_an_error_not_a_stack_overflow() {
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(read_table(&deep).is_err());
    let deep_elem = format!(
        r#"{{"nftables": [{{"table": {{"family": "netdev", "name": "tollgate"}}}}, {{"map": {{"family": "netdev", "table": "tollgate", "name": "m", "type": "mark", "map": "classid", "elem": [[{}1{}, "1:1"]]}}}}]}}"#,
        r#"{"elem": {"val": "#.repeat(60),
        "}}".repeat(60)
    );
    must_not_panic(&deep_elem, "nested elem");
}
