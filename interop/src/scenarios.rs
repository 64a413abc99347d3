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
//! - [`md5`]: TCP MD5 (RFC 2385) with the right and a wrong key.
//! - [`raw_malformed`]: framing and OPEN errors sent over raw TCP must be
//!   answered with the RFC 4271 section 6 NOTIFICATION.
//! - [`graceful_restart`]: the restarting speaker is killed (no
//!   NOTIFICATION); its helper must keep its routes while the session is
//!   down (RFC 4724 section 4.2), then take the restarted speaker's routes.
//! - [`real_table`]: the 2002 RIS table (~113k routes) replayed by ExaBGP
//!   through a speaker to BIRD, compared route by route.
//! - [`malformed_attribute`]: ExaBGP sends an UPDATE whose COMMUNITIES
//!   attribute has a bad length; RFC 7606 section 7.8 says treat-as-withdraw:
//!   the session stays up, the route is not used, later routes are.

use std::net::{Ipv4Addr, Ipv6Addr};

use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use crate::raw::{message, open_body, read_until_notification, send};
use crate::{
    binaries_for, run_test, wait_established, wait_for, wait_route, wait_until, Announce, Error,
    ExaBgp, Family, Kind, Neighbor, Node, Origin, Result, Segment, Speaker, SpeakerConfig, Test,
    TIMEOUT,
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
    check_received_via(receiver, sent, from, None, from_asn, ibgp)
}

