//! The state directory's files as the binary writes and reads them, and
//! what its logs look like in a file (issue 12):
//!
//! - #6: every file tollgate replaces is replaced durably: the new text
//!   is fsync'd under its temporary name before the rename, and the
//!   folder is fsync'd after it. Seen from outside, with `strace`, on the
//!   real binary: the flow collector's status and templates, the routes
//!   table, the tokens file;
//! - #9: `status`, `top` and `flows status` read the flow collector's
//!   files in the state directory they are given (`--state-dir`), not in
//!   `TOLLGATE_STATE_DIR` or the default;
//! - #18: a daemon's log written to a file has no colour codes; colour is
//!   for a terminal only (and a terminal does get it).

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use testkit::{wait_for, Process};

/// A folder for one test, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(tag: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("tgsf-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        if let Some(d) = p.parent() {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

fn ok(o: Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what} failed ({:?}):\n{}{}",
        o.status,
        text(&o.stdout),
        text(&o.stderr)
    );
    text(&o.stdout)
}

fn free_udp_port() -> u16 {
    std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A router policy with a flow collector on loopback and two tenants
/// measured by flows.
fn flows_policy(port: u16) -> String {
    format!(
        r#"[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = {{ down = "1gbit", up = "1gbit" }}

[realms]
default = "international"

[realms.national]
id = 1
prefixes = ["198.51.100.0/24"]

[realms.international]
id = 2

[plans.basic]
down = {{ rate = "10mbit", ceil = "100mbit" }}
up = {{ rate = "10mbit", ceil = "100mbit" }}

[flows]
listen = ["127.0.0.1:{port}"]
workers = 1

[[flows.exporters]]
address = "127.0.0.1"
name = "lo"

[[tenants]]
id = 1
plan = "basic"
prefixes = ["100.64.1.0/24"]
measured_by = "flows"

[[tenants]]
id = 2
plan = "basic"
prefixes = ["100.64.2.0/24"]
measured_by = "flows"
"#
    )
}

/// A NetFlow v9 datagram from source id 7 carrying one template (id 256:
/// IPv4 source, destination, octets, packets), so that the collector has
/// templates to save.
fn v9_template() -> Vec<u8> {
    let mut d = Vec::new();
    let unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    for v in [9u16, 1] {
        d.extend(v.to_be_bytes());
    }
    d.extend(1000u32.to_be_bytes()); // uptime, ms
    d.extend(unix.to_be_bytes());
    d.extend(1u32.to_be_bytes()); // sequence
    d.extend(7u32.to_be_bytes()); // source id
                                  // Template flowset: id 0, length 4 + 4 + 4 × 4.
    for v in [0u16, 24, 256, 4, 8, 4, 12, 4, 1, 4, 2, 4] {
        d.extend(v.to_be_bytes());
    }
    d
}

/// One traced call, in the order the calls started.
#[derive(Debug, PartialEq)]
enum Call {
    /// fsync/fdatasync of the file or folder at this path.
    Sync(PathBuf),
    /// A rename.
    Rename { from: PathBuf, to: PathBuf },
}

/// The calls in an `strace -f -y` log: `-y` prints a descriptor with its
/// path (`3</dir/file>`). A call split by another thread (`<unfinished
/// ...>`) is taken where it started; failed calls are left out.
fn calls(log: &str) -> Vec<Call> {
    let mut out = Vec::new();
    for line in log.lines() {
        let line = line
            .trim_start_matches(|c: char| c.is_ascii_digit())
            .trim_start();
        if line.starts_with("<...") || line.contains("= -1 ") {
            continue;
        }
        let Some((name, args)) = line.split_once('(') else {
            continue;
        };
        match name {
            "fsync" | "fdatasync" => {
                let path = args
                    .split_once('<')
                    .and_then(|(_, r)| r.split_once('>'))
                    .map(|(p, _)| PathBuf::from(p));
                if let Some(p) = path {
                    out.push(Call::Sync(p));
                }
            }
            "rename" | "renameat" | "renameat2" => {
                // The paths are the quoted arguments; a relative one is
                // taken against the descriptor printed before it.
                let mut paths = Vec::new();
                let mut base = PathBuf::new();
                let mut rest = args;
                while let Some(i) = rest.find(['"', '<']) {
                    let (open, after) = (rest.as_bytes()[i], &rest[i + 1..]);
                    let close = if open == b'"' { '"' } else { '>' };
                    let Some(j) = after.find(close) else { break };
                    let item = &after[..j];
                    if open == b'<' {
                        base = PathBuf::from(item);
                    } else {
                        paths.push(base.join(item));
                    }
                    rest = &after[j + 1..];
                }
                if let [from, to] = paths.as_slice() {
                    out.push(Call::Rename {
                        from: from.clone(),
                        to: to.clone(),
                    });
                }
            }
            _ => {}
        }
    }
    out
}

/// Checks that every rename into `under` was durable: its source was
/// fsync'd before it, and the target's folder after it (before the next
/// rename onto the same target). Returns the files replaced.
fn assert_durable(log: &str, under: &Path) -> Vec<PathBuf> {
    let calls = calls(log);
    let mut replaced = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        let Call::Rename { from, to } = c else {
            continue;
        };
        if !to.starts_with(under) {
            continue;
        }
        assert!(
            calls[..i].contains(&Call::Sync(from.clone())),
            "{} was renamed onto {} without an fsync of the new text first:\n{log}",
            from.display(),
            to.display()
        );
        let folder = to.parent().unwrap().to_path_buf();
        let later = calls[i + 1..]
            .iter()
            .take_while(|c| !matches!(c, Call::Rename { to: t, .. } if t == to));
        assert!(
            later.into_iter().any(|c| *c == Call::Sync(folder.clone())),
            "{} was replaced without an fsync of {} after the rename:\n{log}",
            to.display(),
            folder.display()
        );
        replaced.push(to.clone());
    }
    replaced
}

