"""ctypes declarations of include/diffattn.h and the library loader.

The structs mirror the header field for field; `check_layouts` compares each one's size with the
library's (`da_struct_size`), so a header/binding drift fails at import, not later. The sibling
modules _hook_lib, _cache_lib and _model_lib declare the rest of the header the same way.
"""

import ctypes
import os
from ctypes import (POINTER, Structure, c_char_p, c_double, c_int, c_int32, c_int64, c_size_t,
                    c_uint8, c_uint16, c_uint32, c_uint64, c_void_p)

MAX_NDIM = 8
MAX_OUTPUTS = 4


class DLDevice(Structure):
    _fields_ = [("device_type", c_int), ("device_id", c_int)]


class DLDataType(Structure):
    _fields_ = [("code", c_uint8), ("bits", c_uint8), ("lanes", c_uint16)]


class DLTensor(Structure):
    _fields_ = [("data", c_void_p), ("device", DLDevice), ("ndim", c_int), ("dtype", DLDataType),
                ("shape", POINTER(c_int64)), ("strides", POINTER(c_int64)), ("byte_offset", c_uint64)]


class DLManagedTensor(Structure):
    pass


DLManagedTensor._fields_ = [("dl_tensor", DLTensor), ("manager_ctx", c_void_p),
                            ("deleter", ctypes.CFUNCTYPE(None, POINTER(DLManagedTensor)))]


class AttentionConfig(Structure):
    _fields_ = [
        ("struct_size", c_uint32), ("processor", c_int32),
        ("query_dim", c_int64), ("cross_attention_dim", c_int64), ("heads", c_int64), ("kv_heads", c_int64),
        ("dim_head", c_int64), ("cross_attention_norm_num_groups", c_int64), ("added_kv_proj_dim", c_int64),
        ("norm_num_groups", c_int64), ("spatial_norm_dim", c_int64), ("out_dim", c_int64),
        ("out_context_dim", c_int64),
        ("dropout", c_double), ("eps", c_double), ("rescale_output_factor", c_double),
        ("bias", c_int32), ("upcast_attention", c_int32), ("upcast_softmax", c_int32),
        ("cross_attention_norm", c_int32), ("qk_norm", c_int32), ("added_proj_bias", c_int32),
        ("out_bias", c_int32), ("scale_qk", c_int32), ("only_cross_attention", c_int32),
        ("residual_connection", c_int32), ("from_deprecated_attn_block", c_int32),
        ("context_pre_only", c_int32), ("pre_only", c_int32), ("elementwise_affine", c_int32),
        ("is_causal", c_int32),
        # appended for the DiT module classes
        ("module_class", c_int32), ("out_channels", c_int64), ("mult", c_double), ("norm_type", c_int32),
        ("num_kernel_sizes", c_int32), ("kernel_sizes", c_int64 * 16),
    ]


class AttentionInfo(Structure):
    _fields_ = [
        ("struct_size", c_uint32), ("is_cross_attention", c_int32), ("heads", c_int64), ("inner_dim", c_int64),
        ("inner_kv_dim", c_int64), ("sliceable_head_dim", c_int64), ("cross_attention_dim", c_int64),
        ("out_dim", c_int64), ("out_context_dim", c_int64), ("scale", c_double),
        ("fused_projections", c_int32), ("processor", c_int32),
    ]


class ProcessorConfig(Structure):
    _fields_ = [("struct_size", c_uint32), ("kind", c_int32), ("slice_size", c_int64), ("hidden_size", c_int64),
                ("cross_attention_dim", c_int64), ("train_kv", c_int32), ("train_q_out", c_int32),
                ("out_bias", c_int32), ("num_ip_adapters", c_int32), ("dropout", c_double),
                ("num_tokens", POINTER(c_int64)), ("scale_counts", POINTER(c_int32)), ("scales", POINTER(c_double)),
                ("ip_hidden_states_dim", c_int64), ("head_dim", c_int64), ("timesteps_emb_dim", c_int64)]


