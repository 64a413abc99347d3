//! `show route [protocol NAME]` on the BIRD-compatible socket: the Loc-RIB of the socket's
//! family in BIRD's layout, which calico-node's CalicoNodeStatus route reporter parses
//! (`node/pkg/status/populators/route.go`: `DEST via GW on IFACE [FROM ...`, `DEST dev
//! IFACE [FROM ...`, `DEST blackhole [FROM ...`, the primary route marked `] *`).
//!
//! BIRD 1.6 (`nest/rt-table.c`, `rt_show_rte`): one line per route, `%-18s %s [%s %s%s]%s%s`
//! — the prefix (blank on the further routes of a prefix), `via GW on IFACE` / `dev IFACE`
//! / `blackhole`, `[PROTOCOL TIME` and ` from PEER` when the peer is not the gateway, `]`,
//! ` *` for the primary route, and ` (PREFERENCE)`, for BGP ` (100) [AS<origin AS><i|e|?>]`.
//! BIRD 2 (`nest/rt-show.c`): a `Table master4:` line, `%-20s` with the destination type
//! (`unicast`, `blackhole`), then `\tvia GW on IFACE` / `\tdev IFACE` on its own line.
//!
//! Protocol names follow BIRD's: BGP routes carry their session's name, kernel routes
//! `kernel1`, originated routes `static1`. BIRD adds the IGP metric of a recursive next hop
//! after the preference (`(100/0)`); bgpd does not report it, so it is left out.

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use bgp_proto::Origin;

use bgp_speaker::config::BirdFormat;
use bgp_speaker::{Route, RouteQuery, RouteSource, Speaker, Table};

use super::reply::Reply;
use super::time::{local_or_epoch, proto_time};
use super::SocketFamily;

/// BIRD's default preferences by protocol.
fn preference(protocol: &str) -> u32 {
    match protocol {
        "kernel1" => 10,
        "static1" => 200,
        "direct1" => 240,
        _ => 100,
    }
}

/// BIRD's name of the protocol a route came from.
pub fn protocol_name(e: &Route) -> String {
    match (&e.peer, e.source) {
        (Some(name), _) => name.clone(),
        (None, RouteSource::Kernel) => "kernel1".into(),
        (None, RouteSource::Connected) => "direct1".into(),
        (None, RouteSource::Static | RouteSource::Bgp) => "static1".into(),
    }
}

/// `(destination type, next hop part)`: BIRD 1.6's `via ... on ...` / `dev ...` /
/// `blackhole`, and BIRD 2's type with its next-hop line.
fn destination(e: &Route) -> (&'static str, String) {
    let iface = e.interface.as_deref().unwrap_or("?");
    match (&e.next_hop, &e.interface) {
        (Some(gw), _) => ("unicast", format!("via {gw} on {iface}")),
        (None, Some(dev)) => ("unicast", format!("dev {dev}")),
        (None, None) => ("blackhole", String::new()),
    }
}

/// The ` (PREF) [ASni]` tail.
fn info(e: &Route, protocol: &str) -> String {
    let pref = preference(protocol);
    if e.peer.is_some() {
        // The last AS written, as BIRD shows it (of a trailing AS_SET too).
        let origin_as = e
            .as_path
            .segments
            .last()
            .and_then(|s| s.asns.last())
            .map(|a| format!("AS{a}"))
            .unwrap_or_default();
        let origin = match e.origin {
            Some(Origin::Igp) => "i",
            Some(Origin::Egp) => "e",
            _ => "?",
        };
        format!(" ({pref}) [{origin_as}{origin}]")
    } else {
        format!(" ({pref})")
    }
}

