//! IPv6 link-local peers (`address = "fe80::2%veth0"`) on a live link.
//!
//! Two network namespaces joined by one veth pair, each end with a fixed link-local
//! address (fe80::1 / fe80::2) and a global address of a subnet of the link. Two bgpd
//! processes peer over the link-local addresses with the `%veth` scope (eBGP, the IPv4
//! route with RFC 8950 extended next hop over the same session), each originating an
//! IPv6 and an IPv4 prefix whose first address sits on its loopback. Each bgpd has a
//! `[kernel]` section, so the test checks what lands in the kernel: the next hop of the
//! learned routes must be usable, which `ping` from one loopback to the other proves.
//!
//! Needs root; without it the test prints SKIPPED, and fails when `CI=true`.
//! `INTEROP_KEEP=1` keeps the logs and configurations of a passing run.

mod support;

use std::net::{IpAddr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use interop::{run_test, wait_for, Error, Family, Netns, Result};
use support::{spawn_in_ns, DEADLINE};

/// One side of the link.
struct Side {
    label: &'static str,
    ifname: &'static str,
    asn: u32,
    router_id: &'static str,
    link_local: Ipv6Addr,
    /// Global address on the link (2001:db8:ff::/64).
    global: Ipv6Addr,
    /// Originated prefixes; their first address is put on the loopback.
    v6_prefix: &'static str,
    v4_prefix: &'static str,
    v6_host: IpAddr,
    v4_host: IpAddr,
}

fn config(me: &Side, peer: &Side, passive: bool, socket: &Path, password: Option<&str>) -> String {
    let password = password.map_or(String::new(), |p| format!("password = \"{p}\"\n"));
    format!(
        r#"[global]
asn = {asn}
router_id = "{rid}"
listen = ["[::]:179"]

[global.control]
socket = "{socket}"

[global.graceful_restart]
enabled = false

[peers.ll]
address = "{peer_ll}%{ifname}"
remote_as = {peer_as}
passive = {passive}
hold_time = 9
connect_retry = 1
families = ["ipv6", "ipv4"]
extended_next_hop = true
import = ["all"]
export = ["all"]
{password}
[[originate]]
prefix = "{v6}"

[[originate]]
prefix = "{v4}"

[kernel.import]
ipv4 = false
ipv6 = false

[kernel.export]
protocol = 12

[policies.all]
default = "accept"
"#,
        asn = me.asn,
        rid = me.router_id,
        socket = socket.display(),
        peer_ll = peer.link_local,
        ifname = me.ifname,
        peer_as = peer.asn,
        v6 = me.v6_prefix,
        v4 = me.v4_prefix,
    )
}

fn ip(ns: &Netns, args: &str) -> Result<String> {
    let a: Vec<&str> = args.split_whitespace().collect();
    ns.ip(&a)
}

/// `ip -j route show DST` of `family`, raw JSON (RTA_VIA gateways are objects there).
fn kernel_route(ns: &Netns, family: Family, dst: &str) -> Result<Vec<serde_json::Value>> {
    let f = match family {
        Family::Ipv4 => "-4",
        Family::Ipv6 => "-6",
    };
    let out = ns.ip(&["-j", f, "route", "show", dst])?;
    if out.trim().is_empty() {
        return Ok(Vec::new());
    }
    let v: serde_json::Value =
        serde_json::from_str(&out).map_err(|e| Error::Invalid(format!("ip -j route: {e}")))?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// The route to `dst` is ours (protocol 12) and leaves through `dev` via `gateway`, given
/// as `gateway` (same family) or as `via` (RFC 8950: IPv6 gateway of an IPv4 route).
fn installed_via(routes: &[serde_json::Value], dev: &str, gateway: Ipv6Addr) -> bool {
    let gw = gateway.to_string();
    routes.iter().any(|r| {
        let proto = r.get("protocol").map(|p| p.to_string());
        let ours = matches!(
            proto.as_deref(),
            Some("12") | Some("\"12\"") | Some("\"bird\"")
        );
        let via = r.get("gateway").and_then(|g| g.as_str()) == Some(gw.as_str())
            || r.get("via")
                .and_then(|v| v.get("host"))
                .and_then(|h| h.as_str())
                == Some(gw.as_str());
        ours && via && r.get("dev").and_then(|d| d.as_str()) == Some(dev)
    })
}

fn peer_state(socket: &Path) -> Result<String> {
    let v = interop::bgpd::control_at(socket, serde_json::json!({"command": "show_peers"}))?;
    Ok(v.get("peers")
        .and_then(|p| p.get(0))
        .map(|p| p.to_string())
        .unwrap_or_else(|| format!("no peer: {v}")))
}

fn parse<T: std::str::FromStr>(s: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    s.parse().map_err(|e| Error::Invalid(format!("{s}: {e}")))
}

/// The two ends of the link.
fn sides() -> Result<(Side, Side)> {
    let a = Side {
        label: "bgpd-a",
        ifname: "veth0",
        asn: 64601,
        router_id: "192.0.2.1",
        link_local: parse("fe80::1")?,
        global: parse("2001:db8:ff::1")?,
        v6_prefix: "2001:db8:a::/48",
        v4_prefix: "198.51.100.0/25",
        v6_host: parse("2001:db8:a::1")?,
        v4_host: parse("198.51.100.1")?,
    };
    let b = Side {
        label: "bgpd-b",
        ifname: "veth1",
        asn: 64602,
        router_id: "192.0.2.2",
        link_local: parse("fe80::2")?,
        global: parse("2001:db8:ff::2")?,
        v6_prefix: "2001:db8:b::/48",
        v4_prefix: "198.51.100.128/25",
        v6_host: parse("2001:db8:b::1")?,
        v4_host: parse("198.51.100.129")?,
    };
    Ok((a, b))
}

/// Two namespaces joined by the veth pair, addresses in place.
fn wire(test: &interop::Test, a: &Side, b: &Side) -> Result<(Arc<Netns>, Arc<Netns>)> {
    let na: Arc<Netns> = Netns::new(test, "a")?;
    let nb: Arc<Netns> = Netns::new(test, "b")?;
    na.ip(&[
        "link",
        "add",
        a.ifname,
        "type",
        "veth",
        "peer",
        "name",
        b.ifname,
        "netns",
        nb.name(),
    ])?;
    for (ns, s) in [(&na, a), (&nb, b)] {
        // No kernel-made link-local address: only the configured one exists.
        ns.sysctl(&format!("net.ipv6.conf.{}.addr_gen_mode", s.ifname), "1")?;
        ip(ns, &format!("link set {} up", s.ifname))?;
        ip(
            ns,
            &format!("-6 addr add {}/64 dev {} nodad", s.link_local, s.ifname),
        )?;
        ip(
            ns,
            &format!("-6 addr add {}/64 dev {} nodad", s.global, s.ifname),
        )?;
        ip(ns, &format!("-6 addr add {}/128 dev lo", s.v6_host))?;
        ip(ns, &format!("-4 addr add {}/32 dev lo", s.v4_host))?;
    }
    Ok((na, nb))
}

/// Starts bgpd for `me` in `ns` under `label`; returns it and its control socket.
fn start(
    test: &interop::Test,
    ns: &Arc<Netns>,
    (me, peer): (&Side, &Side),
    label: &str,
    passive: bool,
    password: Option<&str>,
) -> Result<(interop::Process, PathBuf)> {
    let socket = test.subdir(label)?.join("bgpd.sock");
    let process = spawn_in_ns(
        test,
        ns,
        label,
        &config(me, peer, passive, &socket, password),
        &[],
    )?;
    Ok((process, socket))
}

fn wait_established(socket: &Path, deadline: Duration) -> Result<()> {
    wait_for("session over link-local addresses", deadline, || {
        let st = peer_state(socket)?;
        Ok(if st.contains("\"state\":\"Established\"") {
            Ok(())
        } else {
            Err(st)
        })
    })
}

#[test]
fn link_local_peers_exchange_ipv6_and_ipv4_routes_with_usable_next_hops() {
    run_test(
        "link_local_peers_exchange_ipv6_and_ipv4_routes_with_usable_next_hops",
        &["ip", "ping"],
        |test| {
            let (a, b) = sides()?;
            let (na, nb) = wire(test, &a, &b)?;
            let mut procs = Vec::new();
            let mut sockets = Vec::new();
            for (ns, me, peer, passive) in [(&na, &a, &b, false), (&nb, &b, &a, true)] {
                let (process, socket) = start(test, ns, (me, peer), me.label, passive, None)?;
                procs.push(process);
                sockets.push(socket);
            }
            for s in &sockets {
                wait_established(s, DEADLINE)?;
            }
            // Each side installs the other's routes via the peer's global address on the
            // link, out of the veth (RFC 2545 next hop: global, then link-local).
            for (ns, me, peer) in [(&na, &a, &b), (&nb, &b, &a)] {
                for (family, prefix) in [
                    (Family::Ipv6, peer.v6_prefix),
                    (Family::Ipv4, peer.v4_prefix),
                ] {
                    let mut last = Vec::new();
                    wait_for(&format!("{} installs {prefix}", me.label), DEADLINE, || {
                        last = kernel_route(ns, family, prefix)?;
                        Ok(if installed_via(&last, me.ifname, peer.global) {
                            Ok(())
                        } else {
                            Err(format!("{last:?}"))
                        })
                    })?;
                }
            }
            // The next hops work: loopback to loopback, both families.
            for (src, dst) in [(a.v6_host, b.v6_host), (a.v4_host, b.v4_host)] {
                wait_for(&format!("ping {dst} from {src}"), DEADLINE, || {
                    Ok(if na.ping(dst, Some(src))? {
                        Ok(())
                    } else {
                        Err("no answer".into())
                    })
                })?;
            }
            drop(procs);
            Ok(())
        },
    );
}

/// TCP-MD5 (RFC 2385) on a session over link-local addresses: the key is set for the
/// peer's link-local address on the connecting socket and on the listening socket. Linux
/// matches TCP-MD5 keys by address (an interface index in `TCP_MD5SIG_EXT` names only an
/// L3 master device, a VRF), so the key applies to that address on every link. Different
/// keys keep the session down, which shows the keys are in force; the same key brings it
/// up and routes flow.
#[test]
fn link_local_peers_with_tcp_md5() {
    run_test("link_local_peers_with_tcp_md5", &["ip"], |test| {
        let (a, b) = sides()?;
        let (na, nb) = wire(test, &a, &b)?;
        let key = Some("link-secret");
        let (_pa, socket_a) = start(test, &na, (&a, &b), a.label, false, key)?;
        let wrong = start(test, &nb, (&b, &a), "bgpd-b-other-key", true, Some("other"))?;
        // Connect retry is 1 s: several attempts, each must fail.
        std::thread::sleep(Duration::from_secs(6));
        for s in [&socket_a, &wrong.1] {
            let st = peer_state(s)?;
            if st.contains("\"state\":\"Established\"") {
                return Err(Error::Invalid(format!(
                    "Established with different TCP-MD5 keys: {st}"
                )));
            }
        }
        drop(wrong);
        let (_pb, socket_b) = start(test, &nb, (&b, &a), b.label, true, key)?;
        for s in [&socket_a, &socket_b] {
            wait_established(s, DEADLINE)?;
        }
        let mut last = Vec::new();
        wait_for(
            &format!("{} installs {}", b.label, a.v6_prefix),
            DEADLINE,
            || {
                last = kernel_route(&nb, Family::Ipv6, a.v6_prefix)?;
                Ok(if installed_via(&last, b.ifname, a.global) {
                    Ok(())
                } else {
                    Err(format!("{last:?}"))
                })
            },
        )?;
        Ok(())
    });
}
