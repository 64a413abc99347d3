//! The reconciler's rules, one scenario each, against the model kernel (no root): conflicts
//! with other protocols' routes, retries with backoff, make-before-break metric changes,
//! ECMP, adoption and the stale sweep, recovery after a channel failure or lost answers,
//! changes racing answers in flight, routes removed behind our back, devices that appear.

use std::time::Duration;

use super::super::{ApplyReport, FibAction, FibNextHop, FibOp, FibRoute, NextHopMode, RouteOp};
use super::model::*;
use crate::config::{ExportConfig, RT_TABLE_MAIN};
use crate::installer::form::form_for_tests;
use crate::types::{KernelEvent, KernelRoute, RouteKind};

fn cfg(initial_ms: u64, max_ms: u64) -> ExportConfig {
    ExportConfig {
        retry_initial_ms: initial_ms,
        retry_max_ms: max_ms,
        ..ExportConfig::default()
    }
}

fn report(
    added: usize,
    replaced: usize,
    deleted: usize,
    unchanged: usize,
    failed: usize,
) -> ApplyReport {
    ApplyReport {
        added,
        replaced,
        deleted,
        unchanged,
        failed,
    }
}

#[test]
fn installs_then_the_same_routes_need_no_write() {
    let mut h = Harness::open(ExportConfig::default(), ModelKernel::default());
    let ops = vec![
        fwd("10.1.0.0/24", &["10.0.0.2"], Some(100)),
        fwd("10.2.0.0/24", &["10.0.0.3", "10.0.0.2"], Some(100)),
        blackhole("10.3.0.0/26"),
    ];
    assert_eq!(h.apply(ops.clone()), report(3, 0, 0, 0, 0));
    let ours = h.kernel.ours();
    assert_eq!(ours.len(), 3);
    assert_eq!(
        ours[&net("10.2.0.0/24")][0].hops().len(),
        2,
        "one ECMP route"
    );
    assert_eq!(
        ours[&net("10.3.0.0/26")][0].metric(),
        1024,
        "default metric"
    );
    // The kernel chose the device: still what we want, no write.
    h.take_sent();
    assert_eq!(h.apply(ops), report(0, 0, 0, 3, 0));
    assert!(h.take_sent().is_empty());
    assert!(h.rec.is_installed(&net("10.1.0.0/24")));
}

#[test]
fn next_hop_changes_replace_in_place_and_metric_changes_make_before_break() {
    let mut h = Harness::open(ExportConfig::default(), ModelKernel::default());
    h.apply(vec![fwd(
        "10.1.0.0/24",
        &["10.0.0.2", "10.0.0.3"],
        Some(100),
    )]);
    h.take_sent();
    // ECMP → single path: same key, replaced in place.
    assert_eq!(
        h.apply(vec![fwd("10.1.0.0/24", &["10.0.0.3"], Some(100))]),
        report(0, 1, 0, 0, 0)
    );
    assert!(matches!(h.take_sent()[..], [ref r] if matches!(r.op, RouteOp::Replace(_))));
    // A LOCAL_PREF change moves the route to a new key: add the new route, and only once
    // that is acknowledged delete the old one.
    h.rec.take_report();
    h.rec
        .apply(vec![fwd("10.1.0.0/24", &["10.0.0.3"], Some(200))]);
    assert_eq!(h.send(10), 1);
    assert!(matches!(&h.sent[0].op, RouteOp::Add(f) if f.metric() == metric(200)));
    assert_eq!(h.send(10), 0, "nothing else before the answer");
    h.deliver(1);
    assert_eq!(h.send(10), 1);
    assert_eq!(
        h.sent[1].op,
        RouteOp::Delete {
            metric: metric(100)
        }
    );
    h.deliver(1);
    assert_eq!(h.rec.take_report(), report(1, 0, 1, 0, 0));
    let ours = h.kernel.ours();
    assert_eq!(ours[&net("10.1.0.0/24")].len(), 1);
    assert_eq!(ours[&net("10.1.0.0/24")][0].metric(), metric(200));
}

