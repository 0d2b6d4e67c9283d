#!/usr/bin/python3
"""kvcache driven by an unmodified memcached client library: pymemcache.

usage: pymemcache_test.py KVCACHE_BINARY

Run it with Debian's /usr/bin/python3 (python3-pymemcache is installed for
that interpreter). It starts its own kvcache instances on loopback ports of
their own (-p 0, the port is read from the log line) and checks:

  - the text protocol as pymemcache.client.base.Client uses it: set, get,
    get_many, gets + cas (success, conflict, missing key), add, replace,
    append, prepend, incr, decr, delete, touch, flush_all, with and without
    noreply (pymemcache's default for set is noreply=True);
  - flags through a serde (pickle_serde) round-tripping str, int and dict;
  - a 500 KiB value, and a value over -I (SERVER_ERROR object too large for
    cache, and the old value is gone, as memcached does);
  - expiry on the real clock (expire=2, gone after ~3.2 s);
  - the fields of stats() that client tooling reads;
  - 8 threads, one Client each, setting and reading overlapping keys for
    ~3 s: every value read is whole and belongs to its key;
  - eviction with -m 8: 30 MiB of 10 KiB values, evictions > 0,
    bytes <= limit_maxbytes, recent keys readable, server still answers;
  - the UDP frontend (-U): memcached's 8-byte frame header, set and get,
    a reply split over several datagrams, and a request datagram of 4 KiB
    (memcached accepts up to 64 KiB).

Exit 0 on success, 1 on failure, 77 only if pymemcache is not installed.
"""
import http.client
import json
import os
import random
import re
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvtest  # noqa: E402
from kvtest import Failure, check, start_kvcache  # noqa: E402

kvtest.require_pymemcache("pymemcache.client.base", "pymemcache.serde", "pymemcache.exceptions")
from pymemcache.client.base import Client  # noqa: E402
from pymemcache import serde as pm_serde  # noqa: E402
from pymemcache.exceptions import MemcacheServerError, MemcacheError  # noqa: E402


def client(port, **kw):
    kw.setdefault("connect_timeout", 5)
    kw.setdefault("timeout", 10)
    return Client(("127.0.0.1", port), **kw)


def stats_of(c):
    out = {}
    for k, v in c.stats().items():
        out[k.decode() if isinstance(k, bytes) else k] = v
    return out


# ---------------------------------------------------------------- the checks

