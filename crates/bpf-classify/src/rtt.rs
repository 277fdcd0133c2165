//! Passive TCP RTT (`bpf/rtt.h`): what the programs send through the
//! ring buffer `tg_rtt_events` when [`crate::config::F_RTT`] is set, as
//! the C program lays it out. `linux-dataplane` drains the ring buffer;
//! `crates/latency` folds the samples into histograms.

/// The ring buffer's name in the object.
pub const EVENTS: &str = "tg_rtt_events";

/// The per-CPU array of counters: [`STAT_DROPPED`], [`STAT_SAMPLES`],
/// [`STAT_RETRANSMITS`].
pub const STATS: &str = "tg_rtt_stats";

/// Events the ring buffer could not take (the reader was behind).
pub const STAT_DROPPED: u32 = 0;
/// RTT samples sent.
pub const STAT_SAMPLES: u32 = 1;
/// Retransmissions sent.
pub const STAT_RETRANSMITS: u32 = 2;

/// The other maps of `rtt.h` (flow state and remembered timestamps),
/// pinned beside the classifier's.
pub const STATE_MAPS: [&str; 2] = ["tg_rtt_flows", "tg_rtt_ts"];

/// `struct rtt_event`: u64 rtt_ns, u32 tenant, u16 realm, u8 dir, u8 kind.
pub const EVENT_LEN: usize = 16;

/// The longest round trip the program reports (10 s): a reply later than
/// this gives no sample.
pub const MAX_RTT_NS: u64 = 10_000_000_000;

/// What one event says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// A round trip, in nanoseconds.
    Sample(u64),
    /// A data segment sent again.
    Retransmission,
}

/// One event from the ring buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The tenant's id.
    pub tenant: u32,
    /// The realm of the far end.
    pub realm: u16,
    /// The timed (or retransmitted) packet went up, from the tenant: the
    /// round trip is the far side's (upload queue and beyond). Down: the
    /// tenant's side (download queue, the tenant's link and stack).
    pub up: bool,
    /// What happened.
    pub kind: EventKind,
}

/// Decodes an event; `None` for bytes the program never writes (a wrong
/// length, an unknown kind, a sample outside (0, 10 s]).
pub fn read_event(b: &[u8]) -> Option<Event> {
    if b.len() != EVENT_LEN {
        return None;
    }
    let rtt = u64::from_ne_bytes(b[0..8].try_into().ok()?);
    let tenant = u32::from_ne_bytes(b[8..12].try_into().ok()?);
    let realm = u16::from_ne_bytes(b[12..14].try_into().ok()?);
    let up = match b[14] {
        0 => false,
        1 => true,
        _ => return None,
    };
    let kind = match b[15] {
        0 if rtt > 0 && rtt <= MAX_RTT_NS => EventKind::Sample(rtt),
        1 => EventKind::Retransmission,
        _ => return None,
    };
    Some(Event {
        tenant,
        realm,
        up,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(rtt: u64, tenant: u32, realm: u16, dir: u8, kind: u8) -> Vec<u8> {
        let mut v = rtt.to_ne_bytes().to_vec();
        v.extend_from_slice(&tenant.to_ne_bytes());
        v.extend_from_slice(&realm.to_ne_bytes());
        v.extend_from_slice(&[dir, kind]);
        v
    }

    #[test]
    fn events_decode_and_nonsense_is_refused() {
        assert_eq!(
            read_event(&bytes(20_000_000, 7, 2, 1, 0)),
            Some(Event {
                tenant: 7,
                realm: 2,
                up: true,
                kind: EventKind::Sample(20_000_000)
            })
        );
        assert_eq!(
            read_event(&bytes(0, 7, 2, 0, 1)).map(|e| e.kind),
            Some(EventKind::Retransmission)
        );
        assert_eq!(read_event(&bytes(0, 7, 2, 0, 0)), None);
        assert_eq!(read_event(&bytes(MAX_RTT_NS + 1, 7, 2, 0, 0)), None);
        assert_eq!(read_event(&bytes(5, 7, 2, 2, 0)), None);
        assert_eq!(read_event(&bytes(5, 7, 2, 0, 9)), None);
        assert_eq!(read_event(&[0; 15]), None);
    }
}
