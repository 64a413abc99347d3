//! The client state machine for one station connection.
//!
//! States: Idle → (start) Connecting → Connected → (close, failure, overflow, stall)
//! Closing → Waiting (backoff) → Connecting → ... ; `stop` leads back to Idle.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::backoff::Backoff;
use super::config::{ClientConfig, ConfigError};
use super::event::{ClientCounters, ClientEvent, ClientState, DisconnectReason, Enqueued};
use super::queue::{PushError, Queue};
use crate::wire::{
    BmpMessage, EncodeError, Initiation, PeerDown, PeerKey, PeerUp, RouteMirroring,
    RouteMonitoring, StatisticsReport, Termination, TerminationReason,
};

#[derive(Copy, Clone, Debug)]
enum State {
    Idle,
    Waiting {
        until: Instant,
    },
    Connecting {
        deadline: Instant,
    },
    Connected {
        since: Instant,
    },
    /// Close was asked for; then wait out a backoff (`reconnect`) or stay Idle.
    Closing {
        reconnect: bool,
        since: Option<Instant>,
    },
}

/// The router's side of one BMP station connection; see the [module docs](super).
#[derive(Debug)]
pub struct Client {
    config: ClientConfig,
    state: State,
    /// Peers that are up, as their Peer Up messages: replayed on every connection.
    peers: BTreeMap<PeerKey, PeerUp>,
    queue: Queue,
    events: std::collections::VecDeque<ClientEvent>,
    backoff: Backoff,
    session: u64,
    stats_due: Option<Instant>,
    /// When queued bytes nobody takes mean a stuck station (`send_timeout` after the
    /// caller last took bytes, or after the queue filled up).
    stall_deadline: Option<Instant>,
    /// `stall_deadline` was set by a call without `now` (from `last_now`): the next call
    /// with `now` restarts it instead of firing it, as `bgp_proto`'s SendHoldTimer does.
    stall_tentative: bool,
    /// `poll_transmit` handed out bytes since the stall deadline was last set.
    transmit_progress: bool,
    last_now: Option<Instant>,
    /// The queue reached half its limit: say Writable when it drains below.
    above_low_water: bool,
    /// This connection's Initiation was handed out (it is the first message queued).
    initiation_taken: bool,
    counters: ClientCounters,
}

impl Client {
    pub fn new(config: ClientConfig) -> Result<Client, ConfigError> {
        config.validate()?;
        let backoff = Backoff::new(
            config.backoff_initial,
            config.backoff_max,
            config.jitter_seed,
        );
        Ok(Client {
            config,
            state: State::Idle,
            peers: BTreeMap::new(),
            queue: Queue::default(),
            events: Default::default(),
            backoff,
            session: 0,
            stats_due: None,
            stall_deadline: None,
            stall_tentative: false,
            transmit_progress: false,
            last_now: None,
            above_low_water: false,
            initiation_taken: false,
            counters: ClientCounters::default(),
        })
    }

    // ---- getters ------------------------------------------------------------------

    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    pub fn state(&self) -> ClientState {
        match self.state {
            State::Idle => ClientState::Idle,
            State::Waiting { .. } => ClientState::Waiting,
            State::Connecting { .. } => ClientState::Connecting,
            State::Connected { .. } => ClientState::Connected,
            State::Closing { .. } => ClientState::Closing,
        }
    }

    /// The current connection's number (from 1), while connected.
    pub fn session(&self) -> Option<u64> {
        matches!(self.state, State::Connected { .. }).then_some(self.session)
    }

    /// Bytes queued and not yet handed out by `poll_transmit`.
    pub fn queued_bytes(&self) -> usize {
        self.queue.len_bytes()
    }

    /// Whether bulk sending (a route replay) should go on: connected, and the queue below
    /// half its limit. When this says no, wait for [`ClientEvent::Writable`].
    pub fn has_room(&self) -> bool {
        self.queue.len_bytes() < self.low_water() && self.session().is_some()
    }

    /// The peers the client holds as up.
    pub fn peers(&self) -> impl Iterator<Item = &PeerUp> {
        self.peers.values()
    }

