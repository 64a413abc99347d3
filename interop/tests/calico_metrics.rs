//! The metrics endpoint in Calico mode: `bgpd calico run` turns it on from
//! `BGPD_METRICS_LISTEN` (calico-node's pod spec) or from `[metrics]` beside `[datastore]`
//! in its `--config` file, since the configuration derived from the datastore has none.
//!
//! Two nodes in one namespace the test creates with a real etcd member (Debian's
//! etcd-server), each on its own loopback address, one configured each way; they mesh
//! from the datastore, and each endpoint is scraped (curl inside the namespace) for the
//! session with the other node.

use std::sync::Arc;
use std::time::Duration;

use interop::bgpd::bgpd_binary;
use interop::etcd::{EtcdCluster, ETCD_BINARIES};
use interop::{run_test, wait_for, Error, Netns, Process, Result, Test};

const NODES: &str = "/calico/resources/v3/projectcalico.org/nodes/";
const BGP_CONFIGURATIONS: &str = "/calico/resources/v3/projectcalico.org/bgpconfigurations/";
/// Generous bound for the sessions to come up (a broken setup must not hang).
const CONVERGE: Duration = Duration::from_secs(60);

fn address(i: u8) -> String {
    format!("127.0.0.{}", 20 + i)
}

/// Node `i` in the datastore, on its own loopback address.
fn put_node(c: &EtcdCluster, i: u8) -> Result<i64> {
    c.put(
        &format!("{NODES}n{i}"),
        &format!(
            r#"{{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{{"name":"n{i}"}},"spec":{{"bgp":{{"ipv4Address":"{}/8"}}}}}}"#,
            address(i)
        ),
    )
}

/// Starts `bgpd calico run` for node `i` with `args` and the variables `env` (besides
/// the node's name and the etcd endpoints).
fn start(
    t: &Test,
    ns: &Arc<Netns>,
    c: &EtcdCluster,
    i: u8,
    args: &[&str],
    env: &[(&str, &str)],
) -> Result<Process> {
    let bin = bgpd_binary().ok_or_else(|| Error::Invalid("bgpd not built".into()))?;
    let dir = t.subdir(&format!("n{i}"))?;
    let socket = dir.join("bgpd.sock").display().to_string();
    let endpoints = c.endpoints().join(",");
    let name = format!("n{i}");
    let mut all = vec![
        "calico",
        "run",
        "--control-socket",
        &socket,
        "--bird-socket",
        "",
        "--bird6-socket",
        "",
    ];
    all.extend_from_slice(args);
    let mut vars = vec![
        ("DATASTORE_TYPE", "etcdv3"),
        ("ETCD_ENDPOINTS", endpoints.as_str()),
        ("NODENAME", name.as_str()),
        ("BGPD_LOG", "info"),
        ("NO_COLOR", "1"),
    ];
    vars.extend_from_slice(env);
    Process::spawn(t, ns, &format!("bgpd-n{i}"), &bin, &all, &vars)
}

/// `GET /metrics` from inside the namespace.
fn scrape(ns: &Netns, endpoint: &str) -> Result<String> {
    ns.exec(
        "curl",
        &[
            "-sS",
            "--max-time",
            "10",
            &format!("http://{endpoint}/metrics"),
        ],
    )
}

/// Waits until `endpoint` reports the session with node `other` Established.
fn wait_peer_up(ns: &Netns, endpoint: &str, other: u8) -> Result<String> {
    let series = format!(
        "bgpd_peer_up{{peer=\"Mesh_{}\",neighbor=\"{}\"}} 1",
        address(other).replace('.', "_"),
        address(other)
    );
    let mut last = String::new();
    wait_for(
        &format!("{series} at {endpoint}"),
        CONVERGE,
        || match scrape(ns, endpoint) {
            Ok(text) if text.contains(&series) => {
                last = text;
                Ok(Ok(()))
            }
            Ok(text) => Ok(Err(text
                .lines()
                .filter(|l| l.starts_with("bgpd_peer_up"))
                .collect())),
            Err(e) => Ok(Err(e.to_string())),
        },
    )?;
    Ok(last)
}

#[test]
fn calico_run_serves_metrics_from_the_environment_or_its_file() {
    let mut binaries: Vec<String> = ETCD_BINARIES.iter().map(|s| s.to_string()).collect();
    binaries.push("curl".into());
    binaries.push(bgpd_binary().map_or_else(
        || "bgpd (cargo build -p bgpd)".to_owned(),
        |p| p.display().to_string(),
    ));
    run_test("calico_metrics", &binaries, |t: &Test| {
        let ns = Netns::new(t, "calico-metrics")?;
        let c = EtcdCluster::start(t, &ns, 1, None)?;
        c.put(
            &format!("{BGP_CONFIGURATIONS}default"),
            r#"{"kind":"BGPConfiguration","apiVersion":"projectcalico.org/v3","metadata":{"name":"default"},"spec":{"bindMode":"NodeIP"}}"#,
        )?;
        put_node(&c, 1)?;
        put_node(&c, 2)?;

        // n1: the variable calico-node's pod spec would set.
        let e1 = format!("{}:9179", address(1));
        let _n1 = start(t, &ns, &c, 1, &[], &[("BGPD_METRICS_LISTEN", e1.as_str())])?;
        // n2: `[metrics]` beside `[datastore]` in its file.
        let e2 = format!("{}:9179", address(2));
        let file = t.write(
            "n2/calico.toml",
            &format!(
                "[datastore]\nendpoints = {:?}\nnode_name = \"n2\"\n[metrics]\nlisten = \"{e2}\"\n",
                c.endpoints()
            ),
        )?;
        let f = file.display().to_string();
        let _n2 = start(t, &ns, &c, 2, &["--config", &f], &[])?;

        for (endpoint, other) in [(&e1, 2), (&e2, 1)] {
            let text = wait_peer_up(&ns, endpoint, other)?;
            for want in [
                "bgpd_up 1",
                "bgpd_peer_keepalives_received_total{",
                "bgpd_rib_prefixes{family=\"ipv4-unicast\"}",
            ] {
                if !text.contains(want) {
                    return Err(Error::Invalid(format!(
                        "{endpoint}: no {want:?} in\n{text}"
                    )));
                }
            }
        }
        Ok(())
    });
}
