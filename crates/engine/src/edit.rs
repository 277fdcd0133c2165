//! Edits of the policy file's text, one path for every writer: `tollgate
//! tenant move` on the command line, the API's writes, and the overage
//! automation. The text is edited in place (comments, order and quoting
//! kept); the caller then loads the result like any policy and refuses to
//! write it if it has errors, so an edit never leaves an invalid file.

use policy::edit::{tenant_matches, EditError, ParentChange};
use policy::Policy;
use serde::{Deserialize, Serialize};
use toml_edit::{DocumentMut, InlineTable, Item, Value};

/// A tenant's new rate and ceil in one direction; `None` keeps the
/// current value. Values are tc-style rates (`10mbit`), checked by the
/// policy's loader like any other.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShapeEdit {
    /// The guaranteed rate.
    #[serde(default)]
    pub rate: Option<String>,
    /// The ceiling.
    #[serde(default)]
    pub ceil: Option<String>,
}

impl ShapeEdit {
    fn is_empty(&self) -> bool {
        self.rate.is_none() && self.ceil.is_none()
    }
}

/// One edit.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Edit {
    /// Put a tenant on another plan (and under another parent).
    Move {
        /// The tenant's id or name.
        tenant: String,
        /// The plan.
        plan: String,
        /// The parent; a tenant moving into a shared plan leaves its
        /// parent, because the pool has its own.
        parent: Option<String>,
    },
    /// Change a tenant's own rate, ceil or commit.
    Shape {
        /// The tenant's id or name.
        tenant: String,
        /// Toward the tenant.
        down: ShapeEdit,
        /// From the tenant.
        up: ShapeEdit,
        /// The committed rate: `Some(None)` removes it.
        commit: Option<Option<String>>,
    },
}

/// Applies `edit` to the policy's text. `current` (the text loaded) tells
/// whether a plan is shared.
pub fn apply(text: &str, current: Option<&Policy>, edit: &Edit) -> Result<String, EditError> {
    match edit {
        Edit::Move {
            tenant,
            plan,
            parent,
        } => {
            let shared = current
                .and_then(|p| p.plans.iter().find(|pl| pl.name == *plan))
                .is_some_and(|pl| pl.is_shared());
            let change = match (parent, shared) {
                (Some(p), true) => {
                    return Err(EditError {
                        message: format!(
                            "plan `{plan}` is shared: its members sit in its pool, not under `{p}`"
                        ),
                        hint: format!(
                            "drop the parent, or give the pool a parent in [plans.{plan}]"
                        ),
                    })
                }
                (Some(p), false) => ParentChange::Set(p),
                (None, true) => ParentChange::Remove,
                (None, false) => ParentChange::Keep,
            };
            policy::edit::set_tenant_plan(text, tenant, plan, change)
        }
        Edit::Shape {
            tenant,
            down,
            up,
            commit,
        } => set_shape(text, tenant, down, up, commit.as_ref()),
    }
}

fn set_shape(
    text: &str,
    who: &str,
    down: &ShapeEdit,
    up: &ShapeEdit,
    commit: Option<&Option<String>>,
) -> Result<String, EditError> {
    if down.is_empty() && up.is_empty() && commit.is_none() {
        return Err(EditError {
            message: "the change names nothing to change".into(),
            hint: "give at least one of down.rate, down.ceil, up.rate, up.ceil or commit".into(),
        });
    }
    let mut doc: DocumentMut = text.parse().map_err(|e: toml_edit::TomlError| EditError {
        message: format!("the policy is not valid TOML: {}", e.message()),
        hint: "run `tollgate check` to see where".into(),
    })?;
    let tenant = doc
        .get_mut("tenants")
        .and_then(Item::as_array_of_tables_mut)
        .and_then(|ts| ts.iter_mut().find(|t| tenant_matches(t, who)))
        .ok_or_else(|| EditError {
            message: format!("no tenant has the id or name `{who}`"),
            hint: "`tollgate status` lists the tenants".into(),
        })?;
    for (dir, e) in [("down", down), ("up", up)] {
        if e.is_empty() {
            continue;
        }
        let item = tenant
            .entry(dir)
            .or_insert(Item::Value(Value::InlineTable(InlineTable::new())));
        let set = |key: &str, v: &str, t: &mut dyn toml_edit::TableLike| {
            t.insert(key, toml_edit::value(v));
        };
        let table: &mut dyn toml_edit::TableLike = match item {
            Item::Value(Value::InlineTable(t)) => t,
            Item::Table(t) => t,
            _ => {
                return Err(EditError {
                    message: format!("tenant `{who}`'s `{dir}` is not a table"),
                    hint: format!("write it as `{dir} = {{ rate = \"…\", ceil = \"…\" }}`"),
                })
            }
        };
        if let Some(r) = &e.rate {
            set("rate", r, table);
        }
        if let Some(c) = &e.ceil {
            set("ceil", c, table);
        }
    }
    match commit {
        None => {}
        Some(None) => {
            tenant.remove("commit");
        }
        Some(Some(c)) => {
            tenant.insert("commit", toml_edit::value(c.as_str()));
        }
    }
    Ok(doc.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = r#"[[tenants]]
id = 1
name = "alice"   # our first
plan = "home"
down = { ceil = "8mbit" }

[[tenants]]
id = 2
name = "bob"
plan = "home"
"#;

    #[test]
    fn a_shape_edit_changes_only_the_keys_named() {
        let out = apply(
            TEXT,
            None,
            &Edit::Shape {
                tenant: "alice".into(),
                down: ShapeEdit {
                    rate: Some("2mbit".into()),
                    ceil: None,
                },
                up: ShapeEdit {
                    rate: None,
                    ceil: Some("3mbit".into()),
                },
                commit: Some(Some("1mbit".into())),
            },
        )
        .unwrap();
        assert!(out.contains("name = \"alice\"   # our first"), "{out}");
        assert!(
            out.contains("down = { ceil = \"8mbit\" , rate = \"2mbit\" }")
                || out.contains("down = { ceil = \"8mbit\", rate = \"2mbit\" }"),
            "{out}"
        );
        assert!(out.contains("up = { ceil = \"3mbit\" }"), "{out}");
        assert!(out.contains("commit = \"1mbit\""), "{out}");
        assert!(
            out.ends_with("[[tenants]]\nid = 2\nname = \"bob\"\nplan = \"home\"\n"),
            "{out}"
        );
    }

    #[test]
    fn an_empty_change_and_an_unknown_tenant_are_refused() {
        let none = Edit::Shape {
            tenant: "alice".into(),
            down: ShapeEdit::default(),
            up: ShapeEdit::default(),
            commit: None,
        };
        assert!(apply(TEXT, None, &none).is_err());
        let who = Edit::Shape {
            tenant: "carol".into(),
            down: ShapeEdit {
                rate: Some("1mbit".into()),
                ceil: None,
            },
            up: ShapeEdit::default(),
            commit: None,
        };
        assert!(apply(TEXT, None, &who)
            .unwrap_err()
            .message
            .contains("carol"));
    }
}
