//! Statistics Report (RFC 7854 4.8, with the Adj-RIB-Out types of RFC 8671 5).
//!
//! Each statistic is a TLV whose layout its type fixes: a 32-bit counter, a 64-bit
//! gauge, or an AFI/SAFI followed by a 64-bit gauge. Values of types this codec does not
//! know are kept as bytes. A known type with the wrong length is refused rather than
//! guessed at.

use bgp_proto::{Afi, Family, Safi};
use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::header::u16_len;
use super::peer::PeerHeader;
use super::reader::Reader;

/// Statistics types (RFC 7854 4.8, RFC 8671 5, IANA "BMP Statistics Types").
pub mod stat_type {
    /// Prefixes rejected by inbound policy (counter).
    pub const REJECTED_PREFIXES: u16 = 0;
    /// Known duplicate prefix advertisements (counter).
    pub const DUPLICATE_PREFIXES: u16 = 1;
    /// Known duplicate withdraws (counter).
    pub const DUPLICATE_WITHDRAWS: u16 = 2;
    /// Updates invalidated due to CLUSTER_LIST loop (counter).
    pub const CLUSTER_LIST_LOOPS: u16 = 3;
    /// Updates invalidated due to AS_PATH loop (counter).
    pub const AS_PATH_LOOPS: u16 = 4;
    /// Updates invalidated due to ORIGINATOR_ID (counter).
    pub const ORIGINATOR_ID_LOOPS: u16 = 5;
    /// Updates invalidated due to AS_CONFED loop (counter).
    pub const AS_CONFED_LOOPS: u16 = 6;
    /// Routes in Adj-RIBs-In (gauge).
    pub const ADJ_RIB_IN_ROUTES: u16 = 7;
    /// Routes in Loc-RIB (gauge).
    pub const LOC_RIB_ROUTES: u16 = 8;
    /// Routes in a per-AFI/SAFI Adj-RIB-In (AFI/SAFI, gauge).
    pub const ADJ_RIB_IN_FAMILY_ROUTES: u16 = 9;
    /// Routes in a per-AFI/SAFI Loc-RIB (AFI/SAFI, gauge).
    pub const LOC_RIB_FAMILY_ROUTES: u16 = 10;
    /// Updates subjected to treat-as-withdraw (RFC 7606) (counter).
    pub const TREAT_AS_WITHDRAW_UPDATES: u16 = 11;
    /// Prefixes subjected to treat-as-withdraw (counter).
    pub const TREAT_AS_WITHDRAW_PREFIXES: u16 = 12;
    /// Duplicate update messages received (counter).
    pub const DUPLICATE_UPDATES: u16 = 13;
    /// Routes in pre-policy Adj-RIB-Out (gauge, RFC 8671).
    pub const ADJ_RIB_OUT_PRE_ROUTES: u16 = 14;
    /// Routes in post-policy Adj-RIB-Out (gauge, RFC 8671).
    pub const ADJ_RIB_OUT_POST_ROUTES: u16 = 15;
    /// Routes in a per-AFI/SAFI pre-policy Adj-RIB-Out (AFI/SAFI, gauge, RFC 8671).
    pub const ADJ_RIB_OUT_PRE_FAMILY_ROUTES: u16 = 16;
    /// Routes in a per-AFI/SAFI post-policy Adj-RIB-Out (AFI/SAFI, gauge, RFC 8671).
    pub const ADJ_RIB_OUT_POST_FAMILY_ROUTES: u16 = 17;
}

/// The value layouts of statistics.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
enum Layout {
    Counter,
    Gauge,
    FamilyGauge,
}

fn layout(code: u16) -> Option<Layout> {
    use self::stat_type as t;
    Some(match code {
        t::REJECTED_PREFIXES..=t::AS_CONFED_LOOPS
        | t::TREAT_AS_WITHDRAW_UPDATES
        | t::TREAT_AS_WITHDRAW_PREFIXES
        | t::DUPLICATE_UPDATES => Layout::Counter,
        t::ADJ_RIB_IN_ROUTES
        | t::LOC_RIB_ROUTES
        | t::ADJ_RIB_OUT_PRE_ROUTES
        | t::ADJ_RIB_OUT_POST_ROUTES => Layout::Gauge,
        t::ADJ_RIB_IN_FAMILY_ROUTES
        | t::LOC_RIB_FAMILY_ROUTES
        | t::ADJ_RIB_OUT_PRE_FAMILY_ROUTES
        | t::ADJ_RIB_OUT_POST_FAMILY_ROUTES => Layout::FamilyGauge,
        _ => return None,
    })
}

