//! Import: routes entering the RIB. A peer's UPDATE (RFC 4271 4.3, RFC 4760) goes into
//! its Adj-RIB-In after the loop checks (RFC 4271 9.1.2 AS_PATH, RFC 4456 8
//! ORIGINATOR_ID and CLUSTER_LIST) and the peer's import policy; local routes are
//! originated and withdrawn; a changed import policy re-runs over the stored Adj-RIB-In
//! (soft reconfiguration, no ROUTE-REFRESH needed).
//!
//! Paths are stored with their attributes as received and, when the policy changed them,
//! as accepted; a refused path stays, flagged, so that a later policy may accept it. One
//! attribute set is interned per UPDATE, and when the import policy does not read
//! prefixes it is evaluated once for all the UPDATE's NLRI.

use std::net::IpAddr;

use bgp_proto::{Family, MpNextHop, MpNlri, Nlri, Origin, PathAttributes, Update};
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use smallvec::SmallVec;

use super::config::PeerId;
use super::config::RibConfig;
use super::error::RibError;
use super::export::export_always;
use super::local::{local_code, LocalRoute};
use super::peers::PeerState;
use super::resolve::{NextHopInterfaces, NextHopResolver};
use super::state::Rib;
use crate::attrs::{prepend_front, AttrId, AttrStore, RouteAttrs};
use crate::policy::{NextHopAction, PeerView, RouteSource, RouteView};
use crate::table::{flag, Path, PeerIdx, Prefix, LOCAL_PEER};

/// Counters returned by [`Rib::apply_update`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub struct UpdateStats {
    pub announced: usize,
    pub withdrawn: usize,
    /// Announced but rejected by import policy or loop detection (kept for soft reconfig).
    pub rejected: usize,
    /// NLRI of families not negotiated or not IP unicast.
    pub ignored: usize,
    /// IPv4 NLRI announced with an IPv6 next hop on a session without the RFC 8950
    /// capability: treated as withdrawn (also counted in `withdrawn`).
    pub next_hop_refused: usize,
    /// Announced with a new ADD-PATH path id for a prefix where the peer already has
    /// [`PeerConfig::add_path_receive_limit`](crate::PeerConfig::add_path_receive_limit)
    /// paths: ignored (also counted in `announced`).
    pub over_add_path_limit: usize,
}

/// How an UPDATE is applied beyond storing it.
#[derive(Copy, Clone)]
struct Apply<'a> {
    /// Decide (and export) each prefix right after storing it.
    eager: Option<&'a dyn NextHopResolver>,
    /// Resolve next hops' interfaces for the import policy.
    interfaces: Option<&'a dyn NextHopResolver>,
}

impl Rib {
    /// Apply a decoded UPDATE from `peer` to its Adj-RIB-In. With `treat_as_withdraw`
    /// (RFC 7606) the announced NLRI are withdrawn instead. Call [`Rib::process`] afterwards
    /// (once per update or per batch).
    pub fn apply_update(
        &mut self,
        id: PeerId,
        update: &Update,
        treat_as_withdraw: bool,
    ) -> Result<UpdateStats, RibError> {
        let how = Apply {
            eager: None,
            interfaces: None,
        };
        self.apply(id, update, treat_as_withdraw, how)
    }

    /// [`Rib::apply_update`], resolving the next hops' interfaces for the import policy
    /// with `resolver` (without running the decision process).
    pub fn apply_update_resolved(
        &mut self,
        id: PeerId,
        update: &Update,
        treat_as_withdraw: bool,
        resolver: &dyn NextHopResolver,
    ) -> Result<UpdateStats, RibError> {
        let how = Apply {
            eager: None,
            interfaces: Some(resolver),
        };
        self.apply(id, update, treat_as_withdraw, how)
    }

