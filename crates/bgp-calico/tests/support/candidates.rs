//! Candidate routes for a scenario, built from what its BIRD configuration talks about (every
//! prefix and address its filters and static routes name) so each filter branch is taken:
//! each prefix itself and a host route inside it, as kernel routes (Felix's blackholes, pod
//! routes on `cali*` with metrics below, at and above the normal priority, routes on
//! `tunl0`, `vxlan.calico`, `bpfout.cali`, `kube-ipvs0`, a gateway route on `eth0`), as BGP
//! routes with LOCAL_PREFs, communities and AS paths, and the static routes BIRD originates.

use std::collections::BTreeSet;
use std::net::IpAddr;

use ipnet::IpNet;

use super::bird::parse::{BirdConfig, Expr, FilterRef, Stmt};

/// Where a candidate comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// Learned from the kernel.
    Kernel {
        ifname: Option<String>,
        metric: u32,
        protocol: u8,
        gateway: Option<IpAddr>,
    },
    /// A static route of BIRD's (a block, a service range, a route to a peer).
    Static { via: Option<IpAddr> },
    /// Learned over BGP.
    Bgp {
        local_pref: Option<u32>,
        path: Vec<u32>,
        communities: Vec<(u32, u32)>,
        large: Vec<(u32, u32, u32)>,
        next_hop: IpAddr,
    },
}

/// A candidate route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub prefix: IpNet,
    pub origin: Origin,
}

/// What a configuration names.
#[derive(Default)]
struct Named {
    prefixes: BTreeSet<IpNet>,
    ips: BTreeSet<IpAddr>,
    pairs: BTreeSet<(u32, u32)>,
    large: BTreeSet<(u32, u32, u32)>,
    ints: BTreeSet<i64>,
    asns: BTreeSet<u32>,
}

fn walk_expr(e: &Expr, n: &mut Named) {
    match e {
        Expr::Prefix(p) => {
            n.prefixes.insert(*p);
        }
        Expr::PrefixSet(s) => {
            for (p, _, hi) in s {
                n.prefixes.insert(*p);
                // A prefix of the longest length the set allows, inside it.
                if let Ok(q) = IpNet::new(p.network(), *hi) {
                    n.prefixes.insert(q.trunc());
                }
            }
        }
        Expr::Ip(a) => {
            n.ips.insert(*a);
        }
        Expr::Int(i) => {
            n.ints.insert(*i);
        }
        Expr::Tuple(items) => {
            let v: Vec<u32> = items
                .iter()
                .filter_map(|i| match i {
                    Expr::Int(x) => u32::try_from(*x).ok(),
                    _ => None,
                })
                .collect();
            match v.as_slice() {
                [a, b] => {
                    n.pairs.insert((*a, *b));
                }
                [a, b, c] => {
                    n.large.insert((*a, *b, *c));
                }
                _ => {}
            }
        }
        Expr::PathMask(m) => {
            for i in m {
                if let super::bird::parse::MaskItem::Asn(a) = i {
                    n.asns.insert(*a);
                }
            }
        }
        Expr::Defined(x) | Expr::Not(x) => walk_expr(x, n),
        Expr::Bin(_, a, b) => {
            walk_expr(a, n);
            walk_expr(b, n);
        }
        _ => {}
    }
}

fn walk(stmts: &[Stmt], n: &mut Named) {
    for s in stmts {
        match s {
            Stmt::If(c, t, e) => {
                walk_expr(c, n);
                walk(t, n);
                walk(e, n);
            }
            Stmt::Assign(_, e) | Stmt::Method(_, _, e) => walk_expr(e, n),
            Stmt::Call(_, args) => args.iter().for_each(|a| walk_expr(a, n)),
            Stmt::Accept | Stmt::Reject => {}
        }
    }
}

fn named(cfg: &BirdConfig) -> Named {
    let mut n = Named::default();
    for f in cfg.functions.values() {
        walk(&f.body, &mut n);
    }
    for f in cfg.filters.values() {
        walk(f, &mut n);
    }
    for p in &cfg.bgp {
        for f in [&p.import, &p.export] {
            if let FilterRef::Inline(s) = f {
                walk(s, &mut n);
            }
        }
        if let Some(a) = p.neighbor {
            n.ips.insert(a);
        }
        if let Some(a) = p.remote_as {
            n.asns.insert(a);
        }
        if let Some(a) = p.local_as {
            n.asns.insert(a);
        }
    }
    for s in &cfg.static_routes {
        n.prefixes.insert(s.prefix);
        if let Some(v) = s.via {
            n.ips.insert(v);
        }
    }
    n
}

fn same_family(a: &IpNet, v6: bool) -> bool {
    matches!(a, IpNet::V6(_)) == v6
}