#[test]
fn another_protocols_route_is_never_touched_and_is_retried_with_backoff() {
    let mut kernel = ModelKernel::default();
    kernel.add_foreign("10.80.0.0/24", metric(100));
    let mut h = Harness::open(cfg(100, 1_000), kernel);
    let before = h.kernel.foreign();
    assert_eq!(
        h.apply(vec![
            fwd("10.80.0.0/24", &["10.0.0.2"], Some(100)),
            withdraw("10.82.0.0/26"), // never ours: nothing to do
        ]),
        report(0, 0, 0, 0, 1)
    );
    assert_eq!(h.rec.pending_count(), 1);
    assert!(!h.rec.is_installed(&net("10.80.0.0/24")));
    // Retries at 100, 200, 400, 800, 1000, 1000 ms: refused each time, Felix's route kept.
    let mut waits = Vec::new();
    for _ in 0..6 {
        let at = h.rec.poll_retry_at().expect("retry scheduled");
        waits.push(at.duration_since(h.now).as_millis());
        let r = h.advance(at.duration_since(h.now));
        assert_eq!(r.failed, 1);
    }
    assert_eq!(waits, [100, 200, 400, 800, 1_000, 1_000]);
    assert_eq!(h.kernel.foreign(), before);
    // Felix removes its route: the next retry installs ours.
    h.kernel.routes.clear();
    h.until_no_retry(1);
    assert!(h.rec.is_installed(&net("10.80.0.0/24")));
    assert_eq!(h.rec.pending_count(), 0);
    assert_eq!(h.rec.poll_retry_at(), None);
}

#[test]
fn withdrawing_a_conflicting_route_stops_its_retries() {
    let mut kernel = ModelKernel::default();
    kernel.add_foreign("2001:db8:80::/64", metric(100));
    let mut h = Harness::open(cfg(0, 0), kernel);
    h.apply(vec![fwd("2001:db8:80::/64", &["fd00::2"], Some(100))]);
    assert_eq!(h.rec.pending_count(), 1);
    assert_eq!(
        h.apply(vec![withdraw("2001:db8:80::/64")]),
        report(0, 0, 0, 0, 0)
    );
    assert_eq!(h.rec.pending_count(), 0);
    assert_eq!(h.rec.poll_retry_at(), None);
    assert_eq!(h.kernel.foreign().len(), 1, "theirs stays");
    assert!(h.rec.is_empty());
}

#[test]
fn adopted_routes_stay_until_refreshed_or_swept() {
    let mut kernel = ModelKernel::default();
    for (p, gw) in [
        ("10.90.1.0/24", "10.0.0.2"),
        ("10.90.2.0/24", "10.0.0.2"),
        ("10.90.3.0/24", "10.0.0.2"),
    ] {
        kernel.add_ours(
            net(p),
            form_for_tests(metric(100), &[(gw, KERNEL_DEVICE, false)]),
        );
    }
    kernel.add_ours(
        net("10.90.4.0/24"),
        form_for_tests(
            metric(100),
            &[
                ("10.0.0.2", KERNEL_DEVICE, false),
                ("10.0.0.3", KERNEL_DEVICE, false),
            ],
        ),
    );
    let mut h = Harness::open(ExportConfig::default(), kernel);
    assert_eq!(h.rec.stale_count(), 4);
    assert!(h.take_sent().is_empty(), "adoption writes nothing");
    // Re-learned unchanged (ECMP in another order too), re-learned changed, not re-learned.
    assert_eq!(
        h.apply(vec![
            fwd("10.90.1.0/24", &["10.0.0.2"], Some(100)),
            fwd("10.90.2.0/24", &["10.0.0.3"], Some(100)),
            fwd("10.90.4.0/24", &["10.0.0.3", "10.0.0.2"], Some(100)),
        ]),
        report(0, 1, 0, 2, 0)
    );
    assert_eq!(h.rec.stale_count(), 1);
    h.rec.sweep_stale();
    h.run();
    assert_eq!(h.rec.take_report(), report(0, 0, 1, 0, 0));
    let ours = h.kernel.ours();
    assert_eq!(
        ours.keys().copied().collect::<Vec<_>>(),
        [
            net("10.90.1.0/24"),
            net("10.90.2.0/24"),
            net("10.90.4.0/24")
        ]
    );
    assert_eq!(h.rec.stale_count(), 0);
}

