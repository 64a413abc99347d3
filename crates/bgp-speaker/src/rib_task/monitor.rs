//! What the monitoring feeds read from the RIB (monitor/): one peer's Adj-RIB-In with the
//! attributes as received, for the BMP Route Monitoring a station gets on connection (RFC
//! 7854 5), and the Loc-RIB a page of prefixes at a time with every path's attribute set,
//! for MRT table dumps (RFC 6396 4.3). Attribute sets are the RIB's shared ones (`Arc`):
//! an answer holds pointers, not copies.

use std::time::SystemTime;

use bgp_proto::{Family, Nlri};
use bgp_rib::policy::RouteSource;
use bgp_rib::Attrs;
use ipnet::IpNet;

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
    /// The Adj-RIB-In of peer `name` (IPv4 then IPv6 unicast) as received, before import
    /// policy, with path identifiers as the session carries them; `None` for an unknown
    /// peer.
    pub(super) fn received_routes(&self, name: &str) -> Option<Vec<(Nlri, Attrs)>> {
        let peer = self.driver.peer_by_name(name)?;
        let rib = self.driver.rib();
        let mut out = Vec::new();
        for f in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
            let add_path = peer
                .session()
                .is_some_and(|s| s.codec.add_path_receive.contains(&f));
            for (mut n, a, _accepted) in rib.adj_rib_in(peer.rib_id(), f).unwrap_or_default() {
                if !add_path {
                    n.path_id = None;
                }
                out.push((n, a));
            }
        }
        Some(out)
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
