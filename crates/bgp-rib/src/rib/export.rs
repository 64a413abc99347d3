//! Export: what each peer should hold for a prefix, and the difference queued on its
//! Adj-RIB-Out.
//!
//! For every path the peer is to be sent (the best; or under ADD-PATH, RFC 7911, the
//! multipath set or every eligible path) the rules run in order: never back to its
//! source; LLGR-stale paths only to LLGR-capable peers (RFC 9494 4.5); NO_ADVERTISE,
//! NO_EXPORT and NO_EXPORT_SUBCONFED (RFC 1997; no confederations, so the last acts as
//! NO_EXPORT); iBGP split horizon and reflection (RFC 4456 6: from a client to everyone,
//! from a non-client only to clients, never back to the originator); the peer's export
//! policy; then the outgoing attributes (`transform`: RFC 4271 5.1, RFC 4456 8,
//! RFC 8950 for IPv4 routes with IPv6 next hops).
//!
//! The functions read the RIB through an [`ExportCtx`] (configuration, peers, local
//! routes, next-hop interfaces, and the attribute store to intern results) and write one
//! peer's outbound state at a time.
//!
//! # Reuse
//! Most prefixes share their attribute sets (one UPDATE carries many), so a result is
//! remembered by (input set, source peer, IPv4 or not) while no set is freed: per peer
//! across prefixes ([`ExportCache`]) when its policy changes nothing or does not read
//! prefixes, and within one prefix across peers of one [`ExportClass`] (same kind, local
//! AS, cluster id, next-hop mode, session addresses, accept-all policy), which get the
//! same attributes: a reflector builds and interns the reflected set once per prefix, not
//! once per client.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use bgp_proto::{attr_flags, Community, MpNextHop};
use ipnet::IpNet;
use smallvec::SmallVec;

use super::config::{AddPathSend, NextHopMode, RibConfig, SessionInfo};
use super::outbound::{ExportCache, Outbound};
use super::peers::{PeerState, PeerTable};
use super::state::Rib;
use super::view::Facts;
use crate::adj_out::Desired;
use crate::attrs::{prepend_front, AttrId, AttrStore, RouteAttrs, DEFAULT_LOCAL_PREF};
use crate::policy::{Accepted, NextHopAction, PeerView};
use crate::table::{flag, Dest, Path, PeerIdx, Prefix, LOCAL_PEER};

/// What the export of a prefix reads of the RIB, and the store to intern results in.
pub(crate) struct ExportCtx<'a> {
    pub cfg: &'a RibConfig,
    pub facts: Facts<'a>,
    pub attrs: &'a mut AttrStore,
}

/// The peer a prefix is exported to.
#[derive(Copy, Clone)]
struct Target<'a> {
    idx: PeerIdx,
    peer: &'a PeerState,
    session: &'a SessionInfo,
}

/// What the export transformation (`transform`) reads of a target peer whose export
/// policy accepts everything unchanged: peers equal in these get the same attributes
/// for the same input. (The per-target rules — split horizon, reflection, originator,
/// communities, LLGR — run before the shared result is used.)
#[derive(Clone, Debug, PartialEq, Eq)]
struct ExportClass {
    ebgp: bool,
    local_as: Option<u32>,
    cluster_id: Option<Ipv4Addr>,
    next_hop: NextHopMode,
    local_v4: Option<Ipv4Addr>,
    local_v6: Option<Ipv6Addr>,
    local_v6_link_local: Option<Ipv6Addr>,
    extended_next_hop_v4: bool,
}

impl ExportClass {
    fn of(target: Target<'_>) -> ExportClass {
        let (p, s) = (target.peer, target.session);
        ExportClass {
            ebgp: p.ebgp,
            local_as: p.cfg.local_as,
            cluster_id: p.cfg.cluster_id,
            next_hop: p.cfg.next_hop,
            local_v4: s.local_v4,
            local_v6: s.local_v6,
            local_v6_link_local: s.local_v6_link_local,
            extended_next_hop_v4: s.extended_next_hop_v4,
        }
    }
}

/// The last export result of one prefix's export run, shared across peers of one
/// [`ExportClass`].
#[derive(Clone, Debug)]
pub(crate) struct SharedExport {
    class: ExportClass,
    input: AttrId,
    ipv4: bool,
    source: PeerIdx,
    output: Option<AttrId>,
    generation: u64,
}

