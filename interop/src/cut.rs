//! Cutting the path between two nodes without touching their links' carrier, so only
//! a protocol (BFD, the BGP hold timer) can tell: a node's bridge port disabled in the
//! segment's namespace, or forwarding turned off in a router between two segments.

use std::sync::Arc;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::netns::{Netns, Node, Segment};

/// How to cut the path between two nodes, and restore it.
pub(crate) enum Cut {
    BridgePort { bridge: Arc<Netns>, port: String },
    Router { ns: Arc<Netns> },
}

impl Cut {
    /// Restores (`true`) or cuts (`false`) the path.
    pub(crate) fn set(&self, up: bool) -> Result<()> {
        match self {
            Cut::BridgePort { bridge, port } => {
                let state = if up { "3" } else { "0" };
                crate::cmd::run(
                    "bridge",
                    &[
                        "-n",
                        bridge.name(),
                        "link",
                        "set",
                        "dev",
                        port,
                        "state",
                        state,
                    ],
                )?;
            }
            Cut::Router { ns } => {
                let v = if up { "1" } else { "0" };
                ns.sysctl("net.ipv4.ip_forward", v)?;
                ns.sysctl("net.ipv6.conf.all.forwarding", v)?;
            }
        }
        Ok(())
    }
}

/// The bridge port (in the segment's namespace) of `node`'s interface: the veth peer
/// of `eth0`, found by its interface index.
pub(crate) fn bridge_port(segment: &Segment, node: &Node) -> Result<String> {
    let what = "ip -j link show";
    let link: Value = serde_json::from_str(&node.ns.ip(&["-j", "link", "show", &node.ifname])?)
        .map_err(|e| Error::parse(what, e.to_string()))?;
    let index = link
        .pointer("/0/link_index")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::parse(what, format!("no link_index: {link}")))?;
    let ports: Value = serde_json::from_str(&segment.netns().ip(&["-j", "link", "show"])?)
        .map_err(|e| Error::parse(what, e.to_string()))?;
    ports
        .as_array()
        .and_then(|ps| {
            ps.iter()
                .find(|p| p.get("ifindex").and_then(Value::as_u64) == Some(index))
        })
        .and_then(|p| p.get("ifname").and_then(Value::as_str))
        .map(str::to_string)
        .ok_or_else(|| Error::parse(what, format!("no port with index {index}")))
}
