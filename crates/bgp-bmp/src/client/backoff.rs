//! Reconnection delays: exponential backoff with jitter, deterministic for a given seed.
//!
//! The n-th consecutive failure waits `min(initial * 2^n, max)`, scaled by a factor drawn
//! uniformly from [0.5, 1] ("equal jitter"), so the delay still grows while nodes that
//! failed together spread out. The generator is xorshift64*, seeded by the caller: the
//! state machine stays sans-IO and its tests reproducible.

use std::time::Duration;

/// Exponential backoff with equal jitter (see the module doc).
#[derive(Clone, Debug)]
pub struct Backoff {
    initial: Duration,
    max: Duration,
    failures: u32,
    rng: u64,
}

impl Backoff {
    /// Delays from `initial` doubling up to `max`, jitter drawn from `seed`.
    pub fn new(initial: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            initial,
            max,
            failures: 0,
            // xorshift must not start at 0.
            rng: seed ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    /// The delay before the next attempt; counts one more failure.
    pub fn next_delay(&mut self) -> Duration {
        let exp = self.failures.min(31);
        self.failures = self.failures.saturating_add(1);
        let base = self
            .initial
            .checked_mul(1 << exp)
            .map_or(self.max, |d| d.min(self.max));
        // Factor in [0.5, 1]: 2^-1 * (1 + u), u in [0, 1).
        let u = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(0.5 * (1.0 + u))
    }

    /// Back to the initial delay (after a connection that lasted).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.rng = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_maximum_with_jitter_below_them() {
        let mut b = Backoff::new(Duration::from_secs(1), Duration::from_secs(60), 7);
        let delays: Vec<Duration> = (0..10).map(|_| b.next_delay()).collect();
        for (n, d) in delays.iter().enumerate() {
            let base = Duration::from_secs((1u64 << n).min(60));
            assert!(
                *d >= base / 2 && *d <= base,
                "attempt {n}: {d:?} for base {base:?}"
            );
        }
        // Jitter differs between seeds, not between runs of one seed.
        let mut again = Backoff::new(Duration::from_secs(1), Duration::from_secs(60), 7);
        assert_eq!(again.next_delay(), delays[0]);
        let mut other = Backoff::new(Duration::from_secs(1), Duration::from_secs(60), 8);
        let other: Vec<Duration> = (0..10).map(|_| other.next_delay()).collect();
        assert_ne!(other, delays);
        b.reset();
        assert!(b.next_delay() <= Duration::from_secs(1));
        // Far past the cap nothing overflows.
        for _ in 0..100 {
            assert!(b.next_delay() <= Duration::from_secs(60));
        }
    }
}
