//! The decision run: every prefix changed since the last run is decided once, in the order
//! it was first touched (deterministic for a given sequence of calls), its FIB change is
//! queued and its export runs.
//!
//! Mutations only mark prefixes ([`crate::table::DirtySet`], with the selection before the
//! first change), so a caller batches a whole UPDATE, or many, into one run. The export
//! of a prefix runs for every peer only when its selection changed (best, multipath set,
//! their attributes and LLGR mark: [`crate::table::selection_signature`]) or when forced;
//! otherwise only for the peers that need it anyway ([`export_always`]). A route
//! reflector refusing the other reflector's copy of a client route (CLUSTER_LIST loop,
//! RFC 4456 8) or receiving a duplicate thus does no per-peer work.

use ipnet::{Ipv4Net, Ipv6Net};

use super::decide;
use super::export::{export_always, ExportCtx};
use super::fib::{fib_entry, FibChange};
use super::resolve::NextHopResolver;
use super::state::Rib;
use super::view::Facts;
use crate::table::{selection_signature, Dest, Dirty, PeerIdx, Prefix, LOCAL_PEER};

impl Rib {
    /// Run the decision process for every prefix changed since the last call, update the
    /// Loc-RIB flags, queue FIB changes ([`Rib::take_fib`]) and per-peer outbound changes
    /// ([`Rib::take_encoded`]).
    pub fn process(&mut self, resolver: &dyn NextHopResolver) {
        self.process_family::<Ipv4Net>(resolver);
        self.process_family::<Ipv6Net>(resolver);
        // No prefix waits for a decision now: unreferenced attribute sets can go (and their
        // handles be reused) without confusing a pending selection comparison.
        self.store.attrs.maintain();
    }

    /// The next hop resolver's answers changed (IGP change): re-run the decision for every
    /// prefix.
    pub fn resolver_changed(&mut self, resolver: &dyn NextHopResolver) {
        self.store.touch_all();
        self.nh.clear();
        self.process(resolver);
    }

    fn process_family<P: Prefix>(&mut self, resolver: &dyn NextHopResolver) {
        let always = export_always::<P>(&self.peers, &self.out);
        // First-touch order: deterministic for a given sequence of calls. (Also clears the
        // slots `apply_update_and_process` already took out.)
        let mut list = P::table_mut(&mut self.store.tables).dirty.take_all();
        for (pfx, d) in list.drain(..) {
            if let Some(d) = d {
                self.process_prefix(pfx, d, resolver, &always);
            }
        }
        P::table_mut(&mut self.store.tables).dirty.recycle(list);
        for &i in &always {
            if let Some(p) = self.out.get_mut(i) {
                p.resync &= !P::BIT;
            }
        }
    }

    /// Decide `pfx` now if it is waiting for a decision (`apply_update_and_process`).
    pub(super) fn process_now<P: Prefix>(
        &mut self,
        pfx: P,
        resolver: &dyn NextHopResolver,
        always: &[PeerIdx],
    ) {
        if let Some(d) = P::table_mut(&mut self.store.tables).dirty.remove(&pfx) {
            self.process_prefix(pfx, d, resolver, always);
        }
    }

    /// Decide one prefix, queue its FIB change and its exports: to every peer when the
    /// selection changed (or `force_export`), else to the peers in `always` only.
    fn process_prefix<P: Prefix>(
        &mut self,
        pfx: P,
        d: Dirty,
        resolver: &dyn NextHopResolver,
        always: &[PeerIdx],
    ) {
        self.counters.prefixes_decided += 1;
        let t = P::table_mut(&mut self.store.tables);
        let prefixes = t.routes.len();
        let mut no_dest = Dest::default();
        let dest = match t.routes.get_mut(&pfx) {
            Some(d) if !d.is_empty() => d,
            Some(_) => {
                t.routes.remove(&pfx);
                t.large.forget(pfx);
                &mut no_dest
            }
            None => &mut no_dest,
        };
        decide::run(
            dest,
            &self.peers,
            &self.decision,
            resolver,
            &self.store.attrs,
        );
        if resolver.knows_interfaces() {
            for x in dest.iter().filter(|x| x.peer() != LOCAL_PEER) {
                if let Some(a) = self.store.attrs.get(x.effective()).next_hop_addr() {
                    self.nh.learn(a, resolver);
                }
            }
        }
        let dest: &Dest = dest;
        let facts = Facts {
            peers: &self.peers,
            locals: &self.locals,
            nh: &self.nh,
        };
        let new_sig = selection_signature(dest);
        if self.fib.is_on() && (new_sig != d.old || d.force_fib) {
            let entry = fib_entry(
                facts,
                &self.cfg.fib_policy,
                &self.store.attrs,
                pfx.into(),
                dest,
            );
            match entry {
                Some(r) => self.fib.push(FibChange::Upsert(r), prefixes),
                None if !d.old.is_empty() => self.fib.push(FibChange::Remove(pfx.into()), prefixes),
                None => {}
            }
        }
        if self.out.is_held() {
            // RFC 4724 4.1: nothing is advertised yet; the table goes out at the end.
            return;
        }
        let mut ctx = ExportCtx {
            cfg: &self.cfg,
            facts,
            attrs: &mut self.store.attrs,
        };
        let exports = if new_sig != d.old || d.force_export {
            let all = 1..self.peers.len() as PeerIdx;
            ctx.prefix(&mut self.out, pfx, dest, all)
        } else {
            ctx.prefix(&mut self.out, pfx, dest, always.iter().copied())
        };
        self.counters.peer_exports += exports;
    }
}
