//! One task per configured peer: drives the sans-IO [`Session`] over tokio TCP streams.
//!
//! The task owns up to two connections, each with its own [`Session`]: the main one, and
//! while a connection collision is being resolved (RFC 4271 section 6.8) a second one for
//! the connection the peer opened. Each connection has a reader task (bytes in) and a
//! writer task (bytes out) linked by small bounded channels, so:
//! - inbound: the peer task queues decoded UPDATEs and session events in its [`PeerFeed`],
//!   which hands them to the RIB task as the RIB's input budget allows (rib_input.rs);
//!   while the feed holds anything the task stops reading, the reader channel fills, the
//!   reader stops reading and TCP flow control slows the peer down (backpressure, no
//!   unbounded buffer). The task itself never waits on the RIB: its timers keep running,
//!   so a busy RIB delays routes but drops no session, and a HoldTimer is not judged over
//!   input that arrived but was held back (`Session::handle_input_held`);
//! - outbound: bytes are taken from the session only while the writer has room, which is
//!   how the session's SendHoldTimer (RFC 9687) learns that the peer is not reading.
//!
//! Outbound UPDATE frames come from the RIB on a separate bounded channel that is only read
//! while the session has queue space, so a slow peer makes the RIB keep its updates (the
//! RIB task never blocks on a peer).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bgp_proto::session::{
    resolve_collision, CollisionOutcome, DownReason, Negotiated, Session, SessionEvent, State,
};
use bgp_proto::{notification_code as nc, Family, Notification, RouteRefresh};
use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

use crate::config::{GlobalConfig, PeerConfig};
use crate::net;
use crate::rib_input::PeerFeed;
pub(crate) use crate::rib_input::RibInput;
use conn::{Conn, Io, IO_QUEUE, NEXT_CONN_ID};

mod conn;
pub(crate) mod graceful;
mod incoming;
mod settings;

pub(crate) use settings::{session_config, socket_options};

/// Commands to a peer task.
#[derive(Debug)]
pub(crate) enum PeerCmd {
    /// A connection the peer opened to one of our listeners.
    Incoming(TcpStream, SocketAddr),
    /// Close with `notification` and, after `restart_after`, start again; `None` keeps
    /// the session down until [`PeerCmd::Enable`]. `hard_reset`: the peer must drop our
    /// routes, sent as Cease / Hard Reset where the N bit was negotiated (graceful.rs).
    Teardown {
        notification: Notification,
        restart_after: Option<Duration>,
        hard_reset: bool,
    },
    /// Start a session that was torn down without restart.
    Enable,
    /// New configuration. With `restart`, close with Cease/Other Configuration Change
    /// (RFC 4486) and re-establish with the new parameters.
    Reconfigure {
        config: Box<PeerConfig>,
        restart: bool,
    },
    /// Ask the peer to send its routes again (RFC 2918), for inbound soft reconfiguration.
    RouteRefresh(Family),
    /// Close with `notification` and end the task (`hard_reset` as for `Teardown`).
    Stop {
        notification: Notification,
        hard_reset: bool,
    },
}

/// Live state of a peer, shared with the control socket and the library API.
#[derive(Clone, Debug)]
pub struct PeerShared {
    /// FSM state of the main connection.
    pub state: State,
    /// When `state` was entered.
    pub since: Instant,
    /// Administratively disabled.
    pub disabled: bool,
    /// The last reason the session went down.
    pub last_error: Option<String>,
    /// The last NOTIFICATION we sent, rendered.
    pub last_notification_sent: Option<String>,
    /// The last NOTIFICATION the peer sent, rendered.
    pub last_notification_received: Option<String>,
    /// Negotiated parameters while Established.
    pub negotiated: Option<Box<Negotiated>>,
    /// Our end of the current connection.
    pub local_addr: Option<SocketAddr>,
    /// The peer's end of the current connection.
    pub remote_addr: Option<SocketAddr>,
    /// UPDATE messages received.
    pub updates_received: u64,
    /// UPDATE messages sent.
    pub updates_sent: u64,
    /// NOTIFICATIONs sent.
    pub notifications_sent: u64,
    /// NOTIFICATIONs received.
    pub notifications_received: u64,
    /// ROUTE-REFRESH messages received.
    pub route_refresh_received: u64,
    /// Times the session reached Established.
    pub established_transitions: u64,
}

