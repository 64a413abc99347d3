//! Prefix-keyed route storage.
//!
//! One [`Table`] per address family, keyed by the family's own prefix type ([`Ipv4Net`] is
//! 5 bytes, [`Ipv6Net`] 17) rather than the wider `IpNet`. Each prefix maps to a [`Dest`]:
//! the candidate paths for it from every peer and local source. That one list *is* the
//! Adj-RIB-In (every received path is kept, with its attributes as received and, when the
//! import policy changed them, as accepted) and the Loc-RIB (the selected paths carry the
//! `BEST`/`MULTIPATH` flags). Keeping one list instead of a table per peer plus a Loc-RIB
//! halves the per-path index cost. Per-peer operations find the peer's prefixes through
//! its [`PrefixLog`] (about 5 bytes per IPv4 path) instead of scanning the table.

use std::fmt::Debug;
use std::hash::{BuildHasherDefault, Hash, Hasher};

use bgp_proto::Family;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::attrs::AttrId;
use crate::path_index::{PathIndex, LARGE};

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

/// One candidate path: 20 bytes. It holds one reference on each attribute handle (the RIB
/// releases them when the path goes).
#[derive(Clone, Debug)]
pub(crate) struct Path {
    /// Peer index in the low 24 bits, flags in the high 8.
    meta: u32,
    /// Received ADD-PATH id (0 without ADD-PATH); for local routes the source code.
    pub path_id: u32,
    /// Attributes as received.
    pub attrs: AttrId,
    /// Attributes after the import policy, when it changed them.
    pub modified: Option<AttrId>,
    /// When the path was last changed, in seconds since the RIB's epoch (see
    /// `rib::clock`): 4 bytes where an `Instant` would take 16.
    pub since: u32,
}

impl Path {
    pub fn new(
        peer: PeerIdx,
        path_id: u32,
        attrs: AttrId,
        modified: Option<AttrId>,
        flags: u8,
    ) -> Path {
        Path {
            meta: (peer & 0x00FF_FFFF) | (u32::from(flags) << 24),
            path_id,
            attrs,
            modified,
            since: 0,
        }
    }
    /// The path as last changed at `since` (seconds since the RIB's epoch).
    pub fn changed_at(mut self, since: u32) -> Path {
        self.since = since;
        self
    }
    /// What the path carries is what `old` carried: the same attributes as received and as
    /// accepted, and the same import verdict. Such a re-announcement keeps the old path's
    /// time, as BIRD keeps its route's `lastmod` when `rte_same()` holds (nest/rt-table.c
    /// `rte_recalculate`, "No changes, ignore the new route and refresh the old one").
    pub fn same_as(&self, old: &Path) -> bool {
        self.attrs == old.attrs
            && self.modified == old.modified
            && self.is_rejected() == old.is_rejected()
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
    pub fn effective(&self) -> AttrId {
        self.modified.unwrap_or(self.attrs)
    }
    pub fn selected(&self) -> bool {
        self.has(flag::BEST | flag::MULTIPATH)
    }
    /// Refused by import policy or loop detection: held in the Adj-RIB-In, never used.
    pub fn is_rejected(&self) -> bool {
        self.has(flag::REJECTED | flag::LOOP)
    }
    /// Identity of a selected path, for detecting selection changes: everything the FIB
    /// entry and the export of a best or multipath path depend on (source, path id,
    /// attributes, role, and the long-lived stale mark that restricts its export).
    pub fn signature(&self) -> (u32, u32, AttrId) {
        let kept = flag::BEST | flag::MULTIPATH | flag::LLGR;
        (
            self.peer() | (u32::from(self.flags() & kept) << 24),
            self.path_id,
            self.effective(),
        )
    }
}

/// All paths for one prefix: 24 bytes, the single-path case (nearly every prefix on a
/// Calico node or a one-upstream router) inline without allocation, two paths in one
/// allocation.
#[derive(Debug)]
pub(crate) enum Dest {
    One(Path),
    /// No path (`None`, no allocation) or several. The niche of `Path`'s non-zero handle
    /// tells the variants apart, so the enum is no larger than a path rounded up to the
    /// box's alignment.
    Many(Option<Box<SmallVec<[Path; 2]>>>),
}

impl Default for Dest {
    fn default() -> Self {
        Dest::Many(None)
    }
}

impl std::ops::Deref for Dest {
    type Target = [Path];
    fn deref(&self) -> &[Path] {
        match self {
            Dest::One(p) => std::slice::from_ref(p),
            Dest::Many(Some(v)) => v,
            Dest::Many(None) => &[],
        }
    }
}

impl std::ops::DerefMut for Dest {
    fn deref_mut(&mut self) -> &mut [Path] {
        match self {
            Dest::One(p) => std::slice::from_mut(p),
            Dest::Many(Some(v)) => v,
            Dest::Many(None) => &mut [],
        }
    }
}

impl Dest {
    pub fn push(&mut self, p: Path) {
        match self {
            Dest::Many(None) => *self = Dest::One(p),
            Dest::Many(Some(v)) => v.push(p),
            Dest::One(_) => {
                if let Dest::One(old) = std::mem::take(self) {
                    let mut v = SmallVec::new();
                    v.push(old);
                    v.push(p);
                    *self = Dest::Many(Some(Box::new(v)));
                }
            }
        }
    }

