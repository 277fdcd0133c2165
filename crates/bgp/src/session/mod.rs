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
