//! The policy file and the files it names: the only place that reads them,
//! and (with [`crate::state_dir::replace_atomically`]) writes them.
//!
//! Reading is defensive, because a policy may name any path:
//! - only regular files are read (a FIFO, a device or a directory is
//!   refused without blocking: files are opened non-blocking and checked
//!   with `fstat` before a byte is read);
//! - at most [`MAX_FILE_BYTES`] of each (a larger file is refused, so
//!   `/dev/zero` or a runaway log cannot grow memory);
//! - prefix files are resolved relative to the policy's folder and must
//!   stay inside it, so `../../etc/shadow` is refused;
//! - what the policy crate reports about a file never echoes more than
//!   its first bad line.

use crate::error::{Context as _, Error, Result};
use policy::{Loaded, Policy};
use std::io::Read as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Component, Path, PathBuf};

/// The largest policy or prefix file read.
pub const MAX_FILE_BYTES: u64 = 64 << 20;

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadRefusal {
    /// Not a regular file (a FIFO, a device, a directory…).
    NotRegular,
    /// Larger than [`MAX_FILE_BYTES`].
    TooLarge,
    /// Outside the policy's folder.
    Outside,
    /// The system refused.
    Io(std::io::Error),
}

impl std::fmt::Display for ReadRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadRefusal::NotRegular => f.write_str("not a regular file"),
            ReadRefusal::TooLarge => write!(f, "larger than {} MiB", MAX_FILE_BYTES >> 20),
            ReadRefusal::Outside => f.write_str("outside the policy's folder"),
            ReadRefusal::Io(e) => write!(f, "{e}"),
        }
    }
}

/// Reads a regular file of at most [`MAX_FILE_BYTES`], never blocking on
/// a FIFO or reading a device.
pub fn read_bounded(path: &Path) -> std::result::Result<Vec<u8>, ReadRefusal> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(ReadRefusal::Io)?;
    let meta = file.metadata().map_err(ReadRefusal::Io)?;
    if !meta.is_file() {
        return Err(ReadRefusal::NotRegular);
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(ReadRefusal::TooLarge);
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // The file may grow after fstat: read one byte past the limit to tell.
    file.take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadRefusal::Io)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(ReadRefusal::TooLarge);
    }
    Ok(bytes)
}

/// `name` (from the policy in `folder`) as a path inside `folder`, or
/// `None` if it leads out of it. Resolved by its components alone, before
/// any file is touched.
pub fn inside(folder: &Path, name: &str) -> Option<PathBuf> {
    let rel = Path::new(name);
    let rel = if rel.is_absolute() {
        rel.strip_prefix(folder).ok()?
    } else {
        rel
    };
    let mut parts: Vec<&std::ffi::OsStr> = Vec::new();
    for c in rel.components() {
        match c {
            Component::Normal(p) => parts.push(p),
            Component::CurDir => {}
            Component::ParentDir => {
                parts.pop()?;
            }
            Component::RootDir | Component::Prefix(_) => return None,
        }
    }
    let mut out = folder.to_path_buf();
    out.extend(parts);
    Some(out)
}

/// The callback the policy crate reads prefix files with.
fn prefix_reader(folder: PathBuf) -> impl FnMut(&str) -> std::result::Result<String, String> {
    move |name: &str| {
        let path = inside(&folder, name).ok_or_else(|| {
            format!(
                "{name}: {} ({}); prefix files are read from the policy's folder and below",
                ReadRefusal::Outside,
                folder.display()
            )
        })?;
        let bytes = read_bounded(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        String::from_utf8(bytes).map_err(|e| {
            format!(
                "{}: not UTF-8 text (first bad byte at offset {})",
                path.display(),
                e.utf8_error().valid_up_to()
            )
        })
    }
}

fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Reads and loads a policy (with its prefix files).
pub fn load(path: &Path) -> Result<Loaded> {
    let bytes = read_bounded(path).map_err(|e| {
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
/// them: the text and the files' contents, so that the engine can load
/// (and edit, and load again) the policy without touching the disk.
pub fn read_policy_text(path: &Path) -> Result<engine::io::PolicyText> {
    let text = read_text(path)?;
    let mut files = std::collections::BTreeMap::new();
    let mut read = prefix_reader(folder_of(path));
    let mut recording = |name: &str| {
        let r = read(name);
        files.insert(name.to_string(), r.clone());
        r
    };
    let name = path.display().to_string();
    let _ = policy::load(&name, &text, &mut recording);
    Ok(engine::io::PolicyText { name, text, files })
}

/// Loads a policy from bytes not (yet) on disk, as if they were at `path`.
pub fn load_bytes(path: &Path, bytes: &[u8]) -> Loaded {
    let mut read = prefix_reader(folder_of(path));
    let text = String::from_utf8_lossy(bytes);
    policy::load(&path.display().to_string(), &text, &mut read)
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
    let bytes = read_bounded(path).runtime(format!("cannot read {}", path.display()))?;
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
    fn prefix_files_stay_inside_the_policy_folder() {
        let f = Path::new("/etc/tollgate");
        assert_eq!(
            inside(f, "lists/national.txt"),
            Some(PathBuf::from("/etc/tollgate/lists/national.txt"))
        );
        assert_eq!(
            inside(f, "./a/../b.txt"),
            Some(PathBuf::from("/etc/tollgate/b.txt"))
        );
        assert_eq!(
            inside(f, "/etc/tollgate/x.txt"),
            Some(PathBuf::from("/etc/tollgate/x.txt"))
        );
        assert_eq!(inside(f, "../../../../etc/shadow"), None);
        assert_eq!(inside(f, "a/../../shadow"), None);
        assert_eq!(inside(f, "/etc/shadow"), None);
    }

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
        assert!(matches!(read_bounded(&fifo), Err(ReadRefusal::NotRegular)));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_device_is_refused() {
        assert!(matches!(
            read_bounded(Path::new("/dev/zero")),
            Err(ReadRefusal::NotRegular)
        ));
    }
}
