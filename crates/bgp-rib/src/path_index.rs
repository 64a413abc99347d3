//! An index of the paths of one large destination: (peer, path id) → position, and paths
//! per peer.
//!
//! Nearly every prefix has one or a few paths and is searched by a scan. With ADD-PATH
//! a peer may send many paths for one prefix (RFC 7911 sets no limit), and a scan per
//! received path makes storing n paths cost n²: 200,000 path ids for one /32 froze the
//! RIB for minutes. Destinations with at least [`LARGE`] paths therefore get this index
//! (kept beside the route table, only for them), so finding, adding and removing a path
//! and counting a peer's paths there cost O(1). It knows paths only by their (peer, path
//! id) key and position, so it does not depend on the table's types.

use rustc_hash::FxHashMap;

/// Destinations with at least this many paths are indexed.
pub(crate) const LARGE: usize = 32;

/// (peer index, path id) → position in the destination, and the number of paths per peer.
#[derive(Debug, Default)]
pub(crate) struct PathIndex {
    pos: FxHashMap<(u32, u32), u32>,
    per_peer: FxHashMap<u32, u32>,
}

impl PathIndex {
    /// The index of the paths `keys`, in destination order.
    pub fn build(keys: impl Iterator<Item = (u32, u32)>) -> PathIndex {
        let mut ix = PathIndex::default();
        for (i, k) in keys.enumerate() {
            ix.insert(k, i);
        }
        ix
    }

    /// Paths indexed.
    pub fn len(&self) -> usize {
        self.pos.len()
    }

    /// Position of the path `key`.
    pub fn find(&self, key: (u32, u32)) -> Option<usize> {
        self.pos.get(&key).map(|&p| p as usize)
    }

    /// Paths of `peer`.
    pub fn paths_of(&self, peer: u32) -> usize {
        self.per_peer.get(&peer).map_or(0, |&n| n as usize)
    }

    /// A path `key` was stored at `at`.
    pub fn insert(&mut self, key: (u32, u32), at: usize) {
        let at = u32::try_from(at).unwrap_or(u32::MAX);
        if self.pos.insert(key, at).is_none() {
            *self.per_peer.entry(key.0).or_default() += 1;
        }
    }

    /// The path `key` was removed by swapping the last one (`moved`, now at its
    /// position) into its place.
    pub fn swap_removed(&mut self, key: (u32, u32), moved: Option<(u32, u32)>) {
        let Some(at) = self.pos.remove(&key) else {
            return;
        };
        if let Some(n) = self.per_peer.get_mut(&key.0) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_peer.remove(&key.0);
            }
        }
        if let Some(m) = moved.filter(|m| *m != key) {
            self.pos.insert(m, at);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_counts_and_follows_swap_removal() {
        let keys: Vec<(u32, u32)> = (0..100).map(|i| (1 + i % 3, i)).collect();
        let mut ix = PathIndex::build(keys.iter().copied());
        assert_eq!(ix.len(), 100);
        assert_eq!(ix.find((2, 1)), Some(1));
        assert_eq!(ix.find((1, 1)), None);
        assert_eq!(
            (ix.paths_of(1), ix.paths_of(2), ix.paths_of(3)),
            (34, 33, 33)
        );
        // Remove (2, 1) at position 1; the last path (1, 99) moves there.
        ix.swap_removed((2, 1), Some((1, 99)));
        assert_eq!(ix.find((1, 99)), Some(1));
        assert_eq!(ix.find((2, 1)), None);
        assert_eq!(ix.paths_of(2), 32);
        // Removing the last path moves nothing.
        ix.swap_removed((3, 98), Some((3, 98)));
        assert_eq!(ix.find((3, 98)), None);
        assert_eq!(ix.len(), 98);
        ix.insert((9, 7), 98);
        assert_eq!((ix.find((9, 7)), ix.paths_of(9)), (Some(98), 1));
        // A missing key changes nothing.
        ix.swap_removed((5, 5), None);
        assert_eq!(ix.len(), 99);
    }
}
