//! Calico mode's configuration source (`bgpd calico run`): the etcd v3 datastore followed
//! as calico-node's confd follows it, in place of the configuration file and its watcher.
//!
//! The etcd client task ([`EtcdSource`]) lists and watches Calico's resources and sends
//! their changes; a [`Follower`] keeps them and derives this node's configuration,
//! nothing before the first complete listing. [`Feed::first_config`] waits for that first
//! derivation (the daemon starts its speaker with it, so that with `-R` the restart
//! recovery waits for the real peers); [`Feed::follow`] then applies every later change.
//! A change the follower knows to touch only some sessions ([`Change::Sessions`], a node
//! joining or leaving the mesh) resolves those sessions alone and hands them to
//! [`Speaker::apply_peer_changes`], so its cost follows the change, not the cluster's
//! size; any other change derives the whole configuration and applies it with
//! [`Speaker::apply_config`], whose diff touches only the sessions that changed. Either
//! way the configuration recorded as in force (for `bgpctl reload`) is the one a whole
//! derivation gives. A derivation that fails (this node's `Node` deleted, a value confd
//! could not render either) or a change the speaker refuses keeps the running
//! configuration, logged and shown by `bgpctl show datastore`, and the next change goes
//! the whole way. When etcd is unreachable the source retries with backoff and the
//! speaker runs on the last derived configuration.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

