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

/// Issue 12, item 11: `prefix_files = ["../../../../etc/shadow"]` printed
/// every line of the file in the diagnostics.
#[test]
fn a_file_that_is_not_a_prefix_list_is_not_echoed_past_its_first_bad_line() {
    let shadow = "root:$6$saltsalt$secrethash:19000:0:99999:7:::\ndaemon:*:19000:0:99999:7:::\nbob:$6$x$othersecret:1:0:9:7:::\n";
    let loaded = policy::load("p.toml", &with_prefix_file("list.txt"), &mut |_| {
        Ok(shadow.to_owned())
    });
    let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{}", loaded.render());
    let r = errors[0].to_record(&loaded.sources);
    assert_eq!(
        (r.file.as_deref(), r.line, r.column),
        (Some("list.txt"), Some(1), Some(1))
    );
    assert!(
        r.message.contains("does not look like a prefix list"),
        "{}",
        r.message
    );
    let out = loaded.render() + &serde_json_free(&loaded);
    for secret in ["root", "$6$", "secret", "daemon", "bob", "19000"] {
        assert!(!out.contains(secret), "`{secret}` echoed:\n{out}");
    }

    // Good lines first, then something else: reading stops at the first bad
    // line and nothing after it is kept.
    let loaded = policy::load("p.toml", &with_prefix_file("list.txt"), &mut |_| {
        Ok("192.0.2.0/24\n  hunter2 is my password\nsecret line\n".into())
    });
    let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{}", loaded.render());
    let r = errors[0].to_record(&loaded.sources);
    assert_eq!((r.line, r.column), (Some(2), Some(3)));
    let out = loaded.render() + &serde_json_free(&loaded);
    assert!(!out.contains("hunter2") && !out.contains("secret"), "{out}");
    assert_eq!(
        loaded.sources.get(policy::FileId(1)).unwrap().text,
        "192.0.2.0/24\n  ",
        "only what was read as a prefix list is kept"
    );
}

/// Every diagnostic as its JSON-ready record, flattened to text.
fn serde_json_free(loaded: &policy::Loaded) -> String {
    loaded
        .diagnostics
        .iter()
        .map(|d| format!("{:?}", d.to_record(&loaded.sources)))
        .collect()
}

#[test]
fn a_typo_in_a_prefix_list_is_shown_and_stops_the_reading() {
    let loaded = policy::load("p.toml", &with_prefix_file("list.txt"), &mut |_| {
        Ok("192.0.2.0/24\n198.51.100.0/33\n203.0.113.0/24\n2001:db8::/129\n".into())
    });
    let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{}", loaded.render());
    let r = errors[0].to_record(&loaded.sources);
    assert_eq!((r.line, r.column), (Some(2), Some(1)));
    assert!(
        r.message.contains("/33") && r.message.contains("was not read"),
        "{}",
        r.message
    );
    assert_eq!(r.text.as_deref(), Some("198.51.100.0/33"));
}

#[test]
fn a_binary_prefix_file_is_one_error_at_its_first_bad_byte() {
    let mut bytes = b"192.0.2.0/24\nab\xff\xfe secret\n".to_vec();
    bytes.extend(std::iter::repeat_n(0u8, 1000));
    let loaded = policy::load_bytes("p.toml", with_prefix_file("bin").as_bytes(), &mut |_| {
        Ok(bytes.clone())
    });
    let errors: Vec<_> = loaded.diagnostics.iter().filter(|d| d.is_error()).collect();
    assert_eq!(errors.len(), 1, "{}", loaded.render());
    let r = errors[0].to_record(&loaded.sources);
    assert_eq!(
        (r.file.as_deref(), r.line, r.column),
        (Some("bin"), Some(2), Some(3))
    );
    assert!(r.message.contains("not UTF-8"), "{}", r.message);
    assert!(!loaded.render().contains("secret") && !loaded.render().contains("ab"));
}

/// Issue 12, item 11 (b): what the `read_file` callback can say, each
/// reported at the `prefix_files` entry with a hint.
#[test]
fn read_errors_are_reported_at_the_entry_that_names_the_file() {
    for (error, says) in [
        (policy::ReadError::NotRegularFile, "not a regular file"),
        (
            policy::ReadError::TooLarge { limit: 64 << 20 },
            "larger than",
        ),
        (
            policy::ReadError::OutsideAllowedFolders {
                allowed: vec!["/etc/tollgate".into()],
            },
            "outside the folders",
        ),
        (policy::ReadError::NotFound, "no such file"),
        (
            policy::ReadError::Io("Permission denied".into()),
            "Permission denied",
        ),
    ] {
        let loaded = policy::load_bytes(
            "p.toml",
            with_prefix_file("fifo.txt").as_bytes(),
            &mut |_| Err(error.clone()),
        );
        assert_eq!(loaded.diagnostics.len(), 1, "{}", loaded.render());
        let d = &loaded.diagnostics[0];
        let r = d.to_record(&loaded.sources);
        assert_eq!((r.line, r.column), (Some(13), Some(17)), "{error:?}");
        assert!(
            r.message.contains("fifo.txt") && r.message.contains(says),
            "{}",
            r.message
        );
        assert_eq!(d.hint.as_deref(), Some(error.hint().as_str()));
    }
}

#[test]
fn a_callback_that_ignores_the_limit_is_still_refused() {
    let huge = vec![b'#'; policy::PREFIX_FILE_LIMIT as usize + 1];
    let loaded = policy::load_bytes("p.toml", with_prefix_file("zero").as_bytes(), &mut |_| {
        Ok(huge.clone())
    });
    assert_eq!(loaded.diagnostics.len(), 1, "{}", loaded.render());
    assert!(loaded.diagnostics[0].message.contains("larger than"));
    assert_eq!(loaded.sources.len(), 1, "the file's bytes are not kept");
}

