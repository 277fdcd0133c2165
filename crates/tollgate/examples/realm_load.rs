//! How long a full routing table's realms take to reach the kernel.
//!
//! Reads the shared synthetic full table (the text dump of
//! `../shared/bench/lpm`: one `prefix/len value` per line), gives each
//! route a realm from its value (national when `value % MODULO == 0`, else
//! international, the default), and inside network namespace NETNS:
//! flattens the realms (`compiler::realm_ranges`), compiles a one-tenant
//! router policy with them, applies it to the kernel, then moves 100
//! routes, then 1% of the routes, to the other realm and applies again.
//! Prints each step's time.
//!
//! Usage (as root, in a namespace with interfaces wan0 and lan0; see
//! bench/realm_load.sh): realm_load V4.txt V6.txt MODULO NETNS

use compiler::realm_ranges::{flatten, Source};
use compiler::{HostFacts, Live};
use linux_dataplane::{ApplyOptions, Dataplane};
use net_types::{Prefix, RealmId};
use std::time::Instant;

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }

[realms]
default = "international"

[realms.national]
id = 1

[realms.international]
id = 2

[plans.home]
down = { rate = "3mbit", ceil = "10mbit" }
up = { rate = "3mbit", ceil = "10mbit" }

[[tenants]]
id = 1
name = "t1"
plan = "home"
prefixes = ["100.64.1.0/24"]
"#;

fn read(path: &str, modulo: u32) -> Vec<(Prefix, RealmId)> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter_map(|l| {
            let (p, v) = l.split_once(' ')?;
            let value: u32 = v.trim().parse().ok()?;
            let realm = if value.is_multiple_of(modulo) { 1 } else { 2 };
            Some((Prefix::parse(p).ok()?, RealmId(realm)))
        })
        .collect()
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, v4, v6, modulo, netns] = args.as_slice() else {
        eprintln!("usage: realm_load V4.txt V6.txt MODULO NETNS");
        std::process::exit(2);
    };
    let modulo: u32 = modulo.parse().expect("MODULO is a number");
    let mut routes = read(v4, modulo);
    routes.extend(read(v6, modulo));
    let national = routes.iter().filter(|(_, r)| r.0 == 1).count();
    println!(
        "{} routes ({national} national, 1 in {modulo})",
        routes.len()
    );

    let t = Instant::now();
    let flat = flatten(
        routes.iter().map(|(p, r)| (*p, *r, Source::Route)),
        RealmId(2),
    );
    println!(
        "flatten: {:.0} ms -> {} realm map elements",
        ms(t),
        flat.len()
    );

    let policy = policy::load_str("realm_load.toml", POLICY)
        .policy
        .expect("the policy is valid");
    linux_dataplane::netns::enter(netns).expect("enter the namespace");
    let mut dp = Dataplane::open().expect("open the dataplane");
    let mut round = |routes: &[(Prefix, RealmId)], what: &str| {
        let t = Instant::now();
        let observed = dp.observe(&plan::Plan::default()).expect("observe");
        let observe_ms = ms(t);
        let t = Instant::now();
        let facts = HostFacts {
            interfaces: Some(observed.ifindex.keys().copied().collect()),
            live: Live::from_plan(&observed.plan),
            route_realms: routes.to_vec(),
            ..HostFacts::default()
        };
        let compiled = compiler::compile(&policy, &facts).expect("compiles");
        let compile_ms = ms(t);
        let observed_plan = observed.plan_for(&compiled.plan);
        let t = Instant::now();
        let changes = plan::diff(&compiled.plan, &observed_plan);
        let diff_ms = ms(t);
        let t = Instant::now();
        let report = dp.apply(&changes, &ApplyOptions::default()).expect("apply");
        println!(
            "{what}: observe {observe_ms:.0} ms, compile (with flatten) {compile_ms:.0} ms, diff {diff_ms:.0} ms, \
             apply {:.0} ms ({} changes, {} failed)",
            ms(t),
            report.applied,
            report.failed.len()
        );
        let back = dp.observe(&compiled.plan).expect("observe");
        let count = |p: &plan::Plan| {
            ["realm4", "realm6"]
                .iter()
                .map(|m| p.maps.get(*m).map_or(0, |m| m.elements.len()))
                .sum::<usize>()
        };
        let unreadable = back.unreadable_elements();
        println!(
            "  read back: {} of {} realm elements, {} unreadable{}",
            count(&back.plan),
            count(&compiled.plan),
            unreadable.len(),
            unreadable
                .first()
                .map_or(String::new(), |(m, u)| format!(", e.g. {m}: {u}"))
        );
        assert!(report.failed.is_empty(), "{:?}", report.failed);
    };
    round(&routes, "full load");
    // Churn: 100 routes change realm, spread over the table, then 1% of
    // them.
    for (every, what) in [
        (routes.len() / 100, "100 routes change realm"),
        (100, "1% of routes change realm"),
    ] {
        for (i, r) in routes.iter_mut().enumerate() {
            if i.is_multiple_of(every) {
                r.1 = RealmId(3 - r.1 .0);
            }
        }
        round(&routes, what);
    }
    round(&routes, "no change");
}
