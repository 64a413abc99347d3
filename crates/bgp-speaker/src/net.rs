//! TCP sockets for BGP: listeners and outgoing connections with the per-peer socket
//! options BGP needs.
//!
//! - TCP-MD5 (RFC 2385) through Linux `TCP_MD5SIG`: set on the connecting socket, and on
//!   every listening socket once per peer address, so a passive peer's SYN is accepted.
//! - Outgoing TTL (`IP_TTL` / `IPV6_UNICAST_HOPS`) for multihop sessions, and GTSM
//!   (RFC 5082) with TTL 255 out plus `IP_MINTTL` / `IPV6_MINHOPCOUNT` in.
//! - Source address binding and IPv6 link-local peers with an interface scope.
//!
//! All failures are returned as `io::Error`s naming the option, never panics.
//!
//! Public: [`set_md5`] (with its key limit), for an embedder or a test that keys a socket
//! of its own; the rest is the speaker's.

use std::ffi::CString;
use std::io;
use std::mem;
use std::net::{IpAddr, SocketAddr, SocketAddrV6};
use std::os::fd::{AsRawFd, RawFd};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::net::{TcpListener, TcpSocket, TcpStream};

use crate::config::PeerAddress;

/// Linux `TCP_MD5SIG_MAXKEYLEN`.
pub const MD5_MAX_KEY_LEN: usize = 80;

/// Linux `struct tcp_md5sig` (include/uapi/linux/tcp.h).
#[repr(C)]
struct TcpMd5Sig {
    addr: libc::sockaddr_storage,
    flags: u8,
    prefixlen: u8,
    keylen: u16,
    ifindex: libc::c_int,
    key: [u8; MD5_MAX_KEY_LEN],
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, value: &T) -> io::Result<()> {
    // SAFETY: `value` points to a live `T` of the size passed; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (value as *const T).cast(),
            mem::size_of::<T>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn with_context(e: io::Error, what: &str) -> io::Error {
    io::Error::new(e.kind(), format!("{what}: {e}"))
}

/// Sets (or with `key == None` removes) the TCP-MD5 key for `peer` on socket `fd`
/// (RFC 2385). On a listening socket this keys incoming connections from that address.
pub fn set_md5(fd: RawFd, peer: IpAddr, key: Option<&[u8]>) -> io::Result<()> {
    let key = key.unwrap_or(&[]);
    if key.len() > MD5_MAX_KEY_LEN {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "TCP-MD5 key longer than 80 bytes",
        ));
    }
    // SAFETY: all-zero is a valid value of this plain C struct.
    let mut sig: TcpMd5Sig = unsafe { mem::zeroed() };
    let sa = SockAddr::from(SocketAddr::new(peer, 0));
    let len = (sa.len() as usize).min(mem::size_of::<libc::sockaddr_storage>());
    // SAFETY: copies `len` bytes of the socket address into the zeroed storage, which is
    // at least that large.
    unsafe {
        std::ptr::copy_nonoverlapping(
            sa.as_ptr().cast::<u8>(),
            (&mut sig.addr as *mut libc::sockaddr_storage).cast::<u8>(),
            len,
        );
    }
    sig.keylen = key.len() as u16;
    for (dst, src) in sig.key.iter_mut().zip(key) {
        *dst = *src;
    }
    setsockopt(fd, libc::IPPROTO_TCP, libc::TCP_MD5SIG, &sig)
        .map_err(|e| with_context(e, "setting TCP_MD5SIG"))
}

/// Outgoing TTL / hop limit.
pub(crate) fn set_ttl(fd: RawFd, v6: bool, ttl: u8) -> io::Result<()> {
    let v = libc::c_int::from(ttl);
    if v6 {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &v)
            .map_err(|e| with_context(e, "setting IPV6_UNICAST_HOPS"))
    } else {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_TTL, &v)
            .map_err(|e| with_context(e, "setting IP_TTL"))
    }
}

/// GTSM (RFC 5082 section 3): drop packets arriving with a TTL below `min`.
pub(crate) fn set_min_ttl(fd: RawFd, v6: bool, min: u8) -> io::Result<()> {
    let v = libc::c_int::from(min);
    if v6 {
        setsockopt(fd, libc::IPPROTO_IPV6, libc::IPV6_MINHOPCOUNT, &v)
            .map_err(|e| with_context(e, "setting IPV6_MINHOPCOUNT"))
    } else {
        setsockopt(fd, libc::IPPROTO_IP, libc::IP_MINTTL, &v)
            .map_err(|e| with_context(e, "setting IP_MINTTL"))
    }
}

