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

use bytes::Bytes;

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

mod encode;
#[cfg(test)]
mod tests;

pub use encode::encode_rib_attributes;
pub(crate) use encode::{encode_path_attributes, with_next_hop};
