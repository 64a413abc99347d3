//! The decision process applied to a stored prefix: its paths become
//! [`Candidate`]s (with eligibility: import policy, loops, next-hop resolution, RFC 4271
//! 9.1.2) for [`crate::decision::select`], and the result is written back as path flags
//! (best, multipath, eligible), which the FIB entry and the export read.

use std::net::Ipv4Addr;

use smallvec::SmallVec;

use super::local::path_source;
use super::peers::PeerTable;
use super::resolve::NextHopResolver;
use crate::attrs::AttrStore;
use crate::decision::{self, Candidate, DecisionConfig, Ineligible};
use crate::table::{flag, Dest, Path, LOCAL_PEER};

/// Path `x` as a candidate of the decision process.
pub(crate) fn candidate<'a>(
    x: &Path,
    peers: &PeerTable,
    resolver: &dyn NextHopResolver,
    attrs: &'a AttrStore,
) -> Candidate<'a> {
    let a = attrs.get(x.effective());
    let idx = x.peer();
    let peer = peers.get(idx);
    let eligibility = if x.has(flag::LOOP) {
        Err(Ineligible::Loop)
    } else if x.has(flag::REJECTED) {
        Err(Ineligible::RejectedByPolicy)
    } else if idx == LOCAL_PEER {
        Ok(0)
    } else {
        match a.next_hop_addr().and_then(|nh| resolver.resolve(nh)) {
            Some(c) => Ok(c),
            None => Err(Ineligible::NextHopUnresolvable),
        }
    };
    Candidate {
        attrs: a,
        source: path_source(x),
        ebgp: peer.is_some_and(|p| p.ebgp),
        peer_router_id: peer.map_or(Ipv4Addr::UNSPECIFIED, |p| p.router_id),
        peer_address: peer.map(|p| p.cfg.address),
        path_id: x.path_id,
        llgr_stale: x.has(flag::LLGR),
        eligibility,
    }
}

/// Decide `dest` and set its paths' flags.
pub(crate) fn run(
    dest: &mut Dest,
    peers: &PeerTable,
    cfg: &DecisionConfig,
    resolver: &dyn NextHopResolver,
    attrs: &AttrStore,
) {
    if dest.is_empty() {
        // Every path withdrawn: nothing to flag.
        return;
    }
    if let Dest::One(x) = dest {
        // A lone path is best if it is eligible: no elimination to run.
        let ok = candidate(x, peers, resolver, attrs).eligibility.is_ok();
        x.clear_flags(flag::BEST | flag::MULTIPATH | flag::ELIGIBLE);
        if ok {
            x.set_flags(flag::BEST | flag::MULTIPATH | flag::ELIGIBLE);
        }
        return;
    }
    let cands: SmallVec<[Candidate<'_>; 4]> = dest
        .iter()
        .map(|x| candidate(x, peers, resolver, attrs))
        .collect();
    let eligible: SmallVec<[bool; 4]> = cands.iter().map(|c| c.eligibility.is_ok()).collect();
    let sel = decision::select(&cands, cfg, None);
    drop(cands);
    for (x, ok) in dest.iter_mut().zip(eligible) {
        x.clear_flags(flag::BEST | flag::MULTIPATH | flag::ELIGIBLE);
        if ok {
            x.set_flags(flag::ELIGIBLE);
        }
    }
    for &i in &sel.multipath {
        if let Some(x) = dest.get_mut(i) {
            x.set_flags(flag::MULTIPATH);
        }
    }
    if let Some(x) = sel.best.and_then(|b| dest.get_mut(b)) {
        x.set_flags(flag::BEST);
    }
}
