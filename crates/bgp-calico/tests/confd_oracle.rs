//! Oracle: Calico's own confd scenarios. For every scenario Calico's test suite runs against
//! the etcd datastore (and the Secret-driven password scenarios, which bgpd's file source
//! can express too), the configuration bgpd renders from the scenario's resources must mean
//! what the golden BIRD configuration means: the same router id, listener, sessions (name,
//! neighbour address and port, AS, local AS, passive, multihop/TTL security, password, next
//! hop mode, route reflection, graceful restart time, source address, timers), the same
//! originated routes, and the same verdict and attributes for every candidate route in every
//! session's import and export filter and in the kernel filter (`support::compare`).
//!
//! The scenarios, their steps and environment follow Calico's driver (the scenarios it runs
//! only against the Kubernetes datastore are left out, except the password ones). Data:
//! `tests/data/calico-confd` (see its ORIGIN.md).

mod support;

use std::path::{Path, PathBuf};

use bgp_calico::derive::config::RenderOptions;
use bgp_calico::derive::NodeEnv;
use bgp_calico::render::{node_config, peer_configs, render};
use bgp_calico::resource::{Kind, Resource, ResourceKey};
use bgp_calico::source::file::FileSource;
use bgp_calico::source::ResourceSource;
use bgp_calico::store::{ResourceStore, Update};
use support::bird::parse::parse_file;
use support::candidates::{candidates, Origin};
use support::compare::{
    bgpd_export, bgpd_facts, bgpd_import, bgpd_kernel, bird_export, bird_facts, bird_import,
    bird_kernel, originated, Session,
};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/calico-confd")
}

/// A change a driver step makes through the API rather than with a file.
type Edit = fn(&mut ResourceStore);

/// One scenario step.
struct Step {
    /// Directory under `compiled_templates`.
    golden: &'static str,
    /// Files under `mock_data/calicoctl`, applied in order.
    inputs: &'static [&'static str],
    /// Changes after the inputs.
    edits: &'static [Edit],
    /// The node confd runs for.
    node: &'static str,
    /// Whether the driver creates kube-master's block affinities.
    affinities: bool,
}