    /// [`Rib::apply_update_resolved`] followed by [`Rib::process`], with the same result;
    /// each prefix of the UPDATE is decided and exported right after it is stored (output
    /// in UPDATE order rather than prefix order). Measured no faster than the batched
    /// pair (docs/benchmarks.md, `PIPELINE_EAGER`).
    pub fn apply_update_and_process(
        &mut self,
        id: PeerId,
        update: &Update,
        treat_as_withdraw: bool,
        resolver: &dyn NextHopResolver,
    ) -> Result<UpdateStats, RibError> {
        let how = Apply {
            eager: Some(resolver),
            interfaces: Some(resolver),
        };
        let stats = self.apply(id, update, treat_as_withdraw, how)?;
        self.process(resolver);
        Ok(stats)
    }

    fn apply(
        &mut self,
        id: PeerId,
        update: &Update,
        treat_as_withdraw: bool,
        how: Apply<'_>,
    ) -> Result<UpdateStats, RibError> {
        let session = self.peers.session(id)?;
        let negotiated = |f: Family| session.families.contains(&f);
        let ext_nh_v4 = session.extended_next_hop_v4;
        let mut stats = UpdateStats::default();
        let mut withdraw_v4: SmallVec<[Nlri; 8]> = SmallVec::new();
        let mut withdraw_v6: SmallVec<[Nlri; 8]> = SmallVec::new();
        let mut push_withdraw = |n: &Nlri, stats: &mut UpdateStats| match n.prefix {
            IpNet::V4(_) if negotiated(Family::IPV4_UNICAST) => withdraw_v4.push(*n),
            IpNet::V6(_) if negotiated(Family::IPV6_UNICAST) => withdraw_v6.push(*n),
            _ => stats.ignored += 1,
        };
        for n in &update.withdrawn {
            push_withdraw(n, &mut stats);
        }
        if let Some(u) = &update.mp_unreach {
            match &u.nlri {
                MpNlri::Unicast(v) if u.family.is_unicast_ip() => {
                    for n in v {
                        push_withdraw(n, &mut stats);
                    }
                }
                MpNlri::Unicast(v) => stats.ignored += v.len(),
                MpNlri::Opaque(_) => stats.ignored += 1,
            }
        }
        // Announcements: (next hop, nlri).
        let mut announce: SmallVec<[(Option<MpNextHop>, &[Nlri]); 2]> = SmallVec::new();
        if !update.nlri.is_empty() {
            announce.push((update.attributes.next_hop.map(MpNextHop::V4), &update.nlri));
        }
        // IPv4 NLRI with an IPv6 next hop (RFC 8950 3) without the capability negotiated
        // (RFC 8950 4 forbids sending them): the NLRI were parsed, so they are withdrawn
        // rather than resetting the session (the RFC 7606 2 treat-as-withdraw approach).
        let mut refused: &[Nlri] = &[];
        if let Some(r) = &update.mp_reach {
            match &r.nlri {
                MpNlri::Unicast(v)
                    if r.family == Family::IPV4_UNICAST
                        && matches!(r.next_hop, MpNextHop::V6 { .. })
                        && !ext_nh_v4 =>
                {
                    refused = v
                }
                MpNlri::Unicast(v) if r.family.is_unicast_ip() => {
                    announce.push((Some(r.next_hop.clone()), v))
                }
                MpNlri::Unicast(v) => stats.ignored += v.len(),
                MpNlri::Opaque(_) => stats.ignored += 1,
            }
        }
        for n in refused {
            stats.next_hop_refused += 1;
            push_withdraw(n, &mut stats);
        }
        if treat_as_withdraw {
            for (_, v) in &announce {
                for n in v.iter() {
                    push_withdraw(n, &mut stats);
                }
            }
            announce.clear();
        }
        stats.withdrawn = withdraw_v4.len() + withdraw_v6.len();
        let (mut always_v4, mut always_v6) = (SmallVec::new(), SmallVec::new());
        if how.eager.is_some() {
            always_v4 = export_always::<Ipv4Net>(&self.peers, &self.out);
            always_v6 = export_always::<Ipv6Net>(&self.peers, &self.out);
        }
        for n in &withdraw_v4 {
            // Host bits beyond the length are not part of the prefix (RFC 4271 4.3).
            if let Some(pfx) = Ipv4Net::from_net(n.prefix.trunc()) {
                self.store.remove_path(pfx, id.0, n.path_id.unwrap_or(0));
                if let Some(r) = how.eager {
                    self.process_now(pfx, r, &always_v4);
                }
            }
        }
        for n in &withdraw_v6 {
            if let Some(pfx) = Ipv6Net::from_net(n.prefix.trunc()) {
                self.store.remove_path(pfx, id.0, n.path_id.unwrap_or(0));
                if let Some(r) = how.eager {
                    self.process_now(pfx, r, &always_v6);
                }
            }
        }
        if announce.is_empty() {
            return Ok(stats);
        }
        let p = self.peers.by_id(id)?;
        let loop_found = is_loop(&self.cfg, &update.attributes, p);
        let ebgp = p.ebgp;
        let limit = p.cfg.add_path_receive_limit.max(1);
        let families_ok: SmallVec<[Family; 2]> = p
            .session
            .as_ref()
            .map(|s| s.families.iter().copied().collect())
            .unwrap_or_default();
        for (nh, nlri) in announce {
            let mut attrs = update.attributes.clone();
            attrs.next_hop = None;
            if ebgp {
                // RFC 4271 5.1.5: LOCAL_PREF from an external peer is ignored.
                attrs.local_pref = None;
            }
            let received = self.store.attrs.intern(RouteAttrs {
                attrs,
                next_hop: nh,
            });
            // The outcome for these NLRI when the policy does not look at prefixes.
            let mut same_for_all: Option<(u8, Option<AttrId>)> = None;
            for n in nlri {
                let family = match n.prefix {
                    IpNet::V4(_) => Family::IPV4_UNICAST,
                    IpNet::V6(_) => Family::IPV6_UNICAST,
                };
                if !families_ok.contains(&family) {
                    stats.ignored += 1;
                    continue;
                }
                stats.announced += 1;
                // Host bits beyond the length are not part of the prefix (RFC 4271 4.3).
                let prefix = match n.prefix {
                    IpNet::V4(p) => IpNet::V4(trunc_v4(p)),
                    IpNet::V6(p) => IpNet::V6(p.trunc()),
                };
                let (flags, modified) = match same_for_all {
                    Some(outcome) => outcome,
                    None => {
                        self.counters.import_evaluations += 1;
                        let p = self.peers.by_id(id)?;
                        let nh = self.store.attrs.get(received).next_hop_addr();
                        if let (Some(r), Some(a)) = (how.interfaces, nh) {
                            self.nh.learn(a, r);
                        }
                        let outcome = import_eval(
                            p,
                            &mut self.store.attrs,
                            &self.nh,
                            prefix,
                            received,
                            loop_found,
                        );
                        // One next hop (so one interface) for all these NLRI: only the
                        // prefix can make the outcome differ.
                        if !p.cfg.import.reads_prefix() {
                            same_for_all = Some(outcome);
                        }
                        outcome
                    }
                };
                if flags != 0 {
                    stats.rejected += 1;
                }
                let path = Path::new(
                    id.0,
                    n.path_id.unwrap_or(0),
                    self.store.attrs.retain(received),
                    modified.map(|m| self.store.attrs.retain(m)),
                    flags,
                )
                .changed_at(self.clock.now());
                let stored = match prefix {
                    IpNet::V4(pfx) => self.store.insert_path(pfx, path, limit),
                    IpNet::V6(pfx) => self.store.insert_path(pfx, path, limit),
                };
                if !stored {
                    // RFC 7911 sets no limit; past ours the new path id is ignored.
                    stats.over_add_path_limit += 1;
                    continue;
                }
                if let Some(r) = how.eager {
                    match prefix {
                        IpNet::V4(pfx) => self.process_now(pfx, r, &always_v4),
                        IpNet::V6(pfx) => self.process_now(pfx, r, &always_v6),
                    }
                }
            }
        }
        Ok(stats)
    }

