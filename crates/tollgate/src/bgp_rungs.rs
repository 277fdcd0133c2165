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

use bgp_speaker::{AddressFamily, Announcement, PeerConfig, Speaker, SpeakerConfig, SpeakerHandle};
use guard::{Action, Direction, Step, Target};
use net_types::{Prefix, RealmId};

use crate::error::{Error, Result};

/// Who holds a prefix: one rung of one target in one direction.
type Holder = (Target, Direction);

/// The speaker that announces the guard's routes, and who holds each.
pub struct BgpRungs {
    runtime: tokio::runtime::Runtime,
    handle: Option<SpeakerHandle>,
    holders: BTreeMap<Prefix, BTreeSet<Holder>>,
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
            let speaker = Speaker::bind(config).await.map_err(|e| {
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
            holders: BTreeMap::new(),
        })
    }

    fn handle(&self) -> Option<&SpeakerHandle> {
        self.handle.as_ref()
    }

    /// Puts an `rtbh` step's routes in place. Returns false (and does
    /// nothing) for a step of another rung.
    pub fn apply(&mut self, step: &Step) -> bool {
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

    /// Ends the sessions (Cease). The peers drop our routes then, as BGP
    /// does with every route of a session that ends; they come back when
    /// the ladder is restored.
    pub fn shutdown(mut self) {
        if let Some(h) = self.handle.take() {
            let _ = self.runtime.block_on(async {
                tokio::time::timeout(Duration::from_secs(3), h.shutdown()).await
            });
        }
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
}
