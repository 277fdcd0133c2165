//! The policy file and the files it names: the only place that reads them,
//! and (with [`crate::state_dir::replace_atomically`]) writes them.
//!
//! Reading is defensive, because a policy may name any path:
//! - only regular files are read (a FIFO, a device or a directory is
//!   refused without blocking: files are opened non-blocking and checked
//!   with `fstat` before a byte is read);
//! - at most `policy::POLICY_FILE_LIMIT` of the policy and
//!   `policy::PREFIX_FILE_LIMIT` of each prefix file (a larger file is
//!   refused, so `/dev/zero` or a runaway log cannot grow memory);
//! - prefix files are resolved (by the policy crate, on the text)
//!   relative to the policy's folder and must stay inside it, so
//!   `../../etc/shadow` is refused before anything is opened;
//! - what the policy crate reports about a file never echoes more than
//!   its first bad line.

use crate::error::{Context as _, Error, Result};
use policy::{Loaded, Policy};
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadRefusal {
    /// Not a regular file (a FIFO, a device, a directory…).
    NotRegular,
    /// Larger than the limit.
    TooLarge(u64),
    /// The system refused.
    Io(std::io::Error),
}

impl std::fmt::Display for ReadRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadRefusal::NotRegular => f.write_str("not a regular file"),
            ReadRefusal::TooLarge(limit) => write!(f, "larger than {} MiB", limit >> 20),
            ReadRefusal::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Reads a regular file of at most `limit` bytes, never blocking on a
/// FIFO or reading a device: opened non-blocking, checked with `fstat`
/// before a byte is read, and read no further than one byte past the
/// limit (a file may grow after `fstat`).
pub fn read_bounded(path: &Path, limit: u64) -> std::result::Result<Vec<u8>, ReadRefusal> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC)
        .open(path)
        .map_err(ReadRefusal::Io)?;
    let meta = file.metadata().map_err(ReadRefusal::Io)?;
    if !meta.is_file() {
        return Err(ReadRefusal::NotRegular);
    }
    if meta.len() > limit {
        return Err(ReadRefusal::TooLarge(limit));
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadRefusal::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadRefusal::TooLarge(limit));
    }
    Ok(bytes)
}

/// The policy crate's file contract, served from the disk: `open` as
/// `policy::load_with_folders` wants it.
fn open_prefix_file(path: &Path, limit: u64) -> std::result::Result<Vec<u8>, policy::ReadError> {
    read_bounded(path, limit).map_err(|e| match e {
        ReadRefusal::NotRegular => policy::ReadError::NotRegularFile,
        ReadRefusal::TooLarge(limit) => policy::ReadError::TooLarge { limit },
        ReadRefusal::Io(e) if e.kind() == std::io::ErrorKind::NotFound => {
            policy::ReadError::NotFound
        }
        ReadRefusal::Io(e) => policy::ReadError::Io(e.to_string()),
    })
}

/// Where a policy at `path` may read its prefix files from: its own
/// folder (canonicalised, so that symbolic links to it do not confuse the
/// check) and below.
fn folders(path: &Path) -> policy::PrefixFolders {
    let dir = folder_of(path);
    policy::PrefixFolders::beside(std::fs::canonicalize(&dir).unwrap_or(dir))
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Reads and loads a policy (with its prefix files).
pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = read_bounded(path, policy::POLICY_FILE_LIMIT).map_err(|e| {
        let kind = match e {
            ReadRefusal::Io(_) => Error::runtime,
            _ => Error::invalid,
        };
        kind(format!("cannot read the policy {}: {e}", path.display()))
            .hint("pass -c FILE or set TOLLGATE_CONFIG; examples/ has policies to start from")
    })?;
    tracing::debug!(path = %path.display(), "loading policy");
    Ok(load_bytes(path, &bytes))
}

/// Reads the policy and every prefix file it names, as the engine takes
/// them: the text and the files' contents (or why each could not be
/// read), so that the engine can load, edit and load again the policy
/// without touching the disk.
pub fn read_policy_text(path: &Path) -> Result<engine::io::PolicyText> {
    let text = read_text(path)?;
    let mut files = std::collections::BTreeMap::new();
    let folders = folders(path);
    let mut recording = |written: &str| {
        let r = folders
            .resolve(written)
            .and_then(|p| open_prefix_file(&p, folders.limit));
        files.insert(
            written.to_string(),
            r.clone()
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| e.to_string()),
        );
        r
    };
    let name = path.display().to_string();
    let _ = policy::load_bytes(&name, text.as_bytes(), &mut recording);
    Ok(engine::io::PolicyText { name, text, files })
}

/// Loads a policy from bytes not (yet) on disk, as if they were at `path`.
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Loaded {
    policy::load_with_folders(
        &path.display().to_string(),
        bytes,
        &folders(path),
        &mut open_prefix_file,
    )
}

/// Loads a policy from text not (yet) on disk, as if it were at `path`.
pub fn load_text(path: &Path, text: &str) -> Loaded {
    load_bytes(path, text.as_bytes())
}

/// A loaded policy, refused with every diagnostic if it has errors.
/// Warnings are printed to stderr.
pub fn valid(path: &Path) -> Result<(Loaded, Policy)> {
    let loaded = load(path)?;
    match loaded.policy.clone() {
        Some(p) => {
            for d in &loaded.diagnostics {
                eprint!("{}", d.render(&loaded.sources));
            }
            Ok((loaded, p))
        }
        None => Err(Error::invalid(format!(
            "the policy {} is invalid; nothing was changed\n{}",
            path.display(),
            loaded.render()
        ))
        .hint("`tollgate check` lists the same problems")),
    }
}

/// The policy file's text, for editing.
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = read_bounded(path, policy::POLICY_FILE_LIMIT)
        .runtime(format!("cannot read {}", path.display()))?;
    String::from_utf8(bytes).map_err(|e| {
        Error::invalid(format!(
            "{} is not UTF-8 text (first bad byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Reads host facts: `interfaces = ["eth0", …]`.
pub fn load_facts(path: &Path) -> Result<compiler::HostFacts> {
    let text = read_text(path)?;
    let invalid = |what: String| Error::invalid(format!("{}: {what}", path.display()));
    let doc = toml_edit::Document::parse(text)
        .map_err(|e| invalid(format!("not valid TOML: {}", e.message().trim())))?;
    let mut facts = compiler::HostFacts::default();
    if let Some(item) = doc.get("interfaces") {
        let arr = item
            .as_array()
            .ok_or_else(|| invalid("`interfaces` must be a list of names".into()))?;
        let mut set = std::collections::BTreeSet::new();
        for v in arr.iter() {
            let name = v
                .as_str()
                .ok_or_else(|| invalid("every interface must be a string".into()))?;
            set.insert(
                net_types::IfName::new(name).map_err(|e| invalid(format!("`{name}`: {e}")))?,
            );
        }
        facts.interfaces = Some(set);
    }
    Ok(facts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = std::env::temp_dir().join(format!("tg-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let fifo = dir.join("fifo.txt");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap();
        assert!(made.success());
        assert!(matches!(
            read_bounded(&fifo, 1024),
            Err(ReadRefusal::NotRegular)
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_device_is_refused() {
        assert!(matches!(
            read_bounded(Path::new("/dev/zero"), 1024),
            Err(ReadRefusal::NotRegular)
        ));
    }
}
