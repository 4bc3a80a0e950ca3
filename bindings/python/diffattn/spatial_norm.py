"""`diffattn.SpatialNorm`: diffusers' SpatialNorm(f_channels, zq_channels) module."""

import ctypes

import numpy as np

from ._core import TensorArg, call_returning_tensor
from ._lib import SpatialNormWeights, lib

_NAMES = ("norm_layer.weight", "norm_layer.bias", "conv_y.weight", "conv_y.bias", "conv_b.weight", "conv_b.bias")


class SpatialNorm:
    """GroupNorm(32 groups, eps 1e-6) of `f`, modulated by 1×1 convolutions of the nearest-resized `zq`."""

    def __init__(self, f_channels, zq_channels):
        if f_channels % 32:
            raise ValueError(f"num_channels ({f_channels}) must be divisible by num_groups (32)")
        self.f_channels, self.zq_channels = int(f_channels), int(zq_channels)
        rng = np.random.default_rng(0)
        bound = 1 / np.sqrt(zq_channels)
        conv = lambda *shape: rng.uniform(-bound, bound, shape).astype(np.float32)  # noqa: E731
        self._weights = {
            "norm_layer.weight": np.ones(f_channels, np.float32), "norm_layer.bias": np.zeros(f_channels, np.float32),
            "conv_y.weight": conv(f_channels, zq_channels, 1, 1), "conv_y.bias": conv(f_channels),
            "conv_b.weight": conv(f_channels, zq_channels, 1, 1), "conv_b.bias": conv(f_channels),
        }

    def state_dict(self):
        return {k: v.copy() for k, v in self._weights.items()}

    def load_state_dict(self, state_dict, strict=True):
        missing = [k for k in _NAMES if k not in state_dict]
        unexpected = [k for k in state_dict if k not in _NAMES]
        if strict and (missing or unexpected):
            raise ValueError(f"Error(s) in loading state_dict for SpatialNorm: missing keys {missing}, "
                             f"unexpected keys {unexpected}")
        for k, v in state_dict.items():
            if k in _NAMES:
                v = np.asarray(v.detach().float() if hasattr(v, "detach") else v, dtype=np.float32)
                if v.shape != self._weights[k].shape:
                    raise ValueError(f"{k} must have shape {self._weights[k].shape}, got {v.shape}")
                self._weights[k] = v.copy()

    def __call__(self, f, zq):
        args = [TensorArg(self._weights[k], k) for k in _NAMES]
        w = SpatialNormWeights()
        w.struct_size = ctypes.sizeof(w)
        for field, a in zip(("norm_layer_weight", "norm_layer_bias", "conv_y_weight", "conv_y_bias",
                             "conv_b_weight", "conv_b_bias"), args):
            setattr(w, field, ctypes.pointer(a.tensor))
        ft, zt = TensorArg(f, "f"), TensorArg(zq, "zq")
        return call_returning_tensor(lib.da_spatial_norm, ft.ref, zt.ref, ctypes.byref(w), like=f)

    forward = __call__
