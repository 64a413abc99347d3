//! Per-prefix reconciliation state: what we want in the kernel and what (as far as we know)
//! it holds.
//!
//! # Memory
//! One 32-byte [`Entry`] per route (56 bytes with its key in the map): next-hop sets are
//! interned and referenced by a thin pointer (form.rs), and what is rarely needed (the kernel
//! form while it differs from the wanted one, the RIB's route when a retry must re-resolve
//! it) sits behind one optional pointer.

use super::fib::FibRoute;
use super::form::RouteForm;

/// Per-prefix state, one per installed route: 32 bytes (56 with its key in the map). What
/// is rarely needed lives behind one optional pointer ([`Extra`]).
#[derive(Debug, Clone)]
pub(crate) struct Entry {
    /// What we want there (`None`: withdraw).
    pub want: Option<RouteForm>,
    /// The kernel form when it is not `want`, and the RIB's route when it must be kept.
    extra: Option<Box<Extra>>,
    /// Our route in the kernel is exactly `want`.
    kernel_is_want: bool,
    /// Adopted from a previous run and not refreshed since.
    pub stale: bool,
    /// Our route may have been removed behind our back: rewrite it even if it looks current.
    pub verify: bool,
    /// Must be looked at again: it is in the reconciler's queue, or will be put there when
    /// its request in flight is answered.
    pub queued: bool,
    /// A request for this prefix is in flight (at most one at a time).
    pub in_flight: bool,
    /// The RIB's latest route does not resolve yet (an unknown device): `want` holds what
    /// the kernel had, and the retry is the one that resolves it again.
    pub unresolved: bool,
}

/// The rare parts of an [`Entry`].
#[derive(Debug, Clone, Default)]
struct Extra {
    /// Our route as it is in the kernel, when it is not `want` (see `kernel_is_want`):
    /// transient, between a change and its acknowledgement, or after a failure.
    kernel_other: Option<RouteForm>,
    /// The RIB's route, kept only when its kernel form depends on links or addresses
    /// (tunnel, cross-subnet or named-device next hops) so a retry can re-resolve it.
    route: Option<FibRoute>,
}

impl Entry {
    pub fn absent() -> Self {
        Entry {
            want: None,
            extra: None,
            kernel_is_want: false,
            stale: false,
            verify: false,
            queued: false,
            in_flight: false,
            unresolved: false,
        }
    }

    /// A route adopted from a previous run: kept as it is until refreshed or swept.
    pub fn adopted(form: RouteForm) -> Self {
        Entry {
            want: Some(form),
            kernel_is_want: true,
            stale: true,
            ..Entry::absent()
        }
    }

    /// Our route as it is in the kernel (as far as we know).
    pub fn kernel(&self) -> Option<&RouteForm> {
        if self.kernel_is_want {
            self.want.as_ref()
        } else {
            self.extra.as_ref().and_then(|x| x.kernel_other.as_ref())
        }
    }

    /// The RIB's route, when kept (see [`Extra::route`]).
    pub fn route(&self) -> Option<&FibRoute> {
        self.extra.as_ref().and_then(|x| x.route.as_ref())
    }

    pub fn set_route(&mut self, route: Option<FibRoute>) {
        self.update_extra(|x| x.route = route);
    }

    fn set_kernel_other(&mut self, kernel: Option<RouteForm>) {
        self.update_extra(|x| x.kernel_other = kernel);
    }

    /// Changes the rare parts, allocating them only when something is to be kept.
    fn update_extra(&mut self, f: impl FnOnce(&mut Extra)) {
        let mut x = self.extra.take().map_or_else(Extra::default, |b| *b);
        f(&mut x);
        if x.kernel_other.is_some() || x.route.is_some() {
            self.extra = Some(Box::new(x));
        }
    }

    pub fn set_want(&mut self, want: Option<RouteForm>) {
        if self.kernel_is_want {
            let was = self.want.take();
            self.set_kernel_other(was);
            self.kernel_is_want = false;
        }
        self.want = want;
    }

    /// Want what the kernel holds (nothing new to write).
    pub fn keep_kernel(&mut self) {
        let k = self.kernel().cloned();
        self.set_want(k.clone());
        self.set_kernel(k);
    }

    /// The kernel holds `kernel` (shared with `want` when they are equal, so an entry in
    /// line with the kernel carries no extra allocation).
    pub fn set_kernel(&mut self, kernel: Option<RouteForm>) {
        if kernel.is_some() && kernel == self.want {
            self.set_kernel_other(None);
            self.kernel_is_want = true;
        } else {
            self.kernel_is_want = false;
            self.set_kernel_other(kernel);
        }
    }

    /// Nothing wanted, nothing in the kernel, nothing waiting: the entry can go.
    pub fn is_void(&self) -> bool {
        self.want.is_none() && self.kernel().is_none() && self.route().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::super::fib::FibAction;
    use super::super::form::form_for_tests;
    use super::*;
    use ipnet::IpNet;

    #[test]
    fn per_route_state_stays_small() {
        // One Entry per installed route: a million routes cost 2^21 map slots of
        // (IpNet, Entry). Keep the sizes the docs state.
        assert_eq!(std::mem::size_of::<Entry>(), 32);
        assert_eq!(std::mem::size_of::<(IpNet, Entry)>(), 56);
    }

    #[test]
    fn entry_keeps_rare_parts_only_while_needed() {
        let form = |metric| form_for_tests(metric, &[]);
        let mut e = Entry::absent();
        e.set_want(Some(form(10)));
        assert!(e.extra.is_none());
        e.set_kernel(Some(form(10)));
        assert_eq!(e.kernel(), Some(&form(10)));
        assert!(e.extra.is_none());
        // A new want: the old kernel form is kept aside until acknowledged.
        e.set_want(Some(form(20)));
        assert_eq!(e.kernel(), Some(&form(10)));
        assert!(e.extra.is_some());
        e.set_kernel(Some(form(20)));
        assert_eq!(e.kernel(), Some(&form(20)));
        assert!(e.extra.is_none());
        // The route kept for re-resolution comes and goes on its own.
        let r = FibRoute {
            prefix: "10.0.0.0/24".parse().unwrap(),
            action: FibAction::Blackhole,
            local_pref: None,
        };
        e.set_route(Some(r.clone()));
        assert_eq!(e.route(), Some(&r));
        e.set_route(None);
        assert!(e.route().is_none() && e.extra.is_none());
        // Withdrawn and deleted: void.
        e.set_want(None);
        assert!(!e.is_void());
        e.set_kernel(None);
        assert!(e.is_void());
    }
}
