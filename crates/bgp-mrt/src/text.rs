//! Byte-level text output in bgpdump's notation: addresses, numbers, AS paths, communities.
//!
//! These append to a `Vec<u8>` (infallible, no per-field allocation) because dumping a
//! full table writes millions of fields. Where bgpdump's notation differs from Rust's
//! `Display` (IPv6 zero compression, IPv4-compatible addresses, AS path and community
//! string limits) the difference is documented next to the code.

use std::net::{Ipv4Addr, Ipv6Addr};

use bgp_proto::{AsPath, Community, SegmentType};

/// Append a decimal unsigned number.
pub(crate) fn push_u32(out: &mut Vec<u8>, mut n: u32) {
    let mut buf = [0u8; 10];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

/// Append a decimal signed number (bgpdump prints some u32 fields with `%d`).
pub(crate) fn push_i32(out: &mut Vec<u8>, n: i32) {
    if n < 0 {
        out.push(b'-');
    }
    push_u32(out, n.unsigned_abs());
}

/// Dotted quad, as `inet_ntoa`.
pub(crate) fn push_ipv4(out: &mut Vec<u8>, addr: Ipv4Addr) {
    let [a, b, c, d] = addr.octets();
    push_u32(out, a.into());
    out.push(b'.');
    push_u32(out, b.into());
    out.push(b'.');
    push_u32(out, c.into());
    out.push(b'.');
    push_u32(out, d.into());
}

/// IPv6 text as bgpdump writes it. This follows RFC 4291 2.2 but, unlike RFC 5952 4.2.2
/// (and Rust's `Display`), also compresses a lone zero group; on a tie the first longest
/// run wins. IPv4-mapped (`::ffff:a.b.c.d`) and IPv4-compatible (`::a.b.c.d`, last 32
/// bits greater than 1) addresses end in dotted quad.
pub(crate) fn push_ipv6(out: &mut Vec<u8>, addr: Ipv6Addr) {
    let groups = addr.segments();
    let o = addr.octets();
    let low = u32::from_be_bytes([o[12], o[13], o[14], o[15]]);
    let first96_zero = groups[..5].iter().all(|&g| g == 0);
    if first96_zero && groups[5] == 0xffff {
        out.extend_from_slice(b"::ffff:");
        push_ipv4(out, Ipv4Addr::from(low));
        return;
    }
    if first96_zero && groups[5] == 0 && low > 1 {
        out.extend_from_slice(b"::");
        push_ipv4(out, Ipv4Addr::from(low));
        return;
    }
    // Longest run of zero groups (first one on a tie); any length >= 1 is compressed.
    let (mut best_start, mut best_len) = (0usize, 0usize);
    let mut i = 0;
    while i < 8 {
        if groups[i] == 0 {
            let start = i;
            while i < 8 && groups[i] == 0 {
                i += 1;
            }
            if i - start > best_len {
                best_start = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut i = 0;
    while i < 8 {
        if best_len > 0 && i == best_start {
            if i == 0 {
                out.push(b':');
            }
            out.push(b':');
            i += best_len;
            continue;
        }
        let g = groups[i];
        let mut started = false;
        for shift in [12u32, 8, 4, 0] {
            let nibble = usize::from((g >> shift) & 0xf);
            if nibble != 0 || started || shift == 0 {
                out.push(HEX[nibble]);
                started = true;
            }
        }
        if i != 7 {
            out.push(b':');
        }
        i += 1;
    }
}

/// bgpdump builds AS path strings in a fixed 8000-byte buffer and stops, appending
/// `...`, once the text passes 7900 bytes.
const ASPATH_TEXT_LIMIT: usize = 8000 - 100;

fn segment_delimiters(kind: SegmentType) -> Option<(u8, u8)> {
    match kind {
        SegmentType::Sequence => None,
        SegmentType::Set => Some((b'{', b'}')),
        SegmentType::ConfedSequence => Some((b'(', b')')),
        SegmentType::ConfedSet => Some((b'[', b']')),
    }
}

/// AS path text as bgpdump writes it: sequences space-separated, `{a,b}` for AS_SET,
/// `(a b)` for AS_CONFED_SEQUENCE, `[a,b]` for AS_CONFED_SET (RFC 5065), segments
/// separated by one space. An empty segment adds no text (and, as in bgpdump, no
/// separator after it).
pub(crate) fn push_as_path(out: &mut Vec<u8>, path: &AsPath) {
    let start = out.len();
    let mut prev_kind = SegmentType::Sequence;
    let mut space = false;
    for seg in &path.segments {
        if let Some((_, close)) = segment_delimiters(prev_kind) {
            out.push(close);
        }
        if space {
            out.push(b' ');
        }
        let delims = segment_delimiters(seg.kind);
        if let Some((open, _)) = delims {
            out.push(open);
        }
        space = false;
        let sep = if matches!(seg.kind, SegmentType::Set | SegmentType::ConfedSet) {
            b','
        } else {
            b' '
        };
        for &asn in &seg.asns {
            if space {
                out.push(sep);
            } else {
                space = true;
            }
            push_u32(out, asn);
            if out.len() - start > ASPATH_TEXT_LIMIT {
                out.extend_from_slice(b"...");
                return;
            }
        }
        prev_kind = seg.kind;
    }
    if let Some((_, close)) = path
        .segments
        .last()
        .and_then(|s| segment_delimiters(s.kind))
    {
        out.push(close);
    }
}

/// bgpdump builds the community string in a `BUFSIZ` (8192-byte) buffer, NUL included:
/// a numeric entry is cut at the end of it, a named one dropped unless it fits whole.
const COMMUNITY_BUF: usize = 8192;

/// Communities separated by spaces: `no-export`, `no-advertise` and `local-AS` for the
/// RFC 1997 well-known values, `asn:value` otherwise.
pub(crate) fn push_communities(out: &mut Vec<u8>, communities: &[Community]) {
    // Like bgpdump, build " c1 c2 ..." and drop the leading space at the end.
    let start = out.len();
    for c in communities {
        let used = out.len() - start;
        let named: Option<&[u8]> = match *c {
            Community::NO_EXPORT => Some(b" no-export"),
            Community::NO_ADVERTISE => Some(b" no-advertise"),
            Community::NO_EXPORT_SUBCONFED => Some(b" local-AS"),
            _ => None,
        };
        match named {
            Some(name) => {
                if used + name.len() < COMMUNITY_BUF {
                    out.extend_from_slice(name);
                }
            }
            None => {
                let room = COMMUNITY_BUF - 1 - used;
                out.push(b' ');
                push_u32(out, c.0 >> 16);
                out.push(b':');
                push_u32(out, c.0 & 0xffff);
                out.truncate(start + used + room.min(out.len() - start - used));
            }
        }
    }
    if out.len() > start {
        out.remove(start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp_proto::AsSegment;

    fn v6(s: &str) -> String {
        let mut out = Vec::new();
        push_ipv6(&mut out, s.parse().unwrap());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn ipv6_text_matches_bgpdump() {
        assert_eq!(v6("fe80::"), "fe80::");
        assert_eq!(v6("2001:db8::1"), "2001:db8::1");
        assert_eq!(v6("::ffff:192.168.2.1"), "::ffff:192.168.2.1");
        assert_eq!(v6("::192.168.1.2"), "::192.168.1.2");
        assert_eq!(v6("2001:7f8:30::2:1:0:8447"), "2001:7f8:30::2:1:0:8447");
        assert_eq!(v6("::"), "::");
        assert_eq!(v6("::1"), "::1");
        // A lone zero group is compressed (RFC 5952 would not).
        assert_eq!(v6("2001:db8:0:1:1:1:1:1"), "2001:db8::1:1:1:1:1");
        // First longest run wins.
        assert_eq!(v6("1:0:0:2:0:0:3:4"), "1::2:0:0:3:4");
        assert_eq!(v6("2001:db8:0:1::"), "2001:db8:0:1::");
    }

    fn path(segs: &[(SegmentType, &[u32])]) -> String {
        let p = AsPath {
            segments: segs
                .iter()
                .map(|(k, a)| AsSegment {
                    kind: *k,
                    asns: a.to_vec(),
                })
                .collect(),
        };
        let mut out = Vec::new();
        push_as_path(&mut out, &p);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn as_path_text_matches_bgpdump() {
        use SegmentType::*;
        assert_eq!(path(&[]), "");
        assert_eq!(path(&[(Sequence, &[1, 2, 3])]), "1 2 3");
        assert_eq!(path(&[(Sequence, &[1, 2]), (Set, &[3, 4])]), "1 2 {3,4}");
        assert_eq!(path(&[(Set, &[3, 4]), (Sequence, &[5])]), "{3,4} 5");
        assert_eq!(
            path(&[
                (ConfedSequence, &[7, 8]),
                (Sequence, &[1]),
                (ConfedSet, &[9, 10])
            ]),
            "(7 8) 1 [9,10]"
        );
        // An empty segment contributes nothing, not even a separator after it.
        assert_eq!(
            path(&[(Sequence, &[1]), (Sequence, &[]), (Sequence, &[2])]),
            "1 2"
        );
    }

    #[test]
    fn very_long_as_path_is_cut_like_bgpdump() {
        let asns: Vec<u32> = vec![4_200_000_000; 2000];
        let text = path(&[(SegmentType::Sequence, &asns)]);
        assert!(text.ends_with("..."));
        // After 719 ten-digit ASNs and their separators the text is 7908 bytes, past the
        // limit: bgpdump appends "..." and stops.
        assert_eq!(text.len(), 11 * 719 - 1 + 3);
    }

    fn comms(c: &[u32]) -> String {
        let c: Vec<Community> = c.iter().map(|&v| Community(v)).collect();
        let mut out = Vec::new();
        push_communities(&mut out, &c);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn communities_text_matches_bgpdump() {
        assert_eq!(comms(&[]), "");
        assert_eq!(comms(&[(3257 << 16) | 3040]), "3257:3040");
        assert_eq!(
            comms(&[0xFFFF_FF01, 0xFFFF_FF02, 0xFFFF_FF03, 0xFFFF_FF04]),
            "no-export no-advertise local-AS 65535:65284"
        );
    }

    #[test]
    fn thousands_of_communities_are_cut_at_bgpdump_buffer_size() {
        // " 65000:65000" is 12 bytes: 682 fit in 8191, the 683rd is cut to 7 bytes.
        let text = comms(&vec![(65000 << 16) | 65000; 700]);
        assert_eq!(text.len(), 8191 - 1);
        assert!(text.ends_with(" 65000:"));
        // A named community that does not fit whole is dropped.
        let mut many = vec![(65000 << 16) | 65000; 682];
        many.push(0xFFFF_FF02);
        assert_eq!(comms(&many).len(), 682 * 12 - 1);
    }

    #[test]
    fn numbers() {
        let mut out = Vec::new();
        push_u32(&mut out, 0);
        out.push(b' ');
        push_u32(&mut out, u32::MAX);
        out.push(b' ');
        push_i32(&mut out, -5);
        out.push(b' ');
        push_i32(&mut out, i32::MIN);
        out.push(b' ');
        push_ipv4(&mut out, Ipv4Addr::new(193, 0, 10, 255));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "0 4294967295 -5 -2147483648 193.0.10.255"
        );
    }
}
