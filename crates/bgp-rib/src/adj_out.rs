//! A peer's Adj-RIB-Out (RFC 4271 3.2): what the peer has been told, and what is still to
//! be told, per NLRI.
//!
//! Each NLRI the peer holds, or is to be told about, has one [`OutEntry`]: the attributes
//! last sent for it (`sent`) and the state queued for it (`queued`). A change computed by
//! the decision process or a policy change only sets `queued`; an NLRI changing many
//! times before the peer reads takes one entry and goes out once, in its latest state,
//! and one that comes and goes before the peer was told leaves nothing behind. The queue
//! lists the NLRIs with a queued state, oldest first: a dirty set, not a log of changes.
//! It may hold keys whose change was cancelled; it is compacted once those are as many
//! as the live ones, so it stays within twice the queued NLRIs (plus a constant). What
//! one peer can have queued is thus bounded by the table (one entry per NLRI it holds or
//! is to be told), however often routes change or the peer asks for a route refresh
//! while it does not read.
//!
//! `sent` changes only when a queued state is taken for encoding ([`FamilyOut::drain`]);
//! a state that cannot be encoded is recorded as withdrawn ([`FamilyOut::unsendable`]),
//! so the Adj-RIB-Out never claims what the peer was not sent and a later withdrawal is
//! never lost.
//!
//! A route refresh (RFC 2918) queues every announcement the peer holds again, once: a
//! request arriving while the previous one is still being answered for that family is
//! ignored (the answer under way already covers everything the peer holds).
//!
//! Every `sent` and queued announcement holds one reference on its attribute set.

use std::collections::{BTreeMap, VecDeque};
use std::hash::BuildHasherDefault;

use bgp_proto::{Family, Nlri};
use ipnet::IpNet;
use smallvec::SmallVec;

use crate::attrs::{AttrId, AttrStore};
use crate::table::{Prefix, PrefixHasher};

/// (outgoing path id, attribute handle) a peer should hold for one prefix; the handles
/// are not yet retained.
pub(crate) type Desired = SmallVec<[(u32, AttrId); 2]>;

/// One NLRI of the Adj-RIB-Out: 8 bytes (a 16-byte hash-table slot with an IPv4 key).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct OutEntry {
    /// The announcement the peer holds (last sent), if any.
    sent: Option<AttrId>,
    /// The state to send, if any.
    queued: Queued,
}

/// A queued state in four bytes: nothing queued (0), a withdrawal (`u32::MAX`, which no
/// attribute handle takes) or an announcement (the handle's raw value).
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
struct Queued(u32);

impl Queued {
    const WITHDRAW: u32 = u32::MAX;

    /// `None`: nothing queued; `Some(None)`: a withdrawal; `Some(Some(a))`: announce `a`.
    fn get(self) -> Option<Option<AttrId>> {
        match self.0 {
            0 => None,
            Self::WITHDRAW => Some(None),
            r => Some(AttrId::from_raw(r)),
        }
    }

    fn of(state: Option<AttrId>) -> Queued {
        Queued(state.map_or(Self::WITHDRAW, AttrId::raw))
    }
}

impl OutEntry {
    /// What the peer will hold once the queue is sent.
    fn target(&self) -> Option<AttrId> {
        self.queued.get().unwrap_or(self.sent)
    }

    /// Take the queued state, leaving nothing queued.
    fn take_queued(&mut self) -> Option<Option<AttrId>> {
        std::mem::take(&mut self.queued).get()
    }

    /// Queue `state`, returning what was queued before.
    fn replace_queued(&mut self, state: Option<AttrId>) -> Option<Option<AttrId>> {
        std::mem::replace(&mut self.queued, Queued::of(state)).get()
    }
}

/// The entries of one family.
#[derive(Debug)]
pub(crate) enum OutTable<P: Prefix> {
    /// Without ADD-PATH send: at most one path per prefix, in a hash table with the route
    /// table's [`PrefixHasher`] (one probe per change; the rare ordered dump sorts).
    Single(std::collections::HashMap<P, OutEntry, BuildHasherDefault<PrefixHasher>>),
    /// With ADD-PATH send: by (prefix, outgoing path id), so one prefix's paths are a range.
    Multi(BTreeMap<(P, u32), OutEntry>),
}