#[test]
fn load_with_folders_refuses_before_opening() {
    let folders = policy::PrefixFolders::beside("/etc/tollgate");
    let mut opened = Vec::new();
    let loaded = policy::load_with_folders(
        "p.toml",
        with_prefix_file("../../../../etc/shadow").as_bytes(),
        &folders,
        &mut |path, limit| {
            opened.push((path.to_path_buf(), limit));
            Ok(Vec::new())
        },
    );
    assert!(opened.is_empty(), "{opened:?}");
    assert!(
        loaded.render().contains("outside the folders"),
        "{}",
        loaded.render()
    );
    assert!(
        loaded.render().contains("`/etc/tollgate`"),
        "{}",
        loaded.render()
    );

    let loaded = policy::load_with_folders(
        "p.toml",
        with_prefix_file("lists/../national.txt").as_bytes(),
        &folders,
        &mut |path, limit| {
            opened.push((path.to_path_buf(), limit));
            Ok(b"192.0.2.0/24\n".to_vec())
        },
    );
    assert!(!loaded.has_errors(), "{}", loaded.render());
    assert_eq!(
        opened,
        vec![(
            "/etc/tollgate/national.txt".into(),
            policy::PREFIX_FILE_LIMIT
        )]
    );
}

/// Issue 12, item 12: a policy that is not UTF-8 was refused with exit 2
/// and no location.
#[test]
fn a_policy_that_is_not_utf8_is_a_diagnostic_at_its_first_bad_byte() {
    let mut bytes = SITE.as_bytes().to_vec();
    bytes.extend_from_slice(b"\n# caf\xe9 in Latin-1\n[realms]\n");
    let loaded = policy::load_bytes("p.toml", &bytes, &mut |_| Err(policy::ReadError::NotFound));
    assert!(loaded.policy.is_none());
    assert_eq!(loaded.diagnostics.len(), 1, "{}", loaded.render());
    let r = loaded.diagnostics[0].to_record(&loaded.sources);
    assert_eq!(
        (r.line, r.column),
        (Some(8), Some(6)),
        "{}",
        loaded.render()
    );
    assert!(r.message.contains("0xe9"), "{}", r.message);
    assert!(
        loaded
            .render()
            .starts_with("p.toml:8:6: error: the policy is not UTF-8"),
        "{}",
        loaded.render()
    );
    assert!(loaded.diagnostics[0]
        .hint
        .as_deref()
        .unwrap()
        .contains("UTF-8"));
}

/// A router policy with one plan, and `tenants` appended.
fn router_with(site_extra: &str, tenants: &str) -> policy::Loaded {
    let text = format!(
        "[site]\nmode = \"router\"\nuplink = \"wan0\"\nlan = \"lan0\"\ncapacity = {{ down = \"10mbit\", up = \"10mbit\" }}\n{site_extra}\n[plans.p]\ndown = {{ rate = \"1mbit\" }}\nup = {{ rate = \"1mbit\" }}\n{tenants}"
    );
    policy::load_str("p.toml", &text)
}

/// Issue 12, item 14: a tenant named `tg-down` was accepted.
#[test]
fn names_that_collide_with_tollgates_own_are_refused() {
    let tenant = |id: u32, name: &str| {
        format!("[[tenants]]\nid = {id}\nname = \"{name}\"\nplan = \"p\"\nprefixes = [\"100.64.0.{id}/32\"]\n")
    };
    for (name, says) in [
        ("tg-down", "reserved `tg-` namespace"),
        ("tg-anything", "reserved `tg-` namespace"),
        ("7", "is a number"),
        ("", "is empty"),
        ("a\\u001b[2Jb", "control character"),
    ] {
        let loaded = router_with("", &tenant(3, name));
        let e = errors(&loaded);
        assert_eq!(e.len(), 1, "{name:?}: {e:?}");
        assert!(e[0].contains(says), "{name:?}: {e:?}");
    }
    // A number that is the tenant's own id finds the same tenant.
    assert!(!router_with("", &tenant(3, "3")).has_errors());
    assert!(!router_with("", &tenant(3, "tgdown")).has_errors());

    // The site's interfaces: tollgate owns and deletes `tg-*` IFBs.
    let loaded = router_with("", "").diagnostics.len();
    assert_eq!(loaded, 0);
    for (site, says) in [
        (
            "uplink = \"tg-down\"\n",
            "uplink `tg-down` is in tollgate's reserved",
        ),
        (
            "lan = \"tg-wan\"\n",
            "lan `tg-wan` is in tollgate's reserved",
        ),
        ("uplink = \"wan@0\"\n", "has '@'"),
        ("lan = \"la;n\"\n", "has ';'"),
    ] {
        let text = router_with("", "")
            .sources
            .get(policy::FileId(0))
            .unwrap()
            .text
            .replace(
                if site.starts_with("uplink") {
                    "uplink = \"wan0\"\n"
                } else {
                    "lan = \"lan0\"\n"
                },
                site,
            );
        let e = errors(&policy::load_str("p.toml", &text));
        assert_eq!(e.len(), 1, "{site}: {e:?}");
        assert!(e[0].contains(says), "{site}: {e:?}");
    }
}

