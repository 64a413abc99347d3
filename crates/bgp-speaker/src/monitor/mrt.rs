//! MRT files (`[mrt]`, RFC 6396): TABLE_DUMP_V2 dumps of the Loc-RIB, on a period or on
//! demand (`bgpctl mrt save`), and the BGP4MP_ET log of every UPDATE received and every
//! session state change.
//!
//! A dump walks the Loc-RIB a page of prefixes at a time (the RIB task serves other work
//! between pages) and writes each page on a blocking thread, so neither the RIB nor the
//! runtime waits on the disk. Paths carrying ADD-PATH identifiers go in the RFC 8050
//! `*_ADDPATH` records. Peer index 0 is the speaker itself, for the routes it originates.
//! The file appears under its name only once complete (written as `.NAME.partial`, then
//! renamed), so a reader never sees half a dump.
//!
//! The update log reads the tap (tap.rs) and writes through a 256 KiB buffer; a disk slow
//! enough for the tap to overflow loses the missed messages from the log (logged with
//! their count), never holds a peer back.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bgp_mrt::writer::encode_rib_attributes;
use bgp_mrt::{
    Bgp4mpSession, BgpState, Compression, Direction, FileNamePattern, MrtFile, Peer,
    PeerIndexTable, Period, RibEntryRef, RotatingUpdateLog, TableDumpWriter,
};
use bgp_proto::Family;
use bytes::BytesMut;
use ipnet::IpNet;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::rib::RibAccess;
use super::tap::{MonitorEvent, SessionFacts};
use crate::config::MrtFiles;

/// Prefixes asked of the RIB per page of a dump.
const DUMP_PAGE: usize = 4096;

/// A table dump written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TableDumpSummary {
    /// Where it is.
    pub path: PathBuf,
    /// RIB records (one per prefix, two where some paths carry path identifiers).
    pub records: u64,
    /// Paths written.
    pub entries: u64,
}

/// Who the speaker is and who its peers are, for the PEER_INDEX_TABLE.
#[derive(Clone, Debug)]
pub(crate) struct DumpPeers {
    pub router_id: Ipv4Addr,
    pub asn: u32,
    /// Peers by name: address, AS, BGP identifier (0.0.0.0 while never up).
    pub peers: Vec<(String, Peer)>,
}

/// `t` as MRT's 32-bit seconds since the Unix epoch.
fn unix_seconds(t: SystemTime) -> u32 {
    u32::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs()).unwrap_or(u32::MAX)
}

/// Writes a table dump of the Loc-RIB to `path` (compressed by its extension).
pub(crate) async fn write_table_dump(
    rib: &RibAccess,
    who: DumpPeers,
    path: PathBuf,
) -> Result<TableDumpSummary, String> {
    let timestamp = unix_seconds(SystemTime::now());
    let mut table = PeerIndexTable {
        collector_bgp_id: who.router_id,
        view_name: String::new(),
        peers: vec![Peer {
            bgp_id: who.router_id,
            ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            asn: who.asn,
        }],
    };
    let mut index: HashMap<String, u16> = HashMap::new();
    for (name, p) in who.peers {
        let i = u16::try_from(table.peers.len()).map_err(|_| "more than 65535 peers")?;
        index.insert(name, i);
        table.peers.push(p);
    }
    let compression = Compression::for_path(&path);
    let p = path.clone();
    let mut writer = blocking(move || {
        let file = MrtFile::create(p, compression).map_err(|e| e.to_string())?;
        TableDumpWriter::new(file, timestamp, &table).map_err(|e| e.to_string())
    })
    .await?;
    let mut after = None;
    loop {
        let page = rib
            .dump_page(after, DUMP_PAGE)
            .await
            .ok_or("the RIB has stopped")?;
        let next = page.next;
        let index = index.clone();
        writer = blocking(move || {
            let mut attrs = BytesMut::new();
            let mut blocks: Vec<(u16, Option<u32>, u32, BytesMut)> = Vec::new();
            for (prefix, paths) in page.prefixes {
                blocks.clear();
                let family = match prefix {
                    IpNet::V4(_) => Family::IPV4_UNICAST,
                    IpNet::V6(_) => Family::IPV6_UNICAST,
                };
                for p in paths {
                    let peer = match &p.peer {
                        Some(n) => match index.get(n) {
                            Some(i) => *i,
                            None => continue,
                        },
                        None => 0,
                    };
                    attrs.clear();
                    if encode_rib_attributes(
                        family,
                        &p.attrs.attrs,
                        p.attrs.next_hop.as_ref(),
                        &mut attrs,
                    )
                    .is_err()
                    {
                        continue;
                    }
                    // RFC 6396 4.3.4: the time the route was received (or originated);
                    // the dump's own time for a route without one.
                    let originated = p.since.map_or(timestamp, unix_seconds);
                    blocks.push((peer, p.path_id, originated, attrs.split()));
                }
                let entries: Vec<RibEntryRef<'_>> = blocks
                    .iter()
                    .map(|(peer, path_id, originated, a)| RibEntryRef {
                        peer_index: *peer,
                        originated_time: *originated,
                        path_id: *path_id,
                        attributes: a,
                    })
                    .collect();
                writer
                    .write_rib(prefix, &entries)
                    .map_err(|e| e.to_string())?;
            }
            Ok(writer)
        })
        .await?;
        match next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    let (records, entries) = (writer.records(), writer.entries());
    let path = blocking(move || {
        writer
            .finish()
            .map_err(|e| e.to_string())?
            .finish()
            .map_err(|e| e.to_string())
    })
    .await?;
    Ok(TableDumpSummary {
        path,
        records,
        entries,
    })
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| format!("MRT writer thread: {e}"))?
}

