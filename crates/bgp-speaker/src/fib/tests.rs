//! Tests of the kernel FIB component (compiled only under `#[cfg(test)]`).

use super::export::*;
use super::import::*;
use super::*;
use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Mutex;

use bgp_kernel::KernelRoute;
use bgp_rib::{FibChange, LocalRoute};
use ipnet::IpNet;

use bgp_kernel::{KernelNextHop, RouteKind, RT_TABLE_MAIN};

fn hops(v: &[&str]) -> Vec<IpAddr> {
    v.iter().map(|s| s.parse().unwrap()).collect()
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

pub(super) fn rib_route(prefix: &str, nh: &[&str]) -> bgp_rib::FibRoute {
    bgp_rib::FibRoute {
        prefix: net(prefix),
        next_hops: hops(nh).into_iter().collect(),
        local_pref: 100,
        source: RouteSource::Bgp,
        no_install: false,
        metric: None,
        tunnel_device: None,
        install: None,
        ifname: None,
    }
}

#[test]
fn pending_keeps_latest_per_prefix_shares_forms_and_gives_memory_back() {
    let n = PENDING_KEEP as u32 * 2;
    let prefix = |i: u32| IpNet::new(std::net::Ipv4Addr::from(0x0a80_0000 + i).into(), 32);
    let mut p = Pending::default();
    let batch = (0..n)
        .map(|i| {
            let mut r = rib_route(
                "10.0.0.0/32",
                &[if i % 2 == 0 { "192.0.2.1" } else { "192.0.2.9" }],
            );
            r.prefix = prefix(i).unwrap();
            FibChange::Upsert(r)
        })
        .collect();
    p.merge(batch);
    // Two next-hop sets: two shared forms for all the prefixes.
    assert_eq!(p.forms.len(), 2);
    // The latest change of a prefix wins.
    // An IPv6 change goes to the other family's map and comes out of the same slices.
    p.merge(vec![
        FibChange::Remove(prefix(0).unwrap()),
        FibChange::Remove("2001:db8::/48".parse().unwrap()),
    ]);
    let n = n + 1;
    assert_eq!(p.len(), n as usize);
    let mut seen = HashSet::new();
    let mut withdrawn = 0;
    let mut slices = 0;
    while !p.is_empty() {
        let ops = p.take(1000);
        assert!(!ops.is_empty() && ops.len() <= 1000);
        slices += 1;
        for op in ops {
            if let FibOp::Withdraw(_) = op {
                withdrawn += 1;
            } else {
                assert_eq!(forward(&op).len(), 1);
            }
            assert!(seen.insert(op_prefix(&op)));
        }
    }
    assert_eq!(seen.len(), n as usize);
    assert_eq!(withdrawn, 2);
    assert!(seen.contains(&"2001:db8::/48".parse::<IpNet>().unwrap()));
    assert_eq!(slices, (n as usize).div_ceil(1000));
    // Applied: the maps and the forms are released.
    assert_eq!(p.v4.capacity(), 0);
    assert!(p.forms.is_empty());
}

fn forward(op: &FibOp) -> Vec<(IpAddr, NextHopMode)> {
    match op {
        FibOp::Install(bgp_kernel::FibRoute {
            action: FibAction::Forward(h),
            ..
        }) => h.iter().map(|h| (h.gateway, h.mode)).collect(),
        other => panic!("not a forward install: {other:?}"),
    }
}

#[test]
fn modes_from_policy() {
    let gw: IpAddr = "192.0.2.1".parse().unwrap();
    let mut r = rib_route("10.65.2.0/26", &["192.0.2.1"]);
    assert_eq!(forward(&fib_op(&r)), vec![(gw, NextHopMode::Direct)]);
    r.tunnel_device = Some("tunl0".into());
    assert_eq!(forward(&fib_op(&r)), vec![(gw, NextHopMode::Tunnel)]);
    r.install = Some(InstallMode::Onlink);
    assert_eq!(forward(&fib_op(&r)), vec![(gw, NextHopMode::Tunnel)]);
    r.install = Some(InstallMode::CrossSubnet);
    assert_eq!(forward(&fib_op(&r)), vec![(gw, NextHopMode::CrossSubnet)]);
    r.install = Some(InstallMode::Normal);
    assert_eq!(forward(&fib_op(&r)), vec![(gw, NextHopMode::Direct)]);
    match fib_op(&r) {
        FibOp::Install(k) => assert_eq!(k.local_pref, Some(100)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ecmp_set_is_one_multipath_install() {
    let r = rib_route("10.65.3.0/26", &["192.0.2.1", "192.0.2.3"]);
    let hops = forward(&fib_op(&r));
    assert_eq!(hops.len(), 2);
    assert!(hops.iter().all(|(_, m)| *m == NextHopMode::Direct));
}

#[test]
fn blackholes_and_advertise_only() {
    let mut block = rib_route("10.65.1.0/26", &[]);
    block.source = RouteSource::Static;
    assert!(matches!(
        fib_op(&block),
        FibOp::Install(bgp_kernel::FibRoute {
            action: FibAction::Blackhole,
            local_pref: None,
            ..
        })
    ));
    let mut bh = rib_route("10.65.9.0/26", &["192.0.2.1"]);
    bh.install = Some(InstallMode::Blackhole);
    assert!(matches!(
        fib_op(&bh),
        FibOp::Install(bgp_kernel::FibRoute {
            action: FibAction::Blackhole,
            ..
        })
    ));
    let mut svc = rib_route("10.96.0.0/12", &[]);
    svc.no_install = true;
    assert_eq!(fib_op(&svc), FibOp::Withdraw(net("10.96.0.0/12")));
    let mut pol = rib_route("10.65.4.0/26", &["192.0.2.1"]);
    pol.install = Some(InstallMode::NoInstall);
    assert_eq!(fib_op(&pol), FibOp::Withdraw(net("10.65.4.0/26")));
}

fn kroute(prefix: &str, proto: u8, metric: u32, dev: Option<&str>) -> KernelRoute {
    KernelRoute {
        prefix: net(prefix),
        kind: if dev.is_some() {
            RouteKind::Unicast
        } else {
            RouteKind::Blackhole
        },
        protocol: proto,
        metric,
        table: RT_TABLE_MAIN,
        ifname: dev.map(str::to_string),
        gateway: None,
        nexthops: dev
            .map(|d| KernelNextHop {
                gateway: None,
                ifindex: 5,
                ifname: Some(d.to_string()),
                onlink: false,
                weight: 1,
            })
            .into_iter()
            .collect(),
    }
}

fn originated(c: Option<LocalChange>) -> LocalRoute {
    match c {
        Some(LocalChange::Originate(r)) => *r,
        other => panic!("expected an originate, got {other:?}"),
    }
}

#[test]
fn kernel_routes_fold_to_lowest_metric() {
    let mut k = KernelRoutes::default();
    let normal = kroute("10.65.1.5/32", 3, 1024, Some("cali1"));
    let l = originated(k.added(normal.clone()));
    assert_eq!(l.source, RouteSource::Kernel);
    assert!(l.no_install);
    assert_eq!(l.kernel.ifname.as_deref(), Some("cali1"));
    assert_eq!(l.kernel.metric, Some(1024));
    assert_eq!(l.kernel.protocol, Some(3));
    // Same route again: nothing to tell the RIB.
    assert!(k.added(normal.clone()).is_none());
    // An elevated copy (live migration) is preferred.
    let elevated = kroute("10.65.1.5/32", 3, 512, Some("cali1"));
    assert_eq!(
        originated(k.added(elevated.clone())).kernel.metric,
        Some(512)
    );
    // Removing the non-preferred one changes nothing; removing the preferred falls back.
    assert!(k.removed(&normal).is_none());
    assert!(k.added(normal.clone()).is_none());
    assert_eq!(originated(k.removed(&elevated)).kernel.metric, Some(1024));
    assert!(matches!(
        k.removed(&normal),
        Some(LocalChange::Withdraw(p)) if p == net("10.65.1.5/32")
    ));
    // Unknown removals are ignored.
    assert!(k.removed(&normal).is_none());
    assert_eq!(k.len(), 0);
    assert!(k.others.is_empty());
}

#[test]
fn kernel_routes_three_metrics_and_in_place_changes() {
    let mut k = KernelRoutes::default();
    let at = |m: u32, dev: &str| kroute("10.65.2.0/26", 80, m, Some(dev));
    assert_eq!(originated(k.added(at(300, "a"))).kernel.metric, Some(300));
    // Worse routes are remembered, not announced.
    assert!(k.added(at(500, "a")).is_none());
    assert!(k.added(at(400, "a")).is_none());
    // A worse route changing in place is not announced either.
    assert!(k.added(at(400, "b")).is_none());
    // The preferred one changing in place is.
    assert_eq!(
        originated(k.added(at(300, "b"))).kernel.ifname.as_deref(),
        Some("b")
    );
    // Removal falls back through the metrics in order, with the latest attributes.
    let l = originated(k.removed(&at(300, "b")));
    assert_eq!(
        (l.kernel.metric, l.kernel.ifname.as_deref()),
        (Some(400), Some("b"))
    );
    assert_eq!(
        originated(k.removed(&at(400, "b"))).kernel.metric,
        Some(500)
    );
    assert!(matches!(
        k.removed(&at(500, "a")),
        Some(LocalChange::Withdraw(_))
    ));
    assert_eq!(k.len(), 0);
    assert!(k.others.is_empty());
}

#[test]
fn kernel_route_attributes_are_shared() {
    let mut k = KernelRoutes::default();
    for i in 0..1000u32 {
        let mut r = kroute("10.0.0.0/32", 80, 0, None);
        r.prefix = IpNet::new(std::net::Ipv4Addr::from(0x0a00_0000u32 + i).into(), 32).unwrap();
        assert!(k.added(r).is_some());
    }
    assert_eq!(k.len(), 1000);
    // One blackhole attribute set for all of them.
    assert_eq!(k.attrs.len(), 1);
    // Attribute sets of removed routes are dropped once the set has grown.
    for i in 0..200u32 {
        let r = kroute("10.200.0.0/32", 80, 0, Some(&format!("cali{i}")));
        let mut r = r;
        r.prefix = IpNet::new(std::net::Ipv4Addr::from(0x0ac8_0000u32 + i).into(), 32).unwrap();
        assert!(k.added(r.clone()).is_some());
        assert!(k.removed(&r).is_some());
    }
    assert!(k.attrs.len() < 200);
}

/// An in-memory kernel: records every batch, holds stale routes.
#[derive(Clone, Default)]
struct FakeFib {
    state: Arc<Mutex<FakeState>>,
}

#[derive(Default)]
struct FakeState {
    /// While set, `apply` waits until it is notified (a slow kernel).
    gate: Option<Arc<tokio::sync::Notify>>,
    installed: HashMap<IpNet, FibOp>,
    stale: HashSet<IpNet>,
    batches: Vec<Vec<FibOp>>,
    observed: Vec<KernelEvent>,
    swept: Vec<IpNet>,
    shut_down: bool,
    /// The next `apply` fails (its changes kept), as a broken netlink socket would.
    fail_next: bool,
    /// A failure is waiting for the reconciliation at the next `retry_due`.
    recovering: Option<String>,
    /// Changes of a failed `apply`, applied by the reconciliation.
    lost: Vec<FibOp>,
    /// While set, the reconciliation fails too.
    kernel_broken: bool,
}

impl FakeFib {
    fn with_stale(prefixes: &[&str]) -> FakeFib {
        let f = FakeFib::default();
        {
            let mut s = f.state.lock().unwrap();
            for p in prefixes {
                s.stale.insert(net(p));
                s.installed.insert(net(p), FibOp::Withdraw(net(p)));
            }
        }
        f
    }
}

impl KernelFib for FakeFib {
    async fn apply(&mut self, ops: Vec<FibOp>) -> Result<ApplyReport, KernelError> {
        let gate = self.state.lock().unwrap().gate.clone();
        if let Some(g) = gate {
            g.notified().await;
        }
        let mut s = self.state.lock().unwrap();
        if std::mem::take(&mut s.fail_next) {
            s.recovering = Some("netlink: broken pipe".into());
            s.lost.extend(ops);
            return Err(KernelError::Closed);
        }
        for op in &ops {
            let p = op_prefix(op);
            s.stale.remove(&p);
            match op {
                FibOp::Install(_) => {
                    s.installed.insert(p, op.clone());
                }
                FibOp::Withdraw(_) => {
                    s.installed.remove(&p);
                }
            }
        }
        s.batches.push(ops);
        Ok(ApplyReport::default())
    }
    fn observe(&mut self, event: &KernelEvent) {
        self.state.lock().unwrap().observed.push(event.clone());
    }
    fn fib_state(&self, _routes: bool) -> bgp_kernel::FibState {
        bgp_kernel::FibState {
            installed_count: self.state.lock().unwrap().installed.len(),
            ..Default::default()
        }
    }
    fn next_retry_at(&self) -> Option<Instant> {
        self.state
            .lock()
            .unwrap()
            .recovering
            .as_ref()
            .map(|_| Instant::now() + Duration::from_millis(100))
    }
    async fn retry_due(&mut self) -> Result<ApplyReport, KernelError> {
        let mut s = self.state.lock().unwrap();
        if s.kernel_broken {
            return Err(KernelError::Closed);
        }
        if s.recovering.take().is_some() {
            for op in std::mem::take(&mut s.lost) {
                if let FibOp::Install(_) = op {
                    s.installed.insert(op_prefix(&op), op);
                }
            }
        }
        Ok(ApplyReport::default())
    }
    fn recovering(&self) -> Option<String> {
        self.state.lock().unwrap().recovering.clone()
    }
    fn stale_count(&self) -> usize {
        self.state.lock().unwrap().stale.len()
    }
    async fn sweep_stale(&mut self) -> Result<ApplyReport, KernelError> {
        let mut s = self.state.lock().unwrap();
        let stale: Vec<IpNet> = s.stale.drain().collect();
        for p in &stale {
            s.installed.remove(p);
        }
        s.swept.extend(stale);
        Ok(ApplyReport::default())
    }
    async fn shutdown(self) -> Result<ApplyReport, KernelError> {
        self.state.lock().unwrap().shut_down = true;
        Ok(ApplyReport::default())
    }
}

/// Best-path changes as the RIB hands them over.
fn batch(changes: Vec<FibChange>) -> FibBatch {
    FibBatch {
        changes,
        recovery_done: false,
    }
}

/// Waits (in virtual time) until `f` holds.
async fn until(mut f: impl FnMut() -> bool) {
    for _ in 0..10_000 {
        if f() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("condition never held");
}

#[tokio::test(start_paused = true)]
async fn export_applies_batches_and_stops() {
    let fib = FakeFib::default();
    let (_ev_tx, ev_rx) = mpsc::channel::<KernelEvent>(8);
    let (rib_tx, _rib_rx) = mpsc::channel(8);
    let (tx, handle) = spawn(fib.clone(), ev_rx, rib_tx, FibOptions::default());
    tx.send(batch(vec![
        FibChange::Upsert(rib_route("10.65.2.0/26", &["192.0.2.1"])),
        FibChange::Upsert(rib_route("10.65.3.0/26", &["192.0.2.1"])),
    ]))
    .await
    .unwrap();
    tx.send(batch(vec![FibChange::Remove(net("10.65.3.0/26"))]))
        .await
        .unwrap();
    until(|| {
        let s = fib.state.lock().unwrap();
        s.installed.len() == 1 && s.installed.contains_key(&net("10.65.2.0/26"))
    })
    .await;
    handle.stop().await;
    assert!(fib.state.lock().unwrap().shut_down);
}

/// A kernel write that takes long must not keep the channel full (the RIB would hold its
/// changes back meanwhile), and what queued up meanwhile is merged per prefix into one
/// later batch.
#[tokio::test(start_paused = true)]
async fn slow_kernel_never_fills_the_fib_channel() {
    let fib = FakeFib::default();
    let gate = Arc::new(tokio::sync::Notify::new());
    fib.state.lock().unwrap().gate = Some(gate.clone());
    let (_ev_tx, ev_rx) = mpsc::channel::<KernelEvent>(8);
    let (rib_tx, _rib_rx) = mpsc::channel(8);
    let (tx, handle) = spawn(fib.clone(), ev_rx, rib_tx, FibOptions::default());
    tx.try_send(batch(vec![FibChange::Upsert(rib_route(
        "10.65.0.0/26",
        &["192.0.2.1"],
    ))]))
    .unwrap();
    // Let the first apply start and block on the gate.
    tokio::time::sleep(Duration::from_millis(10)).await;
    for i in 0..(4 * FIB_QUEUE) {
        let gw = if i % 2 == 0 { "192.0.2.1" } else { "192.0.2.3" };
        let b = batch(vec![FibChange::Upsert(rib_route("10.65.1.0/26", &[gw]))]);
        tx.try_send(b)
            .expect("the FIB channel is drained during a kernel write");
        tokio::task::yield_now().await;
    }
    fib.state.lock().unwrap().gate = None;
    gate.notify_one();
    until(|| fib.state.lock().unwrap().batches.len() == 2).await;
    {
        let s = fib.state.lock().unwrap();
        // Everything that arrived during the slow write became one batch, one op per
        // prefix, with the last next hop sent.
        assert_eq!(s.batches[1].len(), 1);
        assert_eq!(
            forward(&s.batches[1][0]),
            vec![("192.0.2.3".parse().unwrap(), NextHopMode::Direct)]
        );
    }
    handle.stop().await;
}

#[tokio::test(start_paused = true)]
async fn import_feeds_rib_and_installer() {
    let fib = FakeFib::default();
    let (ev_tx, ev_rx) = mpsc::channel::<KernelEvent>(16);
    let (rib_tx, mut rib_rx) = mpsc::channel(8);
    let (_tx, handle) = spawn(fib.clone(), ev_rx, rib_tx, FibOptions::default());
    let link = bgp_kernel::Link {
        index: 2,
        name: "eth0".into(),
        up: true,
    };
    ev_tx.send(KernelEvent::LinkUp(link.clone())).await.unwrap();
    ev_tx
        .send(KernelEvent::RouteAdded(kroute("10.65.1.0/26", 80, 0, None)))
        .await
        .unwrap();
    ev_tx
        .send(KernelEvent::RouteAdded(kroute(
            "10.65.1.5/32",
            3,
            1024,
            Some("cali1"),
        )))
        .await
        .unwrap();
    ev_tx.send(KernelEvent::Synced).await.unwrap();
    let mut seen = Vec::new();
    while seen.len() < 2 {
        match rib_rx.recv().await {
            Some(KernelInput::Local(v)) => seen.extend(v),
            other => panic!("unexpected {other:?}"),
        }
    }
    let prefixes: Vec<IpNet> = seen
        .iter()
        .map(|c| match c {
            LocalChange::Originate(r) => r.prefix,
            LocalChange::Withdraw(p) => *p,
        })
        .collect();
    assert_eq!(prefixes, vec![net("10.65.1.0/26"), net("10.65.1.5/32")]);
    until(|| fib.state.lock().unwrap().observed == vec![KernelEvent::LinkUp(link.clone())]).await;
    handle.stop().await;
}

/// Routes a previous run left stay until the RIB says recovery is over, then only those
/// nobody announced again are removed.
#[tokio::test(start_paused = true)]
async fn graceful_restart_sweeps_only_stale_after_the_rib_says_recovery_is_over() {
    let fib = FakeFib::with_stale(&["10.65.2.0/26", "10.65.7.0/26"]);
    let (_ev_tx, ev_rx) = mpsc::channel::<KernelEvent>(8);
    let (rib_tx, _rib_rx) = mpsc::channel(8);
    let (tx, handle) = spawn(fib.clone(), ev_rx, rib_tx, FibOptions::default());
    // The peer announces one of the two again.
    tx.send(batch(vec![FibChange::Upsert(rib_route(
        "10.65.2.0/26",
        &["192.0.2.1"],
    ))]))
    .await
    .unwrap();
    until(|| fib.state.lock().unwrap().stale.len() == 1).await;
    // However long the wait, nothing is swept before the RIB's word.
    tokio::time::sleep(Duration::from_secs(600)).await;
    assert!(fib.state.lock().unwrap().swept.is_empty());
    assert_eq!(fib.state.lock().unwrap().installed.len(), 2);
    tx.send(FibBatch {
        changes: Vec::new(),
        recovery_done: true,
    })
    .await
    .unwrap();
    until(|| !fib.state.lock().unwrap().swept.is_empty()).await;
    {
        let s = fib.state.lock().unwrap();
        assert_eq!(s.swept, vec![net("10.65.7.0/26")]);
        assert!(s.installed.contains_key(&net("10.65.2.0/26")));
    }
    handle.stop().await;
}

/// The end of recovery arriving during a slow kernel write is kept, and the changes that
/// came with it are installed before the sweep.
#[tokio::test(start_paused = true)]
async fn recovery_done_during_a_kernel_write_still_sweeps_after_its_changes() {
    let fib = FakeFib::with_stale(&["10.65.7.0/26", "10.65.8.0/26"]);
    let gate = Arc::new(tokio::sync::Notify::new());
    fib.state.lock().unwrap().gate = Some(gate.clone());
    let (_ev_tx, ev_rx) = mpsc::channel::<KernelEvent>(8);
    let (rib_tx, _rib_rx) = mpsc::channel(8);
    let (tx, handle) = spawn(fib.clone(), ev_rx, rib_tx, FibOptions::default());
    tx.send(batch(vec![FibChange::Upsert(rib_route(
        "10.65.0.0/26",
        &["192.0.2.1"],
    ))]))
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    // While the first write waits on the gate: the last changes and the notice.
    tx.send(FibBatch {
        changes: vec![FibChange::Upsert(rib_route("10.65.8.0/26", &["192.0.2.1"]))],
        recovery_done: true,
    })
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    fib.state.lock().unwrap().gate = None;
    gate.notify_one();
    until(|| !fib.state.lock().unwrap().swept.is_empty()).await;
    {
        let s = fib.state.lock().unwrap();
        assert_eq!(s.swept, vec![net("10.65.7.0/26")]);
        assert!(s.installed.contains_key(&net("10.65.8.0/26")));
        assert!(s.installed.contains_key(&net("10.65.0.0/26")));
    }
    handle.stop().await;
}

#[tokio::test(start_paused = true)]
async fn a_failed_kernel_write_shows_in_health_until_reconciled() {
    let fib = FakeFib::default();
    let health = crate::health::Health::default();
    let options = FibOptions {
        health: health.clone(),
    };
    let (ev_tx, ev_rx) = mpsc::channel::<KernelEvent>(8);
    let (rib_tx, _rib_rx) = mpsc::channel(8);
    {
        let mut s = fib.state.lock().unwrap();
        s.fail_next = true;
        s.kernel_broken = true;
    }
    let (tx, handle) = spawn(fib.clone(), ev_rx, rib_tx, options);
    // The writer fails on the first batch: down, with the reason...
    tx.send(batch(vec![FibChange::Upsert(rib_route(
        "10.65.9.0/26",
        &["192.0.2.1"],
    ))]))
    .await
    .unwrap();
    let down = |h: &crate::health::Health, name| h.down_components().iter().any(|c| c.name == name);
    until(|| down(&health, crate::health::KERNEL_FIB)).await;
    // ... and up once the reconciliation put the lost change in.
    fib.state.lock().unwrap().kernel_broken = false;
    until(|| {
        fib.state
            .lock()
            .unwrap()
            .installed
            .contains_key(&net("10.65.9.0/26"))
    })
    .await;
    until(|| !down(&health, crate::health::KERNEL_FIB)).await;
    // A watcher that lost its connection: the import is down until it synced again.
    ev_tx
        .send(KernelEvent::Lost("netlink: no buffer".into()))
        .await
        .unwrap();
    until(|| down(&health, crate::health::KERNEL_IMPORT)).await;
    ev_tx.send(KernelEvent::Synced).await.unwrap();
    until(|| !down(&health, crate::health::KERNEL_IMPORT)).await;
    handle.stop().await;
}
