//! The BFD Control packet (RFC 5880 4.1): typed fields, decoding with every check of
//! RFC 5880 6.8.6 that needs no session, and encoding into a fixed buffer.
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Vers |  Diag   |Sta|P|F|C|A|D|M|  Detect Mult  |    Length     |
//! |                       My Discriminator                        |
//! |                      Your Discriminator                       |
//! |                    Desired Min TX Interval                    |
//! |                   Required Min RX Interval                    |
//! |                 Required Min Echo RX Interval                 |
//! |   Auth Type   |   Auth Len    |    Authentication Data...     |
//! ```
//!
//! The mandatory section has a fixed size, so decoding copies it into a 24-byte array
//! and reads fields at constant offsets: nothing can be read past the datagram.
//! Values RFC 5880 6.8.6 says to discard (a Detect Mult or My Discriminator of zero, the
//! Multipoint bit) cannot be represented in a [`ControlPacket`] at all, so what decodes
//! always re-encodes to the same bytes.

mod auth;

use std::fmt;
use std::num::{NonZeroU32, NonZeroU8};

pub use auth::{AuthType, Password, PasswordLengthError, SimplePassword, MAX_PASSWORD_LEN};

/// RFC 5880 4.1: the protocol version we speak.
pub const VERSION: u8 = 1;
/// Length of the mandatory section.
pub const MANDATORY_LEN: usize = 24;
/// Longest packet we ever send: the mandatory section and a 16-byte simple password.
pub const MAX_ENCODED_LEN: usize = MANDATORY_LEN + 3 + MAX_PASSWORD_LEN;

/// Session state as carried in the Sta field (RFC 5880 4.1) and kept by a session
/// (bfd.SessionState, 6.8.1).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum State {
    AdminDown,
    Down,
    Init,
    Up,
}

impl State {
    pub fn from_bits(v: u8) -> State {
        match v & 0b11 {
            0 => State::AdminDown,
            1 => State::Down,
            2 => State::Init,
            _ => State::Up,
        }
    }

    pub fn to_bits(self) -> u8 {
        match self {
            State::AdminDown => 0,
            State::Down => 1,
            State::Init => 2,
            State::Up => 3,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            State::AdminDown => "AdminDown",
            State::Down => "Down",
            State::Init => "Init",
            State::Up => "Up",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The Diag field (RFC 5880 4.1): why the sender's session last changed state.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Diagnostic {
    /// 0
    NoDiagnostic,
    /// 1
    ControlDetectionTimeExpired,
    /// 2
    EchoFunctionFailed,
    /// 3
    NeighborSignaledSessionDown,
    /// 4
    ForwardingPlaneReset,
    /// 5
    PathDown,
    /// 6
    ConcatenatedPathDown,
    /// 7
    AdministrativelyDown,
    /// 8
    ReverseConcatenatedPathDown,
    /// 9-31: reserved; kept so it round-trips.
    Unknown(u8),
}

impl Diagnostic {
    /// From the 5-bit field (higher bits ignored).
    pub fn from_bits(v: u8) -> Diagnostic {
        match v & 0x1f {
            0 => Diagnostic::NoDiagnostic,
            1 => Diagnostic::ControlDetectionTimeExpired,
            2 => Diagnostic::EchoFunctionFailed,
            3 => Diagnostic::NeighborSignaledSessionDown,
            4 => Diagnostic::ForwardingPlaneReset,
            5 => Diagnostic::PathDown,
            6 => Diagnostic::ConcatenatedPathDown,
            7 => Diagnostic::AdministrativelyDown,
            8 => Diagnostic::ReverseConcatenatedPathDown,
            v => Diagnostic::Unknown(v),
        }
    }

    pub fn to_bits(self) -> u8 {
        match self {
            Diagnostic::NoDiagnostic => 0,
            Diagnostic::ControlDetectionTimeExpired => 1,
            Diagnostic::EchoFunctionFailed => 2,
            Diagnostic::NeighborSignaledSessionDown => 3,
            Diagnostic::ForwardingPlaneReset => 4,
            Diagnostic::PathDown => 5,
            Diagnostic::ConcatenatedPathDown => 6,
            Diagnostic::AdministrativelyDown => 7,
            Diagnostic::ReverseConcatenatedPathDown => 8,
            Diagnostic::Unknown(v) => v & 0x1f,
        }
    }

    /// The RFC 5880 4.1 name, lower case as FRR and BIRD print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Diagnostic::NoDiagnostic => "no diagnostic",
            Diagnostic::ControlDetectionTimeExpired => "control detection time expired",
            Diagnostic::EchoFunctionFailed => "echo function failed",
            Diagnostic::NeighborSignaledSessionDown => "neighbor signaled session down",
            Diagnostic::ForwardingPlaneReset => "forwarding plane reset",
            Diagnostic::PathDown => "path down",
            Diagnostic::ConcatenatedPathDown => "concatenated path down",
            Diagnostic::AdministrativelyDown => "administratively down",
            Diagnostic::ReverseConcatenatedPathDown => "reverse concatenated path down",
            Diagnostic::Unknown(_) => "reserved diagnostic",
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Diagnostic::Unknown(v) => write!(f, "reserved diagnostic {v}"),
            d => f.write_str(d.as_str()),
        }
    }
}