#[test]
fn two_routes_of_ours_for_one_prefix_keep_the_preferred() {
    let mut kernel = ModelKernel::default();
    kernel.add_ours(
        net("10.5.0.0/24"),
        form_for_tests(300, &[("10.0.0.2", 2, false)]),
    );
    kernel.add_ours(
        net("10.5.0.0/24"),
        form_for_tests(200, &[("10.0.0.2", 2, false)]),
    );
    let mut h = Harness::open(ExportConfig::default(), kernel);
    assert_eq!(h.rec.stale_count(), 1);
    h.run();
    assert_eq!(h.rec.take_report().deleted, 1, "the other one deleted");
    let ours = h.kernel.ours();
    assert_eq!(ours[&net("10.5.0.0/24")].len(), 1);
    assert_eq!(ours[&net("10.5.0.0/24")][0].metric(), 200);
}

#[test]
fn flush_deletes_ours_only() {
    let mut kernel = ModelKernel::default();
    kernel.add_foreign("10.81.0.0/24", 1024);
    let mut h = Harness::open(ExportConfig::default(), kernel);
    h.apply(vec![
        fwd("10.81.0.0/24", &["10.0.0.2"], Some(100)),
        blackhole("10.82.0.0/26"),
    ]);
    h.rec.flush();
    h.run();
    assert_eq!(h.rec.take_report().deleted, 2);
    assert!(h.kernel.ours().is_empty());
    assert_eq!(h.kernel.foreign().len(), 1);
    assert!(h.rec.is_empty());
}

#[test]
fn a_change_racing_an_answer_is_sent_after_it() {
    let mut h = Harness::open(ExportConfig::default(), ModelKernel::default());
    h.rec
        .apply(vec![fwd("10.1.0.0/24", &["10.0.0.2"], Some(100))]);
    assert_eq!(h.send(10), 1);
    // The RIB changes its mind while the add is in flight: one request per prefix at a time.
    h.rec
        .apply(vec![fwd("10.1.0.0/24", &["10.0.0.9"], Some(100))]);
    assert_eq!(h.send(10), 0);
    assert_eq!(h.rec.in_flight_count(), 1);
    h.deliver(1);
    assert_eq!(h.send(10), 1);
    assert!(
        matches!(&h.sent[1].op, RouteOp::Replace(f) if f.hops()[0].gateway.to_string() == "10.0.0.9")
    );
    h.deliver(1);
    // Then a withdraw racing the next change.
    h.rec
        .apply(vec![fwd("10.1.0.0/24", &["10.0.0.5"], Some(100))]);
    assert_eq!(h.send(10), 1);
    h.rec.apply(vec![withdraw("10.1.0.0/24")]);
    h.deliver(1);
    h.run();
    assert!(h.kernel.ours().is_empty());
    assert!(h.rec.is_empty());
}

#[test]
fn a_refusal_racing_a_withdraw_leaves_nothing_behind() {
    let mut h = Harness::open(cfg(50, 1_000), ModelKernel::default());
    h.rec
        .apply(vec![fwd("10.1.0.0/24", &["10.0.0.2"], Some(100))]);
    h.kernel.refuse_next = Some(libc::ENETUNREACH);
    assert_eq!(h.send(10), 1);
    h.rec.apply(vec![withdraw("10.1.0.0/24")]);
    h.deliver(1);
    h.run();
    assert_eq!(h.rec.pending_count(), 0);
    assert_eq!(h.rec.poll_retry_at(), None);
    assert!(h.rec.is_empty());
}

