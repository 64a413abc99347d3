//! Best-path changes on their way to the FIB, never dropped.
//!
//! The RIB must not wait on its FIB consumer (a kernel installer, an embedding agent), and
//! the consumer may be slower than the RIB or stall. Each decision round's changes wait
//! here until the caller finds room for them ([`RibDriver::poll_fib`]): the last round's
//! batch as it came (the common case: handed on whole, no copy), and once a second one
//! comes before the first was taken, everything merged per prefix (the latest change of a
//! prefix is all a FIB needs). Memory is bounded by the number of prefixes however long
//! the consumer lags, and the FIB converges to the Loc-RIB. BIRD's kernel protocol is a
//! client of its table the same way.
//!
//! [`RibDriver::poll_fib`]: crate::RibDriver::poll_fib

use std::collections::HashMap;

use bgp_rib::FibChange;
use ipnet::IpNet;

/// What the FIB consumer is handed at a time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FibBatch {
    /// Best-path changes, at most one per prefix.
    pub changes: Vec<FibChange>,
    /// Graceful-restart recovery is over (every peer sent End-of-RIB, or the time ran
    /// out) and `changes` hold everything the RIB learned until then: routes of a previous
    /// run that were not announced again may now be removed. Set once.
    pub recovery_done: bool,
}

/// Changes waiting for the FIB consumer (see the module docs).
#[derive(Debug, Default)]
pub(super) struct FibQueue {
    /// One decision round's changes, not merged.
    batch: Option<Vec<FibChange>>,
    /// Later rounds merged per prefix, latest change winning.
    merged: HashMap<IpNet, FibChange>,
    /// Recovery ended: say so with the batch that empties the queue.
    recovery_done: bool,
}

fn prefix(c: &FibChange) -> IpNet {
    match c {
        FibChange::Upsert(r) => r.prefix.trunc(),
        FibChange::Remove(p) => p.trunc(),
    }
}

impl FibQueue {
    pub(super) fn is_empty(&self) -> bool {
        self.batch.is_none() && self.merged.is_empty() && !self.recovery_done
    }

    /// Changes waiting (not counting the recovery notice).
    pub(super) fn len(&self) -> usize {
        self.batch.as_ref().map_or(0, Vec::len) + self.merged.len()
    }

    pub(super) fn push(&mut self, changes: Vec<FibChange>) {
        if changes.is_empty() {
            return;
        }
        if self.batch.is_none() && self.merged.is_empty() {
            self.batch = Some(changes);
            return;
        }
        if let Some(older) = self.batch.take() {
            self.merge(older);
        }
        self.merge(changes);
    }

    fn merge(&mut self, changes: Vec<FibChange>) {
        for c in changes {
            self.merged.insert(prefix(&c), c);
        }
    }

    pub(super) fn recovery_done(&mut self) {
        self.recovery_done = true;
    }

    /// Everything waiting, as one batch.
    pub(super) fn take(&mut self) -> Option<FibBatch> {
        if self.is_empty() {
            return None;
        }
        let changes = match self.batch.take() {
            Some(b) => b,
            None => std::mem::take(&mut self.merged).into_values().collect(),
        };
        Some(FibBatch {
            changes,
            recovery_done: std::mem::take(&mut self.recovery_done),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_rib::policy::RouteSource;
    use bgp_rib::FibRoute;

    fn upsert(p: &str, nh: &str) -> FibChange {
        FibChange::Upsert(FibRoute {
            prefix: p.parse().expect("prefix"),
            next_hops: [nh.parse().expect("next hop")].into_iter().collect(),
            local_pref: 100,
            source: RouteSource::Bgp,
            no_install: false,
            metric: None,
            tunnel_device: None,
            install: None,
            ifname: None,
        })
    }

    #[test]
    fn a_lagging_consumer_loses_nothing_and_gets_the_latest_change() {
        let mut q = FibQueue::default();
        q.push(vec![upsert("10.0.0.0/24", "192.0.2.1")]);
        // Taken at once: the round's batch as it came.
        let first = q.take().expect("first batch");
        assert_eq!(first.changes.len(), 1);
        assert!(q.take().is_none());
        // The consumer has no room: rounds pile up, merged per prefix.
        q.push(vec![
            upsert("10.0.1.0/24", "192.0.2.1"),
            upsert("10.0.2.0/24", "192.0.2.1"),
        ]);
        q.push(vec![
            upsert("10.0.1.0/24", "192.0.2.2"),
            FibChange::Remove("10.0.2.0/24".parse().expect("prefix")),
        ]);
        assert_eq!(q.len(), 2);
        q.recovery_done();
        let mut second = q.take().expect("second batch");
        assert!(
            second.recovery_done,
            "the notice comes with the last changes"
        );
        second.changes.sort_by_key(prefix);
        assert_eq!(
            second.changes,
            vec![
                upsert("10.0.1.0/24", "192.0.2.2"),
                FibChange::Remove("10.0.2.0/24".parse().expect("prefix")),
            ]
        );
        assert!(q.take().is_none());
        // The notice alone, when nothing else waits.
        q.recovery_done();
        assert_eq!(
            q.take(),
            Some(FibBatch {
                changes: Vec::new(),
                recovery_done: true
            })
        );
    }
}
