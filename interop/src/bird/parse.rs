//! Parsers of `birdc`'s answers (BIRD 2.0): `show protocols`, `show route
//! count`, `show route all`.

use std::net::IpAddr;

use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::model::{AddPathSeen, Origin, PeerStatus, RouteView};

/// Parses `birdc show protocols` for the BGP protocols in `protocols`.
pub fn parse_protocols(text: &str, protocols: &[(String, IpAddr)]) -> Vec<PeerStatus> {
    let mut out = Vec::new();
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let Some(name) = cols.first() else { continue };
        let Some((_, addr)) = protocols.iter().find(|(n, _)| n == name) else {
            continue;
        };
        // name proto table state since info...
        let info = cols.get(5..).map(|c| c.join(" ")).unwrap_or_default();
        let state = if info.is_empty() {
            cols.get(3).copied().unwrap_or("?").to_string()
        } else {
            info
        };
        out.push(PeerStatus {
            address: *addr,
            established: state.starts_with("Established"),
            state,
        });
    }
    out
}

/// Parses `show route count`: "Total: 7 of 9 routes for 7 networks in 2
/// tables" or "7 of 9 routes for 7 networks" → 7.
pub fn parse_count(text: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let l = l.trim().trim_start_matches("Total:").trim();
        let (n, rest) = l.split_once(' ')?;
        if rest.starts_with("of ") {
            n.parse().ok()
        } else {
            None
        }
    })
}

/// Parses `birdc show route all` output (BIRD 2.0).
pub fn parse_routes(text: &str) -> Result<Vec<RouteView>> {
    let what = "birdc show route all";
    let mut out: Vec<RouteView> = Vec::new();
    let mut prefix: Option<IpNet> = None;
    for line in text.lines() {
        if line.is_empty()
            || line.starts_with("BIRD ")
            || line.starts_with("Table ")
            || line.starts_with("Network not found")
        {
            continue;
        }
        if line.starts_with('\t') {
            let Some(r) = out.last_mut() else { continue };
            parse_attribute_line(r, line.trim()).map_err(|d| Error::parse(what, d))?;
            continue;
        }
        // A route header: "PREFIX  type [proto since] * (pref) [ASnI]", or an
        // alternative path of the previous prefix starting with spaces.
        let trimmed = line.trim_start();
        let rest = if line.starts_with(' ') {
            trimmed
        } else {
            let mut it = trimmed.splitn(2, char::is_whitespace);
            let p = it.next().unwrap_or_default();
            prefix = Some(
                p.parse::<IpNet>()
                    .map_err(|_| Error::parse(what, format!("bad prefix in {line:?}")))?,
            );
            it.next().unwrap_or_default()
        };
        let Some(p) = prefix else {
            return Err(Error::parse(what, format!("path without prefix: {line:?}")));
        };
        let mut r = RouteView::new(p);
        // The best-path star follows the "[proto since]" bracket.
        if let Some(close) = rest.find(']') {
            r.best = rest
                .get(close + 1..)
                .is_some_and(|after| after.trim_start().starts_with('*'));
        }
        out.push(r);
    }
    Ok(out.into_iter().map(RouteView::normalise).collect())
}

fn parse_attribute_line(r: &mut RouteView, line: &str) -> std::result::Result<(), String> {
    let Some((key, value)) = line.split_once(':') else {
        // "via 10.0.0.2 on eth0", "blackhole", "dev eth0": not attributes.
        return Ok(());
    };
    let value = value.trim();
    match key {
        "Type" => r.learned = value.starts_with("BGP"),
        "BGP.origin" => {
            r.origin = Some(match value {
                "IGP" => Origin::Igp,
                "EGP" => Origin::Egp,
                "Incomplete" => Origin::Incomplete,
                other => return Err(format!("origin {other:?}")),
            })
        }
        "BGP.as_path" => {
            r.as_path = value
                .split(|c: char| c.is_whitespace() || c == '{' || c == '}' || c == ',')
                .filter(|s| !s.is_empty())
                .map(|s| s.parse::<u32>().map_err(|_| format!("as_path {value:?}")))
                .collect::<std::result::Result<_, _>>()?
        }
        "BGP.next_hop" => {
            let first = value.split_whitespace().next().unwrap_or_default();
            r.next_hop = Some(first.parse().map_err(|_| format!("next_hop {value:?}"))?);
        }
        "BGP.med" => r.med = Some(value.parse().map_err(|_| format!("med {value:?}"))?),
        "BGP.local_pref" => {
            r.local_pref = Some(value.parse().map_err(|_| format!("local_pref {value:?}"))?)
        }
        "BGP.community" => r.communities = parse_tuples(value, 2)?,
        "BGP.originator_id" => {
            r.originator_id = Some(
                value
                    .parse()
                    .map_err(|_| format!("originator_id {value:?}"))?,
            )
        }
        "BGP.cluster_list" => {
            r.cluster_list = value
                .split_whitespace()
                .map(|x| x.parse().map_err(|_| format!("cluster_list {value:?}")))
                .collect::<std::result::Result<_, _>>()?
        }
        "BGP.large_community" => r.large_communities = parse_tuples(value, 3)?,
        _ => {}
    }
    Ok(())
}

