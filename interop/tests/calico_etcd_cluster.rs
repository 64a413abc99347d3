//! The Calico namespace cluster fed from etcd only (`interop::calico_datastore`): node
//! namespaces with Felix-like state (a blackhole block, a pod behind a `cali*` veth), each
//! running `bgpd calico run` with calico-node's variables alone, and real etcd members in
//! namespaces of their own on the nodes' bridge. The datastore holds only Calico
//! resources in calico-node's layout: the `default` BGPConfiguration, an IPPool, the
//! `Node`s and each node's block affinity.
//!
//! - From the mesh to route reflectors while pods ping: Calico's recipe (a BGPPeer from
//!   `all()` to `route-reflector == 'true'`, two nodes labelled and given a
//!   `routeReflectorClusterID`, then `nodeToNodeMeshEnabled: false`) re-forms the
//!   sessions; echoes lost on a client-to-client and a client-to-reflector path are
//!   counted, printed and bounded. Then a node leaves (its `Node` deleted): its sessions
//!   go everywhere, its block leaves every kernel, nothing else is reset; it joins again:
//!   sessions, block and pings come back.
//! - etcd faults: three members, one killed (the others keep the quorum), then every
//!   member stopped and started again: no session is reset (Established transitions and
//!   uptimes), no block leaves a kernel and no echo is lost, and a change made after each
//!   fault is applied (the watch resumed).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use interop::calico::mesh_name;
use interop::calico_cluster::Pinger;
use interop::calico_datastore::{
    bgp_configuration, bgp_peer, node_resource, resource_key, start, wait_datastore_down,
    DatastoreCluster, Session,
};
use interop::etcd::ETCD_BINARIES;
use interop::{run_test, say, wait_for, Error, Kind, Result, Test, TIMEOUT};

/// Calico's route reflector label and the cluster id the two reflectors share.
const RR_LABEL: (&str, &str) = ("route-reflector", "true");
const RR_CLUSTER_ID: &str = "224.0.0.1";

fn binaries() -> Vec<String> {
    let mut v: Vec<String> = ETCD_BINARIES.iter().map(|s| s.to_string()).collect();
    v.extend(Kind::Bgpd.binaries());
    v.extend(["ip".to_string(), "ping".to_string()]);
    v
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Check(what()))
    }
}

/// `Node_A_B_C_D`: the session a BGPPeer gives towards a node.
fn node_session(c: &DatastoreCluster, i: usize) -> Result<String> {
    Ok(format!(
        "Node_{}",
        c.node(i)?.node.v4.to_string().replace('.', "_")
    ))
}

/// The sessions of node `i` with `reflectors` as route reflectors for `all`: a reflector
/// with every other node, a client with the reflectors.
fn reflector_sessions(
    c: &DatastoreCluster,
    i: usize,
    all: &[usize],
    reflectors: &[usize],
) -> Result<Vec<String>> {
    let towards: &[usize] = if reflectors.contains(&i) {
        all
    } else {
        reflectors
    };
    towards
        .iter()
        .filter(|o| **o != i)
        .map(|o| node_session(c, *o))
        .collect()
}

/// The sessions of `before` still there in `after` were not reset: the same Established
/// transitions, uptime not gone back.
fn not_reset(
    who: &str,
    before: &BTreeMap<String, Session>,
    after: &BTreeMap<String, Session>,
) -> Result<()> {
    for (name, b) in before {
        let Some(a) = after.get(name) else {
            continue;
        };
        check(
            a.state == "Established"
                && a.established == b.established
                && a.uptime_secs >= b.uptime_secs,
            || format!("{who}: {name} was reset: {b:?} -> {a:?}"),
        )?;
    }
    Ok(())
}

/// When the block of node `gone` left the kernels of `watchers`, from `since`.
fn block_gone_after(
    c: &DatastoreCluster,
    gone: usize,
    watchers: &[usize],
    since: Instant,
) -> Result<Duration> {
    let g = c.node(gone)?;
    wait_for(
        &format!("{}'s block out of {watchers:?}", g.name()),
        TIMEOUT,
        || {
            for w in watchers {
                if c.node(*w)?.has_any_route_to(g)? {
                    return Ok(Err(format!("still in n{}", w + 1)));
                }
            }
            Ok(Ok(()))
        },
    )?;
    Ok(since.elapsed())
}

