//! DDoS detection and mitigation decisions, pure: per-address counter
//! samples and time in, ladder decisions out.
//!
//! See `docs/guard.md` for the operator's view.

pub mod sample;

pub use sample::{
    Direction, HostCounters, HostSample, Monotonic, Observation, TopPorts, TOP_PORTS,
};
