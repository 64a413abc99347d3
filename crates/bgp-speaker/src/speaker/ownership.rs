//! Who owns a peer or an originated route: the configuration, or the API.
//!
//! A speaker takes peers and originated routes from two places: the configuration
//! ([`Speaker::start`], then [`Speaker::apply_config`] on every reload) and its API
//! ([`Speaker::add_peer`], [`Speaker::advertise`]). Each owns what it added:
//!
//! - applying a configuration changes only the configuration's peers and routes; those
//!   added through the API stay as they are, whatever the new configuration holds;
//! - the API changes only its own: [`Speaker::update_peer`], [`Speaker::remove_peer`] and
//!   [`Speaker::withdraw`] refuse a peer or route of the configuration (change the
//!   configuration instead);
//! - a name or prefix has one owner: adding through the API a peer or route the
//!   configuration has, or a configuration defining one the API added, is refused, and so
//!   is a peer at the address and port of another (the two could not be told apart);
//! - policies belong to the configuration; a peer added through the API names them, and a
//!   configuration that drops a policy such a peer uses is refused.
//!
//! Operator actions ([`Speaker::peer_action`]: reset, disable, enable) apply to any peer.
//!
//! [`Speaker::start`]: crate::Speaker::start
//! [`Speaker::apply_config`]: crate::Speaker::apply_config
//! [`Speaker::add_peer`]: crate::Speaker::add_peer
//! [`Speaker::advertise`]: crate::Speaker::advertise
//! [`Speaker::update_peer`]: crate::Speaker::update_peer
//! [`Speaker::remove_peer`]: crate::Speaker::remove_peer
//! [`Speaker::withdraw`]: crate::Speaker::withdraw
//! [`Speaker::peer_action`]: crate::Speaker::peer_action

use std::collections::{BTreeSet, HashMap};

use ipnet::IpNet;

use super::SpeakerError;
use crate::config::{Config, PeerConfig};

/// Who added a peer.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Owner {
    /// The configuration ([`Speaker::start`](crate::Speaker::start),
    /// [`Speaker::apply_config`](crate::Speaker::apply_config)).
    Config,
    /// The API ([`Speaker::add_peer`](crate::Speaker::add_peer)).
    Api,
}

/// The peers and routes added through the API (the running configuration holds them,
/// with the configuration's own).
#[derive(Debug, Default)]
pub(super) struct ApiOwned {
    peers: BTreeSet<String>,
    routes: BTreeSet<IpNet>,
}

impl ApiOwned {
    pub(super) fn owner(&self, peer: &str) -> Owner {
        if self.peers.contains(peer) {
            Owner::Api
        } else {
            Owner::Config
        }
    }

    pub(super) fn add_peer(&mut self, name: &str) {
        self.peers.insert(name.to_owned());
    }

    pub(super) fn remove_peer(&mut self, name: &str) {
        self.peers.remove(name);
    }

    /// Refuses an API change of a peer the configuration owns.
    pub(super) fn check_peer(&self, name: &str) -> Result<(), SpeakerError> {
        match self.owner(name) {
            Owner::Api => Ok(()),
            Owner::Config => Err(SpeakerError::ConfiguredPeer(name.to_owned())),
        }
    }

    /// Records an API route, refusing one the running configuration originates.
    pub(super) fn add_route(
        &mut self,
        running: &Config,
        prefix: IpNet,
    ) -> Result<(), SpeakerError> {
        self.check_route(running, prefix)?;
        self.routes.insert(prefix);
        Ok(())
    }

    /// Forgets an API route, refusing one of the configuration.
    pub(super) fn remove_route(
        &mut self,
        running: &Config,
        prefix: IpNet,
    ) -> Result<(), SpeakerError> {
        self.check_route(running, prefix)?;
        self.routes.remove(&prefix);
        Ok(())
    }

    /// Refuses an API change of a route the running configuration originates.
    fn check_route(&self, running: &Config, prefix: IpNet) -> Result<(), SpeakerError> {
        if running.originate.contains_key(&prefix) && !self.routes.contains(&prefix) {
            return Err(SpeakerError::ConfiguredRoute(prefix));
        }
        Ok(())
    }

