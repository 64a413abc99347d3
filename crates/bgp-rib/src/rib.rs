//! The [`Rib`]: peers, inbound processing, local routes, decision, outbound state, FIB output
//! and queries. See the crate documentation for the life cycle.

use std::collections::VecDeque;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bgp_proto::{
    attr_flags, CodecContext, Community, Family, GracefulRestart, LlgrFamily, MpNextHop, MpNlri,
    Nlri, Origin, PathAttributes, Update,
};
use bytes::Bytes;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use smallvec::SmallVec;

use crate::adj_out::{AdjOut, Change, Desired};
use crate::attrs::{AttrId, AttrStore, Attrs, RouteAttrs};
use crate::decision::{self, Candidate, DecisionConfig, Ineligible, Step, DEFAULT_LOCAL_PREF};
use crate::policy::{
    Accepted, CompiledPolicy, InstallMode, KernelInfo, NextHopAction, PeerType, PeerView,
    RouteSource, RouteView,
};
use crate::table::{
    flag, selection_signature, Dest, Path, PeerIdx, PeerPrefixes, Prefix, Tables, LOCAL_PEER,
    MAX_PEERS,
};

/// Handle of a configured peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(u32);

impl PeerId {
    /// The raw index (stable for the life of the [`Rib`]).
    pub fn index(self) -> u32 {
        self.0
    }
}

/// Errors of RIB operations. None of them is caused by route contents; they report API
/// misuse (unknown or down peer, bad local route) and encoder failures.
#[derive(Debug, thiserror::Error)]
pub enum RibError {
    #[error("unknown peer {0:?}")]
    UnknownPeer(PeerId),
    #[error("peer {0:?} is not established")]
    PeerDown(PeerId),
    #[error("too many peers")]
    TooManyPeers,
    #[error("local routes must have source static, kernel or connected")]
    BadLocalSource,
    #[error("encoding updates: {0}")]
    Encode(#[from] bgp_proto::wire::EncodeError),
    #[error("our AS or router id can only change while no peer is configured")]
    PeersConfigured,
}

/// Caller-provided next-hop resolution (RFC 4271 9.1.2: routes whose next hop cannot be
/// resolved are excluded; the IGP cost feeds step 9.1.2.2 e).
pub trait NextHopResolver {
    /// The IGP cost to reach `next_hop`, or `None` if it is unreachable.
    fn resolve(&self, next_hop: IpAddr) -> Option<u32>;

    /// Whether [`NextHopResolver::interface`] answers at all (the RIB skips asking).
    fn knows_interfaces(&self) -> bool {
        false
    }

    /// The interface `next_hop` is reached through (BIRD's `ifname` of a route with a
    /// recursive gateway), which policy `interface` conditions match for BGP routes.
    fn interface(&self, _next_hop: IpAddr) -> Option<Arc<str>> {
        None
    }
}

/// Next hop → the interface it resolved through, as last answered by the resolver.
type NhIfaces = rustc_hash::FxHashMap<IpAddr, Option<Arc<str>>>;

fn iface_of(ifaces: &NhIfaces, nh: Option<IpAddr>) -> Option<&str> {
    nh.and_then(|a| ifaces.get(&a)).and_then(|i| i.as_deref())
}

impl<F: Fn(IpAddr) -> Option<u32>> NextHopResolver for F {
    fn resolve(&self, next_hop: IpAddr) -> Option<u32> {
        self(next_hop)
    }
}

/// Resolves every next hop at cost 0 (directly connected or multihop without IGP).
#[derive(Copy, Clone, Debug, Default)]
pub struct AllReachable;

impl NextHopResolver for AllReachable {
    fn resolve(&self, _: IpAddr) -> Option<u32> {
        Some(0)
    }
}

/// RIB-wide settings.
#[derive(Clone, Debug)]
pub struct RibConfig {
    pub local_as: u32,
    pub router_id: Ipv4Addr,
    /// CLUSTER_ID used when reflecting (RFC 4456 7); defaults to the router id.
    pub cluster_id: Option<Ipv4Addr>,
    pub always_compare_med: bool,
    /// Largest ECMP set for the FIB and for ADD-PATH "multipath" sends (1 = best only).
    pub max_paths: usize,
    /// How long stale routes of a re-established peer wait for End-of-RIB (RFC 4724 4.2).
    pub stale_path_time: Duration,
    /// Policy applied to best routes on their way to the FIB: chooses tunnel device,
    /// install mode and metric; a rejected route is removed from the FIB.
    pub fib_policy: Arc<CompiledPolicy>,
}

impl RibConfig {
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> RibConfig {
        RibConfig {
            local_as,
            router_id,
            cluster_id: None,
            always_compare_med: false,
            max_paths: 1,
            stale_path_time: Duration::from_secs(360),
            fib_policy: Arc::new(CompiledPolicy::accept_all()),
        }
    }
    fn effective_cluster_id(&self) -> Ipv4Addr {
        self.cluster_id.unwrap_or(self.router_id)
    }
}

/// Which next hop to advertise to a peer when policy does not say.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum NextHopMode {
    /// Self towards eBGP and for local routes, unchanged towards iBGP (RFC 4271 5.1.3).
    #[default]
    Auto,
    /// Always our own address.
    SelfAlways,
    /// Never rewrite (third-party next hop, also towards eBGP) except for local routes.
    Keep,
}

/// What to send to a peer that negotiated ADD-PATH send (RFC 7911).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum AddPathSend {
    /// Only the best path, even if ADD-PATH was negotiated.
    #[default]
    Best,
    /// Every eligible path.
    All,
    /// The multipath (ECMP) set.
    Multipath,
}

/// Static facts about a peer.
#[derive(Clone, Debug)]
pub struct PeerConfig {
    /// Session name, e.g. `Mesh_10_0_0_2` (matched by policy `peer_name`).
    pub name: String,
    pub address: IpAddr,
    pub remote_as: u32,
    /// Route-reflector client (RFC 4456); only meaningful for iBGP peers.
    pub rr_client: bool,
    pub import: Arc<CompiledPolicy>,
    pub export: Arc<CompiledPolicy>,
    pub next_hop: NextHopMode,
    pub add_path_send: AddPathSend,
    /// Accept routes whose AS_PATH holds our AS up to this many times.
    pub allow_local_as: u8,
    /// Our AS on this session when it differs from [`RibConfig::local_as`] (BIRD's per-session
    /// `local as`): decides iBGP/eBGP, is prepended towards the peer and counts in the
    /// AS_PATH loop check of routes from it.
    pub local_as: Option<u32>,
    /// CLUSTER_ID for routes reflected to this peer and for the loop check on routes from
    /// it, overriding [`RibConfig::cluster_id`] (BIRD's per-session `rr cluster id`).
    pub cluster_id: Option<Ipv4Addr>,
    /// Most paths this peer may have for one prefix (ADD-PATH receive, RFC 7911, which
    /// sets no limit: without it a peer can make one prefix hold any number of paths,
    /// each change of which costs work in proportion). A path with a new path id beyond
    /// it is ignored ([`UpdateStats::over_add_path_limit`]); paths already held can be
    /// replaced and withdrawn, which makes room again.
    pub add_path_receive_limit: usize,
}

/// Default of [`PeerConfig::add_path_receive_limit`]: one path per node of a
/// 1,024-node cluster for an address every node announces (ECMP service routes through
/// a reflector), while capping the per-prefix work one peer can cause.
pub const DEFAULT_ADD_PATH_RECEIVE_LIMIT: usize = 1024;

impl PeerConfig {
    /// A peer accepting and announcing everything.
    pub fn new(name: impl Into<String>, address: IpAddr, remote_as: u32) -> PeerConfig {
        PeerConfig {
            name: name.into(),
            address,
            remote_as,
            rr_client: false,
            import: Arc::new(CompiledPolicy::accept_all()),
            export: Arc::new(CompiledPolicy::accept_all()),
            next_hop: NextHopMode::Auto,
            add_path_send: AddPathSend::Best,
            allow_local_as: 0,
            local_as: None,
            cluster_id: None,
            add_path_receive_limit: DEFAULT_ADD_PATH_RECEIVE_LIMIT,
        }
    }
}

/// What the session negotiated, handed over when it reaches Established.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    /// The peer's BGP Identifier.
    pub router_id: Ipv4Addr,
    /// Families both sides enabled.
    pub families: Vec<Family>,
    /// Encoding parameters (4-octet AS, extended messages, ADD-PATH directions).
    pub codec: CodecContext,
    /// Our address on the session for next hop self (IPv4 routes).
    pub local_v4: Option<Ipv4Addr>,
    /// Our global IPv6 address for next hop self (IPv6 routes) and optional link-local.
    pub local_v6: Option<Ipv6Addr>,
    pub local_v6_link_local: Option<Ipv6Addr>,
    /// The peer's graceful restart capability (RFC 4724), if it sent one.
    pub graceful_restart: Option<GracefulRestart>,
    /// The peer's long-lived graceful restart capability (RFC 9494).
    pub llgr: Vec<LlgrFamily>,
    /// Both sides announced the extended next hop capability for IPv4 unicast NLRI with
    /// IPv6 next hops (RFC 8950 4: (AFI 1, SAFI 1, next-hop AFI 2)). Received IPv4 routes
    /// may then carry an IPv6 next hop in MP_REACH_NLRI, and IPv4 routes are sent with one
    /// when their next hop is IPv6 or next-hop-self finds only an IPv6 local address.
    /// Without it, such received routes are treated as withdrawn and such routes are sent
    /// with our IPv4 address as next hop, or not at all when the session has none.
    pub extended_next_hop_v4: bool,
}

impl SessionInfo {
    /// Unicast IPv4+IPv6, no ADD-PATH, no GR.
    pub fn new(router_id: Ipv4Addr, local_v4: Option<Ipv4Addr>) -> SessionInfo {
        SessionInfo {
            router_id,
            families: vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST],
            codec: CodecContext {
                four_octet_as: true,
                ..Default::default()
            },
            local_v4,
            local_v6: None,
            local_v6_link_local: None,
            graceful_restart: None,
            llgr: Vec::new(),
            extended_next_hop_v4: false,
        }
    }
}

/// A route originated locally.
#[derive(Clone, Debug)]
pub struct LocalRoute {
    pub prefix: IpNet,
    /// Static, kernel or connected.
    pub source: RouteSource,
    /// Gateway, if any (blackholes and connected routes have none).
    pub next_hop: Option<IpAddr>,
    /// Interface, metric, protocol of kernel and connected routes.
    pub kernel: KernelInfo,
    /// Advertise but do not install in the kernel (service CIDRs, /32 blackholes).
    pub no_install: bool,
    /// Extra attributes (communities, MED, LOCAL_PREF). ORIGIN defaults to IGP for static
    /// and connected routes and INCOMPLETE for kernel routes.
    pub attrs: PathAttributes,
}

impl LocalRoute {
    pub fn new(prefix: IpNet, source: RouteSource) -> LocalRoute {
        LocalRoute {
            prefix,
            source,
            next_hop: None,
            kernel: KernelInfo::default(),
            no_install: false,
            attrs: PathAttributes::default(),
        }
    }
}

/// Per local route (a node may import a million kernel routes): the kernel facts are
/// shared between the routes that have the same (see [`KernelInfos`]).
#[derive(Clone, Debug)]
struct LocalMeta {
    kernel: Arc<KernelInfo>,
    no_install: bool,
}

/// Interned [`KernelInfo`]s: most kernel routes share their interface, metric and protocol
/// (all the blackholes of a table, the routes of one device). Sets no route uses any more
/// are dropped when the set has doubled since the last clean-up.
#[derive(Debug, Default)]
struct KernelInfos {
    set: std::collections::HashSet<Arc<KernelInfo>>,
    kept: usize,
}

impl KernelInfos {
    fn intern(&mut self, k: KernelInfo) -> Arc<KernelInfo> {
        if let Some(a) = self.set.get(&k) {
            return a.clone();
        }
        if self.set.len() >= 2 * self.kept.max(64) {
            self.set.retain(|a| Arc::strong_count(a) > 1);
            self.kept = self.set.len();
        }
        let a = Arc::new(k);
        self.set.insert(a.clone());
        a
    }
}

fn local_code(s: RouteSource) -> u32 {
    match s {
        RouteSource::Bgp => 0,
        RouteSource::Static => 1,
        RouteSource::Kernel => 2,
        RouteSource::Connected => 3,
    }
}

fn local_source(code: u32) -> RouteSource {
    match code {
        1 => RouteSource::Static,
        2 => RouteSource::Kernel,
        _ => RouteSource::Connected,
    }
}

/// One change for a peer's Adj-RIB-Out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutChange {
    pub family: Family,
    /// With the outgoing path id when ADD-PATH send is negotiated.
    pub nlri: Nlri,
    /// `None` = withdraw. The next hop is in [`RouteAttrs::next_hop`].
    pub attrs: Option<Attrs>,
}

/// Everything queued for a peer since the last drain.
#[derive(Clone, Debug, Default)]
pub struct PeerOutput {
    pub changes: Vec<OutChange>,
    /// Families whose initial table has now been sent completely.
    pub end_of_rib: Vec<Family>,
}

impl PeerOutput {
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.end_of_rib.is_empty()
    }
}

/// What [`Rib::take_encoded`] packed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoded {
    pub announced: usize,
    pub withdrawn: usize,
    pub end_of_rib: Vec<Family>,
    /// UPDATE messages appended.
    pub messages: usize,
    /// Changes are still queued after this slice ([`Rib::take_encoded_bounded`]): take
    /// again when the peer has room. End-of-RIB waits for the last slice.
    pub more: bool,
    /// Routes that could not be encoded for this peer (not sent, withdrawn towards it
    /// when it held an older announcement; not counted in `announced`).
    pub unsendable: Vec<Unsendable>,
}

/// A route that could not be sent to a peer (RFC 8654 3), typically because its
/// attributes do not fit the peer's maximum message size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsendable {
    pub family: Family,
    pub nlri: Nlri,
    pub reason: bgp_proto::wire::EncodeError,
}

/// A slice taken off a peer's queue ([`Rib::drain_out`]).
#[derive(Debug, Default)]
struct Drained {
    changes: Vec<Change>,
    end_of_rib: Vec<Family>,
    more: bool,
}

/// A best-path change for the kernel and embedding agents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibChange {
    /// Install or replace.
    Upsert(FibRoute),
    /// No usable route any more.
    Remove(IpNet),
}

/// A Loc-RIB best route (with its ECMP set) as the FIB sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibRoute {
    pub prefix: IpNet,
    /// Next hops of the multipath set, best first; empty for blackholes/local routes
    /// without a gateway.
    pub next_hops: SmallVec<[IpAddr; 2]>,
    pub local_pref: u32,
    pub source: RouteSource,
    /// Do not install: static "advertise only" routes, and routes learned from the kernel
    /// or interfaces themselves (already there).
    pub no_install: bool,
    /// Metric chosen by the FIB policy (e.g. from LOCAL_PREF).
    pub metric: Option<u32>,
    pub tunnel_device: Option<String>,
    pub install: Option<InstallMode>,
    /// Interface of a local kernel/connected route.
    pub ifname: Option<String>,
}

/// A path as shown by queries.
#[derive(Clone, Debug)]
pub struct PathInfo {
    /// `None` for local routes.
    pub peer: Option<PeerId>,
    pub peer_name: Option<String>,
    pub source: RouteSource,
    /// Received ADD-PATH id.
    pub path_id: u32,
    /// Attributes after import policy.
    pub attrs: Attrs,
    /// Attributes as received.
    pub received: Attrs,
    pub best: bool,
    pub multipath: bool,
    pub stale: bool,
    pub llgr_stale: bool,
    /// Why it is not the best path (filled by [`Rib::route`] and [`Rib::lookup`]).
    pub lost_at: Option<Step>,
    /// The interface of a kernel or connected route, or the one a BGP path's next hop
    /// resolves through (when the resolver tells).
    pub interface: Option<String>,
}

