//! `tollgate run`: the daemon.
//!
//! One loop, one thread (plus an optional metrics thread):
//! - every `--interval`, read the counters of the classes tollgate owns,
//!   turn them into per tenant × realm × direction × band readings
//!   ([`feeds`]) and commit what the accountant closed ([`books`]);
//! - every `--reconcile`, observe → compile → diff → apply as `tollgate
//!   apply` does, reading every accounted class right before it is deleted
//!   ([`kernel`]);
//! - every few minutes, when enabled, the overage automation
//!   ([`automation`]) and the store's retention.
//!
//! Signals: SIGHUP reloads the policy (a policy with errors, or one that
//! does not compile for this host, is refused with its diagnostics logged,
//! and the running one is kept); SIGTERM and SIGINT read the counters one
//! last time, commit, and exit 0.

mod automation;
mod books;
mod kernel;
mod metrics;
mod overage_watch;

pub use kernel::read_counters;

use crate::cli::daemon::RunArgs;
use crate::saved_routes::{Refresh, SavedRoutes};
use crate::state_dir::StateDir;
use books::Books;
use compiler::{HostFacts, Live};
use engine::feeds::{self, identity, Counter, Feeds};
use jiff::Timestamp;
use linux_dataplane::Dataplane;
use metrics::Metrics;
use policy::{Loaded, Policy};
use settings::Settings;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The running policy: what the kernel is reconciled with.
struct Running {
    loaded: Loaded,
    policy: Policy,
}

struct Daemon {
    path: PathBuf,
    state: StateDir,
    /// The settings file's own settings, resolved again with each policy.
    file_settings: Settings,
    /// The settings in force: the file's with the running policy's
    /// `[billing]` and `[overage]`.
    settings: Settings,
    dp: Dataplane,
    books: Books,
    running: Running,
    /// The routes' realms for `running`, reread when the saved table changes.
    route_realms: SavedRoutes,
    feeds: Feeds,
    metrics: Arc<Metrics>,
    reconcile_every: Duration,
    last_reconcile: Option<Instant>,
    last_overage: Option<Instant>,
    last_retention: Option<Instant>,
    /// The flow collector, when the policy has `[flows]`.
    flows: Option<crate::collector::FlowBooks>,
    /// The routes table reads the collector's tables were built from.
    flows_routes: u64,
    /// The overage automation's running counts per tenant, kept between
    /// checks so that a check reads only the slots closed since the last.
    overage_watch: Option<overage_watch::OverageWatch>,
}

/// Runs the daemon until SIGTERM or SIGINT.
pub fn run(path: &Path, state: &StateDir, args: &RunArgs) -> Result<ExitCode, String> {
    let file_settings =
        crate::settings_file::file_settings(&args.settings).map_err(|e| e.to_string())?;
    let running = load_running(path)?;
    let settings = Settings::resolve(file_settings.clone(), Some(&running.loaded))
        .map_err(|e| e.to_string())?;
    let books = Books::open(state.root(), settings.accountant)?;
    let metrics = Arc::new(Metrics::default());
    if let Some(addr) = args.listen {
        metrics::serve(addr, metrics.clone())?;
    }
    let dp = Dataplane::open().map_err(|e| e.to_string())?;
    let mut d = Daemon {
        path: path.to_path_buf(),
        state: state.clone(),
        file_settings,
        settings,
        dp,
        books,
        running,
        route_realms: SavedRoutes::new(state.routes_table()),
        feeds: Feeds::new(),
        metrics,
        reconcile_every: args.reconcile,
        last_reconcile: None,
        last_overage: None,
        last_retention: None,
        flows: None,
        flows_routes: 0,
        overage_watch: None,
    };
    if let Refresh::Failed(e) = d.route_realms.refresh(&d.running.policy) {
        return Err(e);
    }
    if let Some(flows) = d.running.policy.flows.clone() {
        let realms = d.route_realms.current().to_vec();
        d.flows = Some(crate::collector::FlowBooks::start(
            &d.running.policy,
            &flows,
            state.root(),
            &realms,
        )?);
        d.flows_routes = d.route_realms.version();
    }
    tracing::info!(
        policy = %path.display(),
        state_dir = %state.root().display(),
        settings = %d.settings.source,
        interval = ?args.interval,
        reconcile = ?args.reconcile,
        "tollgate daemon starting"
    );
    let tick = args
        .interval
        .min(args.reconcile)
        .max(Duration::from_millis(100));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the signal runtime: {e}"))?;
    rt.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        let sig = |k| signal(k).map_err(|e| format!("cannot watch signals: {e}"));
        let (mut hup, mut term, mut int) = (
            sig(SignalKind::hangup())?,
            sig(SignalKind::terminate())?,
            sig(SignalKind::interrupt())?,
        );
        let mut next = tokio::time::Instant::now();
        loop {
            // Signals that arrive during a tick are kept by the runtime and
            // seen by the select below.
            d.tick();
            next += tick;
            let now = tokio::time::Instant::now();
            if next < now {
                next = now;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(next) => {}
                _ = hup.recv() => d.reload(),
                _ = term.recv() => return Ok(d.stop("SIGTERM")),
                _ = int.recv() => return Ok(d.stop("SIGINT")),
            }
        }
    })
}

