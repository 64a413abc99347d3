//! Per-peer session configuration: what we offer in our OPEN and how the timers run.
//!
//! A [`SessionConfig`] is plain data the daemon builds from its configuration file; the
//! session never changes it. [`SessionConfig::validate`] reports values RFC 4271 forbids so
//! a config loader can reject them; [`Session::new`](super::Session::new) is infallible and
//! normalises such values instead (documented on each field).

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::wire::types::{
    AddPathMode, Afi, BgpRole, Capability, Family, GracefulRestart, LlgrFamily, Open,
};

/// RFC 4271 4.2: the only BGP version we speak.
pub const BGP_VERSION: u8 = 4;

/// RFC 4271 10: suggested Hold Time while waiting for the peer's OPEN ("large value",
/// 4 minutes).
pub const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// RFC 9687 4: the SendHoldTimer runs for the greater of this and twice the Hold Time.
pub const MIN_SEND_HOLD_TIME: Duration = Duration::from_secs(480);

/// Default bound on queued outbound UPDATE bytes (see [`SessionConfig::max_queued_bytes`]).
pub const DEFAULT_MAX_QUEUED_BYTES: usize = 4 * 1024 * 1024;

/// The capabilities we advertise in our OPEN (RFC 5492).
///
/// The 4-octet AS capability (RFC 6793) is always offered and needs no field here.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalCapabilities {
    /// Multiprotocol families (RFC 4760). Empty means IPv4 unicast only, which is also
    /// what a peer that sends no multiprotocol capability implies.
    pub families: Vec<Family>,
    /// Route refresh (RFC 2918).
    pub route_refresh: bool,
    /// Enhanced route refresh (RFC 7313).
    pub enhanced_route_refresh: bool,
    /// ADD-PATH modes per family (RFC 7911).
    pub add_path: Vec<(Family, AddPathMode)>,
    /// Graceful restart (RFC 4724).
    pub graceful_restart: Option<GracefulRestart>,
    /// Long-lived graceful restart (RFC 9494); only sent together with graceful restart.
    pub long_lived_gr: Vec<LlgrFamily>,
    /// Extended next hop (RFC 8950): (NLRI family, next-hop AFI) pairs we accept.
    pub extended_next_hop: Vec<(Family, Afi)>,
    /// Extended messages up to 65535 bytes (RFC 8654).
    pub extended_message: bool,
    /// BGP role (RFC 9234); only checked on eBGP sessions.
    pub role: Option<BgpRole>,
    /// RFC 9234 4.2 strict mode: refuse an eBGP peer that does not announce a role.
    pub strict_role: bool,
    /// Hostname and domain name (draft-walton-bgp-hostname-capability).
    pub fqdn: Option<(String, String)>,
    /// Capability codes the peer must announce or the OPEN is refused with 2/7
    /// "Unsupported Capability" (RFC 5492 3).
    pub required: Vec<u8>,
}

impl Default for LocalCapabilities {
    fn default() -> Self {
        LocalCapabilities {
            families: vec![Family::IPV4_UNICAST],
            route_refresh: true,
            enhanced_route_refresh: false,
            add_path: Vec::new(),
            graceful_restart: None,
            long_lived_gr: Vec::new(),
            extended_next_hop: Vec::new(),
            extended_message: false,
            role: None,
            strict_role: false,
            fqdn: None,
            required: Vec::new(),
        }
    }
}

impl LocalCapabilities {
    /// The families we offer: the configured ones, or IPv4 unicast when none are.
    pub fn effective_families(&self) -> Vec<Family> {
        if self.families.is_empty() {
            vec![Family::IPV4_UNICAST]
        } else {
            self.families.clone()
        }
    }
}

