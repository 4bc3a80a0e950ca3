"""Caches and layer skip (issue 10): diffusers' `FasterCacheConfig`, `FirstBlockCacheConfig`,
`TaylorSeerCacheConfig`, `MagCacheConfig`, `LayerSkipConfig` and their `apply_*` functions, plus
`TeaCacheConfig` / `apply_teacache` (from the TeaCache paper; diffusers has none).

The host runs the transformer blocks, so the block caches ask it, around every block, through the
block protocol (docs/caches.md):

    model.enable_cache(FirstBlockCacheConfig(threshold=0.1))
    for t in timesteps:
        with model.step(t), model.cache_context("cond"):
            for path in model.transformer_block_paths():
                run, h, e = model.module_begin(path, h, e)     # e may be None
                if run:
                    h, e = my_block(path, h, e)
                    h, e = model.module_end(path, h, e)
"""

import ctypes
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import numpy as np

from ._cache_lib import (KINDS, FasterCacheCConfig, FBCConfig, LayerSkipCConfig, MagCacheCConfig, TaylorSeerCConfig,
                         TeaCacheCConfig, WeightFn, FrequencyWeightFn)
from ._core import c_strings as _strings, check, guard_callback as _callback_guard
from ._hook_lib import TimestepFn
from ._lib import defaults, lib
from ._pab import pab_c_config, require_timestep_callback

_SPATIAL = ("^blocks.*attn", "^transformer_blocks.*attn", "^single_transformer_blocks.*attn")
# The C API's defaults (its *_init functions), so that no default number is typed twice.
_FBC = defaults(FBCConfig, lib.da_first_block_cache_config_init)
_FASTER = defaults(FasterCacheCConfig, lib.da_faster_cache_config_init)
_TAYLOR = defaults(TaylorSeerCConfig, lib.da_taylorseer_cache_config_init)
_MAG = defaults(MagCacheCConfig, lib.da_mag_cache_config_init)
_TEA = defaults(TeaCacheCConfig, lib.da_teacache_config_init)
_SKIP = defaults(LayerSkipCConfig, lib.da_layer_skip_config_init)


def _range(name):
    return tuple(getattr(_FASTER, name))


def _doubles(values):
    if values is None:
        return None, 0
    values = [float(v) for v in np.asarray(values, dtype=np.float64).reshape(-1)]
    return (ctypes.c_double * max(len(values), 1))(*values), len(values)


@dataclass
class FirstBlockCacheConfig:
    threshold: float = _FBC.threshold

    def _c(self, module):
        c = FBCConfig()
        check(lib.da_first_block_cache_config_init(ctypes.byref(c), ctypes.sizeof(c)))
        c.threshold = float(self.threshold)
        return c, ()


@dataclass
class FasterCacheConfig:
    spatial_attention_block_skip_range: int = _FASTER.spatial_attention_block_skip_range
    temporal_attention_block_skip_range: Optional[int] = _FASTER.temporal_attention_block_skip_range or None
    spatial_attention_timestep_skip_range: Tuple[float, float] = _range("spatial_attention_timestep_skip_range")
    temporal_attention_timestep_skip_range: Tuple[float, float] = _range("temporal_attention_timestep_skip_range")
    low_frequency_weight_update_timestep_range: Tuple[float, float] = _range("low_frequency_weight_update_timestep_range")
    high_frequency_weight_update_timestep_range: Tuple[float, float] = _range("high_frequency_weight_update_timestep_range")
    alpha_low_frequency: float = _FASTER.alpha_low_frequency
    alpha_high_frequency: float = _FASTER.alpha_high_frequency
    unconditional_batch_skip_range: int = _FASTER.unconditional_batch_skip_range
    unconditional_batch_timestep_skip_range: Tuple[float, float] = _range("unconditional_batch_timestep_skip_range")
    spatial_attention_block_identifiers: Tuple[str, ...] = _SPATIAL
    temporal_attention_block_identifiers: Tuple[str, ...] = ("^temporal_transformer_blocks.*attn",)
    attention_weight_callback: Optional[Callable] = None
    low_frequency_weight_callback: Optional[Callable] = None   # callback(module) -> float; None = alpha_* in range
    high_frequency_weight_callback: Optional[Callable] = None
    tensor_format: str = "BCFHW"
    is_guidance_distilled: bool = False
    current_timestep_callback: Optional[Callable] = None      # None = the timestep of model.step(t)

    def _c(self, module):
        c = FasterCacheCConfig()
        check(lib.da_faster_cache_config_init(ctypes.byref(c), ctypes.sizeof(c)))
        c.spatial_attention_block_skip_range = int(self.spatial_attention_block_skip_range or 0)
        c.temporal_attention_block_skip_range = int(self.temporal_attention_block_skip_range or 0)
        for name in ("spatial_attention_timestep_skip_range", "temporal_attention_timestep_skip_range",
                     "low_frequency_weight_update_timestep_range", "high_frequency_weight_update_timestep_range",
                     "unconditional_batch_timestep_skip_range"):
            getattr(c, name)[:] = [float(x) for x in getattr(self, name)]
        c.alpha_low_frequency, c.alpha_high_frequency = float(self.alpha_low_frequency), float(self.alpha_high_frequency)
        c.unconditional_batch_skip_range = int(self.unconditional_batch_skip_range)
        spatial, ns = _strings(self.spatial_attention_block_identifiers)
        temporal, nt = _strings(self.temporal_attention_block_identifiers)
        c.spatial_attention_block_identifiers, c.num_spatial_attention_block_identifiers = spatial, ns
        c.temporal_attention_block_identifiers, c.num_temporal_attention_block_identifiers = temporal, nt
        fmt = str(self.tensor_format).encode()
        c.tensor_format = fmt
        c.is_guidance_distilled = int(bool(self.is_guidance_distilled))
        keep = [spatial, temporal, fmt]
        if self.current_timestep_callback is not None:
            fn = self.current_timestep_callback

            def timestep(_user, out):
                t = fn()
                if t is None:
                    raise TypeError("'<' not supported between instances of 'int' and 'NoneType'")
                out[0] = float(np.asarray(t).reshape(-1)[0])
                return 0
            c.current_timestep_callback = TimestepFn(_callback_guard(timestep))
            keep.append(c.current_timestep_callback)
        if self.attention_weight_callback is None:
            self.attention_weight_callback = lambda _: 0.5  # diffusers writes its default back
        weight_fn = self.attention_weight_callback

        def weight(_user, path, out):
            out[0] = float(weight_fn(module.get_submodule(path.decode())))
            return 0
        c.attention_weight_callback = WeightFn(_callback_guard(weight))
        keep.append(c.attention_weight_callback)
        for field in ("low_frequency_weight_callback", "high_frequency_weight_callback"):
            user_fn = getattr(self, field)
            if user_fn is None:
                continue

            def frequency(_user, out, user_fn=user_fn):  # diffusers calls it with the denoiser module
                out[0] = float(user_fn(module))
                return 0
            setattr(c, field, FrequencyWeightFn(_callback_guard(frequency)))
            keep.append(getattr(c, field))
        return c, keep


