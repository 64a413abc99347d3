//! The RIB's time: when each path was last changed, for `show route` ages and MRT
//! dumps' originated times. Sans-IO: the caller hands the time in ([`Rib::set_time`]);
//! the RIB never reads a clock. A path keeps 4 bytes of it (whole seconds since the
//! first time handed in), not a 16-byte `Instant`.

use std::time::{Duration, Instant};

use super::state::Rib;

/// The first time handed in and the latest, as seconds since it.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Clock {
    epoch: Option<Instant>,
    now: u32,
}

impl Clock {
    /// The time paths changed now are stamped with.
    pub fn now(&self) -> u32 {
        self.now
    }

    /// A path's stamp as an `Instant`; `None` before any time was handed in.
    pub fn instant(&self, since: u32) -> Option<Instant> {
        self.epoch
            .map(|e| e + Duration::from_secs(u64::from(since)))
    }

    fn set(&mut self, now: Instant) {
        let epoch = *self.epoch.get_or_insert(now);
        let secs = now.saturating_duration_since(epoch).as_secs();
        // 136 years of seconds; a later time stays at the last one rather than wrapping.
        self.now = u32::try_from(secs).unwrap_or(u32::MAX);
    }
}

impl Rib {
    /// The current time: paths stored or changed from now on are stamped with it (their
    /// [`PathInfo::since`](crate::PathInfo::since)). Call it before applying input
    /// ([`Rib::apply_update`], [`Rib::originate`]); time never goes back (an earlier
    /// `now` counts as the first one given).
    pub fn set_time(&mut self, now: Instant) {
        self.clock.set(now);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_are_seconds_since_the_first_time() {
        let t0 = Instant::now();
        let mut c = Clock::default();
        assert_eq!(c.instant(0), None);
        c.set(t0);
        assert_eq!(c.now(), 0);
        c.set(t0 + Duration::from_millis(61_500));
        assert_eq!(c.now(), 61);
        assert_eq!(c.instant(61), Some(t0 + Duration::from_secs(61)));
    }
}
