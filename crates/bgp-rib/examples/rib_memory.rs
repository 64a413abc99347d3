//! Heap used by the RIB per path, measured with a counting global allocator.
//!
//! `cargo run --release -p bgp-rib --example rib_memory [-- N]` (default 1,000,000 /24s from
//! one eBGP peer, batched 1000 per UPDATE as a peer would pack them).
//! Scenarios: identical attributes; 1000 distinct attribute sets; the same with one more
//! eBGP peer receiving the whole table (Adj-RIB-Out kept).

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::Instant;

use bgp_proto::{AsPath, AsSegment, Nlri, Origin, PathAttributes, SegmentType, Update};
use bgp_rib::{AllReachable, PeerConfig, Rib, RibConfig, SessionInfo};
use ipnet::{IpNet, Ipv4Net};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards to the system allocator unchanged, only counting bytes.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        LIVE.fetch_add(l.size() as isize, Ordering::Relaxed);
        // SAFETY: same layout contract as the caller's.
        unsafe { System.alloc(l) }
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        LIVE.fetch_sub(l.size() as isize, Ordering::Relaxed);
        // SAFETY: `p` was allocated by `System` with `l`.
        unsafe { System.dealloc(p, l) }
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        LIVE.fetch_add(new as isize - l.size() as isize, Ordering::Relaxed);
        // SAFETY: forwarded unchanged.
        unsafe { System.realloc(p, l, new) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn live() -> isize {
    LIVE.load(Ordering::Relaxed)
}

fn prefix(i: usize) -> IpNet {
    let a = 0x0100_0000u32 + ((i as u32) << 8);
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), 24).unwrap_or_default())
}

fn attrs(set: usize) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![65001, 64512 + (set as u32 % 1000), 3356],
            }],
        }),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 2)),
        med: Some(set as u32),
        ..Default::default()
    }
}

fn run(n: usize, sets: usize, out_peer: bool) {
    let base = live();
    let t = Instant::now();
    let mut rib = Rib::new(RibConfig::new(65000, Ipv4Addr::new(10, 0, 0, 1)));
    let src = rib
        .add_peer(PeerConfig::new("src", "192.0.2.2".parse().unwrap(), 65001))
        .unwrap_or_else(|e| panic!("{e}"));
    rib.peer_up(
        src,
        SessionInfo::new(Ipv4Addr::new(10, 0, 0, 2), None),
        Instant::now(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let dst = out_peer.then(|| {
        let d = rib
            .add_peer(PeerConfig::new("dst", "192.0.2.3".parse().unwrap(), 65003))
            .unwrap_or_else(|e| panic!("{e}"));
        rib.peer_up(
            d,
            SessionInfo::new(
                Ipv4Addr::new(10, 0, 0, 3),
                Some(Ipv4Addr::new(192, 0, 2, 1)),
            ),
            Instant::now(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        d
    });
    let batch = 1000;
    let mut i = 0;
    while i < n {
        let end = (i + batch).min(n);
        let u = Update {
            attributes: attrs(i / batch % sets),
            nlri: (i..end).map(|k| Nlri::new(prefix(k))).collect(),
            ..Default::default()
        };
        rib.apply_update(src, &u, false)
            .unwrap_or_else(|e| panic!("{e}"));
        rib.process(&AllReachable);
        // The kernel component drains FIB changes as they come.
        rib.take_fib(usize::MAX);
        if let Some(d) = dst {
            // A real session drains after each batch.
            let _ = rib.take_encoded(d, usize::MAX, &mut Vec::new());
        }
        i = end;
    }
    let bytes = live() - base;
    println!(
        "{n} paths, {} attribute sets, out peer: {out_peer}: {:.1} MiB heap, {:.1} bytes/path, built in {:.2} s",
        rib.attribute_sets(),
        bytes as f64 / 1048576.0,
        bytes as f64 / n as f64,
        t.elapsed().as_secs_f64()
    );
    drop(rib);
}

fn main() {
    let n = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    run(n, 1, false);
    run(n, 1000, false);
    run(n, 1000, true);
}