def test_basic(port):
    print("[basic commands]", flush=True)
    c = client(port)
    check(c.version() is not None, "version answers")
    check(c.flush_all(noreply=False) is True, "flush_all (noreply=False) -> True")

    # set: pymemcache's default is noreply=True; check both.
    check(c.set("k1", b"v1") is True, "set with default noreply (True) returns True")
    check(c.get("k1") == b"v1", "get after noreply set sees the value")
    check(c.set("k2", b"v2", noreply=False) is True, "set noreply=False -> STORED (True)")
    check(c.get("k2") == b"v2", "get k2")
    check(c.get("nokey") is None, "get of a missing key -> None")
    check(c.get_many(["k1", "k2", "nokey"]) == {"k1": b"v1", "k2": b"v2"},
          "get_many (one multi-key get) returns hits only")
    check(c.get_many([]) == {}, "get_many([]) -> {}")

    # gets / cas
    v, cas = c.gets("k1")
    check(v == b"v1" and cas is not None and int(cas) > 0, "gets returns value and a cas")
    check(c.cas("k1", b"v1b", cas) is True, "cas with the current cas -> STORED")
    check(c.get("k1") == b"v1b", "value changed by cas")
    check(c.cas("k1", b"v1c", cas) is False, "cas with the old cas -> EXISTS (False)")
    check(c.get("k1") == b"v1b", "conflicting cas did not store")
    check(c.cas("nokey", b"x", cas) is None, "cas on a missing key -> NOT_FOUND (None)")
    v2, cas2 = c.gets("k1")
    check(v2 == b"v1b" and cas2 != cas, "cas value changes after a store")
    check(c.cas("k1", b"nr", cas2, noreply=True) is True, "cas noreply=True")
    check(c.get("k1") == b"nr", "noreply cas stored")

    # add / replace
    check(c.add("a1", b"x", noreply=False) is True, "add of a new key -> STORED")
    check(c.add("a1", b"y", noreply=False) is False, "add of an existing key -> NOT_STORED")
    check(c.get("a1") == b"x", "failed add left the value")
    check(c.add("a2", b"z") is True and c.get("a2") == b"z", "add noreply (default) stores")
    check(c.replace("a1", b"r", noreply=False) is True, "replace existing -> STORED")
    check(c.replace("noa", b"r", noreply=False) is False, "replace missing -> NOT_STORED")
    check(c.get("a1") == b"r" and c.get("noa") is None, "replace effects")
    c.replace("a2", b"r2")  # noreply
    check(c.get("a2") == b"r2", "replace noreply stores")

    # append / prepend
    c.set("ap", b"mid", noreply=False)
    check(c.append("ap", b"_end", noreply=False) is True, "append -> STORED")
    check(c.prepend("ap", b"beg_", noreply=False) is True, "prepend -> STORED")
    check(c.get("ap") == b"beg_mid_end", "append/prepend result")
    check(c.append("noap", b"x", noreply=False) is False, "append to missing -> NOT_STORED")
    check(c.prepend("noap", b"x", noreply=False) is False, "prepend to missing -> NOT_STORED")
    c.append("ap", b"!")
    c.prepend("ap", b"!")
    check(c.get("ap") == b"!beg_mid_end!", "append/prepend noreply")
    check(c.get("noap") is None, "append/prepend to missing created nothing")

    # incr / decr
    c.set("n", b"10", noreply=False)
    check(c.incr("n", 5) == 15, "incr 5 -> 15")
    check(c.decr("n", 6) == 9, "decr 6 -> 9")
    check(c.decr("n", 100) == 0, "decr below zero clamps at 0")
    check(c.incr("n", 2**64 - 1) == 2**64 - 1, "incr to 2^64-1")
    check(c.incr("n", 1) == 0, "incr wraps at 2^64")
    check(c.incr("non", 1) is None, "incr missing -> None")
    check(c.decr("non", 1) is None, "decr missing -> None")
    c.set("n", b"7", noreply=False)
    c.incr("n", 3, noreply=True)
    check(c.get("n") == b"10", "incr noreply")
    c.set("s", b"abc", noreply=False)
    try:
        c.incr("s", 1)
        check(False, "incr of a non-number raises")
    except MemcacheError as e:
        check("non-numeric" in str(e) or "invalid" in str(e),
              "incr of a non-number -> CLIENT_ERROR (%s)" % e)

    # delete
    check(c.delete("k2", noreply=False) is True, "delete existing -> DELETED")
    check(c.delete("k2", noreply=False) is False, "delete missing -> NOT_FOUND")
    check(c.get("k2") is None, "deleted key is gone")
    c.set("d", b"x", noreply=False)
    check(c.delete("d") is True, "delete noreply (default)")
    check(c.get("d") is None, "noreply delete took effect")
    c.set_many({"dm1": b"1", "dm2": b"2"}, noreply=False)
    check(c.delete_many(["dm1", "dm2", "dm3"], noreply=False) is True, "delete_many")
    check(c.get_many(["dm1", "dm2"]) == {}, "delete_many took effect")

    # touch
    # expire=3, not 1: a relative expiry counts whole seconds of the server's
    # clock (as memcached's does), so "1" can end a millisecond later.
    c.set("t", b"x", expire=3, noreply=False)
    check(c.touch("t", expire=100, noreply=False) is True, "touch existing -> TOUCHED")
    check(c.touch("not", expire=100, noreply=False) is False, "touch missing -> NOT_FOUND")
    check(c.touch("t", expire=100) is True, "touch noreply")

    # gat / gats (pymemcache 3.5 has them as gat/gats)
    if hasattr(c, "gat"):
        check(c.gat("t", expire=50) == b"x", "gat returns the value")
        gv, gcas = c.gats("t", expire=50)
        check(gv == b"x" and gcas is not None, "gats returns value and cas")

    # set_many
    failed = c.set_many({"m%d" % i: b"%d" % i for i in range(50)}, noreply=False)
    check(failed == [], "set_many of 50 keys, none failed")
    got = c.get_many(["m%d" % i for i in range(50)])
    check(got == {"m%d" % i: b"%d" % i for i in range(50)}, "get_many of those 50 keys")

    # flush_all
    check(c.flush_all() is True, "flush_all (default noreply)")
    check(c.get_many(["k1", "a1", "ap", "n", "t", "m0", "m49"]) == {}, "flush_all emptied the cache")
    c.set("after", b"y", noreply=False)
    check(c.get("after") == b"y", "stores work after flush_all")

    # the expire of the touched key: 't' was touched to 100 s, so it must survive 1 s
    c.close()


