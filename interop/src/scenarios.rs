//! Reusable test scenarios: the bodies of the interop tests, written once
//! for any [`Kind`] so that bgpd tests are one line each
//! (`pair_test("bgpd_bird_ebgp", Kind::Bgpd, Kind::Bird, false)`).
//!
//! - [`exchange`]: two speakers, one IPv4 and one IPv6 session, each side
//!   originating routes with attributes; each receiver's own CLI must show the
//!   other's routes with AS path, next hop, origin, MED, communities, large
//!   communities (and LOCAL_PREF over iBGP) as BGP prescribes.
//! - [`reflection`]: one speaker reflects between two iBGP clients;
//!   ORIGINATOR_ID and CLUSTER_LIST are checked too (RFC 4456 section 8).

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::{
    binaries_for, run_test, wait_established, wait_route, Announce, Error, Family, Kind, Neighbor,
    Node, Origin, Result, Segment, Speaker, SpeakerConfig, Test, TIMEOUT,
};

/// What one side of a pair originates.
///
/// Side 0: 198.51.100.0/24 and 2001:db8:a::/48; side 1: 203.0.113.0/24 and
/// 2001:db8:b::/48; each with MED, two communities, a large community and,
/// over iBGP, LOCAL_PREF.
pub fn announcements(side: u8, ibgp: bool) -> Vec<Announce> {
    let (v4, v6, asn) = match side {
        0 => (
            IpNet::V4(Ipv4Net::new(Ipv4Addr::new(198, 51, 100, 0), 24).unwrap_or_default()),
            IpNet::V6(
                Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, 0xa, 0, 0, 0, 0, 0), 48)
                    .unwrap_or_default(),
            ),
            65001u16,
        ),
        _ => (
            IpNet::V4(Ipv4Net::new(Ipv4Addr::new(203, 0, 113, 0), 24).unwrap_or_default()),
            IpNet::V6(
                Ipv6Net::new(Ipv6Addr::new(0x2001, 0xdb8, 0xb, 0, 0, 0, 0, 0), 48)
                    .unwrap_or_default(),
            ),
            65002u16,
        ),
    };
    [v4, v6]
        .into_iter()
        .map(|p| {
            let mut a = Announce::new(p);
            a.med = Some(10 + u32::from(side));
            a.communities = vec![(asn, 100), (asn, 7)];
            a.large_communities = vec![(u32::from(asn), 1, u32::from(side))];
            if ibgp {
                a.local_pref = Some(150 + u32::from(side));
            }
            a
        })
        .collect()
}

/// A speaker on `me` with one IPv4 and one IPv6 session to `peer`.
pub fn speaker_config(
    me: &Node,
    peer: &Node,
    asn: u32,
    peer_asn: u32,
    announce: Vec<Announce>,
) -> SpeakerConfig {
    let mut cfg = SpeakerConfig::new(me.v4, asn);
    for fam in [Family::Ipv4, Family::Ipv6] {
        cfg.neighbors
            .push(Neighbor::new(peer.addr(fam), me.addr(fam), peer_asn));
    }
    cfg.announce = announce;
    cfg
}

/// Checks that `receiver` learned every route of `sent` from `from` with the
/// attributes BGP says it must carry.
pub fn check_received(
    receiver: &dyn Speaker,
    sent: &[Announce],
    from: &Node,
    from_asn: u32,
    ibgp: bool,
) -> Result<()> {
    for a in sent {
        let r = wait_route(receiver, a.prefix, TIMEOUT)?;
        let mut problems = Vec::new();
        let want_path: Vec<u32> = if ibgp { vec![] } else { vec![from_asn] };
        if r.as_path != want_path {
            problems.push(format!("AS path {:?}, want {want_path:?}", r.as_path));
        }
        let want_nh = from.addr(Family::of_net(&a.prefix));
        if r.next_hop != Some(want_nh) {
            problems.push(format!("next hop {:?}, want {want_nh}", r.next_hop));
        }
        if r.origin != Some(Origin::Igp) {
            problems.push(format!("origin {:?}, want IGP", r.origin));
        }
        if r.med != a.med {
            problems.push(format!("MED {:?}, want {:?}", r.med, a.med));
        }
        if ibgp && r.local_pref != a.local_pref {
            problems.push(format!(
                "LOCAL_PREF {:?}, want {:?}",
                r.local_pref, a.local_pref
            ));
        }
        let mut want_c: Vec<String> = a.communities.iter().map(|c| crate::community(*c)).collect();
        want_c.sort();
        if r.communities != want_c {
            problems.push(format!("communities {:?}, want {want_c:?}", r.communities));
        }
        let mut want_l: Vec<String> = a
            .large_communities
            .iter()
            .map(|c| crate::large_community(*c))
            .collect();
        want_l.sort();
        if r.large_communities != want_l {
            problems.push(format!(
                "large communities {:?}, want {want_l:?}",
                r.large_communities
            ));
        }
        if !problems.is_empty() {
            return Err(Error::Check(format!(
                "{} got {} with wrong attributes: {}; full view: {r:?}",
                receiver.label(),
                a.prefix,
                problems.join("; ")
            )));
        }
    }
    Ok(())
}

