//! Path attributes (RFC 4271 4.3 and 5) with the revised error handling of RFC 7606.
//!
//! Each attribute is `flags | type | length (1, or 2 with Extended Length) | value`.
//! Decoding never looks beyond the attribute block and classifies every problem by the
//! action RFC 7606 section 7 (and the attribute's own RFC) prescribes:
//!
//! | attribute                       | malformed when                          | action |
//! |---------------------------------|-----------------------------------------|--------|
//! | attribute framing (7606 4)      | header/length overruns the block        | treat-as-withdraw |
//! | flags (7606 3 c)                | Optional/Transitive bits wrong          | the attribute's action, treat-as-withdraw for MP_* |
//! | duplicate (7606 3 g)            | type seen before                        | discard (MP_*: reset 3/1) |
//! | ORIGINATOR_ID, CLUSTER_LIST (7606 7.9, 7.10) | received from an external peer | discard |
//! | ORIGIN (7606 7.1)               | length != 1, value > 2                  | treat-as-withdraw |
//! | AS_PATH (7606 7.2, RFC 7607)    | bad segment type/length/overrun, AS 0   | treat-as-withdraw |
//! | NEXT_HOP, MED, LOCAL_PREF, ORIGINATOR_ID (7606 7.3-7.5, 7.9) | length != 4 | treat-as-withdraw |
//! | ATOMIC_AGGREGATE (7606 7.6)     | length != 0                             | discard |
//! | AGGREGATOR (7606 7.7, RFC 7607) | length != 6/8 (per AS size), AS 0       | discard |
//! | COMMUNITIES (7606 7.8)          | length not a non-zero multiple of 4     | treat-as-withdraw |
//! | CLUSTER_LIST (7606 7.10)        | length not a non-zero multiple of 4     | treat-as-withdraw |
//! | MP_REACH/MP_UNREACH (7606 7.11) | truncated, bad next-hop length, bad NLRI | reset 3/1 |
//! | EXTENDED_COMMUNITIES (7606 7.14)| length not a non-zero multiple of 8     | treat-as-withdraw |
//! | AS4_PATH, AS4_AGGREGATOR (RFC 6793 6, RFC 7607) | malformed, AS 0, or received on a 4-octet session | discard |
//! | LARGE_COMMUNITY (RFC 8092 6)    | length not a non-zero multiple of 12    | treat-as-withdraw |
//! | OTC (RFC 9234 5)                | length != 4                             | treat-as-withdraw |
//! | TUNNEL_ENCAP 23, AIGP 26, PREFIX_SID 40 (RFC 9012 13, RFC 7311 3.2, RFC 8669 6) | inner TLVs overrun | discard |
//! | TUNNEL_ENCAP, AIGP, PREFIX_SID, PMSI_TUNNEL | Optional bit clear (7606 3 c)  | discard (PMSI_TUNNEL: treat-as-withdraw) |
//! | unrecognized well-known (RFC 4271 6.3) | Optional bit clear, type not known | reset 3/2 with the attribute as data |
//!
//! RFC 7606 revises the handling of malformed attributes it lists, not of a well-known
//! attribute the speaker does not know at all: that one cannot be handled correctly or
//! passed on, so RFC 4271 6.3 stands (NOTIFICATION Unrecognized Well-known Attribute).
//!
//! A discarded or withdrawn attribute never reaches [`PathAttributes`], so a broken
//! attribute is never re-advertised. Unknown optional attributes are kept as
//! [`RawAttribute`]s: on encode, transitive ones get the Partial bit (RFC 4271 5) and
//! non-transitive ones are dropped (RFC 4271 5: "quietly ignored and not passed along").
//! Recognised optional transitive attributes keep a received Partial bit in
//! [`PathAttributes::partial`] and are encoded with it ("Once the Partial bit has been set
//! by a BGP speaker, it MUST NOT be unset by any BGP speaker that propagates the route",
//! RFC 4271 4.3); well-known and optional non-transitive ones are always sent with Partial
//! 0, as 4.3 requires, whatever was received.
//!
//! When the session lacks 4-octet AS support, AS_PATH/AGGREGATOR carry 2-octet ASNs and
//! the true path is rebuilt from AS4_PATH/AS4_AGGREGATOR (RFC 6793 4.2.3); encoding does
//! the reverse (RFC 6793 4.2.2). The Partial bit of an AS4_PATH/AS4_AGGREGATOR that was
//! used (typically set by the 2-octet speaker that passed it on) is kept for the ones the
//! encoder regenerates (see [`PartialBits`](super::types::PartialBits)).
//!
//! Decoding allocates only the vectors of [`PathAttributes`] (AS path segments,
//! communities, cluster list, unknown attributes).

use std::net::{Ipv4Addr, Ipv6Addr};

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{EncodeError, NotificationError};
use super::nlri::{decode_prefixes, encode_prefix};
use super::reader::Reader;
use super::types::{
    attr_flags as af, attr_type as at, notification_code as nc, Afi, Aggregator, AsPath, AsSegment,
    CodecContext, Community, ExtendedCommunity, Family, LargeCommunity, MpNextHop, MpNlri, MpReach,
    MpUnreach, Origin, PathAttributes, RawAttribute, Safi, SegmentType, AS_TRANS,
};

/// How MP_REACH_NLRI is laid out in the block being decoded.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum MpReachForm {
    /// RFC 4760 3: AFI, SAFI, next hop, reserved octet, NLRI. What UPDATEs carry.
    Standard,
    /// RFC 6396 4.3.4: in TABLE_DUMP_V2 RIB entries MP_REACH_NLRI holds only the next-hop
    /// length and next hop. The family is then inferred from the next-hop length (4:
    /// IPv4 unicast, 16 or 32: IPv6 unicast, otherwise AFI 0 / SAFI 0 with an opaque next
    /// hop); the MRT reader knows the real family from the RIB subtype. A value that is
    /// not exactly `length + 1` octets is parsed as the standard form, as some collectors
    /// wrote it that way.
    MrtAbbreviated,
}

/// The outcome of decoding a path attribute block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodedAttributes {
    pub attributes: PathAttributes,
    pub mp_reach: Option<MpReach>,
    pub mp_unreach: Option<MpUnreach>,
    /// `Some(reason)`: RFC 7606 treat-as-withdraw; every prefix the message carries must
    /// be handled as withdrawn.
    pub treat_as_withdraw: Option<String>,
    /// Attributes dropped under RFC 7606 attribute-discard, with the reasons.
    pub discarded: Vec<String>,
}

/// Whether an attribute type must be Optional / Transitive (RFC 4271 5, and each
/// attribute's RFC). `None` for types this crate does not interpret.
fn expected_flags(type_code: u8) -> Option<(bool, bool)> {
    Some(match type_code {
        at::ORIGIN | at::AS_PATH | at::NEXT_HOP | at::LOCAL_PREF | at::ATOMIC_AGGREGATE => {
            (false, true)
        }
        at::MULTI_EXIT_DISC | at::ORIGINATOR_ID | at::CLUSTER_LIST => (true, false),
        at::MP_REACH_NLRI | at::MP_UNREACH_NLRI => (true, false),
        at::AGGREGATOR
        | at::COMMUNITIES
        | at::EXTENDED_COMMUNITIES
        | at::AS4_PATH
        | at::AS4_AGGREGATOR
        | at::LARGE_COMMUNITIES
        | at::OTC => (true, true),
        _ => return None,
    })
}

/// Attributes whose malformation is handled by attribute-discard.
fn discard_on_error(type_code: u8) -> bool {
    matches!(
        type_code,
        at::ATOMIC_AGGREGATE
            | at::AGGREGATOR
            | at::AS4_PATH
            | at::AS4_AGGREGATOR
            | at::TUNNEL_ENCAPSULATION
            | at::AIGP
            | at::PREFIX_SID
    )
}

pub(crate) fn attr_name(type_code: u8) -> &'static str {
    match type_code {
        at::ORIGIN => "ORIGIN",
        at::AS_PATH => "AS_PATH",
        at::NEXT_HOP => "NEXT_HOP",
        at::MULTI_EXIT_DISC => "MULTI_EXIT_DISC",
        at::LOCAL_PREF => "LOCAL_PREF",
        at::ATOMIC_AGGREGATE => "ATOMIC_AGGREGATE",
        at::AGGREGATOR => "AGGREGATOR",
        at::COMMUNITIES => "COMMUNITIES",
        at::ORIGINATOR_ID => "ORIGINATOR_ID",
        at::CLUSTER_LIST => "CLUSTER_LIST",
        at::MP_REACH_NLRI => "MP_REACH_NLRI",
        at::MP_UNREACH_NLRI => "MP_UNREACH_NLRI",
        at::EXTENDED_COMMUNITIES => "EXTENDED_COMMUNITIES",
        at::AS4_PATH => "AS4_PATH",
        at::AS4_AGGREGATOR => "AS4_AGGREGATOR",
        at::PMSI_TUNNEL => "PMSI_TUNNEL",
        at::TUNNEL_ENCAPSULATION => "TUNNEL_ENCAPSULATION",
        at::AIGP => "AIGP",
        at::LARGE_COMMUNITIES => "LARGE_COMMUNITY",
        at::OTC => "OTC",
        at::PREFIX_SID => "PREFIX_SID",
        _ => "attribute",
    }
}

/// What to do about one attribute.
enum AttrError {
    /// RFC 7606 treat-as-withdraw.
    Withdraw(String),
    /// RFC 7606 attribute-discard.
    Discard(String),
    /// Session reset with this NOTIFICATION.
    Reset(NotificationError),
}

/// An attribute without the Optional bit whose type is not one of the well-known ones
/// this crate decodes. A known optional attribute sent that way has wrong flags (RFC 7606
/// 3 c: its own error action); any other type is an unrecognized well-known attribute:
/// RFC 4271 6.3 resets the session with Unrecognized Well-known Attribute, the data
/// being the attribute as received (flags, type, length, value).
fn not_optional(flags: u8, type_code: u8, value: &[u8]) -> AttrError {
    let name = attr_name(type_code);
    match type_code {
        at::TUNNEL_ENCAPSULATION | at::AIGP | at::PREFIX_SID => {
            return AttrError::Discard(format!("{name} with wrong attribute flags {flags:#04x}"))
        }
        at::PMSI_TUNNEL => {
            return AttrError::Withdraw(format!("{name} with wrong attribute flags {flags:#04x}"))
        }
        _ => {}
    }
    let mut data = Vec::with_capacity(4 + value.len());
    data.push(flags);
    data.push(type_code);
    if flags & af::EXTENDED_LENGTH != 0 {
        data.extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
    } else {
        data.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
    }
    data.extend_from_slice(value);
    AttrError::Reset(
        NotificationError::new(
            nc::UPDATE_MESSAGE,
            nc::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
            format!("unrecognized well-known attribute type {type_code}"),
        )
        .with_data(data),
    )
}

fn mp_error(reason: impl Into<String>) -> AttrError {
    AttrError::Reset(NotificationError::new(
        nc::UPDATE_MESSAGE,
        nc::MALFORMED_ATTRIBUTE_LIST,
        reason,
    ))
}

