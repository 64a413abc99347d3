//! What a node is told about itself and its peers, and what that turns into: the
//! [`SessionConfig`] of a peer's sessions (our OPEN: timers and capabilities) and the
//! [`bgp_rib::PeerConfig`] the RIB holds for it.
//!
//! These are the node's settings, not a configuration file's: the daemon maps its TOML
//! peers onto [`PeerSettings`] and the simulator its topology, and both get the same OPEN
//! and the same RIB view from the same settings. Socket settings (port, TCP-MD5, TTL,
//! source address) are the transport's business and live with it.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp_proto::session::{LocalCapabilities, SessionConfig};
use bgp_proto::{AddPathMode, Afi, Family, GracefulRestart, GracefulRestartFamily, LlgrFamily};
use bgp_rib::policy::Policy;
use bgp_rib::{AddPathSend, NextHopMode, DEFAULT_ADD_PATH_RECEIVE_LIMIT};

use crate::policy::chain_policy;

/// Longest connect-retry backoff (RFC 4271 8.1.1 suggests 120 s for ConnectRetryTime).
const CONNECT_RETRY_MAX: Duration = Duration::from_secs(120);
/// The Restart Time field of the graceful restart capability has 12 bits (RFC 4724 3).
const MAX_RESTART_TIME: u16 = 4095;

/// The node itself, as every OPEN of it says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// Our AS (a peer may override it, [`PeerSettings::local_as`]).
    pub local_as: u32,
    /// Our BGP Identifier (RFC 6286).
    pub router_id: Ipv4Addr,
    /// We are restarting (RFC 4724 3, Restart State bit): set in the OPENs of the
    /// restart only; each peer driver clears it once its first session is established.
    pub restarting: bool,
    /// Forwarding state is kept across our restart (RFC 4724 3, F bit).
    pub forwarding_preserved: bool,
}

impl Identity {
    /// A node that is not restarting.
    pub fn new(local_as: u32, router_id: Ipv4Addr) -> Identity {
        Identity {
            local_as,
            router_id,
            restarting: false,
            forwarding_preserved: false,
        }
    }
}

/// Graceful restart (RFC 4724), its N bit (RFC 8538) and long-lived graceful restart (RFC
/// 9494) on one peer's sessions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestartSettings {
    /// Announce the capability (and keep the peer's routes when it restarts).
    pub enabled: bool,
    /// Seconds the peer keeps our routes while we restart.
    pub restart_time: u16,
    /// RFC 8538 N bit: NOTIFICATIONs other than Hard Reset end the session gracefully.
    pub notification: bool,
    /// Long-lived stale time we announce (RFC 9494); 0: no LLGR.
    pub long_lived_stale_time: u32,
    /// Longest restart time accepted from the peer.
    pub max_restart_time: u16,
    /// Longest LLGR stale time accepted from the peer.
    pub max_long_lived_stale_time: u32,
    /// With the N bit, the peer's routes are kept as stale after its hold timer expired
    /// (RFC 8538 4); off: they go at once, as for a peer without the N bit.
    pub retain_on_hold_expiry: bool,
}

impl Default for GracefulRestartSettings {
    /// Off; when enabled, BIRD's 120 s restart time with the N bit.
    fn default() -> Self {
        GracefulRestartSettings {
            enabled: false,
            restart_time: 120,
            notification: true,
            long_lived_stale_time: 0,
            max_restart_time: MAX_RESTART_TIME,
            max_long_lived_stale_time: 0xFF_FFFF,
            retain_on_hold_expiry: true,
        }
    }
}

/// What to do when a peer sends more prefixes than its limit.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum MaxPrefixAction {
    /// Log a warning once and keep the session.
    Warn,
    /// Close the session with Cease / Maximum Number of Prefixes Reached (RFC 4486), as a
    /// Hard Reset (RFC 8538 5), and start it again a minute later.
    #[default]
    Teardown,
}

/// A peer's prefix limit (RFC 4271 8.1.2 "max prefix", RFC 4486 subcode 1).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct MaxPrefixes {
    /// Most prefixes accepted from the peer (Adj-RIB-In, both families).
    pub limit: u32,
    /// What happens above it.
    pub action: MaxPrefixAction,
}

