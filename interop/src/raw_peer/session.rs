//! One connection of the scripted peer: it sends exactly the messages a test chooses
//! (encoded by the bgp-proto codec, or bytes built by [`super::wire`]) and hands over
//! every whole message it receives, framed (never more than the length field allows,
//! at most 65,535 bytes) and decoded with the codec context the OPENs negotiated.
//!
//! How it reads is chosen when the connection is made ([`Reading`]): a reader thread
//! takes every message as it arrives and stamps it, so a test can check that
//! KEEPALIVEs kept coming; or nothing is read until the test asks, so what the other
//! side sends piles up in the sockets as with a peer that stopped reading. Writes go
//! through one lock, so a KEEPALIVE thread ([`RawSession::keepalives`]), a flooding
//! thread ([`RawSession::sender`]) and the test never interleave bytes of two messages.

use std::io::{Read as _, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bgp_proto::wire::{decode_message, encode_message, frame_len, Inbound};
use bgp_proto::{Capability, CodecContext, Message, Notification, Open, MAX_EXTENDED_MESSAGE_LEN};
use bytes::BytesMut;

use super::connect::{accept, connect};
use super::open::RawPeer;
use crate::error::{Error, Result};
use crate::netns::Netns;

/// How a [`RawSession`] reads what the other side sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// A reader thread takes every message as it arrives ([`Frame::at`] is its arrival
    /// time): the other side never waits on us.
    Continuous,
    /// Messages are read only when the test asks ([`RawSession::next`] and the like):
    /// until then they stay in the sockets' buffers and a sender that fills them
    /// blocks, as with a peer that stopped reading.
    OnDemand,
}

/// A whole message as it arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// When it was complete (read by the reader thread, or when asked for).
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

/// Received bytes cut into whole messages.
#[derive(Debug, Default)]
struct Framer {
    buf: Vec<u8>,
}

impl Framer {
    /// The next whole message in what was received so far; an error once the bytes
    /// cannot be a BGP message (bad marker, length out of range).
    fn next_frame(&mut self) -> std::result::Result<Option<Frame>, String> {
        match frame_len(&self.buf, MAX_EXTENDED_MESSAGE_LEN) {
            Ok(Some(len)) if len <= self.buf.len() => Ok(Some(Frame {
                at: Instant::now(),
                bytes: self.buf.drain(..len).collect(),
            })),
            Ok(_) => Ok(None),
            Err(e) => Err(format!("bad framing from the peer: {e}")),
        }
    }
}

/// What the reader thread hands over: a message, or why the connection ended.
type Arrival = std::result::Result<Frame, String>;

/// Where received messages come from.
enum Inbox {
    /// From the reader thread.
    Thread(mpsc::Receiver<Arrival>),
    /// From the socket, read when asked; `None` once it closed or broke.
    OnDemand(Mutex<Option<(TcpStream, Framer)>>),
}

