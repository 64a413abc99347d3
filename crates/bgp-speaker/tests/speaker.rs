//! The embedding API in process: two speakers on loopback addresses, driven only through
//! [`Speaker`] methods.

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use bgp_speaker::config::{self, Originate, PeerConfig};
use bgp_speaker::{PeerState, RouteChange, Speaker, SpeakerOptions};
use ipnet::IpNet;

const PORT: u16 = 11190;

fn cfg(host: u8) -> config::Config {
    config::from_str(
        &format!(
            "[global]\nasn = 64512\nrouter_id = \"10.20.0.{host}\"\nlisten = [\"127.0.20.{host}:{PORT}\"]\n\
             [global.control]\nenabled = false\n[global.graceful_restart]\nenabled = false\n\
             [policies.all]\ndefault = \"accept\"\n[policies.none]\ndefault = \"reject\"\n"
        ),
        Path::new("test.toml"),
    )
    .expect("config")
}

fn peer(name: &str, host: u8, local: u8, passive: bool) -> PeerConfig {
    let addr: IpAddr = format!("127.0.20.{host}").parse().expect("addr");
    let mut p = PeerConfig::new(name, addr, 64512);
    p.port = PORT;
    p.source_address = Some(format!("127.0.20.{local}").parse().expect("addr"));
    p.passive = passive;
    p.connect_retry = 1;
    p.hold_time = 9;
    p.keepalive = 3;
    p.graceful_restart.enabled = false;
    p.import = vec!["all".into()];
    p.export = vec!["all".into()];
    p
}

async fn wait_until<F, Fut>(what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..600 {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("timed out waiting for {what}");
}

async fn state(s: &Speaker, name: &str) -> Option<PeerState> {
    s.peers()
        .await
        .expect("peers")
        .into_iter()
        .find(|p| p.config.name == name)
        .map(|p| p.state)
}

async fn transitions(s: &Speaker, name: &str) -> u64 {
    s.peers()
        .await
        .expect("peers")
        .into_iter()
        .find(|p| p.config.name == name)
        .map_or(0, |p| p.counters.established_transitions)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedding_api_end_to_end() {
    let a = Speaker::start(cfg(1), SpeakerOptions::default())
        .await
        .expect("a");
    let b = Speaker::start(cfg(2), SpeakerOptions::default())
        .await
        .expect("b");
    let mut changes = b.subscribe();

    a.add_peer(peer("b", 2, 1, false)).await.expect("add b");
    b.add_peer(peer("a", 1, 2, true)).await.expect("add a");
    assert!(matches!(
        a.add_peer(peer("b", 2, 1, false)).await,
        Err(bgp_speaker::SpeakerError::PeerExists(_))
    ));
    wait_until("established", || async {
        state(&a, "b").await == Some(PeerState::Established)
    })
    .await;

    // Advertise: b's subscribers see the best path with a's address as next hop.
    let block: IpNet = "10.20.1.0/26".parse().expect("prefix");
    a.advertise(Originate::new(block)).await.expect("advertise");
    let best = loop {
        match tokio::time::timeout(Duration::from_secs(60), changes.recv()).await {
            Ok(Ok(RouteChange::Best(r))) if r.prefix == block => break r,
            Ok(Ok(_)) => continue,
            other => panic!("no best-path change: {other:?}"),
        }
    };
    assert_eq!(
        best.next_hops,
        vec!["127.0.20.1".parse::<IpAddr>().expect("addr")]
    );
    assert!(b
        .best_routes()
        .await
        .expect("best")
        .iter()
        .any(|r| r.prefix == block));

    // A policy-only change is applied softly: the route goes away, the session stays.
    let mut strict = peer("a", 1, 2, true);
    strict.import = vec!["none".into()];
    b.update_peer(strict.clone()).await.expect("update");
    loop {
        match tokio::time::timeout(Duration::from_secs(60), changes.recv()).await {
            Ok(Ok(RouteChange::Removed(p))) if p == block => break,
            Ok(Ok(_)) => continue,
            other => panic!("no removal: {other:?}"),
        }
    }
    assert_eq!(transitions(&b, "a").await, 1, "no session reset");
    strict.import = vec!["all".into()];
    b.update_peer(strict).await.expect("update");
    wait_until("route back", || async {
        b.best_routes()
            .await
            .expect("best")
            .iter()
            .any(|r| r.prefix == block)
    })
    .await;
    assert_eq!(transitions(&b, "a").await, 1, "still no session reset");

    // A session parameter change restarts the session.
    let mut slower = peer("a", 1, 2, true);
    slower.hold_time = 30;
    slower.keepalive = 10;
    b.update_peer(slower).await.expect("update");
    wait_until("re-established", || async {
        transitions(&b, "a").await == 2 && state(&b, "a").await == Some(PeerState::Established)
    })
    .await;

    // Withdraw.
    a.withdraw(block).await.expect("withdraw");
    wait_until("withdrawn", || async {
        !b.best_routes()
            .await
            .expect("best")
            .iter()
            .any(|r| r.prefix == block)
    })
    .await;

    // Remove the peer: the other side is told (Cease / Peer De-configured).
    a.remove_peer("b").await.expect("remove");
    assert!(matches!(
        a.remove_peer("b").await,
        Err(bgp_speaker::SpeakerError::NoSuchPeer(_))
    ));
    wait_until("down at b", || async {
        b.peer("a")
            .await
            .expect("peer")
            .last_notification_received
            .is_some_and(|n| n.contains("6/3"))
    })
    .await;

    a.shutdown("test over").await;
    b.shutdown("test over").await;
    assert!(matches!(
        a.add_peer(peer("x", 9, 1, true)).await,
        Err(bgp_speaker::SpeakerError::Stopped)
    ));
}
