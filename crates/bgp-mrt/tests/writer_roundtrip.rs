//! The MRT writer read back by this crate's reader: every record written comes back with
//! the same values (peer table, RIB records and entries, decoded attributes, BGP4MP
//! messages and state changes with their microseconds), through plain, gzip and bzip2
//! files, under arbitrary tables (property test); and what the format cannot express is
//! refused without writing anything.

use std::io::Cursor;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, UNIX_EPOCH};

use bgp_mrt::writer::encode_rib_attributes;
use bgp_mrt::{
    Bgp4mpSession, BgpState, CompressedWriter, Compression, Direction, FileNamePattern, MrtBody,
    MrtFile, MrtReader, MrtRecord, MrtTime, Period, RibAttributeCache, RibEntryRef, RibNlri,
    RotatingUpdateLog, TableDumpWriter, UpdateLogWriter, WriteError,
};
use bgp_proto::wire::{decode_message, encode_announcements, encode_withdrawals, Inbound};
use bgp_proto::{CodecContext, Community, Family, MpNextHop, Nlri, PathAttributes};
use bytes::BytesMut;
use ipnet::IpNet;
use proptest::prelude::*;

mod writer_support;
use writer_support::{path_attrs, peers};

/// `path_attrs(asns)` with these communities instead.
fn attrs(asns: &[u32], communities: &[u32]) -> PathAttributes {
    PathAttributes {
        communities: communities.iter().map(|&c| Community(c)).collect(),
        ..path_attrs(asns)
    }
}

fn rib_block(family: Family, a: &PathAttributes, nh: &MpNextHop) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_rib_attributes(family, a, Some(nh), &mut out).unwrap();
    out.to_vec()
}

fn records(bytes: Vec<u8>) -> Vec<MrtRecord> {
    MrtReader::new(Cursor::new(bytes))
        .map(|r| r.expect("record reads back"))
        .collect()
}

