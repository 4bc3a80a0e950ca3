"""`diffattn.scaled_dot_product_attention`: torch.nn.functional's, on numpy arrays."""

import ctypes
import math

import numpy as np

from . import _torch
from ._core import TensorArg, check, optional_arg, pointer
from ._lib import SDPAOptions, lib

_ALGORITHMS = {"auto": 0, "math": 1, "flash": 2}


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False, algorithm="auto", out=None):
    """softmax(scale·Q·Kᵀ + mask)·V over (B, H, N, D) arrays of any strides, read in place.

    numpy float32 arrays, or CPU torch tensors of float32 / bfloat16 (the result is then a torch
    tensor of the query's dtype, allocated by torch and written by the library). `attn_mask` is
    additive (float) or boolean (True = attend) and broadcasts to (B, H, Nq, Nk).
    Returns a new (B, H, Nq, Dv) array, or writes into `out` (float32, that shape, any strides)
    and returns it, converted to the query's dtype.
    """
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(_ALGORITHMS)}, got {algorithm!r}")
    torch_in = _torch.is_tensor(query)
    if torch_in != _torch.is_tensor(key) or torch_in != _torch.is_tensor(value):
        raise TypeError("query, key and value must all be torch tensors or all numpy arrays")
    bf16 = torch_in and _torch.bf16_supported("sdpa")
    q, k, v = (TensorArg(query, "query", allow_bf16=bf16), TensorArg(key, "key", allow_bf16=bf16),
               TensorArg(value, "value", allow_bf16=bf16))
    mask = optional_arg(attn_mask, "attn_mask", allow_bool=True)
    opts = SDPAOptions()
    check(lib.da_sdpa_options_init(ctypes.byref(opts), ctypes.sizeof(opts)))
    opts.is_causal = bool(is_causal)
    opts.dropout_p = float(dropout_p)
    opts.enable_gqa = bool(enable_gqa)
    opts.algorithm = _ALGORITHMS[algorithm]
    if scale is not None:
        opts.has_scale, opts.scale = 1, float(scale)
        if not math.isfinite(opts.scale):
            raise ValueError(f"scale must be finite, got {scale}")
    qa, va = q.array, v.array
    if qa.ndim not in (3, 4) or va.ndim != qa.ndim:
        raise ValueError(f"query and value must both be 3-D or 4-D, got shapes {tuple(qa.shape)} and "
                         f"{tuple(va.shape)}")
    shape = tuple(qa.shape[:-1]) + tuple(va.shape[-1:])
    if out is None:
        out = _torch.empty(shape) if torch_in else np.empty(shape, dtype=np.float32)
    check(lib.da_scaled_dot_product_attention(q.ref, k.ref, v.ref, pointer(mask), ctypes.byref(opts),
                                              TensorArg(out, "out").ref))
    return _torch.result(out, query) if torch_in else out
