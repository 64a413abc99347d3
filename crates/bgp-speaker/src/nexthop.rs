//! Next-hop resolution through the kernel's own routing state (BIRD's `gateway recursive`).
//!
//! RFC 4271 section 9.1.2: a route whose NEXT_HOP cannot be resolved is not eligible for the
//! decision process, and the IGP cost to the next hop breaks ties (9.1.2.2 e). With a
//! `[kernel]` section the speaker resolves every next hop through what the kernel knows:
//!
//! - **connected subnets**: the subnet of every address on an interface that is up (cost 0);
//! - **main-table routes** of every protocol except our own export protocol, of type unicast
//!   (cost = the route's metric). Our own routes are BGP routes: resolving a BGP next hop
//!   through another BGP route is not done (as BIRD's `gateway recursive`, which looks only
//!   at the IGP table), so a next hop reachable only through a BGP route is unresolvable.
//!
//! The longest matching prefix wins; at equal length a connected subnet beats a route, and
//! between routes the lowest metric (the one the kernel itself uses). No match: unresolvable.
//!
//! The view is fed by a second [`KernelWatcher`] whose selection is "all unicast routes of
//! the main table" ([`resolver_import_config`]), independent of `[kernel.import]`, so a
//! default route learned by DHCP resolves even when only Felix's protocols are imported.
//! Its events reach the RIB task as `KernelInput::NextHops`; the RIB task applies them to
//! its [`NextHopTable`] and, when the answer for a next hop in use changed, re-runs the
//! decision for every prefix ([`bgp_rib::Rib::resolver_changed`]).
//!
//! Without a kernel view (no `[kernel]` section, or the embedder takes the FIB channel
//! itself) every next hop resolves at cost 0 ([`bgp_rib::AllReachable`]).
//!
//! A route whose output interface is down does not resolve (the kernel keeps IPv4 routes
//! over a link without carrier, flagged `linkdown`). Limit: a multipath kernel route is
//! judged by its first path's interface.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

use bgp_kernel::{
    ImportConfig, KernelEvent, KernelRoute, KernelWatcher, Link, RouteKind, RT_TABLE_MAIN,
};
use bgp_rib::NextHopResolver;
use ipnet::IpNet;
use tokio::sync::mpsc;
use tracing::{debug, error};

use crate::fib::{KernelEvents, KernelInput};
use crate::health::{Health, NEXT_HOPS};

/// Kernel events folded into one RIB command.
const BATCH: usize = 1024;
/// Next hops whose answers are remembered between changes; beyond this the memory is
/// dropped at the next change (and every prefix re-evaluated).
const MEMO_LIMIT: usize = 65_536;

/// The kernel's view needed to resolve next hops (see the module docs).
#[derive(Debug, Default)]
pub struct NextHopTable {
    /// Links by ifindex; an interface not seen yet counts as up.
    links: HashMap<u32, Link>,
    /// Interface addresses: (ifindex, address with its prefix length).
    addresses: BTreeSet<(u32, IpNet)>,
    /// Main-table unicast routes: prefix → metric → output interface.
    routes: HashMap<IpNet, BTreeMap<u32, Option<String>>>,
    /// Answers given since the last change, to tell whether a change matters.
    memo: RefCell<HashMap<IpAddr, Option<u32>>>,
}

impl NextHopTable {
    /// An empty view: nothing resolves until events arrive.
    pub fn new() -> NextHopTable {
        NextHopTable::default()
    }

    /// Applies one watcher event; whether the view changed.
    pub fn apply(&mut self, event: &KernelEvent) -> bool {
        match event {
            KernelEvent::RouteAdded(r) if usable(r) => self
                .routes
                .entry(r.prefix.trunc())
                .or_default()
                .insert(r.metric, r.ifname.clone())
                .is_none_or(|old| old != r.ifname),
            KernelEvent::RouteRemoved(r) if usable(r) => {
                let p = r.prefix.trunc();
                let Some(set) = self.routes.get_mut(&p) else {
                    return false;
                };
                let removed = set.remove(&r.metric).is_some();
                if set.is_empty() {
                    self.routes.remove(&p);
                }
                removed
            }
            KernelEvent::LinkUp(l) | KernelEvent::LinkDown(l) => {
                self.links.insert(l.index, l.clone()).as_ref() != Some(l)
            }
            KernelEvent::LinkRemoved(l) => {
                let before = self.addresses.len();
                self.addresses.retain(|(i, _)| *i != l.index);
                self.links.remove(&l.index).is_some() || before != self.addresses.len()
            }
            KernelEvent::AddressAdded(a) => self.addresses.insert((a.ifindex, a.address)),
            KernelEvent::AddressRemoved(a) => self.addresses.remove(&(a.ifindex, a.address)),
            _ => false,
        }
    }