    fn normalise(&mut self) {
        if let Dest::Many(Some(v)) = self {
            match v.len() {
                0 => *self = Dest::Many(None),
                1 => {
                    if let Some(p) = v.pop() {
                        *self = Dest::One(p);
                    }
                }
                _ => {}
            }
        }
    }

    /// Remove path `i` by moving the last one into its place (O(1); the order of paths
    /// carries no meaning, see [`selection_signature`]).
    pub fn swap_remove(&mut self, i: usize) -> Option<Path> {
        match self {
            Dest::Many(Some(v)) if i < v.len() => {
                let p = v.swap_remove(i);
                self.normalise();
                Some(p)
            }
            _ => self.remove(i),
        }
    }

    /// Remove path `i`, returning it (its attribute references go with it).
    pub fn remove(&mut self, i: usize) -> Option<Path> {
        match self {
            Dest::One(_) if i == 0 => match std::mem::take(self) {
                Dest::One(p) => Some(p),
                Dest::Many(_) => None,
            },
            Dest::One(_) | Dest::Many(None) => None,
            Dest::Many(Some(v)) => {
                let p = (i < v.len()).then(|| v.remove(i));
                self.normalise();
                p
            }
        }
    }

    /// Keep the paths for which `keep` holds; `gone` sees each removed one.
    pub fn retain(&mut self, mut keep: impl FnMut(&Path) -> bool, mut gone: impl FnMut(Path)) {
        match self {
            Dest::One(p) => {
                if !keep(p) {
                    if let Dest::One(p) = std::mem::take(self) {
                        gone(p);
                    }
                }
            }
            Dest::Many(None) => {}
            Dest::Many(Some(v)) => {
                // One pass, order kept: linear however many paths go.
                let all = std::mem::take(&mut **v);
                for p in all {
                    if keep(&p) {
                        v.push(p);
                    } else {
                        gone(p);
                    }
                }
                self.normalise();
            }
        }
    }
}

/// Selection of a prefix before a batch of changes.
pub(crate) type SelSig = SmallVec<[(u32, u32, AttrId); 2]>;

/// The selected paths' signatures, sorted: the same whatever the order of the paths in
/// the destination (removals from large ones reorder them).
pub(crate) fn selection_signature(d: &Dest) -> SelSig {
    match d {
        // The common single-path case without the generic collect.
        Dest::One(p) => {
            let mut s = SelSig::new();
            if p.selected() {
                s.push(p.signature());
            }
            s
        }
        Dest::Many(_) => {
            let mut s: SelSig = d
                .iter()
                .filter(|p| p.selected())
                .map(Path::signature)
                .collect();
            s.sort_unstable();
            s
        }
    }
}

/// Per-prefix bookkeeping between a change and the next decision run.
#[derive(Debug, Default)]
pub(crate) struct Dirty {
    pub old: SelSig,
    /// Re-announce to the FIB even if the selection is unchanged (local route metadata,
    /// FIB policy change).
    pub force_fib: bool,
    /// Re-run the export to every peer even if the selection is unchanged (local route
    /// metadata that export policy may match, a source peer's router id).
    pub force_export: bool,
}

/// Prefixes changed since the last decision run, in the order they were first touched
/// (deterministic for a given sequence of calls, and no sort needed).
#[derive(Debug)]
pub(crate) struct DirtySet<P> {
    index: FxHashMap<P, u32>,
    list: Vec<(P, Option<Dirty>)>,
}

impl<P> Default for DirtySet<P> {
    fn default() -> Self {
        DirtySet {
            index: FxHashMap::default(),
            list: Vec::new(),
        }
    }
}

impl<P: Prefix> DirtySet<P> {
    /// Record `p` as changed unless it already is (the first record keeps the old selection).
    pub fn insert_with(&mut self, p: P, make: impl FnOnce() -> Dirty) {
        if let std::collections::hash_map::Entry::Vacant(v) = self.index.entry(p) {
            v.insert(u32::try_from(self.list.len()).unwrap_or(u32::MAX));
            self.list.push((p, Some(make())));
        }
    }

