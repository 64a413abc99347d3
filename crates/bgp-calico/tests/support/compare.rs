//! BIRD (the golden configuration, through the checker's model) against bgpd (the rendered
//! configuration, through bgpd's own policy engine) for one address family of a scenario:
//! router id and listener, sessions field by field, originated routes, and the verdict and
//! attributes of every candidate route in every session's import and export filter and in
//! the kernel filter.
//!
//! Both sides are taken to the same point: the attributes a peer would receive. BIRD runs
//! its filters after the BGP protocol prepared the route (a LOCAL_PREF of 100 for routes of
//! other protocols and for routes from eBGP, our AS already prepended towards eBGP peers)
//! and drops LOCAL_PREF towards eBGP peers afterwards; bgpd's RIB prepends its AS after the
//! export policy, with the policy's `prepend_path` in front, and strips LOCAL_PREF towards
//! eBGP peers.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};

use bgp_proto::{AsPath, Community, LargeCommunity, PathAttributes};
use bgp_rib::policy::{
    CompiledPolicy, InstallMode, KernelInfo, PeerType, PeerView, RouteSource, RouteView,
    METRIC_LOCAL_PREF_BASE,
};
use bgp_speaker::config::{Config, NextHopMode, PeerConfig};
use ipnet::IpNet;

use super::bird::eval::{run, Outcome, Route};
use super::bird::parse::{BgpProtocol, BirdConfig, FilterRef};
use super::candidates::{Candidate, Origin};

/// BIRD's default LOCAL_PREF and BGP preference.
const DEFAULT_LP: u32 = 100;

/// A filter's result as a peer (or the kernel) would see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    Rejected,
    Accepted {
        local_pref: Option<u32>,
        /// ORIGIN: 0 IGP, 1 EGP, 2 INCOMPLETE.
        origin: u8,
        path: Vec<u32>,
        communities: BTreeSet<(u32, u32)>,
        large: BTreeSet<(u32, u32, u32)>,
    },
}

/// What the kernel gets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Install {
    None,
    Blackhole {
        metric: u32,
    },
    Via {
        gateway: IpAddr,
        tunnel: bool,
        metric: u32,
    },
}

fn comms(a: &PathAttributes) -> BTreeSet<(u32, u32)> {
    a.communities
        .iter()
        .map(|c| (c.0 >> 16, c.0 & 0xffff))
        .collect()
}

fn larges(a: &PathAttributes) -> BTreeSet<(u32, u32, u32)> {
    a.large_communities
        .iter()
        .map(|l| (l.global, l.local1, l.local2))
        .collect()
}

fn flat(p: Option<&AsPath>) -> Vec<u32> {
    p.map(|p| p.segments.iter().flat_map(|s| s.asns.clone()).collect())
        .unwrap_or_default()
}

/// One session as both sides define it.
pub struct Session<'a> {
    pub bird: &'a BgpProtocol,
    pub bgpd: &'a PeerConfig,
    pub bird_cfg: &'a BirdConfig,
    pub config: &'a Config,
}

impl Session<'_> {
    fn local_as(&self) -> u32 {
        self.bgpd.local_as(&self.config.global)
    }

    fn ebgp(&self) -> bool {
        !self.bgpd.is_ibgp(&self.config.global)
    }

    fn chain(&self, names: &[String]) -> std::sync::Arc<CompiledPolicy> {
        bgp_speaker::chain_policy(names, &self.config.policies, self.ebgp())
    }
}