/// All paths of one prefix.
#[derive(Clone, Debug)]
pub struct RouteDetail {
    pub prefix: IpNet,
    pub paths: Vec<PathInfo>,
}

/// What [`Rib::peer_info`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub name: String,
    pub address: IpAddr,
    pub remote_as: u32,
    pub peer_type: PeerType,
    pub rr_client: bool,
    /// BGP Identifier, while established.
    pub router_id: Option<Ipv4Addr>,
    pub families: Vec<Family>,
    pub add_path_send: Vec<Family>,
    pub add_path_receive: Vec<Family>,
    /// Families whose routes are held stale (graceful restart).
    pub stale_families: Vec<Family>,
    /// Paths in the Adj-RIB-In (accepted or not).
    pub received_v4: usize,
    pub received_v6: usize,
    /// Of those, accepted by import policy and loop detection.
    pub accepted_v4: usize,
    pub accepted_v6: usize,
    /// Announcements the peer holds (Adj-RIB-Out), not counting queued changes.
    pub advertised_v4: usize,
    pub advertised_v6: usize,
    /// Changes queued for the peer (one per NLRI at most).
    pub queued: usize,
}

/// Counters returned by [`Rib::apply_update`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateStats {
    pub announced: usize,
    pub withdrawn: usize,
    /// Announced but rejected by import policy or loop detection (kept for soft reconfig).
    pub rejected: usize,
    /// NLRI of families not negotiated or not IP unicast.
    pub ignored: usize,
    /// IPv4 NLRI announced with an IPv6 next hop on a session without the RFC 8950
    /// capability: treated as withdrawn (also counted in `withdrawn`).
    pub next_hop_refused: usize,
    /// Announced with a new ADD-PATH path id for a prefix where the peer already has
    /// [`PeerConfig::add_path_receive_limit`] paths: ignored (also counted in `announced`).
    pub over_add_path_limit: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum StalePhase {
    Gr,
    Llgr,
}

#[derive(Clone, Debug)]
struct StaleState {
    family: Family,
    deadline: Instant,
    phase: StalePhase,
}

#[derive(Debug)]
struct PeerState {
    cfg: PeerConfig,
    ebgp: bool,
    session: Option<SessionInfo>,
    /// Router id of the last session (kept for stale paths' tie-breaking).
    router_id: Ipv4Addr,
    /// GR capabilities of the last session, used when it goes down.
    last_gr: Option<GracefulRestart>,
    last_llgr: Vec<LlgrFamily>,
    stale: Vec<StaleState>,
    /// Adj-RIB-Out: what the peer holds and what is queued for it, per NLRI.
    out: AdjOut,
    eor_due: Vec<Family>,
    /// Last export with an unmodifying policy.
    cache: Option<ExportCache>,
    /// Families (bit 0 IPv4, bit 1 IPv6) whose full export ran since the last decision
    /// run: it saw the flags of that run, so prefixes decided next are exported to this
    /// peer even when their selection does not change.
    resync: u8,
    /// Where this peer has paths (peer-wide operations visit these, not the table).
    prefixes: PeerPrefixes,
    /// Families whose End-of-RIB the current session has sent.
    eor_received: SmallVec<[Family; 2]>,
}

/// (input set, source peer) → output set, valid while no attribute set has been freed.
#[derive(Copy, Clone, Debug)]
struct ExportCache {
    input: AttrId,
    /// The output's next hop depends on the prefix's family (RFC 8950: one attribute
    /// set, next hop included, may serve IPv4 and IPv6 prefixes alike).
    ipv4: bool,
    source: PeerIdx,
    output: Option<AttrId>,
    generation: u64,
}

impl PeerState {
    fn peer_type(&self) -> PeerType {
        if self.ebgp {
            PeerType::Ebgp
        } else {
            PeerType::Ibgp
        }
    }
    fn up_for(&self, family: Family) -> Option<&SessionInfo> {
        self.session
            .as_ref()
            .filter(|s| s.families.contains(&family))
    }
}

/// The routing information base. See the crate documentation.
#[derive(Debug)]
pub struct Rib {
    cfg: RibConfig,
    decision: DecisionConfig,
    /// Index 0 is the local pseudo-peer and always `None`.
    peers: Vec<Option<PeerState>>,
    tables: Tables,
    interner: AttrStore,
    local: rustc_hash::FxHashMap<(IpNet, RouteSource), LocalMeta>,
    kernel_infos: KernelInfos,
    fib: VecDeque<FibChange>,
    counters: Counters,
    /// Selection deferral after our own restart (RFC 4724 4.1): its deadline.
    deferral: Option<Instant>,
    /// The last two slices encoded, most recently used first.
    encode_cache: [Option<EncodeCache>; 2],
    /// Interfaces of the BGP next hops in use (for policy `interface` conditions).
    nh_ifaces: NhIfaces,
}

/// Work counters (for benchmarks and tests of what a change costs).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct Counters {
    /// Prefixes run through the decision process.
    pub prefixes_decided: u64,
    /// Per-prefix, per-peer export computations (export rules, policy, Adj-RIB-Out diff).
    pub peer_exports: u64,
    /// Slices of a peer's queue whose UPDATEs were copied from the slice encoded just
    /// before (the same changes for the same codec parameters) instead of encoded again.
    pub encodings_shared: u64,
    /// Import policy evaluations of received routes (once per UPDATE and attribute set
    /// when the policy does not look at prefixes).
    pub import_evaluations: u64,
}

/// Changes queued in one slice that the cache keeps at most (a few bounded slices; an
/// unbounded drain of a whole table is not kept).
const ENCODE_CACHE_MAX: usize = 65_536;

/// A slice encoded lately and its UPDATEs. Route-reflector clients of one export class
/// are handed the same changes in the same order in one decision run (see
/// `ExportClass`), and taken one after the other: the next one's slice is compared with
/// this one and, when equal, gets the same frames (reference-counted, not copied). Two
/// are kept: a client that was the source of one of the changes (and so is not sent it)
/// gets a slice of its own, without evicting the one its neighbours share.
/// Handles are compared, not contents: valid while no attribute set has been freed
/// (the store's generation), during which a handle always names the same set.
#[derive(Debug)]
struct EncodeCache {
    generation: u64,
    codec: bgp_proto::CodecContext,
    changes: Vec<Change>,
    /// The UPDATEs of the changes that could be encoded.
    frames: Vec<Bytes>,
    /// The changes that could not (index into `changes`, why).
    failed: Vec<(usize, bgp_proto::wire::EncodeError)>,
}

/// One of two iterators of peer indices.
enum Either<A, B> {
    All(A),
    Some(B),
}

impl<A: Iterator<Item = usize>, B: Iterator<Item = usize>> Iterator for Either<A, B> {
    type Item = usize;
    fn next(&mut self) -> Option<usize> {
        match self {
            Either::All(a) => a.next(),
            Either::Some(b) => b.next(),
        }
    }
}

