//! Message counters of a session: what it received and handed out for sending, by
//! whole message, KEEPALIVEs apart (for the operator's per-peer counters).

use crate::wire::types::HEADER_LEN;

#[cfg(doc)]
use super::Session;

/// Messages a session received and handed out for sending, counted until
/// [`Session::take_message_counts`] takes them (the caller keeps the totals of a peer over
/// its sessions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MessageCounts {
    /// Whole messages received (every type, malformed ones too).
    pub received: u64,
    /// Whole messages handed out by [`Session::poll_transmit`].
    pub sent: u64,
    /// KEEPALIVEs received.
    pub keepalives_received: u64,
    /// KEEPALIVEs handed out for sending.
    pub keepalives_sent: u64,
}

impl MessageCounts {
    /// Counts one message of the frame `frame` (its type is the header's last octet,
    /// RFC 4271 4.1) in `total` and, for a KEEPALIVE, in `keepalives`.
    pub(super) fn count(frame: &[u8], total: &mut u64, keepalives: &mut u64) {
        *total += 1;
        if frame.get(HEADER_LEN - 1) == Some(&MSG_KEEPALIVE) {
            *keepalives += 1;
        }
    }
}

/// The KEEPALIVE message type (RFC 4271 4.1).
const MSG_KEEPALIVE: u8 = 4;
