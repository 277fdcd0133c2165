//! The accountant's persistent state and its compact binary form.
//!
//! The state is what the daemon writes in the same transaction as the
//! samples it produced: the last reading of every counter, the traffic
//! already attributed to slots that have not closed yet, and how much of
//! each open slot has been observed. With 10,000 tenants × 2 realms × 2
//! directions × 3 bands it holds 120,000 counters, so it has a fixed-width
//! binary encoding (41 bytes per counter, about 5 MB) besides the serde
//! derives used for JSON inspection.
//!
//! # Versions
//!
//! - 1: a key is tenant (4 bytes), realm (2), direction (1), band (1).
//! - 2 (written now): the key gains a source byte ([`Source::code`]).
//!
//! [`AccountantState::decode`] reads both; a version 1 blob was written
//! before flow sources existed, so every key in it is [`Source::Kernel`].

use crate::counter::{ObjectIdentity, Reading, Usage};
use crate::key::{Band, Direction, Source, UsageKey};
use crate::slot::{Slot, SAMPLE_MILLIS};
use net_types::{RealmId, TenantId};
use serde::{Deserialize, Serialize};
use std::fmt;

/// The last reading of one counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CounterState {
    /// Which counter.
    pub key: UsageKey,
    /// Its last reading.
    pub reading: Reading,
    /// When it was read, in milliseconds since the epoch.
    pub at_ms: i64,
}

/// Traffic already attributed to a slot that has not closed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenSample {
    /// The open slot.
    pub slot: Slot,
    /// Whose traffic.
    pub key: UsageKey,
    /// How much so far.
    pub usage: Usage,
}

/// How much of an open slot has been observed so far.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenCoverage {
    /// The open slot.
    pub slot: Slot,
    /// Milliseconds covered by normal read intervals.
    pub measured_ms: i64,
    /// Milliseconds covered by gaps.
    pub estimated_ms: i64,
}

/// Everything the accountant needs to continue exactly after a restart.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountantState {
    /// When the last batch was read, in milliseconds since the epoch.
    pub last_observe_ms: Option<i64>,
    /// Every tracked counter, ordered by key.
    pub counters: Vec<CounterState>,
    /// Traffic in slots not yet closed.
    pub open_samples: Vec<OpenSample>,
    /// Observation of slots not yet closed.
    pub open_coverage: Vec<OpenCoverage>,
}

/// Why a stored state could not be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StateError {
    /// The field being read.
    pub field: &'static str,
    /// Its byte offset in the blob.
    pub offset: usize,
    /// What was wrong.
    pub problem: String,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "accounting state, field `{}` at byte {}: {}",
            self.field, self.offset, self.problem
        )
    }
}

impl std::error::Error for StateError {}

const MAGIC: &[u8; 4] = b"TGAS";
/// The version [`AccountantState::encode`] writes.
const VERSION: u8 = 2;
/// The oldest version [`AccountantState::decode`] reads.
const OLDEST: u8 = 1;

impl AccountantState {
    /// The binary form: `TGAS`, a version byte, then fixed-width
    /// little-endian records.
    pub fn encode(&self) -> Vec<u8> {
        let mut out =
            Vec::with_capacity(16 + self.counters.len() * 41 + self.open_samples.len() * 33 + 64);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        match self.last_observe_ms {
            Some(ms) => {
                out.push(1);
                out.extend_from_slice(&ms.to_le_bytes());
            }
            None => out.extend_from_slice(&[0; 9]),
        }
        out.extend_from_slice(&(self.counters.len() as u64).to_le_bytes());
        for c in &self.counters {
            put_key(&mut out, &c.key);
            out.extend_from_slice(&c.reading.object.0.to_le_bytes());
            out.extend_from_slice(&c.reading.bytes.to_le_bytes());
            out.extend_from_slice(&c.reading.packets.to_le_bytes());
            out.extend_from_slice(&c.at_ms.to_le_bytes());
        }
        out.extend_from_slice(&(self.open_samples.len() as u64).to_le_bytes());
        for o in &self.open_samples {
            out.extend_from_slice(&o.slot.0.to_le_bytes());
            put_key(&mut out, &o.key);
            out.extend_from_slice(&o.usage.bytes.to_le_bytes());
            out.extend_from_slice(&o.usage.packets.to_le_bytes());
        }
        out.extend_from_slice(&(self.open_coverage.len() as u64).to_le_bytes());
        for c in &self.open_coverage {
            out.extend_from_slice(&c.slot.0.to_le_bytes());
            out.extend_from_slice(&c.measured_ms.to_le_bytes());
            out.extend_from_slice(&c.estimated_ms.to_le_bytes());
        }
        out
    }

