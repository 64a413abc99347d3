//! One BMP monitoring station (`[[bmp]]`, RFC 7854): a task driving `bgp_bmp`'s sans-IO
//! [`Client`] over a TCP connection.
//!
//! The client does the protocol (Initiation first, a Peer Up for every session up on
//! each connection, reconnection with backoff, a bounded queue that resynchronises on
//! overflow, Termination on stop); this task does the I/O and feeds it:
//! - live events from the tap (tap.rs): Peer Up with both OPENs, Route Monitoring of every
//!   UPDATE received (pre-policy Adj-RIB-In, `pre_policy`) and of the changes of routes
//!   as the import policy accepted them (post-policy Adj-RIB-In, the L flag,
//!   `post_policy`) and of the UPDATEs each peer is sent (post-policy Adj-RIB-Out, RFC
//!   8671, the O flag, `adj_rib_out`), Peer Down with its reason (messages.rs);
//! - on each (re)connection, the table: each up peer's Adj-RIB-In from the RIB as Route
//!   Monitoring (RFC 7854 5), pre-policy, post-policy and Adj-RIB-Out as configured, a
//!   peer at a time
//!   while the client has room, each table closed by an End-of-RIB per negotiated family;
//! - Statistics Reports on the client's schedule: routes received (type 7), accepted by
//!   import policy (type 8, the peer's routes in the Loc-RIB) and rejected (type 0), the
//!   routes the peer was sent (type 15, the post-policy Adj-RIB-Out of RFC 8671), and the
//!   first three and the last per negotiated family (types 9, 10, 17);
//! - a tap that overflowed for this reader (the station is slower than the peers): the
//!   missed events cannot be sent, so the connection is closed and opened again, and the
//!   station gets the whole current table (logged).
//!
//! Writes never block the task: bytes go out as the socket takes them, so a stuck station
//! lets the client's send timeout run.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::io;
use std::net::Ipv4Addr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bgp_bmp::client::{Client, ClientConfig, ClientEvent, Enqueued};
use bgp_bmp::wire::{
    stat_type, PeerDown, PeerDownReason, PeerHeader, RouteMonitoring, Stat, StatisticsReport,
};
use bgp_proto::wire::{encode_announcements, encode_end_of_rib};
use bgp_proto::Nlri;
use bgp_rib::Attrs;
use bytes::Bytes;
use tokio::net::TcpStream;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::rib::{AdjRib, RibAccess};
use super::tap::{MonitorEvent, SessionFacts, Want};
use crate::config::BmpConfig;
use messages::{accepted_updates, down_reason, family, header, peer_up};

mod messages;

/// How long the Termination and what precedes it may take to go out at shutdown.
const STOP_FLUSH: Duration = Duration::from_secs(2);

/// What a station task starts with.
pub(crate) struct Station {
    pub config: BmpConfig,
    pub router_id: Ipv4Addr,
    pub rib: RibAccess,
    /// The sessions up now, asked when the task starts and after it missed events
    /// (later changes come from `events`, subscribed before).
    pub sessions_now: SessionsNow,
    pub events: broadcast::Receiver<Arc<MonitorEvent>>,
    /// Held while the station runs: what it asks the RIB task to publish on the tap (the
    /// post-policy Adj-RIB-In's changes, the UPDATEs sent).
    pub wants: Vec<Want>,
    pub cancel: CancellationToken,
}

/// How a station task asks the speaker for the sessions up now.
pub(crate) type SessionsNow = Arc<
    dyn Fn() -> Pin<Box<dyn Future<Output = Vec<(String, Arc<SessionFacts>)>> + Send>>
        + Send
        + Sync,
>;

/// The initial table being sent on connection `session`.
struct Replay {
    session: u64,
    /// Peers, each with one of its RIBs.
    peers: VecDeque<(String, AdjRib)>,
    /// The table being sent and its routes not sent yet.
    current: Option<(String, AdjRib, Routes)>,
}

