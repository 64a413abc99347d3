//! Every example configuration in `examples/` parses, resolves and validates.

use std::path::PathBuf;

fn examples_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"))
}

#[test]
fn example_configs_load() {
    let mut seen = 0;
    for name in [
        "calico-node-mesh.toml",
        "route-reflector.toml",
        "pass-through-router.toml",
    ] {
        let path = examples_dir().join(name);
        let cfg = bgp_speaker::config::load(&path)
            .unwrap_or_else(|e| panic!("{name} does not load: {e}"));
        assert!(!cfg.peers.is_empty(), "{name} has peers");
        for p in cfg.peers.values() {
            for pol in p.import.iter().chain(&p.export) {
                assert!(cfg.policies.contains_key(pol), "{name}: {pol}");
            }
        }
        seen += 1;
    }
    assert_eq!(seen, 3);
}

#[test]
fn calico_mesh_example_semantics() {
    let cfg = bgp_speaker::config::load(&examples_dir().join("calico-node-mesh.toml")).unwrap();
    let p = &cfg.peers["Mesh_10_0_0_10"];
    assert!(p.passive);
    assert!(p.is_ibgp(&cfg.global));
    assert_eq!(p.hold_time, 30);
    assert_eq!(cfg.originate.len(), 2);
    assert!(cfg.originate.values().any(|o| o.no_install));
}

#[test]
fn route_reflector_example_semantics() {
    let cfg = bgp_speaker::config::load(&examples_dir().join("route-reflector.toml")).unwrap();
    let clients = cfg
        .peers
        .values()
        .filter(|p| p.route_reflector_client)
        .count();
    assert_eq!(clients, 3);
    assert_eq!(cfg.global.cluster_id, Some("224.0.0.1".parse().unwrap()));
    assert!(cfg.peers["RR_10_0_0_251"].password.is_some());
}

#[test]
fn pass_through_example_semantics() {
    let cfg = bgp_speaker::config::load(&examples_dir().join("pass-through-router.toml")).unwrap();
    assert_eq!(cfg.peers.len(), 2);
    assert!(cfg.peers.values().all(|p| !p.is_ibgp(&cfg.global)));
    assert_eq!(cfg.peers["upstream"].min_ttl(), Some(255));
}
