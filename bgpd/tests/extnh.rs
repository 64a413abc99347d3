//! RFC 8950 end to end: two bgpd processes on an IPv6-only session over ::1 (each listening
//! on its own port) exchange IPv4 routes with IPv6 next hops when both enable
//! `extended_next_hop`, and not when only one does.
//!
//! The first two need no root and no kernel FIB (no `[kernel]` section), ports 11271-11274
//! being used only here. The last runs two bgpd in network namespaces it creates, with
//! the FIB: the IPv4 route is installed via the IPv6 next hop (`RTA_VIA`, Linux >= 5.2) and
//! forwards a ping; without root it prints SKIPPED (fails when `CI=true`, like the other
//! namespace tests). Waits poll a condition with a generous deadline; nothing asserts on
//! elapsed time.

mod support;

use std::net::IpAddr;
use std::path::Path;

use bgp_control::{FamilyFilter, Table};
use support::{originate, peer_toml, spawn_in_ns, Daemon, DEADLINE};

fn tempdir() -> tempfile::TempDir {
    support::tempdir("bgpd-extnh")
}

/// A speaker listening on [::1]:PORT only (no IPv4 address anywhere in its sessions).
fn global(dir: &Path, name: &str, id: u8, asn: u32, port: u16) -> String {
    support::global_toml(
        dir,
        name,
        asn,
        &format!("10.27.0.{id}"),
        &format!("[::1]:{port}"),
        "",
    )
}

/// The other speaker at ::1 on `port`, IPv4 and IPv6 unicast, RFC 8950 as given.
fn peer(name: &str, remote_as: u32, port: u16, ext: bool, extra: &str) -> String {
    peer_toml(
        name,
        "::1",
        remote_as,
        port,
        None,
        &format!("families = [\"ipv4\", \"ipv6\"]\nextended_next_hop = {ext}\n{extra}"),
    )
}

fn ext_nh_cap(caps: &[String]) -> bool {
    caps.iter().any(|c| c.starts_with("ExtendedNextHop"))
}

#[test]
fn ipv4_routes_over_ipv6_session_with_ipv6_next_hops() {
    let dir = tempdir();
    let d = dir.path();
    // eBGP: each side announces its own IPv4 and IPv6 block with next hop self, which on
    // this session can only be ::1.
    let a = Daemon::start(
        d,
        "a",
        &(global(d, "a", 1, 64701, 11271)
            + &peer("b", 64702, 11272, true, "")
            + &originate("10.71.0.0/16")
            + &originate("2001:db8:71::/48")),
    );
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 2, 64702, 11272)
            + &peer("a", 64701, 11271, true, "passive = true")
            + &originate("10.72.0.0/16")
            + &originate("10.73.1.0/24")),
    );
    a.wait_established("b");
    b.wait_established("a");

    let det = a.peer("b");
    assert!(ext_nh_cap(&det.capabilities_sent), "{det:?}");
    assert!(ext_nh_cap(&det.capabilities_received), "{det:?}");
    assert!(det.families.iter().any(|f| f == "ipv4-unicast"), "{det:?}");

    b.wait_for(|b| b.best("10.71.0.0/16").is_some(), "10.71.0.0/16 at b");
    a.wait_for(|a| a.best("10.72.0.0/16").is_some(), "10.72.0.0/16 at a");
    a.wait_for(|a| a.best("10.73.1.0/24").is_some(), "10.73.1.0/24 at a");
    b.wait_for(|b| b.best("2001:db8:71::/48").is_some(), "IPv6 route at b");

    for (speaker, prefix, from, as_path) in [
        (&b, "10.71.0.0/16", "a", "64701"),
        (&a, "10.72.0.0/16", "b", "64702"),
        (&a, "10.73.1.0/24", "b", "64702"),
    ] {
        let r = speaker.best(prefix).expect("route");
        // An IPv4 route whose next hop is the peer's IPv6 address (RFC 8950 3).
        assert_eq!(r.next_hop.as_deref(), Some("::1"), "{prefix}: {r:?}");
        assert_eq!(r.peer, from, "{prefix}: {r:?}");
        assert_eq!(r.as_path, as_path, "{prefix}: {r:?}");
    }
    // What a sends: its IPv4 route, next hop ::1.
    let out = a.routes(Table::Out, Some("b"), FamilyFilter::Ipv4);
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!(out[0].prefix, "10.71.0.0/16");
    assert_eq!(out[0].next_hop.as_deref(), Some("::1"));
}

