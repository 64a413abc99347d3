//! Decoding the BGP data inside MRT records with the shared codec (`bgp_proto::wire`).
//!
//! MRT fixes the codec context per record type: TABLE_DUMP and the 2-octet BGP4MP
//! subtypes carry 2-octet AS numbers (the codec then merges AS4_PATH and AS4_AGGREGATOR,
//! RFC 6793 4.2.3); TABLE_DUMP_V2 and the `*_AS4` subtypes carry 4-octet ones (RFC 6396
//! 4.3.4, 4.4.3). Messages may be extended messages (RFC 8654) since MRT records them as
//! received, and the `*_ADDPATH` subtypes carry path identifiers in every IPv4/IPv6 NLRI
//! (RFC 8050 section 3).

use std::borrow::Cow;
use std::net::Ipv4Addr;

use bgp_proto::wire::{
    decode_message, decode_path_attributes, DecodedAttributes, Inbound, MpReachForm,
    NotificationError,
};
use bgp_proto::{
    attr_flags, attr_type, Afi, Aggregator, CodecContext, Family, MpNlri, MpReach, Nlri,
    PathAttributes, Safi, Update, AS_TRANS,
};

use crate::cursor::Cursor;
use crate::record::{read_nlri_prefix, Bgp4mpMessage, RibEntry, TableDump};

/// Iterate over the (type code, value) of each attribute in a block, stopping quietly at
/// the first one that does not fit (RFC 4271 4.3 framing: flags, type, 1- or 2-octet
/// length, value). This only frames; values are interpreted by the codec.
fn attribute_values(block: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut rest = block;
    std::iter::from_fn(move || {
        let [flags, type_code, tail @ ..] = rest else {
            return None;
        };
        let (len, tail) = if flags & attr_flags::EXTENDED_LENGTH != 0 {
            match tail {
                [hi, lo, t @ ..] => (usize::from(u16::from_be_bytes([*hi, *lo])), t),
                _ => return None,
            }
        } else {
            match tail {
                [len, t @ ..] => (usize::from(*len), t),
                _ => return None,
            }
        };
        let value = tail.get(..len)?;
        rest = tail.get(len..).unwrap_or(&[]);
        Some((*type_code, value))
    })
}

/// How the MP_REACH_NLRI in a RIB attribute block is encoded.
///
/// RFC 6396 4.3.4 says RIB entries carry only the next hop length and next hop, but some
/// writers (and old TABLE_DUMP files) put the full attribute there. Like bgpdump we look at
/// the first value octet: the standard form starts with the AFI, whose high octet is 0 for
/// every AFI used with MRT, while the abbreviated form starts with a non-zero next hop
/// length.
pub fn mp_reach_form(block: &[u8]) -> MpReachForm {
    match attribute_values(block).find(|(t, _)| *t == attr_type::MP_REACH_NLRI) {
        Some((_, [0, ..])) => MpReachForm::Standard,
        _ => MpReachForm::MrtAbbreviated,
    }
}

/// The AGGREGATOR exactly as written in `block`, with RFC 6793 4.2.3's AS4_AGGREGATOR
/// substitution for 2-octet blocks, even when the codec discarded it as malformed under
/// RFC 7606/7607 (AS 0, say). A viewer such as bgpdump shows what the route carried.
pub fn raw_aggregator(block: &[u8], four_octet_as: bool) -> Option<Aggregator> {
    let read = |v: &[u8], as4: bool| -> Option<Aggregator> {
        let (asn, addr) = if as4 {
            (
                u32::from_be_bytes(v.get(..4)?.try_into().ok()?),
                v.get(4..8)?,
            )
        } else {
            (
                u32::from(u16::from_be_bytes(v.get(..2)?.try_into().ok()?)),
                v.get(2..6)?,
            )
        };
        let addr: [u8; 4] = addr.try_into().ok()?;
        Some(Aggregator {
            asn,
            address: Ipv4Addr::from(addr),
        })
    };
    let aggregator = attribute_values(block)
        .find(|(t, _)| *t == attr_type::AGGREGATOR)
        .and_then(|(_, v)| read(v, four_octet_as))?;
    if !four_octet_as && aggregator.asn == u32::from(AS_TRANS) {
        let as4 = attribute_values(block)
            .find(|(t, _)| *t == attr_type::AS4_AGGREGATOR)
            .and_then(|(_, v)| read(v, true));
        return as4.or(Some(aggregator));
    }
    Some(aggregator)
}

