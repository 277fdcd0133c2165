//! Measuring the lab with iperf3: one server in the upstream per flow, one
//! client in the tenant, every process bounded by `timeout` and reaped.

use super::{cmd, realms, Direction, Lab, LabError, LabTenant, Measurement, TrafficOpts};
use std::net::IpAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The first server port; flows running at once use the ports after it.
const BASE_PORT: u16 = 5201;

/// One flow to measure.
struct Flow<'a> {
    tenant: &'a LabTenant,
    realm: &'a str,
    server: IpAddr,
    dir: Direction,
}

impl Flow<'_> {
    fn describe(&self) -> String {
        format!(
            "{} ({}) {} {} via {}",
            self.tenant.name,
            self.tenant.netns,
            self.realm,
            self.dir.as_str(),
            self.server
        )
    }

    /// The tenant's own address in the server's family.
    fn from(&self) -> IpAddr {
        match self.server {
            IpAddr::V4(_) => IpAddr::V4(self.tenant.v4),
            IpAddr::V6(_) => IpAddr::V6(self.tenant.v6),
        }
    }
}

pub(super) fn run(
    lab: &Lab,
    opts: &TrafficOpts,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<Measurement>, LabError> {
    if opts.seconds == 0 || opts.directions.is_empty() {
        return Err(LabError::Spec(
            "traffic needs at least one second and one direction".into(),
        ));
    }
    // A missing iperf3 would otherwise surface as a failed flow.
    cmd::run(&["iperf3", "--version"])?;
    let present = cmd::lab_namespaces()?;
    if !present.contains(&lab.host_netns) {
        return Err(LabError::NotUp);
    }
    let missing: Vec<String> = std::iter::once(&lab.upstream_netns)
        .chain(lab.tenants.iter().map(|t| &t.netns))
        .filter(|n| !present.contains(n))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(LabError::Incomplete { missing });
    }
    let policy = match lab.policy() {
        Ok(p) => Some(p),
        Err(e) => {
            progress(&format!("no expected ceilings: {e}"));
            None
        }
    };
    let flows = flows(lab, opts);
    let parallel = opts.parallel.clamp(1, 16);
    progress(&format!(
        "{} flows of {} s each, {}",
        flows.len(),
        opts.seconds,
        if parallel == 1 {
            "one at a time (flows at once would share the CPU and measure each other)".to_string()
        } else {
            format!(
                "{parallel} at a time on ports {BASE_PORT}–{}",
                BASE_PORT + parallel as u16 - 1
            )
        }
    ));
    let mut out = Vec::new();
    for chunk in flows.chunks(parallel) {
        let results: Vec<Result<f64, LabError>> = std::thread::scope(|sc| {
            let handles: Vec<_> = chunk
                .iter()
                .enumerate()
                .map(|(slot, f)| {
                    sc.spawn(move || measure(lab, f, BASE_PORT + slot as u16, opts.seconds))
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join().unwrap_or_else(|_| {
                        Err(LabError::Traffic {
                            flow: "a flow".into(),
                            error: "its thread panicked".into(),
                        })
                    })
                })
                .collect()
        });
        for (f, r) in chunk.iter().zip(results) {
            let mbit = r?;
            let expected = policy
                .as_ref()
                .and_then(|p| realms::expected_ceil_mbit(p, f.tenant.id, f.from(), f.realm, f.dir));
            let ceil = expected.map_or(String::new(), |c| format!(" (ceil {c})"));
            progress(&format!("{}: {mbit:.2} Mbit/s{ceil}", f.describe()));
            out.push(Measurement {
                tenant: f.tenant.id,
                tenant_name: f.tenant.name.clone(),
                realm: f.realm.to_string(),
                server: f.server,
                direction: f.dir,
                mbit,
                expected_ceil_mbit: expected,
            });
        }
    }
    Ok(out)
}

/// Every tenant × realm × family × direction, in that order.
fn flows<'a>(lab: &'a Lab, opts: &TrafficOpts) -> Vec<Flow<'a>> {
    let mut out = Vec::new();
    for tenant in &lab.tenants {
        for e in &lab.endpoints {
            let v6 = e.v6.filter(|_| opts.ipv6).map(IpAddr::V6);
            for server in e.v4.map(IpAddr::V4).into_iter().chain(v6) {
                for &dir in &opts.directions {
                    out.push(Flow {
                        tenant,
                        realm: &e.realm,
                        server,
                        dir,
                    });
                }
            }
        }
    }
    out
}

fn spawn(argv: &[String], stderr: Stdio) -> Result<Child, LabError> {
    Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(|e| {
            let v: Vec<&str> = argv.iter().map(String::as_str).collect();
            cmd::spawn_error(&argv[0], &v, &e)
        })
}

