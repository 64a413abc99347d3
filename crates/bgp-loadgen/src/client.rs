//! One client: a [`Session`] from bgp-proto driven over a tokio TCP connection from the
//! client's own loopback address, announcing its prefixes once Established and counting
//! what the device under test sends back in a [`RouteTally`].
//!
//! The driver is the usual sans-IO loop: feed the session what happened (connected,
//! bytes, timer, closed), then drain what it wants (events, bytes to write, the next
//! deadline). Reads and writes go through one `&TcpStream` with `readable`/`writable`
//! and non-blocking `try_*` calls, so a client never stops reading while its writes wait
//! for the peer (two peers blocked writing to each other would deadlock).
//!
//! A client tells the coordinator when it is Established and when it holds every other
//! client's routes ([`Progress`]); it ends when told to stop (sending Cease /
//! Administrative Shutdown, RFC 4486) or when its session goes down, which is an error.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use bgp_proto::session::{Session, SessionConfig, SessionEvent};
use bgp_proto::wire::{encode_announcements, DecodedUpdate, EncodeError};
use bgp_proto::{
    notification_code as nc, AsPath, AsSegment, Family, MpNlri, Nlri, Notification, Origin,
    PathAttributes, SegmentType,
};
use bytes::Bytes;
use ipnet::IpNet;
use std::sync::Arc;
use tokio::net::{TcpSocket, TcpStream};

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};

use crate::plan::Plan;
use crate::tally::RouteTally;

/// Bytes read from the socket at once.
const READ_CHUNK: usize = 32 * 1024;

/// How long one TCP connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// First AS of the clients' AS_PATHs: client `i` announces `AS_SEQUENCE [base + i]`, a
/// private 4-octet AS (RFC 6996), as if each client relayed its own customer's routes.
pub const ORIGIN_AS_BASE: u32 = 4_200_000_000;

/// What every client shares.
#[derive(Clone, Debug)]
pub struct ClientSettings {
    pub plan: Plan,
    /// Where the device under test listens.
    pub dut: SocketAddr,
    /// The AS of the clients and of the reflector (iBGP).
    pub asn: u32,
    /// Hold Time the clients propose, seconds.
    pub hold_time: u16,
    /// Connections opened and not yet Established, shared by all clients: a client takes
    /// a slot before it connects and gives it back at Established (or when the attempt
    /// fails). Keeps the clients from flooding the reflector's listen backlog (BIRD's is
    /// 8), where dropped SYNs would add the kernel's retransmission back-off (1 s, 3 s,
    /// 7 s, ...) to the time measured instead of the reflector's own work.
    pub connect_slots: Arc<Semaphore>,
}

/// Milestones a client reports to the coordinator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    Established {
        client: u32,
        at: Instant,
    },
    /// The client holds every other client's routes.
    Complete {
        client: u32,
        at: Instant,
    },
}

/// Why a client ended before it was told to stop.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("client {client} ({address}): session down: {reason}")]
    Down {
        client: u32,
        address: Ipv4Addr,
        reason: String,
    },
    #[error("client {client} ({address}): encoding its announcements: {source}")]
    Encode {
        client: u32,
        address: Ipv4Addr,
        source: EncodeError,
    },
}

/// What a client counted, returned when it ends.
#[derive(Clone, Debug)]
pub struct ClientSummary {
    pub client: u32,
    pub tally: RouteTally,
}

/// Runs client `client` until `stop` turns true or its session fails.
pub async fn run_client(
    settings: ClientSettings,
    client: u32,
    progress: mpsc::UnboundedSender<Progress>,
    mut stop: watch::Receiver<bool>,
) -> Result<ClientSummary, ClientError> {
    let mut driver = Driver::new(&settings, client);
    driver.session.start(Instant::now());
    loop {
        if let Some(done) = driver.drain_events(&settings, &progress)? {
            return Ok(done);
        }
        if driver.connect_wanted {
            driver.connect_wanted = false;
            let now_stopping = *stop.borrow();
            if now_stopping {
                return Ok(driver.summary());
            }
            driver.connect(&settings).await;
            continue;
        }
        driver.feed_announcements();
        if !driver.complete_reported && driver.tally.is_complete() {
            driver.complete_reported = true;
            let _ = progress.send(Progress::Complete {
                client,
                at: Instant::now(),
            });
        }
        if driver.pending.is_empty() {
            if let Some(bytes) = driver.session.poll_transmit() {
                driver.pending = bytes;
            }
        }
        let deadline = driver
            .session
            .poll_timeout()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let sleep = tokio::time::sleep_until(deadline.into());
        let stopping = driver.stopping;
        match driver.stream.as_ref() {
            Some(stream) => {
                let want_write = !driver.pending.is_empty();
                tokio::select! {
                    r = stream.readable() => driver.on_readable(r.is_ok()),
                    w = stream.writable(), if want_write => driver.on_writable(w.is_ok()),
                    () = sleep => driver.session.handle_timeout(Instant::now()),
                    _ = stop.changed(), if !stopping => driver.on_stop(),
                }
            }
            None => {
                tokio::select! {
                    () = sleep => driver.session.handle_timeout(Instant::now()),
                    _ = stop.changed(), if !stopping => return Ok(driver.summary()),
                }
            }
        }
    }
}

