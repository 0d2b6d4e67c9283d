#!/usr/bin/env python3
"""The dashboard in a real browser: httpd serves /dashboard, headless
Chromium (Debian's chromium) loads it while a client keeps the loops busy,
and the DOM it renders must show every loop and a non-zero event rate after
several polls of /stats. A screenshot is saved next to the test log
(BUILD_DIR/meson-logs/dashboard.png). Skipped, saying so, only where
Chromium is not installed.

usage: dashboard_test.py HTTPD_BINARY SCREENSHOT_PATH
"""
import http.client
import os
import re
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "kvcache"))
import kvtest  # noqa: E402

check = kvtest.check


def chromium_binary():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


def chromium(binary, url, *mode):
    """Runs headless Chromium on `url` with `mode` (--dump-dom or
    --screenshot=...), letting the page's timers and fetches run for 8 s of
    virtual time; returns what it printed on stdout."""
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
           "--no-first-run", "--disable-extensions", "--window-size=1280,1000",
           "--virtual-time-budget=8000", "--user-data-dir=" + kvtest.new_tempdir("chromium-")]
    cmd += list(mode) + [url]
    out = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=90)
    if out.returncode != 0:
        print(out.stderr.decode(errors="replace")[-2000:])
    return out.stdout.decode(errors="replace")


def main():
    if len(sys.argv) < 3:
        print("usage: dashboard_test.py HTTPD_BINARY SCREENSHOT_PATH")
        return 1
    browser = chromium_binary()
    if browser is None:
        kvtest.skip("chromium", " (apt-get install chromium)")
    binary = os.path.abspath(sys.argv[1])
    screenshot = os.path.abspath(sys.argv[2])
    t0 = time.monotonic()
    log = kvtest.new_tempfile("httpd-", ".log")
    proc = kvtest.spawn("httpd", [binary, "--listen", "127.0.0.1:0", "--threads", "2"], log,
                        stdout_to_log=True)
    port = kvtest.port_from_log(proc, log, r"listening on http://127\.0\.0\.1:(\d+)/", "httpd")

    stop = threading.Event()

    def load():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while not stop.is_set():
            conn.request("GET", "/")
            conn.getresponse().read()
            time.sleep(0.002)
        conn.close()

    loader = threading.Thread(target=load)
    loader.start()
    try:
        url = "http://127.0.0.1:%d/dashboard" % port
        dom = chromium(browser, url, "--dump-dom")
        samples = re.search(r'<body[^>]*data-samples="(\d+)"', dom)
        check(samples is not None and int(samples.group(1)) >= 3,
              "the page polled /stats several times (%s)" % (samples and samples.group(1)))
        rows = re.findall(r'<tr class="loop-row" data-loop="(\d+)"', dom)
        check(sorted(rows) == ["0", "1"], "a row per loop: %s" % rows)
        rates = [float(v.replace("k", "e3").replace("M", "e6"))
                 for v in re.findall(r'data-field="events_per_s">([0-9.kM]+)<', dom)]
        check(len(rates) == 2 and sum(rates) > 0, "a non-zero event rate: %s" % rates)
        check('id="gp-latency"' in dom and 'id="callbacks"' in dom,
              "grace-period latency and callbacks pending are shown")
        check(re.search(r'id="status"[^>]*>updated ', dom) is not None,
              "the status line says it updated (no fetch failed)")
        if os.path.exists(screenshot):
            os.unlink(screenshot)
        chromium(browser, url, "--screenshot=" + screenshot)
        check(os.path.exists(screenshot) and os.path.getsize(screenshot) > 10000,
              "screenshot saved: %s" % screenshot)
    finally:
        stop.set()
        loader.join()
    return kvtest.report(t0)


if __name__ == "__main__":
    kvtest.run_script(main)
