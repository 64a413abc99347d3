//! The optional Authentication Section of a BFD Control packet (RFC 5880 4.2-4.4).
//!
//! Only simple password authentication (Auth Type 1, RFC 5880 4.2 and 6.7.2) is
//! supported. The keyed MD5 and SHA1 types (2-5) are recognised by their fixed section
//! lengths so a packet carrying one is refused with a precise reason
//! ([`DecodeError::UnsupportedAuthentication`]) rather than a framing error.

use std::fmt;

use super::DecodeError;

/// The Auth Type field (RFC 5880 4.1; IANA "BFD Authentication Types").
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// 0: reserved.
    Reserved,
    /// 1: simple password (RFC 5880 4.2).
    SimplePassword,
    /// 2: keyed MD5 (RFC 5880 4.3).
    KeyedMd5,
    /// 3: meticulous keyed MD5.
    MeticulousKeyedMd5,
    /// 4: keyed SHA1 (RFC 5880 4.4).
    KeyedSha1,
    /// 5: meticulous keyed SHA1.
    MeticulousKeyedSha1,
    /// Any other value.
    Unknown(u8),
}

impl AuthType {
    pub fn from_u8(v: u8) -> AuthType {
        match v {
            0 => AuthType::Reserved,
            1 => AuthType::SimplePassword,
            2 => AuthType::KeyedMd5,
            3 => AuthType::MeticulousKeyedMd5,
            4 => AuthType::KeyedSha1,
            5 => AuthType::MeticulousKeyedSha1,
            v => AuthType::Unknown(v),
        }
    }

    pub fn to_u8(self) -> u8 {
        match self {
            AuthType::Reserved => 0,
            AuthType::SimplePassword => 1,
            AuthType::KeyedMd5 => 2,
            AuthType::MeticulousKeyedMd5 => 3,
            AuthType::KeyedSha1 => 4,
            AuthType::MeticulousKeyedSha1 => 5,
            AuthType::Unknown(v) => v,
        }
    }

    /// The Auth Len the RFC fixes for this type (RFC 5880 4.3, 4.4), if it fixes one.
    fn fixed_len(self) -> Option<usize> {
        match self {
            AuthType::KeyedMd5 | AuthType::MeticulousKeyedMd5 => Some(24),
            AuthType::KeyedSha1 | AuthType::MeticulousKeyedSha1 => Some(28),
            _ => None,
        }
    }
}

impl fmt::Display for AuthType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AuthType::Reserved => f.write_str("reserved (0)"),
            AuthType::SimplePassword => f.write_str("simple password"),
            AuthType::KeyedMd5 => f.write_str("keyed MD5"),
            AuthType::MeticulousKeyedMd5 => f.write_str("meticulous keyed MD5"),
            AuthType::KeyedSha1 => f.write_str("keyed SHA1"),
            AuthType::MeticulousKeyedSha1 => f.write_str("meticulous keyed SHA1"),
            AuthType::Unknown(v) => write!(f, "unknown ({v})"),
        }
    }
}

/// Longest simple password (RFC 5880 4.2: 1 to 16 bytes).
pub const MAX_PASSWORD_LEN: usize = 16;

/// A simple password of 1 to 16 bytes. Its `Debug` output hides the bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Password {
    bytes: [u8; MAX_PASSWORD_LEN],
    len: u8,
}

/// A password outside RFC 5880 4.2's 1 to 16 bytes.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a BFD simple password has 1 to 16 bytes, not {0}")]
pub struct PasswordLengthError(pub usize);

impl Password {
    pub fn new(bytes: &[u8]) -> Result<Password, PasswordLengthError> {
        if bytes.is_empty() || bytes.len() > MAX_PASSWORD_LEN {
            return Err(PasswordLengthError(bytes.len()));
        }
        let mut out = [0u8; MAX_PASSWORD_LEN];
        out[..bytes.len()].copy_from_slice(bytes);
        Ok(Password {
            bytes: out,
            len: bytes.len() as u8,
        })
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Compares without an early exit, so the time taken does not tell how many leading
    /// bytes of a guess were right.
    pub fn matches(&self, other: &Password) -> bool {
        let diff = self
            .bytes
            .iter()
            .zip(other.bytes.iter())
            .fold(self.len ^ other.len, |acc, (a, b)| acc | (a ^ b));
        diff == 0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Password(<{} bytes>)", self.len)
    }
}

/// A simple password Authentication Section (RFC 5880 4.2): the key id and password.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SimplePassword {
    pub key_id: u8,
    pub password: Password,
}

impl SimplePassword {
    /// Auth Len: type, length and key id octets plus the password.
    pub(crate) fn section_len(&self) -> usize {
        3 + self.password.as_bytes().len()
    }

    pub(crate) fn encode(&self, out: &mut [u8]) -> Option<usize> {
        let len = self.section_len();
        let section = out.get_mut(..len)?;
        let (head, password) = section.split_at_mut(3);
        head.copy_from_slice(&[AuthType::SimplePassword.to_u8(), len as u8, self.key_id]);
        password.copy_from_slice(self.password.as_bytes());
        Some(len)
    }

