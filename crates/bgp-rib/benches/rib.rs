//! RIB benchmarks: insert/withdraw rates, best-path selection, and the full pipeline per
//! prefix (decode UPDATE frames → RIB → outbound UPDATE encode) for 100k and 1M /24s with
//! identical attributes from one eBGP peer to another (REFERENCE section 5's setup).
//!
//! `cargo bench -p bgp-rib --bench rib` (short runs: 10 samples each).

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgp_proto::wire::{decode_message, encode_announcements, Inbound};
use bgp_proto::{
    AsPath, AsSegment, CodecContext, Family, MpNextHop, Nlri, Origin, PathAttributes, SegmentType,
    Update,
};
use bgp_rib::decision::{select, Candidate, DecisionConfig};
use bgp_rib::policy::RouteSource;
use bgp_rib::{AllReachable, PeerConfig, PeerId, Rib, RibConfig, RouteAttrs, SessionInfo};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ipnet::{IpNet, Ipv4Net};

fn prefix(i: usize) -> IpNet {
    let a = 0x0100_0000u32 + ((i as u32) << 8);
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(a), 24).unwrap_or_default())
}

fn attrs(asn: u32) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![asn, 3356],
            }],
        }),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 2)),
        ..Default::default()
    }
}

fn ctx() -> CodecContext {
    CodecContext {
        four_octet_as: true,
        ..Default::default()
    }
}

/// A RIB with `src` (AS 65001) up and optionally `dst` (AS 65003).
fn setup(with_dst: bool) -> (Rib, PeerId, Option<PeerId>) {
    let mut rib = Rib::new(RibConfig::new(65000, Ipv4Addr::new(10, 0, 0, 1)));
    let src = rib
        .add_peer(PeerConfig::new("src", "192.0.2.2".parse().unwrap(), 65001))
        .unwrap();
    rib.peer_up(
        src,
        SessionInfo::new(Ipv4Addr::new(10, 0, 0, 2), None),
        Instant::now(),
    )
    .unwrap();
    let dst = with_dst.then(|| {
        let d = rib
            .add_peer(PeerConfig::new("dst", "192.0.2.3".parse().unwrap(), 65003))
            .unwrap();
        rib.peer_up(
            d,
            SessionInfo::new(
                Ipv4Addr::new(10, 0, 0, 3),
                Some(Ipv4Addr::new(192, 0, 2, 1)),
            ),
            Instant::now(),
        )
        .unwrap();
        let _ = rib.take_encoded(d, usize::MAX, &mut Vec::new());
        d
    });
    (rib, src, dst)
}

fn updates(n: usize, asn: u32) -> Vec<Update> {
    (0..n)
        .step_by(1000)
        .map(|i| Update {
            attributes: attrs(asn),
            nlri: (i..(i + 1000).min(n))
                .map(|k| Nlri::new(prefix(k)))
                .collect(),
            ..Default::default()
        })
        .collect()
}

fn frames(n: usize) -> Vec<Bytes> {
    let nlri: Vec<Nlri> = (0..n).map(|k| Nlri::new(prefix(k))).collect();
    let mut out = Vec::new();
    encode_announcements(
        Family::IPV4_UNICAST,
        &attrs(65001),
        None,
        &nlri,
        &ctx(),
        &mut out,
    )
    .unwrap();
    out
}

