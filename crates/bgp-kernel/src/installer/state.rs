//! What the installer reports about the kernel FIB for operators (`bgpctl show fib`, the
//! metrics endpoint): the routes we installed, those the kernel refused and why, the
//! retries pending, and counters of refusals (by reason) and retries since the start.
//!
//! Built on request from the reconciler's state ([`Reconciler::fib_state`]): nothing is
//! kept besides the two counters, so the installer's hot path pays nothing for it.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::time::{Duration, Instant};

use ipnet::IpNet;

use super::form::RouteForm;
use super::reconciler::Reconciler;
use crate::convert::LinkTable;
use crate::types::Errno;

/// Refusals and retries counted since the installer started.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FibCounters {
    /// Route writes the kernel refused, by reason ([`errno_name`]).
    pub refused: BTreeMap<String, u64>,
    /// Writes retried after a refusal.
    pub retried: u64,
}

impl FibCounters {
    pub(crate) fn count_refusal(&mut self, errno: Errno) {
        *self.refused.entry(errno_name(errno)).or_default() += 1;
    }
}

/// A route the kernel refused, waiting for its retry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refused {
    /// The destination.
    pub prefix: IpNet,
    /// Why ([`errno_name`]).
    pub reason: String,
    /// Refusals in a row.
    pub attempts: u32,
    /// Time until the next try; `None` while it is under way.
    pub retry_in: Option<Duration>,
}

/// One of our routes in the kernel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Installed {
    /// The destination.
    pub prefix: IpNet,
    /// `RTA_PRIORITY`.
    pub metric: u32,
    /// How it forwards, as `ip route` writes it: `blackhole`, or `via GW dev IF onlink`
    /// per next hop.
    pub route: String,
    /// Adopted from a previous run and not refreshed by the RIB yet.
    pub stale: bool,
}

/// The state of the kernel FIB as the installer sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FibState {
    /// Routes we hold in the kernel (sorted by prefix; empty when not asked for).
    pub installed: Vec<Installed>,
    /// How many routes we hold in the kernel.
    pub installed_count: usize,
    /// Routes refused and waiting for a retry (sorted by prefix).
    pub refused: Vec<Refused>,
    /// Counters since the start.
    pub counters: FibCounters,
    /// Why the kernel's state is unknown and being reconciled, if it is.
    pub recovering: Option<String>,
}

/// The symbolic name of a route write's error (`EEXIST`, `ENETUNREACH`, ...), or
/// `errno N` for one without a name here.
pub fn errno_name(errno: Errno) -> String {
    let name = match errno {
        libc::EEXIST => "EEXIST",
        libc::ENETUNREACH => "ENETUNREACH",
        libc::EHOSTUNREACH => "EHOSTUNREACH",
        libc::ENODEV => "ENODEV",
        libc::EINVAL => "EINVAL",
        libc::EPERM => "EPERM",
        libc::EACCES => "EACCES",
        libc::ENOBUFS => "ENOBUFS",
        libc::ENOMEM => "ENOMEM",
        libc::ENOENT => "ENOENT",
        libc::ESRCH => "ESRCH",
        libc::EAFNOSUPPORT => "EAFNOSUPPORT",
        libc::EOPNOTSUPP => "EOPNOTSUPP",
        libc::EBUSY => "EBUSY",
        _ => return format!("errno {errno}"),
    };
    name.to_owned()
}

/// `form` as `ip route` writes the part after the prefix, without the metric.
fn render(form: &RouteForm, links: &LinkTable) -> String {
    if form.is_blackhole() {
        return "blackhole".to_owned();
    }
    let mut s = String::new();
    for (i, h) in form.hops().iter().enumerate() {
        if i > 0 {
            s.push_str(", ");
        }
        let _ = write!(s, "via {}", h.gateway);
        if let Some(l) = links.get(&h.ifindex) {
            let _ = write!(s, " dev {}", l.name);
        }
        if h.onlink {
            s.push_str(" onlink");
        }
    }
    s
}

impl Reconciler {
    /// The state of the kernel FIB at `now`; the list of installed routes only with
    /// `routes` (it is as long as the table).
    pub fn fib_state(&self, now: Instant, routes: bool) -> FibState {
        let mut installed = Vec::new();
        let mut installed_count = 0;
        for (p, e) in self.entries() {
            let Some(k) = e.kernel() else { continue };
            installed_count += 1;
            if routes {
                installed.push(Installed {
                    prefix: *p,
                    metric: k.metric(),
                    route: render(k, self.links()),
                    stale: e.stale,
                });
            }
        }
        installed.sort_unstable_by_key(|a| a.prefix);
        let mut refused: Vec<Refused> = self
            .retrying()
            .map(|(p, r)| Refused {
                prefix: *p,
                reason: errno_name(r.errno),
                attempts: r.attempts,
                retry_in: r.at.map(|at| at.saturating_duration_since(now)),
            })
            .collect();
        refused.sort_unstable_by_key(|a| a.prefix);
        FibState {
            installed,
            installed_count,
            refused,
            counters: self.fib_counters().clone(),
            recovering: self.is_recovering().map(str::to_owned),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_names() {
        assert_eq!(errno_name(libc::ENETUNREACH), "ENETUNREACH");
        assert_eq!(errno_name(libc::EEXIST), "EEXIST");
        assert_eq!(errno_name(9999), "errno 9999");
        let mut c = FibCounters::default();
        c.count_refusal(libc::EEXIST);
        c.count_refusal(libc::EEXIST);
        c.count_refusal(libc::ENETUNREACH);
        assert_eq!(c.refused.get("EEXIST"), Some(&2));
        assert_eq!(c.refused.get("ENETUNREACH"), Some(&1));
    }
}
