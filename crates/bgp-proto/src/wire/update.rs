//! UPDATE (RFC 4271 4.3, RFC 4760) decoding with RFC 7606 outcomes, encoding, packing of
//! many prefixes into few messages, and End-of-RIB (RFC 4724 2).

use bytes::{BufMut, Bytes, BytesMut};

use super::attributes::{
    decode_path_attributes, encode_path_attributes, with_next_hop, MpReachForm,
};
use super::error::{EncodeError, NotificationError};
use super::header::{begin_message, finish_message};
use super::nlri::{decode_prefixes, encode_prefix, prefix_wire_len};
use super::reader::Reader;
use super::types::{
    attr_flags as af, attr_type as at, message_type, notification_code as nc, Afi, CodecContext,
    Family, MpNextHop, MpNlri, MpReach, Nlri, PathAttributes, Update, HEADER_LEN,
};

/// Room reserved for an encoded attribute block before it is written: ORIGIN, an AS_PATH
/// of a dozen ASNs, NEXT_HOP, MED, LOCAL_PREF, ORIGINATOR_ID, a CLUSTER_LIST and a few
/// communities fit, so the block is written without growing its buffer step by step
/// (8, 16, 32, ... octets: a reallocation and copy each); a longer block still grows.
const ATTRS_CAPACITY: usize = 256;

/// The RFC 7606 outcome of a well-framed UPDATE. Session-reset cases are the `Err` of
/// [`decode_update`] / `decode_message`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DecodedUpdate {
    pub update: Update,
    /// `Some(reason)`: every prefix in `update` (NLRI, MP_REACH, withdrawn, MP_UNREACH)
    /// must be treated as withdrawn (RFC 7606 2).
    pub treat_as_withdraw: Option<String>,
    /// Attributes dropped under attribute-discard (RFC 7606 2), with reasons.
    pub discarded: Vec<String>,
}

fn malformed_list(reason: impl Into<String>) -> NotificationError {
    NotificationError::new(nc::UPDATE_MESSAGE, nc::MALFORMED_ATTRIBUTE_LIST, reason)
}