    /// After changes: whether any next hop answered before now answers differently. The
    /// memory is refreshed (or dropped when it grew past its bound, which counts as a
    /// change).
    pub fn answers_changed(&mut self) -> bool {
        let memo = std::mem::take(self.memo.get_mut());
        if memo.len() > MEMO_LIMIT {
            return true;
        }
        let mut changed = false;
        let mut fresh = HashMap::with_capacity(memo.len());
        for (nh, before) in memo {
            let now = self.lookup(nh);
            changed |= now != before;
            fresh.insert(nh, now);
        }
        *self.memo.get_mut() = fresh;
        changed
    }

    /// Longest-prefix match over connected subnets and routes (see the module docs).
    fn lookup(&self, nh: IpAddr) -> Option<u32> {
        // The longest connected subnet holding the next hop (cost 0).
        let connected = self
            .addresses
            .iter()
            .filter(|(ifindex, a)| {
                self.links.get(ifindex).is_none_or(|l| l.up) && a.trunc().contains(&nh)
            })
            .map(|(_, a)| a.prefix_len())
            .max();
        let max = match nh {
            IpAddr::V4(_) => 32u8,
            IpAddr::V6(_) => 128u8,
        };
        // A route wins only when strictly longer than the connected subnet.
        let floor = connected.map_or(0, |l| l.saturating_add(1));
        for len in (floor..=max).rev() {
            let Ok(p) = IpNet::new(nh, len) else {
                continue;
            };
            let usable = self.routes.get(&p.trunc()).and_then(|set| {
                set.iter()
                    .find(|(_, dev)| dev.as_deref().is_none_or(|d| self.device_up(d)))
            });
            if let Some((metric, _)) = usable {
                return Some(*metric);
            }
        }
        connected.map(|_| 0)
    }

    /// The interface of what [`NextHopTable::lookup`] resolves `nh` through: the link of
    /// the longest connected subnet, or the output device of the route.
    fn lookup_interface(&self, nh: IpAddr) -> Option<String> {
        let connected = self
            .addresses
            .iter()
            .filter(|(ifindex, a)| {
                self.links.get(ifindex).is_none_or(|l| l.up) && a.trunc().contains(&nh)
            })
            .max_by_key(|(_, a)| a.prefix_len());
        let max = match nh {
            IpAddr::V4(_) => 32u8,
            IpAddr::V6(_) => 128u8,
        };
        let floor = connected.map_or(0, |(_, a)| a.prefix_len().saturating_add(1));
        for len in (floor..=max).rev() {
            let Ok(p) = IpNet::new(nh, len) else {
                continue;
            };
            let usable = self.routes.get(&p.trunc()).and_then(|set| {
                set.values()
                    .find(|dev| dev.as_deref().is_none_or(|d| self.device_up(d)))
            });
            if let Some(dev) = usable {
                return dev.clone();
            }
        }
        connected.and_then(|(ifindex, _)| self.links.get(ifindex).map(|l| l.name.clone()))
    }

    /// Whether the interface named `name` is up (unknown interfaces count as up).
    fn device_up(&self, name: &str) -> bool {
        !self.links.values().any(|l| l.name == name && !l.up)
    }
}

impl NextHopResolver for NextHopTable {
    fn resolve(&self, next_hop: IpAddr) -> Option<u32> {
        let a = self.lookup(next_hop);
        if let Ok(mut m) = self.memo.try_borrow_mut() {
            m.insert(next_hop, a);
        }
        a
    }

    fn knows_interfaces(&self) -> bool {
        true
    }

    fn interface(&self, next_hop: IpAddr) -> Option<std::sync::Arc<str>> {
        self.lookup_interface(next_hop).map(std::sync::Arc::from)
    }
}

/// Routes that can carry traffic to a next hop: unicast in the main table.
fn usable(r: &KernelRoute) -> bool {
    r.kind == RouteKind::Unicast && r.table == RT_TABLE_MAIN
}

/// The watcher selection for resolution: every unicast route of the main table except
/// those of our own export protocol (BGP routes), whatever `[kernel.import]` selects.
pub fn resolver_import_config(own_protocol: u8) -> ImportConfig {
    ImportConfig {
        route_types: vec![RouteKind::Unicast],
        table: RT_TABLE_MAIN,
        own_protocol: Some(own_protocol),
        ..ImportConfig::default()
    }
}