/// `strace` recording fsyncs and renames of every thread into `log`.
fn strace(log: &Path) -> Command {
    testkit::need("strace", "strace");
    let mut c = Command::new("strace");
    c.args(["-f", "-qq", "-y", "-s", "4096", "-o", s(log)])
        .args([
            "-e",
            "trace=fsync,fdatasync,rename,renameat,renameat2",
            "--",
        ]);
    c
}

/// The traced command's own pid: strace's only child.
fn tracee(strace: u32) -> u32 {
    let children = format!("/proc/{strace}/task/{strace}/children");
    let mut pid = None;
    wait_for(
        "strace to start the command",
        Duration::from_secs(10),
        || {
            pid = std::fs::read_to_string(&children)
                .ok()
                .and_then(|t| t.split_whitespace().next()?.parse().ok());
            pid.is_some()
        },
    );
    pid.unwrap()
}

fn signal(pid: u32, sig: &str) {
    let st = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .unwrap();
    assert!(st.success(), "kill {sig} {pid}");
}

#[test]
fn the_flow_collectors_files_are_fsynced_before_and_after_their_rename() {
    let t = Scratch::new("fsync-flows");
    let port = free_udp_port();
    let policy = t.write("policy.toml", &flows_policy(port));
    let accounting = t.write("accounting.toml", "");
    let state = t.path("state");
    let log = t.path("strace.log");
    let mut traced = strace(&log);
    traced
        .arg(env!("CARGO_BIN_EXE_tollgate"))
        .args(["--state-dir", s(&state), "-c", s(&policy)])
        .args(["flows", "collect", "--interval", "200ms"])
        .current_dir(testkit::repo())
        .env("TOLLGATE_STATE_DIR", t.path("decoy"))
        .env("TOLLGATE_ACCOUNTING", &accounting)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(t.path("collector.log")).unwrap());
    let mut p = Process::spawn(&mut traced);
    let pid = tracee(p.id());
    let status = state.join("flows-status.json");
    let templates = state.join("flows-templates.bin");
    wait_for(
        "the collector's status file",
        Duration::from_secs(20),
        || status.exists(),
    );
    let exporter = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    exporter
        .send_to(&v9_template(), ("127.0.0.1", port))
        .unwrap();
    wait_for(
        "the collector to save its templates",
        Duration::from_secs(20),
        || templates.exists(),
    );
    signal(pid, "-TERM");
    let st = p
        .wait(Duration::from_secs(20))
        .expect("the collector stops");
    assert!(
        st.success(),
        "{}",
        std::fs::read_to_string(t.path("collector.log")).unwrap_or_default()
    );
    let trace = std::fs::read_to_string(&log).unwrap();
    let replaced = assert_durable(&trace, &state);
    for f in [&status, &templates] {
        assert!(
            replaced.contains(f),
            "{} was never replaced:\n{trace}",
            f.display()
        );
    }
    assert!(!t.path("decoy").exists(), "TOLLGATE_STATE_DIR was used");
}

