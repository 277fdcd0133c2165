//! Agents and a central tollgate, the shell's side (docs/agents.md).
//!
//! - [`add`]: on a central, carries out the engine's `AddBatch`: an
//!   agent's batch added to the history through the daemon's own store
//!   (the daemon stays the history's only writer), exactly once by
//!   writer and sequence.
//! - [`start`]: on an agent (the policy has `[central]`), a thread that
//!   ships the closed slots of the local history, which is the spool, to
//!   the central: one batch per slot, its sequence the slot's index, in
//!   order, retried with backoff while the central is unreachable. What
//!   to send and when is decided by `engine::shipping::Shipper` (pure);
//!   this thread only reads the local history and speaks HTTP. It reads
//!   the history through its own connection and never writes it.
//!
//! The HTTP client is a few lines of blocking HTTP/1.1 over a
//! `TcpStream` (one request per connection): the thread has nothing else
//! to do while it waits, and it keeps the binary free of another client
//! stack. `https` is not supported yet.

use super::clock::Clock;
use crate::error::{Error, Result};
use crate::state_dir::StateDir;
use accounting::{Slot, SlotCoverage};
use engine::io::Input;
use engine::shipping::{AddOutcome, ShippedBatch, Shipper, Step};
use history::{AddBatch, SampleQuery, Store, StoreError, Tenants};
use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs as _};
use std::path::Path;
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
        Err(e @ (StoreError::Database { .. } | StoreError::Backend { .. })) => AddOutcome::Failed {
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
        outcome,
    }
}

/// How long one HTTP exchange may take before it counts as failed.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often the local history is looked at for newly closed slots.
const POLL: Duration = Duration::from_secs(1);

/// Where and as whom to ship.
struct Target {
    /// `host:port`.
    authority: String,
    token: String,
    writer: String,
}

/// Starts the shipper if the policy has `[central]`. Refuses to start
/// the daemon when the token file cannot be read: an agent that cannot
/// ship would otherwise only say so in its log.
pub fn start(config: &Path, state: &StateDir, policy: &policy::Policy, clock: Clock) -> Result<()> {
    let Some(central) = &policy.central else {
        return Ok(());
    };
    let token_path = {
        let p = Path::new(&central.token_file);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            config.parent().unwrap_or(Path::new(".")).join(p)
        }
    };
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
    let writer = match &central.writer {
        Some(w) => w.clone(),
        None => host_name()?,
    };
    let target = Target {
        authority: central
            .url
            .strip_prefix("http://")
            .unwrap_or(&central.url)
            .to_string(),
        token,
        writer,
    };
    let store = state.history_store(policy.history.as_ref(), false)?;
    tracing::info!(central = %central.url, writer = %target.writer, "shipping closed slots to the central tollgate");
    std::thread::Builder::new()
        .name("shipper".into())
        .spawn(move || ship(store, &target, clock))
        .map_err(|e| Error::runtime(format!("cannot start the shipper thread: {e}")))?;
    Ok(())
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
fn ship(store: Box<dyn Store + Send>, target: &Target, clock: Clock) {
    let mut shipper = Shipper::new();
    let mut last_error = String::new();
    loop {
        let now = clock.now();
        let closed = match closed_slots(store.as_ref(), shipper.acked(), now) {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("shipper: cannot read the local history: {e}");
                std::thread::sleep(POLL);
                continue;
            }
        };
        let result = match shipper.next(now, &closed) {
            Step::Idle => {
                std::thread::sleep(POLL);
                continue;
            }
            Step::WaitUntil(at) => {
                std::thread::sleep(clock.until(at).min(POLL));
                continue;
            }
            Step::Ask => ask(target).map(|seq| {
                tracing::info!(writer = %target.writer, sequence = ?seq, "the central's standing");
                shipper.answered(seq);
            }),
            Step::Send(slot) => send(store.as_ref(), target, slot).map(|seq| {
                tracing::debug!(slot = slot.0, sequence = seq, "slot shipped");
                shipper.acknowledged(slot, seq);
            }),
        };
        match result {
            Ok(()) => {
                if !last_error.is_empty() {
                    tracing::info!("shipper: the central answers again");
                    last_error.clear();
                }
            }
            Err(e) => {
                shipper.failed(clock.now());
                // Once per kind of trouble, not once per retry.
                if e != last_error {
                    tracing::warn!(
                        failures = shipper.failures(),
                        "shipper: {e}; retrying with backoff"
                    );
                    last_error = e;
                }
            }
        }
    }
}

/// The most slots looked at per pass: the oldest unshipped one is all
/// the shipper needs.
const WINDOW: usize = 1024;

