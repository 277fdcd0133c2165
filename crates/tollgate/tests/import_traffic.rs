//! A LibreQoS installation moved over: `tollgate import libreqos` on a
//! ShapedDevices.csv and network.json written here, the policy applied by
//! `tollgate apply` in a router built in network namespaces (see
//! `lab_router`), and iperf3 measuring each circuit at its Max Mbps in
//! both directions.
//!
//! Circuit k's device holds 100.64.k.2, the address of the lab's tenant
//! namespace k. TCP payload shows as about 95.6% of an HTB ceil (1448
//! payload bytes in a 1514-byte frame), so the band is [0.85, 1.02] of Max.
//!
//! Needs root, iproute2, nftables and iperf3; without root it fails unless
//! TOLLGATE_SKIP_ROOT_TESTS=1.

mod lab_router;

use lab_router::Router;
use std::process::Command;

const SHAPED_DEVICES: &str = "\
# Three circuits of a small WISP, as LibreQoS would shape them.
Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,Parent Node ID,Anchor Node ID,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment
101,North One,n1,cpe,AP_North,,,,100.64.1.2,,2,1,8,4,
102,North Two,n2,cpe,AP_North,,,,\"100.64.2.2, 100.64.2.3\",,3,1.5,12.5,6,
103,South,s1,cpe,Relay,,,,100.64.3.2,,1,1,5,2.5,
";

const NETWORK: &str = r#"{
  "Tower": { "downloadBandwidthMbps": 60, "uploadBandwidthMbps": 30, "children": {
    "AP_North": { "downloadBandwidthMbps": 40, "uploadBandwidthMbps": 20 },
    "Relay": { "virtual": true }
  } }
}"#;

/// (circuit's lab tenant, Download Max, Upload Max) in Mbit/s.
const MAX: [(u32, f64, f64); 3] = [(1, 8.0, 4.0), (2, 12.5, 6.0), (3, 5.0, 2.5)];

fn within(report: &str, what: &str, got: f64, max: f64) {
    assert!(
        got >= max * 0.85 && got <= max * 1.02,
        "{what}: {got:.2} Mbit/s, want {max} × [0.85, 1.02]\n{report}"
    );
}

#[test]
fn an_imported_libreqos_policy_shapes_each_circuit_at_its_max() {
    if !testkit::root("an_imported_libreqos_policy_shapes_each_circuit_at_its_max") {
        return;
    }
    testkit::need("iperf3", "iperf3");
    let dir = std::env::temp_dir().join(format!("tg-import-traffic-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (csv, net, out) = (
        dir.join("ShapedDevices.csv"),
        dir.join("network.json"),
        dir.join("policy.toml"),
    );
    std::fs::write(&csv, SHAPED_DEVICES).unwrap();
    std::fs::write(&net, NETWORK).unwrap();
    let import = Command::new(env!("CARGO_BIN_EXE_tollgate"))
        .args(["import", "libreqos"])
        .args([&csv, &net])
        .arg("-o")
        .arg(&out)
        .args(["--uplink", "wan0", "--lan", "lan0", "--capacity", "100mbit"])
        .output()
        .expect("run tollgate import");
    assert!(
        import.status.success(),
        "{}",
        String::from_utf8_lossy(&import.stderr)
    );
    let policy = std::fs::read_to_string(&out).unwrap();

    // `tollgate apply` keeps its records in the state directory: this
    // test's own, not the host's /var/lib/tollgate.
    let state = dir.join("state");
    std::env::set_var("TOLLGATE_STATE_DIR", &state);
    let r = Router::new("imp", 3);
    r.apply(&policy);
    let down = r.download(&[1, 2, 3], 4);
    let up = r.upload(&[1, 2, 3], 4);
    let report = format!(
        "download {down:.2?}, upload {up:.2?} Mbit/s; Max {MAX:?}\n{}",
        r.drops()
    );
    eprintln!("{report}");
    for (i, &(k, dmax, umax)) in MAX.iter().enumerate() {
        within(
            &report,
            &format!("circuit of tenant {k}, down"),
            down[i],
            dmax,
        );
        within(&report, &format!("circuit of tenant {k}, up"), up[i], umax);
    }
    drop(r);
    let _ = std::fs::remove_dir_all(&dir);
}
