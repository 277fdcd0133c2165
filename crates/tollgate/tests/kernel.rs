//! The rendered plans are real: the kernel accepts them.
//!
//! Each test builds a private network namespace, creates the interfaces the
//! policy names, and feeds `tc -batch` and `nft -f` exactly the text that
//! `tollgate plan --format tc|nft` prints. It then reads the objects back.
//! Needs root, `ip`, `tc` and `nft`; the namespace is removed even when the
//! test fails.

use std::path::Path;
use std::process::Command;

/// A network namespace that is deleted when dropped.
struct Netns(String);

impl Netns {
    fn new(tag: &str) -> Netns {
        let name = format!("tg-test-{tag}-{}", std::process::id());
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

    fn run(&self, cmd: &str, args: &[&str], input: Option<&str>) -> String {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.0, cmd]).args(args);
        let out = match input {
            Some(text) => {
                let file = std::env::temp_dir().join(format!("{}-{cmd}.in", self.0));
                std::fs::write(&file, text).unwrap();
                let out = c.arg(&file).output().expect("run command");
                let _ = std::fs::remove_file(file);
                out
            }
            None => c.output().expect("run command"),
        };
        assert!(
            out.status.success(),
            "{cmd} {args:?} failed: {}\ninput:\n{}",
            String::from_utf8_lossy(&out.stderr),
            input.unwrap_or("")
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

fn load(name: &str) -> policy::Policy {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"));
    let text = std::fs::read_to_string(dir.join(name)).unwrap();
    let loaded = policy::load(name, &text, &mut |p| {
        std::fs::read_to_string(dir.join(p)).map_err(|e| e.to_string())
    });
    loaded.policy.expect("examples are valid")
}

/// Creates the policy's interfaces (as veth ends) and tollgate's IFBs.
fn prepare(ns: &Netns, p: &policy::Policy, plan: &plan::Plan) {
    let mut devs = vec![p.site.uplink.to_string()];
    devs.extend(p.site.lan.iter().map(|l| l.to_string()));
    devs.extend(
        p.tenants
            .iter()
            .filter_map(|t| t.interface.as_ref().map(|i| i.to_string())),
    );
    for (i, d) in devs.iter().enumerate() {
        ns.run(
            "ip",
            &[
                "link",
                "add",
                d,
                "type",
                "veth",
                "peer",
                "name",
                &format!("peer{i}"),
            ],
            None,
        );
        ns.run("ip", &["link", "set", d, "up"], None);
    }
    for name in plan.links.keys() {
        ns.run("ip", &["link", "add", name.as_str(), "type", "ifb"], None);
        ns.run("ip", &["link", "set", name.as_str(), "up"], None);
    }
}

fn apply_plan(ns: &Netns, plan: &plan::Plan) {
    let tc: String = plan::render::plan_tc(plan)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    ns.run("tc", &["-batch"], Some(&tc));
    ns.run("nft", &["-f"], Some(&plan::render::plan_nft(plan)));
}

fn apply_changes(ns: &Netns, cs: &plan::ChangeSet) {
    let tc: String = plan::render::changes_tc(cs)
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    // The real dataplane interleaves these in change-set order; for this test
    // the nft transaction (switch) can run after the tc creates and before the
    // tc removals, which is the same order.
    let (creates, removes): (Vec<&str>, Vec<&str>) = tc
        .lines()
        .partition(|l| !l.starts_with("class del") && !l.starts_with("filter del"));
    if !creates.is_empty() {
        ns.run("tc", &["-batch"], Some(&(creates.join("\n") + "\n")));
    }
    let nft = plan::render::changes_nft(cs);
    if !nft.is_empty() {
        ns.run("nft", &["-f"], Some(&nft));
    }
    if !removes.is_empty() {
        ns.run("tc", &["-batch"], Some(&(removes.join("\n") + "\n")));
    }
}

fn class_count(ns: &Netns, plan: &plan::Plan) -> usize {
    plan.links
        .keys()
        .map(|d| {
            ns.run("tc", &["class", "show", "dev", d.as_str()], None)
                .lines()
                .count()
        })
        .sum()
}

fn element_count(ns: &Netns, map: &str) -> usize {
    let out = ns.run(
        "nft",
        &["-j", "list", "map", "netdev", "tollgate", map],
        None,
    );
    let json: serde_json::Value = serde_json::from_str(&out).expect("nft -j prints JSON");
    json["nftables"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|o| o["map"]["elem"].as_array())
        .map(Vec::len)
        .sum()
}

#[test]
fn both_examples_apply_to_a_real_kernel() {
    if !testkit::root("both_examples_apply_to_a_real_kernel") {
        return;
    }
    for (tag, name) in [("r", "router.toml"), ("h", "hypervisor.toml")] {
        let ns = Netns::new(tag);
        let p = load(name);
        let c = compiler::compile(&p, &compiler::HostFacts::default()).unwrap();
        prepare(&ns, &p, &c.plan);
        apply_plan(&ns, &c.plan);
        assert_eq!(
            class_count(&ns, &c.plan),
            c.plan.classes.len(),
            "{name}: every class exists"
        );
        let listed = ns.run("nft", &["list", "table", "netdev", "tollgate"], None);
        for chain in c.plan.chains.keys() {
            assert!(
                listed.contains(&format!("chain {chain} {{")),
                "{name}: chain {chain} exists"
            );
        }
        let filters = ns.run(
            "tc",
            &["filter", "show", "dev", p.site.uplink.as_str(), "egress"],
            None,
        );
        assert!(
            filters.contains("mirred"),
            "{name}: the uplink redirects to its IFB:\n{filters}"
        );
    }
}

#[test]
fn a_move_applies_make_before_break_to_a_real_kernel() {
    if !testkit::root("a_move_applies_make_before_break_to_a_real_kernel") {
        return;
    }
    let ns = Netns::new("m");
    let p = load("hypervisor.toml");
    let before = compiler::compile(&p, &compiler::HostFacts::default()).unwrap();
    prepare(&ns, &p, &before.plan);
    apply_plan(&ns, &before.plan);
    let tenants_before = element_count(&ns, "owners_tenants");
    assert_eq!(tenants_before, 4, "four tenants are registered");
    assert_eq!(element_count(&ns, "vif_tenants"), 4, "four vifs");
    assert_eq!(
        element_count(&ns, "tenant_classes"),
        8,
        "four tenants × two realms"
    );
    // Move tenant 1 (web-1) from its reseller parent into the overage pool.
    let mut moved = p.clone();
    let t = moved.tenants.iter_mut().find(|t| t.id.0 == 1).unwrap();
    t.plan = "overage".into();
    t.parent = None;
    let facts = compiler::HostFacts {
        interfaces: None,
        live: compiler::Live::from_plan(&before.plan),
        ..compiler::HostFacts::default()
    };
    let after = compiler::compile(&moved, &facts).unwrap();
    let cs = plan::diff(&after.plan, &before.plan);
    assert!(!cs.is_empty());
    apply_changes(&ns, &cs);
    assert_eq!(class_count(&ns, &after.plan), after.plan.classes.len());
    assert_eq!(element_count(&ns, "owners_tenants"), tenants_before);
    let listed = ns.run(
        "nft",
        &["list", "map", "netdev", "tollgate", "owners_tenants"],
        None,
    );
    let base = after.placements.placements[&compiler::Owner::Tenant(net_types::TenantId(1))].base();
    assert!(
        listed.contains(&format!("1 : {base}")),
        "the registry records the new block {base}:\n{listed}"
    );
}
