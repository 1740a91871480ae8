#!/usr/bin/env python3
"""Where a release binary's bytes come from, module by module.

Relinks a product SwiftPM has already built with the linker's map (`-Map`), using the link
command SwiftPM recorded in its build manifest, then adds up the loaded sections (code, read-only
data, data, Swift metadata; not debug info, not the linker's .eh_frame) of every input by the
module it came from: a package target (`.build/…/release/NAME.build/*.o`) or a toolchain or
system archive (`libNAME.a`). The map also says why each archive member was linked (`--why`).

    swift build -c release --static-swift-stdlib -Xswiftc -static-executable --product hello
    scripts/size-breakdown.py hello                 # the 30 largest modules
    scripts/size-breakdown.py hello --why Calendar  # why an archive member was linked

Run from the package root. Writes /tmp/PRODUCT.map and /tmp/PRODUCT.relinked.
"""

import argparse
import collections
import json
import re
import subprocess
import sys

LOADED = (".text", ".rodata", ".data", "swift5", ".gcc_except", ".init_array", ".fini_array", ".tdata")


def link_arguments(product):
    """The swiftc link command of PRODUCT from .build/release.yaml (one JSON array per line)."""
    manifest = open(".build/release.yaml").read()
    key = re.search(r'"C\.%s-[a-z0-9_]+-unknown-linux-gnu-release\.exe"' % re.escape(product), manifest)
    if key is None:
        sys.exit(f"size-breakdown: no link command for {product} in .build/release.yaml; build it first")
    line = manifest[manifest.index("args:", key.end()) :].split("\n", 1)[0]
    return json.loads(line.split("args:", 1)[1])


def module_of(path):
    if ".build/" in path and "release/" in path:
        return path.split("release/")[1].split(".build")[0]
    archive = re.search(r"lib([^/]+)\.a\(", path)
    return "lib" + archive.group(1) if archive else path.split("/")[-1]


def sizes(map_lines):
    """Bytes per module of the loaded input sections listed under the map's "Memory map"."""
    start = next(i for i, line in enumerate(map_lines) if line.startswith("Memory map"))
    totals = collections.Counter()
    pending = None
    for line in map_lines[start:]:
        whole = re.match(r"^ (\S+)\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
        if whole:
            section, address, size, path = whole.groups()
        elif re.match(r"^ (\S+)$", line):
            pending = line.strip()
            continue
        else:
            rest = re.match(r"^\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$", line)
            if not (rest and pending):
                continue
            section, (address, size, path), pending = pending, rest.groups(), None
        if int(address, 16) and section.startswith(LOADED):
            totals[module_of(path.strip())] += int(size, 16)
    return totals


def reasons(map_lines):
    """Archive member -> (the input that needed it, the symbol), from the map's first part."""
    end = next(i for i, line in enumerate(map_lines) if line.startswith("Discarded input sections"))
    needed = {}
    for i in range(1, end - 1):
        member = map_lines[i]
        if member and not member.startswith(" ") and "(" in member and " " not in member.strip():
            by = re.match(r"^\s+(\S+) \((.*)\)$", map_lines[i + 1])
            if by:
                needed[member.strip()] = by.groups()
    return needed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("product")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--why", help="print the chain that linked the archive members matching this")
    options = parser.parse_args()

    arguments = link_arguments(options.product)
    arguments[arguments.index("-o") + 1] = f"/tmp/{options.product}.relinked"
    arguments += ["-Xlinker", f"-Map=/tmp/{options.product}.map"]
    link = subprocess.run(arguments, capture_output=True, text=True)
    if link.returncode != 0:
        sys.exit(f"size-breakdown: the relink failed:\n{link.stderr}")
    map_lines = open(f"/tmp/{options.product}.map").read().split("\n")

    if options.why:
        needed = reasons(map_lines)
        for member in [m for m in needed if options.why in m][:5]:
            print(member.split("/")[-1])
            current, depth = member, 0
            while current in needed and depth < 12:
                by, symbol = needed[current]
                name = subprocess.run(["swift", "demangle", "--simplified", "--compact"], input=symbol, capture_output=True, text=True)
                print(f"  <- {by.split('/')[-1]}: {(name.stdout.strip() or symbol)[:120]}")
                current, depth = by, depth + 1
        return

    totals = sizes(map_lines)
    everything = sum(totals.values())
    print(f"{options.product}: {everything / 1e6:.1f} MB of code, data and metadata (without .eh_frame)")
    for module, size in totals.most_common(options.top):
        print(f"{size / 1e6:8.2f} MB  {100 * size / everything:5.1f} %  {module}")


if __name__ == "__main__":
    main()
