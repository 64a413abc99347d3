//! Kernel → RIB: an initial dump, then rtnetlink multicast notifications.
//!
//! The watcher subscribes to `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV6_IFADDR`,
//! `RTNLGRP_IPV4_ROUTE` and `RTNLGRP_IPV6_ROUTE` *before* dumping, so no change can fall between
//! the dump and the first notification; notifications queued during the dump are applied
//! afterwards and are idempotent against the state the dump produced. There is no periodic
//! scan (BIRD's 2 s kernel scan is a known CPU cost on Calico nodes): the kernel tells us.
//!
//! When the connection fails (a socket error, a dump that cannot complete), the watcher
//! reports [`KernelEvent::Lost`], reconnects with exponential backoff (0.5 s doubling up to
//! 30 s) and re-reads everything, reporting the differences against what it reported
//! before, then [`KernelEvent::Synced`]: a consumer never has to restart it.
//!
//! Two cases force a re-dump, reported as differences against the previous state:
//! - the socket overran (`ENOBUFS`, netlink-proto forwards it as `NLMSG_OVERRUN`): messages
//!   were lost, so links, addresses and routes are all re-read;
//! - an interface went down or disappeared: IPv4 flushes the routes through it without sending
//!   `RTM_DELROUTE` (see `fib_sync_down_dev()`), so routes are re-read once the queue is drained.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::net::{Ipv4Addr, Ipv6Addr};

use futures_util::{StreamExt, TryStreamExt};
use ipnet::IpNet;
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::AsyncSocket;
use rtnetlink::{Handle, MulticastGroup, RouteMessageBuilder};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::ImportConfig;
use crate::convert::{address_from_msg, link_from_msg, route_from_msg, LinkTable};
use crate::types::{Address, KernelEvent, KernelRoute, Link, RouteKind};
use crate::KernelError;

/// Socket receive buffer requested for the notification socket (bytes). Large enough to absorb
/// a burst of Felix programming a node's routes; an overrun still resynchronises correctly.
const NOTIFY_RCVBUF: usize = 8 << 20;
/// Capacity of the event channel towards the daemon.
const EVENT_QUEUE: usize = 4096;

/// Key of a kernel route: what the kernel itself uses to tell routes apart (the IPv4 TOS is
/// not modelled; Calico never sets it).
type RouteKey = (u32, IpNet, u32);

fn key_of(r: &KernelRoute) -> RouteKey {
    (r.table, r.prefix, r.metric)
}

/// What the watcher remembers of a selected route (16 bytes; a whole [`KernelRoute`] per
/// route cost about 270 bytes with its map slot, a million routes on a node doing kernel
/// import): a fingerprint of the whole route to tell a change from a repeat, the protocol
/// to check who owns a delete, and what a removal found by a re-dump reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// Hash of the whole route. Two different routes at one key with the same 64-bit hash
    /// would hide the change: not a practical concern.
    fingerprint: u64,
    protocol: u8,
    kind: RouteKind,
}

impl Seen {
    fn of(r: &KernelRoute) -> Self {
        // SipHash with fixed keys: deterministic within and across runs.
        let mut h = std::hash::DefaultHasher::new();
        r.hash(&mut h);
        Seen {
            fingerprint: h.finish(),
            protocol: r.protocol,
            kind: r.kind,
        }
    }

    /// The route reported for a removal found by a re-dump: its key, protocol and kind
    /// (interface, gateway and next hops are no longer known).
    fn removed((table, prefix, metric): RouteKey, s: Seen) -> KernelRoute {
        KernelRoute {
            prefix,
            kind: s.kind,
            protocol: s.protocol,
            metric,
            table,
            ifname: None,
            gateway: None,
            nexthops: Vec::new(),
        }
    }
}

/// Kernel state as far as the daemon has been told.
#[derive(Default)]
struct State {
    links: LinkTable,
    addresses: HashMap<(u32, IpNet), Address>,
    routes: HashMap<RouteKey, Seen>,
}

