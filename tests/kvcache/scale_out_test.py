#!/usr/bin/python3
"""Scale-out of kvcache with the tools memcached users already run.

usage: scale_out_test.py KVCACHE_BINARY

Run it with Debian's /usr/bin/python3 (python3-pymemcache is installed for
that interpreter). Starts three kvcache instances (-p 0, the port is read
from the log line), then checks:

  (a) twemproxy: a nutcracker config (fnv1a_64, ketama, auto_eject_hosts,
      server_failure_limit 1) passes `nutcracker -t`; 300 keys set through
      the proxy are spread over all three instances (direct reads: each
      holds some, 300 in all, no key twice) and each reads back through it;
  (b) client-side consistent hashing, pymemcache HashClient: 300 keys, each
      instance holds some, 300 in all;
  (b') libmemcached's ketama (MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA, via
      ctypes on libmemcached.so.11): 300 keys, each instance holds some;
  (d) libmemcached's memcstat --servers=P1,P2 prints the stats of each, and
      memcdump lists the keys one instance holds;
  (c) one instance is killed (SIGKILL): the keys on the other two are still
      served through HashClient, libmemcached and nutcracker (after it
      ejects the dead server), the keys of the dead one miss, and new keys
      can be stored and read.

Exit 0 on success, 1 on failure, 77 only if a tool is not installed.
"""
import ctypes
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvtest  # noqa: E402
from kvtest import Failure, check, skip  # noqa: E402

kvtest.require_pymemcache("pymemcache.client.base", "pymemcache.client.hash", "pymemcache.exceptions")
from pymemcache.client.base import Client  # noqa: E402
from pymemcache.client.hash import HashClient  # noqa: E402
from pymemcache.exceptions import MemcacheError  # noqa: E402

NUTCRACKER = shutil.which("nutcracker") or shutil.which("nutcracker", path="/usr/sbin:/usr/local/sbin")
MEMCSTAT = shutil.which("memcstat") or shutil.which("memstat")
if NUTCRACKER is None:
    skip("nutcracker (twemproxy)")
if MEMCSTAT is None:
    skip("memcstat (libmemcached-tools)")
try:
    LIBMC = ctypes.CDLL("libmemcached.so.11")
except OSError:
    skip("libmemcached.so.11 (libmemcached11)")


def client(port, **kw):
    kw.setdefault("connect_timeout", 2)
    kw.setdefault("timeout", 5)
    kw.setdefault("default_noreply", False)
    return Client(("127.0.0.1", port), **kw)


def holdings(ports, keys):
    """For each port, the set of `keys` it holds (direct reads)."""
    out = {}
    for p in ports:
        c = client(p)
        have = set()
        for i in range(0, len(keys), 100):
            have.update(c.get_many(keys[i:i + 100]).keys())
        c.close()
        out[p] = have
    return out


def check_spread(where, ports, keys):
    held = holdings(ports, keys)
    counts = {p: len(held[p]) for p in ports}
    print("  %s: keys per instance %s" % (where, counts))
    check(all(counts[p] > 0 for p in ports), "%s: every instance holds some keys" % where)
    check(sum(counts.values()) == len(keys), "%s: %d keys in all (%d)" % (where, len(keys), sum(counts.values())))
    union = set().union(*held.values())
    check(union == set(keys), "%s: every key is on exactly one instance" % where)
    return held


def nutcracker_stats(port):
    """nutcracker's stats: one JSON document, then the connection closes."""
    data = b""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)
    except (OSError, ValueError):
        return {}


def value_of(key):
    return ("value-of-" + key).encode()


# ------------------------------------------------------------ libmemcached