/// The route as BIRD's table holds it (before any protocol prepares it).
fn bird_route(c: &Candidate, received_lp: Option<u32>) -> Route {
    let mut r = Route {
        net: c.prefix,
        source: "RTS_INHERIT",
        ifname: String::new(),
        preference: 10,
        krt_metric: None,
        local_pref: None,
        next_hop: None,
        krt_tunnel: None,
        path: None,
        communities: BTreeSet::new(),
        large_communities: BTreeSet::new(),
    };
    match &c.origin {
        Origin::Kernel { ifname, metric, .. } => {
            r.ifname = ifname.clone().unwrap_or_default();
            r.krt_metric = Some(i64::from(*metric));
        }
        Origin::Static { via } => {
            r.source = "RTS_STATIC";
            r.preference = 200;
            // A gateway route's interface is the one the gateway is on.
            r.ifname = if via.is_some() {
                "eth0".into()
            } else {
                String::new()
            };
        }
        Origin::Bgp {
            path,
            communities,
            large,
            next_hop,
            ..
        } => {
            r.source = "RTS_BGP";
            r.preference = 100;
            // gateway recursive: the interface the next hop resolves through.
            r.ifname = "eth0".into();
            r.local_pref = Some(i64::from(received_lp.unwrap_or(DEFAULT_LP)));
            r.next_hop = Some(*next_hop);
            r.path = Some(path.clone());
            r.communities = communities.iter().copied().collect();
            r.large_communities = large.iter().copied().collect();
        }
    }
    r
}

fn bgpd_attrs(c: &Candidate, lp: Option<u32>) -> PathAttributes {
    let mut a = PathAttributes::default();
    if let Origin::Bgp {
        path,
        communities,
        large,
        ..
    } = &c.origin
    {
        let mut p = AsPath::default();
        for asn in path.iter().rev() {
            p.prepend(*asn, 1);
        }
        a.as_path = Some(p);
        a.local_pref = lp;
        a.communities = communities
            .iter()
            .map(|(x, y)| Community::new(*x as u16, *y as u16))
            .collect();
        a.large_communities = large
            .iter()
            .map(|(g, l1, l2)| LargeCommunity {
                global: *g,
                local1: *l1,
                local2: *l2,
            })
            .collect();
        a.origin = Some(bgp_proto::Origin::Igp);
    } else {
        a.as_path = Some(AsPath::default());
        // What the RIB gives a local route before any policy.
        a.origin = Some(match c.origin {
            Origin::Kernel { .. } => bgp_proto::Origin::Incomplete,
            _ => bgp_proto::Origin::Igp,
        });
    }
    a
}

fn source_of(c: &Candidate) -> RouteSource {
    match c.origin {
        Origin::Kernel { .. } => RouteSource::Kernel,
        Origin::Static { .. } => RouteSource::Static,
        Origin::Bgp { .. } => RouteSource::Bgp,
    }
}

fn kernel_info(c: &Candidate) -> Option<KernelInfo> {
    match &c.origin {
        Origin::Kernel {
            ifname,
            metric,
            protocol,
            ..
        } => Some(KernelInfo {
            ifname: ifname.clone(),
            metric: Some(*metric),
            protocol: Some(*protocol),
        }),
        _ => None,
    }
}

fn next_hop_of(c: &Candidate) -> Option<IpAddr> {
    match &c.origin {
        Origin::Kernel { gateway, .. } => *gateway,
        Origin::Static { via } => *via,
        Origin::Bgp { next_hop, .. } => Some(*next_hop),
    }
}

/// The LOCAL_PREF a candidate arrives with over a session (none from eBGP peers).
fn received_lp(c: &Candidate, ebgp: bool) -> Option<u32> {
    match &c.origin {
        Origin::Bgp { local_pref, .. } if !ebgp => *local_pref,
        _ => None,
    }
}

fn run_ref(cfg: &BirdConfig, f: &FilterRef, r: &mut Route) -> Result<bool, String> {
    let out = match f {
        FilterRef::All => Outcome::Accept,
        FilterRef::None => Outcome::Reject,
        FilterRef::Inline(s) => run(cfg, s, r),
        FilterRef::Named(n) => match cfg.filters.get(n) {
            Some(s) => run(cfg, s, r),
            None => return Err(format!("unknown filter {n}")),
        },
    };
    match out {
        Outcome::Accept => Ok(true),
        Outcome::Reject | Outcome::Error(_) => Ok(false),
        Outcome::Unsupported(m) => Err(format!("the BIRD model does not support: {m}")),
    }
}

