//! The derived configuration as text: TOML that `bgpd -c` runs unchanged, or JSON with the
//! same keys and every peer fully resolved (no templates, every default filled in), for
//! tools. The TOML is checked by bgpd's own loader before it is returned, so a rendered
//! configuration always loads.

use std::collections::BTreeMap;
use std::path::Path;

use bgp_speaker::config::{self, explicit::explicit, file::FileConfig};

use crate::derive::config::{peers_config, to_config, RenderOptions};
use crate::derive::peerings::Peering;
use crate::derive::{derive, DeriveError, NodeBgp, NodeEnv};
use crate::store::ResourceStore;

/// Output format of `bgpd calico render`.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Format {
    /// bgpd's TOML.
    Toml,
    /// The same keys in JSON, fully resolved.
    Json,
}

/// Why nothing was rendered.
#[derive(Debug, thiserror::Error)]
pub enum RenderError {
    /// The resources do not give a configuration.
    #[error(transparent)]
    Derive(#[from] DeriveError),
    /// The configuration could not be written as TOML.
    #[error("cannot write the configuration as TOML: {0}")]
    Toml(#[from] toml::ser::Error),
    /// bgpd's loader refuses what was rendered (a bug: please report it).
    #[error("the rendered configuration does not load: {0}")]
    Load(#[from] config::ConfigError),
    /// The configuration could not be written as JSON.
    #[error("cannot write the configuration as JSON: {0}")]
    Json(#[from] serde_json::Error),
}

/// A node's configuration in both forms.
#[derive(Debug)]
pub struct Rendered {
    /// What was derived.
    pub node: NodeBgp,
    /// The TOML text (with a header naming the node and listing warnings).
    pub toml: String,
    /// The configuration as bgpd resolves it.
    pub config: config::Config,
}

impl Rendered {
    /// The fully resolved JSON form.
    pub fn json(&self) -> Result<String, RenderError> {
        let mut s = serde_json::to_string_pretty(&explicit(&self.config))?;
        s.push('\n');
        Ok(s)
    }

    /// The text in `format`.
    pub fn text(&self, format: Format) -> Result<String, RenderError> {
        match format {
            Format::Toml => Ok(self.toml.clone()),
            Format::Json => self.json(),
        }
    }
}

/// Derives and renders node `env.node_name`'s configuration.
pub fn render(
    store: &ResourceStore,
    env: &NodeEnv,
    options: &RenderOptions,
) -> Result<Rendered, RenderError> {
    render_node(derive(store, env)?, options)
}

/// The running configuration of an already derived node (a
/// [`Follower`](crate::follow::Follower)'s), resolved by bgpd's loader straight from the
/// file form: the same configuration [`render_node`] loads back from its TOML, without
/// writing and parsing the text, so a datastore change costs the resolution only.
pub fn node_config(node: &NodeBgp, options: &RenderOptions) -> Result<config::Config, RenderError> {
    let file: FileConfig = to_config(node, options)?;
    Ok(config::from_file(&file, Path::new("calico-derived.toml"))?)
}

/// The peers of `peerings` (sessions of `node`) as [`node_config`] resolves them, without
/// resolving the node's other sessions: what a datastore change that touched only these
/// sessions ([`Change::Sessions`](crate::follow::Change::Sessions)) needs, at a cost
/// proportional to them. A peering of a family the node does not run has no peer, as in
/// [`node_config`].
pub fn peer_configs(
    node: &NodeBgp,
    peerings: &[Peering],
    options: &RenderOptions,
) -> Result<BTreeMap<String, config::PeerConfig>, RenderError> {
    let file: FileConfig = peers_config(node, peerings, options)?;
    Ok(config::from_file(&file, Path::new("calico-derived.toml"))?.peers)
}

/// Renders an already derived configuration (a [`Follower`](crate::follow::Follower)'s).
pub fn render_node(node: NodeBgp, options: &RenderOptions) -> Result<Rendered, RenderError> {
    let file: FileConfig = to_config(&node, options)?;
    let mut text = format!(
        "# bgpd configuration of Calico node {:?}, derived from Calico's resources\n\
         # (bgpd calico render). Regenerate rather than edit.\n",
        node.node_name
    );
    for w in &node.warnings {
        text.push_str(&format!("# warning: {}\n", w.replace('\n', " ")));
    }
    text.push('\n');
    text.push_str(&toml::to_string(&file)?);
    let config = config::from_str(&text, Path::new("calico-render.toml"))?;
    Ok(Rendered {
        node,
        toml: text,
        config,
    })
}
