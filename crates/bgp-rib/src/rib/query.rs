//! Read-only views for `show` commands and tools: the Loc-RIB, one prefix with every path
//! and why each loser lost (the decision process re-run with reasons), longest-prefix
//! match, a peer's Adj-RIB-In and Adj-RIB-Out, and a peer summary from counters kept as
//! routes change (constant time, however large the tables). Paging through large tables
//! is in `pages`.

use std::net::{IpAddr, Ipv4Addr};

use bgp_proto::{Family, Nlri};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::config::PeerId;
use super::decide::candidate;
use super::error::RibError;
use super::local::path_source;
use super::resolve::NextHopResolver;
use super::state::Rib;
use super::view::Facts;
use crate::attrs::{AttrId, AttrStore, Attrs};
use crate::decision::{self, Candidate, Step};
use crate::policy::{PeerType, RouteSource};
use crate::table::{flag, Dest, Path, Prefix, LOCAL_PEER};

/// A path as shown by queries.
#[derive(Clone, Debug)]
pub struct PathInfo {
    /// `None` for local routes.
    pub peer: Option<PeerId>,
    pub peer_name: Option<String>,
    pub source: RouteSource,
    /// Received ADD-PATH id.
    pub path_id: u32,
    /// Attributes after import policy.
    pub attrs: Attrs,
    /// Attributes as received.
    pub received: Attrs,
    pub best: bool,
    pub multipath: bool,
    pub stale: bool,
    pub llgr_stale: bool,
    /// When the path was last changed: stored, or replaced by one with other attributes
    /// or another import verdict (an identical re-announcement keeps it, as in BIRD). In
    /// whole seconds from the first [`Rib::set_time`]; `None` before that.
    pub since: Option<std::time::Instant>,
    /// Why it is not the best path (filled by [`Rib::route`] and [`Rib::lookup`]).
    pub lost_at: Option<Step>,
    /// The interface of a kernel or connected route, or the one a BGP path's next hop
    /// resolves through (when the resolver tells).
    pub interface: Option<String>,
}

/// All paths of one prefix.
#[derive(Clone, Debug)]
pub struct RouteDetail {
    pub prefix: IpNet,
    pub paths: Vec<PathInfo>,
}

/// What [`Rib::peer_info`] reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerInfo {
    pub name: String,
    pub address: IpAddr,
    pub remote_as: u32,
    pub peer_type: PeerType,
    pub rr_client: bool,
    /// BGP Identifier, while established.
    pub router_id: Option<Ipv4Addr>,
    pub families: Vec<Family>,
    pub add_path_send: Vec<Family>,
    pub add_path_receive: Vec<Family>,
    /// Families whose routes are held stale (graceful restart).
    pub stale_families: Vec<Family>,
    /// Paths in the Adj-RIB-In (accepted or not).
    pub received_v4: usize,
    pub received_v6: usize,
    /// Of those, accepted by import policy and loop detection.
    pub accepted_v4: usize,
    pub accepted_v6: usize,
    /// Announcements the peer holds (Adj-RIB-Out), not counting queued changes.
    pub advertised_v4: usize,
    pub advertised_v6: usize,
    /// Changes queued for the peer (one per NLRI at most).
    pub queued: usize,
}

impl Rib {
    /// Every prefix's best path (Loc-RIB), sorted by prefix, IPv4 first.
    pub fn loc_rib(&self) -> Vec<(IpNet, PathInfo)> {
        let mut v = Vec::new();
        self.collect_best::<Ipv4Net>(&mut v);
        self.collect_best::<Ipv6Net>(&mut v);
        v
    }

    fn collect_best<P: Prefix>(&self, v: &mut Vec<(IpNet, PathInfo)>) {
        let mut keys: Vec<(&P, &Dest)> = P::table(&self.store.tables).routes.iter().collect();
        keys.sort_unstable_by(|a, b| a.0.cmp(b.0));
        for (k, d) in keys {
            if let Some(b) = d.iter().find(|x| x.has(flag::BEST)) {
                v.push(((*k).into(), self.path_info((*k).into(), b)));
            }
        }
    }