fn out_path_id(peer: PeerIdx, path_id: u32) -> u32 {
    if path_id < 256 {
        (path_id << 24) | peer
    } else {
        // Mix; distinct (peer, id) pairs collide with negligible probability.
        let x = (u64::from(path_id) << 24 | u64::from(peer)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (x >> 32) as u32 | 0x8000_0000
    }
}

impl Rib {
    pub fn new(cfg: RibConfig) -> Rib {
        let decision = DecisionConfig {
            local_as: cfg.local_as,
            always_compare_med: cfg.always_compare_med,
            max_paths: cfg.max_paths.max(1),
        };
        Rib {
            cfg,
            decision,
            peers: vec![None],
            tables: Tables::default(),
            interner: AttrStore::new(),
            local: Default::default(),
            kernel_infos: KernelInfos::default(),
            fib: Default::default(),
            counters: Counters::default(),
            deferral: None,
            encode_cache: [None, None],
            nh_ifaces: Default::default(),
        }
    }

    pub fn config(&self) -> &RibConfig {
        &self.cfg
    }

    /// Changes our AS and router id (a daemon reconfigured at run time). Every peer's
    /// iBGP/eBGP class, loop checks and exports depend on them, so this is only allowed
    /// while no peer is configured: remove them all, change, add them again. Local routes
    /// stay; nothing in them depends on either value.
    pub fn set_identity(&mut self, local_as: u32, router_id: Ipv4Addr) -> Result<(), RibError> {
        if self.peers.iter().any(Option::is_some) {
            return Err(RibError::PeersConfigured);
        }
        self.cfg.local_as = local_as;
        self.cfg.router_id = router_id;
        self.decision.local_as = local_as;
        Ok(())
    }

    /// Work done so far (decisions, per-peer exports).
    pub fn counters(&self) -> Counters {
        self.counters
    }

    /// Distinct attribute sets currently interned.
    pub fn attribute_sets(&self) -> usize {
        self.interner.len()
    }

    /// Number of prefixes (IPv4, IPv6) with at least one path.
    pub fn prefix_count(&self) -> (usize, usize) {
        (self.tables.v4.routes.len(), self.tables.v6.routes.len())
    }

    // ---------------------------------------------------------------- peers

    /// Configure a peer. It starts down.
    pub fn add_peer(&mut self, cfg: PeerConfig) -> Result<PeerId, RibError> {
        if self.peers.len() >= MAX_PEERS {
            return Err(RibError::TooManyPeers);
        }
        let ebgp = cfg.remote_as != cfg.local_as.unwrap_or(self.cfg.local_as);
        self.peers.push(Some(PeerState {
            cfg,
            ebgp,
            session: None,
            router_id: Ipv4Addr::UNSPECIFIED,
            last_gr: None,
            last_llgr: Vec::new(),
            stale: Vec::new(),
            out: AdjOut::default(),
            eor_due: Vec::new(),
            cache: None,
            resync: 0,
            prefixes: PeerPrefixes::default(),
            eor_received: SmallVec::new(),
        }));
        Ok(PeerId((self.peers.len() - 1) as u32))
    }

    /// Remove a peer and every route learned from it. Call [`Rib::process`] afterwards.
    pub fn remove_peer(&mut self, id: PeerId) -> Result<(), RibError> {
        self.peer(id)?;
        self.reset_out(id.0, false, false);
        self.drop_paths(id.0, |_| true);
        if let Some(slot) = self.peers.get_mut(id.0 as usize) {
            *slot = None;
        }
        self.check_deferral();
        Ok(())
    }

    /// Empty a peer's Adj-RIB-Out and queue, releasing their attribute references.
    fn reset_out(&mut self, idx: PeerIdx, add_path_v4: bool, add_path_v6: bool) {
        let Rib {
            peers, interner, ..
        } = self;
        if let Some(Some(p)) = peers.get_mut(idx as usize) {
            p.out.release_all(interner);
            p.out = AdjOut::new(add_path_v4, add_path_v6);
            p.cache = None;
        }
    }

    /// The peers, in id order.
    pub fn peers(&self) -> impl Iterator<Item = (PeerId, &PeerConfig, bool)> {
        self.peers.iter().enumerate().filter_map(|(i, p)| {
            p.as_ref()
                .map(|p| (PeerId(i as u32), &p.cfg, p.session.is_some()))
        })
    }

    fn peer(&self, id: PeerId) -> Result<&PeerState, RibError> {
        self.peers
            .get(id.0 as usize)
            .and_then(Option::as_ref)
            .ok_or(RibError::UnknownPeer(id))
    }

    fn peer_mut(&mut self, id: PeerId) -> Result<&mut PeerState, RibError> {
        self.peers
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(RibError::UnknownPeer(id))
    }

    /// Whether the peer is an eBGP peer.
    pub fn peer_type(&self, id: PeerId) -> Result<PeerType, RibError> {
        Ok(self.peer(id)?.peer_type())
    }

    /// The session reached Established. Stale routes from a previous session are kept for
    /// families the new session still covers with forwarding state preserved (RFC 4724 4.2),
    /// dropped otherwise, and wait at most `stale_path_time` for End-of-RIB. The whole
    /// table is queued for the peer, followed by End-of-RIB per family. Call
    /// [`Rib::process`] afterwards.
    pub fn peer_up(
        &mut self,
        id: PeerId,
        session: SessionInfo,
        now: Instant,
    ) -> Result<(), RibError> {
        let stale_time = self.cfg.stale_path_time;
        let p = self.peer_mut(id)?;
        // Stale paths kept from the last session compete and are reflected with the
        // peer's router id (tie-break, ORIGINATOR_ID): a new one means deciding again.
        let new_router_id = p.router_id != session.router_id && !p.stale.is_empty();
        p.router_id = session.router_id;
        p.last_gr = session.graceful_restart.clone();
        p.last_llgr = session.llgr.clone();
        let mut sweep = Vec::new();
        for s in &mut p.stale {
            let kept = session.graceful_restart.as_ref().is_some_and(|gr| {
                gr.families
                    .iter()
                    .any(|f| f.family == s.family && f.forwarding_preserved)
            }) || (s.phase == StalePhase::Llgr
                && session
                    .llgr
                    .iter()
                    .any(|f| f.family == s.family && f.forwarding_preserved));
            if kept && session.families.contains(&s.family) {
                if s.phase == StalePhase::Gr {
                    s.deadline = now + stale_time;
                }
            } else {
                sweep.push(s.family);
            }
        }
        p.stale.retain(|s| !sweep.contains(&s.family));
        p.eor_due = session.families.clone();
        p.eor_received.clear();
        let ap4 = session.codec.sends_path_id(Family::IPV4_UNICAST);
        let ap6 = session.codec.sends_path_id(Family::IPV6_UNICAST);
        p.session = Some(session);
        self.reset_out(id.0, ap4, ap6);
        for f in sweep {
            self.drop_paths(id.0, |fam| fam == f);
        }
        if new_router_id {
            // Cached exports of its routes name the old one.
            for p in self.peers.iter_mut().flatten() {
                p.cache = None;
            }
            self.touch_peer_paths::<Ipv4Net>(id.0);
            self.touch_peer_paths::<Ipv6Net>(id.0);
        }
        self.full_export::<Ipv4Net>(id.0);
        self.full_export::<Ipv6Net>(id.0);
        // A peer without graceful restart is not waited for: it may complete the wait.
        self.check_deferral();
        Ok(())
    }

    /// The session left Established. With `graceful` (the peer advertised graceful restart
    /// and the session ended by a transport failure, or by a NOTIFICATION with RFC 8538's
    /// N bit) routes of the families it covered become stale and stay usable until the
    /// returned deadline (restart time); otherwise they are removed. Call
    /// [`Rib::process`] afterwards.
    pub fn peer_down(
        &mut self,
        id: PeerId,
        graceful: bool,
        now: Instant,
    ) -> Result<Option<Instant>, RibError> {
        let p = self.peer_mut(id)?;
        let Some(session) = p.session.take() else {
            return Ok(None);
        };
        p.eor_due.clear();
        self.reset_out(id.0, false, false);
        let Ok(p) = self.peer_mut(id) else {
            return Ok(None);
        };
        let mut keep: Vec<StaleState> = Vec::new();
        if graceful {
            let gr = session.graceful_restart.as_ref();
            for &family in &session.families {
                let in_gr = gr.is_some_and(|g| g.families.iter().any(|f| f.family == family));
                let llgr = session
                    .llgr
                    .iter()
                    .find(|f| f.family == family && f.stale_time > 0);
                let restart = gr.map_or(0, |g| u64::from(g.restart_time));
                if in_gr && restart > 0 {
                    keep.push(StaleState {
                        family,
                        deadline: now + Duration::from_secs(restart),
                        phase: StalePhase::Gr,
                    });
                } else if let Some(l) = llgr {
                    // RFC 9494 4.2: a zero restart time goes straight to the long-lived phase.
                    keep.push(StaleState {
                        family,
                        deadline: now + Duration::from_secs(u64::from(l.stale_time)),
                        phase: StalePhase::Llgr,
                    });
                }
            }
        }
        // Families still stale from an earlier session stay as they are.
        p.stale
            .retain(|s| !keep.iter().any(|k| k.family == s.family));
        let kept_families: Vec<(Family, bool)> = keep
            .iter()
            .map(|k| (k.family, k.phase == StalePhase::Llgr))
            .chain(
                p.stale
                    .iter()
                    .map(|s| (s.family, s.phase == StalePhase::Llgr)),
            )
            .collect();
        p.stale.extend(keep);
        let deadline = p.stale.iter().map(|s| s.deadline).min();
        self.drop_paths(id.0, |f| !kept_families.iter().any(|k| k.0 == f));
        for (f, llgr) in kept_families {
            if llgr {
                self.enter_llgr(id.0, f);
            } else {
                self.mark_stale(id.0, f);
            }
        }
        Ok(deadline)
    }

    /// End-of-RIB received from the peer for `family`: sweep its stale routes (RFC 4724 4.2).
    pub fn end_of_rib(&mut self, id: PeerId, family: Family) -> Result<(), RibError> {
        let p = self.peer_mut(id)?;
        if p.session.is_some() && !p.eor_received.contains(&family) {
            p.eor_received.push(family);
        }
        let had_stale = p.stale.iter().any(|s| s.family == family);
        p.stale.retain(|s| s.family != family);
        // Without a stale phase for this family there is nothing to sweep (and no table scan).
        if had_stale {
            self.sweep_stale(id.0, family);
        }
        self.check_deferral();
        Ok(())
    }

    /// Start selection deferral as the restarting speaker (RFC 4724 4.1): call it after
    /// our own restart, with the peers configured and before their sessions come up
    /// (announce the Restart State bit in our capability). Routes received meanwhile are
    /// stored and decided and the FIB changes flow as usual, but nothing is advertised:
    /// [`Rib::peers_with_output`] is empty and the `take_*` calls return nothing. The
    /// wait ends once every configured peer is established and has sent End-of-RIB for
    /// each of its families, except peers that did not advertise graceful restart or are
    /// restarting themselves (Restart State bit), or at `deadline` (the
    /// Selection_Deferral_Timer; [`Rib::next_deadline`] includes it and
    /// [`Rib::handle_timeout`] ends the wait). Each established peer then receives the
    /// whole table followed by End-of-RIB. Call [`Rib::process`] after the calls that
    /// may end it ([`Rib::end_of_rib`], [`Rib::peer_up`], [`Rib::remove_peer`],
    /// [`Rib::handle_timeout`]) as after any other change.
    pub fn defer_selection(&mut self, deadline: Instant) {
        self.deferral = Some(deadline);
        self.check_deferral();
    }

    /// Whether outbound advertisement is held back by selection deferral.
    pub fn is_deferring(&self) -> bool {
        self.deferral.is_some()
    }

    /// RFC 4724 4.1: every peer we wait for has sent End-of-RIB for all its families.
    fn deferral_complete(&self) -> bool {
        self.peers.iter().flatten().all(|p| match &p.session {
            None => false,
            Some(s) => match &s.graceful_restart {
                Some(gr) if !gr.restart_state => {
                    s.families.iter().all(|f| p.eor_received.contains(f))
                }
                // Excluded: no graceful restart, or restarting too.
                _ => true,
            },
        })
    }

    fn check_deferral(&mut self) {
        if self.deferral.is_some() && self.deferral_complete() {
            self.end_deferral();
        }
    }

    /// Selection is done: every established peer gets the whole table (its End-of-RIB is
    /// still due since its session came up).
    fn end_deferral(&mut self) {
        self.deferral = None;
        for idx in 1..self.peers.len() as PeerIdx {
            let Some(Some(p)) = self.peers.get(idx as usize) else {
                continue;
            };
            let Some(s) = &p.session else {
                continue;
            };
            let ap4 = s.codec.sends_path_id(Family::IPV4_UNICAST);
            let ap6 = s.codec.sends_path_id(Family::IPV6_UNICAST);
            self.reset_out(idx, ap4, ap6);
            self.full_export::<Ipv4Net>(idx);
            self.full_export::<Ipv6Net>(idx);
        }
    }

    /// The earliest graceful-restart deadline, if any.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.peers
            .iter()
            .flatten()
            .flat_map(|p| p.stale.iter().map(|s| s.deadline))
            .chain(self.deferral)
            .min()
    }

    /// Expire graceful-restart timers due at `now`: GR-stale routes enter the long-lived
    /// phase where the peer supports it (RFC 9494), otherwise they are removed.
    pub fn handle_timeout(&mut self, now: Instant) {
        // RFC 4724 4.1: the Selection_Deferral_Timer expired.
        if self.deferral.is_some_and(|d| d <= now) {
            self.end_deferral();
        }
        for idx in 1..self.peers.len() {
            let Some(p) = self.peers.get_mut(idx).and_then(Option::as_mut) else {
                continue;
            };
            let mut to_llgr = Vec::new();
            let mut to_drop = Vec::new();
            for s in &mut p.stale {
                if s.deadline > now {
                    continue;
                }
                let llgr = p
                    .last_llgr
                    .iter()
                    .find(|f| f.family == s.family && f.stale_time > 0);
                match (&s.phase, llgr) {
                    (StalePhase::Gr, Some(l)) if p.session.is_none() => {
                        s.phase = StalePhase::Llgr;
                        s.deadline = now + Duration::from_secs(u64::from(l.stale_time));
                        to_llgr.push(s.family);
                    }
                    _ => to_drop.push(s.family),
                }
            }
            p.stale.retain(|s| !to_drop.contains(&s.family));
            let idx = idx as u32;
            for f in to_drop {
                self.sweep_stale(idx, f);
            }
            for f in to_llgr {
                self.enter_llgr(idx, f);
            }
        }
    }

    /// Replace a peer's policies (soft reconfiguration): received routes are re-run through
    /// the new import policy from the stored Adj-RIB-In and everything is re-exported
    /// through the new export policy; only differences reach the peer. Call
    /// [`Rib::process`] afterwards.
    pub fn set_policies(
        &mut self,
        id: PeerId,
        import: Arc<CompiledPolicy>,
        export: Arc<CompiledPolicy>,
    ) -> Result<(), RibError> {
        let p = self.peer_mut(id)?;
        p.cfg.import = import;
        p.cfg.export = export;
        p.cache = None;
        self.reimport::<Ipv4Net>(id.0);
        self.reimport::<Ipv6Net>(id.0);
        if self.peer(id)?.session.is_some() {
            self.full_export::<Ipv4Net>(id.0);
            self.full_export::<Ipv6Net>(id.0);
        }
        Ok(())
    }

    /// Change a peer's [`PeerConfig::add_path_receive_limit`] (configuration reload). It
    /// applies to paths received from then on; paths already held past a lowered limit
    /// stay until the peer withdraws them.
    pub fn set_add_path_receive_limit(&mut self, id: PeerId, limit: usize) -> Result<(), RibError> {
        self.peer_mut(id)?.cfg.add_path_receive_limit = limit;
        Ok(())
    }

    /// The peer asked for a route refresh (RFC 2918): queue everything it holds in
    /// `family` again. Returns false when the request is ignored because the previous
    /// one is still being answered for that family (its answer already covers the whole
    /// Adj-RIB-Out, and queueing it again would only repeat the work: a peer looping
    /// refreshes without reading costs nothing more). During selection deferral there is
    /// nothing to do: the whole table goes out when it ends.
    pub fn route_refresh(&mut self, id: PeerId, family: Family) -> Result<bool, RibError> {
        let deferring = self.deferral.is_some();
        let Rib {
            peers, interner, ..
        } = self;
        let p = peers
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(RibError::UnknownPeer(id))?;
        if p.session.is_none() {
            return Err(RibError::PeerDown(id));
        }
        if deferring {
            // The whole table goes out when the deferral ends.
            return Ok(true);
        }
        Ok(p.out.refresh(family, interner))
    }

    // ---------------------------------------------------------------- inbound

    /// Apply a decoded UPDATE from `peer` to its Adj-RIB-In. With `treat_as_withdraw`
    /// (RFC 7606) the announced NLRI are withdrawn instead. Call [`Rib::process`] afterwards
    /// (once per update or per batch).
    pub fn apply_update(
        &mut self,
        id: PeerId,
        update: &Update,
        treat_as_withdraw: bool,
    ) -> Result<UpdateStats, RibError> {
        self.apply(id, update, treat_as_withdraw, None, None)
    }

    /// [`Rib::apply_update`] followed by [`Rib::process`], with the same result; each prefix
    /// of the UPDATE is decided and exported right after it is stored (output in UPDATE
    /// order rather than prefix order). Measured no faster than the batched pair here.
    /// [`Rib::apply_update`], resolving the next hops' interfaces for the import policy
    /// with `resolver` (without running the decision process).
    pub fn apply_update_resolved(
        &mut self,
        id: PeerId,
        update: &Update,
        treat_as_withdraw: bool,
        resolver: &dyn NextHopResolver,
    ) -> Result<UpdateStats, RibError> {
        self.apply(id, update, treat_as_withdraw, None, Some(resolver))
    }

    pub fn apply_update_and_process(
        &mut self,
        id: PeerId,
        update: &Update,
        treat_as_withdraw: bool,
        resolver: &dyn NextHopResolver,
    ) -> Result<UpdateStats, RibError> {
        let stats = self.apply(
            id,
            update,
            treat_as_withdraw,
            Some(resolver),
            Some(resolver),
        )?;
        self.process(resolver);
        Ok(stats)
    }

    fn process_now<P: Prefix>(
        &mut self,
        pfx: P,
        resolver: &dyn NextHopResolver,
        always: &[PeerIdx],
    ) {
        if let Some(d) = P::table_mut(&mut self.tables).dirty.remove(&pfx) {
            self.process_prefix(pfx, d, resolver, always);
        }
    }

    fn apply(
        &mut self,
        id: PeerId,
        update: &Update,
        treat_as_withdraw: bool,
        eager: Option<&dyn NextHopResolver>,
        interfaces: Option<&dyn NextHopResolver>,
    ) -> Result<UpdateStats, RibError> {
        let p = self.peer(id)?;
        let Some(session) = p.session.as_ref() else {
            return Err(RibError::PeerDown(id));
        };
        let negotiated = |f: Family| session.families.contains(&f);
        let ext_nh_v4 = session.extended_next_hop_v4;
        let mut stats = UpdateStats::default();
        let mut withdraw_v4: SmallVec<[Nlri; 8]> = SmallVec::new();
        let mut withdraw_v6: SmallVec<[Nlri; 8]> = SmallVec::new();
        let mut push_withdraw = |n: &Nlri, stats: &mut UpdateStats| match n.prefix {
            IpNet::V4(_) if negotiated(Family::IPV4_UNICAST) => withdraw_v4.push(*n),
            IpNet::V6(_) if negotiated(Family::IPV6_UNICAST) => withdraw_v6.push(*n),
            _ => stats.ignored += 1,
        };
        for n in &update.withdrawn {
            push_withdraw(n, &mut stats);
        }
        if let Some(u) = &update.mp_unreach {
            match &u.nlri {
                MpNlri::Unicast(v) if u.family.is_unicast_ip() => {
                    for n in v {
                        push_withdraw(n, &mut stats);
                    }
                }
                MpNlri::Unicast(v) => stats.ignored += v.len(),
                MpNlri::Opaque(_) => stats.ignored += 1,
            }
        }
        // Announcements: (family, next hop, nlri).
        let mut announce: SmallVec<[(Option<MpNextHop>, &[Nlri]); 2]> = SmallVec::new();
        if !update.nlri.is_empty() {
            announce.push((update.attributes.next_hop.map(MpNextHop::V4), &update.nlri));
        }
        // IPv4 NLRI with an IPv6 next hop (RFC 8950 3) without the capability negotiated
        // (RFC 8950 4 forbids sending them): the NLRI were parsed, so they are withdrawn
        // rather than resetting the session (the RFC 7606 2 treat-as-withdraw approach).
        let mut refused: &[Nlri] = &[];
        if let Some(r) = &update.mp_reach {
            match &r.nlri {
                MpNlri::Unicast(v)
                    if r.family == Family::IPV4_UNICAST
                        && matches!(r.next_hop, MpNextHop::V6 { .. })
                        && !ext_nh_v4 =>
                {
                    refused = v
                }
                MpNlri::Unicast(v) if r.family.is_unicast_ip() => {
                    announce.push((Some(r.next_hop.clone()), v))
                }
                MpNlri::Unicast(v) => stats.ignored += v.len(),
                MpNlri::Opaque(_) => stats.ignored += 1,
            }
        }
        for n in refused {
            stats.next_hop_refused += 1;
            push_withdraw(n, &mut stats);
        }
        if treat_as_withdraw {
            for (_, v) in &announce {
                for n in v.iter() {
                    push_withdraw(n, &mut stats);
                }
            }
            announce.clear();
        }
        stats.withdrawn = withdraw_v4.len() + withdraw_v6.len();
        let (mut always_v4, mut always_v6) = (SmallVec::new(), SmallVec::new());
        if eager.is_some() {
            always_v4 = self.export_always::<Ipv4Net>();
            always_v6 = self.export_always::<Ipv6Net>();
        }
        for n in &withdraw_v4 {
            // Host bits beyond the length are not part of the prefix (RFC 4271 4.3).
            if let Some(pfx) = Ipv4Net::from_net(n.prefix.trunc()) {
                self.remove_path(pfx, id.0, n.path_id.unwrap_or(0));
                if let Some(r) = eager {
                    self.process_now(pfx, r, &always_v4);
                }
            }
        }
        for n in &withdraw_v6 {
            if let Some(pfx) = Ipv6Net::from_net(n.prefix.trunc()) {
                self.remove_path(pfx, id.0, n.path_id.unwrap_or(0));
                if let Some(r) = eager {
                    self.process_now(pfx, r, &always_v6);
                }
            }
        }
        if announce.is_empty() {
            return Ok(stats);
        }
        let Some(p) = self.peers.get(id.0 as usize).and_then(Option::as_ref) else {
            return Err(RibError::UnknownPeer(id));
        };
        let loop_found = is_loop(&self.cfg, &update.attributes, p);
        let ebgp = p.ebgp;
        let limit = p.cfg.add_path_receive_limit.max(1);
        let families_ok: SmallVec<[Family; 2]> = p
            .session
            .as_ref()
            .map(|s| s.families.iter().copied().collect())
            .unwrap_or_default();
        for (nh, nlri) in announce {
            let mut attrs = update.attributes.clone();
            attrs.next_hop = None;
            if ebgp {
                // RFC 4271 5.1.5: LOCAL_PREF from an external peer is ignored.
                attrs.local_pref = None;
            }
            let received = self.interner.intern(RouteAttrs {
                attrs,
                next_hop: nh,
            });
            // The outcome for these NLRI when the policy does not look at prefixes.
            let mut same_for_all: Option<(u8, Option<AttrId>)> = None;
            for n in nlri {
                let family = match n.prefix {
                    IpNet::V4(_) => Family::IPV4_UNICAST,
                    IpNet::V6(_) => Family::IPV6_UNICAST,
                };
                if !families_ok.contains(&family) {
                    stats.ignored += 1;
                    continue;
                }
                stats.announced += 1;
                let Some(p) = self.peers.get(id.0 as usize).and_then(Option::as_ref) else {
                    return Err(RibError::UnknownPeer(id));
                };
                // Host bits beyond the length are not part of the prefix (RFC 4271 4.3).
                let prefix = match n.prefix {
                    IpNet::V4(p) => IpNet::V4(trunc_v4(p)),
                    IpNet::V6(p) => IpNet::V6(p.trunc()),
                };
                let (flags, modified) = match same_for_all {
                    Some(outcome) => outcome,
                    None => {
                        self.counters.import_evaluations += 1;
                        let nh = self.interner.get(received).next_hop_addr();
                        if let (Some(r), Some(a)) = (interfaces, nh) {
                            if r.knows_interfaces() && !self.nh_ifaces.contains_key(&a) {
                                self.nh_ifaces.insert(a, r.interface(a));
                            }
                        }
                        let iface = iface_of(&self.nh_ifaces, nh);
                        let outcome =
                            import_eval(p, &mut self.interner, prefix, received, loop_found, iface);
                        // One next hop (so one interface) for all these NLRI: only the
                        // prefix can make the outcome differ.
                        if !p.cfg.import.reads_prefix() {
                            same_for_all = Some(outcome);
                        }
                        outcome
                    }
                };
                if flags != 0 {
                    stats.rejected += 1;
                }
                let path = Path::new(
                    id.0,
                    n.path_id.unwrap_or(0),
                    self.interner.retain(received),
                    modified.map(|m| self.interner.retain(m)),
                    flags,
                );
                let Rib {
                    tables,
                    interner,
                    peers,
                    ..
                } = self;
                let stored = match prefix {
                    IpNet::V4(pfx) => insert_path(tables, interner, peers, pfx, path, limit),
                    IpNet::V6(pfx) => insert_path(tables, interner, peers, pfx, path, limit),
                };
                if !stored {
                    // RFC 7911 sets no limit; past ours the new path id is ignored.
                    stats.over_add_path_limit += 1;
                    continue;
                }
                if let Some(r) = eager {
                    match prefix {
                        IpNet::V4(pfx) => self.process_now(pfx, r, &always_v4),
                        IpNet::V6(pfx) => self.process_now(pfx, r, &always_v6),
                    }
                }
            }
        }
        Ok(stats)
    }

    fn remove_path<P: Prefix>(&mut self, pfx: P, peer: PeerIdx, path_id: u32) {
        let t = P::table_mut(&mut self.tables);
        let Some(dest) = t.routes.get_mut(&pfx) else {
            return;
        };
        let Some(i) = t.large.position(pfx, dest, peer, path_id) else {
            return;
        };
        t.dirty.insert_with(pfx, || crate::table::Dirty {
            old: selection_signature(dest),
            ..crate::table::Dirty::default()
        });
        if let Some(gone) = t.large.remove(pfx, dest, i) {
            release_path(&mut self.interner, &gone);
            if let Some(Some(p)) = self.peers.get_mut(peer as usize) {
                P::log_mut(&mut p.prefixes).removed(1, usize::from(gone.is_rejected()));
            }
        }
    }

    /// The prefixes where the peer has paths, each once, sorted (see `PrefixLog`).
    fn peer_prefixes<P: Prefix>(&mut self, idx: PeerIdx) -> Vec<P> {
        let t = P::table(&self.tables);
        match self.peers.get_mut(idx as usize) {
            Some(Some(p)) => P::log_mut(&mut p.prefixes).prefixes(&t.routes, idx),
            _ => Vec::new(),
        }
    }

    fn reimport<P: Prefix>(&mut self, idx: PeerIdx) {
        let keys: Vec<P> = self.peer_prefixes(idx);
        let Some(Some(peer)) = self.peers.get_mut(idx as usize).map(Option::take) else {
            return;
        };
        let mut peer = peer;
        let Rib {
            cfg,
            tables,
            interner,
            nh_ifaces,
            ..
        } = self;
        let t = P::table_mut(tables);
        for k in keys {
            t.touch(k);
            let Some(d) = t.routes.get_mut(&k) else {
                continue;
            };
            // One pass over the prefix's paths, however many the peer has there.
            for x in d.iter_mut().filter(|x| x.peer() == idx) {
                let received = interner.get(x.attrs);
                let lp = is_loop(cfg, &received.attrs, &peer);
                let iface = iface_of(nh_ifaces, received.next_hop_addr());
                let (flags, modified) = import_eval(&peer, interner, k.into(), x.attrs, lp, iface);
                let modified = modified.map(|m| interner.retain(m));
                let was = x.is_rejected();
                x.clear_flags(flag::REJECTED | flag::LOOP);
                x.set_flags(flags);
                P::log_mut(&mut peer.prefixes).changed(was, x.is_rejected());
                if let Some(o) = std::mem::replace(&mut x.modified, modified) {
                    interner.release(o);
                }
            }
        }
        if let Some(slot) = self.peers.get_mut(idx as usize) {
            *slot = Some(peer);
        }
    }

    /// Remove the peer's paths in families selected by `which`.
    fn drop_paths(&mut self, idx: PeerIdx, which: impl Fn(Family) -> bool) {
        if which(Family::IPV4_UNICAST) {
            self.retain_peer_paths::<Ipv4Net>(idx, |_, _| false);
        }
        if which(Family::IPV6_UNICAST) {
            self.retain_peer_paths::<Ipv6Net>(idx, |_, _| false);
        }
    }

    fn sweep_stale(&mut self, idx: PeerIdx, family: Family) {
        if family == Family::IPV4_UNICAST {
            self.retain_peer_paths::<Ipv4Net>(idx, |p, _| !p.has(flag::STALE | flag::LLGR));
        } else if family == Family::IPV6_UNICAST {
            self.retain_peer_paths::<Ipv6Net>(idx, |p, _| !p.has(flag::STALE | flag::LLGR));
        }
    }

    /// Keep the peer's paths for which `keep` holds; other peers' paths are untouched.
    fn retain_peer_paths<P: Prefix>(
        &mut self,
        idx: PeerIdx,
        keep: impl Fn(&Path, &AttrStore) -> bool,
    ) {
        let keys: Vec<P> = self.peer_prefixes(idx);
        let Rib {
            tables,
            interner,
            peers,
            ..
        } = self;
        let t = P::table_mut(tables);
        let mut gone: Vec<Path> = Vec::new();
        for k in keys {
            let drop = t
                .routes
                .get(&k)
                .is_some_and(|d| d.iter().any(|x| x.peer() == idx && !keep(x, interner)));
            if !drop {
                continue;
            }
            t.touch(k);
            t.large.forget(k);
            if let Some(d) = t.routes.get_mut(&k) {
                d.retain(|x| x.peer() != idx || keep(x, interner), |x| gone.push(x));
            }
        }
        for x in &gone {
            release_path(interner, x);
        }
        let rejected = gone.iter().filter(|x| x.is_rejected()).count();
        if let Some(Some(p)) = peers.get_mut(idx as usize) {
            P::log_mut(&mut p.prefixes).removed(gone.len(), rejected);
        }
    }

    /// Mark every prefix holding a path of the peer for a decision and a full export.
    fn touch_peer_paths<P: Prefix>(&mut self, idx: PeerIdx) {
        let keys: Vec<P> = self.peer_prefixes(idx);
        let t = P::table_mut(&mut self.tables);
        for k in keys {
            t.touch(k);
            if let Some(d) = t.dirty.get_mut(&k) {
                d.force_export = true;
            }
        }
    }

    fn mark_stale(&mut self, idx: PeerIdx, family: Family) {
        fn go<P: Prefix>(rib: &mut Rib, idx: PeerIdx) {
            let keys: Vec<P> = rib.peer_prefixes(idx);
            let t = P::table_mut(&mut rib.tables);
            for k in keys {
                if let Some(d) = t.routes.get_mut(&k) {
                    for x in d.iter_mut().filter(|x| x.peer() == idx) {
                        x.set_flags(flag::STALE);
                    }
                }
            }
        }
        if family == Family::IPV4_UNICAST {
            go::<Ipv4Net>(self, idx);
        } else if family == Family::IPV6_UNICAST {
            go::<Ipv6Net>(self, idx);
        }
    }

    /// RFC 9494 4.3: attach LLGR_STALE, drop routes carrying NO_LLGR, make the rest least
    /// preferred.
    fn enter_llgr(&mut self, idx: PeerIdx, family: Family) {
        if family == Family::IPV4_UNICAST {
            self.enter_llgr_family::<Ipv4Net>(idx);
        } else if family == Family::IPV6_UNICAST {
            self.enter_llgr_family::<Ipv6Net>(idx);
        }
    }

    fn enter_llgr_family<P: Prefix>(&mut self, idx: PeerIdx) {
        self.retain_peer_paths::<P>(idx, |x, store| {
            !store
                .get(x.attrs)
                .attrs
                .communities
                .contains(&Community::NO_LLGR)
        });
        let keys: Vec<P> = self.peer_prefixes(idx);
        let Rib {
            tables, interner, ..
        } = self;
        let t = P::table_mut(tables);
        let keys: Vec<P> = keys
            .into_iter()
            .filter(|k| {
                t.routes
                    .get(k)
                    .is_some_and(|d| d.iter().any(|x| x.peer() == idx && !x.has(flag::LLGR)))
            })
            .collect();
        // The same set with LLGR_STALE attached, holding one reference.
        let mut add = |a: AttrId| {
            let mut r = interner.get(a).clone();
            if !r.attrs.communities.contains(&Community::LLGR_STALE) {
                r.attrs.communities.push(Community::LLGR_STALE);
            }
            let n = interner.intern(r);
            interner.retain(n);
            interner.release(a);
            n
        };
        for k in keys {
            t.touch(k);
            if let Some(d) = t.routes.get_mut(&k) {
                for x in d
                    .iter_mut()
                    .filter(|x| x.peer() == idx && !x.has(flag::LLGR))
                {
                    x.attrs = add(x.attrs);
                    x.modified = x.modified.map(&mut add);
                    x.set_flags(flag::STALE | flag::LLGR);
                }
            }
        }
    }

    // ---------------------------------------------------------------- local routes

    /// Originate (or replace) a static, kernel or connected route. It competes in the
    /// decision process and is exported through each peer's export policy.
    pub fn originate(&mut self, route: LocalRoute) -> Result<(), RibError> {
        if route.source == RouteSource::Bgp {
            return Err(RibError::BadLocalSource);
        }
        let mut attrs = route.attrs;
        attrs.next_hop = None;
        if attrs.origin.is_none() {
            attrs.origin = Some(match route.source {
                RouteSource::Kernel => Origin::Incomplete,
                _ => Origin::Igp,
            });
        }
        // RFC 4271 5.1.2: a locally originated route carries an empty AS_PATH (towards
        // internal peers as is; eBGP export prepends our AS). Without it receivers treat
        // the UPDATE as withdraw (RFC 7606 3 d, missing well-known mandatory attribute).
        attrs.as_path.get_or_insert_with(Default::default);
        let next_hop = route.next_hop.map(|a| match a {
            IpAddr::V4(v4) => MpNextHop::V4(v4),
            IpAddr::V6(v6) => MpNextHop::V6 {
                global: v6,
                link_local: None,
            },
        });
        let a = self.interner.intern(RouteAttrs { attrs, next_hop });
        let a = self.interner.retain(a);
        self.local.insert(
            (route.prefix.trunc(), route.source),
            LocalMeta {
                kernel: self.kernel_infos.intern(route.kernel),
                no_install: route.no_install,
            },
        );
        let path = Path::new(LOCAL_PEER, local_code(route.source), a, None, 0);
        match route.prefix {
            IpNet::V4(p) => {
                let p = p.trunc();
                insert_path(
                    &mut self.tables,
                    &mut self.interner,
                    &mut self.peers,
                    p,
                    path,
                    usize::MAX,
                );
                if let Some(d) = self.tables.v4.dirty.get_mut(&p) {
                    d.force_fib = true;
                    d.force_export = true;
                }
            }
            IpNet::V6(p) => {
                let p = p.trunc();
                insert_path(
                    &mut self.tables,
                    &mut self.interner,
                    &mut self.peers,
                    p,
                    path,
                    usize::MAX,
                );
                if let Some(d) = self.tables.v6.dirty.get_mut(&p) {
                    d.force_fib = true;
                    d.force_export = true;
                }
            }
        }
        Ok(())
    }

    /// Withdraw a local route.
    pub fn withdraw_local(&mut self, prefix: IpNet, source: RouteSource) {
        self.local.remove(&(prefix.trunc(), source));
        let code = local_code(source);
        match prefix {
            IpNet::V4(p) => self.remove_path(p.trunc(), LOCAL_PEER, code),
            IpNet::V6(p) => self.remove_path(p.trunc(), LOCAL_PEER, code),
        }
    }

    // ---------------------------------------------------------------- decision + outbound

    /// Run the decision process for every prefix changed since the last call, update the
    /// Loc-RIB flags, queue FIB changes ([`Rib::poll_fib`]) and per-peer outbound changes
    /// ([`Rib::take_output`] / [`Rib::take_encoded`]).
    pub fn process(&mut self, resolver: &dyn NextHopResolver) {
        self.process_family::<Ipv4Net>(resolver);
        self.process_family::<Ipv6Net>(resolver);
        // No prefix waits for a decision now: unreferenced attribute sets can go (and their
        // handles be reused) without confusing a pending selection comparison.
        self.interner.maintain();
    }

    /// The next hop resolver's answers changed (IGP change): re-run the decision for every
    /// prefix.
    pub fn resolver_changed(&mut self, resolver: &dyn NextHopResolver) {
        fn all<P: Prefix>(t: &mut Tables) {
            let t = P::table_mut(t);
            let keys: Vec<P> = t.routes.keys().copied().collect();
            for k in keys {
                t.touch(k);
            }
        }
        all::<Ipv4Net>(&mut self.tables);
        all::<Ipv6Net>(&mut self.tables);
        self.nh_ifaces.clear();
        self.process(resolver);
    }

    /// Replace the FIB policy (configuration reload): every Loc-RIB route is handed to the
    /// FIB again through the new policy. Call [`Rib::process`] afterwards.
    pub fn set_fib_policy(&mut self, policy: Arc<CompiledPolicy>) {
        self.cfg.fib_policy = policy;
        fn all<P: Prefix>(t: &mut Tables) {
            let t = P::table_mut(t);
            let keys: Vec<P> = t.routes.keys().copied().collect();
            for k in keys {
                t.touch(k);
                if let Some(d) = t.dirty.get_mut(&k) {
                    d.force_fib = true;
                }
            }
        }
        all::<Ipv4Net>(&mut self.tables);
        all::<Ipv6Net>(&mut self.tables);
    }

    /// Peers that need a prefix's export recomputed even when its selection did not
    /// change: those receiving every eligible path (ADD-PATH "all": a non-selected path
    /// may have changed) and those whose full export ran since the last decision run.
    fn export_always<P: Prefix>(&self) -> SmallVec<[PeerIdx; 4]> {
        self.peers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                let p = p.as_ref()?;
                let s = p.up_for(P::FAMILY)?;
                let all =
                    p.cfg.add_path_send == AddPathSend::All && s.codec.sends_path_id(P::FAMILY);
                (all || p.resync & P::BIT != 0).then_some(i as PeerIdx)
            })
            .collect()
    }

    fn process_family<P: Prefix>(&mut self, resolver: &dyn NextHopResolver) {
        let always = self.export_always::<P>();
        let t = P::table_mut(&mut self.tables);
        // First-touch order: deterministic for a given sequence of calls. (Also clears the
        // slots `apply_update_and_process` already took out.)
        let mut list = t.dirty.take_all();
        for (pfx, d) in list.drain(..) {
            if let Some(d) = d {
                self.process_prefix(pfx, d, resolver, &always);
            }
        }
        P::table_mut(&mut self.tables).dirty.recycle(list);
        for &i in &always {
            if let Some(Some(p)) = self.peers.get_mut(i as usize) {
                p.resync &= !P::BIT;
            }
        }
    }

    /// Decide one prefix, queue its FIB change and its exports. The export to every peer
    /// runs only when the selected paths changed (or `force_export`); otherwise only the
    /// peers in `always` are looked at: a route reflector refusing the other reflector's
    /// copy of a client route (CLUSTER_LIST loop) or receiving a duplicate does no
    /// per-peer work.
    fn process_prefix<P: Prefix>(
        &mut self,
        pfx: P,
        d: crate::table::Dirty,
        resolver: &dyn NextHopResolver,
        always: &[PeerIdx],
    ) {
        let Rib {
            cfg,
            decision,
            peers,
            tables,
            interner,
            local,
            fib,
            counters,
            deferral,
            nh_ifaces,
            ..
        } = self;
        counters.prefixes_decided += 1;
        let t = P::table_mut(tables);
        let mut no_dest = Dest::default();
        let dest = match t.routes.get_mut(&pfx) {
            Some(d) if !d.is_empty() => d,
            Some(_) => {
                t.routes.remove(&pfx);
                t.large.forget(pfx);
                &mut no_dest
            }
            None => &mut no_dest,
        };
        run_decision(dest, peers, decision, resolver, interner);
        if resolver.knows_interfaces() {
            for x in dest.iter().filter(|x| x.peer() != LOCAL_PEER) {
                if let Some(a) = interner.get(x.effective()).next_hop_addr() {
                    nh_ifaces.entry(a).or_insert_with(|| resolver.interface(a));
                }
            }
        }
        let nh_ifaces: &NhIfaces = nh_ifaces;
        let new_sig = selection_signature(dest);
        if new_sig != d.old || d.force_fib {
            let change = fib_entry(pfx.into(), dest, peers, local, nh_ifaces, cfg, interner);
            match change {
                Some(r) => fib.push_back(FibChange::Upsert(r)),
                None if !d.old.is_empty() => fib.push_back(FibChange::Remove(pfx.into())),
                None => {}
            }
        }
        if deferral.is_some() {
            // RFC 4724 4.1: nothing is advertised yet; the table goes out at the end.
            return;
        }
        let dest: &Dest = dest;
        let everyone = new_sig != d.old || d.force_export;
        let targets = if everyone {
            Either::All(1..peers.len())
        } else {
            Either::Some(always.iter().map(|&i| i as usize))
        };
        // Peers alike for the export transformation share its result (a reflector tells
        // its clients the same thing).
        let mut shared = None;
        for ti in targets {
            let desired = match peers.get(ti).and_then(Option::as_ref) {
                Some(target) if target.up_for(P::FAMILY).is_some() => {
                    let mut cache = None;
                    let r = desired_for(
                        pfx,
                        dest,
                        ti as PeerIdx,
                        target,
                        peers,
                        local,
                        nh_ifaces,
                        cfg,
                        interner,
                        &mut cache,
                        &mut shared,
                    );
                    if let Some(Some(target)) = peers.get_mut(ti) {
                        if let Some(c) = cache {
                            target.cache = Some(c);
                        }
                    }
                    r
                }
                _ => continue,
            };
            counters.peer_exports += 1;
            if let Some(Some(target)) = peers.get_mut(ti) {
                diff_out(pfx, target, desired, interner);
            }
        }
    }

    fn full_export<P: Prefix>(&mut self, idx: PeerIdx) {
        if self.deferral.is_some() {
            return;
        }
        let Rib {
            cfg,
            peers,
            tables,
            interner,
            local,
            nh_ifaces,
            ..
        } = self;
        let Some(target) = peers.get(idx as usize).and_then(Option::as_ref) else {
            return;
        };
        if target.up_for(P::FAMILY).is_none() {
            return;
        }
        if let Some(Some(p)) = peers.get_mut(idx as usize) {
            p.resync |= P::BIT;
        }
        let mut keys: Vec<&P> = P::table(tables).routes.keys().collect();
        keys.sort_unstable();
        for pfx in keys {
            let Some(dest) = P::table(tables).routes.get(pfx) else {
                continue;
            };
            let mut cache = None;
            let desired = match peers.get(idx as usize).and_then(Option::as_ref) {
                Some(target) => desired_for(
                    *pfx, dest, idx, target, peers, local, nh_ifaces, cfg, interner, &mut cache,
                    &mut None,
                ),
                None => return,
            };
            if let Some(Some(target)) = peers.get_mut(idx as usize) {
                if let Some(c) = cache {
                    target.cache = Some(c);
                }
                diff_out(*pfx, target, desired, interner);
            }
        }
    }

    /// Take the next FIB change.
    pub fn poll_fib(&mut self) -> Option<FibChange> {
        self.fib.pop_front()
    }

    /// Take all queued FIB changes.
    pub fn drain_fib(&mut self) -> impl Iterator<Item = FibChange> + '_ {
        self.fib.drain(..)
    }

    /// Take all queued FIB changes as one batch, with the queue's memory: after a whole
    /// table changed at once (a first full table, a next-hop change) the queue is not left
    /// holding room for a million changes. The buffer is reused, not copied.
    pub fn take_fib(&mut self) -> Vec<FibChange> {
        Vec::from(std::mem::take(&mut self.fib))
    }

    /// Peers that have outbound changes or End-of-RIB markers queued.
    pub fn peers_with_output(&self) -> Vec<PeerId> {
        if self.deferral.is_some() {
            return Vec::new();
        }
        self.peers
            .iter()
            .enumerate()
            .filter(|(_, p)| {
                p.as_ref().is_some_and(|p| {
                    p.session.is_some() && (p.out.has_queued() || !p.eor_due.is_empty())
                })
            })
            .map(|(i, _)| PeerId(i as u32))
            .collect()
    }

    /// Take a slice of a peer's queue (one change per NLRI, its latest state) up to about
    /// `max_bytes` octets of NLRI (at least one change; `usize::MAX`: all), recording
    /// each as sent in the Adj-RIB-Out. Returns the changes, the End-of-RIB markers due
    /// (with the last slice only) and whether changes remain queued.
    fn drain_out(&mut self, id: PeerId, max_bytes: usize) -> Result<Drained, RibError> {
        let Rib {
            peers,
            interner,
            deferral,
            ..
        } = self;
        let p = peers
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(RibError::UnknownPeer(id))?;
        if p.session.is_none() {
            return Err(RibError::PeerDown(id));
        }
        let mut d = Drained::default();
        if deferral.is_some() {
            return Ok(d);
        }
        // At least one octet of NLRI per change: no regrowing while taking the slice.
        d.changes = Vec::with_capacity(p.out.queued_len().min(max_bytes.saturating_add(1)));
        p.out.drain(max_bytes, interner, &mut d.changes);
        d.more = p.out.has_queued();
        if !d.more {
            // RFC 4724 2: End-of-RIB follows the whole initial table, so the last slice.
            d.end_of_rib = std::mem::take(&mut p.eor_due);
        }
        Ok(d)
    }

    /// Take the typed changes queued for a peer (latest state per NLRI), plus End-of-RIB
    /// markers due once the initial table has been handed out; the Adj-RIB-Out records
    /// them as sent. Empty while selection is deferred ([`Rib::defer_selection`]).
    pub fn take_output(&mut self, id: PeerId) -> Result<PeerOutput, RibError> {
        let d = self.drain_out(id, usize::MAX)?;
        let changes = d
            .changes
            .into_iter()
            .map(|c| OutChange {
                family: c.family,
                nlri: c.nlri,
                attrs: c.attrs.map(|a| self.interner.arc(a)),
            })
            .collect();
        Ok(PeerOutput {
            changes,
            end_of_rib: d.end_of_rib,
        })
    }

    /// Take the queued changes for a peer and pack them into UPDATE messages (appended to
    /// `out`): withdrawals first, then announcements grouped by attribute set, then
    /// End-of-RIB. Cheaper than [`Rib::take_output`] + [`pack::encode`](crate::pack::encode):
    /// no shared pointers are handed out.
    pub fn take_encoded(&mut self, id: PeerId, out: &mut Vec<Bytes>) -> Result<Encoded, RibError> {
        self.take_encoded_bounded(id, usize::MAX, out)
    }

    /// [`Rib::take_encoded`] for a slice of the queue: the oldest changes up to about
    /// `max_bytes` octets of NLRI (at least one change), so that a whole table queued at
    /// session start (RFC 4271 9.4: the initial update) or by a route refresh (RFC 2918)
    /// is encoded a slice at a time as the peer's send queue drains, not all at once.
    /// The frames come to about `max_bytes` plus one attribute block per message.
    ///
    /// The queue holds one change per NLRI (its latest state), so slices can go out in
    /// any order; End-of-RIB (RFC 4724 2) comes with the slice that empties the queue.
    /// [`Encoded::more`] says whether to take again.
    ///
    /// Each attribute group is encoded on its own. A route whose attributes do not fit
    /// the peer's maximum message size (RFC 8654: 4096 octets without extended
    /// messages) is not sent: it is withdrawn towards this peer instead (RFC 8654 3; a
    /// peer that held no older announcement of it ignores the withdrawal), listed in
    /// [`Encoded::unsendable`], and the Adj-RIB-Out records the peer as holding nothing
    /// for it, so later changes and withdrawals of that prefix are still sent. The rest
    /// of the slice goes out.
    pub fn take_encoded_bounded(
        &mut self,
        id: PeerId,
        max_bytes: usize,
        out: &mut Vec<Bytes>,
    ) -> Result<Encoded, RibError> {
        let Drained {
            changes,
            end_of_rib,
            more,
        } = self.drain_out(id, max_bytes)?;
        let frames_before = out.len();
        let Rib {
            peers,
            interner,
            encode_cache,
            counters,
            ..
        } = self;
        let p = peers
            .get_mut(id.0 as usize)
            .and_then(Option::as_mut)
            .ok_or(RibError::UnknownPeer(id))?;
        let codec = &p.session.as_ref().ok_or(RibError::PeerDown(id))?.codec;
        let generation = interner.generation();
        let hit = (!changes.is_empty())
            .then(|| {
                encode_cache.iter().position(|c| {
                    c.as_ref().is_some_and(|c| {
                        c.generation == generation && c.changes == changes && c.codec == *codec
                    })
                })
            })
            .flatten();
        // Frames of a freshly encoded slice, to keep for the next peer.
        let mut fresh = None;
        let failed = match hit.and_then(|i| encode_cache.get(i).map(|c| (i, c))) {
            Some((i, Some(c))) => {
                out.extend(c.frames.iter().cloned());
                counters.encodings_shared += 1;
                let failed = c.failed.clone();
                if i > 0 {
                    encode_cache.swap(0, i);
                }
                failed
            }
            _ => {
                let failed = crate::pack::encode_with(
                    changes.iter().map(|c| (c.family, c.nlri, c.attrs)),
                    |a| interner.get(a),
                    &[],
                    codec,
                    out,
                )?;
                if !changes.is_empty() && changes.len() <= ENCODE_CACHE_MAX {
                    fresh = Some(out.get(frames_before..).unwrap_or_default().to_vec());
                }
                failed
            }
        };
        let mut summary = Encoded {
            end_of_rib,
            more,
            ..Encoded::default()
        };
        // RFC 8654 3: what does not fit is withdrawn towards this peer only.
        let mut withdraw: Vec<(Family, Vec<Nlri>)> = Vec::new();
        for (i, reason) in &failed {
            let i = *i;
            let Some(c) = changes.get(i) else {
                continue;
            };
            p.out.unsendable(c, interner);
            match withdraw.iter_mut().find(|(f, _)| *f == c.family) {
                Some((_, v)) => v.push(c.nlri),
                None => withdraw.push((c.family, vec![c.nlri])),
            }
            summary.unsendable.push(Unsendable {
                family: c.family,
                nlri: c.nlri,
                reason: reason.clone(),
            });
        }
        for (family, nlri) in &withdraw {
            bgp_proto::wire::encode_withdrawals(*family, nlri, codec, out)?;
            summary.withdrawn += nlri.len();
        }
        // RFC 4724 2: End-of-RIB after the changes.
        for family in &summary.end_of_rib {
            bgp_proto::wire::encode_end_of_rib(*family, out);
        }
        for c in &changes {
            match c.attrs {
                Some(_) => summary.announced += 1,
                None => summary.withdrawn += 1,
            }
        }
        summary.announced -= summary.unsendable.len().min(summary.announced);
        summary.messages = out.len() - frames_before;
        if let Some(frames) = fresh {
            // The handles stay valid without references until the store frees a set,
            // which changes its generation.
            encode_cache.swap(0, 1);
            encode_cache[0] = Some(EncodeCache {
                generation,
                codec: codec.clone(),
                changes,
                frames,
                failed,
            });
        }
        Ok(summary)
    }

    // ---------------------------------------------------------------- queries

    /// Every prefix's best path (Loc-RIB), sorted by prefix, IPv4 first.
    pub fn loc_rib(&self) -> Vec<(IpNet, PathInfo)> {
        let mut v = Vec::new();
        self.collect_best::<Ipv4Net>(&mut v);
        self.collect_best::<Ipv6Net>(&mut v);
        v
    }

    fn collect_best<P: Prefix>(&self, v: &mut Vec<(IpNet, PathInfo)>) {
        let mut keys: Vec<(&P, &Dest)> = P::table(&self.tables).routes.iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (k, d) in keys {
            if let Some(b) = d.iter().find(|x| x.has(flag::BEST)) {
                v.push(((*k).into(), self.path_info((*k).into(), b)));
            }
        }
    }

    fn path_info(&self, prefix: IpNet, x: &Path) -> PathInfo {
        let local = x.peer() == LOCAL_PEER;
        let peer = self.peers.get(x.peer() as usize).and_then(Option::as_ref);
        let interface = if local {
            self.local
                .get(&(prefix, local_source(x.path_id)))
                .and_then(|m| m.kernel.ifname.clone())
        } else {
            iface_of(
                &self.nh_ifaces,
                self.interner.get(x.effective()).next_hop_addr(),
            )
            .map(str::to_owned)
        };
        PathInfo {
            interface,
            peer: (!local).then_some(PeerId(x.peer())),
            peer_name: peer.map(|p| p.cfg.name.clone()),
            source: if local {
                local_source(x.path_id)
            } else {
                RouteSource::Bgp
            },
            path_id: x.path_id,
            attrs: self.interner.arc(x.effective()),
            received: self.interner.arc(x.attrs),
            best: x.has(flag::BEST),
            multipath: x.has(flag::MULTIPATH),
            stale: x.has(flag::STALE),
            llgr_stale: x.has(flag::LLGR),
            lost_at: None,
        }
    }

    /// All paths of exactly `prefix`, best marked, each loser with the step it lost at.
    pub fn route(&self, prefix: IpNet, resolver: &dyn NextHopResolver) -> Option<RouteDetail> {
        match prefix {
            IpNet::V4(p) => self.detail(p.trunc(), resolver),
            IpNet::V6(p) => self.detail(p.trunc(), resolver),
        }
    }

    fn detail<P: Prefix>(&self, pfx: P, resolver: &dyn NextHopResolver) -> Option<RouteDetail> {
        let dest = P::table(&self.tables).routes.get(&pfx)?;
        let cands: Vec<Candidate<'_>> = dest
            .iter()
            .map(|x| candidate(x, &self.peers, resolver, &self.interner))
            .collect();
        let mut reasons = vec![None; cands.len()];
        decision::select(&cands, &self.decision, Some(&mut reasons));
        let paths = dest
            .iter()
            .zip(reasons)
            .map(|(x, r)| {
                let mut info = self.path_info(pfx.into(), x);
                info.lost_at = if info.best { None } else { r };
                info
            })
            .collect();
        Some(RouteDetail {
            prefix: pfx.into(),
            paths,
        })
    }

    /// Longest-prefix match of an address, with all paths of the matching prefix.
    pub fn lookup(&self, addr: IpAddr, resolver: &dyn NextHopResolver) -> Option<RouteDetail> {
        match addr {
            IpAddr::V4(_) => self.lpm::<Ipv4Net>(addr, resolver),
            IpAddr::V6(_) => self.lpm::<Ipv6Net>(addr, resolver),
        }
    }

    fn lpm<P: Prefix>(&self, addr: IpAddr, resolver: &dyn NextHopResolver) -> Option<RouteDetail> {
        let t = P::table(&self.tables);
        (0..=P::MAX_LEN).rev().find_map(|len| {
            let p = P::truncate(addr, len)?;
            let d = t.routes.get(&p)?;
            if d.iter().any(|x| x.has(flag::BEST)) {
                self.detail(p, resolver)
            } else {
                None
            }
        })
    }

    /// A peer's Adj-RIB-In for `family`: (NLRI with received path id, attributes as
    /// received, accepted by import policy and loop checks).
    pub fn adj_rib_in(
        &self,
        id: PeerId,
        family: Family,
    ) -> Result<Vec<(Nlri, Attrs, bool)>, RibError> {
        let peer = self.peer(id)?;
        let mut v = Vec::new();
        fn go<P: Prefix>(
            t: &Tables,
            store: &AttrStore,
            peer: &PeerState,
            idx: PeerIdx,
            v: &mut Vec<(Nlri, Attrs, bool)>,
        ) {
            let routes = &P::table(t).routes;
            for k in P::log(&peer.prefixes).snapshot() {
                let Some(d) = routes.get(&k) else {
                    continue;
                };
                for x in d.iter().filter(|x| x.peer() == idx) {
                    v.push((
                        Nlri {
                            path_id: Some(x.path_id),
                            prefix: k.into(),
                        },
                        store.arc(x.attrs),
                        !x.has(flag::REJECTED | flag::LOOP),
                    ));
                }
            }
        }
        if family == Family::IPV4_UNICAST {
            go::<Ipv4Net>(&self.tables, &self.interner, peer, id.0, &mut v);
        } else if family == Family::IPV6_UNICAST {
            go::<Ipv6Net>(&self.tables, &self.interner, peer, id.0, &mut v);
        }
        v.sort_by_key(|a| a.0);
        Ok(v)
    }

    /// A peer's Adj-RIB-Out for `family`: what it has been told (outgoing path id, attributes).
    pub fn adj_rib_out(&self, id: PeerId, family: Family) -> Result<Vec<(Nlri, Attrs)>, RibError> {
        let p = self.peer(id)?;
        let mk = |prefix: IpNet, pid: u32, a: AttrId| {
            (
                Nlri {
                    path_id: Some(pid),
                    prefix,
                },
                self.interner.arc(a),
            )
        };
        Ok(p.out
            .entries(family)
            .into_iter()
            .map(|(n, i, a)| mk(n, i, a))
            .collect())
    }
}