/// Decode a path attribute block (the UPDATE's Path Attributes field, or an MRT RIB
/// entry's attributes with [`MpReachForm::MrtAbbreviated`]).
///
/// `Err` is a session reset (RFC 7606 7.11 MP_* errors, 3(g) duplicate MP_*); lesser
/// errors are reported in the result. Mandatory-attribute presence depends on the NLRI
/// and is checked by `decode_update`.
pub fn decode_path_attributes(
    block: &[u8],
    ctx: &CodecContext,
    form: MpReachForm,
) -> Result<DecodedAttributes, NotificationError> {
    let mut d = AttrDecoder {
        ctx,
        form,
        out: DecodedAttributes::default(),
        as4_path: None,
        as4_aggregator: None,
        seen: [0; 4],
    };
    let mut r = Reader::new(block);
    while !r.is_empty() {
        // RFC 7606 4: a header or value that does not fit the block is treat-as-withdraw;
        // the block length alone locates the NLRI, so parsing can stop here.
        let left = r.remaining();
        let Some((flags, type_code, value)) = attribute_tlv(&mut r) else {
            d.withdraw(format!(
                "path attribute overruns the attribute block ({left} octets left)"
            ));
            break;
        };
        if let Err(e) = d.attribute(flags, type_code, value) {
            match e {
                AttrError::Withdraw(reason) => d.withdraw(reason),
                AttrError::Discard(reason) => d.out.discarded.push(reason),
                AttrError::Reset(n) => return Err(n),
            }
        }
    }
    d.finish();
    Ok(d.out)
}

/// One attribute's flags, type and value; `None` (consuming the rest) if it overruns.
fn attribute_tlv<'a>(r: &mut Reader<'a>) -> Option<(u8, u8, &'a [u8])> {
    let tlv = (|| {
        let flags = r.u8()?;
        let type_code = r.u8()?;
        let len = if flags & af::EXTENDED_LENGTH != 0 {
            r.u16()?
        } else {
            u16::from(r.u8()?)
        };
        Some((flags, type_code, r.take(usize::from(len))?))
    })();
    if tlv.is_none() {
        r.rest();
    }
    tlv
}

struct AttrDecoder<'c> {
    ctx: &'c CodecContext,
    form: MpReachForm,
    out: DecodedAttributes,
    /// AS4_PATH / AS4_AGGREGATOR until `finish` merges them, with their Partial bit.
    as4_path: Option<(AsPath, bool)>,
    as4_aggregator: Option<(Aggregator, bool)>,
    /// Attribute types seen so far, one bit each (RFC 7606 3 g).
    seen: [u64; 4],
}

impl AttrDecoder<'_> {
    fn withdraw(&mut self, reason: String) {
        if self.out.treat_as_withdraw.is_none() {
            self.out.treat_as_withdraw = Some(reason);
        }
    }

    fn attribute(&mut self, flags: u8, type_code: u8, value: &[u8]) -> Result<(), AttrError> {
        let name = attr_name(type_code);
        let (word, bit) = (usize::from(type_code / 64), 1u64 << (type_code % 64));
        let seen = self
            .seen
            .get_mut(word)
            .map(|w| std::mem::replace(w, *w | bit) & bit != 0);
        if seen == Some(true) {
            if matches!(type_code, at::MP_REACH_NLRI | at::MP_UNREACH_NLRI) {
                return Err(mp_error(format!("{name} appears more than once")));
            }
            return Err(AttrError::Discard(format!(
                "duplicate {name} (type {type_code})"
            )));
        }

        // RFC 7606 7.9, 7.10: route reflection attributes have no meaning across an AS
        // boundary; whatever their contents they are dropped, not acted upon.
        if self.ctx.external && matches!(type_code, at::ORIGINATOR_ID | at::CLUSTER_LIST) {
            return Err(AttrError::Discard(format!(
                "{name} from an external peer (RFC 7606 7.9, 7.10)"
            )));
        }

        // RFC 7606 3 c: wrong Optional/Transitive bits make the attribute malformed.
        if let Some((optional, transitive)) = expected_flags(type_code) {
            let got = (flags & af::OPTIONAL != 0, flags & af::TRANSITIVE != 0);
            if got != (optional, transitive) {
                let reason = format!("{name} with wrong attribute flags {flags:#04x}");
                if matches!(type_code, at::MP_REACH_NLRI | at::MP_UNREACH_NLRI) {
                    // Parse it anyway so its prefixes can be treated as withdrawn.
                    self.mp(type_code, value)?;
                    return Err(AttrError::Withdraw(reason));
                }
                return Err(if discard_on_error(type_code) {
                    AttrError::Discard(reason)
                } else {
                    AttrError::Withdraw(reason)
                });
            }
        }

        let four = self.ctx.four_octet_as;
        let a = &mut self.out.attributes;
        let bad_len = |what: &str| format!("{name} length {} {what}", value.len());
        let withdraw_len = |what: &str| AttrError::Withdraw(bad_len(what));
        match type_code {
            at::ORIGIN => {
                a.origin = Some(match value {
                    [0] => Origin::Igp,
                    [1] => Origin::Egp,
                    [2] => Origin::Incomplete,
                    [v] => return Err(AttrError::Withdraw(format!("undefined ORIGIN {v}"))),
                    _ => return Err(withdraw_len("is not 1")),
                })
            }
            at::AS_PATH => {
                let path = decode_as_path(value, four)
                    .map_err(|e| AttrError::Withdraw(format!("malformed AS_PATH: {e}")))?;
                // RFC 7607: AS 0 makes it malformed, treat-as-withdraw. The well-framed
                // path is still kept so that viewers (MRT dumps) show what was received;
                // the withdrawn routes carry no attributes to act on.
                let as0 = path.contains(0);
                a.as_path = Some(path);
                if as0 {
                    return Err(AttrError::Withdraw(
                        "malformed AS_PATH: AS 0 in path (RFC 7607)".into(),
                    ));
                }
            }
            at::NEXT_HOP => {
                a.next_hop = Some(Ipv4Addr::from(
                    be_u32(value).ok_or_else(|| withdraw_len("is not 4"))?,
                ))
            }
            at::MULTI_EXIT_DISC => {
                a.med = Some(be_u32(value).ok_or_else(|| withdraw_len("is not 4"))?)
            }
            at::LOCAL_PREF => {
                a.local_pref = Some(be_u32(value).ok_or_else(|| withdraw_len("is not 4"))?)
            }
            at::ORIGINATOR_ID => {
                a.originator_id = Some(Ipv4Addr::from(
                    be_u32(value).ok_or_else(|| withdraw_len("is not 4"))?,
                ))
            }
            at::ATOMIC_AGGREGATE => {
                if !value.is_empty() {
                    return Err(AttrError::Discard(bad_len("is not 0")));
                }
                a.atomic_aggregate = true;
            }
            at::AGGREGATOR => {
                let agg = decode_aggregator(value, four)
                    .map_err(|e| AttrError::Discard(format!("AGGREGATOR {e}")))?;
                a.aggregator = Some(agg);
            }
            at::COMMUNITIES => {
                a.communities = chunks::<4>(value)
                    .ok_or_else(|| withdraw_len("is not a non-zero multiple of 4"))?
                    .map(|c| Community(u32::from_be_bytes(c)))
                    .collect();
            }
            at::CLUSTER_LIST => {
                a.cluster_list = chunks::<4>(value)
                    .ok_or_else(|| withdraw_len("is not a non-zero multiple of 4"))?
                    .map(Ipv4Addr::from)
                    .collect();
            }
            at::EXTENDED_COMMUNITIES => {
                a.extended_communities = chunks::<8>(value)
                    .ok_or_else(|| withdraw_len("is not a non-zero multiple of 8"))?
                    .map(ExtendedCommunity)
                    .collect();
            }
            at::LARGE_COMMUNITIES => {
                a.large_communities = chunks::<12>(value)
                    .ok_or_else(|| withdraw_len("is not a non-zero multiple of 12"))?
                    .map(|c| {
                        let w = |i: usize| {
                            let mut b = [0u8; 4];
                            b.copy_from_slice(c.get(i..i + 4).unwrap_or(&[0; 4]));
                            u32::from_be_bytes(b)
                        };
                        LargeCommunity {
                            global: w(0),
                            local1: w(4),
                            local2: w(8),
                        }
                    })
                    .collect();
            }
            at::OTC => a.otc = Some(be_u32(value).ok_or_else(|| withdraw_len("is not 4"))?),
            at::AS4_PATH => {
                if four {
                    return Err(AttrError::Discard(
                        "AS4_PATH received on a 4-octet AS session (RFC 6793 3)".into(),
                    ));
                }
                let mut path = decode_as_path(value, true)
                    .map_err(|e| AttrError::Discard(format!("malformed AS4_PATH: {e}")))?;
                if path.contains(0) {
                    return Err(AttrError::Discard(
                        "malformed AS4_PATH: AS 0 in path (RFC 7607)".into(),
                    ));
                }
                // RFC 6793 3: confederation segments must not be in AS4_PATH; drop them.
                path.segments
                    .retain(|s| matches!(s.kind, SegmentType::Sequence | SegmentType::Set));
                self.as4_path = Some((path, flags & af::PARTIAL != 0));
            }
            at::AS4_AGGREGATOR => {
                if four {
                    return Err(AttrError::Discard(
                        "AS4_AGGREGATOR received on a 4-octet AS session (RFC 6793 3)".into(),
                    ));
                }
                let agg = decode_aggregator(value, true)
                    .map_err(|e| AttrError::Discard(format!("AS4_AGGREGATOR {e}")))?;
                self.as4_aggregator = Some((agg, flags & af::PARTIAL != 0));
            }
            at::MP_REACH_NLRI | at::MP_UNREACH_NLRI => self.mp(type_code, value)?,
            _ => {
                if flags & af::OPTIONAL == 0 {
                    return Err(not_optional(flags, type_code, value));
                }
                if let Some(err) = inner_tlv_error(type_code, value) {
                    return Err(AttrError::Discard(format!(
                        "{name} (type {type_code}) with malformed TLVs: {err}"
                    )));
                }
                a.unknown.push(RawAttribute {
                    flags: flags & !af::EXTENDED_LENGTH,
                    type_code,
                    value: Bytes::copy_from_slice(value),
                });
            }
        }
        // RFC 4271 4.3: a recognised optional transitive attribute keeps its Partial bit
        // (AS4_* ones only once `finish` has used them).
        if flags & af::PARTIAL != 0 && !matches!(type_code, at::AS4_PATH | at::AS4_AGGREGATOR) {
            self.out.attributes.partial.insert(type_code);
        }
        Ok(())
    }

    fn mp(&mut self, type_code: u8, value: &[u8]) -> Result<(), AttrError> {
        if type_code == at::MP_REACH_NLRI {
            self.out.mp_reach = Some(decode_mp_reach(value, self.ctx, self.form)?);
        } else {
            self.out.mp_unreach = Some(decode_mp_unreach(value, self.ctx)?);
        }
        Ok(())
    }

    /// RFC 6793 4.2.3: rebuild the 4-octet path and aggregator on a 2-octet session.
    fn finish(&mut self) {
        let a = &mut self.out.attributes;
        if let Some((as4_agg, partial)) = self.as4_aggregator.take() {
            match &mut a.aggregator {
                // "If the AGGREGATOR attribute carries an AS other than AS_TRANS, then
                // AS4_AGGREGATOR and AS4_PATH shall be ignored."
                Some(agg) if agg.asn != u32::from(AS_TRANS) => {
                    self.out.discarded.push(
                        "AS4_AGGREGATOR and AS4_PATH ignored: AGGREGATOR is not AS_TRANS (RFC 6793 4.2.3)"
                            .into(),
                    );
                    self.as4_path = None;
                }
                Some(agg) => {
                    *agg = as4_agg;
                    if partial {
                        a.partial.insert(at::AS4_AGGREGATOR);
                    }
                }
                None => self
                    .out
                    .discarded
                    .push("AS4_AGGREGATOR without AGGREGATOR ignored".into()),
            }
        }
        let Some((as4, partial)) = self.as4_path.take() else {
            return;
        };
        let Some(path) = &mut a.as_path else {
            self.out
                .discarded
                .push("AS4_PATH without AS_PATH ignored".into());
            return;
        };
        let (n, n4) = (path.path_len(), as4.path_len());
        if n < n4 {
            // "... the AS4_PATH attribute shall be ignored" when it is the longer one.
            self.out.discarded.push(format!(
                "AS4_PATH longer than AS_PATH ({n4} > {n}) ignored (RFC 6793 4.2.3)"
            ));
            return;
        }
        *path = merge_as4_path(path, as4, n - n4);
        if partial {
            a.partial.insert(at::AS4_PATH);
        }
    }
}

