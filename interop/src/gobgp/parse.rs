//! Parsers of `gobgp`'s JSON answers: `gobgp neighbor -j` and `gobgp global
//! rib -a FAMILY -j`.

use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::json::{array, as_u32, u32s};
use crate::model::{AddPathSeen, Origin, PeerStatus, RouteView};

/// Parses `gobgp neighbor -j`.
pub fn parse_neighbors(text: &str) -> Result<Vec<PeerStatus>> {
    let what = "gobgp neighbor -j";
    let v: Value = serde_json::from_str(text).map_err(|e| Error::parse(what, e.to_string()))?;
    let arr = match &v {
        Value::Array(a) => a.as_slice(),
        Value::Null => &[],
        _ => return Err(Error::parse(what, "not an array")),
    };
    let mut out = Vec::new();
    for n in arr {
        let addr = n
            .pointer("/conf/neighbor_address")
            .or_else(|| n.pointer("/state/neighbor_address"))
            .and_then(Value::as_str)
            .and_then(|s| s.parse::<IpAddr>().ok())
            .ok_or_else(|| Error::parse(what, format!("no neighbor address in {n}")))?;
        // The protobuf enum: 6 = ESTABLISHED; newer clients print names.
        let state = match n.pointer("/state/session_state") {
            Some(Value::Number(x)) => match x.as_u64() {
                Some(1) => "idle".to_string(),
                Some(2) => "connect".to_string(),
                Some(3) => "active".to_string(),
                Some(4) => "opensent".to_string(),
                Some(5) => "openconfirm".to_string(),
                Some(6) => "established".to_string(),
                _ => format!("state {x}"),
            },
            Some(Value::String(s)) => s.to_ascii_lowercase(),
            _ => "unknown".to_string(),
        };
        out.push(PeerStatus {
            address: addr,
            established: state == "established",
            state,
        });
    }
    Ok(out)
}

/// Parses `gobgp global rib -a FAMILY -j` (a map prefix → paths).
pub fn parse_rib(text: &str) -> Result<Vec<RouteView>> {
    let what = "gobgp global rib -j";
    let v: Value = serde_json::from_str(text).map_err(|e| Error::parse(what, e.to_string()))?;
    let map = match &v {
        Value::Object(m) => m,
        Value::Null => return Ok(Vec::new()),
        _ => return Err(Error::parse(what, "not an object")),
    };
    let mut out = Vec::new();
    for (prefix, paths) in map {
        let prefix: IpNet = prefix
            .parse()
            .map_err(|_| Error::parse(what, format!("bad prefix {prefix:?}")))?;
        for p in paths.as_array().map(Vec::as_slice).unwrap_or_default() {
            let mut r = RouteView::new(prefix);
            r.best = p.get("best").and_then(Value::as_bool).unwrap_or(false);
            r.stale = p.get("stale").and_then(Value::as_bool).unwrap_or(false);
            r.learned = p
                .get("neighbor-ip")
                .and_then(Value::as_str)
                .is_some_and(|s| s.parse::<IpAddr>().is_ok_and(|a| !a.is_unspecified()));
            for a in array(p, "attrs") {
                apply_attr(&mut r, a).map_err(|d| Error::parse(what, d))?;
            }
            out.push(r.normalise());
        }
    }
    Ok(out)
}

