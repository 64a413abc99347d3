//! Parsers of bgpd's control-protocol answers (`show_peers`, `show_routes`).

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::{as_u32, strings};
use crate::model::{AddPathSeen, Origin, PeerStatus, RouteView};

/// Parses a `show_peers` result (`{"kind":"peers","peers":[...]}`).
pub fn parse_peers(v: &Value) -> Result<Vec<PeerStatus>> {
    let what = "bgpd show_peers";
    let peers = v
        .get("peers")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::parse(what, format!("no peers array in {v}")))?;
    peers
        .iter()
        .map(|p| {
            let addr = p.get("address").and_then(Value::as_str).unwrap_or_default();
            let address = addr
                .parse::<IpAddr>()
                .or_else(|_| addr.parse::<std::net::SocketAddr>().map(|s| s.ip()))
                .map_err(|_| Error::parse(what, format!("bad address in {p}")))?;
            let state = p
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            Ok(PeerStatus {
                address,
                established: state.eq_ignore_ascii_case("established"),
                state,
            })
        })
        .collect()
}

/// `not_best_reason`s of Loc-RIB paths that are not eligible at all (RFC
/// 4271 section 9.1.2): bgpd lists them, other daemons' tables do not, so
/// [`parse_routes`] leaves them out.
const INELIGIBLE: [&str; 3] = [
    "rejected by import policy",
    "routing loop",
    "next hop unresolvable",
];

/// Parses a `show_routes` result (`{"kind":"routes","routes":[...]}`),
/// leaving out ineligible paths (see `INELIGIBLE`) like the other
/// daemons' route tables do.
pub fn parse_routes(v: &Value) -> Result<Vec<RouteView>> {
    parse_route_entries(v, false)
}

/// Parses a `show_routes` result keeping every path bgpd lists, ineligible
/// ones included (for tests of why a path is held but not used).
pub fn parse_all_routes(v: &Value) -> Result<Vec<RouteView>> {
    parse_route_entries(v, true)
}

fn parse_route_entries(v: &Value, with_ineligible: bool) -> Result<Vec<RouteView>> {
    let what = "bgpd show_routes";
    let routes = v
        .get("routes")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::parse(what, format!("no routes array in {v}")))?;
    let mut out = Vec::with_capacity(routes.len());
    for r in routes {
        let s = |k: &str| r.get(k).and_then(Value::as_str);
        if !with_ineligible && s("not_best_reason").is_some_and(|why| INELIGIBLE.contains(&why)) {
            continue;
        }
        let n = |k: &str| r.get(k).and_then(as_u32);
        let prefix: IpNet = s("prefix")
            .and_then(|p| p.parse().ok())
            .ok_or_else(|| Error::parse(what, format!("bad prefix in {r}")))?;
        let mut view = RouteView::new(prefix);
        let peer = s("peer").unwrap_or("local");
        view.learned = peer != "local" && peer != "kernel";
        view.best = r.get("best").and_then(Value::as_bool).unwrap_or(false);
        view.stale = r.get("stale").and_then(Value::as_bool).unwrap_or(false);
        view.next_hop = s("next_hop").and_then(|h| h.parse().ok());
        view.as_path = s("as_path")
            .unwrap_or_default()
            .split(|c: char| c.is_whitespace() || "{}(),[]".contains(c))
            .filter(|t| !t.is_empty())
            .map(|t| {
                t.parse::<u32>()
                    .map_err(|_| Error::parse(what, format!("as_path in {r}")))
            })
            .collect::<Result<_>>()?;
        view.origin = match s("origin").map(str::to_ascii_lowercase).as_deref() {
            Some("igp") | Some("i") => Some(Origin::Igp),
            Some("egp") | Some("e") => Some(Origin::Egp),
            Some("incomplete") | Some("?") => Some(Origin::Incomplete),
            _ => None,
        };
        view.local_pref = n("local_pref");
        view.med = n("med");
        let strings = |k: &str| strings(r.get(k));
        view.originator_id = s("originator_id").and_then(|x| x.parse().ok());
        view.cluster_list = strings("cluster_list")
            .iter()
            .filter_map(|x| x.parse().ok())
            .collect();
        view.communities = strings("communities");
        view.large_communities = strings("large_communities");
        out.push(view.normalise());
    }
    Ok(out)
}