/// [`check_received`] with the next hop `from`'s address of `next_hop_family`
/// when given (IPv4 routes over an IPv6 session with extended next hop,
/// RFC 8950), else of each prefix's own family.
pub fn check_received_via(
    receiver: &dyn Speaker,
    sent: &[Announce],
    from: &Node,
    next_hop_family: Option<Family>,
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
        let want_nh = from.addr(next_hop_family.unwrap_or(Family::of_net(&a.prefix)));
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

/// TCP MD5 (RFC 2385): `a` and `right` share a key and establish; `wrong`
/// uses another key towards `a`: a kernel counts an MD5 failure (TcpExt
/// TCPMD5Failure) and neither side shows that session Established.
pub fn md5(t: &Test, a: Kind, right: Kind, wrong: Kind) -> Result<()> {
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let nc = Node::new(t, &seg, "c", 3)?;
    let fam = Family::Ipv4;
    let key = Some("s3cret-key".to_string());
    let mut ca = SpeakerConfig::new(na.v4, 65001);
    for peer in [&nb, &nc] {
        let mut n = Neighbor::new(peer.addr(fam), na.addr(fam), 65002);
        n.password = key.clone();
        ca.neighbors.push(n);
    }
    let mut cb = SpeakerConfig::new(nb.v4, 65002);
    let mut n = Neighbor::new(na.addr(fam), nb.addr(fam), 65001);
    n.password = key.clone();
    cb.neighbors.push(n);
    let mut cc = SpeakerConfig::new(nc.v4, 65002);
    let mut n = Neighbor::new(na.addr(fam), nc.addr(fam), 65001);
    n.password = Some("wrong-key".to_string());
    cc.neighbors.push(n);

    let sa = a.start(t, &na, &format!("{}-a", a.name()), &ca)?;
    let sb = right.start(t, &nb, &format!("{}-b", right.name()), &cb)?;
    let sc = wrong.start(t, &nc, &format!("{}-c", wrong.name()), &cc)?;
    wait_established(&*sa, nb.addr(fam), TIMEOUT)?;
    wait_established(&*sb, na.addr(fam), TIMEOUT)?;
    let failures = |node: &Node| -> Result<u64> {
        Ok(node
            .ns
            .netstat_counter("TcpExt", "TCPMD5Failure")?
            .unwrap_or(0))
    };
    wait_for("a TCP MD5 failure counted between a and c", TIMEOUT, || {
        let n = failures(&na)? + failures(&nc)?;
        Ok(if n > 0 {
            Ok(())
        } else {
            Err("no MD5 failure yet".into())
        })
    })?;
    for (speaker, peer) in [(&sa, nc.addr(fam)), (&sc, na.addr(fam))] {
        let state = speaker.peers()?;
        if state.iter().any(|p| p.address == peer && p.established) {
            return Err(Error::Check(format!(
                "{} established with {peer} despite the wrong key: {state:?}",
                speaker.label()
            )));
        }
    }
    Ok(())
}

/// Raw TCP to a `kind` speaker configured with a passive session to us: a
/// header with a bad marker must be answered with NOTIFICATION 1/1
/// (Connection Not Synchronized, RFC 4271 section 6.1) and an OPEN with the
/// wrong AS with 2/2 (Bad Peer AS, section 6.2). Speakers may refuse
/// connections for a while after an error (BIRD's error wait), so each
/// probe is retried until the speaker answers with a NOTIFICATION.
pub fn raw_malformed(t: &Test, kind: Kind) -> Result<()> {
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let mut cfg = SpeakerConfig::new(nb.v4, 65002);
    let mut n = Neighbor::new(na.addr(Family::Ipv4), nb.addr(Family::Ipv4), 65001);
    n.passive = true;
    cfg.neighbors.push(n);
    let speaker = kind.start(t, &nb, &format!("{}-b", kind.name()), &cfg)?;
    let to = std::net::SocketAddr::new(nb.addr(Family::Ipv4), 179);
    let mut bad_marker = message(4, &[]);
    if let Some(b) = bad_marker.get_mut(3) {
        *b = 0;
    }
    let open = message(1, &open_body(65099, 90, na.v4));
    for (what, bytes, want) in [
        ("a bad marker", &bad_marker, (1u8, 1u8)),
        ("an OPEN with the wrong AS", &open, (2, 2)),
    ] {
        let got = wait_until(
            &format!("{} to answer {what}", speaker.label()),
            TIMEOUT,
            || {
                speaker.check_running()?;
                let mut s = na.ns.tcp_connect(to)?;
                send(&mut s, bytes)?;
                Ok(read_until_notification(&mut s)?.map(Some))
            },
        )?;
        if got != Some(want) {
            return Err(Error::Check(format!(
                "{} answered {what} with NOTIFICATION {got:?}, want {want:?}",
                speaker.label()
            )));
        }
    }
    speaker.check_running()
}

/// ExaBGP (node a, AS 65001) sends `kind` (node b, AS 65002) one route whose
/// COMMUNITIES attribute is 3 bytes long (not a multiple of 4), then a valid
/// route. RFC 7606 section 7.8: treat-as-withdraw. The valid route must
/// arrive (so the malformed UPDATE was processed before it), the malformed
/// prefix must be absent, and the session must still be Established with
/// the speaker running.
pub fn malformed_attribute(t: &Test, kind: Kind) -> Result<()> {
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let fam = Family::Ipv4;
    let mut ca = SpeakerConfig::new(na.v4, 65001);
    ca.neighbors
        .push(Neighbor::new(nb.addr(fam), na.addr(fam), 65002));
    let mut cb = SpeakerConfig::new(nb.v4, 65002);
    cb.neighbors
        .push(Neighbor::new(na.addr(fam), nb.addr(fam), 65001));
    let exa = ExaBgp::start(t, &na, "exabgp-a", &ca)?;
    let speaker = kind.start(t, &nb, &format!("{}-b", kind.name()), &cb)?;
    wait_established(&exa, nb.addr(fam), TIMEOUT)?;
    wait_established(&*speaker, na.addr(fam), TIMEOUT)?;
    let bad = IpNet::V4(Ipv4Net::new(Ipv4Addr::new(192, 0, 2, 0), 25).unwrap_or_default());
    let good = IpNet::V4(Ipv4Net::new(Ipv4Addr::new(192, 0, 2, 128), 25).unwrap_or_default());
    exa.command(&format!(
        "announce route {bad} next-hop self attribute [ 0x08 0xc0 0x010203 ]"
    ))?;
    exa.command(&format!("announce route {good} next-hop self"))?;
    wait_route(&*speaker, good, TIMEOUT)?;
    let routes = speaker.routes(fam)?;
    if routes.iter().any(|r| r.prefix == bad && r.learned) {
        return Err(Error::Check(format!(
            "{} kept {bad} despite its malformed COMMUNITIES",
            speaker.label()
        )));
    }
    speaker.check_running()?;
    let peers = speaker.peers()?;
    if !peers
        .iter()
        .any(|p| p.address == na.addr(fam) && p.established)
    {
        return Err(Error::Check(format!(
            "{} dropped the session over a malformed optional attribute: {peers:?}",
            speaker.label()
        )));
    }
    Ok(())
}

/// Graceful restart (RFC 4724): `helper` (node a, AS 65001) and `restarting`
/// (node b, AS 65002), both with graceful restart on, one IPv4 session;
/// `restarting` originates side 1's routes. `restarting` is killed with
/// SIGKILL (so no NOTIFICATION is sent). Once `helper` shows the session not
/// Established, it must still have every route (stale where its CLI shows
/// it, section 4.2). After `restarting` starts again with the same
/// configuration, the session re-establishes and the routes are current
/// (not stale) again.
pub fn graceful_restart(t: &Test, helper: Kind, restarting: Kind) -> Result<()> {
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let fam = Family::Ipv4;
    let sent: Vec<Announce> = announcements(1, false)
        .into_iter()
        .filter(|a| Family::of_net(&a.prefix) == fam)
        .collect();
    let mut ca = SpeakerConfig::new(na.v4, 65001);
    ca.graceful_restart = true;
    ca.neighbors
        .push(Neighbor::new(nb.addr(fam), na.addr(fam), 65002));
    let mut cb = SpeakerConfig::new(nb.v4, 65002);
    cb.graceful_restart = true;
    cb.neighbors
        .push(Neighbor::new(na.addr(fam), nb.addr(fam), 65001));
    cb.announce = sent.clone();
    let sa = helper.start(t, &na, &format!("{}-a", helper.name()), &ca)?;
    let mut sb = restarting.start(t, &nb, &format!("{}-b", restarting.name()), &cb)?;
    wait_established(&*sa, nb.addr(fam), TIMEOUT)?;
    wait_established(&*sb, na.addr(fam), TIMEOUT)?;
    for a in &sent {
        wait_route(&*sa, a.prefix, TIMEOUT)?;
    }

    sb.process_mut().signal(libc::SIGKILL)?;
    wait_for(
        &format!("{} to see the session down", sa.label()),
        TIMEOUT,
        || {
            let peers = sa.peers()?;
            Ok(
                if peers
                    .iter()
                    .any(|p| p.address == nb.addr(fam) && p.established)
                {
                    Err(format!("{peers:?}"))
                } else {
                    Ok(())
                },
            )
        },
    )?;
    let routes = sa.routes(fam)?;
    for a in &sent {
        match routes.iter().find(|r| r.prefix == a.prefix && r.learned) {
            None => {
                return Err(Error::Check(format!(
                    "{} dropped {} when {} died, despite graceful restart: {routes:?}",
                    sa.label(),
                    a.prefix,
                    sb.label()
                )))
            }
            Some(r) if sa.reports_stale() && !r.stale => {
                return Err(Error::Check(format!(
                    "{} kept {} but did not mark it stale: {r:?}",
                    sa.label(),
                    a.prefix
                )))
            }
            Some(_) => {}
        }
    }

    sb.process_mut().restart(t)?;
    wait_established(&*sa, nb.addr(fam), TIMEOUT)?;
    for a in &sent {
        wait_for(
            &format!("{} to refresh {}", sa.label(), a.prefix),
            TIMEOUT,
            || {
                let routes = sa.routes(fam)?;
                Ok(
                    match routes.iter().find(|r| r.prefix == a.prefix && r.learned) {
                        Some(r) if !r.stale => Ok(()),
                        other => Err(format!("{other:?}")),
                    },
                )
            },
        )?;
    }
    sa.check_running()
}

/// A real table through `middle`: ExaBGP (node a) replays the RIS 2002 table
/// ([`crate::table`]) to `middle` (node b) over eBGP, which passes it on over
/// eBGP to BIRD (node c). The three use 4-octet private ASNs (RFC 6793,
/// RFC 6996) that no 2002 path contains, so AS-path loop detection drops
/// nothing. BIRD must end up with every route, each with AS path
/// `B A <original path>`, the original ORIGIN and communities, and `middle`
/// as next hop. Returns the number of routes compared.
pub fn real_table(t: &Test, middle: Kind) -> Result<usize> {
    const AS_A: u32 = 4_200_000_001;
    const AS_B: u32 = 4_200_000_002;
    const AS_C: u32 = 4_200_000_003;
    let table = crate::table::read_bgpdump(&crate::table::ris_2002())?;
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let nc = Node::new(t, &seg, "c", 3)?;
    let fam = Family::Ipv4;
    let mut ca = SpeakerConfig::new(na.v4, AS_A);
    ca.neighbors
        .push(Neighbor::new(nb.addr(fam), na.addr(fam), AS_B));
    let mut cb = SpeakerConfig::new(nb.v4, AS_B);
    cb.neighbors
        .push(Neighbor::new(na.addr(fam), nb.addr(fam), AS_A));
    cb.neighbors
        .push(Neighbor::new(nc.addr(fam), nb.addr(fam), AS_C));
    let mut cc = SpeakerConfig::new(nc.v4, AS_C);
    cc.neighbors
        .push(Neighbor::new(nb.addr(fam), nc.addr(fam), AS_B));
    let bird = crate::Bird::start(t, &nc, "bird-c", &cc)?;
    let mid = middle.start(t, &nb, &format!("{}-b", middle.name()), &cb)?;
    let statements: Vec<String> = table
        .iter()
        .map(|r| crate::table::exabgp_statement(r, &[AS_A]))
        .collect();
    let exa = ExaBgp::start_with_static(t, &na, "exabgp-a", &ca, &statements)?;
    wait_established(&*mid, na.addr(fam), TIMEOUT)?;
    wait_established(&bird, nb.addr(fam), TIMEOUT)?;
    exa.check_running()?;
    let protocol = crate::bird::protocol_name(nb.addr(fam));
    let want = u64::try_from(table.len()).unwrap_or(u64::MAX);
    // A bound for a full table on a loaded 2-core machine, not a speed check.
    let bound = std::time::Duration::from_secs(900);
    wait_for(&format!("BIRD to hold all {want} routes"), bound, || {
        mid.check_running()?;
        let n = bird.count_routes(Some(&protocol))?;
        Ok(if n == want {
            Ok(())
        } else {
            Err(format!("{n} of {want} routes"))
        })
    })?;
    let got = bird.routes(fam)?;
    let by_prefix: std::collections::HashMap<IpNet, &crate::RouteView> = got
        .iter()
        .filter(|r| r.learned)
        .map(|r| (r.prefix, r))
        .collect();
    let mut problems = Vec::new();
    for r in &table {
        let mut want_path = vec![AS_B, AS_A];
        want_path.extend_from_slice(&r.as_path);
        match by_prefix.get(&r.prefix) {
            None => problems.push(format!("{} missing", r.prefix)),
            Some(v) => {
                if v.as_path != want_path
                    || v.origin != Some(r.origin)
                    || v.communities != r.communities
                    || v.next_hop != Some(nb.addr(fam))
                {
                    problems.push(format!(
                        "{}: got path {:?} origin {:?} communities {:?} next hop {:?}; \
                         want path {want_path:?} origin {:?} communities {:?}",
                        r.prefix,
                        v.as_path,
                        v.origin,
                        v.communities,
                        v.next_hop,
                        r.origin,
                        r.communities
                    ));
                }
            }
        }
    }
    if !problems.is_empty() {
        let n = problems.len();
        problems.truncate(10);
        return Err(Error::Check(format!(
            "{n} of {} routes differ at BIRD after {}; first ones:\n{}",
            table.len(),
            mid.label(),
            problems.join("\n")
        )));
    }
    mid.check_running()?;
    Ok(table.len())
}
