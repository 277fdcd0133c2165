//! The guard's BGP rungs carried out: the `rtbh` rung's routes, announced
//! through tollgate's own speaker to the policy's `[bgp]` peers that have
//! `announce = true`.
//!
//! Shared by whatever runs the ladder (`tollgate guard watch` today, the
//! daemon later): it owns a speaker on its own tokio runtime, so a caller
//! that is a plain loop needs no runtime of its own, and its calls return
//! at once (the sessions send the UPDATEs on their own tasks).
//!
//! Several rungs may hold one prefix (an address attacked in both
//! directions): the route stays until the last of them ends. The speaker
//! keeps what is announced and sends it again whenever a session comes
//! back, so a peer that restarts, or one that was down when the rung
//! started, gets the route; on a restart of tollgate the ladder's
//! `Restore` decisions announce the routes again.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;

use bgp_speaker::flowspec::{fragment, tcp, Bitmask, Component, Numeric, Rule};
use bgp_speaker::FlowRoute;
use bgp_speaker::{AddressFamily, Announcement, PeerConfig, Speaker, SpeakerConfig, SpeakerHandle};
use guard::{Action, Direction, FlowAction, FlowSpecRule, Step, Target};
use net_types::{Prefix, RealmId};

use crate::error::{Error, Result};

/// Who holds a prefix or a rule: one rung of one target in one direction.
type Holder = (Target, Direction);

/// The speaker that announces the guard's routes, and who holds each.
pub struct BgpRungs {
    runtime: tokio::runtime::Runtime,
    handle: Option<SpeakerHandle>,
    /// The settings it runs with.
    config: SpeakerConfig,
    holders: BTreeMap<Prefix, BTreeSet<Holder>>,
    /// Who holds each FlowSpec rule, by its NLRI bytes.
    flow_holders: BTreeMap<Vec<u8>, BTreeSet<Holder>>,
}

/// The speaker's settings from the policy's `[bgp]`.
pub fn speaker_config(bgp: &policy::Bgp) -> SpeakerConfig {
    SpeakerConfig {
        local_as: bgp.local_as,
        router_id: bgp.router_id,
        listen: bgp.listen.clone(),
        hold_time: bgp.hold_time,
        peers: bgp
            .peers
            .iter()
            .map(|p| PeerConfig {
                hold_time: p.hold_time,
                name: p.name.clone(),
                port: p.port,
                passive: p.passive,
                families: p
                    .families
                    .iter()
                    .map(|f| match f {
                        policy::BgpFamily::Ipv4 => AddressFamily::Ipv4,
                        policy::BgpFamily::Ipv6 => AddressFamily::Ipv6,
                    })
                    .collect(),
                announce: p.announce,
                flowspec: p.flowspec,
                next_hop_v4: p.next_hop_v4,
                next_hop_v6: p.next_hop_v6,
                ..PeerConfig::new(p.address, p.remote_as)
            })
            .collect(),
    }
}

