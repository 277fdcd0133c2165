//! `tollgate flows`' arguments.

use super::parse_duration;
use clap::{Args, Subcommand};
use std::time::Duration;

/// `tollgate flows …`.
#[derive(Subcommand, Debug)]
pub enum FlowsCommand {
    /// Collect NetFlow v5/v9, IPFIX and sFlow from the policy's exporters
    /// into the history, without shaping anything.
    #[command(
        after_help = "The policy's [flows] section says where to listen and which \
exporters to believe; tenants with measured_by = \"flows\" are attributed by address, to the realm \
of the other end (the policy's realm prefixes and the routes' realms). Records are multiplied by \
the exporter's sampling interval, or the policy's override. Usage lands in the same history as \
kernel counters, so `usage`, `bill` and `top` work on it. SIGHUP reloads the policy; SIGTERM \
drains the sockets, commits and exits. `tollgate run` does the same when the policy has [flows].

Examples:
  tollgate flows collect -c /etc/tollgate/tollgate.toml
  tollgate flows collect --state-dir /tmp/tg-flows --interval 2s"
    )]
    Collect(CollectArgs),

    /// What the collector reported last: records, attribution, and drops
    /// and errors per socket and exporter.
    #[command(after_help = "Examples:
  tollgate flows status
  tollgate flows status --json | jq .totals")]
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tollgate flows collect`'s options.
#[derive(Args, Debug)]
pub struct CollectArgs {
    /// How often what was received is committed to the history.
    #[arg(long, value_parser = parse_duration, default_value = "5s", value_name = "DURATION")]
    pub interval: Duration,
}
