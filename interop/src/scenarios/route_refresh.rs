//! Route refresh (RFC 2918) between bgpd and a real peer:
//!
//! - [`route_refresh`]: bgpd's import policy first rejects one of the peer's
//!   prefixes (it stays in the Adj-RIB-In, not in the Loc-RIB); a reloaded
//!   policy accepting it makes it appear without resetting the session
//!   (RFC 2918 section 1: from stored routes or by ROUTE-REFRESH). Then the
//!   peer asks bgpd for a refresh with its own CLI where it can
//!   ([`Speaker::request_refresh`]: `birdc reload in`, `clear bgp X soft
//!   in`): bgpd must count the ROUTE-REFRESH, send its routes again (UPDATE
//!   counter grows), and the peer must still hold them with their attributes
//!   once a later UPDATE has arrived (so an RFC 7313 End-of-RIB-Refresh did
//!   not purge them). Last, bgpd sends a ROUTE-REFRESH (a `next_hop`
//!   setting change) and the peer must answer it.
//! - [`route_refresh_from_exabgp`]: ExaBGP's API sends the ROUTE-REFRESH
//!   (for the peer-sent direction GoBGP's CLI cannot exercise) and must get
//!   bgpd's routes again.

use std::net::IpAddr;

use serde_json::Value;

use super::{announcements, check_received, ipv4_net, of_family};
use crate::bgpd::{config, config_with, is_best, peer_name, Options};
use crate::wait::wait_above;
use crate::{
    wait_established, wait_for, wait_route, Announce, Bgpd, Error, ExaBgp, Family, Kind, Neighbor,
    Node, Result, Segment, Speaker, SpeakerConfig, Test, TIMEOUT,
};

