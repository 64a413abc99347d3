//! ADD-PATH (RFC 7911) between bgpd and a real peer:
//!
//! - [`add_path`]: both ways with BIRD 2, GoBGP or FRR. Two upstream BIRDs
//!   announce the same prefix to both bgpd and the peer; bgpd and the peer
//!   send each other every path they have over an ADD-PATH session. bgpd's
//!   Loc-RIB must hold both of the peer's paths, each with its own path
//!   identifier, and the peer's own CLI both of bgpd's; each side's view of
//!   the negotiated capability is checked too ([`Speaker::add_path`]: bgpd's
//!   `show_peer` capabilities, `birdc show protocols all`, `gobgp neighbor`,
//!   FRR's `show bgp neighbors json`).
//! - [`add_path_from_exabgp`]: ExaBGP sends two paths with path ids it
//!   chooses (1 and 2); bgpd must show exactly those ids.

use std::net::IpAddr;

use serde_json::Value;

use super::ipv4_net;
use crate::bgpd::{is_best, peer_name};
use crate::{
    wait_established, wait_for, AddPath, AddPathSeen, Announce, Bgpd, Bird, Error, ExaBgp, Family,
    Kind, Neighbor, Node, Result, Segment, Speaker, SpeakerConfig, Test, TIMEOUT,
};

