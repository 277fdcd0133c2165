//! API tokens: who may read or change what.
//!
//! A token's secret is 32 random bytes, shown once as `tg_` and 64 hex
//! digits; the file keeps only its SHA-256 (a secret that long needs no
//! slow hash: it cannot be guessed, only stolen, and the file does not
//! hold it). The file is JSON, written whole and atomically by `tollgate
//! token`, and read again by the daemon when it changes, so a revoked
//! token stops working at once.
//!
//! The dashboard's browser sessions are kept here too, in memory: a token
//! entered once opens a session whose random id is the cookie, so the
//! browser never holds the token (see [`Tokens::open_session`]). A
//! restart of the daemon signs everyone out.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// Every read.
    Read,
    /// Every read and every write.
    Admin,
    /// One tenant's own pages and bills, nothing else.
    Tenant(u32),
    /// An agent's: add its batches to the history and read where the
    /// agents stand (`/api/v1/history/batches`, `/api/v1/agents`), nothing
    /// else: no tenant, no bill, no change to the policy.
    Agent,
}

impl Scope {
    /// Whether it may change things.
    pub fn may_write(self) -> bool {
        self == Scope::Admin
    }

    /// Whether it may see `tenant`.
    pub fn may_see(self, tenant: u32) -> bool {
        match self {
            Scope::Read | Scope::Admin => true,
            Scope::Tenant(t) => t == tenant,
            Scope::Agent => false,
        }
    }

    /// Whether it may see what spans every tenant.
    pub fn site_wide(self) -> bool {
        matches!(self, Scope::Read | Scope::Admin)
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Scope::Read => f.write_str("read"),
            Scope::Admin => f.write_str("admin"),
            Scope::Tenant(t) => write!(f, "tenant:{t}"),
            Scope::Agent => f.write_str("agent"),
        }
    }
}

impl std::str::FromStr for Scope {
    type Err = TokenError;
    fn from_str(s: &str) -> Result<Scope, TokenError> {
        match s {
            "read" => Ok(Scope::Read),
            "admin" => Ok(Scope::Admin),
            "agent" => Ok(Scope::Agent),
            _ => s
                .strip_prefix("tenant:")
                .and_then(|id| id.parse().ok())
                .map(Scope::Tenant)
                .ok_or_else(|| {
                    TokenError::Invalid(format!(
                        "`{s}` is not a scope; use read, admin, agent or tenant:ID (a tenant's numeric id)"
                    ))
                }),
        }
    }
}

impl Serialize for Scope {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Scope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Scope, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A token as the file keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Token {
    /// Its name, to list and revoke it by.
    pub name: String,
    /// What it may do.
    pub scope: Scope,
    /// The SHA-256 of its secret, in hex.
    pub sha256: String,
    /// When it was made.
    pub created: jiff::Timestamp,
}

/// The tokens file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenFile {
    /// Every token.
    pub tokens: Vec<Token>,
}

/// Why a token operation failed.
#[derive(Debug)]
pub enum TokenError {
    /// The file cannot be read or written.
    Io(PathBuf, std::io::Error),
    /// The file is not a tokens file.
    Damaged(PathBuf, String),
    /// The request is wrong (a bad scope, a name taken or unknown).
    Invalid(String),
}

impl std::fmt::Display for TokenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TokenError::Io(p, e) => write!(f, "{}: {e}", p.display()),
            TokenError::Damaged(p, e) => write!(f, "{} is not a tokens file: {e}", p.display()),
            TokenError::Invalid(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for TokenError {}

/// The SHA-256 of a secret, in hex.
pub fn digest(secret: &str) -> String {
    let d = Sha256::digest(secret.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new secret: `tg_` and 32 random bytes in hex.
pub fn new_secret() -> Result<String, TokenError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        TokenError::Io(
            PathBuf::from("/dev/urandom"),
            std::io::Error::other(e.to_string()),
        )
    })?;
    Ok(format!(
        "tg_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    ))
}

impl TokenFile {
    /// Reads the file; a missing file has no tokens.
    pub fn load(path: &Path) -> Result<TokenFile, TokenError> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_json::from_str(&text)
                .map_err(|e| TokenError::Damaged(path.to_path_buf(), e.to_string())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TokenFile::default()),
            Err(e) => Err(TokenError::Io(path.to_path_buf(), e)),
        }
    }

    /// The file's text.
    pub fn to_text(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    /// Adds a token; returns its secret, which is shown once.
    pub fn add(
        &mut self,
        name: &str,
        scope: Scope,
        now: jiff::Timestamp,
    ) -> Result<String, TokenError> {
        if name.is_empty() || name.len() > 64 || name.chars().any(|c| c.is_control()) {
            return Err(TokenError::Invalid(
                "a token's name is 1 to 64 printable characters".into(),
            ));
        }
        if self.tokens.iter().any(|t| t.name == name) {
            return Err(TokenError::Invalid(format!(
                "a token named `{name}` exists; revoke it first, or choose another name"
            )));
        }
        let secret = new_secret()?;
        self.tokens.push(Token {
            name: name.to_string(),
            scope,
            sha256: digest(&secret),
            created: now,
        });
        Ok(secret)
    }

    /// Removes a token by name.
    pub fn revoke(&mut self, name: &str) -> Result<Token, TokenError> {
        let i = self
            .tokens
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| {
                TokenError::Invalid(format!(
                    "no token is named `{name}`; `tollgate token list` lists them"
                ))
            })?;
        Ok(self.tokens.remove(i))
    }
}

