//! RIB → kernel: the installer's forms, ECMP, withdraw, ownership rules, conflicts and
//! start-up adoption, verified by reading the kernel with `ip -j route`. Runs as root in a
//! namespace of its own per test.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use bgp_kernel::{
    ExitAction, ExportConfig, FibAction, FibNextHop, FibOp, FibRoute, KernelInstaller, NextHopMode,
};
use common::{skip_unless_root, Ns};
use serde_json::Value;

fn nh(gw: &str, mode: NextHopMode) -> FibNextHop {
    FibNextHop {
        gateway: gw.parse().unwrap(),
        mode,
        device: None,
    }
}

fn fwd(prefix: &str, hops: Vec<FibNextHop>) -> FibOp {
    FibOp::Install(FibRoute {
        prefix: prefix.parse().unwrap(),
        action: FibAction::Forward(hops),
        local_pref: Some(100),
    })
}

fn withdraw(prefix: &str) -> FibOp {
    FibOp::Withdraw(prefix.parse().unwrap())
}

/// Calico's metric for LOCAL_PREF 100.
const METRIC_LP100: u64 = 2_147_483_647 - 100;

fn flags(r: &Value) -> Vec<String> {
    r["flags"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|f| f.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn proto_is_ours(r: &Value) -> bool {
    r["protocol"] == "bird" || r["protocol"] == "12"
}

#[test]
fn installs_direct_tunnel_cross_subnet_blackhole_and_ecmp_then_withdraws() {
    if skip_unless_root("installs_direct_tunnel_cross_subnet_blackhole_and_ecmp_then_withdraws") {
        return;
    }
    let ns = Ns::new("forms");
    ns.uplink();
    let kind = ns.tunnel_device();
    eprintln!("tunnel device tunl0: {kind}");
    let ops = vec![
        fwd("10.70.1.0/26", vec![nh("10.0.0.2", NextHopMode::Direct)]),
        fwd("10.70.2.0/26", vec![nh("192.168.5.5", NextHopMode::Tunnel)]),
        fwd(
            "10.70.3.0/26",
            vec![nh("10.0.0.3", NextHopMode::CrossSubnet)],
        ),
        fwd(
            "10.70.4.0/26",
            vec![nh("172.16.0.9", NextHopMode::CrossSubnet)],
        ),
        FibOp::Install(FibRoute {
            prefix: "10.70.5.0/26".parse().unwrap(),
            action: FibAction::Blackhole,
            local_pref: None,
        }),
        fwd(
            "10.70.6.0/26",
            vec![
                nh("10.0.0.2", NextHopMode::Direct),
                nh("10.0.0.3", NextHopMode::Direct),
            ],
        ),
        fwd("2001:db8:70::/64", vec![nh("fd00::2", NextHopMode::Direct)]),
        fwd(
            "2001:db8:71::/64",
            vec![
                nh("fd00::2", NextHopMode::Direct),
                nh("fd00::3", NextHopMode::Direct),
            ],
        ),
    ];
    ns.run(|| async {
        let mut inst = KernelInstaller::open(ExportConfig::default())
            .await
            .expect("installer");
        let rep = inst.apply(ops.clone()).await.expect("apply");
        assert_eq!((rep.added, rep.failed), (8, 0), "{rep:?}");

        let all = ns.routes(false, "");
        let r = Ns::route(&all, "10.70.1.0/26").expect("direct route");
        assert!(proto_is_ours(r), "{r}");
        let v4 = ns.routes(false, "proto 12");
        let r = Ns::route(&v4, "10.70.1.0/26").expect("direct route");
        assert_eq!(r["gateway"], "10.0.0.2");
        assert_eq!(r["dev"], "eth0");
        assert_eq!(r["metric"], METRIC_LP100);
        assert!(!flags(r).contains(&"onlink".to_string()));

        let r = Ns::route(&v4, "10.70.2.0/26").expect("tunnel route");
        assert_eq!(
            (r["gateway"].as_str(), r["dev"].as_str()),
            (Some("192.168.5.5"), Some("tunl0"))
        );
        assert!(flags(r).contains(&"onlink".to_string()), "{r}");

        // Cross-subnet: same subnet → direct; other subnet → tunnel.
        let r = Ns::route(&v4, "10.70.3.0/26").expect("cross-subnet same-subnet route");
        assert_eq!(
            (r["gateway"].as_str(), r["dev"].as_str()),
            (Some("10.0.0.3"), Some("eth0"))
        );
        assert!(!flags(r).contains(&"onlink".to_string()));
        let r = Ns::route(&v4, "10.70.4.0/26").expect("cross-subnet remote route");
        assert_eq!(
            (r["gateway"].as_str(), r["dev"].as_str()),
            (Some("172.16.0.9"), Some("tunl0"))
        );
        assert!(flags(r).contains(&"onlink".to_string()));

        let r = Ns::route(&v4, "10.70.5.0/26").expect("blackhole");
        assert_eq!(r["type"], "blackhole");
        assert_eq!(r["metric"], 1024);

        let r = Ns::route(&v4, "10.70.6.0/26").expect("ecmp");
        let hops = r["nexthops"].as_array().expect("multipath");
        let mut gws: Vec<&str> = hops.iter().filter_map(|h| h["gateway"].as_str()).collect();
        gws.sort();
        assert_eq!(gws, ["10.0.0.2", "10.0.0.3"]);

        let v6 = ns.routes(true, "proto 12");
        let r = Ns::route(&v6, "2001:db8:70::/64").expect("v6 route");
        assert_eq!(
            (r["gateway"].as_str(), r["dev"].as_str()),
            (Some("fd00::2"), Some("eth0"))
        );
        assert_eq!(r["metric"], METRIC_LP100);
        let r = Ns::route(&v6, "2001:db8:71::/64").expect("v6 ecmp");
        let hops = r["nexthops"].as_array().expect("v6 multipath");
        assert_eq!(hops.len(), 2, "{r}");

        // The same routes again: no kernel writes.
        let rep = inst.apply(ops.clone()).await.expect("apply");
        assert_eq!(
            (rep.unchanged, rep.added, rep.replaced),
            (8, 0, 0),
            "{rep:?}"
        );

        // ECMP → single path and single → ECMP, replaced in place, both families.
        let rep = inst
            .apply(vec![
                fwd("10.70.6.0/26", vec![nh("10.0.0.3", NextHopMode::Direct)]),
                fwd("2001:db8:71::/64", vec![nh("fd00::3", NextHopMode::Direct)]),
                fwd(
                    "10.70.1.0/26",
                    vec![
                        nh("10.0.0.2", NextHopMode::Direct),
                        nh("10.0.0.4", NextHopMode::Direct),
                    ],
                ),
            ])
            .await
            .expect("apply");
        assert_eq!((rep.replaced, rep.failed), (3, 0), "{rep:?}");
        let v4 = ns.routes(false, "proto 12");
        let single = Ns::route(&v4, "10.70.6.0/26").expect("now single path");
        assert_eq!(single["gateway"], "10.0.0.3");
        assert!(single["nexthops"].is_null(), "{single}");
        let multi = Ns::route(&v4, "10.70.1.0/26").expect("now multipath");
        assert_eq!(
            multi["nexthops"].as_array().map(Vec::len),
            Some(2),
            "{multi}"
        );
        let v6 = ns.routes(true, "proto 12");
        let mine: Vec<&Value> = v6
            .iter()
            .filter(|r| r["dst"] == "2001:db8:71::/64")
            .collect();
        assert_eq!(mine.len(), 1, "{mine:?}");
        assert_eq!(mine[0]["gateway"], "fd00::3", "{mine:?}");
        assert!(mine[0]["nexthops"].is_null(), "{mine:?}");

        // Withdraw everything.
        let prefixes = [
            "10.70.1.0/26",
            "10.70.2.0/26",
            "10.70.3.0/26",
            "10.70.4.0/26",
            "10.70.5.0/26",
            "10.70.6.0/26",
            "2001:db8:70::/64",
            "2001:db8:71::/64",
        ];
        let rep = inst
            .apply(prefixes.iter().map(|p| withdraw(p)))
            .await
            .expect("withdraw");
        assert_eq!(rep.deleted, 8, "{rep:?}");
        assert!(ns.routes(false, "proto 12").is_empty());
        assert!(ns.routes(true, "proto 12").is_empty());
        assert!(inst.is_empty());
    });
}

/// A log sink to count warnings. One global subscriber for the whole test binary: tracing
/// caches per-callsite interest globally, so a per-thread subscriber can miss events whose
/// callsite another test thread hit first.
#[derive(Clone, Default)]
struct LogBuf(Arc<Mutex<Vec<u8>>>);

fn global_logs() -> LogBuf {
    static LOGS: std::sync::OnceLock<LogBuf> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let logs = LogBuf::default();
        let sink = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || sink.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("global subscriber");
        logs
    })
    .clone()
}

