"""The DiT module classes (FluxAttention, MochiAttention, SanaMultiscaleLinearAttention) and the
rotary-table helpers, with diffusers' constructor arguments and state-dict names."""

import ctypes

import numpy as np

from ._core import check, managed_to_numpy
from ._lib import POINTER, AttentionConfig, DLManagedTensor, c_int64, c_void_p, lib
from .attention import Attention

_MODULE_FLUX, _MODULE_MOCHI, _MODULE_SANA = 1, 2, 3
_NORM_TYPES = {"batch_norm": 0, "rms_norm": 1, "layer_norm": 2}


def _create(obj, fill):
    obj._handle = None
    c = AttentionConfig()
    check(lib.da_attention_config_init(ctypes.byref(c), ctypes.sizeof(c)))
    fill(c)
    handle = c_void_p()
    check(lib.da_attention_create(ctypes.byref(c), ctypes.byref(handle)))
    obj._handle = handle


class FluxAttention(Attention):
    """diffusers.models.transformers.transformer_flux.FluxAttention."""

    def __init__(self, query_dim, heads=8, dim_head=64, dropout=0.0, bias=False, added_kv_proj_dim=None,
                 added_proj_bias=True, out_bias=True, eps=1e-5, out_dim=None, context_pre_only=None,
                 pre_only=False, elementwise_affine=True, processor=None):
        def fill(c):
            c.module_class = _MODULE_FLUX
            c.query_dim, c.heads, c.dim_head, c.dropout = int(query_dim), int(heads), int(dim_head), float(dropout)
            c.bias, c.added_kv_proj_dim = bool(bias), int(added_kv_proj_dim or 0)
            c.added_proj_bias, c.out_bias, c.eps = int(bool(added_proj_bias)), bool(out_bias), float(eps)
            c.out_dim = int(out_dim or 0)
            c.context_pre_only = -1 if context_pre_only is None else int(bool(context_pre_only))
            c.pre_only, c.elementwise_affine = bool(pre_only), bool(elementwise_affine)
        _create(self, fill)
        self.head_dim = dim_head
        self.query_dim, self.use_bias, self.dropout = query_dim, bias, dropout
        self.added_kv_proj_dim, self.context_pre_only, self.pre_only = added_kv_proj_dim, context_pre_only, pre_only
        if processor is not None:
            self.set_processor(processor)


class MochiAttention(Attention):
    """diffusers.models.transformers.transformer_mochi.MochiAttention (its forward does not filter keywords)."""

    def __init__(self, query_dim, added_kv_proj_dim, processor, heads=8, dim_head=64, dropout=0.0, bias=False,
                 added_proj_bias=True, out_dim=None, out_context_dim=None, out_bias=True, context_pre_only=False,
                 eps=1e-5):
        def fill(c):
            c.module_class = _MODULE_MOCHI
            c.query_dim, c.added_kv_proj_dim, c.heads, c.dim_head = int(query_dim), int(added_kv_proj_dim), int(heads), int(dim_head)
            c.dropout, c.bias, c.added_proj_bias = float(dropout), bool(bias), int(bool(added_proj_bias))
            c.out_dim, c.out_context_dim, c.out_bias = int(out_dim or 0), int(out_context_dim or 0), bool(out_bias)
            c.context_pre_only = -1 if context_pre_only is None else int(bool(context_pre_only))
            c.eps = float(eps)
        _create(self, fill)
        self.query_dim, self.context_pre_only = query_dim, context_pre_only
        self.set_processor(processor)

    def forward(self, hidden_states, encoder_hidden_states=None, attention_mask=None, **kwargs):
        unknown = [k for k in kwargs if k not in self.processor.call_keywords]
        if unknown:
            raise TypeError(f"{type(self.processor).__name__}.__call__() got an unexpected keyword argument '{unknown[0]}'")
        return super().forward(hidden_states, encoder_hidden_states, attention_mask, **kwargs)


