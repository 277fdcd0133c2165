//! Kernel blackhole routes for the guard's `blackhole` rung.
//!
//! A blackhole route (`ip route add blackhole 203.0.113.7/32`) makes the
//! kernel discard everything towards the address: the null route. The
//! guard adds one for a victim's /32 or /128 and removes it when the rung
//! ends.
//!
//! **Tollgate's routes are marked** with their own routing protocol number,
//! [`RTPROT_TOLLGATE`] (213; `ip route show proto 213`), in the main
//! table. Every removal and every listing here asks the kernel for that
//! protocol only, so an operator's own blackhole route for the same
//! address (protocol `boot` or `static`) is never removed, and adding a
//! route where an operator already has one leaves theirs alone (the add is
//! exclusive: the kernel answers "exists" and nothing changes).
//!
//! The messages are plain `RTM_NEWROUTE`/`RTM_DELROUTE`/`RTM_GETROUTE`
//! over a `NETLINK_ROUTE` socket opened with [`crate::rtnl`]'s system
//! calls, in the calling thread's network namespace.

use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};

use net_types::Prefix;

use crate::rtnl::sys;

/// The `rtm_protocol` that marks tollgate's blackhole routes (not in
/// iproute2's `rt_protos` list; `ip route show proto 213` lists them).
pub const RTPROT_TOLLGATE: u8 = 213;

/// The `rtm_protocol` of the routes for `[guard] unused = "blackhole"`
/// (the policy's networks no tenant holds): apart from the rungs' so that
/// each is brought in line without touching the other's.
pub const RTPROT_TOLLGATE_UNUSED: u8 = 214;

const NLMSG_HDRLEN: usize = 16;
const RTMSG_LEN: usize = 12;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_EXCL: u16 = 0x200;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const RTM_NEWROUTE: u16 = 24;
const RTM_DELROUTE: u16 = 25;
const RTM_GETROUTE: u16 = 26;
const RTA_DST: u16 = 1;
const RTA_TABLE: u16 = 15;
const RT_TABLE_MAIN: u8 = 254;
const RTN_BLACKHOLE: u8 = 6;
const RT_SCOPE_UNIVERSE: u8 = 0;

/// What [`Blackholes::add`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Added {
    /// The route was added.
    New,
    /// A route for the prefix was already there (tollgate's from before a
    /// restart, or an operator's, which is left as it is).
    AlreadyThere,
}

/// A `NETLINK_ROUTE` socket for blackhole routes.
#[derive(Debug)]
pub struct Blackholes {
    /// The `rtm_protocol` of the routes this handle adds, lists and
    /// removes.
    protocol: u8,
    fd: OwnedFd,
    seq: u32,
    buf: Vec<u8>,
}

impl Blackholes {
    /// Opens the socket in the calling thread's network namespace.
    pub fn open() -> io::Result<Blackholes> {
        Self::open_for(RTPROT_TOLLGATE)
    }

    /// The same for the unused addresses' routes
    /// ([`RTPROT_TOLLGATE_UNUSED`]).
    pub fn open_unused() -> io::Result<Blackholes> {
        Self::open_for(RTPROT_TOLLGATE_UNUSED)
    }

    fn open_for(protocol: u8) -> io::Result<Blackholes> {
        let fd = sys::netlink_socket(libc::NETLINK_ROUTE)?;
        sys::bind_kernel(fd.as_fd())?;
        Ok(Blackholes {
            protocol,
            fd,
            seq: 1,
            buf: vec![0; 64 * 1024],
        })
    }

    /// Adds tollgate's blackhole route for `prefix` unless a route for
    /// exactly that prefix exists in the main table.
    pub fn add(&mut self, prefix: Prefix) -> io::Result<Added> {
        let msg = self.route_msg(
            RTM_NEWROUTE,
            NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
            Some(prefix),
        );
        match self.ack(&msg) {
            Ok(()) => Ok(Added::New),
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(Added::AlreadyThere),
            Err(e) => Err(context(e, "add", prefix)),
        }
    }