/// Watches the kernel and reports [`KernelEvent`]s.
///
/// Dropping the watcher stops its task and closes its netlink socket.
pub struct KernelWatcher {
    events: mpsc::Receiver<KernelEvent>,
    task: JoinHandle<()>,
}

impl KernelWatcher {
    /// Open the netlink socket and start watching in the current tokio runtime. The first
    /// events describe the initial dump (links, addresses, selected routes), followed by
    /// [`KernelEvent::Synced`].
    pub fn spawn(config: ImportConfig) -> Result<Self, KernelError> {
        Self::spawn_with_buffer(config, NOTIFY_RCVBUF)
    }

    /// Like [`KernelWatcher::spawn`] with a chosen socket receive buffer (bytes; default
    /// 8 MiB). A smaller buffer overruns sooner under a burst of changes; the watcher then
    /// re-reads the kernel and reports the differences, so nothing is lost but work.
    pub fn spawn_with_buffer(config: ImportConfig, rcvbuf: usize) -> Result<Self, KernelError> {
        Self::start(config, rcvbuf, 0)
    }

    /// Tests only: a watcher whose connection fails `failures` times right after the
    /// initial dump (each time it reports [`KernelEvent::Lost`] and reconnects).
    #[cfg(test)]
    pub(crate) fn spawn_failing(config: ImportConfig, failures: u32) -> Result<Self, KernelError> {
        Self::start(config, NOTIFY_RCVBUF, failures)
    }

    fn start(config: ImportConfig, rcvbuf: usize, failures: u32) -> Result<Self, KernelError> {
        let own = config.own_protocol.unwrap_or(crate::config::RTPROT_BIRD);
        let (conn_task, handle, messages) = connect(own, rcvbuf)?;
        let (tx, rx) = mpsc::channel(EVENT_QUEUE);
        let task = tokio::spawn(async move {
            let mut w = Worker {
                cfg: config,
                handle,
                state: State::default(),
                tx,
                #[cfg(test)]
                fail_after_sync: failures,
            };
            #[cfg(not(test))]
            let _ = failures;
            w.watch(conn_task, messages, own, rcvbuf).await;
        });
        Ok(KernelWatcher { events: rx, task })
    }

    /// The next event; `None` only when the runtime shuts down (connection failures are
    /// reported as [`KernelEvent::Lost`] and repaired).
    pub async fn next(&mut self) -> Option<KernelEvent> {
        self.events.recv().await
    }
}

impl Drop for KernelWatcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Opens the multicast connection (subscribed before any dump, see the module docs).
fn connect(own: u8, rcvbuf: usize) -> Result<(JoinHandle<()>, Handle, Notifications), KernelError> {
    let groups = [
        MulticastGroup::Link,
        MulticastGroup::Ipv4Ifaddr,
        MulticastGroup::Ipv6Ifaddr,
        MulticastGroup::Ipv4Route,
        MulticastGroup::Ipv6Route,
    ];
    let (mut conn, handle, messages) = rtnetlink::new_multicast_connection(&groups)?;
    crate::nlsock::set_rcvbuf(conn.socket_mut().socket_mut(), rcvbuf);
    if let Err(e) = crate::nlsock::drop_own_route_notifications(conn.socket_mut().socket_mut(), own)
    {
        tracing::warn!(error = %e, "could not filter our own route notifications; parsing them instead");
    }
    Ok((tokio::spawn(conn), handle, messages))
}

/// First wait before reconnecting after a failure; doubled up to [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
/// Longest wait between reconnection attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// A connection that lasted this long was healthy: the next failure waits the first delay.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

struct Worker {
    cfg: ImportConfig,
    handle: Handle,
    state: State,
    tx: mpsc::Sender<KernelEvent>,
    /// Tests only: connection failures still to inject after the initial dump.
    #[cfg(test)]
    fail_after_sync: u32,
}

/// The receiver went away: stop quietly.
struct Closed;

impl From<Closed> for KernelError {
    fn from(_: Closed) -> Self {
        KernelError::Closed
    }
}

type Notifications = futures_channel::mpsc::UnboundedReceiver<(
    NetlinkMessage<RouteNetlinkMessage>,
    netlink_sys::SocketAddr,
)>;