/// ADD-PATH both ways between bgpd (node b, AS 65010) and `kind` (node p,
/// AS 65020), IPv4. Two upstream BIRDs (u1 AS 65001, u2 AS 65002) announce
/// 192.0.2.0/24 to both. bgpd and the peer announce and accept ADD-PATH in
/// both directions on their session, so:
/// - bgpd's Loc-RIB holds two paths from the peer, AS paths `65020 65001`
///   and `65020 65002`, each with a path identifier, the two different;
/// - the peer's CLI shows two paths from bgpd, `65010 65001` and
///   `65010 65002`;
/// - both bgpd's `show_peer` and the peer's CLI say ADD-PATH was negotiated
///   in both directions.
pub fn add_path(t: &Test, kind: Kind) -> Result<()> {
    const AS_B: u32 = 65010;
    const AS_P: u32 = 65020;
    const UPSTREAMS: [u32; 2] = [65001, 65002];
    let fam = Family::Ipv4;
    let prefix = ipv4_net([192, 0, 2, 0], 24);
    let seg = Segment::new(t)?;
    let nb = Node::new(t, &seg, "b", 1)?;
    let np = Node::new(t, &seg, "p", 2)?;
    let nu = [Node::new(t, &seg, "u1", 3)?, Node::new(t, &seg, "u2", 4)?];

    let mut cb = SpeakerConfig::new(nb.v4, AS_B);
    let mut cp = SpeakerConfig::new(np.v4, AS_P);
    let mut to_p = Neighbor::new(np.addr(fam), nb.addr(fam), AS_P);
    to_p.add_path = AddPath::Both;
    cb.neighbors.push(to_p);
    let mut to_b = Neighbor::new(nb.addr(fam), np.addr(fam), AS_B);
    to_b.add_path = AddPath::Both;
    cp.neighbors.push(to_b);
    for (u, asn) in nu.iter().zip(UPSTREAMS) {
        cb.neighbors
            .push(Neighbor::new(u.addr(fam), nb.addr(fam), asn));
        cp.neighbors
            .push(Neighbor::new(u.addr(fam), np.addr(fam), asn));
    }
    let mut upstreams = Vec::new();
    for (i, (u, asn)) in nu.iter().zip(UPSTREAMS).enumerate() {
        let mut cu = SpeakerConfig::new(u.v4, asn);
        cu.neighbors
            .push(Neighbor::new(nb.addr(fam), u.addr(fam), AS_B));
        cu.neighbors
            .push(Neighbor::new(np.addr(fam), u.addr(fam), AS_P));
        cu.announce.push(Announce::new(prefix));
        upstreams.push(Bird::start(t, u, &format!("bird-u{}", i + 1), &cu)?);
    }
    let bgpd = Bgpd::start(t, &nb, "bgpd-b", &cb)?;
    let peer = kind.start(t, &np, &format!("{}-p", kind.name()), &cp)?;
    let ps = &*peer;
    for (u, up) in nu.iter().zip(&upstreams) {
        wait_established(&bgpd, u.addr(fam), TIMEOUT)?;
        wait_established(ps, u.addr(fam), TIMEOUT)?;
        wait_established(up, nb.addr(fam), TIMEOUT)?;
    }
    wait_established(&bgpd, np.addr(fam), TIMEOUT)?;
    wait_established(ps, nb.addr(fam), TIMEOUT)?;

    // Capabilities, each side's own view.
    let both = AddPathSeen {
        sends: true,
        receives: true,
    };
    check_add_path(&bgpd, np.addr(fam), ps.label(), &both)?;
    check_add_path(ps, nb.addr(fam), "bgpd", &both)?;

    // bgpd receives both of the peer's paths, each with its path id.
    let name = peer_name(np.addr(fam));
    let want_at_b: Vec<Vec<u32>> = UPSTREAMS.iter().map(|u| vec![AS_P, *u]).collect();
    let mut ids: Vec<(Vec<u32>, u64)> = Vec::new();
    wait_for(
        &format!("bgpd to hold both paths of {prefix} from {}", ps.label()),
        TIMEOUT,
        || {
            bgpd.check_running()?;
            // What an operator sees: `bgpctl --json show routes PREFIX --peer NAME`.
            let entries = bgpd.bgpctl_routes(prefix, np.addr(fam))?;
            ids.clear();
            for e in &entries {
                if e.get("peer").and_then(Value::as_str) != Some(name.as_str()) {
                    continue;
                }
                let path: Vec<u32> = e
                    .get("as_path")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .split_whitespace()
                    .filter_map(|a| a.parse().ok())
                    .collect();
                if let Some(id) = e.get("path_id").and_then(Value::as_u64) {
                    ids.push((path, id));
                }
            }
            let all = want_at_b.iter().all(|w| ids.iter().any(|(p, _)| p == w));
            Ok(if all {
                Ok(())
            } else {
                Err(format!(
                    "paths from {name} with a path id: {ids:?}; all entries: {}",
                    Value::from(entries)
                ))
            })
        },
    )?;
    let chosen: Vec<u64> = want_at_b
        .iter()
        .filter_map(|w| ids.iter().find(|(p, _)| p == w).map(|(_, id)| *id))
        .collect();
    if chosen.len() != 2 || chosen.first() == chosen.get(1) {
        return Err(Error::Check(format!(
            "bgpd's two paths of {prefix} from {} do not have distinct path ids: {ids:?}",
            ps.label()
        )));
    }

    // Paths the peer passes back with bgpd's own AS in them (the peer sends
    // every path it has) must be ineligible (RFC 4271 section 9.1.2).
    let entries = bgpd.route_entries("loc", prefix)?;
    for e in &entries {
        let path = e.get("as_path").and_then(Value::as_str).unwrap_or_default();
        let looped = path.split_whitespace().any(|a| a == AS_B.to_string());
        let reason = e.get("not_best_reason").and_then(Value::as_str);
        if looped && (is_best(e) || reason != Some("routing loop")) {
            return Err(Error::Check(format!(
                "bgpd accepts a path of {prefix} with its own AS {AS_B}: {e}"
            )));
        }
    }
    crate::say(&format!(
        "add_path: bgpd holds {prefix} from {} as (AS path, path id) {ids:?}",
        ps.label()
    ));

    // The peer receives both of bgpd's paths.
    let want_at_p: Vec<Vec<u32>> = UPSTREAMS.iter().map(|u| vec![AS_B, *u]).collect();
    let mut shown = Vec::new();
    wait_for(
        &format!("{} to hold both of bgpd's paths of {prefix}", ps.label()),
        TIMEOUT,
        || {
            ps.check_running()?;
            let routes = ps.routes(fam)?;
            let paths: Vec<&Vec<u32>> = routes
                .iter()
                .filter(|r| r.prefix == prefix && r.learned)
                .map(|r| &r.as_path)
                .collect();
            Ok(if want_at_p.iter().all(|w| paths.contains(&w)) {
                shown = paths.into_iter().cloned().collect();
                Ok(())
            } else {
                Err(format!("paths of {prefix}: {paths:?}"))
            })
        },
    )?;
    crate::say(&format!(
        "add_path: {} holds {prefix} with AS paths {shown:?}",
        ps.label()
    ));
    bgpd.check_running()
}

