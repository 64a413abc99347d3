//! Parsers of vtysh's JSON answers: `show bgp summary json`, `show bgp AF
//! unicast json` and `show bgp AF unicast PREFIX json`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::{array, as_u32, strings, u32s};
use crate::model::{AddPathSeen, Origin, PeerStatus, RouteView};

/// Parses `show bgp summary json` (all families) into peer states.
pub fn parse_summary(v: &Value) -> Result<Vec<PeerStatus>> {
    let what = "show bgp summary json";
    let mut out: Vec<PeerStatus> = Vec::new();
    let Some(families) = v.as_object() else {
        return Err(Error::parse(what, "not an object"));
    };
    for fam in families.values() {
        let Some(peers) = fam.get("peers").and_then(Value::as_object) else {
            continue;
        };
        for (addr, p) in peers {
            let address: IpAddr = addr
                .parse()
                .map_err(|_| Error::parse(what, format!("bad peer {addr:?}")))?;
            if out.iter().any(|x| x.address == address) {
                continue;
            }
            let state = p
                .get("state")
                .and_then(Value::as_str)
                .unwrap_or("unknown")
                .to_string();
            out.push(PeerStatus {
                address,
                established: state == "Established",
                state,
            });
        }
    }
    Ok(out)
}

/// The prefixes of `show bgp AF unicast json`.
pub fn table_prefixes(v: &Value) -> Result<Vec<IpNet>> {
    let what = "show bgp unicast json";
    let Some(routes) = v.get("routes").and_then(Value::as_object) else {
        // An empty table is printed as `{}` by some versions.
        return Ok(Vec::new());
    };
    routes
        .keys()
        .map(|k| {
            k.parse::<IpNet>()
                .map_err(|_| Error::parse(what, format!("bad prefix {k:?}")))
        })
        .collect()
}

/// Parses `show bgp AF unicast PREFIX json` into one view per path.
pub fn parse_prefix_detail(prefix: IpNet, v: &Value) -> Result<Vec<RouteView>> {
    let what = format!("show bgp unicast {prefix} json");
    let paths = v
        .get("paths")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let mut out = Vec::new();
    for p in paths {
        let mut r = RouteView::new(prefix);
        let num = |k: &str| p.get(k).and_then(as_u32);
        r.best = p
            .pointer("/bestpath/overall")
            .and_then(Value::as_bool)
            .unwrap_or(false);
        r.learned = p
            .pointer("/peer/peerId")
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<IpAddr>().ok())
            .is_some_and(|a| !a.is_unspecified());
        r.origin = match p.get("origin").and_then(Value::as_str) {
            Some("IGP") => Some(Origin::Igp),
            Some("EGP") => Some(Origin::Egp),
            Some("incomplete") | Some("Incomplete") => Some(Origin::Incomplete),
            _ => None,
        };
        r.med = num("metric").or_else(|| num("med"));
        r.local_pref = num("locPrf").or_else(|| num("localpref"));
        if let Some(aspath) = p.get("aspath") {
            for segment in array(aspath, "segments") {
                let asns =
                    u32s(array(segment, "list"), "asn").map_err(|d| Error::parse(&what, d))?;
                r.as_path.extend(asns);
            }
        }
        let list = |k: &str| strings(p.pointer(&format!("/{k}/list")));
        r.originator_id = p
            .get("originatorId")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        r.cluster_list = list("clusterList")
            .iter()
            .filter_map(|s| s.parse().ok())
            .collect();
        r.communities = list("community");
        r.large_communities = list("largeCommunity");
        // The first next hop's global address ("ip"), not its link-local one.
        r.next_hop = p
            .pointer("/nexthops/0/ip")
            .and_then(Value::as_str)
            .and_then(|s| s.parse().ok());
        out.push(r.normalise());
    }
    Ok(out)
}

