#!/usr/bin/env python3
"""Build seed corpora for the fuzz targets from the repository's test data.

- decode_message / format_messages / decode_update / decode_open / session /
  session_all_capabilities: the raw messages of ExaBGP's QA corpus (tests/data/exabgp-qa),
  each prefixed as the target expects, plus a Hard Reset NOTIFICATION nesting Hard Resets.
- mrt_records / path_attributes: the first records of each MRT file in tests/data/mrt.
- bfd_codec / bfd_session: BFD Control packets built here (RFC 5880 4.1): every state,
  Poll and Final, simple password and keyed MD5/SHA1 sections; for the session target,
  operation sequences that bring each session Up, renegotiate and time out.
- bmp_messages: BMP streams wrapping those messages (OPENs in Peer Ups, UPDATEs in Route
  Monitoring, NOTIFICATIONs in Peer Downs) with an Initiation, statistics, Route Mirroring
  and a Termination; bmp_client: a few operation sequences (connect, peers, a flood).
"""
import glob, gzip, os, sys

root = os.path.dirname(os.path.abspath(__file__))
data = os.path.join(root, "..", "tests", "data")
corpus = os.path.join(root, "corpus")


def put(target, name, blob):
    d = os.path.join(corpus, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(blob)


messages = []
for path in sorted(glob.glob(os.path.join(data, "exabgp-qa", "encoding", "*.ci"))):
    for line in open(path, encoding="utf-8", errors="replace"):
        parts = line.strip().split(":")
        if len(parts) >= 6 and parts[1] == "raw":
            try:
                messages.append(bytes.fromhex("".join(parts[2:])))
            except ValueError:
                pass

for i, msg in enumerate(messages):
    msg_type, body = msg[18:19], msg[19:]
    put("decode_message", f"exabgp-{i}", b"\x01" + msg)
    put("format_messages", f"exabgp-{i}", b"\x03" + msg)
    put("session", f"exabgp-{i}", bytes([min(len(msg), 255)]) + msg[:255])
    put("session_all_capabilities", f"exabgp-{i}", bytes([min(len(msg), 255)]) + msg[:255])
    if msg_type == b"\x02":
        put("decode_update", f"exabgp-{i}", b"\x01" + body)
        if len(body) >= 4:
            wlen = int.from_bytes(body[0:2], "big")
            alen_at = 2 + wlen
            if alen_at + 2 <= len(body):
                alen = int.from_bytes(body[alen_at:alen_at + 2], "big")
                put("path_attributes", f"exabgp-{i}", b"\x01" + body[alen_at + 2:alen_at + 2 + alen])
    elif msg_type == b"\x01":
        put("decode_open", f"exabgp-{i}", body)

# Cease/Hard Reset whose data is Cease/Hard Reset again, to the largest extended message.
nested = b"\x06\x09" * ((65535 - 19) // 2)
hard_reset = b"\xff" * 16 + (19 + len(nested)).to_bytes(2, "big") + b"\x03" + nested
put("format_messages", "hard-reset-nested", b"\x03" + hard_reset)

for path in sorted(glob.glob(os.path.join(data, "mrt", "*"))):
    if path.endswith(".bgpdump-m.gz"):
        continue
    raw = gzip.open(path).read() if path.endswith(".gz") else open(path, "rb").read()
    # A few records from the start are enough to teach the fuzzer the shapes.
    off, n = 0, 0
    while off + 12 <= len(raw) and n < 64:
        length = int.from_bytes(raw[off + 8:off + 12], "big")
        off += 12 + length
        n += 1
    put("mrt_records", os.path.basename(path), raw[:off])


def bfd_packet(state, diag=0, flags=0, mult=3, my=0x11, your=0, tx=300000, rx=300000, auth=b""):
    """A BFD Control packet; flags are the P/F/C/D bits of the second octet."""
    if auth:
        flags |= 0x04
    head = bytes([(1 << 5) | diag, (state << 6) | flags, mult, 24 + len(auth)])
    body = b"".join(v.to_bytes(4, "big") for v in (my, your, tx, rx, 0))
    return head + body + auth


simple = bytes([1, 3 + 6, 1]) + b"secret"
md5 = bytes([2, 24, 1, 0]) + (7).to_bytes(4, "big") + bytes(16)
sha1 = bytes([4, 28, 1, 0]) + (7).to_bytes(4, "big") + bytes(20)
bfd = {
    "down": bfd_packet(1),
    "init": bfd_packet(2, your=0x22),
    "up-poll": bfd_packet(3, flags=0x20, your=0x22, tx=100000, rx=100000),
    "up-final": bfd_packet(3, flags=0x10, your=0x22),
    "admindown": bfd_packet(0, diag=7),
    "detect-expired": bfd_packet(1, diag=1, mult=1),
    "simple-password": bfd_packet(1, auth=simple),
    "keyed-md5": bfd_packet(1, auth=md5),
    "keyed-sha1": bfd_packet(1, auth=sha1),
    "demand": bfd_packet(3, flags=0x02, your=0x22),
    "padded": bfd_packet(1) + bytes(8),
}
for name, p in bfd.items():
    put("bfd_codec", name, p)


def fields(state, your=True, poll=False, final=False, auth=False, tx=300000, rx=300000):
    """Operation 1 of bfd_session: a packet to session 0 built from 12 bytes of fields."""
    f0 = state | (0x80 if your else 0) | (0x04 if poll else 0) | (0x08 if final else 0)
    f0 |= 0x20 if auth else 0
    return bytes([f0, 0, 3, 0x21]) + (tx // 16).to_bytes(3, "big") + (rx // 16).to_bytes(3, "big") + bytes([0, 255])


for which in range(3):
    op = which << 4
    auth = which == 1
    bring_up = (bytes([op | 1]) + fields(1, your=False, auth=auth)
                + bytes([op | 1]) + fields(3, auth=auth)
                + bytes([op | 1]) + fields(3, final=True, auth=auth))
    renegotiate = bytes([op | 6, 0x03, 0xe8, 0x03, 0xe8, 5]) + bytes([3, 0, 100]) + bytes([op | 1]) + fields(3, poll=True, auth=auth)
    timeout = bytes([3, 0x27, 0x10])
    admin = bytes([op | 4, 3, 0x03, 0xe8, op | 5])
    raw = bytes([op, len(bfd["down"]), 255]) + bfd["down"]
    put("bfd_session", f"session{which}-up", bring_up)
    put("bfd_session", f"session{which}-renegotiate", bring_up + renegotiate)
    put("bfd_session", f"session{which}-timeout", bring_up + timeout + bring_up)
    put("bfd_session", f"session{which}-admin", bring_up + admin + bring_up)
    put("bfd_session", f"session{which}-raw", raw + bring_up)


def bmp(msg_type, body):
    return bytes([3]) + (6 + len(body)).to_bytes(4, "big") + bytes([msg_type]) + body


def per_peer(flags=0):
    return (bytes([0, flags]) + bytes(8) + bytes(12) + bytes([192, 0, 2, 1])
            + (65001).to_bytes(4, "big") + bytes([10, 0, 0, 1])
            + (1700000000).to_bytes(4, "big") + bytes(4))


def tlv(kind, value):
    return kind.to_bytes(2, "big") + len(value).to_bytes(2, "big") + value


opens = [m for m in messages if m[18:19] == b"\x01"]
updates = [m for m in messages if m[18:19] == b"\x02"]
notifications = [m for m in messages if m[18:19] == b"\x03"]
init = bmp(4, tlv(1, b"bgpd") + tlv(2, b"node-1"))
term = bmp(5, tlv(1, b"\x00\x02") + tlv(0, b"bye"))
stats = bmp(1, per_peer() + (2).to_bytes(4, "big") + tlv(0, bytes(4)) + tlv(9, b"\x00\x01\x01" + bytes(8)))
mirror = bmp(6, per_peer() + tlv(0, updates[0] if updates else b"") + tlv(1, b"\x00\x01"))
for i in range(0, max(len(updates), 1), 8):
    stream = init
    if len(opens) >= 2:
        up_body = per_peer() + bytes(12) + bytes([192, 0, 2, 254]) + (179).to_bytes(2, "big") \
            + (40000).to_bytes(2, "big") + opens[i % len(opens)] + opens[(i + 1) % len(opens)] + tlv(0, b"peer")
        stream += bmp(3, up_body)
    for j, u in enumerate(updates[i:i + 8]):
        stream += bmp(0, per_peer(0x40 if j % 2 else 0) + u)
    stream += stats + mirror
    if notifications:
        stream += bmp(2, per_peer() + b"\x03" + notifications[i % len(notifications)])
    stream += bmp(2, per_peer() + b"\x02\x00\x05") + term
    put("bmp_messages", f"stream-{i}", bytes([i % 16]) + stream)

# bmp_client: start, peers up, connect, flood, deliver, timers, close, reconnect.
for name, ops in {
    "connect-and-flood": [0x00, 0x02, 0x12, 0x06, 0x14, 0x0f, 0x54, 0x0f, 0x0b, 0x08, 0x0b, 0x06, 0x0f],
    "overflow": [0x02, 0x00, 0x06, 0xf4, 0xf4, 0xf4, 0x0f, 0x08, 0x0b, 0x06, 0x0f, 0x01, 0x0f],
    "stall-and-stats": [0x02, 0x00, 0x06, 0x0f, 0x14, 0xf0 | 0x0a, 0xf0 | 0x0a, 0x05, 0x0f, 0x03, 0x0f],
}.items():
    put("bmp_client", name, bytes(ops))

print(f"seeded {len(messages)} messages, the MRT files, BFD packets and BMP streams into {corpus}", file=sys.stderr)