/// Interface index of `name`, for IPv6 link-local scopes.
pub(crate) fn if_index(name: &str) -> io::Result<u32> {
    let c = CString::new(name)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface name has NUL"))?;
    // SAFETY: `c` is a valid NUL-terminated string for the duration of the call.
    let idx = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if idx == 0 {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!("no interface named {name:?}"),
        ))
    } else {
        Ok(idx)
    }
}

/// A global IPv6 address of interface `ifindex`, for the next hop of a session over
/// link-local addresses (RFC 2545 section 3: the Network Address of Next Hop field holds a
/// global address, followed by the link-local one). Unique local addresses (fc00::/7)
/// count as global; link-local, loopback, multicast and unspecified ones do not. With
/// several, the lowest is taken so the choice does not depend on address order. `None`
/// when the interface has none (or cannot be read).
pub(crate) fn interface_global_v6(ifindex: u32) -> Option<std::net::Ipv6Addr> {
    let mut name = [0 as libc::c_char; libc::IF_NAMESIZE];
    // SAFETY: `name` has IF_NAMESIZE bytes, as if_indextoname requires.
    if unsafe { libc::if_indextoname(ifindex, name.as_mut_ptr()) }.is_null() {
        return None;
    }
    // SAFETY: if_indextoname succeeded, so `name` holds a NUL-terminated string.
    let name = unsafe { std::ffi::CStr::from_ptr(name.as_ptr()) };
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return None;
    }
    let mut best: Option<std::net::Ipv6Addr> = None;
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not freed yet.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null() || ifa.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        if unsafe { std::ffi::CStr::from_ptr(ifa.ifa_name) } != name {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says its real type.
        if i32::from(unsafe { (*ifa.ifa_addr).sa_family }) != libc::AF_INET6 {
            continue;
        }
        // SAFETY: an AF_INET6 address is a sockaddr_in6.
        let sin6 = unsafe { &*(ifa.ifa_addr as *const libc::sockaddr_in6) };
        let a = std::net::Ipv6Addr::from(sin6.sin6_addr.s6_addr);
        let link_local = (a.segments()[0] & 0xffc0) == 0xfe80;
        if link_local || a.is_loopback() || a.is_multicast() || a.is_unspecified() {
            continue;
        }
        if best.is_none_or(|b| a < b) {
            best = Some(a);
        }
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    best
}

/// The socket address to connect to, with the scope id for link-local peers.
pub(crate) fn peer_socket_addr(addr: &PeerAddress, port: u16) -> io::Result<SocketAddr> {
    match (addr.addr, &addr.scope) {
        (IpAddr::V6(a), Some(scope)) => Ok(SocketAddr::V6(SocketAddrV6::new(
            a,
            port,
            0,
            if_index(scope)?,
        ))),
        (a, _) => Ok(SocketAddr::new(a, port)),
    }
}

/// Whether a connection from `remote` arrived over interface `scope`, the scope of a
/// link-local peer (a link-local address names a host only on one link). Without a scope,
/// or for IPv4, any connection matches.
pub(crate) fn scope_matches(scope: Option<&str>, remote: SocketAddr) -> bool {
    match (scope, remote) {
        (Some(s), SocketAddr::V6(r)) => if_index(s).is_ok_and(|i| i == r.scope_id()),
        _ => true,
    }
}

/// Per-connection socket options for one peer.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct SocketOptions {
    /// TCP-MD5 key.
    pub(crate) md5_key: Option<Vec<u8>>,
    /// Outgoing TTL / hop limit.
    pub(crate) ttl: Option<u8>,
    /// GTSM minimum incoming TTL.
    pub(crate) min_ttl: Option<u8>,
    /// Local address to bind.
    pub(crate) source: Option<IpAddr>,
}

/// Applies TTL and GTSM options to an accepted or connecting socket.
pub(crate) fn apply_options(fd: RawFd, v6: bool, opts: &SocketOptions) -> io::Result<()> {
    if let Some(ttl) = opts.ttl {
        set_ttl(fd, v6, ttl)?;
    }
    if let Some(min) = opts.min_ttl {
        set_min_ttl(fd, v6, min)?;
    }
    Ok(())
}

