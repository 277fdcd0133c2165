//! The importer against fixtures written for these tests (none is
//! LibreQoS's own file): every column rule, both layouts and the
//! 15-over-13 example shape, network.json's tree, every way a row can be
//! refused, and a 10,000-circuit file. Each imported policy is loaded
//! again with `policy::load` and its tenants, plans and parents compared.

use libreqos::{import, Import, Options, Severity, Source};
use net_types::Rate;
use policy::Policy;

fn fixture(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn run(csv: &str, net: Option<&str>, options: &Options) -> Import {
    let c = fixture(csv);
    let n = net.map(fixture);
    import(
        Source {
            name: csv,
            bytes: &c,
        },
        n.as_deref().map(|bytes| Source {
            name: net.unwrap_or_default(),
            bytes,
        }),
        options,
        &mut |_| {},
    )
}

/// The policy, loaded as `tollgate check` loads it (no errors allowed).
fn load(text: &str) -> Policy {
    let loaded = policy::load("imported.toml", text, &mut |_| Err("no files".into()));
    assert!(!loaded.has_errors(), "{}\n{text}", loaded.render());
    loaded.policy.expect("a policy")
}

fn rate(text: &str) -> Rate {
    Rate::parse(text).unwrap()
}

/// A tenant's id, name, plan, parent and prefixes.
type TenantRow = (u32, String, String, Option<String>, Vec<String>);

/// (id, name, plan, parent, prefixes) of every tenant, by id (as the
/// policy keeps them).
fn tenants(p: &Policy) -> Vec<TenantRow> {
    p.tenants
        .iter()
        .map(|t| {
            (
                t.id.0,
                t.name.clone(),
                t.plan.clone(),
                t.parent.clone(),
                t.prefixes.iter().map(|(x, _)| x.to_string()).collect(),
            )
        })
        .collect()
}

fn said(i: &Import) -> Vec<(Severity, String, Option<usize>, String)> {
    i.report
        .diagnostics
        .iter()
        .map(|d| (d.severity, d.file.clone(), d.line, d.message.clone()))
        .collect()
}

fn find<'a>(i: &'a Import, line: usize, text: &str) -> &'a libreqos::Diagnostic {
    i.report
        .diagnostics
        .iter()
        .find(|d| d.line == Some(line) && d.message.contains(text))
        .unwrap_or_else(|| {
            panic!(
                "no diagnostic at line {line} with `{text}`:\n{:#?}",
                said(i)
            )
        })
}

fn s(x: &str) -> String {
    x.to_string()
}