/// Decode an UPDATE body (after the header).
///
/// Session resets: Withdrawn Routes Length or Total Path Attribute Length beyond the
/// message (3/1, RFC 4271 6.3), a malformed prefix in the Withdrawn Routes or NLRI field
/// (3/10 Invalid Network Field, RFC 7606 5.3), and the MP_REACH/MP_UNREACH errors of
/// RFC 7606 7.11 / 3(g) (3/1). Everything else degrades to treat-as-withdraw or
/// attribute-discard, including missing well-known mandatory attributes (RFC 7606 3 d):
/// ORIGIN and AS_PATH whenever prefixes are announced, NEXT_HOP when the NLRI field is
/// used (RFC 4760 3 makes it optional for MP_REACH-only updates). LOCAL_PREF is only
/// mandatory on iBGP, which the codec does not know; nor does it check next-hop
/// semantics (RFC 4271 6.3), or confederation segments from a non-confederation peer
/// (RFC 7606 7.2): those are for the session/RIB.
pub fn decode_update(body: &[u8], ctx: &CodecContext) -> Result<DecodedUpdate, NotificationError> {
    let mut r = Reader::new(body);
    let wlen = r
        .u16()
        .ok_or_else(|| malformed_list("UPDATE too short for its Withdrawn Routes Length"))?;
    let withdrawn_octets = r.take(usize::from(wlen)).ok_or_else(|| {
        malformed_list(format!(
            "Withdrawn Routes Length {wlen} overruns the UPDATE"
        ))
    })?;
    let alen = r
        .u16()
        .ok_or_else(|| malformed_list("UPDATE too short for its Total Path Attribute Length"))?;
    let attr_octets = r.take(usize::from(alen)).ok_or_else(|| {
        malformed_list(format!(
            "Total Path Attribute Length {alen} overruns the UPDATE"
        ))
    })?;
    let nlri_octets = r.rest();

    let v4_add_path = ctx.receives_path_id(Family::IPV4_UNICAST);
    let invalid_network = |field: &str, e: String| {
        NotificationError::new(
            nc::UPDATE_MESSAGE,
            nc::INVALID_NETWORK_FIELD,
            format!("{field}: {e}"),
        )
    };
    let mut withdrawn = Vec::new();
    decode_prefixes(withdrawn_octets, Afi::IPV4, v4_add_path, &mut withdrawn)
        .map_err(|e| invalid_network("Withdrawn Routes", e.0))?;
    let attrs = decode_path_attributes(attr_octets, ctx, MpReachForm::Standard)?;
    let mut nlri = Vec::new();
    decode_prefixes(nlri_octets, Afi::IPV4, v4_add_path, &mut nlri)
        .map_err(|e| invalid_network("NLRI", e.0))?;

    let mut treat_as_withdraw = attrs.treat_as_withdraw;
    let a = &attrs.attributes;
    let announces = !nlri.is_empty() || attrs.mp_reach.as_ref().is_some_and(|m| !m.nlri.is_empty());
    if announces && treat_as_withdraw.is_none() {
        // RFC 7606 3 d: missing well-known mandatory attributes.
        let missing = if a.origin.is_none() {
            Some("ORIGIN")
        } else if a.as_path.is_none() {
            Some("AS_PATH")
        } else if !nlri.is_empty() && a.next_hop.is_none() {
            Some("NEXT_HOP")
        } else {
            None
        };
        if let Some(m) = missing {
            treat_as_withdraw = Some(format!("missing well-known mandatory attribute {m}"));
        }
    }
    Ok(DecodedUpdate {
        update: Update {
            withdrawn,
            mp_unreach: attrs.mp_unreach,
            attributes: attrs.attributes,
            mp_reach: attrs.mp_reach,
            nlri,
        },
        treat_as_withdraw,
        discarded: attrs.discarded,
    })
}

fn put_len_u16(out: &mut BytesMut, at: usize, what: &str) -> Result<(), EncodeError> {
    let len = out.len() - at - 2;
    let len = u16::try_from(len)
        .map_err(|_| EncodeError::Invalid(format!("{what} of {len} octets exceeds 65535")))?;
    if let Some(slot) = out.get_mut(at..at + 2) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
    Ok(())
}

/// Encode an UPDATE body.
pub(crate) fn encode_update(
    u: &Update,
    ctx: &CodecContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let v4_add_path = ctx.sends_path_id(Family::IPV4_UNICAST);
    // Typical prefixes take 4 or 5 octets (9 with a path id): reserve once.
    out.reserve((u.withdrawn.len() + u.nlri.len()) * if v4_add_path { 9 } else { 5 } + 64);
    let at_w = out.len();
    out.put_u16(0);
    for n in &u.withdrawn {
        encode_prefix(n, Afi::IPV4, v4_add_path, out)?;
    }
    put_len_u16(out, at_w, "Withdrawn Routes")?;
    let at_a = out.len();
    out.put_u16(0);
    encode_path_attributes(
        &u.attributes,
        u.mp_reach.as_ref(),
        u.mp_unreach.as_ref(),
        ctx,
        out,
    )?;
    put_len_u16(out, at_a, "Path Attributes")?;
    for n in &u.nlri {
        encode_prefix(n, Afi::IPV4, v4_add_path, out)?;
    }
    Ok(())
}

fn unicast_slice(nlri: &MpNlri) -> &[Nlri] {
    match nlri {
        MpNlri::Unicast(v) => v,
        MpNlri::Opaque(_) => &[],
    }
}

impl Update {
    /// The family this UPDATE marks End-of-RIB for (RFC 4724 2): an empty UPDATE for
    /// IPv4 unicast, or one holding only an empty MP_UNREACH_NLRI for other families.
    pub fn end_of_rib(&self) -> Option<Family> {
        if !self.withdrawn.is_empty()
            || !self.nlri.is_empty()
            || self.mp_reach.is_some()
            || self.attributes != PathAttributes::default()
        {
            return None;
        }
        match &self.mp_unreach {
            None => Some(Family::IPV4_UNICAST),
            Some(u) if u.nlri.is_empty() => Some(u.family),
            Some(_) => None,
        }
    }