#[test]
fn a_realm_named_default_is_refused_with_a_reason() {
    let text = format!("{SITE}\n[realms]\n[realms.default]\nid = 1\n");
    let e = errors(&policy::load_str("p.toml", &text));
    assert!(
        e.iter()
            .any(|e| e.contains("`default` cannot be a realm's name")),
        "{e:?}"
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

/// The router site with two realms and two plans, for [billing] and [overage].
fn billed(extra: &str) -> policy::Loaded {
    policy::load_str("p.toml", &billed_text(extra))
}

fn billed_text(extra: &str) -> String {
    SITE.to_owned()
        + r#"
[realms]
default = "international"
[realms.national]
id = 1
[realms.international]
id = 2

[plans.basic]
down = { rate = "1mbit" }
up = { rate = "1mbit" }
[plans.overage]
shared = true
id = 100
down = { rate = "2mbit" }
up = { rate = "2mbit" }

[[tenants]]
id = 1
plan = "basic"
prefixes = ["100.64.0.0/24"]
"# + extra
}

fn errors(loaded: &policy::Loaded) -> Vec<String> {
    loaded
        .diagnostics
        .iter()
        .filter(|d| d.is_error())
        .map(|d| format!("{} ({})", d.message, d.hint.as_deref().unwrap_or("")))
        .collect()
}

#[test]
fn billing_and_overage_are_read_with_their_places() {
    let loaded = billed(
        r#"
[billing]
day = 15
timezone = "America/Argentina/Buenos_Aires"
percentile = 90
method = "sum_of_directions"
rank = "vnstat"
missing = "skip"
volume = "up"
quota = "1000gb"

[[billing.charges]]
name = "international"
realms = ["international"]
commit = "1mbit"
quota = "100gb"

[[billing.charges]]
name = "rest"
except = ["international"]
percentile = false

[overage]
enabled = true
plan = "overage"
margin_percent = 20
min_elapsed = "12h"
check_every = "90s"
"#,
    );
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let p = loaded.policy.as_ref().unwrap();
    let b = p.billing.as_ref().unwrap();
    assert_eq!(b.day.value, 15);
    assert_eq!(b.timezone.value, "America/Argentina/Buenos_Aires");
    assert_eq!(b.percentile.value, 90);
    assert_eq!(b.method.value, policy::BillingMethod::SumOfDirections);
    assert_eq!(b.rank.value, policy::RankRule::VnStat);
    assert_eq!(b.missing.value, policy::MissingSamples::Skip);
    assert_eq!(b.volume.value, policy::VolumeCounts::Up);
    assert_eq!(
        b.quota.unwrap().value,
        net_types::Size::from_bytes(1000 << 30)
    );
    assert_eq!(b.charges.len(), 2);
    let intl = &b.charges[0];
    assert_eq!(intl.name.value, "international");
    assert_eq!(intl.realms[0].value, "international");
    assert!(intl.percentile.value);
    assert_eq!(intl.commit.unwrap().value.bps(), 1_000_000);
    assert_eq!(b.charges[1].except[0].value, "international");
    assert!(!b.charges[1].percentile.value);
    let o = p.overage.as_ref().unwrap();
    assert!(o.enabled.value);
    assert_eq!(o.plan.value, "overage");
    assert_eq!(o.margin_percent.value, 20);
    assert_eq!(o.min_elapsed.value.as_secs(), 12 * 3600);
    assert_eq!(o.check_every.value.as_secs(), 90);
    // Values keep where they were written.
    let at = |span| {
        let r = policy::Diagnostic::error(Some(span), "").to_record(&loaded.sources);
        (r.line.unwrap(), r.column.unwrap(), r.text.unwrap())
    };
    assert_eq!(
        at(b.timezone.span),
        (31, 12, "\"America/Argentina/Buenos_Aires\"".into())
    );
    assert_eq!(at(intl.realms[0].span).2, "\"international\"");
    assert_eq!(at(o.plan.span).2, "\"overage\"");
}

#[test]
fn empty_sections_mean_the_defaults() {
    let loaded = billed("[billing]\n[overage]\n");
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let p = loaded.policy.unwrap();
    let b = p.billing.unwrap();
    assert_eq!((b.day.value, b.timezone.value.as_str()), (1, "UTC"));
    assert_eq!(b.percentile.value, 95);
    assert_eq!(b.method.value, policy::BillingMethod::MaxOfDirections);
    assert_eq!(b.rank.value, policy::RankRule::NearestRank);
    assert_eq!(b.missing.value, policy::MissingSamples::ZeroAgainstExpected);
    assert_eq!(b.volume.value, policy::VolumeCounts::Both);
    assert!(b.quota.is_none() && b.charges.is_empty());
    // A default keeps its section's place.
    assert_eq!(b.day.span, b.span);
    let o = p.overage.unwrap();
    assert!(!o.enabled.value);
    assert_eq!(o.plan.value, "overage");
    assert_eq!(o.margin_percent.value, 10);
    assert_eq!(o.min_elapsed.value.as_secs(), 86_400);
    assert_eq!(o.check_every.value.as_secs(), 300);
    // Without the sections there is nothing, and the binary's defaults apply.
    let p = billed("").policy.unwrap();
    assert!(p.billing.is_none() && p.overage.is_none());
}

#[test]
fn the_default_overage_plan_must_exist_only_when_enabled() {
    let text =
        SITE.to_owned() + "[plans.basic]\ndown = { rate = \"1mbit\" }\nup = { rate = \"1mbit\" }\n";
    let off = policy::load_str("p.toml", &format!("{text}[overage]\nmargin_percent = 5\n"));
    assert!(!off.has_errors(), "{}", off.render());
    let on = policy::load_str("p.toml", &format!("{text}[overage]\nenabled = true\n"));
    let e = errors(&on);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("unknown plan `overage` as the overage plan"),
        "{e:?}"
    );
    assert!(e[0].contains("unless `plan` names another"), "{e:?}");
    // A plan written out is checked even while the automation is off.
    let named = policy::load_str("p.toml", &format!("{text}[overage]\nplan = \"basik\"\n"));
    let e = errors(&named);
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("did you mean `basic`?"), "{e:?}");
}

#[test]
fn a_charge_naming_a_realm_that_failed_is_not_also_unknown() {
    let text = SITE.to_owned()
        + r#"
[realms]
default = "ix"
[realms.ix]
prefixes = ["192.0.2.0/24"]

[billing]
[[billing.charges]]
name = "ix"
realms = ["ix"]
"#;
    let e = errors(&policy::load_str("p.toml", &text));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("is missing `id`"), "{e:?}");
}

#[test]
fn a_charge_without_realms_declared_says_so() {
    let text =
        SITE.to_owned() + "[billing]\n[[billing.charges]]\nname = \"x\"\nexcept = [\"national\"]\n";
    let e = errors(&policy::load_str("p.toml", &text));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("unknown realm `national` in charge `x`")
            && e[0].contains("no realms are declared yet"),
        "{e:?}"
    );
}

