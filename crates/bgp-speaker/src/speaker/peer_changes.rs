//! Changes of a few of the configuration's peers, known to the caller
//! ([`Speaker::apply_peer_changes`]): what [`Speaker::apply_config`] does for a new
//! configuration that differs from the running one in those peers only, without
//! comparing, checking or copying the peers that stay. A follower of a datastore that
//! knows which sessions a change touched (Calico mode) pays for those sessions alone.
//!
//! The rules are those of a whole configuration: all or nothing (every check is made
//! before anything changes), the peers added through the API are not the configuration's
//! to change (see [`Owner`](super::Owner)), and no two peers share an address, interface
//! and port: a new or moved peer is checked against the peers the listeners' index holds
//! at its address, not against every peer.
//!
//! [`Speaker::apply_config`]: crate::Speaker::apply_config

use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use bgp_node::graceful::Farewell;
use tracing::info;

use super::{deconfigured, ownership, Owner, Speaker, SpeakerError, State};
use crate::config::{diff, ConfigDiff, PeerChange, PeerConfig};

impl Speaker {
    /// Applies known changes of the configuration's peers: the `removed` stop (Cease /
    /// Peer De-configured), the `upserted` start or take their new settings (restarting
    /// the session only for a session parameter, as [`Speaker::apply_config`] does), in
    /// time that grows with the changes, not with the running peers. A removed name that
    /// is not running is nothing to do; a name may not be both removed and upserted.
    /// Returns what was applied, the [`ConfigDiff`] a whole configuration with these
    /// peers would have given.
    ///
    /// Like the API's own peer changes ([`Speaker::add_peer`] and the others), this does
    /// not publish a new [`Speaker::config_updates`] value: that watch carries what
    /// lives outside the peers (control socket, metrics endpoint, drop-in directory),
    /// which these changes leave alone; [`Speaker::config`] has the peers.
    pub async fn apply_peer_changes(
        &self,
        removed: &[String],
        upserted: Vec<PeerConfig>,
    ) -> Result<ConfigDiff, SpeakerError> {
        let mut st = self.inner.state.lock().await;
        if st.stopped {
            return Err(SpeakerError::Stopped);
        }
        // Everything that can fail is checked first.
        let mut touched: BTreeSet<&str> = BTreeSet::new();
        for name in removed {
            if st.api.owner(name) == Owner::Api {
                return Err(SpeakerError::ApiPeer(name.clone()));
            }
            touched.insert(name);
        }
        for p in &upserted {
            if st.api.owner(&p.name) == Owner::Api {
                return Err(SpeakerError::ApiPeer(p.name.clone()));
            }
            if !touched.insert(&p.name) {
                return Err(SpeakerError::InvalidPeer {
                    name: p.name.clone(),
                    reason: "given twice in one change".into(),
                });
            }
            Self::check_peer(p, &st.config.policies)?;
        }
        self.check_new_endpoints(&st, &touched, &upserted)?;
        let mut gone: Vec<String> = removed
            .iter()
            .filter(|n| st.config.peers.contains_key(*n))
            .cloned()
            .collect();
        gone.sort();
        let mut added = Vec::new();
        let mut changed: Vec<(PeerConfig, PeerConfig, PeerChange)> = Vec::new();
        let no_policy_changed = BTreeSet::new();
        for p in upserted {
            match st.config.peers.get(&p.name) {
                None => added.push(p),
                Some(old) => {
                    let c = diff::diff_peer(old, &p, &no_policy_changed);
                    if !c.is_empty() {
                        changed.push((old.clone(), p, c));
                    }
                }
            }
        }
        added.sort_by(|a, b| a.name.cmp(&b.name));
        let bfd = gone
            .iter()
            .filter_map(|n| st.config.peers.get(n))
            .chain(added.iter())
            .chain(changed.iter().flat_map(|(old, new, _)| [old, new]))
            .any(|p| p.bfd.is_some());

        // Then applied in apply_config's order: removed, changed, added.
        let mut d = ConfigDiff {
            peers_removed: gone,
            peers_added: added.iter().map(|p| p.name.clone()).collect(),
            ..ConfigDiff::default()
        };
        self.stop_peers(&mut st, &d.peers_removed, deconfigured(), |_| {
            Farewell::HardReset
        })
        .await?;
        for (old, new, change) in changed {
            let name = new.name.clone();
            self.apply_peer_change(&mut st, old, new, &change).await?;
            d.peers_changed.insert(name, change);
        }
        for p in added {
            self.spawn_peer(&mut st, p).await?;
        }
        st.loaded = Instant::now();
        // The BFD task is told the whole list of BFD peers: only when one of these is.
        if bfd {
            self.sync_bfd(&st).await;
        }
        info!(changes = %d, "configuration applied");
        Ok(d)
    }

