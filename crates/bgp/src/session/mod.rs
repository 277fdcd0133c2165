//! The BGP finite state machine (RFC 4271 §8) for a passive peer, without
//! I/O.
//!
//! The caller owns the TCP connection and the clock. It reports the
//! connection with [`Session::connected`], passes every received chunk of
//! bytes to [`Session::handle_bytes`] (chunks may split or join messages
//! anywhere), calls [`Session::poll`] no later than
//! [`Session::next_deadline`], and acts on the returned [`Output`]s in
//! order: write each [`Output::Send`] to the socket, and after an
//! [`Event::Down`] flush and close the connection.
//!
//! The machine has no Connect or Active states of its own: the caller
//! accepts or opens the TCP connection (and retries), and a session is
//! [`State::Idle`] until it is handed one; then it sends its OPEN at once
//! (OpenSent), as RFC 4271 §8.2.2 does once a connection is up. What we
//! announce is kept by the caller in a [`crate::rib_out::AdjRibOut`] per
//! session.

mod machine;

use std::net::Ipv4Addr;

use net_types::Prefix;

pub use machine::Session;

use crate::route::{Family, Route};
use crate::wire::Notification;

/// The local side's settings for one peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our AS number.
    pub local_as: u32,
    /// Our BGP identifier.
    pub router_id: Ipv4Addr,
    /// The AS the peer must have, or `None` to accept any.
    pub peer_as: Option<u32>,
    /// The hold time we propose in seconds; the session uses the smaller of
    /// ours and the peer's, and zero disables keepalives and the hold timer.
    pub hold_time: u16,
}

/// Where the state machine is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    /// No connection; bytes are ignored.
    Idle,
    /// Our OPEN is sent; waiting for the peer's.
    OpenSent,
    /// OPENs exchanged; waiting for the peer's KEEPALIVE.
    OpenConfirm,
    /// Routes flow.
    Established,
}

/// Something the caller must do or know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Write these bytes to the connection.
    Send(Vec<u8>),
    /// Something happened to the session.
    Event(Event),
}

/// A change in the session or in the peer's routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// The session reached Established.
    Established {
        /// The peer's AS, from the four-octet capability if it sent one.
        peer_as: u32,
        /// The peer's BGP identifier.
        peer_id: Ipv4Addr,
        /// Whether AS numbers are four octets on this session.
        four_byte_as: bool,
        /// The families both sides announced.
        families: Vec<Family>,
    },
    /// The peer announced or withdrew routes.
    Update {
        /// New or replaced routes.
        announced: Vec<Route>,
        /// Prefixes that are no longer reachable through this peer.
        withdrawn: Vec<Prefix>,
    },
    /// The peer asked (ROUTE-REFRESH) for everything we announce in this
    /// family again.
    RefreshRequested {
        /// The family, one both sides negotiated.
        family: Family,
    },
    /// The session ended; every route learned from it is withdrawn.
    Down {
        /// Why.
        reason: DownReason,
    },
}

/// Which side opened a TCP connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Initiator {
    /// We connected to the peer.
    Local,
    /// The peer connected to us.
    Remote,
}

/// Which of two connections with one peer survives a collision (RFC 4271
/// §6.8): the one opened by the side with the higher BGP identifier,
/// compared as unsigned 32-bit numbers; with equal identifiers (allowed
/// between different ASes, RFC 6286 §2.3) the one opened by the side with
/// the larger AS number. Both sides reach the same answer, so exactly one
/// connection stays up.
pub fn collision_survivor(
    (local_id, local_as): (Ipv4Addr, u32),
    (remote_id, remote_as): (Ipv4Addr, u32),
) -> Initiator {
    if (u32::from(local_id), local_as) > (u32::from(remote_id), remote_as) {
        Initiator::Local
    } else {
        Initiator::Remote
    }
}

/// Why a session ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DownReason {
    /// Nothing arrived from the peer within the hold time.
    HoldTimerExpired,
    /// The peer sent this NOTIFICATION.
    NotificationReceived(Notification),
    /// We sent this NOTIFICATION: the peer sent something malformed or
    /// unexpected, its OPEN was unacceptable, or we were told to stop.
    NotificationSent(Notification),
    /// The caller reported the connection closed.
    ConnectionClosed,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_higher_identifier_keeps_the_connection_it_opened() {
        let low = Ipv4Addr::new(192, 0, 2, 1);
        let high = Ipv4Addr::new(203, 0, 113, 9);
        assert_eq!(collision_survivor((high, 1), (low, 2)), Initiator::Local);
        assert_eq!(collision_survivor((low, 2), (high, 1)), Initiator::Remote);
        // Compared as numbers, not as text: 10.x is below 9.x as text.
        let ten = Ipv4Addr::new(10, 0, 0, 1);
        let nine = Ipv4Addr::new(9, 255, 255, 255);
        assert_eq!(collision_survivor((ten, 1), (nine, 1)), Initiator::Local);
        // Equal identifiers (different ASes): the larger AS's connection.
        assert_eq!(
            collision_survivor((low, 65002), (low, 65001)),
            Initiator::Local
        );
        assert_eq!(
            collision_survivor((low, 65001), (low, 65002)),
            Initiator::Remote
        );
        // Both ends agree: exactly one connection survives.
        for (a, b) in [
            ((low, 1), (high, 1)),
            ((high, 7), (low, 7)),
            ((low, 5), (low, 6)),
        ] {
            let here = collision_survivor(a, b);
            let there = collision_survivor(b, a);
            assert_ne!(here, there, "{a:?} {b:?}");
        }
    }
}