#[test]
fn etcd_cluster_mesh_to_reflectors_then_a_node_leaves_and_joins() {
    run_test("calico_etcd_cluster_rr", &binaries(), |t: &Test| {
        let c = start(t, 4, 1)?;
        let all = [0, 1, 2, 3];
        let report = c.node(0)?.control("show_datastore")?;
        check(report["state"] == "in-sync" && report["nodes"] == 4, || {
            format!("show_datastore: {report}")
        })?;

        // Calico's route reflector recipe while pods ping: client to client (n3 to n4,
        // through reflection once the mesh is off) and client to reflector (n4 to n1,
        // whose session changes from Mesh_ to Node_).
        let (n1, n3, n4) = (c.node(0)?, c.node(2)?, c.node(3)?);
        let client_client = Pinger::start(t, n3.pod()?, n4.pod()?, 6000)?;
        let client_rr = Pinger::start(t, n4.pod()?, n1.pod()?, 6000)?;
        let began = Instant::now();
        c.put(
            &resource_key("bgppeers", "peer-with-route-reflectors"),
            &bgp_peer(
                "peer-with-route-reflectors",
                "all()",
                "route-reflector == 'true'",
            ),
        )?;
        for rr in [0, 1] {
            c.put_node(rr, &[RR_LABEL], Some(RR_CLUSTER_ID))?;
        }
        c.put(
            &resource_key("bgpconfigurations", "default"),
            &bgp_configuration(false),
        )?;
        let reflectors = [0, 1];
        for i in all {
            c.node(i)?
                .wait_sessions(&reflector_sessions(&c, i, &all, &reflectors)?)?;
        }
        let reformed = began.elapsed();
        for i in all {
            c.wait_blocks(i, &all, &[])?;
        }
        // A clean stretch after the change, so the counts cover its whole effect.
        std::thread::sleep(Duration::from_secs(2));
        let (cc, cr) = (client_client.stop()?, client_rr.stop()?);
        say(&format!(
            "mesh -> 2 route reflectors: sessions re-formed after {:.2} s; echoes lost \
             client->client {}/{}, client->reflector {}/{} (10 echoes/s)",
            reformed.as_secs_f64(),
            cc.lost(),
            cc.sent,
            cr.lost(),
            cr.sent
        ));
        // Client to client: the reflected path is there before the mesh session goes.
        // Client to reflector: one session replaces another (Hard Reset, then a new
        // connection), a few seconds at most.
        check(cc.lost() <= 10, || format!("client->client lost {cc:?}"))?;
        check(cr.lost() <= 100, || {
            format!("client->reflector lost {cr:?}")
        })?;
        c.wait_pings(&all)?;

        // n4 leaves: its sessions go from both reflectors, its block from every kernel;
        // nothing else is reset.
        let stay = [0, 1, 2];
        let before: Vec<_> = stay
            .iter()
            .map(|i| c.node(*i)?.sessions())
            .collect::<Result<_>>()?;
        let left = Instant::now();
        c.delete_node(3)?;
        let gone = block_gone_after(&c, 3, &stay, left)?;
        for (i, b) in stay.iter().zip(&before) {
            let want: Vec<String> = b
                .keys()
                .filter(|k| **k != node_session(&c, 3).unwrap_or_default())
                .cloned()
                .collect();
            let after = c.node(*i)?.wait_sessions(&want)?;
            not_reset(c.node(*i)?.name(), b, &after)?;
            c.wait_blocks(*i, &stay, &[3])?;
        }
        c.wait_pings(&stay)?;
        say(&format!(
            "n4's Node deleted: its block out of every kernel after {:.2} s",
            gone.as_secs_f64()
        ));

        // n4 joins again: sessions, block and pings come back.
        let joined = Instant::now();
        c.put_node(3, &[], None)?;
        for i in all {
            c.node(i)?
                .wait_sessions(&reflector_sessions(&c, i, &all, &reflectors)?)?;
        }
        for i in all {
            c.wait_blocks(i, &all, &[])?;
        }
        c.wait_pings(&all)?;
        say(&format!(
            "n4's Node back: sessions, blocks and pings back after {:.2} s",
            joined.elapsed().as_secs_f64()
        ));
        Ok(())
    });
}

