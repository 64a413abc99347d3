//! Outbound state: per peer its Adj-RIB-Out with the queue of changes for it
//! ([`crate::adj_out`]), its pending End-of-RIB markers and export cache; across peers
//! the encode cache; and the hold of selection deferral. The one way out of a peer's
//! queue is [`Outbound::take_encoded`], behind [`Rib::take_encoded`](crate::Rib::take_encoded)
//! (the `output` module), which the daemon and the simulator both call.
//!
//! # Why the queue is drained by encoding
//! Taking changes off the queue records them as what the peer holds (the Adj-RIB-Out is
//! sent state, RFC 4271 3.2). A change is only sent once it is encoded, and a route whose
//! attributes cannot be encoded for the peer (RFC 8654: they do not fit its maximum
//! message size) must instead be withdrawn towards it (RFC 8654 3) and recorded as such.
//! Draining and encoding in one step keeps the Adj-RIB-Out true to the wire; a typed
//! drain beside it would record what the peer was never sent.
//!
//! # The encode cache
//! Route-reflector clients of one export class are handed the same changes in the same
//! order in one decision run (see `ExportClass` in the export module) and drained one
//! after the other: a slice equal to one of the last two encoded for the same codec
//! parameters gets the same frames (reference-counted, not copied), so a reflector
//! encodes one UPDATE per block, not one per client. Two are kept: a client that was the
//! source of one of the changes (and so is not sent it) gets a slice of its own without
//! evicting the one its neighbours share. Handles are compared, not contents: valid while
//! no attribute set has been freed (the store's generation), during which a handle
//! always names the same set.

use bgp_proto::wire::EncodeError;
use bgp_proto::{CodecContext, Family, Nlri};
use bytes::Bytes;

use crate::adj_out::{AdjOut, Change};
use crate::attrs::{AttrId, AttrStore};
use crate::table::PeerIdx;

/// What [`Rib::take_encoded`](crate::Rib::take_encoded) packed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Encoded {
    pub announced: usize,
    pub withdrawn: usize,
    pub end_of_rib: Vec<Family>,
    /// UPDATE messages appended.
    pub messages: usize,
    /// Changes are still queued after this slice: take again when the peer has room.
    /// End-of-RIB waits for the last slice.
    pub more: bool,
    /// Routes that could not be encoded for this peer (not sent, withdrawn towards it
    /// when it held an older announcement; not counted in `announced`).
    pub unsendable: Vec<Unsendable>,
}

/// A route that could not be sent to a peer (RFC 8654 3), typically because its
/// attributes do not fit the peer's maximum message size.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unsendable {
    pub family: Family,
    pub nlri: Nlri,
    pub reason: EncodeError,
}

/// (input set, source peer) → output set of the last export to one peer with a policy
/// that does not modify or does not read prefixes; valid while no attribute set has
/// been freed.
#[derive(Copy, Clone, Debug)]
pub(crate) struct ExportCache {
    pub input: AttrId,
    /// The output's next hop depends on the prefix's family (RFC 8950: one attribute
    /// set, next hop included, may serve IPv4 and IPv6 prefixes alike).
    pub ipv4: bool,
    pub source: PeerIdx,
    pub output: Option<AttrId>,
    pub generation: u64,
}

/// One peer's outbound state.
#[derive(Debug, Default)]
pub(crate) struct PeerOut {
    /// Adj-RIB-Out: what the peer holds and what is queued for it, per NLRI.
    pub adj: AdjOut,
    /// Families whose End-of-RIB follows the initial table (RFC 4724 2).
    pub eor_due: Vec<Family>,
    /// Last export with an unmodifying (or prefix-blind) policy.
    pub cache: Option<ExportCache>,
    /// Families (bit 0 IPv4, bit 1 IPv6) whose full export ran since the last decision
    /// run: it saw the flags of that run, so prefixes decided next are exported to this
    /// peer even when their selection does not change.
    pub resync: u8,
}

/// Changes queued in one slice that the cache keeps at most (a few bounded slices; an
/// unbounded drain of a whole table is not kept).
const ENCODE_CACHE_MAX: usize = 65_536;

