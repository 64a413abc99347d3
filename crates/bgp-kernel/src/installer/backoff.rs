//! Retry timing: per-route retries after a refusal, and the recovery after the netlink
//! channel failed.
//!
//! Both back off exponentially, `retry_initial_ms` doubling up to `retry_max_ms`
//! (`ExportConfig`), so a conflict that lasts (another protocol's route at our key) or a
//! kernel that keeps failing costs little, while a short one is repaired quickly. Time is a
//! parameter: nothing here reads a clock.

use std::time::{Duration, Instant};

use crate::config::ExportConfig;
use crate::types::Errno;

/// `retry_initial_ms << shift`, capped at `retry_max_ms`.
pub(crate) fn delay(cfg: &ExportConfig, shift: u32) -> Duration {
    Duration::from_millis(
        cfg.retry_initial_ms
            .saturating_mul(1u64 << shift.min(20))
            .min(cfg.retry_max_ms),
    )
}

/// The retry state of one route the kernel refused (or that must be rewritten).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Retry {
    /// Refusals in this episode (the first retry waits `retry_initial_ms`).
    pub attempts: u32,
    /// When to try again; `None` while the retry is under way (queued or in flight), so
    /// the time is not reported as due again.
    pub at: Option<Instant>,
    /// Why it was refused (a change of reason is logged again).
    pub errno: Errno,
}

/// A pending recovery: a kernel write or read failed, so what the kernel holds is unknown
/// until our routes are dumped and reconciled again.
#[derive(Debug, Clone)]
pub(crate) struct Recovery {
    /// When to dump and reconcile; `None` once that is under way.
    pub at: Option<Instant>,
    /// Failed attempts so far (for the backoff).
    pub attempts: u32,
    /// The error that started it (or the latest), for status reports.
    pub reason: String,
}

impl Recovery {
    /// The first failure: reconcile right away.
    pub fn start(reason: String, now: Instant) -> Self {
        Recovery {
            at: Some(now),
            attempts: 0,
            reason,
        }
    }

    /// The reconciliation failed again: wait longer (twice `retry_initial_ms` the first
    /// time, doubling up to `retry_max_ms`).
    pub fn failed_again(&mut self, cfg: &ExportConfig, reason: String, now: Instant) {
        self.attempts = self.attempts.saturating_add(1);
        let wait = delay(cfg, self.attempts);
        tracing::warn!(error = %reason, attempts = self.attempts, retry_in_ms = wait.as_millis() as u64, "kernel FIB reconciliation failed");
        self.at = Some(now + wait);
        self.reason = reason;
    }
}

/// Deletes of our routes left at an old metric that the kernel refused: retried together.
#[derive(Debug, Clone, Default)]
pub(crate) struct OrphanRetry {
    pub attempts: u32,
    pub at: Option<Instant>,
}

impl OrphanRetry {
    /// One more refusal: the next try waits longer.
    pub fn failed(&mut self, cfg: &ExportConfig, now: Instant) {
        self.attempts = self.attempts.saturating_add(1);
        self.at = Some(now + delay(cfg, self.attempts - 1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum() {
        let cfg = ExportConfig {
            retry_initial_ms: 100,
            retry_max_ms: 1_000,
            ..ExportConfig::default()
        };
        let ms: Vec<u128> = (0..6).map(|s| delay(&cfg, s).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 800, 1_000, 1_000]);
        // A huge shift neither overflows nor exceeds the cap.
        assert_eq!(delay(&cfg, u32::MAX).as_millis(), 1_000);
    }

    #[test]
    fn recovery_waits_longer_after_each_failure() {
        let cfg = ExportConfig {
            retry_initial_ms: 100,
            retry_max_ms: 10_000,
            ..ExportConfig::default()
        };
        let t0 = Instant::now();
        let mut r = Recovery::start("x".into(), t0);
        assert_eq!(r.at, Some(t0));
        r.failed_again(&cfg, "y".into(), t0);
        assert_eq!(r.at, Some(t0 + Duration::from_millis(200)));
        r.failed_again(&cfg, "z".into(), t0);
        assert_eq!(r.at, Some(t0 + Duration::from_millis(400)));
        assert_eq!((r.attempts, r.reason.as_str()), (2, "z"));
    }
}
