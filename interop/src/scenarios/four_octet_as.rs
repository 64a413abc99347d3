//! 4-octet AS numbers (RFC 6793) between bgpd and a real peer: the pair
//! exchange (IPv4 + IPv6, attributes intact) with AS numbers above 65535 on
//! both sides; each side's CLI must show the other's 4-octet AS in the
//! AS_PATH, and bgpd must have received the peer's AS in the 4-octet AS
//! capability.

use super::{announcements, check_received, speaker_config};
use crate::{wait_established, Bgpd, Error, Family, Kind, Node, Result, Segment, Test, TIMEOUT};

/// The pair exchange (IPv4 and IPv6 sessions, routes with attributes both
/// ways) between bgpd (AS 4200000001) and `kind` (AS 4200000002), eBGP:
/// each side's CLI must show the other's routes with AS path `[its 4-octet
/// AS]`, and bgpd must have received the peer's AS in the 4-octet AS
/// capability (RFC 6793 section 3).
pub fn four_octet_as(t: &Test, kind: Kind) -> Result<()> {
    const AS_B: u32 = 4_200_000_001;
    const AS_P: u32 = 4_200_000_002;
    let seg = Segment::new(t)?;
    let nb = Node::new(t, &seg, "b", 1)?;
    let np = Node::new(t, &seg, "p", 2)?;
    let (ann_b, ann_p) = (announcements(0, false), announcements(1, false));
    let bgpd = Bgpd::start(
        t,
        &nb,
        "bgpd-b",
        &speaker_config(&nb, &np, AS_B, AS_P, ann_b.clone()),
    )?;
    let peer = kind.start(
        t,
        &np,
        &format!("{}-p", kind.name()),
        &speaker_config(&np, &nb, AS_P, AS_B, ann_p.clone()),
    )?;
    let ps = &*peer;
    for fam in [Family::Ipv4, Family::Ipv6] {
        wait_established(&bgpd, np.addr(fam), TIMEOUT)?;
        wait_established(ps, nb.addr(fam), TIMEOUT)?;
        let (received, detail) = bgpd.capabilities_received(np.addr(fam))?;
        let want = format!("FourOctetAs({AS_P})");
        if !received.contains(&want) {
            return Err(Error::Check(format!(
                "bgpd did not receive {want} from {}: {detail}",
                ps.label()
            )));
        }
    }
    check_received(ps, &ann_b, &nb, AS_B, false)?;
    check_received(&bgpd, &ann_p, &np, AS_P, false)?;
    Ok(())
}
