//! BFD (bgp-bfd through the `bfd_peer` driver) against FRR's bfdd and BIRD 2's BFD, in
//! namespaces: IPv4 and IPv6 at once, single hop and multihop; bring-up both ways,
//! timers as both sides see them, renegotiation without a flap, a cut detected within
//! the detection time, recovery, administrative down; the single-hop TTL rule across a
//! router; simple password authentication with BIRD. Bodies in `interop::bfd::scenarios`.
//!
//! Needs root and the Debian packages frr and bird2: skipped with a message otherwise,
//! failed instead when CI=true.

use std::path::Path;

use interop::bfd::scenarios::{self, PeerKind};
use interop::run_test;

const BFD_PEER: &str = env!("CARGO_BIN_EXE_bfd_peer");

fn interop_test(name: &str, kind: PeerKind, multihop: bool) {
    run_test(name, &kind.binaries(), |t| {
        scenarios::interop(t, kind, multihop, Path::new(BFD_PEER))
    });
}

#[test]
fn bfd_frr_single_hop() {
    interop_test("bfd_frr_single_hop", PeerKind::Frr, false);
}

#[test]
fn bfd_frr_multihop() {
    interop_test("bfd_frr_multihop", PeerKind::Frr, true);
}

#[test]
fn bfd_bird_single_hop() {
    interop_test("bfd_bird_single_hop", PeerKind::Bird, false);
}

#[test]
fn bfd_bird_multihop() {
    interop_test("bfd_bird_multihop", PeerKind::Bird, true);
}

#[test]
fn bfd_single_hop_refuses_ttl_254() {
    run_test(
        "bfd_single_hop_refuses_ttl_254",
        &PeerKind::Frr.binaries(),
        |t| scenarios::single_hop_across_a_router(t, Path::new(BFD_PEER)),
    );
}

#[test]
fn bfd_bird_simple_password() {
    run_test(
        "bfd_bird_simple_password",
        &PeerKind::Bird.binaries(),
        |t| scenarios::simple_password_with_bird(t, Path::new(BFD_PEER)),
    );
}
