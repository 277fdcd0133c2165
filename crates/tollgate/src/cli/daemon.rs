//! `tollgate run`'s arguments.

use super::history::SettingsArgs;
use super::parse_duration;
use clap::Args;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// `tollgate run`'s options.
#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub settings: SettingsArgs,
    /// How often the class counters are read and accounted.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub interval: Duration,
    /// How often the kernel is reconciled with the policy.
    #[arg(long, value_parser = parse_duration, default_value = "10s", value_name = "DURATION")]
    pub reconcile: Duration,
    /// Serve the API and metrics on this address instead of the policy's
    /// `[api] listen` (default 127.0.0.1:9188). `--metrics` is the old name.
    #[arg(long, alias = "metrics", value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Do not serve the API and metrics at all.
    #[arg(long, conflicts_with = "listen")]
    pub no_api: bool,
    /// Write every input the engine receives to FILE (JSON lines), so that
    /// the run can be replayed with `tollgate replay FILE`.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
}
