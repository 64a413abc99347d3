//! A real table through a speaker: the 2002 RIS table (~113k routes)
//! replayed by ExaBGP through the speaker to BIRD, compared route by route.

use ipnet::IpNet;

use crate::{
    wait_established, wait_for, Error, ExaBgp, Family, Kind, Neighbor, Node, Result, Segment,
    Speaker, SpeakerConfig, Test, TIMEOUT,
};

/// A real table through `middle`: ExaBGP (node a) replays the RIS 2002 table
/// ([`crate::table`]) to `middle` (node b) over eBGP, which passes it on over
/// eBGP to BIRD (node c). The three use 4-octet private ASNs (RFC 6793,
/// RFC 6996) that no 2002 path contains, so AS-path loop detection drops
/// nothing. BIRD must end up with every route, each with AS path
/// `B A <original path>`, the original ORIGIN and communities, and `middle`
/// as next hop. Returns the number of routes compared.
pub fn real_table(t: &Test, middle: Kind) -> Result<usize> {
    const AS_A: u32 = 4_200_000_001;
    const AS_B: u32 = 4_200_000_002;
    const AS_C: u32 = 4_200_000_003;
    let table = crate::table::read_bgpdump(&crate::table::ris_2002())?;
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let nc = Node::new(t, &seg, "c", 3)?;
    let fam = Family::Ipv4;
    let mut ca = SpeakerConfig::new(na.v4, AS_A);
    ca.neighbors
        .push(Neighbor::new(nb.addr(fam), na.addr(fam), AS_B));
    let mut cb = SpeakerConfig::new(nb.v4, AS_B);
    cb.neighbors
        .push(Neighbor::new(na.addr(fam), nb.addr(fam), AS_A));
    cb.neighbors
        .push(Neighbor::new(nc.addr(fam), nb.addr(fam), AS_C));
    let mut cc = SpeakerConfig::new(nc.v4, AS_C);
    cc.neighbors
        .push(Neighbor::new(nb.addr(fam), nc.addr(fam), AS_B));
    let bird = crate::Bird::start(t, &nc, "bird-c", &cc)?;
    let mid = middle.start(t, &nb, &format!("{}-b", middle.name()), &cb)?;
    let statements: Vec<String> = table
        .iter()
        .map(|r| crate::table::exabgp_statement(r, &[AS_A]))
        .collect();
    let exa = ExaBgp::start_with_static(t, &na, "exabgp-a", &ca, &statements)?;
    wait_established(&*mid, na.addr(fam), TIMEOUT)?;
    wait_established(&bird, nb.addr(fam), TIMEOUT)?;
    exa.check_running()?;
    let protocol = crate::bird::protocol_name(nb.addr(fam));
    let want = u64::try_from(table.len()).unwrap_or(u64::MAX);
    // A bound for a full table on a loaded 2-core machine, not a speed check.
    let bound = std::time::Duration::from_secs(900);
    wait_for(&format!("BIRD to hold all {want} routes"), bound, || {
        mid.check_running()?;
        let n = bird.count_routes(Some(&protocol))?;
        Ok(if n == want {
            Ok(())
        } else {
            Err(format!("{n} of {want} routes"))
        })
    })?;
    let got = bird.routes(fam)?;
    let by_prefix: std::collections::HashMap<IpNet, &crate::RouteView> = got
        .iter()
        .filter(|r| r.learned)
        .map(|r| (r.prefix, r))
        .collect();
    let mut problems = Vec::new();
    for r in &table {
        let mut want_path = vec![AS_B, AS_A];
        want_path.extend_from_slice(&r.as_path);
        match by_prefix.get(&r.prefix) {
            None => problems.push(format!("{} missing", r.prefix)),
            Some(v) => {
                if v.as_path != want_path
                    || v.origin != Some(r.origin)
                    || v.communities != r.communities
                    || v.next_hop != Some(nb.addr(fam))
                {
                    problems.push(format!(
                        "{}: got path {:?} origin {:?} communities {:?} next hop {:?}; \
                         want path {want_path:?} origin {:?} communities {:?}",
                        r.prefix,
                        v.as_path,
                        v.origin,
                        v.communities,
                        v.next_hop,
                        r.origin,
                        r.communities
                    ));
                }
            }
        }
    }
    if !problems.is_empty() {
        let n = problems.len();
        problems.truncate(10);
        return Err(Error::Check(format!(
            "{n} of {} routes differ at BIRD after {}; first ones:\n{}",
            table.len(),
            mid.label(),
            problems.join("\n")
        )));
    }
    mid.check_running()?;
    Ok(table.len())
}
