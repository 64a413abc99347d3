//! The decision process: RFC 4271 section 9.1.2 with the RFC 4456 section 9 and RFC 9494
//! amendments, by elimination.
//!
//! The candidates for one prefix go through the steps below in order; each step keeps only
//! the candidates best on its criterion and records that step as the reason every other one
//! lost. Eliminating over the whole set, rather than sorting with a pairwise comparison, keeps
//! the result independent of the order the routes arrived in even though the MED rule is not
//! transitive (RFC 4271 9.1.2.2 c compares MED only within one neighbouring AS).
//!
//! | step | prefer | reference |
//! |---|---|---|
//! | eligibility | accepted by import policy, no loop, next hop resolvable | RFC 4271 9.1.2 |
//! | [`Step::LlgrStale`] | not LLGR-stale | RFC 9494 4.3 |
//! | [`Step::SourcePreference`] | connected 240 > static 200 > BGP 100 > kernel 10 (BIRD's defaults; 9.1 orders BGP routes only) | |
//! | [`Step::LocalPref`] | highest LOCAL_PREF (absent = 100) | 9.1.1 |
//! | [`Step::AsPathLength`] | shortest AS_PATH (AS_SET 1, confederation segments 0) | 9.1.2.2 a |
//! | [`Step::Origin`] | lowest ORIGIN (IGP < EGP < INCOMPLETE) | 9.1.2.2 b |
//! | [`Step::Med`] | lowest MED (absent = 0) among routes from the same neighbour AS, or among all with `always_compare_med` | 9.1.2.2 c |
//! | [`Step::ExternalOverInternal`] | learned over eBGP | 9.1.2.2 d |
//! | [`Step::IgpCost`] | lowest IGP cost to the next hop | 9.1.2.2 e |
//! | [`Step::RouterId`] | lowest ORIGINATOR_ID, else peer BGP Identifier | 9.1.2.2 f, RFC 4456 9 |
//! | [`Step::ClusterListLength`] | shortest CLUSTER_LIST | RFC 4456 9 |
//! | [`Step::PeerAddress`] | lowest peer address | 9.1.2.2 g |
//! | [`Step::PathId`] | lowest received ADD-PATH id (same peer, final tie-break) | |
//!
//! The multipath (ECMP) set is the candidates still standing after the IGP cost step, best
//! first, then in tie-break order, one per distinct next hop, at most `max_paths`.

use std::cmp::Reverse;
use std::net::{IpAddr, Ipv4Addr};

use bgp_proto::Origin;
use smallvec::SmallVec;

use crate::attrs::RouteAttrs;
use crate::policy::RouteSource;

/// Why a candidate is not eligible at all.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Ineligible {
    /// Rejected by the import policy.
    RejectedByPolicy,
    /// AS_PATH, ORIGINATOR_ID or CLUSTER_LIST loop.
    Loop,
    /// The next hop cannot be resolved.
    NextHopUnresolvable,
}

/// The step at which a candidate lost to the best path.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    NotEligible(Ineligible),
    LlgrStale,
    SourcePreference,
    LocalPref,
    AsPathLength,
    Origin,
    Med,
    ExternalOverInternal,
    IgpCost,
    RouterId,
    ClusterListLength,
    PeerAddress,
    PathId,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::NotEligible(Ineligible::RejectedByPolicy) => "rejected by import policy",
            Step::NotEligible(Ineligible::Loop) => "routing loop",
            Step::NotEligible(Ineligible::NextHopUnresolvable) => "next hop unresolvable",
            Step::LlgrStale => "LLGR stale",
            Step::SourcePreference => "source preference",
            Step::LocalPref => "lower LOCAL_PREF",
            Step::AsPathLength => "longer AS_PATH",
            Step::Origin => "worse ORIGIN",
            Step::Med => "higher MED",
            Step::ExternalOverInternal => "iBGP vs eBGP",
            Step::IgpCost => "higher IGP cost",
            Step::RouterId => "higher router id",
            Step::ClusterListLength => "longer CLUSTER_LIST",
            Step::PeerAddress => "higher peer address",
            Step::PathId => "higher path id",
        })
    }
}

