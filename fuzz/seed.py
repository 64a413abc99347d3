#!/usr/bin/env python3
"""Build seed corpora for the fuzz targets from the repository's test data.

- decode_message / format_messages / decode_update / decode_open / session /
  session_all_capabilities: the raw messages of ExaBGP's QA corpus (tests/data/exabgp-qa),
  each prefixed as the target expects, plus a Hard Reset NOTIFICATION nesting Hard Resets.
- mrt_records / path_attributes: the first records of each MRT file in tests/data/mrt.
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

print(f"seeded {len(messages)} messages and the MRT files into {corpus}", file=sys.stderr)
