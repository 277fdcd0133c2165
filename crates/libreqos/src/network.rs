//! network.json: LibreQoS's tree of sites and access points, turned into
//! tollgate parents.
//!
//! The file is an object of nodes keyed by name; a node has
//! `downloadBandwidthMbps`, `uploadBandwidthMbps`, optionally `type`,
//! `id`, `virtual`, `latitude`, `longitude`, and its `children` (an object
//! of nodes again). `{}` is a flat network.
//!
//! What is mapped, and how:
//! - a node becomes a parent with rate and ceil its bandwidth (parent ids
//!   are given in file order, from 1);
//! - a virtual node (`"virtual": true` or `"type": "virtual"`) is not
//!   shaped: its children, and circuits naming it, move up to its nearest
//!   shaped ancestor (or the site), as LibreQoS does;
//! - a node without a usable bandwidth is flattened the same way, with a
//!   warning;
//! - a node more than [`MAX_PARENT_DEPTH`] shaped levels deep is merged
//!   into its ancestor at that depth (HTB allows 8 classes from a tree's
//!   root to a leaf; with one realm, 5 are left for parents), with a
//!   warning;
//! - a node whose bandwidth exceeds its parent's is capped at the
//!   parent's, with a warning (it could never be reached);
//! - a node whose name was used before keeps the first one's place for
//!   circuits that name it, and is itself named `NAME (2)`.
//!
//! Objects keep their file order (serde_json's map would sort them), so
//! parents are numbered in the order the operator wrote them.

use crate::report::{Diagnostic, Report, Severity};
use net_types::Rate;
use serde::de::{Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// Parents above a tenant that an HTB tree has room for: 8 classes from
/// the shard's root to a leaf, less the root, the tenant and its realm
/// classes.
pub const MAX_PARENT_DEPTH: usize = 5;

/// The largest parent id (parents and shared plans share 1–65535).
const MAX_NODES: usize = 65_535;

/// A JSON value with objects in file order.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    String(String),
    Array,
    Object(Vec<(String, Json)>),
}

