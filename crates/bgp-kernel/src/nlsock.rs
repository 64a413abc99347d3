//! A non-blocking `NETLINK_ROUTE` socket for bulk route writes: many requests per `send()`,
//! acknowledgements collected afterwards.
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
use tokio::io::unix::AsyncFd;

use crate::KernelError;

/// Largest datagram we build (the kernel refuses datagrams larger than the send buffer).
const MAX_SEND: usize = 64 * 1024;
/// Receive buffer for one datagram (dumps are at most 32 KiB per datagram).
const RECV_BUF: usize = 256 * 1024;
/// Rough kernel memory charged per queued error message (`skb->truesize`).
pub(crate) const ERR_TRUESIZE: usize = 1280;

/// Enlarge a socket's receive buffer, using `SO_RCVBUFFORCE` (needs `CAP_NET_ADMIN`, which a
/// routing daemon has) and falling back to `SO_RCVBUF` (capped by `net.core.rmem_max`).
/// Returns the size the kernel reports afterwards.
pub(crate) fn grow_rcvbuf(sock: &Socket, bytes: usize) -> usize {
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

/// One request of a batch and its outcome.
pub(crate) struct Request {
    /// The finalized message (`RTM_NEWROUTE`/`RTM_DELROUTE`); its header carries
    /// `NLM_F_REQUEST` and the `NLM_F_CREATE`/`NLM_F_EXCL`/`NLM_F_REPLACE` flags; the sequence
    /// number and `NLM_F_ACK` are set when it is sent.
    pub msg: NetlinkMessage<RouteNetlinkMessage>,
}

impl Request {
    /// Wrap a route message with request flags.
    pub fn new(inner: RouteNetlinkMessage, flags: u16) -> Self {
        let mut hdr = NetlinkHeader::default();
        hdr.flags = NLM_F_REQUEST | flags;
        let mut msg = NetlinkMessage::new(hdr, NetlinkPayload::InnerMessage(inner));
        msg.finalize();
        Request { msg }
    }
}

/// Outcome of one request: 0 on success, else the positive errno.
pub(crate) type Errno = i32;

pub(crate) struct NlSocket {
    fd: AsyncFd<Socket>,
    seq: u32,
    sendbuf: Vec<u8>,
    recvbuf: Vec<u8>,
    /// The receive buffer size the kernel granted.
    pub rcvbuf: usize,
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
        let rcvbuf = grow_rcvbuf(&s, rcvbuf_wanted);
        // SAFETY: the socket is moved into the AsyncFd, which owns it (and its fd) until the
        // AsyncFd is dropped; `as_raw_fd()` of a netlink_sys::Socket never changes.
        let fd = unsafe { AsyncFd::register(s) }.map_err(io::Error::from)?;
        Ok(NlSocket {
            fd,
            seq: 1,
            sendbuf: Vec::with_capacity(MAX_SEND),
            recvbuf: Vec::with_capacity(RECV_BUF),
            rcvbuf,
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
        let mut out = Vec::new();
        let mut off = 0usize;
        let data = &self.recvbuf[..];
        while off < data.len() {
            let rest = data.get(off..).unwrap_or_default();
            let nb =
                NetlinkBuffer::new_checked(rest).map_err(|e| KernelError::Decode(e.to_string()))?;
            let len = nb.length() as usize;
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

    /// Send `reqs` pipelined, at most `window` outstanding, and return one errno per request
    /// (0 = success), in order.
    pub async fn batch(
        &mut self,
        reqs: &mut [Request],
        window: usize,
    ) -> Result<Vec<Errno>, KernelError> {
        let window = window.max(1);
        let mut results = vec![0; reqs.len()];
        let mut start = 0;
        while start < reqs.len() {
            let end = (start + window).min(reqs.len());
            self.window(reqs, start, end, &mut results).await?;
            start = end;
            // Other tasks get the thread between windows: the kernel work happens inside
            // send(), so a long batch would otherwise monopolise a runtime worker.
            tokio::task::yield_now().await;
        }
        Ok(results)
    }

    async fn window(
        &mut self,
        reqs: &mut [Request],
        start: usize,
        end: usize,
        results: &mut [Errno],
    ) -> Result<(), KernelError> {
        let base_seq = self.seq.wrapping_add(1);
        // seq of request i = base_seq + (i - start); sequence numbers 0 are skipped by
        // restarting the counter when it would wrap into them.
        if base_seq.checked_add((end - start) as u32 + 1).is_none() {
            self.seq = 1;
            return Box::pin(self.window(reqs, start, end, results)).await;
        }
        let seq_of = |i: usize| base_seq + (i - start) as u32;
        let mut acks_pending: Vec<u32> = Vec::new();
        let mut i = start;
        let mut sendbuf = std::mem::take(&mut self.sendbuf);
        while i < end {
            sendbuf.clear();
            let mut last_at = 0;
            while i < end {
                let seq = seq_of(i);
                let m = &mut reqs[i].msg;
                m.header.sequence_number = seq;
                m.header.flags &= !NLM_F_ACK;
                let len = m.buffer_len();
                if !sendbuf.is_empty() && sendbuf.len() + len > MAX_SEND {
                    break;
                }
                last_at = sendbuf.len();
                sendbuf.resize(last_at + len, 0);
                m.serialize(&mut sendbuf[last_at..]);
                i += 1;
            }
            // NLM_F_ACK on the chunk's last message only (nlmsg_flags is at bytes 6..8 of
            // its header); earlier messages report only failures.
            let flags_at = last_at + 6;
            if let Some(f) = sendbuf.get_mut(flags_at..flags_at + 2) {
                let flags = u16::from_ne_bytes([f[0], f[1]]) | NLM_F_ACK;
                f.copy_from_slice(&flags.to_ne_bytes());
            }
            if let Err(e) = self.send_buf(&sendbuf).await {
                self.sendbuf = sendbuf;
                return Err(e);
            }
            acks_pending.push(seq_of(i - 1));
        }
        self.sendbuf = sendbuf;
        self.seq = seq_of(end - 1);
        // Collect: errors for any request, plus the final ACK/error of each chunk.
        while !acks_pending.is_empty() {
            self.recv_datagram().await?;
            for msg in self.parse_datagram()? {
                let seq = msg.header.sequence_number;
                if let NetlinkPayload::Error(e) = msg.payload {
                    if seq >= base_seq && seq <= self.seq {
                        let idx = start + (seq - base_seq) as usize;
                        if let Some(r) = results.get_mut(idx) {
                            *r = e.code.map_or(0, |c| c.get().abs());
                        }
                    }
                    acks_pending.retain(|&s| s != seq);
                }
            }
        }
        Ok(())
    }
}
