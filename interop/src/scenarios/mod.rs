//! Interop scenarios: the bodies of the interop tests, written once for any
//! [`Kind`](crate::Kind) so that each test is one line
//! (`pair_test("bgpd_bird_ebgp", Kind::Bgpd, Kind::Bird, false)`). One file
//! per feature:
//!
//! - `exchange`: two speakers exchange routes with attributes over IPv4 and
//!   IPv6 sessions ([`exchange()`], [`pair_test`]);
//! - `reflection`: route reflection, RFC 4456 ([`reflection()`]);
//! - `md5`: TCP MD5 signatures, RFC 2385 ([`md5()`]);
//! - `malformed`: framing, OPEN and attribute errors, RFC 4271 section 6 and
//!   RFC 7606 ([`raw_malformed`], [`malformed_attribute`]);
//! - `graceful_restart`: RFC 4724 ([`graceful_restart()`]);
//! - `real_table`: the RIS 2002 table through a speaker ([`real_table()`]);
//! - bgpd against one real peer, feature by feature, each also with ExaBGP
//!   where its API shows or does what the other CLIs cannot: `add_path`,
//!   RFC 7911 ([`add_path()`], [`add_path_from_exabgp`]); `route_refresh`,
//!   RFC 2918 ([`route_refresh()`], [`route_refresh_from_exabgp`]);
//!   `four_octet_as`, RFC 6793 ([`four_octet_as()`]); `extended_next_hop`,
//!   RFC 8950 ([`extended_next_hop()`], [`extended_next_hop_with_exabgp`]).
//!
//! What a daemon's CLI can or cannot show (ADD-PATH, refresh counters,
//! staleness) is asked through [`crate::Speaker`]'s capability methods,
//! never by matching on the daemon's kind. This file holds what the
//! scenarios share: the routes each side originates and the check that a
//! receiver got them with the right attributes.

mod add_path;
mod exchange;
mod extended_next_hop;
mod four_octet_as;
mod graceful_restart;
mod malformed;
mod md5;
mod real_table;
mod reflection;
mod route_refresh;

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::{wait_route, Announce, Error, Family, Neighbor, Node, Origin, Result, Speaker};
use crate::{SpeakerConfig, TIMEOUT};

pub use add_path::{add_path, add_path_from_exabgp};
pub use exchange::{exchange, pair_test};
pub use extended_next_hop::{extended_next_hop, extended_next_hop_with_exabgp};
pub use four_octet_as::four_octet_as;
pub use graceful_restart::graceful_restart;
pub use malformed::{malformed_attribute, raw_malformed};
pub use md5::md5;
pub use real_table::real_table;
pub use reflection::reflection;
pub use route_refresh::{route_refresh, route_refresh_from_exabgp};

/// The IPv4 prefix `a.b.c.d/len` (a host-bit-free literal of the scenarios).
pub(crate) fn ipv4_net(octets: [u8; 4], len: u8) -> IpNet {
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(octets), len).unwrap_or_default())
}

/// The IPv6 prefix of `segments` and `len`.
pub(crate) fn ipv6_net(segments: [u16; 8], len: u8) -> IpNet {
    IpNet::V6(Ipv6Net::new(Ipv6Addr::from(segments), len).unwrap_or_default())
}

/// The announcements of `ann` whose prefix is of `family`.
pub fn of_family(ann: &[Announce], family: Family) -> Vec<Announce> {
    ann.iter()
        .filter(|a| Family::of_net(&a.prefix) == family)
        .cloned()
        .collect()
}

/// What one side of a pair originates.
///
/// Side 0: 198.51.100.0/24 and 2001:db8:a::/48; side 1: 203.0.113.0/24 and
/// 2001:db8:b::/48; each with MED, two communities, a large community and,
/// over iBGP, LOCAL_PREF.
pub fn announcements(side: u8, ibgp: bool) -> Vec<Announce> {
    let (v4, v6, asn) = match side {
        0 => (
            ipv4_net([198, 51, 100, 0], 24),
            ipv6_net([0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 0], 48),
            65001u16,
        ),
        _ => (
            ipv4_net([203, 0, 113, 0], 24),
            ipv6_net([0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 0], 48),
            65002u16,
        ),
    };
    [v4, v6]
        .into_iter()
        .map(|p| {
            let mut a = Announce::new(p);
            a.med = Some(10 + u32::from(side));
            a.communities = vec![(asn, 100), (asn, 7)];
            a.large_communities = vec![(u32::from(asn), 1, u32::from(side))];
            if ibgp {
                a.local_pref = Some(150 + u32::from(side));
            }
            a
        })
        .collect()
}

/// A speaker on `me` with one IPv4 and one IPv6 session to `peer`.
pub fn speaker_config(
    me: &Node,
    peer: &Node,
    asn: u32,
    peer_asn: u32,
    announce: Vec<Announce>,
) -> SpeakerConfig {
    let mut cfg = SpeakerConfig::new(me.v4, asn);
    for fam in [Family::Ipv4, Family::Ipv6] {
        cfg.neighbors
            .push(Neighbor::new(peer.addr(fam), me.addr(fam), peer_asn));
    }
    cfg.announce = announce;
    cfg
}

/// Checks that `receiver` learned every route of `sent` from `from` with the
/// attributes BGP says it must carry.
pub fn check_received(
    receiver: &dyn Speaker,
    sent: &[Announce],
    from: &Node,
    from_asn: u32,
    ibgp: bool,
) -> Result<()> {
    check_received_via(receiver, sent, from, None, from_asn, ibgp)
}

/// [`check_received`] with the next hop `from`'s address of `next_hop_family`
/// when given (IPv4 routes over an IPv6 session with extended next hop,
/// RFC 8950), else of each prefix's own family.
pub fn check_received_via(
    receiver: &dyn Speaker,
    sent: &[Announce],
    from: &Node,
    next_hop_family: Option<Family>,
    from_asn: u32,
    ibgp: bool,
) -> Result<()> {
    for a in sent {
        let r = wait_route(receiver, a.prefix, TIMEOUT)?;
        let mut problems = Vec::new();
        let want_path: Vec<u32> = if ibgp { vec![] } else { vec![from_asn] };
        if r.as_path != want_path {
            problems.push(format!("AS path {:?}, want {want_path:?}", r.as_path));
        }
        let want_nh = from.addr(next_hop_family.unwrap_or(Family::of_net(&a.prefix)));
        if r.next_hop != Some(want_nh) {
            problems.push(format!("next hop {:?}, want {want_nh}", r.next_hop));
        }
        if r.origin != Some(Origin::Igp) {
            problems.push(format!("origin {:?}, want IGP", r.origin));
        }
        if r.med != a.med {
            problems.push(format!("MED {:?}, want {:?}", r.med, a.med));
        }
        if ibgp && r.local_pref != a.local_pref {
            problems.push(format!(
                "LOCAL_PREF {:?}, want {:?}",
                r.local_pref, a.local_pref
            ));
        }
        let mut want_c = a.community_strings();
        want_c.sort();
        if r.communities != want_c {
            problems.push(format!("communities {:?}, want {want_c:?}", r.communities));
        }
        let mut want_l = a.large_community_strings();
        want_l.sort();
        if r.large_communities != want_l {
            problems.push(format!(
                "large communities {:?}, want {want_l:?}",
                r.large_communities
            ));
        }
        if !problems.is_empty() {
            return Err(Error::Check(format!(
                "{} got {} with wrong attributes: {}; full view: {r:?}",
                receiver.label(),
                a.prefix,
                problems.join("; ")
            )));
        }
    }
    Ok(())
}
