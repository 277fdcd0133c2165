//! A small hand-written builder of flow export datagrams, shared by the
//! tests and the benchmark (which includes this file by path). It writes
//! exactly what the specifications say, field by field, so tests read as
//! the datagram they send.
#![allow(dead_code)]

use std::net::{Ipv4Addr, Ipv6Addr};

/// Bytes appended big-endian, one call per field.
#[derive(Clone, Debug, Default)]
pub struct Bytes(pub Vec<u8>);

impl Bytes {
    pub fn new() -> Self {
        Bytes(Vec::new())
    }
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    /// The low `n` bytes of `v`: IPFIX reduced-size encoding.
    pub fn uint(mut self, v: u64, n: usize) -> Self {
        self.0.extend_from_slice(&v.to_be_bytes()[8 - n..]);
        self
    }
    pub fn ip4(mut self, a: Ipv4Addr) -> Self {
        self.0.extend_from_slice(&a.octets());
        self
    }
    pub fn ip6(mut self, a: Ipv6Addr) -> Self {
        self.0.extend_from_slice(&a.octets());
        self
    }
    pub fn raw(mut self, b: &[u8]) -> Self {
        self.0.extend_from_slice(b);
        self
    }
    /// An IPFIX variable-length field: the short form below 255 bytes,
    /// the long form (255, u16) from 255 on, or when `long` forces it.
    pub fn var(mut self, b: &[u8], long: bool) -> Self {
        if long || b.len() >= 255 {
            self.0.push(255);
            self.0.extend_from_slice(&(b.len() as u16).to_be_bytes());
        } else {
            self.0.push(b.len() as u8);
        }
        self.0.extend_from_slice(b);
        self
    }
    /// Zeros up to the next multiple of 4.
    pub fn pad4(mut self) -> Self {
        while self.0.len() & 3 != 0 {
            self.0.push(0);
        }
        self
    }
    pub fn len(&self) -> usize {
        self.0.len()
    }
    pub fn build(self) -> Vec<u8> {
        self.0
    }
}

/// A v9/IPFIX set: id, length, body.
pub fn set(id: u16, body: &[u8]) -> Vec<u8> {
    Bytes::new()
        .u16(id)
        .u16(4 + body.len() as u16)
        .raw(body)
        .build()
}

/// A template record: id, field count, (type, length) pairs.
pub fn template_record(id: u16, fields: &[(u16, u16)]) -> Vec<u8> {
    let mut b = Bytes::new().u16(id).u16(fields.len() as u16);
    for &(t, l) in fields {
        b = b.u16(t).u16(l);
    }
    b.build()
}

/// An IPFIX options template record: id, field count, scope count, fields.
pub fn ipfix_options_record(id: u16, scope: &[(u16, u16)], options: &[(u16, u16)]) -> Vec<u8> {
    let mut b = Bytes::new()
        .u16(id)
        .u16((scope.len() + options.len()) as u16)
        .u16(scope.len() as u16);
    for &(t, l) in scope.iter().chain(options) {
        b = b.u16(t).u16(l);
    }
    b.build()
}

/// A v9 options template record: id, scope length and option length in
/// bytes, then the fields.
pub fn v9_options_record(id: u16, scope: &[(u16, u16)], options: &[(u16, u16)]) -> Vec<u8> {
    let mut b = Bytes::new()
        .u16(id)
        .u16(4 * scope.len() as u16)
        .u16(4 * options.len() as u16);
    for &(t, l) in scope.iter().chain(options) {
        b = b.u16(t).u16(l);
    }
    b.pad4().build()
}

/// A NetFlow v9 packet: header (count = number of records given) and sets.
pub fn v9(
    uptime: u32,
    unix_secs: u32,
    seq: u32,
    source_id: u32,
    records: u16,
    sets: &[Vec<u8>],
) -> Vec<u8> {
    let mut b = Bytes::new()
        .u16(9)
        .u16(records)
        .u32(uptime)
        .u32(unix_secs)
        .u32(seq)
        .u32(source_id);
    for s in sets {
        b = b.raw(s);
    }
    b.build()
}