impl Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuf {
    /// Lines containing both strings.
    fn count(&self, needle: &str, and: &str) -> usize {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(needle) && l.contains(and))
            .count()
    }
}

#[test]
fn other_protocols_untouched_and_conflicts_logged_once_then_retried() {
    if skip_unless_root("other_protocols_untouched_and_conflicts_logged_once_then_retried") {
        return;
    }
    let ns = Ns::new("own");
    ns.uplink();
    // Felix's route at exactly our key (same prefix and metric): a conflict.
    ns.ip(&format!(
        "route add 10.80.0.0/24 via 10.0.0.5 proto 80 metric {METRIC_LP100}"
    ));
    // Another protocol's route for a prefix we also install, at another metric: coexists.
    ns.ip("route add 10.81.0.0/24 via 10.0.0.6 proto boot metric 1024");
    // A blackhole of another protocol we are asked to withdraw (we never installed it).
    ns.ip("route add blackhole 10.82.0.0/26 proto 80");
    // The same conflict in IPv6.
    ns.ip(&format!(
        "-6 route add 2001:db8:80::/64 via fd00::5 proto 80 metric {METRIC_LP100}"
    ));
    let logs = global_logs();
    ns.run(|| async {
        let cfg = ExportConfig {
            retry_initial_ms: 0,
            retry_max_ms: 0,
            on_exit: ExitAction::Flush,
            ..ExportConfig::default()
        };
        let mut inst = KernelInstaller::open(cfg).await.expect("installer");
        let rep = inst
            .apply(vec![
                fwd("10.80.0.0/24", vec![nh("10.0.0.2", NextHopMode::Direct)]),
                fwd("10.81.0.0/24", vec![nh("10.0.0.2", NextHopMode::Direct)]),
                withdraw("10.82.0.0/26"),
                fwd("2001:db8:80::/64", vec![nh("fd00::2", NextHopMode::Direct)]),
            ])
            .await
            .expect("apply");
        assert_eq!((rep.added, rep.failed), (1, 2), "{rep:?}");
        assert_eq!(inst.pending_count(), 2);
        assert!(inst.next_retry_at().is_some());
        for _ in 0..3 {
            let rep = inst.retry_due().await.expect("retry");
            assert_eq!(rep.failed, 2, "{rep:?}");
        }
        let v6 = ns.routes(true, "");
        let felix6 = Ns::route(&v6, "2001:db8:80::/64").expect("felix v6 route kept");
        assert_eq!(
            (felix6["protocol"].as_str(), felix6["gateway"].as_str()),
            (Some("80"), Some("fd00::5"))
        );
        let v4 = ns.routes(false, "");
        let felix = Ns::route(&v4, "10.80.0.0/24").expect("felix route kept");
        assert_eq!(felix["protocol"], "80");
        assert_eq!(felix["gateway"], "10.0.0.5");
        assert!(
            Ns::route(&v4, "10.82.0.0/26").is_some(),
            "other blackhole kept"
        );
        let both: Vec<&Value> = v4.iter().filter(|r| r["dst"] == "10.81.0.0/24").collect();
        assert_eq!(both.len(), 2, "ours and theirs coexist: {both:?}");
        for prefix in ["10.80.0.0/24", "2001:db8:80::/64"] {
            assert_eq!(
                logs.count("owned by another protocol", prefix),
                1,
                "{prefix}: conflict logged once, not per retry"
            );
        }

        // Withdraw ours for 10.81: theirs stays.
        let rep = inst
            .apply(vec![withdraw("10.81.0.0/24")])
            .await
            .expect("withdraw");
        assert_eq!(rep.deleted, 1);
        let v4 = ns.routes(false, "");
        let left: Vec<&Value> = v4.iter().filter(|r| r["dst"] == "10.81.0.0/24").collect();
        assert_eq!(left.len(), 1);
        // iproute2 omits "proto boot" in its output; the gateway tells the routes apart.
        assert_eq!(left[0]["gateway"], "10.0.0.6");
        assert_eq!(left[0]["metric"], 1024);

        // Felix removes its route: the retry now installs ours.
        ns.ip("route del 10.80.0.0/24 proto 80");
        let rep = inst.retry_due().await.expect("retry");
        assert_eq!((rep.added, rep.failed), (1, 1), "{rep:?}");
        assert_eq!(inst.pending_count(), 1);
        // Withdrawing the still-conflicting IPv6 route stops its retries and leaves Felix's.
        let rep = inst
            .apply(vec![withdraw("2001:db8:80::/64")])
            .await
            .expect("withdraw");
        assert_eq!(rep.deleted, 0);
        assert_eq!(inst.pending_count(), 0);
        assert!(Ns::route(&ns.routes(true, ""), "2001:db8:80::/64").is_some());
        let v4 = ns.routes(false, "proto 12");
        assert_eq!(
            Ns::route(&v4, "10.80.0.0/24").expect("ours now")["gateway"],
            "10.0.0.2"
        );

        // Flush on exit removes ours only.
        let rep = inst.shutdown().await.expect("shutdown");
        assert_eq!(rep.deleted, 1);
        assert!(ns.routes(false, "proto 12").is_empty());
        let v4 = ns.routes(false, "");
        assert!(Ns::route(&v4, "10.81.0.0/24").is_some());
        assert!(Ns::route(&v4, "10.82.0.0/26").is_some());
    });
}

