//! A node following a 1,000-node datastore: what one change costs, from the watch event
//! (key and JSON value, as etcd delivers them) through the syncer and the store to the
//! node's derived configuration. Each iteration applies a change and its inverse, so the
//! figures are per pair of changes. The path each kind of change takes (skipped, mesh
//! sessions patched, derived again) is printed once, with the full derivation as the
//! yardstick.
//!
//! `cargo bench -p bgp-calico --bench follow`

use criterion::{criterion_group, criterion_main, Criterion};

use bgp_calico::derive::{derive, NodeEnv};
use bgp_calico::follow::Follower;
use bgp_calico::resource::etcd::{AFFINITY_PREFIX, RESOURCES_PREFIX};
use bgp_calico::source::sync::{Kv, KvEvent, Syncer};
use bgp_calico::source::SyncEvent;

const NODES: usize = 1000;

fn node_value(i: usize, zone: &str) -> Vec<u8> {
    format!(
        r#"{{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{{"name":"node-{i}","labels":{{"zone":"{zone}","kubernetes.io/hostname":"node-{i}"}}}},"spec":{{"bgp":{{"ipv4Address":"10.{}.{}.{}/16"}}}}}}"#,
        i / 65536 % 256 + 1,
        i / 256 % 256,
        i % 256 + 1
    )
    .into_bytes()
}

fn kv(key: String, value: Vec<u8>, rev: i64) -> Kv {
    Kv {
        key,
        value,
        mod_revision: rev,
    }
}

