//! The BFD task: one task for every session, sockets and timers (see bfd/mod.rs).

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::io;
use std::net::IpAddr;
use std::num::NonZeroU8;
use std::os::fd::{AsFd, AsRawFd, RawFd};
use std::time::{Duration, Instant};

use bgp_bfd::udp::{Listener, Sender};
use bgp_bfd::{Endpoint, Password, SessionConfig, SessionEvent, SessionId, SimplePassword, State};
use tokio::io::unix::{AsyncFd, AsyncFdReadyGuard};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info, warn};

use super::path::{self, Path};
use super::{BfdCtl, BfdPeer, BfdSession};
use crate::peer::PeerCmd;

/// Largest datagram read: a Control packet is 24 bytes plus at most 28 of
/// authentication; anything longer is malformed anyway.
const MAX_PACKET: usize = 128;
/// Datagrams read from one socket per wake-up before timers get their turn.
const READ_BURST: usize = 256;
/// How often a session that could not start (no socket, no address) is tried again.
const RETRY: Duration = Duration::from_secs(5);
/// Key id of the simple password we send and require (BIRD numbers a session's
/// passwords from 1).
const PASSWORD_KEY_ID: u8 = 1;

/// A running session.
struct Tracked {
    id: SessionId,
    peer: BfdPeer,
    path: Path,
    sender: Sender,
    since: Instant,
    bgp_downs: u64,
}

/// A session that could not start, and why.
struct Failed {
    peer: BfdPeer,
    error: String,
}

/// A receiving socket as tokio's `AsyncFd` takes it.
struct Socket(Listener);

impl AsRawFd for Socket {
    fn as_raw_fd(&self) -> RawFd {
        self.0.as_fd().as_raw_fd()
    }
}

/// The receiving sockets: single hop and multihop, IPv4 and IPv6, each opened the
/// first time a session needs it.
#[derive(Default)]
struct Listeners {
    slots: [Option<AsyncFd<Socket>>; 4],
}

fn slot(peer: IpAddr, multihop: bool) -> usize {
    usize::from(peer.is_ipv6()) + 2 * usize::from(multihop)
}

impl Listeners {
    fn ensure(&mut self, peer: IpAddr, multihop: bool) -> Result<(), String> {
        let i = slot(peer, multihop);
        if self.slots.get(i).is_some_and(Option::is_some) {
            return Ok(());
        }
        let any = match peer {
            IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
            IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        let port = if multihop { 4784 } else { 3784 };
        let l = Listener::bind(any, multihop)
            .and_then(|l| {
                // SAFETY: the socket is moved into the AsyncFd, which owns it (and its
                // fd) until dropped; a Listener's fd never changes.
                unsafe { AsyncFd::register(Socket(l)) }.map_err(io::Error::from)
            })
            .map_err(|e| format!("cannot listen on UDP port {port} ({any}): {e}"))?;
        info!(port, address = %any, "BFD listening");
        if let Some(s) = self.slots.get_mut(i) {
            *s = Some(l);
        }
        Ok(())
    }
}

/// See the module docs.
pub(crate) struct BfdTask {
    ctl: mpsc::Receiver<BfdCtl>,
    cancel: CancellationToken,
    endpoint: Endpoint,
    sessions: BTreeMap<String, Tracked>,
    by_id: HashMap<SessionId, String>,
    failed: BTreeMap<String, Failed>,
    listeners: Listeners,
    /// Seeds each session's jitter.
    seed: u64,
}

impl BfdTask {
    pub(super) fn new(ctl: mpsc::Receiver<BfdCtl>, cancel: CancellationToken) -> BfdTask {
        // RFC 5880 6.8.1: discriminators differ from run to run.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id());
        BfdTask {
            ctl,
            cancel,
            endpoint: Endpoint::new(seed),
            sessions: BTreeMap::new(),
            by_id: HashMap::new(),
            failed: BTreeMap::new(),
            listeners: Listeners::default(),
            seed,
        }
    }