#[test]
fn table_dump_reads_back_entry_by_entry() {
    let v4_nh = MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    let v6_nh = MpNextHop::V6 {
        global: "2001:db8::2".parse().unwrap(),
        link_local: Some("fe80::2".parse().unwrap()),
    };
    let a1 = attrs(&[65001, 4_200_000_000], &[0xFFFF_FF01]);
    let a2 = attrs(&[4_200_000_000, 65010], &[]);
    let b1 = rib_block(Family::IPV4_UNICAST, &a1, &v4_nh);
    let b2 = rib_block(Family::IPV6_UNICAST, &a2, &v6_nh);
    // An IPv4 route over an IPv6 next hop (RFC 8950) from the IPv6 peer.
    let b3 = rib_block(Family::IPV4_UNICAST, &a2, &v6_nh);

    let mut w = TableDumpWriter::new(Vec::new(), 1_700_000_000, &peers()).unwrap();
    let p4: IpNet = "10.1.0.0/16".parse().unwrap();
    let p6: IpNet = "2001:db8:100::/40".parse().unwrap();
    let entry = |peer_index, path_id, attributes| RibEntryRef {
        peer_index,
        originated_time: 1_600_000_000 + u32::from(peer_index),
        path_id,
        attributes,
    };
    // Mixed plain and ADD-PATH entries: two records for the prefix.
    w.write_rib(
        p4,
        &[
            entry(0, None, &b1),
            entry(1, Some(7), &b3),
            entry(1, Some(9), &b3),
        ],
    )
    .unwrap();
    w.write_rib(p6, &[entry(1, None, &b2)]).unwrap();
    // Host bits are not written; an empty prefix writes nothing.
    w.write_rib("10.2.3.4/15".parse().unwrap(), &[entry(0, Some(1), &b1)])
        .unwrap();
    w.write_rib("10.9.0.0/16".parse().unwrap(), &[]).unwrap();
    assert_eq!((w.records(), w.entries()), (4, 5));
    let out = records(w.finish().unwrap());

    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|r| r.header.timestamp == 1_700_000_000));
    assert_eq!(out[0].body, MrtBody::PeerIndexTable(peers()));
    let ribs: Vec<_> = out[1..]
        .iter()
        .map(|r| match &r.body {
            MrtBody::Rib(rib) => (r.header.subtype, rib.clone()),
            other => panic!("not a RIB record: {other:?}"),
        })
        .collect();
    let subtypes: Vec<u16> = ribs.iter().map(|(s, _)| *s).collect();
    assert_eq!(subtypes, [2, 8, 4, 8]);
    let seq: Vec<u32> = ribs.iter().map(|(_, r)| r.sequence).collect();
    assert_eq!(seq, [0, 1, 2, 3]);
    let (_, plain) = &ribs[0];
    assert_eq!(plain.nlri, RibNlri::Prefix(p4));
    assert!(!plain.add_path);
    assert_eq!(plain.entries.len(), 1);
    assert_eq!(plain.entries[0].peer_index, 0);
    assert_eq!(plain.entries[0].originated_time, 1_600_000_000);
    assert_eq!(plain.entries[0].path_id, None);
    let d = plain.entries[0].decode_attributes().unwrap();
    let mut want = a1.clone();
    want.next_hop = Some(Ipv4Addr::new(192, 0, 2, 1));
    assert_eq!(d.attributes, want);
    assert_eq!(d.mp_reach, None);

    let (_, ap) = &ribs[1];
    assert!(ap.add_path);
    assert_eq!(ap.nlri, RibNlri::Prefix(p4));
    let ids: Vec<_> = ap.entries.iter().map(|e| e.path_id).collect();
    assert_eq!(ids, [Some(7), Some(9)]);
    let d = ap.entries[0].decode_attributes().unwrap();
    assert_eq!(d.attributes, a2);
    assert!(d.abbreviated);
    assert_eq!(d.mp_reach.map(|m| m.next_hop), Some(v6_nh.clone()));

    let (_, v6) = &ribs[2];
    assert_eq!(v6.family, Family::IPV6_UNICAST);
    assert_eq!(v6.nlri, RibNlri::Prefix(p6));
    let d = v6.entries[0].decode_attributes().unwrap();
    assert_eq!(d.attributes, a2);
    assert_eq!(d.mp_reach.map(|m| m.next_hop), Some(v6_nh));

    assert_eq!(
        ribs[3].1.nlri,
        RibNlri::Prefix("10.2.0.0/15".parse().unwrap())
    );
}

#[test]
fn table_dump_refuses_what_mrt_cannot_express_and_writes_nothing_for_it() {
    let mut w = TableDumpWriter::new(Vec::new(), 1, &peers()).unwrap();
    let p: IpNet = "10.0.0.0/8".parse().unwrap();
    let ok = [0x40, 1, 1, 0];
    let long = vec![0u8; 70_000];
    let entry = |peer_index, attributes| RibEntryRef {
        peer_index,
        originated_time: 0,
        path_id: None,
        attributes,
    };
    let e = w.write_rib(p, &[entry(0, &ok), entry(2, &ok)]).unwrap_err();
    assert!(e.to_string().contains("peer index 2"), "{e}");
    let e = w
        .write_rib(p, &[entry(0, &ok), entry(0, &long)])
        .unwrap_err();
    assert!(matches!(e, WriteError::TooLarge { len: 70_000, .. }), "{e}");
    let many = vec![entry(0, &ok); 70_000];
    assert!(matches!(
        w.write_rib(p, &many),
        Err(WriteError::TooLarge { len: 70_000, .. })
    ));
    // The failed prefixes left nothing behind; the next one gets sequence 0.
    w.write_rib(p, &[entry(1, &ok)]).unwrap();
    let out = records(w.finish().unwrap());
    assert_eq!(out.len(), 2);
    let MrtBody::Rib(rib) = &out[1].body else {
        panic!("not a RIB record")
    };
    assert_eq!((rib.sequence, rib.entries.len()), (0, 1));

    let mut too_many = peers();
    too_many.peers = vec![too_many.peers[0].clone(); 65_536];
    assert!(TableDumpWriter::new(Vec::new(), 1, &too_many).is_err());
}

