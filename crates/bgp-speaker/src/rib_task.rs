//! The RIB task: the one owner of the [`bgp_rib::Rib`].
//!
//! Peer tasks feed it session events over one bounded channel ([`RibInput`]); the speaker
//! sends it configuration changes and queries over another ([`RibCtl`]). After each batch
//! of input it runs the decision process once, hands encoded UPDATEs to peer tasks and
//! publishes best-path changes.
//!
//! It never waits on a peer: UPDATE batches are offered with `try_send` on each peer's
//! small bounded channel, and a peer whose channel is full keeps its changes queued inside
//! the RIB (which merges them per prefix) until a later pass, so one slow peer neither
//! blocks the others nor grows a queue outside the RIB. The queue is encoded in bounded
//! slices, one per free place in the channel, so a whole table (session start, route
//! refresh) costs a few slices of frames at a time and the first UPDATEs leave at once.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::session::Negotiated;
use bgp_proto::{notification_code as nc, Family, Notification, PathAttributes};
use bgp_rib::policy::{CompiledPolicy, Policy, RouteSource, Verdict};
use bgp_rib::{
    AddPathSend, AllReachable, FibChange, LocalRoute, NextHopResolver, PeerId, Rib, RibConfig,
    SessionInfo,
};
use bytes::Bytes;
use ipnet::IpNet;
use tokio::sync::{broadcast, mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::config::{Config, MaxPrefixAction, NextHopMode, Originate, PeerConfig};
use crate::nexthop::NextHopTable;
use crate::peer::{PeerCmd, RibInput};
use crate::routes::{FamilyFilter, Route, RouteCursor};

pub(crate) mod pages;

/// Batches of encoded UPDATEs queued per peer before the RIB holds back.
pub(crate) const PEER_OUT_QUEUE: usize = 4;
/// NLRI octets encoded per batch handed to a peer (`Rib::take_encoded`): about
/// 50,000 IPv4 /32s, so at most `PEER_OUT_QUEUE` such batches (~1 MiB of frames) wait
/// per peer, where a 1M-route table encoded at once made ~95 MiB of transient memory.
const OUT_SLICE_BYTES: usize = 256 * 1024;
/// Inbound messages handled before the decision process runs.
const INPUT_BATCH: usize = 256;
/// Prefixes (announced and withdrawn) handled before the decision process runs. With
/// extended messages (RFC 8654) one UPDATE carries some 13,000 IPv4 /32s, so the message
/// count alone would let a decision round, and the FIB batch it yields, cover millions of
/// prefixes (a 1M-route table measured 142 MiB of queued FIB changes in one round).
const INPUT_PREFIX_BUDGET: usize = 32_768;
/// How often peers whose queue was full are offered their updates again.
const RETRY_INTERVAL: Duration = Duration::from_millis(20);
/// Restart delay after a max-prefix teardown.
const MAX_PREFIX_RESTART: Duration = Duration::from_secs(60);

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

/// A query the RIB answers.
#[derive(Debug)]
pub(crate) enum Query {
    Counts(oneshot::Sender<HashMap<String, PrefixCounts>>),
    /// One page of `show routes` (rib_task/pages.rs).
    RoutesPage {
        filter: crate::routes::RouteQuery,
        after: Option<RouteCursor>,
        limit: usize,
        reply: oneshot::Sender<Result<pages::RoutesPage, String>>,
    },
    Lookup(IpAddr, oneshot::Sender<Vec<Route>>),
    PrefixCount(oneshot::Sender<usize>),
    Best(oneshot::Sender<Vec<BestRoute>>),
    /// Graceful-restart recovery: which peers sent End-of-RIB (kernel FIB component).
    Recovery(oneshot::Sender<crate::fib::RecoveryStatus>),
}

/// Control messages for the RIB task.
#[derive(Debug)]
pub(crate) enum RibCtl {
    AddPeer {
        config: Box<PeerConfig>,
        out: mpsc::Sender<Vec<Bytes>>,
        cmd: mpsc::Sender<PeerCmd>,
    },
    RemovePeer(String),
    /// Peer settings that are applied without a session reset.
    UpdatePeer(Box<PeerConfig>),
    /// New set of named policies; peers using changed ones are re-evaluated.
    SetPolicies(BTreeMap<String, Policy>),
    Originate(Originate),
    Withdraw(IpNet),
    /// We restarted (RFC 4724 section 4.1): hold back advertisements until every peer
    /// sent End-of-RIB, or until this deadline (the Selection_Deferral_Timer).
    DeferSelection(Instant),
    /// Our AS and router id changed (only once every peer is removed).
    SetIdentity {
        asn: u32,
        router_id: std::net::Ipv4Addr,
        done: oneshot::Sender<Result<(), bgp_rib::RibError>>,
    },
    /// Kernel-learned local routes (kernel FIB component).
    Local(Vec<crate::fib::LocalChange>),
    /// Kernel links, addresses and routes for next-hop resolution ([`crate::nexthop`]).
    NextHops(Vec<bgp_kernel::KernelEvent>),
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

struct PeerSlot {
    id: PeerId,
    config: PeerConfig,
    out: mpsc::Sender<Vec<Bytes>>,
    cmd: mpsc::Sender<PeerCmd>,
    /// Session facts while established (kept to re-add the peer after a setting change).
    session: Option<SessionInfo>,
    /// Running estimate of received prefixes since the last exact count (max-prefix).
    estimate: u64,
    /// A max-prefix warning was logged for the current excess.
    warned: bool,
    /// A route that could not be sent to this peer was logged this session.
    unsendable_logged: bool,
    /// Paths past `add_path_receive_limit` were logged this session.
    path_limit_logged: bool,
}

pub(crate) struct RibTask {
    rib: Rib,
    policies: BTreeMap<String, Policy>,
    peers: HashMap<String, PeerSlot>,
    by_id: HashMap<PeerId, String>,
    originated: BTreeMap<IpNet, Originate>,
    input: crate::rib_input::RibInputReceiver,
    ctl: mpsc::Receiver<RibCtl>,
    routes: broadcast::Sender<RouteChange>,
    fib: Option<mpsc::Sender<Vec<FibChange>>>,
    /// Some peer's queue was full on the last pass.
    backlog: bool,
    /// FIB changes waiting for room in the FIB channel.
    fib_outbox: crate::fib::FibOutbox,
    /// End-of-RIB received per peer (graceful-restart recovery of the kernel FIB).
    eor: crate::fib::EorTracker,
    /// The kernel's view for next-hop resolution; `None`: every next hop resolves.
    next_hops: Option<NextHopTable>,
}

/// The resolver the decision process uses: the kernel's view when there is one.
fn resolver(t: &Option<NextHopTable>) -> &dyn NextHopResolver {
    match t {
        Some(t) => t,
        None => &AllReachable,
    }
}

/// An import or export chain compiled into one policy: the rules of every named policy in
/// order, with the default of the last one. An empty chain accepts everything on iBGP and
/// nothing on eBGP (RFC 8212).
pub fn chain_policy(
    names: &[String],
    policies: &BTreeMap<String, Policy>,
    ebgp: bool,
) -> Arc<CompiledPolicy> {
    if names.is_empty() {
        return Arc::new(if ebgp {
            CompiledPolicy::reject_all()
        } else {
            CompiledPolicy::accept_all()
        });
    }
    let mut merged = Policy::all(Verdict::Reject);
    for n in names {
        if let Some(p) = policies.get(n) {
            merged.rules.extend(p.rules.iter().cloned());
            merged.default = p.default;
        }
    }
    match merged.compile() {
        Ok(c) => Arc::new(c),
        Err(e) => {
            // Each policy compiled when the configuration was loaded; a merged chain of
            // valid policies is valid. Refuse everything rather than leak routes.
            warn!(error = %e, "policy chain does not compile; rejecting all routes");
            Arc::new(CompiledPolicy::reject_all())
        }
    }
}

fn rib_peer_config(
    cfg: &PeerConfig,
    policies: &BTreeMap<String, Policy>,
    local_as: u32,
) -> bgp_rib::PeerConfig {
    let ebgp = cfg.remote_as != cfg.local_as.unwrap_or(local_as);
    let mut p = bgp_rib::PeerConfig::new(cfg.name.clone(), cfg.address.addr, cfg.remote_as);
    p.rr_client = cfg.route_reflector_client;
    p.local_as = cfg.local_as;
    p.cluster_id = cfg.cluster_id;
    p.allow_local_as = cfg.allow_local_as;
    p.import = chain_policy(&cfg.import, policies, ebgp);
    p.export = chain_policy(&cfg.export, policies, ebgp);
    p.next_hop = match cfg.next_hop {
        NextHopMode::Auto => bgp_rib::NextHopMode::Auto,
        NextHopMode::SelfAddr => bgp_rib::NextHopMode::SelfAlways,
        NextHopMode::Keep => bgp_rib::NextHopMode::Keep,
    };
    p.add_path_send = AddPathSend::All;
    p.add_path_receive_limit = cfg.add_path_receive_limit as usize;
    p
}

/// Session facts for the RIB from what the session negotiated.
fn session_info(neg: &Negotiated, local: SocketAddr) -> SessionInfo {
    let mut s = SessionInfo::new(neg.peer_id, None);
    s.families = neg.families.clone();
    s.codec = neg.codec.clone();
    match local.ip() {
        IpAddr::V4(a) => s.local_v4 = Some(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                s.local_v4 = Some(v4);
            } else if (a.segments()[0] & 0xffc0) == 0xfe80 {
                s.local_v6_link_local = Some(a);
                // RFC 2545 3: the next hop is a global address, then the link-local one;
                // a session over link-local addresses takes its interface's global one.
                if let SocketAddr::V6(l) = local {
                    s.local_v6 = crate::net::interface_global_v6(l.scope_id());
                    if s.local_v6.is_none() {
                        warn!(interface = l.scope_id(), "no global IPv6 address on the interface of a link-local session: no next hop self for IPv6 routes");
                    }
                }
            } else {
                s.local_v6 = Some(a);
            }
        }
    }
    s.graceful_restart = neg.peer_graceful_restart.clone();
    s.llgr = neg.peer_llgr.clone();
    s.extended_next_hop_v4 = neg
        .extended_next_hop
        .contains(&(Family::IPV4_UNICAST, bgp_proto::Afi::IPV6));
    s
}

/// End-of-RIB (RFC 4724 section 2): an UPDATE with nothing in it (IPv4 unicast), or one
/// holding only an empty MP_UNREACH_NLRI (other families).
fn end_of_rib(u: &bgp_proto::Update) -> Option<Family> {
    if !u.withdrawn.is_empty() || !u.nlri.is_empty() || u.mp_reach.is_some() {
        return None;
    }
    match &u.mp_unreach {
        None if u.attributes == PathAttributes::default() => Some(Family::IPV4_UNICAST),
        Some(m) if m.nlri.is_empty() && u.attributes == PathAttributes::default() => Some(m.family),
        _ => None,
    }
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
    let a = &attrs.attrs;
    Route {
        prefix,
        path_id,
        source: RouteSource::Bgp,
        peer,
        next_hop: attrs.next_hop_addr(),
        as_path: a.as_path.clone().unwrap_or_default(),
        origin: a.origin,
        local_pref: a.local_pref,
        med: a.med,
        communities: a.communities.to_vec(),
        large_communities: a.large_communities.to_vec(),
        originator_id: a.originator_id,
        cluster_list: a.cluster_list.to_vec(),
        best: false,
        multipath: false,
        not_best: None,
        stale: false,
        interface: None,
    }
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
    e
}

impl RibTask {
    pub(crate) fn new(
        config: &Config,
        input: crate::rib_input::RibInputReceiver,
        ctl: mpsc::Receiver<RibCtl>,
        routes: broadcast::Sender<RouteChange>,
        fib: Option<mpsc::Sender<Vec<FibChange>>>,
        kernel_view: bool,
    ) -> RibTask {
        let g = &config.global;
        let mut rc = RibConfig::new(g.asn, g.router_id);
        rc.cluster_id = g.cluster_id;
        rc.max_paths = usize::from(g.max_paths);
        rc.stale_path_time = Duration::from_secs(u64::from(g.graceful_restart.stale_time));
        rc.fib_policy = crate::fib::fib_policy(config);
        RibTask {
            rib: Rib::new(rc),
            policies: config.policies.clone(),
            peers: HashMap::new(),
            by_id: HashMap::new(),
            originated: BTreeMap::new(),
            input,
            ctl,
            routes,
            fib,
            backlog: false,
            fib_outbox: Default::default(),
            eor: crate::fib::EorTracker::default(),
            next_hops: kernel_view.then(NextHopTable::new),
        }
    }

    pub(crate) async fn run(mut self) {
        loop {
            let deadline = self.rib.next_deadline().map(tokio::time::Instant::from_std);
            let backlog = self.backlog || self.fib_outbox.is_waiting();
            tokio::select! {
                biased;
                c = self.ctl.recv() => match c {
                    Some(c) => self.control(c),
                    None => break,
                },
                i = self.input.recv() => match i {
                    Some(i) => {
                        // Each input's budget is released once it is applied (rib_input.rs).
                        let mut prefixes = input_prefixes(&i.input);
                        self.input_msg(i.input);
                        // Take what else is already waiting, bounded, before deciding.
                        for _ in 1..INPUT_BATCH {
                            if prefixes >= INPUT_PREFIX_BUDGET {
                                break;
                            }
                            match self.input.try_recv() {
                                Some(i) => {
                                    prefixes += input_prefixes(&i.input);
                                    self.input_msg(i.input);
                                }
                                None => break,
                            }
                        }
                    }
                    None => break,
                },
                _ = async {
                    match deadline {
                        Some(d) => tokio::time::sleep_until(d).await,
                        None => std::future::pending().await,
                    }
                } => self.rib.handle_timeout(Instant::now()),
                _ = tokio::time::sleep(RETRY_INTERVAL), if backlog => {}
            }
            self.rib.process(resolver(&self.next_hops));
            self.publish();
            self.push_output();
        }
        debug!("RIB task ended");
    }

    fn publish(&mut self) {
        // The batch and the RIB's queue memory move to the FIB task together.
        let changes: Vec<FibChange> = self.rib.take_fib(usize::MAX);
        if changes.is_empty() {
            if let (Some(fib), true) = (&self.fib, self.fib_outbox.is_waiting()) {
                self.fib_outbox.offer(fib, changes);
            }
            return;
        }
        // No subscribers is fine (and then nothing is copied for them).
        if self.routes.receiver_count() > 0 {
            for c in &changes {
                let ev = match c {
                    FibChange::Upsert(r) => RouteChange::Best(r.clone().into()),
                    FibChange::Remove(p) => RouteChange::Removed(*p),
                };
                let _ = self.routes.send(ev);
            }
        }
        if let Some(fib) = &self.fib {
            // Never dropped: what does not fit waits, per prefix (fib/outbox.rs).
            self.fib_outbox.offer(fib, changes);
        }
    }

    /// Hands each peer with queued changes one bounded slice per free place in its
    /// channel: a whole table (session start, route refresh) is encoded as the peer sends
    /// it, not all at once. Peers take turns a slice at a time, so route-reflector clients
    /// with the same queue are encoded one after the other and share the UPDATEs
    /// (`Rib::take_encoded` reuses the previous slice's frames).
    fn push_output(&mut self) {
        self.backlog = false;
        let mut turn = self.rib.peers_with_output();
        let mut unsendable = Vec::new();
        while !turn.is_empty() {
            let mut next = Vec::new();
            for id in turn {
                let Some(slot) = self.by_id.get(&id).and_then(|n| self.peers.get(n)) else {
                    continue;
                };
                let Ok(permit) = slot.out.try_reserve() else {
                    self.backlog = true;
                    continue;
                };
                let mut frames = Vec::new();
                match self.rib.take_encoded(id, OUT_SLICE_BYTES, &mut frames) {
                    Ok(e) => {
                        if !frames.is_empty() {
                            permit.send(frames);
                        }
                        if e.more {
                            next.push(id);
                        }
                        if !e.unsendable.is_empty() {
                            unsendable.push((id, e.unsendable));
                        }
                    }
                    Err(e) => warn!(peer = %slot.config.name, error = %e, "encoding updates"),
                }
            }
            turn = next;
        }
        for (id, routes) in unsendable {
            self.log_unsendable(id, &routes);
        }
    }

    /// Routes that could not be encoded for a peer (RFC 8654 3: withdrawn towards it):
    /// one warning per session, the rest at debug level, so a peer sending many such
    /// routes cannot flood the log.
    fn log_unsendable(&mut self, id: PeerId, routes: &[bgp_rib::Unsendable]) {
        let Some(slot) = self.by_id.get(&id).and_then(|n| self.peers.get_mut(n)) else {
            return;
        };
        let (Some(first), n) = (routes.first(), routes.len()) else {
            return;
        };
        if slot.unsendable_logged {
            debug!(peer = %slot.config.name, routes = n, prefix = %first.nlri.prefix, "routes not sent to the peer");
            return;
        }
        slot.unsendable_logged = true;
        warn!(
            peer = %slot.config.name,
            prefix = %first.nlri.prefix,
            routes = n,
            reason = %first.reason,
            "routes cannot be sent to this peer and are withdrawn towards it (RFC 8654 3); \
             further ones this session are logged at debug level"
        );
    }

    fn input_msg(&mut self, msg: RibInput) {
        let now = Instant::now();
        match msg {
            RibInput::Up {
                peer,
                negotiated,
                local,
            } => {
                let Some(slot) = self.peers.get_mut(&peer) else {
                    return;
                };
                let mut info = session_info(&negotiated, local);
                crate::peer::graceful::limit_peer_times(
                    &mut info,
                    &negotiated,
                    &slot.config.graceful_restart,
                );
                slot.session = Some(info.clone());
                self.eor
                    .session_up(&peer, &info.families, info.graceful_restart.as_ref());
                slot.estimate = 0;
                slot.warned = false;
                slot.unsendable_logged = false;
                slot.path_limit_logged = false;
                if let Err(e) = self.rib.peer_up(slot.id, info, now) {
                    warn!(peer = %peer, error = %e, "RIB peer up");
                }
            }
            RibInput::Down { peer, graceful } => {
                let Some(slot) = self.peers.get_mut(&peer) else {
                    return;
                };
                slot.session = None;
                match self.rib.peer_down(slot.id, graceful, now) {
                    Ok(Some(until)) => info!(
                        peer = %peer,
                        stale_for_secs = until.saturating_duration_since(now).as_secs(),
                        "keeping routes as stale (graceful restart)"
                    ),
                    Ok(None) => {}
                    Err(e) => warn!(peer = %peer, error = %e, "RIB peer down"),
                }
            }
            RibInput::Update { peer, update } => self.update(&peer, *update),
            RibInput::RouteRefresh { peer, refresh } => {
                let Some(slot) = self.peers.get(&peer) else {
                    return;
                };
                // RFC 7313: BoRR/EoRR markers from the peer need no action here.
                if refresh.subtype == bgp_proto::RefreshSubtype::Normal {
                    match self.rib.route_refresh(slot.id, refresh.family) {
                        Ok(true) => {}
                        Ok(false) => debug!(
                            peer = %peer,
                            family = %refresh.family,
                            "route refresh ignored: the previous one is still being sent"
                        ),
                        Err(e) => debug!(peer = %peer, error = %e, "route refresh"),
                    }
                }
            }
        }
    }

    fn update(&mut self, peer: &str, update: bgp_proto::wire::DecodedUpdate) {
        let Some(slot) = self.peers.get_mut(peer) else {
            return;
        };
        if let Some(f) = end_of_rib(&update.update) {
            debug!(peer, family = %f, "End-of-RIB received");
            self.eor.end_of_rib(peer, f);
            if let Err(e) = self.rib.end_of_rib(slot.id, f) {
                debug!(peer, error = %e, "End-of-RIB");
            }
            return;
        }
        match self.rib.apply_update_resolved(
            slot.id,
            &update.update,
            update.treat_as_withdraw.is_some(),
            resolver(&self.next_hops),
        ) {
            Ok(stats) => {
                slot.estimate = slot
                    .estimate
                    .saturating_add(stats.announced as u64)
                    .saturating_sub(stats.withdrawn as u64);
                if stats.over_add_path_limit > 0 && !slot.path_limit_logged {
                    slot.path_limit_logged = true;
                    warn!(
                        peer,
                        limit = slot.config.add_path_receive_limit,
                        ignored = stats.over_add_path_limit,
                        "ADD-PATH paths past add_path_receive_limit for a prefix ignored; \
                         logged once per session"
                    );
                }
            }
            Err(e) => {
                debug!(peer, error = %e, "UPDATE not applied");
                return;
            }
        }
        self.check_max_prefixes(peer);
    }

    /// RFC 4486 / RFC 4271 8.1.2 (max prefix): warn once, or tear the session down with
    /// Cease / Maximum Number of Prefixes Reached carrying AFI, SAFI and the limit.
    fn check_max_prefixes(&mut self, peer: &str) {
        let Some(slot) = self.peers.get_mut(peer) else {
            return;
        };
        let Some(mp) = slot.config.max_prefixes else {
            return;
        };
        if slot.estimate <= u64::from(mp.limit) {
            return;
        }
        // The estimate over-counts re-announcements; count exactly (the RIB's counters,
        // constant time) before acting.
        let (v4, v6) = self
            .rib
            .peer_info(slot.id)
            .map(|i| (i.received_v4 as u64, i.received_v6 as u64))
            .unwrap_or_default();
        let family = if v6 > 0 && v6 >= v4 {
            Family::IPV6_UNICAST
        } else {
            Family::IPV4_UNICAST
        };
        let exact = v4 + v6;
        slot.estimate = exact;
        if exact <= u64::from(mp.limit) {
            slot.warned = false;
            return;
        }
        match mp.action {
            MaxPrefixAction::Warn => {
                if !slot.warned {
                    warn!(
                        peer,
                        received = exact,
                        limit = mp.limit,
                        "prefix limit exceeded"
                    );
                    slot.warned = true;
                }
            }
            MaxPrefixAction::Teardown => {
                warn!(
                    peer,
                    received = exact,
                    limit = mp.limit,
                    "prefix limit exceeded: closing session"
                );
                let mut data = Vec::with_capacity(7);
                data.extend_from_slice(&family.afi.0.to_be_bytes());
                data.push(family.safi.0);
                data.extend_from_slice(&mp.limit.to_be_bytes());
                let n = Notification {
                    code: nc::CEASE,
                    subcode: nc::CEASE_MAX_PREFIXES,
                    data: Bytes::from(data),
                };
                if slot
                    .cmd
                    .try_send(PeerCmd::Teardown {
                        notification: n,
                        restart_after: Some(MAX_PREFIX_RESTART),
                        // RFC 8538 5: the peer must not keep our routes as stale.
                        hard_reset: true,
                    })
                    .is_err()
                {
                    warn!(peer, "could not ask the peer task to close the session");
                }
                slot.estimate = 0;
            }
        }
    }

    fn control(&mut self, c: RibCtl) {
        match c {
            RibCtl::AddPeer { config, out, cmd } => {
                let name = config.name.clone();
                if let Some(old) = self.peers.remove(&name) {
                    let _ = self.rib.remove_peer(old.id);
                    self.by_id.remove(&old.id);
                }
                let rc = rib_peer_config(&config, &self.policies, self.rib.config().local_as);
                match self.rib.add_peer(rc) {
                    Ok(id) => {
                        self.by_id.insert(id, name.clone());
                        self.peers.insert(
                            name,
                            PeerSlot {
                                id,
                                config: *config,
                                out,
                                cmd,
                                session: None,
                                estimate: 0,
                                warned: false,
                                unsendable_logged: false,
                                path_limit_logged: false,
                            },
                        );
                    }
                    Err(e) => warn!(peer = %name, error = %e, "cannot add peer to the RIB"),
                }
            }
            RibCtl::SetIdentity {
                asn,
                router_id,
                done,
            } => {
                let _ = done.send(self.rib.set_identity(asn, router_id));
            }
            RibCtl::RemovePeer(name) => {
                if let Some(slot) = self.peers.remove(&name) {
                    self.by_id.remove(&slot.id);
                    if let Err(e) = self.rib.remove_peer(slot.id) {
                        warn!(peer = %name, error = %e, "RIB remove peer");
                    }
                }
            }
            RibCtl::UpdatePeer(config) => self.update_peer(*config),
            RibCtl::SetPolicies(p) => {
                let changed: Vec<String> = p
                    .keys()
                    .chain(self.policies.keys())
                    .filter(|n| p.get(*n) != self.policies.get(*n))
                    .cloned()
                    .collect();
                self.policies = p;
                let names: Vec<String> = self
                    .peers
                    .values()
                    .filter(|s| {
                        s.config
                            .import
                            .iter()
                            .chain(&s.config.export)
                            .any(|n| changed.contains(n))
                    })
                    .map(|s| s.config.name.clone())
                    .collect();
                for n in names {
                    self.reapply_policies(&n);
                }
            }
            RibCtl::Originate(o) => {
                let mut r = LocalRoute::new(o.prefix, RouteSource::Static);
                r.no_install = o.no_install;
                r.next_hop = o.next_hop;
                r.attrs.communities = o.communities.clone();
                r.attrs.large_communities = o.large_communities.clone();
                r.attrs.local_pref = o.local_pref;
                r.attrs.med = o.med;
                match self.rib.originate(r) {
                    Ok(()) => {
                        self.originated.insert(o.prefix, o);
                    }
                    Err(e) => warn!(prefix = %o.prefix, error = %e, "cannot originate"),
                }
            }
            RibCtl::Withdraw(p) => {
                self.originated.remove(&p);
                self.rib.withdraw_local(p, RouteSource::Static);
            }
            RibCtl::DeferSelection(deadline) => {
                info!(
                    wait_secs = deadline.saturating_duration_since(Instant::now()).as_secs(),
                    "restarting: deferring advertisements until peers sent End-of-RIB (RFC 4724 4.1)"
                );
                self.rib.defer_selection(deadline);
            }
            RibCtl::Local(changes) => crate::fib::apply_local(&mut self.rib, changes),
            RibCtl::NextHops(events) => self.next_hops_changed(&events),
            RibCtl::Query(q) => self.query(q),
            #[cfg(test)]
            RibCtl::Stall(d) => std::thread::sleep(d),
        }
    }

    /// The kernel's view changed: when a next hop in use now resolves differently, every
    /// prefix goes through the decision again (RFC 4271 9.1.2: eligibility and IGP cost).
    fn next_hops_changed(&mut self, events: &[bgp_kernel::KernelEvent]) {
        let Some(t) = &mut self.next_hops else {
            return;
        };
        let mut changed = false;
        for e in events {
            changed |= t.apply(e);
        }
        if changed && t.answers_changed() {
            debug!("next-hop resolution changed: re-running the decision");
            self.rib.resolver_changed(&*t);
        }
    }

    fn reapply_policies(&mut self, name: &str) {
        let Some(slot) = self.peers.get(name) else {
            return;
        };
        let ebgp =
            slot.config.remote_as != slot.config.local_as.unwrap_or(self.rib.config().local_as);
        let import = chain_policy(&slot.config.import, &self.policies, ebgp);
        let export = chain_policy(&slot.config.export, &self.policies, ebgp);
        // Soft reconfiguration from the stored Adj-RIB-In (no ROUTE-REFRESH needed).
        if let Err(e) = self.rib.set_policies(slot.id, import, export) {
            warn!(peer = %name, error = %e, "applying policies");
        } else {
            info!(peer = %name, "policies re-applied (soft reconfiguration)");
        }
    }

    /// Applies settings that need no session reset: policies via soft reconfiguration;
    /// reflection and next-hop settings by re-adding the peer to the RIB and asking it for
    /// a ROUTE-REFRESH; limits in place.
    fn update_peer(&mut self, config: PeerConfig) {
        let name = config.name.clone();
        let Some(slot) = self.peers.get_mut(&name) else {
            return;
        };
        let old = std::mem::replace(&mut slot.config, config);
        let new = &slot.config;
        let structural = old.route_reflector_client != new.route_reflector_client
            || old.next_hop != new.next_hop
            || old.cluster_id != new.cluster_id;
        if structural {
            let rc = rib_peer_config(new, &self.policies, self.rib.config().local_as);
            let _ = self.rib.remove_peer(slot.id);
            self.by_id.remove(&slot.id);
            match self.rib.add_peer(rc) {
                Ok(id) => {
                    slot.id = id;
                    self.by_id.insert(id, name.clone());
                    if let Some(info) = slot.session.clone() {
                        let families = info.families.clone();
                        if let Err(e) = self.rib.peer_up(id, info, Instant::now()) {
                            warn!(peer = %name, error = %e, "RIB peer up");
                        }
                        for f in families {
                            let _ = slot.cmd.try_send(PeerCmd::RouteRefresh(f));
                        }
                    }
                }
                Err(e) => warn!(peer = %name, error = %e, "cannot re-add peer"),
            }
        } else if old.import != new.import || old.export != new.export {
            self.reapply_policies(&name);
        }
        if let Some(slot) = self.peers.get(&name) {
            let limit = slot.config.add_path_receive_limit as usize;
            if let Err(e) = self.rib.set_add_path_receive_limit(slot.id, limit) {
                warn!(peer = %name, error = %e, "add_path_receive_limit");
            }
        }
    }

    fn query(&mut self, q: Query) {
        match q {
            Query::Counts(reply) => {
                // From the RIB's counters: constant time per peer, whatever its tables
                // hold (`show peers` and the BIRD socket's `show protocols` ask often).
                let mut m = HashMap::new();
                for (name, slot) in &self.peers {
                    let c = self
                        .rib
                        .peer_info(slot.id)
                        .map(|i| PrefixCounts {
                            received: (i.received_v4 + i.received_v6) as u64,
                            accepted: (i.accepted_v4 + i.accepted_v6) as u64,
                            sent: (i.advertised_v4 + i.advertised_v6) as u64,
                        })
                        .unwrap_or_default();
                    m.insert(name.clone(), c);
                }
                let _ = reply.send(m);
            }
            Query::Recovery(reply) => {
                let enabled = self.peers.values().filter(|s| !s.config.disabled);
                let _ = reply.send(self.eor.status(enabled.map(|s| s.config.name.as_str())));
            }
            Query::PrefixCount(reply) => {
                let (a, b) = self.rib.prefix_count();
                let _ = reply.send(a + b);
            }
            Query::Best(reply) => {
                let v = self
                    .rib
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
                let v = self
                    .rib
                    .lookup(addr, resolver(&self.next_hops))
                    .map(|d| {
                        d.paths
                            .iter()
                            .map(|p| self.with_path_id(path_entry(d.prefix, p), d.prefix, true))
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

    /// Keeps an entry's path identifier only where the session to its peer carries
    /// them (RFC 7911: ADD-PATH receive for paths from the peer, send for paths to it);
    /// elsewhere the RIB's 0 is no identifier at all.
    fn with_path_id(&self, mut e: Route, prefix: IpNet, received: bool) -> Route {
        let family = match prefix {
            IpNet::V4(_) => Family::IPV4_UNICAST,
            IpNet::V6(_) => Family::IPV6_UNICAST,
        };
        let negotiated = self
            .peers
            .get(e.peer.as_deref().unwrap_or_default())
            .and_then(|slot| slot.session.as_ref())
            .is_some_and(|s| {
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
}

/// How many prefixes an input carries, for [`INPUT_PREFIX_BUDGET`] (at least 1).
fn input_prefixes(i: &RibInput) -> usize {
    fn mp(n: &bgp_proto::MpNlri) -> usize {
        match n {
            bgp_proto::MpNlri::Unicast(v) => v.len(),
            bgp_proto::MpNlri::Opaque(_) => 1,
        }
    }
    match i {
        RibInput::Update { update, .. } => {
            let u = &update.update;
            u.nlri.len()
                + u.withdrawn.len()
                + u.mp_reach.as_ref().map_or(0, |m| mp(&m.nlri))
                + u.mp_unreach.as_ref().map_or(0, |m| mp(&m.nlri))
        }
        _ => 1,
    }
    .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::{MpNlri, MpUnreach, Update};

    #[test]
    fn end_of_rib_forms() {
        assert_eq!(end_of_rib(&Update::default()), Some(Family::IPV4_UNICAST));
        let u = Update {
            mp_unreach: Some(MpUnreach {
                family: Family::IPV6_UNICAST,
                nlri: MpNlri::Unicast(Vec::new()),
            }),
            ..Update::default()
        };
        assert_eq!(end_of_rib(&u), Some(Family::IPV6_UNICAST));
        let u = Update {
            withdrawn: vec![bgp_proto::Nlri::new("10.0.0.0/8".parse().unwrap())],
            ..Update::default()
        };
        assert_eq!(end_of_rib(&u), None);
    }

    #[test]
    fn input_weight_counts_every_prefix() {
        let n = |s: &str| bgp_proto::Nlri::new(s.parse().unwrap());
        let update = |u: Update| RibInput::Update {
            peer: "p".into(),
            update: Box::new(bgp_proto::wire::DecodedUpdate {
                update: u,
                treat_as_withdraw: None,
                discarded: Vec::new(),
            }),
        };
        let u = Update {
            withdrawn: vec![n("10.0.0.0/8"), n("10.1.0.0/16")],
            nlri: vec![n("10.2.0.0/16"), n("10.3.0.0/16"), n("10.4.0.0/16")],
            mp_unreach: Some(MpUnreach {
                family: Family::IPV6_UNICAST,
                nlri: MpNlri::Unicast(vec![n("2001:db8::/32"), n("2001:db8:1::/48")]),
            }),
            ..Update::default()
        };
        assert_eq!(input_prefixes(&update(u)), 7);
        // An End-of-RIB or any other input still counts.
        assert_eq!(input_prefixes(&update(Update::default())), 1);
        let down = RibInput::Down {
            peer: "p".into(),
            graceful: false,
        };
        assert_eq!(input_prefixes(&down), 1);
    }

    #[test]
    fn empty_chain_follows_rfc8212() {
        let p = BTreeMap::new();
        assert!(chain_policy(&[], &p, false).is_accept_all());
        assert!(!chain_policy(&[], &p, true).is_accept_all());
    }

    #[test]
    fn chain_concatenates_rules_and_takes_last_default() {
        let mut p = BTreeMap::new();
        p.insert("a".to_string(), Policy::all(Verdict::Reject));
        p.insert("b".to_string(), Policy::all(Verdict::Accept));
        let c = chain_policy(&["a".into(), "b".into()], &p, true);
        assert_eq!(c.source().default, Verdict::Accept);
    }
}
