//! The [`Session`]: one BGP peer's finite-state machine over one transport connection
//! (RFC 4271 8.2.2), with the timers of RFC 4271 8.1.3/10, DelayOpen and passive
//! establishment (8.1.1), and the SendHoldTimer of RFC 9687.
//!
//! One file on purpose: the transitions of RFC 4271 8.2.2 read as one table, and every
//! `handle_*` shares the state they change; collisions, configuration, negotiation and
//! events live in their own modules.
//!
//! Shape (after `quinn-proto`'s `Connection`): getters; `handle_*` for input from the
//! transport and the clock; commands (`start`, `stop`, `send_*`); and `poll_*` for what the
//! caller must do next. After every `handle_*` or command the caller drains
//! [`Session::poll_transmit`] (bytes for the socket), [`Session::poll_event`] (open or
//! close the connection, session events) and re-arms its timer from
//! [`Session::poll_timeout`]. Time is only ever the `now` passed in.
//!
//! Deviations from the letter of RFC 4271 8.2.2, all in the direction of telling the peer
//! more: SendNOTIFICATIONwithoutOPEN is on (a connection waiting on DelayOpen is closed
//! with a NOTIFICATION); an unexpected message in Connect or Active (only possible while
//! DelayOpen runs) is answered with FSM error 5/0; a NOTIFICATION received is never
//! answered with one; a message header error in Established is answered with the header
//! error (RFC 4271 6.1) rather than FSM error. A passive session runs no ConnectRetryTimer
//! in Active, since it never connects. After a failure the session restarts by itself
//! (AutomaticStart, 8.1.2) once an IdleHoldTimer ran out; the timer backs off
//! exponentially with consecutive failures; when the connection failed before the peer's
//! OPEN arrived (refused by a peer not listening yet, or closed in OpenSent) a few quicker
//! retries (1, 2, 4 s) come first. Only [`Session::stop`] and
//! [`Session::collision_dump`] leave it in Idle for good.

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};

use crate::wire::error::{EncodeError, NotificationError};
use crate::wire::types::{
    notification_code as nc, CodecContext, Message, Notification, RefreshSubtype, RouteRefresh,
    Update, HEADER_LEN, MAX_MESSAGE_LEN,
};
use crate::wire::{decode_message, encode_message, frame_len, Inbound};

use super::counts::MessageCounts;

use super::config::{SessionConfig, MIN_SEND_HOLD_TIME, OPEN_HOLD_TIME};
use super::event::{DownReason, SessionEvent, State};
use super::negotiate::{negotiate, Negotiated};

/// Frames shorter than this are copied together into one transmit buffer.
const COALESCE_FRAME_LEN: usize = 16 * 1024;
/// Upper bound of one coalesced transmit buffer.
const COALESCE_MAX: usize = 64 * 1024;
/// Backoff doubles at most this many times (then the cap applies anyway).
const MAX_BACKOFF_SHIFT: u32 = 16;
/// The first wait after a connection attempt the peer refused (or a connection closed
/// before the peer's OPEN arrived), doubled per consecutive failure while shorter than
/// ConnectRetryTime. Peers started together are refused until the other side
/// listens; waiting the whole ConnectRetryTime then delays convergence for nothing.
const REFUSED_RETRY_FIRST: Duration = Duration::from_secs(1);

/// The timers of RFC 4271 8 (plus IdleHold for automatic restart and RFC 9687 SendHold).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Timer {
    ConnectRetry,
    Hold,
    Keepalive,
    DelayOpen,
    IdleHold,
    SendHold,
}

impl Timer {
    /// Order in which timers due at the same instant fire.
    const ALL: [Timer; 6] = [
        Timer::SendHold,
        Timer::Hold,
        Timer::DelayOpen,
        Timer::Keepalive,
        Timer::ConnectRetry,
        Timer::IdleHold,
    ];

    fn index(self) -> usize {
        match self {
            Timer::ConnectRetry => 0,
            Timer::Hold => 1,
            Timer::Keepalive => 2,
            Timer::DelayOpen => 3,
            Timer::IdleHold => 4,
            Timer::SendHold => 5,
        }
    }
}

#[derive(Clone, Debug, Default)]
struct Timers([Option<Instant>; 6]);

impl Timers {
    fn set(&mut self, t: Timer, at: Instant) {
        self.0[t.index()] = Some(at);
    }
    fn stop(&mut self, t: Timer) {
        self.0[t.index()] = None;
    }
    fn get(&self, t: Timer) -> Option<Instant> {
        self.0[t.index()]
    }
    fn is_running(&self, t: Timer) -> bool {
        self.get(t).is_some()
    }
    fn stop_all(&mut self) {
        self.0 = [None; 6];
    }
    fn next(&self) -> Option<Instant> {
        self.0.iter().flatten().min().copied()
    }
}

/// Why the session could not queue an outbound message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("session is not established")]
    NotEstablished,
    #[error("outbound queue full: {queued} bytes queued, limit {limit}")]
    QueueFull { queued: usize, limit: usize },
    #[error("not negotiated with the peer: {0}")]
    NotNegotiated(String),
    #[error(transparent)]
    Encode(#[from] EncodeError),
}

