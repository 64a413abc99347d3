//! Per-session configuration: the intervals we ask for, the detection multiplier,
//! single hop or multihop, the passive role, authentication and jitter.
//!
//! A [`SessionConfig`] is plain data the daemon builds from its configuration file.
//! [`SessionConfig::validate`] reports values a config loader should reject;
//! [`Session::new`](super::Session::new) is infallible and clamps such values instead.

use std::time::Duration;

use crate::packet::SimplePassword;

/// RFC 5881 4: destination UDP port of single-hop Control packets.
pub const SINGLE_HOP_PORT: u16 = 3784;
/// RFC 5883 5: destination UDP port of multihop Control packets.
pub const MULTIHOP_PORT: u16 = 4784;
/// RFC 5881 4: the source port range for Control packets.
pub const SOURCE_PORTS: std::ops::RangeInclusive<u16> = 49152..=65535;
/// RFC 5881 5 / RFC 5883 5: the TTL (hop limit) we send with.
pub const SEND_TTL: u8 = 255;
/// RFC 5880 6.8.3: the slowest rate while the session is not Up.
pub const SLOW_TX_INTERVAL: Duration = Duration::from_secs(1);
/// Shortest interval [`SessionConfig::validate`] accepts.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);
/// Longest interval the 32-bit microsecond fields can carry.
pub const MAX_INTERVAL: Duration = Duration::from_micros(u32::MAX as u64);

/// Single hop (RFC 5881) or multihop (RFC 5883): the port, and the TTL a received
/// packet must carry.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Hops {
    /// Directly connected: packets are sent with TTL 255 and, with or without
    /// authentication, only accepted with TTL 255 (RFC 5881 5), so nothing off-link can
    /// inject them.
    Single,
    /// Several hops away: packets are accepted with a TTL of at least `min_ttl` (RFC
    /// 5883 5 asks for such a filter; 255 minus the number of routers in between).
    Multi { min_ttl: u8 },
}

impl Hops {
    pub fn port(self) -> u16 {
        match self {
            Hops::Single => SINGLE_HOP_PORT,
            Hops::Multi { .. } => MULTIHOP_PORT,
        }
    }

    pub fn is_multihop(self) -> bool {
        matches!(self, Hops::Multi { .. })
    }

    /// The smallest TTL (hop limit) a received packet may carry.
    pub fn min_ttl(self) -> u8 {
        match self {
            Hops::Single => SEND_TTL,
            Hops::Multi { min_ttl } => min_ttl,
        }
    }
}

/// What one BFD session asks of its peer and how it behaves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SessionConfig {
    /// bfd.DesiredMinTxInterval once Up (while not Up at least 1 s is used, RFC 5880
    /// 6.8.3). Clamped to [`MIN_INTERVAL`]..=[`MAX_INTERVAL`].
    pub desired_min_tx: Duration,
    /// bfd.RequiredMinRxInterval. Clamped like `desired_min_tx`.
    pub required_min_rx: Duration,
    /// bfd.DetectMult; 0 is taken as 1.
    pub detect_mult: u8,
    pub hops: Hops,
    /// RFC 5880 6.1 passive role: send nothing until the peer's first packet arrives.
    pub passive: bool,
    /// Simple password authentication (RFC 5880 6.7.2) sent and required; `None` sends
    /// none and refuses authenticated packets (6.8.6 step 10).
    pub authentication: Option<SimplePassword>,
    /// Seed of the transmit jitter (RFC 5880 6.8.7); `None` sends at exact intervals,
    /// for tests that check timer values.
    pub jitter_seed: Option<u64>,
}

/// A configuration value outside what the protocol allows.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("{name} of {value:?} outside 1 ms ..= {MAX_INTERVAL:?}")]
    Interval { name: &'static str, value: Duration },
    #[error("detect multiplier must be at least 1")]
    DetectMult,
    #[error("multihop minimum TTL must be at least 1")]
    MinTtl,
}

impl SessionConfig {
    /// 300 ms x 3 (detection within 900 ms), the usual choice for BGP peers; jitter
    /// seeded with a constant (override `jitter_seed` per session).
    pub fn new(hops: Hops) -> SessionConfig {
        SessionConfig {
            desired_min_tx: Duration::from_millis(300),
            required_min_rx: Duration::from_millis(300),
            detect_mult: 3,
            hops,
            passive: false,
            authentication: None,
            jitter_seed: Some(0x5bd1_e995),
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        for (name, value) in [
            ("desired minimum transmit interval", self.desired_min_tx),
            ("required minimum receive interval", self.required_min_rx),
        ] {
            if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&value) {
                return Err(ConfigError::Interval { name, value });
            }
        }
        if self.detect_mult == 0 {
            return Err(ConfigError::DetectMult);
        }
        if self.hops.min_ttl() == 0 {
            return Err(ConfigError::MinTtl);
        }
        Ok(())
    }
}

/// `d` in whole microseconds, within the protocol's range.
pub(crate) fn interval_us(d: Duration) -> u32 {
    let us = u32::try_from(d.as_micros()).unwrap_or(u32::MAX);
    us.max(MIN_INTERVAL.as_micros() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_validate_and_ports_follow_hops() {
        let c = SessionConfig::new(Hops::Single);
        assert_eq!(c.validate(), Ok(()));
        assert_eq!(Hops::Single.port(), 3784);
        assert_eq!(Hops::Multi { min_ttl: 254 }.port(), 4784);
        assert_eq!(Hops::Single.min_ttl(), 255);
        assert!(Hops::Multi { min_ttl: 1 }.is_multihop());
    }

    #[test]
    fn out_of_range_values_are_reported() {
        let mut c = SessionConfig::new(Hops::Single);
        c.required_min_rx = Duration::ZERO;
        assert!(matches!(c.validate(), Err(ConfigError::Interval { .. })));
        c.required_min_rx = Duration::from_secs(5000);
        assert!(matches!(c.validate(), Err(ConfigError::Interval { .. })));
        let mut c = SessionConfig::new(Hops::Multi { min_ttl: 0 });
        assert_eq!(c.validate(), Err(ConfigError::MinTtl));
        c.hops = Hops::Single;
        c.detect_mult = 0;
        assert_eq!(c.validate(), Err(ConfigError::DetectMult));
    }

    #[test]
    fn intervals_clamp_to_the_wire_range() {
        assert_eq!(interval_us(Duration::ZERO), 1000);
        assert_eq!(interval_us(Duration::from_millis(300)), 300_000);
        assert_eq!(interval_us(Duration::from_secs(10_000)), u32::MAX);
    }
}