/// Loads the policy, refusing one with errors.
fn load_running(path: &Path) -> Result<Running, String> {
    let loaded = crate::policy_file::load(path).map_err(|e| e.to_string())?;
    match loaded.policy.clone() {
        Some(policy) => Ok(Running { loaded, policy }),
        None => Err(format!(
            "the policy {} is invalid\n{}  hint: `tollgate check` lists the same problems",
            path.display(),
            loaded.render()
        )),
    }
}

impl Daemon {
    fn tick(&mut self) {
        let due = self
            .last_reconcile
            .is_none_or(|t| t.elapsed() + Duration::from_millis(50) >= self.reconcile_every);
        let result = if due {
            self.last_reconcile = Some(Instant::now());
            self.reconcile().or_else(|e| {
                // A round that cannot compile or apply must not stop the
                // accounting: read with the classes last known.
                tracing::error!("{e}");
                self.account_now()
            })
        } else {
            self.account_now()
        };
        if let Err(e) = result {
            tracing::error!("{e}");
        }
        self.commit_flows();
        let five_minutes = Duration::from_secs(300);
        if self.settings.overage.enabled
            && self
                .last_overage
                .is_none_or(|t| t.elapsed() >= self.settings.overage.check_every)
        {
            self.last_overage = Some(Instant::now());
            match automation::check(self) {
                Ok(true) => {
                    if let Err(e) = self.reconcile() {
                        tracing::error!("{e}");
                    }
                }
                Ok(false) => {}
                Err(e) => tracing::error!("overage automation: {e}"),
            }
        }
        if self
            .last_retention
            .is_none_or(|t| t.elapsed() >= 12 * five_minutes)
        {
            self.last_retention = Some(Instant::now());
            let r = self.settings.retention;
            let r = history::Retention {
                raw: r.raw,
                hourly: r.hourly,
                daily: r.daily,
            };
            match history::Store::apply_retention(self.books.store_mut(), Timestamp::now(), &r) {
                Ok(rep) if rep.samples_deleted + rep.hourly_deleted + rep.daily_deleted > 0 => {
                    tracing::info!(?rep, "retention applied")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot apply the retention"),
            }
            // Fold complete days into one row per tenant, so that reading a
            // tenant's month is 31 reads instead of 744. Bounded per call;
            // the next hour continues where this one stopped.
            match history::Store::compact(self.books.store_mut(), Timestamp::now(), 20_000) {
                Ok(rep) if rep.tenant_days > 0 => tracing::info!(?rep, "history compacted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot compact the history"),
            }
        }
    }

    /// Commits what the flow collector received, first rebuilding its
    /// tables if the routes table changed.
    fn commit_flows(&mut self) {
        let Some(books) = &mut self.flows else { return };
        let policy = &self.running.policy;
        if let Refresh::Failed(e) = self.route_realms.refresh(policy) {
            tracing::error!("{e}; the last good routes table is kept");
        }
        if self.route_realms.version() != self.flows_routes {
            self.flows_routes = self.route_realms.version();
            if let Err(e) = books.reload(policy, self.route_realms.current()) {
                tracing::error!("flow collector: {e}");
            }
        }
        match books.commit() {
            Ok(c) => self
                .metrics
                .add(&self.metrics.flow_samples, c.samples as u64),
            Err(e) => tracing::error!("flow collector: {e}"),
        }
        self.metrics.flows(books.status());
    }

    /// Reads the counters and accounts them.
    fn account_now(&mut self) -> Result<(), String> {
        let kernel: HashMap<_, _> = read_counters(&mut self.dp)?;
        let now = Timestamp::now();
        let readings = feeds::readings(&self.feeds, self.books.tracked(), &kernel);
        self.metrics.add(&self.metrics.reads, 1);
        if self.books.account(now, &readings, &self.metrics) {
            Ok(())
        } else {
            Err("the counters were read but could not be committed (see above)".into())
        }
    }

    /// One reconcile round, with the accounting read taken from the same
    /// observation.
    fn reconcile(&mut self) -> Result<(), String> {
        let started = Instant::now();
        let observed = self
            .dp
            .observe(&plan::Plan::default())
            .map_err(|e| e.to_string())?;
        let now = Timestamp::now();
        let facts = HostFacts {
            interfaces: Some(observed.ifindex.keys().copied().collect()),
            live: Live::from_plan(&observed.plan),
            route_realms: {
                if let Refresh::Failed(e) = self.route_realms.refresh(&self.running.policy) {
                    tracing::error!("{e}; the last good routes table is kept");
                }
                self.route_realms.current().to_vec()
            },
        };
        let compiled = compiler::compile(&self.running.policy, &facts).map_err(|diags| {
            format!(
                "the running policy cannot be compiled for this host; the kernel was not changed\n{}",
                diags
                    .iter()
                    .map(|d| d.render(&self.running.loaded.sources))
                    .collect::<String>()
            )
        })?;
        self.feeds = feeds::feeds(&compiled);
        let kernel = observed
            .stats
            .iter()
            .map(|(k, s)| {
                let c = Counter {
                    bytes: s.bytes,
                    packets: s.packets,
                };
                (identity(k), c)
            })
            .collect();
        let readings = feeds::readings(&self.feeds, self.books.tracked(), &kernel);
        self.books.account(now, &readings, &self.metrics);
        self.metrics.add(&self.metrics.reads, 1);
        let observed_plan = observed.plan_for(&compiled.plan);
        let changes = plan::diff(&compiled.plan, &observed_plan);
        if !changes.is_empty() {
            let watched = self.books.watched();
            let (books, metrics) = (&mut self.books, &self.metrics);
            let report = kernel::apply_keeping_counts(
                &mut self.dp,
                &changes,
                &observed_plan,
                &watched,
                &mut |readings| {
                    books.account(Timestamp::now(), &readings, metrics);
                },
            )?;
            self.metrics
                .add(&self.metrics.changes_applied, report.applied as u64);
            self.metrics
                .add(&self.metrics.changes_failed, report.failed.len() as u64);
            tracing::info!(
                changes = changes.len(),
                applied = report.applied,
                failed = report.failed.len(),
                ms = report.elapsed.as_secs_f64() * 1e3,
                "reconciled the kernel with the policy"
            );
            for f in &report.failed {
                tracing::warn!(object = %f.object, "{}; retried next round", f.message);
            }
        }
        self.metrics.add(&self.metrics.reconciles, 1);
        self.metrics
            .set(&self.metrics.round_us, started.elapsed().as_micros() as u64);
        tracing::debug!(
            ms = started.elapsed().as_secs_f64() * 1e3,
            "reconcile round"
        );
        Ok(())
    }

    /// SIGHUP: loads the policy again; keeps the running one if the new
    /// one is invalid or cannot be compiled here.
    fn reload(&mut self) {
        match self.try_reload() {
            Ok(()) => {
                self.metrics.add(&self.metrics.reloads_ok, 1);
                tracing::info!(policy = %self.path.display(), "policy reloaded");
                if let Err(e) = self.reconcile() {
                    tracing::error!("{e}");
                }
                self.last_reconcile = Some(Instant::now());
            }
            Err(e) => {
                self.metrics.add(&self.metrics.reloads_refused, 1);
                tracing::error!("reload refused, the running policy is kept: {e}");
            }
        }
    }

    fn try_reload(&mut self) -> Result<(), String> {
        let new = load_running(&self.path)?;
        let observed = self
            .dp
            .observe(&plan::Plan::default())
            .map_err(|e| e.to_string())?;
        let mut routes = SavedRoutes::new(self.state.routes_table());
        if let Refresh::Failed(e) = routes.refresh(&new.policy) {
            return Err(e);
        }
        let facts = HostFacts {
            interfaces: Some(observed.ifindex.keys().copied().collect()),
            live: Live::from_plan(&observed.plan),
            route_realms: routes.current().to_vec(),
        };
        if let Err(diags) = compiler::compile(&new.policy, &facts) {
            return Err(format!(
                "the policy cannot be compiled for this host\n{}",
                diags
                    .iter()
                    .map(|d| d.render(&new.loaded.sources))
                    .collect::<String>()
            ));
        }
        let settings = Settings::resolve(self.file_settings.clone(), Some(&new.loaded))
            .map_err(|e| e.to_string())?;
        self.running = new;
        self.settings = settings;
        // The new policy's realm rules may classify the routes differently.
        self.route_realms = routes;
        if let Some(books) = &mut self.flows {
            let realms = self.route_realms.current();
            if let Err(e) = books.reload(&self.running.policy, realms) {
                tracing::error!("flow collector: {e}");
            }
            self.flows_routes = self.route_realms.version();
        } else if self.running.policy.flows.is_some() {
            tracing::warn!(
                "[flows] was added to the policy; the collector starts at the next restart"
            );
        }
        Ok(())
    }

    /// SIGTERM: one last read, committed, then exit.
    fn stop(&mut self, signal: &str) -> ExitCode {
        tracing::info!("{signal}: reading the counters one last time");
        if let Some(books) = self.flows.take() {
            match books.stop() {
                Ok(c) => tracing::info!(samples = c.samples, "flows drained and committed"),
                Err(e) => tracing::error!("flow collector: {e}"),
            }
        }
        match self.account_now() {
            Ok(()) => {
                tracing::info!("accounting flushed; exiting");
                ExitCode::SUCCESS
            }
            Err(e) => {
                tracing::error!("the last read failed: {e}");
                ExitCode::from(1)
            }
        }
    }
}