    /// Every (family, prefix) announced: the NLRI field (IPv4 unicast) and the unicast
    /// NLRI of MP_REACH_NLRI. Opaque families are not listed.
    pub fn announced(&self) -> impl Iterator<Item = (Family, Nlri)> + '_ {
        let mp = self
            .mp_reach
            .iter()
            .flat_map(|m| unicast_slice(&m.nlri).iter().map(move |n| (m.family, *n)));
        self.nlri
            .iter()
            .map(|n| (Family::IPV4_UNICAST, *n))
            .chain(mp)
    }

    /// Every (family, prefix) withdrawn: the Withdrawn Routes field (IPv4 unicast) and the
    /// unicast NLRI of MP_UNREACH_NLRI.
    pub fn withdrawn_routes(&self) -> impl Iterator<Item = (Family, Nlri)> + '_ {
        let mp = self
            .mp_unreach
            .iter()
            .flat_map(|m| unicast_slice(&m.nlri).iter().map(move |n| (m.family, *n)));
        self.withdrawn
            .iter()
            .map(|n| (Family::IPV4_UNICAST, *n))
            .chain(mp)
    }
}

/// Split `nlri` into runs whose encoded size fits `budget` octets each.
fn pack<'a>(
    nlri: &'a [Nlri],
    add_path: bool,
    budget: usize,
) -> Result<impl Iterator<Item = &'a [Nlri]> + 'a, EncodeError> {
    if let Some(n) = nlri.iter().find(|n| prefix_wire_len(n, add_path) > budget) {
        return Err(EncodeError::Invalid(format!(
            "no room for prefix {} beside the attributes ({budget} octets left)",
            n.prefix
        )));
    }
    let mut rest = nlri;
    Ok(std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut used = 0;
        let mut count = 0;
        for n in rest {
            let l = prefix_wire_len(n, add_path);
            if used + l > budget {
                break;
            }
            used += l;
            count += 1;
        }
        let (run, tail) = rest.split_at(count);
        rest = tail;
        Some(run)
    }))
}

