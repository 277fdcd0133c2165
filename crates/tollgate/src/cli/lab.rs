//! `tollgate lab`'s arguments.

use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Subcommand, Debug)]
pub enum LabCommand {
    /// Build the namespaces and apply the example policy in the host namespace.
    #[command(
        after_help = "Namespaces are named tg-lab-*; nothing outside them is touched. \
The policy applied is examples/router.toml or examples/hypervisor.toml, extended to N tenants; \
it is written under /run/tollgate-lab/.

Examples:
  tollgate lab up
  tollgate lab up --tenants 8 --mode hypervisor
  tollgate --netns tg-lab-host status -c /run/tollgate-lab/policy.toml"
    )]
    Up {
        /// How many tenant namespaces.
        #[arg(long, default_value_t = 3)]
        tenants: u16,
        /// Router (tenants behind a LAN) or hypervisor (a vif per VM).
        #[arg(long, value_enum, default_value_t = LabModeArg::Router)]
        mode: LabModeArg,
        /// Where the example policies are.
        #[arg(long, default_value = "examples")]
        examples: PathBuf,
    },
    /// Drive bounded iperf3 traffic from every tenant to both realms, one
    /// flow at a time, and report the measured rates against the plan.
    #[command(after_help = "Examples:
  tollgate lab traffic
  tollgate lab traffic --seconds 2 --ipv6
  tollgate lab traffic --json | jq '.[] | select(.mbit > .ceil_mbit)'")]
    Traffic {
        /// Seconds per flow.
        #[arg(long, default_value_t = 4)]
        seconds: u32,
        /// Also measure over IPv6.
        #[arg(long)]
        ipv6: bool,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove every lab namespace and process.
    #[command(after_help = "Examples:
  tollgate lab down")]
    Down,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LabModeArg {
    /// Tenants are address blocks behind the host.
    Router,
    /// Each tenant is a VM with its own interface.
    Hypervisor,
}
