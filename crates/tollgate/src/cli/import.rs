//! `tollgate import`'s arguments.

use clap::{Args, Subcommand};
use net_types::{IfName, Rate};
use std::path::PathBuf;

/// `tollgate import …`.
#[derive(Subcommand, Debug)]
pub enum ImportCommand {
    /// Write a policy from LibreQoS's ShapedDevices.csv (and network.json).
    #[command(
        after_help = "Each circuit (the rows sharing a Circuit ID) becomes a tenant with every \
device's addresses; Download/Upload Min Mbps become its rate and Max Mbps its ceil, through one \
plan per distinct set of rates. With network.json, every node becomes a parent with its bandwidth \
(virtual nodes are flattened, as LibreQoS does) and each circuit goes under its Parent Node. The \
policy has one realm and a [site] in router mode: check --uplink (LibreQoS's to_internet) and \
--lan (its to_network).

Both of LibreQoS's layouts are read (15 or 16 columns with sqm, and the legacy 13), headers by \
name, with # comments and quoted address lists. Every row that cannot be imported is reported \
with its file and line, and then nothing is written (exit 1) unless --skip-invalid says to write \
the rest. The policy written always passes `tollgate check`; a comment above each tenant names \
its rows.

Examples:
  tollgate import libreqos ShapedDevices.csv network.json -o /etc/tollgate/tollgate.toml
  tollgate import libreqos ShapedDevices.csv --uplink enp1s0f1 --lan enp1s0f2 --capacity 10gbit
  tollgate import libreqos ShapedDevices.csv network.json -o policy.toml --json | jq .rows_skipped"
    )]
    Libreqos(LibreqosArgs),
}

/// `tollgate import libreqos`'s options.
#[derive(Args, Debug)]
pub struct LibreqosArgs {
    /// LibreQoS's ShapedDevices.csv.
    #[arg(value_name = "SHAPEDDEVICES.csv")]
    pub shaped_devices: PathBuf,
    /// LibreQoS's network.json; without it every circuit sits at the top.
    #[arg(value_name = "NETWORK.json")]
    pub network: Option<PathBuf>,
    /// Write the policy to FILE (replaced atomically) instead of standard
    /// output.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The interface toward the upstream (LibreQoS's `to_internet`).
    #[arg(long, default_value = "eth0", value_parser = parse_ifname, value_name = "IFNAME")]
    pub uplink: IfName,
    /// The interface toward the customers (LibreQoS's `to_network`).
    #[arg(long, default_value = "eth1", value_parser = parse_ifname, value_name = "IFNAME")]
    pub lan: IfName,
    /// What the uplink carries, `RATE` or `DOWN/UP` (e.g. `10gbit`,
    /// `10gbit/2gbit`) [default: the largest top-level node or circuit].
    #[arg(long, value_parser = parse_capacity, value_name = "RATE[/RATE]")]
    pub capacity: Option<Capacity>,
    /// The name of the one realm every destination is in.
    #[arg(long, default_value = "internet", value_name = "NAME")]
    pub realm: String,
    /// Write the policy even when some rows cannot be imported; they are
    /// reported, and listed at the top of the policy.
    #[arg(long)]
    pub skip_invalid: bool,
    /// Print the report as JSON on standard output (needs -o).
    #[arg(long, requires = "output")]
    pub json: bool,
}

/// The site's capacity, down and up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    /// Toward the customers.
    pub down: Rate,
    /// From the customers.
    pub up: Rate,
}

fn parse_ifname(text: &str) -> Result<IfName, String> {
    IfName::new(text).map_err(|e| e.to_string())
}

/// `RATE` (both directions) or `DOWN/UP`, in tc's units.
fn parse_capacity(text: &str) -> Result<Capacity, String> {
    let rate = |t: &str| Rate::parse(t).map_err(|e| e.to_string());
    match text.split_once('/') {
        // `10gbit/s` is one rate, not two.
        Some((down, up)) if up != "s" => Ok(Capacity {
            down: rate(down)?,
            up: rate(up)?,
        }),
        _ => {
            let r = rate(text)?;
            Ok(Capacity { down: r, up: r })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capacity_is_one_rate_or_two() {
        let g = |t| Rate::parse(t).unwrap();
        assert_eq!(
            parse_capacity("10gbit").unwrap(),
            Capacity {
                down: g("10gbit"),
                up: g("10gbit")
            }
        );
        assert_eq!(
            parse_capacity("10gbit/2gbit").unwrap(),
            Capacity {
                down: g("10gbit"),
                up: g("2gbit")
            }
        );
        assert_eq!(parse_capacity("1gbit/s").unwrap().up, g("1gbit"));
        assert!(parse_capacity("10mbps").is_err());
    }
}
