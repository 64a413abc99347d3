//! Where a peer's BFD session runs: single hop or multihop, our address, the interface.
//!
//! `multihop` unset (auto) means single hop (RFC 5881) when the peer's address lies on a
//! subnet of one of our interfaces (or is IPv6 link-local), multihop (RFC 5883)
//! otherwise. A single-hop session is tied to the interface of that subnet (RFC 5881 3
//! demultiplexes on it) and sent from that interface's address. A multihop session needs
//! our address (RFC 5883 3): the peer's `source_address`, else the address the kernel
//! would send from (a connected UDP socket's local address), and accepts packets whose
//! TTL shows at most as many hops as the BGP session's TTL allows.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

use bgp_bfd::{Addresses, Hops};

use crate::config::{BfdHops, PeerAddress};

/// The path of one session, as the endpoint takes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Path {
    pub addresses: Addresses,
    pub hops: Hops,
    /// The address our sending socket is bound to (unspecified: the kernel's choice).
    pub bind: IpAddr,
}

/// An interface address with its prefix length.
struct IfAddr {
    addr: IpAddr,
    prefix_len: u8,
    ifindex: u32,
}

/// Works out the path to `peer` (`min_ttl`: the BGP session's GTSM minimum TTL, if any).
pub(super) fn resolve(
    peer: &PeerAddress,
    source: Option<IpAddr>,
    mode: BfdHops,
    min_ttl: Option<u8>,
) -> Result<Path, String> {
    let connected = if let Some(scope) = &peer.scope {
        let ifindex = crate::net::if_index(scope).map_err(|e| format!("interface {scope}: {e}"))?;
        let local = source.unwrap_or_else(|| unspecified(peer.addr));
        Some((local, ifindex))
    } else {
        connected_to(peer.addr).map(|(a, i)| (source.unwrap_or(a), i))
    };
    let multihop = match mode {
        BfdHops::Auto => connected.is_none(),
        BfdHops::Single => false,
        BfdHops::Multi => true,
    };
    if !multihop {
        let (bind, interface) = match connected {
            Some((a, i)) => (a, Some(i)),
            None => (source.unwrap_or_else(|| unspecified(peer.addr)), None),
        };
        return Ok(Path {
            addresses: Addresses {
                peer: peer.addr,
                local: None,
                interface,
            },
            hops: Hops::Single,
            bind,
        });
    }
    let local = match source {
        Some(a) => a,
        None => route_source(peer.addr)
            .map_err(|e| format!("no local address towards {}: {e}", peer.addr))?,
    };
    Ok(Path {
        addresses: Addresses {
            peer: peer.addr,
            local: Some(local),
            interface: None,
        },
        // RFC 5883 leaves the TTL check of a multihop session to configuration: peers
        // send with their own initial TTL (BIRD 64, FRR 255), so only a BGP session under
        // GTSM, whose peer sends 255 anyway, gets the same bound for BFD.
        hops: Hops::Multi {
            min_ttl: min_ttl.unwrap_or(1).max(1),
        },
        bind: local,
    })
}

fn unspecified(like: IpAddr) -> IpAddr {
    match like {
        IpAddr::V4(_) => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
        IpAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
    }
}

/// The address the kernel sends from towards `peer` (a UDP `connect` sends nothing).
fn route_source(peer: IpAddr) -> io::Result<IpAddr> {
    let s = UdpSocket::bind(SocketAddr::new(unspecified(peer), 0))?;
    s.connect(SocketAddr::new(
        peer,
        bgp_bfd::session::config::MULTIHOP_PORT,
    ))?;
    Ok(s.local_addr()?.ip())
}

/// Our address and interface on a subnet that holds `peer`, the longest prefix first.
fn connected_to(peer: IpAddr) -> Option<(IpAddr, u32)> {
    interface_addresses()
        .into_iter()
        .filter(|a| a.addr != peer && same_subnet(a.addr, peer, a.prefix_len))
        .max_by_key(|a| a.prefix_len)
        .map(|a| (a.addr, a.ifindex))
}

