//! FIB output: the best route of each prefix whose selection changed, as the kernel (or
//! an embedding agent) installs it ([`FibRoute`]), queued until the consumer takes it.
//!
//! # Lossless, bounded, drained when the consumer has room
//! The consumer takes changes with [`Rib::take_fib`](crate::Rib::take_fib) (the `output`
//! module) in batches of the size it can
//! handle; nothing is ever dropped, whatever it does. A consumer that falls behind (the
//! kernel slower than the RIB, a stalled writer) finds the latest state of every prefix
//! when it comes back: the queue is compacted to one change per prefix, the latest,
//! once it holds twice as many changes as it did after its last compaction (and at
//! least as many as the table has prefixes, since a first full table holds no
//! repeats), so it stays within about twice the prefixes changed since the consumer
//! last caught up, and compaction costs amortised O(1) per change. A consumer that keeps
//! up (every decision run drained) never pays for a compaction nor a per-change index:
//! a change costs one push, as before this queue.
//!
//! The entry is computed when the prefix is decided, not when it is taken: the decision
//! flags it is computed from are only consistent right after a decision run, and the
//! FIB policy is evaluated once per change.

use std::collections::VecDeque;
use std::net::IpAddr;

use ipnet::IpNet;
use rustc_hash::FxHashSet;
use smallvec::SmallVec;

use super::view::Facts;
use crate::attrs::{AttrStore, DEFAULT_LOCAL_PREF};
use crate::policy::{CompiledPolicy, InstallMode, PeerView, RouteSource};
use crate::table::{flag, Dest};

/// A best-path change for the kernel and embedding agents.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FibChange {
    /// Install or replace.
    Upsert(FibRoute),
    /// No usable route any more.
    Remove(IpNet),
}

impl FibChange {
    /// The prefix it changes.
    pub fn prefix(&self) -> IpNet {
        match self {
            FibChange::Upsert(r) => r.prefix,
            FibChange::Remove(p) => *p,
        }
    }
}

/// A Loc-RIB best route (with its ECMP set) as the FIB sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FibRoute {
    pub prefix: IpNet,
    /// Next hops of the multipath set, best first; empty for blackholes/local routes
    /// without a gateway.
    pub next_hops: SmallVec<[IpAddr; 2]>,
    pub local_pref: u32,
    pub source: RouteSource,
    /// Do not install: static "advertise only" routes, and routes learned from the kernel
    /// or interfaces themselves (already there).
    pub no_install: bool,
    /// Metric chosen by the FIB policy (e.g. from LOCAL_PREF).
    pub metric: Option<u32>,
    pub tunnel_device: Option<String>,
    pub install: Option<InstallMode>,
    /// Interface of a local kernel/connected route.
    pub ifname: Option<String>,
}

/// Changes waiting for the consumer, oldest first (see the module documentation).
#[derive(Debug, Default)]
pub(crate) struct FibQueue {
    changes: VecDeque<FibChange>,
    /// Length after the last compaction.
    compacted: usize,
    /// Nobody takes changes ([`Rib::set_fib_output`](crate::Rib::set_fib_output)): none
    /// are computed nor queued.
    off: bool,
}

/// Changes queued before the first compaction is considered.
const COMPACT_MIN: usize = 4096;

/// At most this many changes' room is kept after everything was taken: about one
/// UPDATE's worth of prefixes, not a whole table's.
const REFILL_ROOM: usize = 1024;

impl FibQueue {
    /// Whether changes are wanted (see `off`).
    pub fn is_on(&self) -> bool {
        !self.off
    }

    /// Turn the queue on or off; off empties it.
    pub fn set_on(&mut self, on: bool) {
        self.off = !on;
        if self.off && !self.changes.is_empty() {
            self.changes = VecDeque::new();
            self.compacted = 0;
        }
    }

    /// Queue `change`; `prefixes` is the number of prefixes in the table.
    pub fn push(&mut self, change: FibChange, prefixes: usize) {
        self.changes.push_back(change);
        if self.changes.len() > 2 * self.compacted.max(prefixes) + COMPACT_MIN {
            self.compact();
        }
    }

    /// Keep the latest change of each prefix, in the order of those changes.
    fn compact(&mut self) {
        let mut seen = FxHashSet::default();
        let mut kept: Vec<FibChange> = Vec::with_capacity(self.changes.len());
        while let Some(c) = self.changes.pop_back() {
            if seen.insert(c.prefix()) {
                kept.push(c);
            }
        }
        kept.reverse();
        self.changes = VecDeque::from(kept);
        self.compacted = self.changes.len();
    }

    pub fn len(&self) -> usize {
        self.changes.len()
    }

