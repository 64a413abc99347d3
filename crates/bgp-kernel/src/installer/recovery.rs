//! After a kernel write or read fails, nothing is lost: the installer re-reads our routes
//! from the kernel and reconciles every one of them with what it wants.
//!
//! A failed window (the writer's socket broke, an acknowledgement timed out, the writer
//! thread died) leaves the routes of that window, and of every later change of the same
//! batch, in an unknown state; before this, they stayed wrong until each prefix changed
//! again. Now any error marks the installer as recovering: at the next
//! [`KernelInstaller::retry_due`] (right away the first time, then with exponential
//! backoff while it keeps failing, `retry_initial_ms` doubling up to `retry_max_ms`) it
//! opens a fresh writer socket, dumps our routes and rewrites every entry whose kernel form
//! is not the wanted one ([`KernelInstaller::resync`]). The wanted state is kept per entry,
//! so the FIB converges to the RIB's view whatever failed in between.

use std::time::{Duration, Instant};

use super::{ApplyReport, KernelInstaller};
use crate::nlsock::Writer;
use crate::KernelError;

/// A pending recovery.
#[derive(Debug, Clone)]
pub(super) struct Recovery {
    /// When to try.
    pub at: Instant,
    /// Failed attempts so far (for the backoff).
    attempts: u32,
    /// The error that started it, for status reports.
    pub reason: String,
}

impl KernelInstaller {
    /// Whether a failure left the kernel's state unknown and the reconciliation has not
    /// succeeded yet (the reason, for status reports).
    pub fn is_recovering(&self) -> Option<&str> {
        self.recovery.as_ref().map(|r| r.reason.as_str())
    }

    /// Passes `r` through, starting a recovery on an error.
    pub(super) fn note(
        &mut self,
        r: Result<ApplyReport, KernelError>,
    ) -> Result<ApplyReport, KernelError> {
        if let Err(e) = &r {
            if self.recovery.is_none() {
                tracing::error!(error = %e, "kernel FIB write failed: re-reading our routes to reconcile them");
                self.recovery = Some(Recovery {
                    at: Instant::now(),
                    attempts: 0,
                    reason: e.to_string(),
                });
            }
        }
        r
    }

    /// A fresh writer, a dump of our routes, every entry reconciled; on failure the next
    /// attempt waits longer.
    pub(super) async fn recover(&mut self) -> Result<ApplyReport, KernelError> {
        let attempt = async {
            self.writer = Writer::spawn(self.writer_rcvbuf)?;
            Box::pin(self.resync()).await
        };
        match attempt.await {
            Ok(r) => {
                if let Some(old) = self.recovery.take() {
                    tracing::info!(
                        after_attempts = old.attempts + 1,
                        rewritten = r.added + r.replaced + r.deleted,
                        "kernel FIB reconciled after a failure"
                    );
                }
                Ok(r)
            }
            Err(e) => {
                let attempts = self.recovery.as_ref().map_or(0, |r| r.attempts) + 1;
                let shift = attempts.min(20);
                let delay = self
                    .cfg
                    .retry_initial_ms
                    .saturating_mul(1u64 << shift)
                    .min(self.cfg.retry_max_ms);
                tracing::warn!(error = %e, attempts, retry_in_ms = delay, "kernel FIB reconciliation failed");
                self.recovery = Some(Recovery {
                    at: Instant::now() + Duration::from_millis(delay),
                    attempts,
                    reason: e.to_string(),
                });
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::ExportConfig;
    use crate::installer::{FibAction, FibOp, FibRoute};

    use super::*;

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
            let ours = k.dump_ours().await.expect("dump");
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
            assert_eq!(k.dump_ours().await.expect("dump").len(), 10);
        });
    }
}