/// Configuration of one BGP session.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// Our AS number (4-octet).
    pub local_as: u32,
    /// Our BGP Identifier.
    pub local_id: Ipv4Addr,
    /// The AS the peer must announce; `None` accepts any (RFC 4271 6.2 "Bad Peer AS").
    pub remote_as: Option<u32>,
    /// Hold Time we propose, in seconds: 0 (no keepalives, no hold timer) or at least 3.
    /// 1 and 2 are forbidden by RFC 4271 4.2; the session rounds them up to 3.
    pub hold_time: u16,
    /// KEEPALIVE interval in seconds; default one third of the negotiated Hold Time.
    /// Never longer than that third, so the peer's hold timer cannot fire (RFC 4271 4.4).
    pub keepalive_time: Option<u16>,
    /// Initial ConnectRetryTime (RFC 4271 8.1.1, suggested 120 s; Calico uses 5 s).
    /// Each consecutive failed attempt doubles it, up to [`Self::connect_retry_max`].
    pub connect_retry: Duration,
    /// Cap of the exponential connect-retry backoff.
    pub connect_retry_max: Duration,
    /// Never initiate the TCP connection; wait for the peer (RFC 4271 8.1.1
    /// PassiveTcpEstablishment).
    pub passive: bool,
    /// DelayOpen (RFC 4271 8.1.1): after the connection is up, wait this long for the
    /// peer's OPEN before sending ours.
    pub delay_open: Option<Duration>,
    /// RFC 9687 SendHoldTime. `None` uses max(8 minutes, 2 × negotiated Hold Time).
    pub send_hold_time: Option<Duration>,
    /// What we advertise.
    pub capabilities: LocalCapabilities,
    /// Bound on outbound bytes queued by [`Session::send_update`](super::Session::send_update)
    /// and [`Session::send_encoded`](super::Session::send_encoded) and not yet taken by
    /// [`Session::poll_transmit`](super::Session::poll_transmit). Control messages
    /// (OPEN, KEEPALIVE, NOTIFICATION, ROUTE-REFRESH) are never refused.
    pub max_queued_bytes: usize,
    /// RFC 4271 10: ConnectRetry, IdleHold and KEEPALIVE intervals are multiplied by a
    /// pseudo-random factor in [0.75, 1], so sessions started together do not stay in
    /// lockstep. The value seeds the generator (give each peer its own, e.g. a hash of
    /// its address, so a simulation stays reproducible); `None` disables jitter.
    pub jitter_seed: Option<u64>,
}

impl Default for SessionConfig {
    /// The defaults of [`SessionConfig::new`] with AS 0 and identifier 0.0.0.0, which
    /// [`SessionConfig::validate`] rejects: set both.
    fn default() -> Self {
        SessionConfig::new(0, Ipv4Addr::UNSPECIFIED, None)
    }
}

impl SessionConfig {
    /// A configuration with the usual defaults: hold 90 s, connect retry 5 s backing off to
    /// 120 s, active, no DelayOpen, IPv4 unicast with route refresh, jitter seeded from
    /// our identity (set [`Self::jitter_seed`] per peer for better spread).
    pub fn new(local_as: u32, local_id: Ipv4Addr, remote_as: Option<u32>) -> SessionConfig {
        SessionConfig {
            local_as,
            local_id,
            remote_as,
            hold_time: 90,
            keepalive_time: None,
            connect_retry: Duration::from_secs(5),
            connect_retry_max: Duration::from_secs(120),
            passive: false,
            delay_open: None,
            send_hold_time: None,
            capabilities: LocalCapabilities::default(),
            max_queued_bytes: DEFAULT_MAX_QUEUED_BYTES,
            jitter_seed: Some(u64::from(u32::from(local_id)) << 32 | u64::from(local_as)),
        }
    }

