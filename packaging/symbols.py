#!/usr/bin/env python3
"""Writes the Debian symbols file of libdiffattn0 from the header, checked against the library.

usage: symbols.py HEADER LIBRARY VERSION RELEASED > symbols

Every da_* function declared in HEADER must be exported by LIBRARY with the version node
DIFFATTN_0, and nothing else may be exported. RELEASED (libdiffattn0.symbols.released) pins the
version that introduced each symbol of a published release; symbols not listed there are new in
VERSION. A released symbol that disappears is an ABI break and stops the build.
"""

import re
import subprocess
import sys

NODE = "DIFFATTN_0"


def header_functions(path):
    text = open(path, encoding="utf-8").read()
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    text = re.sub(r"//[^\n]*", " ", text)
    text = "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    return set(re.findall(r"\b(da_[a-z0-9_]+)\s*\(", text))


def library_exports(path):
    """name → version node of every defined dynamic symbol ("da_version@@DIFFATTN_0")."""
    out = subprocess.run(["nm", "-D", "--defined-only", path], check=True, capture_output=True, text=True).stdout
    exports = {}
    for line in out.splitlines():
        name, _, node = line.split()[-1].partition("@")
        exports[name] = node.lstrip("@")
    return exports


def main(header, library, version, released_path):
    declared = header_functions(header)
    exports = library_exports(library)
    exported = {name for name, node in exports.items() if name != NODE}
    problems = []
    for name in sorted(declared - exported):
        problems.append(f"{name}: declared in the header, not exported by {library}")
    for name in sorted(exported - declared):
        problems.append(f"{name}: exported by {library}, not declared in the header")
    for name in sorted(declared & exported):
        if exports[name] != NODE:
            problems.append(f"{name}: version node {exports[name]!r}, expected {NODE}")
    released = {}
    for line in open(released_path, encoding="utf-8"):
        if line.strip() and not line.startswith("#"):
            symbol, since = line.split()
            released[symbol.split("@")[0]] = since
    for name in sorted(set(released) - declared - {NODE}):
        problems.append(f"{name}: in a released version ({released[name]}) but gone from the header "
                        f"(an ABI break: bump the soname instead)")
    if problems:
        sys.exit("symbols.py: " + "\n  ".join(["the library does not match its contract:"] + problems))
    print("libdiffattn.so.0 libdiffattn0 #MINVER#")
    print("* Build-Depends-Package: libdiffattn-dev")
    if NODE in exports:  # GNU ld exports the version node as an absolute symbol; lld does not
        print(f" {NODE}@{NODE} {released.get(NODE, version)}")
    for name in sorted(declared):
        print(f" {name}@{NODE} {released.get(name, version)}")


if __name__ == "__main__":
    if len(sys.argv) != 5:
        sys.exit(__doc__)
    main(*sys.argv[1:])