/// Whether `block` holds an attribute of this type at all (well-formed or not).
pub fn has_attribute(block: &[u8], type_code: u8) -> bool {
    attribute_values(block).any(|(t, _)| t == type_code)
}

/// The attribute and NLRI fields of an UPDATE (RFC 4271 4.3), found by the length fields.
pub(crate) struct UpdateSections<'a> {
    pub(crate) attributes: &'a [u8],
    pub(crate) nlri: &'a [u8],
    /// Where the message ends: its length field, or the recorded bytes if fewer.
    pub(crate) end: usize,
}

/// Split a whole UPDATE message (header included) into its sections, if they fit.
pub(crate) fn update_sections(message: &[u8]) -> Option<UpdateSections<'_>> {
    let declared = usize::from(u16::from_be_bytes(message.get(16..18)?.try_into().ok()?));
    let end = declared.min(message.len());
    let body = message.get(19..end)?;
    let wlen = usize::from(u16::from_be_bytes(body.get(..2)?.try_into().ok()?));
    let rest = body.get(2 + wlen..)?;
    let alen = usize::from(u16::from_be_bytes(rest.get(..2)?.try_into().ok()?));
    let attributes = rest.get(2..2 + alen)?;
    let nlri = rest.get(2 + alen..)?;
    Some(UpdateSections {
        attributes,
        nlri,
        end,
    })
}

/// Decoded attributes of a TABLE_DUMP or RIB entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RibAttributes {
    pub attributes: PathAttributes,
    /// MP_REACH_NLRI; in the abbreviated form only its next hop is meaningful.
    pub mp_reach: Option<MpReach>,
    /// Whether the MP_REACH_NLRI was in the abbreviated RIB form.
    pub abbreviated: bool,
}

fn rib_attributes(block: &[u8], four_octet_as: bool) -> Result<RibAttributes, NotificationError> {
    let ctx = CodecContext {
        four_octet_as,
        ..CodecContext::default()
    };
    let form = mp_reach_form(block);
    let DecodedAttributes {
        attributes,
        mp_reach,
        ..
    } = decode_path_attributes(block, &ctx, form)?;
    Ok(RibAttributes {
        attributes,
        mp_reach,
        abbreviated: form == MpReachForm::MrtAbbreviated,
    })
}

/// Decode a TABLE_DUMP record's attributes (2-octet AS unless the bgpdump AS4 subtypes).
pub fn table_dump_attributes(td: &TableDump) -> Result<RibAttributes, NotificationError> {
    rib_attributes(&td.attributes, td.four_octet_as)
}

/// Decode a TABLE_DUMP_V2 RIB entry's attributes (always 4-octet AS, RFC 6396 4.3.4).
pub fn rib_entry_attributes(entry: &RibEntry) -> Result<RibAttributes, NotificationError> {
    rib_attributes(&entry.attributes, true)
}

impl TableDump {
    /// The route's path attributes, decoded.
    pub fn decode_attributes(&self) -> Result<RibAttributes, NotificationError> {
        table_dump_attributes(self)
    }
}

impl RibEntry {
    /// The route's path attributes, decoded.
    pub fn decode_attributes(&self) -> Result<RibAttributes, NotificationError> {
        rib_entry_attributes(self)
    }
}

/// Families whose NLRI carry path ids in `*_ADDPATH` records.
const ADD_PATH_FAMILIES: [Family; 6] = [
    Family::IPV4_UNICAST,
    Family::IPV6_UNICAST,
    Family::new(Afi::IPV4, Safi::MULTICAST),
    Family::new(Afi::IPV6, Safi::MULTICAST),
    Family::new(Afi::IPV4, Safi(3)),
    Family::new(Afi::IPV6, Safi(3)),
];

