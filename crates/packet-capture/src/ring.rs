//! The one module with `unsafe`: an AF_PACKET socket with a TPACKET_V3
//! receive ring mapped into memory, its fanout group, and its statistics.
//!
//! The ring is `block_count` blocks of `block_size` bytes shared with the
//! kernel. A block belongs to the kernel until it sets `TP_STATUS_USER` in
//! the block's status word (it does so when the block is full or its
//! retire timeout passes); then it is ours until we write
//! `TP_STATUS_KERNEL` back. While it is ours the kernel does not touch
//! it, which is what makes the `&[u8]` view of it sound. Inside a block
//! everything (packet count, offsets, lengths) is read with bounds
//! checks in safe code, so even a corrupt block cannot make us read
//! outside it.

use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicU32, Ordering};
use std::time::Duration;

/// Offsets in `struct tpacket_block_desc` (`linux/if_packet.h`):
/// `version`, `offset_to_priv`, then `tpacket_hdr_v1`'s `block_status`,
/// `num_pkts`, `offset_to_first_pkt`.
const BLOCK_STATUS: usize = 8;
const BLOCK_NUM_PKTS: usize = 12;
const BLOCK_FIRST_PKT: usize = 16;

/// Offsets in `struct tpacket3_hdr`.
const PKT_NEXT: usize = 0;
const PKT_SNAPLEN: usize = 12;
const PKT_LEN: usize = 16;
const PKT_MAC: usize = 24;
/// `sockaddr_ll` follows the header at `TPACKET_ALIGN(sizeof(tpacket3_hdr))`
/// = 48; its `sll_pkttype` is at byte 10.
const PKT_PKTTYPE: usize = 48 + 10;

/// How the kernel spreads packets over the sockets of a fanout group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fanout {
    /// By flow hash: a 5-tuple always reaches the same socket (so per-flow
    /// figures need no cross-thread union). FastNetMon's `hash`.
    Hash,
    /// By the receiving CPU (FastNetMon's default, `cpu`).
    Cpu,
    /// Round robin.
    LoadBalance,
}

impl Fanout {
    fn mode(self) -> u32 {
        match self {
            Fanout::Hash => libc::PACKET_FANOUT_HASH,
            Fanout::Cpu => libc::PACKET_FANOUT_CPU,
            Fanout::LoadBalance => libc::PACKET_FANOUT_LB,
        }
    }
}

/// The ring's geometry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RingConfig {
    /// Bytes per block: a multiple of the page size (4 KiB).
    pub block_size: u32,
    /// Blocks in the ring.
    pub block_count: u32,
    /// The frame size the kernel is told (a multiple of 16); TPACKET_V3
    /// packs packets of any size into blocks, this only sets the count
    /// the kernel checks against.
    pub frame_size: u32,
    /// How long a block with at least one packet waits before the kernel
    /// hands it over unfilled (at least 1 ms): the capture's added delay.
    pub retire_timeout: Duration,
}

impl Default for RingConfig {
    fn default() -> Self {
        RingConfig {
            block_size: 1 << 20,
            block_count: 16,
            frame_size: 2048,
            retire_timeout: Duration::from_millis(4),
        }
    }
}

/// The kernel's counters for one socket since the last read (reading
/// resets them).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SocketStats {
    /// Packets the socket received (`tp_packets`, drops included).
    pub packets: u64,
    /// Packets dropped because the ring was full (`tp_drops`).
    pub drops: u64,
    /// Times the ring's queue was frozen because every block was ours
    /// (`tp_freeze_q_cnt`).
    pub freezes: u64,
}

/// One captured packet in a block.
pub(crate) struct Frame<'a> {
    /// The bytes from the link header on, as captured.
    pub data: &'a [u8],
    /// The frame's length on the wire.
    pub wire_len: u32,
    /// `sll_pkttype`: `PACKET_HOST`, `PACKET_OUTGOING`…
    pub pkttype: u8,
}

fn check(ret: libc::c_int, what: &'static str) -> io::Result<libc::c_int> {
    if ret < 0 {
        let e = io::Error::last_os_error();
        Err(io::Error::new(e.kind(), format!("{what}: {e}")))
    } else {
        Ok(ret)
    }
}

