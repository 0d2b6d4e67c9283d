#!/usr/bin/env python3
"""Differential test: the same command sequences to kvcache and to Debian's
memcached 1.6, replies compared byte for byte. This is how "as memcached
does" is checked.

usage: differential.py KVCACHE_BINARY [MEMCACHED_BINARY]

Each case runs on a fresh connection to each server (both started here, on
loopback ports of their own) with keys of its own, in the same order, so
that CAS values match too. A case ends with "mn" where the connection stays
open, so the reply is complete when "MN" comes back. Exit 77 (meson: skipped)
only when memcached is not installed.
"""
import os
import re
import shutil
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvtest  # noqa: E402

CASES = [
    # storage and retrieval
    b"set a 5 0 3\r\nabc\r\nget a\r\ngets a\r\nget a nope a\r\n",
    b"add b 0 0 1\r\nx\r\nadd b 0 0 1\r\ny\r\nget b\r\nreplace b 3 0 2\r\nzz\r\nreplace nob 0 0 1\r\nq\r\ngets b\r\n",
    b"set c 0 0 2\r\nab\r\nappend c 9 9 2\r\ncd\r\nprepend c 0 0 2\r\nxy\r\ngets c\r\nappend noc 0 0 1\r\nx\r\nprepend noc 0 0 1\r\nx\r\n",
    b"set d 0 0 1\r\n1\r\ngets d\r\ncas d 0 0 1 999\r\n2\r\ncas d 0 0 1 0\r\n3\r\ncas nod 0 0 1 5\r\n4\r\n",
    b"set e 0 0 1\r\n1\r\ngets e\r\n",  # the cas of e is then used literally below
    b"set f 4294967295 0 1\r\nx\r\nget f\r\nset f2 4294967296 0 1\r\nx\r\nget f2\r\nset f3 -1 0 1\r\nx\r\n",
    b"set g 0 0 0\r\n\r\nget g\r\nincr g 1\r\n",
    b"set h 0 0 2 noreply\r\nhi\r\nget h\r\nadd h 0 0 1 noreply\r\nx\r\nget h\r\n",
    b"set big 0 0 5\r\n12345\r\nget big\r\nset big 0 0 3\r\n1234\r\nget big\r\n",  # bad data chunk
    b"set neg 0 0 -1\r\nget neg\r\n",
    b"set nn 0 0 abc\r\nx\r\n",
    b"set exp 0 -1 1\r\nx\r\nget exp\r\ntouch exp 10\r\n",
    b"set ttl 0 100 1\r\nx\r\nget ttl\r\ntouch ttl 0\r\ntouch nottl 10\r\ngat 100 ttl nottl\r\ngats 0 ttl\r\ngat abc ttl\r\n",
    b"set abs 0 1000000000 1\r\nx\r\nget abs\r\n",  # absolute time in the past
    # arithmetic
    b"set n 0 0 2\r\n10\r\nincr n 5\r\ndecr n 6\r\nget n\r\ndecr n 100\r\nget n\r\nincr n 18446744073709551615\r\nincr n 1\r\n",
    b"set m 0 0 3\r\nabc\r\nincr m 1\r\nincr nom 1\r\nincr m -1\r\nincr m x\r\ndecr m 1 noreply\r\n",
    b"set w 0 0 20\r\n18446744073709551615\r\nincr w 1\r\nget w\r\nset w2 0 0 21\r\n184467440737095516150\r\nincr w2 1\r\n",
    # delete
    b"set del 0 0 1\r\nx\r\ndelete del\r\ndelete del\r\ndelete del 0\r\ndelete del noreply\r\ndelete del 0 noreply\r\ndelete del 5\r\ndelete del 0 0\r\ndelete\r\ndelete a b c d\r\n",
    # flush_all (delayed: nothing goes)
    b"set fl 0 0 1\r\nx\r\nflush_all 100\r\nget fl\r\nflush_all abc\r\n",
    # errors and odd lines
    b"bogus\r\n\r\nx\r\nGET a\r\nge\r\nget\r\ngets\r\nsetx a 0 0 1\r\nset a 0 0\r\nset a 0 0 1 2 3\r\nincr a\r\ntouch a\r\nverbosity\r\nverbosity 1\r\nverbosity x\r\nverbosity 1 noreply\r\n",
    b"get " + b"k" * 251 + b"\r\nset " + b"k" * 251 + b" 0 0 1\r\nx\r\nget " + b"k" * 250 + b"\r\n",
    b"get a " + b"k" * 251 + b" b\r\n",
    b"get " + b" ".join(b"k%d" % i for i in range(60)) + b"\r\n",
    b"set sp 0 0 1\r\nx\r\nget  sp   sp \r\nget sp\n",
    b"stats detail\r\nstats detail on\r\nstats detail off\r\nstats nosuch\r\nstats sizes\r\n",
    # lru_crawler: what answers at once (a dump's END comes from memcached's
    # crawler thread, after what follows it)
    b"lru_crawler\r\nlru_crawler foo\r\nlru_crawler metadump\r\nlru_crawler metadump 0\r\nlru_crawler metadump 64\r\nlru_crawler metadump bogus\r\nlru_crawler crawl 99\r\nlru_crawler crawl hash\r\nlru_crawler tocrawl 5\r\nlru_crawler tocrawl x\r\nlru_crawler sleep 10\r\nlru_crawler sleep 2000000\r\nlru_crawler sleep x\r\nlru_crawler enable\r\n",
    b"version\r\nshutdown\r\n",
    b"flush_all 0 noreply\r\nflush_all noreply\r\n",
    b"cas\r\ncas a 0 0 1\r\nincr\r\ndecr a\r\nappend a\r\n",
    # large values and the item size limit
    b"set v1 0 0 1048000\r\n" + b"v" * 1048000 + b"\r\nget v1\r\n",
    b"set v2 0 0 1048576\r\n" + b"v" * 1048576 + b"\r\nget v2\r\n",
    b"set v3 0 0 1048576 noreply\r\n" + b"v" * 1048576 + b"\r\nget v3\r\n",
    b"set v4 0 0 1\r\nx\r\nset v4 0 0 2000000\r\n" + b"v" * 2000000 + b"\r\nget v4\r\n",
    # meta commands
    b"ms ma 2\r\nhi\r\nmg ma v\r\nmg ma\r\nmg ma s f t v\r\nmg nomma v\r\nmg nomma v q\r\nmg ma k O123 v\r\nmg nomma k O123\r\n",
    b"ms mb 3 T100 F7 c k O9\r\nabc\r\nmg mb v f t c s\r\nms mb 3 MA\r\ndef\r\nmg mb v\r\nms mb 1 MP\r\nZ\r\nmg mb v\r\nms mb 1 ME\r\nx\r\nms nomb 1 MR\r\nx\r\nms nomb 1 MA\r\nx\r\n",
    b"ms mc 1\r\nx\r\nmg mc c\r\nms mc 1 C1\r\ny\r\nms mc 1 q\r\nz\r\nms mc 1 MX\r\nz\r\nms mc 1 C99 q\r\nw\r\nmg mc v\r\n",
    b"ms md 1\r\nx\r\nmd md q\r\nmd md\r\nmd md O5 k\r\nms md 1\r\nx\r\nmd md C1\r\nmd md I T30\r\nmg md v c\r\nmg md v\r\n",
    b"ma mx\r\nma mx N0 J5\r\nma mx\r\nma mx v\r\nma mx MD D3 v t c\r\nma mx MI D10 v k O1\r\nma mx q\r\nma mx MZ\r\nms my 1\r\nz\r\nma my\r\nma mx C1\r\n",
    b"mg mz N30 v c t\r\nmg mz v c t\r\nmg mz N30 v\r\n",
    b"mg\r\nmg a a\r\nmg a v v\r\nmg a x\r\nms a\r\nms a x\r\nms a -1\r\nms a 1 T\r\nx\r\nmd a Cx\r\nma a Dx\r\nma a Jx N0\r\nmx a\r\nm\r\n",
    b"ms b64 2 b\r\nhi\r\nms Ymlu 3 b k\r\nbin\r\nmg Ymlu b v k\r\nmg Ymlu v\r\nmg bin v\r\nmd Ymlu b\r\nmg !!!! b v\r\n",
    b"mg ma " + b" ".join(b"O%d" % i for i in range(20)) + b"\r\n",
    b"mg ma O" + b"x" * 40 + b"\r\nmg nomma O" + b"x" * 40 + b"\r\n",
    b"mn\r\nmn\r\n",
    b"ms mh 1\r\nx\r\nmg mh h l v\r\nmg mh h v\r\nmg mh u h\r\n",
    # cache_memlimit (MiB; left at -m 64 for the cases after it)
    b"cache_memlimit\r\ncache_memlimit abc\r\ncache_memlimit 7\r\ncache_memlimit -5\r\n"
    b"cache_memlimit 1000000001\r\ncache_memlimit 4294967296\r\ncache_memlimit 7 noreply\r\n"
    b"cache_memlimit noreply\r\ncache_memlimit 100 noreply extra\r\ncache_memlimit 12abc\r\n"
    b"cache_memlimit 32 x\r\ncache_memlimit 8 noreply\r\ncache_memlimit 64\r\n",
]

