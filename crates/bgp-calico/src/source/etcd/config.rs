//! How bgpd reaches Calico's etcd v3 datastore, read the way calico-node reads it
//! (`DATASTORE_TYPE=etcdv3`, `ETCD_ENDPOINTS`, `ETCD_CA_CERT_FILE`, `ETCD_CERT_FILE`,
//! `ETCD_KEY_FILE`, `ETCD_USERNAME`/`ETCD_PASSWORD`, `NODENAME`), or from a `[datastore]`
//! table of bgpd's own configuration file; and which keys it lists and watches.
//!
//! Only the kinds that shape BGP are watched, each under its own prefix, and only this
//! node's block affinities: pod churn (workload endpoints, IPAM assignments) and other
//! nodes' blocks never wake bgpd up.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use crate::resource::etcd::{plural, AFFINITY_PREFIX, RESOURCES_PREFIX};
use crate::resource::Kind;

/// calico-node's default endpoint when `ETCD_ENDPOINTS` is unset.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:2379";

/// Client certificate authentication (all three files, PEM).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsFiles {
    /// The CA that signed the members' certificates (`ETCD_CA_CERT_FILE`).
    pub ca_cert_file: PathBuf,
    /// This client's certificate (`ETCD_CERT_FILE`).
    pub cert_file: PathBuf,
    /// Its private key (`ETCD_KEY_FILE`).
    pub key_file: PathBuf,
}

/// Everything the etcd source needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EtcdConfig {
    /// Member client URLs (`http://` or `https://`), tried in turn and balanced over.
    pub endpoints: Vec<String>,
    /// Client certificates, for `https://` endpoints.
    pub tls: Option<TlsFiles>,
    /// etcd role-based authentication: user and password.
    pub user: Option<(String, String)>,
    /// This node (`NODENAME`): whose block affinities to watch.
    pub node_name: String,
    /// First delay before reconnecting after a failure; doubles up to `retry_max`.
    pub retry_initial: Duration,
    /// Longest delay between reconnection attempts.
    pub retry_max: Duration,
    /// How long one request (a listing page, a connection) may take before it is given up.
    pub request_timeout: Duration,
}

/// Why no etcd configuration could be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EtcdConfigError {
    /// `DATASTORE_TYPE` names another datastore.
    #[error(
        "DATASTORE_TYPE={0:?}: only etcdv3 is supported (the Kubernetes datastore is not yet)"
    )]
    DatastoreType(String),
    /// No node name.
    #[error("no node name: set NODENAME (or give one)")]
    NoNodeName,
    /// An endpoint is not an `http://` or `https://` URL.
    #[error("etcd endpoint {0:?} is not an http:// or https:// URL")]
    Endpoint(String),
    /// Some but not all of the three TLS files are given.
    #[error("TLS needs all of ETCD_CA_CERT_FILE, ETCD_CERT_FILE and ETCD_KEY_FILE (missing {0})")]
    PartialTls(&'static str),
    /// A user without a password, or the reverse.
    #[error("etcd authentication needs both ETCD_USERNAME and ETCD_PASSWORD")]
    PartialUser,
    /// The `[datastore]` table does not parse.
    #[error("[datastore]: {0}")]
    File(String),
}

/// The `[datastore]` table of bgpd's configuration file (same meaning as the variables).
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatastoreFile {
    /// `etcdv3` (the default).
    #[serde(rename = "type")]
    pub datastore_type: Option<String>,
    /// Member client URLs.
    #[serde(default)]
    pub endpoints: Vec<String>,
    /// CA certificate file.
    pub ca_cert_file: Option<PathBuf>,
    /// Client certificate file.
    pub cert_file: Option<PathBuf>,
    /// Client key file.
    pub key_file: Option<PathBuf>,
    /// etcd user.
    pub username: Option<String>,
    /// File holding the etcd user's password (kept out of the configuration).
    pub password_file: Option<PathBuf>,
    /// The node (else `NODENAME`).
    pub node_name: Option<String>,
}

