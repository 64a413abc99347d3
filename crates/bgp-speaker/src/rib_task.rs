//! The RIB task: a select loop around the node layer's [`RibDriver`], the one owner of the
//! [`bgp_rib::Rib`].
//!
//! Peer tasks feed it session events over one channel bounded by weight
//! ([`crate::rib_input`]); the speaker sends it configuration changes and queries over
//! another ([`RibCtl`]); the kernel sends it its routes and next-hop view over a third
//! ([`KernelInput`]); peers return output credit over a fourth. Everything the RIB side
//! decides (End-of-RIB and recovery, max-prefix, output slices, FIB batches, route-change
//! events) is the driver's (`bgp-node`, the same code the simulator runs); this task moves
//! messages and answers queries.
//!
//! It never waits on a peer or on the FIB: output slices go to a peer only as far as its
//! credit allows (a few slices; the rest stays queued in the RIB, merged per prefix), and
//! FIB batches go out only when the FIB channel has room (the driver keeps the rest,
//! merged per prefix, and the task wakes when room appears). Nothing is polled on a
//! timer.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use crate::monitor::tap::RibFeed;
use bgp_node::message::{INPUT_BATCH, INPUT_PREFIX_BUDGET};
use bgp_node::rib::{FibBatch, RecoveryStatus, RibDriverConfig};
use bgp_node::{PeerId, RibDriver, RibEvent};
use bgp_proto::{Afi, Family};
use bgp_rib::policy::{Policy, RouteSource};
use bgp_rib::{FibChange, LocalRoute, RibConfig, SessionInfo};
use ipnet::IpNet;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::{Config, Originate, PeerConfig};
use crate::fib::{KernelInput, LocalChange};
use crate::nexthop::{NextHopTable, Resolver};
use crate::peer::{peer_settings, PeerCmd, PeerLink};
use crate::rib_input::{Delivered, RibInputReceiver};
use crate::routes::{FamilyFilter, Route, RouteCursor};

pub use bgp_node::chain_policy;

pub(crate) mod monitor;
pub(crate) mod pages;

/// Prefix counters of one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PrefixCounts {
    /// Prefixes received (Adj-RIB-In).
    pub received: u64,
    /// Of those, accepted by import policy.
    pub accepted: u64,
    /// Prefixes announced (Adj-RIB-Out).
    pub sent: u64,
}

/// Prefix counters of one peer in one address family (BMP statistics types 9, 10, 17).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct FamilyPrefixCounts {
    pub(crate) family: Family,
    pub(crate) counts: PrefixCounts,
}

/// Prefix counters of one peer, in all and per negotiated unicast family (BMP statistics).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct PeerPrefixCounts {
    pub(crate) total: PrefixCounts,
    pub(crate) families: Vec<FamilyPrefixCounts>,
}

/// A peer's counters over both families.
fn total_counts(i: &bgp_rib::PeerInfo) -> PrefixCounts {
    PrefixCounts {
        received: (i.received_v4 + i.received_v6) as u64,
        accepted: (i.accepted_v4 + i.accepted_v6) as u64,
        sent: (i.advertised_v4 + i.advertised_v6) as u64,
    }
}

/// A peer's counters per negotiated unicast family.
fn family_counts(i: &bgp_rib::PeerInfo) -> Vec<FamilyPrefixCounts> {
    let of = |family: Family| {
        let (received, accepted, sent) = if family.afi == Afi::IPV6 {
            (i.received_v6, i.accepted_v6, i.advertised_v6)
        } else {
            (i.received_v4, i.accepted_v4, i.advertised_v4)
        };
        FamilyPrefixCounts {
            family,
            counts: PrefixCounts {
                received: received as u64,
                accepted: accepted as u64,
                sent: sent as u64,
            },
        }
    };
    i.families
        .iter()
        .filter(|f| f.is_unicast_ip())
        .map(|f| of(*f))
        .collect()
}

