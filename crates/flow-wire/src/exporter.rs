//! What the decoder remembers per exporter and observation domain:
//! templates and the sampling announced by options records.

use std::collections::HashMap;
use std::net::IpAddr;

use crate::record::{Sampling, SamplingOrigin};
use crate::template::Template;

/// At most this many (exporter, protocol, domain) entries are kept, and at
/// most [`MAX_TEMPLATES`] templates in all, so that a flood of spoofed
/// datagrams cannot grow the decoder without bound. Beyond them new
/// templates are refused with an error (the caller counts it).
pub(crate) const MAX_EXPORTERS: usize = 16_384;
/// See [`MAX_EXPORTERS`].
pub(crate) const MAX_TEMPLATES: usize = 65_536;
/// Sampler ids remembered per exporter and domain.
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

/// The sampling facts learned from options data records.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SamplingState {
    /// The interval an options record without a sampler id announced: it
    /// applies to every record of this exporter and domain.
    pub default_interval: Option<u32>,
    /// Sampler (v9 FLOW_SAMPLER_ID, IPFIX samplerId/selectorId) → 1-in-N.
    pub samplers: HashMap<u64, u32>,
    /// systemInitTimeMilliseconds, to place IPFIX sysUpTime-relative times.
    pub system_init_ms: Option<i64>,
}

impl SamplingState {
    /// The sampling of a record that names no sampler of its own.
    pub(crate) fn default_sampling(&self) -> Sampling {
        match self.default_interval {
            Some(n) => Sampling::from(n, SamplingOrigin::OptionsTemplate),
            None => Sampling::UNKNOWN,
        }
    }

    /// Records that `sampler` (or, without one, the whole exporter)
    /// samples 1 in `interval`. A new sampler beyond [`MAX_SAMPLERS`] is
    /// dropped: its records then fall back to the exporter-wide interval.
    pub(crate) fn learn(&mut self, sampler: Option<u64>, interval: u32) {
        match sampler {
            None => self.default_interval = Some(interval),
            Some(id) => {
                if self.samplers.len() < MAX_SAMPLERS || self.samplers.contains_key(&id) {
                    self.samplers.insert(id, interval);
                }
            }
        }
    }
}

/// Everything known about one exporter and observation domain.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExporterState {
    pub templates: HashMap<u16, Template>,
    pub sampling: SamplingState,
}