#[test]
fn time_zones_are_checked_for_shape_only() {
    for ok in [
        "UTC",
        "Europe/Berlin",
        "America/Port-au-Prince",
        "Etc/GMT+5",
        "America/Argentina/Buenos_Aires",
        // Well formed but not a zone: the binary, which has the database, says so.
        "Mars/Olympus_Mons",
    ] {
        let loaded = billed(&format!("[billing]\ntimezone = \"{ok}\"\n"));
        assert!(!loaded.has_errors(), "{ok}: {}", loaded.render());
    }
    for bad in [
        "",
        "Europe/ Berlin",
        "Europe//Berlin",
        "/UTC",
        "UTC+02:00",
        "+02:00",
    ] {
        let e = errors(&billed(&format!("[billing]\ntimezone = \"{bad}\"\n")));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(
            e[0].contains("is not an IANA time zone name"),
            "{bad}: {e:?}"
        );
    }
}

#[test]
fn billing_vocabulary_and_ranges_are_the_billing_crates() {
    let cases: &[(&str, &str)] = &[
        ("day = 0", "billing day 0"),
        ("day = 29", "billing day 29"),
        ("percentile = 0", "percentile 0 is not between 1 and 99"),
        ("percentile = \"95\"", "must be a whole number"),
        ("method = \"max\"", "unknown billing method `max`"),
        ("rank = \"nearest\"", "unknown rank rule `nearest`"),
        ("rank = \"libre_nms\"", "did you mean `librenms`?"),
        ("missing = \"skp\"", "did you mean `skip`?"),
        ("volume = \"in\"", "unknown volume rule `in`"),
        ("quota = \"10mbit\"", ""),
    ];
    for (line, expect) in cases {
        let e = errors(&billed(&format!("[billing]\n{line}\n")));
        assert_eq!(e.len(), 1, "{line}: {e:?}");
        assert!(e[0].contains(expect), "{line}: {e:?}");
    }
    for line in ["day = 28", "percentile = 99", "percentile = 1", "day = 1"] {
        let loaded = billed(&format!("[billing]\n{line}\n"));
        assert!(!loaded.has_errors(), "{line}: {}", loaded.render());
    }
}

#[test]
fn overage_durations_use_the_one_duration_parser() {
    for (text, secs) in [
        ("30s", 30),
        ("1.5h", 5_400),
        ("5m", 300),
        ("12h", 43_200),
        ("70d", 6_048_000),
    ] {
        let loaded = billed(&format!("[overage]\nmin_elapsed = \"{text}\"\n"));
        let o = loaded.policy.as_ref().and_then(|p| p.overage.as_ref());
        assert_eq!(
            o.map(|o| o.min_elapsed.value.as_secs()),
            Some(secs),
            "{text}"
        );
    }
    for bad in ["5", "5w", "1.2.3h", "-5m", "m", "5M"] {
        let e = errors(&billed(&format!("[overage]\ncheck_every = \"{bad}\"\n")));
        assert_eq!(e.len(), 1, "{bad}: {e:?}");
        assert!(e[0].contains("is not a duration"), "{bad}: {e:?}");
    }
    // Past the documented maximum, with checked arithmetic (issue 12, item 15).
    for long in [
        "99999999999999999999d",
        "36501d",
        "100000000000000000000000s",
    ] {
        let e = errors(&billed(&format!("[overage]\nmin_elapsed = \"{long}\"\n")));
        assert_eq!(e.len(), 1, "{long}: {e:?}");
        assert!(e[0].contains("longer than 100 years"), "{long}: {e:?}");
    }
    let e = errors(&billed("[overage]\nmin_elapsed = \"2 hours\"\n"));
    assert!(e[0].contains("write \"2h\""), "{e:?}");
}