    fn path_info(&self, prefix: IpNet, x: &Path) -> PathInfo {
        let local = x.peer() == LOCAL_PEER;
        let peer = self.peers.get(x.peer());
        let facts = Facts {
            peers: &self.peers,
            locals: &self.locals,
            nh: &self.nh,
        };
        let interface = if local {
            facts
                .local_meta(prefix, x)
                .and_then(|m| m.kernel.ifname.clone())
        } else {
            self.nh
                .of(self.store.attrs.get(x.effective()).next_hop_addr())
                .map(str::to_owned)
        };
        PathInfo {
            interface,
            peer: (!local).then_some(PeerId(x.peer())),
            peer_name: peer.map(|p| p.cfg.name.clone()),
            source: path_source(x),
            path_id: x.path_id,
            attrs: self.store.attrs.arc(x.effective()),
            received: self.store.attrs.arc(x.attrs),
            best: x.has(flag::BEST),
            multipath: x.has(flag::MULTIPATH),
            stale: x.has(flag::STALE),
            llgr_stale: x.has(flag::LLGR),
            since: self.clock.instant(x.since),
            lost_at: None,
        }
    }

    /// All paths of exactly `prefix`, best marked, each loser with the step it lost at.
    pub fn route(&self, prefix: IpNet, resolver: &dyn NextHopResolver) -> Option<RouteDetail> {
        match prefix {
            IpNet::V4(p) => self.detail(p.trunc(), resolver),
            IpNet::V6(p) => self.detail(p.trunc(), resolver),
        }
    }

    fn detail<P: Prefix>(&self, pfx: P, resolver: &dyn NextHopResolver) -> Option<RouteDetail> {
        let dest = P::table(&self.store.tables).routes.get(&pfx)?;
        let cands: Vec<Candidate<'_>> = dest
            .iter()
            .map(|x| candidate(x, &self.peers, resolver, &self.store.attrs))
            .collect();
        let mut reasons = vec![None; cands.len()];
        decision::select(&cands, &self.decision, Some(&mut reasons));
        let paths = dest
            .iter()
            .zip(reasons)
            .map(|(x, r)| {
                let mut info = self.path_info(pfx.into(), x);
                info.lost_at = if info.best { None } else { r };
                info
            })
            .collect();
        Some(RouteDetail {
            prefix: pfx.into(),
            paths,
        })
    }

    /// Longest-prefix match of an address, with all paths of the matching prefix.
    pub fn lookup(&self, addr: IpAddr, resolver: &dyn NextHopResolver) -> Option<RouteDetail> {
        match addr {
            IpAddr::V4(_) => self.lpm::<Ipv4Net>(addr, resolver),
            IpAddr::V6(_) => self.lpm::<Ipv6Net>(addr, resolver),
        }
    }

    fn lpm<P: Prefix>(&self, addr: IpAddr, resolver: &dyn NextHopResolver) -> Option<RouteDetail> {
        let t = P::table(&self.store.tables);
        (0..=P::MAX_LEN).rev().find_map(|len| {
            let p = P::truncate(addr, len)?;
            let d = t.routes.get(&p)?;
            if d.iter().any(|x| x.has(flag::BEST)) {
                self.detail(p, resolver)
            } else {
                None
            }
        })
    }

    /// A peer's Adj-RIB-In for `family`: (NLRI with received path id, attributes as
    /// received, accepted by import policy and loop checks).
    pub fn adj_rib_in(
        &self,
        id: PeerId,
        family: Family,
    ) -> Result<Vec<(Nlri, Attrs, bool)>, RibError> {
        self.peers.by_id(id)?;
        let v = self.adj_rib_in_with(id, family, |x, a| {
            Some((a.arc(x.attrs), !x.has(flag::REJECTED | flag::LOOP)))
        });
        Ok(v.into_iter().map(|(n, (a, ok))| (n, a, ok)).collect())
    }