    /// Runs until the speaker shuts down; every session then goes AdminDown.
    pub(crate) async fn run(mut self) {
        let mut retry_at: Option<Instant> = None;
        loop {
            self.flush();
            self.events();
            if self.failed.is_empty() {
                retry_at = None;
            } else if retry_at.is_none() {
                retry_at = Some(Instant::now() + RETRY);
            }
            let deadline = match (self.endpoint.poll_timeout(), retry_at) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let [l0, l1, l2, l3] = &self.listeners.slots;
            tokio::select! {
                _ = self.cancel.cancelled() => break,
                ctl = self.ctl.recv() => match ctl {
                    Some(BfdCtl::Sync(peers)) => self.sync(peers),
                    Some(BfdCtl::Show(tx)) => {
                        let _ = tx.send(self.show());
                    }
                    None => break,
                },
                Ok(g) = readable(l0.as_ref()) => drain(g, &mut self.endpoint),
                Ok(g) = readable(l1.as_ref()) => drain(g, &mut self.endpoint),
                Ok(g) = readable(l2.as_ref()) => drain(g, &mut self.endpoint),
                Ok(g) = readable(l3.as_ref()) => drain(g, &mut self.endpoint),
                _ = sleep_until(deadline) => {
                    let now = Instant::now();
                    self.endpoint.handle_timeout(now);
                    if retry_at.is_some_and(|r| r <= now) {
                        retry_at = None;
                        self.retry();
                    }
                }
            }
        }
        let names: Vec<String> = self.sessions.keys().cloned().collect();
        for n in names {
            self.remove(&n);
        }
    }

    /// The set of BFD peers changed.
    fn sync(&mut self, peers: Vec<BfdPeer>) {
        let wanted: BTreeMap<String, BfdPeer> =
            peers.into_iter().map(|p| (p.name.clone(), p)).collect();
        let gone: Vec<String> = self
            .sessions
            .keys()
            .filter(|n| !wanted.contains_key(*n))
            .cloned()
            .collect();
        for n in gone {
            info!(peer = %n, "BFD session removed");
            self.remove(&n);
        }
        self.failed.retain(|n, _| wanted.contains_key(n));
        for peer in wanted.into_values() {
            self.place(peer);
        }
    }

    /// Starts, keeps, re-times or moves the session of `peer`.
    fn place(&mut self, peer: BfdPeer) {
        let now = Instant::now();
        let name = peer.name.clone();
        let path = match path::resolve(&peer.address, peer.source, peer.config.hops, peer.min_ttl) {
            Ok(p) => p,
            Err(error) => {
                self.remove(&name);
                self.fail(peer, error);
                return;
            }
        };
        if let Some(t) = self.sessions.get_mut(&name) {
            if t.path == path && t.peer.config.password == peer.config.password {
                let c = &peer.config;
                if (c.min_tx, c.min_rx, c.multiplier)
                    != (
                        t.peer.config.min_tx,
                        t.peer.config.min_rx,
                        t.peer.config.multiplier,
                    )
                {
                    info!(peer = %name, min_tx = ?c.min_tx, min_rx = ?c.min_rx, multiplier = c.multiplier, "BFD timers changed");
                    let mult = NonZeroU8::new(c.multiplier).unwrap_or(NonZeroU8::MIN);
                    let (tx, rx) = (c.min_tx, c.min_rx);
                    self.endpoint
                        .with_session(t.id, |s| s.set_timers(now, tx, rx, mult));
                }
                t.peer = peer;
                return;
            }
            info!(peer = %name, "BFD path or password changed: new session");
            self.remove(&name);
        }
        match self.add(now, peer.clone(), path) {
            Ok(()) => {
                self.failed.remove(&name);
            }
            Err(error) => self.fail(peer, error),
        }
    }

    fn fail(&mut self, peer: BfdPeer, error: String) {
        warn!(peer = %peer.name, %error, "BFD session cannot run; trying again later");
        self.failed
            .insert(peer.name.clone(), Failed { peer, error });
    }