impl<P: Prefix> OutTable<P> {
    fn get(&self, key: &(P, u32)) -> Option<&OutEntry> {
        match self {
            OutTable::Single(m) => m.get(&key.0),
            OutTable::Multi(m) => m.get(key),
        }
    }
    fn get_mut(&mut self, key: &(P, u32)) -> Option<&mut OutEntry> {
        match self {
            OutTable::Single(m) => m.get_mut(&key.0),
            OutTable::Multi(m) => m.get_mut(key),
        }
    }
    /// Take the queued state of `key`'s entry (`None`: no entry, or nothing queued) and
    /// record it as sent, removing the entry when it now holds nothing: one lookup.
    /// Returns (the state taken, what was sent before).
    fn send_queued(&mut self, key: (P, u32)) -> Option<(Option<AttrId>, Option<AttrId>)> {
        fn send(e: &mut OutEntry) -> Option<(Option<AttrId>, Option<AttrId>)> {
            let state = e.take_queued()?;
            Some((state, std::mem::replace(&mut e.sent, state)))
        }
        match self {
            OutTable::Single(m) => match m.entry(key.0) {
                std::collections::hash_map::Entry::Occupied(mut o) => {
                    let r = send(o.get_mut());
                    if r.is_some_and(|(state, _)| state.is_none()) {
                        o.remove();
                    }
                    r
                }
                std::collections::hash_map::Entry::Vacant(_) => None,
            },
            OutTable::Multi(m) => match m.entry(key) {
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let r = send(o.get_mut());
                    if r.is_some_and(|(state, _)| state.is_none()) {
                        o.remove();
                    }
                    r
                }
                std::collections::btree_map::Entry::Vacant(_) => None,
            },
        }
    }
    fn remove(&mut self, key: &(P, u32)) {
        match self {
            OutTable::Single(m) => {
                m.remove(&key.0);
            }
            OutTable::Multi(m) => {
                m.remove(key);
            }
        }
    }
    fn values(&self) -> Box<dyn Iterator<Item = &OutEntry> + '_> {
        match self {
            OutTable::Single(m) => Box::new(m.values()),
            OutTable::Multi(m) => Box::new(m.values()),
        }
    }
}

/// The queue and its live count, borrowed beside the table.
struct Queue<'a, P> {
    queue: &'a mut VecDeque<(P, u32)>,
    queued: &'a mut usize,
}

/// A change taken off the queue for encoding.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub(crate) struct Change {
    pub family: Family,
    /// With the outgoing path id when ADD-PATH send is negotiated.
    pub nlri: Nlri,
    /// `None`: withdraw.
    pub attrs: Option<AttrId>,
}

/// One family of a peer's Adj-RIB-Out with its queue.
#[derive(Debug)]
pub(crate) struct FamilyOut<P: Prefix> {
    table: OutTable<P>,
    /// Keys of the entries with a queued state, oldest first (each listed at least
    /// once; cancelled or repeated keys are skipped when drained).
    queue: VecDeque<(P, u32)>,
    /// Entries with a queued state.
    queued: usize,
    /// Entries whose `sent` is an announcement.
    sent: usize,
    /// A route refresh is being answered: set when it queued the table, cleared when the
    /// queue has been drained.
    refresh_pending: bool,
}

/// Octets `nlri` takes in an UPDATE: length octet, prefix octets (RFC 4271 4.3) and the
/// path identifier when present (RFC 7911 3).
pub(crate) fn nlri_octets(nlri: &Nlri) -> usize {
    let path_id = if nlri.path_id.is_some() { 4 } else { 0 };
    path_id + 1 + usize::from(nlri.prefix.prefix_len()).div_ceil(8)
}

impl<P: Prefix> FamilyOut<P> {
    pub fn new(add_path: bool) -> Self {
        FamilyOut {
            table: if add_path {
                OutTable::Multi(Default::default())
            } else {
                OutTable::Single(Default::default())
            },
            queue: VecDeque::new(),
            queued: 0,
            sent: 0,
            refresh_pending: false,
        }
    }

    fn add_path(&self) -> bool {
        matches!(self.table, OutTable::Multi(_))
    }

    /// Announcements the peer holds.
    pub fn sent_len(&self) -> usize {
        self.sent
    }

    /// Whether changes are queued.
    pub fn has_queued(&self) -> bool {
        self.queued > 0
    }

    /// Changes queued.
    pub fn queued_len(&self) -> usize {
        self.queued
    }

