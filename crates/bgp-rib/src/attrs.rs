//! Interned route attributes.
//!
//! Full tables carry far fewer distinct attribute sets than prefixes (18k sets for 113k routes
//! in the 2002 RIS table, one set for a synthetic 1M table), so every path holds a 4-byte
//! handle into an arena (`AttrStore`): identical sets are stored once. Outgoing attribute
//! sets are interned in the same arena, so a route reflector telling 1000 clients the same
//! thing stores it once. Outside the RIB, sets are handed out as [`Attrs`]
//! (`Arc<RouteAttrs>`).

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bgp_proto::{MpNextHop, PathAttributes};
use std::num::NonZeroU32;

use rustc_hash::FxHashMap;

/// LOCAL_PREF assumed when absent (RFC 4271 5.1.5 leaves it to configuration; 100 is
/// universal): by the decision process, policy conditions and the FIB's route metric.
pub const DEFAULT_LOCAL_PREF: u32 = 100;

/// Path attributes plus the route's next hop.
///
/// The next hop is kept here in one form for every family: for IPv4 unicast routes the
/// NEXT_HOP attribute is moved out of [`PathAttributes::next_hop`] (which is left `None`), for
/// MP families the MP_REACH_NLRI next hop is stored. On output the RIB puts it back where the
/// family needs it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RouteAttrs {
    pub attrs: PathAttributes,
    pub next_hop: Option<MpNextHop>,
}

impl RouteAttrs {
    /// The next hop as an address, if it is a plain IP next hop.
    pub fn next_hop_addr(&self) -> Option<std::net::IpAddr> {
        self.next_hop.as_ref().and_then(MpNextHop::addr)
    }
}

/// Puts a policy's `prepend_path` ASNs in front of the AS_PATH, first one first (on
/// import in front of the path as received, on export after our own AS).
pub(crate) fn prepend_front(a: &mut PathAttributes, front: &[u32]) {
    if front.is_empty() {
        return;
    }
    let path = a.as_path.get_or_insert_with(Default::default);
    for asn in front.iter().rev() {
        path.prepend(*asn, 1);
    }
}

/// A shared attribute set, as handed out by queries.
pub type Attrs = Arc<RouteAttrs>;

/// Handle of an interned attribute set inside the RIB (4 bytes; the niche keeps
/// `Option<AttrId>` 4 bytes too).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct AttrId(NonZeroU32);

impl AttrId {
    /// The largest raw value of a handle: `u32::MAX` stays free for compact encodings
    /// next to handles (the Adj-RIB-Out's queued state). Reaching it would take four
    /// billion distinct sets, tens of GiB; the store caps its handles there.
    pub const MAX_RAW: u32 = u32::MAX - 1;

    fn index(self) -> usize {
        self.0.get() as usize - 1
    }

    /// The handle as a non-zero integer no larger than [`AttrId::MAX_RAW`].
    pub fn raw(self) -> u32 {
        self.0.get()
    }

    /// The handle of [`AttrId::raw`] value `r`; `None` for 0 and above `MAX_RAW`.
    pub fn from_raw(r: u32) -> Option<AttrId> {
        NonZeroU32::new(r)
            .filter(|_| r <= Self::MAX_RAW)
            .map(AttrId)
    }
}

#[derive(Debug)]
struct Slot {
    attrs: Option<Attrs>,
    /// Holders inside the RIB (paths, Adj-RIB-Out entries, queued changes). Plain
    /// integers: the RIB is mutated through `&mut` only, so no atomic operation is paid per
    /// path (an atomic increment serialises the cache misses around it).
    refs: u32,
}

/// Hash-consing arena of attribute sets with explicit reference counts.
///
/// Holders call [`AttrStore::retain`] / [`AttrStore::release`]. A set whose count drops to
/// zero (or that was interned and never retained) is freed only by
/// [`AttrStore::maintain`], which the RIB runs at the end of each decision run: within a
/// run a handle is never reused for different contents, so comparing handles is as good
/// as comparing contents.
#[derive(Debug, Default)]
pub(crate) struct AttrStore {
    slots: Vec<Slot>,
    free: Vec<u32>,
    index: FxHashMap<ArcKey, AttrId>,
    /// Handles whose count reached zero since the last `maintain`.
    zero: Vec<AttrId>,
    empty: RouteAttrs,
    /// Bumped whenever a slot is freed (caches keyed by handles check it).
    generation: u64,
}

/// `Arc<RouteAttrs>` hashed and compared by value.
#[derive(Debug)]
struct ArcKey(Attrs);

