//! The channel from peer tasks to the RIB task, bounded by weight with a share per peer.
//!
//! A bound by message count does not bound memory: one UPDATE with extended messages (RFC
//! 8654) decodes to up to ~65,000 NLRI (~2 MB), so 1,024 queued messages could hold
//! gigabytes. Here every input is weighed by an estimate of the memory it holds
//! ([`weight`]), and a message enters the channel only with permits for its weight from two
//! semaphores:
//!
//! - the **global budget** ([`Budget::total`]): what the whole channel may hold;
//! - the **peer's share** ([`Budget::per_peer`]): what one peer may hold of it, so a peer
//!   flooding the RIB cannot fill the channel and starve the others (their session events
//!   and UPDATEs still find room).
//!
//! The permits travel with the message and are released once the RIB task has applied it.
//! Tokio's semaphores are fair (first come, first served), so a large message is not
//! overtaken forever by small ones.
//!
//! A peer task never waits on this channel inside its event loop: it queues what its
//! session produced in its [`PeerFeed`] and hands it over as permits become available
//! ([`PeerFeed::deliver`], cancel-safe, raced in the task's `select!`). While its feed holds
//! anything it stops reading its socket, so TCP flow control slows the peer down, and its
//! timers keep running (see `peer/mod.rs`).

use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bgp_node::{PeerId, RibInput};
use bgp_proto::{MpNlri, Nlri};
use tokio::sync::{mpsc, AcquireError, OwnedSemaphorePermit, Semaphore};

/// How much the channel holds, in bytes of (estimated) memory.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Budget {
    /// The whole channel.
    pub total: u32,
    /// One peer's share of it.
    pub per_peer: u32,
}

impl Default for Budget {
    /// 32 MiB in all, 8 MiB per peer: a peer's share holds four of the largest UPDATEs
    /// (65,535 bytes of one-octet prefixes decode to ~1.6 MB), and four peers sending as
    /// fast as they can fill the channel while the others still get their turn.
    fn default() -> Self {
        Budget {
            total: 32 << 20,
            per_peer: 8 << 20,
        }
    }
}

/// Fixed cost counted for every input (the boxed message, channel slot).
const BASE_WEIGHT: usize = 256;

/// An estimate of the memory an input holds: its decoded NLRI and attribute lists. Every
/// variable-size part of a decoded UPDATE is counted, so the estimate grows with the
/// message whatever the peer put in it.
pub(crate) fn weight(input: &RibInput) -> usize {
    let nlri = std::mem::size_of::<Nlri>();
    let mp = |n: &MpNlri| match n {
        MpNlri::Unicast(v) => v.len() * nlri,
        MpNlri::Opaque(b) => b.len(),
    };
    BASE_WEIGHT
        + match input {
            RibInput::Update(update) => {
                let u = &update.update;
                let a = &u.attributes;
                (u.nlri.len() + u.withdrawn.len()) * nlri
                    + u.mp_reach.as_ref().map_or(0, |m| mp(&m.nlri))
                    + u.mp_unreach.as_ref().map_or(0, |m| mp(&m.nlri))
                    + a.as_path.as_ref().map_or(0, |p| {
                        p.segments.iter().map(|s| 32 + 4 * s.asns.len()).sum()
                    })
                    + 4 * a.communities.len()
                    + 8 * a.extended_communities.len()
                    + 12 * a.large_communities.len()
                    + 4 * a.cluster_list.len()
                    + a.unknown.iter().map(|r| 32 + r.value.len()).sum::<usize>()
                    + update.discarded.iter().map(String::len).sum::<usize>()
                    + update.treat_as_withdraw.as_ref().map_or(0, String::len)
            }
            RibInput::Up { negotiated, .. } => std::mem::size_of_val(&**negotiated) + 4096,
            RibInput::RouteRefresh(_) | RibInput::Down { .. } => 0,
        }
}

/// An input as the RIB task receives it; the budget it holds is released when dropped.
#[derive(Debug)]
pub(crate) struct Delivered {
    /// The peer whose session produced it.
    pub peer: PeerId,
    pub input: RibInput,
    _permits: Permits,
}