/// Keep the first `keep` ASes (by path length count) of `path`, with its leading
/// confederation segments, then append `as4` (RFC 6793 4.2.3).
fn merge_as4_path(path: &AsPath, as4: AsPath, mut keep: usize) -> AsPath {
    let mut segments: Vec<AsSegment> = Vec::with_capacity(path.segments.len() + as4.segments.len());
    for seg in &path.segments {
        // Leading confederation segments count 0 and stay; stop at the first counted
        // segment once `keep` ASes were taken.
        let confed = matches!(
            seg.kind,
            SegmentType::ConfedSequence | SegmentType::ConfedSet
        );
        if keep == 0 && !confed {
            break;
        }
        match seg.kind {
            SegmentType::ConfedSequence | SegmentType::ConfedSet => segments.push(seg.clone()),
            SegmentType::Set => {
                segments.push(seg.clone());
                keep -= 1;
            }
            SegmentType::Sequence => {
                let take = keep.min(seg.asns.len());
                segments.push(AsSegment {
                    kind: SegmentType::Sequence,
                    asns: seg.asns.iter().take(take).copied().collect(),
                });
                keep -= take;
            }
        }
    }
    // Join the kept prefix and AS4_PATH into one SEQUENCE where they meet.
    let mut as4 = as4.segments.into_iter();
    if let Some(first) = as4.next() {
        match segments.last_mut() {
            Some(last)
                if last.kind == SegmentType::Sequence && first.kind == SegmentType::Sequence =>
            {
                last.asns.extend(first.asns)
            }
            _ => segments.push(first),
        }
    }
    segments.extend(as4);
    AsPath { segments }
}

fn be_u32(value: &[u8]) -> Option<u32> {
    <[u8; 4]>::try_from(value).ok().map(u32::from_be_bytes)
}

/// `value` as N-octet chunks, or `None` unless its length is a non-zero multiple of N.
fn chunks<const N: usize>(value: &[u8]) -> Option<impl Iterator<Item = [u8; N]> + '_> {
    if value.is_empty() || !value.len().is_multiple_of(N) {
        return None;
    }
    Some(
        value
            .chunks_exact(N)
            .map(|c| <[u8; N]>::try_from(c).unwrap_or([0; N])),
    )
}

/// AS_PATH / AS4_PATH framing and segments (RFC 4271 4.3, RFC 5065 3, RFC 6793, RFC 7606
/// 7.2). AS 0 (RFC 7607) is left to the caller, which decides what it means.
pub(crate) fn decode_as_path(value: &[u8], four_octet: bool) -> Result<AsPath, String> {
    let size = if four_octet { 4 } else { 2 };
    let mut r = Reader::new(value);
    let mut segments = Vec::new();
    while !r.is_empty() {
        let (Some(kind), Some(count)) = (r.u8(), r.u8()) else {
            return Err("truncated segment header".into());
        };
        let kind = match kind {
            1 => SegmentType::Set,
            2 => SegmentType::Sequence,
            3 => SegmentType::ConfedSequence,
            4 => SegmentType::ConfedSet,
            t => return Err(format!("unknown segment type {t}")),
        };
        if count == 0 {
            return Err("empty segment".into());
        }
        let octets = r
            .take(usize::from(count) * size)
            .ok_or_else(|| format!("segment of {count} ASes overruns the attribute"))?;
        let asns: Vec<u32> = if four_octet {
            octets
                .chunks_exact(4)
                .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
                .collect()
        } else {
            octets
                .chunks_exact(2)
                .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
                .collect()
        };
        segments.push(AsSegment { kind, asns });
    }
    Ok(AsPath { segments })
}

fn decode_aggregator(value: &[u8], four_octet: bool) -> Result<Aggregator, String> {
    let mut r = Reader::new(value);
    let expected = if four_octet { 8 } else { 6 };
    if value.len() != expected {
        return Err(format!("length {} is not {expected}", value.len()));
    }
    let asn = if four_octet {
        r.u32()
    } else {
        r.u16().map(u32::from)
    };
    let (Some(asn), Some(addr)) = (asn, r.u32()) else {
        return Err("truncated".into());
    };
    if asn == 0 {
        return Err("with AS 0 (RFC 7607)".into());
    }
    Ok(Aggregator {
        asn,
        address: Ipv4Addr::from(addr),
    })
}

/// Check the TLV framing of attributes we carry opaquely but whose malformation crashed
/// or poisoned real networks. `Some(reason)` if a TLV overruns.
fn inner_tlv_error(type_code: u8, value: &[u8]) -> Option<String> {
    let mut r = Reader::new(value);
    match type_code {
        // RFC 7311 3: type (1), length (2, including the 3 header octets), value.
        at::AIGP => {
            while !r.is_empty() {
                let (Some(_t), Some(len)) = (r.u8(), r.u16()) else {
                    return Some("truncated TLV header".into());
                };
                let Some(body) = usize::from(len).checked_sub(3) else {
                    return Some(format!("TLV length {len} shorter than its header"));
                };
                if r.take(body).is_none() {
                    return Some(format!("TLV of length {len} overruns the attribute"));
                }
            }
            None
        }
        // RFC 8669 3: type (1), length (2, value only), value.
        at::PREFIX_SID => {
            while !r.is_empty() {
                let (Some(_t), Some(len)) = (r.u8(), r.u16()) else {
                    return Some("truncated TLV header".into());
                };
                if r.take(usize::from(len)).is_none() {
                    return Some(format!("TLV of length {len} overruns the attribute"));
                }
            }
            None
        }
        // RFC 9012 2: tunnel type (2), length (2), then sub-TLVs of type (1) and length
        // (1 for types 0-127, 2 for 128-255).
        at::TUNNEL_ENCAPSULATION => {
            while !r.is_empty() {
                let (Some(_t), Some(len)) = (r.u16(), r.u16()) else {
                    return Some("truncated tunnel TLV header".into());
                };
                let Some(tlv) = r.take(usize::from(len)) else {
                    return Some(format!("tunnel TLV of length {len} overruns the attribute"));
                };
                let mut s = Reader::new(tlv);
                while !s.is_empty() {
                    let Some(st) = s.u8() else { break };
                    let sl = if st < 128 {
                        s.u8().map(u16::from)
                    } else {
                        s.u16()
                    };
                    let Some(sl) = sl else {
                        return Some("truncated sub-TLV header".into());
                    };
                    if s.take(usize::from(sl)).is_none() {
                        return Some(format!("sub-TLV {st} of length {sl} overruns its TLV"));
                    }
                }
            }
            None
        }
        _ => None,
    }
}

/// Parse an IPv4/IPv6 unicast next hop of the given length (RFC 4760 3, RFC 2545 3,
/// RFC 8950 3). An IPv4 next hop for IPv6 NLRI is not in RFC 2545 but is sent by ExaBGP
/// (its QA corpus announces IPv6 routes via 170.170.170.170); it is accepted rather than
/// resetting the session, and the RIB decides whether it can resolve it.
fn unicast_next_hop(nh: &[u8]) -> Option<MpNextHop> {
    match nh.len() {
        4 => Some(MpNextHop::V4(Ipv4Addr::from(<[u8; 4]>::try_from(nh).ok()?))),
        16 => Some(MpNextHop::V6 {
            global: Ipv6Addr::from(<[u8; 16]>::try_from(nh).ok()?),
            link_local: None,
        }),
        32 => Some(MpNextHop::V6 {
            global: Ipv6Addr::from(<[u8; 16]>::try_from(nh.get(..16)?).ok()?),
            link_local: Some(Ipv6Addr::from(<[u8; 16]>::try_from(nh.get(16..)?).ok()?)),
        }),
        _ => None,
    }
}

/// MP_REACH_NLRI (RFC 4760 3). Errors are session resets (RFC 7606 7.11).
fn decode_mp_reach(
    value: &[u8],
    ctx: &CodecContext,
    form: MpReachForm,
) -> Result<MpReach, AttrError> {
    if form == MpReachForm::MrtAbbreviated
        && value.first().map(|&l| usize::from(l) + 1) == Some(value.len())
    {
        let nh = value.get(1..).unwrap_or(&[]);
        let (family, next_hop) = match nh.len() {
            4 => (Family::IPV4_UNICAST, unicast_next_hop(nh)),
            16 | 32 => (Family::IPV6_UNICAST, unicast_next_hop(nh)),
            _ => (Family::new(Afi(0), Safi(0)), None),
        };
        return Ok(MpReach {
            family,
            next_hop: next_hop.unwrap_or_else(|| MpNextHop::Opaque(Bytes::copy_from_slice(nh))),
            nlri: MpNlri::Unicast(Vec::new()),
        });
    }
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi), Some(nh_len)) = (r.u16(), r.u8(), r.u8()) else {
        return Err(mp_error(format!(
            "MP_REACH_NLRI of {} octets is truncated",
            value.len()
        )));
    };
    let family = Family::new(Afi(afi), Safi(safi));
    let nh = r.take(usize::from(nh_len)).ok_or_else(|| {
        mp_error(format!(
            "MP_REACH_NLRI next-hop length {nh_len} overruns the attribute"
        ))
    })?;
    if r.u8().is_none() {
        return Err(mp_error("MP_REACH_NLRI without its reserved octet"));
    }
    let nlri_octets = r.rest();
    if family.is_unicast_ip() {
        let next_hop = unicast_next_hop(nh).ok_or_else(|| {
            mp_error(format!(
                "MP_REACH_NLRI next-hop length {nh_len} is invalid for {family}"
            ))
        })?;
        let mut nlri = Vec::new();
        decode_prefixes(
            nlri_octets,
            family.afi,
            ctx.receives_path_id(family),
            &mut nlri,
        )
        .map_err(|e| mp_error(format!("MP_REACH_NLRI {family}: {}", e.0)))?;
        Ok(MpReach {
            family,
            next_hop,
            nlri: MpNlri::Unicast(nlri),
        })
    } else {
        Ok(MpReach {
            family,
            next_hop: MpNextHop::Opaque(Bytes::copy_from_slice(nh)),
            nlri: MpNlri::Opaque(Bytes::copy_from_slice(nlri_octets)),
        })
    }
}

