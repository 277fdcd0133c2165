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

    /// Top talkers of the flow records kept in ClickHouse
    /// ([history.flows]): by source, destination, port, protocol or AS
    /// over a range.
    #[command(
        after_help = "Sums come from the coarsest tables that tile the range: whole \
hours from the per-hour sums, the 5 minutes and minutes at its edges from theirs, and the \
seconds at its very ends from the records (kept 15 days by default). Bytes and packets are the \
exporters' with their sampling undone.

Examples:
  tollgate flows top --by dst-port --since 1h
  tollgate flows top --by src --since 2026-12-07T04:00:00Z --limit 20
  tollgate flows top --by proto --since 1d --json"
    )]
    Top(FlowTopArgs),
}

/// `tollgate flows top`'s options.
#[derive(Args, Debug)]
pub struct FlowTopArgs {
    /// What talkers are: src, dst, src-port, dst-port, proto or as.
    #[arg(long, value_name = "WHAT")]
    pub by: String,
    /// From when: a duration back from now (1h, 90m, 7d) or an RFC 3339 time.
    #[arg(long, default_value = "1h", value_name = "WHEN")]
    pub since: String,
    /// How many talkers (1 to 10,000).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub limit: usize,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `tollgate flows collect`'s options.
#[derive(Args, Debug)]
pub struct CollectArgs {
    /// How often what was received is committed to the history.
    #[arg(long, value_parser = parse_duration, default_value = "5s", value_name = "DURATION")]
    pub interval: Duration,
}
