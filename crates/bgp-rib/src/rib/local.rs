//! Locally originated routes: static, kernel and connected ([`LocalRoute`]).
//!
//! In the route table a local route is a path of the local pseudo-peer whose path id is
//! its source's code, so it competes in the decision process like any path and one
//! prefix may hold one route per source. What only local routes have (the kernel's
//! interface, metric and protocol for policy conditions, and "advertise but do not
//! install") is kept here beside the table rather than in every path: a node may import
//! a million kernel routes, nearly all sharing those facts ([`KernelInfos`]).

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use bgp_proto::PathAttributes;
use ipnet::IpNet;
use rustc_hash::FxHashMap;

use crate::policy::{KernelInfo, RouteSource};
use crate::table::{Path, LOCAL_PEER};

/// A route originated locally.
#[derive(Clone, Debug)]
pub struct LocalRoute {
    pub prefix: IpNet,
    /// Static, kernel or connected.
    pub source: RouteSource,
    /// Gateway, if any (blackholes and connected routes have none).
    pub next_hop: Option<IpAddr>,
    /// Interface, metric, protocol of kernel and connected routes.
    pub kernel: KernelInfo,
    /// Advertise but do not install in the kernel (service CIDRs, /32 blackholes).
    pub no_install: bool,
    /// Extra attributes (communities, MED, LOCAL_PREF). ORIGIN defaults to IGP for static
    /// and connected routes and INCOMPLETE for kernel routes.
    pub attrs: PathAttributes,
}

impl LocalRoute {
    pub fn new(prefix: IpNet, source: RouteSource) -> LocalRoute {
        LocalRoute {
            prefix,
            source,
            next_hop: None,
            kernel: KernelInfo::default(),
            no_install: false,
            attrs: PathAttributes::default(),
        }
    }
}

/// The path id standing for a local route's source (the local pseudo-peer's paths are
/// told apart by it).
pub(crate) fn local_code(s: RouteSource) -> u32 {
    match s {
        RouteSource::Bgp => 0,
        RouteSource::Static => 1,
        RouteSource::Kernel => 2,
        RouteSource::Connected => 3,
    }
}

/// The source of a local path with path id `code`.
pub(crate) fn local_source(code: u32) -> RouteSource {
    match code {
        1 => RouteSource::Static,
        2 => RouteSource::Kernel,
        _ => RouteSource::Connected,
    }
}

/// Per local route: the kernel facts, shared between the routes that have the same.
#[derive(Clone, Debug)]
pub(crate) struct LocalMeta {
    pub kernel: Arc<KernelInfo>,
    pub no_install: bool,
}

/// Interned [`KernelInfo`]s: most kernel routes share their interface, metric and protocol
/// (all the blackholes of a table, the routes of one device). Sets no route uses any more
/// are dropped when the set has doubled since the last clean-up.
#[derive(Debug, Default)]
struct KernelInfos {
    set: HashSet<Arc<KernelInfo>>,
    kept: usize,
}

impl KernelInfos {
    fn intern(&mut self, k: KernelInfo) -> Arc<KernelInfo> {
        if let Some(a) = self.set.get(&k) {
            return a.clone();
        }
        if self.set.len() >= 2 * self.kept.max(64) {
            self.set.retain(|a| Arc::strong_count(a) > 1);
            self.kept = self.set.len();
        }
        let a = Arc::new(k);
        self.set.insert(a.clone());
        a
    }
}

/// The local routes' own facts, by (prefix, source).
#[derive(Debug, Default)]
pub(crate) struct LocalRoutes {
    meta: FxHashMap<(IpNet, RouteSource), LocalMeta>,
    kernel: KernelInfos,
}

impl LocalRoutes {
    /// Record (or replace) the facts of the route for `prefix` from `source`.
    pub fn insert(
        &mut self,
        prefix: IpNet,
        source: RouteSource,
        kernel: KernelInfo,
        no_install: bool,
    ) {
        let kernel = self.kernel.intern(kernel);
        self.meta
            .insert((prefix, source), LocalMeta { kernel, no_install });
    }

    pub fn remove(&mut self, prefix: IpNet, source: RouteSource) {
        self.meta.remove(&(prefix, source));
    }

    pub fn get(&self, prefix: IpNet, source: RouteSource) -> Option<&LocalMeta> {
        self.meta.get(&(prefix, source))
    }
}

/// Where path `x` came from: a peer (BGP) or a local route's source.
pub(crate) fn path_source(x: &Path) -> RouteSource {
    if x.peer() == LOCAL_PEER {
        local_source(x.path_id)
    } else {
        RouteSource::Bgp
    }
}