    pub fn get_mut(&mut self, p: &P) -> Option<&mut Dirty> {
        let i = *self.index.get(p)?;
        self.list.get_mut(i as usize).and_then(|e| e.1.as_mut())
    }

    /// Take one prefix out (it is being decided now).
    pub fn remove(&mut self, p: &P) -> Option<Dirty> {
        let i = self.index.remove(p)?;
        self.list.get_mut(i as usize).and_then(|e| e.1.take())
    }

    /// Everything recorded, in first-touch order (entries already taken out are `None`).
    /// Hand the vector back with [`DirtySet::recycle`] to keep its allocation.
    pub fn take_all(&mut self) -> Vec<(P, Option<Dirty>)> {
        self.index.clear();
        std::mem::take(&mut self.list)
    }

    /// Reuse an emptied vector from [`DirtySet::take_all`] for the next changes.
    pub fn recycle(&mut self, mut list: Vec<(P, Option<Dirty>)>) {
        if self.list.is_empty() {
            list.clear();
            self.list = list;
        }
    }
}

/// A family's route table: prefix → paths, hashed by [`PrefixHasher`].
pub(crate) type Routes<P> = std::collections::HashMap<P, Dest, BuildHasherDefault<PrefixHasher>>;

/// Consecutive prefixes of one length in neighbouring slots.
///
/// A full table arrives mostly in address order (peers dump their tables sorted) and
/// the prefixes of one UPDATE are usually neighbours. With a scattering hash every
/// prefix costs a cache miss in a 1M-entry table, once when stored and again when
/// decided. Here the last [`RUN_BITS`] bits of the network part pick the position inside
/// a run of slots and only the rest (with the length) is mixed, so 2^RUN_BITS
/// consecutive /24s (or /32s, /64s...) share a few cache lines. Runs are as short as
/// the table's probe groups (16 slots), so they do not build long clusters; the top
/// bits (the tag compared before keys) mix the position too, so keys of one run do not
/// all share a tag.
#[derive(Default)]
pub(crate) struct PrefixHasher {
    /// Address bytes, right-aligned, and how many were written.
    addr: u128,
    bytes: u32,
    len: u8,
}

const RUN_BITS: u32 = 4;

impl Hasher for PrefixHasher {
    fn write(&mut self, bytes: &[u8]) {
        // The address octets, in order.
        for &b in bytes {
            self.addr = (self.addr << 8) | u128::from(b);
        }
        self.bytes = self.bytes.saturating_add(bytes.len() as u32);
    }
    fn write_u8(&mut self, len: u8) {
        self.len = len;
    }
    fn write_u32(&mut self, x: u32) {
        // `Ipv4Addr` hashes its octets as one native-endian integer.
        self.addr = (self.addr << 32) | u128::from(u32::from_be_bytes(x.to_ne_bytes()));
        self.bytes = self.bytes.saturating_add(4);
    }
    fn write_u128(&mut self, x: u128) {
        self.write(&x.to_ne_bytes());
    }
    fn write_usize(&mut self, _: usize) {
        // The length prefix of the octet array: constant per family.
    }
    fn finish(&self) -> u64 {
        let mix = |x: u64| {
            let x = (x ^ (x >> 31)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            x ^ (x >> 29)
        };
        let len = u64::from(self.len);
        let (pos, m) = if self.bytes <= 4 {
            // IPv4 in 64-bit arithmetic.
            let host = 32u32.saturating_sub(u32::from(self.len));
            let network = (self.addr as u64).checked_shr(host).unwrap_or(0);
            let pos = network & ((1 << RUN_BITS) - 1);
            (pos, mix((network >> RUN_BITS) ^ (len << 40)))
        } else {
            let width = (self.bytes * 8).min(128);
            let host = width.saturating_sub(u32::from(self.len));
            let network = self.addr.checked_shr(host).unwrap_or(0);
            let pos = (network & ((1 << RUN_BITS) - 1)) as u64;
            let block = network >> RUN_BITS;
            (
                pos,
                mix(block as u64 ^ mix((block >> 64) as u64 ^ (len << 40))),
            )
        };
        const LOW: u64 = (1 << 57) - 1;
        let tag = mix(m ^ pos) & !LOW;
        (m.wrapping_add(pos) & LOW) | tag
    }
}

/// Routes of one family.
#[derive(Debug)]
pub(crate) struct Table<P> {
    pub routes: Routes<P>,
    pub dirty: DirtySet<P>,
    /// Indexes of the destinations with many paths.
    pub large: LargeDests<P>,
}

impl<P> Default for Table<P> {
    fn default() -> Self {
        Table {
            routes: Routes::default(),
            dirty: DirtySet::default(),
            large: LargeDests(FxHashMap::default()),
        }
    }
}

/// The [`PathIndex`]es of the destinations with at least [`LARGE`] paths, built when
/// first needed and kept up to date by the operations below; anything else that
/// changes a destination's paths calls [`LargeDests::forget`] (the index is rebuilt,
/// O(paths), at its next use).
#[derive(Debug)]
pub(crate) struct LargeDests<P>(FxHashMap<P, PathIndex>);

fn keys(dest: &Dest) -> impl Iterator<Item = (u32, u32)> + '_ {
    dest.iter().map(|x| (x.peer(), x.path_id))
}

impl<P: Prefix> LargeDests<P> {
    /// The index of a large destination, checked against it.
    fn index(&mut self, pfx: P, dest: &Dest) -> Option<&mut PathIndex> {
        if dest.len() < LARGE {
            if !self.0.is_empty() {
                self.0.remove(&pfx);
            }
            return None;
        }
        let ix = self
            .0
            .entry(pfx)
            .or_insert_with(|| PathIndex::build(keys(dest)));
        if ix.len() != dest.len() {
            *ix = PathIndex::build(keys(dest));
        }
        Some(ix)
    }

