#!/usr/bin/env bash
# The production build of docs/service.md ("Release binaries"): a static executable (glibc and
# the Swift runtime linked in), each function in a section of its own so that the linker drops
# the unused ones, and identical code folded once. Arguments go to `swift build`.
#
#   scripts/build-release.sh --product hello --scratch-path .build-static
#   install -s -m 755 .build-static/release/hello /usr/local/bin/hello
#
# Swift's flag goes through -Xfrontend: SwiftPM's driver does not know -function-sections and
# crashes on the next build when it is given directly.
set -euo pipefail
cd "$(dirname "$0")/.."
exec swift build -c release --static-swift-stdlib -Xswiftc -static-executable \
  -Xswiftc -Xfrontend -Xswiftc -function-sections -Xcc -ffunction-sections -Xcc -fdata-sections \
  -Xlinker --icf=safe "$@"