/// An IPFIX message with its length filled in.
pub fn ipfix(export_secs: u32, seq: u32, domain: u32, sets: &[Vec<u8>]) -> Vec<u8> {
    let body: Vec<u8> = sets.concat();
    Bytes::new()
        .u16(10)
        .u16(16 + body.len() as u16)
        .u32(export_secs)
        .u32(seq)
        .u32(domain)
        .raw(&body)
        .build()
}

/// One NetFlow v5 record.
pub struct V5Record {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub packets: u32,
    pub bytes: u32,
    pub first: u32,
    pub last: u32,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
}

/// A NetFlow v5 packet.
pub fn v5(
    uptime: u32,
    secs: u32,
    nsecs: u32,
    seq: u32,
    sampling: u16,
    records: &[V5Record],
) -> Vec<u8> {
    let mut b = Bytes::new()
        .u16(5)
        .u16(records.len() as u16)
        .u32(uptime)
        .u32(secs)
        .u32(nsecs)
        .u32(seq)
        .u8(1)
        .u8(2)
        .u16(sampling);
    for r in records {
        b = b
            .ip4(r.src)
            .ip4(r.dst)
            .ip4(Ipv4Addr::new(10, 0, 0, 254))
            .u16(1)
            .u16(2)
            .u32(r.packets)
            .u32(r.bytes)
            .u32(r.first)
            .u32(r.last)
            .u16(r.src_port)
            .u16(r.dst_port)
            .u8(0)
            .u8(0x18)
            .u8(r.protocol)
            .u8(0)
            .u16(64_500)
            .u16(64_501)
            .u8(24)
            .u8(24)
            .u16(0);
    }
    b.build()
}

// ---------------------------------------------------------------- sFlow

/// An sFlow v5 datagram with an IPv4 agent.
pub fn sflow(seq: u32, sub_agent: u32, samples: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Bytes::new()
        .u32(5)
        .u32(1)
        .ip4(Ipv4Addr::new(192, 0, 2, 10))
        .u32(sub_agent)
        .u32(seq)
        .u32(123_456)
        .u32(samples.len() as u32);
    for s in samples {
        b = b.raw(s);
    }
    b.build()
}

/// An sFlow sample or record: format, length, body.
pub fn tlv(format: u32, body: &[u8]) -> Vec<u8> {
    Bytes::new()
        .u32(format)
        .u32(body.len() as u32)
        .raw(body)
        .build()
}

/// A flow sample (format 1) with the given records.
pub fn flow_sample(rate: u32, records: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Bytes::new()
        .u32(7) // sequence
        .u32(3) // source id: ifIndex 3
        .u32(rate)
        .u32(rate * 10) // sample pool
        .u32(0) // drops
        .u32(3)
        .u32(4)
        .u32(records.len() as u32);
    for r in records {
        b = b.raw(r);
    }
    tlv(1, &b.build())
}

/// An expanded flow sample (format 3) with the given records.
pub fn expanded_flow_sample(rate: u32, records: &[Vec<u8>]) -> Vec<u8> {
    let mut b = Bytes::new()
        .u32(8)
        .u32(0)
        .u32(70_000)
        .u32(rate)
        .u32(rate * 10)
        .u32(0)
        .u32(0)
        .u32(70_000)
        .u32(0)
        .u32(70_001)
        .u32(records.len() as u32);
    for r in records {
        b = b.raw(r);
    }
    tlv(3, &b.build())
}

/// A raw packet header record (flow record format 1).
pub fn raw_header(
    header_protocol: u32,
    frame_length: u32,
    stripped: u32,
    header: &[u8],
) -> Vec<u8> {
    let body = Bytes::new()
        .u32(header_protocol)
        .u32(frame_length)
        .u32(stripped)
        .u32(header.len() as u32)
        .raw(header)
        .pad4()
        .build();
    tlv(1, &body)
}

