//! Memory of the one-shot commands on a large policy (issue 12, item 17):
//! a ceiling per tenant, so that a change that builds the whole answer in
//! memory twice over (the JSON plan once took 80 KB a tenant, through a
//! `serde_json::Value` of the whole plan) fails here rather than on an
//! operator's 100,000 tenants. Figures at full size are in BENCHMARKS.md
//! (`bench/policy_memory.sh`).

use std::process::Command;

/// A router-mode policy of `n` tenants under `n / 100` parents, two realms.
fn policy(n: u32) -> String {
    let mut out = String::from(
        r#"[site]
mode = "router"
uplink = "v1"
lan = "v0"
capacity = { down = "100gbit", up = "100gbit" }

[realms]
default = "international"

[realms.national]
id = 1
prefixes = ["192.0.2.0/24", "198.51.100.0/24"]

[realms.international]
id = 2

[plans.base]
down = { rate = "10mbit", ceil = "20mbit" }
up = { rate = "10mbit", ceil = "20mbit" }
"#,
    );
    for p in 1..=n / 100 {
        out.push_str(&format!(
            "\n[[parents]]\nname = \"p{p}\"\nid = {p}\n\
             down = {{ rate = \"900mbit\", ceil = \"100gbit\" }}\n\
             up = {{ rate = \"900mbit\", ceil = \"100gbit\" }}\n"
        ));
    }
    for i in 0..n {
        let a = (100u32 << 24) | (64 << 16) | (i + 1);
        out.push_str(&format!(
            "\n[[tenants]]\nid = {}\nname = \"t{i}\"\nplan = \"base\"\nparent = \"p{}\"\n\
             prefixes = [\"{}/32\"]\n",
            i + 1,
            i / 100 + 1,
            std::net::Ipv4Addr::from(a)
        ));
    }
    out
}

/// The peak resident memory of `tollgate ARGS` in KiB, from GNU time.
fn peak_kib(args: &[&str]) -> u64 {
    testkit::need("/usr/bin/time", "time");
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("time");
    let o = Command::new("/usr/bin/time")
        .arg("-f")
        .arg("%M")
        .arg("-o")
        .arg(&report)
        .arg(env!("CARGO_BIN_EXE_tollgate"))
        .args(args)
        .env_remove("TOLLGATE_CONFIG")
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "tollgate {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.stdout.len() > 1000, "tollgate {args:?} printed little");
    std::fs::read_to_string(&report)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[test]
fn check_and_plan_stay_within_16_kib_a_tenant() {
    const TENANTS: u32 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.toml");
    std::fs::write(&path, policy(TENANTS)).unwrap();
    let p = path.to_str().unwrap();
    // Debug builds hold more than release ones; the ceiling leaves room
    // for that and still fails a tenfold regression.
    for (args, most_kib_per_tenant) in [
        (vec!["check", "--json", "-c", p], 16),
        (vec!["plan", "--offline", "-c", p], 16),
        (vec!["plan", "--offline", "--format", "json", "-c", p], 16),
        (vec!["plan", "--offline", "--format", "tc", "-c", p], 16),
    ] {
        let kib = peak_kib(&args);
        let per_tenant = kib / u64::from(TENANTS);
        eprintln!("tollgate {:?}: {kib} KiB", &args[..args.len() - 2]);
        assert!(
            per_tenant <= most_kib_per_tenant,
            "tollgate {:?} peaked at {kib} KiB, {per_tenant} KiB a tenant",
            &args[..args.len() - 2]
        );
    }
}
