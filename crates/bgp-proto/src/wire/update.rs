//! UPDATE (RFC 4271 4.3, RFC 4760) decoding with RFC 7606 outcomes, encoding, packing of
//! many prefixes into few messages, and End-of-RIB (RFC 4724 2).

use bytes::{BufMut, Bytes, BytesMut};

use super::attributes::{decode_path_attributes, encode_path_attributes, MpReachForm};
use super::error::{EncodeError, NotificationError};
use super::header::{begin_message, finish_message};
use super::nlri::{decode_prefixes, encode_prefix, prefix_wire_len};
use super::reader::Reader;
use super::types::{
    attr_flags as af, attr_type as at, message_type, notification_code as nc, Afi, CodecContext,
    Family, MpNextHop, MpNlri, MpReach, Nlri, PathAttributes, Update, HEADER_LEN,
};

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
        let mut attrs_v4;
        let attrs = match next_hop {
            Some(MpNextHop::V4(nh)) if attrs.next_hop != Some(*nh) => {
                attrs_v4 = attrs.clone();
                attrs_v4.next_hop = Some(*nh);
                &attrs_v4
            }
            _ => attrs,
        };
        let mut encoded = BytesMut::new();
        encode_path_attributes(attrs, None, None, ctx, &mut encoded)?;
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
    let mut mp_attrs;
    let attrs = if attrs.next_hop.is_some() {
        mp_attrs = attrs.clone();
        mp_attrs.next_hop = None;
        &mp_attrs
    } else {
        attrs
    };
    let mut empty = MpReach {
        family,
        next_hop: next_hop.clone(),
        nlri: MpNlri::Unicast(Vec::new()),
    };
    let mut base = BytesMut::new();
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