    /// Re-run the import policy over the peer's stored paths of `P`'s family (soft
    /// reconfiguration): each path's flags and accepted attributes are recomputed from the
    /// attributes as received, and its prefix marked for a decision.
    pub(super) fn reimport<P: Prefix>(&mut self, idx: PeerIdx) {
        let Some(peer) = self.peers.get(idx) else {
            return;
        };
        let keys: Vec<P> = self.store.peer_prefixes(idx);
        let (mut was_rejected, mut now_rejected) = (0usize, 0usize);
        let attrs = &mut self.store.attrs;
        let journal = &mut self.store.accepted;
        let t = P::table_mut(&mut self.store.tables);
        for k in keys {
            t.touch(k);
            let Some(d) = t.routes.get_mut(&k) else {
                continue;
            };
            // One pass over the prefix's paths, however many the peer has there.
            for x in d.iter_mut().filter(|x| x.peer() == idx) {
                let received = attrs.get(x.attrs);
                let lp = is_loop(&self.cfg, &received.attrs, peer);
                let (flags, modified) = import_eval(peer, attrs, &self.nh, k.into(), x.attrs, lp);
                let modified = modified.map(|m| attrs.retain(m));
                was_rejected += usize::from(x.is_rejected());
                let was_accepted = !x.has(flag::REJECTED | flag::LOOP);
                let before = x.modified;
                x.clear_flags(flag::REJECTED | flag::LOOP);
                x.set_flags(flags);
                now_rejected += usize::from(x.is_rejected());
                let now_accepted = !x.has(flag::REJECTED | flag::LOOP);
                let changed = was_accepted != now_accepted || before != modified;
                if let Some(o) = std::mem::replace(&mut x.modified, modified) {
                    attrs.release(o);
                }
                // Only what the new policy changed is journalled.
                if changed {
                    journal.stored(attrs, k.into(), x, was_accepted);
                }
            }
        }
        self.store
            .rejected_changed::<P>(idx, was_rejected, now_rejected);
    }

