//! Interop harness: runs real BGP speakers in Linux network namespaces on a
//! bridged segment, drives them through their own CLIs, and cleans up.
//!
//! Building blocks:
//! - [`run_test`]: prerequisites (root, binaries; skip outside CI, fail in
//!   CI), a private temp directory, logs printed on failure.
//! - [`Netns`], [`Segment`], [`Node`]: namespaces (deleted on drop), a bridge
//!   in its own namespace, veth links and addresses.
//! - [`Process`]: a daemon in a namespace, logs captured, stopped by PID.
//! - Adapters translating one [`SpeakerConfig`] into each daemon's native
//!   configuration and reading back [`PeerStatus`] / [`RouteView`] through
//!   the [`Speaker`] trait: [`Bird`], [`GoBgp`], [`Frr`], [`ExaBgp`], and our
//!   own [`Bgpd`], each a folder (`mod.rs` starts the daemon, `config.rs`
//!   renders its configuration, `parse.rs` reads its CLI's answers). What
//!   only some CLIs show or do (ADD-PATH, ROUTE-REFRESH, staleness) is asked
//!   through the trait's capability methods; [`Kind`] picks a daemon at run
//!   time so a test body can be written once for all pairs.
//! - [`wait_until`], [`wait_established`], [`wait_route`]: polling with a
//!   generous bound ([`TIMEOUT`]); [`Netns::routes`] and [`Netns::ping`] check
//!   the data plane.
//! - [`scenarios`]: test bodies written once for any [`Kind`], one file per
//!   feature (route exchange, reflection, MD5, malformed messages, graceful
//!   restart, a real table, ADD-PATH, route refresh, 4-octet AS, extended
//!   next hop); [`calico`]: Felix-like node state and calico-node style
//!   BIRD/bgpd configurations; [`raw_peer`]: a BGP peer played by the test
//!   (sessions by hand with the bgp-proto codec, UPDATEs byte by byte, a
//!   peer that stops reading) and the daemon's memory and CPU from /proc;
//!   [`table`]: the RIS 2002 table; [`pmbmpd`]: pmacct's BMP collector as a
//!   monitoring station.
//! - [`etcd`]: real etcd v3 members (one, or a cluster; TLS with client
//!   certificates from a throwaway CA) inside a namespace, for Calico's datastore.
//! - [`bfd`]: BFD with `bgp-bfd` (the `bfd_peer` driver binary of this
//!   package) against FRR's bfdd and BIRD's BFD protocol.
//!
//! Everything stays inside namespaces the harness created: no address,
//! interface or process is ever added to the root namespace, and only
//! processes started here are signalled.

pub mod bfd;
pub mod bgpd;
pub mod bird;
pub mod bird1;
pub mod calico;
pub mod calico_cluster;
pub mod calico_datastore;
mod cmd;
mod context;
mod cut;
mod error;
pub mod etcd;
pub mod exabgp;
pub mod frr;
pub mod gobgp;
mod json;
mod model;
mod netns;
pub mod pmbmpd;
mod process;
pub mod raw_peer;
pub mod scenarios;
mod speaker;
pub mod table;
pub mod twin;
mod wait;

pub use bgpd::Bgpd;
pub use bird::Bird;
pub use cmd::{find_binary, require_binary};
pub use context::{in_ci, is_root, prerequisites, run_test, say, Test};
pub use error::{Error, Result};
pub use exabgp::ExaBgp;
pub use frr::Frr;
pub use gobgp::GoBgp;
pub use model::{
    community, large_community, AddPath, AddPathSeen, Announce, Family, Neighbor, Origin,
    PeerStatus, RouteView, SpeakerConfig,
};
pub use netns::{
    environ_has_owner, netns_name, owner_of_netns, parse_ip_route_json, parse_link_packets,
    parse_stat_start_time, sweep_leftovers, Attachment, KernelRoute, LinkPackets, Netns, Node,
    Owner, Router, Segment, Sweep, NETNS_PREFIX, OWNER_ENV,
};
pub use process::Process;
pub use speaker::{wait_established, wait_no_route, wait_route, Speaker};
pub use wait::{wait_for, wait_until, TIMEOUT};

/// The kinds of speaker the harness can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// BIRD 2 (`bird`, `birdc`).
    Bird,
    /// GoBGP (`gobgpd`, `gobgp`).
    GoBgp,
    /// FRR's bgpd without zebra (`/usr/lib/frr/bgpd`, `vtysh`).
    Frr,
    /// ExaBGP (`exabgp`); connects out only.
    ExaBgp,
    /// Our bgpd, from the workspace's target directory.
    Bgpd,
}

impl Kind {
    /// Lower-case name, used in labels.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Bird => "bird",
            Kind::GoBgp => "gobgp",
            Kind::Frr => "frr",
            Kind::ExaBgp => "exabgp",
            Kind::Bgpd => "bgpd",
        }
    }

    /// The binaries this kind needs (for [`run_test`]): names looked up in
    /// `$PATH` and the sbin directories, or absolute paths. bgpd is looked up
    /// in the workspace's target directory only (FRR also ships a `bgpd`).
    pub fn binaries(self) -> Vec<String> {
        let names: &[&str] = match self {
            Kind::Bird => &["bird", "birdc"],
            Kind::GoBgp => &["gobgpd", "gobgp"],
            Kind::Frr => &["/usr/lib/frr/bgpd", "vtysh"],
            Kind::ExaBgp => &["exabgp"],
            Kind::Bgpd => {
                return [
                    (bgpd::bgpd_binary(), "bgpd (cargo build -p bgpd)"),
                    (bgpd::bgpctl_binary(), "bgpctl (cargo build -p bgpctl)"),
                ]
                .into_iter()
                .map(|(p, missing)| {
                    p.map(|p| p.to_string_lossy().into_owned())
                        .unwrap_or_else(|| missing.to_string())
                })
                .collect()
            }
        };
        names.iter().map(|s| s.to_string()).collect()
    }

    /// Starts this kind of speaker in `node` with `cfg`.
    pub fn start(
        self,
        test: &Test,
        node: &Node,
        label: &str,
        cfg: &SpeakerConfig,
    ) -> Result<Box<dyn Speaker>> {
        Ok(match self {
            Kind::Bird => Box::new(Bird::start(test, node, label, cfg)?),
            Kind::GoBgp => Box::new(GoBgp::start(test, node, label, cfg)?),
            Kind::Frr => Box::new(Frr::start(test, node, label, cfg)?),
            Kind::ExaBgp => Box::new(ExaBgp::start(test, node, label, cfg)?),
            Kind::Bgpd => Box::new(Bgpd::start(test, node, label, cfg)?),
        })
    }
}

/// The union of the binaries needed by `kinds`, plus `ip`.
pub fn binaries_for(kinds: &[Kind]) -> Vec<String> {
    let mut v = vec!["ip".to_string()];
    for k in kinds {
        for b in k.binaries() {
            if !v.contains(&b) {
                v.push(b);
            }
        }
    }
    v
}