/// The command prefix that runs a program in a namespace for at most `secs`
/// (then SIGTERM, and SIGKILL two seconds later).
fn bounded(ns: &str, secs: u32) -> Vec<String> {
    ["ip", "netns", "exec", ns, "timeout", "-k", "2"]
        .into_iter()
        .map(str::to_string)
        .chain([secs.to_string()])
        .collect()
}

/// Runs one flow: starts a one-off server, runs the client, stops the server.
fn measure(lab: &Lab, f: &Flow<'_>, port: u16, secs: u32) -> Result<f64, LabError> {
    let (addr, port_s) = (f.server.to_string(), port.to_string());
    let mut server = bounded(&lab.upstream_netns, secs + 20);
    server.extend(["iperf3", "-s", "-1", "-B", &addr, "-p", &port_s].map(str::to_string));
    let mut child = spawn(&server, Stdio::piped())?;
    let result = client(f, &port_s, secs, &mut child);
    stop(&mut child);
    result.map_err(|error| LabError::Traffic {
        flow: f.describe(),
        error,
    })
}

/// Runs the client until the server is listening (it may still be
/// starting), and returns the receiver's rate in Mbit/s.
fn client(f: &Flow<'_>, port: &str, secs: u32, server: &mut Child) -> Result<f64, String> {
    let mut argv = bounded(&f.tenant.netns, secs + 15);
    let addr = f.server.to_string();
    argv.extend(["iperf3", "-c", &addr, "-p", port, "-J", "-t"].map(str::to_string));
    argv.push(secs.to_string());
    if f.dir == Direction::Down {
        argv.push("-R".into());
    }
    let started = Instant::now();
    loop {
        let out = Command::new(&argv[0])
            .args(&argv[1..])
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", argv.join(" ")))?;
        let text = String::from_utf8_lossy(&out.stdout);
        // Without JSON on stdout, iperf3 or `ip netns exec` said why on stderr.
        let parsed = parse(&text).map_err(|e| match text.trim() {
            "" => format!("{e}: {}", String::from_utf8_lossy(&out.stderr).trim()),
            _ => e,
        });
        match parsed {
            Ok(mbit) => return Ok(mbit),
            Err(e)
                if e.contains("Connection refused")
                    && started.elapsed() < Duration::from_secs(3) =>
            {
                if let Ok(Some(status)) = server.try_wait() {
                    return Err(format!(
                        "the iperf3 server exited ({status}): {}",
                        server_stderr(server)
                    ));
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) if out.status.code() == Some(124) => {
                return Err(format!("iperf3 did not finish within {} s: {e}", secs + 15))
            }
            Err(e) => {
                let said = server_stderr(server);
                return Err(match said.as_str() {
                    "" => e,
                    _ => format!("{e}; the server said: {said}"),
                });
            }
        }
    }
}

/// The receiver's rate from `iperf3 -J` output, or iperf3's error.
fn parse(text: &str) -> Result<f64, String> {
    let v: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("iperf3 printed no JSON ({e})"))?;
    if let Some(err) = v.get("error").and_then(|e| e.as_str()) {
        return Err(format!("iperf3: {err}"));
    }
    v["end"]["sum_received"]["bits_per_second"]
        .as_f64()
        .map(|b| b / 1e6)
        .ok_or_else(|| "iperf3's JSON has no end.sum_received.bits_per_second".into())
}

/// What a finished server wrote to stderr (empty while it runs).
fn server_stderr(server: &mut Child) -> String {
    use std::io::Read;
    let mut s = String::new();
    if matches!(server.try_wait(), Ok(Some(_))) {
        if let Some(e) = server.stderr.as_mut() {
            let _ = e.read_to_string(&mut s);
        }
    }
    s.trim().to_string()
}

/// A one-off server exits after its test; give it a moment, then end it.
/// SIGTERM goes to `timeout`, which passes it on to iperf3.
fn stop(server: &mut Child) {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if matches!(server.try_wait(), Ok(Some(_)) | Err(_)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    cmd::kill(&[server.id()], "TERM");
    let _ = server.wait();
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_the_receivers_rate_and_iperfs_errors() {
        let ok = r#"{"end": {"sum_received": {"bits_per_second": 9580000.0}}}"#;
        assert_eq!(parse(ok), Ok(9.58));
        let err = r#"{"start": {}, "error": "unable to connect to server - server may have stopped running or use a different port, firewall issue, etc.: Connection refused"}"#;
        assert!(parse(err).unwrap_err().contains("Connection refused"));
        assert!(parse("").is_err());
    }
}
