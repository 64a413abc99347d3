//! The peer driver: one configured peer's sessions, sans IO.
//!
//! A [`PeerDriver`] owns up to two connections, each with its own [`Session`]: the main
//! one, and while a connection collision is being resolved (RFC 4271 6.8, collision.rs)
//! or a restarted peer's new connection waits for its OPEN (RFC 4724 4.2, incoming.rs) a
//! second one. Around them it keeps what a peer is beyond one session: the rule for
//! keeping the peer's routes when a session ends (graceful restart, RFC 8538), the error
//! backoff for incoming connections, the restart after a teardown, the Hard Reset for
//! disable and removal, and the output slice the RIB handed over that did not fit the
//! session's queue yet.
//!
//! Shape (after `quinn-proto`'s `Connection`, like [`Session`]): getters; `handle_*` for
//! input from the transport and the clock; commands from the application (`teardown`,
//! `enable`, `reconfigure`, `stop`, ...); and `poll_*` for what the caller must do next:
//! [`PeerDriver::poll_event`] (open or close a connection, tell the RIB, return output
//! credit), [`PeerDriver::poll_transmit`] per connection (only while its socket can take
//! more: that is how the session's SendHoldTimer, RFC 9687, learns the peer is not
//! reading) and [`PeerDriver::poll_timeout`]. Time is only ever the `now` passed in.
//!
//! The caller owns the connections' bytes: it opens a connection for
//! [`PeerEvent::Connect`] and reports it with [`PeerDriver::handle_connected`], hands
//! over the ones the peer opens with [`PeerDriver::handle_accepted`], feeds what it reads
//! to [`PeerDriver::handle_data`] and closes on [`PeerEvent::Close`]. The tokio speaker
//! does this over TCP, the simulator over its in-memory links.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bgp_proto::session::{DownReason, Session, SessionEvent, State};
use bgp_proto::{Family, Notification, RefreshSubtype, RouteRefresh};
use bytes::Bytes;
use tracing::{debug, info, warn};

use crate::graceful::{self, Farewell};
use crate::message::{OutputSlice, RibInput};
use crate::settings::{Identity, PeerSettings};
use crate::{ConnId, PeerId};

mod collision;
mod conn;
mod incoming;
mod status;
#[cfg(test)]
mod tests;

use conn::Conn;
pub use conn::Transport;
pub use incoming::Refusal;
pub use status::{NotificationCount, PeerCounters, PeerStatus};

/// A drained event queue with room for more than this many events gives it back
/// ([`PeerDriver::poll_event`]).
const EVENTS_ROOM_KEPT: usize = 128;

/// What the caller must do for a peer driver (see the module docs).
#[derive(Debug)]
pub enum PeerEvent {
    /// Open a transport connection to the peer, known as `ConnId` from now on; report
    /// the outcome with [`PeerDriver::handle_connected`] or
    /// [`PeerDriver::handle_connect_failed`].
    Connect(ConnId),
    /// Close the connection (or abandon the connection attempt) after writing `last`,
    /// best effort: what the session still had queued, normally a NOTIFICATION.
    Close {
        /// The connection.
        conn: ConnId,
        /// Bytes to write before closing.
        last: Vec<Bytes>,
    },
    /// Hand this to the RIB driver, in order.
    Rib(RibInput),
    /// An output slice of the given session was taken: tell the RIB driver
    /// ([`RibDriver::handle_output_taken`](crate::RibDriver::handle_output_taken)).
    OutputTaken {
        /// The session the slice was for.
        session: u64,
    },
}

/// One configured peer (see the module docs).
#[derive(Debug)]
pub struct PeerDriver {
    id: PeerId,
    settings: PeerSettings,
    identity: Identity,
    main: Conn,
    extra: Option<Conn>,
    next_conn: u64,
    /// Frames of the current output slice that did not fit the session's queue yet
    /// (empty: none; the vector of the slice itself, drained from the front).
    held: Vec<Bytes>,
    /// Start the session again at this time (after a teardown).
    restart_at: Option<Instant>,
    /// Ends once the current connections are closed.
    stopping: bool,
    /// The main session last went down after an error: the peer's next connection waits
    /// for its backoff (incoming.rs).
    down_after_error: bool,
    /// Sessions that reached Established so far (numbers [`RibInput::Up`]).
    sessions: u64,
    status: PeerStatus,
    events: VecDeque<PeerEvent>,
}

