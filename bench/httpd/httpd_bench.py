#!/usr/bin/env python3
"""httpd against nginx, both driven by wrk, in one run; and the fairness demo.

usage: httpd_bench.py HTTPD_BINARY [--seconds S] [--rounds R] [--workers N]
                      [--only all|nginx|fairness]

Both servers run as processes on 127.0.0.1 ports of their own, with N loops
(httpd --threads N) and N worker processes (nginx worker_processes N), and
serve the same bytes: `/` is httpd's fixed page (nginx: `return 200` with the
same body, from memory, its fastest path) and /files/big.bin a 1 MiB file
(nginx: sendfile). wrk (one thread: the machine has two CPUs) measures:

- keep-alive GETs of `/` on 64 and on 512 connections;
- pipelined GETs of `/`, 16 per write (wrk's Lua script), 64 connections;
- the 1 MiB file on 16 connections.

Each scenario alternates httpd and nginx for R rounds of S seconds and prints
the medians and the ratios (throughput ours/theirs, p99 theirs/ours: above 1
means httpd is better).

Fairness: p99 latency of `/` from 50 connections while 4 connections request
/burn?ms=200 in a loop, with httpd's default slice (500 us) and with
--slice-us 0 (no slicing: each burn holds its loop for 200 ms); medians of R
runs with slicing, one without.

Needs Debian's nginx (nginx-light is enough) and wrk; says which is missing
and exits 77 otherwise.
"""
import argparse
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

INDEX = ("<!doctype html>\n<html><head><title>quiesce httpd</title></head>\n"
         "<body><h1>quiesce httpd</h1><p>Served by a cooperative event loop.</p></body></html>\n")
PIPELINE_LUA = """
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do r[i] = wrk.format(nil, "/") end
  req = table.concat(r)
end
request = function() return req end
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, proc, name):
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit("%s exited with %s" % (name, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("%s is not listening on %d" % (name, port))


def nginx_config(top, port, workers):
    body = INDEX.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    user = "user root;\n" if os.geteuid() == 0 else ""
    return """%sworker_processes %d;
daemon off;
pid %s/nginx.pid;
error_log %s/error.log warn;
events { worker_connections 8192; }
http {
    access_log off;
    server_tokens off;
    keepalive_requests 100000000;
    keepalive_timeout 75s;
    sendfile on;
    tcp_nopush on;
    client_body_temp_path %s/tmp;
    server {
        listen 127.0.0.1:%d backlog=4096;
        location = / { default_type "text/html; charset=utf-8"; return 200 "%s"; }
        location /files/ { alias %s/root/; }
    }
}
""" % (user, workers, top, top, top, port, body, top)


def parse_wrk(text):
    """(requests/s, p99 in ms) from wrk --latency output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    m = re.search(r"^\s+99%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    scale = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    p99 = float(m.group(1)) * scale[m.group(2)] if m else float("nan")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", text)
    return rps, p99, errors.group(0) if errors else ""


def wrk(url, connections, seconds, script=None, script_args=()):
    cmd = ["wrk", "-t1", "-c%d" % connections, "-d%ds" % seconds, "--latency", "--timeout", "10s"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    if script_args:
        cmd += ["--"] + list(script_args)
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=seconds + 60)
    return parse_wrk(out.stdout.decode())


