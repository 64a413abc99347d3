//! What the scripted peer says in its OPEN (RFC 4271 4.2): its AS, BGP
//! identifier, hold time and capabilities, encoded by the bgp-proto codec.

use std::net::Ipv4Addr;

use bgp_proto::{Capability, Family, GracefulRestart, GracefulRestartFamily, LlgrFamily, Open};

/// What the test's peer says in its OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPeer {
    /// Its AS.
    pub asn: u32,
    /// Its BGP identifier.
    pub router_id: Ipv4Addr,
    /// Proposed hold time (seconds).
    pub hold_time: u16,
    /// Capabilities announced.
    pub capabilities: Vec<Capability>,
}

impl RawPeer {
    /// IPv4 unicast, 4-octet AS, route refresh and extended messages (RFC 8654).
    pub fn new(asn: u32, router_id: Ipv4Addr, hold_time: u16) -> RawPeer {
        RawPeer::bare(asn, router_id, hold_time)
            .with(Capability::RouteRefresh)
            .with(Capability::ExtendedMessage)
    }

    /// IPv4 unicast (RFC 4760) and 4-octet AS (RFC 6793) only.
    pub fn bare(asn: u32, router_id: Ipv4Addr, hold_time: u16) -> RawPeer {
        RawPeer {
            asn,
            router_id,
            hold_time,
            capabilities: vec![
                Capability::MultiProtocol(Family::IPV4_UNICAST),
                Capability::FourOctetAs(asn),
            ],
        }
    }

    /// Adds `capability`.
    pub fn with(mut self, capability: Capability) -> RawPeer {
        self.capabilities.push(capability);
        self
    }

    /// Adds graceful restart (RFC 4724) for IPv4 unicast, with the RFC 8538 N bit when
    /// `notification`.
    pub fn with_graceful_restart(self, restart_time: u16, notification: bool) -> RawPeer {
        self.with(Capability::GracefulRestart(GracefulRestart {
            restart_state: false,
            notification,
            restart_time,
            families: vec![GracefulRestartFamily {
                family: Family::IPV4_UNICAST,
                forwarding_preserved: true,
            }],
        }))
    }

    /// Adds long-lived graceful restart (RFC 9494) for IPv4 unicast with `stale_time`.
    pub fn with_long_lived_graceful_restart(self, stale_time: u32) -> RawPeer {
        self.with(Capability::LongLivedGracefulRestart(vec![LlgrFamily {
            family: Family::IPV4_UNICAST,
            forwarding_preserved: true,
            stale_time,
        }]))
    }

    /// The OPEN message.
    pub fn open(&self) -> Open {
        Open {
            version: 4,
            my_as: Open::my_as_field(self.asn),
            hold_time: self.hold_time,
            bgp_id: self.router_id,
            capabilities: self.capabilities.clone(),
            other_params: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_lists_the_capabilities() {
        let id = Ipv4Addr::new(10, 0, 0, 9);
        let o = RawPeer::new(4_200_000_000, id, 0).open();
        assert_eq!(o.my_as, 23456); // AS_TRANS (RFC 6793 4.2.1)
        assert_eq!(o.hold_time, 0);
        assert!(o
            .capabilities
            .contains(&Capability::FourOctetAs(4_200_000_000)));
        assert!(o.capabilities.contains(&Capability::ExtendedMessage));
        assert!(o.capabilities.contains(&Capability::RouteRefresh));
        let bare = RawPeer::bare(65001, id, 90).open();
        assert_eq!(bare.my_as, 65001);
        assert_eq!(
            bare.capabilities,
            [
                Capability::MultiProtocol(Family::IPV4_UNICAST),
                Capability::FourOctetAs(65001)
            ]
        );
    }
}
