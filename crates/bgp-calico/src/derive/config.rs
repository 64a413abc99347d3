//! A [`NodeBgp`] as bgpd's ordinary configuration (the TOML schema of
//! `bgp_speaker::config::file`), so the engine runs it unchanged.
//!
//! BIRD's `protocol bgp` blocks become `[peers.NAME]` (with a `calico-peer` template for
//! what confd's `bgp_template` sets for every session); confd's filters become
//! `[policies.*]`:
//!
//! | BIRD (confd) | bgpd policy |
//! |---|---|
//! | start of every export filter (`krt_metric` ↔ `bgp_local_pref`) | `calico-export-prelude-v4` |
//! | `'bgp_NAME_exportFilterV4'()` | `bgpfilter-NAME-export-v4` (`-ibgp`, `-ebgp-asN` when AS path rules need it) |
//! | `calico_export_to_bgp_peers()` then `reject` | `calico-export-v4` |
//! | `'bgp_NAME_importFilterV4'()` | `bgpfilter-NAME-import-v4` |
//! | the rest of the import filter, `accept` | `calico-import-v4` |
//! | `calico_kernel_programming` (both daemons) | `calico-kernel`, the `[kernel.export]` policy |
//!
//! `bird_aggr.cfg`'s static routes become `[[originate]]` entries, and BIRD's kernel
//! protocol (`learn`, `persist`, protocol 12 "bird") the `[kernel]` section.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::ops::Range;
use std::path::PathBuf;

use bgp_kernel::{ExitAction, ExportConfig, ImportConfig, KernelConfig, MetricMapping, RouteKind};
use bgp_rib::policy::{
    InstallMode, IpFamily, LargeCommunityValue, Match, MetricRange, Modify, OriginValue, PeerType,
    Policy, PrefixRange, RouteSource, Rule, RuleAction, StdCommunity, Verdict,
};
use bgp_speaker::config::file::{
    ControlFile, FileConfig, GlobalFile, GracefulRestartFile, OriginateFile, PeerFile,
};
use bgp_speaker::config::{
    AddPathConfig, FamilyName, ListenAddr, NextHopMode, OnStop, PeerAddress,
};
use ipnet::IpNet;
use toml::Spanned;

use super::filters::{self, Direction, ExportContext};
use super::peerings::{NextHop, Peering};
use super::routes::{FamilyRoutes, PoolAction, Tunnel};
use super::{DeriveError, Family, NodeBgp};

/// BIRD's hold time, which Calico leaves at its default.
pub const BIRD_HOLD_TIME: u16 = 240;
/// BIRD's `multihop` TTL when no number is given.
pub const BIRD_MULTIHOP_TTL: u8 = 64;
/// BIRD's default graceful restart time.
pub const BIRD_RESTART_TIME: u16 = 120;
/// confd's `connect retry time`.
pub const CONNECT_RETRY: u16 = 5;
/// The template every session inherits from.
pub const PEER_TEMPLATE: &str = "calico-peer";
/// The kernel (FIB) policy.
pub const KERNEL_POLICY: &str = "calico-kernel";

/// Settings of the rendered configuration that do not come from the datastore.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RenderOptions {
    /// bgpd's control socket (`None`: bgpd's default).
    pub control_socket: Option<PathBuf>,
    /// BIRD-compatible socket for IPv4 (calico-node reads `/var/run/calico/bird.ctl`).
    pub bird_socket: Option<PathBuf>,
    /// BIRD-compatible socket for IPv6 (`/var/run/calico/bird6.ctl`).
    pub bird6_socket: Option<PathBuf>,
    /// Hold time of every session (BIRD's 240 s unless changed).
    pub hold_time: u16,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            control_socket: None,
            bird_socket: Some(PathBuf::from("/var/run/calico/bird.ctl")),
            bird6_socket: Some(PathBuf::from("/var/run/calico/bird6.ctl")),
            hold_time: BIRD_HOLD_TIME,
        }
    }
}

fn sp<T>(v: T) -> Spanned<T> {
    const NOWHERE: Range<usize> = 0..0;
    Spanned::new(NOWHERE, v)
}