impl PeerDriver {
    /// A driver for the peer `id`, its session started unless the peer is disabled.
    pub fn new(id: PeerId, settings: PeerSettings, identity: Identity, now: Instant) -> Self {
        let session = Session::new(settings.session_config(&identity, settings.passive));
        let mut d = PeerDriver {
            id,
            status: PeerStatus::new(settings.disabled, now),
            settings,
            identity,
            main: Conn::new(ConnId(0), session),
            extra: None,
            next_conn: 1,
            held: Vec::new(),
            restart_at: None,
            stopping: false,
            down_after_error: false,
            sessions: 0,
            events: VecDeque::new(),
        };
        if !d.settings.disabled {
            d.main.session.start(now);
        }
        d.after(now);
        d
    }

    // ---- getters ----

    /// The peer.
    pub fn id(&self) -> PeerId {
        self.id
    }

    /// Its settings.
    pub fn settings(&self) -> &PeerSettings {
        &self.settings
    }

    /// FSM state of the main connection.
    pub fn state(&self) -> State {
        self.main.session.state()
    }

    /// Live state and counters.
    pub fn status(&self) -> &PeerStatus {
        &self.status
    }

    /// Stopped ([`PeerDriver::stop`]) and every connection closed: the driver is done.
    pub fn is_finished(&self) -> bool {
        self.stopping && !self.main.has_transport() && self.extra.is_none()
    }

    /// Whether [`PeerDriver::handle_output`] takes a slice now: the session is
    /// Established and the last slice went into its queue.
    pub fn can_take_output(&self) -> bool {
        self.held.is_empty() && self.main.up && self.main.session.state() == State::Established
    }

    /// Whether `conn` has bytes for [`PeerDriver::poll_transmit`].
    pub fn wants_transmit(&self, conn: ConnId) -> bool {
        self.conn(conn)
            .is_some_and(|c| c.has_transport() && c.session.queued_bytes() > 0)
    }

    // ---- input from the transport and the clock ----

    /// Our connection attempt `conn` succeeded. False when the attempt was abandoned
    /// meanwhile: the caller closes the connection.
    pub fn handle_connected(&mut self, now: Instant, conn: ConnId, transport: Transport) -> bool {
        if self.main.id != conn || !self.main.connecting || self.main.has_transport() {
            return false;
        }
        debug!(peer = %self.settings.name, "connected");
        self.main.attach(conn, transport, true, &mut self.events);
        self.main.session.handle_connected(now);
        self.after(now);
        true
    }

    /// Our connection attempt `conn` failed.
    pub fn handle_connect_failed(&mut self, now: Instant, conn: ConnId, error: &str) {
        if self.main.id != conn || !self.main.connecting {
            return;
        }
        self.main.connecting = false;
        debug!(peer = %self.settings.name, error, "connect failed");
        self.main.session.handle_connect_failed(now);
        self.after(now);
        // After the session's own "connection failed": the system's reason is what an
        // operator needs (`show peers`, BIRD's `Socket: Connection refused`).
        self.status.facts().last_error = Some(format!("connect: {error}"));
    }

    /// Bytes read from `conn`.
    pub fn handle_data(&mut self, now: Instant, conn: ConnId, data: &[u8]) {
        if let Some(c) = self.conn_mut(conn) {
            c.session.handle_data(now, data);
            self.after(now);
        }
    }

