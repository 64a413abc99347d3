//! ExaBGP's JSON API messages (`encoder json`, `receive { parsed; update; }`,
//! `neighbor-changes`) read back into sessions and an Adj-RIB-In.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ipnet::IpNet;
use serde_json::Value;

use crate::json::{array, as_u32, strings};
use crate::model::{Origin, PeerStatus, RouteView};

fn peer_of(m: &Value) -> Option<IpAddr> {
    m.pointer("/neighbor/address/peer")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok())
}

/// Session states from ExaBGP `state` messages (the last one per peer wins).
pub fn peers_from_messages(msgs: &[Value]) -> Vec<PeerStatus> {
    let mut states: BTreeMap<IpAddr, String> = BTreeMap::new();
    for m in msgs {
        if m.get("type").and_then(Value::as_str) != Some("state") {
            continue;
        }
        let (Some(peer), Some(state)) = (
            peer_of(m),
            m.pointer("/neighbor/state").and_then(Value::as_str),
        ) else {
            continue;
        };
        states.insert(peer, state.to_string());
    }
    states
        .into_iter()
        .map(|(address, state)| PeerStatus {
            address,
            established: state == "up",
            state,
        })
        .collect()
}

/// Rebuilds the Adj-RIB-In (per peer and prefix) from ExaBGP `update`
/// messages; a session going down clears that peer's routes.
pub fn rib_from_messages(msgs: &[Value]) -> Vec<RouteView> {
    let mut rib: BTreeMap<(IpAddr, IpNet), RouteView> = BTreeMap::new();
    for m in msgs {
        let Some(peer) = peer_of(m) else { continue };
        match m.get("type").and_then(Value::as_str) {
            Some("state")
                if m.pointer("/neighbor/state").and_then(Value::as_str) == Some("down") =>
            {
                rib.retain(|(p, _), _| *p != peer);
            }
            Some("update") => {
                let Some(update) = m.pointer("/neighbor/message/update") else {
                    continue;
                };
                for prefix in withdrawn(update) {
                    rib.remove(&(peer, prefix));
                }
                let attrs = update.get("attribute");
                for (next_hop, prefix) in announced(update) {
                    let mut r = RouteView::new(prefix);
                    r.learned = true;
                    r.best = true;
                    r.next_hop = next_hop;
                    if let Some(a) = attrs {
                        apply_attributes(&mut r, a);
                    }
                    rib.insert((peer, prefix), r.normalise());
                }
            }
            _ => {}
        }
    }
    rib.into_values().collect()
}

fn nlri_prefixes(v: &Value) -> Vec<IpNet> {
    let parse = |s: &str| s.parse::<IpNet>().ok();
    match v {
        Value::Array(items) => items
            .iter()
            .filter_map(|i| match i {
                Value::String(s) => parse(s),
                Value::Object(o) => o.get("nlri").and_then(Value::as_str).and_then(parse),
                _ => None,
            })
            .collect(),
        Value::Object(o) => o.keys().filter_map(|k| parse(k)).collect(),
        _ => Vec::new(),
    }
}

fn withdrawn(update: &Value) -> Vec<IpNet> {
    update
        .get("withdraw")
        .and_then(Value::as_object)
        .map(|fams| fams.values().flat_map(nlri_prefixes).collect())
        .unwrap_or_default()
}

pub(super) fn announced(update: &Value) -> Vec<(Option<IpAddr>, IpNet)> {
    let mut out = Vec::new();
    let Some(fams) = update.get("announce").and_then(Value::as_object) else {
        return out;
    };
    for by_nh in fams.values() {
        let Some(by_nh) = by_nh.as_object() else {
            continue;
        };
        for (nh, nlris) in by_nh {
            for p in nlri_prefixes(nlris) {
                out.push((nh.parse().ok(), p));
            }
        }
    }
    out
}

fn apply_attributes(r: &mut RouteView, a: &Value) {
    let num = |k: &str| a.get(k).and_then(as_u32);
    r.origin = match a.get("origin").and_then(Value::as_str) {
        Some("igp") => Some(Origin::Igp),
        Some("egp") => Some(Origin::Egp),
        Some("incomplete") => Some(Origin::Incomplete),
        _ => None,
    };
    r.med = num("med");
    r.local_pref = num("local-preference");
    fn flatten(v: &Value, out: &mut Vec<u32>) {
        match v {
            Value::Number(_) => out.extend(as_u32(v)),
            Value::Array(a) => a.iter().for_each(|x| flatten(x, out)),
            Value::Object(o) => o.values().for_each(|x| flatten(x, out)),
            _ => {}
        }
    }
    if let Some(p) = a.get("as-path") {
        flatten(p, &mut r.as_path);
    }
    let tuples = |k: &str| -> Vec<String> {
        array(a, k)
            .iter()
            .filter_map(Value::as_array)
            .map(|t| {
                t.iter()
                    .map(|x| x.to_string())
                    .collect::<Vec<_>>()
                    .join(":")
            })
            .collect()
    };
    r.originator_id = a
        .get("originator-id")
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    r.cluster_list = strings(a.get("cluster-list"))
        .iter()
        .filter_map(|x| x.parse().ok())
        .collect();
    r.communities = tuples("community");
    r.large_communities = tuples("large-community");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msgs(text: &str) -> Vec<Value> {
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn rebuilds_sessions_and_rib() {
        let m = msgs(concat!(
            r#"{"type":"state","neighbor":{"address":{"local":"10.0.0.1","peer":"10.0.0.2"},"state":"up"}}"#,
            "\n",
            r#"{"type":"update","neighbor":{"address":{"local":"10.0.0.1","peer":"10.0.0.2"},"message":{"update":{"attribute":{"origin":"igp","as-path":[65002,65003],"med":10,"community":[[65002,200]],"large-community":[[65002,1,2]]},"announce":{"ipv4 unicast":{"10.0.0.2":[{"nlri":"203.0.113.0/24"},{"nlri":"203.0.113.128/25"}]}}}}}}"#,
            "\n",
            r#"{"type":"update","neighbor":{"address":{"local":"10.0.0.1","peer":"10.0.0.2"},"message":{"update":{"withdraw":{"ipv4 unicast":[{"nlri":"203.0.113.128/25"}]}}}}}"#
        ));
        let p = peers_from_messages(&m);
        assert_eq!(p.len(), 1);
        assert!(p[0].established);
        let r = rib_from_messages(&m);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].prefix, "203.0.113.0/24".parse::<IpNet>().unwrap());
        assert_eq!(r[0].as_path, vec![65002, 65003]);
        assert_eq!(r[0].med, Some(10));
        assert_eq!(r[0].origin, Some(Origin::Igp));
        assert_eq!(r[0].next_hop, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(r[0].communities, vec!["65002:200"]);
        assert_eq!(r[0].large_communities, vec!["65002:1:2"]);
    }

    #[test]
    fn session_down_clears_routes() {
        let m = msgs(concat!(
            r#"{"type":"update","neighbor":{"address":{"peer":"10.0.0.2"},"message":{"update":{"announce":{"ipv4 unicast":{"10.0.0.2":["203.0.113.0/24"]}}}}}}"#,
            "\n",
            r#"{"type":"state","neighbor":{"address":{"peer":"10.0.0.2"},"state":"down"}}"#
        ));
        assert!(rib_from_messages(&m).is_empty());
        assert!(!peers_from_messages(&m)[0].established);
    }
}
