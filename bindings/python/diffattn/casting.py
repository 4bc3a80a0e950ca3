"""Layerwise casting: diffusers' ``enable_layerwise_casting`` for diffattn modules and models.

Weights (and biases) of Linear layers are stored as bfloat16 or float16 — half the memory — and
widened to float32 inside the projection GEMM; computation stays float32. On CPUs with the AVX-512
BF16 instructions the narrowing to bfloat16 uses them (``has_bf16_instructions()``).
"""

import ctypes

from ._core import check
from ._lib import lib
from ._model_lib import lib as model_lib  # declares da_model_enable_layerwise_casting

DEFAULT_SKIP_MODULES_PATTERN = ("pos_embed", "patch_embed", "norm", "^proj_in$", "^proj_out$")
_FORMATS = {"float32": 0, "bfloat16": 1, "float16": 2}


def has_bf16_instructions():
    """True when this CPU narrows to bfloat16 with AVX-512 BF16 instructions (vcvtneps2bf16)."""
    return bool(lib.da_cpu_has_bf16_instructions())


def _dtype_name(dtype):
    name = getattr(dtype, "name", None) or str(dtype)
    name = name.replace("torch.", "")
    aliases = {"bf16": "bfloat16", "fp16": "float16", "half": "float16", "fp32": "float32", "float": "float32"}
    name = aliases.get(name, name)
    if name not in _FORMATS:
        raise ValueError(f"storage_dtype must be bfloat16, float16 or float32, got {dtype!r}")
    return name


def _arguments(storage_dtype, compute_dtype, skip_modules_pattern):
    if _dtype_name(compute_dtype if compute_dtype is not None else "float32") != "float32":
        raise ValueError("diffattn computes in float32: compute_dtype must be float32")
    fmt = _FORMATS[_dtype_name(storage_dtype)]
    if skip_modules_pattern == "auto" or skip_modules_pattern is None:
        return fmt, None, 0
    if isinstance(skip_modules_pattern, str):
        skip_modules_pattern = (skip_modules_pattern,)
    encoded = [p.encode() for p in skip_modules_pattern]
    array = (ctypes.c_char_p * max(len(encoded), 1))(*encoded)
    return fmt, array, len(encoded)


def enable_attention_casting(handle, storage_dtype, compute_dtype, skip_modules_pattern):
    fmt, array, count = _arguments(storage_dtype, compute_dtype, skip_modules_pattern)
    check(lib.da_attention_enable_layerwise_casting(handle, fmt, array, count))


def enable_model_casting(handle, storage_dtype, compute_dtype, skip_modules_pattern):
    fmt, array, count = _arguments(storage_dtype, compute_dtype, skip_modules_pattern)
    check(model_lib.da_model_enable_layerwise_casting(handle, fmt, array, count))