    /// Removes tollgate's blackhole route for `prefix`; `false` if there
    /// was none (an operator's route for the prefix is not touched: the
    /// kernel matches the protocol).
    pub fn remove(&mut self, prefix: Prefix) -> io::Result<bool> {
        let msg = self.route_msg(RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK, Some(prefix));
        match self.ack(&msg) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(false),
            Err(e) => Err(context(e, "remove", prefix)),
        }
    }

    /// Tollgate's blackhole routes in the main table (IPv4 and IPv6).
    pub fn list(&mut self) -> io::Result<Vec<Prefix>> {
        let mut out = Vec::new();
        for family in [libc::AF_INET as u8, libc::AF_INET6 as u8] {
            let seq = self.next_seq();
            let mut msg = header(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, seq);
            msg.extend_from_slice(&[family, 0, 0, 0, RT_TABLE_MAIN, 0, 0, 0, 0, 0, 0, 0]);
            finish(&mut msg);
            sys::send(self.fd.as_fd(), &msg)?;
            'dump: loop {
                let n = sys::recv(self.fd.as_fd(), &mut self.buf)?;
                let data = &self.buf[..n.min(self.buf.len())];
                for (ty, s, body) in messages(data) {
                    if s != seq {
                        continue;
                    }
                    match ty {
                        NLMSG_DONE => break 'dump,
                        NLMSG_ERROR => {
                            let errno = errno_of(body);
                            if errno != 0 {
                                return Err(io::Error::from_raw_os_error(errno));
                            }
                            break 'dump;
                        }
                        RTM_NEWROUTE => out.extend(ours(body, self.protocol)),
                        _ => {}
                    }
                }
            }
        }
        Ok(out)
    }

    /// Removes every route [`Blackholes::list`] finds; how many.
    pub fn flush(&mut self) -> io::Result<usize> {
        let mut n = 0;
        for p in self.list()? {
            if self.remove(p)? {
                n += 1;
            }
        }
        Ok(n)
    }

    /// Makes this handle's routes exactly `wanted`: adds first, then
    /// removes. Returns (added, removed); a prefix where an operator has
    /// a route of their own stays theirs.
    pub fn sync(&mut self, wanted: &[Prefix]) -> io::Result<(usize, usize)> {
        let present = self.list()?;
        let (mut added, mut removed) = (0, 0);
        for p in wanted {
            if !present.contains(p) && self.add(*p)? == Added::New {
                added += 1;
            }
        }
        for p in present {
            if !wanted.contains(&p) && self.remove(p)? {
                removed += 1;
            }
        }
        Ok((added, removed))
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1);
        self.seq
    }

    fn route_msg(&mut self, ty: u16, flags: u16, prefix: Option<Prefix>) -> Vec<u8> {
        let seq = self.next_seq();
        let mut msg = header(ty, flags, seq);
        let (family, len, addr): (u8, u8, Vec<u8>) = match prefix {
            Some(Prefix::V4(a, l)) => (libc::AF_INET as u8, l, a.octets().to_vec()),
            Some(Prefix::V6(a, l)) => (libc::AF_INET6 as u8, l, a.octets().to_vec()),
            None => (0, 0, Vec::new()),
        };
        msg.extend_from_slice(&[
            family,
            len,
            0,
            0,
            RT_TABLE_MAIN,
            self.protocol,
            RT_SCOPE_UNIVERSE,
            RTN_BLACKHOLE,
            0,
            0,
            0,
            0,
        ]);
        if !addr.is_empty() {
            attr(&mut msg, RTA_DST, &addr);
        }
        attr(&mut msg, RTA_TABLE, &u32::from(RT_TABLE_MAIN).to_ne_bytes());
        finish(&mut msg);
        msg
    }

    /// Sends one request and waits for its acknowledgement.
    fn ack(&mut self, msg: &[u8]) -> io::Result<()> {
        let seq = u32::from_ne_bytes([msg[8], msg[9], msg[10], msg[11]]);
        sys::send(self.fd.as_fd(), msg)?;
        loop {
            let n = sys::recv(self.fd.as_fd(), &mut self.buf)?;
            let data = &self.buf[..n.min(self.buf.len())];
            for (ty, s, body) in messages(data) {
                if s == seq && ty == NLMSG_ERROR {
                    let errno = errno_of(body);
                    return if errno == 0 {
                        Ok(())
                    } else {
                        Err(io::Error::from_raw_os_error(errno))
                    };
                }
            }
        }
    }
}

fn context(e: io::Error, what: &str, prefix: Prefix) -> io::Error {
    io::Error::new(
        e.kind(),
        format!("cannot {what} the blackhole route for {prefix}: {e}"),
    )
}

fn header(ty: u16, flags: u16, seq: u32) -> Vec<u8> {
    let mut m = Vec::with_capacity(64);
    m.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(&flags.to_ne_bytes());
    m.extend_from_slice(&seq.to_ne_bytes());
    m.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
    m
}