impl PartialEq for ArcKey {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || *self.0 == *other.0
    }
}
impl Eq for ArcKey {}
impl Hash for ArcKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.0.hash(state)
    }
}
impl std::borrow::Borrow<RouteAttrs> for ArcKey {
    fn borrow(&self) -> &RouteAttrs {
        &self.0
    }
}

impl AttrStore {
    /// The handle of `attrs`, inserting it when new. The count is not changed: the caller
    /// retains it for each holder it creates.
    pub fn intern(&mut self, attrs: RouteAttrs) -> AttrId {
        if let Some(&id) = self.index.get(&attrs) {
            return id;
        }
        let a = Arc::new(attrs);
        let id = match self.free.pop() {
            Some(i) => {
                if let Some(slot) = self.slots.get_mut(i as usize) {
                    slot.attrs = Some(a.clone());
                    slot.refs = 0;
                }
                AttrId(NonZeroU32::MIN.saturating_add(i))
            }
            None => {
                self.slots.push(Slot {
                    attrs: Some(a.clone()),
                    refs: 0,
                });
                let n = u32::try_from(self.slots.len())
                    .unwrap_or(u32::MAX)
                    .min(AttrId::MAX_RAW);
                AttrId(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
            }
        };
        self.index.insert(ArcKey(a), id);
        self.zero.push(id);
        id
    }

    /// One more holder of `id`; returns it for convenience.
    pub fn retain(&mut self, id: AttrId) -> AttrId {
        if let Some(slot) = self.slots.get_mut(id.index()) {
            slot.refs = slot.refs.saturating_add(1);
        }
        id
    }

    /// One holder fewer.
    pub fn release(&mut self, id: AttrId) {
        if let Some(slot) = self.slots.get_mut(id.index()) {
            // A saturated count is never decremented (the set stays forever).
            if slot.refs != u32::MAX {
                slot.refs = slot.refs.saturating_sub(1);
                if slot.refs == 0 {
                    self.zero.push(id);
                }
            }
        }
    }

    /// Free the sets no holder references any more.
    pub fn maintain(&mut self) {
        for id in std::mem::take(&mut self.zero) {
            let i = id.index();
            let Some(slot) = self.slots.get_mut(i) else {
                continue;
            };
            if slot.refs == 0 {
                if let Some(a) = slot.attrs.take() {
                    self.index.remove(&*a);
                    self.free.push(i as u32);
                    self.generation += 1;
                }
            }
        }
    }

    /// The attributes behind a handle.
    pub fn get(&self, id: AttrId) -> &RouteAttrs {
        self.slots
            .get(id.index())
            .and_then(|s| s.attrs.as_deref())
            .unwrap_or(&self.empty)
    }

    /// A shared copy of the attributes behind a handle (for callers outside the RIB).
    pub fn arc(&self, id: AttrId) -> Attrs {
        match self.slots.get(id.index()).and_then(|s| s.attrs.as_ref()) {
            Some(a) => a.clone(),
            None => Arc::new(self.empty.clone()),
        }
    }

    /// Number of distinct sets held.
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// (handle, count, live) of every slot, for consistency audits.
    pub fn counts(&self) -> impl Iterator<Item = (AttrId, u32, bool)> + '_ {
        self.slots.iter().enumerate().map(|(i, s)| {
            let n = u32::try_from(i + 1).unwrap_or(u32::MAX);
            (
                AttrId(NonZeroU32::new(n).unwrap_or(NonZeroU32::MAX)),
                s.refs,
                s.attrs.is_some(),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_sets_shared_counted_and_freed() {
        let mut s = AttrStore::default();
        let a = RouteAttrs {
            attrs: PathAttributes {
                med: Some(1),
                ..Default::default()
            },
            next_hop: None,
        };
        let x = s.intern(a.clone());
        s.retain(x);
        let y = s.intern(a.clone());
        s.retain(y);
        assert_eq!(x, y);
        let z = s.intern(RouteAttrs::default());
        assert_ne!(x, z);
        assert_eq!(s.len(), 2);
        assert_eq!(s.get(x), &a);
        // z was never retained: freed at the next maintenance.
        s.maintain();
        assert_eq!(s.len(), 1);
        s.release(x);
        s.maintain();
        assert_eq!(s.len(), 1, "y still holds it");
        s.release(y);
        let g = s.generation();
        // Not reused before maintenance.
        let w = s.intern(RouteAttrs::default());
        assert_ne!(w, x);
        s.maintain();
        assert!(s.generation() > g);
        assert!(s.is_empty_for_test());
        // Freed slots are reused afterwards.
        let v = s.intern(a);
        assert!(v == x || v == w);
    }

    impl AttrStore {
        fn is_empty_for_test(&self) -> bool {
            self.index.is_empty()
        }
    }
}
