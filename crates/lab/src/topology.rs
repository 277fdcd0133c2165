//! The namespaces, links, addresses and routes of a lab, as `ip` commands.
//!
//! Every command names a `tg-lab-*` namespace (`ip netns add`, `ip -n`, `ip
//! netns exec`), so nothing here can touch the root namespace; a unit test
//! holds that.

use super::realms::{UPSTREAM_V4, UPSTREAM_V6};
use super::{cmd, Lab, LabError, LabMode, LabTenant};

/// The host's end of the uplink, and the upstream's. A /30 at the top of
/// 192.0.2.0/24 stays clear of the hypervisor example's VMs (192.0.2.10–).
const HOST_WAN4: &str = "192.0.2.253";
const UP_WAN4: &str = "192.0.2.254";
const HOST_WAN6: &str = "2001:db8:fffe::1";
const UP_WAN6: &str = "2001:db8:fffe::2";

/// The upstream's end of the uplink.
const UP_LINK: &str = "up0";

/// Builds the lab's namespaces. Stops at the first failing command.
pub(super) fn build(lab: &Lab) -> Result<(), LabError> {
    for c in commands(lab) {
        cmd::run(&c)?;
    }
    Ok(())
}

/// Collects commands; `ip(ns, "link set lo up")` reads like the shell.
struct Script(Vec<Vec<String>>);

impl Script {
    fn ip(&mut self, ns: &str, args: &str) {
        let mut c = vec!["ip".to_string(), "-n".to_string(), ns.to_string()];
        c.extend(args.split_whitespace().map(str::to_string));
        self.0.push(c);
    }

    /// Writes sysctls through /proc inside the namespace: /proc/sys/net
    /// shows the namespace of whoever opens it, and `sh` is always there
    /// (the `sysctl` program may not be).
    fn sysctl(&mut self, ns: &str, settings: &[(String, &str)]) {
        let script: Vec<String> = settings
            .iter()
            .map(|(k, v)| format!("echo {v} > '/proc/sys/{k}'"))
            .collect();
        self.0.push(
            ["ip", "netns", "exec", ns, "sh", "-ec", &script.join("; ")]
                .map(str::to_string)
                .to_vec(),
        );
    }
}

/// Every command that builds `lab`, in order.
pub(super) fn commands(lab: &Lab) -> Vec<Vec<String>> {
    let mut s = Script(Vec::new());
    let (host, up) = (lab.host_netns.as_str(), lab.upstream_netns.as_str());
    let all: Vec<&str> = [host, up]
        .into_iter()
        .chain(lab.tenants.iter().map(|t| t.netns.as_str()))
        .collect();
    for ns in &all {
        s.0.push(["ip", "netns", "add", ns].map(str::to_string).to_vec());
        s.ip(ns, "link set lo up");
        // No duplicate address detection: addresses are usable at once, so
        // the first ping or flow does not race a tentative address.
        let mut set = vec![
            ("net/ipv6/conf/all/accept_dad".to_string(), "0"),
            ("net/ipv6/conf/default/accept_dad".to_string(), "0"),
        ];
        if *ns == host {
            set.push(("net/ipv4/ip_forward".to_string(), "1"));
            set.push(("net/ipv6/conf/all/forwarding".to_string(), "1"));
        }
        s.sysctl(ns, &set);
    }
    upstream(&mut s, lab);
    match lab.mode {
        LabMode::Router => router_lan(&mut s, lab),
        LabMode::Hypervisor => vifs(&mut s, lab),
    }
    s.0
}

/// The uplink, the realms' networks in the upstream, and the routes between.
fn upstream(s: &mut Script, lab: &Lab) {
    let (host, up, wan) = (&lab.host_netns, &lab.upstream_netns, &lab.uplink);
    s.ip(
        host,
        &format!("link add {wan} type veth peer name {UP_LINK} netns {up}"),
    );
    s.ip(host, &format!("addr add {HOST_WAN4}/30 dev {wan}"));
    s.ip(host, &format!("addr add {HOST_WAN6}/64 dev {wan} nodad"));
    s.ip(up, &format!("addr add {UP_WAN4}/30 dev {UP_LINK}"));
    s.ip(up, &format!("addr add {UP_WAN6}/64 dev {UP_LINK} nodad"));
    for a in UPSTREAM_V4 {
        s.ip(up, &format!("addr add {a}/24 dev lo"));
    }
    for a in UPSTREAM_V6 {
        s.ip(up, &format!("addr add {a}/64 dev lo nodad"));
    }
    s.ip(host, &format!("link set {wan} up"));
    s.ip(up, &format!("link set {UP_LINK} up"));
    // The upstream is the host's way to everything, as a transit link is.
    s.ip(host, &format!("route add default via {UP_WAN4}"));
    s.ip(host, &format!("-6 route add default via {UP_WAN6}"));
    let tenants4 = match lab.mode {
        LabMode::Router => "100.64.0.0/10",
        LabMode::Hypervisor => "192.0.2.0/24",
    };
    s.ip(up, &format!("route add {tenants4} via {HOST_WAN4}"));
    s.ip(up, &format!("-6 route add 2001:db8::/32 via {HOST_WAN6}"));
}

