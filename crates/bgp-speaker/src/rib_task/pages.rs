//! `show routes` a page at a time.
//!
//! A whole table used to be built as one list of routes inside the RIB task and sent as
//! one JSON line (a million paths: hundreds of MiB, and past ~1.1M paths over the
//! client's 256 MiB line limit). Now the RIB task answers one page of at most
//! [`MAX_PAGE`] entries per query, starting after a [`RouteCursor`], so the control
//! socket streams a table (or `bgpctl` pages through it) with memory for one page, and the
//! RIB task serves other work between pages.
//!
//! Order: Loc-RIB by prefix (IPv4 first, [`Rib::prefixes_after`]) then by the position
//! of the path among the prefix's paths; Adj-RIB-In/Out by peer name, then prefix, then
//! path identifier (each page selects the next entries of the peer's table without
//! sorting all of it).

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use bgp_proto::Family;
use ipnet::IpNet;

use super::{entry, family_of, matches_family, path_entry, with_path_id, RibTask};
use crate::routes::{DecisionStep, FamilyFilter, Route, RouteCursor, RouteQuery, Table, MAX_PAGE};

/// One page and where the next starts (`None`: this was the last).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct RoutesPage {
    pub routes: Vec<Route>,
    pub next: Option<RouteCursor>,
}

/// Prefixes asked of the RIB at a time while filling a Loc-RIB page.
const PREFIX_BATCH: usize = 1024;

impl RibTask {
    /// Up to `limit` entries (at least 1, at most [`MAX_PAGE`]) of `filter` after `after`.
    pub(super) fn routes_page(
        &self,
        filter: &RouteQuery,
        after: Option<&RouteCursor>,
        limit: usize,
    ) -> Result<RoutesPage, String> {
        let limit = limit.clamp(1, MAX_PAGE);
        match filter.table {
            Table::Loc => Ok(self.loc_page(filter, after, limit)),
            Table::In | Table::Out => self.adj_page(filter, after, limit),
        }
    }

    fn loc_page(
        &self,
        filter: &RouteQuery,
        after: Option<&RouteCursor>,
        limit: usize,
    ) -> RoutesPage {
        let mut page = RoutesPage::default();
        let family = filter.family.map(|f| match f {
            FamilyFilter::Ipv4 => Family::IPV4_UNICAST,
            FamilyFilter::Ipv6 => Family::IPV6_UNICAST,
        });
        // The rest of the prefix the last page stopped in, then the prefixes after it.
        if let Some(c) = after {
            if self.loc_paths(filter, c.prefix, Some(c.path), limit, &mut page) {
                return page;
            }
        }
        let mut from = after.map(|c| c.prefix);
        // More specific prefixes: the walk starts at the prefix and ends past its range.
        let range = filter.prefix.filter(|_| filter.longer).map(|q| q.trunc());
        if range.is_some() {
            from = from.or_else(|| filter.longer_start());
        }
        let family = match range {
            Some(IpNet::V4(_)) => Some(Family::IPV4_UNICAST),
            Some(IpNet::V6(_)) => Some(Family::IPV6_UNICAST),
            None => family,
        };
        loop {
            let prefixes = match filter.prefix {
                Some(p) if !filter.longer => {
                    let p = p.trunc();
                    let wanted = matches_family(&p, filter.family) && from.is_none_or(|f| f < p);
                    if wanted {
                        vec![p]
                    } else {
                        Vec::new()
                    }
                }
                _ => self.driver.rib().prefixes_after(family, from, PREFIX_BATCH),
            };
            let Some(&last) = prefixes.last() else {
                return page;
            };
            for p in prefixes {
                if !filter.wants_prefix(&p) {
                    continue;
                }
                if self.loc_paths(filter, p, None, limit, &mut page) {
                    return page;
                }
            }
            match range {
                Some(q) if past(&last, &q) => return page,
                Some(_) => {}
                None if filter.prefix.is_some() => return page,
                None => {}
            }
            from = Some(last);
        }
    }

    /// Appends the paths of `prefix` (after index `after`) to the page; true once it is
    /// full (with its cursor set).
    fn loc_paths(
        &self,
        filter: &RouteQuery,
        prefix: IpNet,
        after: Option<u32>,
        limit: usize,
        page: &mut RoutesPage,
    ) -> bool {
        let Some(d) = self.driver.rib().route(prefix, self.driver.resolver()) else {
            return false;
        };
        for (i, path) in d.paths.iter().enumerate() {
            let index = u32::try_from(i).unwrap_or(u32::MAX);
            if after.is_some_and(|a| index <= a) {
                continue;
            }
            if filter
                .peer
                .as_ref()
                .is_some_and(|n| path.peer_name.as_ref() != Some(n))
                || !filter.wants_attributes(&path.attrs.attrs)
            {
                continue;
            }
            let e = path_entry(d.prefix, path);
            page.routes
                .push(with_path_id(e, self.session_of(path), d.prefix, true));
            if page.routes.len() >= limit {
                page.next = Some(RouteCursor {
                    peer: None,
                    prefix: d.prefix,
                    path: index,
                });
                return true;
            }
        }
        false
    }

