//! What the RIB hands to the installer: routes to install (blackhole or forward, with each
//! next hop's installation mode) or withdraw, and the counts of what a call did.

use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// How one next hop is installed (chosen per route by policy, e.g. Calico's IPIP mode).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NextHopMode {
    /// `via NH [dev X]`: the next hop is on a connected subnet (Calico "no encapsulation").
    Direct,
    /// `via NH dev <tunnel_device> onlink` (Calico IPIP mode "Always").
    Tunnel,
    /// Direct when NH is inside a locally connected subnet, tunnel otherwise (Calico IPIP
    /// mode "CrossSubnet").
    CrossSubnet,
}

/// One next hop as the RIB hands it over (already resolved to an immediate neighbour).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FibNextHop {
    /// Next-hop address (an IPv6 next hop for an IPv4 prefix is installed with `RTA_VIA`).
    pub gateway: IpAddr,
    /// Installation form.
    pub mode: NextHopMode,
    /// Output device for `Direct` (None: the kernel picks it from the connected route).
    pub device: Option<String>,
}

/// What the kernel should do with a prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FibAction {
    /// `blackhole P`.
    Blackhole,
    /// Forward; two or more next hops make an ECMP route (`RTA_MULTIPATH`).
    Forward(Vec<FibNextHop>),
}

/// A route to install.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FibRoute {
    /// Destination (host bits are cleared on install).
    pub prefix: IpNet,
    /// Blackhole or forward.
    pub action: FibAction,
    /// LOCAL_PREF of the best path, mapped to the metric by `ExportConfig::metric`.
    pub local_pref: Option<u32>,
}

/// A change for [`crate::KernelInstaller::apply`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum FibOp {
    /// Install or update.
    Install(FibRoute),
    /// Remove our route for the prefix (other protocols' routes are never touched).
    Withdraw(IpNet),
}

/// Counts of what an `apply`, `retry_due`, `sweep_stale` or `shutdown` call did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// Routes newly added.
    pub added: usize,
    /// Routes replaced in place.
    pub replaced: usize,
    /// Routes deleted.
    pub deleted: usize,
    /// Installs that needed no kernel write (identical content).
    pub unchanged: usize,
    /// Requests the kernel refused; they are retried later.
    pub failed: usize,
}

impl std::ops::AddAssign for ApplyReport {
    fn add_assign(&mut self, r: ApplyReport) {
        self.added += r.added;
        self.replaced += r.replaced;
        self.deleted += r.deleted;
        self.unchanged += r.unchanged;
        self.failed += r.failed;
    }
}