    pub fn counters(&self) -> &ClientCounters {
        &self.counters
    }

    fn low_water(&self) -> usize {
        self.config.max_queue / 2
    }

    // ---- commands -----------------------------------------------------------------

    /// Start: ask for a connection now (or, while a connection is being closed, once it
    /// is closed and the backoff has passed).
    pub fn start(&mut self, now: Instant) {
        self.last_now = Some(now);
        match &mut self.state {
            State::Idle | State::Waiting { .. } => self.connect(now),
            State::Closing { reconnect, .. } => *reconnect = true,
            State::Connecting { .. } | State::Connected { .. } => {}
        }
    }

    /// Stop: end a connection with a Termination "administratively closed" (RFC 7854
    /// 4.5), abandon an attempt, and stay Idle until `start`.
    pub fn stop(&mut self) {
        match self.state {
            State::Connected { .. } => {
                // What is queued still goes (peer downs at shutdown), then the Termination.
                let term = Termination::new(TerminationReason::ADMINISTRATIVELY_CLOSED, "");
                self.push_own(&BmpMessage::Termination(term));
                self.close(false, DisconnectReason::Stopped);
            }
            State::Connecting { .. } => self.close(false, DisconnectReason::Stopped),
            State::Closing { .. } => {
                if let State::Closing { reconnect, .. } = &mut self.state {
                    *reconnect = false;
                }
            }
            State::Waiting { .. } | State::Idle => self.state = State::Idle,
        }
    }

    /// A BGP session reached Established. The client keeps `up` (to replay it on every
    /// connection) and sends it now if connected.
    pub fn peer_up(&mut self, up: PeerUp) -> Result<Enqueued, EncodeError> {
        // Refuse what cannot be encoded before keeping it for every future connection.
        crate::wire::encode_message(&BmpMessage::PeerUp(up.clone()), &mut Default::default())?;
        self.peers.insert(up.peer.key(), up.clone());
        Ok(self.offer(BmpMessage::PeerUp(up)))
    }

    /// A BGP session left Established. The client forgets the peer and sends `down` if
    /// connected.
    pub fn peer_down(&mut self, down: PeerDown) -> Result<Enqueued, EncodeError> {
        if self.peers.remove(&down.peer.key()).is_none() {
            return Ok(Enqueued::UnknownPeer);
        }
        self.offer_checked(BmpMessage::PeerDown(down))
    }

    /// An UPDATE about a peer that is up (pre- or post-policy, Adj-RIB-In or -Out, by the
    /// per-peer flags).
    pub fn route_monitoring(&mut self, msg: RouteMonitoring) -> Result<Enqueued, EncodeError> {
        self.about_known_peer(BmpMessage::RouteMonitoring(msg))
    }

    /// Statistics about a peer that is up.
    pub fn statistics(&mut self, report: StatisticsReport) -> Result<Enqueued, EncodeError> {
        self.about_known_peer(BmpMessage::StatisticsReport(report))
    }

    /// Mirrored messages of a peer that is up.
    pub fn route_mirroring(&mut self, msg: RouteMirroring) -> Result<Enqueued, EncodeError> {
        self.about_known_peer(BmpMessage::RouteMirroring(msg))
    }

    fn about_known_peer(&mut self, msg: BmpMessage) -> Result<Enqueued, EncodeError> {
        let known = msg
            .peer()
            .is_some_and(|p| self.peers.contains_key(&p.key()));
        if !known {
            return Ok(Enqueued::UnknownPeer);
        }
        self.offer_checked(msg)
    }

    /// [`Client::offer`], reporting a message the codec refuses.
    fn offer_checked(&mut self, msg: BmpMessage) -> Result<Enqueued, EncodeError> {
        if self.session().is_none() {
            return Ok(Enqueued::NotConnected);
        }
        match self.queue.push(&msg, self.config.max_queue) {
            Ok(()) => {
                self.counters.messages_queued += 1;
                self.arm_stall();
                if self.queue.len_bytes() >= self.low_water() {
                    self.above_low_water = true;
                }
                Ok(Enqueued::Queued)
            }
            Err(PushError::Encode(e)) => Err(e),
            Err(PushError::Full) => {
                self.overflow();
                Ok(Enqueued::Overflow)
            }
        }
    }