    /// `conn` closed or broke (`error`: how, for the log).
    pub fn handle_closed(&mut self, now: Instant, conn: ConnId, error: Option<&str>) {
        let name = self.settings.name.clone();
        if let Some(c) = self.conn_mut(conn) {
            if let Some(e) = error {
                debug!(peer = %name, error = %e, "connection error");
            }
            c.session.handle_closed(now);
            self.after(now);
        }
    }

    /// The time from [`PeerDriver::poll_timeout`] came. `input_held`: the caller holds
    /// input it read from the peer but has not passed on yet (its own backpressure, such
    /// as a busy RIB): the peer is sending, so a HoldTimer is not judged over it
    /// ([`Session::handle_input_held`]). Timers never wait for the RIB: a KEEPALIVE goes
    /// out whatever the RIB is doing.
    pub fn handle_timeout(&mut self, now: Instant, input_held: bool) {
        if self.restart_at.is_some_and(|t| t <= now) {
            self.restart_at = None;
            if !self.stopping && !self.settings.disabled {
                self.set_disabled(false);
                self.main.session.start(now);
            }
        }
        for c in std::iter::once(&mut self.main).chain(self.extra.as_mut()) {
            if input_held {
                c.session.handle_input_held(now);
            }
            c.session.handle_timeout(now);
        }
        self.after(now);
    }

    // ---- commands ----

    /// Closes every connection with `notification` and, after `restart_after`, starts
    /// again; `None` keeps the session down until [`PeerDriver::enable`]. `hard_reset`:
    /// the peer must drop our routes, sent as Cease / Hard Reset where the N bit was
    /// negotiated (RFC 8538 3).
    pub fn teardown(
        &mut self,
        now: Instant,
        notification: Notification,
        restart_after: Option<Duration>,
        hard_reset: bool,
    ) {
        self.stop_all(now, notification, Farewell::hard_reset_if(hard_reset));
        match restart_after {
            Some(d) => self.restart_at = Some(now + d),
            None => self.set_disabled(true),
        }
        self.after(now);
    }

    /// Starts a session that was torn down without restart (or configured disabled).
    pub fn enable(&mut self, now: Instant) {
        self.settings.disabled = false;
        self.restart_at = None;
        self.set_disabled(false);
        self.main.session.start(now);
        self.after(now);
    }

    /// New settings. With `restart`, the session is closed with Cease / Other
    /// Configuration Change (RFC 4486) and established again with them; otherwise only
    /// a change of `disabled` acts (stop with a Hard Reset, or start).
    pub fn reconfigure(&mut self, now: Instant, settings: PeerSettings, restart: bool) {
        let was_disabled = self.settings.disabled;
        self.settings = settings;
        if restart {
            self.stop_all(
                now,
                Notification {
                    code: bgp_proto::notification_code::CEASE,
                    subcode: bgp_proto::notification_code::CEASE_OTHER_CONFIG_CHANGE,
                    data: Bytes::new(),
                },
                Farewell::Notify,
            );
            // Let the old session report its end (logs, RIB) before replacing it.
            self.process(now);
            if let Some(mut c) = self.extra.take() {
                c.close(&mut self.events, &mut self.status.counters);
            }
            self.main.close(&mut self.events, &mut self.status.counters);
            self.main = self.new_main_conn();
            if !self.settings.disabled {
                self.main.session.start(now);
            }
        } else if self.settings.disabled && !was_disabled {
            self.stop_all(
                now,
                Notification::admin_shutdown("peer disabled in configuration"),
                Farewell::HardReset,
            );
        } else if !self.settings.disabled && was_disabled {
            self.main.session.start(now);
        }
        self.set_disabled(self.settings.disabled);
        self.after(now);
    }

    /// Asks the peer to send its routes again (RFC 2918), for inbound soft
    /// reconfiguration.
    pub fn route_refresh(&mut self, now: Instant, family: Family) {
        let rr = RouteRefresh {
            family,
            subtype: RefreshSubtype::Normal,
        };
        if let Err(e) = self.main.session.send_route_refresh(rr) {
            debug!(peer = %self.settings.name, error = %e, "no route refresh sent");
        }
        self.after(now);
    }

