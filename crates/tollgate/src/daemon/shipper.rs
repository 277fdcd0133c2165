//! Agents and a central tollgate, the shell's side (docs/agents.md).
//!
//! - [`add`]: on a central, carries out the engine's `AddBatch`: an
//!   agent's batch added to the history through the daemon's own store
//!   (the daemon stays the history's only writer), exactly once by
//!   writer and sequence.
//! - [`start`]: on an agent (the policy has `[central]`), a thread that
//!   ships the local history, which is the spool, to the central: each
//!   closed slot in order, then what was added to the recent slots after
//!   they shipped (flow records), retried with backoff while the central
//!   is unreachable. What to send and when is decided by
//!   `engine::shipping::Shipper` and `engine::shipped::Ledger` (pure);
//!   this thread reads the local history (through its own connection; it
//!   never writes it), saves the ledger crash-safe before each batch goes
//!   out, and speaks HTTP(S) through `central_client`.
//!
//! Crash points (`TOLLGATE_CRASH_AT`): `ship-saved` (a batch saved in
//! the ledger, not sent), `ship-answered` (the central answered, the
//! ledger not updated).

use super::central_clickhouse::ClickHouseCentral;
use super::central_client::{Central, CentralLink, Delivery};
use super::clock::Clock;
use crate::error::{Error, Result};
use crate::shipping_status::ShippingStatus;
use crate::state_dir::StateDir;
use accounting::{Slot, SlotCoverage};
use engine::io::Input;
use engine::shipped::{Ledger, Resume};
use engine::shipping::{AddOutcome, ShippedBatch, Shipper, Step};
use history::{AddBatch, SampleQuery, Store, StoreError, Tenants};
use std::path::{Path, PathBuf};
use std::time::Duration;
/// Carries out an agent's batch on the central's history.
pub fn add(store: &mut dyn Store, id: u64, batch: &ShippedBatch) -> Input {
    let r = store.add(&AddBatch {
        writer: &batch.writer,
        sequence: batch.sequence,
        samples: &batch.samples,
        coverage: &batch.coverage,
        state: &[],
    });
    let outcome = match r {
        Ok(report) => AddOutcome::Committed {
            refused: report.refused.iter().map(ToString::to_string).collect(),
        },
        Err(StoreError::AlreadyAppended { last, .. }) => AddOutcome::AlreadyAdded { last },
        Err(
            e @ (StoreError::Database { .. }
            | StoreError::Backend { .. }
            | StoreError::Unreachable { .. }),
        ) => AddOutcome::Failed {
            error: e.to_string(),
        },
        Err(e) => AddOutcome::Invalid {
            error: e.to_string(),
        },
    };
    Input::BatchAdded {
        id,
        writer: batch.writer.clone(),
        sequence: batch.sequence,
        last_slot: engine::shipping::last_slot(batch),
        bytes: engine::shipping::bytes(batch),
        outcome,
    }
}

/// On a central, the agents saved before a restart (none if the file is
/// absent; an unreadable one is logged and left: the counts start again).
pub fn saved_agents(state: &StateDir) -> Option<engine::shipping::Agents> {
    let path = state.agents_status();
    let bytes = std::fs::read(&path).ok()?;
    serde_json::from_slice(&bytes)
        .inspect_err(|e| tracing::warn!("{}: {e}; the agents' counts start again", path.display()))
        .ok()
}

/// On a central, writes where the agents stand for `tollgate status`
/// (best effort: the figures live in the engine, and a failure is only
/// logged).
pub fn save_agents(state: &StateDir, agents: &engine::shipping::Agents) {
    let written = serde_json::to_vec_pretty(agents)
        .map_err(|e| e.to_string())
        .and_then(|b| {
            crate::state_dir::replace_atomically(&state.agents_status(), &b)
                .map_err(|e| e.to_string())
        });
    if let Err(e) = written {
        tracing::warn!("cannot write the agents' status: {e}");
    }
}

/// How often the local history is looked at for newly closed slots.
const POLL: Duration = Duration::from_secs(1);

// The ledger's late window is the flow collector's lateness.
const _: () = assert!(
    engine::shipped::LATE_SLOTS == flows::CLOCK_SKEW_MILLIS / 300_000 + 1,
    "the late window must cover a flow record's lateness"
);