/// The file names and period of a series of files.
fn series(files: &MrtFiles) -> Result<(FileNamePattern, Period), bgp_mrt::WriteError> {
    Ok((
        FileNamePattern::new(files.pattern.as_str())?,
        Period::new(files.interval)?,
    ))
}

/// Dumps the table every `files.interval`, at the period's start, to the file the
/// pattern names for it, until cancelled. `who` is asked before each dump.
pub(crate) async fn periodic_dumps<F, Fut>(
    rib: RibAccess,
    files: MrtFiles,
    who: F,
    cancel: CancellationToken,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Option<DumpPeers>>,
{
    let (pattern, period) = match series(&files) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "MRT table dumps not started");
            return;
        }
    };
    loop {
        let now = SystemTime::now();
        let next = period.next_after(now);
        let wait = next.duration_since(now).unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(wait) => {}
        }
        let Some(peers) = who().await else { return };
        let path = pattern.render(period.start_of(SystemTime::now()));
        match write_table_dump(&rib, peers, path.clone()).await {
            Ok(s) => {
                info!(path = %s.path.display(), prefixes = s.records, paths = s.entries, "MRT table dump written")
            }
            Err(e) => warn!(path = %path.display(), error = %e, "MRT table dump failed"),
        }
    }
}

/// Logs every UPDATE received and every session change of the tap until cancelled.
pub(crate) async fn update_log(
    files: MrtFiles,
    mut events: broadcast::Receiver<Arc<MonitorEvent>>,
    cancel: CancellationToken,
) {
    let (pattern, period) = match series(&files) {
        Ok(s) => s,
        Err(e) => {
            warn!(error = %e, "MRT update log not started");
            return;
        }
    };
    let compression = Compression::for_path(Path::new(files.pattern.as_str()));
    let mut log = RotatingUpdateLog::new(pattern, period, compression);
    info!(pattern = %files.pattern, "MRT update log started");
    loop {
        let deadline = log.deadline().map(|d| {
            d.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
        });
        let written = tokio::select! {
            _ = cancel.cancelled() => break,
            _ = sleep_opt(deadline) => log.rotate_if_due(SystemTime::now()),
            ev = events.recv() => match ev {
                Ok(ev) => record(&mut log, &ev),
                Err(RecvError::Lagged(n)) => {
                    warn!(missed = n, "MRT update log fell behind the peers: messages missing from the log");
                    Ok(None)
                }
                Err(RecvError::Closed) => break,
            },
        };
        match written {
            Ok(Some(done)) => info!(path = %done.display(), "MRT update log file complete"),
            Ok(None) => {}
            Err(e) => warn!(error = %e, "MRT update log write failed"),
        }
    }
    match log.close() {
        Ok(Some(done)) => info!(path = %done.display(), "MRT update log file complete"),
        Ok(None) => {}
        Err(e) => warn!(error = %e, "MRT update log close failed"),
    }
}

fn record(
    log: &mut RotatingUpdateLog,
    ev: &MonitorEvent,
) -> Result<Option<PathBuf>, bgp_mrt::WriteError> {
    match ev {
        MonitorEvent::Up { session, .. } => log.write_state_change(
            session.at,
            &bgp4mp(session),
            BgpState::OpenConfirm,
            BgpState::Established,
        ),
        MonitorEvent::Update {
            session,
            message,
            at,
            add_path,
            ..
        } => log.write_message(
            *at,
            &bgp4mp(session),
            Direction::Received,
            *add_path,
            message,
        ),
        MonitorEvent::Down { session, at, .. } => {
            log.write_state_change(*at, &bgp4mp(session), BgpState::Established, BgpState::Idle)
        }
        // The update log records messages as received.
        MonitorEvent::Accepted { .. } | MonitorEvent::Sent { .. } => Ok(None),
    }
}

/// The BGP4MP session of `s`: both addresses of one family (a dual-stack socket's
/// IPv4-mapped addresses as IPv4).
fn bgp4mp(s: &SessionFacts) -> Bgp4mpSession {
    let n = &s.negotiated;
    let (peer_ip, local_ip) = s.addresses();
    Bgp4mpSession {
        peer_as: n.peer_as,
        local_as: n.local_as,
        interface_index: 0,
        peer_ip,
        local_ip,
        four_octet_as: n.codec.four_octet_as,
    }
}

async fn sleep_opt(d: Option<Duration>) {
    match d {
        Some(d) => tokio::time::sleep(d).await,
        None => std::future::pending().await,
    }
}