# Cases that end the connection (no "mn" sentinel): the reply is whatever
# comes before the close.
CLOSING = [
    b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    b"POST /x HTTP/1.0\r\n\r\n",
    b"x" * 3000,
    b"quit\r\nget a\r\n",
    b"set q 0 0 1\r\nx\r\nquit\r\n",
    b"set " + b"q" * 2500 + b" 0 0 1\r\n",
    b"get " + b"q " * 1500 + b"\r\n",
]


def run(port, payload, sentinel):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(payload + (b"mn\r\n" if sentinel else b""))
    data = b""
    deadline = time.time() + 5
    while time.time() < deadline:
        try:
            chunk = s.recv(1 << 20)
        except socket.timeout:
            break
        except ConnectionResetError:
            data += b"<reset>"
            break
        if not chunk:
            data += b"<closed>"
            break
        data += chunk
        # The sentinel's MN, after those of the case's own "mn" commands.
        if sentinel and data.endswith(b"MN\r\n") and \
                data.count(b"MN\r\n") > payload.count(b"mn\r\n"):
            break
    s.close()
    return data


def conns_listing(port):
    """"stats conns" with a known set of clients, normalized: descriptors
    become L, C1, C2... in order of appearance, ports P, seconds N. One
    client has sent nothing, one is inside a data block, one is idle after
    a command, and the one asking. Asks again (up to 5 s) until the server
    has seen all of that: the partial data block and closes of earlier
    connections reach it asynchronously."""
    quiet = socket.create_connection(("127.0.0.1", port), timeout=5)
    partial = socket.create_connection(("127.0.0.1", port), timeout=5)
    partial.sendall(b"set cl 0 0 10\r\nabc")
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    idle.sendall(b"mn\r\n")
    assert idle.recv(100) == b"MN\r\n"
    asker = socket.create_connection(("127.0.0.1", port), timeout=5)
    deadline = time.time() + 5
    listing = b""
    while time.time() < deadline:
        asker.sendall(b"stats conns\r\nmn\r\n")
        data = b""
        while not data.endswith(b"MN\r\n"):
            data += asker.recv(65536)
        listing = data[:-len(b"MN\r\n")]
        names = {}

        def fd(m):
            return names.setdefault(m.group(1), b"C%d" % len(names))
        listing = re.sub(rb"STAT (\d+):", lambda m: b"STAT " + fd(m) + b":", listing)
        listing = re.sub(rb":(\d+)\r\n", b":P\r\n", listing)
        listing = re.sub(rb"secs_since_last_cmd \d+", b"secs_since_last_cmd N", listing)
        if listing.count(b"listen_addr") == 4 and b"conn_nread" in listing:
            break
    for s in (quiet, partial, idle, asker):
        s.close()
    return listing