    /// Refuses an upserted peer at the address, interface and port of another one: of
    /// the upserted, or of the running peers that stay (those the listeners' index holds
    /// at its address, other than the `touched`).
    fn check_new_endpoints(
        &self,
        st: &State,
        touched: &BTreeSet<&str>,
        upserted: &[PeerConfig],
    ) -> Result<(), SpeakerError> {
        let index = self.inner.index.read().unwrap_or_else(|e| e.into_inner());
        let mut seen = HashMap::new();
        for p in upserted {
            let at = p.endpoint();
            if let Some(other) = seen.insert(at.clone(), &p.name) {
                return Err(ownership::same_endpoint(p, other));
            }
            let staying = index
                .get(&p.address.addr)
                .into_iter()
                .flatten()
                .map(|(n, _)| n)
                .filter(|n| !touched.contains(n.as_str()));
            for n in staying {
                if st.peers.get(n).is_some_and(|h| h.config.endpoint() == at) {
                    return Err(ownership::same_endpoint(p, n));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;
    use std::path::Path;

    use crate::config::{self, diff, Config, PeerConfig};
    use crate::{Speaker, SpeakerError, SpeakerOptions};

    fn running() -> Config {
        config::from_str(
            "[global]\nasn = 64512\nrouter_id = \"10.22.0.1\"\nlisten = []\n\
             [global.control]\nenabled = false\n\
             [policies.all]\ndefault = \"accept\"\n\
             [templates.t]\nremote_as = 64512\npassive = true\nimport = [\"all\"]\nexport = [\"all\"]\n\
             [peers.a]\ntemplate = \"t\"\naddress = \"127.0.22.2\"\n\
             [peers.b]\ntemplate = \"t\"\naddress = \"127.0.22.3\"\n\
             [peers.c]\ntemplate = \"t\"\naddress = \"127.0.22.4\"\n",
            Path::new("test.toml"),
        )
        .expect("config")
    }

    fn peer(name: &str, addr: &str) -> PeerConfig {
        let addr: IpAddr = addr.parse().expect("address");
        let mut p = PeerConfig::new(name, addr, 64512);
        p.passive = true;
        p.import = vec!["all".into()];
        p.export = vec!["all".into()];
        p
    }

    #[tokio::test]
    async fn peer_changes_apply_as_the_whole_configuration_would() {
        let start = running();
        let partial = Speaker::start(start.clone(), SpeakerOptions::default())
            .await
            .expect("speaker");
        let whole = Speaker::start(start.clone(), SpeakerOptions::default())
            .await
            .expect("speaker");
        // a removed, b's hold time changed (a session parameter), c's description (a
        // runtime setting), d added.
        let mut b = start.peers["b"].clone();
        b.hold_time = 30;
        b.keepalive = 10;
        let mut c = start.peers["c"].clone();
        c.description = Some("changed".into());
        let d = peer("d", "127.0.22.5");
        let mut want = start.clone();
        want.peers.remove("a");
        for p in [&b, &c, &d] {
            want.peers.insert(p.name.clone(), p.clone());
        }
        let applied = partial
            .apply_peer_changes(&["a".into()], vec![d.clone(), c.clone(), b.clone()])
            .await
            .expect("applied");
        assert_eq!(applied, diff::diff(&start, &want));
        assert_eq!(
            whole.apply_config(want.clone()).await.expect("whole"),
            applied
        );
        assert_eq!(partial.config().await, want);
        // The running peers (their tasks), not only the configuration, are the same.
        let running = |s: &Speaker| {
            let s = s.clone();
            async move {
                let peers = s.peers().await.expect("peers");
                peers
                    .into_iter()
                    .map(|p| (p.config, p.owner))
                    .collect::<Vec<_>>()
            }
        };
        assert_eq!(running(&partial).await, running(&whole).await);

        // Unchanged peers, and removals of peers that do not run: nothing to do.
        let none = partial
            .apply_peer_changes(&["a".into()], vec![c.clone()])
            .await
            .expect("nothing");
        assert!(none.is_empty(), "{none}");

        // All or nothing: e is fine, f would share c's address and port; nothing applies.
        let e = peer("e", "127.0.22.6");
        let f = peer("f", "127.0.22.4");
        let refused = partial
            .apply_peer_changes(&[], vec![e.clone(), f.clone()])
            .await;
        assert!(
            matches!(&refused, Err(SpeakerError::InvalidPeer { name, reason }) if name == "f" && reason.contains("\"c\"")),
            "{refused:?}"
        );
        assert_eq!(partial.config().await, want);
        // Removing c in the same change frees its address and port.
        let moved = partial
            .apply_peer_changes(&["c".into()], vec![f.clone()])
            .await
            .expect("moved");
        assert_eq!(
            (moved.peers_removed, moved.peers_added),
            (vec!["c".to_owned()], vec!["f".to_owned()])
        );
        let mut twice = peer("g", "127.0.22.7");
        let refused = partial
            .apply_peer_changes(&[], vec![twice.clone(), twice.clone()])
            .await;
        assert!(
            matches!(refused, Err(SpeakerError::InvalidPeer { .. })),
            "{refused:?}"
        );
        twice.export = vec!["nowhere".into()];
        let refused = partial.apply_peer_changes(&[], vec![twice]).await;
        assert!(
            matches!(&refused, Err(SpeakerError::UnknownPolicy(n)) if n == "nowhere"),
            "{refused:?}"
        );

        // The API's peers are not the configuration's to change.
        let api = peer("api", "127.0.22.8");
        partial.add_peer(api.clone()).await.expect("api peer");
        let before = partial.config().await;
        for refused in [
            partial.apply_peer_changes(&["api".into()], vec![]).await,
            partial
                .apply_peer_changes(&[], vec![peer("api", "127.0.22.9")])
                .await,
        ] {
            assert!(
                matches!(&refused, Err(SpeakerError::ApiPeer(n)) if n == "api"),
                "{refused:?}"
            );
        }
        let at_api = partial
            .apply_peer_changes(&[], vec![peer("h", "127.0.22.8")])
            .await;
        assert!(
            matches!(at_api, Err(SpeakerError::InvalidPeer { .. })),
            "{at_api:?}"
        );
        assert_eq!(partial.config().await, before);
        assert_eq!(before.peers.get("api"), Some(&api));

        partial.shutdown("test over").await;
        whole.shutdown("test over").await;
    }
}
