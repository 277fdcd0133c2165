//! The sessions the speaker runs, per peer address, and how two
//! connections with one peer are resolved (RFC 4271 §6.8).
//!
//! A peer normally has one session. When both sides connect at about the
//! same time (the peer is active and so are we), a second connection
//! arrives while the first is still opening: a collision. Both run until
//! the later of them has the peer's OPEN; then the one opened by the side
//! with the lower BGP identifier ([`bgp::session::collision_survivor`]) is
//! closed with Cease / Connection Collision Resolution. The peer applies
//! the same rule, so both ends keep the same connection.
//!
//! A new connection while a session is established replaces that session
//! instead, as it did before collision detection: the peer restarted and
//! our old session has not noticed yet. (RFC 4271 would close the new
//! connection, which leaves a restarted peer waiting out our hold timer,
//! up to four minutes without routes.)

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use bgp::session::{collision_survivor, Initiator};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::connection::Command;

/// How far a connection's session has come, shared between its task and
/// the slots.
/// It starts at 0: waiting for the peer's OPEN.
#[derive(Clone, Debug, Default)]
pub(crate) struct Phase(Arc<AtomicU8>);

const OPEN_CONFIRM: u8 = 1;
const ESTABLISHED: u8 = 2;

impl Phase {
    pub(crate) fn established(&self) {
        self.0.store(ESTABLISHED, Ordering::Release);
    }

    fn get(&self) -> u8 {
        self.0.load(Ordering::Acquire)
    }
}

/// One connection's session.
#[derive(Debug)]
pub(crate) struct Slot {
    id: u64,
    commands: mpsc::Sender<Command>,
    task: JoinHandle<()>,
    phase: Phase,
}

/// What a new connection learns when it is admitted.
pub(crate) struct Admission {
    pub id: u64,
    pub phase: Phase,
    /// Sessions it replaces: it must stop them and wait for their end
    /// (their routes withdrawn) before it starts.
    pub replaced: Vec<(mpsc::Sender<Command>, JoinHandle<()>)>,
}

/// What a connection whose session just got the peer's OPEN must do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    Keep,
    /// Close with Cease / Connection Collision Resolution.
    Close,
}

/// Every running session, by peer address.
#[derive(Debug, Default)]
pub(crate) struct Slots {
    by_peer: HashMap<IpAddr, Vec<Slot>>,
    next_id: u64,
}

impl Slots {
    /// Admits a new connection with `addr`. It runs beside a session that
    /// is still opening (a collision, resolved by [`Slots::resolve`]) and
    /// replaces an established one, or both of two that already collide.
    pub(crate) fn admit(&mut self, addr: IpAddr) -> Admission {
        let running = self.by_peer.entry(addr).or_default();
        running.retain(|s| !s.task.is_finished());
        let collides = running.len() == 1 && running[0].phase.get() != ESTABLISHED;
        let replaced = if collides {
            Vec::new()
        } else {
            running.drain(..).map(|s| (s.commands, s.task)).collect()
        };
        self.next_id += 1;
        Admission {
            id: self.next_id,
            phase: Phase::default(),
            replaced,
        }
    }

    /// Records the admitted connection's running task.
    pub(crate) fn insert(
        &mut self,
        addr: IpAddr,
        admission: (u64, Phase),
        commands: mpsc::Sender<Command>,
        task: JoinHandle<()>,
    ) {
        let (id, phase) = admission;
        self.by_peer.entry(addr).or_default().push(Slot {
            id,
            commands,
            task,
            phase,
        });
    }

    /// Connection `id` with `addr`, opened by `initiator`, has the peer's
    /// OPEN. Decides against the other connection with the same peer, if
    /// any: an established one wins; one that has the OPEN too is judged
    /// by the identifiers (`local` and `remote`: BGP identifier and AS),
    /// and told to close if it loses; one still waiting for the OPEN will
    /// judge when it has it.
    pub(crate) fn resolve(
        &self,
        addr: IpAddr,
        id: u64,
        initiator: Initiator,
        local: (Ipv4Addr, u32),
        remote: (Ipv4Addr, u32),
    ) -> Verdict {
        let Some(running) = self.by_peer.get(&addr) else {
            return Verdict::Keep;
        };
        if let Some(me) = running.iter().find(|s| s.id == id) {
            me.phase.0.store(OPEN_CONFIRM, Ordering::Release);
        }
        let Some(other) = running.iter().find(|s| s.id != id && !s.task.is_finished()) else {
            return Verdict::Keep;
        };
        match other.phase.get() {
            ESTABLISHED => Verdict::Close,
            OPEN_CONFIRM if collision_survivor(local, remote) == initiator => {
                // A full command queue means the other is busy stopping
                // already; either way it goes.
                let _ = other.commands.try_send(Command::CollisionLost);
                Verdict::Keep
            }
            OPEN_CONFIRM => Verdict::Close,
            // Still waiting for the OPEN: it judges when the OPEN comes.
            _ => Verdict::Keep,
        }
    }

    /// Whether any session with `addr` is running.
    pub(crate) fn running(&self, addr: IpAddr) -> bool {
        self.by_peer
            .get(&addr)
            .is_some_and(|r| r.iter().any(|s| !s.task.is_finished()))
    }

    /// The command queue of the session with `addr` that has come
    /// furthest.
    pub(crate) fn commands(&self, addr: IpAddr) -> Option<mpsc::Sender<Command>> {
        self.by_peer
            .get(&addr)?
            .iter()
            .filter(|s| !s.task.is_finished())
            .max_by_key(|s| s.phase.get())
            .map(|s| s.commands.clone())
    }

    /// Every session's task, for shutdown.
    pub(crate) fn drain(&mut self) -> Vec<JoinHandle<()>> {
        self.by_peer
            .drain()
            .flat_map(|(_, r)| r.into_iter().map(|s| s.task))
            .collect()
    }
}
