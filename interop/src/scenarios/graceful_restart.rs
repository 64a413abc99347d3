//! Graceful restart (RFC 4724): the restarting speaker is killed (no
//! NOTIFICATION); its helper must keep its routes while the session is down
//! (section 4.2), then take the restarted speaker's routes.

use super::{announcements, of_family};
use crate::{
    wait_established, wait_for, wait_route, Error, Family, Kind, Neighbor, Node, Result, Segment,
    SpeakerConfig, Test, TIMEOUT,
};

/// Graceful restart (RFC 4724): `helper` (node a, AS 65001) and `restarting`
/// (node b, AS 65002), both with graceful restart on, one IPv4 session;
/// `restarting` originates side 1's routes. `restarting` is killed with
/// SIGKILL (so no NOTIFICATION is sent). Once `helper` shows the session not
/// Established, it must still have every route (stale where its CLI shows
/// it, section 4.2). After `restarting` starts again with the same
/// configuration, the session re-establishes and the routes are current
/// (not stale) again.
pub fn graceful_restart(t: &Test, helper: Kind, restarting: Kind) -> Result<()> {
    let seg = Segment::new(t)?;
    let na = Node::new(t, &seg, "a", 1)?;
    let nb = Node::new(t, &seg, "b", 2)?;
    let fam = Family::Ipv4;
    let sent = of_family(&announcements(1, false), fam);
    let mut ca = SpeakerConfig::new(na.v4, 65001);
    ca.graceful_restart = true;
    ca.neighbors
        .push(Neighbor::new(nb.addr(fam), na.addr(fam), 65002));
    let mut cb = SpeakerConfig::new(nb.v4, 65002);
    cb.graceful_restart = true;
    cb.neighbors
        .push(Neighbor::new(na.addr(fam), nb.addr(fam), 65001));
    cb.announce = sent.clone();
    let sa = helper.start(t, &na, &format!("{}-a", helper.name()), &ca)?;
    let mut sb = restarting.start(t, &nb, &format!("{}-b", restarting.name()), &cb)?;
    wait_established(&*sa, nb.addr(fam), TIMEOUT)?;
    wait_established(&*sb, na.addr(fam), TIMEOUT)?;
    for a in &sent {
        wait_route(&*sa, a.prefix, TIMEOUT)?;
    }

    sb.process_mut().signal(libc::SIGKILL)?;
    wait_for(
        &format!("{} to see the session down", sa.label()),
        TIMEOUT,
        || {
            let peers = sa.peers()?;
            Ok(
                if peers
                    .iter()
                    .any(|p| p.address == nb.addr(fam) && p.established)
                {
                    Err(format!("{peers:?}"))
                } else {
                    Ok(())
                },
            )
        },
    )?;
    let routes = sa.routes(fam)?;
    for a in &sent {
        match routes.iter().find(|r| r.prefix == a.prefix && r.learned) {
            None => {
                return Err(Error::Check(format!(
                    "{} dropped {} when {} died, despite graceful restart: {routes:?}",
                    sa.label(),
                    a.prefix,
                    sb.label()
                )))
            }
            Some(r) if sa.reports_stale() && !r.stale => {
                return Err(Error::Check(format!(
                    "{} kept {} but did not mark it stale: {r:?}",
                    sa.label(),
                    a.prefix
                )))
            }
            Some(_) => {}
        }
    }

    sb.process_mut().restart(t)?;
    wait_established(&*sa, nb.addr(fam), TIMEOUT)?;
    for a in &sent {
        wait_for(
            &format!("{} to refresh {}", sa.label(), a.prefix),
            TIMEOUT,
            || {
                let routes = sa.routes(fam)?;
                Ok(
                    match routes.iter().find(|r| r.prefix == a.prefix && r.learned) {
                        Some(r) if !r.stale => Ok(()),
                        other => Err(format!("{other:?}")),
                    },
                )
            },
        )?;
    }
    sa.check_running()
}
