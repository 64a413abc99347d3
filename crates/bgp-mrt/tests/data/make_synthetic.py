#!/usr/bin/env python3
"""Write synthetic.mrt.bz2: MRT records covering what the RIS sample files do not.

Record types and subtypes (TABLE_DUMP v4/v6/AS4, TABLE_DUMP_V2 with mixed peers,
multicast, RIB_GENERIC and ADD-PATH, BGP4MP and BGP4MP_ET state changes, every BGP4MP
MESSAGE subtype including LOCAL and RFC 8050 ADD-PATH), and bgpdump's formatting rules
(AS sets and confederations, RFC 6793 AS4 merging, well-known communities, aggregators,
MP next hops of 4/16/32 octets, multicast MP_REACH, values >= 2^31).

The expectation is the output of the real tool:

    python3 make_synthetic.py
    bgpdump -q -m synthetic.mrt.bz2 | gzip -9n > synthetic.mrt.bz2.bgpdump-m.gz

(bgpdump 1.6.2, Debian). Prefixes have no bits set past their length, on which 1.6.2
and later bgpdump versions print differently.
"""

import bz2
import ipaddress
import struct

T0 = 1700000000


def mrt(mrt_type, subtype, body, ts=T0, us=None):
    if us is not None:
        body = struct.pack(">I", us) + body
    return struct.pack(">IHHI", ts, mrt_type, subtype, len(body)) + body


def attr(flags, code, value):
    if len(value) > 255:
        return struct.pack(">BBH", flags | 0x10, code, len(value)) + value
    return struct.pack(">BBB", flags, code, len(value)) + value


def as_path(segments, four=True):
    out = b""
    for kind, asns in segments:
        out += struct.pack(">BB", kind, len(asns))
        for a in asns:
            out += struct.pack(">I" if four else ">H", a)
    return out


SEQ, SET, CSEQ, CSET = 2, 1, 3, 4


def origin(v):
    return attr(0x40, 1, bytes([v]))


def path(segments, four=True):
    return attr(0x40, 2, as_path(segments, four))


def next_hop(ip):
    return attr(0x40, 3, ipaddress.IPv4Address(ip).packed)


def med(v):
    return attr(0x80, 4, struct.pack(">I", v))


def local_pref(v):
    return attr(0x40, 5, struct.pack(">I", v))


def atomic():
    return attr(0x40, 6, b"")


def aggregator(asn, ip, four=True):
    return attr(0xC0, 7, struct.pack(">I" if four else ">H", asn) + ipaddress.IPv4Address(ip).packed)


def communities(*values):
    return attr(0xC0, 8, b"".join(struct.pack(">I", v) for v in values))


def as4_path(segments):
    return attr(0xC0, 17, as_path(segments, True))


def as4_aggregator(asn, ip):
    return attr(0xC0, 18, struct.pack(">I", asn) + ipaddress.IPv4Address(ip).packed)


def prefix(p, path_id=None):
    net = ipaddress.ip_network(p)
    n = (net.prefixlen + 7) // 8
    out = bytes([net.prefixlen]) + net.network_address.packed[:n]
    if path_id is not None:
        out = struct.pack(">I", path_id) + out
    return out


def mp_reach(afi, safi, hops, nlri):
    nh = b"".join(ipaddress.ip_address(h).packed for h in hops)
    return attr(0x80, 14, struct.pack(">HBB", afi, safi, len(nh)) + nh + b"\x00" + nlri)


def mp_reach_abbreviated(hops):
    nh = b"".join(ipaddress.ip_address(h).packed for h in hops)
    return attr(0x80, 14, bytes([len(nh)]) + nh)


def mp_unreach(afi, safi, nlri):
    return attr(0x80, 15, struct.pack(">HB", afi, safi) + nlri)


def bgp(msg_type, body):
    return b"\xff" * 16 + struct.pack(">HB", 19 + len(body), msg_type) + body


def update(withdrawn=b"", attrs=b"", nlri=b""):
    return bgp(2, struct.pack(">H", len(withdrawn)) + withdrawn + struct.pack(">H", len(attrs)) + attrs + nlri)


def ip(a):
    return ipaddress.ip_address(a).packed


def bgp4mp_header(peer_as, local_as, peer_ip, local_ip, four):
    afi = 2 if ":" in peer_ip else 1
    fmt = ">IIHH" if four else ">HHHH"
    return struct.pack(fmt, peer_as, local_as, 0, afi) + ip(peer_ip) + ip(local_ip)


def message(subtype, peer_as, peer_ip, msg, local_as=64500, local_ip=None, et_us=None, ts=T0):
    four = subtype in (4, 7, 9, 11)
    if local_ip is None:
        local_ip = "2001:db8::ffff" if ":" in peer_ip else "192.0.2.254"
    body = bgp4mp_header(peer_as, local_as, peer_ip, local_ip, four) + msg
    return mrt(17 if et_us is not None else 16, subtype, body, ts=ts, us=et_us)


