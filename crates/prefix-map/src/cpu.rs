//! The crate's only `unsafe` code: a cache prefetch hint and running a
//! closure compiled for the `popcnt` instruction.
//!
//! Both are about lookup speed, measured on the shared benchmark table:
//! - Batch lookups issue the loads of many addresses before using any of
//!   them, so that their cache misses overlap; the prefetch hint is how
//!   they issue a load without waiting for it.
//! - Every trie step counts the bits of a bitmap. The baseline x86-64
//!   target has no `popcnt`, and the portable bit count it falls back to
//!   is a dozen instructions per step; on the deep IPv6 walks of the shared
//!   benchmark table single lookups ran about 15% slower with it than with
//!   `popcnt` (best of runs: 18 against 21 M/s). Processors from the last
//!   fifteen years have the instruction, so the hot loops run in a copy
//!   compiled for it whenever the processor reports it at run time.

#![allow(unsafe_code)]

/// Hints the processor to start loading the cache line at `r`.
#[inline(always)]
pub(crate) fn prefetch<T>(r: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `_mm_prefetch` is only a hint: it never dereferences its
    // argument in a way the program can observe and never faults, even on
    // an invalid or dangling address. It requires SSE, which every x86_64
    // processor has (it is part of the baseline target), so the
    // instruction is always available.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(r.cast::<i8>());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = r;
}

/// Runs `f` compiled for the `popcnt` instruction if the build does not
/// already target it and the processor has it; returns `None` (without
/// running `f`) when there is nothing to gain or the processor lacks it, so
/// the caller runs its ordinary copy.
///
/// `f` should be a closure around `#[inline(always)]` code: it is inlined
/// into a function compiled with the feature, so it picks the feature up.
#[inline(always)]
pub(crate) fn with_popcnt<R>(f: impl FnOnce() -> R) -> Option<R> {
    #[cfg(target_arch = "x86_64")]
    if !cfg!(target_feature = "popcnt") && std::is_x86_feature_detected!("popcnt") {
        #[target_feature(enable = "popcnt")]
        unsafe fn run<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        // SAFETY: the only requirement of a `target_feature` function is
        // that the processor has the feature, which
        // `is_x86_feature_detected!` checked just above.
        return Some(unsafe { run(f) });
    }
    let _ = f;
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popcnt_closures_compute_the_same_answer() {
        let words = [0u64, 1, u64::MAX, 0xf0f0_1234_5678_9abc];
        let count = || words.iter().map(|w| w.count_ones()).sum::<u32>();
        let plain = count();
        assert_eq!(with_popcnt(count).unwrap_or(plain), plain);
        // A prefetch of any address, even a dangling one, is harmless.
        prefetch(std::ptr::null::<u64>().wrapping_add(12345));
        prefetch(words.as_ptr());
    }
}