    /// Reads the binary form back, of this version or an older one; every
    /// problem names the field and offset.
    pub fn decode(bytes: &[u8]) -> Result<AccountantState, StateError> {
        let mut r = Reader {
            bytes,
            at: 0,
            sourced: true,
        };
        let magic = r.take(4, "magic")?;
        if magic != MAGIC {
            return Err(r.error("magic", 0, "not an accounting state (expected `TGAS`)"));
        }
        let version = r.u8("version")?;
        if !(OLDEST..=VERSION).contains(&version) {
            return Err(r.error(
                "version",
                4,
                format!("version {version} is not known (this build reads {OLDEST} to {VERSION})"),
            ));
        }
        r.sourced = version >= 2;
        let key_len = if r.sourced { 9 } else { 8 };
        let flag = r.u8("last_observe_ms.present")?;
        let ms = r.i64("last_observe_ms")?;
        let last_observe_ms = match flag {
            0 => None,
            1 => Some(ms),
            other => {
                return Err(r.error("last_observe_ms.present", 5, format!("flag {other}")));
            }
        };
        let n = r.count("counters.len", key_len + 32)?;
        let mut counters = Vec::with_capacity(n);
        for _ in 0..n {
            let key = r.key("counters.key")?;
            let object = ObjectIdentity(r.u64("counters.object")?);
            let bytes = r.u64("counters.bytes")?;
            let packets = r.u64("counters.packets")?;
            let at = r.at;
            let at_ms = r.i64("counters.at_ms")?;
            // Every counter was read by a batch, at or before the last.
            if last_observe_ms.is_none_or(|last| at_ms > last) {
                return Err(r.error(
                    "counters.at_ms",
                    at,
                    format!(
                        "read at {at_ms} ms, after the state's last read ({last_observe_ms:?})"
                    ),
                ));
            }
            counters.push(CounterState {
                key,
                reading: Reading {
                    object,
                    bytes,
                    packets,
                },
                at_ms,
            });
        }
        let at = r.at;
        let n = r.count("open_samples.len", key_len + 24)?;
        if n > 0 && last_observe_ms.is_none() {
            return Err(r.error(
                "open_samples.len",
                at,
                "traffic in open slots, but no read ever happened",
            ));
        }
        let mut open_samples = Vec::with_capacity(n);
        for _ in 0..n {
            let slot = Slot(r.i64("open_samples.slot")?);
            let key = r.key("open_samples.key")?;
            let bytes = r.u64("open_samples.bytes")?;
            let packets = r.u64("open_samples.packets")?;
            open_samples.push(OpenSample {
                slot,
                key,
                usage: Usage { bytes, packets },
            });
        }
        let n = r.count("open_coverage.len", 24)?;
        let mut open_coverage = Vec::with_capacity(n);
        for _ in 0..n {
            let slot = Slot(r.i64("open_coverage.slot")?);
            let at = r.at;
            let measured_ms = r.i64("open_coverage.measured_ms")?;
            let estimated_ms = r.i64("open_coverage.estimated_ms")?;
            // A slot is observed for at most its own length.
            let observed = measured_ms
                .checked_add(estimated_ms)
                .filter(|&t| measured_ms >= 0 && estimated_ms >= 0 && t <= SAMPLE_MILLIS);
            if observed.is_none() || last_observe_ms.is_none() {
                return Err(r.error(
                    "open_coverage.measured_ms",
                    at,
                    format!(
                        "{measured_ms} ms measured and {estimated_ms} ms estimated of a {SAMPLE_MILLIS} ms slot{}",
                        if last_observe_ms.is_none() { ", but no read ever happened" } else { "" }
                    ),
                ));
            }
            open_coverage.push(OpenCoverage {
                slot,
                measured_ms,
                estimated_ms,
            });
        }
        if r.at != bytes.len() {
            return Err(r.error(
                "end",
                r.at,
                format!("{} bytes after the last record", bytes.len() - r.at),
            ));
        }
        Ok(AccountantState {
            last_observe_ms,
            counters,
            open_samples,
            open_coverage,
        })
    }
}

