"""numpy ↔ DLTensor, library-owned results, status → exception translation, and the error path
of Python callbacks the library calls."""

import ctypes
import threading
import weakref

import numpy as np

from . import _torch
from ._lib import POINTER, DLDataType, DLDevice, DLManagedTensor, DLTensor, WeightInfo, c_int64, lib

_KDL_CPU = 1
_FLOAT32 = DLDataType(2, 32, 1)
_BOOL = DLDataType(1, 8, 1)
_BFLOAT16 = DLDataType(4, 16, 1)

# da_status → the exception a diffusers user would see for the same mistake.
_EXCEPTIONS = {
    1: ValueError, 2: ValueError, 3: ValueError, 4: TypeError, 5: ValueError, 6: TypeError,
    7: NotImplementedError, 8: KeyError, 9: ValueError, 10: MemoryError, 11: OSError, 12: RuntimeError,
}


class _Message(str):
    """A KeyError's message printed as text, not repr."""

    def __repr__(self):
        return str(self)


_pending = threading.local()
_STATUS_INTERNAL = 12


def callback_failed(exc):
    """Keeps a Python callback's exception for the check() of the call that ran it (on this
    thread) to raise, and returns the status the callback gives the library."""
    _pending.error = exc
    return _STATUS_INTERNAL


def guard_callback(fn):
    """`fn` as a callback the library may call: an exception becomes callback_failed(exc)."""
    def run(*args):
        try:
            return fn(*args)
        except BaseException as exc:  # noqa: BLE001 -- re-raised by the caller's check()
            return callback_failed(exc)
    return run


def c_strings(values):
    """(char** array, count) of a list of str, or (None, 0) for None. Keep the array alive."""
    if values is None:
        return None, 0
    encoded = [v.encode() for v in values]
    return (ctypes.c_char_p * max(len(encoded), 1))(*encoded), len(encoded)


def check(status):
    pending = getattr(_pending, "error", None)
    if pending is not None:
        _pending.error = None
        if status != 0:
            raise pending
    if status == 0:
        return
    message = lib.da_last_error().decode("utf-8", "replace")
    cls = _EXCEPTIONS.get(status, RuntimeError)
    raise cls(_Message(message) if cls is KeyError else message)


class TensorArg:
    """A DLTensor describing a numpy array or a CPU torch tensor in place (no copy). Keeps it alive.
    `array` is what the DLTensor describes (for torch: the tensor, or its float32 widening)."""

    __slots__ = ("array", "shape", "strides", "tensor")

    def __init__(self, array, name, allow_bool=False, allow_bf16=False, bfloat16=False):
        if _torch.is_tensor(array):
            self._init_torch(array, name, allow_bool, allow_bf16)
            return
        if not isinstance(array, np.ndarray):
            array = np.asarray(array)
        if bfloat16:  # bf16 bit patterns in any 2-byte dtype (uint16, int16, ml_dtypes.bfloat16)
            if array.dtype.itemsize != 2:
                raise TypeError(f"{name} must hold bfloat16 bit patterns (2-byte elements), got {array.dtype}")
            dtype = _BFLOAT16
        elif array.dtype == np.float32:
            dtype = _FLOAT32
        elif allow_bool and array.dtype == np.bool_:
            dtype = _BOOL
        else:
            expected = "float32 or bool" if allow_bool else "float32"
            raise TypeError(f"{name} must be a numpy array of dtype {expected}, got {array.dtype} "
                            f"(convert with .astype(np.float32))")
        if any(s % array.itemsize for s in array.strides):
            array = np.ascontiguousarray(array)
        self.array = array
        n = array.ndim
        self.shape = (c_int64 * max(n, 1))(*array.shape)
        self.strides = (c_int64 * max(n, 1))(*(s // array.itemsize for s in array.strides))
        data = array.ctypes.data if array.size else None
        self.tensor = DLTensor(data, DLDevice(_KDL_CPU, 0), n, dtype,
                               ctypes.cast(self.shape, POINTER(c_int64)),
                               ctypes.cast(self.strides, POINTER(c_int64)), 0)

    def _init_torch(self, t, name, allow_bool, allow_bf16):
        t = _torch.checked(t, name, allow_bool, allow_bf16)
        data, shape, strides, (code, bits) = _torch.dl_fields(t)
        self.array = t
        n = len(shape)
        self.shape = (c_int64 * max(n, 1))(*shape)
        self.strides = (c_int64 * max(n, 1))(*strides)
        self.tensor = DLTensor(data, DLDevice(_KDL_CPU, 0), n, DLDataType(code, bits, 1),
                               ctypes.cast(self.shape, POINTER(c_int64)),
                               ctypes.cast(self.strides, POINTER(c_int64)), 0)

    @property
    def ref(self):
        return ctypes.byref(self.tensor)


def optional_arg(array, name, allow_bool=False):
    return None if array is None else TensorArg(array, name, allow_bool)


def pointer(arg):
    return None if arg is None else ctypes.pointer(arg.tensor)


def managed_to_numpy(managed):
    """A numpy view of a library-allocated tensor, without a copy; the tensor is released with
    da_tensor_free when the last array viewing it goes away."""
    t = managed.contents.dl_tensor
    shape = tuple(t.shape[i] for i in range(t.ndim))
    count = int(np.prod(shape, dtype=np.int64))
    is_float = t.dtype.code == 2
    if count == 0:
        lib.da_tensor_free(managed)
        return np.zeros(shape, dtype=np.float32 if is_float else np.bool_)
    buffer = ((ctypes.c_float if is_float else ctypes.c_uint8) * count).from_address(t.data)
    weakref.finalize(buffer, lib.da_tensor_free, managed)
    array = np.ctypeslib.as_array(buffer).reshape(shape)
    return array if is_float else array.view(np.bool_)


def call_returning_tensor(fn, *args, like=None):
    """A library-allocated result; a torch tensor sharing its buffer when `like` is one."""
    out = POINTER(DLManagedTensor)()
    check(fn(*args, ctypes.byref(out)))
    array = managed_to_numpy(out)
    return _torch.from_library(array) if _torch.is_tensor(like) else array


def weight_infos(handle, count_fn, info_fn):
    """[(name, shape)] of a handle's state dict, through its *_weight_count / *_weight_info calls."""
    count = c_int64()
    check(count_fn(handle, ctypes.byref(count)))
    infos = []
    for i in range(count.value):
        w = WeightInfo()
        w.struct_size = ctypes.sizeof(w)
        check(info_fn(handle, i, ctypes.byref(w)))
        infos.append((w.name.decode(), tuple(w.shape[j] for j in range(w.ndim))))
    return infos


def read_state_dict(handle, infos, get_fn):
    """{name: float32 array} copied out through a *_get_weight call, in the order of `infos`."""
    result = {}
    for name, shape in infos:
        out = np.empty(shape, dtype=np.float32)
        check(get_fn(handle, name.encode(), TensorArg(out, "out").ref))
        result[name] = out
    return result