class SanaMultiscaleLinearAttention(Attention):
    """diffusers.models.attention_processor.SanaMultiscaleLinearAttention (+ its projections)."""

    def __init__(self, in_channels, out_channels, num_attention_heads=None, attention_head_dim=8, mult=1.0,
                 norm_type="batch_norm", kernel_sizes=(5,), eps=1e-15, residual_connection=False):
        if norm_type not in _NORM_TYPES:
            raise ValueError(f"norm_type={norm_type} is not supported.")
        sizes = tuple(int(k) for k in kernel_sizes)

        def fill(c):
            c.module_class = _MODULE_SANA
            c.query_dim, c.out_channels, c.dim_head = int(in_channels), int(out_channels), int(attention_head_dim)
            c.heads = 0 if num_attention_heads is None else int(num_attention_heads)
            c.mult, c.norm_type, c.eps = float(mult), _NORM_TYPES[norm_type], float(eps)
            c.residual_connection = bool(residual_connection)
            c.num_kernel_sizes = len(sizes)
            for i, k in enumerate(sizes[:16]):
                c.kernel_sizes[i] = k
        _create(self, fill)
        self.in_channels, self.out_channels, self.norm_type = in_channels, out_channels, norm_type
        self.eps, self.residual_connection, self.kernel_sizes = eps, residual_connection, sizes
        self.attention_head_dim = attention_head_dim

    def load_state_dict(self, state_dict, strict=True):
        fixed = {k: (np.asarray(v, dtype=np.float32).reshape(()) if k.endswith("num_batches_tracked") else v)
                 for k, v in state_dict.items()}
        return super().load_state_dict(fixed, strict)

    def forward(self, hidden_states):
        return super().forward(hidden_states)

    def fuse_projections(self, *args, **kwargs):
        raise AttributeError("'SanaMultiscaleLinearAttention' object has no attribute 'fuse_projections'")

    def __call__(self, hidden_states):
        return self.forward(hidden_states)


def rotary_tables(positions, axes_dim, theta=10000.0, layout="repeat_interleave", linear_factor=1.0, ntk_factor=1.0,
                  float64=False):
    """(cos, sin) for positions (L,) or (L, A) over axes of widths axes_dim, concatenated per axis
    (FluxPosEmbed with float64=True and layout "repeat_interleave")."""
    pos = np.ascontiguousarray(np.asarray(positions, dtype=np.float64))
    if pos.ndim == 1:
        pos = pos[:, None]
    dims = (c_int64 * len(axes_dim))(*[int(a) for a in axes_dim])
    lay = {"repeat_interleave": 0, "concatenate": 1, "half": 2}[layout]
    cos_out, sin_out = POINTER(DLManagedTensor)(), POINTER(DLManagedTensor)()
    check(lib.da_rotary_tables(pos.ctypes.data_as(POINTER(ctypes.c_double)), pos.shape[0], pos.shape[1], dims,
                               float(theta), float(linear_factor), float(ntk_factor), lay, int(bool(float64)),
                               ctypes.byref(cos_out), ctypes.byref(sin_out)))
    return managed_to_numpy(cos_out), managed_to_numpy(sin_out)


def get_1d_rotary_pos_embed(dim, pos, theta=10000.0, use_real=False, linear_factor=1.0, ntk_factor=1.0,
                            repeat_interleave_real=True, freqs_dtype=np.float32):
    """diffusers.models.embeddings.get_1d_rotary_pos_embed on numpy (complex64 when not use_real)."""
    if isinstance(pos, int):
        pos = np.arange(pos)
    float64 = np.dtype(freqs_dtype) == np.float64 if not isinstance(freqs_dtype, str) else freqs_dtype == "float64"
    if not use_real:
        c, s = rotary_tables(pos, [dim], theta, "half", linear_factor, ntk_factor, float64)
        return (c + 1j * s).astype(np.complex64)
    return rotary_tables(pos, [dim], theta, "repeat_interleave" if repeat_interleave_real else "concatenate",
                         linear_factor, ntk_factor, float64)
