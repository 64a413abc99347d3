//! BFD on the bgpd mesh of the Calico namespace cluster: a node cut off leaves every
//! other node's kernel within the BFD detection time (900 ms, bound 1.5 s) with a 90 s
//! hold time, the remaining pods lose no echo, the cut node's pod is unreachable, and the
//! node comes back when restored. Body in `interop::bfd::cluster`.
//!
//! Needs root, bgpd and bgpctl built, ip, bridge and ping: skipped with a message
//! otherwise, failed instead when CI=true.

use interop::bfd::cluster::cut_node;
use interop::{binaries_for, run_test, Kind};

#[test]
fn bgpd_bfd_cluster_cut_node() {
    let mut bins = binaries_for(&[Kind::Bgpd]);
    bins.extend(["bridge".to_string(), "ping".to_string()]);
    run_test("bgpd_bfd_cluster_cut_node", &bins, cut_node);
}
