//! The typed BGP data model shared by the codec, the session machine, the RIB and the daemon.
//!
//! Wire codes are newtypes with named constants rather than closed enums, so a value this
//! crate does not know (a new AFI, an unknown capability) still round-trips unchanged.
//! Attribute sets ([`PathAttributes`]) are plain values that hash and compare cheaply, so the
//! RIB can intern identical sets once behind an `Arc`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bytes::Bytes;
use ipnet::IpNet;

/// Address Family Identifier (IANA "Address Family Numbers").
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Afi(pub u16);

impl Afi {
    pub const IPV4: Afi = Afi(1);
    pub const IPV6: Afi = Afi(2);
    pub const L2VPN: Afi = Afi(25);
    pub const BGP_LS: Afi = Afi(16388);
}

/// Subsequent Address Family Identifier.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Safi(pub u8);

impl Safi {
    pub const UNICAST: Safi = Safi(1);
    pub const MULTICAST: Safi = Safi(2);
    pub const MPLS_LABEL: Safi = Safi(4);
    pub const EVPN: Safi = Safi(70);
    pub const BGP_LS: Safi = Safi(71);
    pub const SR_POLICY: Safi = Safi(73);
    pub const MPLS_VPN: Safi = Safi(128);
    pub const FLOWSPEC: Safi = Safi(133);
    pub const FLOWSPEC_VPN: Safi = Safi(134);
}

/// An AFI/SAFI pair: the unit in which capabilities, ADD-PATH, End-of-RIB and graceful
/// restart are negotiated.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Family {
    pub afi: Afi,
    pub safi: Safi,
}

impl Family {
    pub const IPV4_UNICAST: Family = Family::new(Afi::IPV4, Safi::UNICAST);
    pub const IPV6_UNICAST: Family = Family::new(Afi::IPV6, Safi::UNICAST);

    pub const fn new(afi: Afi, safi: Safi) -> Family {
        Family { afi, safi }
    }

    /// IPv4 or IPv6 unicast: the families whose NLRI this crate decodes into prefixes.
    /// Every other family is carried as opaque bytes.
    pub fn is_unicast_ip(self) -> bool {
        self == Family::IPV4_UNICAST || self == Family::IPV6_UNICAST
    }
}

impl std::fmt::Display for Family {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Family::IPV4_UNICAST => f.write_str("ipv4-unicast"),
            Family::IPV6_UNICAST => f.write_str("ipv6-unicast"),
            Family { afi, safi } => write!(f, "afi{}-safi{}", afi.0, safi.0),
        }
    }
}

/// ADD-PATH path identifier (RFC 7911).
pub type PathId = u32;

/// One IPv4/IPv6 unicast NLRI entry, with its ADD-PATH path identifier when the family
/// negotiated ADD-PATH in the direction the message travels.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Nlri {
    pub path_id: Option<PathId>,
    pub prefix: IpNet,
}

impl Nlri {
    pub fn new(prefix: IpNet) -> Nlri {
        Nlri {
            path_id: None,
            prefix,
        }
    }
}

/// NLRI of one family inside MP_REACH_NLRI / MP_UNREACH_NLRI.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MpNlri {
    /// IPv4 or IPv6 unicast, decoded.
    Unicast(Vec<Nlri>),
    /// Any other family (VPN, EVPN, flowspec, BGP-LS, ...): kept verbatim so the message
    /// decodes and the bytes can be passed on or logged.
    Opaque(Bytes),
}

impl MpNlri {
    pub fn is_empty(&self) -> bool {
        match self {
            MpNlri::Unicast(v) => v.is_empty(),
            MpNlri::Opaque(b) => b.is_empty(),
        }
    }
}

/// Next hop carried in MP_REACH_NLRI (RFC 4760, RFC 2545, RFC 8950).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum MpNextHop {
    V4(Ipv4Addr),
    /// A global IPv6 address, optionally followed by a link-local one (RFC 2545).
    V6 {
        global: Ipv6Addr,
        link_local: Option<Ipv6Addr>,
    },
    /// A next hop form this crate does not interpret (e.g. RD-prefixed VPN next hops).
    Opaque(Bytes),
}