/// A BFD Control packet. Intervals are in microseconds, as on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ControlPacket {
    pub diagnostic: Diagnostic,
    pub state: State,
    /// P: the sender asks for verification of a parameter change (RFC 5880 6.5).
    pub poll_bit: bool,
    /// F: the answer to a Poll.
    pub final_bit: bool,
    /// C: the sender's BFD does not share fate with its control plane.
    pub control_plane_independent: bool,
    /// D: the sender wishes to run demand mode.
    pub demand: bool,
    /// The Authentication Section; the A bit is set exactly when present.
    pub authentication: Option<SimplePassword>,
    pub detect_mult: NonZeroU8,
    pub my_discriminator: NonZeroU32,
    /// Zero while the sender does not know the receiver's discriminator.
    pub your_discriminator: u32,
    pub desired_min_tx_us: u32,
    pub required_min_rx_us: u32,
    pub required_min_echo_rx_us: u32,
}

/// Why a datagram is not a BFD Control packet we accept (RFC 5880 6.8.6, the checks
/// before a session is selected).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("{0} bytes: shorter than the 24-byte mandatory section")]
    Truncated(usize),
    #[error("version {0}, not 1")]
    Version(u8),
    #[error("Length field {length} but the datagram has {available} bytes")]
    LengthExceedsDatagram { length: usize, available: usize },
    #[error("Length field {length} below the minimum {minimum}")]
    LengthTooSmall { length: usize, minimum: usize },
    #[error("Detect Mult is zero")]
    ZeroDetectMult,
    #[error("Multipoint bit set")]
    Multipoint,
    #[error("My Discriminator is zero")]
    ZeroMyDiscriminator,
    #[error("authentication section truncated")]
    AuthSectionTruncated,
    #[error("{auth_type} section of Auth Len {auth_len} in {available} bytes")]
    AuthLength {
        auth_type: AuthType,
        auth_len: usize,
        available: usize,
    },
    #[error("{0} authentication is not supported")]
    UnsupportedAuthentication(AuthType),
}

/// An encoded packet: a fixed buffer, so sending allocates nothing.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct EncodedPacket {
    buf: [u8; MAX_ENCODED_LEN],
    len: u8,
}

impl EncodedPacket {
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf[..usize::from(self.len)]
    }
}

impl AsRef<[u8]> for EncodedPacket {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl fmt::Debug for EncodedPacket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EncodedPacket({} bytes)", self.len)
    }
}

// Bits of the second octet.
const POLL: u8 = 0x20;
const FINAL: u8 = 0x10;
const CONTROL_PLANE_INDEPENDENT: u8 = 0x08;
const AUTH_PRESENT: u8 = 0x04;
const DEMAND: u8 = 0x02;
const MULTIPOINT: u8 = 0x01;

fn u32_at(m: &[u8; MANDATORY_LEN], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&m[at..at + 4]);
    u32::from_be_bytes(b)
}

