//! Daemon configuration: TOML schema, loading with drop-in files, template inheritance,
//! validation with file:line:column errors, and the diff between two configurations.
//!
//! The layering is:
//! - [`mod@file`]: the serde schema of one TOML file, optional fields, unknown keys refused;
//! - this module: reading the main file plus the drop-in directory, merging them,
//!   resolving `template = "..."` chains and defaults, and validating, which yields a
//!   [`Config`] whose values are all concrete;
//! - [`diff`]: what changed between two [`Config`]s, classified by what must happen to a
//!   running speaker (restart a session, soft-reconfigure it, or nothing).
//!
//! The full format is described in `docs/config.md`.

pub mod control;
pub mod diff;
pub mod explicit;
pub mod file;
mod secrecy;
pub mod types;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bgp_proto::{Community, Family, LargeCommunity};
use ipnet::IpNet;
use toml::Spanned;

pub use control::{BirdFormat, BirdSocketConfig, ControlConfig, ControlLimits};
pub use diff::{ConfigDiff, PeerChange};
pub use types::{
    AddPathConfig, CommunityValue, FamilyName, LargeCommunityValue, ListenAddr, MaxPrefixAction,
    NextHopMode, PeerAddress,
};

use file::{FileConfig, GracefulRestartFile, PeerFile};

/// A named routing policy (`[policies.NAME]`), the RIB's serde policy type.
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
        validate_peer(self)
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

/// Semantic checks on a resolved peer that do not need file positions.
fn validate_peer(p: &PeerConfig) -> Result<(), String> {
    if p.name.is_empty() {
        return Err("peer name must not be empty".into());
    }
    if p.hold_time != 0 && p.hold_time < 3 {
        // RFC 4271 section 4.2: zero or at least three seconds.
        return Err(format!(
            "hold_time {} is invalid: it must be 0 or at least 3 seconds (RFC 4271 4.2)",
            p.hold_time
        ));
    }
    if p.hold_time != 0 && p.keepalive >= p.hold_time {
        return Err(format!(
            "keepalive {} must be smaller than hold_time {}",
            p.keepalive, p.hold_time
        ));
    }
    if p.connect_retry == 0 {
        return Err("connect_retry must be at least 1 second".into());
    }
    if p.multihop == Some(0) {
        return Err("multihop must be between 1 and 255".into());
    }
    if let Some(src) = p.source_address {
        if src.is_ipv4() != p.address.addr.is_ipv4() {
            return Err(format!(
                "source_address {src} is not of the same family as the peer address {}",
                p.address
            ));
        }
    }
    if p.families.is_empty() {
        return Err("families must not be empty".into());
    }
    if p.remote_as == 0 || p.local_as == Some(0) {
        return Err("AS number 0 is reserved (RFC 7607)".into());
    }
    if p.password.as_ref().is_some_and(|pw| pw.len() > 80) {
        // TCP_MD5SIG_MAXKEYLEN on Linux.
        return Err("password is longer than 80 bytes (Linux TCP-MD5 limit)".into());
    }
    if p.max_prefixes.is_some_and(|m| m.limit == 0) {
        return Err("max_prefixes.limit must be at least 1".into());
    }
    if p.add_path_receive_limit == 0 {
        return Err("add_path_receive_limit must be at least 1".into());
    }
    Ok(())
}

/// A peer or template entry with the file it came from.
struct Entry<'a> {
    src: &'a Source,
    name: &'a Spanned<String>,
    peer: &'a PeerFile,
}

/// Loads a configuration: the main file, then every `*.toml` in the drop-in directory in
/// name order.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let main = read_source(path)?;
    let main_file = parse_checked(&main)?;
    let Some(global) = &main_file.global else {
        return Err(ConfigError::File {
            path: path.to_owned(),
            message: "missing [global] section".into(),
        });
    };
    let mut drop_ins = Vec::new();
    if let Some(dir) = &global.get_ref().include_dir {
        let dir = path.parent().unwrap_or(Path::new(".")).join(dir);
        for p in list_drop_ins(&dir)? {
            drop_ins.push(read_source(&p)?);
        }
    }
    let mut parsed = Vec::with_capacity(drop_ins.len());
    for src in &drop_ins {
        let f = parse_checked(src)?;
        if let Some(g) = &f.global {
            return Err(ConfigError::at(
                src,
                g.span(),
                "[global] is only allowed in the main configuration file",
            ));
        }
        parsed.push(f);
    }
    let mut files = vec![(&main, &main_file)];
    files.extend(drop_ins.iter().zip(parsed.iter()));
    resolve(path, &files)
}