    fn adj_page(
        &self,
        filter: &RouteQuery,
        after: Option<&RouteCursor>,
        limit: usize,
    ) -> Result<RoutesPage, String> {
        let mut names: Vec<String> = match &filter.peer {
            Some(n) if self.driver.peer_by_name(n).is_some() => vec![n.clone()],
            Some(n) => return Err(n.clone()),
            None => self.driver.peers().map(|p| p.name().to_string()).collect(),
        };
        names.sort();
        let mut page = RoutesPage::default();
        for name in names {
            let from = match after.and_then(|c| c.peer.as_ref().map(|p| (p, c))) {
                Some((p, _)) if name < *p => continue,
                Some((p, c)) if name == *p => Some((c.prefix, c.path)),
                _ => None,
            };
            let room = limit - page.routes.len();
            let mut entries = self.adj_entries(&name, filter, from, room);
            let full = entries.len() >= room;
            if full {
                if let Some((prefix, path, _)) = entries.last() {
                    page.next = Some(RouteCursor {
                        peer: Some(name.clone()),
                        prefix: *prefix,
                        path: *path,
                    });
                }
            }
            page.routes.extend(entries.drain(..).map(|(_, _, e)| e));
            if full {
                break;
            }
        }
        Ok(page)
    }

    /// The first `limit` entries of one peer's Adj-RIB-In or -Out after `from`, in order.
    fn adj_entries(
        &self,
        name: &str,
        filter: &RouteQuery,
        from: Option<(IpNet, u32)>,
        limit: usize,
    ) -> Vec<(IpNet, u32, Route)> {
        let Some(peer) = self.driver.peer_by_name(name) else {
            return Vec::new();
        };
        let rib = self.driver.rib();
        let want = |p: &IpNet, a: &bgp_rib::RouteAttrs| {
            filter.wants_prefix(p)
                && from.is_none_or(|(fp, _)| *p >= fp)
                && filter.wants_attributes(&a.attrs)
        };
        let mut out = Vec::new();
        for f in family_of(filter.family) {
            if filter.table == Table::In {
                let all = rib.adj_rib_in(peer.rib_id(), f).unwrap_or_default();
                let keys = all.iter().enumerate().filter_map(|(i, (n, a, _))| {
                    let key = (n.prefix, n.path_id.unwrap_or(0));
                    (want(&n.prefix, a) && from.is_none_or(|f| key > f)).then_some((key, i))
                });
                for (_, i) in smallest(keys, limit) {
                    if let Some((n, a, accepted)) = all.get(i) {
                        let mut e = with_path_id(
                            entry(n.prefix, n.path_id, Some(name.to_string()), a),
                            peer.session(),
                            n.prefix,
                            true,
                        );
                        if !accepted {
                            e.not_best = Some(DecisionStep::NotEligible(
                                bgp_rib::Ineligible::RejectedByPolicy,
                            ));
                        }
                        out.push((n.prefix, n.path_id.unwrap_or(0), e));
                    }
                }
            } else {
                let all = rib.adj_rib_out(peer.rib_id(), f).unwrap_or_default();
                let keys = all.iter().enumerate().filter_map(|(i, (n, a))| {
                    let key = (n.prefix, n.path_id.unwrap_or(0));
                    (want(&n.prefix, a) && from.is_none_or(|f| key > f)).then_some((key, i))
                });
                for (_, i) in smallest(keys, limit) {
                    if let Some((n, a)) = all.get(i) {
                        let e = with_path_id(
                            entry(n.prefix, n.path_id, Some(name.to_string()), a),
                            peer.session(),
                            n.prefix,
                            false,
                        );
                        out.push((n.prefix, n.path_id.unwrap_or(0), e));
                    }
                }
            }
        }
        // IPv4 before IPv6 already; each family's part is in order.
        out.truncate(limit);
        out
    }
}

/// Whether `p` sorts after every prefix `q` contains (address, then length order).
fn past(p: &IpNet, q: &IpNet) -> bool {
    match (p, q) {
        (IpNet::V4(p), IpNet::V4(q)) => p.network() > q.broadcast(),
        (IpNet::V6(p), IpNet::V6(q)) => p.network() > q.broadcast(),
        _ => true,
    }
}

/// The `limit` smallest keys with their values, in order, in one pass (a bounded heap).
fn smallest<K: Ord, V>(items: impl Iterator<Item = (K, V)>, limit: usize) -> Vec<(K, V)> {
    struct ByKey<K, V>(K, V);
    impl<K: Ord, V> PartialEq for ByKey<K, V> {
        fn eq(&self, o: &Self) -> bool {
            self.0 == o.0
        }
    }
    impl<K: Ord, V> Eq for ByKey<K, V> {}
    impl<K: Ord, V> PartialOrd for ByKey<K, V> {
        fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
            Some(self.cmp(o))
        }
    }
    impl<K: Ord, V> Ord for ByKey<K, V> {
        fn cmp(&self, o: &Self) -> Ordering {
            self.0.cmp(&o.0)
        }
    }
    if limit == 0 {
        return Vec::new();
    }
    let mut heap = BinaryHeap::new();
    for (k, v) in items {
        if heap.len() < limit {
            heap.push(ByKey(k, v));
        } else if heap.peek().is_some_and(|top: &ByKey<K, V>| k < top.0) {
            heap.pop();
            heap.push(ByKey(k, v));
        }
    }
    let mut v: Vec<(K, V)> = heap.into_iter().map(|ByKey(k, v)| (k, v)).collect();
    v.sort_by(|a, b| a.0.cmp(&b.0));
    v
}

#[cfg(test)]
mod tests {
    use super::smallest;

    #[test]
    fn smallest_keeps_the_first_keys_in_order() {
        let items = [5, 3, 9, 1, 7, 2, 8].into_iter().map(|k| (k, k * 10));
        assert_eq!(smallest(items, 3), vec![(1, 10), (2, 20), (3, 30)]);
        assert!(smallest([1].into_iter().map(|k| (k, ())), 0).is_empty());
        let all = smallest([2, 1].into_iter().map(|k| (k, ())), 10);
        assert_eq!(all, vec![(1, ()), (2, ())]);
    }
}
