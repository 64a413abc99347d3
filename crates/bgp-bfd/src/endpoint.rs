//! Many BFD sessions behind one set of UDP ports, sans-IO: discriminator allocation,
//! demultiplexing of received packets to sessions, and one timer and transmit queue for
//! all of them, so a daemon needs a single task and a single timer.
//!
//! Demultiplexing (RFC 5880 6.3, 6.8.6 steps 7-9): a packet whose Your Discriminator is
//! non-zero goes to the session with that local discriminator; we also require it to come
//! from that session's peer over the same kind of hop, so a stray packet cannot drive a
//! session it does not belong to. A packet with Your Discriminator zero (the peer does
//! not know us yet) is matched by addresses: on a single-hop session by source address
//! and interface (RFC 5881 3), on a multihop session by source and destination address
//! (RFC 5883 3). Local discriminators are random, non-zero and unique (RFC 5880 6.8.1),
//! from a seeded generator so runs are reproducible.
//!
//! Shape: `add_session`/`remove_session`, commands through [`Endpoint::with_session`],
//! [`Endpoint::handle_datagram`] and [`Endpoint::handle_timeout`] for input, and
//! [`Endpoint::poll_transmit`], [`Endpoint::poll_timeout`], [`Endpoint::poll_event`] for
//! output, drained after every input as with a single [`Session`].

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::time::Instant;

use crate::packet::{ControlPacket, EncodedPacket};
use crate::rng::Rng;
use crate::session::config::SEND_TTL;
use crate::session::{ConfigError, Discard, Session, SessionConfig, SessionEvent};

/// A session of an [`Endpoint`]: its local discriminator.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub NonZeroU32);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:#010x}", self.0)
    }
}

/// Where a session runs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Addresses {
    pub peer: IpAddr,
    /// Our address: the source of what we send, and the destination a received packet
    /// must have. Required for multihop (RFC 5883 3); `None` on single hop accepts any.
    pub local: Option<IpAddr>,
    /// Interface index (single hop): packets must arrive on it; `None` accepts any.
    pub interface: Option<u32>,
}

/// What the socket layer knows about a received datagram.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct PacketInfo {
    pub source: IpAddr,
    /// The datagram's destination address (IP_PKTINFO), if known.
    pub destination: Option<IpAddr>,
    /// The interface it arrived on, if known.
    pub interface: Option<u32>,
    /// Its TTL or hop limit; 0 if the socket did not report it (then a single-hop session
    /// discards it).
    pub ttl: u8,
    /// It arrived on the multihop port (4784) rather than the single-hop port (3784).
    pub multihop: bool,
}

/// A packet to send: to `destination` (the peer and the port of its kind of hop), from
/// `source` when given, with IP TTL / hop limit `ttl`, from a port in 49152..=65535 that
/// stays the same for the session (RFC 5881 4).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    pub session: SessionId,
    pub destination: SocketAddr,
    pub source: Option<IpAddr>,
    pub interface: Option<u32>,
    pub ttl: u8,
    pub packet: EncodedPacket,
}

/// A session could not be added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EndpointError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("a multihop session needs a local address (RFC 5883 3)")]
    MultihopWithoutLocal,
    #[error("session {0} already runs to this peer with these addresses")]
    Duplicate(SessionId),
}

#[derive(Debug)]
struct Entry {
    addresses: Addresses,
    session: Session,
    /// Its key in `Endpoint::deadlines`.
    deadline: Option<Instant>,
    /// It is in `Endpoint::ready`.
    queued: bool,
}

/// Sessions keyed by discriminator, with their demultiplexing indexes and timers.
#[derive(Debug)]
pub struct Endpoint {
    sessions: HashMap<NonZeroU32, Entry>,
    /// (peer address, multihop) -> sessions, for packets with Your Discriminator zero.
    by_peer: HashMap<(IpAddr, bool), Vec<NonZeroU32>>,
    deadlines: BTreeSet<(Instant, NonZeroU32)>,
    /// Sessions with packets to send, in the order they became ready.
    ready: VecDeque<NonZeroU32>,
    events: VecDeque<(SessionId, SessionEvent)>,
    rng: Rng,
    discarded: u64,
}

