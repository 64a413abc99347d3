//! Calico mode's configuration source (`bgpd calico run`): the etcd v3 datastore followed
//! as calico-node's confd follows it, in place of the configuration file and its watcher.
//!
//! The etcd client task ([`EtcdSource`]) lists and watches Calico's resources and sends
//! their changes; a [`Follower`] keeps them and derives this node's configuration,
//! nothing before the first complete listing. [`Feed::first_config`] waits for that first
//! derivation (the daemon starts its speaker with it, so that with `-R` the restart
//! recovery waits for the real peers); [`Feed::follow`] then applies every later
//! derivation with [`Speaker::apply_config`], whose diff touches only the sessions that
//! changed. A derivation that fails (this node's `Node` deleted, a value confd could not
//! render either) or a configuration the speaker refuses keeps the running one, logged
//! and shown by `bgpctl show datastore`. When etcd is unreachable the source retries with
//! backoff and the speaker runs on the last derived configuration.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bgp_calico::derive::config::RenderOptions;
use bgp_calico::derive::NodeEnv;
use bgp_calico::follow::{Change, Follower};
use bgp_calico::render::node_config;
use bgp_calico::source::etcd::{EtcdConfig, EtcdSource};
use bgp_calico::source::{DatastoreStatus, SyncEvent, SyncState};
use bgp_control::{AgedMessage, ComponentStatus, DatastoreReport};
use bgp_speaker::config::Config;
use bgp_speaker::Speaker;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tracing::{info, warn};

/// Events buffered between the etcd task and the follower.
const EVENT_QUEUE: usize = 256;

/// What the follower derived, as the control socket shows it.
#[derive(Debug)]
struct Derived {
    node: String,
    synced: bool,
    nodes: usize,
    peers: Vec<String>,
    applied: u64,
    /// The configuration in force (applied last), for `bgpctl reload`.
    config: Option<Config>,
    last_error: Option<(String, Instant)>,
    /// Whether the datastore was connected and in sync at the last look, and since when.
    up: bool,
    since: Instant,
}

/// A read-only view of the datastore source for the control socket. Cheap to clone.
#[derive(Clone, Debug)]
pub struct DatastoreView {
    status: watch::Receiver<DatastoreStatus>,
    derived: Arc<Mutex<Derived>>,
}

fn lock(m: &Mutex<Derived>) -> MutexGuard<'_, Derived> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl DatastoreView {
    /// `bgpctl show datastore`.
    pub fn report(&self) -> DatastoreReport {
        let s = self.status.borrow().clone();
        let d = lock(&self.derived);
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |t| t.as_secs());
        DatastoreReport {
            datastore: s.datastore,
            node: d.node.clone(),
            state: s.state.name().to_owned(),
            connected: s.connected,
            revision: s.revision,
            resources: s.resources,
            listings: s.listings,
            batches: s.batches,
            failures: s.failures,
            last_error: s.last_error.map(|p| AgedMessage {
                message: p.message,
                age_secs: now.saturating_sub(p.at_unix_secs),
            }),
            bad_values: s
                .bad_values
                .into_iter()
                .map(|b| format!("{}: {}", b.key, b.message))
                .collect(),
            synced: d.synced,
            nodes: d.nodes,
            peers: d.peers.clone(),
            applied: d.applied,
            last_derive_error: d.last_error.as_ref().map(|(m, at)| AgedMessage {
                message: m.clone(),
                age_secs: at.elapsed().as_secs(),
            }),
        }
    }

    /// The `datastore` line of `bgpctl show status`: up while connected and in sync.
    pub fn component(&self) -> ComponentStatus {
        let s = self.status.borrow();
        let d = lock(&self.derived);
        let up = s.connected && s.state == SyncState::InSync;
        let reason = (!up).then(|| {
            let why = s.last_error.as_ref().map_or("", |e| e.message.as_str());
            format!(
                "{} ({}, revision {}; running on the last derived configuration){}{}",
                s.state.name(),
                if s.connected {
                    "connected"
                } else {
                    "not connected"
                },
                s.revision,
                if why.is_empty() { "" } else { ": " },
                why
            )
        });
        ComponentStatus {
            name: "datastore".into(),
            up,
            since_secs: if d.up == up {
                d.since.elapsed().as_secs()
            } else {
                0
            },
            reason,
        }
    }

    /// The configuration in force, derived last.
    pub fn config(&self) -> Option<Config> {
        lock(&self.derived).config.clone()
    }
}

