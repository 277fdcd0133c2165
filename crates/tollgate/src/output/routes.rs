//! How routes are shown: an import's summary, a lookup, per-realm counts,
//! and the speaker's realm changes.

use crate::error::Result;
use bgp::wire::Origin;
use net_types::RealmId;
use routes::import::ImportReport;
use routes::snapshot::{Snapshot, SnapshotRoute};
use routes::{RealmChange, RealmRules};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;

/// What `routes import` did.
pub struct Imported<'a> {
    /// The dump.
    pub file: &'a Path,
    /// The importer's counts.
    pub report: &'a ImportReport,
    /// Records of other types skipped.
    pub skipped: usize,
    /// The table saved.
    pub snapshot: &'a Snapshot,
    /// Where.
    pub path: &'a Path,
    /// The whole import's time.
    pub seconds: f64,
    /// The reading's share of it.
    pub read_seconds: f64,
}

fn realm_label(s: &Snapshot, id: RealmId) -> String {
    match s.realm_name(id) {
        Some(n) => format!("{n} ({id})"),
        None => format!("realm {id}"),
    }
}

fn origin(o: Origin) -> &'static str {
    match o {
        Origin::Igp => "igp",
        Origin::Egp => "egp",
        Origin::Incomplete => "incomplete",
    }
}

fn community(c: u32) -> String {
    format!("{}:{}", c >> 16, c & 0xffff)
}

/// The import as one JSON object.
pub fn imported_json(i: &Imported<'_>) -> Result<String> {
    let counts = i.snapshot.counts();
    let (v4, v6) = counts
        .values()
        .fold((0, 0), |(a, b), c| (a + c.ipv4, b + c.ipv6));
    let realms: Vec<_> = counts
        .iter()
        .map(|(id, c)| serde_json::json!({"id": id.0, "name": i.snapshot.realm_name(*id), "ipv4": c.ipv4, "ipv6": c.ipv6}))
        .collect();
    super::json_line(&serde_json::json!({
        "file": i.file.display().to_string(),
        "entries": i.report.entries,
        "prefixes": i.report.prefixes,
        "ipv4": v4,
        "ipv6": v6,
        "peers": i.report.peers,
        "errors": i.report.errors,
        "skipped_records": i.skipped,
        "skipped": i.report.skipped.iter().map(|(why, n)| (why.to_string(), *n)).collect::<std::collections::BTreeMap<_, _>>(),
        "realms": realms,
        "seconds": i.seconds,
        "read_seconds": i.read_seconds,
        "snapshot": i.path.display().to_string(),
    }))
}

/// The import as text.
pub fn imported_text(i: &Imported<'_>) -> String {
    let counts = i.snapshot.counts();
    let (v4, v6) = counts
        .values()
        .fold((0, 0), |(a, b), c| (a + c.ipv4, b + c.ipv6));
    let mut out = format!(
        "imported {} entries: {} prefixes ({v4} IPv4, {v6} IPv6) from {} peers in {:.2} s ({:.2} s reading)\n",
        i.report.entries, i.report.prefixes, i.report.peers, i.seconds, i.read_seconds
    );
    for (id, c) in &counts {
        let _ = writeln!(
            out,
            "  {:<20} {:>9} IPv4 {:>9} IPv6",
            realm_label(i.snapshot, *id),
            c.ipv4,
            c.ipv6
        );
    }
    if i.report.errors > 0 || i.skipped > 0 {
        let _ = writeln!(
            out,
            "  {} bad records or entries, {} records of other types skipped",
            i.report.errors, i.skipped
        );
    }
    let _ = writeln!(out, "saved to {}", i.path.display());
    out
}