fn put_key(out: &mut Vec<u8>, k: &UsageKey) {
    out.extend_from_slice(&k.tenant.0.to_le_bytes());
    out.extend_from_slice(&k.realm.0.to_le_bytes());
    out.push(k.direction.code());
    out.push(k.band.code());
    out.push(k.source.code());
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
    /// Whether keys carry a source byte (version 2 on).
    sourced: bool,
}

impl<'a> Reader<'a> {
    fn error(&self, field: &'static str, offset: usize, problem: impl Into<String>) -> StateError {
        StateError {
            field,
            offset,
            problem: problem.into(),
        }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], StateError> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let Some(end) = end else {
            return Err(self.error(
                field,
                self.at,
                format!(
                    "needs {n} bytes, {} left (truncated)",
                    self.bytes.len() - self.at
                ),
            ));
        };
        let s = &self.bytes[self.at..end];
        self.at = end;
        Ok(s)
    }

    fn array<const N: usize>(&mut self, field: &'static str) -> Result<[u8; N], StateError> {
        let s = self.take(N, field)?;
        let mut a = [0u8; N];
        a.copy_from_slice(s);
        Ok(a)
    }

    fn u8(&mut self, field: &'static str) -> Result<u8, StateError> {
        Ok(self.array::<1>(field)?[0])
    }

    fn u64(&mut self, field: &'static str) -> Result<u64, StateError> {
        Ok(u64::from_le_bytes(self.array(field)?))
    }

    fn i64(&mut self, field: &'static str) -> Result<i64, StateError> {
        Ok(i64::from_le_bytes(self.array(field)?))
    }

    /// A record count, checked against the bytes left so that a corrupt
    /// count cannot ask for a huge allocation.
    fn count(&mut self, field: &'static str, record: usize) -> Result<usize, StateError> {
        let at = self.at;
        let n = self.u64(field)?;
        let left = (self.bytes.len() - self.at) / record;
        if n > left as u64 {
            return Err(self.error(field, at, format!("{n} records announced, room for {left}")));
        }
        Ok(n as usize)
    }

    fn key(&mut self, field: &'static str) -> Result<UsageKey, StateError> {
        let tenant = TenantId(u32::from_le_bytes(self.array(field)?));
        let realm = RealmId(u16::from_le_bytes(self.array(field)?));
        let at = self.at;
        let direction = Direction::from_code(self.u8(field)?)
            .ok_or_else(|| self.error(field, at, "direction is neither 0 (down) nor 1 (up)"))?;
        let band = Band::from_code(self.u8(field)?)
            .ok_or_else(|| self.error(field, at + 1, "band is not 0..=3"))?;
        let source = if self.sourced {
            Source::from_code(self.u8(field)?).ok_or_else(|| {
                self.error(field, at + 2, "source is neither 0 (kernel) nor 1 (flow)")
            })?
        } else {
            Source::Kernel
        };
        Ok(UsageKey {
            tenant,
            realm,
            direction,
            band,
            source,
        })
    }
}