fn apply_attr(r: &mut RouteView, a: &Value) -> std::result::Result<(), String> {
    let num = |key: &str| -> std::result::Result<u32, String> {
        a.get(key)
            .and_then(as_u32)
            .ok_or_else(|| format!("attribute without numeric {key}: {a}"))
    };
    match a.get("type").and_then(Value::as_u64) {
        Some(1) => {
            r.origin = Some(match num("value")? {
                0 => Origin::Igp,
                1 => Origin::Egp,
                _ => Origin::Incomplete,
            })
        }
        Some(2) => {
            for segment in array(a, "as_paths") {
                r.as_path.extend(u32s(array(segment, "asns"), "asn")?);
            }
        }
        Some(3) | Some(14) => {
            if let Some(nh) = a.get("nexthop").and_then(Value::as_str) {
                r.next_hop = Some(nh.parse().map_err(|_| format!("bad nexthop {nh:?}"))?);
            }
        }
        Some(4) => r.med = Some(num("metric")?),
        Some(9) => {
            let v = a.get("value").and_then(Value::as_str).unwrap_or_default();
            r.originator_id = Some(v.parse().map_err(|_| format!("bad originator id {a}"))?);
        }
        Some(10) => {
            for id in array(a, "value") {
                let v = id.as_str().unwrap_or_default();
                r.cluster_list
                    .push(v.parse().map_err(|_| format!("bad cluster list {a}"))?);
            }
        }
        Some(5) => r.local_pref = Some(num("value")?),
        Some(8) => {
            for c in u32s(array(a, "communities"), "community")? {
                r.communities.push(format!("{}:{}", c >> 16, c & 0xffff));
            }
        }
        Some(32) => {
            // gobgp 3.x prints {"value":[{"ASN":..,"LocalData1":..,"LocalData2":..}]}.
            let key = if a.get("value").is_some() {
                "value"
            } else {
                "values"
            };
            for c in array(a, key) {
                let f = |keys: [&str; 2]| -> std::result::Result<u64, String> {
                    keys.iter()
                        .find_map(|k| c.get(*k).and_then(Value::as_u64))
                        .ok_or_else(|| format!("bad large community {c}"))
                };
                r.large_communities.push(format!(
                    "{}:{}:{}",
                    f(["ASN", "global_admin"])?,
                    f(["LocalData1", "local_data1"])?,
                    f(["LocalData2", "local_data2"])?
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Parses `gobgp neighbor ADDR`: the `add-path:` capability lists `Local:`
/// and `Remote:` modes per family (`receive`, `send`, `receive/send`).
pub fn parse_add_path(text: &str) -> AddPathSeen {
    let mut local = String::new();
    let mut remote = String::new();
    let mut block: Option<bool> = None; // Some(true): Local, Some(false): Remote
    let mut in_add_path = false;
    for line in text.lines() {
        let t = line.trim();
        if t.starts_with("add-path:") {
            in_add_path = true;
            continue;
        }
        if !in_add_path {
            continue;
        }
        match t {
            "Local:" => block = Some(true),
            "Remote:" => block = Some(false),
            _ => {
                if let Some(mode) = t.strip_prefix("ipv4-unicast:") {
                    match block {
                        Some(true) => local = mode.trim().to_string(),
                        Some(false) => remote = mode.trim().to_string(),
                        None => {}
                    }
                } else if !t.contains("-unicast:") {
                    // Any other line ends the add-path capability.
                    in_add_path = false;
                }
            }
        }
    }
    AddPathSeen {
        sends: local.contains("send") && remote.contains("receive"),
        receives: local.contains("receive") && remote.contains("send"),
    }
}

/// The received column of `Route Refresh:` in `gobgp neighbor ADDR`'s
/// message statistics (`Route Refresh:  SENT  RCVD`).
pub fn parse_refresh_received(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let rest = l.trim().strip_prefix("Route Refresh:")?;
        rest.split_whitespace().nth(1)?.parse().ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rib_json() {
        let text = r#"{"198.51.100.0/24":[{"nlri":{"prefix":"198.51.100.0/24"},"age":1,"best":true,
            "attrs":[{"type":1,"value":0},{"type":2,"as_paths":[{"segment_type":2,"num":1,"asns":[65001]}]},
            {"type":3,"nexthop":"10.0.0.1"},{"type":4,"metric":10},{"type":8,"communities":[4259905636]},
            {"type":32,"value":[{"ASN":65001,"LocalData1":1,"LocalData2":2}]},
            {"type":9,"value":"10.0.0.3"},{"type":10,"value":["1.1.1.1"]}],
            "stale":false,"source-id":"10.0.0.1","neighbor-ip":"10.0.0.1"}],
            "203.0.113.0/24":[{"nlri":{"prefix":"203.0.113.0/24"},"best":true,
            "attrs":[{"type":1,"value":2},{"type":3,"nexthop":"10.0.0.2"}],"stale":false}]}"#;
        let mut r = parse_rib(text).unwrap();
        r.sort_by_key(|x| x.prefix);
        assert_eq!(r.len(), 2);
        let a = &r[0];
        assert!(a.learned && a.best);
        assert_eq!(a.as_path, vec![65001]);
        assert_eq!(a.origin, Some(Origin::Igp));
        assert_eq!(a.med, Some(10));
        assert_eq!(a.next_hop, Some("10.0.0.1".parse().unwrap()));
        assert_eq!(a.communities, vec!["65001:100"]);
        assert_eq!(a.large_communities, vec!["65001:1:2"]);
        assert_eq!(a.originator_id, Some("10.0.0.3".parse().unwrap()));
        assert_eq!(
            a.cluster_list,
            vec!["1.1.1.1".parse::<std::net::Ipv4Addr>().unwrap()]
        );
        assert!(!r[1].learned);
        assert_eq!(r[1].origin, Some(Origin::Incomplete));
    }

    #[test]
    fn parses_neighbors_json_and_rejects_garbage() {
        let text = r#"[{"conf":{"neighbor_address":"fd00::1","peer_asn":65001},"state":{"session_state":6}},
                       {"conf":{"neighbor_address":"10.0.0.1"},"state":{"session_state":3}}]"#;
        let p = parse_neighbors(text).unwrap();
        assert!(p[0].established);
        assert_eq!(p[1].state, "active");
        assert!(parse_neighbors("{").is_err());
        assert!(parse_neighbors(r#"[{"conf":{}}]"#).is_err());
        assert!(parse_rib(r#"{"x":[]}"#).is_err());
    }

    #[test]
    fn parses_gobgp_refresh_counter() {
        let text = "  Message statistics:
                         Sent       Rcvd
    Opens:                  1          1
    Route Refresh:          0          2
";
        assert_eq!(parse_refresh_received(text), Some(2));
        assert_eq!(parse_refresh_received("nothing"), None);
    }

    #[test]
    fn parses_gobgp_add_path() {
        let text = "BGP neighbor is 10.0.0.1, remote AS 65010
  Neighbor capabilities:
    multiprotocol:
        ipv4-unicast:\tadvertised and received
    route-refresh:\tadvertised and received
    add-path:\tadvertised and received
      Local:
         ipv4-unicast:\treceive/send
      Remote:
         ipv4-unicast:\treceive
    enhanced-route-refresh:\tadvertised and received
";
        assert_eq!(
            parse_add_path(text),
            AddPathSeen {
                sends: true,
                receives: false
            }
        );
    }
}