/// Router mode: a bridge `lan0` in the host with one port per tenant, and
/// every tenant's gateway address on the bridge, so download leaves through
/// the one LAN interface the policy names.
fn router_lan(s: &mut Script, lab: &Lab) {
    let host = &lab.host_netns;
    let lan = lab.lan.as_deref().unwrap_or("lan0");
    // Multicast snooping off: neighbour discovery is flooded to every port
    // instead of depending on which MLD reports the bridge has seen.
    s.ip(
        host,
        &format!("link add {lan} type bridge mcast_snooping 0"),
    );
    s.ip(host, &format!("link set {lan} up"));
    for (k, t) in lab.tenants.iter().enumerate() {
        let port = format!("lanp{}", k + 1);
        s.ip(
            host,
            &format!("link add {port} type veth peer name eth0 netns {}", t.netns),
        );
        s.ip(host, &format!("link set {port} master {lan}"));
        s.ip(host, &format!("link set {port} up"));
        s.ip(
            host,
            &format!("addr add {}/{} dev {lan}", t.gateway4, t.v4_len),
        );
        s.ip(
            host,
            &format!("addr add {}/{} dev {lan} nodad", t.gateway6, t.v6_len),
        );
        tenant_side(s, t);
        s.ip(&t.netns, &format!("route add default via {}", t.gateway4));
        s.ip(
            &t.netns,
            &format!("-6 route add default via {}", t.gateway6),
        );
    }
}

/// Hypervisor mode: each VM's veth peer in the host carries the vif name;
/// the host routes the VM's addresses to it and answers for the gateways.
fn vifs(s: &mut Script, lab: &Lab) {
    let host = &lab.host_netns;
    let gw4 = lab.tenants.first().map(|t| t.gateway4);
    if let Some(gw4) = gw4 {
        s.ip(host, &format!("addr add {gw4}/32 dev lo"));
    }
    for t in &lab.tenants {
        let vif = t.vif.as_deref().unwrap_or("vif");
        s.ip(
            host,
            &format!("link add {vif} type veth peer name eth0 netns {}", t.netns),
        );
        s.ip(host, &format!("addr add {}/64 dev {vif} nodad", t.gateway6));
        s.ip(host, &format!("link set {vif} up"));
        // Proxy ARP lets a VM reach addresses it believes are on-link.
        s.sysctl(host, &[(format!("net/ipv4/conf/{vif}/proxy_arp"), "1")]);
        s.ip(host, &format!("route add {}/{} dev {vif}", t.v4, t.v4_len));
        s.ip(
            host,
            &format!("-6 route add {}/{} dev {vif}", net6(t), t.v6_len),
        );
        tenant_side(s, t);
        s.ip(&t.netns, &format!("route add {} dev eth0", t.gateway4));
        s.ip(
            &t.netns,
            &format!("route add default via {} dev eth0", t.gateway4),
        );
        s.ip(
            &t.netns,
            &format!("-6 route add default via {} dev eth0", t.gateway6),
        );
    }
}

/// The tenant's own end: its addresses on `eth0`.
fn tenant_side(s: &mut Script, t: &LabTenant) {
    s.ip(
        &t.netns,
        &format!("addr add {}/{} dev eth0", t.v4, t.v4_len),
    );
    s.ip(
        &t.netns,
        &format!("addr add {}/{} dev eth0 nodad", t.v6, t.v6_len),
    );
    s.ip(&t.netns, "link set eth0 up");
}

/// The network of a tenant's IPv6 link prefix.
fn net6(t: &LabTenant) -> std::net::Ipv6Addr {
    let mask = u128::MAX
        .checked_shl(128 - u32::from(t.v6_len))
        .unwrap_or(0);
    std::net::Ipv6Addr::from(u128::from(t.v6) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn net6_masks_host_bits() {
        let t = LabTenant {
            id: 1,
            name: "a".into(),
            netns: "tg-lab-t1".into(),
            v4: "192.0.2.10".parse().unwrap(),
            v4_len: 32,
            gateway4: "169.254.0.1".parse().unwrap(),
            v6: "2001:db8:10::1".parse().unwrap(),
            v6_len: 64,
            gateway6: "fe80::1".parse().unwrap(),
            plan: "p".into(),
            vif: Some("vif1.0".into()),
        };
        assert_eq!(net6(&t).to_string(), "2001:db8:10::");
    }
}
