//! The Debian package, installed and removed for real in a container-like
//! folder, with no systemd running.
//!
//! The package is built from this test's own binary by
//! `contrib/debian/build-deb` (what `cargo xtask package` runs on a release
//! build). The container is an overlay of the host's root with a tmpfs on
//! top, in a mount namespace of its own (held by a `sleep` in a process
//! group the test kills), with fresh /proc, /run and /tmp: `dpkg` inside
//! sees the host's packages (so the declared dependencies, nftables and
//! iproute2, are checked for real) and writes only to the tmpfs, so
//! nothing of the host changes and everything goes when the test ends.
//!
//! In it: `dpkg -i`; the files where Debian wants them; `tollgate check`
//! on the shipped policy; `systemd-analyze verify` on the unit; the unit's
//! ExecStartPre and ExecStart run by hand in a fresh network namespace
//! (with a veth pair `eth0`–`eth1`, the names the shipped policy uses), its
//! ExecReload (SIGHUP) seen in the metrics, SIGTERM ending it cleanly;
//! `dpkg -r` keeping the policy and the history; `dpkg --purge` removing
//! them.
//!
//! Needs root, dpkg, systemd-analyze (systemd), util-linux, binutils and
//! curl (`cargo xtask ci` installs them); without root it fails unless
//! TOLLGATE_SKIP_ROOT_TESTS=1.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::Duration;
use testkit::{need, quote, Process};

/// An overlay of `/` in a mount namespace of its own.
struct Container {
    holder: Process,
    base: PathBuf,
    root: String,
}

impl Container {
    fn new(tag: &str) -> Container {
        let base = std::env::temp_dir().join(format!("tg-{tag}-{}", std::process::id()));
        std::fs::create_dir_all(&base).expect("create the container's folder");
        let holder = Process::spawn(
            Command::new("unshare")
                .args(["--mount", "--propagation", "private", "sleep", "600"])
                .stdin(Stdio::null()),
        );
        let c = Container {
            root: base.join("root").display().to_string(),
            base,
            holder,
        };
        // The holder must be in its namespace before anything is mounted.
        testkit::wait_for("the mount namespace", Duration::from_secs(5), || {
            std::fs::read_link(format!("/proc/{}/ns/mnt", c.holder.id())).ok()
                != std::fs::read_link("/proc/self/ns/mnt").ok()
        });
        let b = c.base.display();
        c.in_namespace(&format!(
            "set -e
            mount -t tmpfs tollgate-test {b}
            mkdir {b}/upper {b}/work {b}/root
            mount -t overlay overlay -o lowerdir=/,upperdir={b}/upper,workdir={b}/work {b}/root
            mount -t proc proc {b}/root/proc
            mount --rbind /dev {b}/root/dev
            mount --rbind /sys {b}/root/sys
            mount -t tmpfs run {b}/root/run
            mount -t tmpfs tmp {b}/root/tmp"
        ));
        c
    }

    /// Runs a script in the namespace, outside the container.
    fn in_namespace(&self, script: &str) -> String {
        let o = Command::new("nsenter")
            .args([
                "-t",
                &self.holder.id().to_string(),
                "-m",
                "--",
                "bash",
                "-c",
                script,
            ])
            .output()
            .expect("run nsenter");
        assert!(o.status.success(), "failed: {script}\n{}", text(&o.stderr));
        text(&o.stdout)
    }

    /// The command that runs a script inside the container.
    fn command(&self, script: &str) -> Command {
        let mut c = Command::new("nsenter");
        c.args(["-t", &self.holder.id().to_string(), "-m", "--", "chroot"])
            .arg(&self.root)
            .args(["sh", "-c", script]);
        c
    }

    /// Runs a script inside the container.
    fn run(&self, script: &str) -> Output {
        self.command(script).output().expect("run nsenter")
    }