    /// Position of `peer`'s path `id` in `dest` (the paths at `pfx`).
    pub fn position(&mut self, pfx: P, dest: &Dest, peer: PeerIdx, id: u32) -> Option<usize> {
        let is = |x: &Path| x.peer() == peer && x.path_id == id;
        match self.index(pfx, dest) {
            Some(ix) => ix.find((peer, id)).filter(|&i| dest.get(i).is_some_and(is)),
            None => dest.iter().position(is),
        }
    }

    /// How many paths `peer` has in `dest`.
    pub fn paths_of(&mut self, pfx: P, dest: &Dest, peer: PeerIdx) -> usize {
        match self.index(pfx, dest) {
            Some(ix) => ix.paths_of(peer),
            None => dest.iter().filter(|x| x.peer() == peer).count(),
        }
    }

    /// Add `path` to `dest`.
    pub fn push(&mut self, pfx: P, dest: &mut Dest, path: Path) {
        let key = (path.peer(), path.path_id);
        dest.push(path);
        if let Some(ix) = self.0.get_mut(&pfx) {
            ix.insert(key, dest.len() - 1);
        }
    }

    /// Remove path `i` of `dest`: O(1) in an indexed destination (the last path takes
    /// its place), order kept in a small one.
    pub fn remove(&mut self, pfx: P, dest: &mut Dest, i: usize) -> Option<Path> {
        match self.0.get_mut(&pfx) {
            Some(ix) if dest.len() >= LARGE => {
                let gone = dest.swap_remove(i)?;
                let moved = dest.get(i).map(|x| (x.peer(), x.path_id));
                ix.swap_removed((gone.peer(), gone.path_id), moved);
                Some(gone)
            }
            _ => {
                self.forget(pfx);
                dest.remove(i)
            }
        }
    }

