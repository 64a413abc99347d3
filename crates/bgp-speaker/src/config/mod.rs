//! Daemon configuration: TOML schema, loading with drop-in files, template inheritance,
//! validation with file:line:column errors, a builder for configurations made in code, and
//! the diff between two configurations.
//!
//! The layering is:
//! - [`mod@file`]: the serde schema of one TOML file, optional fields, unknown keys refused;
//! - [`load`] (load.rs): reading the main file plus the drop-in directory, merging them,
//!   resolving `template = "..."` chains and defaults, and validating, which yields a
//!   [`Config`] whose values are all concrete;
//! - [`Config::builder`] (builder.rs): the same [`Config`] from typed values, checked by
//!   the same rules (check.rs);
//! - [`ConfigDiff`] (diff.rs): what changed between two [`Config`]s, classified by what
//!   must happen to a running speaker (restart a session, soft-reconfigure it, or nothing).
//!
//! The full format is described in `docs/config.md`.

mod bfd;
mod builder;
mod check;
mod control;
pub(crate) mod diff;
pub mod explicit;
pub mod file;
mod load;
mod metrics;
mod monitoring;
mod secrecy;
mod types;

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::PathBuf;

use bgp_proto::{Community, Family, LargeCommunity};
use ipnet::IpNet;

pub use bfd::{BfdConfig, BfdHops};
pub use builder::ConfigBuilder;
pub use control::{BirdFormat, BirdSocketConfig, ControlConfig, ControlLimits};
pub use diff::{ConfigDiff, PeerChange};
pub use load::{from_file, from_str, list_drop_ins, load, load_all};
pub use metrics::MetricsConfig;
pub use monitoring::{BmpConfig, MrtConfig, MrtFiles};
pub use types::{
    AddPathConfig, CommunityValue, FamilyName, LargeCommunityValue, ListenAddr, MaxPrefixAction,
    NextHopMode, OnStop, PeerAddress,
};

/// The policy language: rules matching routes, modifying them, accepting or rejecting.
pub use bgp_rib::policy;

/// A named routing policy (`[policies.NAME]`, [`ConfigBuilder::policy`]).
pub type PolicyDef = bgp_rib::policy::Policy;

/// The `[kernel]` section, owned by the kernel FIB component.
pub type KernelSection = bgp_kernel::KernelConfig;

/// The BGP port (RFC 4271 section 8.2.1).
pub const BGP_PORT: u16 = 179;
/// Default hold time. RFC 4271 suggests 90 s; BIRD's 240 s is a known cause of slow failover.
pub const DEFAULT_HOLD_TIME: u16 = 90;
/// Default connect retry time (what Calico configures).
pub const DEFAULT_CONNECT_RETRY: u16 = 5;
/// Default graceful restart time we announce (RFC 4724 section 3, Calico's 120 s).
pub const DEFAULT_RESTART_TIME: u16 = 120;
/// Default time to keep a restarting peer's stale routes.
pub const DEFAULT_STALE_TIME: u32 = 360;
/// Default of [`PeerConfig::add_path_receive_limit`] (the RIB's default).
pub const DEFAULT_ADD_PATH_RECEIVE_LIMIT: u32 = bgp_rib::DEFAULT_ADD_PATH_RECEIVE_LIMIT as u32;
/// Default cap on the restart time a peer announces (RFC 4724 allows 4095 s).
pub const DEFAULT_MAX_RESTART_TIME: u16 = 600;
/// Default cap on the LLGR stale time a peer announces (RFC 9494 allows ~194 days).
pub const DEFAULT_MAX_LONG_LIVED_STALE_TIME: u32 = 86_400;
/// Default of [`GlobalConfig::max_paths`].
const DEFAULT_MAX_PATHS: u16 = 16;

/// Errors reading or validating a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file or directory could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        #[source]
        /// The I/O error.
        source: std::io::Error,
    },
    /// A syntax or semantic error at a known position.
    #[error("{}:{line}:{column}: {message}", path.display())]
    At {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// What is wrong.
        message: String,
    },
    /// An error without a position inside the file.
    #[error("{}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A configuration built in code ([`ConfigBuilder`]) breaks a rule.
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