/// The shipper's world: where and as whom it ships, where it keeps its
/// books.
struct Shell {
    store: Box<dyn Store + Send>,
    central: Box<dyn CentralLink>,
    writer: String,
    clock: Clock,
    ledger_path: PathBuf,
    status_path: PathBuf,
    status: ShippingStatus,
}

/// Resolves a path of the policy relative to its folder.
fn beside(config: &Path, p: &str) -> PathBuf {
    let p = Path::new(p);
    if p.is_absolute() {
        p.to_path_buf()
    } else {
        config.parent().unwrap_or(Path::new(".")).join(p)
    }
}

/// Starts the shipper if the policy has `[central]`. Refuses to start
/// the daemon when the token file, the CA file or the ledger cannot be
/// read: an agent that cannot ship would otherwise only say so in its
/// log.
pub fn start(config: &Path, state: &StateDir, policy: &policy::Policy, clock: Clock) -> Result<()> {
    let Some(central) = &policy.central else {
        return Ok(());
    };
    let writer = match &central.writer {
        Some(w) => w.clone(),
        None => host_name()?,
    };
    let link: Box<dyn CentralLink> = match &central.target {
        policy::CentralTarget::Tollgate { token_file, ca } => {
            let token_path = beside(config, token_file);
            let token = std::fs::read_to_string(&token_path)
                .map_err(|e| {
                    Error::invalid(format!(
                        "[central] token_file {}: {e}",
                        token_path.display()
                    ))
                    .hint("write the token made on the central (`tollgate token add NAME --scope agent`) into that file")
                })?
                .trim()
                .to_string();
            let ca = ca.as_deref().map(|p| beside(config, p));
            Box::new(Central::new(&central.url, token, ca.as_deref())?)
        }
        policy::CentralTarget::ClickHouse { database } => {
            Box::new(ClickHouseCentral::new(&central.url, database))
        }
    };
    let ledger_path = state.shipping_ledger();
    let ledger = load_ledger(&ledger_path)?;
    let store = state.history_store(policy.history.as_ref(), false)?;
    tracing::info!(central = %central.url, writer = %writer, "shipping closed slots to the central history");
    let shell = Shell {
        store,
        status: ShippingStatus {
            central: central.url.clone(),
            writer: writer.clone(),
            ..ShippingStatus::default()
        },
        central: link,
        writer,
        clock,
        ledger_path,
        status_path: state.shipping_status(),
    };
    std::thread::Builder::new()
        .name("shipper".into())
        .spawn(move || ship(shell, ledger))
        .map_err(|e| Error::runtime(format!("cannot start the shipper thread: {e}")))?;
    Ok(())
}

