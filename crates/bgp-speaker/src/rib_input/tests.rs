//! Tests of the weighted RIB input channel (cfg(test) only).

use std::time::Duration;

use bgp_node::PeerIds;
use bgp_proto::wire::DecodedUpdate;
use bgp_proto::{Community, Nlri, Update};

use super::*;

/// `n` peers.
fn peers(n: usize) -> Vec<PeerId> {
    let mut ids = PeerIds::default();
    (0..n).map(|_| ids.allocate()).collect()
}

fn down() -> RibInput {
    RibInput::Down {
        graceful: false,
        reason: bgp_proto::session::DownReason::ConnectionClosed,
    }
}

fn update(prefixes: usize, communities: usize) -> RibInput {
    let nlri = (0..prefixes)
        .map(|i| {
            let p = format!("10.{}.{}.0/24", (i >> 8) & 0xff, i & 0xff);
            Nlri::new(p.parse().expect("prefix"))
        })
        .collect();
    let mut u = Update {
        nlri,
        ..Update::default()
    };
    u.attributes.communities = (0..communities)
        .map(|i| Community::new(64512, i as u16))
        .collect();
    RibInput::Update(Box::new(DecodedUpdate {
        update: u,
        treat_as_withdraw: None,
        discarded: Vec::new(),
    }))
}

/// Runs `deliver` until it has nothing more to hand over right now.
async fn deliver_ready(feed: &mut PeerFeed) {
    while feed.is_backlogged() {
        if tokio::time::timeout(Duration::from_millis(20), feed.deliver())
            .await
            .is_err()
        {
            return;
        }
    }
}

#[test]
fn weight_counts_every_prefix_and_attribute_list() {
    let small = weight(&update(10, 0));
    let big = weight(&update(10_000, 0));
    assert!(
        big >= small + 9_990 * std::mem::size_of::<Nlri>(),
        "{small} {big}"
    );
    let with_communities = weight(&update(10, 5_000));
    assert!(with_communities >= small + 4 * 5_000, "{with_communities}");
    assert!(weight(&down()) >= BASE_WEIGHT);
}

#[tokio::test]
async fn a_peer_is_held_at_its_share_while_others_deliver() {
    let w = weight(&down()) as u32;
    let [pa, pb] = peers(2)[..] else {
        unreachable!()
    };
    let (inputs, mut rx) = channel(Budget {
        total: 20 * w,
        per_peer: 3 * w,
    });
    let mut a = inputs.feed();
    let mut b = inputs.feed();
    for _ in 0..10 {
        a.push(pa, down());
    }
    deliver_ready(&mut a).await;
    assert!(a.is_backlogged(), "peer a is held at its share");
    b.push(pb, down());
    deliver_ready(&mut b).await;
    assert!(!b.is_backlogged(), "peer b still delivers");
    let mut got = Vec::new();
    while let Some(d) = rx.try_recv() {
        got.push(d);
    }
    let from_a = got.iter().filter(|d| d.peer == pa).count();
    assert_eq!(from_a, 3, "a's share holds three inputs");
    assert_eq!(got.len(), 4);
    // Once the RIB applied them (dropped), a's share is free again.
    got.clear();
    deliver_ready(&mut a).await;
    let mut more = 0;
    while rx.try_recv().is_some() {
        more += 1;
    }
    assert_eq!(more, 3);
}

#[tokio::test]
async fn the_total_budget_bounds_all_peers_and_is_served_in_turn() {
    let w = weight(&down()) as u32;
    let ids = peers(3);
    let (inputs, mut rx) = channel(Budget {
        total: 4 * w,
        per_peer: 2 * w,
    });
    let mut feeds: Vec<PeerFeed> = (0..3).map(|_| inputs.feed()).collect();
    for (f, id) in feeds.iter_mut().zip(&ids) {
        for _ in 0..2 {
            f.push(*id, down());
        }
    }
    for f in &mut feeds {
        deliver_ready(f).await;
    }
    let mut held = Vec::new();
    while let Some(d) = rx.try_recv() {
        held.push(d);
    }
    assert_eq!(held.len(), 4, "the channel never holds more than its total");
    assert!(feeds[2].is_backlogged(), "the third peer waits for room");
    // Its wait keeps its place: freeing room lets it through.
    let mut third = feeds.pop().expect("third feed");
    let waiter = tokio::spawn(async move {
        deliver_ready_blocking(&mut third).await;
        third
    });
    tokio::time::sleep(Duration::from_millis(20)).await;
    held.clear();
    let third = tokio::time::timeout(Duration::from_secs(5), waiter)
        .await
        .expect("third peer delivered once room was freed")
        .expect("task");
    assert!(!third.is_backlogged());
    let mut n = 0;
    while let Some(d) = rx.try_recv() {
        assert_eq!(Some(&d.peer), ids.get(2));
        n += 1;
    }
    assert_eq!(n, 2);
}

async fn deliver_ready_blocking(feed: &mut PeerFeed) {
    while feed.is_backlogged() {
        feed.deliver().await;
    }
}

#[tokio::test]
async fn an_interrupted_delivery_resumes_in_order() {
    let w = weight(&update(100, 0)) as u32;
    let pa = peers(1)[0];
    let (inputs, mut rx) = channel(Budget {
        total: 100 * w,
        per_peer: w,
    });
    let mut a = inputs.feed();
    for i in 0..5 {
        a.push(pa, update(100, i));
    }
    let mut order = Vec::new();
    for _ in 0..50 {
        // Cut every wait short, then let the RIB take what arrived.
        let _ = tokio::time::timeout(Duration::from_millis(5), a.deliver()).await;
        while let Some(d) = rx.try_recv() {
            if let RibInput::Update(update) = &d.input {
                order.push(update.update.attributes.communities.len());
            }
        }
        if !a.is_backlogged() {
            break;
        }
    }
    assert_eq!(order, vec![0, 1, 2, 3, 4]);
}

#[tokio::test]
async fn an_input_larger_than_a_share_still_passes() {
    let (inputs, mut rx) = channel(Budget {
        total: 4096,
        per_peer: 1024,
    });
    let mut a = inputs.feed();
    a.push(peers(1)[0], update(1000, 0));
    tokio::time::timeout(Duration::from_secs(5), a.deliver())
        .await
        .expect("delivered");
    assert!(rx.try_recv().is_some());
}