/// Pack many prefixes sharing one attribute set into as few UPDATEs as
/// `ctx.max_message_len()` allows, appending each framed message to `out`.
///
/// IPv4 unicast with an IPv4 (or no) `next_hop` uses the NLRI field and the NEXT_HOP
/// attribute (`next_hop` overrides `attrs.next_hop`); every other case, including IPv4
/// with an IPv6 next hop (RFC 8950), uses MP_REACH_NLRI with `next_hop`. Path
/// identifiers are written when ADD-PATH send is negotiated for `family`.
pub fn encode_announcements(
    family: Family,
    attrs: &PathAttributes,
    next_hop: Option<&MpNextHop>,
    nlri: &[Nlri],
    ctx: &CodecContext,
    out: &mut Vec<Bytes>,
) -> Result<(), EncodeError> {
    if nlri.is_empty() {
        return Ok(());
    }
    let max = ctx.max_message_len();
    let add_path = ctx.sends_path_id(family);
    let v4_field =
        family == Family::IPV4_UNICAST && matches!(next_hop, None | Some(MpNextHop::V4(_)));
    if v4_field {
        if next_hop.is_none() && attrs.next_hop.is_none() {
            return Err(EncodeError::Invalid(
                "IPv4 unicast announcement without a next hop".into(),
            ));
        }
        let attrs = match next_hop {
            Some(MpNextHop::V4(nh)) => with_next_hop(attrs, Some(*nh)),
            _ => std::borrow::Cow::Borrowed(attrs),
        };
        let mut encoded = BytesMut::with_capacity(ATTRS_CAPACITY);
        encode_path_attributes(&attrs, None, None, ctx, &mut encoded)?;
        let budget = max.saturating_sub(HEADER_LEN + 4 + encoded.len());
        for run in pack(nlri, add_path, budget)? {
            let mut msg =
                BytesMut::with_capacity(max.min(HEADER_LEN + 4 + encoded.len() + run.len() * 9));
            let start = begin_message(&mut msg, message_type::UPDATE);
            msg.put_u16(0);
            msg.put_u16(encoded.len() as u16); // < max by the budget check
            msg.put_slice(&encoded);
            for n in run {
                encode_prefix(n, Afi::IPV4, add_path, &mut msg)?;
            }
            finish_message(&mut msg, start, max)?;
            out.push(msg.freeze());
        }
        return Ok(());
    }
    let next_hop = next_hop
        .ok_or_else(|| EncodeError::Invalid(format!("announcing {family} needs a next hop")))?;
    // MP_REACH carries the next hop: drop a stray NEXT_HOP for non-IPv4 NLRI.
    let attrs = &*with_next_hop(attrs, None);
    let mut empty = MpReach {
        family,
        next_hop: next_hop.clone(),
        nlri: MpNlri::Unicast(Vec::new()),
    };
    let mut base = BytesMut::with_capacity(ATTRS_CAPACITY);
    encode_path_attributes(attrs, Some(&empty), None, ctx, &mut base)?;
    // One octet spare: MP_REACH may need the Extended Length form once NLRI are added.
    let budget = max.saturating_sub(HEADER_LEN + 4 + base.len() + 1);
    for run in pack(nlri, add_path, budget)? {
        empty.nlri = MpNlri::Unicast(run.to_vec());
        let mut msg = BytesMut::with_capacity(max.min(base.len() + 32 + run.len() * 21));
        let start = begin_message(&mut msg, message_type::UPDATE);
        msg.put_u16(0);
        let at_a = msg.len();
        msg.put_u16(0);
        encode_path_attributes(attrs, Some(&empty), None, ctx, &mut msg)?;
        put_len_u16(&mut msg, at_a, "Path Attributes")?;
        finish_message(&mut msg, start, max)?;
        out.push(msg.freeze());
    }
    Ok(())
}

/// Withdraw `nlri` in as few UPDATEs as fit: the Withdrawn Routes field for IPv4
/// unicast, MP_UNREACH_NLRI otherwise.
pub fn encode_withdrawals(
    family: Family,
    nlri: &[Nlri],
    ctx: &CodecContext,
    out: &mut Vec<Bytes>,
) -> Result<(), EncodeError> {
    if nlri.is_empty() {
        return Ok(());
    }
    let max = ctx.max_message_len();
    let add_path = ctx.sends_path_id(family);
    if family == Family::IPV4_UNICAST {
        for run in pack(nlri, add_path, max - HEADER_LEN - 4)? {
            let mut msg = BytesMut::new();
            let start = begin_message(&mut msg, message_type::UPDATE);
            let at_w = msg.len();
            msg.put_u16(0);
            for n in run {
                encode_prefix(n, Afi::IPV4, add_path, &mut msg)?;
            }
            put_len_u16(&mut msg, at_w, "Withdrawn Routes")?;
            msg.put_u16(0);
            finish_message(&mut msg, start, max)?;
            out.push(msg.freeze());
        }
        return Ok(());
    }
    // Attribute header with extended length (4) + AFI/SAFI (3).
    for run in pack(nlri, add_path, max - HEADER_LEN - 4 - 7)? {
        let mut msg = BytesMut::new();
        let start = begin_message(&mut msg, message_type::UPDATE);
        msg.put_u16(0);
        let at_a = msg.len();
        msg.put_u16(0);
        let mut value = BytesMut::new();
        value.put_u16(family.afi.0);
        value.put_u8(family.safi.0);
        for n in run {
            encode_prefix(n, family.afi, add_path, &mut value)?;
        }
        put_mp_attr(&mut msg, at::MP_UNREACH_NLRI, &value);
        put_len_u16(&mut msg, at_a, "Path Attributes")?;
        finish_message(&mut msg, start, max)?;
        out.push(msg.freeze());
    }
    Ok(())
}