#[test]
fn the_router_examples_commented_billing_is_valid_once_uncommented() {
    let path = examples().join("router.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let uncommented: String = text
        .lines()
        .map(|l| match l.strip_prefix("# ") {
            // `[section]` and `key = value` lines, not the prose around them.
            Some(rest) if rest.starts_with('[') || is_setting(rest) => rest,
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(uncommented.contains("\n[billing]\n"), "{uncommented}");
    let dir = path.parent().unwrap().to_path_buf();
    let loaded = policy::load("router.toml", &uncommented, &mut |p| {
        std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string())
    });
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let p = loaded.policy.unwrap();
    assert_eq!(p.billing.unwrap().timezone.value, "Europe/Berlin");
    assert_eq!(p.overage.unwrap().plan.value, "overage");
}

/// Whether a line reads `key = …`.
fn is_setting(line: &str) -> bool {
    line.split_once(" = ").is_some_and(|(k, _)| {
        !k.is_empty() && k.chars().all(|c| c.is_ascii_lowercase() || c == '_')
    })
}

#[test]
fn broadcast_and_multicast_are_unbilled_unless_the_site_says() {
    let site = |extra: &str| router_with(extra, "");
    let p = site("").policy.unwrap();
    assert!(!p.site.bill_broadcast && !p.site.bill_multicast);
    let p = site("bill_broadcast = true\nbill_multicast = true\n")
        .policy
        .unwrap();
    assert!(p.site.bill_broadcast && p.site.bill_multicast);
    let e = errors(&site("bill_broadcast = \"yes\"\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(
        e[0].contains("`bill_broadcast` must be true or false"),
        "{e:?}"
    );
}

#[test]
fn a_guard_section_becomes_the_detector_config() {
    let text = format!(
        r#"{SITE}
[plans.basic]
down = {{ rate = "1mbit", ceil = "5mbit" }}
up = {{ rate = "1mbit", ceil = "5mbit" }}

[[tenants]]
id = 1
plan = "basic"
prefixes = ["203.0.113.0/26", "2001:db8:100::/48"]

[[tenants]]
id = 2
plan = "basic"
prefixes = ["203.0.113.64/26"]

[guard]
ewma = "2s"
instant = "500ms"
min_prefix_v6 = 64

[guard.capture]
interfaces = ["eth0", "eth1"]
threads = 2

[guard.thresholds]
pps_in = 20000
bps_in = "1gbit"
syn_out = "off"

[[guard.group]]
name = "voip"
prefixes = ["203.0.113.64/26"]
inherit = "global"
udp_pps_in = 5000
total = {{ pps_in = 50000 }}

[[guard.group.ladder]]
rung = "notify"
hold = "1m"
script = "/usr/local/bin/notify_about_attack.sh"

[[guard.ladder]]
rung = "notify"
hold = "5m"
webhook = "https://hooks.example.net/guard"
every = "20s"

[[guard.ladder]]
rung = "rtbh"
after = "30s"
hold = "30m"
next_hop = "192.0.2.1"

[[guard.ladder]]
rung = "flowspec"
after = "1m"
hold = "30m"
rate = "1mbit"
"#
    );
    let loaded = policy::load_str("guard.toml", &text);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    assert!(!loaded.render().contains("no input"), "{}", loaded.render());
    let p = loaded.policy.unwrap();
    let g = p.guard.as_ref().unwrap();
    let cap = g.capture.as_ref().unwrap();
    assert_eq!(cap.interfaces.len(), 2);
    assert_eq!((cap.threads, cap.sample_one_in), (2, 1));
    assert_eq!(cap.tick, std::time::Duration::from_millis(100));
    let c = g.config(&p);
    // networks default to the tenants' prefixes.
    assert_eq!(c.networks.len(), 3);
    assert_eq!(c.ewma, std::time::Duration::from_secs(2));
    assert_eq!(c.instant, Some(std::time::Duration::from_millis(500)));
    assert_eq!(c.min_prefix_v6, 64);
    use guard::{Direction, Limit, Metric};
    assert_eq!(
        c.global.get(Direction::In, Metric::Bps),
        Limit::At(1_000_000_000)
    );
    assert_eq!(c.global.get(Direction::Out, Metric::Syn), Limit::Off);
    assert_eq!(c.global.get(Direction::Out, Metric::Pps), Limit::Inherit);
    // The explicit group, then tenant 1's group (tenant 2's only prefix is
    // the explicit group's, so it has none of its own).
    let names: Vec<&str> = c.groups.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(names, vec!["voip", "tenant-1"]);
    assert_eq!(c.groups[0].parent.as_deref(), Some("global"));
    assert_eq!(
        c.groups[0].totals.get(Direction::In, Metric::Pps),
        Limit::At(50_000)
    );
    assert_eq!(c.groups[0].ladder.as_ref().unwrap().len(), 1);
    assert_eq!(
        c.ladder[1].action,
        guard::Action::Rtbh {
            communities: vec![guard::Community::BLACKHOLE],
            next_hop: Some("192.0.2.1".parse().unwrap()),
        }
    );
    assert_eq!(
        c.ladder[2].action,
        guard::Action::Flowspec {
            rate: net_types::Rate::from_bps(1_000_000)
        }
    );
    assert_eq!(
        c.ladder[0].action,
        guard::Action::Notify {
            script: None,
            webhook: Some("https://hooks.example.net/guard".into()),
            every: Some(std::time::Duration::from_secs(20)),
        }
    );
    assert!(c.check().is_empty(), "{:?}", c.check());
    let d = guard::Detector::new(c).unwrap();
    assert_eq!(d.group_of("203.0.113.70".parse().unwrap()), Some("voip"));
    assert_eq!(d.group_of("203.0.113.7".parse().unwrap()), Some("tenant-1"));
    assert_eq!(d.group_of("203.0.113.200".parse().unwrap()), None);
}

#[test]
fn a_guard_without_thresholds_or_ladder_is_refused_where_it_is() {
    let text = format!("{SITE}\n[guard]\nnetworks = [\"203.0.113.0/24\"]\n");
    let loaded = policy::load_str("g.toml", &text);
    let out = loaded.render();
    assert!(
        out.contains("g.toml:8:1: error: [guard] has no [guard.thresholds]"),
        "{out}"
    );
    assert!(
        out.contains("g.toml:8:1: error: [guard] has no [[guard.ladder]]"),
        "{out}"
    );
}

#[test]
fn a_tenant_outside_the_guard_networks_is_a_warning() {
    let text = format!(
        r#"{SITE}
[plans.basic]
down = {{ rate = "1mbit", ceil = "5mbit" }}
up = {{ rate = "1mbit", ceil = "5mbit" }}

[[tenants]]
id = 7
plan = "basic"
prefixes = ["198.51.100.0/24"]

[guard]
networks = ["203.0.113.0/24"]

[guard.thresholds]
pps_in = 20000

[[guard.ladder]]
rung = "notify"
hold = "5m"
script = "/usr/local/bin/notify_about_attack.sh"
"#
    );
    let loaded = policy::load_str("w.toml", &text);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let out = loaded.render();
    assert!(
        out.contains("warning: tenant 7's prefix 198.51.100.0/24 is outside [guard] `networks`"),
        "{out}"
    );
    let p = loaded.policy.unwrap();
    let c = p.guard.as_ref().unwrap().config(&p);
    assert!(c.groups.is_empty(), "{:?}", c.groups);
}

#[test]
fn a_bgp_section_is_read_and_an_rtbh_rung_without_a_peer_to_announce_to_is_warned() {
    let base = r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }

[guard]
networks = ["203.0.113.0/24"]

[guard.capture]
interfaces = ["wan0"]

[guard.thresholds]
pps_in = 20000

[[guard.ladder]]
rung = "rtbh"
hold = "10m"
"#;
    let loaded = policy::load_str("p.toml", base);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let r = loaded.render();
    assert!(
        r.contains("p.toml:16:1: warning: an `rtbh` rung but no BGP peer"),
        "{r}"
    );
    let text = format!(
        r#"{base}
[bgp]
local_as = 4200000001
router_id = "192.0.2.1"
listen = []

[[bgp.peers]]
address = "2001:db8::2"
remote_as = 65001
port = 1179
passive = false
families = ["ipv6", "ipv4", "ipv6"]
announce = true
flowspec = true
hold_time = 0
name = "upstream"
next_hop_v4 = "192.0.2.1"
next_hop_v6 = "2001:db8::1"
"#
    );
    let loaded = policy::load_str("p.toml", &text);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    assert!(!loaded.render().contains("rtbh"), "{}", loaded.render());
    let p = loaded.policy.unwrap();
    let b = p.bgp.as_ref().unwrap();
    assert_eq!((b.local_as, b.hold_time), (4_200_000_001, 90));
    assert!(b.listen.is_empty());
    let peer = &b.peers[0];
    assert_eq!(
        peer.address,
        "2001:db8::2".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!((peer.remote_as, peer.port), (65001, 1179));
    assert!(!peer.passive && peer.announce && peer.flowspec);
    assert_eq!(
        peer.families,
        vec![policy::BgpFamily::Ipv4, policy::BgpFamily::Ipv6]
    );
    assert_eq!(peer.hold_time, Some(0));
    assert_eq!(peer.next_hop_v6, Some("2001:db8::1".parse().unwrap()));
    // Defaults: listen on port 179, passive, announcing nothing.
    let text = format!(
        "{base}\n[bgp]\nlocal_as = 65000\nrouter_id = \"192.0.2.1\"\n[[bgp.peers]]\naddress = \"192.0.2.2\"\nremote_as = 65001\n"
    );
    let loaded = policy::load_str("p.toml", &text);
    assert!(loaded.render().contains("no BGP peer to announce to"));
    let p = loaded.policy.unwrap();
    let b = p.bgp.as_ref().unwrap();
    assert_eq!(b.listen, vec!["0.0.0.0:179".parse().unwrap()]);
    assert!(b.peers[0].passive && !b.peers[0].announce);
    // An empty listen with only passive peers can never start a session.
    let text = format!(
        "{base}\n[bgp]\nlocal_as = 65000\nrouter_id = \"192.0.2.1\"\nlisten = []\n[[bgp.peers]]\naddress = \"192.0.2.2\"\nremote_as = 65001\n"
    );
    let r = policy::load_str("p.toml", &text).render();
    assert!(r.contains("p.toml:23:10: error: `listen` is empty"), "{r}");
}

#[test]
fn central_is_read_with_its_defaults_and_its_mistakes_at_their_place() {
    let ok =
        billed("[central]\nurl = \"http://192.0.2.9:9188/\"\ntoken_file = \"central.token\"\n");
    assert!(!ok.has_errors(), "{}", ok.render());
    let c = ok.policy.unwrap().central.unwrap();
    assert_eq!(c.url, "http://192.0.2.9:9188");
    assert_eq!(
        c.target,
        policy::CentralTarget::Tollgate {
            token_file: "central.token".into(),
            ca: None
        }
    );
    assert_eq!(c.writer, None);
    let named =
        billed("[central]\nurl = \"http://c:9188\"\ntoken_file = \"t\"\nwriter = \"hv-1.dc2\"\n");
    assert_eq!(
        named.policy.unwrap().central.unwrap().writer.as_deref(),
        Some("hv-1.dc2")
    );
    let tls = billed("[central]\nurl = \"https://c:9188\"\ntoken_file = \"t\"\nca = \"ca.pem\"\n");
    assert!(!tls.has_errors(), "{}", tls.render());
    let c = tls.policy.unwrap().central.unwrap();
    assert_eq!(c.url, "https://c:9188");
    assert!(
        matches!(&c.target, policy::CentralTarget::Tollgate { ca: Some(ca), .. } if ca == "ca.pem"),
        "{:?}",
        c.target
    );
    // Every mistake at once, each at its line and column.
    let extra = "[central]\nurl = \"ftp://c:9188\"\ntoken = \"secret\"\nwriter = \"flows\"\n";
    let text = billed_text(extra);
    let bad = policy::load_str("p.toml", &text);
    assert!(bad.policy.is_none());
    let rendered = bad.render();
    let line_of = |needle: &str| text.lines().position(|l| l.starts_with(needle)).unwrap() + 1;
    for (needle, col, message) in [
        ("url = ", 7, "is not an http(s)://host:port URL"),
        ("writer = ", 10, "cannot name a writer"),
        ("token = ", 1, "token"),
    ] {
        let at = format!("p.toml:{}:{col}", line_of(needle));
        assert!(rendered.contains(&at), "{at} missing in\n{rendered}");
        assert!(
            rendered.contains(message),
            "{message} missing in\n{rendered}"
        );
    }
    let e = errors(&bad);
    assert!(e.iter().any(|m| m.contains("needs `token_file`")), "{e:?}");
    let plain =
        billed_text("[central]\nurl = \"http://c:9188\"\ntoken_file = \"t\"\nca = \"ca.pem\"\n");
    let r = policy::load_str("p.toml", &plain).render();
    assert!(r.contains("`ca` is for an https:// url"), "{r}");
}

#[test]
fn central_may_be_a_clickhouse_history_written_directly() {
    let ok = billed("[central]\nstore = \"clickhouse\"\nurl = \"http://192.0.2.10:8123/\"\n");
    assert!(!ok.has_errors(), "{}", ok.render());
    let c = ok.policy.unwrap().central.unwrap();
    assert_eq!(c.url, "http://192.0.2.10:8123");
    assert_eq!(
        c.target,
        policy::CentralTarget::ClickHouse {
            database: "tollgate".into()
        }
    );
    let named = billed(
        "[central]\nstore = \"clickhouse\"\nurl = \"http://c:8123\"\ndatabase = \"site_2\"\n",
    );
    assert_eq!(
        named.policy.unwrap().central.unwrap().target,
        policy::CentralTarget::ClickHouse {
            database: "site_2".into()
        }
    );
    for (extra, message) in [
        (
            "store = \"clickhouse\"\nurl = \"http://c:8123\"\ntoken_file = \"t\"\n",
            "`token_file` is for a central tollgate, not ClickHouse",
        ),
        (
            "store = \"clickhouse\"\nurl = \"https://c:8123\"\n",
            "is not an http://host:port URL",
        ),
        (
            "store = \"clickhouse\"\nurl = \"http://c:8123\"\ndatabase = \"a-b\"\n",
            "`a-b` is not a plain database name",
        ),
        (
            "url = \"http://c:9188\"\ntoken_file = \"t\"\ndatabase = \"x\"\n",
            "`database` is for store = \"clickhouse\"",
        ),
        (
            "store = \"kafka\"\nurl = \"http://c:8123\"\n",
            "unknown central store `kafka`",
        ),
    ] {
        let text = billed_text(&format!("[central]\n{extra}"));
        let r = policy::load_str("p.toml", &text);
        assert!(r.policy.is_none(), "{extra}");
        let rendered = r.render();
        assert!(
            rendered.contains(message),
            "{message} missing in\n{rendered}"
        );
        assert!(rendered.contains("p.toml:"), "no place in\n{rendered}");
    }
}

#[test]
fn the_site_chooses_its_classifier() {
    let site = |extra: &str| router_with(extra, "");
    assert_eq!(site("").policy.unwrap().site.classifier, None);
    assert_eq!(
        site("classifier = \"ebpf\"\n")
            .policy
            .unwrap()
            .site
            .classifier,
        Some(policy::ClassifierKind::Ebpf)
    );
    assert_eq!(
        site("classifier = \"nftables\"\n")
            .policy
            .unwrap()
            .site
            .classifier,
        Some(policy::ClassifierKind::Nftables)
    );
    let e = errors(&site("classifier = \"xdp\"\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("unknown classifier `xdp`"), "{e:?}");
}

#[test]
fn the_site_chooses_where_to_shape() {
    let site = |extra: &str| router_with(extra, "");
    assert_eq!(site("").policy.unwrap().site.shape_on, policy::ShapeOn::Ifb);
    for (text, want) in [
        ("ifb", policy::ShapeOn::Ifb),
        ("interface", policy::ShapeOn::Interface),
    ] {
        let got = site(&format!("shape_on = \"{text}\"\n"))
            .policy
            .unwrap()
            .site
            .shape_on;
        assert_eq!(got, want);
    }
    let e = errors(&site("shape_on = \"ifbs\"\n"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("unknown shape_on `ifbs`"), "{e:?}");
    assert!(e[0].contains("\"interface\""), "{e:?}");
}

#[test]
fn an_ebpf_capture_source_needs_the_ebpf_classifier_and_no_af_packet_keys() {
    let policy = |classifier: &str, capture: &str| {
        format!(
            r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "1gbit", up = "1gbit" }}
{classifier}

[guard]
networks = ["203.0.113.0/24"]

[guard.capture]
{capture}

[guard.thresholds]
pps_in = 20000

[[guard.ladder]]
rung = "notify"
hold = "5m"
script = "/bin/true"
"#
        )
    };
    let ok = policy::load_str(
        "p.toml",
        &policy(
            "classifier = \"ebpf\"",
            "source = \"ebpf\"\ntick = \"50ms\"",
        ),
    );
    assert!(!ok.has_errors(), "{}", ok.render());
    let p = ok.policy.unwrap();
    let c = p.guard.as_ref().unwrap().capture.as_ref().unwrap();
    assert_eq!(c.source.value, policy::CaptureSource::Ebpf);
    assert!(c.interfaces.is_empty());
    assert_eq!(c.tick, std::time::Duration::from_millis(50));

    let r = policy::load_str("p.toml", &policy("", "source = \"ebpf\"")).render();
    assert!(
        r.contains("p.toml:12:10: error: source = \"ebpf\" needs the eBPF classifier"),
        "{r}"
    );
    let r = policy::load_str(
        "p.toml",
        &policy(
            "classifier = \"ebpf\"",
            "source = \"ebpf\"\ninterfaces = [\"wan0\"]",
        ),
    )
    .render();
    assert!(
        r.contains("p.toml:13:14: error: `interfaces` is for source = \"af_packet\""),
        "{r}"
    );
    let r = policy::load_str("p.toml", &policy("", "source = \"pcap\"")).render();
    assert!(
        r.contains("p.toml:12:10: error: unknown capture source `pcap`"),
        "{r}"
    );
}

#[test]
fn latency_probes_and_alarms_are_read_with_their_defaults() {
    let loaded = billed(
        r#"
[latency]
interfaces = ["bond0"]
[latency.alarms]
rtt = "150ms"
rtt_factor = 0
[[latency.probes]]
realm = "national"
target = "192.0.2.1"
[[latency.probes]]
realm = "international"
target = "2001:db8::1"
kind = "tcp"
port = 443
interval = "500ms"
"#,
    );
    assert_eq!(errors(&loaded), Vec::<String>::new());
    let l = loaded.policy.unwrap().latency.unwrap();
    assert_eq!(l.sample, std::time::Duration::from_secs(1));
    assert_eq!(l.alarms.queue_delay, std::time::Duration::from_secs(1));
    assert_eq!(l.alarms.rtt, Some(std::time::Duration::from_millis(150)));
    assert_eq!(l.alarms.rtt_factor, None);
    assert_eq!(l.alarms.loss, Some(10));
    assert_eq!(l.probes.len(), 2);
    assert_eq!(l.probes[0].name(), "national icmp 192.0.2.1");
    assert_eq!(l.probes[1].name(), "international tcp [2001:db8::1]:443");
    assert_eq!(l.probes[1].kind, policy::ProbeKind::Tcp { port: 443 });
}

#[test]
fn a_latency_webhook_must_be_an_http_url_named_at_its_place() {
    let loaded = billed(
        "\n[latency]\nwebhook = \"hooks.example.net/latency\"\n[[latency.probes]]\nrealm = \"national\"\ntarget = \"192.0.2.1\"\n",
    );
    let r = loaded.render();
    assert!(
        r.contains("webhook `hooks.example.net/latency` is not an http(s) URL"),
        "{r}"
    );
    let line = billed_text("\n[latency]\nwebhook = \"hooks.example.net/latency\"\n")
        .lines()
        .position(|l| l.starts_with("webhook"))
        .unwrap()
        + 1;
    assert!(r.contains(&format!("p.toml:{line}:11: error")), "{r}");
    let good = billed("\n[latency]\nwebhook = \"https://hooks.example.net/latency\"\n");
    assert_eq!(errors(&good), Vec::<String>::new());
    assert_eq!(
        good.policy.unwrap().latency.unwrap().webhook.as_deref(),
        Some("https://hooks.example.net/latency")
    );
}

/// A policy with `[guard]` whose ladder has throttle and drop rungs.
fn guarded(site_extra: &str) -> String {
    format!(
        r#"{SITE}{site_extra}
[plans.basic]
down = {{ rate = "1mbit", ceil = "5mbit" }}
up = {{ rate = "1mbit", ceil = "5mbit" }}

[[tenants]]
id = 1
plan = "basic"
prefixes = ["203.0.113.0/26"]

[guard]
flows = false

[guard.capture]
interfaces = ["wan0"]

[guard.thresholds]
pps_in = 20000

[[guard.ladder]]
rung = "throttle"
hold = "1m"
rate = "2mbit"

[[guard.ladder]]
rung = "drop"
after = "10s"
hold = "1m"
match = "signature"
"#
    )
}

#[test]
fn throttle_and_drop_rungs_are_read_and_taken_with_either_classifier() {
    let loaded = policy::load_str("guard.toml", &guarded(""));
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let p = loaded.policy.unwrap();
    let c = p.guard.as_ref().unwrap().config(&p);
    assert_eq!(
        c.ladder[0].action,
        guard::Action::Throttle {
            rate: net_types::Rate::from_bps(2_000_000).unwrap()
        }
    );
    assert_eq!(c.ladder[1].action, guard::Action::Drop { signature: true });

    // The eBPF classifier: `throttle` is its victims map, `drop` the XDP
    // drop list.
    let text = guarded("classifier = \"ebpf\"\n");
    let loaded = policy::load_str("guard.toml", &text);
    assert!(!loaded.has_errors(), "{}", loaded.render());

    // Two rates it cannot tell apart (the same kbit/s) are refused there.
    let twin = text.replace(
        "[[guard.ladder]]\nrung = \"drop\"",
        "[[guard.ladder]]\nrung = \"throttle\"\nhold = \"1m\"\nrate = \"2000500bit\"\n\n[[guard.ladder]]\nrung = \"drop\"",
    );
    let loaded = policy::load_str("guard.toml", &twin);
    let e = errors(&loaded);
    assert!(
        e.iter().any(|e| e.contains("within the same kbit/s")),
        "{e:?}"
    );
    let rendered = loaded.render();
    let line = twin
        .lines()
        .position(|l| l == "rate = \"2000500bit\"")
        .unwrap()
        - 2;
    assert!(
        rendered.contains(&format!("guard.toml:{line}:")),
        "{rendered}"
    );
}

/// A policy whose guard reads the flow collector's records, with `extra`
/// after `flows = true` (a `[guard.capture]`, say).
fn guard_flows_policy(extra: &str) -> String {
    format!(
        r#"{SITE}
[plans.basic]
down = {{ rate = "1mbit", ceil = "5mbit" }}
up = {{ rate = "1mbit", ceil = "5mbit" }}

[[tenants]]
id = 1
plan = "basic"
prefixes = ["203.0.113.0/26"]

[flows]
listen = ["127.0.0.1:2055"]

[[flows.exporters]]
address = "127.0.0.1"

[guard]
flows = true
{extra}
[guard.thresholds]
pps_in = 20000

[[guard.ladder]]
rung = "notify"
hold = "5m"
webhook = "https://hooks.example.net/guard"
"#
    )
}

#[test]
fn guard_flows_with_the_collector_is_an_input() {
    let loaded = policy::load_str("guard.toml", &guard_flows_policy(""));
    assert!(!loaded.has_errors(), "{}", loaded.render());
    assert!(!loaded.render().contains("no input"), "{}", loaded.render());
    let p = loaded.policy.unwrap();
    let g = p.guard.as_ref().unwrap();
    assert!(g.flows.value && g.capture.is_none());
}

#[test]
fn guard_flows_beside_a_capture_are_two_inputs() {
    let text = guard_flows_policy("\n[guard.capture]\ninterfaces = [\"eth0\"]\n");
    let loaded = policy::load_str("guard.toml", &text);
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let p = loaded.policy.unwrap();
    let g = p.guard.as_ref().unwrap();
    assert!(g.flows.value && g.capture.is_some());
}

/// `unused = "blackhole"` (either classifier) and `unused = "drop"` with
/// the eBPF classifier hold the networks minus the tenants' prefixes as
/// prefixes: computed, and bounded with the place named.
#[test]
fn unused_prefixes_are_the_networks_minus_the_tenants_and_bounded() {
    let text = |unused: &str, tenants: usize| {
        let mut t = format!(
            "{SITE}\n[plans.basic]\ndown = {{ rate = \"1mbit\", ceil = \"5mbit\" }}\nup = {{ rate = \"1mbit\", ceil = \"5mbit\" }}\n"
        );
        for i in 1..=tenants {
            t.push_str(&format!(
                "\n[[tenants]]\nid = {i}\nplan = \"basic\"\nprefixes = [\"2001:db8:{i:x}::1/128\", \"203.0.113.{i}/32\"]\n"
            ));
        }
        t.push_str(&format!(
            "\n[guard]\nnetworks = [\"203.0.113.0/24\", \"2001:db8::/32\"]\nunused = \"{unused}\"\nflows = false\n\n[guard.capture]\ninterfaces = [\"wan0\"]\n\n[guard.thresholds]\npps_in = 20000\n\n[[guard.ladder]]\nrung = \"blackhole\"\nhold = \"1m\"\n"
        ));
        t
    };
    let loaded = policy::load_str("u.toml", &text("blackhole", 1));
    assert!(!loaded.has_errors(), "{}", loaded.render());
    let p = loaded.policy.unwrap();
    let got = policy::unused_prefixes(&p).unwrap();
    // The /24 minus .1: 8; the /32 minus 2001:db8:1::1: 96.
    assert_eq!(got.len(), 8 + 96);
    assert!(got
        .iter()
        .all(|q| !q.contains("203.0.113.1".parse().unwrap())));

    // 80 hosts, each in its own /48 of the /32: more than 4,096 prefixes.
    let t = text("blackhole", 80);
    let loaded = policy::load_str("u.toml", &t);
    let r = loaded.render();
    assert!(r.contains("more than 4096 prefixes"), "{r}");
    let line = t.lines().position(|l| l.starts_with("unused")).unwrap() + 1;
    assert!(r.contains(&format!("u.toml:{line}:")), "{r}");
    // The nftables classifier's drop is a rule over the networks: no bound.
    assert!(!policy::load_str("u.toml", &text("drop", 80)).has_errors());
}
