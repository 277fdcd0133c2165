//! Samples a write refused, and the quarantine where they are kept.
//!
//! A write ([`crate::Store::append`], [`crate::Store::add`]) checks every
//! sample on its own. One that cannot be stored (implausibly large, or
//! making its slot and key implausibly large, or a slot and key the
//! accountant already wrote) is refused **alone**: the rest of the batch,
//! its coverage and the writer's state commit as usual, and the refused
//! samples are put in the quarantine table in the same transaction, so a
//! refused sample is never lost and never blocks the writer's next batch.
//! The write's [`WriteReport`] lists them.
//!
//! # The plausibility bound
//!
//! A sample carries at most [`MAX_SAMPLE_BYTES`] bytes and
//! [`MAX_SAMPLE_PACKETS`] packets: 2^50 each, about 1.1 PB (30 Tbit/s for
//! five minutes, far above any link a tenant has) and 3.75 × 10^12 packets
//! per second. A slot and key summed from several writes obeys the same
//! bound. So a stored sum can never come near 2^63: a tenant's day of one
//! realm and direction is at most 288 slots × 8 keys (4 bands, 2 sources)
//! × 2^50 < 2^62. Sums over more (a month, every realm, every tenant) are
//! carried in `u128`, which no sum of stored samples can overflow.
//!
//! # The quarantine
//!
//! Bounded: it keeps at most [`QUARANTINE_CAP`] samples (about 100 bytes
//! each); beyond that, refused samples are counted as dropped but not kept,
//! so a writer that sends only garbage cannot fill the disk. The counts
//! ([`Quarantine::refused`], [`Quarantine::dropped`]) are kept forever;
//! [`crate::Store::clear_quarantine`] empties it once someone has looked.

use accounting::Sample;
use serde::{Deserialize, Serialize};
use std::fmt;

/// The most bytes one sample may carry: 2^50 (about 1.1 PB, 30 Tbit/s for
/// five minutes).
pub const MAX_SAMPLE_BYTES: u64 = 1 << 50;

/// The most packets one sample may carry: 2^50.
pub const MAX_SAMPLE_PACKETS: u64 = 1 << 50;

/// The most samples the quarantine keeps; more are counted as dropped.
pub const QUARANTINE_CAP: u64 = 100_000;

/// The writer name under which [`crate::Store::append`]'s refusals are
/// quarantined (an [`crate::AddBatch`] uses its own writer name).
pub const ACCOUNTANT_WRITER: &str = "accountant";

/// Why a sample was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "reason")]
pub enum RefusalReason {
    /// Its bytes are above [`MAX_SAMPLE_BYTES`].
    TooManyBytes,
    /// Its packets are above [`MAX_SAMPLE_PACKETS`].
    TooManyPackets,
    /// Added to what is stored for its slot and key (or to earlier samples
    /// of the same slot and key in the batch) it would make these totals,
    /// above the bound.
    SumTooLarge {
        /// The bytes it would make.
        bytes: u128,
        /// The packets it would make.
        packets: u128,
    },
    /// The accountant already stored this slot and key (append writes each
    /// once).
    AlreadyStored,
    /// The same slot and key came earlier in the same append.
    TwiceInBatch,
    /// Its slot is beyond what the store keeps (±2^31 hours from 1970).
    SlotOutOfRange,
}

impl RefusalReason {
    /// The reason's name, as the quarantine table keeps it.
    pub fn name(self) -> &'static str {
        match self {
            RefusalReason::TooManyBytes => "too_many_bytes",
            RefusalReason::TooManyPackets => "too_many_packets",
            RefusalReason::SumTooLarge { .. } => "sum_too_large",
            RefusalReason::AlreadyStored => "already_stored",
            RefusalReason::TwiceInBatch => "twice_in_batch",
            RefusalReason::SlotOutOfRange => "slot_out_of_range",
        }
    }
}

impl fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefusalReason::TooManyBytes => write!(
                f,
                "more than {MAX_SAMPLE_BYTES} bytes (2^50) in five minutes is not plausible"
            ),
            RefusalReason::TooManyPackets => write!(
                f,
                "more than {MAX_SAMPLE_PACKETS} packets (2^50) in five minutes is not plausible"
            ),
            RefusalReason::SumTooLarge { bytes, packets } => write!(
                f,
                "with what is already counted for its slot and key it would make {bytes} bytes and {packets} packets, above the 2^50 a slot and key may hold"
            ),
            RefusalReason::AlreadyStored => {
                f.write_str("its slot and key are already stored by the accountant")
            }
            RefusalReason::TwiceInBatch => {
                f.write_str("its slot and key came earlier in the same batch")
            }
            RefusalReason::SlotOutOfRange => {
                f.write_str("its slot is beyond what the store keeps (±2^31 hours from 1970)")
            }
        }
    }
}

/// One refused sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// Its position in the batch's samples.
    pub index: usize,
    /// The sample as given.
    pub sample: Sample,
    /// Why.
    pub reason: RefusalReason,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.sample;
        write!(
            f,
            "samples[{}] ({} at {}: {} bytes, {} packets) refused: {}",
            self.index, s.key, s.slot, s.bytes, s.packets, self.reason
        )
    }
}

/// What a write did with a batch's samples.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WriteReport {
    /// Samples stored (added to what was there, for an add).
    pub stored: usize,
    /// Samples refused, in batch order.
    pub refused: Vec<Refusal>,
    /// Of the refused, those kept in the quarantine.
    pub quarantined: usize,
    /// Of the refused, those only counted: the quarantine was full.
    pub dropped: usize,
}

/// A sample kept in the quarantine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuarantinedSample {
    /// Its number in the quarantine, in order of arrival.
    pub id: u64,
    /// Who wrote it: [`ACCOUNTANT_WRITER`] or an add batch's writer.
    pub writer: String,
    /// The batch's sequence number.
    pub sequence: u64,
    /// The refusal.
    pub refusal: Refusal,
}

impl fmt::Display for QuarantinedSample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "#{} {} batch {}: {}",
            self.id, self.writer, self.sequence, self.refusal
        )
    }
}

/// The quarantine's contents and counts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quarantine {
    /// Samples refused since the store was created, kept or not.
    pub refused: u64,
    /// Of those, samples not kept because the quarantine was full.
    pub dropped: u64,
    /// Samples in the quarantine now.
    pub held: u64,
    /// The first of them, oldest first, up to the limit asked for.
    pub samples: Vec<QuarantinedSample>,
}