/// Parses FRR's `show bgp neighbors ADDR json`: `neighborCapabilities.addPath
/// .ipv4Unicast` has `txAdvertisedAndReceived` / `rxAdvertisedAndReceived`.
pub fn parse_add_path(v: &Value, neighbor: IpAddr) -> AddPathSeen {
    let ap = v
        .get(neighbor.to_string())
        .and_then(|n| n.pointer("/neighborCapabilities/addPath/ipv4Unicast"));
    let flag = |k: &str| {
        ap.and_then(|a| a.get(k))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    AddPathSeen {
        sends: flag("txAdvertisedAndReceived"),
        receives: flag("rxAdvertisedAndReceived"),
    }
}

/// ROUTE-REFRESH messages received from `neighbor` in FRR's `show bgp
/// neighbors ADDR json` (`messageStats.routeRefreshRecv`).
pub fn parse_refreshes_received(v: &Value, neighbor: IpAddr) -> Option<u64> {
    v.get(neighbor.to_string())
        .and_then(|n| n.pointer("/messageStats/routeRefreshRecv"))
        .and_then(Value::as_u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_summary_of_both_families() {
        let v: Value = serde_json::from_str(
            r#"{"ipv4Unicast":{"peers":{"10.0.0.1":{"state":"Established"}}},
                "ipv6Unicast":{"peers":{"fd00::1":{"state":"Active"}}}}"#,
        )
        .unwrap();
        let p = parse_summary(&v).unwrap();
        assert_eq!(p.len(), 2);
        assert!(p.iter().any(|x| x.established && x.address.is_ipv4()));
        assert!(p.iter().any(|x| !x.established && x.state == "Active"));
        assert!(parse_summary(&Value::Null).is_err());
    }

    #[test]
    fn parses_prefix_detail() {
        let v: Value = serde_json::from_str(
            r#"{"prefix":"198.51.100.0/24","paths":[{"aspath":{"string":"65001","segments":[{"type":"as-sequence","list":[65001]}],"length":1},
            "origin":"IGP","metric":10,"locPrf":150,"valid":true,"bestpath":{"overall":true},
            "community":{"string":"65001:100","list":["65001:100"]},
            "largeCommunity":{"string":"65001:1:2","list":["65001:1:2"]},
            "nexthops":[{"ip":"10.0.0.1","afi":"ipv4"}],"peer":{"peerId":"10.0.0.1"}}]}"#,
        )
        .unwrap();
        let p: IpNet = "198.51.100.0/24".parse().unwrap();
        let r = parse_prefix_detail(p, &v).unwrap();
        assert_eq!(r.len(), 1);
        let r = &r[0];
        assert!(r.learned && r.best);
        assert_eq!(r.as_path, vec![65001]);
        assert_eq!((r.med, r.local_pref), (Some(10), Some(150)));
        assert_eq!(r.communities, vec!["65001:100"]);
        assert_eq!(r.large_communities, vec!["65001:1:2"]);
        assert_eq!(r.next_hop, Some("10.0.0.1".parse().unwrap()));
    }

    #[test]
    fn parses_frr_add_path() {
        let v: Value = serde_json::from_str(
            r#"{"10.0.0.1":{"neighborCapabilities":{"addPath":{"ipv4Unicast":
            {"txAdvertisedAndReceived":true,"rxAdvertisedAndReceived":true}}}}}"#,
        )
        .unwrap();
        let a = parse_add_path(&v, "10.0.0.1".parse().unwrap());
        assert!(a.sends && a.receives);
        let none = parse_add_path(&v, "10.0.0.9".parse().unwrap());
        assert!(!none.sends && !none.receives);
    }

    #[test]
    fn parses_frr_refresh_counter() {
        let v = serde_json::json!({"10.0.0.1": {"messageStats": {"routeRefreshRecv": 3}}});
        let n: IpAddr = "10.0.0.1".parse().unwrap();
        assert_eq!(parse_refreshes_received(&v, n), Some(3));
        assert_eq!(
            parse_refreshes_received(&v, "10.0.0.9".parse().unwrap()),
            None
        );
    }
}