    /// Take up to `max` changes, oldest first.
    pub fn take(&mut self, max: usize) -> Vec<FibChange> {
        if max >= self.changes.len() {
            // Everything, with the queue's memory: after a whole table changed at once
            // (a first full table, a next-hop change) the queue is not left holding room
            // for a million changes. The buffer is reused, not copied. The next batch
            // starts with room for as many changes as this one (up to `REFILL_ROOM`), so
            // a consumer taking every batch does not pay for the queue growing again.
            self.compacted = 0;
            let room = self.changes.len().min(REFILL_ROOM);
            let batch = std::mem::replace(&mut self.changes, VecDeque::with_capacity(room));
            return Vec::from(batch);
        }
        let batch: Vec<FibChange> = self.changes.drain(..max).collect();
        self.compacted = self.compacted.saturating_sub(max);
        batch
    }
}

/// The FIB entry of a prefix with paths `dest` (freshly decided): its best path and the
/// next hops of its multipath set, through the FIB `policy`; `None` when there is no
/// best path or the policy rejects it.
pub(crate) fn fib_entry(
    facts: Facts<'_>,
    policy: &CompiledPolicy,
    attrs: &AttrStore,
    prefix: IpNet,
    dest: &Dest,
) -> Option<FibRoute> {
    let best = dest.iter().find(|x| x.has(flag::BEST))?;
    let meta = facts.local_meta(prefix, best);
    let best_attrs = attrs.get(best.effective());
    let mut next_hops: SmallVec<[IpAddr; 2]> = SmallVec::new();
    if let Some(a) = best_attrs.next_hop_addr() {
        next_hops.push(a);
    }
    for x in dest
        .iter()
        .filter(|x| x.has(flag::MULTIPATH) && !x.has(flag::BEST))
    {
        if let Some(a) = attrs.get(x.effective()).next_hop_addr() {
            if !next_hops.contains(&a) {
                next_hops.push(a);
            }
        }
    }
    let source = super::local::path_source(best);
    // (LOCAL_PREF, metric, tunnel device, install mode) after the FIB policy.
    let (local_pref, metric, tunnel_device, install) = if policy.is_accept_all() {
        // Nothing to evaluate (the common case without FIB policy).
        (
            best_attrs.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
            None,
            None,
            None,
        )
    } else {
        let peer = facts.peers.get(best.peer()).map(|p| PeerView {
            name: &p.cfg.name,
            peer_type: p.peer_type(),
        });
        let view = facts.view(
            prefix,
            best,
            &best_attrs.attrs,
            next_hops.first().copied(),
            peer,
        );
        let acc = policy.evaluate(&view)?;
        (
            acc.attrs.local_pref.unwrap_or(DEFAULT_LOCAL_PREF),
            acc.metric,
            acc.tunnel_device,
            acc.install,
        )
    };
    let no_install = matches!(source, RouteSource::Kernel | RouteSource::Connected)
        || meta.is_some_and(|m| m.no_install)
        || install == Some(InstallMode::NoInstall);
    Some(FibRoute {
        prefix,
        next_hops,
        local_pref,
        source,
        no_install,
        metric,
        tunnel_device,
        install,
        ifname: meta.and_then(|m| m.kernel.ifname.clone()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn remove(i: u32) -> FibChange {
        FibChange::Remove(IpNet::V4(
            ipnet::Ipv4Net::new(std::net::Ipv4Addr::from(0x0A00_0000 + (i << 8)), 24)
                .unwrap_or_default(),
        ))
    }

    #[test]
    fn queue_keeps_the_latest_change_per_prefix_and_stays_bounded() {
        let mut q = FibQueue::default();
        // A consumer that never takes: 100 prefixes changing 1000 times each.
        for round in 0..1000u32 {
            for i in 0..100 {
                let c = if round % 2 == 0 {
                    remove(i)
                } else {
                    FibChange::Upsert(FibRoute {
                        prefix: remove(i).prefix(),
                        next_hops: SmallVec::new(),
                        local_pref: round,
                        source: RouteSource::Bgp,
                        no_install: false,
                        metric: None,
                        tunnel_device: None,
                        install: None,
                        ifname: None,
                    })
                };
                q.push(c, 100);
            }
            assert!(q.len() <= 2 * 100 + COMPACT_MIN + 1, "{}", q.len());
        }
        // Bounded batches, then the rest: every prefix once, at its latest state.
        let mut all = q.take(30);
        assert_eq!(all.len(), 30);
        all.extend(q.take(usize::MAX));
        assert_eq!(q.len(), 0);
        let latest: Vec<_> = all.iter().rev().take(100).collect();
        for c in latest {
            match c {
                FibChange::Upsert(r) => assert_eq!(r.local_pref, 999),
                FibChange::Remove(p) => panic!("{p} removed, not its latest state"),
            }
        }
        let distinct: FxHashSet<IpNet> = all.iter().map(FibChange::prefix).collect();
        assert_eq!(distinct.len(), 100);
    }

    #[test]
    fn a_first_table_is_not_compacted() {
        let mut q = FibQueue::default();
        for i in 0..50_000 {
            q.push(remove(i), 50_000);
        }
        assert_eq!(q.compacted, 0, "no repeats to drop");
        assert_eq!(q.take(usize::MAX).len(), 50_000);
    }
}