/// Opens a connection to `remote` with `opts` applied before the SYN is sent.
pub(crate) async fn connect(remote: SocketAddr, opts: &SocketOptions) -> io::Result<TcpStream> {
    let v6 = remote.is_ipv6();
    let sock = if v6 {
        TcpSocket::new_v6()?
    } else {
        TcpSocket::new_v4()?
    };
    let fd = sock.as_raw_fd();
    if let Some(key) = &opts.md5_key {
        set_md5(fd, remote.ip(), Some(key))?;
    }
    apply_options(fd, v6, opts)?;
    if let Some(src) = opts.source {
        let local = match remote {
            SocketAddr::V6(r) if r.scope_id() != 0 => match src {
                IpAddr::V6(s) => SocketAddr::V6(SocketAddrV6::new(s, 0, 0, r.scope_id())),
                IpAddr::V4(_) => SocketAddr::new(src, 0),
            },
            _ => SocketAddr::new(src, 0),
        };
        sock.bind(local)
            .map_err(|e| with_context(e, &format!("binding source address {src}")))?;
    }
    let stream = sock.connect(remote).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Opens a listening socket on `addr` (IPv6 sockets are IPv6-only so `0.0.0.0` and `::`
/// can both be bound). Its TTL is 255 so handshakes with GTSM peers complete.
pub(crate) fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let domain = if addr.is_ipv6() {
        Domain::IPV6
    } else {
        Domain::IPV4
    };
    let s = Socket::new(domain, Type::STREAM, Some(Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    // The SYN-ACK of a passive open leaves with the listener's TTL, before per-peer
    // options can be set on the accepted socket: send it with 255 so a GTSM peer
    // (RFC 5082) accepts it. Accepted sockets get their peer's TTL right after accept.
    set_ttl(s.as_raw_fd(), addr.is_ipv6(), 255)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())
        .map_err(|e| with_context(e, &format!("binding {addr}")))?;
    s.listen(128)?;
    TcpListener::from_std(s.into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    #[test]
    fn md5_struct_matches_kernel_layout() {
        // sizeof(struct tcp_md5sig) on Linux: 128 + 1 + 1 + 2 + 4 + 80.
        assert_eq!(mem::size_of::<TcpMd5Sig>(), 216);
    }

    #[test]
    fn md5_key_too_long_is_an_error() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let e = set_md5(
            l.as_raw_fd(),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            Some(&[0u8; 81]),
        )
        .unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    }

    #[test]
    fn unknown_interface() {
        assert!(if_index("nonexistent-if0").is_err());
        assert!(if_index("lo").is_ok());
        let pa: PeerAddress = "fe80::1%lo".parse().unwrap();
        match peer_socket_addr(&pa, 179).unwrap() {
            SocketAddr::V6(s) => assert_ne!(s.scope_id(), 0),
            SocketAddr::V4(_) => panic!("v6 expected"),
        }
    }

    #[test]
    fn scope_of_incoming_link_local_connections() {
        let lo = if_index("lo").unwrap();
        let on = |scope_id| {
            SocketAddr::V6(SocketAddrV6::new(
                "fe80::2".parse().unwrap(),
                179,
                0,
                scope_id,
            ))
        };
        assert!(scope_matches(Some("lo"), on(lo)));
        assert!(!scope_matches(Some("lo"), on(lo + 1000)));
        assert!(!scope_matches(Some("nonexistent-if0"), on(lo)));
        assert!(scope_matches(None, on(lo + 1000)));
        assert!(scope_matches(Some("lo"), "127.0.0.1:179".parse().unwrap()));
    }

    #[test]
    fn interface_global_v6_skips_loopback() {
        // ::1 on `lo` is never taken; a missing interface has no address.
        let lo = if_index("lo").unwrap();
        assert!(interface_global_v6(lo).is_none_or(|a| !a.is_loopback()));
        assert_eq!(interface_global_v6(u32::MAX), None);
    }

    #[tokio::test]
    async fn connect_with_ttl_and_source() {
        // `listen` sends its SYN-ACK with TTL 255, so GTSM on the client accepts it.
        let l = listen("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = l.local_addr().unwrap();
        let opts = SocketOptions {
            ttl: Some(255),
            min_ttl: Some(255),
            source: Some("127.0.0.5".parse().unwrap()),
            md5_key: None,
        };
        let (c, a) = tokio::join!(connect(addr, &opts), l.accept());
        let c = c.unwrap();
        let (_s, peer) = a.unwrap();
        assert_eq!(peer.ip(), "127.0.0.5".parse::<IpAddr>().unwrap());
        assert_eq!(c.local_addr().unwrap().ip(), peer.ip());
    }
}
