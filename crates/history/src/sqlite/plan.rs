//! Cutting a range of slots into what a total is read from, so that every
//! slot counts in its own bucket.
//!
//! A bucket is a local day or month (or, for ranking, the whole range); a
//! slot belongs to the bucket of its start's local date. The cheapest
//! exact reading is:
//! - a UTC day inside the range whose slots all share one bucket: one row
//!   of the daily rollup;
//! - else an hour inside the range whose slots share one bucket: one row of
//!   the hourly rollup;
//! - else (the range's ragged ends, and the hour a bucket boundary cuts,
//!   which happens in zones whose offset is not whole hours such as
//!   Asia/Kathmandu or Australia/Lord_Howe): the 5-minute samples of those
//!   slots, each counted in its own bucket.
//!
//! A UTC day whose hours fall in two buckets (a local day in any zone but
//! UTC: Berlin's begins at 23:00 or 22:00 UTC) is read, when the caller
//! allows it, as the daily rollup in the bucket holding most of its hours,
//! less the other hours (and the hours cut by a boundary), which are read
//! from the hourly rollup into their own buckets: two or a few rows
//! instead of 24. The rollups are written in one transaction with the
//! samples, so a day's row is exactly the sum of its hours.
//!
//! Once retention has removed the finer data of a time (see
//! [`super::marks`]), the next coarser rollup stands in: that hour (or UTC
//! day) is counted whole, in the bucket of its first slot in the range, and
//! the piece is marked inexact.

use super::codec::{HOURS_PER_DAY, SLOTS_PER_HOUR};
pub use super::marks::Marks;
use crate::error::StoreError;
use accounting::Slot;
use jiff::civil::Date;

const SLOTS_PER_DAY: i64 = SLOTS_PER_HOUR * HOURS_PER_DAY;

/// Where a piece of the range is read from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Piece {
    /// A UTC day's daily rollup.
    Day(i64),
    /// An hour's hourly rollup.
    Hour(i64),
    /// The raw samples of slots `[from, to)`, all in one bucket.
    Slots(Slot, Slot),
}

/// A piece and the bucket it counts in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Planned {
    /// What is read.
    pub piece: Piece,
    /// The bucket it counts in.
    pub bucket: Date,
    /// `false` when the piece stands in for finer data retention removed.
    pub exact: bool,
    /// The bucket of the piece's last slot in the range: a later bucket
    /// than `bucket` when an inexact piece counts slots of later buckets
    /// in its first one (those buckets are short of them).
    pub last: Date,
    /// The piece is taken away from `bucket` rather than added: an hour
    /// read into another bucket, out of a daily row counted whole.
    pub minus: bool,
}

impl Planned {
    fn plus(piece: Piece, bucket: Date, exact: bool, last: Date) -> Planned {
        Planned {
            piece,
            bucket,
            exact,
            last,
            minus: false,
        }
    }
}