fn ip_family(f: Family) -> IpFamily {
    match f {
        Family::V4 => IpFamily::Ipv4,
        Family::V6 => IpFamily::Ipv6,
    }
}

fn rule(name: impl Into<String>, matches: Match, set: Modify, action: RuleAction) -> Rule {
    Rule {
        name: Some(name.into()),
        matches,
        set,
        action,
    }
}

fn within(n: IpNet) -> Option<Vec<PrefixRange>> {
    Some(vec![PrefixRange::orlonger(n)])
}

/// Policy names.
pub fn prelude_name(f: Family) -> String {
    format!("calico-export-prelude-{}", f.suffix())
}

/// The policy ending every export chain.
pub fn export_name(f: Family) -> String {
    format!("calico-export-{}", f.suffix())
}

/// The policy ending every import chain.
pub fn import_name(f: Family) -> String {
    format!("calico-import-{}", f.suffix())
}

/// The policy of one BGPFilter for a direction, family and export context.
pub fn filter_policy_name(filter: &str, dir: Direction, f: Family, ctx: ExportContext) -> String {
    let base = format!("bgpfilter-{filter}-{}-{}", dir.name(), f.suffix());
    match ctx {
        ExportContext::Any => base,
        ExportContext::Ibgp => format!("{base}-ibgp"),
        ExportContext::Ebgp(asn) => format!("{base}-ebgp-as{asn}"),
    }
}

/// The start of confd's export filter: every route gets a kernel metric and a LOCAL_PREF
/// from each other (BGP routes keep their LOCAL_PREF, local ones get 2147483647 − metric,
/// the normal priority when they have no metric). Local routes go out with ORIGIN IGP, as
/// BIRD announces routes of its other protocols.
fn prelude(r: &FamilyRoutes) -> Policy {
    let src = |s: &[RouteSource]| Match {
        source: Some(s.to_vec()),
        ..Default::default()
    };
    Policy {
        rules: vec![
            rule(
                "metric-from-local-pref",
                src(&[RouteSource::Bgp]),
                Modify {
                    metric_from_local_pref: true,
                    ..Default::default()
                },
                RuleAction::Continue,
            ),
            rule(
                "normal-priority-of-static-routes",
                src(&[RouteSource::Static, RouteSource::Connected]),
                Modify {
                    metric: Some(r.normal_priority),
                    ..Default::default()
                },
                RuleAction::Continue,
            ),
            rule(
                "local-routes-igp-local-pref-from-metric",
                src(&[
                    RouteSource::Static,
                    RouteSource::Kernel,
                    RouteSource::Connected,
                ]),
                Modify {
                    local_pref_from_metric: true,
                    origin: Some(OriginValue::Igp),
                    ..Default::default()
                },
                RuleAction::Continue,
            ),
        ],
        default: Verdict::Reject,
    }
}

