# Shared by scripts/run and scripts/test: the Debian 12 packages quiesce
# builds with, and a function that installs whichever are missing.

QUIESCE_PACKAGES=(
  g++ meson ninja-build pkg-config python3
  libevent-dev libboost-context-dev libspdlog-dev libfmt-dev catch2
  liburcu-dev liburing-dev libcli11-dev nlohmann-json3-dev node-llhttp
)

# What the tests and benchmarks drive as a user would: the programs kvcache
# is compared with, the clients that talk to it, the browser that loads the
# dashboard. Installed by scripts/test and scripts/bench only.
QUIESCE_TEST_PACKAGES=(
  memcached python3-pymemcache libmemcached-tools nutcracker
  clang-14 libclang-rt-14-dev chromium libglib2.0-dev libgtk-4-dev qt6-base-dev xvfb xdotool
)

# Installs the missing packages (apt-get update, then install -y) of
# QUIESCE_PACKAGES and of the extra names given. Not root: prints the exact
# command and returns 1.
ensure_packages() {
  local missing=()
  local pkg
  for pkg in "${QUIESCE_PACKAGES[@]}" "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    echo "quiesce needs these Debian packages: ${missing[*]}" >&2
    echo "run as root:  apt-get update && apt-get install -y ${missing[*]}" >&2
    return 1
  fi
  echo "installing: ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
  # Debian starts memcached (127.0.0.1:11211, kvcache's default port) and
  # nutcracker as services; the tests start their own, on ports they pick.
  for pkg in memcached nutcracker; do
    if [[ " ${missing[*]} " == *" $pkg "* ]] && command -v systemctl >/dev/null; then
      systemctl disable --now "$pkg" >/dev/null 2>&1 \
        && echo "stopped and disabled the $pkg service Debian started (tests run their own)"
    fi
  done
  return 0
}

# configure_build DIR -Dopt=value...: sets up DIR with those options, or, if
# it exists already, sets them on it (idempotent; ninja regenerates only if
# something changed).
configure_build() {
  local dir=$1
  shift
  if [ -f "$dir/build.ninja" ]; then
    meson configure "$dir" "$@" >/dev/null
  else
    meson setup "$dir" "$@"
  fi
}