/// Routes of a table still to send.
type Routes = VecDeque<(Nlri, Attrs)>;

struct Task {
    cfg: BmpConfig,
    client: Client,
    rib: RibAccess,
    sessions_now: SessionsNow,
    /// Sessions up, by peer name.
    sessions: HashMap<String, Arc<SessionFacts>>,
    stream: Option<TcpStream>,
    connecting: Option<JoinHandle<io::Result<TcpStream>>>,
    /// The part of a chunk of `poll_transmit` the socket did not take yet.
    unsent: Option<Bytes>,
    replay: Option<Replay>,
    stats_due: bool,
    _wants: Vec<Want>,
}

/// Runs the station until cancelled (its removal from the configuration, or shutdown).
pub(crate) async fn run(s: Station) {
    let mut cc = ClientConfig::new(
        s.config
            .sys_name
            .clone()
            .unwrap_or_else(|| format!("bgpd {}", s.router_id)),
        s.config
            .sys_descr
            .clone()
            .unwrap_or_else(|| format!("bgpd {}", env!("CARGO_PKG_VERSION"))),
    );
    cc.stats_interval = s.config.statistics_interval;
    cc.jitter_seed = u64::from(u32::from(s.router_id));
    let client = match Client::new(cc) {
        Ok(c) => c,
        Err(e) => {
            warn!(station = %s.config.name, error = %e, "BMP station not started");
            return;
        }
    };
    let mut t = Task {
        cfg: s.config,
        client,
        rib: s.rib,
        sessions_now: s.sessions_now,
        sessions: HashMap::new(),
        stream: None,
        connecting: None,
        unsent: None,
        replay: None,
        stats_due: false,
        _wants: s.wants,
    };
    for (name, facts) in (t.sessions_now)().await {
        t.peer_up(&name, facts);
    }
    info!(station = %t.cfg.name, address = %t.cfg.address, "BMP station configured");
    t.client.start(Instant::now());
    t.run(s.events, s.cancel).await;
}

impl Task {
    async fn run(
        &mut self,
        mut events: broadcast::Receiver<Arc<MonitorEvent>>,
        cancel: CancellationToken,
    ) {
        loop {
            self.drive().await;
            let deadline = self
                .client
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            let want_write = self.unsent.is_some();
            tokio::select! {
                _ = cancel.cancelled() => {
                    // Peer Downs of the shutdown are in the tap already.
                    while let Ok(ev) = events.try_recv() {
                        self.event(&ev);
                    }
                    self.stop().await;
                    return;
                }
                r = join_opt(&mut self.connecting) => {
                    self.connecting = None;
                    let now = Instant::now();
                    match r {
                        Ok(stream) => {
                            info!(station = %self.cfg.name, address = %self.cfg.address, "BMP station connected");
                            self.stream = Some(stream);
                            self.client.handle_connected(now);
                        }
                        Err(e) => {
                            debug!(station = %self.cfg.name, error = %e, "BMP connection attempt failed");
                            self.client.handle_connect_failed(now);
                        }
                    }
                }
                ev = events.recv() => match ev {
                    Ok(ev) => self.event(&ev),
                    Err(RecvError::Lagged(n)) => {
                        warn!(station = %self.cfg.name, missed = n, "BMP station fell behind the peers: reconnecting to send the whole table again");
                        self.resync().await;
                    }
                    Err(RecvError::Closed) => {
                        self.stop().await;
                        return;
                    }
                },
                r = readable(self.stream.as_ref()) => self.read(r),
                r = writable(self.stream.as_ref(), want_write) => {
                    if let Err(e) = r {
                        self.lost(e);
                    }
                }
                _ = sleep_opt(deadline) => self.client.handle_timeout(Instant::now()),
            }
        }
    }