    /// Queue `state` for `key` unless the peer will hold it anyway. Returns whether the
    /// entry changed and whether it is now empty (an announcement cancelled before it
    /// was sent: the caller removes it).
    fn set(
        q: &mut Queue<'_, P>,
        key: (P, u32),
        e: &mut OutEntry,
        state: Option<AttrId>,
        store: &mut AttrStore,
    ) -> (bool, bool) {
        if e.target() == state {
            return (false, false);
        }
        if let Some(a) = state {
            store.retain(a);
        }
        match e.replace_queued(state) {
            Some(Some(old)) => store.release(old),
            Some(None) => {}
            None => {
                q.queue.push_back(key);
                *q.queued += 1;
            }
        }
        if state.is_none() && e.sent.is_none() {
            // Never sent: nothing to withdraw. The key left in the queue is skipped.
            e.take_queued();
            *q.queued -= 1;
            return (true, true);
        }
        (true, false)
    }

    /// Drop cancelled and repeated keys once they are as many as the live ones.
    fn compact_queue(&mut self) {
        if self.queue.len() <= 2 * self.queued + 1024 {
            return;
        }
        let mut seen = rustc_hash::FxHashSet::default();
        let table = &self.table;
        self.queue
            .retain(|k| table.get(k).is_some_and(|e| e.queued.get().is_some()) && seen.insert(*k));
    }

    /// Bring `pfx` to `desired` (sorted and de-duplicated here by path id; one element at
    /// most without ADD-PATH). Returns whether something was queued. Linear in the
    /// prefix's paths (a merge of two lists sorted by path id).
    pub fn diff(&mut self, pfx: P, desired: &mut Desired, store: &mut AttrStore) -> bool {
        let changed = self.diff_entries(pfx, desired, store);
        self.compact_queue();
        changed
    }

    fn diff_entries(&mut self, pfx: P, desired: &mut Desired, store: &mut AttrStore) -> bool {
        let mut q = Queue {
            queue: &mut self.queue,
            queued: &mut self.queued,
        };
        match &mut self.table {
            OutTable::Single(m) => {
                use std::collections::hash_map::Entry;
                let new = desired.first().map(|&(_, a)| a);
                if new.is_none() && m.is_empty() {
                    // Nothing told, nothing to tell (e.g. the route's own source peer).
                    return false;
                }
                match m.entry(pfx) {
                    Entry::Occupied(mut o) => {
                        let (changed, empty) = Self::set(&mut q, (pfx, 0), o.get_mut(), new, store);
                        if empty {
                            o.remove();
                        }
                        changed
                    }
                    Entry::Vacant(v) => match new {
                        None => false,
                        Some(_) => {
                            let e = v.insert(OutEntry::default());
                            Self::set(&mut q, (pfx, 0), e, new, store).0
                        }
                    },
                }
            }
            OutTable::Multi(m) => {
                desired.sort_by_key(|&(id, _)| id);
                // Two paths mapped to one outgoing id: the first in decision order wins.
                desired.dedup_by_key(|&mut (id, _)| id);
                // (path id, what the peer will hold), for the paths it will hold.
                let current: SmallVec<[(u32, AttrId); 4]> = m
                    .range((pfx, 0)..=(pfx, u32::MAX))
                    .filter_map(|(&(_, id), e)| Some((id, e.target()?)))
                    .collect();
                let mut changed = false;
                let (mut i, mut j) = (0, 0);
                loop {
                    let (id, state) = match (current.get(i), desired.get(j)) {
                        (None, None) => break,
                        (Some(&(c, held)), Some(&(d, a))) if c == d => {
                            i += 1;
                            j += 1;
                            if held == a {
                                continue;
                            }
                            (c, Some(a))
                        }
                        (Some(&(c, _)), Some(&(d, _))) if c < d => {
                            i += 1;
                            (c, None)
                        }
                        (Some(&(c, _)), None) => {
                            i += 1;
                            (c, None)
                        }
                        (_, Some(&(d, a))) => {
                            j += 1;
                            (d, Some(a))
                        }
                    };
                    let e = m.entry((pfx, id)).or_default();
                    let (c, empty) = Self::set(&mut q, (pfx, id), e, state, store);
                    if empty {
                        m.remove(&(pfx, id));
                    }
                    changed |= c;
                }
                changed
            }
        }
    }

