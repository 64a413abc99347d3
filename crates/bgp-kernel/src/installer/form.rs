//! The kernel form of a route, and how a RIB route is resolved into it.
//!
//! The RIB hands over next hops with an installation mode (direct, tunnel, cross-subnet) and
//! maybe a device name; the kernel wants a metric, a type and next hops as (gateway, ifindex,
//! onlink). [`Resolver`] does that translation from what it knows of the links and
//! connected subnets (fed from dumps and the watcher's events), and interns next-hop sets: a
//! cluster has few distinct next hops and many routes, so one shared set per distinct value
//! keeps a million routes at 16 bytes of form each.
//!
//! Pure: no socket, no clock. The reconciler owns one resolver.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use rustc_hash::FxHashSet;

use super::fib::{FibAction, FibNextHop, FibRoute, NextHopMode};
use crate::config::ExportConfig;
use crate::convert::LinkTable;
use crate::types::{Address, KernelEvent, KernelRoute, Link, RouteKind};

/// One next hop in kernel terms. `ifindex` 0 lets the kernel choose the device.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResolvedHop {
    /// Next-hop address (`RTA_GATEWAY`, or `RTA_VIA` for an IPv6 next hop of an IPv4
    /// prefix, RFC 8950).
    pub gateway: IpAddr,
    /// Output interface (`RTA_OIF` / `rtnh_ifindex`), 0 for the kernel's choice.
    pub ifindex: u32,
    /// `RTNH_F_ONLINK`: the gateway is reachable through the device without a connected
    /// route (the tunnel forms).
    pub onlink: bool,
}

/// A sorted next-hop set, shared between the routes that have the same (interned). A thin
/// pointer (8 bytes, where `Arc<[ResolvedHop]>` takes 16): there is one per route.
type HopSet = Arc<Box<[ResolvedHop]>>;

/// The kernel form of one of our routes (16 bytes): what the kernel holds, or should.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteForm {
    metric: u32,
    blackhole: bool,
    hops: HopSet,
}

impl RouteForm {
    /// `RTA_PRIORITY`: with the table and prefix, the key of the route in the kernel.
    pub fn metric(&self) -> u32 {
        self.metric
    }

    /// `RTN_BLACKHOLE` (no next hops) rather than `RTN_UNICAST`.
    pub fn is_blackhole(&self) -> bool {
        self.blackhole
    }

    /// The next hops, sorted; two or more make an ECMP route (`RTA_MULTIPATH`).
    pub fn hops(&self) -> &[ResolvedHop] {
        &self.hops
    }

    /// Whether the kernel route `have` already implements the wanted form `self` (a wanted
    /// hop without a device accepts whatever device the kernel picked).
    pub(crate) fn satisfied_by(&self, have: &RouteForm) -> bool {
        self.metric == have.metric
            && self.blackhole == have.blackhole
            && self.hops.len() == have.hops.len()
            && self.hops.iter().zip(have.hops.iter()).all(|(w, h)| {
                w.gateway == h.gateway
                    && w.onlink == h.onlink
                    && (w.ifindex == 0 || w.ifindex == h.ifindex)
            })
    }
}

/// Why a RIB route has no kernel form yet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Unresolved {
    /// A named device (or the tunnel device) is not known (yet).
    UnknownInterface(String),
    /// A forward route without next hops.
    NoNextHop,
}

/// Turns RIB routes into kernel forms, from what it knows of links and connected subnets.
#[derive(Debug, Default)]
pub(crate) struct Resolver {
    links: LinkTable,
    /// Connected subnets (ifindex, address) for the cross-subnet decision.
    subnets: HashSet<(u32, IpNet)>,
    /// Interned next-hop sets.
    hop_sets: FxHashSet<HopSet>,
}

impl Resolver {
    /// Replace the link table (a dump).
    pub fn set_links(&mut self, links: impl IntoIterator<Item = Link>) {
        self.links = links.into_iter().map(|l| (l.index, l)).collect();
    }

    /// Replace the connected subnets (a dump).
    pub fn set_addresses(&mut self, addrs: impl IntoIterator<Item = Address>) {
        self.subnets = addrs.into_iter().map(|a| (a.ifindex, a.address)).collect();
    }

    /// The links as last known.
    pub fn links(&self) -> &LinkTable {
        &self.links
    }

    /// Follow the watcher's link and address events.
    pub fn observe(&mut self, ev: &KernelEvent) {
        match ev {
            KernelEvent::LinkUp(l) | KernelEvent::LinkDown(l) => {
                self.links.insert(l.index, l.clone());
            }
            KernelEvent::LinkRemoved(l) => {
                self.links.remove(&l.index);
                self.subnets.retain(|(i, _)| *i != l.index);
            }
            KernelEvent::AddressAdded(a) => {
                self.subnets.insert((a.ifindex, a.address));
            }
            KernelEvent::AddressRemoved(a) => {
                self.subnets.remove(&(a.ifindex, a.address));
            }
            _ => {}
        }
    }

