#!/usr/bin/env bash
# tests/headers/cxx17_rejected.sh SOURCE_DIR: a public header compiled as
# C++17 stops at once with quiesce's own message, not a cascade of errors.
set -uo pipefail
src=$1
out=$(echo '#include <quiesce/rcu/rcu.hpp>' |
  ${CXX:-c++} -std=c++17 -fsyntax-only -I"$src/rcu/include" -I"$src/base/include" -x c++ - 2>&1)
if grep -q "quiesce needs C++20" <<<"$out"; then
  echo "C++17: rejected with quiesce's message"
  exit 0
fi
echo "C++17 compile did not say quiesce needs C++20:"
echo "$out" | head -20
exit 1
