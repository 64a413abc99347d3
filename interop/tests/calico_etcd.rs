//! Calico's etcd v3 datastore source (`bgp_calico::source::etcd`) against real etcd
//! (Debian's etcd-server), each test in a namespace of its own: the initial sync and
//! changes in order (per kind: each kind has its watch, as in calico-node's syncer), a member killed and the whole cluster restarted without a change
//! lost or a relisting, a compacted revision turned into a fresh listing delivered as the
//! difference, and TLS with client certificates (and a certificate from another CA
//! refused).
//!
//! The source runs on a tokio runtime inside the namespace ([`Netns::enter`]); the test
//! changes the datastore with etcdctl between awaits and follows the source as bgpd
//! would, through a [`Follower`].

use std::sync::Arc;
use std::time::Duration;

use bgp_calico::derive::NodeEnv;
use bgp_calico::follow::Follower;
use bgp_calico::resource::Kind;
use bgp_calico::source::etcd::{EtcdConfig, EtcdSource, TlsFiles};
use bgp_calico::source::{DatastoreStatus, SyncEvent, SyncState};
use bgp_calico::store::Update;
use interop::etcd::{EtcdCluster, EtcdTls, ETCD_BINARIES};
use interop::{run_test, Error, Netns, Result, Test};
use tokio::sync::{mpsc, watch};

const NODES: &str = "/calico/resources/v3/projectcalico.org/nodes/";
const PEERS: &str = "/calico/resources/v3/projectcalico.org/bgppeers/";
/// Generous bound for the source to see a change (a broken setup must not hang).
const SEE: Duration = Duration::from_secs(30);

fn node_json(name: &str, ip: &str) -> String {
    format!(
        r#"{{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{{"name":"{name}"}},"spec":{{"bgp":{{"ipv4Address":"{ip}/24"}}}}}}"#
    )
}

fn put_node(c: &EtcdCluster, name: &str, ip: &str) -> Result<i64> {
    c.put(&format!("{NODES}{name}"), &node_json(name, ip))
}

fn config(c: &EtcdCluster, endpoints: Vec<String>, tls: Option<TlsFiles>) -> EtcdConfig {
    let mut cfg = EtcdConfig::from_vars(Some("n1".into()), |_| None).expect("config");
    cfg.endpoints = endpoints;
    cfg.tls = tls.or_else(|| {
        c.tls().map(|t| TlsFiles {
            ca_cert_file: t.ca_cert.clone(),
            cert_file: t.client_cert.clone(),
            key_file: t.client_key.clone(),
        })
    });
    cfg.retry_initial = Duration::from_millis(100);
    cfg.retry_max = Duration::from_millis(800);
    cfg.request_timeout = Duration::from_secs(5);
    cfg
}

/// The consumer side: the source's events applied to a follower, every update recorded.
struct Consumer {
    events: mpsc::Receiver<SyncEvent>,
    status: watch::Receiver<DatastoreStatus>,
    follower: Follower,
    /// `put KIND NAME` / `delete KIND NAME`, in delivery order.
    seen: Vec<String>,
    states: Vec<SyncState>,
    batches: Vec<Vec<String>>,
}

fn describe(u: &Update) -> String {
    match u {
        Update::Put(r) => format!("put {}", r.key()),
        Update::Delete(k) => format!("delete {k}"),
    }
}

impl Consumer {
    fn start(rt: &tokio::runtime::Runtime, cfg: EtcdConfig) -> Consumer {
        let (tx, events) = mpsc::channel(64);
        let (status_tx, status) = watch::channel(DatastoreStatus::new(cfg.describe()));
        rt.spawn(EtcdSource::new(cfg).run(tx, status_tx));
        Consumer {
            events,
            status,
            follower: Follower::new(NodeEnv::new("n1")),
            seen: Vec::new(),
            states: Vec::new(),
            batches: Vec::new(),
        }
    }