#[test]
fn attribute_cache_encodes_each_set_once_per_family() {
    let mut cache = RibAttributeCache::new();
    let a = attrs(&[65001], &[]);
    let nh4 = MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1));
    let nh6 = MpNextHop::V6 {
        global: "2001:db8::1".parse().unwrap(),
        link_local: None,
    };
    let first = cache
        .get_or_encode(1u32, Family::IPV4_UNICAST, &a, Some(&nh4))
        .unwrap()
        .to_vec();
    assert_eq!(first, rib_block(Family::IPV4_UNICAST, &a, &nh4));
    // Same key: the cached bytes, whatever is passed.
    let again = cache
        .get_or_encode(1, Family::IPV4_UNICAST, &PathAttributes::default(), None)
        .unwrap();
    assert_eq!(again, &first[..]);
    let v6 = cache
        .get_or_encode(1, Family::IPV6_UNICAST, &a, Some(&nh6))
        .unwrap()
        .to_vec();
    assert_eq!(v6, rib_block(Family::IPV6_UNICAST, &a, &nh6));
    assert_eq!(cache.len(), 2);
    assert!(cache
        .get_or_encode(2, Family::IPV6_UNICAST, &a, None)
        .is_err());
}

fn session(v6: bool, four_octet_as: bool) -> Bgp4mpSession {
    let (peer_ip, local_ip): (IpAddr, IpAddr) = if v6 {
        (
            "2001:db8::1".parse::<Ipv6Addr>().unwrap().into(),
            "2001:db8::2".parse::<Ipv6Addr>().unwrap().into(),
        )
    } else {
        (
            Ipv4Addr::new(192, 0, 2, 1).into(),
            Ipv4Addr::new(192, 0, 2, 2).into(),
        )
    };
    Bgp4mpSession {
        peer_as: 4_200_000_000,
        local_as: 65000,
        interface_index: 3,
        peer_ip,
        local_ip,
        four_octet_as,
    }
}

/// One UPDATE announcing `prefix` from `asns` under `ctx`.
fn update(prefix: &str, path_id: Option<u32>, ctx: &CodecContext) -> Vec<u8> {
    let prefix: IpNet = prefix.parse().unwrap();
    let family = match prefix {
        IpNet::V4(_) => Family::IPV4_UNICAST,
        IpNet::V6(_) => Family::IPV6_UNICAST,
    };
    let nh = match prefix {
        IpNet::V4(_) => MpNextHop::V4(Ipv4Addr::new(192, 0, 2, 1)),
        IpNet::V6(_) => MpNextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: None,
        },
    };
    let mut out = Vec::new();
    let a = attrs(&[64496, 4_200_000_000], &[0x0001_0002]);
    let nlri = [Nlri { path_id, prefix }];
    encode_announcements(family, &a, Some(&nh), &nlri, ctx, &mut out).unwrap();
    out.remove(0).to_vec()
}