/// confd's `calico_export_to_bgp_peers()` and the final `reject`.
fn export(r: &FamilyRoutes, is_reflector: bool) -> Result<Policy, DeriveError> {
    let mut rules = Vec::new();
    for p in &r.export_disabled_pools {
        rules.push(rule(
            format!("pool {}: {}", p.cidr, p.reason),
            Match {
                prefix_in: within(p.cidr),
                ..Default::default()
            },
            Modify::default(),
            RuleAction::Reject,
        ));
    }
    rules.push(rule(
        "no-felix-tunnel-routes-over-ibgp",
        Match {
            peer_type: Some(PeerType::Ibgp),
            interface: Some(r.tunnel_interfaces.clone()),
            ..Default::default()
        },
        Modify::default(),
        RuleAction::Reject,
    ));
    rules.push(rule(
        "no-bpf-routes",
        Match {
            interface: Some(vec!["bpf*.cali".into()]),
            ..Default::default()
        },
        Modify::default(),
        RuleAction::Reject,
    ));
    for c in &r.communities {
        let mut set = Modify::default();
        for s in &c.standard {
            set.add_community.push(
                s.parse::<StdCommunity>().map_err(|e| {
                    DeriveError::invalid("BGPConfiguration prefixAdvertisements", e)
                })?,
            );
        }
        for l in &c.large {
            set.add_large_community.push(
                l.parse::<LargeCommunityValue>().map_err(|e| {
                    DeriveError::invalid("BGPConfiguration prefixAdvertisements", e)
                })?,
            );
        }
        rules.push(rule(
            format!("communities {}", c.cidr),
            Match {
                prefix_in: within(c.cidr),
                ..Default::default()
            },
            set,
            RuleAction::Continue,
        ));
    }
    for b in r.blocks.iter().filter(|b| b.confirmed()) {
        rules.push(rule(
            format!("block {}", b.cidr),
            Match {
                prefix_in: Some(vec![PrefixRange::exact(b.cidr)]),
                ..Default::default()
            },
            Modify::default(),
            RuleAction::Accept,
        ));
        rules.push(rule(
            format!("block {}: elevated more specifics", b.cidr),
            Match {
                prefix_in: within(b.cidr),
                metric: Some(MetricRange {
                    min: None,
                    max: Some(r.normal_priority.saturating_sub(1)),
                }),
                ..Default::default()
            },
            Modify::default(),
            RuleAction::Accept,
        ));
        rules.push(rule(
            format!("block {}: nothing else beneath it", b.cidr),
            Match {
                prefix_in: within(b.cidr),
                ..Default::default()
            },
            Modify::default(),
            RuleAction::Reject,
        ));
    }
    for s in &r.static_routes {
        rules.push(rule(
            format!("service range {s}"),
            Match {
                prefix_in: within(*s),
                ..Default::default()
            },
            Modify::default(),
            RuleAction::Accept,
        ));
    }
    if is_reflector {
        for s in &r.rr_accept {
            rules.push(rule(
                format!("reflected service range {s}"),
                Match {
                    prefix_in: within(*s),
                    ..Default::default()
                },
                Modify::default(),
                RuleAction::Accept,
            ));
        }
    }
    for p in &r.export_pools {
        rules.push(rule(
            format!("pool {}", p.cidr),
            Match {
                prefix_in: within(p.cidr),
                ..Default::default()
            },
            Modify::default(),
            RuleAction::Accept,
        ));
    }
    Ok(Policy {
        rules,
        default: Verdict::Reject,
    })
}

/// confd's `calico_kernel_programming` for both families.
fn kernel_policy(families: &[FamilyRoutes]) -> Policy {
    let mut rules = Vec::new();
    for r in families {
        let fam = Some(ip_family(r.family));
        for c in &r.reject_cidrs {
            rules.push(rule(
                format!("not programmed: {c}"),
                Match {
                    family: fam,
                    prefix_in: within(*c),
                    ..Default::default()
                },
                Modify::default(),
                RuleAction::Reject,
            ));
        }
        for nh in &r.wireguard_next_hops {
            rules.push(rule(
                format!("wireguard peer {nh}: routes handled by Felix"),
                Match {
                    family: fam,
                    source: Some(vec![RouteSource::Bgp]),
                    next_hop_in: Some(vec![IpNet::from(*nh)]),
                    ..Default::default()
                },
                Modify::default(),
                RuleAction::Reject,
            ));
        }
        for p in &r.kernel_pools {
            let m = Match {
                family: fam,
                prefix_in: within(p.cidr),
                ..Default::default()
            };
            let install = |mode| Modify {
                install: Some(mode),
                ..Default::default()
            };
            match (p.action, &p.tunnel) {
                (PoolAction::Reject, _) => rules.push(rule(
                    format!("pool {}: {}", p.cidr, p.reason),
                    m,
                    Modify::default(),
                    RuleAction::Reject,
                )),
                (PoolAction::Accept, Tunnel::None) => rules.push(rule(
                    format!("pool {}", p.cidr),
                    m,
                    install(InstallMode::Normal),
                    RuleAction::Accept,
                )),
                (PoolAction::Accept, Tunnel::Always) => rules.push(rule(
                    format!("pool {}: IPIP", p.cidr),
                    m,
                    install(InstallMode::Onlink),
                    RuleAction::Accept,
                )),
                (PoolAction::Accept, Tunnel::CrossSubnet(subnet)) => {
                    rules.push(rule(
                        format!("pool {}: IPIP cross-subnet, same subnet", p.cidr),
                        Match {
                            source: Some(vec![RouteSource::Bgp]),
                            next_hop_in: Some(vec![*subnet]),
                            ..m.clone()
                        },
                        install(InstallMode::Normal),
                        RuleAction::Accept,
                    ));
                    rules.push(rule(
                        format!("pool {}: IPIP cross-subnet", p.cidr),
                        m,
                        install(InstallMode::Onlink),
                        RuleAction::Accept,
                    ));
                }
            }
        }
    }
    Policy {
        rules,
        default: Verdict::Accept,
    }
}