#[test]
fn adopts_previous_routes_as_stale_and_sweeps_only_stale_ones() {
    if skip_unless_root("adopts_previous_routes_as_stale_and_sweeps_only_stale_ones") {
        return;
    }
    let ns = Ns::new("gr");
    ns.uplink();
    ns.ip("route add blackhole 10.65.0.0/26 proto 80");
    let first_run = vec![
        fwd("10.90.1.0/24", vec![nh("10.0.0.2", NextHopMode::Direct)]),
        fwd("10.90.2.0/24", vec![nh("10.0.0.2", NextHopMode::Direct)]),
        fwd("10.90.3.0/24", vec![nh("10.0.0.2", NextHopMode::Direct)]),
        fwd(
            "10.90.4.0/24",
            vec![
                nh("10.0.0.2", NextHopMode::Direct),
                nh("10.0.0.3", NextHopMode::Direct),
            ],
        ),
    ];
    ns.run(|| async {
        // First run: install, exit persisting the routes.
        let mut a = KernelInstaller::open(ExportConfig::default())
            .await
            .expect("installer");
        let rep = a.apply(first_run.clone()).await.expect("apply");
        assert_eq!(rep.added, 4);
        let rep = a.shutdown().await.expect("shutdown");
        assert_eq!(rep.deleted, 0);
        assert_eq!(ns.routes(false, "proto 12").len(), 4);

        // Restart: adopt as stale, nothing removed yet.
        let cfg = ExportConfig {
            on_exit: ExitAction::Flush,
            ..ExportConfig::default()
        };
        let mut b = KernelInstaller::open(cfg).await.expect("installer");
        assert_eq!(b.stale_count(), 4);
        assert_eq!(ns.routes(false, "proto 12").len(), 4);
        // The RIB re-learns 10.90.1 unchanged (no write), 10.90.2 with a new next hop
        // (replaced in place), 10.90.4 unchanged ECMP; 10.90.3 is not re-learned.
        let rep = b
            .apply(vec![
                fwd("10.90.1.0/24", vec![nh("10.0.0.2", NextHopMode::Direct)]),
                fwd("10.90.2.0/24", vec![nh("10.0.0.3", NextHopMode::Direct)]),
                fwd(
                    "10.90.4.0/24",
                    vec![
                        nh("10.0.0.3", NextHopMode::Direct),
                        nh("10.0.0.2", NextHopMode::Direct),
                    ],
                ),
            ])
            .await
            .expect("apply");
        assert_eq!(
            (rep.unchanged, rep.replaced, rep.added),
            (2, 1, 0),
            "{rep:?}"
        );
        assert_eq!(b.stale_count(), 1);
        let rep = b.sweep_stale().await.expect("sweep");
        assert_eq!(rep.deleted, 1);
        let v4 = ns.routes(false, "proto 12");
        assert_eq!(v4.len(), 3);
        assert_eq!(
            Ns::route(&v4, "10.90.1.0/24").expect("kept")["gateway"],
            "10.0.0.2"
        );
        assert_eq!(
            Ns::route(&v4, "10.90.2.0/24").expect("replaced")["gateway"],
            "10.0.0.3"
        );
        assert!(
            Ns::route(&v4, "10.90.3.0/24").is_none(),
            "stale route swept"
        );
        assert!(Ns::route(&ns.routes(false, ""), "10.65.0.0/26").is_some());

        // A LOCAL_PREF change moves the route to a new metric without leaving the old one.
        let rep = b
            .apply(vec![FibOp::Install(FibRoute {
                prefix: "10.90.1.0/24".parse().unwrap(),
                action: FibAction::Forward(vec![nh("10.0.0.2", NextHopMode::Direct)]),
                local_pref: Some(200),
            })])
            .await
            .expect("apply");
        assert_eq!((rep.added, rep.deleted), (1, 1), "{rep:?}");
        let mine: Vec<Value> = ns
            .routes(false, "proto 12")
            .into_iter()
            .filter(|r| r["dst"] == "10.90.1.0/24")
            .collect();
        assert_eq!(mine.len(), 1);
        assert_eq!(mine[0]["metric"], 2_147_483_647u64 - 200);

        // Exit with flush: ours gone, Felix's blackhole stays.
        b.shutdown().await.expect("shutdown");
        assert!(ns.routes(false, "proto 12").is_empty());
        assert!(Ns::route(&ns.routes(false, ""), "10.65.0.0/26").is_some());
    });
}