    /// Takes events until `done` holds (checked after each), within [`SEE`].
    async fn until(&mut self, what: &str, done: impl Fn(&Consumer) -> bool) -> Result<()> {
        let deadline = tokio::time::Instant::now() + SEE;
        while !done(self) {
            let ev = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .map_err(|_| Error::Timeout {
                    what: what.into(),
                    secs: SEE.as_secs(),
                    last: format!("seen {:?}, status {:?}", self.seen, *self.status.borrow()),
                })?
                .ok_or_else(|| Error::Check("the source stopped".into()))?;
            match &ev {
                SyncEvent::Updates { updates, .. } => {
                    let d: Vec<String> = updates.iter().map(describe).collect();
                    self.seen.extend(d.iter().cloned());
                    self.batches.push(d);
                }
                SyncEvent::State(s) => self.states.push(*s),
            }
            self.follower.handle(ev);
        }
        Ok(())
    }

    /// Waits (within [`SEE`]) until the source's status satisfies `done`.
    async fn status_until(
        &mut self,
        what: &str,
        done: impl Fn(&DatastoreStatus) -> bool,
    ) -> Result<()> {
        let reached = matches!(
            tokio::time::timeout(SEE, self.status.wait_for(|st| done(st))).await,
            Ok(Ok(_))
        );
        match reached {
            true => Ok(()),
            false => Err(Error::Timeout {
                what: what.into(),
                secs: SEE.as_secs(),
                last: format!("{:?}", *self.status.borrow()),
            }),
        }
    }

    fn nodes(&self) -> Vec<String> {
        self.follower
            .store()
            .nodes()
            .map(|n| n.metadata.name.clone())
            .collect()
    }

    fn status(&self) -> DatastoreStatus {
        self.status.borrow().clone()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Invalid(format!("tokio runtime: {e}")))
}

fn check(cond: bool, what: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(Error::Check(what()))
    }
}

/// Runs `body` on a tokio runtime inside `ns`.
fn in_netns<T: Send>(
    ns: &Arc<Netns>,
    body: impl FnOnce(&tokio::runtime::Runtime) -> Result<T> + Send,
) -> Result<T> {
    ns.enter(|| -> Result<T> {
        let rt = runtime()?;
        body(&rt)
    })?
}

#[test]
fn etcd_initial_sync_then_changes_in_order() {
    run_test("etcd_initial_sync", &ETCD_BINARIES, |t: &Test| {
        let ns = Netns::new(t, "etcd")?;
        let c = EtcdCluster::start(t, &ns, 1, None)?;
        put_node(&c, "n1", "10.0.0.1")?;
        put_node(&c, "n2", "10.0.0.2")?;
        c.put(
            "/calico/ipam/v2/host/n1/ipv4/block/10.244.1.0-26",
            r#"{"state":"confirmed","deleted":false}"#,
        )?;
        // Not read: another node's block, pod churn, Felix's keys.
        c.put(
            "/calico/ipam/v2/host/n2/ipv4/block/10.244.2.0-26",
            r#"{"state":"confirmed","deleted":false}"#,
        )?;
        c.put(
            "/calico/resources/v3/projectcalico.org/workloadendpoints/default/pod-1",
            "{}",
        )?;
        c.put("/calico/felix/v2/no-region/host/n1/config", "x")?;
        let cfg = config(&c, c.endpoints(), None);
        in_netns(&ns, |rt| {
            rt.block_on(async {
                let mut s = Consumer::start(rt, cfg);
                s.until("the initial sync", |s| s.follower.synced()).await?;
                check(s.nodes() == ["n1", "n2"], || format!("{:?}", s.nodes()))?;
                let blocks: Vec<_> = s.follower.store().block_affinities().collect();
                check(
                    blocks.len() == 1 && blocks[0].spec.node == "n1",
                    || format!("only this node's blocks: {blocks:?}"),
                )?;
                check(s.states == [SyncState::InSync], || format!("{:?}", s.states))?;
                let derived = s.follower.derived().cloned();
                let sessions: Vec<String> = match &derived {
                    Some(Ok(n)) => n.peerings.iter().map(|p| p.name.clone()).collect(),
                    other => return Err(Error::Check(format!("{other:?}"))),
                };
                check(sessions == ["Mesh_10_0_0_2"], || format!("{sessions:?}"))?;
                s.seen.clear();

                // Changes, in order.
                put_node(&c, "n3", "10.0.0.3")?;
                put_node(&c, "n2", "10.0.0.12")?;
                c.delete(&format!("{NODES}n3"))?;
                c.put(
                    &format!("{PEERS}tor"),
                    r#"{"kind":"BGPPeer","apiVersion":"projectcalico.org/v3","metadata":{"name":"tor"},"spec":{"peerIP":"10.0.0.254","asNumber":65000}}"#,
                )?;
                c.put(
                    "/calico/resources/v3/projectcalico.org/workloadendpoints/default/pod-2",
                    "{}",
                )?;
                let last = c.delete(&format!("{PEERS}tor"))?;
                s.until("four changes", |s| s.seen.len() >= 5).await?;
                // In order for each kind (one watch per prefix, as calico-node's syncer
                // watches each kind on its own): nothing lost, repeated or reordered.
                let of = |kind: &str| -> Vec<String> {
                    s.seen.iter().filter(|x| x.contains(kind)).cloned().collect()
                };
                check(
                    of(" Node ") == ["put Node n3", "put Node n2", "delete Node n3"]
                        && of(" BGPPeer ") == ["put BGPPeer tor", "delete BGPPeer tor"]
                        && s.seen.len() == 5,
                    || format!("{:?}", s.seen),
                )?;
                let st = s.status();
                check(
                    st.revision == last && st.connected && st.listings == 1,
                    || format!("{st:?} (last write at {last})"),
                )?;
                // Node changes patch the mesh; the BGPPeer (for every node) derives again.
                let stats = s.follower.stats().clone();
                check(stats.patched >= 1 && stats.derived >= 2, || format!("{stats:?}"))?;
                let sessions: Vec<String> = match s.follower.derived() {
                    Some(Ok(n)) => n.peerings.iter().map(|p| p.name.clone()).collect(),
                    other => return Err(Error::Check(format!("{other:?}"))),
                };
                check(sessions == ["Mesh_10_0_0_12"], || format!("{sessions:?}"))?;
                Ok(())
            })
        })
    });
}

