//! Prefix-keyed route storage.
//!
//! One [`Table`] per address family, keyed by the family's own prefix type ([`Ipv4Net`] is
//! 5 bytes, [`Ipv6Net`] 17) rather than the wider `IpNet`. Each prefix maps to a [`Dest`]:
//! the candidate paths for it from every peer and local source. That one list *is* the
//! Adj-RIB-In (every received path is kept, with its attributes as received and, when the
//! import policy changed them, as accepted) and the Loc-RIB (the selected paths carry the
//! `BEST`/`MULTIPATH` flags). Keeping one list instead of a table per peer plus a Loc-RIB
//! halves the per-path index cost; per-peer views are produced by scanning.

use std::fmt::Debug;
use std::hash::Hash;

use bgp_proto::Family;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::attrs::Attrs;

/// Index of a peer; 0 is the local pseudo-peer (static, kernel, connected routes).
pub(crate) type PeerIdx = u32;
pub(crate) const LOCAL_PEER: PeerIdx = 0;
pub(crate) const MAX_PEERS: usize = 1 << 24;

/// Path flags (stored in the top byte of [`Path::meta`]).
pub(crate) mod flag {
    /// Graceful restart: the peer went down and the path awaits refresh (RFC 4724).
    pub const STALE: u8 = 1;
    /// Long-lived stale (RFC 9494).
    pub const LLGR: u8 = 2;
    /// Rejected by import policy.
    pub const REJECTED: u8 = 4;
    /// AS_PATH / ORIGINATOR_ID / CLUSTER_LIST loop.
    pub const LOOP: u8 = 8;
    /// Selected best path.
    pub const BEST: u8 = 16;
    /// Member of the multipath (ECMP) set.
    pub const MULTIPATH: u8 = 32;
    /// Passed the eligibility checks in the last decision run (ADD-PATH "all").
    pub const ELIGIBLE: u8 = 64;
}

/// One candidate path: 24 bytes.
#[derive(Clone, Debug)]
pub(crate) struct Path {
    /// Peer index in the low 24 bits, flags in the high 8.
    meta: u32,
    /// Received ADD-PATH id (0 without ADD-PATH); for local routes the source code.
    pub path_id: u32,
    /// Attributes as received.
    pub attrs: Attrs,
    /// Attributes after the import policy, when it changed them.
    pub modified: Option<Attrs>,
}

impl Path {
    pub fn new(
        peer: PeerIdx,
        path_id: u32,
        attrs: Attrs,
        modified: Option<Attrs>,
        flags: u8,
    ) -> Path {
        Path {
            meta: (peer & 0x00FF_FFFF) | (u32::from(flags) << 24),
            path_id,
            attrs,
            modified,
        }
    }
    pub fn peer(&self) -> PeerIdx {
        self.meta & 0x00FF_FFFF
    }
    pub fn flags(&self) -> u8 {
        (self.meta >> 24) as u8
    }
    pub fn has(&self, f: u8) -> bool {
        self.flags() & f != 0
    }
    pub fn set_flags(&mut self, f: u8) {
        self.meta |= u32::from(f) << 24;
    }
    pub fn clear_flags(&mut self, f: u8) {
        self.meta &= !(u32::from(f) << 24);
    }
    /// The attributes the decision process and export use.
    pub fn effective(&self) -> &Attrs {
        self.modified.as_ref().unwrap_or(&self.attrs)
    }
    pub fn selected(&self) -> bool {
        self.has(flag::BEST | flag::MULTIPATH)
    }
    /// Identity of a selected path, for detecting selection changes.
    pub fn signature(&self) -> (u32, u32, usize) {
        (
            self.peer() | (u32::from(self.flags() & (flag::BEST | flag::MULTIPATH)) << 24),
            self.path_id,
            std::sync::Arc::as_ptr(self.effective()) as usize,
        )
    }
}

/// All paths for one prefix: 24 bytes, the single-path case (nearly every prefix on a
/// Calico node or a one-upstream router) inline without allocation.
#[derive(Debug)]
pub(crate) enum Dest {
    One(Path),
    /// Zero or several paths. Boxed so the variant is one pointer and the enum stays 24
    /// bytes (the niche of `Path`'s non-null `Arc` tells the variants apart).
    #[allow(clippy::box_collection)]
    Many(Box<Vec<Path>>),
}