#[test]
fn pipelined_windows_map_each_failure_to_its_route() {
    if skip_unless_root("pipelined_windows_map_each_failure_to_its_route") {
        return;
    }
    let ns = Ns::new("pipe");
    ns.uplink();
    // Every 97th prefix is already held by Felix at our metric.
    let n = 5000u32;
    let prefix = |i: u32| {
        let a = 0x0B00_0000u32 + (i << 8);
        format!("{}/24", std::net::Ipv4Addr::from(a))
    };
    let foreign: Vec<u32> = (0..n).filter(|i| i % 97 == 0).collect();
    ns.batch(
        &foreign
            .iter()
            .map(|&i| {
                format!(
                    "route add {} via 10.0.0.9 proto 80 metric {METRIC_LP100}",
                    prefix(i)
                )
            })
            .collect::<Vec<_>>(),
    );
    ns.run(|| async {
        // Small windows: many datagrams and windows in flight.
        let cfg = ExportConfig {
            max_in_flight: 64,
            ..ExportConfig::default()
        };
        let mut inst = KernelInstaller::open(cfg).await.expect("installer");
        let ops: Vec<FibOp> = (0..n)
            .map(|i| fwd(&prefix(i), vec![nh("10.0.0.2", NextHopMode::Direct)]))
            .collect();
        let rep = inst.apply(ops).await.expect("apply");
        assert_eq!(rep.failed, foreign.len(), "{rep:?}");
        assert_eq!(rep.added, n as usize - foreign.len(), "{rep:?}");
        for &i in &foreign {
            assert!(
                !inst.is_installed(&prefix(i).parse().unwrap()),
                "{}",
                prefix(i)
            );
        }
        assert!(inst.is_installed(&prefix(1).parse().unwrap()));
        let ours = ns.routes(false, "proto 12");
        assert_eq!(ours.len(), n as usize - foreign.len());
        let felix = ns.routes(false, "proto 80");
        assert_eq!(felix.len(), foreign.len());
        assert!(felix.iter().all(|r| r["gateway"] == "10.0.0.9"));

        let rep = inst
            .apply((0..n).map(|i| withdraw(&prefix(i))))
            .await
            .expect("withdraw");
        assert_eq!(rep.deleted, n as usize - foreign.len(), "{rep:?}");
        assert!(ns.routes(false, "proto 12").is_empty());
        assert_eq!(ns.routes(false, "proto 80").len(), foreign.len());
        assert_eq!(
            inst.pending_count(),
            0,
            "withdrawn routes are no longer retried"
        );
    });
}

