//! Listeners, the per-peer session slots, the table task, and the handle
//! the embedder keeps.

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bgp::rib_out::{Announcement, Announcements, FlowRoute, FlowRoutes};
use bgp::session::{Event, State};
use bgp::wire::{code, Message, Notification, WireOptions};
use net_types::Prefix;
use routes::{RealmChange, RouteTable};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::config::{PeerConfig, SpeakerConfig};
use crate::connection::{Command, Connection};
use crate::slots::Slots;
use bgp::session::Initiator;

/// Cease subcode for a connection from an address that is not a peer
/// (RFC 4486).
const CEASE_CONNECTION_REJECTED: u8 = 5;

/// The first wait after a failed connection to an active peer; it
/// doubles at each failure up to [`CONNECT_BACKOFF_MAX`].
const CONNECT_BACKOFF_MIN: Duration = Duration::from_millis(250);
const CONNECT_BACKOFF_MAX: Duration = Duration::from_secs(30);

/// How long a TCP connection to an active peer may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a connector looks whether its peer's session has ended.
const SESSION_POLL: Duration = Duration::from_millis(50);

/// How many session events may wait for the table task before sessions
/// stop reading from their sockets, which pushes back on the peers.
const EVENT_QUEUE: usize = 1024;

/// The speaker could not start.
#[derive(Debug)]
pub struct SpeakerError {
    /// The address that could not be bound.
    pub addr: SocketAddr,
    /// Why.
    pub error: std::io::Error,
}

impl fmt::Display for SpeakerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot listen on {}: {}", self.addr, self.error)?;
        match self.error.kind() {
            std::io::ErrorKind::PermissionDenied => {
                write!(f, " (ports below 1024 need root or CAP_NET_BIND_SERVICE)")
            }
            std::io::ErrorKind::AddrInUse => write!(
                f,
                " (another BGP daemon may be running; `ss -ltnp` shows which)"
            ),
            std::io::ErrorKind::AddrNotAvailable => {
                write!(f, " (that address is not configured on this host)")
            }
            _ => Ok(()),
        }
    }
}

impl std::error::Error for SpeakerError {}

/// Where a peer's session is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PeerState {
    /// No connection.
    Idle,
    /// Connected; our OPEN is sent.
    OpenSent,
    /// OPENs exchanged.
    OpenConfirm,
    /// Routes flow.
    Established,
}

impl From<State> for PeerState {
    fn from(s: State) -> Self {
        match s {
            State::Idle => PeerState::Idle,
            State::OpenSent => PeerState::OpenSent,
            State::OpenConfirm => PeerState::OpenConfirm,
            State::Established => PeerState::Established,
        }
    }
}

/// One configured peer as the speaker sees it now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerStatus {
    /// The peer's address.
    pub address: IpAddr,
    /// Its configured name, or its address.
    pub label: String,
    /// Its session's state.
    pub state: PeerState,
    /// How many times its session reached Established.
    pub established_count: u32,
    /// Why its last session ended, if one did.
    pub last_down: Option<String>,
    /// How many of our routes the peer has now (0 for peers without
    /// `announce = true`).
    pub announced: usize,
}

/// Realm changes caused by one session event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealmChanges {
    /// The peer whose event caused them.
    pub peer: IpAddr,
    /// The changes, in prefix order.
    pub changes: Vec<RealmChange>,
}

/// State shared between the tasks and the handle.
pub(crate) struct Shared {
    status: Mutex<BTreeMap<IpAddr, PeerStatus>>,
    table: Mutex<RouteTable>,
    /// What we announce. Sessions watch it and send the difference; a
    /// `watch` always holds the latest table, so a session never misses a
    /// change, however many happen while it is busy.
    pub(crate) announcements: watch::Sender<Arc<Announcements>>,
    /// The FlowSpec rules we announce, watched the same way.
    pub(crate) flows: watch::Sender<Arc<FlowRoutes>>,
}

