//! Longest-prefix-match tables for IPv4 and IPv6, sized for a full BGP table
//! (about a million IPv4 and two hundred thousand IPv6 prefixes) and built
//! for hot paths: flow attribution, DDoS detection, realm classification.
//!
//! ```
//! use std::net::Ipv4Addr;
//! use prefix_map::PrefixMap4;
//!
//! let mut realms = PrefixMap4::<u16>::new();
//! realms.insert(Ipv4Addr::new(10, 0, 0, 0), 8, 1).unwrap();
//! realms.insert(Ipv4Addr::new(10, 1, 0, 0), 16, 2).unwrap();
//! assert_eq!(realms.lookup(Ipv4Addr::new(10, 1, 2, 3)), Some(2));
//! assert_eq!(realms.lookup(Ipv4Addr::new(10, 9, 9, 9)), Some(1));
//! assert_eq!(realms.lookup(Ipv4Addr::new(11, 0, 0, 1)), None);
//! assert!(realms.insert(0u32, 33, 7).is_err());
//! ```
//!
//! # The data structure
//!
//! A lookup walks a compressed multibit trie in the style of Poptrie (Asai
//! and Ohara, 2015), with a direct first level laid out for one cache line
//! per lookup and path-compressed leaves for the sparse deep IPv6 levels:
//!
//! - The **direct level** is indexed by the top 18 bits of an IPv4 address
//!   (16 bits for IPv6). Each entry is a 64-byte, cache-line-aligned
//!   **bucket**: a trie node for the next 6 bits plus up to 20 of that
//!   node's answers inline. A full IPv4 table populates most of the 2^18
//!   slots, so its buckets are one dense 16 MiB array; IPv6 routes fill
//!   about 80 of 2^16 slots, so the IPv6 level is an index of 32-bit
//!   bucket numbers (256 KiB, of which lookups touch a few lines) in front
//!   of buckets allocated only where populated.
//! - Each **branch node** resolves 6 bits, so it has 64 slots, described by
//!   two 64-bit bitmaps: one marks the slots that lead to a child node, the
//!   other marks where a new run of equal answers starts. Children are
//!   stored contiguously, and so are the node's run answers, so the
//!   position of either is a base index plus a popcount of the bitmap below
//!   the slot. Runs make answers cheap: a /20 inside an 18-bit slot covers
//!   16 node slots but stores one answer. Nodes below the direct level are
//!   24 bytes, to keep the deep IPv6 levels compact.
//! - A subtree holding a single prefix, or two where the longer lies
//!   inside the shorter, is one 24-byte **path node** instead: the 64
//!   address bits of the longer prefix below the node's depth, both
//!   lengths and codes, and the inherited answer. A lookup compares its
//!   address with those bits (one XOR and a leading-zero count) and is
//!   done. Most populated IPv6 /32s hold a single longer route, so
//!   without path nodes such a /48 cost a chain of one-child nodes, one
//!   dependent cache miss per six bits; with them the shared full IPv6
//!   table has 181k nodes instead of 411k, and an average lookup reads
//!   about two lines below the cached top levels instead of three plus an
//!   answer. The trie keeps every subtree
//!   that fits a path node in that form, after updates as after a build.
//! - Prefix lengths that do not end on a node boundary are **expanded**
//!   over the slots they cover ("controlled prefix expansion"), and the
//!   answer of a covering prefix is **pushed down** into every slot and
//!   child it covers, so a lookup stops at the first answer it meets and
//!   never backtracks.
//! - Answers are **value codes**: each distinct value gets a small integer,
//!   and a table of distinct values (one entry per value, not per prefix,
//!   so it stays in cache) turns the code back into a value. Codes are what
//!   lets twenty answers fit in a bucket as 16-bit numbers.
//! - Prefixes of length 8 or less live in a 256-entry side table consulted
//!   only when the trie has no answer, so changing a default route touches
//!   256 entries instead of every bucket.
//!
//! For the common IPv4 lengths (/19 to /24, 85% of a real table) a lookup
//! reads one bucket, one cache line, plus the value table. The IPv4 trie of
//! a full table is the 16 MiB direct level plus a few hundred KiB, against
//! 64 MiB for a DIR-24-8 array with 32-bit entries. The IPv6 trie of a full
//! table is about 5 MiB.
//!
//! [`PrefixMap::lookup_batch`] is the fast path for many addresses: it
//! prefetches each address's bucket sixteen addresses ahead, and keeps up
//! to 24 lookups that continue below the direct level in flight,
//! advancing each one level per round after prefetching its next node, so
//! their cache misses overlap instead of queueing.
//!
//! # Updates
//!
//! Pushing answers down makes the trie fast to read but loses which prefix
//! produced which slot, so removals need more than the trie. Every table
//! keeps a **shadow map**, an ordered map of the stored prefixes sorted by
//! address then length, which is the source of truth. A change to one
//! prefix rebuilds only what can see it: the slots of the node where the
//! prefix ends (the prefixes under it are one contiguous range of the
//! shadow map, and its inherited answer is read from the parent while
//! walking down), or, for a prefix landing below an empty slot, just the
//! new child. Path nodes spell out their own prefixes, so the common IPv6
//! updates rebuild them without querying the shadow map; a removal that
//! leaves a subtree small enough becomes a path node again. Prefixes no
//! longer than the direct level instead update a per-slot "length and code
//! of the covering prefix", which is what makes removing them correct: a
//! slot is touched only when the changed prefix was or becomes its longest
//! cover. Node and code blocks are recycled through exact-size free lists
//! (blocks never exceed 64 entries), so churn never needs a compaction pass.
//!
//! The cost of an update is proportional to the number of prefixes inside
//! the rebuilt subtree, so it is small for the long prefixes that make up
//! real tables and grows for short ones: changing a /9 rebuilds up to 512
//! IPv4 buckets.
//!
//! # Values
//!
//! Values are generic `V: Copy + Eq + Hash` (`Hash` finds a value's code).
//! The trie never stores `V` itself, so its size does not depend on `V`;
//! realm ids (`u16`) and tenant ids (`u32`) are the intended use. Inline
//! codes are 16 bits: a table with more than 65,534 distinct values still
//! works, but buckets that need a larger code keep their answers out of
//! line, one more load per lookup.
//!
//! # Safety and failure
//!
//! The crate has no I/O. Prefix lengths longer than the address width are
//! reported as [`PrefixError`]; host bits after the length are cleared, and
//! no method panics. The only `unsafe` code is in one small module,
//! `cpu.rs`: a cache prefetch hint (which cannot fault) and a call into a
//! copy of the lookup loops compiled for the `popcnt` instruction after
//! checking at run time that the processor has it. [`fuzzing::differential`]
//! checks the table against a naive implementation for arbitrary byte
//! strings.
//!
//! # Performance notes
//!
//! Every trie step counts bits. Batch lookups, and single IPv6 lookups
//! (which walk several nodes), run in a copy compiled for the hardware
//! `popcnt` instruction whenever the processor has it. Single IPv4
//! lookups, which nearly always end in the bucket, are inlined into the
//! caller instead, where a call would cost what it saves; builds for
//! `x86-64-v2` or newer (`-C target-cpu=x86-64-v2`) use the instruction
//! there too.

#![deny(unsafe_code)]

mod cpu;
mod dir;
pub mod fuzzing;
mod key;
mod map;
mod prefix;
mod trie;
mod values;

pub use key::Key;
pub use map::{PrefixMap, PrefixMap4, PrefixMap6, Stats};
pub use prefix::{Prefix, PrefixError};