    /// Queue a message already known to encode.
    fn offer(&mut self, msg: BmpMessage) -> Enqueued {
        self.offer_checked(msg).unwrap_or(Enqueued::NotConnected)
    }

    // ---- transport and clock ------------------------------------------------------

    /// The connection asked for by [`ClientEvent::Connect`] is up.
    pub fn handle_connected(&mut self, now: Instant) {
        self.last_now = Some(now);
        if !matches!(self.state, State::Connecting { .. }) {
            return;
        }
        self.session += 1;
        self.counters.connections += 1;
        self.state = State::Connected { since: now };
        self.drop_queue();
        self.initiation_taken = false;
        // RFC 7854 4.3: Initiation first; then a Peer Up for each peer that is up (3.3).
        let init = Initiation::new(&self.config.sys_name, &self.config.sys_descr);
        self.push_own(&BmpMessage::Initiation(init));
        let ups: Vec<PeerUp> = self.peers.values().cloned().collect();
        for up in ups {
            self.push_own(&BmpMessage::PeerUp(up));
        }
        self.stats_due = self.config.stats_interval.map(|d| now + d);
        self.refresh_stall(now);
        self.events.push_back(ClientEvent::ReplayRoutes {
            session: self.session,
        });
    }

    /// The connection attempt failed.
    pub fn handle_connect_failed(&mut self, now: Instant) {
        self.last_now = Some(now);
        if matches!(self.state, State::Connecting { .. }) {
            self.events
                .push_back(ClientEvent::Disconnected(DisconnectReason::ConnectFailed));
            self.wait(now, None);
        }
    }

    /// The connection closed (by the station, a write error, or after
    /// [`ClientEvent::Close`]).
    pub fn handle_closed(&mut self, now: Instant) {
        self.last_now = Some(now);
        match self.state {
            State::Connected { since } => {
                self.drop_queue();
                self.events
                    .push_back(ClientEvent::Disconnected(DisconnectReason::Closed));
                self.wait(now, Some(since));
            }
            State::Closing { reconnect, since } => {
                self.drop_queue();
                if reconnect {
                    self.wait(now, since);
                } else {
                    self.state = State::Idle;
                }
            }
            State::Connecting { .. } => self.handle_connect_failed(now),
            State::Idle | State::Waiting { .. } => {}
        }
    }

    /// Bytes from the station. BMP is one-way (RFC 7854 3: the station sends nothing);
    /// they are counted and discarded.
    pub fn handle_data(&mut self, data: &[u8]) {
        self.counters.bytes_ignored += data.len() as u64;
    }

    /// A deadline from [`Client::poll_timeout`] passed (calling it early is harmless).
    pub fn handle_timeout(&mut self, now: Instant) {
        self.last_now = Some(now);
        match self.state {
            State::Waiting { until } if now >= until => self.connect(now),
            State::Connecting { deadline } if now >= deadline => {
                self.close(true, DisconnectReason::ConnectTimeout);
            }
            State::Connected { .. } => {
                self.refresh_stall(now);
                if self.stall_deadline.is_some_and(|t| now >= t) {
                    self.drop_queue();
                    self.close(true, DisconnectReason::SendStalled);
                    return;
                }
                if let (Some(due), Some(interval)) = (self.stats_due, self.config.stats_interval) {
                    if now >= due {
                        self.events.push_back(ClientEvent::StatisticsDue);
                        self.stats_due = Some(now + interval);
                    }
                }
            }
            _ => {}
        }
    }

