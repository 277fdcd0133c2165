//! The rtnetlink socket: tollgate's one channel for tc objects and IFB links.
//!
//! Requests are encoded by the pure `tc-netlink` crate; this module only
//! moves bytes. Its point is speed through batching: [`Rtnl::execute`]
//! packs as many requests as fit in about 64 KiB into one `sendmsg`. The
//! kernel processes every message of that buffer in order, synchronously,
//! inside the `sendmsg` call, acknowledging each one separately (each
//! request carries `NLM_F_ACK`) and going on after a failure. So one
//! system call applies hundreds of changes, and the acks, already queued
//! when `sendmsg` returns, are collected 64 at a time with `recvmmsg`.
//!
//! Two socket options shape the acks: `NETLINK_CAP_ACK` keeps the kernel
//! from echoing a failed request back in full, and `NETLINK_EXT_ACK` makes
//! it attach its explanation when it has one ("HTB class in use" rather
//! than just `EBUSY`), which [`KernelError`] carries. Not every error has
//! one: a class in a missing qdisc is a bare `ENOENT`.
//!
//! # Where the time goes
//!
//! User space is cheap: 10,202 requests (10,000 classes in 100 nested HTB
//! qdiscs) cost 3–15 ms of user time, 102,002 requests 9 ms in a release
//! build. The kernel is not (Linux 6.18, measured with `perf`):
//!
//! - Creating a class walks every class of its qdisc (`tc_bind_tclass`,
//!   rebinding filters): quadratic per qdisc, 6.6 s of system time for
//!   10,000 classes in one qdisc against 0.45 s in ten.
//! - Every HTB class binds a filter block, and on devices without
//!   hardware offload (veth, IFB) each bind adds to and searches one
//!   kernel-wide list (`flow_indr_dev_setup_offload`): quadratic in the
//!   number of classes in the whole system, across devices and network
//!   namespaces. 10,000 classes take 0.3 s, 40,000 4.7 s, 100,000 106 s,
//!   whether on one device or ten; deleting them is as slow.
//!
//! The receive buffer bounds a batch: an ack that does not fit into the
//! socket's receive queue is dropped (the socket then reports `ENOBUFS`).
//! The buffer is raised to 32 MiB (`SO_RCVBUFFORCE`, which needs
//! `CAP_NET_ADMIN`, as does everything else here) and batches are sized so
//! that their acks always fit.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use tc_netlink::consts::{NETLINK_CAP_ACK, NETLINK_EXT_ACK, NLM_F_DUMP_INTR, SOL_NETLINK};
use tc_netlink::{Class, Filter, Link, Message, Qdisc, Request};

/// Most bytes of requests per `sendmsg`. rtnetlink copes with more, but
/// 64 KiB already amortises the system call over hundreds of messages and
/// keeps the acks of one batch well inside the receive buffer.
const BATCH_BYTES: usize = 64 * 1024;

/// Receive-queue bytes one ack costs, as the kernel counts them (the
/// socket buffer's `truesize`, not the 36 bytes of message). Measured at
/// 832 on x86_64 with Linux 6.18; nearly doubled for safety and for the
/// larger acks of errors with a message.
const ACK_COST: usize = 1536;

/// Requested socket buffer sizes.
const RCVBUF: i32 = 32 << 20;
const SNDBUF: i32 = 4 << 20;

/// Receive slots per `recvmmsg`, and the size of each. An ack is 36 bytes
/// plus its extended-ack message; 4 KiB is ample.
pub(crate) const SLOTS: usize = 64;
pub(crate) const SLOT: usize = 4096;

/// How often a dump is restarted when the kernel flags it inconsistent.
const DUMP_ATTEMPTS: usize = 5;

/// A request the kernel refused (or whose answer was lost).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KernelError {
    /// Its position in the slice given to [`Rtnl::execute`].
    pub index: usize,
    /// What it asked for, in `tc`'s words.
    pub request: String,
    /// The errno (positive).
    pub errno: i32,
    /// The kernel's explanation (extended ack), if it gave one.
    pub message: Option<String>,
}

impl KernelError {
    /// The errno as an [`io::Error`].
    pub fn io_error(&self) -> io::Error {
        io::Error::from_raw_os_error(self.errno)
    }
}

impl fmt::Display for KernelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.request, self.io_error())?;
        if let Some(m) = &self.message {
            write!(f, ": {m}")?;
        }
        Ok(())
    }
}

impl std::error::Error for KernelError {}