def test_serde(port):
    print("[flags through a serde]", flush=True)
    c = client(port, serde=pm_serde.pickle_serde)
    vals = {"s_str": "héllo wörld", "s_int": 12345678901, "s_dict": {"a": [1, 2, {"b": None}], "c": "d"},
            "s_bytes": b"\x00\xffraw", "s_float": 1.5, "s_list": [1, "two", 3.0]}
    for k, v in vals.items():
        check(c.set(k, v, noreply=False) is True, "set %s (%s)" % (k, type(v).__name__))
    for k, v in vals.items():
        got = c.get(k)
        check(got == v and type(got) is type(v), "%s round-trips as %s" % (k, type(v).__name__))
    check(c.get_many(list(vals)) == vals, "get_many with the serde round-trips all")
    # The flags really reach the server: read raw and compare the flag words.
    raw = client(port)
    for k, v in vals.items():
        _, expect_flags = pm_serde.pickle_serde.serialize(k, v)
        got = raw_get_flags(port, k)
        check(got == expect_flags, "server stored flags %s for %s" % (got, k))
    raw.close()
    c.close()


def raw_get_flags(port, key):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"get " + key.encode() + b"\r\n")
        buf = b""
        deadline = time.monotonic() + 5
        while b"\r\n" not in buf and time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
        line = buf.split(b"\r\n", 1)[0].split()
        if len(line) < 4 or line[0] != b"VALUE":
            return None
        return int(line[2])


def test_large(port):
    print("[large values and the -I limit]", flush=True)
    c = client(port)
    big = bytes(random.Random(7).getrandbits(8) for _ in range(500 * 1024))
    check(c.set("big", big, noreply=False) is True, "set a 500 KiB value")
    check(c.get("big") == big, "get the 500 KiB value back intact")
    c.set("big_nr", big)  # noreply
    check(c.get("big_nr") == big, "500 KiB value with noreply")

    c.set("huge", b"old", noreply=False)
    too_big = b"h" * (1024 * 1024 + 100)   # server runs with -I 1m
    try:
        c.set("huge", too_big, noreply=False)
        check(False, "set over -I raises MemcacheServerError")
    except MemcacheServerError as e:
        check("object too large for cache" in str(e),
              "set over -I -> SERVER_ERROR object too large for cache (%s)" % str(e).strip())
    check(c.get("huge") is None, "the old value of a key set over -I is removed")
    check(c.get("big") == big, "connection still in sync after the oversize set")
    c.set("huge", b"again", noreply=False)
    c.set("huge", too_big)  # noreply: the server must swallow the data quietly
    check(c.get("huge") is None, "oversize noreply set: old value removed, stream in sync")
    check(c.version() is not None, "server answers after oversize values")
    c.close()


def test_expiry(port):
    print("[expiry]", flush=True)
    c = client(port)
    # expire=2: whole seconds of the server's clock, so at least 1 s of life
    # (expire=1 may end a millisecond after the set, as memcached's does).
    c.set("e1", b"soon", expire=2, noreply=False)
    c.set("e100", b"later", expire=100, noreply=False)
    c.set("e0", b"never", expire=0, noreply=False)
    check(c.get("e1") == b"soon", "expire=2 value readable at once")
    time.sleep(3.2)
    check(c.get("e1") is None, "expire=2 value gone after 3.2 s")
    check(c.get("e100") == b"later", "expire=100 value still there")
    check(c.get("e0") == b"never", "expire=0 value still there")
    c.close()


STAT_FIELDS = ["curr_items", "get_hits", "get_misses", "total_items", "bytes", "limit_maxbytes",
               "curr_connections", "threads", "version", "uptime", "pid", "evictions"]


