//! One task per configured peer: a select loop feeding the node layer's [`PeerDriver`]
//! from sockets, commands and the clock, and doing what it polls.
//!
//! Everything a peer is beyond its sockets (sessions, collisions, the restarted peer's new
//! connection, error backoff, Hard Reset, held output) is the driver's (`bgp-node`, the
//! same code the simulator runs). This task owns the sockets: for each connection a reader
//! task (bytes in) and a writer task (bytes out) linked by small bounded channels
//! (conn.rs), so:
//! - inbound: the task queues what the driver has for the RIB in its [`PeerFeed`], which
//!   hands it to the RIB task as the RIB's input budget allows (rib_input.rs); while the
//!   feed holds anything the task stops reading, the reader channel fills, the reader
//!   stops reading and TCP flow control slows the peer down (backpressure, no unbounded
//!   buffer). The task itself never waits on the RIB: its timers keep running, so a busy
//!   RIB delays routes but drops no session, and a HoldTimer is not judged over input that
//!   arrived but was held back (`Session::handle_input_held`);
//! - outbound: bytes are taken from the driver only while the writer has room, which is
//!   how the session's SendHoldTimer (RFC 9687) learns that the peer is not reading.
//!
//! Output slices come from the RIB on a channel read only while the driver can take one;
//! each one taken returns a credit to the RIB, which hands out no more than a few slices
//! per peer at a time (a slow peer makes the RIB keep its updates, merged per prefix).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bgp_node::graceful::Farewell;
use bgp_node::peer::PeerCounters;
use bgp_node::{
    ConnId, OutputSlice, PeerDriver, PeerEvent, PeerId, PeerStatus, Refusal, Transport,
};
use bgp_proto::{notification_code as nc, Family, Notification};
use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use crate::config::{GlobalConfig, PeerConfig};
use crate::net;
use crate::rib_input::PeerFeed;
use conn::{Io, IoConn, IO_QUEUE};

mod conn;
mod settings;

pub(crate) use settings::{identity, peer_settings, socket_options};

/// Commands to a peer task.
#[derive(Debug)]
pub(crate) enum PeerCmd {
    /// A connection the peer opened to one of our listeners.
    Incoming(TcpStream, SocketAddr),
    /// Close with `notification` and, after `restart_after`, start again; `None` keeps
    /// the session down until [`PeerCmd::Enable`]. `hard_reset`: the peer must drop our
    /// routes, sent as Cease / Hard Reset where the N bit was negotiated (RFC 8538).
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
    /// The peer's BFD session failed (RFC 5882 3.2, bfd/mod.rs): an Established session
    /// closes at once with Cease / BFD Down (RFC 9384) and starts again after the connect
    /// retry time; a session that is not Established is left as it is.
    BfdDown,
    /// Close with `notification`, as `farewell` makes of it, and end the task.
    Stop {
        notification: Notification,
        farewell: Farewell,
    },
}

/// What the RIB task keeps to reach a peer task.
#[derive(Debug)]
pub(crate) struct PeerLink {
    /// Output slices for the peer (as many as its credit at most: see rib_task.rs).
    pub out: mpsc::UnboundedSender<OutputSlice>,
    /// Commands (max-prefix teardown, route refresh).
    pub cmd: mpsc::Sender<PeerCmd>,
}

