//! The executor's recovery against a real kernel, in a network namespace of each test's own
//! (root): a failed write is repaired by dumping and reconciling every route, and a failing
//! recovery backs off. The same rules are tested without root against a model kernel
//! (tests/); these check the netlink side does what the reconciler asks.

use std::time::{Duration, Instant};

use super::executor::KernelInstaller;
use super::fib::{FibAction, FibOp, FibRoute};
use crate::config::ExportConfig;

/// Runs `f` on a thread of its own in a new network namespace (root only; without
/// root it prints SKIPPED, and fails under CI=true as the other kernel tests' harness
/// requires).
fn in_new_netns<F, Fut>(name: &str, f: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()>,
{
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        assert!(
            std::env::var("CI").map_or(true, |v| v != "true"),
            "{name}: needs root (CI=true turns skips into failures)"
        );
        eprintln!("SKIPPED {name}: needs root (network namespaces)");
        return;
    }
    let t = std::thread::spawn(move || {
        // SAFETY: unshare only changes this (new, soon finished) thread's namespace.
        assert_eq!(unsafe { libc::unshare(libc::CLONE_NEWNET) }, 0, "unshare");
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(f());
    });
    t.join().expect("test thread");
}

fn blackhole(i: u32) -> FibOp {
    FibOp::Install(FibRoute {
        prefix: format!("10.{}.{}.0/24", i / 256, i % 256)
            .parse()
            .expect("prefix"),
        action: FibAction::Blackhole,
        local_pref: Some(100),
    })
}

#[test]
fn a_failed_write_is_recovered_by_reconciling_every_route() {
    in_new_netns("a_failed_write_is_recovered", || async {
        let cfg = ExportConfig {
            retry_initial_ms: 10,
            ..ExportConfig::default()
        };
        let mut k = KernelInstaller::open(cfg).await.expect("installer");
        k.apply((0..100).map(blackhole)).await.expect("first batch");
        // The next batch is lost on the way to the kernel.
        k.fail_next_sync = true;
        assert!(k.apply((100..300).map(blackhole)).await.is_err());
        assert!(k.is_recovering().is_some());
        let due = k.next_retry_at().expect("recovery scheduled");
        assert!(due <= Instant::now());
        let r = k.retry_due().await.expect("recovered");
        assert_eq!(r.added, 200, "the lost window rewritten");
        assert!(k.is_recovering().is_none());
        let ours = k.read_ours().await.expect("dump");
        assert_eq!(ours.len(), 300, "the kernel holds every route we want");
    });
}

#[test]
fn a_failing_recovery_backs_off() {
    in_new_netns("a_failing_recovery_backs_off", || async {
        let cfg = ExportConfig {
            retry_initial_ms: 100,
            retry_max_ms: 1_000,
            ..ExportConfig::default()
        };
        let mut k = KernelInstaller::open(cfg).await.expect("installer");
        k.fail_next_sync = true;
        assert!(k.apply((0..10).map(blackhole)).await.is_err());
        // The reconciliation fails too: the next try waits.
        k.fail_next_sync = true;
        assert!(k.retry_due().await.is_err());
        let wait = k
            .next_retry_at()
            .expect("scheduled")
            .saturating_duration_since(Instant::now());
        assert!(wait > Duration::from_millis(100), "{wait:?}");
        tokio::time::sleep(wait).await;
        k.retry_due().await.expect("recovered");
        assert_eq!(k.read_ours().await.expect("dump").len(), 10);
    });
}
