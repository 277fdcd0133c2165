//! Telling the operator's own tools: a notify script run with arguments
//! and a JSON report on stdin, or the report POSTed to a webhook. The
//! guard's notify rung and latency's alarms both use it.
//!
//! Neither ever holds up the caller's loop: a thread writes the script's
//! stdin and reaps it, or sends the webhook with a limit on the whole
//! exchange. At most [`MAX_IN_FLIGHT`] run at once per [`Notifier`];
//! beyond, one is skipped and logged, so a hung receiver or a script that
//! never exits cannot pile up threads.

use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// The most scripts and webhooks running at once for one notifier.
pub const MAX_IN_FLIGHT: usize = 32;

/// How long a webhook may take, connection included: a hung receiver
/// must not hold a slot for long.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Runs notify scripts and sends webhooks without waiting for them.
#[derive(Clone, Default)]
pub struct Notifier {
    in_flight: Arc<AtomicUsize>,
}

impl Notifier {
    /// Takes a slot, or logs that `what` is skipped.
    fn slot(&self, what: &str) -> Option<Slot> {
        if self.in_flight.fetch_add(1, Ordering::SeqCst) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!("{MAX_IN_FLIGHT} notifications still running; {what} is skipped");
            return None;
        }
        Some(Slot(self.in_flight.clone()))
    }

    /// Runs `script ARGS…` with `report` on its stdin.
    pub fn script(&self, script: &str, args: &[String], report: Vec<u8>) {
        let Some(slot) = self.slot(&format!("the notify script {script}")) else {
            return;
        };
        let mut child = match Command::new(script)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!("cannot run the notify script {script}: {e}");
                return;
            }
        };
        let script = script.to_owned();
        let spawned = std::thread::Builder::new()
            .name("notify".into())
            .spawn(move || {
                let _slot = slot;
                if let Some(mut stdin) = child.stdin.take() {
                    // A script that does not read its stdin closes the
                    // pipe: its choice, not an error.
                    let _ = stdin.write_all(&report);
                }
                match child.wait() {
                    Ok(s) if s.success() => {}
                    Ok(s) => tracing::warn!("the notify script {script} exited with {s}"),
                    Err(e) => tracing::warn!("the notify script {script}: {e}"),
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start a thread for the notify script: {e}");
        }
    }

    /// POSTs `report` (JSON) to `url`; `action` names it in the log.
    pub fn webhook(&self, url: &str, action: &str, report: Vec<u8>) {
        let Some(slot) = self.slot(&format!("the webhook {url}")) else {
            return;
        };
        let (url, action) = (url.to_owned(), action.to_owned());
        let spawned = std::thread::Builder::new()
            .name("webhook".into())
            .spawn(move || {
                let _slot = slot;
                send(&url, &action, &report);
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start a thread for the webhook: {e}");
        }
    }
}

/// A taken slot, given back when the script or webhook is done (or its
/// thread could not start).
struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One webhook call, on the caller's thread.
fn send(url: &str, action: &str, report: &[u8]) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(WEBHOOK_TIMEOUT))
        .http_status_as_error(false)
        .user_agent(concat!("tollgate/", env!("CARGO_PKG_VERSION")))
        .build()
        .into();
    match agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(report)
    {
        Ok(r) if r.status().is_success() => tracing::info!(url, action, "webhook sent"),
        Ok(r) => tracing::warn!(
            url,
            action,
            status = r.status().as_u16(),
            "the webhook answered with an error"
        ),
        Err(e) => tracing::warn!(url, action, "the webhook failed: {e}"),
    }
}