#[test]
fn tunnel_route_waits_for_its_device() {
    if skip_unless_root("tunnel_route_waits_for_its_device") {
        return;
    }
    let ns = Ns::new("nodev");
    ns.uplink();
    ns.run(|| async {
        let cfg = ExportConfig {
            retry_initial_ms: 0,
            retry_max_ms: 0,
            ..ExportConfig::default()
        };
        let mut inst = KernelInstaller::open(cfg).await.expect("installer");
        // No tunl0 yet: the route cannot be resolved, nothing is written.
        let rep = inst
            .apply(vec![fwd(
                "10.75.0.0/26",
                vec![nh("192.168.9.9", NextHopMode::Tunnel)],
            )])
            .await
            .expect("apply");
        assert_eq!((rep.added, rep.failed), (0, 1), "{rep:?}");
        let rep = inst.retry_due().await.expect("retry");
        assert_eq!(rep.added, 0, "{rep:?}");
        assert_eq!(inst.pending_count(), 1, "still waiting, not dropped");
        assert!(ns.routes(false, "proto 12").is_empty());
        // The device appears: the retry installs the route through it.
        ns.tunnel_device();
        let rep = inst.retry_due().await.expect("retry");
        assert_eq!(rep.added, 1, "{rep:?}");
        assert_eq!(inst.pending_count(), 0);
        let v4 = ns.routes(false, "proto 12");
        let r = Ns::route(&v4, "10.75.0.0/26").expect("tunnel route");
        assert_eq!(r["dev"], "tunl0");
        assert!(flags(r).contains(&"onlink".to_string()));
    });
}

