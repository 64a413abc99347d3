//! Interned route attributes.
//!
//! Full tables carry far fewer distinct attribute sets than prefixes (18k sets for 113k routes
//! in the 2002 RIS table, one set for a synthetic 1M table), so every path holds an
//! [`Attrs`] (`Arc<RouteAttrs>`) taken from an [`Interner`]: identical sets are stored once and
//! a path costs one pointer. Outgoing attribute sets are interned in the same table, so a route
//! reflector telling 1000 clients the same thing stores it once.
//!
//! The interner holds one strong reference itself; [`Interner::collect`] drops the sets nobody
//! else references. The RIB calls it when enough paths were released since the last pass that
//! the amortised cost stays constant per update.

use std::hash::{Hash, Hasher};
use std::sync::Arc;

use bgp_proto::{MpNextHop, PathAttributes};
use rustc_hash::FxHashSet;

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

/// A shared, interned attribute set.
pub type Attrs = Arc<RouteAttrs>;

/// Hash-consing table of attribute sets.
#[derive(Default, Debug)]
pub struct Interner {
    set: FxHashSet<ArcKey>,
    released: usize,
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

impl Interner {
    pub fn new() -> Self {
        Self::default()
    }

    /// The shared copy of `attrs`, inserting it when new.
    pub fn intern(&mut self, attrs: RouteAttrs) -> Attrs {
        if let Some(k) = self.set.get(&attrs) {
            return k.0.clone();
        }
        let a = Arc::new(attrs);
        self.set.insert(ArcKey(a.clone()));
        a
    }

    /// Like [`Interner::intern`] but borrows, cloning only when the set is new.
    pub fn intern_ref(&mut self, attrs: &RouteAttrs) -> Attrs {
        if let Some(k) = self.set.get(attrs) {
            return k.0.clone();
        }
        self.intern(attrs.clone())
    }

    /// Record that `n` references were dropped; collects when it pays off.
    pub fn note_released(&mut self, n: usize) {
        self.released += n;
        if self.released > 4096 && self.released > self.set.len() {
            self.collect();
        }
    }

    /// Drop every set only the interner still references.
    pub fn collect(&mut self) {
        self.set.retain(|k| Arc::strong_count(&k.0) > 1);
        self.released = 0;
    }

    /// Number of distinct sets held.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identical_sets_shared_and_collected() {
        let mut i = Interner::new();
        let a = RouteAttrs {
            attrs: PathAttributes {
                med: Some(1),
                ..Default::default()
            },
            next_hop: None,
        };
        let x = i.intern(a.clone());
        let y = i.intern_ref(&a);
        assert!(Arc::ptr_eq(&x, &y));
        let z = i.intern(RouteAttrs::default());
        assert!(!Arc::ptr_eq(&x, &z));
        assert_eq!(i.len(), 2);
        drop(z);
        i.collect();
        assert_eq!(i.len(), 1);
        drop((x, y));
        i.collect();
        assert!(i.is_empty());
    }
}