/// One peer of the node.
#[derive(Clone, Debug, PartialEq)]
pub struct PeerSettings {
    /// Name (logs, policy `peer_name`, queries).
    pub name: String,
    /// The peer's address.
    pub address: IpAddr,
    /// The peer's AS.
    pub remote_as: u32,
    /// Our AS towards this peer, when not [`Identity::local_as`].
    pub local_as: Option<u32>,
    /// Never connect, only accept (RFC 4271 8.1.1 PassiveTcpEstablishment).
    pub passive: bool,
    /// Configured but administratively down.
    pub disabled: bool,
    /// Hold Time we propose, seconds.
    pub hold_time: u16,
    /// KEEPALIVE interval, seconds; `None`: a third of the negotiated Hold Time.
    pub keepalive: Option<u16>,
    /// Initial ConnectRetryTime, doubled per failure up to 120 s (or itself when longer).
    pub connect_retry: Duration,
    /// Address families of the session.
    pub families: Vec<Family>,
    /// ADD-PATH (RFC 7911) for every family.
    pub add_path: Option<AddPathMode>,
    /// Graceful restart of this session.
    pub graceful_restart: GracefulRestartSettings,
    /// RFC 8950: IPv4 unicast with IPv6 next hops.
    pub extended_next_hop: bool,
    /// Enhanced route refresh (RFC 7313).
    pub enhanced_route_refresh: bool,
    /// Extended messages (RFC 8654).
    pub extended_message: bool,
    /// Bound of a session's outbound queue (see [`SessionConfig::max_queued_bytes`]).
    pub max_queued_bytes: usize,
    /// Prefix limit.
    pub max_prefixes: Option<MaxPrefixes>,
    /// Route-reflector client (RFC 4456).
    pub rr_client: bool,
    /// CLUSTER_ID towards this peer, when not the RIB's.
    pub cluster_id: Option<Ipv4Addr>,
    /// Accept routes holding our AS this many times.
    pub allow_local_as: u8,
    /// NEXT_HOP to announce.
    pub next_hop: NextHopMode,
    /// What to send when ADD-PATH send is negotiated.
    pub add_path_send: AddPathSend,
    /// Most paths the peer may have for one prefix (ADD-PATH receive).
    pub add_path_receive_limit: usize,
    /// Import policy chain, by name ([`chain_policy`]).
    pub import: Vec<String>,
    /// Export policy chain, by name.
    pub export: Vec<String>,
}

impl PeerSettings {
    /// A peer with the defaults of [`SessionConfig::new`] (hold time 90 s, connect retry
    /// 5 s, IPv4 unicast, route refresh) and of [`bgp_rib::PeerConfig::new`], no graceful
    /// restart, no policy chains.
    pub fn new(name: impl Into<String>, address: IpAddr, remote_as: u32) -> PeerSettings {
        PeerSettings {
            name: name.into(),
            address,
            remote_as,
            local_as: None,
            passive: false,
            disabled: false,
            hold_time: 90,
            keepalive: None,
            connect_retry: Duration::from_secs(5),
            families: vec![Family::IPV4_UNICAST],
            add_path: None,
            graceful_restart: GracefulRestartSettings::default(),
            extended_next_hop: false,
            enhanced_route_refresh: false,
            extended_message: false,
            max_queued_bytes: SessionConfig::default().max_queued_bytes,
            max_prefixes: None,
            rr_client: false,
            cluster_id: None,
            allow_local_as: 0,
            next_hop: NextHopMode::Auto,
            add_path_send: AddPathSend::Best,
            add_path_receive_limit: DEFAULT_ADD_PATH_RECEIVE_LIMIT,
            import: Vec::new(),
            export: Vec::new(),
        }
    }

    /// Our AS on this session.
    pub fn local_as(&self, identity: &Identity) -> u32 {
        self.local_as.unwrap_or(identity.local_as)
    }

    /// An eBGP session (different ASes on the two ends) when our AS is `local_as`.
    pub fn is_ebgp(&self, local_as: u32) -> bool {
        self.remote_as != self.local_as.unwrap_or(local_as)
    }

    /// The configuration of a session with this peer (what goes into our OPEN).
    /// `passive` is separate from [`PeerSettings::passive`]: the second connection of a
    /// collision is always one the peer opened.
    pub fn session_config(&self, identity: &Identity, passive: bool) -> SessionConfig {
        let mut sc = SessionConfig::new(
            self.local_as(identity),
            identity.router_id,
            Some(self.remote_as),
        );
        sc.hold_time = self.hold_time;
        sc.keepalive_time = self.keepalive;
        sc.connect_retry = self.connect_retry.max(Duration::from_secs(1));
        sc.connect_retry_max = sc.connect_retry.max(CONNECT_RETRY_MAX);
        sc.passive = passive;
        sc.max_queued_bytes = self.max_queued_bytes;
        let gr = &self.graceful_restart;
        sc.capabilities = LocalCapabilities {
            families: self.families.clone(),
            route_refresh: true,
            enhanced_route_refresh: self.enhanced_route_refresh,
            add_path: self
                .add_path
                .map(|m| self.families.iter().map(|f| (*f, m)).collect())
                .unwrap_or_default(),
            // RFC 4724 section 3: restart state and per-family forwarding state.
            graceful_restart: gr.enabled.then(|| GracefulRestart {
                restart_state: identity.restarting,
                notification: gr.notification,
                restart_time: gr.restart_time.min(MAX_RESTART_TIME),
                families: self
                    .families
                    .iter()
                    .map(|f| GracefulRestartFamily {
                        family: *f,
                        forwarding_preserved: identity.forwarding_preserved,
                    })
                    .collect(),
            }),
            long_lived_gr: if gr.enabled && gr.long_lived_stale_time > 0 {
                self.families
                    .iter()
                    .map(|f| LlgrFamily {
                        family: *f,
                        forwarding_preserved: identity.forwarding_preserved,
                        stale_time: gr.long_lived_stale_time,
                    })
                    .collect()
            } else {
                Vec::new()
            },
            extended_message: self.extended_message,
            // RFC 8950 4: IPv4 unicast NLRI with IPv6 next hops.
            extended_next_hop: if self.extended_next_hop {
                vec![(Family::IPV4_UNICAST, Afi::IPV6)]
            } else {
                Vec::new()
            },
            ..LocalCapabilities::default()
        };
        sc
    }

