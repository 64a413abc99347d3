//! Encoding path attributes: one header per attribute with the Extended Length bit chosen
//! by size (RFC 4271 4.3), the Partial bit kept only where 4.3 allows it, AS_PATH and
//! AGGREGATOR in 2- or 4-octet form with AS4_* regenerated for a 2-octet session (RFC 6793
//! 4.2.2), and MP_REACH/MP_UNREACH for every family but IPv4 unicast over IPv4 (RFC 4760).

use bytes::{BufMut, BytesMut};

use super::*;

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
