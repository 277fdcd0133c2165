//! The state file (`/run/tollgate-lab/state.json`): what [`super::up`]
//! built, so that later commands find the lab again. The emitted policy and
//! its prefix lists are written beside it.

use super::{realms, Endpoint, Lab, LabError, LabMode, LabTenant, STATE_DIR};
use serde_json::{json, Value};
use std::path::{Component, Path, PathBuf};

/// The state file's name inside [`STATE_DIR`].
pub(super) const FILE: &str = "state.json";

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LabError + '_ {
    move |e| LabError::Io {
        path: path.to_path_buf(),
        error: e.to_string(),
    }
}

/// Writes the policy, the prefix lists it names (copied from
/// `examples_dir`) and the state file, in that order: the state file last,
/// so that it exists only for a complete lab.
pub(super) fn write(lab: &Lab, examples_dir: &Path) -> Result<(), LabError> {
    let dir = lab.policy_path.parent().unwrap_or(Path::new(STATE_DIR));
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    std::fs::write(&lab.policy_path, &lab.policy_toml).map_err(io(&lab.policy_path))?;
    let mut files = Vec::new();
    realms::load_reading(&lab.policy_path, &lab.policy_toml, examples_dir, &mut files)?;
    for f in files {
        // Only plain relative names are copied; anything reaching outside
        // the folder is left where the example says.
        if Path::new(&f)
            .components()
            .any(|c| !matches!(c, Component::Normal(_)))
        {
            continue;
        }
        let (from, to) = (examples_dir.join(&f), dir.join(&f));
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        std::fs::copy(&from, &to).map_err(io(&from))?;
    }
    let path = dir.join(FILE);
    let text = serde_json::to_string_pretty(&to_json(lab)).unwrap_or_default();
    std::fs::write(&path, text).map_err(io(&path))
}

/// Reads the state file.
pub(super) fn read() -> Result<Lab, LabError> {
    let path = Path::new(STATE_DIR).join(FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let v: Value = serde_json::from_str(&text).map_err(|e| LabError::Io {
        path: path.clone(),
        error: format!("not JSON: {e}"),
    })?;
    from_json(&v).ok_or_else(|| LabError::Io {
        path,
        error: "not a lab state file this version understands".into(),
    })
}

pub(super) fn to_json(lab: &Lab) -> Value {
    let tenants: Vec<Value> = lab
        .tenants
        .iter()
        .map(|t| {
            json!({
                "id": t.id, "name": t.name, "netns": t.netns, "plan": t.plan, "vif": t.vif,
                "v4": t.v4.to_string(), "v4_len": t.v4_len, "gateway4": t.gateway4.to_string(),
                "v6": t.v6.to_string(), "v6_len": t.v6_len, "gateway6": t.gateway6.to_string(),
            })
        })
        .collect();
    let endpoints: Vec<Value> = lab
        .endpoints
        .iter()
        .map(|e| {
            json!({
                "realm": e.realm,
                "v4": e.v4.map(|a| a.to_string()),
                "v6": e.v6.map(|a| a.to_string()),
            })
        })
        .collect();
    json!({
        "mode": lab.mode.as_str(),
        "host_netns": lab.host_netns,
        "upstream_netns": lab.upstream_netns,
        "uplink": lab.uplink,
        "lan": lab.lan,
        "tenants": tenants,
        "endpoints": endpoints,
        "policy_toml": lab.policy_toml,
        "policy_path": lab.policy_path.display().to_string(),
    })
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key)?.as_str().map(str::to_string)
}

fn opt_s(v: &Value, key: &str) -> Option<Option<String>> {
    match v.get(key)? {
        Value::Null => Some(None),
        Value::String(x) => Some(Some(x.clone())),
        _ => None,
    }
}

fn parse<T: std::str::FromStr>(v: &Value, key: &str) -> Option<T> {
    s(v, key)?.parse().ok()
}

fn num<T: TryFrom<u64>>(v: &Value, key: &str) -> Option<T> {
    T::try_from(v.get(key)?.as_u64()?).ok()
}

pub(super) fn from_json(v: &Value) -> Option<Lab> {
    let mode = match s(v, "mode")?.as_str() {
        "router" => LabMode::Router,
        "hypervisor" => LabMode::Hypervisor,
        _ => return None,
    };
    let tenants = v
        .get("tenants")?
        .as_array()?
        .iter()
        .map(|t| {
            Some(LabTenant {
                id: num(t, "id")?,
                name: s(t, "name")?,
                netns: s(t, "netns")?,
                v4: parse(t, "v4")?,
                v4_len: num(t, "v4_len")?,
                gateway4: parse(t, "gateway4")?,
                v6: parse(t, "v6")?,
                v6_len: num(t, "v6_len")?,
                gateway6: parse(t, "gateway6")?,
                plan: s(t, "plan")?,
                vif: opt_s(t, "vif")?,
            })
        })
        .collect::<Option<Vec<_>>>()?;
    let endpoints = v
        .get("endpoints")?
        .as_array()?
        .iter()
        .map(|e| {
            Some(Endpoint {
                realm: s(e, "realm")?,
                v4: opt_s(e, "v4")?.and_then(|a| a.parse().ok()),
                v6: opt_s(e, "v6")?.and_then(|a| a.parse().ok()),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(Lab {
        mode,
        host_netns: s(v, "host_netns")?,
        upstream_netns: s(v, "upstream_netns")?,
        uplink: s(v, "uplink")?,
        lan: opt_s(v, "lan")?,
        tenants,
        endpoints,
        policy_toml: s(v, "policy_toml")?,
        policy_path: PathBuf::from(s(v, "policy_path")?),
    })
}