/// The state of one client between awaits.
struct Driver {
    client: u32,
    address: Ipv4Addr,
    session: Session,
    stream: Option<TcpStream>,
    connect_wanted: bool,
    /// The connect slot held from connecting until Established.
    slot: Option<OwnedSemaphorePermit>,
    /// Bytes taken from the session and not yet written.
    pending: Bytes,
    /// Our UPDATEs, encoded at Established, not yet handed to the session.
    announcements: VecDeque<Bytes>,
    tally: RouteTally,
    complete_reported: bool,
    /// Told to stop: the next Down ends the client without an error.
    stopping: bool,
    read_buf: Vec<u8>,
}

impl Driver {
    fn new(settings: &ClientSettings, client: u32) -> Driver {
        let address = Plan::client_address(client);
        let mut config = SessionConfig::new(settings.asn, address, Some(settings.asn));
        config.hold_time = settings.hold_time;
        config.connect_retry = Duration::from_secs(1);
        config.connect_retry_max = Duration::from_secs(4);
        Driver {
            client,
            address,
            session: Session::new(config),
            stream: None,
            connect_wanted: false,
            slot: None,
            pending: Bytes::new(),
            announcements: VecDeque::new(),
            tally: RouteTally::new(settings.plan, client),
            complete_reported: false,
            stopping: false,
            read_buf: vec![0; READ_CHUNK],
        }
    }

    fn summary(&self) -> ClientSummary {
        ClientSummary {
            client: self.client,
            tally: self.tally.clone(),
        }
    }

    /// Acts on the session's events; `Some` when the client is done.
    fn drain_events(
        &mut self,
        settings: &ClientSettings,
        progress: &mpsc::UnboundedSender<Progress>,
    ) -> Result<Option<ClientSummary>, ClientError> {
        while let Some(event) = self.session.poll_event() {
            match event {
                SessionEvent::Connect => self.connect_wanted = true,
                SessionEvent::Disconnect => self.disconnect(),
                SessionEvent::Established(negotiated) => {
                    self.slot = None;
                    let _ = progress.send(Progress::Established {
                        client: self.client,
                        at: Instant::now(),
                    });
                    self.announcements = self.encode_announcements(settings, &negotiated.codec)?;
                }
                SessionEvent::Update(update) => self.count(&update),
                SessionEvent::Down(reason) => {
                    self.slot = None;
                    self.disconnect();
                    if self.stopping {
                        return Ok(Some(self.summary()));
                    }
                    return Err(ClientError::Down {
                        client: self.client,
                        address: self.address,
                        reason: reason.to_string(),
                    });
                }
                SessionEvent::StateChanged { .. } | SessionEvent::RouteRefresh(_) => {}
            }
        }
        Ok(None)
    }

