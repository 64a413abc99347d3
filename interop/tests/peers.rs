//! Real peers against each other: proves the harness (namespaces, bridge,
//! launchers, CLI parsers) before bgpd exists, and serves as the template for
//! bgpd interop tests (replace one side by bgpd).
//!
//! Each pair test: two node namespaces on one bridge, one IPv4 and one IPv6
//! session between them, each side originating one IPv4 and one IPv6 prefix
//! with MED, standard and large communities (and LOCAL_PREF over iBGP); the
//! receiving daemon's own CLI must show the route with the attributes intact
//! and the AS path / next hop BGP prescribes.
//!
//! Needs root and the Debian packages bird2, gobgpd, frr, exabgp: skipped with
//! a message otherwise, failed instead when CI=true.

use std::net::IpAddr;

use interop::scenarios::{
    announcements, check_received, graceful_restart, malformed_attribute, md5, pair_test,
    raw_malformed, real_table, reflection, speaker_config,
};
use interop::{
    binaries_for, run_test, wait_established, wait_for, wait_no_route, wait_route, Announce, Error,
    ExaBgp, Family, Kind, Node, Segment, TIMEOUT,
};

#[test]
fn bird_gobgp_ebgp() {
    pair_test("bird_gobgp_ebgp", Kind::Bird, Kind::GoBgp, false);
}

#[test]
fn bird_gobgp_ibgp() {
    pair_test("bird_gobgp_ibgp", Kind::Bird, Kind::GoBgp, true);
}

#[test]
fn bird_frr_ebgp() {
    pair_test("bird_frr_ebgp", Kind::Bird, Kind::Frr, false);
}

#[test]
fn bird_frr_ibgp() {
    pair_test("bird_frr_ibgp", Kind::Bird, Kind::Frr, true);
}

#[test]
fn gobgp_frr_ebgp() {
    pair_test("gobgp_frr_ebgp", Kind::GoBgp, Kind::Frr, false);
}

#[test]
fn gobgp_frr_ibgp() {
    pair_test("gobgp_frr_ibgp", Kind::GoBgp, Kind::Frr, true);
}

/// ExaBGP as the scripted peer: static routes with attributes, an API-sent
/// route carrying an unknown optional transitive attribute (type 0xf0), a
/// withdrawal, and BIRD's routes parsed back from ExaBGP's JSON.
#[test]
fn exabgp_bird_ebgp_api_and_unknown_attribute() {
    let kinds = [Kind::ExaBgp, Kind::Bird];
    run_test(
        "exabgp_bird_ebgp_api_and_unknown_attribute",
        &binaries_for(&kinds),
        |t| {
            let seg = Segment::new(t)?;
            let na = Node::new(t, &seg, "a", 1)?;
            let nb = Node::new(t, &seg, "b", 2)?;
            let (ann_a, ann_b) = (announcements(0, false), announcements(1, false));
            let exa = ExaBgp::start(
                t,
                &na,
                "exabgp-a",
                &speaker_config(&na, &nb, 65001, 65002, ann_a.clone()),
            )?;
            let bird = interop::Bird::start(
                t,
                &nb,
                "bird-b",
                &speaker_config(&nb, &na, 65002, 65001, ann_b.clone()),
            )?;
            for fam in [Family::Ipv4, Family::Ipv6] {
                wait_established(&exa, nb.addr(fam), TIMEOUT)?;
                wait_established(&bird, na.addr(fam), TIMEOUT)?;
            }
            check_received(&bird, &ann_a, &na, 65001, false)?;
            check_received(&exa, &ann_b, &nb, 65002, false)?;

            let extra: ipnet::IpNet = "192.0.2.128/25".parse().expect("literal prefix");
            exa.command(&format!(
            "announce route {extra} next-hop self as-path [ 65001 64999 ] attribute [ 0xf0 0xc0 0x0102 ]"
        ))?;
            let r = wait_route(&bird, extra, TIMEOUT)?;
            if r.as_path != [65001, 64999] {
                return Err(Error::Check(format!("AS path {:?}", r.as_path)));
            }
            // BIRD keeps unknown transitive attributes and shows their bytes.
            let shown = bird.birdc(&format!("show route {extra} all"))?;
            if !shown.contains("01 02") {
                return Err(Error::Check(format!(
                    "unknown attribute not shown by BIRD:\n{shown}"
                )));
            }
            exa.withdraw(extra)?;
            wait_no_route(&bird, extra, TIMEOUT)?;
            Ok(())
        },
    );
}

