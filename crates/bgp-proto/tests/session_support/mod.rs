//! Shared helpers for the session tests: a virtual clock, message builders, and [`Pair`],
//! two sessions wired back to back in memory (after quinn-proto's test `Pair`).
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::str::FromStr;
use std::time::{Duration, Instant};

use bgp_proto::session::{DownReason, Session, SessionConfig, SessionEvent, State};
use bgp_proto::wire::{decode_message, encode_message, frame_len, Inbound};
use bgp_proto::{
    AsPath, AsSegment, Capability, CodecContext, Message, Nlri, Notification, Open, Origin,
    PathAttributes, SegmentType, Update,
};
use bytes::{Bytes, BytesMut};

pub const ID_A: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
pub const ID_B: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);
pub const AS_A: u32 = 65001;
pub const AS_B: u32 = 65002;

pub fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// A's configuration towards B (eBGP), without jitter so timer values are exact.
pub fn config_a() -> SessionConfig {
    let mut c = SessionConfig::new(AS_A, ID_A, Some(AS_B));
    c.jitter_seed = None;
    c
}

/// B's configuration towards A, passive, without jitter.
pub fn config_b() -> SessionConfig {
    let mut c = SessionConfig::new(AS_B, ID_B, Some(AS_A));
    c.passive = true;
    c.jitter_seed = None;
    c
}

/// Encode one message with `ctx`.
pub fn encode(msg: &Message, ctx: &CodecContext) -> Bytes {
    let mut out = BytesMut::new();
    encode_message(msg, ctx, &mut out).expect("test message encodes");
    out.freeze()
}

pub fn encode_default(msg: &Message) -> Bytes {
    encode(msg, &CodecContext::default())
}

/// The OPEN B would send to A, as the config builds it.
pub fn open_from_b() -> Open {
    config_b().local_open()
}

pub fn open_bytes_from_b() -> Bytes {
    encode_default(&Message::Open(open_from_b()))
}

pub fn keepalive_bytes() -> Bytes {
    encode_default(&Message::Keepalive)
}

pub fn notification_bytes(code: u8, subcode: u8) -> Bytes {
    encode_default(&Message::Notification(Notification {
        code,
        subcode,
        data: Bytes::new(),
    }))
}

/// An ordinary eBGP UPDATE from `asn` announcing `prefix`.
pub fn update(asn: u32, prefix: &str) -> Update {
    Update {
        attributes: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath {
                segments: vec![AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![asn],
                }],
            }),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ..PathAttributes::default()
        },
        nlri: vec![Nlri::new(
            ipnet::IpNet::from_str(prefix).expect("test prefix"),
        )],
        ..Update::default()
    }
}

/// Every event queued on `s`.
pub fn events(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

/// Split a byte stream into decoded messages (with `ctx`).
pub fn decode_stream(bytes: &[u8], ctx: &CodecContext) -> Vec<Inbound> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let len = frame_len(rest, 65535)
            .expect("well framed")
            .expect("whole message");
        let (frame, tail) = rest.split_at(len);
        out.push(decode_message(frame, ctx).expect("decodes"));
        rest = tail;
    }
    out
}

/// Everything `s` wants to send, decoded with its current codec context.
pub fn sent(s: &mut Session) -> Vec<Inbound> {
    let ctx = s.negotiated().map(|n| n.codec.clone()).unwrap_or_default();
    let bytes: Vec<u8> = std::iter::from_fn(|| s.poll_transmit())
        .flat_map(|b| b.to_vec())
        .collect();
    decode_stream(&bytes, &ctx)
}

/// (code, subcode) of the NOTIFICATIONs among `msgs`.
pub fn notifications(msgs: &[Inbound]) -> Vec<(u8, u8)> {
    msgs.iter()
        .filter_map(|m| match m {
            Inbound::Notification(n) => Some((n.code, n.subcode)),
            _ => None,
        })
        .collect()
}

/// A short name for a message, for comparing sequences.
pub fn kind(m: &Inbound) -> &'static str {
    match m {
        Inbound::Open(_) => "OPEN",
        Inbound::Update(_) => "UPDATE",
        Inbound::Notification(_) => "NOTIFICATION",
        Inbound::Keepalive => "KEEPALIVE",
        Inbound::RouteRefresh(_) => "ROUTE-REFRESH",
    }
}

pub fn kinds(msgs: &[Inbound]) -> Vec<&'static str> {
    msgs.iter().map(kind).collect()
}