/// How the RIB task resolves next hops: through the kernel's view when it has one.
#[derive(Debug)]
pub(crate) enum Resolver {
    /// The kernel's view ([`NextHopTable`]).
    Kernel(NextHopTable),
    /// No view: every next hop resolves at cost 0.
    All,
}

impl Resolver {
    /// Applies watcher events; whether an answer in use may have changed.
    pub(crate) fn apply(&mut self, events: &[KernelEvent]) -> bool {
        let Resolver::Kernel(t) = self else {
            return false;
        };
        let mut changed = false;
        for e in events {
            changed |= t.apply(e);
        }
        changed && t.answers_changed()
    }
}

impl NextHopResolver for Resolver {
    fn resolve(&self, next_hop: IpAddr) -> Option<u32> {
        match self {
            Resolver::Kernel(t) => t.resolve(next_hop),
            Resolver::All => Some(0),
        }
    }

    fn knows_interfaces(&self) -> bool {
        matches!(self, Resolver::Kernel(_))
    }

    fn interface(&self, next_hop: IpAddr) -> Option<std::sync::Arc<str>> {
        match self {
            Resolver::Kernel(t) => t.interface(next_hop),
            Resolver::All => None,
        }
    }
}

/// Opens the watcher feeding the RIB task's [`NextHopTable`]; the caller runs the task
/// it returns.
pub(crate) fn start(
    own_protocol: u8,
    rib: mpsc::Sender<KernelInput>,
    health: Health,
) -> Result<impl std::future::Future<Output = ()> + Send + 'static, bgp_kernel::KernelError> {
    let watcher = KernelWatcher::spawn(resolver_import_config(own_protocol))?;
    Ok(feed(watcher, rib, health))
}

