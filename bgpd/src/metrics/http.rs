//! The metrics endpoint's HTTP server: just enough HTTP/1.x for a Prometheus scraper, and
//! bounded, since anyone on the node may connect.
//!
//! One request per connection (`Connection: close`). At most [`MAX_CONNECTIONS`] are served
//! at once; one more is closed at once. A request head (request line and headers) larger
//! than [`MAX_HEAD`] is answered 431; one not complete within [`READ_TIMEOUT`] is dropped;
//! an answer the client does not take within [`WRITE_TIMEOUT`] is abandoned. A body is
//! never read. `GET` (and `HEAD`) of `/metrics` is answered; any other path 404, any other
//! method 405.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tracing::{debug, warn};

use super::exposition;
use crate::handle::Daemon;

/// Connections served at once.
pub(super) const MAX_CONNECTIONS: usize = 16;
/// Largest request head accepted.
pub(super) const MAX_HEAD: usize = 8 * 1024;
/// Time a client has to send its request head.
pub(super) const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// Time a client has to take the answer.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Refusals logged individually before they are only counted.
const LOGGED_REFUSALS: u64 = 10;

/// The content type of the Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Accepts and serves connections on `listener` until the task is aborted.
pub(super) fn serve(listener: TcpListener, daemon: Daemon) -> JoinHandle<()> {
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let refused = AtomicU64::new(0);
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, peer)) => match slots.clone().try_acquire_owned() {
                        Ok(permit) => {
                            let daemon = daemon.clone();
                            connections.spawn(async move {
                                if let Err(e) = connection(stream, &daemon).await {
                                    debug!(client = %peer, error = %e, "metrics connection ended");
                                }
                                drop(permit);
                            });
                        }
                        Err(_) => {
                            let n = refused.fetch_add(1, Ordering::Relaxed) + 1;
                            if n <= LOGGED_REFUSALS || n.is_power_of_two() {
                                warn!(client = %peer, limit = MAX_CONNECTIONS, refused_so_far = n, "too many metrics connections: closing one");
                            }
                            drop(stream);
                        }
                    },
                    Err(e) => {
                        // Out of descriptors, most likely: back off instead of spinning.
                        warn!(error = %e, "metrics endpoint: accept");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                // Reap finished connections so the set does not grow.
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
    })
}

/// What a request asks for.
#[derive(Debug, PartialEq, Eq)]
enum Request {
    /// `GET /metrics` (`head`: `HEAD`, no body).
    Metrics { head: bool },
    /// Another path.
    NotFound,
    /// Another method.
    BadMethod,
    /// Not HTTP.
    Malformed,
}

/// Reads the request head of `stream`: `Ok(None)` when it is too large.
async fn read_head(stream: &mut TcpStream) -> std::io::Result<Option<Vec<u8>>> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 2048];
    loop {
        let n = stream.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before the end of the request",
            ));
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(Some(head));
        }
        if head.len() > MAX_HEAD {
            return Ok(None);
        }
    }
}

/// Parses the request line.
fn parse(head: &[u8]) -> Request {
    let line_end = head.iter().position(|b| *b == b'\n').unwrap_or(head.len());
    let Ok(line) = std::str::from_utf8(head.get(..line_end).unwrap_or_default()) else {
        return Request::Malformed;
    };
    let mut words = line.trim_end_matches('\r').split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (words.next(), words.next(), words.next(), words.next())
    else {
        return Request::Malformed;
    };
    if !version.starts_with("HTTP/1.") {
        return Request::Malformed;
    }
    let path = target.split('?').next().unwrap_or_default();
    let head = match method {
        "GET" => false,
        "HEAD" => true,
        _ => return Request::BadMethod,
    };
    if path == "/metrics" {
        Request::Metrics { head }
    } else {
        Request::NotFound
    }
}

/// Serves one connection: one request, one answer.
async fn connection(mut stream: TcpStream, daemon: &Daemon) -> std::io::Result<()> {
    let head = match tokio::time::timeout(READ_TIMEOUT, read_head(&mut stream)).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "no complete request in time",
            ))
        }
    };
    let (status, body, head_only) = match head.as_deref().map(parse) {
        None => (
            "431 Request Header Fields Too Large",
            "request too large\n".to_owned(),
            false,
        ),
        Some(Request::Metrics { head }) => ("200 OK", exposition::render(daemon).await, head),
        Some(Request::NotFound) => (
            "404 Not Found",
            "only /metrics is served\n".to_owned(),
            false,
        ),
        Some(Request::BadMethod) => ("405 Method Not Allowed", "only GET\n".to_owned(), false),
        Some(Request::Malformed) => (
            "400 Bad Request",
            "not an HTTP/1 request\n".to_owned(),
            false,
        ),
    };
    let content_type = if status.starts_with("200") {
        CONTENT_TYPE
    } else {
        "text/plain; charset=utf-8"
    };
    let mut answer = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n{}\r\n",
        body.len(),
        if status.starts_with("405") {
            "Allow: GET, HEAD\r\n"
        } else {
            ""
        }
    )
    .into_bytes();
    if !head_only {
        answer.extend_from_slice(body.as_bytes());
    }
    match tokio::time::timeout(WRITE_TIMEOUT, stream.write_all(&answer)).await {
        Ok(r) => r?,
        Err(_) => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client did not take the answer",
            ))
        }
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(
            parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
            Request::Metrics { head: false }
        );
        assert_eq!(
            parse(b"GET /metrics?name[]=x HTTP/1.0\r\n\r\n"),
            Request::Metrics { head: false }
        );
        assert_eq!(
            parse(b"HEAD /metrics HTTP/1.1\r\n\r\n"),
            Request::Metrics { head: true }
        );
        assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(parse(b"GET /metricsx HTTP/1.1\r\n\r\n"), Request::NotFound);
        assert_eq!(parse(b"POST /metrics HTTP/1.1\r\n\r\n"), Request::BadMethod);
        assert_eq!(parse(b"GET /metrics\r\n\r\n"), Request::Malformed);
        assert_eq!(parse(b"GET /metrics SSH-2.0\r\n\r\n"), Request::Malformed);
        assert_eq!(parse(b"\xff\xfe\r\n\r\n"), Request::Malformed);
    }
}
