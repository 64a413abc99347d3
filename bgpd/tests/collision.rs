//! Connection collision (RFC 4271 section 6.8, RFC 6286 section 2.3), made deterministic:
//! the test plays the peer itself over raw TCP with the bgp-proto codec, so it decides
//! exactly when each OPEN arrives.
//!
//! bgpd (at 127.0.N.1) is configured to connect to the peer (127.0.N.2). The test
//! 1. accepts bgpd's outgoing connection and reads its OPEN without answering;
//! 2. connects from the same address to bgpd's listener and sends its OPEN, and reads
//!    bgpd's OPEN and KEEPALIVE there (that connection is now in OpenConfirm);
//! 3. answers the first OPEN, which puts both of bgpd's connections in OpenConfirm: bgpd
//!    must close the one opened by the speaker with the lower BGP Identifier (with equal
//!    identifiers, the lower AS) with Cease / Connection Collision Resolution (6/7);
//! 4. sends KEEPALIVE on the survivor, which must reach Established.
//!
//! A last case completes the peer's own connection without ever answering bgpd's OPEN:
//! when it is Established, bgpd closes its pending connection with 6/7 as well.
//!
//! No root needed: 127.0.N.x loopback addresses (N = 40..44), no port 179. Waits poll a
//! condition with a generous deadline; nothing asserts on elapsed time.

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::Path;

use bgp_proto::wire::{decode_message, encode_message, frame_len, Inbound};
use bgp_proto::{
    notification_code as nc, Capability, CodecContext, Family, Message, Notification, Open,
    AS_TRANS,
};
use bytes::BytesMut;
use support::Daemon;

const PORT: u16 = 11179;
/// Socket read timeout: a message bgpd owes us must arrive well within this.
const READ_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// One BGP connection on the test's side: whole messages in and out through the codec.
struct Wire {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Wire {
    fn new(stream: TcpStream) -> Wire {
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("read timeout");
        Wire {
            stream,
            buf: Vec::new(),
        }
    }

    fn send(&mut self, m: &Message) {
        let mut out = BytesMut::new();
        encode_message(m, &CodecContext::default(), &mut out).expect("encoding");
        self.stream.write_all(&out).expect("sending");
    }

    /// The next message, or `None` when bgpd closed the connection.
    fn recv(&mut self) -> Option<Inbound> {
        let ctx = CodecContext::default();
        loop {
            if let Some(len) = frame_len(&self.buf, ctx.max_message_len()).expect("framing") {
                if self.buf.len() >= len {
                    let frame: Vec<u8> = self.buf.drain(..len).collect();
                    return Some(decode_message(&frame, &ctx).expect("decoding"));
                }
            }
            let mut chunk = [0u8; 4096];
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
                // A reset after the NOTIFICATION is a close too.
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return None,
                Err(e) => panic!("reading from bgpd: {e}"),
            }
        }
    }

    fn recv_open(&mut self) -> Open {
        match self.recv() {
            Some(Inbound::Open(o)) => o,
            other => panic!("expected OPEN, got {other:?}"),
        }
    }

    fn recv_keepalive(&mut self) {
        match self.recv() {
            Some(Inbound::Keepalive) => {}
            other => panic!("expected KEEPALIVE, got {other:?}"),
        }
    }

    /// Reads until bgpd's NOTIFICATION (KEEPALIVEs may come first), then expects the
    /// connection to be closed.
    fn recv_notification_then_close(&mut self) -> Notification {
        loop {
            match self.recv() {
                Some(Inbound::Keepalive) => continue,
                Some(Inbound::Notification(n)) => {
                    assert!(self.recv().is_none(), "connection open after NOTIFICATION");
                    return n;
                }
                other => panic!("expected NOTIFICATION, got {other:?}"),
            }
        }
    }

    /// bgpd's end of this connection.
    fn bgpd_end(&self) -> String {
        self.stream.peer_addr().expect("peer address").to_string()
    }
}

fn open(asn: u32, id: Ipv4Addr) -> Message {
    Message::Open(Open {
        version: 4,
        my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
        hold_time: 90,
        bgp_id: id,
        capabilities: vec![
            Capability::MultiProtocol(Family::IPV4_UNICAST),
            Capability::RouteRefresh,
            Capability::FourOctetAs(asn),
        ],
        other_params: Vec::new(),
    })
}

fn config(dir: &Path, net: u8, asn: u32, id: Ipv4Addr, peer_as: u32) -> String {
    format!(
        r#"[global]
asn = {asn}
router_id = "{id}"
listen = ["127.0.{net}.1:{PORT}"]
[global.control]
socket = "{}"
[global.graceful_restart]
enabled = false

[peers.t]
address = "127.0.{net}.2"
remote_as = {peer_as}
port = {PORT}
source_address = "127.0.{net}.1"
hold_time = 90
connect_retry = 1
"#,
        dir.join("bgpd.sock").display()
    )
}

/// The two connections of a collision, with the OPENs bgpd sent on them.
struct Collision {
    daemon: Daemon,
    /// The connection bgpd opened (its OPEN not answered yet).
    ours: Wire,
    /// The connection the test opened to bgpd's listener, in OpenConfirm at bgpd.
    theirs: Wire,
    _dir: tempfile::TempDir,
}

