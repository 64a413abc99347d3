//! The file source: calicoctl-style multi-document YAML (or JSON) files, and directories of
//! them (`*.yaml`, `*.yml`, `*.json`, read recursively in name order). Paths are read in the
//! order given; a resource given twice is taken from the later file, as `calicoctl apply`
//! would leave it.
//!
//! calicoctl and kubectl read YAML 1.1, where the plain words `yes`, `on`, `y` (and their
//! negatives) are booleans, which become `"true"`/`"false"` in a string field such as a
//! label; YAML 1.2 readers keep the word. Label values of YAML files are brought to what
//! calicoctl would store. The YAML reader gives no way to tell a quoted `"yes"` from a
//! plain one, so a quoted one is read the same way (write `"true"`). JSON files (`*.json`)
//! are read as they are.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use super::{Ignored, Listing, ResourceSource, SourceError};
use crate::resource::{decode, Decoded};

/// Reads resources from files and directories.
#[derive(Clone, Debug)]
pub struct FileSource {
    paths: Vec<PathBuf>,
}

impl FileSource {
    /// A source reading `paths` (files or directories), in this order.
    pub fn new(paths: impl IntoIterator<Item = impl Into<PathBuf>>) -> FileSource {
        FileSource {
            paths: paths.into_iter().map(Into::into).collect(),
        }
    }
}

impl ResourceSource for FileSource {
    fn describe(&self) -> String {
        let v: Vec<String> = self.paths.iter().map(|p| p.display().to_string()).collect();
        v.join(", ")
    }

    fn list(&mut self) -> Result<Listing, SourceError> {
        let mut listing = Listing::default();
        for p in &self.paths {
            for file in files_under(p)? {
                let text = std::fs::read_to_string(&file).map_err(|source| SourceError::Io {
                    path: file.clone(),
                    source,
                })?;
                let origin = file.display().to_string();
                if file.extension().is_some_and(|x| x == "json") {
                    parse_json_into(&text, &origin, &mut listing)?;
                } else {
                    parse_into(&text, &origin, &mut listing)?;
                }
            }
        }
        Ok(listing)
    }
}

/// The files a path stands for: itself, or the resource files under a directory.
fn files_under(path: &Path) -> Result<Vec<PathBuf>, SourceError> {
    let io = |source| SourceError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for e in entries {
        let hidden = e
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if e.is_dir() {
            out.extend(files_under(&e)?);
        } else if e
            .extension()
            .and_then(|x| x.to_str())
            .is_some_and(|x| matches!(x, "yaml" | "yml" | "json"))
        {
            out.push(e);
        }
    }
    Ok(out)
}

/// A YAML 1.1 boolean word as calicoctl stores it in a string field.
fn yaml11_bool(s: &str) -> Option<&'static str> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" | "True" | "TRUE" => Some("true"),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" | "False" | "FALSE" => Some("false"),
        _ => None,
    }
}

/// Label values of a document (and of a `List`'s items) as YAML 1.1 reads them.
fn yaml11_labels(doc: &mut Value) {
    if let Some(Value::Array(items)) = doc.get_mut("items") {
        items.iter_mut().for_each(yaml11_labels);
    }
    let labels = doc
        .get_mut("metadata")
        .and_then(|m| m.get_mut("labels"))
        .and_then(Value::as_object_mut);
    for v in labels.into_iter().flat_map(|l| l.values_mut()) {
        if let Some(b) = v.as_str().and_then(yaml11_bool) {
            *v = Value::String(b.to_owned());
        }
    }
}

/// Parses the YAML documents of one file into `listing`. `origin` names the file in errors.
pub fn parse_into(text: &str, origin: &str, listing: &mut Listing) -> Result<(), SourceError> {
    for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let at = format!("{origin}: document {}", i + 1);
        let mut value = Value::deserialize(doc).map_err(|e| SourceError::Invalid {
            origin: at.clone(),
            message: e.to_string(),
        })?;
        yaml11_labels(&mut value);
        add(value, at, listing)?;
    }
    Ok(())
}

/// Parses the JSON values of one file (one or more, one after the other) into `listing`.
pub fn parse_json_into(text: &str, origin: &str, listing: &mut Listing) -> Result<(), SourceError> {
    for (i, value) in serde_json::Deserializer::from_str(text)
        .into_iter::<Value>()
        .enumerate()
    {
        let at = format!("{origin}: document {}", i + 1);
        let value = value.map_err(|e| SourceError::Invalid {
            origin: at.clone(),
            message: e.to_string(),
        })?;
        add(value, at, listing)?;
    }
    Ok(())
}