impl BgpRungs {
    /// Binds the listen addresses and starts the sessions (active peers are
    /// connected to at once).
    pub fn start(config: SpeakerConfig) -> Result<BgpRungs> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bgp")
            .enable_all()
            .build()
            .map_err(|e| Error::runtime(format!("cannot start the BGP runtime: {e}")))?;
        // Routes the peers send are not used here; the table only has to
        // exist for the speaker to take them.
        let rules = routes::RealmRules::new(vec![], (RealmId(0), "default".into()));
        let (tx, _) = tokio::sync::mpsc::unbounded_channel();
        let handle = runtime.block_on(async {
            let speaker = Speaker::bind(config.clone()).await.map_err(|e| {
                Error::runtime(format!("BGP: {e}"))
                    .hint("change [bgp] `listen`, or `listen = []` with active peers")
            })?;
            let addrs: Vec<SocketAddr> = speaker.local_addrs();
            tracing::info!(?addrs, "BGP speaker started for the rtbh rung");
            Ok::<_, Error>(speaker.start(routes::RouteTable::new(rules), tx))
        })?;
        Ok(BgpRungs {
            runtime,
            handle: Some(handle),
            config,
            holders: BTreeMap::new(),
            flow_holders: BTreeMap::new(),
        })
    }

    fn handle(&self) -> Option<&SpeakerHandle> {
        self.handle.as_ref()
    }

    /// The settings it runs with.
    pub fn config(&self) -> &SpeakerConfig {
        &self.config
    }

    /// Starts the speaker again with `config` (a reload changed `[bgp]`):
    /// the old sessions end (Cease), the new speaker binds and connects,
    /// and every route and rule the rungs hold is announced again, to the
    /// peers of the new settings. The speaker has no way to change its
    /// peers in place, so peers in both settings see their session end
    /// and open again (a second or so without the routes).
    pub fn restart(&mut self, config: SpeakerConfig) -> Result<()> {
        let routes = self.handle().map(|h| h.announcements()).unwrap_or_default();
        let flows = self.handle().map(|h| h.flows()).unwrap_or_default();
        self.stop();
        let next = BgpRungs::start(config)?;
        let BgpRungs {
            runtime,
            handle,
            config,
            ..
        } = next;
        // The old runtime goes now, its tasks already ended by `stop`.
        self.runtime = runtime;
        self.handle = handle;
        self.config = config;
        if let Some(h) = self.handle() {
            for r in routes {
                h.announce(r);
            }
            for f in flows {
                h.announce_flow(f);
            }
        }
        tracing::info!(
            routes = self.holders.len(),
            rules = self.flow_holders.len(),
            "BGP speaker started again with the new [bgp]; what the rungs hold is announced again"
        );
        Ok(())
    }

    /// Ends the sessions (Cease), waiting at most 3 s.
    fn stop(&mut self) {
        if let Some(h) = self.handle.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(3), h.shutdown()).await
            });
        }
    }

    /// Puts an `rtbh` step's routes or a `flowspec` step's rules in
    /// place. Returns false (and does nothing) for a step of another rung.
    pub fn apply(&mut self, step: &Step) -> bool {
        if let Action::Flowspec { .. } = step.action {
            let holder = (step.target.clone(), step.direction);
            for r in &step.flowspec {
                self.hold_flow(holder.clone(), flow_route(r));
            }
            return true;
        }
        let Action::Rtbh {
            communities,
            next_hop,
        } = &step.action
        else {
            return false;
        };
        let route = Announcement {
            next_hop: *next_hop,
            communities: communities
                .iter()
                .map(|c| u32::from(c.0) << 16 | u32::from(c.1))
                .collect(),
            ..Announcement::new(Prefix::V4(std::net::Ipv4Addr::UNSPECIFIED, 0))
        };
        self.hold(
            (step.target.clone(), step.direction),
            &step.prefixes,
            &route,
        );
        true
    }

    /// Takes an `rtbh` step's routes away, each once no other rung holds
    /// it. Returns false for a step of another rung.
    pub fn remove(&mut self, step: &Step) -> bool {
        if let Action::Flowspec { .. } = step.action {
            let holder = (step.target.clone(), step.direction);
            for r in &step.flowspec {
                self.release_flow(&holder, &flow_route(r));
            }
            return true;
        }
        if !matches!(step.action, Action::Rtbh { .. }) {
            return false;
        }
        self.release(&(step.target.clone(), step.direction), &step.prefixes);
        true
    }

    /// Announces `route`'s attributes for each prefix, held by `holder`.
    fn hold(&mut self, holder: Holder, prefixes: &[Prefix], route: &Announcement) {
        let Some(handle) = self.handle.as_ref() else {
            return;
        };
        for &prefix in prefixes {
            let prefix = prefix.network();
            self.holders
                .entry(prefix)
                .or_default()
                .insert(holder.clone());
            let route = Announcement {
                prefix,
                ..route.clone()
            };
            if handle.announce(route) {
                tracing::info!(%prefix, target = %holder.0, "rtbh route announced");
            }
        }
    }

    /// Withdraws each prefix that no holder but `holder` holds.
    fn release(&mut self, holder: &Holder, prefixes: &[Prefix]) {
        for &prefix in prefixes {
            let prefix = prefix.network();
            let last = match self.holders.get_mut(&prefix) {
                Some(h) => {
                    h.remove(holder);
                    h.is_empty()
                }
                None => true,
            };
            if !last {
                tracing::info!(%prefix, "rtbh route kept: another rung still holds it");
                continue;
            }
            self.holders.remove(&prefix);
            if self.handle().is_some_and(|h| h.withdraw(prefix)) {
                tracing::info!(%prefix, target = %holder.0, "rtbh route withdrawn");
            }
        }
    }

    fn hold_flow(&mut self, holder: Holder, route: FlowRoute) {
        let (Some(handle), Some(key)) = (self.handle.as_ref(), route.key()) else {
            tracing::error!(error = %route.rule.encode_nlri().err().map_or(String::new(), |e| e.to_string()), components = route.rule.components.len(), "a FlowSpec rule that cannot be encoded; not announced");
            return;
        };
        self.flow_holders.entry(key).or_default().insert(holder);
        if handle.announce_flow(route) {
            tracing::info!("flowspec rule announced");
        }
    }

    fn release_flow(&mut self, holder: &Holder, route: &FlowRoute) {
        let Some(key) = route.key() else { return };
        let last = match self.flow_holders.get_mut(&key) {
            Some(h) => {
                h.remove(holder);
                h.is_empty()
            }
            None => true,
        };
        if !last {
            return;
        }
        self.flow_holders.remove(&key);
        if self.handle().is_some_and(|h| h.withdraw_flow(&route.rule)) {
            tracing::info!("flowspec rule withdrawn");
        }
    }

    /// Ends the sessions (Cease). The peers drop our routes then, as BGP
    /// does with every route of a session that ends; they come back when
    /// the ladder is restored.
    pub fn shutdown(mut self) {
        self.stop();
    }
}

