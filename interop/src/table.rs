//! A real Internet table for interop tests: the RIPE RIS 2002 table in
//! `tests/data/mrt/`, read from its `bgpdump -m` rendering (an external
//! oracle, so the harness does not depend on our own MRT reader).
//!
//! `bgpdump -m` lines look like
//! `TABLE_DUMP|1027381055|B|193.203.0.1|1853|3.0.0.0/8|1853 1239 80|IGP|193.203.0.1|0|0||NAG||`
//! (type, time, B, peer address, peer AS, prefix, AS path, origin, next hop,
//! local pref, MED, communities, aggregate flag, aggregator).

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};

use ipnet::IpNet;

use crate::error::{Error, Result};
use crate::model::Origin;

/// One route of the table, as a peer sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableRoute {
    /// The prefix.
    pub prefix: IpNet,
    /// AS_PATH (AS_SEQUENCE only).
    pub as_path: Vec<u32>,
    /// ORIGIN.
    pub origin: Origin,
    /// Standard communities as `"a:b"`, sorted.
    pub communities: Vec<String>,
}

/// The 2002 RIS table's `bgpdump -m` file in the repository.
pub fn ris_2002() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/data/mrt/bview.20020722.2337.gz.bgpdump-m.gz")
}

/// Parses one `bgpdump -m` TABLE_DUMP line into (peer address, route);
/// `Ok(None)` for routes this harness does not replay (AS_SETs, other
/// record types).
pub fn parse_line(line: &str) -> Result<Option<(String, TableRoute)>> {
    let f: Vec<&str> = line.split('|').collect();
    let field = |i: usize| f.get(i).copied().unwrap_or_default();
    if !field(0).starts_with("TABLE_DUMP") || f.len() < 12 {
        return Ok(None);
    }
    let path = field(6);
    if path.contains('{') || path.contains('(') {
        return Ok(None);
    }
    let prefix: IpNet = field(5)
        .parse()
        .map_err(|_| Error::parse("bgpdump line", format!("bad prefix in {line:?}")))?;
    let as_path = path
        .split_whitespace()
        .map(|a| a.parse::<u32>())
        .collect::<std::result::Result<Vec<_>, _>>()
        .map_err(|_| Error::parse("bgpdump line", format!("bad AS path in {line:?}")))?;
    let origin = match field(7) {
        "IGP" => Origin::Igp,
        "EGP" => Origin::Egp,
        "INCOMPLETE" => Origin::Incomplete,
        other => {
            return Err(Error::parse("bgpdump line", format!("origin {other:?}")));
        }
    };
    let mut communities: Vec<String> = field(11).split_whitespace().map(str::to_string).collect();
    communities.sort();
    communities.dedup();
    Ok(Some((
        field(3).to_string(),
        TableRoute {
            prefix,
            as_path,
            origin,
            communities,
        },
    )))
}

/// Reads a (gzipped) `bgpdump -m` file and returns the table of the peer
/// that sent the most routes, one route per prefix.
pub fn read_bgpdump(path: &Path) -> Result<Vec<TableRoute>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io("opening", path, e))?;
    let reader: Box<dyn std::io::Read> = if path.extension().is_some_and(|e| e == "gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else {
        Box::new(file)
    };
    let mut by_peer: BTreeMap<String, Vec<TableRoute>> = BTreeMap::new();
    for line in BufReader::new(reader).lines() {
        let line = line.map_err(|e| Error::io("reading", path, e))?;
        if let Some((peer, route)) = parse_line(&line)? {
            by_peer.entry(peer).or_default().push(route);
        }
    }
    let mut best = by_peer
        .into_values()
        .max_by_key(Vec::len)
        .unwrap_or_default();
    let mut seen = HashSet::new();
    best.retain(|r| seen.insert(r.prefix));
    Ok(best)
}

/// The ExaBGP static `route` statement replaying `r` (next hop self) with
/// `prepend` (ExaBGP's own AS, as it sends a static `as-path` verbatim) in
/// front of the original path.
pub fn exabgp_statement(r: &TableRoute, prepend: &[u32]) -> String {
    let origin = match r.origin {
        Origin::Igp => "igp",
        Origin::Egp => "egp",
        Origin::Incomplete => "incomplete",
    };
    let path: Vec<String> = prepend
        .iter()
        .chain(&r.as_path)
        .map(u32::to_string)
        .collect();
    let mut s = format!(
        "route {} next-hop self origin {origin} as-path [ {} ]",
        r.prefix,
        path.join(" ")
    );
    if !r.communities.is_empty() {
        s.push_str(&format!(" community [ {} ]", r.communities.join(" ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bgpdump_lines() {
        let (peer, r) = parse_line(
            "TABLE_DUMP|1027381055|B|193.203.0.1|1853|3.0.0.0/8|1853 1239 80|IGP|193.203.0.1|0|0|1853:1 1239:7 1853:1|NAG||",
        )
        .unwrap()
        .unwrap();
        assert_eq!(peer, "193.203.0.1");
        assert_eq!(r.as_path, vec![1853, 1239, 80]);
        assert_eq!(r.communities, vec!["1239:7", "1853:1"]);
        assert_eq!(
            exabgp_statement(&r, &[65001]),
            "route 3.0.0.0/8 next-hop self origin igp as-path [ 65001 1853 1239 80 ] community [ 1239:7 1853:1 ]"
        );
        let set = "TABLE_DUMP|1|B|1.1.1.1|1|4.0.0.0/8|1 {2,3}|IGP|1.1.1.1|0|0||NAG||";
        assert_eq!(parse_line(set).unwrap(), None);
        assert!(parse_line("TABLE_DUMP|1|B|1.1.1.1|1|bad|1|IGP|1.1.1.1|0|0||NAG||").is_err());
    }

    #[test]
    fn reads_the_ris_2002_table() {
        let t = read_bgpdump(&ris_2002()).unwrap();
        // 112,986 routes from 193.203.0.1, minus those with AS_SETs.
        assert!(t.len() > 110_000, "{}", t.len());
        let first = t.first().unwrap();
        assert_eq!(first.prefix, "3.0.0.0/8".parse::<IpNet>().unwrap());
        assert_eq!(first.as_path, vec![1853, 1239, 80]);
    }
}