fn attr(m: &mut Vec<u8>, ty: u16, data: &[u8]) {
    let len = 4 + data.len();
    m.extend_from_slice(&(len as u16).to_ne_bytes());
    m.extend_from_slice(&ty.to_ne_bytes());
    m.extend_from_slice(data);
    while !m.len().is_multiple_of(4) {
        m.push(0);
    }
}

fn finish(m: &mut [u8]) {
    let len = (m.len() as u32).to_ne_bytes();
    m[..4].copy_from_slice(&len);
}

/// The netlink messages in one datagram: (type, sequence, body).
fn messages(mut data: &[u8]) -> Vec<(u16, u32, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= NLMSG_HDRLEN {
        let len = u32::from_ne_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if len < NLMSG_HDRLEN || len > data.len() {
            break;
        }
        let ty = u16::from_ne_bytes([data[4], data[5]]);
        let seq = u32::from_ne_bytes([data[8], data[9], data[10], data[11]]);
        out.push((ty, seq, &data[NLMSG_HDRLEN..len]));
        data = &data[((len + 3) & !3).min(data.len())..];
    }
    out
}

/// The (negated) errno of an `NLMSG_ERROR` body; 0 is an ack.
fn errno_of(body: &[u8]) -> i32 {
    if body.len() < 4 {
        return libc::EIO;
    }
    -i32::from_ne_bytes([body[0], body[1], body[2], body[3]])
}

/// The destination of a dumped route if it is one of tollgate's blackholes.
fn ours(body: &[u8], protocol_wanted: u8) -> Option<Prefix> {
    if body.len() < RTMSG_LEN {
        return None;
    }
    let (family, len, protocol, ty) = (body[0], body[1], body[5], body[7]);
    if protocol != protocol_wanted || ty != RTN_BLACKHOLE {
        return None;
    }
    let mut table = u32::from(body[4]);
    let mut dst: Option<IpAddr> = None;
    let mut rest = &body[RTMSG_LEN..];
    while rest.len() >= 4 {
        let alen = u16::from_ne_bytes([rest[0], rest[1]]) as usize;
        let aty = u16::from_ne_bytes([rest[2], rest[3]]);
        if alen < 4 || alen > rest.len() {
            break;
        }
        let v = &rest[4..alen];
        match aty {
            RTA_DST if v.len() == 4 && family == libc::AF_INET as u8 => {
                dst = Some(IpAddr::from(<[u8; 4]>::try_from(v).ok()?));
            }
            RTA_DST if v.len() == 16 && family == libc::AF_INET6 as u8 => {
                dst = Some(IpAddr::from(<[u8; 16]>::try_from(v).ok()?));
            }
            RTA_TABLE if v.len() == 4 => table = u32::from_ne_bytes([v[0], v[1], v[2], v[3]]),
            _ => {}
        }
        rest = &rest[((alen + 3) & !3).min(rest.len())..];
    }
    if table != u32::from(RT_TABLE_MAIN) {
        return None;
    }
    let dst = dst?;
    Prefix::parse(&format!("{dst}/{len}")).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_route_message_carries_the_mark_and_the_destination() {
        let mut b = Blackholes {
            protocol: RTPROT_TOLLGATE,
            fd: sys::netlink_socket(libc::NETLINK_ROUTE).unwrap(),
            seq: 0,
            buf: Vec::new(),
        };
        let m = b.route_msg(
            RTM_NEWROUTE,
            NLM_F_REQUEST,
            Some(Prefix::parse("203.0.113.7/32").unwrap()),
        );
        assert_eq!(m.len(), 16 + 12 + 8 + 8);
        assert_eq!(
            u32::from_ne_bytes([m[0], m[1], m[2], m[3]]) as usize,
            m.len()
        );
        let body = &m[16..];
        assert_eq!(
            (body[1], body[5], body[7]),
            (32, RTPROT_TOLLGATE, RTN_BLACKHOLE)
        );
        // Read back by the dump parser, as the kernel would echo it.
        assert_eq!(
            ours(body, RTPROT_TOLLGATE),
            Some(Prefix::parse("203.0.113.7/32").unwrap())
        );
        let mut other = body.to_vec();
        other[5] = 4; // an operator's `static` route
        assert_eq!(ours(&other, RTPROT_TOLLGATE), None);
    }
}