#[test]
fn a_route_removed_behind_our_back_is_rewritten() {
    let mut h = Harness::open(ExportConfig::default(), ModelKernel::default());
    h.apply(vec![
        fwd("10.76.0.0/24", &["10.0.0.2"], Some(100)),
        fwd("10.76.1.0/24", &["10.0.0.2"], Some(100)),
    ]);
    // Our own withdraw: its notification must not bring the route back.
    h.apply(vec![withdraw("10.76.1.0/24")]);
    let own = KernelEvent::OwnRouteRemoved(KernelRoute {
        prefix: net("10.76.1.0/24"),
        kind: RouteKind::Unicast,
        protocol: OURS,
        metric: metric(100),
        table: RT_TABLE_MAIN,
        ifname: None,
        gateway: None,
        nexthops: Vec::new(),
    });
    h.rec.handle_event(&own, h.now);
    // Someone else deletes 10.76.0.0/24.
    for ev in h.kernel.delete_ours_behind_our_back(net("10.76.0.0/24")) {
        h.rec.handle_event(&ev, h.now);
    }
    assert_eq!(h.rec.pending_count(), 1);
    assert_eq!(h.rec.poll_retry_at(), Some(h.now), "due right away");
    assert_eq!(h.advance(Duration::ZERO), report(0, 1, 0, 0, 0));
    let ours = h.kernel.ours();
    assert!(ours.contains_key(&net("10.76.0.0/24")));
    assert!(!ours.contains_key(&net("10.76.1.0/24")));
}

#[test]
fn a_tunnel_route_waits_for_its_device() {
    let mut h = Harness::open(cfg(0, 0), ModelKernel::default());
    let tunnel = FibOp::Install(FibRoute {
        prefix: net("10.75.0.0/26"),
        action: FibAction::Forward(vec![FibNextHop {
            gateway: "192.168.9.9".parse().unwrap(),
            mode: NextHopMode::Tunnel,
            device: None,
        }]),
        local_pref: Some(100),
    });
    h.rec.apply(vec![tunnel]);
    assert!(
        h.rec.poll_links(),
        "an unknown device: the links are read again"
    );
    h.run();
    assert_eq!(h.rec.take_report(), report(0, 0, 0, 0, 1));
    assert_eq!(h.rec.pending_count(), 1);
    assert_eq!(h.advance(Duration::ZERO), report(0, 0, 0, 0, 0));
    assert_eq!(h.rec.pending_count(), 1, "still waiting, not dropped");
    assert!(h.kernel.ours().is_empty());
    // The device appears in the kernel (no event: the re-read finds it).
    h.links.push(crate::types::Link {
        index: TUNNEL_IFINDEX,
        name: "tunl0".into(),
        up: true,
    });
    assert_eq!(h.advance(Duration::ZERO).added, 1);
    assert_eq!(h.rec.pending_count(), 0);
    let f = &h.kernel.ours()[&net("10.75.0.0/26")][0];
    assert_eq!(
        (f.hops()[0].ifindex, f.hops()[0].onlink),
        (TUNNEL_IFINDEX, true)
    );
}

#[test]
fn a_channel_failure_holds_writes_until_a_dump_reconciles_everything() {
    let mut h = Harness::open(cfg(100, 1_000), ModelKernel::default());
    h.apply(
        (0..10)
            .map(|i| fwd(&format!("10.0.{i}.0/24"), &["10.0.0.2"], Some(100)))
            .collect(),
    );
    // A window of 20 is sent; the kernel processed half of it, then the channel broke.
    h.take_sent();
    h.rec
        .apply((10..30).map(|i| fwd(&format!("10.0.{i}.0/24"), &["10.0.0.2"], Some(100))));
    for _ in 0..20 {
        let Some(req) = h.rec.poll_transmit(h.now) else {
            panic!("twenty requests")
        };
        if h.sent.len() < 10 {
            h.kernel.execute(&req);
        }
        h.sent.push(req);
    }
    h.rec.handle_channel_error("injected".into(), h.now);
    assert_eq!(h.rec.is_recovering(), Some("injected"));
    assert_eq!(h.rec.in_flight_count(), 0);
    // Nothing is written into a kernel we no longer know, even new changes.
    h.rec
        .apply(vec![fwd("10.1.0.0/24", &["10.0.0.2"], Some(100))]);
    assert!(h.rec.poll_transmit(h.now).is_none());
    assert!(!h.rec.poll_dump(), "not before its time");
    assert_eq!(
        h.rec.poll_retry_at(),
        Some(h.now),
        "first recovery right away"
    );
    h.rec.take_report();
    let r = h.advance(Duration::ZERO);
    assert_eq!(r.added, 11, "the lost half and the new change: {r:?}");
    assert_eq!(r.unchanged, 20);
    assert_eq!(h.rec.is_recovering(), None);
    assert_eq!(h.kernel.ours().len(), 31);
}

