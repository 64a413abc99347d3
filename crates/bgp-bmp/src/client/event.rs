//! What a [`Client`](super::Client) tells its caller: its state, the events drained with
//! `poll_event`, what became of each message offered to it, and running counts.

use std::fmt;

/// Where the connection to the station stands.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ClientState {
    /// Not started, or stopped.
    Idle,
    /// Waiting out the reconnection delay.
    Waiting,
    /// A connection attempt is under way.
    Connecting,
    /// Connected: messages flow.
    Connected,
    /// The caller was asked to close the connection.
    Closing,
}

/// Why a connection ended (or never came up).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum DisconnectReason {
    ConnectFailed,
    ConnectTimeout,
    /// The station closed the connection, or writing to it failed.
    Closed,
    /// Queued bytes were not taken for `send_timeout`.
    SendStalled,
    /// The queue overflowed; the client resynchronises on a new connection.
    QueueOverflow,
    /// [`Client::stop`](super::Client::stop).
    Stopped,
}

impl fmt::Display for DisconnectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DisconnectReason::ConnectFailed => "connection failed",
            DisconnectReason::ConnectTimeout => "connection attempt timed out",
            DisconnectReason::Closed => "connection closed",
            DisconnectReason::SendStalled => "station stopped reading",
            DisconnectReason::QueueOverflow => "queue overflow, resynchronising",
            DisconnectReason::Stopped => "stopped",
        })
    }
}

/// Something the caller must do, or may want to know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientEvent {
    /// Open a TCP connection to the station, then report
    /// [`handle_connected`](super::Client::handle_connected) or
    /// [`handle_connect_failed`](super::Client::handle_connect_failed).
    Connect,
    /// Write out what [`poll_transmit`](super::Client::poll_transmit) still returns (it
    /// may hold a Termination), then close the connection (or abandon the attempt) and
    /// report [`handle_closed`](super::Client::handle_closed).
    Close,
    /// Connection `session` is up: Initiation and a Peer Up for every peer up are queued.
    /// Send every up peer's routes now with
    /// [`route_monitoring`](super::Client::route_monitoring), pre- and/or post-policy,
    /// while [`has_room`](super::Client::has_room) says so (resuming on
    /// [`ClientEvent::Writable`]), and stop if [`session`](super::Client::session) changes.
    ReplayRoutes { session: u64 },
    /// The queue drained below half its limit: bulk sending may go on.
    Writable,
    /// Time to send a [`statistics`](super::Client::statistics) report for each peer.
    StatisticsDue,
    /// The connection ended (or the attempt failed): for logs and metrics. The client
    /// reconnects on its own unless stopped.
    Disconnected(DisconnectReason),
}

/// What became of a message offered to the client.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Enqueued {
    /// Queued for the station.
    Queued,
    /// Not connected: dropped. Peer state is kept and replayed on connection; routes are
    /// replayed by the caller on [`ClientEvent::ReplayRoutes`].
    NotConnected,
    /// The message is about a peer with no Peer Up: dropped. A station learns a peer from
    /// its Peer Up (RFC 7854 3.3) and discards what comes before it, as pmbmpd does.
    UnknownPeer,
    /// The queue overflowed: the message and everything unsent were dropped and the client
    /// resynchronises on a new connection.
    Overflow,
}

/// Running counts, for metrics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientCounters {
    /// Connections established.
    pub connections: u64,
    /// Messages queued, and handed to the caller in bytes.
    pub messages_queued: u64,
    pub bytes_sent: u64,
    /// Messages dropped from the queue (overflow, lost connection).
    pub messages_dropped: u64,
    pub overflows: u64,
    /// Bytes the station sent (BMP is one-way; they are discarded).
    pub bytes_ignored: u64,
}
