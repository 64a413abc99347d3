//! Whole BMP messages: [`decode_message`] for a frame delimited by
//! [`frame_len`](super::frame_len), [`encode_message`] for any [`BmpMessage`].
//!
//! The messages without a file of their own are here: Route Monitoring (RFC 7854 4.6),
//! Initiation (4.3), Termination (4.5) and Route Mirroring (4.7).

use bgp_proto::wire::{decode_message as decode_bgp, DecodedUpdate, Inbound, NotificationError};
use bgp_proto::{message_type as bgp_type, CodecContext};
use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::header::{begin_message, finish_message, message_type, COMMON_HEADER_LEN};
use super::pdu::{check_pdu, read_pdu};
use super::peer::PeerHeader;
use super::peer_down::PeerDown;
use super::peer_up::PeerUp;
use super::reader::Reader;
use super::stats::StatisticsReport;
use super::tlv::TerminationReason;
use super::tlv::{self, decode_tlvs, encode_tlvs, information_type, termination_type, Tlv};

/// Route Monitoring: one BGP UPDATE about a peer's routes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMonitoring {
    pub peer: PeerHeader,
    /// A whole BGP UPDATE message, encoded as the per-peer header's flags and the Peer Up's
    /// OPENs say ([`PeerUp::update_context`]).
    pub update: Bytes,
}

impl RouteMonitoring {
    /// The UPDATE, decoded under `ctx` (usually from [`PeerUp::update_context`]).
    pub fn decode_update(&self, ctx: &CodecContext) -> Result<DecodedUpdate, NotificationError> {
        match decode_bgp(&self.update, ctx)? {
            Inbound::Update(u) => Ok(u),
            // The codec accepted another type only if the frame was changed after decoding.
            other => Err(NotificationError::new(
                bgp_proto::notification_code::MESSAGE_HEADER,
                bgp_proto::notification_code::BAD_MESSAGE_TYPE,
                format!(
                    "Route Monitoring carries {:?}, not an UPDATE",
                    other.into_message()
                ),
            )),
        }
    }
}

/// Initiation: the first message of a session, describing the router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Initiation {
    /// sysDescr and sysName (both MUST be sent, RFC 7854 4.3) and any String TLVs.
    pub information: Vec<Tlv>,
}

impl Initiation {
    /// An Initiation with the two mandatory TLVs.
    pub fn new(sys_name: &str, sys_descr: &str) -> Initiation {
        Initiation {
            information: vec![
                Tlv::text(information_type::SYS_DESCR, sys_descr),
                Tlv::text(information_type::SYS_NAME, sys_name),
            ],
        }
    }

    pub fn sys_name(&self) -> Option<String> {
        tlv::find(&self.information, information_type::SYS_NAME).map(Tlv::as_text)
    }

    pub fn sys_descr(&self) -> Option<String> {
        tlv::find(&self.information, information_type::SYS_DESCR).map(Tlv::as_text)
    }
}

/// Termination: the last message of a session, with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Termination {
    pub information: Vec<Tlv>,
}

impl Termination {
    /// A Termination with a Reason TLV and, if not empty, a String TLV.
    pub fn new(reason: TerminationReason, text: &str) -> Termination {
        let mut information = vec![Tlv::termination_reason(reason)];
        if !text.is_empty() {
            information.push(Tlv::text(termination_type::STRING, text));
        }
        Termination { information }
    }

    pub fn reason(&self) -> Option<TerminationReason> {
        tlv::find(&self.information, termination_type::REASON)
            .and_then(Tlv::as_u16)
            .map(TerminationReason)
    }
}

/// Route Mirroring: BGP messages as received, possibly malformed, and information codes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteMirroring {
    pub peer: PeerHeader,
    /// BGP Message TLVs (the PDU, not checked) and Information TLVs (a 2-octet code).
    pub tlvs: Vec<Tlv>,
}

impl RouteMirroring {
    /// The mirrored BGP PDUs.
    pub fn messages(&self) -> impl Iterator<Item = &Bytes> {
        self.tlvs
            .iter()
            .filter(|t| t.kind == tlv::mirroring_type::BGP_MESSAGE)
            .map(|t| &t.value)
    }

    /// The information codes (0: errored PDU, 1: messages lost).
    pub fn information(&self) -> impl Iterator<Item = u16> + '_ {
        self.tlvs
            .iter()
            .filter(|t| t.kind == tlv::mirroring_type::INFORMATION)
            .filter_map(Tlv::as_u16)
    }
}

/// Any BMP message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BmpMessage {
    RouteMonitoring(RouteMonitoring),
    StatisticsReport(StatisticsReport),
    PeerDown(PeerDown),
    PeerUp(PeerUp),
    Initiation(Initiation),
    Termination(Termination),
    RouteMirroring(RouteMirroring),
}

