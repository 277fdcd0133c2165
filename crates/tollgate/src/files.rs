//! Reading the policy and host facts from disk: the only file I/O.

use policy::Loaded;
use std::path::{Path, PathBuf};

/// Reads and loads a policy; prefix-list files are read relative to its folder.
pub fn load_policy(path: &Path) -> Result<Loaded, String> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        format!(
            "cannot read the policy {}: {e}\n  hint: pass -c FILE or set TOLLGATE_CONFIG; examples/ has policies to start from",
            path.display()
        )
    })?;
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut read = |name: &str| -> Result<String, String> {
        let p = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            dir.join(name)
        };
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    tracing::debug!(path = %path.display(), "loading policy");
    Ok(policy::load(&path.display().to_string(), &text, &mut read))
}

/// Reads host facts: `interfaces = ["eth0", …]`.
pub fn load_facts(path: &Path) -> Result<compiler::HostFacts, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read host facts {}: {e}", path.display()))?;
    let doc = toml_edit::Document::parse(text)
        .map_err(|e| format!("{}: not valid TOML: {}", path.display(), e.message().trim()))?;
    let mut facts = compiler::HostFacts::default();
    if let Some(item) = doc.get("interfaces") {
        let arr = item
            .as_array()
            .ok_or_else(|| format!("{}: `interfaces` must be a list of names", path.display()))?;
        let mut set = std::collections::BTreeSet::new();
        for v in arr.iter() {
            let name = v
                .as_str()
                .ok_or_else(|| format!("{}: every interface must be a string", path.display()))?;
            set.insert(
                net_types::IfName::new(name)
                    .map_err(|e| format!("{}: `{name}`: {e}", path.display()))?,
            );
        }
        facts.interfaces = Some(set);
    }
    Ok(facts)
}

/// Reads a policy file's text, for editing.
pub fn read_text(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

/// Replaces a file's contents atomically: a crash leaves either the old
/// file or the new one, never half of each.
pub fn write_atomically(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("toml.tollgate-new");
    std::fs::write(&tmp, text)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Loads a policy from text that is not (yet) on disk, resolving prefix
/// files next to `path`.
pub fn load_policy_text(path: &Path, text: &str) -> Loaded {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut read = |name: &str| -> Result<String, String> {
        let p = if Path::new(name).is_absolute() {
            PathBuf::from(name)
        } else {
            dir.join(name)
        };
        std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))
    };
    policy::load(&path.display().to_string(), text, &mut read)
}
