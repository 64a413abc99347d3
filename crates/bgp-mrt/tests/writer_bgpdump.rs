//! The MRT writer against the real `bgpdump -m` (Debian package `bgpdump`): files written
//! here must be read by bgpdump into exactly the lines a collector's files give.
//!
//! - A table dump and an update log covering every subtype the writer produces
//!   (RIB_IPV4/IPV6_UNICAST and their ADD-PATH forms, BGP4MP_ET MESSAGE_AS4, MESSAGE,
//!   the LOCAL and ADD-PATH message subtypes, STATE_CHANGE_AS4) give the expected lines.
//! - The 2002 RIS table (TABLE_DUMP, 2-octet AS) is read, its attributes re-encoded for
//!   TABLE_DUMP_V2 and written as a dump; bgpdump prints the rewritten file line for
//!   line as it printed the original (the stored `FILE.bgpdump-m.gz`), apart from the
//!   record type name. Attributes the codec discards on receipt (RFC 7606) are carried
//!   over as written, since a rewrite must keep what the route carried.
//!
//! bgpdump is required: without it these tests fail under CI=true and are skipped (with a
//! note on stderr) elsewhere.

use std::io::Read;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Command;

use bgp_mrt::decode::{has_attribute, raw_aggregator};
use bgp_mrt::writer::encode_rib_attributes;
use bgp_mrt::{
    Bgp4mpSession, BgpState, Compression, Direction, MrtBody, MrtFile, MrtTime, Peer,
    PeerIndexTable, RibEntryRef, TableDumpWriter, UpdateLogWriter,
};
use bgp_proto::wire::{encode_announcements, encode_withdrawals};
use bgp_proto::{attr_type, CodecContext, Family, MpNextHop, Nlri};
use bytes::BytesMut;
use ipnet::IpNet;

mod writer_support;
use writer_support::{path_attrs, peers};

fn in_ci() -> bool {
    matches!(
        std::env::var("CI")
            .map(|v| v.to_ascii_lowercase())
            .as_deref(),
        Ok("true" | "1" | "yes")
    )
}

/// The bgpdump binary, or `None` (after saying so) when the test must be skipped.
fn bgpdump(test: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|path| {
        std::env::split_paths(&path)
            .map(|d| d.join("bgpdump"))
            .find(|p| p.is_file())
    });
    match found {
        Some(p) => Some(p),
        None if in_ci() => {
            panic!("{test}: bgpdump is not installed (CI=true: apt-get install bgpdump)")
        }
        None => {
            eprintln!("SKIPPED (missing binaries: bgpdump): {test}");
            None
        }
    }
}