/// An Ethernet header with the given VLAN tags (TPID, VID) and EtherType.
pub fn ethernet(tags: &[(u16, u16)], ether_type: u16) -> Vec<u8> {
    let mut b = Bytes::new()
        .raw(&[2, 0, 0, 0, 0, 1])
        .raw(&[2, 0, 0, 0, 0, 2]);
    for &(tpid, vid) in tags {
        b = b.u16(tpid).u16(vid);
    }
    b.u16(ether_type).build()
}

/// An IPv4 header with `options_words` 32-bit words of options.
pub fn ipv4_header(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    total_len: u16,
    options_words: u8,
) -> Vec<u8> {
    let mut b = Bytes::new()
        .u8(0x45 + options_words)
        .u8(0)
        .u16(total_len)
        .u16(1)
        .u16(0x4000)
        .u8(64)
        .u8(protocol)
        .u16(0)
        .ip4(src)
        .ip4(dst);
    for _ in 0..options_words {
        b = b.u32(0x0101_0101); // NOPs
    }
    b.build()
}

/// An IPv6 header.
pub fn ipv6_header(src: Ipv6Addr, dst: Ipv6Addr, next: u8, payload_len: u16) -> Vec<u8> {
    Bytes::new()
        .u32(0x6000_0000)
        .u16(payload_len)
        .u8(next)
        .u8(64)
        .ip6(src)
        .ip6(dst)
        .build()
}

/// The first bytes of a TCP or UDP header: the ports, then filler.
pub fn l4_ports(src: u16, dst: u16) -> Vec<u8> {
    Bytes::new().u16(src).u16(dst).u32(0).u32(0).build()
}

/// A counter sample (format 2) holding one generic interface record.
pub fn counter_sample(if_index: u32, c: [u64; 12]) -> Vec<u8> {
    let [in_oct, in_uc, in_mc, in_bc, in_disc, in_err, out_oct, out_uc, out_mc, out_bc, out_disc, out_err] =
        c;
    let rec = Bytes::new()
        .u32(if_index)
        .u32(6) // ethernetCsmacd
        .u64(10_000_000_000)
        .u32(1) // full duplex
        .u32(3) // up, up
        .u64(in_oct)
        .u32(in_uc as u32)
        .u32(in_mc as u32)
        .u32(in_bc as u32)
        .u32(in_disc as u32)
        .u32(in_err as u32)
        .u32(0) // unknown protos
        .u64(out_oct)
        .u32(out_uc as u32)
        .u32(out_mc as u32)
        .u32(out_bc as u32)
        .u32(out_disc as u32)
        .u32(out_err as u32)
        .u32(0) // promiscuous
        .build();
    // An Ethernet counters record (format 2) the decoder must skip.
    let other = tlv(2, &[0u8; 52]);
    let body = Bytes::new()
        .u32(9)
        .u32(if_index)
        .u32(2)
        .raw(&other)
        .raw(&tlv(1, &rec))
        .build();
    tlv(2, &body)
}

// ---------------------------------------------------------------- flowgen

/// NetFlow v9 template of bench/flowgen.py (RFC 3954 numbering).
pub const V9_FIELDS: [(u16, u16); 15] = [
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (6, 1),
    (5, 1),
    (1, 4),
    (2, 4),
    (22, 4),
    (21, 4),
    (10, 4),
    (14, 4),
    (16, 4),
    (17, 4),
];

/// IPFIX template of bench/flowgen.py.
pub const IPFIX_FIELDS: [(u16, u16); 15] = [
    (8, 4),
    (12, 4),
    (7, 2),
    (11, 2),
    (4, 1),
    (6, 1),
    (5, 1),
    (1, 8),
    (2, 8),
    (152, 8),
    (153, 8),
    (10, 4),
    (14, 4),
    (16, 4),
    (17, 4),
];

/// flowgen's template id.
pub const FLOWGEN_TEMPLATE: u16 = 256;

/// A deterministic generator (xorshift64*), so datagrams are the same on
/// every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// One generated flow, as the ground truth for a flowgen-like datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Truth {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    pub bytes: u64,
    pub packets: u64,
    pub start_ms: i64,
    pub end_ms: i64,
}

