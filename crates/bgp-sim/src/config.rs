//! Knobs of a simulation run: the seed, how links behave, how sessions are configured.

use std::time::Duration;

use bgp_node::MaxPrefixes;

/// How the simulated network carries a TCP connection's bytes.
///
/// Every write gets its own random latency, but a connection's bytes in one direction are
/// delivered in order (TCP); different connections overtake each other freely, which is
/// what makes different seeds produce different interleavings of UPDATEs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkConfig {
    /// One-way latency range of a segment (uniform).
    pub min_latency: Duration,
    pub max_latency: Duration,
    /// Chance (percent) that one write is cut into 2–4 segments at random byte offsets,
    /// so that messages arrive split across reads.
    pub split_percent: u8,
}

impl Default for LinkConfig {
    /// A data-centre network: 50 µs to 2 ms one way, one write in five split.
    fn default() -> Self {
        LinkConfig {
            min_latency: Duration::from_micros(50),
            max_latency: Duration::from_millis(2),
            split_percent: 20,
        }
    }
}

/// Graceful restart (RFC 4724) as every node of a run advertises it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GracefulRestartConfig {
    /// Restart Time advertised: how long peers keep our routes stale while we are gone.
    pub restart_time: u16,
    /// How long a restarting node defers sending its routes while it waits for End-of-RIB
    /// from every neighbour (RFC 4724 4.1, selection_deferral_timer).
    pub selection_deferral: Duration,
    /// How long a receiving node keeps stale routes of a re-established peer waiting for
    /// its End-of-RIB (RFC 4724 4.2, the RIB's `stale_path_time`).
    pub stale_path_time: Duration,
}

impl Default for GracefulRestartConfig {
    /// BIRD's defaults: restart time 120 s, stale time 360 s; deferral 60 s.
    fn default() -> Self {
        GracefulRestartConfig {
            restart_time: 120,
            selection_deferral: Duration::from_secs(60),
            stale_path_time: Duration::from_secs(360),
        }
    }
}

/// What the RIB work of a node costs in virtual time (the simulator's clock does not move
/// while real code runs). A node's RIB is one worker: a flush starts when the previous one
/// finished, its decision process ends after the received UPDATEs' cost, and each peer's
/// UPDATEs leave once their encoding cost has been spent, in peer order. The session
/// layer (framing, keepalives) costs nothing. Zero (the default) measures the protocol
/// alone: round trips, latencies and batching.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuModel {
    /// Decode, Adj-RIB-In and decision per UPDATE received.
    pub per_update_received: Duration,
    /// Export and encoding per UPDATE sent.
    pub per_update_sent: Duration,
}

/// Everything that parameterises a run besides the [`Topology`](crate::Topology).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimConfig {
    /// Seeds every random choice: latencies, segment splits, start offsets.
    pub seed: u64,
    pub link: LinkConfig,
    /// Nodes start at a random offset in `0..=start_jitter`.
    pub start_jitter: Duration,
    /// A node runs its decision process and sends UPDATEs this long after the first input
    /// that needs it, batching what arrives meanwhile (the event-loop batching every real
    /// speaker does; it turns many one-prefix UPDATEs into one write per peer).
    pub batch_delay: Duration,
    /// Hold Time every session proposes (keepalives every third of it).
    pub hold_time: u16,
    /// Initial ConnectRetryTime (RFC 4271 8.1.1), doubled per failure up to 120 s.
    pub connect_retry: Duration,
    /// Advertise graceful restart on every session, and restart nodes gracefully.
    pub graceful_restart: Option<GracefulRestartConfig>,
    /// Virtual cost of RIB work (none by default).
    pub cpu: CpuModel,
    /// Run every session over IPv6 with RFC 8950: each node's address on its sessions is
    /// [`Topology::ipv6_address`](crate::Topology::ipv6_address) of its IPv4 address (it
    /// has no IPv4 address to give as next hop), every session announces the extended
    /// next hop capability for IPv4 unicast, so the IPv4 blocks travel with IPv6 next
    /// hops. Off by default.
    pub extended_next_hop: bool,
    /// Both ends of every session connect (none is passive), so connections collide and
    /// are resolved by BGP Identifier (RFC 4271 6.8). Off by default: one end listens,
    /// as in a Calico mesh.
    pub both_active: bool,
    /// NLRI octets of one slice of a peer's queued UPDATEs (see `bgp_node::RibDriver`);
    /// 256 KiB as in the daemon.
    pub out_slice_bytes: usize,
    /// Bound of each session's outbound queue. Large by default: the simulator drains
    /// sessions right after each call, so nothing waits there unless a test makes it
    /// small.
    pub session_queue_bytes: usize,
    /// Prefix limit on every session (none by default).
    pub max_prefixes: Option<MaxPrefixes>,
}

impl SimConfig {
    /// Defaults with the given seed: [`LinkConfig::default`], all nodes starting at once, 1 ms
    /// batching, hold time 90 s, connect retry 5 s (Calico), no graceful restart, free CPU,
    /// one passive end per session, no prefix limit.
    pub fn new(seed: u64) -> SimConfig {
        SimConfig {
            seed,
            link: LinkConfig::default(),
            start_jitter: Duration::ZERO,
            batch_delay: Duration::from_millis(1),
            hold_time: 90,
            connect_retry: Duration::from_secs(5),
            graceful_restart: None,
            cpu: CpuModel::default(),
            extended_next_hop: false,
            both_active: false,
            out_slice_bytes: 256 * 1024,
            session_queue_bytes: 256 * 1024 * 1024,
            max_prefixes: None,
        }
    }

    /// The same with IPv6-only sessions carrying IPv4 routes (RFC 8950), see
    /// [`SimConfig::extended_next_hop`].
    pub fn with_extended_next_hop(mut self) -> SimConfig {
        self.extended_next_hop = true;
        self
    }

    /// The same with graceful restart enabled with its defaults.
    pub fn with_graceful_restart(mut self) -> SimConfig {
        self.graceful_restart = Some(GracefulRestartConfig::default());
        self
    }
}
