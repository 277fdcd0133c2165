//! The policy crate at its boundary: text in, policy or diagnostics out.

use std::path::Path;

/// A router site that every inline policy below starts with.
const SITE: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "10mbit", up = "10mbit" }
"#;

/// The router site with one realm whose prefixes come from file `name`.
fn with_prefix_file(name: &str) -> String {
    format!("{SITE}\n[realms]\ndefault = \"intl\"\n\n[realms.intl]\nid = 1\nprefix_files = [\"{name}\"]\n")
}

fn examples() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"))
}

/// Loads a file the way the binary does: prefix lists relative to its folder.
fn load_file(path: &Path) -> policy::Loaded {
    let text = std::fs::read_to_string(path).unwrap();
    let dir = path.parent().unwrap().to_path_buf();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    policy::load(&name, &text, &mut |p| {
        std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string())
    })
}

#[test]
fn shipped_examples_are_valid() {
    for name in ["router.toml", "hypervisor.toml"] {
        let loaded = load_file(&examples().join(name));
        assert!(!loaded.has_errors(), "{name}:\n{}", loaded.render());
        assert!(loaded.policy.is_some());
    }
}

#[test]
fn router_example_reads_realms_from_the_prefix_file() {
    let loaded = load_file(&examples().join("router.toml"));
    let p = loaded.policy.unwrap();
    let national = p.realms.by_name("national").unwrap();
    let listed: Vec<String> = national
        .prefixes
        .iter()
        .map(|(p, _)| p.to_string())
        .collect();
    assert!(listed.contains(&"192.0.2.0/24".to_string()), "{listed:?}");
    assert!(
        listed.contains(&"198.51.100.0/24".to_string()),
        "{listed:?}"
    );
    assert_eq!(
        p.realms.by_id(p.realms.default).unwrap().name,
        "international"
    );
}

#[test]
fn every_invalid_fixture_matches_its_snapshot() {
    insta::glob!("fixtures/invalid/*.toml", |path| {
        let loaded = load_file(path);
        assert!(loaded.has_errors(), "{} should be invalid", path.display());
        assert!(
            loaded.policy.is_none(),
            "an invalid policy must not be returned"
        );
        insta::assert_snapshot!(loaded.render());
    });
}

#[test]
fn ten_mistakes_are_all_reported_at_their_place() {
    let loaded = load_file(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/invalid/ten-mistakes.toml"),
    );
    let places: Vec<(usize, usize, String)> = loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| {
            let r = d.to_record(&loaded.sources);
            (r.line.unwrap(), r.column.unwrap(), r.message)
        })
        .collect();
    let expected: [(usize, usize, &str); 10] = [
        (3, 8, "unknown mode `switch`"),
        (6, 21, "ambiguous"),
        (12, 6, "realm id 0 is out of range"),
        (15, 34, "ceil (5mbit) is below rate (10mbit)"),
        (24, 6, "duplicate tenant id 1"),
        (26, 13, "overlaps"),
        (30, 8, "unknown plan `gold`"),
        (31, 13, "host bits"),
        (32, 13, "interface name `a/b`"),
        (33, 1, "unknown key `colour`"),
    ];
    assert_eq!(places.len(), 10, "{places:#?}");
    for ((line, col, msg), (el, ec, em)) in places.iter().zip(expected) {
        assert_eq!((*line, *col), (el, ec), "{msg}");
        assert!(msg.contains(em), "{msg:?} should mention {em:?}");
    }
}

#[test]
fn every_diagnostic_has_a_hint() {
    insta::glob!("fixtures/invalid/*.toml", |path| {
        let loaded = load_file(path);
        for d in &loaded.diagnostics {
            assert!(
                d.hint.is_some(),
                "{}: {} has no hint",
                path.display(),
                d.message
            );
        }
    });
}

#[test]
fn a_missing_prefix_file_is_reported_where_it_is_named() {
    let text = with_prefix_file("nowhere.txt");
    let loaded = policy::load_str("p.toml", &text);
    let r = loaded.diagnostics[0].to_record(&loaded.sources);
    assert_eq!((r.line, r.column), (Some(13), Some(17)));
    assert!(r.message.contains("nowhere.txt"));
}