/// Locks a mutex even if a task panicked while holding it: the data is
/// plain state that stays consistent between statements.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared {
    pub(crate) fn set_state(&self, addr: IpAddr, state: PeerState) {
        if let Some(s) = lock(&self.status).get_mut(&addr) {
            s.state = state;
        }
    }

    pub(crate) fn established(&self, addr: IpAddr) {
        if let Some(s) = lock(&self.status).get_mut(&addr) {
            s.state = PeerState::Established;
            s.established_count += 1;
        }
    }

    pub(crate) fn down(&self, addr: IpAddr, why: String) {
        if let Some(s) = lock(&self.status).get_mut(&addr) {
            s.state = PeerState::Idle;
            s.last_down = Some(why);
            s.announced = 0;
        }
    }

    pub(crate) fn set_announced(&self, addr: IpAddr, n: usize) {
        if let Some(s) = lock(&self.status).get_mut(&addr) {
            s.announced = n;
        }
    }

    fn established_count(&self, addr: IpAddr) -> u32 {
        lock(&self.status)
            .get(&addr)
            .map_or(0, |s| s.established_count)
    }
}

/// A speaker whose listeners are bound but whose tasks have not started.
#[derive(Debug)]
pub struct Speaker {
    config: Arc<SpeakerConfig>,
    listeners: Vec<TcpListener>,
}

impl Speaker {
    /// Binds every listen address. Fails on the first that cannot be bound,
    /// before anything runs.
    pub async fn bind(config: SpeakerConfig) -> Result<Speaker, SpeakerError> {
        let mut listeners = Vec::new();
        for &addr in &config.listen {
            let l = TcpListener::bind(addr)
                .await
                .map_err(|error| SpeakerError { addr, error })?;
            listeners.push(l);
        }
        Ok(Speaker {
            config: Arc::new(config),
            listeners,
        })
    }

    /// The bound addresses (with the real port when the configuration
    /// asked for port 0).
    pub fn local_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Starts accepting peers on the current tokio runtime. Realm changes
    /// are sent to `changes`; a closed receiver is fine.
    pub fn start(
        self,
        table: RouteTable,
        changes: mpsc::UnboundedSender<RealmChanges>,
    ) -> SpeakerHandle {
        let status = self
            .config
            .peers
            .iter()
            .map(|p| {
                let s = PeerStatus {
                    address: p.address,
                    label: p.label(),
                    state: PeerState::Idle,
                    established_count: 0,
                    last_down: None,
                    announced: 0,
                };
                (p.address, s)
            })
            .collect();
        let shared = Arc::new(Shared {
            status: Mutex::new(status),
            table: Mutex::new(table),
            announcements: watch::channel(Arc::default()).0,
            flows: watch::channel(Arc::default()).0,
        });
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (shutdown_tx, shutdown_rx) = watch::channel(false);
        let slots: Arc<tokio::sync::Mutex<Slots>> = Arc::default();
        let epoch = Instant::now();
        let table_task = tokio::spawn(table_task(Arc::clone(&shared), events_rx, changes));
        let mut accept_tasks: Vec<JoinHandle<()>> = self
            .listeners
            .into_iter()
            .map(|listener| {
                let acceptor = Acceptor {
                    config: Arc::clone(&self.config),
                    shared: Arc::clone(&shared),
                    events: events_tx.clone(),
                    shutdown: shutdown_rx.clone(),
                    slots: Arc::clone(&slots),
                    epoch,
                };
                tokio::spawn(acceptor.run(listener))
            })
            .collect();
        for peer in self.config.peers.iter().filter(|p| !p.passive) {
            let connector = Acceptor {
                config: Arc::clone(&self.config),
                shared: Arc::clone(&shared),
                events: events_tx.clone(),
                shutdown: shutdown_rx.clone(),
                slots: Arc::clone(&slots),
                epoch,
            };
            accept_tasks.push(tokio::spawn(connector.connect(peer.clone())));
        }
        SpeakerHandle {
            shared,
            slots,
            shutdown: shutdown_tx,
            accept_tasks,
            table_task,
        }
    }
}

/// Accepts connections on one listener.
struct Acceptor {
    config: Arc<SpeakerConfig>,
    shared: Arc<Shared>,
    events: mpsc::Sender<(IpAddr, Event)>,
    shutdown: watch::Receiver<bool>,
    slots: Arc<tokio::sync::Mutex<Slots>>,
    epoch: Instant,
}

