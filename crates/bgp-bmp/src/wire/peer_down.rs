//! Peer Down Notification (RFC 7854 4.9; reason 6 from RFC 9069 5.5): a monitored
//! session left Established, and why.

use bgp_proto::wire::{decode_message, Inbound};
use bgp_proto::{message_type as bgp_type, CodecContext, Notification};
use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::pdu::{check_pdu, read_pdu};
use super::peer::PeerHeader;
use super::reader::Reader;
use super::tlv::{decode_tlvs, encode_tlvs, Tlv};

/// Peer Down reason codes.
pub mod peer_down_reason {
    /// The local system closed the session with this NOTIFICATION.
    pub const LOCAL_NOTIFICATION: u8 = 1;
    /// The local system closed the session without a NOTIFICATION; FSM event code follows.
    pub const LOCAL_NO_NOTIFICATION: u8 = 2;
    /// The peer closed the session with this NOTIFICATION.
    pub const REMOTE_NOTIFICATION: u8 = 3;
    /// The peer closed the session without a NOTIFICATION.
    pub const REMOTE_NO_DATA: u8 = 4;
    /// The peer was de-configured; no more messages about it follow.
    pub const PEER_DECONFIGURED: u8 = 5;
    /// The local system closed a Loc-RIB instance; Information TLVs follow (RFC 9069).
    pub const LOCAL_TLV: u8 = 6;
}

/// Why the session went down, with the data each reason carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeerDownReason {
    /// A whole BGP NOTIFICATION message.
    LocalNotification(Bytes),
    /// The FSM event that ended the session (RFC 4271 8.1), 0 when none applies.
    LocalNoNotification(u16),
    /// A whole BGP NOTIFICATION message.
    RemoteNotification(Bytes),
    RemoteNoData,
    PeerDeconfigured,
    LocalTlv(Vec<Tlv>),
    /// A reason code this codec does not know, with whatever follows it.
    Unknown {
        code: u8,
        data: Bytes,
    },
}

impl PeerDownReason {
    pub fn code(&self) -> u8 {
        use peer_down_reason as r;
        match self {
            PeerDownReason::LocalNotification(_) => r::LOCAL_NOTIFICATION,
            PeerDownReason::LocalNoNotification(_) => r::LOCAL_NO_NOTIFICATION,
            PeerDownReason::RemoteNotification(_) => r::REMOTE_NOTIFICATION,
            PeerDownReason::RemoteNoData => r::REMOTE_NO_DATA,
            PeerDownReason::PeerDeconfigured => r::PEER_DECONFIGURED,
            PeerDownReason::LocalTlv(_) => r::LOCAL_TLV,
            PeerDownReason::Unknown { code, .. } => *code,
        }
    }

    /// The NOTIFICATION of reasons 1 and 3, decoded.
    pub fn notification(&self) -> Option<Notification> {
        match self {
            PeerDownReason::LocalNotification(pdu) | PeerDownReason::RemoteNotification(pdu) => {
                match decode_message(pdu, &CodecContext::default()) {
                    Ok(Inbound::Notification(n)) => Some(n),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// A Peer Down Notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerDown {
    pub peer: PeerHeader,
    pub reason: PeerDownReason,
}

impl PeerDown {
    pub(crate) fn decode(r: &mut Reader) -> Result<PeerDown, DecodeError> {
        use peer_down_reason as code;
        let peer = PeerHeader::decode(r)?;
        let reason = match r.u8("peer down reason")? {
            code::LOCAL_NOTIFICATION => {
                PeerDownReason::LocalNotification(read_pdu(r, bgp_type::NOTIFICATION)?)
            }
            code::LOCAL_NO_NOTIFICATION => PeerDownReason::LocalNoNotification(r.u16("FSM event")?),
            code::REMOTE_NOTIFICATION => {
                PeerDownReason::RemoteNotification(read_pdu(r, bgp_type::NOTIFICATION)?)
            }
            code::REMOTE_NO_DATA => PeerDownReason::RemoteNoData,
            code::PEER_DECONFIGURED => PeerDownReason::PeerDeconfigured,
            code::LOCAL_TLV => PeerDownReason::LocalTlv(decode_tlvs(r)?),
            code => PeerDownReason::Unknown {
                code,
                data: r.rest(),
            },
        };
        if !r.is_empty() {
            return Err(DecodeError::Malformed(format!(
                "{} octets after peer down reason {}",
                r.remaining(),
                reason.code()
            )));
        }
        Ok(PeerDown { peer, reason })
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        use peer_down_reason as code;
        if let PeerDownReason::Unknown { code: c, .. } = &self.reason {
            if (code::LOCAL_NOTIFICATION..=code::LOCAL_TLV).contains(c) {
                return Err(EncodeError::Invalid(format!(
                    "peer down reason {c} has its own variant"
                )));
            }
        }
        self.peer.encode(out)?;
        out.put_u8(self.reason.code());
        match &self.reason {
            PeerDownReason::LocalNotification(pdu) | PeerDownReason::RemoteNotification(pdu) => {
                check_pdu(pdu, bgp_type::NOTIFICATION)?;
                out.put_slice(pdu);
            }
            PeerDownReason::LocalNoNotification(event) => out.put_u16(*event),
            PeerDownReason::RemoteNoData | PeerDownReason::PeerDeconfigured => {}
            PeerDownReason::LocalTlv(tlvs) => encode_tlvs(tlvs, out)?,
            PeerDownReason::Unknown { data, .. } => out.put_slice(data),
        }
        Ok(())
    }
}
