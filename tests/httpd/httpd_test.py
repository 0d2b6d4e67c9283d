#!/usr/bin/env python3
"""httpd as a user meets it: started on a port of its own with a --root and a
--config, driven with http.client and raw sockets. Every route, every limit,
path-traversal attempts, SIGHUP reloads (good and bad files), 10,000
pipelined requests from a client that does not read, a client that resets
in the middle of a body; the server keeps serving, in bounded memory, and
exits 0 on SIGTERM.

usage: httpd_test.py HTTPD_BINARY
"""
import atexit
import ctypes
import hashlib
import http.client
import json
import os
import re
import shutil
import signal
import socket
import struct
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kvcache"))
import kvtest  # noqa: E402  (check, spawn, run_script, ...)

check = kvtest.check


def start_httpd(binary, root, config, *extra):
    log = kvtest.new_tempfile("httpd-", ".log")
    cmd = [binary, "--listen", "127.0.0.1:0", "--threads", "2", "--root", root,
           "--config", config, "--header-timeout-ms", "500", "--keep-alive-s", "2",
           "--max-body", "65536", "--max-header", "4096", "--max-uri", "1024"] + list(extra)
    proc = kvtest.spawn("httpd", cmd, log, stdout_to_log=True)
    port = kvtest.port_from_log(proc, log, r"listening on http://127\.0\.0\.1:(\d+)/", "httpd")
    kvtest.wait_listening(port, proc, "httpd")
    print("started: %s (port %d, pid %d)" % (" ".join(cmd), port, proc.pid), flush=True)
    return proc, port, log


class Raw:
    """A raw socket, for what http.client will not send."""

    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buf = b""

    def send(self, data):
        self.s.sendall(data if isinstance(data, bytes) else data.encode())

    def reply(self):
        """(status, headers dict (lower-case names), body) of the next reply,
        or (None, {}, b"") at EOF."""
        while b"\r\n\r\n" not in self.buf:
            chunk = self.s.recv(65536)
            if not chunk:
                return None, {}, b""
            self.buf += chunk
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(self.buf) < length:
            chunk = self.s.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        body, self.buf = self.buf[:length], self.buf[length:]
        return status, headers, body

    def closed_within(self, seconds):
        self.s.settimeout(seconds)
        try:
            while True:
                chunk = self.s.recv(65536)
                if not chunk:
                    return True
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def close(self):
        self.s.close()


def request(port, method, path, headers=None, body=None):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    conn.close()
    return r.status, {k.lower(): v for k, v in r.getheaders()}, data


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def make_tree():
    """root/ with files, a subdirectory, symlinks in and out; a secret file
    next to the root that must never be served."""
    top = tempfile.mkdtemp(prefix="httpd-test-")
    atexit.register(shutil.rmtree, top, True)
    root = os.path.join(top, "root")
    os.makedirs(os.path.join(root, "sub"))
    os.makedirs(os.path.join(root, "noindex"))
    with open(os.path.join(top, "secret.txt"), "w") as f:
        f.write("TOP-SECRET\n")
    with open(os.path.join(root, "hello.txt"), "w") as f:
        f.write("hello, files\n")
    with open(os.path.join(root, "sub", "index.html"), "w") as f:
        f.write("<p>sub index</p>\n")
    with open(os.path.join(root, "page.css"), "w") as f:
        f.write("body{}\n")
    big = os.urandom(1024 * 1024 + 123)
    with open(os.path.join(root, "big.bin"), "wb") as f:
        f.write(big)
    os.symlink("hello.txt", os.path.join(root, "link-in.txt"))
    os.symlink(os.path.join(top, "secret.txt"), os.path.join(root, "link-out.txt"))
    os.symlink("/etc", os.path.join(root, "etc"))
    os.mkfifo(os.path.join(root, "fifo"))
    config = os.path.join(top, "config.json")
    with open(config, "w") as f:
        json.dump({"headers": {"X-Test": "one"}, "motd": "first"}, f)
    return top, root, config, big