    /// Handles the client's events, sends the table and statistics while there is room,
    /// and writes what the socket takes.
    async fn drive(&mut self) {
        loop {
            let mut busy = false;
            while let Some(ev) = self.client.poll_event() {
                busy = true;
                match ev {
                    ClientEvent::Connect => {
                        let addr = self.cfg.address;
                        self.connecting = Some(tokio::spawn(TcpStream::connect(addr)));
                    }
                    ClientEvent::Close => self.close().await,
                    ClientEvent::ReplayRoutes { session } => {
                        let mut names: Vec<&String> = self.sessions.keys().collect();
                        names.sort();
                        let mut peers = VecDeque::new();
                        for name in names {
                            for rib in [
                                AdjRib::PrePolicyIn,
                                AdjRib::PostPolicyIn,
                                AdjRib::PostPolicyOut,
                            ] {
                                if self.wants(rib) {
                                    peers.push_back((name.clone(), rib));
                                }
                            }
                        }
                        self.replay = Some(Replay {
                            session,
                            peers,
                            current: None,
                        });
                    }
                    ClientEvent::Writable => {}
                    ClientEvent::StatisticsDue => self.stats_due = true,
                    ClientEvent::Disconnected(r) => {
                        info!(station = %self.cfg.name, reason = %r, "BMP station disconnected")
                    }
                }
            }
            if self.stats_due {
                self.stats_due = false;
                self.statistics().await;
            }
            busy |= self.replay_some().await;
            self.write_some();
            if !busy {
                return;
            }
        }
    }

    fn event(&mut self, ev: &MonitorEvent) {
        match ev {
            MonitorEvent::Up { peer, session } => self.peer_up(peer, session.clone()),
            MonitorEvent::Update {
                peer,
                session,
                message,
                at,
                ..
            } => {
                if !self.cfg.pre_policy || !self.sessions.contains_key(peer) {
                    return;
                }
                let rm = RouteMonitoring {
                    peer: header(session, AdjRib::PrePolicyIn).at(*at),
                    update: message.clone(),
                };
                offer(
                    &self.cfg.name,
                    self.client.route_monitoring(rm).map_err(|e| e.to_string()),
                );
            }
            MonitorEvent::Accepted {
                peer,
                seq,
                changes,
                at,
            } => {
                // Changes of a session that went down (its Peer Down is sent) or of one
                // this station has not seen come up are not for it.
                let Some(s) = self.sessions.get(peer).filter(|s| s.seq == *seq) else {
                    return;
                };
                if !self.cfg.post_policy {
                    return;
                }
                match accepted_updates(s, changes) {
                    Ok(updates) => {
                        let h = header(s, AdjRib::PostPolicyIn).at(*at);
                        self.route_monitoring(&h, updates);
                    }
                    Err(e) => {
                        debug!(station = %self.cfg.name, peer = %peer, error = %e, "post-policy routes not encodable for BMP")
                    }
                }
            }
            MonitorEvent::Sent {
                peer,
                seq,
                updates,
                at,
            } => {
                // As above: only for the session this station announced.
                let Some(s) = self.sessions.get(peer).filter(|s| s.seq == *seq) else {
                    return;
                };
                if !self.cfg.adj_rib_out {
                    return;
                }
                let h = header(s, AdjRib::PostPolicyOut).at(*at);
                self.route_monitoring(&h, updates.clone());
            }
            MonitorEvent::Down {
                peer,
                session,
                reason,
                at,
            } => {
                if self.sessions.remove(peer).is_none() {
                    return;
                }
                let down = PeerDown {
                    peer: header(session, AdjRib::PrePolicyIn).at(*at),
                    reason: down_reason(reason),
                };
                offer(
                    &self.cfg.name,
                    self.client.peer_down(down).map_err(|e| e.to_string()),
                );
            }
        }
    }

