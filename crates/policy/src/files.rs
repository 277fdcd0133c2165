//! The contract for reading the files a policy names (prefix lists).
//!
//! This crate does no I/O: the caller reads each file through a callback.
//! What the callback may read, and how the crate reports what went wrong,
//! is decided here, so that every caller refuses the same things:
//!
//! - only files inside the policy's folder or an explicitly allowed folder
//!   ([`PrefixFolders::resolve`], pure and lexical: `..` is resolved on the
//!   text, so `../../etc/shadow` is refused before anything is opened);
//! - only regular files (a FIFO would block `check` forever, `/dev/zero`
//!   would grow it without bound): the caller opens with `O_NONBLOCK` and
//!   checks `fstat`, and says [`ReadError::NotRegularFile`];
//! - at most [`PREFIX_FILE_LIMIT`] bytes: the caller reads at most one byte
//!   more than the limit and says [`ReadError::TooLarge`] if it got it.
//!
//! Each [`ReadError`] becomes one diagnostic at the `prefix_files` entry that
//! named the file, with a hint.

use std::path::{Component, Path, PathBuf};

/// The largest prefix list read: 64 MiB. A full IPv4 and IPv6 table is
/// about a million prefixes of 20 bytes, a third of this.
pub const PREFIX_FILE_LIMIT: u64 = 64 << 20;

/// The largest policy file read: 256 MiB, about two million tenants as
/// `examples/` writes them.
pub const POLICY_FILE_LIMIT: u64 = 256 << 20;

/// Why a file named by the policy could not be read. The `read_file`
/// callback returns it; [`crate::load_bytes`] reports it where the file is
/// named.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// The path names a FIFO, a device, a folder or a socket.
    NotRegularFile,
    /// The file is larger than `limit` bytes.
    TooLarge {
        /// The limit, in bytes.
        limit: u64,
    },
    /// The path leads outside the policy's folder and every allowed folder.
    OutsideAllowedFolders {
        /// The folders files may be read from, for the hint.
        allowed: Vec<PathBuf>,
    },
    /// There is no such file.
    NotFound,
    /// Any other failure, as the operating system words it.
    Io(String),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::NotRegularFile => write!(f, "it is not a regular file"),
            ReadError::TooLarge { limit } => write!(f, "it is larger than {limit} bytes"),
            ReadError::OutsideAllowedFolders { .. } => {
                write!(f, "it is outside the folders prefix lists are read from")
            }
            ReadError::NotFound => write!(f, "there is no such file"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for ReadError {}

impl ReadError {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            ReadError::NotRegularFile => "name a plain text file with one prefix per line, not a pipe, device or folder".into(),
            ReadError::TooLarge { limit } => format!(
                "a prefix list is read whole and may be at most {} MiB; split it, or check that prefix_files names the right file",
                limit >> 20
            ),
            ReadError::OutsideAllowedFolders { allowed } => format!(
                "prefix lists are read from {}; move the file there and name it relative to the policy",
                allowed.iter().map(|p| format!("`{}`", p.display())).collect::<Vec<_>>().join(", ")
            ),
            ReadError::NotFound => {
                "check the path; relative paths are read from the policy file's folder".into()
            }
            ReadError::Io(_) => "check the path and the file's permissions; relative paths are read from the policy file's folder".into(),
        }
    }
}

/// Where prefix lists may be read from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrefixFolders {
    /// The policy file's folder: relative names are resolved against it.
    /// The binary passes it absolute (canonicalised).
    pub policy_dir: PathBuf,
    /// Further folders absolute names may lead into.
    pub allowed: Vec<PathBuf>,
    /// The most bytes one file may have.
    pub limit: u64,
}

impl PrefixFolders {
    /// Files from the policy's folder only, up to [`PREFIX_FILE_LIMIT`].
    pub fn beside(policy_dir: impl Into<PathBuf>) -> PrefixFolders {
        PrefixFolders {
            policy_dir: policy_dir.into(),
            allowed: Vec::new(),
            limit: PREFIX_FILE_LIMIT,
        }
    }

    /// The file a `prefix_files` entry names, or why it may not be read.
    ///
    /// Pure: `.` and `..` are resolved on the text (`a/../b` is `b`), so a
    /// name cannot climb out of the folders however it is spelled. Symbolic
    /// links are not seen here; a caller that follows them checks the
    /// canonical path again with [`PrefixFolders::check`].
    pub fn resolve(&self, name: &str) -> Result<PathBuf, ReadError> {
        resolve_prefix_file(&self.policy_dir, name, &self.allowed)
    }

    /// Whether an already resolved (or canonicalised) path lies inside the
    /// policy's folder or an allowed folder.
    pub fn check(&self, path: &Path) -> Result<(), ReadError> {
        let path = lexical(path).ok_or_else(|| self.outside())?;
        if self.roots().iter().any(|root| path.starts_with(root)) {
            Ok(())
        } else {
            Err(self.outside())
        }
    }

