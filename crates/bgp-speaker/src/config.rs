//! The speaker's settings: read from a small TOML file of their own
//! (`tollgate routes listen --bgp`), or built by the binary from the
//! policy's `[bgp]` section.

use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::Deserialize;

/// The hold time proposed to peers that have none configured, in seconds
/// (RFC 4271 suggests 90).
pub const DEFAULT_HOLD_TIME: u16 = 90;

/// Everything the speaker needs to know.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpeakerConfig {
    /// Our AS number (four-octet numbers are fine).
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// The addresses and ports to listen on.
    #[serde(default = "default_listen")]
    pub listen: Vec<SocketAddr>,
    /// The hold time proposed to every peer without its own, in seconds.
    #[serde(default = "default_hold_time")]
    pub hold_time: u16,
    /// The peers allowed to connect.
    #[serde(default)]
    pub peers: Vec<PeerConfig>,
}

/// One peer.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PeerConfig {
    /// The address the peer connects from.
    pub address: IpAddr,
    /// The AS the peer must announce in its OPEN.
    pub remote_as: u32,
    /// The hold time proposed to this peer, in seconds; the session uses
    /// the smaller of ours and the peer's, and 0 turns keepalives off.
    pub hold_time: Option<u16>,
    /// A name for logs and status.
    pub name: Option<String>,
    /// The peer's TCP port, for connecting to it (default 179).
    #[serde(default = "default_port")]
    pub port: u16,
    /// `true` (the default): wait for the peer to connect. `false`: also
    /// connect to it, retrying with backoff; if the peer connects at the
    /// same time, the collision is resolved by the BGP identifiers.
    #[serde(default = "default_passive")]
    pub passive: bool,
    /// The families offered to the peer; empty means both unicast ones.
    #[serde(default)]
    pub families: Vec<AddressFamily>,
    /// Whether the peer is sent what tollgate announces (the guard's RTBH
    /// routes). Off by default: a peer that only feeds realms gets nothing.
    #[serde(default)]
    pub announce: bool,
    /// Whether FlowSpec (SAFI 133) is offered to the peer, for the
    /// announced FlowSpec rules (needs `announce`).
    #[serde(default)]
    pub flowspec: bool,
    /// The next hop for IPv4 routes that name none (default: our address
    /// on the session, when it is IPv4).
    pub next_hop_v4: Option<Ipv4Addr>,
    /// The next hop for IPv6 routes that name none (default: our address
    /// on the session, when it is IPv6). An IPv4 session needs one to carry
    /// IPv6 routes.
    pub next_hop_v6: Option<Ipv6Addr>,
}

/// An address family a peer may be offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AddressFamily {
    /// IPv4 unicast.
    Ipv4,
    /// IPv6 unicast.
    Ipv6,
}

impl AddressFamily {
    /// The family as the session speaks it.
    pub fn family(self) -> bgp::Family {
        match self {
            AddressFamily::Ipv4 => bgp::Family::Ipv4Unicast,
            AddressFamily::Ipv6 => bgp::Family::Ipv6Unicast,
        }
    }
}

impl PeerConfig {
    /// A passive peer that announces nothing to us it need not and gets
    /// nothing from us, as the speaker's TOML file spells one with only
    /// `address` and `remote_as`.
    pub fn new(address: IpAddr, remote_as: u32) -> PeerConfig {
        PeerConfig {
            address,
            remote_as,
            hold_time: None,
            name: None,
            port: default_port(),
            passive: default_passive(),
            families: Vec::new(),
            announce: false,
            flowspec: false,
            next_hop_v4: None,
            next_hop_v6: None,
        }
    }
}

fn default_port() -> u16 {
    179
}

fn default_passive() -> bool {
    true
}

fn default_listen() -> Vec<SocketAddr> {
    vec![SocketAddr::from(([0, 0, 0, 0], 179))]
}

fn default_hold_time() -> u16 {
    DEFAULT_HOLD_TIME
}

