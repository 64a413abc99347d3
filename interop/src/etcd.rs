//! Real etcd v3 (Debian's `etcd-server`) for datastore tests: one member or a cluster,
//! either all inside one namespace the test created (each member on that namespace's
//! loopback, its own ports, [`EtcdCluster::start`]) or each member in a namespace of its
//! own on an address of a segment the test created, reachable from the node namespaces
//! on that segment ([`EtcdCluster::start_on`]); plain or with TLS and client certificate
//! authentication (a throwaway CA made with `openssl` for the test), members killed,
//! stopped and started again, and `etcdctl` (Debian's `etcd-client`) to write keys, read
//! the revision and compact.
//!
//! Nothing listens in the root namespace: a client reaches the members from inside a
//! namespace the test created ([`Netns::enter`], or [`EtcdCluster::etcdctl`], which runs
//! in the first member's namespace). Members are stopped by PID when the cluster is
//! dropped; their data directories live in the test directory.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::cmd;
use crate::context::Test;
use crate::error::{Error, Result};
use crate::netns::Netns;
use crate::process::Process;
use crate::wait::wait_until;

/// The binaries an etcd test needs.
pub const ETCD_BINARIES: [&str; 3] = ["etcd", "etcdctl", "openssl"];

/// First member's client port; member `i` uses `CLIENT_PORT + i` (peer: `PEER_PORT + i`).
const CLIENT_PORT: u16 = 23790;
const PEER_PORT: u16 = 23800;

/// The files of a test CA: what the members and a client present.
#[derive(Clone, Debug)]
pub struct EtcdTls {
    /// The CA certificate both sides trust.
    pub ca_cert: PathBuf,
    /// The members' certificate (IP SAN 127.0.0.1) and key.
    pub server_cert: PathBuf,
    /// The members' key.
    pub server_key: PathBuf,
    /// A client certificate signed by the CA, and its key.
    pub client_cert: PathBuf,
    /// The client key.
    pub client_key: PathBuf,
}

impl EtcdTls {
    /// Makes a CA, a server certificate for 127.0.0.1 and a client certificate in `dir`
    /// (EC P-256 keys, valid one day).
    pub fn generate(dir: &Path) -> Result<EtcdTls> {
        std::fs::create_dir_all(dir).map_err(|e| Error::io("creating", dir, e))?;
        let p = |n: &str| dir.join(n);
        let s = |p: &Path| p.to_string_lossy().into_owned();
        let tls = EtcdTls {
            ca_cert: p("ca.pem"),
            server_cert: p("server.pem"),
            server_key: p("server-key.pem"),
            client_cert: p("client.pem"),
            client_key: p("client-key.pem"),
        };
        let ca_key = p("ca-key.pem");
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let mut args = vec!["req", "-x509", "-nodes", "-days", "1"];
        args.extend_from_slice(&ec);
        let (ca_key_s, ca_cert_s) = (s(&ca_key), s(&tls.ca_cert));
        args.extend_from_slice(&[
            "-keyout",
            &ca_key_s,
            "-out",
            &ca_cert_s,
            "-subj",
            "/CN=interop etcd test CA",
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
        ]);
        cmd::run("openssl", &args)?;
        let leaf = |name: &str, cert: &Path, key: &Path, ext: &str| -> Result<()> {
            let csr = dir.join(format!("{name}.csr"));
            let extfile = dir.join(format!("{name}.ext"));
            std::fs::write(&extfile, ext).map_err(|e| Error::io("writing", &extfile, e))?;
            let (csr_s, key_s, cert_s, ext_s) = (s(&csr), s(key), s(cert), s(&extfile));
            let subj = format!("/CN={name}");
            let mut args = vec!["req", "-new", "-nodes"];
            args.extend_from_slice(&ec);
            args.extend_from_slice(&["-keyout", &key_s, "-out", &csr_s, "-subj", &subj]);
            cmd::run("openssl", &args)?;
            cmd::run(
                "openssl",
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr_s,
                    "-CA",
                    &ca_cert_s,
                    "-CAkey",
                    &ca_key_s,
                    "-CAcreateserial",
                    "-days",
                    "1",
                    "-out",
                    &cert_s,
                    "-extfile",
                    &ext_s,
                ],
            )?;
            Ok(())
        };
        leaf(
            "etcd-server",
            &tls.server_cert,
            &tls.server_key,
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=serverAuth,clientAuth\nsubjectAltName=IP:127.0.0.1\n",
        )?;
        leaf(
            "bgpd",
            &tls.client_cert,
            &tls.client_key,
            "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n\
             extendedKeyUsage=clientAuth\n",
        )?;
        Ok(tls)
    }
}