    /// What `f` makes of each of a peer's paths of `family` (skipping `None`), sorted by
    /// NLRI with received path ids.
    pub(super) fn adj_rib_in_with<T>(
        &self,
        id: PeerId,
        family: Family,
        f: impl Fn(&Path, &AttrStore) -> Option<T>,
    ) -> Vec<(Nlri, T)> {
        let mut v = Vec::new();
        if family == Family::IPV4_UNICAST {
            self.collect_in::<Ipv4Net, T>(id, &f, &mut v);
        } else if family == Family::IPV6_UNICAST {
            self.collect_in::<Ipv6Net, T>(id, &f, &mut v);
        }
        v.sort_by_key(|a| a.0);
        v
    }

    fn collect_in<P: Prefix, T>(
        &self,
        id: PeerId,
        f: &impl Fn(&Path, &AttrStore) -> Option<T>,
        v: &mut Vec<(Nlri, T)>,
    ) {
        let Some(log) = self.store.log(id.0) else {
            return;
        };
        let routes = &P::table(&self.store.tables).routes;
        for k in P::log(log).snapshot() {
            let Some(d) = routes.get(&k) else {
                continue;
            };
            for x in d.iter().filter(|x| x.peer() == id.0) {
                if let Some(t) = f(x, &self.store.attrs) {
                    let nlri = Nlri {
                        path_id: Some(x.path_id),
                        prefix: k.into(),
                    };
                    v.push((nlri, t));
                }
            }
        }
    }

    /// A peer's Adj-RIB-Out for `family`: what it has been told (outgoing path id, attributes).
    pub fn adj_rib_out(&self, id: PeerId, family: Family) -> Result<Vec<(Nlri, Attrs)>, RibError> {
        self.peers.by_id(id)?;
        let Some(o) = self.out.get(id.0) else {
            return Ok(Vec::new());
        };
        let mk = |prefix: IpNet, pid: u32, a: AttrId| {
            (
                Nlri {
                    path_id: Some(pid),
                    prefix,
                },
                self.store.attrs.arc(a),
            )
        };
        Ok(o.adj
            .entries(family)
            .into_iter()
            .map(|(n, i, a)| mk(n, i, a))
            .collect())
    }

    /// A summary of a peer for display (`bgpctl show protocols`), from counters kept as
    /// routes come and go: constant time however large its tables.
    pub fn peer_info(&self, id: PeerId) -> Result<PeerInfo, RibError> {
        let p = self.peers.by_id(id)?;
        let s = p.session.as_ref();
        let log = self.store.log(id.0);
        let count = |v4: bool| {
            log.map_or((0, 0), |l| {
                if v4 {
                    (l.v4.live, l.v4.rejected)
                } else {
                    (l.v6.live, l.v6.rejected)
                }
            })
        };
        let ((live4, rej4), (live6, rej6)) = (count(true), count(false));
        let out = self.out.get(id.0);
        Ok(PeerInfo {
            name: p.cfg.name.clone(),
            address: p.cfg.address,
            remote_as: p.cfg.remote_as,
            peer_type: p.peer_type(),
            rr_client: p.cfg.rr_client,
            router_id: s.map(|s| s.router_id),
            families: s.map(|s| s.families.clone()).unwrap_or_default(),
            add_path_send: s.map(|s| s.codec.add_path_send.clone()).unwrap_or_default(),
            add_path_receive: s
                .map(|s| s.codec.add_path_receive.clone())
                .unwrap_or_default(),
            stale_families: self.restart.stale_families(id.0),
            received_v4: live4,
            received_v6: live6,
            accepted_v4: live4.saturating_sub(rej4),
            accepted_v6: live6.saturating_sub(rej6),
            advertised_v4: out.map_or(0, |o| o.adj.v4.sent_len()),
            advertised_v6: out.map_or(0, |o| o.adj.v6.sent_len()),
            queued: out.map_or(0, |o| o.adj.queued_len()),
        })
    }
}
