//! The on-disk TOML schema, exactly as serde reads it.
//!
//! Everything here mirrors what an operator writes. Values stay optional where a template or
//! a default may fill them in; [`super::load`] turns these into the fully resolved
//! [`super::Config`] the runtime uses. Every table refuses unknown keys
//! (`deny_unknown_fields`) so a typo is an error with a line and column, not a silently
//! ignored setting. Names that other parts of the file refer to (templates, policies) and
//! addresses are kept as [`toml::Spanned`] so semantic errors can point at them too.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::types::{
    AddPathConfig, CommunityValue, FamilyName, LargeCommunityValue, ListenAddr, MaxPrefixAction,
    NextHopMode, OnStop, PeerAddress,
};

/// One configuration file: the main file or a drop-in.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Required in the main file, refused in drop-in files.
    pub global: Option<Spanned<GlobalFile>>,
    #[serde(default)]
    /// Peer templates by name.
    pub templates: BTreeMap<Spanned<String>, PeerFile>,
    #[serde(default)]
    /// Peers by name.
    pub peers: BTreeMap<Spanned<String>, PeerFile>,
    #[serde(default)]
    /// Routing policies by name.
    pub policies: BTreeMap<Spanned<String>, super::PolicyDef>,
    #[serde(default)]
    /// Routes to originate.
    pub originate: Vec<Spanned<OriginateFile>>,
    /// The kernel FIB section (documented in docs/config.md, "Kernel").
    pub kernel: Option<super::KernelSection>,
    #[serde(default)]
    /// BMP monitoring stations (`[[bmp]]`).
    pub bmp: Vec<Spanned<super::monitoring::BmpFile>>,
    /// MRT files (`[mrt]`).
    pub mrt: Option<Spanned<super::monitoring::MrtFile>>,
}

/// `[global]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalFile {
    /// Our autonomous system number.
    pub asn: u32,
    /// Our BGP identifier (RFC 6286).
    pub router_id: Ipv4Addr,
    /// Addresses to accept BGP connections on, e.g. `["0.0.0.0", "::", "127.0.0.2:1790"]`.
    pub listen: Option<Vec<Spanned<ListenAddr>>>,
    /// Port used for listen addresses without an explicit port.
    pub listen_port: Option<u16>,
    /// Route reflector cluster id; defaults to the router id when any peer is a client.
    pub cluster_id: Option<Ipv4Addr>,
    /// Directory of drop-in `*.toml` files (one per peer, as confd writes them); relative
    /// paths are taken from the main file's directory.
    pub include_dir: Option<PathBuf>,
    /// Maximum number of equal-cost paths installed / exported as a multipath set.
    pub max_paths: Option<u16>,
    /// Control socket settings.
    pub control: Option<ControlFile>,
    /// The metrics endpoint; off when absent.
    pub metrics: Option<MetricsFile>,
    /// Graceful restart settings.
    pub graceful_restart: Option<GracefulRestartFile>,
    /// User to run as after start-up (bgpd keeps only the capabilities it needs).
    pub user: Option<String>,
    /// Group to run as.
    pub group: Option<String>,
}

/// `[global.control]`.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControlFile {
    /// Unix socket path; default `/run/bgpd/bgpd.sock`.
    pub socket: Option<PathBuf>,
    /// Permission bits of the socket as an octal string, default `"0660"`.
    pub mode: Option<Spanned<String>>,
    /// Disable the control socket entirely.
    pub enabled: Option<bool>,
    /// BIRD-compatible status socket for IPv4 sessions (what calico-node reads at
    /// `/var/run/calico/bird.ctl`); off unless set.
    pub bird_socket: Option<PathBuf>,
    /// BIRD-compatible status socket for IPv6 sessions (`bird6.ctl`); off unless set.
    pub bird6_socket: Option<PathBuf>,
    /// Output layout of the BIRD sockets: `"bird1"` (BIRD 1.6, what Calico ships and
    /// parses; the default) or `"bird2"`.
    pub bird_format: Option<Spanned<String>>,
    /// Permission bits of the BIRD sockets, default the control socket's `mode`.
    pub bird_mode: Option<Spanned<String>>,
    /// Group owning the sockets (and a socket directory bgpd creates).
    pub group: Option<Spanned<String>>,
    /// Connections served at once per socket, default 32.
    pub max_connections: Option<Spanned<usize>>,
    /// Seconds a client may stay idle, or take to read an answer, default 60.
    pub timeout: Option<u64>,
}

/// `[global.metrics]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsFile {
    /// Address and port of the HTTP endpoint, e.g. `"127.0.0.1:9179"`.
    pub listen: Spanned<String>,
}

/// `graceful_restart` tables (global defaults and per peer/template).
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GracefulRestartFile {
    /// Turn the feature on or off.
    pub enabled: Option<bool>,
    /// Seconds peers should keep our routes while we restart (RFC 4724, 12 bits).
    pub restart_time: Option<u16>,
    /// Seconds we keep a restarting peer's routes when it does not come back.
    pub stale_time: Option<u32>,
    /// Long-lived graceful restart stale time (RFC 9494); 0 disables LLGR.
    pub long_lived_stale_time: Option<u32>,
    /// Advertise the N bit (RFC 8538).
    pub notification: Option<bool>,
    /// Cap on the restart time a peer announces (seconds).
    pub max_restart_time: Option<u16>,
    /// Cap on the LLGR stale time a peer announces (seconds).
    pub max_long_lived_stale_time: Option<u32>,
    /// Keep a peer's routes stale after its hold timer expired, with the N bit (RFC 8538
    /// 4); default true.
    pub retain_on_hold_expiry: Option<bool>,
    /// What the peer is told when bgpd stops: `"notify"` (default) or `"restart"`.
    pub on_stop: Option<OnStop>,
    /// Global only: after a restart (`-R`), seconds to wait for a peer's session to come
    /// up before the selection deferral no longer waits for it; 0 (default): wait the
    /// whole restart time.
    pub absent_peer_wait: Option<u16>,
}