fn same_subnet(a: IpAddr, b: IpAddr, len: u8) -> bool {
    let (a, b, bits) = match (a, b) {
        (IpAddr::V4(a), IpAddr::V4(b)) => (
            u128::from(u32::from(a)) << 96,
            u128::from(u32::from(b)) << 96,
            32,
        ),
        (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), 128),
        _ => return false,
    };
    // A /32 (/128) or host route is no subnet: nothing else is on it.
    if len == 0 || len >= bits {
        return false;
    }
    let mask = u128::MAX << (128 - u32::from(len));
    a & mask == b & mask
}

/// Every address of every interface that is up, with its prefix length.
fn interface_addresses() -> Vec<IfAddr> {
    let mut out = Vec::new();
    let mut list: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `list` with a linked list freed below with freeifaddrs.
    if unsafe { libc::getifaddrs(&mut list) } != 0 {
        return out;
    }
    let mut cur = list;
    while !cur.is_null() {
        // SAFETY: `cur` is a node of the list getifaddrs returned, not freed yet.
        let ifa = unsafe { &*cur };
        cur = ifa.ifa_next;
        if ifa.ifa_addr.is_null()
            || ifa.ifa_netmask.is_null()
            || ifa.ifa_name.is_null()
            || ifa.ifa_flags & (libc::IFF_UP as u32) == 0
        {
            continue;
        }
        // SAFETY: ifa_addr and ifa_netmask point to sockaddrs of the family they carry.
        let (addr, mask) = unsafe { (sockaddr_ip(ifa.ifa_addr), sockaddr_ip(ifa.ifa_netmask)) };
        let (Some(addr), Some(mask)) = (addr, mask) else {
            continue;
        };
        let prefix_len = match mask {
            IpAddr::V4(m) => u32::from(m).count_ones() as u8,
            IpAddr::V6(m) => u128::from(m).count_ones() as u8,
        };
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let ifindex = unsafe { libc::if_nametoindex(ifa.ifa_name) };
        out.push(IfAddr {
            addr,
            prefix_len,
            ifindex,
        });
    }
    // SAFETY: `list` came from getifaddrs and is freed once.
    unsafe { libc::freeifaddrs(list) };
    out
}

/// SAFETY: `sa` points to a sockaddr whose family says its real type.
unsafe fn sockaddr_ip(sa: *const libc::sockaddr) -> Option<IpAddr> {
    match i32::from((*sa).sa_family) {
        libc::AF_INET => {
            let sin = &*(sa as *const libc::sockaddr_in);
            Some(IpAddr::V4(u32::from_be(sin.sin_addr.s_addr).into()))
        }
        libc::AF_INET6 => {
            let sin6 = &*(sa as *const libc::sockaddr_in6);
            Some(IpAddr::V6(sin6.sin6_addr.s6_addr.into()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnets() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert!(same_subnet(ip("10.0.0.1"), ip("10.0.0.2"), 24));
        assert!(!same_subnet(ip("10.0.0.1"), ip("10.0.1.2"), 24));
        assert!(!same_subnet(ip("10.0.0.1"), ip("10.0.0.1"), 32));
        assert!(!same_subnet(ip("10.0.0.1"), ip("::1"), 8));
        assert!(same_subnet(ip("2001:db8::1"), ip("2001:db8::2"), 64));
    }

    #[test]
    fn loopback_peer_is_connected_and_forced_multihop_finds_a_source() {
        // 127.0.0.0/8 is on lo in every network namespace.
        let peer = PeerAddress::new(IpAddr::V4(std::net::Ipv4Addr::new(127, 0, 0, 9)));
        let p = resolve(&peer, None, BfdHops::Auto, None).unwrap();
        assert_eq!(p.hops, Hops::Single);
        assert!(p.addresses.interface.is_some());
        assert!(p.bind.is_loopback());
        let m = resolve(&peer, None, BfdHops::Multi, None).unwrap();
        assert_eq!(m.hops, Hops::Multi { min_ttl: 1 });
        let gtsm = resolve(&peer, None, BfdHops::Multi, Some(254)).unwrap();
        assert_eq!(gtsm.hops, Hops::Multi { min_ttl: 254 });
        assert!(m.addresses.local.is_some_and(|a| a.is_loopback()));
    }
}