impl EtcdConfig {
    /// calico-node's variables through `get` (e.g. `|k| std::env::var(k).ok()`); `node`
    /// overrides `NODENAME`.
    pub fn from_vars(
        node: Option<String>,
        get: impl Fn(&str) -> Option<String>,
    ) -> Result<EtcdConfig, EtcdConfigError> {
        let var = |k: &str| {
            get(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let file = DatastoreFile {
            datastore_type: var("DATASTORE_TYPE"),
            endpoints: var("ETCD_ENDPOINTS")
                .map(|e| {
                    e.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            ca_cert_file: var("ETCD_CA_CERT_FILE").map(PathBuf::from),
            cert_file: var("ETCD_CERT_FILE").map(PathBuf::from),
            key_file: var("ETCD_KEY_FILE").map(PathBuf::from),
            username: var("ETCD_USERNAME"),
            password_file: None,
            node_name: node.or_else(|| var("NODENAME")),
        };
        let password = var("ETCD_PASSWORD");
        file.resolve(password)
    }

    /// A `[datastore]` table (TOML); the node name falls back to `NODENAME` through `get`,
    /// and a `password_file` is read through `read`.
    pub fn from_file(
        table: &str,
        get: impl Fn(&str) -> Option<String>,
        read: impl Fn(&std::path::Path) -> std::io::Result<String>,
    ) -> Result<EtcdConfig, EtcdConfigError> {
        let mut file: DatastoreFile =
            toml::from_str(table).map_err(|e| EtcdConfigError::File(e.message().to_owned()))?;
        if file.node_name.is_none() {
            file.node_name = get("NODENAME").filter(|n| !n.trim().is_empty());
        }
        let password = match &file.password_file {
            Some(p) => Some(
                read(p)
                    .map_err(|e| EtcdConfigError::File(format!("{}: {e}", p.display())))?
                    .trim_end_matches(['\r', '\n'])
                    .to_owned(),
            ),
            None => None,
        };
        file.resolve(password)
    }

    /// The key prefixes listed and watched: each BGP kind under
    /// `/calico/resources/v3/projectcalico.org/`, and this node's block affinities under
    /// `/calico/ipam/v2/host/<node>/`.
    pub fn prefixes(&self) -> Vec<String> {
        let mut v: Vec<String> = Kind::ALL
            .into_iter()
            .filter_map(plural)
            .map(|p| format!("{RESOURCES_PREFIX}{p}/"))
            .collect();
        v.push(format!("{AFFINITY_PREFIX}{}/", self.node_name));
        v
    }

    /// What the source reads, for logs and `show datastore` (no secrets).
    pub fn describe(&self) -> String {
        format!(
            "etcdv3 {}{}",
            self.endpoints.join(","),
            if self.tls.is_some() {
                " (TLS client certificate)"
            } else {
                ""
            }
        )
    }
}

impl DatastoreFile {
    fn resolve(self, password: Option<String>) -> Result<EtcdConfig, EtcdConfigError> {
        match self.datastore_type.as_deref() {
            None | Some("etcdv3") => {}
            Some(other) => return Err(EtcdConfigError::DatastoreType(other.to_owned())),
        }
        let node_name = self
            .node_name
            .filter(|n| !n.trim().is_empty())
            .ok_or(EtcdConfigError::NoNodeName)?;
        let endpoints = if self.endpoints.is_empty() {
            vec![DEFAULT_ENDPOINT.to_owned()]
        } else {
            self.endpoints
        };
        if let Some(bad) = endpoints
            .iter()
            .find(|e| !(e.starts_with("http://") || e.starts_with("https://")))
        {
            return Err(EtcdConfigError::Endpoint(bad.clone()));
        }
        let tls = match (self.ca_cert_file, self.cert_file, self.key_file) {
            (None, None, None) => None,
            (Some(ca_cert_file), Some(cert_file), Some(key_file)) => Some(TlsFiles {
                ca_cert_file,
                cert_file,
                key_file,
            }),
            (None, _, _) => return Err(EtcdConfigError::PartialTls("ETCD_CA_CERT_FILE")),
            (_, None, _) => return Err(EtcdConfigError::PartialTls("ETCD_CERT_FILE")),
            (_, _, None) => return Err(EtcdConfigError::PartialTls("ETCD_KEY_FILE")),
        };
        let user = match (self.username, password) {
            (None, None) => None,
            (Some(u), Some(p)) => Some((u, p)),
            _ => return Err(EtcdConfigError::PartialUser),
        };
        Ok(EtcdConfig {
            endpoints,
            tls,
            user,
            node_name,
            retry_initial: Duration::from_millis(200),
            retry_max: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| {
            pairs
                .iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    #[test]
    fn calico_node_environment() {
        let c = EtcdConfig::from_vars(
            None,
            vars(&[
                ("DATASTORE_TYPE", "etcdv3"),
                (
                    "ETCD_ENDPOINTS",
                    "https://10.0.0.1:2379, https://10.0.0.2:2379",
                ),
                ("ETCD_CA_CERT_FILE", "/calico-secrets/etcd-ca"),
                ("ETCD_CERT_FILE", "/calico-secrets/etcd-cert"),
                ("ETCD_KEY_FILE", "/calico-secrets/etcd-key"),
                ("NODENAME", "node-1"),
            ]),
        )
        .unwrap();
        assert_eq!(
            c.endpoints,
            ["https://10.0.0.1:2379", "https://10.0.0.2:2379"]
        );
        assert_eq!(
            c.tls.as_ref().map(|t| t.key_file.clone()),
            Some(PathBuf::from("/calico-secrets/etcd-key"))
        );
        assert_eq!(c.node_name, "node-1");
        assert_eq!(c.user, None);
        let p = c.prefixes();
        assert!(p.contains(&"/calico/resources/v3/projectcalico.org/bgppeers/".to_owned()));
        assert_eq!(
            p.last().map(String::as_str),
            Some("/calico/ipam/v2/host/node-1/")
        );
        assert_eq!(p.len(), 6, "five kinds and this node's affinities: {p:?}");
        assert!(c.describe().contains("TLS"));

        let d = EtcdConfig::from_vars(Some("n2".into()), vars(&[("NODENAME", "n1")])).unwrap();
        assert_eq!(d.endpoints, [DEFAULT_ENDPOINT]);
        assert_eq!(d.node_name, "n2");
    }

    #[test]
    fn refusals() {
        let e = |pairs: &[(&str, &str)]| EtcdConfig::from_vars(None, vars(pairs)).unwrap_err();
        assert_eq!(
            e(&[("DATASTORE_TYPE", "kubernetes"), ("NODENAME", "n")]),
            EtcdConfigError::DatastoreType("kubernetes".into())
        );
        assert_eq!(e(&[]), EtcdConfigError::NoNodeName);
        assert_eq!(
            e(&[("NODENAME", "n"), ("ETCD_ENDPOINTS", "10.0.0.1:2379")]),
            EtcdConfigError::Endpoint("10.0.0.1:2379".into())
        );
        assert_eq!(
            e(&[
                ("NODENAME", "n"),
                ("ETCD_CERT_FILE", "c"),
                ("ETCD_KEY_FILE", "k")
            ]),
            EtcdConfigError::PartialTls("ETCD_CA_CERT_FILE")
        );
        assert_eq!(
            e(&[("NODENAME", "n"), ("ETCD_USERNAME", "u")]),
            EtcdConfigError::PartialUser
        );
    }

    #[test]
    fn configuration_file_table() {
        let c = EtcdConfig::from_file(
            "endpoints = [\"http://127.0.0.1:2379\"]\nusername = \"calico\"\n\
             password_file = \"/etc/bgpd/etcd-password\"\n",
            vars(&[("NODENAME", "n9")]),
            |p| {
                assert_eq!(p, std::path::Path::new("/etc/bgpd/etcd-password"));
                Ok("s3cret\n".into())
            },
        )
        .unwrap();
        assert_eq!(c.node_name, "n9");
        assert_eq!(c.user, Some(("calico".into(), "s3cret".into())));
        assert!(!c.describe().contains("s3cret"));
        let e = EtcdConfig::from_file("endpoint = []", vars(&[]), |_| Ok(String::new()));
        assert!(
            matches!(e, Err(EtcdConfigError::File(ref m)) if m.contains("unknown field")),
            "{e:?}"
        );
    }
}