#[test]
fn update_log_reads_back_in_every_subtype() {
    let mut w = UpdateLogWriter::new(Vec::new());
    let t = MrtTime {
        seconds: 1_700_000_000,
        microseconds: 123_456,
    };
    let mut written = Vec::new();
    for four in [false, true] {
        for add_path in [false, true] {
            for direction in [Direction::Received, Direction::Sent] {
                for v6 in [false, true] {
                    let families = if add_path {
                        vec![Family::IPV4_UNICAST, Family::IPV6_UNICAST]
                    } else {
                        vec![]
                    };
                    let ctx = CodecContext {
                        four_octet_as: four,
                        extended_message: true,
                        add_path_receive: families.clone(),
                        add_path_send: families,
                        external: false,
                    };
                    let prefix = if v6 { "2001:db8:7::/48" } else { "10.7.0.0/16" };
                    let msg = update(prefix, add_path.then_some(42), &ctx);
                    let s = session(v6, four);
                    w.write_message(t, &s, direction, add_path, &msg).unwrap();
                    written.push((s, four, add_path, direction, msg, ctx));
                }
            }
        }
    }
    let s = session(true, true);
    w.write_state_change(t, &s, BgpState::OpenConfirm, BgpState::Established)
        .unwrap();
    assert_eq!(w.records(), 17);
    let out = records(w.finish().unwrap());
    assert_eq!(out.len(), 17);
    for (record, (s, four, add_path, direction, msg, ctx)) in out.iter().zip(&written) {
        assert_eq!(record.header.mrt_type, 17, "BGP4MP_ET");
        assert_eq!(record.header.timestamp, 1_700_000_000);
        assert_eq!(record.header.microseconds, Some(123_456));
        let MrtBody::Message(m) = &record.body else {
            panic!("not a message: {record:?}")
        };
        assert_eq!((m.four_octet_as, m.add_path), (*four, *add_path));
        assert_eq!(m.local, *direction == Direction::Sent);
        // A 2-octet record has AS_TRANS for the 4-octet peer AS.
        assert_eq!(m.peer_as, if *four { 4_200_000_000 } else { 23456 });
        assert_eq!((m.local_as, m.interface_index), (65000, 3));
        assert_eq!((m.peer_ip, m.local_ip), (s.peer_ip, s.local_ip));
        assert_eq!(&m.message[..], &msg[..]);
        // The reader's codec context decodes the message as the session did.
        assert_eq!(m.decode(), decode_message(msg, ctx));
        let Ok(Inbound::Update(u)) = m.decode() else {
            panic!("not an UPDATE")
        };
        let path = u.update.attributes.as_path.clone().unwrap();
        assert_eq!(path.segments[0].asns, [64496, 4_200_000_000]);
        let announced: Vec<_> = u.update.announced().map(|(_, n)| n.path_id).collect();
        assert_eq!(announced, [add_path.then_some(42)]);
    }
    let MrtBody::StateChange(sc) = &out[16].body else {
        panic!("not a state change")
    };
    assert_eq!(out[16].header.subtype, 5, "STATE_CHANGE_AS4");
    assert_eq!((sc.old_state, sc.new_state), (5, 6));
    assert_eq!((sc.peer_as, sc.local_as), (4_200_000_000, 65000));
    assert_eq!(sc.peer_ip, s.peer_ip);
}

#[test]
fn update_log_refuses_mixed_families_and_short_messages() {
    let mut w = UpdateLogWriter::new(Vec::new());
    let t = MrtTime {
        seconds: 1,
        microseconds: 0,
    };
    let mut s = session(false, true);
    s.local_ip = "2001:db8::2".parse().unwrap();
    let mut withdraw = Vec::new();
    let ctx = CodecContext::default();
    let nlri = [Nlri::new("10.0.0.0/8".parse().unwrap())];
    encode_withdrawals(Family::IPV4_UNICAST, &nlri, &ctx, &mut withdraw).unwrap();
    assert!(w
        .write_message(t, &s, Direction::Received, false, &withdraw[0])
        .is_err());
    assert!(w
        .write_state_change(t, &s, BgpState::Idle, BgpState::Connect)
        .is_err());
    let s = session(false, true);
    assert!(w
        .write_message(t, &s, Direction::Received, false, &[0xff; 18])
        .is_err());
    assert_eq!(w.records(), 0);
    assert!(w.finish().unwrap().is_empty());
    assert!(MrtTime::from_system_time(UNIX_EPOCH - Duration::from_secs(1)).is_err());
    assert!(MrtTime::from_system_time(UNIX_EPOCH + Duration::from_secs(1 << 33)).is_err());
    let t = MrtTime::from_system_time(UNIX_EPOCH + Duration::from_micros(5_000_007)).unwrap();
    assert_eq!((t.seconds, t.microseconds), (5, 7));
}

