//! Helpers for tollgate's tests, written once instead of in every test
//! file: the rule for tests that need root, commands a test needs, a
//! shell, bounded waits, network namespaces and child processes that are
//! removed however a test ends.
//!
//! # The root-test rule
//!
//! A test that needs root calls [`root`] first. As root it runs. Not as
//! root it fails, loudly, unless `TOLLGATE_SKIP_ROOT_TESTS=1` asks to skip
//! it (then it says so and passes): a test never passes silently without
//! having run. CI runs as root, and its packages are installed by `cargo
//! xtask ci`, never by a test ([`need`] fails with the hint instead).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The variable that lets root tests be skipped on a machine without root.
pub const SKIP: &str = "TOLLGATE_SKIP_ROOT_TESTS";

/// Whether the process runs as root.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// What the root-test rule decides for one test.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RootRule {
    /// Root: the test runs.
    Run,
    /// Not root, and `TOLLGATE_SKIP_ROOT_TESTS=1`: the test says this and
    /// passes without running.
    Skip(String),
    /// Not root, and no (or another) value of the variable: the test
    /// fails with this message.
    Fail(String),
}

/// The root-test rule as a function of whether the process is root and
/// the value of `TOLLGATE_SKIP_ROOT_TESTS` (if set): only the exact value
/// `1` skips.
pub fn root_rule(test: &str, is_root: bool, skip: Option<&str>) -> RootRule {
    if is_root {
        RootRule::Run
    } else if skip == Some("1") {
        RootRule::Skip(format!(
            "skipping {test}: it needs root, and {SKIP}=1 asks to skip such tests"
        ))
    } else {
        RootRule::Fail(format!(
            "{test} needs root (network namespaces, qdiscs, real daemons); run it as root, or set {SKIP}=1 to skip it knowingly"
        ))
    }
}

/// The root-test rule: `true` to run; `false` (having said so) to skip
/// when not root and `TOLLGATE_SKIP_ROOT_TESTS=1`; a panic otherwise.
pub fn root(test: &str) -> bool {
    let skip = std::env::var(SKIP).ok();
    match root_rule(test, is_root(), skip.as_deref()) {
        RootRule::Run => true,
        RootRule::Skip(message) => {
            eprintln!("{message}");
            false
        }
        RootRule::Fail(message) => panic!("{message}"),
    }
}

