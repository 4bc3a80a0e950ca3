"""diffusers' `CacheMixin` on diffattn models, and the block protocol (docs/caches.md)."""

import contextlib
import ctypes
import logging

import numpy as np

from ._cache_lib import BlockIO, KINDS
from . import _torch
from ._core import TensorArg, check
from ._lib import DLTensor, lib
from .caches import c_config_for_enable
from .hooks import HookRegistry
from .newer_hooks import enter_cache_context, set_raw_vision

logger = logging.getLogger("diffattn")
_KIND_NAMES = {v: k for k, v in KINDS.items()}
_BLOCK_LISTS = ("transformer_blocks", "single_transformer_blocks", "blocks", "layers", "visual_transformer_blocks",
                "temporal_transformer_blocks")


def _buffer(x):
    """A writable float32 copy (the library may replace a skipped block's outputs in place);
    torch stays torch."""
    if _torch.is_tensor(x):
        return _torch.checked(x, "hidden_states").to(_torch.torch_module().float32, copy=True).contiguous()
    return None if x is None else np.array(x, dtype=np.float32, order="C", copy=True)


class CacheMixin:
    @property
    def is_cache_enabled(self):
        return self._enabled_cache_kind() != 0

    def _enabled_cache_kind(self):
        kind = ctypes.c_int32()
        check(lib.da_model_enabled_cache(self._handle, ctypes.byref(kind)))
        return kind.value

    def enable_cache(self, config):
        kind, c, keep = c_config_for_enable(self, config)
        check(lib.da_model_enable_cache(self._handle, kind, ctypes.cast(ctypes.byref(c), ctypes.c_void_p)))
        self._cache_keepalive = getattr(self, "_cache_keepalive", []) + [(c, keep)]
        self._cache_config = config

    def disable_cache(self):
        if not self.is_cache_enabled:
            logger.warning("Caching techniques have not been enabled, so there's nothing to disable.")
            return
        check(lib.da_model_disable_cache(self._handle))
        self._cache_config = None

    def _reset_stateful_cache(self, recurse=True):
        HookRegistry.check_if_exists_or_initialize(self).reset_stateful_hooks(recurse=recurse)

    @contextlib.contextmanager
    def cache_context(self, name, step_index=None, num_inference_steps=None, timestep=None, sigma=None):
        """`with model.cache_context("cond", step_index=i, sigma=s, num_inference_steps=n):` selects the
        caches' per-context state and tells SeaCache where the denoising loop is (diffusers'
        CacheContext; an unknown keyword is a TypeError, as its dataclass). Contexts do not nest:
        leaving one clears the context, as diffusers."""
        enter_cache_context(self, name, step_index, num_inference_steps, timestep, sigma)
        try:
            yield
        finally:
            check(lib.da_model_set_cache_context(self._handle, None))

    def set_raw_vision(self, latents):
        """SeaCache: the raw (C, T, H, W) latents of the next transformer call (what diffusers'
        `raw_vision_callback` returns); None = none, the call then runs in full."""
        set_raw_vision(self, latents)

    def transformer_block_paths(self):
        count = ctypes.c_int64()
        check(lib.da_model_transformer_block_count(self._handle, ctypes.byref(count)))
        out = []
        for i in range(count.value):
            s = ctypes.c_char_p()
            check(lib.da_model_transformer_block_path(self._handle, i, ctypes.byref(s)))
            out.append(s.value.decode())
        return out

    def _auto_block_list(self):
        top = {p for p in self.module_paths("container") if "." not in p}
        return next((n for n in _BLOCK_LISTS if n in top), None)

    def _block_io(self, hidden, encoder, modulated, outputs=None):
        args = [TensorArg(hidden, "hidden_states"), None if encoder is None else TensorArg(encoder, "encoder_hidden_states"),
                None if modulated is None else TensorArg(_buffer(modulated), "modulated_input")]
        io = BlockIO()
        check(lib.da_block_io_init(ctypes.byref(io), ctypes.sizeof(io)))
        io.hidden_states, io.encoder_hidden_states, io.modulated_input = [
            None if a is None else ctypes.pointer(a.tensor) for a in args]
        if outputs is not None:
            outs = [TensorArg(o, f"outputs[{i}]") for i, o in enumerate(outputs)]
            array = (DLTensor * max(len(outs), 1))(*[o.tensor for o in outs])
            io.outputs, io.num_outputs = ctypes.cast(array, ctypes.POINTER(DLTensor)), len(outs)
            args += outs + [array]
        return io, args

    def module_begin(self, path, hidden_states, encoder_hidden_states=None, modulated_input=None, outputs=None):
        """Before a host-run module: returns (run, hidden, encoder). When `run` is False the module
        was skipped and hidden/encoder are its output; otherwise run it and call `module_end`.

        With `outputs` (one array per module output, shaped as the module's outputs, which may differ
        from its inputs) it returns (run, outputs) instead: a skipped module's outputs are in those
        buffers (copies of them), and the inputs are left alone."""
        h, e = _buffer(hidden_states), _buffer(encoder_hidden_states)
        outs = None if outputs is None else [_buffer(o) for o in outputs]
        io, keep = self._block_io(h, e, modulated_input, outs)
        run = ctypes.c_int32()
        check(lib.da_model_module_begin(self._handle, path.encode(), ctypes.byref(io), ctypes.byref(run)))
        del keep
        if outs is not None:
            return bool(run.value), outs
        return bool(run.value), h, e

    def module_end(self, path, hidden_states, encoder_hidden_states=None, outputs=None):
        """After running a module: returns the (possibly replaced) (hidden, encoder) outputs, or with
        `outputs` (what the module computed, in stream order) the possibly replaced outputs."""
        h, e = _buffer(hidden_states), _buffer(encoder_hidden_states)
        outs = None if outputs is None else [_buffer(o) for o in outputs]
        io, keep = self._block_io(h, e, None, outs)
        check(lib.da_model_module_end(self._handle, path.encode(), ctypes.byref(io)))
        del keep
        if outs is not None:
            return outs
        return h, e

    # --- FasterCache's denoiser rule -------------------------------------------------------
    def faster_cache_skips_unconditional(self):
        skip = ctypes.c_int32()
        check(lib.da_model_faster_cache_skips_unconditional(self._handle, ctypes.byref(skip)))
        return bool(skip.value)

    def faster_cache_denoiser_output(self, output):
        out = _buffer(output)
        skip = self.faster_cache_skips_unconditional()
        shape = ((2 if skip else 1) * out.shape[0],) + tuple(out.shape[1:])
        full = _torch.empty(shape) if _torch.is_tensor(out) else np.empty(shape, np.float32)
        a, b = TensorArg(out, "output"), TensorArg(full, "full_output")
        check(lib.da_model_faster_cache_denoiser_output(self._handle, ctypes.pointer(a.tensor), ctypes.pointer(b.tensor)))
        return full

    def mag_cache_calibration(self):
        count = ctypes.c_int64()
        check(lib.da_model_mag_cache_calibration(self._handle, None, 0, ctypes.byref(count)))
        buf = (ctypes.c_double * max(count.value, 1))()
        check(lib.da_model_mag_cache_calibration(self._handle, buf, count.value, ctypes.byref(count)))
        return list(buf[:count.value])