#[test]
fn the_routes_table_and_the_tokens_file_are_fsynced_before_and_after_their_rename() {
    let t = Scratch::new("fsync-cli");
    let example = std::fs::read_to_string(testkit::repo().join("examples/router.toml")).unwrap();
    let text = example.replace(
        "prefix_files = [\"national.txt\"]",
        "communities = [\"65001:100\"]",
    );
    assert_ne!(text, example, "the example changed; update this test");
    let policy = t.write("policy.toml", &text);
    let accounting = t.write("accounting.toml", "");
    let state = t.path("state");
    let dump = testkit::repo().join("crates/bgp/tests/data/bird-addpath/master4.mrt");
    let run = |tag: &str, args: &[&str]| {
        let log = t.path(&format!("{tag}.strace"));
        let mut c = strace(&log);
        let o = c
            .arg(env!("CARGO_BIN_EXE_tollgate"))
            .args(["--state-dir", s(&state), "-c", s(&policy)])
            .args(args)
            .current_dir(testkit::repo())
            .env_remove("TOLLGATE_CRASH_AT")
            .env("TOLLGATE_STATE_DIR", t.path("decoy"))
            .env("TOLLGATE_ACCOUNTING", &accounting)
            .output()
            .unwrap();
        ok(o, tag);
        std::fs::read_to_string(&log).unwrap()
    };
    // Twice: the second replaces an existing table.
    for _ in 0..2 {
        let trace = run("import", &["routes", "import", s(&dump)]);
        let replaced = assert_durable(&trace, &state);
        assert_eq!(replaced, vec![state.join("routes/table.tgr")], "{trace}");
    }
    let trace = run("token", &["token", "add", "ops", "--scope", "read"]);
    let replaced = assert_durable(&trace, &t.0);
    assert_eq!(replaced, vec![t.path("api-tokens.json")], "{trace}");
    assert!(!t.path("decoy").exists(), "TOLLGATE_STATE_DIR was used");
}

/// The trace parser itself, on lines as strace prints them.
#[test]
fn the_trace_reader_finds_syncs_and_renames_of_every_spelling() {
    let log = r#"101 fsync(3</s/.f.tollgate-new>) = 0
102 fsync(4</s/other> <unfinished ...>
101 rename("/s/.f.tollgate-new", "/s/f") = 0
102 <... fsync resumed>) = 0
101 renameat(AT_FDCWD</s>, "g.tmp", AT_FDCWD</s>, "g") = 0
101 renameat2(AT_FDCWD</>, "/s/x", AT_FDCWD</>, "/s/y", RENAME_NOREPLACE) = -1 EEXIST (File exists)
101 fdatasync(5</s>) = 0
"#;
    assert_eq!(
        calls(log),
        vec![
            Call::Sync("/s/.f.tollgate-new".into()),
            Call::Sync("/s/other".into()),
            Call::Rename {
                from: "/s/.f.tollgate-new".into(),
                to: "/s/f".into()
            },
            Call::Rename {
                from: "/s/g.tmp".into(),
                to: "/s/g".into()
            },
            Call::Sync("/s".into()),
        ]
    );
    assert!(
        std::panic::catch_unwind(|| assert_durable(log, Path::new("/s"))).is_err(),
        "g.tmp was never fsync'd, so the check must fail"
    );
}

/// The binary with nothing inherited that could change where it looks or
/// how it logs; `TOLLGATE_STATE_DIR` points at `decoy`, a state directory
/// the command must not read when `--state-dir` names another.
fn tollgate(decoy: &Path, accounting: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tollgate"));
    c.current_dir(testkit::repo())
        .env_remove("TOLLGATE_CONFIG")
        .env_remove("TOLLGATE_LOG")
        .env_remove("TOLLGATE_CRASH_AT")
        .env_remove("NO_COLOR")
        .env("TOLLGATE_STATE_DIR", decoy)
        .env("TOLLGATE_ACCOUNTING", accounting);
    c
}

/// Runs the flow collector on `state` until its first status file, stops
/// it, and returns that file as the collector wrote it.
fn collector_status(t: &Scratch, policy: &Path, state: &Path) -> serde_json::Value {
    let mut c = tollgate(&t.path("decoy"), &t.path("accounting.toml"));
    c.args(["--state-dir", s(state), "-c", s(policy)])
        .args(["flows", "collect", "--interval", "200ms"])
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    let mut p = Process::spawn(&mut c);
    let file = state.join("flows-status.json");
    wait_for("the collector's status", Duration::from_secs(20), || {
        file.exists()
    });
    p.signal_group(15);
    assert!(p.wait(Duration::from_secs(20)).is_some_and(|s| s.success()));
    serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap()
}