#[test]
fn route_deleted_behind_our_back_is_reinstalled() {
    if skip_unless_root("route_deleted_behind_our_back_is_reinstalled") {
        return;
    }
    let ns = Ns::new("heal");
    ns.uplink();
    ns.run(|| async {
        let kcfg = bgp_kernel::KernelConfig::default();
        let mut watcher = bgp_kernel::KernelWatcher::spawn(kcfg.import_config()).expect("watcher");
        let mut inst = KernelInstaller::open(kcfg.export.clone())
            .await
            .expect("installer");
        loop {
            let ev = watcher.next().await.expect("watcher");
            inst.observe(&ev);
            if ev == bgp_kernel::KernelEvent::Synced {
                break;
            }
        }
        let ops = vec![
            fwd("10.76.0.0/24", vec![nh("10.0.0.2", NextHopMode::Direct)]),
            fwd("10.76.1.0/24", vec![nh("10.0.0.2", NextHopMode::Direct)]),
        ];
        assert_eq!(inst.apply(ops).await.expect("apply").added, 2);
        // Our own withdraw of 10.76.1.0/24 must not trigger a reinstall.
        assert_eq!(
            inst.apply(vec![withdraw("10.76.1.0/24")])
                .await
                .expect("withdraw")
                .deleted,
            1
        );
        // Someone else deletes 10.76.0.0/24.
        ns.ip("route del 10.76.0.0/24 proto 12");
        let mut seen = Vec::new();
        while seen.len() < 2 {
            let ev = tokio::time::timeout(std::time::Duration::from_secs(20), watcher.next())
                .await
                .expect("no event")
                .expect("watcher");
            inst.observe(&ev);
            if let bgp_kernel::KernelEvent::OwnRouteRemoved(r) = ev {
                seen.push(r.prefix.to_string());
            }
        }
        seen.sort();
        assert_eq!(seen, ["10.76.0.0/24", "10.76.1.0/24"]);
        assert_eq!(
            inst.pending_count(),
            1,
            "only the externally deleted route is queued"
        );
        let rep = inst.retry_due().await.expect("retry");
        assert_eq!(rep.replaced, 1, "{rep:?}");
        let v4 = ns.routes(false, "proto 12");
        assert!(Ns::route(&v4, "10.76.0.0/24").is_some(), "reinstalled");
        assert!(
            Ns::route(&v4, "10.76.1.0/24").is_none(),
            "our withdraw stands"
        );
    });
}
