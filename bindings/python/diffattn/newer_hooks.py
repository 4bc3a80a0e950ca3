"""diffusers 0.42.1's newer hooks (issue 16): SeaCache, smoothed energy guidance, cache contexts with
scheduler fields. Names and signatures as diffusers':

    from diffattn.hooks import SeaCacheConfig, SmoothedEnergyGuidanceConfig
    model.enable_cache(SeaCacheConfig(threshold=0.25))              # or apply_sea_cache(model, config)
    for i, t in enumerate(timesteps):
        with model.cache_context("cond", step_index=i, sigma=sigmas[i], num_inference_steps=n):
            model.set_raw_vision([latent_cthw])    # what diffusers' raw_vision_callback returns
            ...                                    # the block protocol (docs/caches.md)

    apply_smoothed_energy_guidance(model, SmoothedEnergyGuidanceConfig(indices=[0]), blur_sigma=9999999.0)
    model.enable_cache(TextKVCacheConfig())                          # UNet / PixArt cross-attention
"""

import ctypes
import math
from ctypes import POINTER, c_char_p, c_int64
from dataclasses import asdict, dataclass
from typing import Any, Callable, List, Optional

import numpy as np

from ._cache_lib import CacheContextC, SeaCacheC, SEGC, TextKVC
from ._core import TensorArg, check
from ._lib import DLTensor, lib

SEG_DIFFUSERS_0_42_1, SEG_CORRECTED = 0, 1


def enter_cache_context(model, name, step_index=None, num_inference_steps=None, timestep=None, sigma=None):
    """diffusers' CacheContext fields (tensors accepted, as `.item()`)."""
    def scalar(v):
        return None if v is None else np.asarray(v).reshape(-1)[0].item()
    c = CacheContextC()
    check(lib.da_cache_context_init(ctypes.byref(c), ctypes.sizeof(c)))
    c.name = None if name is None else str(name).encode()
    s, n, t, g = scalar(step_index), scalar(num_inference_steps), scalar(timestep), scalar(sigma)
    c.step_index = -1 if s is None else int(s)
    c.num_inference_steps = -1 if n is None else int(n)
    c.timestep = math.nan if t is None else float(t)
    c.sigma = math.nan if g is None else float(g)
    check(lib.da_model_enter_cache_context(model._handle, ctypes.byref(c)))


# --- SeaCache ------------------------------------------------------------------------------------
@dataclass
class SeaCacheConfig:
    threshold: float = 0.25
    residual_order: int = 1
    retention_steps: int = 1
    cache_end_steps: int = 1
    max_consecutive_cached: int = 2
    power_exp: float = 3.0
    raw_vision_callback: Optional[Callable[..., Any]] = None

    def __post_init__(self):  # diffusers' checks and messages (hooks/sea_cache.py: SeaCacheConfig)
        if not math.isfinite(self.threshold) or self.threshold < 0:
            raise ValueError(f"`threshold` must be non-negative, got {self.threshold}.")
        if self.residual_order not in (0, 1):
            raise ValueError(f"`residual_order` must be 0 or 1, got {self.residual_order}.")
        if self.retention_steps < 0:
            raise ValueError(f"`retention_steps` must be non-negative, got {self.retention_steps}.")
        if self.cache_end_steps < 0:
            raise ValueError(f"`cache_end_steps` must be non-negative, got {self.cache_end_steps}.")
        m = self.max_consecutive_cached
        if isinstance(m, bool) or not isinstance(m, int) or m < 0:
            raise ValueError(f"`max_consecutive_cached` must be a non-negative integer, got {m!r}.")
        if not math.isfinite(self.power_exp) or self.power_exp <= 0:
            raise ValueError(f"`power_exp` must be positive, got {self.power_exp}.")
        if self.raw_vision_callback is not None and not callable(self.raw_vision_callback):
            raise TypeError("`raw_vision_callback` must be callable or `None`.")

    def _c(self, module):
        c = SeaCacheC()
        check(lib.da_sea_cache_config_init(ctypes.byref(c), ctypes.sizeof(c)))
        c.threshold, c.residual_order, c.retention_steps = float(self.threshold), self.residual_order, self.retention_steps
        c.cache_end_steps, c.max_consecutive_cached, c.power_exp = self.cache_end_steps, self.max_consecutive_cached, float(self.power_exp)
        module._sea_cache_callback = self.raw_vision_callback
        return c, None


def apply_sea_cache(module, config):
    """diffusers' `apply_sea_cache(module, config)`."""
    c, _ = config._c(module)
    hooked = c_int64()
    check(lib.da_model_apply_sea_cache(module._handle, ctypes.byref(c), ctypes.byref(hooked)))
    return hooked.value