    /// `pfx`'s paths changed otherwise (or it has none any more).
    pub fn forget(&mut self, pfx: P) {
        if !self.0.is_empty() {
            self.0.remove(&pfx);
        }
    }
}

impl<P: Prefix> Table<P> {
    /// Remember the current selection of `p` before it changes.
    pub fn touch(&mut self, p: P) {
        let routes = &self.routes;
        self.dirty.insert_with(p, || Dirty {
            old: routes.get(&p).map(selection_signature).unwrap_or_default(),
            ..Dirty::default()
        });
    }
}

/// Both families' tables.
#[derive(Debug, Default)]
pub(crate) struct Tables {
    pub v4: Table<Ipv4Net>,
    pub v6: Table<Ipv6Net>,
}

/// The prefixes where one peer has paths, in one family: an append-only log (5 bytes per
/// IPv4 entry) plus an exact path count. Withdrawals leave their entry behind and a prefix
/// re-announced after a withdrawal appears twice; [`compact`](PrefixLog::compact) drops
/// both kinds, and runs by itself once the log is twice as long as needed, so the log
/// stays within about twice the peer's prefix count and a push costs amortised O(log n).
/// It lets peer-wide operations (session down, graceful-restart sweeps, soft
/// reconfiguration, `peer_info`) visit the peer's prefixes instead of the whole table.
///
/// It also counts the peer's paths, and those of them refused by import policy or loop
/// detection, so that `show peers` and the max-prefix check answer in constant time.
#[derive(Debug)]
pub(crate) struct PrefixLog<P> {
    list: Vec<P>,
    /// Paths of the peer in the table (several per prefix with ADD-PATH).
    pub live: usize,
    /// Of those, refused by import policy or loop detection ([`Path::is_rejected`]).
    pub rejected: usize,
}

impl<P> Default for PrefixLog<P> {
    fn default() -> Self {
        PrefixLog {
            list: Vec::new(),
            live: 0,
            rejected: 0,
        }
    }
}

impl<P: Prefix> PrefixLog<P> {
    /// A path of the peer was added at `p`.
    pub fn added(&mut self, p: P, routes: &Routes<P>, peer: PeerIdx, rejected: bool) {
        self.live += 1;
        self.rejected += usize::from(rejected);
        self.list.push(p);
        if self.list.len() > 2 * self.live + 1024 {
            self.compact(routes, peer);
        }
    }

    /// `n` paths of the peer were removed, `rejected` of them refused ones.
    pub fn removed(&mut self, n: usize, rejected: usize) {
        self.live = self.live.saturating_sub(n);
        self.rejected = self.rejected.saturating_sub(rejected);
    }

    /// A path of the peer was replaced or re-evaluated: refused before, and now.
    pub fn changed(&mut self, was: bool, now: bool) {
        match (was, now) {
            (false, true) => self.rejected += 1,
            (true, false) => self.rejected = self.rejected.saturating_sub(1),
            _ => {}
        }
    }

    /// Keep each prefix still holding a path of `peer` once, sorted.
    pub fn compact(&mut self, routes: &Routes<P>, peer: PeerIdx) {
        self.list.retain(|p| {
            routes
                .get(p)
                .is_some_and(|d| d.iter().any(|x| x.peer() == peer))
        });
        self.list.sort_unstable();
        self.list.dedup();
        if self.list.capacity() > 4 * self.list.len() + 1024 {
            self.list.shrink_to(2 * self.list.len());
        }
    }

    /// The peer's prefixes (compacted first), each once, sorted.
    pub fn prefixes(&mut self, routes: &Routes<P>, peer: PeerIdx) -> Vec<P> {
        self.compact(routes, peer);
        self.list.clone()
    }

    /// The logged prefixes, each once, sorted, without compacting (some may hold no path
    /// of the peer any more).
    pub fn snapshot(&self) -> Vec<P> {
        let mut v = self.list.clone();
        v.sort_unstable();
        v.dedup();
        v
    }