#[test]
fn without_capability_on_one_side_ipv4_routes_stay_home() {
    let dir = tempdir();
    let d = dir.path();
    // a enables RFC 8950, b does not: the capability is not negotiated. a has no IPv4
    // address on the session, so its IPv4 route is not advertised at all; the session and
    // IPv6 routes are unaffected.
    let a = Daemon::start(
        d,
        "a",
        &(global(d, "a", 3, 64703, 11273)
            + &peer("b", 64704, 11274, true, "")
            + &originate("10.74.0.0/16")
            + &originate("2001:db8:74::/48")),
    );
    let b = Daemon::start(
        d,
        "b",
        &(global(d, "b", 4, 64704, 11274)
            + &peer("a", 64703, 11273, false, "passive = true")
            + &originate("10.75.0.0/16")
            + &originate("2001:db8:75::/48")),
    );
    a.wait_established("b");
    b.wait_established("a");
    let det = a.peer("b");
    assert!(ext_nh_cap(&det.capabilities_sent), "{det:?}");
    assert!(!ext_nh_cap(&det.capabilities_received), "{det:?}");
    assert!(det.families.iter().any(|f| f == "ipv4-unicast"), "{det:?}");

    b.wait_for(|b| b.best("2001:db8:74::/48").is_some(), "IPv6 route at b");
    a.wait_for(|a| a.best("2001:db8:75::/48").is_some(), "IPv6 route at a");
    // The IPv6 routes went through; the IPv4 ones are in neither Adj-RIB-Out.
    assert_eq!(a.routes(Table::Out, Some("b"), FamilyFilter::Ipv6).len(), 1);
    assert!(a
        .routes(Table::Out, Some("b"), FamilyFilter::Ipv4)
        .is_empty());
    assert!(b
        .routes(Table::Out, Some("a"), FamilyFilter::Ipv4)
        .is_empty());
    assert!(b.best("10.74.0.0/16").is_none());
    assert!(a.best("10.75.0.0/16").is_none());
    assert_eq!(a.state("b").as_deref(), Some("Established"));
}

/// A's IPv4 address inside the announced 10.77.0.0/24.
const SERVICE: std::net::Ipv4Addr = std::net::Ipv4Addr::new(10, 77, 0, 1);

/// bgpd in a namespace: IPv6 session on the segment, RFC 8950, FIB with protocol 12.
fn netns_config(me: IpAddr, peer: IpAddr, asn: u32, remote_as: u32, socket: &Path) -> String {
    format!(
        r#"[global]
asn = {asn}
router_id = "10.27.1.{id}"
listen = ["[{me}]:179"]
[global.control]
socket = "{socket}"
[global.graceful_restart]
enabled = false
[policies.all]
default = "accept"

[peers.p]
address = "{peer}"
remote_as = {remote_as}
hold_time = 9
connect_retry = 1
families = ["ipv4", "ipv6"]
extended_next_hop = true
import = ["all"]
export = ["all"]

[kernel.import]
protocols = [80]
route_types = ["unicast"]

[kernel.export]
protocol = 12
"#,
        id = asn % 100,
        socket = socket.display(),
    )
}

#[test]
fn kernel_installs_ipv4_route_via_ipv6_next_hop() {
    use interop::{run_test, wait_for, Error, Node, Segment};
    run_test("extnh_kernel_ipv4_via_ipv6", &["ip", "ping"], |test| {
        let v4: ipnet::Ipv4Net = "192.0.2.0/24"
            .parse()
            .map_err(|e| Error::Invalid(format!("{e}")))?;
        let v6: ipnet::Ipv6Net = "2001:db8::/64"
            .parse()
            .map_err(|e| Error::Invalid(format!("{e}")))?;
        let seg = Segment::with_subnets(test, v4, v6)?;
        let a = Node::new(test, &seg, "a", 1)?;
        let b = Node::new(test, &seg, "b", 2)?;
        // A's IPv4 service address, announced as 10.77.0.0/24 (not installed at A).
        a.ns.ip(&["addr", "add", &format!("{SERVICE}/32"), "dev", "lo"])?;
        a.ns.ip(&["link", "set", "lo", "up"])?;
        let mut procs = Vec::new();
        for (node, label, asn, remote, peer, extra) in [
            (
                &a,
                "a",
                64771,
                64772,
                b.v6,
                "\n[[originate]]\nprefix = \"10.77.0.0/24\"\nno_install = true\n",
            ),
            (&b, "b", 64772, 64771, a.v6, ""),
        ] {
            let socket = test.subdir(label)?.join("bgpd.sock");
            let cfg =
                netns_config(IpAddr::V6(node.v6), IpAddr::V6(peer), asn, remote, &socket) + extra;
            procs.push(spawn_in_ns(test, &node.ns, label, &cfg, &[])?);
        }
        // B: 10.77.0.0/24 via inet6 <A's IPv6 address> (RTA_VIA), protocol 12 (which
        // iproute2 prints as "bird").
        let want = format!("10.77.0.0/24 via inet6 {} dev eth0 proto ", a.v6);
        let ours = |l: &str| {
            l.strip_prefix(want.as_str())
                .is_some_and(|rest| rest.starts_with("bird ") || rest.starts_with("12 "))
        };
        wait_for("IPv4 route via IPv6 next hop at b", DEADLINE, || {
            let table = b.ns.ip(&["-4", "route", "show"])?;
            Ok(if table.lines().any(ours) {
                Ok(())
            } else {
                Err(table)
            })
        })?;
        // The kernel forwards with it: B reaches A's 10.77.0.1 (replies come back to
        // B's IPv4 address on the segment).
        wait_for("ping 10.77.0.1 from b", DEADLINE, || {
            Ok(if b.ns.ping(IpAddr::V4(SERVICE), Some(IpAddr::V4(b.v4)))? {
                Ok(())
            } else {
                Err("no reply".to_string())
            })
        })?;
        drop(procs);
        Ok(())
    });
}