    /// Turn a RIB route into its kernel form.
    pub fn resolve(&mut self, cfg: &ExportConfig, r: &FibRoute) -> Result<RouteForm, Unresolved> {
        let metric = cfg.metric_for(r.local_pref);
        let mut hops = Vec::new();
        match &r.action {
            FibAction::Blackhole => {
                return Ok(RouteForm {
                    metric,
                    blackhole: true,
                    hops: self.intern(hops),
                })
            }
            FibAction::Forward(nhs) => {
                for nh in nhs {
                    let hop = match plain_v6_hop_of_v4_prefix(r.prefix, nh) {
                        Some(h) => h,
                        None => self.resolve_hop(cfg, nh)?,
                    };
                    hops.push(hop);
                }
            }
        }
        if hops.is_empty() {
            return Err(Unresolved::NoNextHop);
        }
        hops.sort();
        hops.dedup();
        Ok(RouteForm {
            metric,
            blackhole: false,
            hops: self.intern(hops),
        })
    }

    /// The form of one of our routes as dumped from the kernel (next hops interned: a
    /// restart may adopt a million routes).
    pub fn form_of_kernel(&mut self, r: &KernelRoute) -> RouteForm {
        let mut hops: Vec<ResolvedHop> = r
            .nexthops
            .iter()
            .filter_map(|nh| {
                nh.gateway.map(|gateway| ResolvedHop {
                    gateway,
                    ifindex: nh.ifindex,
                    onlink: nh.onlink,
                })
            })
            .collect();
        hops.sort();
        RouteForm {
            metric: r.metric,
            blackhole: r.kind == RouteKind::Blackhole,
            hops: self.intern(hops),
        }
    }

    fn ifindex_of(&self, name: &str) -> Result<u32, Unresolved> {
        self.links
            .values()
            .find(|l| l.name == name)
            .map(|l| l.index)
            .ok_or_else(|| Unresolved::UnknownInterface(name.to_string()))
    }

    fn resolve_hop(&self, cfg: &ExportConfig, nh: &FibNextHop) -> Result<ResolvedHop, Unresolved> {
        let tunnel = || -> Result<ResolvedHop, Unresolved> {
            Ok(ResolvedHop {
                gateway: nh.gateway,
                ifindex: self.ifindex_of(&cfg.tunnel_device)?,
                onlink: true,
            })
        };
        match nh.mode {
            NextHopMode::Direct => Ok(ResolvedHop {
                gateway: nh.gateway,
                ifindex: match nh.device.as_deref() {
                    Some(d) => self.ifindex_of(d)?,
                    None => 0,
                },
                onlink: false,
            }),
            NextHopMode::Tunnel => tunnel(),
            NextHopMode::CrossSubnet => match self.local_subnet_of(cfg, nh.gateway) {
                Some(ifindex) => Ok(ResolvedHop {
                    gateway: nh.gateway,
                    ifindex,
                    onlink: false,
                }),
                None => tunnel(),
            },
        }
    }

    /// The interface whose connected subnet contains `ip` (longest match), ignoring host
    /// addresses (/32, /128) and the tunnel device itself.
    fn local_subnet_of(&self, cfg: &ExportConfig, ip: IpAddr) -> Option<u32> {
        let tunnel = self.ifindex_of(&cfg.tunnel_device).ok();
        self.subnets
            .iter()
            .filter(|(i, net)| {
                Some(*i) != tunnel
                    && net.prefix_len() < net.max_prefix_len()
                    && net.trunc().contains(&ip)
            })
            .max_by_key(|(_, net)| net.prefix_len())
            .map(|(i, _)| *i)
    }

    fn intern(&mut self, hops: Vec<ResolvedHop>) -> HopSet {
        let hops = hops.into_boxed_slice();
        if let Some(a) = self.hop_sets.get(&hops) {
            return a.clone();
        }
        if self.hop_sets.len() >= 4096 {
            // Forget sets no route uses any more.
            self.hop_sets.retain(|a| Arc::strong_count(a) > 1);
        }
        let a: HopSet = Arc::new(hops);
        self.hop_sets.insert(a.clone());
        a
    }
}

