//! What a sample is about: tenant × realm × direction × band, and which
//! source measured it.

use net_types::{RealmId, TenantId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Traffic direction, seen from the tenant.
///
/// The same two values as `policy::Direction`; accounting keeps its own copy
/// so that it can be read back from JSON and from the store. Billing calls
/// `Down` "in" (toward the tenant) and `Up` "out" (from the tenant).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Toward the tenant (download, "in").
    Down,
    /// From the tenant (upload, "out").
    Up,
}

impl Direction {
    /// Both directions, download first.
    pub const BOTH: [Direction; 2] = [Direction::Down, Direction::Up];

    /// `down` or `up`.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Down => "down",
            Direction::Up => "up",
        }
    }

    /// The number the store keeps: 0 for down, 1 for up.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The inverse of [`Direction::code`].
    pub fn from_code(code: u8) -> Option<Direction> {
        match code {
            0 => Some(Direction::Down),
            1 => Some(Direction::Up),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A priority band inside a tenant × realm, or the whole of it.
///
/// `Whole` is the counter of a tenant × realm class that has no band leaves
/// under it. The daemon must feed either the band leaves or the whole class
/// of one tenant × realm, never both, or the traffic would count twice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Band {
    /// The tenant × realm has no bands; its class counts all its traffic.
    Whole,
    /// Small, latency-sensitive packets.
    Interactive,
    /// Everything not otherwise classified.
    Normal,
    /// Background transfers.
    Bulk,
}

impl Band {
    /// The band's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Band::Whole => "whole",
            Band::Interactive => "interactive",
            Band::Normal => "normal",
            Band::Bulk => "bulk",
        }
    }

    /// The number the store keeps: 0 whole, 1 interactive, 2 normal, 3 bulk.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The inverse of [`Band::code`].
    pub fn from_code(code: u8) -> Option<Band> {
        match code {
            0 => Some(Band::Whole),
            1 => Some(Band::Interactive),
            2 => Some(Band::Normal),
            3 => Some(Band::Bulk),
            _ => None,
        }
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What measured a sample.
///
/// The kernel's class counters and a flow collector (NetFlow, IPFIX,
/// sFlow) record into the same series, labelled by source. A tenant is
/// measured by exactly one source, so totals add up over sources as they
/// do over bands; the label says where the figures came from.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// The kernel's HTB class counters, read by the accountant.
    #[default]
    Kernel,
    /// Flow records exported by routers or switches.
    Flow,
}

impl Source {
    /// Both sources, the kernel first.
    pub const ALL: [Source; 2] = [Source::Kernel, Source::Flow];

    /// `kernel` or `flow`.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Kernel => "kernel",
            Source::Flow => "flow",
        }
    }

    /// The number the store keeps: 0 for kernel, 1 for flow.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The inverse of [`Source::code`].
    pub fn from_code(code: u8) -> Option<Source> {
        match code {
            0 => Some(Source::Kernel),
            1 => Some(Source::Flow),
            _ => None,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The unit of accounting: one tenant's traffic to or from one realm, in one
/// direction and band, as measured by one source.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UsageKey {
    /// Whose traffic.
    pub tenant: TenantId,
    /// To or from which destinations.
    pub realm: RealmId,
    /// Toward or from the tenant.
    pub direction: Direction,
    /// Which priority band.
    pub band: Band,
    /// What measured it. Absent in JSON written before sources existed,
    /// which is all kernel.
    #[serde(default)]
    pub source: Source,
}

impl fmt::Display for UsageKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "tenant {} realm {} {} {}",
            self.tenant,
            self.realm,
            self.direction.as_str(),
            self.band.as_str()
        )?;
        match self.source {
            Source::Kernel => Ok(()),
            Source::Flow => write!(f, " {}", self.source.as_str()),
        }
    }
}