/// `bgpdump -m FILE`'s lines; bgpdump must exit 0 and log nothing (`-v`: its log goes
/// to stderr instead of syslog; a clean read logs nothing).
fn bgpdump_lines(bin: &Path, file: &Path) -> Vec<String> {
    let out = Command::new(bin)
        .args(["-v", "-m"])
        .arg(file)
        .output()
        .expect("running bgpdump");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bgpdump failed: {stderr}");
    assert!(stderr.trim().is_empty(), "bgpdump complained: {stderr}");
    String::from_utf8(out.stdout)
        .expect("bgpdump prints text")
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn table_dump_reads_in_bgpdump() {
    let Some(bin) = bgpdump("table_dump_reads_in_bgpdump") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bview.gz");
    let table = peers();
    let v4 = path_attrs(&[65001, 4_200_000_000]);
    let v6 = path_attrs(&[4_200_000_000, 64496]);
    let mut block4 = BytesMut::new();
    let nh4 = MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    encode_rib_attributes(Family::IPV4_UNICAST, &v4, Some(&nh4), &mut block4).unwrap();
    let mut block6 = BytesMut::new();
    let nh6 = MpNextHop::V6 {
        global: "2001:db8::2".parse().unwrap(),
        link_local: Some("fe80::2".parse().unwrap()),
    };
    encode_rib_attributes(Family::IPV6_UNICAST, &v6, Some(&nh6), &mut block6).unwrap();
    let file = MrtFile::create(&path, Compression::Gzip).unwrap();
    let mut w = TableDumpWriter::new(file, 1_700_000_000, &table).unwrap();
    let e = |peer_index, path_id, attributes| RibEntryRef {
        peer_index,
        originated_time: 1_699_999_000,
        path_id,
        attributes,
    };
    w.write_rib("10.1.0.0/16".parse().unwrap(), &[e(0, None, &block4)])
        .unwrap();
    w.write_rib(
        "10.2.0.0/16".parse().unwrap(),
        &[
            e(0, None, &block4),
            e(0, Some(3), &block4),
            e(0, Some(4), &block4),
        ],
    )
    .unwrap();
    w.write_rib("2001:db8:1::/48".parse().unwrap(), &[e(1, None, &block6)])
        .unwrap();
    w.write_rib(
        "2001:db8:2::/48".parse().unwrap(),
        &[e(1, Some(9), &block6)],
    )
    .unwrap();
    w.finish().unwrap().finish().unwrap();

    let lines = bgpdump_lines(&bin, &path);
    let p4 = "192.0.2.1|65001";
    let a4 = "65001 4200000000|IGP|192.0.2.1|100|10|65000:1|NAG||";
    let p6 = "2001:db8::2|4200000000";
    let a6 = "4200000000 64496|IGP|2001:db8::2|100|10|65000:1|NAG||";
    assert_eq!(
        lines,
        [
            format!("TABLE_DUMP2|1700000000|B|{p4}|10.1.0.0/16|{a4}"),
            format!("TABLE_DUMP2|1700000000|B|{p4}|10.2.0.0/16|{a4}"),
            format!("TABLE_DUMP2_AP|1700000000|B|{p4}|10.2.0.0/16|3|{a4}"),
            format!("TABLE_DUMP2_AP|1700000000|B|{p4}|10.2.0.0/16|4|{a4}"),
            format!("TABLE_DUMP2|1700000000|B|{p6}|2001:db8:1::/48|{a6}"),
            format!("TABLE_DUMP2_AP|1700000000|B|{p6}|2001:db8:2::/48|9|{a6}"),
        ]
    );
}

#[test]
fn update_log_reads_in_bgpdump() {
    let Some(bin) = bgpdump("update_log_reads_in_bgpdump") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("updates.mrt");
    let file = MrtFile::create(&path, Compression::None).unwrap();
    let mut w = UpdateLogWriter::new(file);
    let t = |us| MrtTime {
        seconds: 1_700_000_000,
        microseconds: us,
    };
    let as4 = Bgp4mpSession {
        peer_as: 4_200_000_000,
        local_as: 65000,
        interface_index: 0,
        peer_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        local_ip: IpAddr::V4(Ipv4Addr::new(192, 0, 2, 2)),
        four_octet_as: true,
    };
    let as2 = Bgp4mpSession {
        peer_as: 64496,
        four_octet_as: false,
        ..as4.clone()
    };
    let v6 = Bgp4mpSession {
        peer_ip: "2001:db8::1".parse().unwrap(),
        local_ip: "2001:db8::2".parse().unwrap(),
        ..as4.clone()
    };
    let nh4 = MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    let nh6 = MpNextHop::V6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: None,
    };
    let ctx = |four, add_path: bool| CodecContext {
        four_octet_as: four,
        extended_message: false,
        add_path_receive: if add_path {
            vec![Family::IPV4_UNICAST]
        } else {
            vec![]
        },
        add_path_send: if add_path {
            vec![Family::IPV4_UNICAST]
        } else {
            vec![]
        },
        external: false,
    };
    let announce = |family, nh: &MpNextHop, prefix: &str, path_id, ctx: &CodecContext| {
        let mut out = Vec::new();
        let nlri = [Nlri {
            path_id,
            prefix: prefix.parse().unwrap(),
        }];
        let attrs = path_attrs(&[4_200_000_000, 64496]);
        encode_announcements(family, &attrs, Some(nh), &nlri, ctx, &mut out).unwrap();
        out.remove(0)
    };
    let v4 = Family::IPV4_UNICAST;
    let (c4, c2, ap) = (ctx(true, false), ctx(false, false), ctx(true, true));
    w.write_state_change(t(1), &as4, BgpState::OpenConfirm, BgpState::Established)
        .unwrap();
    let m = announce(v4, &nh4, "10.1.0.0/16", None, &c4);
    w.write_message(t(2), &as4, Direction::Received, false, &m)
        .unwrap();
    // A 2-octet session: AS_TRANS in AS_PATH, the real path in AS4_PATH.
    let m = announce(v4, &nh4, "10.2.0.0/16", None, &c2);
    w.write_message(t(3), &as2, Direction::Received, false, &m)
        .unwrap();
    let m = announce(v4, &nh4, "10.3.0.0/16", Some(7), &ap);
    w.write_message(t(4), &as4, Direction::Received, true, &m)
        .unwrap();
    let m = announce(Family::IPV6_UNICAST, &nh6, "2001:db8:5::/48", None, &c4);
    w.write_message(t(5), &v6, Direction::Received, false, &m)
        .unwrap();
    let mut withdrawn = Vec::new();
    let nlri = [Nlri::new("10.1.0.0/16".parse().unwrap())];
    encode_withdrawals(v4, &nlri, &c4, &mut withdrawn).unwrap();
    w.write_message(t(6), &as4, Direction::Sent, false, &withdrawn[0])
        .unwrap();
    w.write_state_change(t(7), &as4, BgpState::Established, BgpState::Idle)
        .unwrap();
    w.finish().unwrap().finish().unwrap();

    let lines = bgpdump_lines(&bin, &path);
    let attrs4 = "4200000000 64496|IGP|192.0.2.1|100|10|65000:1|NAG||";
    let attrs6 = "4200000000 64496|IGP|2001:db8::1|100|10|65000:1|NAG||";
    assert_eq!(
        lines,
        [
            "BGP4MP_ET|1700000000.000001|STATE|192.0.2.1|4200000000|5|6".to_string(),
            format!("BGP4MP_ET|1700000000.000002|A|192.0.2.1|4200000000|10.1.0.0/16|{attrs4}"),
            format!("BGP4MP_ET|1700000000.000003|A|192.0.2.1|64496|10.2.0.0/16|{attrs4}"),
            format!("BGP4MP_ET_AP|1700000000.000004|A|192.0.2.1|4200000000|10.3.0.0/16|7|{attrs4}"),
            format!(
                "BGP4MP_ET|1700000000.000005|A|2001:db8::1|4200000000|2001:db8:5::/48|{attrs6}"
            ),
            // bgpdump names the peer in LOCAL lines too (the message went to it).
            "BGP4MP_ET_LOCAL|1700000000.000006|W|192.0.2.1|4200000000|10.1.0.0/16".to_string(),
            "BGP4MP_ET|1700000000.000007|STATE|192.0.2.1|4200000000|6|1".to_string(),
        ]
    );
}

