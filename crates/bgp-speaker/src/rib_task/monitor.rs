//! What the monitoring feeds read from the RIB (monitor/): one peer's Adj-RIB-In with the
//! attributes as received or as its import policy left them, for the BMP Route Monitoring
//! a station gets on connection (RFC 7854 5), and the Loc-RIB a page of prefixes at a
//! time with every path's attribute set, for MRT table dumps (RFC 6396 4.3). Attribute
//! sets are the RIB's shared ones (`Arc`): an answer holds pointers, not copies.
//!
//! And, while a BMP station asks for them, the changes of peers' accepted routes (the
//! post-policy Adj-RIB-In), published on the monitoring tap after each turn of the task
//! (one event per run of changes of one peer), and copies of the UPDATEs handed to each
//! peer (the post-policy Adj-RIB-Out, RFC 8671).

use std::time::SystemTime;

use bgp_proto::{Family, Nlri};
use bgp_rib::policy::RouteSource;
use bgp_rib::Attrs;
use ipnet::IpNet;

use bgp_node::{OutputSlice, PeerId};

use crate::monitor::rib::AdjRib;
use crate::monitor::tap::{MonitorEvent, RibFeed};

use super::RibTask;

/// One path of a Loc-RIB prefix, for a table dump.
#[derive(Clone, Debug)]
pub(crate) struct DumpPath {
    /// The peer it came from; `None` for a route of ours (originated, kernel).
    pub peer: Option<String>,
    /// Its path identifier, where the session carries them (RFC 7911).
    pub path_id: Option<u32>,
    /// Attributes after import policy.
    pub attrs: Attrs,
    /// When it last changed (the MRT originated time).
    pub since: Option<SystemTime>,
}

/// A page of the Loc-RIB: prefixes in order with their paths, and the last prefix.
#[derive(Clone, Debug, Default)]
pub(crate) struct DumpPage {
    pub prefixes: Vec<(IpNet, Vec<DumpPath>)>,
    /// Where the next page starts (`None`: this was the last).
    pub next: Option<IpNet>,
}

impl RibTask {
    /// Peer `name`'s routes (IPv4 then IPv6 unicast) in `which` of its RIBs: its
    /// Adj-RIB-In as received, before import policy, or its accepted routes as the policy
    /// left them, or what it was sent; path identifiers as the session carries them;
    /// `None` for an unknown peer.
    pub(super) fn adj_rib(&self, name: &str, which: AdjRib) -> Option<Vec<(Nlri, Attrs)>> {
        let peer = self.driver.peer_by_name(name)?;
        let rib = self.driver.rib();
        let mut out = Vec::new();
        match which {
            AdjRib::PostPolicyIn => out = rib.accepted_routes(peer.rib_id()),
            AdjRib::PrePolicyIn => {
                for f in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
                    let routes = rib.adj_rib_in(peer.rib_id(), f).unwrap_or_default();
                    out.extend(routes.into_iter().map(|(n, a, _accepted)| (n, a)));
                }
            }
            AdjRib::PostPolicyOut => {
                for f in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
                    out.extend(rib.adj_rib_out(peer.rib_id(), f).unwrap_or_default());
                }
            }
        }
        let session = peer.session();
        for (n, _) in &mut out {
            let f = family(n);
            let carried = session.is_some_and(|s| match which {
                AdjRib::PostPolicyOut => s.codec.add_path_send.contains(&f),
                _ => s.codec.add_path_receive.contains(&f),
            });
            if !carried {
                n.path_id = None;
            }
        }
        Some(out)
    }

    /// Copies the UPDATEs of `slice`, handed to peer `id`, to the tap.
    pub(super) fn publish_sent(&self, id: PeerId, slice: &OutputSlice) {
        let Some(p) = self.driver.peer(id) else {
            return;
        };
        // Whole messages: the type octet follows the 16-octet marker and the length.
        let updates: Vec<_> = slice
            .frames
            .iter()
            .filter(|f| f.get(18) == Some(&2))
            .cloned()
            .collect();
        if updates.is_empty() {
            return;
        }
        self.ch.tap.send(MonitorEvent::Sent {
            peer: p.name().to_owned(),
            seq: slice.session,
            updates,
            at: SystemTime::now(),
        });
    }

    /// Publishes the changes of accepted routes on the tap while a reader wants them,
    /// tagged with the session they belong to (the peer's current one: the journal is in
    /// order, so changes of an earlier session are followed by their withdrawal when it
    /// went down).
    pub(super) fn publish_accepted(&mut self) {
        let wanted = self.ch.tap.wanted(RibFeed::Accepted);
        self.driver.watch_accepted(wanted);
        if !wanted {
            return;
        }
        let changes = self.driver.take_accepted();
        let at = SystemTime::now();
        let mut run: Option<(bgp_rib::PeerId, MonitorEvent)> = None;
        for c in changes {
            if run.as_ref().is_some_and(|(id, _)| *id != c.peer) {
                if let Some((_, ev)) = run.take() {
                    self.ch.tap.send(ev);
                }
            }
            if run.is_none() {
                let Some(p) = self.driver.peer_by_rib(c.peer) else {
                    continue;
                };
                let ev = MonitorEvent::Accepted {
                    peer: p.name().to_owned(),
                    seq: p.session_seq(),
                    changes: Vec::new(),
                    at,
                };
                run = Some((c.peer, ev));
            }
            let Some((_, MonitorEvent::Accepted { changes, .. })) = &mut run else {
                continue;
            };
            let mut nlri = c.nlri;
            let add_path = self
                .driver
                .peer_by_rib(c.peer)
                .and_then(|p| p.session())
                .is_some_and(|s| s.codec.add_path_receive.contains(&family(&nlri)));
            if !add_path {
                nlri.path_id = None;
            }
            changes.push((nlri, c.attrs));
        }
        if let Some((_, ev)) = run {
            self.ch.tap.send(ev);
        }
    }

    /// Up to `limit` prefixes of the Loc-RIB after `after`, with all their paths.
    pub(super) fn dump_page(&self, after: Option<IpNet>, limit: usize) -> DumpPage {
        let rib = self.driver.rib();
        let prefixes = rib.prefixes_after(None, after, limit.max(1));
        let mut page = DumpPage {
            next: (prefixes.len() >= limit.max(1))
                .then(|| prefixes.last().copied())
                .flatten(),
            ..DumpPage::default()
        };
        for p in prefixes {
            let Some(d) = rib.route(p, self.driver.resolver()) else {
                continue;
            };
            let paths = d
                .paths
                .iter()
                .map(|path| {
                    let carried = self.session_of(path).is_some_and(|s| {
                        let f = match d.prefix {
                            IpNet::V4(_) => Family::IPV4_UNICAST,
                            IpNet::V6(_) => Family::IPV6_UNICAST,
                        };
                        s.codec.add_path_receive.contains(&f)
                    });
                    DumpPath {
                        peer: path.peer_name.clone(),
                        path_id: (carried && path.source == RouteSource::Bgp)
                            .then_some(path.path_id),
                        attrs: path.attrs.clone(),
                        since: path.since.and_then(super::wall_clock),
                    }
                })
                .collect();
            page.prefixes.push((d.prefix, paths));
        }
        page
    }
}

fn family(n: &Nlri) -> Family {
    match n.prefix {
        IpNet::V4(_) => Family::IPV4_UNICAST,
        IpNet::V6(_) => Family::IPV6_UNICAST,
    }
}
