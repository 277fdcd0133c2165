//! ShapedDevices.csv: the header, matched by name, and each row read into
//! a [`Row`] or refused with the reason.
//!
//! Columns are found by their names, not their places: case, spaces and
//! punctuation do not matter (`Download Max Mbps`, `download_max_mbps`).
//! Both of LibreQoS's layouts are read: the current one (15 columns, and
//! an optional 16th, `sqm`) and the legacy 13-column one without `Parent
//! Node ID` and `Anchor Node ID`. LibreQoS's own example file has the
//! 15-column header over 13-field rows; such a row is read by the legacy
//! layout, and that is said once (with how many rows and the first line).

use crate::csv::{Reader, Unterminated};
use crate::report::{Diagnostic, Report, Severity};
use net_types::{Prefix, Rate};
use std::collections::BTreeMap;

/// A column LibreQoS documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Column {
    CircuitId,
    CircuitName,
    DeviceId,
    DeviceName,
    ParentNode,
    ParentNodeId,
    AnchorNodeId,
    Mac,
    Ipv4,
    Ipv6,
    DownloadMin,
    UploadMin,
    DownloadMax,
    UploadMax,
    Comment,
    Sqm,
}

impl Column {
    const ALL: [Column; 16] = [
        Column::CircuitId,
        Column::CircuitName,
        Column::DeviceId,
        Column::DeviceName,
        Column::ParentNode,
        Column::ParentNodeId,
        Column::AnchorNodeId,
        Column::Mac,
        Column::Ipv4,
        Column::Ipv6,
        Column::DownloadMin,
        Column::UploadMin,
        Column::DownloadMax,
        Column::UploadMax,
        Column::Comment,
        Column::Sqm,
    ];

    /// The name LibreQoS's documentation gives the column.
    pub fn title(self) -> &'static str {
        match self {
            Column::CircuitId => "Circuit ID",
            Column::CircuitName => "Circuit Name",
            Column::DeviceId => "Device ID",
            Column::DeviceName => "Device Name",
            Column::ParentNode => "Parent Node",
            Column::ParentNodeId => "Parent Node ID",
            Column::AnchorNodeId => "Anchor Node ID",
            Column::Mac => "MAC",
            Column::Ipv4 => "IPv4",
            Column::Ipv6 => "IPv6",
            Column::DownloadMin => "Download Min Mbps",
            Column::UploadMin => "Upload Min Mbps",
            Column::DownloadMax => "Download Max Mbps",
            Column::UploadMax => "Upload Max Mbps",
            Column::Comment => "Comment",
            Column::Sqm => "sqm",
        }
    }

    /// The column a header cell names, compared without case, spaces or
    /// punctuation. LibreQoS also calls the anchor node's id just `id`.
    fn from_header(cell: &str) -> Option<Column> {
        let key = normalize(cell);
        if key == "id" {
            return Some(Column::AnchorNodeId);
        }
        Column::ALL
            .into_iter()
            .find(|c| normalize(c.title()) == key)
    }

    fn required(self) -> bool {
        matches!(
            self,
            Column::CircuitId
                | Column::DownloadMin
                | Column::UploadMin
                | Column::DownloadMax
                | Column::UploadMax
        )
    }
}

fn normalize(s: &str) -> String {
    s.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// One device: a data row that could be read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Row {
    pub line: usize,
    pub circuit_id: String,
    pub circuit_name: String,
    pub device_id: String,
    pub device_name: String,
    pub parent_node: String,
    pub parent_node_id: String,
    pub anchor_node_id: String,
    pub mac: String,
    pub prefixes: Vec<Prefix>,
    pub down_min: Rate,
    pub up_min: Rate,
    pub down_max: Rate,
    pub up_max: Rate,
    pub comment: String,
}

/// How many rows something applied to, and the first of them.
#[derive(Clone, Copy, Debug, Default)]
struct Tally {
    rows: usize,
    first: usize,
}

