//! The etcd v3 client task: connects (TLS with client certificates when configured,
//! balanced over every endpoint), lists the watched prefixes at one revision, watches them
//! from the revision after, and hands everything to the sans-IO [`Syncer`], whose output it
//! sends to the consumer. Every failure (no member reachable, a member killed, a lost
//! leader, a compacted revision) ends the current session; the task waits with
//! exponential backoff and jitter, reconnects, and resumes each watch from the revision
//! after the last one it delivered, or lists afresh when that revision is gone.
//!
//! The task runs until the consumer drops the receiving end of its channel. It never
//! panics on what the network sends: a value that does not decode stands for no resource
//! and is reported in the status; an unknown event type ends the session like any other
//! protocol failure.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::time::Duration;

use bgp_bmp::client::Backoff;
use etcd_client::{
    Certificate, Client, ConnectOptions, GetOptions, Identity, TlsOptions, WatchOptions,
    WatchStream,
};
use tokio::sync::{mpsc, watch};

use super::config::EtcdConfig;
use crate::source::status::DatastoreStatus;
use crate::source::sync::{Kv, KvEvent, SyncEvent, Syncer};

/// Keys fetched per listing request (a page of a consistent listing at one revision).
const PAGE: i64 = 500;
/// gRPC keepalive: a silent connection is declared dead after interval + timeout.
const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(5);
const KEEPALIVE_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a session ended.
enum End {
    /// The consumer went away: stop.
    ConsumerGone,
    /// Something failed: back off and reconnect.
    Failed(String),
}

impl From<etcd_client::Error> for End {
    fn from(e: etcd_client::Error) -> End {
        End::Failed(e.to_string())
    }
}

impl fmt::Display for End {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            End::ConsumerGone => f.write_str("the consumer went away"),
            End::Failed(m) => f.write_str(m),
        }
    }
}

/// How a watch session ended without failing.
enum WatchEnd {
    /// A watch's revision was compacted: list afresh.
    Compacted(i64),
}

/// The etcd v3 datastore as a watched source.
#[derive(Clone, Debug)]
pub struct EtcdSource {
    config: EtcdConfig,
}

/// The task's state across sessions.
struct Task<'a> {
    config: &'a EtcdConfig,
    syncer: Syncer,
    events: &'a mpsc::Sender<SyncEvent>,
    status: &'a watch::Sender<DatastoreStatus>,
    backoff: Backoff,
}

impl EtcdSource {
    /// A source reading what `config` names.
    pub fn new(config: EtcdConfig) -> EtcdSource {
        EtcdSource { config }
    }

    /// What it reads.
    pub fn describe(&self) -> String {
        self.config.describe()
    }

    /// Runs until `events`' receiver is dropped: lists, watches, reconnects. `status` is
    /// kept current throughout.
    pub async fn run(
        self,
        events: mpsc::Sender<SyncEvent>,
        status: watch::Sender<DatastoreStatus>,
    ) {
        let mut seed = std::collections::hash_map::DefaultHasher::new();
        self.config.node_name.hash(&mut seed);
        std::process::id().hash(&mut seed);
        let mut task = Task {
            config: &self.config,
            syncer: Syncer::new(self.config.prefixes()),
            events: &events,
            status: &status,
            backoff: Backoff::new(
                self.config.retry_initial,
                self.config.retry_max,
                seed.finish(),
            ),
        };
        status.send_replace(DatastoreStatus::new(self.config.describe()));
        loop {
            let end = tokio::select! {
                end = task.session() => end,
                () = events.closed() => End::ConsumerGone,
            };
            match end {
                End::ConsumerGone => return,
                End::Failed(message) => {
                    let delay = task.backoff.next_delay();
                    tracing::warn!(
                        datastore = %self.config.describe(),
                        state = task.syncer.state().name(),
                        revision = task.syncer.revision(),
                        retry_in_ms = delay.as_millis() as u64,
                        "etcd datastore: {message}; keeping the last configuration"
                    );
                    status.send_modify(|s| s.failed(message));
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = events.closed() => return,
                    }
                }
            }
        }
    }
}