class WeightInfo(Structure):
    _fields_ = [("struct_size", c_uint32), ("ndim", c_int32), ("name", c_char_p), ("shape", c_int64 * MAX_NDIM)]


class DiTArgs(Structure):
    _fields_ = [("struct_size", c_uint32), ("rotary_cos", POINTER(DLTensor)), ("rotary_sin", POINTER(DLTensor)),
                ("allegro_cos", POINTER(DLTensor) * 3), ("allegro_sin", POINTER(DLTensor) * 3),
                ("allegro_positions", POINTER(DLTensor) * 3), ("query_rotary_emb", POINTER(DLTensor)),
                ("key_rotary_emb", POINTER(DLTensor)), ("base_sequence_length", c_int64)]


class ForwardArgs(Structure):
    _fields_ = [("struct_size", c_uint32), ("hidden_states", POINTER(DLTensor)),
                ("encoder_hidden_states", POINTER(DLTensor)), ("attention_mask", POINTER(DLTensor)),
                ("temb", POINTER(DLTensor)), ("ip_hidden_states_given", c_int32), ("num_ip_hidden_states", c_int32),
                ("ip_hidden_states", POINTER(DLTensor)), ("num_ip_adapter_masks", c_int32),
                ("ip_adapter_masks", POINTER(POINTER(DLTensor))), ("dit", POINTER(DiTArgs))]


class SpatialNormWeights(Structure):
    _fields_ = [("struct_size", c_uint32)] + [(n, POINTER(DLTensor)) for n in (
        "norm_layer_weight", "norm_layer_bias", "conv_y_weight", "conv_y_bias", "conv_b_weight", "conv_b_bias")]


class OutputShapes(Structure):
    _fields_ = [("struct_size", c_uint32), ("count", c_int32), ("ndim", c_int32 * MAX_OUTPUTS),
                ("shape", (c_int64 * MAX_NDIM) * MAX_OUTPUTS)]


class SDPAOptions(Structure):
    _fields_ = [("struct_size", c_uint32), ("is_causal", c_int32), ("dropout_p", c_double),
                ("has_scale", c_int32), ("enable_gqa", c_int32), ("scale", c_double), ("algorithm", c_int32),
                ("precision", c_int32)]


_ATTN = c_void_p
_STATUS = c_int32
_PTENSOR = POINTER(DLTensor)
_PPMANAGED = POINTER(POINTER(DLManagedTensor))

