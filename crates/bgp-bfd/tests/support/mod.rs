//! Shared helpers for the session tests: packet builders, and [`Pair`], two endpoints
//! wired back to back over an in-memory link with a virtual clock (after quinn-proto's
//! test `Pair`). The link can be cut in either direction and has a fixed latency.
#![allow(dead_code)]

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr};
use std::num::{NonZeroU32, NonZeroU8};
use std::time::{Duration, Instant};

use bgp_bfd::{
    Addresses, ControlPacket, Diagnostic, Endpoint, Hops, PacketInfo, Session, SessionConfig,
    SessionEvent, SessionId, State,
};

pub const ADDR_A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
pub const ADDR_B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// 300 ms x 3, single hop, without jitter so intervals are exact.
pub fn config() -> SessionConfig {
    let mut c = SessionConfig::new(Hops::Single);
    c.jitter_seed = None;
    c
}

pub fn discr(v: u32) -> NonZeroU32 {
    NonZeroU32::new(v).expect("non-zero test discriminator")
}

/// A packet from the peer (discriminator 0x77) in `state`, asking for 300 ms both ways.
pub fn peer_packet(state: State, your_discriminator: u32) -> ControlPacket {
    ControlPacket {
        diagnostic: Diagnostic::NoDiagnostic,
        state,
        poll_bit: false,
        final_bit: false,
        control_plane_independent: false,
        demand: false,
        authentication: None,
        detect_mult: NonZeroU8::new(3).expect("3"),
        my_discriminator: discr(0x77),
        your_discriminator,
        desired_min_tx_us: 300_000,
        required_min_rx_us: 300_000,
        required_min_echo_rx_us: 0,
    }
}

/// Everything `s` sends now, decoded.
pub fn sent(s: &mut Session) -> Vec<ControlPacket> {
    std::iter::from_fn(|| s.poll_transmit())
        .map(|e| ControlPacket::decode(e.as_bytes()).expect("we send valid packets"))
        .collect()
}

pub fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// The state changes among `events`, as (from, to).
pub fn changes(events: &[SessionEvent]) -> Vec<(State, State)> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::StateChanged { from, to, .. } => Some((*from, *to)),
            _ => None,
        })
        .collect()
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }
}

/// Two endpoints with one session each, A at 10.0.0.1 and B at 10.0.0.2, linked back
/// to back.
pub struct Pair {
    pub now: Instant,
    pub a: Endpoint,
    pub b: Endpoint,
    pub a_id: SessionId,
    pub b_id: SessionId,
    /// One-way delay of every packet.
    pub latency: Duration,
    /// Packets from A reach B (and the other way round).
    pub a_to_b: bool,
    pub b_to_a: bool,
    /// TTL the packets arrive with.
    pub ttl: u8,
    in_flight: VecDeque<(Instant, Side, Vec<u8>)>,
    /// Every state change and timer change, with when and where it happened.
    pub log: Vec<(Instant, Side, SessionEvent)>,
    /// Every packet handed to the link, decoded.
    pub wire: Vec<(Instant, Side, ControlPacket)>,
    /// Datagrams discarded on arrival.
    pub discards: Vec<(Instant, Side, bgp_bfd::Discard)>,
}

impl Pair {
    pub fn new(config_a: SessionConfig, config_b: SessionConfig) -> Pair {
        let now = Instant::now();
        let mut a = Endpoint::new(1);
        let mut b = Endpoint::new(2);
        let a_id = a
            .add_session(now, addresses(ADDR_B, ADDR_A, &config_a), config_a)
            .expect("A's session");
        let b_id = b
            .add_session(now, addresses(ADDR_A, ADDR_B, &config_b), config_b)
            .expect("B's session");
        Pair {
            now,
            a,
            b,
            a_id,
            b_id,
            latency: ms(1),
            a_to_b: true,
            b_to_a: true,
            ttl: 255,
            in_flight: VecDeque::new(),
            log: Vec::new(),
            wire: Vec::new(),
            discards: Vec::new(),
        }
    }

    pub fn endpoint(&mut self, side: Side) -> &mut Endpoint {
        match side {
            Side::A => &mut self.a,
            Side::B => &mut self.b,
        }
    }

    pub fn session(&self, side: Side) -> &Session {
        let s = match side {
            Side::A => self.a.session(self.a_id),
            Side::B => self.b.session(self.b_id),
        };
        s.expect("the pair's session exists")
    }

    pub fn state(&self, side: Side) -> State {
        self.session(side).state()
    }

    /// Runs a command on one side's session and collects its output.
    pub fn command(&mut self, side: Side, f: impl FnOnce(&mut Session, Instant)) {
        let now = self.now;
        let id = match side {
            Side::A => self.a_id,
            Side::B => self.b_id,
        };
        self.endpoint(side)
            .with_session(id, |s| f(s, now))
            .expect("the pair's session exists");
        self.drain();
    }