fn set_opt<T>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    value: &T,
    what: &'static str,
) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of `size_of::<T>()` bytes, which
    // is what the option expects (the callers pass the kernel's types).
    #[allow(unsafe_code)]
    let ret = unsafe {
        libc::setsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (value as *const T).cast(),
            std::mem::size_of::<T>() as libc::socklen_t,
        )
    };
    check(ret, what).map(drop)
}

fn get_opt<T: Default>(
    fd: &OwnedFd,
    level: libc::c_int,
    name: libc::c_int,
    what: &'static str,
) -> io::Result<T> {
    let mut value = T::default();
    let mut len = std::mem::size_of::<T>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `value`, a live `T`.
    #[allow(unsafe_code)]
    let ret = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            level,
            name,
            (&mut value as *mut T).cast(),
            &mut len,
        )
    };
    check(ret, what).map(|_| value)
}

/// The interface index of `name` in the calling thread's namespace.
pub(crate) fn interface_index(name: &str) -> Option<u32> {
    let c = CString::new(name).ok()?;
    // SAFETY: `c` is a NUL-terminated string that outlives the call.
    #[allow(unsafe_code)]
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (index != 0).then_some(index)
}

/// A packet socket bound to one interface, with its ring mapped.
pub(crate) struct PacketRing {
    fd: OwnedFd,
    map: *mut u8,
    map_len: usize,
    block_size: usize,
    block_count: usize,
    next_block: usize,
}

// SAFETY: the mapping is owned by this value alone (no other handle to it
// exists in the process), so moving it to the reader thread is sound.
#[allow(unsafe_code)]
unsafe impl Send for PacketRing {}

#[derive(Default)]
#[repr(C)]
struct StatsV3 {
    packets: u32,
    drops: u32,
    freeze_q_cnt: u32,
}

#[repr(C)]
struct ReqV3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

