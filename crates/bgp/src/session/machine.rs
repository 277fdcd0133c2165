//! The state machine itself: message framing, OPEN negotiation, timers.

use std::net::Ipv4Addr;
use std::time::Duration;

use super::{DownReason, Event, Output, SessionConfig, State};
use crate::route::Family;
use crate::wire::{
    self, code, subcode, Capability, DecodeError, Message, Notification, Open, RouteRefresh,
    WireOptions, AS_TRANS,
};

/// The hold timer while waiting for the peer's OPEN: RFC 4271 §8.2.2
/// suggests four minutes.
const OPEN_HOLD: Duration = Duration::from_secs(240);

/// Cease subcode for an administrative shutdown (RFC 4486).
const CEASE_ADMINISTRATIVE_SHUTDOWN: u8 = 2;

/// Cease subcode for a connection closed by collision resolution (RFC 4486).
pub(crate) const CEASE_CONNECTION_COLLISION: u8 = 7;

/// What was negotiated with the peer.
#[derive(Clone, Debug)]
struct Peer {
    asn: u32,
    id: Ipv4Addr,
    families: Vec<Family>,
    route_refresh: bool,
    /// FlowSpec (SAFI 133) for IPv4 and IPv6, as both sides offered it.
    flowspec: (bool, bool),
}

/// One BGP session with one peer; see the [module docs](super).
#[derive(Clone, Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    /// Received bytes that do not yet form a whole message.
    buf: Vec<u8>,
    opts: WireOptions,
    peer: Option<Peer>,
    hold: Option<Duration>,
    hold_deadline: Option<Duration>,
    keepalive_deadline: Option<Duration>,
    /// The families we offer in our OPEN (both unless the caller says).
    offered: Vec<Family>,
    /// Whether we offer FlowSpec for the offered families.
    offered_flowspec: bool,
}

impl Session {
    /// A new session in [`State::Idle`].
    pub fn new(config: SessionConfig) -> Self {
        Session {
            config,
            state: State::Idle,
            buf: Vec::new(),
            opts: WireOptions::default(),
            peer: None,
            hold: None,
            hold_deadline: None,
            keepalive_deadline: None,
            offered: vec![Family::Ipv4Unicast, Family::Ipv6Unicast],
            offered_flowspec: false,
        }
    }

    /// Also offers FlowSpec (SAFI 133) for each offered family, to send
    /// rules to the peer (`crate::flowspec`).
    pub fn with_flowspec(mut self, on: bool) -> Self {
        self.offered_flowspec = on;
        self
    }

    /// Whether FlowSpec was negotiated for IPv4 and for IPv6; both false
    /// outside Established.
    pub fn flowspec_negotiated(&self) -> (bool, bool) {
        match (&self.peer, self.state) {
            (Some(p), State::Established) => p.flowspec,
            _ => (false, false),
        }
    }