def cached_pages(path):
    """Pages of `path` in the page cache by cachestat(2) (Linux 6.5), or
    None where the kernel has no cachestat or refuses it for this file."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    rng = (ctypes.c_uint64 * 2)(0, 0)  # offset 0, length 0: the whole file
    stat = (ctypes.c_uint64 * 5)()
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.syscall(ctypes.c_long(451), ctypes.c_int(fd), rng, stat, ctypes.c_uint(0)) != 0:
            return None
    finally:
        os.close(fd)
    return stat[0]


def evict(path):
    """Drops the file's clean pages from the page cache (not on tmpfs)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def pieces_line(log, seen):
    """The next "K of M pieces" line httpd logged after the first `seen`
    ones: (K, M), or None within 5 s."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with open(log) as f:
            found = re.findall(r"/files/big\.bin: (\d+) of (\d+) pieces sent from the page cache",
                               f.read())
        if len(found) > seen:
            return int(found[seen][0]), int(found[seen][1])
        time.sleep(0.05)
    return None


def sendfile_section(binary, root, config, big):
    """Pieces the page cache holds go out with sendfile; the rest, and all
    of them with --sendfile false, through AIO reads; the bytes are the
    file's either way."""
    path = os.path.join(root, "big.bin")
    want = hashlib.sha256(big).digest()
    with open(path, "rb") as f:  # every page in the page cache
        f.read()
    pages = cached_pages(path)
    proc, port, log = start_httpd(binary, root, config, "--log-level", "debug")
    status, _, body = request(port, "GET", "/files/big.bin")
    check(status == 200 and hashlib.sha256(body).digest() == want, "the file, sendfile on")
    line = pieces_line(log, 0)
    if not pages:
        # None: no cachestat(2) (Linux 6.5+), or refused (a file this user
        # may not write, seccomp). 0: a file system whose files report no
        # pages of their own (overlayfs). httpd cannot tell what is cached.
        print("note: cachestat(2) gives nothing for this file here (%s): every piece goes "
              "through AIO and sendfile is not tried" % ("no answer" if pages is None else
                                                         "0 pages"), flush=True)
        check(line is not None and line[0] == 0, "no cachestat: no piece with sendfile %s" % (line,))
    else:
        check(line is not None and line[0] == line[1] and line[1] > 0,
              "a cached file: every piece with sendfile %s" % (line,))
        evict(path)
        if cached_pages(path) == 0:
            status, _, body = request(port, "GET", "/files/big.bin")
            check(status == 200 and hashlib.sha256(body).digest() == want,
                  "the file after its pages were evicted")
            line = pieces_line(log, 1)
            check(line is not None and line[0] < line[1],
                  "an evicted file: its first piece through AIO %s" % (line,))
        else:
            print("note: the test directory's file system keeps its pages (tmpfs?): the "
                  "evicted case is covered by --sendfile false below", flush=True)
    status, _, body = request(port, "GET", "/files/big.bin", {"Range": "bytes=5-800000"})
    check(status == 206 and body == big[5:800001], "a range of the file")
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)
    proc, port, log = start_httpd(binary, root, config, "--log-level", "debug",
                                  "--sendfile", "false")
    status, _, body = request(port, "GET", "/files/big.bin")
    check(status == 200 and hashlib.sha256(body).digest() == want, "the file, --sendfile false")
    line = pieces_line(log, 0)
    check(line is not None and line[0] == 0 and line[1] > 0,
          "--sendfile false: every piece through AIO %s" % (line,))
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=15)