/// A query the RIB answers.
#[derive(Debug)]
pub(crate) enum Query {
    Counts(oneshot::Sender<HashMap<String, PrefixCounts>>),
    /// [`Query::Counts`] and the same per negotiated family, for BMP.
    FamilyPrefixCounts(oneshot::Sender<HashMap<String, PeerPrefixCounts>>),
    /// One page of `show routes` (rib_task/pages.rs).
    RoutesPage {
        filter: crate::routes::RouteQuery,
        after: Option<RouteCursor>,
        limit: usize,
        reply: oneshot::Sender<Result<pages::RoutesPage, String>>,
    },
    Lookup(IpAddr, oneshot::Sender<Vec<Route>>),
    PrefixCount(oneshot::Sender<usize>),
    /// Prefixes and paths per address family (walks the tables).
    FamilyCounts(oneshot::Sender<Vec<FamilyCount>>),
    Best(oneshot::Sender<Vec<BestRoute>>),
    /// Graceful-restart recovery: which peers still have to send End-of-RIB.
    Recovery(oneshot::Sender<RecoveryStatus>),
    /// One peer's routes of one of its RIBs (rib_task/monitor.rs), for BMP.
    AdjRib(
        String,
        crate::monitor::rib::AdjRib,
        oneshot::Sender<Option<Vec<(bgp_proto::Nlri, bgp_rib::Attrs)>>>,
    ),
    /// A page of the Loc-RIB with attribute sets (rib_task/monitor.rs), for MRT.
    DumpPage {
        after: Option<IpNet>,
        limit: usize,
        reply: oneshot::Sender<monitor::DumpPage>,
    },
}

/// The size of the RIB in one address family.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FamilyCount {
    /// The family.
    pub family: Family,
    /// Prefixes with at least one path.
    pub prefixes: usize,
    /// Paths, every peer's and the local ones.
    pub paths: usize,
}

/// Control messages for the RIB task.
#[derive(Debug)]
pub(crate) enum RibCtl {
    /// A new peer, reachable through `link`.
    AddPeer {
        id: PeerId,
        config: Box<PeerConfig>,
        link: PeerLink,
    },
    RemovePeer(PeerId),
    /// Peer settings that are applied without a session reset.
    UpdatePeer(PeerId, Box<PeerConfig>),
    /// New set of named policies; peers using changed ones are re-evaluated.
    SetPolicies(BTreeMap<String, Policy>),
    Originate(Originate),
    Withdraw(IpNet),
    /// The configured peers are added: graceful-restart recovery runs until every peer
    /// sent End-of-RIB, or until `deadline`. With `defer_selection` we restarted (RFC
    /// 4724 4.1) and hold back advertisements until then (the Selection_Deferral_Timer).
    /// From `absent_after` on, peers whose session has not come up are not waited for.
    StartRecovery {
        deadline: Instant,
        defer_selection: bool,
        absent_after: Option<Instant>,
    },
    /// Our AS and router id changed (only once every peer is removed).
    SetIdentity {
        asn: u32,
        router_id: Ipv4Addr,
        done: oneshot::Sender<Result<(), bgp_rib::RibError>>,
    },
    Query(Query),
    /// Tests only: block the RIB task for this long, as a CPU-bound stall would.
    #[cfg(test)]
    Stall(Duration),
}

/// A best-path change, as published to subscribers (see [`crate::Speaker::subscribe`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteChange {
    /// `prefix` now has this best route (and multipath set).
    Best(BestRoute),
    /// `prefix` has no usable route any more.
    Removed(IpNet),
}

/// A best route with its multipath next hops.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BestRoute {
    /// The prefix.
    pub prefix: IpNet,
    /// Next hops of the multipath set, best first; empty for local routes without a
    /// gateway (originated blackholes).
    pub next_hops: Vec<IpAddr>,
    /// LOCAL_PREF of the best path.
    pub local_pref: u32,
    /// Where the best path came from.
    pub source: RouteSource,
    /// Advertise-only: not to be installed in a forwarding table.
    pub no_install: bool,
}

impl From<bgp_rib::FibRoute> for BestRoute {
    fn from(r: bgp_rib::FibRoute) -> Self {
        BestRoute {
            prefix: r.prefix,
            next_hops: r.next_hops.to_vec(),
            local_pref: r.local_pref,
            source: r.source,
            no_install: r.no_install,
        }
    }
}

/// Where best-path changes go.
#[derive(Debug)]
pub(crate) enum FibSink {
    /// The kernel FIB component (crate::fib), told the end of recovery too.
    Kernel(mpsc::Sender<FibBatch>),
    /// An embedder's channel (`SpeakerOptions::fib`).
    Embedder(mpsc::Sender<Vec<FibChange>>),
}

