"""ctypes declarations of the caches section of include/diffattn.h."""

import ctypes
from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_int32, c_int64, c_uint32, c_void_p

from ._hook_lib import PABConfig, TimestepFn
from ._lib import DLTensor, check_layouts, declare, lib

_S = c_int32
_H = c_void_p
WeightFn = CFUNCTYPE(_S, c_void_p, c_char_p, POINTER(c_double))
FrequencyWeightFn = CFUNCTYPE(c_int32, c_void_p, POINTER(c_double))


class BlockIO(Structure):
    _fields_ = [("struct_size", c_uint32), ("hidden_states", POINTER(DLTensor)),
                ("encoder_hidden_states", POINTER(DLTensor)), ("modulated_input", POINTER(DLTensor)),
                ("outputs", POINTER(DLTensor)), ("num_outputs", c_int32)]


class FBCConfig(Structure):
    _fields_ = [("struct_size", c_uint32), ("threshold", c_double)]


class FasterCacheCConfig(Structure):
    _fields_ = [("struct_size", c_uint32), ("spatial_attention_block_skip_range", c_int64),
                ("temporal_attention_block_skip_range", c_int64),
                ("spatial_attention_timestep_skip_range", c_double * 2),
                ("temporal_attention_timestep_skip_range", c_double * 2),
                ("low_frequency_weight_update_timestep_range", c_double * 2),
                ("high_frequency_weight_update_timestep_range", c_double * 2),
                ("alpha_low_frequency", c_double), ("alpha_high_frequency", c_double),
                ("unconditional_batch_skip_range", c_int64),
                ("unconditional_batch_timestep_skip_range", c_double * 2),
                ("spatial_attention_block_identifiers", POINTER(c_char_p)),
                ("num_spatial_attention_block_identifiers", c_int64),
                ("temporal_attention_block_identifiers", POINTER(c_char_p)),
                ("num_temporal_attention_block_identifiers", c_int64),
                ("tensor_format", c_char_p), ("is_guidance_distilled", c_int32),
                ("current_timestep_callback", TimestepFn), ("attention_weight_callback", WeightFn),
                ("callback_user_data", c_void_p), ("low_frequency_weight_callback", FrequencyWeightFn),
                ("high_frequency_weight_callback", FrequencyWeightFn)]


class TaylorSeerCConfig(Structure):
    _fields_ = [("struct_size", c_uint32), ("cache_interval", c_int64), ("disable_cache_before_step", c_int64),
                ("disable_cache_after_step", c_int64), ("max_order", c_int64), ("taylor_factors_float32", c_int32),
                ("skip_predict_identifiers", POINTER(c_char_p)), ("num_skip_predict_identifiers", c_int64),
                ("cache_identifiers", POINTER(c_char_p)), ("num_cache_identifiers", c_int64),
                ("use_lite_mode", c_int32)]


class MagCacheCConfig(Structure):
    _fields_ = [("struct_size", c_uint32), ("threshold", c_double), ("max_skip_steps", c_int64),
                ("retention_ratio", c_double), ("num_inference_steps", c_int64), ("mag_ratios", POINTER(c_double)),
                ("num_mag_ratios", c_int64), ("calibrate", c_int32)]


class TeaCacheCConfig(Structure):
    _fields_ = [("struct_size", c_uint32), ("rel_l1_thresh", c_double), ("coefficients", POINTER(c_double)),
                ("num_coefficients", c_int64), ("num_inference_steps", c_int64)]


class LayerSkipCConfig(Structure):
    _fields_ = [("struct_size", c_uint32), ("indices", POINTER(c_int64)), ("num_indices", c_int64),
                ("fqn", c_char_p), ("skip_attention", c_int32), ("skip_attention_scores", c_int32),
                ("skip_ff", c_int32), ("dropout", c_double), ("name", c_char_p)]


