//! `[[bmp]]` and `[mrt]`: the monitoring feeds the speaker writes (docs/config.md,
//! docs/operations.md).
//!
//! - `[[bmp]]`, one table per BMP monitoring station (RFC 7854): where to connect, what
//!   to call ourselves in the Initiation, whether to send the pre-policy and the
//!   post-policy Adj-RIB-In and the Adj-RIB-Out as Route Monitoring, how often to send
//!   Statistics Reports.
//! - `[mrt]`: MRT files (RFC 6396): a periodic TABLE_DUMP_V2 of the Loc-RIB and a
//!   BGP4MP_ET log of every received UPDATE and session state change, both named by a
//!   strftime-like pattern and cut by time.
//!
//! Read and checked here with the rest of the file, so a bad address or pattern is an
//! error with its line and column; the speaker's monitor module (monitor/) runs them,
//! and a reload adds or removes stations without touching a BGP session.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use toml::Spanned;

use super::{ConfigError, Source};

/// `[[bmp]]` as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BmpFile {
    /// The station's address and port, e.g. `"192.0.2.10:1790"`.
    pub address: Spanned<String>,
    /// A name for logs and `bgpctl`; the address when absent.
    pub name: Option<Spanned<String>>,
    /// Send the pre-policy Adj-RIB-In as Route Monitoring (default true).
    pub pre_policy: Option<bool>,
    /// Send the post-policy Adj-RIB-In as Route Monitoring, the L flag set (default
    /// false).
    pub post_policy: Option<bool>,
    /// Send the post-policy Adj-RIB-Out (what each peer is sent, RFC 8671) as Route
    /// Monitoring, the O and L flags set (default false).
    pub adj_rib_out: Option<bool>,
    /// Seconds between Statistics Reports; 0 for none (default 60).
    pub statistics_interval: Option<Spanned<u64>>,
    /// sysName of the Initiation (default: "bgpd " and the router id).
    pub sys_name: Option<String>,
    /// sysDescr of the Initiation (default: "bgpd " and the version).
    pub sys_descr: Option<String>,
}

/// `[mrt]` as written.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MrtFile {
    /// Path pattern of the periodic table dumps (`%Y %m %d %H %M %S`; `.gz` or `.bz2`
    /// compresses), e.g. `"/var/lib/bgpd/bview.%Y%m%d.%H%M.gz"`.
    pub table_dump: Option<Spanned<String>>,
    /// Seconds between table dumps (default 7200, at least 60).
    pub table_dump_interval: Option<Spanned<u64>>,
    /// Path pattern of the update log files.
    pub update_log: Option<Spanned<String>>,
    /// Seconds each update log file covers before the next one starts (default 900, at
    /// least 60).
    pub update_log_interval: Option<Spanned<u64>>,
}

/// One BMP monitoring station.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BmpConfig {
    /// Its name in logs (unique).
    pub name: String,
    /// Where it listens.
    pub address: SocketAddr,
    /// Send the pre-policy Adj-RIB-In as Route Monitoring.
    pub pre_policy: bool,
    /// Send the post-policy Adj-RIB-In (routes as import policy accepted them) as Route
    /// Monitoring with the L flag.
    pub post_policy: bool,
    /// Send the post-policy Adj-RIB-Out (the UPDATEs each peer is sent, RFC 8671) as Route
    /// Monitoring with the O and L flags.
    pub adj_rib_out: bool,
    /// Interval of Statistics Reports; `None`: none.
    pub statistics_interval: Option<Duration>,
    /// sysName of the Initiation; `None`: "bgpd " and the router id.
    pub sys_name: Option<String>,
    /// sysDescr of the Initiation; `None`: "bgpd " and the version.
    pub sys_descr: Option<String>,
}

/// The MRT files to write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MrtConfig {
    /// Periodic table dumps: path pattern and interval.
    pub table_dump: Option<MrtFiles>,
    /// The update log: path pattern and the time each file covers.
    pub update_log: Option<MrtFiles>,
}

/// A series of MRT files named by a pattern, a new one every `interval`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MrtFiles {
    /// The path pattern (checked by [`bgp_mrt::writer::FileNamePattern`]).
    pub pattern: String,
    /// How often a new file starts.
    pub interval: Duration,
}

