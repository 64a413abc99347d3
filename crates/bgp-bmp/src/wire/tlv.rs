//! Type-length-value fields: the Information TLVs of Initiation, Termination and Peer Up
//! (RFC 7854 4.4, 4.5, 4.10; RFC 9069 5.1) and the TLVs of Route Mirroring (RFC 7854 4.7).
//!
//! All share one layout, a 2-octet type, a 2-octet length and the value, so they are one
//! type, [`Tlv`], with constructors and readers for the values the RFCs define. Unknown
//! types are kept as they are.

use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::header::u16_len;
use super::reader::Reader;

/// Information TLV types (RFC 7854 4.4, RFC 9069 5.1).
pub mod information_type {
    /// Free-form UTF-8 text (Initiation, Termination, Peer Up).
    pub const STRING: u16 = 0;
    /// sysDescr (Initiation; MUST be sent).
    pub const SYS_DESCR: u16 = 1;
    /// sysName (Initiation; MUST be sent).
    pub const SYS_NAME: u16 = 2;
    /// VRF or table name (Peer Up, RFC 9069 5.1).
    pub const VRF_TABLE_NAME: u16 = 3;
}

/// Termination TLV types (RFC 7854 4.5).
pub mod termination_type {
    pub const STRING: u16 = 0;
    /// A 2-octet reason code, see [`super::TerminationReason`].
    pub const REASON: u16 = 1;
}

/// Why a router ends a BMP session (RFC 7854 4.5).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct TerminationReason(pub u16);

impl TerminationReason {
    pub const ADMINISTRATIVELY_CLOSED: TerminationReason = TerminationReason(0);
    pub const UNSPECIFIED: TerminationReason = TerminationReason(1);
    /// "The router has exhausted resources available for the BMP session": what the client
    /// sends when its queue overflows before it resynchronises.
    pub const OUT_OF_RESOURCES: TerminationReason = TerminationReason(2);
    pub const REDUNDANT_CONNECTION: TerminationReason = TerminationReason(3);
    pub const PERMANENTLY_ADMINISTRATIVELY_CLOSED: TerminationReason = TerminationReason(4);
}

/// Route Mirroring TLV types (RFC 7854 4.7).
pub mod mirroring_type {
    /// A whole BGP PDU, possibly malformed.
    pub const BGP_MESSAGE: u16 = 0;
    /// A 2-octet code: 0 errored PDU, 1 messages lost.
    pub const INFORMATION: u16 = 1;
}

/// One TLV.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Tlv {
    pub kind: u16,
    pub value: Bytes,
}

impl Tlv {
    pub fn new(kind: u16, value: impl Into<Bytes>) -> Tlv {
        Tlv {
            kind,
            value: value.into(),
        }
    }

    /// A text TLV of `kind` (String, sysDescr, sysName, VRF/table name).
    pub fn text(kind: u16, text: &str) -> Tlv {
        Tlv::new(kind, Bytes::copy_from_slice(text.as_bytes()))
    }

    /// A Termination Reason TLV.
    pub fn termination_reason(reason: TerminationReason) -> Tlv {
        Tlv::new(
            termination_type::REASON,
            Bytes::copy_from_slice(&reason.0.to_be_bytes()),
        )
    }

    /// The value as text (lossy UTF-8: RFC 7854 4.4 asks for UTF-8, routers do not always
    /// comply).
    pub fn as_text(&self) -> String {
        String::from_utf8_lossy(&self.value).into_owned()
    }

    /// The value as a 2-octet code (Termination Reason, Route Mirroring Information), if it
    /// is exactly two octets.
    pub fn as_u16(&self) -> Option<u16> {
        <[u8; 2]>::try_from(&self.value[..])
            .ok()
            .map(u16::from_be_bytes)
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        let len = u16_len("TLV value", self.value.len())?;
        out.put_u16(self.kind);
        out.put_u16(len);
        out.put_slice(&self.value);
        Ok(())
    }
}

/// Read TLVs until the end of the message.
pub(crate) fn decode_tlvs(r: &mut Reader) -> Result<Vec<Tlv>, DecodeError> {
    let mut out = Vec::new();
    while !r.is_empty() {
        let kind = r.u16("TLV type")?;
        let len = r.u16("TLV length")?;
        let value = r.take(usize::from(len), "TLV value")?;
        out.push(Tlv { kind, value });
    }
    Ok(out)
}

pub(crate) fn encode_tlvs(tlvs: &[Tlv], out: &mut BytesMut) -> Result<(), EncodeError> {
    tlvs.iter().try_for_each(|t| t.encode(out))
}

/// The first TLV of `kind`.
pub(crate) fn find(tlvs: &[Tlv], kind: u16) -> Option<&Tlv> {
    tlvs.iter().find(|t| t.kind == kind)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlvs_round_trip_and_overruns_are_truncations() {
        let tlvs = vec![
            Tlv::text(information_type::SYS_NAME, "node-1"),
            Tlv::termination_reason(TerminationReason::OUT_OF_RESOURCES),
            Tlv::new(77, Bytes::new()),
        ];
        let mut out = BytesMut::new();
        encode_tlvs(&tlvs, &mut out).unwrap();
        assert_eq!(
            &out[..10],
            &[0, 2, 0, 6, b'n', b'o', b'd', b'e', b'-', b'1']
        );
        let back = decode_tlvs(&mut Reader::new(out.clone().freeze())).unwrap();
        assert_eq!(back, tlvs);
        assert_eq!(back[0].as_text(), "node-1");
        assert_eq!(back[1].as_u16(), Some(2));
        assert_eq!(back[0].as_u16(), None);
        assert_eq!(find(&back, 77), Some(&tlvs[2]));
        let cut = out.split_to(out.len() - 5).freeze();
        assert!(matches!(
            decode_tlvs(&mut Reader::new(cut)),
            Err(DecodeError::Truncated { .. })
        ));
        let big = Tlv::new(0, vec![0u8; 65536]);
        assert!(big.encode(&mut BytesMut::new()).is_err());
    }
}
