//! bgpd against real peers: the scenarios proven among real peers in
//! `peers.rs`, with bgpd on one side (or as the reflector / a client).
//!
//! bgpd and bgpctl come from the workspace's target directory (built by
//! `cargo build --workspace`, which `scripts/test.sh` runs first).

use interop::scenarios::{
    graceful_restart, malformed_attribute, md5, pair_test, raw_malformed, real_table, reflection,
};
use interop::{binaries_for, run_test, Kind};

#[test]
fn bgpd_bird_ebgp() {
    pair_test("bgpd_bird_ebgp", Kind::Bgpd, Kind::Bird, false);
}

#[test]
fn bgpd_bird_ibgp() {
    pair_test("bgpd_bird_ibgp", Kind::Bgpd, Kind::Bird, true);
}

#[test]
fn bgpd_gobgp_ebgp() {
    pair_test("bgpd_gobgp_ebgp", Kind::Bgpd, Kind::GoBgp, false);
}

#[test]
fn bgpd_gobgp_ibgp() {
    pair_test("bgpd_gobgp_ibgp", Kind::Bgpd, Kind::GoBgp, true);
}

#[test]
fn bgpd_frr_ebgp() {
    pair_test("bgpd_frr_ebgp", Kind::Bgpd, Kind::Frr, false);
}

#[test]
fn bgpd_frr_ibgp() {
    pair_test("bgpd_frr_ibgp", Kind::Bgpd, Kind::Frr, true);
}

#[test]
fn exabgp_bgpd_ebgp() {
    pair_test("exabgp_bgpd_ebgp", Kind::ExaBgp, Kind::Bgpd, false);
}

#[test]
fn bgpd_bgpd_ibgp() {
    pair_test("bgpd_bgpd_ibgp", Kind::Bgpd, Kind::Bgpd, true);
}

#[test]
fn bgpd_reflects_between_bird_and_gobgp() {
    let kinds = [Kind::Bgpd, Kind::Bird, Kind::GoBgp];
    run_test(
        "bgpd_reflects_between_bird_and_gobgp",
        &binaries_for(&kinds),
        |t| reflection(t, Kind::Bgpd, [Kind::Bird, Kind::GoBgp]),
    );
}

#[test]
fn bgpd_reflects_between_frr_and_bird() {
    let kinds = [Kind::Bgpd, Kind::Frr, Kind::Bird];
    run_test(
        "bgpd_reflects_between_frr_and_bird",
        &binaries_for(&kinds),
        |t| reflection(t, Kind::Bgpd, [Kind::Frr, Kind::Bird]),
    );
}

#[test]
fn bgpd_is_client_of_bird_reflector() {
    let kinds = [Kind::Bird, Kind::Bgpd, Kind::Frr];
    run_test(
        "bgpd_is_client_of_bird_reflector",
        &binaries_for(&kinds),
        |t| reflection(t, Kind::Bird, [Kind::Bgpd, Kind::Frr]),
    );
}

#[test]
fn bgpd_is_client_of_gobgp_reflector() {
    let kinds = [Kind::GoBgp, Kind::Bgpd, Kind::Bird];
    run_test(
        "bgpd_is_client_of_gobgp_reflector",
        &binaries_for(&kinds),
        |t| reflection(t, Kind::GoBgp, [Kind::Bgpd, Kind::Bird]),
    );
}

#[test]
fn bgpd_is_client_of_frr_reflector() {
    let kinds = [Kind::Frr, Kind::Bgpd, Kind::GoBgp];
    run_test(
        "bgpd_is_client_of_frr_reflector",
        &binaries_for(&kinds),
        |t| reflection(t, Kind::Frr, [Kind::Bgpd, Kind::GoBgp]),
    );
}

#[test]
fn bgpd_reflects_between_bgpd_clients() {
    let kinds = [Kind::Bgpd];
    run_test(
        "bgpd_reflects_between_bgpd_clients",
        &binaries_for(&kinds),
        |t| reflection(t, Kind::Bgpd, [Kind::Bgpd, Kind::Bgpd]),
    );
}

#[test]
fn bgpd_md5_right_key_with_bird_wrong_key_with_frr() {
    let kinds = [Kind::Bgpd, Kind::Bird, Kind::Frr];
    run_test(
        "bgpd_md5_right_key_with_bird_wrong_key_with_frr",
        &binaries_for(&kinds),
        |t| md5(t, Kind::Bgpd, Kind::Bird, Kind::Frr),
    );
}

#[test]
fn bgpd_md5_right_key_with_frr_wrong_key_with_bird() {
    let kinds = [Kind::Bgpd, Kind::Frr, Kind::Bird];
    run_test(
        "bgpd_md5_right_key_with_frr_wrong_key_with_bird",
        &binaries_for(&kinds),
        |t| md5(t, Kind::Bgpd, Kind::Frr, Kind::Bird),
    );
}

#[test]
fn bgpd_answers_raw_malformed_messages() {
    run_test(
        "bgpd_answers_raw_malformed_messages",
        &binaries_for(&[Kind::Bgpd]),
        |t| raw_malformed(t, Kind::Bgpd),
    );
}

#[test]
fn bgpd_withdraws_route_with_malformed_attribute_from_exabgp() {
    let kinds = [Kind::Bgpd, Kind::ExaBgp];
    run_test(
        "bgpd_withdraws_route_with_malformed_attribute_from_exabgp",
        &binaries_for(&kinds),
        |t| malformed_attribute(t, Kind::Bgpd),
    );
}

#[test]
fn bgpd_keeps_routes_of_restarting_bird() {
    let kinds = [Kind::Bgpd, Kind::Bird];
    run_test(
        "bgpd_keeps_routes_of_restarting_bird",
        &binaries_for(&kinds),
        |t| graceful_restart(t, Kind::Bgpd, Kind::Bird),
    );
}

#[test]
fn bird_keeps_routes_of_restarting_bgpd() {
    let kinds = [Kind::Bird, Kind::Bgpd];
    run_test(
        "bird_keeps_routes_of_restarting_bgpd",
        &binaries_for(&kinds),
        |t| graceful_restart(t, Kind::Bird, Kind::Bgpd),
    );
}

#[test]
fn ris_2002_table_through_bgpd() {
    let kinds = [Kind::ExaBgp, Kind::Bgpd, Kind::Bird];
    run_test("ris_2002_table_through_bgpd", &binaries_for(&kinds), |t| {
        real_table(t, Kind::Bgpd).map(|_| ())
    });
}
