//! MRT writer benchmarks: a TABLE_DUMP_V2 dump of 1M IPv4 routes from 4 peers (250k
//! prefixes with 4 routes each) fed as a daemon would feed it from its RIB (each route's
//! attribute set looked up by handle in a [`RibAttributeCache`], 1 000 distinct sets of a
//! typical route's attributes), written plain to `io::sink()` and gzip'd to a file; and a
//! BGP4MP_ET update log of 1M single-prefix UPDATEs.
//!
//! Run: `cargo bench -p bgp-mrt --bench writer`; divide by 1M for the per-route figure.

use std::hint::black_box;
use std::io::{self, Write};
use std::net::{IpAddr, Ipv4Addr};

use bgp_mrt::{
    Bgp4mpSession, Compression, Direction, MrtFile, MrtTime, Peer, PeerIndexTable,
    RibAttributeCache, RibEntryRef, TableDumpWriter, UpdateLogWriter,
};
use bgp_proto::wire::encode_announcements;
use bgp_proto::{
    AsPath, AsSegment, CodecContext, Community, Family, MpNextHop, Nlri, Origin, PathAttributes,
    SegmentType,
};
use criterion::{criterion_group, criterion_main, Criterion};
use ipnet::{IpNet, Ipv4Net};

const PREFIXES: u32 = 250_000;
const PEERS: u16 = 4;
const ATTRIBUTE_SETS: u32 = 1_000;

fn attributes(i: u32) -> PathAttributes {
    PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![1853, 20965, 3549, 7170, 64512 + i],
            }],
        }),
        med: Some(220),
        communities: vec![Community::new(3257, 4000), Community::new(3257, 5049)],
        ..PathAttributes::default()
    }
}

fn peer_table() -> PeerIndexTable {
    PeerIndexTable {
        collector_bgp_id: Ipv4Addr::new(192, 0, 2, 254),
        view_name: String::new(),
        peers: (0..PEERS)
            .map(|p| Peer {
                bgp_id: Ipv4Addr::new(10, 0, 0, p as u8 + 1),
                ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, p as u8 + 1)),
                asn: 65000 + u32::from(p),
            })
            .collect(),
    }
}

fn prefix(i: u32) -> IpNet {
    IpNet::V4(Ipv4Net::new(Ipv4Addr::from(0x0100_0000 + (i << 8)), 24).unwrap())
}

/// The whole dump, as a daemon walking its RIB would write it: per prefix, the routes'
/// attribute blocks from the cache, then one `write_rib`.
fn dump<W: Write>(out: W, sets: &[PathAttributes]) -> W {
    let table = peer_table();
    let mut cache = RibAttributeCache::new();
    let mut w = TableDumpWriter::new(out, 1_700_000_000, &table).unwrap();
    let mut blocks = Vec::with_capacity(usize::from(PEERS));
    for i in 0..PREFIXES {
        blocks.clear();
        for p in 0..PEERS {
            let set = (i + u32::from(p)) % ATTRIBUTE_SETS;
            let nh = MpNextHop::V4(Ipv4Addr::new(192, 0, 2, p as u8 + 1));
            let block = cache
                .get_or_encode(
                    (set, p),
                    Family::IPV4_UNICAST,
                    &sets[set as usize],
                    Some(&nh),
                )
                .unwrap();
            blocks.push((p, block));
        }
        let entries: Vec<RibEntryRef<'_>> = blocks
            .iter()
            .map(|(p, block)| RibEntryRef {
                peer_index: *p,
                originated_time: 1_699_000_000,
                path_id: None,
                attributes: block,
            })
            .collect();
        w.write_rib(prefix(i), &entries).unwrap();
    }
    assert_eq!(w.entries(), u64::from(PREFIXES) * u64::from(PEERS));
    w.finish().unwrap()
}

fn bench(c: &mut Criterion) {
    let sets: Vec<PathAttributes> = (0..ATTRIBUTE_SETS).map(attributes).collect();
    let mut g = c.benchmark_group("mrt_write");
    g.sample_size(10);
    g.bench_function("table_dump_1m_routes_plain", |b| {
        b.iter(|| black_box(dump(io::sink(), &sets)))
    });
    let dir = std::env::temp_dir().join(format!("bgp-mrt-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("bview.gz");
    g.bench_function("table_dump_1m_routes_gzip_file", |b| {
        b.iter(|| {
            let file = MrtFile::create(&path, Compression::Gzip).unwrap();
            black_box(dump(file, &sets).finish().unwrap())
        })
    });
    let ctx = CodecContext {
        four_octet_as: true,
        ..CodecContext::default()
    };
    let nh = MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    let messages: Vec<_> = (0..1_000u32)
        .map(|i| {
            let mut out = Vec::new();
            let nlri = [Nlri::new(prefix(i))];
            encode_announcements(
                Family::IPV4_UNICAST,
                &sets[i as usize],
                Some(&nh),
                &nlri,
                &ctx,
                &mut out,
            )
            .unwrap();
            out.remove(0)
        })
        .collect();
    let session = Bgp4mpSession {
        peer_as: 65001,
        local_as: 65000,
        interface_index: 0,
        peer_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        local_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        four_octet_as: true,
    };
    g.bench_function("update_log_1m_messages_plain", |b| {
        b.iter(|| {
            let mut w = UpdateLogWriter::new(io::BufWriter::new(io::sink()));
            for i in 0..1_000_000u32 {
                let t = MrtTime {
                    seconds: 1_700_000_000 + i / 1000,
                    microseconds: i % 1000,
                };
                let m = &messages[(i % 1000) as usize];
                w.write_message(t, &session, Direction::Received, false, m)
                    .unwrap();
            }
            black_box(w.finish().unwrap())
        })
    });
    g.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
