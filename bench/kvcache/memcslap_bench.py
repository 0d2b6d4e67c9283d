#!/usr/bin/env python3
"""kvcache against memcached as a user compares them: both on their defaults
(kvcache one loop per CPU, memcached 4 threads), neither pinned, driven by
libmemcached's memcslap on the same machine, which runs a thread per
connection and so competes with the servers for the CPUs.

Usage: memcslap_bench.py KVCACHE [--rounds N] [--concurrency C]
                          [--requests R] [--variant NAME=ARGS ...]

Each variant is kvcache started with ARGS added (the default variant has
none). In each round every server runs memcslap's set test and then its get
test, the servers in turn; the medians of the rounds are printed with the
ratio against memcached's (above 1: kvcache is faster). Needs memcached and
libmemcached-tools (apt-get install memcached libmemcached-tools).
"""
import argparse
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(port, process, deadline_s=10.0):
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"server on port {port} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port} after {deadline_s} s")


def memcslap(port, test, concurrency, requests):
    """Requests per second of one memcslap run."""
    out = subprocess.run(
        ["memcslap", f"--servers=127.0.0.1:{port}", f"--concurrency={concurrency}",
         f"--execute-number={requests}", f"--test={test}"],
        capture_output=True, text=True, timeout=300, check=True).stdout
    match = re.search(r"Time total:\s+([0-9.]+) seconds", out)
    if match is None:
        raise RuntimeError(f"memcslap printed no total:\n{out}")
    return concurrency * requests / float(match.group(1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("kvcache")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000,
                        help="requests per memcslap connection")
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME=ARGS: kvcache with these arguments added (repeatable)")
    args = parser.parse_args()
    for tool in ("memcached", "memcslap"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} is missing: apt-get install memcached libmemcached-tools")

    variants = [("kvcache", [])]
    for spec in args.variant:
        name, _, extra = spec.partition("=")
        variants.append((f"kvcache {name}", extra.split()))
    servers = []  # (name, port, process)
    try:
        port = free_port()
        servers.append(("memcached", port, subprocess.Popen(
            ["memcached", "-l", "127.0.0.1", "-p", str(port), "-U", "0", "-u", "nobody"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        for name, extra in variants:
            port = free_port()
            servers.append((name, port, subprocess.Popen(
                [args.kvcache, "-p", str(port), *extra],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)))
        for _, port, process in servers:
            wait_listening(port, process)
        rates = {(name, test): [] for name, _, _ in servers for test in ("set", "get")}
        for _ in range(args.rounds):
            for name, port, _ in servers:
                for test in ("set", "get"):
                    rates[(name, test)].append(
                        memcslap(port, test, args.concurrency, args.requests))
    finally:
        for _, _, process in servers:
            process.terminate()
        for _, _, process in servers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()

    print(f"memcslap --concurrency={args.concurrency} --execute-number={args.requests}, "
          f"medians of {args.rounds} rounds; servers on their defaults, not pinned")
    print(f"{'server':<24} {'set req/s':>10} {'ratio':>6} {'get req/s':>10} {'ratio':>6}")
    for name, _, _ in servers:
        row = f"{name:<24}"
        for test in ("set", "get"):
            ours = statistics.median(rates[(name, test)])
            theirs = statistics.median(rates[("memcached", test)])
            row += f" {ours:>10.0f} {ours / theirs:>5.2f}x"
        print(row)


if __name__ == "__main__":
    main()