/// The ledger on disk; a new one if there is none.
fn load_ledger(path: &Path) -> Result<Ledger> {
    match std::fs::read(path) {
        Ok(b) => serde_json::from_slice(&b).map_err(|e| {
            Error::invalid(format!("the shipping ledger {}: {e}", path.display())).hint(
                "move it aside to start over: the agent then takes over the central's standing and ships the slots after it (late samples of the slots before are not shipped)",
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Ledger::new()),
        Err(e) => Err(Error::runtime(format!(
            "cannot read the shipping ledger {}: {e}",
            path.display()
        ))),
    }
}

/// This host's name, the writer's name when the policy gives none.
fn host_name() -> Result<String> {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map_err(|e| Error::runtime(format!("cannot read the host name: {e}")))?
        .trim()
        .to_string();
    if policy::valid_writer(&name) {
        Ok(name)
    } else {
        Err(
            Error::invalid(format!("the host name `{name}` cannot name a writer"))
                .hint("set [central] writer = \"NAME\" in the policy"),
        )
    }
}

/// The shipper's loop: never returns while the process runs.
fn ship(mut shell: Shell, mut ledger: Ledger) {
    let mut shipper = Shipper::new();
    // The flow collector's last batch when the late window was last read:
    // a new one means samples may have landed in shipped slots.
    let mut checked: Option<Option<u64>> = None;
    shell
        .status
        .set_parked(ledger.parked(), ledger.parked_total());
    shell.publish(&ledger);
    loop {
        let now = shell.clock.now();
        let version = match shell.store.writer_state(crate::collector::FLOWS_WRITER) {
            Ok(s) => s.map(|s| s.sequence),
            Err(e) => {
                tracing::error!("shipper: cannot read the local history: {e}");
                std::thread::sleep(POLL);
                continue;
            }
        };
        let closed = match closed_slots(shell.store.as_ref(), ledger.through(), now) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("shipper: cannot read the local history: {e}");
                std::thread::sleep(POLL);
                continue;
            }
        };
        let changed = checked != Some(version);
        let result = match shipper.next(now, &ledger, &closed, changed) {
            Step::Idle => {
                std::thread::sleep(POLL);
                continue;
            }
            Step::WaitUntil(at) => {
                std::thread::sleep(shell.clock.until(at).min(POLL));
                continue;
            }
            Step::Ask => shell.ask(&mut ledger).map(|()| shipper.answered()),
            Step::Resend => shell.deliver(&mut ledger),
            Step::Send(slot) => shell.first(&mut ledger, slot),
            Step::Recheck => {
                checked = Some(version);
                shipper.checked(now);
                shell.recheck(&mut ledger)
            }
        };
        match result {
            Ok(()) => {
                shipper.delivered();
                if shell.status.error.take().is_some() {
                    tracing::info!("shipper: the central answers again");
                    shell.status.error_since = None;
                    shell.status.failures = 0;
                    shell.publish(&ledger);
                }
            }
            Err(e) => {
                shipper.failed(shell.clock.now());
                shell.status.failures = shipper.failures();
                // Once per kind of trouble, not once per retry.
                if shell.status.error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(
                        failures = shipper.failures(),
                        "shipper: {e}; retrying with backoff"
                    );
                    shell.status.error = Some(e);
                    shell.status.error_since.get_or_insert(shell.clock.now());
                    shell.publish(&ledger);
                }
            }
        }
    }
}

impl Shell {
    /// Asks the central where this writer stands, and reconciles.
    fn ask(&mut self, ledger: &mut Ledger) -> std::result::Result<(), String> {
        let standing = self.central.standing(&self.writer)?;
        let before = ledger.clone();
        match ledger.resume(standing) {
            Resume::Agreed => {}
            Resume::TookOver { through } => tracing::warn!(
                writer = %self.writer,
                sequence = %standing.map_or("none".to_string(), |s| s.to_string()),
                "shipper: the central holds this writer's batches through slot {} beyond this agent's ledger; shipping the slots after it (late samples of the slots before cannot be told apart and are not shipped)",
                through.0
            ),
            Resume::CentralBehind { central, ledger: l } => tracing::warn!(
                writer = %self.writer,
                "shipper: the central holds this writer's batches up to {}, fewer than the {l} it acknowledged (was its history restored?); shipping goes on after them",
                central.map_or("none".to_string(), |c| c.to_string())
            ),
        }
        tracing::info!(
            writer = %self.writer,
            sequence = %standing.map_or("none".to_string(), |s| s.to_string()),
            "the central's standing"
        );
        if *ledger != before {
            self.save(ledger, before)?;
        }
        Ok(())
    }

    /// Makes the first batch of a closed slot and sends it.
    fn first(&mut self, ledger: &mut Ledger, slot: Slot) -> std::result::Result<(), String> {
        let (samples, coverage) = self.read(slot, slot.next())?;
        let before = ledger.clone();
        if ledger
            .first(&self.writer, slot, &samples, &coverage)
            .is_none()
        {
            return Ok(());
        }
        self.save(ledger, before)?;
        self.deliver(ledger)
    }

    /// Reads the late window again and ships what was added to it.
    fn recheck(&mut self, ledger: &mut Ledger) -> std::result::Result<(), String> {
        let Some((from, to)) = ledger.late_window() else {
            return Ok(());
        };
        let (samples, coverage) = self.read(from, to)?;
        let before = ledger.clone();
        let Some(b) = ledger.difference(&self.writer, &samples, &coverage) else {
            return Ok(());
        };
        tracing::info!(
            sequence = b.sequence,
            samples = b.samples.len(),
            bytes = b.samples.iter().map(|s| s.bytes).sum::<u64>(),
            "shipper: samples added to shipped slots"
        );
        self.save(ledger, before)?;
        self.deliver(ledger)
    }

