//! The command line: the clap definitions and their help text, and
//! nothing else. Each subcommand's arguments are here; what it does is in
//! `cmd/`.

pub mod daemon;
pub mod flows;
pub mod guard;
pub mod history;
pub mod import;
pub mod lab;
pub mod live;
pub mod routes;
pub mod token;

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// `tollgate latency`'s options.
#[derive(clap::Args, Debug)]
pub struct LatencyArgs {
    /// Only this tenant's classes and alarms (id or name).
    pub tenant: Option<String>,
    /// The stored minutes since then, from the history, instead of the
    /// live figures: a duration back from now (`2h`, `30m`) or a time
    /// (`2026-12-07T04:00:00Z`).
    #[arg(long, value_name = "2h|TIME")]
    pub since: Option<String>,
    /// Print as JSON.
    #[arg(long)]
    pub json: bool,
}

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
  tollgate apply                                   make the kernel match the policy
  tollgate status                                  tenants, their classes and current rates
  tollgate lab up && tollgate lab traffic          try it all in network namespaces
  tollgate import libreqos ShapedDevices.csv network.json -o policy.toml

The policy format is described in docs/policy.md."
)]
pub struct Args {
    /// The policy file [default: /etc/tollgate/tollgate.toml].
    #[arg(short = 'c', long = "config", env = "TOLLGATE_CONFIG", global = true)]
    pub config: Option<PathBuf>,

    /// Log more (also see TOLLGATE_LOG=debug).
    #[arg(short, long, global = true)]
    pub verbose: bool,

    /// Work on the kernel state of this network namespace (an `ip netns`
    /// name) instead of the current one.
    #[arg(long, global = true, value_name = "NAME")]
    pub netns: Option<String>,

    /// tollgate's state directory: the history, the routes table, the
    /// overage records, the flow collector's status (every command reads
    /// and writes the same files in it).
    #[arg(long, global = true, env = "TOLLGATE_STATE_DIR", default_value = crate::state_dir::DEFAULT, value_name = "DIR")]
    pub state_dir: PathBuf,

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

    /// Show what `apply` would change in the kernel (or, with --offline, the
    /// whole plan).
    #[command(
        after_help = "Without --offline, the plan is the difference between the policy and what \
tollgate finds in the kernel now. With --offline, it is compiled against the facts in --host (or \
none) and shown as the change set from an empty kernel.

Formats:
  text  a summary and the ordered change set (default)
  tc    the tc objects as `tc -batch` input
  nft   tollgate's nftables table as an `nft -f` script
  json  the plan and the provenance of every object

Examples:
  tollgate plan
  tollgate plan --format nft
  tollgate plan --offline -c examples/hypervisor.toml
  tollgate plan --offline --host facts.toml --format tc -c examples/hypervisor.toml"
    )]
    Plan {
        /// Compile without reading the live kernel.
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

    /// Make the kernel match the policy: observe, diff, apply.
    #[command(
        after_help = "Only what differs is changed: one tenant's edit touches that tenant's \
objects and nothing else. A change that fails is reported and retried on the next round; with \
--every, tollgate keeps reconciling, which also restores anything deleted by hand.

Examples:
  tollgate apply
  tollgate apply --every 10s          reconcile loop
  tollgate apply --json | jq .applied"
    )]
    Apply {
        /// Keep reconciling at this interval (e.g. `10s`, `500ms`).
        #[arg(long, value_parser = parse_duration, value_name = "INTERVAL")]
        every: Option<std::time::Duration>,
        /// One JSON line per round.
        #[arg(long)]
        json: bool,
    },

    /// Tenants, their classes, and their current rates from class counters.
    #[command(after_help = "Rates are measured over --interval (default 1s).

Examples:
  tollgate status
  tollgate status --json | jq '.classes[] | select(.name == \"alice\")'")]
    Status {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
        /// How long to measure rates over.
        #[arg(long, value_parser = parse_duration, default_value = "1s")]
        interval: std::time::Duration,
    },

    /// Remove everything tollgate created in the kernel, and nothing else.
    #[command(
        after_help = "Removes the tg-* IFB devices, tollgate's own filters, each clsact qdisc \
tollgate created (marked with its empty chain 122057831) when nobody else's filters are on it, \
and the nftables table `netdev tollgate`. An operator's clsact, and their filters on tollgate's, \
are left in place and listed as kept.