/// Renders `routes` (all paths of the Loc-RIB, sorted by prefix) of one family.
/// `peers`: session name → neighbour address (BIRD's ` from` when it is not the gateway).
pub fn show_route(
    routes: &[Route],
    peers: &HashMap<String, IpAddr>,
    family: SocketFamily,
    format: BirdFormat,
    now: SystemTime,
) -> Reply {
    let mut r = Reply::new();
    if format == BirdFormat::Bird2 && !routes.is_empty() {
        r.more(1007, &format!("Table {}:", family.table()));
    }
    let mut last_prefix = None;
    // The primary route of each prefix goes first, as in BIRD's table.
    let mut ordered: Vec<&Route> = routes.iter().collect();
    ordered.sort_by(|a, b| a.prefix.cmp(&b.prefix).then(b.best.cmp(&a.best)));
    for e in ordered {
        // When the route last changed (BIRD's `lastmod`), shown as BIRD shows it
        // (`tm_format_time` with `timeformat route`): the time of day under 20 hours ago,
        // else the date. A route without one is shown as fresh.
        let since = e.since.unwrap_or(now);
        let age = now.duration_since(since).unwrap_or(Duration::ZERO);
        let tm = proto_time(&local_or_epoch(since), age, format);
        let protocol = protocol_name(e);
        let ia = if last_prefix == Some(e.prefix) {
            String::new()
        } else {
            e.prefix.to_string()
        };
        last_prefix = Some(e.prefix);
        let from = e
            .peer
            .as_ref()
            .and_then(|p| peers.get(p))
            .filter(|addr| e.next_hop != Some(**addr))
            .map(|a| format!(" from {a}"))
            .unwrap_or_default();
        let primary = if e.best { " *" } else { "" };
        let tail = info(e, &protocol);
        let (kind, via) = destination(e);
        match format {
            BirdFormat::Bird1 => {
                let via = if via.is_empty() { kind.to_owned() } else { via };
                r.more(
                    1007,
                    &format!("{ia:<18} {via} [{protocol} {tm}{from}]{primary}{tail}"),
                );
            }
            BirdFormat::Bird2 => {
                r.more(
                    1007,
                    &format!("{ia:<20} {kind} [{protocol} {tm}{from}]{primary}{tail}"),
                );
                if !via.is_empty() {
                    r.more(1007, &format!("\t{via}"));
                }
            }
        }
    }
    r.end(0, "");
    r
}

