//! Names of the things the node layer tracks: [`PeerId`] for a configured peer (the same in
//! the peer driver, the RIB driver and every message between them) and [`ConnId`] for one
//! transport connection of a peer.

use std::fmt;

/// A configured peer. Its index is reused after the peer is removed, with a new
/// generation, so a late message of a removed peer never reaches its successor.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PeerId {
    index: u32,
    generation: u32,
}

impl PeerId {
    /// The index: small, dense, for tables indexed by peer.
    pub fn index(self) -> usize {
        self.index as usize
    }
}

impl fmt::Display for PeerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "peer#{}.{}", self.index, self.generation)
    }
}

/// Hands out [`PeerId`]s: the lowest free index, in a generation newer than any earlier
/// holder of that index.
#[derive(Clone, Debug, Default)]
pub struct PeerIds {
    /// Per index: its current generation and whether it is in use.
    slots: Vec<(u32, bool)>,
}

impl PeerIds {
    /// An id for a new peer.
    pub fn allocate(&mut self) -> PeerId {
        let free = self.slots.iter().position(|(_, used)| !used);
        let index = match free {
            Some(i) => i,
            None => {
                self.slots.push((0, false));
                self.slots.len() - 1
            }
        };
        let generation = match self.slots.get_mut(index) {
            Some(slot) => {
                slot.1 = true;
                slot.0
            }
            None => 0,
        };
        PeerId {
            index: u32::try_from(index).unwrap_or(u32::MAX),
            generation,
        }
    }

    /// The peer is gone: its index may be handed out again, in the next generation.
    /// Releasing an id twice, or one not allocated here, does nothing.
    pub fn release(&mut self, id: PeerId) {
        if let Some(slot) = self.slots.get_mut(id.index()) {
            if slot.1 && slot.0 == id.generation {
                slot.0 = slot.0.wrapping_add(1);
                slot.1 = false;
            }
        }
    }
}

/// One transport connection of a peer driver (unique within that driver).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub(crate) u64);

impl fmt::Display for ConnId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "conn#{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_are_reused_in_a_new_generation() {
        let mut ids = PeerIds::default();
        let a = ids.allocate();
        let b = ids.allocate();
        assert_eq!((a.index(), b.index()), (0, 1));
        ids.release(a);
        ids.release(a);
        let c = ids.allocate();
        assert_eq!(c.index(), 0);
        assert_ne!(c, a);
        // A stale release does not free the index its successor holds.
        ids.release(a);
        assert_eq!(ids.allocate().index(), 2);
    }
}