/// BIRD's kernel protocol: `learn` (every protocol but the kernel's own, so pod, Felix and
/// static routes), `persist`, protocol 12, the metric from LOCAL_PREF; local blackholes
/// without a metric (metric 0, which IPv6 shows as 1024).
fn kernel() -> KernelConfig {
    KernelConfig {
        import: ImportConfig {
            exclude_protocols: vec![0, 1, 2],
            route_types: vec![
                RouteKind::Unicast,
                RouteKind::Blackhole,
                RouteKind::Unreachable,
                RouteKind::Prohibit,
            ],
            ..ImportConfig::default()
        },
        export: ExportConfig {
            metric: MetricMapping::Calico,
            default_metric: 0,
            tunnel_device: "tunl0".into(),
            on_exit: ExitAction::Persist,
            policy: Some(KERNEL_POLICY.into()),
            ..ExportConfig::default()
        },
    }
}

fn peer_template(o: &RenderOptions) -> PeerFile {
    PeerFile {
        description: Some("Connection to BGP peer".into()),
        hold_time: Some(sp(o.hold_time)),
        connect_retry: Some(CONNECT_RETRY),
        add_path: Some(AddPathConfig::Both),
        graceful_restart: Some(graceful_restart(o)),
        ..Default::default()
    }
}

/// The longest time a node's routes outlive it at its peers: BIRD's restart time, but
/// never beyond the hold time (a hold time of 0 has no hold timer to compare with).
fn restart_bound(o: &RenderOptions) -> u16 {
    match o.hold_time {
        0 => BIRD_RESTART_TIME,
        hold => BIRD_RESTART_TIME.min(hold),
    }
}

/// Graceful restart in Calico mode (docs/calico.md, "Restarts and departures"): a
/// restart keeps forwarding with every peer (`on_stop = "restart"`: the N bit where
/// negotiated, no NOTIFICATION to a peer with graceful restart but without it, as BIRD
/// 2), while a node that stops answering or crashed is gone within the hold time: its
/// routes are not kept at hold expiry, and no restart time, ours or a peer's, runs
/// beyond the hold time.
fn graceful_restart(o: &RenderOptions) -> GracefulRestartFile {
    let bound = restart_bound(o);
    GracefulRestartFile {
        enabled: Some(true),
        restart_time: Some(bound),
        max_restart_time: Some(bound),
        retain_on_hold_expiry: Some(false),
        on_stop: Some(OnStop::Restart),
        ..Default::default()
    }
}

/// How long a restarting node (`-R`) waits for a peer's session to come up before its
/// selection deferral stops waiting for that peer: four connect-retry intervals, time
/// for a peer whose first attempt (one interval after we closed) found us still down to
/// try again (two intervals later) and establish (RFC 4724 4.1; a node that left while
/// still in the datastore must not hold back every announcement for the whole restart
/// time).
fn absent_peer_wait(o: &RenderOptions) -> u16 {
    (4 * CONNECT_RETRY).min(restart_bound(o))
}

/// Policies used by sessions, defined on first use.
struct Policies<'a> {
    node: &'a NodeBgp,
    defined: BTreeMap<String, Policy>,
}