    fn retry(&mut self) {
        let failed = std::mem::take(&mut self.failed);
        for f in failed.into_values() {
            self.place(f.peer);
        }
    }

    fn add(&mut self, now: Instant, peer: BfdPeer, path: Path) -> Result<(), String> {
        let multihop = path.hops.is_multihop();
        self.listeners.ensure(path.addresses.peer, multihop)?;
        let mut h = std::collections::hash_map::DefaultHasher::new();
        peer.name.hash(&mut h);
        let hash = h.finish();
        // Spread the sessions over RFC 5881 4's source ports; the first free one is taken.
        let first_port = 49152 + (hash % 16384) as u16;
        let sender = Sender::bind(path.bind, first_port)
            .map_err(|e| format!("no sending socket on {}: {e}", path.bind))?;
        let mut cfg = SessionConfig::new(path.hops);
        cfg.desired_min_tx = peer.config.min_tx;
        cfg.required_min_rx = peer.config.min_rx;
        cfg.detect_mult = peer.config.multiplier;
        cfg.jitter_seed = Some(self.seed ^ hash);
        cfg.authentication = match &peer.config.password {
            Some(pw) => Some(SimplePassword {
                key_id: PASSWORD_KEY_ID,
                password: Password::new(pw.as_bytes()).map_err(|e| e.to_string())?,
            }),
            None => None,
        };
        let id = self
            .endpoint
            .add_session(now, path.addresses, cfg)
            .map_err(|e| e.to_string())?;
        info!(
            peer = %peer.name,
            address = %path.addresses.peer,
            multihop,
            source = %sender.local_addr().map_or_else(|e| e.to_string(), |a| a.to_string()),
            "BFD session added"
        );
        self.by_id.insert(id, peer.name.clone());
        self.sessions.insert(
            peer.name.clone(),
            Tracked {
                id,
                peer,
                path,
                sender,
                since: now,
                bgp_downs: 0,
            },
        );
        Ok(())
    }

    /// Removes a session, telling the peer AdminDown first (RFC 5882 3.2: not a failure).
    fn remove(&mut self, name: &str) {
        let Some(id) = self.sessions.get(name).map(|t| t.id) else {
            return;
        };
        let now = Instant::now();
        self.endpoint.with_session(id, |s| {
            s.admin_down(now);
            // Send the AdminDown now rather than at the next transmit time.
            for _ in 0..3 {
                if s.has_transmit() {
                    break;
                }
                match s.poll_timeout() {
                    Some(at) => s.handle_timeout(at.max(now)),
                    None => break,
                }
            }
        });
        self.flush();
        self.events();
        self.endpoint.remove_session(id);
        self.by_id.remove(&id);
        self.sessions.remove(name);
    }

    /// Sends what the endpoint has to send. A packet that cannot be sent is lost, as
    /// BFD expects of its path.
    fn flush(&mut self) {
        while let Some(t) = self.endpoint.poll_transmit() {
            let Some(s) = self
                .by_id
                .get(&t.session)
                .and_then(|n| self.sessions.get(n))
            else {
                continue;
            };
            if let Err(e) = s.sender.send(&t) {
                debug!(peer = %s.peer.name, error = %e, "BFD packet not sent");
            }
        }
    }

    /// Acts on state changes.
    fn events(&mut self) {
        while let Some((id, ev)) = self.endpoint.poll_event() {
            let Some(t) = self.by_id.get(&id).and_then(|n| self.sessions.get_mut(n)) else {
                continue;
            };
            let SessionEvent::StateChanged { from, to, reason } = ev else {
                continue;
            };
            t.since = Instant::now();
            info!(peer = %t.peer.name, %from, %to, %reason, "BFD session state changed");
            if !ev.is_failure() {
                continue;
            }
            let established = t
                .peer
                .status
                .lock()
                .map(|s| s.state == bgp_proto::session::State::Established)
                .unwrap_or(false);
            if !established {
                info!(peer = %t.peer.name, "BFD down while the BGP session is not established: nothing to close");
                continue;
            }
            warn!(peer = %t.peer.name, %reason, "BFD down: closing the BGP session (Cease / BFD Down, RFC 9384)");
            t.bgp_downs += 1;
            if let Err(mpsc::error::TrySendError::Full(cmd)) = t.peer.cmd.try_send(PeerCmd::BfdDown)
            {
                let tx = t.peer.cmd.clone();
                tokio::spawn(async move {
                    let _ = tx.send(cmd).await;
                });
            }
        }
    }