/// Default seconds between Statistics Reports.
pub const DEFAULT_BMP_STATISTICS: u64 = 60;
/// Default seconds between table dumps (RIPE RIS and RouteViews dump every 2 to 8 hours).
pub const DEFAULT_TABLE_DUMP_INTERVAL: u64 = 7200;
/// Default seconds each update log file covers (RIPE RIS cuts every 5, RouteViews 15 min).
pub const DEFAULT_UPDATE_LOG_INTERVAL: u64 = 900;
/// The shortest MRT file interval accepted.
const MIN_MRT_INTERVAL: u64 = 60;

/// Resolves every `[[bmp]]` table: addresses parsed, names unique.
pub(super) fn resolve_bmp(
    src: &Source,
    tables: &[Spanned<BmpFile>],
) -> Result<Vec<BmpConfig>, ConfigError> {
    let mut out: Vec<BmpConfig> = Vec::new();
    for t in tables {
        let b = t.get_ref();
        let address = b.address.get_ref().parse::<SocketAddr>().map_err(|_| {
            ConfigError::at(
                src,
                b.address.span(),
                format!(
                    "bmp address {:?} is not an address and port like \"192.0.2.10:1790\"",
                    b.address.get_ref()
                ),
            )
        })?;
        let (name, name_span) = match &b.name {
            Some(n) => (n.get_ref().clone(), n.span()),
            None => (address.to_string(), b.address.span()),
        };
        if name.is_empty() {
            return Err(ConfigError::at(src, name_span, "bmp name is empty"));
        }
        if out.iter().any(|o| o.name == name) {
            return Err(ConfigError::at(
                src,
                name_span,
                format!("bmp station {name:?} is defined twice"),
            ));
        }
        if out.iter().any(|o| o.address == address) {
            return Err(ConfigError::at(
                src,
                b.address.span(),
                format!("bmp station address {address} is given twice"),
            ));
        }
        let statistics_interval = match &b.statistics_interval {
            None => Some(Duration::from_secs(DEFAULT_BMP_STATISTICS)),
            Some(s) if *s.get_ref() == 0 => None,
            Some(s) => Some(Duration::from_secs(*s.get_ref())),
        };
        for text in [&b.sys_name, &b.sys_descr].into_iter().flatten() {
            if text.len() > usize::from(u16::MAX) {
                return Err(ConfigError::at(
                    src,
                    t.span(),
                    "bmp sys_name and sys_descr must be at most 65535 octets",
                ));
            }
        }
        out.push(BmpConfig {
            name,
            address,
            pre_policy: b.pre_policy.unwrap_or(true),
            post_policy: b.post_policy.unwrap_or(false),
            adj_rib_out: b.adj_rib_out.unwrap_or(false),
            statistics_interval,
            sys_name: b.sys_name.clone(),
            sys_descr: b.sys_descr.clone(),
        });
    }
    Ok(out)
}

/// Resolves `[mrt]` (`None` when absent): patterns checked, intervals bounded.
pub(super) fn resolve_mrt(
    src: &Source,
    m: Option<&Spanned<MrtFile>>,
) -> Result<Option<MrtConfig>, ConfigError> {
    let Some(m) = m else {
        return Ok(None);
    };
    let f = m.get_ref();
    let files = |pattern: &Option<Spanned<String>>,
                 interval: &Option<Spanned<u64>>,
                 default: u64,
                 what: &str|
     -> Result<Option<MrtFiles>, ConfigError> {
        let Some(p) = pattern else {
            if let Some(i) = interval {
                return Err(ConfigError::at(
                    src,
                    i.span(),
                    format!("mrt {what}_interval without {what}"),
                ));
            }
            return Ok(None);
        };
        check_pattern(p.get_ref()).map_err(|e| ConfigError::at(src, p.span(), e))?;
        let secs = interval.as_ref().map_or(default, |i| *i.get_ref());
        if secs < MIN_MRT_INTERVAL {
            let span = interval.as_ref().map_or(p.span(), |i| i.span());
            return Err(ConfigError::at(
                src,
                span,
                format!("mrt {what}_interval must be at least {MIN_MRT_INTERVAL} seconds"),
            ));
        }
        Ok(Some(MrtFiles {
            pattern: p.get_ref().clone(),
            interval: Duration::from_secs(secs),
        }))
    };
    let table_dump = files(
        &f.table_dump,
        &f.table_dump_interval,
        DEFAULT_TABLE_DUMP_INTERVAL,
        "table_dump",
    )?;
    let update_log = files(
        &f.update_log,
        &f.update_log_interval,
        DEFAULT_UPDATE_LOG_INTERVAL,
        "update_log",
    )?;
    if table_dump.is_none() && update_log.is_none() {
        return Err(ConfigError::at(
            src,
            m.span(),
            "[mrt] needs table_dump or update_log",
        ));
    }
    Ok(Some(MrtConfig {
        table_dump,
        update_log,
    }))
}