/// One BGP peer's session state machine over one transport connection. See the module
/// documentation for how to drive it.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    /// A transport connection is up (reported by `handle_connected`, not yet closed).
    connected: bool,
    /// AutomaticStart after failures is allowed: set by `start`, cleared by `stop`.
    auto_restart: bool,
    /// Consecutive failed attempts, the exponent of the connect-retry backoff. Reset by
    /// `start` and on reaching Established.
    failures: u32,
    timers: Timers,
    /// The last `now` passed in, for timers armed by calls that take no `now`.
    last_now: Option<Instant>,
    /// RFC 9687: the SendHoldTimer was requested by a call without `now`; the next call
    /// with one starts it instead of firing it.
    send_hold_tentative: bool,
    /// `poll_transmit` handed out bytes since the SendHoldTimer was last (re)started.
    transmit_progress: bool,
    /// An UPDATE was queued since the KeepaliveTimer last started (RFC 4271 4.4: sending
    /// an UPDATE restarts the KeepaliveTimer).
    update_since_keepalive: bool,
    /// Received bytes not yet forming a whole message.
    recv: BytesMut,
    transmit: VecDeque<Bytes>,
    queued_bytes: usize,
    /// Messages counted since the caller last took the counts.
    counts: MessageCounts,
    events: VecDeque<SessionEvent>,
    /// Known from the moment the peer's OPEN is accepted (OpenConfirm) until the
    /// connection ends.
    negotiated: Option<Negotiated>,
    /// Context for decoding and encoding: the RFC 4271 baseline until negotiated.
    codec: CodecContext,
    /// State of the jitter generator (RFC 4271 10); `None` without jitter.
    jitter: Option<u64>,
}