#[test]
fn every_column_of_the_current_layout_and_the_tree_are_imported() {
    let out = run("full.csv", Some("network.json"), &Options::default());
    assert!(!out.report.has_errors(), "{:#?}", said(&out));
    let text = out.policy.clone().expect("a policy");
    let p = load(&text);
    assert_eq!(
        tenants(&p),
        vec![
            (
                1001,
                s("Alice Home"),
                s("100x20-min-25x5"),
                Some(s("AP_North")),
                vec![
                    s("100.64.1.1/32"),
                    s("2001:db8:1::/64"),
                    s("100.64.1.2/32"),
                    s("100.64.1.3/32")
                ]
            ),
            (
                1002,
                s("Bob Shop"),
                s("50x10-min-12.5x2.5"),
                Some(s("AP_South")),
                vec![s("100.64.2.0/29")]
            ),
            (
                1004,
                s("Dave"),
                s("100x20-min-25x5"),
                Some(s("AP_North")),
                vec![s("100.64.4.1/32")]
            ),
            // Its parent node is virtual: it moves up to the tower.
            (
                1005,
                s("Carol"),
                s("2.75x1.5-min-0.5x0.25"),
                Some(s("Tower_North")),
                vec![
                    s("100.64.3.1/32"),
                    s("2001:db8:3::/64"),
                    s("2001:db8:4::1/128")
                ]
            ),
        ]
    );
    // Min → rate, Max → ceil, fractional Mbps exact.
    let plan = p
        .plans
        .iter()
        .find(|x| x.name == "2.75x1.5-min-0.5x0.25")
        .unwrap();
    assert_eq!(
        (plan.shape.down.rate, plan.shape.down.ceil),
        (rate("500kbit"), rate("2750kbit"))
    );
    assert_eq!(
        (plan.shape.up.rate, plan.shape.up.ceil),
        (rate("250kbit"), rate("1500kbit"))
    );
    assert_eq!(p.plans.len(), 3);
    // Nodes → parents with their bandwidth; the virtual one is gone.
    let parents: Vec<(String, u16, Option<String>, Rate, Rate)> = p
        .parents
        .iter()
        .map(|x| {
            (
                x.name.clone(),
                x.id,
                x.parent.clone(),
                x.shape.down.ceil,
                x.shape.up.rate,
            )
        })
        .collect();
    assert_eq!(
        parents,
        vec![
            (s("Tower_North"), 1, None, rate("1gbit"), rate("500mbit")),
            (
                s("AP_North"),
                2,
                Some(s("Tower_North")),
                rate("300mbit"),
                rate("150mbit")
            ),
            (
                s("AP_South"),
                3,
                Some(s("Tower_North")),
                rate("200500kbit"),
                rate("100mbit")
            ),
        ]
    );
    assert_eq!(
        (p.site.capacity.down, p.site.capacity.up),
        (rate("1gbit"), rate("500mbit"))
    );
    // One default realm.
    assert_eq!(p.realms.list.len(), 1);
    assert_eq!(p.realms.list[0].name, "internet");
    // Comments name the source rows and nodes.
    for want in [
        "# full.csv:5-6: circuit 1001 Alice Home",
        "#   line 5: device d1 Alice router MAC aa:bb:cc:00:00:01; first customer, paid up",
        "#   line 8: device d3 Bob's CPE anchor anchor-7",
        "# network.json:2: node Tower_North (site), 1000/500 Mbps",
        "# network.json:17: node AP_South (ap), 200.5/100 Mbps",
    ] {
        assert!(text.contains(want), "no `{want}` in\n{text}");
    }
    // What has no counterpart is said, once, at the first row.
    find(&out, 8, "sqm `cake`");
    find(&out, 10, "sqm `fq_codel`");
    find(&out, 5, "MAC address");
    find(&out, 8, "Anchor Node ID");
    find(&out, 9, "numbered from 1005");
    assert_eq!(out.report.rows, 5);
    assert_eq!(
        (
            out.report.tenants,
            out.report.devices,
            out.report.plans,
            out.report.parents
        ),
        (4, 5, 3, 3)
    );
}

#[test]
fn the_legacy_13_column_layout_is_read() {
    let out = run("legacy13.csv", None, &Options::default());
    assert!(out.report.diagnostics.is_empty(), "{:#?}", said(&out));
    let p = load(&out.policy.unwrap());
    assert_eq!(
        tenants(&p),
        vec![
            (
                7,
                s("Legacy One"),
                s("40x8-min-10x2"),
                None,
                vec![s("192.0.2.10/32")]
            ),
            (
                8,
                s("Legacy Two"),
                s("40x8-min-10x2"),
                None,
                vec![s("192.0.2.20/30"), s("2001:db8:8::/48")]
            ),
        ]
    );
    assert_eq!(
        (p.site.capacity.down, p.site.capacity.up),
        (rate("40mbit"), rate("8mbit"))
    );
}

#[test]
fn a_15_column_header_over_13_field_rows_is_read_as_the_legacy_layout() {
    let out = run("header15-rows13.csv", None, &Options::default());
    let p = load(out.policy.as_deref().expect("a policy"));
    assert_eq!(
        tenants(&p),
        vec![
            (
                11,
                s("Fifteen Over Thirteen"),
                s("10x5-min-2x1"),
                None,
                vec![s("192.0.2.40/32")]
            ),
            (
                12,
                s("Second"),
                s("10x5-min-2x1"),
                None,
                vec![
                    s("192.0.2.41/32"),
                    s("192.0.2.42/32"),
                    s("2001:db8:12::/56")
                ]
            ),
        ]
    );
    let d = find(&out, 2, "have 13 fields under a header with Parent Node ID");
    assert_eq!(d.severity, Severity::Note);
    assert!(!out.report.has_errors());
}

#[test]
fn headers_are_matched_by_name_in_any_order_and_spelling() {
    let out = run("reordered.csv", None, &Options::default());
    let p = load(out.policy.as_deref().expect("a policy"));
    assert_eq!(
        tenants(&p),
        vec![(
            21,
            s("Reordered"),
            s("20x10-min-5x2.5"),
            None,
            vec![s("192.0.2.50/32")]
        )]
    );
    let d = find(&out, 1, "column 8 `Region` is not one of LibreQoS's");
    assert_eq!(d.severity, Severity::Warning);
}

