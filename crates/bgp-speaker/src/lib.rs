//! tollgate's BGP speaker: the side-effect shell around the pure `bgp` and
//! `routes` crates.
//!
//! It listens on TCP (port 179 by default) for the peers named in its
//! [`SpeakerConfig`], runs one task per connection that drives a
//! [`bgp::session::Session`] with the bytes it reads and the time, and
//! forwards every session event to one table task that applies it to a
//! [`routes::RouteTable`]. Realm changes come out of a channel the embedder
//! passes in, so the daemon can push them to the dataplane and the CLI can
//! log them.
//!
//! Peers connect to it (BIRD and ExaBGP do so by default), and peers with
//! `passive = false` are also connected to, retried with backoff (250 ms
//! doubling to 30 s, back to 250 ms after a session came up). One session
//! per peer address: when both sides connect at once, the connections
//! collide and the BGP identifiers decide which one stays (RFC 4271 §6.8,
//! module `slots`); a new connection from a peer whose session is
//! established replaces that session, whose routes are withdrawn before
//! the new session's routes arrive.
//!
//! It announces what the embedder puts in with
//! [`SpeakerHandle::announce`] and takes out with
//! [`SpeakerHandle::withdraw`] to the peers with `announce = true`: every
//! session keeps a [`bgp::rib_out::AdjRibOut`] and brings it up to date
//! with the table whenever the table changes or the session
//! (re)establishes, so a peer that restarts gets every route again.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use bgp_speaker::{Speaker, SpeakerConfig};
//! let config = SpeakerConfig::from_toml("bgp.toml", r#"
//!     local_as = 65000
//!     router_id = "192.0.2.1"
//!     listen = ["127.0.0.1:1179"]
//!     [[peers]]
//!     address = "127.0.0.2"
//!     remote_as = 65001
//! "#)?;
//! let rules = routes::RealmRules::new(vec![], (routes::RealmId(2), "international".into()));
//! let (tx, mut changes) = tokio::sync::mpsc::unbounded_channel();
//! let speaker = Speaker::bind(config).await?;
//! let handle = speaker.start(routes::RouteTable::new(rules), tx);
//! while let Some(batch) = changes.recv().await {
//!     println!("{} realm changes from {}", batch.changes.len(), batch.peer);
//! }
//! handle.shutdown().await;
//! # Ok(()) }
//! ```

mod config;
mod connection;
mod slots;
mod speaker;

pub use bgp::flowspec;
pub use bgp::rib_out::{Announcement, FlowRoute, BLACKHOLE};
pub use config::{AddressFamily, ConfigError, PeerConfig, SpeakerConfig, DEFAULT_HOLD_TIME};
pub use speaker::{PeerState, PeerStatus, RealmChanges, Speaker, SpeakerError, SpeakerHandle};
