//! The lab for real: namespaces up, every tenant reaching both realms over
//! IPv4 and IPv6, iperf3 measuring every flow, and everything gone after
//! `down`. No shaping is applied here, so rates are whatever the veths
//! carry; shaping is tested where the policy is applied.
//!
//! Needs root, iproute2, iputils-ping and iperf3. The tests share one set of
//! namespace names, so they run one at a time, and each removes the lab when
//! it ends, also on failure.

use lab::{self, Direction, Lab, LabMode, LabSpec, TrafficOpts};
use std::path::PathBuf;
use std::process::Command;

/// One lab at a time: the namespace names are fixed.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Removes the lab when a test ends, however it ends.
struct Down;

impl Drop for Down {
    fn drop(&mut self) {
        if let Err(e) = lab::down() {
            eprintln!("lab down: {e}");
        }
    }
}

fn examples() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"))
}

/// Builds a lab, refusing to run over someone's running lab.
fn up(mode: LabMode, tenants: u16) -> (Lab, Down) {
    if let Some(running) = lab::status() {
        panic!(
            "a lab is already running in {}; run `tollgate lab down` first",
            running.host_netns
        );
    }
    let l = lab::up(&LabSpec { mode, tenants }, &examples()).unwrap_or_else(|e| panic!("{e}"));
    (l, Down)
}

fn lab_namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with("tg-lab-"))
        .map(str::to_string)
        .collect()
}

fn ping(ns: &str, addr: &str) -> Result<(), String> {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "ping", "-c", "1", "-W", "2", addr])
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{ns} cannot ping {addr}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Every tenant reaches every endpoint of every realm, over both families.
fn every_tenant_reaches_every_realm(l: &Lab) {
    assert!(l.endpoints.len() >= 2, "{:?}", l.endpoints);
    for t in &l.tenants {
        for e in &l.endpoints {
            let v4 = e.v4.map(|a| a.to_string());
            let v6 = e.v6.map(|a| a.to_string());
            for addr in [v4, v6].into_iter().flatten() {
                ping(&t.netns, &addr).unwrap_or_else(|e| panic!("{e}"));
            }
        }
    }
}

/// One measurement per tenant × endpoint address × direction, each a
/// plausible unshaped rate.
fn measure_everything(l: &Lab, opts: &TrafficOpts) {
    let mut log = String::new();
    let got = lab::traffic(l, opts, &mut |line| {
        log.push_str(line);
        log.push('\n');
    })
    .unwrap_or_else(|e| panic!("{e}\n{log}"));
    eprintln!("{log}");
    let families = if opts.ipv6 { 2 } else { 1 };
    let want = l.tenants.len() * l.endpoints.len() * families * opts.directions.len();
    assert_eq!(got.len(), want, "{got:#?}");
    for t in &l.tenants {
        for e in &l.endpoints {
            for dir in &opts.directions {
                let n = got
                    .iter()
                    .filter(|m| m.tenant == t.id && m.realm == e.realm && m.direction == *dir)
                    .count();
                assert_eq!(n, families, "{} {} {dir:?}", t.name, e.realm);
            }
        }
    }
    for m in &got {
        // Unshaped veths carry hundreds of Mbit/s even on a busy machine;
        // one Mbit/s would mean the flow barely ran.
        assert!(m.mbit.is_finite() && m.mbit > 1.0, "{m:?}\n{log}");
    }
}

#[test]
fn router_lab_reaches_both_realms_and_measures_every_flow() {
    if !testkit::root("router_lab_reaches_both_realms_and_measures_every_flow") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (l, _down) = up(LabMode::Router, 3);
    assert_eq!(lab::status().as_ref(), Some(&l));
    every_tenant_reaches_every_realm(&l);
    let opts = TrafficOpts {
        seconds: 1,
        ipv6: true,
        ..TrafficOpts::default()
    };
    measure_everything(&l, &opts);
    // alice's international ceil comes from her plan's realm cap.
    assert!(l.policy_toml.contains("name = \"alice\""));
}

#[test]
fn hypervisor_lab_reaches_both_realms_and_measures_every_flow() {
    if !testkit::root("hypervisor_lab_reaches_both_realms_and_measures_every_flow") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    // Five VMs: the example's four and one generated.
    let (l, _down) = up(LabMode::Hypervisor, 5);
    assert_eq!(l.tenants[4].vif.as_deref(), Some("vif5.0"));
    every_tenant_reaches_every_realm(&l);
    let opts = TrafficOpts {
        seconds: 1,
        parallel: 2,
        directions: vec![Direction::Down, Direction::Up],
        ..TrafficOpts::default()
    };
    measure_everything(&l, &opts);
}

#[test]
fn up_twice_refuses_and_down_leaves_nothing() {
    if !testkit::root("up_twice_refuses_and_down_leaves_nothing") {
        return;
    }
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let (_l, down) = up(LabMode::Router, 2);
    let spec = LabSpec {
        mode: LabMode::Hypervisor,
        tenants: 1,
    };
    let e = lab::up(&spec, &examples()).unwrap_err().to_string();
    assert!(
        e.contains("already exists") && e.contains("tollgate lab down"),
        "{e}"
    );
    // The refused `up` left the running lab alone.
    assert!(lab::status().is_some());
    drop(down);
    assert_eq!(lab_namespaces(), Vec::<String>::new());
    assert!(lab::status().is_none());
    assert!(!std::path::Path::new(lab::STATE_DIR).exists());
    // Nothing to remove is not an error.
    lab::down().unwrap();
}