/// BIRD's export of `c` over `s`.
pub fn bird_export(s: &Session<'_>, c: &Candidate) -> Result<Verdict, String> {
    let ebgp = s.ebgp();
    let mut r = bird_route(
        c,
        match &c.origin {
            Origin::Bgp { local_pref, .. } => *local_pref,
            _ => None,
        },
    );
    // The BGP protocol prepares the route before its export filter.
    match &c.origin {
        Origin::Bgp { .. } => {
            if ebgp {
                r.path.get_or_insert_with(Vec::new).insert(0, s.local_as());
            }
        }
        _ => {
            r.local_pref = Some(i64::from(DEFAULT_LP));
            r.path = Some(if ebgp { vec![s.local_as()] } else { Vec::new() });
        }
    }
    if !run_ref(s.bird_cfg, &s.bird.export, &mut r)? {
        return Ok(Verdict::Rejected);
    }
    Ok(Verdict::Accepted {
        local_pref: if ebgp {
            None
        } else {
            r.local_pref.and_then(|l| u32::try_from(l).ok())
        },
        // BIRD gives routes of its other protocols ORIGIN IGP; BGP routes keep theirs.
        origin: 0,
        path: r.path.unwrap_or_default(),
        communities: r.communities,
        large: r.large_communities,
    })
}

fn view<'a>(
    c: &Candidate,
    attrs: &'a PathAttributes,
    kernel: Option<&'a KernelInfo>,
    peer: Option<PeerView<'a>>,
) -> RouteView<'a> {
    RouteView {
        prefix: c.prefix,
        attrs,
        next_hop: next_hop_of(c),
        // The checker's BGP routes resolve their next hop through eth0, as in BIRD's view.
        next_hop_interface: matches!(c.origin, Origin::Bgp { .. }).then_some("eth0"),
        source: source_of(c),
        kernel,
        peer,
    }
}

/// bgpd's export of `c` over `s`.
pub fn bgpd_export(s: &Session<'_>, c: &Candidate) -> Verdict {
    let ebgp = s.ebgp();
    let lp = match &c.origin {
        Origin::Bgp { local_pref, .. } => *local_pref,
        _ => None,
    };
    let attrs = bgpd_attrs(c, lp);
    let k = kernel_info(c);
    let peer = PeerView {
        name: &s.bgpd.name,
        peer_type: if ebgp { PeerType::Ebgp } else { PeerType::Ibgp },
    };
    let policy = s.chain(&s.bgpd.export);
    let Some(acc) = policy.evaluate(&view(c, &attrs, k.as_ref(), Some(peer))) else {
        return Verdict::Rejected;
    };
    let mut path = acc.prepend_path.clone();
    if ebgp {
        path.push(s.local_as());
    }
    path.extend(flat(acc.attrs.as_path.as_ref()));
    Verdict::Accepted {
        local_pref: if ebgp {
            None
        } else {
            Some(acc.attrs.local_pref.unwrap_or(DEFAULT_LP))
        },
        origin: acc.attrs.origin.map_or(0, |o| o as u8),
        path,
        communities: comms(&acc.attrs),
        large: larges(&acc.attrs),
    }
}

/// BIRD's import of BGP candidate `c` from `s`.
pub fn bird_import(s: &Session<'_>, c: &Candidate) -> Result<Verdict, String> {
    let mut r = bird_route(c, received_lp(c, s.ebgp()));
    if !run_ref(s.bird_cfg, &s.bird.import, &mut r)? {
        return Ok(Verdict::Rejected);
    }
    Ok(Verdict::Accepted {
        local_pref: r.local_pref.and_then(|l| u32::try_from(l).ok()),
        origin: 0,
        path: r.path.unwrap_or_default(),
        communities: r.communities,
        large: r.large_communities,
    })
}