impl BmpMessage {
    /// The message type code (RFC 7854 4.1).
    pub fn message_type(&self) -> u8 {
        match self {
            BmpMessage::RouteMonitoring(_) => message_type::ROUTE_MONITORING,
            BmpMessage::StatisticsReport(_) => message_type::STATISTICS_REPORT,
            BmpMessage::PeerDown(_) => message_type::PEER_DOWN,
            BmpMessage::PeerUp(_) => message_type::PEER_UP,
            BmpMessage::Initiation(_) => message_type::INITIATION,
            BmpMessage::Termination(_) => message_type::TERMINATION,
            BmpMessage::RouteMirroring(_) => message_type::ROUTE_MIRRORING,
        }
    }

    /// The per-peer header, for the messages about one peer.
    pub fn peer(&self) -> Option<&PeerHeader> {
        match self {
            BmpMessage::RouteMonitoring(m) => Some(&m.peer),
            BmpMessage::StatisticsReport(m) => Some(&m.peer),
            BmpMessage::PeerDown(m) => Some(&m.peer),
            BmpMessage::PeerUp(m) => Some(&m.peer),
            BmpMessage::RouteMirroring(m) => Some(&m.peer),
            BmpMessage::Initiation(_) | BmpMessage::Termination(_) => None,
        }
    }
}

/// Decode one whole message (common header included) whose length field equals
/// `frame.len()`. Every field must fit; nothing may follow the last one.
pub fn decode_message(frame: Bytes) -> Result<BmpMessage, DecodeError> {
    let frame_len = frame.len();
    let mut r = Reader::new(frame);
    let version = r.u8("BMP version")?;
    if version != super::VERSION {
        return Err(DecodeError::Version(version));
    }
    let len = r.u32("BMP message length")?;
    if len as usize != frame_len || frame_len < COMMON_HEADER_LEN {
        return Err(DecodeError::Length {
            len,
            min: COMMON_HEADER_LEN as u32,
            max: u32::try_from(frame_len).unwrap_or(u32::MAX),
        });
    }
    let msg_type = r.u8("BMP message type")?;
    let msg = match msg_type {
        message_type::ROUTE_MONITORING => {
            let peer = PeerHeader::decode(&mut r)?;
            let update = read_pdu(&mut r, bgp_type::UPDATE)?;
            BmpMessage::RouteMonitoring(RouteMonitoring { peer, update })
        }
        message_type::STATISTICS_REPORT => {
            BmpMessage::StatisticsReport(StatisticsReport::decode(&mut r)?)
        }
        message_type::PEER_DOWN => BmpMessage::PeerDown(PeerDown::decode(&mut r)?),
        message_type::PEER_UP => BmpMessage::PeerUp(PeerUp::decode(&mut r)?),
        message_type::INITIATION => BmpMessage::Initiation(Initiation {
            information: decode_tlvs(&mut r)?,
        }),
        message_type::TERMINATION => BmpMessage::Termination(Termination {
            information: decode_tlvs(&mut r)?,
        }),
        message_type::ROUTE_MIRRORING => {
            let peer = PeerHeader::decode(&mut r)?;
            let tlvs = decode_tlvs(&mut r)?;
            BmpMessage::RouteMirroring(RouteMirroring { peer, tlvs })
        }
        t => return Err(DecodeError::UnknownType(t)),
    };
    if !r.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "{} octets after a BMP message of type {msg_type}",
            r.remaining()
        )));
    }
    Ok(msg)
}

/// Append `msg`, framed, to `out`. On error `out` is left as it was.
pub fn encode_message(msg: &BmpMessage, out: &mut BytesMut) -> Result<(), EncodeError> {
    let mark = out.len();
    let result = encode_body(msg, out);
    if result.is_err() {
        out.truncate(mark);
    }
    result
}

fn encode_body(msg: &BmpMessage, out: &mut BytesMut) -> Result<(), EncodeError> {
    let start = begin_message(out, msg.message_type());
    match msg {
        BmpMessage::RouteMonitoring(m) => {
            check_pdu(&m.update, bgp_type::UPDATE)?;
            m.peer.encode(out)?;
            out.put_slice(&m.update);
        }
        BmpMessage::StatisticsReport(m) => m.encode(out)?,
        BmpMessage::PeerDown(m) => m.encode(out)?,
        BmpMessage::PeerUp(m) => m.encode(out)?,
        BmpMessage::Initiation(m) => encode_tlvs(&m.information, out)?,
        BmpMessage::Termination(m) => encode_tlvs(&m.information, out)?,
        BmpMessage::RouteMirroring(m) => {
            m.peer.encode(out)?;
            encode_tlvs(&m.tlvs, out)?;
        }
    }
    finish_message(out, start)
}