/// The running source and follower.
pub struct Feed {
    follower: Follower,
    events: mpsc::Receiver<SyncEvent>,
    options: RenderOptions,
    view: DatastoreView,
}

impl std::fmt::Debug for Feed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Feed").finish_non_exhaustive()
    }
}

impl Feed {
    /// Starts the etcd task (within a tokio runtime).
    pub fn start(etcd: EtcdConfig, env: NodeEnv, options: RenderOptions) -> Feed {
        let (tx, events) = mpsc::channel(EVENT_QUEUE);
        let (status_tx, status) = watch::channel(DatastoreStatus::new(etcd.describe()));
        info!(datastore = %etcd.describe(), node = %env.node_name, "Calico mode: following the datastore");
        tokio::spawn(EtcdSource::new(etcd).run(tx, status_tx));
        Feed::new(events, status, env, options)
    }

    /// Follows the events and status of a source already running.
    fn new(
        events: mpsc::Receiver<SyncEvent>,
        status: watch::Receiver<DatastoreStatus>,
        env: NodeEnv,
        options: RenderOptions,
    ) -> Feed {
        let derived = Derived {
            node: env.node_name.clone(),
            synced: false,
            nodes: 0,
            peers: Vec::new(),
            applied: 0,
            config: None,
            last_error: None,
            up: false,
            since: Instant::now(),
        };
        Feed {
            follower: Follower::new(env),
            events,
            options,
            view: DatastoreView {
                status,
                derived: Arc::new(Mutex::new(derived)),
            },
        }
    }

    /// The view the control socket reads.
    pub fn view(&self) -> DatastoreView {
        self.view.clone()
    }

    /// Takes events until the first configuration derives (after the first complete
    /// listing). `None` when the source stopped.
    pub async fn first_config(&mut self) -> Option<Config> {
        info!("waiting for the datastore's first complete listing; no session is configured before it");
        loop {
            let changed = self.take_events().await?;
            if changed {
                if let Some(cfg) = self.derive() {
                    return Some(cfg);
                }
            }
        }
    }

    /// Records that `cfg` is in force.
    pub fn applied(&self, cfg: &Config) {
        let mut d = lock(&self.view.derived);
        d.applied += 1;
        d.config = Some(cfg.clone());
    }