impl PeerShared {
    pub(crate) fn new(disabled: bool) -> PeerShared {
        PeerShared {
            state: State::Idle,
            since: Instant::now(),
            disabled,
            last_error: None,
            last_notification_sent: None,
            last_notification_received: None,
            negotiated: None,
            local_addr: None,
            remote_addr: None,
            updates_received: 0,
            updates_sent: 0,
            notifications_sent: 0,
            notifications_received: 0,
            route_refresh_received: 0,
            established_transitions: 0,
        }
    }
}

/// Handle the speaker keeps for a running peer task.
pub(crate) struct PeerHandle {
    pub config: PeerConfig,
    pub cmd: mpsc::Sender<PeerCmd>,
    pub shared: Arc<Mutex<PeerShared>>,
    pub task: JoinHandle<()>,
}

/// Settings every peer task shares.
#[derive(Clone, Debug)]
pub(crate) struct PeerEnv {
    pub global: Arc<GlobalConfig>,
    /// We are restarting (RFC 4724 restart state bit).
    pub restarting: bool,
    /// Forwarding state is kept across our restart (RFC 4724 F bit).
    pub forwarding_preserved: bool,
}

/// The peer task.
pub(crate) struct PeerTask {
    name: String,
    cfg: PeerConfig,
    env: PeerEnv,
    shared: Arc<Mutex<PeerShared>>,
    cmd_rx: mpsc::Receiver<PeerCmd>,
    out_rx: mpsc::Receiver<Vec<Bytes>>,
    /// Session events for the RIB, handed over as its input budget allows.
    feed: PeerFeed,
    io_tx: mpsc::Sender<Io>,
    io_rx: mpsc::Receiver<Io>,
    main: Conn,
    extra: Option<Conn>,
    /// A batch from the RIB that did not fit in the session queue yet.
    held: Option<Vec<Bytes>>,
    /// Restart the session at this time (after a teardown).
    restart_at: Option<tokio::time::Instant>,
    /// Task ends after the current connection closed.
    stopping: bool,
    /// Writers finishing the last bytes of closed connections.
    flushing: Vec<JoinHandle<()>>,
    /// The main session last went down after an error: the peer's next connection waits
    /// for its backoff (incoming.rs).
    down_after_error: bool,
    /// Refused connections logged (a peer can reconnect as fast as it likes).
    refusals: crate::log_limit::LogLimit,
}

impl PeerTask {
    pub(crate) fn new(
        cfg: PeerConfig,
        env: PeerEnv,
        shared: Arc<Mutex<PeerShared>>,
        cmd_rx: mpsc::Receiver<PeerCmd>,
        out_rx: mpsc::Receiver<Vec<Bytes>>,
        feed: PeerFeed,
    ) -> PeerTask {
        let (io_tx, io_rx) = mpsc::channel(IO_QUEUE);
        let main = Conn::new(Session::new(session_config(&cfg, &env, cfg.passive)));
        PeerTask {
            name: cfg.name.clone(),
            cfg,
            env,
            shared,
            cmd_rx,
            out_rx,
            feed,
            io_tx,
            io_rx,
            main,
            extra: None,
            held: None,
            restart_at: None,
            stopping: false,
            flushing: Vec::new(),
            down_after_error: false,
            refusals: Default::default(),
        }
    }