    /// This client's routes (RFC 4271 5.1: ORIGIN, AS_PATH, NEXT_HOP; LOCAL_PREF on
    /// iBGP, 5.1.5), packed into as few UPDATEs as the session allows.
    fn encode_announcements(
        &self,
        settings: &ClientSettings,
        codec: &bgp_proto::CodecContext,
    ) -> Result<VecDeque<Bytes>, ClientError> {
        let attributes = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath {
                segments: vec![AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![ORIGIN_AS_BASE.saturating_add(self.client)],
                }],
            }),
            next_hop: Some(self.address),
            local_pref: Some(100),
            ..PathAttributes::default()
        };
        let nlri: Vec<Nlri> = settings
            .plan
            .prefixes_of(self.client)
            .into_iter()
            .map(|p| Nlri::new(IpNet::V4(p)))
            .collect();
        let mut frames = Vec::new();
        encode_announcements(
            Family::IPV4_UNICAST,
            &attributes,
            None,
            &nlri,
            codec,
            &mut frames,
        )
        .map_err(|source| ClientError::Encode {
            client: self.client,
            address: self.address,
            source,
        })?;
        Ok(frames.into())
    }

    /// Hands queued announcements to the session while its queue has room.
    fn feed_announcements(&mut self) {
        while let Some(frame) = self.announcements.front() {
            if frame.len() > self.session.send_capacity() {
                return;
            }
            if self.session.send_encoded([frame.clone()]).is_err() {
                // Not Established any more; the Down event that follows ends the client.
                self.announcements.clear();
                return;
            }
            self.announcements.pop_front();
        }
    }

    fn count(&mut self, decoded: &DecodedUpdate) {
        let update = &decoded.update;
        let withdraw_all = decoded.treat_as_withdraw.is_some();
        let mp_announced = match &update.mp_reach {
            Some(mp) => unicast(&mp.nlri),
            None => &[],
        };
        for nlri in update.nlri.iter().chain(mp_announced) {
            if withdraw_all {
                self.tally.withdraw(&nlri.prefix);
            } else {
                self.tally.announce(&nlri.prefix);
            }
        }
        let mp_withdrawn = match &update.mp_unreach {
            Some(mp) => unicast(&mp.nlri),
            None => &[],
        };
        for nlri in update.withdrawn.iter().chain(mp_withdrawn) {
            self.tally.withdraw(&nlri.prefix);
        }
    }

    async fn connect(&mut self, settings: &ClientSettings) {
        if self.slot.is_none() {
            // Closed only if the coordinator is gone; then connect anyway.
            self.slot = Arc::clone(&settings.connect_slots)
                .acquire_owned()
                .await
                .ok();
        }
        let attempt = async {
            let socket = TcpSocket::new_v4()?;
            socket.set_nodelay(true)?;
            socket.bind(SocketAddr::new(IpAddr::V4(self.address), 0))?;
            socket.connect(settings.dut).await
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(Ok(stream)) => {
                self.stream = Some(stream);
                self.session.handle_connected(Instant::now());
            }
            // Refused, unreachable or too slow: the session retries after ConnectRetry.
            Ok(Err(_)) | Err(_) => {
                self.slot = None;
                self.session.handle_connect_failed(Instant::now());
            }
        }
    }

    fn on_readable(&mut self, ready: bool) {
        let Some(stream) = self.stream.as_ref() else {
            return;
        };
        if !ready {
            self.session.handle_closed(Instant::now());
            return;
        }
        match stream.try_read(&mut self.read_buf) {
            Ok(0) => self.session.handle_closed(Instant::now()),
            Ok(n) => {
                let data = self.read_buf.get(..n).unwrap_or_default();
                self.session.handle_data(Instant::now(), data);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => self.session.handle_closed(Instant::now()),
        }
    }

    fn on_writable(&mut self, ready: bool) {
        let Some(stream) = self.stream.as_ref() else {
            return;
        };
        if !ready {
            self.session.handle_closed(Instant::now());
            return;
        }
        match stream.try_write(&self.pending) {
            Ok(n) => {
                let _ = self.pending.split_to(n.min(self.pending.len()));
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(_) => self.session.handle_closed(Instant::now()),
        }
    }

    /// The coordinator said stop (or went away): end the session with Cease /
    /// Administrative Shutdown (RFC 4486 subcode 2).
    fn on_stop(&mut self) {
        self.stopping = true;
        self.announcements.clear();
        self.session.stop(
            Instant::now(),
            Some(Notification {
                code: nc::CEASE,
                subcode: nc::CEASE_ADMIN_SHUTDOWN,
                data: Bytes::new(),
            }),
        );
    }

    /// Writes what can be written without waiting (the NOTIFICATION, best effort, as the
    /// session asks on Disconnect), then closes the connection.
    fn disconnect(&mut self) {
        if let Some(stream) = self.stream.take() {
            loop {
                if self.pending.is_empty() {
                    match self.session.poll_transmit() {
                        Some(bytes) => self.pending = bytes,
                        None => break,
                    }
                }
                match stream.try_write(&self.pending) {
                    Ok(n) if n > 0 => {
                        let _ = self.pending.split_to(n.min(self.pending.len()));
                    }
                    _ => break,
                }
            }
        }
        self.pending = Bytes::new();
        while self.session.poll_transmit().is_some() {}
    }
}

/// The unicast NLRI of an MP_REACH / MP_UNREACH (other families carry none we count).
fn unicast(nlri: &MpNlri) -> &[Nlri] {
    match nlri {
        MpNlri::Unicast(v) => v,
        MpNlri::Opaque(_) => &[],
    }
}
