//! Requests handed out and not answered yet, found by id in constant time.
//!
//! Ids increase by one per request, and answers come back mostly in order (the kernel
//! processes a socket's requests in order), so the table is a ring of slots indexed by
//! `id - base`: an answered slot is emptied, and empty slots at the front are dropped.
//! An unknown id (answered already, or forgotten after a dump) finds nothing.

use std::collections::VecDeque;

/// Identifies a request handed out by [`crate::Reconciler::poll_transmit`]; its answer is
/// given back with the same id. Ids increase by one per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct RequestId(u64);

#[cfg(test)]
impl RequestId {
    pub(crate) fn for_tests(n: u64) -> Self {
        RequestId(n)
    }
}

/// What is known of each request in flight (`T`), by id.
#[derive(Debug)]
pub(crate) struct InFlight<T> {
    slots: VecDeque<Option<T>>,
    /// Id of `slots[0]`.
    base: u64,
    /// Slots holding a request.
    count: usize,
}

impl<T> Default for InFlight<T> {
    fn default() -> Self {
        InFlight {
            slots: VecDeque::new(),
            base: 0,
            count: 0,
        }
    }
}

impl<T> InFlight<T> {
    /// Requests not answered yet.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Record a request; its id.
    pub fn push(&mut self, t: T) -> RequestId {
        let id = RequestId(self.base + self.slots.len() as u64);
        self.slots.push_back(Some(t));
        self.count += 1;
        id
    }

    /// The request with this id, now answered (`None` if unknown).
    pub fn take(&mut self, RequestId(id): RequestId) -> Option<T> {
        let idx = usize::try_from(id.checked_sub(self.base)?).ok()?;
        let t = self.slots.get_mut(idx)?.take()?;
        self.count -= 1;
        while self.slots.front().is_some_and(Option::is_none) {
            self.slots.pop_front();
            self.base += 1;
        }
        Some(t)
    }

    /// Forget every request (their answers will find nothing).
    pub fn drain(&mut self) -> Vec<T> {
        self.base += self.slots.len() as u64;
        self.count = 0;
        self.slots.drain(..).flatten().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_any_order_and_unknown_ids_find_nothing() {
        let mut t = InFlight::default();
        let ids: Vec<RequestId> = (0..4).map(|i| t.push(i)).collect();
        assert_eq!(t.len(), 4);
        assert_eq!(t.take(ids[2]), Some(2));
        assert_eq!(t.take(ids[2]), None, "answered once");
        assert_eq!(t.take(ids[0]), Some(0));
        assert_eq!(t.take(ids[1]), Some(1));
        assert_eq!(t.slots.len(), 1, "answered slots at the front dropped");
        assert_eq!(t.drain(), [3]);
        assert_eq!(t.len(), 0);
        assert_eq!(t.take(ids[3]), None, "forgotten");
        let next = t.push(9);
        assert!(next > ids[3], "ids never repeat");
        assert_eq!(t.take(RequestId(u64::MAX)), None);
    }
}