impl Tally {
    fn add(&mut self, line: usize) {
        if self.rows == 0 {
            self.first = line;
        }
        self.rows += 1;
    }
}

/// Things said once for the whole file, with a count and the first line.
#[derive(Default)]
struct Tallies {
    legacy: Tally,
    short: Tally,
    wrong_family: Tally,
    mac: Tally,
    anchor: Tally,
    sqm: BTreeMap<String, Tally>,
}

/// The least rate LibreQoS accepts, in Mbps: 0.01 (10 kbit/s).
const LEAST_RATE_BPS: u64 = 10_000;

/// Parses Mbps written as a plain decimal number (`25`, `2.5`) into an
/// exact rate. Refuses what is not a number, a negative or zero rate, and
/// rates below LibreQoS's least, 0.01 Mbps.
pub(crate) fn mbps(text: &str) -> Result<Rate, (String, String)> {
    let t = text.trim();
    let plain = !t.is_empty()
        && t.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && t.bytes().filter(|&b| b == b'.').count() <= 1
        && t != ".";
    if !plain {
        return Err((
            format!("`{t}` is not a number of Mbps"),
            "write Mbps as a plain decimal number, e.g. 25 or 2.5".into(),
        ));
    }
    let below = || {
        (
            format!("{t} Mbps is below 0.01 Mbps, the least rate LibreQoS accepts"),
            "write at least 0.01".to_string(),
        )
    };
    if t.bytes().all(|b| b == b'0' || b == b'.') {
        return Err(below());
    }
    let rate = Rate::parse(&format!("{t}mbit")).map_err(|e| {
        (
            format!("`{t}` Mbps cannot be a rate: {}", e.message),
            e.hint.clone(),
        )
    })?;
    if rate.bps() < LEAST_RATE_BPS {
        return Err(below());
    }
    Ok(rate)
}

/// The layouts of the header: every column in order, and the legacy
/// 13-column reading of it when the header has both node-id columns.
struct Layout {
    full: Vec<Option<Column>>,
    legacy: Option<Vec<Option<Column>>>,
}

impl Layout {
    fn from_header(
        file: &str,
        line: usize,
        cells: &[String],
        report: &mut Report,
    ) -> Option<Layout> {
        let mut full = Vec::with_capacity(cells.len());
        let mut seen: BTreeMap<Column, usize> = BTreeMap::new();
        let mut fatal = false;
        for (i, cell) in cells.iter().enumerate() {
            let col = Column::from_header(cell);
            match col {
                Some(c) => {
                    if let Some(first) = seen.insert(c, i + 1) {
                        report.push(
                            Diagnostic::new(
                                Severity::Error,
                                file,
                                Some(line),
                                format!(
                                    "the header names `{}` twice (columns {first} and {})",
                                    c.title(),
                                    i + 1
                                ),
                            )
                            .hint("remove or rename one of the two columns"),
                        );
                        fatal = true;
                    }
                }
                None if cell.is_empty() => {}
                None => report.push(
                    Diagnostic::new(
                        Severity::Warning,
                        file,
                        Some(line),
                        format!(
                            "column {} `{cell}` is not one of LibreQoS's; its values are not imported",
                            i + 1
                        ),
                    )
                    .hint(format!(
                        "the columns read are: {}",
                        Column::ALL.map(Column::title).join(", ")
                    )),
                ),
            }
            full.push(col);
        }
        let missing: Vec<&str> = Column::ALL
            .into_iter()
            .filter(|c| c.required() && !seen.contains_key(c))
            .map(Column::title)
            .collect();
        if !missing.is_empty() {
            let looks_like_data = cells.iter().any(|c| c.parse::<f64>().is_ok());
            report.push(
                Diagnostic::new(
                    Severity::Error,
                    file,
                    Some(line),
                    format!(
                        "the header has no {} column{}",
                        missing.join(", "),
                        if missing.len() == 1 { "" } else { "s" }
                    ),
                )
                .hint(if looks_like_data {
                    "the first line that is not a comment must be the header: Circuit ID,Circuit Name,Device ID,Device Name,Parent Node,Parent Node ID,Anchor Node ID,MAC,IPv4,IPv6,Download Min Mbps,Upload Min Mbps,Download Max Mbps,Upload Max Mbps,Comment".to_string()
                } else {
                    "columns are matched by name: Circuit ID and the four Min/Max Mbps columns are needed".to_string()
                }),
            );
            fatal = true;
        }
        if !seen.contains_key(&Column::Ipv4) && !seen.contains_key(&Column::Ipv6) {
            report.push(
                Diagnostic::new(
                    Severity::Error,
                    file,
                    Some(line),
                    "the header has neither an IPv4 nor an IPv6 column",
                )
                .hint("tollgate recognises a circuit's traffic by its addresses"),
            );
            fatal = true;
        }
        if fatal {
            return None;
        }
        let legacy = (seen.contains_key(&Column::ParentNodeId)
            && seen.contains_key(&Column::AnchorNodeId))
        .then(|| {
            full.iter()
                .copied()
                .filter(|c| !matches!(c, Some(Column::ParentNodeId | Column::AnchorNodeId)))
                .collect()
        });
        Some(Layout { full, legacy })
    }
}

