//! Extended next hop (RFC 8950) between bgpd and a real peer: one IPv6 eBGP
//! session carrying IPv4 and IPv6 unicast with the capability on both
//! sides; each side's IPv4 routes reach the other with the sender's IPv6
//! address as next hop.
//!
//! - [`extended_next_hop`]: with BIRD 2, GoBGP or FRR;
//! - [`extended_next_hop_with_exabgp`]: with ExaBGP, whose JSON API shows
//!   what bgpd sent it, and bgpd installing the IPv4 route with its IPv6
//!   gateway in the kernel.

use serde_json::Value;

use super::{announcements, check_received, check_received_via, of_family};
use crate::bgpd::{config, is_best};
use crate::json::strings;
use crate::{
    wait_established, wait_for, wait_route, Announce, Bgpd, Error, ExaBgp, Family, Kind, Neighbor,
    Node, Result, Segment, Speaker, SpeakerConfig, Test, TIMEOUT,
};

/// bgpd's AS.
const AS_B: u32 = 65010;
/// The peer's AS.
const AS_P: u32 = 65020;
/// The family of the session's transport.
const SESSION: Family = Family::Ipv6;

/// Extended next hop (RFC 8950) between bgpd (node b, AS 65010) and `kind`
/// (node p, AS 65020): one eBGP session over IPv6 carrying IPv6 unicast and,
/// with the capability on both sides, IPv4 unicast. Each side originates
/// its pair routes (one IPv4, one IPv6 prefix with MED and communities):
/// - bgpd's `show_peer` has the peer's capability for IPv4 unicast with IPv6
///   next hops, and IPv4 unicast among the negotiated families;
/// - each side's CLI shows the other's IPv4 route with the other's IPv6
///   address as next hop (RFC 8950 section 3) and the attributes intact, and
///   its IPv6 route as usual.
pub fn extended_next_hop(t: &Test, kind: Kind) -> Result<()> {
    let sides = Sides::new(t)?;
    let bgpd = Bgpd::start(t, &sides.nb, "bgpd-b", &sides.config_b())?;
    let peer = kind.start(
        t,
        &sides.np,
        &format!("{}-p", kind.name()),
        &sides.config_p(),
    )?;
    sides.established(&bgpd, &*peer)?;
    sides.check_exchange(&bgpd, &*peer, "extended_next_hop")?;
    bgpd.check_running()
}

/// Extended next hop (RFC 8950) between bgpd (node b, AS 65010) and ExaBGP
/// (node p, AS 65020) over one IPv6 eBGP session carrying IPv4 and IPv6
/// unicast; ExaBGP announces its IPv4 route with its IPv6 session address as
/// next hop (`capability { nexthop true; }`, `nexthop { ipv4 unicast ipv6;
/// }`). Each side originates its pair routes (one IPv4, one IPv6 prefix with
/// MED and communities):
/// - bgpd's `show_peer` has ExaBGP's capability for IPv4 unicast with IPv6
///   next hops, and IPv4 unicast among the negotiated families;
/// - bgpd shows ExaBGP's IPv4 route with ExaBGP's IPv6 address as next hop
///   and the attributes intact, and selects it (usable: the next hop is on
///   the shared segment);
/// - bgpd (with a `[kernel.export]` section) installs that route in its
///   node's kernel as `PREFIX via inet6 ADDR proto bird` (RTA_VIA);
/// - ExaBGP's received UPDATEs (its JSON API) carry bgpd's IPv4 route in
///   IPv4 unicast with bgpd's IPv6 address as next hop (RFC 8950 section 3),
///   attributes intact; the IPv6 routes cross as usual.
pub fn extended_next_hop_with_exabgp(t: &Test) -> Result<()> {
    let sides = Sides::new(t)?;
    // bgpd installs what it selects in its node's kernel (protocol 12).
    let socket = t.subdir("bgpd-b")?.join("bgpd.sock");
    let text = format!(
        "{}\n[kernel.export]\nprotocol = 12\n",
        config(&sides.config_b(), &socket)
    );
    let bgpd = Bgpd::start_with_config(t, &sides.nb, "bgpd-b", &text, &socket)?;
    let exa = ExaBgp::start(t, &sides.np, "exabgp-p", &sides.config_p())?;
    sides.established(&bgpd, &exa)?;
    sides.check_exchange(&bgpd, &exa, "extended_next_hop_with_exabgp")?;
    let ipv4 = of_family(&sides.ann_p, Family::Ipv4);
    for a in &ipv4 {
        let entries = bgpd.route_entries("loc", a.prefix)?;
        if !entries.iter().any(is_best) {
            return Err(Error::Check(format!(
                "bgpd holds {} from exabgp-p but not as a usable path: {entries:?}",
                a.prefix
            )));
        }
    }
    // The kernel route: IPv4 prefix, IPv6 gateway (RTA_VIA, `via inet6`).
    let gw = sides.np.addr(SESSION).to_string();
    for a in &ipv4 {
        let dst = a.prefix.to_string();
        wait_for(
            &format!("{dst} via inet6 {gw} in b's kernel"),
            TIMEOUT,
            || {
                let text = sides.nb.ns.ip(&["-j", "-4", "route", "show", &dst])?;
                let routes: Value = serde_json::from_str(&text)
                    .map_err(|e| Error::parse("ip -j route", format!("{e}: {text}")))?;
                let found = routes.as_array().is_some_and(|rs| {
                    rs.iter().any(|r| {
                        r.pointer("/via/family").and_then(Value::as_str) == Some("inet6")
                            && r.pointer("/via/host").and_then(Value::as_str) == Some(gw.as_str())
                            && matches!(
                                r.get("protocol").and_then(Value::as_str),
                                Some("bird" | "12")
                            )
                    })
                });
                Ok(if found { Ok(()) } else { Err(text) })
            },
        )?;
    }
    exa.check_running()?;
    bgpd.check_running()
}

