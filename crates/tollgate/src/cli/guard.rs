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
arguments `IP incoming|outgoing PPS ban|unban` and the JSON attack report on stdin) and blackhole \
(a kernel blackhole route for the /32 or /128, marked with routing protocol 213 so that only \
tollgate's routes are ever removed). Throttle, drop, rtbh and flowspec are logged as not available \
yet. The ladder's state is saved in the state directory at every change and restored at start, so \
bans survive a restart. The options override the policy, for a quick start without a [guard] \
section.

Examples:
  tollgate guard watch -c /etc/tollgate/tollgate.toml
  tollgate guard watch --iface eth1 --network 203.0.113.0/24 --threshold-pps 10000
  tollgate guard watch --iface eth1 --notify /usr/local/bin/notify_about_attack.sh
  tollgate guard watch --netns tgr --iface veth1 --state-dir /tmp/tg-guard"
    )]
    Watch(WatchArgs),
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