/// Route refresh between bgpd (node b, AS 65010) and `kind` (node p, AS
/// 65020), IPv4. The peer announces side 1's IPv4 route (203.0.113.0/24) and
/// 192.0.2.0/24; bgpd announces side 0's (198.51.100.0/24) and starts with
/// an import policy rejecting 192.0.2.0/24.
///
/// 1. bgpd has 203.0.113.0/24, and 192.0.2.0/24 only in its Adj-RIB-In.
/// 2. A reload whose import policy accepts everything makes 192.0.2.0/24
///    appear in the Loc-RIB, with the session never reset
///    (`established_transitions` unchanged).
/// 3. The peer's CLI asks bgpd for a refresh (where it can, see
///    [`Speaker::request_refresh`]): bgpd counts a ROUTE-REFRESH received and
///    sends UPDATEs again; a route bgpd announces afterwards
///    (198.51.100.128/25, by reload) reaches the peer, and then the peer
///    still holds 198.51.100.0/24 with its attributes.
/// 4. bgpd asks the peer for a refresh (reload with `next_hop = "self"`,
///    which for eBGP changes nothing sent): bgpd receives UPDATEs again,
///    the peer counts the ROUTE-REFRESH where its CLI shows counters (GoBGP,
///    FRR), and bgpd holds all of the peer's routes; the session was never
///    reset.
pub fn route_refresh(t: &Test, kind: Kind) -> Result<()> {
    const AS_B: u32 = 65010;
    const AS_P: u32 = 65020;
    let fam = Family::Ipv4;
    let rejected = ipv4_net([192, 0, 2, 0], 24);
    let later = ipv4_net([198, 51, 100, 128], 25);
    let seg = Segment::new(t)?;
    let nb = Node::new(t, &seg, "b", 1)?;
    let np = Node::new(t, &seg, "p", 2)?;
    let ann_b = of_family(&announcements(0, false), fam);
    let mut ann_p = of_family(&announcements(1, false), fam);
    // A MED of its own: FRR sends MED 0 for a `network` without route-map.
    let mut r = Announce::new(rejected);
    r.med = Some(5);
    ann_p.push(r);
    let mut cb = SpeakerConfig::new(nb.v4, AS_B);
    cb.neighbors
        .push(Neighbor::new(np.addr(fam), nb.addr(fam), AS_P));
    cb.announce = ann_b.clone();
    let mut cp = SpeakerConfig::new(np.v4, AS_P);
    cp.neighbors
        .push(Neighbor::new(nb.addr(fam), np.addr(fam), AS_B));
    cp.announce = ann_p.clone();

    let socket = t.subdir("bgpd-b")?.join("bgpd.sock");
    let bgpd = Bgpd::start_with_config(
        t,
        &nb,
        "bgpd-b",
        &config_with(
            &cb,
            &socket,
            &Options {
                import_reject: vec![rejected],
                ..Options::default()
            },
        ),
        &socket,
    )?;
    let peer = kind.start(t, &np, &format!("{}-p", kind.name()), &cp)?;
    let ps = &*peer;
    wait_established(&bgpd, np.addr(fam), TIMEOUT)?;
    wait_established(ps, nb.addr(fam), TIMEOUT)?;
    let accepted: Vec<Announce> = ann_p
        .iter()
        .filter(|a| a.prefix != rejected)
        .cloned()
        .collect();
    check_received(&bgpd, &accepted, &np, AS_P, false)?;
    check_received(ps, &ann_b, &nb, AS_B, false)?;

    // 1. Rejected by import policy: in the Adj-RIB-In, not in the Loc-RIB.
    wait_for(
        &format!("bgpd's Adj-RIB-In to hold {rejected}"),
        TIMEOUT,
        || {
            let n = bgpd.route_entries("in", rejected)?.len();
            Ok(if n > 0 {
                Ok(())
            } else {
                Err("absent".to_string())
            })
        },
    )?;
    // bgpd's Loc-RIB view lists rejected paths too, marked as such.
    let loc = bgpd.route_entries("loc", rejected)?;
    if loc.iter().any(is_best) {
        return Err(Error::Check(format!(
            "bgpd's import policy rejects {rejected}, yet its Loc-RIB uses it: {}",
            Value::from(loc)
        )));
    }

    // 2. The policy changes: the route is taken without a session reset.
    let transitions = bgpd.peer_counter(np.addr(fam), "established_transitions")?;
    bgpd.reconfigure(&config(&cb, &socket))?;
    wait_for(
        &format!("bgpd to use {rejected} after the policy change"),
        TIMEOUT,
        || {
            bgpd.check_running()?;
            let loc = bgpd.route_entries("loc", rejected)?;
            let want = Some(AS_P.to_string());
            Ok(
                if loc.iter().any(|e| {
                    is_best(e)
                        && e.get("as_path").and_then(Value::as_str).map(str::to_string) == want
                }) {
                    Ok(())
                } else {
                    Err(format!("Loc-RIB entries: {}", Value::from(loc)))
                },
            )
        },
    )?;
    let now = bgpd.peer_counter(np.addr(fam), "established_transitions")?;
    if now != transitions {
        return Err(Error::Check(format!(
            "the import policy change reset the session to {} (established {transitions} -> {now} times)",
            ps.label()
        )));
    }

    // 3. The peer asks bgpd to send its routes again.
    let refreshes = bgpd.peer_counter(np.addr(fam), "route_refresh_received")?;
    let updates = bgpd.peer_counter(np.addr(fam), "updates_sent")?;
    let said = ps.request_refresh(nb.addr(fam))?;
    let peer_sent = said.is_some();
    if let Some(said) = said {
        refresh_answered(&bgpd, ps, np.addr(fam), refreshes, updates, &said)?;
    }
    // A route announced now: once it is at the peer, every message bgpd sent
    // before it (a refresh answer, an End-of-RIB-Refresh) has been processed.
    let mut cb2 = cb.clone();
    cb2.announce.push(Announce::new(later));
    bgpd.reconfigure(&config(&cb2, &socket))?;
    wait_route(ps, later, TIMEOUT)?;
    check_received(ps, &ann_b, &nb, AS_B, false)?;

    // 4. bgpd asks the peer: a changed `next_hop` setting re-adds the peer
    //    to the RIB and sends it a ROUTE-REFRESH (docs/config.md, Reloading).
    //    The peer must answer: bgpd's UPDATE counter grows, the peer counts
    //    the ROUTE-REFRESH where its CLI shows counters, and bgpd holds all
    //    of the peer's routes again.
    let received = bgpd.peer_counter(np.addr(fam), "updates_received")?;
    let peer_refreshes = ps.refreshes_received(nb.addr(fam))?;
    let options = Options {
        next_hop: Some("self".to_string()),
        ..Options::default()
    };
    bgpd.reconfigure(&config_with(&cb2, &socket, &options))?;
    wait_above(
        &format!("{} to answer bgpd's ROUTE-REFRESH with UPDATEs", ps.label()),
        received,
        TIMEOUT,
        || {
            bgpd.check_running()?;
            bgpd.peer_counter(np.addr(fam), "updates_received")
        },
    )?;
    if let Some(before) = peer_refreshes {
        wait_above(
            &format!("{} to count bgpd's ROUTE-REFRESH", ps.label()),
            before,
            TIMEOUT,
            || Ok(ps.refreshes_received(nb.addr(fam))?.unwrap_or(0)),
        )?;
    }
    check_received(&bgpd, &ann_p, &np, AS_P, false)?;
    // The operator's view of the counters agrees.
    let detail = bgpd.bgpctl_json(&["show", "peer", &peer_name(np.addr(fam))])?;
    let counted = detail
        .pointer("/counters/route_refresh_received")
        .and_then(Value::as_u64);
    if counted < Some(refreshes) || (peer_sent && counted <= Some(refreshes)) {
        return Err(Error::Check(format!(
            "bgpctl show peer counts {counted:?} ROUTE-REFRESH from {} (before its request: {refreshes}): {detail}",
            ps.label()
        )));
    }
    let peers = bgpd.peers()?;
    if !peers
        .iter()
        .any(|p| p.address == np.addr(fam) && p.established)
    {
        return Err(Error::Check(format!(
            "bgpd's session to {} is not Established after the refreshes: {peers:?}",
            ps.label()
        )));
    }
    let now = bgpd.peer_counter(np.addr(fam), "established_transitions")?;
    if now != transitions {
        return Err(Error::Check(format!(
            "the session to {} was reset during the refreshes (established {transitions} -> {now} times)",
            ps.label()
        )));
    }
    bgpd.check_running()
}