impl ConfigError {
    fn at(src: &Source, span: Range<usize>, message: impl Into<String>) -> ConfigError {
        let (line, column) = line_col(&src.text, span.start);
        ConfigError::At {
            path: src.path.clone(),
            line,
            column,
            message: message.into(),
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

/// A file's path and text, kept to turn spans into line:column.
#[derive(Debug)]
struct Source {
    path: PathBuf,
    text: String,
    /// The metadata of the file as it was read (`None` for text given directly).
    meta: Option<std::fs::Metadata>,
}

/// A fully resolved configuration: defaults applied, templates expanded, validated.
#[derive(Clone, Debug, PartialEq)]
pub struct Config {
    /// Global settings.
    pub global: GlobalConfig,
    /// Peers by name.
    pub peers: BTreeMap<String, PeerConfig>,
    /// Policies by name.
    pub policies: BTreeMap<String, PolicyDef>,
    /// Originated routes by prefix.
    pub originate: BTreeMap<IpNet, Originate>,
    /// Kernel FIB settings; `None` runs without touching the kernel.
    pub kernel: Option<KernelSection>,
    /// BMP monitoring stations (`[[bmp]]`), in file order.
    pub bmp: Vec<BmpConfig>,
    /// MRT files (`[mrt]`); `None`: none.
    pub mrt: Option<MrtConfig>,
}

/// Global settings.
#[derive(Clone, Debug, PartialEq)]
pub struct GlobalConfig {
    /// Our autonomous system number.
    pub asn: u32,
    /// Our BGP identifier (RFC 6286).
    pub router_id: Ipv4Addr,
    /// Sockets to accept BGP connections on.
    pub listen: Vec<SocketAddr>,
    /// Cluster id for route reflection (RFC 4456 section 7); the router id when unset.
    pub cluster_id: Option<Ipv4Addr>,
    /// Maximum equal-cost paths in a multipath set.
    pub max_paths: u16,
    /// Control socket settings.
    pub control: ControlConfig,
    /// The metrics endpoint bgpd serves; `None`: none.
    pub metrics: Option<MetricsConfig>,
    /// Graceful restart defaults for every peer.
    pub graceful_restart: GracefulRestartConfig,
    /// Directory of drop-in files, resolved against the main file's directory.
    pub include_dir: Option<PathBuf>,
    /// User bgpd runs as once started (it starts as root); `None`: stays root, with only
    /// the capabilities it needs (docs/security.md).
    pub user: Option<String>,
    /// Group bgpd runs as; the user's primary group when only `user` is set.
    pub group: Option<String>,
}

impl GlobalConfig {
    /// AS `asn` and identifier `router_id`, every other setting as a file without it has
    /// it.
    fn new(asn: u32, router_id: Ipv4Addr) -> GlobalConfig {
        GlobalConfig {
            asn,
            router_id,
            listen: default_listen(BGP_PORT),
            cluster_id: None,
            max_paths: DEFAULT_MAX_PATHS,
            control: ControlConfig::default(),
            metrics: None,
            graceful_restart: GracefulRestartConfig::default(),
            include_dir: None,
            user: None,
            group: None,
        }
    }
}

/// Every IPv4 and IPv6 address, on `port`.
fn default_listen(port: u16) -> Vec<SocketAddr> {
    vec![
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
        SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
    ]
}

/// Graceful restart (RFC 4724) and long-lived graceful restart (RFC 9494) settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Announce the graceful restart capability.
    pub enabled: bool,
    /// Seconds peers keep our routes while we restart (12 bits).
    pub restart_time: u16,
    /// Seconds a re-established peer's stale routes wait for End-of-RIB.
    pub stale_time: u32,
    /// Long-lived stale time (RFC 9494); 0 disables LLGR.
    pub long_lived_stale_time: u32,
    /// RFC 8538 N bit: NOTIFICATIONs other than Hard Reset are graceful.
    pub notification: bool,
    /// Longest restart time accepted from a peer: its routes are kept at most this long
    /// after its session drops, whatever it announced.
    pub max_restart_time: u16,
    /// Longest LLGR stale time accepted from a peer (only when we offer LLGR ourselves).
    pub max_long_lived_stale_time: u32,
    /// With the N bit, a peer's routes are kept stale after its hold timer expired (RFC
    /// 8538 4); off: they go at once.
    pub retain_on_hold_expiry: bool,
    /// What the peer is told when bgpd stops (not when it leaves for good).
    pub on_stop: OnStop,
    /// Global only: after our restart, how long (seconds) the selection deferral waits
    /// for a peer's session to come up before it stops waiting for that peer's End-of-RIB
    /// (RFC 4724 4.1); 0: the whole restart time.
    pub absent_peer_wait: u16,
}

impl Default for GracefulRestartConfig {
    fn default() -> Self {
        GracefulRestartConfig {
            enabled: true,
            restart_time: DEFAULT_RESTART_TIME,
            stale_time: DEFAULT_STALE_TIME,
            long_lived_stale_time: 0,
            notification: true,
            max_restart_time: DEFAULT_MAX_RESTART_TIME,
            max_long_lived_stale_time: DEFAULT_MAX_LONG_LIVED_STALE_TIME,
            retain_on_hold_expiry: true,
            on_stop: OnStop::Notify,
            absent_peer_wait: 0,
        }
    }
}

/// Prefix limit of a peer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MaxPrefixes {
    /// Most prefixes accepted from the peer.
    pub limit: u32,
    /// What happens above the limit.
    pub action: MaxPrefixAction,
}

/// One peer, fully resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerConfig {
    /// Peer name (logs, bgpctl, policy `peer_name`).
    pub name: String,
    /// Free text.
    pub description: Option<String>,
    /// The peer's address.
    pub address: PeerAddress,
    /// The peer's AS.
    pub remote_as: u32,
    /// Our AS towards this peer; the global AS when unset.
    pub local_as: Option<u32>,
    /// The peer's TCP port.
    pub port: u16,
    /// Never connect, only accept.
    pub passive: bool,
    /// Administratively down: configured but no session.
    pub disabled: bool,
    /// TCP-MD5 key (RFC 2385).
    pub password: Option<String>,
    /// Proposed hold time in seconds (0 or at least 3).
    pub hold_time: u16,
    /// Keepalive interval in seconds.
    pub keepalive: u16,
    /// Initial connect retry time in seconds.
    pub connect_retry: u16,
    /// GTSM (RFC 5082): send with TTL 255 and require at least 256 - `multihop`.
    pub ttl_security: bool,
    /// TTL of outgoing packets (hops to the peer); `None`: 1 for eBGP, 64 for iBGP.
    pub multihop: Option<u8>,
    /// Local address to connect from.
    pub source_address: Option<IpAddr>,
    /// Route reflector client (RFC 4456).
    pub route_reflector_client: bool,
    /// Per-peer cluster id override (RFC 4456).
    pub cluster_id: Option<Ipv4Addr>,
    /// Routes from this peer may contain our AS this many times (BIRD's `allow local as`).
    pub allow_local_as: u8,
    /// Next hop to announce.
    pub next_hop: NextHopMode,
    /// ADD-PATH mode (RFC 7911).
    pub add_path: AddPathConfig,
    /// Most paths the peer may have for one prefix when we receive ADD-PATH (RFC 7911
    /// sets no limit); new path ids past it are ignored and logged once per session.
    pub add_path_receive_limit: u32,
    /// RFC 8950: announce the extended next hop capability for IPv4 unicast with IPv6 next
    /// hops, so IPv4 routes can be exchanged over an IPv6 session (default false).
    pub extended_next_hop: bool,
    /// Graceful restart settings of this session.
    pub graceful_restart: GracefulRestartConfig,
    /// Address families of the session.
    pub families: Vec<Family>,
    /// Import policy chain, applied in order.
    pub import: Vec<String>,
    /// Export policy chain, applied in order.
    pub export: Vec<String>,
    /// Prefix limit.
    pub max_prefixes: Option<MaxPrefixes>,
    /// BFD for this session (RFC 5882); `None`: off.
    pub bfd: Option<BfdConfig>,
}

