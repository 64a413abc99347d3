//! What one BFD packet costs: two endpoints with 100 sessions each at 100 ms x 3 (the
//! issue's load: ~1,000 packets a second each way), wired back to back on a virtual
//! clock. One iteration advances 100 ms, so every session sends and receives one packet:
//! divide the time by 200 for the cost of one packet sent and received (encode, decode,
//! demultiplex, session, timers).
//! Run: `cargo bench -p bgp-bfd --bench endpoint -- --warm-up-time 1 --measurement-time 3`.

use std::hint::black_box;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use bgp_bfd::{Addresses, Endpoint, Hops, PacketInfo, SessionConfig};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SESSIONS: u32 = 100;

fn addr(side: u8, i: u32) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, side, (i >> 8) as u8, i as u8))
}

fn endpoint(side: u8, now: Instant) -> Endpoint {
    let mut e = Endpoint::new(u64::from(side));
    for i in 0..SESSIONS {
        let mut c = SessionConfig::new(Hops::Single);
        c.desired_min_tx = Duration::from_millis(100);
        c.required_min_rx = Duration::from_millis(100);
        c.jitter_seed = Some(u64::from(i));
        let a = Addresses {
            peer: addr(3 - side, i),
            local: Some(addr(side, i)),
            interface: None,
        };
        e.add_session(now, a, c).expect("valid session");
    }
    e
}

/// Moves every packet `from` sends to `to`; returns how many.
fn exchange(from: &mut Endpoint, to: &mut Endpoint, now: Instant) -> usize {
    let mut n = 0;
    while let Some(t) = from.poll_transmit() {
        let info = PacketInfo {
            source: t.source.unwrap_or(t.destination.ip()),
            destination: Some(t.destination.ip()),
            interface: None,
            ttl: 255,
            multihop: false,
        };
        let _ = black_box(to.handle_datagram(now, &info, t.packet.as_bytes()));
        n += 1;
    }
    while to.poll_event().is_some() {}
    n
}

fn bench(c: &mut Criterion) {
    let mut now = Instant::now();
    let mut a = endpoint(1, now);
    let mut b = endpoint(2, now);
    // Bring everything Up and through its Poll Sequences.
    for _ in 0..100 {
        now += Duration::from_millis(50);
        a.handle_timeout(now);
        b.handle_timeout(now);
        exchange(&mut a, &mut b, now);
        exchange(&mut b, &mut a, now);
    }
    let up = a
        .sessions()
        .filter(|(_, _, s)| s.state() == bgp_bfd::State::Up)
        .count();
    assert_eq!(up, SESSIONS as usize, "all sessions Up before measuring");
    let mut g = c.benchmark_group("endpoint");
    g.throughput(Throughput::Elements(2 * u64::from(SESSIONS)));
    g.bench_function("100_sessions_100ms_tick", |bench| {
        bench.iter(|| {
            // Two half steps so jittered timers (75-100% of 100 ms) all fire once.
            for _ in 0..2 {
                now += Duration::from_millis(50);
                a.handle_timeout(now);
                b.handle_timeout(now);
                exchange(&mut a, &mut b, now);
                exchange(&mut b, &mut a, now);
            }
        })
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