/// Parses and resolves a configuration from a string, as if read from `path` (used for
/// error messages and to resolve a relative include directory). The include directory
/// is not read.
pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let src = Source {
        path: path.to_owned(),
        text: text.to_owned(),
        meta: None,
    };
    let f = parse_file(&src)?;
    if f.global.is_none() {
        return Err(ConfigError::File {
            path: path.to_owned(),
            message: "missing [global] section".into(),
        });
    }
    resolve(path, &[(&src, &f)])
}

fn read_source(path: &Path) -> Result<Source, ConfigError> {
    use std::io::Read;
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io)?;
    Ok(Source {
        path: path.to_owned(),
        text,
        meta: Some(meta),
    })
}

/// Parses a file read from disk, checking the file's ownership and mode when it holds
/// passwords ([`secrecy`]).
fn parse_checked(src: &Source) -> Result<FileConfig, ConfigError> {
    let f = parse_file(src)?;
    if let Some(meta) = &src.meta {
        if secrecy::holds_passwords(&f) {
            secrecy::check(src, meta)?;
        }
    }
    Ok(f)
}

/// The drop-in files of a directory, `*.toml` only, sorted by name. A missing directory
/// is an empty one, so a renderer may create it later.
pub fn list_drop_ins(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Io {
                path: dir.to_owned(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|source| ConfigError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let p = ent.path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if !hidden && p.extension().is_some_and(|e| e == "toml") && p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

fn parse_file(src: &Source) -> Result<FileConfig, ConfigError> {
    toml::from_str::<FileConfig>(&src.text).map_err(|e| match e.span() {
        Some(span) => ConfigError::at(src, span, e.message().trim_end()),
        None => ConfigError::File {
            path: src.path.clone(),
            message: e.message().trim_end().to_owned(),
        },
    })
}

/// Merges the parsed files, expands templates and validates.
fn resolve(main_path: &Path, files: &[(&Source, &FileConfig)]) -> Result<Config, ConfigError> {
    let Some(&(main_src, main)) = files.first() else {
        return Err(ConfigError::File {
            path: main_path.to_owned(),
            message: "no configuration file".into(),
        });
    };
    let Some(gspan) = &main.global else {
        return Err(ConfigError::File {
            path: main_path.to_owned(),
            message: "missing [global] section".into(),
        });
    };
    let global = resolve_global(main_src, gspan, main_path)?;

    // Gather templates, peers, policies and originated routes across files, refusing
    // duplicates with the position of the second definition.
    let mut templates: HashMap<&str, Entry<'_>> = HashMap::new();
    let mut peers: BTreeMap<&str, Entry<'_>> = BTreeMap::new();
    let mut policies = BTreeMap::new();
    let mut originate = BTreeMap::new();
    for &(src, f) in files {
        for (name, peer) in &f.templates {
            if templates.contains_key(name.get_ref().as_str()) {
                return Err(ConfigError::at(
                    src,
                    name.span(),
                    format!("template {:?} is defined twice", name.get_ref()),
                ));
            }
            templates.insert(name.get_ref(), Entry { src, name, peer });
        }
        for (name, peer) in &f.peers {
            if peers.contains_key(name.get_ref().as_str()) {
                return Err(ConfigError::at(
                    src,
                    name.span(),
                    format!("peer {:?} is defined twice", name.get_ref()),
                ));
            }
            peers.insert(name.get_ref(), Entry { src, name, peer });
        }
        for (name, pol) in &f.policies {
            if let Err(e) = pol.compile() {
                return Err(ConfigError::at(
                    src,
                    name.span(),
                    format!("policy {:?}: {e}", name.get_ref()),
                ));
            }
            if policies
                .insert(name.get_ref().clone(), pol.clone())
                .is_some()
            {
                return Err(ConfigError::at(
                    src,
                    name.span(),
                    format!("policy {:?} is defined twice", name.get_ref()),
                ));
            }
        }
        for o in &f.originate {
            let of = o.get_ref();
            let prefix = of.prefix.get_ref().trunc();
            if prefix != *of.prefix.get_ref() {
                return Err(ConfigError::at(
                    src,
                    of.prefix.span(),
                    format!(
                        "prefix {} has host bits set; did you mean {prefix}?",
                        of.prefix.get_ref()
                    ),
                ));
            }
            if of
                .next_hop
                .is_some_and(|nh| nh.is_ipv4() != prefix.addr().is_ipv4())
            {
                return Err(ConfigError::at(
                    src,
                    of.prefix.span(),
                    format!("next_hop of {prefix} is not of the prefix's address family"),
                ));
            }
            let route = Originate {
                prefix,
                no_install: of.no_install,
                next_hop: of.next_hop,
                communities: of.communities.iter().map(|c| c.0).collect(),
                large_communities: of.large_communities.iter().map(|c| c.0).collect(),
                local_pref: of.local_pref,
                med: of.med,
            };
            if originate.insert(prefix, route).is_some() {
                return Err(ConfigError::at(
                    src,
                    of.prefix.span(),
                    format!("prefix {prefix} is originated twice"),
                ));
            }
        }
    }
    let kernel = main.kernel.clone();
    for &(src, f) in files.iter().skip(1) {
        if f.kernel.is_some() {
            return Err(ConfigError::File {
                path: src.path.clone(),
                message: "[kernel] is only allowed in the main configuration file".into(),
            });
        }
    }
    if let Some(name) = kernel.as_ref().and_then(|k| k.export.policy.as_ref()) {
        if !policies.contains_key(name) {
            return Err(ConfigError::File {
                path: main_src.path.clone(),
                message: format!("[kernel.export] policy: unknown policy {name:?}"),
            });
        }
    }

    let mut resolved = BTreeMap::new();
    let mut by_addr: HashMap<(IpAddr, Option<String>, u16), &str> = HashMap::new();
    for (name, entry) in &peers {
        let chain = template_chain(entry, &templates)?;
        let p = resolve_peer(name, &chain, &global)?;
        check_policy_refs(&chain, &policies)?;
        let key = (p.address.addr, p.address.scope.clone(), p.port);
        if let Some(other) = by_addr.insert(key, name) {
            let (src, span) = address_span(&chain, entry);
            return Err(ConfigError::at(
                src,
                span,
                format!(
                    "peer {name:?} has the same address {} and port {} as peer {other:?}",
                    p.address, p.port
                ),
            ));
        }
        resolved.insert(name.to_string(), p);
    }
    Ok(Config {
        global,
        peers: resolved,
        policies,
        originate,
        kernel,
    })
}

fn resolve_global(
    src: &Source,
    g: &Spanned<file::GlobalFile>,
    main_path: &Path,
) -> Result<GlobalConfig, ConfigError> {
    let gf = g.get_ref();
    if gf.asn == 0 {
        return Err(ConfigError::at(
            src,
            g.span(),
            "asn 0 is reserved (RFC 7607)",
        ));
    }
    if gf.router_id.is_unspecified() {
        return Err(ConfigError::at(
            src,
            g.span(),
            "router_id must not be 0.0.0.0 (RFC 6286)",
        ));
    }
    let port = gf.listen_port.unwrap_or(BGP_PORT);
    let listen = match &gf.listen {
        None => vec![
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), port),
        ],
        Some(l) => {
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for a in l {
                let sa = SocketAddr::new(a.get_ref().addr, a.get_ref().port.unwrap_or(port));
                if !seen.insert(sa) {
                    return Err(ConfigError::at(
                        src,
                        a.span(),
                        format!("listen address {sa} is given twice"),
                    ));
                }
                out.push(sa);
            }
            out
        }
    };
    let control = control::resolve(src, gf.control.as_ref())?;
    let graceful_restart = merge_gr(
        &[gf.graceful_restart.as_ref()],
        &GracefulRestartConfig::default(),
    );
    Ok(GlobalConfig {
        asn: gf.asn,
        router_id: gf.router_id,
        listen,
        cluster_id: gf.cluster_id,
        max_paths: gf.max_paths.unwrap_or(16).max(1),
        control,
        graceful_restart,
        user: gf.user.clone(),
        group: gf.group.clone(),
        include_dir: gf
            .include_dir
            .as_ref()
            .map(|d| main_path.parent().unwrap_or(Path::new(".")).join(d)),
    })
}

/// The peer followed by its templates, nearest first. Refuses unknown templates and
/// cycles.
fn template_chain<'a>(
    entry: &'a Entry<'a>,
    templates: &'a HashMap<&str, Entry<'a>>,
) -> Result<Vec<&'a Entry<'a>>, ConfigError> {
    let mut chain = vec![entry];
    let mut cur = entry;
    while let Some(t) = &cur.peer.template {
        let Some(next) = templates.get(t.get_ref().as_str()) else {
            return Err(ConfigError::at(
                cur.src,
                t.span(),
                format!("unknown template {:?}", t.get_ref()),
            ));
        };
        if chain.iter().any(|e| std::ptr::eq(*e, next)) {
            return Err(ConfigError::at(
                cur.src,
                t.span(),
                format!("template {:?} inherits from itself", t.get_ref()),
            ));
        }
        chain.push(next);
        cur = next;
    }
    Ok(chain)
}