/// RFC 4271 9.1.2 (AS_PATH with `allow_local_as`), RFC 4456 8 (ORIGINATOR_ID,
/// CLUSTER_LIST).
fn is_loop(cfg: &RibConfig, a: &PathAttributes, p: &PeerState) -> bool {
    let as_loop = a.as_path.as_ref().is_some_and(|path| {
        let mut n = path.count(cfg.local_as);
        if let Some(l) = p.cfg.local_as.filter(|&l| l != cfg.local_as) {
            n = n.max(path.count(l));
        }
        n > usize::from(p.cfg.allow_local_as)
    });
    let orig_loop = !p.ebgp && a.originator_id == Some(cfg.router_id);
    let cluster_loop = a.cluster_list.contains(&cfg.effective_cluster_id())
        || p.cfg
            .cluster_id
            .is_some_and(|c| a.cluster_list.contains(&c));
    as_loop || orig_loop || cluster_loop
}

/// `p` without host bits; the decoder already clears them, so this is one test in the
/// common case (`Ipv4Net::trunc` rebuilds the prefix every time).
fn trunc_v4(p: Ipv4Net) -> Ipv4Net {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(p.prefix_len().min(32)))
        .unwrap_or(0);
    let addr = u32::from(p.addr());
    if addr & !mask == 0 {
        p
    } else {
        p.trunc()
    }
}