/// The pieces of slots `[first, end)`. `bucket_of` gives the bucket of a
/// slot; within one hour, buckets change at most once and never go back
/// (true of every zone: no offset change is smaller than five minutes and
/// crosses midnight twice in an hour). With `complement`, a day split
/// between buckets may be read as its daily row less some hours (pieces
/// with `minus`).
pub fn plan(
    first: i64,
    end: i64,
    mut bucket_of: impl FnMut(i64) -> Result<Date, StoreError>,
    marks: &Marks,
    complement: bool,
) -> Result<Vec<Planned>, StoreError> {
    let mut out = Vec::new();
    let mut hours: Vec<(i64, i64, i64, Date, Date)> = Vec::with_capacity(HOURS_PER_DAY as usize);
    let mut day = first.div_euclid(SLOTS_PER_DAY);
    while day * SLOTS_PER_DAY < end {
        let day_start = day * SLOTS_PER_DAY;
        let (x, y) = (first.max(day_start), end.min(day_start + SLOTS_PER_DAY));
        hours.clear();
        let mut h = x.div_euclid(SLOTS_PER_HOUR);
        while h * SLOTS_PER_HOUR < y {
            let (hx, hy) = (x.max(h * SLOTS_PER_HOUR), y.min((h + 1) * SLOTS_PER_HOUR));
            hours.push((h, hx, hy, bucket_of(hx)?, bucket_of(hy - 1)?));
            h += 1;
        }
        let date = hours[0].3;
        let whole_day = (x, y) == (day_start, day_start + SLOTS_PER_DAY)
            && hours.iter().all(|&(_, _, _, a, b)| a == date && b == date);
        if whole_day && marks.daily_kept(day) {
            out.push(Planned::plus(Piece::Day(day), date, true, date));
            day += 1;
            continue;
        }
        let start = out.len();
        let mut fallback = false;
        for &(h, hx, hy, a, b) in &hours {
            let whole = (hx, hy) == (h * SLOTS_PER_HOUR, (h + 1) * SLOTS_PER_HOUR) && a == b;
            if whole && marks.hourly_kept(h) {
                out.push(Planned::plus(Piece::Hour(h), a, true, a));
            } else if marks.raw_kept(hx) {
                // Runs of slots of one bucket: at most two in an hour.
                let mut from = hx;
                let mut bucket = a;
                for s in hx + 1..hy {
                    let next = if a == b { a } else { bucket_of(s)? };
                    if next != bucket {
                        let run = Piece::Slots(Slot(from), Slot(s));
                        out.push(Planned::plus(run, bucket, true, bucket));
                        (from, bucket) = (s, next);
                    }
                }
                let run = Piece::Slots(Slot(from), Slot(hy));
                out.push(Planned::plus(run, bucket, true, bucket));
            } else if !whole && marks.hourly_kept(h) {
                out.push(Planned::plus(Piece::Hour(h), a, false, b));
            } else {
                fallback = true;
                break;
            }
        }
        if fallback {
            out.truncate(start);
            if marks.daily_kept(day) {
                let last = hours[hours.len() - 1].4;
                out.push(Planned::plus(Piece::Day(day), date, false, last));
            }
        } else if complement
            && (x, y) == (day_start, day_start + SLOTS_PER_DAY)
            && marks.daily_kept(day)
        {
            if let Some(shorter) = daily_less_hours(day, &out[start..], marks) {
                out.truncate(start);
                out.extend(shorter);
            }
        }
        day += 1;
    }
    Ok(out)
}