@dataclass
class TaylorSeerCacheConfig:
    cache_interval: int = _TAYLOR.cache_interval
    disable_cache_before_step: int = _TAYLOR.disable_cache_before_step
    disable_cache_after_step: Optional[int] = None if _TAYLOR.disable_cache_after_step < 0 else _TAYLOR.disable_cache_after_step
    max_order: int = _TAYLOR.max_order
    taylor_factors_dtype: str = "bfloat16"   # or "float32" (torch dtypes accepted by name)
    skip_predict_identifiers: Optional[List[str]] = None
    cache_identifiers: Optional[List[str]] = None
    use_lite_mode: bool = False

    def _c(self, module):
        c = TaylorSeerCConfig()
        check(lib.da_taylorseer_cache_config_init(ctypes.byref(c), ctypes.sizeof(c)))
        c.cache_interval, c.disable_cache_before_step = int(self.cache_interval), int(self.disable_cache_before_step)
        c.disable_cache_after_step = -1 if self.disable_cache_after_step is None else int(self.disable_cache_after_step)
        c.max_order = int(self.max_order)
        dtype = str(self.taylor_factors_dtype).replace("torch.", "")
        if dtype not in ("bfloat16", "float32"):
            raise ValueError(f"taylor_factors_dtype must be bfloat16 or float32, got {self.taylor_factors_dtype}")
        c.taylor_factors_float32 = int(dtype == "float32")
        skip, nskip = _strings(self.skip_predict_identifiers)
        cache, ncache = _strings(self.cache_identifiers)
        c.skip_predict_identifiers, c.num_skip_predict_identifiers = skip, nskip
        c.cache_identifiers, c.num_cache_identifiers = cache, ncache
        c.use_lite_mode = int(bool(self.use_lite_mode))
        return c, (skip, cache)


@dataclass
class MagCacheConfig:
    threshold: float = _MAG.threshold
    max_skip_steps: int = _MAG.max_skip_steps
    retention_ratio: float = _MAG.retention_ratio
    num_inference_steps: int = _MAG.num_inference_steps
    mag_ratios: Optional[List[float]] = None
    calibrate: bool = False

    def __post_init__(self):
        if self.mag_ratios is None and not self.calibrate:
            raise ValueError("`mag_ratios` must be provided for MagCache inference because these ratios are "
                             "model-dependent. To get them for your model, set `calibrate=True` in the config and run "
                             "one full inference pass.")

    def _c(self, module):
        c = MagCacheCConfig()
        check(lib.da_mag_cache_config_init(ctypes.byref(c), ctypes.sizeof(c)))
        c.threshold, c.max_skip_steps = float(self.threshold), int(self.max_skip_steps)
        c.retention_ratio, c.num_inference_steps = float(self.retention_ratio), int(self.num_inference_steps)
        ratios, n = _doubles(self.mag_ratios)
        c.mag_ratios, c.num_mag_ratios = (ctypes.cast(ratios, ctypes.POINTER(ctypes.c_double)) if ratios else None), n
        c.calibrate = int(bool(self.calibrate))
        return c, (ratios,)