/// A slice encoded lately and its UPDATEs (see the module documentation).
#[derive(Debug)]
struct EncodeCache {
    generation: u64,
    codec: CodecContext,
    changes: Vec<Change>,
    /// The UPDATEs of the changes that could be encoded.
    frames: Vec<Bytes>,
    /// The changes that could not (index into `changes`, why).
    failed: Vec<(usize, EncodeError)>,
}

/// A slice taken off a peer's queue.
#[derive(Debug, Default)]
struct Drained {
    changes: Vec<Change>,
    end_of_rib: Vec<Family>,
    more: bool,
}

/// Every peer's outbound state (indexed like the peer table) and the encode cache.
#[derive(Debug, Default)]
pub(crate) struct Outbound {
    peers: Vec<Option<PeerOut>>,
    /// Selection deferral (RFC 4724 4.1): nothing is exported or taken.
    held: bool,
    /// The last two slices encoded, most recently used first.
    encode_cache: [Option<EncodeCache>; 2],
    /// Slices whose UPDATEs were copied from the cache instead of encoded again.
    pub encodings_shared: u64,
}

impl Outbound {
    pub fn add_peer(&mut self, idx: PeerIdx) {
        let i = idx as usize;
        if self.peers.len() <= i {
            self.peers.resize_with(i + 1, || None);
        }
        if let Some(slot) = self.peers.get_mut(i) {
            *slot = Some(PeerOut::default());
        }
    }

    /// Drop the peer's state, giving back its attribute references.
    pub fn remove_peer(&mut self, idx: PeerIdx, attrs: &mut AttrStore) {
        if let Some(slot) = self.peers.get_mut(idx as usize) {
            if let Some(p) = slot.as_mut() {
                p.adj.release_all(attrs);
            }
            *slot = None;
        }
    }

    pub fn get(&self, idx: PeerIdx) -> Option<&PeerOut> {
        self.peers.get(idx as usize).and_then(Option::as_ref)
    }

    pub fn get_mut(&mut self, idx: PeerIdx) -> Option<&mut PeerOut> {
        self.peers.get_mut(idx as usize).and_then(Option::as_mut)
    }

    /// Every peer's state, by index.
    pub fn iter(&self) -> impl Iterator<Item = (PeerIdx, &PeerOut)> {
        self.peers
            .iter()
            .enumerate()
            .filter_map(|(i, p)| Some((i as PeerIdx, p.as_ref()?)))
    }

    /// Empty the peer's Adj-RIB-Out and queue, releasing their attribute references, for
    /// a session with ADD-PATH send in the given families or none.
    pub fn reset(
        &mut self,
        idx: PeerIdx,
        add_path_v4: bool,
        add_path_v6: bool,
        attrs: &mut AttrStore,
    ) {
        if let Some(p) = self.get_mut(idx) {
            p.adj.release_all(attrs);
            p.adj = AdjOut::new(add_path_v4, add_path_v6);
            p.cache = None;
        }
    }

    /// Forget every peer's export cache (its results name a source's old router id).
    pub fn clear_export_caches(&mut self) {
        for p in self.peers.iter_mut().flatten() {
            p.cache = None;
        }
    }

    pub fn hold(&mut self) {
        self.held = true;
    }

    pub fn release(&mut self) {
        self.held = false;
    }

    pub fn is_held(&self) -> bool {
        self.held
    }

    /// Whether peer `idx` has changes or End-of-RIB markers to take.
    pub fn has_output(&self, idx: PeerIdx) -> bool {
        !self.held
            && self
                .get(idx)
                .is_some_and(|p| p.adj.has_queued() || !p.eor_due.is_empty())
    }