/// One member.
#[derive(Debug)]
struct Member {
    name: String,
    ns: Arc<Netns>,
    client_url: String,
    data_dir: PathBuf,
    args: Vec<String>,
    process: Option<Process>,
    starts: u32,
}

/// A running etcd cluster; members stopped on drop.
#[derive(Debug)]
pub struct EtcdCluster {
    ns: Arc<Netns>,
    members: Vec<Member>,
    tls: Option<EtcdTls>,
}

/// Where a member runs: its namespace and the address it listens on there.
#[derive(Debug, Clone)]
pub struct Placement {
    /// The member's namespace.
    pub ns: Arc<Netns>,
    /// The address its client and peer URLs use (127.0.0.1, or an address on a segment).
    pub address: IpAddr,
}

impl EtcdCluster {
    /// Starts `size` members in `ns`, on its loopback (plain HTTP, or TLS with client
    /// certificate authentication when `tls` is given) and waits until the cluster
    /// answers.
    pub fn start(
        test: &Test,
        ns: &Arc<Netns>,
        size: usize,
        tls: Option<EtcdTls>,
    ) -> Result<EtcdCluster> {
        let placements: Vec<Placement> = (0..size)
            .map(|_| Placement {
                ns: Arc::clone(ns),
                address: IpAddr::V4(Ipv4Addr::LOCALHOST),
            })
            .collect();
        EtcdCluster::start_on(test, &placements, tls)
    }

    /// Starts one member per placement (member `i` in `placements[i]`; TLS certificates
    /// name 127.0.0.1 only, so TLS needs loopback placements) and waits until the
    /// cluster answers.
    pub fn start_on(
        test: &Test,
        placements: &[Placement],
        tls: Option<EtcdTls>,
    ) -> Result<EtcdCluster> {
        let Some(first) = placements.first() else {
            return Err(Error::Invalid("an etcd cluster needs a member".into()));
        };
        let ns = Arc::clone(&first.ns);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let url = |scheme: &str, at: IpAddr, port: u16| match at {
            IpAddr::V4(a) => format!("{scheme}://{a}:{port}"),
            IpAddr::V6(a) => format!("{scheme}://[{a}]:{port}"),
        };
        let initial: Vec<String> = placements
            .iter()
            .enumerate()
            .map(|(i, p)| format!("m{i}={}", url("http", p.address, peer_port(i))))
            .collect();
        let token = format!("interop-{}", test.tag());
        let mut members = Vec::new();
        for (i, placement) in placements.iter().enumerate() {
            let name = format!("m{i}");
            let data_dir = test.subdir(&format!("etcd-{name}"))?;
            // etcd wants its data directory private.
            {
                use std::os::unix::fs::PermissionsExt as _;
                std::fs::set_permissions(&data_dir, std::fs::Permissions::from_mode(0o700))
                    .map_err(|e| Error::io("chmod", &data_dir, e))?;
            }
            let client = url(scheme, placement.address, client_port(i));
            let peer = url("http", placement.address, peer_port(i));
            let mut args = vec![
                format!("--name={name}"),
                format!("--data-dir={}", data_dir.display()),
                format!("--listen-client-urls={client}"),
                format!("--advertise-client-urls={client}"),
                format!("--listen-peer-urls={peer}"),
                format!("--initial-advertise-peer-urls={peer}"),
                format!("--initial-cluster={}", initial.join(",")),
                "--initial-cluster-state=new".into(),
                format!("--initial-cluster-token={token}"),
                // Quick elections on an idle loopback (defaults: 100 ms / 1000 ms).
                "--heartbeat-interval=50".into(),
                "--election-timeout=500".into(),
                "--logger=zap".into(),
                "--log-level=warn".into(),
            ];
            if let Some(t) = &tls {
                args.extend([
                    format!("--cert-file={}", t.server_cert.display()),
                    format!("--key-file={}", t.server_key.display()),
                    "--client-cert-auth".into(),
                    format!("--trusted-ca-file={}", t.ca_cert.display()),
                ]);
            }
            members.push(Member {
                name,
                ns: Arc::clone(&placement.ns),
                client_url: client,
                data_dir,
                args,
                process: None,
                starts: 0,
            });
        }
        let mut c = EtcdCluster { ns, members, tls };
        for i in 0..placements.len() {
            c.start_member(test, i)?;
        }
        c.wait_healthy()?;
        Ok(c)
    }

