//! `tollgate guard`'s arguments.

use clap::{Args, Subcommand};
use std::path::PathBuf;

/// `tollgate guard …`.
#[derive(Subcommand, Debug)]
pub enum GuardCommand {
    /// Detect floods on this box's interfaces and carry out the ladder
    /// (in the foreground, until SIGTERM or SIGINT).
    #[command(
        after_help = "Reads the policy's [guard] section (networks, thresholds, groups, ladder), \
captures on the interfaces (AF_PACKET, TPACKET_V3, fanout), reads per-address counters every \
100 ms and feeds them to the detector. Rungs carried out now: notify (the script gets FastNetMon's \
arguments `IP incoming|outgoing PPS ban|unban` and the JSON attack report on stdin; a webhook is \
POSTed the same report), blackhole (a kernel blackhole route for the /32 or /128, marked with \
routing protocol 213 so that only tollgate's routes are ever removed), and rtbh and flowspec \
(announced to the [bgp] peers with announce = true), throttle and drop (the victim's address, or \
for `match = \"signature\"` address . protocol . source port, added to a set prepared in tollgate's \
nftables table: throttled traffic goes to an HTB class held to the rung's rate, dropped traffic is \
dropped on the hook; the sets exist once the policy is applied, by `tollgate apply` or the daemon). \
Each ended attack is appended to the history (`tollgate guard history`). The ladder's state is saved in the state directory at every change and restored at start, so \
bans survive a restart. The options override the policy, for a quick start without a [guard] \
section.

Examples:
  tollgate guard watch -c /etc/tollgate/tollgate.toml
  tollgate guard watch --iface eth1 --network 203.0.113.0/24 --threshold-pps 10000
  tollgate guard watch --iface eth1 --notify /usr/local/bin/notify_about_attack.sh
  tollgate guard watch --netns tgr --iface veth1 --state-dir /tmp/tg-guard"
    )]
    Watch(WatchArgs),

    /// Show the running daemon's guard: open incidents (address or group,
    /// attack type, rates, rung, since, hold left) and the detector's
    /// counts.
    #[command(
        after_help = "Reads what `tollgate run` (with a [guard] section in its policy) \
writes to guard-status.json in the state directory at every change and once a second; the same \
data as `GET /api/v1/guard`. If the file is more than 5 seconds old the daemon is not running \
(or runs with another --state-dir), and the command says so.

Columns: TARGET (address, or a group's name for a group-total incident), DIR (in: towards it, \
out: from it), ATTACK, PEAK PPS and BPS (the highest one-tick rate), RUNG (the highest in place), \
SINCE, HOLD LEFT (before anything may come down; `permanent` for a permanent ban).

Examples:
  tollgate guard status
  tollgate guard status --json | jq '.incidents[] | {target, rung, hold_left_s}'
  tollgate guard status --state-dir /tmp/tg-state"
    )]
    Status {
        /// Print the status as JSON (the API's shape).
        #[arg(long)]
        json: bool,
    },

    /// Ended attacks, newest last: when, target, type, peaks, how long,
    /// and the rungs used.
    #[command(
        after_help = "Reads guard-history.jsonl in the state directory, where `tollgate run` \
and `tollgate guard watch` append one JSON line per attack when its last rung comes down (the \
file is moved to guard-history.jsonl.1 past 16 MiB, so two files at most are kept). ENDED is when \
the last rung came down; LASTED is from the first packet over the threshold to the traffic's end; \
TOP SOURCES is the busiest source and how many more the report names (up to 10, with their \
packets and bytes in --json's report.top_sources; `-` when the input knows no sources). \
With --since, the attacks are read from the history store instead (history.sqlite in the state \
directory, or the policy's [history] ClickHouse server), where `tollgate run` keeps each ended \
attack once.