/// A lookup as JSON (`route` is null when nothing covers the address).
pub fn lookup_json(s: &Snapshot, ip: IpAddr, r: Option<&SnapshotRoute>) -> Result<String> {
    let Some(r) = r else {
        return super::json_line(&serde_json::json!({"address": ip.to_string(), "route": null}));
    };
    let a = &s.attrs[r.attrs as usize];
    let p = &s.peers[r.peer as usize];
    super::json_line(&serde_json::json!({
        "address": ip.to_string(),
        "prefix": r.prefix.to_string(),
        "realm": {"id": r.class.realm.0, "name": s.realm_name(r.class.realm), "rule": r.class.rule.to_string()},
        "peer": {"address": p.addr.to_string(), "asn": p.asn, "bgp_id": p.bgp_id.to_string()},
        "next_hop": a.next_hop.map(|n| n.to_string()),
        "as_path": a.as_path_flat(),
        "origin": a.origin.map(origin),
        "local_pref": a.local_pref,
        "med": a.med,
        "communities": a.communities.iter().map(|c| community(*c)).collect::<Vec<_>>(),
        "large_communities": a.large_communities.iter().map(|[x, y, z]| format!("{x}:{y}:{z}")).collect::<Vec<_>>(),
        "source": s.source,
        "created_unix": s.created_unix,
    }))
}

/// A lookup as text.
pub fn lookup_text(s: &Snapshot, ip: IpAddr, r: Option<&SnapshotRoute>) -> String {
    let Some(r) = r else {
        return format!(
            "{ip}: no route covers it; the dataplane classifies it by the policy's prefix lists, else the default realm {}\n",
            realm_label(s, s.default_realm)
        );
    };
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
        a.origin.map_or("-", origin).to_uppercase(),
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

/// Per-realm counts as JSON.
pub fn stats_json(s: &Snapshot) -> Result<String> {
    let realms: Vec<_> = s
        .counts()
        .iter()
        .map(|(id, c)| serde_json::json!({"id": id.0, "name": s.realm_name(*id), "ipv4": c.ipv4, "ipv6": c.ipv6, "default": *id == s.default_realm}))
        .collect();
    super::json_line(
        &serde_json::json!({"source": s.source, "created_unix": s.created_unix, "prefixes": s.routes.len(), "peers": s.peers.len(), "realms": realms}),
    )
}

/// Per-realm counts as text.
pub fn stats_text(s: &Snapshot) -> String {
    let mut out = format!(
        "{} prefixes from {} peers ({}, saved at Unix time {})\n  {:<24} {:>9} {:>9}\n",
        s.routes.len(),
        s.peers.len(),
        s.source,
        s.created_unix,
        "realm",
        "IPv4",
        "IPv6"
    );
    for (id, c) in &s.counts() {
        let mark = if *id == s.default_realm {
            " (default)"
        } else {
            ""
        };
        let _ = writeln!(
            out,
            "  {:<24} {:>9} {:>9}",
            realm_label(s, *id) + mark,
            c.ipv4,
            c.ipv6
        );
    }
    out
}

/// One line per realm change batch: each change when there are few, a
/// summary when a peer sends or loses a whole table.
pub fn realm_changes(rules: &RealmRules, peer: IpAddr, changes: &[RealmChange]) -> Vec<String> {
    let name = |r: Option<RealmId>| match r {
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

/// A batch of realm changes as one JSON event.
pub fn realm_changes_json(batch: &bgp_speaker::RealmChanges) -> Result<String> {
    let c = &batch.changes;
    let added = c.iter().filter(|x| x.old.is_none()).count();
    let withdrawn = c.iter().filter(|x| x.new.is_none()).count();
    let sample: Vec<_> = c
        .iter()
        .take(8)
        .map(|x| serde_json::json!({"prefix": x.prefix.to_string(), "old": x.old.map(|r| r.0), "new": x.new.map(|r| r.0)}))
        .collect();
    super::json_line(
        &serde_json::json!({"event": "realms", "peer": batch.peer.to_string(), "changes": c.len(), "added": added, "withdrawn": withdrawn, "moved": c.len() - added - withdrawn, "sample": sample}),
    )
}

/// A peer's new state, as a JSON event or a line of text.
pub fn peer_event(
    p: &bgp_speaker::PeerStatus,
    state: &str,
    reason: Option<&str>,
    json: bool,
) -> String {
    if json {
        serde_json::json!({"event": "peer", "peer": p.address.to_string(), "name": p.label, "state": state, "reason": reason}).to_string()
    } else {
        let why = reason.map(|r| format!(": {r}")).unwrap_or_default();
        format!("peer {} ({}): {state}{why}", p.label, p.address)
    }
}

/// The table was saved, as a JSON event.
pub fn saved_event(snapshot: &Snapshot, path: &Path) -> String {
    serde_json::json!({"event": "saved", "prefixes": snapshot.routes.len(), "path": path.display().to_string()}).to_string()
}