FLUX_TEACACHE_COEFFICIENTS = [4.98651651e+02, -2.83781631e+02, 5.58554382e+01, -3.82021401e+00, 2.64230861e-01]


@dataclass
class TeaCacheConfig:
    """TeaCache (not in diffusers): relative-L1 change of the first block's modulated input,
    rescaled by `numpy.poly1d(coefficients)`, accumulated against `rel_l1_thresh`."""
    rel_l1_thresh: float = _TEA.rel_l1_thresh
    coefficients: List[float] = field(default_factory=lambda: list(FLUX_TEACACHE_COEFFICIENTS))
    num_inference_steps: int = _TEA.num_inference_steps

    def _c(self, module):
        c = TeaCacheCConfig()
        check(lib.da_teacache_config_init(ctypes.byref(c), ctypes.sizeof(c)))
        c.rel_l1_thresh, c.num_inference_steps = float(self.rel_l1_thresh), int(self.num_inference_steps)
        coef, n = _doubles(self.coefficients)
        c.coefficients, c.num_coefficients = (ctypes.cast(coef, ctypes.POINTER(ctypes.c_double)) if coef else None), n
        return c, (coef,)


@dataclass
class LayerSkipConfig:
    indices: List[int]
    fqn: str = "auto"
    skip_attention: bool = bool(_SKIP.skip_attention)
    skip_attention_scores: bool = bool(_SKIP.skip_attention_scores)
    skip_ff: bool = bool(_SKIP.skip_ff)
    dropout: float = _SKIP.dropout

    def __post_init__(self):
        if not (0 <= self.dropout <= 1):
            raise ValueError(f"Expected `dropout` to be between 0.0 and 1.0, but got {self.dropout}.")
        if not np.isclose(self.dropout, 1.0) and self.skip_attention_scores:
            raise ValueError("Cannot set `skip_attention_scores` to True when `dropout` is not 1.0. Please set `dropout` to 1.0.")

    def to_dict(self):
        return dict(indices=list(self.indices), fqn=self.fqn, skip_attention=self.skip_attention,
                    skip_attention_scores=self.skip_attention_scores, skip_ff=self.skip_ff, dropout=self.dropout)

    @staticmethod
    def from_dict(data):
        return LayerSkipConfig(**data)


def _apply(fn_name, module, config):
    c, keep = config._c(module)
    hooked = ctypes.c_int64()
    check(getattr(lib, fn_name)(module._handle, ctypes.byref(c), ctypes.byref(hooked)))
    module._cache_keepalive = getattr(module, "_cache_keepalive", []) + [(c, keep)]
    return hooked.value


def apply_first_block_cache(module, config):
    return _apply("da_model_apply_first_block_cache", module, config)


def apply_faster_cache(module, config):
    return _apply("da_model_apply_faster_cache", module, config)


def apply_taylorseer_cache(module, config):
    return _apply("da_model_apply_taylorseer_cache", module, config)


def apply_mag_cache(module, config):
    return _apply("da_model_apply_mag_cache", module, config)


def apply_teacache(module, config):
    return _apply("da_model_apply_teacache", module, config)


def apply_layer_skip(module, config, name=None):
    """`apply_layer_skip(module, config)`; `config.fqn` is written back when it was "auto"."""
    if config.skip_attention and config.skip_attention_scores:
        raise ValueError("Cannot set both `skip_attention` and `skip_attention_scores` to True. Please choose one.")
    c = LayerSkipCConfig()
    check(lib.da_layer_skip_config_init(ctypes.byref(c), ctypes.sizeof(c)))
    idx = (ctypes.c_int64 * max(len(config.indices), 1))(*[int(i) for i in config.indices])
    c.indices, c.num_indices = ctypes.cast(idx, ctypes.POINTER(ctypes.c_int64)), len(config.indices)
    c.fqn = config.fqn.encode()
    c.skip_attention, c.skip_attention_scores = int(bool(config.skip_attention)), int(bool(config.skip_attention_scores))
    c.skip_ff, c.dropout = int(bool(config.skip_ff)), float(config.dropout)
    c.name = None if name is None else name.encode()
    hooked = ctypes.c_int64()
    check(lib.da_model_apply_layer_skip(module._handle, ctypes.byref(c), ctypes.byref(hooked)))
    if config.fqn == "auto":
        config.fqn = module._auto_block_list()
    return hooked.value


def c_config_for_enable(module, config):
    """(kind, struct, keepalive) for `enable_cache`."""
    name = type(config).__name__
    if name not in KINDS:
        raise ValueError(f"Cache config {type(config)} is not supported.")
    if name == "PyramidAttentionBroadcastConfig":
        require_timestep_callback(config)
        c, keep = pab_c_config(config)
    else:
        c, keep = config._c(module)
    return KINDS[name], c, keep