/// `(65001,100) (65001,200)` or `(1, 2, 3)` into `["65001:100", ...]`.
fn parse_tuples(value: &str, arity: usize) -> std::result::Result<Vec<String>, String> {
    let mut out = Vec::new();
    for part in value.split(')') {
        let part = part.trim().trim_start_matches('(');
        if part.is_empty() {
            continue;
        }
        let nums: Vec<&str> = part.split(',').map(str::trim).collect();
        if nums.len() != arity || nums.iter().any(|n| n.parse::<u32>().is_err()) {
            return Err(format!("community {value:?}"));
        }
        out.push(nums.join(":"));
    }
    Ok(out)
}

/// The address families listed after `label` (e.g. `RX:`) in the ADD-PATH
/// block of one capability section of `birdc show protocols all`.
fn add_path_afis(section: &str, label: &str) -> Vec<String> {
    let mut in_add_path = false;
    let mut add_path_indent = 0;
    for line in section.lines() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim();
        if t == "ADD-PATH" {
            in_add_path = true;
            add_path_indent = indent;
            continue;
        }
        if in_add_path {
            if indent <= add_path_indent {
                in_add_path = false;
                continue;
            }
            if let Some(rest) = t.strip_prefix(label) {
                return rest.split_whitespace().map(str::to_string).collect();
            }
        }
    }
    Vec::new()
}