impl Default for Dest {
    fn default() -> Self {
        Dest::Many(Box::default())
    }
}

impl std::ops::Deref for Dest {
    type Target = [Path];
    fn deref(&self) -> &[Path] {
        match self {
            Dest::One(p) => std::slice::from_ref(p),
            Dest::Many(v) => v,
        }
    }
}

impl std::ops::DerefMut for Dest {
    fn deref_mut(&mut self) -> &mut [Path] {
        match self {
            Dest::One(p) => std::slice::from_mut(p),
            Dest::Many(v) => v,
        }
    }
}

impl Dest {
    pub fn push(&mut self, p: Path) {
        match self {
            Dest::Many(v) if v.is_empty() => *self = Dest::One(p),
            Dest::Many(v) => v.push(p),
            Dest::One(_) => {
                let mut v = Vec::with_capacity(2);
                if let Dest::One(old) = std::mem::take(self) {
                    v.push(old);
                }
                v.push(p);
                *self = Dest::Many(Box::new(v));
            }
        }
    }

    fn normalise(&mut self) {
        if let Dest::Many(v) = self {
            if v.len() == 1 {
                if let Some(p) = v.pop() {
                    *self = Dest::One(p);
                }
            }
        }
    }

    pub fn remove(&mut self, i: usize) {
        match self {
            Dest::One(_) if i == 0 => *self = Dest::default(),
            Dest::One(_) => {}
            Dest::Many(v) => {
                if i < v.len() {
                    v.remove(i);
                }
                self.normalise();
            }
        }
    }

    pub fn retain(&mut self, mut keep: impl FnMut(&Path) -> bool) {
        match self {
            Dest::One(p) => {
                if !keep(p) {
                    *self = Dest::default();
                }
            }
            Dest::Many(v) => {
                v.retain(|p| keep(p));
                self.normalise();
            }
        }
    }
}

/// Selection of a prefix before a batch of changes.
pub(crate) type SelSig = SmallVec<[(u32, u32, usize); 2]>;

pub(crate) fn selection_signature(d: &Dest) -> SelSig {
    d.iter()
        .filter(|p| p.selected())
        .map(Path::signature)
        .collect()
}

/// Per-prefix bookkeeping between a change and the next decision run.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    pub old: SelSig,
    /// Re-announce to the FIB even if the selection is unchanged (local route metadata).
    pub force_fib: bool,
}

/// Routes of one family.
#[derive(Debug)]
pub(crate) struct Table<P> {
    pub routes: FxHashMap<P, Dest>,
    pub dirty: FxHashMap<P, Dirty>,
}

impl<P> Default for Table<P> {
    fn default() -> Self {
        Table {
            routes: FxHashMap::default(),
            dirty: FxHashMap::default(),
        }
    }
}

impl<P: Prefix> Table<P> {
    /// Remember the current selection of `p` before it changes.
    pub fn touch(&mut self, p: P) {
        if !self.dirty.contains_key(&p) {
            let old = self
                .routes
                .get(&p)
                .map(selection_signature)
                .unwrap_or_default();
            self.dirty.insert(
                p,
                Dirty {
                    old,
                    force_fib: false,
                },
            );
        }
    }
}

/// Both families' tables.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub v4: Table<Ipv4Net>,
    pub v6: Table<Ipv6Net>,
}

/// Per-peer Adj-RIB-Out: what was last sent, by prefix and outgoing path id.
#[derive(Debug, Default)]
pub(crate) struct AdjOut {
    pub v4: std::collections::BTreeMap<(Ipv4Net, u32), Attrs>,
    pub v6: std::collections::BTreeMap<(Ipv6Net, u32), Attrs>,
}