/// A statistic's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatValue {
    /// A 32-bit counter (wraps, RFC 7854 4.8).
    Counter(u32),
    /// A 64-bit gauge.
    Gauge(u64),
    /// A 64-bit gauge for one AFI/SAFI.
    FamilyGauge(Family, u64),
    /// The value of a type this codec does not know.
    Other(Bytes),
}

/// One statistic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stat {
    pub stat_type: u16,
    pub value: StatValue,
}

impl Stat {
    pub fn counter(stat_type: u16, value: u32) -> Stat {
        Stat {
            stat_type,
            value: StatValue::Counter(value),
        }
    }

    pub fn gauge(stat_type: u16, value: u64) -> Stat {
        Stat {
            stat_type,
            value: StatValue::Gauge(value),
        }
    }

    pub fn family_gauge(stat_type: u16, family: Family, value: u64) -> Stat {
        Stat {
            stat_type,
            value: StatValue::FamilyGauge(family, value),
        }
    }

    fn decode(r: &mut Reader) -> Result<Stat, DecodeError> {
        let stat_type = r.u16("stat type")?;
        let len = r.u16("stat length")?;
        let mut v = Reader::new(r.take(usize::from(len), "stat value")?);
        let (want, value) = match layout(stat_type) {
            Some(Layout::Counter) => (4, StatValue::Counter(v.u32("stat counter").unwrap_or(0))),
            Some(Layout::Gauge) => (8, StatValue::Gauge(v.u64("stat gauge").unwrap_or(0))),
            Some(Layout::FamilyGauge) => {
                let afi = v.u16("stat AFI").unwrap_or(0);
                let safi = v.u8("stat SAFI").unwrap_or(0);
                let gauge = v.u64("stat gauge").unwrap_or(0);
                let family = Family::new(Afi(afi), Safi(safi));
                (11, StatValue::FamilyGauge(family, gauge))
            }
            None => {
                return Ok(Stat {
                    stat_type,
                    value: StatValue::Other(v.rest()),
                })
            }
        };
        if len != want {
            return Err(DecodeError::Malformed(format!(
                "stat type {stat_type} of {len} octets, RFC 7854 4.8 says {want}"
            )));
        }
        Ok(Stat { stat_type, value })
    }

    fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let layout = layout(self.stat_type);
        let fits = matches!(
            (&self.value, layout),
            (StatValue::Counter(_), Some(Layout::Counter))
                | (StatValue::Gauge(_), Some(Layout::Gauge))
                | (StatValue::FamilyGauge(..), Some(Layout::FamilyGauge))
                | (StatValue::Other(_), None)
        );
        if !fits {
            return Err(EncodeError::Invalid(format!(
                "stat type {} cannot hold {:?}",
                self.stat_type, self.value
            )));
        }
        out.put_u16(self.stat_type);
        match &self.value {
            StatValue::Counter(c) => {
                out.put_u16(4);
                out.put_u32(*c);
            }
            StatValue::Gauge(g) => {
                out.put_u16(8);
                out.put_u64(*g);
            }
            StatValue::FamilyGauge(f, g) => {
                out.put_u16(11);
                out.put_u16(f.afi.0);
                out.put_u8(f.safi.0);
                out.put_u64(*g);
            }
            StatValue::Other(b) => {
                out.put_u16(u16_len("stat value", b.len())?);
                out.put_slice(b);
            }
        }
        Ok(())
    }
}

/// A Statistics Report about one peer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatisticsReport {
    pub peer: PeerHeader,
    pub stats: Vec<Stat>,
}