    /// The next bytes to write: whole messages, up to 64 KiB at a time. Taking them is
    /// how the caller tells the client the station is reading: stop polling while the
    /// socket is not writable, and the send timeout runs.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        let chunk = self.queue.pop_chunk()?;
        self.counters.bytes_sent += chunk.len() as u64;
        self.initiation_taken = true;
        self.transmit_progress = true;
        if self.queue.is_empty() {
            self.stall_deadline = None;
            self.stall_tentative = false;
        }
        if self.above_low_water && self.queue.len_bytes() < self.low_water() {
            self.above_low_water = false;
            if self.session().is_some() {
                self.events.push_back(ClientEvent::Writable);
            }
        }
        Some(chunk)
    }

    /// When to call [`Client::handle_timeout`].
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::Waiting { until } => Some(until),
            State::Connecting { deadline } => Some(deadline),
            State::Connected { .. } => [self.stall_deadline, self.stats_due]
                .into_iter()
                .flatten()
                .min(),
            State::Idle | State::Closing { .. } => None,
        }
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        self.events.pop_front()
    }

    // ---- internals ----------------------------------------------------------------

    fn connect(&mut self, now: Instant) {
        self.state = State::Connecting {
            deadline: now + self.config.connect_timeout,
        };
        self.events.push_back(ClientEvent::Connect);
    }

    /// Ask the caller to close; afterwards reconnect (after a delay) or go Idle.
    fn close(&mut self, reconnect: bool, reason: DisconnectReason) {
        let since = match self.state {
            State::Connected { since } => Some(since),
            _ => None,
        };
        self.state = State::Closing { reconnect, since };
        self.stats_due = None;
        self.events.push_back(ClientEvent::Close);
        self.events.push_back(ClientEvent::Disconnected(reason));
    }

    /// Wait out the backoff; a connection up since `since` for long enough resets it.
    fn wait(&mut self, now: Instant, since: Option<Instant>) {
        if since.is_some_and(|s| now.saturating_duration_since(s) >= self.config.stable_after) {
            self.backoff.reset();
        }
        let delay: Duration = self.backoff.next_delay();
        self.state = State::Waiting { until: now + delay };
        self.stats_due = None;
    }

    /// Something was queued: make sure the send timeout runs (tentatively from the last
    /// known time, since offers carry no `now`).
    fn arm_stall(&mut self) {
        if self.stall_deadline.is_none() {
            if let Some(t) = self.last_now {
                self.stall_deadline = Some(t + self.config.send_timeout);
                self.stall_tentative = true;
            }
        }
    }

    /// Restart the send timeout from `now` if bytes were taken since it was set or it was
    /// set without a time; stop it while nothing waits.
    fn refresh_stall(&mut self, now: Instant) {
        if self.session().is_none() || self.queue.is_empty() {
            self.stall_deadline = None;
            self.stall_tentative = false;
            self.transmit_progress = false;
            return;
        }
        if self.stall_deadline.is_none() || self.stall_tentative || self.transmit_progress {
            self.stall_deadline = Some(now + self.config.send_timeout);
            self.stall_tentative = false;
            self.transmit_progress = false;
        }
    }

    /// RFC 7854 4.5 "out of resources": drop what is queued, say so, start over on a new
    /// connection (where Initiation, Peer Ups and the caller's replay rebuild the
    /// station's view).
    fn overflow(&mut self) {
        self.counters.overflows += 1;
        self.drop_queue();
        // A station must see the Initiation first (RFC 7854 4.3), even before a Termination.
        if !self.initiation_taken {
            let init = Initiation::new(&self.config.sys_name, &self.config.sys_descr);
            self.push_own(&BmpMessage::Initiation(init));
        }
        let term = Termination::new(
            TerminationReason::OUT_OF_RESOURCES,
            "queue overflow, resynchronising",
        );
        self.push_own(&BmpMessage::Termination(term));
        self.close(true, DisconnectReason::QueueOverflow);
    }

    fn drop_queue(&mut self) {
        self.counters.messages_dropped += self.queue.clear() as u64;
        self.stall_deadline = None;
        self.stall_tentative = false;
        self.above_low_water = false;
    }

    /// Queue one of the client's own messages (Initiation, Peer Up replay, Termination):
    /// they are small and always fit, whatever the limit.
    fn push_own(&mut self, msg: &BmpMessage) {
        if self.queue.push_unbounded(msg).is_ok() {
            self.counters.messages_queued += 1;
        }
    }
}
