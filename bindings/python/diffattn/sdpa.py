"""`diffattn.scaled_dot_product_attention`: torch.nn.functional's, on numpy arrays."""

import ctypes
import math

import numpy as np

from ._core import TensorArg, check, optional_arg, pointer
from ._lib import SDPAOptions, lib

_ALGORITHMS = {"auto": 0, "math": 1, "flash": 2}


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False, algorithm="auto", return_lse=False):
    """softmax(scale·Q·Kᵀ + mask)·V over (B, H, N, D) float32 arrays of any strides, read in place.

    `attn_mask` is additive float32 or boolean (True = attend) and broadcasts to (B, H, Nq, Nk).
    Returns a new (B, H, Nq, Dv) float32 array; with `return_lse` the pair (out, lse), lse the
    (B, H, Nq) float32 natural-log log-sum-exp of each row's scaled, masked scores (-inf for a row
    with every key removed, whose output is 0), computed on the flash path whatever `algorithm` says.
    """
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(_ALGORITHMS)}, got {algorithm!r}")
    q, k, v = TensorArg(query, "query"), TensorArg(key, "key"), TensorArg(value, "value")
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
        raise ValueError(f"query and value must both be 3-D or 4-D, got shapes {qa.shape} and {va.shape}")
    out = np.empty(qa.shape[:-1] + va.shape[-1:], dtype=np.float32)
    if return_lse:
        lse = np.empty(qa.shape[:-1], dtype=np.float32)
        check(lib.da_sdpa_with_lse(q.ref, k.ref, v.ref, pointer(mask), ctypes.byref(opts),
                                   TensorArg(out, "out").ref, TensorArg(lse, "lse").ref))
        return out, lse
    check(lib.da_scaled_dot_product_attention(q.ref, k.ref, v.ref, pointer(mask), ctypes.byref(opts),
                                              TensorArg(out, "out").ref))
    return out


def merge_attention_partials(out, lse, partial_out, partial_lse):
    """Folds the partial result (partial_out, partial_lse) into (out, lse) in place and returns them.

    The two results must come from attention over disjoint key sets (e.g. from
    `scaled_dot_product_attention(..., return_lse=True)` on two blocks of keys); the merge is the
    exact softmax re-normalisation, in fp32. out/partial_out (B, H, N, Dv), lse/partial_lse (B, H, N),
    float32; `out` and `lse` must be writable float32 arrays (any strides).
    """
    for name, a in (("out", out), ("lse", lse)):
        if not isinstance(a, np.ndarray) or a.dtype != np.float32 or not a.flags.writeable:
            raise TypeError(f"{name} must be a writable float32 numpy array, got {type(a).__name__}"
                            + (f" of {a.dtype}" if isinstance(a, np.ndarray) else ""))
    check(lib.da_merge_attention_partials(TensorArg(out, "out").ref, TensorArg(lse, "lse").ref,
                                          TensorArg(partial_out, "partial_out").ref,
                                          TensorArg(partial_lse, "partial_lse").ref))
    return out, lse