/// Steps 1 and 2: both connections exist, bgpd's is in OpenSent, the test's in
/// OpenConfirm.
fn collide(net: u8, asn: u32, id: Ipv4Addr, peer_as: u32, peer_id: Ipv4Addr) -> Collision {
    let dir = support::tempdir("bgpd-collision");
    let peer_addr: SocketAddr = format!("127.0.{net}.2:{PORT}").parse().expect("addr");
    let listener = TcpListener::bind(peer_addr).expect("listening as the peer");
    let daemon = Daemon::launch(
        dir.path(),
        "bgpd",
        &config(dir.path(), net, asn, id, peer_as),
        &["--no-watch"],
        "debug",
    );

    let (s, from) = listener.accept().expect("bgpd connects");
    assert_eq!(from.ip().to_string(), format!("127.0.{net}.1"));
    let mut ours = Wire::new(s);
    let o = ours.recv_open();
    assert_eq!(o.bgp_id, id);

    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    let src: SocketAddr = format!("127.0.{net}.2:0").parse().expect("addr");
    sock.bind(&src.into()).expect("bind");
    let dst: SocketAddr = format!("127.0.{net}.1:{PORT}").parse().expect("addr");
    sock.connect(&dst.into()).expect("connecting to bgpd");
    let mut theirs = Wire::new(sock.into());
    theirs.send(&open(peer_as, peer_id));
    let o = theirs.recv_open();
    assert_eq!(o.bgp_id, id);
    theirs.recv_keepalive();
    Collision {
        daemon,
        ours,
        theirs,
        _dir: dir,
    }
}

/// Steps 3 and 4 with the expected winner; checks the loser got 6/7 and the winner is
/// the Established session.
fn resolve(net: u8, asn: u32, id: Ipv4Addr, peer_as: u32, peer_id: Ipv4Addr, keep_ours: bool) {
    let Collision {
        daemon,
        mut ours,
        theirs,
        _dir,
    } = collide(net, asn, id, peer_as, peer_id);
    ours.send(&open(peer_as, peer_id));
    let (mut winner, mut loser) = if keep_ours {
        (ours, theirs)
    } else {
        (theirs, ours)
    };
    let n = loser.recv_notification_then_close();
    assert_eq!(
        (n.code, n.subcode),
        (nc::CEASE, nc::CEASE_CONNECTION_COLLISION),
        "{n:?}"
    );
    if keep_ours {
        // bgpd's OpenConfirm KEEPALIVE on its own connection.
        winner.recv_keepalive();
    }
    winner.send(&Message::Keepalive);
    let bgpd_end = winner.bgpd_end();
    daemon.wait_for(
        |d| {
            let p = d.peer("t");
            p.summary.state == "Established" && p.local_address.as_deref() == Some(&bgpd_end)
        },
        "the surviving connection Established",
    );
    let p = daemon.peer("t");
    assert_eq!(p.peer_id.as_deref(), Some(peer_id.to_string().as_str()));
    assert_eq!(p.counters.established_transitions, 1);
    // bgpd's listener port is on its end exactly when the test opened the connection.
    assert_eq!(
        bgpd_end.ends_with(&format!(":{PORT}")),
        !keep_ours,
        "{bgpd_end}"
    );
    let log = daemon.log_text();
    assert!(log.contains("connection collision resolved"), "{log}");
}

#[test]
fn higher_peer_identifier_keeps_the_peers_connection() {
    // 10.40.0.200 > 10.40.0.1: the connection the peer opened survives (RFC 4271 6.8).
    resolve(
        40,
        64512,
        Ipv4Addr::new(10, 40, 0, 1),
        64512,
        Ipv4Addr::new(10, 40, 0, 200),
        false,
    );
}

#[test]
fn lower_peer_identifier_keeps_bgpds_connection() {
    resolve(
        41,
        64512,
        Ipv4Addr::new(10, 41, 0, 100),
        64512,
        Ipv4Addr::new(10, 41, 0, 2),
        true,
    );
}

#[test]
fn equal_identifiers_higher_peer_as_keeps_the_peers_connection() {
    // RFC 6286 2.3: eBGP with the same identifier; the larger AS's connection survives.
    let id = Ipv4Addr::new(10, 42, 0, 1);
    resolve(42, 64512, id, 64513, id, false);
}

#[test]
fn equal_identifiers_lower_peer_as_keeps_bgpds_connection() {
    let id = Ipv4Addr::new(10, 43, 0, 1);
    resolve(43, 64512, id, 64511, id, true);
}

#[test]
fn peer_completing_its_connection_first_gets_bgpds_pending_one_closed() {
    // The peer never answers bgpd's OPEN and completes its own connection: once that one
    // is Established, the pending one collides with it and is closed with 6/7.
    let id = Ipv4Addr::new(10, 44, 0, 100);
    let peer_id = Ipv4Addr::new(10, 44, 0, 2);
    let Collision {
        daemon,
        mut ours,
        mut theirs,
        _dir,
    } = collide(44, 64512, id, 64512, peer_id);
    theirs.send(&Message::Keepalive);
    let n = ours.recv_notification_then_close();
    assert_eq!(
        (n.code, n.subcode),
        (nc::CEASE, nc::CEASE_CONNECTION_COLLISION),
        "{n:?}"
    );
    let bgpd_end = theirs.bgpd_end();
    daemon.wait_for(
        |d| {
            let p = d.peer("t");
            p.summary.state == "Established" && p.local_address.as_deref() == Some(&bgpd_end)
        },
        "the peer's connection Established",
    );
    assert_eq!(daemon.peer("t").counters.established_transitions, 1);
}
