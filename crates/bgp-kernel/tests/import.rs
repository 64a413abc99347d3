//! Kernel → RIB: the watcher imports what the Calico selection says, from the initial dump and
//! from live notifications. Runs as root in a namespace of its own.

mod common;

use std::time::Duration;

use bgp_kernel::{ImportConfig, KernelEvent, KernelRoute, KernelWatcher, RouteKind};
use common::{skip_unless_root, Ns};
use ipnet::IpNet;

fn calico_selection() -> ImportConfig {
    toml::from_str(
        r#"
        protocols = [3, 80]
        route_types = ["unicast", "blackhole"]
        ipv4_prefix_len = { min = 26, max = 32 }
        ipv6_prefix_len = { min = 122, max = 128 }
        interfaces = { exclude = ["kube-ipvs*", "*.calico"] }
        "#,
    )
    .expect("config")
}

/// Next event (bounded wait only to fail instead of hanging).
async fn next(w: &mut KernelWatcher) -> KernelEvent {
    tokio::time::timeout(Duration::from_secs(20), w.next())
        .await
        .expect("no kernel event")
        .expect("watcher stopped")
}

/// Next route event, skipping link/address events.
async fn next_route_event(w: &mut KernelWatcher) -> KernelEvent {
    loop {
        let e = next(w).await;
        if matches!(e, KernelEvent::RouteAdded(_) | KernelEvent::RouteRemoved(_)) {
            return e;
        }
    }
}

fn net(s: &str) -> IpNet {
    s.parse().unwrap()
}

#[test]
fn imports_blackhole_blocks_and_pod_routes_per_selection() {
    if skip_unless_root("imports_blackhole_blocks_and_pod_routes_per_selection") {
        return;
    }
    let ns = Ns::new("imp");
    ns.ip("link add cali1 type veth peer name cali1p");
    ns.ip("link add kube-ipvs0 type veth peer name kipvsp");
    for dev in ["cali1", "cali1p", "kube-ipvs0", "kipvsp"] {
        ns.ip(&format!("link set {dev} up"));
    }
    // Felix's block blackhole (proto 80) and a pod route (proto 3 = boot).
    ns.ip("route add blackhole 10.65.0.0/26 proto 80");
    ns.ip("route add 10.65.0.5/32 dev cali1 proto boot");
    // Not selected: excluded interface, wrong protocol, our own protocol, too short.
    ns.ip("route add 10.65.0.6/32 dev kube-ipvs0 proto boot");
    ns.ip("route add 10.99.0.0/26 dev cali1 proto static");
    ns.ip("route add 10.65.0.7/32 dev cali1 proto 12");
    ns.ip("route add blackhole 10.66.0.0/16 proto 80");

    ns.run(|| async {
        let mut w = KernelWatcher::spawn(calico_selection()).expect("watcher");
        let mut initial: Vec<KernelRoute> = Vec::new();
        let mut links_up = Vec::new();
        loop {
            match next(&mut w).await {
                KernelEvent::RouteAdded(r) => initial.push(r),
                KernelEvent::LinkUp(l) => links_up.push(l.name),
                KernelEvent::Synced => break,
                _ => {}
            }
        }
        initial.sort_by_key(|r| r.prefix);
        let prefixes: Vec<IpNet> = initial.iter().map(|r| r.prefix).collect();
        assert_eq!(prefixes, vec![net("10.65.0.0/26"), net("10.65.0.5/32")]);
        assert_eq!(initial[0].kind, RouteKind::Blackhole);
        assert_eq!(initial[0].protocol, 80);
        assert_eq!(initial[0].ifname, None);
        assert_eq!(initial[1].kind, RouteKind::Unicast);
        assert_eq!(initial[1].protocol, 3);
        assert_eq!(initial[1].ifname.as_deref(), Some("cali1"));
        assert_eq!(initial[1].table, 254);
        assert!(links_up.iter().any(|n| n == "cali1"), "{links_up:?}");

        // Live: an elevated-priority pod route (metric 512) arrives as an event.
        ns.ip("route add 10.65.0.8/32 dev cali1 proto boot metric 512");
        match next_route_event(&mut w).await {
            KernelEvent::RouteAdded(r) => {
                assert_eq!(r.prefix, net("10.65.0.8/32"));
                assert_eq!(r.metric, 512);
                assert_eq!(r.ifname.as_deref(), Some("cali1"));
            }
            other => panic!("unexpected {other:?}"),
        }
        // Not selected (excluded interface, wrong protocol): the next route event is the
        // selected route added after them, so these produced none.
        ns.ip("route add 10.65.0.9/32 dev kube-ipvs0 proto boot");
        ns.ip("route add 10.65.0.10/32 dev cali1 proto static");
        ns.ip("route add blackhole 10.65.1.0/26 proto 80");
        match next_route_event(&mut w).await {
            KernelEvent::RouteAdded(r) => assert_eq!(r.prefix, net("10.65.1.0/26")),
            other => panic!("unexpected {other:?}"),
        }
        // Removal.
        ns.ip("route del 10.65.0.5/32 dev cali1 proto boot");
        match next_route_event(&mut w).await {
            KernelEvent::RouteRemoved(r) => assert_eq!(r.prefix, net("10.65.0.5/32")),
            other => panic!("unexpected {other:?}"),
        }
        // Addresses feed connected routes / next-hop resolution.
        ns.ip("addr add 10.0.0.1/24 dev cali1p");
        loop {
            if let KernelEvent::AddressAdded(a) = next(&mut w).await {
                assert_eq!(a.address, net("10.0.0.1/24"));
                assert_eq!(a.ifname.as_deref(), Some("cali1p"));
                break;
            }
        }
        // Link down: IPv4 flushes the routes through it silently; the watcher re-reads and
        // reports them removed.
        ns.ip("link set cali1 down");
        let mut saw_down = false;
        let mut removed = Vec::new();
        while !(saw_down && removed.contains(&net("10.65.0.8/32"))) {
            match next(&mut w).await {
                KernelEvent::LinkDown(l) if l.name == "cali1" => saw_down = true,
                KernelEvent::RouteRemoved(r) => removed.push(r.prefix),
                _ => {}
            }
        }
        assert!(
            !removed.contains(&net("10.65.0.0/26")),
            "blackhole must stay: {removed:?}"
        );
    });
}

