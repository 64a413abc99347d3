//! Reading a configuration from TOML files: the main file plus the drop-in directory,
//! merged, templates resolved, defaults applied and every rule checked (check.rs), with
//! errors at file:line:column.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{IpAddr, SocketAddr};
use std::ops::Range;
use std::path::{Path, PathBuf};

use bgp_proto::Family;
use toml::Spanned;

use super::file::{self, FileConfig, GracefulRestartFile, PeerFile};
use super::{
    check, control, default_family, default_listen, metrics, monitoring, secrecy, Config,
    ConfigError, GlobalConfig, GracefulRestartConfig, MaxPrefixes, Originate, PeerConfig,
    PolicyDef, Source, BGP_PORT, DEFAULT_ADD_PATH_RECEIVE_LIMIT, DEFAULT_CONNECT_RETRY,
    DEFAULT_HOLD_TIME, DEFAULT_MAX_PATHS,
};

/// A peer or template entry with the file it came from.
struct Entry<'a> {
    src: &'a Source,
    name: &'a Spanned<String>,
    peer: &'a PeerFile,
}

/// Loads a configuration: the main file, then every `*.toml` in the drop-in directory in
/// name order. The first error found (see [`load_all`] for all of them).
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    load_all(path).map_err(first)
}

/// The first of the errors [`load_all`] found (there is always one).
fn first(errors: Vec<ConfigError>) -> ConfigError {
    errors
        .into_iter()
        .next()
        .unwrap_or_else(|| ConfigError::Invalid("invalid configuration".into()))
}

/// Loads a configuration as [`load`] does, but reports every error it finds, in file
/// order, rather than the first: a file that cannot be read or parsed stops its own
/// reading (TOML syntax errors come one per file); every rule broken by what could be
/// read is reported. `bgpd --check` shows them all.
pub fn load_all(path: &Path) -> Result<Config, Vec<ConfigError>> {
    let main = read_source(path).map_err(|e| vec![e])?;
    let main_file = parse_checked(&main).map_err(|e| vec![e])?;
    let Some(global) = &main_file.global else {
        return Err(vec![ConfigError::File {
            path: path.to_owned(),
            message: "missing [global] section".into(),
        }]);
    };
    let mut errors = Vec::new();
    let mut drop_ins = Vec::new();
    if let Some(dir) = &global.get_ref().include_dir {
        let dir = path.parent().unwrap_or(Path::new(".")).join(dir);
        match list_drop_ins(&dir) {
            Ok(paths) => {
                for p in paths {
                    match read_source(&p) {
                        Ok(src) => drop_ins.push(src),
                        Err(e) => errors.push(e),
                    }
                }
            }
            Err(e) => errors.push(e),
        }
    }
    let mut parsed = Vec::with_capacity(drop_ins.len());
    for src in &drop_ins {
        match parse_checked(src) {
            Ok(f) => {
                if let Some(g) = &f.global {
                    errors.push(ConfigError::at(
                        src,
                        g.span(),
                        "[global] is only allowed in the main configuration file",
                    ));
                }
                parsed.push((src, f));
            }
            Err(e) => errors.push(e),
        }
    }
    let mut files = vec![(&main, &main_file)];
    files.extend(parsed.iter().map(|(src, f)| (*src, f)));
    let config = resolve(path, &files, &mut errors);
    // A template shared by several peers reports its error once.
    let mut seen = std::collections::HashSet::new();
    errors.retain(|e| seen.insert(e.to_string()));
    match config {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(errors),
    }
}

/// Parses and resolves a configuration from a string, as if read from `path` (used for
/// error messages and to resolve a relative include directory). The include directory
/// is not read.
pub fn from_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let src = Source {
        path: path.to_owned(),
        text: text.to_owned(),
        meta: None,
    };
    let f = parse_file(&src)?;
    resolve_one(&src, &f)
}

/// Resolves a configuration built in code in the file's form (a renderer's, such as Calico
/// mode's derivation), as [`from_str`] does once it has parsed: templates expanded,
/// defaults filled, every rule checked. Errors name `path` (line 1: there is no text to
/// point into). No text is written or parsed, so the cost is that of the resolution.
pub fn from_file(file: &FileConfig, path: &Path) -> Result<Config, ConfigError> {
    let src = Source {
        path: path.to_owned(),
        text: String::new(),
        meta: None,
    };
    resolve_one(&src, file)
}