/// The outgoing ADD-PATH id of path `path_id` from `peer`: unique per (peer, id).
fn out_path_id(peer: PeerIdx, path_id: u32) -> u32 {
    if path_id < 256 {
        (path_id << 24) | peer
    } else {
        // Mix; distinct (peer, id) pairs collide with negligible probability.
        let x = (u64::from(path_id) << 24 | u64::from(peer)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (x >> 32) as u32 | 0x8000_0000
    }
}

fn next_hop_is(nh: &MpNextHop, addr: IpAddr) -> bool {
    match (nh, addr) {
        (MpNextHop::V4(a), IpAddr::V4(b)) => *a == b,
        (MpNextHop::V6 { global, .. }, IpAddr::V6(b)) => *global == b,
        _ => false,
    }
}

impl<'a> ExportCtx<'a> {
    /// Export `pfx` (its paths `dest` freshly decided) to the peers `targets`, queueing
    /// the differences on their Adj-RIB-Outs. Returns how many peers were looked at.
    pub fn prefix<P: Prefix>(
        &mut self,
        out: &mut Outbound,
        pfx: P,
        dest: &Dest,
        targets: impl Iterator<Item = PeerIdx>,
    ) -> u64 {
        let mut exports = 0;
        // Peers alike for the export transformation share its result (a reflector tells
        // its clients the same thing).
        let mut shared = None;
        for ti in targets {
            let Some(target) = self.target::<P>(ti) else {
                continue;
            };
            let Some(po) = out.get_mut(ti) else {
                continue;
            };
            let (mut desired, fresh) = self.desired(pfx, dest, target, po.cache, &mut shared);
            if fresh.is_some() {
                po.cache = fresh;
            }
            exports += 1;
            if let Some(fam) = po.adj.family_mut::<P>() {
                fam.diff(pfx, &mut desired, self.attrs);
            }
        }
        exports
    }

    /// Export every prefix of the table to peer `idx` (a session came up, its policy
    /// changed, selection deferral ended), in prefix order.
    pub fn table<P: Prefix>(
        &mut self,
        out: &mut Outbound,
        routes: &crate::table::Routes<P>,
        idx: PeerIdx,
    ) {
        let Some(target) = self.target::<P>(idx) else {
            return;
        };
        let Some(po) = out.get_mut(idx) else {
            return;
        };
        po.resync |= P::BIT;
        let mut keys: Vec<&P> = routes.keys().collect();
        keys.sort_unstable();
        for pfx in keys {
            let Some(dest) = routes.get(pfx) else {
                continue;
            };
            let (mut desired, fresh) = self.desired(*pfx, dest, target, po.cache, &mut None);
            if fresh.is_some() {
                po.cache = fresh;
            }
            if let Some(fam) = po.adj.family_mut::<P>() {
                fam.diff(*pfx, &mut desired, self.attrs);
            }
        }
    }

    /// Peer `ti` when its session is established for `P`'s family.
    fn target<P: Prefix>(&self, ti: PeerIdx) -> Option<Target<'a>> {
        let peers: &'a PeerTable = self.facts.peers;
        let peer = peers.get(ti)?;
        let session = peer.up_for(P::FAMILY)?;
        Some(Target {
            idx: ti,
            peer,
            session,
        })
    }

    /// What `target` should currently hold for `pfx` (outgoing path id, attributes), and
    /// the export cache entry to keep for it (`stored`: the one kept so far).
    fn desired<P: Prefix>(
        &mut self,
        pfx: P,
        dest: &Dest,
        target: Target<'_>,
        stored: Option<ExportCache>,
        shared: &mut Option<SharedExport>,
    ) -> (Desired, Option<ExportCache>) {
        let mut out = Desired::new();
        let mut fresh = None;
        let add_path = target.session.codec.sends_path_id(P::FAMILY);
        let mode = if add_path {
            target.peer.cfg.add_path_send
        } else {
            AddPathSend::Best
        };
        for x in dest.iter() {
            let send = match mode {
                AddPathSend::Best => x.has(flag::BEST),
                AddPathSend::Multipath => x.has(flag::MULTIPATH),
                AddPathSend::All => x.has(flag::ELIGIBLE),
            };
            if !send {
                continue;
            }
            let reuse = Reuse {
                stored,
                fresh: &mut fresh,
                shared: &mut *shared,
            };
            if let Some(a) = self.path(pfx.into(), x, target, reuse) {
                let id = if add_path {
                    out_path_id(x.peer(), x.path_id)
                } else {
                    0
                };
                out.push((id, a));
            }
            if !add_path {
                break;
            }
        }
        (out, fresh)
    }

    /// RFC 4271 9.1.3 + 5.1, RFC 4456 6–8, RFC 1997: may `x` go to `target`, and with which
    /// attributes.
    fn path(
        &mut self,
        prefix: IpNet,
        x: &Path,
        target: Target<'_>,
        reuse: Reuse<'_>,
    ) -> Option<AttrId> {
        let si = x.peer();
        if si == target.idx {
            return None;
        }
        let eff_id = x.effective();
        let generation = self.attrs.generation();
        let key = CacheKey {
            input: eff_id,
            ipv4: matches!(prefix, IpNet::V4(_)),
            source: si,
            generation,
        };
        let eff = self.attrs.get(eff_id);
        let is_local = si == LOCAL_PEER;
        let src = self.facts.peers.get(si);
        if !is_local && src.is_none() {
            return None;
        }
        // RFC 9494 4.5: long-lived stale routes only go to peers that understand LLGR.
        if x.has(flag::LLGR) && target.session.llgr.is_empty() {
            return None;
        }
        let comms = &eff.attrs.communities;
        // RFC 1997.
        if comms.contains(&Community::NO_ADVERTISE) {
            return None;
        }
        if target.peer.ebgp
            && (comms.contains(&Community::NO_EXPORT)
                || comms.contains(&Community::NO_EXPORT_SUBCONFED))
        {
            return None;
        }
        let reflecting = src.is_some_and(|s| !s.ebgp) && !target.peer.ebgp;
        if reflecting {
            // RFC 4456 6: from a client to everyone; from a non-client only to clients;
            // never back to the originator.
            let s = src?;
            if !s.cfg.rr_client && !target.peer.cfg.rr_client {
                return None;
            }
            if eff.attrs.originator_id == Some(target.peer.router_id) {
                return None;
            }
        }
        let export = &target.peer.cfg.export;
        let class = (!is_local && export.is_accept_all()).then(|| ExportClass::of(target));
        // A policy that does not look at prefixes gives every prefix sharing the input set
        // the same outcome (accepted as is, changed, or rejected): evaluated once, not once
        // per prefix with work in proportion to the attributes.
        let prefix_free = !is_local && !export.reads_prefix();
        if prefix_free && class.is_none() {
            if let Some(o) = reuse.cached(&key) {
                return o;
            }
        }
        if let Some(class) = &class {
            if let Some(o) = reuse.cached(&key) {
                return o;
            }
            if let Some(sh) = reuse.shared.as_ref() {
                if sh.class == *class
                    && sh.input == key.input
                    && sh.ipv4 == key.ipv4
                    && sh.source == key.source
                    && sh.generation == key.generation
                {
                    return sh.output;
                }
            }
        }
        let view = self.facts.view(
            prefix,
            x,
            &eff.attrs,
            eff.next_hop_addr(),
            Some(PeerView {
                name: &target.peer.cfg.name,
                peer_type: target.peer.peer_type(),
            }),
        );
        let Some(acc) = export.evaluate(&view) else {
            if prefix_free {
                *reuse.fresh = Some(key.entry(None));
            }
            return None;
        };
        // Without policy changes (or with a policy blind to prefixes) the output depends only
        // on (input set, source peer, target): consecutive prefixes sharing a set reuse the
        // last result.
        let cacheable = !is_local && (acc.is_unmodified() || prefix_free);
        if cacheable {
            if let Some(o) = reuse.cached(&key) {
                return o;
            }
        }
        let out = transform(
            self.cfg,
            eff,
            acc,
            src.filter(|_| !is_local),
            target,
            prefix,
        );
        // The borrow of `eff` ends here; interning may grow the arena.
        let result = out.map(|r| self.attrs.intern(r));
        if cacheable {
            let key = CacheKey {
                generation: self.attrs.generation(),
                ..key
            };
            *reuse.fresh = Some(key.entry(result));
            if let Some(class) = class {
                *reuse.shared = Some(SharedExport {
                    class,
                    input: key.input,
                    ipv4: key.ipv4,
                    source: key.source,
                    output: result,
                    generation: key.generation,
                });
            }
        }
        result
    }
}