impl Bgp4mpMessage {
    /// The codec context this record implies.
    pub fn codec_context(&self) -> CodecContext {
        let add_path = if self.add_path {
            ADD_PATH_FAMILIES.to_vec()
        } else {
            Vec::new()
        };
        CodecContext {
            four_octet_as: self.four_octet_as,
            extended_message: true,
            add_path_receive: add_path.clone(),
            add_path_send: add_path,
            external: false,
        }
    }

    /// The BGP message as delimited by its own length field (RFC 4271 4.1): octets the
    /// record holds after it are not part of it (bgpdump ignores them too). A length
    /// field that is too small or too large is left for the codec to report.
    pub fn frame(&self) -> &[u8] {
        let declared = self
            .message
            .get(16..18)
            .map(|f| usize::from(u16::from_be_bytes([f[0], f[1]])))
            .unwrap_or(0);
        if declared >= bgp_proto::HEADER_LEN && declared < self.message.len() {
            self.message.get(..declared).unwrap_or(&self.message)
        } else {
            &self.message
        }
    }

    /// Decode the recorded BGP message.
    pub fn decode(&self) -> Result<Inbound, NotificationError> {
        decode_message(self.frame(), &self.codec_context())
    }
}

/// Decode a recorded message that must be an UPDATE.
///
/// bgpdump tolerance: when the last prefix of the NLRI field is cut short (RFC 7606 5.3
/// would reset the session), the prefixes before it are still shown; the message is
/// decoded again without the partial prefix.
pub(crate) fn message_update(msg: &Bgp4mpMessage) -> Result<Update, String> {
    let first = match msg.decode() {
        Ok(Inbound::Update(decoded)) => return Ok(decoded.update),
        Ok(_) => return Err("not an UPDATE".to_string()),
        Err(e) => e,
    };
    let ctx = msg.codec_context();
    let trimmed = update_sections(&msg.message).and_then(|sections| {
        let whole = whole_prefixes_len(sections.nlri, Afi::IPV4, msg.add_path);
        (whole < sections.nlri.len()).then(|| {
            let len = sections.end - (sections.nlri.len() - whole);
            let mut m = msg.message.get(..len).unwrap_or_default().to_vec();
            if let Some(field) = m.get_mut(16..18) {
                // `len` <= the 16-bit length field it came from.
                field.copy_from_slice(&(len as u16).to_be_bytes());
            }
            m
        })
    });
    match trimmed.map(|m| decode_message(&m, &ctx)) {
        Some(Ok(Inbound::Update(decoded))) => Ok(decoded.update),
        _ => Err(first.to_string()),
    }
}

/// How many leading octets of `nlri` hold whole prefixes.
fn whole_prefixes_len(nlri: &[u8], afi: Afi, add_path: bool) -> usize {
    let mut c = Cursor::new(bytes::Bytes::copy_from_slice(nlri));
    let mut good = 0;
    loop {
        if add_path && c.u32("path identifier").is_err() {
            return good;
        }
        if read_nlri_prefix(&mut c, afi).is_err() {
            return good;
        }
        good = nlri.len() - c.remaining();
    }
}

