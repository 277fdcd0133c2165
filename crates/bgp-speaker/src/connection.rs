//! One TCP connection with one peer: the loop that feeds a
//! [`bgp::session::Session`] bytes and time and carries out what it asks.

use std::net::IpAddr;
use std::sync::Arc;

use bgp::rib_out::{AdjRibOut, Announcements, ExportContext, FlowRoutes};
use bgp::session::{DownReason, Event, Initiator, Output, Session, SessionConfig, State};
use bgp::wire::Notification;
use bgp::Family;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::config::{PeerConfig, SpeakerConfig};
use crate::slots::{Phase, Slots, Verdict};
use crate::speaker::{PeerState, Shared};

/// What the embedder can ask of a running session.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Command {
    /// Send ROUTE-REFRESH for every negotiated family.
    Refresh,
    /// End the session with a Cease NOTIFICATION.
    Stop,
    /// End it with Cease / Connection Collision Resolution: another
    /// connection with the peer won (`crate::slots`).
    CollisionLost,
}

/// Everything one connection task needs.
pub(crate) struct Connection {
    pub stream: TcpStream,
    pub peer: PeerConfig,
    pub speaker: Arc<SpeakerConfig>,
    pub shared: Arc<Shared>,
    pub events: mpsc::Sender<(IpAddr, Event)>,
    pub commands: mpsc::Receiver<Command>,
    pub shutdown: watch::Receiver<bool>,
    /// The instant session time counts from.
    pub epoch: Instant,
    /// This connection among the peer's (`crate::slots`).
    pub id: u64,
    pub initiator: Initiator,
    pub phase: Phase,
    pub slots: Arc<tokio::sync::Mutex<Slots>>,
}

/// How large a read may be. Full-table feeds arrive fastest when many
/// UPDATEs are handed to the session at once.
const READ_CHUNK: usize = 64 * 1024;

