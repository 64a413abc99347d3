//! The embedding API in process: two speakers on loopback addresses, driven only through
//! [`Speaker`] methods.

use std::net::IpAddr;
use std::time::Duration;

use bgp_speaker::config::policy::Verdict;
use bgp_speaker::config::{
    Config, ConfigBuilder, GracefulRestartConfig, Originate, PeerConfig, PolicyDef,
};
use bgp_speaker::{Owner, PeerState, RouteChange, Speaker, SpeakerError, SpeakerOptions};
use ipnet::IpNet;

const PORT: u16 = 11190;

fn builder(host: u8) -> ConfigBuilder {
    let addr = format!("127.0.20.{host}:{PORT}").parse().expect("addr");
    Config::builder(64512, format!("10.20.0.{host}").parse().expect("id"))
        .listen([addr])
        .graceful_restart(GracefulRestartConfig {
            enabled: false,
            ..GracefulRestartConfig::default()
        })
        .policy("all", PolicyDef::all(Verdict::Accept))
        .policy("none", PolicyDef::all(Verdict::Reject))
}

fn cfg(host: u8) -> Config {
    builder(host).build().expect("config")
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
        Err(SpeakerError::PeerExists(_))
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

    // A reload keeps what the API added: the configuration's own peer comes and goes,
    // the API's session is not touched. Each side changes only its own.
    let mut waiting = peer("c", 3, 2, true);
    waiting.import = vec!["all".into()];
    b.apply_config(builder(2).peer(waiting).build().expect("config"))
        .await
        .expect("reload with c");
    let owners: Vec<_> = b
        .peers()
        .await
        .expect("peers")
        .into_iter()
        .map(|p| (p.config.name, p.owner))
        .collect();
    assert_eq!(
        owners,
        [
            ("a".to_string(), Owner::Api),
            ("c".to_string(), Owner::Config)
        ]
    );
    assert!(matches!(
        b.remove_peer("c").await,
        Err(SpeakerError::ConfiguredPeer(n)) if n == "c"
    ));
    let clash = builder(2)
        .peer(peer("a", 1, 2, true))
        .build()
        .expect("config");
    assert!(matches!(
        b.apply_config(clash).await,
        Err(SpeakerError::ApiPeer(n)) if n == "a"
    ));
    let clash = builder(1)
        .originate(Originate::new(block))
        .build()
        .expect("config");
    assert!(matches!(
        a.apply_config(clash).await,
        Err(SpeakerError::ApiRoute(p)) if p == block
    ));
    b.apply_config(cfg(2)).await.expect("reload without c");
    assert_eq!(
        state(&b, "c").await,
        None,
        "the configuration's peer is gone"
    );
    assert_eq!(state(&b, "a").await, Some(PeerState::Established));
    assert_eq!(
        transitions(&b, "a").await,
        2,
        "the API's session is untouched"
    );
    assert!(b
        .best_routes()
        .await
        .expect("best")
        .iter()
        .any(|r| r.prefix == block));

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
        Err(SpeakerError::NoSuchPeer(_))
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
        Err(SpeakerError::Stopped)
    ));
}

/// Peers started together: the first connection attempt is refused because the peer does
/// not listen yet. It is retried after about a second (doubling while refused and shorter
/// than the connect-retry time), so the session comes up soon after the peer starts
/// listening. The connect-retry time is 30 s here: waiting for it (22.5-30 s with jitter)
/// could not pass the bound.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_first_connect_is_retried_within_seconds() {
    let a = Speaker::start(cfg(11), SpeakerOptions::default())
        .await
        .expect("a");
    let mut to_b = peer("b", 12, 11, false);
    to_b.connect_retry = 30;
    a.add_peer(to_b).await.expect("add b");
    let started = std::time::Instant::now();

    // B starts listening a second later: A's first attempt was refused.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_ne!(state(&a, "b").await, Some(PeerState::Established));
    let b = Speaker::start(cfg(12), SpeakerOptions::default())
        .await
        .expect("b");
    b.add_peer(peer("a", 11, 12, true)).await.expect("add a");

    // Retries at ~1 s and ~3 s reach B; 15 s leaves room for a loaded machine.
    let mut up = false;
    while started.elapsed() < Duration::from_secs(15) {
        if state(&a, "b").await == Some(PeerState::Established) {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        up,
        "not Established {:?} after A started",
        started.elapsed()
    );
    eprintln!("Established {:?} after A started", started.elapsed());
    a.shutdown("test done").await;
    b.shutdown("test done").await;
}
