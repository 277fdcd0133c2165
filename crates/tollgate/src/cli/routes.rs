//! `tollgate routes`' arguments.

use clap::Subcommand;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Subcommand, Debug)]
pub enum RoutesCommand {
    /// Import an MRT RIB dump (TABLE_DUMP_V2; plain, .gz or .bz2) and save
    /// the best route per prefix, with its realm, in the state directory.
    #[command(
        after_help = "The realm of each route comes from the policy's realm rules \
(communities, large_communities, origin_as, as_path_contains, peers, next_hops): realms are \
tried in file order, the first match wins, and other routes go to the default realm. When \
several peers in the dump carry a prefix, one route is chosen: highest LOCAL_PREF, shortest AS \
path, lowest ORIGIN, lowest MED from the same neighbouring AS, lowest peer address.

Dumps as RIPE RIS (bview.*.gz) and RouteViews (rib.*.bz2) publish them, or as BIRD's `mrt` \
protocol writes them. Compression is recognised from the file's first bytes.

Examples:
  tollgate routes import bview.20240101.0000.gz -c /etc/tollgate/tollgate.toml
  tollgate routes import rib.20240101.0000.bz2 --state-dir /tmp/tg
  tollgate routes import dump.mrt --json | jq .prefixes"
    )]
    Import {
        /// The dump.
        file: PathBuf,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Show the route and realm of an address, from the last import (or
    /// the last snapshot `routes listen` saved).
    #[command(
        after_help = "Exit status: 0 if a route covers the address, 1 if none does.

Examples:
  tollgate routes lookup 203.0.113.7
  tollgate routes lookup 2001:db8::1 --json | jq .realm.name"
    )]
    Lookup {
        /// The address.
        ip: IpAddr,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Count prefixes per realm and address family in the saved table.
    #[command(after_help = "Examples:
  tollgate routes stats
  tollgate routes stats --json | jq '.realms[] | {name, ipv4}'")]
    Stats {
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Run the BGP speaker in the foreground: accept the configured peers,
    /// keep the realm of every prefix they announce, and print sessions and
    /// realm changes as they happen.
    #[command(
        after_help = "tollgate announces nothing here; peers connect to it (a peer with passive = false is also connected to). \
The speaker's settings are read from their own TOML file for now:

  local_as = 65000
  router_id = \"192.0.2.1\"
  listen = [\"0.0.0.0:179\", \"[::]:179\"]   # default 0.0.0.0:179
  hold_time = 90                          # seconds, default 90
  [[peers]]
  address = \"192.0.2.2\"
  remote_as = 65001
  hold_time = 30                          # optional, per peer
  name = \"transit-a\"                      # optional, for output

The table is saved to the state directory every --save-every and on Ctrl-C, so `routes lookup` \
and `routes stats` see the live routes. BIRD connects to tollgate with a plain `protocol bgp` \
(neighbor = tollgate's address and port); ExaBGP with a neighbor block (`connect PORT` for a port \
other than 179).

Examples:
  tollgate routes listen --bgp /etc/tollgate/bgp.toml
  tollgate routes listen --bgp bgp.toml --json | jq -c 'select(.event == \"peer\")'"
    )]
    Listen {
        /// The speaker's settings (see above).
        #[arg(long, value_name = "FILE")]
        bgp: PathBuf,
        /// How often to save the table to the state directory.
        #[arg(long, value_parser = super::parse_duration, default_value = "60s")]
        save_every: Duration,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
}