    /// Originate (or replace) a static, kernel or connected route. It competes in the
    /// decision process and is exported through each peer's export policy.
    pub fn originate(&mut self, route: LocalRoute) -> Result<(), RibError> {
        if route.source == RouteSource::Bgp {
            return Err(RibError::BadLocalSource);
        }
        let mut attrs = route.attrs;
        attrs.next_hop = None;
        if attrs.origin.is_none() {
            attrs.origin = Some(match route.source {
                RouteSource::Kernel => Origin::Incomplete,
                _ => Origin::Igp,
            });
        }
        // RFC 4271 5.1.2: a locally originated route carries an empty AS_PATH (towards
        // internal peers as is; eBGP export prepends our AS). Without it receivers treat
        // the UPDATE as withdraw (RFC 7606 3 d, missing well-known mandatory attribute).
        attrs.as_path.get_or_insert_with(Default::default);
        let next_hop = route.next_hop.map(|a| match a {
            IpAddr::V4(v4) => MpNextHop::V4(v4),
            IpAddr::V6(v6) => MpNextHop::V6 {
                global: v6,
                link_local: None,
            },
        });
        let a = self.store.attrs.intern(RouteAttrs { attrs, next_hop });
        let a = self.store.attrs.retain(a);
        self.locals.insert(
            route.prefix.trunc(),
            route.source,
            route.kernel,
            route.no_install,
        );
        let path = Path::new(LOCAL_PEER, local_code(route.source), a, None, 0)
            .changed_at(self.clock.now());
        match route.prefix {
            IpNet::V4(p) => self.store_local(p.trunc(), path),
            IpNet::V6(p) => self.store_local(p.trunc(), path),
        }
        Ok(())
    }

    /// Store a local path; its FIB entry and exports are recomputed even when the
    /// selection does not change (its kernel facts may have, which policies match).
    fn store_local<P: Prefix>(&mut self, pfx: P, path: Path) {
        self.store.insert_path(pfx, path, usize::MAX);
        if let Some(d) = P::table_mut(&mut self.store.tables).dirty.get_mut(&pfx) {
            d.force_fib = true;
            d.force_export = true;
        }
    }

    /// Withdraw a local route.
    pub fn withdraw_local(&mut self, prefix: IpNet, source: RouteSource) {
        self.locals.remove(prefix.trunc(), source);
        let code = local_code(source);
        match prefix {
            IpNet::V4(p) => self.store.remove_path(p.trunc(), LOCAL_PEER, code),
            IpNet::V6(p) => self.store.remove_path(p.trunc(), LOCAL_PEER, code),
        }
    }
}

