//! Route requests as rtnetlink messages (`RTM_NEWROUTE` / `RTM_DELROUTE`, rtnetlink(7)).
//!
//! Every message carries our table and protocol; deletes carry the metric too and leave the
//! scope and type unspecified, so the kernel matches our route at that key and nothing else
//! (`fib_table_delete()` / `ip6_route_del()` compare the protocol when it is given).
//! Pure: the executor hands the messages to the writer thread.

use std::net::IpAddr;

use ipnet::IpNet;
use netlink_packet_core::{NLM_F_CREATE, NLM_F_EXCL, NLM_F_REPLACE};
use netlink_packet_route::route::{
    RouteAddress, RouteAttribute, RouteFlags, RouteHeader, RouteMessage, RouteNextHop,
    RouteNextHopFlags, RouteProtocol, RouteScope, RouteType, RouteVia,
};
use netlink_packet_route::{AddressFamily, RouteNetlinkMessage};

use super::form::RouteForm;
use super::reconciler::{RouteOp, RouteRequest};
use crate::config::ExportConfig;

/// The message for a request and its netlink flags (besides `NLM_F_REQUEST`).
pub(crate) fn request(cfg: &ExportConfig, req: &RouteRequest) -> (RouteNetlinkMessage, u16) {
    match &req.op {
        RouteOp::Add(f) => (
            RouteNetlinkMessage::NewRoute(new_route(cfg, req.prefix, f)),
            NLM_F_CREATE | NLM_F_EXCL,
        ),
        RouteOp::Replace(f) => (
            RouteNetlinkMessage::NewRoute(new_route(cfg, req.prefix, f)),
            NLM_F_CREATE | NLM_F_REPLACE,
        ),
        RouteOp::Delete { metric } => (
            RouteNetlinkMessage::DelRoute(del_route(cfg, req.prefix, *metric)),
            0,
        ),
    }
}

/// A dump request for our routes of one family (with strict checking the kernel filters
/// by table and protocol; the reader filters again in case an old kernel ignored it).
pub(crate) fn dump_ours(cfg: &ExportConfig, family: AddressFamily) -> RouteNetlinkMessage {
    let mut req = RouteMessage::default();
    req.header.address_family = family;
    req.header.protocol = RouteProtocol::from(cfg.protocol);
    req.header.table = u8::try_from(cfg.table).unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    req.attributes.push(RouteAttribute::Table(cfg.table));
    RouteNetlinkMessage::GetRoute(req)
}

fn header(cfg: &ExportConfig, prefix: IpNet) -> RouteMessage {
    let mut m = RouteMessage::default();
    m.header.address_family = match prefix {
        IpNet::V4(_) => AddressFamily::Inet,
        IpNet::V6(_) => AddressFamily::Inet6,
    };
    m.header.destination_prefix_length = prefix.prefix_len();
    m.header.table = u8::try_from(cfg.table)
        .ok()
        .filter(|t| *t != 0)
        .unwrap_or(RouteHeader::RT_TABLE_UNSPEC);
    m.header.protocol = RouteProtocol::from(cfg.protocol);
    m.attributes
        .push(RouteAttribute::Destination(addr_attr(prefix.network())));
    m.attributes.push(RouteAttribute::Table(cfg.table));
    m
}

fn new_route(cfg: &ExportConfig, prefix: IpNet, f: &RouteForm) -> RouteMessage {
    let mut m = header(cfg, prefix);
    m.header.scope = RouteScope::Universe;
    m.attributes.push(RouteAttribute::Priority(f.metric()));
    if f.is_blackhole() {
        m.header.kind = RouteType::BlackHole;
        return m;
    }
    m.header.kind = RouteType::Unicast;
    match f.hops() {
        [one] => {
            m.attributes.push(gateway_attr(prefix, one.gateway));
            if one.ifindex != 0 {
                m.attributes.push(RouteAttribute::Oif(one.ifindex));
            }
            if one.onlink {
                m.header.flags |= RouteFlags::Onlink;
            }
        }
        many => {
            let hops = many
                .iter()
                .map(|h| {
                    let mut nh = RouteNextHop::default();
                    nh.interface_index = h.ifindex;
                    if h.onlink {
                        nh.flags |= RouteNextHopFlags::Onlink;
                    }
                    nh.attributes.push(gateway_attr(prefix, h.gateway));
                    nh
                })
                .collect();
            m.attributes.push(RouteAttribute::MultiPath(hops));
        }
    }
    m
}

fn del_route(cfg: &ExportConfig, prefix: IpNet, metric: u32) -> RouteMessage {
    let mut m = header(cfg, prefix);
    // Match any scope and type; protocol and metric select our route only.
    m.header.scope = RouteScope::NoWhere;
    m.header.kind = RouteType::Unspec;
    m.attributes.push(RouteAttribute::Priority(metric));
    m
}

