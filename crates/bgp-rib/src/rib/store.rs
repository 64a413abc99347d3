//! The store: the route tables, the interned attribute sets their paths point at, and
//! per peer the log of the prefixes where it has paths.
//!
//! These three change together (a path holds references on its attribute sets and is
//! listed in its peer's log), so one owner keeps them consistent: every path enters
//! through [`Store::insert_path`] and leaves through [`Store::remove_path`] or
//! [`Store::retain_peer_paths`], which count the references and keep the log's exact
//! path counts. The table's list of paths per prefix is at once every peer's
//! Adj-RIB-In and the Loc-RIB (RFC 4271 3.2; see the `table` module); each change marks
//! the prefix for the next decision run ([`crate::table::DirtySet`]).
//!
//! Peer-wide operations (session loss, graceful-restart sweeps and marks, soft
//! reconfiguration) visit the peer's logged prefixes, not the table: O(that peer's
//! paths) for a reflector client next to a full table.

use bgp_proto::{Community, Family};
use ipnet::{Ipv4Net, Ipv6Net};

use super::accepted::Journal;
use crate::attrs::{AttrId, AttrStore};
use crate::table::{
    flag, selection_signature, Dest, Dirty, Path, PeerIdx, PeerPrefixes, Prefix, Tables,
};

/// Route tables, attribute sets and per-peer prefix logs.
#[derive(Debug, Default)]
pub(crate) struct Store {
    pub tables: Tables,
    pub attrs: AttrStore,
    /// Per peer index (none for the local pseudo-peer): where it has paths.
    logs: Vec<Option<PeerPrefixes>>,
    /// Changes of accepted routes, when watched.
    pub accepted: Journal,
}

/// Give back the attribute references a removed path held.
pub(crate) fn release_path(attrs: &mut AttrStore, x: &Path) {
    attrs.release(x.attrs);
    if let Some(m) = x.modified {
        attrs.release(m);
    }
}

impl Store {
    /// Start a prefix log for peer `idx`.
    pub fn add_peer(&mut self, idx: PeerIdx) {
        let i = idx as usize;
        if self.logs.len() <= i {
            self.logs.resize_with(i + 1, || None);
        }
        if let Some(slot) = self.logs.get_mut(i) {
            *slot = Some(PeerPrefixes::default());
        }
    }

    /// Forget peer `idx`'s log (its paths must be gone).
    pub fn remove_peer(&mut self, idx: PeerIdx) {
        if let Some(slot) = self.logs.get_mut(idx as usize) {
            *slot = None;
        }
    }

    /// Peer `idx`'s prefix log and path counts.
    pub fn log(&self, idx: PeerIdx) -> Option<&PeerPrefixes> {
        self.logs.get(idx as usize).and_then(Option::as_ref)
    }

    fn log_mut(&mut self, idx: PeerIdx) -> Option<&mut PeerPrefixes> {
        self.logs.get_mut(idx as usize).and_then(Option::as_mut)
    }

    /// Re-evaluation of the peer's paths of `P`'s family turned `was` refused paths into
    /// `now` refused ones (soft reconfiguration).
    pub fn rejected_changed<P: Prefix>(&mut self, idx: PeerIdx, was: usize, now: usize) {
        if let Some(log) = self.log_mut(idx) {
            let log = P::log_mut(log);
            log.rejected = log.rejected.saturating_sub(was) + now;
        }
    }