/// Decodes one document into `listing`.
fn add(value: Value, at: String, listing: &mut Listing) -> Result<(), SourceError> {
    if value.is_null() {
        return Ok(());
    }
    match decode(value).map_err(|e| SourceError::Invalid {
        origin: at.clone(),
        message: e.to_string(),
    })? {
        Decoded::Resources(r) => listing.resources.extend(r),
        Decoded::Ignored {
            api_version,
            kind,
            name,
        } => listing.ignored.push(Ignored {
            origin: at,
            api_version,
            kind,
            name,
        }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::Kind;

    #[test]
    fn multi_document_files_and_directories() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sub")).unwrap();
        std::fs::write(
            dir.path().join("a.yaml"),
            "kind: Node\napiVersion: projectcalico.org/v3\nmetadata:\n  name: n1\nspec:\n  bgp:\n    ipv4Address: 10.0.0.1/24\n---\n---\nkind: Service\napiVersion: v1\nmetadata:\n  name: s\n",
        )
        .unwrap();
        std::fs::write(
            dir.path().join("sub/b.json"),
            r#"{"kind":"IPPool","apiVersion":"projectcalico.org/v3","metadata":{"name":"p"},"spec":{"cidr":"10.1.0.0/16"}}"#,
        )
        .unwrap();
        std::fs::write(dir.path().join("notes.txt"), "not read").unwrap();
        let l = FileSource::new([dir.path()]).list().unwrap();
        let kinds: Vec<Kind> = l.resources.iter().map(|r| r.kind()).collect();
        assert_eq!(kinds, [Kind::Node, Kind::IpPool]);
        assert_eq!(l.ignored.len(), 1);
        assert_eq!(l.ignored[0].kind, "Service");
        assert!(
            l.ignored[0].origin.ends_with("a.yaml: document 3"),
            "{:?}",
            l.ignored
        );
    }

    #[test]
    fn yaml_1_1_label_words_in_yaml_only() {
        let node = |labels: &str| {
            format!(
                "kind: NodeList\napiVersion: projectcalico.org/v3\nitems:\n- kind: Node\n  \
                 apiVersion: projectcalico.org/v3\n  metadata:\n    name: a\n    \
                 labels: {labels}\n"
            )
        };
        let label = |l: &Listing, k: &str| match l.resources.first() {
            Some(crate::resource::Resource::Node(n)) => n.metadata.labels.get(k).cloned(),
            _ => None,
        };
        let mut l = Listing::default();
        parse_into(
            &node("{a: yes, b: Off, c: true, d: 7, e: yesno}"),
            "f.yaml",
            &mut l,
        )
        .unwrap();
        assert_eq!(label(&l, "a").as_deref(), Some("true"));
        assert_eq!(label(&l, "b").as_deref(), Some("false"));
        assert_eq!(label(&l, "c").as_deref(), Some("true"));
        assert_eq!(label(&l, "d").as_deref(), Some("7"));
        assert_eq!(label(&l, "e").as_deref(), Some("yesno"));
        let mut l = Listing::default();
        parse_json_into(
            r#"{"kind":"Node","apiVersion":"projectcalico.org/v3","metadata":{"name":"a","labels":{"a":"yes"}}}
               {"kind":"Service","apiVersion":"v1","metadata":{"name":"s"}}"#,
            "f.json",
            &mut l,
        )
        .unwrap();
        assert_eq!(label(&l, "a").as_deref(), Some("yes"));
        assert_eq!(l.ignored.len(), 1);
        assert!(l.ignored[0].origin.ends_with("f.json: document 2"));
    }

    #[test]
    fn errors_say_where() {
        let mut l = Listing::default();
        let e = parse_into("kind: Node\n---\nfoo: [", "f.yaml", &mut l).unwrap_err();
        assert!(e.to_string().starts_with("f.yaml: document 1"), "{e}");
        let e = parse_into(
            "kind: Node\napiVersion: projectcalico.org/v3\nmetadata: {name: a}\n---\nfoo: [",
            "f.yaml",
            &mut l,
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("f.yaml: document 2"), "{e}");
        assert!(FileSource::new(["/nonexistent/x.yaml"]).list().is_err());
    }
}
