//! The lab: a whole ISP or hypervisor in network namespaces, to try tollgate
//! on one machine.
//!
//! [`up`] builds an upstream namespace that holds the realms' networks
//! (198.51.100.0/24 and 203.0.113.0/24, and IPv6 networks in 2001:db8::/32),
//! a host namespace where tollgate runs, and one namespace per tenant, wired
//! as `examples/router.toml` or `examples/hypervisor.toml` expects. It also
//! writes the policy for exactly those tenants ([`Lab::policy_toml`]) for the
//! caller to apply inside [`Lab::host_netns`]. [`traffic`] measures every
//! tenant × realm × direction with iperf3, and [`down`] removes it all.
//!
//! Router mode:
//!
//! ```text
//!  tg-lab-up                      tg-lab-host                       tg-lab-t1 … tN
//!  lo: 198.51.100.1/24            wan0 192.0.2.253/30               eth0 100.64.k.2/24
//!      203.0.113.1/24             lan0 (bridge) 100.64.k.1/24        2001:db8:k::2/64
//!      2001:db8:5100::1/64          ├── lanp1 ─────────────────────── eth0 (t1)
//!      2001:db8:9999::1/64          ├── lanp2 ─────────────────────── eth0 (t2)
//!      2001:db8:ffff::1/64          └── …
//!  up0 192.0.2.254/30 ── wan0
//! ```
//!
//! Hypervisor mode: the host's uplink carries the example's name (`eth0`),
//! and each VM namespace's `eth0` is the peer of a host veth named after the
//! tenant's `interface` (`vif1.0`…); the host routes each VM's addresses to
//! its vif, with 169.254.0.1 and fe80::1 as the VMs' gateways (as Xen's
//! vif-route or a routed libvirt network does):
//!
//! ```text
//!  tg-lab-up                      tg-lab-host                       tg-lab-t1 … tN
//!  (the same as above)            eth0 192.0.2.253/30               eth0 192.0.2.10/32
//!  up0 192.0.2.254/30 ── eth0     lo 169.254.0.1/32                      2001:db8:10::1/64
//!                                 vif1.0 fe80::1 ─────────────────── eth0 (t1)
//!                                 vif2.0 fe80::1 ─────────────────── eth0 (t2)
//!                                 192.0.2.10/32 dev vif1.0, …
//! ```
//!
//! Everything the lab creates lives in namespaces named `tg-lab-*` and under
//! `/run/tollgate-lab/`; the root namespace's interfaces and routes are never
//! touched, and [`down`] finds what to remove from the namespace names alone,
//! so it also cleans up after a half-built or crashed lab.

mod cmd;
mod error;
mod iperf;
mod realms;
mod state;
mod tenants;
mod topology;

#[cfg(test)]
mod tests;

pub use error::LabError;
pub use policy::Direction;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

/// Every lab namespace's name starts with this.
pub const NETNS_PREFIX: &str = "tg-lab-";

/// Where [`up`] writes the state file, the emitted policy and its prefix lists.
pub const STATE_DIR: &str = "/run/tollgate-lab";

/// The most tenants a lab holds: their addresses come from fixed
/// documentation ranges (192.0.2.10–249 in hypervisor mode).
pub const MAX_TENANTS: u16 = 240;

/// Which shipped example the lab imitates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LabMode {
    /// `examples/router.toml`: tenants are address blocks behind a LAN bridge.
    Router,
    /// `examples/hypervisor.toml`: tenants are VMs, each behind its own vif.
    Hypervisor,
}

impl LabMode {
    /// `router` or `hypervisor`, as on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            LabMode::Router => "router",
            LabMode::Hypervisor => "hypervisor",
        }
    }

    /// The example policy file this mode starts from.
    pub fn example_file(self) -> &'static str {
        match self {
            LabMode::Router => "router.toml",
            LabMode::Hypervisor => "hypervisor.toml",
        }
    }
}

/// What to build.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LabSpec {
    /// Router or hypervisor.
    pub mode: LabMode,
    /// How many tenant namespaces (1 to [`MAX_TENANTS`]).
    pub tenants: u16,
}

/// A running lab, as [`up`] built it and [`status`] finds it again.
#[derive(Clone, Debug, PartialEq)]
pub struct Lab {
    /// Router or hypervisor.
    pub mode: LabMode,
    /// The namespace tollgate runs in (`tg-lab-host`).
    pub host_netns: String,
    /// The namespace holding the realms' networks (`tg-lab-up`).
    pub upstream_netns: String,
    /// The host's interface toward the upstream, as the policy names it.
    pub uplink: String,
    /// The host's LAN bridge (router mode only).
    pub lan: Option<String>,
    /// One entry per tenant namespace.
    pub tenants: Vec<LabTenant>,
    /// The addresses in the upstream that traffic is measured against, one
    /// entry per realm of the policy.
    pub endpoints: Vec<Endpoint>,
    /// The policy for exactly these tenants, for tollgate to apply in
    /// [`Lab::host_netns`].
    pub policy_toml: String,
    /// Where that policy was written; its prefix-list files sit beside it.
    pub policy_path: PathBuf,
}