def set_raw_vision(model, latents):
    """The raw (C, T, H, W) latents of the next transformer call (None = none: the call runs in full)."""
    arrays = [np.ascontiguousarray(np.asarray(x, dtype=np.float32)) for x in (latents or [])]
    args = [TensorArg(a, f"latents[{i}]") for i, a in enumerate(arrays)]
    table = (DLTensor * max(len(args), 1))(*[a.tensor for a in args])
    check(lib.da_model_set_raw_vision(model._handle, table if args else None, len(args)))


def sea_filter(latent, sigma, power_exp=3.0):
    """diffusers' `_apply_sea_filter` on one (C, T, H, W) latent; returns (T, H, W, C)."""
    x = np.ascontiguousarray(np.asarray(latent, dtype=np.float32))
    out = np.empty(x.shape[1:] + x.shape[:1], np.float32)
    check(lib.da_sea_filter(TensorArg(x, "latent").ref, float(sigma), float(power_exp), TensorArg(out, "out").ref))
    return out


# --- smoothed energy guidance ----------------------------------------------------------------------
@dataclass
class SmoothedEnergyGuidanceConfig:
    indices: List[int]
    fqn: str = "auto"
    _query_proj_identifiers: Optional[List[str]] = None

    def to_dict(self):
        return asdict(self)

    @staticmethod
    def from_dict(data):
        return SmoothedEnergyGuidanceConfig(**data)


def apply_smoothed_energy_guidance(module, config, blur_sigma, name=None, corrected=False):
    """diffusers' `_apply_smoothed_energy_guidance_hook(module, config, blur_sigma)`. `corrected=True`
    maps sigma as SEG intends (docs/deviations.md); the default reproduces diffusers 0.42.1."""
    c = SEGC()
    check(lib.da_smoothed_energy_guidance_config_init(ctypes.byref(c), ctypes.sizeof(c)))
    idx = (c_int64 * max(len(config.indices), 1))(*[int(i) for i in config.indices])
    c.indices, c.num_indices = ctypes.cast(idx, POINTER(c_int64)), len(config.indices)
    c.fqn = config.fqn.encode()
    ids = config._query_proj_identifiers
    arr = None if ids is None else (c_char_p * max(len(ids), 1))(*[i.encode() for i in ids])
    c.query_proj_identifiers, c.num_query_proj_identifiers = arr, 0 if ids is None else len(ids)
    c.mapping = SEG_CORRECTED if corrected else SEG_DIFFUSERS_0_42_1
    hooked = c_int64()
    check(lib.da_model_apply_smoothed_energy_guidance(module._handle, ctypes.byref(c), float(blur_sigma), ctypes.byref(hooked)))
    if config.fqn == "auto":
        config.fqn = module._auto_block_list()
    if config._query_proj_identifiers is None:
        config._query_proj_identifiers = ["to_q"]
    return hooked.value


def remove_smoothed_energy_guidance(module):
    check(lib.da_model_remove_smoothed_energy_guidance(module._handle))


def seg_blur_query(query, blur_sigma, corrected=False):
    """SEG's blur alone on a (B, S, D) query (diffusers' `_gaussian_blur_2d` with its kernel size)."""
    q = np.ascontiguousarray(np.asarray(query, dtype=np.float32))
    out = np.empty_like(q)
    check(lib.da_seg_blur_query(TensorArg(q, "query").ref, float(blur_sigma), SEG_CORRECTED if corrected else 0,
                                TensorArg(out, "out").ref))
    return out


# --- text K/V cache ----------------------------------------------------------------------------------
@dataclass
class TextKVCacheConfig:
    """diffusers' `TextKVCacheConfig` (no fields): cross-attention keys and values computed once per
    prompt and cache context (UNet, PixArt); a `ValueError` on models whose text stream changes per
    step (Flux, SD3)."""

    def _c(self, module):
        c = TextKVC()
        check(lib.da_text_kv_cache_config_init(ctypes.byref(c), ctypes.sizeof(c)))
        return c, None


def apply_text_kv_cache(module, config):
    """diffusers' `apply_text_kv_cache(module, config)`."""
    c, _ = config._c(module)
    hooked = c_int64()
    check(lib.da_model_apply_text_kv_cache(module._handle, ctypes.byref(c), ctypes.byref(hooked)))
    return hooked.value


def text_kv_cache_counts(module):
    """(hits, misses) of the cached projections since the last reset."""
    hits, misses = c_int64(), c_int64()
    check(lib.da_model_text_kv_cache_counts(module._handle, ctypes.byref(hits), ctypes.byref(misses)))
    return hits.value, misses.value