/// What an export result is remembered by.
#[derive(Copy, Clone)]
struct CacheKey {
    input: AttrId,
    ipv4: bool,
    source: PeerIdx,
    generation: u64,
}

impl CacheKey {
    fn entry(self, output: Option<AttrId>) -> ExportCache {
        ExportCache {
            input: self.input,
            ipv4: self.ipv4,
            source: self.source,
            output,
            generation: self.generation,
        }
    }

    fn hit(&self, c: &Option<ExportCache>) -> Option<Option<AttrId>> {
        match c {
            Some(c)
                if c.input == self.input
                    && c.ipv4 == self.ipv4
                    && c.source == self.source
                    && c.generation == self.generation =>
            {
                Some(c.output)
            }
            _ => None,
        }
    }
}

/// The export results at hand while exporting one path to one peer.
struct Reuse<'a> {
    /// The peer's cache from earlier prefixes.
    stored: Option<ExportCache>,
    /// The entry this prefix's export leaves for the peer.
    fresh: &'a mut Option<ExportCache>,
    /// This prefix's result for the peers of one class.
    shared: &'a mut Option<SharedExport>,
}

impl Reuse<'_> {
    fn cached(&self, key: &CacheKey) -> Option<Option<AttrId>> {
        key.hit(self.fresh).or_else(|| key.hit(&self.stored))
    }
}