/// Give back the attribute references a removed path held.
fn release_path(store: &mut AttrStore, x: &Path) {
    store.release(x.attrs);
    if let Some(m) = x.modified {
        store.release(m);
    }
}

/// Store `path` (which holds its attribute references), replacing the peer's previous path
/// with the same id. A new path id beyond `limit` paths of that peer at `pfx` is not
/// stored (its references are given back): returns false.
fn insert_path<P: Prefix>(
    tables: &mut Tables,
    interner: &mut AttrStore,
    peers: &mut [Option<PeerState>],
    pfx: P,
    path: Path,
    limit: usize,
) -> bool {
    let t = P::table_mut(tables);
    let peer = path.peer();
    let rejected = path.is_rejected();
    // One lookup in the route table; the old selection is recorded from the same entry.
    // `Some(was rejected)` when the path replaced one with the same id.
    let replaced = match t.routes.entry(pfx) {
        std::collections::hash_map::Entry::Vacant(v) => {
            v.insert(Dest::One(path));
            t.dirty.insert_with(pfx, crate::table::Dirty::default);
            None
        }
        std::collections::hash_map::Entry::Occupied(mut o) => {
            let dest = o.get_mut();
            let at = t.large.position(pfx, dest, peer, path.path_id);
            if at.is_none() && t.large.paths_of(pfx, dest, peer) >= limit {
                release_path(interner, &path);
                return false;
            }
            t.dirty.insert_with(pfx, || crate::table::Dirty {
                old: selection_signature(dest),
                ..crate::table::Dirty::default()
            });
            match at.and_then(|i| dest.get_mut(i)) {
                Some(old) => {
                    let gone = std::mem::replace(old, path);
                    release_path(interner, &gone);
                    Some(gone.is_rejected())
                }
                None => {
                    t.large.push(pfx, dest, path);
                    None
                }
            }
        }
    };
    if let Some(Some(p)) = peers.get_mut(peer as usize) {
        let log = P::log_mut(&mut p.prefixes);
        match replaced {
            Some(was) => log.changed(was, rejected),
            None => log.added(pfx, &t.routes, peer, rejected),
        }
    }
    true
}