/// Datagrams shaped like flowgen.py's: the same template, `records` flows
/// per datagram, the same value ranges. `ipfix` picks the protocol.
pub struct Flowgen {
    pub ipfix: bool,
    pub epoch: u32,
    pub uptime: u32,
    pub template: Vec<u8>,
    pub datagrams: Vec<Vec<u8>>,
    pub truth: Vec<Vec<Truth>>,
}

impl Flowgen {
    pub fn new(ipfix: bool, datagrams: usize, records: usize, seed: u64) -> Flowgen {
        let mut rng = Rng::new(seed);
        let epoch = 1_767_225_600u32;
        let uptime = 3_600_000 + rng.below(1_000_000) as u32;
        let fields: &[(u16, u16)] = if ipfix { &IPFIX_FIELDS } else { &V9_FIELDS };
        let tset = set(
            if ipfix { 2 } else { 0 },
            &template_record(FLOWGEN_TEMPLATE, fields),
        );
        let template = if ipfix {
            self::ipfix(epoch, 0, 0, &[tset])
        } else {
            v9(uptime, epoch, 0, 0, 1, &[tset])
        };
        let mut out = Flowgen {
            ipfix,
            epoch,
            uptime,
            template,
            datagrams: Vec::new(),
            truth: Vec::new(),
        };
        for seq in 0..datagrams {
            let mut body = Bytes::new();
            let mut truth = Vec::new();
            for _ in 0..records {
                let src = Ipv4Addr::from(0xC612_0000 + 1 + rng.below(0x1_FFFE) as u32);
                let dst = Ipv4Addr::from(0xCB00_7100 + 1 + rng.below(254) as u32);
                let r = rng.below(100);
                let (protocol, src_port, dst_port, flags) = if r < 70 {
                    (
                        6u8,
                        1024 + rng.below(64_511) as u16,
                        [80, 443, 22, 25, 53, 8080][rng.below(6) as usize],
                        0x18u8,
                    )
                } else if r < 95 {
                    (
                        17,
                        1024 + rng.below(64_511) as u16,
                        [53, 123, 443, 5060, 27015][rng.below(5) as usize],
                        0,
                    )
                } else {
                    (1, 0, [0x0800, 0, 0x0303][rng.below(3) as usize], 0)
                };
                let packets = 1 + rng.below(200);
                let bytes = packets * (40 + rng.below(1461));
                let dur = rng.below(60_000) as u32;
                let end_ago = rng.below(30_000) as u32;
                body = body
                    .ip4(src)
                    .ip4(dst)
                    .u16(src_port)
                    .u16(dst_port)
                    .u8(protocol)
                    .u8(flags)
                    .u8(0);
                let (start_ms, end_ms);
                if ipfix {
                    let last = u64::from(epoch) * 1000 - u64::from(end_ago);
                    let first = last - u64::from(dur);
                    body = body.u64(bytes).u64(packets).u64(first).u64(last);
                    start_ms = first as i64;
                    end_ms = last as i64;
                } else {
                    let last = uptime - end_ago;
                    let first = last - dur;
                    body = body
                        .u32(bytes as u32)
                        .u32(packets as u32)
                        .u32(first)
                        .u32(last);
                    let base = i64::from(epoch) * 1000 - i64::from(uptime);
                    start_ms = base + i64::from(first);
                    end_ms = base + i64::from(last);
                }
                body = body
                    .u32(1 + rng.below(63) as u32)
                    .u32(1 + rng.below(63) as u32)
                    .u32(64_500)
                    .u32(65_001);
                truth.push(Truth {
                    src,
                    dst,
                    src_port,
                    dst_port,
                    protocol,
                    bytes,
                    packets,
                    start_ms,
                    end_ms,
                });
            }
            let dset = set(FLOWGEN_TEMPLATE, &body.pad4().build());
            out.datagrams.push(if ipfix {
                self::ipfix(epoch, seq as u32, 0, &[dset])
            } else {
                v9(uptime, epoch, seq as u32, 0, records as u16, &[dset])
            });
            out.truth.push(truth);
        }
        out
    }
}