/// A configuration that cannot be used, with what to do about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The file, as named by the caller.
    pub file: String,
    /// What is wrong, including the line and column where the TOML parser
    /// knows them.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.file, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl SpeakerConfig {
    /// Parses and checks a configuration. `file` names it in errors.
    pub fn from_toml(file: &str, text: &str) -> Result<SpeakerConfig, ConfigError> {
        let error = |message: String| ConfigError {
            file: file.to_owned(),
            message,
        };
        let config: SpeakerConfig =
            toml::from_str(text).map_err(|e| error(e.to_string().trim_end().to_owned()))?;
        config.check().map_err(error)?;
        Ok(config)
    }

    fn check(&self) -> Result<(), String> {
        if self.local_as == 0 {
            return Err("local_as = 0 is reserved; use your AS number (e.g. a private one from 64512 or 4200000000)".into());
        }
        if self.router_id.is_unspecified() {
            return Err(
                "router_id = \"0.0.0.0\" is not allowed; use one of this host's IPv4 addresses"
                    .into(),
            );
        }
        if self.listen.is_empty() && self.peers.iter().all(|p| p.passive) {
            return Err("listen is empty and every peer is passive, so no session can start; add an address such as \"0.0.0.0:179\", or `passive = false` to a peer".into());
        }
        let mut seen = BTreeSet::new();
        for p in &self.peers {
            if !seen.insert(p.address) {
                return Err(format!(
                    "peer {} is listed twice; keep one [[peers]] entry per address",
                    p.address
                ));
            }
            if p.port == 0 {
                return Err(format!(
                    "peer {}: port = 0; use the peer's BGP port (179)",
                    p.address
                ));
            }
            if p.remote_as == 0 {
                return Err(format!(
                    "peer {}: remote_as = 0 is reserved; use the peer's AS number",
                    p.address
                ));
            }
        }
        let hold_times =
            std::iter::once(self.hold_time).chain(self.peers.iter().filter_map(|p| p.hold_time));
        for h in hold_times {
            if matches!(h, 1 | 2) {
                return Err(format!("hold_time = {h} is not allowed by RFC 4271; use 0 (no keepalives) or 3 seconds or more"));
            }
        }
        Ok(())
    }

    /// The configuration of the peer with this address. IPv4 addresses
    /// seen on a dual-stack socket (`::ffff:192.0.2.1`) match their IPv4
    /// form.
    pub fn peer(&self, addr: IpAddr) -> Option<&PeerConfig> {
        let addr = addr.to_canonical();
        self.peers.iter().find(|p| p.address == addr)
    }
}

impl PeerConfig {
    /// The name for logs: the configured one, or the address.
    pub fn label(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| self.address.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_minimal_file_gets_defaults() {
        let c = SpeakerConfig::from_toml(
            "bgp.toml",
            "local_as = 4200000000\nrouter_id = \"192.0.2.1\"\n[[peers]]\naddress = \"2001:db8::2\"\nremote_as = 65001\nhold_time = 3\n",
        )
        .unwrap();
        assert_eq!(c.listen, default_listen());
        assert_eq!(c.hold_time, 90);
        assert_eq!(c.peers[0].hold_time, Some(3));
        assert!(c.peer("2001:db8::2".parse().unwrap()).is_some());
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        assert!(c.peer(mapped).is_none());
    }

    #[test]
    fn mistakes_say_where_and_what_to_do() {
        let e = SpeakerConfig::from_toml(
            "bgp.toml",
            "local_as = 1\nrouter_id = \"192.0.2.1\"\nlisten = 5\n",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("bgp.toml: "), "{e}");
        assert!(e.message.contains("line 3"), "{e}");
        let e = SpeakerConfig::from_toml(
            "b",
            "local_as = 1\nrouter_id = \"192.0.2.1\"\nhold_time = 2\n",
        )
        .unwrap_err();
        assert!(e.message.contains("3 seconds or more"), "{e}");
        let e =
            SpeakerConfig::from_toml("b", "local_as = 1\nrouter_id = \"192.0.2.1\"\npeer = 1\n")
                .unwrap_err();
        assert!(e.message.contains("unknown field"), "{e}");
    }

    #[test]
    fn announcing_and_active_peers_are_read_and_checked() {
        let c = SpeakerConfig::from_toml(
            "b",
            "local_as = 65000\nrouter_id = \"192.0.2.1\"\nlisten = []\n[[peers]]\naddress = \"192.0.2.2\"\nremote_as = 65001\nport = 1179\npassive = false\nfamilies = [\"ipv4\"]\nannounce = true\nnext_hop_v6 = \"2001:db8::1\"\n",
        )
        .unwrap();
        let p = &c.peers[0];
        assert_eq!((p.port, p.passive, p.announce), (1179, false, true));
        assert_eq!(p.families, vec![AddressFamily::Ipv4]);
        assert_eq!(p.next_hop_v6, Some("2001:db8::1".parse().unwrap()));
        // Defaults: passive on port 179, nothing announced.
        let d = PeerConfig::new("192.0.2.3".parse().unwrap(), 65001);
        assert_eq!((d.port, d.passive, d.announce), (179, true, false));
        let e = SpeakerConfig::from_toml(
            "b",
            "local_as = 1\nrouter_id = \"192.0.2.1\"\nlisten = []\n[[peers]]\naddress = \"192.0.2.2\"\nremote_as = 65001\n",
        )
        .unwrap_err();
        assert!(e.message.contains("every peer is passive"), "{e}");
        let e = SpeakerConfig::from_toml(
            "b",
            "local_as = 1\nrouter_id = \"192.0.2.1\"\n[[peers]]\naddress = \"192.0.2.2\"\nremote_as = 65001\nport = 0\n",
        )
        .unwrap_err();
        assert!(e.message.contains("port = 0"), "{e}");
        let e = SpeakerConfig::from_toml(
            "b",
            "local_as = 1\nrouter_id = \"192.0.2.1\"\n[[peers]]\naddress = \"192.0.2.2\"\nremote_as = 65001\nfamilies = [\"flowspec\"]\n",
        )
        .unwrap_err();
        assert!(e.message.contains("unknown variant"), "{e}");
    }
}
