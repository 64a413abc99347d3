//! Conversion of rtnetlink messages (netlink-packet-route) into this crate's plain types.
//!
//! The kernel is an external source: every conversion is total and returns `None` for messages
//! we do not understand (unknown family, missing mandatory attribute, invalid prefix length)
//! instead of panicking.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use ipnet::IpNet;
use netlink_packet_route::address::{AddressAttribute, AddressMessage};
use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteMessage, RouteNextHop, RouteNextHopFlags, RouteVia,
};
use netlink_packet_route::AddressFamily;

use crate::types::{Address, KernelNextHop, KernelRoute, Link, RouteKind};

/// ifindex → link, the watcher's and installer's view of interfaces.
pub type LinkTable = HashMap<u32, Link>;

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn via_addr(v: &RouteVia) -> Option<IpAddr> {
    match v {
        RouteVia::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteVia::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn gateway_of(attrs: &[RouteAttribute]) -> Option<IpAddr> {
    attrs.iter().find_map(|a| match a {
        RouteAttribute::Gateway(g) => route_addr(g),
        RouteAttribute::Via(v) => via_addr(v),
        _ => None,
    })
}

fn hop_from_rtnh(nh: &RouteNextHop, links: &LinkTable) -> KernelNextHop {
    KernelNextHop {
        gateway: gateway_of(&nh.attributes),
        ifindex: nh.interface_index,
        ifname: links.get(&nh.interface_index).map(|l| l.name.clone()),
        onlink: nh.flags.contains(RouteNextHopFlags::Onlink),
        weight: u16::from(nh.hops) + 1,
    }
}

/// Convert a `RTM_NEWROUTE`/`RTM_DELROUTE` message. Returns `None` for non-IP families,
/// cloned cache entries and malformed prefixes.
pub fn route_from_msg(msg: &RouteMessage, links: &LinkTable) -> Option<KernelRoute> {
    let h = &msg.header;
    let dst = msg.attributes.iter().find_map(|a| match a {
        RouteAttribute::Destination(d) => route_addr(d),
        _ => None,
    });
    let prefix = match (h.address_family, dst) {
        (AddressFamily::Inet, Some(IpAddr::V4(a))) => {
            IpNet::new(IpAddr::V4(a), h.destination_prefix_length).ok()?
        }
        (AddressFamily::Inet, None) => IpNet::new(
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            h.destination_prefix_length,
        )
        .ok()?,
        (AddressFamily::Inet6, Some(IpAddr::V6(a))) => {
            IpNet::new(IpAddr::V6(a), h.destination_prefix_length).ok()?
        }
        (AddressFamily::Inet6, None) => IpNet::new(
            IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            h.destination_prefix_length,
        )
        .ok()?,
        _ => return None,
    }
    .trunc();
    let mut table = u32::from(h.table);
    let mut metric = 0;
    let mut oif = 0;
    let mut nexthops = Vec::new();
    for a in &msg.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Priority(p) => metric = *p,
            RouteAttribute::Oif(i) => oif = *i,
            RouteAttribute::MultiPath(hops) => {
                nexthops.extend(hops.iter().map(|nh| hop_from_rtnh(nh, links)));
            }
            _ => {}
        }
    }
    let gateway = gateway_of(&msg.attributes);
    if nexthops.is_empty() && (oif != 0 || gateway.is_some()) {
        nexthops.push(KernelNextHop {
            gateway,
            ifindex: oif,
            ifname: links.get(&oif).map(|l| l.name.clone()),
            onlink: h
                .flags
                .contains(netlink_packet_route::route::RouteFlags::Onlink),
            weight: 1,
        });
    }
    let first = nexthops.first();
    Some(KernelRoute {
        prefix,
        kind: RouteKind::from_raw(h.kind.into()),
        protocol: h.protocol.into(),
        metric,
        table,
        ifname: first.and_then(|n| n.ifname.clone()),
        gateway: first.and_then(|n| n.gateway),
        nexthops,
    })
}

/// Convert a `RTM_NEWLINK`/`RTM_DELLINK` message. `None` when the name is missing.
pub fn link_from_msg(msg: &LinkMessage) -> Option<Link> {
    let name = msg.attributes.iter().find_map(|a| match a {
        LinkAttribute::IfName(n) => Some(n.clone()),
        _ => None,
    })?;
    let f = msg.header.flags;
    Some(Link {
        index: msg.header.index,
        name,
        up: f.contains(LinkFlags::Up)
            && (f.contains(LinkFlags::LowerUp) || f.contains(LinkFlags::Running)),
    })
}

/// Convert a `RTM_NEWADDR`/`RTM_DELADDR` message. `IFA_LOCAL` is preferred over
/// `IFA_ADDRESS` (they differ only on point-to-point links, where `IFA_ADDRESS` is the peer).
pub fn address_from_msg(msg: &AddressMessage, links: &LinkTable) -> Option<Address> {
    let local = msg.attributes.iter().find_map(|a| match a {
        AddressAttribute::Local(ip) => Some(*ip),
        _ => None,
    });
    let addr = local.or_else(|| {
        msg.attributes.iter().find_map(|a| match a {
            AddressAttribute::Address(ip) => Some(*ip),
            _ => None,
        })
    })?;
    Some(Address {
        ifindex: msg.header.index,
        ifname: links.get(&msg.header.index).map(|l| l.name.clone()),
        address: IpNet::new(addr, msg.header.prefix_len).ok()?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::route::{RouteHeader, RouteProtocol, RouteType};

    fn links() -> LinkTable {
        let mut t = LinkTable::new();
        t.insert(
            4,
            Link {
                index: 4,
                name: "cali0".into(),
                up: true,
            },
        );
        t
    }

    #[test]
    fn blackhole_and_pod_route() {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = 26;
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::Other(80);
        m.header.kind = RouteType::BlackHole;
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(
                "10.1.2.7".parse().unwrap(),
            )));
        let r = route_from_msg(&m, &links()).unwrap();
        assert_eq!(r.prefix, "10.1.2.0/26".parse::<IpNet>().unwrap());
        assert_eq!(r.kind, RouteKind::Blackhole);
        assert_eq!(r.protocol, 80);
        assert!(r.nexthops.is_empty());

        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = 32;
        m.header.protocol = RouteProtocol::Boot;
        m.header.kind = RouteType::Unicast;
        m.attributes
            .push(RouteAttribute::Destination(RouteAddress::Inet(
                "10.1.2.5".parse().unwrap(),
            )));
        m.attributes.push(RouteAttribute::Table(254));
        m.attributes.push(RouteAttribute::Oif(4));
        m.attributes.push(RouteAttribute::Priority(512));
        let r = route_from_msg(&m, &links()).unwrap();
        assert_eq!(r.ifname.as_deref(), Some("cali0"));
        assert_eq!((r.protocol, r.metric, r.table), (3, 512, 254));
    }

    #[test]
    fn bad_prefix_len_is_none() {
        let mut m = RouteMessage::default();
        m.header.address_family = AddressFamily::Inet;
        m.header.destination_prefix_length = 33;
        assert!(route_from_msg(&m, &links()).is_none());
        m.header.address_family = AddressFamily::Bridge;
        m.header.destination_prefix_length = 0;
        assert!(route_from_msg(&m, &links()).is_none());
    }
}
