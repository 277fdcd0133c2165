//! HTB's units: bursts are sent to the kernel as the *time* it takes to
//! send them at the class's rate, in packet-scheduler ticks.
//!
//! The kernel's packet scheduler clock ticks every 64 ns (`PSCHED_SHIFT` 6:
//! `PSCHED_TICKS2NS(x) = x << 6`). `tc_htb_opt.buffer` (for `rate`) and
//! `cbuffer` (for `ceil`) are durations in those ticks; the kernel stores
//! them as nanoseconds (`ticks << 6`) and dumps them back as ticks, so a
//! value round-trips exactly.

/// Nanoseconds per packet-scheduler tick (`1 << PSCHED_SHIFT`).
pub const PSCHED_TICK_NS: u64 = 64;

/// The `HZ` in tollgate's default burst rule (see [`default_burst`]).
pub const HTB_HZ: u64 = 1000;

/// The MTU in tollgate's default burst rule (tc's default `mtu`).
pub const DEFAULT_MTU: u32 = 1600;

/// The buffer (or cbuffer) to send for `burst_bytes` at `rate_bps` bits/s:
/// the time to send the burst at the rate, in 64 ns ticks,
///
/// ```text
/// ticks = floor(burst_bytes * 1e9 / rate_bytes_per_s / 64),  rate_bytes_per_s = floor(rate_bps / 8)
/// ```
///
/// computed exactly in integers and saturated at `u32::MAX`. A rate below
/// 8 bit/s (0 bytes/s) gives `u32::MAX`; the kernel refuses such a class
/// anyway ("rate must be non-zero").
///
/// `tc` computes the same quantity through floating point and first
/// truncates the time to whole microseconds, so for the same burst it can
/// send a few ticks less than this (at most 15, i.e. under 1 µs of burst).
pub fn htb_buffer_ticks(rate_bps: u64, burst_bytes: u32) -> u32 {
    let rate_bytes = (rate_bps / 8) as u128;
    if rate_bytes == 0 {
        return u32::MAX;
    }
    let ticks = burst_bytes as u128 * 1_000_000_000 / (rate_bytes * PSCHED_TICK_NS as u128);
    ticks.min(u32::MAX as u128) as u32
}

/// The inverse of [`htb_buffer_ticks`]: how many bytes `ticks` is worth at
/// `rate_bps`, rounded down. Because both directions round down,
/// `htb_burst_bytes(r, htb_buffer_ticks(r, b)) <= b`; compare bursts in
/// ticks, not in bytes.
pub fn htb_burst_bytes(rate_bps: u64, ticks: u32) -> u64 {
    let rate_bytes = (rate_bps / 8) as u128;
    let bytes = ticks as u128 * PSCHED_TICK_NS as u128 * rate_bytes / 1_000_000_000;
    bytes.min(u64::MAX as u128) as u64
}

/// The burst tollgate uses when a class names none:
///
/// ```text
/// burst = rate_bytes_per_s / HZ + mtu = floor(rate_bps / 8) / 1000 + 1600   (saturated at u32::MAX)
/// ```
///
/// one millisecond of traffic at the rate plus one full frame. This is
/// `tc`'s rule (`q_htb.c`: `buffer = rate / get_hz() + mtu`) with `HZ`
/// fixed at 1000. Beware that `tc` itself reads `HZ` from
/// `/proc/net/psched`, which on high-resolution-timer kernels says
/// 1,000,000,000, so `tc class add` without `burst` gives only about 1600
/// bytes, and at rates above ~5 Gbit/s a buffer of 0 ticks.
pub fn default_burst(rate_bps: u64) -> u32 {
    let b = rate_bps / 8 / HTB_HZ + DEFAULT_MTU as u64;
    b.min(u32::MAX as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks() {
        // 1 Mbit/s = 125,000 bytes/s; 1600 bytes take 12.8 ms = 200,000 ticks.
        assert_eq!(htb_buffer_ticks(1_000_000, 1600), 200_000);
        assert_eq!(htb_burst_bytes(1_000_000, 200_000), 1600);
        // 10 Mbit/s, 2000 bytes: 1.6 ms = 25,000 ticks (tc prints these as tokens).
        assert_eq!(htb_buffer_ticks(10_000_000, 2000), 25_000);
        assert_eq!(htb_buffer_ticks(7, 1600), u32::MAX);
        assert_eq!(htb_buffer_ticks(8, u32::MAX), u32::MAX);
        assert_eq!(htb_buffer_ticks(u64::MAX, u32::MAX), 0);
    }

    #[test]
    fn defaults() {
        assert_eq!(default_burst(0), 1600);
        assert_eq!(default_burst(8_000_000), 2600);
        assert_eq!(default_burst(10_000_000_000), 1_251_600);
        assert_eq!(default_burst(u64::MAX), u32::MAX);
    }

    #[test]
    fn round_trip_never_grows() {
        for rate in [
            8,
            1000,
            1_000_000,
            123_456_789,
            10_000_000_000,
            400_000_000_000,
        ] {
            for burst in [1, 1500, 1600, 65_535, 1_000_000, u32::MAX] {
                let t = htb_buffer_ticks(rate, burst);
                assert!(htb_burst_bytes(rate, t) <= burst as u64, "{rate} {burst}");
            }
        }
    }
}