def main():
    binary = kvtest.kvcache_binary("httpd_test.py HTTPD_BINARY")
    if binary is None:
        return 1
    t0 = time.monotonic()
    top, root, config, big = make_tree()
    proc, port, log = start_httpd(binary, root, config)

    print("-- the fixed page, HEAD, errors")
    status, headers, body = request(port, "GET", "/")
    check(status == 200 and body.startswith(b"<!doctype html>"), "GET / is the page")
    check(headers.get("server", "").startswith("quiesce-httpd/"), "Server header")
    check(re.match(r"\w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d GMT$", headers.get("date", "")),
          "Date header is an IMF-fixdate")
    check(headers.get("x-test") == "one", "the configuration's header is on the reply")
    status, headers, body = request(port, "HEAD", "/")
    check(status == 200 and body == b"" and int(headers["content-length"]) > 100,
          "HEAD / has the length and no body")
    check(request(port, "GET", "/nope")[0] == 404, "an unknown path is 404")
    status, headers, _ = request(port, "POST", "/", body=b"x")
    check(status == 405 and headers.get("allow") == "GET, HEAD", "POST / is 405 with Allow")

    print("-- files")
    status, headers, body = request(port, "GET", "/files/hello.txt")
    check(status == 200 and body == b"hello, files\n", "a file is served")
    check(headers.get("content-type") == "text/plain; charset=utf-8", "Content-Type from .txt")
    check(request(port, "GET", "/files/page.css")[1].get("content-type") ==
          "text/css; charset=utf-8", "Content-Type from .css")
    modified = headers.get("last-modified", "")
    check(modified.endswith(" GMT"), "Last-Modified")
    check(request(port, "GET", "/files/hello.txt", {"If-Modified-Since": modified})[0] == 304,
          "If-Modified-Since the same time: 304")
    check(request(port, "GET", "/files/hello.txt",
                  {"If-Modified-Since": "Sun, 06 Nov 1994 08:49:37 GMT"})[0] == 200,
          "If-Modified-Since long ago: 200")
    etag = headers.get("etag", "")
    check(re.match(r'^"[0-9a-f]+-d"$', etag) is not None, "ETag, nginx's shape (%s)" % etag)
    status, headers, body = request(port, "GET", "/files/hello.txt", {"If-None-Match": etag})
    check(status == 304 and body == b"" and headers.get("etag") == etag,
          "If-None-Match with its tag: 304 with the ETag")
    check(request(port, "GET", "/files/hello.txt",
                  {"If-None-Match": '"x", W/' + etag})[0] == 304,
          "If-None-Match compares weakly, in a list")
    check(request(port, "GET", "/files/hello.txt", {"If-None-Match": "*"})[0] == 304,
          "If-None-Match: * is 304")
    check(request(port, "GET", "/files/hello.txt",
                  {"If-None-Match": '"other"', "If-Modified-Since": modified})[0] == 200,
          "If-None-Match that does not match wins over If-Modified-Since: 200")
    check(request(port, "GET", "/files/hello.txt", {"If-Match": '"other"'})[0] == 412,
          "If-Match with another tag: 412")
    check(request(port, "GET", "/files/hello.txt", {"If-Match": "W/" + etag})[0] == 412,
          "If-Match compares strongly: a weak tag is 412")
    check(request(port, "GET", "/files/hello.txt", {"If-Match": etag})[0] == 200,
          "If-Match with its tag: 200")
    status, headers, body = request(port, "GET", "/files/hello.txt",
                                    {"Range": "bytes=7-11", "If-Range": etag})
    check(status == 206 and body == b"files", "If-Range with its tag: the range")
    status, headers, body = request(port, "GET", "/files/hello.txt",
                                    {"Range": "bytes=7-11", "If-Range": '"old"'})
    check(status == 200 and body == b"hello, files\n", "If-Range with another tag: all of it")
    status, headers, body = request(port, "GET", "/files/hello.txt",
                                    {"Range": "bytes=7-11", "If-Range": modified})
    check(status == 206 and body == b"files", "If-Range with its Last-Modified: the range")
    status, headers, body = request(port, "GET", "/files/hello.txt", {"Range": "bytes=7-11"})
    check(status == 206 and body == b"files" and headers.get("content-range") == "bytes 7-11/13",
          "Range bytes=7-11: 206 with Content-Range")
    status, headers, body = request(port, "GET", "/files/hello.txt", {"Range": "bytes=-6"})
    check(status == 206 and body == b"files\n", "Range bytes=-6: the last six bytes")
    status, headers, body = request(port, "GET", "/files/hello.txt",
                                    {"Range": "bytes=0-4, 7-11,-1"})
    ctype = headers.get("content-type", "")
    m = re.match(r"multipart/byteranges; boundary=(\S+)$", ctype)
    check(status == 206 and m is not None, "several ranges: 206 multipart/byteranges (%s)" % ctype)
    if m:
        boundary = m.group(1).encode()
        check(int(headers["content-length"]) == len(body), "its Content-Length is its body's")
        pieces = body.split(b"\r\n--" + boundary)
        check(pieces[0] == b"" and pieces[-1] == b"--\r\n" and len(pieces) == 5,
              "three parts between boundaries, then the closing one")
        want = [(b"0-4/13", b"hello"), (b"7-11/13", b"files"), (b"12-12/13", b"\n")]
        for piece, (where, data) in zip(pieces[1:4], want):
            head, _, part = piece.partition(b"\r\n\r\n")
            check(b"\r\nContent-Range: bytes " + where in head and
                  b"\r\nContent-Type: text/plain; charset=utf-8" in head and part == data,
                  "a part: Content-Range bytes %s and its bytes" % where.decode())
    status, headers, body = request(port, "GET", "/files/hello.txt", {"Range": "bytes=0-1,100-"})
    check(status == 206 and body == b"he" and headers.get("content-range") == "bytes 0-1/13",
          "one satisfiable range of two: a plain 206")
    status, headers, body = request(port, "GET", "/files/hello.txt", {"Range": "bytes=0-1,x"})
    check(status == 200 and body == b"hello, files\n", "a malformed range list: the whole file")
    many = "bytes=" + ",".join("%d-%d" % (i, i) for i in range(17))
    check(request(port, "GET", "/files/hello.txt", {"Range": many})[0] == 200,
          "more than 16 ranges: the whole file")
    status, headers, body = request(port, "GET", "/files/big.bin",
                                    {"Range": "bytes=0-99,500000-799999"})
    m = re.match(r"multipart/byteranges; boundary=(\S+)$", headers.get("content-type", ""))
    ok = status == 206 and m is not None
    if ok:
        pieces = body.split(b"\r\n--" + m.group(1).encode())
        parts = [p.partition(b"\r\n\r\n")[2] for p in pieces[1:3]]
        ok = parts == [big[0:100], big[500000:800000]]
    check(ok, "two ranges of the large file, each whole (the second over several AIO reads)")
    status, headers, body = request(port, "GET", "/files/hello.txt", {"Range": "bytes=100-"})
    check(status == 416 and headers.get("content-range") == "bytes */13",
          "a range past the end: 416")
    status, headers, body = request(port, "GET", "/files/big.bin")
    check(status == 200 and hashlib.sha256(body).digest() == hashlib.sha256(big).digest(),
          "a 1 MiB file arrives whole (%d bytes)" % len(body))
    status, headers, body = request(port, "GET", "/files/big.bin",
                                    {"Range": "bytes=1000000-1048700"})
    check(status == 206 and body == big[1000000:1048701], "a range of the large file")
    status, headers, body = request(port, "HEAD", "/files/big.bin")
    check(status == 200 and body == b"" and headers["content-length"] == str(len(big)),
          "HEAD of a file: its length, no body")
    check(request(port, "GET", "/files/sub/")[2] == b"<p>sub index</p>\n",
          "a directory serves its index.html")
    check(request(port, "GET", "/files/noindex/")[0] == 403, "a directory without one is 403")
    check(request(port, "GET", "/files/link-in.txt")[2] == b"hello, files\n",
          "a symlink inside the root is followed")
    check(request(port, "GET", "/files/fifo")[0] == 403, "a FIFO is refused, not opened blocking")
    check(request(port, "GET", "/files/missing.txt")[0] == 404, "a missing file is 404")

    print("-- path traversal")
    attempts = [
        "/files/../secret.txt", "/files/..%2fsecret.txt", "/files/%2e%2e/secret.txt",
        "/files/%2E%2E%2Fsecret.txt", "/files/sub/../../secret.txt", "/files/link-out.txt",
        "/files/etc/passwd", "/files/./../secret.txt", "/files//../secret.txt",
        "/files/%252e%252e/secret.txt", "/files/sub/..%5c..%5csecret.txt",
    ]
    for path in attempts:
        c = Raw(port)
        c.send("GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path)
        status, headers, body = c.reply()
        c.close()
        check(status in (400, 403, 404) and b"TOP-SECRET" not in body and b"root:" not in body,
              "%s refused (%s)" % (path, status))
    c = Raw(port)
    c.send("GET /files/hello.txt%00.png HTTP/1.1\r\nHost: t\r\n\r\n")
    check(c.reply()[0] == 400, "an encoded NUL is 400")
    c.close()

    print("-- /config and SIGHUP")
    status, headers, body = request(port, "GET", "/config")
    check(status == 200 and json.loads(body)["motd"] == "first", "/config serves the file")
    with open(config, "w") as f:
        json.dump({"headers": {"X-Test": "two"}, "motd": "second"}, f)
    proc.send_signal(signal.SIGHUP)
    ok = False
    for _ in range(100):
        if json.loads(request(port, "GET", "/config")[2]).get("motd") == "second":
            ok = True
            break
        time.sleep(0.05)
    check(ok, "SIGHUP reloads the configuration")
    check(request(port, "GET", "/")[1].get("x-test") == "two", "requests see the new one")
    with open(config, "w") as f:
        f.write("{ not json")
    proc.send_signal(signal.SIGHUP)
    refused = False
    for _ in range(100):  # until the log says the reload was refused
        with open(log, errors="replace") as f:
            if "configuration not reloaded, the old one stays" in f.read():
                refused = True
                break
        time.sleep(0.05)
    check(refused, "a bad file is refused and the log says why")
    check(json.loads(request(port, "GET", "/config")[2]).get("motd") == "second",
          "the old configuration stays")

    print("-- /burn, /stats, /metrics, /dashboard")
    status, _, body = request(port, "GET", "/burn?ms=30")
    check(status == 200 and body.startswith(b"burned 30 ms"), "/burn?ms=30: %r" % body[:40])
    check(request(port, "GET", "/burn?ms=abc")[0] == 400, "/burn?ms=abc is 400")
    stats = json.loads(request(port, "GET", "/stats")[2])
    check(len(stats["loops"]) == 2 and stats["name"] == "httpd", "/stats: two loops")
    check(b"quiesce_loop_events_total" in request(port, "GET", "/metrics")[2], "/metrics")
    check(b"<canvas" in request(port, "GET", "/dashboard")[2], "/dashboard")

    print("-- limits")
    for what, raw, want in [
        ("header section over --max-header", "GET / HTTP/1.1\r\nHost: t\r\nX: %s\r\n\r\n"
         % ("x" * 5000), 431),
        ("target over --max-uri", "GET /%s HTTP/1.1\r\nHost: t\r\n\r\n" % ("a" * 2000), 414),
        ("body over --max-body", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\n",
         413),
        ("Content-Length with Transfer-Encoding",
         "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n"
         "0\r\n\r\n", 400),
        ("two Content-Lengths", "POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
         "Content-Length: 2\r\n\r\nab", 400),
        ("garbage", "\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ]:
        c = Raw(port)
        c.send(raw)
        status = c.reply()[0]
        check(status == want and c.closed_within(3), "%s: %s and close" % (what, status))
        c.close()
    c = Raw(port)
    c.send("GET / HTTP/1.1\r\nHost: t\r\nX-Slow: ")
    t = time.monotonic()
    status = c.reply()[0]
    check(status == 408 and c.closed_within(3) and time.monotonic() - t < 3,
          "a head that dribbles in: 408 and close after the header timeout")
    c.close()
    c = Raw(port)
    c.send("GET / HTTP/1.1\r\nHost: t\r\n\r\n")
    check(c.reply()[0] == 200 and c.closed_within(6), "an idle keep-alive connection is closed")
    c.close()

    print("-- pipelining without reading; a reset mid-body")
    before = rss_kib(proc.pid)
    c = Raw(port)
    # 10,000 requests as one stream sent from an offset: a send that times
    # out may have sent part of what it was given, and the rest goes later.
    payload = memoryview(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * 10000)
    c.s.settimeout(0.2)
    offset = 0
    deadline = time.monotonic() + 10
    while offset < len(payload) and time.monotonic() < deadline:
        try:
            offset += c.s.send(payload[offset:offset + 65536])
        except socket.timeout:
            break  # the server stopped reading us: TCP pushes back
    mid = rss_kib(proc.pid)
    others = request(port, "GET", "/")[0] == 200
    check(others, "others are served while one client pipelines without reading")
    # Now read every reply on a thread while the rest is sent.
    c.s.settimeout(20)
    counted = []

    def read_replies():
        n = 0
        while n < 10000:
            status, _, _ = c.reply()
            if status != 200:
                break
            n += 1
        counted.append(n)

    reader = threading.Thread(target=read_replies)
    reader.start()
    while offset < len(payload):
        offset += c.s.send(payload[offset:offset + 65536])
    reader.join(60)
    replies = counted[0] if counted else 0
    check(replies == 10000, "10,000 pipelined requests get 10,000 replies in order (%d)" % replies)
    check(mid - before < 64 * 1024, "memory stays bounded meanwhile (RSS +%d KiB)" % (mid - before))
    c.close()
    c = Raw(port)
    c.send("POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 60000\r\n\r\n" + "b" * 20000)
    c.s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()  # RST
    check(request(port, "GET", "/")[0] == 200, "a client that resets mid-body harms nobody")

    print("-- files with sendfile and through AIO")
    with open(config, "w") as f:  # the reload checks above left it broken
        json.dump({}, f)
    sendfile_section(binary, root, config, big)

    print("-- SIGTERM")
    proc.send_signal(signal.SIGTERM)
    try:
        rc = proc.wait(timeout=15)
    except Exception:  # noqa: BLE001
        rc = None
    check(rc == 0, "SIGTERM: httpd exits 0 (%s)" % rc)
    return kvtest.report(t0)


if __name__ == "__main__":
    kvtest.run_script(main)