/// The first value set along the template chain.
fn pick<'a, T>(chain: &[&'a Entry<'a>], f: impl Fn(&'a PeerFile) -> Option<T>) -> Option<T> {
    chain.iter().find_map(|e| f(e.peer))
}

/// Where to point an error about the peer's address (or its table when unset).
fn address_span<'a>(chain: &[&'a Entry<'a>], entry: &'a Entry<'a>) -> (&'a Source, Range<usize>) {
    chain
        .iter()
        .find_map(|e| e.peer.address.as_ref().map(|a| (e.src, a.span())))
        .unwrap_or((entry.src, entry.name.span()))
}

fn merge_gr(
    layers: &[Option<&GracefulRestartFile>],
    base: &GracefulRestartConfig,
) -> GracefulRestartConfig {
    let find = |f: &dyn Fn(&GracefulRestartFile) -> Option<u64>| {
        layers.iter().flatten().find_map(|g| f(g))
    };
    GracefulRestartConfig {
        enabled: layers
            .iter()
            .flatten()
            .find_map(|g| g.enabled)
            .unwrap_or(base.enabled),
        restart_time: find(&|g| g.restart_time.map(u64::from))
            .map_or(base.restart_time, |v| v.min(4095) as u16),
        stale_time: find(&|g| g.stale_time.map(u64::from)).map_or(base.stale_time, |v| v as u32),
        long_lived_stale_time: find(&|g| g.long_lived_stale_time.map(u64::from))
            .map_or(base.long_lived_stale_time, |v| v.min(0xFF_FFFF) as u32),
        notification: layers
            .iter()
            .flatten()
            .find_map(|g| g.notification)
            .unwrap_or(base.notification),
        max_restart_time: find(&|g| g.max_restart_time.map(u64::from))
            .map_or(base.max_restart_time, |v| v.min(4095) as u16),
        max_long_lived_stale_time: find(&|g| g.max_long_lived_stale_time.map(u64::from))
            .map_or(base.max_long_lived_stale_time, |v| v.min(0xFF_FFFF) as u32),
    }
}

