//! Malformed input and the errors it must cause:
//! - [`raw_malformed`]: framing and OPEN errors sent over raw TCP must be
//!   answered with the RFC 4271 section 6 NOTIFICATION;
//! - [`malformed_attribute`]: ExaBGP sends an UPDATE whose COMMUNITIES
//!   attribute has a bad length; RFC 7606 section 7.8 says treat-as-withdraw:
//!   the session stays up, the route is not used, later routes are.

use std::time::Duration;

use bgp_proto::{message_type, Message};

use super::ipv4_net;
use crate::raw_peer::wire::message;
use crate::raw_peer::{RawPeer, RawSession};
use crate::{
    wait_established, wait_route, wait_until, Error, ExaBgp, Family, Kind, Neighbor, Node, Result,
    Segment, SpeakerConfig, Test, TIMEOUT,
};

/// Raw TCP to a `kind` speaker configured with a passive session to us: a
/// header with a bad marker must be answered with NOTIFICATION 1/1
/// (Connection Not Synchronized, RFC 4271 section 6.1) and an OPEN with the
/// wrong AS with 2/2 (Bad Peer AS, section 6.2). Speakers may refuse
/// connections for a while after an error (BIRD's error wait), so each
/// probe is retried until the speaker answers with a NOTIFICATION.
pub fn raw_malformed(t: &Test, kind: Kind) -> Result<()> {
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let mut cfg = SpeakerConfig::new(nb.v4, 65002);
    let mut n = Neighbor::new(na.addr(Family::Ipv4), nb.addr(Family::Ipv4), 65001);
    n.passive = true;
    cfg.neighbors.push(n);
    let speaker = kind.start(t, &nb, &format!("{}-b", kind.name()), &cfg)?;
    let to = std::net::SocketAddr::new(nb.addr(Family::Ipv4), 179);
    let mut bad_marker = message(message_type::KEEPALIVE, &[]);
    if let Some(b) = bad_marker.get_mut(3) {
        *b = 0;
    }
    let wrong_as = Message::Open(RawPeer::bare(65099, na.v4, 90).open());
    type Probe<'a> = Box<dyn Fn(&RawSession) -> Result<()> + 'a>;
    let probes: [(&str, Probe, (u8, u8)); 2] = [
        (
            "a bad marker",
            Box::new(|s| s.send_bytes(&bad_marker)),
            (1, 1),
        ),
        (
            "an OPEN with the wrong AS",
            Box::new(|s| s.send(&wrong_as)),
            (2, 2),
        ),
    ];
    for (what, probe, want) in probes {
        let got = wait_until(
            &format!("{} to answer {what}", speaker.label()),
            TIMEOUT,
            || {
                speaker.check_running()?;
                let s = RawSession::connect(Some(&na.ns), None, to)?;
                probe(&s)?;
                let n = s.notification(Duration::from_secs(30))?;
                // Closed without a NOTIFICATION (a backoff refusal): try again.
                Ok(n.map(|n| Some((n.code, n.subcode))))
            },
        )?;
        if got != Some(want) {
            return Err(Error::Check(format!(
                "{} answered {what} with NOTIFICATION {got:?}, want {want:?}",
                speaker.label()
            )));
        }
    }
    speaker.check_running()
}

/// ExaBGP (node a, AS 65001) sends `kind` (node b, AS 65002) one route whose
/// COMMUNITIES attribute is 3 bytes long (not a multiple of 4), then a valid
/// route. RFC 7606 section 7.8: treat-as-withdraw. The valid route must
/// arrive (so the malformed UPDATE was processed before it), the malformed
/// prefix must be absent, and the session must still be Established with
/// the speaker running.
pub fn malformed_attribute(t: &Test, kind: Kind) -> Result<()> {
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let fam = Family::Ipv4;
    let mut ca = SpeakerConfig::new(na.v4, 65001);
    ca.neighbors
        .push(Neighbor::new(nb.addr(fam), na.addr(fam), 65002));
    let mut cb = SpeakerConfig::new(nb.v4, 65002);
    cb.neighbors
        .push(Neighbor::new(na.addr(fam), nb.addr(fam), 65001));
    let exa = ExaBgp::start(t, &na, "exabgp-a", &ca)?;
    let speaker = kind.start(t, &nb, &format!("{}-b", kind.name()), &cb)?;
    wait_established(&exa, nb.addr(fam), TIMEOUT)?;
    wait_established(&*speaker, na.addr(fam), TIMEOUT)?;
    let bad = ipv4_net([192, 0, 2, 0], 25);
    let good = ipv4_net([192, 0, 2, 128], 25);
    exa.command(&format!(
        "announce route {bad} next-hop self attribute [ 0x08 0xc0 0x010203 ]"
    ))?;
    exa.command(&format!("announce route {good} next-hop self"))?;
    wait_route(&*speaker, good, TIMEOUT)?;
    let routes = speaker.routes(fam)?;
    if routes.iter().any(|r| r.prefix == bad && r.learned) {
        return Err(Error::Check(format!(
            "{} kept {bad} despite its malformed COMMUNITIES",
            speaker.label()
        )));
    }
    speaker.check_running()?;
    let peers = speaker.peers()?;
    if !peers
        .iter()
        .any(|p| p.address == na.addr(fam) && p.established)
    {
        return Err(Error::Check(format!(
            "{} dropped the session over a malformed optional attribute: {peers:?}",
            speaker.label()
        )));
    }
    Ok(())
}