/// `status` as the collector wrote it, saying it runs now, with
/// `quarantined` records set aside and tenant 1 receiving `down_bps` in
/// realm 2, written to `dir`.
fn plant_status(status: &serde_json::Value, dir: &Path, quarantined: u64, down_bps: f64) {
    let mut v = status.clone();
    v["running"] = true.into();
    v["updated"] = jiff::Timestamp::now().to_string().into();
    v["totals"]["quarantined"] = quarantined.into();
    v["rate_seconds"] = 1.0.into();
    v["rates"] =
        serde_json::json!([{"tenant": 1, "realm": 2, "down_bps": down_bps, "up_bps": 0.0}]);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("flows-status.json"),
        serde_json::to_string_pretty(&v).unwrap(),
    )
    .unwrap();
}

/// The state directory `X` the commands are given, and the decoy that
/// `TOLLGATE_STATE_DIR` names, each with a flow status of its own: 7
/// quarantined and 8 kbit/s in X, 99 and 99 Mbit/s in the decoy.
fn two_state_dirs(t: &Scratch, policy: &Path) -> PathBuf {
    t.write("accounting.toml", "");
    let x = t.path("x");
    let real = collector_status(t, policy, &x);
    plant_status(&real, &x, 7, 8000.0);
    plant_status(&real, &t.path("decoy"), 99, 99e6);
    x
}

#[test]
fn flows_status_reads_the_state_dir_it_is_given() {
    let t = Scratch::new("flows-status");
    let policy = t.write("policy.toml", &flows_policy(free_udp_port()));
    let x = two_state_dirs(&t, &policy);
    let run = |args: &[&str]| {
        let o = tollgate(&t.path("decoy"), &t.path("accounting.toml"))
            .args(["--state-dir", s(&x), "-c", s(&policy)])
            .args(args)
            .output()
            .unwrap();
        ok(o, &format!("{args:?}"))
    };
    let v: serde_json::Value = serde_json::from_str(&run(&["flows", "status", "--json"])).unwrap();
    assert_eq!(v["totals"]["quarantined"], 7, "{v}");
    let text = run(&["flows", "status"]);
    assert!(text.contains("QUARANTINED 7 records"), "{text}");
}

/// A namespace with the policy's two interfaces (veth pairs, up).
fn router_netns(tag: &str) -> testkit::Netns {
    testkit::need("ip", "iproute2");
    testkit::need("nft", "nftables");
    let ns = testkit::Netns::new(tag);
    ns.sh("set -e
        for i in wan0 lan0; do
            ip link add $i type veth peer name $i-peer
            ip link set $i up; ip link set $i-peer up
        done");
    ns
}

#[test]
fn status_and_top_show_the_flow_figures_of_the_state_dir_they_are_given() {
    if !testkit::root("status_and_top_show_the_flow_figures_of_the_state_dir_they_are_given") {
        return;
    }
    let t = Scratch::new("status-top");
    let policy = t.write("policy.toml", &flows_policy(free_udp_port()));
    let x = two_state_dirs(&t, &policy);
    let ns = router_netns("sf-st");
    let run = |args: &[&str]| {
        let o = tollgate(&t.path("decoy"), &t.path("accounting.toml"))
            .args(["--netns", &ns.0, "--state-dir", s(&x), "-c", s(&policy)])
            .args(args)
            .output()
            .unwrap();
        ok(o, &format!("{args:?}"))
    };
    let v: serde_json::Value =
        serde_json::from_str(&run(&["status", "--json", "--interval", "100ms"])).unwrap();
    assert_eq!(v["flows"]["totals"]["quarantined"], 7, "{v}");
    let out = run(&["status", "--interval", "100ms"]);
    assert!(out.contains("QUARANTINED 7 records"), "{out}");
    let out = run(&["top", "--once", "--json", "--interval", "200ms"]);
    let v: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let row = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["tenant"] == 1 && r["realm"] == 2)
        .unwrap_or_else(|| panic!("no flow rate for tenant 1: {v}"));
    assert_eq!(row["down_bps"], 8000.0, "{v}");
    // Frames for a pipe: no screen clearing.
    let out = run(&["top", "--count", "2", "--interval", "100ms"]);
    assert!(out.contains("tenant"), "{out}");
    assert!(!out.contains("\x1b["), "{out:?}");
}

