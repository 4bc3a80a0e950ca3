"""ctypes declarations of the model and pipeline section of include/diffattn.h."""

from ctypes import POINTER, Structure, c_char_p, c_int32, c_int64, c_size_t, c_uint32, c_void_p

from ._lib import DLTensor, ProcessorConfig, WeightInfo, check_layouts, declare, lib

SLICE_NONE, SLICE_AUTO, SLICE_MAX, SLICE_SIZE, SLICE_LIST = 0, 1, 2, 3, 4
MODULE_CONTAINER, MODULE_ATTENTION, MODULE_WEIGHTS = 0, 1, 2
LOAD_STRICT, LOAD_SKIP_OTHERS, LOAD_ALLOW_RANDOM_INIT = 1, 2, 4
KEYS_MISSING, KEYS_UNEXPECTED, KEYS_UNLOADED = 0, 1, 2


class LoadReport(Structure):
    _fields_ = [("struct_size", c_uint32), ("attention_loaded", c_int64), ("attention_missing", c_int64),
                ("unexpected", c_int64), ("weights_kept", c_int64), ("skipped", c_int64)]


_H = c_void_p
_S = c_int32
_PSTR = POINTER(c_char_p)

_SIGNATURES = {
    "da_model_create": (_S, [c_char_p, c_char_p, POINTER(_H)]),
    "da_model_load_pretrained": (_S, [c_char_p, c_char_p, c_int32, POINTER(_H), c_void_p]),
    "da_model_load_key_count": (_S, [_H, c_int32, POINTER(c_int64)]),
    "da_model_load_key": (_S, [_H, c_int32, c_int64, _PSTR]),
    "da_model_destroy": (None, [_H]),
    "da_model_enable_layerwise_casting": (_S, [_H, c_int32, POINTER(c_char_p), c_size_t]),
    "da_model_class_name": (_S, [_H, _PSTR]),
    "da_model_attn_processor_count": (_S, [_H, POINTER(c_int64)]),
    "da_model_attn_processor_name": (_S, [_H, c_int64, _PSTR]),
    "da_model_attn_processor_get": (_S, [_H, c_char_p, POINTER(ProcessorConfig)]),
    "da_model_set_attn_processor": (_S, [_H, POINTER(ProcessorConfig)]),
    "da_model_set_attn_processors": (_S, [_H, POINTER(c_char_p), POINTER(ProcessorConfig), c_int64]),
    "da_model_set_default_attn_processor": (_S, [_H]),
    "da_model_fuse_qkv_projections": (_S, [_H]),
    "da_model_unfuse_qkv_projections": (_S, [_H]),
    "da_model_set_use_memory_efficient_attention_xformers": (_S, [_H, c_int32]),
    "da_model_set_attention_slice": (_S, [_H, c_int32, POINTER(c_int64), c_int64]),
    "da_model_get_attention": (_S, [_H, c_char_p, POINTER(_H)]),
    "da_model_module_count": (_S, [_H, c_int32, POINTER(c_int64)]),
    "da_model_module_path": (_S, [_H, c_int32, c_int64, _PSTR]),
    "da_model_module_class": (_S, [_H, c_char_p, _PSTR]),
    "da_model_load_safetensors": (_S, [_H, c_char_p, c_int32, POINTER(LoadReport)]),
    "da_model_load_state_dict": (_S, [_H, POINTER(c_char_p), POINTER(DLTensor), c_int64, c_int32, POINTER(LoadReport)]),
    "da_model_weight_count": (_S, [_H, POINTER(c_int64)]),
    "da_model_weight_info": (_S, [_H, c_int64, POINTER(WeightInfo)]),
    "da_model_get_weight": (_S, [_H, c_char_p, POINTER(DLTensor)]),
    "da_pipeline_create": (_S, [POINTER(_H)]),
    "da_pipeline_destroy": (None, [_H]),
    "da_pipeline_add": (_S, [_H, c_char_p, _H]),
    "da_pipeline_fuse_qkv_projections": (_S, [_H, c_int32, c_int32]),
    "da_pipeline_unfuse_qkv_projections": (_S, [_H, c_int32, c_int32]),
    "da_pipeline_set_attention_slicing": (_S, [_H, c_int32, POINTER(c_int64), c_int64]),
    "da_pipeline_set_use_memory_efficient_attention_xformers": (_S, [_H, c_int32]),
}

declare(lib, _SIGNATURES)
check_layouts({"da_load_report": LoadReport})


def slice_args(slice_size):
    """diffusers' slice_size argument → (mode, sizes array or None, count)."""
    if slice_size is None:
        return SLICE_NONE, None, 0
    if isinstance(slice_size, str):
        if slice_size == "auto":
            return SLICE_AUTO, None, 0
        if slice_size == "max":
            return SLICE_MAX, None, 0
        raise ValueError(f"slice_size must be 'auto', 'max', an int, a list or None, got {slice_size!r}")
    if isinstance(slice_size, (list, tuple)):
        values = [0 if s is None else int(s) for s in slice_size]
        if not values:
            return SLICE_LIST, (c_int64 * 1)(0), 0
        return SLICE_LIST, (c_int64 * len(values))(*values), len(values)
    return SLICE_SIZE, (c_int64 * 1)(int(slice_size)), 1
