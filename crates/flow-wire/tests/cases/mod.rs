//! The test cases, by protocol and concern.

use std::net::SocketAddr;

use flow_wire::{DatagramSummary, DecodeError, Decoder, FlowRecord, InterfaceCounters, Item};

mod ipfix;
mod limits;
mod netflow;
mod robustness;
mod sampling;
mod sflow;
mod state;

/// Everything one datagram yielded.
#[derive(Debug)]
pub struct Decoded {
    pub summary: DatagramSummary,
    pub flows: Vec<FlowRecord>,
    pub counters: Vec<InterfaceCounters>,
}

pub const RECEIVED_MS: i64 = 1_767_225_601_234;

pub fn exporter(n: u8) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, n], 2055))
}

/// Decodes and collects, failing the test on an error.
pub fn decode(dec: &mut Decoder, from: SocketAddr, datagram: &[u8]) -> Decoded {
    match try_decode(dec, from, datagram) {
        Ok(d) => d,
        Err(e) => panic!("decode failed: {e}"),
    }
}

/// Decodes and collects, returning the error (with what came before it).
pub fn try_decode(
    dec: &mut Decoder,
    from: SocketAddr,
    datagram: &[u8],
) -> Result<Decoded, DecodeError> {
    let mut flows = Vec::new();
    let mut counters = Vec::new();
    let summary = dec.decode(from, RECEIVED_MS, datagram, &mut |item| match item {
        Item::Flow(f) => flows.push(*f),
        Item::Counters(c) => counters.push(*c),
    })?;
    Ok(Decoded {
        summary,
        flows,
        counters,
    })
}

/// Decodes expecting an error, and returns it.
pub fn decode_err(dec: &mut Decoder, from: SocketAddr, datagram: &[u8]) -> DecodeError {
    match try_decode(dec, from, datagram) {
        Ok(d) => panic!("expected an error, decoded {d:?}"),
        Err(e) => e,
    }
}