class Servers:
    def __init__(self, httpd, workers, top):
        self.procs = []
        self.top = top
        self.httpd_binary = httpd
        self.workers = workers
        self.nginx_port = free_port()
        with open(os.path.join(top, "nginx.conf"), "w") as f:
            f.write(nginx_config(top, self.nginx_port, workers))
        nginx = subprocess.Popen(["nginx", "-c", os.path.join(top, "nginx.conf"), "-p", top],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(nginx)
        wait_listening(self.nginx_port, nginx, "nginx")
        self.httpd_port, self.httpd = self.start_httpd()

    def start_httpd(self, *extra):
        port = free_port()
        proc = subprocess.Popen([self.httpd_binary, "--listen", "127.0.0.1:%d" % port,
                                 "--threads", str(self.workers), "--root",
                                 os.path.join(self.top, "root"), "--log-level", "warn",
                                 "--keep-alive-s", "600"] + list(extra),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.procs.append(proc)
        wait_listening(port, proc, "httpd")
        return port, proc

    def stop_httpd(self, proc):
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        self.procs.remove(proc)

    def close(self):
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


def compare(servers, name, path, connections, seconds, rounds, script=None, script_args=()):
    ours, theirs = [], []
    for r in range(rounds):
        for who, port, out in (("httpd", servers.httpd_port, ours),
                               ("nginx", servers.nginx_port, theirs)):
            rps, p99, errors = wrk("http://127.0.0.1:%d%s" % (port, path), connections, seconds,
                                   script, script_args)
            out.append((rps, p99))
            if errors:
                print("    %s round %d: %s" % (who, r + 1, errors))
    o_rps = statistics.median(x[0] for x in ours)
    t_rps = statistics.median(x[0] for x in theirs)
    o_p99 = statistics.median(x[1] for x in ours)
    t_p99 = statistics.median(x[1] for x in theirs)
    if o_p99 > 0 and t_p99 > 0:
        latency = "%.2f ms | %.2f ms | %.2fx" % (o_p99, t_p99, t_p99 / o_p99)
    else:  # wrk's percentiles are not kept for pipelined requests
        latency = "n/a | n/a | n/a"
    print("| %s | %.0f | %.0f | %.2fx | %s |" % (name, o_rps, t_rps, o_rps / t_rps, latency),
          flush=True)


def fairness(servers, seconds, slice_args, label, rounds):
    runs = []
    for _ in range(rounds):
        port, proc = servers.start_httpd(*slice_args)
        burn = subprocess.Popen(["wrk", "-t1", "-c4", "-d%ds" % (seconds + 2), "--timeout", "30s",
                                 "http://127.0.0.1:%d/burn?ms=200" % port],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        time.sleep(1)
        rps, p99, errors = wrk("http://127.0.0.1:%d/" % port, 50, seconds)
        out = burn.communicate(timeout=seconds + 60)[0].decode()
        burns = re.search(r"(\d+) requests in", out)
        servers.stop_httpd(proc)
        runs.append((rps, p99, int(burns.group(1)) if burns else float("nan")))
    rps = statistics.median(r[0] for r in runs)
    p99 = statistics.median(r[1] for r in runs)
    burns = statistics.median(r[2] for r in runs)
    print("| %s | %.0f | %.2f ms | %g |" % (label, rps, p99, burns), flush=True)
    return p99


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("httpd")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--only", choices=("all", "nginx", "fairness"), default="all",
                        help="run the nginx comparison, the fairness demo, or both")
    args = parser.parse_args()
    for tool, package in (("nginx", "nginx-light"), ("wrk", "wrk")):
        if shutil.which(tool) is None:
            print("SKIP: %s is not installed (apt-get install %s)" % (tool, package))
            return 77
    top = tempfile.mkdtemp(prefix="httpd-bench-")
    os.chmod(top, 0o755)
    os.makedirs(os.path.join(top, "root"))
    os.makedirs(os.path.join(top, "tmp"))
    with open(os.path.join(top, "root", "big.bin"), "wb") as f:
        f.write(os.urandom(1 << 20))
    lua = os.path.join(top, "pipeline.lua")
    with open(lua, "w") as f:
        f.write(PIPELINE_LUA)
    servers = Servers(os.path.abspath(args.httpd), args.workers, top)
    try:
        print("httpd (%d loops) vs nginx (%d workers), wrk -t1, %d rounds of %d s, medians\n" %
              (args.workers, args.workers, args.rounds, args.seconds))
        if args.only != "fairness":
            print("| scenario | httpd req/s | nginx req/s | throughput ratio | httpd p99 "
                  "| nginx p99 | p99 ratio |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            compare(servers, "`/`, 64 keep-alive connections", "/", 64, args.seconds, args.rounds)
            compare(servers, "`/`, 512 keep-alive connections", "/", 512, args.seconds,
                    args.rounds)
            compare(servers, "`/`, 64 connections, 16 pipelined", "/", 64, args.seconds,
                    args.rounds, lua, ["16"])
            compare(servers, "1 MiB file, 16 connections", "/files/big.bin", 16, args.seconds,
                    args.rounds)
        servers.stop_httpd(servers.httpd)
        if args.only == "nginx":
            return 0
        print("\nfairness: `/` on 50 connections while 4 connections loop on /burn?ms=200, "
              "medians of %d runs\n" % args.rounds)
        print("| httpd | `/` req/s | `/` p99 | burns done |")
        print("| --- | ---: | ---: | ---: |")
        sliced = fairness(servers, args.seconds, [], "slices of 500 us (default)", args.rounds)
        unsliced = fairness(servers, args.seconds, ["--slice-us", "0", "--stall-ms", "0"],
                            "--slice-us 0 (no slicing)", 1)
        print("\np99 with slicing %.2f ms (target: at most 2 slices, 1 ms); without %.2f ms: %.0fx"
              % (sliced, unsliced, unsliced / sliced))
    finally:
        servers.close()
        shutil.rmtree(top, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
