//! Round trips through the real kernel: render a plan with tollgate's own
//! renderer, load it with `nft -f` in a private network namespace, read it
//! back with `nft -j list table netdev tollgate`, and require the reader to
//! return exactly the plan's elements.
//!
//! Needs root, `ip` and `nft`. Each test builds its own namespace, with a
//! veth device for every base chain's hook, and removes it even when the
//! test fails. Without root a test fails, unless `TOLLGATE_SKIP_ROOT_TESTS=1`
//! is set: then it says it was skipped.
//!
//! With `NFT_READER_CAPTURE=1` the tests also write what they loaded and
//! read into `tests/fixtures/`, which is how the fixtures were made.

mod common;

use common::{assert_matches_plan, edge_plan, fixture_dir, overflow_plan};
use compiler::HostFacts;
use net_types::{ClassId, Prefix};
use plan::{MapKey, MapValue, Plan};
use std::path::Path;
use std::process::Command;

/// `true` if a root test may run. Without root (effective uid 0) it
/// panics, unless `TOLLGATE_SKIP_ROOT_TESTS=1` says to skip, which it
/// reports on stderr.
fn root_or_skip(test: &str) -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1));
    if euid == Some("0") {
        return true;
    }
    if std::env::var("TOLLGATE_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: needs root (TOLLGATE_SKIP_ROOT_TESTS=1)");
        return false;
    }
    panic!(
        "the kernel test `{test}` needs root (network namespaces, nft); run it as root, \
         or set TOLLGATE_SKIP_ROOT_TESTS=1 to skip it"
    );
}

/// A network namespace that is deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("tg-nftr-{tag}-{}", std::process::id());
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("run ip")
            .success();
        assert!(
            ok,
            "cannot create a network namespace: these tests need root and iproute2"
        );
        Netns(name)
    }

    /// Runs a command inside the namespace; `input` is written to a file
    /// whose path is appended to the arguments.
    fn run(&self, args: &[&str], input: Option<&str>) -> String {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0]).args(args);
        let file = std::env::temp_dir().join(format!("{}.nft", self.0));
        if let Some(text) = input {
            std::fs::write(&file, text).unwrap();
            c.arg(&file);
        }
        let out = c.output().expect("run command");
        if input.is_some() {
            let _ = std::fs::remove_file(&file);
        }
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr),
        );
        String::from_utf8(out.stdout).expect("UTF-8 output")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Loads `script` into a fresh namespace that has the devices the plan's
/// base chains hook, and reads the table back. Returns the JSON and the
/// text listing.
fn load_and_list(tag: &str, plan: &Plan, script: &str) -> (String, String) {
    let ns = Netns::new(tag);
    for (i, hook) in plan.chains.values().filter_map(|c| c.hook).enumerate() {
        let dev = hook.dev.to_string();
        let peer = format!("nftr-p{i}");
        ns.run(
            &[
                "ip", "link", "add", &dev, "type", "veth", "peer", "name", &peer,
            ],
            None,
        );
    }
    ns.run(&["nft", "-f"], Some(script));
    let json = ns.run(&["nft", "-j", "list", "table", "netdev", "tollgate"], None);
    let listing = ns.run(&["nft", "list", "table", "netdev", "tollgate"], None);
    (json, listing)
}

/// Keeps what was loaded and read as fixtures, when asked to.
fn capture(tag: &str, script: &str, json: &str, listing: &str) {
    if std::env::var_os("NFT_READER_CAPTURE").is_some() {
        let dir = fixture_dir();
        std::fs::write(dir.join(format!("{tag}.nft")), script).unwrap();
        std::fs::write(dir.join(format!("{tag}.json")), json).unwrap();
        std::fs::write(dir.join(format!("{tag}.txt")), listing).unwrap();
    }
}