impl Task<'_> {
    /// One connection: list if needed, then watch until something fails.
    async fn session(&mut self) -> End {
        let mut client = match self.connect().await {
            Ok(c) => c,
            Err(e) => return e,
        };
        loop {
            if self.syncer.needs_listing() {
                if let Err(e) = self.list(&mut client).await {
                    return e;
                }
            }
            match self.watch(&mut client).await {
                Ok(WatchEnd::Compacted(at)) => {
                    tracing::info!(
                        compacted_at = at,
                        resume_from = self.syncer.revision() + 1,
                        "etcd datastore: the watched revision was compacted; listing afresh"
                    );
                    self.syncer.history_lost();
                }
                Err(e) => return e,
            }
        }
    }

    async fn connect(&self) -> Result<Client, End> {
        let c = self.config;
        let mut options = ConnectOptions::new()
            .with_keep_alive(KEEPALIVE_INTERVAL, KEEPALIVE_TIMEOUT)
            .with_keep_alive_while_idle(true)
            .with_connect_timeout(c.request_timeout)
            // A member cut off from the leader ends our watches instead of going quiet.
            .with_require_leader(true);
        if let Some(t) = &c.tls {
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| End::Failed(format!("{}: {e}", p.display())))
            };
            let tls = TlsOptions::new()
                .ca_certificate(Certificate::from_pem(read(&t.ca_cert_file)?))
                .identity(Identity::from_pem(read(&t.cert_file)?, read(&t.key_file)?));
            options = options.with_tls(tls);
        }
        if let Some((user, password)) = &c.user {
            options = options.with_user(user.clone(), password.clone());
        }
        match tokio::time::timeout(
            c.request_timeout,
            Client::connect(&c.endpoints, Some(options)),
        )
        .await
        {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(End::Failed(format!("connecting: {e}"))),
            Err(_) => Err(End::Failed(format!(
                "connecting: no answer within {:?}",
                c.request_timeout
            ))),
        }
    }

    async fn send(&mut self, ev: SyncEvent) -> Result<(), End> {
        if let SyncEvent::Updates { updates, .. } = &ev {
            tracing::debug!(changes = updates.len(), "etcd datastore: changes");
        }
        let bad = self.syncer.take_bad_values();
        for b in &bad {
            tracing::warn!(key = %b.key, "etcd datastore: value ignored: {}", b.message);
        }
        let (state, revision, resources, listings) = (
            self.syncer.state(),
            self.syncer.revision(),
            self.syncer.resources(),
            self.syncer.listings(),
        );
        let batch = matches!(ev, SyncEvent::Updates { .. });
        self.status.send_modify(|s| {
            s.add_bad_values(bad);
            s.state = state;
            s.revision = revision;
            s.resources = resources;
            s.listings = listings;
            s.batches += u64::from(batch);
        });
        self.events.send(ev).await.map_err(|_| End::ConsumerGone)
    }

    /// A complete listing of every prefix at one revision, handed over as a diff.
    async fn list(&mut self, client: &mut Client) -> Result<(), End> {
        if let Some(ev) = self.syncer.listing_started() {
            self.send(ev).await?;
        }
        let (revision, kvs) = loop {
            match list_at_one_revision(client, self.syncer.prefixes(), self.config).await {
                Ok(r) => break r,
                // The revision of the first page was compacted before the last one:
                // start over at the current revision.
                Err(Listing::Compacted) => continue,
                Err(Listing::Failed(e)) => return Err(End::Failed(e)),
            }
        };
        self.status.send_modify(|s| s.connected = true);
        let first = self.syncer.listings() == 0;
        for ev in self.syncer.listed(revision, kvs) {
            self.send(ev).await?;
        }
        tracing::info!(
            revision,
            resources = self.syncer.resources(),
            "etcd datastore: {}",
            if first {
                "initial sync complete"
            } else {
                "resynced"
            }
        );
        self.backoff.reset();
        Ok(())
    }

    /// Watches every prefix from its resume revision until the stream fails or a
    /// revision turns out compacted.
    async fn watch(&mut self, client: &mut Client) -> Result<WatchEnd, End> {
        let prefixes = self.syncer.prefixes().to_vec();
        let options = |i: usize| -> Result<WatchOptions, End> {
            let from = self
                .syncer
                .watch_from(i)
                .ok_or_else(|| End::Failed("watch before listing".into()))?;
            Ok(WatchOptions::new()
                .with_range(prefix_end(&prefixes[i]))
                .with_start_revision(from)
                .with_progress_notify())
        };
        let Some(first) = prefixes.first() else {
            return Err(End::Failed("no prefixes to watch".into()));
        };
        let mut stream: WatchStream = client.watch(first.as_str(), Some(options(0)?)).await?;
        for (i, p) in prefixes.iter().enumerate().skip(1) {
            stream.watch(p.as_str(), Some(options(i)?)).await?;
        }
        // The server creates watchers in the order asked and answers each creation in
        // that order: the n-th `created` response names the n-th prefix's watch id.
        let mut ids: Vec<i64> = Vec::with_capacity(prefixes.len());
        loop {
            let Some(msg) = stream.message().await? else {
                return Err(End::Failed("the watch stream ended".into()));
            };
            let id = msg.watch_id();
            if msg.compact_revision() > 0 {
                return Ok(WatchEnd::Compacted(msg.compact_revision()));
            }
            if msg.canceled() {
                return Err(End::Failed(format!(
                    "watch canceled by the server: {}",
                    msg.cancel_reason()
                )));
            }
            if msg.created() {
                ids.push(id);
                if ids.len() == prefixes.len() {
                    self.status.send_modify(|s| s.connected = true);
                    self.backoff.reset();
                    tracing::debug!(
                        revision = self.syncer.revision(),
                        "etcd datastore: watching"
                    );
                }
                continue;
            }
            let Some(index) = ids.iter().position(|w| *w == id) else {
                continue;
            };
            if msg.events().is_empty() {
                if let Some(h) = msg.header() {
                    self.syncer.progress(index, h.revision());
                }
                continue;
            }
            let mut events = Vec::with_capacity(msg.events().len());
            for ev in msg.events() {
                events.push(convert(ev)?);
            }
            if let Some(ev) = self.syncer.watched(index, events) {
                self.send(ev).await?;
            }
        }
    }
}