class Libmemcached:
    """Just enough of libmemcached through ctypes: ketama, set, get."""

    def __init__(self, ports):
        lib = LIBMC
        lib.memcached.restype = ctypes.c_void_p
        lib.memcached.argtypes = [ctypes.c_char_p, ctypes.c_size_t]
        lib.memcached_free.argtypes = [ctypes.c_void_p]
        lib.memcached_behavior_set_distribution.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.memcached_behavior_get_distribution.argtypes = [ctypes.c_void_p]
        lib.memcached_behavior_get_distribution.restype = ctypes.c_int
        lib.libmemcached_string_distribution.argtypes = [ctypes.c_int]
        lib.libmemcached_string_distribution.restype = ctypes.c_char_p
        lib.memcached_set.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_char_p,
                                      ctypes.c_size_t, ctypes.c_long, ctypes.c_uint32]
        lib.memcached_set.restype = ctypes.c_int
        lib.memcached_get.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_size_t,
                                      ctypes.POINTER(ctypes.c_size_t), ctypes.POINTER(ctypes.c_uint32),
                                      ctypes.POINTER(ctypes.c_int)]
        lib.memcached_get.restype = ctypes.c_void_p
        lib.memcached_strerror.argtypes = [ctypes.c_void_p, ctypes.c_int]
        lib.memcached_strerror.restype = ctypes.c_char_p
        self.libc = ctypes.CDLL(None)
        self.libc.free.argtypes = [ctypes.c_void_p]
        self.lib = lib
        config = " ".join("--SERVER=127.0.0.1:%d" % p for p in ports)
        config += " --CONNECT-TIMEOUT=1000 --POLL-TIMEOUT=2000 --RETRY-TIMEOUT=600"
        self.memc = lib.memcached(config.encode(), len(config))
        if not self.memc:
            raise Failure("libmemcached rejected the configuration %r" % config)
        # MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA
        rc = lib.memcached_behavior_set_distribution(self.memc, 2)
        if rc != 0:
            raise Failure("memcached_behavior_set_distribution: %s" % self.strerror(rc))
        self.distribution = lib.libmemcached_string_distribution(
            lib.memcached_behavior_get_distribution(self.memc)).decode()

    def strerror(self, rc):
        return self.lib.memcached_strerror(self.memc, rc).decode()

    def set(self, key, value):
        k = key.encode()
        return self.lib.memcached_set(self.memc, k, len(k), value, len(value), 0, 0)

    def get(self, key):
        """(value or None, return code)"""
        k = key.encode()
        n = ctypes.c_size_t(0)
        flags = ctypes.c_uint32(0)
        rc = ctypes.c_int(0)
        p = self.lib.memcached_get(self.memc, k, len(k), ctypes.byref(n), ctypes.byref(flags), ctypes.byref(rc))
        if not p:
            return None, rc.value
        value = ctypes.string_at(p, n.value)
        self.libc.free(p)
        return value, rc.value

    def close(self):
        if self.memc:
            self.lib.memcached_free(self.memc)
            self.memc = None


# ------------------------------------------------------------------ the run

