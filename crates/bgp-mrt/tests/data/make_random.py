#!/usr/bin/env python3
"""Randomised differential check against the real bgpdump (a development tool, not run by
cargo test since bgpdump is not a build dependency).

    ./differential.sh [COUNT]      # needs bgpdump and a release build of bgpctl

Each seed writes well-formed random MRT records (every BGP4MP message subtype incl.
LOCAL/ADD-PATH/ET, state changes, TABLE_DUMP, TABLE_DUMP_V2 with mixed peers and
ADD-PATH, random AS paths with sets and confederations, communities, MP_REACH/UNREACH
of IPv4/IPv6 unicast and multicast with 4/16/32-octet next hops, AS4_PATH merges).
AS4_PATH merges are generated only where bgpdump's merge and RFC 6793's agree (see
README: bgpdump repeats the first AS_PATH segment when the merge spans several).
"""
import random, sys, bz2, ipaddress
from make_synthetic import *
r = random.Random(int(sys.argv[1]))
def rasn(four):
    return r.choice([1, 23456, 64496, 65535, r.randrange(1, 65536)] + ([4200000000, 196608, r.randrange(65536, 2**32)] if four else []))
def rsegs(four, confed=True):
    segs=[]
    for _ in range(r.randrange(0,4)):
        kind=r.choice([SEQ,SEQ,SET]+([CSEQ,CSET] if confed else []))
        segs.append((kind,[rasn(four) for _ in range(r.randrange(1,5))]))
    return segs
def rv4pfx():
    l=r.randrange(0,33); a=r.getrandbits(32)
    net=ipaddress.ip_network((a,l),strict=False); return str(net)
def rv6pfx():
    l=r.randrange(0,129); a=r.getrandbits(128)
    return str(ipaddress.ip_network((a,l),strict=False))
def rv4(): return str(ipaddress.IPv4Address(r.getrandbits(32)))
def rv6(): return str(ipaddress.IPv6Address(r.choice([r.getrandbits(128), 0x20010db8<<96 | r.getrandbits(16), (0xffff<<32)|r.getrandbits(32), r.getrandbits(32), 0x20010db8<<96])))
def rattrs(four, nh=True):
    a=b""
    if r.random()<0.9: a+=origin(r.randrange(0,3))
    merge = not four and r.random()<0.3
    if merge:
        n=r.randrange(1,8)
        a+=path([(SEQ,[rasn(False) for _ in range(n)])]+([(SET,[rasn(False)])] if r.random()<0.3 else []), False)
    elif r.random()<0.9: a+=path(rsegs(four), four)
    if nh and r.random()<0.9: a+=next_hop(rv4())
    if r.random()<0.5: a+=med(r.getrandbits(32))
    if r.random()<0.5: a+=local_pref(r.getrandbits(32))
    if r.random()<0.2: a+=atomic()
    if r.random()<0.3: a+=aggregator(rasn(four) or 1, rv4(), four)
    if r.random()<0.5: a+=communities(*[r.choice([NO_EXPORT,NO_ADVERTISE,LOCAL_AS,r.getrandbits(32)]) for _ in range(r.randrange(1,6))])
    if merge:
        m=r.randrange(1,n+1)
        a+=as4_path([(SEQ,[r.choice([BIG,196608,r.getrandbits(32) or 1]) for _ in range(m)])]+([(SET,[BIG])] if r.random()<0.3 else []))
    if not four and r.random()<0.2: a+=as4_aggregator(r.randrange(1,2**32), rv4())
    return a
recs=[]
for i in range(150):
    kind=r.randrange(0,6)
    four=r.random()<0.5
    addp=r.random()<0.25
    sub={(False,False):1,(True,False):4,(False,True):8,(True,True):9}[(four,addp)]
    if r.random()<0.15: sub={1:6,4:7,8:10,9:11}[sub]
    peer=r.choice([rv4(), "2001:db8::%x"%r.randrange(1,999)])
    pid=lambda: r.getrandbits(32) if addp else None
    et = r.randrange(0,1000000) if r.random()<0.2 else None
    if kind==0:
        w=b"".join(prefix(rv4pfx(),pid()) for _ in range(r.randrange(0,4)))
        n=b"".join(prefix(rv4pfx(),pid()) for _ in range(r.randrange(1,4)))
        recs.append(message(sub, rasn(four) or 1, peer, update(withdrawn=w, attrs=rattrs(four), nlri=n), et_us=et))
    elif kind==1:
        afi=r.choice([1,2]); safi=r.choice([1,1,2])
        hops=r.choice([[rv4()],[rv6()],[rv6(),"fe80::%x"%r.randrange(1,99)]])
        n=b"".join(prefix(rv4pfx() if afi==1 else rv6pfx(),pid()) for _ in range(r.randrange(1,4)))
        recs.append(message(sub, rasn(four) or 1, peer, update(attrs=rattrs(four,nh=False)+mp_reach(afi,safi,hops,n)), et_us=et))
    elif kind==2:
        afi=r.choice([1,2]); safi=r.choice([1,1,2])
        n=b"".join(prefix(rv4pfx() if afi==1 else rv6pfx(),pid()) for _ in range(r.randrange(1,4)))
        recs.append(message(sub, rasn(four) or 1, peer, update(attrs=mp_unreach(afi,safi,n)), et_us=et))
    elif kind==3:
        st=r.choice([0,5])
        recs.append(state(st, rasn(st==5) or 1, peer, r.randrange(0,9), r.randrange(0,9), et_us=et))
    elif kind==4:
        v6=r.random()<0.5
        recs.append(table_dump(2 if v6 else 1, rv6pfx() if v6 else rv4pfx(), "2001:db8::9" if v6 else rv4(), rasn(False) or 1,
            rattrs(False, nh=not v6) + (mp_reach_abbreviated(r.choice([[rv6()],[rv6(),"fe80::1"]])) if v6 else b"")))
    else:
        peers=[(rv4(), rasn(False) or 1, False), ("2001:db8::%x"%r.randrange(1,99), rasn(True) or 1, True), (rv4(), rasn(True) or 1, True)]
        recs.append(peer_index(peers))
        for _ in range(r.randrange(1,3)):
            v6=r.random()<0.5; ap=r.random()<0.3
            ents=[]
            for _ in range(r.randrange(1,4)):
                a=rattrs(True, nh=not v6)
                if v6 or r.random()<0.3: a+=mp_reach_abbreviated(r.choice([[rv4()],[rv6()],[rv6(),"fe80::2"]]))
                ents.append((r.randrange(0,3), a))
            recs.append(rib((10 if ap else 4) if v6 else (8 if ap else 2), 0, rv6pfx() if v6 else rv4pfx(), ents, add_path=ap))
open(sys.argv[2], 'wb').write(b"".join(recs))
