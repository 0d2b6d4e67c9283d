#!/usr/bin/env python3
"""Counts test results from a meson testlog.json: Catch2 test cases where the
output has Catch2's summary, one per meson test otherwise. A meson test that
failed although its Catch2 summary says all passed (a sanitizer report at exit,
a crash in teardown) counts one failure more. A skipped test (exit 77: a tool
is not installed) counts as passed, except under CI=true, where every tool is
installed by the run itself: there a skip is a failure, said on stderr.
Prints "P passed, F failed". With a second argument, appends to that file
the name, result and the lines around the first failure (else the last
lines) of each failed test, so that the end of a long run (all that a CI
summary may show) says what failed."""
import json
import os
import re
import sys

SUMMARY = re.compile(r"test cases:\s+(\d+)\s*\|\s*(\d+) passed\s*\|\s*(\d+) failed")
ALL_PASSED = re.compile(r"All tests passed \(\d+ assertions? in (\d+) test cases?\)")
OK = {"OK", "EXPECTEDFAIL", "SKIP"}
IN_CI = os.environ.get("CI") == "true"
TAIL_LINES = 30
# testlog.json sits in BUILD/meson-logs/.
BUILD = os.path.basename(os.path.dirname(os.path.dirname(os.path.abspath(sys.argv[1]))))

MARKER = re.compile(r"FAILED:|ERROR: AddressSanitizer|WARNING: ThreadSanitizer|runtime error:|"
                    r"ERROR: LeakSanitizer|==ERROR: libFuzzer|terminate called|Assertion .* failed")


def excerpt(out):
    """The lines around the first failure marker, else the last lines."""
    lines = out.rstrip().splitlines()
    for i, line in enumerate(lines):
        if MARKER.search(line):
            return "\n".join(lines[max(0, i - 8):i + TAIL_LINES])
    return "\n".join(lines[-TAIL_LINES:])


passed = failed = 0
reports = []
try:
    lines = open(sys.argv[1]).read().splitlines()
except OSError:
    lines = []
for line in lines:
    if not line.strip():
        continue
    test = json.loads(line)
    out = (test.get("stdout") or "") + (test.get("stderr") or "")
    ok = test.get("result") in OK
    if IN_CI and test.get("result") == "SKIP":
        print("skipped in CI, counted as failed: %s" % test.get("name"), file=sys.stderr)
        ok = False
    m = SUMMARY.search(out)
    a = ALL_PASSED.search(out)
    if m:
        p, f = int(m.group(2)), int(m.group(3))
    elif a:
        p, f = int(a.group(1)), 0
    else:
        p, f = (1, 0) if ok else (0, 1)
    if not ok and f == 0:
        f = 1
    if f:
        reports.append("--- %s %s: %s (%d failed)\n%s\n" % (BUILD, test.get("name"), test.get("result"), f, excerpt(out)))
    passed += p
    failed += f
if not lines:
    failed += 1  # no log: meson test did not run
if len(sys.argv) > 2 and reports:
    with open(sys.argv[2], "a") as f:
        f.write("".join(reports))
print(f"{passed} passed, {failed} failed")
