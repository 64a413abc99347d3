//! Whole messages: [`decode_message`] for a framed message, [`encode_message`] for any
//! [`Message`].

use bytes::BytesMut;

use super::error::{EncodeError, NotificationError};
use super::header::{begin_message, finish_message, frame_len};
use super::notification::{decode_notification, encode_notification};
use super::open::{decode_open, encode_open};
use super::route_refresh::{decode_route_refresh, encode_route_refresh};
use super::types::{
    message_type, notification_code as nc, CodecContext, Message, Notification, Open, RouteRefresh,
    HEADER_LEN, MAX_MESSAGE_LEN,
};
use super::update::{decode_update, encode_update, DecodedUpdate};

/// A decoded message as the session sees it: an UPDATE comes with its RFC 7606 outcome.
// Like `Message`, UPDATE dominates and boxing it would cost an allocation per UPDATE.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Inbound {
    Open(Open),
    Update(DecodedUpdate),
    Notification(Notification),
    Keepalive,
    RouteRefresh(RouteRefresh),
}

impl Inbound {
    /// The message without the RFC 7606 annotations.
    pub fn into_message(self) -> Message {
        match self {
            Inbound::Open(o) => Message::Open(o),
            Inbound::Update(u) => Message::Update(u.update),
            Inbound::Notification(n) => Message::Notification(n),
            Inbound::Keepalive => Message::Keepalive,
            Inbound::RouteRefresh(r) => Message::RouteRefresh(r),
        }
    }
}

/// Decode one whole framed message (header included), as delimited by [`frame_len`].
///
/// The header is re-validated against `ctx.max_message_len()`, and its length must equal
/// `frame.len()` (1/2 otherwise).
pub fn decode_message(frame: &[u8], ctx: &CodecContext) -> Result<Inbound, NotificationError> {
    let len = frame_len(frame, ctx.max_message_len())?;
    if len != Some(frame.len()) {
        let field = frame.get(16..18).unwrap_or(&[]).to_vec();
        return Err(NotificationError::new(
            nc::MESSAGE_HEADER,
            nc::BAD_MESSAGE_LENGTH,
            format!(
                "length field disagrees with the {}-octet frame",
                frame.len()
            ),
        )
        .with_data(field));
    }
    let msg_type = frame.get(18).copied().unwrap_or(0);
    let body = frame.get(HEADER_LEN..).unwrap_or(&[]);
    Ok(match msg_type {
        message_type::OPEN => Inbound::Open(decode_open(body)?),
        message_type::UPDATE => Inbound::Update(decode_update(body, ctx)?),
        message_type::NOTIFICATION => {
            Inbound::Notification(decode_notification(body).ok_or_else(|| {
                NotificationError::new(
                    nc::MESSAGE_HEADER,
                    nc::BAD_MESSAGE_LENGTH,
                    "short NOTIFICATION",
                )
            })?)
        }
        message_type::KEEPALIVE => Inbound::Keepalive,
        message_type::ROUTE_REFRESH => Inbound::RouteRefresh(decode_route_refresh(frame, body)?),
        // frame_len rejected every other type.
        other => {
            return Err(NotificationError::new(
                nc::MESSAGE_HEADER,
                nc::BAD_MESSAGE_TYPE,
                format!("unknown message type {other}"),
            )
            .with_data(vec![other]))
        }
    })
}

