"""`diffattn.scaled_dot_product_attention`: torch.nn.functional's, on numpy arrays."""

import ctypes
import math

import numpy as np

from . import _torch
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
    """(TensorArg, kind) for a float32/bf16 numpy array or a BFloat16Array. kind is how a bf16
    result is handed back: "numpy" (float32), "bits" or "ml_dtypes". torch tensors go through
    `_torch_sdpa` instead (read in place, result allocated by torch)."""
    if isinstance(x, BFloat16Array):
        return TensorArg(x.bits, name, bfloat16=True), "bits"
    if isinstance(x, np.ndarray) and x.dtype.name == "bfloat16":  # ml_dtypes
        return TensorArg(x, name, bfloat16=True), "ml_dtypes"
    return TensorArg(x, name), "numpy"


def _result(bits, kind, like):
    if kind == "ml_dtypes":
        return bits.view(like.dtype)
    return BFloat16Array(bits)


def _options(dropout_p, is_causal, scale, enable_gqa, algorithm, precision):
    if algorithm not in _ALGORITHMS:
        raise ValueError(f"algorithm must be one of {sorted(_ALGORITHMS)}, got {algorithm!r}")
    if precision not in _PRECISIONS:
        raise ValueError(f"precision must be one of {sorted(_PRECISIONS)}, got {precision!r}")
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
    return opts


def _output_shape(qa, va):
    if len(qa.shape) not in (3, 4) or len(va.shape) != len(qa.shape):
        raise ValueError(f"query and value must both be 3-D or 4-D, got shapes {tuple(qa.shape)} and "
                         f"{tuple(va.shape)}")
    return tuple(qa.shape[:-1]) + tuple(va.shape[-1:])


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                                 enable_gqa=False, algorithm="auto", precision="default", out_dtype=None, out=None,
                                 return_lse=False):
    """softmax(scale·Q·Kᵀ + mask)·V over (B, H, N, D) arrays of any strides, read in place.

    query/key/value: float32 numpy arrays; or all bfloat16 — `BFloat16Array` or ml_dtypes.bfloat16
    arrays; or CPU torch tensors of float32 / bfloat16 (the result is then a torch tensor of the
    query's dtype, allocated by torch and written by the library). bf16 runs its products and sums
    in float32. `attn_mask` is additive (float) or boolean (True = attend) and broadcasts to
    (B, H, Nq, Nk). `precision="int8"` opts into SageAttention-style int8 attention (lossy, see
    docs/performance.md). `out_dtype` is "float32" or "bfloat16" (default: the inputs' dtype).
    Returns a new (B, H, Nq, Dv) array, or writes into `out` (that shape, any strides) and returns it.
    With `return_lse` the pair (out, lse), lse the (B, H, Nq) float32 natural-log log-sum-exp of each
    row's scaled, masked scores (-inf for a row with every key removed, whose output is 0), computed
    on the flash path whatever `algorithm` says (a torch tensor when the inputs are torch).
    """
    opts = _options(dropout_p, is_causal, scale, enable_gqa, algorithm, precision)
    if out_dtype not in (None, "float32", "bfloat16"):
        raise ValueError(f"out_dtype must be None, 'float32' or 'bfloat16', got {out_dtype!r}")
    torch_in = _torch.is_tensor(query)
    if torch_in != _torch.is_tensor(key) or torch_in != _torch.is_tensor(value):
        raise TypeError("query, key and value must all be torch tensors or all numpy arrays")
    mask = optional_arg(attn_mask, "attn_mask", allow_bool=True)
    lse = None

    def run(out_arg, shape):
        nonlocal lse
        if not return_lse:
            check(lib.da_scaled_dot_product_attention(q.ref, k.ref, v.ref, pointer(mask), ctypes.byref(opts), out_arg.ref))
            return
        lse_shape = shape[:-1]
        lse = _torch.torch_module().empty(lse_shape) if torch_in else np.empty(lse_shape, dtype=np.float32)
        check(lib.da_sdpa_with_lse(q.ref, k.ref, v.ref, pointer(mask), ctypes.byref(opts), out_arg.ref,
                                   TensorArg(lse, "lse").ref))

    def done(result):
        return (result, lse) if return_lse else result

    if torch_in:
        bf16 = _torch.bf16_supported("sdpa")
        q, k, v = (TensorArg(x, n, allow_bf16=bf16) for x, n in ((query, "query"), (key, "key"), (value, "value")))
        shape = _output_shape(q.array, v.array)
        if out is None:
            torch = _torch.torch_module()
            dtype = {None: query.dtype, "float32": torch.float32, "bfloat16": torch.bfloat16}[out_dtype]
            if dtype == torch.bfloat16 and not bf16:
                dtype = torch.float32
            out = torch.empty(shape, dtype=dtype)
        run(TensorArg(out, "out", allow_bf16=bf16), shape)
        return done(_torch.result(out, query) if out_dtype is None else out)
    (q, kind), (k, _), (v, _) = (_as_operand(x, n) for x, n in ((query, "query"), (key, "key"), (value, "value")))
    bf16_in = q.tensor.dtype.code == 4
    bf16_out = bf16_in if out_dtype is None else out_dtype == "bfloat16"
    shape = _output_shape(q.array, v.array)
    if out is None:
        bits = np.empty(shape, dtype=np.uint16 if bf16_out else np.float32)
        run(TensorArg(bits, "out", bfloat16=bf16_out), shape)
        return done(_result(bits, kind, q.array) if bf16_out else bits)
    run(TensorArg(out, "out"), shape)
    return done(out)


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
