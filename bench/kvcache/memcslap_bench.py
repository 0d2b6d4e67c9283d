#!/usr/bin/env python3
"""kvcache against memcached as a user compares them: both on their defaults
(kvcache one loop per CPU, pinned one per CPU as it does by default;
memcached 4 threads, not pinned) and no taskset, driven by libmemcached's
memcslap on the same machine, which runs a thread per connection and so
competes with the servers for the CPUs.

Usage: memcslap_bench.py KVCACHE [--rounds N] [--concurrency C]
                          [--requests R] [--variant NAME=ARGS ...]

Each variant is kvcache started with ARGS added (the default variant has
none). In each round every server runs memcslap's set test and then its get
test, the servers in turn (the order rotates between rounds). A rate is
memcslap's own timing of its requests ("Time to set/get N keys"), without its
key generation, thread start and, for the get test, its single-threaded
pre-load. The medians of the rounds are printed with the ratio against
memcached's (above 1: kvcache is faster). Needs memcached and
libmemcached-tools (apt-get install memcached libmemcached-tools); exits 77
without them.
"""
import argparse
import os
import platform
import re
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
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
    """Requests per second of one memcslap run, by memcslap's own timing.
    --flush empties the server first (timed apart), so that every run
    measures the same cache: memcslap makes new keys each time."""
    run = subprocess.run(
        ["memcslap", f"--servers=127.0.0.1:{port}", f"--concurrency={concurrency}",
         f"--execute-number={requests}", f"--test={test}", "--flush"],
        capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        raise RuntimeError(f"memcslap --test={test} exited with {run.returncode}:\n"
                           f"{run.stdout}{run.stderr}")
    match = re.search(rf"Time to {test}\s+(\d+) keys by\s+\d+ threads:\s+([0-9.]+) seconds",
                      run.stdout)
    if match is None:
        raise RuntimeError(f"memcslap printed no timing of its {test}s:\n{run.stdout}")
    keys, seconds = int(match.group(1)), float(match.group(2))
    if keys < concurrency * requests:
        raise RuntimeError(f"memcslap --test={test}: {keys} of {concurrency * requests} done")
    return keys / seconds


def log_path(log_dir, name):
    return os.path.join(log_dir, re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".log")


def start(name, argv, log_dir):
    """Starts a server and waits until it listens on the port in argv."""
    log = open(log_path(log_dir, name), "w")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    log.close()
    port = int(argv[argv.index("-p") + 1])
    try:
        wait_listening(port, process)
    except RuntimeError:
        process.kill()
        process.wait()
        with open(log_path(log_dir, name)) as f:
            raise RuntimeError(f"{name} did not start:\n{f.read()}") from None
    return name, port, process


def machine():
    model = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    version = subprocess.run(["memcached", "-V"], capture_output=True, text=True).stdout.strip()
    return f"{model}, {os.cpu_count()} CPUs, Linux {platform.release()}; {version}"


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
    if args.rounds < 1 or args.concurrency < 1 or args.requests < 1:
        sys.exit("--rounds, --concurrency and --requests must be at least 1")
    if not os.access(args.kvcache, os.X_OK):
        sys.exit(f"{args.kvcache}: not an executable (build it: ninja -C build-bench "
                 "examples/kvcache/kvcache)")
    for tool in ("memcached", "memcslap"):
        if shutil.which(tool) is None:
            print(f"{tool} is missing: apt-get install memcached libmemcached-tools",
                  file=sys.stderr)
            sys.exit(77)

    variants = [("kvcache", [])]
    for spec in args.variant:
        name, _, extra = spec.partition("=")
        extra = shlex.split(extra)
        if "-p" in extra or "--port" in extra:
            sys.exit(f"variant {name}: the script picks the port")
        variants.append((f"kvcache {name}", extra))
    if len({name for name, _ in variants}) != len(variants):
        sys.exit("two variants have the same name")
    servers = []  # (name, port, process)
    log_dir = tempfile.mkdtemp(prefix="memcslap_bench.")
    try:
        # One at a time: a port picked for the next server is free only once
        # the one before it listens.
        servers.append(start("memcached", ["memcached", "-l", "127.0.0.1", "-p",
                                           str(free_port()), "-U", "0", "-u", "nobody"], log_dir))
        for name, extra in variants:
            servers.append(start(name, [args.kvcache, "-p", str(free_port()), *extra], log_dir))
        rates = {(name, test): [] for name, _, _ in servers for test in ("set", "get")}
        for round_index in range(args.rounds):
            shift = round_index % len(servers)
            for name, port, process in servers[shift:] + servers[:shift]:
                for test in ("set", "get"):
                    try:
                        rates[(name, test)].append(
                            memcslap(port, test, args.concurrency, args.requests))
                    except (RuntimeError, subprocess.TimeoutExpired) as error:
                        raise RuntimeError(f"{name}: {error} (server logs in {log_dir})") from None
                    if process.poll() is not None:
                        raise RuntimeError(f"{name} exited with {process.returncode} "
                                           f"(its log: {log_path(log_dir, name)})")
    finally:
        for _, _, process in servers:
            process.terminate()
        for _, _, process in servers:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    shutil.rmtree(log_dir, ignore_errors=True)  # kept when something failed

    print(machine())
    print(f"memcslap --concurrency={args.concurrency} --execute-number={args.requests}, "
          f"medians of {args.rounds} rounds; servers on their defaults, no taskset")
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