    fn roots(&self) -> Vec<PathBuf> {
        std::iter::once(&self.policy_dir)
            .chain(&self.allowed)
            .filter_map(|p| lexical(p))
            .collect()
    }

    fn outside(&self) -> ReadError {
        ReadError::OutsideAllowedFolders {
            allowed: self.roots(),
        }
    }
}

/// Resolves a `prefix_files` entry against the policy's folder and checks
/// that it stays inside that folder or one of `allowed`.
///
/// An absolute name is taken as it is; a relative one is joined to
/// `policy_dir`. Either way `.` and `..` are resolved on the text and the
/// result must lie inside a folder (component-wise: `/etc/tollgate2` is not
/// inside `/etc/tollgate`). A name with a NUL byte, or one whose `..`
/// climbs above the start of a relative folder, is refused.
pub fn resolve_prefix_file(
    policy_dir: &Path,
    name: &str,
    allowed: &[PathBuf],
) -> Result<PathBuf, ReadError> {
    let folders = PrefixFolders {
        policy_dir: policy_dir.to_path_buf(),
        allowed: allowed.to_vec(),
        limit: PREFIX_FILE_LIMIT,
    };
    if name.contains('\0') {
        return Err(folders.outside());
    }
    let joined = policy_dir.join(name);
    let path = lexical(&joined).ok_or_else(|| folders.outside())?;
    folders.check(&path)?;
    Ok(path)
}

/// `path` with `.` and `..` resolved on the text. `None` if a relative path
/// climbs above its start; `/..` is `/`, as the kernel reads it.
fn lexical(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    let mut depth = 0usize;
    for c in path.components() {
        match c {
            Component::Prefix(_) | Component::RootDir => out.push(c.as_os_str()),
            Component::CurDir => {}
            Component::ParentDir => {
                if depth > 0 {
                    out.pop();
                    depth -= 1;
                } else if !out.has_root() {
                    return None;
                }
            }
            Component::Normal(n) => {
                out.push(n);
                depth += 1;
            }
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve(name: &str) -> Result<PathBuf, ReadError> {
        resolve_prefix_file(
            Path::new("/etc/tollgate"),
            name,
            &[PathBuf::from("/var/lib/tollgate/prefixes")],
        )
    }

    #[test]
    fn names_resolve_inside_the_policy_folder() {
        assert_eq!(
            resolve("national.txt"),
            Ok("/etc/tollgate/national.txt".into())
        );
        assert_eq!(
            resolve("./lists/../national.txt"),
            Ok("/etc/tollgate/national.txt".into())
        );
        assert_eq!(
            resolve("/etc/tollgate/lists/a.txt"),
            Ok("/etc/tollgate/lists/a.txt".into())
        );
        assert_eq!(
            resolve("/var/lib/tollgate/prefixes/ix.txt"),
            Ok("/var/lib/tollgate/prefixes/ix.txt".into())
        );
    }

    #[test]
    fn climbing_out_is_refused_however_it_is_spelled() {
        // Issue 12, item 11: this printed /etc/shadow line by line.
        for name in [
            "../../../../etc/shadow",
            "/etc/shadow",
            "lists/../../shadow",
            "/etc/tollgate/../shadow",
            "/etc/tollgate2/x.txt",
            "/var/lib/tollgate/prefixes/../secret",
            "a\0b",
        ] {
            match resolve(name) {
                Err(ReadError::OutsideAllowedFolders { allowed }) => assert_eq!(
                    allowed,
                    vec![
                        PathBuf::from("/etc/tollgate"),
                        PathBuf::from("/var/lib/tollgate/prefixes")
                    ]
                ),
                other => panic!("{name:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_relative_policy_folder_cannot_be_climbed_out_of() {
        let r = resolve_prefix_file(Path::new(""), "../x.txt", &[]);
        assert!(matches!(r, Err(ReadError::OutsideAllowedFolders { .. })));
        assert_eq!(
            resolve_prefix_file(Path::new(""), "x.txt", &[]),
            Ok(PathBuf::from("x.txt"))
        );
        assert_eq!(
            resolve_prefix_file(Path::new("conf"), "a/../x.txt", &[]),
            Ok(PathBuf::from("conf/x.txt"))
        );
    }

    #[test]
    fn a_canonical_path_is_checked_again() {
        let f = PrefixFolders::beside("/etc/tollgate");
        assert_eq!(f.check(Path::new("/etc/tollgate/a.txt")), Ok(()));
        assert!(f.check(Path::new("/etc/shadow")).is_err());
    }

    #[test]
    fn every_refusal_has_a_hint() {
        for e in [
            ReadError::NotRegularFile,
            ReadError::TooLarge { limit: 64 << 20 },
            ReadError::OutsideAllowedFolders {
                allowed: vec!["/etc/tollgate".into()],
            },
            ReadError::NotFound,
            ReadError::Io("permission denied".into()),
        ] {
            assert!(!e.hint().is_empty() && !e.to_string().is_empty());
        }
        assert!(ReadError::TooLarge { limit: 64 << 20 }
            .hint()
            .contains("64 MiB"));
    }
}
