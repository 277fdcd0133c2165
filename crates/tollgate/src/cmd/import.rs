//! `tollgate import libreqos`: reads LibreQoS's files, draws a progress
//! bar over ShapedDevices.csv, and writes the policy the `libreqos` crate
//! makes of them (atomically, with `-o`), with its report on stderr (or
//! as JSON).
//!
//! Exit codes: 1 when the input cannot be read or some rows cannot be
//! imported (nothing is written, unless `--skip-invalid`), 2 when the
//! policy cannot be written.

use crate::cli::import::{ImportCommand, LibreqosArgs};
use crate::error::{Error, Result};
use crate::output::import as show;
use std::path::Path;
use std::process::ExitCode;

/// The largest input file read: ShapedDevices.csv of a million circuits
/// is about 150 MiB.
const FILE_LIMIT: u64 = 256 << 20;

pub fn run(cmd: &ImportCommand) -> Result<ExitCode> {
    match cmd {
        ImportCommand::Libreqos(a) => libreqos(a),
    }
}

fn read(path: &Path) -> Result<Vec<u8>> {
    crate::policy_file::read_bounded(path, FILE_LIMIT).map_err(|e| {
        Error::invalid(format!("cannot read {}: {e}", path.display()))
            .hint("pass LibreQoS's ShapedDevices.csv, then optionally its network.json")
    })
}

fn libreqos(a: &LibreqosArgs) -> Result<ExitCode> {
    let devices = read(&a.shaped_devices)?;
    let network = a.network.as_deref().map(read).transpose()?;
    let devices_name = a.shaped_devices.display().to_string();
    let network_name = a.network.as_ref().map(|p| p.display().to_string());
    let output_name = a.output.as_ref().map_or_else(
        || "(standard output)".to_string(),
        |p| p.display().to_string(),
    );
    let options = libreqos::Options {
        uplink: a.uplink,
        lan: a.lan,
        capacity: a.capacity.map(|c| (c.down, c.up)),
        realm: a.realm.clone(),
        output_name: output_name.clone(),
    };
    // Drawn only on a terminal; a large file takes long enough to want it.
    let bar = indicatif::ProgressBar::new(devices.len() as u64).with_style(
        indicatif::ProgressStyle::with_template("importing {bytes}/{total_bytes} {wide_bar} {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let out = libreqos::import(
        libreqos::Source {
            name: &devices_name,
            bytes: &devices,
        },
        network
            .as_deref()
            .zip(network_name.as_deref())
            .map(|(bytes, name)| libreqos::Source { name, bytes }),
        &options,
        &mut |done| bar.set_position(done as u64),
    );
    bar.finish_and_clear();
    let report = &out.report;
    let write = match &out.policy {
        None => false,
        Some(_) => !report.has_errors() || a.skip_invalid,
    };
    if a.json {
        say!(
            "{}",
            show::json(report, a.output.as_deref().filter(|_| write))?
        );
    } else {
        show::diagnostics(report);
    }
    let Some(policy) = out.policy.as_deref().filter(|_| write) else {
        let err = Error::invalid(show::refused(report));
        return Err(if out.policy.is_some() {
            err.hint(
                "correct the rows above, or pass --skip-invalid to write the policy without them",
            )
        } else {
            err.hint("the diagnostics above say why")
        });
    };
    match &a.output {
        Some(path) => {
            crate::state_dir::replace_atomically(path, policy.as_bytes())?;
            if !a.json {
                show::summary(report, &output_name);
            }
        }
        None => {
            say!("{policy}");
            show::summary(report, &output_name);
        }
    }
    Ok(ExitCode::SUCCESS)
}