impl PeerConfig {
    /// A peer with every setting at its default, as a starting point for the library API.
    pub fn new(name: impl Into<String>, address: IpAddr, remote_as: u32) -> PeerConfig {
        PeerConfig {
            name: name.into(),
            description: None,
            address: PeerAddress::new(address),
            remote_as,
            local_as: None,
            port: BGP_PORT,
            passive: false,
            disabled: false,
            password: None,
            hold_time: DEFAULT_HOLD_TIME,
            keepalive: DEFAULT_HOLD_TIME / 3,
            connect_retry: DEFAULT_CONNECT_RETRY,
            ttl_security: false,
            multihop: None,
            source_address: None,
            route_reflector_client: false,
            cluster_id: None,
            allow_local_as: 0,
            next_hop: NextHopMode::Auto,
            add_path: AddPathConfig::Off,
            add_path_receive_limit: DEFAULT_ADD_PATH_RECEIVE_LIMIT,
            extended_next_hop: false,
            graceful_restart: GracefulRestartConfig::default(),
            families: vec![default_family(address)],
            import: Vec::new(),
            export: Vec::new(),
            max_prefixes: None,
            bfd: None,
        }
    }

    /// Our AS on this session.
    pub fn local_as(&self, global: &GlobalConfig) -> u32 {
        self.local_as.unwrap_or(global.asn)
    }

