//! A RIB that stalls must not drop healthy sessions (timers never wait for the RIB), and a
//! peer flooding UPDATEs meanwhile must not be judged dead over KEEPALIVEs it sent but the
//! speaker did not read yet.
//!
//! The speaker under test (127.0.21.1) has two sessions with hold time 3 s: another speaker
//! in process (127.0.21.2), idle, and a peer played by the test (127.0.21.3) that floods
//! 1,500 UPDATEs (more than the old 1,024-message channel, more than a peer's share of the
//! RIB's input budget) while the RIB task is blocked for 6 s, twice the hold time.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;
use std::time::{Duration, Instant};

use bgp_proto::wire::Inbound;
use bgp_proto::{AsPath, Message, Nlri, Origin, PathAttributes, Update};
use interop::raw_peer::{RawPeer, RawSession};

use crate::config::{self, Originate, PeerConfig};
use crate::{PeerState, RouteQuery, Speaker, SpeakerOptions, Table};

const PORT: u16 = 11191;
const HOLD: u16 = 3;
const STALL: Duration = Duration::from_secs(6);
const MESSAGES: u32 = 1_500;
const PREFIXES: u32 = 400;

fn addr(host: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 21, host))
}

fn speaker_config(host: u8) -> config::Config {
    config::from_str(
        &format!(
            "[global]\nasn = 64512\nrouter_id = \"10.21.0.{host}\"\nlisten = [\"127.0.21.{host}:{PORT}\"]\n\
             [global.control]\nenabled = false\n[global.graceful_restart]\nenabled = false\n\
             [policies.all]\ndefault = \"accept\"\n"
        ),
        Path::new("test.toml"),
    )
    .expect("config")
}

fn peer(name: &str, host: u8, local: u8, passive: bool) -> PeerConfig {
    let mut p = PeerConfig::new(name, addr(host), 64512);
    p.port = PORT;
    p.source_address = Some(addr(local));
    p.passive = passive;
    p.connect_retry = 1;
    p.hold_time = HOLD;
    p.keepalive = 1;
    p.graceful_restart.enabled = false;
    p.import = vec!["all".into()];
    p.export = vec!["all".into()];
    p
}