/// Data plane: two BIRDs export BGP routes to their namespace's kernel; the
/// routes appear in `ip route` with protocol bird and the loopback-like
/// addresses behind them answer pings in both families.
#[test]
fn bird_bird_kernel_routes_and_ping() {
    run_test(
        "bird_bird_kernel_routes_and_ping",
        &binaries_for(&[Kind::Bird]),
        |t| {
            let seg = Segment::new(t)?;
            let na = Node::new(t, &seg, "a", 1)?;
            let nb = Node::new(t, &seg, "b", 2)?;
            let nodes = [(&na, 1u8, 65001u32), (&nb, 2u8, 65002u32)];
            let mut hosts: Vec<(IpAddr, IpAddr)> = Vec::new();
            let mut birds = Vec::new();
            for (i, (node, n, asn)) in nodes.iter().enumerate() {
                let (peer, _, peer_asn) = nodes[1 - i];
                let h4: IpAddr = format!("10.10.{n}.1").parse().expect("literal");
                let h6: IpAddr = format!("fd10:{n}::1").parse().expect("literal");
                node.ns.add_address("lo", ipnet::IpNet::from(h4))?;
                node.ns.add_address("lo", ipnet::IpNet::from(h6))?;
                hosts.push((h4, h6));
                let announce = vec![
                    Announce::new(format!("10.10.{n}.0/24").parse().expect("literal")),
                    Announce::new(format!("fd10:{n}::/64").parse().expect("literal")),
                ];
                let mut cfg = speaker_config(node, peer, *asn, peer_asn, announce);
                cfg.kernel_export = true;
                birds.push(interop::Bird::start(
                    t,
                    node,
                    &format!("bird-{}", node.name),
                    &cfg,
                )?);
            }
            for (i, (node, _, _)) in nodes.iter().enumerate() {
                let (peer, pn, _) = nodes[1 - i];
                for fam in [Family::Ipv4, Family::Ipv6] {
                    let want: ipnet::IpNet = match fam {
                        Family::Ipv4 => format!("10.10.{pn}.0/24"),
                        Family::Ipv6 => format!("fd10:{pn}::/64"),
                    }
                    .parse()
                    .expect("literal");
                    let gw = peer.addr(fam);
                    wait_for(
                        &format!("{want} via {gw} in {}'s kernel", node.name),
                        TIMEOUT,
                        || {
                            let routes = node.ns.routes(fam)?;
                            Ok(match routes.iter().find(|r| r.dst == want) {
                                Some(r) if r.protocol == "bird" && r.gateway == Some(gw) => Ok(()),
                                Some(r) => Err(format!("route is {r:?}")),
                                None => Err(format!("absent; kernel has {routes:?}")),
                            })
                        },
                    )?;
                }
            }
            let ((a4, a6), (b4, b6)) = (hosts[0], hosts[1]);
            for (src, dst) in [(a4, b4), (a6, b6)] {
                na.ns.wait_ping(dst, Some(src), TIMEOUT)?;
            }
            Ok(())
        },
    );
}

#[test]
fn bird_reflects_between_gobgp_and_frr() {
    let kinds = [Kind::Bird, Kind::GoBgp, Kind::Frr];
    run_test(
        "bird_reflects_between_gobgp_and_frr",
        &binaries_for(&kinds),
        |t| reflection(t, Kind::Bird, [Kind::GoBgp, Kind::Frr]),
    );
}

#[test]
fn frr_reflects_between_bird_and_gobgp() {
    let kinds = [Kind::Frr, Kind::Bird, Kind::GoBgp];
    run_test(
        "frr_reflects_between_bird_and_gobgp",
        &binaries_for(&kinds),
        |t| reflection(t, Kind::Frr, [Kind::Bird, Kind::GoBgp]),
    );
}

#[test]
fn gobgp_reflects_between_frr_and_bird() {
    let kinds = [Kind::GoBgp, Kind::Frr, Kind::Bird];
    run_test(
        "gobgp_reflects_between_frr_and_bird",
        &binaries_for(&kinds),
        |t| reflection(t, Kind::GoBgp, [Kind::Frr, Kind::Bird]),
    );
}

#[test]
fn bird_answers_raw_malformed_messages() {
    run_test(
        "bird_answers_raw_malformed_messages",
        &binaries_for(&[Kind::Bird]),
        |t| raw_malformed(t, Kind::Bird),
    );
}

#[test]
fn md5_bird_gobgp_right_key_frr_wrong_key() {
    let kinds = [Kind::Bird, Kind::GoBgp, Kind::Frr];
    run_test(
        "md5_bird_gobgp_right_key_frr_wrong_key",
        &binaries_for(&kinds),
        |t| md5(t, Kind::Bird, Kind::GoBgp, Kind::Frr),
    );
}

#[test]
fn bird_withdraws_route_with_malformed_attribute_from_exabgp() {
    let kinds = [Kind::Bird, Kind::ExaBgp];
    run_test(
        "bird_withdraws_route_with_malformed_attribute_from_exabgp",
        &binaries_for(&kinds),
        |t| malformed_attribute(t, Kind::Bird),
    );
}

#[test]
fn bird_keeps_routes_of_restarting_bird() {
    run_test(
        "bird_keeps_routes_of_restarting_bird",
        &binaries_for(&[Kind::Bird]),
        |t| graceful_restart(t, Kind::Bird, Kind::Bird),
    );
}

#[test]
fn ris_2002_table_through_bird() {
    let kinds = [Kind::ExaBgp, Kind::Bird];
    run_test("ris_2002_table_through_bird", &binaries_for(&kinds), |t| {
        real_table(t, Kind::Bird).map(|_| ())
    });
}