#[test]
fn a_failing_recovery_backs_off_then_succeeds() {
    let mut h = Harness::open(cfg(100, 1_000), ModelKernel::default());
    h.rec.apply(vec![blackhole("10.9.0.0/26")]);
    assert_eq!(h.send(10), 1);
    h.held.clear();
    h.rec.handle_channel_error("first".into(), h.now);
    // The recovery's dump is taken, then its writes fail too.
    h.rec.handle_timeout(h.now);
    assert!(h.rec.poll_dump());
    h.rec.handle_dump(h.kernel.dump());
    h.rec.apply(vec![blackhole("10.9.1.0/26")]);
    assert!(h.rec.poll_transmit(h.now).is_some());
    h.rec.handle_channel_error("second".into(), h.now);
    assert_eq!(h.rec.is_recovering(), Some("second"));
    let wait = h
        .rec
        .poll_retry_at()
        .expect("scheduled")
        .duration_since(h.now);
    assert_eq!(wait, Duration::from_millis(200));
    h.rec.handle_channel_error("third".into(), h.now);
    h.advance(wait);
    assert_eq!(h.rec.is_recovering(), None);
    assert_eq!(h.kernel.ours().len(), 2);
}

#[test]
fn lost_answers_are_read_back_before_anything_more_is_written() {
    let mut h = Harness::open(ExportConfig::default(), ModelKernel::default());
    h.rec
        .apply((0..4).map(|i| blackhole(&format!("10.4.{i}.0/26"))));
    assert_eq!(h.send(2), 2);
    assert_eq!(h.send(2), 2);
    // The acknowledgements of the first two overran.
    for (id, _) in h.held.drain(..2).collect::<Vec<_>>() {
        h.rec.handle_lost(id);
    }
    h.rec.apply(vec![blackhole("10.4.9.0/26")]);
    assert!(h.rec.poll_transmit(h.now).is_none(), "held until the dump");
    assert!(!h.rec.poll_dump(), "not while answers are still due");
    h.deliver(2);
    assert!(h.rec.poll_dump());
    h.rec.take_report();
    h.run();
    let r = h.rec.take_report();
    assert_eq!((r.added, r.unchanged), (1, 4), "{r:?}");
    assert_eq!(h.kernel.ours().len(), 5);
}

#[test]
fn a_refused_orphan_delete_is_retried() {
    let mut h = Harness::open(cfg(100, 1_000), ModelKernel::default());
    h.apply(vec![fwd("10.1.0.0/24", &["10.0.0.2"], Some(100))]);
    h.rec
        .apply(vec![fwd("10.1.0.0/24", &["10.0.0.2"], Some(200))]);
    assert_eq!(h.send(1), 1);
    h.deliver(1);
    h.kernel.refuse_next = Some(libc::EBUSY);
    assert_eq!(h.send(1), 1, "the old metric's delete");
    h.deliver(1);
    assert_eq!(h.kernel.ours()[&net("10.1.0.0/24")].len(), 2);
    let at = h.rec.poll_retry_at().expect("orphan retry");
    assert_eq!(at.duration_since(h.now), Duration::from_millis(100));
    assert_eq!(h.advance(Duration::from_millis(100)).deleted, 1);
    assert_eq!(h.kernel.ours()[&net("10.1.0.0/24")].len(), 1);
    assert_eq!(h.rec.poll_retry_at(), None);
}

