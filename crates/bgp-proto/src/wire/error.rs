//! Errors the codec reports, each shaped after what the receiver must do about it.
//!
//! RFC 7606 replaces "reset the session on any error" with a graded response. A decode
//! therefore yields either a value, or a [`NotificationError`] (the session must be reset
//! with exactly this NOTIFICATION), and UPDATE decoding can additionally mark the update
//! treat-as-withdraw or report attributes it discarded (see `DecodedUpdate`).

use bytes::Bytes;

use super::types::Notification;

/// A protocol error that ends the session: send this NOTIFICATION, then close.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{reason} (NOTIFICATION {code}/{subcode})")]
pub struct NotificationError {
    pub code: u8,
    pub subcode: u8,
    /// The NOTIFICATION data field (often the offending bytes).
    pub data: Bytes,
    /// What was wrong, for the log.
    pub reason: String,
}

impl NotificationError {
    pub fn new(code: u8, subcode: u8, reason: impl Into<String>) -> Self {
        NotificationError {
            code,
            subcode,
            data: Bytes::new(),
            reason: reason.into(),
        }
    }

    pub fn with_data(mut self, data: impl Into<Bytes>) -> Self {
        self.data = data.into();
        self
    }

    /// The NOTIFICATION message to send.
    pub fn to_notification(&self) -> Notification {
        Notification {
            code: self.code,
            subcode: self.subcode,
            data: self.data.clone(),
        }
    }
}

/// A message could not be encoded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("message of {len} bytes exceeds the negotiated maximum of {max}")]
    TooLong { len: usize, max: usize },
    #[error("{0}")]
    Invalid(String),
}