    /// Runs a script inside the container; fails the test if it fails.
    fn ok(&self, script: &str) -> String {
        let o = self.run(script);
        assert!(
            o.status.success(),
            "failed in the container: {script}\n{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    fn exists(&self, path: &str) -> bool {
        self.run(&format!("test -e {}", quote(path)))
            .status
            .success()
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        // The namespace, and every mount in it, goes with its last
        // process; the folder on the host was only ever a mount point.
        self.holder.signal_group(9);
        let _ = self.holder.wait(Duration::from_secs(5));
        let _ = std::fs::remove_dir_all(&self.base);
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// The value of `Key=` in a unit file.
fn unit_value(unit: &str, key: &str) -> String {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("the unit has no {key}=:\n{unit}"))
        .to_string()
}

/// GETs the daemon's metrics from inside its network namespace.
fn metrics(daemon: u32) -> Option<String> {
    let o = Command::new("nsenter")
        .args(["-t", &daemon.to_string(), "-n", "--"])
        .args([
            "curl",
            "-sf",
            "--max-time",
            "2",
            "http://127.0.0.1:9188/metrics",
        ])
        .output()
        .ok()?;
    o.status.success().then(|| text(&o.stdout))
}

#[test]
fn the_package_installs_runs_and_is_removed_and_purged_cleanly() {
    if !testkit::root("the_package_installs_runs_and_is_removed_and_purged_cleanly") {
        return;
    }
    for (cmd, pkg) in [
        ("dpkg-deb", "dpkg"),
        ("systemd-analyze", "systemd"),
        ("unshare", "util-linux"),
        ("nsenter", "util-linux"),
        ("strip", "binutils"),
        ("objdump", "binutils"),
        ("curl", "curl"),
        ("nft", "nftables"),
        ("ip", "iproute2"),
    ] {
        need(cmd, pkg);
    }

    // Build the package from this test's binary.
    let out = std::env::temp_dir().join(format!("tg-deb-{}", std::process::id()));
    let build = Command::new("bash")
        .arg(testkit::repo().join("contrib/debian/build-deb"))
        .arg(env!("CARGO_BIN_EXE_tollgate"))
        .arg(&out)
        .output()
        .expect("run build-deb");
    assert!(build.status.success(), "build-deb: {}", text(&build.stderr));
    let deb = PathBuf::from(text(&build.stdout).trim());
    let fields = text(
        &Command::new("dpkg-deb")
            .args(["-f", deb.to_str().unwrap(), "Package", "Depends"])
            .output()
            .expect("dpkg-deb -f")
            .stdout,
    );
    assert!(fields.contains("Package: tollgate"), "{fields}");
    for dep in ["nftables", "iproute2", "libc6"] {
        assert!(fields.contains(dep), "Depends lacks {dep}: {fields}");
    }

    let c = Container::new("pkg");
    c.in_namespace(&format!(
        "cp {} {}/tmp/tollgate.deb",
        quote(deb.to_str().unwrap()),
        c.root
    ));
    let _ = std::fs::remove_dir_all(&out);

    // Install.
    let installed = c.ok("dpkg -i /tmp/tollgate.deb 2>&1");
    assert!(installed.contains("Setting up tollgate"), "{installed}");
    for path in [
        "/usr/bin/tollgate",
        "/usr/lib/systemd/system/tollgate.service",
        "/etc/tollgate/tollgate.toml",
        "/usr/share/man/man1/tollgate.1.gz",
        "/usr/share/man/man1/tollgate-import-libreqos.1.gz",
        "/usr/share/man/man1/tollgate-routes-listen.1.gz",
        "/usr/share/bash-completion/completions/tollgate",
        "/usr/share/zsh/vendor-completions/_tollgate",
        "/usr/share/fish/vendor_completions.d/tollgate.fish",
        "/usr/share/doc/tollgate/copyright",
        "/usr/share/doc/tollgate/policy.md",
    ] {
        assert!(c.exists(path), "{path} was not installed");
    }
    assert_eq!(c.ok("stat -c %a /var/lib/tollgate").trim(), "750");
    assert_eq!(
        c.ok("cat /var/lib/dpkg/info/tollgate.conffiles").trim(),
        "/etc/tollgate/tollgate.toml"
    );
    // Every man page the binary would write is there (one per command).
    let pages: usize = c
        .ok("ls /usr/share/man/man1 | grep -c '^tollgate.*\\.1\\.gz$'")
        .trim()
        .parse()
        .unwrap();
    let wanted = c.ok("mkdir -p /tmp/m && tollgate man /tmp/m >/dev/null && ls /tmp/m | wc -l");
    assert_eq!(pages, wanted.trim().parse::<usize>().unwrap());
    assert!(pages > 30, "{pages} pages");
    // The package's files are what dpkg recorded.
    c.ok("dpkg --verify tollgate");

    // The shipped policy passes check (from its default place) and has no tenants.
    let check = c.ok("tollgate check");
    assert!(
        check.contains("/etc/tollgate/tollgate.toml: valid (0 tenants"),
        "{check}"
    );
    // The unit is well formed: its binaries, man pages and sections exist.
    let verify = c.run("systemd-analyze verify /usr/lib/systemd/system/tollgate.service");
    assert!(
        verify.status.success() && verify.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        text(&verify.stdout),
        text(&verify.stderr)
    );
    let unit = c.ok("cat /usr/lib/systemd/system/tollgate.service");
    for hardening in [
        "ProtectSystem=strict",
        "CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE",
        "StateDirectory=tollgate",
        "ExecReload=/bin/kill -HUP $MAINPID",
    ] {
        assert!(
            unit.lines().any(|l| l == hardening),
            "the unit lacks `{hardening}`"
        );
    }

    // ExecStartPre and ExecStart, by hand, in a network namespace of their
    // own with the interfaces the shipped policy names.
    c.ok(&unit_value(&unit, "ExecStartPre"));
    let exec_start = unit_value(&unit, "ExecStart");
    let log = std::env::temp_dir().join(format!("tg-pkg-daemon-{}.log", std::process::id()));
    let log_file = std::fs::File::create(&log).expect("create the daemon's log");
    let mut daemon = Process::spawn(
        Command::new("nsenter")
            .args(["-t", &c.holder.id().to_string(), "-m", "--", "chroot"])
            .arg(&c.root)
            .args(["unshare", "--net", "--", "sh", "-c"])
            .arg(format!(
                "ip link set lo up && ip link add eth0 type veth peer name eth1 \
                 && ip link set eth0 up && ip link set eth1 up && exec {exec_start}"
            ))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("the log again"))
            .stderr(log_file),
    );
    let pid = daemon.id();
    let log_text = || std::fs::read_to_string(&log).unwrap_or_default();
    let wait = |what: &str, ok: &dyn Fn() -> bool| {
        let start = std::time::Instant::now();
        while !ok() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "timed out waiting for {what}; the daemon's log:\n{}",
                log_text()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    };
    wait("the daemon's metrics", &|| {
        metrics(pid).is_some_and(|m| m.contains("tollgate_policy_reloads_total"))
    });
    assert!(
        metrics(pid)
            .unwrap()
            .contains("tollgate_policy_reloads_total{result=\"ok\"} 0"),
        "{}",
        log_text()
    );
    // ExecReload, as systemd would run it.
    let reload = unit_value(&unit, "ExecReload").replace("$MAINPID", &pid.to_string());
    testkit::sh(&reload);
    wait("the reload to be counted", &|| {
        metrics(pid).is_some_and(|m| m.contains("tollgate_policy_reloads_total{result=\"ok\"} 1"))
    });
    assert!(
        c.exists("/var/lib/tollgate/history.sqlite"),
        "{}",
        log_text()
    );
    testkit::sh(&format!("kill -TERM {pid}"));
    let status = daemon
        .wait(Duration::from_secs(30))
        .expect("the daemon stops on SIGTERM");
    assert!(
        status.success(),
        "the daemon exited with {status}:\n{}",
        log_text()
    );
    let _ = std::fs::remove_file(&log);

    // Remove: the binary goes, the policy and the history stay.
    c.ok("echo '# edited' >> /etc/tollgate/tollgate.toml");
    let removed = c.ok("dpkg -r tollgate 2>&1");
    assert!(!removed.contains("warning"), "{removed}");
    for gone in [
        "/usr/bin/tollgate",
        "/usr/lib/systemd/system/tollgate.service",
        "/usr/share/man/man1/tollgate.1.gz",
        "/usr/share/fish/vendor_completions.d/tollgate.fish",
    ] {
        assert!(!c.exists(gone), "{gone} is still there after dpkg -r");
    }
    assert!(c
        .ok("cat /etc/tollgate/tollgate.toml")
        .ends_with("# edited\n"));
    assert!(c.exists("/var/lib/tollgate/history.sqlite"));
    assert!(c
        .ok("dpkg -s tollgate")
        .contains("Status: deinstall ok config-files"));

    // Purge: the policy and the history go too.
    c.ok("dpkg --purge tollgate");
    assert!(
        !c.exists("/etc/tollgate"),
        "/etc/tollgate is still there after purge"
    );
    assert!(
        !c.exists("/var/lib/tollgate"),
        "/var/lib/tollgate is still there after purge"
    );
    assert!(!c.run("dpkg -s tollgate").status.success());
}