/// splitmix64: a tiny, well-mixed generator; jitter needs spread, not secrecy.
fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Session {
    /// A session in Idle. Out-of-range values in `config` are normalised (see
    /// [`SessionConfig`]); use [`SessionConfig::validate`] to reject them instead.
    pub fn new(mut config: SessionConfig) -> Session {
        if config.connect_retry.is_zero() {
            config.connect_retry = Duration::from_secs(1);
        }
        if config.connect_retry_max < config.connect_retry {
            config.connect_retry_max = config.connect_retry;
        }
        let jitter_seed = config.jitter_seed;
        Session {
            config,
            state: State::Idle,
            connected: false,
            auto_restart: false,
            failures: 0,
            timers: Timers::default(),
            last_now: None,
            send_hold_tentative: false,
            transmit_progress: false,
            update_since_keepalive: false,
            recv: BytesMut::new(),
            transmit: VecDeque::new(),
            queued_bytes: 0,
            counts: MessageCounts::default(),
            events: VecDeque::new(),
            negotiated: None,
            codec: CodecContext::default(),
            jitter: jitter_seed,
        }
    }

    // ---- getters ----

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The negotiated parameters, from OpenConfirm (the peer's OPEN accepted) until the
    /// connection ends.
    pub fn negotiated(&self) -> Option<&Negotiated> {
        self.negotiated.as_ref()
    }

    /// The peer's BGP Identifier once its OPEN was accepted, for collision detection
    /// (RFC 4271 6.8).
    pub fn peer_bgp_id(&self) -> Option<Ipv4Addr> {
        self.negotiated.as_ref().map(|n| n.peer_id)
    }

    /// The peer's AS once its OPEN was accepted.
    pub fn peer_as(&self) -> Option<u32> {
        self.negotiated.as_ref().map(|n| n.peer_as)
    }

    /// Bytes queued for the peer and not yet taken by [`Session::poll_transmit`].
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes
    }

    /// The messages counted since the last call (see [`MessageCounts`]).
    pub fn take_message_counts(&mut self) -> MessageCounts {
        std::mem::take(&mut self.counts)
    }

    /// How many more UPDATE bytes [`Session::send_update`] accepts before the queue is
    /// full ([`SessionConfig::max_queued_bytes`]). The caller applies backpressure on it.
    pub fn send_capacity(&self) -> usize {
        self.config
            .max_queued_bytes
            .saturating_sub(self.queued_bytes)
    }

    /// The delay before the next connection attempt after `failures` consecutive
    /// failures: ConnectRetryTime doubled per failure, capped.
    fn retry_delay(&mut self, failures: u32) -> Duration {
        let shift = failures.min(MAX_BACKOFF_SHIFT);
        let delay = self
            .config
            .connect_retry
            .saturating_mul(1u32 << shift)
            .min(self.config.connect_retry_max);
        self.jittered(delay)
    }

    /// The delay before the next attempt after `failures` consecutive failures, the last
    /// of them a connection that failed before the peer's OPEN arrived (refused,
    /// unreachable, closed in OpenSent): [`REFUSED_RETRY_FIRST`] doubled per failure
    /// while that is shorter than ConnectRetryTime (1, 2, 4 s for 5 s), then the usual
    /// backoff from ConnectRetryTime (5, 10, 20, ... s). RFC 4271 8.1.1 leaves the
    /// IdleHoldTime to the implementation; a peer that stays unreachable is still retried
    /// ever more rarely.
    fn refused_retry_delay(&mut self, failures: u32) -> Duration {
        let quick = (0..MAX_BACKOFF_SHIFT)
            .take_while(|k| {
                REFUSED_RETRY_FIRST.saturating_mul(1u32 << k) < self.config.connect_retry
            })
            .count() as u32;
        if failures < quick {
            self.jittered(REFUSED_RETRY_FIRST.saturating_mul(1u32 << failures))
        } else {
            self.retry_delay(failures - quick)
        }
    }

    /// (Re)start the ConnectRetryTimer with the backed-off, jittered delay.
    fn arm_connect_retry(&mut self, now: Instant) {
        let delay = self.retry_delay(self.failures);
        self.timers.set(Timer::ConnectRetry, now + delay);
    }

    /// RFC 4271 10: `d` times a factor in [0.75, 1].
    fn jittered(&mut self, d: Duration) -> Duration {
        match &mut self.jitter {
            None => d,
            Some(state) => {
                // 1024 steps are plenty of spread.
                let step = (splitmix64(state) % 1025) as u32;
                d.mul_f64(0.75 + 0.25 * f64::from(step) / 1024.0)
            }
        }
    }

    /// The KEEPALIVE interval, jittered.
    fn keepalive_interval(&mut self, keepalive_time: u16) -> Duration {
        self.jittered(Duration::from_secs(u64::from(keepalive_time)))
    }

    /// RFC 9687 4: the configured SendHoldTime, else max(8 minutes, 2 × Hold Time).
    fn send_hold_time(&self) -> Duration {
        if let Some(t) = self.config.send_hold_time {
            return t;
        }
        let hold = self
            .negotiated
            .as_ref()
            .map_or(self.config.effective_hold_time(), |n| n.hold_time);
        MIN_SEND_HOLD_TIME.max(Duration::from_secs(2 * u64::from(hold)))
    }

    // ---- commands ----

    /// ManualStart (RFC 4271 8.1.2 event 1), or ManualStart_with_PassiveTcpEstablishment
    /// (event 4) when the configuration is passive. Ignored unless Idle, except that it
    /// re-enables automatic restart.
    pub fn start(&mut self, now: Instant) {
        self.enter(now);
        self.auto_restart = true;
        if self.state == State::Idle {
            self.failures = 0;
            self.timers.stop(Timer::IdleHold);
            self.automatic_start(now);
        }
        self.leave(now);
    }

    /// ManualStop (event 2): close with `notification` (default Cease/Administrative
    /// Shutdown, 6/2) if a connection is up, and stay in Idle until [`Session::start`].
    pub fn stop(&mut self, now: Instant, notification: Option<Notification>) {
        self.enter(now);
        self.auto_restart = false;
        self.timers.stop(Timer::IdleHold);
        if self.state != State::Idle {
            let sent = self.connected.then(|| {
                notification.unwrap_or(Notification {
                    code: nc::CEASE,
                    subcode: nc::CEASE_ADMIN_SHUTDOWN,
                    data: Bytes::new(),
                })
            });
            self.go_idle(sent.clone(), DownReason::AdminStop(sent), true, false);
        }
        self.leave(now);
    }

    /// ManualStop without a NOTIFICATION: the connection is closed as is, and the session
    /// stays in Idle until [`Session::start`]. For a speaker that is restarting (RFC 4724
    /// 4.2: a peer that negotiated graceful restart keeps our routes when the TCP session
    /// ends without a NOTIFICATION, while a NOTIFICATION makes a peer without RFC 8538
    /// drop them).
    pub fn stop_silently(&mut self, now: Instant) {
        self.enter(now);
        self.auto_restart = false;
        self.timers.stop(Timer::IdleHold);
        if self.state != State::Idle {
            self.go_idle(None, DownReason::AdminStop(None), true, false);
        }
        self.leave(now);
    }

    /// OpenCollisionDump (event 23): this connection lost a collision (RFC 4271 6.8, see
    /// [`resolve_collision`](super::resolve_collision)). Sends Cease/Connection Collision
    /// Resolution (6/7) and stays in Idle; the caller discards this session.
    pub fn collision_dump(&mut self, now: Instant) {
        self.enter(now);
        self.auto_restart = false;
        self.timers.stop(Timer::IdleHold);
        if self.state != State::Idle {
            let sent = self.connected.then_some(Notification {
                code: nc::CEASE,
                subcode: nc::CEASE_CONNECTION_COLLISION,
                data: Bytes::new(),
            });
            self.go_idle(sent, DownReason::CollisionDump, true, true);
        }
        self.leave(now);
    }

    /// Queue an UPDATE (Established only). Fails without queueing anything when the
    /// queue is full, so the caller can retry once [`Session::poll_transmit`] drained it.
    pub fn send_update(&mut self, update: &Update) -> Result<(), SendError> {
        self.check_send(0)?;
        let mut buf = BytesMut::new();
        // `encode_message` takes a `Message`; the clone is the price of one encoder.
        encode_message(&Message::Update(update.clone()), &self.codec, &mut buf)?;
        self.check_send(buf.len())?;
        self.update_since_keepalive = true;
        self.push_transmit(buf.freeze());
        Ok(())
    }

    /// Queue whole, already encoded messages (for UPDATEs encoded once for many peers
    /// sharing a [`CodecContext`]). All or nothing: each frame must be a complete message
    /// within the negotiated maximum length, and all of them must fit in the queue.
    pub fn send_encoded(
        &mut self,
        frames: impl IntoIterator<Item = Bytes>,
    ) -> Result<(), SendError> {
        self.check_send(0)?;
        let frames: Vec<Bytes> = frames.into_iter().collect();
        let max = self.codec.max_message_len();
        let mut total = 0usize;
        for frame in &frames {
            if frame.len() > max {
                return Err(EncodeError::TooLong {
                    len: frame.len(),
                    max,
                }
                .into());
            }
            if frame_len(frame, max) != Ok(Some(frame.len())) {
                return Err(EncodeError::Invalid(
                    "frame is not exactly one BGP message".to_string(),
                )
                .into());
            }
            total = total.saturating_add(frame.len());
        }
        self.check_send(total)?;
        for frame in frames {
            self.update_since_keepalive = true;
            self.push_transmit(frame);
        }
        Ok(())
    }

    /// Queue a ROUTE-REFRESH (RFC 2918), or a BoRR/EoRR marker (RFC 7313), for a
    /// negotiated family. Never refused for a full queue.
    pub fn send_route_refresh(&mut self, rr: RouteRefresh) -> Result<(), SendError> {
        let Some(n) = self
            .negotiated
            .as_ref()
            .filter(|_| self.state == State::Established)
        else {
            return Err(SendError::NotEstablished);
        };
        if !n.route_refresh && !n.enhanced_route_refresh {
            return Err(SendError::NotNegotiated("route refresh".into()));
        }
        if !n.has_family(rr.family) {
            return Err(SendError::NotNegotiated(format!("family {}", rr.family)));
        }
        if matches!(rr.subtype, RefreshSubtype::BoRR | RefreshSubtype::EoRR)
            && !n.enhanced_route_refresh
        {
            return Err(SendError::NotNegotiated("enhanced route refresh".into()));
        }
        let frame = self.encode(&Message::RouteRefresh(rr))?;
        self.push_transmit(frame);
        Ok(())
    }

    fn check_send(&self, extra: usize) -> Result<(), SendError> {
        if self.state != State::Established || !self.connected {
            return Err(SendError::NotEstablished);
        }
        if self.queued_bytes.saturating_add(extra) > self.config.max_queued_bytes {
            return Err(SendError::QueueFull {
                queued: self.queued_bytes,
                limit: self.config.max_queued_bytes,
            });
        }
        Ok(())
    }

    // ---- transport and clock input ----

    /// The transport connection is up: our connect succeeded (Tcp_CR_Acked, event 16) or
    /// we accepted the peer's (TcpConnectionConfirmed, event 17). In Idle the connection
    /// is refused with [`SessionEvent::Disconnect`]. When this session already has a
    /// connection the call is ignored: a second connection belongs in its own session,
    /// and the caller resolves the collision (RFC 4271 6.8). A connection the peer opened
    /// may be reported in Connect too; the caller then abandons its own pending attempt.
    pub fn handle_connected(&mut self, now: Instant) {
        self.enter(now);
        match self.state {
            State::Connect | State::Active if !self.connected => {
                self.connected = true;
                self.recv.clear();
                self.clear_transmit();
                self.timers.stop(Timer::ConnectRetry);
                match self.config.delay_open {
                    Some(delay) => self.timers.set(Timer::DelayOpen, now + delay),
                    None => self.send_open_and_wait(now),
                }
            }
            State::Idle => self.events.push_back(SessionEvent::Disconnect),
            // A second connection: tracked by the caller for collision detection.
            _ => {}
        }
        self.leave(now);
    }

    /// Our connection attempt failed (TcpConnectionFails, event 18, before the
    /// connection was up).
    pub fn handle_connect_failed(&mut self, now: Instant) {
        self.enter(now);
        match self.state {
            State::Connect | State::Active if !self.connected => {
                self.go_idle(None, DownReason::ConnectionFailed, false, true);
            }
            State::Idle => {}
            _ => self.connection_lost(now),
        }
        self.leave(now);
    }

    /// The connection closed or broke (TcpConnectionFails, event 18).
    pub fn handle_closed(&mut self, now: Instant) {
        self.enter(now);
        match self.state {
            State::Idle => {}
            State::Connect | State::Active if !self.connected => {
                self.go_idle(None, DownReason::ConnectionFailed, false, true);
            }
            _ => self.connection_lost(now),
        }
        self.leave(now);
    }

    /// Bytes received on the connection. Whole messages are processed at once; a partial
    /// one is kept (at most one message's worth of bytes).
    pub fn handle_data(&mut self, now: Instant, data: &[u8]) {
        self.enter(now);
        if self.connected {
            self.recv.extend_from_slice(data);
            self.process_recv(now);
        }
        self.leave(now);
    }

    /// Fire the timers due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.enter(now);
        for timer in Timer::ALL {
            match self.timers.get(timer) {
                Some(at) if at <= now => {
                    self.timers.stop(timer);
                    self.fire(timer, now);
                }
                _ => {}
            }
        }
        self.leave(now);
    }

    /// The caller holds input received on this connection that it has not passed to
    /// [`Session::handle_data`] yet (its own backpressure, such as a busy RIB): the peer is
    /// sending, so a HoldTimer due by `now` restarts instead of expiring over messages that
    /// arrived but were not read (RFC 4271 6.5 expires it when no message was *received*;
    /// FRR does the same with a non-empty input queue). Call it before
    /// [`Session::handle_timeout`]; once the held input is read the timer runs as usual.
    pub fn handle_input_held(&mut self, now: Instant) {
        self.enter(now);
        if self.timers.get(Timer::Hold).is_some_and(|at| at <= now) {
            let hold = match &self.negotiated {
                Some(n) => Duration::from_secs(u64::from(n.hold_time)),
                None => OPEN_HOLD_TIME,
            };
            self.timers.set(Timer::Hold, now + hold);
        }
        self.leave(now);
    }

    // ---- output ----

    /// Bytes to write to the connection, whole messages only. Taking them is how the
    /// caller tells the session the peer is reading (RFC 9687): stop polling while the
    /// socket is not writable.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        let first = self.transmit.pop_front()?;
        let c = &mut self.counts;
        MessageCounts::count(&first, &mut c.sent, &mut c.keepalives_sent);
        let mut out_len = first.len();
        let out = if first.len() < COALESCE_FRAME_LEN
            && self
                .transmit
                .front()
                .is_some_and(|f| first.len() + f.len() <= COALESCE_MAX)
        {
            let mut buf = BytesMut::with_capacity(COALESCE_MAX.min(self.queued_bytes));
            buf.extend_from_slice(&first);
            while let Some(next) = self.transmit.front() {
                if buf.len() + next.len() > COALESCE_MAX {
                    break;
                }
                buf.extend_from_slice(next);
                let c = &mut self.counts;
                MessageCounts::count(next, &mut c.sent, &mut c.keepalives_sent);
                self.transmit.pop_front();
            }
            out_len = buf.len();
            buf.freeze()
        } else {
            first
        };
        self.queued_bytes = self.queued_bytes.saturating_sub(out_len);
        self.transmit_progress = true;
        if self.transmit.is_empty() {
            self.timers.stop(Timer::SendHold);
            self.send_hold_tentative = false;
        }
        Some(out)
    }

    /// When [`Session::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// The next event for the caller.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    // ---- internals ----

    /// Common prologue of every call that passes `now`.
    fn enter(&mut self, now: Instant) {
        self.last_now = Some(now);
        self.refresh_send_hold(now);
    }

    /// Common epilogue of every call that passes `now`.
    fn leave(&mut self, now: Instant) {
        self.refresh_send_hold(now);
    }

    /// RFC 9687: the SendHoldTimer runs while a connection is up past the OPEN and
    /// queued bytes are not being taken. It restarts whenever the caller took bytes.
    fn refresh_send_hold(&mut self, now: Instant) {
        let relevant = self.connected
            && matches!(
                self.state,
                State::OpenSent | State::OpenConfirm | State::Established
            )
            && !self.transmit.is_empty();
        if !relevant {
            self.timers.stop(Timer::SendHold);
            self.send_hold_tentative = false;
            self.transmit_progress = false;
            return;
        }
        if !self.timers.is_running(Timer::SendHold)
            || self.send_hold_tentative
            || self.transmit_progress
        {
            self.timers
                .set(Timer::SendHold, now + self.send_hold_time());
            self.send_hold_tentative = false;
            self.transmit_progress = false;
        }
    }

    fn set_state(&mut self, to: State) {
        if self.state != to {
            let from = self.state;
            self.state = to;
            self.events
                .push_back(SessionEvent::StateChanged { from, to });
        }
    }

    fn clear_transmit(&mut self) {
        self.transmit.clear();
        self.queued_bytes = 0;
    }

    fn push_transmit(&mut self, frame: Bytes) {
        self.queued_bytes += frame.len();
        self.transmit.push_back(frame);
        // `send_*` have no `now`: make the SendHoldTimer due at once (the last instant we
        // saw), so the caller's next `handle_timeout` starts it from a real `now`. In the
        // usual case the caller drains the queue first and the timer is never needed.
        if !self.timers.is_running(Timer::SendHold)
            && self.connected
            && matches!(
                self.state,
                State::OpenSent | State::OpenConfirm | State::Established
            )
        {
            if let Some(base) = self.last_now {
                self.timers.set(Timer::SendHold, base);
                self.send_hold_tentative = true;
            }
        }
    }

    fn encode(&self, msg: &Message) -> Result<Bytes, EncodeError> {
        let mut buf = BytesMut::new();
        encode_message(msg, &self.codec, &mut buf)?;
        Ok(buf.freeze())
    }

    /// Queue a KEEPALIVE, which cannot fail to encode.
    fn send_keepalive(&mut self) {
        if let Ok(frame) = self.encode(&Message::Keepalive) {
            self.push_transmit(frame);
        }
    }

    /// Queue a NOTIFICATION; when its data makes it too long, send it without the data.
    fn send_notification(&mut self, n: &Notification) {
        let frame = self.encode(&Message::Notification(n.clone())).or_else(|_| {
            self.encode(&Message::Notification(Notification {
                data: Bytes::new(),
                ..n.clone()
            }))
        });
        if let Ok(frame) = frame {
            self.push_transmit(frame);
        }
    }

    /// ManualStart / AutomaticStart from Idle: Connect (and ask the caller to connect),
    /// or Active when passive.
    fn automatic_start(&mut self, now: Instant) {
        self.clear_transmit();
        self.recv.clear();
        self.negotiated = None;
        self.codec = CodecContext::default();
        if self.config.passive {
            self.set_state(State::Active);
        } else {
            self.arm_connect_retry(now);
            self.set_state(State::Connect);
            self.events.push_back(SessionEvent::Connect);
        }
    }

    /// Send our OPEN and wait for the peer's with the large hold time (RFC 4271 8.2.2,
    /// Connect/Active on connection up, or DelayOpenTimer_Expires).
    fn send_open_and_wait(&mut self, now: Instant) {
        let open = self.config.local_open();
        match self.encode(&Message::Open(open)) {
            Ok(frame) => {
                self.set_state(State::OpenSent);
                self.push_transmit(frame);
                self.timers.set(Timer::Hold, now + OPEN_HOLD_TIME);
            }
            Err(e) => {
                // Only an unencodable configuration gets here (e.g. an oversized FQDN).
                let n = Notification {
                    code: nc::CEASE,
                    subcode: nc::CEASE_OTHER_CONFIG_CHANGE,
                    data: Bytes::new(),
                };
                self.go_idle(
                    Some(n.clone()),
                    DownReason::NotificationSent {
                        notification: n,
                        reason: format!("cannot encode our OPEN: {e}"),
                    },
                    false,
                    true,
                );
            }
        }
    }

    /// The peer's OPEN is acceptable: answer with KEEPALIVE and move to OpenConfirm with
    /// the negotiated timers (RFC 4271 8.2.2 OpenSent event 19; Connect/Active event 20
    /// first sends our OPEN).
    fn accept_open(&mut self, now: Instant, negotiated: Negotiated, send_open: bool) {
        self.timers.stop(Timer::ConnectRetry);
        self.timers.stop(Timer::DelayOpen);
        if send_open {
            match self.encode(&Message::Open(negotiated.local_open.clone())) {
                Ok(frame) => self.push_transmit(frame),
                Err(_) => {
                    // Same OPEN as `send_open_and_wait`; let it report the failure.
                    self.send_open_and_wait(now);
                    return;
                }
            }
        }
        self.codec = negotiated.codec.clone();
        self.set_state(State::OpenConfirm);
        self.send_keepalive();
        self.arm_session_timers(now, &negotiated);
        self.negotiated = Some(negotiated);
    }

    /// Hold and keepalive timers with the negotiated values; none when the Hold Time is
    /// zero (RFC 4271 4.2).
    fn arm_session_timers(&mut self, now: Instant, n: &Negotiated) {
        if n.hold_time == 0 {
            self.timers.stop(Timer::Hold);
            self.timers.stop(Timer::Keepalive);
        } else {
            self.timers.set(
                Timer::Hold,
                now + Duration::from_secs(u64::from(n.hold_time)),
            );
            let keepalive = self.keepalive_interval(n.keepalive_time);
            self.timers.set(Timer::Keepalive, now + keepalive);
        }
    }

    fn restart_hold_timer(&mut self, now: Instant) {
        if let Some(n) = &self.negotiated {
            if n.hold_time != 0 {
                let at = now + Duration::from_secs(u64::from(n.hold_time));
                self.timers.set(Timer::Hold, at);
            }
        }
    }

    /// Leave for Idle: optionally queue a NOTIFICATION (dropping any queued UPDATEs,
    /// which the peer would discard anyway), ask the caller to close when it did not
    /// report the close itself, report `reason`, and arm the automatic restart.
    fn go_idle(
        &mut self,
        notification: Option<Notification>,
        reason: DownReason,
        we_close: bool,
        count_failure: bool,
    ) {
        let had_transport = self.connected || self.state == State::Connect;
        let reason_is_refused = matches!(reason, DownReason::ConnectionFailed);
        self.clear_transmit();
        if let Some(n) = notification.filter(|_| self.connected) {
            self.send_notification(&n);
        }
        self.connected = false;
        self.recv.clear();
        self.negotiated = None;
        self.codec = CodecContext::default();
        self.timers.stop_all();
        self.update_since_keepalive = false;
        self.set_state(State::Idle);
        self.events.push_back(SessionEvent::Down(reason));
        if we_close && had_transport {
            self.events.push_back(SessionEvent::Disconnect);
        }
        if count_failure {
            self.failures = self.failures.saturating_add(1);
        }
        if self.auto_restart {
            if let Some(now) = self.last_now {
                let failures = self.failures.saturating_sub(1);
                let delay = if reason_is_refused {
                    self.refused_retry_delay(failures)
                } else {
                    self.retry_delay(failures)
                };
                self.timers.set(Timer::IdleHold, now + delay);
            }
        }
    }

    /// An error we detected on an open connection: NOTIFICATION, then Idle.
    fn fail(&mut self, error: NotificationError) {
        let notification = error.to_notification();
        self.go_idle(
            Some(notification.clone()),
            DownReason::NotificationSent {
                notification,
                reason: error.reason,
            },
            true,
            true,
        );
    }

    /// RFC 6608: a message the current state does not expect.
    fn unexpected(&mut self, what: &str) {
        let subcode = match self.state {
            State::OpenSent => nc::FSM_UNEXPECTED_IN_OPENSENT,
            State::OpenConfirm => nc::FSM_UNEXPECTED_IN_OPENCONFIRM,
            State::Established => nc::FSM_UNEXPECTED_IN_ESTABLISHED,
            _ => 0,
        };
        let reason = format!("unexpected {what} in state {}", self.state);
        self.fail(NotificationError::new(nc::FSM, subcode, reason));
    }

    /// The transport went away under an open connection (event 18).
    fn connection_lost(&mut self, now: Instant) {
        match self.state {
            // RFC 4271 8.2.2: with DelayOpen running (Connect), or in OpenSent, fall
            // back to Active and keep waiting for the peer.
            State::Connect | State::OpenSent => {
                self.connected = false;
                self.recv.clear();
                self.clear_transmit();
                self.timers.stop_all();
                self.failures = self.failures.saturating_add(1);
                if !self.config.passive {
                    // Closed before any OPEN came back: like a refused attempt (a peer not
                    // ready yet, or the losing side of crossing attempts), retried soon.
                    let delay = self.refused_retry_delay(self.failures.saturating_sub(1));
                    self.timers.set(Timer::ConnectRetry, now + delay);
                }
                self.set_state(State::Active);
                self.events
                    .push_back(SessionEvent::Down(DownReason::ConnectionClosed));
            }
            _ => self.go_idle(None, DownReason::ConnectionClosed, false, true),
        }
    }

    fn fire(&mut self, timer: Timer, now: Instant) {
        match (timer, self.state) {
            (Timer::IdleHold, State::Idle) if self.auto_restart => self.automatic_start(now),
            // RFC 4271 8.2.2 Connect event 9: abandon the attempt and try again, backing off.
            (Timer::ConnectRetry, State::Connect) => {
                self.failures = self.failures.saturating_add(1);
                self.events.push_back(SessionEvent::Disconnect);
                self.arm_connect_retry(now);
                self.events.push_back(SessionEvent::Connect);
            }
            // Active event 9: try connecting ourselves.
            (Timer::ConnectRetry, State::Active) if !self.connected => {
                self.arm_connect_retry(now);
                self.set_state(State::Connect);
                self.events.push_back(SessionEvent::Connect);
            }
            (Timer::DelayOpen, State::Connect | State::Active) if self.connected => {
                self.send_open_and_wait(now);
            }
            (Timer::Hold, State::OpenSent | State::OpenConfirm | State::Established) => {
                let n = Notification {
                    code: nc::HOLD_TIMER_EXPIRED,
                    subcode: 0,
                    data: Bytes::new(),
                };
                self.go_idle(Some(n), DownReason::HoldTimerExpired, true, true);
            }
            (Timer::Keepalive, State::OpenConfirm | State::Established) => {
                // An UPDATE queued since the last KEEPALIVE counts as one (RFC 4271 4.4).
                if !std::mem::take(&mut self.update_since_keepalive) {
                    self.send_keepalive();
                }
                if let Some(k) = self.negotiated.as_ref().map(|n| n.keepalive_time) {
                    if k != 0 {
                        let at = now + self.keepalive_interval(k);
                        self.timers.set(Timer::Keepalive, at);
                    }
                }
            }
            // RFC 9687 4: the peer has not taken our data for the SendHoldTime. The
            // queue is dropped; the NOTIFICATION is best effort.
            (Timer::SendHold, State::OpenSent | State::OpenConfirm | State::Established) => {
                let n = Notification {
                    code: nc::SEND_HOLD_TIMER_EXPIRED,
                    subcode: 0,
                    data: Bytes::new(),
                };
                self.go_idle(Some(n), DownReason::SendHoldTimerExpired, true, true);
            }
            // A timer that is meaningless in this state (cannot normally be armed).
            _ => {}
        }
    }

    /// Frame and process every whole message in the receive buffer.
    fn process_recv(&mut self, now: Instant) {
        while self.connected {
            let max = if self.negotiated.is_some() {
                self.codec.max_message_len()
            } else {
                MAX_MESSAGE_LEN
            };
            let len = match frame_len(&self.recv, max) {
                Ok(Some(len)) if len >= HEADER_LEN && len <= self.recv.len() => len,
                Ok(Some(len)) => {
                    self.fail(NotificationError::new(
                        nc::MESSAGE_HEADER,
                        nc::BAD_MESSAGE_LENGTH,
                        format!("framing returned an impossible length {len}"),
                    ));
                    return;
                }
                Ok(None) => return,
                Err(e) => {
                    self.fail(e);
                    return;
                }
            };
            let frame = self.recv.split_to(len).freeze();
            let c = &mut self.counts;
            MessageCounts::count(&frame, &mut c.received, &mut c.keepalives_received);
            match decode_message(&frame, &self.codec) {
                Ok(msg) => self.handle_message(now, msg),
                Err(e) => self.fail(e),
            }
        }
    }

    fn handle_message(&mut self, now: Instant, msg: Inbound) {
        // RFC 4271 8.2.2 events 24/25: a NOTIFICATION ends the session in every state.
        // The peer is not answered. An unsupported-version NOTIFICATION before OpenConfirm
        // (event 24) does not count as a failure.
        if let Inbound::Notification(n) = msg {
            let version_error = n.code == nc::OPEN_MESSAGE
                && n.subcode == nc::UNSUPPORTED_VERSION
                && matches!(self.state, State::Connect | State::Active | State::OpenSent);
            self.go_idle(
                None,
                DownReason::NotificationReceived(n),
                true,
                !version_error,
            );
            return;
        }
        match (self.state, msg) {
            // No connection in Idle, so nothing can arrive.
            (State::Idle, _) => {}
            // Event 20 (Connect/Active with DelayOpen running) and event 19 (OpenSent).
            (State::Connect | State::Active | State::OpenSent, Inbound::Open(open)) => {
                let send_open = self.state != State::OpenSent;
                match negotiate(&self.config, &open) {
                    Ok(negotiated) => self.accept_open(now, negotiated, send_open),
                    Err(e) => self.fail(e),
                }
            }
            (State::OpenConfirm | State::Established, Inbound::Open(_)) => {
                self.unexpected("OPEN");
            }
            // Event 26 in OpenConfirm: Established.
            (State::OpenConfirm, Inbound::Keepalive) => {
                self.restart_hold_timer(now);
                self.failures = 0;
                self.set_state(State::Established);
                if let Some(n) = &self.negotiated {
                    self.events
                        .push_back(SessionEvent::Established(Box::new(n.clone())));
                }
            }
            (State::Established, Inbound::Keepalive) => self.restart_hold_timer(now),
            // Event 27: UPDATE. RFC 7606 outcomes short of a reset are passed on.
            (State::Established, Inbound::Update(update)) => {
                self.restart_hold_timer(now);
                self.events
                    .push_back(SessionEvent::Update(Box::new(update)));
            }
            (State::Established, Inbound::RouteRefresh(rr)) => {
                self.restart_hold_timer(now);
                if self.route_refresh_acceptable(&rr) {
                    self.events.push_back(SessionEvent::RouteRefresh(rr));
                }
            }
            (_, Inbound::Keepalive) => self.unexpected("KEEPALIVE"),
            (_, Inbound::Update(_)) => self.unexpected("UPDATE"),
            (_, Inbound::RouteRefresh(_)) => self.unexpected("ROUTE-REFRESH"),
            (_, Inbound::Notification(_)) => {}
        }
    }

    /// RFC 2918 4 / RFC 7313 5: a ROUTE-REFRESH for a family not negotiated, or with a
    /// reserved subtype (or BoRR/EoRR without enhanced route refresh), is ignored.
    fn route_refresh_acceptable(&self, rr: &RouteRefresh) -> bool {
        let Some(n) = &self.negotiated else {
            return false;
        };
        let subtype_ok = match rr.subtype {
            RefreshSubtype::Normal => n.route_refresh || n.enhanced_route_refresh,
            RefreshSubtype::BoRR | RefreshSubtype::EoRR => n.enhanced_route_refresh,
            RefreshSubtype::Reserved(_) => false,
        };
        subtype_ok && n.has_family(rr.family)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(jitter: Option<u64>) -> Session {
        let mut c = SessionConfig::new(65001, Ipv4Addr::new(10, 0, 0, 1), None);
        c.connect_retry = Duration::from_secs(5);
        c.connect_retry_max = Duration::from_secs(120);
        c.jitter_seed = jitter;
        Session::new(c)
    }

    #[test]
    fn retry_delay_doubles_up_to_the_cap_without_overflow() {
        let mut s = session(None);
        let secs: Vec<u64> = (0..8).map(|f| s.retry_delay(f).as_secs()).collect();
        assert_eq!(secs, vec![5, 10, 20, 40, 80, 120, 120, 120]);
        assert_eq!(s.retry_delay(u32::MAX), Duration::from_secs(120));
    }

    #[test]
    fn a_refused_connect_retries_after_one_second_doubling_up_to_the_usual_backoff() {
        let mut s = session(None);
        let secs: Vec<u64> = (0..10)
            .map(|f| s.refused_retry_delay(f).as_secs())
            .collect();
        assert_eq!(secs, vec![1, 2, 4, 5, 10, 20, 40, 80, 120, 120]);
        assert_eq!(s.refused_retry_delay(u32::MAX), Duration::from_secs(120));
        // A ConnectRetryTime of 1 s or less has no quicker steps.
        let mut c = SessionConfig::new(65001, Ipv4Addr::new(10, 0, 0, 1), None);
        c.connect_retry = Duration::from_millis(300);
        c.connect_retry_max = Duration::from_secs(1);
        c.jitter_seed = None;
        let mut short = Session::new(c);
        let ms: Vec<u128> = (0..4)
            .map(|f| short.refused_retry_delay(f).as_millis())
            .collect();
        assert_eq!(ms, vec![300, 600, 1000, 1000]);
    }

    #[test]
    fn jitter_stays_within_three_quarters_and_one_and_is_reproducible() {
        let mut a = session(Some(42));
        let mut b = session(Some(42));
        let d = Duration::from_secs(100);
        let xs: Vec<Duration> = (0..1000).map(|_| a.jittered(d)).collect();
        let ys: Vec<Duration> = (0..1000).map(|_| b.jittered(d)).collect();
        assert_eq!(xs, ys, "same seed, same sequence");
        assert!(xs.iter().all(|x| *x >= Duration::from_secs(75) && *x <= d));
        let distinct: std::collections::HashSet<_> = xs.iter().collect();
        assert!(distinct.len() > 500, "spread: {}", distinct.len());
        let mut c = session(Some(43));
        assert_ne!(c.jittered(d), xs[0]);
    }

    #[test]
    fn timers_report_the_earliest_deadline() {
        let now = Instant::now();
        let mut t = Timers::default();
        assert_eq!(t.next(), None);
        t.set(Timer::Hold, now + Duration::from_secs(90));
        t.set(Timer::Keepalive, now + Duration::from_secs(30));
        assert_eq!(t.next(), Some(now + Duration::from_secs(30)));
        t.stop(Timer::Keepalive);
        assert_eq!(t.next(), Some(now + Duration::from_secs(90)));
        t.stop_all();
        assert!(!t.is_running(Timer::Hold));
    }

    #[test]
    fn config_is_normalised() {
        let mut c = SessionConfig::new(65001, Ipv4Addr::new(10, 0, 0, 1), None);
        c.connect_retry = Duration::ZERO;
        c.connect_retry_max = Duration::ZERO;
        let s = Session::new(c);
        assert_eq!(s.config().connect_retry, Duration::from_secs(1));
        assert_eq!(s.config().connect_retry_max, Duration::from_secs(1));
    }
}