fn insert_withdraw(c: &mut Criterion) {
    let n = 100_000;
    let ups = updates(n, 65001);
    let withdrawals: Vec<Update> = (0..n)
        .step_by(1000)
        .map(|i| Update {
            withdrawn: (i..(i + 1000).min(n))
                .map(|k| Nlri::new(prefix(k)))
                .collect(),
            ..Default::default()
        })
        .collect();
    let mut g = c.benchmark_group("rib");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("insert_100k", |b| {
        b.iter_batched(
            || setup(false),
            |(mut rib, src, _)| {
                for u in &ups {
                    rib.apply_update(src, u, false).unwrap();
                    rib.process(&AllReachable);
                    rib.take_fib(usize::MAX);
                }
                rib
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("withdraw_100k", |b| {
        b.iter_batched(
            || {
                let (mut rib, src, d) = setup(false);
                for u in &ups {
                    rib.apply_update(src, u, false).unwrap();
                }
                rib.process(&AllReachable);
                rib.take_fib(usize::MAX);
                (rib, src, d)
            },
            |(mut rib, src, _)| {
                for u in &withdrawals {
                    rib.apply_update(src, u, false).unwrap();
                    rib.process(&AllReachable);
                    rib.take_fib(usize::MAX);
                }
                rib
            },
            BatchSize::PerIteration,
        )
    });
    // Second peer offers a better path for every prefix: a decision with two candidates
    // and a best-path change per prefix.
    let better = updates(n, 65002)
        .into_iter()
        .map(|mut u| {
            u.attributes.as_path = Some(AsPath {
                segments: vec![AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![65002],
                }],
            });
            u.attributes.next_hop = Some(Ipv4Addr::new(192, 0, 2, 4));
            u
        })
        .collect::<Vec<_>>();
    g.bench_function("best_path_change_100k", |b| {
        b.iter_batched(
            || {
                let (mut rib, src, _) = setup(false);
                for u in &ups {
                    rib.apply_update(src, u, false).unwrap();
                }
                rib.process(&AllReachable);
                rib.take_fib(usize::MAX);
                let p2 = rib
                    .add_peer(PeerConfig::new("p2", "192.0.2.4".parse().unwrap(), 65002))
                    .unwrap();
                rib.peer_up(
                    p2,
                    SessionInfo::new(Ipv4Addr::new(10, 0, 0, 4), None),
                    Instant::now(),
                )
                .unwrap();
                (rib, p2)
            },
            |(mut rib, p2)| {
                for u in &better {
                    rib.apply_update(p2, u, false).unwrap();
                    rib.process(&AllReachable);
                    rib.take_fib(usize::MAX);
                }
                rib
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

fn decision(c: &mut Criterion) {
    let mk = |asns: Vec<u32>, med: u32, nh: u8| RouteAttrs {
        attrs: PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath {
                segments: vec![AsSegment {
                    kind: SegmentType::Sequence,
                    asns,
                }],
            }),
            med: Some(med),
            ..Default::default()
        },
        next_hop: Some(MpNextHop::V4(Ipv4Addr::new(192, 0, 2, nh))),
    };
    let a = [
        mk(vec![65001, 3356], 10, 2),
        mk(vec![65001, 174], 5, 3),
        mk(vec![65002, 3356], 0, 4),
        mk(vec![65003, 1299], 0, 5),
    ];
    let cands: Vec<Candidate<'_>> = a
        .iter()
        .enumerate()
        .map(|(i, x)| Candidate {
            attrs: x,
            source: RouteSource::Bgp,
            ebgp: true,
            peer_router_id: Ipv4Addr::new(10, 0, 0, i as u8 + 2),
            peer_address: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, i as u8 + 2))),
            path_id: 0,
            llgr_stale: false,
            eligibility: Ok(0),
        })
        .collect();
    let cfg = DecisionConfig {
        local_as: 65000,
        always_compare_med: false,
        max_paths: 4,
    };
    c.bench_function("decision/select_4_candidates", |b| {
        b.iter(|| select(black_box(&cands), &cfg, None))
    });
}

fn pipeline(c: &mut Criterion) {
    let mut g = c.benchmark_group("pipeline");
    g.sample_size(10).measurement_time(Duration::from_secs(5));
    for n in [100_000usize, 1_000_000] {
        let input = frames(n);
        g.throughput(Throughput::Elements(n as u64));
        g.bench_function(format!("decode_rib_encode_{}k", n / 1000), |b| {
            b.iter_batched(
                || setup(true),
                |(mut rib, src, dst)| {
                    let dst = dst.unwrap();
                    let ctx = ctx();
                    let mut out = Vec::new();
                    for f in &input {
                        if let Ok(Inbound::Update(u)) = decode_message(f, &ctx) {
                            rib.apply_update(src, &u.update, u.treat_as_withdraw.is_some())
                                .unwrap();
                            rib.process(&AllReachable);
                            rib.take_fib(usize::MAX);
                            rib.take_encoded(dst, usize::MAX, &mut out).unwrap();
                        }
                    }
                    (rib, out)
                },
                BatchSize::PerIteration,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, decision, insert_withdraw, pipeline);
criterion_main!(benches);