Examples:
  tollgate guard history
  tollgate guard history --last 100
  tollgate guard history --since 7d
  tollgate guard history --json | jq '.[] | select(.attack == \"syn_flood\") | .target'"
    )]
    History {
        /// How many of the latest attacks to show.
        #[arg(long, default_value_t = 20)]
        last: usize,
        /// Print the records as a JSON array (each as stored).
        #[arg(long)]
        json: bool,
        /// Only attacks that ended since then, read from the history
        /// store instead of the file: an instant (2026-12-07T04:00:00Z), a
        /// UTC date (2026-12-07), or a time back (90s, 30m, 24h, 7d).
        #[arg(long, value_name = "WHEN")]
        since: Option<String>,
    },

    /// Ban an address by hand: apply the ladder up to a rung, for a time
    /// or until unbanned, whatever the traffic.
    #[command(
        after_help = "The running daemon carries it out (the request goes through the \
state directory, like `overage release`): every rung from the bottom of the address's ladder up \
to --rung is applied at once (notify runs the script; blackhole adds the route). Without --for \
or --permanent the ban lasts the rung's hold; a ban neither escalates nor ends early because the \
traffic is calm. The address must be inside the guard's networks. Exits 1 if the daemon refuses \
(outside the networks, no such rung), 2 if no daemon answers within 10 seconds.

Examples:
  tollgate guard ban 203.0.113.10                       # up to the ladder's top rung
  tollgate guard ban 203.0.113.10 --rung notify --for 10m
  tollgate guard ban 2001:db8::7 --rung blackhole --permanent
  tollgate guard ban 203.0.113.10 --direction out --for 1h --json"
    )]
    Ban {
        /// The address (IPv4 or IPv6).
        #[arg(value_name = "ADDR")]
        address: String,
        /// The highest rung to apply: notify, throttle, drop, blackhole,
        /// rtbh or flowspec (the ladder's top rung if left out).
        #[arg(long, value_name = "RUNG")]
        rung: Option<String>,
        /// How long: 90s, 10m, 2h… (the rung's hold if left out).
        #[arg(long = "for", value_name = "DURATION", conflicts_with = "permanent")]
        duration: Option<String>,
        /// Until `tollgate guard unban`.
        #[arg(long)]
        permanent: bool,
        /// The direction: in (traffic towards the address, the default) or
        /// out.
        #[arg(long, value_name = "in|out")]
        direction: Option<String>,
        /// Print the daemon's answer as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Remove every rung from an address (or a group's total incident)
    /// now: the routes go, notify scripts get `unban`.
    #[command(
        after_help = "Also resets the address's averages, so a false positive is not \
banned again by its old rates; if the attack goes on, it is detected again. Exits 1 if nothing \
is banned for the target, 2 if no daemon answers within 10 seconds.

Examples:
  tollgate guard unban 203.0.113.10
  tollgate guard unban 203.0.113.10 --direction in
  tollgate guard unban tenant-7            # a group total's incident, by the group's name"
    )]
    Unban {
        /// The address, or a group's name.
        #[arg(value_name = "ADDR|GROUP")]
        target: String,
        /// Only this direction (in or out); both if left out.
        #[arg(long, value_name = "in|out")]
        direction: Option<String>,
        /// Print the daemon's answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `tollgate guard watch`'s options.
#[derive(Args, Debug)]
pub struct WatchArgs {
    /// Capture on this interface instead of [guard.capture]'s (repeatable).
    #[arg(long = "iface", value_name = "NAME")]
    pub ifaces: Vec<String>,

    /// The global profile's packets-per-second threshold towards an address
    /// (`pps_in`).
    #[arg(long, value_name = "PPS")]
    pub threshold_pps: Option<u64>,

    /// Run this script at ban and unban (a notify rung first in the
    /// ladder, or the existing notify rung's script).
    #[arg(long, value_name = "SCRIPT")]
    pub notify: Option<PathBuf>,

    /// Protect this prefix instead of the policy's networks (repeatable).
    #[arg(long = "network", value_name = "PREFIX")]
    pub networks: Vec<String>,
}