    /// The configuration to run: `new` with what the API owns in `running`. Refuses a
    /// `new` that defines a peer or route the API added.
    pub(super) fn merge(&self, running: &Config, mut new: Config) -> Result<Config, SpeakerError> {
        for name in &self.peers {
            if new.peers.contains_key(name) {
                return Err(SpeakerError::ApiPeer(name.clone()));
            }
            if let Some(p) = running.peers.get(name) {
                new.peers.insert(name.clone(), p.clone());
            }
        }
        for prefix in &self.routes {
            if new.originate.contains_key(prefix) {
                return Err(SpeakerError::ApiRoute(*prefix));
            }
            if let Some(o) = running.originate.get(prefix) {
                new.originate.insert(*prefix, o.clone());
            }
        }
        Ok(new)
    }
}

/// Refuses two of `peers` with one address, interface and port: a connection could not
/// be told to be one's or the other's (the configuration loader refuses the same within
/// the files, pointing at the line).
pub(super) fn check_endpoints<'a>(
    peers: impl IntoIterator<Item = &'a PeerConfig>,
) -> Result<(), SpeakerError> {
    let mut seen = HashMap::new();
    for p in peers {
        if let Some(other) = seen.insert(p.endpoint(), &p.name) {
            return Err(same_endpoint(p, other));
        }
    }
    Ok(())
}

/// Refuses `p`, at the address, interface and port of peer `other`.
pub(super) fn same_endpoint(p: &PeerConfig, other: &str) -> SpeakerError {
    SpeakerError::InvalidPeer {
        name: p.name.clone(),
        reason: format!(
            "peer {other:?} has the same address {} and port {}",
            p.address, p.port
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{self, Originate};

    fn config(text: &str) -> Config {
        let head = "[global]\nasn = 64512\nrouter_id = \"10.0.0.1\"\n";
        config::from_str(&format!("{head}{text}"), std::path::Path::new("t.toml")).unwrap()
    }

    #[test]
    fn the_api_keeps_its_own_and_touches_nothing_else() {
        let mut running = config(
            "[peers.file]\naddress = \"10.0.0.2\"\nremote_as = 64512\n\
             [[originate]]\nprefix = \"10.1.0.0/24\"\n",
        );
        let mut api = ApiOwned::default();
        let added = PeerConfig::new("api", "10.0.0.3".parse().unwrap(), 64513);
        running.peers.insert("api".into(), added.clone());
        api.add_peer("api");
        let route: IpNet = "10.2.0.0/24".parse().unwrap();
        api.add_route(&running, route).unwrap();
        running.originate.insert(route, Originate::new(route));

        assert_eq!(api.owner("api"), Owner::Api);
        assert_eq!(api.owner("file"), Owner::Config);
        assert!(
            matches!(api.check_peer("file"), Err(SpeakerError::ConfiguredPeer(n)) if n == "file")
        );
        let file_route: IpNet = "10.1.0.0/24".parse().unwrap();
        assert!(matches!(
            api.add_route(&running, file_route),
            Err(SpeakerError::ConfiguredRoute(p)) if p == file_route
        ));
        assert!(api.remove_route(&running, file_route).is_err());

        // A reload without them keeps the API's peer and route, and drops the file's.
        let merged = api.merge(&running, config("")).unwrap();
        assert_eq!(merged.peers.keys().collect::<Vec<_>>(), ["api"]);
        assert_eq!(merged.peers["api"], added);
        assert_eq!(merged.originate.keys().collect::<Vec<_>>(), [&route]);

        // One owner per name, prefix and endpoint.
        let clash = api.merge(
            &running,
            config("[peers.api]\naddress = \"10.0.0.9\"\nremote_as = 64512\n"),
        );
        assert!(matches!(clash, Err(SpeakerError::ApiPeer(n)) if n == "api"));
        let clash = api.merge(
            &running,
            config("[[originate]]\nprefix = \"10.2.0.0/24\"\n"),
        );
        assert!(matches!(clash, Err(SpeakerError::ApiRoute(p)) if p == route));
        let merged = api
            .merge(
                &running,
                config("[peers.other]\naddress = \"10.0.0.3\"\nremote_as = 64512\n"),
            )
            .unwrap();
        let same_address = check_endpoints(merged.peers.values());
        assert!(
            matches!(&same_address, Err(SpeakerError::InvalidPeer { name, .. }) if name == "other"),
            "{same_address:?}"
        );
        let mut other_port = PeerConfig::new("other", "10.0.0.3".parse().unwrap(), 64512);
        other_port.port = 1179;
        assert!(check_endpoints(running.peers.values().chain([&other_port])).is_ok());
    }
}
