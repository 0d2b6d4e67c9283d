#!/usr/bin/python3
"""memcached-tool (Debian's memcached package ships it) against kvcache, as
an operator runs it: `dump` (lru_crawler metadump all, then a get per key)
gives back every key with its value, flags and expiry; `stats` and
`settings` print the server's figures.

usage: memcached_tool_test.py KVCACHE_BINARY

Exit 0 on success, 1 on failure, 77 only if memcached-tool (or perl) is not
installed.
"""
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvtest  # noqa: E402

TOOL = "/usr/share/memcached/scripts/memcached-tool"
ITEMS = 3000


def send_all(port, payload):
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(payload + b"version\r\n")
        got = b""
        while not got.endswith(b"\r\n") or b"VERSION" not in got:
            chunk = s.recv(65536)
            if not chunk:
                break
            got += chunk
        return got


def tool(port, *args):
    r = subprocess.run(["perl", TOOL, "127.0.0.1:%d" % port] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60, stdin=subprocess.DEVNULL)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def main():
    binary = kvtest.kvcache_binary("memcached_tool_test.py KVCACHE_BINARY")
    if binary is None:
        return 1
    if not os.access(TOOL, os.R_OK):
        kvtest.skip("memcached-tool (memcached)")
    if shutil.which("perl") is None:
        kvtest.skip("perl")
    t0 = time.monotonic()
    _, port = kvtest.start_kvcache(binary, "-t", "2", "-m", "64", connect=True)

    # Keys with bytes that the dump URI-encodes, flags, expiry and a value
    # large enough that the dump crosses the connection's output budget.
    payload = b""
    expected = {}
    for i in range(ITEMS):
        key = "k:%d" % i if i % 3 else "k%%%d~x.y" % i
        value = ("v%d-" % i) * (1 + i % 40)
        flags = i % 7
        exptime = 0 if i % 2 else 3600
        expected[key] = (flags, value)
        payload += b"set %s %d %d %d noreply\r\n%s\r\n" % (key.encode(), flags, exptime,
                                                             len(value), value.encode())
    got = send_all(port, payload)
    kvtest.check(got.startswith(b"VERSION "), "the sets are in (%r)" % got[:40], fatal=True)

    rc, out, err = tool(port, "dump")
    kvtest.check(rc == 0, "memcached-tool dump exits 0 (stderr: %s)" % err.strip()[:200])
    # Its output: "add KEY FLAGS EXPTIME BYTES\r\nVALUE\r\n" per item.
    dumped = {}
    for m in re.finditer(r"^add (\S+) (\d+) (-?\d+) (\d+)\r?\n(.*?)\r?$", out, re.M):
        dumped[m.group(1)] = (int(m.group(2)), m.group(5), int(m.group(3)))
    kvtest.check(len(dumped) == ITEMS, "dump lists %d items (got %d)" % (ITEMS, len(dumped)))
    wrong = [k for k, (f, v) in expected.items()
             if k not in dumped or dumped[k][0] != f or dumped[k][1] != v]
    kvtest.check(not wrong, "every key comes back with its flags and value (wrong: %s)" % wrong[:5])
    now = time.time()
    expiry_ok = all((dumped[k][2] == 0) == (i % 2 == 1) for i, k in enumerate(expected) if k in dumped)
    kvtest.check(expiry_ok, "items with an expiry are dumped with one, the others with 0")
    later = [dumped[k][2] for k in dumped if dumped[k][2] != 0]
    kvtest.check(all(now + 3000 < t < now + 3700 for t in later),
                 "the expiry is the absolute Unix time")

    rc, out, err = tool(port, "stats")
    kvtest.check(rc == 0 and re.search(r"curr_items\s+%d" % ITEMS, out) is not None,
                 "memcached-tool stats shows curr_items %d" % ITEMS)
    rc, out, err = tool(port, "settings")
    kvtest.check(rc == 0 and "maxbytes" in out, "memcached-tool settings shows maxbytes")
    return kvtest.report(t0)


if __name__ == "__main__":
    kvtest.run_script(main)
