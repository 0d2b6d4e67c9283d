#!/usr/bin/env bash
# tests/fuzz/run_fuzz.sh SOURCE_ROOT WORK_DIR TARGET [SECONDS=$QUIESCE_FUZZ_SECONDS or 60]
# Builds the libFuzzer target TARGET (kvcache_protocol or http_request) with
# clang-14 (libFuzzer, ASan, UBSan) from the sources it needs, then runs it
# for SECONDS over a copy of its corpus (tests/fuzz/kvcache_corpus or
# http_corpus). Exits non-zero on a crash, a sanitizer report or a leak.
# Exit 77 (skipped) only when clang-14 or libFuzzer is missing.
set -euo pipefail
root=$(cd "$1" && pwd)
work=$2
target=$3
seconds=${4:-${QUIESCE_FUZZ_SECONDS:-60}}
cxx=${CXX_FUZZ:-clang++-14}
if ! command -v "$cxx" >/dev/null; then
  echo "SKIP: $cxx is not installed (apt-get install clang-14 libclang-rt-14-dev)"
  exit 77
fi
if ! ls /usr/lib/llvm-14/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
  echo "SKIP: libFuzzer is not installed (apt-get install libclang-rt-14-dev)"
  exit 77
fi
includes=(-I"$root"/framework/include -I"$root"/pollers/include -I"$root"/scheduler/include
          -I"$root"/rcu/include -I"$root"/base/include)
c_sources=()
case $target in
  kvcache_protocol)
    corpus=kvcache_corpus
    sources=(
      "$root"/tests/fuzz/kvcache_protocol_fuzz.cpp
      "$root"/examples/kvcache/{protocol,meta,stats_text,store,conn_table}.cpp
      "$root"/framework/src/{buffer,address}.cpp
      "$root"/rcu/src/*.cpp
    )
    headers=("$root"/examples/kvcache/*.hpp "$root"/rcu/include/quiesce/rcu/*.hpp)
    includes+=(-I"$root"/examples/kvcache -I"$root"/rcu/src)
    libs=$(pkg-config --libs libevent_core spdlog fmt)
    ;;
  http_request)
    corpus=http_corpus
    llhttp=${LLHTTP_DIR:-/usr/share}
    sources=(
      "$root"/tests/fuzz/http_request_fuzz.cpp
      "$root"/framework/src/{http_message,http_parser}.cpp
    )
    c_sources=("$llhttp"/llhttp/{api,http,llhttp}.c)
    headers=("$root"/framework/src/http_parser.hpp "$root"/framework/include/quiesce/framework/http.hpp)
    includes+=(-I"$root"/framework/src -I"$llhttp"/include/llhttp)
    libs=""
    ;;
  *)
    echo "unknown fuzz target: $target" >&2
    exit 2
    ;;
esac
mkdir -p "$work/corpus"
cp -n "$root"/tests/fuzz/$corpus/* "$work/corpus/" 2>/dev/null || true
binary=$work/${target}_fuzz
newest=$(ls -t "${sources[@]}" "${headers[@]}" | head -1)
if [ ! -x "$binary" ] || [ "$newest" -nt "$binary" ]; then
  echo "building $binary"
  flags=(-O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all)
  objects=()
  for c in "${c_sources[@]}"; do
    obj=$work/$(basename "$c" .c).o
    "${cxx/clang++/clang}" -std=c99 "${flags[@]/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}" \
      -I"$(dirname "$c")"/../include/llhttp -c "$c" -o "$obj"
    objects+=("$obj")
  done
  # shellcheck disable=SC2086
  "$cxx" -std=c++20 "${flags[@]}" \
    -DSPDLOG_COMPILED_LIB -DSPDLOG_SHARED_LIB -DSPDLOG_FMT_EXTERNAL "${includes[@]}" \
    "${sources[@]}" "${objects[@]}" -o "$binary" $libs -pthread
fi
echo "fuzzing for ${seconds} s"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}:abort_on_error=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
"$binary" -max_total_time="$seconds" -max_len=4096 -timeout=10 -rss_limit_mb=2048 \
  -print_final_stats=1 "$work/corpus"
