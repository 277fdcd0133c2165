//! A span-keeping reader over `toml_edit` documents.
//!
//! `serde` would stop at the first problem; operators want every problem at
//! once. So the policy is walked by hand: each getter records a diagnostic
//! with the exact place when a value has the wrong type or form, and every
//! table reports keys nobody asked for (usually typos) with a suggestion.

use crate::diagnostic::Diagnostic;
use crate::source::{FileId, Span};
use net_types::{IfName, Prefix, Rate, Size};
use toml_edit::{Item, TableLike, Value};

/// Collects diagnostics while reading one file.
pub(crate) struct Cx {
    pub file: FileId,
    pub diags: Vec<Diagnostic>,
}

/// A value found under a key, with where it was written.
#[derive(Clone, Copy)]
pub(crate) struct Node<'a> {
    pub item: &'a Item,
    pub span: Span,
    pub key: &'a str,
}

/// A table being read: it remembers which keys were asked for.
pub(crate) struct Fields<'a> {
    table: &'a dyn TableLike,
    pub span: Span,
    pub what: String,
    used: Vec<&'static str>,
    /// Set when the table's keys are names (plans, realms), so none is unknown.
    named_keys: bool,
}

impl Cx {
    pub fn span(&self, range: Option<std::ops::Range<usize>>, fallback: Span) -> Span {
        range.map_or(fallback, |r| Span::new(self.file, r))
    }

    pub fn error(&mut self, span: Span, message: impl Into<String>, hint: impl Into<String>) {
        self.diags
            .push(Diagnostic::error(Some(span), message).with_hint(hint));
    }

    /// Opens `item` as a table, or reports that it is not one.
    pub fn table<'a>(&mut self, node: Node<'a>, what: impl Into<String>) -> Option<Fields<'a>> {
        let what = what.into();
        match node.item.as_table_like() {
            Some(table) => Some(Fields {
                table,
                span: node.span,
                what,
                used: Vec::new(),
                named_keys: false,
            }),
            None => {
                self.error(
                    node.span,
                    format!(
                        "`{}` must be a table, found {}",
                        node.key,
                        type_name(node.item)
                    ),
                    format!("write it as `[{what}]` or `{} = {{ … }}`", node.key),
                );
                None
            }
        }
    }

    pub fn string(&mut self, node: Node<'_>) -> Option<String> {
        match node.item.as_str() {
            Some(s) => Some(s.to_owned()),
            None => {
                self.error(
                    node.span,
                    format!(
                        "`{}` must be a string, found {}",
                        node.key,
                        type_name(node.item)
                    ),
                    format!("put the value in quotes: {} = \"…\"", node.key),
                );
                None
            }
        }
    }

    /// A webhook's URL: a string that is an http(s) URL. `example` is the
    /// URL the hint shows.
    pub fn webhook(&mut self, node: Node<'_>, example: &str) -> Option<String> {
        let url = self.string(node)?;
        if url.starts_with("https://") || url.starts_with("http://") {
            return Some(url);
        }
        self.error(
            node.span,
            format!("webhook `{url}` is not an http(s) URL"),
            format!("write the full URL, e.g. \"{example}\""),
        );
        None
    }

    pub fn integer(&mut self, node: Node<'_>, min: i64, max: i64) -> Option<i64> {
        match node.item.as_integer() {
            Some(v) if (min..=max).contains(&v) => Some(v),
            Some(v) => {
                self.error(
                    node.span,
                    format!("`{}` = {v} is out of range", node.key),
                    format!("use a whole number from {min} to {max}"),
                );
                None
            }
            None => {
                self.error(
                    node.span,
                    format!(
                        "`{}` must be a whole number, found {}",
                        node.key,
                        type_name(node.item)
                    ),
                    format!("use a whole number from {min} to {max}, without quotes"),
                );
                None
            }
        }
    }

    pub fn boolean(&mut self, node: Node<'_>) -> Option<bool> {
        match node.item.as_bool() {
            Some(b) => Some(b),
            None => {
                self.error(
                    node.span,
                    format!(
                        "`{}` must be true or false, found {}",
                        node.key,
                        type_name(node.item)
                    ),
                    "write `true` or `false` without quotes",
                );
                None
            }
        }
    }

    pub fn rate(&mut self, node: Node<'_>) -> Option<Rate> {
        let text = self.string(node)?;
        Rate::parse(&text)
            .map_err(|e| self.error(node.span, e.message, e.hint))
            .ok()
    }

    pub fn size(&mut self, node: Node<'_>) -> Option<Size> {
        let text = self.string(node)?;
        Size::parse(&text)
            .map_err(|e| self.error(node.span, e.message, e.hint))
            .ok()
    }

    pub fn ifname(&mut self, node: Node<'_>) -> Option<IfName> {
        let text = self.string(node)?;
        let name = IfName::new(&text)
            .map_err(|e| {
                self.error(
                    node.span,
                    format!("the kernel would refuse interface name `{text}`: {e}"),
                    "use at most 15 characters, none of them '/', ':' or white space",
                )
            })
            .ok()?;
        // tollgate names an nftables chain after each interface it hooks
        // (`down_vif1.0`) and nft reads a chain name unquoted: letters,
        // digits, `.`, `-` and `_` only. The kernel allows more (`a@b`,
        // `x;y`), which would break or change the nft script.
        if let Some(c) = text
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')))
        {
            self.error(
                node.span,
                format!("interface name `{text}` has {c:?}, which tollgate cannot write in an nftables chain name"),
                "tollgate names its nftables chains after the interfaces it hooks; rename the interface with letters, digits, '.', '-' and '_' only",
            );
            return None;
        }
        Some(name)
    }

    /// Reads an array, handing each element and its span to `each`.
    pub fn array<'a>(&mut self, node: Node<'a>, mut each: impl FnMut(&mut Cx, &'a Value, Span)) {
        match node.item.as_array() {
            Some(arr) => {
                for v in arr.iter() {
                    let span = self.span(v.span(), node.span);
                    each(self, v, span);
                }
            }
            None => self.error(
                node.span,
                format!(
                    "`{}` must be a list, found {}",
                    node.key,
                    type_name(node.item)
                ),
                format!("write it as {} = [\"…\", \"…\"]", node.key),
            ),
        }
    }

    /// Reads a list of strings.
    pub fn strings(&mut self, node: Node<'_>) -> Vec<(String, Span)> {
        let mut out = Vec::new();
        let key = node.key;
        self.array(node, |cx, v, span| match v.as_str() {
            Some(s) => out.push((s.to_owned(), span)),
            None => cx.error(
                span,
                format!(
                    "every element of `{key}` must be a string, found {}",
                    v.type_name()
                ),
                "put each element in quotes",
            ),
        });
        out
    }

    /// Reads a list of prefixes.
    pub fn prefixes(&mut self, node: Node<'_>) -> Vec<(Prefix, Span)> {
        self.strings(node)
            .into_iter()
            .filter_map(|(s, span)| match Prefix::parse(&s) {
                Ok(p) => Some((p, span)),
                Err(e) => {
                    self.error(span, e.message, e.hint);
                    None
                }
            })
            .collect()
    }
}