    /// True when the session is iBGP (same AS on both ends).
    pub fn is_ibgp(&self, global: &GlobalConfig) -> bool {
        self.remote_as == self.local_as(global)
    }

    /// The TTL to send with: 255 under GTSM, else `multihop`, else 1 for eBGP and 64 for
    /// iBGP.
    pub fn ttl(&self, global: &GlobalConfig) -> u8 {
        if self.ttl_security {
            255
        } else {
            self.multihop
                .unwrap_or(if self.is_ibgp(global) { 64 } else { 1 })
        }
    }

    /// The minimum TTL to accept under GTSM (RFC 5082 section 3): 256 - hops.
    pub fn min_ttl(&self) -> Option<u8> {
        self.ttl_security
            .then(|| 255u8.saturating_sub(self.multihop.unwrap_or(1).saturating_sub(1)))
    }

    /// Validates the settings that do not depend on the rest of the configuration.
    pub fn check(&self) -> Result<(), String> {
        check::peer(self)
    }

    /// What tells two peers apart: the address, the interface of a link-local one, the
    /// port. No two peers may share it.
    pub(crate) fn endpoint(&self) -> (IpAddr, Option<String>, u16) {
        (self.address.addr, self.address.scope.clone(), self.port)
    }
}

fn default_family(addr: IpAddr) -> Family {
    match addr {
        IpAddr::V4(_) => Family::IPV4_UNICAST,
        IpAddr::V6(_) => Family::IPV6_UNICAST,
    }
}

/// A route this speaker originates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Originate {
    /// The prefix.
    pub prefix: IpNet,
    /// Advertise but never install in the kernel.
    pub no_install: bool,
    /// Gateway of the route (`None`: a blackhole).
    pub next_hop: Option<IpAddr>,
    /// Standard communities to attach.
    pub communities: Vec<Community>,
    /// Large communities to attach.
    pub large_communities: Vec<LargeCommunity>,
    /// LOCAL_PREF to set.
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC to set.
    pub med: Option<u32>,
}

impl Originate {
    /// A plain originated route.
    pub fn new(prefix: IpNet) -> Originate {
        Originate {
            prefix,
            no_install: false,
            next_hop: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
            local_pref: None,
            med: None,
        }
    }
}
#[cfg(test)]
mod tests;