use bgp_calico::derive::config::RenderOptions;
use bgp_calico::derive::peerings::Peering;
use bgp_calico::derive::{Family, NodeEnv};
use bgp_calico::follow::{Change, Follower};
use bgp_calico::render::{node_config, peer_configs};
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
    /// The derived sessions, in the derivation's order (IPv4 first, by name).
    peers: BTreeSet<(Family, String)>,
    applied: u64,
    /// The configuration in force (applied last), for `bgpctl reload`.
    config: Option<Config>,
    /// The configuration in force lags the follower's derivation (a change failed to
    /// render or was refused): the next change must go the whole way.
    behind: bool,
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
            peers: d.peers.iter().map(|(_, n)| n.clone()).collect(),
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
            peers: BTreeSet::new(),
            applied: 0,
            config: None,
            behind: false,
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
            if self.take_events().await? != Batch::Unchanged {
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
        d.behind = false;
    }

    /// Applies every later derivation to `speaker` until the source stops.
    pub fn follow(mut self, speaker: Speaker) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut status = self.view.status.clone();
            // Closed only if the source task ended; its last status stays readable.
            let mut status_open = true;
            loop {
                tokio::select! {
                    batch = self.take_events() => match batch {
                        None => {
                            warn!("the datastore source stopped; running on the last derived configuration");
                            return;
                        }
                        Some(batch) => self.apply_batch(&speaker, batch).await,
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

    /// Applies what a batch of events changed: the sessions it touched alone when the
    /// configuration in force is the follower's last derivation, else the whole
    /// configuration derived again.
    async fn apply_batch(&mut self, speaker: &Speaker, batch: Batch) {
        match batch {
            Batch::Unchanged => {}
            Batch::Sessions(touched) if self.in_step() => {
                self.apply_sessions(speaker, touched).await
            }
            Batch::Sessions(_) | Batch::Whole => {
                if let Some(cfg) = self.derive() {
                    self.apply(speaker, cfg).await;
                }
            }
        }
    }

    /// Whether the configuration in force is the one the follower derived last.
    fn in_step(&self) -> bool {
        let d = lock(&self.view.derived);
        d.config.is_some() && !d.behind
    }

    /// Resolves the touched sessions and applies them as peer changes; the configuration
    /// in force is patched in place, so it stays what a whole derivation gives.
    async fn apply_sessions(
        &mut self,
        speaker: &Speaker,
        touched: BTreeMap<String, Option<Peering>>,
    ) {
        let Some(Ok(node)) = self.follower.derived() else {
            // Sessions are patched into a derivation: there is one.
            return;
        };
        let nodes = self.follower.store().node_count();
        let peerings: Vec<Peering> = touched.values().flatten().cloned().collect();
        let resolved = peer_configs(node, &peerings, &self.options);
        let (removed, upserted) = {
            let mut d = lock(&self.view.derived);
            d.synced = self.follower.synced();
            d.nodes = nodes;
            for (name, now) in &touched {
                d.peers.remove(&(Family::V4, name.clone()));
                d.peers.remove(&(Family::V6, name.clone()));
                if let Some(p) = now {
                    d.peers.insert((p.family, name.clone()));
                }
            }
            let mut configs = match resolved {
                Ok(c) => c,
                Err(e) => {
                    warn!(error = %e, "no configuration derives from the datastore; running configuration unchanged");
                    d.last_error = Some((e.to_string(), Instant::now()));
                    d.behind = true;
                    return;
                }
            };
            let running = d.config.as_ref().map(|c| &c.peers);
            let mut removed = Vec::new();
            let mut upserted = Vec::new();
            for name in touched.keys() {
                match configs.remove(name) {
                    Some(cfg) => upserted.push(cfg),
                    None if running.is_some_and(|r| r.contains_key(name)) => {
                        removed.push(name.clone())
                    }
                    None => {}
                }
            }
            (removed, upserted)
        };
        match speaker.apply_peer_changes(&removed, upserted.clone()).await {
            Ok(diff) => {
                info!("datastore change applied: {diff}");
                let mut d = lock(&self.view.derived);
                d.applied += 1;
                if let Some(cfg) = d.config.as_mut() {
                    for name in &removed {
                        cfg.peers.remove(name);
                    }
                    for p in upserted {
                        cfg.peers.insert(p.name.clone(), p);
                    }
                }
            }
            Err(e) => {
                warn!(error = %e, "derived sessions refused; running configuration unchanged");
                let mut d = lock(&self.view.derived);
                d.last_error = Some((e.to_string(), Instant::now()));
                d.behind = true;
            }
        }
    }

    async fn apply(&mut self, speaker: &Speaker, cfg: Config) {
        match speaker.apply_config(cfg.clone()).await {
            Ok(diff) => {
                info!("datastore change applied: {diff}");
                self.applied(&cfg);
            }
            Err(e) => {
                warn!(error = %e, "derived configuration refused; running configuration unchanged");
                let mut d = lock(&self.view.derived);
                d.last_error = Some((e.to_string(), Instant::now()));
                d.behind = true;
            }
        }
    }

    /// Waits for an event, then takes every one already queued: what they changed
    /// together. `None` when the source stopped.
    async fn take_events(&mut self) -> Option<Batch> {
        let first = self.events.recv().await?;
        let mut batch = Batch::Unchanged;
        batch.add(self.handle(first));
        while let Ok(ev) = self.events.try_recv() {
            batch.add(self.handle(ev));
        }
        Some(batch)
    }

    fn handle(&mut self, ev: SyncEvent) -> Change {
        let before = self.follower.state();
        let change = self.follower.handle(ev);
        let after = self.follower.state();
        if before != after {
            info!(state = after.name(), "datastore");
        }
        change
    }

    /// The configuration derived now; `None` (logged) when it does not derive or render.
    fn derive(&mut self) -> Option<Config> {
        let nodes = self.follower.store().node_count();
        let mut d = lock(&self.view.derived);
        d.synced = self.follower.synced();
        d.nodes = nodes;
        let result = match self.follower.derived()? {
            Ok(node) => {
                d.peers = node
                    .peerings
                    .iter()
                    .map(|p| (p.family, p.name.clone()))
                    .collect();
                node_config(node, &self.options).map_err(|e| e.to_string())
            }
            Err(e) => Err(e.to_string()),
        };
        match result {
            Ok(cfg) => Some(cfg),
            Err(e) => {
                warn!(error = %e, "no configuration derives from the datastore; running configuration unchanged");
                d.last_error = Some((e, Instant::now()));
                d.behind = true;
                None
            }
        }
    }
}

/// What the follower's changes over a batch of events amount to.
#[derive(Debug, PartialEq)]
enum Batch {
    Unchanged,
    /// Only these sessions, by name: what each is now (`None`: gone).
    Sessions(BTreeMap<String, Option<Peering>>),
    /// Derived again.
    Whole,
}

impl Batch {
    /// Adds one change; a later change of a session replaces an earlier one.
    fn add(&mut self, change: Change) {
        match (&mut *self, change) {
            (_, Change::Unchanged) | (Batch::Whole, _) => {}
            (_, Change::Whole) => *self = Batch::Whole,
            (Batch::Unchanged, Change::Sessions { removed, upserted }) => {
                *self = Batch::Sessions(BTreeMap::new());
                self.add(Change::Sessions { removed, upserted });
            }
            (Batch::Sessions(touched), Change::Sessions { removed, upserted }) => {
                for name in removed {
                    touched.insert(name, None);
                }
                for p in upserted {
                    touched.insert(p.name.clone(), Some(p));
                }
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
        assert_eq!(feed.take_events().await, Some(Batch::Whole));
        assert!(feed.derive().is_none());
        assert_eq!(view.config().map(|c| c.peers.len()), Some(1));
        // The source gone: the feed says so.
        drop(tx);
        assert_eq!(feed.take_events().await, None);
    }

    fn default_bgp_configuration(restart: &str) -> Update {
        let key = "/calico/resources/v3/projectcalico.org/bgpconfigurations/default";
        // bgpd listens on its node's address only, on a port of its own.
        let value = format!(
            r#"{{"kind":"BGPConfiguration","apiVersion":"projectcalico.org/v3","metadata":{{"name":"default"}},"spec":{{"bindMode":"NodeIP","listenPort":11279,"nodeMeshMaxRestartTime":"{restart}"}}}}"#
        );
        match decode_kv(key, value.as_bytes()) {
            Ok(Some(r)) => Update::Put(Box::new(r)),
            other => panic!("{other:?}"),
        }
    }

    /// What a whole derivation of the follower's store gives now.
    fn whole(feed: &Feed) -> Config {
        let node = match feed.follower.derived() {
            Some(Ok(n)) => n,
            other => panic!("no derivation: {other:?}"),
        };
        node_config(node, &feed.options).expect("renders")
    }

    /// Mesh sessions joining and leaving go the peer by peer way; the configuration in
    /// force stays what a whole derivation gives, and so does the speaker's. A change the
    /// speaker refuses sends the next one the whole way, which brings both back in line.
    #[tokio::test]
    async fn mesh_changes_apply_peer_by_peer_and_stay_whole() {
        let (tx, events) = mpsc::channel(8);
        let (_status_tx, status) = watch::channel(DatastoreStatus::new("etcdv3 test"));
        let mut feed = Feed::new(events, status, NodeEnv::new("n1"), options());
        let view = feed.view();
        let ip = |i: u8| format!("127.0.23.{i}");
        // This node's address sorts first: every mesh session is passive, nothing
        // connects out.
        tx.send(batch(vec![
            default_bgp_configuration("120s"),
            node("n1", &ip(1)),
            node("n2", &ip(2)),
        ]))
        .await
        .unwrap();
        tx.send(SyncEvent::State(SyncState::InSync)).await.unwrap();
        let cfg = feed.first_config().await.expect("a configuration");
        // The derived [kernel] is not started: the FIB changes go to this channel.
        let (fib, _fib_rx) = mpsc::channel(64);
        let speaker_options = bgp_speaker::SpeakerOptions {
            fib: Some(fib),
            ..Default::default()
        };
        let speaker = Speaker::start(cfg.clone(), speaker_options)
            .await
            .expect("speaker");
        feed.applied(&cfg);
        let in_step = |feed: &Feed, speaker_config: Config, what: &str| {
            let want = whole(feed);
            assert_eq!(view.config().as_ref(), Some(&want), "{what}");
            assert_eq!(speaker_config, want, "{what}");
            let names: Vec<String> = feed
                .follower
                .derived()
                .and_then(|d| d.as_ref().ok())
                .map(|n| n.peerings.iter().map(|p| p.name.clone()).collect())
                .unwrap_or_default();
            assert_eq!(view.report().peers, names, "{what}");
        };

        // Two nodes join and one leaves, over two events taken together.
        tx.send(batch(vec![node("n3", &ip(3)), node("n4", &ip(4))]))
            .await
            .unwrap();
        tx.send(batch(vec![delete_node("n2")])).await.unwrap();
        let b = feed.take_events().await.expect("events");
        let Batch::Sessions(touched) = &b else {
            panic!("{b:?}")
        };
        assert_eq!(
            touched.keys().collect::<Vec<_>>(),
            ["Mesh_127_0_23_2", "Mesh_127_0_23_3", "Mesh_127_0_23_4"]
        );
        feed.apply_batch(&speaker, b).await;
        in_step(&feed, speaker.config().await, "after the mesh changes");
        let r = view.report();
        assert_eq!((r.applied, r.nodes), (2, 3));
        assert!(r.last_derive_error.is_none());

        // A change of every mesh session goes the whole way.
        tx.send(batch(vec![default_bgp_configuration("90s")]))
            .await
            .unwrap();
        let b = feed.take_events().await.expect("events");
        assert_eq!(b, Batch::Whole);
        feed.apply_batch(&speaker, b).await;
        in_step(&feed, speaker.config().await, "after a whole change");

        // A peer added through the API where a node comes: the speaker refuses the
        // session towards it, and keeps running what it had.
        let mut api = bgp_speaker::config::PeerConfig::new("api", ip(5).parse().unwrap(), 64512);
        api.port = 11279;
        api.passive = true;
        speaker.add_peer(api).await.expect("API peer");
        tx.send(batch(vec![node("n5", &ip(5))])).await.unwrap();
        let b = feed.take_events().await.expect("events");
        assert!(matches!(b, Batch::Sessions(_)), "{b:?}");
        let before = view.config();
        feed.apply_batch(&speaker, b).await;
        assert_eq!(view.config(), before, "nothing recorded when refused");
        assert!(view
            .report()
            .last_derive_error
            .is_some_and(|e| e.message.contains("api")));
        // The API peer gone, the next mesh change goes the whole way and brings in the
        // refused session too.
        speaker.remove_peer("api").await.expect("removed");
        tx.send(batch(vec![node("n6", &ip(6))])).await.unwrap();
        let b = feed.take_events().await.expect("events");
        assert!(matches!(b, Batch::Sessions(_)), "{b:?}");
        feed.apply_batch(&speaker, b).await;
        in_step(&feed, speaker.config().await, "after the refusal");
        let running = speaker.config().await;
        assert!(running.peers.contains_key("Mesh_127_0_23_5"));
        assert!(running.peers.contains_key("Mesh_127_0_23_6"));
        // In step again: the next change goes peer by peer.
        assert!(feed.in_step());
        speaker.shutdown("test over").await;
    }
}
