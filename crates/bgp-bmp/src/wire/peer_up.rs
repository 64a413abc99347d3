//! Peer Up Notification (RFC 7854 4.10): a monitored session reached Established.
//!
//! It carries both OPENs, the one the router sent and the one it received: a station
//! learns from them what the session negotiated, notably the ADD-PATH families (RFC 7911)
//! whose UPDATEs carry path identifiers, which no flag of the per-peer header says.
//! [`PeerUp::update_context`] works that out for the BGP codec.

use std::net::IpAddr;

use bgp_proto::wire::{decode_message, Inbound, NotificationError};
use bgp_proto::{message_type as bgp_type, AddPathMode, Capability, CodecContext, Family, Open};
use bytes::{BufMut, Bytes, BytesMut};

use super::error::{DecodeError, EncodeError};
use super::pdu::{check_pdu, read_pdu};
use super::peer::{put_address, read_address, PeerFlags, PeerHeader};
use super::reader::Reader;
use super::tlv::{decode_tlvs, encode_tlvs, Tlv};

/// A Peer Up Notification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerUp {
    pub peer: PeerHeader,
    /// The router's address on the session; same family as the peer address.
    pub local_address: IpAddr,
    pub local_port: u16,
    pub remote_port: u16,
    /// The OPEN the router sent, a whole BGP message.
    pub sent_open: Bytes,
    /// The OPEN the router received.
    pub received_open: Bytes,
    /// Information TLVs (String; VRF/table name, RFC 9069).
    pub information: Vec<Tlv>,
}

fn decode_open(pdu: &[u8]) -> Result<Open, NotificationError> {
    let ctx = CodecContext {
        extended_message: true,
        ..CodecContext::default()
    };
    match decode_message(pdu, &ctx)? {
        Inbound::Open(open) => Ok(open),
        other => Err(NotificationError::new(
            bgp_proto::notification_code::MESSAGE_HEADER,
            bgp_proto::notification_code::BAD_MESSAGE_TYPE,
            format!("expected an OPEN, got {:?}", other.into_message()),
        )),
    }
}

/// The ADD-PATH modes an OPEN announces, per family.
fn add_path(open: &Open) -> Vec<(Family, AddPathMode)> {
    open.capabilities
        .iter()
        .filter_map(|c| match c {
            Capability::AddPath(v) => Some(v.iter().copied()),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Families for which `sender` sends path ids that `receiver` accepts (RFC 7911 4).
fn path_id_families(sender: &Open, receiver: &Open) -> Vec<Family> {
    let accepts = add_path(receiver);
    add_path(sender)
        .into_iter()
        .filter(|(f, m)| m.can_send() && accepts.iter().any(|(g, n)| g == f && n.can_receive()))
        .map(|(f, _)| f)
        .collect()
}

impl PeerUp {
    /// The OPEN the router sent, decoded.
    pub fn decode_sent_open(&self) -> Result<Open, NotificationError> {
        decode_open(&self.sent_open)
    }

    /// The OPEN the router received, decoded.
    pub fn decode_received_open(&self) -> Result<Open, NotificationError> {
        decode_open(&self.received_open)
    }

    /// How to decode the UPDATEs of Route Monitoring messages about this peer whose
    /// per-peer header has `flags`:
    /// - 4-octet AS numbers unless the A flag is set (RFC 7854 4.2);
    /// - path identifiers for the families where the session negotiated ADD-PATH in the
    ///   direction the routes travelled: from the peer to the router for the Adj-RIB-In,
    ///   from the router to the peer for the Adj-RIB-Out (O flag, RFC 8671);
    /// - messages up to 65535 octets (RFC 8654), which BMP may carry whatever the session;
    /// - no attribute discard for external peers: the station sees what was received.
    pub fn update_context(&self, flags: PeerFlags) -> Result<CodecContext, NotificationError> {
        let sent = self.decode_sent_open()?;
        let received = self.decode_received_open()?;
        let families = if flags.adj_rib_out() {
            path_id_families(&sent, &received)
        } else {
            path_id_families(&received, &sent)
        };
        Ok(CodecContext {
            four_octet_as: !flags.legacy_as_path(),
            extended_message: true,
            add_path_receive: families.clone(),
            add_path_send: families,
            // A station shows what the router saw: keep ORIGINATOR_ID / CLUSTER_LIST
            // whatever the session, rather than discarding them as a receiver would.
            external: false,
        })
    }

    pub(crate) fn decode(r: &mut Reader) -> Result<PeerUp, DecodeError> {
        let peer = PeerHeader::decode(r)?;
        let local_address = read_address(r, peer.flags.is_ipv6(), "local address")?;
        let local_port = r.u16("local port")?;
        let remote_port = r.u16("remote port")?;
        let sent_open = read_pdu(r, bgp_type::OPEN)?;
        let received_open = read_pdu(r, bgp_type::OPEN)?;
        let information = decode_tlvs(r)?;
        Ok(PeerUp {
            peer,
            local_address,
            local_port,
            remote_port,
            sent_open,
            received_open,
            information,
        })
    }

    pub(crate) fn encode(&self, out: &mut BytesMut) -> Result<(), EncodeError> {
        if self.local_address.is_ipv6() != self.peer.address.is_ipv6() {
            return Err(EncodeError::Invalid(format!(
                "local address {} and peer address {} of different families",
                self.local_address, self.peer.address
            )));
        }
        check_pdu(&self.sent_open, bgp_type::OPEN)?;
        check_pdu(&self.received_open, bgp_type::OPEN)?;
        self.peer.encode(out)?;
        put_address(out, self.local_address);
        out.put_u16(self.local_port);
        out.put_u16(self.remote_port);
        out.put_slice(&self.sent_open);
        out.put_slice(&self.received_open);
        encode_tlvs(&self.information, out)
    }
}
