//! Calico's BIRD export and kernel-programming rules (REFERENCE section 1) expressed in the
//! declarative policy language, built from TOML exactly as the daemon will, and checked case
//! by case.

use bgp_proto::{Community, LargeCommunity, PathAttributes};
use bgp_rib::policy::{
    CompiledPolicy, InstallMode, KernelInfo, PeerType, PeerView, Policy, RouteSource, RouteView,
};

/// Node owns block 10.65.1.0/26 in pool 10.65.0.0/16; service CIDR 10.96.0.0/12 is
/// advertised (no install).
const EXPORT: &str = r#"
default = "reject"

[[rules]]
name = "no-connected"
match = { source = ["connected"] }
action = "reject"

[[rules]]
name = "excluded-interfaces"
match = { interface = ["cali*", "kube-ipvs*", "*.cali", "*.calico", "bpf*.cali"], prefix_not_in = [{ prefix = "10.65.0.0/16", orlonger = true }] }
action = "reject"

[[rules]]
name = "felix-tunnel-routes-not-over-ibgp"
match = { kernel_protocol = [80], peer_type = "ibgp" }
action = "reject"

[[rules]]
name = "block-10.65.1.0/26"
match = { prefix_in = [{ prefix = "10.65.1.0/26" }] }
set = { add_community = ["65000:100"], add_large_community = ["65000:1:2"] }
action = "accept"

[[rules]]
name = "elevated-in-block"
match = { prefix_in = [{ prefix = "10.65.1.0/26", ge = 27, le = 32 }], metric = { max = 1023 } }
set = { local_pref_from_metric = true }
action = "accept"

[[rules]]
name = "suppress-in-block"
match = { prefix_in = [{ prefix = "10.65.1.0/26", orlonger = true }] }
action = "reject"

[[rules]]
name = "borrowed-in-pool"
match = { prefix_in = [{ prefix = "10.65.0.0/16", orlonger = true }] }
action = "accept"

[[rules]]
name = "service-cidr"
match = { prefix_in = [{ prefix = "10.96.0.0/12" }], source = ["static"] }
action = "accept"
"#;

/// calico_kernel_programming: pool routes through tunl0 onlink, metric from LOCAL_PREF;
/// local blocks as blackholes.
const KERNEL: &str = r#"
default = "accept"

[[rules]]
name = "own-block-blackhole"
match = { prefix_in = [{ prefix = "10.65.1.0/26" }], source = ["static"] }
set = { install = "blackhole" }
action = "accept"

[[rules]]
name = "pool-via-tunnel"
match = { prefix_in = [{ prefix = "10.65.0.0/16", orlonger = true }], source = ["bgp"] }
set = { tunnel_device = "tunl0", install = "onlink", metric_from_local_pref = true }
action = "accept"

[[rules]]
name = "others"
match = { source = ["bgp"] }
set = { metric_from_local_pref = true }
action = "accept"
"#;

fn export() -> CompiledPolicy {
    toml::from_str::<Policy>(EXPORT).unwrap().compile().unwrap()
}

fn route<'a>(
    prefix: &str,
    attrs: &'a PathAttributes,
    source: RouteSource,
    kernel: Option<&'a KernelInfo>,
    peer_type: PeerType,
) -> RouteView<'a> {
    RouteView {
        prefix: prefix.parse().unwrap(),
        attrs,
        next_hop: None,
        next_hop_interface: None,
        source,
        kernel,
        peer: Some(PeerView {
            name: "Mesh_10_0_0_2",
            peer_type,
        }),
    }
}

fn pod(ifname: &str, metric: u32) -> KernelInfo {
    KernelInfo {
        ifname: Some(ifname.into()),
        metric: Some(metric),
        protocol: Some(3),
    }
}

#[test]
fn announces_local_block_with_communities() {
    let p = export();
    let a = PathAttributes::default();
    let out = p
        .evaluate(&route(
            "10.65.1.0/26",
            &a,
            RouteSource::Static,
            None,
            PeerType::Ibgp,
        ))
        .expect("block announced");
    assert_eq!(out.attrs.communities, vec![Community::new(65000, 100)]);
    assert_eq!(
        out.attrs.large_communities,
        vec![LargeCommunity {
            global: 65000,
            local1: 1,
            local2: 2
        }]
    );
}

#[test]
fn suppresses_normal_slash32_inside_own_block() {
    let p = export();
    let a = PathAttributes::default();
    let k = pod("cali1234", 1024);
    assert!(p
        .evaluate(&route(
            "10.65.1.5/32",
            &a,
            RouteSource::Kernel,
            Some(&k),
            PeerType::Ibgp
        ))
        .is_none());
    // Also without any metric (not a kernel route): suppressed.
    assert!(p
        .evaluate(&route(
            "10.65.1.5/32",
            &a,
            RouteSource::Bgp,
            None,
            PeerType::Ibgp
        ))
        .is_none());
}