    /// Decodes the whole Authentication Section `section` (its length is what the
    /// packet's Length field leaves after the mandatory section).
    pub(crate) fn decode(section: &[u8]) -> Result<SimplePassword, DecodeError> {
        let (&auth_type, &auth_len) = match section {
            [t, l, ..] => (t, l),
            _ => return Err(DecodeError::AuthSectionTruncated),
        };
        let auth_type = AuthType::from_u8(auth_type);
        let auth_len = usize::from(auth_len);
        if auth_len != section.len() {
            return Err(DecodeError::AuthLength {
                auth_type,
                auth_len,
                available: section.len(),
            });
        }
        if auth_type != AuthType::SimplePassword {
            return Err(match auth_type.fixed_len() {
                Some(fixed) if fixed != auth_len => DecodeError::AuthLength {
                    auth_type,
                    auth_len,
                    available: section.len(),
                },
                _ => DecodeError::UnsupportedAuthentication(auth_type),
            });
        }
        match section {
            [_, _, key_id, password @ ..] => {
                let password = Password::new(password).map_err(|_| DecodeError::AuthLength {
                    auth_type,
                    auth_len,
                    available: section.len(),
                })?;
                Ok(SimplePassword {
                    key_id: *key_id,
                    password,
                })
            }
            _ => Err(DecodeError::AuthLength {
                auth_type,
                auth_len,
                available: section.len(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_length_is_1_to_16() {
        assert_eq!(Password::new(b""), Err(PasswordLengthError(0)));
        assert_eq!(Password::new(&[7; 17]), Err(PasswordLengthError(17)));
        assert_eq!(Password::new(b"x").unwrap().as_bytes(), b"x");
        assert_eq!(Password::new(&[7; 16]).unwrap().as_bytes(), &[7; 16]);
    }

    #[test]
    fn password_comparison_and_debug() {
        let a = Password::new(b"secret").unwrap();
        assert!(a.matches(&Password::new(b"secret").unwrap()));
        assert!(!a.matches(&Password::new(b"secreT").unwrap()));
        assert!(
            !a.matches(&Password::new(b"secret\0").unwrap()),
            "length counts"
        );
        assert_eq!(format!("{a:?}"), "Password(<6 bytes>)");
    }

    /// RFC 5880 4.2: type 1, length 3 + password, key id, password.
    #[test]
    fn simple_password_section_layout() {
        let s = SimplePassword {
            key_id: 9,
            password: Password::new(b"abc").unwrap(),
        };
        let mut buf = [0u8; 32];
        assert_eq!(s.encode(&mut buf), Some(6));
        assert_eq!(&buf[..6], &[1, 6, 9, b'a', b'b', b'c']);
        assert_eq!(SimplePassword::decode(&buf[..6]), Ok(s));
        assert_eq!(s.encode(&mut buf[..5]), None, "no room");
    }

    #[test]
    fn malformed_sections_are_errors() {
        assert_eq!(
            SimplePassword::decode(&[1]),
            Err(DecodeError::AuthSectionTruncated)
        );
        // Auth Len disagrees with the room the packet Length leaves.
        assert!(matches!(
            SimplePassword::decode(&[1, 7, 9, b'a', b'b', b'c']),
            Err(DecodeError::AuthLength { auth_len: 7, .. })
        ));
        // No password at all.
        assert!(matches!(
            SimplePassword::decode(&[1, 3, 9]),
            Err(DecodeError::AuthLength { .. })
        ));
        // 17-byte password.
        let mut long = vec![1, 20, 9];
        long.extend_from_slice(&[b'p'; 17]);
        assert!(matches!(
            SimplePassword::decode(&long),
            Err(DecodeError::AuthLength { .. })
        ));
    }

    /// RFC 5880 4.3/4.4: keyed MD5 and SHA1 sections are recognised and refused; a
    /// wrong fixed length is a framing error instead.
    #[test]
    fn keyed_types_are_refused_by_name() {
        let mut md5 = vec![2, 24, 1, 0];
        md5.extend_from_slice(&[0; 20]);
        assert_eq!(
            SimplePassword::decode(&md5),
            Err(DecodeError::UnsupportedAuthentication(AuthType::KeyedMd5))
        );
        let mut sha1 = vec![5, 28, 1, 0];
        sha1.extend_from_slice(&[0; 24]);
        assert_eq!(
            SimplePassword::decode(&sha1),
            Err(DecodeError::UnsupportedAuthentication(
                AuthType::MeticulousKeyedSha1
            ))
        );
        assert!(matches!(
            SimplePassword::decode(&[4, 4, 1, 0]),
            Err(DecodeError::AuthLength {
                auth_type: AuthType::KeyedSha1,
                ..
            })
        ));
        assert_eq!(
            SimplePassword::decode(&[0, 3, 1]),
            Err(DecodeError::UnsupportedAuthentication(AuthType::Reserved))
        );
        assert_eq!(
            SimplePassword::decode(&[99, 2]),
            Err(DecodeError::UnsupportedAuthentication(AuthType::Unknown(
                99
            )))
        );
    }

    #[test]
    fn auth_type_codes_round_trip() {
        for v in 0..=255u8 {
            assert_eq!(AuthType::from_u8(v).to_u8(), v);
        }
        assert_eq!(AuthType::KeyedMd5.to_string(), "keyed MD5");
    }
}