fn resolve_peer<'a>(
    name: &str,
    chain: &[&'a Entry<'a>],
    global: &GlobalConfig,
) -> Result<PeerConfig, ConfigError> {
    let Some(&entry) = chain.first() else {
        return Err(ConfigError::File {
            path: PathBuf::from(name),
            message: "empty template chain".into(),
        });
    };
    let here = |msg: String| ConfigError::at(entry.src, entry.name.span(), msg);
    let address = pick(chain, |p| p.address.as_ref().map(|a| a.get_ref().clone()))
        .ok_or_else(|| here(format!("peer {name:?} has no address")))?;
    let remote_as = pick(chain, |p| p.remote_as)
        .ok_or_else(|| here(format!("peer {name:?} has no remote_as")))?;
    let hold_time =
        pick(chain, |p| p.hold_time.as_ref().map(|h| *h.get_ref())).unwrap_or(DEFAULT_HOLD_TIME);
    let gr_layers: Vec<Option<&GracefulRestartFile>> = chain
        .iter()
        .map(|e| e.peer.graceful_restart.as_ref())
        .collect();
    let mut p = PeerConfig {
        name: name.to_owned(),
        description: pick(chain, |p| p.description.clone()),
        remote_as,
        local_as: pick(chain, |p| p.local_as),
        port: pick(chain, |p| p.port).unwrap_or(BGP_PORT),
        passive: pick(chain, |p| p.passive).unwrap_or(false),
        disabled: pick(chain, |p| p.disabled).unwrap_or(false),
        password: pick(chain, |p| p.password.clone()).filter(|s| !s.is_empty()),
        hold_time,
        keepalive: pick(chain, |p| p.keepalive).unwrap_or(hold_time / 3),
        connect_retry: pick(chain, |p| p.connect_retry).unwrap_or(DEFAULT_CONNECT_RETRY),
        ttl_security: pick(chain, |p| p.ttl_security).unwrap_or(false),
        multihop: pick(chain, |p| p.multihop.as_ref().map(|m| *m.get_ref())),
        source_address: pick(chain, |p| p.source_address),
        route_reflector_client: pick(chain, |p| p.route_reflector_client).unwrap_or(false),
        cluster_id: pick(chain, |p| p.cluster_id),
        allow_local_as: pick(chain, |p| p.allow_local_as).unwrap_or(0),
        next_hop: pick(chain, |p| p.next_hop).unwrap_or_default(),
        add_path: pick(chain, |p| p.add_path).unwrap_or_default(),
        add_path_receive_limit: pick(chain, |p| p.add_path_receive_limit)
            .unwrap_or(DEFAULT_ADD_PATH_RECEIVE_LIMIT),
        extended_next_hop: pick(chain, |p| p.extended_next_hop).unwrap_or(false),
        graceful_restart: merge_gr(&gr_layers, &global.graceful_restart),
        families: pick(chain, |p| p.families.clone())
            .map(|f| {
                let mut v: Vec<Family> = f.iter().map(|n| n.family()).collect();
                v.dedup();
                v
            })
            .unwrap_or_else(|| vec![default_family(address.addr)]),
        import: pick(chain, |p| {
            p.import
                .as_ref()
                .map(|v| v.iter().map(|s| s.get_ref().clone()).collect())
        })
        .unwrap_or_default(),
        export: pick(chain, |p| {
            p.export
                .as_ref()
                .map(|v| v.iter().map(|s| s.get_ref().clone()).collect())
        })
        .unwrap_or_default(),
        max_prefixes: pick(chain, |p| {
            p.max_prefixes.as_ref().map(|m| MaxPrefixes {
                limit: m.limit,
                action: m.action,
            })
        }),
        address,
    };
    if p.route_reflector_client && !p.is_ibgp(global) {
        return Err(here(format!(
            "peer {name:?} is eBGP; route_reflector_client needs an iBGP peer (RFC 4456)"
        )));
    }
    if let Err(msg) = validate_peer(&p) {
        // Point at the offending setting where we kept its position.
        let span = match () {
            _ if msg.starts_with("hold_time") || msg.starts_with("keepalive") => chain
                .iter()
                .find_map(|e| e.peer.hold_time.as_ref().map(|h| (e.src, h.span()))),
            _ if msg.starts_with("multihop") => chain
                .iter()
                .find_map(|e| e.peer.multihop.as_ref().map(|h| (e.src, h.span()))),
            _ => None,
        };
        let (src, span) = span.unwrap_or((entry.src, entry.name.span()));
        return Err(ConfigError::at(src, span, format!("peer {name:?}: {msg}")));
    }
    p.families.sort();
    Ok(p)
}

fn check_policy_refs<'a>(
    chain: &[&'a Entry<'a>],
    policies: &BTreeMap<String, PolicyDef>,
) -> Result<(), ConfigError> {
    for e in chain {
        for list in [&e.peer.import, &e.peer.export].into_iter().flatten() {
            for n in list {
                if !policies.contains_key(n.get_ref()) {
                    return Err(ConfigError::at(
                        e.src,
                        n.span(),
                        format!("unknown policy {:?}", n.get_ref()),
                    ));
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
