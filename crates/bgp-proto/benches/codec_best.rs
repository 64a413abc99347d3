//! Best-of-N timing of NLRI decode and encode, for a machine shared with other jobs.
//!
//! Criterion reports medians, which on a loaded 2-core VM measure the neighbours as much
//! as the code. The fastest of many runs of the same 500-prefix UPDATE is the figure
//! least disturbed by them. Run:
//! `cargo bench -p bgp-proto --bench codec_best` (about two seconds).

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp_proto::wire::{decode_message, encode_message};
use bgp_proto::{CodecContext, Message, Nlri, Update};
use bytes::BytesMut;
use ipnet::{IpNet, Ipv4Net};

/// The 2002 RIS table's prefix-length mix, as in `benches/codec.rs`.
fn prefixes(n: u32) -> Vec<Nlri> {
    const LENS: [u8; 16] = [
        24, 24, 24, 24, 24, 24, 24, 24, 23, 19, 22, 20, 16, 21, 18, 24,
    ];
    (0..n)
        .map(|i| {
            let len = LENS[(i % 16) as usize];
            let addr = Ipv4Addr::from(0x0C00_0000u32.wrapping_add(i.wrapping_mul(0x0001_0300)));
            Nlri::new(IpNet::V4(Ipv4Net::new(addr, len).unwrap().trunc()))
        })
        .collect()
}

fn best_of(runs: u32, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .min()
        .unwrap_or_default()
}

fn main() {
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and gets a
    // quick smoke run.
    let runs = if std::env::args().any(|a| a == "--bench") {
        20_000
    } else {
        10
    };
    let ctx = CodecContext::default();
    let n = 500;
    let msg = Message::Update(Update {
        withdrawn: prefixes(n),
        ..Update::default()
    });
    let mut wire = BytesMut::new();
    encode_message(&msg, &ctx, &mut wire).unwrap();

    let decode = best_of(runs, || {
        black_box(decode_message(black_box(&wire), &ctx).unwrap());
    });
    let mut out = BytesMut::with_capacity(4096);
    let encode = best_of(runs, || {
        out.clear();
        encode_message(black_box(&msg), &ctx, &mut out).unwrap();
        black_box(&out);
    });
    let per = |d: Duration| d.as_nanos() as f64 / f64::from(n);
    println!(
        "best of {runs}: NLRI decode {:.2} ns/prefix ({decode:?} per {n}), encode {:.2} ns/prefix ({encode:?} per {n})",
        per(decode),
        per(encode)
    );
}