impl MpNextHop {
    /// The address to forward to, if this is a plain IP next hop.
    pub fn addr(&self) -> Option<IpAddr> {
        match self {
            MpNextHop::V4(a) => Some(IpAddr::V4(*a)),
            MpNextHop::V6 { global, .. } => Some(IpAddr::V6(*global)),
            MpNextHop::Opaque(_) => None,
        }
    }
}

/// MP_REACH_NLRI (attribute 14).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MpReach {
    pub family: Family,
    pub next_hop: MpNextHop,
    pub nlri: MpNlri,
}

/// MP_UNREACH_NLRI (attribute 15).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct MpUnreach {
    pub family: Family,
    pub nlri: MpNlri,
}

/// ORIGIN (attribute 1).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

/// AS_PATH segment types (RFC 4271, RFC 5065).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SegmentType {
    Set = 1,
    Sequence = 2,
    ConfedSequence = 3,
    ConfedSet = 4,
}

/// One AS_PATH segment. ASNs are always held as 4-octet numbers; the codec converts
/// to and from the 2-octet form with AS_TRANS and AS4_PATH (RFC 6793).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct AsSegment {
    pub kind: SegmentType,
    pub asns: Vec<u32>,
}

/// AS_PATH (attribute 2), 4-octet form.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    /// Path length for the decision process (RFC 4271 9.1.2.2): each AS in a
    /// SEQUENCE counts 1, a SET counts 1 whatever its size, confederation segments 0.
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s.kind {
                SegmentType::Sequence => s.asns.len(),
                SegmentType::Set => 1,
                SegmentType::ConfedSequence | SegmentType::ConfedSet => 0,
            })
            .sum()
    }

    /// The neighbouring AS: the first AS of the first SEQUENCE segment, used for MED
    /// comparison (RFC 4271 9.1.2.2 c).
    pub fn first_asn(&self) -> Option<u32> {
        match self.segments.first() {
            Some(s) if s.kind == SegmentType::Sequence => s.asns.first().copied(),
            _ => None,
        }
    }

    /// The originating AS: the last AS of the last SEQUENCE segment.
    pub fn origin_asn(&self) -> Option<u32> {
        match self.segments.last() {
            Some(s) if s.kind == SegmentType::Sequence => s.asns.last().copied(),
            _ => None,
        }
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| s.asns.contains(&asn))
    }

    /// How many times `asn` appears, for the `allow_local_as N` loop check.
    pub fn count(&self, asn: u32) -> usize {
        self.segments
            .iter()
            .map(|s| s.asns.iter().filter(|&&a| a == asn).count())
            .sum()
    }

    /// Prepend `asn` `times` times to the leading SEQUENCE (creating one if needed).
    pub fn prepend(&mut self, asn: u32, times: usize) {
        if times == 0 {
            return;
        }
        match self.segments.first_mut() {
            Some(s) if s.kind == SegmentType::Sequence && s.asns.len() + times <= 255 => {
                s.asns.splice(0..0, std::iter::repeat_n(asn, times));
            }
            _ => self.segments.insert(
                0,
                AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![asn; times],
                },
            ),
        }
    }
}

impl std::fmt::Display for AsPath {
    /// bgpdump / BIRD style: `64500 64501 {64502,64503}`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut first = true;
        for seg in &self.segments {
            if !first {
                f.write_str(" ")?;
            }
            first = false;
            let join = |sep: &str| {
                seg.asns
                    .iter()
                    .map(|a| a.to_string())
                    .collect::<Vec<_>>()
                    .join(sep)
            };
            match seg.kind {
                SegmentType::Sequence => f.write_str(&join(" "))?,
                SegmentType::Set => write!(f, "{{{}}}", join(","))?,
                SegmentType::ConfedSequence => write!(f, "({})", join(" "))?,
                SegmentType::ConfedSet => write!(f, "[{}]", join(","))?,
            }
        }
        Ok(())
    }
}

/// AGGREGATOR (attribute 7), with the ASN in 4-octet form.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// A standard community (RFC 1997).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Community(pub u32);