/// A follower of node-0 in a cluster of [`NODES`] nodes, each with a block, plus a
/// BGPPeer to a top-of-rack router for a few nodes; `reflectors`: mesh off, node-1 and
/// node-2 reflectors every other node peers with.
fn cluster(reflectors: bool) -> (Syncer, Follower) {
    let mut s = Syncer::new(vec![
        format!("{RESOURCES_PREFIX}nodes/"),
        format!("{RESOURCES_PREFIX}bgppeers/"),
        format!("{RESOURCES_PREFIX}bgpconfigurations/"),
        format!("{AFFINITY_PREFIX}"),
    ]);
    let mut kvs = Vec::new();
    for i in 0..NODES {
        let mut v = node_value(i, "a");
        if reflectors && (i == 1 || i == 2) {
            v = String::from_utf8_lossy(&v)
                .replace(
                    r#""bgp":{"#,
                    r#""bgp":{"routeReflectorClusterID":"224.0.0.1","#,
                )
                .replace(r#""zone":"a""#, r#""zone":"a","rr":"true""#)
                .into_bytes();
        }
        kvs.push(kv(format!("{RESOURCES_PREFIX}nodes/node-{i}"), v, 1));
        kvs.push(kv(
            format!(
                "{AFFINITY_PREFIX}node-{i}/ipv4/block/10.244.{}.{}-26",
                i / 4,
                i % 4 * 64
            ),
            br#"{"state":"confirmed","deleted":false}"#.to_vec(),
            1,
        ));
    }
    kvs.push(kv(
        format!("{RESOURCES_PREFIX}bgppeers/tor-rack-9"),
        br#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"tor-rack-9"},"spec":{"nodeSelector":"rack == '9'","peerIP":"192.0.2.9","asNumber":65009}}"#.to_vec(),
        1,
    ));
    if reflectors {
        kvs.push(kv(
            format!("{RESOURCES_PREFIX}bgpconfigurations/default"),
            br#"{"kind":"BGPConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default"},"spec":{"nodeToNodeMeshEnabled":false}}"#.to_vec(),
            1,
        ));
        kvs.push(kv(
            format!("{RESOURCES_PREFIX}bgppeers/to-reflectors"),
            br#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"to-reflectors"},"spec":{"nodeSelector":"!has(rr)","peerSelector":"has(rr)"}}"#.to_vec(),
            1,
        ));
    }
    let mut f = Follower::new(NodeEnv::new("node-0"));
    for ev in s.listed(1, kvs) {
        f.handle(ev);
    }
    (s, f)
}

/// Feeds one watch event of prefix `index` through the syncer to the follower.
fn feed(s: &mut Syncer, f: &mut Follower, index: usize, ev: KvEvent) {
    if let Some(batch @ SyncEvent::Updates { .. }) = s.watched(index, vec![ev]) {
        f.handle(batch);
    }
}

/// A change and its inverse as watch events (prefix index, event), revisions from `rev`.
type Step = Box<dyn Fn(i64) -> [(usize, KvEvent); 2]>;

fn steps() -> Vec<(&'static str, Step)> {
    let node_key = |i: usize| format!("{RESOURCES_PREFIX}nodes/node-{i}");
    vec![
        (
            "a node's labels change (no BGP fact)",
            Box::new(move |r| {
                [
                    (0, KvEvent::Put(kv(node_key(500), node_value(500, "b"), r))),
                    (
                        0,
                        KvEvent::Put(kv(node_key(500), node_value(500, "a"), r + 1)),
                    ),
                ]
            }),
        ),
        (
            "another node's block is released and allocated again",
            Box::new(move |r| {
                let key = format!("{AFFINITY_PREFIX}node-700/ipv4/block/10.250.0.0-26");
                [
                    (
                        3,
                        KvEvent::Put(kv(
                            key.clone(),
                            br#"{"state":"confirmed","deleted":false}"#.to_vec(),
                            r,
                        )),
                    ),
                    (
                        3,
                        KvEvent::Delete {
                            key,
                            mod_revision: r + 1,
                        },
                    ),
                ]
            }),
        ),
        (
            "a node leaves and joins again",
            Box::new(move |r| {
                [
                    (
                        0,
                        KvEvent::Delete {
                            key: node_key(900),
                            mod_revision: r,
                        },
                    ),
                    (
                        0,
                        KvEvent::Put(kv(node_key(900), node_value(900, "a"), r + 1)),
                    ),
                ]
            }),
        ),
        (
            "a BGPPeer for other nodes is added and removed",
            Box::new(move |r| {
                let key = format!("{RESOURCES_PREFIX}bgppeers/tor-rack-7");
                [
                    (1, KvEvent::Put(kv(key.clone(), br#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"tor-rack-7"},"spec":{"nodeSelector":"rack == '7'","peerIP":"192.0.2.7","asNumber":65007}}"#.to_vec(), r))),
                    (1, KvEvent::Delete { key, mod_revision: r + 1 }),
                ]
            }),
        ),
        (
            "a global BGPPeer is added and removed (derived again)",
            Box::new(move |r| {
                let key = format!("{RESOURCES_PREFIX}bgppeers/upstream");
                [
                    (1, KvEvent::Put(kv(key.clone(), br#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"upstream"},"spec":{"peerIP":"192.0.2.1","asNumber":65001}}"#.to_vec(), r))),
                    (1, KvEvent::Delete { key, mod_revision: r + 1 }),
                ]
            }),
        ),
    ]
}

fn bench(c: &mut Criterion) {
    for (topology, reflectors) in [("mesh", false), ("reflectors", true)] {
        let mut group = c.benchmark_group(format!("follow-1000-nodes-{topology}"));
        {
            let (_, f) = cluster(reflectors);
            let env = NodeEnv::new("node-0");
            group.bench_function("full derivation (yardstick)", |b| {
                b.iter(|| derive(f.store(), &env))
            });
        }
        for (name, step) in steps() {
            let (mut s, mut f) = cluster(reflectors);
            let mut rev = 10;
            let before = f.stats().clone();
            for (i, ev) in step(rev) {
                feed(&mut s, &mut f, i, ev);
            }
            rev += 2;
            let after = f.stats().clone();
            eprintln!(
                "{topology}: {name}: skipped {} patched {} derived {} (per pair of changes)",
                after.skipped - before.skipped,
                after.patched - before.patched,
                after.derived - before.derived
            );
            group.bench_function(name, |b| {
                b.iter(|| {
                    for (i, ev) in step(rev) {
                        feed(&mut s, &mut f, i, ev);
                    }
                    rev += 2;
                })
            });
        }
        group.finish();
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