/// One main file without drop-ins, resolved.
fn resolve_one(src: &Source, f: &FileConfig) -> Result<Config, ConfigError> {
    if f.global.is_none() {
        return Err(ConfigError::File {
            path: src.path.clone(),
            message: "missing [global] section".into(),
        });
    }
    let mut errors = Vec::new();
    match resolve(&src.path, &[(src, f)], &mut errors) {
        Some(c) if errors.is_empty() => Ok(c),
        _ => Err(first(errors)),
    }
}

fn read_source(path: &Path) -> Result<Source, ConfigError> {
    use std::io::Read;
    let io = |source| ConfigError::Io {
        path: path.to_owned(),
        source,
    };
    let mut file = std::fs::File::open(path).map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    let mut text = String::new();
    file.read_to_string(&mut text).map_err(io)?;
    Ok(Source {
        path: path.to_owned(),
        text,
        meta: Some(meta),
    })
}

/// Parses a file read from disk, checking the file's ownership and mode when it holds
/// passwords ([`secrecy`]).
fn parse_checked(src: &Source) -> Result<FileConfig, ConfigError> {
    let f = parse_file(src)?;
    if let Some(meta) = &src.meta {
        if secrecy::holds_passwords(&f) {
            secrecy::check(src, meta)?;
        }
    }
    Ok(f)
}

/// The drop-in files of a directory, `*.toml` only, sorted by name. A missing directory
/// is an empty one, so a renderer may create it later.
pub fn list_drop_ins(dir: &Path) -> Result<Vec<PathBuf>, ConfigError> {
    let rd = match std::fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Io {
                path: dir.to_owned(),
                source,
            })
        }
    };
    let mut out = Vec::new();
    for ent in rd {
        let ent = ent.map_err(|source| ConfigError::Io {
            path: dir.to_owned(),
            source,
        })?;
        let p = ent.path();
        let hidden = p
            .file_name()
            .and_then(|n| n.to_str())
            .is_none_or(|n| n.starts_with('.'));
        if !hidden && p.extension().is_some_and(|e| e == "toml") && p.is_file() {
            out.push(p);
        }
    }
    out.sort();
    Ok(out)
}

fn parse_file(src: &Source) -> Result<FileConfig, ConfigError> {
    toml::from_str::<FileConfig>(&src.text).map_err(|e| match e.span() {
        Some(span) => ConfigError::at(src, span, e.message().trim_end()),
        None => ConfigError::File {
            path: src.path.clone(),
            message: e.message().trim_end().to_owned(),
        },
    })
}

