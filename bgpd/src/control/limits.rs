//! What one local client may hold of the daemon through a control socket: a bounded number
//! of connections, an idle timeout, a write timeout, and requests of bounded size.
//!
//! Both the JSON control socket and the BIRD-compatible one accept through
//! `accept_loop`. A connection beyond [`ControlLimits::max_connections`] is answered with
//! one line saying so and closed (a health check then fails loudly instead of hanging); a
//! client that sends nothing for [`ControlLimits::idle`] is disconnected; one that stops
//! reading an answer is dropped once a write made no progress for [`ControlLimits::write`]
//! (the `[global.control]` settings `max_connections` and `timeout`). So a stuck or hostile
//! local client costs at most a slot for a bounded time, never a growing buffer or a task
//! blocked forever.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bgp_speaker::config::ControlLimits;
use tokio::io::AsyncWriteExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinHandle;
use tracing::{debug, warn};

/// Refusals logged individually before they are only counted (a flood of connections must
/// not become a flood of log lines).
const LOGGED_REFUSALS: u64 = 10;

/// Writes `bytes` to `w`, giving up (as an error) when the client does not take them
/// within `timeout`.
pub(crate) async fn write_all<W: AsyncWriteExt + Unpin>(
    w: &mut W,
    bytes: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    match tokio::time::timeout(timeout, w.write_all(bytes)).await {
        Ok(r) => r,
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the client did not read the answer",
        )),
    }
}

/// Accepts connections on `listener` and runs `serve` for each while fewer than
/// `limits.max_connections` are open; beyond that a connection gets `refusal` (one line,
/// best effort) and is closed. `what` names the socket in logs.
pub(crate) fn accept_loop<F, Fut>(
    listener: UnixListener,
    limits: ControlLimits,
    what: &'static str,
    refusal: &'static [u8],
    serve: F,
) -> JoinHandle<()>
where
    F: Fn(UnixStream) -> Fut + Send + 'static,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refused = Arc::new(AtomicU64::new(0));
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => match slots.clone().try_acquire_owned() {
                    Ok(permit) => {
                        let fut = serve(stream);
                        tokio::spawn(run(fut, permit, what));
                    }
                    Err(_) => {
                        let n = refused.fetch_add(1, Ordering::Relaxed) + 1;
                        if n <= LOGGED_REFUSALS || n.is_power_of_two() {
                            warn!(
                                socket = what,
                                limit = limits.max_connections,
                                refused_so_far = n,
                                "too many connections: refusing one"
                            );
                        }
                        // Never wait on a client that is not reading: one non-blocking
                        // write (straight to the socket: tokio's try_write needs a
                        // readiness event a new stream has not had yet), then close.
                        if let Ok(s) = stream.into_std() {
                            let _ = std::io::Write::write(&mut &s, refusal);
                        }
                    }
                },
                Err(e) => {
                    // Out of descriptors, most likely: back off instead of spinning.
                    warn!(socket = what, error = %e, "accept");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    })
}

async fn run(
    fut: impl Future<Output = std::io::Result<()>>,
    permit: OwnedSemaphorePermit,
    what: &'static str,
) {
    if let Err(e) = fut.await {
        debug!(socket = what, error = %e, "connection ended");
    }
    drop(permit);
}