def show(b):
    if len(b) > 300:
        return repr(b[:150]) + "...(%d bytes)..." % len(b) + repr(b[-100:])
    return repr(b)


def main():
    kv_binary = kvtest.kvcache_binary("differential.py KVCACHE_BINARY [MEMCACHED_BINARY]")
    if kv_binary is None:
        return 1
    mc_binary = sys.argv[2] if len(sys.argv) > 2 else shutil.which("memcached") or "/usr/bin/memcached"
    if not os.path.exists(mc_binary):
        kvtest.skip("memcached", " (apt-get install memcached); "
                    "the differential test needs it as the reference")
    kv, kv_port = kvtest.start_kvcache(kv_binary, "-t", "2", "-m", "64")
    mc, mc_port = kvtest.start_memcached(mc_binary, "-t", "2", "-m", "64")
    failures = 0
    for sentinel, cases in ((True, CASES), (False, CLOSING)):
        for case in cases:
            ours = run(kv_port, case, sentinel)
            theirs = run(mc_port, case, sentinel)
            if ours != theirs:
                failures += 1
                print("MISMATCH for", show(case))
                print("  kvcache:  ", show(ours))
                print("  memcached:", show(theirs))
    # "stats conns": the same lines in the same order, but for the numbers.
    ours, theirs = conns_listing(kv_port), conns_listing(mc_port)
    if ours != theirs or b"conn_new_cmd" not in ours or b"conn_parse_cmd" not in ours:
        failures += 1
        print("MISMATCH for stats conns")
        print("  kvcache:  ", show(ours))
        print("  memcached:", show(theirs))
    # The first line of "me" is ours to shape (no slab classes), but the
    # key and the fields must be there.
    me = run(kv_port, b"set mekey 0 0 1\r\nx\r\nme mekey\r\nme nokey\r\n", True)
    if not re.match(rb"STORED\r\nME mekey exp=-1 la=\d+ cas=\d+ fetch=no cls=\d+ size=\d+\r\nEN\r\nMN\r\n$", me):
        failures += 1
        print("bad me reply:", show(me))
    assert kv.poll() is None, "kvcache died"
    total = len(CASES) + len(CLOSING) + 2
    print("%d of %d cases match memcached" % (total - failures, total))
    return 1 if failures else 0


if __name__ == "__main__":
    # No hard limit: this test never had one (meson's timeout applies).
    kvtest.run_script(main, hard_limit=None)