/// Handle the speaker keeps for a running peer task.
pub(crate) struct PeerHandle {
    pub id: PeerId,
    pub config: PeerConfig,
    pub cmd: mpsc::Sender<PeerCmd>,
    pub shared: Arc<Mutex<PeerStatus>>,
    /// Resolves once the task ended (however).
    pub done: oneshot::Receiver<()>,
    pub abort: AbortHandle,
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

/// What a peer task is started with besides its configuration.
pub(crate) struct PeerChannels {
    pub cmd: mpsc::Receiver<PeerCmd>,
    pub out: mpsc::UnboundedReceiver<OutputSlice>,
    /// Credits back to the RIB task: (peer, session) per output slice taken.
    pub credits: mpsc::UnboundedSender<(PeerId, u64)>,
    /// Session events for the RIB, handed over as its input budget allows.
    pub feed: PeerFeed,
    /// Ends the task at once (speaker shutdown, after the graceful stop had its time).
    pub cancel: CancellationToken,
    /// Copies of the session events for the monitoring feeds (BMP, MRT).
    pub tap: crate::monitor::tap::PeerTap,
    /// State changes for the operator's event stream, connection failures logged.
    pub states: crate::events::PeerStates,
}

/// The peer task.
pub(crate) struct PeerTask {
    driver: PeerDriver,
    cfg: PeerConfig,
    global: Arc<GlobalConfig>,
    shared: Arc<Mutex<PeerStatus>>,
    /// The status version and counters last copied into `shared`.
    published: (u64, PeerCounters),
    ch: PeerChannels,
    io_tx: mpsc::Sender<Io>,
    io_rx: mpsc::Receiver<Io>,
    conns: Vec<IoConn>,
    /// Readers, writers and connection attempts.
    tasks: JoinSet<()>,
    /// Refused connections logged (a peer can reconnect as fast as it likes).
    refusals: crate::log_limit::LogLimit,
}

impl PeerTask {
    pub(crate) fn new(
        id: PeerId,
        cfg: PeerConfig,
        env: PeerEnv,
        shared: Arc<Mutex<PeerStatus>>,
        ch: PeerChannels,
    ) -> PeerTask {
        let (io_tx, io_rx) = mpsc::channel(IO_QUEUE);
        let driver = PeerDriver::new(id, peer_settings(&cfg), identity(&env), Instant::now());
        PeerTask {
            driver,
            cfg,
            global: env.global,
            shared,
            published: (u64::MAX, PeerCounters::default()),
            ch,
            io_tx,
            io_rx,
            conns: Vec::new(),
            tasks: JoinSet::new(),
            refusals: Default::default(),
        }
    }

    fn name(&self) -> &str {
        &self.cfg.name
    }

    /// Runs until stopped.
    pub(crate) async fn run(mut self) {
        self.execute();
        loop {
            self.publish();
            if self.driver.is_finished() {
                break;
            }
            let deadline = self
                .driver
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            let can_take = self.driver.can_take_output();
            let writable = writable(self.writers());
            tokio::select! {
                _ = self.ch.cancel.cancelled() => {
                    self.tasks.abort_all();
                    break;
                }
                cmd = self.ch.cmd.recv() => match cmd {
                    Some(cmd) => self.command(cmd),
                    None => self.command(PeerCmd::Stop {
                        notification: Notification {
                            code: nc::CEASE,
                            subcode: nc::CEASE_PEER_DECONFIGURED,
                            data: Bytes::new(),
                        },
                        farewell: Farewell::Notify,
                    }),
                },
                // While the RIB has not taken what this session produced, the socket is
                // not read: TCP flow control slows the peer down (rib_input.rs).
                Some(io) = self.io_rx.recv(), if !self.ch.feed.is_backlogged() => self.io(io),
                _ = self.ch.feed.deliver(), if self.ch.feed.is_backlogged() => {}
                Some((id, permit)) = writable => {
                    if let Some(b) = self.driver.poll_transmit(id) {
                        permit.send(b);
                    }
                }
                Some(slice) = self.ch.out.recv(), if can_take => {
                    // Taken only while the driver can take it: never handed back.
                    let _ = self.driver.handle_output(Instant::now(), slice);
                }
                _ = sleep_opt(deadline) => self.timeout(),
            }
            self.execute();
        }
        // Writers finishing the last bytes of closed connections (bounded by their
        // flush timeout); readers and attempts were aborted with their connections.
        self.conns.clear();
        while self.tasks.join_next().await.is_some() {}
        self.publish();
        debug!(peer = %self.cfg.name, "peer task ended");
    }

    /// The connections with a writer and bytes for it.
    fn writers(&self) -> Vec<(ConnId, mpsc::Sender<Bytes>)> {
        self.conns
            .iter()
            .filter(|c| self.driver.wants_transmit(c.id))
            .filter_map(|c| c.writer().map(|w| (c.id, w.clone())))
            .collect()
    }

