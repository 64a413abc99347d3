//! Oracle: real BIRD side by side. For each scenario, BIRD 1.6.8 (Debian's `bird`, what
//! calico-node's BIRD is built from) runs on the configuration calico-node's confd
//! renders, and bgpd runs on `bgpd calico render`'s configuration from the same Calico
//! resources, each in its own twin world with the same BIRD 2 neighbours and the same
//! Felix-like kernel state (`interop::twin`). What every neighbour receives (prefixes and
//! attributes) and what the node installs in its kernel must be the same.

use std::time::Duration;

use interop::bird1::bird1_binary;
use interop::twin::{confd_scenario, differences, Daemon, World};
use interop::{run_test, Kind};

fn binaries() -> Vec<String> {
    let mut b = interop::binaries_for(&[Kind::Bird, Kind::Bgpd]);
    b.push(bird1_binary().to_string_lossy().into_owned());
    b
}

fn twins(test_name: &str, scenario: &str, inputs: &[&str], affinities: bool) {
    run_test(test_name, &binaries(), |t| {
        let s = confd_scenario(scenario, inputs, affinities);
        let bird = World::start(t, "a", &s, Daemon::Bird1)?;
        let bgpd = World::start(t, "b", &s, Daemon::Bgpd)?;
        let timeout = Duration::from_secs(60);
        let settle = Duration::from_secs(3);
        let want = bird.converge(timeout, settle)?;
        let got = bgpd.converge(timeout, settle)?;
        let announced: usize = want.received.values().map(|r| r.len()).sum();
        interop::say(&format!(
            "{scenario}: {} sessions, {announced} routes announced, {} installed",
            bird.sessions(),
            want.installed.len()
        ));
        let d = differences(&want, &got);
        if !d.is_empty() {
            return Err(interop::Error::Check(format!(
                "{scenario}: bgpd differs from BIRD 1.6:\n{}",
                d.join("\n")
            )));
        }
        Ok(())
    });
}

#[test]
fn twin_mesh_bgp_export() {
    twins(
        "twin_mesh_bgp_export",
        "mesh/bgp-export",
        &["mesh/bgp-export/input.yaml"],
        true,
    );
}

#[test]
fn twin_mesh_ipip_always() {
    twins(
        "twin_mesh_ipip_always",
        "mesh/ipip-always",
        &["mesh/ipip-always/input.yaml"],
        true,
    );
}

#[test]
fn twin_mesh_communities_listen_port() {
    twins(
        "twin_mesh_communities",
        "mesh/communities",
        &["mesh/communities/input.yaml"],
        true,
    );
}

#[test]
fn twin_mesh_route_reflector() {
    twins(
        "twin_mesh_route_reflector",
        "mesh/route-reflector-mesh-enabled",
        &["mesh/route-reflector-mesh-enabled/input.yaml"],
        true,
    );
}

#[test]
fn twin_route_reflector_clients_and_ebgp() {
    twins(
        "twin_route_reflector",
        "explicit_peering/route_reflector",
        &["explicit_peering/route_reflector/input.yaml"],
        true,
    );
}

#[test]
fn twin_keep_next_hop() {
    twins(
        "twin_keepnexthop",
        "explicit_peering/keepnexthop",
        &["explicit_peering/keepnexthop/input.yaml"],
        true,
    );
}

#[test]
fn twin_selector_peers_on_ports() {
    twins(
        "twin_selectors",
        "explicit_peering/selectors",
        &["explicit_peering/selectors/input.yaml"],
        true,
    );
}

#[test]
fn twin_local_as() {
    twins(
        "twin_local_as",
        "explicit_peering/local-as",
        &["explicit_peering/local-as/input.yaml"],
        true,
    );
}

#[test]
fn twin_filter_interface_and_source() {
    twins(
        "twin_filter_single",
        "bgpfilter/single_filter/global_peer",
        &["bgpfilter/single_filter/global_peer/input.yaml"],
        true,
    );
}

#[test]
fn twin_filter_communities_and_operations() {
    twins(
        "twin_filter_ops",
        "bgpfilter/communities_and_operations",
        &["bgpfilter/communities_and_operations/input.yaml"],
        true,
    );
}

#[test]
fn twin_filter_as_path_and_priority() {
    twins(
        "twin_filter_aspath",
        "bgpfilter/as_path_and_priority",
        &["bgpfilter/as_path_and_priority/input.yaml"],
        true,
    );
}

#[test]
fn twin_ttl_security() {
    twins(
        "twin_ttl_security",
        "ttl_security/explicit_node",
        &["ttl_security/explicit_node/input.yaml"],
        true,
    );
}

#[test]
fn twin_next_hop_modes() {
    twins(
        "twin_next_hop_mode",
        "next_hop_mode/global_peers",
        &["next_hop_mode/global_peers/input.yaml"],
        true,
    );
}

#[test]
fn twin_ipip_cross_subnet_and_plain_pools() {
    twins(
        "twin_cluster_routes",
        "cluster_routes/default",
        &["cluster_routes/default/input.yaml"],
        true,
    );
}

#[test]
fn twin_global_peers_sharing_an_address() {
    twins(
        "twin_global_ports",
        "explicit_peering/global",
        &["explicit_peering/global/input.yaml"],
        true,
    );
}