#[test]
fn errors_in_a_prefix_file_point_into_that_file() {
    let text = with_prefix_file("list.txt");
    let loaded = policy::load("p.toml", &text, &mut |_| {
        Ok("# comment\n192.0.2.0/24\n  203.0.113.5/24  # oops\n".into())
    });
    assert_eq!(loaded.diagnostics.len(), 1, "{}", loaded.render());
    let r = loaded.diagnostics[0].to_record(&loaded.sources);
    assert_eq!(
        (r.file.as_deref(), r.line, r.column),
        (Some("list.txt"), Some(3), Some(3))
    );
}

#[test]
fn oversubscription_is_a_warning_not_an_error() {
    let text = SITE.to_owned()
        + r#"
[plans.p]
down = { rate = "6mbit" }
up = { rate = "1mbit" }

[[tenants]]
id = 1
plan = "p"
prefixes = ["100.64.0.0/24"]

[[tenants]]
id = 2
plan = "p"
prefixes = ["100.64.1.0/24"]
"#;
    let loaded = policy::load_str("p.toml", &text);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    assert!(loaded.policy.is_some());
    assert_eq!(loaded.diagnostics.len(), 1);
    assert!(
        loaded.diagnostics[0].message.contains("1.20×"),
        "{}",
        loaded.render()
    );
}

proptest::proptest! {
    /// Whatever the bytes, loading returns; it never panics.
    #[test]
    fn loading_never_panics(text in "\\PC{0,400}") {
        let loaded = policy::load_str("p.toml", &text);
        let _ = loaded.render();
    }

    /// Mutating one character of a valid policy never panics either, and a
    /// policy is only returned if no error was found.
    #[test]
    fn mutations_of_the_example_never_panic(pos in 0usize..3000, ch in proptest::char::any()) {
        let text = std::fs::read_to_string(examples().join("hypervisor.toml")).unwrap();
        let mut chars: Vec<char> = text.chars().collect();
        let i = pos % chars.len();
        chars[i] = ch;
        let mutated: String = chars.into_iter().collect();
        let loaded = policy::load_str("p.toml", &mutated);
        proptest::prop_assert_eq!(loaded.policy.is_some(), !loaded.has_errors());
        let _ = loaded.render();
    }
}

#[test]
fn bgp_routes_take_the_first_matching_realm_in_file_order() {
    let text = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "100mbit", up = "100mbit" }

[realms]
default = "international"

[realms.ix]
id = 30
peers = ["192.0.2.1"]

[realms.national]
id = 1
communities = ["65000:100"]
large_communities = ["65000:1:100"]
origin_as = [64500]
as_path_contains = [64511]
next_hops = ["2001:db8::1"]

[realms.international]
id = 2
"#;
    let loaded = policy::load_str("p.toml", text);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let p = loaded.policy.unwrap();
    let r = &p.realms;
    let view = |peer: &str, path: &'static [u32], comms: &'static [u32]| policy::RouteView {
        peer: peer.parse().ok(),
        next_hop: None,
        as_path: path,
        communities: comms,
        large_communities: &[],
    };
    let national = net_types::RealmId(1);
    assert_eq!(
        r.for_route(&view("198.51.100.9", &[64496, 64500], &[])),
        national,
        "origin AS"
    );
    assert_eq!(
        r.for_route(&view("198.51.100.9", &[64511, 64496], &[])),
        national,
        "AS on the path"
    );
    assert_eq!(
        r.for_route(&view("198.51.100.9", &[64496], &[65000 << 16 | 100])),
        national,
        "community"
    );
    assert_eq!(
        r.for_route(&view("198.51.100.9", &[64496], &[])),
        net_types::RealmId(2),
        "default"
    );
    // The IX realm comes first in the file, so it wins over a national origin.
    assert_eq!(
        r.for_route(&view("192.0.2.1", &[64500], &[])),
        net_types::RealmId(30)
    );
    let large = [[65000, 1, 100]];
    let hop: std::net::IpAddr = "2001:db8::1".parse().unwrap();
    let v = policy::RouteView {
        large_communities: &large,
        ..view("198.51.100.9", &[], &[])
    };
    assert_eq!(r.for_route(&v), national, "large community");
    assert_eq!(
        r.for_route(&policy::RouteView {
            next_hop: Some(hop),
            ..view("198.51.100.9", &[], &[])
        }),
        national,
        "next hop"
    );
}