/// Merges the parsed files, expands templates and validates, adding every error found
/// to `errors`. `None` when no configuration could be built at all.
fn resolve(
    main_path: &Path,
    files: &[(&Source, &FileConfig)],
    errors: &mut Vec<ConfigError>,
) -> Option<Config> {
    let Some(&(main_src, main)) = files.first() else {
        errors.push(ConfigError::File {
            path: main_path.to_owned(),
            message: "no configuration file".into(),
        });
        return None;
    };
    let Some(gspan) = &main.global else {
        errors.push(ConfigError::File {
            path: main_path.to_owned(),
            message: "missing [global] section".into(),
        });
        return None;
    };
    let global = resolve_global(main_src, gspan, main_path, errors);

    // Gather templates, peers, policies and originated routes across files, refusing
    // duplicates with the position of the second definition.
    let mut templates: HashMap<&str, Entry<'_>> = HashMap::new();
    let mut peers: BTreeMap<&str, Entry<'_>> = BTreeMap::new();
    let mut policies = BTreeMap::new();
    let mut originate = BTreeMap::new();
    for &(src, f) in files {
        for (name, peer) in &f.templates {
            if templates.contains_key(name.get_ref().as_str()) {
                errors.push(ConfigError::at(
                    src,
                    name.span(),
                    format!("template {:?} is defined twice", name.get_ref()),
                ));
                continue;
            }
            templates.insert(name.get_ref(), Entry { src, name, peer });
        }
        for (name, peer) in &f.peers {
            if peers.contains_key(name.get_ref().as_str()) {
                errors.push(ConfigError::at(
                    src,
                    name.span(),
                    format!("peer {:?} is defined twice", name.get_ref()),
                ));
                continue;
            }
            peers.insert(name.get_ref(), Entry { src, name, peer });
        }
        for (name, pol) in &f.policies {
            if let Err(e) = pol.compile() {
                errors.push(ConfigError::at(
                    src,
                    name.span(),
                    format!("policy {:?}: {e}", name.get_ref()),
                ));
            }
            if policies
                .insert(name.get_ref().clone(), pol.clone())
                .is_some()
            {
                errors.push(ConfigError::at(
                    src,
                    name.span(),
                    format!("policy {:?} is defined twice", name.get_ref()),
                ));
            }
        }
        for o in &f.originate {
            let of = o.get_ref();
            let prefix = match check::originate(*of.prefix.get_ref(), of.next_hop) {
                Ok(p) => p,
                Err(m) => {
                    errors.push(ConfigError::at(src, of.prefix.span(), m));
                    continue;
                }
            };
            let route = Originate {
                prefix,
                no_install: of.no_install,
                next_hop: of.next_hop,
                communities: of.communities.iter().map(|c| c.0).collect(),
                large_communities: of.large_communities.iter().map(|c| c.0).collect(),
                local_pref: of.local_pref,
                med: of.med,
            };
            if originate.insert(prefix, route).is_some() {
                errors.push(ConfigError::at(
                    src,
                    of.prefix.span(),
                    format!("prefix {prefix} is originated twice"),
                ));
            }
        }
    }
    let kernel = main.kernel.clone();
    let bmp = monitoring::resolve_bmp(main_src, &main.bmp).unwrap_or_else(|e| {
        errors.push(e);
        Vec::new()
    });
    let mrt = monitoring::resolve_mrt(main_src, main.mrt.as_ref()).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    for &(src, f) in files.iter().skip(1) {
        if !f.bmp.is_empty() || f.mrt.is_some() {
            errors.push(ConfigError::File {
                path: src.path.clone(),
                message: "[[bmp]] and [mrt] are only allowed in the main configuration file".into(),
            });
        }
        if f.kernel.is_some() {
            errors.push(ConfigError::File {
                path: src.path.clone(),
                message: "[kernel] is only allowed in the main configuration file".into(),
            });
        }
    }
    if let Some(name) = kernel.as_ref().and_then(|k| k.export.policy.as_ref()) {
        if !policies.contains_key(name) {
            errors.push(ConfigError::File {
                path: main_src.path.clone(),
                message: format!("[kernel.export] policy: unknown policy {name:?}"),
            });
        }
    }

    let mut resolved = BTreeMap::new();
    let mut by_addr: HashMap<(IpAddr, Option<String>, u16), &str> = HashMap::new();
    for (name, entry) in &peers {
        let chain = match template_chain(entry, &templates) {
            Ok(c) => c,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        check_policy_refs(&chain, &policies, errors);
        let p = match resolve_peer(name, &chain, &global) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        if let Some(other) = by_addr.insert(p.endpoint(), name) {
            let (src, span) = address_span(&chain, entry);
            errors.push(ConfigError::at(src, span, check::same_endpoint(&p, other)));
            continue;
        }
        resolved.insert(name.to_string(), p);
    }
    Some(Config {
        global,
        peers: resolved,
        policies,
        originate,
        kernel,
        bmp,
        mrt,
    })
}

fn resolve_global(
    src: &Source,
    g: &Spanned<file::GlobalFile>,
    main_path: &Path,
    errors: &mut Vec<ConfigError>,
) -> GlobalConfig {
    let gf = g.get_ref();
    if let Err(m) = check::identity(gf.asn, gf.router_id) {
        errors.push(ConfigError::at(src, g.span(), m));
    }
    let port = gf.listen_port.unwrap_or(BGP_PORT);
    let listen = match &gf.listen {
        None => default_listen(port),
        Some(l) => {
            let mut seen = BTreeSet::new();
            let mut out = Vec::new();
            for a in l {
                let sa = SocketAddr::new(a.get_ref().addr, a.get_ref().port.unwrap_or(port));
                if !seen.insert(sa) {
                    errors.push(ConfigError::at(
                        src,
                        a.span(),
                        format!("listen address {sa} is given twice"),
                    ));
                    continue;
                }
                out.push(sa);
            }
            out
        }
    };
    let control = control::resolve(src, gf.control.as_ref()).unwrap_or_else(|e| {
        errors.push(e);
        Default::default()
    });
    let metrics = metrics::resolve(src, gf.metrics.as_ref()).unwrap_or_else(|e| {
        errors.push(e);
        None
    });
    let graceful_restart = merge_gr(
        &[gf.graceful_restart.as_ref()],
        &GracefulRestartConfig::default(),
    );
    GlobalConfig {
        asn: gf.asn,
        router_id: gf.router_id,
        listen,
        cluster_id: gf.cluster_id,
        max_paths: gf.max_paths.unwrap_or(DEFAULT_MAX_PATHS).max(1),
        control,
        metrics,
        graceful_restart,
        user: gf.user.clone(),
        group: gf.group.clone(),
        include_dir: gf
            .include_dir
            .as_ref()
            .map(|d| main_path.parent().unwrap_or(Path::new(".")).join(d)),
    }
}

/// The peer followed by its templates, nearest first. Refuses unknown templates and
/// cycles.
fn template_chain<'a>(
    entry: &'a Entry<'a>,
    templates: &'a HashMap<&str, Entry<'a>>,
) -> Result<Vec<&'a Entry<'a>>, ConfigError> {
    let mut chain = vec![entry];
    let mut cur = entry;
    while let Some(t) = &cur.peer.template {
        let Some(next) = templates.get(t.get_ref().as_str()) else {
            return Err(ConfigError::at(
                cur.src,
                t.span(),
                format!("unknown template {:?}", t.get_ref()),
            ));
        };
        if chain.iter().any(|e| std::ptr::eq(*e, next)) {
            return Err(ConfigError::at(
                cur.src,
                t.span(),
                format!("template {:?} inherits from itself", t.get_ref()),
            ));
        }
        chain.push(next);
        cur = next;
    }
    Ok(chain)
}

