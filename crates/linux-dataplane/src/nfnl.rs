//! The nfnetlink socket: map element changes without an `nft` process.
//!
//! `nft -f` starts a process, reads every element of a map before it
//! changes one, and checks interval changes against all of them in user
//! space: 10–40 ms for a tenant's move at 10,000 tenants, and 534 s for
//! 30,000 changes to a full table's realm map. Runs made only of element
//! changes go here instead: the pure `nft-netlink` crate encodes them as
//! one nfnetlink batch, which the kernel applies as one transaction inside
//! the `sendmsg` call, all or nothing, as `nft -f` would. Everything else
//! (tables, chains, rules, maps, the shard map's elements) stays with
//! `nft`.

use crate::rtnl::{sys, SLOT, SLOTS};
use nft_netlink::{encode_batch, ElementChange, NETLINK_NETFILTER};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use tc_netlink::consts::{NETLINK_CAP_ACK, NETLINK_EXT_ACK, SOL_NETLINK};
use tc_netlink::Message;

/// Most kernel elements sent as one batch (one `sendmsg` of about 60 bytes
/// each). Larger runs go to `nft -f`.
pub const MAX_ELEMENTS: usize = 500_000;

/// An open nfnetlink socket.
#[derive(Debug)]
pub struct Nfnl {
    fd: OwnedFd,
    seq: u32,
    /// The send buffer size set so far.
    sndbuf: i32,
    send_buf: Vec<u8>,
    recv_buf: Vec<u8>,
}

impl Nfnl {
    /// Opens a socket in the current network namespace.
    pub fn open() -> io::Result<Nfnl> {
        let fd = sys::netlink_socket(NETLINK_NETFILTER)?;
        let s = fd.as_fd();
        sys::set_int(s, SOL_NETLINK, NETLINK_EXT_ACK, 1)?;
        sys::set_int(s, SOL_NETLINK, NETLINK_CAP_ACK, 1)?;
        if sys::set_int(s, libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, 8 << 20).is_err() {
            sys::set_int(s, libc::SOL_SOCKET, libc::SO_RCVBUF, 8 << 20)?;
        }
        sys::bind_kernel(s)?;
        Ok(Nfnl {
            fd,
            seq: 1,
            sndbuf: 0,
            send_buf: Vec::new(),
            recv_buf: vec![0; SLOTS * SLOT],
        })
    }

    /// Applies `changes` to the maps of `netdev <table>` as one transaction.
    /// On failure nothing was changed, and the error names the first change
    /// the kernel refused and why.
    pub fn apply(&mut self, table: &str, changes: &[ElementChange<'_>]) -> Result<(), String> {
        if changes.is_empty() {
            return Ok(());
        }
        let first = self.seq;
        self.send_buf.clear();
        self.seq = self
            .seq
            .wrapping_add(encode_batch(table, changes, first, &mut self.send_buf));
        // The whole batch must go in one datagram, so the send buffer must
        // hold it (the FORCE variant passes the system ceiling; root only).
        let need = (self.send_buf.len() * 2 + 65536).min(i32::MAX as usize) as i32;
        if need > self.sndbuf {
            let s = self.fd.as_fd();
            if sys::set_int(s, libc::SOL_SOCKET, libc::SO_SNDBUFFORCE, need).is_err() {
                sys::set_int(s, libc::SOL_SOCKET, libc::SO_SNDBUF, need)
                    .map_err(|e| format!("size the nf_tables send buffer: {e}"))?;
            }
            self.sndbuf = need;
        }
        sys::send(self.fd.as_fd(), &self.send_buf)
            .map_err(|e| format!("send to nf_tables: {e}"))?;
        // The kernel ran the whole batch inside `send`: every refusal, and
        // the last message's ack, are already queued. Read until that ack
        // (it comes after the refusals), or until nothing is left.
        let last = changes.len() - 1;
        let mut done = false;
        let mut refused: Option<(usize, String)> = None;
        let mut lens = [0usize; SLOTS];
        while !done {
            let n = match sys::recv_many(self.fd.as_fd(), &mut self.recv_buf, SLOT, &mut lens) {
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(format!("read nf_tables acks: {e}")),
            };
            for (slot, len) in lens.iter().take(n).enumerate() {
                let bytes = &self.recv_buf[slot * SLOT..slot * SLOT + (*len).min(SLOT)];
                for m in tc_netlink::parse_messages_with_headers(bytes) {
                    let Ok((h, Message::Ack(a))) = m else {
                        continue;
                    };
                    let Some(k) = (h.seq.wrapping_sub(first) as usize).checked_sub(1) else {
                        continue;
                    };
                    if k > last {
                        continue; // not one of this batch's messages
                    }
                    if a.errno != 0 && refused.as_ref().is_none_or(|(i, _)| k < *i) {
                        let e = io::Error::from_raw_os_error(a.errno);
                        let why = a.message.map_or(e.to_string(), |m| format!("{e}: {m}"));
                        refused = Some((k, why));
                    }
                    done |= k == last;
                }
            }
        }
        match refused {
            None if done => Ok(()),
            None => Err("nf_tables did not acknowledge the batch".into()),
            Some((k, why)) => {
                let c = &changes[k];
                Err(format!(
                    "nf_tables refused {} of an element of map {}: {why} (the whole transaction was undone)",
                    match c.op {
                        nft_netlink::ElementOp::Add => "the addition",
                        nft_netlink::ElementOp::Delete => "the deletion",
                    },
                    c.map
                ))
            }
        }
    }
}
