//! The two drains of the RIB, one per kind of output, which the daemon and the simulator
//! both call: [`Rib::take_encoded`] takes a bounded slice of a peer's Adj-RIB-Out queue
//! as UPDATE frames (the outbound state, `outbound`), [`Rib::take_fib`] a batch of
//! best-path changes for the kernel (the FIB queue, `fib`). Both queues hold at most one
//! entry per prefix once compacted, whatever the consumer's pace: nothing is lost and
//! memory stays bounded by the table.

use bytes::Bytes;

use super::config::PeerId;
use super::error::RibError;
use super::fib::FibChange;
use super::outbound::Encoded;
use super::state::Rib;

impl Rib {
    /// Peers that have outbound changes or End-of-RIB markers queued (none while
    /// selection is deferred, [`Rib::defer_selection`]).
    pub fn peers_with_output(&self) -> Vec<PeerId> {
        self.peers
            .iter()
            .filter(|(idx, p)| p.session.is_some() && self.out.has_output(*idx))
            .map(|(idx, _)| PeerId(idx))
            .collect()
    }

    /// Take a slice of the changes queued for a peer, the oldest first, up to about
    /// `max_bytes` octets of NLRI (at least one change; `usize::MAX` takes them all), and
    /// pack it into UPDATE messages appended to `out`: withdrawals first, then
    /// announcements grouped by attribute set, then End-of-RIB. The Adj-RIB-Out records
    /// what was sent. This is the only way changes leave a peer's queue.
    ///
    /// Slices let a whole table queued at session start (RFC 4271 9.4: the initial
    /// update) or by a route refresh (RFC 2918) be encoded as the peer's send queue
    /// drains, not all at once; the frames come to about `max_bytes` plus one attribute
    /// block per message. The queue holds one change per NLRI (its latest state), so
    /// slices can go out in any order; End-of-RIB (RFC 4724 2) comes with the slice that
    /// empties the queue. [`Encoded::more`] says whether to take again.
    ///
    /// Each attribute group is encoded on its own. A route whose attributes do not fit
    /// the peer's maximum message size (RFC 8654: 4096 octets without extended
    /// messages) is not sent: it is withdrawn towards this peer instead (RFC 8654 3; a
    /// peer that held no older announcement of it ignores the withdrawal), listed in
    /// [`Encoded::unsendable`], and the Adj-RIB-Out records the peer as holding nothing
    /// for it, so later changes and withdrawals of that prefix are still sent. The rest
    /// of the slice goes out. Nothing is taken while selection is deferred
    /// ([`Rib::defer_selection`]).
    pub fn take_encoded(
        &mut self,
        id: PeerId,
        max_bytes: usize,
        out: &mut Vec<Bytes>,
    ) -> Result<Encoded, RibError> {
        let codec = &self.peers.session(id)?.codec;
        Ok(self
            .out
            .take_encoded(id.0, codec, max_bytes, &mut self.store.attrs, out)?)
    }
}

impl Rib {
    /// Take up to `max` queued FIB changes, oldest first (`usize::MAX`: all, handing over
    /// the queue's memory). This is the only way changes leave the queue; take again
    /// while [`Rib::fib_queued`] is not zero. Nothing is ever dropped: a consumer that
    /// took nothing for a while finds at most one change per prefix changed meanwhile,
    /// the latest.
    pub fn take_fib(&mut self, max: usize) -> Vec<FibChange> {
        self.fib.take(max)
    }

    /// Whether anyone takes FIB changes (on by default). While off, no FIB entry is
    /// computed nor queued (a daemon without a kernel FIB nor route subscribers would
    /// otherwise build one per changed prefix only to drop it) and the queue is emptied;
    /// turned on again, changes are queued from the next decision run.
    pub fn set_fib_output(&mut self, on: bool) {
        self.fib.set_on(on);
    }

    /// FIB changes waiting to be taken.
    pub fn fib_queued(&self) -> usize {
        self.fib.len()
    }
}
