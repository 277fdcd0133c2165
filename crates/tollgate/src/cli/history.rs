//! The arguments of the commands that read the history: `usage`,
//! `realms`, `bill`, `top` and `overage`.

use super::parse_duration;
use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// The daemon's settings file, for the commands that bill or count.
#[derive(Args, Debug, Clone)]
pub struct SettingsArgs {
    /// The daemon's settings file: [accounting] and [retention], and
    /// [billing]/[overage] for installs whose policy lacks them
    /// (docs/accounting.md) [default: /etc/tollgate/accounting.toml, or
    /// built-in defaults if that file does not exist].
    #[arg(long, env = "TOLLGATE_ACCOUNTING", value_name = "FILE")]
    pub accounting: Option<PathBuf>,
}

/// Which stretch of time: a billing period, or from a date until now.
#[derive(Args, Debug, Clone)]
pub struct RangeArgs {
    /// A billing period, `YYYY-MM` [default: the current one].
    #[arg(long, value_name = "YYYY-MM", conflicts_with = "since")]
    pub period: Option<String>,
    /// From this local date (`YYYY-MM-DD`) until now.
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
}

/// `tollgate usage`'s options.
#[derive(Args, Debug)]
pub struct UsageArgs {
    /// Only this tenant (id or name).
    pub tenant: Option<String>,
    #[command(flatten)]
    pub range: RangeArgs,
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tollgate realms`' options.
#[derive(Args, Debug)]
pub struct RealmsArgs {
    #[command(flatten)]
    pub range: RangeArgs,
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tollgate bill`'s options.
#[derive(Args, Debug)]
pub struct BillArgs {
    /// Only this tenant (id or name).
    pub tenant: Option<String>,
    /// The billing period, `YYYY-MM` [default: the current one].
    #[arg(long, value_name = "YYYY-MM")]
    pub period: Option<String>,
    /// One CSV row per tenant and charge line.
    #[arg(long, conflicts_with = "json")]
    pub csv: bool,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
    /// Store this closed period's bill for good (refused while the period
    /// is open, or if it is already frozen).
    #[arg(long, conflicts_with = "tenant")]
    pub freeze: bool,
    #[command(flatten)]
    pub settings: SettingsArgs,
}

/// `tollgate transit`'s options.
#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TransitArgs {
    /// What to do instead of reporting.
    #[command(subcommand)]
    pub action: Option<TransitAction>,
    /// The period, `YYYY-MM`, in each upstream's own cycle [default: the
    /// one running now].
    #[arg(long, value_name = "YYYY-MM")]
    pub period: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tollgate transit`'s actions.
#[derive(Subcommand, Debug)]
pub enum TransitAction {
    /// Undo the transit guard's steps in force now and hold off
    /// tightening for its hold time (`[transit] hold`).
    #[command(
        after_help = "The running daemon carries it out within a second and reconciles the kernel to the policy file's rates; `tollgate transit` then shows the steps relaxed and until when the guard holds off.

Examples:
  tollgate transit relax"
    )]
    Relax,
}

/// `tollgate top`'s options.
#[derive(Args, Debug)]
pub struct TopArgs {
    /// Print one frame (measured over one --interval) and exit.
    #[arg(long)]
    pub once: bool,
    /// Print each frame as one JSON line.
    #[arg(long)]
    pub json: bool,
    /// Time between frames.
    #[arg(long, value_parser = parse_duration, default_value = "1s", value_name = "DURATION")]
    pub interval: Duration,
    /// Stop after this many frames.
    #[arg(long, value_name = "N")]
    pub count: Option<u64>,
    /// Show at most this many tenant × realm rows, busiest first.
    #[arg(long, default_value_t = 40, value_name = "N")]
    pub limit: usize,
    /// Per address instead: packets, bits and SYN per second in and out,
    /// from the eBPF classifier's counters (`[guard.capture] source =
    /// "ebpf"`), busiest first.
    #[arg(long)]
    pub addresses: bool,
}

/// `tollgate overage …`.
#[derive(Subcommand, Debug)]
pub enum OverageCommand {
    /// List the tenants the daemon moved into the overage plan, and why.
    #[command(after_help = "Examples:
  tollgate overage list
  tollgate overage list --json | jq '.moves[].name'")]
    List {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Return a tenant to its plan now, instead of at the end of the period.
    #[command(
        after_help = "The running daemon carries the release out at its next round (within one \
--interval), moving the tenant back with the same make-before-break edit as `tenant move`, and \
does not move it again in this period. If no daemon runs, the release happens when it starts.

Examples:
  tollgate overage release alice
  tollgate overage release 7 --state-dir /srv/tollgate"
    )]
    Release {
        /// The tenant's id or name.
        tenant: String,
    },
}