impl FibSink {
    /// Waits until the channel has room; false once it is closed.
    async fn room(&self) -> bool {
        match self {
            FibSink::Kernel(tx) => tx.reserve().await.is_ok(),
            FibSink::Embedder(tx) => tx.reserve().await.is_ok(),
        }
    }

    /// Hands `batch` on if there is room; `Err(true)` when the channel is closed.
    fn try_send(&self, batch: FibBatch) -> Result<(), (FibBatch, bool)> {
        match self {
            FibSink::Kernel(tx) => tx.try_send(batch).map_err(|e| match e {
                TrySendError::Full(b) => (b, false),
                TrySendError::Closed(b) => (b, true),
            }),
            FibSink::Embedder(tx) => {
                if batch.changes.is_empty() {
                    return Ok(());
                }
                tx.try_send(batch.changes).map_err(|e| match e {
                    TrySendError::Full(c) => (
                        FibBatch {
                            changes: c,
                            recovery_done: false,
                        },
                        false,
                    ),
                    TrySendError::Closed(c) => (
                        FibBatch {
                            changes: c,
                            recovery_done: false,
                        },
                        true,
                    ),
                })
            }
        }
    }

    fn has_room(&self) -> bool {
        match self {
            FibSink::Kernel(tx) => tx.capacity() > 0,
            FibSink::Embedder(tx) => tx.capacity() > 0,
        }
    }
}

/// The channels the RIB task is started with.
pub(crate) struct RibChannels {
    pub input: RibInputReceiver,
    pub ctl: mpsc::Receiver<RibCtl>,
    pub kernel: mpsc::Receiver<KernelInput>,
    pub credits: mpsc::UnboundedReceiver<(PeerId, u64)>,
    pub routes: broadcast::Sender<RouteChange>,
    pub fib: Option<FibSink>,
    /// The monitoring tap, for the post-policy Adj-RIB-In (rib_task/monitor.rs).
    pub tap: crate::monitor::tap::Tap,
    pub cancel: CancellationToken,
}

pub(crate) struct RibTask {
    driver: RibDriver<PeerLink, Resolver>,
    /// Originated routes as configured (advertise-only ones are not installed).
    originated: BTreeMap<IpNet, Originate>,
    ch: RibChannels,
    /// The FIB channel closed (logged once; changes keep waiting in the driver).
    fib_closed: bool,
}

fn family_of(f: Option<FamilyFilter>) -> Vec<Family> {
    match f {
        Some(FamilyFilter::Ipv4) => vec![Family::IPV4_UNICAST],
        Some(FamilyFilter::Ipv6) => vec![Family::IPV6_UNICAST],
        None => vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
    }
}

fn matches_family(p: &IpNet, f: Option<FamilyFilter>) -> bool {
    match f {
        Some(FamilyFilter::Ipv4) => matches!(p, IpNet::V4(_)),
        Some(FamilyFilter::Ipv6) => matches!(p, IpNet::V6(_)),
        None => true,
    }
}

fn entry(
    prefix: IpNet,
    path_id: Option<u32>,
    peer: Option<String>,
    attrs: &bgp_rib::RouteAttrs,
) -> Route {
    Route::with_attributes(prefix, path_id, peer, &attrs.attrs, attrs.next_hop_addr())
}

fn path_entry(prefix: IpNet, p: &bgp_rib::PathInfo) -> Route {
    let mut e = entry(
        prefix,
        (p.source == RouteSource::Bgp).then_some(p.path_id),
        p.peer_name.clone(),
        &p.attrs,
    );
    e.source = p.source;
    e.best = p.best;
    e.multipath = p.multipath;
    e.stale = p.stale || p.llgr_stale;
    e.not_best = p.lost_at;
    e.interface = p.interface.clone();
    e.since = p.since.and_then(wall_clock);
    e
}

/// The wall-clock time of the monotonic instant `t`, from one reading of both clocks
/// taken once: the same `t` gives the same time in every answer.
fn wall_clock(t: Instant) -> Option<SystemTime> {
    static ANCHOR: std::sync::OnceLock<(Instant, SystemTime)> = std::sync::OnceLock::new();
    let (i, w) = *ANCHOR.get_or_init(|| (Instant::now(), SystemTime::now()));
    match t.checked_duration_since(i) {
        Some(after) => w.checked_add(after),
        None => w.checked_sub(i.saturating_duration_since(t)),
    }
}