/// Parses `birdc show protocols all NAME`: BIRD sends several paths when its
/// local capabilities have `TX: ipv4` and the neighbor's `RX: ipv4` in their
/// ADD-PATH blocks, and the other way round for receiving.
pub fn parse_add_path(text: &str) -> AddPathSeen {
    let local_start = text.find("Local capabilities");
    let neighbor_start = text.find("Neighbor capabilities");
    let (local, neighbor) = match (local_start, neighbor_start) {
        (Some(l), Some(n)) if l < n => (
            text.get(l..n).unwrap_or_default(),
            text.get(n..).unwrap_or_default(),
        ),
        _ => {
            return AddPathSeen {
                sends: false,
                receives: false,
            }
        }
    };
    // The neighbor section ends where the session details begin.
    let neighbor = neighbor.split("Session:").next().unwrap_or_default();
    let has =
        |section: &str, label: &str| add_path_afis(section, label).iter().any(|a| a == "ipv4");
    AddPathSeen {
        sends: has(local, "TX:") && has(neighbor, "RX:"),
        receives: has(local, "RX:") && has(neighbor, "TX:"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ROUTES: &str = "BIRD 2.0.12 ready.
Table master4:
198.51.100.0/24      blackhole [ix_static4 12:24:18.790] * (200)
\tType: static univ
203.0.113.0/24       unicast [p_10_0_0_2 12:24:21.802] * (100) [AS65002i]
\tvia 10.0.0.2 on eth0
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65002 {65010 65011}
\tBGP.next_hop: 10.0.0.2
\tBGP.med: 10
\tBGP.local_pref: 100
\tBGP.community: (65002,200) (65002,100)
\tBGP.large_community: (65002, 1, 2)
\tBGP.originator_id: 10.0.0.2
\tBGP.cluster_list: 1.1.1.1 2.2.2.2
                     unicast [p_10_0_0_3 12:24:22.000] (100) [AS65003?]
\tvia 10.0.0.3 on eth0
\tType: BGP univ
\tBGP.origin: Incomplete
\tBGP.as_path: 65003
\tBGP.next_hop: 10.0.0.3
\tBGP.local_pref: 100

Table master6:
2001:db8:b::/48      unicast [p_fd00__2 12:24:21.814] * (100) [AS65002i]
\tvia fd00::2 on eth0
\tType: BGP univ
\tBGP.origin: IGP
\tBGP.as_path: 65002
\tBGP.next_hop: fd00::2 fe80::1
\tBGP.local_pref: 100
";

    #[test]
    fn parses_routes_paths_and_attributes() {
        let r = parse_routes(ROUTES).unwrap();
        assert_eq!(r.len(), 4);
        assert!(!r[0].learned && r[0].best);
        let b = &r[1];
        assert_eq!(b.prefix, "203.0.113.0/24".parse::<IpNet>().unwrap());
        assert!(b.learned && b.best);
        assert_eq!(b.as_path, vec![65002, 65010, 65011]);
        assert_eq!(b.origin, Some(Origin::Igp));
        assert_eq!(b.med, Some(10));
        assert_eq!(b.communities, vec!["65002:100", "65002:200"]);
        assert_eq!(b.large_communities, vec!["65002:1:2"]);
        assert_eq!(b.originator_id, Some("10.0.0.2".parse().unwrap()));
        assert_eq!(
            b.cluster_list,
            vec![
                "1.1.1.1".parse::<std::net::Ipv4Addr>().unwrap(),
                "2.2.2.2".parse().unwrap()
            ]
        );
        let alt = &r[2];
        assert_eq!(alt.prefix, b.prefix);
        assert!(alt.learned && !alt.best);
        assert_eq!(alt.origin, Some(Origin::Incomplete));
        assert_eq!(r[3].next_hop, Some("fd00::2".parse().unwrap()));
    }

    #[test]
    fn rejects_garbage_attributes() {
        let bad = "1.2.3.0/24 unicast [x 1] * (100)\n\tBGP.med: lots\n";
        assert!(parse_routes(bad).is_err());
        assert!(parse_routes("notaprefix unicast\n").is_err());
        assert!(parse_routes("   unicast [x] * (1)\n").is_err());
    }

    #[test]
    fn parses_route_counts() {
        let t =
            "BIRD 2.0.12 ready.\nTotal: 112826 of 112830 routes for 112826 networks in 2 tables\n";
        assert_eq!(parse_count(t), Some(112_826));
        assert_eq!(
            parse_count("BIRD 2.0.12 ready.\n3 of 3 routes for 3 networks\n"),
            Some(3)
        );
        assert_eq!(parse_count("BIRD 2.0.12 ready.\nsyntax error\n"), None);
    }

    #[test]
    fn parses_protocol_states() {
        let text = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
device1    Device     ---        up     12:24:18.790
p_10_0_0_2 BGP        ---        up     12:24:19.648  Established
p_fd00__2  BGP        ---        start  12:24:19.648  Active        Socket: Connection refused
";
        let map = vec![
            ("p_10_0_0_2".to_string(), "10.0.0.2".parse().unwrap()),
            ("p_fd00__2".to_string(), "fd00::2".parse().unwrap()),
        ];
        let p = parse_protocols(text, &map);
        assert_eq!(p.len(), 2);
        assert!(p[0].established);
        assert!(!p[1].established);
        assert!(p[1].state.starts_with("Active"));
    }

    #[test]
    fn parses_bird_add_path() {
        let text = "BIRD 2.0.12 ready.
Name       Proto      Table      State  Since         Info
p_10_0_0_1 BGP        ---        up     15:10:00.000  Established
  BGP state:          Established
    Neighbor address: 10.0.0.1
    Local capabilities
      Multiprotocol
        AF announced: ipv4
      Route refresh
      ADD-PATH
        RX: ipv4
        TX: ipv4
      Enhanced refresh
    Neighbor capabilities
      Multiprotocol
        AF announced: ipv4
      ADD-PATH
        RX: ipv4
        TX:
      Enhanced refresh
    Session:          external AS4
  Channel ipv4
    State:          UP
";
        assert_eq!(
            parse_add_path(text),
            AddPathSeen {
                sends: true,
                receives: false
            }
        );
        assert_eq!(
            parse_add_path("no capabilities"),
            AddPathSeen {
                sends: false,
                receives: false
            }
        );
    }
}
