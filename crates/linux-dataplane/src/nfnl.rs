//! The nfnetlink socket: map element changes without an `nft` process.
//!
//! `nft -f` reads every element of an interval map before it changes one
//! (to check for overlaps), which costs 30–40 ms at 10,000 tenants, and
//! starts a process besides. A tenant's move changes two elements, so it
//! goes here instead: the pure `nft-netlink` crate encodes the changes as
//! one nfnetlink batch, which the kernel applies as one transaction inside
//! the `sendmsg` call, all or nothing, as `nft -f` would. Everything else
//! (tables, chains, rules, maps, single-field interval elements) stays
//! with `nft`.

use crate::rtnl::{sys, SLOT, SLOTS};
use nft_netlink::{encode_batch, ElementChange, NETLINK_NETFILTER};
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use tc_netlink::consts::{NETLINK_CAP_ACK, NETLINK_EXT_ACK, SOL_NETLINK};
use tc_netlink::Message;

/// Most element changes sent as one batch. Larger runs (a first apply)
/// go to `nft -f`, whose fixed costs they amortise; this bound also keeps
/// a batch's acks well inside the receive buffer.
pub const MAX_ELEMENTS: usize = 1024;

/// An open nfnetlink socket.
#[derive(Debug)]
pub struct Nfnl {
    fd: OwnedFd,
    seq: u32,
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
        sys::send(self.fd.as_fd(), &self.send_buf)
            .map_err(|e| format!("send to nf_tables: {e}"))?;
        // The kernel ran the whole batch inside `send`, so every ack is
        // already queued: read until there are as many as changes, or none
        // is left.
        let mut acks = 0;
        let mut refused: Option<(usize, String)> = None;
        let mut lens = [0usize; SLOTS];
        while acks < changes.len() {
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
                    if k >= changes.len() {
                        continue; // not one of this batch's messages
                    }
                    acks += 1;
                    if a.errno != 0 && refused.as_ref().is_none_or(|(i, _)| k < *i) {
                        let e = io::Error::from_raw_os_error(a.errno);
                        let why = a.message.map_or(e.to_string(), |m| format!("{e}: {m}"));
                        refused = Some((k, why));
                    }
                }
            }
        }
        match refused {
            None if acks == changes.len() => Ok(()),
            None => Err(format!(
                "nf_tables acknowledged {acks} of {} element changes",
                changes.len()
            )),
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
