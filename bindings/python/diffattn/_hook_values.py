"""da_hook_values <-> Python: a module call's `(*args, **kwargs)` and its output (include/diffattn.h,
"argument and output lists")."""

import ctypes
from ctypes import CFUNCTYPE, POINTER, c_char_p, c_double, c_int32, c_int64, c_void_p

import numpy as np

from ._core import TensorArg, check
from ._lib import DLTensor, lib

VALUE_NONE, VALUE_TENSOR, VALUE_NUMBER = 0, 1, 2
ForwardFn = CFUNCTYPE(c_int32, c_void_p, c_char_p, c_void_p, c_void_p)

_S, _V = c_int32, c_void_p
_SIGNATURES = {
    "da_hook_values_create": (_S, [POINTER(_V)]),
    "da_hook_values_destroy": (None, [_V]),
    "da_hook_values_count": (_S, [_V, POINTER(c_int64)]),
    "da_hook_values_info": (_S, [_V, c_int64, POINTER(c_char_p), POINTER(c_int32), POINTER(c_int32)]),
    "da_hook_values_tensor": (_S, [_V, c_int64, POINTER(DLTensor)]),
    "da_hook_values_number": (_S, [_V, c_int64, POINTER(c_double)]),
    "da_hook_values_insert_tensor": (_S, [_V, c_int64, c_char_p, c_int32, POINTER(DLTensor)]),
    "da_hook_values_insert_number": (_S, [_V, c_int64, c_char_p, c_int32, c_double]),
    "da_hook_values_clear": (_S, [_V]),
    "da_model_call_module": (_S, [_V, c_char_p, _V, _V, ForwardFn, _V]),
}
for _name, (_restype, _argtypes) in _SIGNATURES.items():
    _fn = getattr(lib, _name)
    _fn.restype, _fn.argtypes = _restype, _argtypes


def _view(t):
    shape = tuple(t.shape[i] for i in range(t.ndim))
    count = int(np.prod(shape, dtype=np.int64))
    if count == 0:
        return np.zeros(shape, dtype=np.float32)
    return np.ctypeslib.as_array((ctypes.c_float * count).from_address(t.data)).reshape(shape)


def read(handle):
    """[(name, positional, value)]: tensors as writable float32 views into the list, numbers as float."""
    n = c_int64()
    check(lib.da_hook_values_count(handle, ctypes.byref(n)))
    out = []
    for i in range(n.value):
        name, kind, pos = c_char_p(), c_int32(), c_int32()
        check(lib.da_hook_values_info(handle, i, ctypes.byref(name), ctypes.byref(kind), ctypes.byref(pos)))
        if kind.value == VALUE_TENSOR:
            t = DLTensor()
            check(lib.da_hook_values_tensor(handle, i, ctypes.byref(t)))
            value = _view(t)
        elif kind.value == VALUE_NUMBER:
            d = c_double()
            check(lib.da_hook_values_number(handle, i, ctypes.byref(d)))
            value = d.value
        else:
            value = None
        out.append((name.value.decode(), bool(pos.value), value))
    return out


def split(entries):
    """(args tuple, kwargs dict) of read()'s entries."""
    return tuple(v for _, p, v in entries if p), {k: v for k, p, v in entries if not p}


def _owned(value, what):
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    a = np.asarray(value)
    if a.dtype != np.float32:
        if not np.issubdtype(a.dtype, np.floating) and not np.issubdtype(a.dtype, np.integer):
            raise TypeError(f"{what} must be an array, a number or None, got {type(value).__name__}")
        a = a.astype(np.float32)
    return np.array(a, dtype=np.float32, copy=True, order="C")


def write(handle, entries, what):
    """Replaces the list's content by entries [(name, positional, value)] (values copied first, so
    views into the list itself are safe to pass back)."""
    owned = [(n, p, _owned(v, what)) for n, p, v in entries]
    check(lib.da_hook_values_clear(handle))
    for i, (name, pos, v) in enumerate(owned):
        if v is None:
            check(lib.da_hook_values_insert_tensor(handle, i, name.encode(), int(pos), None))
        elif isinstance(v, np.ndarray):
            arg = TensorArg(v, what)
            check(lib.da_hook_values_insert_tensor(handle, i, name.encode(), int(pos), arg.ref))
        else:
            check(lib.da_hook_values_insert_number(handle, i, name.encode(), int(pos), float(v)))


def write_call(handle, old_entries, args, kwargs, what):
    """Writes a pre_forward's returned (args, kwargs); positional names are kept by position."""
    args = list(args)
    pos_names = [n for n, p, _ in old_entries if p]
    unchanged = len(args) == len(pos_names) and set(kwargs) == {n for n, p, _ in old_entries if not p} and all(
        a is v for a, (_, p, v) in zip(args, [e for e in old_entries if e[1]])) and all(
        kwargs[n] is v for n, p, v in old_entries if not p)
    if unchanged:
        return
    names = [pos_names[i] if i < len(pos_names) else f"arg{i}" for i in range(len(args))]
    write(handle, [(n, True, a) for n, a in zip(names, args)] + [(k, False, v) for k, v in kwargs.items()], what)


def outputs_of(entries):
    """A module's output as Python sees it: one value, or a tuple for several."""
    values = [v for _, _, v in entries]
    return values[0] if len(values) == 1 else tuple(values)


def copy_output(entries):
    """outputs_of() with tensors copied out of the list (which the caller is about to release)."""
    return outputs_of([(n, p, np.array(v, copy=True) if isinstance(v, np.ndarray) else v) for n, p, v in entries])


def write_outputs(handle, output, what):
    values = list(output) if isinstance(output, (tuple, list)) else [output]
    write(handle, [("", True, v) for v in values], what)


class Values:
    """A caller-owned da_hook_values."""

    def __init__(self):
        self.handle = c_void_p()
        check(lib.da_hook_values_create(ctypes.byref(self.handle)))

    def __del__(self):
        if getattr(self, "handle", None):
            lib.da_hook_values_destroy(self.handle)
            self.handle = None