/// Outgoing attributes: RFC 4271 5.1 (AS_PATH, NEXT_HOP, MED, LOCAL_PREF), RFC 4456 8
/// (ORIGINATOR_ID, CLUSTER_LIST), RFC 4271 5 / 9.1.3 (unrecognised attributes). `src`
/// is the peer the route came from (`None` for local routes).
fn transform(
    cfg: &RibConfig,
    eff: &RouteAttrs,
    acc: Accepted<'_>,
    src: Option<&PeerState>,
    target: Target<'_>,
    prefix: IpNet,
) -> Option<RouteAttrs> {
    let is_local = src.is_none();
    let (peer, session) = (target.peer, target.session);
    let med_set = acc.med_set;
    let nh_action = acc.next_hop.clone();
    let own_prepend = acc.prepend.map_or(0, |p| usize::from(p.count));
    let front = acc.prepend_path;
    let mut a = acc.attrs.into_owned();
    a.next_hop = None;
    // Unrecognised optional attributes: transitive ones pass with Partial set, others stop.
    if !a.unknown.is_empty() {
        a.unknown.retain(|u| u.flags & attr_flags::TRANSITIVE != 0);
        for u in &mut a.unknown {
            if u.flags & attr_flags::OPTIONAL != 0 {
                u.flags |= attr_flags::PARTIAL;
            }
        }
    }
    let own_v6 = || {
        session.local_v6.map(|g| MpNextHop::V6 {
            global: g,
            link_local: session.local_v6_link_local,
        })
    };
    let self_nh = || -> Option<MpNextHop> {
        match prefix {
            // RFC 8950 3: with the capability, an IPv4 route may name our IPv6 address
            // (a session over IPv6 has no IPv4 address of ours to give).
            IpNet::V4(_) => session
                .local_v4
                .map(MpNextHop::V4)
                .or_else(|| own_v6().filter(|_| session.extended_next_hop_v4)),
            IpNet::V6(_) => own_v6(),
        }
    };
    let addr_nh = |ip: IpAddr| match ip {
        IpAddr::V4(v) => MpNextHop::V4(v),
        IpAddr::V6(v) => MpNextHop::V6 {
            global: v,
            link_local: None,
        },
    };
    // A link-local next hop is only meaningful on the link it was learned on (RFC 2545 3).
    let keep = match &eff.next_hop {
        Some(MpNextHop::V6 { global, .. }) => Some(MpNextHop::V6 {
            global: *global,
            link_local: None,
        }),
        other => other.clone(),
    };
    let next_hop = if peer.ebgp {
        a.local_pref = None;
        if !med_set && !is_local {
            // RFC 4271 5.1.4: a MED received from a neighbouring AS is not passed on.
            a.med = None;
        }
        a.originator_id = None;
        a.cluster_list.clear();
        a.as_path
            .get_or_insert_with(Default::default)
            .prepend(peer.cfg.local_as.unwrap_or(cfg.local_as), 1 + own_prepend);
        match nh_action {
            Some(NextHopAction::Address(ip)) => Some(addr_nh(ip)),
            Some(NextHopAction::Keep) => keep.or_else(self_nh),
            Some(NextHopAction::SelfAddress) => self_nh(),
            None if peer.cfg.next_hop == NextHopMode::Keep => keep.or_else(self_nh),
            None => self_nh(),
        }
    } else {
        if a.local_pref.is_none() {
            a.local_pref = Some(DEFAULT_LOCAL_PREF);
        }
        if let Some(s) = src.filter(|s| !s.ebgp) {
            // RFC 4456 8: reflecting an iBGP route.
            if a.originator_id.is_none() {
                a.originator_id = Some(s.router_id);
            }
            a.cluster_list.insert(
                0,
                peer.cfg
                    .cluster_id
                    .unwrap_or_else(|| cfg.effective_cluster_id()),
            );
        }
        match nh_action {
            Some(NextHopAction::Address(ip)) => Some(addr_nh(ip)),
            Some(NextHopAction::SelfAddress) => self_nh(),
            Some(NextHopAction::Keep) => keep.or_else(self_nh),
            None if peer.cfg.next_hop == NextHopMode::SelfAlways => self_nh().or(keep),
            // RFC 4271 5.1.3: a locally originated route goes to internal peers with the
            // address it is reachable through: its gateway (a kernel route via a router,
            // as BIRD sends it), else ours. A link-local gateway means nothing elsewhere.
            None if is_local => keep
                .filter(|k| !matches!(k, MpNextHop::V6 { global, .. } if (global.segments()[0] & 0xffc0) == 0xfe80))
                .or_else(self_nh),
            None => keep.or_else(self_nh),
        }
    };
    prepend_front(&mut a, &front);
    let mut next_hop = next_hop?;
    // A route pointing at the peer itself is of no use to it (BIRD drops it as an invalid
    // NEXT_HOP; it would make the peer route to itself). When the peer's address is also
    // ours (two speakers on one loopback address) the next hop points at us: it stays.
    let peer_address_is_ours = match peer.cfg.address {
        IpAddr::V4(v) => session.local_v4 == Some(v),
        IpAddr::V6(v) => session.local_v6 == Some(v),
    };
    if next_hop_is(&next_hop, peer.cfg.address) && !peer_address_is_ours {
        return None;
    }
    // The next hop must be of the prefix's family, except IPv6 next hops of IPv4 routes
    // towards a peer that negotiated RFC 8950 (RFC 8950 4: never to one that did not).
    // Without it such a route goes with our IPv4 address as next hop (next hop self), or
    // not at all when the session has none.
    match (prefix, &next_hop) {
        (IpNet::V4(_), MpNextHop::V4(_)) | (IpNet::V6(_), MpNextHop::V6 { .. }) => {}
        (IpNet::V4(_), MpNextHop::V6 { .. }) if session.extended_next_hop_v4 => {}
        (IpNet::V4(_), MpNextHop::V6 { .. }) => next_hop = MpNextHop::V4(session.local_v4?),
        _ => return None,
    }
    Some(RouteAttrs {
        attrs: a,
        next_hop: Some(next_hop),
    })
}