    /// Offers only these families in our OPEN (a peer configured for IPv4
    /// alone), so that the session negotiates their intersection with the
    /// peer's. An empty list keeps the default, both unicast families.
    pub fn with_families(mut self, families: &[Family]) -> Self {
        if !families.is_empty() {
            let mut f = families.to_vec();
            f.sort();
            f.dedup();
            self.offered = f;
        }
        self
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The message layout negotiated with the peer.
    pub fn wire_options(&self) -> WireOptions {
        self.opts
    }

    /// The earliest time at which [`Session::poll`] has work to do.
    pub fn next_deadline(&self) -> Option<Duration> {
        match (self.hold_deadline, self.keepalive_deadline) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// A TCP connection from the peer was accepted: send our OPEN. A
    /// session that was not idle is first taken down.
    pub fn connected(&mut self, now: Duration) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state != State::Idle {
            out.extend(self.down(DownReason::ConnectionClosed));
        }
        self.state = State::OpenSent;
        self.hold_deadline = Some(now.saturating_add(OPEN_HOLD));
        out.push(Output::Send(encode(&Message::Open(self.our_open()))));
        out
    }

    /// The connection closed under us.
    pub fn closed(&mut self, _now: Duration) -> Vec<Output> {
        if self.state == State::Idle {
            return Vec::new();
        }
        self.down(DownReason::ConnectionClosed).to_vec()
    }

    /// Ends the session with a Cease NOTIFICATION (administrative shutdown).
    pub fn stop(&mut self, _now: Duration) -> Vec<Output> {
        if self.state == State::Idle {
            return Vec::new();
        }
        self.fail(Notification {
            code: code::CEASE,
            subcode: CEASE_ADMINISTRATIVE_SHUTDOWN,
            data: Vec::new(),
        })
    }

    /// Ends the session with Cease / Connection Collision Resolution: this
    /// connection lost to another one with the same peer (see
    /// [`super::collision_survivor`]).
    pub fn close_collision(&mut self, _now: Duration) -> Vec<Output> {
        if self.state == State::Idle {
            return Vec::new();
        }
        self.fail(Notification {
            code: code::CEASE,
            subcode: CEASE_CONNECTION_COLLISION,
            data: Vec::new(),
        })
    }

    /// The peer's BGP identifier and AS, known once its OPEN arrived.
    pub fn peer_identity(&self) -> Option<(Ipv4Addr, u32)> {
        self.peer.as_ref().map(|p| (p.id, p.asn))
    }

    /// Asks the peer to resend its routes (RFC 2918), one ROUTE-REFRESH per
    /// negotiated family. Returns nothing unless the session is established
    /// and the peer announced the capability.
    pub fn request_refresh(&mut self) -> Vec<Output> {
        match (&self.peer, self.state) {
            (Some(peer), State::Established) if peer.route_refresh => peer
                .families
                .iter()
                .map(|f| {
                    let (afi, safi) = f.afi_safi();
                    Output::Send(encode(&Message::RouteRefresh(RouteRefresh { afi, safi })))
                })
                .collect(),
            _ => Vec::new(),
        }
    }

    /// Runs the timers: sends due KEEPALIVEs and ends the session if the
    /// hold timer expired.
    pub fn poll(&mut self, now: Duration) -> Vec<Output> {
        let mut out = Vec::new();
        if self.hold_deadline.is_some_and(|d| now >= d) {
            out.extend(self.fail(Notification {
                code: code::HOLD_TIMER_EXPIRED,
                subcode: subcode::UNSPECIFIC,
                data: Vec::new(),
            }));
            if let Some(Output::Event(Event::Down { reason })) = out.last_mut() {
                *reason = DownReason::HoldTimerExpired;
            }
            return out;
        }
        if let (Some(due), Some(hold)) = (self.keepalive_deadline, self.hold) {
            if now >= due {
                out.push(Output::Send(encode(&Message::Keepalive)));
                self.keepalive_deadline = Some(now.saturating_add(hold / 3));
            }
        }
        out
    }

    /// Consumes bytes received from the peer.
    pub fn handle_bytes(&mut self, now: Duration, bytes: &[u8]) -> Vec<Output> {
        let mut out = Vec::new();
        if self.state == State::Idle {
            return out;
        }
        self.buf.extend_from_slice(bytes);
        let mut pos = 0;
        loop {
            let rest = &self.buf[pos..];
            let len = match wire::frame_len(rest) {
                Err(e) => {
                    out.extend(self.fail(e.notification()));
                    return out;
                }
                Ok(Some(len)) if len <= rest.len() => len,
                Ok(_) => break,
            };
            let msg = wire::decode(&rest[..len], self.opts);
            pos += len;
            self.handle_message(now, msg, &mut out);
            if self.state == State::Idle {
                return out;
            }
        }
        // Consumed messages are dropped once per call rather than once per
        // message, so a chunk holding many small UPDATEs costs one move.
        self.buf.drain(..pos);
        out
    }

    fn handle_message(
        &mut self,
        now: Duration,
        msg: Result<Message, DecodeError>,
        out: &mut Vec<Output>,
    ) {
        let msg = match msg {
            Ok(msg) => msg,
            Err(e) => return out.extend(self.fail(e.notification())),
        };
        if let Message::Notification(n) = msg {
            return out.extend(self.down(DownReason::NotificationReceived(n)));
        }
        if let Some(hold) = self.hold {
            self.hold_deadline = Some(now.saturating_add(hold));
        }
        match (self.state, msg) {
            (State::OpenSent, Message::Open(open)) => self.receive_open(now, open, out),
            (State::OpenConfirm, Message::Keepalive) => {
                self.state = State::Established;
                if let Some(peer) = &self.peer {
                    out.push(Output::Event(Event::Established {
                        peer_as: peer.asn,
                        peer_id: peer.id,
                        four_byte_as: self.opts.four_byte_as,
                        families: peer.families.clone(),
                    }));
                }
            }
            (State::Established, Message::Update(update)) => {
                let (announced, withdrawn) = update.routes();
                if !announced.is_empty() || !withdrawn.is_empty() {
                    out.push(Output::Event(Event::Update {
                        announced,
                        withdrawn,
                    }));
                }
            }
            // The caller holds what we announce, so it is the one to send
            // it again (RFC 2918); a family we do not speak is ignored.
            (State::Established, Message::RouteRefresh(r)) => {
                let negotiated = self.peer.as_ref().map(|p| p.families.as_slice());
                if let Some(family) = Family::from_afi_safi(r.afi, r.safi)
                    .filter(|f| negotiated.is_some_and(|n| n.contains(f)))
                {
                    out.push(Output::Event(Event::RefreshRequested { family }));
                }
            }
            // KEEPALIVEs only restart the hold timer.
            (State::Established, Message::Keepalive) => {}
            (state, _) => {
                // RFC 6608 subcodes: 1 in OpenSent, 2 in OpenConfirm, 3 in
                // Established.
                let sub = match state {
                    State::OpenSent => 1,
                    State::OpenConfirm => 2,
                    _ => 3,
                };
                out.extend(self.fail(Notification {
                    code: code::FSM,
                    subcode: sub,
                    data: Vec::new(),
                }));
            }
        }
    }

    fn receive_open(&mut self, now: Duration, open: Open, out: &mut Vec<Output>) {
        if let Err(e) = self.check_open(&open) {
            return out.extend(self.fail(e.notification()));
        }
        let four_byte_as = open
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)));
        let mut families: Vec<Family> = open
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol { afi, safi } => Family::from_afi_safi(*afi, *safi),
                _ => None,
            })
            .collect();
        families.sort();
        families.dedup();
        // RFC 4760 §8: a peer that announces no multiprotocol capability at
        // all speaks IPv4 unicast only.
        let any_mp = open
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::Multiprotocol { .. }));
        if !any_mp {
            families.push(Family::Ipv4Unicast);
        }
        // A family is usable only if both sides announced it (RFC 4760 §6).
        families.retain(|f| self.offered.contains(f));
        let flow = |afi: u16, family: Family| {
            self.offered_flowspec
                && self.offered.contains(&family)
                && open.capabilities.contains(&Capability::Multiprotocol {
                    afi,
                    safi: crate::flowspec::SAFI_FLOWSPEC,
                })
        };
        let flowspec = (flow(1, Family::Ipv4Unicast), flow(2, Family::Ipv6Unicast));
        self.peer = Some(Peer {
            asn: open.peer_as(),
            id: open.bgp_id,
            families,
            route_refresh: open.capabilities.contains(&Capability::RouteRefresh),
            flowspec,
        });
        self.opts = WireOptions { four_byte_as };
        let hold = self.config.hold_time.min(open.hold_time);
        if hold == 0 {
            self.hold = None;
            self.hold_deadline = None;
            self.keepalive_deadline = None;
        } else {
            let hold = Duration::from_secs(u64::from(hold));
            self.hold = Some(hold);
            self.hold_deadline = Some(now.saturating_add(hold));
            self.keepalive_deadline = Some(now.saturating_add(hold / 3));
        }
        self.state = State::OpenConfirm;
        out.push(Output::Send(encode(&Message::Keepalive)));
    }

    /// The semantic OPEN checks of RFC 4271 §6.2; the codec already
    /// checked the syntax and the version.
    fn check_open(&self, open: &Open) -> Result<(), DecodeError> {
        if matches!(open.hold_time, 1 | 2) {
            return Err(DecodeError::open(
                subcode::open::UNACCEPTABLE_HOLD_TIME,
                "hold time of one or two seconds",
            ));
        }
        let peer_as = open.peer_as();
        if self.config.peer_as.is_some_and(|want| want != peer_as) {
            return Err(DecodeError::open(
                subcode::open::BAD_PEER_AS,
                "peer AS is not the configured one",
            ));
        }
        let same_id = open.bgp_id == self.config.router_id && peer_as == self.config.local_as;
        if open.bgp_id.is_unspecified() || same_id {
            return Err(DecodeError::open(
                subcode::open::BAD_BGP_IDENTIFIER,
                "BGP identifier is zero or ours",
            ));
        }
        Ok(())
    }

    fn our_open(&self) -> Open {
        let local = self.config.local_as;
        Open {
            my_as: u16::try_from(local).unwrap_or(AS_TRANS),
            hold_time: self.config.hold_time,
            bgp_id: self.config.router_id,
            capabilities: self
                .offered
                .iter()
                .map(|f| {
                    let (afi, safi) = f.afi_safi();
                    Capability::Multiprotocol { afi, safi }
                })
                .chain(
                    self.offered
                        .iter()
                        .filter(|_| self.offered_flowspec)
                        .map(|f| Capability::Multiprotocol {
                            afi: f.afi_safi().0,
                            safi: crate::flowspec::SAFI_FLOWSPEC,
                        }),
                )
                .chain([Capability::RouteRefresh, Capability::FourOctetAs(local)])
                .collect(),
        }
    }

    /// Sends a NOTIFICATION and goes down.
    fn fail(&mut self, mut notification: Notification) -> Vec<Output> {
        // The data echoes peer input, which can be nearly a whole message;
        // it is cut so that the NOTIFICATION itself stays within 4096 bytes.
        notification.data.truncate(wire::MAX_MESSAGE_LEN - 21);
        let bytes = encode(&Message::Notification(notification.clone()));
        let mut out = vec![Output::Send(bytes)];
        out.extend(self.down(DownReason::NotificationSent(notification)));
        out
    }

    /// Resets to Idle and reports why.
    fn down(&mut self, reason: DownReason) -> [Output; 1] {
        let offered = std::mem::take(&mut self.offered);
        let flowspec = self.offered_flowspec;
        *self = Session::new(self.config);
        self.offered = offered;
        self.offered_flowspec = flowspec;
        [Output::Event(Event::Down { reason })]
    }
}

