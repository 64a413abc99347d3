//! `NETLINK_ROUTE` sockets: an async one for dumps, and a writer thread for bulk route writes
//! (many requests per `send()`, acknowledgements collected afterwards).
//!
//! rtnetlink requests sent to the kernel are processed synchronously inside `sendmsg()`
//! (`netlink_unicast_kernel()` → `rtnetlink_rcv()` → `netlink_rcv_skb()`), in order, one
//! message after the other, and the kernel answers a message with `NLMSG_ERROR` when it fails
//! or when it carries `NLM_F_ACK` (netlink(7), RFC 3549 §2.3.2.2). So we pack many requests
//! into one datagram, set `NLM_F_ACK` only on the last one, and once its acknowledgement
//! arrives every earlier failure has already been queued before it: one syscall pair per chunk
//! instead of per route. `NETLINK_CAP_ACK` keeps errors short (the request is not echoed) and
//! `NETLINK_EXT_ACK` adds the kernel's error text. The number of requests outstanding is bounded
//! by the caller's window, and the receive buffer is sized for a whole window of failures, so
//! error messages cannot overrun it; if they still do (`ENOBUFS`), [`KernelError::Overrun`]
//! tells the caller to re-read the kernel.

use std::io;
use std::os::fd::AsRawFd;

use netlink_packet_core::{
    NetlinkBuffer, NetlinkHeader, NetlinkMessage, NetlinkPayload, NLM_F_ACK, NLM_F_DUMP,
    NLM_F_DUMP_INTR, NLM_F_REQUEST,
};
use netlink_packet_route::RouteNetlinkMessage;
use netlink_sys::{protocols::NETLINK_ROUTE, Socket};
use std::sync::mpsc as std_mpsc;
use std::thread::JoinHandle;
use tokio::io::unix::AsyncFd;
use tokio::sync::oneshot;

use crate::types::Errno;
use crate::KernelError;

/// Largest datagram we build (the kernel refuses datagrams larger than the send buffer).
const MAX_SEND: usize = 64 * 1024;
/// Receive buffer for one datagram (dumps are at most 32 KiB per datagram).
const RECV_BUF: usize = 256 * 1024;
/// Rough kernel memory charged per queued error message (`skb->truesize`).
pub(crate) const ERR_TRUESIZE: usize = 1280;

/// `NLMSG_HDRLEN`: size of a netlink message header.
const NLMSG_HDRLEN: usize = 16;

