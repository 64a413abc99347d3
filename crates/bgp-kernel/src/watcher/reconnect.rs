//! How long the watcher waits before reconnecting after its netlink connection failed:
//! 0.5 s doubling up to 30 s, back to 0.5 s after a connection that lasted a minute (a
//! healthy one), so a kernel or socket that keeps failing costs little and a rare failure is
//! repaired quickly. Time is a parameter.

use std::time::Duration;

/// First wait before reconnecting after a failure; doubled up to [`RECONNECT_MAX`].
const RECONNECT_FIRST: Duration = Duration::from_millis(500);
/// Longest wait between reconnection attempts.
const RECONNECT_MAX: Duration = Duration::from_secs(30);
/// A connection that lasted this long was healthy: the next failure waits the first delay.
const HEALTHY_AFTER: Duration = Duration::from_secs(60);

/// The reconnection backoff.
#[derive(Debug, Clone)]
pub(crate) struct Reconnect {
    wait: Duration,
}

impl Default for Reconnect {
    fn default() -> Self {
        Reconnect {
            wait: RECONNECT_FIRST,
        }
    }
}

impl Reconnect {
    /// A connection ended after lasting `lasted`.
    pub fn connection_ended(&mut self, lasted: Duration) {
        if lasted >= HEALTHY_AFTER {
            self.wait = RECONNECT_FIRST;
        }
    }

    /// How long to wait before the next attempt (each call waits longer).
    pub fn next_wait(&mut self) -> Duration {
        let w = self.wait;
        self.wait = (w * 2).min(RECONNECT_MAX);
        w
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_to_the_maximum_and_resets_after_a_healthy_connection() {
        let mut r = Reconnect::default();
        let waits: Vec<u128> = (0..9).map(|_| r.next_wait().as_millis()).collect();
        assert_eq!(
            waits,
            [500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]
        );
        // A short-lived connection does not reset the backoff.
        r.connection_ended(Duration::from_secs(5));
        assert_eq!(r.next_wait(), RECONNECT_MAX);
        r.connection_ended(HEALTHY_AFTER);
        assert_eq!(r.next_wait(), RECONNECT_FIRST);
    }
}
