//! Configurations that make a daemon the route reflector of a [`Plan`]'s clients: one
//! passive iBGP session per client address, each a route-reflector client (RFC 4456),
//! everything imported and exported. bgpd gets TOML (docs/config.md), BIRD 2 a
//! `bird.conf`. The benchmark script and the tests write them from here, so the two
//! daemons are always configured alike.

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;

use crate::plan::Plan;

/// What the reflector's configuration needs beyond the plan.
#[derive(Clone, Debug)]
pub struct Reflector<'a> {
    pub plan: Plan,
    /// Where the reflector listens; also its BGP Identifier and cluster id.
    pub listen: SocketAddr,
    pub asn: u32,
    /// Hold Time the reflector proposes, seconds.
    pub hold_time: u16,
    /// bgpd's control socket.
    pub control_socket: &'a Path,
}

/// bgpd's configuration: a `client` template and one `[peers.NAME]` per client.
pub fn bgpd_config(r: &Reflector<'_>) -> String {
    let id = r.listen.ip();
    let mut out = format!(
        r#"# Route reflector for {clients} clients (written by bgp-loadgen).
[global]
asn = {asn}
router_id = "{id}"
listen = ["{listen}"]

[global.control]
socket = "{socket}"
mode = "0600"

[global.graceful_restart]
enabled = false

[policies.all]
default = "accept"

[templates.client]
remote_as = {asn}
route_reflector_client = true
passive = true
hold_time = {hold}
import = ["all"]
export = ["all"]
"#,
        clients = r.plan.clients(),
        asn = r.asn,
        listen = r.listen,
        socket = r.control_socket.display(),
        hold = r.hold_time,
    );
    for (name, addr) in sessions(&r.plan) {
        let _ = write!(
            out,
            "\n[peers.{name}]\ntemplate = \"client\"\naddress = \"{addr}\"\n"
        );
    }
    out
}

/// BIRD 2's configuration: an `rr_clients` template (`rr client`, passive) and one `protocol
/// bgp` per client. BIRD resolves iBGP next hops recursively (`gateway recursive`), so a
/// static device route makes the clients' loopback next hops reachable; only BGP routes
/// are exported, so that route stays inside.
pub fn bird_config(r: &Reflector<'_>) -> String {
    let id = r.listen.ip();
    let mut out = format!(
        r#"# Route reflector for {clients} clients (written by bgp-loadgen).
router id {id};

protocol device {{ }}

protocol static {{
    ipv4;
    route 127.0.0.0/8 via "lo";
}}

template bgp rr_clients {{
    local {id} port {port} as {asn};
    rr client;
    passive on;
    hold time {hold};
    ipv4 {{
        import all;
        export where source = RTS_BGP;
    }};
}}
"#,
        clients = r.plan.clients(),
        port = r.listen.port(),
        asn = r.asn,
        hold = r.hold_time,
    );
    for (name, addr) in sessions(&r.plan) {
        let _ = write!(
            out,
            "\nprotocol bgp {name} from rr_clients {{ neighbor {addr} as {asn}; }}\n",
            asn = r.asn
        );
    }
    out
}

/// Each client's session name and address.
fn sessions(plan: &Plan) -> impl Iterator<Item = (String, Ipv4Addr)> {
    (0..plan.clients()).map(|client| (peer_name(client), Plan::client_address(client)))
}

/// The session name of client `client` in both daemons: `c127_1_0_1`.
pub fn peer_name(client: u32) -> String {
    format!(
        "c{}",
        Plan::client_address(client).to_string().replace('.', "_")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reflector(socket: &Path) -> Reflector<'_> {
        Reflector {
            plan: Plan::new(3, 10, 24, Ipv4Addr::new(10, 0, 0, 0)).expect("plan"),
            listen: "127.0.0.1:1790".parse().expect("addr"),
            asn: 64512,
            hold_time: 240,
            control_socket: socket,
        }
    }

    #[test]
    fn bgpd_config_has_one_reflector_client_per_address() {
        let text = bgpd_config(&reflector(Path::new("/tmp/x.sock")));
        assert_eq!(text.matches("\n[peers.").count(), 3);
        assert!(text.contains("[peers.c127_1_0_3]\ntemplate = \"client\"\naddress = \"127.1.0.3\""));
        assert!(text.contains("route_reflector_client = true"));
        assert!(text.contains("listen = [\"127.0.0.1:1790\"]"));
        assert!(text.contains("socket = \"/tmp/x.sock\""));
    }

    #[test]
    fn bird_config_has_one_rr_client_protocol_per_address() {
        let text = bird_config(&reflector(Path::new("/unused")));
        assert_eq!(text.matches("protocol bgp ").count(), 3);
        assert!(text
            .contains("protocol bgp c127_1_0_1 from rr_clients { neighbor 127.1.0.1 as 64512; }"));
        assert!(text.contains("local 127.0.0.1 port 1790 as 64512;"));
        assert!(text.contains("rr client;"));
    }
}