    /// Closes every connection with `notification`, as `farewell` makes of it (see
    /// [`Farewell`]), for good: the driver is finished once they are closed.
    pub fn stop(&mut self, now: Instant, notification: Notification, farewell: Farewell) {
        self.stopping = true;
        self.restart_at = None;
        self.stop_all(now, notification, farewell);
        self.after(now);
    }

    /// An output slice from the RIB. Its frames go into the session's queue as it has
    /// room, the rest waits here. A slice for a session that is over is dropped (the RIB
    /// resets that session's Adj-RIB-Out when it learns it went down, and sends the
    /// whole table again after the next Up). While the last slice still waits
    /// ([`PeerDriver::can_take_output`] is false) the slice is handed back.
    pub fn handle_output(&mut self, now: Instant, slice: OutputSlice) -> Result<(), OutputSlice> {
        let current = slice.session == self.sessions
            && self.main.up
            && self.main.session.state() == State::Established;
        if !current {
            return Ok(());
        }
        if !self.held.is_empty() {
            return Err(slice);
        }
        self.held = slice.frames;
        self.events.push_back(PeerEvent::OutputTaken {
            session: slice.session,
        });
        self.after(now);
        Ok(())
    }

    // ---- output ----

    /// Bytes to write to `conn`. Call only while its socket can take them: taking them is
    /// how the session learns the peer is reading (RFC 9687).
    pub fn poll_transmit(&mut self, conn: ConnId) -> Option<Bytes> {
        let b = {
            let c = self.conn_mut(conn)?;
            if !c.has_transport() {
                return None;
            }
            c.session.poll_transmit()
        };
        if !self.held.is_empty() && self.main.id == conn {
            self.push_held();
        }
        self.count();
        b
    }

    /// The next thing to do (see [`PeerEvent`]).
    pub fn poll_event(&mut self) -> Option<PeerEvent> {
        let event = self.events.pop_front();
        if event.is_none() && self.events.capacity() > EVENTS_ROOM_KEPT {
            // One read can carry a thousand small UPDATEs: the queue does not keep the
            // room of such a burst for the life of the peer.
            self.events = VecDeque::new();
        }
        event
    }

    /// When [`PeerDriver::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        [
            self.main.session.poll_timeout(),
            self.extra.as_ref().and_then(|c| c.session.poll_timeout()),
            self.restart_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    // ---- internals ----

    fn next_conn_id(&mut self) -> ConnId {
        let id = ConnId(self.next_conn);
        self.next_conn += 1;
        id
    }

    /// A fresh main connection with the configured mode.
    fn new_main_conn(&mut self) -> Conn {
        let id = self.next_conn_id();
        Conn::new(
            id,
            Session::new(
                self.settings
                    .session_config(&self.identity, self.settings.passive),
            ),
        )
    }

    fn conn(&self, id: ConnId) -> Option<&Conn> {
        if self.main.id == id {
            Some(&self.main)
        } else {
            self.extra.as_ref().filter(|c| c.id == id)
        }
    }

