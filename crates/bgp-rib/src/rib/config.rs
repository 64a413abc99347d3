//! What the caller tells the RIB about itself and its peers: RIB-wide settings
//! ([`RibConfig`]), a peer's static facts ([`PeerConfig`]) and what its session
//! negotiated ([`SessionInfo`]), and the handle it gets back for a peer ([`PeerId`]).
//! Plain values: the RIB copies them in and owns no configuration file or session.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::Duration;

use bgp_proto::{CodecContext, Family, GracefulRestart, LlgrFamily};

use crate::policy::CompiledPolicy;

/// Handle of a configured peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId(pub(crate) u32);

impl PeerId {
    /// The raw index (stable for the life of the [`Rib`](crate::Rib)).
    pub fn index(self) -> u32 {
        self.0
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
    /// install mode and metric; a rejected route is removed from the FIB. Fixed for the
    /// life of the [`Rib`](crate::Rib): the daemon applies a changed kernel policy at its
    /// next start.
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
    /// The CLUSTER_ID in force: the configured one, else the router id (RFC 4456 7).
    pub(crate) fn effective_cluster_id(&self) -> Ipv4Addr {
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
    /// Configured but administratively disabled: its session is not expected to come up,
    /// so graceful-restart recovery does not wait for its End-of-RIB (RFC 4724 4.1 waits
    /// for the peers that can answer; BIRD's disabled protocols hold no recovery either).
    /// Changed in place with [`Rib::set_peer_disabled`](crate::Rib::set_peer_disabled).
    pub disabled: bool,
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
            disabled: false,
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