/// The prefixes of MP_REACH/MP_UNREACH NLRI of an IPv4/IPv6 family. The codec decodes
/// unicast; multicast (SAFI 2, and the historic SAFI 3) uses the same prefix encoding
/// (RFC 4760 5) but reaches us as opaque bytes, so it is read here.
pub(crate) fn mp_prefixes(
    nlri: &MpNlri,
    family: Family,
    add_path: bool,
) -> Result<Cow<'_, [Nlri]>, String> {
    match nlri {
        MpNlri::Unicast(list) => Ok(Cow::Borrowed(list)),
        MpNlri::Opaque(bytes) => {
            let mut c = Cursor::new(bytes.clone());
            let mut out = Vec::new();
            while !c.is_empty() {
                let path_id = if add_path {
                    Some(c.u32("path identifier")?)
                } else {
                    None
                };
                let prefix = read_nlri_prefix(&mut c, family.afi)?;
                out.push(Nlri { path_id, prefix });
            }
            Ok(Cow::Owned(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mp_reach_form_is_detected_from_the_first_value_octet() {
        // ORIGIN IGP, then MP_REACH_NLRI abbreviated: next hop length 16, next hop.
        let mut abbreviated = vec![0x40, 1, 1, 0, 0x80, 14, 17, 16];
        abbreviated.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8]);
        abbreviated.extend_from_slice(&[0; 12]);
        assert_eq!(mp_reach_form(&abbreviated), MpReachForm::MrtAbbreviated);
        // Extended length, full form: AFI 2, SAFI 1, ...
        let full = [0x90, 14, 0, 4, 0, 2, 1, 0];
        assert_eq!(mp_reach_form(&full), MpReachForm::Standard);
        // No MP_REACH_NLRI, or a block cut short: the RFC 6396 default.
        assert_eq!(mp_reach_form(&[0x40, 1, 1, 0]), MpReachForm::MrtAbbreviated);
        assert_eq!(mp_reach_form(&[0x90, 14, 0]), MpReachForm::MrtAbbreviated);
        assert_eq!(
            mp_reach_form(&[0x80, 14, 200, 0]),
            MpReachForm::MrtAbbreviated
        );
    }

    fn keepalive_record(extra: &[u8]) -> Bgp4mpMessage {
        let mut message = vec![0xff; 16];
        message.extend_from_slice(&[0, 19, 4]);
        message.extend_from_slice(extra);
        Bgp4mpMessage {
            peer_as: 1,
            local_as: 2,
            interface_index: 0,
            afi: Afi::IPV4,
            peer_ip: Ipv4Addr::new(192, 0, 2, 1).into(),
            local_ip: Ipv4Addr::new(192, 0, 2, 2).into(),
            four_octet_as: false,
            local: false,
            add_path: false,
            message: bytes::Bytes::from(message),
        }
    }

    #[test]
    fn octets_after_the_message_length_are_not_part_of_the_message() {
        let msg = keepalive_record(&[0xde, 0xad]);
        assert_eq!(msg.frame().len(), 19);
        assert_eq!(msg.decode(), Ok(Inbound::Keepalive));
        assert_eq!(keepalive_record(&[]).decode(), Ok(Inbound::Keepalive));
        // A length field beyond the record is the codec's to reject.
        let mut short = keepalive_record(&[]);
        let mut m = short.message.to_vec();
        m[17] = 40;
        short.message = bytes::Bytes::from(m);
        assert_eq!(short.frame().len(), 19);
        assert!(short.decode().is_err());
    }

    #[test]
    fn multicast_nlri_are_read_with_and_without_path_ids() {
        let fam = Family::new(Afi::IPV4, Safi::MULTICAST);
        let plain = MpNlri::Opaque(bytes::Bytes::from_static(&[24, 10, 1, 2, 0]));
        let list = mp_prefixes(&plain, fam, false).unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[0].prefix.to_string(), "10.1.2.0/24");
        assert_eq!(list[1].prefix.to_string(), "0.0.0.0/0");
        let with_id = MpNlri::Opaque(bytes::Bytes::from_static(&[0, 0, 0, 7, 8, 10]));
        let list = mp_prefixes(&with_id, fam, true).unwrap();
        assert_eq!(list[0].path_id, Some(7));
        assert_eq!(list[0].prefix.to_string(), "10.0.0.0/8");
        let bad = MpNlri::Opaque(bytes::Bytes::from_static(&[33, 1, 2, 3, 4, 5]));
        assert!(mp_prefixes(&bad, fam, false).is_err());
        let short = MpNlri::Opaque(bytes::Bytes::from_static(&[24, 10]));
        assert!(mp_prefixes(&short, fam, false).is_err());
    }
}