/// Why a listing did not complete.
enum Listing {
    Compacted,
    Failed(String),
}

/// Every key under `prefixes` at one revision (the first page's), page by page.
async fn list_at_one_revision(
    client: &mut Client,
    prefixes: &[String],
    config: &EtcdConfig,
) -> Result<(i64, Vec<Kv>), Listing> {
    let mut revision = 0;
    let mut kvs = Vec::new();
    for p in prefixes {
        let end = prefix_end(p);
        let mut start = p.as_bytes().to_vec();
        loop {
            let mut options = GetOptions::new().with_range(end.clone()).with_limit(PAGE);
            if revision != 0 {
                options = options.with_revision(revision);
            }
            let resp = match tokio::time::timeout(
                config.request_timeout,
                client.get(start.clone(), Some(options)),
            )
            .await
            {
                Ok(Ok(r)) => r,
                Ok(Err(e)) if e.to_string().contains("compacted") => {
                    return Err(Listing::Compacted)
                }
                Ok(Err(e)) => return Err(Listing::Failed(format!("listing {p}: {e}"))),
                Err(_) => {
                    return Err(Listing::Failed(format!(
                        "listing {p}: no answer within {:?}",
                        config.request_timeout
                    )))
                }
            };
            if revision == 0 {
                revision = resp.header().map_or(0, |h| h.revision());
            }
            let page = resp.kvs();
            for kv in page {
                match std::str::from_utf8(kv.key()) {
                    Ok(key) => kvs.push(Kv {
                        key: key.to_owned(),
                        value: kv.value().to_vec(),
                        mod_revision: kv.mod_revision(),
                    }),
                    Err(_) => tracing::warn!("etcd datastore: a key under {p} is not UTF-8"),
                }
            }
            match page.last() {
                Some(last) if resp.more() => {
                    start = last.key().to_vec();
                    start.push(0);
                }
                _ => break,
            }
        }
    }
    Ok((revision, kvs))
}

/// The end of a prefix's key range: the prefix with its last byte incremented.
fn prefix_end(prefix: &str) -> Vec<u8> {
    let mut end = prefix.as_bytes().to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    // Only 0xff bytes: every key from the prefix on.
    vec![0]
}

/// An etcd watch event as the syncer takes it.
fn convert(ev: &etcd_client::Event) -> Result<KvEvent, End> {
    let kv = ev
        .kv()
        .ok_or_else(|| End::Failed("a watch event without a key".into()))?;
    let key = std::str::from_utf8(kv.key())
        .map_err(|_| End::Failed("a watched key is not UTF-8".into()))?
        .to_owned();
    // etcd's mvccpb.Event.EventType: PUT = 0, DELETE = 1. Read as a number: the client's
    // own accessor panics on an unknown value.
    match ev.0.r#type {
        0 => Ok(KvEvent::Put(Kv {
            key,
            value: kv.value().to_vec(),
            mod_revision: kv.mod_revision(),
        })),
        1 => Ok(KvEvent::Delete {
            key,
            mod_revision: kv.mod_revision(),
        }),
        other => Err(End::Failed(format!("unknown watch event type {other}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_ranges() {
        assert_eq!(
            prefix_end("/calico/ipam/v2/host/n1/"),
            b"/calico/ipam/v2/host/n10"
        );
        assert_eq!(prefix_end("a\u{7f}"), b"a\x80");
        assert_eq!(prefix_end(""), vec![0]);
    }
}