def test_stats(port, proc, threads, mib):
    print("[stats]", flush=True)
    c = client(port)
    c.flush_all(noreply=False)
    c.set("st1", b"12345", noreply=False)
    c.set("st2", b"67890", noreply=False)
    c.get("st1")
    c.get("nost")
    st = stats_of(c)
    for f in STAT_FIELDS:
        check(f in st, "stats has %s (= %r)" % (f, st.get(f)))
    check(int(st["pid"]) == proc.pid, "stats pid is the server's pid")
    check(int(st["threads"]) == threads, "stats threads == -t %d" % threads)
    check(int(st["limit_maxbytes"]) == mib * 1024 * 1024, "limit_maxbytes == -m %d MiB" % mib)
    check(int(st["curr_items"]) >= 2, "curr_items >= 2")
    check(int(st["total_items"]) >= 2, "total_items >= 2")
    check(int(st["get_hits"]) >= 1 and int(st["get_misses"]) >= 1, "get_hits and get_misses counted")
    check(int(st["bytes"]) > 0, "bytes > 0")
    check(int(st["curr_connections"]) >= 1, "curr_connections >= 1")
    check(int(st["uptime"]) >= 0, "uptime >= 0")
    check(len(str(st["version"])) > 0, "version non-empty")
    hits, misses = int(st["get_hits"]), int(st["get_misses"])
    c.get("st2")
    c.get("nost2")
    st2 = stats_of(c)
    check(int(st2["get_hits"]) == hits + 1 and int(st2["get_misses"]) == misses + 1,
          "get_hits/get_misses advance by one each")
    c.close()


def test_concurrency(port, nthreads=8, seconds=3.0):
    print("[%d threads, overlapping keys, %.0f s]" % (nthreads, seconds), flush=True)
    keys = ["cc%d" % i for i in range(24)]
    stop_at = time.monotonic() + seconds
    errors = []
    counts = [[0, 0, 0] for _ in range(nthreads)]   # sets, gets (hits), malformed

    def make_value(key, writer, seq):
        # length varies with seq, so a torn or mixed value cannot look whole
        n = 20 + (seq * 37 + writer * 11) % 3000
        body = ("%s|%d|%d|" % (key, writer, seq)).encode()
        fill = bytes((ord("a") + (writer + seq + i) % 26) for i in range(n))
        return body + fill + b"|%d" % len(fill)

    def well_formed(key, val):
        try:
            k, w, s, rest = val.split(b"|", 3)
            fill, n = rest.rsplit(b"|", 1)
            if k.decode() != key or len(fill) != int(n):
                return False
            return val == make_value(key, int(w), int(s))
        except Exception:
            return False

    def worker(idx):
        rnd = random.Random(idx)
        c = client(port, timeout=5)
        seq = 0
        try:
            while time.monotonic() < stop_at:
                key = rnd.choice(keys)
                op = rnd.random()
                if op < 0.4:
                    seq += 1
                    c.set(key, make_value(key, idx, seq), noreply=(op < 0.1))
                    counts[idx][0] += 1
                elif op < 0.8:
                    v = c.get(key)
                    if v is not None:
                        counts[idx][1] += 1
                        if not well_formed(key, v):
                            counts[idx][2] += 1
                            errors.append("malformed value for %s: %r" % (key, v[:80]))
                else:
                    some = rnd.sample(keys, 5)
                    for k, v in c.get_many(some).items():
                        counts[idx][1] += 1
                        if k not in some or not well_formed(k, v):
                            counts[idx][2] += 1
                            errors.append("malformed get_many value for %s: %r" % (k, v[:80]))
        except Exception as e:  # noqa: BLE001 - report any client failure
            errors.append("thread %d: %r" % (idx, e))
        finally:
            c.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(nthreads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 20)
    check(not any(t.is_alive() for t in threads), "all %d threads finished in time" % nthreads)
    sets = sum(x[0] for x in counts)
    hits = sum(x[1] for x in counts)
    print("  %d sets, %d values read" % (sets, hits))
    for e in errors[:10]:
        print("  error: " + e)
    check(not errors, "no client errors and no torn/mixed values (%d errors)" % len(errors))
    check(sets > 100 and hits > 100, "the threads did real work (%d sets, %d reads)" % (sets, hits))
    c = client(port)
    final = c.get_many(keys)
    check(all(well_formed(k, v) for k, v in final.items()),
          "final values of the %d shared keys are well-formed" % len(final))
    c.close()