    fn conn_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        if self.main.id == id {
            Some(&mut self.main)
        } else {
            self.extra.as_mut().filter(|c| c.id == id)
        }
    }

    fn set_disabled(&mut self, disabled: bool) {
        if self.status.disabled != disabled {
            self.status.facts().disabled = disabled;
        }
    }

    /// After every input or command: output into the session, then its events.
    fn after(&mut self, now: Instant) {
        self.push_held();
        self.process(now);
        self.count();
    }

    /// Gathers the messages both sessions counted, and the main session's queue depth.
    fn count(&mut self) {
        let counters = &mut self.status.counters;
        self.main.count(counters);
        if let Some(c) = &mut self.extra {
            c.count(counters);
        }
        counters.output_queue_bytes = self.main.session.queued_bytes() as u64;
    }

    /// Stops every connection with `n` (sent only where a connection is up), as
    /// `farewell` makes of it for that connection: a Hard Reset where the N bit was
    /// negotiated (RFC 8538 section 3), or no NOTIFICATION for a restart towards a peer
    /// without it ([`graceful::farewell_notification`]).
    fn stop_all(&mut self, now: Instant, n: Notification, farewell: Farewell) {
        for c in std::iter::once(&mut self.main).chain(self.extra.as_mut()) {
            match graceful::farewell_notification(n.clone(), farewell, c.session.negotiated()) {
                Some(n) => c.session.stop(now, Some(n)),
                None => c.session.stop_silently(now),
            }
        }
    }

    /// Moves as much of the held output as the session's queue accepts; the rest stays
    /// held until `poll_transmit` drains the queue. A slice larger than the whole queue
    /// thus flows through in parts instead of waiting for room that can never appear.
    fn push_held(&mut self) {
        if self.held.is_empty() {
            return;
        }
        if self.main.session.state() != State::Established {
            // The session went down; the RIB resends everything on the next Up.
            self.held = Vec::new();
            return;
        }
        let capacity = self.main.session.send_capacity();
        let mut fit = 0;
        let mut size = 0usize;
        for frame in &self.held {
            if size + frame.len() > capacity {
                break;
            }
            size += frame.len();
            fit += 1;
        }
        if fit == 0 {
            return;
        }
        // The frames move into the session's queue, the rest moves up. They fit in its
        // send capacity, so the queue cannot refuse them as full: an error means they
        // cannot be sent on this session at all.
        match self.main.session.send_encoded(self.held.drain(..fit)) {
            Ok(()) => {
                self.status.counters.updates_sent += fit as u64;
                if self.held.is_empty() {
                    // The slice is through: its vector is not kept.
                    self.held = Vec::new();
                }
            }
            Err(e) => {
                warn!(peer = %self.settings.name, error = %e, "dropping outbound UPDATE batch");
                self.held = Vec::new();
            }
        }
    }

    /// Starts an outbound connection attempt for the main session.
    fn start_connect(&mut self) {
        if self.main.has_transport() || self.stopping {
            return;
        }
        if self.main.connecting {
            self.events.push_back(PeerEvent::Close {
                conn: self.main.id,
                last: Vec::new(),
            });
        }
        let id = self.next_conn_id();
        self.main.id = id;
        self.main.connecting = true;
        self.events.push_back(PeerEvent::Connect(id));
    }

    /// Drains session events of both connections, acting on each.
    fn process(&mut self, now: Instant) {
        loop {
            let mut progressed = false;
            while let Some(ev) = self.main.session.poll_event() {
                progressed = true;
                self.event(true, ev, now);
            }
            // One at a time: an event may promote the extra connection to main, after
            // which its remaining events are drained as main events.
            while let Some(ev) = self.extra.as_mut().and_then(|c| c.session.poll_event()) {
                progressed = true;
                self.event(false, ev, now);
            }
            self.replace_restarted(now);
            self.resolve_collision(now);
            // Drop a finished extra connection.
            if self
                .extra
                .as_ref()
                .is_some_and(|c| c.session.state() == State::Idle && !c.has_transport())
            {
                self.extra = None;
            }
            if !progressed {
                break;
            }
        }
    }

    fn event(&mut self, is_main: bool, ev: SessionEvent, now: Instant) {
        match ev {
            SessionEvent::Connect => {
                if is_main {
                    self.start_connect();
                }
            }
            SessionEvent::Disconnect => {
                if is_main {
                    self.main.close(&mut self.events, &mut self.status.counters);
                } else if let Some(c) = &mut self.extra {
                    c.close(&mut self.events, &mut self.status.counters);
                }
            }
            SessionEvent::StateChanged { from, to } => {
                info!(peer = %self.settings.name, %from, %to, "session state changed");
                if is_main {
                    let s = self.status.facts();
                    s.state = to;
                    s.since = now;
                }
            }
            SessionEvent::Established(neg) => {
                if !is_main && self.extra.as_ref().is_some_and(|c| c.replaces_established) {
                    // The restarted peer's new session (incoming.rs).
                    self.replace_restarted(now);
                } else if !is_main {
                    // The main connection is gone or still pending (the peer completed
                    // this one without answering our OPEN there): promote.
                    self.promote_extra(now);
                }
                let Some(t) = self.main.transport else {
                    return;
                };
                info!(
                    peer = %self.settings.name,
                    peer_as = neg.peer_as,
                    peer_id = %neg.peer_id,
                    hold_time = neg.hold_time,
                    families = ?neg.families,
                    "session established"
                );
                {
                    let s = self.status.facts();
                    s.negotiated = Some(neg.clone());
                    s.local_addr = Some(t.local);
                    s.remote_addr = Some(t.remote);
                    s.last_error = None;
                }
                self.status.counters.established_transitions += 1;
                self.main.up = true;
                self.held = Vec::new();
                // RFC 4724 4.1: the restart state bit belongs to the OPENs of the restart
                // only; later sessions with this peer are ordinary.
                self.identity.restarting = false;
                self.sessions += 1;
                self.events.push_back(PeerEvent::Rib(RibInput::Up {
                    session: self.sessions,
                    negotiated: neg,
                    local: t.local.ip(),
                    link_global_v6: t.link_global_v6,
                }));
            }
            SessionEvent::Update(update) => {
                if !is_main || !self.main.up {
                    return;
                }
                if let Some(r) = &update.treat_as_withdraw {
                    warn!(peer = %self.settings.name, reason = %r, "UPDATE treated as withdraw (RFC 7606)");
                }
                for d in &update.discarded {
                    warn!(peer = %self.settings.name, reason = %d, "attribute discarded (RFC 7606)");
                }
                self.status.counters.updates_received += 1;
                self.events
                    .push_back(PeerEvent::Rib(RibInput::Update(update)));
            }
            SessionEvent::RouteRefresh(refresh) => {
                if !is_main || !self.main.up {
                    return;
                }
                self.status.counters.route_refresh_received += 1;
                self.events
                    .push_back(PeerEvent::Rib(RibInput::RouteRefresh(refresh)));
            }
            SessionEvent::Down(reason) => self.down(is_main, reason, now),
        }
    }

    fn down(&mut self, is_main: bool, reason: DownReason, now: Instant) {
        let conn = if is_main { "main" } else { "collision" };
        self.status.session_down(&self.settings.name, conn, &reason);
        // The connection is over (the peer closed it, or we did): anything still queued
        // (a NOTIFICATION) is written first.
        if !is_main {
            if let Some(c) = &mut self.extra {
                c.close(&mut self.events, &mut self.status.counters);
            }
            return;
        }
        self.main.close(&mut self.events, &mut self.status.counters);
        self.down_after_error = incoming::counts_as_error(&reason);
        let was_up = std::mem::take(&mut self.main.up);
        // RFC 4724 4.2 / RFC 8538: whether the peer's routes are retained as stale.
        let graceful = was_up
            && self.status.negotiated.as_deref().is_some_and(|n| {
                graceful::retains_routes(&self.settings.graceful_restart, n, &reason)
            });
        {
            let s = self.status.facts();
            s.negotiated = None;
            s.last_error = Some(reason.to_string());
        }
        if was_up {
            self.events.push_back(PeerEvent::Rib(RibInput::Down {
                graceful,
                reason: reason.clone(),
            }));
        }
        // A main session promoted from a passive collision winner restarts with the
        // configured mode, and one created during our restart without the restart state
        // bit.
        let sc = self.main.session.config();
        let stale_config = sc.passive != self.settings.passive
            || sc
                .capabilities
                .graceful_restart
                .as_ref()
                .is_some_and(|g| g.restart_state != self.identity.restarting);
        if stale_config && !self.stopping && !self.status.disabled {
            self.main.close(&mut self.events, &mut self.status.counters);
            self.main = self.new_main_conn();
            self.main.session.start(now);
        }
    }
}