_SIGNATURES = {
    "da_block_io_init": (_S, [POINTER(BlockIO), ctypes.c_size_t]),
    "da_model_module_begin": (_S, [_H, c_char_p, POINTER(BlockIO), POINTER(c_int32)]),
    "da_model_module_end": (_S, [_H, c_char_p, POINTER(BlockIO)]),
    "da_model_transformer_block_count": (_S, [_H, POINTER(c_int64)]),
    "da_model_transformer_block_path": (_S, [_H, c_int64, POINTER(c_char_p)]),
    "da_model_set_cache_context": (_S, [_H, c_char_p]),
    "da_first_block_cache_config_init": (_S, [POINTER(FBCConfig), ctypes.c_size_t]),
    "da_model_apply_first_block_cache": (_S, [_H, POINTER(FBCConfig), POINTER(c_int64)]),
    "da_faster_cache_config_init": (_S, [POINTER(FasterCacheCConfig), ctypes.c_size_t]),
    "da_model_apply_faster_cache": (_S, [_H, POINTER(FasterCacheCConfig), POINTER(c_int64)]),
    "da_model_faster_cache_skips_unconditional": (_S, [_H, POINTER(c_int32)]),
    "da_model_faster_cache_denoiser_output": (_S, [_H, POINTER(DLTensor), POINTER(DLTensor)]),
    "da_taylorseer_cache_config_init": (_S, [POINTER(TaylorSeerCConfig), ctypes.c_size_t]),
    "da_model_apply_taylorseer_cache": (_S, [_H, POINTER(TaylorSeerCConfig), POINTER(c_int64)]),
    "da_mag_cache_config_init": (_S, [POINTER(MagCacheCConfig), ctypes.c_size_t]),
    "da_model_apply_mag_cache": (_S, [_H, POINTER(MagCacheCConfig), POINTER(c_int64)]),
    "da_model_mag_cache_calibration": (_S, [_H, POINTER(c_double), c_int64, POINTER(c_int64)]),
    "da_teacache_config_init": (_S, [POINTER(TeaCacheCConfig), ctypes.c_size_t]),
    "da_model_apply_teacache": (_S, [_H, POINTER(TeaCacheCConfig), POINTER(c_int64)]),
    "da_layer_skip_config_init": (_S, [POINTER(LayerSkipCConfig), ctypes.c_size_t]),
    "da_model_apply_layer_skip": (_S, [_H, POINTER(LayerSkipCConfig), POINTER(c_int64)]),
    "da_model_enable_cache": (_S, [_H, c_int32, c_void_p]),
    "da_model_disable_cache": (_S, [_H]),
    "da_model_enabled_cache": (_S, [_H, POINTER(c_int32)]),
}

declare(lib, _SIGNATURES)
check_layouts({"da_block_io": BlockIO, "da_first_block_cache_config": FBCConfig,
               "da_faster_cache_config": FasterCacheCConfig, "da_taylorseer_cache_config": TaylorSeerCConfig,
               "da_mag_cache_config": MagCacheCConfig, "da_teacache_config": TeaCacheCConfig,
               "da_layer_skip_config": LayerSkipCConfig})

KINDS = {"FasterCacheConfig": 1, "FirstBlockCacheConfig": 2, "MagCacheConfig": 3, "PyramidAttentionBroadcastConfig": 4,
         "TaylorSeerCacheConfig": 5, "TeaCacheConfig": 6, "SeaCacheConfig": 7,
         "TextKVCacheConfig": 8}


# --- issue 16: cache contexts with fields, SeaCache, SEG, text K/V ----------------------------------


class CacheContextC(Structure):
    _fields_ = [("struct_size", c_uint32), ("name", c_char_p), ("step_index", c_int64), ("num_inference_steps", c_int64),
                ("timestep", c_double), ("sigma", c_double)]


class SeaCacheC(Structure):
    _fields_ = [("struct_size", c_uint32), ("threshold", c_double), ("residual_order", c_int32),
                ("retention_steps", c_int32), ("cache_end_steps", c_int32), ("max_consecutive_cached", c_int32),
                ("power_exp", c_double)]


class TextKVC(Structure):
    _fields_ = [("struct_size", c_uint32), ("reserved", c_int32)]


class SEGC(Structure):
    _fields_ = [("struct_size", c_uint32), ("indices", POINTER(c_int64)), ("num_indices", c_int64), ("fqn", c_char_p),
                ("query_proj_identifiers", POINTER(c_char_p)), ("num_query_proj_identifiers", c_int64),
                ("mapping", c_int32)]


declare(lib, {
    "da_cache_context_init": (_S, [POINTER(CacheContextC), ctypes.c_size_t]),
    "da_model_enter_cache_context": (_S, [_H, POINTER(CacheContextC)]),
    "da_sea_cache_config_init": (_S, [POINTER(SeaCacheC), ctypes.c_size_t]),
    "da_model_apply_sea_cache": (_S, [_H, POINTER(SeaCacheC), POINTER(c_int64)]),
    "da_model_set_raw_vision": (_S, [_H, POINTER(DLTensor), c_int64]),
    "da_sea_filter": (_S, [POINTER(DLTensor), c_double, c_double, POINTER(DLTensor)]),
    "da_smoothed_energy_guidance_config_init": (_S, [POINTER(SEGC), ctypes.c_size_t]),
    "da_model_apply_smoothed_energy_guidance": (_S, [_H, POINTER(SEGC), c_double, POINTER(c_int64)]),
    "da_model_remove_smoothed_energy_guidance": (_S, [_H]),
    "da_seg_blur_query": (_S, [POINTER(DLTensor), c_double, c_int32, POINTER(DLTensor)]),
    "da_text_kv_cache_config_init": (_S, [POINTER(TextKVC), ctypes.c_size_t]),
    "da_model_apply_text_kv_cache": (_S, [_H, POINTER(TextKVC), POINTER(c_int64)]),
    "da_model_text_kv_cache_counts": (_S, [_H, POINTER(c_int64), POINTER(c_int64)]),
})
check_layouts({"da_cache_context": CacheContextC, "da_sea_cache_config": SeaCacheC,
               "da_smoothed_energy_guidance_config": SEGC, "da_text_kv_cache_config": TextKVC})