    /// The RIB's view of this peer, its policy chains compiled from `policies` (an empty
    /// chain follows RFC 8212, see [`chain_policy`]); `local_as` is the RIB's.
    pub fn rib_peer_config(
        &self,
        policies: &BTreeMap<String, Policy>,
        local_as: u32,
    ) -> bgp_rib::PeerConfig {
        let ebgp = self.is_ebgp(local_as);
        let mut p = bgp_rib::PeerConfig::new(self.name.clone(), self.address, self.remote_as);
        p.rr_client = self.rr_client;
        p.local_as = self.local_as;
        p.cluster_id = self.cluster_id;
        p.allow_local_as = self.allow_local_as;
        p.import = chain_policy(&self.import, policies, ebgp);
        p.export = chain_policy(&self.export, policies, ebgp);
        p.next_hop = self.next_hop;
        p.add_path_send = self.add_path_send;
        p.add_path_receive_limit = self.add_path_receive_limit;
        p.disabled = self.disabled;
        p
    }

    /// Whether a change from `self` to `new` changes how the RIB exports to the peer in a
    /// way only a new RIB peer gives (reflection, next hop, cluster id).
    pub(crate) fn rib_structure_differs(&self, new: &PeerSettings) -> bool {
        self.rr_client != new.rr_client
            || self.next_hop != new.next_hop
            || self.cluster_id != new.cluster_id
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> PeerSettings {
        let mut p = PeerSettings::new("p", "192.0.2.2".parse().expect("address"), 64512);
        p.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
        p
    }

    #[test]
    fn graceful_restart_capability_follows_identity_and_settings() {
        let mut id = Identity::new(64512, Ipv4Addr::new(192, 0, 2, 1));
        id.restarting = true;
        id.forwarding_preserved = true;
        let mut p = peer();
        assert!(p
            .session_config(&id, false)
            .capabilities
            .graceful_restart
            .is_none());
        p.graceful_restart.enabled = true;
        p.graceful_restart.restart_time = 9000;
        p.graceful_restart.long_lived_stale_time = 600;
        let sc = p.session_config(&id, true);
        assert!(sc.passive);
        let gr = sc.capabilities.graceful_restart.expect("announced");
        assert!(gr.restart_state && gr.notification);
        assert_eq!(gr.restart_time, 4095, "12 bits");
        assert_eq!(gr.families.len(), 2);
        assert!(gr.families.iter().all(|f| f.forwarding_preserved));
        assert_eq!(sc.capabilities.long_lived_gr.len(), 2);
    }

    #[test]
    fn timers_and_capabilities() {
        let id = Identity::new(64512, Ipv4Addr::new(192, 0, 2, 1));
        let mut p = peer();
        p.connect_retry = Duration::ZERO;
        p.keepalive = Some(3);
        p.add_path = Some(AddPathMode::Both);
        p.extended_next_hop = true;
        let sc = p.session_config(&id, false);
        assert_eq!(sc.connect_retry, Duration::from_secs(1));
        assert_eq!(sc.connect_retry_max, Duration::from_secs(120));
        assert_eq!(sc.keepalive_time, Some(3));
        assert_eq!(sc.capabilities.add_path.len(), 2);
        assert_eq!(
            sc.capabilities.extended_next_hop,
            vec![(Family::IPV4_UNICAST, Afi::IPV6)]
        );
        p.connect_retry = Duration::from_secs(300);
        assert_eq!(
            p.session_config(&id, false).connect_retry_max,
            Duration::from_secs(300)
        );
    }

    #[test]
    fn rib_view_follows_rfc_8212_on_ebgp() {
        let policies = BTreeMap::new();
        let mut p = peer();
        assert!(p.rib_peer_config(&policies, 64512).import.is_accept_all());
        p.remote_as = 65000;
        let rc = p.rib_peer_config(&policies, 64512);
        assert!(!rc.import.is_accept_all() && !rc.export.is_accept_all());
        p.local_as = Some(65000);
        assert!(p.rib_peer_config(&policies, 64512).export.is_accept_all());
    }
}
