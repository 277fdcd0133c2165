//! What the API reads from the state directory besides the history: the
//! saved routes table (cached until the file changes) and the flow
//! collector's status file.

use crate::problem::Problem;
use routes::snapshot::Snapshot;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

/// The routes table last decoded, with the file's modification time and
/// length when it was.
type Cached = ((SystemTime, u64), Arc<Snapshot>);

/// The files, and the routes table last decoded.
pub struct Files {
    /// The saved routes table.
    pub routes_table: PathBuf,
    /// The flow collector's status.
    pub flows_status: PathBuf,
    /// The guard's ended attacks (`guard-history.jsonl`).
    pub guard_history: PathBuf,
    cached: Mutex<Option<Cached>>,
}

impl Files {
    /// The files at these paths; the guard's history in the folder of the
    /// flow collector's status (both are in the state directory).
    pub fn new(routes_table: PathBuf, flows_status: PathBuf) -> Arc<Files> {
        let guard_history = flows_status.with_file_name("guard-history.jsonl");
        Files::with_guard_history(routes_table, flows_status, guard_history)
    }

    /// The files at these paths.
    pub fn with_guard_history(
        routes_table: PathBuf,
        flows_status: PathBuf,
        guard_history: PathBuf,
    ) -> Arc<Files> {
        Arc::new(Files {
            routes_table,
            flows_status,
            guard_history,
            cached: Mutex::new(None),
        })
    }
}

fn table(f: &Files) -> Result<Arc<Snapshot>, Problem> {
    let meta = std::fs::metadata(&f.routes_table).map_err(|_| {
        Problem::not_found("no routes table is saved; `tollgate routes import FILE` makes one")
    })?;
    let stamp = (
        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
        meta.len(),
    );
    let mut c = f.cached.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((s, t)) = c.as_ref() {
        if *s == stamp {
            return Ok(t.clone());
        }
    }
    let bytes = std::fs::read(&f.routes_table)
        .map_err(|e| Problem::unavailable(format!("the routes table: {e}")))?;
    let t = Arc::new(
        Snapshot::decode(&bytes)
            .map_err(|e| Problem::unavailable(format!("the routes table is damaged {e}")))?,
    );
    *c = Some((stamp, t.clone()));
    Ok(t)
}

/// The best route covering `ip`, and its realm.
pub fn lookup(f: &Files, ip: IpAddr) -> Result<serde_json::Value, Problem> {
    let s = table(f)?;
    let r = s
        .lookup(ip)
        .ok_or_else(|| Problem::not_found(format!("no route covers {ip}")).field("ip"))?;
    let a = &s.attrs[r.attrs as usize];
    let p = &s.peers[r.peer as usize];
    Ok(serde_json::json!({
        "address": ip.to_string(),
        "prefix": r.prefix.to_string(),
        "realm": {"id": r.class.realm.0, "name": s.realm_name(r.class.realm), "rule": r.class.rule.to_string()},
        "peer": {"address": p.addr.to_string(), "asn": p.asn},
        "next_hop": a.next_hop.map(|n| n.to_string()),
        "as_path": a.as_path_flat(),
        "communities": a.communities.iter().map(|c| format!("{}:{}", c >> 16, c & 0xffff)).collect::<Vec<_>>(),
    }))
}

/// The flow collector's status file.
pub fn flows_status(f: &Files) -> Result<serde_json::Value, Problem> {
    let text = std::fs::read_to_string(&f.flows_status).map_err(|_| {
        Problem::not_found("no flow collector has run here (the policy has no [flows])")
    })?;
    serde_json::from_str(&text)
        .map_err(|e| Problem::unavailable(format!("the flow collector's status: {e}")))
}

/// The collector's latest rates per tenant × realm, if it runs and wrote
/// them recently.
pub fn flow_rates(f: &Files) -> Vec<(u32, u16, f64, f64)> {
    let Ok(v) = flows_status(f) else {
        return Vec::new();
    };
    let fresh = v["updated"]
        .as_str()
        .and_then(|u| u.parse::<jiff::Timestamp>().ok())
        .is_some_and(|u| {
            let age = jiff::Timestamp::now().duration_since(u).as_secs_f64();
            age <= (3.0 * v["rate_seconds"].as_f64().unwrap_or(0.0)).max(10.0)
        });
    if v["running"].as_bool() != Some(true) || !fresh {
        return Vec::new();
    }
    v["rates"]
        .as_array()
        .map(|rs| {
            rs.iter()
                .filter_map(|r| {
                    Some((
                        u32::try_from(r["tenant"].as_u64()?).ok()?,
                        u16::try_from(r["realm"].as_u64()?).ok()?,
                        r["down_bps"].as_f64()?,
                        r["up_bps"].as_f64()?,
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}