impl Policies<'_> {
    /// The filter policies of a session's chain for `dir`.
    fn filter_chain(&mut self, p: &Peering, dir: Direction) -> Result<Vec<String>, DeriveError> {
        let mut chain = Vec::new();
        for name in &p.filters {
            let Some(spec) = self.node.filters.get(name) else {
                continue;
            };
            let Some(rules) = filters::rules_of(spec, dir, p.family) else {
                continue;
            };
            let ctx = match dir {
                Direction::Import => ExportContext::Any,
                Direction::Export => {
                    filters::export_context(rules, p.same_as, p.effective_local_as)
                }
            };
            let pname = filter_policy_name(name, dir, p.family, ctx);
            if !self.defined.contains_key(&pname) {
                let rules = filters::policy_rules(name, rules, dir, p.family, ctx)?;
                self.defined.insert(
                    pname.clone(),
                    Policy {
                        rules,
                        default: Verdict::Reject,
                    },
                );
            }
            chain.push(pname);
        }
        Ok(chain)
    }
}

fn peer(
    p: &Peering,
    policies: &mut Policies<'_>,
    o: &RenderOptions,
) -> Result<PeerFile, DeriveError> {
    let what = || format!("session {}", p.name);
    let mut import = policies.filter_chain(p, Direction::Import)?;
    import.push(import_name(p.family));
    let mut export = vec![prelude_name(p.family)];
    export.extend(policies.filter_chain(p, Direction::Export)?);
    export.push(export_name(p.family));
    let cluster_id = match &p.rr_client_cluster_id {
        None => None,
        Some(c) => Some(c.parse::<Ipv4Addr>().map_err(|_| {
            DeriveError::invalid(
                what(),
                format!("routeReflectorClusterID {c:?} is not an IPv4 address"),
            )
        })?),
    };
    let keepalive = p.keepalive.map(|k| k.min(u64::from(u16::MAX)) as u16);
    // bgpd wants the keepalive below the hold time; BIRD would negotiate it down.
    let hold_time = match keepalive {
        Some(k) if k >= o.hold_time && o.hold_time != 0 => Some(k.saturating_mul(3)),
        _ => None,
    };
    Ok(PeerFile {
        template: Some(sp(PEER_TEMPLATE.to_owned())),
        address: Some(sp(PeerAddress::new(p.address))),
        remote_as: Some(p.remote_as),
        local_as: p.local_as,
        port: p.port,
        passive: p.passive.then_some(true),
        password: p.password.clone(),
        hold_time: hold_time.map(sp),
        keepalive,
        ttl_security: p.ttl_security.map(|_| true),
        multihop: Some(sp(p.ttl_security.unwrap_or(BIRD_MULTIHOP_TTL))),
        source_address: p.source_address,
        route_reflector_client: cluster_id.map(|_| true),
        cluster_id,
        allow_local_as: p.allow_local_as.map(|n| u8::try_from(n).unwrap_or(u8::MAX)),
        next_hop: match p.next_hop {
            NextHop::Auto => None,
            NextHop::SelfAddress => Some(NextHopMode::SelfAddr),
            NextHop::Keep => Some(NextHopMode::Keep),
        },
        // `maxRestartTime` / `nodeMeshMaxRestartTime`: the operator's choice, for both
        // directions (the peer node announces the same time).
        graceful_restart: p.restart_time.map(|t| {
            let t = t.min(4095) as u16;
            GracefulRestartFile {
                restart_time: Some(t),
                max_restart_time: Some(t.max(restart_bound(o))),
                ..Default::default()
            }
        }),
        families: Some(vec![match p.family {
            Family::V4 => FamilyName::Ipv4,
            Family::V6 => FamilyName::Ipv6,
        }]),
        import: Some(import.into_iter().map(sp).collect()),
        export: Some(export.into_iter().map(sp).collect()),
        ..Default::default()
    })
}

fn originate(node: &NodeBgp) -> Vec<Spanned<OriginateFile>> {
    let mut out: Vec<OriginateFile> = Vec::new();
    let mut add = |prefix: IpNet, no_install: bool, next_hop: Option<IpAddr>| {
        if !out.iter().any(|o| *o.prefix.get_ref() == prefix) {
            out.push(OriginateFile {
                prefix: sp(prefix),
                no_install,
                next_hop,
                communities: Vec::new(),
                large_communities: Vec::new(),
                local_pref: None,
                med: None,
            });
        }
    };
    for r in &node.families {
        for b in r.blocks.iter().filter(|b| b.originated()) {
            add(b.cidr, false, None);
        }
        for s in &r.static_routes {
            add(*s, true, None);
        }
        for (host, gw) in &r.reachable {
            add(*host, false, Some(*gw));
        }
    }
    out.into_iter().map(sp).collect()
}

