#!/usr/bin/env python3
"""Builds .build/wheel/diffattn-<version>-py3-none-linux_<arch>.whl (`make wheel`).

The wheel carries the Python binding and, in diffattn/_libs/, libdiffattn.so plus the shared
libraries it needs that a bare Linux may lack: OpenBLAS and OpenBLAS's Fortran runtime
(libgfortran, libquadmath). OpenBLAS is bundled rather than required from PyPI because the PyPI
builds (scipy-openblas32/64) rename every symbol (scipy_cblas_sgemm…), so libdiffattn could not
link against them. libdiffattn.so's RUNPATH is $ORIGIN; the binding loads the bundled libraries
first, in dependency order, so their sonames are already resolved when libdiffattn.so loads
(RUNPATH is not inherited by libopenblas's own dependencies). glibc and libstdc++ are the only
system libraries it then needs. Stdlib only: a wheel is a zip with a dist-info directory.

Usage: packaging/build-wheel.py [--lib .build/release/libdiffattn.so] [--out .build/wheel]
"""

import argparse
import base64
import hashlib
import os
import platform
import re
import shutil
import subprocess
import sys
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Bundled when ldd resolves them outside the libraries every glibc system has.
BUNDLE = ("libopenblas.so.0", "libgfortran.so.5", "libquadmath.so.0")
PRELOAD_ORDER = ("libquadmath.so.0", "libgfortran.so.5", "libopenblas.so.0")


def version():
    text = open(os.path.join(ROOT, "include", "diffattn.h")).read()
    parts = [re.search(rf"#define DA_VERSION_{p} (\d+)", text).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    return ".".join(parts)


def resolved_dependencies(lib):
    """{soname: path} of the bundled libraries, as the dynamic loader resolves them for `lib`."""
    out = subprocess.run(["ldd", lib], capture_output=True, text=True, check=True).stdout
    found = {}
    for line in out.splitlines():
        m = re.match(r"\s*(\S+) => (\S+)", line)
        if m and m.group(1) in BUNDLE:
            found[m.group(1)] = os.path.realpath(m.group(2))
    missing = [n for n in BUNDLE[:1] if n not in found]
    if missing:
        sys.exit(f"build-wheel: ldd {lib} does not show {missing}")
    return found


def stripped(lib):
    """The library without debug sections (as the .deb ships it), when binutils' strip is there."""
    if shutil.which("strip") is None:
        return open(lib, "rb").read()
    tmp = os.path.join(os.path.dirname(os.path.abspath(lib)), ".wheel-strip.so")
    try:
        subprocess.run(["strip", "--strip-unneeded", "-o", tmp, lib], check=True)
        return open(tmp, "rb").read()
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


NOTICE = """The libraries in this directory other than libdiffattn.so are copies of the build machine's
OpenBLAS (BSD-3-Clause, https://www.openblas.net) and of GCC's libgfortran and libquadmath (GPL-3.0
with the GCC Runtime Library Exception, LGPL-2.1 for libquadmath), bundled so that the wheel needs
no system packages; their source is that of the distribution they were taken from.
"""


def metadata(ver):
    return "\n".join([
        "Metadata-Version: 2.1", "Name: diffattn", f"Version: {ver}",
        "Summary: diffusers' attention layer (Attention, its processors, an attention backend) on the CPU",
        "License: Apache-2.0", "Requires-Python: >=3.9", "Requires-Dist: numpy",
        "Provides-Extra: diffusers",
        'Requires-Dist: diffusers==0.42.1; extra == "diffusers"', 'Requires-Dist: torch; extra == "diffusers"',
        "Classifier: Operating System :: POSIX :: Linux", "", ""])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lib", default=os.path.join(ROOT, ".build", "release", "libdiffattn.so"))
    ap.add_argument("--out", default=os.path.join(ROOT, ".build", "wheel"))
    args = ap.parse_args()
    if not os.path.exists(args.lib):
        sys.exit(f"build-wheel: {args.lib} is missing; run swift build -c release (or make wheel)")
    ver = version()
    tag = f"py3-none-linux_{platform.machine()}"
    os.makedirs(args.out, exist_ok=True)
    wheel = os.path.join(args.out, f"diffattn-{ver}-{tag}.whl")
    files = {}   # path in the wheel → bytes
    package = os.path.join(ROOT, "bindings", "python", "diffattn")
    for name in sorted(os.listdir(package)):
        if name.endswith(".py"):
            files[f"diffattn/{name}"] = open(os.path.join(package, name), "rb").read()
    files["diffattn/_libs/libdiffattn.so"] = stripped(args.lib)
    deps = resolved_dependencies(args.lib)
    for soname, path in deps.items():
        files[f"diffattn/_libs/{soname}"] = open(path, "rb").read()
    files["diffattn/_libs/NOTICE"] = NOTICE.encode()
    files["diffattn/_libs/preload.txt"] = "".join(f"{n}\n" for n in PRELOAD_ORDER if n in deps).encode()
    info = f"diffattn-{ver}.dist-info"
    files[f"{info}/METADATA"] = metadata(ver).encode()
    files[f"{info}/WHEEL"] = (f"Wheel-Version: 1.0\nGenerator: libdiffattn build-wheel.py\nRoot-Is-Purelib: false\n"
                              f"Tag: {tag}\n").encode()
    files[f"{info}/top_level.txt"] = b"diffattn\n"
    files[f"{info}/LICENSE"] = open(os.path.join(ROOT, "LICENSE"), "rb").read()
    record = []
    for path, data in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = ("\n".join(record) + "\n").encode()
    tmp = wheel + ".tmp"
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as z:
        for path, data in files.items():
            zi = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            zi.external_attr = (0o755 if path.endswith((".so", ".so.0", ".so.5")) else 0o644) << 16
            zi.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(zi, data)
    shutil.move(tmp, wheel)
    print(wheel)


if __name__ == "__main__":
    main()