impl ControlPacket {
    /// Decodes one datagram's payload. Bytes beyond the Length field are ignored (RFC
    /// 5880 6.8.6 only discards a Length larger than the payload).
    pub fn decode(datagram: &[u8]) -> Result<ControlPacket, DecodeError> {
        let m: [u8; MANDATORY_LEN] = datagram
            .get(..MANDATORY_LEN)
            .and_then(|s| s.try_into().ok())
            .ok_or(DecodeError::Truncated(datagram.len()))?;
        let version = m[0] >> 5;
        if version != VERSION {
            return Err(DecodeError::Version(version));
        }
        let flags = m[1];
        let auth_present = flags & AUTH_PRESENT != 0;
        let length = usize::from(m[3]);
        let minimum = if auth_present {
            MANDATORY_LEN + 2
        } else {
            MANDATORY_LEN
        };
        if length < minimum {
            return Err(DecodeError::LengthTooSmall { length, minimum });
        }
        if length > datagram.len() {
            return Err(DecodeError::LengthExceedsDatagram {
                length,
                available: datagram.len(),
            });
        }
        let detect_mult = NonZeroU8::new(m[2]).ok_or(DecodeError::ZeroDetectMult)?;
        if flags & MULTIPOINT != 0 {
            return Err(DecodeError::Multipoint);
        }
        let my_discriminator =
            NonZeroU32::new(u32_at(&m, 4)).ok_or(DecodeError::ZeroMyDiscriminator)?;
        let authentication = if auth_present {
            let section = datagram
                .get(MANDATORY_LEN..length)
                .ok_or(DecodeError::AuthSectionTruncated)?;
            Some(SimplePassword::decode(section)?)
        } else {
            None
        };
        Ok(ControlPacket {
            diagnostic: Diagnostic::from_bits(m[0]),
            state: State::from_bits(flags >> 6),
            poll_bit: flags & POLL != 0,
            final_bit: flags & FINAL != 0,
            control_plane_independent: flags & CONTROL_PLANE_INDEPENDENT != 0,
            demand: flags & DEMAND != 0,
            authentication,
            detect_mult,
            my_discriminator,
            your_discriminator: u32_at(&m, 8),
            desired_min_tx_us: u32_at(&m, 12),
            required_min_rx_us: u32_at(&m, 16),
            required_min_echo_rx_us: u32_at(&m, 20),
        })
    }

