//! What the watcher has reported of the kernel, and the events a notification or a dump
//! makes of it, without I/O.
//!
//! [`ImportState`] takes rtnetlink notifications ([`ImportState::handle_notification`]),
//! link, address and route dumps, and a lost stream ([`ImportState::handle_overrun`]); it
//! queues [`KernelEvent`]s for the consumer ([`ImportState::poll_event`]) and says when the
//! kernel must be read again ([`ImportState::poll_resync`]):
//! - routes are selected by [`ImportConfig`]; a route replaced by one we do not select is
//!   reported removed, and only the owner of a route's key can remove it (a delete of
//!   another protocol's route at the same key leaves ours);
//! - a delete of our own export protocol's route is reported as
//!   [`KernelEvent::OwnRouteRemoved`], for the installer;
//! - a link going down or away makes the routes be re-read (IPv4 flushes the routes
//!   through it without `RTM_DELROUTE`, see `fib_sync_down_dev()`), an overrun makes
//!   everything be re-read; a re-read reports the differences, then
//!   [`KernelEvent::Synced`].
//!
//! The netlink side (mod.rs) feeds it and sends the events.

use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use ipnet::IpNet;
use netlink_packet_route::route::RouteMessage;
use netlink_packet_route::RouteNetlinkMessage;

use crate::config::{ImportConfig, RTPROT_BIRD};
use crate::convert::{address_from_msg, link_from_msg, route_from_msg, LinkTable};
use crate::types::{Address, KernelEvent, KernelRoute, Link, RouteKind};

/// Key of a kernel route: what the kernel itself uses to tell routes apart (the IPv4 TOS is
/// not modelled; Calico never sets it).
type RouteKey = (u32, IpNet, u32);

fn key_of(r: &KernelRoute) -> RouteKey {
    (r.table, r.prefix, r.metric)
}

/// What the watcher remembers of a selected route (16 bytes; a whole [`KernelRoute`] per
/// route cost about 270 bytes with its map slot, a million routes on a node doing kernel
/// import): a fingerprint of the whole route to tell a change from a repeat, the protocol
/// to check who owns a delete, and what a removal found by a re-dump reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    /// Hash of the whole route. Two different routes at one key with the same 64-bit hash
    /// would hide the change: not a practical concern.
    fingerprint: u64,
    protocol: u8,
    kind: RouteKind,
}

impl Seen {
    fn of(r: &KernelRoute) -> Self {
        // SipHash with fixed keys: deterministic within and across runs.
        let mut h = std::hash::DefaultHasher::new();
        r.hash(&mut h);
        Seen {
            fingerprint: h.finish(),
            protocol: r.protocol,
            kind: r.kind,
        }
    }

    /// The route reported for a removal found by a re-dump: its key, protocol and kind
    /// (interface, gateway and next hops are no longer known).
    fn removed((table, prefix, metric): RouteKey, s: Seen) -> KernelRoute {
        KernelRoute {
            prefix,
            kind: s.kind,
            protocol: s.protocol,
            metric,
            table,
            ifname: None,
            gateway: None,
            nexthops: Vec::new(),
        }
    }
}

/// What must be read again from the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Resync {
    /// Links, addresses and routes (notifications were lost).
    Everything,
    /// Routes only (a link went down or away), once the queued notifications are drained.
    Routes,
}

/// A route dump in progress: every selected route's fingerprint, and the routes that are
/// new or changed (the rest of the dump is not kept).
#[derive(Debug, Default)]
pub(crate) struct RouteDump {
    routes: HashMap<RouteKey, Seen>,
    changed: Vec<KernelRoute>,
}

/// Kernel state as far as the consumer has been told, and the events still to tell.
#[derive(Debug)]
pub(crate) struct ImportState {
    cfg: ImportConfig,
    links: LinkTable,
    addresses: HashMap<(u32, IpNet), Address>,
    routes: HashMap<RouteKey, Seen>,
    events: VecDeque<KernelEvent>,
    resync: Option<Resync>,
}