impl Community {
    pub const NO_EXPORT: Community = Community(0xFFFF_FF01);
    pub const NO_ADVERTISE: Community = Community(0xFFFF_FF02);
    pub const NO_EXPORT_SUBCONFED: Community = Community(0xFFFF_FF03);
    /// RFC 9494: marks a route kept under long-lived graceful restart.
    pub const LLGR_STALE: Community = Community(0xFFFF_0006);
    /// RFC 9494: the route must not be kept under long-lived graceful restart.
    pub const NO_LLGR: Community = Community(0xFFFF_0007);

    pub const fn new(asn: u16, value: u16) -> Community {
        Community(((asn as u32) << 16) | value as u32)
    }
}

impl std::fmt::Display for Community {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.0 >> 16, self.0 & 0xFFFF)
    }
}

/// An extended community (RFC 4360): 8 opaque octets, type first.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ExtendedCommunity(pub [u8; 8]);

/// A large community (RFC 8092).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LargeCommunity {
    pub global: u32,
    pub local1: u32,
    pub local2: u32,
}

impl std::fmt::Display for LargeCommunity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}:{}", self.global, self.local1, self.local2)
    }
}

/// Path attribute flag bits (RFC 4271 4.3).
pub mod attr_flags {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Path attribute type codes.
pub mod attr_type {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const ORIGINATOR_ID: u8 = 9;
    pub const CLUSTER_LIST: u8 = 10;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const EXTENDED_COMMUNITIES: u8 = 16;
    pub const AS4_PATH: u8 = 17;
    pub const AS4_AGGREGATOR: u8 = 18;
    pub const PMSI_TUNNEL: u8 = 22;
    pub const TUNNEL_ENCAPSULATION: u8 = 23;
    pub const AIGP: u8 = 26;
    pub const LARGE_COMMUNITIES: u8 = 32;
    pub const OTC: u8 = 35;
    pub const PREFIX_SID: u8 = 40;
}

/// An attribute this crate does not interpret, kept with its flags so it can be passed on
/// (optional transitive ones with the Partial bit set) or logged.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    pub flags: u8,
    pub type_code: u8,
    pub value: Bytes,
}

/// Which recognised optional transitive attributes carry the Partial bit (RFC 4271 4.3:
/// "Once the Partial bit has been set by a BGP speaker, it MUST NOT be unset by any BGP
/// speaker that propagates the route").
///
/// The decoder records the bit of each attribute it decodes into a typed field of
/// [`PathAttributes`]; the encoder sets Partial on those it writes. One bit per type in
/// [`PartialBits::TYPES`], so the set is one octet and costs nothing per path (attribute
/// sets are interned); sets that differ only here are sent differently, so they are
/// rightly different values. Unrecognised attributes keep their own flags in
/// [`RawAttribute`].
///
/// AS4_PATH and AS4_AGGREGATOR (RFC 6793) are merged into `as_path`/`aggregator` on
/// decode: their bit is recorded only when the merge used them, and sets Partial on the
/// AS4_PATH/AS4_AGGREGATOR the encoder regenerates towards a 2-octet AS speaker. A 4-octet
/// speaker is sent no AS4_* attribute, so the bit has nowhere to go there (AS_PATH is
/// well-known and its Partial bit MUST be 0, RFC 4271 4.3).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PartialBits(u8);

impl PartialBits {
    /// The attribute types that can be marked, in bit order: every optional transitive
    /// attribute [`PathAttributes`] models.
    pub const TYPES: [u8; 7] = [
        attr_type::AGGREGATOR,
        attr_type::COMMUNITIES,
        attr_type::EXTENDED_COMMUNITIES,
        attr_type::AS4_PATH,
        attr_type::AS4_AGGREGATOR,
        attr_type::LARGE_COMMUNITIES,
        attr_type::OTC,
    ];

    fn bit(type_code: u8) -> Option<u8> {
        let i = Self::TYPES.iter().position(|&t| t == type_code)?;
        Some(1 << i)
    }

    /// Whether `type_code` is marked Partial.
    pub fn contains(self, type_code: u8) -> bool {
        Self::bit(type_code).is_some_and(|b| self.0 & b != 0)
    }

    /// Mark `type_code` Partial; `false` (and no change) if it is not one of [`Self::TYPES`].
    pub fn insert(&mut self, type_code: u8) -> bool {
        let Some(b) = Self::bit(type_code) else {
            return false;
        };
        self.0 |= b;
        true
    }