/// Peers that need a prefix's export recomputed even when its selection did not
/// change: those receiving every eligible path (ADD-PATH "all": a non-selected path
/// may have changed) and those whose full export ran since the last decision run.
pub(crate) fn export_always<P: Prefix>(
    peers: &PeerTable,
    out: &Outbound,
) -> SmallVec<[PeerIdx; 4]> {
    peers
        .iter()
        .filter_map(|(i, p)| {
            let s = p.up_for(P::FAMILY)?;
            let all = p.cfg.add_path_send == AddPathSend::All && s.codec.sends_path_id(P::FAMILY);
            let resync = out.get(i).is_some_and(|o| o.resync & P::BIT != 0);
            (all || resync).then_some(i)
        })
        .collect()
}

impl Rib {
    /// Queue the whole table of `P`'s family for peer `idx` (nothing while selection is
    /// deferred: the table goes out when the deferral ends).
    pub(super) fn full_export<P: Prefix>(&mut self, idx: PeerIdx) {
        if self.out.is_held() {
            return;
        }
        let mut ctx = ExportCtx {
            cfg: &self.cfg,
            facts: Facts {
                peers: &self.peers,
                locals: &self.locals,
                nh: &self.nh,
            },
            attrs: &mut self.store.attrs,
        };
        ctx.table(&mut self.out, &P::table(&self.store.tables).routes, idx);
    }
}