/// Keeps only what was read (the script is a fixture already).
fn capture_read(tag: &str, json: &str, listing: &str) {
    if std::env::var_os("NFT_READER_CAPTURE").is_some() {
        let dir = fixture_dir();
        std::fs::write(dir.join(format!("{tag}.json")), json).unwrap();
        std::fs::write(dir.join(format!("{tag}.txt")), listing).unwrap();
    }
}

/// Renders the plan with tollgate's renderer, round-trips it, and requires
/// the exact plan back.
fn check(tag: &str, plan: &Plan) -> nft_reader::Table {
    let script = plan::render::plan_nft(plan);
    let (json, listing) = load_and_list(tag, plan, &script);
    capture(tag, &script, &json, &listing);
    let table = nft_reader::read_table(&json).unwrap_or_else(|e| panic!("{tag}: {e}"));
    let devices = nft_reader::chain_devices_from_listing(&listing);
    assert_matches_plan(&table, plan, &devices, tag);
    table
}

/// The plan's table with its elements added by `add element` commands of at
/// most `chunk` elements each, instead of in the map declarations.
///
/// nft 1.0.6 puts one command's elements into netlink messages of at most
/// 64 KiB; when an element does not fit, it builds that element a second
/// time for the next message, and for a concatenation with a host-order
/// field (`meta priority`) the second build swaps the field's bytes again:
/// the kernel then holds realm `0:2` as `200:0`. Small commands never
/// overflow a message.
fn chunked_script(plan: &Plan, chunk: usize) -> String {
    use std::fmt::Write as _;
    let mut bare = plan.clone();
    for m in bare.maps.values_mut() {
        m.elements.clear();
    }
    let mut script = plan::render::plan_nft(&bare);
    for (name, m) in &plan.maps {
        let elements: Vec<String> = m
            .elements
            .iter()
            .map(|(k, v)| format!("{k} : {v}"))
            .collect();
        for part in elements.chunks(chunk) {
            let _ = writeln!(
                script,
                "add element netdev tollgate {name} {{ {} }}",
                part.join(", ")
            );
        }
    }
    script
}

fn example(name: &str) -> Plan {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"));
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    let loaded = policy::load(name, &text, &mut |p| {
        std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string())
    });
    let policy = loaded.policy.expect("examples are valid");
    compiler::compile(&policy, &HostFacts::default())
        .expect("examples compile")
        .plan
}

#[test]
fn router_example_reads_back_exactly() {
    if !root_or_skip("router_example_reads_back_exactly") {
        return;
    }
    check("router", &example("router.toml"));
}

#[test]
fn hypervisor_example_reads_back_exactly() {
    if !root_or_skip("hypervisor_example_reads_back_exactly") {
        return;
    }
    check("hypervisor", &example("hypervisor.toml"));
}

#[test]
fn every_element_form_reads_back_exactly() {
    if !root_or_skip("every_element_form_reads_back_exactly") {
        return;
    }
    let table = check("edge", &edge_plan());
    let kind = table.maps["tenant_classes"].kind;
    assert!(kind.fits(plan::MapKind::TenantClasses));
}

/// A synthetic ISP: 3000 tenants in 4 shards (so a shard map), over 15,000
/// elements, plus runs of adjacent prefixes in the realm map, with the same
/// value and with alternating values, where an interval store could merge or
/// split elements.
fn synthetic_plan() -> Plan {
    let shape = compiler::synthetic::Shape {
        tenants: 3000,
        shards: 4,
        per_parent: 100,
        hypervisor: false,
    };
    let text = compiler::synthetic::policy_text(&shape);
    let loaded = policy::load_str("synthetic.toml", &text);
    let policy = loaded.policy.expect("synthetic policies are valid");
    let mut plan = compiler::compile(&policy, &HostFacts::default())
        .expect("synthetic policies compile")
        .plan;
    assert!(
        plan.maps.values().any(|m| m.kind == plan::MapKind::Shard),
        "with several shards the plan steers with a shard map"
    );
    let realm4 = plan.maps.get_mut("realm4").expect("a realm4 map");
    for i in 0..64u32 {
        let a = u32::from(std::net::Ipv4Addr::new(192, 0, 2, 0)) + i * 4;
        realm4.elements.insert(
            MapKey::Prefix(Prefix::V4(a.into(), 30)),
            MapValue::Class(ClassId::new(0, 1)),
        );
    }
    for i in 0..256u32 {
        let a = u32::from(std::net::Ipv4Addr::new(203, 0, 113, 0)) + i;
        realm4.elements.insert(
            MapKey::Prefix(Prefix::V4(a.into(), 32)),
            MapValue::Class(ClassId::new(0, 1 + (i / 3) as u16 % 2)),
        );
    }
    let elements: usize = plan.maps.values().map(|m| m.elements.len()).sum();
    assert!(elements > 15_000, "{elements} elements");
    plan
}