    /// Entries held (live or not).
    #[cfg(test)]
    pub fn entries(&self) -> usize {
        self.list.len()
    }
}

/// Both families' [`PrefixLog`]s of a peer.
#[derive(Debug, Default)]
pub(crate) struct PeerPrefixes {
    pub v4: PrefixLog<Ipv4Net>,
    pub v6: PrefixLog<Ipv6Net>,
}

/// A family's prefix type.
pub(crate) trait Prefix:
    Copy + Eq + Hash + Ord + Debug + Into<IpNet> + Send + Sync + 'static
{
    const FAMILY: Family;
    /// The family's bit in per-family bit sets.
    const BIT: u8;
    fn from_net(n: IpNet) -> Option<Self>;
    fn table(t: &Tables) -> &Table<Self>;
    fn table_mut(t: &mut Tables) -> &mut Table<Self>;
    fn log_mut(l: &mut PeerPrefixes) -> &mut PrefixLog<Self>;
    fn log(l: &PeerPrefixes) -> &PrefixLog<Self>;
    /// An integer with the same order as the prefix (address, then length), cheaper to
    /// compare in B-trees and sorts.
    type Key: Copy + Ord + Debug + Send + Sync;
    fn key(self) -> Self::Key;
    /// The same prefix length cut to `len` (for longest match).
    fn truncate(addr: std::net::IpAddr, len: u8) -> Option<Self>;
    const MAX_LEN: u8;
}

impl Prefix for Ipv4Net {
    type Key = u64;
    fn key(self) -> u64 {
        (u64::from(u32::from(self.addr())) << 8) | u64::from(self.prefix_len())
    }
    const FAMILY: Family = Family::IPV4_UNICAST;
    const BIT: u8 = 1;
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
    fn log_mut(l: &mut PeerPrefixes) -> &mut PrefixLog<Self> {
        &mut l.v4
    }
    fn log(l: &PeerPrefixes) -> &PrefixLog<Self> {
        &l.v4
    }
    fn truncate(addr: std::net::IpAddr, len: u8) -> Option<Self> {
        match addr {
            std::net::IpAddr::V4(a) => Ipv4Net::new(a, len).ok().map(|n| n.trunc()),
            std::net::IpAddr::V6(_) => None,
        }
    }
}

impl Prefix for Ipv6Net {
    type Key = (u128, u8);
    fn key(self) -> (u128, u8) {
        (u128::from(self.addr()), self.prefix_len())
    }
    const FAMILY: Family = Family::IPV6_UNICAST;
    const BIT: u8 = 2;
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
    fn log_mut(l: &mut PeerPrefixes) -> &mut PrefixLog<Self> {
        &mut l.v6
    }
    fn log(l: &PeerPrefixes) -> &PrefixLog<Self> {
        &l.v6
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
    fn path_is_20_bytes_and_dest_24() {
        // 16 and 16 before paths carried their time (`since`).
        assert_eq!(std::mem::size_of::<Path>(), 20);
        assert_eq!(std::mem::size_of::<Dest>(), 24);
        assert_eq!(std::mem::size_of::<Ipv4Net>(), 5);
    }

    #[test]
    fn flags_and_peer_packing() {
        let mut store = crate::attrs::AttrStore::default();
        let a = store.intern(crate::attrs::RouteAttrs::default());
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
        let mut store = crate::attrs::AttrStore::default();
        let a = store.intern(crate::attrs::RouteAttrs::default());
        Path::new(1, id, a, None, 0)
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
        assert_eq!(d.remove(1).map(|x| x.path_id), Some(2));
        let mut gone = Vec::new();
        d.retain(|x| x.path_id != 1, |x| gone.push(x.path_id));
        assert_eq!(gone, vec![1]);
        assert!(matches!(d, Dest::One(ref x) if x.path_id == 3));
        assert!(d.remove(5).is_none());
        assert_eq!(d.len(), 1);
        assert_eq!(d.remove(0).map(|x| x.path_id), Some(3));
        assert!(d.is_empty());
        d.push(p(4));
        d.retain(|_| false, |x| gone.push(x.path_id));
        assert!(d.is_empty());
        assert_eq!(gone, vec![1, 4]);
    }
}

#[cfg(test)]
mod key_tests {
    use super::*;