    /// Values the RFCs forbid or that cannot work.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.hold_time == 1 || self.hold_time == 2 {
            return Err(ConfigError::HoldTime(self.hold_time));
        }
        if self.local_as == 0 {
            return Err(ConfigError::LocalAsZero);
        }
        if self.local_id.is_unspecified() {
            return Err(ConfigError::RouterIdZero);
        }
        if self.connect_retry.is_zero() {
            return Err(ConfigError::ConnectRetryZero);
        }
        Ok(())
    }

    /// The Hold Time we put in our OPEN: 1 and 2 rounded up to 3 (RFC 4271 4.2).
    pub(crate) fn effective_hold_time(&self) -> u16 {
        match self.hold_time {
            1 | 2 => 3,
            h => h,
        }
    }

    /// Our OPEN message (RFC 4271 4.2, RFC 5492, RFC 6793 4.1).
    pub fn local_open(&self) -> Open {
        let caps = &self.capabilities;
        let mut capabilities: Vec<Capability> = caps
            .effective_families()
            .into_iter()
            .map(Capability::MultiProtocol)
            .collect();
        if caps.route_refresh {
            capabilities.push(Capability::RouteRefresh);
        }
        if caps.enhanced_route_refresh {
            capabilities.push(Capability::EnhancedRouteRefresh);
        }
        capabilities.push(Capability::FourOctetAs(self.local_as));
        if let Some(gr) = &caps.graceful_restart {
            capabilities.push(Capability::GracefulRestart(gr.clone()));
            if !caps.long_lived_gr.is_empty() {
                capabilities.push(Capability::LongLivedGracefulRestart(
                    caps.long_lived_gr.clone(),
                ));
            }
        }
        if !caps.add_path.is_empty() {
            capabilities.push(Capability::AddPath(caps.add_path.clone()));
        }
        if !caps.extended_next_hop.is_empty() {
            capabilities.push(Capability::ExtendedNextHop(caps.extended_next_hop.clone()));
        }
        if caps.extended_message {
            capabilities.push(Capability::ExtendedMessage);
        }
        if let Some(role) = caps.role {
            capabilities.push(Capability::Role(role));
        }
        if let Some((hostname, domain)) = &caps.fqdn {
            capabilities.push(Capability::Fqdn {
                hostname: hostname.clone(),
                domain: domain.clone(),
            });
        }
        Open {
            version: BGP_VERSION,
            my_as: Open::my_as_field(self.local_as),
            hold_time: self.effective_hold_time(),
            bgp_id: self.local_id,
            capabilities,
            other_params: Vec::new(),
        }
    }
}

/// A [`SessionConfig`] value that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("hold time {0} s is not allowed: use 0 or at least 3 (RFC 4271 4.2)")]
    HoldTime(u16),
    #[error("local AS 0 is reserved (RFC 7607)")]
    LocalAsZero,
    #[error("BGP identifier 0.0.0.0 is not allowed (RFC 6286)")]
    RouterIdZero,
    #[error("connect retry time must be positive")]
    ConnectRetryZero,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::types::AS_TRANS;

    fn config() -> SessionConfig {
        SessionConfig::new(4_200_000_000, Ipv4Addr::new(10, 0, 0, 1), None)
    }

    #[test]
    fn local_open_uses_as_trans_for_4_octet_as() {
        let open = config().local_open();
        assert_eq!(open.my_as, AS_TRANS);
        assert!(open
            .capabilities
            .contains(&Capability::FourOctetAs(4_200_000_000)));
        assert!(open
            .capabilities
            .contains(&Capability::MultiProtocol(Family::IPV4_UNICAST)));
        assert_eq!(open.hold_time, 90);
        assert_eq!(open.version, 4);
    }

    #[test]
    fn local_open_uses_2_octet_as_directly() {
        let mut c = config();
        c.local_as = 64512;
        assert_eq!(c.local_open().my_as, 64512);
    }

    #[test]
    fn validate_rejects_forbidden_values() {
        let mut c = config();
        assert_eq!(c.validate(), Ok(()));
        c.hold_time = 2;
        assert_eq!(c.validate(), Err(ConfigError::HoldTime(2)));
        assert_eq!(c.local_open().hold_time, 3);
        c.hold_time = 0;
        assert_eq!(c.validate(), Ok(()));
        c.local_id = Ipv4Addr::UNSPECIFIED;
        assert_eq!(c.validate(), Err(ConfigError::RouterIdZero));
    }

    #[test]
    fn llgr_is_only_offered_with_graceful_restart() {
        let mut c = config();
        c.capabilities.long_lived_gr = vec![LlgrFamily {
            family: Family::IPV4_UNICAST,
            forwarding_preserved: false,
            stale_time: 3600,
        }];
        let has_llgr = |o: &Open| {
            o.capabilities
                .iter()
                .any(|c| matches!(c, Capability::LongLivedGracefulRestart(_)))
        };
        assert!(!has_llgr(&c.local_open()));
        c.capabilities.graceful_restart = Some(GracefulRestart {
            restart_state: false,
            notification: true,
            restart_time: 120,
            families: Vec::new(),
        });
        assert!(has_llgr(&c.local_open()));
    }
}