/// ADD-PATH with path identifiers chosen by the sender: ExaBGP (node a, AS
/// 65020, ADD-PATH send) announces 192.0.2.0/24 twice, with path ids 1 and
/// 2 and MEDs 10 and 20, to bgpd (node b, AS 65010, ADD-PATH receive).
/// bgpd must show ADD-PATH negotiated for receiving only, and both paths
/// with exactly those ids and MEDs (`bgpctl --json show routes`), the MED 10
/// one best (RFC 4271 section 9.1.2.2 c, same neighbor AS).
pub fn add_path_from_exabgp(t: &Test) -> Result<()> {
    const AS_B: u32 = 65010;
    const AS_A: u32 = 65020;
    let fam = Family::Ipv4;
    let prefix = ipv4_net([192, 0, 2, 0], 24);
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let mut cb = SpeakerConfig::new(nb.v4, AS_B);
    let mut n = Neighbor::new(na.addr(fam), nb.addr(fam), AS_A);
    n.add_path = AddPath::Receive;
    cb.neighbors.push(n);
    let mut ca = SpeakerConfig::new(na.v4, AS_A);
    let mut n = Neighbor::new(nb.addr(fam), na.addr(fam), AS_B);
    n.add_path = AddPath::Send;
    ca.neighbors.push(n);
    let want: [(u64, u64); 2] = [(1, 10), (2, 20)];
    let statements: Vec<String> = want
        .iter()
        .map(|(id, med)| {
            format!("route {prefix} next-hop self origin igp med {med} path-information 0.0.0.{id}")
        })
        .collect();
    let bgpd = Bgpd::start(t, &nb, "bgpd-b", &cb)?;
    let exa = ExaBgp::start_with_static(t, &na, "exabgp-a", &ca, &statements)?;
    wait_established(&exa, nb.addr(fam), TIMEOUT)?;
    wait_established(&bgpd, na.addr(fam), TIMEOUT)?;
    let receive_only = AddPathSeen {
        sends: false,
        receives: true,
    };
    check_add_path(&bgpd, na.addr(fam), "exabgp-a", &receive_only)?;
    let mut got: Vec<(u64, u64, bool)> = Vec::new();
    wait_for(
        &format!("bgpd to hold {prefix} with path ids 1 and 2"),
        TIMEOUT,
        || {
            exa.check_running()?;
            let entries = bgpd.bgpctl_routes(prefix, na.addr(fam))?;
            got = entries
                .iter()
                .filter_map(|e| {
                    Some((
                        e.get("path_id")?.as_u64()?,
                        e.get("med")?.as_u64()?,
                        is_best(e),
                    ))
                })
                .collect();
            got.sort_unstable();
            let ids: Vec<(u64, u64)> = got.iter().map(|(i, m, _)| (*i, *m)).collect();
            Ok(if ids == want {
                Ok(())
            } else {
                Err(format!(
                    "(path id, MED, best): {got:?}; entries: {}",
                    Value::from(entries)
                ))
            })
        },
    )?;
    if got.iter().map(|(_, _, best)| *best).collect::<Vec<_>>() != [true, false] {
        return Err(Error::Check(format!(
            "bgpd should prefer the MED 10 path of {prefix}: (path id, MED, best) {got:?}"
        )));
    }
    crate::say(&format!(
        "add_path_from_exabgp: bgpd holds {prefix} as (path id, MED, best) {got:?}"
    ));
    bgpd.check_running()
}

/// What `speaker`'s CLI says about ADD-PATH on its session to `neighbor`
/// (labelled `neighbor_label`) must be `want`.
fn check_add_path(
    speaker: &dyn Speaker,
    neighbor: IpAddr,
    neighbor_label: &str,
    want: &AddPathSeen,
) -> Result<()> {
    let Some((seen, text)) = speaker.add_path(neighbor)? else {
        return Err(Error::Invalid(format!(
            "{}'s CLI does not show ADD-PATH",
            speaker.label()
        )));
    };
    if seen != *want {
        return Err(Error::Check(format!(
            "{} shows ADD-PATH with {neighbor_label} as {seen:?}, want {want:?}; CLI:\n{text}",
            speaker.label()
        )));
    }
    Ok(())
}