/// The slots the local history holds as closed, after `acked`.
fn closed_slots(
    store: &dyn Store,
    acked: Option<Option<u64>>,
    now: jiff::Timestamp,
) -> std::result::Result<Vec<Slot>, StoreError> {
    let Some(acked) = acked else {
        return Ok(Vec::new());
    };
    let from = match acked {
        Some(a) => Slot(i64::try_from(a).unwrap_or(i64::MAX).saturating_add(1)),
        None => Slot(1),
    };
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

/// Sends one slot; returns the writer's committed sequence.
fn send(store: &dyn Store, target: &Target, slot: Slot) -> std::result::Result<u64, String> {
    let samples = store
        .samples(&SampleQuery {
            tenants: Tenants::All,
            from: slot,
            to: slot.next(),
        })
        .map_err(|e| format!("cannot read slot {} from the local history: {e}", slot.0))?;
    let coverage: Vec<SlotCoverage> = store
        .coverage(slot, slot.next())
        .map_err(|e| format!("cannot read slot {} from the local history: {e}", slot.0))?;
    let body = serde_json::json!({
        "writer": target.writer,
        "sequence": slot.0,
        "samples": samples,
        "coverage": coverage,
    })
    .to_string();
    let (status, text) = exchange(target, "POST", "/api/v1/history/batches", Some(&body))?;
    if status != 200 {
        return Err(format!(
            "the central refused slot {}: {status} {text}",
            slot.0
        ));
    }
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("the central's answer: {e}"))?;
    v["sequence"]
        .as_u64()
        .ok_or_else(|| format!("the central's answer has no sequence: {text}"))
}

/// Asks the central where this writer stands.
fn ask(target: &Target) -> std::result::Result<Option<u64>, String> {
    let path = format!("/api/v1/agents/{}", target.writer);
    let (status, text) = exchange(target, "GET", &path, None)?;
    if status != 200 {
        return Err(format!(
            "the central answered {status} to GET {path}: {text}"
        ));
    }
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("the central's answer: {e}"))?;
    Ok(v["sequence"].as_u64())
}

/// One HTTP/1.1 request on its own connection; the status and the body.
fn exchange(
    target: &Target,
    method: &str,
    path: &str,
    body: Option<&str>,
) -> std::result::Result<(u16, String), String> {
    let unreachable =
        |e: std::io::Error| format!("the central at {} is unreachable: {e}", target.authority);
    let addr = target
        .authority
        .to_socket_addrs()
        .map_err(unreachable)?
        .next()
        .ok_or_else(|| format!("{} resolves to no address", target.authority))?;
    let mut s = TcpStream::connect_timeout(&addr, EXCHANGE_TIMEOUT).map_err(unreachable)?;
    s.set_read_timeout(Some(EXCHANGE_TIMEOUT))
        .map_err(unreachable)?;
    s.set_write_timeout(Some(EXCHANGE_TIMEOUT))
        .map_err(unreachable)?;
    let body = body.unwrap_or("");
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        target.authority,
        target.token,
        body.len()
    );
    s.write_all(head.as_bytes()).map_err(unreachable)?;
    s.write_all(body.as_bytes()).map_err(unreachable)?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).map_err(unreachable)?;
    parse_response(&raw)
}

/// The status and body of a whole HTTP/1.1 response (read to the
/// connection's end), de-chunked if it was sent in chunks.
fn parse_response(raw: &[u8]) -> std::result::Result<(u16, String), String> {
    let text = String::from_utf8_lossy(raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| "the central's answer has no header end".to_string())?;
    let status: u16 = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("the central's answer has no status: {head}"))?;
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    if !chunked {
        return Ok((status, body.to_string()));
    }
    let mut out = String::new();
    let mut rest = body;
    loop {
        let (size, after) = rest
            .split_once("\r\n")
            .ok_or_else(|| "a chunk without its size".to_string())?;
        let size = usize::from_str_radix(size.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|e| format!("a chunk size: {e}"))?;
        if size == 0 {
            return Ok((status, out));
        }
        let chunk = after
            .get(..size)
            .ok_or_else(|| "a chunk shorter than its size".to_string())?;
        out.push_str(chunk);
        rest = after.get(size + 2..).unwrap_or("");
    }
}

#[cfg(test)]
mod tests {
    use super::parse_response;

    #[test]
    fn responses_are_read_whole_or_dechunked() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n{\"a\"}";
        assert_eq!(parse_response(plain).unwrap(), (200, "{\"a\"}".into()));
        let chunked =
            b"HTTP/1.1 422 Unprocessable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n{\"b\r\n2\r\n\"}\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked).unwrap(), (422, "{\"b\"}".into()));
        assert!(parse_response(b"garbage").is_err());
    }
}
