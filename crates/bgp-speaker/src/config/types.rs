//! Small value types of the configuration with their textual forms.
//!
//! Each parses from the string an operator writes (`"fe80::1%eth0"`, `"64512:100"`,
//! `"ipv6"`) and serializes back to the same string, so a config round-trips and error
//! messages can quote what was written.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use bgp_proto::{Community, Family, LargeCommunity};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Implements `Serialize`/`Deserialize` through `Display`/`FromStr`.
macro_rules! string_serde {
    ($t:ty, $expecting:literal) => {
        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                s.parse().map_err(|e: String| {
                    serde::de::Error::custom(format!("{e} (expected {})", $expecting))
                })
            }
        }
    };
}

/// A peer address, optionally with an interface scope for IPv6 link-local peers
/// (`fe80::1%eth0`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerAddress {
    /// The IP address.
    pub addr: IpAddr,
    /// Interface name for link-local addresses.
    pub scope: Option<String>,
}

impl PeerAddress {
    /// A peer address without interface scope.
    pub fn new(addr: IpAddr) -> PeerAddress {
        PeerAddress { addr, scope: None }
    }

    /// True for IPv6 link-local (fe80::/10) addresses, which need a scope.
    pub fn is_link_local(&self) -> bool {
        match self.addr {
            IpAddr::V6(a) => (a.segments()[0] & 0xffc0) == 0xfe80,
            IpAddr::V4(_) => false,
        }
    }
}

impl fmt::Display for PeerAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scope {
            Some(s) => write!(f, "{}%{}", self.addr, s),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl FromStr for PeerAddress {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let (a, scope) = match s.split_once('%') {
            Some((a, sc)) => (a, Some(sc)),
            None => (s, None),
        };
        let addr: IpAddr = a.parse().map_err(|_| format!("invalid IP address {a:?}"))?;
        let pa = PeerAddress {
            addr,
            scope: scope.map(str::to_owned),
        };
        match (&pa.scope, pa.is_link_local()) {
            (Some(sc), _) if sc.is_empty() || sc.len() > 15 => {
                Err(format!("invalid interface name {sc:?}"))
            }
            (Some(_), false) => Err(format!(
                "an interface scope is only allowed on IPv6 link-local addresses, not {addr}"
            )),
            (None, true) => Err(format!(
                "link-local address {addr} needs an interface scope, e.g. {addr}%eth0"
            )),
            _ => Ok(pa),
        }
    }
}

string_serde!(
    PeerAddress,
    "an IP address, link-local ones with %interface"
);

/// A listen address: an IP with an optional port (`"0.0.0.0"`, `"[::]:1179"`,
/// `"127.0.0.2:1790"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ListenAddr {
    /// The IP address.
    pub addr: IpAddr,
    /// The port, when given.
    pub port: Option<u16>,
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.port {
            Some(p) => write!(f, "{}", SocketAddr::new(self.addr, p)),
            None => write!(f, "{}", self.addr),
        }
    }
}

impl FromStr for ListenAddr {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Ok(addr) = s.parse::<IpAddr>() {
            return Ok(ListenAddr { addr, port: None });
        }
        s.parse::<SocketAddr>()
            .map(|sa| ListenAddr {
                addr: sa.ip(),
                port: Some(sa.port()),
            })
            .map_err(|_| format!("invalid listen address {s:?}"))
    }
}

string_serde!(ListenAddr, "an IP address or IP:port");

/// An address family a peer carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FamilyName {
    /// IPv4 unicast.
    Ipv4,
    /// IPv6 unicast.
    Ipv6,
}

impl FamilyName {
    /// The AFI/SAFI pair.
    pub fn family(self) -> Family {
        match self {
            FamilyName::Ipv4 => Family::IPV4_UNICAST,
            FamilyName::Ipv6 => Family::IPV6_UNICAST,
        }
    }
}

impl fmt::Display for FamilyName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            FamilyName::Ipv4 => "ipv4",
            FamilyName::Ipv6 => "ipv6",
        })
    }
}

impl FromStr for FamilyName {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "ipv4" | "ipv4-unicast" => Ok(FamilyName::Ipv4),
            "ipv6" | "ipv6-unicast" => Ok(FamilyName::Ipv6),
            _ => Err(format!("unknown address family {s:?}")),
        }
    }
}

string_serde!(FamilyName, "\"ipv4\" or \"ipv6\"");

/// What to put in NEXT_HOP when announcing to a peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NextHopMode {
    /// RFC 4271 5.1.3 defaults: self towards eBGP peers, unchanged towards iBGP peers.
    #[default]
    Auto,
    /// Always our own address (`next-hop-self`).
    #[serde(rename = "self")]
    SelfAddr,
    /// Never change the next hop (route servers, reflectors of third-party next hops).
    Keep,
}

/// What a peer is told when bgpd stops (SIGTERM) without being told it leaves for good.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnStop {
    /// Cease / Administrative Shutdown: a peer with the RFC 8538 N bit keeps our routes
    /// as stale, any other peer drops them.
    #[default]
    Notify,
    /// A restart: every peer is left keeping our routes as far as its capabilities
    /// allow (the NOTIFICATION with the N bit, no NOTIFICATION to a peer that negotiated
    /// graceful restart without it, RFC 4724 4.2).
    Restart,
}

