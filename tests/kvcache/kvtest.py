"""What the kvcache test scripts (differential.py, pymemcache_test.py,
scale_out_test.py, memccapable_test.py, memcached_tool_test.py), and the httpd ones, share: starting kvcache, memcached
and nutcracker on loopback ports of their own, the registry of those child
processes (killed, and their logs removed, however the script ends), the
hard time limit, the check/result helpers and the skip (exit 77) logic.

A script puts its own directory first on sys.path and imports this module:

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import kvtest

then runs `kvtest.run_script(main)` as its __main__.
"""
import importlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HARD_LIMIT_S = 120      # a whole script, whatever happens (run_script)
LOG_TAIL = 2500         # characters of each child's log shown on failure
CHILDREN = []           # (name, Popen, logfile path)
TEMPFILES = []          # removed at the end of the run
CHECKS = 0
FAILED = []             # checks that failed; the run goes on unless fatal


class Failure(Exception):
    pass


# ------------------------------------------------------------ skipping (77)

def skip(tool, why=""):
    """Exit 77 (meson: skipped): `tool` is not installed."""
    print("SKIP: %s is not installed%s" % (tool, why))
    sys.exit(77)


def require_pymemcache(*modules):
    """Imports pymemcache's `modules`. python3-pymemcache is installed for
    Debian's interpreter; another python3 first on PATH (pyenv) does not see
    it: then the script runs again under /usr/bin/python3. Without it at
    all, the script is skipped."""
    try:
        for name in modules:
            importlib.import_module(name)
    except ImportError:
        if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") \
                and os.access("/usr/bin/python3", os.X_OK):
            os.execv("/usr/bin/python3", ["/usr/bin/python3"] + sys.argv)
        skip("pymemcache (python3-pymemcache)")


def kvcache_binary(usage):
    """The KVCACHE_BINARY argument, made absolute; None, after saying why,
    when it is missing or not an executable."""
    if len(sys.argv) < 2:
        print("usage: " + usage)
        return None
    binary = os.path.abspath(sys.argv[1])
    if not os.access(binary, os.X_OK):
        print("FAIL: %s is not an executable" % binary)
        return None
    return binary


# ------------------------------------------------------------------ checks

def check(cond, what, fatal=False):
    """Records one check. A failed check is reported and the run goes on
    (so that one run shows every problem), unless `fatal`: then what follows
    depends on it and the run stops."""
    global CHECKS
    CHECKS += 1
    if cond:
        print("  ok: " + what, flush=True)
        return True
    print("  FAILED: " + what, flush=True)
    FAILED.append(what)
    if fatal:
        raise Failure(what)
    return False


def report(t0):
    """The verdict on the checks made since `t0`: the exit code."""
    if FAILED:
        print("FAIL: %d of %d checks failed in %.1f s:" % (len(FAILED), CHECKS, time.monotonic() - t0))
        for f in FAILED:
            print("  - " + f)
        dump_logs()
        return 1
    print("PASS: %d checks in %.1f s" % (CHECKS, time.monotonic() - t0))
    return 0


# --------------------------------------------------------- child processes

def free_port(kind=socket.SOCK_STREAM):
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def new_tempfile(prefix, suffix):
    f = tempfile.NamedTemporaryFile(prefix=prefix, suffix=suffix, delete=False)
    f.close()
    TEMPFILES.append(f.name)
    return f.name


def new_tempdir(prefix):
    path = tempfile.mkdtemp(prefix=prefix)
    TEMPFILES.append(path)
    return path


def spawn(name, cmd, log, stdout_to_log=False, stderr_to_log=True):
    """Starts `cmd` as a registered child; what it prints goes to `log`
    (stderr, and stdout too if asked) or nowhere."""
    with open(log, "w") as logf:
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=logf if stdout_to_log else subprocess.DEVNULL,
                                stderr=logf if stderr_to_log else subprocess.DEVNULL)
    CHILDREN.append((name, proc, log))
    return proc