    /// Replaces one side's session with a new one (a restarted peer: new discriminator).
    pub fn restart(&mut self, side: Side, config: SessionConfig) {
        let now = self.now;
        let (local, peer) = match side {
            Side::A => (ADDR_A, ADDR_B),
            Side::B => (ADDR_B, ADDR_A),
        };
        let old = match side {
            Side::A => self.a_id,
            Side::B => self.b_id,
        };
        let ep = self.endpoint(side);
        ep.remove_session(old);
        let id = ep
            .add_session(now, addresses(peer, local, &config), config)
            .expect("restarted session");
        match side {
            Side::A => self.a_id = id,
            Side::B => self.b_id = id,
        }
        self.drain();
    }

    fn drain(&mut self) {
        for side in [Side::A, Side::B] {
            let now = self.now;
            let latency = self.latency;
            let up = match side {
                Side::A => self.a_to_b,
                Side::B => self.b_to_a,
            };
            let mut out = Vec::new();
            let mut evs = Vec::new();
            {
                let ep = self.endpoint(side);
                while let Some(t) = ep.poll_transmit() {
                    assert_eq!(t.ttl, 255, "RFC 5881 5: always sent with TTL 255");
                    out.push(t.packet.as_bytes().to_vec());
                }
                while let Some((_, e)) = ep.poll_event() {
                    evs.push(e);
                }
            }
            for bytes in out {
                let p = ControlPacket::decode(&bytes).expect("we send valid packets");
                assert!(
                    !(p.poll_bit && p.final_bit),
                    "RFC 5880 6.8.7: never P and F"
                );
                self.wire.push((now, side, p));
                if up {
                    self.in_flight
                        .push_back((now + latency, side.other(), bytes));
                }
            }
            for e in evs {
                self.log.push((now, side, e));
            }
        }
    }

    /// Advances to the next timer or delivery, at most to `limit`; false if nothing was
    /// due before `limit`.
    fn step(&mut self, limit: Instant) -> bool {
        let next = [
            self.a.poll_timeout(),
            self.b.poll_timeout(),
            self.in_flight.front().map(|(t, _, _)| *t),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next.filter(|t| *t <= limit) else {
            self.now = self.now.max(limit);
            return false;
        };
        self.now = self.now.max(next);
        while self
            .in_flight
            .front()
            .is_some_and(|(t, _, _)| *t <= self.now)
        {
            let Some((_, to, bytes)) = self.in_flight.pop_front() else {
                break;
            };
            let now = self.now;
            let info = PacketInfo {
                source: match to {
                    Side::A => ADDR_B,
                    Side::B => ADDR_A,
                },
                destination: Some(match to {
                    Side::A => ADDR_A,
                    Side::B => ADDR_B,
                }),
                interface: Some(2),
                ttl: self.ttl,
                multihop: self.session(to).config().hops.is_multihop(),
            };
            if let Err(e) = self.endpoint(to).handle_datagram(now, &info, &bytes) {
                self.discards.push((now, to, e));
            }
            self.drain();
        }
        let now = self.now;
        self.a.handle_timeout(now);
        self.b.handle_timeout(now);
        self.drain();
        true
    }

    pub fn run_for(&mut self, d: Duration) {
        let limit = self.now + d;
        while self.step(limit) {}
    }

    /// Runs until `cond` holds (checked after every step) or `d` passed; the time it
    /// took, or `None`.
    pub fn run_until(
        &mut self,
        d: Duration,
        mut cond: impl FnMut(&Pair) -> bool,
    ) -> Option<Duration> {
        let start = self.now;
        let limit = self.now + d;
        loop {
            if cond(self) {
                return Some(self.now - start);
            }
            if !self.step(limit) {
                return cond(self).then(|| self.now - start);
            }
        }
    }

    pub fn both_up(&self) -> bool {
        self.state(Side::A) == State::Up && self.state(Side::B) == State::Up
    }

    /// Cuts (or restores) both directions.
    pub fn set_link(&mut self, up: bool) {
        self.a_to_b = up;
        self.b_to_a = up;
        if !up {
            self.in_flight.clear();
        }
    }

    /// State changes of `side` logged since `since`.
    pub fn changes_since(
        &self,
        side: Side,
        since: Instant,
    ) -> Vec<(State, State, bgp_bfd::Reason)> {
        self.log
            .iter()
            .filter(|(t, s, _)| *t >= since && *s == side)
            .filter_map(|(_, _, e)| match e {
                SessionEvent::StateChanged { from, to, reason } => Some((*from, *to, *reason)),
                _ => None,
            })
            .collect()
    }

    /// Packets `side` put on the wire since `since`.
    pub fn wire_since(&self, side: Side, since: Instant) -> Vec<(Instant, ControlPacket)> {
        self.wire
            .iter()
            .filter(|(t, s, _)| *t >= since && *s == side)
            .map(|(t, _, p)| (*t, *p))
            .collect()
    }
}

fn addresses(peer: IpAddr, local: IpAddr, config: &SessionConfig) -> Addresses {
    Addresses {
        peer,
        local: Some(local),
        interface: (!config.hops.is_multihop()).then_some(2),
    }
}
