"""The DiT processors' keyword arguments (rotary tables, …) → da_dit_args."""

import ctypes

import numpy as np

from . import _torch
from ._core import TensorArg, check
from ._lib import POINTER, DiTArgs, DLDataType, DLDevice, DLTensor, c_int64, lib

_INT64 = DLDataType(0, 64, 1)


class _IndexArg:
    """An int64 DLTensor over a numpy array (Allegro positions)."""

    def __init__(self, array, name):
        a = np.ascontiguousarray(array.detach().cpu().numpy() if _torch.is_tensor(array) else np.asarray(array))
        if a.dtype.kind not in "iu":
            raise TypeError(f"{name} must be an integer array, got {a.dtype}")
        self.array = a.astype(np.int64)
        n = self.array.ndim
        self.shape = (c_int64 * max(n, 1))(*self.array.shape)
        self.tensor = DLTensor(self.array.ctypes.data if self.array.size else None, DLDevice(1, 0), n, _INT64,
                               ctypes.cast(self.shape, POINTER(c_int64)), None, 0)


def _table(x, name):
    """float32 table; complex tables (Lumina) become (..., 2) float32 (real, imaginary)."""
    if _torch.is_tensor(x):
        if x.is_complex():   # a view, no copy, for complex64
            x = _torch.torch_module().view_as_real(x.to(_torch.torch_module().complex64))
        return TensorArg(x, name)
    a = np.asarray(x)
    if np.iscomplexobj(a):
        a = np.ascontiguousarray(a.astype(np.complex64)).view(np.float32).reshape(a.shape + (2,))
    return TensorArg(a, name)


def _pair(value, name):
    if not isinstance(value, (tuple, list)) or len(value) != 2:
        raise ValueError(f"{name} must be a (cos, sin) pair")
    return _table(value[0], name + "[0]"), _table(value[1], name + "[1]")


def attach(args, accepted, kwargs):
    """Fills args.dit from the accepted keywords; returns what must stay alive during the call."""
    keep = []
    d = DiTArgs()
    check(lib.da_dit_args_init(ctypes.byref(d), ctypes.sizeof(d)))
    used = False
    rotary = kwargs.get("image_rotary_emb") if "image_rotary_emb" in accepted else None
    if rotary is None and "rotary_emb" in accepted:
        rotary = kwargs.get("rotary_emb")
    if rotary is not None:
        used = True
        first = rotary[0]
        if isinstance(first, (tuple, list)):   # Allegro: ((t, h, w) tables, (t, h, w) positions)
            freqs, positions = rotary
            for axis in range(3):
                c, s = _pair(freqs[axis], f"image_rotary_emb[0][{axis}]")
                p = _IndexArg(positions[axis], f"image_rotary_emb[1][{axis}]")
                keep += [c, s, p]
                d.allegro_cos[axis] = ctypes.pointer(c.tensor)
                d.allegro_sin[axis] = ctypes.pointer(s.tensor)
                d.allegro_positions[axis] = ctypes.pointer(p.tensor)
        else:
            c, s = _pair(rotary, "image_rotary_emb")
            keep += [c, s]
            d.rotary_cos, d.rotary_sin = ctypes.pointer(c.tensor), ctypes.pointer(s.tensor)
    for key in ("query_rotary_emb", "key_rotary_emb"):
        if key in accepted and kwargs.get(key) is not None:
            used = True
            t = _table(kwargs[key], key)
            keep.append(t)
            setattr(d, key, ctypes.pointer(t.tensor))
    if "base_sequence_length" in accepted and kwargs.get("base_sequence_length") is not None:
        used = True
        d.base_sequence_length = int(kwargs["base_sequence_length"])
    if used:
        keep.append(d)
        args.dit = ctypes.pointer(d)
    return keep