#[test]
fn every_row_that_cannot_be_represented_is_reported_with_file_and_line() {
    let out = run("bad.csv", Some("bad-network.json"), &Options::default());
    for (line, why) in [
        (3, "IPv4 `192.0.2.300`: `192.0.2.300` is not an IP address"),
        (4, "`192.0.2.5/30` has host bits set"),
        (5, "Download Max Mbps 20 is below Download Min Mbps 30"),
        (6, "below 0.01 Mbps"),
        (7, "Download Min Mbps: `ten` is not a number of Mbps"),
        (8, "no Circuit ID"),
        (9, "Circuit ID `37#x` contains `#`"),
        (10, "the row has 16 fields, but the header names 15 columns"),
        (
            11,
            "192.0.2.1/32 (circuit `39`) overlaps circuit `31`'s 192.0.2.1/32 on line 2",
        ),
        (
            12,
            "names Parent Node `AP_Nowhere`, which network.json does not have",
        ),
        (13, "circuit `41` has no address"),
        (14, "Download Min Mbps is empty"),
        (15, "a quote opened on this line is never closed"),
    ] {
        let d = find(&out, line, why);
        assert_eq!(d.severity, Severity::Error, "{d}");
        assert_eq!(d.file, "bad.csv");
        assert!(d.hint.is_some(), "{d}");
    }
    assert_eq!(out.report.count(Severity::Error), 13, "{:#?}", said(&out));
    assert_eq!((out.report.rows, out.report.rows_skipped), (14, 13));
    // What could be imported still is, and the policy says what was left out.
    let text = out.policy.clone().expect("a policy with the good row");
    assert_eq!(tenants(&load(&text)).len(), 1);
    assert!(text.contains("# Left out (13):"), "{text}");
    assert!(text.contains("#   bad.csv:4: "), "{text}");
    // The hint for the unquoted list says to quote it.
    assert!(find(&out, 10, "16 fields")
        .hint
        .as_deref()
        .unwrap()
        .contains("must be quoted"));
}

#[test]
fn devices_merge_into_circuits_and_tenant_names_stay_usable_and_unique() {
    let options = Options {
        capacity: Some((rate("1gbit"), rate("1gbit"))),
        ..Options::default()
    };
    let out = run("warnings.csv", None, &options);
    assert!(!out.report.has_errors(), "{:#?}", said(&out));
    let p = load(out.policy.as_deref().unwrap());
    let names: Vec<(u32, String, Vec<String>)> =
        tenants(&p).into_iter().map(|t| (t.0, t.1, t.4)).collect();
    assert_eq!(
        names,
        vec![
            (
                51,
                s("Same Name"),
                vec![s("198.51.100.1/32"), s("198.51.100.2/32")]
            ),
            (52, s("Same Name (52)"), vec![s("198.51.100.3/32")]),
            (53, s("circuit-53"), vec![s("198.51.100.4/32")]),
            (54, s("circuit-54"), vec![s("198.51.100.5/32")]),
            (55, s("circuit-55"), vec![s("198.51.100.6/32")]),
            (56, s("Huge"), vec![s("198.51.100.7/32")]),
        ]
    );
    find(&out, 3, "198.51.100.1/32 is already the circuit's");
    find(&out, 3, "rates here differ from its first row's (line 2)");
    find(&out, 4, "Circuit Name an earlier circuit has");
    find(
        &out,
        8,
        "Max 5000/20 Mbps exceeds the site's capacity's 1000/1000 Mbps; capped",
    );
    let huge = p.tenants.iter().find(|t| t.id.0 == 56).unwrap();
    let plan = p.plans.iter().find(|x| x.name == huge.plan).unwrap();
    assert_eq!(plan.shape.down.ceil, rate("1gbit"));
    assert_eq!(
        (p.site.capacity.down, p.site.capacity.up),
        (rate("1gbit"), rate("1gbit"))
    );
}

#[test]
fn a_file_without_the_needed_columns_imports_nothing_and_says_why() {
    let bytes = b"# just a comment\nName,Address\nx,192.0.2.1\n";
    let out = import(
        Source {
            name: "x.csv",
            bytes,
        },
        None,
        &Options::default(),
        &mut |_| {},
    );
    assert!(out.policy.is_none());
    let d = &out.report.diagnostics;
    assert!(
        d.iter()
            .any(|d| d.line == Some(2) && d.message.contains("no Circuit ID, Download Min Mbps")),
        "{d:#?}"
    );
    let empty = import(
        Source {
            name: "e.csv",
            bytes: b"",
        },
        None,
        &Options::default(),
        &mut |_| {},
    );
    assert!(empty.policy.is_none());
    assert!(empty.report.diagnostics[0].message.contains("no header"));
}

