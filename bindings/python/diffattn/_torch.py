"""torch.Tensor ↔ DLTensor without copies (docs/diffusers.md "Tensors").

torch is never imported here: a value can only be a torch tensor if the caller already imported
torch, so `sys.modules` tells. Every rule about which tensors the library takes lives here:
CPU only, no autograd while grad mode is on, float32 / bfloat16 / bool. bfloat16 is handed to the
library as kDLBfloat where the entry point reads it (`bf16_supported`), and otherwise widened to
float32 here, in this one place.
"""

import ctypes
import sys

from ._lib import POINTER, DLDataType, DLDevice, DLTensor, c_int64, lib

_KDL_FLOAT, _KDL_BFLOAT = 2, 4
_bf16_probe = {}


class _LazyTorch:
    """`torch`, imported on first attribute access: the diffusers integration's modules name it at
    their top yet import (and `import diffattn` works) without torch installed."""

    def __getattr__(self, name):
        import torch
        return getattr(torch, name)


lazy_torch = _LazyTorch()


def torch_module():
    return sys.modules.get("torch")


def is_tensor(x):
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(x, torch.Tensor)


def any_tensor(*values):
    return any(is_tensor(v) for v in values)


def checked(t, name, allow_bool=False, allow_bf16=False):
    """`t` if the library can read it in place, else a TypeError/ValueError saying what to do.
    bfloat16 comes back as float32 (one copy) unless `allow_bf16`."""
    torch = sys.modules["torch"]
    if t.device.type != "cpu":
        raise TypeError(f"{name} is a {t.device.type} tensor; libdiffattn runs on the CPU: move it with "
                        f"{name}.cpu() (or keep this model on the CPU)")
    if t.requires_grad and torch.is_grad_enabled():
        raise ValueError(f"{name} requires grad and grad mode is on; libdiffattn is inference only: call under "
                         f"torch.no_grad() or torch.inference_mode(), or pass {name}.detach()")
    if t.dtype == torch.float32 or (allow_bool and t.dtype == torch.bool):
        return t
    if t.dtype == torch.bfloat16:
        return t if allow_bf16 else t.float()
    expected = "float32, bfloat16 or bool" if allow_bool else "float32 or bfloat16"
    raise TypeError(f"{name} must be a CPU tensor of dtype {expected}, got {t.dtype} (convert with {name}.float())")


def dl_fields(t):
    """(data pointer, shape, element strides, (code, bits)) of a checked CPU tensor. data_ptr()
    already includes the storage offset, so the DLTensor's byte_offset stays 0."""
    torch = sys.modules["torch"]
    if t.dtype == torch.bool:
        code = (1, 8)
    elif t.dtype == torch.bfloat16:
        code = (_KDL_BFLOAT, 16)
    else:
        code = (_KDL_FLOAT, 32)
    data = t.data_ptr() if t.numel() else None
    return data, tuple(t.shape), tuple(t.stride()), code


def empty(shape, like=None):
    """A float32 CPU tensor for the library to write into."""
    torch = sys.modules["torch"]
    return torch.empty(tuple(shape), dtype=torch.float32)


def result(out, like):
    """The output in the dtype the caller gave (bfloat16 in → bfloat16 out)."""
    return out if out.dtype == like.dtype or like.dtype == sys.modules["torch"].bool else out.to(like.dtype)


def from_library(array):
    """A torch view of a library-allocated numpy result (shares the buffer, keeps it alive)."""
    return sys.modules["torch"].from_numpy(array)


def bf16_supported(entry):
    """Whether `entry` (a ctypes function taking DLTensors) reads kDLBfloat: asked once by a 1×1
    call, so the binding passes bfloat16 through as soon as the library reads it."""
    if entry not in _bf16_probe:
        _bf16_probe[entry] = _probe(entry)
    return _bf16_probe[entry]


def _probe(entry):
    if entry != "sdpa":
        return False
    bits = (ctypes.c_uint16 * 1)(0x3F80)   # 1.0 in bfloat16
    out = (ctypes.c_float * 1)()
    shape = (c_int64 * 4)(1, 1, 1, 1)
    strides = (c_int64 * 4)(1, 1, 1, 1)
    bf = DLTensor(ctypes.addressof(bits), DLDevice(1, 0), 4, DLDataType(_KDL_BFLOAT, 16, 1),
                  ctypes.cast(shape, POINTER(c_int64)), ctypes.cast(strides, POINTER(c_int64)), 0)
    fo = DLTensor(ctypes.addressof(out), DLDevice(1, 0), 4, DLDataType(_KDL_FLOAT, 32, 1),
                  ctypes.cast(shape, POINTER(c_int64)), ctypes.cast(strides, POINTER(c_int64)), 0)
    ok = lib.da_scaled_dot_product_attention(ctypes.byref(bf), ctypes.byref(bf), ctypes.byref(bf), None, None,
                                             ctypes.byref(fo)) == 0
    if not ok:
        lib.da_last_error()   # the thread-local message is left for no one
    return ok and abs(out[0] - 1.0) < 1e-3