/// Administrative preference of a route source (higher wins).
pub fn source_preference(s: RouteSource) -> u8 {
    match s {
        RouteSource::Connected => 240,
        RouteSource::Static => 200,
        RouteSource::Bgp => 100,
        RouteSource::Kernel => 10,
    }
}

pub use crate::attrs::DEFAULT_LOCAL_PREF;

/// One route competing for a prefix.
#[derive(Clone, Debug)]
pub struct Candidate<'a> {
    pub attrs: &'a RouteAttrs,
    pub source: RouteSource,
    /// Learned over an eBGP session.
    pub ebgp: bool,
    /// BGP Identifier of the peer it was learned from (0.0.0.0 for local routes).
    pub peer_router_id: Ipv4Addr,
    /// Address of that peer (`None` for local routes).
    pub peer_address: Option<IpAddr>,
    pub path_id: u32,
    pub llgr_stale: bool,
    /// IGP cost to the next hop, or why the route cannot be used.
    pub eligibility: Result<u32, Ineligible>,
}

/// Settings of the decision process.
#[derive(Clone, Debug)]
pub struct DecisionConfig {
    /// Our AS: the neighbour AS of routes with an empty AS_PATH.
    pub local_as: u32,
    pub always_compare_med: bool,
    /// Largest multipath set (1 = no ECMP).
    pub max_paths: usize,
}

/// Outcome for one prefix.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Selection {
    pub best: Option<usize>,
    /// Indices of the multipath set, best first (empty when there is no best).
    pub multipath: SmallVec<[usize; 4]>,
}

type Survivors = SmallVec<[usize; 8]>;

fn keep_min<K: Ord + Copy>(
    surv: &mut Survivors,
    reasons: &mut Option<&mut [Option<Step>]>,
    step: Step,
    key: impl Fn(usize) -> K,
) {
    if surv.len() < 2 {
        return;
    }
    let mut keys = surv.iter().map(|&i| key(i));
    let Some(first) = keys.next() else {
        return;
    };
    // Most steps eliminate nobody (equal LOCAL_PREF, AS_PATH length, ...): one pass finds
    // the minimum and whether anyone is above it, and only then is the list rewritten.
    let (min, all_equal) = keys.fold((first, true), |(min, eq), k| (min.min(k), eq && k == first));
    if all_equal {
        return;
    }
    surv.retain(|i| {
        let keep = key(*i) == min;
        if !keep {
            if let Some(r) = reasons.as_deref_mut().and_then(|r| r.get_mut(*i)) {
                *r = Some(step);
            }
        }
        keep
    });
}

fn neighbour_as(c: &Candidate<'_>, local_as: u32) -> Option<u32> {
    match &c.attrs.attrs.as_path {
        None => Some(local_as),
        Some(p) if p.segments.is_empty() => Some(local_as),
        Some(p) => p.first_asn(),
    }
}

fn origin_rank(c: &Candidate<'_>) -> u8 {
    c.attrs.attrs.origin.unwrap_or(Origin::Incomplete) as u8
}