/// The template: `a` and `b` exchange IPv4 and IPv6 routes over iBGP or eBGP.
pub fn exchange(t: &Test, a: Kind, b: Kind, ibgp: bool) -> Result<()> {
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let (asn_a, asn_b) = if ibgp { (65001, 65001) } else { (65001, 65002) };
    let (ann_a, ann_b) = (announcements(0, ibgp), announcements(1, ibgp));
    let cfg_a = speaker_config(&na, &nb, asn_a, asn_b, ann_a.clone());
    let cfg_b = speaker_config(&nb, &na, asn_b, asn_a, ann_b.clone());
    let sa = a.start(t, &na, &format!("{}-a", a.name()), &cfg_a)?;
    let sb = b.start(t, &nb, &format!("{}-b", b.name()), &cfg_b)?;
    for fam in [Family::Ipv4, Family::Ipv6] {
        wait_established(&*sa, nb.addr(fam), TIMEOUT)?;
        wait_established(&*sb, na.addr(fam), TIMEOUT)?;
    }
    check_received(&*sb, &ann_a, &na, asn_a, ibgp)?;
    check_received(&*sa, &ann_b, &nb, asn_b, ibgp)?;
    Ok(())
}

pub fn pair_test(name: &str, a: Kind, b: Kind, ibgp: bool) {
    run_test(name, &binaries_for(&[a, b]), |t| exchange(t, a, b, ibgp));
}

/// Route reflection template: `rr` reflects between two iBGP clients of other
/// kinds. Each client must see the other's routes with the next hop, AS path
/// and LOCAL_PREF unchanged, ORIGINATOR_ID = the originating client's router
/// id and CLUSTER_LIST = [the reflector's cluster id] (RFC 4456 section 8).
pub fn reflection(t: &Test, rr: Kind, clients: [Kind; 2]) -> Result<()> {
    let seg = Segment::new(t)?;
    let nr = Node::new(t, &seg, "rr", 1)?;
    let nc = [Node::new(t, &seg, "c1", 2)?, Node::new(t, &seg, "c2", 3)?];
    let cluster = Ipv4Addr::new(192, 0, 2, 99);
    let asn = 65001;
    let mut cfg_rr = SpeakerConfig::new(nr.v4, asn);
    cfg_rr.cluster_id = Some(cluster);
    for c in &nc {
        for fam in [Family::Ipv4, Family::Ipv6] {
            let mut n = Neighbor::new(c.addr(fam), nr.addr(fam), asn);
            n.rr_client = true;
            cfg_rr.neighbors.push(n);
        }
    }
    let speaker_rr = rr.start(t, &nr, &format!("{}-rr", rr.name()), &cfg_rr)?;
    let mut speakers = Vec::new();
    let mut sent = Vec::new();
    for (i, (kind, node)) in clients.iter().zip(&nc).enumerate() {
        let side = u8::try_from(i).unwrap_or(0);
        let ann = announcements(side, true);
        let cfg = speaker_config(node, &nr, asn, asn, ann.clone());
        speakers.push(kind.start(t, node, &format!("{}-c{}", kind.name(), i + 1), &cfg)?);
        sent.push(ann);
    }
    for (c, s) in nc.iter().zip(&speakers) {
        for fam in [Family::Ipv4, Family::Ipv6] {
            wait_established(&*speaker_rr, c.addr(fam), TIMEOUT)?;
            wait_established(&**s, nr.addr(fam), TIMEOUT)?;
        }
    }
    for (from, to) in [(0usize, 1usize), (1, 0)] {
        check_received(&*speakers[to], &sent[from], &nc[from], asn, true)?;
        for a in &sent[from] {
            if !speakers[to].reports_reflection_attributes() {
                continue;
            }
            let r = wait_route(&*speakers[to], a.prefix, TIMEOUT)?;
            if r.originator_id != Some(nc[from].v4) || r.cluster_list != [cluster] {
                return Err(Error::Check(format!(
                    "{} got {} with ORIGINATOR_ID {:?} (want {}) and CLUSTER_LIST {:?} (want [{cluster}])",
                    speakers[to].label(),
                    a.prefix,
                    r.originator_id,
                    nc[from].v4,
                    r.cluster_list
                )));
            }
        }
    }
    Ok(())
}
