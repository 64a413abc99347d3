//! What a watched source reports about itself, for logs and `bgpctl show datastore`:
//! its sync state, the revision reached, whether it is connected, and the last error.
//! The source task keeps it current (a `tokio::sync::watch` of it in the etcd source);
//! readers take a copy.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::sync::{BadValue, SyncState};

/// How many undecodable values are kept for display (the most recent ones).
pub const BAD_VALUES_KEPT: usize = 16;

/// A problem the source met, with when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceProblem {
    /// What went wrong.
    pub message: String,
    /// When, in seconds since the Unix epoch.
    pub at_unix_secs: u64,
}

impl SourceProblem {
    /// `message`, now.
    pub fn now(message: impl Into<String>) -> SourceProblem {
        SourceProblem {
            message: message.into(),
            at_unix_secs: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        }
    }
}

/// A datastore source's own view of itself.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DatastoreStatus {
    /// What it reads (`etcdv3 https://...`), without secrets.
    pub datastore: String,
    /// Sync state.
    pub state: SyncState,
    /// Whether a connection to the datastore is up now (watching or listing).
    pub connected: bool,
    /// The datastore revision delivered so far (0 before the first listing).
    pub revision: i64,
    /// Keys holding a resource bgpd reads.
    pub resources: usize,
    /// Complete listings taken (1 after the initial sync; more after compactions or a
    /// lost history).
    pub listings: u64,
    /// Change batches delivered.
    pub batches: u64,
    /// Connection or watch failures so far.
    pub failures: u64,
    /// The last failure (kept after recovery, with its time).
    pub last_error: Option<SourceProblem>,
    /// Keys whose value did not decode (taken as absent), most recent last.
    pub bad_values: Vec<BadValue>,
}

impl DatastoreStatus {
    /// The status of a source that has not connected yet.
    pub fn new(datastore: impl Into<String>) -> DatastoreStatus {
        DatastoreStatus {
            datastore: datastore.into(),
            state: SyncState::WaitingForDatastore,
            connected: false,
            revision: 0,
            resources: 0,
            listings: 0,
            batches: 0,
            failures: 0,
            last_error: None,
            bad_values: Vec::new(),
        }
    }

    /// Records a failure.
    pub fn failed(&mut self, message: impl Into<String>) {
        self.connected = false;
        self.failures += 1;
        self.last_error = Some(SourceProblem::now(message));
    }

    /// Records undecodable values, keeping the last [`BAD_VALUES_KEPT`].
    pub fn add_bad_values(&mut self, bad: Vec<BadValue>) {
        for b in bad {
            self.bad_values.retain(|x| x.key != b.key);
            self.bad_values.push(b);
        }
        let excess = self.bad_values.len().saturating_sub(BAD_VALUES_KEPT);
        self.bad_values.drain(..excess);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_and_bad_values_are_bounded() {
        let mut s = DatastoreStatus::new("etcdv3 http://127.0.0.1:2379");
        s.connected = true;
        s.failed("connection refused");
        assert!(!s.connected);
        assert_eq!(s.failures, 1);
        assert_eq!(
            s.last_error.as_ref().map(|e| e.message.as_str()),
            Some("connection refused")
        );
        for i in 0..40 {
            s.add_bad_values(vec![BadValue {
                key: format!("k{}", i % 20),
                message: format!("bad {i}"),
            }]);
        }
        assert_eq!(s.bad_values.len(), BAD_VALUES_KEPT);
        assert_eq!(
            s.bad_values.last().map(|b| b.message.as_str()),
            Some("bad 39")
        );
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["state"], "waiting-for-datastore");
    }
}
