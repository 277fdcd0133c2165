//! Everything the commands print: writing to stdout, JSON, CSV, and the
//! units people read.
//!
//! Commands build their answer as data; this module turns it into text.
//! The rules, kept here so every command follows them:
//! - rates in bits per second with SI prefixes (`12.50Mbit`), as tc writes
//!   them; bytes in powers of 1024 (`3.00 GiB`), as vnStat does; packet
//!   counts shortened (`12.3k`), as rtacct does;
//! - JSON pretty-printed for one answer, one compact line per record for
//!   streams (`top`, `apply --every`);
//! - CSV quoted only where a field needs it;
//! - a closed pipe (`tollgate plan | head`) ends the program quietly.

pub mod api;
pub mod flows;
pub mod guard;
pub mod history;
pub mod import;
pub mod kernel;
pub mod lab;
pub mod latency;
pub mod policy;
pub mod routes;
pub mod transit;

use crate::error::{Error, Result};
use serde::Serialize;

/// How a plan or change set is printed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human summary and change set.
    Text,
    /// `tc -batch` lines.
    Tc,
    /// An `nft -f` script.
    Nft,
    /// JSON.
    Json,
}

/// Prints like `print!`; a closed pipe ends the program quietly.
macro_rules! say {
    ($($arg:tt)*) => { $crate::output::write_stdout(&format!($($arg)*)) };
}

/// `say!` with a newline, like `println!`.
macro_rules! sayln {
    ($($arg:tt)*) => { $crate::output::write_stdout(&(format!($($arg)*) + "\n")) };
}

/// Writes to stdout; see `say!`. Exits with 0 on a broken pipe, because the
/// reader chose to stop reading, and with 2 on any other write error.
pub fn write_stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("tollgate: cannot write the output: {e}");
        std::process::exit(2);
    }
}

/// Writes to stdout as `write` produces it, through one buffer: for
/// answers too large to hold whole (the JSON of a plan of 100,000 tenants
/// is over half a gigabyte). A broken pipe exits 0 and other write errors
/// exit 2, as for [`write_stdout`].
pub fn stream_stdout(write: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<()>) {
    use std::io::Write;
    let stdout = std::io::stdout().lock();
    let mut out = std::io::BufWriter::with_capacity(1 << 16, stdout);
    if let Err(e) = write(&mut out).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("tollgate: cannot write the output: {e}");
        std::process::exit(2);
    }
}

/// Pretty JSON of `value` with a final newline, written as it is made.
pub fn stream_json(out: &mut dyn std::io::Write, value: &impl Serialize) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, value)?;
    out.write_all(b"\n")
}

/// A value as pretty JSON with a final newline.
pub fn json_pretty(value: &impl Serialize) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map(|s| s + "\n")
        .map_err(|e| Error::runtime(format!("cannot write JSON: {e}")))
}

/// A value as one line of JSON, without the newline.
pub fn json_line(value: &impl Serialize) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::runtime(format!("cannot write JSON: {e}")))
}

/// One CSV field, quoted if it must be.
pub fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Bytes for people, in powers of 1024 as vnStat prints them. Takes a
/// `u128` so that sums never need clamping before they are shown.
pub fn bytes(bytes: impl Into<u128>) -> String {
    let bytes: u128 = bytes.into();
    let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1024.0;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < units.len() {
        v /= 1024.0;
        i += 1;
    }
    format!("{v:.2} {}", units[i])
}

/// A count for people: `980`, `12.3k`, `4.5M`, as rtacct prints packets.
pub fn count(n: impl Into<u128>) -> String {
    let n: u128 = n.into();
    match n {
        0..=9_999 => n.to_string(),
        10_000..=9_999_999 => format!("{:.1}k", n as f64 / 1e3),
        10_000_000..=9_999_999_999 => format!("{:.1}M", n as f64 / 1e6),
        _ => format!("{:.1}G", n as f64 / 1e9),
    }
}

/// A rate in tc-style units, rounded for reading.
pub fn rate(bps: f64) -> String {
    if bps >= 1e9 {
        format!("{:.2}Gbit", bps / 1e9)
    } else if bps >= 1e6 {
        format!("{:.2}Mbit", bps / 1e6)
    } else if bps >= 1e3 {
        format!("{:.1}kbit", bps / 1e3)
    } else {
        format!("{bps:.0}bit")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_for_people() {
        assert_eq!(bytes(512u64), "512 B");
        assert_eq!(bytes(1536u64), "1.50 KiB");
        assert_eq!(bytes(3u64 << 30), "3.00 GiB");
        assert_eq!(bytes(55_340_232_221_128_654_848u128), "48.00 EiB");
        assert_eq!(count(980u64), "980");
        assert_eq!(count(12_345u64), "12.3k");
        assert_eq!(count(45_000_000u64), "45.0M");
        assert_eq!(rate(12_500_000.0), "12.50Mbit");
        assert_eq!(rate(999.0), "999bit");
    }

    #[test]
    fn csv_quotes_only_when_needed() {
        assert_eq!(csv_field("alice"), "alice");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
