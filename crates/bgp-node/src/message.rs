//! The messages between a peer driver and the RIB driver. Every one names its peer by
//! [`PeerId`](crate::PeerId) (carried beside it), never by name.
//!
//! - [`RibInput`]: what a peer's session tells the RIB (Established, an UPDATE, a
//!   ROUTE-REFRESH, down). Produced by [`PeerDriver`](crate::PeerDriver) in the order its
//!   session produced them; the RIB applies them in that order.
//! - [`OutputSlice`]: UPDATE frames the RIB encoded for one session of a peer. The RIB
//!   gives each peer a few slices at a time ([`RibDriver`](crate::RibDriver) credit) and
//!   the peer returns credit as it takes them ([`PeerEvent::OutputTaken`]), so a slow peer
//!   makes the RIB hold its changes, merged per prefix, instead of a queue growing
//!   between them.
//!
//! [`PeerEvent::OutputTaken`]: crate::PeerEvent::OutputTaken

use std::net::{IpAddr, Ipv6Addr};

use bgp_proto::session::{DownReason, Negotiated};
use bgp_proto::wire::DecodedUpdate;
use bgp_proto::{MpNlri, RouteRefresh};
use bytes::Bytes;

/// What a peer's session tells the RIB.
#[derive(Debug)]
pub enum RibInput {
    /// The session reached Established. `session` numbers it among the peer's sessions:
    /// output for it carries the number, so frames meant for an earlier session are never
    /// sent on a later one.
    Up {
        /// The session's number.
        session: u64,
        /// What it negotiated.
        negotiated: Box<Negotiated>,
        /// Our address on the connection.
        local: IpAddr,
        /// The interface's global IPv6 address, for a session over link-local addresses.
        link_global_v6: Option<Ipv6Addr>,
    },
    /// An UPDATE received.
    Update(Box<DecodedUpdate>),
    /// A ROUTE-REFRESH received (RFC 2918 / RFC 7313).
    RouteRefresh(RouteRefresh),
    /// The session left Established.
    Down {
        /// The peer's routes are kept as stale (RFC 4724 4.2 / RFC 8538 receiver side)
        /// rather than removed.
        graceful: bool,
        /// Why the session ended.
        reason: DownReason,
    },
}

impl RibInput {
    /// How many prefixes this input carries (announced and withdrawn; at least 1): the
    /// measure of RIB work by which a caller bounds a batch before the decision runs.
    pub fn prefixes(&self) -> usize {
        fn mp(n: &MpNlri) -> usize {
            match n {
                MpNlri::Unicast(v) => v.len(),
                MpNlri::Opaque(_) => 1,
            }
        }
        match self {
            RibInput::Update(update) => {
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
}

/// Encoded UPDATEs for one session of a peer (see the module docs).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OutputSlice {
    /// The session they are for ([`RibInput::Up`]).
    pub session: u64,
    /// Whole BGP messages, in order.
    pub frames: Vec<Bytes>,
}

/// Prefixes (announced and withdrawn) a RIB takes in before its decision process runs.
/// With extended messages (RFC 8654) one UPDATE carries some 13,000 IPv4 /32s, so a bound
/// by message count alone would let one decision round, and the FIB batch it yields, cover
/// millions of prefixes (a 1M-route table measured 142 MiB of queued FIB changes in one
/// round).
pub const INPUT_PREFIX_BUDGET: usize = 32_768;
/// Messages a RIB takes in before its decision process runs.
pub const INPUT_BATCH: usize = 256;

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::{Family, MpUnreach, Nlri, Update};

    fn update(u: Update) -> RibInput {
        RibInput::Update(Box::new(DecodedUpdate {
            update: u,
            treat_as_withdraw: None,
            discarded: Vec::new(),
        }))
    }

    #[test]
    fn every_prefix_counts() {
        let n = |s: &str| Nlri::new(s.parse().expect("prefix"));
        let u = Update {
            withdrawn: vec![n("10.0.0.0/8"), n("10.1.0.0/16")],
            nlri: vec![n("10.2.0.0/16"), n("10.3.0.0/16"), n("10.4.0.0/16")],
            mp_unreach: Some(MpUnreach {
                family: Family::IPV6_UNICAST,
                nlri: MpNlri::Unicast(vec![n("2001:db8::/32"), n("2001:db8:1::/48")]),
            }),
            ..Update::default()
        };
        assert_eq!(update(u).prefixes(), 7);
        // An End-of-RIB or any other input still counts.
        assert_eq!(update(Update::default()).prefixes(), 1);
        let down = RibInput::Down {
            graceful: false,
            reason: DownReason::ConnectionClosed,
        };
        assert_eq!(down.prefixes(), 1);
    }
}