/// Kernel events → the RIB task, in batches. A lost watcher connection marks the
/// component down until the watcher re-read the kernel (bgp-kernel reconnects it).
pub(crate) async fn feed<E: KernelEvents>(
    mut events: E,
    rib: mpsc::Sender<KernelInput>,
    health: Health,
) {
    health.up(NEXT_HOPS);
    while let Some(first) = events.next().await {
        let mut batch = vec![first];
        while batch.len() < BATCH {
            match crate::fib::now_or_never(events.next()).await.flatten() {
                Some(e) => batch.push(e),
                None => break,
            }
        }
        for e in &batch {
            match e {
                KernelEvent::Lost(reason) => health.down(NEXT_HOPS, reason.clone()),
                KernelEvent::Synced => health.up(NEXT_HOPS),
                _ => {}
            }
        }
        batch.retain(|e| !matches!(e, KernelEvent::OwnRouteRemoved(_) | KernelEvent::Lost(_)));
        if batch.is_empty() {
            continue;
        }
        if rib.send(KernelInput::NextHops(batch)).await.is_err() {
            debug!("next-hop watcher ended: the RIB has stopped");
            return;
        }
    }
    health.down(NEXT_HOPS, "next-hop watcher stopped");
    error!("next-hop watcher stopped: next-hop resolution no longer follows the kernel");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_kernel::{Address, Link};

    fn route(prefix: &str, metric: u32) -> KernelRoute {
        KernelRoute {
            prefix: prefix.parse().unwrap(),
            kind: RouteKind::Unicast,
            protocol: 3,
            metric,
            table: RT_TABLE_MAIN,
            ifname: Some("eth0".into()),
            gateway: None,
            nexthops: Vec::new(),
        }
    }

    fn addr(ifindex: u32, a: &str) -> KernelEvent {
        KernelEvent::AddressAdded(Address {
            ifindex,
            ifname: None,
            address: a.parse().unwrap(),
        })
    }

    fn link(index: u32, up: bool) -> KernelEvent {
        let l = Link {
            index,
            name: format!("eth{index}"),
            up,
        };
        if up {
            KernelEvent::LinkUp(l)
        } else {
            KernelEvent::LinkDown(l)
        }
    }

    fn r(t: &NextHopTable, s: &str) -> Option<u32> {
        t.resolve(s.parse().unwrap())
    }

    #[test]
    fn longest_match_wins_and_lowest_metric() {
        let mut t = NextHopTable::new();
        assert!(t.apply(&KernelEvent::RouteAdded(route("0.0.0.0/0", 100))));
        assert!(t.apply(&KernelEvent::RouteAdded(route("10.0.0.0/8", 50))));
        assert!(t.apply(&KernelEvent::RouteAdded(route("10.1.0.0/16", 20))));
        assert!(t.apply(&KernelEvent::RouteAdded(route("10.1.0.0/16", 10))));
        assert_eq!(r(&t, "10.1.2.3"), Some(10));
        assert_eq!(r(&t, "10.2.2.3"), Some(50));
        assert_eq!(r(&t, "192.0.2.1"), Some(100));
        assert_eq!(r(&t, "2001:db8::1"), None);
        assert!(t.apply(&KernelEvent::RouteRemoved(route("10.1.0.0/16", 10))));
        assert_eq!(r(&t, "10.1.2.3"), Some(20));
        assert!(!t.apply(&KernelEvent::RouteRemoved(route("10.1.0.0/16", 10))));
    }

    #[test]
    fn connected_beats_route_and_follows_link_state() {
        let mut t = NextHopTable::new();
        t.apply(&KernelEvent::RouteAdded(route("192.0.2.0/24", 100)));
        t.apply(&link(2, true));
        t.apply(&addr(2, "192.0.2.10/24"));
        assert_eq!(r(&t, "192.0.2.3"), Some(0));
        // A longer route still wins over a shorter connected subnet.
        t.apply(&KernelEvent::RouteAdded(route("192.0.2.0/28", 7)));
        assert_eq!(r(&t, "192.0.2.3"), Some(7));
        assert_eq!(r(&t, "192.0.2.30"), Some(0));
        assert!(t.apply(&link(2, false)));
        assert_eq!(r(&t, "192.0.2.30"), Some(100));
        assert!(t.apply(&link(2, true)));
        assert!(t.apply(&KernelEvent::AddressRemoved(Address {
            ifindex: 2,
            ifname: None,
            address: "192.0.2.10/24".parse().unwrap(),
        })));
        assert_eq!(r(&t, "192.0.2.30"), Some(100));
    }

    #[test]
    fn interface_of_the_resolving_subnet_or_route() {
        let mut t = NextHopTable::new();
        let mut via_tunl = route("10.200.0.0/16", 0);
        via_tunl.ifname = Some("tunl0".into());
        t.apply(&KernelEvent::RouteAdded(via_tunl));
        t.apply(&link(2, true));
        t.apply(&addr(2, "192.0.2.10/24"));
        let i = |s: &str| t.interface(s.parse().unwrap()).map(|a| a.to_string());
        assert!(t.knows_interfaces());
        assert_eq!(i("192.0.2.3").as_deref(), Some("eth2"));
        assert_eq!(i("10.200.1.1").as_deref(), Some("tunl0"));
        assert_eq!(i("198.51.100.1"), None);
    }

    #[test]
    fn route_over_a_down_interface_does_not_resolve() {
        let mut t = NextHopTable::new();
        t.apply(&link(0, true));
        t.apply(&KernelEvent::RouteAdded(route("198.51.100.0/24", 10)));
        let mut backup = route("198.51.100.0/24", 20);
        backup.ifname = Some("eth1".into());
        t.apply(&KernelEvent::RouteAdded(backup));
        assert_eq!(r(&t, "198.51.100.1"), Some(10));
        assert!(t.apply(&link(0, false)));
        assert_eq!(r(&t, "198.51.100.1"), Some(20));
        t.apply(&link(1, false));
        assert_eq!(r(&t, "198.51.100.1"), None);
    }

    /// RFC 4271 9.1.2 end to end with the RIB: a path whose next hop the kernel cannot reach
    /// is not eligible; it becomes best once a kernel route reaches it, and goes again when
    /// the route does.
    #[test]
    fn rib_follows_the_kernel_view() {
        use bgp_proto::{Nlri, Origin, PathAttributes, Update};
        use bgp_rib::{FibChange, PeerConfig, Rib, RibConfig, SessionInfo};
        use std::net::Ipv4Addr;
        use std::time::Instant;

        let mut rib = Rib::new(RibConfig::new(64512, Ipv4Addr::new(192, 0, 2, 1)));
        let peer = rib
            .add_peer(PeerConfig::new("a", "192.0.2.2".parse().unwrap(), 64512))
            .unwrap();
        rib.peer_up(
            peer,
            SessionInfo::new(
                Ipv4Addr::new(192, 0, 2, 2),
                Some(Ipv4Addr::new(192, 0, 2, 1)),
            ),
            Instant::now(),
        )
        .unwrap();
        let update = Update {
            attributes: PathAttributes {
                origin: Some(Origin::Igp),
                next_hop: Some(Ipv4Addr::new(198, 51, 100, 1)),
                local_pref: Some(100),
                ..Default::default()
            },
            nlri: vec![Nlri::new("10.65.4.0/26".parse().unwrap())],
            ..Default::default()
        };
        let mut t = NextHopTable::new();
        t.apply(&addr(1, "192.0.2.1/24"));
        rib.apply_update(peer, &update, false).unwrap();
        rib.process(&t);
        assert!(rib.loc_rib().is_empty());
        assert!(rib.take_fib(usize::MAX).is_empty());
        let p = "10.65.4.0/26".parse().unwrap();
        let d = rib.route(p, &t).unwrap();
        assert_eq!(
            d.paths[0].lost_at,
            Some(bgp_rib::Step::NotEligible(
                bgp_rib::Ineligible::NextHopUnresolvable
            ))
        );

        // The kernel learns a route to the next hop's subnet.
        assert!(t.apply(&KernelEvent::RouteAdded(route("198.51.100.0/24", 0))));
        assert!(t.answers_changed());
        rib.resolver_changed(&t);
        match rib.take_fib(usize::MAX).as_slice() {
            [FibChange::Upsert(r)] => assert_eq!(r.prefix, p),
            other => panic!("expected one install, got {other:?}"),
        }
        assert!(rib.route(p, &t).unwrap().paths[0].best);

        // And loses it.
        t.apply(&KernelEvent::RouteRemoved(route("198.51.100.0/24", 0)));
        assert!(t.answers_changed());
        rib.resolver_changed(&t);
        assert_eq!(rib.take_fib(usize::MAX), vec![FibChange::Remove(p)]);
    }

    #[test]
    fn unresolvable_and_non_unicast_ignored() {
        let mut t = NextHopTable::new();
        let mut bh = route("10.65.0.0/26", 0);
        bh.kind = RouteKind::Blackhole;
        assert!(!t.apply(&KernelEvent::RouteAdded(bh)));
        let mut other = route("10.0.0.0/8", 0);
        other.table = 100;
        assert!(!t.apply(&KernelEvent::RouteAdded(other)));
        assert_eq!(r(&t, "10.65.0.1"), None);
        assert_eq!(r(&t, "::1"), None);
    }

    #[test]
    fn answers_changed_only_for_next_hops_in_use() {
        let mut t = NextHopTable::new();
        t.apply(&addr(1, "192.0.2.10/24"));
        assert_eq!(r(&t, "192.0.2.3"), Some(0));
        assert_eq!(r(&t, "198.51.100.1"), None);
        // A route elsewhere: no answer changes.
        t.apply(&KernelEvent::RouteAdded(route("203.0.113.0/24", 5)));
        assert!(!t.answers_changed());
        // The route that makes 198.51.100.1 reachable.
        t.apply(&KernelEvent::RouteAdded(route("198.51.100.0/24", 5)));
        assert!(t.answers_changed());
        assert!(!t.answers_changed());
        assert_eq!(r(&t, "198.51.100.1"), Some(5));
    }

    #[tokio::test]
    async fn feed_batches_events_to_the_rib() {
        let (ev_tx, ev_rx) = mpsc::channel(8);
        let (rib_tx, mut rib_rx) = mpsc::channel(8);
        let health = Health::default();
        let task = tokio::spawn(feed(ev_rx, rib_tx, health.clone()));
        ev_tx.send(addr(1, "192.0.2.10/24")).await.unwrap();
        ev_tx
            .send(KernelEvent::RouteAdded(route("0.0.0.0/0", 1)))
            .await
            .unwrap();
        let mut got = Vec::new();
        while got.len() < 2 {
            match rib_rx.recv().await {
                Some(KernelInput::NextHops(b)) => got.extend(b),
                other => panic!("unexpected {other:?}"),
            }
        }
        assert_eq!(got[0], addr(1, "192.0.2.10/24"));
        // A lost watcher connection is health, not a kernel event for the RIB.
        ev_tx
            .send(KernelEvent::Lost("netlink: no buffer".into()))
            .await
            .unwrap();
        ev_tx.send(KernelEvent::Synced).await.unwrap();
        match rib_rx.recv().await {
            Some(KernelInput::NextHops(b)) => assert_eq!(b, vec![KernelEvent::Synced]),
            other => panic!("unexpected {other:?}"),
        }
        assert!(health.down_components().is_empty(), "up again once synced");
        drop(ev_tx);
        task.await.unwrap();
    }
}