/// Set a socket's receive buffer, using `SO_RCVBUFFORCE` (needs `CAP_NET_ADMIN`, which a
/// routing daemon has) and falling back to `SO_RCVBUF` (capped by `net.core.rmem_max`).
/// Returns the size the kernel reports afterwards.
pub(crate) fn set_rcvbuf(sock: &Socket, bytes: usize) -> usize {
    let v: libc::c_int = libc::c_int::try_from(bytes).unwrap_or(libc::c_int::MAX);
    let set = |opt| {
        // SAFETY: setsockopt with a valid fd, a pointer to a live c_int and its exact size.
        unsafe {
            libc::setsockopt(
                sock.as_raw_fd(),
                libc::SOL_SOCKET,
                opt,
                (&v as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        }
    };
    if set(libc::SO_RCVBUFFORCE) != 0 {
        let _ = set(libc::SO_RCVBUF);
    }
    sock.get_rx_buf_sz().unwrap_or(0)
}

/// Attach a classic BPF filter that drops multicast `RTM_NEWROUTE` notifications of protocol
/// `own` before they are queued on the socket.
///
/// When we install a million routes, the kernel announces each one to every route listener;
/// the watcher has no use for announcements of its own routes (the import selection excludes
/// them), and parsing them would cost CPU and risk overrunning the socket. Dump answers are
/// never dropped: every message of a dump carries `NLM_F_MULTI`, notifications do not (and a
/// multicast notification is one message per packet, so the filter sees its header at offset
/// 0). Deletions of our routes still pass (the installer wants to hear about them).
pub(crate) fn drop_own_route_notifications(sock: &Socket, own: u8) -> io::Result<()> {
    const RTM_NEWROUTE: u32 = 24;
    const NLM_F_MULTI: u32 = 2;
    // Offsets of the low and high byte of nlmsg_type and of the low byte of nlmsg_flags,
    // which are host-endian u16 fields at offsets 4 and 6.
    let (type_lo, type_hi, flags_lo) = if cfg!(target_endian = "little") {
        (4, 5, 6)
    } else {
        (5, 4, 7)
    };
    const RTM_PROTOCOL_OFF: u32 = 16 + 5; // nlmsghdr, then rtmsg.rtm_protocol
    const LDB_ABS: u16 = 0x30; // BPF_LD | BPF_B | BPF_ABS
    const JEQ_K: u16 = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
    const JSET_K: u16 = 0x45; // BPF_JMP | BPF_JSET | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    let ins = |code, jt, jf, k| libc::sock_filter { code, jt, jf, k };
    let mut prog = [
        ins(LDB_ABS, 0, 0, type_lo),          // 0
        ins(JEQ_K, 0, 6, RTM_NEWROUTE),       // 1: not NEWROUTE -> accept (8)
        ins(LDB_ABS, 0, 0, type_hi),          // 2
        ins(JEQ_K, 0, 4, 0),                  // 3: -> accept (8)
        ins(LDB_ABS, 0, 0, flags_lo),         // 4
        ins(JSET_K, 2, 0, NLM_F_MULTI),       // 5: dump answer -> accept (8)
        ins(LDB_ABS, 0, 0, RTM_PROTOCOL_OFF), // 6
        ins(JEQ_K, 1, 0, u32::from(own)),     // 7: ours -> drop (9)
        ins(RET_K, 0, 0, u32::MAX),           // 8: accept
        ins(RET_K, 0, 0, 0),                  // 9: drop
    ];
    let fprog = libc::sock_fprog {
        len: prog.len() as libc::c_ushort,
        filter: prog.as_mut_ptr(),
    };
    // SAFETY: valid fd; `fprog` points to `prog`, alive for the call (the kernel copies it).
    let rc = unsafe {
        libc::setsockopt(
            sock.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_ATTACH_FILTER,
            (&fprog as *const libc::sock_fprog).cast(),
            std::mem::size_of::<libc::sock_fprog>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub(crate) struct NlSocket {
    fd: AsyncFd<Socket>,
    seq: u32,
    recvbuf: Vec<u8>,
}

impl NlSocket {
    pub fn open(rcvbuf_wanted: usize) -> Result<Self, KernelError> {
        let mut s = Socket::new(NETLINK_ROUTE)?;
        s.bind_auto()?;
        s.set_non_blocking(true)?;
        s.set_cap_ack(true)?;
        s.set_ext_ack(true)?;
        // Strict checking lets the kernel filter dumps by table and protocol.
        s.set_netlink_get_strict_chk(true)?;
        set_rcvbuf(&s, rcvbuf_wanted);
        // SAFETY: the socket is moved into the AsyncFd, which owns it (and its fd) until the
        // AsyncFd is dropped; `as_raw_fd()` of a netlink_sys::Socket never changes.
        let fd = unsafe { AsyncFd::register(s) }.map_err(io::Error::from)?;
        Ok(NlSocket {
            fd,
            seq: 1,
            recvbuf: Vec::with_capacity(RECV_BUF),
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    async fn send_buf(&self, buf: &[u8]) -> Result<(), KernelError> {
        loop {
            let mut guard = self.fd.writable().await?;
            match guard.try_io(|s| s.get_ref().send(buf, 0)) {
                Ok(Ok(n)) if n == buf.len() => return Ok(()),
                Ok(Ok(n)) => {
                    return Err(KernelError::Io(io::Error::other(format!(
                        "short netlink send: {n} of {} bytes",
                        buf.len()
                    ))))
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_would_block) => continue,
            }
        }
    }

    /// Receive one datagram into `self.recvbuf`.
    async fn recv_datagram(&mut self) -> Result<(), KernelError> {
        loop {
            self.recvbuf.clear();
            let mut guard = self.fd.readable().await?;
            let buf = &mut self.recvbuf;
            match guard.try_io(|s| s.get_ref().recv(buf, libc::MSG_TRUNC)) {
                Ok(Ok(n)) if n > RECV_BUF => {
                    return Err(KernelError::Decode(format!(
                        "netlink datagram of {n} bytes truncated"
                    )))
                }
                Ok(Ok(_)) => return Ok(()),
                Ok(Err(e)) if e.raw_os_error() == Some(libc::ENOBUFS) => {
                    return Err(KernelError::Overrun)
                }
                Ok(Err(e)) => return Err(e.into()),
                Err(_would_block) => continue,
            }
        }
    }

    /// Split the received datagram into messages (never reading past a length field).
    fn parse_datagram(&self) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>, KernelError> {
        parse_datagram(&self.recvbuf)
    }

    /// Run a dump request and return every `RouteNetlinkMessage` answer. Restarts the dump
    /// when the kernel flags it as interrupted (`NLM_F_DUMP_INTR`: the table changed during
    /// the dump, so the answer may be inconsistent).
    pub async fn dump(
        &mut self,
        req: RouteNetlinkMessage,
    ) -> Result<Vec<RouteNetlinkMessage>, KernelError> {
        'restart: for _attempt in 0..5 {
            let seq = self.next_seq();
            let mut hdr = NetlinkHeader::default();
            hdr.flags = NLM_F_REQUEST | NLM_F_DUMP;
            hdr.sequence_number = seq;
            let mut m = NetlinkMessage::new(hdr, NetlinkPayload::InnerMessage(req.clone()));
            m.finalize();
            let mut buf = vec![0u8; m.buffer_len()];
            m.serialize(&mut buf);
            self.send_buf(&buf).await?;
            let mut out = Vec::new();
            let mut interrupted = false;
            loop {
                self.recv_datagram().await?;
                for msg in self.parse_datagram()? {
                    if msg.header.sequence_number != seq {
                        continue; // stale answer to an earlier request
                    }
                    if msg.header.flags & NLM_F_DUMP_INTR != 0 {
                        interrupted = true;
                    }
                    match msg.payload {
                        NetlinkPayload::Done(_) => {
                            if interrupted {
                                continue 'restart;
                            }
                            return Ok(out);
                        }
                        NetlinkPayload::Error(e) if e.code.is_some() => {
                            return Err(KernelError::Io(e.to_io()));
                        }
                        NetlinkPayload::InnerMessage(inner) => out.push(inner),
                        _ => {}
                    }
                }
            }
        }
        Err(KernelError::Io(io::Error::other(
            "route dump kept being interrupted",
        )))
    }
}

/// Split a received datagram into messages (never reading past a length field).
fn parse_datagram(data: &[u8]) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>, KernelError> {
    let mut out = Vec::new();
    let mut off = 0usize;

    while off < data.len() {
        let rest = data.get(off..).unwrap_or_default();
        let nb =
            NetlinkBuffer::new_checked(rest).map_err(|e| KernelError::Decode(e.to_string()))?;
        let len = nb.length() as usize;
        if len < NLMSG_HDRLEN {
            return Err(KernelError::Decode(format!(
                "netlink message length {len} too short"
            )));
        }
        let msg_bytes = rest.get(..len).ok_or_else(|| {
            KernelError::Decode(format!("netlink message length {len} past datagram end"))
        })?;
        out.push(
            NetlinkMessage::<RouteNetlinkMessage>::deserialize(msg_bytes)
                .map_err(|e| KernelError::Decode(e.to_string()))?,
        );
        // NLMSG_ALIGN
        off += len.div_ceil(4) * 4;
    }
    Ok(out)
}

/// A window of serialized requests, ready for the writer thread.
pub(crate) struct Window {
    datagrams: Vec<Vec<u8>>,
    /// Sequence number of the window's first request; request `i` has `base_seq + i`.
    base_seq: u32,
    count: usize,
    /// Offset of the last message in the datagram being filled.
    last_at: usize,
}

impl Window {
    pub fn new(base_seq: u32) -> Self {
        Window {
            datagrams: Vec::new(),
            base_seq,
            count: 0,
            last_at: 0,
        }
    }

    /// Requests in the window.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Sequence number the next window should start at.
    pub fn next_seq(&self) -> u32 {
        let next = self.base_seq.wrapping_add(self.count as u32);
        // Keep clear of 0 and of wrapping inside a window (a window is far smaller than 2^31).
        if next == 0 || next > u32::MAX / 2 {
            1
        } else {
            next
        }
    }

    /// Append one request (`NLM_F_REQUEST` plus `flags`).
    pub fn push(&mut self, inner: RouteNetlinkMessage, flags: u16) {
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | flags;
        hdr.sequence_number = self.base_seq.wrapping_add(self.count as u32);
        let mut m = NetlinkMessage::new(hdr, NetlinkPayload::InnerMessage(inner));
        m.finalize();
        let len = m.buffer_len();
        let need_new = match self.datagrams.last() {
            None => true,
            Some(d) => d.len() + len > MAX_SEND,
        };
        if need_new {
            self.seal();
            self.datagrams
                .push(Vec::with_capacity(MAX_SEND.min(len * 1024)));
        }
        if let Some(d) = self.datagrams.last_mut() {
            let at = d.len();
            d.resize(at + len, 0);
            m.serialize(&mut d[at..]);
            self.last_at = at;
        }
        self.count += 1;
    }

    /// Set `NLM_F_ACK` on the last message of the current datagram (nlmsg_flags is at
    /// bytes 6..8 of its header): the kernel acknowledges it after processing every earlier
    /// message of the datagram; earlier messages report only failures.
    fn seal(&mut self) {
        let at = self.last_at + 6;
        if let Some(f) = self
            .datagrams
            .last_mut()
            .and_then(|d| d.get_mut(at..at + 2))
        {
            let flags = u16::from_ne_bytes([f[0], f[1]]) | NLM_F_ACK;
            f.copy_from_slice(&flags.to_ne_bytes());
        }
    }
}

type Reply = oneshot::Sender<Result<Vec<Errno>, KernelError>>;

/// A thread that owns a blocking `NETLINK_ROUTE` socket and executes windows of requests.
///
/// The kernel inserts routes inside `send()`; doing that on a thread of its own lets the
/// installer serialize the next window while the kernel processes the current one, so on a
/// multi-core machine user-space and kernel work overlap instead of adding up.
pub(crate) struct Writer {
    jobs: Option<std_mpsc::Sender<(Window, Reply)>>,
    thread: Option<JoinHandle<()>>,
    /// The receive buffer size the kernel granted.
    pub rcvbuf: usize,
}

impl Writer {
    /// Open the socket in the calling thread's network namespace and start the thread.
    pub fn spawn(rcvbuf_wanted: usize) -> Result<Self, KernelError> {
        let mut s = Socket::new(NETLINK_ROUTE)?;
        s.bind_auto()?;
        s.set_cap_ack(true)?;
        s.set_ext_ack(true)?;
        let rcvbuf = set_rcvbuf(&s, rcvbuf_wanted);
        // Never block forever should an acknowledgement go missing.
        let tv = libc::timeval {
            tv_sec: 30,
            tv_usec: 0,
        };
        // SAFETY: setsockopt with a valid fd and a pointer to a live timeval of that size.
        unsafe {
            libc::setsockopt(
                s.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                (&tv as *const libc::timeval).cast(),
                std::mem::size_of::<libc::timeval>() as libc::socklen_t,
            );
        }
        let (tx, rx) = std_mpsc::channel::<(Window, Reply)>();
        let thread = std::thread::Builder::new()
            .name("fib-writer".into())
            .spawn(move || {
                let mut buf = Vec::with_capacity(RECV_BUF);
                while let Ok((w, reply)) = rx.recv() {
                    let _ = reply.send(execute(&s, &mut buf, w));
                }
            })?;
        Ok(Writer {
            jobs: Some(tx),
            thread: Some(thread),
            rcvbuf,
        })
    }

    /// Queue a window; the answer (one errno per request, 0 = success) arrives on the
    /// returned channel.
    pub fn submit(&self, mut w: Window) -> oneshot::Receiver<Result<Vec<Errno>, KernelError>> {
        w.seal();
        let (tx, rx) = oneshot::channel();
        if let Some(jobs) = &self.jobs {
            if let Err(std_mpsc::SendError((_, reply))) = jobs.send((w, tx)) {
                let _ = reply.send(Err(KernelError::Closed));
            }
        }
        rx
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        self.jobs = None; // closes the channel: the thread finishes its job and exits
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Send a window's datagrams, then collect the failures and the acknowledgement of each
/// datagram's last message.
fn execute(s: &Socket, buf: &mut Vec<u8>, w: Window) -> Result<Vec<Errno>, KernelError> {
    let mut results = vec![0; w.count];
    let mut pending = 0usize;
    let mut last_seqs = Vec::with_capacity(w.datagrams.len());
    let mut seq = w.base_seq;
    for d in &w.datagrams {
        let n = s.send(d, 0)?;
        if n != d.len() {
            return Err(KernelError::Io(io::Error::other(format!(
                "short netlink send: {n} of {} bytes",
                d.len()
            ))));
        }
        // Count the messages of this datagram to know its last sequence number.
        let mut off = 0;
        let mut msgs = 0u32;
        while let Some(h) = d.get(off..off + 4) {
            let len = u32::from_ne_bytes([h[0], h[1], h[2], h[3]]) as usize;
            if len == 0 {
                break;
            }
            off += len.div_ceil(4) * 4;
            msgs += 1;
        }
        seq = seq.wrapping_add(msgs);
        last_seqs.push(seq.wrapping_sub(1));
        pending += 1;
    }
    while pending > 0 {
        buf.clear();
        match s.recv(buf, libc::MSG_TRUNC) {
            Ok(n) if n > RECV_BUF => {
                return Err(KernelError::Decode(format!(
                    "netlink datagram of {n} bytes truncated"
                )))
            }
            Ok(_) => {}
            Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => return Err(KernelError::Overrun),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e.into()),
        }
        for msg in parse_datagram(buf)? {
            if let NetlinkPayload::Error(e) = msg.payload {
                let seq = msg.header.sequence_number;
                let idx = seq.wrapping_sub(w.base_seq) as usize;
                if let Some(r) = results.get_mut(idx) {
                    *r = e.code.map_or(0, |c| c.get().abs());
                }
                if last_seqs.contains(&seq) {
                    pending -= 1;
                }
            }
        }
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::route::RouteMessage;

    fn flags_and_seqs(d: &[u8]) -> Vec<(u16, u32)> {
        parse_datagram(d)
            .unwrap()
            .iter()
            .map(|m| (m.header.flags, m.header.sequence_number))
            .collect()
    }

    #[test]
    fn window_acks_only_the_last_message_of_each_datagram() {
        let mut w = Window::new(100);
        for _ in 0..3 {
            w.push(
                RouteNetlinkMessage::NewRoute(RouteMessage::default()),
                0x400,
            );
        }
        w.seal();
        assert_eq!(w.len(), 3);
        assert_eq!(w.datagrams.len(), 1);
        let fs = flags_and_seqs(&w.datagrams[0]);
        assert_eq!(fs.iter().map(|f| f.1).collect::<Vec<_>>(), [100, 101, 102]);
        assert!(fs
            .iter()
            .all(|f| f.0 & (NLM_F_REQUEST | 0x400) == NLM_F_REQUEST | 0x400));
        assert_eq!(
            fs.iter().map(|f| f.0 & NLM_F_ACK != 0).collect::<Vec<_>>(),
            [false, false, true]
        );
        assert_eq!(w.next_seq(), 103);
    }

    #[test]
    fn window_splits_datagrams_at_the_size_limit() {
        let mut w = Window::new(1);
        let n = 5000; // 5000 × 28 bytes > 64 KiB
        for _ in 0..n {
            w.push(RouteNetlinkMessage::DelRoute(RouteMessage::default()), 0);
        }
        w.seal();
        assert!(w.datagrams.len() >= 2);
        let mut seqs = Vec::new();
        for d in &w.datagrams {
            assert!(d.len() <= MAX_SEND);
            let fs = flags_and_seqs(d);
            // Exactly the last message of every datagram asks for an ACK.
            let acks: Vec<bool> = fs.iter().map(|f| f.0 & NLM_F_ACK != 0).collect();
            assert_eq!(acks.iter().filter(|a| **a).count(), 1);
            assert_eq!(acks.last(), Some(&true));
            seqs.extend(fs.iter().map(|f| f.1));
        }
        assert_eq!(seqs, (1..=n).collect::<Vec<u32>>());
    }

    #[test]
    fn next_seq_never_returns_zero_or_wraps() {
        let mut w = Window::new(u32::MAX / 2);
        w.push(RouteNetlinkMessage::DelRoute(RouteMessage::default()), 0);
        assert_eq!(w.next_seq(), 1);
    }

    #[test]
    fn malformed_datagrams_are_errors_not_panics() {
        // Length field shorter than a header, longer than the datagram, and truncated.
        let mut short = vec![0u8; 20];
        short[0] = 4;
        assert!(parse_datagram(&short).is_err());
        let mut long = vec![0u8; 20];
        long[0] = 200;
        assert!(parse_datagram(&long).is_err());
        assert!(parse_datagram(&[1, 2, 3]).is_err());
        assert!(parse_datagram(&[]).unwrap().is_empty());
    }

    /// The filter, on a socket in a namespace of its own: our protocol's announcements are
    /// dropped, other protocols' announcements and our deletions pass.
    #[test]
    fn own_route_notifications_are_filtered() {
        use std::process::Command;
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            eprintln!(
                "SKIPPED own_route_notifications_are_filtered: needs root (network namespaces)"
            );
            return;
        }
        let name = format!("bgpk-bpf-{}", std::process::id());
        let ip = |args: &[&str]| {
            let ok = Command::new("ip").args(args).status().map(|s| s.success());
            assert_eq!(ok.ok(), Some(true), "ip {args:?}");
        };
        struct Del(String);
        impl Drop for Del {
            fn drop(&mut self) {
                let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
            }
        }
        ip(&["netns", "add", &name]);
        let _del = Del(name.clone());
        ip(&[
            "-n", &name, "link", "add", "e0", "type", "veth", "peer", "name", "e1",
        ]);
        ip(&["-n", &name, "link", "set", "e0", "up"]);
        let seen = std::thread::scope(|s| {
            s.spawn(|| {
                let f = std::fs::File::open(format!("/run/netns/{name}")).unwrap();
                // SAFETY: setns with a valid namespace fd affects only this thread.
                assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
                let mut sock = Socket::new(NETLINK_ROUTE).unwrap();
                sock.bind(&netlink_sys::SocketAddr::new(0, 1 << (7 - 1)))
                    .unwrap(); // RTNLGRP_IPV4_ROUTE
                drop_own_route_notifications(&sock, 12).unwrap();
                let n = &name;
                ip(&[
                    "-n",
                    n,
                    "route",
                    "add",
                    "blackhole",
                    "10.1.0.0/26",
                    "proto",
                    "12",
                ]);
                ip(&[
                    "-n",
                    n,
                    "route",
                    "add",
                    "blackhole",
                    "10.2.0.0/26",
                    "proto",
                    "80",
                ]);
                ip(&[
                    "-n",
                    n,
                    "route",
                    "del",
                    "blackhole",
                    "10.1.0.0/26",
                    "proto",
                    "12",
                ]);
                ip(&[
                    "-n",
                    n,
                    "route",
                    "add",
                    "blackhole",
                    "10.3.0.0/26",
                    "proto",
                    "80",
                ]);
                let mut seen = Vec::new();
                let mut buf = Vec::with_capacity(RECV_BUF);
                while seen.len() < 3 {
                    buf.clear();
                    sock.recv(&mut buf, 0).unwrap();
                    for m in parse_datagram(&buf).unwrap() {
                        if let NetlinkPayload::InnerMessage(
                            RouteNetlinkMessage::NewRoute(r) | RouteNetlinkMessage::DelRoute(r),
                        ) = &m.payload
                        {
                            seen.push((m.header.message_type, u8::from(r.header.protocol)));
                        }
                    }
                }
                seen
            })
            .join()
            .unwrap()
        });
        // RTM_NEWROUTE = 24, RTM_DELROUTE = 25; the proto 12 announcement never arrived.
        assert_eq!(seen, [(24, 80), (25, 12), (24, 80)]);
    }
}