/// The fields of one row by column.
struct Fields<'a> {
    values: [&'a str; 16],
}

impl<'a> Fields<'a> {
    fn get(&self, c: Column) -> &'a str {
        self.values[c as usize]
    }
}

/// Reads every row of ShapedDevices.csv. `None` when there is nothing to
/// import at all (no header, or a header without the needed columns);
/// otherwise the rows that could be read, every other one reported.
pub(crate) fn read(
    file: &str,
    text: &str,
    report: &mut Report,
    progress: &mut dyn FnMut(usize),
) -> Option<Vec<Row>> {
    let mut reader = Reader::new(text);
    let header = match reader.next_record() {
        None => {
            report.push(
                Diagnostic::new(
                    Severity::Error,
                    file,
                    None,
                    "the file has no header and no rows",
                )
                .hint("pass LibreQoS's ShapedDevices.csv"),
            );
            return None;
        }
        Some(Err(Unterminated { line })) => {
            report.push(unterminated(file, line));
            return None;
        }
        Some(Ok(h)) => h,
    };
    let layout = Layout::from_header(file, header.line, &header.fields, report)?;
    let mut rows = Vec::new();
    let mut tallies = Tallies::default();
    let mut since_progress = 0usize;
    while let Some(record) = reader.next_record() {
        let record = match record {
            Ok(r) => r,
            Err(Unterminated { line }) => {
                report.push(unterminated(file, line));
                report.rows += 1;
                report.rows_skipped += 1;
                break;
            }
        };
        report.rows += 1;
        since_progress += 1;
        if since_progress == 1024 {
            since_progress = 0;
            progress(reader.position());
        }
        match row(file, &record.fields, record.line, &layout, &mut tallies) {
            Ok(r) => rows.push(r),
            Err(d) => {
                report.rows_skipped += 1;
                report.push(d);
            }
        }
    }
    progress(reader.position());
    said_once(file, &tallies, report);
    Some(rows)
}

fn unterminated(file: &str, line: usize) -> Diagnostic {
    Diagnostic::new(
        Severity::Error,
        file,
        Some(line),
        "a quote opened on this line is never closed; nothing after it was read",
    )
    .hint("close the quoted field with `\"`, and write a quote inside one as `\"\"`")
}