#[test]
fn leaks_elevated_slash32_inside_own_block_with_mapped_local_pref() {
    let p = export();
    let a = PathAttributes::default();
    let k = pod("cali1234", 512);
    let out = p
        .evaluate(&route(
            "10.65.1.5/32",
            &a,
            RouteSource::Kernel,
            Some(&k),
            PeerType::Ibgp,
        ))
        .expect("elevated /32 leaked");
    assert_eq!(out.attrs.local_pref, Some(2_147_483_647 - 512));
    let k = pod("cali1234", 1023);
    assert!(p
        .evaluate(&route(
            "10.65.1.5/32",
            &a,
            RouteSource::Kernel,
            Some(&k),
            PeerType::Ibgp
        ))
        .is_some());
}

#[test]
fn announces_borrowed_slash32() {
    let p = export();
    let a = PathAttributes::default();
    let k = pod("cali9999", 1024);
    let out = p
        .evaluate(&route(
            "10.65.7.9/32",
            &a,
            RouteSource::Kernel,
            Some(&k),
            PeerType::Ebgp,
        ))
        .expect("borrowed /32 announced");
    assert!(out.is_unmodified());
}

#[test]
fn never_announces_excluded_interfaces_or_connected() {
    let p = export();
    let a = PathAttributes::default();
    for ifname in [
        "cali1",
        "kube-ipvs0",
        "bpfin.cali",
        "bpfout.cali",
        "vxlan.calico",
        "x.cali",
    ] {
        let k = pod(ifname, 0);
        assert!(
            p.evaluate(&route(
                "192.168.5.0/24",
                &a,
                RouteSource::Kernel,
                Some(&k),
                PeerType::Ebgp
            ))
            .is_none(),
            "{ifname}"
        );
        assert!(
            p.evaluate(&route(
                "10.65.7.0/32",
                &a,
                RouteSource::Connected,
                Some(&k),
                PeerType::Ebgp
            ))
            .is_none(),
            "{ifname} connected"
        );
    }
    let eth = pod("eth0", 0);
    assert!(p
        .evaluate(&route(
            "192.168.5.0/24",
            &a,
            RouteSource::Connected,
            Some(&eth),
            PeerType::Ebgp
        ))
        .is_none());
    // Default reject for anything else.
    assert!(p
        .evaluate(&route(
            "8.8.8.0/24",
            &a,
            RouteSource::Bgp,
            None,
            PeerType::Ebgp
        ))
        .is_none());
}

#[test]
fn felix_tunnel_routes_not_reannounced_over_ibgp() {
    let p = export();
    let a = PathAttributes::default();
    let k = KernelInfo {
        ifname: Some("tunl0".into()),
        metric: Some(0),
        protocol: Some(80),
    };
    assert!(p
        .evaluate(&route(
            "10.65.9.0/26",
            &a,
            RouteSource::Kernel,
            Some(&k),
            PeerType::Ibgp
        ))
        .is_none());
    assert!(p
        .evaluate(&route(
            "10.65.9.0/26",
            &a,
            RouteSource::Kernel,
            Some(&k),
            PeerType::Ebgp
        ))
        .is_some());
}

#[test]
fn service_cidr_announced() {
    let p = export();
    let a = PathAttributes::default();
    assert!(p
        .evaluate(&route(
            "10.96.0.0/12",
            &a,
            RouteSource::Static,
            None,
            PeerType::Ebgp
        ))
        .is_some());
}

#[test]
fn kernel_programming_maps_local_pref_to_metric_and_tunnel() {
    let p = toml::from_str::<Policy>(KERNEL).unwrap().compile().unwrap();
    let a = PathAttributes {
        local_pref: Some(100),
        ..Default::default()
    };
    let mut v = route("10.65.2.0/26", &a, RouteSource::Bgp, None, PeerType::Ibgp);
    v.peer = None;
    let out = p.evaluate(&v).unwrap();
    assert_eq!(out.tunnel_device.as_deref(), Some("tunl0"));
    assert_eq!(out.install, Some(InstallMode::Onlink));
    assert_eq!(out.metric, Some(2_147_483_647 - 100));
    let own = route(
        "10.65.1.0/26",
        &a,
        RouteSource::Static,
        None,
        PeerType::Ibgp,
    );
    assert_eq!(
        p.evaluate(&own).unwrap().install,
        Some(InstallMode::Blackhole)
    );
    let elevated = PathAttributes {
        local_pref: Some(2_147_483_647 - 512),
        ..Default::default()
    };
    let out = p
        .evaluate(&route(
            "10.65.1.5/32",
            &elevated,
            RouteSource::Bgp,
            None,
            PeerType::Ibgp,
        ))
        .unwrap();
    assert_eq!(out.metric, Some(512));
}
