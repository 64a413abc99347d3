//! The Linux socket layer of a BFD driver (feature `udp`): what the sans-IO
//! [`Endpoint`](crate::Endpoint) needs from the operating system and nothing more.
//!
//! - [`Listener`]: a UDP socket on the single-hop (3784) or multihop (4784) port of one
//!   address family that reports, for each datagram, the TTL / hop limit it arrived with
//!   (`IP_RECVTTL`, `IPV6_RECVHOPLIMIT`: RFC 5881 5 and RFC 5883 5 filter on it) and its
//!   destination address and interface (`IP_PKTINFO`, `IPV6_RECVPKTINFO`: RFC 5881 3 and
//!   RFC 5883 3 demultiplex on them) as a [`PacketInfo`].
//! - [`Sender`]: a UDP socket bound to one local address and a source port in
//!   49152..=65535 (RFC 5881 4), sending with TTL / hop limit 255.
//!
//! Both are non-blocking; a driver waits for readability with `poll(2)`, tokio's
//! `AsyncFd` or similar, then drains [`Listener::recv`] until it would block.

use std::io;
use std::mem::{size_of, MaybeUninit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd};

use socket2::{Domain, Protocol, Socket, Type};

use crate::endpoint::{PacketInfo, Transmit};
use crate::session::config::{MULTIHOP_PORT, SEND_TTL, SINGLE_HOP_PORT, SOURCE_PORTS};

/// A receiving socket on a BFD port.
#[derive(Debug)]
pub struct Listener {
    socket: UdpSocket,
    multihop: bool,
}

fn set_int_option(socket: &Socket, level: libc::c_int, name: libc::c_int) -> io::Result<()> {
    let one: libc::c_int = 1;
    // SAFETY: the option value is a live c_int and its size is passed with it.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            level,
            name,
            (&one as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn domain(addr: IpAddr) -> Domain {
    match addr {
        IpAddr::V4(_) => Domain::IPV4,
        IpAddr::V6(_) => Domain::IPV6,
    }
}

impl Listener {
    /// Binds `address` (usually `0.0.0.0` or `::`) on port 3784, or 4784 if `multihop`.
    pub fn bind(address: IpAddr, multihop: bool) -> io::Result<Listener> {
        let port = if multihop {
            MULTIHOP_PORT
        } else {
            SINGLE_HOP_PORT
        };
        Self::bind_port(SocketAddr::new(address, port), multihop)
    }

    /// Binds any address and port; what arrives counts as single hop or `multihop`.
    pub fn bind_port(address: SocketAddr, multihop: bool) -> io::Result<Listener> {
        // No SO_REUSEADDR: UDP has no TIME_WAIT to wait out, and a second BFD daemon on
        // the same port must fail to start rather than share its packets.
        let socket = Socket::new(domain(address.ip()), Type::DGRAM, Some(Protocol::UDP))?;
        match address.ip() {
            IpAddr::V4(_) => {
                set_int_option(&socket, libc::IPPROTO_IP, libc::IP_RECVTTL)?;
                set_int_option(&socket, libc::IPPROTO_IP, libc::IP_PKTINFO)?;
            }
            IpAddr::V6(_) => {
                socket.set_only_v6(true)?;
                set_int_option(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT)?;
                set_int_option(&socket, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)?;
            }
        }
        socket.set_nonblocking(true)?;
        socket.bind(&address.into())?;
        Ok(Listener {
            socket: socket.into(),
            multihop,
        })
    }

    /// Receives one datagram into `buf`: its length (truncated to `buf`) and what the
    /// kernel told about it. `WouldBlock` when nothing is waiting.
    pub fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, PacketInfo)> {
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // u64 elements keep the control buffer aligned for cmsghdr.
        let mut control = [0u64; 32];
        let mut source = MaybeUninit::<libc::sockaddr_storage>::zeroed();
        // SAFETY: msghdr is plain data; all-zero is a valid (empty) value.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_name = source.as_mut_ptr().cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = size_of::<[u64; 32]>() as _;
        // SAFETY: every pointer in `msg` refers to a live buffer of the length given.
        let n = unsafe { libc::recvmsg(self.socket.as_raw_fd(), &mut msg, 0) };
        let len = usize::try_from(n).map_err(|_| io::Error::last_os_error())?;
        // SAFETY: recvmsg filled `msg_namelen` bytes of the sockaddr_storage.
        let source =
            unsafe { source_address(source.as_ptr(), msg.msg_namelen) }.ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    "datagram without source address",
                )
            })?;
        let mut info = PacketInfo {
            source,
            destination: None,
            interface: None,
            ttl: 0,
            multihop: self.multihop,
        };
        // SAFETY: `msg` describes the control buffer recvmsg just filled; the CMSG_*
        // functions stay within `msg_controllen`, and each payload is read unaligned only
        // after checking the header's length covers it.
        unsafe { read_control(&msg, &mut info) };
        Ok((len.min(buf.len()), info))
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