    /// The set with `type_code` marked (unchanged if it is not one of [`Self::TYPES`]).
    #[must_use]
    pub fn with(mut self, type_code: u8) -> PartialBits {
        self.insert(type_code);
        self
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

/// The path attributes of a route, without the NLRI-carrying MP_REACH/MP_UNREACH.
///
/// This is the unit the RIB interns: many prefixes share one set.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    /// NEXT_HOP (attribute 3); MP next hops live in [`MpReach`].
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    pub communities: Vec<Community>,
    pub originator_id: Option<Ipv4Addr>,
    pub cluster_list: Vec<Ipv4Addr>,
    pub extended_communities: Vec<ExtendedCommunity>,
    pub large_communities: Vec<LargeCommunity>,
    /// Only To Customer (RFC 9234).
    pub otc: Option<u32>,
    /// Attributes not modelled above, in the order received.
    pub unknown: Vec<RawAttribute>,
    /// Which of the optional transitive attributes above arrived (and so are sent on)
    /// with the Partial bit.
    pub partial: PartialBits,
}

/// An UPDATE message (RFC 4271 4.3, RFC 4760).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Update {
    /// IPv4 unicast prefixes in the Withdrawn Routes field.
    pub withdrawn: Vec<Nlri>,
    pub mp_unreach: Option<MpUnreach>,
    pub attributes: PathAttributes,
    pub mp_reach: Option<MpReach>,
    /// IPv4 unicast prefixes in the NLRI field.
    pub nlri: Vec<Nlri>,
}

/// OPEN (RFC 4271 4.2, RFC 5492, RFC 9072).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    pub version: u8,
    /// The 2-octet My Autonomous System field (AS_TRANS when the real AS is 4-octet).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
    /// Optional parameters other than capabilities (type, value), kept for completeness.
    pub other_params: Vec<(u8, Bytes)>,
}

/// The 2-octet placeholder for a 4-octet AS (RFC 6793).
pub const AS_TRANS: u16 = 23456;

/// ADD-PATH send/receive mode (RFC 7911).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum AddPathMode {
    Receive = 1,
    Send = 2,
    Both = 3,
}

impl AddPathMode {
    pub fn can_receive(self) -> bool {
        matches!(self, AddPathMode::Receive | AddPathMode::Both)
    }
    pub fn can_send(self) -> bool {
        matches!(self, AddPathMode::Send | AddPathMode::Both)
    }
}

/// One family in the graceful restart capability.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestartFamily {
    pub family: Family,
    /// Forwarding state preserved across the restart (F bit).
    pub forwarding_preserved: bool,
}

/// Graceful restart capability (RFC 4724, with the N bit of RFC 8538).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct GracefulRestart {
    /// R bit: the sender has restarted.
    pub restart_state: bool,
    /// N bit: graceful restart also covers NOTIFICATION (RFC 8538).
    pub notification: bool,
    /// Restart time in seconds (12 bits).
    pub restart_time: u16,
    pub families: Vec<GracefulRestartFamily>,
}

/// One family in the long-lived graceful restart capability (RFC 9494).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LlgrFamily {
    pub family: Family,
    pub forwarding_preserved: bool,
    /// Long-lived stale time in seconds (24 bits).
    pub stale_time: u32,
}

/// BGP role (RFC 9234).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct BgpRole(pub u8);

impl BgpRole {
    pub const PROVIDER: BgpRole = BgpRole(0);
    pub const RS: BgpRole = BgpRole(1);
    pub const RS_CLIENT: BgpRole = BgpRole(2);
    pub const CUSTOMER: BgpRole = BgpRole(3);
    pub const PEER: BgpRole = BgpRole(4);
}

/// Capability codes (IANA "Capability Codes").
pub mod capability_code {
    pub const MULTIPROTOCOL: u8 = 1;
    pub const ROUTE_REFRESH: u8 = 2;
    pub const EXTENDED_NEXT_HOP: u8 = 5;
    pub const EXTENDED_MESSAGE: u8 = 6;
    pub const ROLE: u8 = 9;
    pub const GRACEFUL_RESTART: u8 = 64;
    pub const FOUR_OCTET_AS: u8 = 65;
    pub const ADD_PATH: u8 = 69;
    pub const ENHANCED_ROUTE_REFRESH: u8 = 70;
    pub const LONG_LIVED_GRACEFUL_RESTART: u8 = 71;
    pub const FQDN: u8 = 73;
}

