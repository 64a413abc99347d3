//! The file source: calicoctl-style multi-document YAML (or JSON) files, and directories of
//! them (`*.yaml`, `*.yml`, `*.json`, read recursively in name order). Paths are read in the
//! order given; a resource given twice is taken from the later file, as `calicoctl apply`
//! would leave it.

use std::path::{Path, PathBuf};

use serde::Deserialize;

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
                parse_into(&text, &file.display().to_string(), &mut listing)?;
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

/// Parses the documents of one file into `listing`. `origin` names the file in errors.
pub fn parse_into(text: &str, origin: &str, listing: &mut Listing) -> Result<(), SourceError> {
    for (i, doc) in yaml_serde::Deserializer::from_str(text).enumerate() {
        let at = format!("{origin}: document {}", i + 1);
        let value = serde_json::Value::deserialize(doc).map_err(|e| SourceError::Invalid {
            origin: at.clone(),
            message: e.to_string(),
        })?;
        if value.is_null() {
            continue;
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