impl PacketRing {
    /// Opens a socket on interface `ifindex` (in the calling thread's
    /// network namespace), maps its ring, binds it, and joins fanout
    /// group `fanout` if given: `(None, mode)` creates a new group with a
    /// kernel-chosen id, `(Some(id), mode)` joins it.
    pub(crate) fn open(
        ifindex: u32,
        ring: &RingConfig,
        fanout: Option<(Option<u16>, Fanout)>,
    ) -> io::Result<PacketRing> {
        // Protocol 0: no packet is queued before the ring exists and the
        // socket is bound to the interface.
        // SAFETY: socket(2) takes no pointers.
        #[allow(unsafe_code)]
        let raw = check(
            unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) },
            "socket(AF_PACKET)",
        )?;
        // SAFETY: `raw` is a new descriptor owned by nothing else.
        #[allow(unsafe_code)]
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // `enum tpacket_versions { TPACKET_V1, TPACKET_V2, TPACKET_V3 }`.
        let version: libc::c_int = 2;
        set_opt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_VERSION,
            &version,
            "PACKET_VERSION",
        )?;
        let frames_per_block = ring.block_size / ring.frame_size.max(1);
        let req = ReqV3 {
            block_size: ring.block_size,
            block_nr: ring.block_count,
            frame_size: ring.frame_size,
            frame_nr: frames_per_block * ring.block_count,
            retire_blk_tov: u32::try_from(ring.retire_timeout.as_millis().max(1))
                .unwrap_or(u32::MAX),
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        set_opt(
            &fd,
            libc::SOL_PACKET,
            libc::PACKET_RX_RING,
            &req,
            "PACKET_RX_RING",
        )?;
        let map_len = ring.block_size as usize * ring.block_count as usize;
        // SAFETY: mapping the ring the kernel just allocated for `fd`; the
        // result is checked before use and unmapped in `Drop`.
        #[allow(unsafe_code)]
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                map_len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if map == libc::MAP_FAILED {
            let e = io::Error::last_os_error();
            return Err(io::Error::new(e.kind(), format!("mmap of the ring: {e}")));
        }
        let packet_ring = PacketRing {
            fd,
            map: map.cast(),
            map_len,
            block_size: ring.block_size as usize,
            block_count: ring.block_count as usize,
            next_block: 0,
        };
        // SAFETY: an all-zero sockaddr_ll is valid; the fields set below
        // are plain integers.
        #[allow(unsafe_code)]
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_protocol = (libc::ETH_P_ALL as u16).to_be();
        addr.sll_ifindex = ifindex as i32;
        // SAFETY: `addr` is a live sockaddr_ll of the length given.
        #[allow(unsafe_code)]
        let ret = unsafe {
            libc::bind(
                packet_ring.fd.as_raw_fd(),
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        check(ret, "bind to the interface")?;
        if let Some((id, mode)) = fanout {
            let arg: u32 = match id {
                Some(id) => u32::from(id) | (mode.mode() << 16),
                None => (mode.mode() | libc::PACKET_FANOUT_FLAG_UNIQUEID) << 16,
            };
            set_opt(
                &packet_ring.fd,
                libc::SOL_PACKET,
                libc::PACKET_FANOUT,
                &arg,
                "PACKET_FANOUT",
            )?;
        }
        Ok(packet_ring)
    }

    /// The fanout group's id (after joining one).
    pub(crate) fn fanout_id(&self) -> io::Result<u16> {
        let v: u32 = get_opt(
            &self.fd,
            libc::SOL_PACKET,
            libc::PACKET_FANOUT,
            "PACKET_FANOUT",
        )?;
        Ok((v & 0xffff) as u16)
    }

    /// A second handle on the socket, for reading its statistics from
    /// another thread while this one reads the ring.
    pub(crate) fn stats_handle(&self) -> io::Result<StatsHandle> {
        Ok(StatsHandle(self.fd.try_clone()?))
    }

    fn status(&self, block: usize) -> &AtomicU32 {
        // SAFETY: `block < block_count`, so the status word lies inside the
        // mapping, 4-byte aligned (blocks are page aligned); the kernel and
        // we only ever access it as a 32-bit word.
        #[allow(unsafe_code)]
        unsafe {
            &*self
                .map
                .add(block * self.block_size + BLOCK_STATUS)
                .cast::<AtomicU32>()
        }
    }

    /// Waits up to `timeout` for the next block to be ours; whether it is.
    pub(crate) fn wait(&self, timeout: Duration) -> io::Result<bool> {
        let block = self.next_block;
        if self.status(block).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0 {
            return Ok(true);
        }
        let mut pfd = libc::pollfd {
            fd: self.fd.as_raw_fd(),
            events: libc::POLLIN | libc::POLLERR,
            revents: 0,
        };
        let ms = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
        // SAFETY: one live pollfd.
        #[allow(unsafe_code)]
        let ret = unsafe { libc::poll(&mut pfd, 1, ms) };
        if ret < 0 {
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        Ok(self.status(block).load(Ordering::Acquire) & libc::TP_STATUS_USER != 0)
    }

    /// If the next block is ours, calls `each` for every packet in it and
    /// gives it back to the kernel. Returns the packets seen.
    pub(crate) fn take_block(&mut self, mut each: impl FnMut(Frame<'_>)) -> usize {
        let block = self.next_block;
        if self.status(block).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return 0;
        }
        fence(Ordering::Acquire);
        let count = {
            // SAFETY: the block is ours (TP_STATUS_USER, read with acquire
            // ordering): the kernel writes none of it until we give it
            // back below, after this borrow ends. It lies inside the map.
            #[allow(unsafe_code)]
            let bytes = unsafe {
                std::slice::from_raw_parts(self.map.add(block * self.block_size), self.block_size)
            };
            walk_block(bytes, &mut each)
        };
        self.status(block)
            .store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.next_block = (block + 1) % self.block_count;
        count
    }

    /// The interface's `ARPHRD_*` link type, from the bound address.
    pub(crate) fn hardware_type(&self) -> io::Result<u16> {
        // SAFETY: an all-zero sockaddr_ll is valid.
        #[allow(unsafe_code)]
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: the kernel writes at most `len` bytes into `addr`.
        #[allow(unsafe_code)]
        let ret = unsafe {
            libc::getsockname(
                self.fd.as_raw_fd(),
                (&mut addr as *mut libc::sockaddr_ll).cast(),
                &mut len,
            )
        };
        check(ret, "getsockname")?;
        Ok(addr.sll_hatype)
    }
}

impl Drop for PacketRing {
    fn drop(&mut self) {
        // SAFETY: unmapping exactly what `open` mapped; no borrow of it
        // outlives `&mut self`.
        #[allow(unsafe_code)]
        unsafe {
            libc::munmap(self.map.cast(), self.map_len);
        }
    }
}

/// A duplicate of a ring's socket descriptor, for its statistics.
pub(crate) struct StatsHandle(OwnedFd);

impl StatsHandle {
    /// Reads (and so resets) the socket's counters.
    pub(crate) fn read(&self) -> io::Result<SocketStats> {
        let s: StatsV3 = get_opt(
            &self.0,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            "PACKET_STATISTICS",
        )?;
        Ok(SocketStats {
            packets: u64::from(s.packets),
            drops: u64::from(s.drops),
            freezes: u64::from(s.freeze_q_cnt),
        })
    }
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

/// Calls `each` for every packet of a block we own; every offset is
/// checked against the block. Returns how many packets it held.
pub(crate) fn walk_block(block: &[u8], each: &mut impl FnMut(Frame<'_>)) -> usize {
    let (Some(n), Some(first)) = (
        u32_at(block, BLOCK_NUM_PKTS),
        u32_at(block, BLOCK_FIRST_PKT),
    ) else {
        return 0;
    };
    let mut at = first as usize;
    let mut seen = 0;
    for _ in 0..n {
        let Some(hdr) = block.get(at..) else { break };
        let (Some(next), Some(snap), Some(len), Some(mac), Some(&pkttype)) = (
            u32_at(hdr, PKT_NEXT),
            u32_at(hdr, PKT_SNAPLEN),
            u32_at(hdr, PKT_LEN),
            u16_at(hdr, PKT_MAC),
            hdr.get(PKT_PKTTYPE),
        ) else {
            break;
        };
        let start = usize::from(mac);
        let Some(data) = hdr.get(start..start + snap as usize) else {
            break;
        };
        each(Frame {
            data,
            wire_len: len,
            pkttype,
        });
        seen += 1;
        if next == 0 {
            break;
        }
        at += next as usize;
    }
    seen
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A block with two packets as the kernel lays them out.
    #[test]
    fn a_block_is_walked_by_its_offsets_and_a_bad_offset_stops_the_walk() {
        let mut b = vec![0u8; 4096];
        b[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4].copy_from_slice(&2u32.to_ne_bytes());
        b[BLOCK_FIRST_PKT..BLOCK_FIRST_PKT + 4].copy_from_slice(&48u32.to_ne_bytes());
        for (at, next, tag) in [(48usize, 256u32, 0xaa), (304, 0, 0xbb)] {
            b[at..at + 4].copy_from_slice(&next.to_ne_bytes());
            b[at + PKT_SNAPLEN..at + PKT_SNAPLEN + 4].copy_from_slice(&60u32.to_ne_bytes());
            b[at + PKT_LEN..at + PKT_LEN + 4].copy_from_slice(&1514u32.to_ne_bytes());
            b[at + PKT_MAC..at + PKT_MAC + 2].copy_from_slice(&80u16.to_ne_bytes());
            b[at + PKT_PKTTYPE] = 4;
            b[at + 80] = tag;
        }
        let mut seen = Vec::new();
        let n = walk_block(&b, &mut |f: Frame<'_>| {
            seen.push((f.data[0], f.data.len(), f.wire_len, f.pkttype))
        });
        assert_eq!(n, 2);
        assert_eq!(seen, vec![(0xaa, 60, 1514, 4), (0xbb, 60, 1514, 4)]);
        // A snap length past the block's end: the walk stops, no panic.
        b[304 + PKT_SNAPLEN..304 + PKT_SNAPLEN + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        assert_eq!(walk_block(&b, &mut |_: Frame<'_>| {}), 1);
        // A count larger than the packets, offsets that loop off the end.
        b[BLOCK_NUM_PKTS..BLOCK_NUM_PKTS + 4].copy_from_slice(&u32::MAX.to_ne_bytes());
        b[48..52].copy_from_slice(&4000u32.to_ne_bytes());
        assert_eq!(walk_block(&b, &mut |_: Frame<'_>| {}), 1);
    }
}