/// Run the decision process. When `reasons` is given (same length as `cands`) each losing
/// candidate gets the step it lost at.
pub fn select(
    cands: &[Candidate<'_>],
    cfg: &DecisionConfig,
    mut reasons: Option<&mut [Option<Step>]>,
) -> Selection {
    let mut surv: Survivors = SmallVec::new();
    for (i, c) in cands.iter().enumerate() {
        match c.eligibility {
            Ok(_) => surv.push(i),
            Err(why) => {
                if let Some(r) = reasons.as_deref_mut().and_then(|r| r.get_mut(i)) {
                    *r = Some(Step::NotEligible(why));
                }
            }
        }
    }
    if surv.is_empty() {
        return Selection::default();
    }
    let cost = |i: usize| cands[i].eligibility.unwrap_or(u32::MAX);
    let a = |i: usize| &cands[i].attrs.attrs;
    keep_min(&mut surv, &mut reasons, Step::LlgrStale, |i| {
        cands[i].llgr_stale
    });
    keep_min(&mut surv, &mut reasons, Step::SourcePreference, |i| {
        Reverse(source_preference(cands[i].source))
    });
    keep_min(&mut surv, &mut reasons, Step::LocalPref, |i| {
        Reverse(a(i).local_pref.unwrap_or(DEFAULT_LOCAL_PREF))
    });
    keep_min(&mut surv, &mut reasons, Step::AsPathLength, |i| {
        a(i).as_path.as_ref().map_or(0, |p| p.path_len())
    });
    keep_min(&mut surv, &mut reasons, Step::Origin, |i| {
        origin_rank(&cands[i])
    });
    // 9.1.2.2 c: within each neighbour AS group only the lowest MED survives. The
    // groups' minimums come from one sort (n log n, not a scan of the group per
    // candidate: one prefix may have thousands of paths).
    if surv.len() > 1 {
        let med = |i: usize| a(i).med.unwrap_or(0);
        let group = |i: usize| {
            if cfg.always_compare_med {
                None
            } else {
                Some(neighbour_as(&cands[i], cfg.local_as))
            }
        };
        let mut lowest: SmallVec<[(Option<Option<u32>>, u32); 8]> =
            surv.iter().map(|&i| (group(i), med(i))).collect();
        lowest.sort_unstable();
        lowest.dedup_by_key(|g| g.0);
        surv.retain(|i| {
            let g = group(*i);
            let min = lowest
                .binary_search_by(|probe| probe.0.cmp(&g))
                .ok()
                .and_then(|k| lowest.get(k))
                .map_or(0, |x| x.1);
            let keep = med(*i) <= min;
            if !keep {
                if let Some(r) = reasons.as_deref_mut().and_then(|r| r.get_mut(*i)) {
                    *r = Some(Step::Med);
                }
            }
            keep
        });
    }
    keep_min(&mut surv, &mut reasons, Step::ExternalOverInternal, |i| {
        !cands[i].ebgp
    });
    keep_min(&mut surv, &mut reasons, Step::IgpCost, cost);
    let tiebreak = |i: usize| {
        let c = &cands[i];
        (
            u32::from(c.attrs.attrs.originator_id.unwrap_or(c.peer_router_id)),
            c.attrs.attrs.cluster_list.len(),
            c.peer_address,
            c.path_id,
        )
    };
    let mut multi = surv.clone();
    keep_min(&mut surv, &mut reasons, Step::RouterId, |i| tiebreak(i).0);
    keep_min(&mut surv, &mut reasons, Step::ClusterListLength, |i| {
        tiebreak(i).1
    });
    keep_min(&mut surv, &mut reasons, Step::PeerAddress, |i| {
        tiebreak(i).2
    });
    keep_min(&mut surv, &mut reasons, Step::PathId, |i| tiebreak(i).3);
    let best = surv.first().copied();
    let mut sel = Selection {
        best,
        multipath: SmallVec::new(),
    };
    if let Some(b) = best {
        sel.multipath.push(b);
        if cfg.max_paths > 1 && multi.len() > 1 && cands[b].source == RouteSource::Bgp {
            multi.sort_by_key(|&i| tiebreak(i));
            for i in multi {
                if sel.multipath.len() >= cfg.max_paths {
                    break;
                }
                let nh = cands[i].attrs.next_hop_addr();
                if i != b
                    && nh.is_some()
                    && !sel
                        .multipath
                        .iter()
                        .any(|&j| cands[j].attrs.next_hop_addr() == nh)
                {
                    sel.multipath.push(i);
                }
            }
        }
    }
    sel
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::{AsPath, AsSegment, MpNextHop, PathAttributes, SegmentType};

    fn cfg() -> DecisionConfig {
        DecisionConfig {
            local_as: 65000,
            always_compare_med: false,
            max_paths: 1,
        }
    }

    fn path(asns: &[u32]) -> AsPath {
        AsPath {
            segments: vec![AsSegment {
                kind: SegmentType::Sequence,
                asns: asns.to_vec(),
            }],
        }
    }

    fn ra(f: impl FnOnce(&mut PathAttributes), nh: &str) -> RouteAttrs {
        let mut attrs = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(path(&[65001])),
            ..Default::default()
        };
        f(&mut attrs);
        RouteAttrs {
            attrs,
            next_hop: Some(MpNextHop::V4(nh.parse().unwrap())),
        }
    }

    fn cand<'a>(a: &'a RouteAttrs, n: u8) -> Candidate<'a> {
        Candidate {
            attrs: a,
            source: RouteSource::Bgp,
            ebgp: true,
            peer_router_id: Ipv4Addr::new(10, 0, 0, n),
            peer_address: Some(IpAddr::V4(Ipv4Addr::new(192, 0, 2, n))),
            path_id: 0,
            llgr_stale: false,
            eligibility: Ok(0),
        }
    }

    /// Run with reasons; return (best, reason of the other one).
    fn duel(x: Candidate<'_>, y: Candidate<'_>, cfg: &DecisionConfig) -> (usize, Step) {
        let cands = [x, y];
        let mut reasons = [None, None];
        let sel = select(&cands, cfg, Some(&mut reasons));
        let b = sel.best.unwrap();
        (b, reasons[1 - b].unwrap())
    }

    #[test]
    fn local_pref_first() {
        let a = ra(|a| a.local_pref = Some(200), "1.1.1.1");
        let b = ra(|a| a.as_path = Some(path(&[])), "1.1.1.2");
        assert_eq!(duel(cand(&a, 2), cand(&b, 1), &cfg()), (0, Step::LocalPref));
    }

    #[test]
    fn as_path_length_set_counts_one_confed_zero() {
        let mut long = path(&[65001, 65002]);
        long.segments.push(AsSegment {
            kind: SegmentType::Set,
            asns: vec![1, 2, 3, 4],
        });
        let a = ra(|a| a.as_path = Some(long), "1.1.1.1"); // len 3
        let mut p = path(&[65001, 65002, 65003, 65004]);
        p.segments.insert(
            0,
            AsSegment {
                kind: SegmentType::ConfedSequence,
                asns: vec![9, 9, 9],
            },
        );
        let b = ra(|a| a.as_path = Some(p), "1.1.1.2"); // len 4
        assert_eq!(
            duel(cand(&a, 2), cand(&b, 1), &cfg()),
            (0, Step::AsPathLength)
        );
    }

    #[test]
    fn origin() {
        let a = ra(|a| a.origin = Some(Origin::Egp), "1.1.1.1");
        let b = ra(|a| a.origin = Some(Origin::Igp), "1.1.1.2");
        assert_eq!(duel(cand(&a, 1), cand(&b, 2), &cfg()), (1, Step::Origin));
    }

    #[test]
    fn med_only_same_neighbour_as_unless_always_compare() {
        let a = ra(|a| a.med = Some(10), "1.1.1.1");
        let b = ra(|a| a.med = Some(5), "1.1.1.2");
        assert_eq!(duel(cand(&a, 1), cand(&b, 2), &cfg()), (1, Step::Med));
        // Different neighbour AS: MED ignored, falls to router id.
        let c = ra(
            |a| {
                a.med = Some(5);
                a.as_path = Some(path(&[65009]));
            },
            "1.1.1.2",
        );
        assert_eq!(duel(cand(&a, 1), cand(&c, 2), &cfg()), (0, Step::RouterId));
        let always = DecisionConfig {
            always_compare_med: true,
            ..cfg()
        };
        assert_eq!(duel(cand(&a, 1), cand(&c, 2), &always), (1, Step::Med));
        // Missing MED is 0, the best.
        let d = ra(|_| {}, "1.1.1.3");
        assert_eq!(duel(cand(&a, 1), cand(&d, 3), &cfg()), (1, Step::Med));
    }

    #[test]
    fn ebgp_over_ibgp() {
        let a = ra(|_| {}, "1.1.1.1");
        let b = ra(|_| {}, "1.1.1.2");
        let mut x = cand(&a, 1);
        x.ebgp = false;
        assert_eq!(
            duel(x, cand(&b, 2), &cfg()),
            (1, Step::ExternalOverInternal)
        );
    }

    #[test]
    fn igp_cost_and_unresolvable() {
        let a = ra(|_| {}, "1.1.1.1");
        let b = ra(|_| {}, "1.1.1.2");
        let mut x = cand(&a, 1);
        x.eligibility = Ok(20);
        let mut y = cand(&b, 2);
        y.eligibility = Ok(10);
        assert_eq!(duel(x.clone(), y.clone(), &cfg()), (1, Step::IgpCost));
        y.eligibility = Err(Ineligible::NextHopUnresolvable);
        assert_eq!(
            duel(x, y.clone(), &cfg()),
            (0, Step::NotEligible(Ineligible::NextHopUnresolvable))
        );
        assert_eq!(select(&[y], &cfg(), None), Selection::default());
    }

    #[test]
    fn originator_id_replaces_router_id_then_cluster_list_then_address() {
        let a = ra(
            |a| a.originator_id = Some(Ipv4Addr::new(10, 0, 0, 9)),
            "1.1.1.1",
        );
        let b = ra(|_| {}, "1.1.1.2");
        // a's peer has the lower router id but its ORIGINATOR_ID is higher.
        assert_eq!(duel(cand(&a, 1), cand(&b, 5), &cfg()), (1, Step::RouterId));
        let c = ra(
            |a| {
                a.originator_id = Some(Ipv4Addr::new(10, 0, 0, 9));
                a.cluster_list = vec![Ipv4Addr::new(1, 1, 1, 1)];
            },
            "1.1.1.3",
        );
        assert_eq!(
            duel(cand(&a, 1), cand(&c, 2), &cfg()),
            (0, Step::ClusterListLength)
        );
        let mut x = cand(&b, 1);
        let mut y = cand(&b, 1);
        y.peer_address = Some("192.0.2.0".parse().unwrap());
        assert_eq!(duel(x.clone(), y.clone(), &cfg()), (1, Step::PeerAddress));
        y.peer_address = x.peer_address;
        x.path_id = 7;
        y.path_id = 3;
        assert_eq!(duel(x, y, &cfg()), (1, Step::PathId));
    }

    #[test]
    fn llgr_stale_and_source_preference() {
        let a = ra(|a| a.local_pref = Some(1000), "1.1.1.1");
        let b = ra(|_| {}, "1.1.1.2");
        let mut x = cand(&a, 1);
        x.llgr_stale = true;
        assert_eq!(duel(x, cand(&b, 2), &cfg()), (1, Step::LlgrStale));
        let mut s = cand(&b, 0);
        s.source = RouteSource::Static;
        assert_eq!(duel(cand(&a, 1), s, &cfg()), (1, Step::SourcePreference));
    }

    #[test]
    fn multipath_set() {
        let a = ra(|_| {}, "1.1.1.1");
        let b = ra(|_| {}, "1.1.1.2");
        let b2 = ra(|_| {}, "1.1.1.2");
        let c = ra(|a| a.local_pref = Some(50), "1.1.1.3");
        let d = ra(|_| {}, "1.1.1.4");
        let mut dd = cand(&d, 4);
        dd.eligibility = Ok(5);
        let cands = [cand(&a, 3), cand(&b, 1), cand(&b2, 2), cand(&c, 0), dd];
        let cfg = DecisionConfig {
            max_paths: 8,
            ..cfg()
        };
        let sel = select(&cands, &cfg, None);
        assert_eq!(sel.best, Some(1));
        // b2 shares b's next hop; c has lower LOCAL_PREF; d higher IGP cost.
        assert_eq!(sel.multipath.as_slice(), &[1, 0]);
        let two = DecisionConfig {
            max_paths: 1,
            ..cfg
        };
        assert_eq!(select(&cands, &two, None).multipath.as_slice(), &[1]);
    }
}
