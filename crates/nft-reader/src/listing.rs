//! The one thing read from nft's text listing: base chain devices.
//!
//! nftables before 1.0.10 leaves the device of a netdev base chain out of
//! its JSON, though its text listing prints it. Rather than parse the text
//! listing in general (see the crate docs for why not), this reads only the
//! two lines that matter: `chain NAME {` and the `type … hook … device …`
//! line inside it.

use std::collections::BTreeMap;

/// The devices of each base chain in the text of `nft list table netdev
/// tollgate`, by chain name; chains without a `device`/`devices` line are
/// absent.
///
/// Use it only when [`ObservedHook::devices`](crate::ObservedHook::devices)
/// came back empty (nft older than 1.0.10). It understands the spellings
/// `device "wan0"`, `device wan0` and `devices = { "a", "b" }`.
pub fn chain_devices_from_listing(listing: &str) -> BTreeMap<String, Vec<String>> {
    let mut out = BTreeMap::new();
    let mut chain: Option<&str> = None;
    for line in listing.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("chain ") {
            chain = rest.strip_suffix('{').map(str::trim).map(unquote);
            continue;
        }
        if line == "}" {
            chain = None;
            continue;
        }
        let (Some(name), true) = (chain, line.starts_with("type ")) else {
            continue;
        };
        if let Some(rest) = after_word(line, "devices") {
            // devices = { "a", "b" }
            let inner = rest
                .trim_start()
                .strip_prefix('=')
                .map(str::trim_start)
                .and_then(|r| r.strip_prefix('{'))
                .and_then(|r| r.split_once('}'))
                .map(|(inner, _)| inner);
            if let Some(inner) = inner {
                let devs: Vec<String> = inner
                    .split(',')
                    .map(|d| unquote(d.trim()).to_owned())
                    .filter(|d| !d.is_empty())
                    .collect();
                out.insert(name.to_owned(), devs);
            }
        } else if let Some(rest) = after_word(line, "device") {
            let rest = rest.trim_start();
            let dev = match rest.strip_prefix('"') {
                Some(q) => q.split_once('"').map(|(d, _)| d),
                None => rest.split([' ', ';']).next(),
            };
            if let Some(dev) = dev.filter(|d| !d.is_empty()) {
                out.insert(name.to_owned(), vec![dev.to_owned()]);
            }
        }
    }
    out
}

/// The text after the word `word` (delimited by spaces) in `line`.
fn after_word<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let needle = format!(" {word} ");
    line.find(&needle).map(|i| &line[i + needle.len() - 1..])
}

fn unquote(s: &str) -> &str {
    s.strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_device_lines_of_nft_1_0_6() {
        let text = "table netdev tollgate {\n\tmap m {\n\t\ttypeof meta mark : meta priority\n\t}\n\n\tchain bands {\n\t\tmeta priority set meta priority | 0:2\n\t}\n\n\tchain down_vif1.0 {\n\t\ttype filter hook egress device \"vif1.0\" priority filter; policy accept;\n\t\tjump classify_down\n\t}\n\tchain multi {\n\t\ttype filter hook ingress devices = { \"a\", \"b\" } priority 0; policy accept;\n\t}\n\tchain bare {\n\t\ttype filter hook egress device lan0 priority 0; policy accept;\n\t}\n}\n";
        let d = chain_devices_from_listing(text);
        assert_eq!(d.len(), 3);
        assert_eq!(d["down_vif1.0"], ["vif1.0"]);
        assert_eq!(d["multi"], ["a", "b"]);
        assert_eq!(d["bare"], ["lan0"]);
        assert!(chain_devices_from_listing("type filter hook egress device \"x\"").is_empty());
        assert!(
            chain_devices_from_listing("chain c {\ntype filter hook egress device \"").is_empty()
        );
    }
}
