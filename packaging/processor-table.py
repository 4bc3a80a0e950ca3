#!/usr/bin/env python3
"""Prints the README's table of processors and model classes, asking the library what runs.

usage: processor-table.py                 print the markdown
       processor-table.py --update FILE   replace the text between the markers in FILE
       processor-table.py --check FILE    exit 1 if FILE's table differs from the library's

The status comes from da_processor_is_implemented and, for model classes, from whether
da_model_create knows the class name, so the README says what the built library does. `make docs` runs --update.
The library is DIFFATTN_LIBRARY, else this checkout's .build/release/libdiffattn.so.
"""

import ctypes
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Only a few calls are needed, so the library is opened directly rather than through the binding.
lib = ctypes.CDLL(os.environ.get("DIFFATTN_LIBRARY") or os.path.join(REPO, ".build", "release", "libdiffattn.so"))
lib.da_processor_name.restype, lib.da_processor_name.argtypes = ctypes.c_char_p, [ctypes.c_int32]
lib.da_processor_kind_count.restype, lib.da_processor_kind_count.argtypes = ctypes.c_int64, []
lib.da_processor_kind_at.restype = ctypes.c_int32
lib.da_processor_kind_at.argtypes = [ctypes.c_int64, ctypes.POINTER(ctypes.c_int32)]
lib.da_processor_is_implemented.restype, lib.da_processor_is_implemented.argtypes = ctypes.c_int32, [ctypes.c_int32]

BEGIN, END = "<!-- processor-table:begin -->", "<!-- processor-table:end -->"

# The model classes (see docs/design.md) whose attention trees the library is to lay out.
MODEL_CLASSES = ("UNet2DConditionModel", "UNet3DConditionModel", "UNetMotionModel", "I2VGenXLUNet",
                 "HunyuanDiT2DModel", "SD3Transformer2DModel", "FluxTransformer2DModel",
                 "CogVideoXTransformer3DModel", "AuraFlowTransformer2DModel", "PixArtTransformer2DModel",
                 "AutoencoderKL")


def model_status(class_name):
    """Whether da_model_create knows the class. It checks the name before the JSON, so a
    deliberately invalid config answers without building a full-size model."""
    try:
        create = lib.da_model_create
    except AttributeError:
        return "planned: not in the C API yet"
    create.restype = ctypes.c_int32
    create.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.POINTER(ctypes.c_void_p)]
    model = ctypes.c_void_p()
    status = create(class_name.encode(), b"!", ctypes.byref(model))
    if status == 0:  # cannot happen with that JSON; do not leak it if it ever does
        lib.da_model_destroy(model)
    return "not yet" if status == 8 else "implemented (`da_model_create`)"  # 8 = DA_ERR_NOT_FOUND


def table():
    kinds = []
    for i in range(lib.da_processor_kind_count()):
        kind = ctypes.c_int32()
        if lib.da_processor_kind_at(i, ctypes.byref(kind)) != 0:
            sys.exit(f"processor-table.py: da_processor_kind_at({i}) failed")
        kinds.append(kind.value)
    done = [k for k in kinds if lib.da_processor_is_implemented(k)]
    lines = [f"{len(done)} of {len(kinds)} diffusers processor classes run in this build "
             f"(`da_processor_is_implemented`); the others have their enum value and Python class "
             f"name reserved.", "",
             "| `DA_PROCESSOR_*` value | diffusers class | status |", "|---:|---|---|"]
    for k in kinds:
        status = "implemented" if k in done else "reserved"
        lines.append(f"| {k} | `{lib.da_processor_name(k).decode()}` | {status} |")
    lines += ["", "| model class (attention tree laid out as in diffusers) | status |", "|---|---|"]
    lines += [f"| `{name}` | {model_status(name)} |" for name in MODEL_CLASSES]
    return "\n".join(lines) + "\n"


def replaced(text, generated):
    if BEGIN not in text or END not in text:
        sys.exit(f"processor-table.py: the markers {BEGIN} … {END} are missing")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{generated}{END}{tail}"


def main(argv):
    if len(argv) == 1:
        sys.stdout.write(table())
        return 0
    if len(argv) == 3 and argv[1] in ("--update", "--check"):
        text = open(argv[2], encoding="utf-8").read()
        new = replaced(text, table())
        if argv[1] == "--check":
            return 0 if new == text else 1
        if new != text:
            open(argv[2], "w", encoding="utf-8").write(new)
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