fn addr_attr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

/// `RTA_GATEWAY` for a same-family next hop, `RTA_VIA` for an IPv6 next hop of an IPv4 route
/// (RFC 8950).
fn gateway_attr(prefix: IpNet, gw: IpAddr) -> RouteAttribute {
    match (prefix, gw) {
        (IpNet::V4(_), IpAddr::V6(v6)) => RouteAttribute::Via(RouteVia::Inet6(v6)),
        (_, gw) => RouteAttribute::Gateway(addr_attr(gw)),
    }
}

#[cfg(test)]
mod tests {
    use super::super::form::form_for_tests;
    use super::*;
    use crate::convert::{route_from_msg, LinkTable};
    use crate::types::RouteKind;

    fn round_trip(op: RouteOp, prefix: &str) -> (crate::types::KernelRoute, u16, RouteMessage) {
        let cfg = ExportConfig::default();
        let req = RouteRequest {
            id: super::super::in_flight::RequestId::for_tests(7),
            prefix: prefix.parse().unwrap(),
            op,
        };
        let (msg, flags) = request(&cfg, &req);
        let m = match msg {
            RouteNetlinkMessage::NewRoute(m) | RouteNetlinkMessage::DelRoute(m) => m,
            other => panic!("unexpected {other:?}"),
        };
        (route_from_msg(&m, &LinkTable::new()).unwrap(), flags, m)
    }

    #[test]
    fn add_replace_and_delete_carry_our_table_protocol_and_metric() {
        let f = form_for_tests(500, &[("10.0.0.2", 4, false)]);
        let (r, flags, _) = round_trip(RouteOp::Add(f.clone()), "10.1.0.0/24");
        assert_eq!(flags, NLM_F_CREATE | NLM_F_EXCL);
        assert_eq!((r.protocol, r.table, r.metric), (12, 254, 500));
        assert_eq!(r.kind, RouteKind::Unicast);
        assert_eq!(r.gateway, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(r.nexthops[0].ifindex, 4);
        let (_, flags, _) = round_trip(RouteOp::Replace(f), "10.1.0.0/24");
        assert_eq!(flags, NLM_F_CREATE | NLM_F_REPLACE);
        let (r, flags, m) = round_trip(RouteOp::Delete { metric: 500 }, "10.1.0.0/24");
        assert_eq!(flags, 0);
        assert_eq!((r.protocol, r.table, r.metric), (12, 254, 500));
        assert_eq!(m.header.scope, RouteScope::NoWhere);
        assert_eq!(m.header.kind, RouteType::Unspec);
    }

    #[test]
    fn blackhole_onlink_and_ecmp_forms() {
        let (r, _, _) = round_trip(RouteOp::Add(form_for_tests(1024, &[])), "10.2.0.0/26");
        assert_eq!(r.kind, RouteKind::Blackhole);
        assert!(r.nexthops.is_empty());
        let (r, _, _) = round_trip(
            RouteOp::Add(form_for_tests(1, &[("192.168.1.1", 3, true)])),
            "10.3.0.0/26",
        );
        assert!(r.nexthops[0].onlink);
        let (r, _, _) = round_trip(
            RouteOp::Add(form_for_tests(
                1,
                &[("10.0.0.2", 0, false), ("10.0.0.3", 5, true)],
            )),
            "10.4.0.0/26",
        );
        assert_eq!(r.nexthops.len(), 2);
        assert_eq!(
            r.nexthops
                .iter()
                .map(|h| (h.gateway, h.ifindex, h.onlink))
                .collect::<Vec<_>>(),
            [
                (Some("10.0.0.2".parse().unwrap()), 0, false),
                (Some("10.0.0.3".parse().unwrap()), 5, true)
            ]
        );
    }

    #[test]
    fn gateway_attr_uses_via_for_v6_nexthop_of_v4_prefix() {
        let p: IpNet = "10.0.0.0/24".parse().unwrap();
        assert!(matches!(
            gateway_attr(p, "fe80::1".parse().unwrap()),
            RouteAttribute::Via(_)
        ));
        assert!(matches!(
            gateway_attr(p, "10.1.1.1".parse().unwrap()),
            RouteAttribute::Gateway(_)
        ));
        let (r, _, _) = round_trip(
            RouteOp::Add(form_for_tests(1, &[("2001:db8::1", 0, false)])),
            "10.5.0.0/24",
        );
        assert_eq!(r.gateway, Some("2001:db8::1".parse().unwrap()));
    }
}
