//! What the RIB is told about an established session ([`SessionInfo`]), from what the
//! session negotiated and our address on its connection.

use std::net::{IpAddr, Ipv6Addr};

use bgp_proto::session::Negotiated;
use bgp_proto::{Afi, Family};
use bgp_rib::SessionInfo;
use tracing::warn;

/// Session facts for the RIB. `local` is our address on the connection (next hop self);
/// for a session over IPv6 link-local addresses, `link_global_v6` is the global address of
/// the interface it runs on, which goes first in an IPv6 next hop (RFC 2545 3).
pub fn session_info(
    neg: &Negotiated,
    local: IpAddr,
    link_global_v6: Option<Ipv6Addr>,
) -> SessionInfo {
    let mut s = SessionInfo::new(neg.peer_id, None);
    s.families = neg.families.clone();
    s.codec = neg.codec.clone();
    match local {
        IpAddr::V4(a) => s.local_v4 = Some(a),
        IpAddr::V6(a) => {
            if let Some(v4) = a.to_ipv4_mapped() {
                s.local_v4 = Some(v4);
            } else if is_link_local(a) {
                s.local_v6_link_local = Some(a);
                s.local_v6 = link_global_v6;
                if s.local_v6.is_none() {
                    warn!(local = %a, "no global IPv6 address on the interface of a link-local session: no next hop self for IPv6 routes");
                }
            } else {
                s.local_v6 = Some(a);
            }
        }
    }
    s.graceful_restart = neg.peer_graceful_restart.clone();
    s.llgr = neg.peer_llgr.clone();
    // RFC 8950 4: IPv4 unicast NLRI with IPv6 next hops, announced by both sides.
    s.extended_next_hop_v4 = neg
        .extended_next_hop
        .contains(&(Family::IPV4_UNICAST, Afi::IPV6));
    s
}

/// fe80::/10.
pub fn is_link_local(a: Ipv6Addr) -> bool {
    (a.segments()[0] & 0xffc0) == 0xfe80
}
