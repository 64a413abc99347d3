//! Route exchange between two speakers: one IPv4 and one IPv6 session,
//! each side originating routes with attributes; each receiver's own CLI must
//! show the other's routes with AS path, next hop, origin, MED, communities,
//! large communities (and LOCAL_PREF over iBGP) as BGP prescribes (RFC 4271
//! section 5.1, RFC 1997, RFC 8092).

use super::{announcements, check_received, speaker_config};
use crate::{
    binaries_for, run_test, wait_established, Family, Kind, Node, Result, Segment, Test, TIMEOUT,
};

/// The template: `a` and `b` exchange IPv4 and IPv6 routes over iBGP or eBGP.
pub fn exchange(t: &Test, a: Kind, b: Kind, ibgp: bool) -> Result<()> {
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let (asn_a, asn_b) = if ibgp { (65001, 65001) } else { (65001, 65002) };
    let (ann_a, ann_b) = (announcements(0, ibgp), announcements(1, ibgp));
    let cfg_a = speaker_config(&na, &nb, asn_a, asn_b, ann_a.clone());
    let cfg_b = speaker_config(&nb, &na, asn_b, asn_a, ann_b.clone());
    let sa = a.start(t, &na, &format!("{}-a", a.name()), &cfg_a)?;
    let sb = b.start(t, &nb, &format!("{}-b", b.name()), &cfg_b)?;
    for fam in [Family::Ipv4, Family::Ipv6] {
        wait_established(&*sa, nb.addr(fam), TIMEOUT)?;
        wait_established(&*sb, na.addr(fam), TIMEOUT)?;
    }
    check_received(&*sb, &ann_a, &na, asn_a, ibgp)?;
    check_received(&*sa, &ann_b, &nb, asn_b, ibgp)?;
    Ok(())
}

/// A `#[test]` body: [`exchange`] between `a` and `b` under `name`.
pub fn pair_test(name: &str, a: Kind, b: Kind, ibgp: bool) {
    run_test(name, &binaries_for(&[a, b]), |t| exchange(t, a, b, ibgp));
}
