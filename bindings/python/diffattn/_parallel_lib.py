"""ctypes declarations of the context-parallelism section of include/diffattn.h."""

import ctypes
from ctypes import POINTER, Structure, c_double, c_int32, c_int64, c_size_t, c_uint32, c_void_p

from ._lib import DLTensor, lib

_S = c_int32
_H = c_void_p
_T = POINTER(DLTensor)


class ContextParallelCConfig(Structure):
    _fields_ = [("struct_size", c_uint32), ("ring_degree", c_int32), ("ulysses_degree", c_int32),
                ("has_scale", c_int32), ("scale", c_double)]


_SIGNATURES = {
    "da_communicator_create_local": (_S, [c_int32, POINTER(_H)]),
    "da_communicator_create_local_with_link": (_S, [c_int32, c_double, c_double, POINTER(_H)]),
    "da_communicator_create_mpi": (_S, [c_int64, POINTER(_H)]),
    "da_communicator_destroy": (None, [_H]),
    "da_communicator_rank": (_S, [_H, POINTER(c_int32), POINTER(c_int32)]),
    "da_communicator_set_timeout": (_S, [_H, c_double]),
    "da_communicator_counters": (_S, [_H, POINTER(c_int64), POINTER(c_int64), POINTER(c_double)]),
    "da_communicator_reset_counters": (_S, [_H]),
    "da_context_parallel_config_init": (_S, [POINTER(ContextParallelCConfig), c_size_t]),
    "da_context_parallel_attention": (_S, [_H, POINTER(ContextParallelCConfig), _T, _T, _T, _T, _T]),
    "da_context_parallel_shard_range": (_S, [c_int64, c_int32, c_int32, POINTER(c_int64), POINTER(c_int64)]),
    "da_context_parallel_gather": (_S, [_H, _T, c_int32, _T]),
}

for _name, (_restype, _argtypes) in _SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype = _restype
    _fn.argtypes = _argtypes

_probe = ContextParallelCConfig()
if lib.da_context_parallel_config_init(ctypes.byref(_probe), ctypes.sizeof(_probe)) != 0 \
        or _probe.struct_size != ctypes.sizeof(_probe):
    raise ImportError("ContextParallelCConfig: the binding's layout does not match the library's")