impl Acceptor {
    async fn run(self, listener: TcpListener) {
        loop {
            let (stream, remote) = match listener.accept().await {
                Ok(x) => x,
                Err(e) => {
                    // Running out of file descriptors is the usual cause;
                    // pausing keeps the loop from spinning on it.
                    tracing::warn!(error = %e, "accepting a connection failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let Some(peer) = self.config.peer(remote.ip()).cloned() else {
                tracing::warn!(%remote, "connection from an address that is not a configured peer; rejected");
                tokio::spawn(reject(stream));
                continue;
            };
            tracing::debug!(peer = %peer.label(), %remote, "connection accepted");
            self.install(stream, peer, Initiator::Remote).await;
        }
    }

    /// Runs a session on a connection with `peer`, opened by `initiator`:
    /// beside a session still opening (a collision, see `slots`), or in
    /// place of an established one.
    async fn install(&self, stream: TcpStream, peer: PeerConfig, initiator: Initiator) {
        let address = peer.address;
        let label = peer.label();
        let (cmd_tx, cmd_rx) = mpsc::channel(8);
        let mut slots = self.slots.lock().await;
        let admission = slots.admit(address);
        let conn = Connection {
            stream,
            peer,
            speaker: Arc::clone(&self.config),
            shared: Arc::clone(&self.shared),
            events: self.events.clone(),
            commands: cmd_rx,
            shutdown: self.shutdown.clone(),
            epoch: self.epoch,
            id: admission.id,
            initiator,
            phase: admission.phase.clone(),
            slots: Arc::clone(&self.slots),
        };
        let previous = admission.replaced;
        if previous.is_empty() && slots.running(address) {
            tracing::info!(peer = %label, ?initiator, "a second connection while the first is opening: a collision, resolved when both have the OPEN");
        }
        // A replacing connection waits until the old sessions have ended,
        // so that their withdrawal reaches the table before its routes.
        let task = tokio::spawn(async move {
            for (old_cmd, old_task) in previous {
                tracing::info!(peer = %label, "new connection replaces the running session");
                let _ = old_cmd.send(Command::Stop).await;
                let _ = old_task.await;
            }
            conn.run().await;
        });
        slots.insert(address, (admission.id, admission.phase), cmd_tx, task);
    }

    /// Whether a session with `addr` is running (accepted or ours).
    async fn has_session(&self, addr: IpAddr) -> bool {
        self.slots.lock().await.running(addr)
    }

    /// Keeps a session with an active peer: connects whenever there is
    /// none, retrying with backoff, until the speaker shuts down.
    async fn connect(mut self, peer: PeerConfig) {
        let target = SocketAddr::new(peer.address, peer.port);
        let label = peer.label();
        let mut backoff = CONNECT_BACKOFF_MIN;
        loop {
            if *self.shutdown.borrow() {
                return;
            }
            if self.has_session(peer.address).await {
                // A session is up or coming up (maybe the peer connected
                // to us); look again shortly.
                tokio::select! {
                    () = tokio::time::sleep(SESSION_POLL) => {}
                    _ = self.shutdown.changed() => return,
                }
                continue;
            }
            let before = self.shared.established_count(peer.address);
            match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(target)).await {
                Ok(Ok(stream)) => {
                    tracing::debug!(peer = %label, %target, "connected");
                    self.install(stream, peer.clone(), Initiator::Local).await;
                    while self.has_session(peer.address).await {
                        tokio::select! {
                            () = tokio::time::sleep(SESSION_POLL) => {}
                            _ = self.shutdown.changed() => return,
                        }
                    }
                    // A session that came up earns a quick reconnect (the
                    // peer restarted); one that never did backs off like a
                    // refused connection.
                    if self.shared.established_count(peer.address) > before {
                        backoff = CONNECT_BACKOFF_MIN;
                    }
                }
                Ok(Err(e)) => tracing::debug!(peer = %label, %target, error = %e, "cannot connect"),
                Err(_) => tracing::debug!(peer = %label, %target, "connecting timed out"),
            }
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                _ = self.shutdown.changed() => return,
            }
            backoff = (backoff * 2).min(CONNECT_BACKOFF_MAX);
        }
    }
}

/// Tells a stranger it is not welcome, and closes.
async fn reject(mut stream: TcpStream) {
    let n = Message::Notification(Notification {
        code: code::CEASE,
        subcode: CEASE_CONNECTION_REJECTED,
        data: Vec::new(),
    });
    if let Ok(bytes) = n.encode(WireOptions::default()) {
        let _ = stream.write_all(&bytes).await;
    }
    let _ = stream.shutdown().await;
}

/// Applies session events to the table, one at a time, in arrival order.
async fn table_task(
    shared: Arc<Shared>,
    mut events: mpsc::Receiver<(IpAddr, Event)>,
    changes: mpsc::UnboundedSender<RealmChanges>,
) {
    while let Some((peer, event)) = events.recv().await {
        let batch = lock(&shared.table).apply(peer, &event);
        if !batch.is_empty() {
            tracing::debug!(%peer, changes = batch.len(), "realm changes");
            let _ = changes.send(RealmChanges {
                peer,
                changes: batch,
            });
        }
    }
}

