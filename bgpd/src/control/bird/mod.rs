//! A read-only, BIRD-compatible status socket.
//!
//! calico-node's health checks and status reports talk to BIRD's control socket
//! (`/var/run/calico/bird.ctl`, and `bird6.ctl` for the separate IPv6 daemon of BIRD 1.x):
//! `calico-node -bird-ready` sends `show protocols` (and `show status` for graceful
//! restart) itself, `-bird-live` runs `birdcl -s /var/run/calico/bird.ctl show status`,
//! and `calicoctl node status` / the CalicoNodeStatus reporter read `show protocols`,
//! `show protocols all NAME` and `show status`. With bgpd in BIRD's place this module
//! answers those commands from the speaker's own peer and status data, so the checks work
//! unchanged.
//!
//! # The protocol (as BIRD's `nest/cli.c` speaks it)
//!
//! On connect the daemon sends `0001 BIRD <version> ready.`. The client then writes one
//! command per line; every reply is a series of lines each starting with a four-digit code:
//! `CODE-text` opens a group of lines with that code, a line starting with a space
//! continues the previous line's code, and `CODE text` (a space after the code) is the
//! last line of the reply. `0000 ` ends a table; codes 8xxx are run-time errors
//! (`8003 No protocols match`, `8007 Access denied`), 9xxx parse errors
//! (`9001 syntax error`).
//!
//! # What is answered
//!
//! * `show status`: version, router id, server/boot/reconfiguration times, the graceful
//!   restart block (code 0024, which `-bird-ready` looks for) while we restart, and
//!   `0013 Daemon is up and running`.
//! * `show protocols [all] [NAME | "PATTERN"]`: one `BGP` row per configured peer of the
//!   socket's address family (IPv4 peers on `bird_socket`, IPv6 peers on `bird6_socket`,
//!   as BIRD 1.x's two daemons did); `all` adds BIRD's `BGP state:` block. Calico parses
//!   the row's columns (name, proto, table, state, since, info) and, from the detail,
//!   `BGP state:` and `Neighbor address:`.
//! * `show route count`: paths and prefixes of the Loc-RIB of the socket's family.
//! * `show route [protocol NAME]`: the Loc-RIB of the socket's family in BIRD's route
//!   layout, which calico-node's CalicoNodeStatus route reporter parses ([`route`]).
//! * Commands that change state (`configure`, `enable`, `disable`, `restart`, `reload`,
//!   `down`, ...) get `8007 Access denied`, as BIRD's restricted CLI answers them: the
//!   socket is read-only (bgpctl is the way to act on the daemon). Anything else gets
//!   `9001 syntax error`.
//!
//! # Layout
//!
//! calico-node compares the heading of `show protocols` word for word with BIRD 1.6's
//! (`name proto table state since info`, lower case; calico `node/pkg/health/bird/bird.go`
//! `birdExpectedHeadings`), so the default layout is BIRD 1.6's (column widths of
//! `proto_cmd_show`, times `%T` within 20 hours and `%F` after, `master` table).
//! [`BirdFormat::Bird2`] imitates BIRD 2.0 instead (wider columns, `---` table,
//! millisecond times, `Hostname is`), which the unit tests compare byte for byte with
//! captures of a real BIRD 2.0.12. Only BGP sessions exist here: BIRD's `device1`,
//! `kernel1` and `direct1` rows are not invented. Lines BIRD prints from state we do not
//! keep (preference, hold timer remaining, per-route change statistics) are left out
//! rather than filled with made-up numbers.

mod command;
mod protocols;
mod reply;
mod route;
mod server;
mod status;
mod time;

pub use server::{bind, start};

use std::net::IpAddr;

use bgp_speaker::FamilyFilter;

/// The version we announce: `BIRD v0.1.0+bgpd`. calico-node's status reporter reads the
/// version from a `BIRD v...` line, so it starts with `v` like Calico's BIRD builds
/// (`v0.3.3+birdv1.6.8`), and says what it is.
pub const BIRD_VERSION: &str = concat!("v", env!("CARGO_PKG_VERSION"), "+bgpd");

/// Which sessions a socket reports.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum SocketFamily {
    /// Peers with an IPv4 address (`bird.ctl`).
    Ipv4,
    /// Peers with an IPv6 address (`bird6.ctl`).
    Ipv6,
}

impl SocketFamily {
    fn matches(self, a: IpAddr) -> bool {
        match self {
            SocketFamily::Ipv4 => a.is_ipv4(),
            SocketFamily::Ipv6 => a.is_ipv6(),
        }
    }

    fn filter(self) -> FamilyFilter {
        match self {
            SocketFamily::Ipv4 => FamilyFilter::Ipv4,
            SocketFamily::Ipv6 => FamilyFilter::Ipv6,
        }
    }

    /// BIRD 2's table name.
    fn table(self) -> &'static str {
        match self {
            SocketFamily::Ipv4 => "master4",
            SocketFamily::Ipv6 => "master6",
        }
    }
}

#[cfg(test)]
mod tests;
