//! Entering a network namespace.
//!
//! tollgate normally runs in the host's own namespace. The lab and the
//! tests run it inside namespaces they create; entering one moves the
//! calling thread, and every socket and child process it creates after
//! that, into the namespace. Call it before starting other threads.

use std::fs::File;
use std::os::fd::AsRawFd;

/// Moves the calling thread into the named namespace (`ip netns` name).
#[allow(unsafe_code)]
pub fn enter(name: &str) -> std::io::Result<()> {
    let f = File::open(format!("/var/run/netns/{name}"))?;
    // SAFETY: setns only reads the descriptor, which `f` keeps open for
    // the duration of the call.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