#[test]
fn etcd_member_loss_and_full_restart_lose_no_change() {
    run_test("etcd_restart", &ETCD_BINARIES, |t: &Test| {
        let ns = Netns::new(t, "etcd3")?;
        let mut c = EtcdCluster::start(t, &ns, 3, None)?;
        put_node(&c, "n1", "10.0.0.1")?;
        let cfg = config(&c, c.endpoints(), None);
        in_netns(&ns, |rt| {
            rt.block_on(async {
                let mut s = Consumer::start(rt, cfg);
                s.until("the initial sync", |s| s.follower.synced()).await?;

                // One member of three crashes: the cluster keeps a quorum, the source
                // keeps (or moves) its watch.
                c.kill_member(0)?;
                // Writes wait for the survivors to agree on a leader (the killed member
                // may have been it); the source is not waited for.
                c.wait_healthy()?;
                for i in 2..=4 {
                    put_node(&c, &format!("n{i}"), &format!("10.0.0.{i}"))?;
                }
                s.until("changes with a member down", |s| s.nodes().len() == 4)
                    .await?;

                // Every member stops; changes made right after they are back (the
                // source is still backing off) must come through the resumed watch.
                c.stop_member(1)?;
                c.stop_member(2)?;
                s.status_until("the source to notice", |st| !st.connected)
                    .await?;
                for i in 0..3 {
                    c.start_member(t, i)?;
                }
                c.wait_healthy()?;
                put_node(&c, "n5", "10.0.0.5")?;
                c.delete(&format!("{NODES}n2"))?;
                let last = put_node(&c, "n3", "10.0.0.33")?;
                s.until("the changes after the restart", |s| {
                    s.status().revision >= last && s.seen.iter().any(|x| x == "put Node n5")
                })
                .await?;
                let tail: Vec<&str> = s
                    .seen
                    .iter()
                    .rev()
                    .take(3)
                    .rev()
                    .map(String::as_str)
                    .collect();
                check(
                    tail == ["put Node n5", "delete Node n2", "put Node n3"],
                    || format!("{:?}", s.seen),
                )?;
                check(s.nodes() == ["n1", "n3", "n4", "n5"], || {
                    format!("{:?}", s.nodes())
                })?;
                let st = s.status();
                check(st.listings == 1, || {
                    format!("resumed, not relisted: {st:?}")
                })?;
                check(st.failures >= 1 && st.last_error.is_some(), || {
                    format!("the outage is on record: {st:?}")
                })?;
                check(s.states == [SyncState::InSync], || {
                    format!("in sync throughout: {:?}", s.states)
                })?;
                Ok(())
            })
        })
    });
}

