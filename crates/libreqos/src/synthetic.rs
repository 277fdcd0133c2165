//! LibreQoS-shaped input of any size, for benches and tests: sites with
//! access points in network.json, and circuits spread over the access
//! points with one or two devices each, IPv4 from 100.64.0.0/10 and IPv6
//! from 2001:db8::/32, on a few speed tiers (one of them fractional).

use std::fmt::Write as _;

/// A generated ShapedDevices.csv and network.json.
pub struct Files {
    /// ShapedDevices.csv, in the 15-column layout.
    pub shaped_devices: String,
    /// network.json: `sites` sites, each with `aps` access points.
    pub network: String,
}

/// The tiers: Download Min, Upload Min, Download Max, Upload Max (Mbps).
const TIERS: [(&str, &str, &str, &str); 4] = [
    ("25", "5", "100", "20"),
    ("12.5", "2.5", "50", "10"),
    ("50", "10", "250", "50"),
    ("5", "1", "25", "5"),
];

/// `circuits` circuits under `sites` × `aps` access points. Every third
/// circuit has a second device.
pub fn files(circuits: usize, sites: usize, aps: usize) -> Files {
    let sites = sites.max(1);
    let aps = aps.max(1);
    let mut net = String::from("{\n");
    for s in 0..sites {
        let _ = write!(
            net,
            "  \"Site_{s}\": {{\n    \"downloadBandwidthMbps\": 10000,\n    \"uploadBandwidthMbps\": 10000,\n    \"type\": \"site\",\n    \"children\": {{\n"
        );
        for a in 0..aps {
            let _ = writeln!(
                net,
                "      \"AP_{s}_{a}\": {{ \"downloadBandwidthMbps\": 1000, \"uploadBandwidthMbps\": 1000, \"type\": \"ap\" }}{}",
                if a + 1 < aps { "," } else { "" }
            );
        }
        let _ = write!(
            net,
            "    }}\n  }}{}\n",
            if s + 1 < sites { "," } else { "" }
        );
    }
    net.push_str("}\n");

    let mut csv = String::with_capacity(circuits * 160);
    csv.push_str("Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,Parent Node ID,Anchor Node ID,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment\n");
    for k in 0..circuits {
        let (dmin, umin, dmax, umax) = TIERS[k % TIERS.len()];
        let ap = k % (sites * aps);
        let parent = format!("AP_{}_{}", ap / aps, ap % aps);
        let devices = if k % 3 == 0 { 2 } else { 1 };
        for d in 0..devices {
            // Four addresses per circuit: 100.64.0.0 + 4k + d.
            let v4 = 0x6440_0000u32 + (k as u32) * 4 + d as u32;
            let v4 = std::net::Ipv4Addr::from(v4);
            let v6 = if d == 0 {
                format!("2001:db8:{:x}:{:x}::/64", (k >> 16) & 0xffff, k & 0xffff)
            } else {
                String::new()
            };
            let _ = writeln!(
                csv,
                "{},Customer {k},{k}-{d},cpe-{k}-{d},{parent},,,00:00:5e:00:{:02x}:{:02x},\"{v4}\",{v6},{dmin},{umin},{dmax},{umax},",
                k + 1,
                (k >> 8) & 0xff,
                k & 0xff,
            );
        }
    }
    Files {
        shaped_devices: csv,
        network: net,
    }
}
