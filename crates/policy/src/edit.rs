//! Small edits to a policy file's text that keep everything else as the
//! operator wrote it: comments, blank lines, key order and quoting.
//!
//! `tollgate tenant move` uses this to record a move in the policy file
//! itself, so that the file stays the one source of truth and the next
//! reload does not undo the move.

use toml_edit::{DocumentMut, Item, Value};

/// Why an edit could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditError {
    /// What went wrong, in a sentence.
    pub message: String,
    /// What to do about it.
    pub hint: String,
}

impl std::fmt::Display for EditError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}\n  hint: {}", self.message, self.hint)
    }
}

/// Which tenant to edit: by id or by name.
pub fn tenant_matches(table: &toml_edit::Table, who: &str) -> bool {
    let id = table.get("id").and_then(Item::as_integer);
    let name = table.get("name").and_then(Item::as_str);
    who.parse::<i64>().ok().is_some_and(|n| Some(n) == id) || name == Some(who)
}

/// What to do with a tenant's `parent` when its plan changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ParentChange<'a> {
    /// Leave it as it is.
    Keep,
    /// Put the tenant under this parent.
    Set(&'a str),
    /// Drop it, so the tenant sits at the site's root. A tenant moving into
    /// a shared plan needs this, because the pool has a parent of its own.
    Remove,
}

/// Sets one tenant's `plan` (and changes its `parent` as asked) in the
/// policy text.
///
/// Only the value changes; its comment and the spacing around it are
/// kept. The result is not validated here: the caller loads it like any
/// other policy and refuses to write it if it has errors.
pub fn set_tenant_plan(
    text: &str,
    who: &str,
    plan: &str,
    parent: ParentChange<'_>,
) -> Result<String, EditError> {
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| EditError {
        message: format!("the policy is not valid TOML: {}", e.message()),
        hint: "run `tollgate check` to see where".into(),
    })?;
    let tenants = doc
        .get_mut("tenants")
        .and_then(Item::as_array_of_tables_mut)
        .ok_or_else(|| EditError {
            message: "the policy has no [[tenants]]".into(),
            hint: "add the tenant to the policy first".into(),
        })?;
    {
        let mut found = tenants.iter_mut().filter(|t| tenant_matches(t, who));
        let tenant = found.next().ok_or_else(|| EditError {
            message: format!("no tenant has the id or name `{who}`"),
            hint: "`tollgate status` lists the tenants".into(),
        })?;
        set_keeping_decor(tenant, "plan", plan);
        match parent {
            ParentChange::Keep => {}
            ParentChange::Set(p) => set_keeping_decor(tenant, "parent", p),
            ParentChange::Remove => {
                tenant.remove("parent");
            }
        }
    }
    Ok(doc.to_string())
}

fn set_keeping_decor(table: &mut toml_edit::Table, key: &str, value: &str) {
    match table.get_mut(key).and_then(Item::as_value_mut) {
        Some(v) => {
            let decor = v.decor().clone();
            *v = Value::from(value);
            *v.decor_mut() = decor;
        }
        None => {
            table.insert(key, toml_edit::value(value));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"# tenants
[[tenants]]
id = 1
name = "alice"
plan = "home"      # the cheap one
prefixes = ["100.64.1.0/24"]

[[tenants]]
id = 2   # bob
name = "bob"
plan = "business"
"#;

    #[test]
    fn only_the_value_changes() {
        let out = set_tenant_plan(TEXT, "alice", "business", ParentChange::Keep).unwrap();
        assert_eq!(
            out,
            TEXT.replace("plan = \"home\"      #", "plan = \"business\"      #")
        );
        let by_id = set_tenant_plan(TEXT, "2", "home", ParentChange::Keep).unwrap();
        assert!(by_id.contains("id = 2   # bob\nname = \"bob\"\nplan = \"home\"\n"));
    }

    #[test]
    fn a_parent_is_added_when_asked() {
        let out = set_tenant_plan(TEXT, "bob", "home", ParentChange::Set("acme")).unwrap();
        assert!(
            out.contains("plan = \"home\"\nparent = \"acme\"\n"),
            "{out}"
        );
        let back = set_tenant_plan(&out, "bob", "pool", ParentChange::Remove).unwrap();
        assert_eq!(back, TEXT.replace("plan = \"business\"", "plan = \"pool\""));
    }

    #[test]
    fn unknown_tenants_and_bad_toml_say_what_to_do() {
        let e = set_tenant_plan(TEXT, "carol", "home", ParentChange::Keep).unwrap_err();
        assert!(e.message.contains("carol") && e.hint.contains("status"));
        let e = set_tenant_plan("[[tenants]\n", "1", "home", ParentChange::Keep).unwrap_err();
        assert!(e.message.contains("not valid TOML"));
    }
}