    /// Take queued changes, oldest first, up to about `budget` octets of NLRI (at least
    /// one while any is queued), recording each as sent: `sent` takes the queued state.
    /// Appends the changes to `out` and returns the octets taken. A withdrawal of an NLRI
    /// the peer was never sent is dropped here.
    pub fn drain(&mut self, budget: usize, store: &mut AttrStore, out: &mut Vec<Change>) -> usize {
        let add_path = self.add_path();
        let mut used = 0;
        while used < budget || (used == 0 && out.is_empty()) {
            let Some(key) = self.queue.pop_front() else {
                break;
            };
            // None: cancelled, or listed again after a cancellation. A withdrawal leaves
            // no entry behind.
            let Some((state, before)) = self.table.send_queued(key) else {
                continue;
            };
            self.queued -= 1;
            if let Some(old) = before {
                store.release(old);
            }
            match (before.is_some(), state.is_some()) {
                (false, true) => self.sent += 1,
                (true, false) => self.sent = self.sent.saturating_sub(1),
                // Withdrawn before it was ever sent: nothing to tell.
                (false, false) => continue,
                (true, true) => {}
            }
            let nlri = Nlri {
                path_id: add_path.then_some(key.1),
                prefix: key.0.into(),
            };
            used += nlri_octets(&nlri);
            out.push(Change {
                family: P::FAMILY,
                nlri,
                attrs: state,
            });
        }
        if self.queued == 0 {
            self.queue.clear();
            self.refresh_pending = false;
            if self.queue.capacity() > 4096 {
                // A whole table was queued (session start, refresh): give the room back.
                self.queue = VecDeque::new();
            }
        }
        used
    }

    /// The announcement `nlri` (taken by [`FamilyOut::drain`]) could not be encoded: the
    /// peer holds nothing for it now (RFC 8654 3: a route that cannot be sent to a peer is
    /// withdrawn towards it; the caller sends the withdrawal, which a peer that held no
    /// older announcement ignores). A later change of the route queues it again.
    pub fn unsendable(&mut self, nlri: &Nlri, store: &mut AttrStore) {
        let Some(pfx) = P::from_net(nlri.prefix) else {
            return;
        };
        let key = (pfx, nlri.path_id.unwrap_or(0));
        let Some(e) = self.table.get_mut(&key) else {
            return;
        };
        if let Some(a) = e.sent.take() {
            store.release(a);
            self.sent = self.sent.saturating_sub(1);
        }
        if e.queued.get().is_none() {
            self.table.remove(&key);
        }
    }

    /// A route refresh (RFC 2918): queue every announcement the peer holds again. Ignored
    /// (returns false) while the previous refresh of this family is still being sent.
    pub fn refresh(&mut self, store: &mut AttrStore) -> bool {
        if self.refresh_pending {
            return false;
        }
        let (queue, queued) = (&mut self.queue, &mut self.queued);
        let mut requeue = |key: (P, u32), e: &mut OutEntry| {
            if let (Some(a), None) = (e.sent, e.queued.get()) {
                store.retain(a);
                e.replace_queued(Some(a));
                queue.push_back(key);
                *queued += 1;
            }
        };
        match &mut self.table {
            OutTable::Single(m) => m.iter_mut().for_each(|(&k, e)| requeue((k, 0), e)),
            OutTable::Multi(m) => m.iter_mut().for_each(|(&k, e)| requeue(k, e)),
        }
        self.refresh_pending = self.queued > 0;
        true
    }

    /// What the peer holds, sorted by (prefix, path id).
    pub fn entries(&self) -> Vec<(P, u32, AttrId)> {
        let mut v: Vec<(P, u32, AttrId)> = match &self.table {
            OutTable::Single(m) => m
                .iter()
                .filter_map(|(k, e)| e.sent.map(|a| (*k, 0, a)))
                .collect(),
            OutTable::Multi(m) => m
                .iter()
                .filter_map(|(&(p, i), e)| e.sent.map(|a| (p, i, a)))
                .collect(),
        };
        if !self.add_path() {
            v.sort_unstable_by_key(|e| e.0.key());
        }
        v
    }

    /// Every attribute reference held (sent and queued announcements).
    pub fn for_each_held(&self, mut f: impl FnMut(AttrId)) {
        for e in self.table.values() {
            e.sent.into_iter().for_each(&mut f);
            if let Some(Some(a)) = e.queued.get() {
                f(a);
            }
        }
    }