/// One data row into a [`Row`], or the reason it cannot be imported.
fn row(
    file: &str,
    fields: &[String],
    line: usize,
    layout: &Layout,
    tallies: &mut Tallies,
) -> Result<Row, Diagnostic> {
    let refuse = |message: String, hint: &str| {
        Diagnostic::new(Severity::Error, file, Some(line), message).hint(hint.to_string())
    };
    let n = fields.len();
    let columns = if n >= layout.full.len() {
        if let Some(extra) = fields[layout.full.len()..].iter().find(|f| !f.is_empty()) {
            return Err(refuse(
                format!(
                    "the row has {n} fields, but the header names {} columns (the first extra field is `{}`)",
                    layout.full.len(),
                    clip(extra)
                ),
                "a field holding commas, such as a list of addresses, must be quoted: \"100.64.0.1, 100.64.0.2\"",
            ));
        }
        &layout.full
    } else if let Some(legacy) = layout.legacy.as_ref().filter(|l| l.len() == n) {
        tallies.legacy.add(line);
        legacy
    } else {
        tallies.short.add(line);
        &layout.full
    };
    let mut values = [""; 16];
    for (col, value) in columns.iter().zip(fields) {
        if let Some(c) = col {
            values[*c as usize] = value.as_str();
        }
    }
    let f = Fields { values };
    let circuit_id = f.get(Column::CircuitId);
    if circuit_id.is_empty() {
        return Err(refuse(
            "the row has no Circuit ID".into(),
            "every device belongs to a circuit; rows with one Circuit ID are one customer",
        ));
    }
    if circuit_id.contains('#') {
        return Err(refuse(
            format!("Circuit ID `{}` contains `#`", clip(circuit_id)),
            "LibreQoS refuses `#` in Circuit IDs too; rename the circuit",
        ));
    }
    let rate = |c: Column| -> Result<Rate, Diagnostic> {
        let v = f.get(c);
        if v.is_empty() {
            return Err(refuse(
                format!("{} is empty", c.title()),
                "every row needs its circuit's four rates in Mbps",
            ));
        }
        mbps(v).map_err(|(m, h)| refuse(format!("{}: {m}", c.title()), &h))
    };
    let down_min = rate(Column::DownloadMin)?;
    let up_min = rate(Column::UploadMin)?;
    let down_max = rate(Column::DownloadMax)?;
    let up_max = rate(Column::UploadMax)?;
    for (dir, min, max) in [("Download", down_min, down_max), ("Upload", up_min, up_max)] {
        if max < min {
            return Err(refuse(
                format!(
                    "{dir} Max Mbps {} is below {dir} Min Mbps {}",
                    crate::render::mbps_text(max),
                    crate::render::mbps_text(min)
                ),
                "Min is the guaranteed rate, Max the most a circuit may use; Max must be at least Min",
            ));
        }
    }
    let mut prefixes = Vec::new();
    for (c, v4) in [(Column::Ipv4, true), (Column::Ipv6, false)] {
        for item in f.get(c).split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let p = Prefix::parse(item).map_err(|e| {
                refuse(
                    format!("{} `{}`: {}", c.title(), clip(item), e.message),
                    &e.hint,
                )
            })?;
            if p.is_ipv4() != v4 {
                tallies.wrong_family.add(line);
            }
            prefixes.push(p);
        }
    }
    let mac = f.get(Column::Mac);
    if !mac.is_empty() {
        tallies.mac.add(line);
    }
    if !f.get(Column::AnchorNodeId).is_empty() {
        tallies.anchor.add(line);
    }
    let sqm = f.get(Column::Sqm);
    if !sqm.is_empty() {
        tallies.sqm.entry(sqm.to_string()).or_default().add(line);
    }
    Ok(Row {
        line,
        circuit_id: circuit_id.to_string(),
        circuit_name: f.get(Column::CircuitName).to_string(),
        device_id: f.get(Column::DeviceId).to_string(),
        device_name: f.get(Column::DeviceName).to_string(),
        parent_node: f.get(Column::ParentNode).to_string(),
        parent_node_id: f.get(Column::ParentNodeId).to_string(),
        anchor_node_id: f.get(Column::AnchorNodeId).to_string(),
        mac: mac.to_string(),
        prefixes,
        down_min,
        up_min,
        down_max,
        up_max,
        comment: f.get(Column::Comment).to_string(),
    })
}

/// A value short enough to quote in a message.
pub(crate) fn clip(s: &str) -> String {
    clip_long(s, 60)
}

