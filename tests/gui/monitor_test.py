#!/usr/bin/env python3
"""examples/gtk_monitor and examples/qt_monitor on a real X server: Xvfb
runs one, an echo client
connects to the port it serves and keeps its loops busy, xdotool clicks its
"Burn on the loops" button as a person would (the pointer, through XTEST),
and what the window displays (its labels, written by --report after each
refresh) must change: the connection appears, events/s rises above zero, the
burn's progress reaches "burned"; meanwhile the echo client keeps getting
its answers. SIGTERM then stops it with exit code 0. A screenshot of the
window is saved (BUILD_DIR/meson-logs/gtk_monitor.png, qt_monitor.png).
Skipped, saying so, only where Xvfb or xdotool is not installed.

usage: monitor_test.py gtk|qt MONITOR_BINARY SCREENSHOT_PATH
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kvcache"))
import kvtest  # noqa: E402

check = kvtest.check


def start_xvfb():
    """Xvfb on a display it picks (-displayfd); returns (process, ':N')."""
    read_fd, write_fd = os.pipe()
    log = kvtest.new_tempfile("xvfb-", ".log")
    with open(log, "w") as logf:
        proc = subprocess.Popen(["Xvfb", "-displayfd", str(write_fd), "-screen", "0",
                                 "1024x768x24", "-nolisten", "tcp"],
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf,
                                pass_fds=(write_fd,))
    kvtest.CHILDREN.append(("Xvfb", proc, log))
    os.close(write_fd)
    number = b""
    deadline = time.monotonic() + 20
    while not number.endswith(b"\n") and time.monotonic() < deadline:
        chunk = os.read(read_fd, 16)
        if not chunk:
            break
        number += chunk
    os.close(read_fd)
    if not number.strip():
        raise kvtest.Failure("Xvfb did not report its display")
    return proc, ":" + number.decode().strip()


def read_report(path):
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def wait_report(path, proc, what, predicate, seconds=20):
    """The first report (written once a second) for which `predicate` holds."""
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise kvtest.Failure("the monitor exited with %s" % proc.returncode)
        report = read_report(path)
        if report is not None:
            last = report
            if predicate(report):
                return report
        time.sleep(0.1)
    print("last report: %s" % json.dumps(last, indent=1))
    check(False, what)
    return last


def number(text):
    try:
        return float(text.split()[0])
    except (ValueError, IndexError, AttributeError):
        return -1.0


def main():
    if len(sys.argv) < 4 or sys.argv[1] not in ("gtk", "qt"):
        print("usage: monitor_test.py gtk|qt MONITOR_BINARY SCREENSHOT_PATH")
        return 1
    toolkit = sys.argv[1]
    name = toolkit + "_monitor"
    for tool, package in (("Xvfb", "xvfb"), ("xdotool", "xdotool")):
        if shutil.which(tool) is None:
            kvtest.skip(tool, " (apt-get install %s)" % package)
    binary = os.path.abspath(sys.argv[2])
    screenshot = os.path.abspath(sys.argv[3])
    t0 = time.monotonic()
    _, display = start_xvfb()
    env = dict(os.environ, DISPLAY=display, GDK_BACKEND="x11", GTK_A11Y="none",
               NO_AT_BRIDGE="1", GSK_RENDERER="cairo", QT_QPA_PLATFORM="xcb")
    env.pop("WAYLAND_DISPLAY", None)
    report_path = kvtest.new_tempfile(name + "-", ".json")
    os.unlink(report_path)
    if os.path.exists(screenshot):
        os.unlink(screenshot)
    log = kvtest.new_tempfile(name + "-", ".log")
    with open(log, "w") as logf:
        proc = subprocess.Popen([binary, "--listen", "127.0.0.1:0", "--threads", "2",
                                 "--report", report_path, "--screenshot", screenshot],
                                stdin=subprocess.DEVNULL, stdout=logf, stderr=logf, env=env)
    kvtest.CHILDREN.append((name, proc, log))
    port = kvtest.port_from_log(proc, log, r"listening on 127\.0\.0\.1:(\d+)", name)
    first = wait_report(report_path, proc, "the window reports what it shows",
                        lambda r: "burn_button" in r and len(r.get("loops", [])) == 2)
    check(len(first["loops"]) == 2, "a row per loop: %d" % len(first["loops"]))
    check(str(port) in first["summary"], "the window names the port: %r" % first["summary"])

    # An echo client, busy for the rest of the test.
    stop = threading.Event()
    echoes = {"ok": 0, "bad": 0}

    def client():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            i = 0
            while not stop.is_set():
                line = b"ping %d\n" % i
                s.sendall(line)
                got = b""
                while len(got) < len(line):
                    chunk = s.recv(len(line) - len(got))
                    if not chunk:
                        raise kvtest.Failure("the server closed the echo connection")
                    got += chunk
                echoes["ok" if got == line else "bad"] += 1
                i += 1
                time.sleep(0.001)

    worker = threading.Thread(target=client)
    worker.start()
    try:
        busy = wait_report(report_path, proc, "the window shows the connection and events/s > 0",
                           lambda r: r["connections"].startswith("1 open")
                           and number(r["events_per_second"]) > 0)
        print("displayed: connections %r, events/s %r" % (busy["connections"],
                                                         busy["events_per_second"]))

        # Click the button where the window says it is, as a person would.
        found = subprocess.run(["xdotool", "search", "--sync", "--name", "quiesce monitor"],
                               env=env, stdout=subprocess.PIPE, timeout=20)
        windows = found.stdout.decode().split()
        check(len(windows) >= 1, "xdotool finds the window", fatal=True)
        button = busy["burn_button"]
        x = int(button["x"] + button["width"] / 2)
        y = int(button["y"] + button["height"] / 2)
        subprocess.run(["xdotool", "mousemove", "--window", windows[0], str(x), str(y),
                        "click", "1"], env=env, check=True, timeout=20)
        burned = wait_report(report_path, proc, "the burn's progress reaches the end",
                             lambda r: r["burn"]["done"] >= 1)
        check(burned["burn"]["status"].startswith("burned 300 ms"),
              "the window says it burned: %r" % burned["burn"]["status"])
        check(burned["burn"]["fraction"] == 1.0, "the progress bar is full")
        # The CPU the burn took shows in a loop's row within a refresh or two.
        saw_cpu = wait_report(report_path, proc, "a loop shows the burn's CPU",
                              lambda r: any(number(loop["cpu"]) > 0 for loop in r["loops"]),
                              seconds=5)
        print("displayed loops: %s" % [(l["cpu"], l["events_per_second"])
                                       for l in saw_cpu["loops"]])
    finally:
        stop.set()
        worker.join()
    check(echoes["ok"] > 0 and echoes["bad"] == 0,
          "the echo client got every answer right meanwhile (%d ok, %d wrong)"
          % (echoes["ok"], echoes["bad"]))
    check(os.path.exists(screenshot) and os.path.getsize(screenshot) > 10000,
          "screenshot saved: %s" % screenshot)

    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        code = None
    check(code == 0, "SIGTERM stops it with exit code 0 (got %s)" % code)
    return kvtest.report(t0)


if __name__ == "__main__":
    kvtest.run_script(main)
