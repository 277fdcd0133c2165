//! One UDP socket: opening it for a collector, receiving in batches, and
//! reading the kernel's drop counter for it.

use socket2::{Domain, Protocol, Socket, Type};
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Duration;

/// Datagrams per `recvmmsg`.
pub(crate) const BATCH: usize = 64;

/// Bytes per receive slot: the largest UDP payload, so no exporter's
/// datagram is ever cut (NetFlow v9 and IPFIX allow up to 65,535).
pub(crate) const SLOT: usize = 65_536;

/// How long a worker blocks waiting for traffic before it checks whether
/// it should stop or publish.
const RECEIVE_TIMEOUT: Duration = Duration::from_millis(100);

/// An open, bound collector socket.
pub(crate) struct Listener {
    pub(crate) fd: OwnedFd,
    pub(crate) local: SocketAddr,
    /// What the kernel granted (it reports twice what it counts against).
    pub(crate) receive_buffer: usize,
    /// The socket's inode, to find its row in `/proc/net/udp`.
    inode: u64,
}

impl Listener {
    /// Opens a socket on `addr` sharing the port with the other workers'
    /// (`SO_REUSEPORT`) and asks for a receive buffer of `buffer` bytes.
    /// As root, `SO_RCVBUFFORCE` goes past `net.core.rmem_max`; otherwise
    /// the kernel caps the request at it.
    pub(crate) fn open(addr: SocketAddr, buffer: usize) -> io::Result<Listener> {
        let s = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
        s.set_reuse_port(true)?;
        if addr.is_ipv6() {
            // "[::]:2055" next to "0.0.0.0:2055" must not claim IPv4 too.
            s.set_only_v6(true)?;
        }
        let want = i32::try_from(buffer).unwrap_or(i32::MAX);
        if sys::set_int(&s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, want).is_err() {
            s.set_recv_buffer_size(buffer)?;
        }
        s.set_read_timeout(Some(RECEIVE_TIMEOUT))?;
        s.bind(&addr.into())?;
        let local = s
            .local_addr()?
            .as_socket()
            .ok_or_else(|| io::Error::other("bound address is not IP"))?;
        let receive_buffer = s.recv_buffer_size()?;
        let fd: OwnedFd = s.into();
        let inode = std::fs::metadata(format!("/proc/self/fd/{}", fd.as_raw_fd()))
            .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
            .unwrap_or(0);
        Ok(Listener {
            fd,
            local,
            receive_buffer,
            inode,
        })
    }

    /// The kernel's count of datagrams dropped on this socket, or `None` if
    /// it cannot be read.
    pub(crate) fn kernel_drops(&self) -> Option<u64> {
        let table = if self.local.is_ipv6() {
            "/proc/net/udp6"
        } else {
            "/proc/net/udp"
        };
        let text = std::fs::read_to_string(table).ok()?;
        drops_of(&text, self.inode)
    }
}

/// The `drops` column of the row with inode `inode` in a `/proc/net/udp`
/// table: the last field, with the inode the tenth.
fn drops_of(table: &str, inode: u64) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let f: Vec<&str> = line.split_whitespace().collect();
        (f.get(9)?.parse::<u64>().ok()? == inode).then(|| f.last()?.parse().ok())?
    })
}

/// Buffers for one `recvmmsg`.
pub(crate) struct Batch {
    buf: Vec<u8>,
    /// Each datagram's full length (above [`SLOT`] if truncated).
    pub(crate) lens: [usize; BATCH],
    /// Each datagram's source.
    pub(crate) from: [Option<SocketAddr>; BATCH],
}

impl Batch {
    pub(crate) fn new() -> Batch {
        Batch {
            buf: vec![0; BATCH * SLOT],
            lens: [0; BATCH],
            from: [None; BATCH],
        }
    }