    /// Applies every later derivation to `speaker` until the source stops.
    pub fn follow(mut self, speaker: Speaker) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut status = self.view.status.clone();
            // Closed only if the source task ended; its last status stays readable.
            let mut status_open = true;
            loop {
                tokio::select! {
                    changed = self.take_events() => match changed {
                        None => {
                            warn!("the datastore source stopped; running on the last derived configuration");
                            return;
                        }
                        Some(false) => {}
                        Some(true) => {
                            if let Some(cfg) = self.derive() {
                                self.apply(&speaker, cfg).await;
                            }
                        }
                    },
                    r = status.changed(), if status_open => {
                        if r.is_err() {
                            status_open = false;
                            continue;
                        }
                        let up = {
                            let s = status.borrow_and_update();
                            s.connected && s.state == SyncState::InSync
                        };
                        let mut d = lock(&self.view.derived);
                        if d.up != up {
                            d.up = up;
                            d.since = Instant::now();
                        }
                    }
                }
            }
        })
    }

    async fn apply(&mut self, speaker: &Speaker, cfg: Config) {
        match speaker.apply_config(cfg.clone()).await {
            Ok(diff) => {
                info!("datastore change applied: {diff}");
                self.applied(&cfg);
            }
            Err(e) => {
                warn!(error = %e, "derived configuration refused; running configuration unchanged");
                lock(&self.view.derived).last_error = Some((e.to_string(), Instant::now()));
            }
        }
    }

    /// Waits for an event, then takes every one already queued. `Some(true)` when the
    /// derived configuration changed; `None` when the source stopped.
    async fn take_events(&mut self) -> Option<bool> {
        let first = self.events.recv().await?;
        let mut changed = self.handle(first);
        while let Ok(ev) = self.events.try_recv() {
            changed |= self.handle(ev);
        }
        Some(changed)
    }

    fn handle(&mut self, ev: SyncEvent) -> bool {
        let before = self.follower.state();
        let change = self.follower.handle(ev);
        let after = self.follower.state();
        if before != after {
            info!(state = after.name(), "datastore");
        }
        change != Change::Unchanged
    }

    /// The configuration derived now; `None` (logged) when it does not derive or render.
    fn derive(&mut self) -> Option<Config> {
        let nodes = self.follower.store().nodes().count();
        let mut d = lock(&self.view.derived);
        d.synced = self.follower.synced();
        d.nodes = nodes;
        let result = match self.follower.derived()? {
            Ok(node) => {
                d.peers = node.peerings.iter().map(|p| p.name.clone()).collect();
                node_config(node, &self.options).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                warn!(error = %e, "no configuration derives from the datastore; running configuration unchanged");
                d.last_error = Some((e, Instant::now()));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_calico::resource::etcd::{decode_kv, parse_key};
    use bgp_calico::store::Update;

    const NODES: &str = "/calico/resources/v3/projectcalico.org/nodes/";

    fn node(name: &str, ip: &str) -> Update {
        let key = format!("{NODES}{name}");
        let value = format!(
            r#"{{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{{"name":"{name}"}},"spec":{{"bgp":{{"ipv4Address":"{ip}/24"}}}}}}"#
        );
        match decode_kv(&key, value.as_bytes()) {
            Ok(Some(r)) => Update::Put(Box::new(r)),
            other => panic!("{other:?}"),
        }
    }

    fn delete_node(name: &str) -> Update {
        Update::Delete(parse_key(&format!("{NODES}{name}")).expect("a node key"))
    }

    fn batch(updates: Vec<Update>) -> SyncEvent {
        SyncEvent::Updates {
            updates,
            revision: 1,
        }
    }

    fn options() -> RenderOptions {
        RenderOptions {
            control_socket: None,
            bird_socket: None,
            bird6_socket: None,
            hold_time: 240,
        }
    }

    #[tokio::test]
    async fn nothing_before_the_first_listing_then_every_derivation() {
        let (tx, events) = mpsc::channel(8);
        let (status_tx, status) = watch::channel(DatastoreStatus::new("etcdv3 test"));
        let mut feed = Feed::new(events, status, NodeEnv::new("n1"), options());
        let view = feed.view();
        // The listing without this node's Node, then in sync: nothing derives (logged,
        // recorded), the feed keeps waiting.
        tx.send(batch(vec![node("n2", "10.0.0.2")])).await.unwrap();
        tx.send(SyncEvent::State(SyncState::InSync)).await.unwrap();
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(200), feed.first_config()).await;
        assert!(waited.is_err(), "no configuration without this node's Node");
        let r = view.report();
        assert!(r.synced && r.nodes == 1 && r.peers.is_empty());
        assert!(r
            .last_derive_error
            .as_ref()
            .is_some_and(|e| e.message.contains("n1")));
        // The Node arrives: the first configuration, one mesh session.
        tx.send(batch(vec![node("n1", "10.0.0.1")])).await.unwrap();
        let cfg = feed.first_config().await.expect("a configuration");
        assert_eq!(cfg.peers.keys().collect::<Vec<_>>(), ["Mesh_10_0_0_2"]);
        feed.applied(&cfg);
        assert_eq!(view.config().map(|c| c.peers.len()), Some(1));
        let r = view.report();
        assert_eq!((r.nodes, r.applied), (2, 1));
        assert_eq!(r.peers, ["Mesh_10_0_0_2"]);
        assert_eq!(r.state, "waiting-for-datastore", "the source's own state");
        // The component is down until the source says it is connected and in sync.
        assert!(!view.component().up);
        status_tx.send_modify(|s| {
            s.connected = true;
            s.state = SyncState::InSync;
        });
        assert!(view.component().up);
        assert_eq!(view.report().state, "in-sync");
        status_tx.send_modify(|s| s.failed("connection refused"));
        let c = view.component();
        assert!(!c.up && c.reason.is_some_and(|r| r.contains("connection refused")));
        // Our own Node deleted: nothing derives; the configuration in force stays.
        tx.send(batch(vec![delete_node("n1")])).await.unwrap();
        assert_eq!(feed.take_events().await, Some(true));
        assert!(feed.derive().is_none());
        assert_eq!(view.config().map(|c| c.peers.len()), Some(1));
        // The source gone: the feed says so.
        drop(tx);
        assert_eq!(feed.take_events().await, None);
    }
}
