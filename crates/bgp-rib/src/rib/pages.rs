//! The Loc-RIB's prefixes a page at a time, in order, for dumps of large tables (the
//! control socket streams a million routes in pages instead of one answer): each page
//! costs one pass over the table's keys and memory for the page only, where sorting the
//! whole table per request (as [`Rib::loc_rib`] does) costs both for every page.

use std::collections::BinaryHeap;

use bgp_proto::Family;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};

use super::state::Rib;
use crate::table::{Prefix, Tables};

impl Rib {
    /// Up to `limit` prefixes holding at least one path, of `family` (both unicast
    /// families when `None`), in order (IPv4 before IPv6, then address and length),
    /// strictly after `after`. O(table size × log `limit`), memory O(`limit`).
    pub fn prefixes_after(
        &self,
        family: Option<Family>,
        after: Option<IpNet>,
        limit: usize,
    ) -> Vec<IpNet> {
        let mut out = Vec::new();
        let wants = |f: Family| family.is_none_or(|x| x == f);
        if wants(Family::IPV4_UNICAST) {
            collect::<Ipv4Net>(&self.store.tables, after, limit, &mut out);
        }
        if wants(Family::IPV6_UNICAST) && out.len() < limit {
            collect::<Ipv6Net>(&self.store.tables, after, limit - out.len(), &mut out);
        }
        out
    }
}

/// Appends the up to `limit` smallest prefixes of family `P` after `after` to `out`.
fn collect<P: Prefix>(tables: &Tables, after: Option<IpNet>, limit: usize, out: &mut Vec<IpNet>) {
    if limit == 0 {
        return;
    }
    let after: Option<P> = match after {
        None => None,
        Some(a) => match P::from_net(a) {
            Some(p) => Some(p),
            // IPv4 sorts before IPv6: after an IPv6 prefix no IPv4 one follows, after an
            // IPv4 prefix every IPv6 one does.
            None if matches!(a, IpNet::V4(_)) => None,
            None => return,
        },
    };
    // The `limit` smallest keys seen so far, the largest on top.
    let mut heap: BinaryHeap<P> = BinaryHeap::with_capacity(limit.min(1 << 16));
    for (p, d) in &P::table(tables).routes {
        if after.is_some_and(|a| *p <= a) || d.iter().next().is_none() {
            continue;
        }
        if heap.len() < limit {
            heap.push(*p);
        } else if heap.peek().is_some_and(|top| p < top) {
            heap.pop();
            heap.push(*p);
        }
    }
    let mut page = heap.into_vec();
    page.sort_unstable();
    out.extend(page.into_iter().map(Into::into));
}

#[cfg(test)]
mod tests {
    use bgp_proto::{AsPath, Nlri, Origin, PathAttributes, Update};

    use crate::{AllReachable, PeerConfig, RibConfig, SessionInfo};

    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().expect("prefix")
    }

    /// A RIB holding the given prefixes from one peer.
    fn rib_with(prefixes: &[&str]) -> Rib {
        let mut rib = Rib::new(RibConfig::new(64512, "10.0.0.1".parse().expect("id")));
        let peer = rib
            .add_peer(PeerConfig::new(
                "p",
                "10.0.0.2".parse().expect("addr"),
                64512,
            ))
            .expect("peer");
        let mut s = SessionInfo::new("10.0.0.2".parse().expect("id"), None);
        s.families = vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST];
        rib.peer_up(peer, s, std::time::Instant::now()).expect("up");
        let attributes = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::default()),
            next_hop: Some("10.0.0.2".parse().expect("nh")),
            local_pref: Some(100),
            ..PathAttributes::default()
        };
        let v4: Vec<Nlri> = prefixes
            .iter()
            .map(|p| net(p))
            .filter(|n| matches!(n, IpNet::V4(_)))
            .map(Nlri::new)
            .collect();
        let u = Update {
            attributes,
            nlri: v4,
            ..Update::default()
        };
        rib.apply_update(peer, &u, false).expect("update");
        rib.process(&AllReachable);
        rib
    }

    #[test]
    fn pages_cover_the_table_in_order_without_repeats() {
        let mut prefixes: Vec<String> = (0..1000u32)
            .map(|i| format!("10.{}.{}.0/24", i / 256, i % 256))
            .collect();
        prefixes.push("10.0.0.0/8".into());
        prefixes.push("10.0.0.0/16".into());
        let refs: Vec<&str> = prefixes.iter().map(String::as_str).collect();
        let rib = rib_with(&refs);
        let mut all = Vec::new();
        let mut after = None;
        loop {
            let page = rib.prefixes_after(None, after, 37);
            assert!(page.len() <= 37);
            let Some(last) = page.last().copied() else {
                break;
            };
            all.extend(page);
            after = Some(last);
        }
        let mut want: Vec<IpNet> = prefixes.iter().map(|p| net(p)).collect();
        want.sort();
        assert_eq!(all, want);
        // A family of its own; after an IPv6 prefix no IPv4 prefix follows.
        assert!(rib
            .prefixes_after(Some(Family::IPV6_UNICAST), None, 10)
            .is_empty());
        assert!(rib
            .prefixes_after(None, Some(net("2001:db8::/32")), 10)
            .is_empty());
        assert_eq!(
            rib.prefixes_after(None, Some(net("10.3.230.0/24")), 10),
            vec![net("10.3.231.0/24")]
        );
    }
}