impl Endpoint {
    /// An endpoint whose discriminators come from `seed` (give each run its own seed,
    /// e.g. from the clock, so a restarted daemon does not reuse discriminators).
    pub fn new(seed: u64) -> Endpoint {
        Endpoint {
            sessions: HashMap::new(),
            by_peer: HashMap::new(),
            deadlines: BTreeSet::new(),
            ready: VecDeque::new(),
            events: VecDeque::new(),
            rng: Rng::new(seed),
            discarded: 0,
        }
    }

    /// Starts a session; it sends its first packet at `now`.
    pub fn add_session(
        &mut self,
        now: Instant,
        addresses: Addresses,
        config: SessionConfig,
    ) -> Result<SessionId, EndpointError> {
        config.validate()?;
        let multihop = config.hops.is_multihop();
        if multihop && addresses.local.is_none() {
            return Err(EndpointError::MultihopWithoutLocal);
        }
        let key = (addresses.peer, multihop);
        if let Some(existing) = self.by_peer.get(&key).and_then(|ids| {
            ids.iter().find(|id| {
                self.sessions
                    .get(id)
                    .is_some_and(|e| e.addresses == addresses)
            })
        }) {
            return Err(EndpointError::Duplicate(SessionId(*existing)));
        }
        let discriminator = self.allocate_discriminator();
        let session = Session::new(config, discriminator, now);
        self.sessions.insert(
            discriminator,
            Entry {
                addresses,
                session,
                deadline: None,
                queued: false,
            },
        );
        self.by_peer.entry(key).or_default().push(discriminator);
        self.touch(discriminator);
        Ok(SessionId(discriminator))
    }

    /// Removes a session at once (to tell the peer first, [`Session::admin_down`] it and
    /// remove it after a Detection Time). Returns it, with its last state.
    pub fn remove_session(&mut self, id: SessionId) -> Option<Session> {
        let entry = self.sessions.remove(&id.0)?;
        let key = (
            entry.addresses.peer,
            entry.session.config().hops.is_multihop(),
        );
        if let Some(ids) = self.by_peer.get_mut(&key) {
            ids.retain(|d| *d != id.0);
            if ids.is_empty() {
                self.by_peer.remove(&key);
            }
        }
        if let Some(at) = entry.deadline {
            self.deadlines.remove(&(at, id.0));
        }
        self.ready.retain(|d| *d != id.0);
        Some(entry.session)
    }

    pub fn session(&self, id: SessionId) -> Option<&Session> {
        self.sessions.get(&id.0).map(|e| &e.session)
    }

    pub fn addresses(&self, id: SessionId) -> Option<&Addresses> {
        self.sessions.get(&id.0).map(|e| &e.addresses)
    }

    /// Every session, in discriminator order.
    pub fn sessions(&self) -> impl Iterator<Item = (SessionId, &Addresses, &Session)> {
        let mut ids: Vec<&NonZeroU32> = self.sessions.keys().collect();
        ids.sort();
        ids.into_iter().filter_map(|id| {
            self.sessions
                .get(id)
                .map(|e| (SessionId(*id), &e.addresses, &e.session))
        })
    }

    pub fn len(&self) -> usize {
        self.sessions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sessions.is_empty()
    }

    /// Datagrams discarded before reaching a session (malformed, unknown discriminator,
    /// no session for the addresses); discards by a session are in its stats.
    pub fn discarded(&self) -> u64 {
        self.discarded
    }

    /// Runs a command on a session (`admin_down`, `admin_up`, `set_timers`), then
    /// collects what it produced. `None` if there is no such session.
    pub fn with_session<R>(
        &mut self,
        id: SessionId,
        command: impl FnOnce(&mut Session) -> R,
    ) -> Option<R> {
        let out = command(&mut self.sessions.get_mut(&id.0)?.session);
        self.touch(id.0);
        Some(out)
    }

    // ---- input ----

