//! How a [`Client`](super::Client) runs: what it says in its Initiation, how big its queue
//! may grow, and its timers.

use std::time::Duration;

/// Configuration of one station connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientConfig {
    /// sysName of the Initiation message (RFC 7854 4.3: MUST be sent).
    pub sys_name: String,
    /// sysDescr of the Initiation message (MUST be sent).
    pub sys_descr: String,
    /// Most bytes waiting to be written. A message that would go beyond it overflows the
    /// queue: everything unsent is dropped, a Termination "out of resources" is sent and
    /// the client reconnects and replays (see the module docs).
    pub max_queue: usize,
    /// First reconnection delay; doubled after each failure up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// A connection that lasted this long resets the delay to `backoff_initial`.
    pub stable_after: Duration,
    /// A connection attempt not reported within this time is abandoned.
    pub connect_timeout: Duration,
    /// Queued bytes that nobody takes for this long mean a dead or stuck station: the
    /// connection is dropped and retried.
    pub send_timeout: Duration,
    /// Interval of [`ClientEvent::StatisticsDue`](super::ClientEvent::StatisticsDue);
    /// `None` for no statistics.
    pub stats_interval: Option<Duration>,
    /// Seed of the reconnection jitter: nodes restarting together (a whole cluster after
    /// a station restart) should not reconnect in step; give each a different seed, such
    /// as its router id.
    pub jitter_seed: u64,
}

/// A configuration the client cannot run with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("BMP client configuration: {0}")]
pub struct ConfigError(pub String);

/// The smallest queue: room for a few of the largest messages.
pub const MIN_QUEUE: usize = 256 * 1024;

impl ClientConfig {
    /// Defaults: 16 MiB queue, backoff 1 s doubling to 60 s, reset after 60 s up, 30 s
    /// connect timeout, 120 s send timeout, statistics every 60 s.
    pub fn new(sys_name: impl Into<String>, sys_descr: impl Into<String>) -> ClientConfig {
        ClientConfig {
            sys_name: sys_name.into(),
            sys_descr: sys_descr.into(),
            max_queue: 16 << 20,
            backoff_initial: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(120),
            stats_interval: Some(Duration::from_secs(60)),
            jitter_seed: 0,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        let fail = |m: String| Err(ConfigError(m));
        if self.max_queue < MIN_QUEUE {
            return fail(format!(
                "max_queue of {} bytes is below {MIN_QUEUE}",
                self.max_queue
            ));
        }
        if self.backoff_initial.is_zero() || self.backoff_initial > self.backoff_max {
            return fail(format!(
                "backoff must satisfy 0 < initial ({:?}) <= max ({:?})",
                self.backoff_initial, self.backoff_max
            ));
        }
        for (name, d) in [
            ("connect_timeout", self.connect_timeout),
            ("send_timeout", self.send_timeout),
        ] {
            if d.is_zero() {
                return fail(format!("{name} must not be zero"));
            }
        }
        if self
            .stats_interval
            .is_some_and(|d| d < Duration::from_secs(1))
        {
            return fail("stats_interval must be at least a second".into());
        }
        if self.sys_name.len() > usize::from(u16::MAX)
            || self.sys_descr.len() > usize::from(u16::MAX)
        {
            return fail("sysName and sysDescr must fit a TLV (65535 octets)".into());
        }
        Ok(())
    }
}