/// An MRT path pattern bgpd can write: absolute, a file name, and a pattern the MRT
/// writer accepts.
fn check_pattern(p: &str) -> Result<(), String> {
    let path = Path::new(p);
    if !path.is_absolute() {
        return Err(format!("mrt path {p:?} must be absolute"));
    }
    if p.ends_with('/') || path.file_name().is_none() {
        return Err(format!("mrt path {p:?} must name a file"));
    }
    bgp_mrt::writer::FileNamePattern::new(p)
        .map(|_| ())
        .map_err(|e| format!("mrt path {p:?}: {e}"))
}

impl BmpConfig {
    /// Back to the file form (for `explicit`).
    pub(super) fn to_file(&self) -> BmpFile {
        BmpFile {
            address: Spanned::new(0..0, self.address.to_string()),
            name: Some(Spanned::new(0..0, self.name.clone())),
            pre_policy: Some(self.pre_policy),
            post_policy: Some(self.post_policy),
            adj_rib_out: Some(self.adj_rib_out),
            statistics_interval: Some(Spanned::new(
                0..0,
                self.statistics_interval.map_or(0, |d| d.as_secs()),
            )),
            sys_name: self.sys_name.clone(),
            sys_descr: self.sys_descr.clone(),
        }
    }
}

impl MrtConfig {
    /// Back to the file form (for `explicit`).
    pub(super) fn to_file(&self) -> MrtFile {
        let sp = |s: &str| Spanned::new(0..0, s.to_owned());
        let secs = |f: &MrtFiles| Spanned::new(0..0, f.interval.as_secs());
        MrtFile {
            table_dump: self.table_dump.as_ref().map(|f| sp(&f.pattern)),
            table_dump_interval: self.table_dump.as_ref().map(secs),
            update_log: self.update_log.as_ref().map(|f| sp(&f.pattern)),
            update_log_interval: self.update_log.as_ref().map(secs),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use super::super::{diff, explicit, from_str, Config, ConfigError};

    const BASE: &str = "[global]\nasn = 64512\nrouter_id = \"10.0.0.1\"\n";

    fn parse(text: &str) -> Result<Config, ConfigError> {
        from_str(text, Path::new("test.toml"))
    }

    /// The line and message of a positioned error.
    fn err_at(text: &str) -> (usize, String) {
        match parse(text) {
            Err(ConfigError::At { line, message, .. }) => (line, message),
            other => panic!("expected a positioned error, got {other:?}"),
        }
    }

    #[test]
    fn bmp_stations_with_defaults_and_settings() {
        let c = parse(&format!(
            "{BASE}[[bmp]]\naddress = \"192.0.2.10:1790\"\n\
             [[bmp]]\naddress = \"[2001:db8::10]:5000\"\nname = \"ris\"\npre_policy = false\n\
             post_policy = true\nadj_rib_out = true\n\
             statistics_interval = 0\nsys_name = \"node-1\"\nsys_descr = \"rack 4\"\n"
        ))
        .unwrap();
        assert_eq!(c.bmp.len(), 2);
        let (a, b) = (&c.bmp[0], &c.bmp[1]);
        assert_eq!(
            a.name, "192.0.2.10:1790",
            "the address names an unnamed station"
        );
        assert_eq!(a.address, "192.0.2.10:1790".parse().unwrap());
        assert!(a.pre_policy);
        assert!(!a.post_policy, "post-policy is asked for");
        assert_eq!(a.statistics_interval, Some(Duration::from_secs(60)));
        assert_eq!(
            (a.sys_name.as_deref(), a.sys_descr.as_deref()),
            (None, None)
        );
        assert_eq!(b.name, "ris");
        assert!(!b.pre_policy);
        assert!(b.post_policy);
        assert!(b.adj_rib_out && !a.adj_rib_out);
        assert_eq!(b.statistics_interval, None, "0 turns statistics off");
        assert_eq!(b.sys_name.as_deref(), Some("node-1"));
        assert_eq!(b.sys_descr.as_deref(), Some("rack 4"));
        // The explicit form loads back to the same stations.
        let text = toml::to_string(&explicit::explicit(&c)).unwrap();
        assert_eq!(parse(&text).unwrap().bmp, c.bmp, "{text}");
    }

    #[test]
    fn bmp_errors_name_their_line() {
        let cases = [
            (
                "[[bmp]]\naddress = \"192.0.2.10\"\n",
                5,
                "not an address and port",
            ),
            (
                "[[bmp]]\naddress = \"192.0.2.10:1790\"\nport = 1\n",
                6,
                "unknown field",
            ),
            (
                "[[bmp]]\naddress = \"192.0.2.10:1790\"\nname = \"x\"\n\
                 [[bmp]]\naddress = \"192.0.2.10:1790\"\nname = \"y\"\n",
                8,
                "given twice",
            ),
            (
                "[[bmp]]\naddress = \"192.0.2.10:1790\"\nname = \"x\"\n\
                 [[bmp]]\naddress = \"192.0.2.11:1790\"\nname = \"x\"\n",
                9,
                "defined twice",
            ),
        ];
        for (text, line, what) in cases {
            let (l, msg) = err_at(&format!("{BASE}{text}"));
            assert_eq!(l, line, "{text}: {msg}");
            assert!(msg.contains(what), "{text}: {msg}");
        }
    }

    #[test]
    fn mrt_files_with_defaults_and_checks() {
        let c = parse(&format!(
            "{BASE}[mrt]\ntable_dump = \"/var/lib/bgpd/bview.%Y%m%d.%H%M.gz\"\n\
             update_log = \"/var/lib/bgpd/updates.%Y%m%d.%H%M\"\nupdate_log_interval = 300\n"
        ))
        .unwrap();
        let m = c.mrt.clone().unwrap();
        let dump = m.table_dump.unwrap();
        assert_eq!(dump.pattern, "/var/lib/bgpd/bview.%Y%m%d.%H%M.gz");
        assert_eq!(dump.interval, Duration::from_secs(7200));
        assert_eq!(m.update_log.unwrap().interval, Duration::from_secs(300));
        let text = toml::to_string(&explicit::explicit(&c)).unwrap();
        assert_eq!(parse(&text).unwrap().mrt, c.mrt, "{text}");
        assert_eq!(parse(BASE).unwrap().mrt, None, "off by default");

        let cases = [
            ("table_dump = \"bview.mrt\"\n", "must be absolute"),
            ("table_dump = \"/var/lib/bgpd/bview.%Q\"\n", "mrt path"),
            (
                "table_dump = \"/tmp/bview\"\ntable_dump_interval = 10\n",
                "at least 60",
            ),
            ("update_log_interval = 300\n", "without update_log"),
            ("", "needs table_dump or update_log"),
        ];
        for (text, what) in cases {
            let (l, msg) = err_at(&format!("{BASE}[mrt]\n{text}"));
            assert!((4..=6).contains(&l), "{text}: line {l}: {msg}");
            assert!(msg.contains(what), "{text}: {msg}");
        }
    }

    #[test]
    fn a_feed_change_is_reported_apart_from_sessions() {
        let old = parse(BASE).unwrap();
        let new = parse(&format!("{BASE}[[bmp]]\naddress = \"192.0.2.10:1790\"\n")).unwrap();
        let d = diff::diff(&old, &new);
        assert!(d.monitoring_changed, "{d:?}");
        assert!(d.peers_changed.is_empty() && d.global_restart.is_empty());
        assert!(!diff::diff(&new, &new).monitoring_changed);
    }
}
