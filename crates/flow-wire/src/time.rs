//! Conversions of the exporters' many time encodings to Unix milliseconds.

/// Seconds from the NTP epoch (1900) to the Unix epoch (1970).
const NTP_TO_UNIX_SECS: i64 = 2_208_988_800;

/// A sysUpTime-relative time (NetFlow v5/v9 first/last switched) as Unix
/// ms, given the header's export time and uptime. The difference is taken
/// modulo 2^32 and read as signed, so an uptime that wrapped after 49.7
/// days, or a flow stamped a few ms after the header, still lands near the
/// export time instead of 49 days away.
pub(crate) fn uptime_to_unix_ms(export_ms: i64, sys_uptime: u32, at: u32) -> i64 {
    let age = i64::from(sys_uptime.wrapping_sub(at) as i32);
    export_ms.saturating_sub(age)
}

/// An NTP-format timestamp (RFC 7011 dateTimeMicroseconds and
/// dateTimeNanoseconds: 32-bit seconds since 1900, 32-bit fraction) as
/// Unix ms.
pub(crate) fn ntp_to_unix_ms(v: u64) -> i64 {
    let secs = (v >> 32) as i64 - NTP_TO_UNIX_SECS;
    let frac_ms = ((v & 0xffff_ffff) * 1000) >> 32;
    secs * 1000 + frac_ms as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_wraps() {
        assert_eq!(uptime_to_unix_ms(1_000_000, 5_000, 4_000), 999_000);
        // First switched 10 ms "after" the header: still near export time.
        assert_eq!(uptime_to_unix_ms(1_000_000, 5_000, 5_010), 1_000_010);
        // Uptime wrapped between the flow's start and the export.
        assert_eq!(uptime_to_unix_ms(1_000_000, 100, u32::MAX - 99), 999_800);
    }

    #[test]
    fn ntp() {
        let v = ((NTP_TO_UNIX_SECS as u64 + 1_700_000_000) << 32) | (1u64 << 31);
        assert_eq!(ntp_to_unix_ms(v), 1_700_000_000_500);
    }
}