def state(subtype, peer_as, peer_ip, old, new, et_us=None):
    four = subtype == 5
    local_ip = "2001:db8::ffff" if ":" in peer_ip else "192.0.2.254"
    body = bgp4mp_header(peer_as, 64500, peer_ip, local_ip, four) + struct.pack(">HH", old, new)
    return mrt(17 if et_us is not None else 16, subtype, body, us=et_us)


def table_dump(subtype, pfx, peer_ip, peer_as, attrs, seq=0):
    net = ipaddress.ip_network(pfx)
    four = subtype in (3, 4)
    body = struct.pack(">HH", 0, seq) + net.network_address.packed
    body += struct.pack(">BBI", net.prefixlen, 1, T0 - 100)
    body += ip(peer_ip) + struct.pack(">I" if four else ">H", peer_as)
    body += struct.pack(">H", len(attrs)) + attrs
    return mrt(12, subtype, body)


def peer_index(peers):
    body = ip("192.0.2.200") + struct.pack(">H", 4) + b"test" + struct.pack(">H", len(peers))
    for peer_ip, asn, as4 in peers:
        ptype = (1 if ":" in peer_ip else 0) | (2 if as4 else 0)
        body += bytes([ptype]) + ip("10.255.0.%d" % (len(body) % 250)) + ip(peer_ip)
        body += struct.pack(">I" if as4 else ">H", asn)
    return mrt(13, 1, body)


def rib(subtype, seq, pfx, entries, add_path=False, generic=None):
    body = struct.pack(">I", seq)
    if generic is not None:
        body += struct.pack(">HB", *generic)
    body += prefix(pfx) + struct.pack(">H", len(entries))
    for i, (peer, attrs) in enumerate(entries):
        body += struct.pack(">HI", peer, T0 - 50)
        if add_path:
            body += struct.pack(">I", 100 + i)
        body += struct.pack(">H", len(attrs)) + attrs
    return mrt(13, subtype, body)


NO_EXPORT, NO_ADVERTISE, LOCAL_AS = 0xFFFFFF01, 0xFFFFFF02, 0xFFFFFF03
BIG = 4200000001