/// Import policy for one received path: (flags, attributes after policy when changed; the
/// caller retains them for the path).
fn import_eval(
    peer: &PeerState,
    interner: &mut AttrStore,
    prefix: IpNet,
    received: AttrId,
    loop_found: bool,
    next_hop_interface: Option<&str>,
) -> (u8, Option<AttrId>) {
    if loop_found {
        return (flag::LOOP, None);
    }
    let import = &peer.cfg.import;
    if import.is_accept_all() {
        return (0, None);
    }
    let changed: Option<RouteAttrs> = {
        let r = interner.get(received);
        let view = RouteView {
            prefix,
            attrs: &r.attrs,
            next_hop: r.next_hop_addr(),
            next_hop_interface,
            source: RouteSource::Bgp,
            kernel: None,
            peer: Some(PeerView {
                name: &peer.cfg.name,
                peer_type: peer.peer_type(),
            }),
        };
        let Some(acc) = import.evaluate(&view) else {
            return (flag::REJECTED, None);
        };
        let nh = acc.next_hop.clone();
        let mut attrs = acc.attrs;
        if !acc.prepend_path.is_empty() {
            prepend_front(attrs.to_mut(), &acc.prepend_path);
        }
        match attrs {
            std::borrow::Cow::Owned(a) => Some(RouteAttrs {
                attrs: a,
                next_hop: import_next_hop(r, nh.as_ref()),
            }),
            std::borrow::Cow::Borrowed(_) if nh.is_some() => Some(RouteAttrs {
                attrs: r.attrs.clone(),
                next_hop: import_next_hop(r, nh.as_ref()),
            }),
            std::borrow::Cow::Borrowed(_) => None,
        }
    };
    (0, changed.map(|a| interner.intern(a)))
}

fn next_hop_is(nh: &MpNextHop, addr: IpAddr) -> bool {
    match (nh, addr) {
        (MpNextHop::V4(a), IpAddr::V4(b)) => *a == b,
        (MpNextHop::V6 { global, .. }, IpAddr::V6(b)) => *global == b,
        _ => false,
    }
}

/// Puts a policy's `prepend_path` ASNs in front of the AS_PATH, first one first.
fn prepend_front(a: &mut PathAttributes, front: &[u32]) {
    if front.is_empty() {
        return;
    }
    let path = a.as_path.get_or_insert_with(Default::default);
    for asn in front.iter().rev() {
        path.prepend(*asn, 1);
    }
}

fn import_next_hop(received: &RouteAttrs, nh: Option<&NextHopAction>) -> Option<MpNextHop> {
    match nh {
        Some(NextHopAction::Address(IpAddr::V4(a))) => Some(MpNextHop::V4(*a)),
        Some(NextHopAction::Address(IpAddr::V6(a))) => Some(MpNextHop::V6 {
            global: *a,
            link_local: None,
        }),
        _ => received.next_hop.clone(),
    }
}

fn candidate<'a>(
    x: &Path,
    peers: &[Option<PeerState>],
    resolver: &dyn NextHopResolver,
    store: &'a AttrStore,
) -> Candidate<'a> {
    let attrs = store.get(x.effective());
    let idx = x.peer();
    let peer = peers.get(idx as usize).and_then(Option::as_ref);
    let eligibility = if x.has(flag::LOOP) {
        Err(Ineligible::Loop)
    } else if x.has(flag::REJECTED) {
        Err(Ineligible::RejectedByPolicy)
    } else if idx == LOCAL_PEER {
        Ok(0)
    } else {
        match attrs.next_hop_addr().and_then(|a| resolver.resolve(a)) {
            Some(c) => Ok(c),
            None => Err(Ineligible::NextHopUnresolvable),
        }
    };
    Candidate {
        attrs,
        source: if idx == LOCAL_PEER {
            local_source(x.path_id)
        } else {
            RouteSource::Bgp
        },
        ebgp: peer.is_some_and(|p| p.ebgp),
        peer_router_id: peer.map_or(Ipv4Addr::UNSPECIFIED, |p| p.router_id),
        peer_address: peer.map(|p| p.cfg.address),
        path_id: x.path_id,
        llgr_stale: x.has(flag::LLGR),
        eligibility,
    }
}