/// RFC 8950: an IPv6 next hop of an IPv4 prefix is installed as a plain `via inet6 NH`
/// (`RTA_VIA`), whatever the tunnel mode says: the tunnel forms (IPIP, cross-subnet) are
/// IPv4 encapsulations of IPv4 next hops and cannot reach an IPv6 address. `None`: resolve
/// the next hop by its mode.
fn plain_v6_hop_of_v4_prefix(prefix: IpNet, nh: &FibNextHop) -> Option<ResolvedHop> {
    (matches!(prefix, IpNet::V4(_)) && nh.gateway.is_ipv6() && nh.mode != NextHopMode::Direct)
        .then_some(ResolvedHop {
            gateway: nh.gateway,
            ifindex: 0,
            onlink: false,
        })
}

/// Whether a route's kernel form depends on links or addresses (so it must be kept to be
/// resolved again on retry).
pub(crate) fn needs_reresolve(r: &FibRoute) -> bool {
    match &r.action {
        FibAction::Blackhole => false,
        FibAction::Forward(hops) => hops
            .iter()
            .any(|h| h.mode != NextHopMode::Direct || h.device.is_some()),
    }
}

#[cfg(test)]
impl RouteForm {
    /// A form from its parts (hops sorted here, as resolution does).
    pub(crate) fn from_parts(metric: u32, blackhole: bool, mut hops: Vec<ResolvedHop>) -> Self {
        hops.sort();
        RouteForm {
            metric,
            blackhole,
            hops: Arc::new(hops.into_boxed_slice()),
        }
    }
}

