//! Every field of every resource in Calico's confd scenarios is either modelled (it survives
//! a decode and re-encode under the same name) or one bgpd deliberately does not read, so
//! a misspelt field name in the model cannot silently drop a setting.

use std::path::Path;

use bgp_calico::resource::{decode, Decoded, Resource};
use serde::Deserialize;
use serde_json::Value;

/// Fields that do not shape BGP.
const NOT_READ: &[&str] = &[
    "spec.natOutgoing",
    "spec.blockSize",
    "spec.nodeSelector@IPPool",
    "spec.orchRefs",
];

fn spec_json(r: &Resource) -> Value {
    let v = match r {
        Resource::BgpConfiguration(o) => serde_json::to_value(&o.spec),
        Resource::Node(o) => serde_json::to_value(&o.spec),
        Resource::BgpPeer(o) => serde_json::to_value(&o.spec),
        Resource::IpPool(o) => serde_json::to_value(&o.spec),
        Resource::BgpFilter(o) => serde_json::to_value(&o.spec),
        Resource::BlockAffinity(o) => serde_json::to_value(&o.spec),
        Resource::Secret(o) => serde_json::to_value(&o.spec),
    };
    v.unwrap_or(Value::Null)
}

/// Key paths of `input` missing from `output`.
fn missing(input: &Value, output: &Value, path: &str, kind: &str, out: &mut Vec<String>) {
    match (input, output) {
        (Value::Object(i), Value::Object(o)) => {
            for (k, v) in i {
                let p = format!("{path}.{k}");
                if NOT_READ.contains(&p.as_str())
                    || NOT_READ.contains(&format!("{p}@{kind}").as_str())
                {
                    continue;
                }
                match o.get(k) {
                    Some(ov) => missing(v, ov, &p, kind, out),
                    None => out.push(format!("{kind} {p}")),
                }
            }
        }
        (Value::Array(i), Value::Array(o)) => {
            for (a, b) in i.iter().zip(o) {
                missing(a, b, &format!("{path}[]"), kind, out);
            }
        }
        _ => {}
    }
}

fn walk(dir: &Path, files: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("data dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, files);
        } else if p.file_name().and_then(|n| n.to_str()) == Some("input.yaml") {
            files.push(p);
        }
    }
}

#[test]
fn every_field_of_the_scenarios_is_modelled() {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/calico-confd/mock_data");
    let mut files = Vec::new();
    walk(&root, &mut files);
    assert!(files.len() > 50, "{} input files", files.len());
    let mut gaps = Vec::new();
    let mut decoded = 0;
    for f in files {
        let text = std::fs::read_to_string(&f).expect("readable");
        for doc in yaml_serde::Deserializer::from_str(&text) {
            let v = Value::deserialize(doc).expect("YAML");
            if v.is_null() {
                continue;
            }
            let kind = v
                .get("kind")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned();
            match decode(v.clone()).unwrap_or_else(|e| panic!("{}: {e}", f.display())) {
                Decoded::Resources(rs) => {
                    for r in rs {
                        decoded += 1;
                        let input = v.get("spec").cloned().unwrap_or(Value::Null);
                        missing(&input, &spec_json(&r), "spec", &kind, &mut gaps);
                    }
                }
                Decoded::Ignored { .. } => {}
            }
        }
    }
    gaps.sort();
    gaps.dedup();
    assert!(decoded > 200, "{decoded} resources");
    assert!(gaps.is_empty(), "fields not modelled: {gaps:#?}");
}