impl<'de> serde::Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON value")
            }
            fn visit_unit<E>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E>(self, v: bool) -> Result<Json, E> {
                Ok(Json::Bool(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Json, E> {
                Ok(Json::Number(v as f64))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Json, E> {
                Ok(Json::Number(v as f64))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Json, E> {
                Ok(Json::Number(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Json, E> {
                Ok(Json::String(v.to_string()))
            }
            fn visit_string<E>(self, v: String) -> Result<Json, E> {
                Ok(Json::String(v))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                // Arrays mean nothing in network.json; read and drop.
                while a.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(Json::Array)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Json, A::Error> {
                let mut entries = Vec::new();
                while let Some((k, v)) = a.next_entry::<String, Json>()? {
                    entries.push((k, v));
                }
                Ok(Json::Object(entries))
            }
        }
        d.deserialize_any(V)
    }
}

/// One shaped node: a tollgate parent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Node {
    /// The parent's name (the node's, or `NAME (2)` for a repeated one).
    pub name: String,
    /// Its id, 1–65535, in file order.
    pub id: u16,
    /// The node's line in network.json, when it could be found.
    pub line: Option<usize>,
    /// Its shaped parent, an index into [`Network::nodes`].
    pub parent: Option<usize>,
    pub down: Rate,
    pub up: Rate,
    /// LibreQoS's `type`, for the comment.
    pub kind: String,
}

/// The parents, and where a circuit naming a node goes.
#[derive(Debug, Default)]
pub(crate) struct Network {
    pub nodes: Vec<Node>,
    /// Node name → the parent a circuit naming it sits under (`None`: the
    /// site itself, for a virtual node at the top).
    by_name: HashMap<String, Option<usize>>,
    /// Node `id` → the same.
    by_id: HashMap<String, Option<usize>>,
}

/// Where a circuit asked to be placed, resolved.
pub(crate) enum Placement {
    /// Under this parent (`None`: at the top).
    Under(Option<usize>),
    /// The node is not in network.json.
    Unknown,
}

impl Network {
    /// Where a circuit with this Parent Node ID and Parent Node goes. The
    /// id is tried first (LibreQoS's integrations write it; names may
    /// change), then the name; both empty is the top.
    pub fn place(&self, id: &str, name: &str) -> Placement {
        if !id.is_empty() {
            if let Some(p) = self.by_id.get(id) {
                return Placement::Under(*p);
            }
        }
        if name.is_empty() && id.is_empty() {
            return Placement::Under(None);
        }
        match self.by_name.get(name) {
            Some(p) => Placement::Under(*p),
            None => Placement::Unknown,
        }
    }

    /// The names of every node, for a suggestion.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.by_name.keys().map(String::as_str)
    }
}

/// Reads network.json. `None` if it is not a JSON object of nodes (an
/// error says where); otherwise the parents, every node that could not be
/// shaped as written reported.
pub(crate) fn read(file: &str, text: &str, report: &mut Report) -> Option<Network> {
    let root: Json = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            report.push(
                Diagnostic::new(
                    Severity::Error,
                    file,
                    Some(e.line()),
                    format!("not valid JSON: {e}"),
                )
                .hint("network.json is a JSON object of nodes; `{}` is a flat network"),
            );
            return None;
        }
    };
    let Json::Object(top) = root else {
        report.push(
            Diagnostic::new(
                Severity::Error,
                file,
                Some(1),
                "network.json is not a JSON object",
            )
            .hint("it is an object of nodes keyed by name; `{}` is a flat network"),
        );
        return None;
    };
    let mut walk = Walk {
        file,
        text,
        report,
        net: Network::default(),
        used: HashSet::new(),
        search_from: 0,
        lines_before: 0,
    };
    for (name, value) in &top {
        walk.node(name, value, None, 0);
    }
    Some(walk.net)
}

struct Walk<'a> {
    file: &'a str,
    text: &'a str,
    report: &'a mut Report,
    net: Network,
    /// The parents' names so far.
    used: HashSet<String>,
    /// Nodes are met in file order, so each is searched for after the
    /// last one found; `lines_before` line breaks precede that point.
    search_from: usize,
    lines_before: usize,
}

impl Walk<'_> {
    /// The line of `"name":` after the last node found (names are keys,
    /// so the first such key after the previous node is this one).
    fn line_of(&mut self, name: &str) -> Option<usize> {
        let key = serde_json::to_string(name).ok()?;
        let mut from = self.search_from;
        while let Some(at) = self.text.get(from..)?.find(&key) {
            let start = from + at;
            let after = self.text[start + key.len()..].trim_start();
            if after.starts_with(':') {
                let lines =
                    self.lines_before + self.text[self.search_from..start].matches('\n').count();
                self.search_from = start + key.len();
                self.lines_before = lines;
                return Some(lines + 1);
            }
            from = start + key.len();
        }
        None
    }

    fn say(&mut self, severity: Severity, line: Option<usize>, message: String, hint: &str) {
        self.report
            .push(Diagnostic::new(severity, self.file, line, message).hint(hint.to_string()));
    }

    /// One node and its subtree. `up` is the shaped parent it sits under
    /// and `depth` how many shaped levels are above it.
    fn node(&mut self, name: &str, value: &Json, up: Option<usize>, depth: usize) {
        let line = self.line_of(name);
        let Json::Object(fields) = value else {
            self.say(
                Severity::Warning,
                line,
                format!(
                    "`{}` is not a node (not a JSON object); skipped",
                    crate::devices::clip(name)
                ),
                "a node is an object with downloadBandwidthMbps, uploadBandwidthMbps and children",
            );
            return;
        };
        let mut down = None;
        let mut upload = None;
        let mut kind = String::new();
        let mut is_virtual = false;
        let mut id = None;
        let mut children: &[(String, Json)] = &[];
        for (key, v) in fields {
            match key.as_str() {
                "downloadBandwidthMbps" => down = Some(v),
                "uploadBandwidthMbps" => upload = Some(v),
                "type" => {
                    if let Json::String(s) = v {
                        kind = s.clone();
                        is_virtual |= s.eq_ignore_ascii_case("virtual");
                    }
                }
                "virtual" => is_virtual |= matches!(v, Json::Bool(true)),
                "id" => {
                    id = match v {
                        Json::String(s) if !s.is_empty() => Some(s.clone()),
                        Json::Number(n) => Some(number_text(*n)),
                        _ => None,
                    }
                }
                "children" => match v {
                    Json::Object(c) => children = c,
                    Json::Null => {}
                    _ => self.say(
                        Severity::Warning,
                        line,
                        format!("node `{}`'s children are not an object of nodes; skipped", crate::devices::clip(name)),
                        "children is an object keyed by node name",
                    ),
                },
                "latitude" | "longitude" | "name" | "parent_site" => {}
                other if matches!(v, Json::Object(_)) => self.say(
                    Severity::Warning,
                    line,
                    format!(
                        "node `{}` has an object under `{}`, which is not a node field; not imported",
                        crate::devices::clip(name),
                        crate::devices::clip(other)
                    ),
                    "child nodes go under `children`",
                ),
                _ => {}
            }
        }
        let clipped = crate::devices::clip(name);
        let target = if is_virtual {
            up
        } else {
            let bandwidth = (|| Some((rate_of(down?)?, rate_of(upload?)?)))();
            match bandwidth {
                None => {
                    self.say(
                        Severity::Warning,
                        line,
                        format!("node `{clipped}` has no usable downloadBandwidthMbps and uploadBandwidthMbps; it is not shaped, and what is under it moves up as under a virtual node"),
                        "give the node both bandwidths in Mbps (at least 0.01), or mark it \"virtual\": true",
                    );
                    up
                }
                Some(_) if depth >= MAX_PARENT_DEPTH => {
                    let into = up.map_or("the site".to_string(), |i| {
                        format!("`{}`", self.net.nodes[i].name)
                    });
                    self.say(
                        Severity::Warning,
                        line,
                        format!("node `{clipped}` is more than {MAX_PARENT_DEPTH} shaped levels deep; it is merged into {into}, and what is under it moves there"),
                        "HTB allows 8 classes from a tree's root to a leaf; mark an intermediate node \"virtual\": true to choose which level goes",
                    );
                    up
                }
                Some(_) if self.net.nodes.len() >= MAX_NODES => {
                    self.say(
                        Severity::Warning,
                        line,
                        format!("node `{clipped}` is past the {MAX_NODES}th node; parent ids run out, so it is not shaped and what is under it moves up"),
                        "mark nodes that need no shaping \"virtual\": true",
                    );
                    up
                }
                Some((mut d, mut u)) => {
                    if let Some(p) = up {
                        let parent = &self.net.nodes[p];
                        let (pd, pu, pname) = (parent.down, parent.up, parent.name.clone());
                        if d > pd || u > pu {
                            self.say(
                                Severity::Warning,
                                line,
                                format!(
                                    "node `{clipped}`'s bandwidth {}/{} Mbps exceeds its parent `{pname}`'s {}/{} Mbps; capped at the parent's",
                                    crate::render::mbps_text(d),
                                    crate::render::mbps_text(u),
                                    crate::render::mbps_text(pd),
                                    crate::render::mbps_text(pu)
                                ),
                                "a child can never get more than its parent; lower the node's bandwidth in network.json",
                            );
                            d = d.min(pd);
                            u = u.min(pu);
                        }
                    }
                    let mut unique = name.to_string();
                    let mut k = 2;
                    while self.used.contains(&unique) {
                        unique = format!("{name} ({k})");
                        k += 1;
                    }
                    if unique != name {
                        self.say(
                            Severity::Warning,
                            line,
                            format!("node name `{clipped}` is used twice; circuits naming it go under the first, and this one is named `{}`", crate::devices::clip(&unique)),
                            "LibreQoS needs node names to be unique too; rename one of them",
                        );
                    }
                    self.used.insert(unique.clone());
                    self.net.nodes.push(Node {
                        name: unique,
                        id: (self.net.nodes.len() + 1) as u16,
                        line,
                        parent: up,
                        down: d,
                        up: u,
                        kind,
                    });
                    Some(self.net.nodes.len() - 1)
                }
            }
        };
        self.net.by_name.entry(name.to_string()).or_insert(target);
        if let Some(id) = id {
            self.net.by_id.entry(id).or_insert(target);
        }
        let child_depth = if target != up { depth + 1 } else { depth };
        for (child, v) in children {
            self.node(child, v, target, child_depth);
        }
    }
}

