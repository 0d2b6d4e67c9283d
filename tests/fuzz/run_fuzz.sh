#!/usr/bin/env bash
# tests/fuzz/run_fuzz.sh SOURCE_ROOT WORK_DIR [SECONDS=$QUIESCE_FUZZ_SECONDS or 60]
# Builds the kvcache protocol fuzz target with clang-14 (libFuzzer, ASan,
# UBSan) from the sources it needs, then runs it for SECONDS over a copy of
# tests/fuzz/kvcache_corpus. Exits non-zero on a crash, a sanitizer report
# or a leak. Exit 77 (skipped) only when clang-14 or libFuzzer is missing.
set -euo pipefail
root=$(cd "$1" && pwd)
work=$2
seconds=${3:-${QUIESCE_FUZZ_SECONDS:-60}}
cxx=${CXX_FUZZ:-clang++-14}
if ! command -v "$cxx" >/dev/null; then
  echo "SKIP: $cxx is not installed (apt-get install clang-14 libclang-rt-14-dev)"
  exit 77
fi
if ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "SKIP: libFuzzer is not installed (apt-get install libclang-rt-14-dev)"
  exit 77
fi
mkdir -p "$work/corpus"
cp -n "$root"/tests/fuzz/kvcache_corpus/* "$work/corpus/" 2>/dev/null || true
binary=$work/kvcache_protocol_fuzz
sources=(
  "$root"/tests/fuzz/kvcache_protocol_fuzz.cpp
  "$root"/examples/kvcache/{protocol,meta,stats_text,store}.cpp
  "$root"/framework/src/buffer.cpp
  "$root"/rcu/src/*.cpp
)
newest=$(ls -t "${sources[@]}" "$root"/examples/kvcache/*.hpp "$root"/rcu/include/quiesce/rcu/*.hpp | head -1)
if [ ! -x "$binary" ] || [ "$newest" -nt "$binary" ]; then
  echo "building $binary"
  # shellcheck disable=SC2046
  "$cxx" -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
    -DSPDLOG_COMPILED_LIB -DSPDLOG_SHARED_LIB -DSPDLOG_FMT_EXTERNAL \
    -I"$root"/examples/kvcache -I"$root"/framework/include -I"$root"/pollers/include \
    -I"$root"/scheduler/include -I"$root"/rcu/include -I"$root"/rcu/src -I"$root"/base/include \
    "${sources[@]}" -o "$binary" $(pkg-config --libs libevent_core spdlog fmt) -pthread
fi
echo "fuzzing for ${seconds} s"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
"$binary" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$work/corpus"