/// The guard's rule as FlowSpec components (RFC 8955 §4.2): the prefix,
/// the protocol, the amplifier's source ports, the packet length range,
/// SYN without ACK, fragments; its action as a traffic rate in bytes per
/// second (0 discards).
pub fn flow_route(r: &FlowSpecRule) -> FlowRoute {
    let mut c = Vec::new();
    if let Some(p) = r.destination {
        c.push(Component::Destination(p));
    }
    if let Some(p) = r.source {
        c.push(Component::Source(p));
    }
    if let Some(proto) = r.protocol {
        c.push(Component::Protocol(vec![Numeric::eq(u64::from(proto))]));
    }
    if !r.source_ports.is_empty() {
        c.push(Component::SourcePort(
            r.source_ports
                .iter()
                .map(|&p| Numeric::eq(u64::from(p)))
                .collect(),
        ));
    }
    if let Some((lo, hi)) = r.packet_len {
        c.push(Component::PacketLength(vec![
            Numeric::ge(u64::from(lo)),
            Numeric::and_le(u64::from(hi)),
        ]));
    }
    if r.tcp_syn {
        // SYN set AND ACK not set: the first packet of a handshake.
        c.push(Component::TcpFlags(vec![
            Bitmask::all(tcp::SYN),
            Bitmask {
                and: true,
                not: true,
                ..Bitmask::any(tcp::ACK)
            },
        ]));
    }
    if r.fragments {
        c.push(Component::Fragment(vec![Bitmask::any(fragment::IS_F)]));
    }
    let rate = match r.action {
        FlowAction::Discard => 0.0,
        // bit/s to bytes/s; an f32 keeps 24 bits of precision, far finer
        // than any policer.
        FlowAction::RateLimit(rate) => rate.bytes_per_second() as f32,
    };
    FlowRoute {
        rule: Rule { components: c },
        rate,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn rungs() -> BgpRungs {
        BgpRungs::start(SpeakerConfig {
            local_as: 65000,
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            listen: vec![SocketAddr::from(([127, 0, 0, 1], 0))],
            hold_time: 90,
            peers: Vec::new(),
        })
        .unwrap()
    }

    #[test]
    fn a_prefix_held_by_two_rungs_stays_until_both_end() {
        let mut r = rungs();
        let victim = Target::Host("203.0.113.7".parse().unwrap());
        let (a, b) = ((victim.clone(), Direction::In), (victim, Direction::Out));
        let prefixes = [Prefix::parse("203.0.113.7/32").unwrap()];
        let route = Announcement {
            communities: vec![bgp_speaker::BLACKHOLE],
            ..Announcement::new(prefixes[0])
        };
        r.hold(a.clone(), &prefixes, &route);
        r.hold(b.clone(), &prefixes, &route);
        // A restore of a rung already in place changes nothing.
        r.hold(a.clone(), &prefixes, &route);
        let announced = |r: &BgpRungs| r.handle().unwrap().announcements();
        assert_eq!(announced(&r), vec![route]);
        r.release(&a, &prefixes);
        assert_eq!(announced(&r).len(), 1, "the other direction holds it");
        r.release(&b, &prefixes);
        assert!(announced(&r).is_empty());
        r.shutdown();
    }

    #[test]
    fn a_syn_flood_rule_becomes_flowspec_components() {
        let rule = FlowSpecRule {
            destination: Some(Prefix::parse("203.0.113.7/32").unwrap()),
            source: None,
            protocol: Some(6),
            source_ports: vec![],
            packet_len: Some((40, 60)),
            tcp_syn: true,
            fragments: false,
            action: FlowAction::Discard,
        };
        let f = flow_route(&rule);
        assert_eq!(f.rate, 0.0);
        // dst 203.0.113.7/32, proto == 6, SYN and not ACK, length 40..=60.
        assert_eq!(
            f.rule.encode_nlri().unwrap(),
            [
                0x13, 0x01, 0x20, 203, 0, 113, 7, 0x03, 0x81, 6, 0x09, 0x01, 0x02, 0xc2, 0x10,
                0x0a, 0x03, 40, 0xc5, 60
            ]
        );
        let limited = FlowSpecRule {
            action: FlowAction::RateLimit(net_types::Rate::from_bps(8_000_000).unwrap()),
            ..rule
        };
        assert_eq!(flow_route(&limited).rate, 1_000_000.0);
    }
}