def test_eviction(binary):
    print("[eviction: -m 8, 30 MiB of 10 KiB values]", flush=True)
    proc, port = start_kvcache(binary, "-t", "2", "-m", "8", "-I", "1m", cmd_in_errors=True)
    c = client(port)
    val_len = 10 * 1024
    n = 30 * 1024 * 1024 // val_len

    def value(i):
        head = b"%08d:" % i
        return head + bytes([65 + i % 26]) * (val_len - len(head))

    t0 = time.monotonic()
    for i in range(n):
        if not c.set("ev%d" % i, value(i), noreply=False):
            raise Failure("set ev%d was not stored" % i)
        if time.monotonic() - t0 > 30:
            raise Failure("writing 30 MiB took over 30 s")
    print("  wrote %d values (%.1f MiB) in %.2f s" % (n, n * val_len / 2**20, time.monotonic() - t0))
    st = stats_of(c)
    print("  stats: evictions=%s bytes=%s limit_maxbytes=%s curr_items=%s" %
          (st.get("evictions"), st.get("bytes"), st.get("limit_maxbytes"), st.get("curr_items")))
    check(int(st["evictions"]) > 0, "evictions > 0")
    check(int(st["limit_maxbytes"]) == 8 * 1024 * 1024, "limit_maxbytes == 8 MiB")
    check(int(st["bytes"]) <= int(st["limit_maxbytes"]), "bytes <= limit_maxbytes")
    check(int(st["curr_items"]) < n, "curr_items < items written")
    # memcached evicts from the tail of its LRU: with this load it keeps the
    # last ~750 keys, all of them. The 100 most recent must be there.
    recent = ["ev%d" % i for i in range(n - 100, n)]
    got = c.get_many(recent)
    missing = [k for k in recent if k not in got]
    check(not missing, "the 100 most recent keys are readable (%d missing: %s)"
          % (len(missing), " ".join(missing[:12])))
    check(all(v == value(int(k[2:])) for k, v in got.items()), "the recent keys read are intact")
    old = c.get_many(["ev%d" % i for i in range(100)])
    check(len(old) < 100, "some of the oldest keys were evicted (%d of 100 left)" % len(old))
    check(c.set("after_ev", b"ok", noreply=False) and c.get("after_ev") == b"ok",
          "server still stores and answers after evicting")
    c.close()
    proc.kill()
    proc.wait(timeout=5)


def udp_exchange(sock, addr, reqid, payload, timeout=2.0):
    sock.sendto(struct.pack(">HHHH", reqid, 0, 1, 0) + payload, addr)
    frames = {}
    total = None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, _ = sock.recvfrom(65536)
        except socket.timeout:
            break
        if len(data) < 8:
            raise Failure("UDP reply shorter than the 8-byte header: %r" % data)
        rid, seq, tot, res = struct.unpack(">HHHH", data[:8])
        if rid != reqid:
            continue  # a late reply to an earlier (retried) request
        total = tot
        frames[seq] = data[8:]
        if len(frames) == total:
            break
    if total is None or len(frames) != total:
        return None, total
    return b"".join(frames[i] for i in range(total)), total


