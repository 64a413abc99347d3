//! TCP MD5 signatures (RFC 2385) between speakers: the right key
//! establishes, a wrong one is refused by the kernel.

use crate::{
    wait_established, wait_for, Error, Family, Kind, Neighbor, Node, Result, Segment,
    SpeakerConfig, Test, TIMEOUT,
};

/// TCP MD5 (RFC 2385): `a` and `right` share a key and establish; `wrong`
/// uses another key towards `a`: a kernel counts an MD5 failure (TcpExt
/// TCPMD5Failure) and neither side shows that session Established.
pub fn md5(t: &Test, a: Kind, right: Kind, wrong: Kind) -> Result<()> {
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let nc = Node::new(t, &seg, "c", 3)?;
    let fam = Family::Ipv4;
    let key = Some("s3cret-key".to_string());
    let mut ca = SpeakerConfig::new(na.v4, 65001);
    for peer in [&nb, &nc] {
        let mut n = Neighbor::new(peer.addr(fam), na.addr(fam), 65002);
        n.password = key.clone();
        ca.neighbors.push(n);
    }
    let mut cb = SpeakerConfig::new(nb.v4, 65002);
    let mut n = Neighbor::new(na.addr(fam), nb.addr(fam), 65001);
    n.password = key.clone();
    cb.neighbors.push(n);
    let mut cc = SpeakerConfig::new(nc.v4, 65002);
    let mut n = Neighbor::new(na.addr(fam), nc.addr(fam), 65001);
    n.password = Some("wrong-key".to_string());
    cc.neighbors.push(n);

    let sa = a.start(t, &na, &format!("{}-a", a.name()), &ca)?;
    let sb = right.start(t, &nb, &format!("{}-b", right.name()), &cb)?;
    let sc = wrong.start(t, &nc, &format!("{}-c", wrong.name()), &cc)?;
    wait_established(&*sa, nb.addr(fam), TIMEOUT)?;
    wait_established(&*sb, na.addr(fam), TIMEOUT)?;
    let failures = |node: &Node| -> Result<u64> {
        Ok(node
            .ns
            .netstat_counter("TcpExt", "TCPMD5Failure")?
            .unwrap_or(0))
    };
    wait_for("a TCP MD5 failure counted between a and c", TIMEOUT, || {
        let n = failures(&na)? + failures(&nc)?;
        Ok(if n > 0 {
            Ok(())
        } else {
            Err("no MD5 failure yet".into())
        })
    })?;
    for (speaker, peer) in [(&sa, nc.addr(fam)), (&sc, na.addr(fam))] {
        let state = speaker.peers()?;
        if state.iter().any(|p| p.address == peer && p.established) {
            return Err(Error::Check(format!(
                "{} established with {peer} despite the wrong key: {state:?}",
                speaker.label()
            )));
        }
    }
    Ok(())
}