/// Encode `msg` (header included) at the end of `out`.
///
/// Fails without writing anything if the message would exceed the negotiated maximum
/// (`ctx.max_message_len()`; always 4096 for OPEN and KEEPALIVE, RFC 8654 4) or a field
/// cannot hold its value.
pub fn encode_message(
    msg: &Message,
    ctx: &CodecContext,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let (msg_type, max) = match msg {
        Message::Open(_) => (message_type::OPEN, MAX_MESSAGE_LEN),
        Message::Update(_) => (message_type::UPDATE, ctx.max_message_len()),
        Message::Notification(_) => (message_type::NOTIFICATION, ctx.max_message_len()),
        Message::Keepalive => (message_type::KEEPALIVE, MAX_MESSAGE_LEN),
        Message::RouteRefresh(_) => (message_type::ROUTE_REFRESH, ctx.max_message_len()),
    };
    let start = begin_message(out, msg_type);
    let body = match msg {
        Message::Open(o) => encode_open(o, out),
        Message::Update(u) => encode_update(u, ctx, out),
        Message::Notification(n) => {
            encode_notification(n, out);
            Ok(())
        }
        Message::Keepalive => Ok(()),
        Message::RouteRefresh(r) => {
            encode_route_refresh(r, out);
            Ok(())
        }
    };
    if let Err(e) = body {
        out.truncate(start);
        return Err(e);
    }
    finish_message(out, start, max)
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use bytes::Bytes;

    use super::*;
    use crate::wire::types::{Capability, Family, RefreshSubtype, Update};

    fn rt(msg: Message, ctx: &CodecContext) -> BytesMut {
        let mut out = BytesMut::new();
        encode_message(&msg, ctx, &mut out).unwrap();
        assert_eq!(decode_message(&out, ctx).unwrap().into_message(), msg);
        out
    }

    #[test]
    fn every_message_type_round_trips() {
        let ctx = CodecContext::default();
        let wire = rt(Message::Keepalive, &ctx);
        assert_eq!(&wire[..], &[&[0xFF; 16][..], &[0, 19, 4]].concat()[..]);
        rt(
            Message::Open(Open {
                version: 4,
                my_as: 65001,
                hold_time: 90,
                bgp_id: Ipv4Addr::new(10, 0, 0, 1),
                capabilities: vec![Capability::FourOctetAs(65001)],
                other_params: vec![],
            }),
            &ctx,
        );
        rt(
            Message::Notification(Notification::admin_shutdown("bye")),
            &ctx,
        );
        rt(
            Message::RouteRefresh(RouteRefresh {
                family: Family::IPV4_UNICAST,
                subtype: RefreshSubtype::BoRR,
            }),
            &ctx,
        );
        let eor = rt(Message::Update(Update::default()), &ctx);
        assert_eq!(eor.len(), 23);
    }

    #[test]
    fn frame_must_match_its_length_field() {
        let mut out = BytesMut::new();
        encode_message(&Message::Keepalive, &CodecContext::default(), &mut out).unwrap();
        let mut longer = out.to_vec();
        longer.push(0);
        for frame in [&longer[..], &out[..18]] {
            let e = decode_message(frame, &CodecContext::default()).unwrap_err();
            assert_eq!((e.code, e.subcode), (1, 2));
        }
    }

    #[test]
    fn extended_messages_rfc8654() {
        let big = Message::Notification(Notification {
            code: 6,
            subcode: 0,
            data: Bytes::from(vec![0; 5000]),
        });
        let ext = CodecContext {
            extended_message: true,
            ..CodecContext::default()
        };
        let mut out = BytesMut::new();
        assert!(matches!(
            encode_message(&big, &CodecContext::default(), &mut out),
            Err(EncodeError::TooLong {
                len: 5021,
                max: 4096
            })
        ));
        assert!(out.is_empty(), "nothing written on error");
        let wire = rt(big, &ext);
        // Without the capability the same frame is 1/2.
        let e = decode_message(&wire, &CodecContext::default()).unwrap_err();
        assert_eq!((e.code, e.subcode), (1, 2));
        // OPEN stays within 4096 even with extended messages.
        let open = Message::Open(Open {
            version: 4,
            my_as: 1,
            hold_time: 0,
            bgp_id: Ipv4Addr::new(1, 1, 1, 1),
            capabilities: vec![],
            other_params: (0..30).map(|i| (i, Bytes::from(vec![0; 200]))).collect(),
        });
        assert!(matches!(
            encode_message(&open, &ext, &mut out),
            Err(EncodeError::TooLong { max: 4096, .. })
        ));
    }

    #[test]
    fn route_refresh_of_bad_length_is_7_1() {
        let frame = [&[0xFF; 16][..], &[0, 24, 5, 0, 1, 1, 1, 0]].concat();
        let e = decode_message(&frame, &CodecContext::default()).unwrap_err();
        assert_eq!((e.code, e.subcode), (7, 1));
        assert_eq!(&e.data[..], &frame[..]);
    }
}