    /// A datagram received on a BFD port. Returns the session it went to, or why it was
    /// discarded.
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        info: &PacketInfo,
        payload: &[u8],
    ) -> Result<SessionId, Discard> {
        let selected = ControlPacket::decode(payload)
            .map_err(Discard::from)
            .and_then(|packet| Ok((self.select(info, &packet)?, packet)));
        let (id, packet) = match selected {
            Ok(found) => found,
            Err(e) => {
                self.discarded += 1;
                return Err(e);
            }
        };
        let result = match self.sessions.get_mut(&id) {
            Some(entry) => entry.session.handle_control(now, &packet, info.ttl),
            None => Err(Discard::NoSession),
        };
        self.touch(id);
        result.map(|()| SessionId(id))
    }

    /// Fires every session timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        let due: Vec<NonZeroU32> = self
            .deadlines
            .iter()
            .take_while(|(at, _)| *at <= now)
            .map(|(_, id)| *id)
            .collect();
        for id in due {
            if let Some(entry) = self.sessions.get_mut(&id) {
                entry.session.handle_timeout(now);
            }
            self.touch(id);
        }
    }

    // ---- output ----

    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        while let Some(&id) = self.ready.front() {
            let Some(entry) = self.sessions.get_mut(&id) else {
                self.ready.pop_front();
                continue;
            };
            let packet = entry.session.poll_transmit();
            if !entry.session.has_transmit() {
                entry.queued = false;
                self.ready.pop_front();
            }
            if let Some(packet) = packet {
                let a = entry.addresses;
                return Some(Transmit {
                    session: SessionId(id),
                    destination: SocketAddr::new(a.peer, entry.session.config().hops.port()),
                    source: a.local,
                    interface: a.interface,
                    ttl: SEND_TTL,
                    packet,
                });
            }
        }
        None
    }

    /// The earliest session timer.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadlines.first().map(|(at, _)| *at)
    }

    pub fn poll_event(&mut self) -> Option<(SessionId, SessionEvent)> {
        self.events.pop_front()
    }

    // ---- internals ----

    fn select(&self, info: &PacketInfo, packet: &ControlPacket) -> Result<NonZeroU32, Discard> {
        let multihop = info.multihop;
        if let Some(your) = NonZeroU32::new(packet.your_discriminator) {
            let entry = self
                .sessions
                .get(&your)
                .ok_or(Discard::UnknownDiscriminator(your.get()))?;
            if entry.addresses.peer != info.source
                || entry.session.config().hops.is_multihop() != multihop
            {
                return Err(Discard::WrongPeer);
            }
            return Ok(your);
        }
        let candidates = self
            .by_peer
            .get(&(info.source, multihop))
            .ok_or(Discard::NoSession)?;
        candidates
            .iter()
            .filter_map(|id| self.sessions.get(id).map(|e| (id, &e.addresses)))
            .filter(|(_, a)| a.interface.is_none() || a.interface == info.interface)
            .filter(|(_, a)| {
                a.local.is_none() || info.destination.is_none() || a.local == info.destination
            })
            // The most specific match wins.
            .max_by_key(|(_, a)| {
                usize::from(a.interface.is_some()) + usize::from(a.local.is_some())
            })
            .map(|(id, _)| *id)
            .ok_or(Discard::NoSession)
    }

    /// After a session ran: collect its events, queue its packets, re-index its timer.
    fn touch(&mut self, id: NonZeroU32) {
        let Some(entry) = self.sessions.get_mut(&id) else {
            return;
        };
        while let Some(event) = entry.session.poll_event() {
            self.events.push_back((SessionId(id), event));
        }
        if entry.session.has_transmit() && !entry.queued {
            entry.queued = true;
            self.ready.push_back(id);
        }
        let deadline = entry.session.poll_timeout();
        if deadline != entry.deadline {
            if let Some(old) = entry.deadline {
                self.deadlines.remove(&(old, id));
            }
            if let Some(new) = deadline {
                self.deadlines.insert((new, id));
            }
            entry.deadline = deadline;
        }
    }

    /// RFC 5880 6.8.1: unique, non-zero, and random so that a restarted system does not
    /// reuse its discriminators.
    fn allocate_discriminator(&mut self) -> NonZeroU32 {
        loop {
            if let Some(d) =
                NonZeroU32::new(self.rng.next_u32()).filter(|d| !self.sessions.contains_key(d))
            {
                return d;
            }
        }
    }
}