#[test]
fn files_are_compressed_as_named_and_appear_only_when_finished() {
    let dir = tempfile::tempdir().unwrap();
    for (name, compression) in [
        ("dump.mrt", Compression::None),
        ("dump.gz", Compression::Gzip),
        ("dump.bz2", Compression::Bzip2),
    ] {
        let path = dir.path().join(name);
        let file = MrtFile::create(&path, Compression::for_path(&path)).unwrap();
        assert_eq!(file.path(), path);
        let mut w = TableDumpWriter::new(file, 7, &peers()).unwrap();
        let block = [0x40, 1, 1, 0, 0x40, 3, 4, 192, 0, 2, 1];
        for i in 0..1000u32 {
            let prefix =
                IpNet::new(IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + (i << 8))), 24).unwrap();
            let e = RibEntryRef {
                peer_index: 0,
                originated_time: i,
                path_id: None,
                attributes: &block,
            };
            w.write_rib(prefix, &[e]).unwrap();
        }
        let file = w.finish().unwrap();
        assert!(!path.exists(), "{name} visible before it is complete");
        assert_eq!(file.finish().unwrap(), path);
        let raw = std::fs::read(&path).unwrap();
        assert_eq!(Compression::detect(&raw), compression, "{name}");
        let back: Vec<_> = bgp_mrt::open(&path).unwrap().collect();
        assert_eq!(back.len(), 1001, "{name}");
        assert!(back.iter().all(|r| r.is_ok()));
    }
    // Dropped unfinished: no file, no leftover.
    let path = dir.path().join("abandoned.gz");
    let mut w = TableDumpWriter::new(
        MrtFile::create(&path, Compression::Gzip).unwrap(),
        1,
        &peers(),
    )
    .unwrap();
    w.write_rib("10.0.0.0/8".parse().unwrap(), &[]).unwrap();
    drop(w);
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.contains("abandoned"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[test]
fn any_writer_can_be_compressed() {
    for compression in [Compression::None, Compression::Gzip, Compression::Bzip2] {
        let out = CompressedWriter::new(Vec::new(), compression);
        let mut log = UpdateLogWriter::new(out);
        let t = MrtTime {
            seconds: 1,
            microseconds: 2,
        };
        let s = session(false, true);
        log.write_state_change(t, &s, BgpState::Idle, BgpState::Connect)
            .unwrap();
        let bytes = log.finish().unwrap().finish().unwrap();
        assert_eq!(Compression::detect(&bytes), compression);
        let back: Vec<_> = bgp_mrt::MrtReader::decompressed(Cursor::new(bytes))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(back.len(), 1);
        assert_eq!(back[0].header.microseconds, Some(2));
    }
}

#[test]
fn rotating_log_writes_one_file_per_period() {
    let dir = tempfile::tempdir().unwrap();
    let pattern =
        FileNamePattern::new(dir.path().join("updates.%Y%m%d.%H%M.gz").to_string_lossy()).unwrap();
    let period = Period::new(Duration::from_secs(300)).unwrap();
    let mut log = RotatingUpdateLog::new(pattern, period, Compression::Gzip);
    assert_eq!(log.deadline(), None);
    let s = session(false, true);
    let ctx = CodecContext {
        four_octet_as: true,
        ..Default::default()
    };
    let msg = update("10.7.0.0/16", None, &ctx);
    let t0 = UNIX_EPOCH + Duration::from_secs(1_027_377_300 + 10); // 2002-07-22 22:35:10
    let done = log
        .write_message(t0, &s, Direction::Received, false, &msg)
        .unwrap();
    assert_eq!(done, None);
    let second = t0 + Duration::from_secs(100);
    log.write_state_change(second, &s, BgpState::Established, BgpState::Idle)
        .unwrap();
    assert_eq!(log.deadline(), Some(t0 + Duration::from_secs(290)));
    // A quiet end of period: the timer completes the file.
    assert_eq!(
        log.rotate_if_due(t0 + Duration::from_secs(289)).unwrap(),
        None
    );
    let first = log
        .rotate_if_due(t0 + Duration::from_secs(290))
        .unwrap()
        .expect("first file completed");
    assert_eq!(first, dir.path().join("updates.20020722.2235.gz"));
    // Next period, written by a message 12 minutes later.
    let later = t0 + Duration::from_secs(720);
    log.write_message(later, &s, Direction::Sent, false, &msg)
        .unwrap();
    let last = log.close().unwrap().expect("second file");
    assert_eq!(last, dir.path().join("updates.20020722.2245.gz"));
    assert_eq!(log.close().unwrap(), None);

    let first: Vec<_> = bgp_mrt::open(&first).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(first.len(), 2);
    assert!(matches!(first[0].body, MrtBody::Message(_)));
    assert!(matches!(first[1].body, MrtBody::StateChange(_)));
    assert_eq!(first[1].header.timestamp, 1_027_377_410);
    let last: Vec<_> = bgp_mrt::open(&last).unwrap().map(|r| r.unwrap()).collect();
    assert_eq!(last.len(), 1);
}

fn arb_prefix() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (any::<u32>(), 0u8..=32)
            .prop_map(|(a, l)| IpNet::new(IpAddr::V4(a.into()), l).unwrap().trunc()),
        (any::<u128>(), 0u8..=128)
            .prop_map(|(a, l)| IpNet::new(IpAddr::V6(a.into()), l).unwrap().trunc()),
    ]
}

