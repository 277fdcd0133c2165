//! What the decoder remembers per exporter and observation domain:
//! templates and the sampling announced by options records.

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;

use crate::record::{Sampling, SamplingOrigin};
use crate::template::Template;

/// Sampler ids remembered per exporter and domain; beyond them a new
/// sampler's records fall back to the exporter-wide scale.
pub(crate) const MAX_SAMPLERS: usize = 4_096;

/// Whose templates these are. Template ids are only unique per exporter
/// and observation domain (RFC 7011 §3.4.1), and v9 and IPFIX templates of
/// the same exporter are kept apart because their field encodings differ.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ExporterKey {
    pub addr: IpAddr,
    /// 9 or 10.
    pub version: u8,
    pub domain: u32,
}

/// A sampler's (or a record's) packet selection, as announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Scale {
    /// `selected` packets out of every `population`; both at least 1.
    Ratio { population: u64, selected: u64 },
    /// A PSAMP selector algorithm this crate cannot scale (see
    /// [`SamplingOrigin::Unsupported`]).
    Unsupported(u16),
}

impl Scale {
    /// `population / selected`, or `None` when either is 0 (nothing an
    /// exporter means literally).
    pub(crate) fn ratio(population: u64, selected: u64) -> Option<Scale> {
        (population > 0 && selected > 0).then_some(Scale::Ratio {
            population,
            selected,
        })
    }

    /// The record-level [`Sampling`] with `origin`.
    pub(crate) fn sampling(self, origin: SamplingOrigin) -> Sampling {
        match self {
            Scale::Ratio {
                population,
                selected,
            } => Sampling::ratio(population, selected, origin),
            Scale::Unsupported(a) => Sampling {
                population: 1,
                selected: 1,
                origin: SamplingOrigin::Unsupported(a),
            },
        }
    }
}

/// The sampling facts learned from options data records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SamplingState {
    /// The scale an options record without a sampler id announced: it
    /// applies to every record of this exporter and domain.
    pub default: Option<Scale>,
    /// Sampler (v9 FLOW_SAMPLER_ID, IPFIX samplerId/selectorId) → scale.
    pub samplers: HashMap<u64, Scale>,
    /// systemInitTimeMilliseconds, to place IPFIX sysUpTime-relative times.
    pub system_init_ms: Option<i64>,
}

impl SamplingState {
    /// The sampling of a record that names no sampler of its own.
    pub(crate) fn default_sampling(&self) -> Sampling {
        match self.default {
            Some(s) => s.sampling(SamplingOrigin::OptionsTemplate),
            None => Sampling::UNKNOWN,
        }
    }

    /// Records that `sampler` (or, without one, the whole exporter)
    /// selects by `scale`. A new sampler beyond [`MAX_SAMPLERS`] is
    /// dropped: its records then fall back to the exporter-wide scale.
    /// Says whether anything changed.
    pub(crate) fn learn(&mut self, sampler: Option<u64>, scale: Scale) -> bool {
        match sampler {
            None => self.default.replace(scale) != Some(scale),
            Some(id) => {
                if self.samplers.len() < MAX_SAMPLERS || self.samplers.contains_key(&id) {
                    self.samplers.insert(id, scale) != Some(scale)
                } else {
                    false
                }
            }
        }
    }
}

/// Everything known about one exporter and observation domain.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExporterState {
    pub templates: HashMap<u16, Template>,
    /// This domain's templates by the time they were last indexed (see
    /// `cache`), oldest first.
    pub lru: BTreeSet<(u64, u16)>,
    pub sampling: SamplingState,
}

impl ExporterState {
    /// What this state costs apart from its templates, in bytes: the
    /// structure, and the sampler table at its load.
    pub(crate) fn own_memory(&self) -> usize {
        const SAMPLER: usize = std::mem::size_of::<(u64, Scale)>() + 16;
        std::mem::size_of::<ExporterState>() + 128 + self.sampling.samplers.len() * SAMPLER
    }
}
