//! What observation reports about the host's devices, against the real
//! kernel in a private network namespace: bridges and their ports (so that
//! a bridge named as the uplink can be refused), and device indexes (so
//! that a vif deleted and created again can be told from one that stayed).
//!
//! Needs root and iproute2 (see `common` for running without root).

mod common;

use common::{one_at_a_time, Netns};
use linux_dataplane::Dataplane;
use net_types::IfName;
use plan::Plan;
use std::collections::{BTreeMap, BTreeSet};

fn dev(name: &str) -> IfName {
    IfName::new(name).unwrap()
}

/// A bridge with two ports and an empty bridge: each is reported with
/// exactly its ports, and no other device is. (This kernel has no bond,
/// team or VRF devices, the other kinds of master, to check that they are
/// left out.)
#[test]
fn bridges_are_observed_with_their_ports() {
    let _k = one_at_a_time();
    let Some(ns) = Netns::new("bridges") else {
        return;
    };
    ns.ip(&["link", "add", "v2", "type", "veth", "peer", "name", "v3"]);
    ns.ip(&["link", "add", "br0", "type", "bridge"]);
    ns.ip(&["link", "add", "br1", "type", "bridge"]);
    ns.ip(&["link", "set", "v0", "master", "br0"]);
    ns.ip(&["link", "set", "v2", "master", "br0"]);
    let o = ns.inside(|| {
        Dataplane::open()
            .unwrap()
            .observe(&Plan::default())
            .unwrap()
    });
    assert_eq!(
        o.bridges,
        BTreeMap::from([
            (dev("br0"), BTreeSet::from([dev("v0"), dev("v2")])),
            (dev("br1"), BTreeSet::new()),
        ])
    );
}

/// A device deleted and created again under the same name has a new index,
/// and observation reports it: how a vif left offline is told from the
/// same VM's new vif.
#[test]
fn a_device_created_again_has_a_new_index() {
    let _k = one_at_a_time();
    let Some(ns) = Netns::new("ifindex") else {
        return;
    };
    let observe = || {
        ns.inside(|| {
            Dataplane::open()
                .unwrap()
                .observe(&Plan::default())
                .unwrap()
                .ifindex
        })
    };
    let before = observe();
    ns.ip(&["link", "del", "v0"]);
    let gone = observe();
    assert!(!gone.contains_key(&dev("v0")) && !gone.contains_key(&dev("v1")));
    ns.ip(&["link", "add", "v0", "type", "veth", "peer", "name", "v1"]);
    let after = observe();
    assert_ne!(before[&dev("v0")], after[&dev("v0")]);
}