    /// Sends the pending batch and books the answer.
    fn deliver(&mut self, ledger: &mut Ledger) -> std::result::Result<(), String> {
        let Some(batch) = ledger.pending().cloned() else {
            return Ok(());
        };
        let delivery = self.central.post(&batch)?;
        crate::crash_point::reached("ship-answered");
        match delivery {
            Delivery::Acknowledged(sequence) => {
                ledger.acknowledged(sequence);
                tracing::debug!(sequence = batch.sequence, "batch shipped");
                self.status.acknowledged += 1;
                self.status.acknowledged_at = Some(self.clock.now());
            }
            Delivery::Refused(why) => {
                ledger.park(&why, self.clock.now());
                tracing::error!(
                    sequence = batch.sequence,
                    samples = batch.samples.len(),
                    "shipper: the central refused batch {} for its content; parked (see `tollgate status`), the next batches go on: {why}",
                    batch.sequence
                );
                self.status
                    .set_parked(ledger.parked(), ledger.parked_total());
            }
        }
        // Not saved: the disk still holds the batch as pending, so after a
        // restart it is sent again and the central answers that it has it
        // (or refuses it again: parked again).
        if let Err(e) = self.write_ledger(ledger) {
            tracing::warn!("shipper: cannot save the shipping ledger: {e}");
        }
        self.publish(ledger);
        Ok(())
    }

    /// Saves the ledger crash-safe; if it cannot, puts back `before` (a
    /// batch not on disk is never sent).
    fn save(&mut self, ledger: &mut Ledger, before: Ledger) -> std::result::Result<(), String> {
        if let Err(e) = self.write_ledger(ledger) {
            *ledger = before;
            return Err(format!("cannot save the shipping ledger: {e}"));
        }
        if ledger.pending().is_some() {
            crate::crash_point::reached("ship-saved");
        }
        Ok(())
    }

    fn write_ledger(&self, ledger: &Ledger) -> std::result::Result<(), String> {
        let b = serde_json::to_vec(ledger).map_err(|e| e.to_string())?;
        crate::state_dir::replace_atomically(&self.ledger_path, &b).map_err(|e| e.to_string())
    }

    /// Writes the status file (best effort: it is only shown).
    fn publish(&mut self, ledger: &Ledger) {
        let s = &mut self.status;
        s.through = ledger.through().map(|t| t.0);
        s.through_end = ledger.through().map(|t| t.next().start());
        s.last_sequence = ledger.last_sequence();
        s.pending = ledger.pending().map(|p| p.sequence);
        let written = serde_json::to_vec_pretty(&self.status)
            .map_err(|e| e.to_string())
            .and_then(|b| {
                crate::state_dir::replace_atomically(&self.status_path, &b)
                    .map_err(|e| e.to_string())
            });
        if let Err(e) = written {
            tracing::warn!("shipper: cannot write its status: {e}");
        }
    }

    /// The samples and coverage of the slots `[from, to)`.
    fn read(
        &self,
        from: Slot,
        to: Slot,
    ) -> std::result::Result<(Vec<accounting::Sample>, Vec<SlotCoverage>), String> {
        let fail = |e: StoreError| {
            format!(
                "cannot read slots {}..{} from the local history: {e}",
                from.0, to.0
            )
        };
        let samples = self
            .store
            .samples(&SampleQuery {
                tenants: Tenants::All,
                from,
                to,
            })
            .map_err(fail)?;
        let coverage = self.store.coverage(from, to).map_err(fail)?;
        Ok((samples, coverage))
    }
}

/// The most slots looked at per pass: the oldest unshipped one is all
/// the shipper needs.
const WINDOW: usize = 1024;

/// The slots the local history holds as closed, after `through`.
fn closed_slots(
    store: &dyn Store,
    through: Option<Slot>,
    now: jiff::Timestamp,
) -> std::result::Result<Vec<Slot>, StoreError> {
    let from = through.map_or(Slot(1), Slot::next);
    let to = Slot::containing(now).next();
    if from >= to {
        return Ok(Vec::new());
    }
    let mut slots: Vec<Slot> = store.coverage(from, to)?.iter().map(|c| c.slot).collect();
    slots.sort();
    slots.dedup();
    slots.truncate(WINDOW);
    Ok(slots)
}
