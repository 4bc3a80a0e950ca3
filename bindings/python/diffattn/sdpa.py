"""`diffattn.scaled_dot_product_attention`: torch.nn.functional's, on numpy arrays."""

import ctypes
import math

import numpy as np

from ._core import TensorArg, check, optional_arg, pointer
from ._lib import SDPAOptions, lib

_ALGORITHMS = {"auto": 0, "math": 1, "flash": 2}
_PRECISIONS = {"default": 0, "int8": 1}  # DA_PRECISION_*


class BFloat16Array:
    """bfloat16 data for numpy, which has no bf16 dtype: `bits` holds the bit patterns (any 2-byte
    dtype: uint16, int16, ml_dtypes.bfloat16), same shape and strides as the tensor. Results of a
    bf16 attention come back in this form when the inputs were given in it."""

    __slots__ = ("bits",)

    def __init__(self, bits):
        bits = np.asarray(bits)
        if bits.dtype.itemsize != 2:
            raise TypeError(f"BFloat16Array needs 2-byte elements (bf16 bit patterns), got {bits.dtype}")
        self.bits = bits

    @classmethod
    def from_float32(cls, array):
        """Rounds float32 to bfloat16 (nearest even)."""
        x = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)
        rounded = (x + 0x7FFF + ((x >> 16) & 1)) >> 16
        nan = np.isnan(np.asarray(array, dtype=np.float32))
        rounded = np.where(nan, (x >> 16) | 0x40, rounded)
        return cls(rounded.astype(np.uint16))

    def to_float32(self):
        return (self.bits.view(np.uint16).astype(np.uint32) << 16).view(np.float32)

    @property
    def shape(self):
        return self.bits.shape

    @property
    def ndim(self):
        return self.bits.ndim


def _as_operand(x, name):
    """(TensorArg, kind) for a float32/bf16 numpy array, a BFloat16Array or a torch tensor.
    kind is how a bf16 result is handed back: "numpy" (float32), "bits", "ml_dtypes" or "torch"."""
    if isinstance(x, BFloat16Array):
        return TensorArg(x.bits, name, bfloat16=True), "bits"
    module = type(x).__module__
    if module.startswith("torch"):
        import torch  # only reached with a torch tensor in hand
        t = x.detach()
        if t.dtype == torch.bfloat16:
            return TensorArg(t.view(torch.int16).numpy(), name, bfloat16=True), "torch"
        return TensorArg(t.numpy(), name), "numpy"  # float32 results stay numpy, as before
    if isinstance(x, np.ndarray) and x.dtype.name == "bfloat16":  # ml_dtypes
        return TensorArg(x, name, bfloat16=True), "ml_dtypes"
    return TensorArg(x, name), "numpy"


def _result(bits, kind, like):
    if kind == "torch":
        import torch
        return torch.from_numpy(bits.view(np.int16)).view(torch.bfloat16)
    if kind == "ml_dtypes":
        return bits.view(like.dtype)
    return BFloat16Array(bits)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False, algorithm="auto", precision="default", out_dtype=None):
    """softmax(scale·Q·Kᵀ + mask)·V over (B, H, N, D) arrays of any strides, read in place.

    query/key/value: float32 numpy arrays, or all bfloat16 — `BFloat16Array`, ml_dtypes.bfloat16
    arrays, or torch.bfloat16 tensors (torch float32 tensors work too). bf16 runs its products and
    sums in float32. `attn_mask` is additive float32 or boolean (True = attend) and broadcasts to
    (B, H, Nq, Nk). `precision="int8"` opts into SageAttention-style int8 attention (lossy, see
    docs/performance.md). `out_dtype` is "float32" or "bfloat16" (default: the inputs' dtype).
    Returns a new (B, H, Nq, Dv) array: float32 numpy, or bf16 in the inputs' kind (BFloat16Array,
    ml_dtypes array or torch tensor).
    """
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(_ALGORITHMS)}, got {algorithm!r}")
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(_PRECISIONS)}, got {precision!r}")
    (q, kind), (k, _), (v, _) = (_as_operand(x, n) for x, n in ((query, "query"), (key, "key"), (value, "value")))
    bf16_in = q.tensor.dtype.code == 4
    if out_dtype not in (None, "float32", "bfloat16"):
        raise ValueError(f"out_dtype must be None, 'float32' or 'bfloat16', got {out_dtype!r}")
    bf16_out = bf16_in if out_dtype is None else out_dtype == "bfloat16"
    mask = optional_arg(attn_mask, "attn_mask", allow_bool=True)
    opts = SDPAOptions()
    check(lib.da_sdpa_options_init(ctypes.byref(opts), ctypes.sizeof(opts)))
    opts.is_causal = bool(is_causal)
    opts.dropout_p = float(dropout_p)
    opts.enable_gqa = bool(enable_gqa)
    opts.algorithm = _ALGORITHMS[algorithm]
    opts.precision = _PRECISIONS[precision]
    if scale is not None:
        opts.has_scale, opts.scale = 1, float(scale)
        if not math.isfinite(opts.scale):
            raise ValueError(f"scale must be finite, got {scale}")
    qa, va = q.array, v.array
    if qa.ndim not in (3, 4) or va.ndim != qa.ndim:
        raise ValueError(f"query and value must both be 3-D or 4-D, got shapes {qa.shape} and {va.shape}")
    out = np.empty(qa.shape[:-1] + va.shape[-1:], dtype=np.uint16 if bf16_out else np.float32)
    check(lib.da_scaled_dot_product_attention(q.ref, k.ref, v.ref, pointer(mask), ctypes.byref(opts),
                                              TensorArg(out, "out", bfloat16=bf16_out).ref))
    return _result(out, kind, qa) if bf16_out else out
