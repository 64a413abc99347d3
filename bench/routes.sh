#!/usr/bin/env bash
# Route sets for the source BIRD of bench/run.sh, written as BIRD 2 `protocol static` route
# lines (one `route PREFIX blackhole [{ attributes }];` per route) on standard output.
#
#   bench/routes.sh same N           N /32s from 10.128.0.0 up, no attributes of their own:
#                                    one attribute set once the source BIRD exports them.
#   bench/routes.sh ris [COPIES]     the RIPE RIS table of 22 July 2002 (tests/data/mrt,
#                                    `bgpdump -m` rendering): the 112,826 routes of peer
#                                    193.203.0.1 (AS 1853) without AS_SETs, each with its
#                                    AS path, ORIGIN and MED. With COPIES > 1 the table is
#                                    replicated: copy K (1..COPIES-1) moves the first octet
#                                    by 23*K (mod 224, skipping 0, 10 and 127) and prepends
#                                    AS 64600+K, so every copy brings its own attribute sets;
#                                    a prefix already written is not written again.
#
# The source BIRD exports these over eBGP with its own AS prepended, so the device under
# test sees the table's AS paths behind AS 65001.
set -euo pipefail
cd "$(dirname "$0")/.."

case "${1:-}" in
    same)
        n=${2:?same needs a route count}
        awk -v n="$n" 'BEGIN {
            base = 10 * 16777216 + 128 * 65536
            for (i = 0; i < n; i++) {
                a = base + i
                printf "route %d.%d.%d.%d/32 blackhole;\n",
                    int(a / 16777216), int(a / 65536) % 256, int(a / 256) % 256, a % 256
            }
        }'
        ;;
    ris)
        copies=${2:-1}
        zcat tests/data/mrt/bview.20020722.2337.gz.bgpdump-m.gz | awk -F'|' -v copies="$copies" '
            # TABLE_DUMP|time|B|peer|peer AS|prefix|AS path|origin|next hop|local pref|MED|communities|...
            $1 ~ /^TABLE_DUMP/ && $4 == "193.203.0.1" && $7 !~ /[{(]/ {
                n++; prefix[n] = $6
                attrs = "bgp_origin = ORIGIN_" $8 ";"
                k = split($7, as, " ")
                for (i = k; i >= 1; i--) attrs = attrs " bgp_path.prepend(" as[i] ");"
                if ($11 != "0") attrs = attrs " bgp_med = " $11 ";"
                c = split($12, comm, " ")
                for (i = 1; i <= c; i++) { split(comm[i], ab, ":"); attrs = attrs " bgp_community.add((" ab[1] "," ab[2] "));" }
                attr[n] = attrs
            }
            END {
                for (k = 0; k < copies; k++) {
                    for (i = 1; i <= n; i++) {
                        p = prefix[i]
                        if (k > 0) {
                            dot = index(p, ".")
                            o = (substr(p, 1, dot - 1) + 23 * k) % 224
                            if (o == 0 || o == 10 || o == 127) continue
                            p = o substr(p, dot)
                        }
                        if (p in seen) continue
                        seen[p] = 1
                        extra = k > 0 ? " bgp_path.prepend(" (64600 + k) ");" : ""
                        printf "route %s blackhole { %s%s };\n", p, attr[i], extra
                    }
                }
            }'
        ;;
    *)
        sed -n '2,19p' "$0" >&2
        exit 2
        ;;
esac