impl ImportState {
    /// Nothing reported yet: the first read is a full one.
    pub fn new(cfg: ImportConfig) -> Self {
        ImportState {
            cfg,
            links: LinkTable::new(),
            addresses: HashMap::new(),
            routes: HashMap::new(),
            events: VecDeque::new(),
            resync: Some(Resync::Everything),
        }
    }

    /// The selection in use.
    pub fn config(&self) -> &ImportConfig {
        &self.cfg
    }

    /// The links as last known (to name devices in dumped messages).
    pub fn links(&self) -> &LinkTable {
        &self.links
    }

    /// The next event for the consumer.
    pub fn poll_event(&mut self) -> Option<KernelEvent> {
        self.events.pop_front()
    }

    /// What must be read again, if anything.
    pub fn poll_resync(&self) -> Option<Resync> {
        self.resync
    }

    /// Notifications were lost (the socket overran): everything must be read again.
    pub fn handle_overrun(&mut self) {
        self.resync = Some(Resync::Everything);
    }

    /// The connection was lost (the reason): reported, and everything is read again once
    /// reconnected.
    pub fn handle_lost(&mut self, reason: String) {
        self.events.push_back(KernelEvent::Lost(reason));
        self.resync = Some(Resync::Everything);
    }

    /// One rtnetlink notification.
    pub fn handle_notification(&mut self, msg: &RouteNetlinkMessage) {
        match msg {
            RouteNetlinkMessage::NewLink(m) => {
                if let Some(link) = link_from_msg(m) {
                    self.new_link(link);
                }
            }
            RouteNetlinkMessage::DelLink(m) => {
                if let Some(link) = self.links.remove(&m.header.index) {
                    self.events.push_back(KernelEvent::LinkRemoved(link));
                    self.routes_gone_quietly();
                }
            }
            RouteNetlinkMessage::NewAddress(m) => {
                if let Some(a) = address_from_msg(m, &self.links) {
                    let k = (a.ifindex, a.address);
                    if self.addresses.get(&k) != Some(&a) {
                        self.addresses.insert(k, a.clone());
                        self.events.push_back(KernelEvent::AddressAdded(a));
                    }
                }
            }
            RouteNetlinkMessage::DelAddress(m) => {
                if let Some(a) = address_from_msg(m, &self.links) {
                    if let Some(old) = self.addresses.remove(&(a.ifindex, a.address)) {
                        self.events.push_back(KernelEvent::AddressRemoved(old));
                    }
                }
            }
            RouteNetlinkMessage::NewRoute(m) => {
                if let Some(r) = route_from_msg(m, &self.links) {
                    self.new_route(r);
                }
            }
            RouteNetlinkMessage::DelRoute(m) => {
                if let Some(r) = route_from_msg(m, &self.links) {
                    self.del_route(r);
                }
            }
            _ => {}
        }
    }

    /// A link dump (the start of a full re-read): the differences are reported.
    pub fn handle_link_dump(&mut self, links: LinkTable) {
        for (idx, l) in &links {
            match self.links.get(idx) {
                Some(o) if o == l => {}
                _ => self.events.push_back(if l.up {
                    KernelEvent::LinkUp(l.clone())
                } else {
                    KernelEvent::LinkDown(l.clone())
                }),
            }
        }
        let gone: Vec<Link> = self
            .links
            .iter()
            .filter(|(i, _)| !links.contains_key(i))
            .map(|(_, l)| l.clone())
            .collect();
        self.events
            .extend(gone.into_iter().map(KernelEvent::LinkRemoved));
        self.links = links;
    }

    /// An address dump: the differences are reported.
    pub fn handle_address_dump(&mut self, addrs: impl IntoIterator<Item = Address>) {
        let addrs: HashMap<(u32, IpNet), Address> = addrs
            .into_iter()
            .map(|a| ((a.ifindex, a.address), a))
            .collect();
        let gone: Vec<Address> = self
            .addresses
            .iter()
            .filter(|(k, _)| !addrs.contains_key(k))
            .map(|(_, a)| a.clone())
            .collect();
        self.events
            .extend(gone.into_iter().map(KernelEvent::AddressRemoved));
        for (k, a) in &addrs {
            if self.addresses.get(k) != Some(a) {
                self.events.push_back(KernelEvent::AddressAdded(a.clone()));
            }
        }
        self.addresses = addrs;
    }

