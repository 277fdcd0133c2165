//! The collector on loopback: real sockets and threads, datagrams built
//! by hand.

use crate::{Collector, Config, Harvest};
use flows::Attribution;
use std::net::{SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A datagram starting with these bytes makes a worker panic (a hook that
/// exists only in this crate's tests).
pub(crate) const PANIC: &[u8] = b"TOLLGATE-TEST-PANIC";

const POLICY: &str = r#"
[site]
mode = "router"
uplink = "wan0"
lan = "lan0"
capacity = { down = "1gbit", up = "1gbit" }
[realms]
default = "international"
[realms.international]
id = 1
[plans.basic]
down = { rate = "10mbit", ceil = "100mbit" }
up = { rate = "10mbit", ceil = "100mbit" }
[flows]
listen = ["127.0.0.1:2055"]
[[flows.exporters]]
address = "127.0.0.1"
[[tenants]]
id = 7
plan = "basic"
prefixes = ["100.64.7.0/24"]
measured_by = "flows"
"#;

pub(crate) fn tables() -> Arc<Attribution> {
    let p = policy::load_str("t.toml", POLICY).policy.expect("valid");
    Arc::new(Attribution::new(&p, &[], 1).unwrap())
}

pub(crate) fn config() -> Config {
    Config {
        listen: vec!["127.0.0.1:0".parse().unwrap()],
        workers: 1,
        receive_buffer: 1 << 20,
        exporters: vec!["127.0.0.1".parse().unwrap()],
        limits: flow_wire::Limits::default(),
    }
}

/// A NetFlow v5 datagram with one record of `bytes` from tenant 7 to
/// 203.0.113.1, timed now.
pub(crate) fn v5(bytes: u32) -> Vec<u8> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as u32;
    let mut d = Vec::new();
    for v in [5u16, 1] {
        d.extend(v.to_be_bytes());
    }
    for v in [100_000u32, secs, 0, 0] {
        d.extend(v.to_be_bytes());
    }
    d.extend([0u8; 4]);
    d.extend([100, 64, 7, 9, 203, 0, 113, 1, 0, 0, 0, 0]);
    d.extend([0u8; 4]);
    d.extend(1u32.to_be_bytes());
    d.extend(bytes.to_be_bytes());
    d.extend(99_000u32.to_be_bytes());
    d.extend(99_500u32.to_be_bytes());
    d.extend([0u8; 4]);
    d.extend([0, 0, 17, 0]);
    d.extend([0u8; 8]);
    d
}

pub(crate) fn send(to: SocketAddr, datagrams: &[Vec<u8>]) {
    let s = UdpSocket::bind("127.0.0.1:0").unwrap();
    for d in datagrams {
        s.send_to(d, to).unwrap();
    }
}

/// Harvests until `bytes` attributed bytes arrived (or 10 s passed);
/// returns them and the last harvest.
pub(crate) fn harvest_until(c: &mut Collector, bytes: u64) -> (u64, Harvest) {
    let start = Instant::now();
    let mut got = 0;
    loop {
        let h = c.harvest();
        got += h.samples.iter().map(|s| s.bytes).sum::<u64>();
        if got >= bytes || start.elapsed() > Duration::from_secs(10) {
            return (got, h);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_worker_that_panics_is_restarted_on_its_socket_and_loses_nothing() {
    // Issue 12, item 4: a dead worker was noticed only at stop, and what
    // it held was lost.
    let mut c = Collector::start(&config(), tables(), &[]).unwrap();
    let to = c.local_addrs()[0];
    send(to, &[v5(1000), PANIC.to_vec(), v5(2000)]);
    let (got, _) = harvest_until(&mut c, 3000);
    assert_eq!(got, 3000, "the records around the panic are all counted");
    // The worker still serves its socket.
    send(to, &[v5(4000)]);
    let (got, h) = harvest_until(&mut c, 4000);
    assert_eq!(got, 4000);
    assert_eq!(h.totals.worker_restarts, 1);
    assert_eq!(h.sockets[0].restarts, 1);
    assert!(
        h.sockets[0]
            .last_panic
            .as_deref()
            .is_some_and(|m| m.contains("injected by a test")),
        "{:?}",
        h.sockets[0]
    );
    let lo = h
        .exporters
        .iter()
        .find(|e| e.address.to_string() == "127.0.0.1")
        .unwrap();
    assert_eq!(lo.malformed, 1, "the datagram it died on is counted");
    let h = c.stop();
    assert_eq!(h.totals.worker_restarts, 1);
}

#[test]
fn a_poisoned_outbox_is_recovered_not_skipped() {
    // Issue 12, item 4: a poisoned outbox dropped samples silently (the
    // worker's publish and the harvest both skipped it).
    let mut c = Collector::start(&config(), tables(), &[]).unwrap();
    let outbox = &c.shared.outboxes[0];
    let poisoner = std::thread::scope(|s| {
        s.spawn(|| {
            let _held = outbox.lock();
            panic!("poisoning the outbox");
        })
        .join()
    });
    assert!(poisoner.is_err());
    assert!(c.shared.outboxes[0].is_poisoned());
    send(c.local_addrs()[0], &[v5(1500), v5(2500)]);
    let (got, _) = harvest_until(&mut c, 4000);
    assert_eq!(got, 4000);
}

#[test]
fn a_worker_that_dies_while_stopping_is_finished_and_its_records_kept() {
    let mut c = Collector::start(&config(), tables(), &[]).unwrap();
    send(c.local_addrs()[0], &[v5(1000), PANIC.to_vec(), v5(2000)]);
    let h = c.stop();
    assert_eq!(h.samples.iter().map(|s| s.bytes).sum::<u64>(), 3000);
    assert_eq!(h.totals.worker_restarts, 1);
}

#[test]
fn the_tap_gets_the_records_it_wants_and_the_tenants_still_get_theirs() {
    let mut c = Collector::start(&config(), tables(), &[]).unwrap();
    let to = c.local_addrs()[0];
    let victim: std::net::IpAddr = "203.0.113.1".parse().unwrap();
    let (tap, rx) = crate::Tap::new(16, Box::new(move |r| r.dst == Some(victim)));
    c.set_tap(Some(Arc::clone(&tap)));
    // Workers take the tap at their next refresh (about a quarter of a
    // second): send until the first record comes through.
    let start = Instant::now();
    let mut sent = 0;
    let first = loop {
        send(to, &[v5(1000)]);
        sent += 1;
        if let Ok(r) = rx.recv_timeout(Duration::from_millis(100)) {
            break r;
        }
        assert!(start.elapsed() < Duration::from_secs(10), "nothing tapped");
    };
    assert_eq!(first.record.dst, Some(victim));
    assert_eq!(first.exporter.to_string(), "127.0.0.1");
    // From now on every record is tapped, and still attributed.
    send(to, &[v5(2000), v5(3000)]);
    let (got, _) = harvest_until(&mut c, sent * 1000 + 5000);
    assert_eq!(
        got,
        sent * 1000 + 5000,
        "the tenant's totals are unchanged by the tap"
    );
    let mut bytes: Vec<u64> = (0..2)
        .map(|_| {
            rx.recv_timeout(Duration::from_secs(5))
                .unwrap()
                .record
                .bytes
        })
        .collect();
    bytes.sort_unstable();
    assert_eq!(bytes, vec![2000, 3000]);
    assert_eq!(tap.dropped(), 0);
    c.set_tap(None);
    c.stop();
}

#[test]
fn the_history_tap_gets_every_record_beside_the_guards_and_drops_alone_when_full() {
    let mut c = Collector::start(&config(), tables(), &[]).unwrap();
    let to = c.local_addrs()[0];
    let (guard, guard_rx) = crate::Tap::new(1024, Box::new(|_| true));
    // The history's queue holds one record: the rest are dropped and
    // counted on that tap only.
    let (history, history_rx) = crate::Tap::new(1, Box::new(|_| true));
    c.set_tap(Some(Arc::clone(&guard)));
    c.set_history_tap(Some(Arc::clone(&history)));
    let start = Instant::now();
    while history.taken() == 0 {
        send(to, &[v5(1000)]);
        std::thread::sleep(Duration::from_millis(20));
        assert!(start.elapsed() < Duration::from_secs(10), "nothing tapped");
    }
    send(to, &[v5(2000), v5(3000)]);
    let wait = Instant::now();
    while history.taken() + history.dropped() < guard.taken() || guard.taken() < 3 {
        std::thread::sleep(Duration::from_millis(10));
        assert!(wait.elapsed() < Duration::from_secs(10));
    }
    assert_eq!(history.taken(), 1);
    assert!(history.dropped() >= 2, "{}", history.dropped());
    assert_eq!(guard.dropped(), 0);
    assert_eq!(history_rx.try_iter().count(), 1);
    assert_eq!(guard_rx.try_iter().count() as u64, guard.taken());
    c.set_history_tap(None);
    c.set_tap(None);
    c.stop();
}