fn run_decision(
    dest: &mut Dest,
    peers: &[Option<PeerState>],
    cfg: &DecisionConfig,
    resolver: &dyn NextHopResolver,
    store: &AttrStore,
) {
    if let Dest::One(x) = dest {
        // A lone path is best if it is eligible: no elimination to run.
        let ok = candidate(x, peers, resolver, store).eligibility.is_ok();
        x.clear_flags(flag::BEST | flag::MULTIPATH | flag::ELIGIBLE);
        if ok {
            x.set_flags(flag::BEST | flag::MULTIPATH | flag::ELIGIBLE);
        }
        return;
    }
    let cands: SmallVec<[Candidate<'_>; 4]> = dest
        .iter()
        .map(|x| candidate(x, peers, resolver, store))
        .collect();
    let eligible: SmallVec<[bool; 4]> = cands.iter().map(|c| c.eligibility.is_ok()).collect();
    let sel = decision::select(&cands, cfg, None);
    drop(cands);
    for (x, ok) in dest.iter_mut().zip(eligible) {
        x.clear_flags(flag::BEST | flag::MULTIPATH | flag::ELIGIBLE);
        if ok {
            x.set_flags(flag::ELIGIBLE);
        }
    }
    for &i in &sel.multipath {
        if let Some(x) = dest.get_mut(i) {
            x.set_flags(flag::MULTIPATH);
        }
    }
    if let Some(x) = sel.best.and_then(|b| dest.get_mut(b)) {
        x.set_flags(flag::BEST);
    }
}

fn fib_entry(
    prefix: IpNet,
    dest: &Dest,
    peers: &[Option<PeerState>],
    local: &rustc_hash::FxHashMap<(IpNet, RouteSource), LocalMeta>,
    nh_ifaces: &NhIfaces,
    cfg: &RibConfig,
    store: &AttrStore,
) -> Option<FibRoute> {
    let best = dest.iter().find(|x| x.has(flag::BEST))?;
    let is_local = best.peer() == LOCAL_PEER;
    let source = if is_local {
        local_source(best.path_id)
    } else {
        RouteSource::Bgp
    };
    let meta = if is_local {
        local.get(&(prefix, source))
    } else {
        None
    };
    let attrs = &store.get(best.effective()).attrs;
    let mut next_hops: SmallVec<[IpAddr; 2]> = SmallVec::new();
    if let Some(a) = store.get(best.effective()).next_hop_addr() {
        next_hops.push(a);
    }
    for x in dest
        .iter()
        .filter(|x| x.has(flag::MULTIPATH) && !x.has(flag::BEST))
    {
        if let Some(a) = store.get(x.effective()).next_hop_addr() {
            if !next_hops.contains(&a) {
                next_hops.push(a);
            }
        }
    }
    // (LOCAL_PREF, metric, tunnel device, install mode) after the FIB policy.
    let (local_pref, metric, tunnel_device, install) = if cfg.fib_policy.is_accept_all() {
        // Nothing to evaluate (the common case without FIB policy).
        (
            attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
            None,
            None,
            None,
        )
    } else {
        let peer = peers.get(best.peer() as usize).and_then(Option::as_ref);
        let view = RouteView {
            prefix,
            attrs,
            next_hop: next_hops.first().copied(),
            next_hop_interface: if is_local {
                None
            } else {
                iface_of(nh_ifaces, next_hops.first().copied())
            },
            source,
            kernel: meta.map(|m| &*m.kernel),
            peer: peer.map(|p| PeerView {
                name: &p.cfg.name,
                peer_type: p.peer_type(),
            }),
        };
        let acc = cfg.fib_policy.evaluate(&view)?;
        (
            acc.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
            acc.metric,
            acc.tunnel_device,
            acc.install,
        )
    };
    let no_install = matches!(source, RouteSource::Kernel | RouteSource::Connected)
        || meta.is_some_and(|m| m.no_install)
        || install == Some(InstallMode::NoInstall);
    Some(FibRoute {
        prefix,
        next_hops,
        local_pref,
        source,
        no_install,
        metric,
        tunnel_device,
        install,
        ifname: meta.and_then(|m| m.kernel.ifname.clone()),
    })
}

/// What `target` should currently hold for `pfx` (outgoing path id, attributes).
#[allow(clippy::too_many_arguments)]
fn desired_for<P: Prefix>(
    pfx: P,
    dest: &Dest,
    ti: PeerIdx,
    target: &PeerState,
    peers: &[Option<PeerState>],
    local: &rustc_hash::FxHashMap<(IpNet, RouteSource), LocalMeta>,
    nh_ifaces: &NhIfaces,
    cfg: &RibConfig,
    interner: &mut AttrStore,
    cache: &mut Option<ExportCache>,
    shared: &mut Option<SharedExport>,
) -> Desired {
    let mut out = Desired::new();
    let Some(session) = target.up_for(P::FAMILY) else {
        return out;
    };
    let add_path = session.codec.sends_path_id(P::FAMILY);
    let mode = if add_path {
        target.cfg.add_path_send
    } else {
        AddPathSend::Best
    };
    for x in dest.iter() {
        let send = match mode {
            AddPathSend::Best => x.has(flag::BEST),
            AddPathSend::Multipath => x.has(flag::MULTIPATH),
            AddPathSend::All => x.has(flag::ELIGIBLE),
        };
        if !send {
            continue;
        }
        if let Some(a) = export_path(
            pfx.into(),
            x,
            ti,
            target,
            session,
            peers,
            local,
            nh_ifaces,
            cfg,
            interner,
            cache,
            shared,
        ) {
            let id = if add_path {
                out_path_id(x.peer(), x.path_id)
            } else {
                0
            };
            out.push((id, a));
        }
        if !add_path {
            break;
        }
    }
    out
}

/// RFC 4271 9.1.3 + 5.1, RFC 4456 6–8, RFC 1997: may `x` go to `target`, and with which
/// attributes.
#[allow(clippy::too_many_arguments)]
fn export_path(
    prefix: IpNet,
    x: &Path,
    ti: PeerIdx,
    target: &PeerState,
    session: &SessionInfo,
    peers: &[Option<PeerState>],
    local: &rustc_hash::FxHashMap<(IpNet, RouteSource), LocalMeta>,
    nh_ifaces: &NhIfaces,
    cfg: &RibConfig,
    interner: &mut AttrStore,
    cache: &mut Option<ExportCache>,
    shared: &mut Option<SharedExport>,
) -> Option<AttrId> {
    let si = x.peer();
    if si == ti {
        return None;
    }
    let eff_id = x.effective();
    let generation = interner.generation();
    let ipv4 = matches!(prefix, IpNet::V4(_));
    let hit = |c: &Option<ExportCache>| match c {
        Some(c)
            if c.input == eff_id
                && c.ipv4 == ipv4
                && c.source == si
                && c.generation == generation =>
        {
            Some(c.output)
        }
        _ => None,
    };
    let eff = interner.get(eff_id);
    let is_local = si == LOCAL_PEER;
    let src = peers.get(si as usize).and_then(Option::as_ref);
    if !is_local && src.is_none() {
        return None;
    }
    // RFC 9494 4.5: long-lived stale routes only go to peers that understand LLGR.
    if x.has(flag::LLGR) && session.llgr.is_empty() {
        return None;
    }
    let comms = &eff.attrs.communities;
    // RFC 1997.
    if comms.contains(&Community::NO_ADVERTISE) {
        return None;
    }
    if target.ebgp
        && (comms.contains(&Community::NO_EXPORT)
            || comms.contains(&Community::NO_EXPORT_SUBCONFED))
    {
        return None;
    }
    let reflecting = src.is_some_and(|s| !s.ebgp) && !target.ebgp;
    if reflecting {
        // RFC 4456 6: from a client to everyone; from a non-client only to clients; never
        // back to the originator.
        let s = src?;
        if !s.cfg.rr_client && !target.cfg.rr_client {
            return None;
        }
        if eff.attrs.originator_id == Some(target.router_id) {
            return None;
        }
    }
    let class =
        (!is_local && target.cfg.export.is_accept_all()).then(|| ExportClass::of(target, session));
    // A policy that does not look at prefixes gives every prefix sharing the input set
    // the same outcome (accepted as is, changed, or rejected): evaluated once, not once
    // per prefix with work in proportion to the attributes.
    let prefix_free = !is_local && !target.cfg.export.reads_prefix();
    if prefix_free && class.is_none() {
        if let Some(o) = hit(cache).or_else(|| hit(&target.cache)) {
            return o;
        }
    }
    if let Some(class) = &class {
        if let Some(o) = hit(cache).or_else(|| hit(&target.cache)) {
            return o;
        }
        if let Some(sh) = shared.as_ref() {
            if sh.class == *class
                && sh.input == eff_id
                && sh.ipv4 == ipv4
                && sh.source == si
                && sh.generation == generation
            {
                return sh.output;
            }
        }
    }
    let source = if is_local {
        local_source(x.path_id)
    } else {
        RouteSource::Bgp
    };
    let meta = if is_local {
        local.get(&(prefix, source))
    } else {
        None
    };
    let view = RouteView {
        prefix,
        attrs: &eff.attrs,
        next_hop: eff.next_hop_addr(),
        next_hop_interface: if is_local {
            None
        } else {
            iface_of(nh_ifaces, eff.next_hop_addr())
        },
        source,
        kernel: meta.map(|m| &*m.kernel),
        peer: Some(PeerView {
            name: &target.cfg.name,
            peer_type: target.peer_type(),
        }),
    };
    let Some(acc) = target.cfg.export.evaluate(&view) else {
        if prefix_free {
            *cache = Some(ExportCache {
                input: eff_id,
                ipv4,
                source: si,
                output: None,
                generation,
            });
        }
        return None;
    };
    // Without policy changes (or with a policy blind to prefixes) the output depends only
    // on (input set, source peer, target): consecutive prefixes sharing a set reuse the
    // last result.
    let cacheable = !is_local && (acc.is_unmodified() || prefix_free);
    if cacheable {
        if let Some(o) = hit(cache).or_else(|| hit(&target.cache)) {
            return o;
        }
    }
    let out = transform(eff, acc, is_local, src, target, session, cfg, prefix);
    // The borrow of `eff` ends here; interning may grow the arena.
    let result = out.map(|r| interner.intern(r));
    if cacheable {
        *cache = Some(ExportCache {
            input: eff_id,
            ipv4,
            source: si,
            output: result,
            generation: interner.generation(),
        });
        if let Some(class) = class {
            *shared = Some(SharedExport {
                class,
                input: eff_id,
                ipv4,
                source: si,
                output: result,
                generation: interner.generation(),
            });
        }
    }
    result
}

/// What the export transformation (`transform`) reads of a target peer whose export
/// policy accepts everything unchanged: peers equal in these get the same attributes
/// for the same input. (The per-target rules — split horizon, reflection, originator,
/// communities, LLGR — run before the shared result is used.)
#[derive(Clone, Debug, PartialEq, Eq)]
struct ExportClass {
    ebgp: bool,
    local_as: Option<u32>,
    cluster_id: Option<Ipv4Addr>,
    next_hop: NextHopMode,
    local_v4: Option<Ipv4Addr>,
    local_v6: Option<Ipv6Addr>,
    local_v6_link_local: Option<Ipv6Addr>,
    extended_next_hop_v4: bool,
}

impl ExportClass {
    fn of(target: &PeerState, session: &SessionInfo) -> ExportClass {
        ExportClass {
            ebgp: target.ebgp,
            local_as: target.cfg.local_as,
            cluster_id: target.cfg.cluster_id,
            next_hop: target.cfg.next_hop,
            local_v4: session.local_v4,
            local_v6: session.local_v6,
            local_v6_link_local: session.local_v6_link_local,
            extended_next_hop_v4: session.extended_next_hop_v4,
        }
    }
}

/// The last export result of one prefix's export run, shared across peers of one
/// [`ExportClass`].
#[derive(Clone, Debug)]
struct SharedExport {
    class: ExportClass,
    input: AttrId,
    ipv4: bool,
    source: PeerIdx,
    output: Option<AttrId>,
    generation: u64,
}

/// Outgoing attributes: RFC 4271 5.1 (AS_PATH, NEXT_HOP, MED, LOCAL_PREF), RFC 4456 8
/// (ORIGINATOR_ID, CLUSTER_LIST), RFC 4271 5 / 9.1.3 (unrecognised attributes).
#[allow(clippy::too_many_arguments)]
fn transform(
    eff: &RouteAttrs,
    acc: Accepted<'_>,
    is_local: bool,
    src: Option<&PeerState>,
    target: &PeerState,
    session: &SessionInfo,
    cfg: &RibConfig,
    prefix: IpNet,
) -> Option<RouteAttrs> {
    let med_set = acc.med_set;
    let nh_action = acc.next_hop.clone();
    let own_prepend = acc.prepend.map_or(0, |p| usize::from(p.count));
    let front = acc.prepend_path;
    let mut a = acc.attrs.into_owned();
    a.next_hop = None;
    // Unrecognised optional attributes: transitive ones pass with Partial set, others stop.
    if !a.unknown.is_empty() {
        a.unknown.retain(|u| u.flags & attr_flags::TRANSITIVE != 0);
        for u in &mut a.unknown {
            if u.flags & attr_flags::OPTIONAL != 0 {
                u.flags |= attr_flags::PARTIAL;
            }
        }
    }
    let own_v6 = || {
        session.local_v6.map(|g| MpNextHop::V6 {
            global: g,
            link_local: session.local_v6_link_local,
        })
    };
    let self_nh = || -> Option<MpNextHop> {
        match prefix {
            // RFC 8950 3: with the capability, an IPv4 route may name our IPv6 address
            // (a session over IPv6 has no IPv4 address of ours to give).
            IpNet::V4(_) => session
                .local_v4
                .map(MpNextHop::V4)
                .or_else(|| own_v6().filter(|_| session.extended_next_hop_v4)),
            IpNet::V6(_) => own_v6(),
        }
    };
    let addr_nh = |ip: IpAddr| match ip {
        IpAddr::V4(v) => MpNextHop::V4(v),
        IpAddr::V6(v) => MpNextHop::V6 {
            global: v,
            link_local: None,
        },
    };
    // A link-local next hop is only meaningful on the link it was learned on (RFC 2545 3).
    let keep = match &eff.next_hop {
        Some(MpNextHop::V6 { global, .. }) => Some(MpNextHop::V6 {
            global: *global,
            link_local: None,
        }),
        other => other.clone(),
    };
    let next_hop = if target.ebgp {
        a.local_pref = None;
        if !med_set && !is_local {
            // RFC 4271 5.1.4: a MED received from a neighbouring AS is not passed on.
            a.med = None;
        }
        a.originator_id = None;
        a.cluster_list.clear();
        a.as_path
            .get_or_insert_with(Default::default)
            .prepend(target.cfg.local_as.unwrap_or(cfg.local_as), 1 + own_prepend);
        match nh_action {
            Some(NextHopAction::Address(ip)) => Some(addr_nh(ip)),
            Some(NextHopAction::Keep) => keep.or_else(self_nh),
            Some(NextHopAction::SelfAddress) => self_nh(),
            None if target.cfg.next_hop == NextHopMode::Keep => keep.or_else(self_nh),
            None => self_nh(),
        }
    } else {
        if a.local_pref.is_none() {
            a.local_pref = Some(DEFAULT_LOCAL_PREF);
        }
        if let Some(s) = src.filter(|s| !s.ebgp) {
            // RFC 4456 8: reflecting an iBGP route.
            if a.originator_id.is_none() {
                a.originator_id = Some(s.router_id);
            }
            a.cluster_list.insert(
                0,
                target
                    .cfg
                    .cluster_id
                    .unwrap_or_else(|| cfg.effective_cluster_id()),
            );
        }
        match nh_action {
            Some(NextHopAction::Address(ip)) => Some(addr_nh(ip)),
            Some(NextHopAction::SelfAddress) => self_nh(),
            Some(NextHopAction::Keep) => keep.or_else(self_nh),
            None if target.cfg.next_hop == NextHopMode::SelfAlways => self_nh().or(keep),
            // RFC 4271 5.1.3: a locally originated route goes to internal peers with the
            // address it is reachable through: its gateway (a kernel route via a router,
            // as BIRD sends it), else ours. A link-local gateway means nothing elsewhere.
            None if is_local => keep
                .filter(|k| !matches!(k, MpNextHop::V6 { global, .. } if (global.segments()[0] & 0xffc0) == 0xfe80))
                .or_else(self_nh),
            None => keep.or_else(self_nh),
        }
    };
    prepend_front(&mut a, &front);
    let mut next_hop = next_hop?;
    // A route pointing at the peer itself is of no use to it (BIRD drops it as an invalid
    // NEXT_HOP; it would make the peer route to itself). When the peer's address is also
    // ours (two speakers on one loopback address) the next hop points at us: it stays.
    let peer_address_is_ours = match target.cfg.address {
        IpAddr::V4(v) => session.local_v4 == Some(v),
        IpAddr::V6(v) => session.local_v6 == Some(v),
    };
    if next_hop_is(&next_hop, target.cfg.address) && !peer_address_is_ours {
        return None;
    }
    // The next hop must be of the prefix's family, except IPv6 next hops of IPv4 routes
    // towards a peer that negotiated RFC 8950 (RFC 8950 4: never to one that did not).
    // Without it such a route goes with our IPv4 address as next hop (next hop self), or
    // not at all when the session has none.
    match (prefix, &next_hop) {
        (IpNet::V4(_), MpNextHop::V4(_)) | (IpNet::V6(_), MpNextHop::V6 { .. }) => {}
        (IpNet::V4(_), MpNextHop::V6 { .. }) if session.extended_next_hop_v4 => {}
        (IpNet::V4(_), MpNextHop::V6 { .. }) => next_hop = MpNextHop::V4(session.local_v4?),
        _ => return None,
    }
    Some(RouteAttrs {
        attrs: a,
        next_hop: Some(next_hop),
    })
}

/// Bring `target`'s Adj-RIB-Out for `pfx` to `desired`, queueing the differences (see
/// [`crate::adj_out`]).
fn diff_out<P: Prefix>(
    pfx: P,
    target: &mut PeerState,
    mut desired: Desired,
    store: &mut AttrStore,
) {
    if let Some(out) = target.out.family_mut::<P>() {
        out.diff(pfx, &mut desired, store);
    }
}

impl Rib {
    /// Peer router id / address facts, for tests and display.
    pub fn peer_config(&self, id: PeerId) -> Result<&PeerConfig, RibError> {
        Ok(&self.peer(id)?.cfg)
    }

    /// A summary of a peer for display (`bgpctl show protocols`), from counters kept as
    /// routes come and go: constant time however large its tables.
    pub fn peer_info(&self, id: PeerId) -> Result<PeerInfo, RibError> {
        let p = self.peer(id)?;
        let s = p.session.as_ref();
        let (v4, v6) = (&p.prefixes.v4, &p.prefixes.v6);
        Ok(PeerInfo {
            name: p.cfg.name.clone(),
            address: p.cfg.address,
            remote_as: p.cfg.remote_as,
            peer_type: p.peer_type(),
            rr_client: p.cfg.rr_client,
            router_id: s.map(|s| s.router_id),
            families: s.map(|s| s.families.clone()).unwrap_or_default(),
            add_path_send: s.map(|s| s.codec.add_path_send.clone()).unwrap_or_default(),
            add_path_receive: s
                .map(|s| s.codec.add_path_receive.clone())
                .unwrap_or_default(),
            stale_families: p.stale.iter().map(|x| x.family).collect(),
            received_v4: v4.live,
            received_v6: v6.live,
            accepted_v4: v4.live.saturating_sub(v4.rejected),
            accepted_v6: v6.live.saturating_sub(v6.rejected),
            advertised_v4: p.out.v4.sent_len(),
            advertised_v6: p.out.v6.sent_len(),
            queued: p.out.queued_len(),
        })
    }

    /// Check the attribute reference counts against every holder (paths, Adj-RIB-Outs,
    /// queued changes) and that no holder points at a freed set. For tests and debugging;
    /// cost O(table).
    #[doc(hidden)]
    pub fn audit(&self) -> Result<(), String> {
        let mut held: rustc_hash::FxHashMap<AttrId, u32> = Default::default();
        let mut hold = |id: AttrId| *held.entry(id).or_default() += 1;
        for d in self.tables.v4.routes.values() {
            for x in d.iter() {
                hold(x.attrs);
                x.modified.map(&mut hold);
            }
        }
        for d in self.tables.v6.routes.values() {
            for x in d.iter() {
                hold(x.attrs);
                x.modified.map(&mut hold);
            }
        }
        for p in self.peers.iter().flatten() {
            p.out.v4.audit()?;
            p.out.v6.audit()?;
            p.out.v4.for_each_held(&mut hold);
            p.out.v6.for_each_held(&mut hold);
        }
        self.audit_logs::<Ipv4Net>()?;
        self.audit_logs::<Ipv6Net>()?;
        for (id, refs, live) in self.interner.counts() {
            let h = held.remove(&id).unwrap_or(0);
            if h != refs {
                return Err(format!("{id:?}: count {refs}, held {h}"));
            }
            if h > 0 && !live {
                return Err(format!("{id:?}: held {h} times but freed"));
            }
        }
        match held.into_iter().next() {
            Some((id, h)) => Err(format!("{id:?}: held {h} times, unknown to the store")),
            None => Ok(()),
        }
    }

    /// Every peer's path count and prefix log against the table.
    fn audit_logs<P: Prefix>(&self) -> Result<(), String> {
        let routes = &P::table(&self.tables).routes;
        let mut count = vec![(0usize, 0usize); self.peers.len()];
        for d in routes.values() {
            for x in d.iter() {
                if let Some(c) = count.get_mut(x.peer() as usize) {
                    c.0 += 1;
                    c.1 += usize::from(x.is_rejected());
                }
            }
        }
        for (i, p) in self.peers.iter().enumerate() {
            let Some(p) = p else { continue };
            let log = P::log(&p.prefixes);
            if (log.live, log.rejected) != count[i] {
                return Err(format!(
                    "peer {i}: {} paths ({} rejected) counted, {:?} held",
                    log.live, log.rejected, count[i]
                ));
            }
            let listed: rustc_hash::FxHashSet<P> = log.snapshot().into_iter().collect();
            for (k, d) in routes {
                if d.iter().any(|x| x.peer() == i as u32) && !listed.contains(k) {
                    return Err(format!("peer {i}: {k:?} missing from its prefix log"));
                }
            }
        }
        Ok(())
    }

    /// Whether the peer is established.
    pub fn is_up(&self, id: PeerId) -> bool {
        self.peer(id).is_ok_and(|p| p.session.is_some())
    }
}

/// Paging through the Loc-RIB in prefix order (`Rib::prefixes_after`).
mod pages;

#[cfg(test)]
mod trunc_tests {
    use super::*;

    #[test]
    fn trunc_v4_clears_host_bits_only_when_set() {
        for (a, l) in [
            ("10.1.2.3", 24),
            ("10.1.2.0", 24),
            ("0.0.0.0", 0),
            ("255.255.255.255", 32),
            ("1.2.3.4", 0),
            ("10.1.2.3", 31),
        ] {
            let p = Ipv4Net::new(a.parse().unwrap(), l).unwrap();
            assert_eq!(trunc_v4(p), p.trunc(), "{p}");
        }
    }
}

/// RFC 8950: IPv4 routes with IPv6 next hops, in and out.
#[cfg(test)]
mod extended_next_hop_tests {
    use super::*;
    use bgp_proto::wire::{decode_message, Inbound};
    use bgp_proto::{AsPath, AsSegment, MpReach, SegmentType};

    const V6_SELF: &str = "2001:db8::1";

    fn rib() -> Rib {
        Rib::new(RibConfig::new(65000, Ipv4Addr::new(10, 0, 0, 1)))
    }

    /// A session over IPv6 (no IPv4 address of ours), with or without RFC 8950.
    fn v6_session(n: u8, ext: bool) -> SessionInfo {
        let mut s = SessionInfo::new(Ipv4Addr::new(10, 0, 0, n), None);
        s.local_v6 = Some(V6_SELF.parse().unwrap());
        s.local_v6_link_local = Some("fe80::1".parse().unwrap());
        s.extended_next_hop_v4 = ext;
        s
    }

    fn add(rib: &mut Rib, n: u8, asn: u32, rr_client: bool, s: SessionInfo) -> PeerId {
        let mut cfg = PeerConfig::new(
            format!("p{n}"),
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, u16::from(n))),
            asn,
        );
        cfg.rr_client = rr_client;
        let id = rib.add_peer(cfg).unwrap();
        rib.peer_up(id, s, Instant::now()).unwrap();
        id
    }

    fn attrs(asns: &[u32]) -> PathAttributes {
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath {
                segments: vec![AsSegment {
                    kind: SegmentType::Sequence,
                    asns: asns.to_vec(),
                }],
            }),
            ..Default::default()
        }
    }

    /// IPv4 prefixes in MP_REACH_NLRI with an IPv6 next hop (RFC 8950 3).
    fn v4_via_v6(prefixes: &[&str], asns: &[u32], global: &str, ll: Option<&str>) -> Update {
        Update {
            attributes: attrs(asns),
            mp_reach: Some(MpReach {
                family: Family::IPV4_UNICAST,
                next_hop: MpNextHop::V6 {
                    global: global.parse().unwrap(),
                    link_local: ll.map(|l| l.parse().unwrap()),
                },
                nlri: MpNlri::Unicast(
                    prefixes
                        .iter()
                        .map(|p| Nlri::new(p.parse().unwrap()))
                        .collect(),
                ),
            }),
            ..Default::default()
        }
    }

    fn v6(a: &str) -> MpNextHop {
        MpNextHop::V6 {
            global: a.parse().unwrap(),
            link_local: None,
        }
    }

    /// (prefix, next hop) of each announcement queued for `p`.
    fn announced(rib: &mut Rib, p: PeerId) -> Vec<(String, Option<MpNextHop>)> {
        rib.take_output(p)
            .unwrap()
            .changes
            .into_iter()
            .map(|c| {
                (
                    c.nlri.prefix.to_string(),
                    c.attrs.and_then(|a| a.next_hop.clone()),
                )
            })
            .collect()
    }

    #[test]
    fn received_on_extended_session_is_selected_resolved_and_installed() {
        let mut rib = rib();
        let p = add(&mut rib, 2, 65002, false, v6_session(2, true));
        let u = v4_via_v6(&["10.2.0.0/16"], &[65002], "2001:db8::2", Some("fe80::2"));
        let stats = rib.apply_update(p, &u, false).unwrap();
        assert_eq!((stats.announced, stats.next_hop_refused), (1, 0));
        // Resolution asks about the IPv6 global address.
        let asked = std::cell::RefCell::new(Vec::new());
        rib.process(&|a: IpAddr| {
            asked.borrow_mut().push(a);
            Some(1)
        });
        assert_eq!(
            asked.into_inner(),
            vec!["2001:db8::2".parse::<IpAddr>().unwrap()]
        );
        let (pfx, best) = rib.loc_rib().pop().unwrap();
        assert_eq!(pfx.to_string(), "10.2.0.0/16");
        assert_eq!(
            best.attrs.next_hop,
            Some(MpNextHop::V6 {
                global: "2001:db8::2".parse().unwrap(),
                link_local: Some("fe80::2".parse().unwrap()),
            })
        );
        match rib.poll_fib() {
            Some(FibChange::Upsert(r)) => {
                assert_eq!(r.prefix.to_string(), "10.2.0.0/16");
                assert_eq!(
                    r.next_hops.to_vec(),
                    vec!["2001:db8::2".parse::<IpAddr>().unwrap()]
                );
            }
            other => panic!("expected an install, got {other:?}"),
        }
    }

    #[test]
    fn unresolvable_ipv6_next_hop_makes_ipv4_route_ineligible() {
        let mut rib = rib();
        let p = add(&mut rib, 2, 65002, false, v6_session(2, true));
        rib.apply_update(
            p,
            &v4_via_v6(&["10.2.0.0/16"], &[65002], "2001:db8::2", None),
            false,
        )
        .unwrap();
        let only_v4 = |a: IpAddr| a.is_ipv4().then_some(1);
        rib.process(&only_v4);
        assert!(rib.loc_rib().is_empty());
        let d = rib.route("10.2.0.0/16".parse().unwrap(), &only_v4).unwrap();
        assert_eq!(d.paths.len(), 1);
        assert!(!d.paths[0].best);
    }

    #[test]
    fn igp_cost_to_ipv6_next_hops_decides_between_ipv4_paths() {
        let mut rib = rib();
        let a = add(&mut rib, 2, 65000, false, v6_session(2, true));
        let b = add(&mut rib, 3, 65000, false, v6_session(3, true));
        rib.apply_update(
            a,
            &v4_via_v6(&["10.9.0.0/16"], &[65009], "2001:db8::a", None),
            false,
        )
        .unwrap();
        rib.apply_update(
            b,
            &v4_via_v6(&["10.9.0.0/16"], &[65009], "2001:db8::b", None),
            false,
        )
        .unwrap();
        // The path via peer 3 (higher address, lower router id is peer 2) wins only on cost.
        let cost = |x: IpAddr| {
            Some(if x == "2001:db8::b".parse::<IpAddr>().unwrap() {
                5
            } else {
                50
            })
        };
        rib.process(&cost);
        let (_, best) = rib.loc_rib().pop().unwrap();
        assert_eq!(best.peer, Some(b));
        let d = rib.route("10.9.0.0/16".parse().unwrap(), &cost).unwrap();
        let loser = d.paths.iter().find(|x| !x.best).unwrap();
        assert_eq!(loser.lost_at, Some(Step::IgpCost));
    }

    #[test]
    fn refused_without_capability_and_previous_route_withdrawn() {
        let mut rib = rib();
        let p = add(&mut rib, 2, 65002, false, v6_session(2, false));
        // First an ordinary IPv4 next hop, then the same prefix via an IPv6 one.
        let plain = Update {
            attributes: PathAttributes {
                next_hop: Some(Ipv4Addr::new(192, 0, 2, 2)),
                ..attrs(&[65002])
            },
            nlri: vec![Nlri::new("10.2.0.0/16".parse().unwrap())],
            ..Default::default()
        };
        rib.apply_update(p, &plain, false).unwrap();
        rib.process(&AllReachable);
        assert_eq!(rib.loc_rib().len(), 1);
        let stats = rib
            .apply_update(
                p,
                &v4_via_v6(&["10.2.0.0/16"], &[65002], "2001:db8::2", None),
                false,
            )
            .unwrap();
        assert_eq!(stats.next_hop_refused, 1);
        assert_eq!(stats.withdrawn, 1);
        assert_eq!(stats.announced, 0);
        rib.process(&AllReachable);
        assert!(rib.loc_rib().is_empty());
        rib.audit().unwrap();
    }

    #[test]
    fn next_hop_self_on_ipv6_session_uses_ipv6_address_only_with_capability() {
        let mut rib = rib();
        rib.originate(LocalRoute::new(
            "10.1.0.0/16".parse().unwrap(),
            RouteSource::Static,
        ))
        .unwrap();
        let ext = add(&mut rib, 2, 65002, false, v6_session(2, true));
        let plain = add(&mut rib, 3, 65003, false, v6_session(3, false));
        let mut v4s = v6_session(4, false);
        v4s.local_v4 = Some(Ipv4Addr::new(192, 0, 2, 1));
        let v4_only = add(&mut rib, 4, 65004, false, v4s);
        rib.process(&AllReachable);
        assert_eq!(
            announced(&mut rib, ext),
            vec![(
                "10.1.0.0/16".into(),
                Some(MpNextHop::V6 {
                    global: V6_SELF.parse().unwrap(),
                    link_local: Some("fe80::1".parse().unwrap()),
                })
            )]
        );
        // No IPv4 address to offer and no RFC 8950: not advertised.
        assert!(announced(&mut rib, plain).is_empty());
        assert_eq!(
            announced(&mut rib, v4_only),
            vec![(
                "10.1.0.0/16".into(),
                Some(MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1)))
            )]
        );
    }

    #[test]
    fn reflection_keeps_ipv6_next_hop_for_capable_clients_only() {
        let mut rib = rib();
        let src = add(&mut rib, 2, 65000, true, v6_session(2, true));
        let capable = add(&mut rib, 3, 65000, true, v6_session(3, true));
        let incapable = add(&mut rib, 4, 65000, true, v6_session(4, false));
        let mut v4s = v6_session(5, false);
        v4s.local_v4 = Some(Ipv4Addr::new(192, 0, 2, 1));
        let with_v4 = add(&mut rib, 5, 65000, true, v4s);
        rib.apply_update(
            src,
            &v4_via_v6(&["10.2.0.0/16"], &[], "2001:db8::2", Some("fe80::2")),
            false,
        )
        .unwrap();
        rib.process(&AllReachable);
        let out = rib.take_output(capable).unwrap().changes;
        assert_eq!(out.len(), 1);
        let a = out[0].attrs.clone().unwrap();
        // RFC 4456 8 attributes, next hop unchanged but the link-local part dropped (it is
        // only meaningful on the link it was learned on).
        assert_eq!(a.next_hop, Some(v6("2001:db8::2")));
        assert_eq!(a.attrs.originator_id, Some(Ipv4Addr::new(10, 0, 0, 2)));
        assert!(announced(&mut rib, incapable).is_empty());
        assert_eq!(
            announced(&mut rib, with_v4),
            vec![(
                "10.2.0.0/16".into(),
                Some(MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1)))
            )]
        );
    }

    /// One attribute set, IPv6 next hop included, interned for an IPv4 prefix (RFC 8950)
    /// and an IPv6 prefix alike: the export caches must not hand the IPv6 prefix's
    /// result (next hop unchanged) to the IPv4 prefix of a peer without the capability.
    #[test]
    fn export_cache_tells_ipv4_from_ipv6_prefixes_of_one_attribute_set() {
        let mut rib = rib();
        let src = add(&mut rib, 2, 65002, false, v6_session(2, true));
        let mut v4s = v6_session(5, false);
        v4s.local_v4 = Some(Ipv4Addr::new(192, 0, 2, 1));
        let ibgp = add(&mut rib, 5, 65000, false, v4s);
        let mut v6_update = v4_via_v6(&[], &[65002], "2001:db8::2", None);
        if let Some(r) = v6_update.mp_reach.as_mut() {
            r.family = Family::IPV6_UNICAST;
            r.nlri = MpNlri::Unicast(vec![Nlri::new("2001:db8:2::/48".parse().unwrap())]);
        }
        rib.apply_update(src, &v6_update, false).unwrap();
        let v4_update = v4_via_v6(&["10.2.0.0/16"], &[65002], "2001:db8::2", None);
        rib.apply_update(src, &v4_update, false).unwrap();
        rib.process(&AllReachable);
        let mut out = announced(&mut rib, ibgp);
        out.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            out,
            vec![
                (
                    "10.2.0.0/16".into(),
                    Some(MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1)))
                ),
                ("2001:db8:2::/48".into(), Some(v6("2001:db8::2"))),
            ]
        );
    }

    #[test]
    fn encoded_in_mp_reach_afi_1_with_ipv6_next_hop() {
        let mut rib = rib();
        let src = add(&mut rib, 2, 65002, false, v6_session(2, true));
        let dst = add(&mut rib, 3, 65003, false, v6_session(3, true));
        rib.apply_update(
            src,
            &v4_via_v6(
                &["10.2.0.0/16", "10.3.0.0/24"],
                &[65002],
                "2001:db8::2",
                None,
            ),
            false,
        )
        .unwrap();
        rib.process(&AllReachable);
        let mut frames = Vec::new();
        let ctx = CodecContext {
            four_octet_as: true,
            ..Default::default()
        };
        let enc = rib.take_encoded(dst, &mut frames).unwrap();
        assert_eq!(enc.announced, 2);
        let mut seen = Vec::new();
        for f in &frames {
            let Ok(Inbound::Update(d)) = decode_message(f, &ctx) else {
                panic!("not an UPDATE");
            };
            let u = d.update;
            if let Some(r) = u.mp_reach {
                assert!(u.nlri.is_empty(), "IPv4 NLRI go inside MP_REACH_NLRI");
                assert_eq!(u.attributes.next_hop, None, "no NEXT_HOP attribute");
                assert_eq!(r.family, Family::IPV4_UNICAST);
                // eBGP: next hop self, our global IPv6 address plus link-local.
                assert_eq!(
                    r.next_hop,
                    MpNextHop::V6 {
                        global: V6_SELF.parse().unwrap(),
                        link_local: Some("fe80::1".parse().unwrap()),
                    }
                );
                let MpNlri::Unicast(v) = r.nlri else {
                    panic!("opaque NLRI")
                };
                seen.extend(v.into_iter().map(|n| n.prefix.to_string()));
            }
        }
        assert_eq!(seen, vec!["10.2.0.0/16", "10.3.0.0/24"]);
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;

    #[test]
    fn identity_changes_only_without_peers_and_applies_to_new_peers() {
        let mut rib = Rib::new(RibConfig::new(65000, Ipv4Addr::new(10, 0, 0, 1)));
        rib.originate(LocalRoute::new(
            "10.9.0.0/24".parse().unwrap(),
            RouteSource::Static,
        ))
        .unwrap();
        let peer = |asn| PeerConfig::new("p", IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)), asn);
        let id = rib.add_peer(peer(65001)).unwrap();
        assert!(matches!(
            rib.set_identity(65001, Ipv4Addr::new(10, 0, 0, 9)),
            Err(RibError::PeersConfigured)
        ));
        rib.remove_peer(id).unwrap();
        rib.set_identity(65001, Ipv4Addr::new(10, 0, 0, 9)).unwrap();
        assert_eq!(rib.config().local_as, 65001);
        assert_eq!(rib.config().router_id, Ipv4Addr::new(10, 0, 0, 9));
        // The same peer is now iBGP: the local route goes out without our AS prepended
        // and with LOCAL_PREF (eBGP would prepend 65001 and strip LOCAL_PREF).
        let id = rib.add_peer(peer(65001)).unwrap();
        let s = SessionInfo::new(Ipv4Addr::new(10, 0, 0, 2), Some(Ipv4Addr::new(10, 0, 0, 1)));
        rib.peer_up(id, s, Instant::now()).unwrap();
        rib.process(&AllReachable);
        let out = rib.take_output(id).unwrap();
        let c = out
            .changes
            .iter()
            .find(|c| c.nlri.prefix.to_string() == "10.9.0.0/24")
            .expect("local route announced");
        let a = c.attrs.as_ref().expect("announcement");
        assert!(a
            .attrs
            .as_path
            .as_ref()
            .is_none_or(|p| p.segments.is_empty()));
        assert!(a.attrs.local_pref.is_some());
    }
}