    /// After missed events: the connection is closed, the sessions are taken afresh from
    /// the speaker, and the next connection sends them and their tables.
    async fn resync(&mut self) {
        self.client.stop();
        // Not connected now: these only update what the client replays.
        for (_, s) in std::mem::take(&mut self.sessions) {
            let down = PeerDown {
                peer: header(&s, AdjRib::PrePolicyIn),
                reason: PeerDownReason::LocalNoNotification(0),
            };
            offer(
                &self.cfg.name,
                self.client.peer_down(down).map_err(|e| e.to_string()),
            );
        }
        for (name, facts) in (self.sessions_now)().await {
            self.peer_up(&name, facts);
        }
        self.client.start(Instant::now());
    }

    fn peer_up(&mut self, name: &str, s: Arc<SessionFacts>) {
        let up = match peer_up(&s) {
            Ok(up) => up,
            Err(e) => {
                warn!(station = %self.cfg.name, peer = name, error = %e, "BMP Peer Up not encodable");
                return;
            }
        };
        self.sessions.insert(name.to_owned(), s);
        offer(
            &self.cfg.name,
            self.client.peer_up(up).map_err(|e| e.to_string()),
        );
    }

    /// Sends more of the initial table while the client has room; false when nothing
    /// was left to send or no room.
    async fn replay_some(&mut self) -> bool {
        let mut progressed = false;
        while self.client.has_room() {
            let Some(r) = &mut self.replay else {
                return progressed;
            };
            if self.client.session() != Some(r.session) {
                self.replay = None;
                return progressed;
            }
            if let Some((name, rib, _)) = r.current.take_if(|(_, _, q)| q.is_empty()) {
                self.end_of_rib(&name, rib);
                progressed = true;
                continue;
            }
            if r.current.is_none() {
                let Some((name, rib)) = r.peers.pop_front() else {
                    self.replay = None;
                    return progressed;
                };
                let routes = self.rib.adj_rib(&name, rib).await;
                if let Some(r) = &mut self.replay {
                    r.current = Some((name, rib, routes.unwrap_or_default().into()));
                }
                progressed = true;
                continue;
            }
            let Some((name, rib, queue)) = &mut r.current else {
                continue;
            };
            let Some(s) = self.sessions.get(name.as_str()) else {
                queue.clear();
                continue;
            };
            // One attribute set at a time: consecutive routes sharing it go in one
            // UPDATE.
            let Some((first, attrs)) = queue.pop_front() else {
                continue;
            };
            let fam = family(&first);
            let mut nlri = vec![first];
            while let Some((n, a)) = queue.front() {
                if !Arc::ptr_eq(a, &attrs) || family(n) != fam || nlri.len() >= 512 {
                    break;
                }
                nlri.push(*n);
                queue.pop_front();
            }
            // What a peer was sent is in its session's own context; what it sent, in the
            // context of its UPDATEs (its path identifiers).
            let codec = match rib {
                AdjRib::PostPolicyOut => s.negotiated.codec.clone(),
                _ => s.received_codec(),
            };
            let mut out = Vec::new();
            let nh = attrs.next_hop.clone();
            let encoded =
                encode_announcements(fam, &attrs.attrs, nh.as_ref(), &nlri, &codec, &mut out);
            if let Err(e) = encoded {
                debug!(station = %self.cfg.name, peer = %name, error = %e, "route not encodable for BMP");
                continue;
            }
            let peer = header(s, *rib).at(SystemTime::now());
            self.route_monitoring(&peer, out);
            progressed = true;
        }
        progressed
    }

    /// The station is configured for `rib`.
    fn wants(&self, rib: AdjRib) -> bool {
        match rib {
            AdjRib::PrePolicyIn => self.cfg.pre_policy,
            AdjRib::PostPolicyIn => self.cfg.post_policy,
            AdjRib::PostPolicyOut => self.cfg.adj_rib_out,
        }
    }

    /// Marks the end of one peer's initial table with an End-of-RIB per family it
    /// negotiated (RFC 4724 2), so a station knows the dump of that peer is complete.
    fn end_of_rib(&mut self, name: &str, rib: AdjRib) {
        let Some(s) = self.sessions.get(name) else {
            return;
        };
        let mut out = Vec::new();
        for family in &s.negotiated.families {
            encode_end_of_rib(*family, &mut out);
        }
        let peer = header(s, rib).at(SystemTime::now());
        self.route_monitoring(&peer, out);
    }