def build():
    records = []

    # TABLE_DUMP (RFC 6396 4.2): IPv4 with sets/confeds, well-known communities, aggregator.
    records.append(table_dump(1, "198.51.100.0/24", "192.0.2.1", 64496,
        origin(0) + path([(CSEQ, [65001, 65002]), (SEQ, [64496, 64497]), (SET, [64498, 64499])], four=False)
        + next_hop("192.0.2.1") + med(10) + local_pref(200) + atomic() + aggregator(64499, "192.0.2.99", four=False)
        + communities(NO_EXPORT, (64496 << 16) | 1, NO_ADVERTISE, LOCAL_AS, 0xFFFF0006)))
    # IPv4, no NEXT_HOP, ORIGIN EGP, empty AS_PATH.
    records.append(table_dump(1, "203.0.113.0/25", "192.0.2.2", 64497, origin(1) + path([], four=False)))
    # IPv6 with the standard MP_REACH_NLRI form, and with the abbreviated one.
    records.append(table_dump(2, "2001:db8:100::/40", "2001:db8::1", 64496,
        origin(2) + path([(SEQ, [64496, 64510])], four=False)
        + mp_reach(2, 1, ["2001:db8::1", "fe80::1"], b"")))
    records.append(table_dump(2, "2001:db8:200::/48", "2001:db8::2", 64497,
        origin(0) + path([(SEQ, [64497])], four=False) + mp_reach_abbreviated(["2001:db8::2"])))
    # bgpdump's 4-octet TABLE_DUMP subtype.
    records.append(table_dump(3, "192.0.2.128/26", "192.0.2.3", BIG,
        origin(0) + path([(SEQ, [BIG, 64496])]) + next_hop("192.0.2.3") + aggregator(BIG, "192.0.2.3")))

    # bgpdump's IPv6 4-octet subtype (printed through its IPv4 formatter), and an abbreviated
    # MP_REACH_NLRI with an IPv4 next hop in TABLE_DUMP (printed through its IPv6 formatter).
    records.append(table_dump(4, "2001:db8:f00::/40", "2001:db8::4", BIG, origin(0) + path([(SEQ, [BIG])])))
    records.append(table_dump(1, "198.51.100.0/25", "192.0.2.5", 64499,
        origin(0) + path([(SEQ, [64499])], four=False) + mp_reach_abbreviated(["192.0.2.5"])))

    # TABLE_DUMP_V2 (RFC 6396 4.3): IPv4/AS2, IPv6/AS4, IPv4/AS4 peers.
    records.append(peer_index([("192.0.2.10", 64510, False), ("2001:db8::10", BIG, True),
                               ("192.0.2.11", 196608, True)]))
    records.append(rib(2, 0, "100.64.0.0/10", [
        (0, origin(0) + path([(SEQ, [64510, 64511]), (SET, [64512])]) + next_hop("192.0.2.10")
            + local_pref(2**31 + 5) + med(2**32 - 1) + communities((64510 << 16) | 7)),
        (1, origin(0) + path([(SEQ, [BIG])]) + mp_reach_abbreviated(["2001:db8::10", "fe80::10"])),
        (2, origin(2) + path([(SEQ, [196608, 64496])]) + mp_reach_abbreviated(["192.0.2.11"])
            + aggregator(196608, "255.255.255.255")),
    ]))
    records.append(rib(4, 1, "2001:db8:300::/44", [
        (1, origin(0) + path([(SEQ, [BIG, 64496])]) + mp_reach_abbreviated(["2001:db8::10"]) + atomic()),
        (0, origin(0) + path([(SEQ, [64510])])),
    ]))
    # Multicast and RIB_GENERIC: parsed, not printed by bgpdump.
    records.append(rib(3, 2, "233.252.0.0/24", [(0, origin(0) + path([(SEQ, [64510])]) + next_hop("192.0.2.10"))]))
    records.append(rib(6, 3, "192.0.2.0/24", [(0, origin(0) + path([(SEQ, [64510])]) + next_hop("192.0.2.10"))],
                       generic=(1, 1)))
    # RFC 8050 ADD-PATH RIB entries.
    records.append(rib(10, 4, "2001:db8:400::/48", [
        (1, origin(0) + path([(SEQ, [BIG])]) + mp_reach_abbreviated(["2001:db8::10"])),
        (1, origin(0) + path([(SEQ, [BIG, 64499])]) + mp_reach_abbreviated(["2001:db8::11"])),
    ], add_path=True))
    records.append(rib(8, 5, "100.64.1.0/24", [
        (2, origin(0) + path([(SEQ, [196608])]) + next_hop("192.0.2.11")),
    ], add_path=True))

    # BGP4MP state changes (RFC 6396 4.4.1, 4.4.4), plain and extended timestamp.
    records.append(state(0, 64496, "192.0.2.1", 1, 2))
    records.append(state(0, 64496, "2001:db8::1", 5, 6))
    records.append(state(5, BIG, "192.0.2.3", 6, 1))
    records.append(state(5, BIG, "2001:db8::3", 3, 4, et_us=42))

    # Messages that print nothing in -m mode.
    records.append(message(1, 64496, "192.0.2.1", bgp(4, b"")))
    records.append(message(1, 64496, "192.0.2.1", bgp(1, struct.pack(">BHHIB", 4, 64496, 90, 0xC0000201, 0))))
    records.append(message(1, 64496, "192.0.2.1", bgp(3, bytes([6, 2]))))

    # 2-octet MESSAGE: withdrawals and announcements with an AS4_PATH/AS4_AGGREGATOR merge.
    records.append(message(1, 64496, "192.0.2.1", update(
        withdrawn=prefix("198.18.0.0/15") + prefix("10.0.0.0/8"),
        attrs=origin(0) + path([(SEQ, [64496, 23456, 23456, 64497])], four=False) + next_hop("192.0.2.1")
            + aggregator(23456, "192.0.2.77", four=False)
            + as4_path([(SEQ, [BIG, 196608, 64497])]) + as4_aggregator(BIG, "192.0.2.78")
            + communities((64496 << 16) | 100),
        nlri=prefix("192.0.2.0/24") + prefix("198.51.100.128/25") + prefix("0.0.0.0/0"))))
    # AS4_PATH ignored: AGGREGATOR is not AS_TRANS (RFC 6793 4.2.3).
    records.append(message(1, 64496, "192.0.2.1", update(
        attrs=origin(0) + path([(SEQ, [64496, 23456])], four=False) + next_hop("192.0.2.1")
            + aggregator(64496, "192.0.2.1", four=False) + as4_path([(SEQ, [BIG])])
            + as4_aggregator(BIG, "192.0.2.78"),
        nlri=prefix("203.0.113.64/26"))))
    # MESSAGE_AS4 over IPv6: MP_REACH with global + link-local next hop, MED/LOCAL_PREF.
    records.append(message(4, BIG, "2001:db8::3", update(
        attrs=origin(0) + path([(SEQ, [BIG, 64496]), (SET, [64497, 64498])]) + med(5) + local_pref(50)
            + mp_reach(2, 1, ["2001:db8::3", "fe80::3"], prefix("2001:db8:500::/48") + prefix("2001:db8:501::/64")))))
    # MP_UNREACH IPv6 and MP_REACH IPv6 with an IPv4 next hop.
    records.append(message(4, BIG, "2001:db8::3", update(
        attrs=mp_unreach(2, 1, prefix("2001:db8:500::/48") + prefix("::/0")))))
    records.append(message(4, BIG, "192.0.2.3", update(
        attrs=origin(0) + path([(SEQ, [BIG])]) + mp_reach(2, 1, ["192.0.2.3"], prefix("2001:db8:600::/48")))))
    # IPv4 NLRI in MP_REACH with IPv4 and IPv6 (RFC 8950) next hops; large LOCAL_PREF/MED.
    records.append(message(4, BIG, "192.0.2.3", update(
        attrs=origin(0) + path([(SEQ, [BIG])]) + local_pref(2**31 + 1) + med(3000000000)
            + mp_reach(1, 1, ["192.0.2.3"], prefix("198.51.100.0/24")))))
    records.append(message(4, BIG, "2001:db8::3", update(
        attrs=origin(0) + path([(SEQ, [BIG])]) + mp_reach(1, 1, ["2001:db8::3"], prefix("203.0.113.0/24")))))
    # Multicast MP_REACH / MP_UNREACH (SAFI 2), IPv4 and IPv6.
    records.append(message(4, BIG, "192.0.2.3", update(
        attrs=origin(0) + path([(SEQ, [BIG])]) + mp_reach(1, 2, ["192.0.2.3"], prefix("233.252.0.0/24")))))
    records.append(message(4, BIG, "2001:db8::3", update(
        attrs=origin(0) + path([(SEQ, [BIG])]) + mp_reach(2, 2, ["2001:db8::3"], prefix("ff3e:db8::/32")))))
    records.append(message(4, BIG, "2001:db8::3", update(attrs=mp_unreach(2, 2, prefix("ff3e:db8::/32")))))
    # Confederation segments in a 4-octet path.
    records.append(message(4, BIG, "192.0.2.3", update(
        attrs=origin(2) + path([(CSET, [65010, 65011]), (CSEQ, [65012]), (SEQ, [BIG])]) + next_hop("192.0.2.3"),
        nlri=prefix("203.0.113.128/25"))))

    # Locally sent messages (MESSAGE_LOCAL, MESSAGE_AS4_LOCAL).
    records.append(message(6, 64496, "192.0.2.1", update(
        withdrawn=prefix("198.18.0.0/15"),
        attrs=origin(0) + path([(SEQ, [64500])], four=False) + next_hop("192.0.2.254"),
        nlri=prefix("192.0.2.0/25"))))
    records.append(message(6, 64496, "192.0.2.1", update(attrs=mp_unreach(2, 1, prefix("2001:db8:700::/48")))))
    records.append(message(7, BIG, "2001:db8::3", update(
        attrs=origin(0) + path([(SEQ, [64500])]) + mp_reach(2, 1, ["2001:db8::ffff"], prefix("2001:db8:800::/48")))))

    # RFC 8050 ADD-PATH messages.
    records.append(message(8, 64496, "192.0.2.1", update(
        withdrawn=prefix("198.18.0.0/15", 7),
        attrs=origin(0) + path([(SEQ, [64496])], four=False) + next_hop("192.0.2.1"),
        nlri=prefix("192.0.2.0/24", 1) + prefix("192.0.2.0/24", 2))))
    records.append(message(9, BIG, "2001:db8::3", update(
        attrs=origin(0) + path([(SEQ, [BIG])])
            + mp_reach(2, 1, ["2001:db8::3"], prefix("2001:db8:900::/48", 11) + prefix("2001:db8:900::/48", 12)))))
    records.append(message(9, BIG, "2001:db8::3", update(attrs=mp_unreach(2, 1, prefix("2001:db8:900::/48", 11)))))
    records.append(message(10, 64496, "192.0.2.1", update(
        withdrawn=prefix("198.18.0.0/15", 8), attrs=mp_unreach(2, 1, prefix("2001:db8:a00::/48", 9)))))
    records.append(message(9, BIG, "192.0.2.3", update(withdrawn=prefix("100.64.2.0/24", 3)), et_us=500000))
    records.append(message(11, BIG, "192.0.2.3", update(
        attrs=origin(0) + path([(SEQ, [64500])]) + next_hop("192.0.2.254"), nlri=prefix("100.64.2.0/24", 3))))

    # BGP4MP_ET messages.
    records.append(message(4, BIG, "192.0.2.3", update(
        attrs=origin(0) + path([(SEQ, [BIG])]) + next_hop("192.0.2.3"), nlri=prefix("100.64.3.0/24")), et_us=999999))
    records.append(message(7, BIG, "192.0.2.3", update(withdrawn=prefix("100.64.3.0/24")), et_us=7))
    return records


if __name__ == "__main__":
    with bz2.open("synthetic.mrt.bz2", "wb") as f:
        f.write(b"".join(build()))