/// A BGP capability (RFC 5492).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Capability {
    MultiProtocol(Family),
    RouteRefresh,
    EnhancedRouteRefresh,
    FourOctetAs(u32),
    GracefulRestart(GracefulRestart),
    LongLivedGracefulRestart(Vec<LlgrFamily>),
    AddPath(Vec<(Family, AddPathMode)>),
    /// RFC 8950: (NLRI family, next-hop AFI) pairs.
    ExtendedNextHop(Vec<(Family, Afi)>),
    ExtendedMessage,
    Role(BgpRole),
    Fqdn {
        hostname: String,
        domain: String,
    },
    /// A capability not modelled above, kept verbatim.
    Unknown {
        code: u8,
        value: Bytes,
    },
}

/// NOTIFICATION (RFC 4271 4.5).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notification {
    pub code: u8,
    pub subcode: u8,
    pub data: Bytes,
}

/// NOTIFICATION error codes and subcodes (RFC 4271 6, RFC 4486, RFC 7313, RFC 9687).
pub mod notification_code {
    pub const MESSAGE_HEADER: u8 = 1;
    pub const OPEN_MESSAGE: u8 = 2;
    pub const UPDATE_MESSAGE: u8 = 3;
    pub const HOLD_TIMER_EXPIRED: u8 = 4;
    pub const FSM: u8 = 5;
    pub const CEASE: u8 = 6;
    pub const ROUTE_REFRESH_MESSAGE: u8 = 7;
    pub const SEND_HOLD_TIMER_EXPIRED: u8 = 8;

    // Message header error subcodes.
    pub const CONNECTION_NOT_SYNCHRONIZED: u8 = 1;
    pub const BAD_MESSAGE_LENGTH: u8 = 2;
    pub const BAD_MESSAGE_TYPE: u8 = 3;

    // OPEN error subcodes.
    pub const UNSUPPORTED_VERSION: u8 = 1;
    pub const BAD_PEER_AS: u8 = 2;
    pub const BAD_BGP_IDENTIFIER: u8 = 3;
    pub const UNSUPPORTED_OPTIONAL_PARAMETER: u8 = 4;
    pub const UNACCEPTABLE_HOLD_TIME: u8 = 6;
    pub const UNSUPPORTED_CAPABILITY: u8 = 7;
    pub const ROLE_MISMATCH: u8 = 11;

    // UPDATE error subcodes.
    pub const MALFORMED_ATTRIBUTE_LIST: u8 = 1;
    pub const UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: u8 = 2;
    pub const MISSING_WELL_KNOWN_ATTRIBUTE: u8 = 3;
    pub const ATTRIBUTE_FLAGS_ERROR: u8 = 4;
    pub const ATTRIBUTE_LENGTH_ERROR: u8 = 5;
    pub const INVALID_ORIGIN_ATTRIBUTE: u8 = 6;
    pub const INVALID_NEXT_HOP_ATTRIBUTE: u8 = 8;
    pub const OPTIONAL_ATTRIBUTE_ERROR: u8 = 9;
    pub const INVALID_NETWORK_FIELD: u8 = 10;
    pub const MALFORMED_AS_PATH: u8 = 11;

    // FSM error subcodes (RFC 6608).
    pub const FSM_UNEXPECTED_IN_OPENSENT: u8 = 1;
    pub const FSM_UNEXPECTED_IN_OPENCONFIRM: u8 = 2;
    pub const FSM_UNEXPECTED_IN_ESTABLISHED: u8 = 3;

    // Cease subcodes (RFC 4486, RFC 8203).
    pub const CEASE_MAX_PREFIXES: u8 = 1;
    pub const CEASE_ADMIN_SHUTDOWN: u8 = 2;
    pub const CEASE_PEER_DECONFIGURED: u8 = 3;
    pub const CEASE_ADMIN_RESET: u8 = 4;
    pub const CEASE_CONNECTION_REJECTED: u8 = 5;
    pub const CEASE_OTHER_CONFIG_CHANGE: u8 = 6;
    pub const CEASE_CONNECTION_COLLISION: u8 = 7;
    pub const CEASE_OUT_OF_RESOURCES: u8 = 8;
    pub const CEASE_HARD_RESET: u8 = 9;
    pub const CEASE_BFD_DOWN: u8 = 10;