/// Encodes a message this module built itself. These never exceed the
/// size limit (NOTIFICATION data is truncated, the OPEN is fixed), so the
/// empty fallback only exists to avoid a panic path.
fn encode(msg: &Message) -> Vec<u8> {
    msg.encode(WireOptions::default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(hold_time: u16) -> Session {
        Session::new(SessionConfig {
            local_as: 4_200_000_000,
            router_id: Ipv4Addr::new(192, 0, 2, 1),
            peer_as: None,
            hold_time,
        })
    }

    fn open(hold_time: u16, bgp_id: Ipv4Addr) -> Vec<u8> {
        let open = Open {
            my_as: 65001,
            hold_time,
            bgp_id,
            capabilities: vec![],
        };
        encode(&Message::Open(open))
    }

    #[test]
    fn our_open_uses_as_trans_for_a_four_octet_as() {
        let mut s = session(90);
        let out = s.connected(Duration::ZERO);
        let [Output::Send(bytes)] = &out[..] else {
            panic!("expected one OPEN, got {out:?}");
        };
        let Ok(Message::Open(open)) = wire::decode(bytes, WireOptions::default()) else {
            panic!("our OPEN does not decode");
        };
        assert_eq!(open.my_as, AS_TRANS);
        assert_eq!(open.peer_as(), 4_200_000_000);
        assert_eq!(s.next_deadline(), Some(OPEN_HOLD));
    }

    #[test]
    fn unacceptable_opens_are_refused() {
        for (hold, id, sub) in [
            (
                2,
                Ipv4Addr::new(10, 0, 0, 1),
                subcode::open::UNACCEPTABLE_HOLD_TIME,
            ),
            (90, Ipv4Addr::UNSPECIFIED, subcode::open::BAD_BGP_IDENTIFIER),
        ] {
            let mut s = session(90);
            s.connected(Duration::ZERO);
            let out = s.handle_bytes(Duration::ZERO, &open(hold, id));
            let Some(Output::Event(Event::Down {
                reason: DownReason::NotificationSent(n),
            })) = out.last()
            else {
                panic!("expected Down, got {out:?}");
            };
            assert_eq!((n.code, n.subcode), (code::OPEN_MESSAGE, sub));
            assert_eq!(s.state(), State::Idle);
        }
    }

    #[test]
    fn zero_hold_time_disables_timers_and_ipv4_is_implied() {
        let mut s = session(0);
        s.connected(Duration::ZERO);
        s.handle_bytes(Duration::ZERO, &open(90, Ipv4Addr::new(10, 0, 0, 1)));
        let out = s.handle_bytes(Duration::ZERO, &encode(&Message::Keepalive));
        let [Output::Event(Event::Established {
            families,
            four_byte_as,
            ..
        })] = &out[..]
        else {
            panic!("expected Established, got {out:?}");
        };
        assert_eq!(families, &vec![Family::Ipv4Unicast]);
        assert!(!four_byte_as);
        assert_eq!(s.next_deadline(), None);
        assert!(s.poll(Duration::MAX).is_empty());
        assert!(s.request_refresh().is_empty(), "peer lacks route refresh");
        let out = s.stop(Duration::ZERO);
        assert!(matches!(
            &out[..],
            [Output::Send(_), Output::Event(Event::Down { .. })]
        ));
    }

    #[test]
    fn offered_families_limit_the_negotiated_ones_and_refresh_is_reported() {
        let mut s = session(90).with_families(&[Family::Ipv4Unicast]);
        let out = s.connected(Duration::ZERO);
        let [Output::Send(bytes)] = &out[..] else {
            panic!("expected one OPEN, got {out:?}");
        };
        let Ok(Message::Open(ours)) = wire::decode(bytes, WireOptions::default()) else {
            panic!("our OPEN does not decode");
        };
        assert!(ours
            .capabilities
            .contains(&Capability::Multiprotocol { afi: 1, safi: 1 }));
        assert!(!ours
            .capabilities
            .contains(&Capability::Multiprotocol { afi: 2, safi: 1 }));
        let theirs = Open {
            my_as: 65001,
            hold_time: 90,
            bgp_id: Ipv4Addr::new(10, 0, 0, 1),
            capabilities: vec![
                Capability::Multiprotocol { afi: 1, safi: 1 },
                Capability::Multiprotocol { afi: 2, safi: 1 },
                Capability::RouteRefresh,
            ],
        };
        s.handle_bytes(Duration::ZERO, &encode(&Message::Open(theirs)));
        let out = s.handle_bytes(Duration::ZERO, &encode(&Message::Keepalive));
        let [Output::Event(Event::Established { families, .. })] = &out[..] else {
            panic!("expected Established, got {out:?}");
        };
        assert_eq!(families, &vec![Family::Ipv4Unicast]);
        let refresh = |afi, safi| encode(&Message::RouteRefresh(RouteRefresh { afi, safi }));
        let out = s.handle_bytes(Duration::ZERO, &refresh(1, 1));
        assert_eq!(
            out,
            vec![Output::Event(Event::RefreshRequested {
                family: Family::Ipv4Unicast
            })]
        );
        assert!(
            s.handle_bytes(Duration::ZERO, &refresh(2, 1)).is_empty(),
            "IPv6 was not negotiated"
        );
        // A new connection keeps the offered families.
        s.stop(Duration::ZERO);
        let out = s.connected(Duration::ZERO);
        let [Output::Send(bytes)] = &out[..] else {
            panic!("expected one OPEN, got {out:?}");
        };
        let Ok(Message::Open(again)) = wire::decode(bytes, WireOptions::default()) else {
            panic!("our OPEN does not decode");
        };
        assert_eq!(again.capabilities, ours.capabilities);
    }

    #[test]
    fn a_collision_loser_sends_cease_7_and_goes_down() {
        let mut s = session(90);
        s.connected(Duration::ZERO);
        assert_eq!(s.peer_identity(), None);
        s.handle_bytes(Duration::ZERO, &open(90, Ipv4Addr::new(203, 0, 113, 9)));
        assert_eq!(s.state(), State::OpenConfirm);
        assert_eq!(
            s.peer_identity(),
            Some((Ipv4Addr::new(203, 0, 113, 9), 65001))
        );
        let out = s.close_collision(Duration::ZERO);
        let [Output::Send(bytes), Output::Event(Event::Down { .. })] = &out[..] else {
            panic!("expected a NOTIFICATION and Down, got {out:?}");
        };
        let Ok(Message::Notification(n)) = wire::decode(bytes, WireOptions::default()) else {
            panic!("not a NOTIFICATION");
        };
        assert_eq!(
            (n.code, n.subcode),
            (code::CEASE, CEASE_CONNECTION_COLLISION)
        );
        assert_eq!(s.state(), State::Idle);
        assert!(s.close_collision(Duration::ZERO).is_empty());
    }
}