    fn shared(&self) -> std::sync::MutexGuard<'_, PeerShared> {
        self.shared.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs until stopped.
    pub(crate) async fn run(mut self) {
        let now = Instant::now();
        if !self.cfg.disabled {
            self.main.session.start(now);
        }
        self.process();
        loop {
            if self.stopping && !self.main.has_transport() && self.extra.is_none() {
                break;
            }
            let deadline = [
                self.main.session.poll_timeout(),
                self.extra.as_ref().and_then(|c| c.session.poll_timeout()),
            ]
            .into_iter()
            .flatten()
            .min()
            .map(tokio::time::Instant::from_std);
            let restart_at = self.restart_at;
            let can_take = self.held.is_none()
                && self.main.up
                && self.main.session.state() == State::Established;
            tokio::select! {
                cmd = self.cmd_rx.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => self.command(PeerCmd::Stop {
                        notification: Notification {
                            code: nc::CEASE,
                            subcode: nc::CEASE_PEER_DECONFIGURED,
                            data: Bytes::new(),
                        },
                        hard_reset: false,
                    }),
                },
                // While the RIB has not taken what this session produced, the socket is
                // not read: TCP flow control slows the peer down (rib_input.rs).
                Some(io) = self.io_rx.recv(), if !self.feed.is_backlogged() => self.io(io),
                _ = self.feed.deliver(), if self.feed.is_backlogged() => {}
                Some(permit) = self.main.writable() => {
                    if let Some(b) = self.main.session.poll_transmit() {
                        permit.send(b);
                    }
                }
                Some(permit) = async {
                    match &self.extra { Some(c) => c.writable().await, None => std::future::pending().await }
                } => {
                    if let Some(c) = &mut self.extra {
                        if let Some(b) = c.session.poll_transmit() {
                            permit.send(b);
                        }
                    }
                }
                Some(batch) = self.out_rx.recv(), if can_take => {
                    self.held = Some(batch);
                }
                _ = sleep_opt(deadline) => self.timeout(),
                _ = sleep_opt(restart_at) => {
                    self.restart_at = None;
                    if !self.stopping && !self.cfg.disabled {
                        self.set_disabled(false);
                        self.main.session.start(Instant::now());
                    }
                }
            }
            self.push_held();
            self.process();
            self.flushing.retain(|h| !h.is_finished());
        }
        for f in self.flushing.drain(..) {
            let _ = f.await;
        }
        debug!(peer = %self.name, "peer task ended");
    }

    /// The earliest timer is due. Timers never wait for the RIB (a KEEPALIVE goes out
    /// whatever the RIB is doing), and received input is read before a HoldTimer is judged:
    /// what already arrived is passed to the sessions first, and input held back because
    /// the RIB has not taken the last messages yet counts as received (the peer is
    /// sending; we are the ones not reading).
    fn timeout(&mut self) {
        let now = Instant::now();
        for _ in 0..IO_QUEUE {
            if self.feed.is_backlogged() {
                break;
            }
            match self.io_rx.try_recv() {
                Ok(io) => {
                    self.io(io);
                    self.process();
                }
                Err(_) => break,
            }
        }
        let held = self.feed.is_backlogged();
        for c in std::iter::once(&mut self.main).chain(self.extra.as_mut()) {
            if held {
                c.session.handle_input_held(now);
            }
            c.session.handle_timeout(now);
        }
    }

    /// Moves as much of the held RIB batch into the session as its queue accepts; the
    /// rest stays held until `poll_transmit` drains the queue. A batch larger than the
    /// whole queue (the full table after session start) thus flows through in slices
    /// instead of waiting for room that can never appear.
    fn push_held(&mut self) {
        let Some(mut batch) = self.held.take() else {
            return;
        };
        if self.main.session.state() != State::Established {
            // The session went down; the RIB resends everything on the next Up.
            return;
        }
        let capacity = self.main.session.send_capacity();
        let mut fit = 0;
        let mut size = 0usize;
        for frame in &batch {
            if size + frame.len() > capacity {
                break;
            }
            size += frame.len();
            fit += 1;
        }
        if fit == 0 {
            self.held = Some(batch);
            return;
        }
        let rest = batch.split_off(fit);
        match self.main.session.send_encoded(batch.iter().cloned()) {
            Ok(()) => {
                self.shared().updates_sent += fit as u64;
                if !rest.is_empty() {
                    self.held = Some(rest);
                }
            }
            Err(bgp_proto::session::SendError::QueueFull { .. }) => {
                batch.extend(rest);
                self.held = Some(batch);
            }
            Err(e) => warn!(peer = %self.name, error = %e, "dropping outbound UPDATE batch"),
        }
    }

    fn set_disabled(&self, d: bool) {
        self.shared().disabled = d;
    }

    fn command(&mut self, cmd: PeerCmd) {
        let now = Instant::now();
        match cmd {
            PeerCmd::Incoming(stream, remote) => self.incoming(stream, remote, now),
            PeerCmd::Teardown {
                notification,
                restart_after,
                hard_reset,
            } => {
                self.stop_all(now, notification, hard_reset);
                match restart_after {
                    Some(d) => self.restart_at = Some(tokio::time::Instant::now() + d),
                    None => self.set_disabled(true),
                }
            }
            PeerCmd::Enable => {
                self.cfg.disabled = false;
                self.restart_at = None;
                self.set_disabled(false);
                self.main.session.start(now);
            }
            PeerCmd::Reconfigure { config, restart } => {
                let was_disabled = self.cfg.disabled;
                self.cfg = *config;
                if restart {
                    self.stop_all(
                        now,
                        Notification {
                            code: nc::CEASE,
                            subcode: nc::CEASE_OTHER_CONFIG_CHANGE,
                            data: Bytes::new(),
                        },
                        false,
                    );
                    // Let the old session report its end (logs, RIB) before replacing it.
                    self.process();
                    if let Some(mut c) = self.extra.take() {
                        self.flushing.extend(c.close());
                    }
                    self.flushing.extend(self.main.close());
                    self.main = Conn::new(Session::new(session_config(
                        &self.cfg,
                        &self.env,
                        self.cfg.passive,
                    )));
                    if !self.cfg.disabled {
                        self.main.session.start(now);
                    }
                } else if self.cfg.disabled && !was_disabled {
                    self.stop_all(
                        now,
                        Notification::admin_shutdown("peer disabled in configuration"),
                        true,
                    );
                } else if !self.cfg.disabled && was_disabled {
                    self.main.session.start(now);
                }
                self.set_disabled(self.cfg.disabled);
            }
            PeerCmd::RouteRefresh(family) => {
                let rr = RouteRefresh {
                    family,
                    subtype: bgp_proto::RefreshSubtype::Normal,
                };
                if let Err(e) = self.main.session.send_route_refresh(rr) {
                    debug!(peer = %self.name, error = %e, "no route refresh sent");
                }
            }
            PeerCmd::Stop {
                notification,
                hard_reset,
            } => {
                self.stopping = true;
                self.restart_at = None;
                self.stop_all(now, notification, hard_reset);
            }
        }
    }

    /// Stops every connection with `n` (sent only where a connection is up), as a Hard
    /// Reset where one is asked for and the N bit was negotiated (RFC 8538 section 3).
    fn stop_all(&mut self, now: Instant, n: Notification, hard_reset: bool) {
        for c in std::iter::once(&mut self.main).chain(self.extra.as_mut()) {
            let n = if hard_reset {
                graceful::hard_reset(n.clone(), c.session.negotiated())
            } else {
                n.clone()
            };
            c.session.stop(now, Some(n));
        }
    }

    fn conn_mut(&mut self, id: u64) -> Option<&mut Conn> {
        if self.main.id == id {
            Some(&mut self.main)
        } else {
            self.extra.as_mut().filter(|c| c.id == id)
        }
    }

    fn io(&mut self, io: Io) {
        let now = Instant::now();
        match io {
            Io::Data(id, data) => {
                if let Some(c) = self.conn_mut(id) {
                    c.session.handle_data(now, &data);
                }
            }
            Io::Closed(id, err) => {
                let name = self.name.clone();
                if let Some(c) = self.conn_mut(id) {
                    if let Some(e) = err {
                        debug!(peer = %name, error = %e, "connection error");
                    }
                    c.session.handle_closed(now);
                }
            }
            Io::Connected(id, stream) => {
                let io_tx = self.io_tx.clone();
                if self.main.id == id
                    && self.main.connecting.is_some()
                    && !self.main.has_transport()
                {
                    self.main.connecting = None;
                    debug!(peer = %self.name, "connected");
                    self.main.attach(stream, true, &io_tx);
                    self.main.session.handle_connected(now);
                }
            }
            Io::ConnectFailed(id, e) => {
                if self.main.id == id && self.main.connecting.is_some() {
                    self.main.connecting = None;
                    debug!(peer = %self.name, error = %e, "connect failed");
                    self.shared().last_error = Some(format!("connect: {e}"));
                    self.main.session.handle_connect_failed(now);
                }
            }
        }
    }

    /// Starts an outbound connection attempt for the main session.
    fn start_connect(&mut self) {
        if self.main.has_transport() || self.stopping {
            return;
        }
        if let Some(c) = self.main.connecting.take() {
            c.abort();
        }
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        self.main.id = id;
        let opts = socket_options(&self.cfg, &self.env.global);
        let addr = net::peer_socket_addr(&self.cfg.address, self.cfg.port);
        let tx = self.io_tx.clone();
        self.main.connecting = Some(tokio::spawn(async move {
            let r = match addr {
                Ok(a) => net::connect(a, &opts).await,
                Err(e) => Err(e),
            };
            let msg = match r {
                Ok(s) => Io::Connected(id, s),
                Err(e) => Io::ConnectFailed(id, e.to_string()),
            };
            let _ = tx.send(msg).await;
        }));
    }

    /// Drains session events of both connections, acting on each.
    fn process(&mut self) {
        loop {
            let mut progressed = false;
            while let Some(ev) = self.main.session.poll_event() {
                progressed = true;
                self.event(true, ev);
            }
            // One at a time: an event may promote the extra connection to main, after
            // which its remaining events are drained as main events.
            while let Some(ev) = self.extra.as_mut().and_then(|c| c.session.poll_event()) {
                progressed = true;
                self.event(false, ev);
            }
            self.replace_restarted();
            self.resolve_collision();
            self.main.flush();
            if let Some(c) = &mut self.extra {
                c.flush();
            }
            // Drop a finished extra connection.
            if let Some(c) = &self.extra {
                if c.session.state() == State::Idle && !c.has_transport() {
                    self.extra = None;
                }
            }
            if !progressed {
                break;
            }
        }
    }

    /// RFC 4271 6.8: once both connections know the peer's BGP Identifier, keep one.
    fn resolve_collision(&mut self) {
        let Some(extra) = &mut self.extra else { return };
        let (ms, es) = (self.main.session.state(), extra.session.state());
        if ms != State::OpenConfirm || es != State::OpenConfirm {
            return;
        }
        let Some(remote_id) = extra.session.peer_bgp_id() else {
            return;
        };
        let remote_as = extra.session.peer_as().unwrap_or(self.cfg.remote_as);
        let g = &self.env.global;
        let outcome = resolve_collision(g.router_id, self.cfg.local_as(g), remote_id, remote_as);
        let now = Instant::now();
        let main_is_local = self.main.outbound;
        let keep_main = match outcome {
            CollisionOutcome::KeepLocallyInitiated => main_is_local,
            CollisionOutcome::KeepRemotelyInitiated => !main_is_local,
        };
        info!(peer = %self.name, ?outcome, "connection collision resolved");
        if keep_main {
            extra.session.collision_dump(now);
        } else {
            self.main.session.collision_dump(now);
            if let Some(new_main) = self.extra.take() {
                let old = std::mem::replace(&mut self.main, new_main);
                self.extra = Some(old);
            }
        }
    }

    fn event(&mut self, is_main: bool, ev: SessionEvent) {
        let name = self.name.clone();
        match ev {
            SessionEvent::Connect => {
                if is_main {
                    self.start_connect();
                }
            }
            SessionEvent::Disconnect => {
                if is_main {
                    self.flushing.extend(self.main.close());
                } else if let Some(c) = &mut self.extra {
                    self.flushing.extend(c.close());
                }
            }
            SessionEvent::StateChanged { from, to } => {
                info!(peer = %name, %from, %to, "session state changed");
                if is_main {
                    let mut s = self.shared();
                    s.state = to;
                    s.since = Instant::now();
                }
            }
            SessionEvent::Established(neg) => {
                if !is_main && self.extra.as_ref().is_some_and(|c| c.replaces_established) {
                    // The restarted peer's new session (incoming.rs).
                    self.replace_restarted();
                } else if !is_main {
                    // The main connection is gone or still pending (the peer completed
                    // this one without answering our OPEN there): promote.
                    if let Some(c) = self.extra.take() {
                        let mut old = std::mem::replace(&mut self.main, c);
                        if old.has_transport() {
                            // RFC 4271 6.8: a connection colliding with an Established
                            // one is closed with Cease / Connection Collision Resolution.
                            old.session.collision_dump(Instant::now());
                            self.log_down(false, &DownReason::CollisionDump);
                        }
                        self.flushing.extend(old.close());
                        let mut s = self.shared();
                        s.state = State::Established;
                        s.since = Instant::now();
                    }
                }
                let (local, remote) = match (self.main.local, self.main.remote) {
                    (Some(l), Some(r)) => (l, r),
                    _ => return,
                };
                info!(
                    peer = %name,
                    peer_as = neg.peer_as,
                    peer_id = %neg.peer_id,
                    hold_time = neg.hold_time,
                    families = ?neg.families,
                    "session established"
                );
                {
                    let mut s = self.shared();
                    s.negotiated = Some(neg.clone());
                    s.local_addr = Some(local);
                    s.remote_addr = Some(remote);
                    s.established_transitions += 1;
                    s.last_error = None;
                }
                self.main.up = true;
                self.held = None;
                // RFC 4724 4.1: the restart state bit belongs to the OPENs of the restart
                // only; later sessions with this peer are ordinary.
                self.env.restarting = false;
                // Drain stale batches from an earlier session: the RIB sends the full
                // table after Up.
                while self.out_rx.try_recv().is_ok() {}
                self.feed.push(RibInput::Up {
                    peer: name,
                    negotiated: neg,
                    local,
                });
            }
            SessionEvent::Update(update) => {
                if !is_main || !self.main.up {
                    return;
                }
                if let Some(r) = &update.treat_as_withdraw {
                    warn!(peer = %name, reason = %r, "UPDATE treated as withdraw (RFC 7606)");
                }
                for d in &update.discarded {
                    warn!(peer = %name, reason = %d, "attribute discarded (RFC 7606)");
                }
                self.shared().updates_received += 1;
                self.feed.push(RibInput::Update {
                    peer: name,
                    update: Box::new(update),
                });
            }
            SessionEvent::RouteRefresh(refresh) => {
                if !is_main || !self.main.up {
                    return;
                }
                self.shared().route_refresh_received += 1;
                self.feed.push(RibInput::RouteRefresh {
                    peer: name,
                    refresh,
                });
            }
            SessionEvent::Down(reason) => {
                self.log_down(is_main, &reason);
                // The connection is over (the peer closed it, or we did): release the
                // socket tasks; anything still queued (a NOTIFICATION) is written first.
                if !is_main {
                    if let Some(c) = &mut self.extra {
                        self.flushing.extend(c.close());
                    }
                    return;
                }
                self.flushing.extend(self.main.close());
                self.down_after_error = incoming::counts_as_error(&reason);
                let was_up = std::mem::take(&mut self.main.up);
                let graceful = was_up && self.graceful_down(&reason);
                {
                    let mut s = self.shared();
                    s.negotiated = None;
                    s.last_error = Some(reason.to_string());
                }
                if was_up {
                    self.feed.push(RibInput::Down {
                        peer: name,
                        graceful,
                    });
                }
                // A main session promoted from a passive collision winner restarts with
                // the configured mode, and one created during our restart without the
                // restart state bit.
                let sc = self.main.session.config();
                let stale_config = sc.passive != self.cfg.passive
                    || sc
                        .capabilities
                        .graceful_restart
                        .as_ref()
                        .is_some_and(|g| g.restart_state != self.env.restarting);
                if stale_config && !self.stopping && !self.shared().disabled {
                    self.flushing.extend(self.main.close());
                    self.main = Conn::new(Session::new(session_config(
                        &self.cfg,
                        &self.env,
                        self.cfg.passive,
                    )));
                    self.main.session.start(Instant::now());
                }
            }
        }
    }

    /// RFC 4724 section 4.2 / RFC 8538: whether the peer's routes are retained as stale.
    fn graceful_down(&self, reason: &DownReason) -> bool {
        let s = self.shared();
        s.negotiated
            .as_deref()
            .is_some_and(|n| graceful::retains_routes(&self.cfg.graceful_restart, n, reason))
    }

    fn log_down(&self, is_main: bool, reason: &DownReason) {
        let conn = if is_main { "main" } else { "collision" };
        let mut s = self.shared();
        match reason {
            DownReason::NotificationSent { notification, .. }
            | DownReason::AdminStop(Some(notification)) => {
                s.notifications_sent += 1;
                s.last_notification_sent = Some(reason.to_string());
                warn!(
                    peer = %self.name,
                    conn,
                    code = notification.code,
                    subcode = notification.subcode,
                    reason = %reason,
                    "NOTIFICATION sent"
                );
            }
            DownReason::NotificationReceived(n) => {
                s.notifications_received += 1;
                s.last_notification_received = Some(reason.to_string());
                warn!(
                    peer = %self.name,
                    conn,
                    code = n.code,
                    subcode = n.subcode,
                    reason = %reason,
                    "NOTIFICATION received"
                );
            }
            DownReason::HoldTimerExpired | DownReason::SendHoldTimerExpired => {
                let code = match reason {
                    DownReason::HoldTimerExpired => nc::HOLD_TIMER_EXPIRED,
                    _ => nc::SEND_HOLD_TIMER_EXPIRED,
                };
                s.notifications_sent += 1;
                s.last_notification_sent = Some(reason.to_string());
                warn!(peer = %self.name, conn, code, subcode = 0u8, reason = %reason, "NOTIFICATION sent");
            }
            DownReason::CollisionDump => {
                s.notifications_sent += 1;
                info!(peer = %self.name, conn, code = nc::CEASE, subcode = nc::CEASE_CONNECTION_COLLISION, reason = %reason, "NOTIFICATION sent");
            }
            DownReason::ConnectionFailed => {
                debug!(peer = %self.name, conn, reason = %reason, "session down");
            }
            _ => info!(peer = %self.name, conn, reason = %reason, "session down"),
        }
    }
}

async fn sleep_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
