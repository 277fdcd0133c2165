//! Active probes from the box: ICMP echo and TCP connect, one at a time
//! per probe, each with a deadline.
//!
//! ICMP uses an unprivileged ICMP datagram socket when
//! `net.ipv4.ping_group_range` allows this process's group (the kernel
//! then owns the echo identifier and the checksum), else a raw socket
//! (root, or `CAP_NET_RAW`). Both are `connect`ed to the target, so the
//! kernel hands back only the target's packets; a reply is ours when its
//! sequence number and payload (a per-socket token) match.
//!
//! TCP measures the handshake: `connect` returns when the SYN-ACK is in,
//! and a refusal (RST) is an answer too. The connection is closed at
//! once.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::io::Read as _;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// An ICMP echo probe's socket.
pub struct Pinger {
    sock: Socket,
    raw: bool,
    v6: bool,
    ident: u16,
    seq: u16,
    token: [u8; 8],
}

const PAYLOAD: usize = 56;

/// The Internet checksum (RFC 1071).
fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    for c in bytes.chunks(2) {
        let word = u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]);
        sum += u32::from(word);
    }
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

impl Pinger {
    /// Opens a socket toward `target`.
    pub fn open(target: IpAddr) -> io::Result<Pinger> {
        let (domain, proto, v6) = match target {
            IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4, false),
            IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6, true),
        };
        let (sock, raw) = match Socket::new(domain, Type::DGRAM, Some(proto)) {
            Ok(s) => (s, false),
            Err(dgram) => match Socket::new(domain, Type::RAW, Some(proto)) {
                Ok(s) => (s, true),
                Err(raw) => {
                    return Err(io::Error::new(
                        raw.kind(),
                        format!("cannot open an ICMP socket: datagram: {dgram}; raw: {raw} (run as root, or widen net.ipv4.ping_group_range)"),
                    ))
                }
            },
        };
        sock.connect(&SockAddr::from(SocketAddr::new(target, 0)))?;
        let pid = std::process::id();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut token = [0u8; 8];
        token[..4].copy_from_slice(&pid.to_be_bytes());
        token[4..].copy_from_slice(&nanos.to_be_bytes());
        Ok(Pinger {
            sock,
            raw,
            v6,
            ident: (pid as u16) ^ (nanos as u16),
            seq: 0,
            token,
        })
    }

    /// Sends one echo request and waits up to `timeout` for its reply:
    /// the round trip, or `None` if none came.
    pub fn probe(&mut self, timeout: Duration) -> io::Result<Option<Duration>> {
        self.seq = self.seq.wrapping_add(1);
        let mut pkt = vec![0u8; 8 + PAYLOAD];
        pkt[0] = if self.v6 { 128 } else { 8 };
        pkt[4..6].copy_from_slice(&self.ident.to_be_bytes());
        pkt[6..8].copy_from_slice(&self.seq.to_be_bytes());
        pkt[8..16].copy_from_slice(&self.token);
        if !self.v6 {
            // Raw IPv4 needs it; a datagram socket recomputes it anyway.
            let c = checksum(&pkt);
            pkt[2..4].copy_from_slice(&c.to_be_bytes());
        }
        let deadline = Instant::now() + timeout;
        let sent = Instant::now();
        self.sock.send(&pkt)?;
        let mut buf = [0u8; 1500];
        loop {
            let Some(left) = deadline
                .checked_duration_since(Instant::now())
                .filter(|d| !d.is_zero())
            else {
                return Ok(None);
            };
            self.sock.set_read_timeout(Some(left))?;
            let n = match (&self.sock).read(&mut buf) {
                Ok(n) => n,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None)
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // An ICMP error for our echo (unreachable): no answer.
                Err(e)
                    if e.raw_os_error().is_some_and(|c| {
                        c == libc::EHOSTUNREACH || c == libc::ENETUNREACH || c == libc::ECONNREFUSED
                    }) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            let rtt = sent.elapsed();
            if self.is_ours(&buf[..n]) {
                return Ok(Some(rtt));
            }
        }
    }

    fn is_ours(&self, bytes: &[u8]) -> bool {
        // A raw IPv4 socket hands over the IP header too.
        let icmp = if self.raw && !self.v6 {
            let ihl = usize::from(bytes.first().map_or(0, |b| b & 0x0f)) * 4;
            bytes.get(ihl..).unwrap_or(&[])
        } else {
            bytes
        };
        let reply = if self.v6 { 129 } else { 0 };
        icmp.len() >= 16
            && icmp[0] == reply
            // A datagram socket's identifier is the kernel's, not ours.
            && (!self.raw || icmp[4..6] == self.ident.to_be_bytes())
            && icmp[6..8] == self.seq.to_be_bytes()
            && icmp[8..16] == self.token
    }
}

/// A TCP connect to `addr`: the handshake's time, or `None` if nothing
/// answered within `timeout`. A refusal is an answer.
pub fn tcp(addr: SocketAddr, timeout: Duration) -> Option<Duration> {
    let started = Instant::now();
    match std::net::TcpStream::connect_timeout(&addr, timeout) {
        Ok(_) => Some(started.elapsed()),
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Some(started.elapsed()),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_of_an_echo_request() {
        // RFC 1071's example words sum to 0xddf2; its complement is 0x220d.
        assert_eq!(
            checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7]),
            0x220d
        );
    }

    #[test]
    fn a_tcp_probe_to_a_closed_port_on_loopback_is_answered() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        assert!(tcp(addr, Duration::from_secs(1)).is_some());
        drop(l);
        // Refused (RST) is an answer too.
        assert!(tcp(addr, Duration::from_secs(1)).is_some());
    }
}