/// A number as LibreQoS writes it, without a trailing `.0`.
fn number_text(n: f64) -> String {
    let s = format!("{n:.6}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

/// A bandwidth in Mbps (a number, or a string holding one) as a rate.
fn rate_of(v: &Json) -> Option<Rate> {
    let text = match v {
        Json::Number(n) if n.is_finite() && *n > 0.0 => number_text(*n),
        Json::String(s) => s.trim().to_string(),
        _ => return None,
    };
    crate::devices::mbps(&text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(text: &str) -> (Option<Network>, Report) {
        let mut r = Report::default();
        (read("network.json", text, &mut r), r)
    }

    #[test]
    fn objects_keep_their_file_order_and_lines() {
        let (n, r) = net(r#"{
  "Zeta": { "downloadBandwidthMbps": 100, "uploadBandwidthMbps": 50,
    "children": { "Alpha": { "downloadBandwidthMbps": 10.5, "uploadBandwidthMbps": 5 } } },
  "Beta": { "downloadBandwidthMbps": 20, "uploadBandwidthMbps": 20 }
}"#);
        let n = n.unwrap();
        assert!(r.diagnostics.is_empty(), "{:?}", r.diagnostics);
        let names: Vec<(&str, u16, Option<usize>, Option<usize>)> = n
            .nodes
            .iter()
            .map(|x| (x.name.as_str(), x.id, x.line, x.parent))
            .collect();
        assert_eq!(
            names,
            vec![
                ("Zeta", 1, Some(2), None),
                ("Alpha", 2, Some(3), Some(0)),
                ("Beta", 3, Some(4), None)
            ]
        );
        assert_eq!(n.nodes[1].down.bps(), 10_500_000);
    }

    #[test]
    fn virtual_nodes_are_flattened_into_their_parent() {
        let (n, _) = net(
            r#"{ "Site": { "downloadBandwidthMbps": 100, "uploadBandwidthMbps": 100, "children": {
                 "V": { "virtual": true, "downloadBandwidthMbps": 1, "uploadBandwidthMbps": 1, "children": {
                    "AP": { "downloadBandwidthMbps": 50, "uploadBandwidthMbps": 50 } } },
                 "T": { "type": "virtual" } } },
               "Top": { "type": "Virtual" } }"#,
        );
        let n = n.unwrap();
        assert_eq!(n.nodes.len(), 2);
        assert_eq!(n.nodes[1].name, "AP");
        assert_eq!(n.nodes[1].parent, Some(0));
        assert!(matches!(n.place("", "V"), Placement::Under(Some(0))));
        assert!(matches!(n.place("", "T"), Placement::Under(Some(0))));
        assert!(matches!(n.place("", "Top"), Placement::Under(None)));
        assert!(matches!(n.place("", "AP"), Placement::Under(Some(1))));
        assert!(matches!(n.place("", "Nope"), Placement::Unknown));
    }

    #[test]
    fn too_deep_nodes_merge_and_big_children_are_capped() {
        let mut text = String::new();
        for i in 0..7 {
            text.push_str(&format!(
                "{{\"N{i}\": {{\"downloadBandwidthMbps\": {}, \"uploadBandwidthMbps\": 10, \"children\": ",
                100 - i
            ));
        }
        text.push_str("{}");
        for _ in 0..7 {
            text.push_str("}}");
        }
        let (n, r) = net(&text);
        let n = n.unwrap();
        assert_eq!(n.nodes.len(), MAX_PARENT_DEPTH);
        assert!(matches!(n.place("", "N6"), Placement::Under(Some(4))));
        let merged = r
            .diagnostics
            .iter()
            .filter(|d| d.message.contains("merged into `N4`"))
            .count();
        assert_eq!(merged, 2, "{:?}", r.diagnostics);

        let (n, r) = net(
            r#"{"P": {"downloadBandwidthMbps": 10, "uploadBandwidthMbps": 10, "children": {"C": {"downloadBandwidthMbps": 20, "uploadBandwidthMbps": 5}}}}"#,
        );
        let n = n.unwrap();
        assert_eq!(n.nodes[1].down.bps(), 10_000_000);
        assert_eq!(n.nodes[1].up.bps(), 5_000_000);
        assert!(
            r.diagnostics[0].message.contains("capped"),
            "{:?}",
            r.diagnostics
        );
    }

    #[test]
    fn ids_find_nodes_and_bad_json_names_its_line() {
        let (n, _) =
            net(r#"{"A": {"id": 7, "downloadBandwidthMbps": "10", "uploadBandwidthMbps": 10}}"#);
        assert!(matches!(
            n.unwrap().place("7", "renamed"),
            Placement::Under(Some(0))
        ));
        let (n, r) = net("{\n\"A\": {\n\"downloadBandwidthMbps\": 10,,\n}}");
        assert!(n.is_none());
        assert_eq!(r.diagnostics[0].line, Some(3));
        let (n, r) = net("[1,2]");
        assert!(n.is_none());
        assert!(r.diagnostics[0].message.contains("not a JSON object"));
    }
}