#[test]
fn imports_ipv6_pod_routes() {
    if skip_unless_root("imports_ipv6_pod_routes") {
        return;
    }
    let ns = Ns::new("imp6");
    ns.ip("link add cali2 type veth peer name cali2p");
    ns.ip("link set cali2 up");
    ns.ip("link set cali2p up");
    ns.ip("-6 route add blackhole fd10::/122 proto 80");
    ns.ip("-6 route add fd10::5/128 dev cali2 proto boot");
    ns.run(|| async {
        let mut w = KernelWatcher::spawn(calico_selection()).expect("watcher");
        let mut got = Vec::new();
        loop {
            match next(&mut w).await {
                KernelEvent::RouteAdded(r) => got.push((r.prefix, r.kind, r.protocol)),
                KernelEvent::Synced => break,
                _ => {}
            }
        }
        got.sort();
        assert_eq!(
            got,
            vec![
                (net("fd10::/122"), RouteKind::Blackhole, 80),
                (net("fd10::5/128"), RouteKind::Unicast, 3),
            ]
        );
    });
}

#[test]
fn overrun_resynchronises_without_losing_routes() {
    if skip_unless_root("overrun_resynchronises_without_losing_routes") {
        return;
    }
    let ns = Ns::new("ovr");
    ns.ip("link add cali3 type veth peer name cali3p");
    ns.ip("link set cali3 up");
    let n = 3000u32;
    let pod = |i: u32| std::net::Ipv4Addr::from(0x0A41_0000u32 + i).to_string();
    ns.run(|| async {
        // A tiny receive buffer (the kernel's minimum) so a burst overruns it.
        let mut w = KernelWatcher::spawn_with_buffer(calico_selection(), 4096).expect("watcher");
        loop {
            if next(&mut w).await == KernelEvent::Synced {
                break;
            }
        }
        // The burst happens while this thread (which runs the watcher) is busy elsewhere,
        // so notifications pile up in the socket and overflow it.
        ns.batch(
            &(0..n)
                .map(|i| format!("route add {}/32 dev cali3 proto boot", pod(i)))
                .collect::<Vec<_>>(),
        );
        let mut added = std::collections::HashSet::new();
        let mut synced = 0;
        // Until every route is known and the re-read after the overrun has completed.
        while added.len() < n as usize || synced == 0 {
            match next(&mut w).await {
                KernelEvent::RouteAdded(r) => {
                    added.insert(r.prefix);
                }
                KernelEvent::Synced => synced += 1,
                _ => {}
            }
        }
        assert!(synced >= 1, "the overrun forced a re-read");
        assert_eq!(added.len(), n as usize);
    });
}