impl<'a> Fields<'a> {
    /// Starts reading `table`, described as `what` in messages.
    pub fn new(table: &'a dyn TableLike, span: Span, what: &str) -> Fields<'a> {
        Fields {
            table,
            span,
            what: what.to_owned(),
            used: Vec::new(),
            named_keys: false,
        }
    }

    /// The value under `key`, without marking it as read.
    pub fn peek(&self, cx: &Cx, key: &str) -> Option<Node<'a>> {
        let (k, item) = self.table.get_key_value(key)?;
        let fallback = cx.span(k.span(), self.span);
        Some(Node {
            item,
            span: cx.span(item.span(), fallback),
            key: k.get(),
        })
    }

    /// The value under `key`, if present.
    pub fn get(&mut self, cx: &Cx, key: &'static str) -> Option<Node<'a>> {
        self.used.push(key);
        let (k, item) = self.table.get_key_value(key)?;
        let fallback = cx.span(k.span(), self.span);
        Some(Node {
            item,
            span: cx.span(item.span(), fallback),
            key: k.get(),
        })
    }

    /// The value under `key`, or a "missing key" error.
    pub fn require(&mut self, cx: &mut Cx, key: &'static str, example: &str) -> Option<Node<'a>> {
        let node = self.get(cx, key);
        if node.is_none() {
            cx.error(
                self.span,
                format!("{} is missing `{key}`", self.what),
                format!("add `{key} = {example}`"),
            );
        }
        node
    }

    /// Every entry, for tables whose keys are names (plans, realms).
    pub fn entries(&mut self, cx: &Cx) -> Vec<Node<'a>> {
        self.named_keys = true;
        self.table
            .iter()
            .filter_map(|(k, item)| {
                let (key, _) = self.table.get_key_value(k)?;
                let fallback = cx.span(key.span(), self.span);
                Some(Node {
                    item,
                    span: cx.span(item.span(), fallback),
                    key: key.get(),
                })
            })
            .collect()
    }

    /// Reports every key that was never asked for.
    pub fn finish(self, cx: &mut Cx) {
        if self.named_keys {
            return;
        }
        for (k, _) in self.table.iter() {
            if self.used.contains(&k) {
                continue;
            }
            let span = self
                .table
                .get_key_value(k)
                .map_or(self.span, |(key, _)| cx.span(key.span(), self.span));
            let hint = match closest(k, &self.used) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("known keys here: {}", self.used.join(", ")),
            };
            cx.error(span, format!("unknown key `{k}` in {}", self.what), hint);
        }
    }
}

pub(crate) fn type_name(item: &Item) -> &'static str {
    match item {
        Item::None => "nothing",
        Item::Value(v) => match v {
            Value::String(_) => "a string",
            Value::Integer(_) => "an integer",
            Value::Float(_) => "a float",
            Value::Boolean(_) => "a boolean",
            Value::Datetime(_) => "a date",
            Value::Array(_) => "a list",
            Value::InlineTable(_) => "a table",
        },
        Item::Table(_) => "a table",
        Item::ArrayOfTables(_) => "a list of tables",
    }
}

/// The known word closest to `word`, if it is within two edits.
pub(crate) fn closest<'k>(word: &str, known: &[&'k str]) -> Option<&'k str> {
    known
        .iter()
        .map(|k| (edit_distance(word, k), *k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| k)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_near_keys_only() {
        assert_eq!(closest("ciel", &["rate", "ceil"]), Some("ceil"));
        assert_eq!(closest("prefixs", &["prefixes", "plan"]), Some("prefixes"));
        assert_eq!(closest("zzzzzz", &["rate", "ceil"]), None);
    }
}