_SIGNATURES = {
    "da_version": (c_char_p, []),
    "da_version_number": (c_uint32, []),
    "da_abi_version": (c_uint32, []),
    "da_check_abi": (_STATUS, [c_uint32]),
    "da_last_error": (c_char_p, []),
    "da_status_name": (c_char_p, [_STATUS]),
    "da_set_num_threads": (_STATUS, [c_int32]),
    "da_get_num_threads": (c_int32, []),
    "da_tensor_free": (None, [POINTER(DLManagedTensor)]),
    "da_cpu_features": (c_char_p, []),
    "da_kernel_paths": (c_char_p, []),
    "da_cpu_has_bf16_instructions": (c_int32, []),
    "da_attention_enable_layerwise_casting": (_STATUS, [_ATTN, c_int32, POINTER(c_char_p), c_size_t]),
    "da_kernel_path": (c_char_p, []),
    "da_set_kernel_path": (_STATUS, [c_char_p]),
    "da_processor_name": (c_char_p, [c_int32]),
    "da_processor_kind_from_name": (_STATUS, [c_char_p, POINTER(c_int32)]),
    "da_processor_is_implemented": (c_int32, [c_int32]),
    "da_processor_kind_count": (c_int64, []),
    "da_processor_kind_at": (_STATUS, [c_int64, POINTER(c_int32)]),
    "da_processor_family": (_STATUS, [c_int32, POINTER(c_int32)]),
    "da_struct_size": (c_size_t, [c_char_p]),
    "da_processor_config_init": (_STATUS, [POINTER(ProcessorConfig), c_size_t, c_int32]),
    "da_attention_config_init": (_STATUS, [POINTER(AttentionConfig), c_size_t]),
    "da_attention_create": (_STATUS, [POINTER(AttentionConfig), POINTER(_ATTN)]),
    "da_attention_destroy": (None, [_ATTN]),
    "da_attention_get_config": (_STATUS, [_ATTN, POINTER(AttentionConfig)]),
    "da_attention_get_info": (_STATUS, [_ATTN, POINTER(AttentionInfo)]),
    "da_attention_set_processor": (_STATUS, [_ATTN, POINTER(ProcessorConfig)]),
    "da_attention_get_processor": (_STATUS, [_ATTN, POINTER(ProcessorConfig)]),
    "da_attention_update_processor": (_STATUS, [_ATTN, POINTER(ProcessorConfig)]),
    "da_attention_get_ip_adapter_scale": (_STATUS, [_ATTN, POINTER(c_double), c_int64, POINTER(c_int32), c_int32,
                                                     POINTER(c_int64)]),
    "da_attention_set_attention_slice": (_STATUS, [_ATTN, c_int64]),
    "da_attention_set_use_memory_efficient_attention_xformers": (_STATUS, [_ATTN, c_int32]),
    "da_attention_set_use_npu_flash_attention": (_STATUS, [_ATTN, c_int32]),
    "da_attention_set_use_xla_flash_attention": (_STATUS, [_ATTN, c_int32, c_int32]),
    "da_attention_fuse_projections": (_STATUS, [_ATTN, c_int32]),
    "da_attention_unfuse_projections": (_STATUS, [_ATTN]),
    "da_spatial_norm": (_STATUS, [_PTENSOR, _PTENSOR, POINTER(SpatialNormWeights), _PPMANAGED]),
    "da_attention_weight_count": (_STATUS, [_ATTN, POINTER(c_int64)]),
    "da_attention_weight_info": (_STATUS, [_ATTN, c_int64, POINTER(WeightInfo)]),
    "da_attention_set_weight": (_STATUS, [_ATTN, c_char_p, _PTENSOR]),
    "da_attention_borrow_weight": (_STATUS, [_ATTN, c_char_p, _PTENSOR]),
    "da_attention_get_weight": (_STATUS, [_ATTN, c_char_p, _PTENSOR]),
    "da_forward_args_init": (_STATUS, [POINTER(ForwardArgs), c_size_t]),
    "da_attention_output_shapes": (_STATUS, [_ATTN, POINTER(ForwardArgs), POINTER(OutputShapes)]),
    "da_attention_forward": (_STATUS, [_ATTN, POINTER(ForwardArgs), _PTENSOR, c_int32]),
    "da_attention_forward_alloc": (_STATUS, [_ATTN, POINTER(ForwardArgs), _PPMANAGED, c_int32, POINTER(c_int32)]),
    "da_attention_prepare_attention_mask": (_STATUS, [_ATTN, _PTENSOR, c_int64, c_int64, c_int32, _PPMANAGED]),
    "da_attention_head_to_batch_dim": (_STATUS, [_ATTN, _PTENSOR, c_int32, _PPMANAGED]),
    "da_attention_batch_to_head_dim": (_STATUS, [_ATTN, _PTENSOR, _PPMANAGED]),
    "da_attention_get_attention_scores": (_STATUS, [_ATTN, _PTENSOR, _PTENSOR, _PTENSOR, _PPMANAGED]),
    "da_attention_norm_encoder_hidden_states": (_STATUS, [_ATTN, _PTENSOR, _PPMANAGED]),
    "da_dit_args_init": (_STATUS, [POINTER(DiTArgs), c_size_t]),
    "da_rotary_tables": (_STATUS, [POINTER(ctypes.c_double), c_int64, c_int32, POINTER(c_int64), c_double, c_double,
                                   c_double, c_int32, c_int32, _PPMANAGED, _PPMANAGED]),
    "da_sdpa_options_init": (_STATUS, [POINTER(SDPAOptions), c_size_t]),
    "da_scaled_dot_product_attention": (_STATUS, [_PTENSOR, _PTENSOR, _PTENSOR, _PTENSOR, POINTER(SDPAOptions), _PTENSOR]),
    "da_sdpa_with_lse": (_STATUS, [_PTENSOR, _PTENSOR, _PTENSOR, _PTENSOR, POINTER(SDPAOptions), _PTENSOR, _PTENSOR]),
    "da_merge_attention_partials": (_STATUS, [_PTENSOR, _PTENSOR, _PTENSOR, _PTENSOR]),
}


