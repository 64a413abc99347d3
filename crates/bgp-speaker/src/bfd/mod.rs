//! BFD for BGP sessions (RFC 5880, 5881, 5883) as BGP's client (RFC 5882): one tokio task
//! drives the sans-IO endpoint of `bgp-bfd` for every peer with a `bfd` table. It runs on
//! a thread of its own with a single-threaded runtime ([`run_isolated`]): its timers are
//! tens of milliseconds, and on the speaker's workers a busy RIB delayed them enough for
//! 100 ms x 3 sessions to flap while a large table went through.
//!
//! - task.rs: the task. It owns the UDP sockets (the receiving ones on ports 3784 and
//!   4784, opened when a session first needs them, and one sending socket per session
//!   with its own source port, RFC 5881 4), feeds the endpoint datagrams and the clock,
//!   sleeps until its `poll_timeout`, and acts on state changes.
//! - path.rs: single hop or multihop, our address and interface, per peer.
//!
//! What a failure does (RFC 5882 3.2, docs/config.md "BFD"): a BFD session that was Up
//! and goes Down because packets stopped or the peer says Down is a failure; the peer
//! task of an Established BGP session then closes it at once with NOTIFICATION Cease /
//! BFD Down (RFC 9384 subcode 10) and its routes are withdrawn, not kept stale. The peer
//! signalling AdminDown is not a failure and does nothing. A BFD session that never came
//! up does nothing either: BGP does not wait for BFD (as BIRD and FRR). A BGP session
//! that is not Established is left alone, so the stale routes of a peer in graceful
//! restart (RFC 4724) stay until its restart or stale timer, whatever BFD says (RFC 5882
//! 4.3: a peer whose BFD shares fate with its control plane loses BFD while it restarts).
//!
//! The speaker tells the task the whole set of BFD peers after every change (start,
//! reload, API); the task adds, removes, re-times or moves only sessions that changed.
//! Removed sessions are set AdminDown (one packet, so the peer does not take it as a
//! failure) before they go.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bgp_node::PeerStatus;
use tokio::sync::{mpsc, oneshot};

use crate::config::{BfdConfig, PeerAddress};
use crate::peer::PeerCmd;

mod path;
mod task;

pub(crate) use task::BfdTask;

/// Depth of the task's control channel.
const CTL_QUEUE: usize = 16;

/// One BFD session as `bgpctl show bfd` and the metrics show it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BfdSession {
    /// The BGP peer it serves.
    pub peer: String,
    /// The peer's address.
    pub address: IpAddr,
    /// Our address: the multihop local address, or the address single-hop packets are
    /// sent from; `None` when the kernel picks it.
    pub local: Option<IpAddr>,
    /// Multihop (RFC 5883) rather than single hop (RFC 5881).
    pub multihop: bool,
    /// bfd.SessionState (`AdminDown`, `Down`, `Init`, `Up`).
    pub state: &'static str,
    /// bfd.RemoteSessionState.
    pub remote_state: &'static str,
    /// Our transmit interval in force (negotiated: the larger of our Desired Min TX and
    /// the peer's Required Min RX).
    pub tx_interval: Duration,
    /// The receive interval in force: the larger of our Required Min RX and the peer's
    /// Desired Min TX; `None` before the peer's first packet.
    pub rx_interval: Option<Duration>,
    /// Our detection multiplier.
    pub multiplier: u8,
    /// The peer's detection multiplier (0 before its first packet).
    pub remote_multiplier: u8,
    /// The Detection Time in force.
    pub detection_time: Option<Duration>,
    /// The diagnostic we send (why our session last changed state).
    pub local_diagnostic: String,
    /// The diagnostic of the peer's last packet.
    pub remote_diagnostic: String,
    /// How long the session has been in its current state.
    pub since: Duration,
    /// Transitions to Up.
    pub up_count: u64,
    /// BGP sessions this BFD session took down.
    pub bgp_downs: u64,
    /// Why the session cannot run (no socket, no local address), if so.
    pub error: Option<String>,
}

/// What the task needs of one peer.
#[derive(Clone, Debug)]
pub(crate) struct BfdPeer {
    pub name: String,
    pub address: PeerAddress,
    pub source: Option<IpAddr>,
    /// The BGP session's GTSM minimum TTL (RFC 5082), if it has one: a multihop BFD
    /// session then requires the same.
    pub min_ttl: Option<u8>,
    pub config: BfdConfig,
    /// Where a failure is reported.
    pub cmd: mpsc::Sender<PeerCmd>,
    /// The BGP session's state (only an Established session is taken down).
    pub status: Arc<Mutex<PeerStatus>>,
}

/// Runs `task` on a thread of its own (a single-threaded runtime: its sockets and timers
/// are driven there, never behind RIB work) and returns when it ends.
pub(crate) async fn run_isolated(task: BfdTask) {
    let (done_tx, done_rx) = oneshot::channel::<()>();
    let spawned = std::thread::Builder::new()
        .name("bfd".into())
        .spawn(move || {
            match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt.block_on(task.run()),
                Err(e) => tracing::error!(error = %e, "BFD: no runtime; BFD sessions will not run"),
            }
            drop(done_tx);
        });
    match spawned {
        Ok(_) => {
            let _ = done_rx.await;
        }
        Err(e) => tracing::error!(error = %e, "BFD: no thread; BFD sessions will not run"),
    }
}

/// Requests to the task.
#[derive(Debug)]
pub(crate) enum BfdCtl {
    /// The peers that want BFD now; any other session is removed.
    Sync(Vec<BfdPeer>),
    /// Every session, by peer name.
    Show(oneshot::Sender<Vec<BfdSession>>),
}

/// The speaker's end of the task.
#[derive(Clone, Debug)]
pub(crate) struct BfdHandle {
    ctl: mpsc::Sender<BfdCtl>,
}

impl BfdHandle {
    /// A handle and the task it talks to (spawn `BfdTask::run`).
    pub(crate) fn new(cancel: tokio_util::sync::CancellationToken) -> (BfdHandle, BfdTask) {
        let (tx, rx) = mpsc::channel(CTL_QUEUE);
        (BfdHandle { ctl: tx }, BfdTask::new(rx, cancel))
    }

    /// Replaces the set of BFD peers. `false` when the task is gone (shutdown).
    pub(crate) async fn sync(&self, peers: Vec<BfdPeer>) -> bool {
        self.ctl.send(BfdCtl::Sync(peers)).await.is_ok()
    }

    /// The sessions; `None` when the task is gone.
    pub(crate) async fn sessions(&self) -> Option<Vec<BfdSession>> {
        let (tx, rx) = oneshot::channel();
        self.ctl.send(BfdCtl::Show(tx)).await.ok()?;
        rx.await.ok()
    }
}