    /// Store `path` (which holds its attribute references), replacing the peer's previous
    /// path with the same id. A new path id beyond `limit` paths of that peer at `pfx` is
    /// not stored (its references are given back): returns false.
    pub fn insert_path<P: Prefix>(&mut self, pfx: P, path: Path, limit: usize) -> bool {
        let t = P::table_mut(&mut self.tables);
        let peer = path.peer();
        let rejected = path.is_rejected();
        // One lookup in the route table; the old selection is recorded from the same entry.
        // `Some(was rejected)` when the path replaced one with the same id.
        let replaced = match t.routes.entry(pfx) {
            std::collections::hash_map::Entry::Vacant(v) => {
                self.accepted.stored(&self.attrs, pfx.into(), &path, false);
                v.insert(Dest::One(path));
                t.dirty.insert_with(pfx, Dirty::default);
                None
            }
            std::collections::hash_map::Entry::Occupied(mut o) => {
                let dest = o.get_mut();
                let at = t.large.position(pfx, dest, peer, path.path_id);
                if at.is_none() && t.large.paths_of(pfx, dest, peer) >= limit {
                    release_path(&mut self.attrs, &path);
                    return false;
                }
                t.dirty.insert_with(pfx, || Dirty {
                    old: selection_signature(dest),
                    ..Dirty::default()
                });
                match at.and_then(|i| dest.get_mut(i)) {
                    Some(old) => {
                        let mut path = path;
                        if path.same_as(old) {
                            path.since = old.since;
                        }
                        let gone = std::mem::replace(old, path);
                        let was_accepted = !gone.has(flag::REJECTED | flag::LOOP);
                        self.accepted
                            .stored(&self.attrs, pfx.into(), old, was_accepted);
                        release_path(&mut self.attrs, &gone);
                        Some(gone.is_rejected())
                    }
                    None => {
                        self.accepted.stored(&self.attrs, pfx.into(), &path, false);
                        t.large.push(pfx, dest, path);
                        None
                    }
                }
            }
        };
        let routes = &t.routes;
        if let Some(log) = self.logs.get_mut(peer as usize).and_then(Option::as_mut) {
            let log = P::log_mut(log);
            match replaced {
                Some(was) => log.changed(was, rejected),
                None => log.added(pfx, routes, peer, rejected),
            }
        }
        true
    }

    /// Remove `peer`'s path `path_id` at `pfx`, if there is one.
    pub fn remove_path<P: Prefix>(&mut self, pfx: P, peer: PeerIdx, path_id: u32) {
        let t = P::table_mut(&mut self.tables);
        let Some(dest) = t.routes.get_mut(&pfx) else {
            return;
        };
        let Some(i) = t.large.position(pfx, dest, peer, path_id) else {
            return;
        };
        t.dirty.insert_with(pfx, || Dirty {
            old: selection_signature(dest),
            ..Dirty::default()
        });
        if let Some(gone) = t.large.remove(pfx, dest, i) {
            self.accepted.removed(pfx.into(), &gone);
            release_path(&mut self.attrs, &gone);
            if let Some(log) = self.log_mut(peer) {
                P::log_mut(log).removed(1, usize::from(gone.is_rejected()));
            }
        }
    }

    /// The prefixes where the peer has paths, each once, sorted (see `PrefixLog`).
    pub fn peer_prefixes<P: Prefix>(&mut self, idx: PeerIdx) -> Vec<P> {
        let routes = &P::table(&self.tables).routes;
        match self.logs.get_mut(idx as usize).and_then(Option::as_mut) {
            Some(log) => P::log_mut(log).prefixes(routes, idx),
            None => Vec::new(),
        }
    }

    /// Keep the peer's paths for which `keep` holds; other peers' paths are untouched.
    pub fn retain_peer_paths<P: Prefix>(
        &mut self,
        idx: PeerIdx,
        keep: impl Fn(&Path, &AttrStore) -> bool,
    ) {
        let keys: Vec<P> = self.peer_prefixes(idx);
        let t = P::table_mut(&mut self.tables);
        let attrs = &self.attrs;
        let mut gone: Vec<Path> = Vec::new();
        for k in keys {
            let drop = t
                .routes
                .get(&k)
                .is_some_and(|d| d.iter().any(|x| x.peer() == idx && !keep(x, attrs)));
            if !drop {
                continue;
            }
            t.touch(k);
            t.large.forget(k);
            if let Some(d) = t.routes.get_mut(&k) {
                let at = gone.len();
                d.retain(|x| x.peer() != idx || keep(x, attrs), |x| gone.push(x));
                for x in gone.get(at..).unwrap_or_default() {
                    self.accepted.removed(k.into(), x);
                }
            }
        }
        for x in &gone {
            release_path(&mut self.attrs, x);
        }
        let rejected = gone.iter().filter(|x| x.is_rejected()).count();
        if let Some(log) = self.log_mut(idx) {
            P::log_mut(log).removed(gone.len(), rejected);
        }
    }

    /// Remove the peer's paths in families selected by `which`.
    pub fn drop_paths(&mut self, idx: PeerIdx, which: impl Fn(Family) -> bool) {
        if which(Family::IPV4_UNICAST) {
            self.retain_peer_paths::<Ipv4Net>(idx, |_, _| false);
        }
        if which(Family::IPV6_UNICAST) {
            self.retain_peer_paths::<Ipv6Net>(idx, |_, _| false);
        }
    }

