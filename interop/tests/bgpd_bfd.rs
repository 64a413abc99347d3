//! bgpd driving BFD (RFC 5882) against FRR (bfdd + bgpd) and BIRD 2 (`bfd on`), single
//! hop and multihop with each: the BGP session comes up with BFD Up on both sides, and
//! cutting the path takes the peer's route out of bgpd's kernel FIB (Loc-RIB across a
//! router) within 1 s with a 90 s hold time. A simple password with BIRD. Also 100
//! sessions at 100 ms between two bgpd without a flap, and a BFD session at 100 ms x 3
//! that stays Up while 500,000 routes go through bgpd's RIB to its peer. Bodies in
//! `interop::bfd::bgpd` and `interop::bfd::load`.
//!
//! Needs root, bgpd and bgpctl built, and the Debian packages frr and bird2: skipped with
//! a message otherwise, failed instead when CI=true.

use std::time::Duration;

use interop::bfd::bgpd::{bgp_with_bfd, many_sessions, simple_password_with_bird, Peer};
use interop::bfd::load::no_flap_under_rib_load;
use interop::run_test;

fn binaries(peer: Option<Peer>) -> Vec<String> {
    let mut b = peer.map(Peer::binaries).unwrap_or_default();
    b.extend(["ip".to_string(), "bridge".to_string()]);
    b.extend(
        [interop::bgpd::bgpd_binary(), interop::bgpd::bgpctl_binary()]
            .into_iter()
            .map(|p| {
                p.map_or_else(
                    || "bgpd (build it)".to_string(),
                    |p| p.display().to_string(),
                )
            }),
    );
    b
}

#[test]
fn bgpd_bfd_frr_single_hop() {
    run_test("bgpd_bfd_frr_single_hop", &binaries(Some(Peer::Frr)), |t| {
        bgp_with_bfd(t, Peer::Frr, false)
    });
}

#[test]
fn bgpd_bfd_bird_single_hop() {
    run_test(
        "bgpd_bfd_bird_single_hop",
        &binaries(Some(Peer::Bird)),
        |t| bgp_with_bfd(t, Peer::Bird, false),
    );
}

#[test]
fn bgpd_bfd_bird_simple_password() {
    run_test(
        "bgpd_bfd_bird_simple_password",
        &binaries(Some(Peer::Bird)),
        simple_password_with_bird,
    );
}

#[test]
fn bgpd_bfd_bird_multihop() {
    run_test("bgpd_bfd_bird_multihop", &binaries(Some(Peer::Bird)), |t| {
        bgp_with_bfd(t, Peer::Bird, true)
    });
}

#[test]
fn bgpd_bfd_frr_multihop() {
    run_test("bgpd_bfd_frr_multihop", &binaries(Some(Peer::Frr)), |t| {
        bgp_with_bfd(t, Peer::Frr, true)
    });
}

#[test]
fn bgpd_bfd_100_sessions_do_not_flap() {
    run_test("bgpd_bfd_100_sessions_do_not_flap", &binaries(None), |t| {
        many_sessions(t, 100, Duration::from_secs(10))
    });
}

#[test]
fn bgpd_bfd_no_flap_under_rib_load() {
    run_test("bgpd_bfd_no_flap_under_rib_load", &binaries(None), |t| {
        no_flap_under_rib_load(t, 500_000, 100)
    });
}