    /// Offers one Route Monitoring message per UPDATE of `peer`.
    fn route_monitoring(&mut self, peer: &PeerHeader, updates: Vec<Bytes>) {
        for update in updates {
            let rm = RouteMonitoring {
                peer: peer.clone(),
                update,
            };
            offer(
                &self.cfg.name,
                self.client.route_monitoring(rm).map_err(|e| e.to_string()),
            );
        }
    }

    async fn statistics(&mut self) {
        let Some(counts) = self.rib.counts().await else {
            return;
        };
        let now = SystemTime::now();
        let mut names: Vec<&String> = self.sessions.keys().collect();
        names.sort();
        for name in names {
            let (Some(s), Some(peer)) = (self.sessions.get(name), counts.get(name)) else {
                continue;
            };
            let c = &peer.total;
            let mut stats = vec![
                Stat::counter(
                    stat_type::REJECTED_PREFIXES,
                    u32::try_from(c.received.saturating_sub(c.accepted)).unwrap_or(u32::MAX),
                ),
                Stat::gauge(stat_type::ADJ_RIB_IN_ROUTES, c.received),
                Stat::gauge(stat_type::LOC_RIB_ROUTES, c.accepted),
                // What the peer was sent is the post-policy Adj-RIB-Out (RFC 8671 5).
                Stat::gauge(stat_type::ADJ_RIB_OUT_POST_ROUTES, c.sent),
            ];
            for f in &peer.families {
                stats.extend([
                    Stat::family_gauge(
                        stat_type::ADJ_RIB_IN_FAMILY_ROUTES,
                        f.family,
                        f.counts.received,
                    ),
                    Stat::family_gauge(
                        stat_type::LOC_RIB_FAMILY_ROUTES,
                        f.family,
                        f.counts.accepted,
                    ),
                    Stat::family_gauge(
                        stat_type::ADJ_RIB_OUT_POST_FAMILY_ROUTES,
                        f.family,
                        f.counts.sent,
                    ),
                ]);
            }
            let report = StatisticsReport {
                peer: header(s, AdjRib::PrePolicyIn).at(now),
                stats,
            };
            offer(
                &self.cfg.name,
                self.client.statistics(report).map_err(|e| e.to_string()),
            );
        }
    }

    /// Moves queued bytes to the socket as far as it takes them without waiting.
    fn write_some(&mut self) {
        let Some(stream) = &self.stream else {
            return;
        };
        loop {
            let Some(chunk) = next_chunk(&mut self.unsent, &mut self.client) else {
                return;
            };
            match stream.try_write(&chunk) {
                Ok(n) if n == chunk.len() => {}
                Ok(n) => {
                    self.unsent = Some(chunk.slice(n..));
                    return;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.unsent = Some(chunk);
                    return;
                }
                Err(e) => {
                    self.lost(e);
                    return;
                }
            }
        }
    }

    fn read(&mut self, r: io::Result<()>) {
        if let Err(e) = r {
            self.lost(e);
            return;
        }
        let Some(stream) = &self.stream else { return };
        let mut buf = [0u8; 4096];
        match stream.try_read(&mut buf) {
            Ok(0) => self.lost(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "closed by the station",
            )),
            Ok(n) => self.client.handle_data(buf.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => self.lost(e),
        }
    }

    /// The connection failed under us.
    fn lost(&mut self, e: io::Error) {
        debug!(station = %self.cfg.name, error = %e, "BMP connection lost");
        self.stream = None;
        self.unsent = None;
        self.client.handle_closed(Instant::now());
    }

