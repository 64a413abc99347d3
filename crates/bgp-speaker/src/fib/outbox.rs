//! Best-path changes on their way from the RIB task to the FIB, never dropped.
//!
//! The RIB task must not wait on the FIB, so it offers each batch with `try_send`. When
//! the channel is full (the kernel slower than the RIB, or the FIB consumer stalled) the
//! batch used to be dropped with a warning, and the kernel silently diverged from the
//! Loc-RIB until those prefixes changed again. Instead the changes that did not fit wait
//! here, merged per prefix (the latest change of each prefix is all the FIB needs), and are
//! offered again on the RIB task's next pass: memory is bounded by the number of prefixes,
//! and the FIB converges to the Loc-RIB however long the stall.

use std::collections::HashMap;

use bgp_rib::FibChange;
use ipnet::IpNet;
use tokio::sync::mpsc;
use tokio::sync::mpsc::error::TrySendError;
use tracing::warn;

/// Changes waiting for room in the FIB channel, latest per prefix.
#[derive(Debug, Default)]
pub(crate) struct FibOutbox {
    waiting: HashMap<IpNet, FibChange>,
    /// The consumer is gone (logged once).
    closed: bool,
}

fn prefix(c: &FibChange) -> IpNet {
    match c {
        FibChange::Upsert(r) => r.prefix.trunc(),
        FibChange::Remove(p) => p.trunc(),
    }
}

impl FibOutbox {
    /// Changes wait for room.
    pub(crate) fn is_waiting(&self) -> bool {
        !self.waiting.is_empty()
    }

    /// Offers what waits, then `changes`, on `tx`; what does not fit waits (merged per
    /// prefix, later changes winning) for the next call.
    pub(crate) fn offer(&mut self, tx: &mpsc::Sender<Vec<FibChange>>, changes: Vec<FibChange>) {
        let batch = if self.waiting.is_empty() {
            changes
        } else {
            self.merge(changes);
            self.waiting.drain().map(|(_, c)| c).collect()
        };
        if batch.is_empty() {
            return;
        }
        match tx.try_send(batch) {
            Ok(()) => {}
            Err(TrySendError::Full(batch)) => self.merge(batch),
            Err(TrySendError::Closed(batch)) => {
                if !self.closed {
                    warn!("kernel FIB channel closed: best-path changes wait for it");
                    self.closed = true;
                }
                self.merge(batch);
            }
        }
    }

    fn merge(&mut self, changes: Vec<FibChange>) {
        for c in changes {
            self.waiting.insert(prefix(&c), c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::rib_route;
    use super::*;

    fn upsert(p: &str, nh: &str) -> FibChange {
        FibChange::Upsert(rib_route(p, &[nh]))
    }

    #[test]
    fn a_full_channel_loses_nothing_and_keeps_the_latest_change() {
        let (tx, mut rx) = mpsc::channel(1);
        let mut out = FibOutbox::default();
        out.offer(&tx, vec![upsert("10.0.0.0/24", "192.0.2.1")]);
        assert!(!out.is_waiting(), "room for the first batch");
        // The channel is full: these wait, merged per prefix.
        out.offer(
            &tx,
            vec![
                upsert("10.0.1.0/24", "192.0.2.1"),
                upsert("10.0.2.0/24", "192.0.2.1"),
            ],
        );
        out.offer(
            &tx,
            vec![
                upsert("10.0.1.0/24", "192.0.2.2"),
                FibChange::Remove("10.0.2.0/24".parse().expect("prefix")),
            ],
        );
        assert!(out.is_waiting());
        let first = rx.try_recv().expect("first batch");
        assert_eq!(first.len(), 1);
        // Room again: what waited goes in one batch, latest per prefix.
        out.offer(&tx, Vec::new());
        assert!(!out.is_waiting());
        let mut second = rx.try_recv().expect("second batch");
        second.sort_by_key(prefix);
        assert_eq!(
            second,
            vec![
                upsert("10.0.1.0/24", "192.0.2.2"),
                FibChange::Remove("10.0.2.0/24".parse().expect("prefix")),
            ]
        );
    }
}
