//! BGP-4 for tollgate's speaker, and the MRT RIB dump format, as pure code.
//!
//! tollgate learns which realm an address belongs to from routes: it
//! listens to BGP peers and imports MRT RIB dumps, and each route's
//! attributes decide its realm. It also announces routes of its own: the
//! guard's remote-triggered blackhole (RTBH) routes. This crate is the functional
//! core of that: it turns bytes into routes and routes into tables, and
//! never touches a socket, a file or a clock.
//!
//! # Sans-I/O
//!
//! The [`session::Session`] state machine is driven from outside, in the
//! style of rustls or holo: the caller feeds it the bytes read from the TCP
//! connection ([`session::Session::handle_bytes`]) and the current time
//! ([`session::Session::poll`]), and gets back [`session::Output`]s: bytes
//! to write, and events such as "established", "these routes changed" or
//! "the session is down". Time is a [`std::time::Duration`] since any fixed
//! instant the caller likes, so tests replay a whole session, hold-timer
//! expiry included, in microseconds and deterministically.
//!
//! # Modules
//!
//! - [`wire`]: the message codec. Decoding errors carry the NOTIFICATION
//!   code, subcode and data that RFC 4271 §6 prescribes, so the session
//!   only has to send them.
//! - [`session`]: the RFC 4271 §8 state machine for a passive peer.
//! - [`rib`]: an Adj-RIB-In per peer, fed by session events.
//! - [`rib_out`]: what tollgate announces (the guard's RTBH routes) and an
//!   Adj-RIB-Out per session that turns changes, and a session coming up,
//!   into UPDATEs.
//! - [`flowspec`]: FlowSpec rules (RFC 8955/8956) encoded as NLRI, the
//!   traffic-rate action, and the UPDATEs that carry them.
//! - [`mrt`]: an iterator over the routes of a TABLE_DUMP_V2 file (RFC
//!   6396).
//! - [`fuzzing`]: entry points for cargo-fuzz and the tests.
//!
//! No decoder panics or reads out of bounds on any input: every read goes
//! through a bounds-checked cursor, and the fuzzing entry points check it.

mod bytes;
pub mod flowspec;
pub mod fuzzing;
pub mod mrt;
pub mod rib;
pub mod rib_out;
mod route;
pub mod session;
pub mod wire;

pub use route::{Family, Route};
pub use wire::PathAttributes;