/// Waits until bgpd counted a ROUTE-REFRESH from `peer` beyond `refreshes`
/// and sent UPDATEs beyond `updates` (its answer).
fn refresh_answered(
    bgpd: &Bgpd,
    ps: &dyn Speaker,
    peer: IpAddr,
    refreshes: u64,
    updates: u64,
    said: &str,
) -> Result<()> {
    wait_above(
        &format!(
            "bgpd to count a ROUTE-REFRESH from {} (its CLI said: {said})",
            ps.label()
        ),
        refreshes,
        TIMEOUT,
        || {
            bgpd.check_running()?;
            bgpd.peer_counter(peer, "route_refresh_received")
        },
    )?;
    wait_above(
        &format!("bgpd to answer {}'s ROUTE-REFRESH with UPDATEs", ps.label()),
        updates,
        TIMEOUT,
        || bgpd.peer_counter(peer, "updates_sent"),
    )?;
    Ok(())
}

/// ExaBGP (node a, AS 65020) asks bgpd (node b, AS 65010) for a refresh of
/// IPv4 unicast through its API ([`Speaker::request_refresh`]; for the
/// peer-sent direction GoBGP's CLI cannot exercise): bgpd must count the
/// ROUTE-REFRESH, send UPDATEs again, and ExaBGP must receive
/// 198.51.100.0/24 once more, with its attributes intact.
pub fn route_refresh_from_exabgp(t: &Test) -> Result<()> {
    const AS_B: u32 = 65010;
    const AS_A: u32 = 65020;
    let fam = Family::Ipv4;
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let ann_b = of_family(&announcements(0, false), fam);
    let mut cb = SpeakerConfig::new(nb.v4, AS_B);
    cb.neighbors
        .push(Neighbor::new(na.addr(fam), nb.addr(fam), AS_A));
    cb.announce = ann_b.clone();
    let mut ca = SpeakerConfig::new(na.v4, AS_A);
    ca.neighbors
        .push(Neighbor::new(nb.addr(fam), na.addr(fam), AS_B));
    let bgpd = Bgpd::start(t, &nb, "bgpd-b", &cb)?;
    let exa = ExaBgp::start(t, &na, "exabgp-a", &ca)?;
    wait_established(&exa, nb.addr(fam), TIMEOUT)?;
    wait_established(&bgpd, na.addr(fam), TIMEOUT)?;
    check_received(&exa, &ann_b, &nb, AS_B, false)?;
    let mut before = Vec::new();
    for a in &ann_b {
        before.push(exa.announcements_of(a.prefix)?);
    }
    let refreshes = bgpd.peer_counter(na.addr(fam), "route_refresh_received")?;
    let updates = bgpd.peer_counter(na.addr(fam), "updates_sent")?;
    let said = exa
        .request_refresh(nb.addr(fam))?
        .ok_or_else(|| Error::Invalid("ExaBGP's API sends ROUTE-REFRESH".into()))?;
    refresh_answered(&bgpd, &exa, na.addr(fam), refreshes, updates, &said)?;
    for (a, n) in ann_b.iter().zip(before) {
        wait_above(
            &format!("exabgp-a to receive {} again", a.prefix),
            n,
            TIMEOUT,
            || exa.announcements_of(a.prefix),
        )?;
    }
    check_received(&exa, &ann_b, &nb, AS_B, false)?;
    bgpd.check_running()
}