    /// Drop everything, giving back the references.
    pub fn release_all(&mut self, store: &mut AttrStore) {
        self.for_each_held(|a| store.release(a));
    }

    /// Check the invariants: the queue lists every entry with a queued state and stays
    /// within twice their number (plus a constant); no entry is empty; the counts are
    /// right. Cost O(entries).
    pub fn audit(&self) -> Result<(), String> {
        let queued: rustc_hash::FxHashSet<(P, u32)> = self.queue.iter().copied().collect();
        if self.queue.len() > 2 * self.queued + 1024 {
            return Err(format!(
                "{}: {} keys listed for {} queued entries",
                P::FAMILY,
                self.queue.len(),
                self.queued
            ));
        }
        let mut entries: Vec<((P, u32), OutEntry)> = match &self.table {
            OutTable::Single(m) => m.iter().map(|(k, e)| ((*k, 0), *e)).collect(),
            OutTable::Multi(m) => m.iter().map(|(k, e)| (*k, *e)).collect(),
        };
        entries.sort_unstable_by_key(|(k, _)| (k.0.key(), k.1));
        let (mut sent, mut waiting) = (0, 0);
        for (k, e) in &entries {
            sent += usize::from(e.sent.is_some());
            let q = e.queued.get().is_some();
            waiting += usize::from(q);
            if q && !queued.contains(k) {
                return Err(format!("{}: {k:?} queued but not listed", P::FAMILY));
            }
            if !q && e.sent.is_none() {
                return Err(format!("{}: {k:?} holds nothing", P::FAMILY));
            }
        }
        if waiting != self.queued || sent != self.sent {
            return Err(format!(
                "{}: {waiting} queued entries counted as {}, {sent} sent counted as {}",
                P::FAMILY,
                self.queued,
                self.sent
            ));
        }
        Ok(())
    }
}

/// Per-peer Adj-RIB-Out.
#[derive(Debug)]
pub(crate) struct AdjOut {
    pub v4: FamilyOut<ipnet::Ipv4Net>,
    pub v6: FamilyOut<ipnet::Ipv6Net>,
}

impl AdjOut {
    pub fn new(add_path_v4: bool, add_path_v6: bool) -> Self {
        AdjOut {
            v4: FamilyOut::new(add_path_v4),
            v6: FamilyOut::new(add_path_v6),
        }
    }

    pub fn has_queued(&self) -> bool {
        self.v4.has_queued() || self.v6.has_queued()
    }

    /// Changes queued (at most one per NLRI).
    pub fn queued_len(&self) -> usize {
        self.v4.queued_len() + self.v6.queued_len()
    }

    /// The family of prefix type `P` (always `Some` for the two prefix types; picked by
    /// type so that the route table's generic code needs no Adj-RIB-Out accessor).
    pub fn family_mut<P: Prefix>(&mut self) -> Option<&mut FamilyOut<P>> {
        let v4: &mut dyn std::any::Any = &mut self.v4;
        if v4.is::<FamilyOut<P>>() {
            return v4.downcast_mut();
        }
        let v6: &mut dyn std::any::Any = &mut self.v6;
        v6.downcast_mut()
    }

    /// Everything the peer holds in `family` (prefix, outgoing path id, attributes);
    /// empty for families other than IPv4/IPv6 unicast.
    pub fn entries(&self, family: Family) -> Vec<(IpNet, u32, AttrId)> {
        fn widen<P: Into<IpNet>>(v: Vec<(P, u32, AttrId)>) -> Vec<(IpNet, u32, AttrId)> {
            v.into_iter().map(|(n, id, a)| (n.into(), id, a)).collect()
        }
        if family == Family::IPV4_UNICAST {
            widen(self.v4.entries())
        } else if family == Family::IPV6_UNICAST {
            widen(self.v6.entries())
        } else {
            Vec::new()
        }
    }

    /// Take queued changes of both families (IPv4 first) up to about `budget` octets of
    /// NLRI; see [`FamilyOut::drain`].
    pub fn drain(&mut self, budget: usize, store: &mut AttrStore, out: &mut Vec<Change>) {
        let used = self.v4.drain(budget, store, out);
        if used < budget || out.is_empty() {
            self.v6.drain(budget.saturating_sub(used), store, out);
        }
    }