fn ris_table() -> PathBuf {
    Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../tests/data/mrt/bview.20020722.2337.gz"
    ))
    .to_path_buf()
}

#[test]
fn ris_2002_table_rewritten_as_table_dump_v2_prints_the_same_lines() {
    let Some(bin) = bgpdump("ris_2002_table_rewritten_as_table_dump_v2_prints_the_same_lines")
    else {
        return;
    };
    // The peers of the table, in order of appearance.
    let mut peers: Vec<Peer> = Vec::new();
    let routes: Vec<_> = bgp_mrt::open(ris_table())
        .unwrap()
        .map(|r| match r.unwrap() {
            bgp_mrt::MrtRecord {
                header,
                body: MrtBody::TableDump(td),
            } => (header.timestamp, td),
            other => panic!("not a TABLE_DUMP record: {other:?}"),
        })
        .collect();
    for (_, td) in &routes {
        if !peers
            .iter()
            .any(|p| p.ip == td.peer_ip && p.asn == td.peer_as)
        {
            peers.push(Peer {
                bgp_id: Ipv4Addr::UNSPECIFIED,
                ip: td.peer_ip,
                asn: td.peer_as,
            });
        }
    }
    let table = PeerIndexTable {
        collector_bgp_id: Ipv4Addr::new(193, 0, 4, 28),
        view_name: String::new(),
        peers,
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bview.v2.gz");
    let first = routes.first().map_or(0, |(t, _)| *t);
    let mut w = TableDumpWriter::new(
        MrtFile::create(&path, Compression::Gzip).unwrap(),
        first,
        &table,
    )
    .unwrap();
    // Consecutive routes of one prefix (and one timestamp) make one RIB record.
    let mut blocks: Vec<(u16, u32, BytesMut)> = Vec::new();
    let mut current: Option<(IpNet, u32)> = None;
    let flush = |w: &mut TableDumpWriter<MrtFile>,
                 key: Option<(IpNet, u32)>,
                 blocks: &mut Vec<(u16, u32, BytesMut)>| {
        if let Some((prefix, timestamp)) = key {
            w.set_timestamp(timestamp);
            let entries: Vec<RibEntryRef<'_>> = blocks
                .iter()
                .map(|(peer_index, originated_time, b)| RibEntryRef {
                    peer_index: *peer_index,
                    originated_time: *originated_time,
                    path_id: None,
                    attributes: b,
                })
                .collect();
            w.write_rib(prefix, &entries).unwrap();
        }
        blocks.clear();
    };
    for (timestamp, td) in &routes {
        if current != Some((td.prefix, *timestamp)) {
            flush(&mut w, current, &mut blocks);
            current = Some((td.prefix, *timestamp));
        }
        let peer_index = table
            .peers
            .iter()
            .position(|p| p.ip == td.peer_ip && p.asn == td.peer_as)
            .unwrap() as u16;
        let mut attrs = td.decode_attributes().unwrap().attributes;
        // The codec discards an AGGREGATOR of AS 0 on receipt (RFC 7606 7.7; 8 routes
        // here) and a non-empty ATOMIC_AGGREGATE; a rewrite keeps what the route carried.
        if attrs.aggregator.is_none() {
            attrs.aggregator = raw_aggregator(&td.attributes, false);
        }
        attrs.atomic_aggregate |= has_attribute(&td.attributes, attr_type::ATOMIC_AGGREGATE);
        let mut block = BytesMut::new();
        encode_rib_attributes(Family::IPV4_UNICAST, &attrs, None, &mut block).unwrap();
        blocks.push((peer_index, td.originated_time, block));
    }
    flush(&mut w, current, &mut blocks);
    assert_eq!(w.entries(), routes.len() as u64);
    w.finish().unwrap().finish().unwrap();

    let mut expected = String::new();
    let mut exp_path = ris_table().into_os_string();
    exp_path.push(".bgpdump-m.gz");
    flate2::read::MultiGzDecoder::new(std::fs::File::open(exp_path).unwrap())
        .read_to_string(&mut expected)
        .unwrap();
    let got = bgpdump_lines(&bin, &path);
    let want: Vec<String> = expected
        .lines()
        .map(|l| l.replacen("TABLE_DUMP|", "TABLE_DUMP2|", 1))
        .collect();
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g, w, "line {}", i + 1);
    }
}