    /// Does what the driver asks, then moves what its sessions want written to writers
    /// with room.
    fn execute(&mut self) {
        // Status first: whoever sees what follows (a closed connection, a new session)
        // finds it already in `show peers`.
        self.publish();
        let id = self.driver.id();
        while let Some(ev) = self.driver.poll_event() {
            match ev {
                PeerEvent::Connect(conn) => self.connect(conn),
                PeerEvent::Close { conn, last } => {
                    if let Some(i) = self.conns.iter().position(|c| c.id == conn) {
                        self.conns.swap_remove(i).close(last);
                    }
                }
                PeerEvent::Rib(input) => {
                    self.ch
                        .tap
                        .observe(&self.cfg.name, self.driver.status(), &input);
                    self.ch.feed.push(id, input)
                }
                PeerEvent::OutputTaken { session } => {
                    // The RIB task gone means the speaker is shutting down.
                    let _ = self.ch.credits.send((id, session));
                }
            }
        }
        for c in &self.conns {
            let Some(w) = c.writer() else { continue };
            while self.driver.wants_transmit(c.id) {
                let Ok(permit) = w.try_reserve() else { break };
                match self.driver.poll_transmit(c.id) {
                    Some(b) => permit.send(b),
                    None => break,
                }
            }
        }
    }

    /// Copies the driver's status into the shared one when it changed.
    fn publish(&mut self) {
        let st = self.driver.status();
        if (st.version, st.counters) == self.published {
            return;
        }
        let mut s = self.shared.lock().unwrap_or_else(|e| e.into_inner());
        if st.version == self.published.0 {
            s.counters = st.counters;
        } else {
            s.clone_from(st);
            self.ch.states.observe(st);
        }
        self.published = (st.version, st.counters);
    }

    /// The earliest timer is due. Received input is read before a HoldTimer is judged:
    /// what already arrived is passed to the sessions first, and input held back because
    /// the RIB has not taken the last messages yet counts as received (the peer is
    /// sending; we are the ones not reading).
    fn timeout(&mut self) {
        for _ in 0..IO_QUEUE {
            if self.ch.feed.is_backlogged() {
                break;
            }
            match self.io_rx.try_recv() {
                Ok(io) => {
                    self.io(io);
                    self.execute();
                }
                Err(_) => break,
            }
        }
        let held = self.ch.feed.is_backlogged();
        self.driver.handle_timeout(Instant::now(), held);
    }

    fn command(&mut self, cmd: PeerCmd) {
        let now = Instant::now();
        match cmd {
            PeerCmd::Incoming(stream, remote) => self.incoming(stream, remote, now),
            PeerCmd::Teardown {
                notification,
                restart_after,
                hard_reset,
            } => self
                .driver
                .teardown(now, notification, restart_after, hard_reset),
            PeerCmd::Enable => self.driver.enable(now),
            PeerCmd::Reconfigure { config, restart } => {
                self.cfg = *config;
                self.driver
                    .reconfigure(now, peer_settings(&self.cfg), restart);
            }
            PeerCmd::RouteRefresh(family) => self.driver.route_refresh(now, family),
            PeerCmd::BfdDown => {
                if self.driver.status().state == bgp_proto::session::State::Established {
                    let notification = Notification {
                        code: nc::CEASE,
                        subcode: nc::CEASE_BFD_DOWN,
                        data: Bytes::new(),
                    };
                    let retry = Duration::from_secs(self.cfg.connect_retry.into());
                    self.driver.teardown(now, notification, Some(retry), false);
                }
            }
            PeerCmd::Stop {
                notification,
                farewell,
            } => self.driver.stop(now, notification, farewell),
        }
    }

    /// A connection the peer opened to one of our listeners.
    fn incoming(&mut self, stream: TcpStream, remote: SocketAddr, now: Instant) {
        if let Err(r) = self.driver.check_incoming(now) {
            self.refused(r, remote);
            return;
        }
        if let Err(e) = self.apply_accepted_options(&stream) {
            warn!(peer = %self.name(), %remote, error = %e, "refusing connection: socket options");
            return;
        }
        let Some(transport) = transport(&stream) else {
            return;
        };
        match self.driver.handle_accepted(now, transport) {
            Ok(id) => {
                let c = IoConn::attach(id, stream, &self.io_tx, &mut self.tasks);
                self.conns.push(c);
            }
            Err(r) => self.refused(r, remote),
        }
    }