    fn show(&self) -> Vec<BfdSession> {
        let now = Instant::now();
        let mut out: Vec<BfdSession> = self
            .sessions
            .values()
            .filter_map(|t| {
                let s = self.endpoint.session(t.id)?;
                let (remote_tx, _, remote_mult) = s.remote_intervals();
                let (_, our_rx) = s.advertised_intervals();
                Some(BfdSession {
                    peer: t.peer.name.clone(),
                    address: t.path.addresses.peer,
                    local: t.path.addresses.local.or_else(|| {
                        t.sender
                            .local_addr()
                            .ok()
                            .map(|a| a.ip())
                            .filter(|a| !a.is_unspecified())
                    }),
                    multihop: t.path.hops.is_multihop(),
                    state: s.state().as_str(),
                    remote_state: s.remote_state().as_str(),
                    tx_interval: s.transmit_interval(),
                    rx_interval: (remote_mult > 0).then(|| our_rx.max(remote_tx)),
                    multiplier: s.config().detect_mult,
                    remote_multiplier: remote_mult,
                    detection_time: s.detection_time(),
                    local_diagnostic: s.local_diagnostic().to_string(),
                    remote_diagnostic: s.remote_diagnostic().to_string(),
                    since: now.saturating_duration_since(t.since),
                    up_count: s.stats().up_count,
                    bgp_downs: t.bgp_downs,
                    error: None,
                })
            })
            .collect();
        out.extend(self.failed.values().map(|f| BfdSession {
            peer: f.peer.name.clone(),
            address: f.peer.address.addr,
            local: f.peer.source,
            multihop: f.peer.config.hops == crate::config::BfdHops::Multi,
            state: State::Down.as_str(),
            remote_state: State::Down.as_str(),
            tx_interval: Duration::ZERO,
            rx_interval: None,
            multiplier: f.peer.config.multiplier,
            remote_multiplier: 0,
            detection_time: None,
            local_diagnostic: bgp_bfd::Diagnostic::NoDiagnostic.to_string(),
            remote_diagnostic: bgp_bfd::Diagnostic::NoDiagnostic.to_string(),
            since: Duration::ZERO,
            up_count: 0,
            bgp_downs: 0,
            error: Some(f.error.clone()),
        }));
        out.sort_by(|a, b| a.peer.cmp(&b.peer));
        out
    }
}

/// Reads what waits on a receiving socket into the endpoint.
fn drain(mut g: AsyncFdReadyGuard<'_, Socket>, endpoint: &mut Endpoint) {
    let mut buf = [0u8; MAX_PACKET];
    for _ in 0..READ_BURST {
        match g.get_inner().0.recv(&mut buf) {
            Ok((n, info)) => {
                let payload = buf.get(..n).unwrap_or_default();
                if let Err(why) = endpoint.handle_datagram(Instant::now(), &info, payload) {
                    debug!(source = %info.source, %why, "BFD packet discarded");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                g.clear_ready();
                return;
            }
            Err(e) => debug!(error = %e, "BFD receive error"),
        }
    }
    // More may be waiting: readiness is kept, the loop comes back after the timers.
}

async fn readable(l: Option<&AsyncFd<Socket>>) -> io::Result<AsyncFdReadyGuard<'_, Socket>> {
    match l {
        Some(l) => l.readable().await,
        None => std::future::pending().await,
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(tokio::time::Instant::from_std(at)).await,
        None => std::future::pending().await,
    }
}