impl AsFd for Listener {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.socket.as_fd()
    }
}

/// SAFETY: `addr` points to `len` initialised bytes of a sockaddr_storage.
unsafe fn source_address(
    addr: *const libc::sockaddr_storage,
    len: libc::socklen_t,
) -> Option<IpAddr> {
    let len = len as usize;
    match i32::from((*addr).ss_family) {
        libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
            let sin = &*(addr.cast::<libc::sockaddr_in>());
            Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(
                sin.sin_addr.s_addr,
            ))))
        }
        libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
            let sin6 = &*(addr.cast::<libc::sockaddr_in6>());
            Some(IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)))
        }
        _ => None,
    }
}

/// Reads a `T` from a control message whose header says it holds at least one.
///
/// SAFETY: `cmsg` points to a header inside a filled control buffer.
unsafe fn payload<T: Copy>(cmsg: *const libc::cmsghdr) -> Option<T> {
    let needed = libc::CMSG_LEN(size_of::<T>() as u32) as usize;
    if (*cmsg).cmsg_len < needed {
        return None;
    }
    Some(std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<T>()))
}

/// SAFETY: see the call site in [`Listener::recv`].
unsafe fn read_control(msg: &libc::msghdr, info: &mut PacketInfo) {
    let mut cmsg = libc::CMSG_FIRSTHDR(msg);
    while !cmsg.is_null() {
        match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
            (libc::IPPROTO_IP, libc::IP_TTL) => {
                if let Some(ttl) = payload::<libc::c_int>(cmsg) {
                    info.ttl = u8::try_from(ttl).unwrap_or(0);
                }
            }
            (libc::IPPROTO_IP, libc::IP_PKTINFO) => {
                if let Some(pi) = payload::<libc::in_pktinfo>(cmsg) {
                    info.destination =
                        Some(IpAddr::V4(Ipv4Addr::from(u32::from_be(pi.ipi_addr.s_addr))));
                    info.interface = u32::try_from(pi.ipi_ifindex).ok();
                }
            }
            (libc::IPPROTO_IPV6, libc::IPV6_HOPLIMIT) => {
                if let Some(hops) = payload::<libc::c_int>(cmsg) {
                    info.ttl = u8::try_from(hops).unwrap_or(0);
                }
            }
            (libc::IPPROTO_IPV6, libc::IPV6_PKTINFO) => {
                if let Some(pi) = payload::<libc::in6_pktinfo>(cmsg) {
                    info.destination = Some(IpAddr::V6(Ipv6Addr::from(pi.ipi6_addr.s6_addr)));
                    info.interface = Some(pi.ipi6_ifindex);
                }
            }
            _ => {}
        }
        cmsg = libc::CMSG_NXTHDR(msg, cmsg);
    }
}

