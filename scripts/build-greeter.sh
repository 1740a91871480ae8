#!/usr/bin/env bash
# Builds examples/greeter, the guide's own-app package, as a user would: a package of its own
# beside a checkout of Postern that it depends on by path. Prints the binary's path.
#
#   scripts/build-greeter.sh [debug|release]
#
# The layout is .build-greeter/greeter (a copy of examples/greeter) and .build-greeter/postern
# (a link to this checkout), so the manifest's `.package(path: "../postern")` is used as shipped.
# The front-end tests run the binary under mod_fcgid, lighttpd, nginx and as a CGI program.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"
config="${1:-debug}"
work="$root/.build-greeter"
mkdir -p "$work/greeter"
ln -sfn "$root" "$work/postern"
# Copy the sources, keeping the package's own .build for an incremental build.
rm -rf "$work/greeter/Sources" "$work/greeter/Package.swift"
cp -R examples/greeter/Package.swift examples/greeter/Sources "$work/greeter/"
swift build --package-path "$work/greeter" -c "$config" 2>&1 | grep -v 'ld.gold: warning' | tail -1 >&2
echo "$work/greeter/.build/$config/greeter"