impl Worker {
    async fn emit(&self, ev: KernelEvent) -> Result<(), Closed> {
        self.tx.send(ev).await.map_err(|_| Closed)
    }

    /// Runs the connection; when it fails (or closes), reports [`KernelEvent::Lost`],
    /// reconnects with backoff and starts over: the re-read reports the differences against
    /// what was reported before. Ends only when the receiver is gone.
    async fn watch(
        &mut self,
        mut conn_task: JoinHandle<()>,
        mut messages: Notifications,
        own: u8,
        rcvbuf: usize,
    ) {
        let mut wait = RECONNECT_FIRST;
        loop {
            let started = Instant::now();
            let lost = match self.run(messages).await {
                Err(KernelError::Closed) => break,
                Ok(()) => "netlink connection closed".to_string(),
                Err(e) => e.to_string(),
            };
            conn_task.abort();
            if started.elapsed() >= HEALTHY_AFTER {
                wait = RECONNECT_FIRST;
            }
            tracing::error!(error = %lost, "kernel watcher lost its connection; reconnecting");
            if self.emit(KernelEvent::Lost(lost)).await.is_err() {
                break;
            }
            loop {
                tokio::time::sleep(wait).await;
                wait = (wait * 2).min(RECONNECT_MAX);
                match connect(own, rcvbuf) {
                    Ok((c, h, m)) => {
                        conn_task = c;
                        self.handle = h;
                        messages = m;
                        break;
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "kernel watcher cannot reconnect; retrying")
                    }
                }
            }
        }
        conn_task.abort();
    }

    async fn run(&mut self, mut messages: Notifications) -> Result<(), KernelError> {
        self.resync(true).await?;
        #[cfg(test)]
        if self.fail_after_sync > 0 {
            self.fail_after_sync -= 1;
            return Err(KernelError::Io(std::io::Error::other(
                "injected connection failure",
            )));
        }
        let mut routes_dirty = false;
        loop {
            let msg = if routes_dirty {
                // Drain what is already queued before paying for a route re-dump.
                match messages.try_recv() {
                    Ok(m) => Some(m),
                    Err(futures_channel::mpsc::TryRecvError::Closed) => None,
                    Err(futures_channel::mpsc::TryRecvError::Empty) => {
                        routes_dirty = false;
                        self.resync(false).await?;
                        continue;
                    }
                }
            } else {
                messages.next().await
            };
            let Some((msg, _)) = msg else {
                return Ok(()); // connection closed
            };
            match msg.payload {
                NetlinkPayload::Overrun(_) => {
                    tracing::warn!("netlink notification overrun, re-reading kernel state");
                    self.resync(true).await?;
                    routes_dirty = false;
                }
                NetlinkPayload::InnerMessage(inner) => {
                    routes_dirty |= self.apply(inner).await?;
                }
                _ => {}
            }
        }
    }

    /// Apply one notification. Returns true when routes must be re-read (a link went down).
    async fn apply(&mut self, msg: RouteNetlinkMessage) -> Result<bool, Closed> {
        match msg {
            RouteNetlinkMessage::NewLink(m) => {
                let Some(link) = link_from_msg(&m) else {
                    return Ok(false);
                };
                let old = self.state.links.insert(link.index, link.clone());
                let was_up = old.as_ref().map(|l| l.up);
                match (was_up, link.up) {
                    (Some(true), true) | (Some(false), false) => {
                        // Same state (maybe a rename): nothing to report unless renamed.
                        if old.is_some_and(|o| o.name != link.name) {
                            self.emit(if link.up {
                                KernelEvent::LinkUp(link)
                            } else {
                                KernelEvent::LinkDown(link)
                            })
                            .await?;
                        }
                        Ok(false)
                    }
                    (_, true) => {
                        self.emit(KernelEvent::LinkUp(link)).await?;
                        Ok(false)
                    }
                    (_, false) => {
                        self.emit(KernelEvent::LinkDown(link)).await?;
                        Ok(was_up == Some(true))
                    }
                }
            }
            RouteNetlinkMessage::DelLink(m) => {
                let index = m.header.index;
                if let Some(link) = self.state.links.remove(&index) {
                    self.emit(KernelEvent::LinkRemoved(link)).await?;
                    return Ok(true);
                }
                Ok(false)
            }
            RouteNetlinkMessage::NewAddress(m) => {
                if let Some(a) = address_from_msg(&m, &self.state.links) {
                    let k = (a.ifindex, a.address);
                    if self.state.addresses.get(&k) != Some(&a) {
                        self.state.addresses.insert(k, a.clone());
                        self.emit(KernelEvent::AddressAdded(a)).await?;
                    }
                }
                Ok(false)
            }
            RouteNetlinkMessage::DelAddress(m) => {
                if let Some(a) = address_from_msg(&m, &self.state.links) {
                    if let Some(old) = self.state.addresses.remove(&(a.ifindex, a.address)) {
                        self.emit(KernelEvent::AddressRemoved(old)).await?;
                    }
                }
                Ok(false)
            }
            RouteNetlinkMessage::NewRoute(m) => {
                let Some(r) = route_from_msg(&m, &self.state.links) else {
                    return Ok(false);
                };
                let k = key_of(&r);
                if self.cfg.selects(&r) {
                    let seen = Seen::of(&r);
                    if self.state.routes.insert(k, seen) != Some(seen) {
                        self.emit(KernelEvent::RouteAdded(r)).await?;
                    }
                } else if let Some(old) = self.state.routes.remove(&k) {
                    // Replaced by a route we do not select (e.g. another protocol took the key).
                    self.emit(KernelEvent::RouteRemoved(Seen::removed(k, old)))
                        .await?;
                }
                Ok(false)
            }
            RouteNetlinkMessage::DelRoute(m) => {
                let Some(r) = route_from_msg(&m, &self.state.links) else {
                    return Ok(false);
                };
                if r.protocol == self.cfg.own_protocol.unwrap_or(crate::config::RTPROT_BIRD) {
                    // One of our installed routes went away (maybe deleted by someone else):
                    // the installer decides whether that was its own doing.
                    self.emit(KernelEvent::OwnRouteRemoved(r)).await?;
                    return Ok(false);
                }
                let k = key_of(&r);
                // Only the owner of the entry may remove it: a delete of another protocol's
                // route at the same key (after an append) leaves ours in place.
                if self
                    .state
                    .routes
                    .get(&k)
                    .is_some_and(|o| o.protocol == r.protocol)
                {
                    self.state.routes.remove(&k);
                    self.emit(KernelEvent::RouteRemoved(r)).await?;
                }
                Ok(false)
            }
            _ => Ok(false),
        }
    }

    async fn dump_links(&self) -> Result<LinkTable, KernelError> {
        let mut links = LinkTable::new();
        let mut s = self.handle.link().get().execute();
        while let Some(m) = s.try_next().await.map_err(KernelError::from)? {
            if let Some(l) = link_from_msg(&m) {
                links.insert(l.index, l);
            }
        }
        Ok(links)
    }

    async fn dump_addresses(
        &self,
        links: &LinkTable,
    ) -> Result<HashMap<(u32, IpNet), Address>, KernelError> {
        let mut out = HashMap::new();
        let mut s = self.handle.address().get().execute();
        while let Some(m) = s.try_next().await.map_err(KernelError::from)? {
            if let Some(a) = address_from_msg(&m, links) {
                out.insert((a.ifindex, a.address), a);
            }
        }
        Ok(out)
    }

    /// Re-read the kernel (everything, or only routes) and report the differences.
    async fn resync(&mut self, everything: bool) -> Result<(), KernelError> {
        if everything {
            let links = self.dump_links().await?;
            for (idx, l) in &links {
                match self.state.links.get(idx) {
                    Some(o) if o == l => {}
                    _ => {
                        let ev = if l.up {
                            KernelEvent::LinkUp(l.clone())
                        } else {
                            KernelEvent::LinkDown(l.clone())
                        };
                        self.emit(ev).await?;
                    }
                }
            }
            let gone: Vec<Link> = self
                .state
                .links
                .iter()
                .filter(|(i, _)| !links.contains_key(i))
                .map(|(_, l)| l.clone())
                .collect();
            for l in gone {
                self.emit(KernelEvent::LinkRemoved(l)).await?;
            }
            self.state.links = links;

            let addrs = self.dump_addresses(&self.state.links).await?;
            let gone: Vec<Address> = self
                .state
                .addresses
                .iter()
                .filter(|(k, _)| !addrs.contains_key(k))
                .map(|(_, a)| a.clone())
                .collect();
            for a in gone {
                self.emit(KernelEvent::AddressRemoved(a)).await?;
            }
            for (k, a) in &addrs {
                if self.state.addresses.get(k) != Some(a) {
                    self.emit(KernelEvent::AddressAdded(a.clone())).await?;
                }
            }
            self.state.addresses = addrs;
        }
        // The dump is read to its end first, keeping only the routes that are new or
        // changed (whole) and a fingerprint of every route: rtnetlink buffers a dump without
        // bound when it is read slowly, so reporting each route as it arrives (and waiting
        // for the daemon to take it) would hold the unread rest as parsed messages.
        let mut routes = HashMap::with_capacity(self.state.routes.len());
        let mut changed = Vec::new();
        let mut reqs = Vec::new();
        if self.cfg.ipv4 {
            reqs.push(RouteMessageBuilder::<Ipv4Addr>::new().build());
        }
        if self.cfg.ipv6 {
            reqs.push(RouteMessageBuilder::<Ipv6Addr>::new().build());
        }
        for req in reqs {
            let mut dump = self.handle.route().get(req).execute();
            while let Some(m) = dump.try_next().await.map_err(KernelError::from)? {
                let Some(r) = route_from_msg(&m, &self.state.links) else {
                    continue;
                };
                if !self.cfg.selects(&r) {
                    continue;
                }
                let k = key_of(&r);
                let seen = Seen::of(&r);
                routes.insert(k, seen);
                if self.state.routes.get(&k) != Some(&seen) {
                    changed.push(r);
                }
            }
        }
        for r in changed {
            self.emit(KernelEvent::RouteAdded(r)).await?;
        }
        let gone: Vec<(RouteKey, Seen)> = self
            .state
            .routes
            .iter()
            .filter(|(k, _)| !routes.contains_key(k))
            .map(|(k, s)| (*k, *s))
            .collect();
        self.state.routes = routes;
        for (k, s) in gone {
            self.emit(KernelEvent::RouteRemoved(Seen::removed(k, s)))
                .await?;
        }
        self.emit(KernelEvent::Synced).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The next event, failing the test after 30 s.
    async fn next(w: &mut KernelWatcher) -> KernelEvent {
        tokio::time::timeout(Duration::from_secs(30), w.next())
            .await
            .expect("an event in time")
            .expect("the watcher keeps running")
    }

    async fn until_synced(w: &mut KernelWatcher) -> Vec<KernelEvent> {
        let mut seen = Vec::new();
        loop {
            match next(w).await {
                KernelEvent::Synced => return seen,
                e => seen.push(e),
            }
        }
    }

    /// Reads the kernel of the test's own namespace (netlink reads need no privilege).
    #[tokio::test]
    async fn a_lost_connection_is_reported_and_reestablished() {
        let mut w = KernelWatcher::spawn_failing(ImportConfig::default(), 2).expect("watcher");
        let first = until_synced(&mut w).await;
        assert!(
            first.iter().any(|e| matches!(e, KernelEvent::LinkUp(_))),
            "the initial dump reports the links: {first:?}"
        );
        for _ in 0..2 {
            match next(&mut w).await {
                KernelEvent::Lost(reason) => assert!(reason.contains("injected"), "{reason}"),
                e => panic!("expected the loss to be reported, got {e:?}"),
            }
            // Reconnected and re-read: only differences are reported (none here, unless
            // the test machine changed its links meanwhile), then Synced again.
            let again = until_synced(&mut w).await;
            assert!(again.len() <= first.len(), "{again:?}");
        }
    }
}
