//! Kernel → RIB: an initial dump, then rtnetlink multicast notifications.
//!
//! The watcher subscribes to `RTNLGRP_LINK`, `RTNLGRP_IPV4_IFADDR`, `RTNLGRP_IPV6_IFADDR`,
//! `RTNLGRP_IPV4_ROUTE` and `RTNLGRP_IPV6_ROUTE` *before* dumping, so no change can fall between
//! the dump and the first notification; notifications queued during the dump are applied
//! afterwards and are idempotent against the state the dump produced. There is no periodic
//! scan (BIRD's 2 s kernel scan is a known CPU cost on Calico nodes): the kernel tells us.
//!
//! What the notifications and dumps mean (selection, ownership of a route's key, which
//! changes force a re-read) is decided without I/O in state.rs; this file moves netlink
//! messages into it and its events out. Two cases force a re-dump, reported as differences
//! against the previous state:
//! - the socket overran (`ENOBUFS`, netlink-proto forwards it as `NLMSG_OVERRUN`): messages
//!   were lost, so links, addresses and routes are all re-read;
//! - an interface went down or disappeared: routes are re-read once the queued notifications
//!   are drained.
//!
//! When the connection fails (a socket error, a dump that cannot complete), the watcher
//! reports [`KernelEvent::Lost`], reconnects with backoff (reconnect.rs) and re-reads
//! everything, reporting the differences against what it reported before, then
//! [`KernelEvent::Synced`]: a consumer never has to restart it.

use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::Instant;

use futures_util::{StreamExt, TryStreamExt};
use netlink_packet_core::{NetlinkMessage, NetlinkPayload};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::AsyncSocket;
use rtnetlink::{Handle, MulticastGroup, RouteMessageBuilder};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::ImportConfig;
use crate::convert::{address_from_msg, link_from_msg, LinkTable};
use crate::types::{Address, KernelEvent};
use crate::KernelError;

mod reconnect;
mod state;

use reconnect::Reconnect;
use state::{ImportState, Resync};

/// Socket receive buffer requested for the notification socket (bytes). Large enough to absorb
/// a burst of Felix programming a node's routes; an overrun still resynchronises correctly.
const NOTIFY_RCVBUF: usize = 8 << 20;
/// Capacity of the event channel towards the daemon.
const EVENT_QUEUE: usize = 4096;

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
                handle,
                state: ImportState::new(config),
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

struct Worker {
    handle: Handle,
    state: ImportState,
    tx: mpsc::Sender<KernelEvent>,
    /// Tests only: connection failures still to inject after the initial dump.
    #[cfg(test)]
    fail_after_sync: u32,
}

type Notifications = futures_channel::mpsc::UnboundedReceiver<(
    NetlinkMessage<RouteNetlinkMessage>,
    netlink_sys::SocketAddr,
)>;

impl Worker {
    /// Send the events the state has queued; `Closed` when the receiver went away.
    async fn flush(&mut self) -> Result<(), KernelError> {
        while let Some(ev) = self.state.poll_event() {
            self.tx.send(ev).await.map_err(|_| KernelError::Closed)?;
        }
        Ok(())
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
        let mut backoff = Reconnect::default();
        loop {
            let started = Instant::now();
            let lost = match self.run(messages).await {
                Err(KernelError::Closed) => break,
                Ok(()) => "netlink connection closed".to_string(),
                Err(e) => e.to_string(),
            };
            conn_task.abort();
            backoff.connection_ended(started.elapsed());
            tracing::error!(error = %lost, "kernel watcher lost its connection; reconnecting");
            self.state.handle_lost(lost);
            if self.flush().await.is_err() {
                break;
            }
            loop {
                tokio::time::sleep(backoff.next_wait()).await;
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
        loop {
            self.flush().await?;
            match self.state.poll_resync() {
                Some(Resync::Everything) => {
                    self.read(true).await?;
                    #[cfg(test)]
                    if self.fail_after_sync > 0 {
                        self.flush().await?;
                        self.fail_after_sync -= 1;
                        return Err(KernelError::Io(std::io::Error::other(
                            "injected connection failure",
                        )));
                    }
                    continue;
                }
                // Drain what is already queued before paying for a route re-dump.
                Some(Resync::Routes) => match messages.try_recv() {
                    Ok((msg, _)) => {
                        self.handle(msg);
                        continue;
                    }
                    Err(futures_channel::mpsc::TryRecvError::Closed) => return Ok(()),
                    Err(futures_channel::mpsc::TryRecvError::Empty) => {
                        self.read(false).await?;
                        continue;
                    }
                },
                None => {}
            }
            let Some((msg, _)) = messages.next().await else {
                return Ok(()); // connection closed
            };
            self.handle(msg);
        }
    }

    fn handle(&mut self, msg: NetlinkMessage<RouteNetlinkMessage>) {
        match msg.payload {
            NetlinkPayload::Overrun(_) => {
                tracing::warn!("netlink notification overrun, re-reading kernel state");
                self.state.handle_overrun();
            }
            NetlinkPayload::InnerMessage(inner) => self.state.handle_notification(&inner),
            _ => {}
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

    async fn dump_addresses(&self) -> Result<Vec<Address>, KernelError> {
        let mut out = Vec::new();
        let mut s = self.handle.address().get().execute();
        while let Some(m) = s.try_next().await.map_err(KernelError::from)? {
            out.extend(address_from_msg(&m, self.state.links()));
        }
        Ok(out)
    }

    /// Re-read the kernel (everything, or only routes); the state reports the differences.
    async fn read(&mut self, everything: bool) -> Result<(), KernelError> {
        if everything {
            let links = self.dump_links().await?;
            self.state.handle_link_dump(links);
            self.flush().await?;
            let addrs = self.dump_addresses().await?;
            self.state.handle_address_dump(addrs);
            self.flush().await?;
        }
        let mut dump = self.state.start_route_dump();
        let mut reqs = Vec::new();
        if self.state.config().ipv4 {
            reqs.push(RouteMessageBuilder::<Ipv4Addr>::new().build());
        }
        if self.state.config().ipv6 {
            reqs.push(RouteMessageBuilder::<Ipv6Addr>::new().build());
        }
        for req in reqs {
            let mut routes = self.handle.route().get(req).execute();
            while let Some(m) = routes.try_next().await.map_err(KernelError::from)? {
                self.state.handle_dumped_route(&mut dump, &m);
            }
        }
        self.state.finish_route_dump(dump);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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
