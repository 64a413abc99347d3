//! A BGP peer played by the test itself over one TCP connection, with the bgp-proto codec:
//! it sends exactly the messages a test chooses (a flood of UPDATEs, a 64 KiB
//! NOTIFICATION, an OPEN at the moment it wants) and records every message it receives
//! with the time it arrived, so a test can check the NOTIFICATION it got or that
//! KEEPALIVEs kept coming.
//!
//! [`RawSession`] owns the connection: a reader thread frames what arrives (never more
//! than the length field allows, at most 65,535 bytes) and hands whole messages over a
//! channel; writes go through one lock so a KEEPALIVE thread ([`RawSession::keepalives`])
//! and the test never interleave bytes of two messages. [`RawPeer`] is what it says in
//! its OPEN. Sockets can be opened inside a [`Netns`] (they stay there) or on loopback.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bgp_proto::wire::{decode_message, encode_message, frame_len, Inbound};
use bgp_proto::{
    Capability, CodecContext, Family, GracefulRestart, GracefulRestartFamily, LlgrFamily, Message,
    Notification, Open,
};
use bytes::BytesMut;

use crate::error::{Error, Result};
use crate::netns::Netns;

/// Largest BGP message (RFC 8654 extended messages).
const MAX_FRAME: usize = 65_535;

/// What the test's peer says in its OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawPeer {
    /// Its AS.
    pub asn: u32,
    /// Its BGP identifier.
    pub router_id: Ipv4Addr,
    /// Proposed hold time (seconds).
    pub hold_time: u16,
    /// Capabilities announced.
    pub capabilities: Vec<Capability>,
}

impl RawPeer {
    /// IPv4 unicast, 4-octet AS, route refresh and extended messages (RFC 8654).
    pub fn new(asn: u32, router_id: Ipv4Addr, hold_time: u16) -> RawPeer {
        RawPeer {
            asn,
            router_id,
            hold_time,
            capabilities: vec![
                Capability::MultiProtocol(Family::IPV4_UNICAST),
                Capability::FourOctetAs(asn),
                Capability::RouteRefresh,
                Capability::ExtendedMessage,
            ],
        }
    }

    /// Adds graceful restart (RFC 4724) for IPv4 unicast, with the RFC 8538 N bit when
    /// `notification`.
    pub fn with_graceful_restart(mut self, restart_time: u16, notification: bool) -> RawPeer {
        self.capabilities
            .push(Capability::GracefulRestart(GracefulRestart {
                restart_state: false,
                notification,
                restart_time,
                families: vec![GracefulRestartFamily {
                    family: Family::IPV4_UNICAST,
                    forwarding_preserved: true,
                }],
            }));
        self
    }

    /// Adds long-lived graceful restart (RFC 9494) for IPv4 unicast with `stale_time`.
    pub fn with_long_lived_graceful_restart(mut self, stale_time: u32) -> RawPeer {
        self.capabilities
            .push(Capability::LongLivedGracefulRestart(vec![LlgrFamily {
                family: Family::IPV4_UNICAST,
                forwarding_preserved: true,
                stale_time,
            }]));
        self
    }

    /// The OPEN message.
    pub fn open(&self) -> Open {
        Open {
            version: 4,
            my_as: Open::my_as_field(self.asn),
            hold_time: self.hold_time,
            bgp_id: self.router_id,
            capabilities: self.capabilities.clone(),
            other_params: Vec::new(),
        }
    }
}

/// A whole message as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// When the reader thread had it complete.
    pub at: Instant,
    /// The message with its header.
    pub bytes: Vec<u8>,
}

impl Frame {
    /// The message type (1 OPEN, 2 UPDATE, 3 NOTIFICATION, 4 KEEPALIVE, 5 ROUTE-REFRESH).
    pub fn msg_type(&self) -> u8 {
        self.bytes.get(18).copied().unwrap_or(0)
    }
}

/// What the reader thread hands over.
type Arrival = std::result::Result<Frame, String>;

/// One connection of the test's peer. Dropping it closes the connection.
pub struct RawSession {
    writer: Arc<Mutex<TcpStream>>,
    frames: mpsc::Receiver<Arrival>,
    ctx: CodecContext,
    stop_keepalives: Arc<AtomicBool>,
    keepalive_thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RawSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawSession")
            .field("ctx", &self.ctx)
            .finish_non_exhaustive()
    }
}

fn io_err(what: &'static str, e: std::io::Error) -> Error {
    Error::io(what, "raw BGP connection", e)
}