impl Connection {
    /// Runs the session until it goes down, then returns.
    pub(crate) async fn run(self) {
        let Connection {
            stream,
            peer,
            speaker,
            shared,
            events,
            mut commands,
            mut shutdown,
            epoch,
            id,
            initiator,
            phase,
            slots,
        } = self;
        let mut reporter = Reporter {
            addr: peer.address,
            shared: Arc::clone(&shared),
            events,
            established: false,
            collision_lost: false,
        };
        let addr = peer.address;
        let label = peer.label();
        let offered: Vec<Family> = peer.families.iter().map(|f| f.family()).collect();
        let mut session = Session::new(SessionConfig {
            local_as: speaker.local_as,
            router_id: speaker.router_id,
            peer_as: Some(peer.remote_as),
            hold_time: peer.hold_time.unwrap_or(speaker.hold_time),
        })
        .with_families(&offered)
        .with_flowspec(peer.announce && peer.flowspec);
        let _ = stream.set_nodelay(true);
        let local = stream.local_addr().ok();
        // What this peer was sent of our announcements; only for a peer
        // that gets them, and only while the session is established.
        let mut rib_out: Option<AdjRibOut> = None;
        let mut want = shared.announcements.subscribe();
        let mut want_flows = shared.flows.subscribe();
        let (mut rd, mut wr) = stream.into_split();
        let now = move || epoch.elapsed();
        shared.set_state(addr, PeerState::OpenSent);
        let mut outputs = session.connected(now());
        let mut buf = vec![0u8; READ_CHUNK];
        let mut pending: Vec<Output> = Vec::new();
        // Whether this connection was weighed against the peer's other one.
        let mut judged = false;
        loop {
            let mut failed_write = false;
            for out in outputs.drain(..) {
                match out {
                    Output::Send(bytes) => {
                        if let Err(e) = wr.write_all(&bytes).await {
                            tracing::warn!(peer = %label, error = %e, "cannot write to the peer");
                            failed_write = true;
                            break;
                        }
                    }
                    Output::Event(event) => {
                        let sync = match &event {
                            Event::Established {
                                peer_as,
                                four_byte_as,
                                families,
                                ..
                            } if peer.announce => {
                                let mut cx = export_context(
                                    &peer,
                                    speaker.local_as,
                                    *peer_as,
                                    *four_byte_as,
                                    families,
                                    local,
                                );
                                cx.flowspec = session.flowspec_negotiated();
                                rib_out = Some(AdjRibOut::new(cx));
                                true
                            }
                            Event::Established { .. } => false,
                            Event::RefreshRequested { family } => {
                                if let Some(rib) = &mut rib_out {
                                    rib.forget(*family);
                                }
                                true
                            }
                            Event::Down { .. } => {
                                rib_out = None;
                                false
                            }
                            _ => false,
                        };
                        reporter.report(&label, event).await;
                        if sync {
                            pending.extend(sync_rib(
                                &mut rib_out,
                                &mut want,
                                &shared,
                                addr,
                                &label,
                            ));
                            pending.extend(sync_flows(&mut rib_out, &mut want_flows, &label));
                        }
                    }
                }
            }
            // Announcements that followed an event go out after the
            // outputs that came with it, in order.
            if !failed_write && !pending.is_empty() {
                outputs.append(&mut pending);
                continue;
            }
            if failed_write {
                pending.clear();
                outputs = session.closed(now());
                continue;
            }
            if session.state() == State::Idle {
                break;
            }
            if session.state() == State::Established {
                phase.established();
            }
            // The peer's OPEN just arrived: settle a collision with another
            // connection to the same peer now, before this one can reach
            // Established.
            if let (State::OpenConfirm, Some(remote), false) =
                (session.state(), session.peer_identity(), judged)
            {
                judged = true;
                let local = (speaker.router_id, speaker.local_as);
                let verdict = slots
                    .lock()
                    .await
                    .resolve(addr, id, initiator, local, remote);
                if verdict == Verdict::Close {
                    tracing::info!(peer = %label, ?initiator, "connection collision: closing this connection, the other one stays");
                    reporter.collision_lost = true;
                    outputs = session.close_collision(now());
                    continue;
                }
            }
            shared.set_state(addr, PeerState::from(session.state()));
            let deadline = session.next_deadline().map(|d| epoch + d);
            outputs = tokio::select! {
                read = rd.read(&mut buf) => match read {
                    Ok(0) => session.closed(now()),
                    Ok(n) => session.handle_bytes(now(), &buf[..n]),
                    Err(e) => {
                        tracing::warn!(peer = %label, error = %e, "read from the peer failed");
                        session.closed(now())
                    }
                },
                () = sleep_until(deadline) => session.poll(now()),
                changed = want.changed(), if rib_out.is_some() => match changed {
                    Ok(()) => sync_rib(&mut rib_out, &mut want, &shared, addr, &label),
                    // The speaker is going away; its shutdown stops us.
                    Err(_) => Vec::new(),
                },
                changed = want_flows.changed(), if rib_out.is_some() => match changed {
                    Ok(()) => sync_flows(&mut rib_out, &mut want_flows, &label),
                    Err(_) => Vec::new(),
                },
                cmd = commands.recv() => match cmd {
                    Some(Command::Refresh) => session.request_refresh(),
                    Some(Command::CollisionLost) => {
                        tracing::info!(peer = %label, ?initiator, "connection collision: the other connection stays; closing this one");
                        reporter.collision_lost = true;
                        session.close_collision(now())
                    }
                    Some(Command::Stop) | None => session.stop(now()),
                },
                _ = shutdown.changed() => session.stop(now()),
            };
        }
        let _ = wr.shutdown().await;
        // A collision's loser leaves the peer's status to the winner.
        if !reporter.collision_lost {
            shared.set_state(addr, PeerState::Idle);
        }
    }
}

/// How this session writes our routes: the negotiated families and
/// layout, and the next hops for routes that name none (the configured
/// ones, else our own address on the connection).
fn export_context(
    peer: &PeerConfig,
    local_as: u32,
    peer_as: u32,
    four_byte_as: bool,
    families: &[Family],
    local: Option<SocketAddr>,
) -> ExportContext {
    let local = local.map(|a| a.ip().to_canonical());
    ExportContext {
        local_as,
        peer_as,
        opts: bgp::wire::WireOptions { four_byte_as },
        ipv4: families.contains(&Family::Ipv4Unicast),
        ipv6: families.contains(&Family::Ipv6Unicast),
        next_hop_v4: peer.next_hop_v4.or(match local {
            Some(IpAddr::V4(a)) => Some(a),
            _ => None,
        }),
        next_hop_v6: peer.next_hop_v6.or(match local {
            Some(IpAddr::V6(a)) => Some(a),
            _ => None,
        }),
        // Set from the session once it is established.
        flowspec: (false, false),
    }
}

