"""ctypes declarations of the hooks section of include/diffattn.h."""

import ctypes
from ctypes import CFUNCTYPE, POINTER, Structure, c_char_p, c_double, c_int32, c_int64, c_uint32, c_void_p

from ._lib import DLTensor, check_layouts, declare, lib

_S = c_int32
PathFn = CFUNCTYPE(_S, c_void_p, c_char_p)
PreFn = CFUNCTYPE(_S, c_void_p, c_char_p, POINTER(DLTensor))
PostFn = CFUNCTYPE(_S, c_void_p, c_char_p, POINTER(DLTensor), c_int32)
DestroyFn = CFUNCTYPE(None, c_void_p)
TimestepFn = CFUNCTYPE(_S, c_void_p, POINTER(c_double))
ValuesFn = CFUNCTYPE(_S, c_void_p, c_char_p, c_void_p)
OriginalFn = CFUNCTYPE(_S, c_void_p, c_char_p, c_void_p, c_void_p)
NewForwardFn = CFUNCTYPE(_S, c_void_p, c_char_p, c_void_p, c_void_p, OriginalFn, c_void_p)


class HookCallbacks(Structure):
    _fields_ = [("struct_size", c_uint32), ("is_stateful", c_int32), ("user_data", c_void_p),
                ("initialize_hook", PathFn), ("deinitialize_hook", PathFn), ("pre_forward", PreFn),
                ("post_forward", PostFn), ("reset_state", PathFn), ("destroy", DestroyFn),
                ("pre_forward_args", ValuesFn), ("new_forward", NewForwardFn), ("post_forward_args", ValuesFn)]


class GroupOffloadConfig(Structure):
    _fields_ = [("struct_size", c_uint32), ("offload_type", c_int32), ("num_blocks_per_group", c_int64),
                ("non_blocking", c_int32), ("use_stream", c_int32), ("record_stream", c_int32),
                ("low_cpu_mem_usage", c_int32), ("offload_to_disk_path", c_char_p),
                ("block_modules", POINTER(c_char_p)), ("num_block_modules", c_int64),
                ("exclude_kwargs", POINTER(c_char_p)), ("num_exclude_kwargs", c_int64)]


class GroupOffloadStats(Structure):
    _fields_ = [("struct_size", c_uint32), ("order_learned", c_int32), ("groups", c_int64),
                ("resident_groups", c_int64), ("resident_bytes", c_int64), ("peak_resident_bytes", c_int64),
                ("total_bytes", c_int64), ("onloads", c_int64), ("prefetched", c_int64)]


class PABConfig(Structure):
    _fields_ = [("struct_size", c_uint32), ("spatial_attention_block_skip_range", c_int64),
                ("temporal_attention_block_skip_range", c_int64), ("cross_attention_block_skip_range", c_int64),
                ("spatial_attention_timestep_skip_range", c_double * 2),
                ("temporal_attention_timestep_skip_range", c_double * 2),
                ("cross_attention_timestep_skip_range", c_double * 2),
                ("spatial_attention_block_identifiers", POINTER(c_char_p)),
                ("num_spatial_attention_block_identifiers", c_int64),
                ("temporal_attention_block_identifiers", POINTER(c_char_p)),
                ("num_temporal_attention_block_identifiers", c_int64),
                ("cross_attention_block_identifiers", POINTER(c_char_p)),
                ("num_cross_attention_block_identifiers", c_int64),
                ("current_timestep_callback", TimestepFn), ("callback_user_data", c_void_p)]


_H = c_void_p
_SIGNATURES = {
    "da_hook_callbacks_init": (_S, [POINTER(HookCallbacks), ctypes.c_size_t]),
    "da_hook_create": (_S, [POINTER(HookCallbacks), POINTER(_H)]),
    "da_hook_destroy": (None, [_H]),
    "da_model_hook_registry": (_S, [_H, c_char_p, POINTER(_H)]),
    "da_attention_hook_registry": (_S, [_H, POINTER(_H)]),
    "da_hook_registry_register": (_S, [_H, c_char_p, _H]),
    "da_hook_registry_remove": (_S, [_H, c_char_p, c_int32]),
    "da_hook_registry_has_hook": (_S, [_H, c_char_p, POINTER(c_int32)]),
    "da_hook_registry_hook_count": (_S, [_H, POINTER(c_int64)]),
    "da_hook_registry_hook_name": (_S, [_H, c_int64, POINTER(c_char_p)]),
    "da_hook_registry_reset_stateful_hooks": (_S, [_H, c_int32]),
    "da_hook_registry_enter": (_S, [_H]),
    "da_hook_registry_exit": (_S, [_H]),
    "da_model_begin_step": (_S, [_H, c_double]),
    "da_model_end_step": (_S, [_H]),
    "da_group_offload_config_init": (_S, [POINTER(GroupOffloadConfig), ctypes.c_size_t]),
    "da_model_enable_group_offload": (_S, [_H, c_char_p, POINTER(GroupOffloadConfig)]),
    "da_model_disable_group_offload": (_S, [_H]),
    "da_model_group_offload_stats": (_S, [_H, POINTER(GroupOffloadStats)]),
    "da_pab_config_init": (_S, [POINTER(PABConfig), ctypes.c_size_t]),
    "da_model_apply_pyramid_attention_broadcast": (_S, [_H, POINTER(PABConfig), POINTER(c_int64)]),
}

declare(lib, _SIGNATURES)
check_layouts({"da_hook_callbacks": HookCallbacks, "da_group_offload_config": GroupOffloadConfig,
               "da_group_offload_stats": GroupOffloadStats, "da_pab_config": PABConfig})