def _candidates():
    env = os.environ.get("DIFFATTN_LIBRARY")
    if env:
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    bundled = os.path.join(here, "_libs")
    if os.path.isdir(bundled):   # the wheel (packaging/build-wheel.py)
        _preload(bundled)
        yield os.path.join(bundled, "libdiffattn.so")
        return
    repo = os.path.dirname(os.path.dirname(os.path.dirname(here)))
    yield os.path.join(repo, ".build", "release", "libdiffattn.so")
    yield "libdiffattn.so.0"


def declare(lib, signatures):
    """Sets restype/argtypes of each function in `signatures` ({name: (restype, argtypes)})."""
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype = restype
        fn.argtypes = argtypes


def _preload(directory):
    """Loads the wheel's bundled OpenBLAS and its runtime first, dependencies before dependants, so
    that the loader finds their sonames already resolved (libopenblas has no RUNPATH of its own)."""
    order = os.path.join(directory, "preload.txt")
    if os.path.exists(order):
        for name in open(order).read().split():
            ctypes.CDLL(os.path.join(directory, name), mode=ctypes.RTLD_GLOBAL)


def _load():
    errors = []
    for path in _candidates():
        if os.path.sep in path and not os.path.exists(path):
            errors.append(f"{path}: not found")
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append(f"{path}: {e}")
            continue
        try:
            declare(lib, _SIGNATURES)
        except AttributeError as e:  # an older library: a function of this binding is missing
            errors.append(f"{path}: {e}")
            continue
        return lib, path
    raise ImportError("libdiffattn could not be loaded (set DIFFATTN_LIBRARY to its path, or build it with "
                      "`swift build -c release`, or install the package): " + "; ".join(errors))


lib, library_path = _load()

if lib.da_check_abi(0) != 0:
    raise ImportError(lib.da_last_error().decode())


def check_layouts(structs):
    """Raises ImportError unless each {C name: ctypes Structure} has the library's size."""
    for c_name, struct in structs.items():
        expected = lib.da_struct_size(c_name.encode())
        if expected != ctypes.sizeof(struct):
            raise ImportError(f"{struct.__name__} mirrors {c_name}, but its layout ({ctypes.sizeof(struct)} bytes) does not "
                              f"match the library's ({expected} bytes): {library_path} and the diffattn bindings "
                              f"come from different versions")


def defaults(struct, init, *args):
    """A `struct` as the library's `init` function fills it: the C API's defaults, read once."""
    value = struct()
    if init(ctypes.byref(value), ctypes.sizeof(value), *args) != 0:
        raise ImportError(f"{init.__name__}: {lib.da_last_error().decode()}")
    return value


check_layouts({"DLDevice": DLDevice, "DLDataType": DLDataType, "DLTensor": DLTensor, "DLManagedTensor": DLManagedTensor,
               "da_attention_config": AttentionConfig, "da_attention_info": AttentionInfo,
               "da_processor_config": ProcessorConfig, "da_weight_info": WeightInfo, "da_dit_args": DiTArgs,
               "da_forward_args": ForwardArgs, "da_spatial_norm_weights": SpatialNormWeights,
               "da_output_shapes": OutputShapes, "da_sdpa_options": SDPAOptions})
