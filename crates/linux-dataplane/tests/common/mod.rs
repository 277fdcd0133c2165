//! What the kernel tests share: network namespaces that are removed even
//! when a test fails, one test at a time, and the rule for running without
//! root.
//!
//! A test that needs root and cannot have it fails, loudly, unless
//! `TOLLGATE_SKIP_ROOT_TESTS=1` is set, in which case it says it was skipped
//! and passes. Nothing is skipped silently.

#![allow(dead_code)] // each test binary uses part of this

pub mod htb;

use std::process::Command;
use std::sync::{Mutex, MutexGuard};

static KERNEL: Mutex<()> = Mutex::new(());

/// Serialises the tests of one binary: they share the kernel, and the
/// timing test should not compete.
pub fn one_at_a_time() -> MutexGuard<'static, ()> {
    KERNEL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether the calling process is root.
#[allow(unsafe_code)]
pub fn is_root() -> bool {
    // SAFETY: geteuid takes no arguments and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// `true` if a root test may run. Without root it panics, unless
/// `TOLLGATE_SKIP_ROOT_TESTS=1` says to skip, which it reports on stderr.
pub fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    if std::env::var("TOLLGATE_SKIP_ROOT_TESTS").as_deref() == Ok("1") {
        eprintln!("SKIPPED {test}: needs root (TOLLGATE_SKIP_ROOT_TESTS=1)");
        return false;
    }
    panic!(
        "the kernel test `{test}` needs root (network namespaces, tc, nft); run it as root under \
         `flock /work/locks/netns`, or set TOLLGATE_SKIP_ROOT_TESTS=1 to skip it"
    );
}

/// A network namespace holding a veth pair `v0`/`v1` (both up), deleted
/// when dropped.
pub struct Netns(pub String);

impl Netns {
    /// Creates the namespace, or `None` when root tests are skipped.
    pub fn new(tag: &str) -> Option<Netns> {
        if !root_or_skip(tag) {
            return None;
        }
        let name = format!("tg-rtnl-{tag}-{}", std::process::id());
        let _ = Command::new("ip").args(["netns", "del", &name]).output();
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .expect("run ip")
            .success();
        assert!(
            ok,
            "cannot create a network namespace: these tests need root and iproute2"
        );
        let ns = Netns(name);
        ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
        ns.ip(&["link", "set", "v0", "up"]);
        ns.ip(&["link", "set", "v1", "up"]);
        Some(ns)
    }

    /// Runs a command inside the namespace; returns stdout, panics on failure.
    pub fn run(&self, args: &[&str]) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.0])
            .args(args)
            .output()
            .expect("run command");
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `ip ARGS` inside the namespace.
    pub fn ip(&self, args: &[&str]) -> String {
        let mut a = vec!["ip"];
        a.extend_from_slice(args);
        self.run(&a)
    }

    /// `tc ARGS` inside the namespace.
    pub fn tc(&self, args: &[&str]) -> String {
        let mut a = vec!["tc"];
        a.extend_from_slice(args);
        self.run(&a)
    }

    /// Runs `f` on a thread that has entered the namespace, so that every
    /// socket it opens and every process it starts (nft) works there.
    pub fn inside<T: Send>(&self, f: impl FnOnce() -> T + Send) -> T {
        std::thread::scope(|s| {
            s.spawn(|| {
                linux_dataplane::netns::enter(&self.0).expect("enter the namespace");
                f()
            })
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))
        })
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}