    /// The client asked to close: what it still has goes out (bounded in time), then
    /// the connection is dropped.
    async fn close(&mut self) {
        if let Some(h) = self.connecting.take() {
            h.abort();
        }
        if let Some(stream) = self.stream.take() {
            let _ = tokio::time::timeout(STOP_FLUSH, self.flush(&stream)).await;
        }
        self.unsent = None;
        self.client.handle_closed(Instant::now());
    }

    async fn flush(&mut self, stream: &TcpStream) {
        loop {
            let Some(chunk) = next_chunk(&mut self.unsent, &mut self.client) else {
                return;
            };
            let mut off = 0;
            while off < chunk.len() {
                if stream.writable().await.is_err() {
                    return;
                }
                match stream.try_write(chunk.get(off..).unwrap_or_default()) {
                    Ok(n) => off += n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        }
    }

    /// Stops: Termination, written out within [`STOP_FLUSH`].
    async fn stop(&mut self) {
        self.client.stop();
        while let Some(ev) = self.client.poll_event() {
            if ev == ClientEvent::Close {
                self.close().await;
            }
        }
        info!(station = %self.cfg.name, "BMP station stopped");
    }
}

/// What to write next: the rest of a chunk the socket took part of, else the client's
/// next one.
fn next_chunk(unsent: &mut Option<Bytes>, client: &mut Client) -> Option<Bytes> {
    unsent.take().or_else(|| client.poll_transmit())
}

/// Logs what became of a message offered to the client of `station` where it matters.
fn offer(station: &str, r: Result<Enqueued, String>) {
    match r {
        Ok(Enqueued::Overflow) => {
            warn!(
                station,
                "BMP station queue full: dropped, reconnecting to resynchronise"
            )
        }
        Ok(_) => {}
        Err(e) => debug!(station, error = %e, "BMP message not encodable"),
    }
}

async fn join_opt(h: &mut Option<JoinHandle<io::Result<TcpStream>>>) -> io::Result<TcpStream> {
    match h {
        Some(h) => match h.await {
            Ok(r) => r,
            Err(e) => Err(io::Error::other(e.to_string())),
        },
        None => std::future::pending().await,
    }
}

async fn readable(s: Option<&TcpStream>) -> io::Result<()> {
    match s {
        Some(s) => s.readable().await,
        None => std::future::pending().await,
    }
}

async fn writable(s: Option<&TcpStream>, wanted: bool) -> io::Result<()> {
    match s {
        Some(s) if wanted => s.writable().await,
        _ => std::future::pending().await,
    }
}

async fn sleep_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::super::tap::RibFeed;
    use super::*;
    use messages::test_facts as facts;

    /// The NOTIFICATION a Peer Down carries, decoded back.
    /// A station task for `listener` with one peer "p" up; no RIB, so a peer's table is
    /// empty (queries find the channel closed).
    fn station(
        listener: &tokio::net::TcpListener,
        events: tokio::sync::broadcast::Receiver<Arc<MonitorEvent>>,
        cancel: &CancellationToken,
    ) -> Station {
        let (rib, _) = tokio::sync::mpsc::channel(1);
        Station {
            config: BmpConfig {
                name: "test".into(),
                address: listener.local_addr().unwrap(),
                pre_policy: true,
                post_policy: false,
                adj_rib_out: false,
                statistics_interval: None,
                sys_name: None,
                sys_descr: None,
            },
            router_id: [10, 0, 0, 1].into(),
            rib: RibAccess(rib),
            sessions_now: Arc::new(|| Box::pin(async { vec![("p".to_string(), facts())] })),
            events,
            wants: Vec::new(),
            cancel: cancel.clone(),
        }
    }

    /// Starts a station task on `listener` and accepts its connection, once the
    /// Initiation and the Peer Up arrived on it.
    async fn connected(
        listener: &tokio::net::TcpListener,
        tap: &super::super::tap::Tap,
    ) -> (tokio::task::JoinHandle<()>, TcpStream, CancellationToken) {
        let cancel = CancellationToken::new();
        let task = tokio::spawn(run(station(listener, tap.subscribe(), &cancel)));
        let (mut c, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..2 {
            seen.push(read_message_type(&mut c).await);
        }
        assert_eq!(seen, [4, 3], "Initiation, then Peer Up");
        (task, c, cancel)
    }

    /// Reads one whole BMP message; returns its type.
    async fn read_message_type(c: &mut TcpStream) -> u8 {
        use tokio::io::AsyncReadExt;
        let mut head = [0u8; 6];
        c.read_exact(&mut head).await.unwrap();
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 6];
        c.read_exact(&mut body).await.unwrap();
        head[5]
    }

    /// Reads one connection until it closes; returns the BMP message types received.
    async fn types_until_closed(mut c: TcpStream) -> Vec<u8> {
        use tokio::io::AsyncReadExt;
        let mut buf = Vec::new();
        let _ = c.read_to_end(&mut buf).await;
        let mut types = Vec::new();
        let mut rest = &buf[..];
        while let Ok(Some(n)) = bgp_bmp::wire::frame_len(rest, 1 << 20) {
            types.push(rest[5]);
            rest = &rest[n..];
        }
        types
    }

    /// The initial table of each peer up at connection time ends with an End-of-RIB per
    /// negotiated family, even when the table is empty.
    #[tokio::test]
    async fn the_initial_table_of_a_peer_ends_with_end_of_rib() {
        use tokio::io::AsyncReadExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tap = super::super::tap::Tap::default();
        let (task, mut c, cancel) = connected(&listener, &tap).await;
        // Route Monitoring: common header, per-peer header (42 octets), then the IPv4
        // End-of-RIB: an UPDATE of 23 octets with no withdrawn routes and no attributes.
        let mut head = [0u8; 6];
        c.read_exact(&mut head).await.unwrap();
        assert_eq!(head[5], 0, "Route Monitoring: {head:?}");
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        assert_eq!(len, 6 + 42 + 23);
        let mut body = vec![0u8; len - 6];
        c.read_exact(&mut body).await.unwrap();
        let update = &body[42..];
        assert_eq!(update[18], 2, "an UPDATE");
        assert_eq!(&update[19..], [0, 0, 0, 0], "End-of-RIB for IPv4 unicast");
        cancel.cancel();
        task.await.unwrap();
    }

    /// A station that falls behind the tap is closed (Termination) and reconnected, and
    /// the new connection starts over with an Initiation.
    #[tokio::test]
    async fn a_station_behind_the_tap_is_reconnected_and_resynchronised() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tap = super::super::tap::Tap::default();
        let (task, first, cancel) = connected(&listener, &tap).await;
        // More events than the tap holds, before the task reads any (one thread).
        for _ in 0..super::super::tap::TAP_EVENTS + 10 {
            tap.send_for_test(MonitorEvent::Update {
                peer: "p".into(),
                session: facts(),
                message: Bytes::new(),
                add_path: false,
                at: SystemTime::now(),
            });
        }
        let rest = types_until_closed(first).await;
        assert_eq!(rest.last(), Some(&5), "Termination last: {rest:?}");
        let wait = Duration::from_secs(10);
        let (mut second, _) = tokio::time::timeout(wait, listener.accept())
            .await
            .expect("reconnected within the backoff")
            .unwrap();
        // The new connection starts over with an Initiation.
        let mut head = [0u8; 6];
        tokio::io::AsyncReadExt::read_exact(&mut second, &mut head)
            .await
            .unwrap();
        assert_eq!(head[5], 4, "Initiation first: {head:?}");
        cancel.cancel();
        task.await.unwrap();
    }