/// bgpd's view of ADD-PATH (IPv4 unicast) on its session to `neighbor`, from
/// the capabilities of `show_peer` (sent and received, as rendered by bgpd:
/// `AddPath([(Family { afi: Afi(1), safi: Safi(1) }, Both)])`).
pub fn parse_add_path(detail: &Value) -> AddPathSeen {
    let modes = |key: &str| -> Vec<String> {
        strings(detail.get(key))
            .iter()
            .filter(|c| c.starts_with("AddPath"))
            .flat_map(|c| {
                // One "(Family { .. }, Mode)" tuple per family.
                c.split("), (Family")
                    .filter(|t| t.contains("afi: Afi(1), safi: Safi(1)"))
                    .map(str::to_string)
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let can =
        |tuples: &[String], dir: &str| tuples.iter().any(|t| t.contains(dir) || t.contains("Both"));
    let (sent, received) = (modes("capabilities_sent"), modes("capabilities_received"));
    AddPathSeen {
        sends: can(&sent, "Send") && can(&received, "Receive"),
        receives: can(&sent, "Receive") && can(&received, "Send"),
    }
}

/// Whether a route entry of `show_routes` is the best path (not a path
/// listed with a `not_best_reason` such as "rejected by import policy").
pub fn is_best(entry: &Value) -> bool {
    entry.get("best").and_then(Value::as_bool) == Some(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_control_replies() {
        let peers: Value = serde_json::from_str(
            r#"{"kind":"peers","peers":[{"name":"Peer_10_0_0_2","address":"10.0.0.2","remote_as":65002,
            "state":"Established","uptime_secs":3,"prefixes_received":1,"prefixes_accepted":1,
            "prefixes_sent":1,"last_error":null}]}"#,
        )
        .unwrap();
        let p = parse_peers(&peers).unwrap();
        assert!(p[0].established);
        assert_eq!(p[0].address, "10.0.0.2".parse::<IpAddr>().unwrap());
        let routes: Value = serde_json::from_str(
            r#"{"kind":"routes","routes":[{"prefix":"203.0.113.0/24","peer":"Peer_10_0_0_2",
            "next_hop":"10.0.0.2","as_path":"65002 {65010 65011}","origin":"IGP","local_pref":null,"med":10,
            "communities":["65002:7","65002:100"],"large_communities":["65002:1:1"],"best":true,"multipath":false,
            "originator_id":"10.0.0.3","cluster_list":["192.0.2.99","192.0.2.98"]},
            {"prefix":"198.51.100.0/24","peer":"local","next_hop":null,"as_path":"","origin":"IGP",
            "local_pref":100,"med":null,"communities":[],"large_communities":[],"best":true,"multipath":false}]}"#,
        )
        .unwrap();
        let r = parse_routes(&routes).unwrap();
        assert!(r[0].learned && r[0].best);
        assert_eq!(r[0].as_path, vec![65002, 65010, 65011]);
        assert_eq!(r[0].communities, vec!["65002:100", "65002:7"]);
        assert_eq!(r[0].med, Some(10));
        assert_eq!(r[0].originator_id, Some("10.0.0.3".parse().unwrap()));
        assert_eq!(
            r[0].cluster_list,
            vec![
                "192.0.2.99".parse::<std::net::Ipv4Addr>().unwrap(),
                "192.0.2.98".parse().unwrap()
            ]
        );
        assert_eq!(r[1].originator_id, None);
        assert!(!r[1].learned);
        assert!(parse_routes(&serde_json::json!({"routes":[{"prefix":"x"}]})).is_err());
        let rejected = serde_json::json!({"routes":[
            {"prefix":"192.0.2.0/24","peer":"P","as_path":"65020","best":false,
             "not_best_reason":"rejected by import policy"},
            {"prefix":"192.0.2.0/24","peer":"Q","as_path":"65030 65010","best":false,
             "not_best_reason":"routing loop"},
            {"prefix":"192.0.2.0/24","peer":"R","as_path":"65040","best":false,
             "not_best_reason":"longer AS_PATH"}]});
        let r = parse_routes(&rejected).unwrap();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].as_path, vec![65040]);
        assert!(parse_peers(&Value::Null).is_err());
    }

    #[test]
    fn parses_bgpd_add_path() {
        let v = serde_json::json!({
            "capabilities_sent": ["RouteRefresh",
                "AddPath([(Family { afi: Afi(1), safi: Safi(1) }, Both)])"],
            "capabilities_received": ["AddPath([(Family { afi: Afi(2), safi: Safi(1) }, Both), (Family { afi: Afi(1), safi: Safi(1) }, Send)])"],
        });
        let a = parse_add_path(&v);
        assert!(!a.sends && a.receives);
    }
}