    /// Encodes the packet; the Length field and A bit follow from `authentication`.
    pub fn encode(&self) -> EncodedPacket {
        let mut buf = [0u8; MAX_ENCODED_LEN];
        let mut flags = self.state.to_bits() << 6;
        for (on, bit) in [
            (self.poll_bit, POLL),
            (self.final_bit, FINAL),
            (self.control_plane_independent, CONTROL_PLANE_INDEPENDENT),
            (self.authentication.is_some(), AUTH_PRESENT),
            (self.demand, DEMAND),
        ] {
            if on {
                flags |= bit;
            }
        }
        let (mandatory, rest) = buf.split_at_mut(MANDATORY_LEN);
        let auth_len = self
            .authentication
            .and_then(|a| a.encode(rest))
            .unwrap_or(0);
        let len = MANDATORY_LEN + auth_len;
        mandatory[0] = (VERSION << 5) | self.diagnostic.to_bits();
        mandatory[1] = flags;
        mandatory[2] = self.detect_mult.get();
        mandatory[3] = len as u8;
        for (at, v) in [
            (4, self.my_discriminator.get()),
            (8, self.your_discriminator),
            (12, self.desired_min_tx_us),
            (16, self.required_min_rx_us),
            (20, self.required_min_echo_rx_us),
        ] {
            mandatory[at..at + 4].copy_from_slice(&v.to_be_bytes());
        }
        EncodedPacket {
            buf,
            len: len as u8,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packet() -> ControlPacket {
        ControlPacket {
            diagnostic: Diagnostic::NoDiagnostic,
            state: State::Down,
            poll_bit: false,
            final_bit: false,
            control_plane_independent: false,
            demand: false,
            authentication: None,
            detect_mult: NonZeroU8::new(3).unwrap(),
            my_discriminator: NonZeroU32::new(0x0102_0304).unwrap(),
            your_discriminator: 0,
            desired_min_tx_us: 1_000_000,
            required_min_rx_us: 300_000,
            required_min_echo_rx_us: 0,
        }
    }

    /// RFC 5880 4.1: field layout, checked byte by byte.
    #[test]
    fn mandatory_section_layout() {
        let mut p = packet();
        p.state = State::Up;
        p.diagnostic = Diagnostic::ControlDetectionTimeExpired;
        p.poll_bit = true;
        p.your_discriminator = 0x0a0b_0c0d;
        let e = p.encode();
        assert_eq!(
            e.as_bytes(),
            &[
                0x21, 0xe0, 3, 24, 1, 2, 3, 4, 0x0a, 0x0b, 0x0c, 0x0d, 0x00, 0x0f, 0x42, 0x40,
                0x00, 0x04, 0x93, 0xe0, 0, 0, 0, 0
            ]
        );
        assert_eq!(ControlPacket::decode(e.as_bytes()), Ok(p));
    }

    #[test]
    fn flags_each_have_their_bit() {
        type Set = fn(&mut ControlPacket);
        let cases: [(Set, u8); 4] = [
            (|p| p.poll_bit = true, 0x20),
            (|p| p.final_bit = true, 0x10),
            (|p| p.control_plane_independent = true, 0x08),
            (|p| p.demand = true, 0x02),
        ];
        for (set, bit) in cases {
            let mut p = packet();
            set(&mut p);
            let e = p.encode();
            assert_eq!(e.as_bytes()[1], 0x40 | bit);
            assert_eq!(ControlPacket::decode(e.as_bytes()), Ok(p));
        }
    }

    /// RFC 5880 4.2: the A bit, the section and the Length field go together.
    #[test]
    fn authenticated_packet_round_trips() {
        let mut p = packet();
        p.authentication = Some(SimplePassword {
            key_id: 1,
            password: Password::new(b"0123456789abcdef").unwrap(),
        });
        let e = p.encode();
        assert_eq!(e.as_bytes().len(), MAX_ENCODED_LEN);
        assert_eq!(e.as_bytes()[1] & 0x04, 0x04);
        assert_eq!(usize::from(e.as_bytes()[3]), MAX_ENCODED_LEN);
        assert_eq!(ControlPacket::decode(e.as_bytes()), Ok(p));
    }

    /// RFC 5880 6.8.6 steps 1 to 6, in order.
    #[test]
    fn discard_rules_before_session_selection() {
        let good = packet().encode();
        let bytes = good.as_bytes().to_vec();
        assert_eq!(
            ControlPacket::decode(&bytes[..23]),
            Err(DecodeError::Truncated(23))
        );
        let with = |at: usize, v: u8| {
            let mut b = bytes.clone();
            b[at] = v;
            ControlPacket::decode(&b)
        };
        assert_eq!(with(0, 0x40), Err(DecodeError::Version(2)));
        assert_eq!(with(0, 0x00), Err(DecodeError::Version(0)));
        assert_eq!(
            with(3, 23),
            Err(DecodeError::LengthTooSmall {
                length: 23,
                minimum: 24
            })
        );
        assert_eq!(
            with(3, 25),
            Err(DecodeError::LengthExceedsDatagram {
                length: 25,
                available: 24
            })
        );
        // A bit set: at least 26 bytes.
        let mut b = bytes.clone();
        b[1] |= 0x04;
        b[3] = 25;
        b.push(1);
        assert_eq!(
            ControlPacket::decode(&b),
            Err(DecodeError::LengthTooSmall {
                length: 25,
                minimum: 26
            })
        );
        assert_eq!(with(2, 0), Err(DecodeError::ZeroDetectMult));
        assert_eq!(with(1, 0x41), Err(DecodeError::Multipoint));
        let mut b = bytes.clone();
        b[4..8].fill(0);
        assert_eq!(
            ControlPacket::decode(&b),
            Err(DecodeError::ZeroMyDiscriminator)
        );
    }

    #[test]
    fn trailing_bytes_beyond_length_are_ignored() {
        let p = packet();
        let mut b = p.encode().as_bytes().to_vec();
        b.extend_from_slice(&[0xff; 8]);
        assert_eq!(ControlPacket::decode(&b), Ok(p));
    }

    #[test]
    fn auth_section_must_fill_the_length() {
        let mut p = packet();
        p.authentication = Some(SimplePassword {
            key_id: 2,
            password: Password::new(b"pw").unwrap(),
        });
        let mut b = p.encode().as_bytes().to_vec();
        // The packet claims one more byte than the section holds.
        b[3] += 1;
        b.push(0);
        assert!(matches!(
            ControlPacket::decode(&b),
            Err(DecodeError::AuthLength { auth_len: 5, .. })
        ));
    }

    #[test]
    fn state_and_diagnostic_codes_round_trip() {
        for v in 0..4u8 {
            assert_eq!(State::from_bits(v).to_bits(), v);
        }
        for v in 0..32u8 {
            assert_eq!(Diagnostic::from_bits(v).to_bits(), v);
        }
        assert_eq!(
            Diagnostic::from_bits(1).to_string(),
            "control detection time expired"
        );
        assert_eq!(
            Diagnostic::from_bits(9).to_string(),
            "reserved diagnostic 9"
        );
        assert_eq!(State::AdminDown.to_string(), "AdminDown");
    }
}
