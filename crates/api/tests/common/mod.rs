//! The API's state as the daemon builds it, for tests that drive the
//! router in-process.

use api::AppState;
use engine::snapshot::Snapshot;
use std::path::Path;
use std::sync::Arc;

/// State serving `snapshot` (the sender is dropped: the receiver keeps
/// it), reading the history through `open`, with the routes table and
/// the flow collector's status in `dir`, no tokens and no commands.
pub fn app_state(snapshot: Snapshot, dir: &Path, open: api::stores::Opener) -> AppState {
    let (tx, rx) = tokio::sync::watch::channel(Arc::new(snapshot));
    drop(tx);
    let files = api::files::Files::new(dir.join("routes/table.tgr"), dir.join("flows-status.json"));
    AppState {
        metrics: api::metrics::registry(rx.clone(), files.clone()),
        snapshot: rx,
        stores: api::stores::Stores::new(open),
        commands: Arc::new(|_| None),
        tokens: api::tokens::Tokens::new(None),
        failures: Arc::default(),
        open: Arc::default(),
        files,
        metrics_public: false,
    }
}

/// A one-tenant router policy (tenant 1 on 100.64.1.0/24, one realm),
/// loaded as `file`.
#[allow(dead_code)] // Not every test file that includes this module uses it.
pub fn one_tenant_policy(file: &str) -> Arc<policy::Policy> {
    let text = r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }
[realms]
default = "world"
[realms.world]
id = 1
[plans.p]
down = { rate = "10mbit", ceil = "100mbit" }
up = { rate = "10mbit", ceil = "100mbit" }
[[tenants]]
id = 1
plan = "p"
prefixes = ["100.64.1.0/24"]
"#;
    let loaded = policy::load_str(file, text);
    let rendered = loaded.render();
    Arc::new(loaded.policy.unwrap_or_else(|| panic!("{rendered}")))
}