Examples:
  tollgate down
  tollgate --netns tg-lab-host down      the lab's host namespace"
    )]
    Down,

    /// Change one tenant: edits the policy file and applies just that change.
    #[command(
        subcommand,
        after_help = "Examples:
  tollgate tenant move alice --plan business
  tollgate tenant move alice --plan business --parent reseller-b"
    )]
    Tenant(live::TenantCommand),

    /// Hooks for hypervisors, called when a VM's interface appears or goes.
    #[command(
        subcommand,
        after_help = "Examples:
  tollgate hook vif online vif3.0       from Xen's vif script when vif3.0 comes up
  tollgate hook vif offline vif3.0      and when it goes"
    )]
    Hook(live::HookCommand),

    /// A lab in network namespaces: an upstream with a national and an
    /// international network, the host tollgate shapes, and tenants.
    #[command(
        subcommand,
        after_help = "Examples:
  tollgate lab up --tenants 4
  tollgate lab traffic --seconds 2
  tollgate lab down"
    )]
    Lab(lab::LabCommand),

    /// Realms from routes: import MRT dumps, look up addresses, count
    /// prefixes per realm, and listen to BGP peers.
    #[command(
        subcommand,
        after_help = "Examples:
  tollgate routes import bview.20240101.0000.gz
  tollgate routes lookup 203.0.113.7
  tollgate routes stats
  tollgate routes listen --bgp /etc/tollgate/bgp.toml"
    )]
    Routes(routes::RoutesCommand),

    /// The daemon: reconcile the kernel with the policy and record every
    /// tenant's traffic per realm and direction.
    #[command(
        after_help = "Every --interval the counters of the classes tollgate owns are read and \
committed, with the accounting state, to DIR/history.sqlite in one transaction, so a crash \
loses nothing committed and counts nothing twice. Every --reconcile the kernel is made to \
match the policy, as `apply --every` does. SIGHUP reloads the policy (an invalid one is \
refused and logged; the running one is kept); SIGTERM reads the counters one last time and \
exits. Settings: --accounting FILE (docs/accounting.md). A systemd unit is in contrib/systemd/.

Examples:
  tollgate run
  tollgate run --interval 10s --metrics 127.0.0.1:9188
  tollgate --netns tg-lab-host run -c /run/tollgate-lab/policy.toml --state-dir /tmp/tg-lab-state"
    )]
    Run(daemon::RunArgs),

    /// Traffic per tenant, realm and direction, per day and in total.
    #[command(
        after_help = "Totals come from the daemon's history, up to its last read.

Examples:
  tollgate usage                       every tenant, the current billing period
  tollgate usage alice --period 2026-11
  tollgate usage 7 --since 2026-11-15 --json"
    )]
    Usage(history::UsageArgs),

    /// Traffic per realm, to and from, like rtacct (IPv6 included).
    #[command(after_help = "Examples:
  tollgate realms
  tollgate realms --period 2026-10 --json")]
    Realms(history::RealmsArgs),

    /// Live per-tenant rates, down and up per realm.
    #[command(after_help = "Examples:
  tollgate top
  tollgate top --once --json
  tollgate top --interval 5s --limit 20")]
    Top(history::TopArgs),

    /// Bills: the 95th percentile (method and rank rule printed), coverage,
    /// commit and overage, and volume, per tenant.
    #[command(
        after_help = "How figures are computed (percentile, method, rank rule, missing \
samples, billing day and time zone, extra per-realm charges, quotas) is set in the accounting \
settings (docs/accounting.md); commits come from the policy's `commit`.

Examples:
  tollgate bill --period 2026-11
  tollgate bill --period 2026-11 --csv > 2026-11.csv
  tollgate bill --period 2026-11 alice --json
  tollgate bill --period 2026-10 --freeze     store a closed period's bill for good"
    )]
    Bill(history::BillArgs),

    /// The site's own 95th against its upstreams' commits (`[transit]`):
    /// the burst budget spent and left, and where the pace leads.
    #[command(
        after_help = "Each upstream of the policy's [transit] bills the uplink by its own rule (percentile, in/out/max/sum, rank rule) and cycle (day, time zone). The site's series is every tenant's traffic plus what no tenant holds, from the daemon's history.

The burst budget is how many 5-minute samples the period may have above the commit before the 95th is above it: a 30-day month allows 432 (36 hours). `spent` counts the closed samples above the commit; at the pace so far the budget either lasts the period or runs out at a slot, which is printed.

With `[transit] guard = \"on\"` the daemon tightens step by step when the budget would run out (the overage pool's ceil, the heaviest tenants into the overage plan, the uplink's ceil) and relaxes when it recovers; `guard = \"dry-run\"` only reports. The steps in force and the last actions are printed after the figures; `tollgate transit relax` undoes the steps by hand.

