//! Output slicing: the RIB driver hands each peer its UPDATEs in slices of at most
//! `out_slice_bytes` of NLRI, the next one only once the peer driver took the last (the
//! output credit), and a peer driver holds what does not fit its session's queue until
//! the queue drains. However small the slices and the queues, every route arrives and the
//! Loc-RIBs end exactly as with one slice per peer.

mod common;

use bgp_sim::{Sim, SimConfig, Topology};
use common::*;

const N: usize = 4;
/// Extra blocks the first node originates, so its table spans many slices.
const EXTRA: usize = 60;
/// NLRI octets of one slice.
const SLICE: usize = 16;
/// NLRI octets of one /26 prefix (length octet and four address octets).
const PREFIX: u64 = 5;

fn topology() -> Topology {
    let mut t = Topology::full_mesh(N);
    t.nodes[0]
        .originate
        .extend((0..EXTRA).map(|i| Topology::block(1000 + i)));
    t
}

fn run(cfg: SimConfig) -> Sim {
    let mut sim = Sim::new(topology(), cfg).unwrap();
    converge(&mut sim);
    assert_healthy(&sim);
    assert_full_reachability(&sim);
    sim
}

#[test]
fn small_slices_and_queues_deliver_every_route() {
    for seed in 1..=4 {
        let whole = run(SimConfig::new(seed));
        let mut cfg = SimConfig::new(seed);
        // About three /26 prefixes (5 octets of NLRI each) per slice.
        cfg.out_slice_bytes = SLICE;
        // Smaller than one UPDATE of a slice: the peer driver holds the rest.
        cfg.session_queue_bytes = 64;
        let sliced = run(cfg);
        assert_eq!(sliced.loc_ribs(), whole.loc_ribs(), "seed {seed}");
        let (w, s) = (whole.stats(), sliced.stats());
        // Node 0 alone hands each of its peers its whole table, a slice overshooting
        // its bound by at most one prefix.
        let table = (EXTRA as u64 + 1) * PREFIX;
        let per_peer = table.div_ceil(SLICE as u64 + PREFIX);
        assert!(
            s.output_slices >= (N as u64 - 1) * per_peer,
            "seed {seed}: {} slices",
            s.output_slices
        );
        assert!(s.output_slices > w.output_slices, "seed {seed}");
        assert!(s.updates_sent > w.updates_sent, "seed {seed}");
    }
}