fn arb_entry() -> impl Strategy<Value = (u16, u32, Option<u32>, Vec<u8>)> {
    (
        0u16..3,
        any::<u32>(),
        proptest::option::of(any::<u32>()),
        proptest::collection::vec(any::<u8>(), 0..40),
    )
}

proptest! {
    /// Any table written reads back record by record: prefixes, entries with their peer
    /// index, time, path id and attribute bytes, in order.
    #[test]
    fn any_table_reads_back(
        timestamp in any::<u32>(),
        table in proptest::collection::vec(
            (arb_prefix(), proptest::collection::vec(arb_entry(), 0..6)), 0..20),
    ) {
        let mut index = peers();
        index.peers.push(index.peers[0].clone());
        let mut w = TableDumpWriter::new(Vec::new(), timestamp, &index).unwrap();
        let mut want = Vec::new();
        for (prefix, entries) in &table {
            let refs: Vec<RibEntryRef<'_>> = entries
                .iter()
                .map(|(peer_index, originated_time, path_id, attributes)| RibEntryRef {
                    peer_index: *peer_index,
                    originated_time: *originated_time,
                    path_id: *path_id,
                    attributes,
                })
                .collect();
            w.write_rib(*prefix, &refs).unwrap();
            for add_path in [false, true] {
                let group: Vec<_> = entries
                    .iter()
                    .filter(|e| e.2.is_some() == add_path)
                    .cloned()
                    .collect();
                if !group.is_empty() {
                    want.push((*prefix, add_path, group));
                }
            }
        }
        let out = records(w.finish().unwrap());
        prop_assert_eq!(&out[0].body, &MrtBody::PeerIndexTable(index));
        prop_assert_eq!(out.len(), want.len() + 1);
        for (i, (record, (prefix, add_path, group))) in out[1..].iter().zip(&want).enumerate() {
            prop_assert_eq!(record.header.timestamp, timestamp);
            let MrtBody::Rib(rib) = &record.body else {
                panic!("not a RIB record: {record:?}")
            };
            prop_assert_eq!(rib.sequence, i as u32);
            prop_assert_eq!(&rib.nlri, &RibNlri::Prefix(*prefix));
            prop_assert_eq!(rib.add_path, *add_path);
            let got: Vec<_> = rib
                .entries
                .iter()
                .map(|e| (e.peer_index, e.originated_time, e.path_id, e.attributes.to_vec()))
                .collect();
            prop_assert_eq!(&got, group);
        }
    }
}