    // ROUTE-REFRESH error subcodes (RFC 7313).
    pub const INVALID_MESSAGE_LENGTH: u8 = 1;
}

/// ROUTE-REFRESH subtypes (RFC 2918, RFC 7313).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum RefreshSubtype {
    Normal,
    /// Beginning of Route Refresh.
    BoRR,
    /// End of Route Refresh.
    EoRR,
    Reserved(u8),
}

/// ROUTE-REFRESH (RFC 2918, RFC 7313).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct RouteRefresh {
    pub family: Family,
    pub subtype: RefreshSubtype,
}

/// Any BGP message.
// An UPDATE is by far the largest variant; messages are short-lived and moved once, so
// boxing it would cost an allocation per UPDATE for nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    Open(Open),
    Update(Update),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

/// BGP message type codes.
pub mod message_type {
    pub const OPEN: u8 = 1;
    pub const UPDATE: u8 = 2;
    pub const NOTIFICATION: u8 = 3;
    pub const KEEPALIVE: u8 = 4;
    pub const ROUTE_REFRESH: u8 = 5;
}

/// Marker, length and type.
pub const HEADER_LEN: usize = 19;
/// Largest message without the extended message capability (RFC 4271).
pub const MAX_MESSAGE_LEN: usize = 4096;
/// Largest message with the extended message capability (RFC 8654).
pub const MAX_EXTENDED_MESSAGE_LEN: usize = 65535;

/// What was negotiated on a session that changes how UPDATEs are encoded and decoded.
///
/// Decoding uses the receive side; encoding the send side. The default (no 4-octet AS,
/// no ADD-PATH, 4096-byte messages) is the RFC 4271 baseline, which is also what MRT
/// TABLE_DUMP and BGP4MP (non-AS4) records assume.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CodecContext {
    /// Both sides advertised the 4-octet AS capability (RFC 6793).
    pub four_octet_as: bool,
    /// Both sides advertised the extended message capability (RFC 8654).
    pub extended_message: bool,
    /// Families for which NLRI we receive carry ADD-PATH path identifiers.
    pub add_path_receive: Vec<Family>,
    /// Families for which NLRI we send carry ADD-PATH path identifiers.
    pub add_path_send: Vec<Family>,
    /// The peer is in another AS (an external, eBGP, session). ORIGINATOR_ID and
    /// CLUSTER_LIST received from it are dropped by attribute discard (RFC 7606 7.9,
    /// 7.10): only route reflectors inside the AS set them.
    pub external: bool,
}

impl CodecContext {
    pub fn max_message_len(&self) -> usize {
        if self.extended_message {
            MAX_EXTENDED_MESSAGE_LEN
        } else {
            MAX_MESSAGE_LEN
        }
    }
    pub fn receives_path_id(&self, family: Family) -> bool {
        self.add_path_receive.contains(&family)
    }
    pub fn sends_path_id(&self, family: Family) -> bool {
        self.add_path_send.contains(&family)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_bits_cover_the_modelled_optional_transitive_types() {
        let mut p = PartialBits::default();
        assert!(p.is_empty());
        for t in PartialBits::TYPES {
            assert!(!p.contains(t));
            assert!(p.insert(t));
            assert!(p.contains(t));
        }
        // Well-known, non-transitive and unmodelled types have no bit.
        for t in [
            attr_type::ORIGIN,
            attr_type::MULTI_EXIT_DISC,
            attr_type::CLUSTER_LIST,
            99,
        ] {
            assert!(!p.insert(t));
            assert!(!p.contains(t));
        }
        let one = PartialBits::default().with(attr_type::OTC);
        assert!(one.contains(attr_type::OTC) && !one.contains(attr_type::COMMUNITIES));
        assert_ne!(
            one,
            PartialBits::default(),
            "sets differing in Partial are distinct"
        );
    }
}
