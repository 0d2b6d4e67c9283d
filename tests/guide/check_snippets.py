#!/usr/bin/env python3
"""Checks that every code block of docs/guide.md marked with
<!-- snippet: FILE --> appears word for word in FILE (trailing spaces
ignored). Usage: check_snippets.py SOURCE_ROOT. Exits 1 naming each block
that does not match."""
import pathlib
import re
import sys

root = pathlib.Path(sys.argv[1])
guide = (root / "docs" / "guide.md").read_text()
pattern = re.compile(r"<!-- snippet: (\S+) -->\n```cpp\n(.*?)```", re.S)
blocks = pattern.findall(guide)
unmarked = guide.count("```cpp") - len(blocks)
failures = []
if unmarked:
    failures.append(f"{unmarked} cpp block(s) without a <!-- snippet: FILE --> marker")
for path, block in blocks:
    text = (root / path).read_text()
    norm = lambda s: "\n".join(line.rstrip() for line in s.splitlines())
    if norm(block).strip("\n") not in norm(text):
        failures.append(f"a block marked {path} does not appear in it:\n{block}")
for failure in failures:
    print(failure)
print(f"{len(blocks)} snippets checked, {len(failures)} problems")
sys.exit(1 if failures else 0)
