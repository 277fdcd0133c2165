//! Synthetic policies of any size, for benchmarks and property tests.
//!
//! The shape mirrors a mid-size ISP: two realms, priority bands, tenants
//! spread over a few dozen parents, every tenant with an IPv4 and an IPv6
//! prefix from the documentation and shared address ranges.

use std::fmt::Write as _;

/// Knobs for [`policy_text`].
#[derive(Clone, Copy, Debug)]
pub struct Shape {
    /// How many tenants.
    pub tenants: u32,
    /// How many HTB shards per direction.
    pub shards: u16,
    /// Tenants per parent (0: tenants sit at the root).
    pub per_parent: u32,
    /// Router or hypervisor mode.
    pub hypervisor: bool,
}

impl Shape {
    /// `tenants` tenants in router mode, sharded so that they fit.
    pub fn router(tenants: u32) -> Shape {
        Shape {
            tenants,
            shards: (tenants * 3 / 16_000 + 1).min(64) as u16,
            per_parent: 100,
            hypervisor: false,
        }
    }
}

/// The IPv4 /30 of tenant `i` (inside 100.64.0.0/10, room for 1M tenants).
pub fn tenant_v4(i: u32) -> String {
    let a = 0x6440_0000u32 + i * 4;
    format!(
        "{}.{}.{}.{}/30",
        a >> 24,
        (a >> 16) & 0xff,
        (a >> 8) & 0xff,
        a & 0xff
    )
}

/// A tenant's TOML entry.
pub fn tenant_entry(out: &mut String, i: u32, shape: &Shape, plan: &str) {
    let _ = writeln!(
        out,
        "[[tenants]]\nid = {i}\nname = \"t{i}\"\nplan = \"{plan}\""
    );
    if let Some(p) = (i - 1).checked_div(shape.per_parent) {
        let _ = writeln!(out, "parent = \"p{p}\"");
    }
    let _ = writeln!(
        out,
        "prefixes = [\"{}\", \"2001:db8:{:x}:{:x}::/64\"]",
        tenant_v4(i),
        i >> 16,
        i & 0xffff
    );
    if shape.hypervisor {
        let _ = writeln!(out, "interface = \"vif{i}.0\"");
    }
    out.push('\n');
}

/// A valid policy with `shape.tenants` tenants.
pub fn policy_text(shape: &Shape) -> String {
    let mut out = String::new();
    let mode = if shape.hypervisor {
        "hypervisor"
    } else {
        "router"
    };
    let lan = if shape.hypervisor {
        ""
    } else {
        "lan = \"lan0\"\n"
    };
    let _ = writeln!(
        out,
        "[site]\nmode = \"{mode}\"\nuplink = \"wan0\"\n{lan}capacity = {{ down = \"10tbit\", up = \"10tbit\" }}\nshards = {}\n",
        shape.shards
    );
    out.push_str("[realms]\ndefault = \"international\"\n\n[realms.national]\nid = 1\nprefixes = [\"198.51.100.0/24\", \"2001:db8:ff00::/40\"]\n\n[realms.international]\nid = 2\n\n");
    out.push_str("[bands.interactive]\ndscp = [\"ef\"]\nports = [\"udp/53\"]\nsmall_tcp_acks = true\n\n[bands.bulk]\ndscp = [\"cs1\"]\n\n");
    out.push_str("[plans.small]\ndown = { rate = \"10mbit\", ceil = \"20mbit\" }\nup = { rate = \"5mbit\", ceil = \"10mbit\" }\n[plans.small.realms.international]\ndown = { ceil = \"3mbit\" }\nup = { ceil = \"3mbit\" }\n\n");
    out.push_str("[plans.large]\ndown = { rate = \"20mbit\", ceil = \"50mbit\" }\nup = { rate = \"10mbit\", ceil = \"20mbit\" }\n\n");
    out.push_str("[plans.overage]\nshared = true\nid = 65000\ndown = { rate = \"100mbit\", ceil = \"1gbit\" }\nup = { rate = \"100mbit\", ceil = \"1gbit\" }\n\n");
    if shape.per_parent > 0 {
        for p in 0..shape.tenants.div_ceil(shape.per_parent) {
            let _ = writeln!(
                out,
                "[[parents]]\nname = \"p{p}\"\nid = {}\ndown = {{ rate = \"2gbit\", ceil = \"10gbit\" }}\nup = {{ rate = \"1gbit\", ceil = \"10gbit\" }}\n",
                p + 1
            );
        }
    }
    for i in 1..=shape.tenants {
        let plan = if i % 2 == 0 { "small" } else { "large" };
        tenant_entry(&mut out, i, shape, plan);
    }
    out
}