/// The tokens as the daemon checks them, read again when the file
/// changes.
#[derive(Clone)]
pub struct Tokens {
    path: Option<PathBuf>,
    cache: Arc<Mutex<Cache>>,
}

#[derive(Default)]
struct Cache {
    modified: Option<(SystemTime, u64)>,
    by_digest: HashMap<String, (String, Scope)>,
    /// Browser sessions: the digest of a session id → the digest of the
    /// token it was opened with, and when it ends.
    sessions: HashMap<String, (String, Instant)>,
}

/// How long a browser session lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);

/// Sessions kept at most; past this the oldest are forgotten, so memory
/// stays bounded whatever a client does.
pub const MAX_SESSIONS: usize = 10_000;

impl Tokens {
    /// The tokens in `path` (none if `None`).
    pub fn new(path: Option<PathBuf>) -> Tokens {
        Tokens {
            path,
            cache: Arc::default(),
        }
    }

    /// The name and scope of the token with this secret.
    pub fn check(&self, secret: &str) -> Option<(String, Scope)> {
        let c = self.current()?;
        c.by_digest.get(&digest(secret)).cloned()
    }

    /// Opens a browser session with a token's secret: the session's id
    /// (32 random bytes in hex, for the cookie), the token's name and
    /// scope. `None` if the token is not valid.
    ///
    /// The cookie carries this id, not the token: signing out ends the
    /// session for good even if its cookie was copied, a session ends by
    /// itself after [`SESSION_LIFETIME`], and revoking the token ends
    /// every session opened with it (each use looks the token up again).
    pub fn open_session(&self, secret: &str, now: Instant) -> Option<(String, String, Scope)> {
        let mut c = self.current()?;
        let token = digest(secret);
        let (name, scope) = c.by_digest.get(&token).cloned()?;
        let id = new_secret().ok()?.replacen("tg_", "tgs_", 1);
        if c.sessions.len() >= MAX_SESSIONS {
            c.sessions.retain(|_, (_, end)| *end > now);
            while c.sessions.len() >= MAX_SESSIONS {
                let oldest = c
                    .sessions
                    .iter()
                    .min_by_key(|(_, (_, end))| *end)
                    .map(|(k, _)| k.clone())?;
                c.sessions.remove(&oldest);
            }
        }
        c.sessions
            .insert(digest(&id), (token, now + SESSION_LIFETIME));
        Some((id, name, scope))
    }

    /// The name and scope behind a session id, while the session lasts and
    /// its token is valid.
    pub fn session(&self, id: &str, now: Instant) -> Option<(String, Scope)> {
        let mut c = self.current()?;
        let key = digest(id);
        let (token, end) = c.sessions.get(&key).cloned()?;
        let found = c.by_digest.get(&token).cloned();
        if end <= now || found.is_none() {
            c.sessions.remove(&key);
            return None;
        }
        found
    }

    /// Ends a session; whether it was open.
    pub fn close_session(&self, id: &str) -> bool {
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        c.sessions.remove(&digest(id)).is_some()
    }