// The cases below were found by the convergence property test (convergence.rs).

fn tunnel_route(prefix: &str, gateway: &str) -> FibOp {
    FibOp::Install(FibRoute {
        prefix: net(prefix),
        action: FibAction::Forward(vec![FibNextHop {
            gateway: gateway.parse().unwrap(),
            mode: NextHopMode::Tunnel,
            device: None,
        }]),
        local_pref: None,
    })
}

#[test]
fn an_unresolvable_change_is_not_preceded_by_the_earlier_one_of_its_batch() {
    let mut h = Harness::open(cfg(100, 1_000), ModelKernel::default());
    // The RIB moved past the blackhole within the batch: it must not be written.
    h.apply(vec![
        blackhole("10.0.0.0/24"),
        tunnel_route("10.0.0.0/24", "10.0.0.2"),
    ]);
    assert!(h.kernel.ours().is_empty());
    assert_eq!(h.rec.pending_count(), 1);
    h.link_up(TUNNEL_IFINDEX, "tunl0");
    h.until_no_retry(3);
    let f = &h.kernel.ours()[&net("10.0.0.0/24")][0];
    assert_eq!(
        (f.is_blackhole(), f.hops()[0].ifindex),
        (false, TUNNEL_IFINDEX)
    );
}

#[test]
fn a_route_waiting_for_its_device_keeps_its_retry_through_a_recovery() {
    let mut kernel = ModelKernel::default();
    kernel.add_ours(net("2001:db8:1::/64"), form_for_tests(1024, &[]));
    let mut h = Harness::open(cfg(100, 1_000), kernel);
    h.rec
        .apply(vec![tunnel_route("2001:db8:1::/64", "fd00::2")]);
    h.rec.handle_channel_error("injected".into(), h.now);
    h.run();
    // The recovery's dump finds the old route in line with what is kept meanwhile: that
    // must not end the wait for the device.
    h.advance(Duration::ZERO);
    assert_eq!(h.rec.is_recovering(), None);
    assert_eq!(h.rec.pending_count(), 1);
    h.link_up(TUNNEL_IFINDEX, "tunl0");
    h.until_no_retry(3);
    let f = &h.kernel.ours()[&net("2001:db8:1::/64")][0];
    assert_eq!((f.is_blackhole(), f.hops()[0].onlink), (false, true));
}

#[test]
fn a_removal_reported_while_our_write_is_in_flight_is_checked_after_it() {
    let mut h = Harness::open(ExportConfig::default(), ModelKernel::default());
    h.rec.apply(vec![blackhole("10.0.3.0/32")]);
    assert_eq!(h.send(1), 1);
    // Removed right after the kernel took our add, before its answer reached us.
    for ev in h.kernel.delete_ours_behind_our_back(net("10.0.3.0/32")) {
        h.rec.handle_event(&ev, h.now);
    }
    h.run();
    h.until_no_retry(3);
    assert!(h.kernel.ours().contains_key(&net("10.0.3.0/32")));
    assert_eq!(h.rec.pending_count(), 0);
}

#[test]
fn a_removal_reported_while_our_delete_is_pending_is_remembered() {
    let mut kernel = ModelKernel::default();
    kernel.add_ours(net("10.0.3.0/32"), form_for_tests(1024, &[]));
    let mut h = Harness::open(ExportConfig::default(), kernel);
    h.rec.sweep_stale();
    // Someone else deletes it before our delete went out; then the RIB wants it again.
    for ev in h.kernel.delete_ours_behind_our_back(net("10.0.3.0/32")) {
        h.rec.handle_event(&ev, h.now);
    }
    assert_eq!(h.apply(vec![blackhole("10.0.3.0/32")]).replaced, 1);
    assert!(h.kernel.ours().contains_key(&net("10.0.3.0/32")));
}
