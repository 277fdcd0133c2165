//! `tollgate routes listen`: the BGP speaker in the foreground.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use bgp_speaker::{PeerState, PeerStatus, Speaker, SpeakerConfig, SpeakerHandle};
use routes::snapshot::Snapshot;
use routes::{RealmRules, RouteTable};

use super::{realm_rules, save, unix_now, Context};
use crate::error::{Context as _, Error, Result};
use crate::output::routes as show;

/// How often peer states are compared with the last ones printed.
const STATUS_EVERY: Duration = Duration::from_millis(250);

pub fn listen(cx: &Context, bgp: &Path, save_every: Duration, json: bool) -> Result<ExitCode> {
    let rules = realm_rules(&cx.config)?;
    let text = crate::policy_file::read_text(bgp)
        .map_err(|e| e.hint("`tollgate routes listen --help` shows the file's format"))?;
    let config = SpeakerConfig::from_toml(&bgp.display().to_string(), &text).map_err(|e| {
        Error::invalid(e.to_string())
            .hint("`tollgate routes listen --help` shows the file's format")
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .runtime("cannot start the async runtime")?;
    runtime.block_on(run(
        config,
        rules,
        &cx.state.routes_table(),
        save_every.max(Duration::from_secs(1)),
        json,
    ))
}

async fn run(
    config: SpeakerConfig,
    rules: RealmRules,
    path: &Path,
    save_every: Duration,
    json: bool,
) -> Result<ExitCode> {
    use tokio::signal::unix::{signal, SignalKind};
    let peers = config.peers.len();
    let speaker = Speaker::bind(config)
        .await
        .map_err(|e| Error::runtime(e.to_string()))?;
    let addrs: Vec<String> = speaker
        .local_addrs()
        .iter()
        .map(ToString::to_string)
        .collect();
    if json {
        sayln!(
            "{}",
            serde_json::json!({"event": "listening", "addresses": addrs, "peers": peers})
        );
    } else {
        sayln!("listening on {} for {peers} peers", addrs.join(", "));
    }
    let (tx, mut changes) = tokio::sync::mpsc::unbounded_channel();
    let handle = speaker.start(RouteTable::new(rules.clone()), tx);
    let mut term = signal(SignalKind::terminate()).runtime("cannot watch signals")?;
    let mut int = signal(SignalKind::interrupt()).runtime("cannot watch signals")?;
    let mut status = tokio::time::interval(STATUS_EVERY);
    let mut saving = tokio::time::interval_at(tokio::time::Instant::now() + save_every, save_every);
    let mut shown: BTreeMap<IpAddr, (PeerState, u32)> = BTreeMap::new();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            Some(batch) = changes.recv() => print_changes(&rules, &batch, json),
            _ = status.tick() => print_peers(&handle.peers(), &mut shown, json),
            _ = saving.tick() => save_table(&handle, path, json),
        }
    }
    while let Ok(batch) = changes.try_recv() {
        print_changes(&rules, &batch, json);
    }
    save_table(&handle, path, json);
    handle.shutdown().await;
    if !json {
        sayln!("stopped; the table is saved in {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_changes(rules: &RealmRules, batch: &bgp_speaker::RealmChanges, json: bool) {
    if json {
        match show::realm_changes_json(batch) {
            Ok(line) => sayln!("{line}"),
            Err(e) => eprintln!("tollgate: {e}"),
        }
    } else {
        for line in show::realm_changes(rules, batch.peer, &batch.changes) {
            sayln!("{line}");
        }
    }
}

/// Prints the peers whose state changed since the last call.
fn print_peers(now: &[PeerStatus], shown: &mut BTreeMap<IpAddr, (PeerState, u32)>, json: bool) {
    for p in now {
        let key = (p.state, p.established_count);
        let before = shown.insert(p.address, key);
        if before.is_none() && p.state == PeerState::Idle {
            continue;
        }
        if before == Some(key) {
            continue;
        }
        let state = match p.state {
            PeerState::Established => "established",
            PeerState::Idle => "down",
            PeerState::OpenSent | PeerState::OpenConfirm => "connecting",
        };
        let reason = (p.state == PeerState::Idle)
            .then(|| p.last_down.clone())
            .flatten();
        sayln!("{}", show::peer_event(p, state, reason.as_deref(), json));
    }
}

fn save_table(handle: &SpeakerHandle, path: &Path, json: bool) {
    let snapshot = handle.with_table(|t| Snapshot::from_table(t, "bgp", unix_now()));
    match save(&snapshot, path) {
        Ok(()) if json => sayln!("{}", show::saved_event(&snapshot, path)),
        Ok(()) => {}
        Err(e) => eprintln!("tollgate: {e}"),
    }
}