/// Whether `cmd` is on the PATH.
pub fn have(cmd: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {cmd}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Fails the test unless `cmd` (from Debian's `package`) is installed.
/// Tests never install anything: `cargo xtask ci` does.
pub fn need(cmd: &str, package: &str) {
    assert!(
        have(cmd),
        "`{cmd}` is not installed; `cargo xtask ci` installs it (apt-get install {package})"
    );
}

/// Runs a bash script; fails the test if it fails. Returns its stdout.
pub fn sh(script: &str) -> String {
    let out = Command::new("bash")
        .args(["-c", script])
        .output()
        .expect("bash");
    assert!(
        out.status.success(),
        "failed: {script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits until `ok` holds, checking every 50 ms, for at most `limit`;
/// returns how long it took.
pub fn wait_for(what: &str, limit: Duration, mut ok: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if ok() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "timed out after {limit:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The repository's root.
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A network namespace, deleted on drop.
pub struct Netns(pub String);

impl Netns {
    /// A new namespace named `tg-<tag>-<pid>`, with its loopback up; an
    /// old one of the same name is removed first.
    pub fn new(tag: &str) -> Netns {
        let name = format!("tg-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let ns = Netns(name);
        sh(&format!(
            "ip netns add {0} && ip -n {0} link set lo up",
            ns.0
        ));
        ns
    }

    /// Runs a script inside the namespace.
    pub fn sh(&self, script: &str) -> String {
        sh(&format!(
            "ip netns exec {} bash -c {}",
            self.0,
            quote(script)
        ))
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

/// Runs the tollgate binary `bin` (the test's `env!("CARGO_BIN_EXE_tollgate")`)
/// with `args` and the files of `dir` only: its `policy.toml`,
/// `accounting.toml` and `state/`, nothing from the environment. Fails the
/// test if the command fails; returns what it printed.
pub fn tollgate_in(bin: &str, dir: &std::path::Path, args: &[&str]) -> String {
    let o = Command::new(bin)
        .args(args)
        .arg("-c")
        .arg(dir.join("policy.toml"))
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--accounting")
        .arg(dir.join("accounting.toml"))
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_STATE_DIR")
        .env_remove("TOLLGATE_ACCOUNTING")
        .output()
        .expect("run tollgate");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "tollgate {args:?}: {err}");
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// `tollgate run` (the binary `bin`) in network namespace `netns` with the
/// files of `dir` only, as [`tollgate_in`]: its `policy.toml`, an empty
/// `accounting.toml` written now, and `state/`; counters read and the
/// kernel reconciled every second; its log appended to `dir/daemon.log`,
/// so a restarted daemon adds to it. With `record`, its inputs are
/// recorded there (`--record`). Stopped, with its process group, when the
/// returned process drops.
pub fn tollgate_run(
    bin: &str,
    netns: &Netns,
    dir: &std::path::Path,
    record: Option<&std::path::Path>,
) -> Process {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("daemon.log"))
        .expect("open the daemon's log");
    std::fs::write(dir.join("accounting.toml"), "").expect("write accounting.toml");
    let record = record.map(|r| [std::path::Path::new("--record"), r]);
    Process::spawn(
        Command::new(bin)
            .args(["--netns", &netns.0, "-c"])
            .arg(dir.join("policy.toml"))
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(["run", "--interval", "1s", "--reconcile", "1s"])
            .arg("--accounting")
            .arg(dir.join("accounting.toml"))
            .args(record.iter().flatten())
            .env_remove("TOLLGATE_CONFIG")
            .env_remove("TOLLGATE_STATE_DIR")
            .env_remove("TOLLGATE_ACCOUNTING")
            .env("TOLLGATE_LOG", "info")
            .stdout(std::process::Stdio::null())
            .stderr(log),
    )
}

/// `s` quoted for bash.
pub fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// A webhook receiver in network namespace `netns`, on 127.0.0.1:`port`:
/// each POST is appended to `log` as `PATH CONTENT-TYPE BODY` and
/// answered 204. Returns once it listens. Python's own HTTP server, so the tests see what a real
/// receiver gets; it is stopped when the returned process drops.
pub fn webhook_receiver(netns: &str, port: u16, log: &std::path::Path) -> Process {
    need("python3", "python3");
    const RECEIVER: &str = r#"import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers['Content-Length']))
        with open(sys.argv[1], 'ab') as f:
            f.write(self.path.encode() + b' ' + self.headers.get('Content-Type', '').encode() + b' ' + body + b'\n')
        self.send_response(204)
        self.end_headers()
    def log_message(self, *a):
        pass
server = http.server.HTTPServer(('127.0.0.1', int(sys.argv[2])), H)
open(sys.argv[1] + '.ready', 'w').close()
server.serve_forever()
"#;
    let receiver = Process::spawn(
        Command::new("ip")
            .args(["netns", "exec", netns, "python3", "-c", RECEIVER])
            .arg(log)
            .arg(port.to_string())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    // Listening before the caller goes on: a webhook sent at once must
    // not find the port closed.
    let mut ready = log.as_os_str().to_owned();
    ready.push(".ready");
    wait_for("the webhook receiver", Duration::from_secs(10), || {
        std::path::Path::new(&ready).exists()
    });
    receiver
}

/// A child process in a process group of its own: on drop the whole
/// group is killed, so nothing it started (a plugin process, a helper)
/// outlives the test.
pub struct Process {
    child: Child,
}

impl Process {
    /// Starts `cmd` in a new process group.
    pub fn spawn(cmd: &mut Command) -> Process {
        use std::os::unix::process::CommandExt as _;
        let child = cmd.process_group(0).spawn().expect("start a process");
        Process { child }
    }

    /// Its process id (and group id).
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` to the whole group.
    pub fn signal_group(&self, signal: i32) {
        // SAFETY: kill(2) with a negative pid signals a process group; it
        // touches no memory.
        #[allow(unsafe_code)]
        unsafe {
            libc::kill(-(self.child.id() as i32), signal);
        }
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().ok().flatten().is_none()
    }

    /// Waits at most `limit` for it to exit; its status, or `None`.
    pub fn wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let start = Instant::now();
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return Some(s);
            }
            if start.elapsed() >= limit {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The child itself.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.signal_group(libc::SIGTERM);
        if self.wait(Duration::from_secs(3)).is_none() {
            self.signal_group(libc::SIGKILL);
            let _ = self.child.wait();
        }
        // Whatever else is left of the group (a child that outlived its
        // parent) goes too.
        self.signal_group(libc::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_group_is_killed_whole() {
        // The shell starts a grandchild that would outlive it.
        let mut p = Process::spawn(
            Command::new("bash")
                .args(["-c", "sleep 300 & echo $! ; wait"])
                .stdout(Stdio::piped()),
        );
        let mut line = String::new();
        use std::io::BufRead as _;
        std::io::BufReader::new(p.child().stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let grandchild: i32 = line.trim().parse().unwrap();
        drop(p);
        std::thread::sleep(Duration::from_millis(100));
        let alive = std::path::Path::new(&format!("/proc/{grandchild}")).exists()
            && !std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
                .unwrap_or_default()
                .contains(") Z ");
        assert!(!alive, "the grandchild {grandchild} outlived the group");
    }

    #[test]
    fn the_root_rule_runs_as_root_skips_only_when_asked_and_fails_otherwise() {
        for skip in [None, Some("1"), Some("0"), Some("")] {
            assert_eq!(root_rule("t", true, skip), RootRule::Run, "{skip:?}");
        }
        match root_rule("my_test", false, Some("1")) {
            RootRule::Skip(m) => assert!(
                m.contains("skipping my_test") && m.contains("TOLLGATE_SKIP_ROOT_TESTS=1"),
                "{m}"
            ),
            other => panic!("{other:?}"),
        }
        // Anything but exactly 1 is no request to skip.
        for skip in [
            None,
            Some("0"),
            Some(""),
            Some("yes"),
            Some("true"),
            Some(" 1"),
        ] {
            match root_rule("my_test", false, skip) {
                RootRule::Fail(m) => assert!(
                    m.contains("my_test needs root") && m.contains("TOLLGATE_SKIP_ROOT_TESTS=1"),
                    "{m}"
                ),
                other => panic!("{skip:?}: {other:?}"),
            }
        }
    }

    #[test]
    fn quoting_survives_quotes() {
        assert_eq!(sh(&format!("echo {}", quote("it's"))).trim(), "it's");
    }
}