#[test]
fn a_daemons_log_in_a_file_has_no_colour_codes() {
    if !testkit::root("a_daemons_log_in_a_file_has_no_colour_codes") {
        return;
    }
    let t = Scratch::new("ansi-run");
    let text = flows_policy(free_udp_port())
        .replace("measured_by = \"flows\"\n", "")
        .split("[flows]")
        .next()
        .unwrap()
        .to_string()
        + "[[tenants]]\nid = 1\nplan = \"basic\"\nprefixes = [\"100.64.1.0/24\"]\n";
    let policy = t.write("policy.toml", &text);
    let accounting = t.write("accounting.toml", "");
    let ns = router_netns("sf-ansi");
    let log = t.path("daemon.log");
    let mut c = tollgate(&t.path("decoy"), &accounting);
    c.args([
        "--netns",
        &ns.0,
        "--state-dir",
        s(&t.path("state")),
        "-c",
        s(&policy),
    ])
    .args(["run", "--no-api", "--interval", "1s", "--reconcile", "1s"])
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    let mut d = Process::spawn(&mut c);
    wait_for("the daemon's classes", Duration::from_secs(20), || {
        ns.sh("tc class show dev tg-up 2>/dev/null || true")
            .contains("class htb")
    });
    std::thread::sleep(Duration::from_millis(1500));
    d.signal_group(15);
    let st = d.wait(Duration::from_secs(20)).expect("the daemon stops");
    let written = std::fs::read_to_string(&log).unwrap();
    assert!(st.success(), "{written}");
    assert!(
        written.lines().count() >= 2,
        "the daemon logged nothing: {written:?}"
    );
    assert!(
        !written.contains("\x1b["),
        "colour codes in a log file:\n{written:?}"
    );
}

/// Colour is for a terminal: everything that can print it (clap's help
/// and errors, the log) prints none into a pipe or a file, and does print
/// it at a terminal, so the absence is detection, not colour turned off;
/// `NO_COLOR` turns it off at a terminal too.
#[test]
fn colour_reaches_a_terminal_and_never_a_pipe() {
    testkit::need("script", "bsdutils");
    testkit::need("timeout", "coreutils");
    let t = Scratch::new("ansi-tty");
    let port = free_udp_port();
    let policy = t.write("policy.toml", &flows_policy(port));
    let accounting = t.write("accounting.toml", "");
    let bin = env!("CARGO_BIN_EXE_tollgate");
    let collect = format!(
        "timeout -s TERM 2 {bin} --state-dir {} -c {} flows collect --interval 200ms",
        s(&t.path("state")),
        s(&policy)
    );
    let cases = [
        ("help", format!("{bin} --help")),
        (
            "a mistake in the arguments",
            format!("{bin} check --no-such-flag"),
        ),
        ("the collector's log", collect),
    ];
    for (what, line) in cases {
        let piped = Command::new("bash")
            .args(["-c", &line])
            .env_remove("NO_COLOR")
            .env("TERM", "xterm-256color")
            .env("TOLLGATE_ACCOUNTING", &accounting)
            .env("TOLLGATE_STATE_DIR", t.path("decoy"))
            .output()
            .unwrap();
        let all = text(&piped.stdout) + &text(&piped.stderr);
        assert!(!all.trim().is_empty(), "{what}: nothing printed");
        assert!(!all.contains("\x1b["), "{what} into a pipe:\n{all:?}");
        let at_a_terminal = |no_color: bool| {
            let mut c = Command::new("script");
            c.args(["-qec", &line, "/dev/null"])
                .env_remove("NO_COLOR")
                .env("TERM", "xterm-256color")
                .env("TOLLGATE_ACCOUNTING", &accounting)
                .env("TOLLGATE_STATE_DIR", t.path("decoy"))
                .stdin(Stdio::null());
            if no_color {
                c.env("NO_COLOR", "1");
            }
            text(&c.output().unwrap().stdout)
        };
        let all = at_a_terminal(false);
        assert!(
            all.contains("\x1b["),
            "{what} at a terminal has no colour:\n{all:?}"
        );
        // https://no-color.org: a person who asks for none gets none.
        let all = at_a_terminal(true);
        assert!(!all.trim().is_empty(), "{what}: nothing printed");
        assert!(
            !all.contains("\x1b["),
            "{what} at a terminal with NO_COLOR=1:\n{all:?}"
        );
    }
}
