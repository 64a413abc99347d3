//! `bgpd calico render` as a deployment runs it: every Calico scenario's TOML passes
//! `bgpd -c FILE --check` unchanged, the JSON form carries the same keys with every peer
//! resolved, and calico-node's environment (`NODENAME`, `CALICO_ROUTER_ID`) is honoured.
//!
//! (What the rendered configuration means is checked against confd's BIRD configurations
//! by bgp-calico's oracle tests, and bgpd running it against BIRD 1.6 by interop's twins.)

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use bgp_calico::resource::Resource;
use bgp_calico::source::file::FileSource;
use bgp_calico::source::ResourceSource;
use serde_json::Value;
use support::{bgpd_bin, tempdir};

fn data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/data/calico-confd")
}

/// Every `input.yaml` of Calico's scenarios; a later step (`stepN/input.yaml`) is applied
/// on top of its scenario's, so it comes with it.
fn scenario_inputs() -> Vec<Vec<PathBuf>> {
    fn walk(dir: &Path, out: &mut Vec<Vec<PathBuf>>) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .expect("scenario directory")
            .map(|e| e.expect("directory entry").path())
            .collect();
        entries.sort();
        for p in entries {
            if p.is_dir() {
                walk(&p, out);
            } else if p.file_name().is_some_and(|n| n == "input.yaml") {
                let later_step = dir
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("step"));
                match dir.parent() {
                    Some(up) if later_step => out.push(vec![up.join("input.yaml"), p]),
                    _ => out.push(vec![p]),
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(&data().join("mock_data/calicoctl"), &mut out);
    out
}

/// Runs `bgpd calico render` on `inputs` plus kube-master's block affinities, with `env`
/// set and calico-node's own variables cleared first.
fn render_all(inputs: &[PathBuf], extra: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(bgpd_bin());
    cmd.args(["calico", "render"]);
    for i in inputs {
        cmd.arg("--resources").arg(i);
    }
    cmd.arg("--resources")
        .arg(data().join("block-affinities.yaml"))
        .args(extra);
    for k in [
        "NODENAME",
        "CALICO_ROUTER_ID",
        "NAMESPACE",
        "CALICO_ADVERTISE_CLUSTER_IPS",
    ] {
        cmd.env_remove(k);
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("running bgpd calico render")
}

fn render(input: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    render_all(&[input.to_path_buf()], extra, env)
}

fn stdout(o: &Output, what: &str) -> String {
    assert!(
        o.status.success(),
        "{what}: bgpd calico render failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8(o.stdout.clone()).expect("UTF-8 output")
}

/// The node a scenario is rendered for: kube-master, as in Calico's driver, unless the
/// scenario defines other nodes only (then the first of them).
fn scenario_node(inputs: &[PathBuf]) -> String {
    let listing = FileSource::new(inputs.iter().cloned())
        .list()
        .expect("scenario resources load");
    let nodes: Vec<String> = listing
        .resources
        .iter()
        .filter_map(|r| match r {
            Resource::Node(n) => Some(n.metadata.name.clone()),
            _ => None,
        })
        .collect();
    match nodes.iter().find(|n| *n == "kube-master").or(nodes.first()) {
        Some(n) => n.clone(),
        None => "kube-master".into(),
    }
}

fn mesh_input() -> PathBuf {
    data().join("mock_data/calicoctl/mesh/bgp-export/input.yaml")
}

/// calico-node environment Calico's test driver sets for a scenario (directory under
/// `mock_data/calicoctl`).
const DRIVER_ENV: &[(&str, &[(&str, &str)])] = &[(
    "mesh/static-routes-no-ipv4-address",
    &[("CALICO_ROUTER_ID", "10.10.10.10")],
)];

#[test]
fn every_scenario_renders_toml_that_bgpd_loads_unchanged() {
    let dir = tempdir("calico-render");
    let inputs = scenario_inputs();
    assert!(inputs.len() >= 20, "found only {} scenarios", inputs.len());
    let mut loaded = 0;
    for chain in &inputs {
        let what = chain
            .iter()
            .map(|i| i.strip_prefix(data()).unwrap_or(i).display().to_string())
            .collect::<Vec<_>>()
            .join(" + ");
        let node = scenario_node(chain);
        let env = DRIVER_ENV
            .iter()
            .find(|(dir, _)| what.contains(&format!("calicoctl/{dir}/")))
            .map_or(&[][..], |(_, env)| env);
        let o = render_all(chain, &["--node", &node], env);
        let text = stdout(&o, &what);
        let file = dir.path().join(format!("{loaded}.toml"));
        std::fs::write(&file, &text).expect("write rendered TOML");
        let check = Command::new(bgpd_bin())
            .arg("-c")
            .arg(&file)
            .arg("--check")
            .output()
            .expect("running bgpd --check");
        assert!(
            check.status.success(),
            "{what}: bgpd --check refuses the rendered configuration: {}\n{text}",
            String::from_utf8_lossy(&check.stderr)
        );
        loaded += 1;
    }
    assert_eq!(loaded, inputs.len());
}

/// Every key path of `toml` (objects recursively, arrays element by element) is in `json`.
fn keys_covered(toml: &Value, json: &Value, path: &str, missing: &mut Vec<String>) {
    match (toml, json) {
        (Value::Object(t), Value::Object(j)) => {
            for (k, v) in t {
                let p = format!("{path}.{k}");
                match j.get(k) {
                    Some(jv) => keys_covered(v, jv, &p, missing),
                    None => missing.push(p),
                }
            }
        }
        (Value::Array(t), Value::Array(j)) => {
            if t.len() != j.len() {
                missing.push(format!(
                    "{path}: {} elements, JSON has {}",
                    t.len(),
                    j.len()
                ));
            }
            for (i, (tv, jv)) in t.iter().zip(j).enumerate() {
                keys_covered(tv, jv, &format!("{path}[{i}]"), missing);
            }
        }
        (Value::Object(_) | Value::Array(_), _) => missing.push(format!("{path}: shape differs")),
        _ => {}
    }
}

#[test]
fn json_has_the_toml_keys_and_every_peer_resolved() {
    let input = data().join("mock_data/calicoctl/explicit_peering/global/input.yaml");
    let toml_text = stdout(&render(&input, &["--node", "kube-master"], &[]), "toml");
    let json_text = stdout(
        &render(&input, &["--node", "kube-master", "--format", "json"], &[]),
        "json",
    );
    let toml: Value = toml::from_str::<toml::Value>(&toml_text)
        .map(|v| serde_json::to_value(v).expect("TOML as JSON"))
        .expect("rendered TOML parses");
    let json: Value = serde_json::from_str(&json_text).expect("rendered JSON parses");

    let mut missing = Vec::new();
    // Templates are folded into the peers in the JSON form.
    let mut toml_peers = toml.clone();
    if let Value::Object(m) = &mut toml_peers {
        m.remove("templates");
        if let Some(Value::Object(peers)) = m.get_mut("peers") {
            for p in peers.values_mut() {
                if let Value::Object(p) = p {
                    p.remove("template");
                }
            }
        }
    }
    keys_covered(&toml_peers, &json, "", &mut missing);
    assert!(missing.is_empty(), "JSON lacks TOML keys: {missing:?}");

    let peers = json["peers"].as_object().expect("peers object");
    assert!(peers.len() >= 2, "peers: {peers:?}");
    for (name, p) in peers {
        assert_eq!(p["template"], Value::Null, "{name} still names a template");
        for key in [
            "address",
            "remote_as",
            "local_as",
            "port",
            "hold_time",
            "keepalive",
            "families",
            "import",
            "export",
            "next_hop",
            "graceful_restart",
        ] {
            let v = p.get(key).unwrap_or(&Value::Null);
            assert!(!v.is_null(), "peer {name}: {key} is not resolved: {p}");
        }
    }
    assert_eq!(json["templates"], serde_json::json!({}));
}

#[test]
fn nodename_names_the_node_when_no_node_is_given() {
    let input = mesh_input();
    let by_flag = stdout(&render(&input, &["--node", "kube-master"], &[]), "--node");
    let by_env = stdout(
        &render(&input, &[], &[("NODENAME", "kube-master")]),
        "NODENAME",
    );
    assert_eq!(by_flag, by_env);
    // --node wins over NODENAME.
    let both = stdout(
        &render(
            &input,
            &["--node", "kube-master"],
            &[("NODENAME", "kube-node-1")],
        ),
        "both",
    );
    assert_eq!(by_flag, both);

    let neither = render(&input, &[], &[]);
    assert!(!neither.status.success());
    let err = String::from_utf8_lossy(&neither.stderr);
    assert!(err.contains("NODENAME"), "stderr: {err}");
}

fn router_id(toml_text: &str) -> String {
    let v: toml::Value = toml::from_str(toml_text).expect("rendered TOML parses");
    v.get("global")
        .and_then(|g| g.get("router_id"))
        .and_then(|r| r.as_str())
        .expect("global.router_id")
        .to_string()
}

#[test]
fn calico_router_id_sets_or_hashes_the_router_id() {
    let input = mesh_input();
    let node = ["--node", "kube-master"];
    let default = stdout(&render(&input, &node, &[]), "default");
    assert_eq!(router_id(&default), "10.192.0.2");

    let explicit = stdout(
        &render(&input, &node, &[("CALICO_ROUTER_ID", "192.0.2.9")]),
        "address",
    );
    assert_eq!(router_id(&explicit), "192.0.2.9");

    // The first four bytes of SHA-256("kube-master"): 19 4f d4 08.
    let hashed = stdout(
        &render(&input, &node, &[("CALICO_ROUTER_ID", "hash")]),
        "hash",
    );
    assert_eq!(router_id(&hashed), "25.79.212.8");

    let bad = render(&input, &node, &[("CALICO_ROUTER_ID", "not-an-id")]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(err.contains("CALICO_ROUTER_ID"), "stderr: {err}");
}

#[test]
fn verbose_lists_documents_calico_mode_does_not_read() {
    let dir = tempdir("calico-render-verbose");
    let extra = dir.path().join("service.yaml");
    std::fs::write(
        &extra,
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\n\
         spec:\n  clusterIP: 10.101.0.10\n",
    )
    .expect("write service");
    let inputs = [mesh_input(), extra];
    let node = ["--node", "kube-master"];
    let quiet = render_all(&inputs, &node, &[]);
    let loud = render_all(&inputs, &["--node", "kube-master", "--verbose"], &[]);
    assert_eq!(stdout(&quiet, "quiet"), stdout(&loud, "verbose"));
    let err = String::from_utf8_lossy(&loud.stderr);
    assert!(err.contains("Service \"web\" is not read"), "stderr: {err}");
    assert!(!String::from_utf8_lossy(&quiet.stderr).contains("Service"));
}
