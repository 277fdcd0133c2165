//! `tollgate routes listen`: the BGP speaker in the foreground.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use bgp_speaker::{PeerState, PeerStatus, Speaker, SpeakerConfig, SpeakerHandle};
use routes::snapshot::Snapshot;
use routes::{RealmRules, RouteTable};

use super::{describe_changes, realm_rules, save, unix_now, StateDir};

/// How often peer states are compared with the last ones printed.
const STATUS_EVERY: Duration = Duration::from_millis(250);

pub fn listen(
    policy: &Path,
    bgp: &Path,
    state: &StateDir,
    save_every: Duration,
    json: bool,
) -> Result<ExitCode, String> {
    let rules = realm_rules(policy)?;
    let text = std::fs::read_to_string(bgp).map_err(|e| {
        format!(
            "cannot read the BGP settings {}: {e}\n  hint: `tollgate routes listen --help` shows the file's format",
            bgp.display()
        )
    })?;
    let config = SpeakerConfig::from_toml(&bgp.display().to_string(), &text).map_err(|e| {
        format!("{e}\n  hint: `tollgate routes listen --help` shows the file's format")
    })?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    runtime.block_on(run(
        config,
        rules,
        state,
        save_every.max(Duration::from_secs(1)),
        json,
    ))
}

async fn run(
    config: SpeakerConfig,
    rules: RealmRules,
    state: &StateDir,
    save_every: Duration,
    json: bool,
) -> Result<ExitCode, String> {
    use tokio::signal::unix::{signal, SignalKind};
    let peers = config.peers.len();
    let speaker = Speaker::bind(config).await.map_err(|e| e.to_string())?;
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
    let mut term = signal(SignalKind::terminate()).map_err(|e| e.to_string())?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| e.to_string())?;
    let mut status = tokio::time::interval(STATUS_EVERY);
    let mut saving = tokio::time::interval_at(tokio::time::Instant::now() + save_every, save_every);
    let mut shown: BTreeMap<IpAddr, (PeerState, u32)> = BTreeMap::new();
    let path = state.snapshot();
    loop {
        tokio::select! {
            _ = term.recv() => break,
            _ = int.recv() => break,
            Some(batch) = changes.recv() => print_changes(&rules, &batch, json),
            _ = status.tick() => print_peers(&handle.peers(), &mut shown, json),
            _ = saving.tick() => save_table(&handle, &path, json),
        }
    }
    while let Ok(batch) = changes.try_recv() {
        print_changes(&rules, &batch, json);
    }
    save_table(&handle, &path, json);
    handle.shutdown().await;
    if !json {
        sayln!("stopped; the table is saved in {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

fn print_changes(rules: &RealmRules, batch: &bgp_speaker::RealmChanges, json: bool) {
    if json {
        let c = &batch.changes;
        let added = c.iter().filter(|x| x.old.is_none()).count();
        let withdrawn = c.iter().filter(|x| x.new.is_none()).count();
        let sample: Vec<_> = c
            .iter()
            .take(8)
            .map(|x| serde_json::json!({"prefix": x.prefix.to_string(), "old": x.old.map(|r| r.0), "new": x.new.map(|r| r.0)}))
            .collect();
        sayln!(
            "{}",
            serde_json::json!({"event": "realms", "peer": batch.peer.to_string(), "changes": c.len(), "added": added, "withdrawn": withdrawn, "moved": c.len() - added - withdrawn, "sample": sample})
        );
    } else {
        for line in describe_changes(rules, batch.peer, &batch.changes) {
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
        if json {
            sayln!(
                "{}",
                serde_json::json!({"event": "peer", "peer": p.address.to_string(), "name": p.label, "state": state, "reason": reason})
            );
        } else {
            let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
            sayln!("peer {} ({}): {state}{why}", p.label, p.address);
        }
    }
}

fn save_table(handle: &SpeakerHandle, path: &Path, json: bool) {
    let snapshot = handle.with_table(|t| Snapshot::from_table(t, "bgp", unix_now()));
    match save(&snapshot, path) {
        Ok(()) if json => sayln!(
            "{}",
            serde_json::json!({"event": "saved", "prefixes": snapshot.routes.len(), "path": path.display().to_string()})
        ),
        Ok(()) => {}
        Err(e) => eprintln!("tollgate: {e}"),
    }
}
