"""Pyramid attention broadcast's config and its C struct (diffusers' hooks/pyramid_attention_broadcast.py).

Below both `hooks` (which applies it) and `caches` (whose `enable_cache` accepts it too), so that
neither imports the other for it.
"""

import ctypes
from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

from ._core import c_strings, check, guard_callback
from ._hook_lib import PABConfig, TimestepFn
from ._lib import defaults, lib

_DEFAULTS = defaults(PABConfig, lib.da_pab_config_init)
_KINDS = ("spatial", "temporal", "cross")


def _range(name):
    return tuple(getattr(_DEFAULTS, name))


@dataclass
class PyramidAttentionBroadcastConfig:
    spatial_attention_block_skip_range: Optional[int] = None
    temporal_attention_block_skip_range: Optional[int] = None
    cross_attention_block_skip_range: Optional[int] = None
    spatial_attention_timestep_skip_range: Tuple[float, float] = _range("spatial_attention_timestep_skip_range")
    temporal_attention_timestep_skip_range: Tuple[float, float] = _range("temporal_attention_timestep_skip_range")
    cross_attention_timestep_skip_range: Tuple[float, float] = _range("cross_attention_timestep_skip_range")
    spatial_attention_block_identifiers: Tuple[str, ...] = ("blocks", "transformer_blocks", "single_transformer_blocks",
                                                           "layers", "visual_transformer_blocks")
    temporal_attention_block_identifiers: Tuple[str, ...] = ("temporal_transformer_blocks",)
    cross_attention_block_identifiers: Tuple[str, ...] = ("blocks", "transformer_blocks", "layers")
    current_timestep_callback: Optional[Callable[[], float]] = None


def pab_c_config(config):
    """The C struct of a PyramidAttentionBroadcastConfig and what must stay alive with it."""
    c = PABConfig()
    check(lib.da_pab_config_init(ctypes.byref(c), ctypes.sizeof(c)))
    identifiers = []
    for kind in _KINDS:
        r = getattr(config, f"{kind}_attention_block_skip_range")
        setattr(c, f"{kind}_attention_block_skip_range", 0 if r is None else int(r))
        lo, hi = getattr(config, f"{kind}_attention_timestep_skip_range")
        getattr(c, f"{kind}_attention_timestep_skip_range")[:] = [float(lo), float(hi)]
        arr, n = c_strings(getattr(config, f"{kind}_attention_block_identifiers"))
        setattr(c, f"{kind}_attention_block_identifiers", arr)
        setattr(c, f"num_{kind}_attention_block_identifiers", n)
        identifiers.append(arr)
    fn = config.current_timestep_callback

    def timestep(_user, out):
        t = fn()
        if t is None:
            raise TypeError("'<' not supported between instances of 'float' and 'NoneType'")
        out[0] = float(np.asarray(t).reshape(-1)[0]) if not isinstance(t, (int, float)) else float(t)
        return 0

    c.current_timestep_callback = TimestepFn(guard_callback(timestep))
    return c, (c.current_timestep_callback, identifiers)


def require_timestep_callback(config):
    if config.current_timestep_callback is None:
        raise ValueError("The `current_timestep_callback` function must be provided in the configuration to apply "
                         "Pyramid Attention Broadcast.")
