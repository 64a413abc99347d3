//! Route reflection (RFC 4456): one speaker reflects between two iBGP
//! clients; ORIGINATOR_ID and CLUSTER_LIST are checked too (section 8).

use std::net::Ipv4Addr;

use super::{announcements, check_received, speaker_config};
use crate::{
    wait_established, wait_route, Error, Family, Kind, Neighbor, Node, Result, Segment,
    SpeakerConfig, Test, TIMEOUT,
};

/// Route reflection template: `rr` reflects between two iBGP clients of other
/// kinds. Each client must see the other's routes with the next hop, AS path
/// and LOCAL_PREF unchanged, ORIGINATOR_ID = the originating client's router
/// id and CLUSTER_LIST = [the reflector's cluster id] (RFC 4456 section 8).
pub fn reflection(t: &Test, rr: Kind, clients: [Kind; 2]) -> Result<()> {
    let seg = Segment::new(t)?;
    let nr = Node::new(t, &seg, "rr", 1)?;
    let nc = [Node::new(t, &seg, "c1", 2)?, Node::new(t, &seg, "c2", 3)?];
    let cluster = Ipv4Addr::new(192, 0, 2, 99);
    let asn = 65001;
    let mut cfg_rr = SpeakerConfig::new(nr.v4, asn);
    cfg_rr.cluster_id = Some(cluster);
    for c in &nc {
        for fam in [Family::Ipv4, Family::Ipv6] {
            let mut n = Neighbor::new(c.addr(fam), nr.addr(fam), asn);
            n.rr_client = true;
            cfg_rr.neighbors.push(n);
        }
    }
    let speaker_rr = rr.start(t, &nr, &format!("{}-rr", rr.name()), &cfg_rr)?;
    let mut speakers = Vec::new();
    let mut sent = Vec::new();
    for (i, (kind, node)) in clients.iter().zip(&nc).enumerate() {
        let side = u8::try_from(i).unwrap_or(0);
        let ann = announcements(side, true);
        let cfg = speaker_config(node, &nr, asn, asn, ann.clone());
        speakers.push(kind.start(t, node, &format!("{}-c{}", kind.name(), i + 1), &cfg)?);
        sent.push(ann);
    }
    for (c, s) in nc.iter().zip(&speakers) {
        for fam in [Family::Ipv4, Family::Ipv6] {
            wait_established(&*speaker_rr, c.addr(fam), TIMEOUT)?;
            wait_established(&**s, nr.addr(fam), TIMEOUT)?;
        }
    }
    for (from, to) in [(0usize, 1usize), (1, 0)] {
        check_received(&*speakers[to], &sent[from], &nc[from], asn, true)?;
        for a in &sent[from] {
            let r = wait_route(&*speakers[to], a.prefix, TIMEOUT)?;
            if r.originator_id != Some(nc[from].v4) || r.cluster_list != [cluster] {
                return Err(Error::Check(format!(
                    "{} got {} with ORIGINATOR_ID {:?} (want {}) and CLUSTER_LIST {:?} (want [{cluster}])",
                    speakers[to].label(),
                    a.prefix,
                    r.originator_id,
                    nc[from].v4,
                    r.cluster_list
                )));
            }
        }
    }
    Ok(())
}