impl RibTask {
    pub(crate) fn new(config: &Config, ch: RibChannels, kernel_view: bool) -> RibTask {
        let g = &config.global;
        let mut rc = RibConfig::new(g.asn, g.router_id);
        rc.cluster_id = g.cluster_id;
        rc.max_paths = usize::from(g.max_paths);
        rc.stale_path_time = Duration::from_secs(u64::from(g.graceful_restart.stale_time));
        rc.fib_policy = crate::fib::fib_policy(config);
        let resolver = if kernel_view {
            Resolver::Kernel(NextHopTable::new())
        } else {
            Resolver::All
        };
        let dc = RibDriverConfig {
            fib: ch.fib.is_some(),
            ..RibDriverConfig::default()
        };
        let mut driver = RibDriver::new(rc, resolver, dc);
        driver.set_policies(config.policies.clone());
        RibTask {
            driver,
            originated: BTreeMap::new(),
            ch,
            fib_closed: false,
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            let deadline = self
                .driver
                .poll_timeout()
                .map(tokio::time::Instant::from_std);
            let fib_waits = !self.fib_closed && self.driver.fib_pending();
            let cancel = self.ch.cancel.clone();
            tokio::select! {
                biased;
                _ = cancel.cancelled() => break,
                c = self.ch.ctl.recv() => match c {
                    Some(c) => self.control(c),
                    None => break,
                },
                i = self.ch.input.recv() => match i {
                    Some(i) => self.inputs(i),
                    None => break,
                },
                Some(credit) = self.ch.credits.recv() => {
                    self.driver.handle_output_taken(credit.0, credit.1);
                    while let Ok((peer, session)) = self.ch.credits.try_recv() {
                        self.driver.handle_output_taken(peer, session);
                    }
                }
                Some(k) = self.ch.kernel.recv() => self.kernel(k),
                _ = sleep_opt(deadline) => self.driver.handle_timeout(Instant::now()),
                open = fib_room(self.ch.fib.as_ref()), if fib_waits => {
                    if !open {
                        self.fib_gone();
                    }
                }
            }
            self.execute();
        }
        debug!("RIB task ended");
    }

    /// Does what the driver asks: route changes to subscribers, requests to peers,
    /// output slices to peers with credit, FIB batches while the FIB channel has room.
    fn execute(&mut self) {
        self.publish_accepted();
        self.driver
            .set_route_events(self.ch.routes.receiver_count() > 0);
        while let Some(ev) = self.driver.poll_event() {
            match ev {
                RibEvent::RouteChanges(changes) => {
                    for c in changes {
                        let ev = match c {
                            FibChange::Upsert(r) => RouteChange::Best(r.into()),
                            FibChange::Remove(p) => RouteChange::Removed(p),
                        };
                        // No subscriber left is fine.
                        let _ = self.ch.routes.send(ev);
                    }
                }
                RibEvent::Teardown {
                    peer,
                    notification,
                    restart_after,
                    hard_reset,
                } => {
                    let cmd = PeerCmd::Teardown {
                        notification,
                        restart_after: Some(restart_after),
                        hard_reset,
                    };
                    if self.tell(peer, cmd).is_err() {
                        warn!(%peer, "could not ask the peer task to close the session");
                    }
                }
                RibEvent::RouteRefresh { peer, family } => {
                    let _ = self.tell(peer, PeerCmd::RouteRefresh(family));
                }
            }
        }
        let sent_wanted = self.ch.tap.wanted(RibFeed::Sent);
        while let Some((id, slice)) = self.driver.poll_output() {
            if sent_wanted {
                self.publish_sent(id, &slice);
            }
            if let Some(p) = self.driver.peer(id) {
                // A peer task gone means the peer is being removed.
                let _ = p.link().out.send(slice);
            }
        }
        self.offer_fib();
    }

    fn tell(&self, peer: PeerId, cmd: PeerCmd) -> Result<(), ()> {
        let p = self.driver.peer(peer).ok_or(())?;
        p.link().cmd.try_send(cmd).map_err(|_| ())
    }

    /// Hands the FIB what waits for it, as long as its channel has room; the rest waits
    /// in the driver (merged per prefix) until room appears.
    fn offer_fib(&mut self) {
        if self.fib_closed {
            return;
        }
        let Some(sink) = &self.ch.fib else {
            return;
        };
        while self.driver.fib_pending() && sink.has_room() {
            let Some(batch) = self.driver.poll_fib() else {
                return;
            };
            if let Err((_, closed)) = sink.try_send(batch) {
                // Room was just there and only this task sends: only a closed channel
                // refuses.
                if closed {
                    self.fib_gone();
                }
                return;
            }
        }
    }