/// A host route inside `p` (its first address after the network one), or `p` itself.
fn inside(p: &IpNet) -> IpNet {
    let host = match p {
        IpNet::V4(n) => {
            let a = u32::from(n.network()).wrapping_add(u32::from(n.prefix_len() < 31));
            IpNet::from(IpAddr::from(std::net::Ipv4Addr::from(a)))
        }
        IpNet::V6(n) => {
            let a = u128::from(n.network()).wrapping_add(u128::from(n.prefix_len() < 127));
            IpNet::from(IpAddr::from(std::net::Ipv6Addr::from(a)))
        }
    };
    if p.contains(&host) {
        host
    } else {
        *p
    }
}

/// The candidates of one family of a scenario (`cfg` is `bird.cfg` or `bird6.cfg`).
pub fn candidates(cfg: &BirdConfig, v6: bool) -> Vec<Candidate> {
    let n = named(cfg);
    let mut prefixes: BTreeSet<IpNet> = n
        .prefixes
        .iter()
        .filter(|p| same_family(p, v6))
        .flat_map(|p| [*p, inside(p)])
        .collect();
    let outside: [&str; 2] = if v6 {
        ["2001:db8:ffff::/48", "::/0"]
    } else {
        ["203.0.113.0/24", "0.0.0.0/0"]
    };
    for o in outside {
        if let Ok(p) = o.parse::<IpNet>() {
            prefixes.insert(p);
        }
    }
    let mut next_hops: Vec<IpAddr> = n
        .ips
        .iter()
        .filter(|a| a.is_ipv6() == v6)
        .copied()
        .collect();
    // An address inside each prefix a next hop is compared with (cross-subnet, WireGuard).
    for p in n.prefixes.iter().filter(|p| same_family(p, v6)) {
        if let IpNet::V4(x) = p {
            if x.prefix_len() <= 24 {
                next_hops.push(IpAddr::from(std::net::Ipv4Addr::from(
                    u32::from(x.network()) + 5,
                )));
            }
        }
    }
    next_hops.push(if v6 {
        "2001:db8::7".parse().unwrap_or(IpAddr::from([0u8; 16]))
    } else {
        IpAddr::from([198, 51, 100, 7])
    });
    let pairs: Vec<(u32, u32)> = n.pairs.iter().copied().collect();
    let large: Vec<(u32, u32, u32)> = n.large.iter().copied().collect();
    let mut asns: Vec<u32> = n.asns.iter().copied().collect();
    asns.push(65099);
    // LOCAL_PREFs: none (eBGP), BGP's default, Calico's normal and elevated priorities,
    // and every value the filters compare with.
    let mut lps: BTreeSet<u32> = [2_147_482_623u32, 2_147_483_135, 100, 2_147_483_547].into();
    for i in &n.ints {
        if let Ok(v) = u32::try_from(*i) {
            if v > 1_000_000 {
                lps.insert(v);
            }
        }
    }
    let mut metrics: BTreeSet<u32> = [0u32, 512, 1023, 1024, 1025, 2048].into();
    for i in &n.ints {
        if (1..10_000).contains(i) {
            let v = *i as u32;
            metrics.extend([v - 1, v, v + 1]);
        }
    }
    let mut out = Vec::new();
    for (k, p) in prefixes.iter().enumerate() {
        let kernel =
            |ifname: Option<&str>, metric: u32, protocol: u8, gw: Option<IpAddr>| Candidate {
                prefix: *p,
                origin: Origin::Kernel {
                    ifname: ifname.map(str::to_owned),
                    metric,
                    protocol,
                    gateway: gw,
                },
            };
        out.push(kernel(None, 0, 80, None));
        for m in &metrics {
            out.push(kernel(Some("cali1234567890a"), *m, 3, None));
        }
        for ifn in [
            "tunl0",
            "vxlan.calico",
            "bpfout.cali",
            "kube-ipvs0",
            "wireguard.cali",
        ] {
            out.push(kernel(Some(ifn), 0, 80, None));
        }
        out.push(kernel(Some("eth0"), 100, 4, next_hops.first().copied()));
        for (j, lp) in std::iter::once(None)
            .chain(lps.iter().map(|l| Some(*l)))
            .enumerate()
        {
            let pick = k + j;
            let path: Vec<u32> = match pick % 4 {
                0 => Vec::new(),
                1 => vec![asns[pick % asns.len()]],
                2 => asns.iter().take(2).copied().collect(),
                _ => vec![asns[(pick + 1) % asns.len()], 65099],
            };
            let communities = match pick % 3 {
                0 => Vec::new(),
                1 => pairs.iter().take(1).copied().collect(),
                _ => pairs.clone(),
            };
            out.push(Candidate {
                prefix: *p,
                origin: Origin::Bgp {
                    local_pref: lp,
                    path,
                    communities,
                    large: if pick % 2 == 0 {
                        large.clone()
                    } else {
                        Vec::new()
                    },
                    next_hop: next_hops[pick % next_hops.len()],
                },
            });
        }
    }
    for s in &cfg.static_routes {
        out.push(Candidate {
            prefix: s.prefix,
            origin: Origin::Static { via: s.via },
        });
    }
    out
}