    /// The cache, read again from the file if it changed; `None` without a
    /// tokens file.
    fn current(&self) -> Option<MutexGuard<'_, Cache>> {
        let path = self.path.as_ref()?;
        let mut c = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        let stamp = std::fs::metadata(path)
            .ok()
            .and_then(|m| Some((m.modified().ok()?, m.len())));
        if stamp != c.modified || stamp.is_none() {
            match TokenFile::load(path) {
                Ok(f) => {
                    c.by_digest = f
                        .tokens
                        .into_iter()
                        .map(|t| (t.sha256, (t.name, t.scope)))
                        .collect();
                    c.modified = stamp;
                }
                Err(e) => {
                    // Fail closed: a damaged file lets no one in.
                    tracing::error!("{e}");
                    c.by_digest.clear();
                    c.modified = None;
                }
            }
        }
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_lasts_until_signed_out_expired_or_its_token_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let mut f = TokenFile::default();
        let secret = f
            .add("alice", Scope::Tenant(7), jiff::Timestamp::UNIX_EPOCH)
            .unwrap();
        std::fs::write(&path, f.to_text()).unwrap();
        let t = Tokens::new(Some(path.clone()));
        let now = Instant::now();
        assert!(t.open_session("tg_wrong", now).is_none());
        let (id, name, scope) = t.open_session(&secret, now).unwrap();
        assert_eq!((name.as_str(), scope), ("alice", Scope::Tenant(7)));
        assert!(
            !id.contains(&secret[3..]),
            "the cookie does not carry the token"
        );
        // The id is not a token, and a token is not a session.
        assert_eq!(t.check(&id), None);
        assert_eq!(t.session(&secret, now), None);
        assert_eq!(
            t.session(&id, now),
            Some(("alice".into(), Scope::Tenant(7)))
        );
        // Expired.
        assert_eq!(t.session(&id, now + SESSION_LIFETIME), None);
        assert_eq!(t.session(&id, now), None, "an expired session is forgotten");
        // Signed out.
        let (id, _, _) = t.open_session(&secret, now).unwrap();
        assert!(t.close_session(&id));
        assert_eq!(t.session(&id, now), None);
        assert!(!t.close_session(&id));
        // Revoked.
        let (id, _, _) = t.open_session(&secret, now).unwrap();
        f.revoke("alice").unwrap();
        std::fs::write(&path, f.to_text()).unwrap();
        assert_eq!(t.session(&id, now), None);
    }

    #[test]
    fn sessions_are_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let mut f = TokenFile::default();
        let secret = f
            .add("r", Scope::Read, jiff::Timestamp::UNIX_EPOCH)
            .unwrap();
        std::fs::write(&path, f.to_text()).unwrap();
        let t = Tokens::new(Some(path));
        let now = Instant::now();
        let first = t.open_session(&secret, now).unwrap().0;
        for i in 0..MAX_SESSIONS {
            t.open_session(&secret, now + Duration::from_millis(i as u64 + 1))
                .unwrap();
        }
        let c = t.cache.lock().unwrap();
        assert_eq!(c.sessions.len(), MAX_SESSIONS);
        drop(c);
        assert_eq!(t.session(&first, now), None, "the oldest went first");
    }

    #[test]
    fn scopes_read_back_as_written() {
        for s in ["read", "admin", "tenant:7"] {
            assert_eq!(s.parse::<Scope>().unwrap().to_string(), s);
        }
        assert!("tenant:".parse::<Scope>().is_err());
        assert!("root".parse::<Scope>().is_err());
    }

    #[test]
    fn a_secret_is_kept_only_as_its_digest_and_checks_until_revoked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        let mut f = TokenFile::default();
        let secret = f
            .add("noc", Scope::Admin, jiff::Timestamp::UNIX_EPOCH)
            .unwrap();
        assert!(secret.starts_with("tg_") && secret.len() == 67);
        assert!(!f.to_text().contains(&secret[3..]));
        std::fs::write(&path, f.to_text()).unwrap();
        let t = Tokens::new(Some(path.clone()));
        assert_eq!(t.check(&secret), Some(("noc".into(), Scope::Admin)));
        assert_eq!(t.check("tg_wrong"), None);
        f.revoke("noc").unwrap();
        // A different length, so the change is seen even within the same
        // second of modification time.
        std::fs::write(&path, f.to_text()).unwrap();
        assert_eq!(t.check(&secret), None);
        assert!(f
            .add("noc", Scope::Read, jiff::Timestamp::UNIX_EPOCH)
            .is_ok());
        assert!(f
            .add("noc", Scope::Read, jiff::Timestamp::UNIX_EPOCH)
            .is_err());
    }
}
