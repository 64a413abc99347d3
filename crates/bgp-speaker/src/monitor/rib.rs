//! The feeds' questions to the RIB task (answered in rib_task/monitor.rs), by its control
//! channel like every other query: the RIB is never shared, only asked.

use std::collections::HashMap;

use bgp_proto::Nlri;
use bgp_rib::Attrs;
use ipnet::IpNet;
use tokio::sync::{mpsc, oneshot};

use crate::rib_task::monitor::DumpPage;
use crate::rib_task::{PeerPrefixCounts, Query, RibCtl};

/// One of a peer's RIBs as BMP Route Monitoring reports it (RFC 7854 2, RFC 8671).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AdjRib {
    /// The routes as the peer sent them.
    PrePolicyIn,
    /// The routes its import policy accepted, as the policy left them.
    PostPolicyIn,
    /// The routes it was sent.
    PostPolicyOut,
}

/// A handle on the RIB task for the feeds.
#[derive(Clone, Debug)]
pub(crate) struct RibAccess(pub(crate) mpsc::Sender<RibCtl>);

impl RibAccess {
    async fn ask<T>(&self, f: impl FnOnce(oneshot::Sender<T>) -> Query) -> Option<T> {
        let (tx, rx) = oneshot::channel();
        self.0.send(RibCtl::Query(f(tx))).await.ok()?;
        rx.await.ok()
    }

    /// Peer `name`'s routes in `rib`; `None` once the peer or the RIB is gone.
    pub(crate) async fn adj_rib(&self, name: &str, rib: AdjRib) -> Option<Vec<(Nlri, Attrs)>> {
        self.ask(|tx| Query::AdjRib(name.to_owned(), rib, tx))
            .await
            .flatten()
    }

    /// Prefix counts by peer name, in all and per negotiated family.
    pub(crate) async fn counts(&self) -> Option<HashMap<String, PeerPrefixCounts>> {
        self.ask(Query::FamilyPrefixCounts).await
    }

    /// A page of the Loc-RIB after `after`.
    pub(crate) async fn dump_page(&self, after: Option<IpNet>, limit: usize) -> Option<DumpPage> {
        self.ask(|reply| Query::DumpPage {
            after,
            limit,
            reply,
        })
        .await
    }
}