#[test]
fn broken_network_json_names_its_line_and_imports_nothing() {
    let csv = fixture("legacy13.csv");
    let out = import(
        Source {
            name: "ShapedDevices.csv",
            bytes: &csv,
        },
        Some(Source {
            name: "network.json",
            bytes: b"{\n \"A\": {\n  \"downloadBandwidthMbps\": 10,\n }\n}",
        }),
        &Options::default(),
        &mut |_| {},
    );
    assert!(out.policy.is_none());
    let d = &out.report.diagnostics[0];
    assert_eq!((d.file.as_str(), d.line), ("network.json", Some(4)), "{d}");
}

#[test]
fn a_latin1_file_is_read_with_a_warning_naming_the_line() {
    let mut csv = fixture("legacy13.csv");
    csv.extend_from_slice(b"9,Jos\xe9,,,,,192.0.2.30,,10,2,40,8,\n");
    let out = import(
        Source {
            name: "ShapedDevices.csv",
            bytes: &csv,
        },
        None,
        &Options::default(),
        &mut |_| {},
    );
    find(&out, 4, "not UTF-8");
    let p = load(out.policy.as_deref().unwrap());
    assert_eq!(p.tenants[2].name, "José");
}

#[test]
fn ten_thousand_circuits_import_cleanly_with_progress_to_the_end() {
    let files = libreqos::synthetic::files(10_000, 10, 10);
    let mut seen = Vec::new();
    let out = import(
        Source {
            name: "ShapedDevices.csv",
            bytes: files.shaped_devices.as_bytes(),
        },
        Some(Source {
            name: "network.json",
            bytes: files.network.as_bytes(),
        }),
        &Options::default(),
        &mut |n| seen.push(n),
    );
    assert!(
        !out.report.has_errors(),
        "{:#?}",
        &out.report.diagnostics[..5.min(out.report.diagnostics.len())]
    );
    assert_eq!(out.report.tenants, 10_000);
    assert_eq!(out.report.rows, 13_334);
    assert_eq!(out.report.parents, 110);
    assert_eq!(seen.last().copied(), Some(files.shaped_devices.len()));
    assert!(seen.windows(2).all(|w| w[0] <= w[1]));
    assert!(seen.len() > 10);
    // The same input gives the same policy, byte for byte.
    let again = import(
        Source {
            name: "ShapedDevices.csv",
            bytes: files.shaped_devices.as_bytes(),
        },
        Some(Source {
            name: "network.json",
            bytes: files.network.as_bytes(),
        }),
        &Options::default(),
        &mut |_| {},
    );
    assert_eq!(out.policy, again.policy);
}

#[test]
fn the_fuzz_entry_holds_on_the_fixtures() {
    for name in [
        "full.csv",
        "bad.csv",
        "legacy13.csv",
        "warnings.csv",
        "header15-rows13.csv",
    ] {
        let mut data = fixture(name);
        libreqos::fuzzing::import_bytes(&data);
        data.push(0);
        data.extend(fixture("network.json"));
        libreqos::fuzzing::import_bytes(&data);
    }
}

#[test]
fn more_circuits_under_one_top_level_node_than_htb_can_address_is_an_error_not_a_fault() {
    // 10,000 circuits under one site: 20,000 blocks of classes in one
    // tree, which holds 16,383. The kernel's limit, said as an error;
    // never an invalid policy.
    let files = libreqos::synthetic::files(10_000, 1, 10);
    let out = import(
        Source {
            name: "ShapedDevices.csv",
            bytes: files.shaped_devices.as_bytes(),
        },
        Some(Source {
            name: "network.json",
            bytes: files.network.as_bytes(),
        }),
        &Options::default(),
        &mut |_| {},
    );
    assert!(out.policy.is_none());
    let d = out
        .report
        .diagnostics
        .iter()
        .find(|d| d.severity == Severity::Error)
        .expect("an error");
    assert!(
        d.message
            .contains("does not compile: more classes than the kernel can address"),
        "{d}"
    );
    assert!(
        d.hint.as_deref().unwrap_or("").contains("top-level parent"),
        "{d}"
    );
}