    /// Remove the peer's stale paths of `family` (RFC 4724 4.2, RFC 9494 4.3).
    pub fn sweep_stale(&mut self, idx: PeerIdx, family: Family) {
        let fresh = |p: &Path, _: &AttrStore| !p.has(flag::STALE | flag::LLGR);
        if family == Family::IPV4_UNICAST {
            self.retain_peer_paths::<Ipv4Net>(idx, fresh);
        } else if family == Family::IPV6_UNICAST {
            self.retain_peer_paths::<Ipv6Net>(idx, fresh);
        }
    }

    /// Mark the peer's paths of `family` stale (RFC 4724 4.2: kept and used while the
    /// peer restarts).
    pub fn mark_stale(&mut self, idx: PeerIdx, family: Family) {
        if family == Family::IPV4_UNICAST {
            self.mark_stale_family::<Ipv4Net>(idx);
        } else if family == Family::IPV6_UNICAST {
            self.mark_stale_family::<Ipv6Net>(idx);
        }
    }

    fn mark_stale_family<P: Prefix>(&mut self, idx: PeerIdx) {
        let keys: Vec<P> = self.peer_prefixes(idx);
        let t = P::table_mut(&mut self.tables);
        for k in keys {
            if let Some(d) = t.routes.get_mut(&k) {
                for x in d.iter_mut().filter(|x| x.peer() == idx) {
                    x.set_flags(flag::STALE);
                }
            }
        }
    }

    /// RFC 9494 4.3: attach LLGR_STALE, drop routes carrying NO_LLGR, make the rest least
    /// preferred.
    pub fn enter_llgr(&mut self, idx: PeerIdx, family: Family) {
        if family == Family::IPV4_UNICAST {
            self.enter_llgr_family::<Ipv4Net>(idx);
        } else if family == Family::IPV6_UNICAST {
            self.enter_llgr_family::<Ipv6Net>(idx);
        }
    }

    fn enter_llgr_family<P: Prefix>(&mut self, idx: PeerIdx) {
        self.retain_peer_paths::<P>(idx, |x, attrs| {
            !attrs
                .get(x.attrs)
                .attrs
                .communities
                .contains(&Community::NO_LLGR)
        });
        let keys: Vec<P> = self.peer_prefixes(idx);
        let t = P::table_mut(&mut self.tables);
        let attrs = &mut self.attrs;
        let keys: Vec<P> = keys
            .into_iter()
            .filter(|k| {
                t.routes
                    .get(k)
                    .is_some_and(|d| d.iter().any(|x| x.peer() == idx && !x.has(flag::LLGR)))
            })
            .collect();
        // The same set with LLGR_STALE attached, holding one reference.
        let mut add = |a: AttrId| {
            let mut r = attrs.get(a).clone();
            if !r.attrs.communities.contains(&Community::LLGR_STALE) {
                r.attrs.communities.push(Community::LLGR_STALE);
            }
            let n = attrs.intern(r);
            attrs.retain(n);
            attrs.release(a);
            n
        };
        for k in keys {
            t.touch(k);
            if let Some(d) = t.routes.get_mut(&k) {
                for x in d
                    .iter_mut()
                    .filter(|x| x.peer() == idx && !x.has(flag::LLGR))
                {
                    x.attrs = add(x.attrs);
                    x.modified = x.modified.map(&mut add);
                    x.set_flags(flag::STALE | flag::LLGR);
                }
            }
        }
    }

    /// Mark every prefix holding a path of the peer for a decision and a full export.
    pub fn touch_peer_paths<P: Prefix>(&mut self, idx: PeerIdx) {
        let keys: Vec<P> = self.peer_prefixes(idx);
        let t = P::table_mut(&mut self.tables);
        for k in keys {
            t.touch(k);
            if let Some(d) = t.dirty.get_mut(&k) {
                d.force_export = true;
            }
        }
    }

    /// Mark every prefix of both families for a decision.
    pub fn touch_all(&mut self) {
        fn all<P: Prefix>(t: &mut Tables) {
            let t = P::table_mut(t);
            let keys: Vec<P> = t.routes.keys().copied().collect();
            for k in keys {
                t.touch(k);
            }
        }
        all::<Ipv4Net>(&mut self.tables);
        all::<Ipv6Net>(&mut self.tables);
    }
}
