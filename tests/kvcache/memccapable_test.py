#!/usr/bin/python3
"""libmemcached's conformance tester, memccapable, against kvcache and
against Debian's memcached, ascii protocol only (-a).

usage: memccapable_test.py KVCACHE_BINARY [MEMCACHED_BINARY]

Both servers are started here on loopback ports of their own (kvcache with
-p 0, its port read from the log line; memcached on a port found free by
binding port 0), with the same -t/-m. Every test that passes on memcached
must pass on kvcache; a test that fails on memcached too may fail on
kvcache. Both result lists are printed.

Two rounds: the default settings, then both servers with -C (no CAS), the
setting under which flush_all has to work without CAS values.

Exit 0 on success, 1 on failure, 77 only if memccapable or memcached is not
installed.
"""
import os
import re
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kvtest  # noqa: E402


def parse_results(out):
    """{test name: pass|fail|skip}. memccapable prints the name on stdout and
    the verdict ([pass], [FAIL]) on stderr, with -v the failed assertion in
    between; a test's verdict is the first one after its name."""
    heads = list(re.finditer(r"^(ascii [a-z0-9 _-]+?)[ \t]{2,}", out, re.M))
    results = {}
    for i, h in enumerate(heads):
        end = heads[i + 1].start() if i + 1 < len(heads) else len(out)
        m = re.search(r"\[(pass|fail|skip|quit)\]", out[h.end():end], re.I)
        results[h.group(1).strip()] = m.group(1).lower() if m else "no verdict"
    return results


def run_memccapable(tool, port, name):
    """{test name: result} from one memccapable -a run, and its exit code."""
    cmd = [tool, "-a", "-v", "-t", "5", "-h", "127.0.0.1", "-p", str(port)]
    print("\n$ %s    # against %s" % (" ".join(cmd), name), flush=True)
    # stdout unbuffered, so that names and verdicts (stderr) stay in order
    stdbuf = shutil.which("stdbuf")
    full = ([stdbuf, "-o0", "-e0"] if stdbuf else []) + cmd
    try:
        r = subprocess.run(full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=40,
                           stdin=subprocess.DEVNULL)
        out = r.stdout.decode(errors="replace")
        rc = r.returncode
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode(errors="replace")
        out += "\n(memccapable did not finish within 40 s)"
        rc = None
    print(out.rstrip())
    print("(exit %s)" % rc, flush=True)
    return parse_results(out), rc


def run_round(title, binary, memcached, tool, extra):
    """One round: both servers with `extra`, memccapable on each. Problems."""
    print("\n==== %s ====" % title, flush=True)
    kv_proc, kv_port = kvtest.start_kvcache(binary, "-t", "2", "-m", "64", *extra, connect=True)
    mc_proc, mc_port = kvtest.start_memcached(memcached, "-t", "2", "-m", "64", *extra)
    mc, mc_rc = run_memccapable(tool, mc_port, "memcached " + " ".join(extra))
    kv, kv_rc = run_memccapable(tool, kv_port, "kvcache " + " ".join(extra))

    names = list(mc) + [n for n in kv if n not in mc]
    print("\n%s:\n%-32s %-10s %-10s" % (title, "test", "memcached", "kvcache"))
    for n in names:
        print("%-32s %-10s %-10s" % (n, mc.get(n, "-"), kv.get(n, "-")))

    problems = []
    if not mc:
        problems.append("%s: memccapable reported no results against memcached" % title)
    passed_mc = [n for n in mc if mc[n] == "pass"]
    for n in passed_mc:
        if kv.get(n) != "pass":
            problems.append("%s: '%s' passes on memcached, %s on kvcache" % (title, n, kv.get(n, "not run")))
    for n in mc:
        if mc[n] != "pass":
            print("note: %s is %s on memcached too" % (n, mc[n]))
    if mc_rc == 0 and kv_rc != 0:
        problems.append("%s: memccapable exit %s on kvcache, 0 on memcached" % (title, kv_rc))
    for name, proc in (("kvcache", kv_proc), ("memcached", mc_proc)):
        if proc.poll() is not None:
            problems.append("%s: %s exited (%s) during the run" % (title, name, proc.returncode))
        else:
            proc.kill()
            proc.wait(timeout=5)
    return problems, len(passed_mc)


def main():
    binary = kvtest.kvcache_binary("memccapable_test.py KVCACHE_BINARY [MEMCACHED_BINARY]")
    if binary is None:
        return 1
    tool = shutil.which("memccapable") or shutil.which("memcapable")
    if tool is None:
        kvtest.skip("memccapable")
    memcached = sys.argv[2] if len(sys.argv) > 2 else (shutil.which("memcached") or "/usr/bin/memcached")
    if not os.access(memcached, os.X_OK):
        kvtest.skip("memcached")
    t0 = time.monotonic()

    problems, compared = [], 0
    for title, extra in (("default settings", []), ("-C (no CAS)", ["-C"])):
        p, n = run_round(title, binary, memcached, tool, extra)
        problems += p
        compared += n

    print()
    if problems:
        for p in problems:
            print("FAILED: " + p)
        print("FAIL: %d problem(s) in %.1f s" % (len(problems), time.monotonic() - t0))
        kvtest.dump_logs()
        return 1
    print("PASS: all %d ascii test runs that pass on memcached pass on kvcache (%.1f s)"
          % (compared, time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    kvtest.run_script(main)