impl RawSession {
    /// Takes over a connected stream.
    pub fn new(stream: TcpStream) -> Result<RawSession> {
        let _ = stream.set_nodelay(true);
        let mut reader = stream.try_clone().map_err(|e| io_err("cloning", e))?;
        let (tx, frames) = mpsc::channel();
        std::thread::Builder::new()
            .name("raw-peer-reader".into())
            .spawn(move || {
                let mut buf: Vec<u8> = Vec::new();
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    loop {
                        let len = match frame_len(&buf, MAX_FRAME) {
                            Ok(Some(len)) if len <= buf.len() => len,
                            Ok(_) => break,
                            Err(e) => {
                                let _ = tx.send(Err(format!("bad framing from the peer: {e}")));
                                return;
                            }
                        };
                        let bytes: Vec<u8> = buf.drain(..len).collect();
                        let frame = Frame {
                            at: Instant::now(),
                            bytes,
                        };
                        if tx.send(Ok(frame)).is_err() {
                            return;
                        }
                    }
                    match reader.read(&mut chunk) {
                        Ok(0) => {
                            let _ = tx.send(Err("connection closed".into()));
                            return;
                        }
                        Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            let _ = tx.send(Err(format!("connection error: {e}")));
                            return;
                        }
                    }
                }
            })
            .map_err(|e| io_err("starting the reader thread of", e))?;
        Ok(RawSession {
            writer: Arc::new(Mutex::new(stream)),
            frames,
            ctx: CodecContext::default(),
            stop_keepalives: Arc::new(AtomicBool::new(false)),
            keepalive_thread: None,
        })
    }

    /// Connects to `to`, from `from` when given, inside `ns` when given (10 s timeout).
    pub fn connect(ns: Option<&Netns>, from: Option<IpAddr>, to: SocketAddr) -> Result<RawSession> {
        let open = move || -> std::io::Result<TcpStream> {
            let domain = if to.is_ipv4() {
                socket2::Domain::IPV4
            } else {
                socket2::Domain::IPV6
            };
            let s = socket2::Socket::new(domain, socket2::Type::STREAM, None)?;
            if let Some(ip) = from {
                s.bind(&SocketAddr::new(ip, 0).into())?;
            }
            s.connect_timeout(&to.into(), Duration::from_secs(10))?;
            Ok(s.into())
        };
        let stream = match ns {
            Some(ns) => ns.enter(open)?,
            None => open(),
        }
        .map_err(|source| Error::Spawn {
            cmd: format!("connect to {to}"),
            source,
        })?;
        RawSession::new(stream)
    }

    /// Waits up to `timeout` for one connection on `listener`.
    pub fn accept(listener: &TcpListener, timeout: Duration) -> Result<RawSession> {
        listener
            .set_nonblocking(true)
            .map_err(|e| io_err("configuring", e))?;
        let deadline = Instant::now() + timeout;
        loop {
            match listener.accept() {
                Ok((s, _)) => {
                    s.set_nonblocking(false)
                        .map_err(|e| io_err("configuring", e))?;
                    return RawSession::new(s);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if Instant::now() >= deadline {
                        return Err(Error::Check("no connection to accept in time".into()));
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
                Err(e) => return Err(io_err("accepting on", e)),
            }
        }
    }

    /// The codec context in use (extended messages once both sides announced them).
    pub fn ctx(&self) -> &CodecContext {
        &self.ctx
    }

    /// Sends one message, encoded with the session's codec context.
    pub fn send(&self, m: &Message) -> Result<()> {
        self.sender().send(m)
    }

    /// Sends bytes as they are (one or more messages, or something broken on purpose).
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        self.sender().send_bytes(bytes)
    }

    /// A handle that writes to this connection from another thread (a flood running while
    /// the test reads what comes back).
    pub fn sender(&self) -> RawSender {
        RawSender {
            writer: self.writer.clone(),
            ctx: self.ctx.clone(),
        }
    }

    /// The next whole message, waiting up to `timeout`; `Ok(None)` once the connection
    /// closed (or broke).
    pub fn next_frame(&self, timeout: Duration) -> Result<Option<Frame>> {
        match self.frames.recv_timeout(timeout) {
            Ok(Ok(f)) => Ok(Some(f)),
            Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => Ok(None),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(Error::Timeout {
                what: "a BGP message from the peer".into(),
                secs: timeout.as_secs(),
                last: "nothing".into(),
            }),
        }
    }

    /// Decodes a frame with the session's codec context.
    pub fn decode(&self, f: &Frame) -> Result<Inbound> {
        decode_message(&f.bytes, &self.ctx)
            .map_err(|e| Error::parse("BGP message from the peer", e.to_string()))
    }

    /// The next decoded message; `Ok(None)` once the connection closed.
    pub fn next(&self, timeout: Duration) -> Result<Option<Inbound>> {
        match self.next_frame(timeout)? {
            Some(f) => self.decode(&f).map(Some),
            None => Ok(None),
        }
    }

    /// Sends `peer`'s OPEN, reads the other side's OPEN and KEEPALIVE and answers with a
    /// KEEPALIVE: the session is then Established on both sides. Returns their OPEN.
    pub fn establish(&mut self, peer: &RawPeer, timeout: Duration) -> Result<Open> {
        self.send(&Message::Open(peer.open()))?;
        let theirs = loop {
            match self.next(timeout)? {
                Some(Inbound::Open(o)) => break o,
                Some(Inbound::Notification(n)) => {
                    return Err(Error::Check(format!("NOTIFICATION instead of OPEN: {n}")))
                }
                Some(_) => continue,
                None => return Err(Error::Check("closed before its OPEN".into())),
            }
        };
        let ext = Capability::ExtendedMessage;
        self.ctx.extended_message =
            peer.capabilities.contains(&ext) && theirs.capabilities.contains(&ext);
        self.ctx.four_octet_as = theirs
            .capabilities
            .iter()
            .any(|c| matches!(c, Capability::FourOctetAs(_)))
            && peer
                .capabilities
                .iter()
                .any(|c| matches!(c, Capability::FourOctetAs(_)));
        self.send(&Message::Keepalive)?;
        loop {
            match self.next(timeout)? {
                Some(Inbound::Keepalive) => return Ok(theirs),
                Some(Inbound::Notification(n)) => {
                    return Err(Error::Check(format!(
                        "NOTIFICATION instead of KEEPALIVE: {n}"
                    )))
                }
                Some(_) => continue,
                None => return Err(Error::Check("closed before its KEEPALIVE".into())),
            }
        }
    }

    /// Sends a KEEPALIVE every `every` from a thread of its own until the session is
    /// dropped (a write that fails ends it).
    pub fn keepalives(&mut self, every: Duration) {
        let writer = self.writer.clone();
        let stop = self.stop_keepalives.clone();
        let mut ka = BytesMut::new();
        if encode_message(&Message::Keepalive, &CodecContext::default(), &mut ka).is_err() {
            return;
        }
        self.keepalive_thread = std::thread::Builder::new()
            .name("raw-peer-keepalive".into())
            .spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(every);
                    let Ok(mut w) = writer.lock() else { return };
                    if w.write_all(&ka).is_err() {
                        return;
                    }
                }
            })
            .ok();
    }

    /// Reads until a NOTIFICATION arrives (returned) or the connection closes (`None`),
    /// skipping other messages; gives up after `timeout` in all.
    pub fn notification(&self, timeout: Duration) -> Result<Option<Notification>> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left.max(Duration::from_millis(1)))? {
                Some(Inbound::Notification(n)) => return Ok(Some(n)),
                Some(_) => continue,
                None => return Ok(None),
            }
        }
    }

    /// Closes our side of the connection (the peer sees an end of stream).
    pub fn shutdown(&self) {
        if let Ok(w) = self.writer.lock() {
            let _ = w.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// The writing half of a [`RawSession`], for another thread.
#[derive(Debug, Clone)]
pub struct RawSender {
    writer: Arc<Mutex<TcpStream>>,
    ctx: CodecContext,
}

impl RawSender {
    /// Sends one message, encoded with the session's codec context (as it was when the
    /// sender was made).
    pub fn send(&self, m: &Message) -> Result<()> {
        let mut out = BytesMut::new();
        encode_message(m, &self.ctx, &mut out)
            .map_err(|e| Error::Invalid(format!("encoding {m:?}: {e}")))?;
        self.send_bytes(&out)
    }

    /// Sends bytes as they are.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<()> {
        let mut w = self
            .writer
            .lock()
            .map_err(|_| Error::Invalid("raw peer writer lock poisoned".into()))?;
        w.write_all(bytes).map_err(|e| io_err("writing to", e))
    }
}

impl Drop for RawSession {
    fn drop(&mut self) {
        self.stop_keepalives.store(true, Ordering::Relaxed);
        self.shutdown();
        if let Some(t) = self.keepalive_thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_raw_sessions_establish_and_exchange_messages() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let a = RawPeer::new(65001, Ipv4Addr::new(10, 0, 0, 1), 9);
        let b = RawPeer::new(65002, Ipv4Addr::new(10, 0, 0, 2), 9);
        let t = std::thread::spawn(move || {
            let mut s = RawSession::accept(&listener, Duration::from_secs(10)).expect("accept");
            s.establish(&b, Duration::from_secs(10))
                .expect("b established");
            s.send(&Message::Notification(Notification {
                code: 6,
                subcode: 2,
                data: bytes::Bytes::new(),
            }))
            .expect("notification");
            s
        });
        let mut s = RawSession::connect(None, None, addr).expect("connect");
        let theirs = s
            .establish(&a, Duration::from_secs(10))
            .expect("a established");
        assert_eq!(theirs.asn(), 65002);
        assert!(s.ctx().extended_message);
        let n = s
            .notification(Duration::from_secs(10))
            .expect("read")
            .expect("a NOTIFICATION");
        assert_eq!((n.code, n.subcode), (6, 2));
        drop(t.join().expect("thread"));
        assert!(s.next(Duration::from_secs(10)).expect("read").is_none());
    }
}