    /// A route dump starts (both families; feed each message to
    /// [`ImportState::handle_dumped_route`], then [`ImportState::finish_route_dump`]).
    pub fn start_route_dump(&self) -> RouteDump {
        RouteDump {
            routes: HashMap::with_capacity(self.routes.len()),
            changed: Vec::new(),
        }
    }

    /// One route of a dump. The dump is read to its end before anything is reported,
    /// keeping only new or changed routes and a fingerprint of every route: rtnetlink
    /// buffers a dump without bound when it is read slowly, so reporting each route as it
    /// arrives (and waiting for the consumer) would hold the unread rest as parsed messages.
    pub fn handle_dumped_route(&self, dump: &mut RouteDump, m: &RouteMessage) {
        let Some(r) = route_from_msg(m, &self.links) else {
            return;
        };
        if !self.cfg.selects(&r) {
            return;
        }
        let k = key_of(&r);
        let seen = Seen::of(&r);
        dump.routes.insert(k, seen);
        if self.routes.get(&k) != Some(&seen) {
            dump.changed.push(r);
        }
    }

    /// The dump is complete: new and changed routes are reported, then the removed ones,
    /// then [`KernelEvent::Synced`].
    pub fn finish_route_dump(&mut self, dump: RouteDump) {
        self.events
            .extend(dump.changed.into_iter().map(KernelEvent::RouteAdded));
        let gone: Vec<(RouteKey, Seen)> = self
            .routes
            .iter()
            .filter(|(k, _)| !dump.routes.contains_key(k))
            .map(|(k, s)| (*k, *s))
            .collect();
        self.routes = dump.routes;
        self.events.extend(
            gone.into_iter()
                .map(|(k, s)| KernelEvent::RouteRemoved(Seen::removed(k, s))),
        );
        self.events.push_back(KernelEvent::Synced);
        self.resync = None;
    }

    fn new_link(&mut self, link: Link) {
        let old = self.links.insert(link.index, link.clone());
        let was_up = old.as_ref().map(|l| l.up);
        match (was_up, link.up) {
            (Some(true), true) | (Some(false), false) => {
                // Same state: nothing to report unless renamed.
                if old.is_some_and(|o| o.name != link.name) {
                    self.events.push_back(if link.up {
                        KernelEvent::LinkUp(link)
                    } else {
                        KernelEvent::LinkDown(link)
                    });
                }
            }
            (_, true) => self.events.push_back(KernelEvent::LinkUp(link)),
            (_, false) => {
                self.events.push_back(KernelEvent::LinkDown(link));
                if was_up == Some(true) {
                    self.routes_gone_quietly();
                }
            }
        }
    }

    /// IPv4 dropped the routes through a link without telling: read the routes again.
    fn routes_gone_quietly(&mut self) {
        self.resync.get_or_insert(Resync::Routes);
    }

    fn new_route(&mut self, r: KernelRoute) {
        let k = key_of(&r);
        if self.cfg.selects(&r) {
            let seen = Seen::of(&r);
            if self.routes.insert(k, seen) != Some(seen) {
                self.events.push_back(KernelEvent::RouteAdded(r));
            }
        } else if let Some(old) = self.routes.remove(&k) {
            // Replaced by a route we do not select (e.g. another protocol took the key).
            self.events
                .push_back(KernelEvent::RouteRemoved(Seen::removed(k, old)));
        }
    }