    fn fib_gone(&mut self) {
        if !self.fib_closed {
            warn!("kernel FIB channel closed: best-path changes wait for it");
            self.fib_closed = true;
        }
    }

    /// A batch of inputs: the first, and what else is already waiting, bounded, before
    /// the decision runs (at the next poll).
    fn inputs(&mut self, first: Delivered) {
        let now = Instant::now();
        let mut prefixes = first.input.prefixes();
        self.input(now, first);
        for _ in 1..INPUT_BATCH {
            if prefixes >= INPUT_PREFIX_BUDGET {
                break;
            }
            match self.ch.input.try_recv() {
                Some(d) => {
                    prefixes += d.input.prefixes();
                    self.input(now, d);
                }
                None => break,
            }
        }
    }

    /// One input; its budget is released once it is applied (rib_input.rs).
    fn input(&mut self, now: Instant, d: Delivered) {
        let peer = d.peer;
        let input = d.input;
        if let Err(input) = self.driver.handle_input(now, peer, input) {
            // A new peer's registration travels on the control channel and may not be
            // applied yet: apply what waits there and try again.
            while let Ok(c) = self.ch.ctl.try_recv() {
                self.control(c);
            }
            if self.driver.handle_input(now, peer, input).is_err() {
                debug!(%peer, "input from a peer no longer configured");
            }
        }
    }

    fn kernel(&mut self, k: KernelInput) {
        match k {
            KernelInput::Local(changes) => {
                for c in changes {
                    match c {
                        LocalChange::Originate(r) => {
                            let prefix = r.prefix;
                            if let Err(e) = self.driver.originate(*r, Instant::now()) {
                                warn!(%prefix, error = %e, "cannot originate kernel route");
                            }
                        }
                        LocalChange::Withdraw(p) => {
                            self.driver.withdraw_local(p, RouteSource::Kernel)
                        }
                    }
                }
            }
            // The kernel's view changed: when a next hop in use now resolves differently,
            // every prefix goes through the decision again (RFC 4271 9.1.2).
            KernelInput::NextHops(events) => self.driver.update_resolver(|r| {
                let changed = r.apply(&events);
                if changed {
                    debug!("next-hop resolution changed: re-running the decision");
                }
                changed
            }),
        }
    }

    fn control(&mut self, c: RibCtl) {
        let now = Instant::now();
        match c {
            RibCtl::AddPeer { id, config, link } => {
                if let Err(e) = self.driver.add_peer(id, peer_settings(&config), link) {
                    warn!(peer = %config.name, error = %e, "cannot add peer to the RIB");
                }
            }
            RibCtl::RemovePeer(id) => {
                self.driver.remove_peer(id);
            }
            RibCtl::UpdatePeer(id, config) => {
                self.driver.update_peer(now, id, peer_settings(&config))
            }
            RibCtl::SetPolicies(p) => self.driver.set_policies(p),
            RibCtl::Originate(o) => {
                let mut r = LocalRoute::new(o.prefix, RouteSource::Static);
                r.no_install = o.no_install;
                r.next_hop = o.next_hop;
                r.attrs.communities = o.communities.clone();
                r.attrs.large_communities = o.large_communities.clone();
                r.attrs.local_pref = o.local_pref;
                r.attrs.med = o.med;
                match self.driver.originate(r, now) {
                    Ok(()) => {
                        self.originated.insert(o.prefix, o);
                    }
                    Err(e) => warn!(prefix = %o.prefix, error = %e, "cannot originate"),
                }
            }
            RibCtl::Withdraw(p) => {
                self.originated.remove(&p);
                self.driver.withdraw_local(p, RouteSource::Static);
            }
            RibCtl::StartRecovery {
                deadline,
                defer_selection,
                absent_after,
            } => {
                self.driver.start_recovery(deadline, defer_selection, now);
                if let Some(at) = absent_after {
                    self.driver.bound_absent_peers(at, now);
                }
            }
            RibCtl::SetIdentity {
                asn,
                router_id,
                done,
            } => {
                let _ = done.send(self.driver.set_identity(asn, router_id));
            }
            RibCtl::Query(q) => self.query(q),
            #[cfg(test)]
            RibCtl::Stall(d) => std::thread::sleep(d),
        }
    }

