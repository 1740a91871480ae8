#!/usr/bin/env bash
# Installs what the tests need (Debian packages, as root), builds everything, runs every test.
# This is the README's test command and what CI runs (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# The real peers the tests start on loopback: the C FastCGI dev kit, Apache (+ mod_fcgid),
# lighttpd, nginx, fcgiwrap; the scripting languages of examples/cgi-bin; hyperfine and wrk for
# the benchmarks (wrk also loads the balancer tests); uWSGI with its Python plugin is the bench's reference; systemd for
# systemd-socket-activate and systemd-analyze (the service tests), util-linux for prlimit,
# iproute2 for ss (the status page's listen queue is checked against it), openssl for the TLS
# tests' certificates (curl is their client), HAProxy (FastCGI over TLS).
packages=(libfcgi-dev libfcgi-bin apache2 libapache2-mod-fcgid lighttpd nginx fcgiwrap
          curl perl python3 hyperfine wrk uwsgi uwsgi-plugin-python3 systemd util-linux iproute2 openssl haproxy)

missing=()
for p in "${packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${CI:-}" = "true" ] || [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: these Debian packages are missing: ${missing[*]}; run as root (or sudo) to install them" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${packages[@]}"
fi

# Front-ends installed from Debian start their own daemons on a fresh machine; the tests start
# their own instances on loopback ports, so stop the system ones (quietly, if present).
if [ "$(id -u)" -eq 0 ]; then
  for service in apache2 lighttpd nginx haproxy; do
    if command -v service >/dev/null 2>&1; then service "$service" stop >/dev/null 2>&1 || true; fi
  done
fi

# Formatting is part of the test: the toolchain's swift-format with .swift-format (fix with
# `swift format -i -r Sources Tests examples Fuzz Soak Benchmarks Package.swift`).
echo "== swift format lint"
swift format lint --strict -r Sources Tests examples Fuzz Soak Benchmarks Package.swift

swift build --build-tests
# The guide's own app, a package of its own that depends on this checkout (FrontEndTests run it
# under each front-end; built here so that its first build does not load the machine mid-test).
scripts/build-greeter.sh >/dev/null

# One test target at a time: the live suites start servers, front-ends and load, and two cores
# shared by all of them at once starve the timing-sensitive ones. Arguments go to every run.
# Each target's output is also kept in .build/test-logs, and the failures are repeated at the end:
# a CI log is often read from its tail.
logs=.build/test-logs
mkdir -p "$logs"
failed=()
for directory in Tests/*Tests; do
  target=$(basename "$directory")
  echo "== swift test: $target"
  swift test --skip-build --filter "^$target\." "$@" 2>&1 | tee "$logs/$target.log" || failed+=("$target")
done
# The production build (docs/service.md, scripts/build-release.sh) links glibc statically, which
# the debug build above does not: the suites that run postern and the examples as processes run again
# against it (a static glibc's name lookups once crashed where the dynamic build passed).
if [ "$#" -eq 0 ]; then
  echo "== the static release build (scripts/build-release.sh)"
  for product in postern hello environ echo; do
    scripts/build-release.sh --product "$product" --scratch-path .build-static 2>&1 | grep -E 'error|Build of product'
  done
  for target in PosternCGITests PosternOpsTests FrontEndTests; do
    echo "== swift test, against the static release binaries: $target"
    POSTERN_BIN_DIR="$PWD/.build-static/release" swift test --skip-build --filter "^$target\." 2>&1 | tee "$logs/$target-static.log" \
      || failed+=("$target-static")
  done
fi
if [ "${#failed[@]}" -gt 0 ]; then
  for target in "${failed[@]}"; do
    echo "== what failed in $target (whole output: $logs/$target.log)" >&2
    grep -E '✘|error:|[Ff]atal error|Crash|[Ss]ignal|Exited with|timed out' "$logs/$target.log" \
      | grep -vE '^✘ (Suite|Test run) ' | head -n 40 >&2 || true
    echo "-- its last lines:" >&2
    tail -n 6 "$logs/$target.log" >&2
  done
  echo "scripts/test.sh: failing test targets: ${failed[*]}" >&2
  exit 1
fi

# The benchmark keeps working: every mode through nginx for about a second each (debug build);
# --strict fails on a skipped mode or any error response.
if [ "$#" -eq 0 ]; then
  echo "== postern bench --quick"
  .build/debug/postern bench --quick --strict --out .build/bench-quick
fi

# Every fuzz target briefly (libFuzzer, 20 s each); a crash fails the test command.
echo "== fuzz"
scripts/fuzz.sh "${FUZZ_SECONDS:-20}"

# A short soak: 20,000 requests over every protocol, no errors, RSS drift under 5 %.
echo "== soak"
scripts/soak.sh "${SOAK_REQUESTS:-20000}"