/// MP_UNREACH_NLRI (RFC 4760 4). Errors are session resets (RFC 7606 7.11).
fn decode_mp_unreach(value: &[u8], ctx: &CodecContext) -> Result<MpUnreach, AttrError> {
    let mut r = Reader::new(value);
    let (Some(afi), Some(safi)) = (r.u16(), r.u8()) else {
        return Err(mp_error(format!(
            "MP_UNREACH_NLRI of {} octets is truncated",
            value.len()
        )));
    };
    let family = Family::new(Afi(afi), Safi(safi));
    let octets = r.rest();
    let nlri = if family.is_unicast_ip() {
        let mut v = Vec::new();
        decode_prefixes(octets, family.afi, ctx.receives_path_id(family), &mut v)
            .map_err(|e| mp_error(format!("MP_UNREACH_NLRI {family}: {}", e.0)))?;
        MpNlri::Unicast(v)
    } else {
        MpNlri::Opaque(Bytes::copy_from_slice(octets))
    };
    Ok(MpUnreach { family, nlri })
}

// ---------------------------------------------------------------------------------------
// Encoding

/// Write one attribute header + value, choosing the Extended Length bit by size.
fn put_attr(out: &mut BytesMut, flags: u8, type_code: u8, value: &[u8]) -> Result<(), EncodeError> {
    if value.len() > usize::from(u16::MAX) {
        return Err(EncodeError::Invalid(format!(
            "{} of {} octets exceeds 65535",
            attr_name(type_code),
            value.len()
        )));
    }
    put_attr_header(out, flags, type_code, value.len());
    out.put_slice(value);
    Ok(())
}

fn put_attr_header(out: &mut BytesMut, flags: u8, type_code: u8, len: usize) {
    if len > 255 {
        out.put_u8(flags | af::EXTENDED_LENGTH);
        out.put_u8(type_code);
        out.put_u16(len as u16);
    } else {
        out.put_u8(flags & !af::EXTENDED_LENGTH);
        out.put_u8(type_code);
        out.put_u8(len as u8);
    }
}

/// Write an attribute whose value `body` appends to `out`, then patch the length,
/// switching to the Extended Length form (one octet more) if the value exceeds 255.
fn put_attr_with(
    out: &mut BytesMut,
    flags: u8,
    type_code: u8,
    body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_slice(&[flags & !af::EXTENDED_LENGTH, type_code, 0]);
    if let Err(e) = body(out) {
        out.truncate(start);
        return Err(e);
    }
    let end = out.len();
    let len = end - start - 3;
    if len <= 255 {
        if let Some(slot) = out.get_mut(start + 2) {
            *slot = len as u8;
        }
        return Ok(());
    }
    let Ok(len16) = u16::try_from(len) else {
        out.truncate(start);
        return Err(EncodeError::Invalid(format!(
            "{} of {len} octets exceeds 65535",
            attr_name(type_code)
        )));
    };
    out.put_u8(0);
    out.copy_within(start + 3..end, start + 4);
    if let Some(h) = out.get_mut(start..start + 4) {
        let [hi, lo] = len16.to_be_bytes();
        h.copy_from_slice(&[flags | af::EXTENDED_LENGTH, type_code, hi, lo]);
    }
    Ok(())
}

const WELL_KNOWN: u8 = af::TRANSITIVE;
const OPT_NON_TRANS: u8 = af::OPTIONAL;
const OPT_TRANS: u8 = af::OPTIONAL | af::TRANSITIVE;

/// Flags of a recognised optional transitive attribute: Partial if it arrived with it
/// (RFC 4271 4.3: once set, never unset by a speaker that propagates the route).
fn opt_trans(attrs: &PathAttributes, type_code: u8) -> u8 {
    if attrs.partial.contains(type_code) {
        OPT_TRANS | af::PARTIAL
    } else {
        OPT_TRANS
    }
}

fn encode_as_path_value(path: &AsPath, four_octet: bool, out: &mut BytesMut) {
    for seg in &path.segments {
        // A segment holds at most 255 ASes; longer ones are split (RFC 4271 4.3).
        for chunk in seg.asns.chunks(255) {
            out.put_u8(seg.kind as u8);
            out.put_u8(chunk.len() as u8);
            for &asn in chunk {
                if four_octet {
                    out.put_u32(asn);
                } else {
                    out.put_u16(u16::try_from(asn).unwrap_or(AS_TRANS));
                }
            }
        }
    }
}

/// Encode the path attributes, MP_REACH_NLRI and MP_UNREACH_NLRI in type-code order
/// (RFC 4271 5 recommends ascending order).
pub(crate) fn encode_path_attributes(
    attrs: &PathAttributes,
    mp_reach: Option<&MpReach>,
    mp_unreach: Option<&MpUnreach>,
    ctx: &CodecContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    encode_attribute_block(attrs, mp_reach, mp_unreach, ctx, MpReachForm::Standard, out)
}

/// Encode the attribute block of an MRT TABLE_DUMP_V2 RIB entry (RFC 6396 4.3.4): 4-octet
/// AS numbers, and the route's next hop where the family needs it. An IPv4 unicast route
/// with an IPv4 (or no) `next_hop` carries NEXT_HOP (`next_hop` overrides
/// `attrs.next_hop`); any other route carries the abbreviated MP_REACH_NLRI of RFC 6396
/// 4.3.4, holding only the next-hop length and the next hop, and no NEXT_HOP. The
/// inverse of [`decode_path_attributes`] with [`MpReachForm::MrtAbbreviated`].
pub fn encode_rib_attributes(
    family: Family,
    attrs: &PathAttributes,
    next_hop: Option<&MpNextHop>,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let ctx = CodecContext {
        four_octet_as: true,
        ..CodecContext::default()
    };
    match next_hop {
        Some(MpNextHop::V4(nh)) if family == Family::IPV4_UNICAST => {
            encode_path_attributes(&with_next_hop(attrs, Some(*nh)), None, None, &ctx, out)
        }
        None if family == Family::IPV4_UNICAST => {
            encode_path_attributes(attrs, None, None, &ctx, out)
        }
        None => Err(EncodeError::Invalid(format!(
            "a {family} RIB entry needs a next hop"
        ))),
        Some(nh) => {
            let reach = MpReach {
                family,
                next_hop: nh.clone(),
                nlri: MpNlri::Unicast(Vec::new()),
            };
            let attrs = with_next_hop(attrs, None);
            let form = MpReachForm::MrtAbbreviated;
            encode_attribute_block(&attrs, Some(&reach), None, &ctx, form, out)
        }
    }
}

/// `attrs` with NEXT_HOP set to `next_hop`, copied only when that changes it: IPv4
/// unicast announcements carry their next hop there, every other family in MP_REACH_NLRI
/// (and then no NEXT_HOP).
pub(crate) fn with_next_hop(
    attrs: &PathAttributes,
    next_hop: Option<Ipv4Addr>,
) -> std::borrow::Cow<'_, PathAttributes> {
    if attrs.next_hop == next_hop {
        std::borrow::Cow::Borrowed(attrs)
    } else {
        let mut changed = attrs.clone();
        changed.next_hop = next_hop;
        std::borrow::Cow::Owned(changed)
    }
}

/// [`encode_path_attributes`] with MP_REACH_NLRI laid out in `form`.
fn encode_attribute_block(
    attrs: &PathAttributes,
    mp_reach: Option<&MpReach>,
    mp_unreach: Option<&MpUnreach>,
    ctx: &CodecContext,
    form: MpReachForm,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let four = ctx.four_octet_as;
    // Unknown attributes are merged in by type code.
    let mut unknown: Vec<&RawAttribute> = attrs
        .unknown
        .iter()
        .filter(|u| u.flags & af::OPTIONAL == 0 || u.flags & af::TRANSITIVE != 0)
        .collect();
    unknown.sort_by_key(|u| u.type_code);
    let mut unknown = unknown.into_iter().peekable();
    let mut flush_unknown = |out: &mut BytesMut, below: u16| -> Result<(), EncodeError> {
        while let Some(u) = unknown.next_if(|u| u16::from(u.type_code) < below) {
            let mut flags = u.flags & (af::OPTIONAL | af::TRANSITIVE | af::PARTIAL);
            if flags & af::OPTIONAL != 0 && flags & af::TRANSITIVE != 0 {
                // RFC 4271 5: passed on unrecognized, so mark it Partial.
                flags |= af::PARTIAL;
            }
            put_attr(out, flags, u.type_code, &u.value)?;
        }
        Ok(())
    };

    if let Some(origin) = attrs.origin {
        put_attr(out, WELL_KNOWN, at::ORIGIN, &[origin as u8])?;
    }
    let needs_as4_path = !four
        && attrs.as_path.as_ref().is_some_and(|p| {
            p.segments
                .iter()
                .any(|s| s.asns.iter().any(|&a| a > 0xFFFF))
        });
    if let Some(path) = &attrs.as_path {
        put_attr_with(out, WELL_KNOWN, at::AS_PATH, |v| {
            encode_as_path_value(path, four, v);
            Ok(())
        })?;
    }
    if let Some(nh) = attrs.next_hop {
        put_attr(out, WELL_KNOWN, at::NEXT_HOP, &nh.octets())?;
    }
    if let Some(med) = attrs.med {
        put_attr(out, OPT_NON_TRANS, at::MULTI_EXIT_DISC, &med.to_be_bytes())?;
    }
    if let Some(lp) = attrs.local_pref {
        put_attr(out, WELL_KNOWN, at::LOCAL_PREF, &lp.to_be_bytes())?;
    }
    if attrs.atomic_aggregate {
        put_attr(out, WELL_KNOWN, at::ATOMIC_AGGREGATE, &[])?;
    }
    let mut as4_aggregator = None;
    if let Some(agg) = attrs.aggregator {
        let mut v = [0u8; 8];
        let len = if four {
            v[..4].copy_from_slice(&agg.asn.to_be_bytes());
            v[4..].copy_from_slice(&agg.address.octets());
            8
        } else {
            let asn16 = u16::try_from(agg.asn).unwrap_or_else(|_| {
                as4_aggregator = Some(agg);
                AS_TRANS
            });
            v[..2].copy_from_slice(&asn16.to_be_bytes());
            v[2..6].copy_from_slice(&agg.address.octets());
            6
        };
        put_attr(
            out,
            opt_trans(attrs, at::AGGREGATOR),
            at::AGGREGATOR,
            &v[..len],
        )?;
    }
    if !attrs.communities.is_empty() {
        put_attr_with(
            out,
            opt_trans(attrs, at::COMMUNITIES),
            at::COMMUNITIES,
            |v| {
                attrs.communities.iter().for_each(|c| v.put_u32(c.0));
                Ok(())
            },
        )?;
    }
    if let Some(id) = attrs.originator_id {
        put_attr(out, OPT_NON_TRANS, at::ORIGINATOR_ID, &id.octets())?;
    }
    if !attrs.cluster_list.is_empty() {
        put_attr_with(out, OPT_NON_TRANS, at::CLUSTER_LIST, |v| {
            attrs
                .cluster_list
                .iter()
                .for_each(|c| v.put_slice(&c.octets()));
            Ok(())
        })?;
    }
    flush_unknown(out, u16::from(at::MP_REACH_NLRI))?;
    if let Some(reach) = mp_reach {
        put_attr_with(out, OPT_NON_TRANS, at::MP_REACH_NLRI, |v| match form {
            MpReachForm::Standard => encode_mp_reach(reach, ctx, v),
            MpReachForm::MrtAbbreviated => encode_next_hop(&reach.next_hop, v),
        })?;
    }
    flush_unknown(out, u16::from(at::MP_UNREACH_NLRI))?;
    if let Some(unreach) = mp_unreach {
        put_attr_with(out, OPT_NON_TRANS, at::MP_UNREACH_NLRI, |v| {
            v.put_u16(unreach.family.afi.0);
            v.put_u8(unreach.family.safi.0);
            encode_mp_nlri(&unreach.nlri, unreach.family, ctx, v)
        })?;
    }
    flush_unknown(out, u16::from(at::EXTENDED_COMMUNITIES))?;
    if !attrs.extended_communities.is_empty() {
        let flags = opt_trans(attrs, at::EXTENDED_COMMUNITIES);
        put_attr_with(out, flags, at::EXTENDED_COMMUNITIES, |v| {
            attrs
                .extended_communities
                .iter()
                .for_each(|c| v.put_slice(&c.0));
            Ok(())
        })?;
    }
    flush_unknown(out, u16::from(at::AS4_PATH))?;
    // RFC 6793 4.2.2: towards a 2-octet speaker, the true path goes in AS4_PATH
    // (without confederation segments) whenever it holds a 4-octet AS.
    if let (true, Some(path)) = (needs_as4_path, &attrs.as_path) {
        let as4 = AsPath {
            segments: path
                .segments
                .iter()
                .filter(|s| matches!(s.kind, SegmentType::Sequence | SegmentType::Set))
                .cloned()
                .collect(),
        };
        put_attr_with(out, opt_trans(attrs, at::AS4_PATH), at::AS4_PATH, |v| {
            encode_as_path_value(&as4, true, v);
            Ok(())
        })?;
    }
    flush_unknown(out, u16::from(at::AS4_AGGREGATOR))?;
    if let Some(agg) = as4_aggregator {
        let mut v = [0u8; 8];
        v[..4].copy_from_slice(&agg.asn.to_be_bytes());
        v[4..].copy_from_slice(&agg.address.octets());
        let flags = opt_trans(attrs, at::AS4_AGGREGATOR);
        put_attr(out, flags, at::AS4_AGGREGATOR, &v)?;
    }
    flush_unknown(out, u16::from(at::LARGE_COMMUNITIES))?;
    if !attrs.large_communities.is_empty() {
        let flags = opt_trans(attrs, at::LARGE_COMMUNITIES);
        put_attr_with(out, flags, at::LARGE_COMMUNITIES, |v| {
            for c in &attrs.large_communities {
                v.put_u32(c.global);
                v.put_u32(c.local1);
                v.put_u32(c.local2);
            }
            Ok(())
        })?;
    }
    flush_unknown(out, u16::from(at::OTC))?;
    if let Some(otc) = attrs.otc {
        put_attr(out, opt_trans(attrs, at::OTC), at::OTC, &otc.to_be_bytes())?;
    }
    flush_unknown(out, 256)
}

