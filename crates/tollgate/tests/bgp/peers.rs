//! Real BGP speakers for the tests: BIRD 2 and ExaBGP processes on
//! loopback addresses (127.0.0.x), with their configuration in a temporary
//! folder, stopped (and the folder removed) when the test ends, also when
//! it fails.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The test's folder, removed on drop.
pub struct Lab {
    pub dir: PathBuf,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// A lab for one test, or `None` when the test is skipped knowingly
/// (`TOLLGATE_SKIP_ROOT_TESTS=1` without root; see `testkit::root`).
/// BIRD and ExaBGP must be installed (`cargo xtask ci` installs them).
pub fn lab(test: &str) -> Option<Lab> {
    if !testkit::root(test) {
        return None;
    }
    testkit::need("bird", "bird2");
    testkit::need("birdc", "bird2");
    testkit::need("exabgp", "exabgp");
    let dir = std::env::temp_dir().join(format!("tgb-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the lab folder");
    Some(Lab { dir })
}

/// Polls `f` every 20 ms until it holds; panics with `what` after
/// `limit`. Returns how long it took.
pub fn wait_until(what: &str, limit: Duration, mut f: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < limit {
        if f() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("timed out after {limit:?} waiting for {what}");
}

/// Sends `sig` to `pid`; a process already gone is no error (teardown
/// signals peers that may have exited), so `kill`'s complaint is not shown.
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{sig}"), &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status();
}

/// A BIRD 2 process.
pub struct Bird {
    child: Child,
    ctl: PathBuf,
    conf: PathBuf,
}

impl Bird {
    /// Starts BIRD in the foreground with this configuration and waits
    /// (at most 10 s) for its control socket.
    pub fn start(lab: &Lab, name: &str, config: &str) -> Bird {
        let conf = lab.dir.join(format!("{name}.conf"));
        let ctl = lab.dir.join(format!("{name}.ctl"));
        std::fs::write(&conf, config).expect("write the BIRD configuration");
        let child = Command::new("bird")
            .arg("-f")
            .arg("-c")
            .arg(&conf)
            .arg("-s")
            .arg(&ctl)
            .arg("-P")
            .arg(lab.dir.join(format!("{name}.pid")))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start bird");
        let mut bird = Bird { child, ctl, conf };
        let start = Instant::now();
        while !bird.cli("show status").contains("Daemon is up") {
            if let Ok(Some(status)) = bird.child.try_wait() {
                panic!("BIRD exited ({status}) at start; its message is above");
            }
            assert!(
                start.elapsed() < Duration::from_secs(10),
                "BIRD's control socket did not answer within 10 s"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        bird
    }

    /// Runs one birdc command and returns its output.
    pub fn cli(&self, command: &str) -> String {
        let out = Command::new("birdc")
            .arg("-s")
            .arg(&self.ctl)
            .args(command.split_whitespace())
            .output()
            .expect("run birdc");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Replaces the configuration and tells BIRD to reload it.
    pub fn reconfigure(&self, config: &str) {
        std::fs::write(&self.conf, config).expect("write the BIRD configuration");
        let out = self.cli("configure");
        assert!(
            out.contains("Reconfigured") || out.contains("Reconfiguration in progress"),
            "birdc configure: {out}"
        );
    }

    /// Sends a signal (STOP, CONT, KILL…) to the process.
    pub fn signal(&self, sig: &str) {
        signal(self.child.id(), sig);
    }

    /// Kills the process at once, as a crash would.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        // A stopped process cannot die of SIGKILL until it is continued.
        signal(self.child.id(), "CONT");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An ExaBGP process.
pub struct ExaBgp {
    child: Child,
}

impl ExaBgp {
    /// Starts ExaBGP in the foreground with this configuration.
    pub fn start(lab: &Lab, name: &str, config: &str) -> ExaBgp {
        ExaBgp::start_with(lab, name, config, &[])
    }

    /// Starts ExaBGP with extra `exabgp.*` settings in its environment
    /// (`exabgp.log.routes=true` logs every route received).
    pub fn start_with(lab: &Lab, name: &str, config: &str, env: &[(&str, &str)]) -> ExaBgp {
        let conf = lab.dir.join(format!("{name}.conf"));
        std::fs::write(&conf, config).expect("write the ExaBGP configuration");
        let log = std::fs::File::create(lab.dir.join(format!("{name}.log")))
            .expect("create the ExaBGP log");
        let child = Command::new("exabgp")
            .arg(&conf)
            .env("exabgp.daemon.user", "root")
            .env("exabgp.daemon.daemonize", "false")
            .env("exabgp.log.destination", "stdout")
            .env("exabgp.api.cli", "false")
            .envs(env.iter().copied())
            .stdout(log)
            .stderr(Stdio::null())
            .spawn()
            .expect("start exabgp");
        ExaBgp { child }
    }
}

impl Drop for ExaBgp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What a generated BIRD speaker announces to tollgate.
pub struct BirdPeer<'a> {
    pub local: Ipv4Addr,
    pub local_as: u32,
    pub tollgate_port: u16,
    pub hold_time: u16,
    /// `route …;` lines for the IPv4 and IPv6 static protocols.
    pub routes4: &'a str,
    pub routes6: &'a str,
    /// Statements of the export filter, before `accept`.
    pub filter: &'a str,
}

impl BirdPeer<'_> {
    /// A BIRD configuration that connects to tollgate at 127.0.0.1 and
    /// exports the static routes through the filter. Timers are short so
    /// that restarts and errors recover within a second or two; `strict
    /// bind` keeps each BIRD's listening socket on its own address, so
    /// that tests can run side by side.
    pub fn config(&self) -> String {
        let keepalive = (self.hold_time / 3).max(1);
        let octet = self.local.octets()[3];
        format!(
            r#"router id {local};
protocol device {{ }}
protocol static s4 {{ ipv4; {routes4} }}
protocol static s6 {{ ipv6; {routes6} }}
filter to_tollgate {{ {filter} accept; }}
protocol bgp tollgate {{
  local {local} as {asn};
  neighbor 127.0.0.1 port {port} as 65000;
  multihop;
  strict bind yes;
  hold time {hold};
  keepalive time {keepalive};
  connect delay time 1;
  connect retry time 1;
  error wait time 1, 2;
  ipv4 {{ import none; export filter to_tollgate; next hop self; }};
  ipv6 {{ import none; export filter to_tollgate; next hop address 2001:db8::{octet}; }};
}}
"#,
            local = self.local,
            asn = self.local_as,
            port = self.tollgate_port,
            hold = self.hold_time,
            routes4 = self.routes4,
            routes6 = self.routes6,
            filter = self.filter,
        )
    }
}

/// A loopback address for one speaker of one test.
pub fn loopback(last: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 0, last)
}

/// `addr` as an `IpAddr`.
pub fn ip(addr: Ipv4Addr) -> IpAddr {
    IpAddr::V4(addr)
}