    fn refused(&mut self, why: Refusal, remote: SocketAddr) {
        let Some(suppressed) = self.refusals.allow() else {
            return;
        };
        let peer = &self.cfg.name;
        match why {
            Refusal::Disabled => {
                info!(peer = %peer, %remote, suppressed, "refusing connection: peer is disabled")
            }
            Refusal::Backoff => {
                info!(peer = %peer, %remote, suppressed, "refusing connection: waiting after a session error (backoff)")
            }
            Refusal::RestartWait => {
                info!(peer = %peer, %remote, suppressed, "refusing connection: torn down, waiting to start again")
            }
            Refusal::ThirdConnection => {
                info!(peer = %peer, %remote, suppressed, "refusing third concurrent connection")
            }
        }
    }

    fn apply_accepted_options(&self, stream: &TcpStream) -> std::io::Result<()> {
        use std::os::fd::AsRawFd;
        let opts = socket_options(&self.cfg, &self.global);
        let v6 = stream.local_addr()?.is_ipv6();
        net::apply_options(stream.as_raw_fd(), v6, &opts)?;
        stream.set_nodelay(true)
    }

    fn io(&mut self, io: Io) {
        let now = Instant::now();
        match io {
            Io::Data(id, data) => self.driver.handle_data(now, id, &data),
            Io::Closed(id, err) => self.driver.handle_closed(now, id, err.as_deref()),
            Io::Connected(id, stream) => {
                let Some(i) = self.conns.iter().position(|c| c.id == id) else {
                    return;
                };
                let Some(t) = transport(&stream) else {
                    self.conns.swap_remove(i);
                    self.driver
                        .handle_connect_failed(now, id, "connection without addresses");
                    return;
                };
                // The attempt's entry is replaced by the connection's tasks.
                self.conns.swap_remove(i);
                if self.driver.handle_connected(now, id, t) {
                    let c = IoConn::attach(id, stream, &self.io_tx, &mut self.tasks);
                    self.conns.push(c);
                }
            }
            Io::ConnectFailed(id, e) => {
                if let Some(i) = self.conns.iter().position(|c| c.id == id) {
                    self.conns.swap_remove(i);
                }
                self.driver.handle_connect_failed(now, id, &e);
            }
        }
    }

    /// Starts an outbound connection attempt `conn`.
    fn connect(&mut self, conn: ConnId) {
        let opts = socket_options(&self.cfg, &self.global);
        let addr = net::peer_socket_addr(&self.cfg.address, self.cfg.port);
        let tx = self.io_tx.clone();
        let task = self.tasks.spawn(async move {
            let r = match addr {
                Ok(a) => net::connect(a, &opts).await,
                Err(e) => Err(e),
            };
            let msg = match r {
                Ok(s) => Io::Connected(conn, s),
                Err(e) => Io::ConnectFailed(conn, e.to_string()),
            };
            let _ = tx.send(msg).await;
        });
        self.conns.push(IoConn::connecting(conn, task));
    }
}

/// The addresses of a connected stream, with the interface's global IPv6 address for a
/// link-local one (RFC 2545 3: next hop self names both).
fn transport(stream: &TcpStream) -> Option<Transport> {
    let local = stream.local_addr().ok()?;
    let remote = stream.peer_addr().ok()?;
    let link_global_v6 = match local {
        SocketAddr::V6(l) if bgp_node::session_info::is_link_local(*l.ip()) => {
            net::interface_global_v6(l.scope_id())
        }
        _ => None,
    };
    Some(Transport {
        local,
        remote,
        link_global_v6,
    })
}

/// Waits until one of the writers can take more bytes.
async fn writable(
    writers: Vec<(ConnId, mpsc::Sender<Bytes>)>,
) -> Option<(ConnId, mpsc::OwnedPermit<Bytes>)> {
    let mut it = writers.into_iter();
    match (it.next(), it.next()) {
        (None, _) => std::future::pending().await,
        (Some((id, w)), None) => w.reserve_owned().await.ok().map(|p| (id, p)),
        (Some((a, wa)), Some((b, wb))) => tokio::select! {
            p = wa.reserve_owned() => p.ok().map(|p| (a, p)),
            p = wb.reserve_owned() => p.ok().map(|p| (b, p)),
        },
    }
}

async fn sleep_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