/// The first value set along the template chain.
fn pick<'a, T>(chain: &[&'a Entry<'a>], f: impl Fn(&'a PeerFile) -> Option<T>) -> Option<T> {
    chain.iter().find_map(|e| f(e.peer))
}

/// Where to point an error about the peer's address (or its table when unset).
fn address_span<'a>(chain: &[&'a Entry<'a>], entry: &'a Entry<'a>) -> (&'a Source, Range<usize>) {
    chain
        .iter()
        .find_map(|e| e.peer.address.as_ref().map(|a| (e.src, a.span())))
        .unwrap_or((entry.src, entry.name.span()))
}

fn merge_gr(
    layers: &[Option<&GracefulRestartFile>],
    base: &GracefulRestartConfig,
) -> GracefulRestartConfig {
    let find = |f: &dyn Fn(&GracefulRestartFile) -> Option<u64>| {
        layers.iter().flatten().find_map(|g| f(g))
    };
    GracefulRestartConfig {
        enabled: layers
            .iter()
            .flatten()
            .find_map(|g| g.enabled)
            .unwrap_or(base.enabled),
        restart_time: find(&|g| g.restart_time.map(u64::from))
            .map_or(base.restart_time, |v| v.min(4095) as u16),
        stale_time: find(&|g| g.stale_time.map(u64::from)).map_or(base.stale_time, |v| v as u32),
        long_lived_stale_time: find(&|g| g.long_lived_stale_time.map(u64::from))
            .map_or(base.long_lived_stale_time, |v| v.min(0xFF_FFFF) as u32),
        notification: layers
            .iter()
            .flatten()
            .find_map(|g| g.notification)
            .unwrap_or(base.notification),
        max_restart_time: find(&|g| g.max_restart_time.map(u64::from))
            .map_or(base.max_restart_time, |v| v.min(4095) as u16),
        max_long_lived_stale_time: find(&|g| g.max_long_lived_stale_time.map(u64::from))
            .map_or(base.max_long_lived_stale_time, |v| v.min(0xFF_FFFF) as u32),
        retain_on_hold_expiry: layers
            .iter()
            .flatten()
            .find_map(|g| g.retain_on_hold_expiry)
            .unwrap_or(base.retain_on_hold_expiry),
        on_stop: layers
            .iter()
            .flatten()
            .find_map(|g| g.on_stop)
            .unwrap_or(base.on_stop),
        absent_peer_wait: find(&|g| g.absent_peer_wait.map(u64::from))
            .map_or(base.absent_peer_wait, |v| v as u16),
    }
}