    /// Take a slice of a peer's queue (one change per NLRI, its latest state) up to about
    /// `max_bytes` octets of NLRI (at least one change; `usize::MAX`: all), recording
    /// each as sent in the Adj-RIB-Out. Returns the changes, the End-of-RIB markers due
    /// (with the last slice only) and whether changes remain queued.
    fn drain(&mut self, idx: PeerIdx, max_bytes: usize, attrs: &mut AttrStore) -> Drained {
        let mut d = Drained::default();
        if self.held {
            return d;
        }
        let Some(p) = self.get_mut(idx) else {
            return d;
        };
        // At least one octet of NLRI per change: no regrowing while taking the slice.
        d.changes = Vec::with_capacity(p.adj.queued_len().min(max_bytes.saturating_add(1)));
        p.adj.drain(max_bytes, attrs, &mut d.changes);
        d.more = p.adj.has_queued();
        if !d.more {
            // RFC 4724 2: End-of-RIB follows the whole initial table, so the last slice.
            d.end_of_rib = std::mem::take(&mut p.eor_due);
        }
        d
    }

    /// Drain a slice of peer `idx`'s queue (see [`Rib::take_encoded`](crate::Rib::take_encoded)) and pack it with
    /// `codec` into UPDATEs appended to `out`.
    pub fn take_encoded(
        &mut self,
        idx: PeerIdx,
        codec: &CodecContext,
        max_bytes: usize,
        attrs: &mut AttrStore,
        out: &mut Vec<Bytes>,
    ) -> Result<Encoded, EncodeError> {
        let Drained {
            changes,
            end_of_rib,
            more,
        } = self.drain(idx, max_bytes, attrs);
        let frames_before = out.len();
        let generation = attrs.generation();
        let hit = (!changes.is_empty())
            .then(|| {
                self.encode_cache.iter().position(|c| {
                    c.as_ref().is_some_and(|c| {
                        c.generation == generation && c.changes == changes && c.codec == *codec
                    })
                })
            })
            .flatten();
        // Frames of a freshly encoded slice, to keep for the next peer.
        let mut fresh = None;
        let failed = match hit.and_then(|i| self.encode_cache.get(i).map(|c| (i, c))) {
            Some((i, Some(c))) => {
                out.extend(c.frames.iter().cloned());
                self.encodings_shared += 1;
                let failed = c.failed.clone();
                if i > 0 {
                    self.encode_cache.swap(0, i);
                }
                failed
            }
            _ => {
                let failed = crate::pack::encode_with(
                    changes.iter().map(|c| (c.family, c.nlri, c.attrs)),
                    |a| attrs.get(a),
                    &[],
                    codec,
                    out,
                )?;
                if !changes.is_empty() && changes.len() <= ENCODE_CACHE_MAX {
                    fresh = Some(out.get(frames_before..).unwrap_or_default().to_vec());
                }
                failed
            }
        };
        let mut summary = Encoded {
            end_of_rib,
            more,
            ..Encoded::default()
        };
        // RFC 8654 3: what does not fit is withdrawn towards this peer only.
        let mut withdraw: Vec<(Family, Vec<Nlri>)> = Vec::new();
        for (i, reason) in &failed {
            let Some(c) = changes.get(*i) else {
                continue;
            };
            if let Some(p) = self.get_mut(idx) {
                p.adj.unsendable(c, attrs);
            }
            match withdraw.iter_mut().find(|(f, _)| *f == c.family) {
                Some((_, v)) => v.push(c.nlri),
                None => withdraw.push((c.family, vec![c.nlri])),
            }
            summary.unsendable.push(Unsendable {
                family: c.family,
                nlri: c.nlri,
                reason: reason.clone(),
            });
        }
        for (family, nlri) in &withdraw {
            bgp_proto::wire::encode_withdrawals(*family, nlri, codec, out)?;
            summary.withdrawn += nlri.len();
        }
        // RFC 4724 2: End-of-RIB after the changes.
        for family in &summary.end_of_rib {
            bgp_proto::wire::encode_end_of_rib(*family, out);
        }
        for c in &changes {
            match c.attrs {
                Some(_) => summary.announced += 1,
                None => summary.withdrawn += 1,
            }
        }
        summary.announced -= summary.unsendable.len().min(summary.announced);
        summary.messages = out.len() - frames_before;
        if let Some(frames) = fresh {
            // The handles stay valid without references until the store frees a set,
            // which changes its generation.
            self.encode_cache.swap(0, 1);
            self.encode_cache[0] = Some(EncodeCache {
                generation,
                codec: codec.clone(),
                changes,
                frames,
                failed,
            });
        }
        Ok(summary)
    }
}