    /// The namespace of the first member (where [`EtcdCluster::etcdctl`] runs).
    pub fn netns(&self) -> &Arc<Netns> {
        &self.ns
    }

    /// Every member's client URL.
    pub fn endpoints(&self) -> Vec<String> {
        self.members.iter().map(|m| m.client_url.clone()).collect()
    }

    /// The certificates, when the cluster runs TLS.
    pub fn tls(&self) -> Option<&EtcdTls> {
        self.tls.as_ref()
    }

    /// Number of members.
    pub fn size(&self) -> usize {
        self.members.len()
    }

    fn member(&mut self, i: usize) -> Result<&mut Member> {
        self.members
            .get_mut(i)
            .ok_or_else(|| Error::Invalid(format!("no etcd member {i}")))
    }

    /// Starts member `i` (again: same name, data directory and flags; a member that
    /// ran before rejoins with its data).
    pub fn start_member(&mut self, test: &Test, i: usize) -> Result<()> {
        let m = self.member(i)?;
        let ns = Arc::clone(&m.ns);
        if m.process.is_some() {
            return Err(Error::Invalid(format!("etcd member {} runs", m.name)));
        }
        let etcd = cmd::require_binary("etcd")?;
        let label = if m.starts == 0 {
            format!("etcd-{}", m.name)
        } else {
            format!("etcd-{}-start{}", m.name, m.starts)
        };
        let args: Vec<&str> = m.args.iter().map(String::as_str).collect();
        m.process = Some(Process::spawn(test, &ns, &label, &etcd, &args, &[])?);
        m.starts += 1;
        Ok(())
    }

    /// Kills member `i` with SIGKILL (a crash: no goodbye to the others or clients).
    pub fn kill_member(&mut self, i: usize) -> Result<()> {
        let m = self.member(i)?;
        let mut p = m
            .process
            .take()
            .ok_or_else(|| Error::Invalid(format!("etcd member {} is not running", m.name)))?;
        p.signal(libc::SIGKILL)?;
        p.stop()?;
        Ok(())
    }

    /// Stops member `i` with SIGTERM.
    pub fn stop_member(&mut self, i: usize) -> Result<()> {
        let m = self.member(i)?;
        if let Some(mut p) = m.process.take() {
            p.stop()?;
        }
        Ok(())
    }

    /// The data directory of member `i`.
    pub fn data_dir(&self, i: usize) -> Option<&Path> {
        self.members.get(i).map(|m| m.data_dir.as_path())
    }