/// A whole UTC day's pieces (whole hours and runs of slots, all exact) as
/// its daily row in the bucket with most whole hours, less every other
/// hour, which keeps its own piece in its own bucket; `None` when that
/// reads no fewer rows, or an hour it must take away is gone.
fn daily_less_hours(day: i64, pieces: &[Planned], marks: &Marks) -> Option<Vec<Planned>> {
    let whole = |p: &Planned| matches!(p.piece, Piece::Hour(_));
    let mut counts: Vec<(Date, usize)> = Vec::new();
    for p in pieces.iter().filter(|p| whole(p)) {
        match counts.iter_mut().find(|(d, _)| *d == p.bucket) {
            Some((_, n)) => *n += 1,
            None => counts.push((p.bucket, 1)),
        }
    }
    let &(most, n) = counts.iter().max_by_key(|(_, n)| *n)?;
    let mut cut: Vec<i64> = pieces
        .iter()
        .filter_map(|p| match p.piece {
            Piece::Slots(from, _) => Some(from.0.div_euclid(SLOTS_PER_HOUR)),
            _ => None,
        })
        .collect();
    cut.dedup();
    if 1 + cut.len() >= n || !pieces.iter().all(|p| p.exact) {
        return None;
    }
    if !cut.iter().all(|&h| marks.hourly_kept(h)) {
        return None;
    }
    let minus = |piece| Planned {
        minus: true,
        ..Planned::plus(piece, most, true, most)
    };
    let mut out = vec![Planned::plus(Piece::Day(day), most, true, most)];
    let mut taken = None;
    for p in pieces {
        match p.piece {
            Piece::Hour(_) if p.bucket == most => {}
            Piece::Hour(_) => {
                out.push(*p);
                out.push(minus(p.piece));
            }
            Piece::Slots(from, _) => {
                let hour = from.0.div_euclid(SLOTS_PER_HOUR);
                if taken != Some(hour) {
                    out.push(minus(Piece::Hour(hour)));
                    taken = Some(hour);
                }
                out.push(*p);
            }
            Piece::Day(_) => return None,
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    /// Buckets of 100 slots: slot 0..100 is day 1, and so on.
    fn hundreds(slot: i64) -> Result<Date, StoreError> {
        Ok(date(2026, 1, 1 + (slot / 100) as i8))
    }

    #[test]
    fn whole_days_whole_hours_and_ragged_slots() {
        // Slots 5..600: day 0 (0..288) starts ragged, bucket changes at
        // 100, 200, 300, 400, 500.
        let p = plan(5, 600, hundreds, &Marks::default(), false).unwrap();
        let covered: i64 = p
            .iter()
            .map(|x| match x.piece {
                Piece::Day(_) => 288,
                Piece::Hour(_) => 12,
                Piece::Slots(a, b) => b.0 - a.0,
            })
            .sum();
        assert_eq!(covered, 595);
        assert!(p.iter().all(|x| x.exact));
        // Slot 100 begins a bucket inside hour 8 (96..108).
        let d = |n| date(2026, 1, n);
        assert!(p.contains(&Planned::plus(
            Piece::Slots(Slot(96), Slot(100)),
            d(1),
            true,
            d(1)
        )));
        assert!(p.contains(&Planned::plus(
            Piece::Slots(Slot(100), Slot(108)),
            d(2),
            true,
            d(2)
        )));
        // One bucket over whole days reads days.
        let one = plan(0, 576, |_| Ok(date(2026, 1, 1)), &Marks::default(), true).unwrap();
        assert_eq!(
            one.iter().map(|x| x.piece).collect::<Vec<_>>(),
            vec![Piece::Day(0), Piece::Day(1)]
        );
    }

    #[test]
    fn a_day_split_between_buckets_is_its_row_less_the_other_hours() {
        // Buckets change at slot 264 (where hour 22 begins) and 280
        // (inside hour 23): day 0 is its row in bucket 1, less hours
        // 22 and 23; hour 22 counts in bucket 2, hour 23's slots in 2 and 3.
        let bucket = |s: i64| {
            Ok(date(
                2026,
                1,
                if s < 264 {
                    1
                } else if s < 280 {
                    2
                } else {
                    3
                },
            ))
        };
        let p = plan(0, 288, bucket, &Marks::default(), true).unwrap();
        let d = |n| date(2026, 1, n);
        let minus = |piece| Planned {
            minus: true,
            ..Planned::plus(piece, d(1), true, d(1))
        };
        assert_eq!(
            p,
            vec![
                Planned::plus(Piece::Day(0), d(1), true, d(1)),
                Planned::plus(Piece::Hour(22), d(2), true, d(2)),
                minus(Piece::Hour(22)),
                minus(Piece::Hour(23)),
                Planned::plus(Piece::Slots(Slot(276), Slot(280)), d(2), true, d(2)),
                Planned::plus(Piece::Slots(Slot(280), Slot(288)), d(3), true, d(3)),
            ]
        );
        // Without the complement: 23 hours and two runs.
        assert_eq!(
            plan(0, 288, bucket, &Marks::default(), false)
                .unwrap()
                .len(),
            25
        );
    }

    #[test]
    fn removed_data_falls_back_to_coarser_rollups_marked_inexact() {
        let marks = Marks {
            raw: Some(Slot(288)),
            hourly: Some(12),
            daily: None,
        };
        // Hour 8 needs slots (a boundary at 100); they are gone, the hour
        // is kept. Hours 0..12 are gone too: the whole of day 0 stands in.
        let p = plan(0, 288, hundreds, &marks, true).unwrap();
        assert_eq!(
            p,
            vec![Planned::plus(
                Piece::Day(0),
                date(2026, 1, 1),
                false,
                date(2026, 1, 3)
            )]
        );
        let marks = Marks {
            raw: Some(Slot(288)),
            hourly: None,
            daily: None,
        };
        let p = plan(0, 288, hundreds, &marks, true).unwrap();
        assert!(p.contains(&Planned::plus(
            Piece::Hour(8),
            date(2026, 1, 1),
            false,
            date(2026, 1, 2)
        )));
        assert_eq!(p.iter().filter(|x| !x.exact).count(), 2, "hours 8 and 16");
    }
}
