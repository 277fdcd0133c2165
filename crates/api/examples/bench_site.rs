//! The API over an existing history, for `bench/api_usage.sh`: a policy of
//! N tenants (ids 1..N, realms 1–4, UTC months) matching the history
//! bench's store, a snapshot as the daemon would publish, one read token,
//! and the real router on a port. Prints the token, then serves until
//! killed.
//!
//! It serves the dashboard too (the same router), for
//! `crates/tollgate/examples/dashboard_bench.rs`.
//!
//! `cargo run --release -p api --example bench_site -- DB ADDR TENANTS`

use api::tokens::{Scope, TokenFile, Tokens};
use engine::snapshot::Snapshot;
use std::sync::Arc;

/// The policy the bench's store was written for.
pub fn policy(tenants: u32) -> policy::Policy {
    let mut text = String::from(
        "[site]\nmode = \"router\"\nuplink = \"wan0\"\nlan = \"lan0\"\ncapacity = { down = \"100gbit\", up = \"100gbit\" }\n\
         [realms]\ndefault = \"r1\"\n[realms.r1]\nid = 1\n[realms.r2]\nid = 2\n[realms.r3]\nid = 3\n[realms.r4]\nid = 4\n\
         [plans.p]\ndown = { rate = \"10mbit\", ceil = \"100mbit\" }\nup = { rate = \"10mbit\", ceil = \"100mbit\" }\n",
    );
    for t in 1..tenants {
        let (a, b) = (t / 256, t % 256);
        text.push_str(&format!(
            "[[tenants]]\nid = {t}\nname = \"t{t}\"\nplan = \"p\"\nprefixes = [\"100.{}.{a}.{b}/32\"]\n",
            64 + (t >> 16)
        ));
    }
    let loaded = policy::load_str("bench.toml", &text);
    let rendered = loaded.render();
    loaded.policy.unwrap_or_else(|| panic!("{rendered}"))
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (db, addr, tenants) = match args.as_slice() {
        [db, addr, n] => (db.clone(), addr.clone(), n.parse::<u32>().expect("TENANTS")),
        _ => panic!("usage: bench_site DB ADDR TENANTS"),
    };
    let policy = Arc::new(policy(tenants));
    let now = jiff::Timestamp::now();
    let snapshot = Snapshot {
        now,
        started: now,
        policy,
        settings: Arc::new(settings::Settings::defaults()),
        compiled: None,
        feeds: Arc::default(),
        rates: None,
        counts: Default::default(),
        counters_tracked: 0,
        pending_samples: 0,
        last_apply: None,
        routes_error: None,
        records: Default::default(),
        events: Vec::new(),
        committed_sequence: 0,
        agents: Default::default(),
    };
    let dir = std::env::temp_dir().join(format!("tg-api-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut file = TokenFile::default();
    let secret = file.add("bench", Scope::Read, now).unwrap();
    std::fs::write(dir.join("tokens.json"), file.to_text()).unwrap();
    println!("{secret}");
    let (_tx, rx) = tokio::sync::watch::channel(Arc::new(snapshot));
    let open: api::stores::Opener = Box::new(move || {
        history::SqliteStore::open(
            std::path::Path::new(&db),
            &history::SqliteOptions { cache_mib: 64 },
        )
        .map(|s| Box::new(s) as Box<dyn history::Store + Send>)
        .map_err(|e| e.to_string())
    });
    let files = api::files::Files::new(dir.join("none.tgr"), dir.join("none.json"));
    let state = api::AppState {
        metrics: api::metrics::registry(rx.clone(), files.clone()),
        snapshot: rx,
        stores: api::stores::Stores::new(open),
        commands: Arc::new(|_| None),
        tokens: Tokens::new(Some(dir.join("tokens.json"))),
        failures: Arc::default(),
        open: Arc::default(),
        files,
        metrics_public: true,
    };
    let listener = std::net::TcpListener::bind(&addr).expect("bind");
    listener.set_nonblocking(true).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // As the daemon does: the settled days are read once at start.
        tokio::spawn(api::site::warm(state.clone()));
        api::serve(listener, api::router(state), None).await
    })
    .unwrap();
}