def main():
    binary = kvtest.kvcache_binary("scale_out_test.py KVCACHE_BINARY")
    if binary is None:
        return 1
    t0 = time.monotonic()

    procs, ports = [], []
    for _ in range(3):
        proc, port = kvtest.start_kvcache(binary, "-t", "1", "-m", "32")
        procs.append(proc)
        ports.append(port)

    # ---------------------------------------------------------- (a) twemproxy
    print("[a: twemproxy (nutcracker) in front of the three]", flush=True)
    proxy_port = kvtest.free_port()
    stats_port = kvtest.free_port()
    conf = kvtest.new_tempfile("nutcracker-", ".yml")
    with open(conf, "w") as f:
        f.write("kvcache:\n"
                "  listen: 127.0.0.1:%d\n"
                "  hash: fnv1a_64\n"
                "  distribution: ketama\n"
                "  timeout: 400\n"
                "  auto_eject_hosts: true\n"
                "  server_failure_limit: 1\n"
                "  server_retry_timeout: 600000\n"
                "  servers:\n" % proxy_port)
        for i, p in enumerate(ports):
            f.write("   - 127.0.0.1:%d:1\n" % p)
    with open(conf) as f:
        print("  config:\n    " + f.read().rstrip().replace("\n", "\n    "))
    t = subprocess.run([NUTCRACKER, "-t", "-c", conf], capture_output=True, text=True, timeout=10)
    out = (t.stdout + t.stderr).strip()
    check(t.returncode == 0 and "syntax is ok" in out, "nutcracker -t accepts the config (%s)" % out, fatal=True)
    nproc = kvtest.start_nutcracker(NUTCRACKER, conf, proxy_port, stats_port)

    proxy = client(proxy_port)
    # twemproxy's fnv1a_64 keeps only the low 32 bits of the hash, which
    # keys differing only in a short counter ("tw:1", "tw:2") barely change:
    # they would cluster on the continuum. Keys with a varied part (as real
    # ids are) spread; see docs/scale-out.md.
    proxy_keys = ["tw:%s" % hashlib.sha1(b"%d" % i).hexdigest()[:16] for i in range(300)]
    stored = sum(1 for k in proxy_keys if proxy.set(k, value_of(k)))
    check(stored == 300, "300 sets through the proxy answered STORED (%d)" % stored)
    tw_held = check_spread("twemproxy", ports, proxy_keys)
    readable = sum(1 for k in proxy_keys if proxy.get(k) == value_of(k))
    check(readable == 300, "every key reads back through the proxy (%d of 300)" % readable)
    got = {}
    for i in range(0, 300, 50):
        got.update(proxy.get_many(proxy_keys[i:i + 50]))
    check(len(got) == 300 and all(v == value_of(k) for k, v in got.items()),
          "multi-key gets through the proxy (split over the instances) return all 300")
    check(proxy.delete(proxy_keys[0]) and proxy.get(proxy_keys[0]) is None, "delete through the proxy")
    proxy.set(proxy_keys[0], value_of(proxy_keys[0]))
    check(proxy.incr("tw:ctr", 1) is None and proxy.set("tw:ctr", b"5") and proxy.incr("tw:ctr", 2) == 7,
          "incr through the proxy")
    proxy.delete("tw:ctr")

    # ------------------------------------------- (b) pymemcache HashClient
    print("[b: client-side consistent hashing, pymemcache HashClient]", flush=True)
    servers = [("127.0.0.1", p) for p in ports]
    hc = HashClient(servers, connect_timeout=1, timeout=2, default_noreply=False, ignore_exc=True,
                    retry_attempts=1, retry_timeout=0.1, dead_timeout=600)
    hash_keys = ["hc:%d" % i for i in range(300)]
    stored = sum(1 for k in hash_keys if hc.set(k, value_of(k)))
    check(stored == 300, "300 sets through HashClient stored (%d)" % stored)
    readable = sum(1 for k in hash_keys if hc.get(k) == value_of(k))
    check(readable == 300, "300 gets through HashClient (%d)" % readable)
    many = hc.get_many(hash_keys)
    check(len(many) == 300, "HashClient.get_many of the 300 keys (%d)" % len(many))
    hc_held = check_spread("HashClient", ports, hash_keys)

    # -------------------------------------------- (b') libmemcached ketama
    print("[b': client-side consistent hashing, libmemcached ketama]", flush=True)
    lm = Libmemcached(ports)
    check(lm.distribution == "MEMCACHED_DISTRIBUTION_CONSISTENT_KETAMA", "distribution is %s" % lm.distribution)
    lm_keys = ["lm:%d" % i for i in range(300)]
    rcs = [lm.set(k, value_of(k)) for k in lm_keys]
    check(all(rc == 0 for rc in rcs), "300 memcached_set through libmemcached succeed")
    readable = sum(1 for k in lm_keys if lm.get(k)[0] == value_of(k))
    check(readable == 300, "300 memcached_get through libmemcached (%d)" % readable)
    lm_held = check_spread("libmemcached ketama", ports, lm_keys)

    # ------------------------------------------------------ (d) memcstat
    print("[d: libmemcached memcstat]", flush=True)
    servers_arg = "--servers=127.0.0.1:%d,127.0.0.1:%d" % (ports[0], ports[1])
    r = subprocess.run([MEMCSTAT, servers_arg], capture_output=True, text=True, timeout=15)
    print("  %s %s -> exit %d, %d lines" % (os.path.basename(MEMCSTAT), servers_arg, r.returncode,
                                             len(r.stdout.splitlines())))
    check(r.returncode == 0, "memcstat exits 0 (stderr: %s)" % r.stderr.strip()[:200])
    sections = {}
    current = None
    for line in r.stdout.splitlines():
        m = re.match(r"Server: (\S+) \((\d+)\)", line)
        if m:
            current = int(m.group(2))
            sections[current] = {}
        elif current is not None and ":" in line:
            k, v = line.strip().split(":", 1)
            sections[current][k.strip()] = v.strip()
    for i in (0, 1):
        p = ports[i]
        st = sections.get(p, {})
        check(p in sections, "memcstat printed a section for 127.0.0.1:%d" % p)
        check(st.get("pid") == str(procs[i].pid), "  its pid is the instance's (%s)" % st.get("pid"))
        expect_items = len(tw_held[p]) + len(hc_held[p]) + len(lm_held[p])
        check(st.get("curr_items") == str(expect_items),
              "  its curr_items is what the instance holds (%s, expected %d)" % (st.get("curr_items"), expect_items))
        check(all(f in st for f in ("uptime", "version", "bytes", "get_hits", "limit_maxbytes", "threads")),
              "  it has uptime, version, bytes, get_hits, limit_maxbytes, threads")

    # memcdump lists an instance's keys (stats items, then stats cachedump).
    memcdump = shutil.which("memcdump") or shutil.which("memdump")
    if memcdump:
        p = ports[0]
        r = subprocess.run([memcdump, "--servers=127.0.0.1:%d" % p], capture_output=True,
                           text=True, timeout=15)
        dumped = set(r.stdout.split())
        expect = set(tw_held[p]) | set(hc_held[p]) | set(lm_held[p])
        check(r.returncode == 0 and dumped == expect,
              "memcdump lists the %d keys of 127.0.0.1:%d (got %d, exit %d)"
              % (len(expect), p, len(dumped), r.returncode))

    # ------------------------------------------------ (c) one instance dies
    dead = 1
    dead_port = ports[dead]
    live = [p for i, p in enumerate(ports) if i != dead]
    print("[c: SIGKILL the instance on port %d]" % dead_port, flush=True)
    procs[dead].send_signal(signal.SIGKILL)
    procs[dead].wait(timeout=5)
    check(procs[dead].returncode == -signal.SIGKILL, "instance %d is dead" % dead_port)

    # HashClient: keys of the live instances still served, dead ones miss.
    live_hc = [k for k in hash_keys if k not in hc_held[dead_port]]
    dead_hc = [k for k in hash_keys if k in hc_held[dead_port]]
    t1 = time.monotonic()
    served = sum(1 for k in live_hc if hc.get(k) == value_of(k))
    missed = sum(1 for k in dead_hc if hc.get(k) is None)
    print("  HashClient: %d/%d live keys served, %d/%d dead keys miss (%.2f s)"
          % (served, len(live_hc), missed, len(dead_hc), time.monotonic() - t1))
    check(served == len(live_hc), "HashClient serves every key of the two live instances")
    check(missed == len(dead_hc), "HashClient: the keys of the dead instance miss (no exception)")
    # after retry_attempts it is marked dead: new keys go to the live two
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        hc.get(dead_hc[0])
        if ("127.0.0.1", dead_port) in hc._dead_clients:
            break
        time.sleep(0.15)
    check(("127.0.0.1", dead_port) in hc._dead_clients, "HashClient marked the dead instance dead")
    new_keys = ["hc2:%d" % i for i in range(60)]
    ok = sum(1 for k in new_keys if hc.set(k, value_of(k)) and hc.get(k) == value_of(k))
    check(ok == 60, "HashClient stores and reads new keys on the live two (%d of 60)" % ok)
    check(hc.get_many(live_hc[:50]) == {k: value_of(k) for k in live_hc[:50]},
          "HashClient.get_many over the live keys")

    # libmemcached: same, with the default (no auto-eject) settings
    live_lm = [k for k in lm_keys if k not in lm_held[dead_port]]
    dead_lm = [k for k in lm_keys if k in lm_held[dead_port]]
    t1 = time.monotonic()
    served = sum(1 for k in live_lm if lm.get(k)[0] == value_of(k))
    dead_results = [lm.get(k) for k in dead_lm]
    missed = sum(1 for v, rc in dead_results if v is None)
    print("  libmemcached: %d/%d live keys served, %d/%d dead keys miss (%s) (%.2f s)"
          % (served, len(live_lm), missed, len(dead_lm),
             sorted(set(lm.strerror(rc) for v, rc in dead_results)), time.monotonic() - t1))
    check(served == len(live_lm), "libmemcached serves every key of the two live instances")
    check(missed == len(dead_lm), "libmemcached: the keys of the dead instance miss")
    lm.close()

    # nutcracker: the first request to the dead server fails and ejects it
    # (server_failure_limit 1); then every key of the live two is served and
    # the dead one's keys (now hashed to the live two) miss.
    live_tw = [k for k in proxy_keys if k not in tw_held[dead_port]]
    dead_tw = [k for k in proxy_keys if k in tw_held[dead_port]]
    proxy.close()
    proxy = client(proxy_port)
    errors = 0
    deadline = time.monotonic() + 5
    ejected = False
    while time.monotonic() < deadline:
        try:
            if proxy.get(dead_tw[0]) is None:
                ejected = True
                break
        except (MemcacheError, OSError) as e:
            errors += 1
            last_error = str(e)
        time.sleep(0.1)
    print("  nutcracker: %d error replies before the dead server was ejected%s"
          % (errors, (" (last: %s)" % last_error) if errors else ""))
    check(ejected, "nutcracker ejected the dead server: its keys miss instead of failing")
    # nutcracker's stats port (-s, aggregated every -i 200 ms) says so too
    srv = {}
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        srv = nutcracker_stats(stats_port).get("kvcache", {}).get("127.0.0.1:%d" % dead_port, {})
        if srv.get("server_ejected_at", 0) > 0:
            break
        time.sleep(0.1)
    check(srv.get("server_ejected_at", 0) > 0,
          "nutcracker stats: 127.0.0.1:%d ejected (server_eof %s, server_err %s, server_ejected_at %s)"
          % (dead_port, srv.get("server_eof"), srv.get("server_err"), srv.get("server_ejected_at")))

    def through_proxy(keys, want):
        """Keys read through the proxy as `want` says, retrying for 3 s."""
        nonlocal proxy
        pending = list(keys)
        deadline = time.monotonic() + 3
        while pending and time.monotonic() < deadline:
            still = []
            for k in pending:
                try:
                    v = proxy.get(k)
                except (MemcacheError, OSError):
                    proxy.close()
                    still.append(k)
                    continue
                if not want(k, v):
                    still.append(k)
            pending = still
            if pending:
                time.sleep(0.1)
        return len(keys) - len(pending)

    served = through_proxy(live_tw, lambda k, v: v == value_of(k))
    check(served == len(live_tw), "nutcracker serves every key of the two live instances (%d of %d)"
          % (served, len(live_tw)))
    missed = through_proxy(dead_tw, lambda k, v: v is None)
    check(missed == len(dead_tw), "nutcracker: the keys of the dead instance miss (%d of %d)"
          % (missed, len(dead_tw)))
    new_keys = ["tw2:%d" % i for i in range(60)]
    ok = sum(1 for k in new_keys if proxy.set(k, value_of(k)) and proxy.get(k) == value_of(k))
    check(ok == 60, "nutcracker stores and reads new keys on the live two (%d of 60)" % ok)
    held = holdings(live, new_keys)
    check(sum(len(h) for h in held.values()) == 60, "those new keys live on the two live instances")
    proxy.close()

    check(nproc.poll() is None, "nutcracker still running")
    check(all(procs[i].poll() is None for i in range(3) if i != dead), "the two live instances still running")

    return kvtest.report(t0)


if __name__ == "__main__":
    kvtest.run_script(main)