    #[test]
    fn keys_keep_order() {
        let a: Ipv4Net = "10.0.0.0/8".parse().unwrap();
        let b: Ipv4Net = "10.0.0.0/24".parse().unwrap();
        let c: Ipv4Net = "10.0.1.0/24".parse().unwrap();
        assert!(a.key() < b.key() && b.key() < c.key());
        assert_eq!(a.cmp(&b), a.key().cmp(&b.key()));
        let v: Ipv6Net = "2001:db8::/32".parse().unwrap();
        let w: Ipv6Net = "2001:db8::/48".parse().unwrap();
        assert!(v.key() < w.key());
    }
}

#[cfg(test)]
mod log_tests {
    use super::*;

    #[test]
    fn prefix_log_stays_bounded_under_churn() {
        let mut store = crate::attrs::AttrStore::default();
        let a = store.intern(crate::attrs::RouteAttrs::default());
        let mut routes: Routes<Ipv4Net> = Routes::default();
        let mut log = PrefixLog::<Ipv4Net>::default();
        let pfx = |i: u32| Ipv4Net::new(std::net::Ipv4Addr::from(i << 8), 24).unwrap();
        for i in 0..100 {
            routes
                .entry(pfx(i))
                .or_default()
                .push(Path::new(3, 0, a, None, 0));
            log.added(pfx(i), &routes, 3, false);
        }
        // Withdraw and re-announce the same prefixes many times: the log compacts itself.
        for round in 0..50 {
            for i in 0..100 {
                routes.remove(&pfx(i));
                log.removed(1, 0);
                routes
                    .entry(pfx(i))
                    .or_default()
                    .push(Path::new(3, round, a, None, 0));
                log.added(pfx(i), &routes, 3, false);
            }
            assert!(log.entries() <= 2 * log.live + 1025, "{}", log.entries());
        }
        assert_eq!(log.live, 100);
        // Another peer's path does not count; a prefix left without ours is dropped.
        routes.insert(pfx(5), Dest::One(Path::new(4, 0, a, None, 0)));
        log.removed(1, 0);
        let p = log.prefixes(&routes, 3);
        assert_eq!(p.len(), 99);
        assert!(p.windows(2).all(|w| w[0] < w[1]));
        assert!(!p.contains(&pfx(5)));
    }
}

#[cfg(test)]
mod hash_tests {
    use super::*;
    use std::hash::BuildHasher;

    fn h<P: Hash>(p: P) -> u64 {
        BuildHasherDefault::<PrefixHasher>::default().hash_one(p)
    }

    #[test]
    fn consecutive_prefixes_hash_to_consecutive_slots() {
        let v4 = |a: u32, l: u8| Ipv4Net::new(std::net::Ipv4Addr::from(a), l).unwrap();
        let mask = (1u64 << 20) - 1;
        // 16 consecutive /24s: one run (low bits consecutive), tags not all equal.
        let base = h(v4(0x0A00_0000, 24));
        let mut tags = std::collections::HashSet::new();
        for i in 0..16u32 {
            let x = h(v4(0x0A00_0000 + (i << 8), 24));
            assert_eq!(x.wrapping_sub(base) & mask, u64::from(i));
            tags.insert(x >> 57);
        }
        assert!(tags.len() > 4);
        // Same address, other length; other runs: scattered.
        assert_ne!(h(v4(0x0A00_0000, 16)) & mask, base & mask);
        assert_ne!(h(v4(0x0A00_1000, 24)) & mask, (base + 16) & mask);
        // /32s and IPv6 prefixes run the same way.
        let a = h(v4(0xC0A8_0100, 32));
        assert_eq!(h(v4(0xC0A8_0101, 32)).wrapping_sub(a) & mask, 1);
        let v6 = |a: u128, l: u8| Ipv6Net::new(std::net::Ipv6Addr::from(a), l).unwrap();
        let b = h(v6(0x2001_0db8 << 96, 64));
        assert_eq!(
            h(v6((0x2001_0db8 << 96) | (1 << 64), 64)).wrapping_sub(b) & mask,
            1
        );
        assert_ne!(h(v6(0, 0)), h(v4(0, 0)) ^ 1);
    }
}