/// A `NETLINK_ROUTE` socket.
#[derive(Debug)]
pub struct Rtnl {
    fd: OwnedFd,
    /// The sequence number of the next message.
    seq: u32,
    /// The most requests per batch: their acks must fit the receive buffer.
    max_batch: usize,
    /// Reused send buffer.
    send_buf: Vec<u8>,
    /// Reused receive buffer: `SLOTS` slots of `SLOT` bytes for acks, or
    /// one buffer for dump replies (at most 32 KiB each).
    recv_buf: Vec<u8>,
}

impl Rtnl {
    /// Opens a socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Rtnl> {
        let fd = sys::netlink_socket(libc::NETLINK_ROUTE)?;
        let s = fd.as_fd();
        sys::set_int(s, SOL_NETLINK, NETLINK_EXT_ACK, 1)?;
        sys::set_int(s, SOL_NETLINK, NETLINK_CAP_ACK, 1)?;
        // The *FORCE variants ignore the net.core.[rw]mem_max ceilings but
        // need CAP_NET_ADMIN; without it, take what the ceiling allows.
        if sys::set_int(s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, RCVBUF).is_err() {
            sys::set_int(s, libc::SOL_SOCKET, libc::SO_RCVBUF, RCVBUF)?;
        }
        if sys::set_int(s, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, SNDBUF).is_err() {
            sys::set_int(s, libc::SOL_SOCKET, libc::SO_SNDBUF, SNDBUF)?;
        }
        sys::bind_kernel(s)?;
        // The kernel reports (and counts against) twice what was set.
        let rcvbuf = sys::get_int(s, libc::SOL_SOCKET, libc::SO_RCVBUF)?.max(0) as usize;
        // Half the queue for a batch's acks leaves room for a pending dump
        // chunk or a stray message.
        let max_batch = (rcvbuf / 2 / ACK_COST).max(1);
        tracing::debug!(rcvbuf, max_batch, "rtnetlink socket open");
        Ok(Rtnl {
            fd,
            seq: 1,
            max_batch,
            send_buf: Vec::with_capacity(BATCH_BYTES + 4096),
            recv_buf: vec![0; SLOTS * SLOT],
        })
    }

    /// Opens a socket inside the named network namespace
    /// (`/var/run/netns/NAME`, as `ip netns add` creates it).
    ///
    /// A socket belongs to the namespace it was created in for its whole
    /// life, so a short-lived thread enters the namespace, opens the
    /// socket and hands it back; the calling thread stays where it is.
    pub fn open_in_netns(name: &str) -> io::Result<Rtnl> {
        if name.is_empty() || name.contains('/') || name == "." || name == ".." {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("bad network namespace name {name:?}"),
            ));
        }
        let path = format!("/var/run/netns/{name}");
        std::thread::spawn(move || {
            let ns =
                File::open(&path).map_err(|e| io::Error::new(e.kind(), format!("{path}: {e}")))?;
            sys::enter_netns(ns.as_fd())?;
            Rtnl::open()
        })
        .join()
        .map_err(|_| io::Error::other("the thread opening the netns socket panicked"))?
    }

    /// Sends every request and returns one result per request, in order.
    ///
    /// Requests go out in batches of up to 64 KiB, in order; the kernel
    /// applies them in that order and a failed request does not stop the
    /// ones after it (so callers order creates before their users, as a
    /// change set already is). Dump requests are refused here (`EINVAL`):
    /// use [`Rtnl::links`] and its siblings. A request whose ack never
    /// arrived (receive queue overrun, or a failed send) is reported with
    /// `ENOBUFS` or the send error: its effect is then unknown.
    pub fn execute(&mut self, reqs: &[Request]) -> Vec<Result<(), KernelError>> {
        let mut results: Vec<Result<(), KernelError>> = Vec::with_capacity(reqs.len());
        results.resize(reqs.len(), Ok(()));
        let mut sent: Vec<usize> = Vec::new(); // request index of each message in the batch
        let mut acked: Vec<bool> = Vec::new();
        let mut i = 0;
        while i < reqs.len() {
            // Fill one batch.
            self.send_buf.clear();
            sent.clear();
            let base = self.seq;
            while i < reqs.len() && sent.len() < self.max_batch {
                let r = &reqs[i];
                if r.is_dump() {
                    results[i] = Err(error(reqs, i, libc::EINVAL, "dumps are not executed"));
                    i += 1;
                    continue;
                }
                let before = self.send_buf.len();
                r.encode(base.wrapping_add(sent.len() as u32), &mut self.send_buf);
                if self.send_buf.len() > BATCH_BYTES && !sent.is_empty() {
                    self.send_buf.truncate(before);
                    break;
                }
                sent.push(i);
                i += 1;
            }
            if sent.is_empty() {
                continue;
            }
            self.seq = base.wrapping_add(sent.len() as u32);
            if let Err(e) = sys::send(self.fd.as_fd(), &self.send_buf) {
                // Nothing of the batch reached the kernel.
                let errno = e.raw_os_error().unwrap_or(libc::EIO);
                for &k in &sent {
                    results[k] = Err(error(reqs, k, errno, &format!("send failed: {e}")));
                }
                continue;
            }
            acked.clear();
            acked.resize(sent.len(), false);
            let lost = self.collect_acks(base, &sent, &mut acked, reqs, &mut results);
            for (j, &k) in sent.iter().enumerate() {
                if !acked[j] {
                    results[k] = Err(error(reqs, k, lost, "no acknowledgement received"));
                }
            }
        }
        results
    }

    /// Reads the acks of one batch (already queued: rtnetlink answers
    /// inside `sendmsg`). Returns the errno to report for acks that never
    /// came.
    fn collect_acks(
        &mut self,
        base: u32,
        sent: &[usize],
        acked: &mut [bool],
        reqs: &[Request],
        results: &mut [Result<(), KernelError>],
    ) -> i32 {
        let mut pending = sent.len();
        let mut lost = libc::EIO;
        let mut lens = [0usize; SLOTS];
        while pending > 0 {
            let n = match sys::recv_many(self.fd.as_fd(), &mut self.recv_buf, SLOT, &mut lens) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    // Acks were dropped; the rest may still be queued.
                    tracing::warn!("rtnetlink receive queue overrun: acks lost");
                    lost = libc::ENOBUFS;
                    continue;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return lost,
                Err(e) => {
                    tracing::warn!("rtnetlink receive failed: {e}");
                    return e.raw_os_error().unwrap_or(libc::EIO);
                }
            };
            for (slot, &len) in lens[..n].iter().enumerate() {
                let start = slot * SLOT;
                if len > SLOT {
                    // Truncated: its header (and so its sequence number)
                    // is still readable, its extended ack may not be.
                    tracing::warn!(len, "rtnetlink ack larger than a receive slot");
                }
                let data = &self.recv_buf[start..start + len.min(SLOT)];
                for m in tc_netlink::parse_messages(data) {
                    let ack = match m {
                        Ok(Message::Ack(a)) => a,
                        Ok(other) => {
                            tracing::debug!(?other, "unexpected rtnetlink message");
                            continue;
                        }
                        Err(e) => {
                            tracing::warn!("undecodable rtnetlink ack: {e}");
                            continue;
                        }
                    };
                    let j = ack.seq.wrapping_sub(base) as usize;
                    if j >= sent.len() || acked[j] {
                        continue; // left over from an earlier exchange
                    }
                    acked[j] = true;
                    pending -= 1;
                    let k = sent[j];
                    if ack.errno != 0 {
                        results[k] = Err(KernelError {
                            index: k,
                            request: reqs[k].to_string(),
                            errno: ack.errno,
                            message: ack.message,
                        });
                    } else if let Some(m) = ack.message {
                        tracing::debug!(request = %reqs[k], "kernel warning: {m}");
                    }
                }
            }
        }
        lost
    }

    /// Every link in the namespace.
    pub fn links(&mut self) -> io::Result<Vec<Link>> {
        self.dump(&Request::DumpLinks, |m| match m {
            Message::Link(l) => Some(l),
            _ => None,
        })
    }

    /// Every visible qdisc of every device (not the pfifo leaves HTB makes
    /// by itself).
    pub fn qdiscs(&mut self) -> io::Result<Vec<Qdisc>> {
        self.dump(&Request::DumpQdiscs, |m| match m {
            Message::Qdisc(q) => Some(q),
            _ => None,
        })
    }

    /// Every class of every qdisc of one device.
    pub fn classes(&mut self, ifindex: u32) -> io::Result<Vec<Class>> {
        self.dump(&Request::DumpClasses { ifindex }, |m| match m {
            Message::Class(c) => Some(c),
            _ => None,
        })
    }

    /// One class, by handle; `None` when the device has no such class.
    pub fn class(&mut self, ifindex: u32, handle: u32) -> io::Result<Option<Class>> {
        match self.dump(&Request::GetClass { ifindex, handle }, |m| match m {
            Message::Class(c) => Some(c),
            _ => None,
        }) {
            Ok(mut found) => Ok(found.pop()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every filter on one hook (`CLSACT_EGRESS`, `CLSACT_INGRESS`) or
    /// qdisc of one device, including the per-priority classifier entries
    /// with handle 0 (see [`tc_netlink::Filter`]).
    pub fn filters(&mut self, ifindex: u32, parent: u32) -> io::Result<Vec<Filter>> {
        self.dump(&Request::DumpFilters { ifindex, parent }, |m| match m {
            Message::Filter(f) => Some(f),
            _ => None,
        })
    }

    /// Every chain on one hook of one device: those created explicitly
    /// (tollgate's clsact mark) and those holding filters.
    pub fn chains(&mut self, ifindex: u32, parent: u32) -> io::Result<Vec<tc_netlink::Chain>> {
        self.dump(&Request::DumpChains { ifindex, parent }, |m| match m {
            Message::Chain(c) => Some(c),
            _ => None,
        })
    }

    /// Runs one dump to its end, restarting it if the kernel says it was
    /// interrupted by a concurrent change.
    fn dump<T>(
        &mut self,
        req: &Request,
        pick: impl Fn(Message) -> Option<T>,
    ) -> io::Result<Vec<T>> {
        for _ in 0..DUMP_ATTEMPTS {
            let seq = self.seq;
            self.seq = self.seq.wrapping_add(1);
            self.send_buf.clear();
            req.encode(seq, &mut self.send_buf);
            sys::send(self.fd.as_fd(), &self.send_buf)?;
            let mut out = Vec::new();
            let mut failure: Option<io::Error> = None;
            let mut interrupted = false;
            let mut done = false;
            while !done {
                let len = match sys::recv(self.fd.as_fd(), &mut self.recv_buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                };
                if len > self.recv_buf.len() {
                    failure.get_or_insert(io::Error::other(format!(
                        "{req}: a {len}-byte reply did not fit the receive buffer"
                    )));
                    continue;
                }
                for m in tc_netlink::parse_messages_with_headers(&self.recv_buf[..len]) {
                    let (h, m) = match m {
                        Ok(hm) => hm,
                        Err(e) => {
                            failure.get_or_insert(io::Error::new(
                                io::ErrorKind::InvalidData,
                                format!("{req}: {e}"),
                            ));
                            continue;
                        }
                    };
                    if h.seq != seq {
                        continue; // left over from an earlier exchange
                    }
                    interrupted |= h.flags & NLM_F_DUMP_INTR != 0;
                    match m {
                        Message::Done(d) => {
                            if d.errno != 0 {
                                failure.get_or_insert(os_error(req, d.errno, d.message));
                            }
                            done = true;
                        }
                        // A dump that fails to start answers with an error
                        // instead of a multipart reply.
                        Message::Ack(a) => {
                            if a.errno != 0 {
                                failure.get_or_insert(os_error(req, a.errno, a.message));
                            }
                            done = true;
                        }
                        m => out.extend(pick(m)),
                    }
                }
            }
            if let Some(e) = failure {
                return Err(e);
            }
            if !interrupted {
                return Ok(out);
            }
            tracing::debug!(%req, "dump interrupted by a concurrent change; retrying");
        }
        Err(io::Error::other(format!(
            "{req}: interrupted by concurrent changes {DUMP_ATTEMPTS} times"
        )))
    }
}

fn error(reqs: &[Request], k: usize, errno: i32, why: &str) -> KernelError {
    KernelError {
        index: k,
        request: reqs[k].to_string(),
        errno,
        message: Some(why.to_string()),
    }
}

fn os_error(req: &Request, errno: i32, message: Option<String>) -> io::Error {
    let e = io::Error::from_raw_os_error(errno);
    let text = match message {
        Some(m) => format!("{req}: {e}: {m}"),
        None => format!("{req}: {e}"),
    };
    io::Error::new(e.kind(), text)
}

/// The system calls, each a thin wrapper around one libc function.
pub(crate) mod sys {
    use super::*;

    fn check(ret: libc::c_int) -> io::Result<libc::c_int> {
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret)
        }
    }

    #[allow(unsafe_code)]
    pub(crate) fn netlink_socket(protocol: libc::c_int) -> io::Result<OwnedFd> {
        // SAFETY: socket() takes no pointers; on success it returns a new
        // descriptor that nothing else owns, which OwnedFd takes over.
        unsafe {
            let fd = check(libc::socket(
                libc::AF_NETLINK,
                libc::SOCK_RAW | libc::SOCK_CLOEXEC,
                protocol,
            ))?;
            Ok(OwnedFd::from_raw_fd(fd))
        }
    }

    #[allow(unsafe_code)]
    pub(crate) fn set_int(fd: BorrowedFd<'_>, level: i32, name: i32, value: i32) -> io::Result<()> {
        // SAFETY: the pointer and length describe `value`, a live c_int.
        let ret = unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&value as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        check(ret).map(drop)
    }

    #[allow(unsafe_code)]
    pub(crate) fn get_int(fd: BorrowedFd<'_>, level: i32, name: i32) -> io::Result<i32> {
        let mut value: i32 = 0;
        let mut len = std::mem::size_of::<i32>() as libc::socklen_t;
        // SAFETY: the pointers describe `value` and `len`, live locals of
        // the sizes given.
        let ret = unsafe {
            libc::getsockopt(
                fd.as_raw_fd(),
                level,
                name,
                (&mut value as *mut i32).cast(),
                &mut len,
            )
        };
        check(ret).map(|_| value)
    }

    #[allow(unsafe_code)]
    pub(crate) fn bind_kernel(fd: BorrowedFd<'_>) -> io::Result<()> {
        // Port id 0: the kernel assigns one. No multicast groups.
        // SAFETY: sockaddr_nl is plain data for which all-zero is valid.
        let mut addr: libc::sockaddr_nl = unsafe { std::mem::zeroed() };
        addr.nl_family = libc::AF_NETLINK as libc::sa_family_t;
        // SAFETY: the pointer and length describe `addr`.
        let ret = unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_nl).cast(),
                std::mem::size_of::<libc::sockaddr_nl>() as libc::socklen_t,
            )
        };
        check(ret).map(drop)
    }

    #[allow(unsafe_code)]
    pub(super) fn enter_netns(ns: BorrowedFd<'_>) -> io::Result<()> {
        // SAFETY: setns takes no pointers; it moves only the calling thread.
        check(unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) }).map(drop)
    }

    /// Sends one datagram to the kernel (the socket's default destination,
    /// port 0). Netlink sends whole datagrams or nothing.
    #[allow(unsafe_code)]
    pub(crate) fn send(fd: BorrowedFd<'_>, buf: &[u8]) -> io::Result<()> {
        loop {
            // SAFETY: the pointer and length describe `buf`.
            let ret = unsafe { libc::send(fd.as_raw_fd(), buf.as_ptr().cast(), buf.len(), 0) };
            if ret >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    /// Receives one datagram, blocking. Returns its full length, which
    /// exceeds `buf.len()` if it was truncated (`MSG_TRUNC`).
    #[allow(unsafe_code)]
    pub(crate) fn recv(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
        // SAFETY: the pointer and length describe `buf`, which the kernel
        // writes at most `buf.len()` bytes into.
        let ret = unsafe {
            libc::recv(
                fd.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                libc::MSG_TRUNC,
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(ret as usize)
        }
    }

    /// Receives up to `lens.len()` queued datagrams without blocking, the
    /// i-th into `buf[i * slot..(i + 1) * slot]`; stores each one's full
    /// length (more than `slot` if truncated) in `lens` and returns how
    /// many arrived. Fails with `WouldBlock` if none is queued.
    #[allow(unsafe_code)]
    pub(crate) fn recv_many(
        fd: BorrowedFd<'_>,
        buf: &mut [u8],
        slot: usize,
        lens: &mut [usize; SLOTS],
    ) -> io::Result<usize> {
        let count = SLOTS.min(buf.len() / slot);
        let base = buf.as_mut_ptr();
        let mut iov: [libc::iovec; SLOTS] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; SLOTS];
        // SAFETY: mmsghdr is plain data (pointers and integers) for which
        // all-zero is valid.
        let mut msgs: [libc::mmsghdr; SLOTS] = unsafe { std::mem::zeroed() };
        for i in 0..count {
            // SAFETY: i * slot + slot <= buf.len(), so the slot lies inside `buf`.
            iov[i].iov_base = unsafe { base.add(i * slot) }.cast();
            iov[i].iov_len = slot;
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        // SAFETY: `msgs[..count]` point at `iov[..count]`, which point at
        // disjoint slots of `buf`; all outlive the call, and the kernel
        // writes at most iov_len bytes into each.
        let ret = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                count as libc::c_uint,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        let n = check(ret)? as usize;
        for i in 0..n {
            let len = msgs[i].msg_len as usize;
            lens[i] = if msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0 {
                len.max(slot + 1)
            } else {
                len
            };
        }
        Ok(n)
    }
}