/// `s` on one line (control characters as spaces), at most `max`
/// characters.
pub(crate) fn clip_long(s: &str, max: usize) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > max {
        format!("{}…", s.chars().take(max).collect::<String>())
    } else {
        s
    }
}

/// "1 row has" or "5 rows (the first is this one) have".
fn rows_verb(t: Tally, one: &str, many: &str) -> String {
    if t.rows == 1 {
        format!("1 row {one}")
    } else {
        format!("{} rows (the first is this one) {many}", t.rows)
    }
}

/// What applies to many rows, said once each.
fn said_once(file: &str, t: &Tallies, report: &mut Report) {
    let mut once = |severity, tally: Tally, message: String, hint: &str| {
        if tally.rows > 0 {
            report.push(
                Diagnostic::new(severity, file, Some(tally.first), message).hint(hint.to_string()),
            );
        }
    };
    once(
        Severity::Note,
        t.legacy,
        format!(
            "{} 13 fields under a header with Parent Node ID and Anchor Node ID; read in the legacy 13-column layout, without those two",
            rows_verb(t.legacy, "has", "have")
        ),
        "LibreQoS's own example file is written this way; add the two fields (empty is fine) to silence this",
    );
    once(
        Severity::Warning,
        t.short,
        format!(
            "{} fewer fields than the header has columns; the missing ones are read as empty",
            rows_verb(t.short, "has", "have")
        ),
        "check that no field was left out in the middle of these rows",
    );
    once(
        Severity::Note,
        t.wrong_family,
        format!(
            "{} an IPv6 address in the IPv4 column or the other way round; each is imported as the address it is",
            rows_verb(t.wrong_family, "has", "have")
        ),
        "move the addresses to their own column",
    );
    once(
        Severity::Note,
        t.mac,
        format!(
            "{} a MAC address; tollgate recognises traffic by IP address, so MACs are kept as comments only",
            rows_verb(t.mac, "has", "have")
        ),
        "make sure every device has its addresses in IPv4 or IPv6",
    );
    once(
        Severity::Note,
        t.anchor,
        format!(
            "{} an Anchor Node ID; tollgate places a circuit by Parent Node (ID), so anchors are kept as comments only",
            rows_verb(t.anchor, "has", "have")
        ),
        "nothing to do",
    );
    for (value, tally) in &t.sqm {
        once(
            Severity::Warning,
            *tally,
            format!(
                "{} for sqm `{}`; tollgate does not choose a leaf queue per circuit, so it is not imported",
                rows_verb(*tally, "asks", "ask"),
                clip(value)
            ),
            "the kernel tollgate targets has neither cake nor fq_codel; leaves use the default pfifo (docs/dataplane.md)",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbps_is_exact_and_refuses_what_is_not_a_plain_number() {
        assert_eq!(mbps("25").unwrap().bps(), 25_000_000);
        assert_eq!(mbps(" 2.5 ").unwrap().bps(), 2_500_000);
        assert_eq!(mbps("0.01").unwrap().bps(), 10_000);
        assert!(mbps("0.009").unwrap_err().0.contains("below 0.01"));
        assert!(mbps("0").unwrap_err().0.contains("below 0.01"));
        for bad in ["", "-5", "1e3", "ten", "1.2.3", ".", "NaN", "inf"] {
            assert!(mbps(bad).is_err(), "{bad}");
        }
        assert!(mbps("99999999999999999999").is_err());
    }

    #[test]
    fn headers_match_by_name_in_any_spelling() {
        assert_eq!(
            Column::from_header("download_max_mbps"),
            Some(Column::DownloadMax)
        );
        assert_eq!(Column::from_header(" Circuit ID "), Some(Column::CircuitId));
        assert_eq!(Column::from_header("IPV4"), Some(Column::Ipv4));
        assert_eq!(Column::from_header("id"), Some(Column::AnchorNodeId));
        assert_eq!(Column::from_header("SQM"), Some(Column::Sqm));
        assert_eq!(Column::from_header("Colour"), None);
    }
}
