//! This host's copy of the last accounting batch the history committed
//! (`accounting-copy` in the state directory), kept only when the history
//! is a ClickHouse server: so that a daemon (re)started while that server
//! is away can resume from it instead of refusing to start, and shape
//! and account from the first second (docs/clickhouse.md, "When the
//! server is away").
//!
//! The copy is *certain* when nothing can have been stored after it. An
//! append first leaves a marker (`accounting-copy.unsure`, durably); the
//! marker goes once the outcome is known and leaves the copy right: the
//! batch committed (it is the new copy), or the attempt failed without
//! reaching the server ([`history::StoreError::Unreachable`]). Any other
//! failure (a timeout, a lost answer: the batch may have landed), or a
//! crash anywhere in between, leaves the marker, and a copy with a marker
//! is never resumed from: a batch that landed unseen would otherwise be
//! counted again.
//!
//! The file: one line `tollgate accounting copy 1 sequence=N`, then the
//! state's bytes as the store holds them. Both files are written with
//! [`crate::state_dir::replace_atomically`].

use crate::error::{Error, Result};
use crate::state_dir::{remove_durably, replace_atomically};
use std::path::{Path, PathBuf};

const HEADER: &str = "tollgate accounting copy 1";

/// The last committed batch's sequence and state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccountingCopy {
    /// The batch's sequence number.
    pub sequence: u64,
    /// The accounting state committed with it.
    pub state: Vec<u8>,
    /// Whether nothing can have been stored after it (no marker).
    pub certain: bool,
}

impl AccountingCopy {
    /// Parses the file's bytes; `None` when they are not a copy.
    fn parse(bytes: &[u8], certain: bool) -> Option<AccountingCopy> {
        let end = bytes.iter().position(|&b| b == b'\n')?;
        let line = std::str::from_utf8(&bytes[..end]).ok()?;
        let sequence = line.strip_prefix(HEADER)?.strip_prefix(" sequence=")?;
        Some(AccountingCopy {
            sequence: sequence.parse().ok()?,
            state: bytes[end + 1..].to_vec(),
            certain,
        })
    }
}

/// The marker of an append whose outcome is not known yet.
pub fn marker(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".unsure");
    PathBuf::from(name)
}

/// The largest copy read back: far above any accounting state (tens of
/// bytes a counter), so that a stray file cannot take the memory.
const MAX_BYTES: u64 = 1 << 30;

/// Reads the copy; none yet is `None`. Anything but a regular file of at
/// most [`MAX_BYTES`] (a FIFO, a folder, a huge file) is refused, named.
pub fn load(path: &Path) -> Result<Option<AccountingCopy>> {
    let certain = !marker(path).exists();
    match std::fs::symlink_metadata(path) {
        Ok(m) if !m.is_file() || m.len() > MAX_BYTES => {
            return Err(Error::runtime(format!(
                "{} is not tollgate's copy of an accounting batch (not a regular file of at most 1 GiB)",
                path.display()
            ))
            .hint("it is the daemon's own file; remove it, and start the daemon while the history's server answers"))
        }
        _ => {}
    }
    match std::fs::read(path) {
        Ok(bytes) => AccountingCopy::parse(&bytes, certain).map(Some).ok_or_else(|| {
            Error::runtime(format!(
                "{} is not tollgate's copy of an accounting batch",
                path.display()
            ))
            .hint("it is the daemon's own file; remove it, and start the daemon while the history's server answers")
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::runtime(format!(
            "cannot read {}: {e}",
            path.display()
        ))),
    }
}

/// Before an append of batch `sequence`: the marker, on disk. `false`
/// when a marker is there already: an earlier attempt's doubt (or a
/// crash's) stands until a batch commits, whatever this attempt's outcome.
pub fn begin(path: &Path, sequence: u64) -> Result<bool> {
    let marker = marker(path);
    if marker.exists() {
        return Ok(false);
    }
    replace_atomically(&marker, format!("{sequence}\n").as_bytes())?;
    Ok(true)
}

/// The batch committed: it is the copy, and certain.
pub fn committed(path: &Path, sequence: u64, state: &[u8]) -> Result<()> {
    let mut bytes = format!("{HEADER} sequence={sequence}\n").into_bytes();
    bytes.extend_from_slice(state);
    replace_atomically(path, &bytes)?;
    remove_durably(&marker(path))
}

/// The append reached no server, and its [`begin`] made the marker: the
/// copy is as certain as before it.
pub fn unreached(path: &Path) -> Result<()> {
    remove_durably(&marker(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_copy_is_certain_only_without_a_marker() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounting-copy");
        assert_eq!(load(&path).unwrap(), None);
        // State bytes may hold anything, newlines included.
        begin(&path, 42).unwrap();
        committed(&path, 42, b"state\nwith\x00bytes").unwrap();
        let copy = load(&path).unwrap().unwrap();
        assert_eq!(copy.sequence, 42);
        assert_eq!(copy.state, b"state\nwith\x00bytes");
        assert!(copy.certain);
        // An attempt that reached no server leaves it certain.
        assert!(begin(&path, 43).unwrap());
        assert!(!load(&path).unwrap().unwrap().certain, "unsure meanwhile");
        unreached(&path).unwrap();
        assert!(load(&path).unwrap().unwrap().certain);
        // Any other outcome (or a crash) leaves the marker: uncertain,
        // with the last committed batch; a later attempt does not make
        // the marker its own, so reaching no server does not clear it.
        assert!(begin(&path, 43).unwrap());
        let copy = load(&path).unwrap().unwrap();
        assert_eq!((copy.sequence, copy.certain), (42, false));
        assert!(!begin(&path, 43).unwrap(), "the earlier doubt stands");
        committed(&path, 43, b"").unwrap();
        assert!(load(&path).unwrap().unwrap().certain);
    }

    #[test]
    fn a_file_that_is_not_a_copy_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("accounting-copy");
        for bad in [
            &b""[..],
            b"no newline",
            b"tollgate accounting copy 2 sequence=1\n",
            b"tollgate accounting copy 1 sequence=x\n",
        ] {
            std::fs::write(&path, bad).unwrap();
            let e = load(&path).unwrap_err().to_string();
            assert!(e.contains("accounting-copy"), "{e}");
        }
        // A huge file (sparse here) is refused without being read.
        std::fs::File::create(&path)
            .unwrap()
            .set_len(MAX_BYTES + 1)
            .unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("at most 1 GiB"), "{e}");
        // A FIFO is refused at once (reading it would wait for a writer).
        std::fs::remove_file(&path).unwrap();
        let made = std::process::Command::new("mkfifo").arg(&path).status();
        assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("not a regular file"), "{e}");
    }
}
