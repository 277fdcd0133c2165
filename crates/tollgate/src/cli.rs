//! The command line, with the help text that teaches it.

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// Where the policy is read from unless `-c` or `TOLLGATE_CONFIG` say otherwise.
pub const DEFAULT_CONFIG: &str = "/etc/tollgate/tollgate.toml";

#[derive(Parser, Debug)]
#[command(
    name = "tollgate",
    version,
    about = "Shape, account and bill tenants on a Linux box from one policy file.",
    long_about = "tollgate turns one declarative policy file (site, realms, plans, parents, \
tenants) into the kernel's shaping state: HTB trees on IFB devices, nftables classification \
maps and tc redirect filters. It validates the whole policy before anything touches the kernel.",
    after_help = "Examples:
  tollgate check -c examples/router.toml          validate a policy, report every problem
  tollgate plan --offline -c examples/router.toml  show what would be created
  tollgate plan --offline --format nft -c examples/router.toml
  tollgate explain alice -c examples/router.toml   every kernel object serving tenant alice

The policy format is described in docs/policy.md."
)]
pub struct Args {
    /// The policy file [default: /etc/tollgate/tollgate.toml].
    #[arg(short = 'c', long = "config", env = "TOLLGATE_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Log more (also see TOLLGATE_LOG=debug).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Validate the policy and report every problem at once.
    #[command(
        after_help = "Exit status: 0 if the policy is valid (warnings allowed), 1 if not.

Examples:
  tollgate check -c examples/router.toml
  tollgate check --json -c broken.toml | jq '.diagnostics[] | .line'"
    )]
    Check {
        /// Print the diagnostics as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Compile the policy into a kernel plan and show it.
    #[command(
        after_help = "Until the dataplane lands, plans are offline only: they are compiled \
against the facts in --host (or none) and shown as the change set from an empty kernel.

Formats:
  text  a summary and the ordered change set (default)
  tc    the tc objects as `tc -batch` input
  nft   tollgate's nftables table as an `nft -f` script
  json  the plan and the provenance of every object

Examples:
  tollgate plan --offline -c examples/hypervisor.toml
  tollgate plan --offline --host facts.toml --format tc -c examples/hypervisor.toml"
    )]
    Plan {
        /// Compile without reading the live kernel (required for now).
        #[arg(long)]
        offline: bool,
        /// A TOML file with host facts: `interfaces = ["eth0", "vif1.0"]`.
        #[arg(long, value_name = "FACTS.toml")]
        host: Option<PathBuf>,
        /// How to print the plan.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },

    /// Show every kernel object that serves one tenant, and why.
    #[command(after_help = "Examples:
  tollgate explain 1 -c examples/router.toml
  tollgate explain alice --json -c examples/router.toml")]
    Explain {
        /// The tenant's id or name.
        tenant: String,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Human summary and change set.
    Text,
    /// `tc -batch` lines.
    Tc,
    /// An `nft -f` script.
    Nft,
    /// JSON.
    Json,
}
