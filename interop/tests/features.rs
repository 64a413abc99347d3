//! bgpd's capabilities against each real peer, one test per (feature, peer):
//! ADD-PATH, route refresh, 4-octet AS and extended next hop with BIRD 2,
//! GoBGP and FRR (extended next hop, ADD-PATH path ids and route refresh
//! with ExaBGP too), and TCP MD5 with GoBGP and ExaBGP (BIRD and FRR are in
//! `bgpd.rs`); the bodies are in `interop::scenarios`, one file per feature.
//!
//! Needs root and the Debian packages bird2, gobgpd, frr, exabgp, plus bgpd
//! and bgpctl built (`cargo build --workspace`): skipped with a message
//! otherwise, failed instead when CI=true.

use interop::scenarios::{
    add_path, add_path_from_exabgp, extended_next_hop, extended_next_hop_with_exabgp,
    four_octet_as, md5, route_refresh, route_refresh_from_exabgp,
};
use interop::{binaries_for, run_test, Kind};

fn feature_test(name: &str, peer: Kind, body: fn(&interop::Test, Kind) -> interop::Result<()>) {
    // ADD-PATH uses two BIRD upstreams whatever the peer.
    let kinds = [Kind::Bgpd, peer, Kind::Bird];
    run_test(name, &binaries_for(&kinds), |t| body(t, peer));
}

#[test]
fn bgpd_bird_add_path() {
    feature_test("bgpd_bird_add_path", Kind::Bird, add_path);
}

#[test]
fn bgpd_gobgp_add_path() {
    feature_test("bgpd_gobgp_add_path", Kind::GoBgp, add_path);
}

#[test]
fn bgpd_frr_add_path() {
    feature_test("bgpd_frr_add_path", Kind::Frr, add_path);
}

#[test]
fn bgpd_receives_path_ids_from_exabgp() {
    let kinds = [Kind::Bgpd, Kind::ExaBgp];
    run_test(
        "bgpd_receives_path_ids_from_exabgp",
        &binaries_for(&kinds),
        add_path_from_exabgp,
    );
}

#[test]
fn bgpd_bird_route_refresh() {
    feature_test("bgpd_bird_route_refresh", Kind::Bird, route_refresh);
}

#[test]
fn bgpd_gobgp_route_refresh() {
    feature_test("bgpd_gobgp_route_refresh", Kind::GoBgp, route_refresh);
}

#[test]
fn bgpd_frr_route_refresh() {
    feature_test("bgpd_frr_route_refresh", Kind::Frr, route_refresh);
}

#[test]
fn bgpd_answers_route_refresh_from_exabgp() {
    let kinds = [Kind::Bgpd, Kind::ExaBgp];
    run_test(
        "bgpd_answers_route_refresh_from_exabgp",
        &binaries_for(&kinds),
        route_refresh_from_exabgp,
    );
}

#[test]
fn bgpd_bird_four_octet_as() {
    feature_test("bgpd_bird_four_octet_as", Kind::Bird, four_octet_as);
}

#[test]
fn bgpd_gobgp_four_octet_as() {
    feature_test("bgpd_gobgp_four_octet_as", Kind::GoBgp, four_octet_as);
}

#[test]
fn bgpd_frr_four_octet_as() {
    feature_test("bgpd_frr_four_octet_as", Kind::Frr, four_octet_as);
}

#[test]
fn bgpd_bird_extended_next_hop() {
    feature_test("bgpd_bird_extended_next_hop", Kind::Bird, extended_next_hop);
}

#[test]
fn bgpd_gobgp_extended_next_hop() {
    feature_test(
        "bgpd_gobgp_extended_next_hop",
        Kind::GoBgp,
        extended_next_hop,
    );
}

#[test]
fn bgpd_frr_extended_next_hop() {
    feature_test("bgpd_frr_extended_next_hop", Kind::Frr, extended_next_hop);
}

#[test]
fn bgpd_exabgp_extended_next_hop() {
    let kinds = [Kind::Bgpd, Kind::ExaBgp];
    run_test(
        "bgpd_exabgp_extended_next_hop",
        &binaries_for(&kinds),
        extended_next_hop_with_exabgp,
    );
}

#[test]
fn bgpd_md5_right_key_with_gobgp_wrong_key_with_exabgp() {
    let kinds = [Kind::Bgpd, Kind::GoBgp, Kind::ExaBgp];
    run_test(
        "bgpd_md5_right_key_with_gobgp_wrong_key_with_exabgp",
        &binaries_for(&kinds),
        |t| md5(t, Kind::Bgpd, Kind::GoBgp, Kind::ExaBgp),
    );
}

#[test]
fn bgpd_md5_right_key_with_exabgp_wrong_key_with_gobgp() {
    let kinds = [Kind::Bgpd, Kind::ExaBgp, Kind::GoBgp];
    run_test(
        "bgpd_md5_right_key_with_exabgp_wrong_key_with_gobgp",
        &binaries_for(&kinds),
        |t| md5(t, Kind::Bgpd, Kind::ExaBgp, Kind::GoBgp),
    );
}