/// A sending socket bound to one local address and a source port of RFC 5881 4's range.
#[derive(Debug)]
pub struct Sender {
    socket: UdpSocket,
}

impl Sender {
    /// Binds `local` (an unspecified address lets the kernel pick the source) on the
    /// first free port of 49152..=65535 from `first_port` on, TTL / hop limit 255.
    pub fn bind(local: IpAddr, first_port: u16) -> io::Result<Sender> {
        let socket = Socket::new(domain(local), Type::DGRAM, Some(Protocol::UDP))?;
        match local {
            IpAddr::V4(_) => socket.set_ttl_v4(u32::from(SEND_TTL))?,
            IpAddr::V6(_) => {
                socket.set_only_v6(true)?;
                socket.set_unicast_hops_v6(u32::from(SEND_TTL))?;
            }
        }
        socket.set_nonblocking(true)?;
        let (lo, hi) = (*SOURCE_PORTS.start(), *SOURCE_PORTS.end());
        let span = u32::from(hi - lo) + 1;
        let start = u32::from(first_port.clamp(lo, hi) - lo);
        let mut last = io::Error::new(io::ErrorKind::AddrInUse, "no free source port");
        for i in 0..span {
            let port = lo + ((start + i) % span) as u16;
            match socket.bind(&SocketAddr::new(local, port).into()) {
                Ok(()) => {
                    return Ok(Sender {
                        socket: socket.into(),
                    })
                }
                Err(e) if e.kind() == io::ErrorKind::AddrInUse => last = e,
                Err(e) => return Err(e),
            }
        }
        Err(last)
    }

    /// Sends one packet of the endpoint. A link-local IPv6 peer is reached through the
    /// session's interface.
    pub fn send(&self, transmit: &Transmit) -> io::Result<()> {
        let mut destination = transmit.destination;
        if let (SocketAddr::V6(d), Some(interface)) = (&mut destination, transmit.interface) {
            if d.ip().is_unicast_link_local() {
                d.set_scope_id(interface);
            }
        }
        self.socket
            .send_to(transmit.packet.as_bytes(), destination)
            .map(|_| ())
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    use crate::endpoint::{Addresses, Endpoint};
    use crate::session::{Hops, SessionConfig};

    /// An endpoint's packet over real loopback sockets (an ephemeral port stands in for
    /// 4784, which needs no privilege but may be taken by a BFD daemon on the machine).
    #[test]
    fn loopback_datagrams_carry_ttl_destination_and_interface() {
        let listener =
            Listener::bind_port(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0), true).unwrap();
        let listen_port = listener.local_addr().unwrap().port();
        let sender = Sender::bind(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)), 50_000).unwrap();
        let port = sender.local_addr().unwrap().port();
        assert!(SOURCE_PORTS.contains(&port));
        let now = Instant::now();
        let mut e = Endpoint::new(1);
        let mut c = SessionConfig::new(Hops::Multi { min_ttl: 255 });
        c.jitter_seed = None;
        e.add_session(
            now,
            Addresses {
                peer: IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)),
                local: Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))),
                interface: None,
            },
            c,
        )
        .unwrap();
        e.handle_timeout(now);
        let mut t = e.poll_transmit().expect("first packet");
        assert_eq!(t.destination.port(), MULTIHOP_PORT);
        t.destination.set_port(listen_port);
        sender.send(&t).unwrap();
        let mut buf = [0u8; 128];
        let deadline = Instant::now() + Duration::from_secs(5);
        let (n, info) = loop {
            match listener.recv(&mut buf) {
                Ok(got) => break got,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Err(e) => panic!("recv: {e}"),
            }
        };
        assert_eq!(&buf[..n], t.packet.as_bytes());
        assert_eq!(info.source, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(
            info.destination,
            Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1)))
        );
        assert_eq!(info.ttl, 255, "sent with 255, no hop on loopback");
        assert!(info.interface.is_some());
        assert!(info.multihop);
    }
}