def wait_listening(port, proc, name, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise Failure("%s exited with %s" % (name, proc.returncode))
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise Failure("%s is not listening on %d after %d s" % (name, port, seconds))


def port_from_log(proc, log, pattern, name, seconds=15, said=""):
    """The port a child logs: the first group of regex `pattern` in its log,
    waited for up to `seconds`."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with open(log, errors="replace") as f:
            m = re.search(pattern, f.read())
        if m:
            return int(m.group(1))
        if proc.poll() is not None:
            raise Failure("%s exited with %s before listening%s" % (name, proc.returncode, said))
        time.sleep(0.02)
    raise Failure("%s did not log its port within %d s%s" % (name, seconds, said))


def start_kvcache(binary, *args, connect=False, cmd_in_errors=False):
    """kvcache on 127.0.0.1 -p 0 with `args`: (Popen, the port it logs in
    'listening on 127.0.0.1:PORT'). With `connect`, also waits until that
    port accepts a connection; with `cmd_in_errors`, a failure to start
    names the command."""
    log = new_tempfile("kvcache-", ".log")
    cmd = [binary, "-p", "0", "-l", "127.0.0.1"] + [str(a) for a in args]
    proc = spawn("kvcache", cmd, log)
    said = (": %s" % cmd) if cmd_in_errors else ""
    port = port_from_log(proc, log, r"listening on 127\.0\.0\.1:(\d+)", "kvcache", 15, said)
    if connect:
        wait_listening(port, proc, "kvcache", 15)
    print("started: %s  (port %d, pid %d)" % (" ".join(cmd), port, proc.pid), flush=True)
    return proc, port


def start_memcached(binary, *args):
    """memcached on 127.0.0.1, a free port, no UDP, with `args`:
    (Popen, port)."""
    port = free_port()
    log = new_tempfile("memcached-", ".log")
    cmd = [binary, "-p", str(port), "-l", "127.0.0.1", "-U", "0"] + [str(a) for a in args]
    if os.geteuid() == 0:
        cmd += ["-u", "root"]
    proc = spawn("memcached", cmd, log, stdout_to_log=True)
    wait_listening(port, proc, "memcached", 15)
    print("started: %s  (pid %d)" % (" ".join(cmd), proc.pid), flush=True)
    return proc, port


def start_nutcracker(binary, conf, port, stats_port):
    """nutcracker with the config `conf` (listening on `port`), its stats
    on `stats_port` aggregated every 200 ms, its log at -v 5: the Popen."""
    log = new_tempfile("nutcracker-", ".log")
    proc = spawn("nutcracker", [binary, "-c", conf, "-s", str(stats_port), "-a", "127.0.0.1",
                                "-o", log, "-v", "5", "-i", "200"], log, stderr_to_log=False)
    wait_listening(port, proc, "nutcracker")
    print("started: nutcracker on 127.0.0.1:%d (stats %d, pid %d)" % (port, stats_port, proc.pid))
    return proc


def stop_children():
    for name, proc, log in CHILDREN:
        if proc.poll() is None:
            proc.kill()
    for name, proc, log in CHILDREN:
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            print("warning: %s pid %d did not die" % (name, proc.pid))


def dump_logs():
    for name, proc, log in CHILDREN:
        try:
            with open(log, errors="replace") as f:
                tail = f.read()[-LOG_TAIL:]
        except OSError:
            continue
        print("---- %s pid %d (exit %s) log tail ----\n%s" % (name, proc.pid, proc.poll(), tail))


def remove_tempfiles():
    for f in TEMPFILES:
        if os.path.isdir(f) and not os.path.islink(f):
            shutil.rmtree(f, ignore_errors=True)
            continue
        try:
            os.unlink(f)
        except OSError:
            pass


# ----------------------------------------------------------------- the run

def on_alarm(signum, frame):
    raise Failure("the test exceeded its hard limit of %d s" % HARD_LIMIT_S)


def on_term(signum, frame):
    raise Failure("interrupted by signal %d" % signum)


def run_script(main, hard_limit=HARD_LIMIT_S, log_tail=LOG_TAIL):
    """Runs `main` (which returns the exit code) within `hard_limit` seconds
    (None: no limit), SIGTERM and SIGINT ending it as failures; then kills
    the children, removes the temporary files and exits."""
    global HARD_LIMIT_S, LOG_TAIL
    HARD_LIMIT_S, LOG_TAIL = hard_limit, log_tail
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    if hard_limit is not None:
        signal.alarm(hard_limit)
    rc = 1
    try:
        rc = main()
    except Failure as e:
        print("FAIL: %s" % e)
        dump_logs()
    except Exception as e:  # noqa: BLE001
        import traceback
        traceback.print_exc()
        print("FAIL: unexpected %r" % e)
        dump_logs()
    finally:
        signal.alarm(0)
        stop_children()
        remove_tempfiles()
    sys.exit(rc)