fn encode_mp_nlri(
    nlri: &MpNlri,
    family: Family,
    ctx: &CodecContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    match nlri {
        MpNlri::Unicast(v) => {
            let add_path = ctx.sends_path_id(family);
            for n in v {
                encode_prefix(n, family.afi, add_path, out)?;
            }
        }
        MpNlri::Opaque(b) => out.put_slice(b),
    }
    Ok(())
}

pub(crate) fn encode_next_hop(nh: &MpNextHop, out: &mut BytesMut) -> Result<(), EncodeError> {
    let len_at = out.len();
    out.put_u8(0);
    match nh {
        MpNextHop::V4(a) => out.put_slice(&a.octets()),
        MpNextHop::V6 { global, link_local } => {
            out.put_slice(&global.octets());
            if let Some(ll) = link_local {
                out.put_slice(&ll.octets());
            }
        }
        MpNextHop::Opaque(b) => out.put_slice(b),
    }
    let len = u8::try_from(out.len() - len_at - 1)
        .map_err(|_| EncodeError::Invalid("MP next hop longer than 255 octets".into()))?;
    if let Some(slot) = out.get_mut(len_at) {
        *slot = len;
    }
    Ok(())
}

fn encode_mp_reach(
    reach: &MpReach,
    ctx: &CodecContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    out.put_u16(reach.family.afi.0);
    out.put_u8(reach.family.safi.0);
    encode_next_hop(&reach.next_hop, out)?;
    out.put_u8(0); // reserved (RFC 4760 3)
    encode_mp_nlri(&reach.nlri, reach.family, ctx, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::types::{AddPathMode, Nlri, PartialBits};

    const V4: Family = Family::IPV4_UNICAST;
    const V6: Family = Family::IPV6_UNICAST;

    fn ctx4() -> CodecContext {
        CodecContext {
            four_octet_as: true,
            ..CodecContext::default()
        }
    }

    fn ctx2() -> CodecContext {
        CodecContext::default()
    }

    /// One attribute TLV, with the extended length form when `value` needs it.
    fn attr(flags: u8, type_code: u8, value: &[u8]) -> Vec<u8> {
        let mut v = vec![flags, type_code];
        if flags & af::EXTENDED_LENGTH != 0 {
            v.extend_from_slice(&(value.len() as u16).to_be_bytes());
        } else {
            v.push(value.len() as u8);
        }
        v.extend_from_slice(value);
        v
    }

    fn dec(block: &[u8], ctx: &CodecContext) -> DecodedAttributes {
        decode_path_attributes(block, ctx, MpReachForm::Standard).unwrap()
    }

    fn dec_err(block: &[u8], ctx: &CodecContext) -> NotificationError {
        decode_path_attributes(block, ctx, MpReachForm::Standard).unwrap_err()
    }

    fn withdrawn(block: &[u8], ctx: &CodecContext) -> String {
        let d = dec(block, ctx);
        match d.treat_as_withdraw {
            Some(reason) => reason,
            None => panic!("expected treat-as-withdraw: {d:?}"),
        }
    }

    fn discarded(block: &[u8], ctx: &CodecContext) -> DecodedAttributes {
        let d = dec(block, ctx);
        assert_eq!(d.treat_as_withdraw, None, "{d:?}");
        assert_eq!(d.discarded.len(), 1, "{d:?}");
        d
    }

    fn seq(asns: &[u32]) -> AsSegment {
        AsSegment {
            kind: SegmentType::Sequence,
            asns: asns.to_vec(),
        }
    }

    fn full_set() -> PathAttributes {
        PathAttributes {
            origin: Some(Origin::Egp),
            as_path: Some(AsPath {
                segments: vec![
                    AsSegment {
                        kind: SegmentType::ConfedSequence,
                        asns: vec![64512],
                    },
                    AsSegment {
                        kind: SegmentType::ConfedSet,
                        asns: vec![64513],
                    },
                    seq(&[65001, 4_200_000_000]),
                    AsSegment {
                        kind: SegmentType::Set,
                        asns: vec![1, 2],
                    },
                ],
            }),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            med: Some(10),
            local_pref: Some(200),
            atomic_aggregate: true,
            aggregator: Some(Aggregator {
                asn: 4_200_000_000,
                address: Ipv4Addr::new(10, 0, 0, 1),
            }),
            communities: vec![Community::new(65000, 1), Community::NO_EXPORT],
            originator_id: Some(Ipv4Addr::new(10, 0, 0, 2)),
            cluster_list: vec![Ipv4Addr::new(10, 0, 0, 3), Ipv4Addr::new(10, 0, 0, 4)],
            extended_communities: vec![ExtendedCommunity([0, 2, 0xFD, 0xE8, 0, 0, 0, 1])],
            large_communities: vec![LargeCommunity {
                global: 4_200_000_000,
                local1: 1,
                local2: 2,
            }],
            otc: Some(65002),
            unknown: vec![RawAttribute {
                flags: af::OPTIONAL | af::TRANSITIVE | af::PARTIAL,
                type_code: 99,
                value: Bytes::from_static(b"xyz"),
            }],
            // Received with Partial from some earlier speaker (RFC 4271 4.3).
            partial: PartialBits::default().with(at::COMMUNITIES).with(at::OTC),
        }
    }

    fn encode(
        attrs: &PathAttributes,
        reach: Option<&MpReach>,
        unreach: Option<&MpUnreach>,
        ctx: &CodecContext,
    ) -> BytesMut {
        let mut out = BytesMut::new();
        encode_path_attributes(attrs, reach, unreach, ctx, &mut out).unwrap();
        out
    }

    #[test]
    fn every_attribute_round_trips_on_a_4_octet_session() {
        let attrs = full_set();
        let reach = MpReach {
            family: V6,
            next_hop: MpNextHop::V6 {
                global: "2001:db8::1".parse().unwrap(),
                link_local: Some("fe80::1".parse().unwrap()),
            },
            nlri: MpNlri::Unicast(vec![Nlri::new("2001:db8:1::/48".parse().unwrap())]),
        };
        let unreach = MpUnreach {
            family: V6,
            nlri: MpNlri::Unicast(vec![Nlri::new("2001:db8:2::/48".parse().unwrap())]),
        };
        let wire = encode(&attrs, Some(&reach), Some(&unreach), &ctx4());
        let d = dec(&wire, &ctx4());
        assert_eq!(d.treat_as_withdraw, None);
        assert!(d.discarded.is_empty(), "{:?}", d.discarded);
        assert_eq!(d.attributes, attrs);
        assert_eq!(d.mp_reach, Some(reach));
        assert_eq!(d.mp_unreach, Some(unreach));
        // Ascending type order (RFC 4271 5).
        let mut r = Reader::new(&wire);
        let mut types = Vec::new();
        while let Some((_, t, _)) = attribute_tlv(&mut r) {
            types.push(t);
        }
        assert_eq!(
            types,
            [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 14, 15, 16, 32, 35, 99]
        );
    }

    #[test]
    fn two_octet_session_uses_as_trans_and_as4_attributes_both_ways() {
        let attrs = full_set();
        let wire = encode(&attrs, None, None, &ctx2());
        let d = dec(&wire, &ctx2());
        assert_eq!(d.treat_as_withdraw, None);
        assert!(d.discarded.is_empty(), "{:?}", d.discarded);
        assert_eq!(d.attributes, attrs, "RFC 6793 4.2.3 reconstruction");
        // On the wire: AS_TRANS in AS_PATH and AGGREGATOR, plus AS4_PATH/AS4_AGGREGATOR.
        let mut r = Reader::new(&wire);
        let mut seen = Vec::new();
        while let Some((_, t, v)) = attribute_tlv(&mut r) {
            if t == at::AS_PATH {
                assert_eq!(
                    decode_as_path(v, false).unwrap().segments[2].asns,
                    [65001, 23456]
                );
            }
            if t == at::AGGREGATOR {
                assert_eq!(&v[..2], &AS_TRANS.to_be_bytes());
            }
            seen.push(t);
        }
        assert!(seen.contains(&at::AS4_PATH) && seen.contains(&at::AS4_AGGREGATOR));
        // All-2-octet paths need no AS4_PATH.
        let mut small = PathAttributes {
            as_path: Some(AsPath {
                segments: vec![seq(&[65001, 65002])],
            }),
            ..Default::default()
        };
        let wire = encode(&small, None, None, &ctx2());
        assert_eq!(
            &wire[..],
            &attr(0x40, 2, &[2, 2, 0xFD, 0xE9, 0xFD, 0xEA])[..]
        );
        small.as_path = Some(AsPath::default());
        assert_eq!(&encode(&small, None, None, &ctx2())[..], &[0x40, 2, 0]);
    }

    #[test]
    fn as4_path_reconstruction_rfc6793_4_2_3() {
        let as_path = attr(0x40, 2, &[2, 3, 0xFD, 0xE9, 0x5B, 0xA0, 0x5B, 0xA0]);
        let as4 = attr(0xC0, 17, &[2, 2, 0xFA, 0x56, 0xEA, 1, 0xFA, 0x56, 0xEA, 2]);
        let d = dec(&[as_path.clone(), as4.clone()].concat(), &ctx2());
        assert_eq!(
            d.attributes.as_path.unwrap().segments,
            vec![seq(&[65001, 4_200_000_001, 4_200_000_002])]
        );
        // AS4_PATH longer than AS_PATH: ignored.
        let long4 = attr(
            0xC0,
            17,
            &[2, 4, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 4],
        );
        let d = dec(&[as_path.clone(), long4].concat(), &ctx2());
        assert_eq!(
            d.attributes.as_path.unwrap().segments,
            vec![seq(&[65001, 23456, 23456])]
        );
        assert_eq!(d.discarded.len(), 1);
        // Received on a 4-octet session: discarded, AS_PATH untouched.
        let path4 = attr(0x40, 2, &[2, 1, 0, 0, 0xFD, 0xE9]);
        let d = discarded(&[path4, as4.clone()].concat(), &ctx4());
        assert_eq!(d.attributes.as_path.unwrap().segments, vec![seq(&[65001])]);
        // Malformed AS4_PATH: attribute-discard, the update stands.
        let bad4 = attr(0xC0, 17, &[2, 5, 0, 0, 0, 1]);
        let d = discarded(&[as_path.clone(), bad4].concat(), &ctx2());
        assert_eq!(
            d.attributes.as_path.unwrap().segments,
            vec![seq(&[65001, 23456, 23456])]
        );
        // AS 0 in AS4_PATH: discard (RFC 7607).
        discarded(
            &[as_path.clone(), attr(0xC0, 17, &[2, 1, 0, 0, 0, 0])].concat(),
            &ctx2(),
        );
        // AGGREGATOR with AS_TRANS is replaced by AS4_AGGREGATOR.
        let agg = attr(0xC0, 7, &[0x5B, 0xA0, 10, 0, 0, 1]);
        let agg4 = attr(0xC0, 18, &[0xFA, 0x56, 0xEA, 1, 10, 0, 0, 1]);
        let d = dec(
            &[as_path.clone(), agg, agg4.clone(), as4.clone()].concat(),
            &ctx2(),
        );
        assert_eq!(d.attributes.aggregator.unwrap().asn, 4_200_000_001);
        // AGGREGATOR with a real 2-octet AS: AS4_AGGREGATOR and AS4_PATH ignored.
        let agg_real = attr(0xC0, 7, &[0xFD, 0xE9, 10, 0, 0, 1]);
        let d = dec(&[as_path, agg_real, agg4, as4].concat(), &ctx2());
        assert_eq!(d.attributes.aggregator.unwrap().asn, 65001);
        assert_eq!(
            d.attributes.as_path.unwrap().segments,
            vec![seq(&[65001, 23456, 23456])]
        );
    }

    #[test]
    fn as_path_malformations_are_treat_as_withdraw() {
        for (value, four) in [
            (&[0x02, 0xff, 0x00, 0x00, 0xfd, 0xe9][..], true), // segment overrun
            (&[0x02, 0xff, 0x00, 0x00, 0xfd, 0xe9][..], false),
            (&[2, 0], true),                // empty segment
            (&[0, 1, 0, 0, 0, 1], true),    // segment type 0
            (&[5, 1, 0, 0, 0, 1], true),    // segment type 5
            (&[2, 1, 0, 0, 0, 0], true),    // AS 0 (RFC 7607)
            (&[2, 1, 0, 0], false),         // AS 0, 2-octet
            (&[2], true),                   // truncated header
            (&[2, 1, 0, 0, 0, 1, 2], true), // trailing octet
        ] {
            let ctx = if four { ctx4() } else { ctx2() };
            let reason = withdrawn(&attr(0x40, 2, value), &ctx);
            assert!(reason.contains("AS_PATH"), "{reason}");
        }
    }

    #[test]
    fn long_as_path_in_an_extended_message_decodes() {
        // 3000 ASNs (> 2048) in 12 segments: 12024 octets, only possible with RFC 8654.
        let mut value = Vec::new();
        for chunk in (1..=3000u32).collect::<Vec<_>>().chunks(255) {
            value.push(2);
            value.push(chunk.len() as u8);
            chunk
                .iter()
                .for_each(|a| value.extend_from_slice(&a.to_be_bytes()));
        }
        let d = dec(&attr(0x50, 2, &value), &ctx4());
        assert_eq!(d.treat_as_withdraw, None);
        assert_eq!(d.attributes.as_path.as_ref().unwrap().path_len(), 3000);
        // And it re-encodes to the same octets.
        let wire = encode(&d.attributes, None, None, &ctx4());
        assert_eq!(&wire[..], &attr(0x50, 2, &value)[..]);
    }

    #[test]
    fn fixed_length_attributes_rfc7606_7() {
        let ctx = ctx4();
        // treat-as-withdraw
        for (flags, t, v) in [
            (0x40u8, 1u8, &[0u8, 0][..]), // ORIGIN length 2
            (0x40, 1, &[3]),              // ORIGIN undefined value
            (0x40, 3, &[1, 2, 3, 4, 5]),  // NEXT_HOP length 5
            (0x80, 4, &[1, 2, 3]),        // MED length 3
            (0x40, 5, &[]),               // LOCAL_PREF length 0
            (0x80, 9, &[1, 2, 3]),        // ORIGINATOR_ID length 3
            (0xC0, 8, &[]),               // COMMUNITIES length 0
            (0xC0, 8, &[1, 2, 3, 4, 5]),  // COMMUNITIES length 5
            (0x80, 10, &[]),              // CLUSTER_LIST length 0
            (0x80, 10, &[1, 2, 3, 4, 5, 6]),
            (0xC0, 16, &[1, 2, 3, 4, 5, 6, 7]), // EXTENDED_COMMUNITIES length 7
            (0xC0, 16, &[]),
            (0xC0, 32, &[0; 11]), // LARGE_COMMUNITY length 11
            (0xC0, 32, &[]),
            (0xC0, 35, &[0, 0, 1]),       // OTC length 3
            (0xC0, 35, &[0, 0, 0, 1, 0]), // OTC length 5
        ] {
            let reason = withdrawn(&attr(flags, t, v), &ctx);
            assert!(reason.contains(attr_name(t)), "{reason}");
        }
        // attribute-discard
        for (flags, t, v, c) in [
            (0x40u8, 6u8, &[0u8][..], ctx4()), // ATOMIC_AGGREGATE length 1
            (0xC0, 7, &[0, 0, 0xFD, 0xE9, 10, 0, 0], ctx4()), // AGGREGATOR length 7
            (0xC0, 7, &[0, 0, 0xFD, 0xE9, 10, 0, 0, 1], ctx2()), // 8 on a 2-octet session
            (0xC0, 7, &[0, 0, 0, 0, 10, 0, 0, 1], ctx4()), // AS 0
            (0xC0, 18, &[0, 0, 0xFD, 0xE9, 10, 0], ctx2()), // AS4_AGGREGATOR length 6
        ] {
            discarded(&attr(flags, t, v), &c);
        }
    }

    #[test]
    fn reflection_attributes_from_an_external_peer_are_discarded_rfc7606_7_9() {
        let external = CodecContext {
            external: true,
            ..ctx4()
        };
        let originator = attr(0x80, at::ORIGINATOR_ID, &[10, 0, 0, 9]);
        let cluster = attr(0x80, at::CLUSTER_LIST, &[10, 0, 0, 1, 10, 0, 0, 2]);
        // Well formed or not, from an external peer they are dropped and the route stays.
        for tlv in [
            originator.clone(),
            cluster.clone(),
            attr(0x80, at::ORIGINATOR_ID, &[1, 2, 3]),
            attr(0x80, at::CLUSTER_LIST, &[]),
            attr(0xC0, at::CLUSTER_LIST, &[10, 0, 0, 1]),
        ] {
            let d = discarded(&tlv, &external);
            assert!(d.discarded[0].contains("external"), "{d:?}");
            assert_eq!(d.attributes.originator_id, None);
            assert!(d.attributes.cluster_list.is_empty());
        }
        // From an internal peer they are kept (and malformed ones still withdraw).
        let d = dec(&[originator, cluster].concat(), &ctx4());
        assert_eq!(d.attributes.originator_id, Some(Ipv4Addr::new(10, 0, 0, 9)));
        assert_eq!(d.attributes.cluster_list.len(), 2);
        assert!(d.discarded.is_empty());
        withdrawn(&attr(0x80, at::ORIGINATOR_ID, &[1, 2, 3]), &ctx4());
    }

    #[test]
    fn attribute_flag_errors_rfc7606_3c() {
        // ORIGIN marked optional: treat-as-withdraw.
        assert!(withdrawn(&attr(0xC0, 1, &[0]), &ctx4()).contains("flags"));
        // MED marked transitive.
        withdrawn(&attr(0xC0, 4, &[0, 0, 0, 1]), &ctx4());
        // AGGREGATOR marked non-transitive: its own action, discard.
        discarded(&attr(0x80, 7, &[0, 0, 0xFD, 0xE9, 10, 0, 0, 1]), &ctx4());
        // MP_REACH marked transitive: still parsed so its prefixes can be withdrawn.
        let reach = [0, 1, 1, 4, 10, 0, 0, 1, 0, 24, 10, 1, 2];
        let d = dec(&attr(0xC0, 14, &reach), &ctx4());
        assert!(d.treat_as_withdraw.is_some());
        assert_eq!(
            d.mp_reach.unwrap().nlri,
            MpNlri::Unicast(vec![Nlri::new("10.1.2.0/24".parse().unwrap())])
        );
        // The Partial and Extended Length bits are not errors.
        let d = dec(&attr(0x70, 1, &[2]), &ctx4());
        assert_eq!(
            (d.treat_as_withdraw, d.attributes.origin),
            (None, Some(Origin::Incomplete))
        );
    }

    #[test]
    fn duplicates_rfc7606_3g() {
        let d = discarded(
            &[attr(0x40, 1, &[0]), attr(0x40, 1, &[2])].concat(),
            &ctx4(),
        );
        assert_eq!(d.attributes.origin, Some(Origin::Igp), "the first one wins");
        let unreach = attr(0x80, 15, &[0, 2, 1]);
        let e = dec_err(&[unreach.clone(), unreach].concat(), &ctx4());
        assert_eq!((e.code, e.subcode), (3, 1));
        let reach = attr(0x80, 14, &[0, 1, 1, 4, 10, 0, 0, 1, 0]);
        let e = dec_err(&[reach.clone(), reach].concat(), &ctx4());
        assert_eq!((e.code, e.subcode), (3, 1));
    }

    #[test]
    fn attribute_framing_errors_rfc7606_4() {
        let origin = attr(0x40, 1, &[0]);
        for tail in [
            &[0x40u8, 1][..],          // truncated header
            &[0x50, 2, 0],             // extended length with too few octets
            &[0x40, 2, 10, 2, 1, 0],   // value overruns the block
            &[0x50, 2, 0xFF, 0xFF, 2], // extended length overrun
            &[0x40],
        ] {
            let block = [&origin[..], tail].concat();
            let d = dec(&block, &ctx4());
            assert!(d.treat_as_withdraw.is_some(), "{tail:?}");
            assert_eq!(
                d.attributes.origin,
                Some(Origin::Igp),
                "attributes before the error are kept"
            );
        }
    }

    #[test]
    fn unknown_attributes() {
        // Optional transitive: kept with its flags; re-encoded with Partial.
        let d = dec(&attr(0xC0, 200, &[1, 2]), &ctx4());
        assert_eq!(
            d.attributes.unknown,
            vec![RawAttribute {
                flags: 0xC0,
                type_code: 200,
                value: Bytes::from_static(&[1, 2])
            }]
        );
        assert_eq!(
            &encode(&d.attributes, None, None, &ctx4())[..],
            &attr(0xE0, 200, &[1, 2])[..]
        );
        // Optional non-transitive: kept for the RIB's eyes, never passed on.
        let d = dec(&attr(0x80, 201, &[1]), &ctx4());
        assert_eq!(d.attributes.unknown.len(), 1);
        assert!(encode(&d.attributes, None, None, &ctx4()).is_empty());
        // Unrecognized well-known: RFC 4271 6.3 reset 3/2 carrying the attribute, also
        // behind attributes that decoded fine and in the extended length form.
        let tlv = attr(0x40, 202, &[9, 8]);
        let mut block = attr(0x40, at::ORIGIN, &[0]);
        block.extend_from_slice(&tlv);
        let e = dec_err(&block, &ctx4());
        assert_eq!((e.code, e.subcode), (3, 2), "{e:?}");
        assert_eq!(&e.data[..], &tlv[..]);
        let ext = attr(0x50, 99, &[1; 3]);
        assert_eq!(ext[2..4], [0, 3]);
        assert_eq!(&dec_err(&ext, &ctx4()).data[..], &ext[..]);
        // A known optional attribute without the Optional bit has wrong flags (RFC 7606
        // 3 c): its own error action, not a reset.
        for t in [at::TUNNEL_ENCAPSULATION, at::AIGP, at::PREFIX_SID] {
            let d = discarded(&attr(0x40, t, &[]), &ctx4());
            assert!(d.discarded[0].contains("flags"), "{d:?}");
        }
        assert!(withdrawn(&attr(0x40, at::PMSI_TUNNEL, &[0; 5]), &ctx4()).contains("flags"));
        // Long unknown values use the extended length on encode.
        let big = PathAttributes {
            unknown: vec![RawAttribute {
                flags: 0xE0,
                type_code: 203,
                value: Bytes::from(vec![7; 300]),
            }],
            ..Default::default()
        };
        let wire = encode(&big, None, None, &ctx4());
        assert_eq!(&wire[..4], &[0xF0, 203, 1, 44]);
        assert_eq!(dec(&wire, &ctx4()).attributes.unknown[0].value.len(), 300);
    }

    #[test]
    fn inner_tlv_overruns_are_discarded_not_propagated() {
        // RFC 9012 tunnel encapsulation: TLV length overruns; sub-TLV overruns.
        discarded(&attr(0xC0, 23, &[0, 8, 0, 10, 1, 2]), &ctx4());
        discarded(&attr(0xC0, 23, &[0, 8, 0, 3, 1, 5, 0]), &ctx4());
        discarded(&attr(0xC0, 23, &[0, 8, 0, 3, 0x80, 0, 9]), &ctx4());
        // RFC 7311 AIGP: TLV length below its header; overrun.
        discarded(&attr(0x80, 26, &[1, 0, 2]), &ctx4());
        discarded(&attr(0x80, 26, &[1, 0, 11, 0, 0]), &ctx4());
        // RFC 8669 Prefix-SID: TLV overrun; truncated header.
        discarded(&attr(0xC0, 40, &[1, 0, 7, 0, 0, 0]), &ctx4());
        discarded(&attr(0xC0, 40, &[1, 0]), &ctx4());
        // Well-formed ones are kept opaque.
        for (f, t, v) in [
            (0xC0u8, 23u8, &[0u8, 8, 0, 6, 1, 1, 9, 0x80, 0, 0][..]),
            (0x80, 26, &[1, 0, 11, 0, 0, 0, 0, 0, 0, 0, 5]),
            (0xC0, 40, &[1, 0, 7, 0, 0, 0, 0, 0, 0, 100]),
        ] {
            let d = dec(&attr(f, t, v), &ctx4());
            assert_eq!(
                (
                    d.treat_as_withdraw,
                    d.discarded.len(),
                    d.attributes.unknown.len()
                ),
                (None, 0, 1)
            );
        }
    }

    #[test]
    fn mp_reach_next_hop_errors_reset_3_1() {
        for value in [
            &[0u8, 1, 1, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0][..], // v4 next-hop length 9
            &[
                0, 2, 1, 64, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
            ], // 64 with 17 left
            &[0, 2, 1, 0, 0],                                  // v6 next-hop length 0
            &[0, 1, 1, 0, 0, 24, 10, 0, 0],                    // v4 next-hop length 0
            &[0, 2, 1, 5, 10, 0, 0, 1, 1, 0],                  // v6 with a 5-octet next hop
            &[0, 1, 1, 4],                                     // truncated
            &[0, 1],
            &[0, 1, 1, 4, 10, 0, 0, 1], // no reserved octet
            &[0, 1, 1, 4, 10, 0, 0, 1, 0, 33, 1, 2, 3, 4, 5], // prefix length 33
            &[0, 1, 1, 4, 10, 0, 0, 1, 0, 24, 10], // prefix overrun
        ] {
            let e = dec_err(&attr(0x80, 14, value), &ctx4());
            assert_eq!((e.code, e.subcode), (3, 1), "{value:?}");
        }
        let mut v6_129 = vec![0, 2, 1, 16];
        v6_129.extend_from_slice(&[
            0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 129,
        ]);
        v6_129.extend_from_slice(&[0; 17]);
        assert_eq!(dec_err(&attr(0x80, 14, &v6_129), &ctx4()).subcode, 1);
        for value in [&[0u8, 2][..], &[0, 1, 1, 33, 1, 2, 3, 4, 5]] {
            let e = dec_err(&attr(0x80, 15, value), &ctx4());
            assert_eq!((e.code, e.subcode), (3, 1), "MP_UNREACH {value:?}");
        }
    }

    #[test]
    fn mp_next_hop_forms() {
        let g: Ipv6Addr = "2001:db8::1".parse().unwrap();
        let ll: Ipv6Addr = "fe80::1".parse().unwrap();
        let cases = [
            (
                V6,
                MpNextHop::V6 {
                    global: g,
                    link_local: None,
                },
            ),
            (
                V6,
                MpNextHop::V6 {
                    global: g,
                    link_local: Some(ll),
                },
            ),
            // RFC 8950: IPv4 NLRI with an IPv6 next hop.
            (
                V4,
                MpNextHop::V6 {
                    global: g,
                    link_local: None,
                },
            ),
            (
                V4,
                MpNextHop::V6 {
                    global: g,
                    link_local: Some(ll),
                },
            ),
            (V4, MpNextHop::V4(Ipv4Addr::new(10, 0, 0, 1))),
            // ExaBGP-style IPv4 next hop for IPv6 NLRI.
            (V6, MpNextHop::V4(Ipv4Addr::new(170, 170, 170, 170))),
        ];
        for (family, next_hop) in cases {
            let prefix = if family == V4 {
                "10.1.0.0/16"
            } else {
                "2001:db8:5::/48"
            };
            for add_path in [false, true] {
                let ctx = CodecContext {
                    four_octet_as: true,
                    add_path_receive: if add_path { vec![family] } else { vec![] },
                    add_path_send: if add_path { vec![family] } else { vec![] },
                    ..Default::default()
                };
                let reach = MpReach {
                    family,
                    next_hop: next_hop.clone(),
                    nlri: MpNlri::Unicast(vec![Nlri {
                        path_id: add_path.then_some(3),
                        prefix: prefix.parse().unwrap(),
                    }]),
                };
                let wire = encode(&PathAttributes::default(), Some(&reach), None, &ctx);
                assert_eq!(dec(&wire, &ctx).mp_reach, Some(reach));
            }
        }
        let _ = AddPathMode::Both;
    }

    #[test]
    fn other_families_are_opaque() {
        for (afi, safi, nh, nlri) in [
            // MPLS VPN with an RD-prefixed next hop.
            (
                1u16,
                128u8,
                &[0u8, 0, 0, 0, 0, 0, 0, 0, 10, 0, 0, 1][..],
                &[
                    0x70u8, 0x04, 0xE2, 0xC1, 0, 0, 0, 0x64, 0, 0, 0, 0x64, 10, 0, 0,
                ][..],
            ),
            // Labeled unicast whose label lacks bottom-of-stack (RFC 8277): not our business.
            (1, 4, &[10, 0, 0, 1], &[0x30, 0x04, 0xE2, 0xC0, 10, 0, 0]),
            // EVPN, flowspec (next-hop length 0), BGP-LS.
            (25, 70, &[10, 0, 0, 1], &[2, 3, 1, 2, 3]),
            (1, 133, &[], &[5, 1, 24, 10, 0, 0]),
            (16388, 71, &[10, 0, 0, 1], &[0, 1, 0, 2, 9, 9]),
        ] {
            let mut value = afi.to_be_bytes().to_vec();
            value.push(safi);
            value.push(nh.len() as u8);
            value.extend_from_slice(nh);
            value.push(0);
            value.extend_from_slice(nlri);
            let d = dec(&attr(0x80, 14, &value), &ctx4());
            let reach = d.mp_reach.unwrap();
            assert_eq!(reach.family, Family::new(Afi(afi), Safi(safi)));
            assert_eq!(
                reach.next_hop,
                MpNextHop::Opaque(Bytes::copy_from_slice(nh))
            );
            assert_eq!(reach.nlri, MpNlri::Opaque(Bytes::copy_from_slice(nlri)));
            // Re-encoded unchanged.
            assert_eq!(
                &encode(&PathAttributes::default(), Some(&reach), None, &ctx4())[..],
                &attr(0x80, 14, &value)[..]
            );
            let mut unreach = afi.to_be_bytes().to_vec();
            unreach.push(safi);
            unreach.extend_from_slice(nlri);
            assert_eq!(
                dec(&attr(0x80, 15, &unreach), &ctx4())
                    .mp_unreach
                    .unwrap()
                    .nlri,
                MpNlri::Opaque(Bytes::copy_from_slice(nlri))
            );
        }
    }

    #[test]
    fn mrt_abbreviated_mp_reach_rfc6396_4_3_4() {
        let ctx = ctx4();
        let mrt = |v: &[u8]| {
            decode_path_attributes(&attr(0x80, 14, v), &ctx, MpReachForm::MrtAbbreviated)
                .unwrap()
                .mp_reach
                .unwrap()
        };
        let mut v6 = vec![32];
        v6.extend_from_slice(&"2001:db8::1".parse::<Ipv6Addr>().unwrap().octets());
        v6.extend_from_slice(&"fe80::1".parse::<Ipv6Addr>().unwrap().octets());
        let r = mrt(&v6);
        assert_eq!(r.family, V6);
        assert_eq!(r.next_hop.addr(), Some("2001:db8::1".parse().unwrap()));
        assert_eq!(
            mrt(&[4, 10, 0, 0, 1]).next_hop,
            MpNextHop::V4(Ipv4Addr::new(10, 0, 0, 1))
        );
        assert_eq!(
            mrt(&[2, 1, 2]).next_hop,
            MpNextHop::Opaque(Bytes::from_static(&[1, 2]))
        );
        // A full-form attribute in an MRT entry is still understood.
        let full = mrt(&[0, 1, 1, 4, 10, 0, 0, 1, 0, 8, 10]);
        assert_eq!(
            full.nlri,
            MpNlri::Unicast(vec![Nlri::new("10.0.0.0/8".parse().unwrap())])
        );
    }

    #[test]
    fn rib_attributes_encode_the_rfc6396_4_3_4_layout_and_decode_back() {
        let rib = |family, attrs: &PathAttributes, nh: Option<&MpNextHop>| {
            let mut out = BytesMut::new();
            encode_rib_attributes(family, attrs, nh, &mut out).map(|()| out)
        };
        let mut attrs = full_set();
        attrs.next_hop = Some(Ipv4Addr::new(192, 0, 2, 9));
        // IPv4 unicast: NEXT_HOP (the argument wins), no MP_REACH_NLRI, 4-octet AS.
        let nh4 = MpNextHop::V4(Ipv4Addr::new(10, 0, 0, 1));
        let block = rib(Family::IPV4_UNICAST, &attrs, Some(&nh4)).unwrap();
        let d = decode_path_attributes(&block, &ctx4(), MpReachForm::MrtAbbreviated).unwrap();
        assert_eq!(d.attributes.next_hop, Some(Ipv4Addr::new(10, 0, 0, 1)));
        assert_eq!(d.mp_reach, None);
        assert_eq!(d.attributes.as_path, full_set().as_path);
        // No next hop given: attrs.next_hop as it is.
        let block = rib(Family::IPV4_UNICAST, &attrs, None).unwrap();
        let d = decode_path_attributes(&block, &ctx4(), MpReachForm::MrtAbbreviated).unwrap();
        assert_eq!(d.attributes.next_hop, Some(Ipv4Addr::new(192, 0, 2, 9)));
        // IPv6: the abbreviated MP_REACH_NLRI (length octet + next hop), no NEXT_HOP.
        let nh6 = MpNextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
        };
        let block = rib(V6, &attrs, Some(&nh6)).unwrap();
        let mp = flags_by_type(&block).into_iter().filter(|(t, _)| *t == 14);
        assert_eq!(mp.count(), 1);
        let d = decode_path_attributes(&block, &ctx4(), MpReachForm::MrtAbbreviated).unwrap();
        assert_eq!(d.attributes.next_hop, None);
        let mut want = full_set();
        want.next_hop = None;
        assert_eq!(d.attributes, want);
        assert_eq!(d.mp_reach.map(|r| (r.family, r.next_hop)), Some((V6, nh6)));
        // An IPv4 route over an IPv6 next hop (RFC 8950) also uses MP_REACH_NLRI.
        let v6_nh = MpNextHop::V6 {
            global: "2001:db8::2".parse().unwrap(),
            link_local: None,
        };
        let block = rib(Family::IPV4_UNICAST, &attrs, Some(&v6_nh)).unwrap();
        let d = decode_path_attributes(&block, &ctx4(), MpReachForm::MrtAbbreviated).unwrap();
        assert_eq!(d.mp_reach.map(|r| r.next_hop), Some(v6_nh));
        // An MP family without a next hop cannot be written.
        assert!(rib(V6, &attrs, None).is_err());
    }

    #[test]
    fn encode_refuses_values_too_long_for_an_attribute() {
        let attrs = PathAttributes {
            communities: vec![Community(1); 20_000],
            ..Default::default()
        };
        let mut out = BytesMut::new();
        assert!(matches!(
            encode_path_attributes(&attrs, None, None, &ctx4(), &mut out),
            Err(EncodeError::Invalid(_))
        ));
    }

    /// The flag octet of each attribute in an encoded block, by type.
    fn flags_by_type(block: &[u8]) -> Vec<(u8, u8)> {
        let mut r = Reader::new(block);
        let mut out = Vec::new();
        while let Some((f, t, _)) = attribute_tlv(&mut r) {
            out.push((t, f));
        }
        out
    }

    #[test]
    fn recognised_optional_transitive_attributes_keep_partial_rfc4271_4_3() {
        let base = [
            attr(0x40, 1, &[0]),
            attr(0x40, 2, &[2, 1, 0, 0, 0xFD, 0xE9]),
            attr(0x40, 3, &[10, 0, 0, 1]),
        ]
        .concat();
        let block = [
            base.clone(),
            attr(0xE0, 7, &[0, 0, 0xFD, 0xE9, 10, 0, 0, 1]),
            attr(0xC0, 8, &[0xFD, 0xE8, 0, 1]),
            attr(0xE0, 16, &[0, 2, 0xFD, 0xE8, 0, 0, 0, 1]),
            attr(0xE0, 32, &[0, 0, 0xFD, 0xE8, 0, 0, 0, 1, 0, 0, 0, 2]),
            attr(0xE0, 35, &[0, 0, 0xFD, 0xE9]),
        ]
        .concat();
        let d = dec(&block, &ctx4());
        assert_eq!(
            (d.treat_as_withdraw.as_deref(), d.discarded.len()),
            (None, 0)
        );
        let p = d.attributes.partial;
        for t in [7, 16, 32, 35] {
            assert!(p.contains(t), "type {t}");
        }
        assert!(!p.contains(8), "COMMUNITIES arrived without Partial");
        // Passed on exactly as received: Partial kept where set, not added elsewhere.
        assert_eq!(&encode(&d.attributes, None, None, &ctx4())[..], &block[..]);

        // Partial on a well-known or optional non-transitive attribute is not an error
        // (RFC 7606 3 c checks only Optional/Transitive) but is not passed on either:
        // "For well-known attributes and for optional non-transitive attributes, the
        // Partial bit MUST be set to 0" (RFC 4271 4.3).
        let d = dec(
            &[attr(0x60, 1, &[0]), attr(0xA0, 4, &[0, 0, 0, 5])].concat(),
            &ctx4(),
        );
        assert_eq!(d.treat_as_withdraw, None);
        assert!(d.attributes.partial.is_empty());
        assert_eq!(
            flags_by_type(&encode(&d.attributes, None, None, &ctx4())),
            [(1, 0x40), (4, 0x80)]
        );
    }

    #[test]
    fn partial_of_a_discarded_or_duplicate_attribute_is_not_kept() {
        // AGGREGATOR of the wrong length: discarded with its Partial bit.
        let d = discarded(&attr(0xE0, 7, &[0, 0, 0xFD, 0xE9, 10, 0, 0]), &ctx4());
        assert!(d.attributes.partial.is_empty());
        // The first COMMUNITIES wins, and with it its flags.
        let d = discarded(
            &[
                attr(0xC0, 8, &[0xFD, 0xE8, 0, 1]),
                attr(0xE0, 8, &[0xFD, 0xE8, 0, 2]),
            ]
            .concat(),
            &ctx4(),
        );
        assert_eq!(d.attributes.communities, [Community::new(65000, 1)]);
        assert!(!d.attributes.partial.contains(at::COMMUNITIES));
    }

    /// RFC 6793 4.2.3: a NEW speaker behind an OLD one receives AS4_PATH/AS4_AGGREGATOR
    /// with Partial (the OLD speaker passed them on unrecognised, RFC 4271 5).
    #[test]
    fn as4_attributes_partial_from_an_old_speaker_rfc6793() {
        let block = [
            attr(0x40, 1, &[0]),
            // AS_PATH 65001 AS_TRANS
            attr(0x40, 2, &[2, 2, 0xFD, 0xE9, 0x5B, 0xA0]),
            attr(0x40, 3, &[10, 0, 0, 1]),
            // AGGREGATOR AS_TRANS 10.0.0.1, without Partial (the OLD speaker knows it)
            attr(0xC0, 7, &[0x5B, 0xA0, 10, 0, 0, 1]),
            // AS4_PATH 65001 4200000000, AS4_AGGREGATOR 4200000000 10.0.0.1
            attr(0xE0, 17, &[2, 2, 0, 0, 0xFD, 0xE9, 0xFA, 0x56, 0xEA, 0x00]),
            attr(0xE0, 18, &[0xFA, 0x56, 0xEA, 0x00, 10, 0, 0, 1]),
        ]
        .concat();
        let d = dec(&block, &ctx2());
        assert_eq!(
            (d.treat_as_withdraw.as_deref(), d.discarded.len()),
            (None, 0)
        );
        let a = &d.attributes;
        assert_eq!(
            a.as_path.as_ref().unwrap().segments,
            [seq(&[65001, 4_200_000_000])]
        );
        assert_eq!(a.aggregator.unwrap().asn, 4_200_000_000);
        assert!(a.partial.contains(at::AS4_PATH) && a.partial.contains(at::AS4_AGGREGATOR));
        assert!(!a.partial.contains(at::AGGREGATOR));
        // Towards another 2-octet speaker the regenerated AS4_* keep Partial: the exact
        // bytes received.
        assert_eq!(&encode(a, None, None, &ctx2())[..], &block[..]);
        // A 4-octet speaker gets no AS4_* attributes: AS_PATH is well-known (Partial 0)
        // and AGGREGATOR keeps its own (clear) bit.
        assert_eq!(
            flags_by_type(&encode(a, None, None, &ctx4())),
            [(1, 0x40), (2, 0x40), (3, 0x40), (7, 0xC0)]
        );

        // Ignored AS4 attributes (RFC 6793 4.2.3) leave no Partial behind.
        let ignored = [
            attr(0x40, 2, &[2, 1, 0xFD, 0xE9]),
            // AGGREGATOR with a real 2-octet AS: AS4_AGGREGATOR and AS4_PATH ignored.
            attr(0xC0, 7, &[0xFD, 0xEA, 10, 0, 0, 1]),
            attr(0xE0, 17, &[2, 1, 0xFA, 0x56, 0xEA, 0x00]),
            attr(0xE0, 18, &[0xFA, 0x56, 0xEA, 0x00, 10, 0, 0, 1]),
        ]
        .concat();
        let d = dec(&ignored, &ctx2());
        assert!(d.attributes.partial.is_empty(), "{d:?}");
        // AS4_PATH longer than AS_PATH: ignored.
        let longer = [
            attr(0x40, 2, &[2, 1, 0xFD, 0xE9]),
            attr(0xE0, 17, &[2, 2, 0, 0, 0xFD, 0xE9, 0xFA, 0x56, 0xEA, 0x00]),
        ]
        .concat();
        let d = dec(&longer, &ctx2());
        assert_eq!(d.attributes.as_path.unwrap().segments, [seq(&[65001])]);
        assert!(d.attributes.partial.is_empty());
    }
}