/// `[peers.NAME]` and `[templates.NAME]`: every setting optional so templates compose.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PeerFile {
    /// Template to inherit unset settings from.
    pub template: Option<Spanned<String>>,
    /// Free text shown by `bgpctl show peer`.
    pub description: Option<String>,
    /// The peer's address (link-local with `%interface`).
    pub address: Option<Spanned<PeerAddress>>,
    /// The peer's AS.
    pub remote_as: Option<u32>,
    /// Our AS on this session.
    pub local_as: Option<u32>,
    /// The port, when given.
    pub port: Option<u16>,
    /// Never connect, only accept.
    pub passive: Option<bool>,
    /// Configured but administratively down.
    pub disabled: Option<bool>,
    /// TCP-MD5 key (RFC 2385).
    pub password: Option<String>,
    /// Proposed hold time in seconds.
    pub hold_time: Option<Spanned<u16>>,
    /// Keepalive interval in seconds.
    pub keepalive: Option<u16>,
    /// Seconds before retrying a failed connection.
    pub connect_retry: Option<u16>,
    /// GTSM (RFC 5082).
    pub ttl_security: Option<bool>,
    /// TTL of outgoing packets (hops to the peer).
    pub multihop: Option<Spanned<u8>>,
    /// Local address to connect from.
    pub source_address: Option<IpAddr>,
    /// Route reflector client (RFC 4456).
    pub route_reflector_client: Option<bool>,
    /// Cluster id override (RFC 4456).
    pub cluster_id: Option<Ipv4Addr>,
    /// Accept routes whose AS_PATH contains our AS up to this many times (BIRD's `allow
    /// local as`, Calico's `numAllowedLocalASNumbers`).
    pub allow_local_as: Option<u8>,
    /// Next hop to announce.
    pub next_hop: Option<NextHopMode>,
    /// ADD-PATH mode (RFC 7911).
    pub add_path: Option<AddPathConfig>,
    /// Most paths the peer may have for one prefix (ADD-PATH receive).
    pub add_path_receive_limit: Option<u32>,
    /// RFC 8950 extended next hop for IPv4 unicast over IPv6 next hops.
    pub extended_next_hop: Option<bool>,
    /// Graceful restart settings.
    pub graceful_restart: Option<GracefulRestartFile>,
    /// Address families of the session.
    pub families: Option<Vec<FamilyName>>,
    /// Import policy chain.
    pub import: Option<Vec<Spanned<String>>>,
    /// Export policy chain.
    pub export: Option<Vec<Spanned<String>>>,
    /// Prefix limit.
    pub max_prefixes: Option<MaxPrefixesFile>,
    /// BFD for this session (RFC 5880, RFC 5882); off when absent.
    pub bfd: Option<Spanned<BfdFile>>,
}

/// `bfd = { min_rx_ms = 300, min_tx_ms = 300, multiplier = 3 }` (docs/config.md, "BFD").
/// Each key is taken from the nearest peer or template that sets it.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BfdFile {
    /// `false` turns BFD off for a peer whose template turns it on.
    pub enabled: Option<bool>,
    /// Required Min RX Interval in milliseconds.
    pub min_rx_ms: Option<u32>,
    /// Desired Min TX Interval in milliseconds.
    pub min_tx_ms: Option<u32>,
    /// Detection multiplier.
    pub multiplier: Option<u8>,
    /// `true`: multihop (RFC 5883); `false`: single hop (RFC 5881); unset: single hop
    /// when the peer is on a connected subnet.
    pub multihop: Option<bool>,
    /// Simple password authentication (RFC 5880 6.7.2), 1 to 16 bytes.
    pub password: Option<String>,
}

/// `max_prefixes = { limit = N, action = "warn" | "teardown" }`.
#[derive(Clone, Debug, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MaxPrefixesFile {
    /// Most prefixes accepted from the peer.
    pub limit: u32,
    #[serde(default)]
    /// What happens above the limit.
    pub action: MaxPrefixAction,
}

/// `[[originate]]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OriginateFile {
    /// The prefix (host bits zero).
    pub prefix: Spanned<IpNet>,
    /// Advertise but never install in the kernel (Calico service CIDRs, /32s).
    #[serde(default)]
    pub no_install: bool,
    /// Gateway: the route is `via` this address instead of a blackhole (Calico's static
    /// route to a `reachableBy` BGP peer).
    pub next_hop: Option<IpAddr>,
    #[serde(default)]
    /// Standard communities to attach.
    pub communities: Vec<CommunityValue>,
    #[serde(default)]
    /// Large communities to attach.
    pub large_communities: Vec<LargeCommunityValue>,
    /// LOCAL_PREF to set.
    pub local_pref: Option<u32>,
    /// MULTI_EXIT_DISC to set.
    pub med: Option<u32>,
}