    fn del_route(&mut self, r: KernelRoute) {
        if r.protocol == self.cfg.own_protocol.unwrap_or(RTPROT_BIRD) {
            // One of our installed routes went away (maybe deleted by someone else): the
            // installer decides whether that was its own doing.
            self.events.push_back(KernelEvent::OwnRouteRemoved(r));
            return;
        }
        let k = key_of(&r);
        // Only the owner of the entry may remove it: a delete of another protocol's route
        // at the same key (after an append) leaves ours in place.
        if self
            .routes
            .get(&k)
            .is_some_and(|o| o.protocol == r.protocol)
        {
            self.routes.remove(&k);
            self.events.push_back(KernelEvent::RouteRemoved(r));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use netlink_packet_route::address::{AddressAttribute, AddressMessage};
    use netlink_packet_route::link::{LinkAttribute, LinkFlags, LinkMessage};
    use netlink_packet_route::route::{
        RouteAddress, RouteAttribute, RouteHeader, RouteProtocol, RouteType,
    };
    use netlink_packet_route::AddressFamily;

    fn calico() -> ImportConfig {
        ImportConfig {
            protocols: vec![3, 80],
            ..ImportConfig::default()
        }
    }

    fn link(index: u32, name: &str, up: bool) -> RouteNetlinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = index;
        if up {
            m.header.flags = LinkFlags::Up | LinkFlags::LowerUp;
        }
        m.attributes.push(LinkAttribute::IfName(name.into()));
        RouteNetlinkMessage::NewLink(m)
    }

    fn del_link(index: u32) -> RouteNetlinkMessage {
        let mut m = LinkMessage::default();
        m.header.index = index;
        RouteNetlinkMessage::DelLink(m)
    }

    fn route(prefix: &str, protocol: u8, metric: u32, oif: Option<u32>) -> RouteMessage {
        let p: IpNet = prefix.parse().unwrap();
        let mut m = RouteMessage::default();
        m.header.address_family = match p {
            IpNet::V4(_) => AddressFamily::Inet,
            IpNet::V6(_) => AddressFamily::Inet6,
        };
        m.header.destination_prefix_length = p.prefix_len();
        m.header.table = RouteHeader::RT_TABLE_MAIN;
        m.header.protocol = RouteProtocol::from(protocol);
        m.header.kind = if oif.is_some() {
            RouteType::Unicast
        } else {
            RouteType::BlackHole
        };
        m.attributes
            .push(RouteAttribute::Destination(match p.network() {
                std::net::IpAddr::V4(a) => RouteAddress::Inet(a),
                std::net::IpAddr::V6(a) => RouteAddress::Inet6(a),
            }));
        m.attributes.push(RouteAttribute::Priority(metric));
        if let Some(i) = oif {
            m.attributes.push(RouteAttribute::Oif(i));
        }
        m
    }

    fn address(index: u32, addr: &str) -> AddressMessage {
        let a: IpNet = addr.parse().unwrap();
        let mut m = AddressMessage::default();
        m.header.index = index;
        m.header.family = AddressFamily::Inet;
        m.header.prefix_len = a.prefix_len();
        m.attributes.push(AddressAttribute::Address(a.addr()));
        m
    }

    fn events(s: &mut ImportState) -> Vec<KernelEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    /// A state that has done its first read: one link `cali1` (index 4), up.
    fn synced() -> ImportState {
        let mut s = ImportState::new(calico());
        assert_eq!(s.poll_resync(), Some(Resync::Everything));
        s.handle_notification(&link(4, "cali1", true));
        let dump = s.start_route_dump();
        s.finish_route_dump(dump);
        events(&mut s);
        assert_eq!(s.poll_resync(), None);
        s
    }

    fn added(e: &KernelEvent) -> Option<(String, u8, u32)> {
        match e {
            KernelEvent::RouteAdded(r) => Some((r.prefix.to_string(), r.protocol, r.metric)),
            _ => None,
        }
    }

    #[test]
    fn links_report_changes_and_going_down_rereads_routes() {
        let mut s = synced();
        // The same state again: nothing; a rename: reported.
        s.handle_notification(&link(4, "cali1", true));
        assert!(events(&mut s).is_empty());
        s.handle_notification(&link(4, "cali9", true));
        assert!(matches!(&events(&mut s)[..], [KernelEvent::LinkUp(l)] if l.name == "cali9"));
        assert_eq!(s.poll_resync(), None);
        // Down: IPv4 drops its routes silently, so the routes are read again.
        s.handle_notification(&link(4, "cali9", false));
        assert!(matches!(&events(&mut s)[..], [KernelEvent::LinkDown(_)]));
        assert_eq!(s.poll_resync(), Some(Resync::Routes));
        let dump = s.start_route_dump();
        s.finish_route_dump(dump);
        assert_eq!(events(&mut s), [KernelEvent::Synced]);
        // Removed: reported, routes read again; an unknown link's removal is nothing.
        s.handle_notification(&del_link(4));
        assert!(matches!(&events(&mut s)[..], [KernelEvent::LinkRemoved(_)]));
        assert_eq!(s.poll_resync(), Some(Resync::Routes));
        s.handle_notification(&del_link(77));
        assert!(events(&mut s).is_empty());
    }

    #[test]
    fn routes_are_selected_and_only_their_owner_removes_them() {
        let mut s = synced();
        let pod = route("10.65.0.5/32", 3, 1024, Some(4));
        s.handle_notification(&RouteNetlinkMessage::NewRoute(pod.clone()));
        let ev = events(&mut s);
        assert_eq!(
            ev.iter().filter_map(added).collect::<Vec<_>>(),
            [("10.65.0.5/32".into(), 3, 1024)]
        );
        match &ev[0] {
            KernelEvent::RouteAdded(r) => assert_eq!(r.ifname.as_deref(), Some("cali1")),
            e => panic!("{e:?}"),
        }
        // A repeat is not reported; a change at the same key is.
        s.handle_notification(&RouteNetlinkMessage::NewRoute(pod.clone()));
        assert!(events(&mut s).is_empty());
        let mut moved = route("10.65.0.5/32", 3, 1024, Some(4));
        moved.header.kind = RouteType::BlackHole;
        s.handle_notification(&RouteNetlinkMessage::NewRoute(moved));
        assert_eq!(events(&mut s).len(), 1);
        // Not selected: another protocol, or ours.
        s.handle_notification(&RouteNetlinkMessage::NewRoute(route(
            "10.66.0.0/26",
            4,
            1024,
            None,
        )));
        s.handle_notification(&RouteNetlinkMessage::NewRoute(route(
            "10.67.0.0/26",
            12,
            1024,
            None,
        )));
        assert!(events(&mut s).is_empty());
        // A delete of another protocol's route at the key leaves the selected route.
        s.handle_notification(&RouteNetlinkMessage::DelRoute(route(
            "10.65.0.5/32",
            80,
            1024,
            Some(4),
        )));
        assert!(events(&mut s).is_empty());
        s.handle_notification(&RouteNetlinkMessage::DelRoute(pod.clone()));
        assert!(matches!(&events(&mut s)[..], [KernelEvent::RouteRemoved(r)] if r.protocol == 3));
        // Replaced by a route we do not select: reported removed.
        s.handle_notification(&RouteNetlinkMessage::NewRoute(pod));
        events(&mut s);
        s.handle_notification(&RouteNetlinkMessage::NewRoute(route(
            "10.65.0.5/32",
            4,
            1024,
            Some(4),
        )));
        assert!(matches!(&events(&mut s)[..], [KernelEvent::RouteRemoved(r)] if r.protocol == 3));
        // Our own route deleted: for the installer.
        s.handle_notification(&RouteNetlinkMessage::DelRoute(route(
            "10.70.0.0/24",
            12,
            5,
            None,
        )));
        assert!(matches!(&events(&mut s)[..], [KernelEvent::OwnRouteRemoved(r)] if r.metric == 5));
    }

    #[test]
    fn a_reread_reports_only_the_differences_then_synced() {
        let mut s = synced();
        let a = route("10.65.0.1/32", 3, 1024, Some(4));
        let b = route("10.65.0.2/32", 3, 1024, Some(4));
        let c = route("10.65.1.0/26", 80, 1024, None);
        s.handle_notification(&RouteNetlinkMessage::NewRoute(a.clone()));
        s.handle_notification(&RouteNetlinkMessage::NewRoute(b.clone()));
        events(&mut s);
        // Notifications were lost: b went away, c came, a changed metric (a new key).
        s.handle_overrun();
        assert_eq!(s.poll_resync(), Some(Resync::Everything));
        let mut dump = s.start_route_dump();
        let a2 = route("10.65.0.1/32", 3, 512, Some(4));
        for m in [&a2, &c, &route("10.99.0.0/24", 2, 0, Some(4))] {
            s.handle_dumped_route(&mut dump, m);
        }
        s.finish_route_dump(dump);
        let ev = events(&mut s);
        let mut new: Vec<_> = ev.iter().filter_map(added).collect();
        new.sort();
        assert_eq!(
            new,
            [
                ("10.65.0.1/32".into(), 3, 512),
                ("10.65.1.0/26".into(), 80, 1024)
            ]
        );
        let mut gone: Vec<(String, u32)> = ev
            .iter()
            .filter_map(|e| match e {
                KernelEvent::RouteRemoved(r) => Some((r.prefix.to_string(), r.metric)),
                _ => None,
            })
            .collect();
        gone.sort();
        assert_eq!(
            gone,
            [("10.65.0.1/32".into(), 1024), ("10.65.0.2/32".into(), 1024)]
        );
        assert_eq!(ev.last(), Some(&KernelEvent::Synced));
        assert_eq!(s.poll_resync(), None);
        // The same dump again: only Synced.
        let mut dump = s.start_route_dump();
        s.handle_dumped_route(&mut dump, &a2);
        s.handle_dumped_route(&mut dump, &c);
        s.finish_route_dump(dump);
        assert_eq!(events(&mut s), [KernelEvent::Synced]);
    }

    #[test]
    fn a_full_reread_wins_over_a_route_reread() {
        let mut s = synced();
        s.handle_overrun();
        s.handle_notification(&link(4, "cali1", false));
        assert_eq!(s.poll_resync(), Some(Resync::Everything));
        s.handle_lost("socket closed".into());
        assert_eq!(s.poll_resync(), Some(Resync::Everything));
        assert!(events(&mut s).contains(&KernelEvent::Lost("socket closed".into())));
    }

    #[test]
    fn link_and_address_dumps_report_differences() {
        let mut s = synced();
        s.handle_notification(&RouteNetlinkMessage::NewAddress(address(4, "10.0.0.1/24")));
        assert!(
            matches!(&events(&mut s)[..], [KernelEvent::AddressAdded(a)] if a.ifname.as_deref() == Some("cali1"))
        );
        s.handle_notification(&RouteNetlinkMessage::NewAddress(address(4, "10.0.0.1/24")));
        assert!(events(&mut s).is_empty(), "a repeat");
        // The re-read: cali1 gone, eth0 new; the address gone, another new.
        let mut links = LinkTable::new();
        links.insert(
            2,
            Link {
                index: 2,
                name: "eth0".into(),
                up: true,
            },
        );
        s.handle_link_dump(links);
        let ev = events(&mut s);
        assert!(ev
            .iter()
            .any(|e| matches!(e, KernelEvent::LinkUp(l) if l.name == "eth0")));
        assert!(ev
            .iter()
            .any(|e| matches!(e, KernelEvent::LinkRemoved(l) if l.name == "cali1")));
        let new = address_from_msg(&address(2, "192.168.1.1/24"), s.links()).unwrap();
        s.handle_address_dump([new]);
        let ev = events(&mut s);
        assert!(ev
            .iter()
            .any(|e| matches!(e, KernelEvent::AddressRemoved(a) if a.ifindex == 4)));
        assert!(ev.iter().any(
            |e| matches!(e, KernelEvent::AddressAdded(a) if a.ifname.as_deref() == Some("eth0"))
        ));
        // Its removal.
        let mut del = address(2, "192.168.1.1/24");
        del.header.index = 2;
        s.handle_notification(&RouteNetlinkMessage::DelAddress(del));
        assert!(matches!(
            &events(&mut s)[..],
            [KernelEvent::AddressRemoved(_)]
        ));
    }
}