pub fn downs(evs: &[SessionEvent]) -> Vec<DownReason> {
    evs.iter()
        .filter_map(|e| match e {
            SessionEvent::Down(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

pub fn has_capability(open: &Open, pred: impl Fn(&Capability) -> bool) -> bool {
    open.capabilities.iter().any(pred)
}

/// One side of a [`Pair`], with everything it did recorded.
pub struct Side {
    pub session: Session,
    /// Every event it emitted, in order.
    pub events: Vec<SessionEvent>,
    /// Every message it sent that reached the other side.
    pub sent: Vec<Inbound>,
    /// The caller stops taking transmit bytes (socket not writable): RFC 9687 tests.
    pub stalled: bool,
    /// Events not yet acted upon by the pair.
    pending: Vec<SessionEvent>,
}

impl Side {
    fn new(session: Session) -> Side {
        Side {
            session,
            events: Vec::new(),
            sent: Vec::new(),
            stalled: false,
            pending: Vec::new(),
        }
    }

    pub fn state(&self) -> State {
        self.session.state()
    }

    /// Messages sent whose kind is `k`.
    pub fn sent_count(&self, k: &str) -> usize {
        self.sent.iter().filter(|m| kind(m) == k).count()
    }

    pub fn downs(&self) -> Vec<DownReason> {
        downs(&self.events)
    }

    pub fn updates_received(&self) -> Vec<Update> {
        self.events
            .iter()
            .filter_map(|e| match e {
                SessionEvent::Update(u) => Some(u.update.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Two sessions connected back to back through an in-memory "TCP" link with a virtual
/// clock. `a` is the active side (it connects), `b` accepts connections while Active.
pub struct Pair {
    pub a: Side,
    pub b: Side,
    pub now: Instant,
    /// The link is up between the two.
    pub link_up: bool,
    /// How many times a connection attempt reached the other side.
    pub connects: usize,
    /// When false, `a`'s connection attempts fail (the peer is unreachable).
    pub reachable: bool,
    /// When each connection attempt was made.
    pub attempts: Vec<Instant>,
}

impl Pair {
    pub fn new(a: SessionConfig, b: SessionConfig) -> Pair {
        Pair {
            a: Side::new(Session::new(a)),
            b: Side::new(Session::new(b)),
            now: Instant::now(),
            link_up: false,
            connects: 0,
            reachable: true,
            attempts: Vec::new(),
        }
    }

    /// Start both sessions and run until nothing moves.
    pub fn start(&mut self) {
        self.a.session.start(self.now);
        self.b.session.start(self.now);
        self.drive();
    }

    /// Deliver bytes and act on events until nothing changes. Time does not move.
    pub fn drive(&mut self) {
        loop {
            let mut progress = false;
            progress |= collect_events(&mut self.a);
            progress |= collect_events(&mut self.b);
            progress |= self.act_on_events();
            progress |= self.transfer(true);
            progress |= self.transfer(false);
            if !progress {
                break;
            }
        }
    }

    fn act_on_events(&mut self) -> bool {
        let mut progress = false;
        for from_a in [true, false] {
            let pending = std::mem::take(&mut self.side(from_a).pending);
            for ev in pending {
                progress = true;
                match ev {
                    SessionEvent::Connect => {
                        let now = self.now;
                        self.attempts.push(now);
                        let can_connect = self.reachable && !self.link_up;
                        let (me, other) = self.sides(from_a);
                        let other_accepts = other.session.state() == State::Active;
                        if can_connect && other_accepts {
                            me.session.handle_connected(now);
                            other.session.handle_connected(now);
                            self.link_up = true;
                            self.connects += 1;
                        } else {
                            me.session.handle_connect_failed(now);
                        }
                    }
                    SessionEvent::Disconnect => {
                        // Flush what is queued (the NOTIFICATION), then close.
                        self.transfer(from_a);
                        if self.link_up {
                            self.link_up = false;
                            let now = self.now;
                            let (_, other) = self.sides(from_a);
                            // The other side reads what was flushed, then sees the close.
                            other.session.handle_closed(now);
                        }
                    }
                    _ => {}
                }
            }
        }
        progress
    }

    fn side(&mut self, a: bool) -> &mut Side {
        if a {
            &mut self.a
        } else {
            &mut self.b
        }
    }

    fn sides(&mut self, a: bool) -> (&mut Side, &mut Side) {
        if a {
            (&mut self.a, &mut self.b)
        } else {
            (&mut self.b, &mut self.a)
        }
    }

    /// Move what `from` wants to send to the other side.
    fn transfer(&mut self, from_a: bool) -> bool {
        let now = self.now;
        let link_up = self.link_up;
        let (me, other) = self.sides(from_a);
        if me.stalled {
            return false;
        }
        let ctx = me
            .session
            .negotiated()
            .map(|n| n.codec.clone())
            .unwrap_or_default();
        let mut moved = false;
        while let Some(bytes) = me.session.poll_transmit() {
            moved = true;
            if !link_up {
                continue; // written to a closed socket: lost
            }
            me.sent.extend(decode_stream(&bytes, &ctx));
            other.session.handle_data(now, &bytes);
        }
        moved
    }

    /// Advance the virtual clock by `d`, firing every timer on the way.
    pub fn advance(&mut self, d: Duration) {
        let end = self.now + d;
        self.drive();
        loop {
            let next = [self.a.session.poll_timeout(), self.b.session.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= end => {
                    self.now = self.now.max(t);
                    let now = self.now;
                    self.a.session.handle_timeout(now);
                    self.b.session.handle_timeout(now);
                    self.drive();
                }
                _ => break,
            }
        }
        self.now = end;
    }

    /// Start both and run until both are Established (or a bounded time passed).
    pub fn establish(&mut self) {
        self.start();
        self.advance(secs(1));
        assert_eq!(self.a.state(), State::Established, "a: {:?}", self.a.events);
        assert_eq!(self.b.state(), State::Established, "b: {:?}", self.b.events);
    }
}

fn collect_events(side: &mut Side) -> bool {
    let evs = events(&mut side.session);
    let any = !evs.is_empty();
    side.events.extend(evs.iter().cloned());
    side.pending.extend(evs);
    any
}
