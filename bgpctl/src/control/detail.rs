//! `bgpctl show route PREFIX|ADDRESS`: every path of a prefix in detail, as BIRD's `show
//! route all` lays it out: one line per path (prefix, where it came from, best or why it
//! lost), then one indented line per attribute, named as BIRD names them (`BGP.as_path`,
//! `BGP.community`, ...), so an operator coming from BIRD reads it at once.

use bgp_control::RouteEntry;

/// The detail view of `routes` (the paths of one prefix, or of several).
pub fn routes(routes: &[RouteEntry]) -> String {
    if routes.is_empty() {
        return "no routes\n".into();
    }
    let mut out = String::new();
    for r in routes {
        path(&mut out, r);
    }
    out
}

fn path(out: &mut String, r: &RouteEntry) {
    let mut head = format!("{} from {}", r.prefix, r.peer);
    if let Some(id) = r.path_id {
        head.push_str(&format!(" path-id {id}"));
    }
    if r.best {
        head.push_str(" * best");
    }
    // The best path heads its multipath set: only the other members say so.
    if r.multipath && !r.best {
        head.push_str(" = multipath");
    }
    if r.stale {
        head.push_str(" (stale)");
    }
    if let Some(why) = &r.not_best_reason {
        head.push_str(&format!(" (lost: {why})"));
    }
    out.push_str(&head);
    out.push('\n');
    let mut kv = |k: &str, v: String| out.push_str(&format!("\t{k:<22}{v}\n"));
    match (&r.next_hop, &r.interface) {
        (Some(nh), Some(dev)) => kv("via:", format!("{nh} dev {dev}")),
        (Some(nh), None) => kv("via:", nh.clone()),
        (None, Some(dev)) => kv("dev:", dev.clone()),
        (None, None) => kv("via:", "-".into()),
    }
    if let Some(age) = r.age_secs {
        kv("age:", crate::control::duration(age));
    }
    if !r.origin.is_empty() {
        kv("BGP.origin:", r.origin.clone());
    }
    let segments = if r.as_path_segments.is_empty() {
        r.as_path.clone()
    } else {
        r.as_path_segments
            .iter()
            .map(|s| {
                let asns: Vec<String> = s.asns.iter().map(u32::to_string).collect();
                match s.kind.as_str() {
                    "sequence" => asns.join(" "),
                    "set" => format!("{{{}}}", asns.join(",")),
                    "confed_sequence" => format!("({})", asns.join(" ")),
                    _ => format!("[{}]", asns.join(",")),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    kv("BGP.as_path:", segments);
    if let Some(nh) = &r.next_hop {
        kv("BGP.next_hop:", nh.clone());
    }
    if let Some(m) = r.med {
        kv("BGP.med:", m.to_string());
    }
    if let Some(lp) = r.local_pref {
        kv("BGP.local_pref:", lp.to_string());
    }
    if r.atomic_aggregate {
        kv("BGP.atomic_aggr:", String::new());
    }
    if let Some(a) = &r.aggregator {
        kv("BGP.aggregator:", a.clone());
    }
    if !r.communities.is_empty() {
        kv("BGP.community:", r.communities.join(" "));
    }
    if let Some(o) = &r.originator_id {
        kv("BGP.originator_id:", o.clone());
    }
    if !r.cluster_list.is_empty() {
        kv("BGP.cluster_list:", r.cluster_list.join(" "));
    }
    if !r.extended_communities.is_empty() {
        kv("BGP.ext_community:", r.extended_communities.join(" "));
    }
    if !r.large_communities.is_empty() {
        kv("BGP.large_community:", r.large_communities.join(" "));
    }
    if let Some(otc) = r.otc {
        kv("BGP.otc:", otc.to_string());
    }
    for u in &r.unknown_attributes {
        kv("BGP.unknown:", u.clone());
    }
}

#[cfg(test)]
mod tests {
    use bgp_control::AsPathSegment;

    use super::*;

    #[test]
    fn every_attribute_on_its_own_line() {
        let best = RouteEntry {
            prefix: "10.0.0.0/24".into(),
            path_id: Some(2),
            peer: "b".into(),
            next_hop: Some("192.0.2.1".into()),
            as_path: "64513 {64514,64515}".into(),
            as_path_segments: vec![
                AsPathSegment {
                    kind: "sequence".into(),
                    asns: vec![64513],
                },
                AsPathSegment {
                    kind: "set".into(),
                    asns: vec![64514, 64515],
                },
            ],
            origin: "IGP".into(),
            local_pref: Some(100),
            med: Some(5),
            communities: vec!["65000:1".into()],
            large_communities: vec!["64512:1:2".into()],
            best: true,
            multipath: false,
            not_best_reason: None,
            age_secs: None,
            stale: false,
            originator_id: None,
            cluster_list: Vec::new(),
            interface: None,
            extended_communities: vec!["(rt, 64512, 100)".into()],
            atomic_aggregate: false,
            aggregator: None,
            otc: None,
            unknown_attributes: Vec::new(),
        };
        let mut loser = best.clone();
        loser.best = false;
        loser.path_id = None;
        loser.not_best_reason = Some("higher router id".into());
        let t = routes(&[best, loser]);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines[0], "10.0.0.0/24 from b path-id 2 * best");
        assert!(
            lines.contains(&"\tBGP.as_path:          64513 {64514,64515}"),
            "{t}"
        );
        assert!(
            lines.contains(&"\tBGP.ext_community:    (rt, 64512, 100)"),
            "{t}"
        );
        assert!(lines.contains(&"\tBGP.large_community:  64512:1:2"), "{t}");
        assert!(lines.contains(&"\tBGP.community:        65000:1"), "{t}");
        assert!(
            lines.contains(&"10.0.0.0/24 from b (lost: higher router id)"),
            "{t}"
        );
    }
}
