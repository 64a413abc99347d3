//! What a policy sees of a stored path ([`RouteView`]): besides its attributes, where it
//! came from (a peer, or a local route with its kernel facts) and the interface its next
//! hop resolves through. The export rules and the FIB entry build it the same way from
//! these facts.

use std::net::IpAddr;

use bgp_proto::PathAttributes;
use ipnet::IpNet;

use super::local::{path_source, LocalMeta, LocalRoutes};
use super::peers::PeerTable;
use super::resolve::NextHopInterfaces;
use crate::policy::{PeerView, RouteView};
use crate::table::{Path, LOCAL_PEER};

/// The facts about paths kept beside the route table.
#[derive(Copy, Clone)]
pub(crate) struct Facts<'a> {
    pub peers: &'a PeerTable,
    pub locals: &'a LocalRoutes,
    pub nh: &'a NextHopInterfaces,
}

impl<'a> Facts<'a> {
    /// A local path's own facts (`None` for BGP paths).
    pub fn local_meta(&self, prefix: IpNet, x: &Path) -> Option<&'a LocalMeta> {
        if x.peer() == LOCAL_PEER {
            self.locals.get(prefix, path_source(x))
        } else {
            None
        }
    }

    /// The view of path `x` at `prefix` with attributes `attrs` and next hop `next_hop`,
    /// for a policy evaluated on behalf of `peer`.
    pub fn view<'b>(
        &self,
        prefix: IpNet,
        x: &Path,
        attrs: &'b PathAttributes,
        next_hop: Option<IpAddr>,
        peer: Option<PeerView<'b>>,
    ) -> RouteView<'b>
    where
        'a: 'b,
    {
        let local = x.peer() == LOCAL_PEER;
        RouteView {
            prefix,
            attrs,
            next_hop,
            next_hop_interface: if local { None } else { self.nh.of(next_hop) },
            source: path_source(x),
            kernel: self.local_meta(prefix, x).map(|m| &*m.kernel),
            peer,
        }
    }
}