/// bgpd's import of BGP candidate `c` from `s`.
pub fn bgpd_import(s: &Session<'_>, c: &Candidate) -> Verdict {
    let ebgp = s.ebgp();
    let attrs = bgpd_attrs(c, received_lp(c, ebgp));
    let peer = PeerView {
        name: &s.bgpd.name,
        peer_type: if ebgp { PeerType::Ebgp } else { PeerType::Ibgp },
    };
    let policy = s.chain(&s.bgpd.import);
    let Some(acc) = policy.evaluate(&view(c, &attrs, None, Some(peer))) else {
        return Verdict::Rejected;
    };
    let mut path = acc.prepend_path.clone();
    path.extend(flat(acc.attrs.as_path.as_ref()));
    Verdict::Accepted {
        local_pref: Some(acc.attrs.local_pref.unwrap_or(DEFAULT_LP)),
        origin: acc.attrs.origin.map_or(0, |o| o as u8),
        path,
        communities: comms(&acc.attrs),
        large: larges(&acc.attrs),
    }
}

/// BIRD's kernel protocol export of `c` (a BGP route as learned over iBGP, or a static
/// route), through `calico_kernel_programming`.
pub fn bird_kernel(cfg: &BirdConfig, c: &Candidate) -> Result<Install, String> {
    let lp = match &c.origin {
        Origin::Bgp { local_pref, .. } => *local_pref,
        _ => None,
    };
    let mut r = bird_route(c, lp);
    let f = cfg
        .kernel_export
        .as_ref()
        .ok_or("no kernel protocol export filter")?;
    if !run_ref(cfg, f, &mut r)? {
        return Ok(Install::None);
    }
    // Without krt_metric the route is installed without a priority (IPv4 metric 0).
    let metric = r
        .krt_metric
        .and_then(|m| u32::try_from(m).ok())
        .unwrap_or(0);
    Ok(match (&c.origin, next_hop_of(c)) {
        (Origin::Static { via: None }, _) => Install::Blackhole { metric },
        (_, Some(gateway)) => Install::Via {
            gateway,
            tunnel: r.krt_tunnel.as_deref() == Some("tunl0"),
            metric,
        },
        (_, None) => Install::Blackhole { metric },
    })
}

/// bgpd's FIB treatment of `c` (the `[kernel.export]` policy and settings).
pub fn bgpd_kernel(config: &Config, c: &Candidate) -> Result<Install, String> {
    let k = config.kernel.as_ref().ok_or("no [kernel] section")?;
    let name = k.export.policy.clone().ok_or("no kernel export policy")?;
    let lp = match &c.origin {
        Origin::Bgp { local_pref, .. } => *local_pref,
        _ => None,
    };
    if let Origin::Static { .. } = c.origin {
        let o = config
            .originate
            .get(&c.prefix)
            .ok_or_else(|| format!("{} is not originated", c.prefix))?;
        if o.no_install {
            return Ok(Install::None);
        }
    }
    let attrs = bgpd_attrs(c, lp);
    let policy = bgp_speaker::chain_policy(&[name], &config.policies, false);
    let peer = PeerView {
        name: "kernel-check",
        peer_type: PeerType::Ibgp,
    };
    let is_bgp = matches!(c.origin, Origin::Bgp { .. });
    let Some(acc) = policy.evaluate(&view(c, &attrs, None, is_bgp.then_some(peer))) else {
        return Ok(Install::None);
    };
    if acc.install == Some(InstallMode::NoInstall) {
        return Ok(Install::None);
    }
    let metric = if is_bgp {
        k.export
            .metric_for(Some(acc.attrs.local_pref.unwrap_or(DEFAULT_LP)))
    } else {
        k.export.metric_for(None)
    };
    Ok(match next_hop_of(c) {
        Some(gateway) if acc.install != Some(InstallMode::Blackhole) => Install::Via {
            gateway,
            tunnel: matches!(acc.install, Some(InstallMode::Onlink))
                || (acc.install.is_none() && acc.tunnel_device.is_some()),
            metric,
        },
        _ => Install::Blackhole { metric },
    })
}

