//! The quarantine file: records and samples refused as implausible, kept
//! aside for an operator (`DIR/flows-quarantine.jsonl`, one JSON object a
//! line).
//!
//! Two kinds of entries: `"kind": "record"`, a flow record the attribution
//! refused as beyond any link's capacity (exporter, addresses, the
//! counter, its value after sampling, the reason); and `"kind": "sample"`,
//! a tenant × realm × direction × slot sum the history refused (tenant,
//! realm, slot, bytes, packets, the store's reason).
//!
//! The file is appended to and flushed to disk; a crash can at worst cut
//! its last line, which readers skip. It is bounded: past 4 MiB it is
//! renamed to `flows-quarantine.1.jsonl` (replacing the previous one,
//! whose entries are counted as dropped) and a new one begun, so the two
//! together never pass 8 MiB.

use accounting::Sample;
use flows::Quarantined;
use jiff::Timestamp;
use serde_json::json;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

/// The file's name in the state directory.
pub const QUARANTINE_FILE: &str = "flows-quarantine.jsonl";
/// The previous file, once the current one filled.
pub const QUARANTINE_OLD: &str = "flows-quarantine.1.jsonl";
/// When the file is rotated.
const CAP: u64 = 4 << 20;

/// The quarantine file of one state directory.
#[derive(Debug)]
pub struct QuarantineFile {
    path: PathBuf,
    old: PathBuf,
    size: u64,
    /// Entries written since start.
    pub written: u64,
    /// Entries dropped by rotation since start.
    pub dropped: u64,
}

impl QuarantineFile {
    /// The file in `dir` (not created until something is quarantined).
    pub fn new(dir: &Path) -> QuarantineFile {
        let path = dir.join(QUARANTINE_FILE);
        let size = std::fs::metadata(&path).map_or(0, |m| m.len());
        QuarantineFile {
            old: dir.join(QUARANTINE_OLD),
            path,
            size,
            written: 0,
            dropped: 0,
        }
    }

    /// Where it is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `entries` (one JSON line each) and flushes them to disk.
    pub fn append(&mut self, entries: &[serde_json::Value]) -> std::io::Result<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let mut text = String::new();
        for e in entries {
            text.push_str(&e.to_string());
            text.push('\n');
        }
        if self.size > 0 && self.size + text.len() as u64 > CAP {
            self.rotate()?;
        }
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        self.size += text.len() as u64;
        self.written += entries.len() as u64;
        Ok(())
    }

    fn rotate(&mut self) -> std::io::Result<()> {
        if let Ok(f) = std::fs::File::open(&self.old) {
            self.dropped += std::io::BufReader::new(f).lines().count() as u64;
        }
        crate::state_dir::move_durably(&self.path, &self.old)
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        self.size = 0;
        Ok(())
    }
}

/// The entry for a record the attribution refused.
pub fn record_entry(at: Timestamp, q: &Quarantined) -> serde_json::Value {
    let r = &q.record;
    json!({
        "at": at.to_string(),
        "kind": "record",
        "exporter": q.exporter.to_string(),
        "received_ms": q.received_ms,
        "src": r.src.map(|a| a.to_string()),
        "dst": r.dst.map(|a| a.to_string()),
        "protocol": r.protocol,
        "src_port": r.src_port,
        "dst_port": r.dst_port,
        "counter": q.counter.to_string(),
        "value": q.value,
        "reported_bytes": r.bytes,
        "reported_packets": r.packets,
        "sampling": format!("{}/{}", r.sampling.population, r.sampling.selected),
        "start_ms": r.start_ms,
        "end_ms": r.end_ms,
        "reason": q.reason.to_string(),
    })
}

/// The entry for a sample the history refused.
pub fn sample_entry(at: Timestamp, s: &Sample, reason: &str) -> serde_json::Value {
    json!({
        "at": at.to_string(),
        "kind": "sample",
        "slot": s.slot.0,
        "slot_start": s.slot.to_string(),
        "tenant": s.key.tenant.0,
        "realm": s.key.realm.0,
        "direction": s.key.direction.as_str(),
        "bytes": s.bytes,
        "packets": s.packets,
        "reason": reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_bounded_and_what_rotation_drops_is_counted() {
        let dir = std::env::temp_dir().join(format!("tg-quarantine-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut q = QuarantineFile::new(&dir);
        let entry = json!({ "kind": "record", "pad": "x".repeat(1000) });
        let batch: Vec<_> = (0..100).map(|_| entry.clone()).collect();
        for _ in 0..120 {
            q.append(&batch).unwrap();
        }
        let size = |n: &str| std::fs::metadata(dir.join(n)).map_or(0, |m| m.len());
        assert!(size(QUARANTINE_FILE) <= CAP, "{}", size(QUARANTINE_FILE));
        assert!(size(QUARANTINE_OLD) <= CAP);
        assert_eq!(q.written, 12_000);
        let kept =
            |n: &str| std::fs::read_to_string(dir.join(n)).map_or(0, |t| t.lines().count() as u64);
        assert_eq!(
            q.dropped + kept(QUARANTINE_FILE) + kept(QUARANTINE_OLD),
            12_000
        );
        assert!(q.dropped > 0);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
