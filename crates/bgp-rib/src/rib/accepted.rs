//! The accepted-route journal: each change to a peer's routes as its import policy left
//! them (the post-policy Adj-RIB-In of RFC 7854 2), for a monitoring feed (BMP Route
//! Monitoring with the L flag).
//!
//! Off by default, and then free: the store's path operations test one `Option`. When
//! on ([`Rib::watch_accepted`]), the store records a path's accepted attributes when it
//! is added or replaced, or its withdrawal when an accepted path goes or is refused
//! (also after a policy change, `import::reimport`); refused paths that stay refused
//! record nothing. The caller drains the journal ([`Rib::take_accepted`]) after each
//! batch of input; it holds what happened since, at most one entry per path change.

use bgp_proto::{Family, Nlri};
use ipnet::IpNet;

use super::config::PeerId;
use super::state::Rib;
use crate::attrs::{AttrStore, Attrs};
use crate::table::{flag, Path};

/// One change of a peer's accepted routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedChange {
    /// The peer the route came from.
    pub peer: PeerId,
    /// The route, with its received path identifier (0 without ADD-PATH).
    pub nlri: Nlri,
    /// Its attributes after import policy; `None`: withdrawn or now refused.
    pub attrs: Option<Attrs>,
}

/// The journal (`None`: not recording).
#[derive(Debug, Default)]
pub(crate) struct Journal(Option<Vec<AcceptedChange>>);

/// The path is accepted by import policy and the loop checks.
fn accepted(x: &Path) -> bool {
    !x.has(flag::REJECTED | flag::LOOP)
}

impl Journal {
    /// Records `now` (a path stored at `prefix`), which replaced a path that was
    /// accepted or not (`was_accepted`; false for a new path).
    pub fn stored(&mut self, attrs: &AttrStore, prefix: IpNet, now: &Path, was_accepted: bool) {
        let Some(j) = &mut self.0 else { return };
        let post = accepted(now).then(|| attrs.arc(now.modified.unwrap_or(now.attrs)));
        if post.is_none() && !was_accepted {
            return;
        }
        j.push(change(prefix, now, post));
    }

    /// Records the removal of `gone`, a path at `prefix`.
    pub fn removed(&mut self, prefix: IpNet, gone: &Path) {
        let Some(j) = &mut self.0 else { return };
        if accepted(gone) {
            j.push(change(prefix, gone, None));
        }
    }
}

fn change(prefix: IpNet, x: &Path, attrs: Option<Attrs>) -> AcceptedChange {
    AcceptedChange {
        peer: PeerId(x.peer()),
        nlri: Nlri {
            path_id: Some(x.path_id),
            prefix,
        },
        attrs,
    }
}

impl Rib {
    /// Starts or stops recording changes of accepted routes (stopping forgets what was
    /// not taken).
    pub fn watch_accepted(&mut self, on: bool) {
        let j = &mut self.store.accepted.0;
        match (on, j.is_some()) {
            (true, false) => *j = Some(Vec::new()),
            (false, true) => *j = None,
            _ => {}
        }
    }

    /// The changes of accepted routes since the last call, oldest first (none when not
    /// watching, [`Rib::watch_accepted`]).
    pub fn take_accepted(&mut self) -> Vec<AcceptedChange> {
        self.store
            .accepted
            .0
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    }

    /// A peer's accepted routes of both unicast families with their attributes after
    /// import policy (the post-policy Adj-RIB-In), sorted, path identifiers as received.
    pub fn accepted_routes(&self, id: PeerId) -> Vec<(Nlri, Attrs)> {
        let mut v = Vec::new();
        for f in [Family::IPV4_UNICAST, Family::IPV6_UNICAST] {
            v.extend(self.adj_rib_in_with(id, f, |x, a| {
                accepted(x).then(|| a.arc(x.modified.unwrap_or(x.attrs)))
            }));
        }
        v
    }
}