#[test]
fn a_large_synthetic_plan_reads_back_exactly() {
    if !root_or_skip("a_large_synthetic_plan_reads_back_exactly") {
        return;
    }
    let plan = synthetic_plan();
    // In commands small enough that nft 1.0.6 loads them intact (see
    // `chunked_script`).
    let script = chunked_script(&plan, 256);
    let (json, listing) = load_and_list("synth", &plan, &script);
    let table = nft_reader::read_table(&json).expect("nft JSON reads");
    let devices = nft_reader::chain_devices_from_listing(&listing);
    assert_matches_plan(&table, &plan, &devices, "synthetic");
}

/// Loaded the way `plan_nft` renders it, a big concatenated map overflows
/// nft's netlink message and nft 1.0.6 corrupts the element at each
/// boundary (see `chunked_script`). Whatever nft does, the reader must never
/// report a wrong element as a right one: every planned element is either
/// read exactly or counted as unreadable.
#[test]
fn elements_corrupted_by_nft_are_reported_never_misread() {
    if !root_or_skip("elements_corrupted_by_nft_are_reported_never_misread") {
        return;
    }
    let plan = synthetic_plan();
    let script = plan::render::plan_nft(&plan);
    let (json, _) = load_and_list("synthcorrupt", &plan, &script);
    let table = nft_reader::read_table(&json).expect("nft JSON reads");
    let mut unreadable = 0;
    for (name, want) in &plan.maps {
        let got = &table.maps[name];
        for (k, v) in &got.elements {
            assert_eq!(want.elements.get(k), Some(v), "map {name}: read {k} : {v}");
        }
        assert_eq!(
            got.elements.len() + got.unreadable.len(),
            want.elements.len(),
            "map {name}: {:?}",
            got.unreadable
        );
        unreadable += got.unreadable.len();
    }
    eprintln!(
        "nft {:?} corrupted {unreadable} elements",
        table.nft_version
    );
}

/// The smallest map that shows nft 1.0.6's corruption (one element past
/// 64 KiB of elements), kept as a fixture for the pure tests.
#[test]
fn one_overflowing_concat_map() {
    if !root_or_skip("one_overflowing_concat_map") {
        return;
    }
    let plan = overflow_plan();
    let script = plan::render::plan_nft(&plan);
    let (json, listing) = load_and_list("overflow", &plan, &script);
    capture("overflow", &script, &json, &listing);
    let table = nft_reader::read_table(&json).expect("nft JSON reads");
    let got = &table.maps["tenant_classes"];
    assert_eq!(got.elements.len() + got.unreadable.len(), 2000);
}

/// A table with what tollgate never writes (ranges, element comments, a
/// set, a counter, foreign map declarations), kept as a fixture for the
/// pure tests, which say what the reader makes of each.
#[test]
fn a_table_with_foreign_forms() {
    if !root_or_skip("a_table_with_foreign_forms") {
        return;
    }
    let script = common::fixture("foreign.nft");
    let (json, listing) = load_and_list("foreign", &Plan::default(), &script);
    capture_read("foreign", &json, &listing);
    let table = nft_reader::read_table(&json).expect("nft JSON reads");
    assert_eq!(table.maps.len(), 7);
}