fn put_mp_attr(out: &mut BytesMut, type_code: u8, value: &[u8]) {
    if value.len() > 255 {
        out.put_u8(af::OPTIONAL | af::EXTENDED_LENGTH);
        out.put_u8(type_code);
        out.put_u16(value.len() as u16);
    } else {
        out.put_u8(af::OPTIONAL);
        out.put_u8(type_code);
        out.put_u8(value.len() as u8);
    }
    out.put_slice(value);
}

/// Append the End-of-RIB marker for `family` (RFC 4724 2): an empty UPDATE for IPv4
/// unicast, an UPDATE with an empty MP_UNREACH_NLRI otherwise.
pub fn encode_end_of_rib(family: Family, out: &mut Vec<Bytes>) {
    let mut msg = BytesMut::with_capacity(HEADER_LEN + 10);
    let start = begin_message(&mut msg, message_type::UPDATE);
    msg.put_u16(0);
    if family == Family::IPV4_UNICAST {
        msg.put_u16(0);
    } else {
        msg.put_u16(6);
        msg.put_u8(af::OPTIONAL);
        msg.put_u8(at::MP_UNREACH_NLRI);
        msg.put_u8(3);
        msg.put_u16(family.afi.0);
        msg.put_u8(family.safi.0);
    }
    // At most 29 octets: always fits.
    let _ = finish_message(&mut msg, start, usize::from(u16::MAX));
    out.push(msg.freeze());
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;
    use crate::wire::message::{decode_message, Inbound};
    use crate::wire::types::{AsPath, AsSegment, Community, MpUnreach, Origin, SegmentType};

    fn ctx4() -> CodecContext {
        CodecContext {
            four_octet_as: true,
            ..CodecContext::default()
        }
    }

    fn body(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
        let mut v = (withdrawn.len() as u16).to_be_bytes().to_vec();
        v.extend_from_slice(withdrawn);
        v.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
        v.extend_from_slice(attrs);
        v.extend_from_slice(nlri);
        v
    }

    /// ORIGIN IGP, AS_PATH 65001 (4-octet), NEXT_HOP 192.0.2.1.
    const MANDATORY: [u8; 21] = [
        0x40, 1, 1, 0, 0x40, 2, 6, 2, 1, 0, 0, 0xFD, 0xE9, 0x40, 3, 4, 192, 0, 2, 1, 0,
    ];

    fn mandatory() -> &'static [u8] {
        &MANDATORY[..20]
    }

    fn attrs() -> PathAttributes {
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath {
                segments: vec![AsSegment {
                    kind: SegmentType::Sequence,
                    asns: vec![65001, 65002],
                }],
            }),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            med: Some(0),
            communities: vec![Community::new(65001, 100)],
            ..Default::default()
        }
    }

    fn v4s(n: u32) -> Vec<Nlri> {
        (0..n)
            .map(|i| Nlri::new(format!("10.{}.{}.0/24", i / 256, i % 256).parse().unwrap()))
            .collect()
    }

    fn v6s(n: u32) -> Vec<Nlri> {
        (0..n)
            .map(|i| Nlri::new(format!("2001:db8:{i:x}::/48").parse().unwrap()))
            .collect()
    }

    #[test]
    fn plain_ipv4_update() {
        let d = decode_update(&body(&[16, 10, 9], mandatory(), &[24, 192, 0, 2]), &ctx4()).unwrap();
        assert_eq!(d.treat_as_withdraw, None);
        assert_eq!(
            d.update.withdrawn,
            vec![Nlri::new("10.9.0.0/16".parse().unwrap())]
        );
        assert_eq!(
            d.update.nlri,
            vec![Nlri::new("192.0.2.0/24".parse().unwrap())]
        );
        assert_eq!(
            d.update.attributes.next_hop,
            Some(Ipv4Addr::new(192, 0, 2, 1))
        );
        assert_eq!(
            d.update.announced().collect::<Vec<_>>(),
            vec![(Family::IPV4_UNICAST, d.update.nlri[0])]
        );
        assert_eq!(d.update.withdrawn_routes().count(), 1);
        assert_eq!(d.update.end_of_rib(), None);
    }

    #[test]
    fn length_fields_past_the_end_are_3_1() {
        // REFERENCE 4.1: withdrawn length or total attribute length beyond the message.
        for b in [
            vec![0u8, 5, 1, 2],
            vec![0xFF, 0xFF, 0, 0],
            vec![0, 0, 0, 10, 0x40, 1, 1, 0],
            vec![0, 0, 0xFF, 0xFF],
            vec![0, 1, 0],
            vec![0],
            vec![],
        ] {
            let e = decode_update(&b, &ctx4()).unwrap_err();
            assert_eq!((e.code, e.subcode), (3, 1), "{b:?}");
        }
    }

    #[test]
    fn bad_prefixes_in_nlri_or_withdrawn_are_3_10() {
        // REFERENCE 4.9: prefix length > 32 in either field; truncated prefixes.
        for b in [
            body(&[], mandatory(), &[33, 1, 2, 3, 4, 5]),
            body(&[33, 1, 2, 3, 4, 5], &[], &[]),
            body(&[], mandatory(), &[24, 10, 0]),
            body(&[24], &[], &[]),
        ] {
            let e = decode_update(&b, &ctx4()).unwrap_err();
            assert_eq!((e.code, e.subcode), (3, 10));
        }
    }

    #[test]
    fn missing_mandatory_attributes_are_treat_as_withdraw() {
        let nlri = [24u8, 10, 0, 0];
        // No attributes at all.
        let d = decode_update(&body(&[], &[], &nlri), &ctx4()).unwrap();
        assert!(d.treat_as_withdraw.unwrap().contains("ORIGIN"));
        assert_eq!(
            d.update.nlri.len(),
            1,
            "the prefixes to withdraw are reported"
        );
        // NLRI without NEXT_HOP.
        let d = decode_update(&body(&[], &mandatory()[..13], &nlri), &ctx4()).unwrap();
        assert!(d.treat_as_withdraw.unwrap().contains("NEXT_HOP"));
        // REFERENCE 4.4: MP_REACH without ORIGIN/AS_PATH.
        let reach = [0x80, 14, 11, 0, 1, 1, 4, 10, 0, 0, 1, 0, 8, 10];
        let d = decode_update(&body(&[], &reach, &[]), &ctx4()).unwrap();
        assert!(d.treat_as_withdraw.unwrap().contains("ORIGIN"));
        assert_eq!(d.update.announced().count(), 1);
        // MP_REACH with ORIGIN and AS_PATH needs no NEXT_HOP (RFC 4760 3).
        let with = [&mandatory()[..13], &reach[..]].concat();
        assert_eq!(
            decode_update(&body(&[], &with, &[]), &ctx4())
                .unwrap()
                .treat_as_withdraw,
            None
        );
        // Withdrawals alone need no attributes.
        assert_eq!(
            decode_update(&body(&[8, 10], &[], &[]), &ctx4())
                .unwrap()
                .treat_as_withdraw,
            None
        );
    }

    #[test]
    fn end_of_rib_for_every_family() {
        for family in [
            Family::IPV4_UNICAST,
            Family::IPV6_UNICAST,
            Family::new(Afi::L2VPN, crate::Safi::EVPN),
            Family::new(Afi::IPV4, crate::Safi::FLOWSPEC),
            Family::new(Afi::IPV4, crate::Safi::MPLS_VPN),
        ] {
            let mut out = Vec::new();
            encode_end_of_rib(family, &mut out);
            let Inbound::Update(d) = decode_message(&out[0], &ctx4()).unwrap() else {
                panic!("not an UPDATE");
            };
            assert_eq!(d.update.end_of_rib(), Some(family));
            assert_eq!(d.treat_as_withdraw, None);
        }
        // Not End-of-RIB: a withdrawal, or attributes beside the empty MP_UNREACH.
        let d = decode_update(&body(&[8, 10], &[], &[]), &ctx4()).unwrap();
        assert_eq!(d.update.end_of_rib(), None);
        let d = decode_update(
            &body(&[], &[0x40, 1, 1, 0, 0x80, 15, 3, 0, 2, 1], &[]),
            &ctx4(),
        )
        .unwrap();
        assert_eq!(d.update.end_of_rib(), None);
        // REFERENCE 4.4 malformed End-of-RIB: MP_UNREACH of 2 octets resets.
        let e = decode_update(&body(&[], &[0x80, 15, 2, 0, 2], &[]), &ctx4()).unwrap_err();
        assert_eq!((e.code, e.subcode), (3, 1));
    }

    fn decode_all(msgs: &[Bytes], ctx: &CodecContext) -> Vec<DecodedUpdate> {
        msgs.iter()
            .map(|m| {
                assert!(m.len() <= ctx.max_message_len());
                match decode_message(m, ctx).unwrap() {
                    Inbound::Update(d) => d,
                    other => panic!("{other:?}"),
                }
            })
            .collect()
    }

    #[test]
    fn announcements_are_packed_into_few_messages() {
        let prefixes = v4s(2000);
        let mut out = Vec::new();
        encode_announcements(
            Family::IPV4_UNICAST,
            &attrs(),
            None,
            &prefixes,
            &ctx4(),
            &mut out,
        )
        .unwrap();
        // 4 octets per /24, about 4040 octets of room per message.
        assert_eq!(out.len(), 2);
        let decoded = decode_all(&out, &ctx4());
        assert!(decoded
            .iter()
            .all(|d| d.update.attributes == attrs() && d.treat_as_withdraw.is_none()));
        let back: Vec<Nlri> = decoded.iter().flat_map(|d| d.update.nlri.clone()).collect();
        assert_eq!(back, prefixes);

        // Extended messages: one UPDATE.
        let ext = CodecContext {
            extended_message: true,
            ..ctx4()
        };
        let mut out = Vec::new();
        encode_announcements(
            Family::IPV4_UNICAST,
            &attrs(),
            None,
            &prefixes,
            &ext,
            &mut out,
        )
        .unwrap();
        assert_eq!(out.len(), 1);

        // An explicit IPv4 next hop overrides the attribute.
        let mut out = Vec::new();
        let nh = MpNextHop::V4(Ipv4Addr::new(10, 9, 9, 9));
        encode_announcements(
            Family::IPV4_UNICAST,
            &attrs(),
            Some(&nh),
            &prefixes[..1],
            &ctx4(),
            &mut out,
        )
        .unwrap();
        assert_eq!(
            decode_all(&out, &ctx4())[0].update.attributes.next_hop,
            Some(Ipv4Addr::new(10, 9, 9, 9))
        );
    }

    #[test]
    fn mp_announcements_with_add_path() {
        let prefixes: Vec<Nlri> = v6s(1000)
            .into_iter()
            .enumerate()
            .map(|(i, mut n)| {
                n.path_id = Some(i as u32);
                n
            })
            .collect();
        let ctx = CodecContext {
            add_path_send: vec![Family::IPV6_UNICAST],
            add_path_receive: vec![Family::IPV6_UNICAST],
            ..ctx4()
        };
        let nh = MpNextHop::V6 {
            global: "2001:db8::1".parse().unwrap(),
            link_local: Some("fe80::1".parse().unwrap()),
        };
        let mut out = Vec::new();
        encode_announcements(
            Family::IPV6_UNICAST,
            &attrs(),
            Some(&nh),
            &prefixes,
            &ctx,
            &mut out,
        )
        .unwrap();
        // 11 octets per prefix: 1000 need 3 messages.
        assert_eq!(out.len(), 3);
        let decoded = decode_all(&out, &ctx);
        let mut back = Vec::new();
        for d in &decoded {
            assert_eq!(d.treat_as_withdraw, None);
            assert_eq!(
                d.update.attributes.next_hop, None,
                "MP_REACH carries the next hop"
            );
            let reach = d.update.mp_reach.as_ref().unwrap();
            assert_eq!(reach.next_hop, nh);
            back.extend(d.update.announced().map(|(f, n)| {
                assert_eq!(f, Family::IPV6_UNICAST);
                n
            }));
        }
        assert_eq!(back, prefixes);

        // RFC 8950: IPv4 prefixes with an IPv6 next hop go in MP_REACH.
        let mut out = Vec::new();
        encode_announcements(
            Family::IPV4_UNICAST,
            &attrs(),
            Some(&nh),
            &v4s(3),
            &ctx4(),
            &mut out,
        )
        .unwrap();
        let d = &decode_all(&out, &ctx4())[0];
        assert!(d.update.nlri.is_empty());
        assert_eq!(
            d.update.mp_reach.as_ref().unwrap().family,
            Family::IPV4_UNICAST
        );
        assert_eq!(d.update.announced().count(), 3);

        // Announcements need a next hop.
        let mut no_nh = attrs();
        no_nh.next_hop = None;
        assert!(encode_announcements(
            Family::IPV4_UNICAST,
            &no_nh,
            None,
            &v4s(1),
            &ctx4(),
            &mut Vec::new()
        )
        .is_err());
        assert!(encode_announcements(
            Family::IPV6_UNICAST,
            &attrs(),
            None,
            &v6s(1),
            &ctx4(),
            &mut Vec::new()
        )
        .is_err());
    }

    #[test]
    fn withdrawals_are_packed() {
        for (family, prefixes, expect) in [
            (Family::IPV4_UNICAST, v4s(3000), 3),
            (Family::IPV6_UNICAST, v6s(1000), 2),
        ] {
            let mut out = Vec::new();
            encode_withdrawals(family, &prefixes, &ctx4(), &mut out).unwrap();
            assert_eq!(out.len(), expect, "{family}");
            let back: Vec<Nlri> = decode_all(&out, &ctx4())
                .iter()
                .flat_map(|d| {
                    d.update
                        .withdrawn_routes()
                        .map(|(_, n)| n)
                        .collect::<Vec<_>>()
                })
                .collect();
            assert_eq!(back, prefixes);
        }
        let mut out = Vec::new();
        encode_withdrawals(Family::IPV4_UNICAST, &[], &ctx4(), &mut out).unwrap();
        assert!(out.is_empty());
    }

    #[test]
    fn attributes_too_large_for_a_message_are_an_error() {
        let mut big = attrs();
        big.communities = vec![Community(7); 1100];
        let r = encode_announcements(
            Family::IPV4_UNICAST,
            &big,
            None,
            &v4s(1),
            &ctx4(),
            &mut Vec::new(),
        );
        assert!(r.is_err());
    }

    #[test]
    fn treat_as_withdraw_keeps_every_prefix() {
        // REFERENCE 4.10: OTC with length 3 -> withdraw NLRI and MP prefixes alike.
        let otc = [0xC0, 35, 3, 0, 0, 1];
        let unreach = [0x80, 15, 6, 0, 2, 1, 16, 0x20, 0x01];
        let a = [mandatory(), &otc[..], &unreach[..]].concat();
        let d = decode_update(&body(&[8, 11], &a, &[24, 10, 0, 0]), &ctx4()).unwrap();
        assert!(d.treat_as_withdraw.unwrap().contains("OTC"));
        assert_eq!(
            d.update.attributes.otc, None,
            "the broken attribute is not kept"
        );
        assert_eq!(d.update.announced().count(), 1);
        assert_eq!(d.update.withdrawn_routes().count(), 2);
        let _ = MpUnreach {
            family: Family::IPV6_UNICAST,
            nlri: MpNlri::Unicast(vec![]),
        };
    }
}