/// Answers `show route [protocol NAME]` from the speaker's Loc-RIB.
pub async fn respond(
    speaker: &Speaker,
    protocol: Option<&str>,
    family: SocketFamily,
    format: BirdFormat,
) -> Reply {
    let q = RouteQuery {
        table: Table::Loc,
        family: Some(family.filter()),
        ..RouteQuery::default()
    };
    let mut r = Reply::new();
    match (speaker.routes(q).await, speaker.peers().await) {
        (Ok(routes), Ok(peers)) => {
            let names: HashMap<String, IpAddr> = peers
                .iter()
                .map(|p| (p.config.name.clone(), p.config.address.addr))
                .collect();
            let shown: Vec<Route> = routes
                .into_iter()
                .filter(|e| protocol.is_none_or(|p| protocol_name(e) == p))
                .collect();
            r = show_route(&shown, &names, family, format, SystemTime::now());
        }
        (Err(e), _) | (_, Err(e)) => {
            r.end(8000, &e.to_string());
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use bgp_proto::{AsPath, AsSegment, SegmentType};

    use super::*;

    fn entry(prefix: &str, peer: &str, nh: Option<&str>, iface: Option<&str>) -> Route {
        let (source, peer) = match peer {
            "local" => (RouteSource::Static, None),
            "kernel" => (RouteSource::Kernel, None),
            name => (RouteSource::Bgp, Some(name.to_owned())),
        };
        let as_path = if peer.is_some() {
            AsPath {
                segments: vec![AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![65001, 65002],
                }],
            }
        } else {
            AsPath::default()
        };
        Route {
            prefix: prefix.parse().unwrap(),
            path_id: None,
            source,
            peer,
            next_hop: nh.map(|n| n.parse().unwrap()),
            as_path,
            origin: Some(Origin::Igp),
            local_pref: None,
            med: None,
            communities: Vec::new(),
            large_communities: Vec::new(),
            extended_communities: Vec::new(),
            atomic_aggregate: false,
            aggregator: None,
            otc: None,
            unknown_attributes: Vec::new(),
            originator_id: None,
            cluster_list: Vec::new(),
            best: true,
            multipath: false,
            not_best: None,
            stale: false,
            interface: iface.map(str::to_owned),
            since: None,
        }
    }

    #[test]
    fn bird1_and_bird2_layouts() {
        let mut alt = entry(
            "10.0.1.0/26",
            "Mesh_10_0_0_3",
            Some("10.0.0.3"),
            Some("eth0"),
        );
        alt.best = false;
        let routes = vec![
            entry(
                "10.0.1.0/26",
                "Mesh_10_0_0_2",
                Some("10.0.0.9"),
                Some("eth0"),
            ),
            alt,
            entry("10.0.2.0/26", "local", None, None),
            entry("10.0.2.5/32", "kernel", None, Some("cali1")),
        ];
        let peers: HashMap<String, IpAddr> = [
            ("Mesh_10_0_0_2".to_string(), "10.0.0.2".parse().unwrap()),
            ("Mesh_10_0_0_3".to_string(), "10.0.0.3".parse().unwrap()),
        ]
        .into();
        let now = SystemTime::now();
        let r = show_route(&routes, &peers, SocketFamily::Ipv4, BirdFormat::Bird1, now);
        let lines: Vec<&str> = r.as_str().lines().collect();
        assert_eq!(lines.len(), 5, "{lines:#?}");
        assert!(
            lines[0].starts_with("1007-10.0.1.0/26        via 10.0.0.9 on eth0 [Mesh_10_0_0_2 ")
        );
        assert!(
            lines[0].ends_with(" from 10.0.0.2] * (100) [AS65002i]"),
            "{lines:#?}"
        );
        assert!(lines[1].starts_with("                    via 10.0.0.3 on eth0 [Mesh_10_0_0_3 "));
        assert!(
            lines[1].ends_with("] (100) [AS65002i]"),
            "no from, not primary: {lines:#?}"
        );
        assert!(lines[2].starts_with(" 10.0.2.0/26        blackhole [static1 "));
        assert!(lines[2].ends_with("] * (200)"));
        assert!(lines[3].starts_with(" 10.0.2.5/32        dev cali1 [kernel1 "));
        assert!(lines[3].ends_with("] * (10)"));
        assert_eq!(lines[4], "0000 ");
        let r2 = show_route(&routes, &peers, SocketFamily::Ipv4, BirdFormat::Bird2, now);
        let l2: Vec<&str> = r2.as_str().lines().collect();
        assert_eq!(l2[0], "1007-Table master4:");
        assert!(l2[1].starts_with(" 10.0.1.0/26          unicast [Mesh_10_0_0_2 "));
        assert_eq!(l2[2], " \tvia 10.0.0.9 on eth0");
        assert!(l2[5].starts_with(" 10.0.2.0/26          blackhole [static1 "));
        assert_eq!(l2.last().copied(), Some("0000 "));
        let empty = show_route(&[], &peers, SocketFamily::Ipv6, BirdFormat::Bird2, now);
        assert_eq!(empty.as_str(), "0000 \n");
    }

    #[test]
    fn route_time_is_when_it_changed() {
        let now = SystemTime::now();
        let peers = HashMap::new();
        let mut hour = entry("10.0.1.0/26", "local", None, None);
        hour.since = now.checked_sub(Duration::from_secs(3600));
        let mut days = entry("10.0.2.0/26", "local", None, None);
        days.since = now.checked_sub(Duration::from_secs(3 * 86400));
        for format in [BirdFormat::Bird1, BirdFormat::Bird2] {
            let shown = |e: &Route| {
                let r = show_route(
                    std::slice::from_ref(e),
                    &peers,
                    SocketFamily::Ipv4,
                    format,
                    now,
                );
                r.as_str().to_owned()
            };
            let at = |t: Option<SystemTime>, age: u64| {
                let t = t.expect("a time");
                format!(
                    "[static1 {}]",
                    proto_time(&local_or_epoch(t), Duration::from_secs(age), format)
                )
            };
            // An hour ago: that time of day, not now's; three days ago: the date.
            let one = shown(&hour);
            assert!(one.contains(&at(hour.since, 3600)), "{one}");
            assert!(!one.contains(&at(Some(now), 0)), "{one}");
            let three = shown(&days);
            assert!(three.contains(&at(days.since, 3 * 86400)), "{three}");
            let (_, tm) = three.split_once("[static1 ").expect("protocol");
            assert!(!tm.contains(':'), "a date, not a time of day: {three}");
        }
    }
}
