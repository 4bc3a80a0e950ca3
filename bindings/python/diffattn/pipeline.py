"""A pipeline as a named set of models with diffusers' pipeline-level attention switches."""

import ctypes

from ._core import check
from ._lib import lib
from ._model_lib import slice_args
from .models import ModelMixin


class DiffusionPipeline:
    """`DiffusionPipeline(unet=..., vae=...)`: components are diffattn models (others are kept
    as plain attributes and ignored by the switches)."""

    def __init__(self, **components):
        self._handle = None
        handle = ctypes.c_void_p()
        check(lib.da_pipeline_create(ctypes.byref(handle)))
        self._handle = handle
        self.components = dict(components)
        for name, model in components.items():
            setattr(self, name, model)
            if isinstance(model, ModelMixin):
                check(lib.da_pipeline_add(self._handle, name.encode(), model._handle))

    def __del__(self):
        if getattr(self, "_handle", None):
            lib.da_pipeline_destroy(self._handle)
            self._handle = None

    def fuse_qkv_projections(self, unet=True, vae=True):
        self._call(lib.da_pipeline_fuse_qkv_projections, int(bool(unet)), int(bool(vae)))

    def unfuse_qkv_projections(self, unet=True, vae=True):
        self._call(lib.da_pipeline_unfuse_qkv_projections, int(bool(unet)), int(bool(vae)))

    def enable_attention_slicing(self, slice_size="auto"):
        mode, sizes, count = slice_args(slice_size)
        check(lib.da_pipeline_set_attention_slicing(self._handle, mode, sizes, count))

    def disable_attention_slicing(self):
        self.enable_attention_slicing(None)

    def enable_xformers_memory_efficient_attention(self, attention_op=None):
        status = lib.da_pipeline_set_use_memory_efficient_attention_xformers(self._handle, 1)
        if status == 7:
            raise ModuleNotFoundError(lib.da_last_error().decode())
        check(status)

    def disable_xformers_memory_efficient_attention(self):
        check(lib.da_pipeline_set_use_memory_efficient_attention_xformers(self._handle, 0))

    def _call(self, fn, *args):
        status = fn(self._handle, *args)
        if status == 9 and "has no attribute" in lib.da_last_error().decode():
            raise AttributeError(lib.da_last_error().decode())
        check(status)