Examples:
  tollgate transit
  tollgate transit --period 2026-11
  tollgate transit --json | jq '.upstreams[] | {name, left: .status.left}'
  tollgate transit --json | jq '.guard.steps_in_force'
  tollgate transit relax"
    )]
    Transit(history::TransitArgs),

    /// Tenants the daemon moved into the overage plan: list, release.
    #[command(
        subcommand,
        after_help = "Examples:
  tollgate overage list
  tollgate overage release alice"
    )]
    Overage(history::OverageCommand),

    /// Flow collection: NetFlow v5/v9, IPFIX and sFlow from routers, into
    /// the same per-tenant history as kernel counters.
    #[command(
        subcommand,
        after_help = "Examples:
  tollgate flows collect
  tollgate flows status --json | jq .totals"
    )]
    Flows(flows::FlowsCommand),

    /// DDoS detection and mitigation: watch the interfaces, climb the
    /// ladder (notify, blackhole…) for addresses under attack.
    #[command(
        subcommand,
        after_help = "`tollgate run` runs the guard when the policy has a [guard] section; \
`status`, `ban` and `unban` talk to that daemon. `watch` runs the guard alone, in the foreground.

Examples:
  tollgate guard status
  tollgate guard ban 203.0.113.10 --rung blackhole --for 10m
  tollgate guard unban 203.0.113.10
  tollgate guard watch -c /etc/tollgate/tollgate.toml
  tollgate guard watch --iface eth1 --network 203.0.113.0/24 --threshold-pps 10000"
    )]
    Guard(guard::GuardCommand),

    /// Queueing delay of the busy classes, the probes' RTT, jitter and
    /// loss, and the latency alarms raised now, as the daemon (`tollgate run` with a
    /// [latency] section) last published them; with --since, the per-minute
    /// figures stored in the history.
    #[command(after_help = "Examples:
  tollgate latency                 the alarms, every probe, the busy classes
  tollgate latency alice           one tenant's busy classes and alarms
  tollgate latency --json          as JSON (GET /api/v1/latency has every class)
  tollgate latency alice --since 2h   alice's stored minutes: TCP RTT, busy queues
  tollgate latency --since 2026-12-07T04:00:00Z --json
                                   every stored minute since then, as JSON")]
    Latency(LatencyArgs),

    /// Feed a run recorded with `tollgate run --record FILE` to a new
    /// engine and print the effects it decides, one JSON line each.
    #[command(
        after_help = "The engine is pure: the same inputs give the same effects, so a \
recorded run (an incident, a test) can be replayed and examined without a kernel or a store.

Examples:
  tollgate run --record /tmp/run.jsonl
  tollgate replay /tmp/run.jsonl | jq -c 'select(.effect == \"event\")'"
    )]
    Replay {
        /// The recording.
        file: PathBuf,
    },

    /// API tokens: who may read or change what through `tollgate run`'s
    /// HTTP API.
    #[command(
        subcommand,
        after_help = "Examples:
  tollgate token add grafana --scope read
  tollgate token list
  tollgate token revoke grafana"
    )]
    Token(token::TokenCommand),

    /// Move in from another shaper: write a policy from its files
    /// (LibreQoS's ShapedDevices.csv and network.json).
    #[command(
        subcommand,
        after_help = "Examples:
  tollgate import libreqos ShapedDevices.csv network.json -o /etc/tollgate/tollgate.toml
  tollgate import libreqos ShapedDevices.csv --skip-invalid -o policy.toml"
    )]
    Import(import::ImportCommand),

    /// Print a completion script for a shell (bash, zsh, fish, elvish,
    /// powershell).
    #[command(
        after_help = "The Debian package installs the bash, zsh and fish scripts; by hand:

Examples:
  tollgate completions bash > /etc/bash_completion.d/tollgate
  tollgate completions zsh > /usr/local/share/zsh/site-functions/_tollgate
  tollgate completions fish > ~/.config/fish/completions/tollgate.fish"
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Write the manual pages, one per command and subcommand
    /// (tollgate.1, tollgate-check.1, tollgate-routes-import.1, …), into
    /// a folder.
    #[command(
        after_help = "The pages are made from the same definitions as --help, so they \
always describe this binary. The Debian package installs them.

Examples:
  tollgate man /usr/local/share/man/man1 && mandb -q
  tollgate man /tmp/man && man -l /tmp/man/tollgate-import-libreqos.1"
    )]
    Man {
        /// The folder (created if missing).
        #[arg(value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Parses `10s`, `500ms`, `2m`, `1h`: the one duration syntax of every
/// option. Refuses values too large to be a duration instead of
/// overflowing.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    net_types::parse_duration(text).map_err(|e| format!("{e} ({})", e.hint()))
}

pub use crate::output::Format;