    /// Endpoints of the running members.
    fn running_endpoints(&self) -> Vec<String> {
        let all = self.endpoints();
        self.members
            .iter()
            .zip(all)
            .filter(|(m, _)| m.process.is_some())
            .map(|(_, e)| e)
            .collect()
    }

    /// Runs `etcdctl` in the namespace against the running members (TLS flags added).
    pub fn etcdctl(&self, args: &[&str]) -> Result<String> {
        self.etcdctl_at(&self.running_endpoints(), args)
    }

    fn etcdctl_at(&self, endpoints: &[String], args: &[&str]) -> Result<String> {
        let endpoints = format!("--endpoints={}", endpoints.join(","));
        let mut full: Vec<String> = vec![endpoints, "--command-timeout=5s".into()];
        if let Some(t) = &self.tls {
            full.push(format!("--cacert={}", t.ca_cert.display()));
            full.push(format!("--cert={}", t.client_cert.display()));
            full.push(format!("--key={}", t.client_key.display()));
        }
        full.extend(args.iter().map(|a| a.to_string()));
        let refs: Vec<&str> = full.iter().map(String::as_str).collect();
        let mut with_env = vec!["ETCDCTL_API=3", "etcdctl"];
        with_env.extend_from_slice(&refs);
        self.ns.exec("env", &with_env)
    }

    /// Waits until every running member reports healthy.
    pub fn wait_healthy(&self) -> Result<()> {
        let endpoints = self.running_endpoints();
        wait_until("etcd members healthy", Duration::from_secs(30), || {
            for e in &endpoints {
                self.etcdctl_at(std::slice::from_ref(e), &["endpoint", "health"])?;
            }
            Ok(Some(()))
        })
    }

    /// Writes `key` = `value`; returns the revision of the write.
    pub fn put(&self, key: &str, value: &str) -> Result<i64> {
        let out = self.etcdctl(&["put", key, value, "-w", "json"])?;
        header_revision(&out)
    }

    /// Deletes `key`; returns the revision of the delete.
    pub fn delete(&self, key: &str) -> Result<i64> {
        let out = self.etcdctl(&["del", key, "-w", "json"])?;
        header_revision(&out)
    }

    /// The cluster's current revision.
    pub fn revision(&self) -> Result<i64> {
        let out = self.etcdctl(&["get", "/", "--limit=1", "-w", "json"])?;
        header_revision(&out)
    }

    /// Compacts the history up to `revision` (watches from before it can no longer
    /// resume).
    pub fn compact(&self, revision: i64) -> Result<()> {
        self.etcdctl(&["compact", &revision.to_string(), "--physical"])?;
        Ok(())
    }
}

fn client_port(i: usize) -> u16 {
    CLIENT_PORT + i as u16
}

fn peer_port(i: usize) -> u16 {
    PEER_PORT + i as u16
}

/// `header.revision` of etcdctl's JSON answer.
fn header_revision(json: &str) -> Result<i64> {
    let v: serde_json::Value = serde_json::from_str(json).map_err(|e| Error::Parse {
        what: "etcdctl -w json".into(),
        detail: format!("{e}: {json}"),
    })?;
    v.get("header")
        .and_then(|h| h.get("revision"))
        .and_then(serde_json::Value::as_i64)
        .ok_or_else(|| Error::Parse {
            what: "etcdctl -w json".into(),
            detail: format!("no header.revision in {json}"),
        })
}

impl Drop for EtcdCluster {
    fn drop(&mut self) {
        for m in &mut self.members {
            if let Some(mut p) = m.process.take() {
                if let Err(e) = p.stop() {
                    eprintln!("interop: stopping etcd {}: {e}", m.name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_from_etcdctl_json() {
        let j = r#"{"header":{"cluster_id":1,"member_id":2,"revision":42,"raft_term":3}}"#;
        assert_eq!(header_revision(j).unwrap(), 42);
        assert!(header_revision("{}").is_err());
        assert!(header_revision("OK").is_err());
    }
}
