//! Deciding where each owner's block of classes goes, so that handles stay
//! stable.
//!
//! Minor numbers are the scarce resource: an HTB tree has 65,535 of them.
//! They are handed out in cells of four (a class and its three band
//! leaves), first fit, and never taken away from an owner that still fits
//! where it is. An owner moves only when HTB forces it to (a new parent, or
//! a block of a different size); the move takes fresh cells so that the old
//! classes can drain while the new ones already receive traffic.

use crate::facts::{Live, Owner, Placement};
use net_types::ClassId;
use std::collections::BTreeMap;

/// The highest cell: minors `0xfffc..=0xffff`.
pub(crate) const MAX_CELL: u16 = 0x3fff;

/// Free and used cells of every shard.
pub(crate) struct Cells {
    used: Vec<Vec<u64>>,
    next: Vec<u16>,
    load: Vec<u32>,
}

impl Cells {
    /// Every shard empty but for cell 0 (the root and default classes), and
    /// every cell that is live now reserved: a live block is either kept or
    /// still draining while its replacement fills up.
    pub fn new(shards: u16, live: &Live) -> Cells {
        let words = (MAX_CELL as usize + 1).div_ceil(64);
        let mut c = Cells {
            used: vec![vec![0; words]; shards as usize],
            next: vec![1; shards as usize],
            load: vec![0; shards as usize],
        };
        for s in 0..shards {
            c.mark(s, 0, 1);
        }
        for p in live.placements.values() {
            if p.shard < shards
                && p.cell >= 1
                && p.cell as u32 + p.cells as u32 - 1 <= MAX_CELL as u32
            {
                c.mark(p.shard, p.cell, p.cells);
            }
        }
        c
    }

    fn is_used(&self, shard: u16, cell: u16) -> bool {
        self.used[shard as usize][cell as usize / 64] & (1 << (cell % 64)) != 0
    }

    fn mark(&mut self, shard: u16, cell: u16, n: u16) {
        for c in cell..cell + n {
            self.used[shard as usize][c as usize / 64] |= 1 << (c % 64);
        }
    }

    /// Counts a kept block toward its shard's load.
    pub fn keep(&mut self, p: &Placement) {
        self.load[p.shard as usize] += p.cells as u32;
    }

    /// The first run of `n` free cells in `shard`, which is then used.
    pub fn take(&mut self, shard: u16, n: u16) -> Option<u16> {
        let mut start = self.next[shard as usize];
        while start as u32 + n as u32 - 1 <= MAX_CELL as u32 {
            match (start..start + n).find(|&c| self.is_used(shard, c)) {
                Some(busy) => start = busy + 1,
                None => {
                    self.mark(shard, start, n);
                    self.load[shard as usize] += n as u32;
                    // Only advance the search hint past a prefix that is now
                    // completely full; freed cells behind it do not exist
                    // within one compile.
                    if start == self.next[shard as usize] {
                        self.next[shard as usize] = start + n;
                    }
                    return Some(start);
                }
            }
        }
        None
    }

    /// The shard with the fewest cells in use, lowest index on a tie.
    pub fn lightest(&self) -> u16 {
        (0..self.load.len())
            .min_by_key(|&s| (self.load[s], s))
            .unwrap_or(0) as u16
    }

    /// Adds the expected size of a subtree to a shard's load, so that the next
    /// top-level owner goes elsewhere.
    pub fn expect(&mut self, shard: u16, cells: u32) {
        self.load[shard as usize] += cells;
    }
}

/// One owner to place: its parent (another owner, or the shard root) and size.
pub(crate) struct Want {
    pub owner: Owner,
    pub parent: Option<Owner>,
    pub cells: u16,
}

/// The outcome: every owner that could be placed, and the ones that could not.
pub(crate) struct Placed {
    pub placements: BTreeMap<Owner, Placement>,
    pub full: Vec<(Owner, u16)>,
}

/// Places owners in the given order, which must list parents before children.
pub(crate) fn place(
    wants: &[Want],
    shards: u16,
    live: &Live,
    subtree_cells: &BTreeMap<Owner, u32>,
) -> Placed {
    let mut cells = Cells::new(shards, live);
    let mut placements: BTreeMap<Owner, Placement> = BTreeMap::new();
    let mut full = Vec::new();
    // Top-level owners keep their shard if they have one; kept blocks count
    // toward load before any new owner picks the lightest shard.
    for w in wants {
        if let Some(p) = live.placements.get(&w.owner) {
            if p.shard < shards {
                cells.keep(p);
            }
        }
    }
    for w in wants {
        let shard = match w.parent {
            Some(parent) => match placements.get(&parent) {
                Some(pp) => pp.shard,
                None => continue,
            },
            None => match live.placements.get(&w.owner) {
                Some(p) if p.shard < shards => p.shard,
                _ => {
                    let s = cells.lightest();
                    cells.expect(
                        s,
                        subtree_cells
                            .get(&w.owner)
                            .copied()
                            .unwrap_or(0)
                            .saturating_sub(w.cells as u32),
                    );
                    s
                }
            },
        };
        let parent_class = match w.parent {
            Some(parent) => placements[&parent].base(),
            None => ClassId::new(crate::shard_major(shard), crate::ROOT_MINOR),
        };
        // A block whose first class is gone in both directions has no
        // parent to keep: it is rebuilt where it is.
        let kept = live.placements.get(&w.owner).filter(|p| {
            p.shard == shard
                && p.cells == w.cells
                && (p.parent == parent_class || p.parent == Placement::PARENT_UNKNOWN)
        });
        let placement = match kept {
            Some(p) => Placement {
                parent: parent_class,
                ..*p
            },
            None => match cells.take(shard, w.cells) {
                Some(cell) => Placement {
                    shard,
                    cell,
                    cells: w.cells,
                    parent: parent_class,
                },
                None => {
                    full.push((w.owner, shard));
                    continue;
                }
            },
        };
        placements.insert(w.owner, placement);
    }
    Placed { placements, full }
}