impl StatisticsReport {
    /// The first statistic of `stat_type` (and `family`, for per-family types).
    pub fn get(&self, stat_type: u16, family: Option<Family>) -> Option<&StatValue> {
        self.stats
            .iter()
            .filter(|s| s.stat_type == stat_type)
            .map(|s| &s.value)
            .find(|v| match (v, family) {
                (StatValue::FamilyGauge(f, _), Some(want)) => *f == want,
                (StatValue::FamilyGauge(..), None) => false,
                (_, want) => want.is_none(),
            })
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<StatisticsReport, DecodeError> {
        let peer = PeerHeader::decode(r)?;
        let count = r.u32("stats count")?;
        // Each statistic is at least 4 octets: never reserve more than fits.
        let cap = usize::try_from(count)
            .unwrap_or(usize::MAX)
            .min(r.remaining() / 4);
        let mut stats = Vec::with_capacity(cap);
        for _ in 0..count {
            stats.push(Stat::decode(r)?);
        }
        if !r.is_empty() {
            return Err(DecodeError::Malformed(format!(
                "{} octets after {count} statistics",
                r.remaining()
            )));
        }
        Ok(StatisticsReport { peer, stats })
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let count = u32::try_from(self.stats.len()).map_err(|_| EncodeError::TooLong {
            what: "stats count",
            len: self.stats.len(),
            max: u32::MAX as usize,
        })?;
        self.peer.encode(out)?;
        out.put_u32(count);
        self.stats.iter().try_for_each(|s| s.encode(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn report(stats: Vec<Stat>) -> StatisticsReport {
        StatisticsReport {
            peer: PeerHeader::new(
                IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
                65001,
                Ipv4Addr::new(1, 1, 1, 1),
            ),
            stats,
        }
    }

    #[test]
    fn each_type_has_its_layout() {
        let r = report(vec![
            Stat::counter(stat_type::REJECTED_PREFIXES, 3),
            Stat::gauge(stat_type::ADJ_RIB_IN_ROUTES, 1 << 40),
            Stat::family_gauge(stat_type::LOC_RIB_FAMILY_ROUTES, Family::IPV6_UNICAST, 9),
            Stat::counter(stat_type::DUPLICATE_UPDATES, 1),
            Stat::gauge(stat_type::ADJ_RIB_OUT_POST_ROUTES, 2),
            Stat {
                stat_type: 999,
                value: StatValue::Other(Bytes::from_static(&[1, 2, 3])),
            },
        ]);
        let mut out = BytesMut::new();
        r.encode(&mut out).unwrap();
        // count, then counter TLV: type 0, length 4, value 3.
        assert_eq!(&out[42..54], &[0, 0, 0, 6, 0, 0, 0, 4, 0, 0, 0, 3]);
        let back = StatisticsReport::decode(&mut Reader::new(out.freeze())).unwrap();
        assert_eq!(back, r);
        assert_eq!(
            back.get(stat_type::LOC_RIB_FAMILY_ROUTES, Some(Family::IPV6_UNICAST)),
            Some(&StatValue::FamilyGauge(Family::IPV6_UNICAST, 9))
        );
        assert_eq!(back.get(stat_type::LOC_RIB_FAMILY_ROUTES, None), None);
        assert_eq!(
            back.get(stat_type::REJECTED_PREFIXES, None),
            Some(&StatValue::Counter(3))
        );
    }

    #[test]
    fn wrong_lengths_and_mismatched_values_are_refused() {
        let wrong = Stat {
            stat_type: stat_type::ADJ_RIB_IN_ROUTES,
            value: StatValue::Counter(1),
        };
        assert!(report(vec![wrong]).encode(&mut BytesMut::new()).is_err());
        let other_for_known = Stat {
            stat_type: 0,
            value: StatValue::Other(Bytes::from_static(&[0, 0, 0, 1])),
        };
        assert!(report(vec![other_for_known])
            .encode(&mut BytesMut::new())
            .is_err());
        let mut out = BytesMut::new();
        report(vec![]).encode(&mut out).unwrap();
        let mut raw = out.to_vec();
        raw[45] = 1; // count 1
        raw.extend_from_slice(&[0, 7, 0, 4, 0, 0, 0, 1]); // a gauge of 4 octets
        let e = StatisticsReport::decode(&mut Reader::new(Bytes::from(raw))).unwrap_err();
        assert!(e.to_string().contains("says 8"), "{e}");
        // A count larger than the message fails without reserving for it.
        let mut raw = out.to_vec();
        raw[42..46].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(StatisticsReport::decode(&mut Reader::new(Bytes::from(raw))).is_err());
    }
}