    /// The i-th datagram received (cut to the slot if it was longer).
    pub(crate) fn datagram(&self, i: usize) -> &[u8] {
        let len = self.lens.get(i).copied().unwrap_or(0).min(SLOT);
        self.buf.get(i * SLOT..i * SLOT + len).unwrap_or(&[])
    }
}

/// Waits up to the receive timeout for at least one datagram, then takes
/// every one queued, up to [`BATCH`]. Returns how many arrived; a timeout
/// is `Ok(0)`.
pub(crate) fn receive(l: &Listener, b: &mut Batch) -> io::Result<usize> {
    match sys::recv_many(&l.fd, b) {
        Ok(n) => Ok(n),
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(0)
        }
        Err(e) => Err(e),
    }
}

/// The system calls, each a thin wrapper around one libc function.
mod sys {
    use super::*;
    use std::os::fd::AsFd;

    #[allow(unsafe_code)]
    pub(super) fn set_int(fd: &impl AsFd, level: i32, name: i32, value: i32) -> io::Result<()> {
        // SAFETY: the pointer and length describe `value`, a live c_int.
        let ret = unsafe {
            libc::setsockopt(
                fd.as_fd().as_raw_fd(),
                level,
                name,
                (&value as *const i32).cast(),
                std::mem::size_of::<i32>() as libc::socklen_t,
            )
        };
        if ret < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }

    #[allow(unsafe_code)]
    pub(super) fn recv_many(fd: &OwnedFd, b: &mut Batch) -> io::Result<usize> {
        let base = b.buf.as_mut_ptr();
        let mut iov: [libc::iovec; BATCH] = [libc::iovec {
            iov_base: std::ptr::null_mut(),
            iov_len: 0,
        }; BATCH];
        // SAFETY: sockaddr_storage and mmsghdr are plain data for which
        // all-zero is valid.
        let mut names: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut msgs: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        for i in 0..BATCH {
            // SAFETY: buf holds BATCH * SLOT bytes, so slot i lies inside it.
            iov[i].iov_base = unsafe { base.add(i * SLOT) }.cast();
            iov[i].iov_len = SLOT;
            msgs[i].msg_hdr.msg_iov = &mut iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
            msgs[i].msg_hdr.msg_name = (&mut names[i] as *mut libc::sockaddr_storage).cast();
            msgs[i].msg_hdr.msg_namelen =
                std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        }
        // SAFETY: every msghdr points at its own iovec, slot of `buf` and
        // sockaddr_storage, all alive for the call; the kernel writes at
        // most iov_len bytes into each slot and msg_namelen into each name.
        let ret = unsafe {
            libc::recvmmsg(
                fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                BATCH as libc::c_uint,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if ret < 0 {
            return Err(io::Error::last_os_error());
        }
        let n = ret as usize;
        for i in 0..n {
            let truncated = msgs[i].msg_hdr.msg_flags & libc::MSG_TRUNC != 0;
            b.lens[i] = if truncated {
                SLOT + 1
            } else {
                msgs[i].msg_len as usize
            };
            b.from[i] = to_socket_addr(&names[i]);
        }
        Ok(n)
    }

    #[allow(unsafe_code)]
    fn to_socket_addr(s: &libc::sockaddr_storage) -> Option<SocketAddr> {
        match i32::from(s.ss_family) {
            libc::AF_INET => {
                // SAFETY: the family says the storage holds a sockaddr_in,
                // which is smaller than sockaddr_storage and less aligned.
                let a =
                    unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
                let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 => {
                // SAFETY: the family says the storage holds a sockaddr_in6.
                let a =
                    unsafe { &*(s as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
                let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drops_are_read_from_the_row_with_the_inode() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
   12: 0100007F:0807 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n\
   13: 0100007F:0808 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4243 2 0000000000000000 0\n";
        assert_eq!(drops_of(t, 4242), Some(17));
        assert_eq!(drops_of(t, 4243), Some(0));
        assert_eq!(drops_of(t, 9), None);
    }
}
