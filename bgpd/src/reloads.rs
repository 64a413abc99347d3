//! Configuration reloads and their results: counted by the daemon's handle on every
//! reload (SIGHUP, a change on disk, `bgpctl reload`), read by the metrics endpoint.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Configuration reloads and their results, as the endpoint reports them.
#[derive(Debug, Default)]
pub struct Reloads {
    applied: AtomicU64,
    refused: AtomicU64,
    /// Unix time of the last reload attempt, 0 before the first.
    last: AtomicU64,
    /// 1 when the last reload was applied (or none was tried), 0 when it was refused.
    last_applied: AtomicU64,
}

impl Reloads {
    /// Counts one reload: applied or refused.
    pub fn record(&self, applied: bool) {
        let counter = if applied {
            &self.applied
        } else {
            &self.refused
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        self.last.store(now, Ordering::Relaxed);
        self.last_applied
            .store(u64::from(applied), Ordering::Relaxed);
    }

    /// The counts as they are now.
    pub fn snapshot(&self) -> ReloadCounts {
        ReloadCounts {
            applied: self.applied.load(Ordering::Relaxed),
            refused: self.refused.load(Ordering::Relaxed),
            last: self.last.load(Ordering::Relaxed),
            last_applied: self.last.load(Ordering::Relaxed) == 0
                || self.last_applied.load(Ordering::Relaxed) == 1,
        }
    }
}

/// What [`Reloads`] held at one scrape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReloadCounts {
    /// Reloads applied.
    pub applied: u64,
    /// Reloads refused.
    pub refused: u64,
    /// Unix time of the last attempt, 0 before the first.
    pub last: u64,
    /// The last reload was applied (or none was tried).
    pub last_applied: bool,
}
