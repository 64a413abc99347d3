//! Next-hop resolution, provided by the caller (RFC 4271 9.1.2: a route whose next hop
//! cannot be resolved is not eligible; the IGP cost feeds step 9.1.2.2 e), and the
//! interfaces the next hops in use resolve through, which policy `interface` conditions
//! match for BGP routes (BIRD's `ifname` of a route with a recursive gateway).
//!
//! The resolver is passed to each call that decides, rather than stored, so that the RIB
//! holds no reference into the caller's state (the kernel's view of the routing table
//! in the daemon, nothing in the simulator). The interfaces are remembered
//! ([`NextHopInterfaces`]) because policies are also evaluated where no resolver is at
//! hand (export to a peer that comes up, queries); the caller says when its answers
//! changed ([`Rib::resolver_changed`](crate::Rib::resolver_changed)).

use std::net::IpAddr;
use std::sync::Arc;

use rustc_hash::FxHashMap;

/// Caller-provided next-hop resolution (RFC 4271 9.1.2: routes whose next hop cannot be
/// resolved are excluded; the IGP cost feeds step 9.1.2.2 e).
pub trait NextHopResolver {
    /// The IGP cost to reach `next_hop`, or `None` if it is unreachable.
    fn resolve(&self, next_hop: IpAddr) -> Option<u32>;

    /// Whether [`NextHopResolver::interface`] answers at all (the RIB skips asking).
    fn knows_interfaces(&self) -> bool {
        false
    }

    /// The interface `next_hop` is reached through (BIRD's `ifname` of a route with a
    /// recursive gateway), which policy `interface` conditions match for BGP routes.
    fn interface(&self, _next_hop: IpAddr) -> Option<Arc<str>> {
        None
    }
}

impl<F: Fn(IpAddr) -> Option<u32>> NextHopResolver for F {
    fn resolve(&self, next_hop: IpAddr) -> Option<u32> {
        self(next_hop)
    }
}

/// Resolves every next hop at cost 0 (directly connected or multihop without IGP).
#[derive(Copy, Clone, Debug, Default)]
pub struct AllReachable;

impl NextHopResolver for AllReachable {
    fn resolve(&self, _: IpAddr) -> Option<u32> {
        Some(0)
    }
}

/// Next hop → the interface it resolved through, as last answered by the resolver.
#[derive(Debug, Default)]
pub(crate) struct NextHopInterfaces(FxHashMap<IpAddr, Option<Arc<str>>>);

impl NextHopInterfaces {
    /// The interface of `next_hop`, when known.
    pub fn of(&self, next_hop: Option<IpAddr>) -> Option<&str> {
        next_hop
            .and_then(|a| self.0.get(&a))
            .and_then(|i| i.as_deref())
    }

    /// Ask `resolver` about `next_hop` unless it was asked already.
    pub fn learn(&mut self, next_hop: IpAddr, resolver: &dyn NextHopResolver) {
        if resolver.knows_interfaces() {
            self.0
                .entry(next_hop)
                .or_insert_with(|| resolver.interface(next_hop));
        }
    }

    /// Forget every answer (the resolver's view changed).
    pub fn clear(&mut self) {
        self.0.clear();
    }
}
