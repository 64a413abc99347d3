//! systemd's service notification protocol (sd_notify(3)), for `Type=notify` units: one
//! datagram of `KEY=VALUE` lines to the unix socket named by `$NOTIFY_SOCKET` (a path, or
//! `@name` for an abstract socket). Without the variable nothing is sent.
//!
//! bgpd sends `READY=1` once its listeners (BGP, control and status sockets, metrics)
//! accept connections and the kernel FIB's first dump of our routes is read (the speaker
//! has started); `RELOADING=1` (with `MONOTONIC_USEC`) and `READY=1` around a SIGHUP
//! reload; `STOPPING=1` when it shuts down. The protocol is small enough to write here
//! rather than depend on a crate for it.

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

use tracing::warn;

/// The environment variable systemd sets for `Type=notify` services.
const NOTIFY_SOCKET: &str = "NOTIFY_SOCKET";

/// Sends `state` to the service manager, if there is one; a failure is logged, never
/// fatal (the service manager then decides, by its timeout).
pub fn notify(state: &str) {
    let Some(target) = std::env::var_os(NOTIFY_SOCKET) else {
        return;
    };
    if let Err(e) = send(&target.to_string_lossy(), state) {
        warn!(socket = %target.to_string_lossy(), error = %e, state, "cannot notify the service manager");
    }
}

/// The datagram to `target` (`/path` or `@abstract`).
fn send(target: &str, state: &str) -> std::io::Result<()> {
    let addr = match target.strip_prefix('@') {
        Some(name) => SocketAddr::from_abstract_name(name.as_bytes())?,
        None if target.starts_with('/') => SocketAddr::from_pathname(target)?,
        None => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "NOTIFY_SOCKET is neither an absolute path nor @abstract",
            ))
        }
    };
    let sock = UnixDatagram::unbound()?;
    sock.send_to_addr(state.as_bytes(), &addr)?;
    Ok(())
}

/// `RELOADING=1` with the time of the reload (`MONOTONIC_USEC`, which `Type=notify-reload`
/// requires and `Type=notify` accepts).
pub fn reloading() {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec we own; CLOCK_MONOTONIC always exists.
    let usec = if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) } == 0 {
        (ts.tv_sec as u64) * 1_000_000 + (ts.tv_nsec as u64) / 1_000
    } else {
        0
    };
    notify(&format!("RELOADING=1\nMONOTONIC_USEC={usec}"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagram_to_a_path_and_an_abstract_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let rx = UnixDatagram::bind(&path).unwrap();
        send(path.to_str().unwrap(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");

        let name = format!("bgpd-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        send(&format!("@{name}"), "STOPPING=1").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");

        assert!(send("relative/path", "READY=1").is_err());
    }
}