/// ADD-PATH (RFC 7911) per peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AddPathConfig {
    #[default]
    /// Not announced.
    Off,
    /// Receive multiple paths.
    Receive,
    /// Send multiple paths.
    Send,
    /// Send and receive multiple paths.
    Both,
}

/// What to do when a peer exceeds its prefix limit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MaxPrefixAction {
    /// Log a warning once and keep the session.
    Warn,
    /// Send Cease / Maximum Number of Prefixes Reached (RFC 4486) and close the session.
    #[default]
    Teardown,
}

/// A standard community: `"ASN:VALUE"` or a well-known name (`"no-export"`,
/// `"no-advertise"`, `"no-export-subconfed"`, `"llgr-stale"`, `"no-llgr"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CommunityValue(pub Community);

impl fmt::Display for CommunityValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Community::NO_EXPORT => f.write_str("no-export"),
            Community::NO_ADVERTISE => f.write_str("no-advertise"),
            Community::NO_EXPORT_SUBCONFED => f.write_str("no-export-subconfed"),
            Community::LLGR_STALE => f.write_str("llgr-stale"),
            Community::NO_LLGR => f.write_str("no-llgr"),
            c => write!(f, "{c}"),
        }
    }
}

impl FromStr for CommunityValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let c = match s {
            "no-export" => Community::NO_EXPORT,
            "no-advertise" => Community::NO_ADVERTISE,
            "no-export-subconfed" => Community::NO_EXPORT_SUBCONFED,
            "llgr-stale" => Community::LLGR_STALE,
            "no-llgr" => Community::NO_LLGR,
            _ => {
                let (a, v) = s
                    .split_once(':')
                    .ok_or_else(|| format!("invalid community {s:?}"))?;
                let a: u16 = a.parse().map_err(|_| format!("invalid community {s:?}"))?;
                let v: u16 = v.parse().map_err(|_| format!("invalid community {s:?}"))?;
                Community::new(a, v)
            }
        };
        Ok(CommunityValue(c))
    }
}

string_serde!(
    CommunityValue,
    "\"ASN:VALUE\" with 16-bit parts or a well-known name"
);

/// A large community `"GLOBAL:LOCAL1:LOCAL2"` (RFC 8092).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunityValue(pub LargeCommunity);

impl fmt::Display for LargeCommunityValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for LargeCommunityValue {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let mut it = s.split(':').map(str::parse::<u32>);
        match (it.next(), it.next(), it.next(), it.next()) {
            (Some(Ok(global)), Some(Ok(local1)), Some(Ok(local2)), None) => {
                Ok(LargeCommunityValue(LargeCommunity {
                    global,
                    local1,
                    local2,
                }))
            }
            _ => Err(format!("invalid large community {s:?}")),
        }
    }
}

string_serde!(
    LargeCommunityValue,
    "\"GLOBAL:LOCAL1:LOCAL2\" with 32-bit parts"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_address_forms() {
        let a: PeerAddress = "10.0.0.2".parse().unwrap();
        assert_eq!(a.scope, None);
        let b: PeerAddress = "fe80::1%eth0".parse().unwrap();
        assert_eq!(b.scope.as_deref(), Some("eth0"));
        assert_eq!(b.to_string(), "fe80::1%eth0");
        assert!("fe80::1"
            .parse::<PeerAddress>()
            .unwrap_err()
            .contains("scope"));
        assert!("10.0.0.1%eth0"
            .parse::<PeerAddress>()
            .unwrap_err()
            .contains("link-local"));
        assert!("fe80::1%".parse::<PeerAddress>().is_err());
        assert!("nonsense".parse::<PeerAddress>().is_err());
    }

    #[test]
    fn listen_forms() {
        let a: ListenAddr = "0.0.0.0".parse().unwrap();
        assert_eq!(a.port, None);
        let b: ListenAddr = "[::1]:1179".parse().unwrap();
        assert_eq!(b.port, Some(1179));
        assert_eq!(b.to_string(), "[::1]:1179");
        assert!("1.2.3.4:99999".parse::<ListenAddr>().is_err());
    }

    #[test]
    fn communities() {
        let c: CommunityValue = "64512:100".parse().unwrap();
        assert_eq!(c.0, Community::new(64512, 100));
        assert_eq!(c.to_string(), "64512:100");
        let w: CommunityValue = "no-export".parse().unwrap();
        assert_eq!(w.0, Community::NO_EXPORT);
        assert_eq!(w.to_string(), "no-export");
        assert!("70000:1".parse::<CommunityValue>().is_err());
        assert!("1".parse::<CommunityValue>().is_err());
        let l: LargeCommunityValue = "4200000000:1:2".parse().unwrap();
        assert_eq!(l.0.global, 4_200_000_000);
        assert_eq!(l.to_string(), "4200000000:1:2");
        assert!("1:2".parse::<LargeCommunityValue>().is_err());
        assert!("1:2:3:4".parse::<LargeCommunityValue>().is_err());
    }

    #[test]
    fn families() {
        assert_eq!(
            "ipv6".parse::<FamilyName>().unwrap().family(),
            Family::IPV6_UNICAST
        );
        assert_eq!(
            "ipv4-unicast".parse::<FamilyName>().unwrap().family(),
            Family::IPV4_UNICAST
        );
        assert!("l2vpn".parse::<FamilyName>().is_err());
    }
}
