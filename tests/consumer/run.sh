#!/usr/bin/env bash
# tests/consumer/run.sh BUILD_DIR SOURCE_DIR
# Installs the build into a staging directory (meson install --destdir), then
# builds the consumer programs out of tree with pkg-config alone, as a user
# would, linked against the shared and against the static libraries, with and
# without -DNDEBUG, and runs them. Prints one line per check; exits non-zero
# on the first failure.
set -euo pipefail
build=$(realpath "$1")
src=$(realpath "$2")
work=$(mktemp -d "$build/consumer.XXXXXX")
trap 'rm -rf "$work"' EXIT

meson install -C "$build" --no-rebuild --quiet --destdir "$work/stage" >/dev/null
prefix=$(meson introspect "$build" --buildoptions |
  python3 -c 'import json,sys; o={x["name"]:x["value"] for x in json.load(sys.stdin)}; print(o["prefix"] + "/" + o["libdir"])')
libdir=$work/stage$prefix
# The staged files still name the configured prefix: point them at the stage,
# as a package's relocation would.
install_prefix=$(meson introspect "$build" --buildoptions |
  python3 -c 'import json,sys; print({x["name"]:x["value"] for x in json.load(sys.stdin)}["prefix"])')
sed -i "s|^prefix=.*|prefix=$work/stage$install_prefix|" "$libdir"/pkgconfig/quiesce*.pc
export PKG_CONFIG_PATH=$libdir/pkgconfig
cxx=${CXX:-c++}

for pc in quiesce-rcu quiesce-scheduler quiesce-pollers quiesce; do
  pkg-config --exists --print-errors "$pc"
  echo "$pc: cflags $(pkg-config --cflags "$pc")"
  echo "$pc: libs $(pkg-config --libs "$pc")"
done
pkg-config --cflags quiesce-scheduler | grep -q -- '-fstack-clash-protection' ||
  { echo "quiesce-scheduler.pc does not carry -fstack-clash-protection"; exit 1; }

# build NAME PC LINK NDEBUG: LINK is shared or static.
build_one() {
  local name=$1 pc=$2 link=$3 ndebug=$4 out
  out="$work/${name}_${link}${ndebug:+_ndebug}"
  local libs
  if [ "$link" = static ]; then
    # Our libraries as archives (-l:libX.a), their dependencies as pkg-config
    # --static lists them.
    libs=$(pkg-config --static --libs "$pc" | sed -E 's/-l(quiesce(_[a-z]+)?)( |$)/-l:lib\1.a\3/g')
  else
    libs=$(pkg-config --libs "$pc")
  fi
  # shellcheck disable=SC2046,SC2086
  $cxx -std=c++20 -O2 -Wall -Wextra -Werror $ndebug $(pkg-config --cflags "$pc") \
    "$src/$name.cpp" -o "$out" $libs
  echo "$out"
}

for link in shared static; do
  for ndebug in "" "-DNDEBUG"; do
    for name in rcu_consumer scheduler_consumer pollers_consumer framework_consumer; do
      pc=quiesce-${name%_consumer}
      [ "$name" = framework_consumer ] && pc=quiesce
      exe=$(build_one "$name" "$pc" "$link" "$ndebug")
      # ldd's output goes to a file first: `ldd | grep -q` under pipefail
      # fails at random when grep exits early and ldd gets SIGPIPE.
      LD_LIBRARY_PATH=$libdir ldd "$exe" >"$work/ldd.txt"
      if [ "$link" = shared ]; then
        grep -q "libquiesce_rcu.so.0 => $libdir" "$work/ldd.txt" ||
          { echo "$exe does not load the staged libquiesce_rcu.so.0"; cat "$work/ldd.txt"; exit 1; }
      elif grep -q libquiesce "$work/ldd.txt"; then
        echo "$exe: static build still loads a quiesce .so"; exit 1
      fi
      LD_LIBRARY_PATH=$libdir "$exe" 2>"$work/stderr" | sed "s|^|$name $link ${ndebug:-debug}: |"
      # Quiet by default: a successful first use prints nothing to stderr.
      if [ -s "$work/stderr" ]; then
        echo "$name $link ${ndebug:-debug} wrote to stderr:"; cat "$work/stderr"; exit 1
      fi
    done
    # The inline read side checks the same in every build of the caller.
    set +e
    msg=$(LD_LIBRARY_PATH=$libdir "$work/rcu_consumer_${link}${ndebug:+_ndebug}" misuse 2>&1)
    status=$?
    set -e
    if [ $status -ne 134 ] || ! grep -q "quiesce: misuse: unmatched rcu::read_unlock()" <<<"$msg"; then
      echo "rcu_consumer $link ${ndebug:-debug}: misuse not reported (status $status): $msg"
      exit 1
    fi
    echo "rcu_consumer $link ${ndebug:-debug}: misuse aborts with its message"
  done
done
# The rcu consumer needs neither Boost nor the scheduler.
if pkg-config --static --libs quiesce-rcu | grep -q -e boost -e quiesce_scheduler; then
  echo "quiesce-rcu pulls in the scheduler or Boost"; exit 1
fi
echo "consumer: all checks passed"
