//! One run of the full pipeline (decode UPDATE frames → RIB → outbound UPDATE encode) for
//! N /24s with identical attributes, eBGP in, eBGP out; prints ns per prefix per stage.
//!
//! `cargo run --release -p bgp-rib --example pipeline [-- N]` (default 1,000,000).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp_proto::wire::{decode_message, encode_announcements, Inbound};
use bgp_proto::{
    AsPath, AsSegment, CodecContext, Family, Nlri, Origin, PathAttributes, SegmentType,
};
use bgp_rib::{AllReachable, PeerConfig, Rib, RibConfig, SessionInfo};
use ipnet::{IpNet, Ipv4Net};

fn cpu_time() -> Duration {
    // utime + stime of this process from /proc (Linux), in clock ticks of 10 ms.
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = s
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i).and_then(|v| v.parse::<u64>().ok()))
        .sum();
    Duration::from_millis(ticks * 10)
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let ctx = CodecContext {
        four_octet_as: true,
        ..Default::default()
    };
    let attrs = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: vec![65001, 3356],
            }],
        }),
        next_hop: Some(Ipv4Addr::new(192, 0, 2, 2)),
        ..Default::default()
    };
    let nlri: Vec<Nlri> = (0..n)
        .map(|i| {
            let a = 0x0100_0000u32 + ((i as u32) << 8);
            Nlri::new(IpNet::V4(
                Ipv4Net::new(Ipv4Addr::from(a), 24).unwrap_or_default(),
            ))
        })
        .collect();
    let mut frames = Vec::new();
    encode_announcements(Family::IPV4_UNICAST, &attrs, None, &nlri, &ctx, &mut frames)
        .unwrap_or_else(|e| panic!("{e}"));
    drop(nlri);

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
    let dst = rib
        .add_peer(PeerConfig::new("dst", "192.0.2.3".parse().unwrap(), 65003))
        .unwrap_or_else(|e| panic!("{e}"));
    rib.peer_up(
        dst,
        SessionInfo::new(
            Ipv4Addr::new(10, 0, 0, 3),
            Some(Ipv4Addr::new(192, 0, 2, 1)),
        ),
        Instant::now(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let _ = rib.take_encoded(dst, usize::MAX, &mut Vec::new());

    // PIPELINE_EAGER=1: apply_update_and_process instead of apply_update + process.
    let lazy = std::env::var_os("PIPELINE_EAGER").is_none();
    let (mut t_dec, mut t_rib, mut t_enc) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    let cpu0 = cpu_time();
    let wall = Instant::now();
    let mut out = Vec::new();
    let mut sent = 0usize;
    for f in &frames {
        let t = Instant::now();
        let Ok(Inbound::Update(u)) = decode_message(f, &ctx) else {
            panic!("decode");
        };
        let t1 = Instant::now();
        if lazy {
            rib.apply_update(src, &u.update, u.treat_as_withdraw.is_some())
                .unwrap_or_else(|e| panic!("{e}"));
            rib.process(&AllReachable);
        } else {
            rib.apply_update_and_process(
                src,
                &u.update,
                u.treat_as_withdraw.is_some(),
                &AllReachable,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        rib.take_fib(usize::MAX);
        let t2 = Instant::now();
        let o = rib
            .take_encoded(dst, usize::MAX, &mut out)
            .unwrap_or_else(|e| panic!("{e}"));
        sent += o.announced + o.withdrawn;
        out.clear();
        let t3 = Instant::now();
        t_dec += t1 - t;
        t_rib += t2 - t1;
        t_enc += t3 - t2;
    }
    let wall = wall.elapsed();
    let cpu = cpu_time() - cpu0;
    let per = |d: Duration| d.as_nanos() as f64 / n as f64;
    println!(
        "{n} prefixes in {} UPDATEs: wall {:.3} s, CPU {:.2} s, {:.0} ns/prefix (decode {:.0}, RIB {:.0}, encode {:.0}); {} sent",
        frames.len(),
        wall.as_secs_f64(),
        cpu.as_secs_f64(),
        per(wall),
        per(t_dec),
        per(t_rib),
        per(t_enc),
        sent
    );
}