/// One connection of the test's peer. Dropping it closes the connection.
pub struct RawSession {
    /// The socket, for shutdown and socket options (shared with the clones below).
    socket: TcpStream,
    writer: Arc<Mutex<TcpStream>>,
    inbox: Inbox,
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

/// Reads `stream` until it ends, handing each whole message to `tx`.
fn read_continuously(mut stream: TcpStream, tx: mpsc::Sender<Arrival>) {
    let mut framer = Framer::default();
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        loop {
            match framer.next_frame() {
                Ok(Some(frame)) => {
                    if tx.send(Ok(frame)).is_err() {
                        return;
                    }
                }
                Ok(None) => break,
                Err(e) => {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        match stream.read(&mut chunk) {
            Ok(0) => {
                let _ = tx.send(Err("connection closed".into()));
                return;
            }
            Ok(n) => framer
                .buf
                .extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                let _ = tx.send(Err(format!("connection error: {e}")));
                return;
            }
        }
    }
}

impl RawSession {
    /// Takes over a connected stream.
    pub fn new(stream: TcpStream, reading: Reading) -> Result<RawSession> {
        let _ = stream.set_nodelay(true);
        let reader = stream.try_clone().map_err(|e| io_err("cloning", e))?;
        let inbox = match reading {
            Reading::Continuous => {
                let (tx, rx) = mpsc::channel();
                std::thread::Builder::new()
                    .name("raw-peer-reader".into())
                    .spawn(move || read_continuously(reader, tx))
                    .map_err(|e| io_err("starting the reader thread of", e))?;
                Inbox::Thread(rx)
            }
            Reading::OnDemand => Inbox::OnDemand(Mutex::new(Some((reader, Framer::default())))),
        };
        let writer = stream.try_clone().map_err(|e| io_err("cloning", e))?;
        Ok(RawSession {
            socket: stream,
            writer: Arc::new(Mutex::new(writer)),
            inbox,
            ctx: CodecContext::default(),
            stop_keepalives: Arc::new(AtomicBool::new(false)),
            keepalive_thread: None,
        })
    }

    /// Connects to `to`, from `from` when given, inside `ns` when given (10 s timeout),
    /// reading continuously.
    pub fn connect(ns: Option<&Netns>, from: Option<IpAddr>, to: SocketAddr) -> Result<RawSession> {
        RawSession::connect_with(ns, from, to, Reading::Continuous)
    }

    /// [`RawSession::connect`] reading as `reading` says.
    pub fn connect_with(
        ns: Option<&Netns>,
        from: Option<IpAddr>,
        to: SocketAddr,
        reading: Reading,
    ) -> Result<RawSession> {
        RawSession::new(connect(ns, from, to)?, reading)
    }

    /// Waits up to `timeout` for one connection on `listener` (read continuously).
    pub fn accept(listener: &TcpListener, timeout: Duration) -> Result<RawSession> {
        RawSession::new(accept(listener, timeout)?, Reading::Continuous)
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

    /// Sends each of `messages` as it is.
    pub fn send_all(&self, messages: &[Vec<u8>]) -> Result<()> {
        let sender = self.sender();
        messages.iter().try_for_each(|m| sender.send_bytes(m))
    }

    /// A handle that writes to this connection from another thread (a flood running while
    /// the test reads what comes back).
    pub fn sender(&self) -> RawSender {
        RawSender {
            writer: self.writer.clone(),
            ctx: self.ctx.clone(),
        }
    }

    /// Bounds every write (by this session and its senders) to `timeout`: a write the
    /// other side does not take in time fails instead of blocking.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> Result<()> {
        self.socket
            .set_write_timeout(timeout)
            .map_err(|e| io_err("configuring", e))
    }

    /// The next whole message, waiting up to `timeout`; `Ok(None)` once the connection
    /// closed (or broke).
    pub fn next_frame(&self, timeout: Duration) -> Result<Option<Frame>> {
        let timed_out = || Error::Timeout {
            what: "a BGP message from the peer".into(),
            secs: timeout.as_secs(),
            last: "nothing".into(),
        };
        match &self.inbox {
            Inbox::Thread(rx) => match rx.recv_timeout(timeout) {
                Ok(Ok(f)) => Ok(Some(f)),
                Ok(Err(_)) | Err(mpsc::RecvTimeoutError::Disconnected) => Ok(None),
                Err(mpsc::RecvTimeoutError::Timeout) => Err(timed_out()),
            },
            Inbox::OnDemand(state) => {
                let mut state = state
                    .lock()
                    .map_err(|_| Error::Invalid("raw peer reader lock poisoned".into()))?;
                let deadline = Instant::now() + timeout;
                let mut chunk = vec![0u8; 64 * 1024];
                loop {
                    let Some((stream, framer)) = state.as_mut() else {
                        return Ok(None);
                    };
                    match framer.next_frame() {
                        Ok(Some(f)) => return Ok(Some(f)),
                        Ok(None) => {}
                        Err(_) => {
                            *state = None;
                            return Ok(None);
                        }
                    }
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(timed_out());
                    }
                    stream
                        .set_read_timeout(Some(left))
                        .map_err(|e| io_err("configuring", e))?;
                    match stream.read(&mut chunk) {
                        Ok(0) => *state = None,
                        Ok(n) => framer
                            .buf
                            .extend_from_slice(chunk.get(..n).unwrap_or_default()),
                        Err(e)
                            if matches!(
                                e.kind(),
                                std::io::ErrorKind::WouldBlock
                                    | std::io::ErrorKind::TimedOut
                                    | std::io::ErrorKind::Interrupted
                            ) => {}
                        Err(_) => *state = None,
                    }
                }
            }
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
    /// KEEPALIVE: the session is then Established on both sides (RFC 4271 8.2.2).
    /// Returns their OPEN.
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
        let _ = self.socket.shutdown(std::net::Shutdown::Both);
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
    use std::net::Ipv4Addr;

    use super::*;

    /// `a` connects (reading as `reading`) and `b` accepts on loopback; both establish
    /// and `b` sends a Cease NOTIFICATION, which `a` must read before the end of stream.
    fn exchange(reading: Reading) {
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
        let mut s = RawSession::connect_with(None, None, addr, reading).expect("connect");
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

    #[test]
    fn two_raw_sessions_establish_and_exchange_messages() {
        exchange(Reading::Continuous);
    }

    #[test]
    fn a_session_reading_on_demand_establishes_and_reads_the_same() {
        exchange(Reading::OnDemand);
    }

    #[test]
    fn reading_on_demand_leaves_messages_in_the_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let t = std::thread::spawn(move || {
            let s = RawSession::accept(&listener, Duration::from_secs(10)).expect("accept");
            s.set_write_timeout(Some(Duration::from_millis(500)))
                .expect("timeout");
            // Keepalives until the socket buffers are full: the other side never reads.
            let ka = crate::raw_peer::wire::message(bgp_proto::message_type::KEEPALIVE, &[]);
            let mut sent = 0usize;
            while s.send_bytes(&ka).is_ok() && sent < 10_000_000 {
                sent += 1;
            }
            (s, sent)
        });
        let s = RawSession::connect_with(None, None, addr, Reading::OnDemand).expect("connect");
        let (peer, sent) = t.join().expect("thread");
        assert!(sent < 10_000_000, "the writer never blocked");
        // Everything written is still there, in order, when asked for.
        for _ in 0..sent {
            let f = s
                .next_frame(Duration::from_secs(10))
                .expect("read")
                .expect("a frame");
            assert_eq!(f.msg_type(), 4);
        }
        drop(peer);
        assert!(s
            .next_frame(Duration::from_secs(10))
            .expect("read")
            .is_none());
    }
}