    /// See [`FamilyOut::unsendable`].
    pub fn unsendable(&mut self, change: &Change, store: &mut AttrStore) {
        if change.family == Family::IPV4_UNICAST {
            self.v4.unsendable(&change.nlri, store);
        } else if change.family == Family::IPV6_UNICAST {
            self.v6.unsendable(&change.nlri, store);
        }
    }

    /// See [`FamilyOut::refresh`]; families other than IPv4/IPv6 unicast hold nothing.
    pub fn refresh(&mut self, family: Family, store: &mut AttrStore) -> bool {
        if family == Family::IPV4_UNICAST {
            self.v4.refresh(store)
        } else if family == Family::IPV6_UNICAST {
            self.v6.refresh(store)
        } else {
            false
        }
    }

    pub fn release_all(&mut self, store: &mut AttrStore) {
        self.v4.release_all(store);
        self.v6.release_all(store);
    }
}

impl Default for AdjOut {
    fn default() -> Self {
        AdjOut::new(false, false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attrs::RouteAttrs;
    use ipnet::Ipv4Net;

    fn set(store: &mut AttrStore, med: u32) -> AttrId {
        let mut r = RouteAttrs::default();
        r.attrs.med = Some(med);
        store.intern(r)
    }

    fn pfx(i: u32) -> Ipv4Net {
        Ipv4Net::new(std::net::Ipv4Addr::from(0x0A00_0000 + (i << 8)), 24).unwrap()
    }

    #[test]
    fn queued_state_fits_four_bytes_and_round_trips() {
        assert_eq!(std::mem::size_of::<OutEntry>(), 8);
        let mut store = AttrStore::default();
        let a = set(&mut store, 1);
        assert_eq!(Queued::default().get(), None);
        assert_eq!(Queued::of(None).get(), Some(None));
        assert_eq!(Queued::of(Some(a)).get(), Some(Some(a)));
        assert_eq!(AttrId::from_raw(u32::MAX), None);
        assert_eq!(AttrId::from_raw(0), None);
        assert_eq!(AttrId::from_raw(a.raw()), Some(a));
    }

    #[test]
    fn one_entry_per_nlri_sent_state_on_drain_and_cancellation() {
        let mut store = AttrStore::default();
        let (a, b) = (set(&mut store, 1), set(&mut store, 2));
        let mut out = FamilyOut::<Ipv4Net>::new(false);
        let one = |x: AttrId| -> Desired { std::iter::once((0, x)).collect() };
        // Queued three times: one change, the latest.
        assert!(out.diff(pfx(1), &mut one(a), &mut store));
        assert!(out.diff(pfx(1), &mut one(b), &mut store));
        assert!(!out.diff(pfx(1), &mut one(b), &mut store));
        assert_eq!((out.queued_len(), out.sent_len()), (1, 0));
        // Announced and withdrawn before it was sent: nothing left.
        assert!(out.diff(pfx(2), &mut one(a), &mut store));
        assert!(out.diff(pfx(2), &mut Desired::new(), &mut store));
        assert_eq!(out.queued_len(), 1);
        out.audit().unwrap();
        let mut changes = Vec::new();
        out.drain(usize::MAX, &mut store, &mut changes);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].attrs, Some(b));
        assert_eq!((out.queued_len(), out.sent_len()), (0, 1));
        // Back to what was sent after a change: the change is re-sent (harmless), the
        // entry stays one.
        assert!(out.diff(pfx(1), &mut one(a), &mut store));
        assert!(out.diff(pfx(1), &mut one(b), &mut store));
        out.audit().unwrap();
        // Cannot be encoded: the peer holds nothing for it now.
        changes.clear();
        out.drain(usize::MAX, &mut store, &mut changes);
        out.unsendable(&changes[0].nlri, &mut store);
        assert_eq!((out.queued_len(), out.sent_len()), (0, 0));
        assert!(out.entries().is_empty());
        out.audit().unwrap();
        // Flapping many distinct prefixes without a drain: the queue stays compact.
        for i in 0..10_000 {
            out.diff(pfx(100 + i), &mut one(a), &mut store);
            out.diff(pfx(100 + i), &mut Desired::new(), &mut store);
        }
        assert_eq!(out.queued_len(), 0);
        out.audit().unwrap();
        out.release_all(&mut store);
    }
}