const fn oneshot(dir: &'static str, input: &'static [&'static str]) -> Step {
    Step {
        golden: dir,
        inputs: input,
        edits: &[],
        node: "kube-master",
        affinities: true,
    }
}

fn load(step: &Step) -> ResourceStore {
    let mut paths: Vec<PathBuf> = step
        .inputs
        .iter()
        .map(|i| data().join("mock_data/calicoctl").join(i))
        .collect();
    if step.affinities {
        paths.push(data().join("block-affinities.yaml"));
    }
    let listing = FileSource::new(paths).list().expect("resources load");
    let mut store = ResourceStore::from_resources(listing.resources);
    for e in step.edits {
        e(&mut store);
    }
    store
}

fn modify(store: &mut ResourceStore, kind: Kind, name: &str, f: impl FnOnce(&mut Resource)) {
    let key = ResourceKey {
        kind,
        namespace: None,
        name: name.into(),
    };
    let mut r = store.get(&key).cloned().expect("resource to modify");
    f(&mut r);
    store.apply(Update::Put(Box::new(r)));
}

fn default_cfg(
    store: &mut ResourceStore,
    f: impl FnOnce(&mut bgp_calico::resource::BgpConfigurationSpec),
) {
    modify(store, Kind::BgpConfiguration, "default", |r| {
        if let Resource::BgpConfiguration(o) = r {
            f(&mut o.spec);
        }
    });
}

fn secret(store: &mut ResourceStore, name: &str, data: &[(&str, &str)]) {
    let yaml = format!(
        "kind: Secret\napiVersion: v1\nmetadata:\n  name: {name}\n  namespace: kube-system\nstringData:\n{}",
        data.iter()
            .map(|(k, v)| format!("  {k}: {v}\n"))
            .collect::<String>()
    );
    let mut l = Default::default();
    bgp_calico::source::file::parse_into(&yaml, "secret", &mut l).expect("secret");
    for r in l.resources {
        store.apply(Update::Put(Box::new(r)));
    }
}

fn delete(store: &mut ResourceStore, kind: Kind, ns: Option<&str>, name: &str) {
    assert!(store.apply(Update::Delete(ResourceKey {
        kind,
        namespace: ns.map(str::to_owned),
        name: name.into(),
    })));
}

/// Runs the comparison for one step; returns every difference.
fn check(step: &Step) -> Vec<String> {
    let store = load(step);
    let env = NodeEnv::new(step.node);
    let rendered = match render(&store, &env, &RenderOptions::default()) {
        Ok(r) => r,
        Err(e) => return vec![format!("render: {e}")],
    };
    let config = &rendered.config;
    let mut diffs = Vec::new();
    // The datastore follower resolves the file form directly; it must be the very
    // configuration the TOML round trip gives.
    match node_config(&rendered.node, &RenderOptions::default()) {
        Ok(direct) if direct == *config => {}
        Ok(direct) => diffs.push(format!(
            "node_config differs from the rendered TOML loaded back:\n{direct:#?}\n{config:#?}"
        )),
        Err(e) => diffs.push(format!("node_config: {e}")),
    }
    // A change of a few sessions resolves only those: each session alone must be the
    // very peer of the whole configuration (absent where the whole has none).
    let node = &rendered.node;
    for p in &node.peerings {
        match peer_configs(node, std::slice::from_ref(p), &RenderOptions::default()) {
            Ok(alone) if alone.get(&p.name) == config.peers.get(&p.name) && alone.len() <= 1 => {}
            Ok(alone) => diffs.push(format!(
                "peer_configs of {} differs from node_config's:\n{alone:#?}\n{:#?}",
                p.name,
                config.peers.get(&p.name)
            )),
            Err(e) => diffs.push(format!("peer_configs of {}: {e}", p.name)),
        }
    }
    let golden = data().join("compiled_templates").join(step.golden);
    for (file, v6) in [("bird.cfg", false), ("bird6.cfg", true)] {
        let bird = match parse_file(&golden.join(file)) {
            Ok(b) => b,
            Err(e) => return vec![format!("golden {file}: {e}")],
        };
        let d = |m: String| format!("{file}: {m}");
        if bird.router_id != Some(config.global.router_id) {
            diffs.push(d(format!(
                "router id: BIRD {:?}, bgpd {}",
                bird.router_id, config.global.router_id
            )));
        }
        let ports: Vec<u16> = config.global.listen.iter().map(|a| a.port()).collect();
        let bird_port = bird.listen_port.unwrap_or(179);
        if ports.iter().any(|p| *p != bird_port) {
            diffs.push(d(format!("listen port: BIRD {bird_port}, bgpd {ports:?}")));
        }
        if let Some(a) = bird.listen_address {
            if !config.global.listen.iter().any(|l| l.ip() == a) {
                diffs.push(d(format!(
                    "listen address: BIRD {a}, bgpd {:?}",
                    config.global.listen
                )));
            }
        }
        // Sessions.
        let bgpd_peers: Vec<_> = config
            .peers
            .values()
            .filter(|p| p.address.addr.is_ipv6() == v6)
            .collect();
        let bird_names: Vec<&str> = bird.bgp.iter().map(|b| b.name.as_str()).collect();
        let bgpd_names: Vec<&str> = bgpd_peers.iter().map(|p| p.name.as_str()).collect();
        if bird_names.iter().collect::<std::collections::BTreeSet<_>>()
            != bgpd_names.iter().collect()
        {
            diffs.push(d(format!(
                "sessions: BIRD {bird_names:?}, bgpd {bgpd_names:?}"
            )));
        }
        let cands = candidates(&bird, v6);
        for b in &bird.bgp {
            let Some(p) = config.peers.get(&b.name) else {
                continue;
            };
            match bird_facts(b, None) {
                Ok(f) => {
                    let g = bgpd_facts(p, config);
                    if f != g {
                        diffs.push(d(format!("session {}: BIRD {f:?}\n  bgpd {g:?}", b.name)));
                    }
                }
                Err(e) => diffs.push(d(format!("session {}: {e}", b.name))),
            }
            let s = Session {
                bird: b,
                bgpd: p,
                bird_cfg: &bird,
                config,
            };
            for c in &cands {
                match bird_export(&s, c) {
                    Ok(want) => {
                        let got = bgpd_export(&s, c);
                        if want != got {
                            diffs.push(d(format!(
                                "export to {} of {c:?}:\n  BIRD {want:?}\n  bgpd {got:?}",
                                b.name
                            )));
                        }
                    }
                    Err(e) => diffs.push(d(format!("export to {}: {e}", b.name))),
                }
                if let Origin::Bgp { .. } = c.origin {
                    match bird_import(&s, c) {
                        Ok(want) => {
                            let got = bgpd_import(&s, c);
                            if want != got {
                                diffs.push(d(format!(
                                    "import from {} of {c:?}:\n  BIRD {want:?}\n  bgpd {got:?}",
                                    b.name
                                )));
                            }
                        }
                        Err(e) => diffs.push(d(format!("import from {}: {e}", b.name))),
                    }
                }
            }
        }
        // Originated routes and the kernel.
        let statics: std::collections::BTreeSet<_> = bird
            .static_routes
            .iter()
            .map(|s| (s.prefix, s.via))
            .collect();
        let ours = originated(config, v6);
        if statics != ours {
            diffs.push(d(format!("static routes: BIRD {statics:?}, bgpd {ours:?}")));
        }
        for c in cands
            .iter()
            .filter(|c| !matches!(c.origin, Origin::Kernel { .. }))
        {
            if let Origin::Static { via } = c.origin {
                if !ours.contains(&(c.prefix, via)) {
                    continue;
                }
            }
            match (bird_kernel(&bird, c), bgpd_kernel(config, c)) {
                (Ok(want), Ok(got)) if want == got => {}
                (Ok(want), Ok(got)) => {
                    diffs.push(d(format!("kernel {c:?}:\n  BIRD {want:?}\n  bgpd {got:?}")))
                }
                (Err(e), _) | (_, Err(e)) => diffs.push(d(format!("kernel {c:?}: {e}"))),
            }
        }
    }
    diffs
}

fn run_steps(steps: &[Step]) {
    let mut all = Vec::new();
    for s in steps {
        let diffs = check(s);
        if !diffs.is_empty() {
            all.push(format!(
                "{} ({} differences):\n{}",
                s.golden,
                diffs.len(),
                diffs
                    .iter()
                    .take(12)
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("\n")
            ));
        }
    }
    assert!(all.is_empty(), "{}", all.join("\n\n"));
}

/// A test per scenario: `scenario!(name, [steps])`.
macro_rules! scenario {
    ($name:ident, $($step:expr),+ $(,)?) => {
        #[test]
        fn $name() {
            run_steps(&[$($step),+]);
        }
    };
}

// ---- mesh_test.go (etcd): oneshot, node kube-master with its block affinities.
scenario!(
    mesh_bgp_export,
    oneshot("mesh/bgp-export", &["mesh/bgp-export/input.yaml"])
);
scenario!(
    mesh_ipip_always,
    oneshot("mesh/ipip-always", &["mesh/ipip-always/input.yaml"])
);
scenario!(
    mesh_ipip_off,
    oneshot("mesh/ipip-off", &["mesh/ipip-off/input.yaml"])
);
scenario!(
    mesh_communities,
    oneshot("mesh/communities", &["mesh/communities/input.yaml"])
);
scenario!(
    mesh_route_reflector_mesh_enabled,
    oneshot(
        "mesh/route-reflector-mesh-enabled",
        &["mesh/route-reflector-mesh-enabled/input.yaml"]
    )
);
// daemon_test.go TestProgramClusterRoutes: restart-time with programClusterRoutes set.
scenario!(
    mesh_restart_time_program_cluster_routes,
    oneshot("mesh/restart-time", &["mesh/restart-time/input.yaml"]),
    Step {
        edits: &[|s| default_cfg(s, |c| c.program_cluster_routes =
            Some("EnabledNoEncapOnly".into()))],
        ..oneshot("mesh/restart-time", &["mesh/restart-time/input.yaml"])
    },
    Step {
        edits: &[|s| default_cfg(s, |c| c.program_cluster_routes = Some("Disabled".into()))],
        ..oneshot(
            "mesh/restart-time/pcr-disabled",
            &["mesh/restart-time/input.yaml"]
        )
    },
    Step {
        edits: &[|s| default_cfg(s, |c| c.program_cluster_routes = Some("Enabled".into()))],
        ..oneshot(
            "mesh/restart-time/pcr-enabled",
            &["mesh/restart-time/input.yaml"]
        )
    },
    Step {
        edits: &[|s| default_cfg(s, |c| c.program_cluster_routes =
            Some("EnabledIPIPOnly".into()))],
        ..oneshot(
            "mesh/restart-time/pcr-ipip-only",
            &["mesh/restart-time/input.yaml"]
        )
    },
);

// ---- explicit_peering_test.go (etcd).
scenario!(
    explicit_global,
    oneshot(
        "explicit_peering/global",
        &["explicit_peering/global/input.yaml"]
    )
);
scenario!(
    explicit_global_external,
    oneshot(
        "explicit_peering/global-external",
        &["explicit_peering/global-external/input.yaml"]
    )
);
scenario!(
    explicit_global_ipv6,
    oneshot(
        "explicit_peering/global-ipv6",
        &["explicit_peering/global-ipv6/input.yaml"]
    )
);
scenario!(
    explicit_specific_node,
    oneshot(
        "explicit_peering/specific_node",
        &["explicit_peering/specific_node/input.yaml"]
    )
);
scenario!(
    explicit_selectors,
    oneshot(
        "explicit_peering/selectors",
        &["explicit_peering/selectors/input.yaml"]
    )
);
scenario!(
    explicit_route_reflector,
    oneshot(
        "explicit_peering/route_reflector",
        &["explicit_peering/route_reflector/input.yaml"]
    )
);
scenario!(
    explicit_route_reflector_v6_by_ip,
    oneshot(
        "explicit_peering/route_reflector_v6_by_ip",
        &["explicit_peering/route_reflector_v6_by_ip/input.yaml"]
    )
);
scenario!(
    explicit_keepnexthop,
    oneshot(
        "explicit_peering/keepnexthop",
        &["explicit_peering/keepnexthop/input.yaml"]
    )
);
scenario!(
    explicit_local_as,
    oneshot(
        "explicit_peering/local-as",
        &["explicit_peering/local-as/input.yaml"]
    )
);
scenario!(
    explicit_local_as_global,
    oneshot(
        "explicit_peering/local-as-global",
        &["explicit_peering/local-as-global/input.yaml"]
    )
);
scenario!(
    explicit_local_as_ipv6,
    oneshot(
        "explicit_peering/local-as-ipv6",
        &["explicit_peering/local-as-ipv6/input.yaml"]
    )
);

// ---- bgpfilter_test.go (etcd).
macro_rules! filter_scenario {
    ($name:ident, $dir:literal) => {
        scenario!(
            $name,
            oneshot(
                concat!("bgpfilter/", $dir),
                &[concat!("bgpfilter/", $dir, "/input.yaml")]
            )
        );
    };
}
filter_scenario!(filter_single_global_peer, "single_filter/global_peer");
filter_scenario!(filter_single_explicit_peer, "single_filter/explicit_peer");
filter_scenario!(filter_multi_global_peer, "multi_filter/global_peer");
filter_scenario!(filter_multi_explicit_peer, "multi_filter/explicit_peer");
filter_scenario!(filter_node_mesh, "node_mesh");
filter_scenario!(filter_match_source, "match_source");
filter_scenario!(filter_match_interface, "match_interface");
filter_scenario!(filter_names, "filter_names");
filter_scenario!(
    filter_import_only_explicit_peer,
    "import_only/explicit_peer"
);
filter_scenario!(filter_import_only_global_peer, "import_only/global_peer");
filter_scenario!(filter_v6_only_global_peer, "v6_only/global_peer");
filter_scenario!(
    filter_export_only_explicit_peer,
    "export_only/explicit_peer"
);
filter_scenario!(filter_export_only_global_peer, "export_only/global_peer");
filter_scenario!(filter_v4_only_explicit_peer, "v4_only/explicit_peer");
filter_scenario!(filter_v4_only_global_peer, "v4_only/global_peer");
filter_scenario!(
    filter_communities_and_operations,
    "communities_and_operations"
);
filter_scenario!(filter_as_path_and_priority, "as_path_and_priority");
filter_scenario!(filter_large_community, "large_community");
// daemon_test.go TestNormalRoutePriorityChange: node_mesh without affinities, then the
// normal route priorities changed.
scenario!(
    filter_node_mesh_priorities,
    Step {
        affinities: false,
        ..oneshot(
            "bgpfilter/node_mesh/priority1",
            &["bgpfilter/node_mesh/input.yaml"]
        )
    },
    Step {
        affinities: false,
        edits: &[|s| default_cfg(s, |c| c.ipv4_normal_route_priority = Some(5000))],
        ..oneshot(
            "bgpfilter/node_mesh/priority2",
            &["bgpfilter/node_mesh/input.yaml"]
        )
    },
    Step {
        affinities: false,
        edits: &[|s| {
            default_cfg(s, |c| {
                c.ipv4_normal_route_priority = Some(5000);
                c.ipv6_normal_route_priority = Some(80);
            })
        }],
        ..oneshot(
            "bgpfilter/node_mesh/priority3",
            &["bgpfilter/node_mesh/input.yaml"]
        )
    },
);
// daemon_test.go TestBGPFilterDeletion.
scenario!(
    filter_deletion,
    oneshot(
        "bgpfilter/filter_deletion/step1",
        &["bgpfilter/filter_deletion/input.yaml"]
    ),
    Step {
        edits: &[|s| delete(s, Kind::BgpFilter, None, "test-filter")],
        ..oneshot(
            "bgpfilter/filter_deletion/step2",
            &["bgpfilter/filter_deletion/input.yaml"]
        )
    },
);

// ---- ttl_security_test.go, extra_oneshot_test.go (etcd).
scenario!(
    ttl_security_explicit_node,
    oneshot(
        "ttl_security/explicit_node",
        &["ttl_security/explicit_node/input.yaml"]
    )
);
scenario!(
    ttl_security_global,
    oneshot("ttl_security/global", &["ttl_security/global/input.yaml"])
);
scenario!(
    ignored_interfaces,
    oneshot("ignored_interfaces", &["ignored_interfaces/input.yaml"])
);
scenario!(
    felix_cluster_routing,
    oneshot(
        "felix_cluster_routing",
        &["felix_cluster_routing/input.yaml"]
    )
);
scenario!(
    cluster_routes_default,
    oneshot(
        "cluster_routes/default",
        &["cluster_routes/default/input.yaml"]
    )
);
scenario!(
    cluster_routes_enabled,
    oneshot(
        "cluster_routes/enabled",
        &["cluster_routes/enabled/input.yaml"]
    )
);
scenario!(
    cluster_routes_ipip_only,
    oneshot(
        "cluster_routes/ipip-only",
        &["cluster_routes/ipip-only/input.yaml"]
    )
);
scenario!(
    next_hop_mode_global_peers,
    oneshot(
        "next_hop_mode/global_peers",
        &["next_hop_mode/global_peers/input.yaml"]
    )
);
scenario!(
    reachable_by_global_peers,
    oneshot(
        "reachable_by/global_peers",
        &["reachable_by/global_peers/input.yaml"]
    )
);
scenario!(
    reverse_peering_auto,
    oneshot("reverse_peering/auto", &["reverse_peering/auto/input.yaml"])
);

// ---- daemon_test.go TestSourceAddrGracefulRestart: node1, no affinities.
scenario!(
    sourceaddr_gracefulrestart,
    Step {
        node: "node1",
        affinities: false,
        ..oneshot(
            "sourceaddr_gracefulrestart/step1",
            &["sourceaddr_gracefulrestart/input.yaml"]
        )
    },
    Step {
        node: "node1",
        affinities: false,
        edits: &[|s| peer_source_none(s)],
        ..oneshot(
            "sourceaddr_gracefulrestart/step2",
            &["sourceaddr_gracefulrestart/input.yaml"]
        )
    },
    Step {
        node: "node1",
        affinities: false,
        edits: &[|s| peer_source_none(s), |s| peer_restart_time(s)],
        ..oneshot(
            "sourceaddr_gracefulrestart/step3",
            &["sourceaddr_gracefulrestart/input.yaml"]
        )
    },
);

fn peer_source_none(s: &mut ResourceStore) {
    modify(s, Kind::BgpPeer, "bgppeer-1", |r| {
        if let Resource::BgpPeer(o) = r {
            o.spec.source_address = Some("None".into());
        }
    });
}

fn peer_restart_time(s: &mut ResourceStore) {
    modify(s, Kind::BgpPeer, "bgppeer-1", |r| {
        if let Resource::BgpPeer(o) = r {
            o.spec.max_restart_time = bgp_calico::resource::Duration::parse("10s").ok();
        }
    });
}

// ---- Passwords from Secrets (Calico runs these against the Kubernetes datastore only,
// where Secrets live; bgpd reads Secrets from any source).
scenario!(
    mesh_password,
    oneshot("mesh/password/step1", &["mesh_password/input.yaml"]),
    Step {
        edits: &[|s| secret(s, "my-secrets-1", &[("a", "password-a")])],
        ..oneshot("mesh/password/step2", &["mesh_password/input.yaml"])
    },
    Step {
        edits: &[|s| secret(s, "my-secrets-1", &[("a", "new-password-a")])],
        ..oneshot("mesh/password/step3", &["mesh_password/input.yaml"])
    },
    Step {
        edits: &[|s| secret(s, "my-secrets-1", &[("b", "password-b")])],
        ..oneshot("mesh/password/step1", &["mesh_password/input.yaml"])
    },
);

const PASSWORD: &[&str] = &["password/input.yaml"];

const fn password_step(golden: &'static str, edits: &'static [Edit]) -> Step {
    Step {
        golden,
        inputs: PASSWORD,
        edits,
        node: "node1",
        affinities: false,
    }
}

scenario!(
    bgppeer_passwords,
    password_step("password/step1", &[]),
    password_step(
        "password/step2",
        &[|s| secret(s, "my-secrets-1", &[("b", "password-b")])]
    ),
    password_step(
        "password/step3",
        &[|s| {
            secret(
                s,
                "my-secrets-1",
                &[("b", "password-b"), ("a", "password-a")],
            );
            secret(s, "my-secrets-2", &[("c", "password-c")]);
        }]
    ),
    password_step(
        "password/step4",
        &[|s| secret(
            s,
            "my-secrets-1",
            &[("b", "password-b"), ("a", "password-a")]
        )]
    ),
    password_step(
        "password/step5",
        &[|s| secret(
            s,
            "my-secrets-1",
            &[("b", "new-password-b"), ("a", "new-password-a")]
        )]
    ),
    password_step(
        "password/step6",
        &[|s| secret(s, "my-secrets-1", &[("b", "new-password-b")])]
    ),
);

// ---- daemon_test.go TestIdlePeers / TestNodeDeletion: session counts (no golden files).
fn v4_sessions(inputs: &'static [&'static str], node: &str, edits: &[Edit]) -> usize {
    let step = Step {
        golden: "",
        inputs,
        edits: &[],
        node: "node1",
        affinities: false,
    };
    let mut store = load(&step);
    for e in edits {
        e(&mut store);
    }
    let r = render(&store, &NodeEnv::new(node), &RenderOptions::default()).expect("renders");
    r.config
        .peers
        .values()
        .filter(|p| p.address.addr.is_ipv4())
        .count()
}

#[test]
fn idle_peers_deduplicate_to_one_session() {
    assert_eq!(v4_sessions(&["idle_peers/input.yaml"], "node1", &[]), 1);
}

#[test]
fn node_deletion_removes_its_session() {
    assert_eq!(v4_sessions(&["node_deletion/input.yaml"], "node1", &[]), 3);
    assert_eq!(
        v4_sessions(
            &["node_deletion/input.yaml"],
            "node1",
            &[|s| delete(s, Kind::Node, None, "node3")]
        ),
        2
    );
}
