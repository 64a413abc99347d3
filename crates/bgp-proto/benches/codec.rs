//! Codec benchmarks: decode and encode of UPDATEs carrying 1 and 500 IPv4 prefixes with
//! the attributes of a typical route in the 2002 RIPE RIS table
//! (tests/data/mrt/bview.20020722.2337.gz): ORIGIN IGP, a 5-AS path, NEXT_HOP, MED and two
//! communities, on a 2-octet AS session as in 2002. Prefix lengths follow that table's mix
//! (mostly /24, then /23, /19, /22, /20, /16, ...).
//!
//! `nlri_decode/500` isolates NLRI parsing (500 prefixes in the Withdrawn Routes field,
//! no attributes); divide its time by 500 for the per-prefix figure.
//! Run: `cargo bench -p bgp-proto --bench codec -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::net::Ipv4Addr;

use bgp_proto::wire::{
    decode_message, decode_path_attributes, encode_announcements, encode_message, MpReachForm,
};
use bgp_proto::{
    AsPath, AsSegment, CodecContext, Community, Family, Message, Nlri, Origin, PathAttributes,
    SegmentType, Update,
};
use bytes::BytesMut;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ipnet::{IpNet, Ipv4Net};

fn attributes() -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![1853, 20965, 3549, 7170, 1455],
            }],
        }),
        next_hop: Some(Ipv4Addr::new(193, 203, 0, 19)),
        med: Some(220),
        communities: vec![Community::new(3257, 4000), Community::new(3257, 5049)],
        ..PathAttributes::default()
    }
}

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

fn frame(update: Update, ctx: &CodecContext) -> BytesMut {
    let mut out = BytesMut::new();
    encode_message(&Message::Update(update), ctx, &mut out).unwrap();
    out
}

fn bench(c: &mut Criterion) {
    let ctx = CodecContext::default();
    let attrs = attributes();

    let mut g = c.benchmark_group("update");
    for n in [1u32, 500] {
        let update = Update {
            attributes: attrs.clone(),
            nlri: prefixes(n),
            ..Update::default()
        };
        let wire = frame(update.clone(), &ctx);
        g.throughput(Throughput::Elements(u64::from(n)));
        g.bench_with_input(BenchmarkId::new("decode", n), &wire, |b, wire| {
            b.iter(|| decode_message(black_box(wire), &ctx).unwrap())
        });
        let msg = Message::Update(update);
        let mut out = BytesMut::with_capacity(4096);
        g.bench_with_input(BenchmarkId::new("encode", n), &msg, |b, msg| {
            b.iter(|| {
                out.clear();
                encode_message(black_box(msg), &ctx, &mut out).unwrap();
            })
        });
        let nlri = prefixes(n);
        g.bench_with_input(
            BenchmarkId::new("encode_announcements", n),
            &nlri,
            |b, nlri| {
                b.iter(|| {
                    let mut msgs = Vec::new();
                    encode_announcements(
                        Family::IPV4_UNICAST,
                        &attrs,
                        None,
                        black_box(nlri),
                        &ctx,
                        &mut msgs,
                    )
                    .unwrap();
                    msgs
                })
            },
        );
    }
    g.finish();

    let mut g = c.benchmark_group("nlri_decode");
    let withdrawals = frame(
        Update {
            withdrawn: prefixes(500),
            ..Update::default()
        },
        &ctx,
    );
    g.throughput(Throughput::Elements(500));
    g.bench_function("500", |b| {
        b.iter(|| decode_message(black_box(&withdrawals), &ctx).unwrap())
    });
    g.finish();

    let mut block = frame(
        Update {
            attributes: attrs.clone(),
            ..Update::default()
        },
        &ctx,
    );
    // Header (19) + withdrawn length (2) + attribute length (2).
    let block = block.split_off(23);
    c.bench_function("path_attributes_decode", |b| {
        b.iter(|| decode_path_attributes(black_box(&block), &ctx, MpReachForm::Standard).unwrap())
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
