//! Plain data types shared by the watcher (kernel → RIB) and the installer (RIB → kernel).
//!
//! They are deliberately independent of the BGP RIB: the daemon converts between these and its
//! own route representation. Everything here is owned, cloneable and cheap to compare.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Outcome of one netlink request: 0 on success, else the positive errno.
pub(crate) type Errno = i32;

/// `rtm_type` of a kernel route (`include/uapi/linux/rtnetlink.h`, `RTN_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RouteKind {
    /// `RTN_UNICAST`: a gateway or direct route.
    Unicast,
    /// `RTN_LOCAL`: an address of this host.
    Local,
    /// `RTN_BROADCAST`.
    Broadcast,
    /// `RTN_ANYCAST`.
    Anycast,
    /// `RTN_MULTICAST`.
    Multicast,
    /// `RTN_BLACKHOLE`: silently drop (Calico's IPAM block routes).
    Blackhole,
    /// `RTN_UNREACHABLE`: drop with ICMP unreachable.
    Unreachable,
    /// `RTN_PROHIBIT`: drop with ICMP administratively prohibited.
    Prohibit,
    /// `RTN_THROW`: continue the lookup in the next rule.
    Throw,
    /// Any other value.
    #[serde(skip)]
    Other(u8),
}

impl RouteKind {
    /// The numeric `RTN_*` value.
    pub fn to_raw(self) -> u8 {
        match self {
            RouteKind::Unicast => 1,
            RouteKind::Local => 2,
            RouteKind::Broadcast => 3,
            RouteKind::Anycast => 4,
            RouteKind::Multicast => 5,
            RouteKind::Blackhole => 6,
            RouteKind::Unreachable => 7,
            RouteKind::Prohibit => 8,
            RouteKind::Throw => 9,
            RouteKind::Other(v) => v,
        }
    }

    /// From the numeric `RTN_*` value.
    pub fn from_raw(v: u8) -> Self {
        match v {
            1 => RouteKind::Unicast,
            2 => RouteKind::Local,
            3 => RouteKind::Broadcast,
            4 => RouteKind::Anycast,
            5 => RouteKind::Multicast,
            6 => RouteKind::Blackhole,
            7 => RouteKind::Unreachable,
            8 => RouteKind::Prohibit,
            9 => RouteKind::Throw,
            other => RouteKind::Other(other),
        }
    }
}

/// One path of a kernel route (the single path, or one leg of an `RTA_MULTIPATH` route).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelNextHop {
    /// `RTA_GATEWAY` (or `RTA_VIA`), absent for device routes.
    pub gateway: Option<IpAddr>,
    /// Output interface index (`RTA_OIF` / `rtnh_ifindex`), 0 when absent.
    pub ifindex: u32,
    /// Output interface name, resolved through the watcher's link table.
    pub ifname: Option<String>,
    /// `RTNH_F_ONLINK` was set.
    pub onlink: bool,
    /// `rtnh_hops` + 1 for multipath legs, 1 otherwise.
    pub weight: u16,
}

/// A route read from the kernel FIB.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KernelRoute {
    /// Destination prefix (host bits cleared).
    pub prefix: IpNet,
    /// `rtm_type`.
    pub kind: RouteKind,
    /// `rtm_protocol` (3 = boot, 12 = bird, 80 = Felix, ...).
    pub protocol: u8,
    /// `RTA_PRIORITY` (0 when absent).
    pub metric: u32,
    /// Routing table (`RTA_TABLE`, or `rtm_table` when the attribute is absent).
    pub table: u32,
    /// Output interface name of the first path.
    pub ifname: Option<String>,
    /// Gateway of the first path.
    pub gateway: Option<IpAddr>,
    /// All paths (one entry for a single-path route, none for blackholes).
    pub nexthops: Vec<KernelNextHop>,
}

/// A network interface.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Link {
    /// ifindex.
    pub index: u32,
    /// `IFLA_IFNAME`.
    pub name: String,
    /// Administratively up (`IFF_UP`) and lower layer up (`IFF_RUNNING` / `IFF_LOWER_UP`).
    pub up: bool,
}

/// An interface address.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Address {
    /// ifindex of the interface holding the address.
    pub ifindex: u32,
    /// Interface name when known.
    pub ifname: Option<String>,
    /// The address with its subnet prefix length (e.g. 10.0.0.1/24), the connected subnet
    /// is `address.trunc()`.
    pub address: IpNet,
}

/// What the watcher reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KernelEvent {
    /// A selected route appeared or changed (a replace is reported as RouteAdded with the new
    /// content; the key is prefix + table + metric).
    RouteAdded(KernelRoute),
    /// A selected route disappeared. Reported as the kernel's delete message describes it;
    /// a removal found by a re-dump (after an overrun or a link going down) carries only
    /// the key (table, prefix, metric), protocol and type: the watcher keeps a fingerprint
    /// of each route, not the route.
    RouteRemoved(KernelRoute),
    /// An interface came up (or appeared in the up state).
    LinkUp(Link),
    /// An interface went down.
    LinkDown(Link),
    /// An interface was deleted.
    LinkRemoved(Link),
    /// An address was added.
    AddressAdded(Address),
    /// An address was removed.
    AddressRemoved(Address),
    /// A route of our own export protocol was deleted (reported so the installer can
    /// reinstall a route someone else removed; pass it to `KernelInstaller::observe`).
    /// "Our" protocol is `ImportConfig::own_protocol` (12 when unset; use
    /// `KernelConfig::import_config` to keep it equal to the export protocol).
    OwnRouteRemoved(KernelRoute),
    /// The initial dump (or a re-dump after a netlink buffer overrun) is complete: everything
    /// reported so far is the current kernel state.
    Synced,
    /// The watcher lost its netlink connection (the reason): until the next
    /// [`KernelEvent::Synced`] changes may be missing. It reconnects by itself, with
    /// backoff, re-reads the kernel and reports the differences.
    Lost(String),
}
