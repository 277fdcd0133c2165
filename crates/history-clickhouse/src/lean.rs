//! The lean insert row of schema 5 (`sql/v5.sql`): a batch in which
//! nothing is refused, as one row of `sample_batches`, 7 numbers per item
//! (samples, coverage, hourly sums, the writer's state packed 7 bytes to
//! a number). Batches with refusals keep `batches` (`write.rs`).

use crate::rowbinary::Writer;
use crate::write::{in_key_order, sum_runs};
use accounting::{Sample, SlotCoverage};

/// One item of a `sample_batches` row (see `sql/v5.sql`).
#[derive(Clone, Copy)]
struct LeanItem {
    what: u8,
    time: u32,
    tenant: u32,
    realm: u16,
    key: u8,
    bytes: u64,
    packets: u64,
}

/// The writer's state as `sample_batches` items: 7 bytes each, big-endian
/// below a leading 0x01 (so that the view's `hex` keeps leading zeros).
fn state_items(state: &[u8]) -> impl Iterator<Item = LeanItem> + '_ {
    let len = u32::try_from(state.len()).unwrap_or(u32::MAX);
    state.chunks(7).map(move |chunk| {
        let mut v: u64 = 1;
        for i in 0..7 {
            v = (v << 8) | u64::from(chunk.get(i).copied().unwrap_or(0));
        }
        LeanItem {
            what: 5,
            time: len,
            tenant: 0,
            realm: 0,
            key: 0,
            bytes: v,
            packets: 0,
        }
    })
}

/// The `sample_batches` row of a batch with nothing refused, every slot
/// (samples' and coverage's) in `0..=LAST_SLOT`.
pub(crate) fn encode_lean_row(
    (writer, sequence, state): (&str, u64, &[u8]),
    samples: &[Sample],
    coverage: &[SlotCoverage],
) -> Vec<u8> {
    let samples = in_key_order(samples);
    let hourly = hourly_by_tenant(&samples);
    // Slots and hours fit: the caller checked every slot is at most
    // LAST_SLOT, below 2^32 / 300.
    let time = |t: i64| u32::try_from(t).unwrap_or(u32::MAX);
    let mut items: Vec<LeanItem> =
        Vec::with_capacity(samples.len() + hourly.len() + coverage.len() + state.len() / 7 + 1);
    items.extend(samples.iter().map(|s| LeanItem {
        what: 0,
        time: time(s.slot.0),
        tenant: s.key.tenant.0,
        realm: s.key.realm.0,
        key: s.key.direction.code() | s.key.band.code() << 1 | s.key.source.code() << 3,
        bytes: s.bytes,
        packets: s.packets,
    }));
    items.extend(coverage.iter().map(|c| LeanItem {
        what: 1,
        time: time(c.slot.0),
        tenant: 0,
        realm: 0,
        key: c.status.code(),
        bytes: 0,
        packets: 0,
    }));
    items.extend(
        hourly.iter().map(
            |&((tenant, hour, realm, direction), (bytes, packets))| LeanItem {
                what: 2,
                time: time(hour),
                tenant,
                realm,
                key: direction,
                bytes,
                packets,
            },
        ),
    );
    items.extend(state_items(state));
    let mut w = Writer::default();
    w.buf.reserve(items.len() * 28 + writer.len() + 64);
    w.bytes(writer.as_bytes());
    w.u64(sequence);
    w.array(&items, |w, i| w.u8(i.what));
    w.array(&items, |w, i| w.u32(i.time));
    w.array(&items, |w, i| w.u32(i.tenant));
    w.array(&items, |w, i| w.u16(i.realm));
    w.array(&items, |w, i| w.u8(i.key));
    w.array(&items, |w, i| w.u64(i.bytes));
    w.array(&items, |w, i| w.u64(i.packets));
    w.buf
}

/// ((tenant, hour, realm, direction), (bytes, packets)).
type HourRow = ((u32, i64, u16, u8), (u64, u64));

/// The samples (in [`in_key_order`]) summed per tenant × hour × realm ×
/// direction, in that order (`hourly`'s key). A sum stays below 2^62: at
/// most 12 slots × 8 keys × 2^50 bytes.
fn hourly_by_tenant(samples: &[Sample]) -> Vec<HourRow> {
    let mut rows: Vec<HourRow> = samples
        .iter()
        .map(|s| {
            let k = &s.key;
            let at = (
                k.tenant.0,
                s.slot.0.div_euclid(12),
                k.realm.0,
                k.direction.code(),
            );
            (at, (s.bytes, s.packets))
        })
        .collect();
    // Nearly sorted already (a run per tenant and slot): the stable sort
    // merges the runs.
    rows.sort_by_key(|r| r.0);
    sum_runs(&mut rows);
    rows
}
