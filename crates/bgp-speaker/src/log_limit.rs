//! Log lines an outsider can trigger, limited.
//!
//! Anyone who can reach port 179 can open connections from an address that is not a peer,
//! and a peer can reconnect as fast as it likes while its session waits out a backoff.
//! Logging every refusal would let them fill the disk and spend our CPU on formatting; a
//! [`LogLimit`] lets a burst through per period and counts the rest, reporting the count
//! with the next line it lets through.

use std::time::{Duration, Instant};

/// Lines let through per period.
const BURST: u32 = 10;
/// The period.
const PERIOD: Duration = Duration::from_secs(60);

/// A limit for one kind of log line.
#[derive(Debug)]
pub(crate) struct LogLimit {
    window: Instant,
    in_window: u32,
    suppressed: u64,
}

impl Default for LogLimit {
    fn default() -> Self {
        LogLimit {
            window: Instant::now(),
            in_window: 0,
            suppressed: 0,
        }
    }
}

impl LogLimit {
    /// Whether to log this occurrence: `Some(n)` with the number of lines suppressed since
    /// the last one logged, `None` to stay quiet.
    pub(crate) fn allow(&mut self) -> Option<u64> {
        self.allow_at(Instant::now())
    }

    fn allow_at(&mut self, now: Instant) -> Option<u64> {
        if now.saturating_duration_since(self.window) >= PERIOD {
            self.window = now;
            self.in_window = 0;
        }
        if self.in_window < BURST {
            self.in_window += 1;
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_per_period_then_counted() {
        let mut l = LogLimit::default();
        let t0 = Instant::now();
        let logged = (0..100).filter(|_| l.allow_at(t0).is_some()).count();
        assert_eq!(logged, BURST as usize);
        // The next period lets lines through again and reports what was held back.
        assert_eq!(l.allow_at(t0 + PERIOD), Some(90));
        assert_eq!(l.allow_at(t0 + PERIOD), Some(0));
    }
}