#[derive(Debug)]
struct Permits {
    _peer: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

/// The sending side: one [`PeerFeed`] per peer task comes from it.
#[derive(Clone, Debug)]
pub(crate) struct RibInputs {
    tx: mpsc::UnboundedSender<Delivered>,
    total: Arc<Semaphore>,
    budget: Budget,
}

/// The RIB task's end.
#[derive(Debug)]
pub(crate) struct RibInputReceiver {
    rx: mpsc::UnboundedReceiver<Delivered>,
}

/// A channel bounded by `budget`. The underlying queue is unbounded in messages; the
/// semaphores bound what it holds.
pub(crate) fn channel(budget: Budget) -> (RibInputs, RibInputReceiver) {
    let (tx, rx) = mpsc::unbounded_channel();
    let budget = Budget {
        total: budget.total.max(1),
        per_peer: budget.per_peer.clamp(1, budget.total.max(1)),
    };
    (
        RibInputs {
            tx,
            total: Arc::new(Semaphore::new(budget.total as usize)),
            budget,
        },
        RibInputReceiver { rx },
    )
}

impl RibInputs {
    /// A feed for one peer task, with its own share of the budget.
    pub(crate) fn feed(&self) -> PeerFeed {
        PeerFeed {
            inputs: self.clone(),
            share: Arc::new(Semaphore::new(self.budget.per_peer as usize)),
            queue: VecDeque::new(),
            acquiring: None,
        }
    }
}

impl RibInputReceiver {
    /// The next input; `None` once every sender is gone.
    pub(crate) async fn recv(&mut self) -> Option<Delivered> {
        self.rx.recv().await
    }

    /// The next input if one is waiting.
    pub(crate) fn try_recv(&mut self) -> Option<Delivered> {
        self.rx.try_recv().ok()
    }
}

type Acquire = Pin<Box<dyn Future<Output = Result<Permits, AcquireError>> + Send>>;

/// One peer task's queue towards the RIB: inputs in the order the session produced them,
/// handed over as the budget allows.
pub(crate) struct PeerFeed {
    inputs: RibInputs,
    share: Arc<Semaphore>,
    /// Inputs not yet in the channel, with their weight (capped to what a share holds).
    queue: VecDeque<(PeerId, RibInput, u32)>,
    /// Permits being waited for, for the input at the head of `queue`. Kept across calls
    /// so [`PeerFeed::deliver`] is cancel-safe and keeps its place in the semaphores' lines.
    acquiring: Option<Acquire>,
}

impl std::fmt::Debug for PeerFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerFeed")
            .field("queued", &self.queue.len())
            .field("share_available", &self.share.available_permits())
            .finish_non_exhaustive()
    }
}

impl PeerFeed {
    /// Queues an input of `peer` for the RIB (never waits).
    pub(crate) fn push(&mut self, peer: PeerId, input: RibInput) {
        let cap = self.inputs.budget.per_peer;
        let w = u32::try_from(weight(&input)).unwrap_or(cap).min(cap);
        self.queue.push_back((peer, input, w));
    }

    /// Inputs wait for budget: the peer task stops reading its socket until they are
    /// handed over.
    pub(crate) fn is_backlogged(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Hands queued inputs to the RIB: waits for the budget of the first, then passes on
    /// every following one whose budget is free right away. Never returns while nothing is
    /// queued. Cancel-safe: a wait cut short resumes where it was on the next call.
    pub(crate) async fn deliver(&mut self) {
        let Some(&(_, _, w)) = self.queue.front() else {
            return std::future::pending().await;
        };
        let (share, total) = (self.share.clone(), self.inputs.total.clone());
        let acquiring = self.acquiring.get_or_insert_with(|| {
            Box::pin(async move {
                let peer = share.acquire_many_owned(w).await?;
                let total = total.acquire_many_owned(w).await?;
                Ok(Permits {
                    _peer: peer,
                    _total: total,
                })
            })
        });
        let permits = acquiring.await;
        self.acquiring = None;
        let Some((peer, input, _)) = self.queue.pop_front() else {
            return;
        };
        let Ok(permits) = permits else {
            // The semaphores are never closed; nothing to deliver to otherwise.
            return;
        };
        self.send(peer, input, permits);
        // What else fits now goes too, without another turn of the caller's loop.
        while let Some(&(_, _, w)) = self.queue.front() {
            let Some(permits) = self.try_permits(w) else {
                break;
            };
            if let Some((peer, input, _)) = self.queue.pop_front() {
                self.send(peer, input, permits);
            }
        }
    }

    fn try_permits(&self, w: u32) -> Option<Permits> {
        // No overtaking: tokio hands freed permits to waiting acquirers first, so this
        // fails while another peer waits in line.
        let peer = self.share.clone().try_acquire_many_owned(w).ok()?;
        let total = self.inputs.total.clone().try_acquire_many_owned(w).ok()?;
        Some(Permits {
            _peer: peer,
            _total: total,
        })
    }

    fn send(&self, peer: PeerId, input: RibInput, permits: Permits) {
        // The RIB task gone means the speaker is shutting down: the input has no reader.
        let _ = self.inputs.tx.send(Delivered {
            peer,
            input,
            _permits: permits,
        });
    }
}

#[cfg(test)]
mod tests;
