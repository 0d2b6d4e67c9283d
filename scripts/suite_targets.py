#!/usr/bin/env python3
"""scripts/suite_targets.py BUILD_DIR SUITE...: the ninja targets the tests of
those suites run (their executables and declared dependencies), one per line,
relative to BUILD_DIR. scripts/test builds only these in the sanitizer
builds: the example servers and GUI monitors that only the integration
suite drives are not compiled there. Prints nothing (the caller then builds
everything) if meson cannot be asked."""
import json
import os
import subprocess
import sys


def introspect(build_dir, what):
    out = subprocess.run(["meson", "introspect", what, build_dir], check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out)


def main():
    build_dir = os.path.abspath(sys.argv[1])
    suites = set(sys.argv[2:])
    try:
        tests = introspect(build_dir, "--tests")
        targets = introspect(build_dir, "--targets")
    except (OSError, subprocess.CalledProcessError, json.JSONDecodeError):
        return
    files_of = {t["id"]: t["filename"] for t in targets}
    wanted = set()
    for test in tests:
        # Suites are "project:name".
        if not any(s.split(":", 1)[-1] in suites for s in test["suite"]):
            continue
        for dep in test["depends"]:
            wanted.update(files_of.get(dep, []))
        exe = test["cmd"][0] if test["cmd"] else ""
        if exe.startswith(build_dir + os.sep):
            wanted.add(exe)
    for path in sorted(wanted):
        print(os.path.relpath(path, build_dir))


if __name__ == "__main__":
    main()