#[test]
fn etcd_member_killed_and_all_members_restarted_reset_nothing() {
    run_test("calico_etcd_cluster_faults", &binaries(), |t: &Test| {
        let mut c = start(t, 3, 3)?;
        let all = [0, 1, 2];
        let sessions = |c: &DatastoreCluster| -> Result<Vec<BTreeMap<String, Session>>> {
            all.iter().map(|i| c.node(*i)?.sessions()).collect()
        };
        let mesh = |c: &DatastoreCluster, with: &[usize]| -> Result<()> {
            for i in all {
                c.node(i)?.wait_sessions(&c.mesh_of(i, with)?)?;
            }
            Ok(())
        };
        let unchanged = |c: &DatastoreCluster, before: &[BTreeMap<String, Session>]| {
            for (i, b) in all.iter().zip(before) {
                let n = c.node(*i)?;
                not_reset(n.name(), b, &n.sessions()?)?;
                c.wait_blocks(*i, &all, &[])?;
            }
            Ok::<(), Error>(())
        };
        let first = sessions(&c)?;
        let ping = Pinger::start(t, c.node(0)?.pod()?, c.node(2)?.pod()?, 6000)?;
        // A node that exists only in the datastore (no bgpd): its mesh session is
        // configured on every node, Established or not.
        let ghost: Ipv4Addr = "10.0.0.9"
            .parse()
            .map_err(|_| Error::Invalid("ip".into()))?;
        let ghost_session = mesh_name(IpAddr::V4(ghost));
        let has_ghost = |c: &DatastoreCluster, want: bool| -> Result<()> {
            for i in all {
                let n = c.node(i)?;
                wait_for(
                    &format!("{}: {ghost_session} configured {want}", n.name()),
                    TIMEOUT,
                    || {
                        let s = n.sessions()?;
                        Ok(if s.contains_key(&ghost_session) == want {
                            Ok(())
                        } else {
                            Err(format!("{s:?}"))
                        })
                    },
                )?;
            }
            Ok(())
        };

        // One member of three killed: the quorum stays, a change still comes through.
        c.etcd.kill_member(0)?;
        c.etcd.wait_healthy()?;
        c.put(
            &resource_key("nodes", "ghost"),
            &node_resource("ghost", ghost, &[], None),
        )?;
        has_ghost(&c, true)?;
        unchanged(&c, &first)?;
        say("etcd member m0 killed: a change applied, no session reset, no block lost");

        // Every member stopped: bgpd says the datastore is down and keeps everything.
        c.etcd.stop_member(1)?;
        c.etcd.stop_member(2)?;
        for i in all {
            let n = c.node(i)?;
            wait_datastore_down(n.name(), &n.socket, TIMEOUT)?;
        }
        std::thread::sleep(Duration::from_secs(3));
        unchanged(&c, &first)?;
        // Back: the watch resumes (no fresh listing) and a later change is applied.
        for m in 0..3 {
            c.etcd.start_member(t, m)?;
        }
        c.etcd.wait_healthy()?;
        c.etcd.delete(&resource_key("nodes", "ghost"))?;
        has_ghost(&c, false)?;
        mesh(&c, &all)?;
        unchanged(&c, &first)?;
        for i in all {
            let n = c.node(i)?;
            let report = n.control("show_datastore")?;
            check(
                report["state"] == "in-sync"
                    && report["connected"] == true
                    && report["listings"] == 1
                    && report["failures"].as_u64().is_some_and(|f| f >= 1),
                || format!("{}: show_datastore: {report}", n.name()),
            )?;
        }
        c.wait_pings(&all)?;
        let count = ping.stop()?;
        say(&format!(
            "etcd member killed, then all stopped and started: echoes lost {}/{}",
            count.lost(),
            count.sent
        ));
        check(count.lost() == 0, || format!("echoes lost: {count:?}"))?;
        Ok(())
    });
}