/// One tenant: a namespace standing for a customer or a VM.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LabTenant {
    /// Its id in the policy.
    pub id: u32,
    /// Its name in the policy.
    pub name: String,
    /// Its namespace (`tg-lab-t1`…).
    pub netns: String,
    /// Its IPv4 address.
    pub v4: Ipv4Addr,
    /// The length of the IPv4 prefix on its link (32 for a routed VM).
    pub v4_len: u8,
    /// Its IPv4 default gateway (router: the host's LAN address; hypervisor:
    /// 169.254.0.1, reached on-link).
    pub gateway4: Ipv4Addr,
    /// Its IPv6 address. Tenants whose policy entry has no IPv6 prefix get
    /// one anyway, so that IPv6 can be tried; that traffic is nobody's.
    pub v6: Ipv6Addr,
    /// The length of the IPv6 prefix on its link.
    pub v6_len: u8,
    /// Its IPv6 default gateway (hypervisor: fe80::1 on its vif).
    pub gateway6: Ipv6Addr,
    /// Its plan in the policy.
    pub plan: String,
    /// Its interface in the host namespace (hypervisor mode: the vif).
    pub vif: Option<String>,
}

/// Addresses in the upstream namespace that belong to one realm.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// The realm's name in the policy (`national`, `datacenter`…).
    pub realm: String,
    /// An IPv4 address of that realm, if the lab has one.
    pub v4: Option<Ipv4Addr>,
    /// An IPv6 address of that realm, if the lab has one.
    pub v6: Option<Ipv6Addr>,
}

/// How [`traffic`] measures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrafficOpts {
    /// Length of each flow in seconds.
    pub seconds: u32,
    /// Which directions to measure.
    pub directions: Vec<Direction>,
    /// Whether to measure over IPv6 too (IPv4 is always measured).
    pub ipv6: bool,
    /// How many flows run at once. One is the honest default: on a machine
    /// with few cores, concurrent flows compete for CPU and measure each
    /// other instead of the shaper.
    pub parallel: usize,
}

impl Default for TrafficOpts {
    fn default() -> Self {
        TrafficOpts {
            seconds: 4,
            directions: Direction::BOTH.to_vec(),
            ipv6: false,
            parallel: 1,
        }
    }
}

/// One flow's result.
#[derive(Clone, Debug, PartialEq)]
pub struct Measurement {
    /// The tenant's id.
    pub tenant: u32,
    /// The tenant's name.
    pub tenant_name: String,
    /// The destination's realm, by its name in the policy.
    pub realm: String,
    /// The upstream address measured against (its family tells IPv4 from IPv6).
    pub server: IpAddr,
    /// Download (toward the tenant) or upload.
    pub direction: Direction,
    /// What the receiver counted, in Mbit/s of TCP payload.
    pub mbit: f64,
    /// The ceil the policy gives this tenant × realm × direction, if the
    /// policy covers the tenant's address in this family. Measured payload
    /// is about 4–6% below it when shaping holds (headers count in HTB).
    pub expected_ceil_mbit: Option<f64>,
}

/// Builds a lab. `examples_dir` is the repository's `examples/` folder.
///
/// Refuses if any `tg-lab-*` namespace or a state file exists. On failure
/// it removes what it had built, so a failed `up` never needs a `down`.
pub fn up(spec: &LabSpec, examples_dir: &Path) -> Result<Lab, LabError> {
    let existing = cmd::lab_namespaces()?;
    if !existing.is_empty() || Path::new(STATE_DIR).join(state::FILE).exists() {
        return Err(LabError::AlreadyUp {
            namespaces: existing,
        });
    }
    let lab = tenants::plan_lab(spec, examples_dir)?;
    let built = topology::build(&lab).and_then(|()| state::write(&lab, examples_dir));
    match built {
        Ok(()) => Ok(lab),
        Err(e) => {
            // A half-built lab would make the next `up` refuse; remove it now
            // and report the first failure, which is the useful one.
            let _ = down();
            Err(e)
        }
    }
}

/// The running lab, from the state file [`up`] wrote, if its host
/// namespace still exists.
pub fn status() -> Option<Lab> {
    let lab = state::read().ok()?;
    let alive = cmd::lab_namespaces().ok()?.contains(&lab.host_netns);
    alive.then_some(lab)
}

/// Measures every tenant × realm × direction (and family, with
/// [`TrafficOpts::ipv6`]) with iperf3, reporting each flow to `progress`
/// as it finishes.
pub fn traffic(
    lab: &Lab,
    opts: &TrafficOpts,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Measurement>, LabError> {
    iperf::run(lab, opts, progress)
}

/// Removes every `tg-lab-*` namespace, every process inside them, and
/// [`STATE_DIR`]. Works on a partial or crashed lab, and succeeds when there
/// is nothing to remove.
pub fn down() -> Result<(), LabError> {
    let mut first_error = None;
    for ns in cmd::lab_namespaces()? {
        if let Err(e) = cmd::delete_namespace(&ns) {
            first_error.get_or_insert(e);
        }
    }
    if let Err(e) = std::fs::remove_dir_all(STATE_DIR) {
        if e.kind() != std::io::ErrorKind::NotFound {
            first_error.get_or_insert(LabError::Io {
                path: PathBuf::from(STATE_DIR),
                error: e.to_string(),
            });
        }
    }
    first_error.map_or(Ok(()), Err)
}

impl Lab {
    /// Loads [`Lab::policy_toml`], reading its prefix lists from beside
    /// [`Lab::policy_path`].
    pub fn policy(&self) -> Result<policy::Policy, LabError> {
        let dir = self.policy_path.parent().unwrap_or(Path::new("/"));
        realms::load(&self.policy_path, &self.policy_toml, dir)
    }
}