fn resolve_peer<'a>(
    name: &str,
    chain: &[&'a Entry<'a>],
    global: &GlobalConfig,
) -> Result<PeerConfig, ConfigError> {
    let Some(&entry) = chain.first() else {
        return Err(ConfigError::File {
            path: PathBuf::from(name),
            message: "empty template chain".into(),
        });
    };
    let here = |msg: String| ConfigError::at(entry.src, entry.name.span(), msg);
    let address = pick(chain, |p| p.address.as_ref().map(|a| a.get_ref().clone()))
        .ok_or_else(|| here(format!("peer {name:?} has no address")))?;
    let remote_as = pick(chain, |p| p.remote_as)
        .ok_or_else(|| here(format!("peer {name:?} has no remote_as")))?;
    let hold_time =
        pick(chain, |p| p.hold_time.as_ref().map(|h| *h.get_ref())).unwrap_or(DEFAULT_HOLD_TIME);
    let gr_layers: Vec<Option<&GracefulRestartFile>> = chain
        .iter()
        .map(|e| e.peer.graceful_restart.as_ref())
        .collect();
    let mut p = PeerConfig {
        name: name.to_owned(),
        description: pick(chain, |p| p.description.clone()),
        remote_as,
        local_as: pick(chain, |p| p.local_as),
        port: pick(chain, |p| p.port).unwrap_or(BGP_PORT),
        passive: pick(chain, |p| p.passive).unwrap_or(false),
        disabled: pick(chain, |p| p.disabled).unwrap_or(false),
        password: pick(chain, |p| p.password.clone()).filter(|s| !s.is_empty()),
        hold_time,
        keepalive: pick(chain, |p| p.keepalive).unwrap_or(hold_time / 3),
        connect_retry: pick(chain, |p| p.connect_retry).unwrap_or(DEFAULT_CONNECT_RETRY),
        ttl_security: pick(chain, |p| p.ttl_security).unwrap_or(false),
        multihop: pick(chain, |p| p.multihop.as_ref().map(|m| *m.get_ref())),
        source_address: pick(chain, |p| p.source_address),
        route_reflector_client: pick(chain, |p| p.route_reflector_client).unwrap_or(false),
        cluster_id: pick(chain, |p| p.cluster_id),
        allow_local_as: pick(chain, |p| p.allow_local_as).unwrap_or(0),
        next_hop: pick(chain, |p| p.next_hop).unwrap_or_default(),
        add_path: pick(chain, |p| p.add_path).unwrap_or_default(),
        add_path_receive_limit: pick(chain, |p| p.add_path_receive_limit)
            .unwrap_or(DEFAULT_ADD_PATH_RECEIVE_LIMIT),
        extended_next_hop: pick(chain, |p| p.extended_next_hop).unwrap_or(false),
        graceful_restart: merge_gr(&gr_layers, &global.graceful_restart),
        families: pick(chain, |p| p.families.clone())
            .map(|f| {
                let mut v: Vec<Family> = f.iter().map(|n| n.family()).collect();
                v.dedup();
                v
            })
            .unwrap_or_else(|| vec![default_family(address.addr)]),
        import: pick(chain, |p| {
            p.import
                .as_ref()
                .map(|v| v.iter().map(|s| s.get_ref().clone()).collect())
        })
        .unwrap_or_default(),
        export: pick(chain, |p| {
            p.export
                .as_ref()
                .map(|v| v.iter().map(|s| s.get_ref().clone()).collect())
        })
        .unwrap_or_default(),
        max_prefixes: pick(chain, |p| {
            p.max_prefixes.as_ref().map(|m| MaxPrefixes {
                limit: m.limit,
                action: m.action,
            })
        }),
        bfd: {
            let layers: Vec<&file::BfdFile> = chain
                .iter()
                .filter_map(|e| e.peer.bfd.as_ref().map(|b| b.get_ref()))
                .collect();
            super::bfd::resolve(&layers)
        },
        address,
    };
    check::reflection(&p, global).map_err(here)?;
    if let Err(msg) = check::peer(&p) {
        // Point at the offending setting where we kept its position.
        let span = match () {
            _ if msg.starts_with("hold_time") || msg.starts_with("keepalive") => chain
                .iter()
                .find_map(|e| e.peer.hold_time.as_ref().map(|h| (e.src, h.span()))),
            _ if msg.starts_with("multihop") => chain
                .iter()
                .find_map(|e| e.peer.multihop.as_ref().map(|h| (e.src, h.span()))),
            _ if msg.starts_with("bfd") => chain
                .iter()
                .find_map(|e| e.peer.bfd.as_ref().map(|b| (e.src, b.span()))),
            _ => None,
        };
        let (src, span) = span.unwrap_or((entry.src, entry.name.span()));
        return Err(ConfigError::at(src, span, format!("peer {name:?}: {msg}")));
    }
    p.families.sort();
    Ok(p)
}

/// Every policy name of the chain that names no policy.
fn check_policy_refs<'a>(
    chain: &[&'a Entry<'a>],
    policies: &BTreeMap<String, PolicyDef>,
    errors: &mut Vec<ConfigError>,
) {
    for e in chain {
        for list in [&e.peer.import, &e.peer.export].into_iter().flatten() {
            for n in list {
                if !policies.contains_key(n.get_ref()) {
                    errors.push(ConfigError::at(
                        e.src,
                        n.span(),
                        format!("unknown policy {:?}", n.get_ref()),
                    ));
                }
            }
        }
    }
}