/// Both sides of the scenario: bgpd on node b, the peer on node p, each
/// originating its pair routes.
struct Sides {
    nb: Node,
    np: Node,
    ann_b: Vec<Announce>,
    ann_p: Vec<Announce>,
    // Last: dropped after the nodes attached to it.
    _seg: Segment,
}

impl Sides {
    fn new(t: &Test) -> Result<Sides> {
        let seg = Segment::new(t)?;
        Ok(Sides {
            nb: Node::new(t, &seg, "b", 1)?,
            np: Node::new(t, &seg, "p", 2)?,
            ann_b: announcements(0, false),
            ann_p: announcements(1, false),
            _seg: seg,
        })
    }

    /// bgpd's configuration.
    fn config_b(&self) -> SpeakerConfig {
        side_config(&self.nb, &self.np, AS_B, AS_P, &self.ann_b)
    }

    /// The peer's configuration.
    fn config_p(&self) -> SpeakerConfig {
        side_config(&self.np, &self.nb, AS_P, AS_B, &self.ann_p)
    }

    /// Waits for the session on both sides, then checks that bgpd received
    /// the peer's extended next hop capability for IPv4 unicast over IPv6
    /// (RFC 8950 section 4) and negotiated IPv4 unicast on that session.
    fn established(&self, bgpd: &Bgpd, peer: &dyn Speaker) -> Result<()> {
        wait_established(bgpd, self.np.addr(SESSION), TIMEOUT)?;
        wait_established(peer, self.nb.addr(SESSION), TIMEOUT)?;
        let (received, detail) = bgpd.capabilities_received(self.np.addr(SESSION))?;
        let enhe = "(Family { afi: Afi(1), safi: Safi(1) }, Afi(2))";
        let has_capability = received
            .iter()
            .any(|c| c.starts_with("ExtendedNextHop") && c.contains(enhe));
        let families = strings(detail.get("families"));
        if !has_capability || !families.iter().any(|f| f == "ipv4-unicast") {
            return Err(Error::Check(format!(
                "bgpd shows no extended next hop for IPv4 unicast with {}: {detail}",
                peer.label()
            )));
        }
        Ok(())
    }

    /// Each side's IPv4 routes reach the other with the sender's IPv6
    /// address as next hop, the IPv6 routes as usual, attributes intact.
    fn check_exchange(&self, bgpd: &Bgpd, peer: &dyn Speaker, scenario: &str) -> Result<()> {
        let (v4, v6) = (Family::Ipv4, Family::Ipv6);
        let (nb, np) = (&self.nb, &self.np);
        check_received_via(
            bgpd,
            &of_family(&self.ann_p, v4),
            np,
            Some(SESSION),
            AS_P,
            false,
        )?;
        check_received_via(
            peer,
            &of_family(&self.ann_b, v4),
            nb,
            Some(SESSION),
            AS_B,
            false,
        )?;
        check_received(bgpd, &of_family(&self.ann_p, v6), np, AS_P, false)?;
        check_received(peer, &of_family(&self.ann_b, v6), nb, AS_B, false)?;
        for (who, ann) in [(bgpd as &dyn Speaker, &self.ann_p), (peer, &self.ann_b)] {
            for a in of_family(ann, v4) {
                let r = wait_route(who, a.prefix, TIMEOUT)?;
                crate::say(&format!(
                    "{scenario}: {} has {} via {:?}",
                    who.label(),
                    a.prefix,
                    r.next_hop
                ));
            }
        }
        Ok(())
    }
}

/// One side's configuration: one eBGP session over IPv6 to `peer` with the
/// extended next hop capability, originating `ann`.
fn side_config(me: &Node, peer: &Node, asn: u32, peer_asn: u32, ann: &[Announce]) -> SpeakerConfig {
    let mut c = SpeakerConfig::new(me.v4, asn);
    let mut n = Neighbor::new(peer.addr(SESSION), me.addr(SESSION), peer_asn);
    n.extended_next_hop = true;
    c.neighbors.push(n);
    c.announce = ann.to_vec();
    c
}
