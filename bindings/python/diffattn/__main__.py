"""`python -m diffattn info`: which libdiffattn this binding loaded and what it can run."""

import ctypes
import os
import sys
import textwrap

import diffattn
from diffattn._lib import lib, library_path
from diffattn.processors import PROCESSOR_NAMES

# Capability queries this binding shows when the loaded library exports them (newer C APIs).
_OPTIONAL_STRINGS = (("cpu features", "da_cpu_features"), ("kernel paths", "da_kernel_paths"),
                     ("selected path", "da_kernel_path"))


def _loaded_path(default):
    """The file the dynamic loader mapped (the soname resolves to a real path only at load time)."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(None, 5)[-1].strip()
                if "libdiffattn" in os.path.basename(path):
                    return path
    except OSError:
        pass
    return default


def info(out=sys.stdout):
    implemented = [n for n in PROCESSOR_NAMES if getattr(diffattn, n).is_implemented()]
    rows = [
        ("version", f"{lib.da_version().decode()} (ABI {lib.da_abi_version()})"),
        ("library", _loaded_path(library_path)),
        ("loaded as", library_path + ("  (from DIFFATTN_LIBRARY)" if os.environ.get("DIFFATTN_LIBRARY") else "")),
        ("binding", os.path.dirname(os.path.abspath(diffattn.__file__))),
        ("threads", f"{lib.da_get_num_threads()}  (DIFFATTN_NUM_THREADS or online CPUs)"),
    ]
    for label, symbol in _OPTIONAL_STRINGS:
        try:
            fn = getattr(lib, symbol)
        except AttributeError:
            rows.append((label, "not reported by this library's C API"))
            continue
        fn.restype, fn.argtypes = ctypes.c_char_p, []
        rows.append((label, (fn() or b"").decode()))
    rows.append(("processors", f"{len(implemented)} of {len(PROCESSOR_NAMES)} diffusers classes implemented: "
                               + ", ".join(implemented)))
    for label, value in rows:
        print(textwrap.fill(f"{label:<15}{value}", width=100, subsequent_indent=" " * 15,
                            break_long_words=False, break_on_hyphens=False), file=out)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if argv in ([], ["info"]):
        info()
        return 0
    print("usage: python -m diffattn [info]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
