//! Polling with a timeout. The timeout is a bound on how long a broken setup
//! may hang a test, never a performance assertion: it is generous (see
//! [`TIMEOUT`]) because the CI machine has 2 shared cores.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

/// Default bound for sessions to establish and routes to propagate.
pub const TIMEOUT: Duration = Duration::from_secs(90);

/// Interval between polls.
const POLL: Duration = Duration::from_millis(250);

/// Polls `probe` until it returns `Ok(Some(value))`, then returns the value.
///
/// `Ok(None)` means "not yet"; `Err(e)` is treated as transient (a daemon's
/// control socket may not exist yet) and remembered, except
/// [`Error::Exited`], which is returned at once. After `timeout` the
/// result is [`Error::Timeout`] naming `what` and the last error seen.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + timeout;
    loop {
        let last = match probe() {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => "condition false".to_string(),
            // A daemon that died will not come back: fail now, not at the timeout.
            Err(e @ Error::Exited { .. }) => return Err(e),
            Err(e) => e.to_string(),
        };
        if Instant::now() >= deadline {
            return Err(Error::Timeout {
                what: what.to_string(),
                secs: timeout.as_secs(),
                last,
            });
        }
        std::thread::sleep(POLL);
    }
}

/// Like [`wait_until`] for a boolean condition, with a description of the
/// state that is reported on timeout: `probe` returns `Ok(Ok(()))` when done
/// or `Ok(Err(state))` describing what it saw instead.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<std::result::Result<(), String>>,
) -> Result<()> {
    let mut last_state = None;
    let r = wait_until(what, timeout, || match probe()? {
        Ok(()) => Ok(Some(())),
        Err(state) => {
            last_state = Some(state);
            Ok(None)
        }
    });
    match (r, last_state) {
        (Err(Error::Timeout { what, secs, .. }), Some(state)) => Err(Error::Timeout {
            what,
            secs,
            last: state,
        }),
        (r, _) => r,
    }
}

/// Waits until the counter read by `count` is above `before` (a counter that
/// must grow: messages received, UPDATEs sent); returns its value.
pub(crate) fn wait_above(
    what: &str,
    before: u64,
    timeout: Duration,
    mut count: impl FnMut() -> Result<u64>,
) -> Result<u64> {
    let mut last = before;
    wait_for(what, timeout, || {
        last = count()?;
        Ok(if last > before {
            Ok(())
        } else {
            Err(format!("still {last}"))
        })
    })?;
    Ok(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_value_once_condition_holds() {
        let mut n = 0;
        let v = wait_until("n reaches 3", Duration::from_secs(30), || {
            n += 1;
            Ok((n >= 3).then_some(n))
        })
        .unwrap();
        assert_eq!(v, 3);
    }

    #[test]
    fn times_out_with_last_error() {
        let r: Result<()> = wait_until("never", Duration::ZERO, || {
            Err(Error::Check("socket missing".into()))
        });
        let e = r.unwrap_err().to_string();
        assert!(e.contains("never") && e.contains("socket missing"), "{e}");
    }

    #[test]
    fn exited_daemon_fails_at_once() {
        let r: Result<()> = wait_until("never", Duration::from_secs(3600), || {
            Err(Error::Exited {
                name: "bird".into(),
                status: "exit 1".into(),
            })
        });
        assert!(matches!(r, Err(Error::Exited { .. })));
    }

    #[test]
    fn wait_above_returns_the_grown_count() {
        let mut n = 5;
        let v = wait_above("n above 6", 6, Duration::from_secs(30), || {
            n += 1;
            Ok(n)
        });
        assert_eq!(v.unwrap(), 7);
        let e = wait_above("never", 9, Duration::ZERO, || Ok(9)).unwrap_err();
        assert!(e.to_string().contains("still 9"), "{e}");
    }

    #[test]
    fn wait_for_reports_last_state() {
        let r = wait_for("ready", Duration::ZERO, || Ok(Err("state=Active".into())));
        let e = r.unwrap_err().to_string();
        assert!(e.contains("state=Active"), "{e}");
    }
}