/// A form from (gateway, ifindex, onlink) triples; none makes a blackhole.
#[cfg(test)]
pub(crate) fn form_for_tests(metric: u32, hops: &[(&str, u32, bool)]) -> RouteForm {
    let hops: Vec<ResolvedHop> = hops
        .iter()
        .map(|(gw, ifindex, onlink)| ResolvedHop {
            gateway: gw.parse().expect("test gateway"),
            ifindex: *ifindex,
            onlink: *onlink,
        })
        .collect();
    RouteForm::from_parts(metric, hops.is_empty(), hops)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nh(gw: &str, mode: NextHopMode, device: Option<&str>) -> FibNextHop {
        FibNextHop {
            gateway: gw.parse().unwrap(),
            mode,
            device: device.map(str::to_string),
        }
    }

    fn fwd(prefix: &str, hops: Vec<FibNextHop>) -> FibRoute {
        FibRoute {
            prefix: prefix.parse().unwrap(),
            action: FibAction::Forward(hops),
            local_pref: Some(100),
        }
    }

    fn resolver() -> Resolver {
        let mut r = Resolver::default();
        r.set_links([
            Link {
                index: 2,
                name: "eth0".into(),
                up: true,
            },
            Link {
                index: 3,
                name: "tunl0".into(),
                up: true,
            },
        ]);
        r.set_addresses([
            Address {
                ifindex: 2,
                ifname: Some("eth0".into()),
                address: "10.0.0.1/24".parse().unwrap(),
            },
            Address {
                ifindex: 3,
                ifname: Some("tunl0".into()),
                address: "192.168.0.1/24".parse().unwrap(),
            },
        ]);
        r
    }

    #[test]
    fn modes_resolve_to_their_kernel_forms() {
        let cfg = ExportConfig::default();
        let mut r = resolver();
        let f = r
            .resolve(
                &cfg,
                &fwd(
                    "10.1.0.0/24",
                    vec![nh("10.0.0.2", NextHopMode::Direct, None)],
                ),
            )
            .unwrap();
        assert_eq!(f, form_for_tests(2_147_483_547, &[("10.0.0.2", 0, false)]));
        let f = r
            .resolve(
                &cfg,
                &fwd(
                    "10.1.0.0/24",
                    vec![nh("10.0.0.2", NextHopMode::Direct, Some("eth0"))],
                ),
            )
            .unwrap();
        assert_eq!(
            f.hops(),
            form_for_tests(0, &[("10.0.0.2", 2, false)]).hops()
        );
        let f = r
            .resolve(
                &cfg,
                &fwd(
                    "10.1.0.0/24",
                    vec![nh("172.16.0.1", NextHopMode::Tunnel, None)],
                ),
            )
            .unwrap();
        assert_eq!(
            f.hops(),
            form_for_tests(0, &[("172.16.0.1", 3, true)]).hops()
        );
        // Cross-subnet: direct inside a connected subnet (never the tunnel's own), tunnel
        // outside.
        let f = r
            .resolve(
                &cfg,
                &fwd(
                    "10.1.0.0/24",
                    vec![nh("10.0.0.9", NextHopMode::CrossSubnet, None)],
                ),
            )
            .unwrap();
        assert_eq!(
            f.hops(),
            form_for_tests(0, &[("10.0.0.9", 2, false)]).hops()
        );
        let f = r
            .resolve(
                &cfg,
                &fwd(
                    "10.1.0.0/24",
                    vec![nh("192.168.0.9", NextHopMode::CrossSubnet, None)],
                ),
            )
            .unwrap();
        assert_eq!(
            f.hops(),
            form_for_tests(0, &[("192.168.0.9", 3, true)]).hops()
        );
        // ECMP: sorted and deduplicated, so the order the RIB gives does not matter.
        let a = r
            .resolve(
                &cfg,
                &fwd(
                    "10.1.0.0/24",
                    vec![
                        nh("10.0.0.3", NextHopMode::Direct, None),
                        nh("10.0.0.2", NextHopMode::Direct, None),
                        nh("10.0.0.3", NextHopMode::Direct, None),
                    ],
                ),
            )
            .unwrap();
        assert_eq!(a.hops().len(), 2);
        let b = r
            .resolve(
                &cfg,
                &fwd(
                    "10.1.0.0/24",
                    vec![
                        nh("10.0.0.2", NextHopMode::Direct, None),
                        nh("10.0.0.3", NextHopMode::Direct, None),
                    ],
                ),
            )
            .unwrap();
        assert_eq!(a, b);
        assert!(Arc::ptr_eq(&a.hops, &b.hops), "interned");
    }

    #[test]
    fn unknown_devices_and_empty_hop_lists_do_not_resolve() {
        let cfg = ExportConfig::default();
        let mut r = Resolver::default();
        assert_eq!(
            r.resolve(
                &cfg,
                &fwd(
                    "10.1.0.0/24",
                    vec![nh("1.1.1.1", NextHopMode::Tunnel, None)]
                )
            ),
            Err(Unresolved::UnknownInterface("tunl0".into()))
        );
        assert_eq!(
            r.resolve(
                &cfg,
                &fwd(
                    "10.1.0.0/24",
                    vec![nh("1.1.1.1", NextHopMode::Direct, Some("x"))]
                )
            ),
            Err(Unresolved::UnknownInterface("x".into()))
        );
        assert_eq!(
            r.resolve(&cfg, &fwd("10.1.0.0/24", vec![])),
            Err(Unresolved::NoNextHop)
        );
        // The link appears (an event from the watcher): now it resolves.
        r.observe(&KernelEvent::LinkUp(Link {
            index: 9,
            name: "tunl0".into(),
            up: true,
        }));
        assert!(r
            .resolve(
                &cfg,
                &fwd(
                    "10.1.0.0/24",
                    vec![nh("1.1.1.1", NextHopMode::Tunnel, None)]
                )
            )
            .is_ok());
    }

    #[test]
    fn v6_next_hop_of_v4_prefix_is_never_tunnelled() {
        let v4: IpNet = "10.77.0.0/24".parse().unwrap();
        let v6: IpNet = "2001:db8:77::/48".parse().unwrap();
        let plain = Some(ResolvedHop {
            gateway: "2001:db8::1".parse().unwrap(),
            ifindex: 0,
            onlink: false,
        });
        for mode in [NextHopMode::Tunnel, NextHopMode::CrossSubnet] {
            assert_eq!(
                plain_v6_hop_of_v4_prefix(v4, &nh("2001:db8::1", mode, None)),
                plain
            );
            // IPv4 next hops, and IPv6 prefixes (an IPv6 tunnel device), keep their mode.
            assert_eq!(
                plain_v6_hop_of_v4_prefix(v4, &nh("192.0.2.1", mode, None)),
                None
            );
            assert_eq!(
                plain_v6_hop_of_v4_prefix(v6, &nh("2001:db8::1", mode, None)),
                None
            );
        }
        // Direct is resolved as usual (it may name a device).
        let direct = nh("2001:db8::1", NextHopMode::Direct, None);
        assert_eq!(plain_v6_hop_of_v4_prefix(v4, &direct), None);
    }

    #[test]
    fn form_comparison_accepts_kernel_chosen_device() {
        let want = form_for_tests(10, &[("10.0.0.2", 0, false)]);
        let have = form_for_tests(10, &[("10.0.0.2", 3, false)]);
        assert!(want.satisfied_by(&have));
        assert!(!have.satisfied_by(&form_for_tests(10, &[("10.0.0.2", 4, false)])));
        assert!(!want.satisfied_by(&form_for_tests(10, &[("10.0.0.2", 3, true)])));
        assert!(!want.satisfied_by(&form_for_tests(11, &[("10.0.0.2", 3, false)])));
    }

    #[test]
    fn form_stays_small() {
        // One form per installed route (see entry.rs for the whole per-route budget).
        assert_eq!(std::mem::size_of::<RouteForm>(), 16);
        assert_eq!(std::mem::size_of::<Option<RouteForm>>(), 16);
    }
}