/// Session settings as BIRD has them, in bgpd's terms.
#[derive(Debug, PartialEq, Eq)]
pub struct SessionFacts {
    pub address: IpAddr,
    pub port: u16,
    pub remote_as: u32,
    pub local_as: u32,
    pub passive: bool,
    pub ttl_security: bool,
    pub ttl: Option<u8>,
    pub password: Option<String>,
    pub next_hop: NextHopMode,
    pub rr_client: bool,
    pub cluster_id: Option<Ipv4Addr>,
    pub graceful_restart: Option<u32>,
    pub source_address: Option<IpAddr>,
    pub hold_time: u32,
    pub keepalive: u32,
    pub allow_local_as: u32,
    pub add_path: bool,
}

/// BIRD's session facts (hold time 240 and keepalive a third of it by default).
pub fn bird_facts(p: &BgpProtocol, global_as: Option<u32>) -> Result<SessionFacts, String> {
    Ok(SessionFacts {
        address: p.neighbor.ok_or("no neighbor")?,
        port: p.port.unwrap_or(179),
        remote_as: p.remote_as.ok_or("no neighbor AS")?,
        local_as: p.local_as.or(global_as).ok_or("no local AS")?,
        passive: p.passive,
        ttl_security: p.ttl_security,
        ttl: match p.multihop {
            Some(Some(n)) => Some(n),
            Some(None) => Some(64),
            None => None,
        },
        password: p.password.clone(),
        next_hop: if p.next_hop_self {
            NextHopMode::SelfAddr
        } else if p.next_hop_keep {
            NextHopMode::Keep
        } else {
            NextHopMode::Auto
        },
        rr_client: p.rr_client,
        cluster_id: p.rr_cluster_id,
        graceful_restart: p
            .graceful_restart
            .then(|| p.graceful_restart_time.unwrap_or(120)),
        source_address: p.source_address,
        hold_time: 240,
        keepalive: p.keepalive.unwrap_or(80),
        allow_local_as: p.allow_local_as.unwrap_or(0),
        add_path: p.add_paths,
    })
}

/// bgpd's session facts.
pub fn bgpd_facts(p: &PeerConfig, config: &Config) -> SessionFacts {
    SessionFacts {
        address: p.address.addr,
        port: p.port,
        remote_as: p.remote_as,
        local_as: p.local_as(&config.global),
        passive: p.passive,
        ttl_security: p.ttl_security,
        ttl: p.multihop,
        password: p.password.clone(),
        next_hop: p.next_hop,
        rr_client: p.route_reflector_client,
        cluster_id: p.cluster_id,
        graceful_restart: p
            .graceful_restart
            .enabled
            .then_some(u32::from(p.graceful_restart.restart_time)),
        source_address: p.source_address,
        hold_time: u32::from(p.hold_time),
        keepalive: u32::from(p.keepalive),
        allow_local_as: u32::from(p.allow_local_as),
        add_path: p.add_path == bgp_speaker::config::AddPathConfig::Both,
    }
}

/// LOCAL_PREF Calico sends for a kernel metric.
pub fn lp_of_metric(m: u32) -> u32 {
    METRIC_LOCAL_PREF_BASE - m
}

/// The prefix of an originated route, for comparing static routes.
pub fn originated(config: &Config, v6: bool) -> BTreeSet<(IpNet, Option<IpAddr>)> {
    config
        .originate
        .values()
        .filter(|o| matches!(o.prefix, IpNet::V6(_)) == v6)
        .map(|o| (o.prefix, o.next_hop))
        .collect()
}