#[test]
fn etcd_compacted_revision_becomes_a_fresh_listing_applied_as_a_diff() {
    run_test("etcd_compaction", &ETCD_BINARIES, |t: &Test| {
        let ns = Netns::new(t, "etcdc")?;
        let mut c = EtcdCluster::start(t, &ns, 3, None)?;
        for (n, ip) in [("n1", "10.0.0.1"), ("n2", "10.0.0.2"), ("n3", "10.0.0.3")] {
            put_node(&c, n, ip)?;
        }
        // The source talks to member 0 only, so it can be cut off while the others
        // change and compact the history.
        let first = c.endpoints().into_iter().take(1).collect();
        let cfg = config(&c, first, None);
        in_netns(&ns, |rt| {
            rt.block_on(async {
                let mut s = Consumer::start(rt, cfg);
                s.until("the initial sync", |s| s.follower.synced()).await?;
                s.batches.clear();
                c.stop_member(0)?;
                c.delete(&format!("{NODES}n2"))?;
                put_node(&c, "n3", "10.0.0.33")?;
                put_node(&c, "n4", "10.0.0.4")?;
                let rev = c.revision()?;
                c.compact(rev)?;
                c.start_member(t, 0)?;
                s.until("the resync", |s| {
                    s.status().listings == 2 && s.follower.state() == SyncState::InSync
                })
                .await?;
                check(
                    s.states == [SyncState::InSync, SyncState::Resyncing, SyncState::InSync],
                    || format!("{:?}", s.states),
                )?;
                let diff = s.batches.last().cloned().unwrap_or_default();
                check(
                    diff == ["delete Node n2", "put Node n3", "put Node n4"],
                    || format!("only the difference: {:?}", s.batches),
                )?;
                check(s.nodes() == ["n1", "n3", "n4"], || {
                    format!("{:?}", s.nodes())
                })?;
                let st = s.status();
                check(st.revision >= rev, || format!("{st:?}"))?;
                Ok(())
            })
        })
    });
}

#[test]
fn etcd_tls_with_client_certificates() {
    run_test("etcd_tls", &ETCD_BINARIES, |t: &Test| {
        let ns = Netns::new(t, "etcdtls")?;
        let tls = EtcdTls::generate(&t.subdir("tls")?)?;
        let c = EtcdCluster::start(t, &ns, 1, Some(tls))?;
        put_node(&c, "n1", "10.0.0.1")?;
        let stranger = EtcdTls::generate(&t.subdir("other-ca")?)?;
        let good = config(&c, c.endpoints(), None);
        let Some(server_ca) = c.tls().map(|t| t.ca_cert.clone()) else {
            return Err(Error::Check("no TLS".into()));
        };
        let bad = config(
            &c,
            c.endpoints(),
            Some(TlsFiles {
                ca_cert_file: server_ca,
                cert_file: stranger.client_cert.clone(),
                key_file: stranger.client_key.clone(),
            }),
        );
        in_netns(&ns, |rt| {
            rt.block_on(async {
                let mut s = Consumer::start(rt, good);
                s.until("the sync over TLS", |s| s.follower.synced())
                    .await?;
                put_node(&c, "n2", "10.0.0.2")?;
                s.until("a change over TLS", |s| s.nodes().len() == 2)
                    .await?;
                check(s.status().datastore.contains("TLS"), || {
                    format!("{:?}", s.status())
                })?;

                // A client certificate from another CA is refused: no sync, the error
                // on record, retries going on.
                let mut refused = Consumer::start(rt, bad);
                let r = tokio::time::timeout(Duration::from_secs(4), refused.events.recv()).await;
                check(r.is_err(), || format!("an event came through: {r:?}"))?;
                let st = refused.status();
                check(
                    st.state == SyncState::WaitingForDatastore && st.failures >= 2,
                    || format!("{st:?}"),
                )?;
                check(st.last_error.is_some(), || format!("{st:?}"))?;
                check(
                    s.follower.store().iter().all(|r| r.kind() == Kind::Node),
                    || "only nodes".into(),
                )?;
                Ok(())
            })
        })
    });
}