    fn query(&mut self, q: Query) {
        let rib = self.driver.rib();
        match q {
            Query::Counts(reply) => {
                // From the RIB's counters: constant time per peer, whatever its tables
                // hold (`show peers` and the BIRD socket's `show protocols` ask often).
                let m = self
                    .driver
                    .peers()
                    .map(|p| {
                        let c = rib.peer_info(p.rib_id()).map(|i| total_counts(&i));
                        (p.name().to_string(), c.unwrap_or_default())
                    })
                    .collect();
                let _ = reply.send(m);
            }
            Query::FamilyPrefixCounts(reply) => {
                let m = self
                    .driver
                    .peers()
                    .map(|p| {
                        let c = rib.peer_info(p.rib_id()).map(|i| PeerPrefixCounts {
                            total: total_counts(&i),
                            families: family_counts(&i),
                        });
                        (p.name().to_string(), c.unwrap_or_default())
                    })
                    .collect();
                let _ = reply.send(m);
            }
            Query::Recovery(reply) => {
                let _ = reply.send(self.driver.recovery_status());
            }
            Query::AdjRib(name, rib, reply) => {
                let _ = reply.send(self.adj_rib(&name, rib));
            }
            Query::DumpPage {
                after,
                limit,
                reply,
            } => {
                let _ = reply.send(self.dump_page(after, limit));
            }
            Query::PrefixCount(reply) => {
                let (a, b) = rib.prefix_count();
                let _ = reply.send(a + b);
            }
            Query::FamilyCounts(reply) => {
                let (p4, p6) = rib.prefix_count();
                let (n4, n6) = rib.path_count();
                let _ = reply.send(vec![
                    FamilyCount {
                        family: Family::IPV4_UNICAST,
                        prefixes: p4,
                        paths: n4,
                    },
                    FamilyCount {
                        family: Family::IPV6_UNICAST,
                        prefixes: p6,
                        paths: n6,
                    },
                ]);
            }
            Query::Best(reply) => {
                let v = rib
                    .loc_rib()
                    .into_iter()
                    .map(|(prefix, p)| BestRoute {
                        prefix,
                        next_hops: p.attrs.next_hop_addr().into_iter().collect(),
                        local_pref: p.attrs.attrs.local_pref.unwrap_or(100),
                        source: p.source,
                        no_install: self
                            .originated
                            .get(&prefix)
                            .is_some_and(|o| o.no_install && p.source == RouteSource::Static),
                    })
                    .collect();
                let _ = reply.send(v);
            }
            Query::Lookup(addr, reply) => {
                let v = rib
                    .lookup(addr, self.driver.resolver())
                    .map(|d| {
                        d.paths
                            .iter()
                            .map(|p| {
                                let e = path_entry(d.prefix, p);
                                with_path_id(e, self.session_of(p), d.prefix, true)
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                let _ = reply.send(v);
            }
            Query::RoutesPage {
                filter,
                after,
                limit,
                reply,
            } => {
                let _ = reply.send(self.routes_page(&filter, after.as_ref(), limit));
            }
        }
    }

    /// The session of the peer a path came from, while it is established.
    fn session_of(&self, p: &bgp_rib::PathInfo) -> Option<&SessionInfo> {
        self.driver.peer_by_rib(p.peer?).and_then(|e| e.session())
    }
}

/// Keeps an entry's path identifier only where the session to its peer carries them
/// (RFC 7911: ADD-PATH receive for paths from the peer, send for paths to it); elsewhere
/// the RIB's 0 is no identifier at all.
fn with_path_id(
    mut e: Route,
    session: Option<&SessionInfo>,
    prefix: IpNet,
    received: bool,
) -> Route {
    let family = match prefix {
        IpNet::V4(_) => Family::IPV4_UNICAST,
        IpNet::V6(_) => Family::IPV6_UNICAST,
    };
    let negotiated = session.is_some_and(|s| {
        let families = if received {
            &s.codec.add_path_receive
        } else {
            &s.codec.add_path_send
        };
        families.contains(&family)
    });
    if !negotiated {
        e.path_id = None;
    }
    e
}

/// Waits until the FIB channel has room; false once it is closed (never returns without
/// a channel).
async fn fib_room(sink: Option<&FibSink>) -> bool {
    match sink {
        Some(s) => s.room().await,
        None => std::future::pending().await,
    }
}

async fn sleep_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