/// Brings the peer's FlowSpec rules up to date; returns the UPDATEs.
fn sync_flows(
    rib_out: &mut Option<AdjRibOut>,
    want: &mut watch::Receiver<Arc<FlowRoutes>>,
    label: &str,
) -> Vec<Output> {
    let Some(rib) = rib_out else {
        return Vec::new();
    };
    let table = Arc::clone(&want.borrow_and_update());
    let out = rib.sync_flows(&table);
    if out.announced + out.withdrawn > 0 {
        tracing::info!(peer = %label, announced = out.announced, withdrawn = out.withdrawn, "FlowSpec rules sent");
    }
    out.messages.into_iter().map(Output::Send).collect()
}

/// Brings the peer's Adj-RIB-Out up to date with the latest
/// announcements; returns the UPDATEs to write.
fn sync_rib(
    rib_out: &mut Option<AdjRibOut>,
    want: &mut watch::Receiver<Arc<Announcements>>,
    shared: &Shared,
    addr: IpAddr,
    label: &str,
) -> Vec<Output> {
    let Some(rib) = rib_out else {
        return Vec::new();
    };
    let table = Arc::clone(&want.borrow_and_update());
    let out = rib.sync(&table);
    for (prefix, why) in &out.skipped {
        tracing::warn!(peer = %label, %prefix, reason = ?why, "route not sent to the peer");
    }
    if out.announced + out.withdrawn > 0 {
        tracing::info!(peer = %label, announced = out.announced, withdrawn = out.withdrawn, "routes sent");
    }
    shared.set_announced(addr, rib.len());
    out.messages.into_iter().map(Output::Send).collect()
}

/// Hands session events on and keeps the peer's status current.
struct Reporter {
    addr: IpAddr,
    shared: Arc<Shared>,
    events: mpsc::Sender<(IpAddr, Event)>,
    /// Whether this connection's session was ever established: only then
    /// can its end withdraw anything.
    established: bool,
    /// Whether it was closed to resolve a collision.
    collision_lost: bool,
}

impl Reporter {
    /// Passes an event to the table task and notes it in the peer's status.
    async fn report(&mut self, label: &str, event: Event) {
        let addr = self.addr;
        match &event {
            Event::Established {
                peer_as,
                peer_id,
                four_byte_as,
                families,
            } => {
                tracing::info!(peer = %label, %peer_as, %peer_id, four_byte_as, ?families, "session established");
                self.established = true;
                self.shared.established(addr);
            }
            Event::Down { reason } => {
                if !self.established {
                    // No routes came through it. Telling the table would
                    // withdraw the routes of the peer's other connection,
                    // the one that won a collision.
                    if !self.collision_lost {
                        let why = describe(reason);
                        tracing::warn!(peer = %label, reason = %why, "session did not come up");
                        self.shared.down(addr, why);
                    }
                    return;
                }
                let why = describe(reason);
                tracing::warn!(peer = %label, reason = %why, "session down; its routes are withdrawn");
                self.shared.down(addr, why);
            }
            Event::Update { .. } | Event::RefreshRequested { .. } => {}
        }
        // The table task only ends when the speaker does; then there is
        // nobody left to tell.
        let _ = self.events.send((addr, event)).await;
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// A reason for logs and status, with the NOTIFICATION's code and subcode.
pub(crate) fn describe(reason: &DownReason) -> String {
    let n = |n: &Notification| {
        format!(
            "code {} subcode {} ({})",
            n.code,
            n.subcode,
            code_name(n.code)
        )
    };
    match reason {
        DownReason::HoldTimerExpired => "hold timer expired".into(),
        DownReason::NotificationReceived(x) => format!("peer sent NOTIFICATION {}", n(x)),
        DownReason::NotificationSent(x) => format!("sent NOTIFICATION {}", n(x)),
        DownReason::ConnectionClosed => "connection closed".into(),
    }
}

fn code_name(code: u8) -> &'static str {
    use bgp::wire::code;
    match code {
        code::MESSAGE_HEADER => "message header error",
        code::OPEN_MESSAGE => "OPEN message error",
        code::UPDATE_MESSAGE => "UPDATE message error",
        code::HOLD_TIMER_EXPIRED => "hold timer expired",
        code::FSM => "finite state machine error",
        code::CEASE => "cease",
        code::ROUTE_REFRESH_MESSAGE => "ROUTE-REFRESH message error",
        _ => "unknown code",
    }
}