/// The embedder's handle on a running speaker.
#[derive(Debug)]
pub struct SpeakerHandle {
    shared: Arc<Shared>,
    slots: Arc<tokio::sync::Mutex<Slots>>,
    shutdown: watch::Sender<bool>,
    accept_tasks: Vec<JoinHandle<()>>,
    table_task: JoinHandle<()>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

impl SpeakerHandle {
    /// Runs `f` on the routes table. The table task waits meanwhile, so
    /// keep it short.
    pub fn with_table<R>(&self, f: impl FnOnce(&RouteTable) -> R) -> R {
        f(&lock(&self.shared.table))
    }

    /// Every configured peer's status, by address.
    pub fn peers(&self) -> Vec<PeerStatus> {
        lock(&self.shared.status).values().cloned().collect()
    }

    /// Announces a route (or replaces the one for its prefix) to every
    /// peer with `announce = true`, now and whenever its session comes up
    /// again. Returns whether anything changed.
    pub fn announce(&self, route: Announcement) -> bool {
        self.shared.announcements.send_if_modified(|table| {
            if table.get(&route.prefix) == Some(&route) {
                return false;
            }
            Arc::make_mut(table).insert(route.prefix, route);
            true
        })
    }

    /// Withdraws the route for a prefix from every peer. Returns whether
    /// there was one.
    pub fn withdraw(&self, prefix: Prefix) -> bool {
        let prefix = prefix.network();
        self.shared.announcements.send_if_modified(|table| {
            if !table.contains_key(&prefix) {
                return false;
            }
            Arc::make_mut(table).remove(&prefix);
            true
        })
    }

    /// Announces a FlowSpec rule (or changes its rate) to every peer with
    /// `announce` and `flowspec` that negotiated its family. Returns
    /// whether anything changed; a rule that cannot be encoded changes
    /// nothing.
    pub fn announce_flow(&self, route: FlowRoute) -> bool {
        let Some(key) = route.key() else {
            return false;
        };
        self.shared.flows.send_if_modified(|table| {
            if table.get(&key) == Some(&route) {
                return false;
            }
            Arc::make_mut(table).insert(key, route);
            true
        })
    }

    /// Withdraws a FlowSpec rule. Returns whether it was announced.
    pub fn withdraw_flow(&self, rule: &bgp::flowspec::Rule) -> bool {
        let Ok(key) = rule.encode_nlri() else {
            return false;
        };
        self.shared.flows.send_if_modified(|table| {
            if !table.contains_key(&key) {
                return false;
            }
            Arc::make_mut(table).remove(&key);
            true
        })
    }

    /// The FlowSpec rules announced now.
    pub fn flows(&self) -> Vec<FlowRoute> {
        self.shared.flows.borrow().values().cloned().collect()
    }

    /// What is announced now, by prefix.
    pub fn announcements(&self) -> Vec<Announcement> {
        self.shared
            .announcements
            .borrow()
            .values()
            .cloned()
            .collect()
    }

    /// Asks a peer to resend its routes (ROUTE-REFRESH). Returns whether a
    /// session was there to ask; the session itself skips peers that did
    /// not announce the capability.
    pub async fn refresh(&self, peer: IpAddr) -> bool {
        let commands = self.slots.lock().await.commands(peer);
        match commands {
            Some(cmd) => cmd.send(Command::Refresh).await.is_ok(),
            None => false,
        }
    }

    /// Stops listening, ends every session with a Cease NOTIFICATION, and
    /// waits (at most two seconds each) for the sessions and the table task
    /// to finish. Take what you need from the table first.
    pub async fn shutdown(self) {
        for t in &self.accept_tasks {
            t.abort();
        }
        let _ = self.shutdown.send(true);
        let sessions = self.slots.lock().await.drain();
        let wait = async {
            for t in sessions {
                let _ = t.await;
            }
        };
        let _ = tokio::time::timeout(Duration::from_secs(2), wait).await;
        for t in self.accept_tasks {
            let _ = t.await;
        }
        // With the accept tasks and sessions gone, nobody holds an event
        // sender any more, so the table task drains its queue and ends.
        let _ = tokio::time::timeout(Duration::from_secs(2), self.table_task).await;
    }
}