    /// Reads one whole BMP message: its type and what follows the common header.
    async fn read_message(c: &mut TcpStream) -> (u8, Vec<u8>) {
        use tokio::io::AsyncReadExt;
        let mut head = [0u8; 6];
        c.read_exact(&mut head).await.unwrap();
        let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 6];
        c.read_exact(&mut body).await.unwrap();
        (head[5], body)
    }

    /// A station configured for the post-policy Adj-RIB-In and the Adj-RIB-Out asks the
    /// RIB task for them while it runs, sends each peer's tables in order (pre-policy,
    /// post-policy with the L flag, Adj-RIB-Out with the O flag too), and live the
    /// accepted routes and the UPDATEs sent of the peer's current session only.
    #[tokio::test]
    async fn a_post_policy_station_gets_the_routes_of_the_current_session() {
        use bgp_proto::wire::{decode_message, Inbound};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let tap = super::super::tap::Tap::default();
        let cancel = CancellationToken::new();
        let mut st = station(&listener, tap.subscribe(), &cancel);
        st.config.post_policy = true;
        st.config.adj_rib_out = true;
        st.wants = vec![tap.want(RibFeed::Accepted), tap.want(RibFeed::Sent)];
        let task = tokio::spawn(run(st));
        let (mut c, _) = listener.accept().await.unwrap();
        let mut seen = Vec::new();
        for _ in 0..5 {
            let (kind, body) = read_message(&mut c).await;
            // The per-peer header's flags follow its peer type.
            seen.push((kind, (kind != 4).then(|| body[1])));
        }
        assert_eq!(
            seen,
            [
                (4, None),
                (3, Some(0)),
                (0, Some(0)),
                (0, Some(0x40)),
                (0, Some(0x50))
            ],
            "Initiation, Peer Up, End-of-RIB pre-policy, post-policy, Adj-RIB-Out"
        );
        assert!(tap.wanted(RibFeed::Accepted) && tap.wanted(RibFeed::Sent));

        let attrs: Attrs = Arc::new(bgp_rib::RouteAttrs {
            attrs: bgp_proto::PathAttributes {
                local_pref: Some(300),
                ..Default::default()
            },
            next_hop: Some(bgp_proto::MpNextHop::V4([192, 0, 2, 2].into())),
        });
        let route = |p: &str| Nlri {
            path_id: None,
            prefix: p.parse().unwrap(),
        };
        // Session 1 is up ("p"'s facts): a change tagged with session 0 is of a session
        // gone, so only the second is sent.
        for (seq, prefix) in [(0, "10.0.0.0/24"), (1, "10.1.0.0/24")] {
            tap.send_for_test(MonitorEvent::Accepted {
                peer: "p".into(),
                seq,
                changes: vec![(route(prefix), Some(attrs.clone()))],
                at: SystemTime::now(),
            });
        }
        let (kind, body) = read_message(&mut c).await;
        assert_eq!((kind, body[1]), (0, 0x40), "post-policy Route Monitoring");
        let update = match decode_message(&body[42..], &facts().received_codec()) {
            Ok(Inbound::Update(u)) => u.update,
            other => panic!("not an UPDATE: {other:?}"),
        };
        assert_eq!(update.nlri, [route("10.1.0.0/24")]);
        assert_eq!(update.attributes.local_pref, Some(300));

        // An UPDATE the peer was sent, as the RIB handed it over: as it is, O and L set.
        let mut sent = Vec::new();
        bgp_proto::wire::encode_withdrawals(
            bgp_proto::Family::IPV4_UNICAST,
            &[route("10.2.0.0/24")],
            &facts().negotiated.codec,
            &mut sent,
        )
        .unwrap();
        for seq in [0, 1] {
            tap.send_for_test(MonitorEvent::Sent {
                peer: "p".into(),
                seq,
                updates: sent.clone(),
                at: SystemTime::now(),
            });
        }
        let (kind, body) = read_message(&mut c).await;
        assert_eq!((kind, body[1]), (0, 0x50), "Adj-RIB-Out Route Monitoring");
        assert_eq!(body[42..], sent[0][..]);
        cancel.cancel();
        task.await.unwrap();
        assert!(
            !tap.wanted(RibFeed::Accepted),
            "asked for only while the station runs"
        );
    }
}
