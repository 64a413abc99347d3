//! systemd `Type=notify`: bgpd started with `NOTIFY_SOCKET` pointing at a unix datagram
//! socket the test binds, as systemd would. `READY=1` arrives once the listeners accept
//! connections (checked the moment it arrives: the BGP listener and the control socket
//! answer), `RELOADING=1` then `READY=1` around a SIGHUP reload, `STOPPING=1` on SIGTERM.

mod support;

use std::net::TcpStream;
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use support::{bgpd_bin, DEADLINE};

/// Kills the daemon (by PID) if the test ends early.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The next notification: its `KEY=VALUE` lines.
fn next(rx: &UnixDatagram) -> Vec<String> {
    let mut buf = [0u8; 4096];
    let n = rx.recv(&mut buf).expect("a notification in time");
    String::from_utf8_lossy(buf.get(..n).unwrap_or_default())
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn ready_after_listeners_reloading_and_stopping() {
    let dir = support::tempdir("bgpd-notify");
    let d = dir.path();
    let listen = "127.0.94.1:11194";
    let config = support::global_toml(d, "n", 64512, "10.94.0.1", listen, "");
    let path = d.join("n.toml");
    std::fs::write(&path, config).expect("config");
    let notify = d.join("notify.sock");
    let rx = UnixDatagram::bind(&notify).expect("bind the notify socket");
    rx.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let child = Command::new(bgpd_bin())
        .arg("-c")
        .arg(&path)
        .env("NOTIFY_SOCKET", &notify)
        .env("BGPD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("bgpd");
    let mut guard = Guard(child);

    let ready = next(&rx);
    assert!(ready.iter().any(|l| l == "READY=1"), "{ready:?}");
    // At READY=1 every listener already accepts connections.
    TcpStream::connect_timeout(&listen.parse().expect("addr"), Duration::from_secs(5))
        .expect("the BGP listener accepts at READY=1");
    UnixStream::connect(d.join("n.sock")).expect("the control socket accepts at READY=1");

    let pid = i32::try_from(guard.0.id()).expect("pid");
    // SAFETY: a signal to the child we started, by its PID.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGHUP) }, 0);
    let reloading = next(&rx);
    assert!(
        reloading.iter().any(|l| l == "RELOADING=1"),
        "{reloading:?}"
    );
    assert!(
        reloading.iter().any(|l| l
            .strip_prefix("MONOTONIC_USEC=")
            .is_some_and(|v| v.parse::<u64>().is_ok_and(|v| v > 0))),
        "{reloading:?}"
    );
    let ready = next(&rx);
    assert!(ready.iter().any(|l| l == "READY=1"), "{ready:?}");

    // SAFETY: as above.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let stopping = next(&rx);
    assert!(stopping.iter().any(|l| l == "STOPPING=1"), "{stopping:?}");
    let status = guard.0.wait().expect("bgpd exits");
    assert!(status.success(), "{status:?}");
}
