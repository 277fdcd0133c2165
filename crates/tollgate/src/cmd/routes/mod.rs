//! `tollgate routes`: realms from routes. Imports MRT RIB dumps into the
//! saved table in the state directory, answers lookups and counts from
//! it, and runs the BGP speaker in the foreground.
//!
//! The decisions (best path, realm rules, the snapshot format) live in the
//! `routes` crate; this module reads files, draws progress and hands the
//! answers to `output::routes`.

mod listen;

use super::Context;
use crate::cli::routes::RoutesCommand;
use crate::error::{Error, Result};
use crate::output::routes as show;
use crate::saved_routes::{load, save};
use routes::import::Importer;
use routes::RealmRules;
use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub fn run(cx: &Context, cmd: &RoutesCommand) -> Result<ExitCode> {
    match cmd {
        RoutesCommand::Import { file, json } => import(cx, file, *json),
        RoutesCommand::Lookup { ip, json } => lookup(cx, *ip, *json),
        RoutesCommand::Stats { json } => stats(cx, *json),
        RoutesCommand::Listen {
            bgp,
            save_every,
            json,
        } => listen::listen(cx, bgp, *save_every, *json),
    }
}

/// The realm rules of a valid policy; an invalid one is reported in full.
fn realm_rules(path: &Path) -> Result<RealmRules> {
    let (_, p) = crate::policy_file::valid(path)?;
    Ok(RealmRules::from_policy(&p.realms))
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Reads a whole dump, decompressing gzip or bzip2 (recognised from their
/// magic bytes), with a progress bar over the bytes of the file.
fn read_dump(file: &Path) -> Result<Vec<u8>> {
    let f = std::fs::File::open(file).map_err(|e| {
        Error::invalid(format!("cannot open {}: {e}", file.display()))
            .hint("pass the path of a TABLE_DUMP_V2 RIB dump")
    })?;
    let size = f.metadata().map(|m| m.len()).unwrap_or(0);
    let bar = indicatif::ProgressBar::new(size).with_style(
        indicatif::ProgressStyle::with_template("reading {bytes}/{total_bytes} {wide_bar} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut input = std::io::BufReader::new(bar.wrap_read(f));
    let magic = std::io::BufRead::fill_buf(&mut input)
        .map_err(|e| Error::runtime(format!("cannot read {}: {e}", file.display())))?
        .get(..3)
        .map(<[u8]>::to_vec)
        .unwrap_or_default();
    let mut data = Vec::new();
    let result = match magic.as_slice() {
        [0x1f, 0x8b, _] => flate2::read::MultiGzDecoder::new(input).read_to_end(&mut data),
        b"BZh" => bzip2::read::MultiBzDecoder::new(input).read_to_end(&mut data),
        _ => input.read_to_end(&mut data),
    };
    bar.finish_and_clear();
    result.map_err(|e| {
        Error::invalid(format!(
            "cannot read {} (after {} bytes of decompressed data): {e}",
            file.display(),
            data.len()
        ))
        .hint("a truncated download is the usual cause; fetch the file again")
    })?;
    Ok(data)
}

fn import(cx: &Context, file: &Path, json: bool) -> Result<ExitCode> {
    let rules = realm_rules(&cx.config)?;
    let started = Instant::now();
    let data = read_dump(file)?;
    let read_time = started.elapsed();
    let bar = indicatif::ProgressBar::new(data.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("importing {bytes}/{total_bytes} {wide_bar} {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let mut importer = Importer::new(rules);
    importer.read(&data, |offset, n| {
        bar.set_position(offset as u64);
        bar.set_message(format!("{n} entries"));
    });
    bar.finish_and_clear();
    let name = file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let (snapshot, report) = importer.finish(&name, unix_now());
    let skipped: usize = report.skipped.values().sum();
    for e in &report.first_errors {
        eprintln!(
            "tollgate: {}: {e} (offset in the decompressed data)",
            file.display()
        );
    }
    if report.errors > report.first_errors.len() {
        eprintln!(
            "tollgate: {}: {} more bad records not shown",
            file.display(),
            report.errors - report.first_errors.len()
        );
    }
    for w in report.warnings() {
        eprintln!("tollgate: warning: {}: {w}", file.display());
    }
    if report.outcome() == routes::import::ImportOutcome::Nothing {
        return Err(Error::invalid(format!(
            "{} has no RIB entries ({} records skipped); the saved table was not changed",
            file.display(),
            skipped
        ))
        .hint("tollgate reads TABLE_DUMP_V2 RIB dumps (RIPE RIS bview.*, RouteViews rib.*), not BGP4MP update files"));
    }
    let path = cx.state.routes_table();
    save(&snapshot, &path)?;
    let imported = show::Imported {
        file,
        report: &report,
        skipped,
        snapshot: &snapshot,
        path: &path,
        seconds: started.elapsed().as_secs_f64(),
        read_seconds: read_time.as_secs_f64(),
    };
    if json {
        sayln!("{}", show::imported_json(&imported)?);
    } else {
        say!("{}", show::imported_text(&imported));
    }
    Ok(ExitCode::SUCCESS)
}

fn lookup(cx: &Context, ip: IpAddr, json: bool) -> Result<ExitCode> {
    let s = load(&cx.state.routes_table())?;
    let found = s.lookup(ip);
    if json {
        sayln!("{}", show::lookup_json(&s, ip, found)?);
    } else {
        say!("{}", show::lookup_text(&s, ip, found));
    }
    Ok(if found.is_some() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn stats(cx: &Context, json: bool) -> Result<ExitCode> {
    let s = load(&cx.state.routes_table())?;
    if json {
        sayln!("{}", show::stats_json(&s)?);
    } else {
        say!("{}", show::stats_text(&s));
    }
    Ok(ExitCode::SUCCESS)
}
