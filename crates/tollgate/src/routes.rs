//! `tollgate routes`: realms from routes. Imports MRT RIB dumps into a
//! snapshot in the state directory, answers lookups and counts from it,
//! and runs the BGP speaker in the foreground.
//!
//! The decisions (best path, realm rules, the snapshot format) live in the
//! `routes` crate; this module only reads and writes files, draws progress
//! and prints.

mod listen;

use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bgp::mrt::MrtReader;
use clap::Subcommand;
use routes::import::Importer;
use routes::snapshot::{Snapshot, SnapshotRoute};
use routes::{RealmChange, RealmRules};

/// tollgate's state directory unless `--state-dir` or `TOLLGATE_STATE_DIR`
/// say otherwise; routes live in its `routes/` folder.
pub const DEFAULT_STATE_DIR: &str = "/var/lib/tollgate";
const SNAPSHOT_FILE: &str = "routes/table.tgr";

#[derive(Subcommand, Debug)]
pub enum RoutesCommand {
    /// Import an MRT RIB dump (TABLE_DUMP_V2; plain, .gz or .bz2) and save
    /// the best route per prefix, with its realm, in the state directory.
    #[command(
        after_help = "The realm of each route comes from the policy's realm rules \
(communities, large_communities, origin_as, as_path_contains, peers, next_hops): realms are \
tried in file order, the first match wins, and other routes go to the default realm. When \
several peers in the dump carry a prefix, one route is chosen: highest LOCAL_PREF, shortest AS \
path, lowest ORIGIN, lowest MED from the same neighbouring AS, lowest peer address.

Dumps as RIPE RIS (bview.*.gz) and RouteViews (rib.*.bz2) publish them, or as BIRD's `mrt` \
protocol writes them. Compression is recognised from the file's first bytes.

Examples:
  tollgate routes import bview.20240101.0000.gz -c /etc/tollgate/tollgate.toml
  tollgate routes import rib.20240101.0000.bz2 --state-dir /tmp/tg
  tollgate routes import dump.mrt --json | jq .prefixes"
    )]
    Import {
        /// The dump.
        file: PathBuf,
        #[command(flatten)]
        state: StateDir,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Show the route and realm of an address, from the last import (or
    /// the last snapshot `routes listen` saved).
    #[command(
        after_help = "Exit status: 0 if a route covers the address, 1 if none does.

Examples:
  tollgate routes lookup 203.0.113.7
  tollgate routes lookup 2001:db8::1 --json | jq .realm.name"
    )]
    Lookup {
        /// The address.
        ip: IpAddr,
        #[command(flatten)]
        state: StateDir,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Count prefixes per realm and address family in the saved table.
    #[command(after_help = "Examples:
  tollgate routes stats
  tollgate routes stats --json | jq '.realms[] | {name, ipv4}'")]
    Stats {
        #[command(flatten)]
        state: StateDir,
        /// Print as JSON.
        #[arg(long)]
        json: bool,
    },

    /// Run the BGP speaker in the foreground: accept the configured peers,
    /// keep the realm of every prefix they announce, and print sessions and
    /// realm changes as they happen.
    #[command(
        after_help = "tollgate is passive and announces nothing: peers connect to it. \
The speaker's settings are read from their own TOML file for now:

  local_as = 65000
  router_id = \"192.0.2.1\"
  listen = [\"0.0.0.0:179\", \"[::]:179\"]   # default 0.0.0.0:179
  hold_time = 90                          # seconds, default 90
  [[peers]]
  address = \"192.0.2.2\"
  remote_as = 65001
  hold_time = 30                          # optional, per peer
  name = \"transit-a\"                      # optional, for output

The table is saved to the state directory every --save-every and on Ctrl-C, so `routes lookup` \
and `routes stats` see the live routes. BIRD connects to tollgate with a plain `protocol bgp` \
(neighbor = tollgate's address and port); ExaBGP with a neighbor block (`connect PORT` for a port \
other than 179).

Examples:
  tollgate routes listen --bgp /etc/tollgate/bgp.toml
  tollgate routes listen --bgp bgp.toml --json | jq -c 'select(.event == \"peer\")'"
    )]
    Listen {
        /// The speaker's settings (see above).
        #[arg(long, value_name = "FILE")]
        bgp: PathBuf,
        #[command(flatten)]
        state: StateDir,
        /// How often to save the table to the state directory.
        #[arg(long, value_parser = crate::cli::parse_duration, default_value = "60s")]
        save_every: Duration,
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
}

/// The `--state-dir` option shared by the subcommands.
#[derive(clap::Args, Debug)]
pub struct StateDir {
    /// tollgate's state directory; routes are kept in its routes/ folder.
    #[arg(long = "state-dir", env = "TOLLGATE_STATE_DIR", default_value = DEFAULT_STATE_DIR, value_name = "DIR")]
    dir: PathBuf,
}

impl StateDir {
    pub(crate) fn snapshot(&self) -> PathBuf {
        self.dir.join(SNAPSHOT_FILE)
    }
}

/// Runs one `routes` subcommand; `policy` is the `-c` path.
pub fn run(policy: &Path, cmd: &RoutesCommand) -> Result<ExitCode, String> {
    match cmd {
        RoutesCommand::Import { file, state, json } => import(policy, file, state, *json),
        RoutesCommand::Lookup { ip, state, json } => lookup(*ip, state, *json),
        RoutesCommand::Stats { state, json } => stats(state, *json),
        RoutesCommand::Listen {
            bgp,
            state,
            save_every,
            json,
        } => listen::listen(policy, bgp, state, *save_every, *json),
    }
}

/// The realm rules of a valid policy; an invalid one is reported in full.
pub fn realm_rules(path: &Path) -> Result<RealmRules, String> {
    let loaded = crate::files::load_policy(path)?;
    match &loaded.policy {
        Some(p) => Ok(RealmRules::from_policy(&p.realms)),
        None => Err(format!(
            "the policy is not valid, so its realm rules cannot be used:\n{}  hint: `tollgate check -c {}` lists every problem",
            loaded.render(),
            path.display()
        )),
    }
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads a whole dump, decompressing gzip or bzip2 (recognised from their
/// magic bytes), with a progress bar over the bytes of the file.
fn read_dump(file: &Path) -> Result<Vec<u8>, String> {
    let f = std::fs::File::open(file).map_err(|e| {
        format!(
            "cannot open {}: {e}\n  hint: pass the path of a TABLE_DUMP_V2 RIB dump",
            file.display()
        )
    })?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new(size).with_style(
        indicatif::ProgressStyle::with_template("reading {bytes}/{total_bytes} {wide_bar} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut input = std::io::BufReader::new(bar.wrap_read(f));
    let magic = std::io::BufRead::fill_buf(&mut input)
        .map_err(|e| format!("cannot read {}: {e}", file.display()))?
        .get(..3)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let mut data = Vec::new();
    let result = match magic.as_slice() {
        [0x1f, 0x8b, _] => flate2::read::MultiGzDecoder::new(input).read_to_end(&mut data),
        b"BZh" => bzip2::read::MultiBzDecoder::new(input).read_to_end(&mut data),
        _ => input.read_to_end(&mut data),
    };
    bar.finish_and_clear();
    result.map_err(|e| {
        format!(
            "cannot read {} (after {} bytes of decompressed data): {e}\n  hint: a truncated download is the usual cause; fetch the file again",
            file.display(),
            data.len()
        )
    })?;
    Ok(data)
}

fn import(policy: &Path, file: &Path, state: &StateDir, json: bool) -> Result<ExitCode, String> {
    let rules = realm_rules(policy)?;
    let started = Instant::now();
    let data = read_dump(file)?;
    let read_time = started.elapsed();
    let bar = indicatif::ProgressBar::new(data.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("importing {bytes}/{total_bytes} {wide_bar} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut reader = MrtReader::new(&data);
    let mut importer = Importer::new(rules);
    let mut n = 0u64;
    while let Some(item) = reader.next() {
        importer.add(item);
        n += 1;
        if n & 0xffff == 0 {
            bar.set_position(reader.offset() as u64);
            bar.set_message(format!("{n} entries"));
        }
    }
    bar.finish_and_clear();
    let skipped = reader.skipped();
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (snapshot, report) = importer.finish(&name, unix_now());
    for e in &report.first_errors {
        eprintln!(
            "tollgate: {}: {e} (offset in the decompressed data)",
            file.display()
        );
    }
    if report.errors > report.first_errors.len() {
        eprintln!(
            "tollgate: {}: {} more bad records not shown",
            file.display(),
            report.errors - report.first_errors.len()
        );
    }
    if report.entries == 0 {
        return Err(format!(
            "{} has no RIB entries ({} records skipped)\n  hint: tollgate reads TABLE_DUMP_V2 RIB dumps (RIPE RIS bview.*, RouteViews rib.*), not BGP4MP update files",
            file.display(),
            skipped
        ));
    }
    let path = state.snapshot();
    save(&snapshot, &path)?;
    let elapsed = started.elapsed();
    let counts = snapshot.counts();
    let (v4, v6) = counts
        .values()
        .fold((0, 0), |(a, b), c| (a + c.ipv4, b + c.ipv6));
    if json {
        let realms: Vec<_> = counts
            .iter()
            .map(|(id, c)| serde_json::json!({"id": id.0, "name": snapshot.realm_name(*id), "ipv4": c.ipv4, "ipv6": c.ipv6}))
            .collect();
        let out = serde_json::json!({
            "file": file.display().to_string(),
            "entries": report.entries,
            "prefixes": report.prefixes,
            "ipv4": v4,
            "ipv6": v6,
            "peers": report.peers,
            "errors": report.errors,
            "skipped_records": skipped,
            "realms": realms,
            "seconds": elapsed.as_secs_f64(),
            "read_seconds": read_time.as_secs_f64(),
            "snapshot": path.display().to_string(),
        });
        sayln!("{out}");
    } else {
        sayln!(
            "imported {} entries: {} prefixes ({v4} IPv4, {v6} IPv6) from {} peers in {:.2} s ({:.2} s reading)",
            report.entries,
            report.prefixes,
            report.peers,
            elapsed.as_secs_f64(),
            read_time.as_secs_f64()
        );
        for (id, c) in &counts {
            sayln!(
                "  {:<20} {:>9} IPv4 {:>9} IPv6",
                realm_label(&snapshot, *id),
                c.ipv4,
                c.ipv6
            );
        }
        if report.errors > 0 || skipped > 0 {
            sayln!(
                "  {} bad records or entries, {skipped} records of other types skipped",
                report.errors
            );
        }
        sayln!("saved to {}", path.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Writes a snapshot atomically, creating the folder.
pub fn save(snapshot: &Snapshot, path: &Path) -> Result<(), String> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| {
            format!("cannot create {}: {e}\n  hint: use --state-dir or TOLLGATE_STATE_DIR for a folder you can write", dir.display())
        })?;
    }
    let tmp = path.with_extension("tgr.new");
    std::fs::write(&tmp, snapshot.encode())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn load(state: &StateDir) -> Result<Snapshot, String> {
    let path = state.snapshot();
    let bytes = std::fs::read(&path).map_err(|e| {
        format!(
            "cannot read the routes table {}: {e}\n  hint: run `tollgate routes import FILE` (or `routes listen`) first, or point --state-dir at the folder it used",
            path.display()
        )
    })?;
    Snapshot::decode(&bytes).map_err(|e| {
        format!(
            "{} is damaged {e}\n  hint: run `tollgate routes import FILE` again to rebuild it",
            path.display()
        )
    })
}

fn realm_label(s: &Snapshot, id: net_types::RealmId) -> String {
    match s.realm_name(id) {
        Some(n) => format!("{n} ({id})"),
        None => format!("realm {id}"),
    }
}

fn lookup(ip: IpAddr, state: &StateDir, json: bool) -> Result<ExitCode, String> {
    let s = load(state)?;
    let Some(r) = s.lookup(ip) else {
        if json {
            sayln!(
                "{}",
                serde_json::json!({"address": ip.to_string(), "route": null})
            );
        } else {
            sayln!(
                "{ip}: no route covers it; the dataplane classifies it by the policy's prefix lists, else the default realm {}",
                realm_label(&s, s.default_realm)
            );
        }
        return Ok(ExitCode::from(1));
    };
    if json {
        sayln!("{}", route_json(&s, ip, r));
    } else {
        say!("{}", route_text(&s, ip, r));
    }
    Ok(ExitCode::SUCCESS)
}

fn community(c: u32) -> String {
    format!("{}:{}", c >> 16, c & 0xffff)
}

fn route_json(s: &Snapshot, ip: IpAddr, r: &SnapshotRoute) -> serde_json::Value {
    let a = &s.attrs[r.attrs as usize];
    let p = &s.peers[r.peer as usize];
    serde_json::json!({
        "address": ip.to_string(),
        "prefix": r.prefix.to_string(),
        "realm": {"id": r.class.realm.0, "name": s.realm_name(r.class.realm), "rule": r.class.rule.to_string()},
        "peer": {"address": p.addr.to_string(), "asn": p.asn, "bgp_id": p.bgp_id.to_string()},
        "next_hop": a.next_hop.map(|n| n.to_string()),
        "as_path": a.as_path_flat(),
        "origin": a.origin.map(|o| format!("{o:?}").to_lowercase()),
        "local_pref": a.local_pref,
        "med": a.med,
        "communities": a.communities.iter().map(|c| community(*c)).collect::<Vec<_>>(),
        "large_communities": a.large_communities.iter().map(|[x, y, z]| format!("{x}:{y}:{z}")).collect::<Vec<_>>(),
        "source": s.source,
        "created_unix": s.created_unix,
    })
}

fn route_text(s: &Snapshot, ip: IpAddr, r: &SnapshotRoute) -> String {
    let a = &s.attrs[r.attrs as usize];
    let p = &s.peers[r.peer as usize];
    let list = |v: Vec<String>| {
        if v.is_empty() {
            "-".to_string()
        } else {
            v.join(" ")
        }
    };
    let opt = |v: Option<u32>| v.map_or("-".to_string(), |x| x.to_string());
    let path: Vec<String> = a.as_path_flat().iter().map(u32::to_string).collect();
    format!(
        "{ip}
  prefix             {}
  realm              {}
  matched by         {}
  peer               {} (AS {}, id {})
  next hop           {}
  AS path            {}
  origin             {}
  local pref / MED   {} / {}
  communities        {}
  large communities  {}
  from               {} (saved at Unix time {})
",
        r.prefix,
        realm_label(s, r.class.realm),
        r.class.rule,
        p.addr,
        p.asn,
        p.bgp_id,
        a.next_hop.map_or("-".to_string(), |n| n.to_string()),
        list(path),
        a.origin
            .map_or("-".to_string(), |o| format!("{o:?}").to_uppercase()),
        opt(a.local_pref),
        opt(a.med),
        list(a.communities.iter().map(|c| community(*c)).collect()),
        list(
            a.large_communities
                .iter()
                .map(|[x, y, z]| format!("{x}:{y}:{z}"))
                .collect()
        ),
        s.source,
        s.created_unix,
    )
}

fn stats(state: &StateDir, json: bool) -> Result<ExitCode, String> {
    let s = load(state)?;
    let counts = s.counts();
    if json {
        let realms: Vec<_> = counts
            .iter()
            .map(|(id, c)| serde_json::json!({"id": id.0, "name": s.realm_name(*id), "ipv4": c.ipv4, "ipv6": c.ipv6, "default": *id == s.default_realm}))
            .collect();
        sayln!(
            "{}",
            serde_json::json!({"source": s.source, "created_unix": s.created_unix, "prefixes": s.routes.len(), "peers": s.peers.len(), "realms": realms})
        );
    } else {
        sayln!(
            "{} prefixes from {} peers ({}, saved at Unix time {})",
            s.routes.len(),
            s.peers.len(),
            s.source,
            s.created_unix
        );
        sayln!("  {:<24} {:>9} {:>9}", "realm", "IPv4", "IPv6");
        for (id, c) in &counts {
            let mark = if *id == s.default_realm {
                " (default)"
            } else {
                ""
            };
            sayln!(
                "  {:<24} {:>9} {:>9}",
                realm_label(&s, *id) + mark,
                c.ipv4,
                c.ipv6
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per realm change batch: each change when there are few, a
/// summary when a peer sends or loses a whole table.
pub fn describe_changes(rules: &RealmRules, peer: IpAddr, changes: &[RealmChange]) -> Vec<String> {
    let name = |r: Option<net_types::RealmId>| match r {
        Some(id) => rules.name(id).map_or_else(|| id.to_string(), str::to_owned),
        None => "none".to_string(),
    };
    if changes.len() <= 8 {
        return changes
            .iter()
            .map(|c| {
                format!(
                    "realm {}: {} -> {} (from peer {peer})",
                    c.prefix,
                    name(c.old),
                    name(c.new)
                )
            })
            .collect();
    }
    let added = changes.iter().filter(|c| c.old.is_none()).count();
    let removed = changes.iter().filter(|c| c.new.is_none()).count();
    let moved = changes.len() - added - removed;
    vec![format!(
        "realms: {} changes from peer {peer}: {added} prefixes added, {moved} moved, {removed} withdrawn",
        changes.len()
    )]
}

/// Where `routes import` and `routes listen` save the table:
/// `$TOLLGATE_STATE_DIR`, else the default state directory.
pub fn saved_table_path() -> PathBuf {
    crate::ledger::state_dir_from_env().join(SNAPSHOT_FILE)
}

/// The realm of every saved best route, classified by `policy`'s current
/// realm rules (not the rules in force when the table was saved, so that
/// editing the rules takes effect at the next apply). Empty when no table
/// was saved. The table is read from `$TOLLGATE_STATE_DIR`, else the
/// default state directory, as the `routes` subcommands write it.
pub fn saved_realms(
    policy: &policy::Policy,
) -> Result<Vec<(net_types::Prefix, net_types::RealmId)>, String> {
    let path = saved_table_path();
    if !path.exists() {
        return Ok(Vec::new());
    }
    let dir = path
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let s = load(&StateDir { dir })?;
    let rules = routes::RealmRules::from_policy(&policy.realms);
    Ok(s.routes
        .iter()
        .filter_map(|r| {
            let peer = s.peers.get(r.peer as usize).map(|p| p.addr);
            let attrs = s.attrs.get(r.attrs as usize)?;
            Some((r.prefix, rules.classify(peer, attrs).realm))
        })
        .collect())
}