def test_udp(udp_port, tcp_port):
    print("[UDP frames on -U %d]" % udp_port, flush=True)
    addr = ("127.0.0.1", udp_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        reply = None
        for attempt in range(3):   # UDP: allow a lost datagram
            reqid = 0x1234 + attempt
            reply, total = udp_exchange(s, addr, reqid, b"set u 0 0 1\r\nx\r\n")
            if reply is not None:
                break
        check(reply is not None, "UDP set got a reply frame with request id %#x" % reqid)
        check(total == 1, "set reply is one datagram (total=%s)" % total)
        check(reply == b"STORED\r\n", "UDP set reply is STORED (%r)" % reply)
        for attempt in range(3):
            reqid = 0xBEEF - attempt
            reply, total = udp_exchange(s, addr, reqid, b"get u\r\n")
            if reply is not None:
                break
        check(reply is not None, "UDP get got reply frames with request id %#x" % reqid)
        check(reply == b"VALUE u 0 1\r\nx\r\nEND\r\n", "UDP get reply is VALUE u 0 1 / x / END (%r)" % reply)
        reply, total = udp_exchange(s, addr, 7, b"get nou\r\n")
        check(reply == b"END\r\n", "UDP get miss -> END (%r)" % reply)
        # A reply larger than one datagram is split into 1400-byte frames,
        # each with the request id, its sequence number and the count.
        payload = bytes(65 + i % 26 for i in range(5000))
        tcp = client(tcp_port)
        tcp.set("ub", payload, noreply=False)
        tcp.close()
        reply, total = udp_exchange(s, addr, 9, b"get ub\r\n")
        check(reply == b"VALUE ub 0 5000\r\n" + payload + b"\r\nEND\r\n",
              "UDP get of a 5000-byte value reassembles from %s frames" % total)
        check(total == 4, "the 5000-byte reply came in 4 frames of <= 1400 bytes, as memcached sends")


def test_udp_large_request(udp_port):
    # memcached reads UDP requests into a 64 KiB buffer: a single-datagram
    # request of a few KiB (a set of a 4000-byte value, a get of 300 keys)
    # is answered. Checked last, so that everything else has run.
    print("[UDP: a 4 KiB request datagram]", flush=True)
    addr = ("127.0.0.1", udp_port)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        payload = b"z" * 4000
        reply, total = udp_exchange(s, addr, 10, b"set uz 0 0 4000\r\n" + payload + b"\r\n")
        check(reply == b"STORED\r\n",
              "UDP set of a 4000-byte value (one 4027-byte datagram) -> STORED as memcached 1.6 "
              "replies (got %r)" % reply)
        reply, total = udp_exchange(s, addr, 11, b"get uz\r\n")
        check(reply == b"VALUE uz 0 4000\r\n" + payload + b"\r\nEND\r\n", "UDP get uz")


def test_admin(proc):
    """--admin: the runtime's statistics over HTTP, next to the memcached port."""
    print("[--admin: /stats and /metrics over HTTP]", flush=True)
    log = [entry[2] for entry in kvtest.CHILDREN if entry[1] is proc][0]
    with open(log, errors="replace") as f:
        m = re.search(r"admin endpoint: http://127\.0\.0\.1:(\d+)/dashboard", f.read())
    check(m is not None, "kvcache logs its admin endpoint", fatal=True)
    conn = http.client.HTTPConnection("127.0.0.1", int(m.group(1)), timeout=10)
    conn.request("GET", "/stats")
    reply = conn.getresponse()
    stats = json.loads(reply.read())
    check(reply.status == 200 and stats["name"] == "kvcache" and len(stats["loops"]) == 2,
          "/stats: kvcache's runtime, two loops")
    conn.request("GET", "/metrics")
    check(b"quiesce_connections_open" in conn.getresponse().read(), "/metrics")
    conn.request("GET", "/dashboard")
    check(b"<canvas" in conn.getresponse().read(), "/dashboard")
    conn.close()


def main():
    binary = kvtest.kvcache_binary("pymemcache_test.py KVCACHE_BINARY")
    if binary is None:
        return 1
    t0 = time.monotonic()
    udp_port = kvtest.free_port(socket.SOCK_DGRAM)
    proc, port = start_kvcache(binary, "-t", "2", "-m", "64", "-I", "1m", "-U", udp_port,
                               "--admin", "127.0.0.1:0", cmd_in_errors=True)
    test_basic(port)
    test_admin(proc)
    test_serde(port)
    test_large(port)
    test_stats(port, proc, 2, 64)
    test_expiry(port)
    test_concurrency(port)
    test_udp(udp_port, port)
    check(proc.poll() is None, "the main kvcache is still running")
    test_eviction(binary)
    test_udp_large_request(udp_port)
    check(proc.poll() is None, "the main kvcache is still running")
    return kvtest.report(t0)


if __name__ == "__main__":
    kvtest.run_script(main, log_tail=3000)