/// A family's prefix type.
pub(crate) trait Prefix:
    Copy + Eq + Hash + Ord + Debug + Into<IpNet> + Send + Sync + 'static
{
    const FAMILY: Family;
    fn from_net(n: IpNet) -> Option<Self>;
    fn table(t: &Tables) -> &Table<Self>;
    fn table_mut(t: &mut Tables) -> &mut Table<Self>;
    fn out_mut(o: &mut AdjOut) -> &mut std::collections::BTreeMap<(Self, u32), Attrs>;
    /// The same prefix length cut to `len` (for longest match).
    fn truncate(addr: std::net::IpAddr, len: u8) -> Option<Self>;
    const MAX_LEN: u8;
}

impl Prefix for Ipv4Net {
    const FAMILY: Family = Family::IPV4_UNICAST;
    const MAX_LEN: u8 = 32;
    fn from_net(n: IpNet) -> Option<Self> {
        match n {
            IpNet::V4(n) => Some(n),
            IpNet::V6(_) => None,
        }
    }
    fn table(t: &Tables) -> &Table<Self> {
        &t.v4
    }
    fn table_mut(t: &mut Tables) -> &mut Table<Self> {
        &mut t.v4
    }
    fn out_mut(o: &mut AdjOut) -> &mut std::collections::BTreeMap<(Self, u32), Attrs> {
        &mut o.v4
    }
    fn truncate(addr: std::net::IpAddr, len: u8) -> Option<Self> {
        match addr {
            std::net::IpAddr::V4(a) => Ipv4Net::new(a, len).ok().map(|n| n.trunc()),
            std::net::IpAddr::V6(_) => None,
        }
    }
}

impl Prefix for Ipv6Net {
    const FAMILY: Family = Family::IPV6_UNICAST;
    const MAX_LEN: u8 = 128;
    fn from_net(n: IpNet) -> Option<Self> {
        match n {
            IpNet::V6(n) => Some(n),
            IpNet::V4(_) => None,
        }
    }
    fn table(t: &Tables) -> &Table<Self> {
        &t.v6
    }
    fn table_mut(t: &mut Tables) -> &mut Table<Self> {
        &mut t.v6
    }
    fn out_mut(o: &mut AdjOut) -> &mut std::collections::BTreeMap<(Self, u32), Attrs> {
        &mut o.v6
    }
    fn truncate(addr: std::net::IpAddr, len: u8) -> Option<Self> {
        match addr {
            std::net::IpAddr::V6(a) => Ipv6Net::new(a, len).ok().map(|n| n.trunc()),
            std::net::IpAddr::V4(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_dest_are_24_bytes() {
        assert_eq!(std::mem::size_of::<Path>(), 24);
        assert_eq!(std::mem::size_of::<Dest>(), 24);
        assert_eq!(std::mem::size_of::<Ipv4Net>(), 5);
    }

    #[test]
    fn flags_and_peer_packing() {
        let a = std::sync::Arc::new(crate::attrs::RouteAttrs::default());
        let mut p = Path::new(0x00AB_CDEF, 7, a, None, flag::STALE);
        assert_eq!(p.peer(), 0x00AB_CDEF);
        assert!(p.has(flag::STALE));
        p.set_flags(flag::BEST);
        assert!(p.selected());
        p.clear_flags(flag::STALE | flag::BEST);
        assert_eq!(p.flags(), 0);
        assert_eq!(p.peer(), 0x00AB_CDEF);
    }
}

#[cfg(test)]
mod dest_tests {
    use super::*;

    fn p(id: u32) -> Path {
        Path::new(
            1,
            id,
            std::sync::Arc::new(crate::attrs::RouteAttrs::default()),
            None,
            0,
        )
    }

    #[test]
    fn dest_push_remove_retain() {
        let mut d = Dest::default();
        assert!(d.is_empty());
        d.push(p(1));
        assert!(matches!(d, Dest::One(_)));
        d.push(p(2));
        d.push(p(3));
        assert_eq!(
            d.iter().map(|x| x.path_id).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        d.remove(1);
        d.retain(|x| x.path_id != 1);
        assert!(matches!(d, Dest::One(ref x) if x.path_id == 3));
        d.remove(5);
        assert_eq!(d.len(), 1);
        d.remove(0);
        assert!(d.is_empty());
        d.push(p(4));
        d.retain(|_| false);
        assert!(d.is_empty());
    }
}