/// RFC 4271 9.1.2 (AS_PATH with `allow_local_as`), RFC 4456 8 (ORIGINATOR_ID,
/// CLUSTER_LIST).
fn is_loop(cfg: &RibConfig, a: &PathAttributes, p: &PeerState) -> bool {
    let as_loop = a.as_path.as_ref().is_some_and(|path| {
        let mut n = path.count(cfg.local_as);
        if let Some(l) = p.cfg.local_as.filter(|&l| l != cfg.local_as) {
            n = n.max(path.count(l));
        }
        n > usize::from(p.cfg.allow_local_as)
    });
    let orig_loop = !p.ebgp && a.originator_id == Some(cfg.router_id);
    let cluster_loop = a.cluster_list.contains(&cfg.effective_cluster_id())
        || p.cfg
            .cluster_id
            .is_some_and(|c| a.cluster_list.contains(&c));
    as_loop || orig_loop || cluster_loop
}

/// `p` without host bits; the decoder already clears them, so this is one test in the
/// common case (`Ipv4Net::trunc` rebuilds the prefix every time).
fn trunc_v4(p: Ipv4Net) -> Ipv4Net {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(p.prefix_len().min(32)))
        .unwrap_or(0);
    let addr = u32::from(p.addr());
    if addr & !mask == 0 {
        p
    } else {
        p.trunc()
    }
}

/// Import policy for one received path: (flags, attributes after policy when changed; the
/// caller retains them for the path).
fn import_eval(
    peer: &PeerState,
    attrs: &mut AttrStore,
    nh: &NextHopInterfaces,
    prefix: IpNet,
    received: AttrId,
    loop_found: bool,
) -> (u8, Option<AttrId>) {
    if loop_found {
        return (flag::LOOP, None);
    }
    let import = &peer.cfg.import;
    if import.is_accept_all() {
        return (0, None);
    }
    let changed: Option<RouteAttrs> = {
        let r = attrs.get(received);
        let view = RouteView {
            prefix,
            attrs: &r.attrs,
            next_hop: r.next_hop_addr(),
            next_hop_interface: nh.of(r.next_hop_addr()),
            source: RouteSource::Bgp,
            kernel: None,
            peer: Some(PeerView {
                name: &peer.cfg.name,
                peer_type: peer.peer_type(),
            }),
        };
        let Some(acc) = import.evaluate(&view) else {
            return (flag::REJECTED, None);
        };
        let nh = acc.next_hop.clone();
        let mut out = acc.attrs;
        if !acc.prepend_path.is_empty() {
            prepend_front(out.to_mut(), &acc.prepend_path);
        }
        match out {
            std::borrow::Cow::Owned(a) => Some(RouteAttrs {
                attrs: a,
                next_hop: import_next_hop(r, nh.as_ref()),
            }),
            std::borrow::Cow::Borrowed(_) if nh.is_some() => Some(RouteAttrs {
                attrs: r.attrs.clone(),
                next_hop: import_next_hop(r, nh.as_ref()),
            }),
            std::borrow::Cow::Borrowed(_) => None,
        }
    };
    (0, changed.map(|a| attrs.intern(a)))
}

/// The next hop of an imported path: the policy's address, else as received.
fn import_next_hop(received: &RouteAttrs, nh: Option<&NextHopAction>) -> Option<MpNextHop> {
    match nh {
        Some(NextHopAction::Address(IpAddr::V4(a))) => Some(MpNextHop::V4(*a)),
        Some(NextHopAction::Address(IpAddr::V6(a))) => Some(MpNextHop::V6 {
            global: *a,
            link_local: None,
        }),
        _ => received.next_hop.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trunc_v4_clears_host_bits_only_when_set() {
        for (a, l) in [
            ("10.1.2.3", 24),
            ("10.1.2.0", 24),
            ("0.0.0.0", 0),
            ("255.255.255.255", 32),
            ("1.2.3.4", 0),
            ("10.1.2.3", 31),
        ] {
            let p = Ipv4Net::new(a.parse().unwrap(), l).unwrap();
            assert_eq!(trunc_v4(p), p.trunc(), "{p}");
        }
    }
}