/// The flood's UPDATE number `i`: the same /24s each time, MED = `i`.
fn flood_update(i: u32) -> Update {
    let attributes = PathAttributes {
        origin: Some(Origin::Igp),
        as_path: Some(AsPath::default()),
        next_hop: Some(Ipv4Addr::new(127, 0, 21, 3)),
        local_pref: Some(100),
        med: Some(i),
        ..PathAttributes::default()
    };
    let nlri = (0..PREFIXES)
        .map(|n| {
            let net =
                ipnet::Ipv4Net::new(Ipv4Addr::from(0x0A16_0000 + (n << 8)), 24).expect("prefix");
            Nlri::new(net.into())
        })
        .collect();
    Update {
        attributes,
        nlri,
        ..Update::default()
    }
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(120) {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn session(s: &Speaker, name: &str) -> (PeerState, u64) {
    s.peers()
        .await
        .expect("peers")
        .into_iter()
        .find(|p| p.config.name == name)
        .map(|p| (p.state, p.counters.established_transitions))
        .expect("peer exists")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stalled_rib_drops_no_session() {
    let dut = Speaker::start(speaker_config(1), SpeakerOptions::default())
        .await
        .expect("speaker under test");
    let healthy = Speaker::start(speaker_config(2), SpeakerOptions::default())
        .await
        .expect("healthy peer");
    dut.add_peer(peer("healthy", 2, 1, true))
        .await
        .expect("add");
    dut.add_peer(peer("raw", 3, 1, true)).await.expect("add");
    healthy
        .add_peer(peer("dut", 1, 2, false))
        .await
        .expect("add");
    let block: ipnet::IpNet = "10.21.255.0/24".parse().expect("prefix");
    dut.advertise(Originate::new(block))
        .await
        .expect("originate");

    let raw_peer = RawPeer::new(64512, Ipv4Addr::new(10, 21, 0, 3), HOLD);
    let mut raw = tokio::task::spawn_blocking(move || {
        let mut s = RawSession::connect(None, Some(addr(3)), SocketAddr::new(addr(1), PORT))
            .expect("connect");
        s.establish(&raw_peer, Duration::from_secs(30))
            .expect("raw session established");
        s
    })
    .await
    .expect("raw peer");
    raw.keepalives(Duration::from_secs(1));
    wait_until("both sessions Established", || async {
        session(&dut, "healthy").await.0 == PeerState::Established
            && session(&dut, "raw").await.0 == PeerState::Established
    })
    .await;

    // Stall the RIB, then flood it.
    dut.stall_rib(STALL).await.expect("stall");
    let stalled_at = Instant::now();
    let sender = raw.sender();
    let flood = std::thread::spawn(move || {
        for i in 0..MESSAGES {
            sender
                .send(&Message::Update(flood_update(i)))
                .expect("flood UPDATE");
        }
    });
    // The speaker keeps sending KEEPALIVEs to the flooding peer all along.
    let raw = tokio::task::spawn_blocking(move || {
        let mut last = Instant::now();
        let mut longest = Duration::ZERO;
        while stalled_at.elapsed() < STALL + Duration::from_secs(2) {
            match raw.next_frame(Duration::from_secs(u64::from(HOLD) * 2)) {
                Ok(Some(f)) => {
                    if matches!(raw.decode(&f), Ok(Inbound::Keepalive)) {
                        longest = longest.max(f.at.duration_since(last));
                        last = f.at;
                    }
                    if let Ok(Inbound::Notification(n)) = raw.decode(&f) {
                        panic!("the speaker closed the flooding session: {n}");
                    }
                }
                Ok(None) => panic!("the speaker closed the flooding session"),
                Err(e) => panic!("no message from the speaker for two hold times: {e}"),
            }
        }
        assert!(
            longest < Duration::from_secs(u64::from(HOLD)),
            "KEEPALIVEs stopped for {longest:?} while the RIB stalled"
        );
        raw
    })
    .await
    .expect("keepalives kept coming");
    flood.join().expect("flood sent");

    // Every session survived, and the RIB took the whole flood once it ran again.
    for name in ["healthy", "raw"] {
        assert_eq!(
            session(&dut, name).await,
            (PeerState::Established, 1),
            "{name} stayed up"
        );
    }
    assert_eq!(session(&healthy, "dut").await, (PeerState::Established, 1));
    wait_until("the flood's last UPDATE applied", || async {
        let routes = dut
            .routes(RouteQuery {
                peer: Some("raw".into()),
                table: Table::In,
                ..RouteQuery::default()
            })
            .await
            .expect("routes");
        routes.len() == PREFIXES as usize && routes.iter().all(|r| r.med == Some(MESSAGES - 1))
    })
    .await;
    assert!(healthy
        .best_routes()
        .await
        .expect("routes")
        .iter()
        .any(|r| r.prefix == block));
    drop(raw);
    dut.shutdown("test over").await;
    healthy.shutdown("test over").await;
}

/// Health checks are answered while the RIB is stalled: from the last complete answer,
/// within two seconds, with the component `rib` reported down. bgpd's BIRD-compatible
/// `show status` is made from this answer alone (and renders a down component as a line
/// calico-node's readiness probe refuses), so calico-node's liveness probe keeps passing
/// and its readiness probe says why the node is not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn status_answers_in_time_while_the_rib_is_stalled() {
    let s = Speaker::start(speaker_config(4), SpeakerOptions::default())
        .await
        .expect("speaker");
    s.add_peer(peer("p", 5, 4, true)).await.expect("add");
    let before = s.status().await.expect("status");
    assert!(before.components.iter().all(|c| c.down.is_none()));
    assert_eq!(s.peers().await.expect("peers").len(), 1);
    s.stall_rib(Duration::from_secs(9)).await.expect("stall");
    let stalled = Instant::now();
    let t = Instant::now();
    let during = s.status().await.expect("status while stalled");
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    let rib = during
        .components
        .iter()
        .find(|c| c.name == "rib")
        .expect("the RIB reported");
    assert!(rib.down.as_deref().is_some_and(|r| r.contains("busy")));
    assert_eq!(during.router_id, before.router_id, "the last answer");
    assert_eq!(s.peers().await.expect("peers while stalled").len(), 1);
    assert!(
        stalled.elapsed() < Duration::from_secs(9),
        "all of it during the stall"
    );
    // Once the RIB answers again, so does the status, and the component is up.
    tokio::time::sleep(Duration::from_secs(9).saturating_sub(stalled.elapsed())).await;
    let after = s.status().await.expect("status");
    assert!(
        after.components.iter().all(|c| c.down.is_none()),
        "{:?}",
        after.components
    );
    s.shutdown("test over").await;
}
