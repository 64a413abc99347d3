//! Consistency audit for tests and debugging: attribute reference counts against every
//! holder (paths, Adj-RIB-Outs, queued changes), no holder pointing at a freed set, each
//! peer's prefix log and path counts against the table, and the per-peer tables indexed
//! alike. Cost O(table).

use ipnet::{Ipv4Net, Ipv6Net};
use rustc_hash::{FxHashMap, FxHashSet};

use super::state::Rib;
use crate::attrs::AttrId;
use crate::table::{PeerIdx, Prefix};

impl Rib {
    /// Check the RIB's internal consistency (see the module documentation).
    #[doc(hidden)]
    pub fn audit(&self) -> Result<(), String> {
        let mut held: FxHashMap<AttrId, u32> = FxHashMap::default();
        let mut hold = |id: AttrId| *held.entry(id).or_default() += 1;
        for d in self.store.tables.v4.routes.values() {
            for x in d.iter() {
                hold(x.attrs);
                x.modified.map(&mut hold);
            }
        }
        for d in self.store.tables.v6.routes.values() {
            for x in d.iter() {
                hold(x.attrs);
                x.modified.map(&mut hold);
            }
        }
        for (_, o) in self.out.iter() {
            o.adj.v4.audit()?;
            o.adj.v6.audit()?;
            o.adj.v4.for_each_held(&mut hold);
            o.adj.v6.for_each_held(&mut hold);
        }
        self.audit_peer_tables()?;
        self.audit_logs::<Ipv4Net>()?;
        self.audit_logs::<Ipv6Net>()?;
        for (id, refs, live) in self.store.attrs.counts() {
            let h = held.remove(&id).unwrap_or(0);
            if h != refs {
                return Err(format!("{id:?}: count {refs}, held {h}"));
            }
            if h > 0 && !live {
                return Err(format!("{id:?}: held {h} times but freed"));
            }
        }
        match held.into_iter().next() {
            Some((id, h)) => Err(format!("{id:?}: held {h} times, unknown to the store")),
            None => Ok(()),
        }
    }

    /// Every configured peer has outbound state and a prefix log, and nothing else has.
    fn audit_peer_tables(&self) -> Result<(), String> {
        for i in 0..self.peers.len() as PeerIdx {
            let configured = self.peers.get(i).is_some();
            if self.out.get(i).is_some() != configured || self.store.log(i).is_some() != configured
            {
                return Err(format!(
                    "peer {i}: configured {configured}, but its tables disagree"
                ));
            }
        }
        Ok(())
    }

    /// Every peer's path count and prefix log against the table.
    fn audit_logs<P: Prefix>(&self) -> Result<(), String> {
        let routes = &P::table(&self.store.tables).routes;
        let mut count = vec![(0usize, 0usize); self.peers.len()];
        for d in routes.values() {
            for x in d.iter() {
                if let Some(c) = count.get_mut(x.peer() as usize) {
                    c.0 += 1;
                    c.1 += usize::from(x.is_rejected());
                }
            }
        }
        for (i, _) in self.peers.iter() {
            let Some(log) = self.store.log(i) else {
                continue;
            };
            let log = P::log(log);
            let counted = count.get(i as usize).copied().unwrap_or_default();
            if (log.live, log.rejected) != counted {
                return Err(format!(
                    "peer {i}: {} paths ({} rejected) counted, {:?} held",
                    log.live, log.rejected, counted
                ));
            }
            let listed: FxHashSet<P> = log.snapshot().into_iter().collect();
            for (k, d) in routes {
                if d.iter().any(|x| x.peer() == i) && !listed.contains(k) {
                    return Err(format!("peer {i}: {k:?} missing from its prefix log"));
                }
            }
        }
        Ok(())
    }
}