/// bgpd's configuration for `node`.
pub fn to_config(node: &NodeBgp, o: &RenderOptions) -> Result<FileConfig, DeriveError> {
    let (peers, mut defined) = peer_files(node, &node.peerings, o)?;
    defined.append(&mut family_policies(node)?);
    defined.insert(KERNEL_POLICY.into(), kernel_policy(&node.families));
    Ok(FileConfig {
        peers,
        policies: defined.into_iter().map(|(k, v)| (sp(k), v)).collect(),
        originate: originate(node),
        kernel: Some(kernel()),
        ..sessions_frame(node, o)
    })
}

/// Only `peerings` of `node` (sessions it has): the `[global]` section, the template
/// and the policies their chains name, as [`to_config`] writes them, and nothing else
/// (no originated routes, no kernel), so that the loader resolves these peers exactly as
/// in the whole configuration at a cost that does not grow with the node's other
/// sessions. A peering of a family the node does not run is left out, as there.
pub fn peers_config(
    node: &NodeBgp,
    peerings: &[Peering],
    o: &RenderOptions,
) -> Result<FileConfig, DeriveError> {
    let (peers, mut defined) = peer_files(node, peerings, o)?;
    defined.append(&mut family_policies(node)?);
    Ok(FileConfig {
        peers,
        policies: defined.into_iter().map(|(k, v)| (sp(k), v)).collect(),
        ..sessions_frame(node, o)
    })
}

/// The `[peers]` of `peerings` and the filter policies they use.
#[allow(clippy::type_complexity)]
fn peer_files(
    node: &NodeBgp,
    peerings: &[Peering],
    o: &RenderOptions,
) -> Result<
    (
        BTreeMap<Spanned<String>, PeerFile>,
        BTreeMap<String, Policy>,
    ),
    DeriveError,
> {
    let mut policies = Policies {
        node,
        defined: BTreeMap::new(),
    };
    let mut peers = BTreeMap::new();
    for p in peerings {
        let enabled = node.family(p.family).is_some_and(|r| r.enabled);
        if enabled {
            peers.insert(sp(p.name.clone()), peer(p, &mut policies, o)?);
        }
    }
    Ok((peers, policies.defined))
}

/// The policies every session's chain ends with, per family.
fn family_policies(node: &NodeBgp) -> Result<BTreeMap<String, Policy>, DeriveError> {
    let mut defined = BTreeMap::new();
    for r in &node.families {
        defined.insert(prelude_name(r.family), prelude(r));
        defined.insert(
            export_name(r.family),
            export(r, node.rr_cluster_id.is_some())?,
        );
        defined.insert(import_name(r.family), Policy::all(Verdict::Accept));
    }
    Ok(defined)
}

/// `[global]` and the session template: what every peer resolves against.
fn sessions_frame(node: &NodeBgp, o: &RenderOptions) -> FileConfig {
    let control = ControlFile {
        socket: o.control_socket.clone(),
        bird_socket: o.bird_socket.clone(),
        bird6_socket: o.bird6_socket.clone(),
        ..Default::default()
    };
    let global = GlobalFile {
        asn: node.asn,
        router_id: node.router_id,
        listen: (!node.listen.is_empty()).then(|| {
            node.listen
                .iter()
                .map(|a| {
                    sp(ListenAddr {
                        addr: *a,
                        port: None,
                    })
                })
                .collect()
        }),
        listen_port: node.listen_port,
        cluster_id: None,
        include_dir: None,
        max_paths: None,
        control: Some(control),
        metrics: None,
        graceful_restart: Some(GracefulRestartFile {
            absent_peer_wait: Some(absent_peer_wait(o)),
            ..graceful_restart(o)
        }),
        user: None,
        group: None,
    };
    FileConfig {
        global: Some(sp(global)),
        templates: [(sp(PEER_TEMPLATE.to_owned()), peer_template(o))]
            .into_iter()
            .collect(),
        // No BMP stations nor MRT files in Calico mode.
        ..Default::default()
    }
}
